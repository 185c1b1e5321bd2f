//! A pseudo-terminal for the container, and a relay between it and the caller's terminal.
//!
//! With [`Container::tty`](super::Container::tty) the container's stdin, stdout and stderr
//! are the slave side of a new pty, which becomes its controlling terminal (after `setsid`);
//! the master side is returned in [`Child::take_tty`](super::Child::take_tty). A [`TtyRelay`]
//! copies between that master and the caller's own terminal in raw mode, and passes window
//! size changes (SIGWINCH) on.
//!
//! The relay is made for a person at a terminal. It accepts input that is not a terminal
//! (a pipe, a file, /dev/null), but that input goes through the container terminal's line
//! discipline as typed keys, with the limits listed on [`TtyRelay`]; the run example
//! therefore refuses `-t` when its stdin is not a terminal, as docker does with `-it` ("the
//! input device is not a TTY"). To pass data to a container, give it a pipe, not a tty.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

use crate::errno::NixResultExt;
use crate::{Errno, Error, Result};

/// A terminal's size in character cells: rows and columns, as `stty size` prints them (the
/// `height` and `width` of docker's console size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WindowSize {
    /// Lines (`ws_row`).
    pub rows: u16,
    /// Columns (`ws_col`).
    pub cols: u16,
}

/// The window size of the terminal on `fd`, if it is one (`ioctl(TIOCGWINSZ)`).
///
/// ```no_run
/// use std::os::fd::AsFd;
/// if let Some(size) = contain::process::window_size(std::io::stdout().as_fd()) {
///     println!("{} rows, {} columns", size.rows, size.cols);
/// }
/// ```
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WindowSize> {
    get_winsize(fd).map(|ws| WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the window size of the terminal on `fd` (`ioctl(TIOCSWINSZ)`; the kernel signals
/// SIGWINCH to its foreground process group). The pixel sizes are set to 0 (unknown).
///
/// # Errors
///
/// [`Error::Sys`] naming `ioctl(TIOCSWINSZ)`: `ENOTTY` when `fd` is not a terminal, `EBADF`.
pub fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> Result<()> {
    set_winsize(
        fd,
        &libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
}

/// The kernel's window size of the terminal on `fd`, pixels included.
fn get_winsize(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a struct winsize into `ws`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws)
}

/// Sets the window size of the terminal on `fd` (the kernel signals its foreground group).
fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads a struct winsize from `ws`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    if r == 0 {
        Ok(())
    } else {
        Err(Error::sys("ioctl(TIOCSWINSZ)", Errno::last()))
    }
}

/// The size of the caller's terminal: stdin's when it is one, else stdout's.
pub(crate) fn caller_window_size() -> Option<libc::winsize> {
    get_winsize(std::io::stdin().as_fd()).or_else(|| get_winsize(std::io::stdout().as_fd()))
}

/// The first size of a container's pty: `asked` (its
/// [`console_size`](super::Container::console_size)), else the caller's terminal's.
pub(crate) fn first_window_size(asked: Option<WindowSize>) -> Option<libc::winsize> {
    match asked {
        Some(size) => Some(libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None => caller_window_size(),
    }
}

/// A new pty pair, `asked` in size or else the size of the caller's terminal (see
/// [`first_window_size`]).
pub(crate) fn open_pty(asked: Option<WindowSize>) -> Result<(OwnedFd, OwnedFd)> {
    let pty = nix::pty::openpty(first_window_size(asked).as_ref(), None)
        .map_err(|e| Error::sys_path("openpty", "/dev/ptmx", e))?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| Error::sys("fcntl(F_SETFD)", e))?;
    }
    Ok((pty.master, pty.slave))
}

/// Copies the caller's terminal input to the container's pty and its output back, with the
/// caller's terminal in raw mode (restored on drop) and window size changes passed on.
///
/// Create it from the main thread before starting other threads (it blocks SIGWINCH to read
/// it from a signalfd; a [`SignalForwarder`](super::SignalForwarder) beside it must leave
/// SIGWINCH out, see [`SignalForwarder::all_except`](super::SignalForwarder::all_except)).
/// It ends when the container has closed its side of the pty.
///
/// `input` and `output` may be terminals or not: raw mode is set only when `input` is one;
/// the first window size is `input`'s, else `output`'s, else the pty's own (0x0).
///
/// Input that is not a terminal is accepted, but the container's terminal treats every byte
/// of it as a key typed by a person, so it is not a faithful channel for data:
/// - in canonical mode (the default) the terminal echoes the input back to the output, so
///   it appears twice (`echo hi` through `cat` prints `hi` twice), and a line longer than
///   4095 bytes is cut (the kernel's N_TTY line buffer: the rest is dropped until a newline);
/// - control bytes act as keys: ^C (VINTR), ^Z (VSUSP) and ^\ (VQUIT) signal the container's
///   foreground group, ^D (VEOF) ends a read, ^U and ^? edit the line;
/// - when `input` ends (EOF or a hang-up) the relay writes the terminal's EOF character
///   (VEOF, ^D by default; twice after a partial line) so that a canonical-mode reader such
///   as `cat` sees EOF. This races with the container: the line discipline interprets a byte
///   when it arrives, so a program that switches to raw mode after the EOF character has
///   arrived (a shell reading commands with line editing) reads it as a NUL byte or a ^D key,
///   and may never see the end of its input.
///
/// Whatever the input, the relay never busy-loops: after `input` ends it leaves the poll set
/// (a hung-up fd polls ready for ever) and the relay only waits in `poll` for output and
/// window changes; input is read only as fast as the container's terminal takes it, while
/// its output keeps being read, so neither side can block the other.
///
/// ```no_run
/// use std::os::fd::AsFd;
/// use contain::process::{Container, TtyRelay};
/// let mut child = Container::new("sh").tty(true).spawn()?;
/// let relay = TtyRelay::start(child.take_tty().unwrap(), std::io::stdin().as_fd(), std::io::stdout().as_fd())?;
/// let status = child.wait()?;
/// relay.finish();
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct TtyRelay {
    thread: Option<JoinHandle<()>>,
    saved: Option<(OwnedFd, Termios)>,
    old_mask: SigSet,
}

impl TtyRelay {
    /// Starts relaying between `master` (the container's pty) and `input`/`output`.
    ///
    /// The relay makes `master` non-blocking (`O_NONBLOCK` on its open file description), so
    /// that input waits while the container's output is full instead of blocking the relay:
    /// a copy of it the caller kept (`dup`) is non-blocking too.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fcntl(F_DUPFD_CLOEXEC)` (`EMFILE`), `tcsetattr`, `ioctl(TIOCSWINSZ)`,
    /// `pthread_sigmask`, `signalfd` or `pthread_create` (`EAGAIN`). An `input` that is not a
    /// terminal is not an error.
    pub fn start(
        master: OwnedFd,
        input: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
    ) -> Result<TtyRelay> {
        let input = input
            .try_clone_to_owned()
            .map_err(io_err("fcntl(F_DUPFD_CLOEXEC)"))?;
        let output = output
            .try_clone_to_owned()
            .map_err(io_err("fcntl(F_DUPFD_CLOEXEC)"))?;
        // SIGWINCH is blocked (to be read from a signalfd) before anything else changes, and
        // the guard that undoes both exists from then on: no early return can leave the
        // caller's terminal raw or its mask changed.
        let mut winch = SigSet::empty();
        winch.add(Signal::SIGWINCH);
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&winch), Some(&mut old_mask))
            .map_err(|e| Error::sys("pthread_sigmask", e))?;
        let mut relay = TtyRelay {
            thread: None,
            saved: None,
            old_mask,
        };
        match termios::tcgetattr(&input) {
            Ok(t) => {
                if let Some(ws) = get_winsize(input.as_fd()) {
                    set_winsize(master.as_fd(), &ws)?;
                }
                let keep = input
                    .try_clone()
                    .map_err(io_err("fcntl(F_DUPFD_CLOEXEC)"))?;
                let mut raw = t.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(&input, SetArg::TCSANOW, &raw)
                    .map_err(|e| Error::sys("tcsetattr", e))?;
                relay.saved = Some((keep, t));
            }
            Err(_) => {
                // Not a terminal: plain copying, no raw mode; the size of the terminal we
                // write to, if any.
                if let Some(ws) = get_winsize(output.as_fd()) {
                    set_winsize(master.as_fd(), &ws)?;
                }
            }
        }
        let sfd = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::sys("signalfd", e))?;
        let thread = std::thread::Builder::new()
            .name("contain-tty".into())
            .spawn(move || copy_loop(&master, &input, &output, &sfd))
            .map_err(io_err("pthread_create"))?;
        relay.thread = Some(thread);
        Ok(relay)
    }

    /// Waits for the relay to end (the container closed its terminal) and restores the
    /// caller's terminal.
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn io_err(syscall: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::sys(syscall, crate::error::io_errno(&e))
}

