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
/// [`RUN_LIMIT`](super::RUN_LIMIT) (see [`output_within`]).
pub fn output_of(cmd: &mut Command) -> Output {
    output_within(cmd, super::RUN_LIMIT)
}

/// `cmd.output()` within `limit`: a program still running then fails the test with where
/// its threads and its descendants' wait (state, wait channel, kernel stack) and what it
/// wrote so far, and is killed with its descendants; one that exited while something still
/// holds its output open fails it too.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let deadline = Instant::now() + limit;
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
    // What both readers return (each once), waiting at most `grace` past the deadline.
    let collect = |grace: Duration| {
        let mut streams = [None, None];
        let until = deadline.max(Instant::now()) + grace;
        for _ in 0..2 {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok((i, bytes)) => streams[i] = Some(bytes),
                Err(_) => break,
            }
        }
        streams
    };
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
        let (waits, pidfds) = waits_of(child.id());
        // The program and what it started (it may not pass SIGKILL on), through pidfds
        // opened while they were listed.
        for fd in &pidfds {
            let _ = super::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
        let _ = child.wait();
        let [stdout, stderr] = collect(Duration::from_secs(2)).map(Option::unwrap_or_default);
        panic!(
            "{cmd:?} still ran after {limit:?}; killed with its descendants. Where they \
             waited:\n{waits}stdout so far: {}\nstderr so far: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    let status = child.wait().expect("wait");
    match collect(Duration::from_secs(2)) {
        [Some(stdout), Some(stderr)] => Output {
            status,
            stdout,
            stderr,
        },
        _ => panic!(
            "{cmd:?} exited ({status}), but something it started still held its stdout or \
             stderr open {limit:?} after it started"
        ),
    }
}

/// Every thread of `pid` and of its descendants: `pid/tid state wchan comm`, then its kernel
/// stack (for a test that failed on a hang); and a pidfd for each process listed.
pub fn waits_of(pid: u32) -> (String, Vec<std::os::fd::OwnedFd>) {
    let mut text = String::new();
    let mut pidfds = Vec::new();
    let mut todo = vec![pid];
    while let Some(pid) = todo.pop() {
        // Pinned first: what is listed below is this process, not a later one with its pid.
        let Ok(pidfd) = super::pidfd_open_live(pid as i32) else {
            continue;
        };
        pidfds.push(pidfd);
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
    (text, pidfds)
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
