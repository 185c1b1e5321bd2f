//! Security defaults seen from inside the container: capabilities, no_new_privs, seccomp,
//! rlimits and the new session, and each of them switched off or changed.

mod common;

use common::{is_root, output, role, stdout, TempDir};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::security::{CapSet, Rlimit, Seccomp, Security};

/// The fields of /proc/self/status as the container's command sees them.
fn status_of(mut c: Container) -> Vec<(String, String)> {
    c = c.arg("/proc/self/status");
    let o = output(c);
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    &status
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn defaults_reduce_capabilities_and_set_no_new_privs_and_seccomp() {
    if !is_root("defaults_reduce_capabilities_and_set_no_new_privs_and_seccomp") {
        return;
    }
    let docker = format!("{:016x}", CapSet::DOCKER_DEFAULT.bits());
    let st = status_of(Container::new("cat"));
    assert_eq!(field(&st, "CapBnd"), docker);
    assert_eq!(field(&st, "CapEff"), docker);
    assert_eq!(field(&st, "CapPrm"), docker);
    assert_eq!(field(&st, "CapInh"), "0000000000000000");
    assert_eq!(field(&st, "CapAmb"), "0000000000000000");
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");

    // Each is configurable.
    let more = CapSet::DOCKER_DEFAULT.with("SYS_ADMIN".parse().unwrap());
    let st = status_of(Container::new("cat").capabilities(more));
    assert_eq!(field(&st, "CapBnd"), format!("{:016x}", more.bits()));
    let st = status_of(Container::new("cat").security(Security::unrestricted()));
    assert_eq!(field(&st, "NoNewPrivs"), "0");
    assert_eq!(field(&st, "Seccomp"), "0");
    assert_ne!(field(&st, "CapBnd"), docker);
}

#[test]
fn unprivileged_defaults_apply_too() {
    match role().as_deref() {
        Some("nobody") => {
            let st = status_of(Container::new("cat"));
            assert_eq!(field(&st, "NoNewPrivs"), "1");
            assert_eq!(field(&st, "Seccomp"), "2");
            assert_eq!(field(&st, "CapEff"), "0000000000000000");
            let st =
                status_of(Container::new("cat").namespaces(contain::namespace::Namespaces::USER));
            assert_eq!(
                field(&st, "CapBnd"),
                format!("{:016x}", CapSet::DOCKER_DEFAULT.bits())
            );
        }
        Some(_) => {}
        None => {
            if is_root("unprivileged_defaults_apply_too") {
                common::assert_passes_as_nobody("unprivileged_defaults_apply_too", "nobody", false);
            }
        }
    }
}

/// Runs this test binary in a container as a probe that makes the system calls the filter
/// denies and prints what each returned.
fn probe(seccomp: Seccomp, dir: &std::path::Path) -> String {
    probe_keeping(seccomp, CapSet::DOCKER_DEFAULT, dir)
}

/// [`probe`] in a container that keeps `caps`.
fn probe_keeping(seccomp: Seccomp, caps: CapSet, dir: &std::path::Path) -> String {
    probe_in(seccomp, caps, false, dir)
}

/// [`probe`] in a container that keeps `caps`, under the crate's PID 1 with `init`.
fn probe_in(seccomp: Seccomp, caps: CapSet, init: bool, dir: &std::path::Path) -> String {
    let exe = std::env::current_exe().unwrap();
    let o = output(
        Container::new(exe)
            .args([
                "probe_syscalls",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CONTAIN_TEST_ROLE", "probe")
            .env("PROBE_DIR", dir)
            .seccomp(seccomp)
            .capabilities(caps)
            .init(init)
            .namespaces(if init {
                Namespaces::PID
            } else {
                Namespaces::empty()
            }),
    );
    assert!(o.status.success(), "{o:?}");
    // libtest may print "test NAME ... " in front of the first line.
    stdout(&o)
        .lines()
        .filter_map(|l| l.find("probe ").map(|i| &l[i..]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn probe_syscalls() {
    if role().as_deref() != Some("probe") {
        return;
    }
    let dir = std::env::var("PROBE_DIR").unwrap();
    let errno = |r: i64| {
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    };
    // SAFETY: each call gets valid arguments or fails; nothing is dereferenced by us.
    unsafe {
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1): normally allowed.
        println!(
            "probe keyctl {}",
            errno(libc::syscall(libc::SYS_keyctl, 0, -3, 1))
        );
        println!(
            "probe ioctl-tiocsti {}",
            errno(libc::ioctl(0, libc::TIOCSTI, c"x".as_ptr()) as i64)
        );
        let node = std::ffi::CString::new(format!("{dir}/disk")).unwrap();
        let r = libc::mknod(node.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0));
        println!("probe mknod-block {}", errno(r as i64));
        let node = std::ffi::CString::new(format!("{dir}/null")).unwrap();
        let r = libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3));
        println!("probe mknod-char {}", errno(r as i64));

        // Docker's profile. Each call is made so that the kernel, when it gets the call,
        // answers something other than the filter's EPERM/ENOSYS and changes nothing.
        // clone3 with no arguments: the kernel says EINVAL (size 0).
        let r = libc::syscall(libc::SYS_clone3, 0, 0);
        println!("probe clone3 {}", errno(r));
        // CLONE_NEWUSER with CLONE_FS: the kernel always says EINVAL.
        let flags = (libc::CLONE_NEWUSER | libc::CLONE_FS | libc::SIGCHLD) as i64;
        let r = libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0);
        println!("probe clone-newuser {}", errno(r));
        println!("probe setns {}", errno(libc::setns(-1, 0) as i64));
        // open_tree without OPEN_TREE_CLONE needs no capability: an O_PATH fd of "/".
        let r = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            libc::O_CLOEXEC,
        );
        if r >= 0 {
            libc::close(r as i32);
        }
        println!("probe open_tree {}", errno(r));
        let r = libc::syscall(libc::SYS_io_uring_setup, 1, 0);
        println!("probe io_uring_setup {}", errno(r));
        println!(
            "probe personality-query {}",
            errno(libc::personality(0xffff_ffff) as i64)
        );
        let r = libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        println!("probe personality-no-randomize {}", errno(r as i64));
        let me = libc::getpid();
        let r = libc::syscall(libc::SYS_kcmp, me, me, 1 /* KCMP_VM */, 0, 0);
        println!("probe kcmp {}", errno(r));
        let r = libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if r >= 0 {
            libc::close(r);
        }
        println!("probe socket-vsock {}", errno(r as i64));
        // Threads (glibc: clone3, then clone on ENOSYS) and fork (clone with SIGCHLD).
        let thread = std::thread::spawn(|| 7).join().map_or(-1, |v| v - 7);
        println!("probe thread {thread}");
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(0);
        }
        let mut status = 0;
        let forked = if pid > 0 && libc::waitpid(pid, &mut status, 0) == pid && status == 0 {
            0
        } else {
            errno(-1).max(1)
        };
        println!("probe fork {forked}");
        // Last: without the filter this may succeed (the probe is multithreaded, so the
        // kernel normally says EINVAL).
        println!(
            "probe unshare-user {}",
            errno(libc::unshare(libc::CLONE_NEWUSER) as i64)
        );
    }
}

