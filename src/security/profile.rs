//! Seccomp filters from a profile: the OCI runtime spec's `linux.seccomp` object
//! (config-linux.md#seccomp, runtime-spec v1.2) as plain data, compiled to classic BPF.
//!
//! [`SeccompProfile`] holds what the spec's object holds — `defaultAction`, `defaultErrnoRet`,
//! `architectures`, `flags`, `listenerPath` and `syscalls[]` with `names`, `action`,
//! `errnoRet` and `args[]` — in types of this crate, so that a runtime maps its own parser's
//! types onto them (names parse with [`FromStr`], e.g. `"SCMP_ACT_ERRNO".parse()`).
//! [`SeccompProfile::compile`] turns it into a program for [`Seccomp::Program`], or
//! [`Seccomp::Profile`] compiles it at spawn and also hands its `flags` to `seccomp(2)`.
//!
//! What a profile means is said on [`SeccompProfile`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::syscalls::{NONE, SYSCALLS};
use super::{
    arg, insn, SockFilter, ARCH, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, BPF_AND_K, BPF_JA, BPF_JEQ_K,
    BPF_JGE_K, BPF_LD_W_ABS, BPF_MAXINSNS, BPF_RET_K, NR, X32_SYSCALL_BIT,
};
use crate::{Error, Result};

#[cfg(doc)]
use super::Seccomp;

/// `BPF_JMP | BPF_JGT | BPF_K`.
const BPF_JGT_K: u16 = 0x05 | 0x20;

/// What the filter does with a system call: the spec's `SCMP_ACT_*` (seccomp(2)'s
/// `SECCOMP_RET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeccompAction {
    /// `SCMP_ACT_KILL` or `SCMP_ACT_KILL_THREAD`: the thread is killed (`SECCOMP_RET_KILL_THREAD`).
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`: the whole process is killed with `SIGSYS`
    /// (`SECCOMP_RET_KILL_PROCESS`, Linux 4.14).
    KillProcess,
    /// `SCMP_ACT_TRAP`: the call fails and the thread gets `SIGSYS` (`SECCOMP_RET_TRAP`).
    Trap,
    /// `SCMP_ACT_ERRNO`: the call fails with the rule's `errnoRet` (default `EPERM`).
    Errno,
    /// `SCMP_ACT_TRACE`: a ptrace tracer is told, with `errnoRet` (default `EPERM`) as the
    /// event's data; without a tracer the call fails with `ENOSYS`.
    Trace,
    /// `SCMP_ACT_ALLOW`: the call runs.
    Allow,
    /// `SCMP_ACT_LOG`: the call runs and is logged (`SECCOMP_RET_LOG`, Linux 4.14).
    Log,
    /// `SCMP_ACT_NOTIFY`: a seccomp agent decides. Not supported: compiling a profile that uses
    /// it fails with [`Error::Unsupported`].
    Notify,
}

const ACTION_NAMES: [(SeccompAction, &str); 9] = [
    (SeccompAction::KillThread, "SCMP_ACT_KILL_THREAD"),
    (SeccompAction::KillThread, "SCMP_ACT_KILL"),
    (SeccompAction::KillProcess, "SCMP_ACT_KILL_PROCESS"),
    (SeccompAction::Trap, "SCMP_ACT_TRAP"),
    (SeccompAction::Errno, "SCMP_ACT_ERRNO"),
    (SeccompAction::Trace, "SCMP_ACT_TRACE"),
    (SeccompAction::Allow, "SCMP_ACT_ALLOW"),
    (SeccompAction::Log, "SCMP_ACT_LOG"),
    (SeccompAction::Notify, "SCMP_ACT_NOTIFY"),
];

impl SeccompAction {
    /// The spec's name (`SCMP_ACT_KILL_THREAD` for [`SeccompAction::KillThread`]).
    pub fn name(self) -> &'static str {
        ACTION_NAMES
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("SCMP_ACT_KILL_THREAD", |(_, n)| n)
    }

    /// The filter's return value for this action with `errno` (the spec's `errnoRet`), or an
    /// error naming `what` (the field) when the combination is not one the kernel can return.
    fn ret(self, errno: Option<u32>, what: &str) -> Result<u32> {
        let data = match (self, errno) {
            (SeccompAction::Errno | SeccompAction::Trace, None) => libc::EPERM as u32,
            (SeccompAction::Errno | SeccompAction::Trace, Some(e)) if e <= 0xffff => e,
            (SeccompAction::Errno | SeccompAction::Trace, Some(e)) => {
                return Err(Error::config(
                    "seccomp profile",
                    format!("{what}: errnoRet {e} does not fit the 16 bits of SECCOMP_RET_DATA"),
                ))
            }
            (_, Some(e)) => {
                return Err(Error::config(
                    "seccomp profile",
                    format!(
                        "{what}: errnoRet {e} with {}, which returns no errno (only \
                         SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)",
                        self.name()
                    ),
                ))
            }
            (_, None) => 0,
        };
        Ok(match self {
            SeccompAction::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            SeccompAction::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            SeccompAction::Trap => libc::SECCOMP_RET_TRAP,
            SeccompAction::Errno => libc::SECCOMP_RET_ERRNO | data,
            SeccompAction::Trace => libc::SECCOMP_RET_TRACE | data,
            SeccompAction::Allow => libc::SECCOMP_RET_ALLOW,
            SeccompAction::Log => libc::SECCOMP_RET_LOG,
            SeccompAction::Notify => {
                return Err(Error::unsupported(
                    "SCMP_ACT_NOTIFY",
                    format!(
                        "{what}: seccomp agents (user notification) are not supported; use \
                         another action"
                    ),
                ))
            }
        })
    }
}

impl fmt::Display for SeccompAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeccompAction {
    type Err = Error;

    /// The spec's name, e.g. `SCMP_ACT_ERRNO`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming an action the spec does not define.
    fn from_str(s: &str) -> Result<SeccompAction> {
        ACTION_NAMES
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| Error::config("seccomp profile", format!("unknown action {s:?}")))
    }
}

/// An architecture of the spec's `architectures` list (libseccomp's `SCMP_ARCH_*`).
///
/// On an x86_64 host, [`X86_64`](Self::X86_64), [`X86`](Self::X86) (i386) and
/// [`X32`](Self::X32) get their decisions; the others are accepted and compile to nothing,
/// since an x86_64 kernel never runs their system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the architecture its spec name says
pub enum SeccompArch {
    X86,
    X86_64,
    X32,
    Arm,
    Aarch64,
    Mips,
    Mips64,
    Mips64N32,
    Mipsel,
    Mipsel64,
    Mipsel64N32,
    Ppc,
    Ppc64,
    Ppc64Le,
    S390,
    S390X,
    Parisc,
    Parisc64,
    Riscv64,
    Loongarch64,
}

const ARCH_NAMES: [(SeccompArch, &str); 20] = [
    (SeccompArch::X86, "SCMP_ARCH_X86"),
    (SeccompArch::X86_64, "SCMP_ARCH_X86_64"),
    (SeccompArch::X32, "SCMP_ARCH_X32"),
    (SeccompArch::Arm, "SCMP_ARCH_ARM"),
    (SeccompArch::Aarch64, "SCMP_ARCH_AARCH64"),
    (SeccompArch::Mips, "SCMP_ARCH_MIPS"),
    (SeccompArch::Mips64, "SCMP_ARCH_MIPS64"),
    (SeccompArch::Mips64N32, "SCMP_ARCH_MIPS64N32"),
    (SeccompArch::Mipsel, "SCMP_ARCH_MIPSEL"),
    (SeccompArch::Mipsel64, "SCMP_ARCH_MIPSEL64"),
    (SeccompArch::Mipsel64N32, "SCMP_ARCH_MIPSEL64N32"),
    (SeccompArch::Ppc, "SCMP_ARCH_PPC"),
    (SeccompArch::Ppc64, "SCMP_ARCH_PPC64"),
    (SeccompArch::Ppc64Le, "SCMP_ARCH_PPC64LE"),
    (SeccompArch::S390, "SCMP_ARCH_S390"),
    (SeccompArch::S390X, "SCMP_ARCH_S390X"),
    (SeccompArch::Parisc, "SCMP_ARCH_PARISC"),
    (SeccompArch::Parisc64, "SCMP_ARCH_PARISC64"),
    (SeccompArch::Riscv64, "SCMP_ARCH_RISCV64"),
    (SeccompArch::Loongarch64, "SCMP_ARCH_LOONGARCH64"),
];

impl SeccompArch {
    /// The spec's name, e.g. `SCMP_ARCH_X86_64`.
    pub fn name(self) -> &'static str {
        ARCH_NAMES
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("?", |(_, n)| n)
    }
}

impl fmt::Display for SeccompArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeccompArch {
    type Err = Error;

    /// The spec's name, e.g. `SCMP_ARCH_X86_64`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming an architecture the spec does not define.
    fn from_str(s: &str) -> Result<SeccompArch> {
        ARCH_NAMES
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| Error::config("seccomp profile", format!("unknown architecture {s:?}")))
    }
}

/// A flag of the spec's `flags` list, passed to `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeccompFlag {
    /// `SECCOMP_FILTER_FLAG_TSYNC`: every thread gets the filter. Accepted and not passed on,
    /// as runc does: the container's process has one thread when it installs the filter (and
    /// with the flag a failure to synchronise returns a thread id, not an error).
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`: actions other than `ALLOW` are logged (Linux 4.14).
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: the filter does not turn on the speculative store
    /// bypass mitigation (Linux 4.17).
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: only meaningful with a seccomp agent
    /// (`SCMP_ACT_NOTIFY`), so refused with [`Error::Unsupported`] when compiled.
    WaitKillableRecv,
}

const FLAG_NAMES: [(SeccompFlag, &str); 4] = [
    (SeccompFlag::Tsync, "SECCOMP_FILTER_FLAG_TSYNC"),
    (SeccompFlag::Log, "SECCOMP_FILTER_FLAG_LOG"),
    (SeccompFlag::SpecAllow, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    (
        SeccompFlag::WaitKillableRecv,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ),
];

impl SeccompFlag {
    /// The spec's name, e.g. `SECCOMP_FILTER_FLAG_LOG`.
    pub fn name(self) -> &'static str {
        FLAG_NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }
}

impl fmt::Display for SeccompFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeccompFlag {
    type Err = Error;

    /// The spec's name, e.g. `SECCOMP_FILTER_FLAG_LOG`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming any other flag (`SECCOMP_FILTER_FLAG_NEW_LISTENER` and
    /// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH` are not the profile's to ask for).
    fn from_str(s: &str) -> Result<SeccompFlag> {
        FLAG_NAMES
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(f, _)| *f)
            .ok_or_else(|| Error::config("seccomp profile", format!("unsupported flag {s:?}")))
    }
}

