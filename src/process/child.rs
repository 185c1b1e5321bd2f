//! Code that runs in the new process between `clone` and `execve`.
//!
//! The child shares the parent's memory (`CLONE_VM`), including the parent thread's TLS and
//! heap, so everything here is async-signal-safe in the strictest sense: it reads the
//! [`ChildPlan`] the parent prepared, enters the kernel only through [`sys::syscall6`] (no
//! `errno`), allocates nothing, takes no lock, formats nothing, and ends in `execve` or
//! `exit_group`. A failing step is written to the error pipe as `(stage, errno)`.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_char, c_void};

use super::sysctl::PreparedSysctl;
use super::timing;
use crate::error::SetupStage;
use crate::mount::apply::{create_in_root, open};
use crate::mount::MountStep;
use crate::rootfs::{self, PreparedRootfs};
use crate::security::{CapData, PreparedSecurity};
use crate::sys;
use crate::Errno;

/// Exit status of a child that failed before exec (the parent reports the error instead).
pub(crate) const SETUP_FAILED_EXIT: usize = 127;

/// Everything the child needs, prepared by the parent before clone. Borrowed from data that
/// lives in the parent's `spawn` frame until the child has exec'd or died.
pub(crate) struct ChildPlan<'a> {
    /// Write end of the error pipe (close-on-exec).
    pub err_fd: RawFd,
    /// Read end of the go-ahead pipe (close-on-exec).
    pub go_fd: RawFd,
    /// The exec fifo of [`Container::create`](super::Container::create), open read-write
    /// (kept through the close before exec, closed once read), or -1: park before exec until
    /// `start` writes a byte to it.
    pub park_fd: RawFd,
    /// With `park_fd`: the child's end of the socket its creator releases it by (a byte, at
    /// `Created::detach` or `start`) before it parks; end of file there means the creator
    /// is gone without having released it, and the child exits. Kept like `park_fd`.
    pub hold_fd: RawFd,
    /// The parent's ends of both pipes, which the child closes in fork mode.
    pub parent_fds: [RawFd; 2],
    /// Block until the parent writes the go-ahead byte (id maps, cgroup placement).
    pub wait_for_go: bool,
    /// Make the process non-dumpable before anything else: it is born into a PID namespace
    /// it joins, where the container's processes can see it (see [`make_undumpable`]).
    pub undumpable: bool,
    /// Make the new cgroup namespace after the go-ahead (the parent placed us in the cgroup).
    pub unshare_cgroup_ns: bool,
    /// `PR_SET_PDEATHSIG` signal, 0 for none.
    pub parent_death_signal: i32,
    /// Namespaces to join: (fd, CLONE_NEW* type), user namespace first.
    pub join: &'a [(RawFd, i32)],
    /// Supplementary groups to set; `None` leaves them alone.
    pub groups: Option<&'a [libc::gid_t]>,
    /// `setresgid` target.
    pub gid: Option<libc::gid_t>,
    /// `setresuid` target.
    pub uid: Option<libc::uid_t>,
    /// `sethostname` argument.
    pub hostname: Option<&'a [u8]>,
    /// `setdomainname` argument.
    pub domainname: Option<&'a [u8]>,
    /// The container's root filesystem, assembled before the credential switch.
    pub rootfs: Option<&'a PreparedRootfs>,
    /// `chdir` target.
    pub cwd: Option<&'a CStr>,
    /// (source, target) descriptor moves; every source is above every target.
    pub fd_moves: &'a [(RawFd, RawFd)],
    /// Descriptors ≥ 3 that survive the close before exec, sorted ascending: the passed
    /// targets, the error pipe (close-on-exec) and the init's memfd (close-on-exec).
    pub keep_fds: &'a [RawFd],
    /// Upper bound for the close loop when `close_range` is missing.
    pub fd_limit: RawFd,
    /// Capabilities, no_new_privs, seccomp, rlimits, session.
    pub security: &'a PreparedSecurity,
    /// Exec `contain-init` as PID 1, which forks and execs the payload.
    pub init: Option<InitPlan>,
    /// Switch to uid and gid 0 of the new user namespace before anything is mounted.
    pub become_namespace_root: bool,
    /// Make fd 0 (a pty slave) the controlling terminal after `setsid`.
    pub tty: bool,
    /// Bring `lo` up in the new network namespace (rtnetlink, from inside).
    pub loopback_up: bool,
    /// With a rootfs, the pty is opened here, in the container's own devpts (so that its
    /// name resolves inside), and its master sent to the parent over this socket; -1 else.
    pub pty_socket: RawFd,
    /// The pty's first window size.
    pub winsize: libc::winsize,
    /// Whether the child holds CAP_SETPCAP (root, or a new user namespace) and so must
    /// shrink the bounding set; an unprivileged caller's child has no capabilities to drop.
    pub privileged: bool,
    /// Full paths to try in order (a PATH search prepared by the parent).
    pub exec_paths: &'a [*const c_char],
    /// NULL-terminated argv.
    pub argv: *const *const c_char,
    /// NULL-terminated envp.
    pub envp: *const *const c_char,
    /// The command's umask.
    pub umask: u32,
    /// Sysctls to write once in the new namespaces.
    pub sysctls: &'a [PreparedSysctl],
    /// With a rootfs, the working directory to create if it is missing.
    pub workdir: Option<&'a WorkdirPlan>,
    /// The (uid, gid) the container ends as (`u32::MAX`: unchanged; `None`: neither set):
    /// fds 0-2 are given to them before the identity switch, and so are the levels of the
    /// working directory that the child creates.
    pub stdio_owner: Option<(u32, u32)>,
    /// Fds 0-2 are the slave of a pty the parent opened for this container.
    pub own_pty_stdio: bool,
    /// The working directory must be inside the root after chdir: the child has a root of
    /// its own (a rootfs, or a mount namespace entered with `Container::enter`).
    pub cwd_in_root: bool,
    /// A rootless `Container::enter` of a PID namespace: after the namespaces (the PID one
    /// among them, for children), fork the process that runs the command (`CLONE_PARENT`)
    /// and send its pid and pidfd to the parent over this socket, then exit; -1 else.
    pub fork_socket: RawFd,
    /// The persona for personality(2) ([`Container::personality`](super::Container::personality)).
    pub personality: Option<u32>,
    /// Where the child records the end of its stages (memory shared with the parent), or
    /// null: [`Container::timing`](super::Container::timing) is off.
    pub stamps: *const super::timing::ChildStamps,
}

/// The working directory inside a rootfs, prepared for creating what is missing of it.
#[derive(Debug)]
pub(crate) struct WorkdirPlan {
    /// Normalized, relative to the root (`a/b/c`), no `.` or `..`.
    pub rel: std::ffi::CString,
}

/// The `step` of a sysctl report: its `/proc/sys` file could not be opened.
pub(crate) const SYSCTL_OPEN: u32 = 0;
/// The `step` of a sysctl report: the value could not be written (or only in part).
pub(crate) const SYSCTL_WRITE: u32 = 1;

/// The `step` of a working-directory report: a missing level could not be created.
pub(crate) const CWD_CREATE: u32 = 2;
/// The `step` of a working-directory report: a level could not be opened inside the root.
pub(crate) const CWD_OPEN: u32 = 3;
/// The `step` of a working-directory report: a new level could not be given to the user.
pub(crate) const CWD_CHOWN: u32 = 4;

/// How to exec the init: its sealed memfd and its argv (`contain-init ERRFD [probe] PATH... --
/// ARGV...`, see `init/program.rs`).
pub(crate) struct InitPlan {
    /// The memfd holding `contain-init` (close-on-exec; `execveat(AT_EMPTY_PATH)` runs it).
    pub memfd: RawFd,
    /// NULL-terminated argv for the init.
    pub argv: *const *const c_char,
}

