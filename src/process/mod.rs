//! Starting a process in new namespaces: the [`Container`] builder, [`spawn`](Container::spawn)
//! and the [`Child`] handle.
//!
//! # How spawn works
//! `spawn` prepares everything the new process will need (argv, envp, the PATH candidates,
//! hostname, descriptor moves, id maps) while it is still plain data, then calls `clone3` with
//! `CLONE_VM | CLONE_PIDFD` and the namespace flags. Like glibc's `posix_spawn`, the child
//! runs on its own small stack in the parent's address space, so no page tables are copied
//! and the cost of a spawn does not grow with the parent's memory. Unlike `posix_spawn`
//! (`CLONE_VFORK`), the parent keeps running: it writes the id maps while the child waits on a
//! pipe, then lets it go on. The child reports a failing step as `(stage, errno)` over a
//! close-on-exec pipe; EOF on that pipe means exec succeeded.

mod child;
mod created;
mod enter;
mod handle;
mod init;
mod personality;
mod signals;
mod spawn;
mod sysctl;
mod timing;
mod tty;
mod usage;
mod user;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub use created::{start, Created, Detached};
pub use enter::Target;
pub use handle::{Child, ExitStatus, Output};
pub use personality::{Personality, PersonalityDomain, PersonalityFlags};
pub use signals::{
    forwardable_signals, real_time_signals, SignalForwarder, Signaller, FORWARDABLE,
};
pub use timing::StartTiming;
pub use tty::{set_window_size, window_size, TtyRelay, WindowSize};
pub use usage::{Rusage, Usage};
pub(crate) use user::MAX_FILE as MAX_ETC_FILE;
pub use user::{Id, ResolvedUser, User};

use crate::cgroup::{Cgroup, LimitPolicy, Resources};
use crate::idmap::IdMap;
use crate::namespace::{Namespace, Namespaces};
use crate::net::Net;
use crate::rootfs::Rootfs;
use crate::security::{CapSet, Rlimit, Seccomp, Security};
use crate::{Result, Signal};
use spawn::Prepared;
pub(crate) use spawn::{Standby, StandbyFailure};

/// The descriptor on which a pool slot's standby process takes its request.
const STANDBY_SOCKET: RawFd = 3;

/// The lowest `RLIMIT_NOFILE` soft limit under which a standby can take a request: its stdio
/// and socket (0 to 3) and the three descriptors of the request's stdio (4 to 6).
const STANDBY_MIN_NOFILE: u64 = 7;

/// The `PATH` a container gets unless the caller sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The umask a container gets unless the caller sets one (as runc, crun and docker).
pub const DEFAULT_UMASK: u32 = 0o022;

/// The `TERM` a container with a [`tty`](Container::tty) gets unless the caller sets one (as
/// docker).
pub const DEFAULT_TERM: &str = "xterm";

/// What to connect one of the child's standard streams to.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own stream (the default).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A new pipe; the caller's end is in [`Child::stdin`]/`stdout`/`stderr`.
    Piped,
    /// This descriptor (duplicated for each spawn).
    Fd(OwnedFd),
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

/// Which clone system call `spawn` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloneCall {
    /// `clone3`, falling back to `clone` when the kernel (or a seccomp filter) says ENOSYS.
    /// `clone3` is Linux 5.3, its `CLONE_INTO_CGROUP` Linux 5.7 (before that the parent
    /// moves the child into its cgroup before letting it run).
    #[default]
    Auto,
    /// `clone3` only.
    Clone3,
    /// The classic `clone` (no time namespace, no `CLONE_INTO_CGROUP`); for old kernels and
    /// for testing the fallback.
    /// Its pidfd comes from `CLONE_PIDFD`, which needs Linux 5.2.
    Legacy,
}

/// A process to start in new (or joined) namespaces: plain data until [`spawn`](Self::spawn).
///
/// ```no_run
/// use contain::namespace::Namespaces;
/// use contain::process::Container;
///
/// let mut child = Container::new("/bin/sh")
///     .args(["-c", "hostname; echo $$"])
///     .namespaces(Namespaces::USER | Namespaces::UTS | Namespaces::PID)
///     .hostname("box")
///     .spawn()?;
/// let status = child.wait()?;
/// assert!(status.success());
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Builder style
/// Every setter takes the container by value and returns it (`#[must_use]`: a dropped
/// `c.arg(x);` is a compiler warning), as [`Rootfs`], [`Mount`](crate::mount::Mount),
/// [`Resources`] and every other builder of the crate does (see the
/// [crate's conventions](crate#conventions)). So the values nest in one expression, a
/// `Mount` into a `Rootfs` into a `Container`; a setting that depends on something reads
/// `c = c.hostname(h)`; and a helper takes a `Container` and returns it. [`spawn`](Self::spawn)
/// only borrows, so one configured container can be spawned any number of times (as std's
/// `thread::Builder` and clap's `Command` are used):
///
/// ```no_run
/// use contain::mount::Mount;
/// use contain::namespace::Namespaces;
/// use contain::process::Container;
/// use contain::rootfs::Rootfs;
/// use contain::Bytes;
///
/// let job = |host: Option<&str>| {
///     let mut c = Container::new("/bin/sh")
///         .args(["-c", "hostname > /tmp/name && cat /tmp/name"])
///         .namespaces(Namespaces::all())
///         .rootfs(
///             Rootfs::new("/srv/images/alpine")
///                 .mount(Mount::tmpfs("/tmp").size(Bytes::mib(16))),
///         );
///     if let Some(h) = host {
///         c = c.hostname(h);
///     }
///     c
/// };
/// let c = job(Some("box"));
/// for _ in 0..3 {
///     assert!(c.spawn()?.wait()?.success());
/// }
/// # Ok::<(), contain::Error>(())
/// ```
///
/// A setting whose result is dropped is lost, and the compiler says so (an error under
/// `#![deny(unused_must_use)]` or `-D warnings`):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # use contain::process::Container;
/// let c = Container::new("ls");
/// c.arg("-l"); // unused return value of `Container::arg` that must be used
/// ```
#[derive(Debug)]
pub struct Container {
    program: OsString,
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    hostname: Option<OsString>,
    domainname: Option<OsString>,
    namespaces: Namespaces,
    join: Vec<Namespace>,
    uid_map: Vec<IdMap>,
    gid_map: Vec<IdMap>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    fds: Vec<(OwnedFd, RawFd)>,
    parent_death_signal: Option<Signal>,
    clone_call: CloneCall,
    cgroup: Option<CgroupPlacement>,
    security: Security,
    init: bool,
    /// The init runs no payload and only holds the namespaces (a [`Pool`](crate::pool::Pool)
    /// slot).
    pause: bool,
    /// The init waits for one request on descriptor [`STANDBY_SOCKET`] and execs it (a
    /// [`Pool`](crate::pool::Pool) slot's standby process).
    standby: bool,
    /// Record how long each stage of a spawn takes ([`Child::start_timing`]).
    timing: bool,
    tty: bool,
    network: Option<Net>,
    rootfs: Option<Rootfs>,
    etc: crate::rootfs::etc::EtcConfig,
    umask: u32,
    user: Option<User>,
    sysctls: BTreeMap<String, String>,
    limit_policy: LimitPolicy,
    enter: Option<Target>,
    personality: Option<Personality>,
    console_size: Option<WindowSize>,
}

