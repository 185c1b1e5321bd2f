//! The spawn engine: namespaces, id maps, stdio and fds, the pidfd handle, rootless runs.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use common::{assert_passes_as_nobody, is_root, output, role, skip, stdout};
use contain::idmap::IdMap;
use contain::namespace::{id_of_pid, Namespace, Namespaces};
use contain::process::{CloneCall, Container, Stdio};
use contain::Signal;
use contain::{Error, SetupStage};

/// Spawns `sleep` with `ns`, compares every namespace of it with ours, kills it.
fn check_namespaces(ns: Namespaces, call: CloneCall) {
    let c = Container::new("sleep")
        .arg("30")
        .namespaces(ns)
        .clone_call(call);
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{ns:?}: {e}"));
    for kind in Namespaces::all().iter() {
        let mine = Namespace::current(kind).unwrap().id().unwrap();
        let theirs = id_of_pid(child.pid(), kind).unwrap();
        if ns.contains(kind) {
            assert_ne!(mine, theirs, "{kind:?} should be new with {ns:?}");
        } else {
            assert_eq!(mine, theirs, "{kind:?} should be shared with {ns:?}");
        }
    }
    child.kill(Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL));
}

#[test]
fn each_namespace_alone_and_all_together() {
    if !is_root("each_namespace_alone_and_all_together") {
        return;
    }
    for kind in Namespaces::all().iter() {
        check_namespaces(kind, CloneCall::Auto);
    }
    check_namespaces(Namespaces::all(), CloneCall::Auto);
    check_namespaces(Namespaces::empty(), CloneCall::Auto);
}

#[test]
fn legacy_clone_fallback_works_and_refuses_time() {
    if !is_root("legacy_clone_fallback_works_and_refuses_time") {
        return;
    }
    check_namespaces(Namespaces::all() - Namespaces::TIME, CloneCall::Legacy);
    let e = Container::new("true")
        .namespaces(Namespaces::TIME)
        .clone_call(CloneCall::Legacy)
        .spawn()
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[test]
fn pid_namespace_makes_the_command_pid_1() {
    if !is_root("pid_namespace_makes_the_command_pid_1") {
        return;
    }
    let o = output(
        Container::new("sh")
            .args(["-c", "echo $$; echo $PPID"])
            .namespaces(Namespaces::PID),
    );
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "1", "{lines:?}");
    assert_eq!(
        lines[1], "0",
        "the parent of PID 1 is outside the namespace: {lines:?}"
    );
}

#[test]
fn hostname_and_domainname_are_set() {
    if !is_root("hostname_and_domainname_are_set") {
        return;
    }
    let o = output(
        Container::new("cat")
            .args(["/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname"])
            .namespaces(Namespaces::UTS)
            .hostname("box")
            .domainname("example.test"),
    );
    assert_eq!(stdout(&o), "box\nexample.test");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box", "the host's hostname must not change");
}

#[test]
fn uid_0_inside_maps_to_the_given_outside_range() {
    if !is_root("uid_0_inside_maps_to_the_given_outside_range") {
        return;
    }
    let c = Container::new("sh")
        .args([
            "-c",
            "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; read x",
        ])
        .namespaces(Namespaces::USER | Namespaces::PID)
        .uid_map(&[IdMap::new(0, 100_000, 65_536)])
        .gid_map(&[IdMap::new(0, 200_000, 1000), IdMap::new(1000, 300_000, 1)])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped);
    let mut child = c.spawn().unwrap();
    // Seen from outside, the process runs as uid 100000 and gid 200000.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(field("Uid:"), "100000");
    assert_eq!(field("Gid:"), "200000");
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let text = stdout(&o);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0"]);
    assert_eq!(lines[2], ["0", "100000", "65536"]);
    assert_eq!(lines[3], ["0", "200000", "1000"]);
    assert_eq!(lines[4], ["1000", "300000", "1"]);
}

