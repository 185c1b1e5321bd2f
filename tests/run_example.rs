//! The `run` example from outside, as a user runs it: exit codes, signals, limits, stats.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::is_root;

/// The example built next to this test binary (`cargo test` builds the examples).
fn run_example() -> Command {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples/run");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example run`",
        path.display()
    );
    Command::new(path)
}

fn run(args: &[&str]) -> Output {
    run_example().args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

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
    assert_eq!(
        code(&run(&["--workdir", "/nonexistent", "--", "true"])),
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
        .args(["--init", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) of our own child by pid; it has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
}

#[test]
fn limits_on_a_host_without_the_controller_fail_with_125() {
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
    let host = contain::cgroup::HostCgroups::detect().unwrap();
    match host.check(contain::cgroup::Controller::Memory) {
        Err(e) => {
            assert_eq!(code(&o), 125, "{err}");
            assert!(err.contains(&e.to_string()), "the library's message: {err}");
        }
        Ok(()) if is_root("limits (OOM part)") => {
            assert_eq!(code(&o), 137, "{err}");
            assert!(err.contains("oom_kill=1"), "{err}");
        }
        Ok(()) => {}
    }
}

#[test]
fn stats_line_reports_cpu_time() {
    if !is_root("stats_line_reports_cpu_time") {
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
    let cpu: f64 = err
        .split("cpu=")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|v| v.parse().ok())
        .expect("cpu= in the stats line");
    assert!(cpu > 0.0, "{err}");
}

/// Reads from `fd` until `want` shows up (or 10 s pass); returns everything read.
fn read_until(fd: &std::os::fd::OwnedFd, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(want) && std::time::Instant::now() < deadline {
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(fd),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(200u8)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
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
            "tty; stty size; echo hi >/dev/tty; read x; echo got:$x; sleep 0.5; stty size",
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
    // Input reaches the container's terminal; a resize of ours reaches it too.
    nix::unistd::write(&pty.master, b"hello\n").unwrap();
    let bigger = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    contain::process::set_window_size(std::os::fd::AsFd::as_fd(&slave), &bigger).unwrap();
    // SAFETY: kill(2) of our own child by pid (a terminal we do not control sends no SIGWINCH).
    unsafe { libc::kill(example.id() as i32, libc::SIGWINCH) };
    let rest = read_until(&pty.master, "40 100");
    assert!(rest.contains("got:hello"), "{rest:?}");
    assert!(rest.contains("40 100"), "resize passed on: {rest:?}");
    assert_eq!(example.wait().unwrap().code(), Some(0));
    let t = nix::sys::termios::tcgetattr(&slave).unwrap();
    assert!(
        t.local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON),
        "our terminal is restored"
    );
}

/// The example in a network namespace of its own, which plays the host for veth tests (no
/// link ever appears in the real host's namespace).
fn run_in_own_netns(args: &[&str]) -> Output {
    let mut cmd = run_example();
    cmd.args(args);
    // SAFETY: pre_exec runs in the forked child and only makes a syscall.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    cmd.output().unwrap()
}

#[test]
fn net_none_host_and_veth() {
    if !is_root("net_none_host_and_veth") {
        return;
    }
    let o = run_in_own_netns(&["--", "ip", "-o", "link"]);
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
        "--net", "veth", "--", "ip", "-o", "-4", "addr", "show", "eth0",
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
    std::fs::copy(run_example().get_program(), &exe).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new(&exe);
        cmd.args(args).current_dir("/");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        loop {
            match cmd.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                r => break r.unwrap(),
            }
        }
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
}