#[test]
fn the_default_filter_denies_with_eperm() {
    if !is_root("the_default_filter_denies_with_eperm") {
        return;
    }
    let d = TempDir::new("seccomp");
    let with = probe(Seccomp::Default, d.path());
    let eperm = libc::EPERM;
    assert!(with.contains(&format!("probe keyctl {eperm}")), "{with}");
    assert!(
        with.contains(&format!("probe ioctl-tiocsti {eperm}")),
        "{with}"
    );
    assert!(
        with.contains(&format!("probe mknod-block {eperm}")),
        "a block device node was made: {with}"
    );
    assert!(
        with.contains("probe mknod-char 0"),
        "character devices stay allowed: {with}"
    );
    assert!(!d.path().join("disk").exists());
    std::fs::remove_file(d.path().join("null")).unwrap();

    // Without the filter the same calls get through to the kernel: the denials above are the
    // filter's doing.
    let without = probe(Seccomp::Disabled, d.path());
    assert!(
        !without.contains(&format!("probe keyctl {eperm}")),
        "{without}"
    );
    assert!(without.contains("probe mknod-block 0"), "{without}");
}

/// The value the probe printed for `what`.
fn probed(out: &str, what: &str) -> i32 {
    let prefix = format!("probe {what} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {what} in {out}"))
}