/// How an argument is compared: the spec's `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeccompOp {
    /// `SCMP_CMP_NE`: `arg != value`.
    NotEqual,
    /// `SCMP_CMP_LT`: `arg < value` (unsigned).
    LessThan,
    /// `SCMP_CMP_LE`: `arg <= value` (unsigned).
    LessOrEqual,
    /// `SCMP_CMP_EQ`: `arg == value`.
    Equal,
    /// `SCMP_CMP_GE`: `arg >= value` (unsigned).
    GreaterOrEqual,
    /// `SCMP_CMP_GT`: `arg > value` (unsigned).
    GreaterThan,
    /// `SCMP_CMP_MASKED_EQ`: `arg & value == value_two`.
    MaskedEqual,
}

const OP_NAMES: [(SeccompOp, &str); 7] = [
    (SeccompOp::NotEqual, "SCMP_CMP_NE"),
    (SeccompOp::LessThan, "SCMP_CMP_LT"),
    (SeccompOp::LessOrEqual, "SCMP_CMP_LE"),
    (SeccompOp::Equal, "SCMP_CMP_EQ"),
    (SeccompOp::GreaterOrEqual, "SCMP_CMP_GE"),
    (SeccompOp::GreaterThan, "SCMP_CMP_GT"),
    (SeccompOp::MaskedEqual, "SCMP_CMP_MASKED_EQ"),
];

impl SeccompOp {
    /// The spec's name, e.g. `SCMP_CMP_MASKED_EQ`.
    pub fn name(self) -> &'static str {
        OP_NAMES
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("?", |(_, n)| n)
    }

    /// Whether `arg` satisfies the comparison with `value` and `value_two` (all as given:
    /// callers truncate for 32-bit ABIs).
    pub fn holds(self, arg: u64, value: u64, value_two: u64) -> bool {
        match self {
            SeccompOp::NotEqual => arg != value,
            SeccompOp::LessThan => arg < value,
            SeccompOp::LessOrEqual => arg <= value,
            SeccompOp::Equal => arg == value,
            SeccompOp::GreaterOrEqual => arg >= value,
            SeccompOp::GreaterThan => arg > value,
            SeccompOp::MaskedEqual => arg & value == value_two,
        }
    }
}

impl fmt::Display for SeccompOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeccompOp {
    type Err = Error;

    /// The spec's name, e.g. `SCMP_CMP_EQ`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming an operator the spec does not define.
    fn from_str(s: &str) -> Result<SeccompOp> {
        OP_NAMES
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(o, _)| *o)
            .ok_or_else(|| Error::config("seccomp profile", format!("unknown operator {s:?}")))
    }
}

/// One argument condition of a rule (the spec's `args[]` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeccompArg {
    /// Which argument, 0 to 5.
    pub index: u32,
    /// The value compared with, or the mask for [`SeccompOp::MaskedEqual`].
    pub value: u64,
    /// The value the masked argument must equal for [`SeccompOp::MaskedEqual`]; unused otherwise.
    pub value_two: u64,
    /// The comparison.
    pub op: SeccompOp,
}

impl SeccompArg {
    /// Argument `index` compared with `value` by `op` (`value_two` 0).
    pub fn new(index: u32, op: SeccompOp, value: u64) -> SeccompArg {
        SeccompArg {
            index,
            value,
            value_two: 0,
            op,
        }
    }

    /// Argument `index` masked with `mask` equals `value` ([`SeccompOp::MaskedEqual`]).
    pub fn masked_eq(index: u32, mask: u64, value: u64) -> SeccompArg {
        SeccompArg {
            index,
            value: mask,
            value_two: value,
            op: SeccompOp::MaskedEqual,
        }
    }
}

/// One entry of the spec's `syscalls` list: `action` for the calls named, when every argument
/// condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeccompRule {
    /// System call names (`mkdir`, `socketcall`, ...); unknown ones are refused, or skipped
    /// with [`SeccompProfile::skip_unknown_syscalls`] (see [`SeccompProfile::unknown_names`]).
    pub names: Vec<String>,
    /// What happens to a matching call.
    pub action: SeccompAction,
    /// The errno for [`SeccompAction::Errno`] (or the data for [`SeccompAction::Trace`]);
    /// `None` for `EPERM`. Refused with any other action.
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    pub args: Vec<SeccompArg>,
}

impl Default for SeccompAction {
    /// [`SeccompAction::Allow`].
    fn default() -> SeccompAction {
        SeccompAction::Allow
    }
}

impl SeccompRule {
    /// `action` for the calls named in `names`, whatever their arguments.
    ///
    /// ```
    /// use contain::security::{SeccompAction, SeccompRule};
    /// let rule = SeccompRule::new(["mkdir", "mkdirat"], SeccompAction::Errno).errno(1);
    /// assert_eq!(rule.errno_ret, Some(1));
    /// ```
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>, action: SeccompAction) -> Self {
        SeccompRule {
            names: names.into_iter().map(Into::into).collect(),
            action,
            errno_ret: None,
            args: Vec::new(),
        }
    }

    /// The rule with `errno_ret` set to `errno`.
    #[must_use]
    pub fn errno(mut self, errno: u32) -> Self {
        self.errno_ret = Some(errno);
        self
    }

    /// The rule with one more argument condition.
    #[must_use]
    pub fn arg(mut self, arg: SeccompArg) -> Self {
        self.args.push(arg);
        self
    }
}

