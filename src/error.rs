//! The crate's one error type.
//!
//! Every variant says *what* failed (the syscall or the setup step), *where* (the path, when
//! there is one) and *why* (the errno, or the reason a configuration was refused).
//!
//! # Remedies
//!
//! Where there is something the caller can do about an error, [`Error::remedy`] says what,
//! and the error's `Display` appends it after `"; remedy: "`. The message before it is
//! stable (tests and logs may match on it); the remedy is advice for a person and may be
//! reworded. Remedies come from one table, keyed by what the error carries (the syscall or
//! setup stage and the errno, or the details of a failed `execve`), so that an error made
//! anywhere in the crate gets the same advice:
//!
//! | error | remedy about |
//! | --- | --- |
//! | `clone`/`clone3`/`unshare`: `EPERM` | privileges, and the sysctls that disable unprivileged user namespaces |
//! | `clone`/`clone3`/`unshare`: `ENOSPC`, `EUSERS` | `user.max_*_namespaces`, nesting depth |
//! | `clone`/`clone3`: `EAGAIN` | the caller's process limits (`RLIMIT_NPROC`, `pids.max`, `kernel.threads-max`) |
//! | mount syscalls and [`SetupStage::Mount`]: `EPERM` | `CAP_SYS_ADMIN` over the mount namespace, LSMs and seccomp profiles |
//! | `setns`, [`SetupStage::JoinNamespace`]: `EPERM` | the capability needed over the namespace's owner |
//! | [`SetupStage::Exec`] | the program: not in the image, wrong `PATH`, missing `#!` interpreter or dynamic loader, not executable, another architecture |
//! | a failing `newuidmap`/`newgidmap` | `/etc/subuid`, `/etc/subgid` and the helpers' privileges |
//! | [`Error::Image`] of kind [`ImageErrorKind::StepFailed`] | the step's output, and that RUN steps have no network |
//!
//! [`Error::Unsupported`] and [`Error::Config`] carry their advice in their `reason` (it is
//! specific to the setting); `remedy()` is `None` for them.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::errno::Errno;
use crate::errno::IntoErrno;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `contain`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call made by the calling process failed.
    Sys {
        /// The syscall (or libc call), e.g. `"openat2"`.
        syscall: &'static str,
        /// The path it worked on, if any.
        path: Option<PathBuf>,
        /// The error number the kernel returned.
        errno: Errno,
    },
    /// A setup step in the new process failed before it could exec the command.
    ///
    /// Match it on `stage` and `errno` (with `..`): a failed `execve` also carries `exec`,
    /// what the parent knows about the program (its name, the `PATH` searched, what the child
    /// found at the path), which the message and [`Error::remedy`] use.
    Setup {
        /// The step that failed.
        stage: SetupStage,
        /// The error number the kernel returned to the child.
        errno: Errno,
        /// For [`SetupStage::Exec`] (also of an init's payload): the program and
        /// where it was looked for; `None` for the other stages.
        exec: Option<Box<ExecFailure>>,
    },
    /// The configuration was refused before anything was created.
    Config {
        /// The setting that is wrong, e.g. `"uid map"`.
        what: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// The kernel or the host lacks something this operation needs.
    Unsupported {
        /// What was asked for, e.g. `"memory controller"`.
        feature: String,
        /// Why it cannot be had and what is missing.
        reason: String,
    },
    /// A kernel interface file (`/proc/self/mountinfo`, a cgroup file), or a value given as
    /// text (a size such as `"64m"`, a CIDR), could not be parsed.
    Parse {
        /// Which file or format, e.g. `"/proc/self/mountinfo"`.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A netlink (rtnetlink) request was refused by the kernel.
    Netlink {
        /// The message and what it did, e.g. `"RTM_NEWLINK veth"`.
        request: &'static str,
        /// The network interface it was about, if any (e.g. `"ctn1234"`).
        interface: Option<String>,
        /// The error number in the kernel's `NLMSG_ERROR` reply.
        errno: Errno,
    },
    /// A helper program (such as `newuidmap`) failed.
    Helper {
        /// The program that was run.
        program: PathBuf,
        /// Its exit status and what it wrote to stderr.
        detail: String,
    },
    /// Something only one container at a time may use is held by another: the persistent
    /// upper directory (or its `.work` directory) of a running container.
    InUse {
        /// The directory (or file) that is taken.
        path: PathBuf,
        /// Who holds it and what to do.
        reason: String,
    },
    /// An image, one of its blobs or one of its layers is missing, malformed, hostile or not
    /// what its digest says (see [`crate::image`]).
    Image {
        /// What kind of fault; match on it.
        kind: ImageErrorKind,
        /// What it is about: an image reference (`busybox:latest`), `layer sha256:...`,
        /// `blob sha256:...`, `manifest.json`.
        object: String,
        /// The layer's tar entry that was refused, as named in the tar.
        entry: Option<PathBuf>,
        /// What is wrong, in words.
        reason: String,
    },
}

/// The kinds of [`Error::Image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageErrorKind {
    /// No such image, tag, blob or layer.
    NotFound,
    /// Content does not hash to the digest (or diff_id) that names it.
    DigestMismatch,
    /// Content is longer or shorter than its descriptor's `size`.
    SizeMismatch,
    /// A JSON document, a digest string or a tar stream does not parse.
    Malformed,
    /// A layer entry would write outside its layer directory, or through a link: an absolute
    /// or `..` path, a symbolic link in its parent, a hard link out of the image, an escaping
    /// whiteout.
    UnsafeEntry,
    /// Valid, but not something this crate handles: a media type, a platform, a digest
    /// algorithm other than sha256, a tar entry type.
    Unsupported,
    /// The reference matches more than one image (an index with several and no tag).
    Ambiguous,
    /// A build step (a RUN) failed: the object names it, the reason gives its exit status.
    StepFailed,
}

