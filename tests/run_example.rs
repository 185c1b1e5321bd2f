//! The `run` example from outside, as a user runs it: exit codes, signals, limits, stats.

mod common;

use std::process::{Command, Stdio};

use common::busybox::busybox_path;
use common::is_root;
use common::run::{code, read_until, run, run_example, run_in_own_netns};
use contain::cgroup::{Controller, HostCgroups};

#[test]
fn exit_codes_follow_docker_run() {
    assert_eq!(code(&run(&["--", "sh", "-c", "exit 3"])), 3);
    let o = run(&["--", "no-such-command"]);
    assert_eq!(code(&o), 127);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    assert_eq!(code(&run(&["--", "/etc"])), 126);
    let o = run(&["--ns", "bogus", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert_eq!(code(&run(&["--user", "x", "--", "true"])), 125);
    // A missing working directory is created (as docker), except in a read-only root.
    assert_eq!(
        code(&run(&[
            "--read-only",
            "--workdir",
            "/nonexistent",
            "--",
            "true"
        ])),
        125
    );
    let o = run(&["--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(
        code(&o),
        0,
        "PID 1 cannot be killed by its own SIGKILL inside its namespace"
    );
    let o = run(&[
        "--ns",
        "user,mount",
        "--no-rootfs",
        "--",
        "sh",
        "-c",
        "kill -KILL $$",
    ]);
    assert_eq!(code(&o), 137);
}

#[test]
fn sigterm_to_the_example_ends_the_container_with_143() {
    if !is_root("sigterm_to_the_example_ends_the_container_with_143") {
        return;
    }
    let mut child = run_example()
        .args(["--init", "--", "sh", "-c", "echo ready; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The example blocks SIGTERM before it spawns: once the container speaks, a SIGTERM
    // reaches it through the example.
    let stdout = child.stdout.take().unwrap();
    let said = read_until(&stdout, "ready\n");
    if !said.contains("ready\n") {
        let _ = child.kill();
        panic!("the container did not say ready within 10 s: {said:?}");
    }
    // SAFETY: kill(2) of our own child by pid; it has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
}

/// What the host can do with a memory limit, decided by probing it as the library does:
/// `Err(reason)` when cgroup v2 offers no memory controller.
fn memory_controller() -> Result<(), String> {
    let host = HostCgroups::detect().unwrap();
    host.check(Controller::Memory).map_err(|e| e.to_string())
}

#[test]
fn memory_limit_ooms_where_the_host_has_the_controller_else_fails_with_125() {
    let o = run(&[
        "--memory",
        "32M",
        "--memory-swap",
        "32M",
        "--stats",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    match memory_controller() {
        Err(why) => {
            // Rootless or not: no controller, no limit; the example says why.
            assert_eq!(code(&o), 125, "{err}");
            assert!(err.contains(&why), "the library's message ({why}): {err}");
        }
        Ok(()) if nix::unistd::geteuid().is_root() => {
            // As root, a limit works out of the box wherever the host has the controller,
            // whichever cgroup this test runs in.
            assert_eq!(code(&o), 137, "{err}");
            assert!(err.contains("oom_kill=1"), "{err}");
        }
        Ok(()) => {
            // Rootless, a limit needs a delegated cgroup: it either works or fails saying so.
            match code(&o) {
                137 => assert!(err.contains("oom_kill=1"), "{err}"),
                125 => assert!(err.contains("contain:") && err.len() > 20, "{err}"),
                other => panic!("exit {other}, expected 137 or 125: {err}"),
            }
        }
    }
}

#[test]
fn stats_line_reports_cpu_time() {
    if !is_root("stats_line_reports_cpu_time") {
        return;
    }
    // --stats puts the container into a cgroup of its own (no controller needed), which
    // needs cgroup v2; as root that works out of the box wherever the host has it.
    let host = HostCgroups::detect().unwrap();
    if let Err(e) = host.v2_mount() {
        let o = run(&["--stats", "--", "true"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 125, "{err}");
        assert!(
            err.contains(&e.to_string()),
            "the library's message ({e}): {err}"
        );
        return;
    }
    let o = run(&[
        "--stats",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    let cpu = stats_cpu(&err);
    assert!(cpu > 0.0, "{err}");
}

#[test]
fn tty_gives_a_controlling_terminal_relayed_in_raw_mode_with_resizes() {
    let size = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 77,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // Our terminal, as a person's would be: the example's stdin/stdout/stderr.
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut example = run_example()
        .args([
            "-t",
            "--",
            "sh",
            "-c",
            // The resize's SIGWINCH runs the trap: in `wait`, or right after the line.
            "trap 'stty size; kill $! 2>/dev/null; exit 0' WINCH; \
             tty; stty size; echo hi >/dev/tty; read x; echo got:$x; sleep 30 & wait",
        ])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    let first = read_until(&pty.master, "hi");
    assert!(first.contains("/dev/pts/"), "tty inside: {first:?}");
    assert!(
        first.contains("33 77"),
        "the container starts with our size: {first:?}"
    );
    // Our terminal is in raw mode while the relay runs.
    let t = nix::sys::termios::tcgetattr(&slave).unwrap();
    assert!(
        !t.local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON),
        "raw mode"
    );
    // Input reaches the container's terminal; a resize of ours reaches it too, once the
    // container has read the line (a signal during `read` would cut it short).
    nix::unistd::write(&pty.master, b"hello\n").unwrap();
    let got = read_until(&pty.master, "got:hello");
    assert!(got.contains("got:hello"), "{got:?}");
    let bigger = contain::process::WindowSize {
        rows: 40,
        cols: 100,
    };
    contain::process::set_window_size(std::os::fd::AsFd::as_fd(&slave), bigger).unwrap();
    // SAFETY: kill(2) of our own child by pid (a terminal we do not control sends no SIGWINCH).
    unsafe { libc::kill(example.id() as i32, libc::SIGWINCH) };
    let rest = read_until(&pty.master, "40 100");
    assert!(rest.contains("40 100"), "resize passed on: {rest:?}");
    assert_eq!(example.wait().unwrap().code(), Some(0));
    let t = nix::sys::termios::tcgetattr(&slave).unwrap();
    assert!(
        t.local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON),
        "our terminal is restored"
    );
}

#[test]
fn net_none_host_and_veth() {
    if !is_root("net_none_host_and_veth") {
        return;
    }
    // busybox's ip, through the example's read-only view of the host: no iproute2 needed.
    let bb = busybox_path().to_str().unwrap();
    let o = run_in_own_netns(&["--", bb, "ip", "-o", "link"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(text.lines().count(), 1, "only lo: {text}");
    assert!(text.contains("lo:") && text.contains("UP"), "{text}");

    let o = run(&["--net", "host", "--", "cat", "/proc/self/net/dev"]);
    let host_dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        host_dev.lines().count()
    );

    let o = run_in_own_netns(&[
        "--net", "veth", "--", bb, "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(text.contains("inet 10.200."), "{text}");
    let o = run_in_own_netns(&[
        "--net",
        "veth",
        "--veth-addr",
        "10.88.0.2/30",
        "--",
        bb,
        "ip",
        "-o",
        "-4",
        "route",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("default via 10.88.0.1 dev eth0"), "{text}");
    let o = run(&["--net", "veth", "--veth-addr", "not-a-cidr", "--", "true"]);
    assert_eq!(code(&o), 125);
}

#[test]
fn rootless_runs_and_says_what_it_cannot_do() {
    if !is_root("rootless_runs_and_says_what_it_cannot_do") {
        return;
    }
    // A copy nobody can reach, whatever the permissions of the build directory.
    let dir = common::TempDir::new("run-nobody");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let exe = dir.path().join("run");
    common::copy_executable(std::path::Path::new(run_example().get_program()), &exe);
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new(&exe);
        cmd.args(args).current_dir("/");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        cmd.output().unwrap()
    };
    let o = as_nobody(&["--", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(out.starts_with("0\n") && out.contains("65534"), "{out}");
    let o = as_nobody(&["--net", "veth", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 125, "{err}");
    assert!(
        err.contains("veth") && err.contains("root"),
        "says what to do: {err}"
    );
    // No cgroup for nobody here: with --limits-best-effort it runs, says what it skipped,
    // and --stats comes from waitid's rusage (no peak memory: maxrss is no such figure).
    let o = as_nobody(&[
        "--stats",
        "--limits-best-effort",
        "--pids",
        "64",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("pids.max=64 not applied"), "{err}");
    let cpu = stats_cpu(&err);
    assert!(cpu > 0.0 && err.contains("peak_memory=n/a"), "{err}");
    // --stats alone asks for no limit: it runs without a cgroup, silently.
    let o = as_nobody(&["--stats", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.starts_with("contain: stats: ") && !err.contains("warning"),
        "{err}"
    );
}

#[test]
fn as_root_any_uid_and_gid_work_as_with_docker() {
    if !is_root("as_root_any_uid_and_gid_work_as_with_docker") {
        return;
    }
    // An OpenShift-style uid and a gid above 65535 (the map once stopped there).
    let o = run(&["-u", "1000680000:70000", "--", "sh", "-c", "id -u; id -g"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1000680000\n70000\n");
}

#[test]
fn net_host_as_root_has_no_user_namespace_and_binds_port_80() {
    if !is_root("net_host_as_root_has_no_user_namespace_and_binds_port_80") {
        return;
    }
    // The "host" is a network namespace of the test's own (owned by the initial user
    // namespace, as the real host's is), so no listener ever appears on the real host.
    // busybox nc: bound, it waits 1 s for a client and says "timed out"; refused, it says
    // "Permission denied" at once.
    let bb = busybox_path().to_str().unwrap();
    let script = format!("cat /proc/self/uid_map; {bb} nc -l -p 80 -w 1");
    let o = run_in_own_netns(&["--net", "host", "--", "sh", "-c", &script]);
    let err = String::from_utf8_lossy(&o.stderr);
    let map: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        map,
        ["0", "0", "4294967295"],
        "the initial user namespace: {o:?}"
    );
    assert!(
        err.contains("timed out") && !err.contains("denied"),
        "root binds port 80 in the host's network: {o:?}"
    );
    // With a user namespace asked for, root inside has no privilege over the host's
    // network namespace: what the --net docs say it costs.
    for extra in [&["--rootless"][..], &["--ns", "user,mount,pid,uts,ipc"]] {
        let mut args = vec!["--net", "host"];
        args.extend_from_slice(extra);
        args.extend(["--", bb, "nc", "-l", "-p", "80", "-w", "1"]);
        let o = run_in_own_netns(&args);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{extra:?}: {o:?}"
        );
    }
}

/// The CPU seconds of the run example's `--stats` line (`cpu=0.123s`) on `stderr`.
fn stats_cpu(stderr: &str) -> f64 {
    stderr
        .split("cpu=")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no cpu= in the stats line: {stderr}"))
}