/// A seccomp profile: the OCI runtime spec's `linux.seccomp` object as plain data.
///
/// What a profile means, as runc (with libseccomp) reads one:
/// - a system call none of whose matching rules applies gets the default action;
/// - a rule whose action (with its errno) equals the default action is ignored (libseccomp
///   refuses such a rule and runc skips it);
/// - a rule's argument conditions must all hold; a rule with two conditions on the same
///   argument is read as one rule per condition (any one of them holding), as runc does;
/// - where rules with different actions match one call, the most restrictive action wins, in
///   the order the kernel uses between stacked filters (seccomp(2): `KILL_PROCESS`,
///   `KILL_THREAD`, `TRAP`, `ERRNO`, `USER_NOTIF`, `TRACE`, `LOG`, `ALLOW`); between two
///   rules with the same action and different data (errno), the first in the profile wins
///   (libseccomp's manual gives no order for overlapping rules: this one is the kernel's);
/// - a name no syscall table here knows (a call of another architecture, of a newer kernel
///   than Linux 6.17, or a typo) is refused with [`Error::Config`], since a misspelt name in
///   a rule that refuses would leave its call allowed; with
///   [`skip_unknown_syscalls`](Self::skip_unknown_syscalls) it is skipped instead, as runc
///   and crun skip names libseccomp does not know (contain-oci does so, and warns); a name is
///   compiled for each listed ABI that has it (`socketcall` only for i386);
/// - when the default action refuses (anything but `SCMP_ACT_ALLOW`, `SCMP_ACT_LOG` and
///   `SCMP_ACT_TRACE`), a call numbered above every call the profile names for its ABI fails
///   with `ENOSYS` instead, as runc's filters do: a call newer than the profile, for which
///   the C library falls back to an older one (`clone3` to `clone`) where it would give up
///   on `EPERM`;
/// - arguments are compared as 64-bit values on x86_64 and on x32, whose registers are 64
///   bits wide (high and low 32-bit halves, as libseccomp does on 64-bit ABIs); on i386,
///   whose arguments are 32 bits wide (the kernel zero-extends them), only the low 32 bits of
///   the argument, `value` and `valueTwo` count;
/// - `SCMP_CMP_MASKED_EQ` holds when `arg & value == valueTwo` (`value` is the mask);
/// - a call from an ABI the profile does not list is killed (`SECCOMP_RET_KILL_PROCESS`): its
///   numbers mean other calls. An empty `architectures` list means the native ABI only.
///
/// Only x86_64 hosts compile profiles (ABIs x86_64, i386 and x32); other hosts get
/// [`Error::Unsupported`]. `SCMP_ACT_NOTIFY` and `listenerPath` (a seccomp agent) are refused
/// with [`Error::Unsupported`].
///
/// ```
/// use contain::security::{SeccompAction, SeccompArch, SeccompProfile, SeccompRule};
/// let profile = SeccompProfile {
///     architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
///     syscalls: vec![SeccompRule::new(["mkdir", "mkdirat"], SeccompAction::Errno).errno(1)],
///     ..SeccompProfile::new(SeccompAction::Allow)
/// };
/// # #[cfg(target_arch = "x86_64")]
/// assert!(profile.compile()?.len() < 40);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeccompProfile {
    /// The action for calls no rule matches.
    pub default_action: SeccompAction,
    /// The errno for a [`SeccompAction::Errno`] default (data for `Trace`); `None` for `EPERM`.
    pub default_errno_ret: Option<u32>,
    /// The ABIs decided for; empty for the native one. Calls from any other are killed.
    pub architectures: Vec<SeccompArch>,
    /// Flags for `seccomp(2)` ([`SeccompProfile::kernel_flags`]).
    pub flags: Vec<SeccompFlag>,
    /// The spec's `listenerPath` (a seccomp agent's socket): refused when set.
    pub listener_path: Option<PathBuf>,
    /// The rules.
    pub syscalls: Vec<SeccompRule>,
    /// Skip rule names no syscall table here knows ([`unknown_names`](Self::unknown_names))
    /// instead of refusing the profile, as runc and crun do with names libseccomp lacks
    /// (profiles written for newer kernels name calls older tables lack). Default `false`.
    pub skip_unknown_syscalls: bool,
}

/// A rule as compiled: its return value, its conditions (all must hold) and its place in the
/// profile.
#[derive(Debug, Clone)]
struct Compiled<'a> {
    ret: u32,
    conds: Vec<SeccompArg>,
    order: usize,
    names: &'a [String],
}

/// The kernel's precedence between return values: lower is more restrictive
/// (`ACTION_ONLY`, kernel/seccomp.c, compares the action bits as a signed number).
fn precedence(ret: u32) -> i32 {
    (ret & libc::SECCOMP_RET_ACTION_FULL) as i32
}

/// The numbers of `name` as `[x86_64, i386, x32]` (x32 without its bit; [`NONE`] where
/// the ABI lacks it), or `None` for a name no table here knows.
pub(super) fn syscall_numbers(name: &str) -> Option<[u32; 3]> {
    SYSCALLS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

/// The ABIs of an x86_64 kernel, as columns of the syscall table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64 = 0,
    I386 = 1,
    X32 = 2,
}

impl SeccompProfile {
    /// A profile with `default_action` and nothing else: no rules, the native ABI, no flags.
    pub fn new(default_action: SeccompAction) -> SeccompProfile {
        SeccompProfile {
            default_action,
            ..SeccompProfile::default()
        }
    }

    /// The flags for `seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`: `SECCOMP_FILTER_FLAG_*`
    /// bits (`LOG`, `SPEC_ALLOW`; [`SeccompFlag::Tsync`] adds none).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for [`SeccompFlag::WaitKillableRecv`], which the kernel takes
    /// only with a seccomp agent's listener.
    pub fn kernel_flags(&self) -> Result<u32> {
        let mut bits = 0;
        for flag in &self.flags {
            bits |= match flag {
                SeccompFlag::Tsync => 0,
                SeccompFlag::Log => libc::SECCOMP_FILTER_FLAG_LOG,
                SeccompFlag::SpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                SeccompFlag::WaitKillableRecv => {
                    return Err(Error::unsupported(
                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                        "it only applies to a seccomp agent (SCMP_ACT_NOTIFY), which is not \
                         supported",
                    ))
                }
            } as u32;
        }
        Ok(bits)
    }

    /// The syscall names of the rules that no table here knows, each once, in the order
    /// they first appear. [`compile`](Self::compile) refuses them, or skips them with
    /// [`skip_unknown_syscalls`](Self::skip_unknown_syscalls) (as runc does: docker's profile
    /// names calls that an older table, or another architecture, lacks); a caller that skips
    /// says so where its user will see it, as contain-oci warns.
    pub fn unknown_names(&self) -> Vec<&str> {
        let mut unknown: Vec<&str> = Vec::new();
        for name in self.syscalls.iter().flat_map(|r| &r.names) {
            // An empty name is no name: `compile` refuses it as such, skipping or not.
            if !name.is_empty()
                && syscall_numbers(name).is_none()
                && !unknown.contains(&name.as_str())
            {
                unknown.push(name);
            }
        }
        unknown
    }

