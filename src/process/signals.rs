//! Signals from the caller's side: a [`Signaller`] that other threads can use, and a
//! [`SignalForwarder`] that passes the caller's own signals on to the container, as
//! `docker run`'s sig-proxy does: [`SignalForwarder::all`] forwards every signal a process
//! can catch ([`FORWARDABLE`] and the real-time ones) but SIGCHLD and SIGPIPE.

use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::errno::NixResultExt;
use crate::sys;
use crate::{Errno, Error, Result, Signal};

/// The standard signals [`SignalForwarder::all`] forwards: every one from 1 to 31 but
/// SIGKILL and SIGSTOP (no process can catch them; a SIGSTOP or SIGKILL of the caller
/// stops or ends it and not the container), SIGCHLD (it is about the caller's own children)
/// and SIGPIPE (a broken pipe of the caller's own output is the caller's), as docker's
/// `ForwardAllSignals`. Unlike docker, SIGURG is forwarded: docker skips it only because the
/// Go runtime uses it to preempt goroutines.
///
/// SIGTSTP, SIGTTIN and SIGTTOU reach the container instead of stopping the caller (the
/// container is in a session of its own, so the caller's terminal never stops it).
/// SIGWINCH is forwarded as any other signal; with a [`TtyRelay`](super::TtyRelay) leave it
/// out ([`SignalForwarder::all_except`]): the relay takes it and resizes the container's
/// terminal, and the kernel signals the terminal's foreground process group itself.
///
/// The synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) are
/// forwarded when another process sends them; a fault of the caller itself still ends it
/// (the kernel forces a blocked fault signal's default action).
pub const FORWARDABLE: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGUSR1,
    Signal::SIGSEGV,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGSYS,
];

/// The real-time signals a process may use, in order: `SIGRTMIN` to `SIGRTMAX` as the C
/// library reports them (34 to 64 with glibc, which keeps 32 and 33 for its threads).
pub fn real_time_signals() -> Vec<Signal> {
    (0..).map_while(Signal::rt).collect()
}

/// Every signal [`SignalForwarder::all`] forwards: [`FORWARDABLE`], then
/// [`real_time_signals`].
pub fn forwardable_signals() -> Vec<Signal> {
    let mut all = FORWARDABLE.to_vec();
    all.extend(real_time_signals());
    all
}

/// Sends signals to a child through a duplicate of its pidfd, from any thread. Signalling a
/// child that has ended (even one already reaped) is not an error and never reaches another
/// process: the pidfd names this one process only.
#[derive(Debug)]
pub struct Signaller {
    pidfd: OwnedFd,
}

impl Signaller {
    pub(crate) fn new(pidfd: OwnedFd) -> Signaller {
        Signaller { pidfd }
    }

    /// Sends `signal`.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pidfd_send_signal` (Linux 5.1): `EPERM` when the caller may not
    /// signal the child. A child that has already ended is not an error.
    pub fn kill(&self, signal: Signal) -> Result<()> {
        match sys::pidfd_send_signal(self.pidfd.as_fd(), signal.raw()) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys("pidfd_send_signal", e)),
        }
    }
}

/// Forwards the caller's signals (all it can catch with [`SignalForwarder::all`], or a set
/// of them) to a child until it ends, as `docker run` does with `--sig-proxy` (its default).
///
/// The signals are blocked in the calling thread and taken from a signalfd by a helper
/// thread ([`forward_to`](SignalForwarder::forward_to)), or by the calling thread itself
/// until the child ends ([`forward_until_exit`](SignalForwarder::forward_until_exit)).
/// Create it from the main thread before starting other threads, so that no other
/// thread of the process takes the signals instead. A forwarded signal is sent with
/// `pidfd_send_signal` without its original `siginfo` (sender, `sigqueue` value); each queued
/// instance of a real-time signal is sent on.
///
/// ```no_run
/// use contain::process::{Container, SignalForwarder};
/// let mut forward = SignalForwarder::all()?; // blocked from here on: none is lost
/// let mut child = Container::new("sleep").arg("60").spawn()?;
/// forward.forward_to(child.signaller()?)?;
/// let status = child.wait()?; // Ctrl-C, SIGUSR1, SIGTSTP... now reach the container
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalForwarder {
    thread: Option<JoinHandle<()>>,
    /// Forwarding began (from a thread or the caller's): pending signals are discarded at
    /// drop.
    forwarded: bool,
    old_mask: SigSet,
    set: SigSet,
}

