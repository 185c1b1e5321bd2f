//! `contain-init`: the PID 1 that `Container::init(true)` execs from a sealed memfd.
//!
//! A freestanding static program (no libc, no allocator, no std) that `build.rs` compiles and
//! the library embeds. It holds nothing of the process that spawned the container: not its
//! memory (this is a fresh `execve`), not its descriptors (all but stdio and the error pipe
//! were closed before exec), and `/proc/1/exe` is a sealed memfd, not the caller's binary.
//!
//! Command line, prepared by the library:
//!
//! ```text
//! contain-init ERRFD [probe] PATH... -- ARGV0 ARG...
//! contain-init ERRFD pause
//! contain-init ERRFD standby SOCKFD
//! ```
//!
//! - `ERRFD`: the spawn's error pipe (decimal). It is made close-on-exec here, so the payload's
//!   successful `execve` closes it; this process closes its own copy after the fork.
//! - `probe`: when present, a path whose exec fails with ENOENT is looked at (newfstatat,
//!   openat, read of its first bytes), so that the report says whether the file exists and
//!   names a script's `#!` interpreter. The library leaves it out under the caller's own
//!   seccomp program, which may kill on those syscalls (a killed payload would read as one
//!   that exec'd).
//! - `PATH...`: where to look for the payload, tried in order as `execvp` does (each contains
//!   a `/`, so none is `--`).
//! - `ARGV0 ARG...`: the payload's argv. Its environment is this program's.
//!
//! Every signal is blocked on entry (the library keeps them blocked from clone to here), so
//! nothing arrives asynchronously: PID 1 takes them all with `rt_sigtimedwait`, reaps every
//! zombie on SIGCHLD and passes every other signal on to the payload. When the payload ends,
//! PID 1 exits with its status (128+N for a signal N, since PID 1 cannot be killed by its own
//! signals); the kernel then kills whatever else is left in the PID namespace.
//!
//! With `pause` there is no payload: this program only holds the PID namespace (and with it
//! the container's other namespaces) for a slot of the library's `Pool`, as a pod's pause
//! container does. It closes `ERRFD` (the library reads EOF: started), reaps every zombie on
//! SIGCHLD (the processes later entered into the slot are its children's peers, and their
//! orphans become its children), exits 0 on SIGTERM or SIGINT and ignores every other signal.
//!
//! With `standby` this program is a pool slot's standby process: already set up as the
//! slot's requests are (namespaces, cgroup, identity, capabilities, seccomp filter, rlimits),
//! it closes `ERRFD` and waits for one request on `SOCKFD` (the layout in `standby.rs`): the
//! program's candidate paths, argv, environment and stdio. It puts the stdio in place, opens
//! its signal mask and execs the payload itself, with no fork: the request costs the library
//! one message and an `execve`. Its exec failures go to `SOCKFD` as below; end-of-file on
//! `SOCKFD` before any request (the slot went unused) ends it with 0.
//!
//! If the payload cannot be executed, it writes the library's setup report (stage `Exec`,
//! errno, the candidate path's index, what was found there, and a script's interpreter: the
//! layout of `probe.rs`, shared with the library) to `ERRFD` in one write and exits 127,
//! exactly as a payload without an init would.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

mod probe;
mod standby;
use probe::{INTERP_SIZE, EXEC_INDEXED, EXEC_MISSING, EXEC_OTHER, EXEC_UNKNOWN};

/// `SetupStage::Exec` as the library encodes it on the error pipe (checked by a unit test
/// in the library).
const STAGE_EXEC: u32 = 20;
/// The argument that allows probing (the library's `init::PROBE`).
const PROBE: &[u8] = b"probe";
/// The argument that makes this program hold its namespaces and run nothing (the library's
/// `init::PAUSE`).
const PAUSE: &[u8] = b"pause";
/// The argument that makes this program wait for one request (the library's `init::STANDBY`).
const STANDBY: &[u8] = b"standby";
const SIGINT: usize = 2;
const SIGTERM: usize = 15;
/// Exit status when the payload could not be executed (the library's `SETUP_FAILED_EXIT`).
const SETUP_FAILED_EXIT: usize = 127;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const OPENAT: usize = 257;
    pub const FACCESSAT: usize = 269;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const CLONE: usize = 56;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const FCNTL: usize = 72;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const EXIT_GROUP: usize = 231;
    pub const RECVMSG: usize = 47;
    pub const DUP3: usize = 292;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const CLOSE: usize = 57;
    pub const OPENAT: usize = 56;
    pub const FACCESSAT: usize = 48;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const FCNTL: usize = 25;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const EXIT_GROUP: usize = 94;
    pub const RECVMSG: usize = 212;
    pub const DUP3: usize = 24;
}

