//! `cargo xtask podman`: podman (Debian's 4.3, with conmon) drives `contain-oci` through
//! `podman --runtime PATH`, and each result is checked: exit codes, captured output, a
//! terminal (`-it` under `script(1)`), a detached container with `exec`, `kill -s USR1`,
//! `stop` (SIGTERM honoured; SIGTERM ignored, then SIGKILL after `-t`), a Debian image, and
//! `--memory`. Prints a table (case, expected, got, PASS/FAIL/SKIP) and exits non-zero on any
//! failure.
//!
//! Nothing of the host's podman is used or changed: the images (busybox-static's applets, and
//! the Debian bookworm minbase rootfs the project's tests use) are made as `oci-archive`
//! tarballs with umoci and `podman load`ed into a private storage (`--root`, `--runroot`,
//! `--tmpdir`, `--network-config-dir`, `CONTAINERS_CONF` and `CONTAINERS_STORAGE_CONF`
//! pointing at files of ours, all in one temp dir). The runtime keeps its state in its default
//! root (contain-oci: /run/contain-oci, removed at the end when this run made it and left it
//! empty): podman 4.3 does not hand `--runtime-flag` to the `container cleanup` that conmon
//! runs when a container exits, so with `--runtime-flag root=DIR` that cleanup's
//! `delete --force` looks in the default root, finds nothing, and the container's state and
//! cgroup stay behind. The cgroups are podman's defaults (cgroupfs manager: conmon in
//! `/libpod_parent/conmon`, containers in `/libpod_parent/libpod-ID`), except for one case
//! with `--cgroup-parent /xtask-podman-PID/sub`, a parent that does not exist yet. At the end
//! the containers, the storage (with its mounts), the temp dir and the cgroups are removed
//! (`libpod_parent` only when this run made it).
//!
//! What this host needs of podman, found by running it here: `--network none` (no netavark
//! or CNI set up), and lower ulimits: podman asks for `RLIMIT_NOFILE` 1048576 and
//! `RLIMIT_NPROC` 32768 (its own `default_ulimits`), which a runtime without
//! `CAP_SYS_RESOURCE` cannot raise above the hard limits it inherited (runc fails
//! "error setting rlimit type 6", crun "setrlimit `RLIMIT_NPROC`"); the runs pass
//! `--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`. Where the pids controller is on
//! cgroup v1 (this hybrid host) they also pass `--pids-limit -1` (podman's default 2048 needs
//! the controller, which a cgroup v2 runtime cannot have here); `--pids-limit 2048` and
//! `--memory 64m` are cases of their own, which on such a host pass when the runtime applies
//! them or refuses them naming the controller (and the limit is in the config.json podman
//! wrote). They run again in the project's qemu guest (pure cgroup v2), where the container
//! must see them in its own group: this xtask runs there with podman, conmon and the runtime
//! copied in, on a vfs storage.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::clients::{self, Images, Ran, Table, WorkDir};
use crate::cmd;
use crate::error::{bail, Result};
use crate::setup;

/// `cargo xtask podman` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The runtime; `None`: contain-oci as `cargo xtask build-oci` builds it.
    pub runtime: Option<PathBuf>,
    /// The Debian rootfs (default: the tests' `$CARGO_TARGET_DIR/debian-bookworm-minbase`).
    pub debian: Option<PathBuf>,
    /// Leave the Debian image out (its archive takes a while on a slow machine).
    pub no_debian: bool,
    /// No qemu guest for `--memory` (it runs there when this host's memory controller is
    /// not on cgroup v2).
    pub no_vm: bool,
    /// Internal: we are the run inside the guest; the busybox archive to load.
    pub in_guest: Option<PathBuf>,
}

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--runtime" | "--debian" | GUEST_FLAG => {
                let Some(v) = args.get(i + 1) else {
                    bail!("{arg} needs a value");
                };
                let path = Some(PathBuf::from(v));
                match arg.as_ref() {
                    "--runtime" => opts.runtime = path,
                    "--debian" => opts.debian = path,
                    _ => opts.in_guest = path,
                }
                i += 1;
            }
            "--no-debian" => opts.no_debian = true,
            "--no-vm" => opts.no_vm = true,
            _ => bail!("unknown argument {arg} (see `cargo xtask help`)"),
        }
        i += 1;
    }
    if opts.no_debian && opts.debian.is_some() {
        bail!("--debian and --no-debian exclude each other");
    }
    Ok(opts)
}