#[test]
fn uid_and_gid_inside_the_user_namespace() {
    if !is_root("uid_and_gid_inside_the_user_namespace") {
        return;
    }
    let o = output(
        Container::new("sh")
            .args(["-c", "id -u; id -g; id -G"])
            .namespaces(Namespaces::USER)
            .uid_map(&[IdMap::new(0, 100_000, 65_536)])
            .gid_map(&[IdMap::new(0, 100_000, 65_536)])
            .uid(1000)
            .gid(1001),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "1000\n1001\n1001");
}

#[test]
fn rootless_self_map_as_nobody() {
    match role().as_deref() {
        Some("nobody") => {
            // As uid 65534: the default user namespace maps us to 0.
            let o = output(
                Container::new("sh")
                    .args([
                        "-c",
                        "id -u; cat /proc/self/uid_map /proc/self/setgroups; hostname",
                    ])
                    .namespaces(
                        Namespaces::USER
                            | Namespaces::PID
                            | Namespaces::UTS
                            | Namespaces::MOUNT
                            | Namespaces::NET
                            | Namespaces::IPC,
                    )
                    .hostname("rootless"),
            );
            assert!(o.status.success(), "{o:?}");
            let text = stdout(&o);
            let words: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(
                words,
                ["0", "0", "65534", "1", "deny", "rootless"],
                "{text}"
            );
            // Without a user namespace nothing else can be created.
            let e = Container::new("true")
                .namespaces(Namespaces::UTS)
                .spawn()
                .unwrap_err();
            assert_eq!(e.errno(), Some(contain::Errno::EPERM), "{e}");
        }
        Some(_) => {}
        None => {
            if !is_root("rootless_self_map_as_nobody") {
                return;
            }
            assert_passes_as_nobody("rootless_self_map_as_nobody", "nobody", false);
        }
    }
}

#[test]
fn rootless_multi_range_through_newuidmap() {
    match role().as_deref() {
        Some("subids") => {
            let o = output(
                Container::new("cat")
                    .args(["/proc/self/uid_map", "/proc/self/gid_map"])
                    .namespaces(Namespaces::USER)
                    .uid_map(&[IdMap::new(0, 65534, 1), IdMap::new(1, 200_000, 65_536)])
                    .gid_map(&[IdMap::new(0, 65534, 1), IdMap::new(1, 200_000, 65_536)]),
            );
            assert!(o.status.success(), "{o:?}");
            let words: Vec<String> = stdout(&o).split_whitespace().map(str::to_owned).collect();
            assert_eq!(
                words,
                [
                    "0", "65534", "1", "1", "200000", "65536", "0", "65534", "1", "1", "200000",
                    "65536"
                ]
            );
            // A range outside /etc/subuid is refused by newuidmap, with its message.
            let e = Container::new("true")
                .namespaces(Namespaces::USER)
                .uid_map(&[IdMap::new(0, 65534, 1), IdMap::new(1, 500_000, 10)])
                .spawn()
                .unwrap_err();
            assert!(matches!(e, Error::Helper { .. }), "{e}");
            assert!(e.to_string().contains("newuidmap"), "{e}");
        }
        Some(_) => {}
        None => {
            const TEST: &str = "rootless_multi_range_through_newuidmap";
            if !is_root(TEST) {
                return;
            }
            // The library looks for newuidmap/newgidmap in PATH, which `rerun_as_nobody`
            // sets to these directories.
            let dirs = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];
            for helper in ["newuidmap", "newgidmap"] {
                if !dirs
                    .iter()
                    .any(|d| std::path::Path::new(d).join(helper).is_file())
                {
                    skip(
                        TEST,
                        &format!(
                            "no {helper} in PATH (apt-get install uidmap; `cargo xtask test` does)"
                        ),
                    );
                    return;
                }
            }
            for file in ["/etc/subuid", "/etc/subgid"] {
                if !std::path::Path::new(file).exists() {
                    skip(
                        TEST,
                        &format!("no {file} to replace in a private mount namespace (the uidmap package makes it)"),
                    );
                    return;
                }
            }
            assert_passes_as_nobody(TEST, "subids", true);
        }
    }
}