    /// Refuses names no table here knows, unless they are to be skipped.
    fn check_names(&self) -> Result<()> {
        let unknown = self.unknown_names();
        if self.skip_unknown_syscalls || unknown.is_empty() {
            return Ok(());
        }
        Err(Error::config(
            "seccomp profile",
            format!(
                "unknown system call name{} {}: not in this syscall table (x86_64, i386 and \
                 x32 of Linux 6.17); a typo, or a call of a newer kernel (set \
                 skip_unknown_syscalls to skip such names, as runc does)",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// The BPF program: classic BPF over `struct seccomp_data`, at most 4096 instructions.
    /// Per listed ABI a binary search over the call numbers that have rules (a few `jeq`s per
    /// leaf), then each call's argument checks; calls of unlisted ABIs are killed.
    ///
    /// # Errors
    ///
    /// - [`Error::Unsupported`] on a host other than x86_64, for `SCMP_ACT_NOTIFY`, a
    ///   `listener_path`, or [`SeccompFlag::WaitKillableRecv`];
    /// - [`Error::Config`] for an `errno_ret` with an action that returns none or above
    ///   `0xffff`, an argument index above 5, an empty name, a name no table here knows
    ///   (unless [`skip_unknown_syscalls`](Self::skip_unknown_syscalls)), or a program over
    ///   4096 instructions (`BPF_MAXINSNS`).
    pub fn compile(&self) -> Result<Vec<SockFilter>> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Error::unsupported(
                "seccomp profiles",
                format!(
                    "no syscall table for {} (only x86_64 hosts compile profiles)",
                    std::env::consts::ARCH
                ),
            ));
        }
        if let Some(path) = &self.listener_path {
            return Err(Error::unsupported(
                "seccomp listenerPath",
                format!(
                    "{}: seccomp agents (SCMP_ACT_NOTIFY) are not supported",
                    path.display()
                ),
            ));
        }
        self.kernel_flags()?;
        self.check_names()?;
        let default = self
            .default_action
            .ret(self.default_errno_ret, "defaultAction")?;
        let rules = self.rules(default)?;
        let above = self.enosys_above();
        let listed = |a: SeccompArch| self.architectures.contains(&a);
        let native = self.architectures.is_empty() || listed(SeccompArch::X86_64);
        let (x32, i386) = (listed(SeccompArch::X32), listed(SeccompArch::X86));

        let mut blocks: Vec<(u32, Vec<SockFilter>)> = Vec::new();
        if native || x32 {
            blocks.push((
                AUDIT_ARCH_X86_64,
                x86_64_block(&rules, native, x32, default, above)?,
            ));
        }
        if i386 {
            blocks.push((
                AUDIT_ARCH_I386,
                abi_block(&rules, Abi::I386, default, above)?,
            ));
        }
        // ld arch; per block: jeq its arch, ja to it; then kill: any other ABI's numbers mean
        // other calls.
        let head = 2 + 2 * blocks.len();
        let mut out = vec![insn(BPF_LD_W_ABS, 0, 0, ARCH)];
        let mut start = head;
        for (i, (audit, block)) in blocks.iter().enumerate() {
            out.push(insn(BPF_JEQ_K, 0, 1, *audit));
            let at = 2 + 2 * i;
            out.push(insn(BPF_JA, 0, 0, (start - (at + 1)) as u32));
            start += block.len();
        }
        out.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS));
        for (_, block) in blocks {
            out.extend(block);
        }
        if out.len() > BPF_MAXINSNS {
            return Err(Error::config(
                "seccomp profile",
                format!(
                    "the program has {} instructions: more than the kernel's {BPF_MAXINSNS} \
                     in one filter (BPF_MAXINSNS)",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Per ABI (x86_64, i386, x32 with its bit), the number above which calls get `ENOSYS`
    /// (`u32::MAX` for none): the highest the profile names, when the default refuses.
    fn enosys_above(&self) -> [u32; 3] {
        let mut above = [u32::MAX; 3];
        use SeccompAction::{Allow, Log, Trace};
        if matches!(self.default_action, Allow | Log | Trace) {
            return above;
        }
        let mut highest: [Option<u32>; 3] = [None; 3];
        for nrs in self
            .syscalls
            .iter()
            .flat_map(|r| &r.names)
            .filter_map(|n| syscall_numbers(n))
        {
            for (h, nr) in highest.iter_mut().zip(nrs) {
                if nr != NONE {
                    *h = (*h).max(Some(nr));
                }
            }
        }
        for (abi, h) in highest.into_iter().enumerate() {
            if let Some(nr) = h {
                above[abi] = if abi == Abi::X32 as usize {
                    nr | X32_SYSCALL_BIT
                } else {
                    nr
                };
            }
        }
        above
    }

    /// The rules as compiled, checked: those equal to the default left out, those with two
    /// conditions on one argument split into one rule per condition.
    fn rules(&self, default: u32) -> Result<Vec<Compiled<'_>>> {
        let mut out = Vec::new();
        for (order, rule) in self.syscalls.iter().enumerate() {
            let first = rule.names.first().map_or("", String::as_str);
            let what = format!("the rule for {first:?}");
            let ret = rule.action.ret(rule.errno_ret, &what)?;
            if let Some(a) = rule.args.iter().find(|a| a.index > 5) {
                return Err(Error::config(
                    "seccomp profile",
                    format!(
                        "{what}: argument index {} (system calls have arguments 0 to 5)",
                        a.index
                    ),
                ));
            }
            if rule.names.iter().any(String::is_empty) {
                return Err(Error::config(
                    "seccomp profile",
                    format!("{what}: an empty system call name"),
                ));
            }
            if ret == default {
                continue;
            }
            let repeated = (0..6).any(|i| rule.args.iter().filter(|a| a.index == i).count() > 1);
            let names = &rule.names[..];
            if repeated {
                for a in &rule.args {
                    out.push(Compiled {
                        ret,
                        conds: vec![*a],
                        order,
                        names,
                    });
                }
            } else {
                out.push(Compiled {
                    ret,
                    conds: rule.args.clone(),
                    order,
                    names,
                });
            }
        }
        Ok(out)
    }
}

/// The rules that apply to each call number of `abis` (x32 numbers with their bit), the most
/// restrictive first, cut after the first one without conditions (the rest cannot win).
fn by_number<'r, 'a>(rules: &'r [Compiled<'a>], abis: &[Abi]) -> Vec<(u32, Vec<&'r Compiled<'a>>)> {
    let mut map: BTreeMap<u32, Vec<&Compiled>> = BTreeMap::new();
    for r in rules {
        for name in r.names {
            let Some(nrs) = syscall_numbers(name) else {
                continue;
            };
            for &abi in abis {
                let nr = nrs[abi as usize];
                if nr == NONE {
                    continue;
                }
                let nr = if abi == Abi::X32 {
                    nr | X32_SYSCALL_BIT
                } else {
                    nr
                };
                let list = map.entry(nr).or_default();
                // A name listed twice in one rule counts once.
                if !list.iter().any(|o| std::ptr::eq(*o, r)) {
                    list.push(r);
                }
            }
        }
    }
    map.into_iter()
        .map(|(nr, mut list)| {
            list.sort_by_key(|r| (precedence(r.ret), r.order));
            if let Some(i) = list.iter().position(|r| r.conds.is_empty()) {
                list.truncate(i + 1);
            }
            (nr, list)
        })
        .collect()
}

/// The block for `AUDIT_ARCH_X86_64`: x86_64 numbers when `native`, x32 numbers (with
/// `X32_SYSCALL_BIT`) when `x32`; the other kind is killed.
fn x86_64_block(
    rules: &[Compiled],
    native: bool,
    x32: bool,
    default: u32,
    enosys_above: [u32; 3],
) -> Result<Vec<SockFilter>> {
    let kill = insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS);
    let mut out = vec![insn(BPF_LD_W_ABS, 0, 0, NR)];
    let (above_64, above_x32) = (
        enosys_above[Abi::X86_64 as usize],
        enosys_above[Abi::X32 as usize],
    );
    let abis: &[Abi] = match (native, x32) {
        (true, true) => {
            if above_64 != u32::MAX || above_x32 != u32::MAX {
                // x32 numbers are compared with the x32 limit, the others with x86_64's.
                out.push(insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT));
                out.push(insn(BPF_JGT_K, 1, 2, above_x32));
                out.push(insn(BPF_JGT_K, 0, 1, above_64));
                out.push(insn(BPF_RET_K, 0, 0, ENOSYS));
            }
            &[Abi::X86_64, Abi::X32]
        }
        (true, false) => {
            // x32 numbers: an ABI the profile does not list.
            out.push(insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT));
            out.push(kill);
            out.extend(enosys_check(above_64));
            &[Abi::X86_64]
        }
        _ => {
            out.push(insn(BPF_JGE_K, 1, 0, X32_SYSCALL_BIT));
            out.push(kill);
            out.extend(enosys_check(above_x32));
            &[Abi::X32]
        }
    };
    let entries = by_number(rules, abis);
    out.extend(tree(&entries, true, default)?);
    Ok(out)
}

