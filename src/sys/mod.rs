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

#[cfg(feature = "image")]
pub(crate) mod fs;
pub(crate) mod mount;
#[cfg(feature = "image")]
pub(crate) mod xattr;

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::Errno;
use libc::{c_long, c_void};

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
    waitid_pidfd_rusage(pidfd, options, None)
}

/// [`waitid_pidfd`], also filling in `rusage` when it reaps the child: the resource usage
/// of the child and of the descendants it waited for (the kernel's `RUSAGE_BOTH` of the
/// zombie). `rusage` is left as it was when nothing was reaped (`WNOHANG`).
///
/// Through the raw system call: the kernel's `waitid` takes a fifth argument, a
/// `struct rusage *`, that glibc's `waitid(3)` wrapper does not pass on.
pub(crate) fn waitid_pidfd_rusage(
    pidfd: BorrowedFd<'_>,
    options: libc::c_int,
    mut rusage: Option<&mut libc::rusage>,
) -> Result<Option<libc::siginfo_t>, Errno> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let ru = rusage
            .as_deref_mut()
            .map_or(0, |r| r as *mut libc::rusage as usize);
        // SAFETY: `info` is a valid, writable siginfo_t and `ru` null or a valid, writable
        // `struct rusage` (libc's has the kernel's layout on x86_64 and aarch64: two timevals
        // of 64-bit fields and fourteen longs), both live for the call; the fd is borrowed.
        let r = unsafe {
            syscall6(
                libc::SYS_waitid,
                P_PIDFD as usize,
                pidfd.as_raw_fd() as usize,
                &mut info as *mut libc::siginfo_t as usize,
                (options | libc::WEXITED) as usize,
                ru,
                0,
            )
        };
        match r {
            Ok(_) => {
                // SAFETY: waitid filled in si_pid (0 when WNOHANG found nothing).
                let pid = unsafe { info.si_pid() };
                return Ok((pid != 0).then_some(info));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The wait status (as `waitpid` gives it) of a process that somebody else already reaped,
/// from its pidfd: `ioctl(PIDFD_GET_INFO)` with `PIDFD_INFO_EXIT` (Linux 6.15). `Ok(None)`
/// when the kernel does not keep it (older kernels: EINVAL or ENOTTY).
pub(crate) fn pidfd_exit_status(pidfd: BorrowedFd<'_>) -> Result<Option<i32>, Errno> {
    /// `struct pidfd_info`, version 0 (64 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct PidfdInfo {
        mask: u64,
        cgroupid: u64,
        ids: [u32; 11],
        exit_code: i32,
    }
    const PIDFD_INFO_EXIT: u64 = 1 << 3;
    // _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, struct pidfd_info)
    const PIDFD_GET_INFO: usize = 0xC000_0000 | (64 << 16) | (0xFF << 8) | 11;
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..Default::default()
    };
    // SAFETY: the ioctl fills in a local struct of the size encoded in the request.
    match unsafe {
        syscall3(
            libc::SYS_ioctl,
            pidfd.as_raw_fd() as usize,
            PIDFD_GET_INFO,
            &mut info as *mut PidfdInfo as usize,
        )
    } {
        Ok(_) if info.mask & PIDFD_INFO_EXIT != 0 => Ok(Some(info.exit_code)),
        Ok(_) | Err(Errno::EINVAL) | Err(Errno::ENOTTY) => Ok(None),
        Err(e) => Err(e),
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
///
/// Through the raw `rt_sigprocmask`: glibc's `pthread_sigmask` quietly leaves its own two
/// signals (SIGCANCEL and SIGSETXID, 32 and 33) unblocked, and a `setxid` broadcast from
/// another thread would then run glibc's handler in the child.
pub(crate) struct AllSignalsBlocked {
    old: u64,
}

impl AllSignalsBlocked {
    pub(crate) fn new() -> crate::Result<AllSignalsBlocked> {
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask with pointers to two local 8-byte sets.
        unsafe {
            syscall6(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as usize,
                &all as *const u64 as usize,
                &mut old as *mut u64 as usize,
                8,
                0,
                0,
            )
        }
        .map_err(|e| crate::Error::sys("rt_sigprocmask", e))?;
        Ok(AllSignalsBlocked { old })
    }
}

impl Drop for AllSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: as in `new`, restoring the saved set.
        let _ = unsafe {
            syscall6(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as usize,
                &self.old as *const u64 as usize,
                0,
                8,
                0,
                0,
            )
        };
    }
}

