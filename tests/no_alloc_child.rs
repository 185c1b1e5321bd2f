//! The child between clone and exec must not allocate: it shares the parent's heap (CLONE_VM)
//! and may have been cloned while another thread held the allocator's lock.
//!
//! This binary's global allocator ends any process other than the test process itself the
//! moment it allocates (exit status 99 and a message on stderr), so every spawn below would
//! fail or return 99 instead of the command's own status if the child allocated.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use common::busybox::BusyboxRootfs;
use common::{is_root, output, stdout, TempDir};
use contain::idmap::IdMap;
use contain::mount::Mount;
use contain::namespace::{Namespace, Namespaces};
use contain::process::{CloneCall, Container, Stdio};
use contain::rootfs::{Rootfs, RootfsMode};
use contain::{Bytes, Error, SetupStage, Signal};

const ALLOCATED_IN_CHILD: i32 = 99;

struct ForbidInOtherProcesses;

static OWNER: AtomicI64 = AtomicI64::new(0);

fn check() {
    // SAFETY: getpid cannot fail and takes no arguments.
    let me = unsafe { libc::syscall(libc::SYS_getpid) };
    match OWNER.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => {}
        Err(owner) if owner == me => {}
        Err(_) => {
            let msg = b"allocation in a process other than the test process\n";
            // SAFETY: raw write and exit_group: nothing here allocates or touches errno users.
            unsafe {
                libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
                libc::syscall(libc::SYS_exit_group, ALLOCATED_IN_CHILD);
            }
        }
    }
}

// SAFETY: forwards to System after a check that never allocates.
unsafe impl GlobalAlloc for ForbidInOtherProcesses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check();
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: ForbidInOtherProcesses = ForbidInOtherProcesses;

#[test]
fn the_detector_catches_an_allocating_child() {
    // Make sure the owner is recorded before forking.
    drop(Box::new(1u8));
    // SAFETY: the child only allocates (which the allocator turns into exit_group before it
    // touches malloc) and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let b = Box::new([0u8; 64]);
        std::hint::black_box(&b);
        // SAFETY: not reached if the detector works; leave without running destructors.
        unsafe { libc::_exit(0) };
    }
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), ALLOCATED_IN_CHILD)
    );
}

#[test]
fn spawn_with_every_feature_allocates_nothing_in_the_child() {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::unistd::write(&w, b"fd\n").unwrap();
    drop(w);
    let mut c = Container::new("sh")
        .args(["-c", "cat <&7; hostname; id -u; pwd; exit 7"])
        .env("A", "b")
        .current_dir("/tmp")
        .pass_fd(r, 7)
        .stdin(Stdio::Null)
        .timing(true);
    if is_root("spawn_with_every_feature_allocates_nothing_in_the_child (namespaces part)") {
        c = c
            .namespaces(Namespaces::all())
            .uid_map(&[IdMap::new(0, 100_000, 65_536)])
            .gid_map(&[IdMap::new(0, 100_000, 65_536)])
            .uid(5)
            .gid(5)
            .hostname("noalloc")
            .domainname("test");
    }
    let o = output(c);
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    let text = stdout(&o);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(text, "fd\nnoalloc\n5\n/tmp");
    }
}

/// `e` is the report of a failed execve.
fn assert_exec_failed(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn an_init_spawn_allocates_nothing_in_the_child() {
    const TEST: &str = "an_init_spawn_allocates_nothing_in_the_child";
    if !is_root(TEST) {
        return;
    }
    // The child execs contain-init from its memfd: the path with the init, a seccomp filter
    // installed before the identity switch (no_new_privs off), and a failing payload.
    let security = contain::security::Security {
        no_new_privs: false,
        ..Default::default()
    };
    let c = Container::new("sh")
        .args(["-c", "echo $$; exit 4"])
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .init(true)
        .uid(5)
        .gid(5)
        .security(security.clone());
    let o = output(c);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(stdout(&o), "2");
    let e = Container::new("/nonexistent")
        .namespaces(Namespaces::PID)
        .init(true)
        .security(security)
        .spawn()
        .unwrap_err();
    assert_exec_failed(&e);
}

#[test]
fn failing_spawns_allocate_nothing_in_the_child() {
    for call in [CloneCall::Auto, CloneCall::Legacy] {
        let e = Container::new("/nonexistent")
            .clone_call(call)
            .spawn()
            .unwrap_err();
        assert_exec_failed(&e);
        let e = Container::new("true")
            .current_dir("/nonexistent")
            .clone_call(call)
            .spawn()
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Sys { syscall, .. } if syscall.starts_with("chdir")
            ),
            "{e}"
        );
    }
}

