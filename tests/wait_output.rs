//! Waiting with a timeout, killing at a deadline, output with usage (issue 10, parts 1 and 2):
//! `Child::wait_timeout`, `Child::wait_with_output_timeout`, the pidfd in a caller's own
//! poll loop, and `Output::usage` from waitid's rusage (rootless too) and the child's cgroup.
//!
//! Nothing waits by sleeping: children say they started on a pipe. The timeouts below are
//! what is under test (short ones against `sleep 1000`), never a guess of how long something
//! takes.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::run::read_until;
use common::{is_root, pidfd_open, role};
use contain::cgroup::{CgroupBuilder, HostCgroups, Resources};
use contain::namespace::Namespaces;
use contain::process::{Child, Container, Stdio};
use contain::Signal;

/// Whether the process behind `pidfd` has exited (its pidfd is readable), without waiting.
fn has_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap() == 1
}

/// Kills a leftover process of a failed test through its pidfd (never by pid).
struct KillOnDrop(OwnedFd);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: pidfd_send_signal on a pidfd we own, with a null siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                libc::SIGKILL,
                0usize,
                0,
            )
        };
    }
}

/// The host pids of `child`'s children (`/proc/PID/task/PID/children`).
fn children_of(child: &Child) -> Vec<i32> {
    let pid = child.id();
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// A cgroup v2 parent of ours for `cgroup_parent` (removed on drop), or `None` (with the
/// reason printed) where there is no writable cgroup v2 hierarchy.
fn cgroup_parent(test: &str) -> Option<contain::cgroup::OwnedCgroup> {
    if !is_root(test) {
        return None;
    }
    if HostCgroups::detect().ok()?.v2_mount().is_err() {
        common::skip(test, "no cgroup v2 hierarchy here");
        return None;
    }
    let name = format!("contain-test-wait-{}", std::process::id());
    match CgroupBuilder::new(name).create_in_default() {
        Ok(cg) => Some(cg),
        Err(e) => {
            common::skip(test, &format!("cannot make a cgroup here: {e}"));
            None
        }
    }
}

#[test]
fn wait_timeout_is_none_while_sleep_runs_and_the_status_once_it_ended() {
    let mut child = Container::new("sh")
        .args(["-c", "echo up; exec sleep 1000"])
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(read_until(child.stdout.as_ref().unwrap(), "up").contains("up"));
    let start = Instant::now();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Left untouched: still running, and a zero timeout is try_wait.
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(child.try_wait().unwrap(), None);
    assert!(!has_exited(&pidfd_open(child.pid().raw())));
    child.kill(Signal::SIGKILL).unwrap();
    let status = child.wait_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(status.and_then(|s| s.signal()), Some(Signal::SIGKILL));
    // Reaped: asking again gives the same status at once.
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), status);
}

/// Signals that interrupt the poll (EINTR) neither end the wait early nor start the timeout
/// over: the wait goes on with the time that is left.
#[test]
fn wait_timeout_resumes_after_a_signal_with_the_time_left() {
    use std::sync::atomic::{AtomicBool, Ordering};
    extern "C" fn nothing(_: libc::c_int) {}
    // A handler (without SA_RESTART, which poll ignores anyway), so that SIGUSR1 interrupts
    // the poll instead of ending the test process.
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(nothing),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGUSR1, &action) }.unwrap();
    let mut child = Container::new("sh")
        .args(["-c", "echo up; exec sleep 1000"])
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(read_until(child.stdout.as_ref().unwrap(), "up").contains("up"));
    // SAFETY: pthread_self has no preconditions.
    let waiter = unsafe { libc::pthread_self() } as usize;
    let done = AtomicBool::new(false);
    let (start, status) = std::thread::scope(|s| {
        s.spawn(|| {
            // Signals every 20 ms for at most 3 s: a wait that started over at each one would
            // end after those 3 s, not after its 300 ms.
            let until = Instant::now() + Duration::from_secs(3);
            while !done.load(Ordering::Relaxed) && Instant::now() < until {
                // SAFETY: the waiting thread outlives this scope.
                unsafe { libc::pthread_kill(waiter as libc::pthread_t, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(20)); // the pace of the signals
            }
        });
        let start = Instant::now();
        let status = child.wait_timeout(Duration::from_millis(300));
        done.store(true, Ordering::Relaxed);
        (start, status)
    });
    let took = start.elapsed();
    assert_eq!(status.unwrap(), None);
    assert!(took >= Duration::from_millis(300), "ended early: {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the timeout started over: {took:?}"
    );
}

