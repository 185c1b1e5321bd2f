//! Entering a running container: a new process in the namespaces and cgroup of a process that
//! runs already (OCI's `exec`, runtime.md#operations via runc's `exec`; `nsenter`; `docker
//! exec`).
//!
//! [`Container::enter`] takes a [`Target`] (a pidfd of one of the container's processes) and
//! makes [`spawn`](Container::spawn) start the command inside it, through the same builder
//! and the same child code as any other spawn (capabilities, no_new_privs, seccomp, rlimits,
//! ids, umask, environment, tty, stdio are set exactly as there); only no rootfs is built.
//!
//! The public pieces are [`Target`] and [`Container::enter`], whose documentation says
//! what is entered and how.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::FcntlArg;

use super::Container;
use crate::cgroup::{Cgroup, HostCgroups};
use crate::errno::NixResultExt;
use crate::namespace::Namespaces;
use crate::{sys, Errno, Error, Pid, Result, Signal};

/// A running process whose namespaces and cgroup a new process enters (see
/// [`Container::enter`]): a pidfd and the process id it names.
///
/// Holding the pidfd pins the process's identity: once the process has exited, spawning into
/// it fails with `ESRCH` instead of entering whatever process got its pid next.
///
/// ```no_run
/// use contain::namespace::Namespaces;
/// use contain::process::{Container, Target};
/// let mut box1 = Container::new("sleep").arg("60")
///     .namespaces(Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS)
///     .hostname("box1")
///     .spawn()?;
/// let out = Container::new("hostname")
///     .enter(Target::from_pidfd(box1.pidfd())?)
///     .output()?;
/// assert_eq!(out.stdout, b"box1\n");
/// # box1.kill(contain::Signal::SIGKILL)?;
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct Target {
    pidfd: OwnedFd,
    pid: Pid,
    /// Learnt once and kept (a pool's slot, which is entered once and does not change), so
    /// that a spawn need not read `/proc` again.
    survey: Option<std::sync::Arc<Survey>>,
}

impl Target {
    /// The process `pid` (in the caller's PID namespace), by a new pidfd (`pidfd_open`, Linux
    /// 5.3): e.g. the pid an OCI runtime wrote in its state.
    ///
    /// The pid may name another process than meant if the one meant has exited and its pid
    /// was reused before this call; a caller that knows the process's start time checks it
    /// (`/proc/PID/stat`, field 22) after this call, which pins the process.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pidfd_open`: `ESRCH` when there is no such process, `EINVAL`
    /// for a pid that is not a thread-group leader, `ENOSYS` before Linux 5.3.
    pub fn open(pid: Pid) -> Result<Target> {
        let pidfd = sys::pidfd_open(pid.raw()).map_err(|e| Error::sys("pidfd_open", e))?;
        Ok(Target {
            pidfd,
            pid,
            survey: None,
        })
    }

