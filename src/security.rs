//! Security defaults for the container's process: capabilities, `no_new_privs`, a seccomp
//! filter, resource limits and a new session.
//!
//! Each is on by default and each can be changed on the [`Container`](crate::process::Container):
//! - capabilities: the bounding, effective and permitted sets are reduced to docker's default
//!   set ([`CapSet::DOCKER_DEFAULT`]); inheritable and ambient are emptied (CVE-2022-29162);
//! - `no_new_privs`: set-uid binaries and file capabilities give nothing;
//! - seccomp: [`Seccomp::Default`] denies, with `EPERM`, the system calls a container has no
//!   business making (kexec, modules, reboot, swap, acct, bpf, perf events,
//!   `open_by_handle_at`, keyrings, userfaultfd), `ioctl(TIOCSTI)`, and `mknod` of block devices;
//! - rlimits: `RLIMIT_NOFILE` 1024 soft, 524288 hard (capped at the caller's hard limit);
//! - `setsid`: the container cannot push input into the caller's terminal or signal its
//!   process group.
//!
//! Everything is prepared in the parent (the BPF program is compiled once per process); the
//! child applies it with raw system calls right before `execve`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use crate::cgroup::DeviceRule;
use crate::{Error, Result};

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

    /// `CAP_NET_ADMIN`, `NET_ADMIN` or `net_admin`.
    fn from_str(s: &str) -> Result<Capability> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        CAP_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Capability(i as u8))
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
    pub fn with(self, cap: Capability) -> CapSet {
        CapSet(self.0 | 1 << cap.0)
    }

    /// The set minus `cap`.
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
    /// The default deny list (see the module docs), `EPERM` on a match.
    #[default]
    Default,
    /// No filter.
    Disabled,
    /// A filter of the caller's, e.g. compiled with `seccompiler`.
    Program(BpfProgram),
}

/// A resource limit (`setrlimit(2)` resource number, soft and hard values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// Soft limit (`RLIM_INFINITY` for none).
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
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
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// Resource limits; `None` for [`Security::default_rlimits`].
    pub rlimits: Option<Vec<Rlimit>>,
    /// `setsid()` before exec.
    pub new_session: bool,
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
    pub filter: std::borrow::Cow<'static, [seccompiler::sock_filter]>,
    pub rlimits: Vec<Rlimit>,
    pub new_session: bool,
}

impl PreparedSecurity {
    pub(crate) fn prepare(s: &Security) -> Result<PreparedSecurity> {
        // The kernel's last capability does not change while we run: read it once.
        static LAST_CAP: OnceLock<u32> = OnceLock::new();
        let last_cap = *LAST_CAP.get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .filter(|n| *n < 64)
                .unwrap_or(40)
        });
        let filter = match &s.seccomp {
            Seccomp::Default => std::borrow::Cow::Borrowed(default_filter()?.as_slice()),
            Seccomp::Disabled => std::borrow::Cow::Borrowed(&[][..]),
            Seccomp::Program(p) if p.len() > u16::MAX as usize => {
                return Err(Error::config(
                    "seccomp filter",
                    "more than 65535 instructions",
                ))
            }
            Seccomp::Program(p) => std::borrow::Cow::Owned(p.clone()),
        };
        if !filter.is_empty() && !s.no_new_privs && !nix::unistd::geteuid().is_root() {
            return Err(Error::config(
                "seccomp filter",
                "without no_new_privs only a privileged caller may install a filter",
            ));
        }
        Ok(PreparedSecurity {
            keep: s.capabilities.bits(),
            last_cap,
            no_new_privs: s.no_new_privs,
            filter,
            rlimits: s.rlimits.clone().unwrap_or_else(Security::default_rlimits),
            new_session: s.new_session,
        })
    }
}

/// The system calls the default filter denies.
const DENIED: [i64; 16] = [
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_open_by_handle_at,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
];

/// The default filter, compiled once per process.
fn default_filter() -> Result<&'static BpfProgram> {
    static FILTER: OnceLock<std::result::Result<BpfProgram, String>> = OnceLock::new();
    FILTER
        .get_or_init(|| compile_default().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::config("seccomp filter", e.clone()))
}

