//! The two pidfd system calls nix 0.32 lacks (Linux 5.3 `pidfd_open`, 5.1
//! `pidfd_send_signal`), and waiting for a pidfd to report exit.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// `pidfd_open(pid, 0)`: a descriptor that names this process for as long as it is held.
///
/// # Errors
///
/// The errno: `ESRCH` when there is no such process (or it is reaped already).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: r is a descriptor the kernel just opened for us and nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`.
///
/// # Errors
///
/// The errno: `ESRCH` when the process has exited.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: a null siginfo is allowed and nothing of ours is read or written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Waits up to `timeout` for the process behind `pidfd` to exit (the pidfd turns readable
/// when it does, reaped or not). `Ok(true)`: it exited.
///
/// # Errors
///
/// The errno of `poll`.
pub fn wait_exit(pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, Errno> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