const SIGCHLD: usize = 17;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const WNOHANG: usize = 1;
const ENOENT: isize = 2;
const EACCES: isize = 13;
const ENOTDIR: isize = 20;
const ENODEV: isize = 19;
const ESTALE: isize = 116;
const ETIMEDOUT: isize = 110;
const EINVAL: isize = 22;
const EINTR: isize = 4;
const EPROTO: isize = 71;
const E2BIG: isize = 7;
// recvmsg(2)'s flags, and SCM_RIGHTS (same values on x86_64 and aarch64).
const MSG_CMSG_CLOEXEC: usize = 0x4000_0000;
const MSG_TRUNC: i32 = 0x20;
const MSG_CTRUNC: i32 = 0x8;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const AT_FDCWD: isize = -100;
// O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC (same values on x86_64 and aarch64).
const PROBE_OPEN_FLAGS: usize = 0o400 | 0o4000 | 0o2000000;

/// A raw system call; returns the kernel's value (`-errno` on failure).
#[inline(always)]
unsafe fn syscall(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the Linux x86_64 syscall convention; the caller upholds the call's contract.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    // SAFETY: the Linux aarch64 syscall convention, as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2, in("x2") a3, in("x3") a4,
            options(nostack)
        );
    }
    ret
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes no pointers and does not return.
        unsafe { syscall(nr::EXIT_GROUP, code, 0, 0, 0) };
    }
}

// The ELF entry point: the kernel leaves argc at the stack pointer, then argv, NULL, envp,
// NULL. Hand that address to `main` with an ABI-aligned stack and no return address.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym main,
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, sp",
    "bl {main}",
    "brk #1",
    main = sym main,
);

/// A NUL-terminated string at `p` compared with `s` (without its NUL).
unsafe fn is(p: *const u8, s: &[u8]) -> bool {
    for (i, &b) in s.iter().enumerate() {
        // SAFETY: `p` is NUL-terminated; we stop at the first difference, so at its NUL.
        if unsafe { *p.add(i) } != b {
            return false;
        }
    }
    // SAFETY: all of `s` matched, so `p` has at least `s.len()` bytes before its NUL.
    unsafe { *p.add(s.len()) == 0 }
}

/// Parses a small decimal number; `None` for anything else.
unsafe fn number(p: *const u8) -> Option<usize> {
    let mut n: usize = 0;
    let mut i = 0;
    loop {
        // SAFETY: `p` is NUL-terminated and we stop at the NUL.
        let b = unsafe { *p.add(i) };
        match b {
            0 if i > 0 => return Some(n),
            b'0'..=b'9' if i < 9 => n = n * 10 + (b - b'0') as usize,
            _ => return None,
        }
        i += 1;
    }
}

/// The report: the library's `child::Report` (16-byte head, then the interpreter field).
#[repr(C)]
struct Report {
    head: [u32; 4],
    interpreter: [u8; INTERP_SIZE],
}

/// Writes the setup report for a failed exec (in one write, under PIPE_BUF) and exits 127.
#[inline(never)]
fn report(errfd: usize, errno: isize, index: u32, step: u32, interp: &[u8; INTERP_SIZE]) -> ! {
    let r = Report {
        head: [STAGE_EXEC, errno as u32, index, step],
        interpreter: *interp,
    };
    let size = core::mem::size_of::<Report>();
    // SAFETY: a local struct to a descriptor we were given.
    unsafe { syscall(nr::WRITE, errfd, &r as *const Report as usize, size, 0) };
    exit(SETUP_FAILED_EXIT)
}

