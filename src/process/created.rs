//! OCI's create/start split: a container set up to its last step, parked before exec until a
//! `start` (from this process or another) lets it run.
//!
//! runc parks its init on an exec fifo in the container's state directory; so does this. The
//! fifo is made by [`Container::create`] at a path the caller picks (an OCI runtime puts it
//! in its state directory), and the parked process holds it open read-write, blocked in
//! `read`. [`start`] opens it write-only (which succeeds at once: there is a reader), writes
//! one byte, and removes it. The fifo existing therefore means "created, not started" — what
//! `state` reports as `created` (runtime spec, runtime.md#state) — and opening it with
//! `ENXIO` means the parked process is gone.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::stat::Mode;

use super::{Child, Container};
use crate::cgroup::Cgroup;
use crate::errno::NixResultExt;
use crate::{Errno, Error, Pid, Result};

/// A container that [`Container::create`] set up and parked before exec: namespaces, mounts,
/// id maps, cgroup, security all in place, the command not yet running (OCI's `created`).
///
/// Dropping it kills the parked process and removes its cgroup and exec fifo, as dropping a
/// [`Child`] does; [`start`](Self::start) lets it run in this process;
/// [`detach`](Self::detach) leaves it parked for another process to [`start`](start()), as an
/// OCI runtime's `create` does before it exits.
#[derive(Debug)]
pub struct Created {
    child: Child,
    fifo: ExecFifo,
    /// Our end of the hold socket: the parked process waits for a byte on it before it
    /// waits on the fifo, and exits at its end of file (this side closed unreleased: the
    /// creator died, or dropped this).
    hold: OwnedFd,
}

/// The exec fifo, removed when dropped unless [`keep`](Self::keep) said otherwise.
#[derive(Debug)]
struct ExecFifo {
    path: PathBuf,
    /// Our read-write end, for [`Created::start`] in this process.
    fd: OwnedFd,
    keep: bool,
}

impl ExecFifo {
    fn keep(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for ExecFifo {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What [`Created::detach`] leaves: the parked process, which nothing here owns any more.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Detached {
    /// The parked process, in the caller's PID namespace.
    pub pid: Pid,
    /// Its cgroup, when `create` made one (kept: no longer removed by this crate).
    pub cgroup: Option<PathBuf>,
    /// The parents `create` made for an exact cgroup path
    /// ([`Container::cgroup_path`]), deepest first: what a later `delete` removes after the
    /// cgroup, each only when empty. Parents that existed before are not listed.
    pub cgroup_parents_made: Vec<PathBuf>,
    /// The exec fifo that [`start`](start()) writes to.
    pub exec_fifo: PathBuf,
}

impl Container {
    /// Sets the container up as [`spawn`](Self::spawn) does, but parks it before exec (OCI's
    /// `create`, runtime.md#create): returns once every namespace, mount, id map, cgroup and
    /// security setting is in place and the command has been found, without running it.
    /// [`Created::start`] (or [`start`](start()) from any process) then lets it exec.
    ///
    /// `exec_fifo` is where the fifo that `start` writes to is made (mode 0600; it must not
    /// exist). For a parked process that must outlive its creator, set
    /// [`parent_death_signal`](Self::parent_death_signal)`(None)` and
    /// [`Created::detach`] it: it is then re-parented to the caller's subreaper (a container
    /// shim) or init.
    ///
    /// ```no_run
    /// use contain::namespace::Namespaces;
    /// use contain::process::Container;
    /// let created = Container::new("echo").arg("hello")
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .create("/run/my-runtime/c1/exec.fifo")?;
    /// println!("created, pid {}", created.pid());
    /// let mut child = created.start()?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `mkfifo` and the path (`EEXIST`: a fifo is there already, the
    /// container was created before) or `open`; those of [`spawn`](Self::spawn), including
    /// the exec errors of a command that cannot be found or is not executable (reported here,
    /// not at `start`). The fifo is removed on failure.
    pub fn create(&self, exec_fifo: impl AsRef<Path>) -> Result<Created> {
        let path = exec_fifo.as_ref();
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::sys_path("mkfifo", path, e))?;
        let fd = match nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(Error::sys_path("open", path, Errno::from_raw(e as i32)));
            }
        };
        let fifo = ExecFifo {
            path: path.to_owned(),
            fd,
            keep: false,
        };
        let (hold, held) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("socketpair(hold)", Errno::from_raw(e as i32)))?;
        let prepared = super::spawn::Prepared::new(self)?;
        let child = prepared.spawn(self, false, Some([fifo.fd.as_fd(), held.as_fd()]))?;
        Ok(Created { child, fifo, hold })
    }
}