    /// The process a pidfd names (a [`Child`](super::Child)'s or
    /// [`Created`](super::Created)'s [`pidfd`](super::Child::pidfd), or one received from
    /// another process), which is duplicated (the caller keeps its own); its pid is read from
    /// `/proc/self/fdinfo` (the pidfd's `Pid:` line).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fcntl(F_DUPFD_CLOEXEC)` or `read` of the fdinfo file;
    /// [`Error::Config`] when the descriptor is not a pidfd; [`Error::Sys`] with `ESRCH` when
    /// its process has exited and been reaped (`Pid: -1`).
    pub fn from_pidfd(pidfd: BorrowedFd<'_>) -> Result<Target> {
        let pidfd = dup_pidfd(pidfd)?;
        let path = PathBuf::from(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()));
        let mut text = String::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| Error::sys_path("read", &path, io_errno(&e)))?;
        let pid = fdinfo_pid(&text).ok_or_else(|| {
            Error::config(
                "pidfd",
                format!(
                    "descriptor {} is not a pidfd (its fdinfo has no Pid: line)",
                    pidfd.as_raw_fd()
                ),
            )
        })?;
        match Pid::from_raw(pid) {
            Some(pid) => Ok(Target {
                pidfd,
                pid,
                survey: None,
            }),
            // -1: exited and reaped (Linux 5.x shows that); 0: in a PID namespace we cannot see.
            None => Err(Error::sys("pidfd (the process to enter)", Errno::ESRCH)),
        }
    }

    /// This target, with what entering it means learnt now and kept for every spawn into it
    /// and into its [`try_clone`](Self::try_clone)s: for a process whose namespaces and
    /// cgroup do not change (a pool's slot). The namespaces are compared with the calling
    /// thread's. Its `/etc/passwd` and `/etc/group` are read now too (for `HOME` and a user
    /// name), which is right only while nothing writes them: a slot entered once.
    pub(crate) fn surveyed(mut self) -> Result<Target> {
        let mut known = survey(self.pidfd.as_fd(), self.pid)?;
        known.etc = etc_files(&known, self.pid).map(std::sync::Arc::new);
        // The pidfd pins the process: alive now means the files read were its root's.
        alive(self.pidfd.as_fd())?;
        self.survey = Some(std::sync::Arc::new(known));
        Ok(self)
    }

    /// Another handle on the same process (a duplicated pidfd), with the same survey.
    pub(crate) fn try_clone(&self) -> Result<Target> {
        Ok(Target {
            pidfd: dup_pidfd(self.pidfd.as_fd())?,
            pid: self.pid,
            survey: self.survey.clone(),
        })
    }

    /// The process id, in the caller's PID namespace.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pidfd (owned by the target).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends `signal` through the pidfd (`pidfd_send_signal`, Linux 5.1): to this process
    /// only, never to one that took its pid after it was reaped.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pidfd_send_signal`: `ESRCH` once the process has exited
    /// (reaped or not), `EPERM` when the caller may not signal it.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal.raw())
            .map_err(|e| Error::sys("pidfd_send_signal", e))
    }

    /// Waits up to `timeout` for the process to exit: its pidfd turns readable then, whether
    /// or not its parent has reaped it (reaping is the parent's, this only watches).
    /// `Ok(true)`: it exited; `Ok(false)`: `timeout` passed first.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `poll(pidfd)` (`EINTR` is retried).
    pub fn wait_exit(&self, timeout: std::time::Duration) -> Result<bool> {
        use nix::poll::{PollFd, PollFlags};
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, super::handle::poll_timeout(deadline)).ours() {
                Ok(0) if deadline.is_some_and(|d| std::time::Instant::now() >= d) => {
                    return Ok(false)
                }
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => return Ok(true),
                Err(e) => return Err(Error::sys("poll(pidfd)", e)),
            }
        }
    }
}

