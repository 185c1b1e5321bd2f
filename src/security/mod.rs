//! Security defaults for the container's process: capabilities, `no_new_privs`, a seccomp
//! filter, resource limits and a new session.
//!
//! Each is on by default and each can be changed on the [`Container`](crate::process::Container):
//! - capabilities: the bounding, effective and permitted sets are reduced to docker's default
//!   set ([`CapSet::DOCKER_DEFAULT`]); inheritable and ambient are emptied (CVE-2022-29162);
//! - `no_new_privs`: set-uid binaries and file capabilities give nothing;
//! - seccomp: [`Seccomp::Default`] refuses, with `EPERM`, what docker's default profile refuses
//!   for the kept capabilities (namespaces, mounts, `clone` with namespace flags, modules,
//!   reboot, clock setting, kexec, swap, keyrings, bpf, perf events, io_uring, ...),
//!   `ioctl(TIOCSTI)` and `mknod` of block devices; `clone3` gets `ENOSYS`;
//!   [`Seccomp::Profile`] installs a profile instead (the OCI runtime spec's `linux.seccomp`,
//!   [`SeccompProfile`]), [`Seccomp::Program`] a BPF program of the caller's;
//! - rlimits: `RLIMIT_NOFILE` 1024 soft, 524288 hard (capped at the caller's hard limit);
//! - `setsid`: the container cannot push input into the caller's terminal or signal its
//!   process group.
//!
//! Everything is prepared in the parent (the BPF program is compiled once per process and
//! capability set); the child applies it with raw system calls right before `execve`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use crate::cgroup::DeviceRule;
use crate::{Error, Result};

mod profile;
mod syscalls;

/// The seccomp compiler's reference (an interpreter and a profile's meaning), for the
/// `seccomp` fuzz target; only in builds with `--cfg fuzzing`. Not part of the API.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub use profile::reference as seccomp_reference;

pub use profile::{
    SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOp, SeccompProfile, SeccompRule,
};

/// The most instructions the kernel takes in one classic BPF program (`BPF_MAXINSNS`,
/// include/uapi/linux/bpf_common.h): a longer seccomp filter fails with `EINVAL`.
const BPF_MAXINSNS: usize = 4096;

/// Capability names in kernel order (`CAP_CHOWN` is 0).
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A set of Linux capabilities (bit N is capability number N).
///
/// ```
/// use contain::security::CapSet;
/// let caps = CapSet::DOCKER_DEFAULT.with("NET_ADMIN".parse()?).without("MKNOD".parse()?);
/// assert!(caps.contains("CAP_NET_ADMIN".parse()?));
/// assert_eq!("chown,kill".parse::<CapSet>()?.len(), 2);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapSet(u64);

/// One capability, by its kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

impl Capability {
    /// The capability with kernel number `n` (0..=63).
    pub fn from_number(n: u8) -> Option<Capability> {
        (n < 64).then_some(Capability(n))
    }

    /// Its kernel number.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match CAP_NAMES.get(self.0 as usize) {
            Some(name) => write!(f, "CAP_{name}"),
            None => write!(f, "CAP_{}", self.0),
        }
    }
}

impl FromStr for Capability {
    type Err = Error;

    /// `CAP_NET_ADMIN`, `NET_ADMIN` or `net_admin`; or `CAP_<n>` with a decimal number up
    /// to 63, which is how a capability beyond this crate's table of names (one of a newer
    /// kernel, as in [`CapSet::ALL`]) prints.
    fn from_str(s: &str) -> Result<Capability> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        let numbered = || {
            let digits = upper.strip_prefix("CAP_")?;
            let n: u8 = digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse().ok())??;
            (n < 64).then_some(Capability(n))
        };
        CAP_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Capability(i as u8))
            .or_else(numbered)
            .ok_or_else(|| Error::config("capability", format!("unknown capability {s:?}")))
    }
}

impl CapSet {
    /// No capabilities.
    pub const EMPTY: CapSet = CapSet(0);

    /// Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID,
    /// SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
    pub const DOCKER_DEFAULT: CapSet = CapSet(
        1 << 0 // CHOWN
            | 1 << 1 // DAC_OVERRIDE
            | 1 << 4 // FSETID
            | 1 << 3 // FOWNER
            | 1 << 27 // MKNOD
            | 1 << 13 // NET_RAW
            | 1 << 6 // SETGID
            | 1 << 7 // SETUID
            | 1 << 31 // SETFCAP
            | 1 << 8 // SETPCAP
            | 1 << 10 // NET_BIND_SERVICE
            | 1 << 18 // SYS_CHROOT
            | 1 << 5 // KILL
            | 1 << 29, // AUDIT_WRITE
    );

    /// Every capability the kernel may know (bits 0..=63); the kernel ignores unknown ones.
    pub const ALL: CapSet = CapSet(u64::MAX);

    /// The set as a bit mask.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    /// The set plus `cap`.
    #[must_use]
    pub fn with(self, cap: Capability) -> CapSet {
        CapSet(self.0 | 1 << cap.0)
    }

    /// The set minus `cap`.
    #[must_use]
    pub fn without(self, cap: Capability) -> CapSet {
        CapSet(self.0 & !(1 << cap.0))
    }

    /// How many capabilities are in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        (0..64u8)
            .filter(move |n| self.0 & (1 << n) != 0)
            .map(Capability)
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|c| c.to_string()))
            .finish()
    }
}

impl FromStr for CapSet {
    type Err = Error;

    /// A comma list of capability names, or `ALL`.
    fn from_str(s: &str) -> Result<CapSet> {
        let mut set = CapSet::EMPTY;
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("all") {
                set = CapSet::ALL;
            } else {
                set = set.with(word.parse()?);
            }
        }
        Ok(set)
    }
}

/// The seccomp filter a container gets.
#[derive(Debug, Clone, Default)]
pub enum Seccomp {
    /// Docker's default profile (`github.com/moby/profiles/seccomp` v0.2.3, docker ≥ 25) for
    /// the container's kept capabilities ([`Security::capabilities`]), as a deny list: what
    /// docker refuses fails with `EPERM` — namespaces, mounts and the new mount API, `clone`
    /// with a `CLONE_NEW*` flag, `bpf`, `perf_event_open`, `syslog` and more unless
    /// `CAP_SYS_ADMIN` (or the narrower capability) is kept, io_uring, keyrings, kexec, swap,
    /// `userfaultfd`, `personality` other than docker's five values, `AF_ALG`/`AF_VSOCK`
    /// sockets always — plus `ioctl(TIOCSTI)` and block device nodes; `clone3` fails with
    /// `ENOSYS` (unless `CAP_SYS_ADMIN` is kept) so that glibc falls back to `clone`, whose
    /// flags a filter can read. Everything else is allowed: a system call the kernel does not
    /// know still fails with `ENOSYS`. On x86_64, i386 programs get the same decisions by their
    /// own numbers and the x32 ABI is refused; any other architecture is killed.
    /// [`Seccomp::default_program`] shows the program.
    #[default]
    Default,
    /// No filter.
    Disabled,
    /// A filter of the caller's: classic BPF over `struct seccomp_data`, at most 4096
    /// instructions. Compiled with `seccompiler`, each of its `sock_filter`s converts field by
    /// field ([`SockFilter::new`]).
    Program(Vec<SockFilter>),
    /// A profile (the OCI runtime spec's `linux.seccomp`), compiled at spawn with
    /// [`SeccompProfile::compile`]; its flags ([`SeccompProfile::kernel_flags`]) go to
    /// `seccomp(2)`. Spawning fails with the compiler's errors.
    Profile(SeccompProfile),
}

/// One classic BPF instruction, as the kernel reads it in a seccomp program
/// (`struct sock_filter`, include/uapi/linux/filter.h): the crate's own type, so that the
/// API does not tie callers to one BPF compiler's version.
///
/// ```
/// use contain::security::{Seccomp, SockFilter};
/// // BPF_RET | BPF_K, SECCOMP_RET_ALLOW: allow every system call.
/// let allow = Seccomp::Program(vec![SockFilter::new(0x06, 0, 0, 0x7fff_0000)]);
/// # let _ = allow;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct SockFilter {
    /// The opcode (`BPF_LD | BPF_W | BPF_ABS`, `BPF_JMP | BPF_JEQ | BPF_K`, `BPF_RET | BPF_K`, ...).
    pub code: u16,
    /// Instructions to skip when a jump's condition holds.
    pub jt: u8,
    /// Instructions to skip when it does not.
    pub jf: u8,
    /// The constant operand (an offset into `seccomp_data`, a value, a `SECCOMP_RET_*`).
    pub k: u32,
}

impl SockFilter {
    /// The instruction `{ code, jt, jf, k }`.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }
}

// The child hands the program to the kernel as `struct sock_filter`s: same size and layout.
const _: () = assert!(
    std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>()
        && std::mem::align_of::<SockFilter>() == std::mem::align_of::<libc::sock_filter>()
);

