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
//! for), and the temp dir and the cgroups are removed (and /run/containerd/s, where 1.6's
//! shims put their sockets, when this run made it).
//!
//! `ctr run` asks for `cpu.shares` 1024 by default; where the cpu controller is on cgroup v1
//! (this hybrid host) the runs pass `--cpu-shares 0` (nothing in the config), and the default
//! is a case of its own (applied, or refused naming cpu). The cases then run again in the
//! project's qemu guest (pure cgroup v2) with ctr's defaults and a memory limit, this xtask
//! running there with containerd, ctr, the shim and the runtime copied in.

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
    /// The runtime; `None`: contain-oci as `cargo xtask build-oci` builds it.
    pub runtime: Option<PathBuf>,
    /// No qemu guest (it runs the cases again there when this host's cpu controller is not
    /// on cgroup v2, where ctr's default spec can run).
    pub no_vm: bool,
    /// Internal: we are the run inside the guest; the busybox archive to import.
    pub in_guest: Option<PathBuf>,
}

/// The internal flag of the run inside the guest.
const GUEST_FLAG: &str = "--in-guest";

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--runtime" | GUEST_FLAG => {
                let Some(v) = args.get(i + 1) else {
                    bail!("{arg} needs a value");
                };
                if arg == "--runtime" {
                    opts.runtime = Some(PathBuf::from(v));
                } else {
                    opts.in_guest = Some(PathBuf::from(v));
                }
                i += 1;
            }
            "--no-vm" => opts.no_vm = true,
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
    if let Some(archive) = &opts.in_guest {
        let Some(runtime) = &opts.runtime else {
            bail!("{GUEST_FLAG} needs --runtime");
        };
        let mut table = Table::default();
        let outcome = session(runtime, archive, &mut table);
        println!("guest: kernel {}", crate::podman::kernel_release());
        print!("{}", table.render());
        outcome?;
        return Ok(u8::from(table.failed() > 0));
    }
    ensure_programs(&NEEDS, "`cargo xtask containerd` drives containerd")?;
    crate::setup::ensure(crate::setup::Scope {
        host: true,
        vm: !opts.no_vm,
    })?;
    let runtime = match &opts.runtime {
        Some(path) => crate::oci::resolve_runtime(path)?,
        None => crate::oci::build_contain_oci()?,
    };
    let work = WorkDir::new("containerd")?;
    eprintln!(
        "xtask: making the image (umoci) in {}",
        work.path().display()
    );
    let images = clients::make_images(work.path(), None)?;
    let mut table = Table::default();
    let mut outcome = session(&runtime, &images.busybox, &mut table);
    if outcome.is_ok() && !opts.no_vm && !clients::on_v2("cpu") {
        let mut files = Vec::new();
        for program in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            match crate::setup::find_program(program) {
                Some(p) => files.push(p),
                None => bail!("{program} not found"),
            }
        }
        outcome = clients::in_vm("containerd", &runtime, &images.busybox, files, GUEST_FLAG).map(
            |(got, pass)| {
                table.add(
                    "in the VM (pure cgroup v2): the guest's table above",
                    "guest exit 0",
                    got,
                    pass,
                );
            },
        );
    }
    drop(work);
    crate::sys::check_interrupted()?;
    println!(
        "runtime: {} ({}); {}; kernel {}",
        runtime.display(),
        clients::version_line(&runtime, "--version"),
        clients::version_line(Path::new("containerd"), "--version"),
        crate::podman::kernel_release()
    );
    print!("{}", table.render());
    outcome?;
    Ok(u8::from(table.failed() > 0))
}