/// The `Pid:` field of a pidfd's fdinfo.
fn fdinfo_pid(text: &str) -> Option<i32> {
    text.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Container {
    /// Starts the command inside the running process `target`'s namespaces and cgroup (OCI's
    /// `exec`, runc's `exec`, `nsenter`, `docker exec`).
    ///
    /// Everything else comes from this builder as for any spawn: the security settings
    /// (default [`Security::default`](crate::security::Security::default), *not* the
    /// target's: an OCI runtime passes the container's), ids, environment, umask, stdio, tty
    /// (opened in the container's own devpts when its mount namespace is entered, its master
    /// in [`Child::take_tty`](super::Child::take_tty)). The working directory defaults to the
    /// container's `/` when its mount namespace is entered, else the caller's.
    ///
    /// Nothing is created for it: [`namespaces`](Self::namespaces), [`join`](Self::join),
    /// [`rootfs`](Self::rootfs), [`hostname`](Self::hostname),
    /// [`domainname`](Self::domainname), [`sysctl`](Self::sysctl),
    /// [`network`](Self::network) and id maps are refused with it (`spawn` fails with
    /// [`Error::Config`]).
    ///
    /// # What is entered, and how
    /// - **Namespaces**: before clone, each kind of the target's namespaces is compared with the
    ///   calling thread's (`stat` of `/proc/PID/ns/KIND` against `/proc/thread-self/ns/KIND`,
    ///   the pidfd checked alive afterwards, so that a reused pid cannot be mistaken for the
    ///   target). Those that differ are entered; those equal are not (`setns` on one's own user
    ///   namespace is `EINVAL`). The child enters all but the PID namespace at once with
    ///   `setns(pidfd, flags)` (Linux 5.8; the kernel takes the user namespace first, all or
    ///   none). A PID namespace applies only to children: the spawning thread switches its
    ///   `pid_for_children` to the target's around the clone (`setns(pidfd, CLONE_NEWPID)`), so
    ///   the child is born in it, never PID 1 there. A caller without `CAP_SYS_ADMIN` in its
    ///   own user namespace (rootless) may not do that; when it enters the container's user
    ///   namespace too, the child sets its own `pid_for_children` as it enters them and forks
    ///   the process that runs the command, with `CLONE_PARENT` (so that the caller is its
    ///   parent), sends its pid and pidfd back over a socket and exits: the [`Child`](super::Child) is that
    ///   process (runc's `nsexec` forks in the same way).
    /// - **Root and working directory**: entering the mount namespace puts the child's root and
    ///   working directory at the container's root (the kernel looks up the topmost mount on the
    ///   namespace's `/`, i.e. what `pivot_root` left there). The working directory
    ///   ([`current_dir`](Container::current_dir), default the container's `/`) is then
    ///   resolved inside; one that ends up outside the root (`/proc/self/fd/N` naming a directory
    ///   of the caller's, CVE-2024-21626) is refused, and every descriptor of the caller's is
    ///   closed before exec, as in every spawn.
    /// - **Cgroup**: the target's cgroup v2 group (from `/proc/PID/cgroup`) is opened as a
    ///   directory and the child cloned into it with `clone3(CLONE_INTO_CGROUP)` (Linux 5.7;
    ///   before, the parent moves it before it runs). A target in the caller's own v2 group, or one
    ///   whose group is not under the host's cgroup2 mount (a host without cgroup v2), leaves the
    ///   child in the caller's group; on a hybrid host (v1 controllers) the v1 hierarchies are not
    ///   joined. A [`cgroup`](Container::cgroup) or [`resources`](Container::resources) given by
    ///   the caller wins over the target's group.
    /// - **Identity**: in an entered user namespace the child becomes uid 0 and gid 0 of it unless
    ///   a [`uid`](Container::uid), [`gid`](Container::gid) or [`user`](Container::user) says
    ///   otherwise (as `nsenter -U` does); a [`user`](Container::user) is looked up in the
    ///   container's `/etc/passwd` and `/etc/group`, resolved inside its root
    ///   (`/proc/PID/root`). Supplementary groups are left alone where the entered user
    ///   namespace denies `setgroups` (a rootless container).
    ///
    /// # Errors (of `spawn`, besides its usual ones)
    ///
    /// - [`Error::Sys`] with `ESRCH` when the target has exited (naming
    ///   `pidfd_send_signal`, or `setns(pidfd)` when it exits during the spawn); naming `stat`
    ///   and `/proc/PID/ns/KIND` or `read` and `/proc/PID/cgroup` when those cannot be read;
    ///   naming `setns(pidfd)` (`EPERM`: the caller may not enter them) or
    ///   `setns(pid)` for the PID namespace.
    /// - [`Error::Sys`] naming `getcwd (outside the container's root)` for
    ///   a working directory outside the container's root, `chdir` for one that does not
    ///   exist in it.
    /// - [`Error::Setup`] at [`SetupStage::Exec`](crate::SetupStage)
    ///   when the program is not found in the container.
    /// - [`Error::Unsupported`] for a caller without `CAP_SYS_ADMIN` in its own user namespace
    ///   entering a PID namespace but not a user namespace (a root's container, entered by
    ///   another user): the kernel refuses the `pid_for_children` switch.
    #[must_use]
    pub fn enter(mut self, target: Target) -> Self {
        self.enter = Some(target);
        self
    }
}

/// What `spawn` learnt about the target before clone.
#[derive(Debug)]
pub(super) struct Entered {
    /// The target's pidfd (owned by the container's [`Target`]).
    pub pidfd: RawFd,
    pub pid: Pid,
    /// The kinds of namespace that differ from the calling thread's: those entered.
    pub namespaces: Namespaces,
    /// The target's cgroup, when it has one of its own under the v2 mount.
    pub cgroup: Option<Cgroup>,
    /// The entered user namespace denies `setgroups` (`/proc/PID/setgroups` is `deny`).
    pub setgroups_denied: bool,
    /// The target's `/etc/passwd` and `/etc/group`, read when it was surveyed (a pool's
    /// slot); `None`: read them now, through [`root`](Self::root).
    pub etc: Option<std::sync::Arc<EtcFiles>>,
}

/// A surveyed target's `/etc/passwd` and `/etc/group` (`None`: the file is missing), read
/// once when the target is surveyed so that a pooled spawn that needs `HOME` or a user reads
/// no file: a slot is made, entered once and destroyed, and nothing writes to its root
/// meanwhile.
#[derive(Debug)]
pub(crate) struct EtcFiles {
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
}

impl Entered {
    /// The target's `/proc/PID/root`, through which its files are read.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }
}

/// Checks that the container asks for nothing an entered process cannot have, then learns
/// which of the target's namespaces to enter and its cgroup.
pub(super) fn prepare(c: &Container) -> Result<Option<Entered>> {
    let Some(target) = &c.enter else {
        return Ok(None);
    };
    check_nothing_new(c)?;
    let pidfd = target.pidfd.as_fd();
    let pid = target.pid;
    let survey = match &target.survey {
        Some(known) => {
            alive(pidfd)?;
            Survey {
                namespaces: known.namespaces,
                cgroup: known.cgroup.as_ref().map(Cgroup::try_clone).transpose()?,
                setgroups_denied: known.setgroups_denied,
                etc: known.etc.clone(),
            }
        }
        None => survey(pidfd, pid)?,
    };
    Ok(Some(Entered {
        pidfd: pidfd.as_raw_fd(),
        pid,
        namespaces: survey.namespaces,
        cgroup: survey.cgroup,
        setgroups_denied: survey.setgroups_denied,
        etc: survey.etc,
    }))
}

/// Refuses what a process entered into a running container cannot have: new or joined
/// namespaces, a rootfs, names, sysctls, a network, generated /etc entries.
pub(crate) fn check_nothing_new(c: &Container) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::config(
            "enter",
            format!(
                "a process entered into a running container gets nothing new: {what} cannot be \
                 combined with Container::enter"
            ),
        ))
    };
    if !c.namespaces.is_empty() || !c.join.is_empty() {
        return refuse("new or joined namespaces (namespaces, join)");
    }
    if c.rootfs.is_some() {
        return refuse("a rootfs");
    }
    if c.hostname.is_some() || c.domainname.is_some() {
        return refuse("a hostname or domain name");
    }
    if !c.sysctls.is_empty() {
        return refuse("sysctls");
    }
    if c.network.is_some() {
        return refuse("a network setting");
    }
    if !c.etc.is_empty() {
        return refuse("extra hosts or resolver settings");
    }
    Ok(())
}