#[test]
fn only_passed_fds_reach_the_child() {
    // A descriptor without O_CLOEXEC, as a careless library would leave it.
    // SAFETY: plain open(2) of a constant path; we own the result.
    let leaky = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(leaky >= 0);
    // SAFETY: `leaky` is a fresh descriptor we own.
    let leaky = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(leaky) };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::unistd::write(&w, b"through fd 5").unwrap();
    drop(w);
    // A static program: a dynamic one's loader briefly holds its libraries open (fd 3) right
    // after the exec, when spawn has returned and this test looks.
    let c = Container::new(common::busybox::busybox_path())
        .args(["sleep", "30"])
        .pass_fd(r, 5);
    let mut child = c.spawn().unwrap();
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(fds, [0, 1, 2, 5], "fd {} must not leak", leaky.as_raw_fd());
    child.kill(Signal::SIGKILL).unwrap();
    child.wait().unwrap();

    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::unistd::write(&w, b"through fd 5").unwrap();
    drop(w);
    let o = output(Container::new("sh").args(["-c", "cat <&5"]).pass_fd(r, 5));
    assert_eq!(stdout(&o), "through fd 5");
}

#[test]
fn stdio_null_piped_and_fd() {
    let o = output(
        Container::new("sh")
            .args(["-c", "cat; echo out; echo err >&2"])
            .stdin(Stdio::Null),
    );
    assert_eq!(stdout(&o), "out");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let mut child = Container::new("cat")
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"echoed").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.stdout, b"echoed");
}

#[test]
fn exit_codes_and_signals_come_back() {
    let st = Container::new("sh")
        .args(["-c", "exit 42"])
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        (st.code(), st.signal(), st.shell_code()),
        (Some(42), None, 42)
    );
    let st = Container::new("sh")
        .args(["-c", "kill -TERM $$"])
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        (st.code(), st.signal(), st.shell_code()),
        (None, Some(Signal::SIGTERM), 143)
    );
}

#[test]
fn kill_through_the_pidfd() {
    let mut child = Container::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill(Signal::SIGUSR1).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(Signal::SIGUSR1));
    // After reaping, kill is a no-op rather than a signal to a recycled pid.
    child.kill(Signal::SIGKILL).unwrap();
    // The pidfd is a real pidfd: it polls readable once the process has ended.
    let mut pfd = [nix::poll::PollFd::new(
        child.pidfd(),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).unwrap(),
        1
    );
}

#[test]
fn dropping_a_running_child_kills_and_reaps_it() {
    let child = Container::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    drop(child);
    // Reaped: the pid is no longer our child (not even a zombie).
    let r = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid as i32),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    assert_eq!(r, Err(nix::errno::Errno::ECHILD));
}

#[test]
fn the_child_dies_with_its_parent() {
    if role().as_deref() == Some("parent") {
        let child = Container::new("sleep").arg("1000").spawn().unwrap();
        println!("grandchild={}", child.id());
        std::io::stdout().flush().unwrap();
        // Hold the container until killed (or until the test ends: our stdin closes).
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }
    if role().is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut parent = std::process::Command::new(exe)
        .args([
            "the_child_dies_with_its_parent",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CONTAIN_TEST_ROLE", "parent")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _hold = parent.stdin.take();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(parent.stdout.take().unwrap());
    // libtest may print "test NAME ... " on the same line first.
    while !line.contains("grandchild=") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "the parent printed no pid"
        );
    }
    let pid: i32 = line
        .trim()
        .rsplit("grandchild=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: pidfd_open with a pid; we own the returned fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "grandchild {pid} should be running");
    // SAFETY: a fresh descriptor from pidfd_open.
    let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    parent.kill().unwrap();
    parent.wait().unwrap();
    let mut pfd = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(5000u16)).unwrap();
    assert_eq!(n, 1, "the grandchild {pid} outlived its killed parent");
}