/// Where podman's cgroupfs manager puts conmon and the containers by default.
const LIBPOD_PARENT: &str = "libpod_parent";

/// What the containers left once podman removed them all: entries in contain-oci's state
/// root (when this run made it), and container cgroups (`libpod-*` below libpod_parent and
/// below our `--cgroup-parent`), in every hierarchy.
fn leftovers(state_root_ours: bool, cgroup_parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    if state_root_ours {
        if let Ok(entries) = std::fs::read_dir(CONTAIN_OCI_ROOT) {
            left.extend(entries.flatten().map(|e| e.path().display().to_string()));
        }
    }
    let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    roots.extend(hierarchies);
    for root in roots {
        for parent in [LIBPOD_PARENT, cgroup_parent] {
            container_groups(&root.join(parent), &mut left);
        }
    }
    left
}

/// The `libpod-*` directories at or below `dir` (a container's group, podman's name for it).
fn container_groups(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name().to_string_lossy().starts_with("libpod-") {
            out.push(e.path().display().to_string());
        } else {
            container_groups(&e.path(), out);
        }
    }
}

/// contain-oci's default state root as root (podman calls it without `--root`).
const CONTAIN_OCI_ROOT: &str = "/run/contain-oci";

/// The internal flag of the run inside the guest.
const GUEST_FLAG: &str = "--in-guest";

/// Programs the script runs, with the Debian package of each.
const NEEDS: [(&str, &str); 6] = [
    ("podman", "podman"),
    ("conmon", "conmon"),
    ("umoci", "umoci"),
    ("script", "bsdutils"),
    ("timeout", "coreutils"),
    ("tar", "tar"),
];

/// How long one podman command may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Installs what is missing (as root, with apt-get), as `setup` does for the tests.
pub fn ensure_programs(needs: &[(&str, &str)], why: &str) -> Result<()> {
    let mut packages: Vec<&str> = Vec::new();
    for (program, package) in needs {
        if setup::find_program(program).is_none() && !packages.contains(package) {
            packages.push(package);
        }
    }
    if !packages.is_empty() {
        setup::install(&packages, why)?;
    }
    for (program, package) in needs {
        if setup::find_program(program).is_none() {
            bail!("{program} not found after installing {package}");
        }
    }
    Ok(())
}