#[test]
fn wait_timeout_returns_the_exit_status_as_soon_as_the_child_exits() {
    let mut child = Container::new("sh")
        .args(["-c", "read x; exit 3"])
        .stdin(Stdio::Piped)
        .spawn()
        .unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let start = Instant::now();
    let status = child.wait_timeout(Duration::from_secs(600)).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(3));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "it waited for the timeout"
    );
}

/// The pidfd in a caller's own event loop: not readable while the child runs, readable once
/// it exits, and then `try_wait` reaps it without blocking.
#[test]
fn the_pidfd_becomes_readable_when_the_child_exits() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut child = Container::new("sh")
        .args(["-c", "read x; exit 7"])
        .stdin(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut fds = [PollFd::new(child.pidfd(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut fds, PollTimeout::ZERO).unwrap(),
        0,
        "it blocks in read"
    );
    drop(child.stdin.take()); // EOF: `read` fails, the shell exits 7.
    let mut fds = [PollFd::new(child.pidfd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(60_000u16)) {
            Ok(n) => {
                assert_eq!(n, 1, "the pidfd did not become readable in 60 s");
                break;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
    }
    assert!(fds[0].revents().unwrap().contains(PollFlags::POLLIN));
    let status = child.try_wait().unwrap().expect("readable means exited");
    assert_eq!(status.code(), Some(7));
}

/// The deadline ends the whole container, a grandchild in its PID namespace included, and
/// the output says so, with what was written before.
#[test]
fn the_deadline_kills_every_process_of_the_pid_namespace() {
    if !is_root("the_deadline_kills_every_process_of_the_pid_namespace") {
        return;
    }
    let child = Container::new("sh")
        .args(["-c", "echo partial; sleep 1000 & echo up >&2; wait"])
        .namespaces(Namespaces::PID)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(read_until(child.stderr.as_ref().unwrap(), "up").contains("up"));
    let grandchildren: Vec<KillOnDrop> = children_of(&child)
        .into_iter()
        .map(|p| KillOnDrop(pidfd_open(p)))
        .collect();
    assert_eq!(grandchildren.len(), 1, "sleep runs as the shell's child");
    let start = Instant::now();
    let out = child
        .wait_with_output_timeout(Duration::from_millis(300))
        .unwrap();
    assert!(out.timed_out, "{out:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(out.status.signal(), Some(Signal::SIGKILL), "{}", out.status);
    assert_eq!(out.stdout, b"partial\n");
    for g in &grandchildren {
        assert!(has_exited(&g.0), "the grandchild outlived the deadline");
    }
    assert!(out.usage.rusage.is_some(), "{:?}", out.usage);
}

/// With a cgroup of its own (and no PID namespace), the deadline kills through the cgroup,
/// so a background process goes too; the output carries the cgroup's usage.
#[test]
fn the_deadline_kills_the_cgroup_of_a_container_without_a_pid_namespace() {
    let test = "the_deadline_kills_the_cgroup_of_a_container_without_a_pid_namespace";
    let Some(parent) = cgroup_parent(test) else {
        return;
    };
    let child = Container::new("sh")
        .args(["-c", "sleep 1000 & echo up >&2; wait"])
        .resources(Resources::default())
        .cgroup_parent(parent.path())
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(read_until(child.stderr.as_ref().unwrap(), "up").contains("up"));
    let grandchildren: Vec<KillOnDrop> = children_of(&child)
        .into_iter()
        .map(|p| KillOnDrop(pidfd_open(p)))
        .collect();
    assert_eq!(grandchildren.len(), 1);
    let out = child
        .wait_with_output_timeout(Duration::from_millis(300))
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.status.signal(), Some(Signal::SIGKILL), "{}", out.status);
    for g in &grandchildren {
        assert!(
            has_exited(&g.0),
            "the background sleep outlived the deadline"
        );
    }
    assert!(out.usage.cgroup.is_some(), "{:?}", out.usage);
    assert!(
        parent.children().unwrap().is_empty(),
        "the cgroup went with the child"
    );
}

/// Without a PID namespace or a cgroup, a background process that keeps the output open
/// outlives the child: the deadline still ends the wait (it does not wait for an EOF that
/// never comes), with the child's own status.
#[test]
fn the_deadline_ends_the_wait_when_an_escaped_process_holds_the_output() {
    let child = Container::new("sh")
        .args(["-c", "sleep 1000 & echo $! >&2; read x; exit 5"])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap();
    let pid = read_until(child.stderr.as_ref().unwrap(), "\n");
    let escaped = KillOnDrop(pidfd_open(pid.trim().parse().unwrap()));
    // Closes stdin: `read` fails and the shell exits 5; `sleep` holds stdout and stderr.
    let out = child
        .wait_with_output_timeout(Duration::from_millis(300))
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.status.code(), Some(5), "{}", out.status);
    assert!(
        !has_exited(&escaped.0),
        "out of reach of the kill, as documented"
    );
}

/// A child that ends before the deadline: not timed out, its output whole.
#[test]
fn a_child_that_ends_in_time_is_not_timed_out() {
    let out = Container::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 4"])
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap()
        .wait_with_output_timeout(Duration::from_secs(600))
        .unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
}

/// Far more than a pipe holds (64 KiB) on both streams, in both orders: a reader that took
/// one stream to its end before the other would stall the child for good.
#[test]
fn output_larger_than_a_pipe_on_both_streams_does_not_deadlock() {
    const OUT: usize = 300_000;
    const ERR: usize = 200_000;
    let scripts = [
        format!("head -c {OUT} /dev/zero | tr '\\0' o; head -c {ERR} /dev/zero | tr '\\0' e >&2"),
        format!("head -c {ERR} /dev/zero | tr '\\0' e >&2; head -c {OUT} /dev/zero | tr '\\0' o"),
    ];
    for script in &scripts {
        for timeout in [None, Some(Duration::from_secs(600))] {
            let child = Container::new("sh")
                .args(["-c", script])
                .stdout(Stdio::Piped)
                .stderr(Stdio::Piped)
                .spawn()
                .unwrap();
            let out = match timeout {
                Some(t) => child.wait_with_output_timeout(t),
                None => child.wait_with_output(),
            }
            .unwrap();
            assert!(out.status.success(), "{script}: {}", out.status);
            assert!(!out.timed_out);
            assert_eq!(out.stdout.len(), OUT, "{script}");
            assert_eq!(out.stderr.len(), ERR, "{script}");
            assert!(out.stdout.iter().all(|&b| b == b'o'));
            assert!(out.stderr.iter().all(|&b| b == b'e'));
        }
    }
}

/// The rusage of a shell's busy loop, without a cgroup: for root and for nobody alike.
#[test]
fn usage_without_a_cgroup_comes_from_waitids_rusage() {
    let test = "usage_without_a_cgroup_comes_from_waitids_rusage";
    match role().as_deref() {
        None | Some("nobody") => {}
        Some(_) => return,
    }
    let out = Container::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo $i",
        ])
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(out.stdout, b"100000\n");
    assert_eq!(out.usage.cgroup, None);
    // No cgroup: no peak memory figure, rather than maxrss passed off as one.
    assert_eq!(out.usage.memory_peak(), None);
    let ru = out.usage.rusage.expect("waitid's rusage");
    eprintln!("{test}: {ru:?}");
    assert!(ru.utime + ru.stime > Duration::ZERO, "{ru:?}");
    assert!(ru.maxrss.0 > 0, "{ru:?}");
    assert_eq!(out.usage.cpu(), Some(ru.utime + ru.stime));

    // The same through wait() and usage(), which fails (saying why) only while it runs.
    let mut child = Container::new("sh")
        .args(["-c", "read x"])
        .stdin(Stdio::Piped)
        .spawn()
        .unwrap();
    let e = child.usage().unwrap_err().to_string();
    assert!(e.contains("still running"), "{e}");
    drop(child.stdin.take());
    child.wait().unwrap();
    assert!(child.usage().unwrap().rusage.is_some());

    if role().is_none() && nix::unistd::geteuid().is_root() {
        common::assert_passes_as_nobody(test, "nobody", false);
    }
}

