//! The parent's handle on a running container process: a pidfd, so that waiting and
//! signalling can never hit a recycled pid.

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

use super::Signaller;
use crate::cgroup::{Cgroup, OwnedCgroup, Usage};
use crate::net::Veth;
use crate::sys;
use crate::{Errno, Error, Result};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(Ended);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ended {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// From the `siginfo_t` of `waitid(WEXITED)`.
    pub(crate) fn from_siginfo(info: &libc::siginfo_t) -> ExitStatus {
        // SAFETY: waitid filled in si_status for a CLD_* code.
        let status = unsafe { info.si_status() };
        ExitStatus(match info.si_code {
            libc::CLD_EXITED => Ended::Exited(status),
            libc::CLD_DUMPED => Ended::Signaled {
                signal: status,
                core_dumped: true,
            },
            _ => Ended::Signaled {
                signal: status,
                core_dumped: false,
            },
        })
    }

    /// From a wait status as `waitpid` reports it.
    pub(crate) fn from_wait_status(status: i32) -> ExitStatus {
        ExitStatus(if libc::WIFEXITED(status) {
            Ended::Exited(libc::WEXITSTATUS(status))
        } else {
            Ended::Signaled {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            }
        })
    }

    /// The exit code, if the process exited rather than being killed by a signal.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            Ended::Exited(c) => Some(c),
            Ended::Signaled { .. } => None,
        }
    }

    /// The signal that killed the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0 {
            Ended::Signaled { signal, .. } => Some(signal),
            Ended::Exited(_) => None,
        }
    }

    /// Whether the process dumped core when it was killed.
    pub fn core_dumped(&self) -> bool {
        matches!(
            self.0,
            Ended::Signaled {
                core_dumped: true,
                ..
            }
        )
    }

    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.0 == Ended::Exited(0)
    }

    /// The status as a shell reports it: the exit code, or 128 + the signal number.
    pub fn shell_code(&self) -> i32 {
        match self.0 {
            Ended::Exited(c) => c,
            Ended::Signaled { signal, .. } => 128 + signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ended::Exited(c) => write!(f, "exit status {c}"),
            Ended::Signaled {
                signal,
                core_dumped,
            } => {
                let name = nix::sys::signal::Signal::try_from(signal)
                    .map(|s| s.as_str())
                    .unwrap_or("real-time signal");
                write!(
                    f,
                    "killed by signal {signal} ({name}){}",
                    if core_dumped { ", core dumped" } else { "" }
                )
            }
        }
    }
}

/// A process started by [`Container::spawn`](super::Container::spawn).
///
/// Dropping a `Child` that has not been waited for **kills it** (SIGKILL through the pidfd)
/// and reaps it, so a forgotten handle leaves neither a running container nor a zombie. Call
/// [`wait`](Child::wait) to let it finish on its own.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    pidfd: OwnedFd,
    status: Option<ExitStatus>,
    /// The write end of the child's stdin, with [`Stdio::Piped`](super::Stdio::Piped).
    pub stdin: Option<ChildStdin>,
    /// The read end of the child's stdout, with [`Stdio::Piped`](super::Stdio::Piped).
    pub stdout: Option<ChildStdout>,
    /// The read end of the child's stderr, with [`Stdio::Piped`](super::Stdio::Piped).
    pub stderr: Option<ChildStderr>,
    /// The cgroup `spawn` created for the child; removed when the handle is dropped.
    pub(crate) cgroup: Option<OwnedCgroup>,
    /// The master side of the container's pty, with `Container::tty`.
    pub(crate) tty: Option<OwnedFd>,
    /// The veth pair `spawn` made for [`Net::Veth`](crate::net::Net::Veth); deleted when the
    /// handle is dropped (after the process is killed and reaped).
    pub(crate) veth: Option<Veth>,
    /// Locks on the rootfs's persistent upper directory: released once the child is reaped
    /// (by `wait`, `try_wait` or drop), when no process of the container can use it any more.
    pub(crate) locks: Vec<crate::rootfs::LayerLock>,
}

/// Everything a finished child wrote, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, if piped.
    pub stdout: Vec<u8>,
    /// Its stderr, if piped.
    pub stderr: Vec<u8>,
}