impl Error {
    /// A setup step that failed in the child, with nothing more known than its errno.
    pub(crate) fn setup(stage: SetupStage, errno: Errno) -> Self {
        Error::Setup {
            stage,
            errno,
            exec: None,
        }
    }

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

    /// An image fault without a tar entry.
    pub(crate) fn image(
        kind: ImageErrorKind,
        object: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Image {
            kind,
            object: object.into(),
            entry: None,
            reason: reason.into(),
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
    /// `InvalidData` for [`Error::Parse`] and [`Error::Image`] (`NotFound` for
    /// [`ImageErrorKind::NotFound`]) and `Other` for the rest.
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
            (
                Error::Image {
                    kind: ImageErrorKind::NotFound,
                    ..
                },
                _,
            ) => ErrorKind::NotFound,
            (Error::Image { .. }, _) => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

impl fmt::Display for Error {
    /// The message, then `"; remedy: "` and [`Error::remedy`] when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys {
                syscall,
                path,
                errno,
            } => write!(f, "{syscall}{}: {errno}", PathSuffix(path))?,
            Error::Setup { stage, errno, exec } => {
                write!(f, "container setup failed at {stage}: {errno}")?;
                if let Some(exec) = exec {
                    write!(f, ": {}", exec.describe(*errno))?;
                }
            }
            Error::Config { what, reason } => write!(f, "invalid {what}: {reason}")?,
            Error::Unsupported { feature, reason } => {
                // "memory, cpu and pids controllers" (HostCgroups::check_all) are plural.
                let verb = if feature.ends_with(" controllers") {
                    "are"
                } else {
                    "is"
                };
                write!(f, "{feature} {verb} not supported here: {reason}")?
            }
            Error::Parse { what, reason } => write!(f, "cannot parse {what}: {reason}")?,
            Error::Netlink {
                request,
                interface,
                errno,
            } => write!(
                f,
                "netlink {request}{}: {errno}",
                InterfaceSuffix(interface)
            )?,
            Error::Helper { program, detail } => {
                write!(f, "{} failed: {detail}", program.display())?
            }
            Error::InUse { path, reason } => write!(f, "{} is in use: {reason}", path.display())?,
            Error::Image {
                object,
                entry,
                reason,
                ..
            } => match entry {
                Some(e) => write!(f, "{object}: entry {}: {reason}", e.display())?,
                None => write!(f, "{object}: {reason}")?,
            },
        }
        match self.remedy() {
            Some(r) => write!(f, "; remedy: {r}"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// What the caller can do about this error, when the crate knows: see [the
    /// table](self#remedies). `Display` appends it to the message after `"; remedy: "`.
    ///
    /// ```
    /// use contain::{Errno, Error};
    /// // What spawn returns when a namespace limit is reached.
    /// let e = Error::Sys { syscall: "clone3", path: None, errno: Errno::ENOSPC };
    /// assert!(e.remedy().unwrap().contains("max_user_namespaces"));
    /// let shown = e.to_string();
    /// assert!(shown.starts_with("clone3: ENOSPC") && shown.contains("; remedy: "));
    /// ```
    pub fn remedy(&self) -> Option<Cow<'static, str>> {
        match self {
            Error::Sys { syscall, errno, .. } => sys_remedy(syscall, *errno).map(Cow::Borrowed),
            Error::Setup {
                stage,
                errno,
                exec: Some(exec),
            } if *stage == SetupStage::Exec => exec.remedy(*errno),
            Error::Setup { stage, errno, .. } => setup_remedy(*stage, *errno).map(Cow::Borrowed),
            Error::Helper { program, .. }
                if program
                    .file_name()
                    .is_some_and(|n| n == "newuidmap" || n == "newgidmap") =>
            {
                Some(Cow::Borrowed(
                    "the caller needs ranges in /etc/subuid and /etc/subgid (`usermod \
                     --add-subuids 100000-165535 --add-subgids 100000-165535 USER`) that cover \
                     the maps asked for, and the helpers must be setuid root or have the \
                     cap_setuid/cap_setgid file capabilities (reinstall the uidmap package)",
                ))
            }
            Error::Image {
                kind: ImageErrorKind::StepFailed,
                ..
            } => Some(Cow::Borrowed(
                "the step's own output above says why; RUN steps have no network (loopback \
                 only), so downloads fail: put what they fetch into the build context and COPY it",
            )),
            _ => None,
        }
    }
}

/// Advice for a failed syscall of the caller's, by syscall and errno.
fn sys_remedy(syscall: &str, errno: Errno) -> Option<&'static str> {
    // The syscall may carry an explanation in parentheses: key on its name.
    let name = syscall.split([' ', '(']).next().unwrap_or(syscall);
    match (name, errno) {
        ("clone" | "clone3" | "unshare", Errno::EPERM) => Some(USERNS_EPERM),
        ("clone" | "clone3" | "unshare", Errno::ENOSPC | Errno::EUSERS) => Some(
            "a namespace limit is reached: a namespace type's count limit \
             (/proc/sys/user/max_user_namespaces, max_pid_namespaces, max_mnt_namespaces, ... \
             for this user; 0 disables the type) or the nesting depth (32 user or pid \
             namespaces deep); raise the sysctl (`sysctl -w user.max_user_namespaces=15000`) \
             or end containers that are no longer needed",
        ),
        ("clone" | "clone3", Errno::EAGAIN) => Some(
            "the caller may not create more processes: RLIMIT_NPROC (`ulimit -u`), the \
             pids.max of the caller's cgroup, kernel.threads-max or kernel.pid_max",
        ),
        (
            "mount" | "fsopen" | "fsmount" | "fsconfig" | "move_mount" | "open_tree"
            | "mount_setattr",
            Errno::EPERM,
        ) => Some(MOUNT_EPERM),
        ("setns", Errno::EPERM) => Some(SETNS_EPERM),
        _ => None,
    }
}

/// Advice for a setup step that failed in the child, by stage and errno.
fn setup_remedy(stage: SetupStage, errno: Errno) -> Option<&'static str> {
    match (stage, errno) {
        (SetupStage::Mount | SetupStage::PivotRoot, Errno::EPERM) => Some(MOUNT_EPERM),
        (SetupStage::JoinNamespace, Errno::EPERM) => Some(SETNS_EPERM),
        (SetupStage::Exec, Errno::ENOENT) => Some(
            "the program is not in the container's root, or not in its PATH, or it is a \
             script whose interpreter (#! line) is missing, or a binary whose dynamic loader \
             is missing: install it in the image, give its absolute path, or set PATH",
        ),
        (SetupStage::Exec, Errno::EACCES) => Some(EXEC_EACCES),
        (SetupStage::Exec, Errno::ENOEXEC) => Some(EXEC_ENOEXEC),
        _ => None,
    }
}

