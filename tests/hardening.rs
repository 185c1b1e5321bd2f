//! Issue 8's hardening of the spawn path, one test per fault class: PID 1 and the exec hold
//! nothing of the caller, the caller keeps its dumpable flag, no_new_privs off with seccomp,
//! descriptors and ptys whatever the caller's fd table looks like, exit status that nobody
//! else can reap, and the error paths of pid_for_children and CLONE_INTO_CGROUP.
//!
//! Every test needs root (it says so and returns otherwise). They take one lock: the
//! dumpable checks must not see another test's spawn in flight.

mod common;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::busybox::BusyboxRootfs;
use common::{is_root, output, rerun_as_nobody, role, skip, stdout};
use contain::cgroup::{Cgroup, CgroupBuilder};
use contain::idmap::IdMap;
use contain::namespace::{Namespace, Namespaces};
use contain::process::{Container, Stdio};
use contain::rootfs::Rootfs;
use contain::security::Security;
use contain::Signal;
use contain::{Error, SetupStage};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn dumpable() -> i32 {
    // SAFETY: prctl(PR_GET_DUMPABLE) takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }
}

/// Waits up to `limit` for the pidfd to become readable (the process ended).
fn ended_within(pidfd: std::os::fd::BorrowedFd<'_>, limit: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(pidfd, nix::poll::PollFlags::POLLIN)];
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap()).unwrap() == 1
}

/// Re-runs test `name` of this binary as root with `CONTAIN_TEST_ROLE=role`, and checks that
/// it passed: for what must happen in a process of its own (closed stdio, SIGCHLD ignored).
fn rerun_as_root(name: &str, role: &str) {
    if !is_root(name) {
        return;
    }
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", role)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

fn init_container(program: &str, args: &[&str]) -> Container {
    Container::new(program)
        .args(args)
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .init(true)
        .stdin(Stdio::Null)
}

#[test]
fn pid_1_holds_no_descriptor_memory_or_binary_of_the_caller() {
    const TEST: &str = "pid_1_holds_no_descriptor_memory_or_binary_of_the_caller";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    // A host directory open in the caller, without and with close-on-exec.
    let plain = nix::fcntl::open(
        "/usr",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let cloexec = std::fs::File::open("/usr").unwrap();

    // From outside: PID 1's descriptors, executable and memory map.
    let mut child = init_container("sleep", &["60"]).spawn().unwrap();
    let pid = child.id();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut sorted = fds.clone();
    sorted.sort();
    assert_eq!(sorted, ["0", "1", "2"], "PID 1 holds {fds:?}");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:contain-init"),
        "{exe:?}"
    );
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let ours = std::env::current_exe().unwrap();
    assert!(
        !maps.contains(&*ours.to_string_lossy()) && !maps.contains("[heap]"),
        "PID 1 maps the caller's binary or heap:\n{maps}"
    );
    let rss: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(rss < 1024, "PID 1 has {rss} kB resident");
    // The payload (PID 1's child) holds stdio only, too.
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let payload: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // Until its exec the payload is contain-init's fork, which still holds init's error
    // pipe (close-on-exec): wait for the exec, seen as its executable changing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{payload}/exe"))
        .is_ok_and(|e| e.to_string_lossy().starts_with("/memfd:contain-init"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the payload never exec'd"
        );
        std::thread::yield_now();
    }
    // The exec closes the close-on-exec descriptors just after the executable changes
    // (begin_new_exec): look again until that is done, or until the deadline says a
    // descriptor stays.
    let payload_fds = || {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{payload}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        fds.sort();
        fds
    };
    let mut fds = payload_fds();
    while fds != ["0", "1", "2"] && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        fds = payload_fds();
    }
    assert_eq!(fds, ["0", "1", "2"]);
    child.kill(Signal::SIGKILL).unwrap();
    child.wait().unwrap();

    // From inside, with a root of its own: what `ls`, `readlink` and `cat` see of PID 1.
    let image = BusyboxRootfs::new("hardening-init");
    let o = output(
        init_container(
            "/bin/sh",
            &[
                "-c",
                "ls /proc/1/fd | tr '\\n' ' '; echo; readlink /proc/1/exe; cat /proc/1/exe | wc -c; \
                 echo x >>/proc/1/exe && echo WROTE",
            ],
        )
        .rootfs(Rootfs::new(image.root())),
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().map(|l| l.trim()), Some("0 1 2"), "{o:?}");
    assert!(lines[1].starts_with("/memfd:contain-init"), "{o:?}");
    let size: usize = lines[2].trim().parse().unwrap();
    assert!(size < 16 * 1024, "/proc/1/exe has {size} bytes");
    assert!(
        !out.contains("WROTE"),
        "PID 1's executable was writable: {o:?}"
    );
    drop((plain, cloexec));
}