/// What entering a target means, learnt from `/proc`: which of its namespaces differ from the
/// calling thread's, its cgroup, whether its user namespace denies `setgroups`; for a
/// [`surveyed`](Target::surveyed) target in a mount namespace of its own, its user files.
#[derive(Debug)]
pub(crate) struct Survey {
    namespaces: Namespaces,
    cgroup: Option<Cgroup>,
    setgroups_denied: bool,
    etc: Option<std::sync::Arc<EtcFiles>>,
}

/// Learns what entering the process of `pidfd` (`pid`) means (see [`Survey`]).
fn survey(pidfd: BorrowedFd<'_>, pid: Pid) -> Result<Survey> {
    alive(pidfd)?;
    let mut namespaces = Namespaces::empty();
    for kind in Namespaces::all().kinds() {
        let name = kind.proc_name().unwrap_or("");
        let ours =
            match nix::sys::stat::stat(format!("/proc/thread-self/ns/{name}").as_str()).ours() {
                Ok(st) => (st.st_dev, st.st_ino),
                // A kind this kernel lacks (time before 5.6): nothing to enter.
                Err(Errno::ENOENT) => continue,
                Err(e) => {
                    return Err(Error::sys_path(
                        "stat",
                        format!("/proc/thread-self/ns/{name}"),
                        e,
                    ))
                }
            };
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let theirs = match nix::sys::stat::stat(&path).ours() {
            Ok(st) => (st.st_dev, st.st_ino),
            // A zombie has no namespaces left.
            Err(Errno::ENOENT) => return Err(Error::sys_path("stat", path, Errno::ESRCH)),
            Err(e) => return Err(Error::sys_path("stat", path, e)),
        };
        if ours != theirs {
            namespaces |= kind;
        }
    }
    let setgroups_denied = namespaces.contains(Namespaces::USER) && {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::read_to_string(&path)
            .map_err(|e| Error::sys_path("read", &path, io_errno(&e)))?
            .trim()
            == "deny"
    };
    let cgroup = target_cgroup(pid)?;
    // The pidfd pins the process: alive now means every /proc/PID file read above was its.
    alive(pidfd)?;
    Ok(Survey {
        namespaces,
        cgroup,
        setgroups_denied,
        etc: None,
    })
}