/// OCI create/start: the child parks before exec (lookup of the program, close of the error
/// pipe, a blocking read of the exec fifo), then execs once started; a program that cannot be
/// found fails `create` from the same lookup.
#[test]
fn create_and_start_allocate_nothing_in_the_child() {
    if !is_root("create_and_start_allocate_nothing_in_the_child") {
        return;
    }
    let dir = TempDir::new("noalloc-create");
    for (i, call) in [CloneCall::Auto, CloneCall::Legacy].into_iter().enumerate() {
        let fifo = dir.path().join(format!("exec{i}.fifo"));
        let created = Container::new("sh")
            .args(["-c", "exit 7"])
            .namespaces(Namespaces::PID | Namespaces::MOUNT)
            .clone_call(call)
            .create(&fifo)
            .unwrap();
        let status = created.start().unwrap().wait().unwrap();
        assert_eq!(status.code(), Some(7), "{call:?}: {status:?}");
        let e = Container::new("no-such-program-here")
            .clone_call(call)
            .create(&fifo)
            .unwrap_err();
        assert_exec_failed(&e);
    }
}

/// A failed execve is probed in the child (does the file exist, is it a script or ELF): raw
/// syscalls on a stack buffer, for each candidate in PATH and for EACCES and ENOEXEC.
#[test]
fn probing_a_failed_exec_allocates_nothing_in_the_child() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("noalloc-probe");
    let write = |name: &str, content: &[u8], mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, PermissionsExt::from_mode(mode)).unwrap();
    };
    write("script", b"#!/no/such/interpreter\n", 0o755);
    write("plain", b"#!/bin/sh\n", 0o644);
    write("no-shebang", b"echo hi\n", 0o755);
    // The interpreter is read out of the #! line: with arguments, and longer than the
    // child's 128-byte buffer (cut, not overflowed).
    write("with-args", b"#! /no/such/env -S python3\n", 0o755);
    let long = format!("#!/no/{}/python3\n", "d".repeat(180));
    write("long", long.as_bytes(), 0o755);
    write("elf-stub", b"\x7fELF", 0o755);
    // An interpreter that exists (a script whose own interpreter is missing).
    let nested = format!("#!{}/script\n", dir.path().display());
    write("nested", nested.as_bytes(), 0o755);
    let path = format!("/nonexistent:{}", dir.path().display());
    for (program, errno) in [
        ("script", contain::Errno::ENOENT),
        ("with-args", contain::Errno::ENOENT),
        ("long", contain::Errno::ENOENT),
        ("nested", contain::Errno::ENOENT),
        ("elf-stub", contain::Errno::ENOEXEC),
        ("missing", contain::Errno::ENOENT),
        ("plain", contain::Errno::EACCES),
        ("no-shebang", contain::Errno::ENOEXEC),
    ] {
        for call in [CloneCall::Auto, CloneCall::Legacy] {
            let e = Container::new(program)
                .env("PATH", &path)
                .clone_call(call)
                .spawn()
                .unwrap_err();
            assert_exec_failed(&e);
            assert_eq!(e.errno(), Some(errno), "{program}: {e}");
        }
    }
}

#[test]
fn joining_namespaces_allocates_nothing_in_the_child() {
    if !is_root("joining_namespaces_allocates_nothing_in_the_child") {
        return;
    }
    let ns = Namespaces::NET | Namespaces::UTS | Namespaces::PID | Namespaces::TIME;
    let mut first = Container::new("sleep")
        .arg("30")
        .namespaces(ns)
        .hostname("joined")
        .spawn()
        .unwrap();
    let mut c = Container::new("hostname");
    for kind in ns.iter() {
        c = c.join(Namespace::of_pid(first.pid(), kind).unwrap());
    }
    let o = output(c);
    assert_eq!(stdout(&o), "joined", "{o:?}");
    first.kill(Signal::SIGKILL).unwrap();
    first.wait().unwrap();
}