#[test]
fn pid_1_never_holds_another_thread_s_pipe() {
    const TEST: &str = "pid_1_never_holds_another_thread_s_pipe";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    // A pipe of the caller's (another thread's spawn, say) open while an init container
    // starts: once the caller closes its write end, the reader must see EOF at once.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut sleeper = init_container("sleep", &["60"]).spawn().unwrap();
    drop(w);
    let mut fds = [nix::poll::PollFd::new(
        r.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(ready, 1, "the write end lives on in the container");
    assert_eq!(nix::unistd::read(&r, &mut [0u8; 1]).unwrap(), 0);

    // Threads keeping init containers alive while others spawn /bin/true: no spawn waits for
    // a sleeper (which would take its whole 60 s).
    let start = Instant::now();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..8 {
            handles.push(s.spawn(move || {
                for _ in 0..5 {
                    if i % 2 == 0 {
                        let mut c = init_container("sleep", &["60"]).spawn().unwrap();
                        c.kill(Signal::SIGKILL).unwrap();
                        c.wait().unwrap();
                    } else {
                        let status = Container::new("true").spawn().unwrap().wait().unwrap();
                        assert!(status.success());
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "spawns waited on other threads' containers: {:?}",
        start.elapsed()
    );
    sleeper.kill(Signal::SIGKILL).unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn a_program_path_through_a_caller_descriptor_does_not_resolve() {
    const TEST: &str = "a_program_path_through_a_caller_descriptor_does_not_resolve";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("hardening-fdexec");
    // A host directory open in the caller, close-on-exec as a careful program has it.
    let host = std::fs::File::open("/").unwrap();
    let n = host.as_raw_fd();
    for init in [false, true] {
        let program = format!("/proc/self/fd/{n}/bin/sh");
        let e = Container::new(&program)
            .args(["-c", "echo escaped"])
            .namespaces(Namespaces::PID | Namespaces::MOUNT)
            .init(init)
            .rootfs(Rootfs::new(image.root()))
            .stdout(Stdio::Piped)
            .spawn()
            .map(|c| c.wait_with_output())
            .expect_err("a host binary ran inside the container");
        match e {
            Error::Setup {
                stage: SetupStage::Exec,
                errno,
                ..
            } => assert!(
                errno == contain::Errno::ENOENT || errno == contain::Errno::EBADF,
                "{errno}"
            ),
            other => panic!("init {init}: {other}"),
        }
    }
}

#[test]
fn a_uid_switch_leaves_the_caller_dumpable() {
    const TEST: &str = "a_uid_switch_leaves_the_caller_dumpable";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    assert_eq!(dumpable(), 1, "the test process starts dumpable");
    let status = Container::new("/bin/true")
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        dumpable(),
        1,
        "a spawn with a uid made the caller non-dumpable"
    );
    // Many at once, with and without user namespaces, and failing ones.
    std::thread::scope(|s| {
        for i in 0..8 {
            s.spawn(move || {
                for j in 0..6 {
                    let mut c = Container::new(if j == 5 { "/no/such" } else { "/bin/true" })
                        .uid(65534)
                        .gid(65534);
                    if i % 2 == 1 {
                        c = c
                            .namespaces(Namespaces::USER)
                            .uid_map(&[IdMap::new(0, 100_000, 65_536)])
                            .gid_map(&[IdMap::new(0, 100_000, 65_536)]);
                    }
                    match c.spawn() {
                        Ok(mut child) => assert!(child.wait().unwrap().success()),
                        Err(e) => assert_eq!(j, 5, "{e}"),
                    }
                }
            });
        }
    });
    assert_eq!(
        dumpable(),
        1,
        "concurrent spawns left the caller non-dumpable"
    );
}

#[test]
fn seccomp_without_no_new_privs_is_installed_while_the_child_can() {
    const TEST: &str = "seccomp_without_no_new_privs_is_installed_while_the_child_can";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    let security = Security {
        no_new_privs: false,
        ..Security::default()
    };
    let o = output(
        Container::new("grep")
            .args(["-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"])
            .uid(65534)
            .gid(65534)
            .security(security),
    );
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn a_passed_fd_above_the_container_s_nofile_limit_arrives() {
    const TEST: &str = "a_passed_fd_above_the_container_s_nofile_limit_arrives";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    // The caller itself must be able to hold such numbers (the guest's soft limit is 1024).
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 {
        if hard < 4096 {
            skip(TEST, &format!("RLIMIT_NOFILE hard limit {hard} < 4096"));
            return;
        }
        setrlimit(Resource::RLIMIT_NOFILE, 4096, hard).unwrap();
    }
    // A target this process cannot reach is refused before anything is made.
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let unreachable = soft.saturating_sub(1).min(i32::MAX as u64) as i32;
    let e = Container::new("true")
        .pass_fd(
            std::fs::File::open("/dev/null").unwrap().into(),
            unreachable,
        )
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("RLIMIT_NOFILE"), "{e}");
    let (r, w) = nix::unistd::pipe().unwrap();
    let o = output(
        Container::new("sh")
            .args(["-c", "echo through >/proc/self/fd/1500 && ulimit -n"])
            .pass_fd(w, 1500),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        "1024",
        "the default RLIMIT_NOFILE applies: {o:?}"
    );
    let mut got = String::new();
    std::fs::File::from(r).read_to_string(&mut got).unwrap();
    assert_eq!(got, "through\n");
}

#[test]
fn a_tty_works_when_the_caller_has_no_stdio() {
    const TEST: &str = "a_tty_works_when_the_caller_has_no_stdio";
    match role().as_deref() {
        Some("no-stdio") => {
            let image = BusyboxRootfs::new("hardening-tty");
            let mut c = Container::new("/bin/sh")
                .args(["-c", "test -t 0 && test -t 1 && test -t 2"])
                .namespaces(Namespaces::PID | Namespaces::MOUNT)
                .rootfs(Rootfs::new(image.root()))
                .tty(true);
            let mut without_rootfs = Container::new("sh")
                .args(["-c", "test -t 0 && test -t 1 && test -t 2"])
                .tty(true);
            // SAFETY: closing this process's stdio; nothing here uses it any more.
            unsafe {
                for fd in 0..3 {
                    libc::close(fd);
                }
            }
            let code = [&mut c, &mut without_rootfs]
                .into_iter()
                .map(|c| match c.spawn().and_then(|mut ch| ch.wait()) {
                    Ok(s) if s.success() => 0,
                    Ok(s) => 10 + s.shell_code().min(100),
                    Err(_) => 3,
                })
                .find(|&code| code != 0)
                .unwrap_or(0);
            // exit skips destructors: the image's temporary directory goes first.
            drop(image);
            std::process::exit(code);
        }
        Some(_) => {}
        None => rerun_as_root(TEST, "no-stdio"),
    }
}

#[test]
fn the_status_reaches_the_handle_whatever_the_caller_does_with_sigchld() {
    const TEST: &str = "the_status_reaches_the_handle_whatever_the_caller_does_with_sigchld";
    match role().as_deref() {
        Some("sigchld") => {
            // The kernel keeps a reaped child's status in its pidfd from 6.15 on; before, the
            // handle must say who took it.
            let release = nix::sys::utsname::uname().unwrap();
            let mut v = release.release().to_str().unwrap().split(['.', '-']);
            let major: u32 = v.next().unwrap().parse().unwrap();
            let minor: u32 = v.next().unwrap().parse().unwrap();
            let keeps_status = (major, minor) >= (6, 15);
            let check = |status: contain::Result<contain::process::ExitStatus>, code| match status {
                Ok(s) => assert_eq!(s.code(), Some(code)),
                Err(e) => {
                    assert!(!keeps_status, "{e}");
                    assert!(e.to_string().contains("another waiter"), "{e}");
                }
            };
            // SAFETY: SIG_IGN for SIGCHLD in this throw-away process: the kernel reaps
            // children by itself.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            let mut child = Container::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
            check(child.wait(), 3);
            // SAFETY: back to the default disposition.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
            // A reaper thread that takes whatever waitpid(-1) returns.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let reaper = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // SAFETY: waitpid with a null status pointer.
                        unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
                        std::thread::yield_now();
                    }
                })
            };
            for code in 0..5 {
                let mut child = Container::new("sh")
                    .args(["-c", &format!("exit {code}")])
                    .spawn()
                    .unwrap();
                check(child.wait(), code);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            reaper.join().unwrap();
        }
        Some(_) => {}
        None => rerun_as_root(TEST, "sigchld"),
    }
}

#[test]
fn a_failed_pid_for_children_restore_fails_the_spawn() {
    const TEST: &str = "a_failed_pid_for_children_restore_fails_the_spawn";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    let target = Container::new("sleep")
        .args(["60"])
        .namespaces(Namespaces::PID);
    let mut target = target.spawn().unwrap();
    let pidns = Namespace::of_pid(target.pid(), Namespaces::PID).unwrap();
    let allowed = pidns.as_fd().as_raw_fd();
    // In a thread of its own (seccomp filters are per thread here): setns(pid) works into
    // the target only, so the switch back after clone fails.
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            use seccompiler::{
                SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
                SeccompRule,
            };
            let cond = |arg, op, val| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, val);
            let rule = SeccompRule::new(vec![
                cond(0, SeccompCmpOp::Ne, allowed as u64).unwrap(),
                cond(1, SeccompCmpOp::Eq, libc::CLONE_NEWPID as u64).unwrap(),
            ])
            .unwrap();
            let filter = SeccompFilter::new(
                [(libc::SYS_setns, vec![rule])].into_iter().collect(),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                std::env::consts::ARCH.try_into().unwrap(),
            )
            .unwrap();
            let program: seccompiler::BpfProgram = filter.try_into().unwrap();
            seccompiler::apply_filter(&program).unwrap();
            Container::new("sleep")
                .args(["59"])
                .join(pidns)
                .spawn()
                .map(|c| c.id())
        })
        .join()
        .unwrap()
    });
    let e = result.expect_err("the spawn went on with the thread in the wrong PID namespace");
    assert!(e.to_string().contains("pid_for_children"), "{e}");
    target.kill(Signal::SIGKILL).unwrap();
    target.wait().unwrap();
}

