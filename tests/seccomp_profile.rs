//! Seccomp profiles (the OCI runtime spec's `linux.seccomp`) compiled by the crate and
//! installed in real containers: an errno for `mkdir`, `SIGSYS` for `getppid`, an argument
//! condition on `personality`, and a default-deny profile with an allow list that runs a
//! shell. The runs need root; the program sizes are checked (and printed) everywhere.

mod common;

use common::{is_root, output, role, stdout, TempDir};
use contain::process::Container;
use contain::security::{
    Rlimit, Seccomp, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOp,
    SeccompProfile, SeccompRule,
};
use contain::Signal;

/// The calls a default-deny profile allows so that ordinary programs run: the set of docker's
/// and podman's default profiles for a container with docker's default capabilities (names of
/// every ABI; each ABI takes those it has), without the calls those gate on capabilities.
/// `personality` is not in it: [`allow_list_profile`] allows only its query form.
const ALLOWED: &[&str] = &[
    // Files and descriptors.
    "access",
    "faccessat",
    "faccessat2",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "read",
    "readv",
    "pread64",
    "preadv",
    "preadv2",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "lseek",
    "_llseek",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "fcntl64",
    "ioctl",
    "flock",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "truncate",
    "truncate64",
    "ftruncate",
    "ftruncate64",
    "fallocate",
    "fadvise64",
    "fadvise64_64",
    "readahead",
    "sendfile",
    "sendfile64",
    "splice",
    "tee",
    "copy_file_range",
    "stat",
    "stat64",
    "lstat",
    "lstat64",
    "fstat",
    "fstat64",
    "fstatat64",
    "newfstatat",
    "statx",
    "statfs",
    "statfs64",
    "fstatfs",
    "fstatfs64",
    "getdents",
    "getdents64",
    "readdir",
    "readlink",
    "readlinkat",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "fchownat",
    "lchown",
    "lchown32",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "utimensat_time64",
    "futimesat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "name_to_handle_at",
    "memfd_create",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    "pipe",
    "pipe2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_settime64",
    "timerfd_gettime",
    "timerfd_gettime64",
    // Waiting and polling.
    "poll",
    "ppoll",
    "ppoll_time64",
    "select",
    "_newselect",
    "pselect6",
    "pselect6_time64",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "futex",
    "futex_time64",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "nanosleep",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "pause",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_settime64",
    "timer_gettime",
    "timer_gettime64",
    "timer_getoverrun",
    "timer_delete",
    "sched_yield",
    // Memory.
    "brk",
    "mmap",
    "mmap2",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "remap_file_pages",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "membarrier",
    // Processes, threads and signals.
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "waitpid",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigreturn",
    "rt_sigpending",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "restart_syscall",
    "pidfd_open",
    "pidfd_send_signal",
    "set_tid_address",
    "set_thread_area",
    "get_thread_area",
    "arch_prctl",
    "modify_ldt",
    "prctl",
    "rseq",
    "seccomp",
    "capget",
    "capset",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "getpriority",
    "setpriority",
    "getrlimit",
    "ugetrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_getattr",
    "sched_setattr",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "ioprio_get",
    "ioprio_set",
    "getcpu",
    // Identity.
    "getuid",
    "getuid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getegid",
    "getegid32",
    "getresuid",
    "getresuid32",
    "getresgid",
    "getresgid32",
    "getgroups",
    "getgroups32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "setgroups",
    "setgroups32",
    // Time and the system.
    "time",
    "gettimeofday",
    "clock_gettime",
    "clock_gettime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    "uname",
    "sysinfo",
    "getrandom",
    // Sockets and IPC.
    "socket",
    "socketpair",
    "socketcall",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "send",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recv",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "recvmmsg_time64",
    "shutdown",
    "ipc",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_notify",
    "mq_getsetattr",
];

/// Default `SCMP_ACT_ERRNO` with `errno` (podman's profile says ENOSYS, 38), [`ALLOWED`]
/// allowed, and `personality` allowed only as the query `personality(0xffffffff)`.
fn allow_list_profile(errno: Option<u32>) -> SeccompProfile {
    SeccompProfile {
        default_errno_ret: errno,
        architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
        syscalls: vec![
            SeccompRule::new(ALLOWED.iter().copied(), SeccompAction::Allow),
            SeccompRule::new(["personality"], SeccompAction::Allow).arg(SeccompArg::new(
                0,
                SeccompOp::Equal,
                0xffff_ffff,
            )),
        ],
        // Podman's list names calls of other ABIs (send, recv): skipped, as runc does.
        skip_unknown_syscalls: true,
        ..SeccompProfile::new(SeccompAction::Errno)
    }
}

/// Default allow; `mkdir` and `mkdirat` fail with EPERM (errnoRet 1).
fn mkdir_profile() -> SeccompProfile {
    SeccompProfile {
        architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
        syscalls: vec![SeccompRule::new(["mkdir", "mkdirat"], SeccompAction::Errno).errno(1)],
        ..SeccompProfile::new(SeccompAction::Allow)
    }
}