/// What is at `path` (a `probe::EXEC_*` code); a script's interpreter goes to `interp`. As the
/// library's child does: newfstatat, then, for a regular file, its first bytes.
#[inline(never)]
unsafe fn look(path: *const u8, interp: &mut [u8; INTERP_SIZE]) -> u32 {
    *interp = [0; INTERP_SIZE];
    // SAFETY (whole function): a NUL-terminated path; a local buffer; close of our own fd.
    unsafe {
        let mut st = [0u64; probe::STAT_WORDS];
        let e = syscall(
            probe::NR_NEWFSTATAT,
            AT_FDCWD as usize,
            path as usize,
            st.as_mut_ptr() as usize,
            0,
        );
        if e == -ENOENT || e == -ENOTDIR {
            return EXEC_MISSING;
        } else if e < 0 {
            return EXEC_UNKNOWN;
        }
        // Only a regular file is opened: a FIFO's or a device's open has effects.
        if !probe::is_regular(&st) {
            return EXEC_OTHER;
        }
        let fd = syscall(nr::OPENAT, AT_FDCWD as usize, path as usize, PROBE_OPEN_FLAGS, 0);
        if fd < 0 {
            return EXEC_OTHER;
        }
        let mut head = [0u8; INTERP_SIZE];
        let got = syscall(nr::READ, fd as usize, head.as_mut_ptr() as usize, INTERP_SIZE, 0);
        syscall(nr::CLOSE, fd as usize, 0, 0, 0);
        if got < 0 {
            return EXEC_OTHER;
        }
        let step = probe::classify(&head, got as usize, interp);
        // An interpreter that exists fails only for want of its own interpreter or loader
        // (`interp` is NUL-ended: classify leaves its last byte 0).
        if probe::check_interpreter(step, interp)
            && syscall(nr::FACCESSAT, AT_FDCWD as usize, interp.as_ptr() as usize, 0, 0) == 0
        {
            step | probe::EXEC_INTERP_EXISTS
        } else {
            step
        }
    }
}

/// `execvp`'s choice of error over the candidate paths, and the library's choice of which to
/// report: the first that exists although execve said ENOENT (its interpreter or loader is
/// missing), else an EACCES one, else the last error. Writes the report and exits.
unsafe fn exec_payload(
    errfd: usize,
    may_probe: bool,
    paths: &[*const u8],
    argv: *const *const u8,
    envp: *const *const u8,
) -> ! {
    let mut interp = [0u8; INTERP_SIZE];
    let look_at = |path: *const u8, interp: &mut [u8; INTERP_SIZE]| match may_probe {
        // SAFETY: one of our NUL-terminated argv strings.
        true => unsafe { look(path, interp) },
        false => EXEC_UNKNOWN,
    };
    // Candidates are kept with their paths, not indexed again (no bounds checks, which
    // would bring in core's formatting machinery: this program stays small).
    // `main` passes at least one path; the null one is never probed (`err` is set by then).
    let mut err = (ENOENT, 0usize, core::ptr::null::<u8>());
    let mut eacces: Option<(usize, *const u8)> = None;
    let mut broken: Option<(usize, u32)> = None;
    for (i, &path) in paths.iter().enumerate() {
        // SAFETY: NUL-terminated path, NULL-terminated argv and envp from our own stack.
        let e = -unsafe { syscall(nr::EXECVE, path as usize, argv as usize, envp as usize, 0) };
        match e {
            ENOENT if broken.is_none() => {
                err = (e, i, path);
                let found = look_at(path, &mut interp);
                if found != EXEC_MISSING && found != EXEC_UNKNOWN {
                    broken = Some((i, found));
                }
            }
            ENOENT | ENOTDIR | ESTALE | ENODEV | ETIMEDOUT => err = (e, i, path),
            EACCES => {
                eacces.get_or_insert((i, path));
            }
            other => {
                let found = look_at(path, &mut interp);
                report(errfd, other, i as u32, found | EXEC_INDEXED, &interp)
            }
        }
    }
    let (errno, index, found) = match (eacces, broken) {
        (Some((i, path)), _) => (EACCES, i, look_at(path, &mut interp)),
        (None, Some((i, found))) => (ENOENT, i, found),
        (None, None) => (err.0, err.1, look_at(err.2, &mut interp)),
    };
    report(errfd, errno, index as u32, found | EXEC_INDEXED, &interp)
}