impl Created {
    /// The parked process, in the caller's PID namespace (OCI state's `pid`).
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// A pidfd of the parked process.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }

    /// The cgroup `create` made for it, if any.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.child.cgroup()
    }

    /// The parents `create` made for its exact cgroup path ([`Container::cgroup_path`]),
    /// deepest first ([`OwnedCgroup::made_parents`](crate::cgroup::OwnedCgroup::made_parents));
    /// empty otherwise.
    pub fn cgroup_parents_made(&self) -> Vec<PathBuf> {
        self.child
            .cgroup
            .as_ref()
            .map(crate::cgroup::OwnedCgroup::made_parents)
            .unwrap_or_default()
    }

    /// Where its exec fifo is.
    pub fn exec_fifo(&self) -> &Path {
        &self.fifo.path
    }

    /// Takes the master side of its pseudo-terminal ([`Container::tty`]), e.g. to send it to
    /// an OCI `--console-socket`.
    pub fn take_tty(&mut self) -> Option<OwnedFd> {
        self.child.take_tty()
    }

    /// Lets it exec and returns it as a [`Child`] (OCI's `start` in the creating process).
    /// The fifo is removed.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `write(exec fifo)`; the parked process is then killed (the
    /// `Created` is dropped).
    pub fn start(self) -> Result<Child> {
        release(self.hold.as_fd())?;
        write_byte(self.fifo.fd.as_fd(), &self.fifo.path)?;
        Ok(self.child)
    }

    /// Leaves the process parked and lets go of it: it is not killed, its cgroup is not
    /// removed and its fifo stays, for another process to [`start`](start()) it and the
    /// caller's subreaper to reap it. The caller's ends of [`Stdio::Piped`] streams are
    /// closed.
    ///
    /// Until this (or [`start`](Self::start)), the parked process is held by its creator: if
    /// the creator dies first (an OCI runtime's `create` killed before it saved the
    /// container's state), the process exits instead of staying parked where nothing knows
    /// of it. So call it last, once whatever records the container is written.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `send(hold)`: `EPIPE` when the parked process is gone (killed
    /// from outside); it is then reaped, and its cgroup and fifo removed, as on drop.
    ///
    /// [`Stdio::Piped`]: super::Stdio::Piped
    pub fn detach(self) -> Result<Detached> {
        release(self.hold.as_fd())?;
        let exec_fifo = self.fifo.keep();
        let (pid, cgroup, cgroup_parents_made) = self.child.release();
        Ok(Detached {
            pid,
            cgroup: cgroup.map(|cg| cg.path().to_owned()),
            cgroup_parents_made,
            exec_fifo,
        })
    }
}

/// Starts the container parked on `exec_fifo` by [`Container::create`] in any process (OCI's
/// `start`, runtime.md#start): writes the byte it waits for and removes the fifo. Returns when
/// the byte is written; the process execs right after.
///
/// # Errors
///
/// [`Error::Sys`] naming `open` and the fifo: `ENOENT` when there is none (never created, or
/// started already), `ENXIO` when nobody reads it (the parked process is gone); or naming
/// `write(exec fifo)`.
pub fn start(exec_fifo: impl AsRef<Path>) -> Result<()> {
    let path = exec_fifo.as_ref();
    let fd = nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ours()
    .map_err(|e| Error::sys_path("open", path, e))?;
    write_byte(fd.as_fd(), path)?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Releases a parked process from its creator: one byte on the hold socket (no SIGPIPE when
/// the process is gone: `EPIPE`).
fn release(hold: BorrowedFd<'_>) -> Result<()> {
    loop {
        match send(hold.as_raw_fd(), &[1u8], MsgFlags::MSG_NOSIGNAL).ours() {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::sys("send(hold)", Errno::EIO)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("send(hold)", e)),
        }
    }
}

fn write_byte(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    loop {
        match nix::unistd::write(fd, &[0u8]).ours() {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::sys_path("write(exec fifo)", path, Errno::EIO)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_path("write(exec fifo)", path, e)),
        }
    }
}