/// Where `spawn` puts the child.
#[derive(Debug)]
enum CgroupPlacement {
    /// An existing cgroup the caller owns.
    Existing(Cgroup),
    /// A new cgroup with these limits, created by `spawn` under `parent` (default: see
    /// [`Container::resources`]), or at exactly `parent` when `exact`
    /// ([`Container::cgroup_path`]), and removed with the [`Child`].
    Create {
        parent: Option<PathBuf>,
        exact: bool,
        resources: Box<Resources>,
    },
}

impl Container {
    /// A container that will run `program` (a path, or a name looked up in the container's
    /// `PATH`), with no new namespaces yet, `PATH` as the only environment variable, the
    /// caller's stdio, and SIGKILL as its parent-death signal.
    pub fn new(program: impl AsRef<OsStr>) -> Container {
        let mut env = BTreeMap::new();
        env.insert(OsString::from("PATH"), OsString::from(DEFAULT_PATH));
        Container {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env,
            cwd: None,
            uid: None,
            gid: None,
            groups: None,
            hostname: None,
            domainname: None,
            namespaces: Namespaces::empty(),
            join: Vec::new(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            fds: Vec::new(),
            parent_death_signal: Some(Signal::SIGKILL),
            clone_call: CloneCall::Auto,
            cgroup: None,
            security: Security::default(),
            init: false,
            pause: false,
            standby: false,
            timing: false,
            tty: false,
            network: None,
            rootfs: None,
            etc: Default::default(),
            umask: DEFAULT_UMASK,
            user: None,
            sysctls: BTreeMap::new(),
            limit_policy: LimitPolicy::Strict,
            enter: None,
            personality: None,
            console_size: None,
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets `argv[0]` (default: the program as given).
    #[must_use]
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Sets an environment variable. The container sees only what is set here, plus, unless
    /// set here: `PATH` ([`DEFAULT_PATH`]), `HOME` (the home directory of the user the
    /// container runs as, from the container's `/etc/passwd`: `/root` for root, `/` when the
    /// user has no entry, as runc sets it), `HOSTNAME` when a [`hostname`](Self::hostname)
    /// is set (as docker) and, with a [`tty`](Self::tty), `TERM` ([`DEFAULT_TERM`], as
    /// docker).
    ///
    /// `/etc/passwd` is read in the caller before clone: the image's (resolved inside the
    /// image directory with `openat2(RESOLVE_IN_ROOT)`; a [persistent
    /// upper](crate::rootfs::Rootfs::persistent_upper)'s own copy wins), or the host's for
    /// [`Rootfs::host`] and without a rootfs. A file mounted over it with
    /// [`Rootfs::mount`](crate::rootfs::Rootfs::mount) is not looked at.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    /// Removes an environment variable (also the default `PATH`).
    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.remove(key.as_ref());
        self
    }

    /// Removes every environment variable, the default `PATH` included.
    #[must_use]
    pub fn env_clear(mut self) -> Self {
        self.env.clear();
        self
    }

    /// The working directory inside the container (default: the caller's; with a rootfs, `/`).
    ///
    /// With a [rootfs](Self::rootfs), a directory missing from it is created (mode 0755,
    /// owned by the container's uid and gid, each level resolved inside the root: a symlink
    /// in the image cannot lead out), as runc, crun and docker do. In a read-only root it
    /// cannot be: `spawn` then fails with `EROFS` and says to create it in the image or to use
    /// a writable layer. Without a rootfs nothing is created on the caller's filesystem: a
    /// missing directory fails with `chdir: ENOENT`. A directory the child cannot enter fails
    /// the spawn with [`Error::Sys`](crate::Error::Sys) (`syscall` starting with `chdir`, the
    /// directory as `path`, and the errno: `ENOENT`, `ENOTDIR`, `EACCES`...).
    ///
    /// With a rootfs the directory must be absolute (as docker: "it needs to be an absolute
    /// path"); a relative one is refused by `spawn`. Without a rootfs a relative directory is
    /// relative to the caller's working directory, as with `std::process::Command`.
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The user id to run as (in the container's user namespace when it has one).
    #[must_use]
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// The group id to run as. Supplementary groups are cleared unless set with
    /// [`groups`](Self::groups).
    #[must_use]
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// The supplementary groups.
    #[must_use]
    pub fn groups(mut self, groups: &[u32]) -> Self {
        self.groups = Some(groups.to_vec());
        self
    }

    /// The user to run as, by name or number, as docker's `--user USER[:GROUP]`: resolved in
    /// the container's `/etc/passwd` and `/etc/group` (read as for `HOME`, see
    /// [`env`](Self::env)) when `spawn` prepares the container.
    ///
    /// As docker (runc's user lookup): a name must have a passwd entry (else `spawn` fails with
    /// "unable to find user NAME: no matching entries in passwd file"); a number is used as it
    /// is, and when it has a passwd entry that entry's primary group and name count too. The
    /// gid is the entry's (0 without one) unless `:GROUP` gives one (a group name must be in
    /// `/etc/group`). The supplementary groups are the `/etc/group` groups that list the user,
    /// only when no `:GROUP` is given; in a user namespace, those the namespace does not map
    /// are left out, and none are set where `setgroups` is denied (rootless). `HOME` is the
    /// entry's home directory.
    ///
    /// [`uid`](Self::uid), [`gid`](Self::gid) and [`groups`](Self::groups) win over what the
    /// user resolves to.
    ///
    /// ```no_run
    /// use contain::process::Container;
    /// use contain::rootfs::Rootfs;
    /// # use contain::namespace::Namespaces;
    /// let mut child = Container::new("id")
    ///     .namespaces(Namespaces::MOUNT | Namespaces::PID)
    ///     .rootfs(Rootfs::new("/srv/images/debian"))
    ///     .user("www-data".parse()?)
    ///     .spawn()?;
    /// # child.wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn user(mut self, user: User) -> Self {
        self.user = Some(user);
        self
    }

    /// The execution domain and flags of the command (personality(2); the OCI spec's
    /// `linux.personality`), set in the container's process before it execs and before the
    /// seccomp filter (docker's default profile allows only a few persona values). Default:
    /// the caller's persona is inherited. A value the kernel refuses fails the spawn with
    /// [`Error::Setup`](crate::Error::Setup) at
    /// [`SetupStage::Personality`](crate::SetupStage::Personality).
    ///
    /// ```no_run
    /// use contain::process::{Container, Personality, PersonalityDomain};
    /// // On x86_64, `uname -m` then says i686.
    /// let c = Container::new("uname").arg("-m")
    ///     .personality(Personality::new(PersonalityDomain::Linux32));
    /// ```
    #[must_use]
    pub fn personality(mut self, personality: Personality) -> Self {
        self.personality = Some(personality);
        self
    }

    /// The first window size of the container's pseudo-terminal (with [`tty`](Self::tty);
    /// the OCI spec's `process.consoleSize`), set with `TIOCSWINSZ` on the new pty before the
    /// command runs. Default: the caller's terminal's size (stdin's, else stdout's), or 0x0
    /// when it has none. Without `tty` it does nothing.
    #[must_use]
    pub fn console_size(mut self, size: WindowSize) -> Self {
        self.console_size = Some(size);
        self
    }

    /// The file mode creation mask of the command (default [`DEFAULT_UMASK`], 0o022, as runc,
    /// crun and docker: the caller's own umask does not leak in). Only the permission bits
    /// (0o777) count; `spawn` refuses more.
    #[must_use]
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }

    /// Sets a namespaced sysctl in the container, as docker's `--sysctl KEY=VALUE`: `KEY` in
    /// dotted (`net.core.somaxconn`) or slash (`net/ipv4/conf/eth0.100/forwarding`) form.
    ///
    /// Only sysctls the kernel keeps per namespace are accepted, and only when the container
    /// has its own namespace of that kind (the OCI spec's and runc's list): `kernel.msgmax`,
    /// `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`, `kernel.shmmax`,
    /// `kernel.shmmni`, `kernel.shm_rmid_forced` and `fs.mqueue.*` with a new IPC namespace,
    /// `net.*` with a new network namespace. `spawn` refuses others with a message that names
    /// the key and why (they would change the host's kernel).
    ///
    /// Every new network namespace also gets docker's defaults, unless set here:
    /// `net.ipv4.ip_unprivileged_port_start=0` (any user binds ports below 1024) and
    /// `net.ipv4.ping_group_range="0 2147483647"` (any group may use ICMP echo sockets: `ping`
    /// without setuid or CAP_NET_RAW); in a new user namespace the range is the mapped gids
    /// (the kernel accepts only those), from the lowest to the highest. A default the kernel
    /// lacks or refuses is skipped; a sysctl set here that cannot be written fails the spawn
    /// with `open (sysctl) /proc/sys/KEY: ERRNO` or `write (sysctl) /proc/sys/KEY: ERRNO`.
    ///
    /// The child writes them through `/proc/sys` once it is in its new namespaces (the file
    /// shows the opener's namespace) and before its rootfs makes `/proc/sys` read-only.
    #[must_use]
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.insert(key.into(), value.into());
        self
    }