/// `cargo xtask podman`: returns the exit code (0 iff no case failed).
pub fn run(opts: &Options) -> Result<u8> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("podman with a private storage and cgroups needs root: run this as root");
    }
    if let Some(archive) = &opts.in_guest {
        return in_guest(opts, archive);
    }
    ensure_programs(&NEEDS, "`cargo xtask podman` drives podman")?;
    setup::ensure(setup::Scope {
        host: true,
        vm: !opts.no_vm,
    })?;
    let runtime = match &opts.runtime {
        Some(path) => crate::oci::resolve_runtime(path)?,
        None => crate::oci::build_contain_oci()?,
    };
    let debian = if opts.no_debian {
        None
    } else {
        Some(clients::debian_rootfs(opts.debian.as_deref())?)
    };
    let work = WorkDir::new("podman")?;
    let cgroup_parent = format!("xtask-podman-{}", std::process::id());
    let made_libpod_parent = !clients::cgroup_exists(LIBPOD_PARENT);
    let made_state_root = !Path::new(CONTAIN_OCI_ROOT).exists();
    eprintln!(
        "xtask: making the images (umoci) in {}",
        work.path().display()
    );
    let images = clients::make_images(work.path(), debian.as_deref())?;
    let podman = Podman::new(work.path(), &runtime, "overlay")?;
    let mut table = Table::default();
    let mut outcome = cases(&podman, &images, &runtime, &cgroup_parent, &mut table);
    if outcome.is_ok() && !opts.no_vm && !clients::on_v2("memory") {
        outcome = vm_cases(&runtime, &images.busybox, &mut table);
    }
    podman.teardown();
    if outcome.is_ok() {
        let left = leftovers(made_state_root, &cgroup_parent);
        table.nothing_left(
            "nothing left after podman rm",
            "no container state or cgroup",
            &left,
        );
    }
    drop(work);
    clients::remove_cgroups(&cgroup_parent);
    if made_libpod_parent {
        clients::remove_cgroups(LIBPOD_PARENT);
    }
    if made_state_root {
        // Only when empty: anything left there is a container of ours that was not deleted.
        if let Err(e) = std::fs::remove_dir(CONTAIN_OCI_ROOT) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("xtask: cannot remove {CONTAIN_OCI_ROOT}: {e}");
            }
        }
    }
    crate::sys::check_interrupted()?;
    let podman_version = clients::version_line(Path::new("podman"), "--version");
    let conmon_version = clients::version_line(Path::new("conmon"), "--version");
    println!(
        "runtime: {} ({}); {podman_version}; {conmon_version}; kernel {}",
        runtime.display(),
        clients::version_line(&runtime, "--version"),
        kernel_release()
    );
    println!("{}", podman.example());
    print!("{}", table.render());
    outcome?;
    Ok(u8::from(table.failed() > 0))
}

/// `uname -r`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// podman with the private storage and settings of this run.
struct Podman {
    /// The temp dir holding the storage and the settings.
    work: PathBuf,
    global: Vec<OsString>,
    run_flags: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
}