/// A failed setup step as the child reports it: 16 bytes on the error pipe (followed by the
/// interpreter field, see [`Report`]). `index` and `step` say more where the stage has parts
/// (which mount, which syscall of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct ChildError {
    pub stage: SetupStage,
    pub errno: Errno,
    pub index: u32,
    pub step: u32,
}

impl ChildError {
    pub(crate) const WIRE_SIZE: usize = 16;

    pub(crate) fn new(stage: SetupStage, errno: Errno) -> ChildError {
        ChildError {
            stage,
            errno,
            index: 0,
            step: 0,
        }
    }

    fn to_wire(self) -> [u32; 4] {
        [
            self.stage as u32,
            self.errno.raw() as u32,
            self.index,
            self.step,
        ]
    }

    /// The `#!` interpreter in a full report's trailing field (see [`Report`]): the bytes
    /// before the first NUL, `None` when empty.
    pub(crate) fn interpreter(field: &[u8]) -> Option<&[u8]> {
        let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        (len > 0).then(|| &field[..len])
    }

    /// Decodes a report; `None` for bytes no child of ours would send.
    pub(crate) fn from_wire(b: &[u8; Self::WIRE_SIZE]) -> Option<ChildError> {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(ChildError {
            stage: SetupStage::from_u32(word(0))?,
            errno: Errno::from_raw(word(4) as i32),
            index: word(8),
            step: word(12),
        })
    }
}

type Step = Result<(), ChildError>;

trait At<T> {
    fn at(self, stage: SetupStage) -> Result<T, ChildError>;
}

impl<T> At<T> for Result<T, Errno> {
    #[inline(always)]
    fn at(self, stage: SetupStage) -> Result<T, ChildError> {
        self.map_err(|e| ChildError::new(stage, e))
    }
}

/// The child's entry point, called by the clone trampoline on the child's own stack.
///
/// # Safety
/// `arg` points to a [`ChildPlan`] that stays valid until this process execs or exits.
pub(crate) unsafe extern "C" fn child_main(arg: *mut c_void) -> ! {
    // SAFETY: the parent passed a pointer to a live ChildPlan, and this is the freshly
    // cloned child `setup` requires.
    unsafe { run_and_report(arg, setup) }
}

/// The entry point of the process [`fork_into_pid_namespace`] forks (with `CLONE_PARENT`, a
/// child of the caller's, born in the entered PID namespace): the rest of the setup.
///
/// # Safety
/// `arg` points to a [`ChildPlan`] in this process's own copy of the parent's memory.
unsafe extern "C" fn forked_main(arg: *mut c_void) -> ! {
    // SAFETY: the forking process passed its plan pointer (the copy of its memory holds it),
    // and this is the freshly forked process `setup_forked` requires.
    unsafe { run_and_report(arg, setup_forked) }
}

/// The setup steps of one entry point.
type Steps = for<'a, 'b> unsafe fn(
    &'a ChildPlan<'b>,
    &mut [u8; INTERP_SIZE],
) -> Result<std::convert::Infallible, ChildError>;

