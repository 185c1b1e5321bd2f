//! What `spawn` does in the parent: everything computed before clone ([`Prepared`]), the
//! clone itself (clone3 with `CLONE_VM` on a private stack, or the classic clone), and the
//! steps while the child waits (id maps, network, cgroup placement), then the child's verdict.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use libc::c_char;
use nix::fcntl::{FcntlArg, OFlag};

use super::child::{self, ChildError, ChildPlan, WorkdirPlan};
use super::sysctl::{self, PreparedSysctl};
use super::timing::{self, StartTiming};
use super::{tty, user, CgroupPlacement, Child, CloneCall, Container, Stdio, DEFAULT_PATH};
use crate::cgroup::Cgroup;
use crate::errno::NixResultExt;
use crate::idmap::{IdMap, PreparedIdMaps};
use crate::mount::cstring;
use crate::namespace::Namespaces;
use crate::net;
use crate::rootfs::{PreparedRootfs, Rootfs};
use crate::security::PreparedSecurity;
use crate::sys::Stack;
use crate::{sys, Errno, Error, Result, SetupStage};

mod standby;
pub(crate) use standby::{Standby, StandbyFailure};

/// [`super::STANDBY_SOCKET`] in the init's argv.
const STANDBY_SOCKET_DIGITS: &std::ffi::CStr = c"3";
const _: () = assert!(
    super::STANDBY_SOCKET == 3,
    "STANDBY_SOCKET_DIGITS must follow it"
);

/// Everything `spawn` computes before clone.
pub(super) struct Prepared {
    /// The program as given, and the PATH searched for a bare name: for exec errors.
    program: std::ffi::OsString,
    search_path: Option<std::ffi::OsString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    exec_paths: Vec<CString>,
    cwd: Option<CString>,
    hostname: Option<Vec<u8>>,
    domainname: Option<Vec<u8>>,
    id_maps: Option<PreparedIdMaps>,
    groups: Option<Vec<libc::gid_t>>,
    uid: Option<u32>,
    gid: Option<u32>,
    join: Vec<(RawFd, i32)>,
    join_pid: Option<RawFd>,
    cgroup: Option<RawFd>,
    security: PreparedSecurity,
    privileged: bool,
    rootfs: Option<PreparedRootfs>,
    share_vm: bool,
    /// Switch to root of the new user namespace before the rootfs is assembled.
    become_namespace_root: bool,
    /// The child changes its credentials while it shares the caller's memory (see
    /// [`KeepDumpable`]).
    changes_credentials: bool,
    flags: u64,
    min_fd: RawFd,
    fd_limit: RawFd,
    umask: u32,
    sysctls: Vec<PreparedSysctl>,
    workdir: Option<WorkdirPlan>,
    stdio_owner: Option<(u32, u32)>,
    /// The running container [`Container::enter`] enters (its cgroup is taken by `spawn`).
    entered: Option<super::enter::Entered>,
    /// The working directory must be inside the root (a rootfs, or an entered mount
    /// namespace): checked after chdir.
    cwd_in_root: bool,
    /// A rootless caller enters a PID namespace: the child forks the command's process (see
    /// `child::fork_into_pid_namespace`).
    fork_into_pid: bool,
    /// When `new` began, with [`Container::timing`] on.
    started: Option<u64>,
}

impl Prepared {
    /// Checks the container and computes all the child needs, in phases. The order of the
    /// phases is the order in which a container with several errors reports them; the rootfs
    /// (layers, their locks, the generated /etc files) is prepared after the checks above it.
    pub(super) fn new(c: &Container) -> Result<Prepared> {
        let started = c.timing.then(timing::now);
        let program = program(c)?;
        let argv = argv(c)?;
        let mut envp = environment(c)?;
        let exec_paths = exec_paths(c, program)?;

        let entered = super::enter::prepare(c)?;
        let entered_ns = entered
            .as_ref()
            .map_or(Namespaces::empty(), |e| e.namespaces);
        let joined = joined_namespaces(c)? | entered_ns;
        let (hostname, domainname) = uts_names(c, joined)?;
        let ids = Identity::new(c, entered.as_ref())?;
        let min_fd = fd_targets(c)?;
        let (mut join, mut join_pid) = join_fds(c, joined);
        // Without CAP_SYS_ADMIN in its own user namespace, the spawning thread may not switch
        // its pid_for_children: a rootless caller's child does it as it enters the
        // container's user namespace, and forks.
        let fork_into_pid = ids.euid != 0
            && entered_ns.contains(Namespaces::PID)
            && entered_ns.contains(Namespaces::USER);
        if let Some(e) = &entered {
            // All at once with setns(pidfd, flags) in the child; the PID namespace by the
            // spawning thread's pid_for_children (setns(pidfd, CLONE_NEWPID)), or rootless
            // in the child too.
            let in_child = match fork_into_pid {
                true => entered_ns,
                false => entered_ns - Namespaces::PID,
            };
            if !in_child.is_empty() {
                join.push((e.pidfd, in_child.bits() as i32));
            }
            if entered_ns.contains(Namespaces::PID) && !fork_into_pid {
                join_pid = Some(e.pidfd);
            }
        }
        check_clone(c)?;
        // setns(time) needs a process that shares its memory with nobody: a spawn that joins
        // a time namespace copies the page tables instead. (A *new* time namespace is fine
        // with CLONE_VM: its offsets are zero and the child never reads the vDSO data.)
        let share_vm = !joined.contains(Namespaces::TIME);
        let changes_credentials = ids.uid.is_some()
            || ids.gid.is_some()
            || ids.become_namespace_root
            || joined.contains(Namespaces::USER);

        let rootfs = prepare_rootfs(c, joined, &ids)?;
        let fd_limit = fd_limit(c, min_fd)?;
        envp.extend(default_environment(c, ids.home.as_deref())?);
        if c.umask & !0o777 != 0 {
            return Err(Error::config(
                "umask",
                format!("{:#o} has bits beyond the permission bits 0o777", c.umask),
            ));
        }
        let sysctls = sysctl::prepare(&c.sysctls, c.namespaces, ping_group_range(c, &ids))?;
        let workdir = workdir_plan(c)?;
        let cwd = c
            .cwd
            .as_deref()
            .map(|p| cstring(p.as_os_str(), "working directory"))
            .transpose()?;
        let user_ns = (c.namespaces | joined).contains(Namespaces::USER);
        let privileged = ids.euid == 0 || user_ns;
        let security = PreparedSecurity::prepare(&c.security, privileged, user_ns)?;
        let stdio_owner = (ids.uid.is_some() || ids.gid.is_some())
            .then(|| (ids.uid.unwrap_or(u32::MAX), ids.gid.unwrap_or(u32::MAX)));

        Ok(Prepared {
            program: c.program.clone(),
            search_path: search_path(c),
            argv,
            envp,
            exec_paths,
            cwd,
            hostname,
            domainname,
            id_maps: ids.id_maps,
            groups: ids.groups,
            uid: ids.uid,
            gid: ids.gid,
            join,
            join_pid,
            cgroup: None,
            security,
            privileged,
            rootfs,
            share_vm,
            become_namespace_root: ids.become_namespace_root,
            changes_credentials,
            flags: c.namespaces.bits(),
            min_fd,
            fd_limit,
            umask: c.umask,
            sysctls,
            workdir,
            stdio_owner,
            cwd_in_root: c.rootfs.is_some() || entered_ns.contains(Namespaces::MOUNT),
            entered,
            fork_into_pid,
            started,
        })
    }

