//! Raw system calls that nix lacks, and an errno-free syscall entry for the child.
//!
//! Two reasons for this module:
//! - `clone3`, `pidfd_*`, `close_range`, `mount_setattr`, `open_tree`, `move_mount` and friends
//!   have no nix wrappers (or none in nix 0.32).
//! - Between `clone` and `execve` the child shares the parent's memory (`CLONE_VM`) and
//!   therefore the parent thread's TLS, including `errno`. Calling libc there would write the
//!   parent's `errno` behind its back and, for the `set*id` family, make glibc signal the
//!   parent's threads. The child therefore enters the kernel only through [`syscall6`] below,
//!   which returns the error in the return value and touches no memory at all.

#![allow(clippy::too_many_arguments)]

pub(crate) mod mount;

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libc::{c_long, c_void};
use nix::errno::Errno;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("contain's clone trampoline supports x86_64 and aarch64 only");

pub(crate) const CLONE_PIDFD: u64 = 0x0000_1000;
pub(crate) const CLONE_NEWTIME: u64 = 0x0000_0080;
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `clone3(2)`, version 2 (with `cgroup`), 88 bytes.
#[repr(C, align(8))]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Turns a raw kernel return value (`-4095..=-1` is an error) into a `Result`.
#[inline(always)]
fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// A system call with up to six arguments that neither reads nor writes `errno`.
///
/// # Safety
/// The caller must uphold the contract of the system call `nr` for the given arguments
/// (valid pointers of the right size, fds it owns, ...).
#[inline(always)]
pub(crate) unsafe fn syscall6(
    nr: c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: the syscall instruction with the Linux x86_64 calling convention: number in rax,
    // arguments in rdi, rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 only. What the
    // call does with memory is the caller's contract.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    // SAFETY: `svc 0` with the Linux aarch64 convention: number in x8, arguments in x0-x5,
    // result in x0; no other register is clobbered.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2, in("x2") a3, in("x3") a4, in("x4") a5, in("x5") a6,
            options(nostack)
        );
    }
    check(ret)
}

/// [`syscall6`] with fewer arguments.
#[inline(always)]
pub(crate) unsafe fn syscall3(nr: c_long, a1: usize, a2: usize, a3: usize) -> Result<usize, Errno> {
    // SAFETY: forwarded contract.
    unsafe { syscall6(nr, a1, a2, a3, 0, 0, 0) }
}

/// The entry point of a cloned child. It runs on the stack given to [`clone3`] and must not
/// return (it ends in `execve` or `exit_group`).
pub(crate) type ChildEntry = unsafe extern "C" fn(arg: *mut c_void) -> !;

/// `clone3(2)`; in the child, calls `entry(arg)` on the stack given in `args` (or, with no
/// stack, on a copy of the caller's). Returns the child's pid in the parent.
///
/// # Safety
/// `args` must be filled in consistently (a `stack` of `stack_size` bytes that stays mapped
/// until the child has exec'd or died, pointers for `pidfd`/`parent_tid` that stay valid).
/// `entry` runs with the parent's memory when `CLONE_VM` is set and must then only use
/// [`syscall6`], memory prepared for it, and its own stack.
pub(crate) unsafe fn clone3(
    args: &mut CloneArgs,
    entry: ChildEntry,
    arg: *mut c_void,
) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: the syscall returns twice. In the parent (rax != 0) we fall through to the end.
    // In the child (rax == 0) the stack pointer is the top of the new stack (16-byte aligned,
    // as the caller guarantees), so `call` leaves it ABI-aligned for `entry`; the frame pointer
    // is cleared to end backtraces there, and `entry` never returns (ud2 traps if it did).
    // rcx and r11 are clobbered by `syscall`; r12/r13 carry entry and arg across it.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") entry,
            in("r13") arg,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    // SAFETY: as above for aarch64: x0 = 0 in the child, which then runs on the new stack,
    // clears the frame and link registers and branches to `entry` with `arg` in x0.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x10",
            "blr x9",
            "brk #1",
            "2:",
            in("x8") libc::SYS_clone3,
            inlateout("x0") args as *mut CloneArgs as isize => ret,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x9") entry,
            in("x10") arg,
        );
    }
    check(ret)
}

/// The classic `clone(2)` for kernels (or seccomp profiles) without `clone3`. `CLONE_PIDFD`
/// stores the pidfd at `pidfd`. Same contract as [`clone3`]; `stack_top` is the highest
/// address of the child's stack (16-byte aligned), or null to use a copy of the caller's.
pub(crate) unsafe fn clone_legacy(
    flags: u64,
    stack_top: *mut c_void,
    pidfd: *mut libc::c_int,
    entry: ChildEntry,
    arg: *mut c_void,
) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: x86_64 clone(flags, stack, parent_tid, child_tid, tls); with CLONE_PIDFD the
    // kernel writes the pidfd to parent_tid. The two returns are handled as in `clone3`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack_top,
            in("rdx") pidfd,
            in("r10") 0usize,
            in("r8") 0usize,
            in("r12") entry,
            in("r13") arg,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    // SAFETY: aarch64 clone(flags, stack, parent_tid, tls, child_tid); as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x10",
            "blr x9",
            "brk #1",
            "2:",
            in("x8") libc::SYS_clone,
            inlateout("x0") flags as isize => ret,
            in("x1") stack_top,
            in("x2") pidfd,
            in("x3") 0usize,
            in("x4") 0usize,
            in("x9") entry,
            in("x10") arg,
        );
    }
    check(ret)
}

