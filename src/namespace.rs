//! Linux namespaces: the flags that create them, handles that name them, and joining them.
//!
//! A [`Namespace`] is an open `/proc/PID/ns/*` file (an [`OwnedFd`]): holding it keeps the
//! namespace alive, and its [`NamespaceId`] (device and inode) is what the kernel uses to tell
//! namespaces apart, so two handles can be compared without racing against pid reuse.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys;
use crate::{Errno, Error, Pid, Result};

bitflags::bitflags! {
    /// A set of namespace kinds, as `clone3(2)`/`unshare(2)` flags.
    ///
    /// ```
    /// use contain::namespace::Namespaces;
    /// let ns: Namespaces = "user,mount,pid".parse().unwrap();
    /// assert_eq!(ns, Namespaces::USER | Namespaces::MOUNT | Namespaces::PID);
    /// assert_eq!("all".parse::<Namespaces>().unwrap(), Namespaces::all());
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Namespaces: u64 {
        /// User and group ids, capabilities (`CLONE_NEWUSER`).
        const USER = libc::CLONE_NEWUSER as u64;
        /// The mount table (`CLONE_NEWNS`).
        const MOUNT = libc::CLONE_NEWNS as u64;
        /// Process ids; the first process is PID 1 (`CLONE_NEWPID`).
        const PID = libc::CLONE_NEWPID as u64;
        /// Hostname and NIS domain name (`CLONE_NEWUTS`).
        const UTS = libc::CLONE_NEWUTS as u64;
        /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
        const IPC = libc::CLONE_NEWIPC as u64;
        /// Network devices, addresses, routes, ports (`CLONE_NEWNET`).
        const NET = libc::CLONE_NEWNET as u64;
        /// The view of `/proc/self/cgroup` (`CLONE_NEWCGROUP`).
        const CGROUP = libc::CLONE_NEWCGROUP as u64;
        /// CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets (`CLONE_NEWTIME`, Linux 5.6; with `clone3`
        /// or `unshare`, not `clone`, where the bit is taken by the exit signal).
        const TIME = sys::CLONE_NEWTIME;
    }
}

/// Each kind with its `/proc/PID/ns` name and the names the CLI accepts.
const KINDS: [(Namespaces, &str, &[&str]); 8] = [
    (Namespaces::USER, "user", &["user"]),
    (Namespaces::MOUNT, "mnt", &["mount", "mnt"]),
    (Namespaces::PID, "pid", &["pid"]),
    (Namespaces::UTS, "uts", &["uts"]),
    (Namespaces::IPC, "ipc", &["ipc"]),
    (Namespaces::NET, "net", &["net", "network"]),
    (Namespaces::CGROUP, "cgroup", &["cgroup"]),
    (Namespaces::TIME, "time", &["time"]),
];

impl Namespaces {
    /// The `/proc/PID/ns/` file name of a single kind (`"mnt"` for [`Namespaces::MOUNT`]), or
    /// `None` when `self` is not exactly one kind.
    pub fn proc_name(self) -> Option<&'static str> {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
    }

    /// The single kinds in `self`, in the order the kernel should enter them (user first).
    pub fn kinds(self) -> impl Iterator<Item = Namespaces> {
        KINDS
            .iter()
            .map(|(k, _, _)| *k)
            .filter(move |k| self.contains(*k))
    }
}

impl FromStr for Namespaces {
    type Err = Error;

    /// Parses a comma list of `user,mount,pid,uts,ipc,net,cgroup,time`, or `all`.
    fn from_str(s: &str) -> Result<Self> {
        let mut ns = Namespaces::empty();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                ns |= Namespaces::all();
                continue;
            }
            let (k, _, _) = KINDS
                .iter()
                .find(|(_, _, names)| names.contains(&word))
                .ok_or_else(|| Error::config("namespace list", format!("unknown namespace {word:?} (expected user, mount, pid, uts, ipc, net, cgroup, time or all)")))?;
            ns |= *k;
        }
        Ok(ns)
    }
}