impl Seccomp {
    /// The BPF program [`Seccomp::Default`] installs for a container that keeps `capabilities`
    /// (what the kernel runs on every system call whose decision it does not cache).
    ///
    /// ```
    /// use contain::security::{CapSet, Seccomp};
    /// let docker = Seccomp::default_program(CapSet::DOCKER_DEFAULT)?;
    /// let admin = Seccomp::default_program(CapSet::DOCKER_DEFAULT.with("SYS_ADMIN".parse()?))?;
    /// assert!(admin.len() < docker.len()); // fewer refusals
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] on an architecture other than x86_64 and aarch64 (no syscall table
    /// for it); [`Error::Config`] if the program would exceed 4096 instructions
    /// (`BPF_MAXINSNS`, the kernel's limit for one filter).
    pub fn default_program(capabilities: CapSet) -> Result<Vec<SockFilter>> {
        Ok(default_filter(capabilities)?.into_owned())
    }
}

/// A resource limit (`setrlimit(2)` resource number, soft and hard values).
///
/// The values are in the resource's own unit, as `setrlimit(2)` and docker's `--ulimit` take
/// them: seconds for `cpu`, microseconds for `rttime`, bytes for `fsize`, `data`, `stack`,
/// `core`, `rss`, `memlock`, `as` and `msgqueue`, a count for `nofile`, `nproc`, `locks` and
/// `sigpending`, a ceiling for `nice` (as `20 - value`) and `rtprio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_*` number: one of [`Rlimit::RLIMIT_NOFILE`] and its siblings.
    pub resource: u32,
    /// Soft limit ([`Rlimit::INFINITY`] for none).
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

impl Rlimit {
    /// No limit (`RLIM_INFINITY`), for [`soft`](Self::soft) or [`hard`](Self::hard).
    pub const INFINITY: u64 = libc::RLIM_INFINITY;
    /// `RLIMIT_CPU` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_CPU: u32 = libc::RLIMIT_CPU as u32;
    /// `RLIMIT_FSIZE` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_FSIZE: u32 = libc::RLIMIT_FSIZE as u32;
    /// `RLIMIT_DATA` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_DATA: u32 = libc::RLIMIT_DATA as u32;
    /// `RLIMIT_STACK` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_STACK: u32 = libc::RLIMIT_STACK as u32;
    /// `RLIMIT_CORE` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_CORE: u32 = libc::RLIMIT_CORE as u32;
    /// `RLIMIT_RSS` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_RSS: u32 = libc::RLIMIT_RSS as u32;
    /// `RLIMIT_NPROC` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_NPROC: u32 = libc::RLIMIT_NPROC as u32;
    /// `RLIMIT_NOFILE` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_NOFILE: u32 = libc::RLIMIT_NOFILE as u32;
    /// `RLIMIT_MEMLOCK` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_MEMLOCK: u32 = libc::RLIMIT_MEMLOCK as u32;
    /// `RLIMIT_AS` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_AS: u32 = libc::RLIMIT_AS as u32;
    /// `RLIMIT_LOCKS` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_LOCKS: u32 = libc::RLIMIT_LOCKS as u32;
    /// `RLIMIT_SIGPENDING` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_SIGPENDING: u32 = libc::RLIMIT_SIGPENDING as u32;
    /// `RLIMIT_MSGQUEUE` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_MSGQUEUE: u32 = libc::RLIMIT_MSGQUEUE as u32;
    /// `RLIMIT_NICE` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_NICE: u32 = libc::RLIMIT_NICE as u32;
    /// `RLIMIT_RTPRIO` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_RTPRIO: u32 = libc::RLIMIT_RTPRIO as u32;
    /// `RLIMIT_RTTIME` (getrlimit(2)).
    #[allow(clippy::unnecessary_cast)]
    pub const RLIMIT_RTTIME: u32 = libc::RLIMIT_RTTIME as u32;

    /// `resource` (one of the `RLIMIT_*` constants above) limited to `soft` and `hard`, in
    /// the resource's unit (see [`Rlimit`]).
    ///
    /// ```
    /// use contain::security::Rlimit;
    /// let nofile = Rlimit::new(Rlimit::RLIMIT_NOFILE, 1024, 4096);
    /// assert_eq!(nofile, Rlimit::parse("nofile=1024:4096")?);
    /// assert_eq!(Rlimit::new(Rlimit::RLIMIT_CORE, 0, Rlimit::INFINITY), Rlimit::parse("core=0:unlimited")?);
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub const fn new(resource: u32, soft: u64, hard: u64) -> Rlimit {
        Rlimit {
            resource,
            soft,
            hard,
        }
    }

    /// The `--ulimit` name of `resource` (`nofile`, ...), or `None` for a number it lacks.
    pub(crate) fn name_of(resource: u32) -> Option<&'static str> {
        RLIMIT_NAMES
            .iter()
            .find(|(_, r)| *r == resource)
            .map(|(n, _)| *n)
    }
}

/// Names accepted by [`Rlimit::parse`] and `--ulimit`, with their resource numbers (the
/// casts matter on libcs where the constants are `c_int`).
#[allow(clippy::unnecessary_cast)]
const RLIMIT_NAMES: [(&str, u32); 16] = [
    ("cpu", libc::RLIMIT_CPU as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("stack", libc::RLIMIT_STACK as u32),
    ("core", libc::RLIMIT_CORE as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("as", libc::RLIMIT_AS as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
];

impl Rlimit {
    /// Parses `NAME=SOFT[:HARD]` (docker's `--ulimit`), e.g. `nofile=1024:4096`; `unlimited`
    /// or `-1` for no limit.
    ///
    /// ```
    /// let l = contain::security::Rlimit::parse("nofile=1024:4096")?;
    /// assert_eq!((l.soft, l.hard), (1024, 4096));
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `ulimit` when there is no `=`, the resource name is unknown, a
    /// value is neither a number, `unlimited` nor `-1`, or the soft limit is above the hard one.
    pub fn parse(s: &str) -> Result<Rlimit> {
        let bad = |why: &str| {
            Error::config(
                "ulimit",
                format!("{s:?}: {why} (expected NAME=SOFT[:HARD])"),
            )
        };
        let (name, values) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let resource = RLIMIT_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, r)| *r)
            .ok_or_else(|| bad("unknown resource"))?;
        let value = |v: &str| match v.trim() {
            "unlimited" | "-1" => Ok(libc::RLIM_INFINITY),
            v => v.parse::<u64>().map_err(|_| bad("not a number")),
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (value(s)?, value(h)?),
            None => (value(values)?, value(values)?),
        };
        if soft > hard {
            return Err(bad("soft limit above hard limit"));
        }
        Ok(Rlimit {
            resource,
            soft,
            hard,
        })
    }
}

/// The effective, permitted, inheritable and ambient capability sets the command gets, as
/// the OCI spec's `process.capabilities` gives them (config.md#process; capabilities(7)).
/// See [`Security::cap_sets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    /// The effective set before `execve`.
    pub effective: CapSet,
    /// The permitted set before `execve`.
    pub permitted: CapSet,
    /// The inheritable set.
    pub inheritable: CapSet,
    /// The ambient set (each must also be permitted and inheritable): what a program without
    /// file capabilities keeps across `execve` when its user is not root.
    pub ambient: CapSet,
}

/// The security settings of a container; see the module docs for the defaults.
///
/// ```no_run
/// use contain::process::Container;
/// use contain::security::{CapSet, Rlimit, Seccomp, Security};
///
/// let security = Security {
///     capabilities: CapSet::DOCKER_DEFAULT.without("NET_RAW".parse()?),
///     rlimits: Some(vec![Rlimit::parse("nofile=256:1024")?, Rlimit::parse("nproc=64")?]),
///     ..Security::default()
/// };
/// let mut child = Container::new("/bin/sh").security(security).spawn()?;
/// # child.wait()?;
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Security {
    /// Bounding, effective and permitted capabilities.
    pub capabilities: CapSet,
    /// `PR_SET_NO_NEW_PRIVS` (default on): `execve` never grants more privileges than the
    /// process has, so set-uid and set-gid binaries (`sudo`, `su`, `ping` on old systems,
    /// `passwd`) and file capabilities give nothing inside the container.
    ///
    /// On by default because a container's user is meant to stay who it is: a set-uid root
    /// binary in an image (or a bug in one) is otherwise a way to the container's root and
    /// every capability it keeps, and with no_new_privs the seccomp filter can be installed
    /// last, after the setup, without CAP_SYS_ADMIN. docker leaves it off unless asked
    /// (`--security-opt no-new-privileges`), so that `sudo` and `su` work in images that rely
    /// on them; turn it off for such images ([`Container::no_new_privs`](crate::process::Container::no_new_privs)).
    /// Off, the filter is installed while the process still holds CAP_SYS_ADMIN (in its own
    /// user namespace, or as root): right before the capability drop, after the rest of the
    /// setup (or, for a non-zero uid without [`cap_sets`](Self::cap_sets), whose switch
    /// clears the permitted set, before that switch).
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// Resource limits; `None` for [`Security::default_rlimits`].
    pub rlimits: Option<Vec<Rlimit>>,
    /// `setsid()` before exec.
    pub new_session: bool,
    /// The four other capability sets, set exactly, after the identity switch, right before
    /// `execve` (a uid other than 0 keeps its permitted set across the switch with
    /// `PR_SET_KEEPCAPS`), ambient capabilities raised one by one. `None` (the default):
    /// effective and permitted are [`capabilities`](Self::capabilities) for uid 0 and empty
    /// for another uid (the kernel clears them at the switch, as docker has it), inheritable
    /// and ambient empty (CVE-2022-29162). What `execve` then makes of them is the kernel's
    /// rule (capabilities(7)): a non-root program without file capabilities keeps only the
    /// ambient set.
    pub cap_sets: Option<CapSets>,
    /// The devices the container may open, enforced by a `BPF_CGROUP_DEVICE` program on the
    /// cgroup `spawn` creates for it ([`Container::resources`](crate::process::Container::resources));
    /// `None` for no filter. Without a cgroup of its own, the default seccomp filter's ban on
    /// creating block device nodes closes the same hole.
    pub device_allowlist: Option<Vec<DeviceRule>>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            capabilities: CapSet::DOCKER_DEFAULT,
            no_new_privs: true,
            seccomp: Seccomp::Default,
            rlimits: None,
            new_session: true,
            cap_sets: None,
            device_allowlist: Some(DeviceRule::default_allowlist()),
        }
    }
}