#[test]
fn the_parent_death_signal_survives_joining_a_foreign_user_namespace() {
    const TEST: &str = "the_parent_death_signal_survives_joining_a_foreign_user_namespace";
    if !is_root(TEST) {
        return;
    }
    let Some(unshare) = common::in_path("unshare") else {
        skip(TEST, "no unshare(1) (util-linux)");
        return;
    };
    let _serial = serial();
    // A user namespace owned by uid 65534: joining it changes the joiner's credentials.
    let mut owner = std::process::Command::new(unshare);
    owner
        .args(["-U", "sh", "-c", "echo ready; exec sleep 60"])
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::piped());
    let mut owner = owner.spawn().unwrap();
    let mut line = [0u8; 6];
    owner
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    let owner_pid = contain::Pid::from_raw(owner.id() as i32).unwrap();
    let userns = Namespace::of_pid(owner_pid, Namespaces::USER).unwrap();
    // Spawned from a thread that then ends: the child must get its parent-death signal.
    let child = std::thread::spawn(move || {
        Container::new("sleep")
            .args(["60"])
            .join(userns)
            .spawn()
            .unwrap()
    })
    .join()
    .unwrap();
    let died = ended_within(child.pidfd(), Duration::from_secs(20));
    let _ = owner.kill();
    let _ = owner.wait();
    let mut child = child;
    assert!(died, "the child outlived the thread that spawned it");
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL));
}