impl Podman {
    fn new(work: &Path, runtime: &Path, driver: &str) -> Result<Podman> {
        let conf = work.join("containers.conf");
        // An empty containers.conf of ours: podman's built-in defaults, not the host's files.
        std::fs::write(&conf, "# cargo xtask podman: podman's defaults\n")?;
        let storage_conf = work.join("storage.conf");
        std::fs::write(
            &storage_conf,
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                work.join("storage").display(),
                work.join("run").display()
            ),
        )?;
        let tmp = work.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let path = |name: &str| work.join(name).into_os_string();
        let mut global: Vec<OsString> = Vec::new();
        for (flag, value) in [
            ("--root", path("storage")),
            ("--runroot", path("run")),
            ("--tmpdir", path("libpod-tmp")),
            ("--network-config-dir", path("networks")),
            ("--cgroup-manager", "cgroupfs".into()),
            ("--events-backend", "file".into()),
            ("--storage-driver", driver.into()),
            ("--runtime", runtime.as_os_str().to_owned()),
        ] {
            global.push(flag.into());
            global.push(value);
        }
        let mut run_flags = [
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]
        .map(OsString::from)
        .to_vec();
        if !clients::on_v2("pids") {
            // podman asks for pids.max 2048 by default (containers.conf pids_limit); where the
            // pids controller is on cgroup v1 a v2-only runtime cannot apply it. The pids
            // case checks that limit on its own.
            run_flags.extend(["--pids-limit", "-1"].map(OsString::from));
        }
        Ok(Podman {
            work: work.to_path_buf(),
            global,
            run_flags,
            env: vec![
                ("CONTAINERS_CONF", conf.into_os_string()),
                ("CONTAINERS_STORAGE_CONF", storage_conf.into_os_string()),
                ("TMPDIR", tmp.into_os_string()),
            ],
        })
    }

    /// The argument list of `podman GLOBAL args`.
    fn argv(&self, args: &[&str]) -> Vec<OsString> {
        let mut argv = self.global.clone();
        argv.extend(args.iter().map(OsString::from));
        argv
    }

    /// The argument list of `podman GLOBAL run RUN_FLAGS args`.
    fn run_argv(&self, args: &[&str]) -> Vec<OsString> {
        let mut argv = self.global.clone();
        argv.push("run".into());
        argv.extend(self.run_flags.iter().cloned());
        argv.extend(args.iter().map(OsString::from));
        argv
    }

    fn env(&self) -> Vec<(&str, &OsStr)> {
        self.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
    }

    fn podman(&self, args: &[&str]) -> Result<Ran> {
        clients::run_limited("podman".as_ref(), &self.argv(args), &self.env(), LIMIT)
    }

    fn run(&self, args: &[&str]) -> Result<Ran> {
        clients::run_limited("podman".as_ref(), &self.run_argv(args), &self.env(), LIMIT)
    }

    /// `podman ARGV` under `script -qec ... /dev/null`, which gives it a terminal.
    fn under_script(&self, argv: &[OsString]) -> Result<Ran> {
        let mut line = String::from("podman");
        for a in argv {
            line.push(' ');
            line.push_str(&cmd::shell_word(a));
        }
        let script = [
            OsString::from("-qec"),
            OsString::from(line),
            OsString::from("/dev/null"),
        ];
        clients::run_limited("script".as_ref(), &script, &self.env(), LIMIT)
    }

    /// A `podman run` command line as a person would type it (for the header).
    fn example(&self) -> String {
        let mut line = String::new();
        for (k, v) in &self.env {
            line.push_str(&format!("{k}={} ", cmd::shell_word(v)));
        }
        line.push_str("podman");
        for a in self.run_argv(&["--rm", "busybox", "true"]) {
            line.push(' ');
            line.push_str(&cmd::shell_word(&a));
        }
        line
    }

    /// Removes every container and image (the storage directory goes with the work dir).
    fn teardown(&self) {
        for args in [
            &["rm", "--all", "--force", "--time", "0"][..],
            &["rmi", "--all", "--force"],
        ] {
            match self.podman(args) {
                Ok(r) if r.code == Some(0) => {}
                Ok(r) => eprintln!("xtask: podman {}: {}", args.join(" "), r.last_error()),
                Err(e) => eprintln!("xtask: podman {}: {e}", args.join(" ")),
            }
        }
    }

    /// Polls `podman logs NAME` until it holds `text` (at most 10 s): the container's own
    /// word that it is ready (e.g. its signal traps are set).
    fn wait_for_log(&self, name: &str, text: &str) -> Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.podman(&["logs", name])?;
            if r.stdout.contains(text) {
                return Ok(true);
            }
            if Instant::now() > deadline || r.code != Some(0) {
                return Ok(false);
            }
            crate::sys::check_interrupted()?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `exit N` and the first stderr line when it is not the expected code.
fn exit_and_why(r: &Ran) -> String {
    if r.code == Some(0) {
        r.exit()
    } else {
        format!("{}: {}", r.exit(), r.last_error())
    }
}

