//! Killing a whole container and leaving nothing behind, and freezing it: `Child::kill_container`
//! through the container's own cgroup (`cgroup.kill`) and through its PID namespace's init,
//! and `Child::freeze`/`thaw`/`is_frozen` (`cgroup.freeze`).
//!
//! "Nothing behind" is checked per process: a pidfd is opened for every process of the
//! container before the kill, and afterwards `pidfd_send_signal(pidfd, 0)` must say `ESRCH`
//! (a zombie, not yet reaped, still answers 0). The container's cgroup directory must be gone
//! once the `Child` is dropped.
//!
//! The cgroup cases need root and a cgroup v2 hierarchy the caller can make groups in (an
//! empty `Resources` needs no controller, so they run on a hybrid host's unified hierarchy
//! too); the fork bomb needs the pids controller on cgroup v2, which the qemu guest has
//! (`cargo xtask test --vm-only -- --test kill`). Each test says why when it skips. Nothing
//! waits by sleeping: the containers say "ready" on a pipe, the fork bomb is seen through
//! `pids.events` notifications, freezing through `cgroup.events`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::ChildStdout;
use std::time::{Duration, Instant};

use common::{is_root, skip};
use contain::cgroup::{Controller, HostCgroups, Resources};
use contain::namespace::Namespaces;
use contain::process::{Child, Container, Stdio};
use contain::{Error, Signal};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// How many processes the big containers run.
const PROCESSES: usize = 200;

/// The loose bound on `kill_container` + drop for 200 processes: the guest is TCG-emulated.
const KILL_BOUND: Duration = Duration::from_secs(2);

/// Set in the qemu guest, where cgroup v2 has every controller: nothing may skip there.
fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

/// Whether cgroup v2 offers the pids controller (the guest's must).
fn has_pids() -> Result<(), Error> {
    let r = HostCgroups::detect().unwrap().check(Controller::Pids);
    if let Err(e) = &r {
        assert!(!in_vm(), "the guest's cgroup v2 lacks pids: {e}");
    }
    r
}

/// `sh -c` text that starts `n` sleeps in the background (their stdout on /dev/null, so that
/// the pipe closes if the shell dies), says "ready" and waits.
fn sleeps(n: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do sleep 1000 >/dev/null & i=$((i+1)); done; echo ready; wait"
    )
}

/// Whether the process behind `pidfd` still exists (running or a zombie): signal 0 reaches
/// it. `ESRCH`: it has been reaped.
fn exists(pidfd: BorrowedFd<'_>) -> bool {
    match common::pidfd_send_signal(pidfd, 0) {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ESRCH),
                "pidfd_send_signal(pidfd, 0)"
            );
            false
        }
    }
}

/// Pidfds for processes of a container: SIGKILL to the ones still there on drop, so that a
/// failing test leaves no process behind (their parents, in the container's PID namespace or
/// the host's init, reap them).
struct Pinned(Vec<(i32, OwnedFd)>);

impl Pinned {
    /// The pids whose process has not been reaped.
    fn left(&self) -> Vec<i32> {
        self.0
            .iter()
            .filter(|(_, fd)| exists(fd.as_fd()))
            .map(|(pid, _)| *pid)
            .collect()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for (_, fd) in &self.0 {
            // SIGKILL to a process we pinned, never a reused pid.
            let _ = common::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
    }
}

/// Pidfds for every process in the child's cgroup (host pids, from `cgroup.procs`). One
/// that exits between the read and its pidfd_open (ESRCH: a fork bomb's shells do) is gone
/// already and needs no check.
fn pin_cgroup(child: &Child) -> Pinned {
    let procs = child.cgroup().expect("a cgroup").procs().unwrap();
    let mut pinned = Vec::new();
    for pid in procs {
        match common::pidfd_open_live(pid.raw()) {
            Ok(fd) => pinned.push((pid.raw(), fd)),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => panic!("pidfd_open({}): {e}", pid.raw()),
        }
    }
    Pinned(pinned)
}

/// The PID namespace of `pid`, as `/proc/PID/ns/pid` names it (`pid:[inode]`).
fn pid_ns(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Pidfds for every process in the child's PID namespace, found by scanning /proc; each one
/// is checked to be in the namespace again once pinned (a pid reused meanwhile is dropped).
fn pin_pid_ns(child: &Child) -> Pinned {
    let ns = pid_ns(child.pid().raw()).expect("the child's /proc/PID/ns/pid");
    let mut pinned = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap() {
        let Some(pid) = entry
            .unwrap()
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid_ns(pid).as_ref() != Some(&ns) {
            continue;
        }
        let Ok(fd) = common::pidfd_open_live(pid) else {
            continue; // gone since its /proc entry was read
        };
        if pid_ns(pid).as_ref() == Some(&ns) {
            pinned.push((pid, fd));
        }
    }
    Pinned(pinned)
}

/// Reads the child's first line of stdout and asserts it is "ready".
fn wait_ready(child: &mut Child) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "the container did not start: {line:?}"
    );
}

