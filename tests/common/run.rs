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

/// Runs the example with `args` and collects its output (see [`output_of`]).
pub fn run(args: &[&str]) -> Output {
    output_of(run_example().args(args))
}

/// `cmd.output()` (stdin from /dev/null, stdout and stderr collected) within
/// [`RUN_LIMIT`](super::RUN_LIMIT): a program still running then, or whose output something
/// still holds open, fails the test with where its threads wait (state, wait channel,
/// kernel stack), and the program is killed.
pub fn output_of(cmd: &mut Command) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let deadline = Instant::now() + super::RUN_LIMIT;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, mut pipe) in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send((i, bytes));
        });
    }
    let pidfd = super::pidfd_open(child.id() as i32);
    let mut pfd = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    // poll takes at most u16::MAX ms here (65 s): wait in turns up to the deadline.
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
            Err(nix::errno::Errno::EINTR) | Ok(0) => continue,
            r => break r.expect("poll(pidfd)") > 0,
        }
    };
    if !ended {
        let (waits, pids) = waits_of(child.id());
        // The program and what it started (it may not pass SIGKILL on).
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        panic!(
            "{cmd:?} still ran after {:?}; killed with its descendants. Where they waited:\n{waits}",
            super::RUN_LIMIT
        );
    }
    let status = child.wait().expect("wait");
    let mut streams = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, bytes)) => streams[i] = bytes,
            Err(_) => panic!(
                "{cmd:?} exited ({status}), but something still held its stdout or stderr \
                 open after {:?}",
                super::RUN_LIMIT
            ),
        }
    }
    let [stdout, stderr] = streams;
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Every thread of `pid` and of its descendants: `pid/tid state wchan comm`, then its kernel
/// stack (for a test that failed on a hang); and the pids seen.
fn waits_of(pid: u32) -> (String, Vec<u32>) {
    let mut text = String::new();
    let mut seen = Vec::new();
    let mut todo = vec![pid];
    while let Some(pid) = todo.pop() {
        seen.push(pid);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.filter_map(|t| t.ok()) {
            let dir = task.path();
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let state = read("status")
                .lines()
                .find_map(|l| l.strip_prefix("State:").map(|s| s.trim().to_string()))
                .unwrap_or_default();
            text.push_str(&format!(
                "  {pid}/{} {state} {} {}\n",
                task.file_name().to_string_lossy(),
                read("wchan"),
                read("comm").trim()
            ));
            for frame in read("stack").lines() {
                text.push_str(&format!("      {frame}\n"));
            }
            todo.extend(
                read("children")
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    (text, seen)
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
    output_of(&mut cmd)
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