fn cases(
    p: &Podman,
    images: &Images,
    runtime: &Path,
    cgroup_parent: &str,
    t: &mut Table,
) -> Result<()> {
    let load = |archive: &Path| -> Result<Ran> {
        let archive = archive.to_string_lossy().into_owned();
        p.podman(&["load", "--input", &archive])
    };
    let r = load(&images.busybox)?;
    t.add(
        "load busybox oci-archive",
        "exit 0",
        exit_and_why(&r),
        r.code == Some(0),
    );
    if r.code != Some(0) {
        return Ok(());
    }
    let bb = "localhost/busybox";

    let r = p.run(&["--rm", bb, "true"])?;
    t.add(
        "run --rm true",
        "exit 0",
        exit_and_why(&r),
        r.code == Some(0),
    );

    let r = p.run(&["--rm", bb, "sh", "-c", "exit 3"])?;
    t.add(
        "run --rm sh -c 'exit 3'",
        "exit 3",
        r.exit(),
        r.code == Some(3),
    );

    let r = p.run(&["--rm", bb, "sh", "-c", "echo out; echo err >&2"])?;
    let got = format!("{}, stdout {:?}, stderr {:?}", r.exit(), r.stdout, r.stderr);
    // Exactly: the runtime's own warnings must not land in the container's stderr.
    let pass = r.code == Some(0) && r.stdout == "out\n" && r.stderr == "err\n";
    t.add(
        "output captured",
        "stdout \"out\\n\", stderr \"err\\n\"",
        got,
        pass,
    );

    // A terminal: podman's -it needs one on its own stdin, which script(1) provides. What the
    // container wrote is read from `podman logs`: podman 4.3's attach of a container that
    // exits at once loses its output now and then, with any runtime (runc 1.1.5: 5 of 10
    // runs here; podman's tracker has it as a flake), while conmon's log has it every time.
    let r = p.under_script(&p.run_argv(&[
        "--name",
        "tty",
        "-it",
        bb,
        "sh",
        "-c",
        "tty; test -t 0 && test -t 1 && echo is-a-tty",
    ]))?;
    let logs = p.podman(&["logs", "tty"])?;
    let _ = p.podman(&["rm", "tty"]);
    let pass =
        r.code == Some(0) && logs.stdout.contains("is-a-tty") && logs.stdout.contains("/dev/pts/");
    let got = format!(
        "{}, logs {:?} (attached: {:?})",
        r.exit(),
        logs.stdout.trim(),
        r.stdout.trim()
    );
    t.add(
        "run -it (script) sees a tty",
        "exit 0, logs: /dev/pts/N, is-a-tty",
        got,
        pass,
    );

    // Detached: exec, then USR1 to a shell that traps it and exits 10.
    let trap = "trap 'echo got USR1; exit 10' USR1; echo ready; while :; do sleep 0.1; done";
    let r = p.run(&["-d", "--name", "sig", bb, "sh", "-c", trap])?;
    t.add(
        "run -d",
        "exit 0, an id",
        exit_and_why(&r),
        r.code == Some(0),
    );
    if r.code == Some(0) {
        let ready = p.wait_for_log("sig", "ready")?;
        let state = p.podman(&["inspect", "--format", "{{.State.Status}}", "sig"])?;
        t.add(
            "detached is running",
            "running, \"ready\" logged",
            format!("{}, ready logged: {ready}", state.stdout.trim()),
            state.stdout.trim() == "running" && ready,
        );
        if clients::runtime_has_command(runtime, "exec") {
            let r = p.podman(&["exec", "sig", "sh", "-c", "echo in $(hostname); exit 4"])?;
            let got = format!("{}, {:?}", r.exit(), r.stdout.trim());
            t.add(
                "exec",
                "exit 4, \"in HOSTNAME\"",
                got,
                r.code == Some(4) && r.stdout.starts_with("in "),
            );
            let r = p.under_script(&p.argv(&["exec", "-it", "sig", "sh", "-c", "tty"]))?;
            t.add(
                "exec -it (script) sees a tty",
                "exit 0, /dev/pts/N",
                format!("{}, {:?}", r.exit(), r.stdout.trim()),
                r.code == Some(0) && r.stdout.contains("/dev/pts/"),
            );
        } else {
            t.skip(
                "exec",
                "exit 4, \"in HOSTNAME\"",
                format!("{} has no exec command yet", runtime.display()),
            );
        }
        let status = |p: &Podman| -> Result<String> {
            let r = p.podman(&["inspect", "--format", "{{.State.Status}}", "sig"])?;
            Ok(r.stdout.trim().to_string())
        };
        let r = p.podman(&["pause", "sig"])?;
        let paused = status(p)?;
        let u = p.podman(&["unpause", "sig"])?;
        let running = status(p)?;
        t.add(
            "pause, unpause",
            "paused, then running",
            format!(
                "{}, {paused}; {}, {running}",
                exit_and_why(&r),
                exit_and_why(&u)
            ),
            r.code == Some(0) && paused == "paused" && u.code == Some(0) && running == "running",
        );
        let r = p.podman(&["kill", "--signal", "USR1", "sig"])?;
        t.add(
            "kill -s USR1",
            "exit 0",
            exit_and_why(&r),
            r.code == Some(0),
        );
        let w = p.podman(&["wait", "sig"])?;
        let logs = p.podman(&["logs", "sig"])?;
        let got = format!("wait: {:?}, logs {:?}", w.stdout.trim(), logs.stdout.trim());
        t.add(
            "USR1 reached the trap",
            "wait: \"10\", \"got USR1\" logged",
            got,
            w.stdout.trim() == "10" && logs.stdout.contains("got USR1"),
        );
    }

    // stop: SIGTERM honoured.
    let trap = "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done";
    let r = p.run(&["-d", "--name", "term", bb, "sh", "-c", trap])?;
    if r.code == Some(0) && p.wait_for_log("term", "ready")? {
        let r = p.podman(&["stop", "--time", "10", "term"])?;
        let code = p.podman(&["inspect", "--format", "{{.State.ExitCode}}", "term"])?;
        let got = format!(
            "{}, container exit {}, {:.1} s",
            exit_and_why(&r),
            code.stdout.trim(),
            r.elapsed.as_secs_f64()
        );
        let pass = r.code == Some(0) && code.stdout.trim() == "0" && r.elapsed.as_secs() < 5;
        t.add("stop (TERM trapped)", "container exit 0, < 5 s", got, pass);
    } else {
        t.add(
            "stop (TERM trapped)",
            "container exit 0, < 5 s",
            format!("run -d: {}", exit_and_why(&r)),
            false,
        );
    }

    // stop: pid 1 without a handler ignores SIGTERM, so SIGKILL follows after -t.
    let r = p.run(&["-d", "--name", "hang", bb, "sleep", "1000"])?;
    if r.code == Some(0) {
        let r = p.podman(&["stop", "--time", "2", "hang"])?;
        let code = p.podman(&["inspect", "--format", "{{.State.ExitCode}}", "hang"])?;
        let secs = r.elapsed.as_secs_f64();
        let got = format!(
            "{}, container exit {}, {secs:.1} s",
            exit_and_why(&r),
            code.stdout.trim()
        );
        let pass = r.code == Some(0) && code.stdout.trim() == "137" && (2.0..10.0).contains(&secs);
        t.add(
            "stop -t 2 (TERM ignored)",
            "exit 137 after 2-10 s",
            got,
            pass,
        );
    } else {
        t.add(
            "stop -t 2 (TERM ignored)",
            "exit 137 after 2-10 s",
            format!("run -d: {}", exit_and_why(&r)),
            false,
        );
    }

    limit_case(p, bb, &MEMORY, t)?;
    limit_case(p, bb, &PIDS, t)?;

    let parent = format!("/{cgroup_parent}/sub");
    let r = p.run(&["--rm", "--cgroup-parent", &parent, bb, "true"])?;
    t.add(
        "run --cgroup-parent /xtask-podman-PID/sub (not there yet)",
        "exit 0",
        exit_and_why(&r),
        r.code == Some(0),
    );

    if let Some(debian) = &images.debian {
        let r = load(debian)?;
        t.add(
            "load debian oci-archive",
            "exit 0",
            exit_and_why(&r),
            r.code == Some(0),
        );
        if r.code == Some(0) {
            let r = p.run(&[
                "--rm",
                "localhost/debian",
                "bash",
                "-c",
                ". /etc/os-release; echo $VERSION_CODENAME; dpkg-query -W -f '${Version}\\n' dpkg",
            ])?;
            let got = format!("{}, {:?}", exit_and_why(&r), r.stdout.trim());
            let pass = r.code == Some(0) && r.stdout.starts_with("bookworm\n1.21");
            t.add(
                "debian: os-release, dpkg-query",
                "bookworm, dpkg 1.21",
                got,
                pass,
            );
        }
    }
    Ok(())
}

