//! `cargo xtask containerd`: containerd (Debian's 1.6) drives `contain-oci` through the runc
//! shim (`io.containerd.runc.v2`, its `BinaryName` option set with `ctr run --runc-binary`),
//! and each result is checked: `ctr run --rm` (exit code, output), a detached task with
//! `ctr task exec`, `ctr task kill` and `ctr task delete`, and a container whose program is
//! missing, whose error as containerd shows it must name the cause (the shim reads it from
//! the runtime's `--log-format json` log). Prints a table (case, expected, got,
//! PASS/FAIL/SKIP) and exits non-zero on any failure.
//!
//! The containerd is our own: a config of ours, its root, state, `opt` plugin dir and socket
//! in one temp dir (the CRI plugin and the snapshotters this needs not are disabled), the
//! shim's runtime root (`--runc-root`) and the IO fifos (`--fifo-dir`) there too, a
//! containerd namespace `xtask-containerd-PID` (whose name is the containers' cgroup parent).
//! At the end every task and container is deleted, containerd is stopped (SIGTERM, waited
//! for), and the temp dir and the cgroups are removed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{self, Ran, Table, WorkDir};
use crate::error::{bail, Context, Result};
use crate::podman::ensure_programs;

/// `cargo xtask containerd` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The runtime; `None`: `cargo build --release -p contain-oci`.
    pub runtime: Option<PathBuf>,
}

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--runtime" => {
                let Some(v) = args.get(i + 1) else {
                    bail!("--runtime needs a value");
                };
                opts.runtime = Some(PathBuf::from(v));
                i += 1;
            }
            _ => bail!("unknown argument {arg} (see `cargo xtask help`)"),
        }
        i += 1;
    }
    Ok(opts)
}

const NEEDS: [(&str, &str); 6] = [
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
    ("umoci", "umoci"),
    ("timeout", "coreutils"),
    ("tar", "tar"),
];

/// How long one ctr command may take.
const LIMIT: Duration = Duration::from_secs(60);

/// `cargo xtask containerd`: returns the exit code (0 iff no case failed).
pub fn run(opts: &Options) -> Result<u8> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("containerd with its own state, mounts and cgroups needs root: run this as root");
    }
    ensure_programs(&NEEDS, "`cargo xtask containerd` drives containerd")?;
    crate::setup::ensure(crate::setup::Scope {
        host: true,
        vm: false,
    })?;
    let runtime = match &opts.runtime {
        Some(path) => crate::oci::resolve_runtime(path)?,
        None => crate::oci::build_contain_oci()?,
    };
    // The shims put their sockets in /run/containerd/s (fixed in containerd 1.6): removed at
    // the end when we made them (rmdir: only when empty).
    let shim_dirs = ["/run/containerd/s", "/run/containerd"].map(Path::new);
    let made: Vec<&Path> = shim_dirs.into_iter().filter(|d| !d.exists()).collect();
    let work = WorkDir::new("containerd")?;
    let namespace = format!("xtask-containerd-{}", std::process::id());
    eprintln!(
        "xtask: making the image (umoci) in {}",
        work.path().display()
    );
    let images = clients::make_images(work.path(), None)?;
    let mut daemon = Daemon::start(work.path(), &namespace, &runtime)?;
    let mut table = Table::default();
    let outcome = cases(&daemon, &images.busybox, &runtime, &mut table);
    daemon.teardown();
    let stopped = daemon.stop();
    drop(work);
    clients::remove_cgroups(&namespace);
    for dir in made {
        if let Err(e) = std::fs::remove_dir(dir) {
            eprintln!("xtask: cannot remove {}: {e}", dir.display());
        }
    }
    crate::sys::check_interrupted()?;
    println!(
        "runtime: {} ({}); {}; kernel {}",
        runtime.display(),
        clients::version_line(&runtime, "--version"),
        clients::version_line(Path::new("containerd"), "--version"),
        crate::podman::kernel_release()
    );
    println!("{}", daemon.example());
    print!("{}", table.render());
    outcome?;
    stopped?;
    Ok(u8::from(table.failed() > 0))
}