/// `pidfd_open(2)`: a pidfd for an existing process.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers; the returned fd is new and ours.
    let fd = unsafe { syscall3(libc::SYS_pidfd_open, pid as usize, 0, 0) }?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: null siginfo means "as kill(2) would"; the fd is borrowed for the call.
    unsafe {
        syscall6(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd() as usize,
            signal as usize,
            0,
            0,
            0,
            0,
        )
    }
    .map(drop)
}

const P_PIDFD: libc::idtype_t = 3;

/// `waitid(P_PIDFD, pidfd, ...)`: `Ok(None)` with `WNOHANG` when the child is still running.
pub(crate) fn waitid_pidfd(
    pidfd: BorrowedFd<'_>,
    options: libc::c_int,
) -> Result<Option<libc::siginfo_t>, Errno> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; the fd is borrowed for the call.
        let r = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                options | libc::WEXITED,
            )
        };
        if r == 0 {
            // SAFETY: waitid filled in si_pid (0 when WNOHANG found nothing).
            return Ok(if unsafe { info.si_pid() } == 0 {
                None
            } else {
                Some(info)
            });
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// `close_range(2)`.
#[inline(always)]
pub(crate) unsafe fn close_range(first: u32, last: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: closing descriptors is the caller's contract.
    unsafe {
        syscall3(
            libc::SYS_close_range,
            first as usize,
            last as usize,
            flags as usize,
        )
    }
    .map(drop)
}

/// Every signal blocked in the calling thread until dropped, when the previous mask comes
/// back: around a clone, so that no handler of the caller can run in a child that shares its
/// memory before the child has reset them.
pub(crate) struct AllSignalsBlocked {
    old: nix::sys::signal::SigSet,
}

impl AllSignalsBlocked {
    pub(crate) fn new() -> crate::Result<AllSignalsBlocked> {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
        let mut old = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old),
        )
        .map_err(|e| crate::Error::sys("pthread_sigmask", e))?;
        Ok(AllSignalsBlocked { old })
    }
}

impl Drop for AllSignalsBlocked {
    fn drop(&mut self) {
        use nix::sys::signal::{pthread_sigmask, SigmaskHow};
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// A stack for a cloned child: an anonymous mapping with an inaccessible guard page at the
/// bottom, so an overflow faults instead of writing into whatever lies below. Unmapped on drop:
/// keep it until the child has exec'd or exited.
#[derive(Debug)]
pub(crate) struct Stack {
    base: *mut c_void,
    size: usize,
}

impl Stack {
    const GUARD: usize = 4096;

    /// `size` bytes (a multiple of the page size); `what` names it in errors.
    pub(crate) fn new(size: usize, what: &'static str) -> crate::Result<Stack> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(crate::Error::sys(what, Errno::last()));
        }
        let stack = Stack { base, size };
        // SAFETY: the lowest page of our own mapping becomes inaccessible.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(crate::Error::sys(what, Errno::last()));
        }
        Ok(stack)
    }

    /// The lowest address (what `clone3` takes with the size).
    pub(crate) fn base(&self) -> *mut c_void {
        self.base
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// One past the highest address (what `clone` takes): page-, so 16-byte, aligned.
    pub(crate) fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.size).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; its owner keeps it until the child no longer runs on it.
        unsafe { libc::munmap(self.base, self.size) };
    }
}

/// `/proc/self/fd/N` followed by a short suffix, NUL-terminated, on the stack: how a child
/// that may not allocate names its own descriptors to interfaces that take paths (overlayfs
/// layers, `mount(2)` on old kernels, `umount2`).
pub(crate) struct FdPath(pub(crate) [u8; 48]);

impl FdPath {
    pub(crate) fn new(fd: libc::c_int, suffix: &[u8]) -> FdPath {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut digits = [0u8; 10];
        let mut n = fd.unsigned_abs();
        let mut len = 0;
        for d in digits.iter_mut() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
            if n == 0 {
                break;
            }
        }
        let mut buf = [0u8; 48];
        let bytes = PREFIX
            .iter()
            .chain(digits.iter().take(len).rev())
            .chain(suffix.iter());
        // At most 47 bytes: the last one stays NUL whatever the suffix.
        for (slot, byte) in buf.iter_mut().take(47).zip(bytes) {
            *slot = *byte;
        }
        FdPath(buf)
    }

    pub(crate) fn as_ptr(&self) -> *const libc::c_char {
        self.0.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::FdPath;

    #[test]
    fn fd_paths_are_nul_terminated() {
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (1234, "/proc/self/fd/1234"),
            (i32::MAX, "/proc/self/fd/2147483647"),
        ] {
            let p = FdPath::new(fd, b"");
            assert_eq!(
                std::ffi::CStr::from_bytes_until_nul(&p.0)
                    .unwrap()
                    .to_str()
                    .unwrap(),
                want
            );
        }
        let p = FdPath::new(7, b"/upper");
        let s = std::ffi::CStr::from_bytes_until_nul(&p.0).unwrap();
        assert_eq!(s.to_bytes(), b"/proc/self/fd/7/upper");
        let p = FdPath::new(i32::MAX, b"/a-very-long-suffix-that-is-cut");
        let s = std::ffi::CStr::from_bytes_until_nul(&p.0).unwrap();
        assert_eq!(s.to_bytes().len(), 47);
        assert!(s.to_bytes().starts_with(b"/proc/self/fd/2147483647/a-very"));
    }
}
