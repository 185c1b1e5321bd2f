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
    let o = run(&["--ns", "user,mount", "--", "sh", "-c", "kill -KILL $$"]);
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