const USERNS_EPERM: &str = "creating namespaces needs CAP_SYS_ADMIN, except a user namespace \
     (Namespaces::USER), which unprivileged users may create where the host allows it: check \
     `sysctl kernel.unprivileged_userns_clone` (Debian and older Ubuntu: must be 1), \
     `sysctl kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+: must be 0, or give \
     the program an AppArmor profile with `userns,`) and `sysctl user.max_user_namespaces` \
     (must be above 0); inside another container, its seccomp profile may refuse namespaces \
     (docker: --security-opt seccomp=unconfined, or run it privileged)";

const MOUNT_EPERM: &str = "mounting needs CAP_SYS_ADMIN in the user namespace that owns the \
     mount namespace: run as root, or create a user namespace together with the mount \
     namespace (Namespaces::USER | Namespaces::MOUNT); filesystems without FS_USERNS_MOUNT \
     (block devices, most of them but tmpfs, proc, sysfs, overlay, fuse) mount only from the \
     initial user namespace, and an LSM (AppArmor, SELinux) or a container's seccomp profile \
     may refuse mount";

const SETNS_EPERM: &str = "joining a namespace needs CAP_SYS_ADMIN in the user namespace that \
     owns it (and, for a user namespace, in the joined namespace): run as root, or join the \
     namespace's user namespace too";