#[test]
fn the_default_filter_follows_dockers_profile() {
    if !is_root("the_default_filter_follows_dockers_profile") {
        return;
    }
    let d = TempDir::new("seccomp-docker");
    let (eperm, enosys) = (libc::EPERM, libc::ENOSYS);
    let with = probe(Seccomp::Default, d.path());
    let _ = std::fs::remove_file(d.path().join("null"));
    for (what, want) in [
        ("clone3", enosys),
        ("clone-newuser", eperm),
        ("setns", eperm),
        ("open_tree", eperm),
        ("io_uring_setup", eperm),
        ("personality-query", 0),
        ("personality-no-randomize", eperm),
        ("kcmp", eperm),
        ("socket-vsock", eperm),
        ("thread", 0),
        ("fork", 0),
        ("unshare-user", eperm),
    ] {
        assert_eq!(probed(&with, what), want, "{what}: {with}");
    }

    // Without the filter the kernel answers otherwise: the answers above are the filter's.
    let without = probe(Seccomp::Disabled, d.path());
    let _ = std::fs::remove_file(d.path().join("null"));
    assert_eq!(probed(&without, "clone3"), libc::EINVAL, "{without}");
    assert_eq!(probed(&without, "clone-newuser"), libc::EINVAL, "{without}");
    assert_eq!(probed(&without, "setns"), libc::EBADF, "{without}");
    assert_eq!(probed(&without, "open_tree"), 0, "{without}");
    assert_eq!(probed(&without, "personality-no-randomize"), 0, "{without}");
    assert_eq!(probed(&without, "kcmp"), 0, "{without}");
    assert_ne!(probed(&without, "unshare-user"), eperm, "{without}");
    let io_uring_disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .is_ok_and(|v| v.trim() != "0");
    if !io_uring_disabled {
        assert_ne!(probed(&without, "io_uring_setup"), eperm, "{without}");
    }

    // Capabilities lift their rules: CAP_SYS_ADMIN the namespace, mount and clone3 ones,
    // CAP_SYS_PTRACE kcmp; io_uring stays refused.
    let more = CapSet::DOCKER_DEFAULT
        .with("SYS_ADMIN".parse().unwrap())
        .with("SYS_PTRACE".parse().unwrap());
    let lifted = probe_keeping(Seccomp::Default, more, d.path());
    assert_eq!(probed(&lifted, "clone3"), libc::EINVAL, "{lifted}");
    assert_eq!(probed(&lifted, "clone-newuser"), libc::EINVAL, "{lifted}");
    assert_eq!(probed(&lifted, "setns"), libc::EBADF, "{lifted}");
    assert_eq!(probed(&lifted, "open_tree"), 0, "{lifted}");
    assert_eq!(probed(&lifted, "kcmp"), 0, "{lifted}");
    assert_eq!(probed(&lifted, "io_uring_setup"), eperm, "{lifted}");
    assert_eq!(probed(&lifted, "thread"), 0, "{lifted}");
}

#[test]
fn init_threads_and_fork_run_under_the_default_filter() {
    if !is_root("init_threads_and_fork_run_under_the_default_filter") {
        return;
    }
    // PID 1 forks the payload with clone(SIGCHLD), reaps and forwards signals under the
    // filter; the payload starts a thread (clone3, then clone) and forks.
    let d = TempDir::new("seccomp-init");
    let out = probe_in(Seccomp::Default, CapSet::DOCKER_DEFAULT, true, d.path());
    assert_eq!(probed(&out, "thread"), 0, "{out}");
    assert_eq!(probed(&out, "fork"), 0, "{out}");
    assert_eq!(probed(&out, "clone3"), libc::ENOSYS, "{out}");
    assert_eq!(probed(&out, "unshare-user"), libc::EPERM, "{out}");
}