/// A cgroup limit podman passes on: `--memory 64m` (memory, 67108864) or `--pids-limit 2048`
/// (pids). Where the controller is on cgroup v2 the container must see the value in its own
/// group (`memory.max`, `pids.max`). Where cgroup v1 has it (a hybrid host), a runtime with v1
/// support shows it in the v1 file, and one without (contain-oci is cgroup v2 only) must fail
/// the create with an error naming the controller; then the limit must be in the bundle's
/// config.json that podman handed the runtime (`linux.resources`).
struct Limit {
    flag: &'static str,
    value: &'static str,
    controller: &'static str,
    /// The file in the container's own v2 group.
    v2_file: &'static str,
    /// The file in its v1 hierarchy, as runc mounts it.
    v1_file: &'static str,
    /// The number the kernel shows.
    shown: &'static str,
    /// config.json: linux.resources.RESOURCE.FIELD.
    resource: (&'static str, &'static str),
}

const MEMORY: Limit = Limit {
    flag: "--memory",
    value: "64m",
    controller: "memory",
    v2_file: "/sys/fs/cgroup/memory.max",
    v1_file: "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    shown: "67108864",
    resource: ("memory", "limit"),
};

const PIDS: Limit = Limit {
    flag: "--pids-limit",
    value: "2048",
    controller: "pids",
    v2_file: "/sys/fs/cgroup/pids.max",
    v1_file: "/sys/fs/cgroup/pids/pids.max",
    shown: "2048",
    resource: ("pids", "limit"),
};