/// Our containerd and how ctr reaches it.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    namespace: String,
    /// `--runc-binary RT --runc-root DIR --fifo-dir DIR`, for `ctr run`.
    run_flags: Vec<OsString>,
    fifo_dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(work: &Path, namespace: &str, runtime: &Path) -> Result<Daemon> {
        let socket = work.join("containerd.sock");
        let config = work.join("config.toml");
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let text = format!(
            "# Written by `cargo xtask containerd`.\n\
             version = 2\n\
             root = {root}\n\
             state = {state}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
             [grpc]\n  address = {sock}\n\
             [ttrpc]\n  address = {ttrpc}\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt}\n",
            root = q(&work.join("root")),
            state = q(&work.join("state")),
            sock = q(&socket),
            ttrpc = q(&work.join("containerd.sock.ttrpc")),
            opt = q(&work.join("opt")),
        );
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        let log = work.join("containerd.log");
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new("containerd");
        command
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        crate::sys::kill_with_parent(&mut command);
        let child = command.spawn().context("cannot start containerd")?;
        let fifo_dir = work.join("fifo");
        let mut run_flags: Vec<OsString> = vec!["--runc-binary".into(), runtime.into()];
        run_flags.push("--runc-root".into());
        run_flags.push(work.join("runc-root").into());
        run_flags.push("--fifo-dir".into());
        run_flags.push(fifo_dir.clone().into());
        let mut daemon = Daemon {
            child: Some(child),
            socket,
            namespace: namespace.to_string(),
            run_flags,
            fifo_dir,
            log,
        };
        // Ready once ctr gets an answer on the socket (polled, at most 20 s).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = daemon.ctr(&["version"])?;
            if r.code == Some(0) {
                break;
            }
            let exited = daemon
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                let _ = daemon.stop();
                bail!(
                    "containerd did not come up ({}); its log ends:\n{}",
                    r.last_error(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            crate::sys::check_interrupted()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    fn argv(&self, args: &[&OsStr]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "--address".into(),
            self.socket.clone().into(),
            "--namespace".into(),
            self.namespace.clone().into(),
        ];
        argv.extend(args.iter().map(|a| a.to_os_string()));
        argv
    }

    fn ctr(&self, args: &[&str]) -> Result<Ran> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        clients::run_limited("ctr".as_ref(), &self.argv(&args), &[], LIMIT)
    }

    /// `ctr run RUN_FLAGS args`.
    fn run(&self, args: &[&str]) -> Result<Ran> {
        let mut all: Vec<&OsStr> = vec!["run".as_ref()];
        all.extend(self.run_flags.iter().map(OsString::as_os_str));
        all.extend(args.iter().map(OsStr::new));
        clients::run_limited("ctr".as_ref(), &self.argv(&all), &[], LIMIT)
    }

    /// `ctr task exec --fifo-dir DIR args`.
    fn exec(&self, args: &[&str]) -> Result<Ran> {
        let mut all: Vec<&OsStr> = vec!["task".as_ref(), "exec".as_ref(), "--fifo-dir".as_ref()];
        all.push(self.fifo_dir.as_os_str());
        all.extend(args.iter().map(OsStr::new));
        clients::run_limited("ctr".as_ref(), &self.argv(&all), &[], LIMIT)
    }

    /// The status column of `ctr task ls` for `id` (`RUNNING`, `STOPPED`), empty if none.
    fn task_status(&self, id: &str) -> Result<String> {
        let r = self.ctr(&["task", "ls"])?;
        Ok(r.stdout
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&id)).then(|| w.last().unwrap_or(&"").to_string())
            })
            .next()
            .unwrap_or_default())
    }

    /// Polls `ctr task ls` until the task is `want` (at most 10 s); returns what it was last.
    fn wait_status(&self, id: &str, want: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.task_status(id)?;
            if status == want || Instant::now() > deadline {
                return Ok(status);
            }
            crate::sys::check_interrupted()?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A `ctr run` line as a person would type it (for the header).
    fn example(&self) -> String {
        let mut line = String::from("ctr");
        let mut args: Vec<&OsStr> = vec!["run".as_ref(), "--rm".as_ref()];
        args.extend(self.run_flags.iter().map(OsString::as_os_str));
        args.extend(["IMAGE", "ID", "true"].map(OsStr::new));
        for a in self.argv(&args) {
            line.push(' ');
            line.push_str(&crate::cmd::shell_word(&a));
        }
        line
    }

    /// Kills and deletes every task, deletes every container and image of our namespace.
    fn teardown(&self) {
        let ids = |what: &str| -> Vec<String> {
            self.ctr(&[what, "ls", "-q"])
                .map(|r| r.stdout.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        for id in ids("task") {
            let _ = self.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", &id]);
            let _ = self.wait_status(&id, "STOPPED");
            let _ = self.ctr(&["task", "delete", "--force", &id]);
        }
        for id in ids("container") {
            let _ = self.ctr(&["container", "delete", &id]);
        }
        for name in ids("image") {
            let _ = self.ctr(&["image", "remove", &name]);
        }
        let _ = self.ctr(&["namespace", "remove", &self.namespace]);
    }

    /// SIGTERM to containerd, waited for (SIGKILL after 10 s).
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        // SAFETY: kill(2) on our own unreaped child's pid: it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("containerd did not stop within 10 s of SIGTERM (killed)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn exit_and_why(r: &Ran) -> String {
    if r.code == Some(0) {
        r.exit()
    } else {
        format!("{}: {}", r.exit(), r.last_error())
    }
}

fn cases(d: &Daemon, archive: &Path, runtime: &Path, t: &mut Table) -> Result<()> {
    let archive = archive.to_string_lossy().into_owned();
    let r = d.ctr(&[
        "image",
        "import",
        "--base-name",
        "localhost/busybox",
        &archive,
    ])?;
    let list = d.ctr(&["image", "ls", "-q"])?;
    let image = list.stdout.lines().next().unwrap_or("").to_string();
    t.add(
        "ctr image import (oci-archive)",
        "exit 0, an image",
        format!("{}, {image:?}", exit_and_why(&r)),
        r.code == Some(0) && !image.is_empty(),
    );
    if image.is_empty() {
        return Ok(());
    }

    let r = d.run(&["--rm", &image, "once", "sh", "-c", "echo hello; exit 3"])?;
    let got = format!("{}, {:?}", r.exit(), r.stdout.trim());
    t.add(
        "ctr run --rm sh -c 'echo hello; exit 3'",
        "exit 3, \"hello\"",
        got,
        r.code == Some(3) && r.stdout.trim() == "hello",
    );

    let trap = "trap 'exit 0' TERM; while :; do sleep 0.1; done";
    let r = d.run(&["-d", &image, "bg", "sh", "-c", trap])?;
    let status = d.wait_status("bg", "RUNNING")?;
    t.add(
        "ctr run -d",
        "exit 0, task RUNNING",
        format!("{}, task {status:?}", exit_and_why(&r)),
        r.code == Some(0) && status == "RUNNING",
    );
    if status == "RUNNING" {
        if clients::runtime_has_command(runtime, "exec") {
            let r = d.exec(&["--exec-id", "e1", "bg", "sh", "-c", "echo in; exit 4"])?;
            t.add(
                "ctr task exec",
                "exit 4, \"in\"",
                format!("{}, {:?}", r.exit(), r.stdout.trim()),
                r.code == Some(4) && r.stdout.trim() == "in",
            );
        } else {
            t.skip(
                "ctr task exec",
                "exit 4, \"in\"",
                format!("{} has no exec command yet", runtime.display()),
            );
        }
        let r = d.ctr(&["task", "kill", "--signal", "SIGTERM", "bg"])?;
        let status = d.wait_status("bg", "STOPPED")?;
        t.add(
            "ctr task kill -s SIGTERM",
            "exit 0, task STOPPED",
            format!("{}, task {status:?}", exit_and_why(&r)),
            r.code == Some(0) && status == "STOPPED",
        );
        let r = d.ctr(&["task", "delete", "bg"])?;
        let after = d.task_status("bg")?;
        t.add(
            "ctr task delete",
            "exit 0, task gone",
            format!(
                "{}, {:?}, task {after:?}",
                exit_and_why(&r),
                r.stdout.trim()
            ),
            r.code == Some(0) && after.is_empty(),
        );
        let _ = d.ctr(&["container", "delete", "bg"]);
    }

    let r = d.run(&["--rm", &image, "broken", "/no/such/program"])?;
    let err = r.last_error();
    t.add(
        "ctr run of a missing program",
        "fails, error names /no/such/program",
        format!("{}: {err}", r.exit()),
        r.code != Some(0) && err.contains("/no/such/program"),
    );
    let _ = d.ctr(&["container", "delete", "broken"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let o = parse(&[OsString::from("--runtime"), OsString::from("runc")]).unwrap();
        assert_eq!(o.runtime, Some(PathBuf::from("runc")));
        assert!(parse(&[OsString::from("--runtime")]).is_err());
        assert!(parse(&[OsString::from("-x")]).is_err());
    }
}
