//! The optional PID-1 init: zombies reaped, signals forwarded, the payload's status passed on;
//! and what a payload that is PID 1 itself gets instead, as the docs say.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::{is_root, output, pidfd_open, role, stdout};
use contain::namespace::Namespaces;
use contain::process::{Container, Stdio};
use contain::Signal;
use contain::{Error, SetupStage};
use nix::poll::PollFlags;

/// Zombies whose parent is `pid`, from the host's /proc.
fn zombie_children(pid: i32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let rest: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            rest.first() == Some(&"Z") && rest.get(1) == Some(&pid.to_string().as_str())
        })
        .count()
}

/// The `orphan-maker` role, the container's payload: makes an orphan (a grandchild whose
/// parent has exited, so that the namespace's PID 1 is its parent now) that waits to be
/// killed, prints `orphan=<its pid in the namespace>`, and then never waits for anything:
/// it parks until the test kills the container.
fn make_an_orphan() {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the children only make async-signal-safe calls (fork, read, write, _exit) on
    // memory prepared before the fork.
    let middle = unsafe { libc::fork() };
    assert!(middle >= 0, "fork");
    if middle == 0 {
        // SAFETY: as above.
        unsafe {
            let orphan = libc::fork();
            if orphan == 0 {
                loop {
                    libc::pause();
                }
            }
            let bytes = orphan.to_ne_bytes();
            libc::write(w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    drop(w);
    let mut status = 0;
    // SAFETY: waitpid(2) for our own child, by pid: nothing else is reaped.
    assert_eq!(unsafe { libc::waitpid(middle, &mut status, 0) }, middle);
    let mut bytes = [0u8; 4];
    std::fs::File::from(r).read_exact(&mut bytes).unwrap();
    let orphan = i32::from_ne_bytes(bytes);
    assert!(orphan > 0, "the middle child could not fork");
    println!("orphan={orphan}");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

/// `/proc/<pid>/status` field `name`, split into words.
fn status_field(pid: i32, name: &str) -> Vec<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The host pid of the process that is `ns_pid` in the pid namespace of host pid `member`
/// (a child of PID 1 there, or PID 1 itself).
fn host_pid(member: i32, ns_pid: i32) -> i32 {
    let in_ns = |pid: i32| status_field(pid, "NSpid").last() == Some(&ns_pid);
    let ns = std::fs::read_link(format!("/proc/{member}/ns/pid")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            in_ns(pid) && std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns)
        })
        .unwrap_or_else(|| panic!("no process {ns_pid} in the namespace of {member}"))
}

/// poll(2) on `fd` for `events` (empty: only POLLHUP and POLLERR), at most `limit`; what
/// happened (empty when the time ran out).
fn poll_for(fd: impl AsFd, events: PollFlags, limit: Duration) -> PollFlags {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut pfd = [nix::poll::PollFd::new(fd.as_fd(), events)];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return PollFlags::empty(),
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return pfd[0].revents().unwrap_or(PollFlags::empty()),
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Whether this kernel says POLLHUP on the pidfd of a reaped process (6.9 and later): a
/// child of ours, reaped, is looked at.
fn pidfd_hangs_up_when_reaped() -> bool {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let fd = pidfd_open(child.id() as i32);
    child.wait().unwrap();
    poll_for(&fd, PollFlags::empty(), Duration::ZERO).contains(PollFlags::POLLHUP)
}

/// Waits until the process behind `fd`, which has exited, has been reaped by its parent, at
/// most 10 s; false if it is still a zombie then. Where the kernel reports a reap on the pidfd
/// this is one wait on that event; older kernels (6.1) report none, so there the pid is
/// looked at until it is gone (yielding, no sleep).
fn reaped_within_10_s(fd: &OwnedFd) -> bool {
    let limit = Duration::from_secs(10);
    if pidfd_hangs_up_when_reaped() {
        return poll_for(fd, PollFlags::empty(), limit).contains(PollFlags::POLLHUP);
    }
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: pidfd_send_signal(2) with signal 0 only checks that the process exists.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), 0, 0, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Reads lines of the container's stdout until one contains `want`, at most 10 s in all;
/// returns that line.
fn line_with(out: &mut BufReader<std::fs::File>, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    loop {
        if out.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = poll_for(out.get_ref(), PollFlags::POLLIN, left);
            assert!(!ready.is_empty(), "no {want:?} within 10 s; got {seen:?}");
        }
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "no {want:?}; got {seen:?}"
        );
        if line.contains(want) {
            return line;
        }
        seen.push_str(&line);
    }
}

fn stdout_reader(child: &mut contain::process::Child) -> BufReader<std::fs::File> {
    let out = child.stdout.take().expect("piped stdout");
    BufReader::new(std::fs::File::from(OwnedFd::from(out)))
}

#[test]
fn init_reaps_orphans_and_pid_1_without_it_does_not() {
    const TEST: &str = "init_reaps_orphans_and_pid_1_without_it_does_not";
    if role().as_deref() == Some("orphan-maker") {
        make_an_orphan();
        return;
    }
    if role().is_some() || !is_root(TEST) {
        return;
    }
    for init in [false, true] {
        let mut child = Container::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env("CONTAIN_TEST_ROLE", "orphan-maker")
            .namespaces(Namespaces::PID)
            .init(init)
            .stdout(Stdio::Piped)
            .spawn()
            .unwrap();
        let mut out = stdout_reader(&mut child);
        // libtest may print "test NAME ... " on the same line first.
        let line = line_with(&mut out, "orphan=");
        let ns_pid: i32 = line
            .trim()
            .rsplit("orphan=")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let orphan = host_pid(child.pid().raw(), ns_pid);
        let pid1 = host_pid(child.pid().raw(), 1);
        assert_eq!(
            status_field(orphan, "PPid"),
            [pid1],
            "PID 1 adopted the orphan"
        );
        let orphan_fd = pidfd_open(orphan);
        // SAFETY: pidfd_send_signal(2) on a pidfd we hold, to a process this test started.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                orphan_fd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            )
        };
        assert_eq!(r, 0, "kill the orphan: {}", std::io::Error::last_os_error());
        let exited = poll_for(&orphan_fd, PollFlags::POLLIN, Duration::from_secs(10));
        assert!(!exited.is_empty(), "the orphan did not exit within 10 s");
        if init {
            assert!(
                reaped_within_10_s(&orphan_fd),
                "the init must reap the orphan"
            );
            assert_eq!(zombie_children(pid1), 0);
        } else {
            // The maker is PID 1 and never waits: the zombie stays as long as it lives.
            assert_eq!(
                zombie_children(pid1),
                1,
                "as documented, a PID 1 that never waits keeps the orphan as a zombie"
            );
        }
        child.kill(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn init_forwards_sigterm_and_pid_1_without_it_ignores_it() {
    if !is_root("init_forwards_sigterm_and_pid_1_without_it_ignores_it") {
        return;
    }
    // Once the payload speaks, the init runs and has started it: a SIGTERM now is the
    // init's to forward.
    let mut with = Container::new("sh")
        .args(["-c", "echo ready; exec sleep 30"])
        .namespaces(Namespaces::PID)
        .init(true)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    line_with(&mut stdout_reader(&mut with), "ready");
    with.kill(Signal::SIGTERM).unwrap();
    let st = with.wait().unwrap();
    assert_eq!((st.code(), st.shell_code()), (Some(143), 143), "{st}");

    // A SIGTERM that would end PID 1 has ended it (or doomed it) when kill(2) returns; so if
    // it still answers a line after the signal, it ignored the signal.
    let mut without = Container::new("sh")
        .args(["-c", "echo ready; read x; echo alive:$x; exec sleep 30"])
        .namespaces(Namespaces::PID)
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut out = stdout_reader(&mut without);
    line_with(&mut out, "ready");
    without.kill(Signal::SIGTERM).unwrap();
    let mut stdin = without.stdin.take().unwrap();
    writeln!(stdin, "still").unwrap();
    let line = line_with(&mut out, "alive:");
    assert_eq!(
        line.trim(),
        "alive:still",
        "PID 1 without a handler ignores SIGTERM"
    );
    assert_eq!(without.try_wait().unwrap(), None);
    without.kill(Signal::SIGKILL).unwrap();
    assert_eq!(without.wait().unwrap().signal(), Some(Signal::SIGKILL));
}

#[test]
fn init_passes_the_status_on_and_is_pid_1() {
    if !is_root("init_passes_the_status_on_and_is_pid_1") {
        return;
    }
    let o = output(
        Container::new("sh")
            .args(["-c", "echo $$ $PPID; exit 5"])
            .namespaces(Namespaces::PID)
            .init(true),
    );
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(stdout(&o), "2 1", "the payload is PID 2, child of the init");
    let e = Container::new("/nonexistent")
        .namespaces(Namespaces::PID)
        .init(true)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                ..
            }
        ),
        "{e}"
    );
    let e = Container::new("true").init(true).spawn().unwrap_err();
    assert!(matches!(e, Error::Config { what: "init", .. }), "{e}");
}

#[test]
fn a_passed_descriptor_may_take_the_init_program_s_number() {
    if !is_root("a_passed_descriptor_may_take_the_init_program_s_number") {
        return;
    }
    // The program's memfd is made at the first spawn with an init and stays open.
    let o = output(
        Container::new("true")
            .namespaces(Namespaces::PID)
            .init(true),
    );
    assert!(o.status.success(), "{o:?}");
    let memfd = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:contain-init"))
        })
        .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .expect("the init's memfd is open");
    // A descriptor passed at that number lands there, and the init still starts.
    let (read, write) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&write, b"through the pipe\n").unwrap();
    drop(write);
    let o = output(
        Container::new("sh")
            .args(["-c", &format!("echo $$; cat /proc/self/fd/{memfd}")])
            .namespaces(Namespaces::PID)
            .init(true)
            .pass_fd(read, memfd),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "2\nthrough the pipe");
}