#[allow(clippy::unnecessary_cast)] // TIOCSTI is c_int on some libcs
fn compile_default() -> std::result::Result<BpfProgram, seccompiler::BackendError> {
    use SeccompCmpArgLen::Dword;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    // ioctl(fd, TIOCSTI, ...): pushing input into a terminal.
    rules.insert(
        libc::SYS_ioctl,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            1,
            Dword,
            SeccompCmpOp::Eq,
            libc::TIOCSTI as u64,
        )?])?],
    );
    // mknod of block devices: a container's root must not make a node for a host disk.
    let block = |arg: u8| -> std::result::Result<SeccompRule, seccompiler::BackendError> {
        SeccompRule::new(vec![SeccompCondition::new(
            arg,
            Dword,
            SeccompCmpOp::MaskedEq(libc::S_IFMT as u64),
            libc::S_IFBLK as u64,
        )?])
    };
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_mknod, vec![block(1)?]);
    rules.insert(libc::SYS_mknodat, vec![block(2)?]);
    let arch = std::env::consts::ARCH.try_into()?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let program: BpfProgram = filter.try_into()?;
    Ok(with_x32_guard(program))
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_AND_K: u16 = 0x04 | 0x50;
const BPF_RET_K: u16 = 0x06;
const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
/// `seccomp_data`: nr at 0, arch at 4, args at 16 + 8 * i (the low word first).
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}
/// `EM_386 | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

/// The same rules for the i386 ABI, by its own syscall numbers, in a block that the x86_64
/// program follows. seccompiler builds for one architecture and kills every other, which
/// would kill any 32-bit program in the container at its first system call.
#[allow(clippy::unnecessary_cast)] // TIOCSTI is c_int on some libcs
fn i386_block() -> BpfProgram {
    /// kexec_load, init_module, finit_module, delete_module, reboot, swapon, swapoff, acct,
    /// bpf, perf_event_open, open_by_handle_at, keyctl, add_key, request_key, userfaultfd.
    const DENIED_I386: [u32; 15] = [
        283, 128, 350, 129, 88, 87, 115, 51, 357, 336, 342, 288, 286, 287, 374,
    ];
    const IOCTL: u32 = 54;
    const MKNOD: u32 = 14;
    const MKNODAT: u32 = 297;
    // Each element: (instruction, jumps to the final EPERM on true).
    let mut body: Vec<(seccompiler::sock_filter, bool)> =
        vec![(insn(BPF_LD_W_ABS, 0, 0, NR), false)];
    for nr in DENIED_I386 {
        body.push((insn(BPF_JEQ_K, 0, 0, nr), true));
    }
    // ioctl(fd, TIOCSTI): not ioctl -> skip the argument check (3 instructions).
    body.push((insn(BPF_JEQ_K, 0, 3, IOCTL), false));
    body.push((insn(BPF_LD_W_ABS, 0, 0, arg(1)), false));
    body.push((insn(BPF_JEQ_K, 0, 0, libc::TIOCSTI as u32), true));
    body.push((insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW), false));
    // mknod(path, mode) and mknodat(dirfd, path, mode) of block devices.
    for (nr, mode_arg) in [(MKNOD, 1), (MKNODAT, 2)] {
        body.push((insn(BPF_JEQ_K, 0, 4, nr), false));
        body.push((insn(BPF_LD_W_ABS, 0, 0, arg(mode_arg)), false));
        body.push((insn(BPF_AND_K, 0, 0, libc::S_IFMT), false));
        body.push((insn(BPF_JEQ_K, 0, 0, libc::S_IFBLK), true));
        body.push((insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW), false));
    }
    body.push((insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW), false));
    let deny_at = body.len();
    let mut block: BpfProgram = body
        .into_iter()
        .enumerate()
        .map(|(i, (mut ins, to_deny))| {
            if to_deny {
                ins.jt = (deny_at - i - 1) as u8;
            }
            ins
        })
        .collect();
    block.push(insn(BPF_RET_K, 0, 0, RET_EPERM));
    block
}