impl Child {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd) -> Child {
        Child {
            pid,
            pidfd,
            status: None,
            stdin: None,
            stdout: None,
            stderr: None,
            cgroup: None,
            tty: None,
            veth: None,
            locks: Vec::new(),
        }
    }

    /// The process id, as seen from the caller's PID namespace. Prefer [`pidfd`](Self::pidfd)
    /// for anything that must not race with pid reuse.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// The pidfd that names this process for as long as the handle lives.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The cgroup `spawn` created for this child with
    /// [`Container::resources`](super::Container::resources), if any.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_deref()
    }

    /// The veth pair of a container spawned with [`Net::Veth`](crate::net::Net::Veth): its
    /// host end's name and both addresses. It lives as long as this handle.
    pub fn veth(&self) -> Option<&Veth> {
        self.veth.as_ref()
    }

    /// The exit report: CPU time, peak memory and OOM kills of the child's cgroup (the one
    /// `spawn` created). Read it after [`wait`](Self::wait): the cgroup is removed when the
    /// `Child` is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the child has no cgroup of its own (no
    /// [`Container::resources`](super::Container::resources)); otherwise those of
    /// [`Cgroup::usage`].
    pub fn usage(&self) -> Result<Usage> {
        match &self.cgroup {
            Some(cg) => cg.usage(),
            None => Err(Error::config(
                "usage",
                "the child has no cgroup of its own (set Container::resources)",
            )),
        }
    }

    /// Takes the master side of the container's pseudo-terminal (with
    /// [`Container::tty`](super::Container::tty)).
    pub fn take_tty(&mut self) -> Option<OwnedFd> {
        self.tty.take()
    }

    /// A handle that can signal this child from other threads (a duplicate of the pidfd).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fcntl(F_DUPFD_CLOEXEC)`: `EMFILE` when the process is out of
    /// descriptors.
    pub fn signaller(&self) -> Result<Signaller> {
        let fd = self.pidfd.try_clone().map_err(|e| {
            Error::sys(
                "fcntl(F_DUPFD_CLOEXEC)",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)),
            )
        })?;
        Ok(Signaller::new(fd))
    }

    /// Sends `signal` through the pidfd. A child that has already ended is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pidfd_send_signal` (Linux 5.1): `EINVAL` for a number that is no
    /// signal, `EPERM` when the caller may not signal the child (it changed its user ids to ones
    /// the caller has no rights over).
    pub fn kill(&mut self, signal: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(self.pidfd.as_fd(), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys("pidfd_send_signal", e)),
        }
    }

    /// Waits for the child to end and reaps it. Closes its stdin first, so that a child
    /// reading it sees EOF instead of waiting forever.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `waitid(P_PIDFD)` (Linux 5.4): `ECHILD` when another waiter took the
    /// exit status first (the caller ignores SIGCHLD, or runs a `waitpid(-1)` loop) on a kernel
    /// before 6.15, which cannot give it back from the pidfd.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(s) = self.status {
            return Ok(s);
        }
        let status = self
            .reap(0)?
            .ok_or_else(|| Error::sys("waitid(P_PIDFD)", Errno::ECHILD))?;
        Ok(status)
    }

    /// waitid through the pidfd. When somebody else reaped the child first (a caller that
    /// ignores SIGCHLD, whose children the kernel reaps itself, or a `waitpid(-1)` loop),
    /// the status comes from the pidfd, which keeps it from Linux 6.15 on.
    fn reap(&mut self, options: libc::c_int) -> Result<Option<ExitStatus>> {
        let status = match sys::waitid_pidfd(self.pidfd.as_fd(), options) {
            Ok(info) => info.as_ref().map(ExitStatus::from_siginfo),
            Err(Errno::ECHILD) => match sys::pidfd_exit_status(self.pidfd.as_fd()) {
                Ok(Some(status)) => Some(ExitStatus::from_wait_status(status)),
                _ => {
                    return Err(Error::sys(
                        "waitid(P_PIDFD): the exit status was taken by another waiter \
                         (SIGCHLD ignored, or waitpid(-1) in this process; Linux 6.15 keeps it \
                         in the pidfd)",
                        Errno::ECHILD,
                    ))
                }
            },
            Err(e) => return Err(Error::sys("waitid(P_PIDFD)", e)),
        };
        self.status = status;
        if status.is_some() {
            // Reaped: the container's mount namespace, and with it the overlay, is gone.
            self.locks.clear();
        }
        Ok(status)
    }

    /// Reaps the child if it has ended; `Ok(None)` if it is still running.
    ///
    /// # Errors
    ///
    /// Those of [`wait`](Self::wait).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        self.reap(libc::WNOHANG)
    }

    /// Reads all of the child's piped stdout and stderr (concurrently, so neither pipe can fill
    /// up and stall it) and waits for it.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `read` when reading a pipe fails (the child is then killed, as the
    /// handle is dropped); those of [`wait`](Self::wait).
    pub fn wait_with_output(mut self) -> Result<Output> {
        drop(self.stdin.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let read_err = std::thread::scope(|s| {
            let t = stderr.map(|mut e| s.spawn(move || e.read_to_end(&mut err).map(|_| err)));
            let r1 = stdout.map(|mut o| o.read_to_end(&mut out)).transpose();
            let r2 = t
                .map(|t| t.join().unwrap_or_else(|_| Ok(Vec::new())))
                .transpose();
            r1.and(r2)
        });
        let err = read_err.map_err(|e| Error::sys("read", crate::error::io_errno(&e)))?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err.unwrap_or_default(),
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = sys::waitid_pidfd(self.pidfd.as_fd(), 0);
        }
    }
}