const EXEC_EACCES: &str = "make the file executable for the container's user (`chmod +x`), \
     check that it is a regular file and that every directory on its path may be searched, and \
     that the filesystem is not mounted noexec (a tmpfs or bind mount with noexec, /tmp or \
     /dev/shm on many hosts)";

const EXEC_ENOEXEC: &str = "the kernel does not recognize the format: a binary for another \
     architecture (build it for this machine, or register qemu-user with binfmt_misc), or a \
     script without a #! line (add `#!/bin/sh` as its first line, or run it as `sh SCRIPT`)";

/// What the child found at the path it tried to `execve`, reported with the errno so that
/// the parent can say why (`ENOENT` from `execve` means the file *or its interpreter or
/// dynamic loader* is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecTarget {
    /// Not looked at: the caller's own seccomp program is installed (a filter that kills on
    /// the syscalls of the look would make a failed exec read as a successful one), or the
    /// path could not be examined (e.g. a directory on it may not be searched).
    Unknown,
    /// No file at the path (or a dangling symlink).
    Missing,
    /// A file that starts with `#!`: a script, run by the interpreter its first line names.
    Script,
    /// An ELF binary.
    Elf,
    /// A file that is neither (or could not be read).
    Other,
}

impl ExecTarget {
    /// The child's wire code (the report's `step`).
    pub(crate) fn from_wire(step: u32) -> ExecTarget {
        match step {
            1 => ExecTarget::Missing,
            2 => ExecTarget::Script,
            3 => ExecTarget::Elf,
            4 => ExecTarget::Other,
            _ => ExecTarget::Unknown,
        }
    }
}