impl SignalForwarder {
    /// Blocks `signals` in the calling thread now, so that one arriving while the container
    /// is still being set up waits for it instead of ending the caller; [`forward_to`]
    /// then passes it (and every later one) on.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for SIGKILL or SIGSTOP (they cannot be blocked), or one of the C library's own (32 and 33 with glibc, below
    /// `SIGRTMIN`), which it never lets a program block.
    ///
    /// [`forward_to`]: SignalForwarder::forward_to
    pub fn new(signals: &[Signal]) -> Result<SignalForwarder> {
        let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(raw.as_mut_ptr()) };
        // SAFETY: initialised just above.
        let mut raw = unsafe { raw.assume_init() };
        for &s in signals {
            let usable = s != Signal::SIGKILL
                && s != Signal::SIGSTOP
                && !(32..libc::SIGRTMIN()).contains(&s.raw());
            if !usable {
                return Err(Error::config(
                    "signal",
                    format!(
                        "{s} cannot be forwarded: SIGKILL, SIGSTOP, or one the C library keeps \
                         for itself (use forwardable_signals())"
                    ),
                ));
            }
            // SAFETY: an initialised set and a valid signal number (a Signal is one).
            unsafe { libc::sigaddset(&mut raw, s.raw()) };
        }
        // SAFETY: `raw` was built with sigemptyset and sigaddset.
        let set = unsafe { SigSet::from_sigset_t_unchecked(raw) };
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(|e| Error::sys("pthread_sigmask", e))?;
        let forwarder = SignalForwarder {
            thread: None,
            forwarded: false,
            old_mask,
            set,
        };
        Ok(forwarder)
    }

    /// [`new`](Self::new) with every signal a process can catch but SIGCHLD and SIGPIPE
    /// ([`forwardable_signals`]), as docker's sig-proxy.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pthread_sigmask` (not expected).
    pub fn all() -> Result<SignalForwarder> {
        SignalForwarder::new(&forwardable_signals())
    }

    /// [`all`](Self::all) but `skip`, e.g. `&[Signal::SIGWINCH]` when a
    /// [`TtyRelay`](super::TtyRelay) takes the window size changes.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pthread_sigmask` (not expected).
    pub fn all_except(skip: &[Signal]) -> Result<SignalForwarder> {
        let mut signals = forwardable_signals();
        signals.retain(|s| !skip.contains(s));
        SignalForwarder::new(&signals)
    }

    /// Starts forwarding to the child behind `to` (signals already pending included).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when this forwarder already forwards; [`Error::Sys`] naming `signalfd`
    /// (`EMFILE`) or `pthread_create` (`EAGAIN`).
    pub fn forward_to(&mut self, to: Signaller) -> Result<()> {
        if self.thread.is_some() {
            return Err(Error::config("signal forwarder", "already forwarding"));
        }
        let sfd = self.signalfd()?;
        let thread = std::thread::Builder::new()
            .name("contain-signals".into())
            .spawn(move || {
                block_all_signals_in_this_thread();
                let _ = forward(&sfd, &to);
            })
            .map_err(|e| {
                Error::sys(
                    "pthread_create",
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                )
            })?;
        self.thread = Some(thread);
        self.forwarded = true;
        Ok(())
    }

    /// Forwards in the calling thread, until the child behind `to` has ended (signals
    /// already pending included); reap it then (`Child::wait`). For a caller with nothing
    /// else to do meanwhile, as a `docker run` without a terminal: no helper thread is
    /// started (its creation, stack and exit are most of what forwarding costs a short
    /// container).
    ///
    /// ```no_run
    /// use contain::process::{Container, SignalForwarder};
    /// let mut forward = SignalForwarder::all()?;
    /// let mut child = Container::new("sleep").arg("60").spawn()?;
    /// forward.forward_until_exit(&child.signaller()?)?; // returns when the child has ended
    /// let status = child.wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when this forwarder already forwards from its own thread
    /// ([`forward_to`](Self::forward_to)); [`Error::Sys`] naming `signalfd` (`EMFILE`) or
    /// `poll` (not expected).
    pub fn forward_until_exit(&mut self, to: &Signaller) -> Result<()> {
        if self.thread.is_some() {
            return Err(Error::config("signal forwarder", "already forwarding"));
        }
        let sfd = self.signalfd()?;
        self.forwarded = true;
        forward(&sfd, to).map_err(|e| Error::sys("poll(signalfd, pidfd)", e))
    }

    /// A non-blocking signalfd of the set.
    fn signalfd(&self) -> Result<SignalFd> {
        SignalFd::with_flags(&self.set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::sys("signalfd", e))
    }

    /// [`new`](Self::new) and [`forward_to`](Self::forward_to) in one step.
    ///
    /// # Errors
    ///
    /// Those of [`new`](Self::new) and [`forward_to`](Self::forward_to).
    pub fn start(to: Signaller, signals: &[Signal]) -> Result<SignalForwarder> {
        let mut f = SignalForwarder::new(signals)?;
        f.forward_to(to)?;
        Ok(f)
    }
}

/// Blocks every signal in the calling (helper) thread, so that process-directed signals wait
/// for the signalfds that read them instead of being taken by a helper thread.
pub(crate) fn block_all_signals_in_this_thread() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None);
}

/// Until the child ends (its pidfd polls readable), passes every signal read on `sfd` on;
/// `poll`'s error if it fails (not expected).
fn forward(sfd: &SignalFd, to: &Signaller) -> std::result::Result<(), Errno> {
    loop {
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(to.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE).ours() {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
        let signal_ready = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        let child_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if signal_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                if let Some(signal) = Signal::from_raw(info.ssi_signo as i32) {
                    let _ = to.kill(signal);
                }
            }
        }
        if child_gone {
            return Ok(());
        }
    }
}

impl Drop for SignalForwarder {
    /// Waits for the helper thread, if any (it ends with the child), and restores the signal
    /// mask of the thread that made it. Drop it after the child has ended. A signal of the
    /// set still pending then arrived for the child after it ended: it is discarded rather
    /// than acting on the caller (a late SIGUSR1 would end it, a SIGTSTP stop it). Without
    /// [`forward_to`](Self::forward_to) or [`forward_until_exit`](Self::forward_until_exit)
    /// (no child started) pending ones act as usual.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.forwarded {
            if let Ok(sfd) = self.signalfd() {
                while let Ok(Some(_)) = sfd.read_signal() {}
            }
        }
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}