impl Security {
    /// Nothing restricted: all capabilities kept, no filter, no limits changed, no new session.
    /// For tests and tools that need the container to be as privileged as its caller.
    pub fn unrestricted() -> Security {
        Security {
            capabilities: CapSet::ALL,
            no_new_privs: false,
            seccomp: Seccomp::Disabled,
            rlimits: Some(Vec::new()),
            new_session: false,
            cap_sets: None,
            device_allowlist: None,
        }
    }

    /// `RLIMIT_NOFILE` 1024 soft, 524288 hard, both capped at the caller's hard limit.
    #[allow(clippy::unnecessary_cast)] // c_int on some libcs
    pub fn default_rlimits() -> Vec<Rlimit> {
        let hard_now = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(_, hard)| hard)
            .unwrap_or(1024);
        let hard = hard_now.min(524_288);
        vec![Rlimit {
            resource: libc::RLIMIT_NOFILE as u32,
            soft: hard.min(1024),
            hard,
        }]
    }
}

/// `struct __user_cap_data_struct`, two of them for version 3.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

/// What the child applies, prepared in the parent.
#[derive(Debug)]
pub(crate) struct PreparedSecurity {
    /// Capabilities to keep (bounding set; effective/permitted are intersected with it).
    pub keep: u64,
    /// Highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
    pub no_new_privs: bool,
    /// The BPF program, empty for none (the default one is compiled once per process).
    pub filter: Cow<'static, [SockFilter]>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(2)` ([`Seccomp::Profile`]'s flags).
    pub filter_flags: u32,
    /// The filter is the caller's own ([`Seccomp::Program`], [`Seccomp::Profile`]): it may
    /// kill on any syscall, so the child makes none after exec fails beyond reporting (no
    /// probe of the program).
    pub custom_filter: bool,
    pub rlimits: Vec<Rlimit>,
    pub new_session: bool,
    /// [`Security::cap_sets`].
    pub cap_sets: Option<CapSets>,
}

impl PreparedSecurity {
    /// `privileged`: the child holds CAP_SYS_ADMIN before its identity switch (root, or a new
    /// user namespace), which a filter without no_new_privs needs. `user_ns`: the child is in
    /// a user namespace of the container's (new or joined), where it holds every capability.
    pub(crate) fn prepare(
        s: &Security,
        privileged: bool,
        user_ns: bool,
    ) -> Result<PreparedSecurity> {
        // The kernel's last capability does not change while we run: read it once.
        static LAST_CAP: OnceLock<u32> = OnceLock::new();
        let last_cap = *LAST_CAP.get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .filter(|n| *n < 64)
                .unwrap_or(40)
        });
        if let (Some(sets), false) = (s.cap_sets, user_ns) {
            check_held(sets, last_cap)?;
        }
        let filter = match &s.seccomp {
            Seccomp::Default => default_filter(s.capabilities)?,
            Seccomp::Disabled => Cow::Borrowed(&[][..]),
            Seccomp::Program(p) if p.len() > BPF_MAXINSNS => {
                return Err(Error::config(
                    "seccomp filter",
                    format!(
                        "{} instructions: the kernel takes at most {BPF_MAXINSNS} in one \
                         filter (BPF_MAXINSNS); split it, or shorten it with a binary search \
                         over the syscall numbers",
                        p.len()
                    ),
                ))
            }
            Seccomp::Program(p) if p.is_empty() => {
                return Err(Error::config(
                    "seccomp filter",
                    "an empty program (the kernel refuses one with EINVAL): use \
                     Seccomp::Disabled for no filter",
                ))
            }
            Seccomp::Program(p) => Cow::Owned(p.clone()),
            Seccomp::Profile(p) => Cow::Owned(p.compile()?),
        };
        let filter_flags = match &s.seccomp {
            Seccomp::Profile(p) => p.kernel_flags()?,
            _ => 0,
        };
        if !filter.is_empty() && !s.no_new_privs && !privileged {
            return Err(Error::config(
                "seccomp filter",
                "without no_new_privs only a privileged process may install a filter: run \
                 as root or in a new user namespace (Namespaces::USER)",
            ));
        }
        Ok(PreparedSecurity {
            keep: s.capabilities.bits(),
            last_cap,
            no_new_privs: s.no_new_privs,
            filter,
            filter_flags,
            custom_filter: matches!(s.seccomp, Seccomp::Program(_) | Seccomp::Profile(_)),
            rlimits: s.rlimits.clone().unwrap_or_else(Security::default_rlimits),
            new_session: s.new_session,
            cap_sets: s.cap_sets,
        })
    }
}

/// Refuses [`CapSets`] naming capabilities outside this process's bounding set (in the
/// caller's user namespace): `capset(2)` would fail in the child with a bare `EPERM`, since
/// no process can gain a capability its bounding set lacks (capabilities(7)). Whatever runs
/// the caller (a container, a sandbox, systemd's `CapabilityBoundingSet=`) took it away.
fn check_held(sets: CapSets, last_cap: u32) -> Result<()> {
    let asked = sets.effective.bits()
        | sets.permitted.bits()
        | sets.inheritable.bits()
        | sets.ambient.bits();
    let missing: Vec<String> = (0..=last_cap.min(63))
        .filter(|n| asked & (1u64 << n) != 0)
        // SAFETY: PR_CAPBSET_READ takes a capability number and reads our own bounding set;
        // it touches no memory.
        .filter(|n| unsafe { libc::prctl(libc::PR_CAPBSET_READ, *n as libc::c_ulong) } == 0)
        .filter_map(|n| Capability::from_number(n as u8).map(|c| c.to_string()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        "capabilities",
        format!(
            "{}: not in this process's capability bounding set, and no process it starts \
             can gain a capability that set lacks (capabilities(7)); leave them out of the \
             effective, permitted, inheritable and ambient sets (whatever started this \
             process took them away)",
            missing.join(", ")
        ),
    ))
}

/// Capability bits, by kernel number, that the default profile's rules depend on.
const fn cap(n: u8) -> u64 {
    1 << n
}
const DAC_READ_SEARCH: u64 = cap(2);
const SYS_MODULE: u64 = cap(16);
const SYS_RAWIO: u64 = cap(17);
const SYS_CHROOT: u64 = cap(18);
const SYS_PTRACE: u64 = cap(19);
const SYS_PACCT: u64 = cap(20);
const SYS_ADMIN: u64 = cap(21);
const SYS_BOOT: u64 = cap(22);
const SYS_NICE: u64 = cap(23);
const SYS_TIME: u64 = cap(25);
const SYS_TTY_CONFIG: u64 = cap(26);
const SYSLOG: u64 = cap(34);
const PERFMON: u64 = cap(38);
const BPF: u64 = cap(39);

