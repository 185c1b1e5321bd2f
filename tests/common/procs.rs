//! Processes a test starts and must see end: shared by this crate's tests and contain-oci's
//! (which include this file by path).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Whether this process has a child, exited or not (waitid says ECHILD when it has none).
pub fn has_children() -> bool {
    // SAFETY: a zeroed siginfo_t is valid, and waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; WNOWAIT leaves any child as it is.
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    !(r == -1 && nix::errno::Errno::last() == nix::errno::Errno::ECHILD)
}

/// The pids of processes whose command line holds `marker` as an argument.
pub fn with_marker(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Makes this process the subreaper of its descendants: what a killed process leaves (its
/// parked container, its container's init) is re-parented here, where it is reaped and
/// counted, instead of to init.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
}

/// Reaps every child until none is left; false if one still runs after 10 s (a process of
/// a killed start that did not die).
pub fn reap_all() -> bool {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => std::thread::yield_now(),
            Ok(WaitStatus::StillAlive) => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}