/// Default allow; `getppid` kills the process.
fn getppid_profile() -> SeccompProfile {
    SeccompProfile {
        syscalls: vec![SeccompRule::new(["getppid"], SeccompAction::KillProcess)],
        ..SeccompProfile::new(SeccompAction::Allow)
    }
}

/// Runs this test binary in a container under `seccomp` as the probe `role` (one of the
/// `probe_*` tests below), with no core dump.
fn probe(role: &str, seccomp: Seccomp) -> contain::process::Output {
    let exe = std::env::current_exe().unwrap();
    output(
        Container::new(exe)
            .args([role, "--exact", "--nocapture", "--test-threads=1"])
            .env("CONTAIN_TEST_ROLE", role)
            .seccomp(seccomp)
            .rlimit(Rlimit::new(Rlimit::RLIMIT_CORE, 0, 0)),
    )
}

/// The lines a probe printed that start with "probe " (libtest may print "test NAME ... "
/// in front of the first one).
fn probe_lines(o: &contain::process::Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.find("probe ").map(|i| l[i..].to_string()))
        .collect()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn program_sizes() {
    // Each ABI gets its block: the sizes grow with the calls named and their conditions.
    let sizes = [
        ("mkdir errno", mkdir_profile().compile().unwrap().len()),
        ("getppid kill", getppid_profile().compile().unwrap().len()),
        (
            "allow list",
            allow_list_profile(Some(38)).compile().unwrap().len(),
        ),
    ];
    for (what, n) in sizes {
        println!("{what}: {n} instructions");
    }
    assert!(sizes[0].1 < 40 && sizes[1].1 < 15, "{sizes:?}");
    assert!(sizes[2].1 > 300 && sizes[2].1 < 2000, "{sizes:?}");
}

#[test]
fn mkdir_fails_with_eperm_and_other_calls_work() {
    if !is_root("mkdir_fails_with_eperm_and_other_calls_work") {
        return;
    }
    let dir = TempDir::new("seccomp-mkdir");
    let script = format!(
        "mkdir {d}/denied; echo status=$?; echo hello > {d}/file && cat {d}/file",
        d = dir.path().display()
    );
    let o = output(
        Container::new("sh")
            .args(["-c", &script])
            .seccomp(Seccomp::Profile(mkdir_profile())),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{o:?}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(stdout(&o), "status=1\nhello");
    assert!(!dir.path().join("denied").exists());
    // The same script without the profile makes the directory.
    let o = output(Container::new("sh").args(["-c", &script]));
    assert!(
        o.status.success() && stdout(&o).starts_with("status=0"),
        "{o:?}"
    );
    assert!(dir.path().join("denied").is_dir());
}

#[test]
fn probe_getppid() {
    if role().as_deref() != Some("probe_getppid") {
        return;
    }
    println!("probe before");
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    println!("probe after {ppid}");
}

#[test]
fn kill_process_action_ends_it_with_sigsys() {
    if !is_root("kill_process_action_ends_it_with_sigsys") {
        return;
    }
    let o = probe("probe_getppid", Seccomp::Profile(getppid_profile()));
    assert_eq!(o.status.signal(), Some(Signal::SIGSYS), "{o:?}");
    assert_eq!(probe_lines(&o), ["probe before"], "{o:?}");
    // Without the rule it gets past the call.
    let o = probe("probe_getppid", Seccomp::Default);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(probe_lines(&o).len(), 2, "{o:?}");
}

#[test]
fn probe_personality() {
    if role().as_deref() != Some("probe_personality") {
        return;
    }
    let errno = |r: i32| {
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    };
    // SAFETY: personality only reads its argument; the query changes nothing.
    unsafe {
        println!("probe query {}", errno(libc::personality(0xffff_ffff)));
        let r = libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        println!("probe no-randomize {}", errno(r));
        // A call outside the allow list: the profile's default errno.
        let r = libc::syscall(libc::SYS_sethostname, c"x".as_ptr(), 1);
        println!("probe sethostname {}", errno(r as i32));
    }
}

#[test]
fn personality_query_is_allowed_and_other_values_get_the_default_errno() {
    if !is_root("personality_query_is_allowed_and_other_values_get_the_default_errno") {
        return;
    }
    // The whole test binary (libtest, its threads) runs under the allow list.
    let o = probe(
        "probe_personality",
        Seccomp::Profile(allow_list_profile(None)),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        probe_lines(&o),
        [
            "probe query 0",
            &format!("probe no-randomize {}", libc::EPERM),
            &format!("probe sethostname {}", libc::EPERM),
        ],
        "{o:?}"
    );
}

#[test]
fn default_errno_profile_with_the_allow_list_runs_a_shell() {
    if !is_root("default_errno_profile_with_the_allow_list_runs_a_shell") {
        return;
    }
    let profile = SeccompProfile {
        flags: vec![SeccompFlag::Log, SeccompFlag::SpecAllow, SeccompFlag::Tsync],
        ..allow_list_profile(Some(libc::ENOSYS as u32))
    };
    let o = output(
        Container::new("sh")
            .args(["-c", "true"])
            .seccomp(Seccomp::Profile(profile.clone())),
    );
    assert!(o.status.success(), "{o:?}");
    // A call outside the list gets ENOSYS: unshare(1) says so.
    let o = output(
        Container::new("unshare")
            .args(["-u", "true"])
            .seccomp(Seccomp::Profile(profile.clone())),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("Function not implemented"),
        "{o:?}"
    );
    // The filter is the one installed: mode 2, one filter.
    let o = output(
        Container::new("cat")
            .arg("/proc/self/status")
            .seccomp(Seccomp::Profile(profile)),
    );
    assert!(o.status.success(), "{o:?}");
    let status = stdout(&o);
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
    assert!(
        status.lines().any(|l| l == "Seccomp_filters:\t1"),
        "{status}"
    );
}

#[test]
fn a_profile_the_kernel_cannot_take_fails_the_spawn() {
    let profile = SeccompProfile {
        listener_path: Some("/run/agent.sock".into()),
        ..mkdir_profile()
    };
    let e = Container::new("true")
        .seccomp(Seccomp::Profile(profile))
        .spawn()
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(e, contain::Error::Unsupported { .. }) && e.to_string().contains("agent.sock"),
        "{e}"
    );
}