/// What the parent knows about a program that could not be executed: attached to
/// [`Error::Setup`] for [`SetupStage::Exec`], formatted by the parent (the child only reports
/// numbers: the errno, which candidate path, and what it found there).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecFailure {
    /// The program as given to `Container::new`.
    pub program: OsString,
    /// The path whose `execve` error is reported (for a bare name, the `PATH` entry joined
    /// with it); `None` when the child did not say which.
    pub path: Option<PathBuf>,
    /// For a program without a `/`: the `PATH` searched (the container's, or the default).
    pub search_path: Option<OsString>,
    /// What the child found at `path`.
    pub target: ExecTarget,
    /// Whether the paths are inside a rootfs (the image) rather than the caller's root.
    pub in_rootfs: bool,
    /// For a [`ExecTarget::Script`]: the interpreter its `#!` line names (the path up to the
    /// first blank: `/usr/bin/env` for `#!/usr/bin/env python3`), as read in the container.
    /// At most 126 bytes: a longer one is cut, and `interpreter_truncated` says so. `None`
    /// when the file was not read or names none.
    pub interpreter: Option<PathBuf>,
    /// Whether `interpreter` is only the start of a longer name.
    pub interpreter_truncated: bool,
    /// Whether `interpreter` exists: then what is missing is the interpreter's own `#!`
    /// interpreter or dynamic loader (execve says ENOENT for any of them).
    pub interpreter_exists: bool,
}

impl ExecFailure {
    /// The interpreter as it can be printed: bytes from the image, with control characters
    /// escaped (a `\r` of a CRLF line, escape sequences that would drive a terminal).
    fn interpreter_shown(&self) -> String {
        let Some(p) = self.interpreter.as_deref() else {
            return String::new();
        };
        let mut shown = String::new();
        for c in String::from_utf8_lossy(p.as_os_str().as_encoded_bytes()).chars() {
            match c.is_control() {
                true => shown.extend(c.escape_default()),
                false => shown.push(c),
            }
        }
        shown
    }

    /// The `#!` line ends in a carriage return: a script saved with CRLF line endings, whose
    /// interpreter the kernel looks for with the `\r` (binfmt_script stops only at a blank
    /// or newline).
    fn crlf(&self) -> bool {
        self.interpreter
            .as_deref()
            .is_some_and(|p| p.as_os_str().as_encoded_bytes().ends_with(b"\r"))
    }