    /// The hostname; needs a UTS namespace of the container's (new or joined).
    ///
    /// It must be a host name (RFC 1123: labels of letters, digits, `-` and `_`, 1 to 63 bytes
    /// each, not starting or ending with `-`, joined by dots; at most 64 bytes, the kernel's
    /// limit), since it goes into the generated `/etc/hosts` and `/etc/hostname`: `spawn`
    /// refuses anything else (whitespace, control characters, `#`) before creating anything.
    /// docker checks less since 1.10.2, and a newline then adds a line to its `/etc/hosts`.
    ///
    /// The command's environment then has `HOSTNAME` set to it, as docker does, unless the
    /// caller set `HOSTNAME` with [`env`](Self::env). Without a hostname set here the
    /// container keeps the name it inherits (the host's, or the joined namespace's) and gets
    /// no `HOSTNAME`.
    #[must_use]
    pub fn hostname(mut self, name: impl AsRef<OsStr>) -> Self {
        self.hostname = Some(name.as_ref().to_owned());
        self
    }

    /// The NIS domain name; needs a UTS namespace of the container's (new or joined).
    /// Checked as [`hostname`](Self::hostname) is (it ends the FQDN in `/etc/hosts`).
    #[must_use]
    pub fn domainname(mut self, name: impl AsRef<OsStr>) -> Self {
        self.domainname = Some(name.as_ref().to_owned());
        self
    }