#[test]
fn unshare_inside_needs_cap_sys_admin() {
    if !is_root("unshare_inside_needs_cap_sys_admin") {
        return;
    }
    if !std::path::Path::new("/usr/bin/unshare").exists() {
        eprintln!("unshare_inside_needs_cap_sys_admin: no /usr/bin/unshare (util-linux); not run");
        return;
    }
    let run = |flag: &str, caps: CapSet, seccomp: Seccomp| {
        let o = output(
            Container::new("/usr/bin/unshare")
                .args([flag, "true"])
                .capabilities(caps)
                .seccomp(seccomp),
        );
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let docker = CapSet::DOCKER_DEFAULT;
    for flag in ["-U", "-m", "-Ur"] {
        let (code, err) = run(flag, docker, Seccomp::Default);
        assert_ne!(code, Some(0), "unshare {flag} ran");
        assert!(
            err.contains("Operation not permitted"),
            "unshare {flag}: {err}"
        );
    }
    // The same without the filter: a user namespace needs no capability, so only the
    // filter refused it.
    let (code, err) = run("-U", docker, Seccomp::Disabled);
    assert_eq!(code, Some(0), "unshare -U without the filter: {err}");
    // With CAP_SYS_ADMIN kept, docker's profile lets the namespace calls through.
    let admin = docker.with("SYS_ADMIN".parse().unwrap());
    let (code, err) = run("-m", admin, Seccomp::Default);
    assert_eq!(code, Some(0), "unshare -m with CAP_SYS_ADMIN: {err}");
}

#[test]
fn rlimits_default_and_set() {
    let o = output(Container::new("sh").args(["-c", "ulimit -n; ulimit -Hn"]));
    let hard_now = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    assert_eq!(
        stdout(&o),
        format!("{}\n{}", hard_now.min(1024), hard_now.min(524_288))
    );
    let o = output(
        Container::new("cat")
            .arg("/proc/self/limits")
            .rlimit(Rlimit::parse("nofile=64:128").unwrap())
            .rlimit(Rlimit::parse("nproc=77").unwrap()),
    );
    let limits = stdout(&o);
    let row = |name: &str| -> Vec<String> {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("Max open files"), ["64", "128"]);
    assert_eq!(row("Max processes"), ["77", "77"]);
}

#[test]
fn a_hard_limit_above_the_callers_in_a_user_namespace_is_explained() {
    // RLIMIT_NOFILE's hard limit is never unlimited (at most fs.nr_open): one more is a raise.
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    let e = Container::new("true")
        .namespaces(Namespaces::USER | Namespaces::MOUNT)
        .rlimit(Rlimit::parse(&format!("nofile=64:{}", hard + 1)).unwrap())
        .spawn()
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("RLIMIT_NOFILE soft 64")
            && msg.contains(&format!("hard {}", hard + 1))
            && msg.contains("CAP_SYS_RESOURCE")
            && msg.contains("user namespace"),
        "{msg}"
    );
}

#[test]
fn the_container_leads_its_own_session() {
    let o = output(Container::new("cat").arg("/proc/self/stat"));
    let text = stdout(&o);
    // pid (comm) state ppid pgrp session ...
    let after_comm: Vec<&str> = text
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let pid = text.split_whitespace().next().unwrap();
    assert_eq!(after_comm[3], pid, "session id: {text}");
    assert_eq!(after_comm[2], pid, "process group: {text}");
    let c = Container::new("cat");
    let s = Security {
        new_session: false,
        ..Default::default()
    };
    let o = output(c.arg("/proc/self/stat").security(s));
    let text = stdout(&o);
    let after_comm: Vec<&str> = text
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_ne!(after_comm[3], text.split_whitespace().next().unwrap());
}