/// No such system call on this ABI.
const NO: u32 = u32::MAX;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET` (docker's mask, 2114060288). `CLONE_NEWTIME` (0x80) cannot be asked of
/// `clone`: its low byte is the exit signal.
const CLONE_NEW_MASK: u32 = 0x7E02_0000;

/// The `personality(2)` values docker allows: `PER_LINUX`, `PER_LINUX | UNAME26`,
/// `PER_LINUX32`, `PER_LINUX32 | UNAME26`, and `0xffffffff` (a query).
const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// `AF_ALG` (38) and `AF_VSOCK` (40): the socket families docker's profile refuses.
const REFUSED_FAMILIES: [u32; 2] = [38, 40];

/// When a restricted system call is refused. Arguments are compared by their low 32 bits,
/// which is all the kernel reads of each one compared here (`clone` uses
/// `lower_32_bits(flags)`; `personality`, `socket`'s family, `ioctl`'s request and a mode are
/// 32-bit in the kernel's signatures).
#[derive(Debug, Clone, Copy)]
enum When {
    /// Whatever the arguments.
    Always,
    /// When argument `.0` is one of `.1`.
    ArgIn(u32, &'static [u32]),
    /// When argument `.0` is none of `.1`.
    ArgNotIn(u32, &'static [u32]),
    /// When argument `.0` has any bit of `.1` set.
    ArgAnyBit(u32, u32),
    /// When argument `.0` masked with `.1` equals `.2`.
    ArgMaskedEq(u32, u32, u32),
}

/// One rule of the default profile: system call `name`, numbered `nr` on x86_64, i386 and
/// aarch64 ([`NO`] where the ABI lacks it), refused with `errno` `when` its arguments say so,
/// unless the container keeps one of the capabilities in `unless`.
#[derive(Debug, Clone, Copy)]
struct Rule {
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests and Debug
    name: &'static str,
    nr: [u32; 3],
    when: When,
    unless: u64,
    errno: i32,
}

const fn rule(name: &'static str, nr: [u32; 3], unless: u64) -> Rule {
    Rule {
        name,
        nr,
        when: When::Always,
        unless,
        errno: libc::EPERM,
    }
}

const fn rule_when(name: &'static str, nr: [u32; 3], when: When, unless: u64) -> Rule {
    Rule {
        name,
        nr,
        when,
        unless,
        errno: libc::EPERM,
    }
}

/// The default profile as a deny list, following docker's `default.json` as of
/// `github.com/moby/profiles/seccomp` v0.2.3 (docker ≥ 25: io_uring refused). Docker allows a
/// list and refuses the rest; this lists what docker refuses, by ABI: system calls the kernel
/// does not implement any more (`nfsservctl`, `_sysctl`, `create_module`, ...) are left to the
/// kernel's `ENOSYS`, and so are the i386 duplicates of allowed calls (`signal`, `oldstat`,
/// `nice`, ...), which reach nothing the allowed calls do not. `ioctl(TIOCSTI)` and block
/// device nodes are refused on top of docker's list. The kernel caches the decision of every
/// system call whose rule reads no argument, so only `ioctl`, `clone`, `socket`,
/// `personality`, `mknod` and `mknodat` run the filter at each call.
#[allow(clippy::unnecessary_cast)] // TIOCSTI is c_int on some libcs
const PROFILE: &[Rule] = &[
    // Argument checks.
    rule_when(
        "ioctl",
        [16, 54, 29],
        When::ArgIn(1, &[libc::TIOCSTI as u32]),
        0,
    ),
    rule_when(
        "clone",
        [56, 120, 220], // flags are argument 0 on all three (CLONE_BACKWARDS on i386/arm64)
        When::ArgAnyBit(0, CLONE_NEW_MASK),
        SYS_ADMIN,
    ),
    rule_when(
        "socket",
        [41, 359, 198],
        When::ArgIn(0, &REFUSED_FAMILIES),
        0,
    ),
    rule_when(
        "personality",
        [135, 136, 92],
        When::ArgNotIn(0, &PERSONALITIES),
        0,
    ),
    rule_when(
        "mknod",
        [133, 14, NO],
        When::ArgMaskedEq(1, libc::S_IFMT, libc::S_IFBLK),
        0,
    ),
    rule_when(
        "mknodat",
        [259, 297, 33],
        When::ArgMaskedEq(2, libc::S_IFMT, libc::S_IFBLK),
        0,
    ),
    // clone3's flags sit in memory a filter cannot read: ENOSYS makes glibc fall back to
    // clone, whose flags it can.
    Rule {
        name: "clone3",
        nr: [435, 435, 435],
        when: When::Always,
        unless: SYS_ADMIN,
        errno: libc::ENOSYS,
    },
    // Namespaces and mounts: CAP_SYS_ADMIN.
    rule("unshare", [272, 310, 97], SYS_ADMIN),
    rule("setns", [308, 346, 268], SYS_ADMIN),
    rule("mount", [165, 21, 40], SYS_ADMIN),
    rule("umount2", [166, 52, 39], SYS_ADMIN),
    rule("umount", [NO, 22, NO], SYS_ADMIN),
    // Not in docker's list at all; gated like mount, which it equals in power.
    rule("pivot_root", [155, 217, 41], SYS_ADMIN),
    rule("open_tree", [428, 428, 428], SYS_ADMIN),
    rule("move_mount", [429, 429, 429], SYS_ADMIN),
    rule("fsopen", [430, 430, 430], SYS_ADMIN),
    rule("fsconfig", [431, 431, 431], SYS_ADMIN),
    rule("fsmount", [432, 432, 432], SYS_ADMIN),
    rule("fspick", [433, 433, 433], SYS_ADMIN),
    rule("mount_setattr", [442, 442, 442], SYS_ADMIN),
    // Newer than docker's list (Linux 6.15): open_tree with mount attributes.
    rule("open_tree_attr", [467, 467, 467], SYS_ADMIN),
    rule("fanotify_init", [300, 338, 262], SYS_ADMIN),
    rule("lookup_dcookie", [212, 253, 18], SYS_ADMIN),
    rule("quotactl", [179, 131, 60], SYS_ADMIN),
    rule("quotactl_fd", [443, 443, 443], SYS_ADMIN),
    rule("sethostname", [170, 74, 161], SYS_ADMIN),
    rule("setdomainname", [171, 121, 162], SYS_ADMIN),
    rule("lsm_get_self_attr", [459, 459, 459], SYS_ADMIN),
    rule("lsm_set_self_attr", [460, 460, 460], SYS_ADMIN),
    rule("lsm_list_modules", [461, 461, 461], SYS_ADMIN),
    rule("syslog", [103, 103, 116], SYS_ADMIN | SYSLOG),
    rule("bpf", [321, 357, 280], SYS_ADMIN | BPF),
    rule("perf_event_open", [298, 336, 241], SYS_ADMIN | PERFMON),
    // Other capabilities.
    rule("open_by_handle_at", [304, 342, 265], DAC_READ_SEARCH),
    rule("chroot", [161, 61, 51], SYS_CHROOT),
    rule("reboot", [169, 88, 142], SYS_BOOT),
    rule("init_module", [175, 128, 105], SYS_MODULE),
    rule("finit_module", [313, 350, 273], SYS_MODULE),
    rule("delete_module", [176, 129, 106], SYS_MODULE),
    rule("acct", [163, 51, 89], SYS_PACCT),
    // ptrace and process_vm_{readv,writev} stay allowed (docker: on kernels ≥ 4.8, which
    // check them against the tracee's user namespace).
    rule("kcmp", [312, 349, 272], SYS_PTRACE),
    rule("pidfd_getfd", [438, 438, 438], SYS_PTRACE),
    rule("process_madvise", [440, 440, 440], SYS_PTRACE),
    rule("iopl", [172, 110, NO], SYS_RAWIO),
    rule("ioperm", [173, 101, NO], SYS_RAWIO),
    rule("settimeofday", [164, 79, 170], SYS_TIME),
    rule("stime", [NO, 25, NO], SYS_TIME),
    rule("clock_settime", [227, 264, 112], SYS_TIME),
    rule("clock_settime64", [NO, 404, NO], SYS_TIME),
    rule("vhangup", [153, 111, 58], SYS_TTY_CONFIG),
    rule("get_mempolicy", [239, 275, 236], SYS_NICE),
    rule("mbind", [237, 274, 235], SYS_NICE),
    rule("set_mempolicy", [238, 276, 237], SYS_NICE),
    rule("set_mempolicy_home_node", [450, 450, 450], SYS_NICE),
    // Refused whatever the capabilities.
    rule("kexec_load", [246, 283, 104], 0),
    rule("kexec_file_load", [320, NO, 294], 0),
    rule("swapon", [167, 87, 224], 0),
    rule("swapoff", [168, 115, 225], 0),
    rule("keyctl", [250, 288, 219], 0),
    rule("add_key", [248, 286, 217], 0),
    rule("request_key", [249, 287, 218], 0),
    rule("userfaultfd", [323, 374, 282], 0),
    rule("io_uring_setup", [425, 425, 425], 0),
    rule("io_uring_enter", [426, 426, 426], 0),
    rule("io_uring_register", [427, 427, 427], 0),
    rule("migrate_pages", [256, 294, 238], 0),
    rule("move_pages", [279, 317, 239], 0),
    rule("uselib", [134, 86, NO], 0),
    rule("ustat", [136, 62, NO], 0),
    rule("sysfs", [139, 135, NO], 0),
    rule("vm86", [NO, 166, NO], 0),
    rule("vm86old", [NO, 113, NO], 0),
];

/// The capabilities any rule of [`PROFILE`] depends on: the default filter for two sets that
/// agree on these is the same program.
const GATING_CAPS: u64 = {
    let mut mask = 0;
    let mut i = 0;
    while i < PROFILE.len() {
        mask |= PROFILE[i].unless;
        i += 1;
    }
    mask
};

/// The ABIs a block of the default filter decides for (an index into [`Rule::nr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64 = 0,
    I386 = 1,
    Aarch64 = 2,
}

/// `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `EM_386 | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// `EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// x32 system calls are x86_64 ones with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_AND_K: u16 = 0x04 | 0x50;
const BPF_RET_K: u16 = 0x06;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
/// `seccomp_data`: nr at 0, arch at 4, args at 16 + 8 * i (the low word first: x86_64 and
/// aarch64 are little-endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// A jump offset, which classic BPF holds in 8 bits.
fn offset(n: usize) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::config("seccomp filter", "a jump beyond 255 instructions"))
}

