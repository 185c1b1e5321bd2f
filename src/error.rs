//! The crate's one error type.
//!
//! Every variant says *what* failed (the syscall or the setup step), *where* (the path, when
//! there is one) and *why* (the errno, or the reason a configuration was refused).

use std::fmt;
use std::path::PathBuf;

pub use crate::errno::Errno;
use crate::errno::IntoErrno;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `contain`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call made by the calling process failed.
    #[error("{syscall}{}: {errno}", PathSuffix(path))]
    Sys {
        /// The syscall (or libc call), e.g. `"openat2"`.
        syscall: &'static str,
        /// The path it worked on, if any.
        path: Option<PathBuf>,
        /// The error number the kernel returned.
        errno: Errno,
    },
    /// A setup step in the new process failed before it could exec the command.
    #[error("container setup failed at {stage}: {errno}")]
    Setup {
        /// The step that failed.
        stage: SetupStage,
        /// The error number the kernel returned to the child.
        errno: Errno,
    },
    /// The configuration was refused before anything was created.
    #[error("invalid {what}: {reason}")]
    Config {
        /// The setting that is wrong, e.g. `"uid map"`.
        what: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// The kernel or the host lacks something this operation needs.
    #[error("{feature} is not supported here: {reason}")]
    Unsupported {
        /// What was asked for, e.g. `"memory controller"`.
        feature: String,
        /// Why it cannot be had and what is missing.
        reason: String,
    },
    /// A kernel interface file could not be parsed.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// Which file or format, e.g. `"/proc/self/mountinfo"`.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A netlink (rtnetlink) request was refused by the kernel.
    #[error("netlink {request}{}: {errno}", InterfaceSuffix(interface))]
    Netlink {
        /// The message and what it did, e.g. `"RTM_NEWLINK veth"`.
        request: &'static str,
        /// The network interface it was about, if any (e.g. `"ctn1234"`).
        interface: Option<String>,
        /// The error number in the kernel's `NLMSG_ERROR` reply.
        errno: Errno,
    },
    /// A helper program (such as `newuidmap`) failed.
    #[error("{program} failed: {detail}")]
    Helper {
        /// The program that was run.
        program: PathBuf,
        /// Its exit status and what it wrote to stderr.
        detail: String,
    },
    /// Something only one container at a time may use is held by another: the persistent
    /// upper directory (or its `.work` directory) of a running container.
    #[error("{} is in use: {reason}", path.display())]
    InUse {
        /// The directory (or file) that is taken.
        path: PathBuf,
        /// Who holds it and what to do.
        reason: String,
    },
}

impl Error {
    /// A failed syscall without a path.
    pub(crate) fn sys(syscall: &'static str, errno: impl IntoErrno) -> Self {
        Error::Sys {
            syscall,
            path: None,
            errno: errno.into_errno(),
        }
    }

    /// A failed syscall on `path`.
    pub(crate) fn sys_path(
        syscall: &'static str,
        path: impl Into<PathBuf>,
        errno: impl IntoErrno,
    ) -> Self {
        Error::Sys {
            syscall,
            path: Some(path.into()),
            errno: errno.into_errno(),
        }
    }

    /// A refused configuration.
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            what,
            reason: reason.into(),
        }
    }

    /// A missing kernel or host feature.
    pub(crate) fn unsupported(feature: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            feature: feature.into(),
            reason: reason.into(),
        }
    }

    /// A netlink request the kernel refused, about `interface` if there is one.
    pub(crate) fn netlink(
        request: &'static str,
        interface: Option<&str>,
        errno: impl IntoErrno,
    ) -> Self {
        Error::Netlink {
            request,
            interface: interface.map(str::to_owned),
            errno: errno.into_errno(),
        }
    }

    /// A kernel file that did not parse.
    pub(crate) fn parse(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. }
            | Error::Setup { errno, .. }
            | Error::Netlink { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl From<Error> for std::io::Error {
    /// An `io::Error` that keeps the whole message (syscall, path, errno) and the
    /// [`Error`] itself (`get_ref()` and `downcast_ref::<contain::Error>()`). Its
    /// [`kind`](std::io::Error::kind) is the errno's (`NotFound` for `ENOENT`), or
    /// `InvalidInput` for [`Error::Config`], `Unsupported` for [`Error::Unsupported`],
    /// `InvalidData` for [`Error::Parse`] and `Other` for the rest.
    /// [`raw_os_error`](std::io::Error::raw_os_error) is `None`, as for every `io::Error`
    /// that carries a message: take the errno from [`Error::errno`], or convert an
    /// [`Errno`] alone to keep it.
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match (&e, e.errno()) {
            (_, Some(n)) => std::io::Error::from_raw_os_error(n.raw()).kind(),
            (Error::Config { .. }, _) => ErrorKind::InvalidInput,
            (Error::Unsupported { .. }, _) => ErrorKind::Unsupported,
            (Error::Parse { .. }, _) => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

struct PathSuffix<'a>(&'a Option<PathBuf>);

impl fmt::Display for PathSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " {}", p.display()),
            None => Ok(()),
        }
    }
}

struct InterfaceSuffix<'a>(&'a Option<String>);

impl fmt::Display for InterfaceSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, " on {name:?}"),
            None => Ok(()),
        }
    }
}