    /// The namespaces to create (replaces the set).
    #[must_use]
    pub fn namespaces(mut self, namespaces: Namespaces) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// Joins an existing namespace instead of creating one of that kind.
    ///
    /// Namespaces are joined after the new ones are created, so with a new user namespace
    /// only namespaces owned by it can be joined (the kernel says EPERM otherwise).
    ///
    /// Joining a PID namespace switches the calling thread's `pid_for_children` around the
    /// clone and so needs `CAP_SYS_ADMIN` over it in the caller; joining a time namespace makes
    /// the spawn copy the parent's page tables (the kernel refuses a shared address space).
    ///
    /// With a [`rootfs`](Self::rootfs), a joined mount namespace is where the rootfs is
    /// assembled (OCI `linux.namespaces` with a mount `path`, as runc and crun do it): its
    /// mounts stay there, and `pivot_root` moves every process of that namespace whose root
    /// was the old one into the new root.
    #[must_use]
    pub fn join(mut self, namespace: Namespace) -> Self {
        self.join.push(namespace);
        self
    }

    /// The uid map of a new user namespace (default: the caller's euid mapped to 0).
    #[must_use]
    pub fn uid_map(mut self, maps: &[IdMap]) -> Self {
        self.uid_map = maps.to_vec();
        self
    }

    /// The gid map of a new user namespace (default: the caller's egid mapped to 0).
    #[must_use]
    pub fn gid_map(mut self, maps: &[IdMap]) -> Self {
        self.gid_map = maps.to_vec();
        self
    }