fn copy_loop(master: &OwnedFd, input: &OwnedFd, output: &OwnedFd, winch: &SignalFd) {
    super::signals::block_all_signals_in_this_thread();
    // Writes to the container's terminal never block: a container that writes before it
    // reads (`seq 100000 | run -t cat`) would otherwise fill the pty's output while we wait
    // to put more input in, and neither side would move again.
    if let Ok(flags) = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_GETFL) {
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        let _ = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    let mut buf = [0u8; 8192];
    // Input read but not yet taken by the container's terminal; no more is read until it is.
    let mut pending: Vec<u8> = Vec::with_capacity(buf.len());
    let mut input_open = true;
    // What the container's terminal last got from us: at the start of a line, one VEOF ends
    // its input; after a partial line the first only hands the line over.
    let mut at_line_start = true;
    loop {
        // Once the input has ended it leaves the poll set: a hung-up pipe or terminal polls
        // POLLHUP for ever, whatever events are asked for.
        let read_input = input_open && pending.is_empty();
        let master_events = if pending.is_empty() {
            PollFlags::POLLIN
        } else {
            PollFlags::POLLIN | PollFlags::POLLOUT
        };
        let mut fds = [
            PollFd::new(master.as_fd(), master_events),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
            PollFd::new(input.as_fd(), PollFlags::POLLIN),
        ];
        let watched = if read_input { 3 } else { 2 };
        match nix::poll::poll(&mut fds[..watched], PollTimeout::NONE).ours() {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        let (m, w, i) = (ready(0), ready(1), ready(2));
        if m.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master, &mut buf).ours() {
                Ok(0) | Err(Errno::EIO) => return, // every slave fd closed: the container is done
                Ok(n) => {
                    if write_all(output, &buf[..n]).is_err() {
                        return;
                    }
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => return,
            }
        }
        if m.contains(PollFlags::POLLOUT) && !pending.is_empty() {
            match nix::unistd::write(master, &pending).ours() {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => {
                    // The container's terminal takes no more input: drop it, as a closed
                    // input (the output side still ends the relay).
                    pending.clear();
                    input_open = false;
                }
            }
        }
        if read_input && i.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(input, &mut buf).ours() {
                Ok(n) if n > 0 => {
                    pending.extend_from_slice(&buf[..n]);
                    at_line_start = buf[n - 1] == b'\n';
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Ok(_) | Err(_) => {
                    input_open = false;
                    pending.extend(eof_chars(master, at_line_start));
                }
            }
        }
        if w.contains(PollFlags::POLLIN) {
            while let Ok(Some(_)) = winch.read_signal() {}
            if let Some(ws) = get_winsize(input.as_fd()).or_else(|| get_winsize(output.as_fd())) {
                let _ = set_winsize(master.as_fd(), &ws);
            }
        }
    }
}

/// The end of our input as a person at a terminal passes it on: the container terminal's
/// EOF character (VEOF, ^D unless the container changed it), twice after a partial line
/// (the first only hands the line to the reader); none when the container disabled it. A
/// program that turned canonical mode off gets the character(s) as input, as it would from
/// a person.
fn eof_chars(master: &OwnedFd, at_line_start: bool) -> impl Iterator<Item = u8> {
    let eof = match termios::tcgetattr(master) {
        Ok(t) => t.control_chars[libc::VEOF],
        Err(_) => 0o4,
    };
    let times = match (eof, at_line_start) {
        (0, _) => 0, // _POSIX_VDISABLE
        (_, true) => 1,
        (_, false) => 2,
    };
    std::iter::repeat_n(eof, times)
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data).ours() {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Drop for TtyRelay {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((fd, t)) = &self.saved {
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, t);
        }
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}