/// What an OCI runtime adds to the setup: extra device nodes (mknod, or a bind of the
/// host's node in a user namespace), the propagation of the new root, and exact capability
/// sets kept across a switch to another uid.
#[test]
fn oci_device_nodes_root_propagation_and_cap_sets_allocate_nothing_in_the_child() {
    use contain::mount::Propagation;
    use contain::rootfs::{DeviceNode, NodeKind};
    use contain::security::{CapSet, CapSets, Security};
    if !is_root("oci_device_nodes_root_propagation_and_cap_sets_allocate_nothing_in_the_child") {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-oci");
    let caps = CapSet::EMPTY.with("NET_BIND_SERVICE".parse().unwrap());
    let security = Security {
        capabilities: caps,
        cap_sets: Some(CapSets {
            effective: caps,
            permitted: caps,
            inheritable: caps,
            ambient: caps,
        }),
        ..Security::default()
    };
    for userns in [false, true] {
        let ns = if userns {
            Namespaces::all()
        } else {
            Namespaces::all() - Namespaces::USER
        };
        let rootfs = Rootfs::new(image.root())
            .mode(RootfsMode::ReadOnly)
            .device(DeviceNode::new("/dev/kmsg", NodeKind::Char, 1, 11))
            .root_propagation(Propagation::Shared, true);
        let mut c = Container::new("/bin/sh")
            .args([
                "-c",
                "ls -l /dev/kmsg | head -c 1; grep -q '^CapAmb:.*400$' /proc/self/status || exit 1; exit 7",
            ])
            .namespaces(ns)
            .uid(1000)
            .gid(1000)
            .security(security.clone())
            .rootfs(rootfs);
        if userns {
            c = c
                .uid_map(&[IdMap::new(0, 0, 65_536)])
                .gid_map(&[IdMap::new(0, 0, 65_536)]);
        }
        let o = output(c);
        assert_eq!(o.status.code(), Some(7), "userns {userns}: {o:?}");
        assert_eq!(stdout(&o), "c", "userns {userns}");
    }
}

#[test]
fn rootfs_assembly_allocates_nothing_in_the_child() {
    if !is_root("rootfs_assembly_allocates_nothing_in_the_child") {
        return;
    }
    let image = BusyboxRootfs::new("noalloc");
    let volume = TempDir::new("noalloc-volume");
    std::fs::write(volume.path().join("v"), "volume\n").unwrap();
    let overlay = std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .contains("\toverlay\n");
    let with_mounts = |r: Rootfs| {
        r.mount(Mount::bind(volume.path(), "/data").read_only())
            .mount(Mount::tmpfs("/mnt").size(Bytes::mib(1)))
            .mask("/etc/image")
    };
    let mut rootfses = vec![
        (
            "read-only",
            with_mounts(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly)),
        ),
        ("host view", with_mounts(Rootfs::host())),
    ];
    if overlay {
        rootfses.push((
            "overlay",
            with_mounts(Rootfs::new(image.root()).size(Bytes::mib(1))),
        ));
    }
    // Without a user namespace (mknod) and with one (device binds, userxattr).
    for userns in [false, true] {
        for (name, rootfs) in &rootfses {
            let ns = if userns {
                Namespaces::all()
            } else {
                Namespaces::all() - Namespaces::USER
            };
            let mut c = Container::new("/bin/sh")
                .args([
                    "-c",
                    "cat /data/v; pwd; head -c 1 /dev/zero | wc -c; exit 7",
                ])
                .namespaces(ns)
                .current_dir("/mnt")
                .rootfs(rootfs.clone());
            if userns {
                c = c
                    .uid_map(&[IdMap::new(0, 0, 65_536)])
                    .gid_map(&[IdMap::new(0, 0, 65_536)]);
            }
            let o = output(c);
            assert_eq!(o.status.code(), Some(7), "{name}, userns {userns}: {o:?}");
            assert_eq!(stdout(&o), "volume\n/mnt\n1", "{name}, userns {userns}");
        }
    }
    // A pty opened inside the container's own devpts, its master sent back over a socket.
    let c = Container::new("/bin/sh")
        .args(["-c", "tty; exit 3"])
        .namespaces(Namespaces::all() - Namespaces::USER)
        .tty(true)
        .rootfs(Rootfs::host());
    let mut child = c.spawn().unwrap();
    let master = child.take_tty().expect("the pty master");
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let mut buf = [0u8; 64];
    let n = nix::unistd::read(&master, &mut buf).unwrap_or(0);
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("/dev/pts/0"),
        "{:?}",
        &buf[..n]
    );

    // A failing assembly reports its error without allocating either.
    let e = Container::new("/bin/true")
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(
            Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::bind("/nonexistent", "/data")),
        )
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Sys { syscall, .. } if syscall.starts_with("open_tree")
        ),
        "{e}"
    );
}