#[test]
fn joins_the_namespaces_of_another_container() {
    if !is_root("joins_the_namespaces_of_another_container") {
        return;
    }
    let ns =
        Namespaces::NET | Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT;
    let mut first = Container::new("sleep")
        .arg("30")
        .namespaces(ns)
        .hostname("first")
        .spawn()
        .unwrap();
    let mut second = Container::new("sh")
        .args(["-c", "hostname; echo $$; sleep 30"])
        .stdout(Stdio::Piped);
    for kind in ns.iter() {
        second = second.join(Namespace::of_pid(first.pid(), kind).unwrap());
    }
    let mut second = second.spawn().unwrap();
    for kind in ns.iter() {
        assert_eq!(
            id_of_pid(first.pid(), kind).unwrap(),
            id_of_pid(second.pid(), kind).unwrap(),
            "{kind:?}"
        );
    }
    // Our own thread's pid_for_children was restored after the spawn.
    let mine = std::fs::read_link("/proc/thread-self/ns/pid_for_children").unwrap();
    assert_eq!(
        mine,
        std::fs::read_link("/proc/thread-self/ns/pid").unwrap()
    );
    let mut out = second.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut out, &mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("first"));
    assert_ne!(
        lines.next(),
        Some("1"),
        "the joiner is not PID 1 of the joined namespace"
    );
    second.kill(Signal::SIGKILL).unwrap();
    first.kill(Signal::SIGKILL).unwrap();
    second.wait().unwrap();
    first.wait().unwrap();
}

#[test]
fn enter_a_process_namespaces_by_pidfd() {
    if !is_root("enter_a_process_namespaces_by_pidfd") {
        return;
    }
    let mut c = Container::new("sleep")
        .arg("30")
        .namespaces(Namespaces::NET | Namespaces::UTS)
        .spawn()
        .unwrap();
    let want = (
        id_of_pid(c.pid(), Namespaces::NET).unwrap(),
        id_of_pid(c.pid(), Namespaces::UTS).unwrap(),
    );
    let pidfd = c.pidfd().try_clone_to_owned().unwrap();
    // setns changes only the calling thread: do it in a thread of its own.
    let got = std::thread::spawn(move || {
        contain::namespace::enter_process(pidfd.as_fd(), Namespaces::NET | Namespaces::UTS)
            .unwrap();
        (
            Namespace::current(Namespaces::NET).unwrap().id().unwrap(),
            Namespace::current(Namespaces::UTS).unwrap().id().unwrap(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(got, want);
    c.kill(Signal::SIGKILL).unwrap();
    c.wait().unwrap();
}

#[test]
fn setup_failures_name_the_step_and_errno() {
    let e = Container::new("/nonexistent/prog").spawn().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                errno: contain::Errno::ENOENT,
                ..
            }
        ),
        "{e}"
    );
    let e = Container::new("no-such-program-anywhere")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                errno: contain::Errno::ENOENT,
                ..
            }
        ),
        "{e}"
    );
    let d = common::TempDir::new("noexec");
    std::fs::write(d.path().join("plain"), "not a program").unwrap();
    let e = Container::new(d.path().join("plain")).spawn().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                errno: contain::Errno::EACCES,
                ..
            }
        ),
        "{e}"
    );
    let e = Container::new("true")
        .current_dir("/nonexistent-dir")
        .spawn()
        .unwrap_err();
    // The directory is named, with what to do.
    assert!(
        matches!(
            &e,
            Error::Sys {
                syscall,
                path: Some(p),
                errno: contain::Errno::ENOENT,
                ..
            } if syscall.starts_with("chdir") && p == std::path::Path::new("/nonexistent-dir")
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent-dir") && msg.contains("create it first"),
        "{msg}"
    );
    let e = Container::new("true")
        .current_dir("/etc/passwd")
        .spawn()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/etc/passwd") && e.contains("not a directory") && e.contains("ENOTDIR"),
        "{e}"
    );
}