/// On x86_64: first the i386 ABI (its own block), then a guard for the x32 ABI, which reaches
/// the same system calls with bit 30 set in the number under the x86_64 audit arch, then the
/// x86_64 program. Elsewhere the program as it is.
fn with_x32_guard(program: BpfProgram) -> BpfProgram {
    if !cfg!(target_arch = "x86_64") {
        return program;
    }
    let i386 = i386_block();
    let mut out = vec![
        insn(BPF_LD_W_ABS, 0, 0, ARCH),
        insn(BPF_JEQ_K, 0, i386.len() as u8, AUDIT_ARCH_I386),
    ];
    out.extend(i386);
    out.push(insn(BPF_LD_W_ABS, 0, 0, NR));
    out.push(insn(BPF_JGE_K, 0, 1, 0x4000_0000));
    out.push(insn(BPF_RET_K, 0, 0, RET_EPERM));
    out.extend(program);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn run(p: &[seccompiler::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = &p[pc];
            pc += 1;
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
                0x06 => return i.k,
                c => panic!("instruction {c:#x} not modelled"),
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::unnecessary_cast)] // ioctl numbers are c_int on some libcs
    fn default_filter_decides_for_x86_64_i386_and_x32() {
        let p = default_filter().unwrap();
        const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
        let allow = libc::SECCOMP_RET_ALLOW;
        let blk = (libc::S_IFBLK | 0o600) as u64;
        let chr = (libc::S_IFCHR | 0o600) as u64;
        let cases: [(&str, u32, u32, [u64; 6], u32); 12] = [
            (
                "x86_64 keyctl",
                libc::SYS_keyctl as u32,
                X86_64,
                [0; 6],
                RET_EPERM,
            ),
            (
                "x86_64 getpid",
                libc::SYS_getpid as u32,
                X86_64,
                [0; 6],
                allow,
            ),
            (
                "x86_64 ioctl TIOCSTI",
                libc::SYS_ioctl as u32,
                X86_64,
                [0, libc::TIOCSTI as u64, 0, 0, 0, 0],
                RET_EPERM,
            ),
            (
                "x86_64 mknod block",
                libc::SYS_mknod as u32,
                X86_64,
                [0, blk, 0, 0, 0, 0],
                RET_EPERM,
            ),
            (
                "x86_64 mknodat char",
                libc::SYS_mknodat as u32,
                X86_64,
                [0, 0, chr, 0, 0, 0],
                allow,
            ),
            (
                "x32 getpid",
                0x4000_0000 | libc::SYS_getpid as u32,
                X86_64,
                [0; 6],
                RET_EPERM,
            ),
            ("i386 keyctl", 288, AUDIT_ARCH_I386, [0; 6], RET_EPERM),
            ("i386 getpid", 20, AUDIT_ARCH_I386, [0; 6], allow),
            (
                "i386 ioctl TIOCSTI",
                54,
                AUDIT_ARCH_I386,
                [0, libc::TIOCSTI as u64, 0, 0, 0, 0],
                RET_EPERM,
            ),
            (
                "i386 ioctl TCGETS",
                54,
                AUDIT_ARCH_I386,
                [0, libc::TCGETS as u64, 0, 0, 0, 0],
                allow,
            ),
            (
                "i386 mknodat block",
                297,
                AUDIT_ARCH_I386,
                [0, 0, blk, 0, 0, 0],
                RET_EPERM,
            ),
            (
                "i386 mknod char",
                14,
                AUDIT_ARCH_I386,
                [0, chr, 0, 0, 0, 0],
                allow,
            ),
        ];
        for (name, nr, arch, args, want) in cases {
            assert_eq!(run(p, nr, arch, args), want, "{name}");
        }
        // Any other architecture is killed (seccompiler's arch check).
        assert_eq!(
            run(p, 0, 183 | 0x8000_0000 | 0x4000_0000, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn default_filter_compiles_with_the_guard_first() {
        let p = default_filter().unwrap();
        assert!(p.len() > 20);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(p[1].k, AUDIT_ARCH_I386);
            assert!(
                p.iter().any(|i| i.code == BPF_JGE_K && i.k == 0x4000_0000),
                "x32 guard"
            );
        }
    }
}
