//! Signals from the caller's side: a [`Signaller`] that other threads can use, and a
//! [`SignalForwarder`] that passes the caller's own SIGINT/SIGTERM/SIGHUP on to the container,
//! so that Ctrl-C behaves as with `docker run`.

use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::sys;
use crate::{Errno, Error, Result};

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
    pub fn kill(&self, signal: i32) -> Result<()> {
        match sys::pidfd_send_signal(self.pidfd.as_fd(), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys("pidfd_send_signal", e)),
        }
    }
}

/// Forwards the caller's SIGINT, SIGTERM and SIGHUP (or another set) to a child until it
/// ends.
///
/// The signals are blocked in the calling thread and taken from a signalfd by a helper
/// thread. Create it from the main thread before starting other threads, so that no other
/// thread of the process takes the signals instead.
///
/// ```no_run
/// use contain::process::{Container, SignalForwarder};
/// let mut child = Container::new("sleep").arg("60").spawn()?;
/// let _forward = SignalForwarder::start(child.signaller()?, &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])?;
/// let status = child.wait()?; // Ctrl-C now reaches the container
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalForwarder {
    thread: Option<JoinHandle<()>>,
    old_mask: SigSet,
    set: SigSet,
}

impl SignalForwarder {
    /// Blocks `signals` in the calling thread now, so that one arriving while the container
    /// is still being set up waits for it instead of ending the caller; [`forward_to`]
    /// then passes it (and every later one) on.
    ///
    /// [`forward_to`]: SignalForwarder::forward_to
    pub fn new(signals: &[i32]) -> Result<SignalForwarder> {
        let mut set = SigSet::empty();
        for &s in signals {
            let sig = Signal::try_from(s)
                .map_err(|_| Error::config("signal", format!("{s} cannot be forwarded")))?;
            set.add(sig);
        }
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(|e| Error::sys("pthread_sigmask", e))?;
        let forwarder = SignalForwarder {
            thread: None,
            old_mask,
            set,
        };
        Ok(forwarder)
    }

    /// Starts forwarding to the child behind `to` (signals already pending included).
    pub fn forward_to(&mut self, to: Signaller) -> Result<()> {
        if self.thread.is_some() {
            return Err(Error::config("signal forwarder", "already forwarding"));
        }
        let sfd = SignalFd::with_flags(&self.set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::sys("signalfd", e))?;
        let thread = std::thread::Builder::new()
            .name("contain-signals".into())
            .spawn(move || forward(sfd, to))
            .map_err(|e| {
                Error::sys(
                    "pthread_create",
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                )
            })?;
        self.thread = Some(thread);
        Ok(())
    }

    /// [`new`](Self::new) and [`forward_to`](Self::forward_to) in one step.
    pub fn start(to: Signaller, signals: &[i32]) -> Result<SignalForwarder> {
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

/// Until the child ends (its pidfd polls readable), passes every signal read on `sfd` on.
fn forward(sfd: SignalFd, to: Signaller) {
    block_all_signals_in_this_thread();
    loop {
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(to.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
        let signal_ready = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        let child_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if signal_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let _ = to.kill(info.ssi_signo as i32);
            }
        }
        if child_gone {
            return;
        }
    }
}

impl Drop for SignalForwarder {
    /// Waits for the helper thread (it ends with the child) and restores the signal mask of
    /// the thread that started it. Drop it after the child has ended.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}