    /// Clones the child and sees it through its setup: its cgroup and descriptors, the
    /// clone, the parent's steps while it waits, then its verdict (EOF: it exec'd).
    ///
    /// `capture`: [`Container::output`]'s defaults (stdin from `/dev/null`, stdout and stderr
    /// piped) for the streams left at [`Stdio::Inherit`].
    ///
    /// `park`: the exec fifo of [`Container::create`] and the child's end of its hold
    /// socket: the child parks before exec until released on the socket and a byte is
    /// written to the fifo, and this returns once it is parked.
    pub(super) fn spawn(
        mut self,
        c: &Container,
        capture: bool,
        park: Option<[BorrowedFd<'_>; 2]>,
    ) -> Result<Child> {
        let network = net::Setup::prepare(c.network.as_ref(), c.namespaces)?;
        // Declared first so that it is removed last, after a failed child is reaped.
        let (owned_cgroup, skipped_limits) = create_cgroup(c)?;
        // An entered container's cgroup, unless the caller gave one.
        let entered_cgroup = self.entered.as_mut().and_then(|e| e.cgroup.take());
        let target: Option<&Cgroup> = match (&c.cgroup, &owned_cgroup) {
            (_, Some(owned)) => Some(owned),
            (Some(CgroupPlacement::Existing(cg)), None) => Some(cg),
            _ => entered_cgroup.as_ref(),
        };
        self.cgroup = target.map(|cg| cg.as_fd().as_raw_fd());
        let fds = ChildFds::new(c, self.min_fd, capture, self.cwd_in_root)?;
        let pipes = Pipes::new(self.min_fd)?;
        let park: Option<[OwnedFd; 2]> = match park {
            Some([fifo, hold]) => {
                Some([dup_high(fifo, self.min_fd)?, dup_high(hold, self.min_fd)?])
            }
            None => None,
        };
        // A parked child outlives this frame, whose plan and stack it reads until exec: it
        // needs a copy of our memory, not a share of it.
        self.share_vm &= park.is_none();
        let park_fds = park
            .as_ref()
            .map(|fds| fds.each_ref().map(AsRawFd::as_raw_fd));
        let buffers = self.buffers(c, &fds, pipes.err_write.as_raw_fd(), park_fds)?;
        let mut plan = self.child_plan(c, &buffers, &fds, &pipes, network.as_ref());
        [plan.park_fd, plan.hold_fd] = park_fds.unwrap_or([-1, -1]);
        // Where the child sends the pid and pidfd of the process it forks (rootless enter of
        // a PID namespace): ours, and its end, closed here once it is cloned.
        let (fork_ours, fork_theirs) = match self.fork_into_pid {
            true => {
                let (ours, theirs) = pty_socket(self.min_fd)?;
                (Some(ours), Some(theirs))
            }
            false => (None, None),
        };
        plan.fork_socket = fork_theirs.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        // The forked process is born in the PID namespace the container's processes see.
        plan.undumpable |= self.fork_into_pid;

        // The child's stack. Declared before the child guard so that it is unmapped only
        // after the child has exec'd or been killed and reaped.
        let stack = Stack::new(256 * 1024, "mmap(child stack)")?;
        // Declared before the child guard so that the caller's dumpable flag comes back only
        // once the child has exec'd or been reaped.
        // A caller that is not root writes a user namespace's maps through the child's /proc
        // files, which it owns only while the shared memory is dumpable: another spawn's
        // child that changes its credentials meanwhile would make them root's (EACCES).
        // Such spawns take turns from the clone to the exec.
        let _turn = (self.share_vm
            && self.changes_credentials
            && !nix::unistd::geteuid().is_root())
        .then(|| {
            UNPRIVILEGED_CREDENTIAL_CHANGES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        });
        let _dumpable = (self.share_vm && (self.changes_credentials || plan.undumpable))
            .then(KeepDumpable::new);
        // The child's stage stamps, where it shares our memory (see `timing`).
        let stamps: Option<Box<timing::ChildStamps>> = self
            .started
            .filter(|_| self.share_vm && !self.fork_into_pid)
            .map(|_| Box::default());
        plan.stamps = stamps
            .as_deref()
            .map_or(std::ptr::null(), |s| s as *const _);
        // (Read only with timing on: a spawn without it makes no clock call.)
        let cloning = self.started.map(|_| timing::now());
        let (pid, pidfd, placed) = self.clone(c.clone_call, &stack, &mut plan)?;
        let mut guard = KillOnDrop(Some(Child::new(pid, pidfd)));
        drop(pipes.err_write);
        drop(pipes.go_read);
        drop(fork_theirs);
        let veth = release_child(
            self.id_maps.as_ref(),
            (pid, guard.0.as_ref().map(Child::pidfd)),
            network.as_ref(),
            target.filter(|_| !placed),
            plan.wait_for_go.then_some(&pipes.go_write),
        )?;
        let (report, got) = read_report(&pipes.err_read)?;
        drop(pipes.go_write);
        if let Some(ours) = &fork_ours {
            // The child forked the command's process and exits: that process, our child too
            // (CLONE_PARENT), is the one to hand back; none when the child failed first.
            let forked = receive_pid_and_fd(ours);
            if let Some(mut intermediate) = guard.0.take() {
                let _ = intermediate.wait();
            }
            if let Some((pid, pidfd)) = forked? {
                guard.0 = Some(Child::new(pid, pidfd));
            } else if got == 0 {
                return Err(Error::sys("recvmsg(the forked process)", Errno::EPROTO));
            }
        }

        let mut child = guard
            .0
            .take()
            .ok_or_else(|| Error::sys("spawn", Errno::ECHILD))?;
        child.cgroup = owned_cgroup;
        child.skipped_limits = skipped_limits;
        child.veth = veth;
        if got == 0 {
            child.start_timing = self.started.zip(cloning).map(|(started, cloning)| {
                let parent = timing::ParentStamps { started, cloning };
                StartTiming::new(parent, stamps.as_deref(), timing::now())
            });
            // Only a child that exec'd has sent its pty master: one that failed before opening
            // it sent nothing, and its report is what the caller needs to see.
            child.tty = match (fds.tty_master, &fds.pty_socket) {
                (Some(m), _) => Some(m),
                (None, Some((ours, _))) => Some(receive_fd(ours)?),
                (None, None) => None,
            };
            child.locks = self
                .rootfs
                .as_mut()
                .map(|r| std::mem::take(&mut r.locks))
                .unwrap_or_default();
            hand_over_stdio(&mut child, fds.parent_ends);
            return Ok(child);
        }
        // The child reported a failure and exits with 127: reap it, then say what failed.
        let _ = child.wait();
        Err(self.reported(&report[..got], "read(error pipe)"))
    }

    /// The error a child's report stands for (`report`: the bytes read, `child::REPORT_SIZE`
    /// or the head alone); `read` names the read for a report that is not one.
    fn reported(&self, report: &[u8], read: &'static str) -> Error {
        let got = report.len();
        // The short form (the head alone) is a report without an interpreter field.
        let interpreter = match got {
            child::REPORT_SIZE => ChildError::interpreter(&report[ChildError::WIRE_SIZE..]),
            _ => None,
        };
        let head = (got == ChildError::WIRE_SIZE || got == child::REPORT_SIZE)
            .then(|| report[..ChildError::WIRE_SIZE].try_into().ok())
            .flatten();
        match head.and_then(|head| ChildError::from_wire(&head)) {
            Some(e) => self.describe(e, interpreter),
            None => Error::sys(read, Errno::EPROTO),
        }
    }

    /// The arrays the child reads (the plan points into them): descriptor moves, the
    /// descriptors exec keeps, the pointer arrays for execve, and the init's argv.
    fn buffers(
        &self,
        c: &Container,
        fds: &ChildFds,
        err_write: RawFd,
        park_fds: Option<[RawFd; 2]>,
    ) -> Result<PlanBuffers> {
        let fd_moves = fds
            .moves
            .iter()
            .map(|(fd, t)| (fd.as_raw_fd(), *t))
            .collect();
        // The program's memfd, numbered where no descriptor the child moves into place can
        // land on it: a copy above them when its own number may be one of their targets.
        let (init_memfd, _init_memfd_copy) = match c.init {
            true => {
                let memfd = super::init::memfd()?;
                if memfd < self.min_fd {
                    // SAFETY: the memfd stays open in the caller for good (see `init::memfd`).
                    let copy = dup_high(unsafe { BorrowedFd::borrow_raw(memfd) }, self.min_fd)?;
                    (Some(copy.as_raw_fd()), Some(copy))
                } else {
                    (Some(memfd), None)
                }
            }
            false => (None, None),
        };
        let mut keep_fds: Vec<RawFd> = c.fds.iter().map(|(_, t)| *t).collect();
        keep_fds.push(err_write);
        keep_fds.extend(init_memfd);
        keep_fds.extend(park_fds.into_iter().flatten());
        keep_fds.sort_unstable();
        let exec_ptrs: Vec<*const c_char> = self.exec_paths.iter().map(|p| p.as_ptr()).collect();
        let argv_ptrs = null_terminated(&self.argv);
        let envp_ptrs = null_terminated(&self.envp);
        let err_fd_digits =
            init_memfd.map(|_| CString::new(err_write.to_string()).expect("digits"));
        // Points into the strings (heap buffers, which stay put when the vectors and the
        // CString are moved into the struct), not into the vectors themselves.
        let init_argv = match &err_fd_digits {
            Some(digits) if c.pause => super::init::pause_argv(digits),
            Some(digits) if c.standby => super::init::standby_argv(digits, STANDBY_SOCKET_DIGITS),
            Some(digits) => {
                super::init::argv(digits, !self.security.custom_filter, &exec_ptrs, &argv_ptrs)
            }
            None => Vec::new(),
        };
        Ok(PlanBuffers {
            fd_moves,
            keep_fds,
            init_memfd,
            _init_memfd_copy,
            exec_ptrs,
            argv_ptrs,
            envp_ptrs,
            _err_fd_digits: err_fd_digits,
            init_argv,
        })
    }

    /// Everything the child needs, borrowed from `self` and `buffers`, which outlive it.
    fn child_plan<'a>(
        &'a self,
        c: &Container,
        buffers: &'a PlanBuffers,
        fds: &ChildFds,
        pipes: &Pipes,
        network: Option<&net::Setup>,
    ) -> ChildPlan<'a> {
        ChildPlan {
            err_fd: pipes.err_write.as_raw_fd(),
            go_fd: pipes.go_read.as_raw_fd(),
            park_fd: -1,
            hold_fd: -1,
            parent_fds: [pipes.err_read.as_raw_fd(), pipes.go_write.as_raw_fd()],
            wait_for_go: self.id_maps.is_some() || network.is_some_and(|n| n.needs_parent()),
            // Not with id maps to write: a rootless parent writes them through the child's
            // /proc files, which a non-dumpable child gives to root.
            undumpable: self.join_pid.is_some() && self.id_maps.is_none(),
            unshare_cgroup_ns: false,
            parent_death_signal: c.parent_death_signal.map_or(0, crate::Signal::raw),
            join: &self.join,
            groups: self.groups.as_deref(),
            gid: self.gid,
            uid: self.uid,
            hostname: self.hostname.as_deref(),
            domainname: self.domainname.as_deref(),
            rootfs: self.rootfs.as_ref(),
            cwd: self.cwd.as_deref(),
            fd_moves: &buffers.fd_moves,
            keep_fds: &buffers.keep_fds,
            fd_limit: self.fd_limit,
            security: &self.security,
            privileged: self.privileged,
            init: buffers.init_memfd.map(|memfd| child::InitPlan {
                memfd,
                argv: buffers.init_argv.as_ptr(),
            }),
            become_namespace_root: self.become_namespace_root,
            tty: c.tty,
            loopback_up: network.is_some(),
            pty_socket: fds
                .pty_socket
                .as_ref()
                .map_or(-1, |(_, theirs)| theirs.as_raw_fd()),
            // Only for a pty the child opens (see `pty_socket`); nix's Winsize is libc's
            // winsize; 0x0 when the caller has no terminal.
            winsize: (fds.pty_socket.as_ref())
                .and_then(|_| tty::first_window_size(c.console_size))
                .unwrap_or(libc::winsize {
                    ws_row: 0,
                    ws_col: 0,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                }),
            exec_paths: &buffers.exec_ptrs,
            argv: buffers.argv_ptrs.as_ptr(),
            envp: buffers.envp_ptrs.as_ptr(),
            umask: self.umask,
            sysctls: &self.sysctls,
            workdir: self.workdir.as_ref(),
            stdio_owner: self.stdio_owner,
            own_pty_stdio: fds.tty_master.is_some(),
            cwd_in_root: self.cwd_in_root,
            fork_socket: -1,
            personality: c.personality.map(super::Personality::raw),
            stamps: std::ptr::null(),
        }
    }

    /// Turns a child's report into the error `spawn` returns.
    fn describe(&self, e: ChildError, interpreter: Option<&[u8]>) -> Error {
        // The working directory, for the errors of the steps that reach it.
        let cwd = || (self.cwd.as_deref()).map(|c| PathBuf::from(OsStr::from_bytes(c.to_bytes())));
        match (&self.rootfs, e.stage) {
            (Some(r), SetupStage::Mount | SetupStage::PivotRoot) => {
                let error = r.error(e.stage, e.index, e.step, e.errno);
                match (e.errno, &self.id_maps) {
                    // The namespace's root assembles the rootfs; without a mapped root the
                    // child keeps the caller's ids, which files in it cannot have.
                    (Errno::EOVERFLOW, Some(_)) if !self.become_namespace_root => {
                        Error::unsupported(
                            "assembling the rootfs in a new user namespace",
                            format!(
                                "{error}: EOVERFLOW means a file would get a uid or gid the \
                                 namespace does not map; map 0 inside in both uid_map and \
                                 gid_map so that the namespace's root assembles it"
                            ),
                        )
                    }
                    _ => error,
                }
            }
            (_, SetupStage::JoinNamespace) if self.entered.is_some() => Error::Sys {
                syscall: "setns(pidfd) (entering the running container's namespaces)",
                path: self
                    .entered
                    .as_ref()
                    .map(|t| PathBuf::from(format!("/proc/{}/ns", t.pid))),
                errno: e.errno,
            },
            (_, SetupStage::Chdir) if e.step == crate::rootfs::CWD_OUTSIDE_ROOT => Error::Sys {
                syscall: "getcwd (outside the container's root)",
                path: cwd(),
                errno: e.errno,
            },
            (_, SetupStage::Chdir) if e.step >= child::CWD_CREATE => {
                let syscall = match (e.step, e.errno) {
                    (child::CWD_CREATE, Errno::EROFS) => {
                        "mkdirat (the working directory is missing from a read-only root: \
                         create it in the image, or use a writable layer)"
                    }
                    (child::CWD_CREATE, _) => "mkdirat (creating the working directory)",
                    (child::CWD_CHOWN, _) => {
                        "fchownat (giving the new working directory to the user)"
                    }
                    _ => "openat2 (the working directory, inside the root)",
                };
                Error::Sys {
                    syscall,
                    path: cwd(),
                    errno: e.errno,
                }
            }
            (_, SetupStage::Chdir) if e.step == 0 => Error::Sys {
                syscall: match e.errno {
                    Errno::ENOTDIR => "chdir (the working directory is not a directory)",
                    Errno::EACCES => {
                        "chdir (the container's user may not enter the working directory or \
                         one above it: run as a user who may, or choose another)"
                    }
                    Errno::ENOENT => {
                        "chdir (no such working directory: without a rootfs it is not \
                         created; create it first)"
                    }
                    _ => "chdir (the working directory)",
                },
                path: cwd(),
                errno: e.errno,
            },
            (_, SetupStage::Rlimits) => match self.security.rlimits.get(e.index as usize) {
                Some(l) => rlimit_error(l, e.errno, self.id_maps.is_some()),
                None => Error::setup(e.stage, e.errno),
            },
            // `index`: the standard descriptor (a pipe, socket or the container's pty).
            (_, SetupStage::StdioOwner) => Error::Sys {
                syscall: match e.index {
                    0 => "fchown (giving stdin to the container's user)",
                    1 => "fchown (giving stdout to the container's user)",
                    _ => "fchown (giving stderr to the container's user)",
                },
                path: None,
                errno: e.errno,
            },
            (_, SetupStage::Sysctl) => match self.sysctls.get(e.index as usize) {
                Some(s) => Error::Sys {
                    syscall: match (e.step, e.errno) {
                        (child::SYSCTL_OPEN, Errno::ENOENT) => {
                            "open (sysctl: this kernel does not have it, or does not show it \
                             in a namespace owned by a user namespace)"
                        }
                        (child::SYSCTL_OPEN, _) => "open (sysctl)",
                        _ => "write (sysctl)",
                    },
                    path: Some(PathBuf::from(OsStr::from_bytes(s.path.to_bytes()))),
                    errno: e.errno,
                },
                None => Error::setup(e.stage, e.errno),
            },
            (_, SetupStage::Exec) => Error::Setup {
                stage: e.stage,
                errno: e.errno,
                exec: Some(Box::new(self.exec_failure(&e, interpreter))),
            },
            _ => Error::setup(e.stage, e.errno),
        }
    }

    /// What the parent knows about the program the child could not execute.
    fn exec_failure(&self, e: &ChildError, interpreter: Option<&[u8]>) -> crate::ExecFailure {
        let indexed = e.step & child::EXEC_INDEXED != 0;
        let path = match (indexed, &self.search_path) {
            (true, _) => self.exec_paths.get(e.index as usize),
            // The program has a '/': there was one candidate.
            (false, None) => self.exec_paths.first(),
            (false, Some(_)) => None,
        };
        crate::ExecFailure {
            program: self.program.clone(),
            path: path.map(|p| PathBuf::from(OsStr::from_bytes(p.to_bytes()))),
            search_path: self.search_path.clone(),
            target: match indexed {
                true => crate::ExecTarget::from_wire(e.step & 0xff),
                false => crate::ExecTarget::Unknown,
            },
            in_rootfs: self.cwd_in_root,
            interpreter: interpreter.map(|i| PathBuf::from(OsStr::from_bytes(i))),
            interpreter_truncated: interpreter.is_some()
                && e.step & child::EXEC_INTERP_TRUNCATED != 0,
            interpreter_exists: interpreter.is_some() && e.step & child::EXEC_INTERP_EXISTS != 0,
        }
    }

    /// clone3 (or clone) with all signals blocked, so that no handler of the parent can run
    /// in the child before it has reset them.
    /// Returns the pid, the pidfd, and whether the child was cloned straight into the cgroup.
    fn clone(
        &self,
        call: CloneCall,
        stack: &Stack,
        plan: &mut ChildPlan<'_>,
    ) -> Result<(i32, OwnedFd, bool)> {
        let _blocked = sys::AllSignalsBlocked::new()?;
        let restore_pid_ns = match self.join_pid {
            Some(fd) => Some(switch_pid_for_children(fd).map_err(|e| match e {
                // The kernel lets a thread set pid_for_children only with CAP_SYS_ADMIN in its
                // own user namespace, which an unprivileged caller never has there.
                Error::Sys {
                    errno: Errno::EPERM,
                    ..
                } if self.entered.is_some() => Error::unsupported(
                    "entering a running container's PID namespace without CAP_SYS_ADMIN",
                    "the spawning thread must set its pid_for_children to the container's \
                     (setns(pidfd, CLONE_NEWPID): EPERM), which needs CAP_SYS_ADMIN in the \
                     caller's own user namespace, and the container has no user namespace \
                     of its own through which the child could do it: run as root, or as the \
                     container's owner",
                ),
                e => e,
            })?),
            None => None,
        };
        let result = self.clone_blocked(call, stack, plan);
        let Some(saved) = restore_pid_ns else {
            return result;
        };
        // SAFETY: setns back into the namespace we came from, fd owned by `saved`.
        let restored = unsafe {
            sys::syscall3(
                libc::SYS_setns,
                saved.as_raw_fd() as usize,
                libc::CLONE_NEWPID as usize,
                0,
            )
        };
        match (restored, result) {
            (Ok(_), result) => result,
            (Err(e), result) => {
                // This thread's later children (any fork, not only ours) would start in the
                // joined PID namespace: fail loudly rather than go on. The child is killed
                // and reaped by its handle's drop.
                drop(result.map(|(pid, pidfd, _)| Child::new(pid, pidfd)));
                Err(Error::sys(
                    "setns(pid) restoring this thread's pid_for_children (its later children \
                     start in the joined PID namespace)",
                    e,
                ))
            }
        }
    }

    fn clone_blocked(
        &self,
        call: CloneCall,
        stack: &Stack,
        plan: &mut ChildPlan<'_>,
    ) -> Result<(i32, OwnedFd, bool)> {
        let vm = if self.share_vm {
            libc::CLONE_VM as u64
        } else {
            0
        };
        if call != CloneCall::Legacy {
            let (into_cgroup, cgroup) = match self.cgroup {
                Some(fd) => (sys::CLONE_INTO_CGROUP, fd as u64),
                None => (0, 0),
            };
            match self.clone3(self.flags | vm | into_cgroup, cgroup, stack, plan) {
                Ok((pid, fd)) => return Ok((pid, fd, self.cgroup.is_some())),
                Err(Errno::ENOSYS) if call == CloneCall::Auto => {}
                // Kernels before 5.7 know a shorter clone_args and refuse the longer one (E2BIG).
                // Any other error may be the cgroup's or the clone's own (EPERM from an LSM's
                // user namespace restriction, ENOSPC from user.max_user_namespaces): clone
                // again without the cgroup, so that a clone error is reported as one and a
                // cgroup error comes from the parent's cgroup.procs write, with its remedy.
                Err(_) if into_cgroup != 0 => {
                    let flags = self.defer_cgroup_placement(plan);
                    return self
                        .clone3(flags | vm, 0, stack, plan)
                        .map(|(pid, fd)| (pid, fd, false))
                        .map_err(|e| Error::sys("clone3", e));
                }
                Err(e) => return Err(Error::sys("clone3", e)),
            }
            if self.flags & sys::CLONE_NEWTIME != 0 {
                return Err(Error::unsupported(
                    "time namespace",
                    "clone3 is not available (ENOSYS), and only clone3 can create one",
                ));
            }
        }
        // The classic clone cannot place the child in a cgroup: the parent does it.
        let flags = match self.cgroup {
            Some(_) => self.defer_cgroup_placement(plan),
            None => self.flags,
        };
        let arg = plan as *const ChildPlan<'_> as *mut libc::c_void;
        let mut pidfd: libc::c_int = -1;
        let flags = flags | vm | sys::CLONE_PIDFD | libc::SIGCHLD as u64;
        // SAFETY: as for clone3; the stack top is 16-byte aligned.
        match unsafe { sys::clone_legacy(flags, stack.top(), &mut pidfd, child::child_main, arg) } {
            // SAFETY: CLONE_PIDFD made the kernel store a new descriptor in `pidfd`.
            Ok(pid) => Ok((pid as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }, false)),
            Err(e) => Err(Error::sys("clone", e)),
        }
    }

    /// Without CLONE_INTO_CGROUP the parent moves the child after clone, so the child must
    /// wait for it, and a new cgroup namespace must be made after the move (its root is the
    /// cgroup the process is in when it is made). Returns the clone flags to use.
    fn defer_cgroup_placement(&self, plan: &mut ChildPlan<'_>) -> u64 {
        plan.wait_for_go = true;
        let cgroup_ns = libc::CLONE_NEWCGROUP as u64;
        plan.unshare_cgroup_ns = self.flags & cgroup_ns != 0;
        self.flags & !cgroup_ns
    }

    fn clone3(
        &self,
        flags: u64,
        cgroup: u64,
        stack: &Stack,
        plan: &ChildPlan<'_>,
    ) -> Result<(i32, OwnedFd), Errno> {
        let arg = plan as *const ChildPlan<'_> as *mut libc::c_void;
        let mut pidfd: RawFd = -1;
        let mut args = sys::CloneArgs {
            flags: flags | sys::CLONE_PIDFD,
            pidfd: &mut pidfd as *mut RawFd as u64,
            // SIGCHLD: execve resets any other exit signal to it anyway. A caller that ignores
            // SIGCHLD or reaps with waitpid(-1) takes the status; `Child::wait` then reads it
            // from the pidfd (Linux 6.15).
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.base() as u64,
            stack_size: stack.size() as u64,
            cgroup,
            ..Default::default()
        };
        // SAFETY: args describe a mapped stack that outlives the child's use of it (the
        // caller keeps `stack` until exec or reaping), `pidfd` is a live local, and
        // child_main only uses `plan`, which outlives the child's use the same way.
        let pid = unsafe { sys::clone3(&mut args, child::child_main, arg) }?;
        // SAFETY: CLONE_PIDFD made the kernel store a new descriptor in `pidfd`.
        Ok((pid as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }))
    }
}