#[test]
fn mount_points_behind_symlinks_and_their_errors_allocate_nothing_in_the_child() {
    if !is_root("mount_points_behind_symlinks_and_their_errors_allocate_nothing_in_the_child") {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-links");
    let root = image.root();
    let file = image.dir().join("file");
    std::fs::write(&file, "zone\n").unwrap();
    let dir = image.dir().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink("/usr/share/zoneinfo/Etc/UTC", root.join("etc/localtime")).unwrap();
    std::os::unix::fs::symlink("../opt/rel", root.join("etc/rel")).unwrap();
    std::os::unix::fs::symlink(
        format!("{}tmp/escaped/x", "../".repeat(12)),
        root.join("etc/escape"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/missing/d", root.join("etc/d")).unwrap();
    std::os::unix::fs::symlink("c2", root.join("etc/c1")).unwrap();
    std::os::unix::fs::symlink("/var/c", root.join("etc/c2")).unwrap();
    std::os::unix::fs::symlink("/etc/loop2", root.join("etc/loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", root.join("etc/loop2")).unwrap();
    let with_links = |r: Rootfs| {
        r.mount(Mount::bind(&file, "/etc/localtime").read_only())
            .mount(Mount::bind(&file, "/etc/rel"))
            .mount(Mount::bind(&file, "/etc/escape"))
            .mount(Mount::bind(&dir, "/etc/d"))
            .mount(Mount::bind(&file, "/etc/c1"))
            .mount(Mount::parse_tmpfs("/run:size=1m,mode=755,uid=0,nr_inodes=1k").unwrap())
            .shm_size(Bytes::mib(1))
    };
    // The overlay first: the ReadWrite run creates the targets in the image itself.
    let mut rootfses = Vec::new();
    if std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .contains("\toverlay\n")
    {
        rootfses.push(with_links(
            Rootfs::new(&root).persistent_upper(image.dir().join("upper")),
        ));
    }
    rootfses.push(with_links(Rootfs::new(&root).mode(RootfsMode::ReadWrite)));
    for rootfs in rootfses {
        let c = Container::new("/bin/sh")
            .args(["-c", "cat /etc/localtime /var/c; exit 7"])
            .namespaces(Namespaces::all() - Namespaces::USER)
            .rootfs(rootfs);
        let o = output(c);
        assert_eq!(o.status.code(), Some(7), "{o:?}");
        assert_eq!(stdout(&o), "zone\nzone");
    }
    // Failures in the walk and the type check report without allocating either.
    let ro = || Rootfs::new(&root).mode(RootfsMode::ReadOnly);
    let fresh = BusyboxRootfs::new("noalloc-links-ro");
    std::os::unix::fs::symlink("/usr/x", fresh.root().join("etc/localtime")).unwrap();
    for (rootfs, want) in [
        (
            ro().mount(Mount::bind(&dir, "/etc/passwd")),
            "a directory onto a file",
        ),
        (
            ro().mount(Mount::bind(&file, "/etc")),
            "a file onto a directory",
        ),
        (
            Rootfs::new(&root)
                .mode(RootfsMode::ReadWrite)
                .mount(Mount::tmpfs("/etc/loop1/x")),
            "a link loop",
        ),
        (
            Rootfs::new(fresh.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::bind(&file, "/etc/localtime")),
            "EROFS",
        ),
    ] {
        let e = Container::new("/bin/true")
            .namespaces(Namespaces::MOUNT | Namespaces::PID)
            .rootfs(rootfs)
            .spawn()
            .map(|_| ())
            .expect_err(want);
        let fits = match want {
            "a link loop" => e.errno() == Some(contain::Errno::ELOOP),
            "EROFS" => e.errno() == Some(contain::Errno::EROFS),
            _ => matches!(e, Error::Config { .. }),
        };
        assert!(fits, "{want}: {e}");
    }
}

#[test]
fn generated_etc_files_allocate_nothing_in_the_child() {
    if !is_root("generated_etc_files_allocate_nothing_in_the_child") {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-etc");
    let script = "cat /etc/hostname; grep -c . /etc/hosts; cat /etc/resolv.conf; exit 4";
    // Own user namespace, the hostname read with uname, resolver settings; then the paths
    // that skip a file: a read-only image without /etc/hosts, an /etc the namespace's root
    // may not write to (owned by an unmapped id).
    for (outside, mode, want) in [
        (0, RootfsMode::Overlay, "noalloc\n8\n"),
        (0, RootfsMode::ReadOnly, ""),
        (100_000, RootfsMode::Overlay, ""),
    ] {
        let c = Container::new("/bin/sh")
            .args(["-c", script])
            .namespaces(Namespaces::all())
            .uid_map(&[IdMap::new(0, outside, 65_536)])
            .gid_map(&[IdMap::new(0, outside, 65_536)])
            .hostname("noalloc")
            .domainname("test")
            .add_host("db", std::net::Ipv4Addr::new(10, 0, 0, 1))
            .dns("192.0.2.1".parse().unwrap())
            .rootfs(Rootfs::new(image.root()).mode(mode))
            .stdin(Stdio::Null);
        let o = output(c);
        assert_eq!(o.status.code(), Some(4), "{mode:?}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with(want),
            "{mode:?}: {o:?}"
        );
    }
    // Veth: the addresses arrive behind the go-ahead byte (in a network namespace of this
    // test's own, which plays the host).
    std::thread::scope(|s| {
        s.spawn(|| {
            contain::namespace::unshare(Namespaces::NET).unwrap();
            let c = Container::new("/bin/sh")
                .args(["-c", "grep -c '^10\\.200\\.' /etc/hosts; exit 5"])
                .namespaces(Namespaces::all() - Namespaces::USER)
                .network(contain::net::Net::veth())
                .add_host("gw", contain::net::HostAddr::HostGateway)
                .rootfs(Rootfs::new(image.root()))
                .stdin(Stdio::Null);
            let o = output(c);
            assert_eq!(o.status.code(), Some(5), "{o:?}");
            assert_eq!(stdout(&o), "2", "{o:?}");
        })
        .join()
        .unwrap();
    });
    // A UTS namespace's name that would break /etc/hosts: refused by the child after uname.
    std::thread::scope(|s| {
        s.spawn(|| {
            contain::namespace::unshare(Namespaces::UTS).unwrap();
            nix::unistd::sethostname("bad\nname").unwrap();
            let e = Container::new("/bin/true")
                .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::NET)
                .rootfs(Rootfs::new(image.root()))
                .stdin(Stdio::Null)
                .spawn()
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Config {
                        what: "hostname",
                        ..
                    }
                ),
                "{e}"
            );
        })
        .join()
        .unwrap();
    });
}

#[test]
fn process_defaults_allocate_nothing_in_the_child() {
    const TEST: &str = "process_defaults_allocate_nothing_in_the_child";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-defaults");
    std::fs::write(
        image.root().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        image.root().join("etc/group"),
        "root:x:0:\nstaff:x:50:alice\n",
    )
    .unwrap();
    // umask, sysctls (docker's defaults and the caller's), a user by name, a working
    // directory created inside the root, and stdio pipes given to the user.
    let c = Container::new("/bin/sh")
        .args([
            "-c",
            "umask; pwd; id -G; cat /proc/sys/net/core/somaxconn; echo x >/proc/self/fd/1; exit 7",
        ])
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(
            Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::tmpfs("/mnt")),
        )
        .current_dir("/mnt/a/b")
        .umask(0o027)
        .user("alice".parse().unwrap())
        .sysctl("net.core.somaxconn", "321");
    let o = output(c);
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    assert_eq!(stdout(&o), "0027\n/mnt/a/b\n1000 50\n321\nx");

    // The failures: a sysctl the kernel lacks, a working directory in a read-only root.
    let e = Container::new("true")
        .namespaces(Namespaces::NET)
        .sysctl("net.ipv4.no_such_sysctl", "1")
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("no_such_sysctl"), "{e}");
    let e = Container::new("/bin/true")
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly))
        .current_dir("/none/such")
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("EROFS"), "{e}");

    // A pty the parent opened (no rootfs), given to the container's user.
    let c = Container::new("sh")
        .args(["-c", "echo x >/dev/stdout; exit 3"])
        .uid(65534)
        .gid(65534)
        .tty(true);
    let mut child = c.spawn().unwrap();
    let master = child.take_tty().expect("the pty master");
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let mut buf = [0u8; 64];
    let n = nix::unistd::read(&master, &mut buf).unwrap_or(0);
    assert_eq!(&buf[..n], b"x\r\n");
}