/// With a cgroup of its own, `Output` carries the cgroup's counters as well as the rusage.
#[test]
fn output_carries_the_cgroups_usage_too() {
    let test = "output_carries_the_cgroups_usage_too";
    let Some(parent) = cgroup_parent(test) else {
        return;
    };
    let out = Container::new("sh")
        .args(["-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"])
        .resources(Resources::default())
        .cgroup_parent(parent.path())
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    let cg = out.usage.cgroup.expect("the cgroup's usage");
    assert!(cg.cpu.usage() > Duration::ZERO, "{cg:?}");
    assert_eq!(out.usage.cpu(), Some(cg.cpu.usage()));
    assert_eq!(out.usage.memory_peak(), cg.memory_peak);
    let ru = out.usage.rusage.expect("waitid's rusage");
    assert!(ru.utime + ru.stime > Duration::ZERO, "{ru:?}");
    assert!(
        parent.children().unwrap().is_empty(),
        "the cgroup went with the child"
    );
}

/// Which descendants a child's rusage counts: those reaped by a wait (the shell's, contain-init's,
/// or the kernel's for the zombies PID 1 leaves), not those that are still running when the
/// child (PID 1 of its namespace) exits, which the kernel kills and discards (it makes PID 1
/// ignore SIGCHLD first, so they are reaped without being counted), and not those that run on,
/// reparented out of the container (without a PID namespace).
#[test]
fn rusage_counts_the_descendants_that_were_waited_for() {
    if !is_root("rusage_counts_the_descendants_that_were_waited_for") {
        return;
    }
    // Spins until its own CPU time (fields 14 and 15 of /proc/self/stat, in clock ticks of
    // 10 ms) reaches 30 ticks, then says so and sleeps. `read` is a builtin: /proc/self is
    // the shell itself, whatever PID namespace /proc was mounted for.
    let spin = "while :; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; \
                read -r s < /proc/self/stat; set -- $s; \
                [ $((${14} + ${15})) -ge 30 ] && break; done";
    let spun = Duration::from_millis(290); // 30 ticks, less a tick's rounding
                                           // (namespaces, contain-init, the spinner has ended before the child exits, counted)
    for (namespaces, init, ended, counted) in [
        (Namespaces::PID, false, true, true),
        (Namespaces::PID, true, true, true),
        (Namespaces::PID, false, false, false),
        (Namespaces::empty(), false, false, false),
    ] {
        let case = format!("{namespaces:?} init={init} ended={ended}");
        let mut child = Container::new("sh")
            .args([
                "-c",
                "sh -c \"$SPIN; echo spun >&2; exec sleep 1000\" & read x",
            ])
            .env("SPIN", spin)
            .namespaces(namespaces)
            .init(init)
            .stdin(Stdio::Piped)
            .stderr(Stdio::Piped)
            .spawn()
            .unwrap();
        assert!(read_until(child.stderr.as_ref().unwrap(), "spun").contains("spun"));
        // The spinner (a child of the shell), pinned by a pidfd.
        let shell = if init {
            children_of(&child)[0]
        } else {
            child.pid().raw()
        };
        let task = format!("/proc/{shell}/task/{shell}/children");
        let spinner: Vec<KillOnDrop> = std::fs::read_to_string(task)
            .unwrap()
            .split_whitespace()
            .map(|p| KillOnDrop(pidfd_open(p.parse().unwrap())))
            .collect();
        assert_eq!(spinner.len(), 1, "{case}");
        if ended {
            // Killed and exited: a zombie for the shell, its usage waiting to be collected.
            drop(KillOnDrop(spinner[0].0.try_clone().unwrap()));
            let mut fds = [nix::poll::PollFd::new(
                spinner[0].0.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            while nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) != Ok(1) {}
        }
        drop(child.stdin.take()); // `read x` fails: the shell, and with it the child, ends.
        child.wait().unwrap();
        let ru = child.usage().unwrap().rusage.unwrap();
        let cpu = ru.utime + ru.stime;
        eprintln!("{case}: cpu {cpu:?} ({ru:?})");
        if namespaces.contains(Namespaces::PID) {
            assert!(
                has_exited(&spinner[0].0),
                "{case}: PID 1's exit ends the namespace"
            );
        } else {
            // Reparented out of the container; the pidfd guard kills it.
            assert!(!has_exited(&spinner[0].0), "{case}: it runs on, outside");
        }
        if counted {
            assert!(
                cpu >= spun,
                "{case}: the spinner's CPU time is missing: {cpu:?}"
            );
        } else {
            assert!(cpu < spun, "{case}: the spinner was counted: {cpu:?}");
        }
    }
}

/// The runner's loop with its own timeout: `wait_timeout` says the job still runs, and
/// `kill_container` ends it with everything it started in its cgroup (no PID namespace here,
/// so only the cgroup reaches the grandchild), and reaps it.
#[test]
fn kill_container_after_wait_timeout_ends_every_process_of_the_cgroup() {
    if !is_root("kill_container_after_wait_timeout_ends_every_process_of_the_cgroup") {
        return;
    }
    let mut child = Container::new("sh")
        .args(["-c", "sleep 1000 & echo up >&2; wait"])
        .resources(Resources::new())
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(read_until(child.stderr.as_ref().unwrap(), "up").contains("up"));
    let grandchildren: Vec<KillOnDrop> = children_of(&child)
        .into_iter()
        .map(|p| KillOnDrop(pidfd_open(p)))
        .collect();
    assert_eq!(grandchildren.len(), 1, "sleep runs as the shell's child");
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    let status = child.kill_container().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL), "{status}");
    assert!(
        has_exited(&grandchildren[0].0),
        "the grandchild in the cgroup outlived kill_container"
    );
    // Already ended: the same status again, no error.
    assert_eq!(child.kill_container().unwrap(), status);
}

