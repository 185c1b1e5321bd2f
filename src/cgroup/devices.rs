//! Device access for cgroup v2: a `BPF_CGROUP_DEVICE` program attached to a group decides
//! which device nodes its processes may create, read and write (cgroup v1's `devices.allow`).
//!
//! [`DeviceRule::default_allowlist`] is runc's default: creating any node is allowed (seccomp
//! and capabilities decide that), opening only the harmless character devices: null, zero,
//! full, random, urandom, tty, console, ptmx and the pty slaves. So a container's root that
//! makes a node for a host disk still cannot read it.
//!
//! ```no_run
//! use contain::cgroup::{attach_device_filter, CgroupBuilder, DeviceRule};
//! let cg = CgroupBuilder::new("job").create_in_own()?;
//! attach_device_filter(&cg, &DeviceRule::default_allowlist())?;
//! # Ok::<(), contain::Error>(())
//! ```

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Cgroup;
use crate::sys;
use crate::{Errno, Error, Result};

/// Block or character device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `b`
    Block,
    /// `c`
    Char,
    /// Either.
    Any,
}

bitflags::bitflags! {
    /// What a rule allows: `mknod`, `read`, `write` (cgroup v1's `m`, `r`, `w`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DeviceAccess: u32 {
        /// Create a node (`mknod`).
        const MKNOD = 1;
        /// Open for reading.
        const READ = 2;
        /// Open for writing.
        const WRITE = 4;
    }
}

/// One allow rule; `None` for major or minor means any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    /// Block, char, or any.
    pub kind: DeviceKind,
    /// Major number, `None` for any.
    pub major: Option<u32>,
    /// Minor number, `None` for any.
    pub minor: Option<u32>,
    /// What is allowed.
    pub access: DeviceAccess,
}

impl DeviceRule {
    fn char(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access: DeviceAccess::all(),
        }
    }

    /// runc's default rules (see the module docs).
    pub fn default_allowlist() -> Vec<DeviceRule> {
        vec![
            DeviceRule {
                kind: DeviceKind::Any,
                major: None,
                minor: None,
                access: DeviceAccess::MKNOD,
            },
            DeviceRule::char(1, Some(3)), // null
            DeviceRule::char(1, Some(5)), // zero
            DeviceRule::char(1, Some(7)), // full
            DeviceRule::char(1, Some(8)), // random
            DeviceRule::char(1, Some(9)), // urandom
            DeviceRule::char(5, Some(0)), // tty
            DeviceRule::char(5, Some(1)), // console
            DeviceRule::char(5, Some(2)), // ptmx
            DeviceRule::char(136, None),  // /dev/pts/*
        ]
    }
}

/// eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV64_X: u8 = 0xbf; // dst = src
const MOV64_K: u8 = 0xb7; // dst = imm
const AND64_K: u8 = 0x57; // dst &= imm
const RSH64_K: u8 = 0x77; // dst >>= imm
const XOR64_K: u8 = 0xa7; // dst ^= imm
const OR64_X: u8 = 0x4f; // dst |= src
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor; each rule is a block that
/// goes on to the next rule on a mismatch and returns 1 on a match; the end returns 0.
///
/// A block compares by difference: r6 = (r2 ^ type) | (r4 ^ major) | (r5 ^ minor), one jump
/// on r6 != 0. Jumping on r2, r4 or r5 themselves would teach the verifier their values on
/// the fall-through path, so every rule after it would start in a state of its own and be
/// verified again for each (195 instructions walked for runc's 10 default rules, 0.3 ms per
/// load on a 2-core VM); through r6 every block starts in the same state and is walked once.
fn compile(rules: &[DeviceRule]) -> Result<Vec<Insn>> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0), // access_type
        insn(MOV64_X, 3, 2, 0, 0),
        insn(AND64_K, 2, 0, 0, 0xffff), // r2 = BPF_DEVCG_DEV_*
        insn(RSH64_K, 3, 0, 0, 16),     // r3 = BPF_DEVCG_ACC_*
        insn(LDX_MEM_W, 4, 1, 4, 0),    // major
        insn(LDX_MEM_W, 5, 1, 8, 0),    // minor
    ];
    for r in rules {
        let mut fields: Vec<(u8, i32)> = Vec::new(); // (register, value) that must be equal
        match r.kind {
            DeviceKind::Block => fields.push((2, 1)),
            DeviceKind::Char => fields.push((2, 2)),
            DeviceKind::Any => {}
        }
        for (reg, v) in [(4u8, r.major), (5u8, r.minor)] {
            if let Some(v) = v {
                let v = i32::try_from(v).map_err(|_| {
                    Error::config("device rule", format!("number {v} is too large"))
                })?;
                fields.push((reg, v));
            }
        }
        let mut block = Vec::new();
        for (i, (reg, v)) in fields.iter().enumerate() {
            // r6 collects the differences; r7 is the scratch for the second and later ones.
            let to = if i == 0 { 6 } else { 7 };
            block.push(insn(MOV64_X, to, *reg, 0, 0));
            block.push(insn(XOR64_K, to, 0, 0, *v));
            if to == 7 {
                block.push(insn(OR64_X, 6, 7, 0, 0));
            }
        }
        // Access: the requested bits must all be allowed: (r3 & !allowed) == 0.
        let denied = !(r.access.bits() as i32) & 0x7;
        if denied != 0 {
            let to = if fields.is_empty() { 6 } else { 7 };
            block.push(insn(MOV64_X, to, 3, 0, 0));
            block.push(insn(AND64_K, to, 0, 0, denied));
            if to == 7 {
                block.push(insn(OR64_X, 6, 7, 0, 0));
            }
        }
        if !block.is_empty() {
            // Past this jump and the two instructions of the match: the next block.
            block.push(insn(JNE_K, 6, 0, 2, 0));
        }
        p.extend(block);
        p.push(insn(MOV64_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Ok(p)
}

const BPF_PROG_LOAD: usize = 5;
const BPF_PROG_ATTACH: usize = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `bpf(BPF_PROG_LOAD)` of a cgroup device program, with the verifier's log in `log` if given.
fn load(prog: &[Insn], log: Option<&mut [u8]>) -> std::result::Result<OwnedFd, Errno> {
    // union bpf_attr for BPF_PROG_LOAD, up to log_buf.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
    }
    let license = c"Apache-2.0";
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
    };
    // SAFETY: bpf(BPF_PROG_LOAD) reads `attr` and the instructions and license it points to,
    // and writes at most log_size bytes to the log buffer; all outlive the call.
    let fd = unsafe {
        sys::syscall3(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad as usize,
            std::mem::size_of::<ProgLoad>(),
        )
    }?;
    // SAFETY: the kernel returned a new program descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The last remedy of a device filter that cannot be loaded, for strict callers; dropped
/// from the reason of a skip under best effort (see `discover::without_best_effort_hint`).
pub(crate) const DEVICES_BEST_EFFORT_HINT: &str =
    "; or LimitPolicy::BestEffort, which skips the default allowlist and reports it";

/// Loads a device program for `rules` and attaches it to `cgroup` (in addition to programs
/// already there: a device is allowed only if every attached program allows it).
///
/// # Errors
///
/// - [`Error::Config`] when a rule's major or minor number is too large for the program.
/// - [`Error::Unsupported`] when `bpf(BPF_PROG_LOAD)` fails with `EPERM` (the caller lacks
///   `CAP_BPF`/`CAP_SYS_ADMIN`, e.g. rootless) or `ENOSYS` (a kernel without BPF).
/// - [`Error::Sys`] naming `bpf(BPF_PROG_LOAD)` with the verifier's log in the path field
///   (`EINVAL`, `EACCES`), or any other load errno; naming `bpf(BPF_PROG_ATTACH)` and the cgroup's
///   path when attaching fails (`EPERM`, `EBADF`).
pub fn attach_device_filter(cgroup: &Cgroup, rules: &[DeviceRule]) -> Result<()> {
    let prog = compile(rules)?;
    let fd = match load(&prog, None) {
        Ok(fd) => fd,
        Err(e @ (Errno::EPERM | Errno::ENOSYS)) => {
            let why = match e {
                Errno::EPERM => format!(
                    "loading a BPF program needs CAP_BPF or CAP_SYS_ADMIN in the initial user \
                     namespace, which a rootless caller (even in a delegated cgroup) lacks, and \
                     a seccomp or LSM policy may forbid bpf(2) to root as well (inside a \
                     container). To fix: run as root, outside such a policy; or leave the \
                     allowlist out (Security::device_allowlist = None: the default seccomp \
                     profile still refuses block device nodes){DEVICES_BEST_EFFORT_HINT}"
                ),
                _ => "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)".to_owned(),
            };
            return Err(Error::unsupported(
                "cgroup device filter",
                format!("bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program: {e}; {why}"),
            ));
        }
        Err(e @ (Errno::EINVAL | Errno::EACCES)) => {
            // Load again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let _ = load(&prog, Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            return Err(Error::sys_path(
                "bpf(BPF_PROG_LOAD)",
                format!(
                    "cgroup device program: {}",
                    String::from_utf8_lossy(&log[..end]).trim()
                ),
                e,
            ));
        }
        Err(e) => return Err(Error::sys("bpf(BPF_PROG_LOAD)", e)),
    };
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let attr = ProgAttach {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: bpf(BPF_PROG_ATTACH) reads `attr`; both fds are open for the call.
    unsafe {
        sys::syscall3(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach as usize,
            std::mem::size_of::<ProgAttach>(),
        )
    }
    .map_err(|e| Error::sys_path("bpf(BPF_PROG_ATTACH)", cgroup.path(), e))?;
    // The attachment holds the program; our descriptor can go.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the compiled program on one request, as the kernel would.
    fn eval(p: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
        let mut r = [0u64; 11];
        let ctx = [access_type, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1);
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = i.imm as i64 as u64,
                AND64_K => r[dst] &= i.imm as i64 as u64,
                XOR64_K => r[dst] ^= i.imm as i64 as u64,
                OR64_X => r[dst] |= r[src],
                RSH64_K => r[dst] >>= i.imm,
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unknown code {c:#x}"),
            }
        }
    }

    fn req(kind: u32, access: DeviceAccess) -> u32 {
        (access.bits() << 16) | kind
    }

    #[test]
    fn default_allowlist_decides_like_runc() {
        let p = compile(&DeviceRule::default_allowlist()).unwrap();
        let rw = DeviceAccess::READ | DeviceAccess::WRITE;
        assert_eq!(eval(&p, req(2, rw), 1, 3), 1, "null");
        assert_eq!(eval(&p, req(2, DeviceAccess::READ), 136, 9), 1, "pts");
        assert_eq!(
            eval(&p, req(2, DeviceAccess::MKNOD), 1, 1),
            1,
            "mknod of anything"
        );
        assert_eq!(
            eval(&p, req(1, DeviceAccess::MKNOD), 8, 0),
            1,
            "mknod of a disk node"
        );
        assert_eq!(
            eval(&p, req(1, DeviceAccess::READ), 8, 0),
            0,
            "reading a disk"
        );
        assert_eq!(
            eval(&p, req(1, DeviceAccess::READ), 7, 0),
            0,
            "reading a loop device"
        );
        assert_eq!(eval(&p, req(2, DeviceAccess::READ), 1, 1), 0, "/dev/mem");
        assert_eq!(eval(&p, req(2, rw), 1, 4), 0, "/dev/port");
    }

    #[test]
    fn empty_rules_deny_everything() {
        let p = compile(&[]).unwrap();
        assert_eq!(eval(&p, req(2, DeviceAccess::READ), 1, 3), 0);
    }

    /// The rules' meaning, straight from their fields: the reference the program must match.
    fn reference(
        rules: &[DeviceRule],
        kind: u32,
        access: DeviceAccess,
        major: u32,
        minor: u32,
    ) -> u64 {
        let allowed = rules.iter().any(|r| {
            let kind_ok = match r.kind {
                DeviceKind::Block => kind == 1,
                DeviceKind::Char => kind == 2,
                DeviceKind::Any => true,
            };
            kind_ok
                && r.major.is_none_or(|m| m == major)
                && r.minor.is_none_or(|m| m == minor)
                && r.access.contains(access)
        });
        u64::from(allowed)
    }

    #[test]
    fn program_decides_as_the_rules_say() {
        let kinds = [DeviceKind::Block, DeviceKind::Char, DeviceKind::Any];
        let numbers = [None, Some(0), Some(1), Some(136)];
        let accesses = [
            DeviceAccess::empty(),
            DeviceAccess::MKNOD,
            DeviceAccess::READ,
            DeviceAccess::READ | DeviceAccess::WRITE,
            DeviceAccess::all(),
        ];
        // Every single rule the fields allow, then a few lists of them.
        let mut all = Vec::new();
        for kind in kinds {
            for major in numbers {
                for minor in numbers {
                    for access in accesses {
                        all.push(DeviceRule {
                            kind,
                            major,
                            minor,
                            access,
                        });
                    }
                }
            }
        }
        let mut lists: Vec<Vec<DeviceRule>> = all.iter().map(|r| vec![*r]).collect();
        lists.push(DeviceRule::default_allowlist());
        lists.push(all.iter().step_by(7).copied().collect());
        lists.push(all.iter().rev().step_by(11).copied().collect());
        for rules in &lists {
            let p = compile(rules).unwrap();
            for kind in [1, 2] {
                for major in [0, 1, 5, 136] {
                    for minor in [0, 1, 3, 136] {
                        for access in accesses.iter().skip(1) {
                            assert_eq!(
                                eval(&p, req(kind, *access), major, minor),
                                reference(rules, kind, *access, major, minor),
                                "rules {rules:?}, request {kind} {major}:{minor} {access:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The verifier walks each instruction once: no rule is verified again for what an
    /// earlier one's comparisons taught it (which made loads cost twice as much). Needs root
    /// (CAP_BPF); skips otherwise.
    #[test]
    fn verifier_walks_the_program_once() {
        let mut rules = DeviceRule::default_allowlist();
        rules.extend(DeviceRule::default_allowlist());
        let p = compile(&rules).unwrap();
        let mut log = vec![0u8; 1 << 20];
        match load(&p, Some(&mut log)) {
            Ok(_) => {}
            Err(e @ (Errno::EPERM | Errno::ENOSYS)) => {
                eprintln!(
                    "skipped: BPF_PROG_LOAD refused ({e}): needs root and CONFIG_BPF_SYSCALL"
                );
                return;
            }
            Err(e) => panic!("BPF_PROG_LOAD: {e}"),
        }
        let end = log.iter().position(|&b| b == 0).unwrap_or(0);
        let log = String::from_utf8_lossy(&log[..end]);
        let processed = log
            .lines()
            .find_map(|l| l.strip_prefix("processed "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no `processed N insns` line in the log:\n{log}"));
        assert_eq!(processed, p.len(), "verifier log:\n{log}");
    }
}