unsafe extern "C" fn main(sp: *const usize) -> ! {
    // SAFETY (whole function): the layout the kernel gives a new program: argc, then argc
    // pointers, NULL, then the environment, NULL.
    unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        // The library starts us with every signal blocked; block them here too, so that a
        // PID 1 started any other way cannot lose a SIGCHLD to its default disposition.
        let all: u64 = !0;
        syscall(nr::RT_SIGPROCMASK, 2 /* SIG_SETMASK */, &all as *const u64 as usize, 0, 8);
        if argc == 3 && is(*argv.add(2), PAUSE) {
            let Some(errfd) = number(*argv.add(1)) else {
                exit(SETUP_FAILED_EXIT)
            };
            syscall(nr::CLOSE, errfd, 0, 0, 0);
            pause()
        }
        if argc == 4 && is(*argv.add(2), STANDBY) {
            let (Some(errfd), Some(sock)) = (number(*argv.add(1)), number(*argv.add(3))) else {
                exit(SETUP_FAILED_EXIT)
            };
            // The payload's successful exec must close the socket: that is its answer.
            syscall(nr::FCNTL, sock, F_SETFD, FD_CLOEXEC, 0);
            syscall(nr::CLOSE, errfd, 0, 0, 0);
            standby(sock)
        }
        if argc < 4 {
            exit(SETUP_FAILED_EXIT);
        }
        let Some(errfd) = number(*argv.add(1)) else {
            exit(SETUP_FAILED_EXIT)
        };
        let mut i = 2;
        while i < argc && !is(*argv.add(i), b"--") {
            i += 1;
        }
        let no_interp = [0u8; INTERP_SIZE];
        let may_probe = is(*argv.add(2), PROBE);
        let first = if may_probe { 3 } else { 2 };
        if i <= first || i + 1 >= argc {
            report(errfd, EINVAL, 0, 0, &no_interp);
        }
        let paths = core::slice::from_raw_parts(argv.add(first), i - first);
        let payload_argv = argv.add(i + 1);
        // The payload's successful exec must close its copy of the error pipe.
        syscall(nr::FCNTL, errfd, F_SETFD, FD_CLOEXEC, 0);

        let pid = syscall(nr::CLONE, SIGCHLD, 0, 0, 0);
        if pid < 0 {
            report(errfd, -pid, 0, 0, &no_interp);
        }
        if pid == 0 {
            let empty: u64 = 0;
            syscall(
                nr::RT_SIGPROCMASK,
                2, /* SIG_SETMASK */
                &empty as *const u64 as usize,
                0,
                8,
            );
            exec_payload(errfd, may_probe, paths, payload_argv, envp);
        }
        syscall(nr::CLOSE, errfd, 0, 0, 0);
        supervise(pid)
    }
}

/// `struct msghdr` (the same layout on x86_64 and aarch64).
#[repr(C)]
struct MsgHdr {
    name: usize,
    name_len: u32,
    iov: *const [usize; 2],
    iov_len: usize,
    control: *mut u64,
    control_len: usize,
    flags: i32,
}

/// The request's strings (paths, argv and environment), read by `standby`.
static mut MESSAGE: [u8; standby::MAX_MESSAGE] = [0; standby::MAX_MESSAGE];
/// Pointers into [`MESSAGE`]: the paths, argv and a NULL, the environment and a NULL.
static mut POINTERS: [*const u8; standby::MAX_STRINGS + 2] =
    [core::ptr::null(); standby::MAX_STRINGS + 2];