/// A stack for a cloned child: an anonymous mapping with an inaccessible guard page at the
/// bottom, so an overflow faults instead of writing into whatever lies below. Unmapped on drop:
/// keep it until the child has exec'd or exited.
///
/// The guard is one page of the running kernel (4 KiB, 16 KiB or 64 KiB), added below the
/// usable size, so the usable part is what was asked for on every page size.
#[derive(Debug)]
pub(crate) struct Stack {
    base: *mut c_void,
    size: usize,
}

impl Stack {
    /// `size` usable bytes; `what` names it in errors.
    pub(crate) fn new(size: usize, what: &'static str) -> crate::Result<Stack> {
        // SAFETY: sysconf takes no pointers.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => 4096,
        };
        Stack::with_page_size(size, page, what)
    }

    fn with_page_size(size: usize, page: usize, what: &'static str) -> crate::Result<Stack> {
        let usable = size.div_ceil(page) * page;
        let total = usable + page;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(crate::Error::sys(what, Errno::last()));
        }
        let stack = Stack { base, size: total };
        // SAFETY: the lowest page of our own mapping becomes inaccessible.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
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

/// The entries of the directory `dir` (without `.` and `..`) with their `d_type` (`DT_DIR`,
/// ..., `DT_UNKNOWN` where the filesystem does not say), through `fdopendir` on a fresh
/// descriptor of it (`O_NOFOLLOW`), so that `dir`'s own offset is untouched.
pub(crate) fn read_dir(dir: libc::c_int) -> Result<Vec<(std::ffi::CString, u8)>, Errno> {
    use std::os::fd::IntoRawFd;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: "." is a NUL-terminated string; the result is checked.
    let raw = unsafe { libc::openat(dir, c".".as_ptr(), flags) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `raw` is a new descriptor of ours.
    let raw = unsafe { OwnedFd::from_raw_fd(raw) }.into_raw_fd();
    // SAFETY: `raw` is an open directory descriptor we own; on success the DIR owns it.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let e = Errno::last();
        // SAFETY: fdopendir failed, so we still own `raw`; wrapping it closes it on drop.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(e);
    }
    let mut out = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: `dirp` is a valid DIR* that only this function uses.
        let ent = unsafe { libc::readdir(dirp) };
        if ent.is_null() {
            break match Errno::last().raw() {
                0 => Ok(()),
                e => Err(Errno::from_raw(e)),
            };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated; it stays
        // valid until the next readdir/closedir, and it is copied before that.
        let (name, d_type) = unsafe {
            (
                std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()),
                (*ent).d_type,
            )
        };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            out.push((name.to_owned(), d_type));
        }
    };
    // SAFETY: `dirp` is valid and not used after this; closedir closes `raw`.
    unsafe { libc::closedir(dirp) };
    result.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::{AllSignalsBlocked, FdPath, Stack};

    /// The calling thread's blocked set, read with the raw syscall.
    fn blocked() -> u64 {
        let mut set: u64 = 0;
        // SAFETY: rt_sigprocmask reading into a local 8-byte set.
        unsafe {
            super::syscall6(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK as usize,
                0,
                &mut set as *mut u64 as usize,
                8,
                0,
                0,
            )
        }
        .unwrap();
        set
    }

    #[test]
    fn all_signals_blocked_includes_glibc_s_own_and_comes_back() {
        std::thread::spawn(|| {
            let before = blocked();
            {
                let _guard = AllSignalsBlocked::new().unwrap();
                let now = blocked();
                // SIGCANCEL (32) and SIGSETXID (33), which pthread_sigmask leaves out; the
                // kernel never reports SIGKILL and SIGSTOP as blocked.
                for sig in [32, 33, libc::SIGTERM, libc::SIGCHLD, 64] {
                    assert_ne!(
                        now & (1 << (sig - 1)),
                        0,
                        "signal {sig} not blocked: {now:#x}"
                    );
                }
            }
            assert_eq!(blocked(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_stack_guard_is_a_page_of_the_kernel_s_size_below_the_usable_part() {
        // A 64 KiB-page kernel: before, the guard was 4 KiB and a 64 KiB stack was all
        // guard once the kernel rounded the mprotect up to its page.
        let s = Stack::with_page_size(64 * 1024, 64 * 1024, "test").unwrap();
        assert_eq!(s.size(), 128 * 1024);
        // SAFETY: the usable part of our own mapping: from base + one page to the top.
        unsafe {
            let lowest_usable = s.base().cast::<u8>().add(64 * 1024);
            lowest_usable.write_volatile(1);
            s.top().cast::<u8>().sub(1).write_volatile(2);
        }
        let s = Stack::new(256 * 1024, "test").unwrap();
        assert!(s.size() > 256 * 1024);
    }

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