fn limit_case(p: &Podman, bb: &str, limit: &Limit, t: &mut Table) -> Result<()> {
    let name = format!("{} {}", limit.flag, limit.value);
    if clients::on_v2(limit.controller) {
        let r = p.run(&["--rm", limit.flag, limit.value, bb, "cat", limit.v2_file])?;
        let got = format!("{}, {:?}", exit_and_why(&r), r.stdout.trim());
        let expected = format!("{} {}", limit.v2_file, limit.shown);
        t.add(&name, &expected, got, r.stdout.trim() == limit.shown);
        return Ok(());
    }
    let container = format!("limit-{}", limit.controller);
    let show = format!("cat {} || cat {}", limit.v1_file, limit.v2_file);
    let r = p.run(&[
        "--name",
        &container,
        limit.flag,
        limit.value,
        bb,
        "sh",
        "-c",
        &show,
    ])?;
    let err = r.last_error();
    // A refusal says why and nothing else: podman's `delete --force` after the failed
    // create must not add "does not exist" (runc's is quiet).
    let noise = r.stderr.contains("does not exist");
    let pass = (r.code == Some(0) && r.stdout.trim() == limit.shown)
        || (r.code != Some(0) && err.contains(limit.controller) && !noise);
    let got = if r.code == Some(0) {
        format!("exit 0, {:?}", r.stdout.trim())
    } else if noise {
        format!(
            "{}: {err} (and \"does not exist\" from delete --force)",
            r.exit()
        )
    } else {
        format!("{}: {err}", r.exit())
    };
    t.add(
        &format!("{name} ({} on cgroup v1)", limit.controller),
        &format!(
            "{} inside, or an error naming {}",
            limit.shown, limit.controller
        ),
        got,
        pass,
    );
    if r.code == Some(0) {
        return Ok(());
    }
    let id = p.podman(&["inspect", "--format", "{{.Id}}", &container])?;
    let config = p
        .work
        .join("storage/overlay-containers")
        .join(id.stdout.trim())
        .join("userdata/config.json");
    let value = std::fs::read_to_string(&config)
        .map_err(|e| e.to_string())
        .and_then(|text| crate::json::parse(&text))
        .map(|v| {
            match v
                .get("linux")
                .and_then(|l| l.get("resources"))
                .and_then(|r| r.get(limit.resource.0))
                .and_then(|r| r.get(limit.resource.1))
            {
                Some(crate::json::Value::Number(n)) => n.clone(),
                other => format!("{other:?}"),
            }
        });
    let (got, pass) = match value {
        Ok(n) => (n.clone(), n == limit.shown),
        Err(e) => (format!("{}: {e}", config.display()), false),
    };
    t.add(
        &format!("{name} reaches the runtime's config.json"),
        &format!(
            "linux.resources.{}.{} {}",
            limit.resource.0, limit.resource.1, limit.shown
        ),
        got,
        pass,
    );
    let _ = p.podman(&["rm", "--force", &container]);
    Ok(())
}