#[test]
fn a_clone_error_is_not_reported_as_a_cgroup_error() {
    const TEST: &str = "a_clone_error_is_not_reported_as_a_cgroup_error";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    let group = match Cgroup::own().and_then(|own| {
        CgroupBuilder::new(format!("hardening-{}", std::process::id())).create_in(&own)
    }) {
        Ok(g) => g,
        Err(e) => {
            skip(TEST, &format!("cannot make a cgroup v2 group here: {e}"));
            return;
        }
    };
    let handle = Cgroup::open(group.path()).unwrap();
    // clone3 refused as a user namespace limit refuses it (ENOSPC), in this thread only.
    let e = std::thread::scope(|s| {
        s.spawn(|| {
            use seccompiler::{SeccompAction, SeccompFilter};
            let filter = SeccompFilter::new(
                [(libc::SYS_clone3, vec![])].into_iter().collect(),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::ENOSPC as u32),
                std::env::consts::ARCH.try_into().unwrap(),
            )
            .unwrap();
            let program: seccompiler::BpfProgram = filter.try_into().unwrap();
            seccompiler::apply_filter(&program).unwrap();
            Container::new("true")
                .namespaces(Namespaces::USER)
                .cgroup(handle)
                .spawn()
                .map(|c| c.id())
        })
        .join()
        .unwrap()
    })
    .expect_err("clone3 was refused");
    match &e {
        Error::Sys {
            syscall: "clone3",
            errno: contain::Errno::ENOSPC,
            ..
        } => {}
        other => panic!("reported as {other}"),
    }
    drop(group);
}