    /// Where the child's stdin comes from.
    ///
    /// # Ownership of the standard streams
    /// When the container switches to another uid or gid, its fds 0-2 that are pipes or
    /// sockets, or the container's own pty, are given to that user (`fchown`) before the
    /// switch, as runc does: otherwise reopening them (`echo x > /dev/stdout`, which opens
    /// `/proc/self/fd/1`) fails with `EACCES` for a pipe the caller's user created. Note that
    /// this changes the owner of a pipe inherited from the caller for everyone who holds it.
    /// Regular files, `/dev/null` and other character devices (such as the caller's own
    /// terminal) are never touched: they are objects of the caller's filesystem whose
    /// ownership must not change because a container ran. Where the kernel refuses (the user
    /// is not mapped: `EINVAL`, `EPERM`, `EROFS`), the stream is left as it is, as in runc.
    #[must_use]
    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdin = stdio.into();
        self
    }

    /// Where the child's stdout goes.
    #[must_use]
    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdout = stdio.into();
        self
    }

    /// Where the child's stderr goes.
    #[must_use]
    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stderr = stdio.into();
        self
    }

    /// Passes `fd` to the child as descriptor number `target` (≥ 3). Every other descriptor
    /// is closed at exec.
    #[must_use]
    pub fn pass_fd(mut self, fd: OwnedFd, target: RawFd) -> Self {
        self.fds.push((fd, target));
        self
    }

    /// The signal the child gets when the thread that spawned it dies (default SIGKILL;
    /// `None` to let it outlive the caller). The kernel ties this to the spawning *thread*.
    #[must_use]
    pub fn parent_death_signal(mut self, signal: Option<Signal>) -> Self {
        self.parent_death_signal = signal;
        self
    }

    /// Which clone system call to use (default [`CloneCall::Auto`]).
    #[must_use]
    pub fn clone_call(mut self, call: CloneCall) -> Self {
        self.clone_call = call;
        self
    }

    /// Runs a minimal init as PID 1 of the new PID namespace, with the command as its child:
    /// it reaps every zombie, forwards every signal it can catch (all but SIGCHLD, SIGKILL
    /// and SIGSTOP) to the command, and exits with the command's status (128+N when a signal
    /// N killed it). Needs [`Namespaces::PID`].
    ///
    /// The init is `contain-init`, a static program of a few KiB the crate carries and execs from a
    /// memfd sealed against writes: PID 1 holds nothing of the caller (no memory, no
    /// descriptor but stdio, and `/proc/1/exe` is the sealed memfd, not the caller's binary).
    /// The memfd is made at the first such spawn and stays open (close-on-exec) in the caller.
    /// `ps` in the container shows PID 1 as `contain-init ERRFD [probe] PATH... --
    /// COMMAND...` (`probe`: it may look at a path whose exec failed, to say why, as the
    /// child does without an init; not under a
    /// [`Seccomp::Program`] or [`Seccomp::Profile`] of the caller's).
    ///
    /// When the command cannot be executed, the error is the same as without an init
    /// ([`Error::Setup`](crate::Error::Setup) at [`SetupStage::Exec`](crate::SetupStage),
    /// with an [`ExecFailure`](crate::ExecFailure) that names the path and, for a script, its
    /// missing `#!` interpreter).
    ///
    /// Without it the command itself is PID 1: the kernel delivers it only the signals it has
    /// handlers for (a SIGTERM to a shell that set none does nothing), and orphans in the
    /// container are reparented to it and stay zombies unless it reaps them.
    #[must_use]
    pub fn init(mut self, init: bool) -> Self {
        self.init = init;
        self
    }

    /// Records how long each stage of every spawn takes, for [`Child::start_timing`]: the
    /// parent's preparation, the clone, the child's namespaces, network and names, rootfs and
    /// process setup, and the exec (see [`StartTiming`]). The cost is a few reads of
    /// `CLOCK_MONOTONIC`, so it may stay on; off by default.
    ///
    /// ```no_run
    /// use contain::namespace::Namespaces;
    /// use contain::process::Container;
    /// let child = Container::new("/bin/true").namespaces(Namespaces::all()).timing(true).spawn()?;
    /// for (stage, took) in child.start_timing().unwrap().stages() {
    ///     println!("{stage}: {took:?}");
    /// }
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn timing(mut self, on: bool) -> Self {
        self.timing = on;
        self
    }

    /// Makes PID 1 `contain-init` in `pause` mode: it runs no command and holds the
    /// container's namespaces until killed (a [`Pool`](crate::pool::Pool) slot's holder).
    pub(crate) fn pause(mut self) -> Self {
        self.init = true;
        self.pause = true;
        self
    }

    /// A [`Pool`](crate::pool::Pool) slot's standby process, made from the pool's
    /// `template`: `contain-init` in `standby` mode, entered into the slot (`target`) with the
    /// template's process settings (see [`standby_serves`](Self::standby_serves)), stdio on
    /// `/dev/null`, and `socket` as its descriptor [`STANDBY_SOCKET`], on which it takes one
    /// request.
    pub(crate) fn standby_of(template: &Container, target: Target, socket: OwnedFd) -> Container {
        let mut c = Container::new("contain-init")
            .enter(target)
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null);
        c.cwd = template.cwd.clone();
        c.uid = template.uid;
        c.gid = template.gid;
        c.groups = template.groups.clone();
        c.user = template.user.clone();
        c.umask = template.umask;
        c.personality = template.personality;
        c.parent_death_signal = template.parent_death_signal;
        c.clone_call = template.clone_call;
        c.security = template.security.clone();
        c.init = true;
        c.standby = true;
        c.fds.push((socket, STANDBY_SOCKET));
        c
    }

    /// Whether a standby made by [`standby_of`](Self::standby_of) from `self` (a pool's
    /// template) can run `request`: the request's process settings are those the standby was
    /// made with (working directory, user and groups, umask, personality, parent-death
    /// signal, capabilities, no_new_privs, rlimits, session, capability sets, and the
    /// default filter or none), and it asks for nothing the standby cannot give it after the
    /// fact (an init, a tty, passed descriptors).
    pub(crate) fn standby_serves(&self, request: &Container) -> bool {
        let (t, r) = (&self.security, &request.security);
        let seccomp_same = matches!(
            (&t.seccomp, &r.seccomp),
            (Seccomp::Default, Seccomp::Default) | (Seccomp::Disabled, Seccomp::Disabled)
        );
        self.standby_may_serve()
            && seccomp_same
            && t.capabilities == r.capabilities
            && t.no_new_privs == r.no_new_privs
            && t.rlimits == r.rlimits
            && t.new_session == r.new_session
            && t.cap_sets == r.cap_sets
            && self.cwd == request.cwd
            && self.uid == request.uid
            && self.gid == request.gid
            && self.groups == request.groups
            && self.user == request.user
            && self.umask == request.umask
            && self.personality == request.personality
            && self.parent_death_signal == request.parent_death_signal
            && !request.init
            && !request.tty
            && request.fds.is_empty()
    }

    /// Whether a standby made from `self` (a pool's template) can serve any request: its
    /// seccomp filter is the default or none (a filter of the caller's may deny what the
    /// standby does before the exec: `recvmsg`, `dup3`), and its `RLIMIT_NOFILE` leaves room
    /// for the three stdio descriptors it receives above its own four (a lower limit makes
    /// the kernel drop them).
    pub(crate) fn standby_may_serve(&self) -> bool {
        let s = &self.security;
        matches!(s.seccomp, Seccomp::Default | Seccomp::Disabled)
            && s.rlimits.as_ref().is_none_or(|limits| {
                limits
                    .iter()
                    .all(|l| l.resource != Rlimit::RLIMIT_NOFILE || l.soft >= STANDBY_MIN_NOFILE)
            })
    }

    /// Refuses a template no [`Pool`](crate::pool::Pool) slot can be made from, or whose
    /// slots would keep what a request wrote.
    pub(crate) fn check_pool_template(&self) -> Result<()> {
        let problem = if !self.namespaces.contains(Namespaces::PID) {
            "a pool's template needs a new PID namespace (Namespaces::PID): the slot's PID 1 \
             holds its namespaces"
        } else if self.tty {
            "a pool's template cannot have a tty (a request can)"
        } else if self.enter.is_some() {
            "a pool's template cannot enter a running container"
        } else if self.rootfs.as_ref().is_some_and(Rootfs::keeps_writes) {
            "a pool's slots serve one request each: its rootfs cannot keep writes \
             (RootfsMode::ReadWrite, persistent_upper), which the next slot would see"
        } else {
            return Ok(());
        };
        Err(crate::Error::config("pool", problem))
    }

    /// Refuses a request a [`Pool`](crate::pool::Pool) slot cannot take: one that asks for
    /// isolation of its own (as [`enter`](Self::enter) refuses), a cgroup of its own (the
    /// slot's limits would not apply) or an `enter` target (the slot is its target).
    pub(crate) fn check_pool_request(&self) -> Result<()> {
        enter::check_nothing_new(self)?;
        let problem = if self.cgroup.is_some() {
            "a request runs in its slot's cgroup, under the template's limits: cgroup, \
             resources and cgroup_parent belong to the template"
        } else if self.enter.is_some() {
            "a request runs in its slot: it cannot enter another container"
        } else {
            return Ok(());
        };
        Err(crate::Error::config("pool", problem))
    }

    /// Gives the container a new pseudo-terminal as its stdin, stdout, stderr and controlling
    /// terminal (this replaces the stdio settings and implies a new session). The master side
    /// is in [`Child::take_tty`]; [`TtyRelay`] connects it to the caller's terminal. `TERM`
    /// is [`DEFAULT_TERM`] unless set with [`env`](Self::env), as docker's `-t`.
    #[must_use]
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// The security settings (default: [`Security::default`], see [`crate::security`]).
    #[must_use]
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The capabilities the process keeps (default: docker's set).
    #[must_use]
    pub fn capabilities(mut self, caps: CapSet) -> Self {
        self.security.capabilities = caps;
        self
    }

    /// `PR_SET_NO_NEW_PRIVS` (default on, see [`Security::no_new_privs`] for why, and for why
    /// docker's default is off).
    #[must_use]
    pub fn no_new_privs(mut self, on: bool) -> Self {
        self.security.no_new_privs = on;
        self
    }

    /// The seccomp filter (default: [`Seccomp::Default`]).
    #[must_use]
    pub fn seccomp(mut self, seccomp: Seccomp) -> Self {
        self.security.seccomp = seccomp;
        self
    }

    /// Sets a resource limit (replacing the default `RLIMIT_NOFILE` only if it names it).
    #[must_use]
    pub fn rlimit(mut self, limit: Rlimit) -> Self {
        let limits = self
            .security
            .rlimits
            .get_or_insert_with(Security::default_rlimits);
        limits.retain(|l| l.resource != limit.resource);
        limits.push(limit);
        self
    }

    /// Starts the process in an existing cgroup (which stays the caller's: it is not removed).
    /// `clone3(CLONE_INTO_CGROUP)` puts the child there atomically, so it never runs outside;
    /// on kernels before 5.7 the parent writes `cgroup.procs` before it lets the child go on.
    /// With a new cgroup namespace, this cgroup is the container's `/`.
    ///
    /// One placement at a time: this replaces [`resources`](Self::resources) and
    /// [`cgroup_parent`](Self::cgroup_parent) given before, and they replace it (the last
    /// one given wins). Limits for an existing group are the caller's to write
    /// ([`Cgroup::apply`]).
    #[must_use]
    pub fn cgroup(mut self, cgroup: Cgroup) -> Self {
        self.cgroup = Some(CgroupPlacement::Existing(cgroup));
        self
    }

    /// Limits for a new cgroup that `spawn` creates for the child (under the caller's own
    /// cgroup unless [`cgroup_parent`](Self::cgroup_parent) says otherwise), enabling the
    /// controllers it needs on the way. The [`Child`] owns it: [`Child::usage`] reads its
    /// statistics after exit, and dropping the `Child` kills what is left in it and removes it.
    ///
    /// ```no_run
    /// use contain::cgroup::{CpuMax, Resources};
    /// use contain::process::Container;
    /// use contain::Bytes;
    ///
    /// let limits = Resources::new().memory_max(Bytes::mib(64)).cpu_max(CpuMax::cpus(0.5)?);
    /// let mut child = Container::new("/bin/true").resources(limits).spawn()?;
    /// child.wait()?;
    /// println!("{:?}", child.usage()?);
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// It keeps a [`cgroup_parent`](Self::cgroup_parent) or
    /// [`cgroup_path`](Self::cgroup_path) given before and replaces an existing
    /// [`cgroup`](Self::cgroup) (one placement at a time).
    #[must_use]
    pub fn resources(mut self, resources: Resources) -> Self {
        let (parent, exact) = match self.cgroup.take() {
            Some(CgroupPlacement::Create { parent, exact, .. }) => (parent, exact),
            _ => (None, false),
        };
        self.cgroup = Some(CgroupPlacement::Create {
            parent,
            exact,
            resources: Box::new(resources),
        });
        self
    }

    /// What `spawn` does with [`resources`](Self::resources) this host cannot apply.
    ///
    /// [`LimitPolicy::Strict`] (the default): `spawn` fails with the error that names every
    /// limit's missing controller, where it is and the remedy (see
    /// [`HostCgroups::check_all`](crate::cgroup::HostCgroups::check_all)).
    /// [`LimitPolicy::BestEffort`]: the container starts with the limits the host supports;
    /// [`Child::skipped_limits`] lists the others, each with its error. On a hybrid host
    /// (memory, cpu and pids bound to cgroup v1) those limits are skipped; rootless without a
    /// delegated cgroup, the container runs without a cgroup ([`Child::cgroup`] is `None`)
    /// and every limit is skipped. Docker drops limits the kernel cannot apply with a
    /// warning; here skipping is asked for, and reported rather than printed.
    ///
    /// ```no_run
    /// use contain::cgroup::{LimitPolicy, Resources};
    /// use contain::process::Container;
    /// use contain::Bytes;
    ///
    /// let mut child = Container::new("/bin/true")
    ///     .resources(Resources::new().memory_max(Bytes::mib(64)).pids_max(64))
    ///     .limit_policy(LimitPolicy::BestEffort)
    ///     .spawn()?;
    /// for s in child.skipped_limits() {
    ///     eprintln!("warning: {}={} not applied: {}", s.setting, s.value, s.reason);
    /// }
    /// child.wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn limit_policy(mut self, policy: LimitPolicy) -> Self {
        self.limit_policy = policy;
        self
    }

    /// The cgroup under which [`resources`](Self::resources) creates the child's cgroup: an
    /// absolute path of a cgroup v2 directory, or a path relative to the cgroup v2 root.
    ///
    /// Default: the caller's own cgroup when the limits need no controller, the root when the
    /// caller is in it, else `<cgroup2 mount>/contain`
    /// ([`cgroup::PARENT`](crate::cgroup::PARENT)), made on demand: a cgroup that holds
    /// processes (the caller's, on most hosts) cannot enable controllers for its children.
    #[must_use]
    pub fn cgroup_parent(mut self, parent: impl AsRef<Path>) -> Self {
        let resources = match self.cgroup.take() {
            Some(CgroupPlacement::Create { resources, .. }) => resources,
            _ => Box::default(),
        };
        self.cgroup = Some(CgroupPlacement::Create {
            parent: Some(parent.as_ref().to_owned()),
            exact: false,
            resources,
        });
        self
    }

    /// The child's cgroup is made at exactly `path`, with [`resources`](Self::resources)'s
    /// limits (OCI's `linux.cgroupsPath`, config-linux.md#cgroups-path): an absolute path is
    /// below the cgroup v2 mount point (the namespace's root in a cgroup namespace with its own
    /// mount), a relative one below the parent of the caller's own cgroup (which holds the
    /// caller and so cannot enable controllers for children; runc's cgroup v2 driver resolves
    /// relative paths the same way), or below the caller's own cgroup when that is the top.
    ///
    /// Missing parents are made, and the controllers the limits need enabled down the path; a
    /// parent that holds processes cannot enable them ("no internal processes") and the error
    /// says so. An existing group at `path` is taken over when it holds no process, refused
    /// otherwise. The [`Child`] owns the group and the parents made for it: dropping it
    /// removes the group, then those parents that are empty; parents that existed stay.
    /// [`Created::detach`](crate::process::Created::detach) lists both for a later `delete`.
    ///
    /// ```no_run
    /// use contain::cgroup::Resources;
    /// use contain::process::Container;
    /// let mut child = Container::new("/bin/true")
    ///     .resources(Resources::new().pids_max(64))
    ///     .cgroup_path("/machines/job-7") // /sys/fs/cgroup/machines/job-7
    ///     .spawn()?;
    /// child.wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// One placement at a time: it replaces a [`cgroup_parent`](Self::cgroup_parent) or
    /// [`cgroup`](Self::cgroup) given before.
    ///
    /// # Errors (at `spawn`/`create`)
    ///
    /// [`Error::Config`](crate::Error::Config) for a path with `.`/`..`, one naming the top
    /// of the hierarchy, or an existing group that holds processes; those of
    /// [`Cgroup::enable_controllers`] (a parent with processes, a controller the host lacks)
    /// and of `mkdirat` (`EACCES` without the right to write a parent).
    #[must_use]
    pub fn cgroup_path(mut self, path: impl AsRef<Path>) -> Self {
        let resources = match self.cgroup.take() {
            Some(CgroupPlacement::Create { resources, .. }) => resources,
            _ => Box::default(),
        };
        self.cgroup = Some(CgroupPlacement::Create {
            parent: Some(path.as_ref().to_owned()),
            exact: true,
            resources,
        });
        self
    }

    /// How the container is connected to the network (see [`crate::net`]). Unset, a
    /// container with [`Namespaces::NET`] gets [`Net::None`] (only `lo`, up) and one without
    /// shares the caller's network. [`Net::Veth`] adds a veth pair to the caller's network
    /// namespace, which [`Child::veth`] describes and which is deleted with the `Child`.
    ///
    /// ```no_run
    /// use contain::namespace::Namespaces;
    /// use contain::net::{Net, VethConfig};
    /// use contain::process::Container;
    ///
    /// let veth = VethConfig::new().addresses("10.7.0.1/30".parse()?, "10.7.0.2/30".parse()?);
    /// let mut child = Container::new("ip")
    ///     .args(["-o", "addr"])
    ///     .namespaces(Namespaces::NET)
    ///     .network(Net::Veth(veth))
    ///     .spawn()?;
    /// println!("host end: {:?}", child.veth().map(|v| v.name()));
    /// child.wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn network(mut self, net: Net) -> Self {
        self.network = Some(net);
        self
    }

    /// Gives the container its own root filesystem, assembled in its new mount namespace
    /// before the command starts (see [`crate::rootfs`]). Needs [`Namespaces::MOUNT`] (or a
    /// joined mount namespace, see [`join`](Self::join)) and a PID namespace; the working
    /// directory (default `/`) is then a path in the container.
    ///
    /// ```no_run
    /// use contain::namespace::Namespaces;
    /// use contain::process::Container;
    /// use contain::rootfs::Rootfs;
    ///
    /// let status = Container::new("/bin/sh")
    ///     .args(["-c", "touch /gone-at-exit; ls /"])
    ///     .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::USER)
    ///     .rootfs(Rootfs::new("/srv/images/alpine"))
    ///     .spawn()?
    ///     .wait()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn rootfs(mut self, rootfs: Rootfs) -> Self {
        self.rootfs = Some(rootfs);
        self
    }

    /// Adds a line to the container's generated `/etc/hosts`: docker's `--add-host NAME:IP`
    /// ([`ExtraHost`](crate::net::ExtraHost) parses that syntax). [`HostAddr::HostGateway`]
    /// is docker's `host-gateway`: the host end of the veth pair (see its docs). Entries come
    /// after `localhost` and before the container's own line, so a name given here wins over
    /// the container's own (the resolver takes the first match). Needs a rootfs with
    /// generated `/etc` files (see [`crate::rootfs`]); a name with whitespace, `#` or NUL is
    /// refused at spawn.
    ///
    /// ```no_run
    /// use contain::net::HostAddr;
    /// use contain::process::Container;
    /// let c = Container::new("getent")
    ///     .args(["hosts", "db"])
    ///     .add_host("db", "10.0.0.5".parse::<std::net::IpAddr>()?)
    ///     .add_host("host.docker.internal", HostAddr::HostGateway);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`HostAddr::HostGateway`]: crate::net::HostAddr::HostGateway
    #[must_use]
    pub fn add_host(
        mut self,
        name: impl Into<String>,
        addr: impl Into<crate::net::HostAddr>,
    ) -> Self {
        self.etc.hosts.push(crate::net::ExtraHost {
            name: name.into(),
            addr: addr.into(),
        });
        self
    }

    /// Adds a nameserver to the container's generated `/etc/resolv.conf`: docker's `--dns`.
    /// Given at least once, these replace the host's nameservers (and the fallbacks). Needs a
    /// rootfs with generated `/etc` files; with [`Net::None`] it makes the file be generated.
    #[must_use]
    pub fn dns(mut self, server: std::net::IpAddr) -> Self {
        self.etc.resolver.servers.push(server);
        self
    }

    /// Adds a search domain to the generated `/etc/resolv.conf`: docker's `--dns-search`.
    /// Given at least once, these replace the host's `search`/`domain` lines; `.` alone means
    /// no search domain at all (as docker).
    #[must_use]
    pub fn dns_search(mut self, domain: impl Into<String>) -> Self {
        self.etc.resolver.search.push(domain.into());
        self
    }

    /// Adds a resolver option (`ndots:2`, `timeout:1`, `edns0`, ...) to the generated
    /// `/etc/resolv.conf`: docker's `--dns-option`. Given at least once, these replace the
    /// host's `options` lines.
    #[must_use]
    pub fn dns_option(mut self, option: impl Into<String>) -> Self {
        self.etc.resolver.options.push(option.into());
        self
    }

    /// Starts the process. Returns once the command has been exec'd, or with the error of
    /// the setup step that failed; nothing is left running or open on failure.
    ///
    /// Borrows the container: it can be spawned again, each time as a new process with the
    /// same settings (descriptors given with [`Stdio::Fd`] and [`pass_fd`](Self::pass_fd)
    /// are duplicated for each child; a [`cgroup`](Self::cgroup) is shared by all of them,
    /// [`resources`](Self::resources) makes a new cgroup for each).
    ///
    /// # Errors
    ///
    /// - [`Error::Config`]: a configuration refused before anything is created (an empty
    ///   program, a NUL byte, contradictory settings such as [`Net::Host`] with
    ///   [`Namespaces::NET`](crate::namespace::Namespaces::NET), id maps, mounts or a rootfs that
    ///   do not validate), with what to change.
    /// - [`Error::Unsupported`]: the host lacks what the configuration needs, saying what is
    ///   missing and what to do: a cgroup v2 controller or the right to create the group, a veth
    ///   pair without `CAP_NET_ADMIN`, a time namespace without `clone3` (Linux 5.3), mounting in a
    ///   rootfs without `openat2` (Linux 5.6).
    /// - [`Error::Sys`] naming the caller's syscall that failed: `clone3`/`clone` (`EPERM` when the
    ///   caller may not create the namespaces, e.g. unprivileged user namespaces disabled or
    ///   restricted by an LSM; `ENOSPC` at a `user.max_*_namespaces` limit; `EAGAIN` at
    ///   `RLIMIT_NPROC` or `pids.max`), `pipe2`, `socketpair`, writing the id maps or
    ///   `cgroup.procs`.
    /// - [`Error::Setup`]: a step the child takes between clone and exec failed; the
    ///   [`SetupStage`](crate::SetupStage) and errno say which, e.g.
    ///   [`SetupStage::Exec`](crate::SetupStage::Exec) with `ENOENT` when the program is not found
    ///   in the container, `EACCES` when it is not executable. Failures of the rootfs and mounts
    ///   come back as [`Error::Sys`]/[`Error::Config`] naming the mount and path.
    /// - [`Error::Helper`]: `newuidmap`/`newgidmap` failed (rootless id maps with several ranges).
    /// - [`Error::InUse`]: the rootfs's persistent upper directory is used by another container.
    /// - [`Error::Netlink`]: the kernel refused a step of the veth setup.
    ///
    /// [`Error::Config`]: crate::Error::Config
    /// [`Error::Helper`]: crate::Error::Helper
    /// [`Error::InUse`]: crate::Error::InUse
    /// [`Error::Netlink`]: crate::Error::Netlink
    /// [`Error::Setup`]: crate::Error::Setup
    /// [`Error::Sys`]: crate::Error::Sys
    /// [`Error::Unsupported`]: crate::Error::Unsupported
    pub fn spawn(&self) -> Result<Child> {
        let prepared = Prepared::new(self)?;
        prepared.spawn(self, false, None)
    }

    /// [`spawn`](Self::spawn) in its two steps, for the pool: a failure of the preparation,
    /// which reads but creates no process and writes nothing (`Err(Spawned::Refused)`), is
    /// told apart from one of the start (`Err(Spawned::Failed)`), after which the process
    /// entered may have been touched.
    pub(crate) fn spawn_telling_refusals(&self) -> std::result::Result<Child, SpawnFailure> {
        let prepared = Prepared::new(self).map_err(SpawnFailure::Refused)?;
        prepared
            .spawn(self, false, None)
            .map_err(SpawnFailure::Failed)
    }

    /// Runs the command to its end and collects what it wrote, as
    /// `std::process::Command::output` does: the streams left at [`Stdio::Inherit`] (the
    /// default) are stdin from `/dev/null` and stdout and stderr piped; a stream set to
    /// something else is kept (unlike std, a stream set to `Inherit` explicitly cannot be told
    /// from the default and is captured too: to pass the caller's stderr through, give
    /// `Stdio::Fd` a duplicate of it). [`Output`] also has what the container used
    /// ([`Output::usage`]). The same as `spawn()?.wait_with_output()`; for a deadline, use
    /// [`Child::wait_with_output_timeout`].
    ///
    /// ```no_run
    /// use contain::namespace::Namespaces;
    /// use contain::process::Container;
    /// let out = Container::new("uname").arg("-n")
    ///     .namespaces(Namespaces::USER | Namespaces::UTS)
    ///     .hostname("box")
    ///     .output()?;
    /// assert_eq!(out.stdout, b"box\n");
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) with [`tty`](Self::tty) (the streams are the
    /// terminal's, there is nothing to capture); those of [`spawn`](Self::spawn) and
    /// [`Child::wait_with_output`].
    pub fn output(&self) -> Result<Output> {
        if self.tty {
            return Err(crate::Error::config(
                "output",
                "a container with a tty writes to its terminal, not to pipes: use spawn() and \
                 Child::take_tty, or leave tty off",
            ));
        }
        let prepared = Prepared::new(self)?;
        prepared.spawn(self, true, None)?.wait_with_output()
    }

    /// Runs the command to its end with the streams as set (the caller's by default) and
    /// returns how it ended, as `std::process::Command::status` does: the same as
    /// `spawn()?.wait()`.
    ///
    /// # Errors
    ///
    /// Those of [`spawn`](Self::spawn) and [`Child::wait`].
    pub fn status(&self) -> Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

/// How [`Container::spawn_telling_refusals`] failed.
pub(crate) enum SpawnFailure {
    /// The preparation refused the container: no process was made, nothing was written.
    Refused(crate::Error),
    /// The start failed: a process may have been made (and reaped), a target entered.
    Failed(crate::Error),
}