/// The kernel's identity of a namespace: the device and inode of its nsfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceId {
    /// `st_dev` of the nsfs file.
    pub dev: u64,
    /// `st_ino` of the nsfs file (what `readlink /proc/PID/ns/X` shows as `X:[ino]`).
    pub ino: u64,
}

impl fmt::Display for NamespaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}:{}]", self.dev, self.ino)
    }
}

/// An open namespace: a `/proc/PID/ns/*` file, or any nsfs fd.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// let mine = Namespace::current(Namespaces::NET)?;
/// # let pid1 = contain::Pid::from_raw(1).unwrap();
/// let init = Namespace::of_pid(pid1, Namespaces::NET)?;
/// println!("same network namespace as pid 1: {}", mine.id()? == init.id()?);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
    kind: Namespaces,
}

impl Namespace {
    /// The calling thread's namespace of `kind`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `kind` is not exactly one kind; [`Error::Sys`] naming `open` and
    /// `/proc/thread-self/ns/<kind>` (`ENOENT` without `/proc` or for a kind the kernel lacks, e.g.
    /// `time` before Linux 5.6).
    pub fn current(kind: Namespaces) -> Result<Namespace> {
        Self::open(PathBuf::from("/proc/thread-self/ns"), kind)
    }

    /// Process `pid`'s namespace of `kind`, from `/proc/PID/ns`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `kind` is not exactly one kind; [`Error::Sys`] naming `open` and
    /// `/proc/<pid>/ns/<kind>`: `ENOENT` when there is no such process (or kind), `EACCES` when the
    /// caller may not ptrace-read it (another user's process without `CAP_SYS_PTRACE`).
    pub fn of_pid(pid: Pid, kind: Namespaces) -> Result<Namespace> {
        Self::open(PathBuf::from(format!("/proc/{pid}/ns")), kind)
    }