/// A block device of this machine with data on it (major, minor), from /sys/dev/block.
fn some_block_device() -> Option<(u32, u32)> {
    std::fs::read_dir("/sys/dev/block")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let sectors: u64 = std::fs::read_to_string(e.path().join("size"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let name = e.file_name().into_string().ok()?;
            let (a, b) = name.split_once(':')?;
            (sectors > 0).then_some((a.parse().ok()?, b.parse().ok()?))
        })
        .min()
}

/// Whether this process can open a block node for (major, minor) itself (some sandboxes
/// forbid even root to read disks).
fn host_can_read(dir: &std::path::Path, major: u32, minor: u32) -> bool {
    let node = dir.join("probe");
    let c = std::ffi::CString::new(node.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mknod with a valid path.
    let made = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFBLK | 0o600,
            libc::makedev(major, minor),
        )
    } == 0;
    let ok = made && std::fs::File::open(&node).is_ok();
    let _ = std::fs::remove_file(&node);
    ok
}

#[test]
fn device_nodes_for_host_disks_cannot_be_read() {
    if !is_root("device_nodes_for_host_disks_cannot_be_read") {
        return;
    }
    let Some((major, minor)) = some_block_device() else {
        panic!("this machine has no block device to test with (/sys/dev/block is empty)");
    };
    let d = TempDir::new("devices");
    let dir = d.path().display().to_string();
    let parent =
        contain::cgroup::CgroupBuilder::new(format!("contain-test-dev-{}", std::process::id()))
            .create_in(&contain::cgroup::Cgroup::root().unwrap())
            .unwrap();
    let run = |script: String, security: Security, own_cgroup: bool| {
        let mut c = Container::new("sh")
            .args(["-c", &script])
            .security(security);
        if own_cgroup {
            c = c.resources(Default::default()).cgroup_parent(parent.path());
        }
        let o = output(c);
        let _ = std::fs::remove_file(d.path().join("node"));
        (
            o.status.code(),
            stdout(&o),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let no_seccomp = Security {
        seccomp: Seccomp::Disabled,
        ..Default::default()
    };
    let unguarded = Security {
        device_allowlist: None,
        seccomp: Seccomp::Disabled,
        ..Default::default()
    };
    let read_disk = format!("mknod {dir}/node b {major} {minor} && head -c 512 {dir}/node >{dir}/out && wc -c <{dir}/out");

    // Without a cgroup: the default seccomp filter refuses the node itself.
    let (code, _, err) = run(read_disk.clone(), Security::default(), false);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("mknod") && err.contains("Operation not permitted"),
        "{err}"
    );
    // With a cgroup of its own but no seccomp filter: the node is made, the device filter
    // refuses to open it.
    let (code, _, err) = run(read_disk.clone(), no_seccomp.clone(), true);
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("head") && err.contains("Operation not permitted"),
        "{err}"
    );
    // Neither: the read succeeds, so the two refusals above are what protects the disk.
    if host_can_read(d.path(), major, minor) {
        let (code, out, err) = run(read_disk, unguarded.clone(), true);
        assert_eq!((code, out.as_str()), (Some(0), "512"), "{err}");
    } else {
        eprintln!("this host forbids even root to open block {major}:{minor}; the baseline is shown with a character device below");
    }
    // The same with a character device outside the allowlist that root may open (fuse).
    if std::path::Path::new("/sys/dev/char/10:229").exists() {
        let open_fuse = format!("mknod {dir}/node c 10 229 && exec 3<>{dir}/node && echo opened");
        let (code, _, err) = run(open_fuse.clone(), no_seccomp, true);
        assert_ne!(code, Some(0), "opening fuse must be refused");
        assert!(err.contains("Operation not permitted"), "{err}");
        let (code, out, err) = run(open_fuse, unguarded, true);
        assert_eq!((code, out.as_str()), (Some(0), "opened"), "{err}");
    }
    parent.remove(std::time::Duration::from_secs(5)).unwrap();
}