    /// The explanation after `"container setup failed at execve: ERRNO: "`.
    fn describe(&self, errno: Errno) -> String {
        let program = Path::new(&self.program).display();
        let root = if self.in_rootfs {
            "the container's root"
        } else {
            "the caller's root (no rootfs)"
        };
        let at = self.path.as_deref().map(Path::display);
        let searched = self.search_path.as_deref().map(|p| Path::new(p).display());
        let not_examined = "(not examined: the caller's seccomp program is installed, or the \
             path could not be looked at)";
        match (errno, self.target, at, searched) {
            (Errno::ENOENT, ExecTarget::Script, Some(at), _) if self.crlf() => format!(
                "{at} is a script whose #! line ends in a carriage return (CRLF, Windows line \
                 endings): the kernel looks for the interpreter \"{}\", which is not in {root}",
                self.interpreter_shown()
            ),
            (Errno::ENOENT, ExecTarget::Script, Some(at), _)
                if self.interpreter.is_some() && self.interpreter_exists =>
            {
                format!(
                    "{at} exists and is a script whose interpreter {} exists too, but cannot \
                     be run: its own #! interpreter or dynamic loader is missing in {root}",
                    self.interpreter_shown(),
                )
            }
            (Errno::ENOENT, ExecTarget::Script, Some(at), _) if self.interpreter.is_some() => {
                format!(
                    "{at} exists but is a script whose interpreter {}{} is missing in {root}",
                    self.interpreter_shown(),
                    match self.interpreter_truncated {
                        true => "... (its #! line, cut here, is longer than what was read)",
                        false => "",
                    }
                )
            }
            (Errno::ENOENT, ExecTarget::Script, Some(at), _) => format!(
                "{at} exists but is a script whose interpreter (the program on its #! line) \
                 is missing in {root}"
            ),
            (Errno::ENOENT, ExecTarget::Elf, Some(at), _) => format!(
                "{at} exists but is a dynamically linked binary whose loader (its ELF \
                 interpreter, e.g. /lib64/ld-linux-x86-64.so.2 or /lib/ld-musl-x86_64.so.1) \
                 is missing in {root}"
            ),
            (Errno::ENOENT, ExecTarget::Other, Some(at), _) => {
                format!("{at} exists, so its interpreter or loader is missing in {root}")
            }
            (Errno::ENOENT, ExecTarget::Unknown, _, Some(path)) => format!(
                "{program:?} was not found in any directory of PATH={path} in {root}, or is a \
                 script whose #! interpreter or a binary whose loader is missing {not_examined}"
            ),
            (Errno::ENOENT, ExecTarget::Unknown, at, None) => format!(
                "{} was not found in {root}, or is a script whose #! interpreter or a binary \
                 whose loader is missing {not_examined}",
                at.map_or_else(|| program.to_string(), |p| p.to_string())
            ),
            (Errno::ENOENT, _, _, Some(path)) => format!(
                "{program:?} was not found in any directory of PATH={path} in {root} \
                 (ENOENT from execve also means a script's #! interpreter or a binary's \
                 dynamic loader is missing)"
            ),
            (Errno::ENOENT, _, _, None) => format!(
                "{program} does not exist in {root} (ENOENT from execve also means a script's \
                 #! interpreter or a binary's dynamic loader is missing)"
            ),
            (Errno::EACCES, _, at, _) => format!(
                "{} may not be executed: no execute permission for the container's user, not \
                 a regular file, or on a noexec mount",
                at.map_or_else(|| format!("{program:?}"), |p| p.to_string())
            ),
            (Errno::ENOEXEC, target, at, _) => format!(
                "{} is {}",
                at.map_or_else(|| format!("{program:?}"), |p| p.to_string()),
                match target {
                    ExecTarget::Elf => "an ELF binary for another machine (architecture or ABI)",
                    _ => "not a binary for this machine, or a script without a #! line",
                }
            ),
            (_, _, Some(at), _) => format!("executing {at}"),
            (_, _, None, _) => format!("executing {program:?}"),
        }
    }