#[test]
fn program_is_found_in_the_containers_path() {
    let d = common::TempDir::new("path");
    let script = d.path().join("hello-contain");
    std::fs::write(&script, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("/nonexistent:{}:/usr/bin:/bin", d.path().display());
    let o = output(Container::new("hello-contain").env("PATH", &path));
    assert_eq!(stdout(&o), "found");
    // Exactly the variables set, nothing of the caller's (HOME is the passwd entry's, as
    // runc sets it; the caller's own HOME does not count).
    let o = output(
        Container::new("cat")
            .arg("/proc/self/environ")
            .env("FOO", "bar")
            .env("HOME", "/set"),
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "FOO=bar\0HOME=/set\0PATH={}\0",
            contain::process::DEFAULT_PATH
        )
    );
}

/// With a tty and a rootfs the pty is opened inside the container; a setup step that fails
/// before that must come back as itself, not as the missing pty master.
#[test]
fn a_failed_setup_with_a_tty_reports_its_own_error() {
    if !is_root("a_failed_setup_with_a_tty_reports_its_own_error") {
        return;
    }
    let image = common::busybox::BusyboxRootfs::new("tty-setup-error");
    for init in [false, true] {
        let e = Container::new("/bin/true")
            .namespaces(Namespaces::all() - Namespaces::USER - Namespaces::NET)
            .rootfs(contain::rootfs::Rootfs::new(image.root()))
            .current_dir("/bin/true") // a file: chdir fails with ENOTDIR
            .tty(true)
            .init(init)
            .spawn()
            .map(|_| ())
            .expect_err("chdir into a file");
        assert_eq!(e.errno(), Some(contain::Errno::ENOTDIR), "init {init}: {e}");
        assert!(!e.to_string().contains("recvmsg"), "init {init}: {e}");
    }
}

#[test]
fn joining_a_pid_namespace_gives_the_callers_dumpable_flag_back() {
    // The joiner makes itself non-dumpable while it runs our binary in the joined PID
    // namespace, on our shared memory; our own flag must be back after the spawn. Other
    // tests' spawns in this process change it meanwhile, so the check runs alone, in a
    // second run of this binary with only this test.
    let name = "joining_a_pid_namespace_gives_the_callers_dumpable_flag_back";
    if !is_root(name) {
        return;
    }
    if common::role().as_deref() != Some("alone") {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads", "1", "--nocapture"])
            .env("CONTAIN_TEST_ROLE", "alone")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // SAFETY: prctl(PR_GET_DUMPABLE) takes no pointers.
    assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }, 1);
    let mut first = Container::new("sleep")
        .arg("30")
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .spawn()
        .unwrap();
    let mut second = Container::new("true")
        .join(Namespace::of_pid(first.pid(), Namespaces::PID).unwrap())
        .spawn()
        .unwrap();
    assert!(second.wait().unwrap().success());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }, 1);
    first.kill(Signal::SIGKILL).unwrap();
    first.wait().unwrap();
}

/// A `Target` opened from a pid signals through its pidfd and sees the exit (not the reap,
/// which stays the parent's); once reaped, signals fail with ESRCH.
#[test]
fn a_target_signals_and_watches_its_process() {
    let mut child = Container::new("sleep").arg("30").spawn().unwrap();
    let target = contain::process::Target::open(child.pid()).unwrap();
    assert!(!target
        .wait_exit(std::time::Duration::from_millis(50))
        .unwrap());
    target.signal(Signal::SIGTERM).unwrap();
    assert!(target
        .wait_exit(std::time::Duration::from_secs(10))
        .unwrap());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM), "{status:?}");
    match target.signal(Signal::SIGTERM) {
        Err(Error::Sys { errno, syscall, .. }) => {
            assert_eq!(errno, contain::Errno::ESRCH);
            assert_eq!(syscall, "pidfd_send_signal");
        }
        other => panic!("a reaped process took a signal: {other:?}"),
    }
}
