//! The few host facilities std lacks: Ctrl-C handling, parent-death signals, file locks.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{bail, Context, Result};

/// The last SIGINT/SIGTERM/SIGHUP received, 0 if none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP so that xtask can kill qemu and remove its temp files
/// before it exits; the loops that wait check [`interrupted`].
pub fn catch_termination_signals() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // sigaction struct is zero-initialised and then filled in completely.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context(format!("sigaction({signal})"));
        }
    }
    Ok(())
}

/// The signal that asked us to stop, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Fail with the conventional "killed by signal" message if we were asked to stop.
pub fn check_interrupted() -> Result<()> {
    if let Some(signal) = interrupted() {
        bail!("interrupted by signal {signal}");
    }
    Ok(())
}

/// Make `command`'s process receive SIGKILL when xtask dies, however it dies.
pub fn kill_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only prctl and getppid, both
    // async-signal-safe; it touches no memory but the copied `parent` value.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: then we were reparented already.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn acquire(file: File) -> Result<FileLock> {
        loop {
            // SAFETY: flock on a valid, owned descriptor.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err).context("flock");
            }
            check_interrupted()?;
        }
    }
}