    /// Advice for the failure, by errno and what was found.
    fn remedy(&self, errno: Errno) -> Option<Cow<'static, str>> {
        let install = |what: &str| match self.in_rootfs {
            true => format!("add {what} to the image"),
            false => format!("install {what}"),
        };
        Some(match (errno, self.target) {
            (Errno::ENOENT, ExecTarget::Script) if self.crlf() => Cow::Borrowed(
                "convert the script to Unix line endings (`dos2unix SCRIPT`, or \
                 `sed -i 's/\\r$//' SCRIPT`)",
            ),
            (Errno::ENOENT, ExecTarget::Script) if self.interpreter_exists => Cow::Owned(format!(
                "run the interpreter {} by hand to see what it lacks (`head -1` of it for a \
                 script, `readelf -l` of it for a binary's loader) and {}",
                self.interpreter_shown(),
                install("that")
            )),
            (Errno::ENOENT, ExecTarget::Script) if self.interpreter.is_some() => {
                let name = self.interpreter_shown();
                Cow::Owned(match self.interpreter_truncated {
                    false => format!(
                        "{}, or change the script's #! line to an interpreter that exists \
                         (e.g. #!/bin/sh)",
                        install(&name)
                    ),
                    true => format!(
                        "read the script's first line (`head -1 SCRIPT`, it starts with \
                         {name}) and {}, or change the #! line to one that exists (e.g. \
                         #!/bin/sh)",
                        install("the interpreter it names")
                    ),
                })
            }
            (Errno::ENOENT, ExecTarget::Script) => Cow::Owned(format!(
                "read the script's first line (`head -1 SCRIPT`) and {}, or change the #! line \
                 to one that exists (e.g. #!/bin/sh)",
                install("the interpreter it names")
            )),
            (Errno::ENOENT, ExecTarget::Elf) => Cow::Owned(format!(
                "`readelf -l BINARY | grep interpreter` names the loader: {} (a binary built \
                 for glibc does not run on musl, and the reverse), or link the binary statically",
                install("it with the libraries the binary needs")
            )),
            (Errno::ENOENT, _) if self.search_path.is_some() => Cow::Owned(format!(
                "{}, give its absolute path, or set PATH in the container's environment \
                 (Container::env(\"PATH\", ..)) to the directory that holds it",
                install("the program")
            )),
            (Errno::ENOENT, _) => {
                Cow::Owned(format!("check the path, or {}", install("the program")))
            }
            (Errno::EACCES, _) => Cow::Borrowed(EXEC_EACCES),
            (Errno::ENOEXEC, _) => Cow::Borrowed(EXEC_ENOEXEC),
            (Errno::E2BIG, _) => Cow::Borrowed(
                "the arguments and environment together exceed the kernel's limit (ARG_MAX, a \
                 quarter of RLIMIT_STACK): pass less, or through a file or stdin",
            ),
            (Errno::ETXTBSY, _) => {
                Cow::Borrowed("the file is open for writing: wait until it is written and closed")
            }
            _ => return setup_remedy(SetupStage::Exec, errno).map(Cow::Borrowed),
        })
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
    /// `prctl(PR_SET_DUMPABLE, 0)` of a process parked by
    /// [`Container::create`](crate::process::Container::create) or born into a joined PID
    /// namespace.
    Dumpable,
    /// `personality(2)` of [`Container::personality`](crate::process::Container::personality).
    Personality,
}