/// The steps the new process takes between clone and exec, in order.
///
/// A failing step is reported to the parent as `(stage, errno)` over a close-on-exec pipe, so
/// that `spawn()` returns [`Error::Setup`] instead of a child that silently exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum SetupStage {
    /// Resetting signal handlers and the signal mask.
    Signals = 1,
    /// `prctl(PR_SET_PDEATHSIG)`, or the parent died before the child could set it.
    ParentDeathSignal,
    /// Waiting for the parent to write the id maps.
    WaitForParent,
    /// `setns` into a namespace given by the caller.
    JoinNamespace,
    /// `setgroups`.
    SetGroups,
    /// `setresgid`.
    SetGid,
    /// `setresuid`.
    SetUid,
    /// `sethostname`.
    SetHostname,
    /// `setdomainname`.
    SetDomainname,
    /// Mounting the container's filesystem.
    Mount,
    /// Switching to the container's root (`pivot_root` or `chroot`).
    PivotRoot,
    /// `chdir` to the working directory.
    Chdir,
    /// Moving passed file descriptors to their target numbers.
    DupFd,
    /// Closing (marking close-on-exec) every descriptor not passed on.
    CloseFds,
    /// Setting up the controlling terminal or session.
    Session,
    /// Applying resource limits.
    Rlimits,
    /// Dropping capabilities.
    Capabilities,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs,
    /// Installing the seccomp filter.
    Seccomp,
    /// `execve` of the command.
    Exec,
    /// Bringing up `lo` in the new network namespace (rtnetlink from inside).
    Network,
    /// `execveat` of `contain-init` from its memfd, with [`Container::init`](crate::process::Container::init).
    Init,
    /// Writing a sysctl of [`Container::sysctl`](crate::process::Container::sysctl).
    Sysctl,
    /// Giving the standard streams to the container's user (`fchown`).
    StdioOwner,
}

impl SetupStage {
    const ALL: [SetupStage; 24] = [
        SetupStage::Signals,
        SetupStage::ParentDeathSignal,
        SetupStage::WaitForParent,
        SetupStage::JoinNamespace,
        SetupStage::SetGroups,
        SetupStage::SetGid,
        SetupStage::SetUid,
        SetupStage::SetHostname,
        SetupStage::SetDomainname,
        SetupStage::Mount,
        SetupStage::PivotRoot,
        SetupStage::Chdir,
        SetupStage::DupFd,
        SetupStage::CloseFds,
        SetupStage::Session,
        SetupStage::Rlimits,
        SetupStage::Capabilities,
        SetupStage::NoNewPrivs,
        SetupStage::Seccomp,
        SetupStage::Exec,
        SetupStage::Network,
        SetupStage::Init,
        SetupStage::Sysctl,
        SetupStage::StdioOwner,
    ];

    /// The stage with this wire number, if any.
    pub(crate) fn from_u32(n: u32) -> Option<SetupStage> {
        SetupStage::ALL.iter().copied().find(|s| *s as u32 == n)
    }

    fn name(self) -> &'static str {
        match self {
            SetupStage::Signals => "signal reset",
            SetupStage::ParentDeathSignal => "parent death signal",
            SetupStage::WaitForParent => "wait for parent",
            SetupStage::JoinNamespace => "setns",
            SetupStage::SetGroups => "setgroups",
            SetupStage::SetGid => "setresgid",
            SetupStage::SetUid => "setresuid",
            SetupStage::SetHostname => "sethostname",
            SetupStage::SetDomainname => "setdomainname",
            SetupStage::Mount => "mount",
            SetupStage::PivotRoot => "pivot_root",
            SetupStage::Chdir => "chdir",
            SetupStage::DupFd => "dup3 of a passed fd",
            SetupStage::CloseFds => "close_range (closing the caller's descriptors)",
            SetupStage::Session => "session setup",
            SetupStage::Rlimits => "setrlimit",
            SetupStage::Capabilities => "capability drop",
            SetupStage::NoNewPrivs => "no_new_privs",
            SetupStage::Seccomp => "seccomp",
            SetupStage::Exec => "execve",
            SetupStage::Network => "loopback up (rtnetlink)",
            SetupStage::Init => "execveat of contain-init (memfd)",
            SetupStage::Sysctl => "sysctl write",
            SetupStage::StdioOwner => "fchown of a standard stream",
        }
    }
}

impl fmt::Display for SetupStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The errno of an `io::Error` from std (`EIO` for one that carries none).
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_numbers_round_trip() {
        for s in SetupStage::ALL {
            assert_eq!(SetupStage::from_u32(s as u32), Some(s));
        }
        assert_eq!(SetupStage::from_u32(0), None);
        assert_eq!(SetupStage::from_u32(999), None);
    }

    #[test]
    fn messages_name_syscall_path_and_errno() {
        let e = Error::sys_path("openat2", "/etc/passwd", Errno::ENOENT);
        let s = e.to_string();
        assert!(
            s.contains("openat2") && s.contains("/etc/passwd") && s.contains("ENOENT"),
            "{s}"
        );
        let e = Error::Setup {
            stage: SetupStage::Exec,
            errno: Errno::EACCES,
        };
        assert_eq!(e.errno(), Some(Errno::EACCES));
        assert!(e.to_string().contains("execve"));
    }
}