#[test]
fn rlimits_raised_and_a_late_nofile_limit_allocate_nothing_in_the_child() {
    // RLIMIT_NOFILE is raised (hard, needs root) early and set last, after the descriptors
    // the setup needs; a limit of 0 reaches the command itself.
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    // Raising the hard limit needs CAP_SYS_RESOURCE (bit 24), which even root may lack.
    let cap_eff = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let raise = cap_eff & (1 << 24) != 0 && hard < 1 << 20;
    if !raise {
        common::skip(
            "rlimits_raised_..._in_the_child (raise part)",
            "no CAP_SYS_RESOURCE",
        );
    }
    for (soft, hard) in [(0, 0), (16, if raise { hard + 1 } else { hard })] {
        let c = Container::new("/bin/sh")
            .args(["-c", "exit 5"])
            .stdin(Stdio::Null)
            .rlimit(contain::security::Rlimit::parse(&format!("nofile={soft}:{hard}")).unwrap());
        let o = output(c);
        // The setup succeeded (spawn returned); a dynamically linked sh cannot load its
        // libraries without a descriptor (127 from the loader), a static one exits 5.
        let ok: &[i32] = if soft == 0 { &[5, 127] } else { &[5] };
        assert!(
            o.status.code().is_some_and(|c| ok.contains(&c)),
            "nofile={soft}:{hard}: {o:?}"
        );
    }
}

