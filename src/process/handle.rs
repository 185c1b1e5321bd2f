//! The parent's handle on a running container process: a pidfd, so that waiting and
//! signalling can never hit a recycled pid.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::usage::{Rusage, Usage};
use super::Signaller;
use crate::cgroup::{Cgroup, OwnedCgroup, DROP_TIMEOUT};
use crate::errno::NixResultExt;
use crate::net::Veth;
use crate::sys;
use crate::{Errno, Error, Pid, Result, Signal};

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
    pub fn signal(&self) -> Option<Signal> {
        match self.0 {
            Ended::Signaled { signal, .. } => Signal::from_raw(signal),
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
                let name = Signal::from_raw(signal).map_or("unknown signal", Signal::name);
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
    pid: Pid,
    pidfd: OwnedFd,
    status: Option<ExitStatus>,
    /// What `waitid` reported with the status (none when somebody else reaped the child).
    rusage: Option<Rusage>,
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
    /// The limits [`LimitPolicy::BestEffort`](crate::cgroup::LimitPolicy) skipped.
    pub(crate) skipped_limits: Vec<crate::cgroup::SkippedLimit>,
    /// Let go of by [`release`](Self::release): not killed when dropped.
    released: bool,
    /// The stages of its start ([`Container::timing`](super::Container::timing)).
    pub(crate) start_timing: Option<super::StartTiming>,
}

/// Everything a finished child wrote, with its status and what it used: what
/// [`wait_with_output`](Child::wait_with_output) and
/// [`wait_with_output_timeout`](Child::wait_with_output_timeout) return.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it ended (`killed by signal 9` when the deadline of
    /// [`wait_with_output_timeout`](Child::wait_with_output_timeout) ended it).
    pub status: ExitStatus,
    /// Its stdout, if piped (empty otherwise).
    pub stdout: Vec<u8>,
    /// Its stderr, if piped (empty otherwise).
    pub stderr: Vec<u8>,
    /// What it used: the rusage of the reaped child, and its cgroup's counters read after it
    /// ended and before the cgroup was removed (see [`Child::usage`]).
    pub usage: Usage,
    /// Whether the deadline of
    /// [`wait_with_output_timeout`](Child::wait_with_output_timeout) passed before the child
    /// ended and closed its output, so that the container was killed. [`status`](Self::status)
    /// is then SIGKILL's, or the child's own when it had exited and only a background process
    /// kept the output open. Always `false` from [`wait_with_output`](Child::wait_with_output).
    pub timed_out: bool,
    /// What [`Child::skipped_limits`] said: the limits not applied under
    /// [`LimitPolicy::BestEffort`](crate::cgroup::LimitPolicy::BestEffort), so that
    /// [`Container::output`](super::Container::output) reports them too.
    pub skipped_limits: Vec<crate::cgroup::SkippedLimit>,
}

impl Child {
    /// `pid` is what clone returned to the parent: always > 0.
    pub(crate) fn new(pid: i32, pidfd: OwnedFd) -> Child {
        Child {
            pid: Pid::from_raw(pid).expect("clone returns the child's pid (> 0) to the parent"),
            pidfd,
            status: None,
            rusage: None,
            stdin: None,
            stdout: None,
            stderr: None,
            cgroup: None,
            tty: None,
            veth: None,
            locks: Vec::new(),
            skipped_limits: Vec::new(),
            released: false,
            start_timing: None,
        }
    }

    /// How long each stage of this child's start took, when its container had
    /// [`timing`](super::Container::timing) on.
    pub fn start_timing(&self) -> Option<super::StartTiming> {
        self.start_timing
    }

    /// Lets go of the process without killing it: its cgroup is kept (returned, no longer
    /// removed), its veth stays, its pidfd and our stdio ends are closed. For
    /// [`Created::detach`](super::Created::detach).
    /// Also the parents made for an exact cgroup path, deepest first
    /// ([`OwnedCgroup::made_parents`]).
    pub(crate) fn release(mut self) -> (Pid, Option<Cgroup>, Vec<std::path::PathBuf>) {
        self.released = true;
        std::mem::forget(self.veth.take());
        let made = self
            .cgroup
            .as_ref()
            .map(OwnedCgroup::made_parents)
            .unwrap_or_default();
        (self.pid, self.cgroup.take().map(OwnedCgroup::keep), made)
    }