/// Spawns `script` in a new PID namespace with a cgroup of its own (an empty `Resources`,
/// or `resources`), stdout piped; `None` (and a line that says why) where the host cannot
/// make that cgroup.
fn spawn_in_cgroup(test: &str, script: &str, resources: Resources) -> Option<Child> {
    let spawned = Container::new("sh")
        .args(["-c", script])
        .namespaces(Namespaces::PID)
        .resources(resources)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null)
        .spawn();
    match spawned {
        Ok(child) => Some(child),
        Err(e @ Error::Unsupported { .. }) if !in_vm() => {
            skip(test, &format!("no cgroup v2 group can be made here: {e}"));
            None
        }
        Err(e) => panic!("{test}: spawn: {e}"),
    }
}

/// Kills the container, drops the `Child`, and returns how long both took.
fn kill_and_drop(mut child: Child) -> Duration {
    let start = Instant::now();
    let status = child.kill_container().unwrap();
    drop(child);
    let took = start.elapsed();
    assert_eq!(status.signal(), Some(Signal::SIGKILL), "{status}");
    took
}

#[test]
fn kill_container_reaps_200_processes_and_removes_the_cgroup() {
    let test = "kill_container_reaps_200_processes_and_removes_the_cgroup";
    if !is_root(test) {
        return;
    }
    // With the pids controller (as docker always sets a pids limit), pids.current counts
    // them too; without it (a hybrid host) cgroup.procs does.
    let pids = has_pids().is_ok();
    let limits = match pids {
        true => Resources::new().pids_max(4 * PROCESSES as u64),
        false => Resources::new(),
    };
    let Some(mut child) = spawn_in_cgroup(test, &sleeps(PROCESSES), limits) else {
        return;
    };
    wait_ready(&mut child);
    let cgroup = child.cgroup().unwrap();
    let dir = cgroup.path().to_owned();
    let pinned = pin_cgroup(&child);
    assert!(
        pinned.0.len() > PROCESSES,
        "cgroup.procs lists {} processes, not the shell and its {PROCESSES} sleeps",
        pinned.0.len()
    );
    if pids {
        let current = cgroup.pids().unwrap().current().unwrap();
        assert!(current > PROCESSES as u64, "pids.current {current}");
    }
    let took = kill_and_drop(child);
    eprintln!(
        "{test}: kill_container + drop of {} processes: {:.1} ms",
        pinned.0.len(),
        took.as_secs_f64() * 1e3
    );
    assert_eq!(pinned.left(), Vec::<i32>::new(), "processes not reaped");
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(took < KILL_BOUND, "kill + drop took {took:?}");
}

/// Reads `pids.events` of `dir` until its `max` count is above 0, sleeping in
/// `poll(POLLPRI)` between reads: the kernel notifies every refused fork.
fn wait_pids_max_event(dir: &std::path::Path, timeout: Duration) -> u64 {
    let path = dir.join("pids.events");
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::open(&path).unwrap();
    loop {
        let mut text = String::new();
        std::io::Seek::rewind(&mut file).unwrap();
        file.read_to_string(&mut text).unwrap();
        let max = text
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{}: {text:?}", path.display()));
        if max > 0 {
            return max;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no fork refused within {timeout:?}: {text:?}"
        );
        let ms = u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => panic!("poll {}: {e}", path.display()),
        }
    }
}

#[test]
fn kill_container_ends_a_fork_bomb_held_by_pids_max() {
    let test = "kill_container_ends_a_fork_bomb_held_by_pids_max";
    if !is_root(test) {
        return;
    }
    if let Err(e) = has_pids() {
        skip(test, &format!("no pids controller on cgroup v2 here: {e}"));
        return;
    }
    // Every process forks for ever; a failed fork ends only the shell that tried. The
    // namespace's init starts the bomb while forks still succeed and then becomes a sleep
    // that never forks: had it joined the bomb, its own refused fork would end it (exit 2)
    // before the kill, and the whole namespace with it.
    let bomb = "b() { while :; do b & done; }; b & exec sleep 1000000";
    let limits = Resources::new().pids_max(PROCESSES as u64);
    let Some(child) = spawn_in_cgroup(test, bomb, limits) else {
        return;
    };
    let cgroup = child.cgroup().unwrap();
    let dir = cgroup.path().to_owned();
    let refused = wait_pids_max_event(&dir, Duration::from_secs(60));
    let current = cgroup.pids().unwrap().current().unwrap();
    assert!(current <= PROCESSES as u64, "pids.current {current}");
    let pinned = pin_cgroup(&child);
    let took = kill_and_drop(child);
    eprintln!(
        "{test}: {refused} forks refused, pids.current {current}; kill_container + drop of \
         the bomb ({} processes pinned): {:.1} ms",
        pinned.0.len(),
        took.as_secs_f64() * 1e3
    );
    assert!(!pinned.0.is_empty());
    assert_eq!(pinned.left(), Vec::<i32>::new(), "processes not reaped");
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(took < KILL_BOUND, "kill + drop took {took:?}");
}