/// Default allow; the calls the child's setup makes late (the cwd check's `getcwd`,
/// `close_range`, `prlimit64` of `RLIMIT_NOFILE`, `setsid`, `personality`) fail with EPERM.
fn late_setup_calls_profile() -> SeccompProfile {
    SeccompProfile {
        architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
        syscalls: vec![SeccompRule::new(
            [
                "getcwd",
                "close_range",
                "prlimit64",
                "setsid",
                "personality",
            ],
            SeccompAction::Errno,
        )
        .errno(1)],
        ..SeccompProfile::new(SeccompAction::Allow)
    }
}

/// runtime-tools' linux_seccomp (getcwd → errno, no noNewPrivileges): the filter comes after
/// the setup's own calls, so a profile denying them still starts the program, and the
/// program meets the denial. Each way the filter is installed: with no_new_privs (last),
/// without it as root (before the capability drop), and without it as uid 1000 keeping
/// capabilities (`cap_sets`: CAP_SYS_ADMIN raised again from the kept permitted set).
#[test]
fn a_profile_denying_the_setups_late_calls_still_starts_the_program() {
    use common::busybox::BusyboxRootfs;
    use contain::namespace::Namespaces;
    use contain::process::{Personality, PersonalityDomain};
    use contain::rootfs::Rootfs;
    use contain::security::{CapSet, CapSets, Security};
    if !is_root("a_profile_denying_the_setups_late_calls_still_starts_the_program") {
        return;
    }
    let image = BusyboxRootfs::new("seccomp-late");
    let all = CapSet::DOCKER_DEFAULT.with("SYS_ADMIN".parse().unwrap());
    let keep = CapSets {
        effective: all,
        permitted: all,
        inheritable: CapSet::EMPTY,
        ambient: CapSet::EMPTY,
    };
    let cases: [(&str, bool, Option<u32>, Option<CapSets>); 3] = [
        ("no_new_privs", true, None, None),
        ("root without no_new_privs", false, None, None),
        (
            "uid 1000 keeping capabilities",
            false,
            Some(1000),
            Some(keep),
        ),
    ];
    for (what, nnp, uid, cap_sets) in cases {
        let security = Security {
            capabilities: all,
            no_new_privs: nnp,
            seccomp: Seccomp::Profile(late_setup_calls_profile()),
            rlimits: Some(vec![Rlimit::new(Rlimit::RLIMIT_NOFILE, 512, 512)]),
            new_session: true,
            cap_sets,
            ..Security::default()
        };
        let mut c = Container::new("/bin/sh")
            .args(["-c", "/bin/pwd -P; echo rc=$?"])
            .env("PATH", "/bin")
            .namespaces(Namespaces::MOUNT | Namespaces::PID)
            .rootfs(Rootfs::new(image.root()))
            .current_dir("/tmp")
            .personality(Personality::new(PersonalityDomain::Linux))
            .security(security);
        if let Some(uid) = uid {
            c = c.uid(uid).gid(uid);
        }
        let o = output(c);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{what}: {o:?}");
        // busybox's pwd applet (-P) calls getcwd: the profile's EPERM reaches the program.
        assert_eq!(stdout(&o), "rc=1", "{what}: {o:?}");
        assert!(err.contains("Operation not permitted"), "{what}: {err}");
    }
    // The same program without the profile prints the directory.
    let o = output(
        Container::new("/bin/sh")
            .args(["-c", "/bin/pwd -P; echo rc=$?"])
            .env("PATH", "/bin")
            .namespaces(Namespaces::MOUNT | Namespaces::PID)
            .rootfs(Rootfs::new(image.root()))
            .current_dir("/tmp")
            .no_new_privs(false),
    );
    assert_eq!(stdout(&o), "/tmp\nrc=0", "{o:?}");
}