/// Stacks of layers (`Rootfs::from_layers`): the child opens every layer and passes it with
/// `lowerdir+` (Linux 6.7+) or builds one `mount(2)` page on its stack (older kernels, and
/// here again with `CONTAIN_OVERLAY_LEGACY=1` in a second run of this test), with a throw-away,
/// a persistent and no upper layer, with and without a user namespace.
#[test]
fn stacks_of_layers_allocate_nothing_in_the_child() {
    const TEST: &str = "stacks_of_layers_allocate_nothing_in_the_child";
    let legacy_run = std::env::var_os("CONTAIN_TEST_ROLE").is_some_and(|r| r == "legacy");
    if !is_root(TEST) || contain::rootfs::max_lowers().is_err() {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-stack");
    let layers_dir = TempDir::new("noalloc-layers");
    let mut layers = vec![image.root()];
    for i in 1..60 {
        let l = layers_dir.path().join(format!("{i}"));
        std::fs::create_dir_all(l.join("f")).unwrap();
        std::fs::write(l.join("f").join(format!("{i}")), "").unwrap();
        layers.push(l);
    }
    let upper = layers_dir.path().join("upper");
    let rootfses = [
        (
            "throw-away upper",
            Rootfs::from_layers(&layers).size(Bytes::mib(1)),
        ),
        (
            "persistent upper",
            Rootfs::from_layers(&layers).persistent_upper(&upper),
        ),
        (
            "read-only",
            Rootfs::from_layers(&layers).mode(RootfsMode::ReadOnly),
        ),
    ];
    for userns in [false, true] {
        for (name, rootfs) in &rootfses {
            let ns = if userns {
                Namespaces::all()
            } else {
                Namespaces::all() - Namespaces::USER
            };
            let mut c = Container::new("/bin/sh")
                .args(["-c", "ls /f | wc -l; exit 7"])
                .namespaces(ns)
                .rootfs(rootfs.clone());
            if userns {
                c = c
                    .uid_map(&[IdMap::new(0, 0, 65_536)])
                    .gid_map(&[IdMap::new(0, 0, 65_536)]);
            }
            let o = output(c);
            assert_eq!(o.status.code(), Some(7), "{name}, userns {userns}: {o:?}");
            assert_eq!(stdout(&o), "59", "{name}, userns {userns}");
        }
    }
    // A layer that is not there: the child's error report allocates nothing either.
    let mut missing = layers.clone();
    missing.push(layers_dir.path().join("missing"));
    let e = Container::new("/bin/true")
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(Rootfs::from_layers(&missing))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Sys { syscall: "openat2", path: Some(p), .. } if p.ends_with("missing")),
        "{e}"
    );
    if !legacy_run {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env("CONTAIN_TEST_ROLE", "legacy")
            .env(contain::rootfs::OVERLAY_LEGACY_ENV, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "the mount(2) run: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `Container::enter` (OCI's exec): setns(pidfd) into every namespace of a running container
/// (a user namespace among them), its cgroup, its pty, a uid from its passwd; and the failed
/// enter (a program missing inside, a cwd outside the root) reports without allocating.
#[test]
fn entering_a_running_container_allocates_nothing_in_the_child() {
    use contain::cgroup::Resources;
    use contain::process::Target;
    const TEST: &str = "entering_a_running_container_allocates_nothing_in_the_child";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-enter");
    let v2 = contain::cgroup::HostCgroups::detect()
        .ok()
        .is_some_and(|h| h.v2_mount().is_ok());
    let mut target = Container::new("sleep")
        .arg("60")
        .namespaces(Namespaces::all())
        .uid_map(&[IdMap::new(0, 0, 65_536)])
        .gid_map(&[IdMap::new(0, 0, 65_536)])
        .hostname("entered")
        .rootfs(Rootfs::new(image.root()))
        .stdin(Stdio::Null);
    if v2 {
        target = target.resources(Resources::new());
    }
    let mut target = target.spawn().unwrap();
    let enter = || Target::from_pidfd(target.pidfd()).unwrap();
    let o = output(
        Container::new("sh")
            .args(["-c", "hostname; id -u; pwd; exit 7"])
            .user("nobody".parse().unwrap())
            .current_dir("/tmp")
            .enter(enter()),
    );
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    assert_eq!(stdout(&o), "entered\n65534\n/tmp");
    // With a pty opened inside (the child sends its master over a socket).
    let mut child = Container::new("true")
        .tty(true)
        .enter(enter())
        .spawn()
        .unwrap();
    // Held until it has exited: a master closed earlier would hang it up (SIGHUP).
    let master = child.take_tty();
    assert!(master.is_some());
    assert!(child.wait().unwrap().success());
    drop(master);
    let e = Container::new("/no/such/program")
        .enter(enter())
        .spawn()
        .unwrap_err();
    assert_exec_failed(&e);
    let e = Container::new("true")
        .current_dir("/proc/self/fd/0")
        .stdin(std::fs::File::open("/").unwrap())
        .enter(enter())
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Sys { syscall, .. } if syscall.starts_with("getcwd")),
        "{e}"
    );
    target.kill(Signal::SIGKILL).unwrap();
    target.wait().unwrap();
}