/// The program, checked: not empty, no NUL byte.
fn program(c: &Container) -> Result<CString> {
    if c.program.is_empty() {
        return Err(Error::config("program", "empty"));
    }
    cstring(&c.program, "program")
}

/// argv: `arg0` (by default the program as given), then the arguments.
fn argv(c: &Container) -> Result<Vec<CString>> {
    let mut argv = vec![cstring(c.arg0.as_deref().unwrap_or(&c.program), "argv[0]")?];
    for a in &c.args {
        argv.push(cstring(a, "argument")?);
    }
    Ok(argv)
}

/// The caller's `KEY=VALUE` environment; HOME and TERM defaults are added later
/// ([`default_environment`]), once the user is known.
fn environment(c: &Container) -> Result<Vec<CString>> {
    let mut envp = Vec::with_capacity(c.env.len() + 2);
    for (k, v) in &c.env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(Error::config(
                "environment",
                format!("variable name {k:?} is empty or contains '='"),
            ));
        }
        let mut kv = k.clone().into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(
            CString::new(kv)
                .map_err(|_| Error::config("environment", format!("{k:?} contains a NUL byte")))?,
        );
    }
    Ok(envp)
}

/// The PATH the child searches for a program without a `/`: the container's, or the default.
fn search_path(c: &Container) -> Option<std::ffi::OsString> {
    if c.program.as_bytes().contains(&b'/') {
        return None;
    }
    Some(
        c.env
            .get(OsStr::new("PATH"))
            .cloned()
            .unwrap_or_else(|| DEFAULT_PATH.into()),
    )
}