/// `SECCOMP_RET_ERRNO | ENOSYS`.
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// `ENOSYS` for a number above `above` (none for `u32::MAX`), the number in the accumulator.
fn enosys_check(above: u32) -> Vec<SockFilter> {
    if above == u32::MAX {
        return Vec::new();
    }
    vec![insn(BPF_JGT_K, 0, 1, above), insn(BPF_RET_K, 0, 0, ENOSYS)]
}

/// The block for one 32-bit ABI.
fn abi_block(
    rules: &[Compiled],
    abi: Abi,
    default: u32,
    enosys_above: [u32; 3],
) -> Result<Vec<SockFilter>> {
    let abis = [abi];
    let mut out = vec![insn(BPF_LD_W_ABS, 0, 0, NR)];
    out.extend(enosys_check(enosys_above[abi as usize]));
    out.extend(tree(&by_number(rules, &abis), false, default)?);
    Ok(out)
}

/// Call numbers per leaf of the search.
const LEAF_CALLS: usize = 4;

/// The binary search over `entries` (sorted by number, the number in the accumulator);
/// `wide`: 64-bit argument comparisons. Every path ends in a return of its own leaf, so no
/// jump crosses more than a leaf (classic BPF's conditional jumps reach 255 instructions).
fn tree(entries: &[(u32, Vec<&Compiled>)], wide: bool, default: u32) -> Result<Vec<SockFilter>> {
    if entries.is_empty() {
        return Ok(vec![insn(BPF_RET_K, 0, 0, default)]);
    }
    if entries.len() <= LEAF_CALLS {
        if let Some(code) = leaf(entries, wide, default) {
            return Ok(code);
        }
        if entries.len() == 1 {
            let (nr, rules) = &entries[0];
            let name = rules
                .first()
                .and_then(|r| r.names.first())
                .map_or("?", String::as_str);
            return Err(Error::config(
                "seccomp profile",
                format!(
                    "the conditions on system call {nr} ({name} or a name of the same number) \
                     need jumps beyond the 255 instructions classic BPF reaches: fewer rules \
                     or conditions for it"
                ),
            ));
        }
    }
    let (low, high) = entries.split_at(entries.len() / 2);
    let below = tree(low, wide, default)?;
    let above = tree(high, wide, default)?;
    let mut out = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        Ok(skip) => out.push(insn(BPF_JGE_K, skip, 0, high[0].0)),
        Err(_) => {
            // Too far for a conditional jump: through an unconditional one (32-bit offset).
            out.push(insn(BPF_JGE_K, 0, 1, high[0].0));
            out.push(insn(BPF_JA, 0, 0, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    Ok(out)
}

/// Where a jump of a leaf goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// The next instruction.
    Next,
    /// A label of the leaf.
    Label(usize),
    /// The leaf's `ret` of this value.
    Ret(u32),
}

/// An instruction of a leaf before its jumps are resolved.
#[derive(Debug, Clone, Copy)]
enum Op {
    Plain(SockFilter),
    /// A conditional jump: code, k, where it goes when true and when false.
    Jump(u16, u32, To, To),
    /// Marks the place of a label (takes no room).
    Mark(usize),
}

/// One leaf: a `jeq` per call number, then the argument checks of those that have some, then
/// the leaf's returns. `None` if a jump would reach beyond 255 instructions.
fn leaf(entries: &[(u32, Vec<&Compiled>)], wide: bool, default: u32) -> Option<Vec<SockFilter>> {
    let mut ops = Vec::new();
    let mut labels = 0usize;
    let mut bodies = Vec::new();
    for (i, (nr, rules)) in entries.iter().enumerate() {
        let miss = if i + 1 == entries.len() {
            To::Ret(default)
        } else {
            To::Next
        };
        let first = rules.first()?;
        let hit = if first.conds.is_empty() {
            To::Ret(first.ret)
        } else {
            labels += 1;
            bodies.push((labels, rules));
            To::Label(labels)
        };
        ops.push(Op::Jump(BPF_JEQ_K, *nr, hit, miss));
    }
    for (label, rules) in bodies {
        ops.push(Op::Mark(label));
        for (i, r) in rules.iter().enumerate() {
            // A rule that does not hold: the next one, or the default after the last.
            let fail = if i + 1 == rules.len() {
                To::Ret(default)
            } else {
                labels += 1;
                To::Label(labels)
            };
            for (j, c) in r.conds.iter().enumerate() {
                // Held: on to the next condition (a label: a check's first jumps are not its
                // last), or the rule's action after the last.
                let pass = if j + 1 == r.conds.len() {
                    To::Ret(r.ret)
                } else {
                    labels += 1;
                    To::Label(labels)
                };
                condition(&mut ops, c, wide, pass, fail);
                if let To::Label(l) = pass {
                    ops.push(Op::Mark(l));
                }
            }
            if r.conds.is_empty() {
                // The first rule without conditions ends the list (see by_number).
                ops.push(Op::Jump(BPF_JA, 0, To::Ret(r.ret), To::Ret(r.ret)));
            }
            if let To::Label(l) = fail {
                ops.push(Op::Mark(l));
            }
        }
    }
    resolve(&ops)
}

/// Appends the check of one condition: on to `pass` when it holds, to `fail` when not.
fn condition(ops: &mut Vec<Op>, c: &SeccompArg, wide: bool, pass: To, fail: To) {
    let lo = arg(c.index);
    let hi = lo + 4; // little-endian: the high word follows
    let load = |at: u32| Op::Plain(insn(BPF_LD_W_ABS, 0, 0, at));
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    let (d_hi, d_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
    use SeccompOp::*;
    if !wide {
        ops.push(load(lo));
        let (code, k, t, f) = match c.op {
            Equal => (BPF_JEQ_K, v_lo, pass, fail),
            NotEqual => (BPF_JEQ_K, v_lo, fail, pass),
            GreaterThan => (BPF_JGT_K, v_lo, pass, fail),
            GreaterOrEqual => (BPF_JGE_K, v_lo, pass, fail),
            LessThan => (BPF_JGE_K, v_lo, fail, pass),
            LessOrEqual => (BPF_JGT_K, v_lo, fail, pass),
            MaskedEqual => {
                ops.push(Op::Plain(insn(BPF_AND_K, 0, 0, v_lo)));
                (BPF_JEQ_K, d_lo, pass, fail)
            }
        };
        ops.push(Op::Jump(code, k, t, f));
        return;
    }
    match c.op {
        Equal | NotEqual => {
            let (yes, no) = if c.op == Equal {
                (pass, fail)
            } else {
                (fail, pass)
            };
            ops.push(load(hi));
            ops.push(Op::Jump(BPF_JEQ_K, v_hi, To::Next, no));
            ops.push(load(lo));
            ops.push(Op::Jump(BPF_JEQ_K, v_lo, yes, no));
        }
        GreaterThan | GreaterOrEqual | LessThan | LessOrEqual => {
            // arg > v (or >=): high word above, or equal and the low word decides.
            let (low_code, yes, no) = match c.op {
                GreaterThan => (BPF_JGT_K, pass, fail),
                GreaterOrEqual => (BPF_JGE_K, pass, fail),
                LessThan => (BPF_JGE_K, fail, pass),
                _ => (BPF_JGT_K, fail, pass),
            };
            ops.push(load(hi));
            ops.push(Op::Jump(BPF_JGT_K, v_hi, yes, To::Next));
            ops.push(Op::Jump(BPF_JEQ_K, v_hi, To::Next, no));
            ops.push(load(lo));
            ops.push(Op::Jump(low_code, v_lo, yes, no));
        }
        MaskedEqual => {
            ops.push(load(hi));
            ops.push(Op::Plain(insn(BPF_AND_K, 0, 0, v_hi)));
            ops.push(Op::Jump(BPF_JEQ_K, d_hi, To::Next, fail));
            ops.push(load(lo));
            ops.push(Op::Plain(insn(BPF_AND_K, 0, 0, v_lo)));
            ops.push(Op::Jump(BPF_JEQ_K, d_lo, pass, fail));
        }
    }
}

/// The leaf's instructions with every jump resolved, followed by its returns (one per value,
/// in order of first use). `None` if a conditional jump would exceed 255 instructions.
fn resolve(ops: &[Op]) -> Option<Vec<SockFilter>> {
    let mut rets: Vec<u32> = Vec::new();
    let mut marks: BTreeMap<usize, usize> = BTreeMap::new();
    let mut len = 0usize;
    for op in ops {
        match op {
            Op::Mark(l) => {
                marks.insert(*l, len);
            }
            Op::Plain(_) => len += 1,
            Op::Jump(_, _, jt, jf) => {
                len += 1;
                for to in [jt, jf] {
                    if let To::Ret(v) = to {
                        if !rets.contains(v) {
                            rets.push(*v);
                        }
                    }
                }
            }
        }
    }
    let target = |to: To, at: usize| -> Option<usize> {
        let abs = match to {
            To::Next => at + 1,
            To::Label(l) => *marks.get(&l)?,
            To::Ret(v) => len + rets.iter().position(|x| *x == v)?,
        };
        abs.checked_sub(at + 1)
    };
    let mut out = Vec::with_capacity(len + rets.len());
    for op in ops {
        let at = out.len();
        match *op {
            Op::Mark(_) => {}
            Op::Plain(i) => out.push(i),
            Op::Jump(BPF_JA, _, to, _) => out.push(insn(BPF_JA, 0, 0, target(to, at)? as u32)),
            Op::Jump(code, k, jt, jf) => {
                let jt = u8::try_from(target(jt, at)?).ok()?;
                let jf = u8::try_from(target(jf, at)?).ok()?;
                out.push(insn(code, jt, jf, k));
            }
        }
    }
    out.extend(rets.into_iter().map(|v| insn(BPF_RET_K, 0, 0, v)));
    Some(out)
}

/// The reference the compiler is checked against (its proptests, and the `seccomp` fuzz
/// target of `fuzz/`): a classic BPF interpreter, and what a profile means for one call,
/// computed from the profile directly. Not part of the API.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod reference {
    use super::*;

    /// `AUDIT_ARCH_X86_64`, the `arch` of a native or x32 call.
    pub const ARCH_X86_64: u32 = AUDIT_ARCH_X86_64;
    /// `AUDIT_ARCH_I386`, the `arch` of an i386 call.
    pub const ARCH_I386: u32 = AUDIT_ARCH_I386;
    /// The bit of an x32 call's number.
    pub const X32_BIT: u32 = X32_SYSCALL_BIT;

    /// Every syscall name the tables know, in order.
    pub fn syscall_names() -> impl Iterator<Item = &'static str> {
        SYSCALLS.iter().map(|(name, _)| *name)
    }

    /// The numbers of `name` as `[x86_64, i386, x32]` (x32 without its bit; `u32::MAX`
    /// where the ABI lacks it).
    pub fn numbers(name: &str) -> Option<[u32; 3]> {
        syscall_numbers(name)
    }

    /// Runs a classic BPF program on one `seccomp_data`, as the kernel would: the
    /// instructions the compilers here emit (ld abs, jeq/jgt/jge/jset, ja, and, ret).
    pub fn run(p: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = p.get(pc).expect("ran off the end of the program");
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => {
                    let k = i.k as usize;
                    assert!(k + 4 <= data.len() && k % 4 == 0, "load at {k}");
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
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

    /// What `profile` means for one call, computed from the profile directly (module docs).
    pub fn meaning(profile: &SeccompProfile, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let listed = |a| profile.architectures.contains(&a);
        let abi = match arch {
            AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => {
                if !listed(SeccompArch::X32) {
                    return kill;
                }
                Abi::X32
            }
            AUDIT_ARCH_X86_64 => {
                if !(profile.architectures.is_empty() || listed(SeccompArch::X86_64)) {
                    return kill;
                }
                Abi::X86_64
            }
            AUDIT_ARCH_I386 if listed(SeccompArch::X86) => Abi::I386,
            _ => return kill,
        };
        let default = profile
            .default_action
            .ret(profile.default_errno_ret, "")
            .unwrap();
        // A number above every one the profile names for this ABI: ENOSYS, unless the
        // default lets calls through.
        let own = |n: &String| {
            syscall_numbers(n)
                .map(|nrs| nrs[abi as usize])
                .filter(|nr| *nr != NONE)
                .map(|nr| {
                    if abi == Abi::X32 {
                        nr | X32_SYSCALL_BIT
                    } else {
                        nr
                    }
                })
        };
        let highest = profile
            .syscalls
            .iter()
            .flat_map(|r| &r.names)
            .filter_map(own)
            .max();
        let lets_through = matches!(
            profile.default_action,
            SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace
        );
        if !lets_through && highest.is_some_and(|h| nr > h) {
            return libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        }
        let narrow = |v: u64| if abi == Abi::I386 { v as u32 as u64 } else { v };
        let mut best: Option<(i32, u32)> = None;
        for rule in &profile.syscalls {
            let ret = rule.action.ret(rule.errno_ret, "").unwrap();
            if ret == default {
                continue;
            }
            let named = rule.names.iter().any(|n| {
                syscall_numbers(n).is_some_and(|nrs| {
                    let own = nrs[abi as usize];
                    own != NONE
                        && match abi {
                            Abi::X32 => own | X32_SYSCALL_BIT == nr,
                            _ => own == nr,
                        }
                })
            });
            let holds = |a: &SeccompArg| {
                a.op.holds(
                    narrow(args[a.index as usize]),
                    narrow(a.value),
                    narrow(a.value_two),
                )
            };
            let repeated = (0..6).any(|i| rule.args.iter().filter(|a| a.index == i).count() > 1);
            let applies = if repeated {
                rule.args.iter().any(holds)
            } else {
                rule.args.iter().all(holds)
            };
            // The first rule of the most restrictive action wins.
            if named && applies && best.is_none_or(|(p, _)| precedence(ret) < p) {
                best = Some((precedence(ret), ret));
            }
        }
        best.map_or(default, |(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::reference::{meaning, run};
    use super::*;
    use proptest::prelude::*;

    const AUDIT_ARCH_AARCH64: u32 = super::super::AUDIT_ARCH_AARCH64;

    const ERRNO: u32 = libc::SECCOMP_RET_ERRNO;

    /// Unknown names skipped: the tables' tests use one to see it skipped.
    fn profile(default: SeccompAction, rules: Vec<SeccompRule>) -> SeccompProfile {
        SeccompProfile {
            architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
            syscalls: rules,
            skip_unknown_syscalls: true,
            ..SeccompProfile::new(default)
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn table_agrees_with_libc_and_the_i386_abi() {
        use libc::*;
        for (name, nr) in [
            ("read", SYS_read),
            ("mkdir", SYS_mkdir),
            ("mkdirat", SYS_mkdirat),
            ("getppid", SYS_getppid),
            ("personality", SYS_personality),
            ("clone3", SYS_clone3),
            ("execve", SYS_execve),
            ("io_uring_setup", SYS_io_uring_setup),
            ("mseal", SYS_mseal),
            ("arch_prctl", SYS_arch_prctl),
        ] {
            assert_eq!(syscall_numbers(name).unwrap()[0], nr as u32, "{name}");
        }
        // i386 and x32 by the kernel's tables.
        assert_eq!(syscall_numbers("getppid"), Some([110, 64, 110]));
        assert_eq!(syscall_numbers("socketcall"), Some([NONE, 102, NONE]));
        assert_eq!(syscall_numbers("ioctl"), Some([16, 54, 514]));
        assert_eq!(syscall_numbers("open_tree_attr"), Some([467, 467, 467]));
        assert_eq!(syscall_numbers("map_shadow_stack"), Some([453, NONE, 453]));
        assert_eq!(syscall_numbers("no_such_call"), None);
        assert!(
            SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, once each"
        );
    }

    #[test]
    fn names_parse_and_unknown_ones_are_config_errors() {
        assert_eq!(
            "SCMP_ACT_KILL".parse::<SeccompAction>().unwrap(),
            SeccompAction::KillThread
        );
        assert_eq!(
            "SCMP_CMP_MASKED_EQ".parse::<SeccompOp>().unwrap(),
            SeccompOp::MaskedEqual
        );
        assert_eq!(
            "SCMP_ARCH_X32".parse::<SeccompArch>().unwrap(),
            SeccompArch::X32
        );
        assert_eq!(
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
                .parse::<SeccompFlag>()
                .unwrap(),
            SeccompFlag::SpecAllow
        );
        for (a, n) in ACTION_NAMES {
            assert_eq!(n.parse::<SeccompAction>().unwrap(), a);
        }
        for (o, n) in OP_NAMES {
            assert_eq!(o.to_string().parse::<SeccompOp>().unwrap(), o, "{n}");
        }
        for (a, _) in ARCH_NAMES {
            assert_eq!(a.to_string().parse::<SeccompArch>().unwrap(), a);
        }
        let errors = [
            "SCMP_ACT_EXPLODE".parse::<SeccompAction>().map(drop),
            "SCMP_CMP_ALMOST".parse::<SeccompOp>().map(drop),
            "SCMP_ARCH_Z80".parse::<SeccompArch>().map(drop),
            "SECCOMP_FILTER_FLAG_NEW_LISTENER"
                .parse::<SeccompFlag>()
                .map(drop),
        ];
        for (e, name) in errors
            .into_iter()
            .zip(["EXPLODE", "ALMOST", "Z80", "NEW_LISTENER"])
        {
            let e = e.unwrap_err();
            assert!(
                matches!(e, Error::Config { .. }) && e.to_string().contains(name),
                "{e}"
            );
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn what_the_kernel_cannot_do_is_refused() {
        let base = profile(SeccompAction::Allow, vec![]);
        let config = |p: SeccompProfile, want: &str| {
            let e = p.compile().unwrap_err();
            assert!(
                matches!(e, Error::Config { .. }) && e.to_string().contains(want),
                "{e}"
            );
        };
        let unsupported = |p: SeccompProfile, want: &str| {
            let e = p.compile().unwrap_err();
            assert!(
                matches!(e, Error::Unsupported { .. }) && e.to_string().contains(want),
                "{e}"
            );
        };
        let with = |r: SeccompRule| SeccompProfile {
            syscalls: vec![r],
            ..base.clone()
        };
        unsupported(
            with(SeccompRule::new(["read"], SeccompAction::Notify)),
            "NOTIFY",
        );
        unsupported(SeccompProfile::new(SeccompAction::Notify), "NOTIFY");
        unsupported(
            SeccompProfile {
                listener_path: Some("/run/agent.sock".into()),
                ..base.clone()
            },
            "agent.sock",
        );
        unsupported(
            SeccompProfile {
                flags: vec![SeccompFlag::WaitKillableRecv],
                ..base.clone()
            },
            "WAIT_KILLABLE_RECV",
        );
        config(
            with(SeccompRule::new(["read"], SeccompAction::Allow).errno(1)),
            "errnoRet 1",
        );
        config(
            with(SeccompRule::new(["read"], SeccompAction::Errno).errno(70000)),
            "70000",
        );
        config(
            with(
                SeccompRule::new(["read"], SeccompAction::Errno).arg(SeccompArg::new(
                    6,
                    SeccompOp::Equal,
                    0,
                )),
            ),
            "index 6",
        );
        config(with(SeccompRule::new([""], SeccompAction::Errno)), "empty");
        // Every call with two 64-bit conditions on three ABIs: far beyond 4096 instructions.
        let all: Vec<&str> = SYSCALLS.iter().map(|(n, _)| *n).collect();
        let huge = with(
            SeccompRule::new(all, SeccompAction::Errno)
                .arg(SeccompArg::masked_eq(0, 0xff, 1))
                .arg(SeccompArg::new(1, SeccompOp::GreaterThan, 7)),
        );
        config(huge, "BPF_MAXINSNS");
        // The flags that are accepted reach the kernel's bits.
        let flagged = SeccompProfile {
            flags: vec![SeccompFlag::Log, SeccompFlag::SpecAllow, SeccompFlag::Tsync],
            ..base
        };
        let bits = libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        assert_eq!(flagged.kernel_flags().unwrap(), bits as u32);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn decisions_for_each_abi() {
        let x32 = |nr: u32| nr | X32_SYSCALL_BIT;
        let p = profile(
            SeccompAction::Allow,
            vec![
                SeccompRule::new(["mkdir", "mkdirat"], SeccompAction::Errno).errno(1),
                SeccompRule::new(["getppid"], SeccompAction::KillProcess),
                SeccompRule::new(["personality"], SeccompAction::Errno).arg(SeccompArg::new(
                    0,
                    SeccompOp::NotEqual,
                    0xffff_ffff,
                )),
                SeccompRule::new(["socketcall", "no_such_call"], SeccompAction::Trap),
                // Equal to the default: ignored.
                SeccompRule::new(["getppid"], SeccompAction::Allow),
            ],
        );
        let code = p.compile().unwrap();
        let a = |v: u64| [v, 0, 0, 0, 0, 0];
        let eperm = ERRNO | 1;
        let cases: &[(u32, u32, [u64; 6], u32)] = &[
            (AUDIT_ARCH_X86_64, 83, a(0), eperm),      // mkdir
            (AUDIT_ARCH_X86_64, 258, a(0), eperm),     // mkdirat
            (AUDIT_ARCH_I386, 39, a(0), eperm),        // mkdir
            (AUDIT_ARCH_X86_64, x32(83), a(0), eperm), // mkdir
            (AUDIT_ARCH_X86_64, 110, a(0), libc::SECCOMP_RET_KILL_PROCESS),
            (AUDIT_ARCH_I386, 64, a(0), libc::SECCOMP_RET_KILL_PROCESS),
            (
                AUDIT_ARCH_X86_64,
                135,
                a(0xffff_ffff),
                libc::SECCOMP_RET_ALLOW,
            ),
            (AUDIT_ARCH_X86_64, 135, a(0x1_ffff_ffff), ERRNO | 1),
            (AUDIT_ARCH_X86_64, 135, a(8), ERRNO | 1),
            (
                AUDIT_ARCH_I386,
                136,
                a(0xffff_ffff),
                libc::SECCOMP_RET_ALLOW,
            ),
            (AUDIT_ARCH_I386, 136, a(0), ERRNO | 1),
            (AUDIT_ARCH_I386, 102, a(0), libc::SECCOMP_RET_TRAP),
            (AUDIT_ARCH_X86_64, 102, a(0), libc::SECCOMP_RET_ALLOW), // getuid on x86_64
            (AUDIT_ARCH_X86_64, 0, a(0), libc::SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_AARCH64, 83, a(0), libc::SECCOMP_RET_KILL_PROCESS),
        ];
        for &(arch, nr, args, want) in cases {
            assert_eq!(
                run(&code, nr, arch, args),
                want,
                "arch {arch:#x} nr {nr:#x}"
            );
            assert_eq!(
                meaning(&p, arch, nr, args),
                want,
                "meaning {arch:#x} nr {nr:#x}"
            );
        }
        // Only x86_64 listed: i386 and x32 calls are killed.
        let native = SeccompProfile {
            architectures: vec![SeccompArch::X86_64],
            ..p.clone()
        };
        let code = native.compile().unwrap();
        assert_eq!(
            run(&code, 39, AUDIT_ARCH_I386, a(0)),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            run(&code, x32(0), AUDIT_ARCH_X86_64, a(0)),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(run(&code, 83, AUDIT_ARCH_X86_64, a(0)), eperm);
        // An empty list is the native ABI alone.
        let empty = SeccompProfile {
            architectures: vec![],
            ..p
        };
        assert_eq!(empty.compile().unwrap(), code);
    }

    /// runc's `ENOSYS` for calls newer than the profile, when the default refuses.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn calls_above_the_profile_get_enosys_when_the_default_refuses() {
        let rules = vec![
            SeccompRule::new(["read", "getppid"], SeccompAction::Allow),
            SeccompRule::new(["ioctl"], SeccompAction::Errno).errno(1), // x32: 514
        ];
        let eperm = profile(SeccompAction::Errno, rules.clone());
        let code = eperm.compile().unwrap();
        let x32 = |nr: u32| nr | X32_SYSCALL_BIT;
        let enosys = ERRNO | libc::ENOSYS as u32;
        let cases = [
            (AUDIT_ARCH_X86_64, 39, ERRNO | 1), // getpid: below getppid (110)
            (AUDIT_ARCH_X86_64, 111, enosys),   // getpgrp: above it
            (AUDIT_ARCH_X86_64, 435, enosys),   // clone3
            (AUDIT_ARCH_X86_64, 110, libc::SECCOMP_RET_ALLOW),
            (AUDIT_ARCH_I386, 63, ERRNO | 1), // dup2: below getppid (64)
            (AUDIT_ARCH_I386, 65, enosys),    // getpgrp
            (AUDIT_ARCH_X86_64, x32(513), ERRNO | 1), // below ioctl (514)
            (AUDIT_ARCH_X86_64, x32(515), enosys),
        ];
        for (arch, nr, want) in cases {
            assert_eq!(run(&code, nr, arch, [0; 6]), want, "{arch:#x} {nr:#x}");
            assert_eq!(meaning(&eperm, arch, nr, [0; 6]), want, "{arch:#x} {nr:#x}");
        }
        // A default that lets calls through needs no such answer.
        let log = profile(SeccompAction::Log, rules);
        let code = log.compile().unwrap();
        assert_eq!(
            run(&code, 435, AUDIT_ARCH_X86_64, [0; 6]),
            libc::SECCOMP_RET_LOG
        );
    }

    /// A profile naming every call the table knows, allowed, with the default ERRNO: blocks
    /// past 255 instructions, so the search's long jumps are exercised.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_long_allow_list_stays_in_reach() {
        let all: Vec<&str> = SYSCALLS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != "kill")
            .collect();
        let p =
            SeccompProfile {
                default_errno_ret: Some(38),
                ..profile(
                    SeccompAction::Errno,
                    vec![
                        SeccompRule::new(all, SeccompAction::Allow),
                        SeccompRule::new(["personality"], SeccompAction::Allow)
                            .arg(SeccompArg::new(0, SeccompOp::Equal, 0xffff_ffff)),
                    ],
                )
            };
        let code = p.compile().unwrap();
        assert!(code.len() <= BPF_MAXINSNS, "{}", code.len());
        assert!(
            code.iter().any(|i| i.code == BPF_JA && i.k > 255),
            "a long jump"
        );
        for (name, nrs) in SYSCALLS {
            let want = if *name == "kill" {
                ERRNO | 38
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            for (abi, arch) in [
                (0, AUDIT_ARCH_X86_64),
                (1, AUDIT_ARCH_I386),
                (2, AUDIT_ARCH_X86_64),
            ] {
                if nrs[abi] != NONE {
                    let nr = if abi == 2 {
                        nrs[abi] | X32_SYSCALL_BIT
                    } else {
                        nrs[abi]
                    };
                    assert_eq!(run(&code, nr, arch, [0; 6]), want, "{name} abi {abi}");
                }
            }
        }
        assert_eq!(run(&code, 999, AUDIT_ARCH_X86_64, [0; 6]), ERRNO | 38);
        println!(
            "allow list of {} names: {} instructions",
            SYSCALLS.len(),
            code.len()
        );
    }

    /// System call names for the random profiles: some on one ABI only, some numbered
    /// differently on x32, one unknown.
    const POOL: [&str; 14] = [
        "read",
        "write",
        "ioctl",
        "personality",
        "mkdir",
        "getppid",
        "socketcall",
        "clone",
        "execve",
        "open_tree_attr",
        "map_shadow_stack",
        "preadv2",
        "_llseek",
        "no_such_call",
    ];

    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(8),
            Just(0xffff_ffff),
            Just(0x1_0000_0000),
            Just(0x1_0000_0001),
            Just(0x8000_0000_0000_0000),
            Just(u64::MAX),
            any::<u64>(),
        ]
    }

    fn action() -> impl Strategy<Value = (SeccompAction, Option<u32>)> {
        use SeccompAction::*;
        prop_oneof![
            Just((Allow, None)),
            Just((Errno, None)),
            Just((Errno, Some(1))),
            Just((Errno, Some(38))),
            Just((Trace, Some(5))),
            Just((KillProcess, None)),
            Just((KillThread, None)),
            Just((Trap, None)),
            Just((Log, None)),
        ]
    }

    fn op() -> impl Strategy<Value = SeccompOp> {
        prop::sample::select(OP_NAMES.iter().map(|(o, _)| *o).collect::<Vec<_>>())
    }

    fn rule() -> impl Strategy<Value = SeccompRule> {
        let arg = (0u32..3, op(), value(), value()).prop_map(|(index, op, value, value_two)| {
            SeccompArg {
                index,
                value,
                value_two,
                op,
            }
        });
        (
            prop::sample::subsequence(POOL.to_vec(), 1..3),
            action(),
            prop::collection::vec(arg, 0..3),
        )
            .prop_map(|(names, (action, errno_ret), args)| SeccompRule {
                names: names.into_iter().map(String::from).collect(),
                action,
                errno_ret,
                args,
            })
    }

    fn random_profile() -> impl Strategy<Value = SeccompProfile> {
        let arches = prop::sample::subsequence(
            vec![
                SeccompArch::X86_64,
                SeccompArch::X86,
                SeccompArch::X32,
                SeccompArch::Aarch64,
            ],
            0..4,
        );
        (action(), arches, prop::collection::vec(rule(), 0..10)).prop_map(
            |((default_action, default_errno_ret), architectures, syscalls)| SeccompProfile {
                default_action,
                default_errno_ret,
                architectures,
                syscalls,
                skip_unknown_syscalls: true,
                ..SeccompProfile::default()
            },
        )
    }

    /// A call: its ABI (x86_64, i386, x32, aarch64), a number (of a pool name on that ABI, or
    /// any), and arguments.
    fn call() -> impl Strategy<Value = (u32, u32, [u64; 6])> {
        let pick = (0usize..4, 0usize..POOL.len(), 0u32..600, any::<bool>());
        (pick, prop::array::uniform6(value())).prop_map(|((abi, name, any_nr, by_name), args)| {
            let arch = [
                AUDIT_ARCH_X86_64,
                AUDIT_ARCH_I386,
                AUDIT_ARCH_X86_64,
                AUDIT_ARCH_AARCH64,
            ][abi];
            let column = abi.min(2);
            let nr = syscall_numbers(POOL[name])
                .map(|n| n[column])
                .filter(|n| by_name && *n != NONE)
                .unwrap_or(any_nr);
            let nr = if abi == 2 { nr | X32_SYSCALL_BIT } else { nr };
            // The kernel zero-extends an i386 call's arguments.
            let args = if abi == 1 {
                args.map(|a| a as u32 as u64)
            } else {
                args
            };
            (arch, nr, args)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The compiled program decides every call as the profile means it.
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn compiled_program_decides_as_the_profile_means(
            p in random_profile(),
            calls in prop::collection::vec(call(), 1..40),
        ) {
            let code = p.compile().unwrap();
            prop_assert!(code.len() <= BPF_MAXINSNS);
            for (arch, nr, args) in calls {
                prop_assert_eq!(
                    run(&code, nr, arch, args),
                    meaning(&p, arch, nr, args),
                    "arch {:#x} nr {:#x} args {:x?}", arch, nr, args
                );
            }
        }
    }
}