/// Runs `steps` with the plan at `arg`; they return only on failure, which is reported.
///
/// # Safety
/// `arg` points to a live [`ChildPlan`], and this process is the one `steps` requires.
unsafe fn run_and_report(arg: *mut c_void, steps: Steps) -> ! {
    // SAFETY: as the caller guarantees.
    let plan = unsafe { &*(arg as *const ChildPlan<'_>) };
    let mut interpreter = [0u8; INTERP_SIZE];
    // SAFETY: as the caller guarantees.
    let head = match unsafe { steps(plan, &mut interpreter) } {
        Ok(never) => match never {},
        Err(e) => e.to_wire(),
    };
    // SAFETY: `plan.err_fd` is this process's error pipe.
    unsafe { report_and_exit(plan, head, interpreter) }
}

/// Writes a failed step's report to the error pipe and exits with 127.
///
/// # Safety
/// `plan.err_fd` is this process's error pipe.
unsafe fn report_and_exit(
    plan: &ChildPlan<'_>,
    head: [u32; 4],
    interpreter: [u8; INTERP_SIZE],
) -> ! {
    let report = Report { head, interpreter };
    // SAFETY: one write of a local struct (REPORT_SIZE <= PIPE_BUF, so atomic) to our error
    // pipe; if the write fails there is nobody left to tell, and the parent then sees EOF
    // plus an exit status of 127.
    unsafe {
        let _ = sys::syscall3(
            libc::SYS_write,
            plan.err_fd as usize,
            &report as *const Report as usize,
            REPORT_SIZE,
        );
        let _ = sys::syscall3(libc::SYS_exit_group, SETUP_FAILED_EXIT, 0, 0);
    }
    // exit_group does not return; if it somehow did, trap.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A full report: head and interpreter field, written in ONE write (at most `PIPE_BUF`, so
/// the parent never sees half of it). `contain-init` writes the same layout.
pub(crate) const REPORT_SIZE: usize = ChildError::WIRE_SIZE + INTERP_SIZE;
const _: () = assert!(REPORT_SIZE <= libc::PIPE_BUF);
const _: () = assert!(std::mem::size_of::<Report>() == REPORT_SIZE);

/// The bytes on the error pipe (no padding: 16 + 128 bytes, alignment 4).
#[repr(C)]
struct Report {
    head: [u32; 4],
    interpreter: [u8; INTERP_SIZE],
}

/// Kernel `struct sigaction` (not glibc's): handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Runs every setup step; returns only on failure.
///
/// # Safety
/// Must run in a child created by `spawn` with `plan` describing fds the child owns.
unsafe fn setup(
    plan: &ChildPlan<'_>,
    interpreter: &mut [u8; INTERP_SIZE],
) -> Result<std::convert::Infallible, ChildError> {
    // SAFETY (whole function): each step gets pointers into `plan` (live, see child_main) or
    // into locals, and fds the parent prepared for this child.
    unsafe {
        timing::stamp(plan.stamps, timing::STARTED);
        if plan.undumpable {
            make_undumpable()?;
        }
        reset_signal_handlers();
        // The caller's umask must not leak in; the rootfs assembly sets its own and puts this
        // one back.
        crate::sys::mount::umask(plan.umask);
        // In fork mode the parent's ends of the pipes were copied into this process; they must
        // go, or the parent's death would not show as EOF/HUP here.
        for fd in plan.parent_fds {
            if fd >= 0 {
                let _ = sys::syscall3(libc::SYS_close, fd as usize, 0, 0);
            }
        }
        set_parent_death_signal(plan)?;
        if plan.wait_for_go {
            wait_for_parent(plan)?;
        }
        enter_namespaces(plan)?;
        timing::stamp(plan.stamps, timing::NAMESPACES);
        if plan.fork_socket >= 0 {
            return fork_into_pid_namespace(plan);
        }
        setup_inside(plan, interpreter)
    }
}

/// The setup of the process forked into an entered PID namespace: what a fork does not
/// inherit (the parent-death signal), then everything after the namespaces.
///
/// # Safety
/// As [`setup`], in the process [`fork_into_pid_namespace`] made.
unsafe fn setup_forked(
    plan: &ChildPlan<'_>,
    interpreter: &mut [u8; INTERP_SIZE],
) -> Result<std::convert::Infallible, ChildError> {
    // SAFETY: as in `setup`.
    unsafe {
        if plan.undumpable {
            make_undumpable()?;
        }
        set_parent_death_signal(plan)?;
        setup_inside(plan, interpreter)
    }
}

/// Enters the PID namespace a rootless caller cannot put its own children in (its thread
/// may not set `pid_for_children` without CAP_SYS_ADMIN in its own user namespace): this
/// process set it while entering the container's user namespace (`setns(pidfd, ...)` with
/// `CLONE_NEWPID`), and forks the process that runs the command, with `CLONE_PARENT` so that
/// the caller is its parent (it waits for it through the pidfd sent here). This process then
/// sends that pid and pidfd to the caller over `plan.fork_socket` and exits 0. Returns only
/// on failure.
///
/// # Safety
/// As [`setup`], after [`enter_namespaces`].
unsafe fn fork_into_pid_namespace(
    plan: &ChildPlan<'_>,
) -> Result<std::convert::Infallible, ChildError> {
    let mut pidfd: RawFd = -1;
    let mut args = sys::CloneArgs {
        flags: libc::CLONE_PARENT as u64 | sys::CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT, the exit signal is ours (SIGCHLD); clone3 wants 0 here.
        exit_signal: 0,
        ..Default::default()
    };
    let arg = plan as *const ChildPlan<'_> as *mut c_void;
    // SAFETY: no stack given: the new process runs `forked_main` on a copy of this one's
    // stack and memory (no CLONE_VM), where `plan` stays valid; `pidfd` is a live local.
    let pid = unsafe { sys::clone3(&mut args, forked_main, arg) }.at(SetupStage::JoinNamespace)?;
    // SAFETY: sendmsg of a local message (its iovec and control data on this stack) on the
    // socket the parent prepared; exit_group with an integer.
    unsafe {
        if let Err(e) = send_pid_and_fd(plan.fork_socket, pid as i32, pidfd) {
            let _ = sys::syscall6(
                libc::SYS_pidfd_send_signal,
                pidfd as usize,
                libc::SIGKILL as usize,
                0,
                0,
                0,
                0,
            );
            return Err(ChildError::new(SetupStage::JoinNamespace, e));
        }
        let _ = sys::syscall3(libc::SYS_exit_group, 0, 0, 0);
    }
    // exit_group does not return; if it somehow did, trap.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// `sendmsg(socket)` of `pid` (4 bytes) with `fd` attached (SCM_RIGHTS).
///
/// # Safety
/// `socket` and `fd` are descriptors of this process.
unsafe fn send_pid_and_fd(socket: RawFd, pid: i32, fd: RawFd) -> Result<(), Errno> {
    #[repr(C)]
    struct Control {
        header: libc::cmsghdr,
        fd: RawFd,
        pad: u32,
    }
    let mut control = Control {
        header: libc::cmsghdr {
            cmsg_len: std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<RawFd>(),
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        },
        fd,
        pad: 0,
    };
    let mut data = pid;
    let mut iov = libc::iovec {
        iov_base: &mut data as *mut i32 as *mut c_void,
        iov_len: std::mem::size_of::<i32>(),
    };
    // SAFETY: msghdr is plain data; every field that matters is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = &mut control as *mut Control as *mut c_void;
    msg.msg_controllen = std::mem::size_of::<Control>();
    // SAFETY: the message and what it points to live on this stack for the call.
    let sent = unsafe {
        sys::syscall3(
            libc::SYS_sendmsg,
            socket as usize,
            &msg as *const libc::msghdr as usize,
            libc::MSG_NOSIGNAL as usize,
        )
    }?;
    match sent {
        4 => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// Everything after the namespaces are entered.
///
/// # Safety
/// As [`setup`].
unsafe fn setup_inside(
    plan: &ChildPlan<'_>,
    interpreter: &mut [u8; INTERP_SIZE],
) -> Result<std::convert::Infallible, ChildError> {
    // SAFETY (whole function): as in `setup`.
    unsafe {
        if plan.loopback_up {
            loopback_up()?;
        }
        // In the new namespaces (a /proc/sys file shows its opener's), before the rootfs
        // makes /proc/sys read-only.
        write_sysctls(plan)?;
        set_names(plan)?;
        timing::stamp(plan.stamps, timing::NETWORK_AND_NAMES);
        if let Some(rootfs) = plan.rootfs {
            rootfs.apply(plan.go_fd).map_err(|e| ChildError {
                stage: e.stage,
                errno: e.errno,
                index: e.index,
                step: e.step,
            })?;
            // As root of the container (before the identity switch), inside the new root.
            make_working_directory(plan)?;
        }
        timing::stamp(plan.stamps, timing::ROOTFS);
        // Before the rlimits: a target above the new RLIMIT_NOFILE must still be reachable.
        for &(src, dst) in plan.fd_moves {
            sys::syscall3(libc::SYS_dup3, src as usize, dst as usize, 0).at(SetupStage::DupFd)?;
        }
        // While the child still has CAP_CHOWN.
        give_stdio_to_user(plan)?;
        // Steps that need privileges of the setup itself, while the child still has them.
        limit_privileges(plan)?;
        // (Once is enough: a child born into a joined PID namespace made itself so first.)
        if plan.park_fd >= 0 && !plan.undumpable {
            make_undumpable()?;
        }
        // The seccomp filter comes as late as it can, so that the setup's own syscalls (the
        // cwd check's getcwd, close_range, prlimit64, setsid, ...) never meet a profile that
        // denies them: with no_new_privs right before the exec; without it (the kernel then
        // takes a filter only from a holder of CAP_SYS_ADMIN) right before the capability
        // drop in `lock_down`, unless the identity switch itself takes CAP_SYS_ADMIN away
        // (a non-zero uid without `Security::cap_sets`, hence without PR_SET_KEEPCAPS): then
        // before that switch.
        let filter_before_switch = !plan.security.no_new_privs
            && plan.security.cap_sets.is_none()
            && plan.uid.is_some_and(|u| u != 0);
        if filter_before_switch {
            // The profile may deny getcwd (runtime-tools' linux_seccomp), so the working
            // directory is checked before the filter, as root. The chdir after the identity
            // switch resolves the same absolute path in the same root with the same
            // descriptors, so it needs no second check (and gets the user's access check).
            enter_working_directory(plan, true)?;
            install_seccomp(plan.security)?;
        }
        switch_identity(plan)?;
        enter_working_directory(plan, !filter_before_switch)?;
        if plan.pty_socket >= 0 {
            open_pty_inside(plan)?;
        }
        // Nothing of the caller may reach the container, not even for the duration of execve
        // (a program path through /proc/self/fd/N would resolve in the caller's world).
        close_fds_except(plan).at(SetupStage::CloseFds)?;
        // From here on no step keeps a descriptor: execve and execveat of the memfd take none,
        // and a failed exec's probe closes the one file it opens before it reports.
        apply_nofile_limit(plan.security)?;
        if let Some(persona) = plan.personality {
            // Before the filter: profiles allow only a few persona values (docker's: 0, 8,
            // 0x20000, 0x20008 and the query 0xffffffff).
            set_personality(persona)?;
        }
        let filter_in_lock_down = !plan.security.no_new_privs && !filter_before_switch;
        lock_down(plan.security, plan.tty, filter_in_lock_down)?;
        if plan.security.no_new_privs {
            install_seccomp(plan.security)?;
        }
        // After the filter: only capset and the ambient raises (in `lock_down`, without
        // no_new_privs), the park's read of the exec fifo (a setup failure before it must
        // still reach `create`'s caller), the signal mask and the exec itself.
        if plan.park_fd >= 0 {
            park(plan, interpreter)?;
        }
        timing::stamp(plan.stamps, timing::READY);
        match &plan.init {
            Some(init) => exec_init(plan, init),
            None => {
                unblock_signals()?;
                exec(plan, interpreter)
            }
        }
    }
}

/// Resets every signal disposition to the default. Handlers installed by the parent must not
/// run here: they would run on the shared heap. All signals are blocked (the parent blocked
/// them around clone) until the mask is opened again just before exec.
unsafe fn reset_signal_handlers() {
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64usize {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            continue;
        }
        // SAFETY: rt_sigaction with a pointer to a local kernel sigaction. EINVAL for numbers
        // the kernel does not know: nothing to reset.
        let _ = unsafe {
            sys::syscall6(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const _ as usize,
                0,
                8,
                0,
                0,
            )
        };
    }
}

/// Blocks until the parent writes the go-ahead byte (id maps written, network and cgroup set).
unsafe fn wait_for_parent(plan: &ChildPlan<'_>) -> Step {
    let mut byte = 0u8;
    loop {
        // SAFETY: read of one byte into a local from the go-ahead pipe.
        match unsafe {
            sys::syscall3(
                libc::SYS_read,
                plan.go_fd as usize,
                &mut byte as *mut u8 as usize,
                1,
            )
        } {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(ChildError::new(SetupStage::WaitForParent, Errno::EPIPE)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(ChildError::new(SetupStage::WaitForParent, e)),
        }
    }
}

/// The deferred cgroup namespace, the joined namespaces, then root of a new user namespace.
unsafe fn enter_namespaces(plan: &ChildPlan<'_>) -> Step {
    // SAFETY: unshare/setns with integer arguments and fds the parent keeps open for us.
    unsafe {
        if plan.unshare_cgroup_ns {
            sys::syscall3(libc::SYS_unshare, libc::CLONE_NEWCGROUP as usize, 0, 0)
                .at(SetupStage::JoinNamespace)?;
        }
        let mut joined_user = false;
        for &(fd, nstype) in plan.join {
            sys::syscall3(libc::SYS_setns, fd as usize, nstype as usize, 0)
                .at(SetupStage::JoinNamespace)?;
            // A set of flags with a pidfd (Container::enter), one flag with a namespace fd.
            joined_user |= nstype & libc::CLONE_NEWUSER != 0;
        }
        if joined_user {
            // Entering a user namespace this process's uid does not own changes its
            // credentials, and the kernel then clears the parent-death signal.
            set_parent_death_signal(plan)?;
        }
        if plan.become_namespace_root {
            // A new user namespace: until now the child has the caller's kernel ids, which the
            // map need not cover (root with `0 -> 100000`), and files it creates while
            // assembling the rootfs would get ids the namespace cannot represent (EOVERFLOW).
            // Its root is what assembles the rootfs, as in runc.
            sys::syscall3(libc::SYS_setresgid, 0, 0, 0).at(SetupStage::SetGid)?;
            sys::syscall3(libc::SYS_setresuid, 0, 0, 0).at(SetupStage::SetUid)?;
            set_parent_death_signal(plan)?;
        }
    }
    Ok(())
}

/// `sethostname`, `setdomainname`.
unsafe fn set_names(plan: &ChildPlan<'_>) -> Step {
    // SAFETY: pointers and lengths of byte strings in the plan.
    unsafe {
        if let Some(name) = plan.hostname {
            sys::syscall3(libc::SYS_sethostname, name.as_ptr() as usize, name.len(), 0)
                .at(SetupStage::SetHostname)?;
        }
        if let Some(name) = plan.domainname {
            sys::syscall3(
                libc::SYS_setdomainname,
                name.as_ptr() as usize,
                name.len(),
                0,
            )
            .at(SetupStage::SetDomainname)?;
        }
    }
    Ok(())
}

/// Supplementary groups, gid, uid; last, since a switch away from root drops the
/// capabilities the steps before need.
unsafe fn switch_identity(plan: &ChildPlan<'_>) -> Step {
    // SAFETY: setgroups with the plan's array; set*id with integers.
    unsafe {
        if let Some(groups) = plan.groups {
            sys::syscall3(
                libc::SYS_setgroups,
                groups.len(),
                groups.as_ptr() as usize,
                0,
            )
            .at(SetupStage::SetGroups)?;
        }
        if let Some(gid) = plan.gid {
            let g = gid as usize;
            sys::syscall3(libc::SYS_setresgid, g, g, g).at(SetupStage::SetGid)?;
        }
        if let Some(uid) = plan.uid {
            let u = uid as usize;
            sys::syscall3(libc::SYS_setresuid, u, u, u).at(SetupStage::SetUid)?;
        }
        if plan.gid.is_some() || plan.uid.is_some() {
            // A credential change clears the parent-death signal: set it again.
            set_parent_death_signal(plan)?;
        }
    }
    Ok(())
}

/// Writes the prepared sysctls through `/proc/sys`; a default the kernel lacks or refuses is
/// skipped, a caller's own fails the spawn (`index` says which).
unsafe fn write_sysctls(plan: &ChildPlan<'_>) -> Step {
    const FLAGS: u64 = (libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
    for (i, s) in plan.sysctls.iter().enumerate() {
        let result = open(libc::AT_FDCWD, &s.path, FLAGS, 0, 0)
            .map_err(|e| (SYSCTL_OPEN, e))
            .and_then(|fd| {
                // SAFETY: write of the prepared value's bytes to the descriptor just opened.
                let n = unsafe {
                    sys::syscall3(
                        libc::SYS_write,
                        fd.0 as usize,
                        s.value.as_ptr() as usize,
                        s.value.len(),
                    )
                }
                .map_err(|e| (SYSCTL_WRITE, e))?;
                // A sysctl takes the whole value in one write; a short one is not what was asked.
                if n == s.value.len() {
                    Ok(())
                } else {
                    Err((SYSCTL_WRITE, Errno::EIO))
                }
            });
        match result {
            Ok(()) => {}
            Err(_) if !s.required => {}
            Err((step, errno)) => {
                return Err(ChildError {
                    stage: SetupStage::Sysctl,
                    errno,
                    index: i as u32,
                    step,
                })
            }
        }
    }
    Ok(())
}

/// Creates the missing levels of the working directory inside the new root (mode 0755,
/// owned by the container's ids) as `mount::apply::create_in_root` does for mount points: a
/// symlink in the image is followed inside the root and its missing target created there,
/// never outside. Runs after `pivot_root`, as the container's root.
unsafe fn make_working_directory(plan: &ChildPlan<'_>) -> Step {
    const O_PATH_DIR: u64 = (libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY) as u64;
    const IN_ROOT: u64 = sys::mount::RESOLVE_IN_ROOT | sys::mount::RESOLVE_NO_MAGICLINKS;
    let Some(w) = plan.workdir else {
        return Ok(());
    };
    let fail = |step: u32| {
        move |errno| ChildError {
            stage: SetupStage::Chdir,
            errno,
            index: 0,
            step,
        }
    };
    let root = open(libc::AT_FDCWD, c"/", O_PATH_DIR, 0, 0).map_err(fail(CWD_OPEN))?;
    match open(root.0, &w.rel, O_PATH_DIR, 0, IN_ROOT) {
        Err(Errno::ENOENT) => {}
        // There, or not a directory and the like: the chdir reports it.
        _ => return Ok(()),
    }
    // Exactly 0755, whatever the container's umask.
    let old = sys::mount::umask(0);
    let made = create_in_root(root.0, &w.rel, true, plan.stdio_owner);
    sys::mount::umask(old);
    match made {
        Ok(_) => Ok(()),
        Err(e) => Err(fail(match e.step {
            MountStep::CreateDir => CWD_CREATE,
            MountStep::Chown => CWD_CHOWN,
            _ => CWD_OPEN,
        })(e.errno)),
    }
}

/// Gives fds 0-2 to the container's user when they are pipes, sockets or the container's own
/// pty (see `Container::stdin`), so that it can reopen them through `/proc/self/fd`.
unsafe fn give_stdio_to_user(plan: &ChildPlan<'_>) -> Step {
    let Some((uid, gid)) = plan.stdio_owner else {
        return Ok(());
    };
    for fd in 0..3 {
        let mask = libc::STATX_TYPE | libc::STATX_UID | libc::STATX_GID;
        let Ok(stx) = sys::mount::fstatx(fd, mask) else {
            continue; // not open
        };
        let kind = u32::from(stx.stx_mode) & libc::S_IFMT;
        let ours = kind == libc::S_IFIFO
            || kind == libc::S_IFSOCK
            || (kind == libc::S_IFCHR && plan.own_pty_stdio);
        let same =
            (uid == u32::MAX || stx.stx_uid == uid) && (gid == u32::MAX || stx.stx_gid == gid);
        if !ours || same {
            continue;
        }
        // SAFETY: fchown of one of our standard descriptors, integer arguments.
        match unsafe { sys::syscall3(libc::SYS_fchown, fd as usize, uid as usize, gid as usize) } {
            // The user or group is not mapped where the stream's owner lives, or the stream
            // is on a read-only filesystem: leave it (runc does the same).
            Ok(_) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(errno) => {
                return Err(ChildError {
                    stage: SetupStage::StdioOwner,
                    errno,
                    index: fd as u32,
                    step: 0,
                })
            }
        }
    }
    Ok(())
}

/// `chdir`, then, with `check` and a root the directory must be inside (a rootfs, or an
/// entered mount namespace), the check that it is.
unsafe fn enter_working_directory(plan: &ChildPlan<'_>, check: bool) -> Step {
    if let Some(cwd) = plan.cwd {
        // SAFETY: a NUL-terminated path from the plan.
        unsafe { sys::syscall3(libc::SYS_chdir, cwd.as_ptr() as usize, 0, 0) }
            .at(SetupStage::Chdir)?;
    }
    if check && plan.cwd_in_root {
        // A directory reached through a host descriptor (/proc/self/fd/N) is outside the
        // new root: refuse to run there (runc CVE-2024-21626).
        rootfs::check_cwd().map_err(|errno| ChildError {
            stage: SetupStage::Chdir,
            errno,
            index: 0,
            step: rootfs::CWD_OUTSIDE_ROOT,
        })?;
    }
    Ok(())
}

/// Execs `contain-init` from its sealed memfd; it forks the payload and execs it.
unsafe fn exec_init(
    plan: &ChildPlan<'_>,
    init: &InitPlan,
) -> Result<std::convert::Infallible, ChildError> {
    // SAFETY: fcntl on our error pipe; execveat with the memfd, an empty NUL-terminated path
    // and NULL-terminated argv/envp arrays the parent prepared.
    unsafe {
        // The init hands the pipe to the payload, whose exec closes it (the init sets
        // close-on-exec again and closes its own copy): EOF still means "payload exec'd".
        sys::syscall3(
            libc::SYS_fcntl,
            plan.err_fd as usize,
            libc::F_SETFD as usize,
            0,
        )
        .at(SetupStage::Init)?;
        let e = match sys::syscall6(
            libc::SYS_execveat,
            init.memfd as usize,
            c"".as_ptr() as usize,
            init.argv as usize,
            plan.envp as usize,
            libc::AT_EMPTY_PATH as usize,
            0,
        ) {
            Ok(_) => Errno::EINVAL, // execveat does not return on success
            Err(e) => e,
        };
        Err(ChildError::new(SetupStage::Init, e))
    }
}

/// Opens a pty in the container's devpts, makes its slave fds 0-2 and sends the master to the
/// parent (SCM_RIGHTS).
unsafe fn open_pty_inside(plan: &ChildPlan<'_>) -> Step {
    const PTMX: &[u8] = b"/dev/ptmx\0";
    // SAFETY: openat/ioctl/dup3/close/sendmsg on descriptors this process owns and on local
    // buffers (the message, its iovec and control data live on this stack).
    unsafe {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        let master = sys::syscall6(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            PTMX.as_ptr() as usize,
            flags as usize,
            0,
            0,
            0,
        )
        .at(SetupStage::Session)? as i32;
        // With fds 0-2 closed in the caller, the master would land on one of them and be
        // replaced by the slave below: move it above stdio.
        let master = if master < 3 {
            let high = sys::syscall3(
                libc::SYS_fcntl,
                master as usize,
                libc::F_DUPFD_CLOEXEC as usize,
                3,
            )
            .at(SetupStage::Session)?;
            let _ = sys::syscall3(libc::SYS_close, master as usize, 0, 0);
            high as i32
        } else {
            master
        };
        let unlock: libc::c_int = 0;
        sys::syscall3(
            libc::SYS_ioctl,
            master as usize,
            libc::TIOCSPTLCK as usize,
            &unlock as *const _ as usize,
        )
        .at(SetupStage::Session)?;
        if plan.winsize.ws_row != 0 {
            sys::syscall3(
                libc::SYS_ioctl,
                master as usize,
                libc::TIOCSWINSZ as usize,
                &plan.winsize as *const _ as usize,
            )
            .at(SetupStage::Session)?;
        }
        let slave = sys::syscall3(
            libc::SYS_ioctl,
            master as usize,
            libc::TIOCGPTPEER as usize,
            (libc::O_RDWR | libc::O_NOCTTY) as usize,
        )
        .at(SetupStage::Session)?;
        // The slave, too, may have got a free stdio number.
        for target in (0..3usize).filter(|&t| t != slave) {
            sys::syscall3(libc::SYS_dup3, slave, target, 0).at(SetupStage::DupFd)?;
        }
        if slave > 2 {
            let _ = sys::syscall3(libc::SYS_close, slave, 0, 0);
        }

        #[repr(C)]
        struct Control {
            hdr: libc::cmsghdr,
            fd: libc::c_int,
            pad: libc::c_int,
        }
        let mut control = Control {
            hdr: libc::cmsghdr {
                cmsg_len: std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<libc::c_int>(),
                cmsg_level: libc::SOL_SOCKET,
                cmsg_type: libc::SCM_RIGHTS,
            },
            fd: master,
            pad: 0,
        };
        let mut byte = 0u8;
        let mut iov = libc::iovec {
            iov_base: &mut byte as *mut u8 as *mut c_void,
            iov_len: 1,
        };
        // SAFETY: an all-zero msghdr is valid; the pointers are filled in below.
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = &mut control as *mut Control as *mut c_void;
        msg.msg_controllen = std::mem::size_of::<Control>();
        sys::syscall3(
            libc::SYS_sendmsg,
            plan.pty_socket as usize,
            &msg as *const _ as usize,
            0,
        )
        .at(SetupStage::Session)?;
        let _ = sys::syscall3(libc::SYS_close, master as usize, 0, 0);
    }
    Ok(())
}

/// Sends [`crate::net::LOOPBACK_UP`] on a fresh rtnetlink socket and checks the kernel's ack.
unsafe fn loopback_up() -> Step {
    let fail = |e| ChildError::new(SetupStage::Network, e);
    // SAFETY: socket/sendto/recvfrom/close on a descriptor we create, with a constant message
    // and a local buffer.
    unsafe {
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        let fd = sys::syscall3(
            libc::SYS_socket,
            libc::AF_NETLINK as usize,
            flags as usize,
            libc::NETLINK_ROUTE as usize,
        )
        .map_err(fail)?;
        let msg = &crate::net::LOOPBACK_UP;
        let sent = sys::syscall6(
            libc::SYS_sendto,
            fd,
            msg.as_ptr() as usize,
            msg.len(),
            0,
            0,
            0,
        );
        // The ack: nlmsghdr (16 bytes) of type NLMSG_ERROR, then the error (0 for success).
        let mut ack = [0u8; 64];
        let got = sent.and_then(|_| {
            sys::syscall6(
                libc::SYS_recvfrom,
                fd,
                ack.as_mut_ptr() as usize,
                ack.len(),
                0,
                0,
                0,
            )
        });
        let _ = sys::syscall3(libc::SYS_close, fd, 0, 0);
        let got = got.map_err(fail)?;
        let kind = u16::from_ne_bytes([ack[4], ack[5]]);
        let error = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
        if got < 20 || kind != libc::NLMSG_ERROR as u16 {
            return Err(fail(Errno::EPROTO));
        }
        if error != 0 {
            return Err(fail(Errno::from_raw(-error)));
        }
    }
    Ok(())
}

/// Opens the signal mask again (it has been fully blocked since clone).
unsafe fn unblock_signals() -> Step {
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask with a pointer to a local 8-byte set.
    unsafe {
        sys::syscall6(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &empty as *const u64 as usize,
            0,
            8,
            0,
            0,
        )
    }
    .map(drop)
    .at(SetupStage::Signals)
}

/// `RLIMIT_NOFILE` as [`Rlimit::resource`](crate::security::Rlimit) holds it.
#[allow(clippy::unnecessary_cast)] // c_int on some libcs
const RLIMIT_NOFILE: u32 = libc::RLIMIT_NOFILE as u32;

/// Before the identity switch: shrink the bounding set, clear the ambient set, set rlimits
/// (`RLIMIT_NOFILE` only raised here, set in [`apply_nofile_limit`]).
unsafe fn limit_privileges(plan: &ChildPlan<'_>) -> Step {
    let sec = plan.security;
    // SAFETY: prctl and prlimit64 with integer arguments and pointers to live locals/plan data.
    unsafe {
        if plan.privileged {
            for cap in 0..=sec.last_cap {
                if sec.keep & (1u64 << cap) == 0 {
                    match sys::syscall6(
                        libc::SYS_prctl,
                        libc::PR_CAPBSET_DROP as usize,
                        cap as usize,
                        0,
                        0,
                        0,
                        0,
                    ) {
                        Ok(_) | Err(Errno::EINVAL) => {}
                        Err(e) => return Err(ChildError::new(SetupStage::Capabilities, e)),
                    }
                }
            }
        }
        let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as usize;
        match sys::syscall6(
            libc::SYS_prctl,
            libc::PR_CAP_AMBIENT as usize,
            clear,
            0,
            0,
            0,
            0,
        ) {
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(ChildError::new(SetupStage::Capabilities, e)),
        }
        if sec.cap_sets.is_some() {
            // Keep the permitted set across a switch to another uid, for `lock_down` to set
            // the asked sets from (the flag is cleared again by execve).
            sys::syscall6(
                libc::SYS_prctl,
                libc::PR_SET_KEEPCAPS as usize,
                1,
                0,
                0,
                0,
                0,
            )
            .at(SetupStage::Capabilities)?;
        }
        for (i, l) in sec.rlimits.iter().enumerate() {
            let fail = |e| ChildError {
                stage: SetupStage::Rlimits,
                errno: e,
                index: i as u32,
                step: l.resource,
            };
            if l.resource == RLIMIT_NOFILE {
                // The rest of the setup still opens and polls descriptors (ppoll takes no
                // more fds than RLIMIT_NOFILE, the pty, the init memfd): the limit itself
                // comes last, in `apply_nofile_limit`. Only a raise of the hard limit is done
                // here, while CAP_SYS_RESOURCE is still held; lowering needs no privilege.
                let mut now = [0u64; 2];
                sys::syscall6(
                    libc::SYS_prlimit64,
                    0,
                    l.resource as usize,
                    0,
                    now.as_mut_ptr() as usize,
                    0,
                    0,
                )
                .map_err(fail)?;
                if l.hard > now[1] {
                    let raised = [now[0], l.hard];
                    sys::syscall6(
                        libc::SYS_prlimit64,
                        0,
                        l.resource as usize,
                        raised.as_ptr() as usize,
                        0,
                        0,
                        0,
                    )
                    .map_err(fail)?;
                }
                continue;
            }
            let new = [l.soft, l.hard];
            sys::syscall6(
                libc::SYS_prlimit64,
                0,
                l.resource as usize,
                new.as_ptr() as usize,
                0,
                0,
                0,
            )
            .map_err(fail)?;
        }
    }
    Ok(())
}

/// Sets `RLIMIT_NOFILE` as asked, once no setup step needs a new descriptor any more (its
/// hard limit, if raised, was raised in [`limit_privileges`]): a limit as low as 0 then
/// reaches the command instead of failing the setup.
unsafe fn apply_nofile_limit(sec: &PreparedSecurity) -> Step {
    for (i, l) in sec.rlimits.iter().enumerate() {
        if l.resource != RLIMIT_NOFILE {
            continue;
        }
        let new = [l.soft, l.hard];
        // SAFETY: prlimit64 of this process with a pointer to a local pair.
        unsafe {
            sys::syscall6(
                libc::SYS_prlimit64,
                0,
                l.resource as usize,
                new.as_ptr() as usize,
                0,
                0,
                0,
            )
        }
        .map_err(|e| ChildError {
            stage: SetupStage::Rlimits,
            errno: e,
            index: i as u32,
            step: l.resource,
        })?;
    }
    Ok(())
}

/// personality(2) with `persona` (see [`Container::personality`](super::Container::personality)).
unsafe fn set_personality(persona: u32) -> Step {
    // SAFETY: personality takes an integer; it returns the previous persona (not an error).
    unsafe { sys::syscall3(libc::SYS_personality, persona as usize, 0, 0) }
        .map(drop)
        .at(SetupStage::Personality)
}

/// `CAP_SYS_ADMIN`'s (21, linux/capability.h) bit in the low word of the capability sets.
const CAP_SYS_ADMIN_BIT: u32 = 1 << 21;

/// After the identity switch, right before exec: new session, effective/permitted/inheritable
/// capabilities (and ambient ones, with [`Security::cap_sets`](crate::security::Security::cap_sets)),
/// no_new_privs. With `filter` (a filter without no_new_privs), the seccomp filter is
/// installed right before the capability drop, with `CAP_SYS_ADMIN` raised in the effective
/// set first when a switch to a non-zero uid cleared it but the permitted set kept it
/// (PR_SET_KEEPCAPS); otherwise the filter comes after (see [`install_seccomp`]).
unsafe fn lock_down(sec: &PreparedSecurity, tty: bool, filter: bool) -> Step {
    // SAFETY: setsid, ioctl, capget/capset on local header and data, prctl with integers.
    unsafe {
        if sec.new_session || tty {
            sys::syscall3(libc::SYS_setsid, 0, 0, 0).at(SetupStage::Session)?;
        }
        if tty {
            sys::syscall3(libc::SYS_ioctl, 0, libc::TIOCSCTTY as usize, 0)
                .at(SetupStage::Session)?;
        }
        #[repr(C)]
        struct CapHeader {
            version: u32,
            pid: i32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let mut header = CapHeader {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        let hp = &mut header as *mut CapHeader as usize;
        sys::syscall3(libc::SYS_capget, hp, data.as_mut_ptr() as usize, 0)
            .at(SetupStage::Capabilities)?;
        if filter && !sec.filter.is_empty() {
            if data[0].effective & CAP_SYS_ADMIN_BIT == 0
                && data[0].permitted & CAP_SYS_ADMIN_BIT != 0
            {
                let mut raised = data;
                raised[0].effective |= CAP_SYS_ADMIN_BIT;
                sys::syscall3(libc::SYS_capset, hp, raised.as_ptr() as usize, 0)
                    .at(SetupStage::Capabilities)?;
            }
            install_seccomp(sec)?;
        }
        for (i, d) in data.iter_mut().enumerate() {
            let half = |set: u64| (set >> (32 * i)) as u32;
            match sec.cap_sets {
                Some(sets) => {
                    d.effective = half(sets.effective.bits());
                    d.permitted = half(sets.permitted.bits());
                    d.inheritable = half(sets.inheritable.bits());
                }
                None => {
                    d.effective &= half(sec.keep);
                    d.permitted &= half(sec.keep);
                    d.inheritable = 0;
                }
            }
        }
        sys::syscall3(libc::SYS_capset, hp, data.as_ptr() as usize, 0)
            .at(SetupStage::Capabilities)?;
        if let Some(sets) = sec.cap_sets {
            let ambient = sets.ambient.bits();
            for cap in (0..=sec.last_cap).filter(|c| ambient & (1u64 << c) != 0) {
                sys::syscall6(
                    libc::SYS_prctl,
                    libc::PR_CAP_AMBIENT as usize,
                    libc::PR_CAP_AMBIENT_RAISE as usize,
                    cap as usize,
                    0,
                    0,
                    0,
                )
                .at(SetupStage::Capabilities)?;
            }
        }
        if sec.no_new_privs {
            sys::syscall6(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS as usize,
                1,
                0,
                0,
                0,
                0,
            )
            .at(SetupStage::NoNewPrivs)?;
        }
    }
    Ok(())
}

/// Installs the seccomp filter: last, so that it does not see the setup, or, without
/// no_new_privs, while the child still has CAP_SYS_ADMIN (see `setup`).
unsafe fn install_seccomp(sec: &PreparedSecurity) -> Step {
    if sec.filter.is_empty() {
        return Ok(());
    }
    let prog = libc::sock_fprog {
        len: sec.filter.len() as u16,
        // SockFilter is repr(C) with struct sock_filter's layout (checked at compile time).
        filter: sec.filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a sock_fprog on our stack pointing into the prepared filter; the flags are
    // SECCOMP_FILTER_FLAG_* bits the parent checked (none that returns a descriptor).
    unsafe {
        sys::syscall3(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as usize,
            sec.filter_flags as usize,
            &prog as *const libc::sock_fprog as usize,
        )
    }
    .map(drop)
    .at(SetupStage::Seccomp)
}

/// `PR_SET_PDEATHSIG`, then make sure the parent did not die before it took effect: the
/// parent holds the write end of the go-ahead pipe until we exec, so a hang-up means it died.
unsafe fn set_parent_death_signal(plan: &ChildPlan<'_>) -> Step {
    if plan.parent_death_signal == 0 {
        return Ok(());
    }
    // SAFETY: prctl with integer arguments; ppoll on a local pollfd and timespec.
    unsafe {
        sys::syscall6(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            plan.parent_death_signal as usize,
            0,
            0,
            0,
            0,
        )
        .at(SetupStage::ParentDeathSignal)?;
        let mut pfd = libc::pollfd {
            fd: plan.go_fd,
            events: 0,
            revents: 0,
        };
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let n = sys::syscall6(
            libc::SYS_ppoll,
            &mut pfd as *mut libc::pollfd as usize,
            1,
            &zero as *const libc::timespec as usize,
            0,
            8,
            0,
        )
        .at(SetupStage::ParentDeathSignal)?;
        if n == 1 && pfd.revents & libc::POLLHUP != 0 {
            return Err(ChildError::new(SetupStage::ParentDeathSignal, Errno::ESRCH));
        }
    }
    Ok(())
}

/// Closes every descriptor ≥ 3 except `plan.keep_fds` (the passed targets, and our own
/// close-on-exec error pipe and init memfd, which go at exec).
unsafe fn close_fds_except(plan: &ChildPlan<'_>) -> Result<(), Errno> {
    let mut first: u32 = 3;
    let mut result = Ok(());
    for &keep in plan.keep_fds {
        let keep = keep as u32;
        if keep > first {
            // SAFETY: closes descriptors of this process only (its table is its own).
            result = unsafe { sys::close_range(first, keep - 1, 0) };
            if result.is_err() {
                break;
            }
        }
        first = first.max(keep + 1);
    }
    if result.is_ok() {
        // SAFETY: as above.
        result = unsafe { sys::close_range(first, u32::MAX, 0) };
    }
    match result {
        // ENOSYS: a kernel before 5.9, or a seccomp profile newer than 5.9 refusing it so;
        // EPERM (which close_range itself never returns): a profile that does not list it,
        // installed already (without no_new_privs, the filter comes before this step).
        Err(Errno::ENOSYS | Errno::EPERM) => {}
        other => return other,
    }
    // One descriptor at a time, up to the parent's limit.
    for fd in 3..plan.fd_limit {
        if !plan.keep_fds.contains(&fd) {
            // SAFETY: close of a number that may not be open (EBADF is fine).
            let _ = unsafe { sys::syscall3(libc::SYS_close, fd as usize, 0, 0) };
        }
    }
    Ok(())
}

/// OCI `create`'s last step: the container is set up, and waits for `start`.
///
/// First the command is looked for (unless a filter of the caller's may kill on the
/// lookup's syscalls), so that a missing program fails `create`, where it can still be
/// reported, as runc does. Then the error pipe is closed: its EOF tells the parent that
/// the setup is done. Then the process waits to be released by its creator (a byte on the
/// hold socket): a creator killed before it released the process (before an OCI runtime
/// saved the container's state) closes the socket, and the process exits rather than stay
/// parked where nothing knows of it. Then it blocks reading the exec fifo (opened read-write
/// by the parent, so that a read waits for data and never sees EOF) until `start` writes
/// its byte. A failure after the error pipe is closed has nobody to tell: the process exits
/// with 127.
unsafe fn park(plan: &ChildPlan<'_>, interpreter: &mut [u8; INTERP_SIZE]) -> Step {
    // SAFETY (whole function): syscalls on our own descriptors and a local buffer; the
    // lookup reads NUL-terminated paths the parent prepared.
    unsafe {
        if !plan.security.custom_filter {
            find_program(plan, interpreter)?;
        }
        let _ = sys::syscall3(libc::SYS_close, plan.err_fd as usize, 0, 0);
        for fd in [plan.hold_fd, plan.park_fd] {
            let mut byte = 0u8;
            loop {
                match sys::syscall3(
                    libc::SYS_read,
                    fd as usize,
                    &mut byte as *mut u8 as usize,
                    1,
                ) {
                    Ok(1) => break,
                    Err(Errno::EINTR) => continue,
                    Ok(_) => return Err(ChildError::new(SetupStage::Exec, Errno::EPIPE)),
                    Err(e) => return Err(ChildError::new(SetupStage::Exec, e)),
                }
            }
            let _ = sys::syscall3(libc::SYS_close, fd as usize, 0, 0);
        }
    }
    Ok(())
}

/// Makes the process non-dumpable (CVE-2019-5736, CVE-2016-9962) where the container's
/// processes can see it before its `execve`: until then its image is the caller's binary
/// (`/proc/PID/exe`) and its memory the caller's (or a copy), and a process of the
/// container with the same uid and capabilities could otherwise open that binary through
/// /proc and write it once the caller is gone, or read that memory. A non-dumpable
/// process's /proc files need `CAP_SYS_PTRACE` (ptrace access mode checks, ptrace(2)), which
/// containers do not get by default. `execve` of the command makes it dumpable again.
///
/// Two cases: a process born into a joined PID namespace (an exec into a running
/// container) does it first of all ([`ChildPlan::undumpable`]; with a shared address space
/// the flag is the caller's too, and `spawn` puts it back once the child has exec'd); a
/// process that parks does it after the id maps are written (a rootless parent needs
/// /proc/PID/uid_map of a dumpable child) and before a filter without no_new_privs is
/// installed (a profile may refuse `prctl`). An identity switch after it keeps it
/// non-dumpable (a credential change sets `fs.suid_dumpable`, 0 or 2).
fn make_undumpable() -> Step {
    // SAFETY: prctl with integer arguments only.
    unsafe { sys::syscall3(libc::SYS_prctl, libc::PR_SET_DUMPABLE as usize, 0, 0) }
        .map(drop)
        .at(SetupStage::Dumpable)
}

/// Whether one of the prepared paths may be executed (`faccessat(X_OK)`: a directory passes
/// too, and a script's missing interpreter is not seen; both then fail at exec, after
/// `start`, with 127); if none may, an exec error for the last path that failed otherwise
/// than ENOENT/ENOTDIR, else for the first, with what [`probe`] found there.
///
/// # Safety
/// The plan's exec paths are NUL-terminated strings.
unsafe fn find_program(plan: &ChildPlan<'_>, interpreter: &mut [u8; INTERP_SIZE]) -> Step {
    let mut found: Option<(Errno, u32)> = None;
    for (i, &path) in plan.exec_paths.iter().enumerate() {
        // SAFETY: a NUL-terminated path the parent prepared.
        let access = unsafe {
            sys::syscall3(
                libc::SYS_faccessat,
                libc::AT_FDCWD as usize,
                path as usize,
                libc::X_OK as usize,
            )
        };
        match access {
            Ok(_) => return Ok(()),
            Err(e @ (Errno::ENOENT | Errno::ENOTDIR)) => {
                found.get_or_insert((e, i as u32));
            }
            Err(e) => found = Some((e, i as u32)),
        }
    }
    let (errno, index) = found.unwrap_or((Errno::ENOENT, 0));
    let step = match plan.exec_paths.get(index as usize) {
        // SAFETY: as above.
        Some(&path) => unsafe { probe(path, interpreter) },
        None => EXEC_UNKNOWN,
    };
    Err(ChildError {
        stage: SetupStage::Exec,
        errno,
        index,
        step: step | EXEC_INDEXED,
    })
}

/// Tries each prepared path like `execvp` does; returns the error to report, with the index
/// of the path it is about and what [`probe`] found there (`step`, an `ExecTarget` wire code),
/// so that the parent can name the program and say why; `interpreter` gets the `#!`
/// interpreter of the script at that path.
unsafe fn exec(
    plan: &ChildPlan<'_>,
    interpreter: &mut [u8; INTERP_SIZE],
) -> Result<std::convert::Infallible, ChildError> {
    // The caller's own seccomp filter may kill on a probe's syscalls, and a child killed
    // without a report would read as a successful exec: report the errno alone. (The default
    // profile allows newfstatat, faccessat, openat and read.)
    let may_probe = !plan.security.custom_filter;
    // Each probe overwrites `interpreter`; the last one probed is always the path reported
    // (the broken candidate is not probed again once found).
    let mut probe_at = |path: *const c_char| {
        if may_probe {
            // SAFETY: a NUL-terminated path the parent prepared.
            unsafe { probe(path, interpreter) }
        } else {
            EXEC_UNKNOWN
        }
    };
    let mut err = (Errno::ENOENT, 0u32);
    let mut eacces: Option<u32> = None;
    // The first candidate that exists although execve said ENOENT: its interpreter or loader
    // is missing, which says more than "not found" for the last candidate.
    let mut broken: Option<(u32, u32)> = None;
    for (i, &path) in plan.exec_paths.iter().enumerate() {
        let i = i as u32;
        // SAFETY: path, argv and envp are NUL-terminated strings and NULL-terminated arrays
        // the parent prepared.
        let e = match unsafe {
            sys::syscall3(
                libc::SYS_execve,
                path as usize,
                plan.argv as usize,
                plan.envp as usize,
            )
        } {
            Ok(_) => Errno::EINVAL, // execve does not return on success
            Err(e) => e,
        };
        match e {
            Errno::ENOENT if broken.is_none() => {
                err = (e, i);
                let found = probe_at(path);
                if found != EXEC_MISSING && found != EXEC_UNKNOWN {
                    broken = Some((i, found));
                }
            }
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {
                err = (e, i)
            }
            Errno::EACCES => {
                eacces.get_or_insert(i);
            }
            other => {
                return Err(ChildError {
                    stage: SetupStage::Exec,
                    errno: other,
                    index: i,
                    step: probe_at(path) | EXEC_INDEXED,
                })
            }
        }
    }
    let (errno, index, step) = match (eacces, broken) {
        (Some(i), _) => (Errno::EACCES, i, probe_at(plan.exec_paths[i as usize])),
        (None, Some((i, found))) => (Errno::ENOENT, i, found),
        (None, None) => {
            let step = match plan.exec_paths.get(err.1 as usize) {
                Some(&path) => probe_at(path),
                None => EXEC_UNKNOWN,
            };
            (err.0, err.1, step)
        }
    };
    Err(ChildError {
        stage: SetupStage::Exec,
        errno,
        index,
        step: step | EXEC_INDEXED,
    })
}

use super::init::probe::{self, EXEC_OTHER};
pub(crate) use super::init::probe::{
    check_interpreter, classify, EXEC_INDEXED, EXEC_INTERP_EXISTS, EXEC_INTERP_TRUNCATED,
    EXEC_MISSING, EXEC_UNKNOWN, INTERP_SIZE,
};

/// What is at `path`, after execve failed on it: nothing, a script (`#!`), an ELF binary, or
/// something else; for a script, its interpreter goes to `interpreter` (NUL-padded, see
/// [`classify`]). Raw syscalls on a stack buffer only.
///
/// # Safety
/// `path` is a NUL-terminated string.
unsafe fn probe(path: *const c_char, interpreter: &mut [u8; INTERP_SIZE]) -> u32 {
    *interpreter = [0; INTERP_SIZE];
    // SAFETY: newfstatat into a local buffer of the kernel's struct stat size; openat on a
    // NUL-terminated path; read into a local buffer; close of the descriptor we opened.
    unsafe {
        let mut st = [0u64; probe::STAT_WORDS];
        match sys::syscall6(
            probe::NR_NEWFSTATAT as libc::c_long,
            libc::AT_FDCWD as usize,
            path as usize,
            st.as_mut_ptr() as usize,
            0,
            0,
            0,
        ) {
            Ok(_) => {}
            Err(Errno::ENOENT | Errno::ENOTDIR) => return EXEC_MISSING,
            Err(_) => return EXEC_UNKNOWN,
        }
        // Only a regular file is opened (see probe::NR_NEWFSTATAT).
        if !probe::is_regular(&st) {
            return EXEC_OTHER;
        }
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        let Ok(fd) = sys::syscall3(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            path as usize,
            flags as usize,
        ) else {
            return EXEC_OTHER;
        };
        let mut head = [0u8; INTERP_SIZE];
        let got = sys::syscall3(libc::SYS_read, fd, head.as_mut_ptr() as usize, head.len());
        let _ = sys::syscall3(libc::SYS_close, fd, 0, 0);
        let step = match got {
            Ok(n) => classify(&head, n, interpreter),
            Err(_) => EXEC_OTHER,
        };
        // An interpreter that exists fails only for want of its own interpreter or loader.
        // `interpreter` is NUL-ended (classify leaves its last byte 0).
        let exists = check_interpreter(step, interpreter)
            && sys::syscall3(
                libc::SYS_faccessat,
                libc::AT_FDCWD as usize,
                interpreter.as_ptr() as usize,
                libc::F_OK as usize,
            )
            .is_ok();
        match exists {
            true => step | EXEC_INTERP_EXISTS,
            false => step,
        }
    }
}