/// The paths the child tries to exec, in order: the program itself when it has a `/`,
/// else each directory of the container's PATH joined with it.
fn exec_paths(c: &Container, program: CString) -> Result<Vec<CString>> {
    if c.program.as_bytes().contains(&b'/') {
        return Ok(vec![program]);
    }
    // execvp semantics, with the container's PATH rather than the caller's.
    let path = c
        .env
        .get(OsStr::new("PATH"))
        .map(|p| p.as_bytes())
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(c.program.as_bytes());
            CString::new(full).map_err(|_| Error::config("PATH", "contains a NUL byte"))
        })
        .collect()
}

/// The kinds of namespace joined: each at most once, and none also created.
fn joined_namespaces(c: &Container) -> Result<Namespaces> {
    let joined = c
        .join
        .iter()
        .fold(Namespaces::empty(), |acc, n| acc | n.kind());
    if c.join.len() != joined.iter().count() {
        return Err(Error::config(
            "namespaces",
            "the same kind of namespace is joined twice",
        ));
    }
    if !(joined & c.namespaces).is_empty() {
        return Err(Error::config(
            "namespaces",
            format!("{:?} both created and joined", joined & c.namespaces),
        ));
    }
    Ok(joined)
}

/// A resource limit the child could not set, named with its values and the cause.
fn rlimit_error(l: &crate::security::Rlimit, errno: Errno, userns: bool) -> Error {
    let name = crate::security::Rlimit::name_of(l.resource).map_or_else(
        || format!("resource {}", l.resource),
        |n| format!("RLIMIT_{}", n.to_uppercase()),
    );
    let value = |v: u64| match v {
        u64::MAX => "unlimited".to_string(),
        v => v.to_string(),
    };
    let why = match errno {
        Errno::EPERM if userns => {
            "raising a hard limit above the caller's needs CAP_SYS_RESOURCE in the initial \
             user namespace, which a container in a new user namespace never has: ask for at \
             most the caller's hard limit (`ulimit -H`), or raise it before spawning"
        }
        Errno::EPERM => {
            "raising a hard limit above the caller's needs CAP_SYS_RESOURCE: ask for at most \
             the caller's hard limit (`ulimit -H`), or keep the capability"
        }
        Errno::EINVAL => "the soft limit is above the hard one, or the kernel refuses the value",
        _ => "the kernel refused it",
    };
    Error::config(
        "rlimit",
        format!(
            "setrlimit {name} soft {} hard {}: {errno}: {why}",
            value(l.soft),
            value(l.hard)
        ),
    )
}