/// The `standby` mode: waits for one request on `sock` and execs it (see the top of this file).
unsafe fn standby(sock: usize) -> ! {
    // The standby's own failures (the message, the stdio): reported as the exec's, with
    // no path or interpreter.
    let fail = |errno: isize| -> ! { report(sock, errno, 0, 0, &[0u8; INTERP_SIZE]) };
    // SAFETY (whole function): the message lands in our own static buffer, and every read of
    // it below stays within the `got` bytes received; the pointers written stay within
    // POINTERS (at most MAX_STRINGS strings, plus two NULLs). This process has one thread.
    unsafe {
        let message = &raw mut MESSAGE as *mut u8;
        let pointers = &raw mut POINTERS as *mut *const u8;
        let iov = [message as usize, standby::MAX_MESSAGE];
        // A cmsghdr (16 bytes) and three descriptors, rounded up to 8.
        let mut control = [0u64; 4];
        let mut msg = MsgHdr {
            name: 0,
            name_len: 0,
            iov: &iov,
            iov_len: 1,
            control: control.as_mut_ptr(),
            control_len: core::mem::size_of_val(&control),
            flags: 0,
        };
        let got = loop {
            let n = syscall(
                nr::RECVMSG,
                sock,
                &mut msg as *mut MsgHdr as usize,
                MSG_CMSG_CLOEXEC,
                0,
            );
            if n != -EINTR {
                break n;
            }
        };
        if got == 0 {
            exit(0);
        }
        if got < 0 {
            fail(-got);
        }
        if msg.flags & (MSG_TRUNC | MSG_CTRUNC) != 0 {
            fail(E2BIG);
        }
        let got = got as usize;
        if got < standby::HEAD {
            fail(EPROTO);
        }
        let head = message as *const u32;
        let paths = head.read_unaligned() as usize;
        let args = head.add(1).read_unaligned() as usize;
        let envs = head.add(2).read_unaligned() as usize;
        let streams = head.add(3).read_unaligned() as usize;
        if paths == 0 || args == 0 || paths + args + envs > standby::MAX_STRINGS || streams > 7 {
            fail(EPROTO);
        }
        // The strings: each starts where the last ended; all of the message is used.
        let mut at = standby::HEAD;
        let mut slot = 0;
        for n in 0..paths + args + envs {
            if n == paths + args {
                *pointers.add(slot) = core::ptr::null();
                slot += 1;
            }
            *pointers.add(slot) = message.add(at);
            slot += 1;
            while at < got && *message.add(at) != 0 {
                at += 1;
            }
            if at == got {
                fail(EPROTO);
            }
            at += 1;
        }
        if envs == 0 {
            *pointers.add(slot) = core::ptr::null();
            slot += 1;
        }
        *pointers.add(slot) = core::ptr::null();
        if at != got {
            fail(EPROTO);
        }
        // The descriptors, in stream order.
        let wanted = (streams & 1) + (streams >> 1 & 1) + (streams >> 2 & 1);
        let cmsg = control.as_ptr() as *const u8;
        let cmsg_len = (cmsg as *const usize).read();
        let received = match msg.control_len {
            0 => 0,
            _ if cmsg_len >= 16
                && (cmsg.add(8) as *const i32).read() == SOL_SOCKET
                && (cmsg.add(12) as *const i32).read() == SCM_RIGHTS =>
            {
                (cmsg_len - 16) / 4
            }
            _ => usize::MAX,
        };
        if received != wanted {
            fail(EPROTO);
        }
        let fds = cmsg.add(16) as *const i32;
        let mut next = 0;
        for stream in 0..3usize {
            if streams >> stream & 1 == 0 {
                syscall(nr::CLOSE, stream, 0, 0, 0);
                continue;
            }
            // Received close-on-exec and numbered above 2 (0 to 2 are open): dup3 makes the
            // stream's copy without the flag.
            let fd = fds.add(next).read() as usize;
            next += 1;
            let e = syscall(nr::DUP3, fd, stream, 0, 0);
            if e < 0 {
                fail(-e);
            }
            syscall(nr::CLOSE, fd, 0, 0, 0);
        }
        // Signals sent to the waiting standby (a host's `kill -TERM -1`) are not the
        // request's: dropped before the mask opens.
        drain_signals();
        let empty: u64 = 0;
        syscall(
            nr::RT_SIGPROCMASK,
            2, /* SIG_SETMASK */
            &empty as *const u64 as usize,
            0,
            8,
        );
        let paths = core::slice::from_raw_parts(pointers as *const *const u8, paths);
        let argv = pointers.add(paths.len()) as *const *const u8;
        let envp = pointers.add(paths.len() + args + 1) as *const *const u8;
        exec_payload(sock, true, paths, argv, envp)
    }
}