/// One containerd of ours from start to stop: the cases against it, then everything it made
/// removed. A `ctr run` line as a person would type it is printed first.
fn session(runtime: &Path, archive: &Path, table: &mut Table) -> Result<()> {
    // The shims put their sockets in /run/containerd/s (fixed in containerd 1.6): removed at
    // the end when we made them (rmdir: only when empty).
    let shim_dirs = ["/run/containerd/s", "/run/containerd"].map(Path::new);
    let made: Vec<&Path> = shim_dirs.into_iter().filter(|d| !d.exists()).collect();
    let work = WorkDir::new("containerd-daemon")?;
    let namespace = format!("xtask-containerd-{}", std::process::id());
    let mut daemon = Daemon::start(work.path(), &namespace, runtime)?;
    println!("{}", daemon.example());
    let outcome = cases(&daemon, archive, runtime, table);
    daemon.teardown();
    if outcome.is_ok() {
        // Every container's group (NAMESPACE/ID) must be gone with its task.
        let mut left = Vec::new();
        let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for root in hierarchies
            .into_iter()
            .chain([PathBuf::from("/sys/fs/cgroup")])
        {
            if let Ok(entries) = std::fs::read_dir(root.join(&namespace)) {
                left.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path().display().to_string()),
                );
            }
        }
        table.nothing_left(
            "nothing left after task and container delete",
            "no container cgroup",
            &left,
        );
    }
    let stopped = daemon.stop();
    drop(work);
    clients::remove_cgroups(&namespace);
    for dir in made {
        if let Err(e) = std::fs::remove_dir(dir) {
            eprintln!("xtask: cannot remove {}: {e}", dir.display());
        }
    }
    outcome?;
    stopped
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
        if !clients::on_v2("cpu") {
            // ctr asks for cpu.shares 1024 by default, which needs the cpu controller; where
            // cgroup v1 has it a v2-only runtime cannot apply it. 0 leaves it out of the
            // config; the default has a case of its own.
            run_flags.extend(["--cpu-shares", "0"].map(OsString::from));
        }
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

    /// The PID column of `ctr task ls` for `id` (0 if none).
    fn task_pid(&self, id: &str) -> Result<u32> {
        let r = self.ctr(&["task", "ls"])?;
        Ok(r.stdout
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&id)).then(|| w.get(1).and_then(|p| p.parse().ok()))
            })
            .next()
            .flatten()
            .unwrap_or(0))
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

    let r = d.run(&[
        "--rm",
        &image,
        "once",
        "sh",
        "-c",
        "echo hello; echo err >&2; exit 3",
    ])?;
    let got = format!("{}, {:?}, {:?}", r.exit(), r.stdout, r.stderr);
    // Exactly: the runtime's warnings go to its --log, not into the container's stderr.
    t.add(
        "ctr run --rm sh -c 'echo hello; echo err >&2; exit 3'",
        "exit 3, \"hello\\n\", \"err\\n\"",
        got,
        r.code == Some(3) && r.stdout == "hello\n" && r.stderr == "err\n",
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
        let r = d.ctr(&["task", "pause", "bg"])?;
        let paused = d.wait_status("bg", "PAUSED")?;
        let u = d.ctr(&["task", "resume", "bg"])?;
        let running = d.wait_status("bg", "RUNNING")?;
        t.add(
            "ctr task pause, resume",
            "PAUSED, then RUNNING",
            format!(
                "{}, {paused}; {}, {running}",
                exit_and_why(&r),
                exit_and_why(&u)
            ),
            r.code == Some(0) && paused == "PAUSED" && u.code == Some(0) && running == "RUNNING",
        );
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

    // ctr's default cpu shares (1024).
    if !clients::on_v2("cpu") {
        let r = d.run(&["--rm", "--cpu-shares", "1024", &image, "shares", "true"])?;
        let err = r.last_error();
        t.add(
            "ctr run --cpu-shares 1024 (ctr's default; cpu on cgroup v1)",
            "exit 0, or an error naming cpu",
            exit_and_why(&r),
            r.code == Some(0) || (r.code != Some(0) && err.contains("cpu")),
        );
        let _ = d.ctr(&["container", "delete", "shares"]);
    }

    if clients::on_v2("memory") {
        // ctr's spec gives the container no /sys/fs/cgroup: the group is read from outside,
        // found through the task's pid.
        let r = d.run(&[
            "-d",
            "--memory-limit",
            "67108864",
            &image,
            "mem",
            "sleep",
            "100",
        ])?;
        let status = d.wait_status("mem", "RUNNING")?;
        let got = if status == "RUNNING" {
            let pid = d.task_pid("mem")?;
            let group = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let path = group
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or("")
                .trim()
                .to_string();
            let max = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max"))
                .unwrap_or_default();
            format!("{}: {:?}", path, max.trim())
        } else {
            format!("{}, task {status:?}", exit_and_why(&r))
        };
        t.add(
            "ctr run -d --memory-limit 67108864",
            "its cgroup's memory.max 67108864",
            got.clone(),
            got.ends_with("\"67108864\""),
        );
        let _ = d.ctr(&["task", "kill", "--signal", "SIGKILL", "mem"]);
        let _ = d.wait_status("mem", "STOPPED");
        let _ = d.ctr(&["task", "delete", "mem"]);
        let _ = d.ctr(&["container", "delete", "mem"]);
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
        assert!(parse(&[OsString::from("--no-vm")]).unwrap().no_vm);
    }
}