impl SetupStage {
    const ALL: [SetupStage; 26] = [
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
        SetupStage::Dumpable,
        SetupStage::Personality,
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
            SetupStage::Dumpable => "prctl(PR_SET_DUMPABLE, 0)",
            SetupStage::Personality => "personality",
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
    fn remedies_come_from_one_table_and_follow_the_message() {
        let e = Error::sys("clone3", Errno::EPERM);
        let r = e.remedy().unwrap();
        for sysctl in [
            "kernel.unprivileged_userns_clone",
            "kernel.apparmor_restrict_unprivileged_userns",
            "user.max_user_namespaces",
        ] {
            assert!(r.contains(sysctl), "{r}");
        }
        assert_eq!(
            e.to_string(),
            format!("clone3: {}; remedy: {r}", Errno::EPERM)
        );
        assert!(Error::sys("clone", Errno::ENOSPC)
            .remedy()
            .unwrap()
            .contains("max_user_namespaces"));
        assert!(Error::sys("clone", Errno::EAGAIN)
            .remedy()
            .unwrap()
            .contains("pids.max"));
        // The syscall may carry an explanation: keyed on its name.
        let e = Error::sys_path("mount (proc)", "/proc", Errno::EPERM);
        assert!(e.remedy().unwrap().contains("CAP_SYS_ADMIN"), "{e}");
        let e = Error::setup(SetupStage::Mount, Errno::EPERM);
        assert!(e
            .to_string()
            .starts_with("container setup failed at mount: "));
        assert!(e.remedy().unwrap().contains("FS_USERNS_MOUNT"), "{e}");
        let e = Error::Helper {
            program: "/usr/bin/newuidmap".into(),
            detail: "exit status: 1".into(),
        };
        assert!(e.remedy().unwrap().contains("/etc/subuid"), "{e}");
        // No remedy: the message is unchanged.
        let e = Error::sys_path("openat2", "/x", Errno::ENOENT);
        assert_eq!(e.remedy(), None);
        assert!(!e.to_string().contains("remedy"));
        let e = Error::config("umask", "bad");
        assert_eq!(e.to_string(), "invalid umask: bad");
    }

    #[test]
    fn exec_failures_are_explained_by_what_the_child_found() {
        let exec = |target, path: Option<&str>, search: Option<&str>| {
            Error::Setup {
                stage: SetupStage::Exec,
                errno: Errno::ENOENT,
                exec: Some(Box::new(ExecFailure {
                    program: "job".into(),
                    path: path.map(PathBuf::from),
                    search_path: search.map(OsString::from),
                    target,
                    in_rootfs: true,
                    interpreter: None,
                    interpreter_truncated: false,
                    interpreter_exists: false,
                })),
            }
            .to_string()
        };
        let s = exec(ExecTarget::Missing, None, Some("/bin:/usr/bin"));
        assert!(
            s.contains("\"job\" was not found in any directory of PATH=/bin:/usr/bin"),
            "{s}"
        );
        let s = exec(
            ExecTarget::Script,
            Some("/usr/bin/job"),
            Some("/bin:/usr/bin"),
        );
        assert!(s.contains("/usr/bin/job exists but is a script"), "{s}");
        let s = exec(ExecTarget::Elf, Some("/bin/job"), None);
        assert!(s.contains("dynamically linked binary whose loader"), "{s}");
        let s = exec(ExecTarget::Other, Some("/bin/job"), None);
        assert!(
            s.contains("exists, so its interpreter or loader is missing"),
            "{s}"
        );
        // Not examined: never "does not exist".
        let s = exec(ExecTarget::Unknown, Some("/bin/job"), None);
        assert!(
            s.contains(
                "/bin/job was not found in the container's root, or is a script whose #! \
                 interpreter or a binary whose loader is missing (not examined: "
            ),
            "{s}"
        );
        assert!(!s.contains("does not exist"), "{s}");
        let s = exec(ExecTarget::Unknown, None, Some("/bin"));
        assert!(s.contains("\"job\" was not found in any directory of PATH=/bin in the container's root, or is a script"), "{s}");
        // The interpreter named, cut, or present itself.
        let script = |interpreter: &str, truncated: bool, exists: bool| {
            let e = Error::Setup {
                stage: SetupStage::Exec,
                errno: Errno::ENOENT,
                exec: Some(Box::new(ExecFailure {
                    program: "/job".into(),
                    path: Some("/job".into()),
                    search_path: None,
                    target: ExecTarget::Script,
                    in_rootfs: true,
                    interpreter: Some(interpreter.into()),
                    interpreter_truncated: truncated,
                    interpreter_exists: exists,
                })),
            };
            (e.to_string(), e.remedy().unwrap().into_owned())
        };
        let (s, r) = script("/usr/bin/python3", false, false);
        assert!(s.contains("/job exists but is a script whose interpreter /usr/bin/python3 is missing in the container's root"), "{s}");
        assert!(
            r.starts_with("add /usr/bin/python3 to the image, or change the script's #! line"),
            "{r}"
        );
        let (s, r) = script("/opt/very/long", true, false);
        assert!(
            s.contains("interpreter /opt/very/long... (its #! line, cut here"),
            "{s}"
        );
        assert!(r.contains("head -1 SCRIPT"), "{r}");
        let (s, r) = script("/usr/bin/python3", false, true);
        assert!(
            s.contains("interpreter /usr/bin/python3 exists too, but cannot be run"),
            "{s}"
        );
        assert!(
            r.contains("run the interpreter /usr/bin/python3 by hand"),
            "{r}"
        );
    }

    #[test]
    fn messages_name_syscall_path_and_errno() {
        let e = Error::sys_path("openat2", "/etc/passwd", Errno::ENOENT);
        let s = e.to_string();
        assert!(
            s.contains("openat2") && s.contains("/etc/passwd") && s.contains("ENOENT"),
            "{s}"
        );
        let e = Error::setup(SetupStage::Exec, Errno::EACCES);
        assert_eq!(e.errno(), Some(Errno::EACCES));
        assert!(e.to_string().contains("execve"));
    }
}