/// Takes every pending signal off the queue, without waiting (`rt_sigtimedwait` with a zero
/// timeout, until it says EAGAIN).
fn drain_signals() {
    let all: u64 = !0;
    let zero = [0u64; 2];
    let mut info = core::mem::MaybeUninit::<[u64; 16]>::uninit();
    // SAFETY: a local sigset, siginfo buffer (128 bytes) and zero timespec.
    while unsafe {
        syscall(
            nr::RT_SIGTIMEDWAIT,
            &all as *const u64 as usize,
            info.as_mut_ptr() as usize,
            zero.as_ptr() as usize,
            8,
        )
    } > 0
    {}
}

/// Takes every signal; the next one in `sig`'s place (`rt_sigtimedwait` with no timeout).
fn next_signal(info: &mut core::mem::MaybeUninit<[u64; 16]>) -> isize {
    // Every signal (the kernel ignores the bits of SIGKILL and SIGSTOP).
    let all: u64 = !0;
    // SAFETY: a local sigset and a siginfo buffer (128 bytes); no timeout (NULL).
    unsafe {
        syscall(
            nr::RT_SIGTIMEDWAIT,
            &all as *const u64 as usize,
            info.as_mut_ptr() as usize,
            0,
            8,
        )
    }
}

/// Reaps every zombie there is now; returns the last wait status of `payload` if it was one.
fn reap_all(payload: isize) -> Option<i32> {
    let mut ended = None;
    loop {
        let mut status: i32 = 0;
        // SAFETY: wait4(-1) into a local status word.
        let reaped = unsafe {
            syscall(
                nr::WAIT4,
                usize::MAX,
                &mut status as *mut i32 as usize,
                WNOHANG,
                0,
            )
        };
        if reaped <= 0 {
            return ended;
        }
        if reaped == payload {
            ended = Some(status);
        }
    }
}

/// The `pause` mode: holds the namespaces, reaps orphans, ends on SIGTERM or SIGINT.
fn pause() -> ! {
    let mut info = core::mem::MaybeUninit::<[u64; 16]>::uninit();
    loop {
        match next_signal(&mut info) as usize {
            SIGCHLD => {
                reap_all(0);
            }
            SIGTERM | SIGINT => exit(0),
            _ => {}
        }
    }
}

/// Reaps zombies and forwards signals until `payload` ends, then exits with its status.
fn supervise(payload: isize) -> ! {
    let mut info = core::mem::MaybeUninit::<[u64; 16]>::uninit();
    loop {
        let sig = next_signal(&mut info);
        if sig <= 0 {
            continue;
        }
        if sig as usize != SIGCHLD {
            // SAFETY: kill with integer arguments.
            unsafe { syscall(nr::KILL, payload as usize, sig as usize, 0, 0) };
            continue;
        }
        if let Some(status) = reap_all(payload) {
            let code = if status & 0x7f == 0 {
                (status >> 8) & 0xff
            } else {
                128 + (status & 0x7f)
            };
            exit(code as usize);
        }
    }
}

// Without libc, nothing provides the memory functions that the compiler calls for array
// copies and clears (the report's interpreter field). Byte loops through volatile accesses,
// which the optimizer cannot turn back into calls to these very functions.
#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller passes `n` valid bytes at both, not overlapping.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller passes `n` valid bytes at `dst`.
        unsafe { core::ptr::write_volatile(dst.add(i), c as u8) };
    }
    dst
}

/// The precompiled `core` refers to the unwinder's personality routine even with
/// `panic=abort`; nothing here unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(SETUP_FAILED_EXIT)
}