/// The hostname and domain name to set, checked; only in a UTS namespace of the
/// container's (created or joined), since they would change the host's otherwise.
fn uts_names(c: &Container, joined: Namespaces) -> Result<(Option<UtsName>, Option<UtsName>)> {
    let uts = (c.namespaces | joined).contains(Namespaces::UTS);
    if (c.hostname.is_some() || c.domainname.is_some()) && !uts {
        return Err(Error::config(
            "hostname",
            "setting the hostname or domain name needs a UTS namespace of the container's, new or \
             joined (it would change the host's): add Namespaces::UTS",
        ));
    }
    let hostname = c
        .hostname
        .as_deref()
        .map(|h| uts_name("hostname", h))
        .transpose()?;
    let domainname = c
        .domainname
        .as_deref()
        .map(|h| uts_name("domain name", h))
        .transpose()?;
    Ok((hostname, domainname))
}

/// A hostname or domain name, as set with sethostname / setdomainname.
type UtsName = Vec<u8>;

/// One hostname or domain name, checked (`rootfs::etc::is_host_name`): it goes into lines of
/// the generated /etc/hosts.
fn uts_name(what: &'static str, name: &OsStr) -> Result<UtsName> {
    let b = name.as_bytes();
    if !crate::rootfs::etc::is_host_name(b) {
        return Err(Error::config(
            what,
            format!(
                "{name:?} is not a valid host name (RFC 1123): labels of letters, digits, '-' \
                 and '_', 1 to 63 bytes each, not starting or ending with '-', joined by single \
                 dots, at most 64 bytes in all; no whitespace, control characters or '#'"
            ),
        ));
    }
    Ok(b.to_vec())
}

/// Whether `id` is inside one of `maps`. The default map (none given) has only 0 inside.
fn mapped(maps: &[IdMap], id: u32) -> bool {
    match maps {
        [] => id == 0,
        _ => maps
            .iter()
            .any(|m| id >= m.inside && id - m.inside < m.count),
    }
}

