//! Driving the `run` example from outside, as a user runs it.

use std::os::fd::AsFd;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The example built next to this test binary (`cargo test` builds the examples).
pub fn run_example() -> Command {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples/run");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example run`",
        path.display()
    );
    Command::new(path)
}

/// Runs the example with `args` and collects its output.
pub fn run(args: &[&str]) -> Output {
    run_example().args(args).output().unwrap()
}

/// The exit code (-1 when a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The example in a network namespace of its own, which plays the host for veth tests (no
/// link ever appears in the real host's namespace).
pub fn run_in_own_netns(args: &[&str]) -> Output {
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

/// Reads from `fd` until `want` shows up (or 10 s pass); returns everything read.
pub fn read_until(fd: &impl AsFd, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}