#[test]
fn the_readme_example_runs_as_root_with_an_unprivileged_map() {
    const TEST: &str = "the_readme_example_runs_as_root_with_an_unprivileged_map";
    if !is_root(TEST) {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("hardening-readme");
    // The README's example, with a busybox image for /srv/images/debian; without the memory
    // limit where the host has no cgroup v2 memory controller (a hybrid host like this VM).
    let with_limits = std::env::var_os("CONTAIN_IN_VM").is_some();
    let run = |rootfs: Rootfs, map: IdMap| {
        let limits = contain::cgroup::Resources::new().memory_max(contain::Bytes::mib(256));
        let mut c = Container::new("/bin/sh")
            .args(["-c", "echo $$; hostname; id -u"])
            .namespaces(Namespaces::all())
            .uid_map(&[map])
            .gid_map(&[map])
            .hostname("box")
            .rootfs(rootfs)
            .stdout(Stdio::Piped);
        if with_limits {
            c = c.resources(limits);
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("{map:?}: {e}"));
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1\nbox\n0\n");
    };
    for map in [IdMap::new(0, 100_000, 65_536), IdMap::new(0, 1000, 1)] {
        run(Rootfs::new(image.root()), map);
        run(
            Rootfs::new(image.root()).mode(contain::rootfs::RootfsMode::ReadOnly),
            map,
        );
        run(Rootfs::host(), map);
    }
    // The namespace's root created the overlay's files: nothing in the image changed.
    assert!(!Path::new(&image.root().join("work")).exists());
}

#[test]
fn the_readme_example_runs_rootless_through_newuidmap() {
    const TEST: &str = "the_readme_example_runs_rootless_through_newuidmap";
    match role().as_deref() {
        Some("readme") => {
            // As nobody, whose /etc/subuid range is 200000-265535 (see rerun_as_nobody).
            let image = BusyboxRootfs::new("hardening-readme-rootless");
            let map = IdMap::new(0, 200_000, 65_536);
            for rootfs in [
                Rootfs::new(image.root()),
                Rootfs::new(image.root()).mode(contain::rootfs::RootfsMode::ReadOnly),
            ] {
                let child = Container::new("/bin/sh")
                    .args(["-c", "echo $$; hostname; id -u"])
                    .namespaces(Namespaces::all())
                    .uid_map(&[map])
                    .gid_map(&[map])
                    .hostname("box")
                    .rootfs(rootfs)
                    .stdout(Stdio::Piped)
                    .spawn()
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{out:?}");
                assert_eq!(String::from_utf8_lossy(&out.stdout), "1\nbox\n0\n");
            }
        }
        Some(_) => {}
        None => {
            if !is_root(TEST) {
                return;
            }
            for helper in ["newuidmap", "newgidmap"] {
                if common::in_path(helper).is_none() {
                    skip(TEST, &format!("no {helper} (apt-get install uidmap)"));
                    return;
                }
            }
            for file in ["/etc/subuid", "/etc/subgid"] {
                if !Path::new(file).exists() {
                    skip(
                        TEST,
                        &format!("no {file} to replace in a private mount namespace"),
                    );
                    return;
                }
            }
            if std::fs::metadata("/")
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o005 != 0o005)
                .unwrap_or(true)
            {
                skip(TEST, "/ is not searchable by nobody here");
                return;
            }
            let o = rerun_as_nobody(TEST, "readme", true);
            assert!(o.status.success(), "{o:?}");
        }
    }
}