/// Why `id` (a user's or an image's, e.g. USER app) cannot be taken in the new user
/// namespace, with the ids that are mapped and what to do.
fn unmapped(id: u32, maps: &[IdMap], which: &str, subids: &str) -> String {
    let inside = match maps {
        [] => "only 0 (the caller)".to_owned(),
        _ => maps
            .iter()
            .map(|m| match m.count {
                1 => m.inside.to_string(),
                n => format!("{}-{}", m.inside, u64::from(m.inside) + u64::from(n) - 1),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!(
        "{id} is not mapped in the new user namespace, whose {which} maps {inside}: map a \
         range that holds it (without root, ranges of {subids} through newuidmap/newgidmap), \
         run as root, or run as a mapped user (docker's --user 0)"
    )
}

/// The maps given, or by default `id` (the caller's) as 0 inside.
fn map_or_default(maps: &[IdMap], id: u32) -> Vec<IdMap> {
    if maps.is_empty() {
        vec![IdMap::single(0, id)]
    } else {
        maps.to_vec()
    }
}

/// Who the child ends as, and the user namespace it is in: the id maps, uid, gid and
/// supplementary groups, and HOME (from the image's /etc/passwd).
struct Identity {
    /// The caller's effective ids.
    euid: u32,
    egid: u32,
    id_maps: Option<PreparedIdMaps>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<libc::gid_t>>,
    /// Switch to root of the new user namespace before the rootfs is assembled.
    become_namespace_root: bool,
    /// HOME's value, when the caller's environment has none.
    home: Option<Vec<u8>>,
}

impl Identity {
    /// Looks up the user and decides the ids; the user namespace's maps first, since they
    /// bound which ids the child may end as.
    fn new(c: &Container, entered: Option<&super::enter::Entered>) -> Result<Identity> {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let id_maps = id_maps(c, euid, egid)?;
        // In a new user namespace the child still has the caller's kernel ids, which the map
        // may not cover: it becomes the namespace's root when 0 is mapped (before the rootfs
        // is assembled), and ends as the requested ids, or as that root.
        let become_namespace_root =
            id_maps.is_some() && mapped(&c.uid_map, 0) && mapped(&c.gid_map, 0);
        let needs_home = !c.env.contains_key(OsStr::new("HOME"));
        let (passwd, resolved) = lookup_user(c, needs_home, entered)?;
        let (mut uid, mut gid) = final_ids(c, id_maps.is_some(), resolved.as_ref())?;
        let entered_userns = entered.is_some_and(|e| e.namespaces.contains(Namespaces::USER));
        if entered_userns {
            // As `nsenter -U`: root of the entered user namespace unless told otherwise.
            uid = uid.or(Some(0));
            gid = gid.or(Some(0));
        }
        let setgroups_denied = entered.is_some_and(|e| e.setgroups_denied);
        let groups = groups(
            c,
            id_maps.as_ref(),
            gid,
            resolved.as_ref(),
            setgroups_denied,
        )?;
        let home = needs_home.then(|| match (&resolved, c.uid) {
            (Some(r), None) => r.home.clone(),
            _ => {
                // Without a uid the child keeps the caller's (no user namespace) or is
                // the overflow uid (a user namespace that does not map 0).
                let home_uid = uid.unwrap_or(if id_maps.is_some() { 65_534 } else { euid });
                user::home_for(home_uid, passwd.as_deref())
            }
        });
        Ok(Identity {
            euid,
            egid,
            id_maps,
            uid,
            gid,
            groups,
            become_namespace_root,
            home,
        })
    }
}

/// The id maps of a new user namespace (by default the caller as 0 inside); maps without
/// one are refused.
fn id_maps(c: &Container, euid: u32, egid: u32) -> Result<Option<PreparedIdMaps>> {
    if !c.namespaces.contains(Namespaces::USER) {
        if !c.uid_map.is_empty() || !c.gid_map.is_empty() {
            return Err(Error::config(
                "id maps",
                "uid and gid maps need a new user namespace (Namespaces::USER)",
            ));
        }
        return Ok(None);
    }
    let uid_map = map_or_default(&c.uid_map, euid);
    let gid_map = map_or_default(&c.gid_map, egid);
    PreparedIdMaps::prepare(&uid_map, &gid_map, euid, egid, euid == 0).map(Some)
}

/// docker's --user NAME[:GROUP], and HOME, from the container's /etc/passwd and
/// /etc/group (read here, before clone, inside the image). Returns the passwd file (when
/// read) and the resolved user.
fn lookup_user(
    c: &Container,
    needs_home: bool,
    entered: Option<&super::enter::Entered>,
) -> Result<(Option<Vec<u8>>, Option<user::ResolvedUser>)> {
    // The overlay of a container with a user namespace honours user.overlay.* xattrs only.
    let userns = c.namespaces.contains(Namespaces::USER)
        || c.join.iter().any(|n| n.kind() == Namespaces::USER);
    // An entered container's files, resolved inside its root (/proc/PID/root).
    let entered_root = entered
        .filter(|e| e.namespaces.contains(Namespaces::MOUNT))
        .map(|e| Rootfs::new(e.root()));
    // A surveyed target (a pool's slot) had them read when it was made.
    let known = entered.and_then(|e| e.etc.as_deref());
    let read_etc = |rel: &std::ffi::CStr| match (known, &c.rootfs, &entered_root) {
        (Some(etc), _, _) if rel == c"etc/passwd" => Ok(etc.passwd.clone()),
        (Some(etc), _, _) if rel == c"etc/group" => Ok(etc.group.clone()),
        (_, Some(r), _) | (_, None, Some(r)) => r.read_file(rel, userns),
        (_, None, None) => Rootfs::host().read_file(rel, userns),
    };
    let passwd = match (&c.user, needs_home) {
        (Some(_), _) => read_etc(c"etc/passwd")?,
        // HOME is a convenience: an unreadable passwd file leaves it at "/".
        (None, true) => read_etc(c"etc/passwd").ok().flatten(),
        (None, false) => None,
    };
    let resolved = match &c.user {
        Some(u) => {
            // A numeric group needs no group file (no supplementary groups then, as docker).
            let group = match u.group() {
                Some(user::Id::Number(_)) => None,
                _ => read_etc(c"etc/group")?,
            };
            Some(user::resolve(u, passwd.as_deref(), group.as_deref())?)
        }
        None => None,
    };
    Ok((passwd, resolved))
}

/// The uid and gid the child ends as: those given, else the user's, else in a new user
/// namespace its root (when mapped). In a new user namespace they must be mapped.
fn final_ids(
    c: &Container,
    new_userns: bool,
    resolved: Option<&user::ResolvedUser>,
) -> Result<(Option<u32>, Option<u32>)> {
    let want_uid = c.uid.or(resolved.map(|r| r.uid));
    let want_gid = c.gid.or(resolved.map(|r| r.gid));
    if !new_userns {
        return Ok((want_uid, want_gid));
    }
    let uid = want_uid.or(mapped(&c.uid_map, 0).then_some(0));
    let gid = want_gid.or(mapped(&c.gid_map, 0).then_some(0));
    if let Some(u) = uid.filter(|u| !mapped(&c.uid_map, *u)) {
        return Err(Error::config(
            "uid",
            unmapped(u, &c.uid_map, "uid_map", "/etc/subuid"),
        ));
    }
    if let Some(g) = gid.filter(|g| !mapped(&c.gid_map, *g)) {
        return Err(Error::config(
            "gid",
            unmapped(g, &c.gid_map, "gid_map", "/etc/subgid"),
        ));
    }
    Ok((uid, gid))
}

/// The supplementary groups to set (`None`: leave the caller's).
fn groups(
    c: &Container,
    id_maps: Option<&PreparedIdMaps>,
    gid: Option<u32>,
    resolved: Option<&user::ResolvedUser>,
    entered_setgroups_denied: bool,
) -> Result<Option<Vec<libc::gid_t>>> {
    // Clear supplementary groups whenever we switch identity, as docker does; in a user
    // namespace whose setgroups is denied the kernel refuses, so leave them then.
    let setgroups_ok = id_maps.is_none_or(|m| m.setgroups_allowed()) && !entered_setgroups_denied;
    Ok(match (&c.groups, gid) {
        (Some(g), _) if !setgroups_ok => {
            return Err(Error::config(
                "groups",
                format!("cannot set {g:?}: setgroups is denied in a rootless user namespace"),
            ))
        }
        (Some(g), _) => Some(g.clone()),
        // A user's own groups from /etc/group, those the namespace maps.
        (None, _) if setgroups_ok && resolved.is_some() => Some(
            resolved
                .map(|r| r.groups.as_slice())
                .unwrap_or_default()
                .iter()
                .copied()
                .filter(|g| id_maps.is_none() || mapped(&c.gid_map, *g))
                .collect(),
        ),
        (None, Some(_)) if setgroups_ok => Some(Vec::new()),
        (None, _) if id_maps.is_some() && setgroups_ok => Some(Vec::new()),
        _ => None,
    })
}

/// Checks the targets of passed descriptors (above stdio, each once) and returns the lowest
/// number above all of them (at least 3), where descriptors for the child are staged.
fn fd_targets(c: &Container) -> Result<RawFd> {
    for (_, target) in &c.fds {
        if *target < 3 {
            return Err(Error::config(
                "passed fd",
                format!("target {target} is stdio; use stdin/stdout/stderr"),
            ));
        }
        if c.fds.iter().filter(|(_, t)| t == target).count() > 1 {
            return Err(Error::config(
                "passed fd",
                format!("target {target} given twice"),
            ));
        }
    }
    Ok(c.fds.iter().map(|(_, t)| *t + 1).max().unwrap_or(3).max(3))
}

/// The namespaces to setns into, as (fd, CLONE_NEW* flag), and the PID namespace's fd apart:
/// that one is joined by the parent, for its children (see [`switch_pid_for_children`]).
fn join_fds(c: &Container, joined: Namespaces) -> (Vec<(RawFd, i32)>, Option<RawFd>) {
    let mut join: Vec<(RawFd, i32)> = Vec::new();
    let mut join_pid = None;
    for kind in joined.kinds() {
        if let Some(ns) = c.join.iter().find(|n| n.kind() == kind) {
            if kind == Namespaces::PID {
                join_pid = Some(ns.as_fd().as_raw_fd());
            } else {
                join.push((ns.as_fd().as_raw_fd(), kind.bits() as i32));
            }
        }
    }
    (join, join_pid)
}

/// What the namespaces ask of the clone: an init needs a PID namespace of its own, and
/// only clone3 can create a time namespace.
fn check_clone(c: &Container) -> Result<()> {
    // (A pool's standby is its slot's PID 2: the slot's PID 1 holds the namespace.)
    if c.init && !c.standby && !c.namespaces.contains(Namespaces::PID) {
        return Err(Error::config(
            "init",
            "an init needs a new PID namespace (Namespaces::PID)",
        ));
    }
    if c.namespaces.contains(Namespaces::TIME) && c.clone_call == CloneCall::Legacy {
        return Err(Error::config(
            "namespaces",
            "a new time namespace needs clone3 (CloneCall::Legacy cannot create one)",
        ));
    }
    Ok(())
}

/// The rootfs with its generated /etc files (and its locks); the extra hosts and resolver
/// settings have nowhere to go without one.
fn prepare_rootfs(
    c: &Container,
    joined: Namespaces,
    ids: &Identity,
) -> Result<Option<PreparedRootfs>> {
    // Devpts gives new ptys group 5 (tty) when the container has it.
    let tty_gid = ids.id_maps.is_none() || mapped(&c.gid_map, 5);
    let etc = etc_context(c, joined);
    match &c.rootfs {
        Some(r) => Ok(Some(r.prepare_for(c.namespaces, joined, tty_gid, &etc)?)),
        None if !c.etc.is_empty() => Err(Error::config(
            "add-host / dns",
            "extra hosts and resolver settings go into the generated /etc files of a \
             rootfs (Container::rootfs)",
        )),
        None => Ok(None),
    }
}

/// What the generated `/etc` files of a rootfs depend on (see `rootfs/etc.rs`).
fn etc_context(c: &Container, joined: Namespaces) -> crate::rootfs::etc::EtcContext<'_> {
    use crate::rootfs::etc::NetView;
    let net = if joined.contains(Namespaces::NET) {
        NetView::Joined
    } else if c.namespaces.contains(Namespaces::NET) {
        match c.network {
            Some(net::Net::Veth(_)) => NetView::Veth,
            _ => NetView::Loopback,
        }
    } else {
        NetView::Host
    };
    crate::rootfs::etc::EtcContext {
        config: &c.etc,
        net,
        hostname: c.hostname.as_deref(),
        domainname: c.domainname.as_deref(),
        uts_joined: joined.contains(Namespaces::UTS),
    }
}

/// The highest descriptor number the child closes up to: this process's RLIMIT_NOFILE
/// soft limit, at most 65536. Refuses passed-fd targets too close to it.
fn fd_limit(c: &Container, min_fd: RawFd) -> Result<RawFd> {
    let soft_nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    // The descriptors for the child are staged above every target, in this process and
    // in the child before its rlimits are applied: both under this process's soft limit.
    // (The container's own RLIMIT_NOFILE may be lower: it is set after the moves.)
    if (min_fd as u64) + 8 > soft_nofile && !c.fds.is_empty() {
        return Err(Error::config(
            "passed fd",
            format!(
                "target {} is too close to this process's RLIMIT_NOFILE soft limit \
                 ({soft_nofile}): descriptors are staged above every target; raise the \
                 soft limit (setrlimit, `ulimit -n`) or pass lower targets",
                min_fd - 1
            ),
        ));
    }
    Ok(soft_nofile.min(65_536) as RawFd)
}

/// HOME (`home`, when the caller set none), HOSTNAME (the hostname set, when the caller
/// set none) and, with a tty, TERM (when the caller set none), as docker sets them.
fn default_environment(c: &Container, home: Option<&[u8]>) -> Result<Vec<CString>> {
    let mut envp = Vec::new();
    if let Some(home) = home {
        let mut kv = b"HOME=".to_vec();
        kv.extend_from_slice(home);
        envp.push(CString::new(kv).unwrap_or_else(|_| c"HOME=/".to_owned()));
    }
    if let Some(name) = c.hostname.as_deref() {
        if !c.env.contains_key(OsStr::new("HOSTNAME")) {
            let mut kv = b"HOSTNAME=".to_vec();
            kv.extend_from_slice(name.as_bytes());
            // A NUL is refused with the hostname (uts_names) before this.
            envp.extend(CString::new(kv).ok());
        }
    }
    if c.tty && !c.env.contains_key(OsStr::new("TERM")) {
        envp.push(
            CString::new(format!("TERM={}", super::DEFAULT_TERM))
                .map_err(|_| Error::config("TERM", "NUL byte"))?,
        );
    }
    Ok(envp)
}

/// In a new user namespace, the gids it maps, as a range for `net.ipv4.ping_group_range`
/// (which may name only gids the writer's user namespace maps, and none above 2^31 - 1: the
/// sysctl's own bound, hence docker's "0 2147483647").
fn ping_group_range(c: &Container, ids: &Identity) -> Option<(u32, u32)> {
    const MAX: u32 = i32::MAX as u32;
    ids.id_maps.as_ref()?;
    let maps = map_or_default(&c.gid_map, ids.egid);
    let low = maps.iter().map(|m| m.inside).min().unwrap_or(0).min(MAX);
    let high = maps
        .iter()
        .map(|m| m.inside.saturating_add(m.count.saturating_sub(1)))
        .max()
        .unwrap_or(0)
        .min(MAX);
    Some((low, high))
}

/// With a rootfs, the working directory relative to its root, normalized, with the end of
/// each level, so that the child can open (or create) it level by level inside the root.
fn workdir_plan(c: &Container) -> Result<Option<WorkdirPlan>> {
    let (Some(_), Some(cwd)) = (&c.rootfs, &c.cwd) else {
        return Ok(None);
    };
    if cwd.is_relative() {
        return Err(Error::config(
            "working directory",
            format!(
                "{} is relative: with a rootfs it needs to be an absolute path inside the \
                 root, as in docker",
                cwd.display()
            ),
        ));
    }
    let norm = crate::rootfs::normalize(&PathBuf::from("/").join(cwd));
    let rel = norm
        .strip_prefix("/")
        .unwrap_or(&norm)
        .as_os_str()
        .as_bytes();
    if rel.is_empty() {
        return Ok(None);
    }
    if rel.len() >= libc::PATH_MAX as usize {
        return Err(Error::config(
            "working directory",
            format!("{} is longer than PATH_MAX", cwd.display()),
        ));
    }
    Ok(Some(WorkdirPlan {
        rel: cstring(OsStr::from_bytes(rel), "working directory")?,
    }))
}

/// A cgroup of the container's own (`CgroupPlacement::Create`), with the device allowlist
/// attached; `None` for an existing cgroup or none (or, under `LimitPolicy::BestEffort`,
/// when none could be made). Also the limits best effort skipped.
fn create_cgroup(
    c: &Container,
) -> Result<(
    Option<crate::cgroup::OwnedCgroup>,
    Vec<crate::cgroup::SkippedLimit>,
)> {
    let Some(CgroupPlacement::Create {
        parent,
        exact,
        resources,
    }) = &c.cgroup
    else {
        return Ok((None, Vec::new()));
    };
    let best_effort = c.limit_policy == crate::cgroup::LimitPolicy::BestEffort;
    let (cg, mut skipped) = match (c.limit_policy, parent) {
        (_, Some(path)) if *exact => {
            let (cg, skipped) =
                crate::cgroup::place::create_for_container_at(path, resources, best_effort)?;
            (Some(cg), skipped)
        }
        (crate::cgroup::LimitPolicy::BestEffort, _) => {
            crate::cgroup::place::create_for_container_best_effort(parent.as_deref(), resources)?
        }
        _ => (
            Some(crate::cgroup::place::create_for_container(
                parent.as_deref(),
                resources,
            )?),
            Vec::new(),
        ),
    };
    let default_rules = crate::cgroup::DeviceRule::default_allowlist();
    match (&c.security.device_allowlist, &cg) {
        (Some(rules), Some(cg)) => match crate::cgroup::attach_device_filter(cg, rules) {
            // A rootless caller in a delegated cgroup may make groups but not load BPF: under
            // best effort the default allowlist is skipped (and said), as without a cgroup.
            Err(e @ Error::Unsupported { .. }) if best_effort && *rules == default_rules => skipped
                .push(crate::cgroup::SkippedLimit {
                    setting: "devices".to_owned(),
                    value: "the default device allowlist (BPF_CGROUP_DEVICE)".to_owned(),
                    controller: None,
                    reason: crate::cgroup::without_best_effort_hint(&e),
                }),
            other => other?,
        },
        // Best effort made no cgroup. The default allowlist is then left out, as for a
        // container without limits (the default seccomp filter's ban on block device nodes
        // closes the same hole); one of the caller's is security, not a limit: never skipped.
        (Some(rules), None) if *rules != default_rules => {
            let why = skipped
                .last()
                .map_or_else(String::new, |s| s.reason.to_string());
            return Err(Error::unsupported(
                "the device allowlist",
                format!("it is attached to the container's cgroup, which could not be made: {why}"),
            ));
        }
        _ => {}
    }
    Ok((cg, skipped))
}

/// A close-on-exec duplicate of `fd` numbered `min_fd` or above.
fn dup_high(fd: BorrowedFd<'_>, min_fd: RawFd) -> Result<OwnedFd> {
    let n = nix::fcntl::fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min_fd))
        .map_err(|e| Error::sys("fcntl(F_DUPFD_CLOEXEC)", e))?;
    // SAFETY: fcntl just returned this new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// A close-on-exec pipe (read end, write end) numbered `min_fd` or above.
fn pipe_high(min_fd: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    Ok((dup_high(r.as_fd(), min_fd)?, dup_high(w.as_fd(), min_fd)?))
}

/// The descriptors for the child, all close-on-exec and numbered above every target, so
/// that moving them into place can never overwrite one another; and our ends of them.
struct ChildFds {
    /// Each descriptor and the number the child moves it to.
    moves: Vec<(OwnedFd, RawFd)>,
    /// Our ends of piped stdin, stdout and stderr.
    parent_ends: [Option<OwnedFd>; 3],
    /// Ours and the child's end of the socket on which the child sends the pty master it
    /// opens inside the rootfs.
    pty_socket: Option<(OwnedFd, OwnedFd)>,
    /// The pty master opened here (without a rootfs); its slave is the child's stdio.
    tty_master: Option<OwnedFd>,
}

impl ChildFds {
    /// The pty's socket or the pty itself (with `-t`), then stdio, then passed descriptors.
    /// `inside`: the child has a root of its own (a rootfs, or an entered mount namespace).
    fn new(c: &Container, min_fd: RawFd, capture: bool, inside: bool) -> Result<ChildFds> {
        // With a root of its own the pty must come from the container's own devpts (its name
        // must resolve inside): the child opens it and sends us the master.
        let pty_in_child = c.tty && inside;
        let pty_socket = match pty_in_child {
            true => Some(pty_socket(min_fd)?),
            false => None,
        };
        let mut moves: Vec<(OwnedFd, RawFd)> = Vec::new();
        let tty_master = match c.tty && !pty_in_child {
            true => {
                let (master, slave) = tty::open_pty(c.console_size)?;
                for target in 0..3 {
                    moves.push((dup_high(slave.as_fd(), min_fd)?, target));
                }
                Some(master)
            }
            false => None,
        };
        let parent_ends = stdio_fds(c, min_fd, capture, &mut moves)?;
        for (fd, target) in &c.fds {
            moves.push((dup_high(fd.as_fd(), min_fd)?, *target));
        }
        Ok(ChildFds {
            moves,
            parent_ends,
            pty_socket,
            tty_master,
        })
    }
}

/// A socket pair for the pty master: ours, and the child's numbered `min_fd` or above.
fn pty_socket(min_fd: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((ours, dup_high(theirs.as_fd(), min_fd)?))
}

/// Adds the moves for stdin, stdout and stderr as `Stdio` asks (with a tty they are the
/// pty's, set elsewhere), and returns our ends of the piped ones. With `capture`, streams
/// left at `Inherit` are as `std::process::Command::output` has them: stdin `/dev/null`,
/// stdout and stderr piped.
fn stdio_fds(
    c: &Container,
    min_fd: RawFd,
    capture: bool,
    moves: &mut Vec<(OwnedFd, RawFd)>,
) -> Result<[Option<OwnedFd>; 3]> {
    let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
    let stdio = if c.tty {
        [&Stdio::Inherit; 3]
    } else {
        [&c.stdin, &c.stdout, &c.stderr]
    };
    let captured = [&Stdio::Null, &Stdio::Piped, &Stdio::Piped];
    for (i, stdio) in stdio.into_iter().enumerate() {
        let stdio = match stdio {
            Stdio::Inherit if capture => captured[i],
            other => other,
        };
        match stdio {
            Stdio::Inherit => {}
            Stdio::Null => {
                let flags = if i == 0 {
                    OFlag::O_RDONLY
                } else {
                    OFlag::O_WRONLY
                };
                let null = nix::fcntl::open(
                    "/dev/null",
                    flags | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| Error::sys_path("open", "/dev/null", e))?;
                moves.push((dup_high(null.as_fd(), min_fd)?, i as RawFd));
            }
            Stdio::Piped => {
                let (r, w) = pipe_high(min_fd)?;
                let (child_end, parent_end) = if i == 0 { (r, w) } else { (w, r) };
                moves.push((child_end, i as RawFd));
                parent_ends[i] = Some(parent_end);
            }
            Stdio::Fd(fd) => moves.push((dup_high(fd.as_fd(), min_fd)?, i as RawFd)),
        }
    }
    Ok(parent_ends)
}

/// The pipes between parent and child, numbered above every target: the child's error
/// report (EOF when exec succeeds: the write end is close-on-exec), and the go-ahead it
/// waits for while the parent sets it up.
struct Pipes {
    err_read: OwnedFd,
    err_write: OwnedFd,
    go_read: OwnedFd,
    go_write: OwnedFd,
}

impl Pipes {
    fn new(min_fd: RawFd) -> Result<Pipes> {
        let (err_read, err_write) = pipe_high(min_fd)?;
        let (go_read, go_write) = pipe_high(min_fd)?;
        Ok(Pipes {
            err_read,
            err_write,
            go_read,
            go_write,
        })
    }
}

/// What the child's plan points into, kept in `spawn`'s frame until the child has exec'd
/// or died.
struct PlanBuffers {
    fd_moves: Vec<(RawFd, RawFd)>,
    keep_fds: Vec<RawFd>,
    init_memfd: Option<RawFd>,
    /// The copy `init_memfd` names, when the memfd's own number was too low.
    _init_memfd_copy: Option<OwnedFd>,
    exec_ptrs: Vec<*const c_char>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    /// The error pipe's number, which `init_argv` points to.
    _err_fd_digits: Option<CString>,
    init_argv: Vec<*const c_char>,
}

/// The parent's steps while the child waits: its id maps, its network, its cgroup (when
/// clone did not place it there), then the go-ahead (when it waits for one), which carries
/// what the child's generated /etc files need of the network. Returns the veth, if any.
fn release_child(
    id_maps: Option<&PreparedIdMaps>,
    (pid, pidfd): (i32, Option<BorrowedFd<'_>>),
    network: Option<&net::Setup>,
    unplaced: Option<&Cgroup>,
    go_write: Option<&OwnedFd>,
) -> Result<Option<net::Veth>> {
    if let Some(maps) = id_maps {
        maps.write(pid)?;
    }
    let veth = match (network, pidfd) {
        (Some(setup), Some(pidfd)) => setup.apply(pid, pidfd)?,
        _ => None,
    };
    if let Some(cg) = unplaced {
        // clone returned pid > 0 to us: EPROTO never happens.
        let pid = crate::Pid::from_raw(pid).ok_or(Error::sys("clone", Errno::EPROTO))?;
        cg.add_process(pid)?;
    }
    if let Some(go_write) = go_write {
        let go = crate::rootfs::etc::go_message(veth.as_ref());
        match nix::unistd::write(go_write, &go) {
            Ok(n) if n == go.len() => {}
            Ok(_) => return Err(Error::sys("write(go-ahead pipe)", Errno::EIO)),
            Err(e) => return Err(Error::sys("write(go-ahead pipe)", e)),
        }
    }
    Ok(veth)
}

/// Reads the child's report from the error pipe until EOF or a full report (head and
/// interpreter field; a head alone is the short form); returns it and how many bytes came
/// (0: exec succeeded, the pipe being close-on-exec).
fn read_report(err_read: &OwnedFd) -> Result<([u8; child::REPORT_SIZE], usize)> {
    let mut report = [0u8; child::REPORT_SIZE];
    let mut got = 0;
    while got < report.len() {
        match nix::unistd::read(err_read, &mut report[got..]).ours() {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("read(error pipe)", e)),
        }
    }
    Ok((report, got))
}

/// Receives the descriptor the child sent with SCM_RIGHTS (already queued: it was sent
/// before exec).
fn receive_fd(socket: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("recvmsg(pty master)", e))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| Error::sys("recvmsg(pty master)", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::sys("recvmsg(pty master)", Errno::EPROTO))
}