/// A static 32-bit (i386) program, 260 bytes, assembled with `as --32` and linked with
/// `ld -m elf_i386 -N -s` from:
///
/// ```text
/// _start: movl $288, %eax      # keyctl
///         movl $0, %ebx        # KEYCTL_GET_KEYRING_ID
///         movl $-3, %ecx       # KEY_SPEC_SESSION_KEYRING
///         movl $1, %edx
///         int $0x80
///         xorl %ebx, %ebx      # exit 0 on success, else with the errno
///         testl %eax, %eax
///         jns 1f
///         movl %eax, %ebx
///         negl %ebx
/// 1:      movl $1, %eax        # exit
///         int $0x80
/// ```
const KEYCTL_I386: [u8; 260] = [
    0x7f, 0x45, 0x4c, 0x46, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x54, 0x80, 0x04, 0x08, 0x34, 0x00, 0x00, 0x00,
    0x8c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x34, 0x00, 0x20, 0x00, 0x01, 0x00, 0x28, 0x00,
    0x03, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00, 0x54, 0x80, 0x04, 0x08,
    0x54, 0x80, 0x04, 0x08, 0x27, 0x00, 0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0xb8, 0x20, 0x01, 0x00, 0x00, 0xbb, 0x00, 0x00, 0x00, 0x00, 0xb9, 0xfd,
    0xff, 0xff, 0xff, 0xba, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80, 0x31, 0xdb, 0x85, 0xc0, 0x79, 0x04,
    0x89, 0xc3, 0xf7, 0xdb, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80, 0x00, 0x2e, 0x73, 0x68, 0x73,
    0x74, 0x72, 0x74, 0x61, 0x62, 0x00, 0x2e, 0x74, 0x65, 0x78, 0x74, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x54, 0x80, 0x04, 0x08, 0x54, 0x00, 0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x00, 0x00, 0x00,
    0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

#[test]
#[cfg(target_arch = "x86_64")]
fn thirty_two_bit_programs_run_and_get_the_same_denials() {
    let d = TempDir::new("i386");
    let prog = d.path().join("keyctl32");
    std::fs::write(&prog, KEYCTL_I386).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let code = |seccomp: Seccomp| match Container::new(&prog).seccomp(seccomp).spawn() {
        Ok(mut child) => child.wait().unwrap(),
        Err(e) => panic!("this kernel does not run i386 programs (no IA32 emulation?): {e}"),
    };
    let without = code(Seccomp::Disabled);
    assert_eq!(without.code(), Some(0), "keyctl works without the filter");
    let with = code(Seccomp::Default);
    assert_eq!(
        with.signal(),
        None,
        "a 32-bit program must not be killed by the filter: {with}"
    );
    assert_eq!(
        with.code(),
        Some(libc::EPERM),
        "keyctl through int 0x80 is denied: {with}"
    );
}

/// A caller's own program, written with the crate's `SockFilter` (no BPF compiler's type
/// needed): `kill(2)` fails with EPERM in the container (the shell's `kill -0 $$` says so),
/// everything else runs.
#[test]
fn a_program_of_sock_filters_is_installed() {
    use contain::security::SockFilter;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let program = vec![
        SockFilter::new(ld, 0, 0, 4), // seccomp_data.arch
        SockFilter::new(jeq, 1, 0, AUDIT_ARCH),
        SockFilter::new(ret, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        SockFilter::new(ld, 0, 0, 0), // seccomp_data.nr
        SockFilter::new(jeq, 0, 1, libc::SYS_kill as u32),
        SockFilter::new(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        SockFilter::new(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let out = Container::new("sh")
        .args(["-c", "echo before; kill -0 $$; echo status $?"])
        .namespaces(Namespaces::USER)
        .seccomp(Seccomp::Program(program))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}", out.status);
    assert!(stdout.starts_with("before\n"), "{stdout}");
    assert!(stdout.ends_with("status 1\n"), "{stdout}");
}