/// Where a jump of the default program goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// The next instruction.
    Next,
    /// `n` instructions further.
    Skip(usize),
    /// The block's shared `ret ALLOW`.
    Allow,
    /// The block's shared `ret ERRNO(errno)`.
    Deny(i32),
}

/// An instruction of a block before its jumps are resolved.
#[derive(Debug, Clone)]
enum Op {
    Plain(SockFilter),
    Jump(u16, u32, To, To),
}

/// The decisions for one ABI, entered with any `seccomp_data`; every path ends at one of the
/// block's shared returns. The rules that apply are sorted by number and found by a binary
/// search on it (`jge`) down to leaves of a few `jeq`s; a rule that reads an argument follows
/// its `jeq`. Both the steps and the length count at every spawn: when a filter is installed
/// the kernel converts and JIT-compiles it (a cost that grows with its length, returns
/// costing most), then runs it once for every system call number of the native and the compat
/// ABI to cache the decisions that read no argument (a cost that grows with the steps an
/// allowed call takes: a linear chain of 70 rules costs several times a search).
fn abi_block(abi: Abi, keep: u64) -> Result<Vec<SockFilter>> {
    let mut ops = vec![Op::Plain(insn(BPF_LD_W_ABS, 0, 0, NR))];
    if abi == Abi::X86_64 {
        // x32 reaches the same system calls with X32_SYSCALL_BIT set: refuse that ABI.
        ops.push(Op::Jump(
            BPF_JGE_K,
            X32_SYSCALL_BIT,
            To::Deny(libc::EPERM),
            To::Next,
        ));
    }
    let mut rules: Vec<(u32, &Rule)> = PROFILE
        .iter()
        .filter(|r| r.nr[abi as usize] != NO && r.unless & keep == 0)
        .map(|r| (r.nr[abi as usize], r))
        .collect();
    rules.sort_by_key(|(nr, _)| *nr);
    search(&rules, &mut ops);
    resolve(&ops)
}

/// Rules per leaf of the search.
const LEAF_RULES: usize = 4;

/// The binary search over `rules` (sorted by number), with the number in the accumulator.
/// Nothing falls through the end of what it appends.
fn search(rules: &[(u32, &Rule)], ops: &mut Vec<Op>) {
    if rules.len() <= LEAF_RULES {
        for (i, (nr, r)) in rules.iter().enumerate() {
            // Not this number: the next rule, or allow after the leaf's last one.
            let other = if i + 1 == rules.len() {
                To::Allow
            } else {
                To::Next
            };
            let body = rule_body(r);
            if body.is_empty() {
                ops.push(Op::Jump(BPF_JEQ_K, *nr, To::Deny(r.errno), other));
            } else {
                let skip = if other == To::Allow {
                    To::Allow
                } else {
                    To::Skip(body.len())
                };
                ops.push(Op::Jump(BPF_JEQ_K, *nr, To::Next, skip));
                ops.extend(body);
            }
        }
        if rules.is_empty() {
            ops.push(Op::Jump(BPF_JA, 0, To::Allow, To::Allow));
        }
        return;
    }
    let (low, high) = rules.split_at(rules.len() / 2);
    let mut below = Vec::new();
    search(low, &mut below);
    ops.push(Op::Jump(
        BPF_JGE_K,
        high[0].0,
        To::Skip(below.len()),
        To::Next,
    ));
    ops.extend(below);
    search(high, ops);
}

/// What a rule checks once its number matched (nothing when its decision reads no argument);
/// every path ends at a shared return.
fn rule_body(r: &Rule) -> Vec<Op> {
    let deny = To::Deny(r.errno);
    let load = |a: u32| Op::Plain(insn(BPF_LD_W_ABS, 0, 0, arg(a)));
    match r.when {
        When::Always => Vec::new(),
        When::ArgIn(a, values) | When::ArgNotIn(a, values) => {
            let (hit, miss) = match r.when {
                When::ArgIn(..) => (deny, To::Allow),
                _ => (To::Allow, deny),
            };
            let mut body = vec![load(a)];
            for (i, v) in values.iter().enumerate() {
                let other = if i + 1 == values.len() {
                    miss
                } else {
                    To::Next
                };
                body.push(Op::Jump(BPF_JEQ_K, *v, hit, other));
            }
            body
        }
        When::ArgAnyBit(a, mask) => vec![load(a), Op::Jump(BPF_JSET_K, mask, deny, To::Allow)],
        When::ArgMaskedEq(a, mask, value) => vec![
            load(a),
            Op::Plain(insn(BPF_AND_K, 0, 0, mask)),
            Op::Jump(BPF_JEQ_K, value, deny, To::Allow),
        ],
    }
}

/// The block's instructions with every jump resolved, followed by its shared returns.
fn resolve(ops: &[Op]) -> Result<Vec<SockFilter>> {
    let mut errnos: Vec<i32> = Vec::new();
    for op in ops {
        if let Op::Jump(_, _, jt, jf) = op {
            for to in [jt, jf] {
                if let To::Deny(e) = to {
                    if !errnos.contains(e) {
                        errnos.push(*e);
                    }
                }
            }
        }
    }
    let allow_at = ops.len();
    let target = |to: To, at: usize| -> Result<usize> {
        let abs = match to {
            To::Next => at + 1,
            To::Skip(n) => at + 1 + n,
            To::Allow => allow_at,
            To::Deny(e) => allow_at + 1 + errnos.iter().position(|x| *x == e).unwrap_or(0),
        };
        Ok(abs - (at + 1))
    };
    let mut out = Vec::with_capacity(ops.len() + 1 + errnos.len());
    for (at, op) in ops.iter().enumerate() {
        out.push(match *op {
            Op::Plain(ref i) => *i,
            // An unconditional jump holds its offset in k (32 bits).
            Op::Jump(BPF_JA, _, to, _) => insn(BPF_JA, 0, 0, target(to, at)? as u32),
            Op::Jump(code, k, jt, jf) => {
                insn(code, offset(target(jt, at)?)?, offset(target(jf, at)?)?, k)
            }
        });
    }
    out.push(insn(BPF_RET_K, 0, 0, RET_ALLOW));
    for e in errnos {
        out.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | e as u32));
    }
    Ok(out)
}