/// Receives the pid and pidfd a child forked into an entered PID namespace sends (see
/// `child::fork_into_pid_namespace`), waiting for them; `None` when the child exited
/// without sending (it failed before it forked).
fn receive_pid_and_fd(socket: &OwnedFd) -> Result<Option<(i32, OwnedFd)>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut pid = [0u8; 4];
    let (got, fd) = loop {
        let mut iov = [std::io::IoSliceMut::new(&mut pid)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("recvmsg(the forked process)", e)),
        };
        let mut fd = None;
        for cmsg in msg
            .cmsgs()
            .map_err(|e| Error::sys("recvmsg(the forked process)", e))?
        {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                // SAFETY: SCM_RIGHTS just installed these descriptors in our table.
                fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
            }
        }
        break (msg.bytes, fd);
    };
    match (got, fd) {
        (0, None) => Ok(None),
        (4, Some(fd)) => Ok(Some((i32::from_ne_bytes(pid), fd))),
        _ => Err(Error::sys("recvmsg(the forked process)", Errno::EPROTO)),
    }
}

/// Gives the child's handle our ends of its piped stdin, stdout and stderr.
fn hand_over_stdio(child: &mut Child, parent_ends: [Option<OwnedFd>; 3]) {
    for (i, end) in parent_ends.into_iter().enumerate() {
        let Some(end) = end else { continue };
        match i {
            0 => child.stdin = Some(end.into()),
            1 => child.stdout = Some(end.into()),
            _ => child.stderr = Some(end.into()),
        }
    }
}