/// `Container::output` as std's `Command::output`: stdout and stderr captured, stdin
/// `/dev/null` (a reader gets EOF at once instead of the test's stdin), streams set
/// explicitly kept; `status` runs to the end; a tty has nothing to capture and is refused.
#[test]
fn output_and_status_work_as_std_s() {
    let cat = Container::new("sh").args([
        "-c",
        "readlink /proc/self/fd/0; cat; echo out; echo err >&2; exit 3",
    ]);
    let out = cat.output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"/dev/null\nout\n"[..], &b"err\n"[..])
    );
    assert!(!out.timed_out);
    assert!(out.usage.rusage.is_some(), "{:?}", out.usage);
    // The same container again, stderr set explicitly: kept, not captured.
    let out = cat.stderr(Stdio::Null).output().unwrap();
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"/dev/null\nout\n"[..], &b""[..])
    );

    let status = Container::new("sh")
        .args(["-c", "exit 6"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(6));

    let e = Container::new("true").tty(true).output().unwrap_err();
    assert!(
        matches!(e, contain::Error::Config { what: "output", .. }),
        "{e}"
    );
}

/// `kill_container` on a child that has already exited still ends what it left running in
/// its cgroup (a daemonised process, no PID namespace to take it down).
#[test]
fn kill_container_after_the_child_exited_ends_what_it_left_in_the_cgroup() {
    if !is_root("kill_container_after_the_child_exited_ends_what_it_left_in_the_cgroup") {
        return;
    }
    let mut child = Container::new("sh")
        .args(["-c", "sleep 1000 & echo $! >&2"])
        .resources(Resources::new())
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap();
    let pid = read_until(child.stderr.as_ref().unwrap(), "\n");
    let daemon = KillOnDrop(pidfd_open(pid.trim().parse().unwrap()));
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        !has_exited(&daemon.0),
        "the daemon runs on after its parent"
    );
    assert_eq!(child.kill_container().unwrap().code(), Some(0));
    assert!(
        has_exited(&daemon.0),
        "kill_container left the daemon in the cgroup"
    );
}