/// The whole default program for a container keeping `keep`: the architecture check first
/// (any architecture but the native one and, on x86_64, i386 is killed: its numbers mean other
/// calls), then one block per ABI. On x86_64, i386 programs get the same decisions by their
/// own numbers and x32 numbers are refused.
fn compile_default(keep: u64) -> Result<Vec<SockFilter>> {
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let mut out = vec![insn(BPF_LD_W_ABS, 0, 0, ARCH)];
    if cfg!(target_arch = "x86_64") {
        let native = abi_block(Abi::X86_64, keep)?;
        let i386 = abi_block(Abi::I386, keep)?;
        out.push(insn(BPF_JEQ_K, 0, 1, AUDIT_ARCH_X86_64));
        out.push(insn(BPF_JA, 0, 0, 3)); // to the native block
        out.push(insn(BPF_JEQ_K, 0, 1, AUDIT_ARCH_I386));
        out.push(insn(BPF_JA, 0, 0, 1 + native.len() as u32)); // to the i386 block
        out.push(insn(BPF_RET_K, 0, 0, kill));
        out.extend(native);
        out.extend(i386);
    } else if cfg!(target_arch = "aarch64") {
        out.push(insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH_AARCH64));
        out.push(insn(BPF_RET_K, 0, 0, kill));
        out.extend(abi_block(Abi::Aarch64, keep)?);
    } else {
        return Err(Error::unsupported(
            "the default seccomp filter",
            format!("no syscall table for {}", std::env::consts::ARCH),
        ));
    }
    if out.len() > BPF_MAXINSNS {
        return Err(Error::config(
            "seccomp filter",
            format!(
                "the default program has {} instructions: more than the kernel's {BPF_MAXINSNS}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// How many distinct default programs are kept for the life of the process; further
/// capability sets get a program of their own per spawn.
const CACHED_FILTERS: usize = 16;

/// The default filter for a container keeping `caps`, compiled once per process for each
/// distinct set of the capabilities that matter to it ([`GATING_CAPS`]).
fn default_filter(caps: CapSet) -> Result<Cow<'static, [SockFilter]>> {
    type Cache = Vec<(u64, &'static [SockFilter])>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let key = caps.bits() & GATING_CAPS;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(Cow::Borrowed(*p));
    }
    let program = compile_default(key)?;
    if cache.len() >= CACHED_FILTERS {
        return Ok(Cow::Owned(program));
    }
    let leaked: &'static [SockFilter] = Box::leak(program.into_boxed_slice());
    cache.push((key, leaked));
    Ok(Cow::Borrowed(leaked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_longer_than_the_kernel_takes_is_refused_before_spawn() {
        let with = |n: usize| Security {
            seccomp: Seccomp::Program(vec![insn(BPF_RET_K, 0, 0, RET_ALLOW); n]),
            ..Security::default()
        };
        assert!(PreparedSecurity::prepare(&with(BPF_MAXINSNS), true, false).is_ok());
        let e = PreparedSecurity::prepare(&with(0), true, false)
            .map(drop)
            .unwrap_err();
        assert!(e.to_string().contains("Seccomp::Disabled"), "{e}");
        let e = PreparedSecurity::prepare(&with(BPF_MAXINSNS + 1), true, false)
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(e, Error::Config { .. }) && e.to_string().contains("4097 instructions"),
            "{e}"
        );
    }

    #[test]
    fn capability_names_round_trip() {
        for (i, name) in CAP_NAMES.iter().enumerate() {
            let c: Capability = name.parse().unwrap();
            assert_eq!(c.number() as usize, i);
            assert_eq!(c.to_string(), format!("CAP_{name}"));
            assert_eq!(
                format!("cap_{}", name.to_lowercase())
                    .parse::<Capability>()
                    .unwrap(),
                c
            );
        }
        assert!("CAP_NOPE".parse::<Capability>().is_err());
        // Those beyond the table print as numbers, which parse back (found by fuzz/specs:
        // `ALL` printed `CAP_41`, which did not parse).
        for c in CapSet::ALL.iter() {
            assert_eq!(c.to_string().parse::<Capability>().unwrap(), c);
        }
        assert_eq!(Capability(41).to_string(), "CAP_41");
        for bad in ["CAP_64", "CAP_", "CAP_-1", "CAP_+1", "41", "CAP_4 1"] {
            assert!(bad.parse::<Capability>().is_err(), "{bad}");
        }
        assert_eq!(CapSet::DOCKER_DEFAULT.len(), 14);
        assert_eq!("all".parse::<CapSet>().unwrap(), CapSet::ALL);
    }

    #[test]
    fn rlimits_parse() {
        assert_eq!(Rlimit::parse("nproc=10").unwrap().hard, 10);
        assert_eq!(
            Rlimit::parse("core=unlimited").unwrap().soft,
            libc::RLIM_INFINITY
        );
        for bad in ["nofile", "bogus=1", "nofile=2:1", "nofile=x"] {
            assert!(Rlimit::parse(bad).is_err(), "{bad}");
        }
    }

    /// Runs a classic BPF program on one `seccomp_data` (nr, arch, args), as the kernel would.
    fn run(p: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        run_counting(p, nr, arch, args).0
    }

    /// [`run`], and how many instructions it took.
    fn run_counting(p: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc, mut steps) = (0u32, 0usize, 0usize);
        loop {
            let i = &p[pc];
            pc += 1;
            steps += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => {
                    acc =
                        u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap())
                }
                0x54 => acc &= i.k,
                0x05 => pc += i.k as usize,
                0x15 => pc += jump(acc == i.k),
                0x25 => pc += jump(acc > i.k),
                0x35 => pc += jump(acc >= i.k),
                0x45 => pc += jump(acc & i.k != 0),
                0x06 => return (i.k, steps),
                c => panic!("instruction {c:#x} not modelled"),
            }
        }
    }

    const REFUSE: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const NOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const ALLOW: u32 = RET_ALLOW;

    /// Docker's default set plus `names` (a comma list), or every capability for "ALL".
    fn caps(names: &str) -> CapSet {
        match names {
            "ALL" => CapSet::ALL,
            _ => CapSet::DOCKER_DEFAULT.with_all(names),
        }
    }

    impl CapSet {
        fn with_all(self, names: &str) -> CapSet {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .fold(self, |s, n| s.with(n.parse().unwrap()))
        }
    }

    /// One decision of the model test: a call by its number on x86_64 and on i386 (`NO` where
    /// the ABI has none), its arguments, the capabilities kept and the expected return.
    struct Case {
        what: &'static str,
        x86_64: u32,
        i386: u32,
        args: [u64; 6],
        keep: CapSet,
        want: u32,
    }

    fn case(what: &'static str, nrs: (i64, u32), args: [u64; 6], keep: &str, want: u32) -> Case {
        Case {
            what,
            x86_64: if nrs.0 < 0 { NO } else { nrs.0 as u32 },
            i386: nrs.1,
            args,
            keep: caps(keep),
            want,
        }
    }

    fn a0(v: u64) -> [u64; 6] {
        [v, 0, 0, 0, 0, 0]
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::unnecessary_cast)] // ioctl numbers are c_int on some libcs
    fn default_filter_decides_for_x86_64_i386_and_x32() {
        use libc::*;
        let blk = (S_IFBLK | 0o600) as u64;
        let chr = (S_IFCHR | 0o600) as u64;
        // glibc's fork(): CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD.
        let fork = (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD) as u64;
        // glibc's pthread_create when clone3 says ENOSYS.
        let thread = (CLONE_VM
            | CLONE_FS
            | CLONE_FILES
            | CLONE_SIGHAND
            | CLONE_THREAD
            | CLONE_SYSVSEM
            | CLONE_SETTLS
            | CLONE_PARENT_SETTID
            | CLONE_CHILD_CLEARTID) as u64;
        let newuser = (CLONE_NEWUSER | SIGCHLD) as u64;
        let all = "ALL";
        let x = |n: i64| n;
        #[rustfmt::skip]
        let cases = [
            case("getpid", (SYS_getpid, 20), [0; 6], "", ALLOW),
            case("keyctl", (SYS_keyctl, 288), [0; 6], "", REFUSE),
            case("keyctl, all caps", (SYS_keyctl, 288), [0; 6], all, REFUSE),
            case("ioctl TIOCSTI", (SYS_ioctl, 54), [0, TIOCSTI as u64, 0, 0, 0, 0], "", REFUSE),
            case("ioctl TCGETS", (SYS_ioctl, 54), [0, TCGETS as u64, 0, 0, 0, 0], "", ALLOW),
            case("mknod block", (SYS_mknod, 14), [0, blk, 0, 0, 0, 0], "", REFUSE),
            case("mknod char", (SYS_mknod, 14), [0, chr, 0, 0, 0, 0], "", ALLOW),
            case("mknodat block", (SYS_mknodat, 297), [0, 0, blk, 0, 0, 0], "", REFUSE),
            case("mknodat char", (SYS_mknodat, 297), [0, 0, chr, 0, 0, 0], "", ALLOW),
            // clone: plain fork, glibc's fork and threads stay; namespace flags need SYS_ADMIN.
            case("clone SIGCHLD", (SYS_clone, 120), a0(SIGCHLD as u64), "", ALLOW),
            case("clone fork", (SYS_clone, 120), a0(fork), "", ALLOW),
            case("clone thread", (SYS_clone, 120), a0(thread), "", ALLOW),
            case("clone NEWUSER", (SYS_clone, 120), a0(newuser), "", REFUSE),
            case("clone NEWNS", (SYS_clone, 120), a0(CLONE_NEWNS as u64), "", REFUSE),
            case("clone NEWNET", (SYS_clone, 120), a0(CLONE_NEWNET as u64), "", REFUSE),
            case("clone NEWPID", (SYS_clone, 120), a0(CLONE_NEWPID as u64), "", REFUSE),
            case("clone NEWUTS", (SYS_clone, 120), a0(CLONE_NEWUTS as u64), "", REFUSE),
            case("clone NEWIPC", (SYS_clone, 120), a0(CLONE_NEWIPC as u64), "", REFUSE),
            case("clone NEWCGROUP", (SYS_clone, 120), a0(CLONE_NEWCGROUP as u64), "", REFUSE),
            case("clone NEWUSER, all caps but SYS_ADMIN", (SYS_clone, 120), a0(newuser), "", REFUSE),
            case("clone NEWUSER, SYS_ADMIN", (SYS_clone, 120), a0(newuser), "SYS_ADMIN", ALLOW),
            // clone3: ENOSYS, never EPERM, so that glibc falls back to clone.
            case("clone3", (x(435), 435), [0; 6], "", NOSYS),
            case("clone3, SYS_ADMIN", (x(435), 435), [0; 6], "SYS_ADMIN", ALLOW),
            case("unshare", (SYS_unshare, 310), a0(CLONE_NEWUSER as u64), "", REFUSE),
            case("unshare, SYS_ADMIN", (SYS_unshare, 310), a0(CLONE_NEWUSER as u64), "SYS_ADMIN", ALLOW),
            case("setns", (SYS_setns, 346), [0; 6], "", REFUSE),
            case("setns, SYS_ADMIN", (SYS_setns, 346), [0; 6], "SYS_ADMIN", ALLOW),
            case("mount", (SYS_mount, 21), [0; 6], "", REFUSE),
            case("mount, SYS_ADMIN", (SYS_mount, 21), [0; 6], "SYS_ADMIN", ALLOW),
            case("umount2", (SYS_umount2, 52), [0; 6], "", REFUSE),
            case("umount (i386)", (-1, 22), [0; 6], "", REFUSE),
            case("pivot_root", (SYS_pivot_root, 217), [0; 6], "", REFUSE),
            case("pivot_root, SYS_ADMIN", (SYS_pivot_root, 217), [0; 6], "SYS_ADMIN", ALLOW),
            case("open_tree", (x(428), 428), [0; 6], "", REFUSE),
            case("move_mount", (x(429), 429), [0; 6], "", REFUSE),
            case("fsopen", (x(430), 430), [0; 6], "", REFUSE),
            case("fsconfig", (x(431), 431), [0; 6], "", REFUSE),
            case("fsmount", (x(432), 432), [0; 6], "", REFUSE),
            case("fspick", (x(433), 433), [0; 6], "", REFUSE),
            case("mount_setattr", (x(442), 442), [0; 6], "", REFUSE),
            case("open_tree_attr", (x(467), 467), [0; 6], "", REFUSE),
            case("fsopen, SYS_ADMIN", (x(430), 430), [0; 6], "SYS_ADMIN", ALLOW),
            case("sethostname", (SYS_sethostname, 74), [0; 6], "", REFUSE),
            // io_uring: refused whatever the capabilities (docker ≥ 25).
            case("io_uring_setup", (x(425), 425), [0; 6], all, REFUSE),
            case("io_uring_enter", (x(426), 426), [0; 6], all, REFUSE),
            case("io_uring_register", (x(427), 427), [0; 6], all, REFUSE),
            // personality: docker's five values.
            case("personality 0", (SYS_personality, 136), a0(0), "", ALLOW),
            case("personality UNAME26", (SYS_personality, 136), a0(8), "", ALLOW),
            case("personality LINUX32", (SYS_personality, 136), a0(0x20000), "", ALLOW),
            case("personality LINUX32|UNAME26", (SYS_personality, 136), a0(0x20008), "", ALLOW),
            case("personality query", (SYS_personality, 136), a0(0xffff_ffff), "", ALLOW),
            case("personality ADDR_NO_RANDOMIZE", (SYS_personality, 136), a0(0x40000), "", REFUSE),
            case("personality READ_IMPLIES_EXEC", (SYS_personality, 136), a0(0x400000), all, REFUSE),
            // socket: AF_ALG and AF_VSOCK refused.
            case("socket AF_INET", (SYS_socket, 359), a0(AF_INET as u64), "", ALLOW),
            case("socket AF_UNIX", (SYS_socket, 359), a0(AF_UNIX as u64), "", ALLOW),
            case("socket AF_VSOCK", (SYS_socket, 359), a0(AF_VSOCK as u64), "", REFUSE),
            case("socket AF_ALG", (SYS_socket, 359), a0(AF_ALG as u64), "", REFUSE),
            case("socket AF_XDP", (SYS_socket, 359), a0(AF_XDP as u64), "", ALLOW),
            // One capability each.
            case("reboot", (SYS_reboot, 88), [0; 6], "", REFUSE),
            case("reboot, SYS_BOOT", (SYS_reboot, 88), [0; 6], "SYS_BOOT", ALLOW),
            case("init_module", (SYS_init_module, 128), [0; 6], "", REFUSE),
            case("finit_module, SYS_MODULE", (SYS_finit_module, 350), [0; 6], "SYS_MODULE", ALLOW),
            case("syslog", (SYS_syslog, 103), [0; 6], "", REFUSE),
            case("syslog, SYSLOG", (SYS_syslog, 103), [0; 6], "SYSLOG", ALLOW),
            case("syslog, SYS_ADMIN", (SYS_syslog, 103), [0; 6], "SYS_ADMIN", ALLOW),
            case("settimeofday", (SYS_settimeofday, 79), [0; 6], "", REFUSE),
            case("clock_settime", (SYS_clock_settime, 264), [0; 6], "", REFUSE),
            case("clock_settime64 (i386)", (-1, 404), [0; 6], "", REFUSE),
            case("stime (i386)", (-1, 25), [0; 6], "", REFUSE),
            case("clock_settime, SYS_TIME", (SYS_clock_settime, 264), [0; 6], "SYS_TIME", ALLOW),
            case("adjtimex (the kernel checks)", (SYS_adjtimex, 124), [0; 6], "", ALLOW),
            case("kcmp", (SYS_kcmp, 349), [0; 6], "", REFUSE),
            case("kcmp, SYS_PTRACE", (SYS_kcmp, 349), [0; 6], "SYS_PTRACE", ALLOW),
            case("pidfd_getfd", (x(438), 438), [0; 6], "", REFUSE),
            case("ptrace", (SYS_ptrace, 26), [0; 6], "", ALLOW),
            case("iopl", (SYS_iopl, 110), [0; 6], "", REFUSE),
            case("ioperm, SYS_RAWIO", (SYS_ioperm, 101), [0; 6], "SYS_RAWIO", ALLOW),
            case("acct", (SYS_acct, 51), [0; 6], "", REFUSE),
            case("acct, SYS_PACCT", (SYS_acct, 51), [0; 6], "SYS_PACCT", ALLOW),
            case("bpf", (SYS_bpf, 357), [0; 6], "", REFUSE),
            case("bpf, BPF", (SYS_bpf, 357), [0; 6], "BPF", ALLOW),
            case("perf_event_open", (SYS_perf_event_open, 336), [0; 6], "", REFUSE),
            case("perf_event_open, PERFMON", (SYS_perf_event_open, 336), [0; 6], "PERFMON", ALLOW),
            case("mbind", (SYS_mbind, 274), [0; 6], "", REFUSE),
            case("set_mempolicy, SYS_NICE", (SYS_set_mempolicy, 276), [0; 6], "SYS_NICE", ALLOW),
            case("vhangup", (SYS_vhangup, 111), [0; 6], "", REFUSE),
            case("open_by_handle_at", (SYS_open_by_handle_at, 342), [0; 6], "", REFUSE),
            case("open_by_handle_at, DAC_READ_SEARCH", (SYS_open_by_handle_at, 342), [0; 6], "DAC_READ_SEARCH", ALLOW),
            case("chroot (SYS_CHROOT is a docker default)", (SYS_chroot, 61), [0; 6], "", ALLOW),
            case("vm86 (i386)", (-1, 166), [0; 6], all, REFUSE),
            // What a static init needs.
            case("wait4", (SYS_wait4, 114), [0; 6], "", ALLOW),
            case("kill", (SYS_kill, 37), [0; 6], "", ALLOW),
            case("rt_sigtimedwait", (SYS_rt_sigtimedwait, 177), [0; 6], "", ALLOW),
            case("rt_sigprocmask", (SYS_rt_sigprocmask, 175), [0; 6], "", ALLOW),
            case("execve", (SYS_execve, 11), [0; 6], "", ALLOW),
            case("write", (SYS_write, 4), [0; 6], "", ALLOW),
            case("close", (SYS_close, 6), [0; 6], "", ALLOW),
            case("exit_group", (SYS_exit_group, 252), [0; 6], "", ALLOW),
            case("fcntl", (SYS_fcntl, 55), [0; 6], "", ALLOW),
            case("fcntl64 (i386)", (-1, 221), [0; 6], "", ALLOW),
            case("prctl", (SYS_prctl, 172), [0; 6], "", ALLOW),
            // A number the kernel does not know: the kernel's ENOSYS.
            case("unknown", (x(1000), 1000), [0; 6], "", ALLOW),
        ];
        for c in &cases {
            let p = default_filter(c.keep).unwrap();
            if c.x86_64 != NO {
                let got = run(&p, c.x86_64, AUDIT_ARCH_X86_64, c.args);
                assert_eq!(got, c.want, "x86_64 {}: {got:#x}", c.what);
            }
            if c.i386 != NO {
                let got = run(&p, c.i386, AUDIT_ARCH_I386, c.args);
                assert_eq!(got, c.want, "i386 {}: {got:#x}", c.what);
            }
        }
        // The upper 32 bits of an argument are not what the kernel reads for these calls.
        let p = default_filter(CapSet::DOCKER_DEFAULT).unwrap();
        let high = 0xffff_ffff_0000_0000;
        assert_eq!(
            run(
                &p,
                SYS_clone as u32,
                AUDIT_ARCH_X86_64,
                a0(high | SIGCHLD as u64)
            ),
            ALLOW
        );
        assert_eq!(
            run(&p, SYS_clone as u32, AUDIT_ARCH_X86_64, a0(high | newuser)),
            REFUSE
        );
        // x32 numbers are refused, whatever the call.
        for nr in [SYS_getpid, SYS_unshare, SYS_read] {
            assert_eq!(
                run(&p, X32_SYSCALL_BIT | nr as u32, AUDIT_ARCH_X86_64, [0; 6]),
                REFUSE
            );
        }
        // Any other architecture is killed.
        assert_eq!(
            run(&p, 0, AUDIT_ARCH_AARCH64, [0; 6]),
            SECCOMP_RET_KILL_PROCESS
        );
    }

    /// The aarch64 block, run here through the model (its numbers are the generic table's).
    #[test]
    fn aarch64_block_decides_by_its_own_numbers() {
        let block = |keep: CapSet| abi_block(Abi::Aarch64, keep.bits() & GATING_CAPS).unwrap();
        let p = block(CapSet::DOCKER_DEFAULT);
        let newuser = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        let cases: [(&str, u32, [u64; 6], u32); 9] = [
            ("getpid", 172, [0; 6], ALLOW),
            ("clone SIGCHLD", 220, a0(libc::SIGCHLD as u64), ALLOW),
            ("clone NEWUSER", 220, a0(newuser), REFUSE),
            ("clone3", 435, [0; 6], NOSYS),
            ("unshare", 97, [0; 6], REFUSE),
            ("mount", 40, [0; 6], REFUSE),
            (
                "mknodat block",
                33,
                [0, 0, libc::S_IFBLK as u64, 0, 0, 0],
                REFUSE,
            ),
            ("personality ADDR_NO_RANDOMIZE", 92, a0(0x40000), REFUSE),
            ("io_uring_setup", 425, [0; 6], REFUSE),
        ];
        for (what, nr, args, want) in cases {
            assert_eq!(
                run(&p, nr, AUDIT_ARCH_AARCH64, args),
                want,
                "aarch64 {what}"
            );
        }
        let admin = block(caps("SYS_ADMIN"));
        assert_eq!(run(&admin, 97, AUDIT_ARCH_AARCH64, [0; 6]), ALLOW);
        assert_eq!(run(&admin, 220, AUDIT_ARCH_AARCH64, a0(newuser)), ALLOW);
    }

    /// Every rule of the profile, on every ABI that has the call: refused without its
    /// capabilities, allowed (for the arguments it refuses) with any one of them.
    #[test]
    fn every_rule_is_refused_and_lifted_by_its_capabilities() {
        let refused_args = |w: When| -> [u64; 6] {
            let mut args = [0u64; 6];
            match w {
                When::Always => {}
                When::ArgIn(a, v) => args[a as usize] = v[0] as u64,
                When::ArgNotIn(a, _) => args[a as usize] = 0x40000,
                When::ArgAnyBit(a, m) => args[a as usize] = m as u64,
                When::ArgMaskedEq(a, _, v) => args[a as usize] = v as u64,
            }
            args
        };
        for abi in [Abi::X86_64, Abi::I386, Abi::Aarch64] {
            let arch = [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64][abi as usize];
            let none = abi_block(abi, 0).unwrap();
            for r in PROFILE.iter().filter(|r| r.nr[abi as usize] != NO) {
                let nr = r.nr[abi as usize];
                let args = refused_args(r.when);
                let deny = libc::SECCOMP_RET_ERRNO | r.errno as u32;
                assert_eq!(run(&none, nr, arch, args), deny, "{abi:?} {}", r.name);
                for c in (0..64).filter(|c| r.unless & (1 << c) != 0) {
                    let with = abi_block(abi, 1 << c).unwrap();
                    assert_eq!(
                        run(&with, nr, arch, args),
                        ALLOW,
                        "{abi:?} {} cap {c}",
                        r.name
                    );
                }
            }
        }
    }

    /// The x86_64 column of the profile against libc's numbers.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x86_64_numbers_match_libc() {
        use libc::*;
        let known: &[(&str, i64)] = &[
            ("ioctl", SYS_ioctl),
            ("clone", SYS_clone),
            ("socket", SYS_socket),
            ("personality", SYS_personality),
            ("mknod", SYS_mknod),
            ("mknodat", SYS_mknodat),
            ("unshare", SYS_unshare),
            ("setns", SYS_setns),
            ("mount", SYS_mount),
            ("umount2", SYS_umount2),
            ("pivot_root", SYS_pivot_root),
            ("fanotify_init", SYS_fanotify_init),
            ("lookup_dcookie", SYS_lookup_dcookie),
            ("quotactl", SYS_quotactl),
            ("sethostname", SYS_sethostname),
            ("setdomainname", SYS_setdomainname),
            ("syslog", SYS_syslog),
            ("bpf", SYS_bpf),
            ("perf_event_open", SYS_perf_event_open),
            ("open_by_handle_at", SYS_open_by_handle_at),
            ("chroot", SYS_chroot),
            ("reboot", SYS_reboot),
            ("init_module", SYS_init_module),
            ("finit_module", SYS_finit_module),
            ("delete_module", SYS_delete_module),
            ("acct", SYS_acct),
            ("kcmp", SYS_kcmp),
            ("iopl", SYS_iopl),
            ("ioperm", SYS_ioperm),
            ("settimeofday", SYS_settimeofday),
            ("clock_settime", SYS_clock_settime),
            ("vhangup", SYS_vhangup),
            ("get_mempolicy", SYS_get_mempolicy),
            ("mbind", SYS_mbind),
            ("set_mempolicy", SYS_set_mempolicy),
            ("kexec_load", SYS_kexec_load),
            ("kexec_file_load", SYS_kexec_file_load),
            ("swapon", SYS_swapon),
            ("swapoff", SYS_swapoff),
            ("keyctl", SYS_keyctl),
            ("add_key", SYS_add_key),
            ("request_key", SYS_request_key),
            ("userfaultfd", SYS_userfaultfd),
            ("migrate_pages", SYS_migrate_pages),
            ("move_pages", SYS_move_pages),
            ("uselib", SYS_uselib),
            ("ustat", SYS_ustat),
            ("sysfs", SYS_sysfs),
        ];
        for (name, nr) in known {
            let r = PROFILE.iter().find(|r| r.name == *name).unwrap();
            assert_eq!(r.nr[Abi::X86_64 as usize], *nr as u32, "{name}");
        }
        // Each rule appears once.
        for (i, r) in PROFILE.iter().enumerate() {
            assert!(
                PROFILE[..i].iter().all(|o| o.name != r.name),
                "{} twice",
                r.name
            );
        }
    }

    /// The install cost: the kernel runs the program for every number of both x86_64 ABIs
    /// when it installs it, and converts and compiles every instruction.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn default_filter_is_short_and_shallow() {
        for keep in [CapSet::EMPTY, CapSet::DOCKER_DEFAULT, CapSet::ALL] {
            let p = default_filter(keep).unwrap();
            assert!(p.len() <= 260, "{} instructions for {keep:?}", p.len());
            for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] {
                let (worst, nr) = (0..480)
                    .map(|nr| (run_counting(&p, nr, arch, [0; 6]).1, nr))
                    .max()
                    .unwrap();
                assert!(worst <= 18, "{worst} steps for {nr} on {arch:#x}");
            }
        }
    }

    #[test]
    fn default_filter_is_cached_per_relevant_capabilities() {
        let a = default_filter(CapSet::DOCKER_DEFAULT).unwrap();
        // NET_ADMIN changes nothing in the profile: the same program, borrowed.
        let b = default_filter(caps("NET_ADMIN")).unwrap();
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));
        let admin = default_filter(caps("SYS_ADMIN")).unwrap();
        assert_ne!(a.len(), admin.len());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(a[1].k, AUDIT_ARCH_X86_64);
            assert!(
                a.iter()
                    .any(|i| i.code == BPF_JGE_K && i.k == X32_SYSCALL_BIT),
                "x32 guard"
            );
        }
        println!("default program: {} instructions", a.len());
    }

    /// Cap sets that name a capability this thread's bounding set lacks are a config error
    /// naming it, before any child exists; in a user namespace of the container's they are
    /// not checked (there the child holds every capability). Runs in a thread of its own,
    /// whose bounding set (per thread) loses CAP_SYS_RESOURCE; needs root (CAP_SETPCAP).
    #[test]
    fn cap_sets_outside_the_bounding_set_are_refused_by_name() {
        std::thread::spawn(|| {
            const RESOURCE: u32 = 24;
            // SAFETY: PR_CAPBSET_DROP takes a capability number and changes this thread's
            // bounding set only; it touches no memory.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, RESOURCE as libc::c_ulong) } != 0 {
                eprintln!("skipped: PR_CAPBSET_DROP refused (needs root with CAP_SETPCAP)");
                return;
            }
            let resource = CapSet::EMPTY.with("SYS_RESOURCE".parse().unwrap());
            let chown = CapSet::EMPTY.with("CHOWN".parse().unwrap());
            let asking = |sets: CapSets| Security {
                cap_sets: Some(sets),
                seccomp: Seccomp::Disabled,
                ..Security::default()
            };
            let both = CapSets {
                effective: chown,
                permitted: chown.with("SYS_RESOURCE".parse().unwrap()),
                inheritable: chown,
                ambient: CapSet::EMPTY,
            };
            let e = PreparedSecurity::prepare(&asking(both), true, false).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, Error::Config { .. }), "{e:?}");
            assert!(text.contains("CAP_SYS_RESOURCE:"), "{text}");
            assert!(!text.contains("CAP_CHOWN"), "{text}");
            let ambient_only = CapSets {
                ambient: resource,
                ..CapSets::default()
            };
            assert!(PreparedSecurity::prepare(&asking(ambient_only), true, false).is_err());
            // Held ones pass, and so does anything in a user namespace.
            let held = CapSets {
                effective: chown,
                permitted: chown,
                ..CapSets::default()
            };
            assert!(PreparedSecurity::prepare(&asking(held), true, false).is_ok());
            assert!(PreparedSecurity::prepare(&asking(both), true, true).is_ok());
        })
        .join()
        .unwrap();
    }
}