/// A warm pool: its slots (PID 1 `contain-init pause` and the standby, made by the pool's
/// thread, and a slot `spawn` makes itself when none is ready) and requests run by the
/// standby or entered into them, the failed one too.
#[test]
fn pool_slots_and_requests_allocate_nothing_in_the_child() {
    use contain::pool::Pool;
    const TEST: &str = "pool_slots_and_requests_allocate_nothing_in_the_child";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("noalloc-pool");
    let template = || {
        Container::new("unused")
            .namespaces(Namespaces::all() - Namespaces::TIME)
            .uid_map(&[IdMap::new(0, 0, 65_536)])
            .gid_map(&[IdMap::new(0, 0, 65_536)])
            .rootfs(Rootfs::new(image.root()))
            .hostname("pooled")
    };
    // Size 0: every request makes its slot in this thread; size 2: the pool's thread does.
    for size in [0, 2] {
        let pool = Pool::new(template(), size).unwrap();
        // Run by the standby (PID 2), then entered beside it (PID 3: other settings); in the
        // slots made by `spawn` (size 0), entered as PID 2.
        for (uid, pid) in [(None, 2), (None, 2), (Some(65534), 3)] {
            let _ = pool.wait_ready(std::time::Duration::from_secs(60)).unwrap();
            let mut c = Container::new("sh")
                .args(["-c", "echo $$ $(hostname); exit 3"])
                .stdout(Stdio::Piped);
            if let Some(uid) = uid {
                c = c.uid(uid).gid(uid);
            }
            let o = pool.spawn(c).unwrap().wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(3), "{o:?}");
            let pid = if size == 0 { 2 } else { pid };
            assert_eq!(stdout(&o), format!("{pid} pooled"));
        }
        let e = pool.spawn(Container::new("/no/such/program")).unwrap_err();
        assert_exec_failed(&e);
    }
}