#[test]
fn kill_container_without_a_cgroup_ends_the_pid_namespace() {
    let test = "kill_container_without_a_cgroup_ends_the_pid_namespace";
    if !is_root(test) {
        return;
    }
    let mut child = Container::new("sh")
        .args(["-c", &sleeps(PROCESSES)])
        .namespaces(Namespaces::PID)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null)
        .spawn()
        .unwrap();
    assert!(child.cgroup().is_none());
    wait_ready(&mut child);
    let pinned = pin_pid_ns(&child);
    assert!(
        pinned.0.len() > PROCESSES,
        "{} processes in the PID namespace, not the shell and its {PROCESSES} sleeps",
        pinned.0.len()
    );
    let took = kill_and_drop(child);
    eprintln!(
        "{test}: kill_container + drop of {} processes: {:.1} ms",
        pinned.0.len(),
        took.as_secs_f64() * 1e3
    );
    assert_eq!(pinned.left(), Vec::<i32>::new(), "processes not reaped");
    assert!(took < KILL_BOUND, "kill + drop took {took:?}");
}

#[test]
fn a_frozen_container_is_killed_all_the_same() {
    let test = "a_frozen_container_is_killed_all_the_same";
    if !is_root(test) {
        return;
    }
    let Some(mut child) = spawn_in_cgroup(test, &sleeps(20), Resources::new()) else {
        return;
    };
    wait_ready(&mut child);
    let dir = child.cgroup().unwrap().path().to_owned();
    child.freeze(Duration::from_secs(10)).unwrap();
    assert!(child.is_frozen().unwrap());
    let pinned = pin_cgroup(&child);
    assert!(pinned.0.len() > 20, "{} processes", pinned.0.len());
    let took = kill_and_drop(child);
    eprintln!(
        "{test}: kill_container + drop, frozen: {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(pinned.left(), Vec::<i32>::new(), "processes not reaped");
    assert!(!dir.exists(), "{} is still there", dir.display());
}

/// Reads what the non-blocking `out` holds now into `buf`; true at EOF.
fn drain(out: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match out.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The last whole number the counter wrote.
fn last_count(buf: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(buf);
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// Polls `fd` for input for up to `timeout`: whether it became readable.
fn readable_within(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Reads the counter's output into `buf` until it has written a number above `above`.
fn wait_for_count(out: &mut ChildStdout, buf: &mut Vec<u8>, above: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_count(buf) <= above {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            readable_within(out.as_fd(), left),
            "no count above {above} within 30 s"
        );
        assert!(!drain(out, buf), "the counter ended");
    }
}

#[test]
fn freeze_stops_a_container_and_thaw_resumes_it() {
    let test = "freeze_stops_a_container_and_thaw_resumes_it";
    if !is_root(test) {
        return;
    }
    let counter = "i=0; while :; do i=$((i+1)); echo $i; done";
    let Some(mut child) = spawn_in_cgroup(test, counter, Resources::new()) else {
        return;
    };
    let mut out = child.stdout.take().unwrap();
    nix::fcntl::fcntl(
        &out,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut buf = Vec::new();
    // It runs: a hundred counts.
    wait_for_count(&mut out, &mut buf, 100);
    assert!(!child.is_frozen().unwrap());

    child.freeze(Duration::from_secs(10)).unwrap();
    assert!(child.is_frozen().unwrap());
    // What it wrote before it froze is in the pipe: take it; after that, nothing new may come.
    drain(&mut out, &mut buf);
    let frozen_at = last_count(&buf);
    let before = buf.len();
    let window = Duration::from_millis(500);
    assert!(
        !readable_within(out.as_fd(), window),
        "a frozen container wrote: {:?}",
        String::from_utf8_lossy(&{
            drain(&mut out, &mut buf);
            buf[before..].to_vec()
        })
    );
    assert!(child.is_frozen().unwrap(), "it thawed by itself");

    child.thaw(Duration::from_secs(10)).unwrap();
    assert!(!child.is_frozen().unwrap());
    let mut after = Vec::new();
    wait_for_count(&mut out, &mut after, frozen_at);
    eprintln!(
        "{test}: counted to {frozen_at} before freezing, nothing for {window:?} while frozen, \
         {} after thawing",
        last_count(&after)
    );
    drop(out);
    let dir = child.cgroup().unwrap().path().to_owned();
    drop(child);
    assert!(!dir.exists(), "{} is still there", dir.display());
}

#[test]
fn freezing_a_child_without_a_cgroup_names_container_resources() {
    let mut child = Container::new("sleep")
        .arg("1000")
        .stdout(Stdio::Null)
        .spawn()
        .unwrap();
    let freeze = child.freeze(Duration::from_secs(1));
    let thaw = child.thaw(Duration::from_secs(1));
    let frozen = child.is_frozen();
    for (what, r) in [
        ("freeze", freeze),
        ("thaw", thaw),
        ("is_frozen", frozen.map(drop)),
    ] {
        let e = r.expect_err(what);
        assert!(
            matches!(&e, Error::Unsupported { feature, reason }
                if feature.contains(what) && reason.contains("Container::resources")),
            "{what}: {e}"
        );
    }
    let status = child.kill_container().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL), "{status}");
}