/// The cases that need a pure cgroup v2 host, in the project's qemu guest: this xtask runs
/// there again (`--in-guest ARCHIVE`) with podman, conmon, the runtime, the archive and
/// /etc/containers/policy.json copied in; its table is printed as it runs, and its exit
/// status is one row here.
fn vm_cases(runtime: &Path, archive: &Path, t: &mut Table) -> Result<()> {
    let mut files = Vec::new();
    for program in ["podman", "conmon"] {
        match setup::find_program(program) {
            Some(p) => files.push(p),
            None => bail!("{program} not found"),
        }
    }
    let policy = PathBuf::from("/etc/containers/policy.json");
    if policy.is_file() {
        files.push(policy);
    }
    let (got, pass) = clients::in_vm("podman", runtime, archive, files, GUEST_FLAG)?;
    t.add(
        "in the VM (pure cgroup v2): the guest's table above",
        "guest exit 0",
        got,
        pass,
    );
    Ok(())
}

/// The run inside the guest: the busybox archive loaded into a private vfs storage,
/// `run --rm true`, and `--memory 64m` (memory.max seen inside).
fn in_guest(opts: &Options, archive: &Path) -> Result<u8> {
    let Some(runtime) = &opts.runtime else {
        bail!("{GUEST_FLAG} needs --runtime");
    };
    let work = WorkDir::new("podman")?;
    // vfs: no overlay on the guest's initramfs root needed.
    let p = Podman::new(work.path(), runtime, "vfs")?;
    let mut t = Table::default();
    let outcome = (|| -> Result<()> {
        let r = p.podman(&["load", "--input", &archive.to_string_lossy()])?;
        t.add(
            "guest: load busybox",
            "exit 0",
            exit_and_why(&r),
            r.code == Some(0),
        );
        if r.code != Some(0) {
            return Ok(());
        }
        let r = p.run(&["--rm", "localhost/busybox", "true"])?;
        t.add(
            "guest: run --rm true",
            "exit 0",
            exit_and_why(&r),
            r.code == Some(0),
        );
        limit_case(&p, "localhost/busybox", &MEMORY, &mut t)?;
        limit_case(&p, "localhost/busybox", &PIDS, &mut t)
    })();
    p.teardown();
    drop(work);
    clients::remove_cgroups(LIBPOD_PARENT);
    println!("guest: kernel {}", kernel_release());
    print!("{}", t.render());
    outcome?;
    Ok(u8::from(t.failed() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_parse() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let o = parse(&args(&["--runtime", "runc", "--debian", "/d"])).unwrap();
        assert_eq!(o.runtime, Some(PathBuf::from("runc")));
        assert_eq!(o.debian, Some(PathBuf::from("/d")));
        assert!(parse(&args(&["--no-debian"])).unwrap().no_debian);
        assert!(parse(&args(&["--no-vm"])).unwrap().no_vm);
        let g = parse(&args(&["--in-guest", "/a.tar"])).unwrap();
        assert_eq!(g.in_guest, Some(PathBuf::from("/a.tar")));
        assert!(parse(&args(&["--runtime"])).is_err());
        assert!(parse(&args(&["--debian", "/d", "--no-debian"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }
}