    /// Lets go of the process without killing or reaping it, and returns its pid (in the
    /// caller's PID namespace): it runs on, a child of this process until this process exits
    /// and it is re-parented to the nearest subreaper (a container shim) or init, which then
    /// reaps it. An OCI runtime's `exec --detach` does this, with
    /// [`parent_death_signal`](super::Container::parent_death_signal)`(None)` set, before it
    /// exits. The pidfd and the caller's ends of piped streams are closed; a cgroup `spawn`
    /// made for it ([`Container::resources`](super::Container::resources)) is kept and no
    /// longer removed; its veth pair stays.
    pub fn detach(self) -> Pid {
        self.release().0
    }

    /// The process id, as seen from the caller's PID namespace, as
    /// [`std::process::Child::id`] gives it. Prefer [`pidfd`](Self::pidfd) for anything that
    /// must not race with pid reuse.
    pub fn id(&self) -> u32 {
        self.pid.as_u32()
    }

    /// The process id as a [`Pid`] (see [`id`](Self::id)).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pidfd that names this process for as long as the handle lives.
    ///
    /// It becomes readable (`POLLIN`, `EPOLLIN`) when the process exits (Linux 5.3; the
    /// crate needs 5.4 for `waitid(P_PIDFD)` anyway) and stays readable, so callers with
    /// an event loop of their own (epoll, mio, tokio's `AsyncFd`) can wait for the exit with
    /// the other things they wait for, and then reap the child with
    /// [`try_wait`](Self::try_wait), which no longer blocks. The descriptor is close-on-exec
    /// and stays owned by the `Child`: register it, but do not close it.
    /// [`wait_timeout`](Self::wait_timeout) is this, for one child and a timeout.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use contain::process::{Container, Stdio};
    /// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    ///
    /// let mut child = Container::new("true").stdout(Stdio::Null).spawn()?;
    /// let mut fds = [PollFd::new(child.pidfd(), PollFlags::POLLIN)];
    /// while poll(&mut fds, PollTimeout::NONE) != Ok(1) {} // EINTR: poll again
    /// let status = child.try_wait()?.expect("readable means exited");
    /// assert!(status.success());
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The cgroup `spawn` created for this child with
    /// [`Container::resources`](super::Container::resources), if any.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_deref()
    }

    /// The limits of [`Container::resources`](super::Container::resources) that were not
    /// applied under [`LimitPolicy::BestEffort`](crate::cgroup::LimitPolicy::BestEffort),
    /// each with the setting, its value and why; empty when every limit was applied (and
    /// always under the default, strict policy, where a limit that cannot be applied fails
    /// `spawn`).
    pub fn skipped_limits(&self) -> &[crate::cgroup::SkippedLimit] {
        &self.skipped_limits
    }

    /// The veth pair of a container spawned with [`Net::Veth`](crate::net::Net::Veth): its
    /// host end's name and both addresses. It lives as long as this handle.
    pub fn veth(&self) -> Option<&Veth> {
        self.veth.as_ref()
    }

    /// What the container used ([`Usage`]): the rusage `waitid` gave when the child was
    /// reaped (CPU time, max RSS; no cgroup or privilege needed, so rootless callers get it)
    /// and, when `spawn` made a cgroup for the child
    /// ([`Container::resources`](super::Container::resources)), that cgroup's CPU time, peak
    /// memory and OOM kills, read now. Read it after [`wait`](Self::wait) (the rusage comes
    /// with the exit status) and before the `Child` is dropped (the cgroup goes with it);
    /// [`wait_with_output`](Self::wait_with_output) puts it in [`Output::usage`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when there is neither: the child still runs (or somebody else reaped
    /// it) and has no cgroup of its own; otherwise those of [`Cgroup::usage`].
    pub fn usage(&self) -> Result<Usage> {
        let cgroup = self.cgroup.as_deref().map(Cgroup::usage).transpose()?;
        if cgroup.is_none() && self.rusage.is_none() {
            return Err(Error::config(
                "usage",
                if self.status.is_none() {
                    "the child is still running and has no cgroup of its own: wait for it \
                     first (its rusage comes with the exit status), or set \
                     Container::resources for a cgroup whose counters can be read at any time"
                } else {
                    "somebody else reaped the child (SIGCHLD ignored, or waitpid(-1) in this \
                     process), so waitid gave no rusage, and it has no cgroup of its own \
                     (set Container::resources)"
                },
            ));
        }
        Ok(Usage {
            rusage: self.rusage,
            cgroup,
        })
    }

    /// Freezes every process of the container (`docker pause`): writes `cgroup.freeze` of
    /// the cgroup `spawn` made ([`Container::resources`](super::Container::resources)) and
    /// waits until the kernel reports the whole group frozen (Linux 5.2). Frozen processes
    /// use no CPU and see no time pass but keep their memory; signals other than SIGKILL wait
    /// for [`thaw`](Self::thaw), and [`kill_container`](Self::kill_container) still ends them.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::cgroup::Resources;
    /// use contain::process::Container;
    /// let child = Container::new("sleep").arg("60").resources(Resources::new()).spawn()?;
    /// child.freeze(Duration::from_secs(5))?;
    /// assert!(child.is_frozen()?);
    /// child.thaw(Duration::from_secs(5))?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the child has no cgroup of its own (set
    /// `Container::resources`, even empty: without a cgroup there is nothing to freeze the
    /// container's processes as one); those of [`Cgroup::freeze`] (`ETIMEDOUT` from `poll`
    /// when the group is not frozen within `timeout`).
    pub fn freeze(&self, timeout: Duration) -> Result<()> {
        self.own_cgroup("freeze")?.freeze(timeout)
    }

    /// Thaws a container frozen with [`freeze`](Self::freeze) (`docker unpause`) and waits
    /// until the kernel reports it running again.
    ///
    /// # Errors
    ///
    /// As [`freeze`](Self::freeze), with [`Cgroup::thaw`].
    pub fn thaw(&self, timeout: Duration) -> Result<()> {
        self.own_cgroup("thaw")?.thaw(timeout)
    }

    /// Whether the container's cgroup is frozen now (`frozen` in `cgroup.events`).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without a cgroup of its own, as [`freeze`](Self::freeze); those
    /// of [`Cgroup::events`].
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self.own_cgroup("is_frozen")?.events()?.frozen)
    }

    /// The child's own cgroup, or the error that says why `what` needs one.
    fn own_cgroup(&self, what: &str) -> Result<&Cgroup> {
        self.cgroup.as_deref().ok_or_else(|| {
            Error::unsupported(
                format!("Child::{what}"),
                "the container has no cgroup of its own, and freezing works on one (the \
                 cgroup v2 freezer, cgroup.freeze): set Container::resources (an empty \
                 Resources::new() is enough) so that spawn makes one",
            )
        })
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
    /// [`Error::Sys`] naming `pidfd_send_signal` (Linux 5.1): `EPERM` when the caller may not
    /// signal the child (it changed its user ids to ones the caller has no rights over).
    pub fn kill(&mut self, signal: Signal) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(self.pidfd.as_fd(), signal.raw()) {
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
        // SAFETY: an all-zero rusage is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let status = match sys::waitid_pidfd_rusage(self.pidfd.as_fd(), options, Some(&mut ru)) {
            Ok(Some(info)) => {
                self.rusage = Some(Rusage::from_raw(&ru));
                Some(ExitStatus::from_siginfo(&info))
            }
            Ok(None) => None,
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

    /// Waits up to `timeout` for the child to end and reaps it: `Ok(Some(status))` when it
    /// ended, `Ok(None)` when it still runs at the timeout (it is left running, untouched; its
    /// stdin stays open). A zero timeout is [`try_wait`](Self::try_wait).
    ///
    /// It polls the [`pidfd`](Self::pidfd) (no SIGCHLD handler, no thread, no busy loop) and
    /// then reaps with `waitid(P_PIDFD)`; a signal that interrupts the poll (`EINTR`) resumes
    /// it with the time that is left. A timeout too large for an `Instant` waits for good.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `poll(pidfd)` (not expected: `ENOMEM`), and those of
    /// [`try_wait`](Self::try_wait).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::process::Container;
    /// let mut child = Container::new("sleep").arg("100").spawn()?;
    /// let status = match child.wait_timeout(Duration::from_secs(5))? {
    ///     Some(status) => status,
    ///     None => child.kill_container()?, // every process of it, and reaped
    /// };
    /// # let _ = status;
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(None);
            }
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, poll_timeout(deadline)).ours() {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll(pidfd)", e)),
            }
        }
    }

    /// Reads all of the child's piped stdout and stderr (concurrently, so neither pipe can fill
    /// up and stall it), waits for it, and reports what it used ([`Output::usage`]) before
    /// the `Child`, and with it the child's cgroup, goes away. Closes its stdin first.
    ///
    /// It returns when the child has exited and both pipes are at EOF, as
    /// `std::process::Child::wait_with_output` does: a background process that keeps the
    /// pipes open keeps it waiting. [`wait_with_output_timeout`](Self::wait_with_output_timeout)
    /// bounds that.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `poll` or `read(output pipe)` when waiting on the pipes fails (the
    /// child is then killed, as the handle is dropped); those of [`wait`](Self::wait). Usage
    /// that cannot be had is left out of [`Output::usage`] rather than failing the call.
    pub fn wait_with_output(self) -> Result<Output> {
        self.collect_output(None)
    }

    /// [`wait_with_output`](Self::wait_with_output) with a deadline, for job runners: when
    /// `timeout` passes before the child has exited and closed its output, the whole
    /// container is killed with SIGKILL, and the `Output` says so
    /// ([`timed_out`](Output::timed_out)) with what was written until then.
    ///
    /// "The whole container" is:
    /// - every process in the child's cgroup, when `spawn` made one
    ///   ([`Container::resources`](super::Container::resources)): `cgroup.kill` (Linux 5.14;
    ///   before that, SIGKILL to each process in the frozen group), waiting up to
    ///   [`DROP_TIMEOUT`] for them to be gone;
    /// - else the child through its pidfd; with a new PID namespace
    ///   ([`Namespaces::PID`](crate::namespace::Namespaces::PID)) the kernel then kills every
    ///   other process in it, before the child can be reaped;
    /// - without either, only the child: what it started outside its PID namespace and
    ///   cgroup may outlive it (and keep its output pipes open: the output is then what was
    ///   written until the child was reaped).
    ///
    /// # Errors
    ///
    /// Those of [`wait_with_output`](Self::wait_with_output), and of the kill at the deadline
    /// ([`Error::Sys`] naming `pidfd_send_signal`, or the cgroup's `cgroup.kill` and
    /// [`Cgroup::wait_empty`]): the child is then killed and reaped all the same, but what it
    /// wrote is not returned, as something of the container may still be running.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::namespace::Namespaces;
    /// use contain::process::{Container, Stdio};
    /// let out = Container::new("sh")
    ///     .args(["-c", "make test"])
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .stdout(Stdio::Piped)
    ///     .stderr(Stdio::Piped)
    ///     .spawn()?
    ///     .wait_with_output_timeout(Duration::from_secs(600))?;
    /// if out.timed_out {
    ///     eprintln!("job killed after 10 minutes");
    /// }
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn wait_with_output_timeout(self, timeout: Duration) -> Result<Output> {
        // A deadline too far away to represent is none.
        self.collect_output(Instant::now().checked_add(timeout))
    }

    fn collect_output(mut self, deadline: Option<Instant>) -> Result<Output> {
        drop(self.stdin.take());
        let mut pipes: [Option<OwnedFd>; 2] = [
            self.stdout.take().map(OwnedFd::from),
            self.stderr.take().map(OwnedFd::from),
        ];
        for fd in pipes.iter().flatten() {
            set_nonblocking(fd)?;
        }
        let mut bufs = [Vec::new(), Vec::new()];
        let mut timed_out = false;
        loop {
            let exited = self.status.is_some();
            if exited && pipes.iter().all(Option::is_none) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                self.kill_container()?;
                // Everything that could write is gone (or out of reach): take what the pipes
                // hold and stop, without waiting for an EOF that an escaped process could hold
                // back.
                for (pipe, buf) in pipes.iter_mut().zip(bufs.iter_mut()) {
                    if let Some(fd) = pipe.take() {
                        drain(&fd, buf)?;
                    }
                }
                break;
            }
            let mut fds = Vec::with_capacity(3);
            let mut which = Vec::with_capacity(3);
            for (i, fd) in pipes.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    which.push(Some(i));
                }
            }
            if !exited {
                fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
                which.push(None);
            }
            match nix::poll::poll(&mut fds, poll_timeout(deadline)).ours() {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll(pipes, pidfd)", e)),
            }
            let ready: Vec<Option<usize>> = fds
                .iter()
                .zip(&which)
                .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, w)| *w)
                .collect();
            drop(fds);
            for w in ready {
                match w {
                    Some(i) => {
                        if let Some(fd) = &pipes[i] {
                            if drain(fd, &mut bufs[i])? {
                                pipes[i] = None;
                            }
                        }
                    }
                    None => {
                        self.try_wait()?;
                    }
                }
            }
        }
        let status = self.wait()?;
        // What can be had: no rusage when somebody else reaped the child (the status then
        // came from the pidfd), no cgroup counters when they could not be read. Neither is
        // worth losing the output and the status for.
        let usage = Usage {
            rusage: self.rusage,
            cgroup: self.cgroup.as_deref().and_then(|cg| cg.usage().ok()),
        };
        let [stdout, stderr] = bufs;
        Ok(Output {
            status,
            stdout,
            stderr,
            usage,
            timed_out,
            skipped_limits: std::mem::take(&mut self.skipped_limits),
        })
    }

    /// Ends the whole container with SIGKILL and reaps the child: what
    /// [`wait_with_output_timeout`](Self::wait_with_output_timeout) does at its deadline, for
    /// callers that wait with [`wait_timeout`](Self::wait_timeout) or their own event loop.
    ///
    /// "The whole container" is every process in the child's cgroup when `spawn` made one
    /// (`cgroup.kill`, Linux 5.14; before, SIGKILL to each process of the frozen group), then
    /// the child through its pidfd, which, with a new PID namespace, makes the kernel kill
    /// every other process in it. Without either, only the child ends: what it started
    /// outside its PID namespace and cgroup may outlive it. A child that has already ended
    /// gives its status, and what it left running in its cgroup is killed all the same.
    ///
    /// # Errors
    ///
    /// Those of [`Cgroup::kill`] and [`Cgroup::wait_empty`] (the group still holds processes
    /// after [`DROP_TIMEOUT`]): the child is then killed and reaped through its pidfd all the
    /// same before the error is returned; those of [`kill`](Self::kill) and of
    /// [`wait`](Self::wait).
    pub fn kill_container(&mut self) -> Result<ExitStatus> {
        let group = match self.cgroup.as_deref() {
            Some(cg) => cg.kill().and_then(|()| cg.wait_empty(DROP_TIMEOUT)),
            None => Ok(()),
        };
        if self.status.is_none() {
            self.kill(Signal::SIGKILL)?;
        }
        let status = self.wait()?;
        group.map(|()| status)
    }
}

/// A poll timeout that reaches `deadline` (rounded up to the millisecond, so that the poll
/// does not wake just before it), or none.
pub(super) fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            let ms = left.as_nanos().div_ceil(1_000_000);
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
        None => PollTimeout::NONE,
    }
}

/// Sets `O_NONBLOCK` on our read end of a pipe (its file description is ours alone).
fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| Error::sys("fcntl(F_GETFL)", e))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(|e| Error::sys("fcntl(F_SETFL, O_NONBLOCK)", e))
}

/// Reads what a non-blocking pipe holds into `buf`; `Ok(true)` at EOF.
fn drain(fd: &OwnedFd, buf: &mut Vec<u8>) -> Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match nix::unistd::read(fd, &mut chunk).ours() {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("read(output pipe)", e)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() && !self.released {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = sys::waitid_pidfd(self.pidfd.as_fd(), 0);
        }
    }
}