/// A child reaped behind the handle's back (as a caller that ignores SIGCHLD, or a
/// `waitpid(-1)` reaper, would): from Linux 6.15 the pidfd still has the status, and
/// `wait_with_output` returns the output and status without a rusage instead of failing;
/// before, it says who took the status.
#[test]
fn output_survives_a_child_reaped_by_someone_else() {
    let child = Container::new("sh")
        .args(["-c", "echo out; read x; exit 3"])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let stdout = child.stdout.as_ref().unwrap();
    assert!(read_until(stdout, "out\n").contains("out"));
    // Reap it ourselves through its pidfd once stdin is closed.
    let pidfd = child.pidfd().try_clone_to_owned().unwrap();
    let mut child = child;
    drop(child.stdin.take());
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with a valid siginfo_t to fill; P_PIDFD is 3.
    let r = unsafe {
        libc::waitid(
            3, /* P_PIDFD */
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match child.wait_with_output() {
        Ok(out) => {
            assert!(version >= (6, 15), "Ok on {release}: {out:?}");
            assert_eq!(out.status.code(), Some(3), "{}", out.status);
            assert_eq!(out.stdout, b"", "read before: {:?}", out.stdout);
            assert_eq!(out.usage.rusage, None);
        }
        Err(e) => {
            assert!(version < (6, 15), "failed on {release}: {e}");
            assert!(e.to_string().contains("another waiter"), "{e}");
        }
    }
}