/// Saves the calling thread's `pid_for_children` and switches it to `target`.
fn switch_pid_for_children(target: RawFd) -> Result<OwnedFd> {
    let path = "/proc/thread-self/ns/pid_for_children";
    let saved = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys_path("open", path, e))?;
    // SAFETY: setns on a namespace fd the caller owns for the duration of spawn.
    unsafe {
        sys::syscall3(
            libc::SYS_setns,
            target as usize,
            libc::CLONE_NEWPID as usize,
            0,
        )
    }
    .map_err(|e| Error::sys("setns(pid)", e))?;
    Ok(saved)
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Keeps the caller's dumpable flag as it was across spawns whose child changes credentials
/// or makes itself non-dumpable (a child born into a joined PID namespace).
///
/// The child shares the caller's memory until it execs, and the kernel resets the *memory's*
/// dumpable flag (to `fs.suid_dumpable`, normally 0) whenever a process changes its euid,
/// egid or gains capabilities it lacked: without this, the caller would become non-dumpable
/// (no core dumps, no debugger, root-owned /proc files, refused newuidmap) after its first
/// spawn with a uid. The reset must stay in force while any such child runs on the shared
/// memory (it keeps other users from ptracing the child, and through it the caller), so the
/// flag comes back only when the last of them has exec'd or died.
struct KeepDumpable;

/// Held by an unprivileged caller's spawns whose child changes credentials on the shared
/// memory, from the clone to the exec (see `Prepared::spawn`).
static UNPRIVILEGED_CREDENTIAL_CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Spawns in flight that change credentials, and the flag from before the first of them.
static DUMPABLE: std::sync::Mutex<(usize, i32)> = std::sync::Mutex::new((0, -1));

impl KeepDumpable {
    fn new() -> KeepDumpable {
        let mut state = DUMPABLE.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == 0 {
            // SAFETY: prctl(PR_GET_DUMPABLE) takes no pointers.
            state.1 = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
        }
        state.0 += 1;
        KeepDumpable
    }
}

impl Drop for KeepDumpable {
    fn drop(&mut self) {
        let mut state = DUMPABLE.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        // prctl can set only 0 and 1 (2, "root only", comes from fs.suid_dumpable).
        if state.0 == 0 && (state.1 == 0 || state.1 == 1) {
            // SAFETY: prctl(PR_SET_DUMPABLE) with an integer.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, state.1 as libc::c_ulong) };
        }
    }
}

/// Kills and reaps a child whose spawn failed half-way.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Child's own Drop kills (SIGKILL via pidfd) and reaps.
        drop(self.0.take());
    }
}