/// A rootless `Container::enter` of a PID namespace: the child enters the container's user
/// and PID namespaces, forks the command's process (CLONE_PARENT) and sends its pid and
/// pidfd over a socket: none of it allocates (run as nobody by the root test).
#[test]
fn a_rootless_enter_that_forks_allocates_nothing_in_the_child() {
    use contain::process::Target;
    const TEST: &str = "a_rootless_enter_that_forks_allocates_nothing_in_the_child";
    if common::role().is_some() {
        let mut target = Container::new("sleep")
            .arg("60")
            .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::UTS)
            .hostname("forked")
            .stdin(Stdio::Null)
            .spawn()
            .unwrap();
        let o = output(
            Container::new("sh")
                .args(["-c", "hostname; exit 7"])
                .enter(Target::from_pidfd(target.pidfd()).unwrap()),
        );
        assert_eq!(o.status.code(), Some(7), "{o:?}");
        assert_eq!(stdout(&o), "forked");
        let e = Container::new("/no/such/program")
            .enter(Target::from_pidfd(target.pidfd()).unwrap())
            .spawn()
            .unwrap_err();
        assert_exec_failed(&e);
        target.kill(Signal::SIGKILL).unwrap();
        target.wait().unwrap();
        return;
    }
    if !is_root(TEST) {
        return;
    }
    common::assert_passes_as_nobody(TEST, "nobody", false);
}

#[test]
fn personality_console_size_and_a_late_filter_allocate_nothing_in_the_child() {
    use contain::process::{Personality, PersonalityDomain, WindowSize};
    use contain::security::{
        CapSet, CapSets, Seccomp, SeccompAction, SeccompProfile, SeccompRule, Security,
    };
    if !is_root("personality_console_size_and_a_late_filter_allocate_nothing_in_the_child") {
        return;
    }
    // personality(2), a pty of a given size opened in the child, and a filter without
    // no_new_privs for uid 1000 keeping capabilities (installed in the capability drop,
    // CAP_SYS_ADMIN raised again first).
    let image = BusyboxRootfs::new("noalloc-persona");
    let caps = CapSet::DOCKER_DEFAULT;
    let security = Security {
        no_new_privs: false,
        seccomp: Seccomp::Profile(SeccompProfile {
            syscalls: vec![SeccompRule::new(["getcwd"], SeccompAction::Errno).errno(1)],
            ..SeccompProfile::new(SeccompAction::Allow)
        }),
        cap_sets: Some(CapSets {
            effective: caps,
            permitted: caps,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }),
        ..Security::default()
    };
    let mut child = Container::new("/bin/sh")
        .args(["-c", "exit 7"])
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(Rootfs::new(image.root()))
        .uid(1000)
        .gid(1000)
        .security(security)
        .personality(Personality::new(PersonalityDomain::Linux32))
        .tty(true)
        .console_size(WindowSize { rows: 30, cols: 90 })
        .spawn()
        .unwrap_or_else(|e| panic!("spawn failed: {e}"));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
}