    fn open(dir: PathBuf, kind: Namespaces) -> Result<Namespace> {
        let name = kind.proc_name().ok_or_else(|| {
            Error::config(
                "namespace kind",
                format!("{kind:?} is not exactly one namespace"),
            )
        })?;
        let path = dir.join(name);
        let fd = nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys_path("open", &path, e))?;
        Ok(Namespace { fd, kind })
    }

    /// Wraps an nsfs fd of unknown kind, asking the kernel for its kind (`NS_GET_NSTYPE`).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `ioctl(NS_GET_NSTYPE)` (Linux 4.11): `ENOTTY` or `EINVAL` when `fd` is
    /// not a namespace file; [`Error::Unsupported`] for a namespace kind this crate does not know.
    /// `fd` is closed in both cases.
    pub fn from_fd(fd: OwnedFd) -> Result<Namespace> {
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
                                                     // SAFETY: NS_GET_NSTYPE takes no argument and returns the CLONE_NEW* flag.
        let t = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        if t < 0 {
            return Err(Error::sys("ioctl(NS_GET_NSTYPE)", Errno::last()));
        }
        let kind = Namespaces::from_bits(t as u64)
            .filter(|k| k.proc_name().is_some())
            .ok_or_else(|| {
                Error::unsupported(
                    "namespace kind",
                    format!("the kernel reports unknown type {t:#x}"),
                )
            })?;
        Ok(Namespace { fd, kind })
    }

    /// Which kind of namespace this is (exactly one flag).
    pub fn kind(&self) -> Namespaces {
        self.kind
    }

    /// The namespace's identity, to compare with another handle or [`id_of_pid`].
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fstat` (not expected for an open namespace file).
    pub fn id(&self) -> Result<NamespaceId> {
        let st = nix::sys::stat::fstat(&self.fd).map_err(|e| Error::sys("fstat", e))?;
        Ok(NamespaceId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Moves the calling **thread** into this namespace (`setns(2)`).
    ///
    /// For PID and time namespaces this changes only where the thread's future children go.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `setns`: `EPERM` without `CAP_SYS_ADMIN` over the namespace's user
    /// namespace, `EINVAL` when entering a user namespace from a multithreaded process or one's own
    /// user namespace, or a mount namespace while sharing filesystem attributes (`CLONE_FS`) with
    /// another thread.
    pub fn enter(&self) -> Result<()> {
        nix::sched::setns(
            &self.fd,
            nix::sched::CloneFlags::from_bits_retain(self.kind.bits() as i32),
        )
        .map_err(|e| Error::sys("setns", e))
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Namespace> for OwnedFd {
    fn from(ns: Namespace) -> OwnedFd {
        ns.fd
    }
}

/// The identity of process `pid`'s namespace of `kind`, by `stat(2)` of `/proc/PID/ns/X`.
///
/// # Errors
///
/// Those of [`Namespace::of_pid`].
pub fn id_of_pid(pid: Pid, kind: Namespaces) -> Result<NamespaceId> {
    Namespace::of_pid(pid, kind)?.id()
}

/// Moves the calling thread into new namespaces (`unshare(2)`).
///
/// A new user namespace needs a single-threaded caller; PID and time namespaces apply to the
/// caller's future children only.
///
/// # Errors
///
/// [`Error::Sys`] naming `unshare`: `EPERM` without `CAP_SYS_ADMIN` (for anything but a user
/// namespace; for a user namespace too where a sysctl or an LSM restricts unprivileged ones),
/// `EINVAL` for a new user namespace in a multithreaded process or a flag the kernel lacks,
/// `ENOSPC` when a `/proc/sys/user/max_*_namespaces` limit is reached (a limit of 0 disables
/// that kind).
pub fn unshare(namespaces: Namespaces) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        namespaces.bits() as i32
    ))
    .map_err(|e| Error::sys("unshare", e))
}

/// Moves the calling thread into several namespaces of a process at once, by its pidfd
/// (`setns(pidfd, flags)`, Linux 5.8). Either all of them are entered or none.
///
/// # Errors
///
/// [`Error::Config`] when `namespaces` is empty; [`Error::Sys`] naming `setns(pidfd)`: `EINVAL`
/// before Linux 5.8 (a pidfd is not a namespace file there) or when entering a user namespace
/// from a multithreaded process, `EPERM` without the capabilities to enter them, `ESRCH` when
/// the process has exited.
pub fn enter_process(pidfd: BorrowedFd<'_>, namespaces: Namespaces) -> Result<()> {
    if namespaces.is_empty() {
        return Err(Error::config(
            "namespace set",
            "no namespace given to enter",
        ));
    }
    // SAFETY: setns on a borrowed pidfd with a flag set; no memory is passed.
    unsafe {
        sys::syscall3(
            libc::SYS_setns,
            pidfd.as_raw_fd() as usize,
            namespaces.bits() as usize,
            0,
        )
    }
    .map(drop)
    .map_err(|e| Error::sys("setns(pidfd)", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!("".parse::<Namespaces>().unwrap(), Namespaces::empty());
        assert_eq!(
            "mnt, net".parse::<Namespaces>().unwrap(),
            Namespaces::MOUNT | Namespaces::NET
        );
        let e = "user,bogus".parse::<Namespaces>().unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn every_kind_has_a_proc_name() {
        for k in Namespaces::all().iter() {
            assert!(k.proc_name().is_some(), "{k:?}");
        }
        assert_eq!((Namespaces::USER | Namespaces::PID).proc_name(), None);
        assert_eq!(Namespaces::all().kinds().next(), Some(Namespaces::USER));
    }

    #[test]
    fn handles_compare_by_identity() {
        let a = Namespace::current(Namespaces::NET).unwrap();
        let me = Pid::from_raw(std::process::id() as i32).unwrap();
        let b = Namespace::of_pid(me, Namespaces::NET).unwrap();
        assert_eq!(a.id().unwrap(), b.id().unwrap());
        let c = Namespace::from_fd(OwnedFd::from(b)).unwrap();
        assert_eq!(c.kind(), Namespaces::NET);
        // A child of ours shares our namespaces (pid 1 may be off limits to a sandboxed root).
        let mut sleeper = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let theirs = id_of_pid(
            Pid::from_raw(sleeper.id() as i32).unwrap(),
            Namespaces::USER,
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert_eq!(
            Namespace::current(Namespaces::USER).unwrap().id().unwrap(),
            theirs.unwrap()
        );
    }
}