/// The `/etc/passwd` and `/etc/group` of a target in a mount namespace of its own, read
/// inside its root as a spawn would read them; `None` when either cannot be read (a spawn then
/// reads them itself, and reports what is wrong).
fn etc_files(survey: &Survey, pid: Pid) -> Option<EtcFiles> {
    if !survey.namespaces.contains(Namespaces::MOUNT) {
        return None;
    }
    let root = crate::rootfs::Rootfs::new(format!("/proc/{pid}/root"));
    Some(EtcFiles {
        passwd: root.read_file(c"etc/passwd", false).ok()?,
        group: root.read_file(c"etc/group", false).ok()?,
    })
}

/// A duplicate of `pidfd` (close-on-exec, at 3 or above).
fn dup_pidfd(pidfd: BorrowedFd<'_>) -> Result<OwnedFd> {
    let dup = nix::fcntl::fcntl(pidfd, FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| Error::sys("fcntl(F_DUPFD_CLOEXEC)", e))?;
    // SAFETY: fcntl just returned this new descriptor; nobody else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) })
}

/// `Ok` while the process of `pidfd` has not exited.
fn alive(pidfd: BorrowedFd<'_>) -> Result<()> {
    sys::pidfd_send_signal(pidfd, 0)
        .map_err(|e| Error::sys("pidfd_send_signal (the process to enter)", e))
}

/// The target's cgroup v2 group when it is not the caller's own and lies under the host's
/// cgroup2 mount (see the module documentation).
fn target_cgroup(pid: Pid) -> Result<Option<Cgroup>> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Err(Error::sys_path("read", path, io_errno(&e))),
    };
    let Some(theirs) = v2_path(&text) else {
        return Ok(None);
    };
    let host = HostCgroups::detect()?;
    let Ok(v2) = host.v2_mount() else {
        return Ok(None);
    };
    if host.own_cgroup() == Some(theirs) {
        return Ok(None);
    }
    let Ok(rel) = theirs.strip_prefix(&v2.root) else {
        return Ok(None);
    };
    Cgroup::open(v2.mount_point.join(rel)).map(Some)
}

/// The `0::PATH` line of a `/proc/PID/cgroup`.
fn v2_path(text: &str) -> Option<&Path> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| p.starts_with('/'))
        .map(Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_and_cgroup_lines_parse() {
        let info =
            "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nPid:\t4242\nNSpid:\t4242\t1\n";
        assert_eq!(fdinfo_pid(info), Some(4242));
        assert_eq!(fdinfo_pid("pos:\t0\nflags:\t02\n"), None);
        assert_eq!(fdinfo_pid("Pid:\t-1\n"), Some(-1));
        let cg = "12:memory:/a\n0::/contain/box\n";
        assert_eq!(v2_path(cg), Some(Path::new("/contain/box")));
        assert_eq!(v2_path("3:cpu:/x\n"), None);
    }

    #[test]
    fn a_pidfd_of_our_own_child_names_it() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(sleeper.id() as i32).unwrap();
        let t = Target::open(pid).unwrap();
        let again = Target::from_pidfd(t.pidfd()).unwrap();
        assert_eq!(again.pid(), pid);
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        // Reaped: the pidfd now names nothing.
        let e = alive(again.pidfd()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Sys {
                    errno: Errno::ESRCH,
                    ..
                }
            ),
            "{e}"
        );
        let null = std::fs::File::open("/dev/null").unwrap();
        let e = Target::from_pidfd(null.as_fd()).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
    }
}
