//! Checks of the world the integration tests run in: the qemu guest of `cargo xtask test`
//! (CONTAIN_IN_VM=1) must offer a pure cgroup v2 tree with the controllers enabled and a block
//! device for io.max, a root on which pivot_root works, and the busybox userland the tests call. The checks that hold on
//! any Linux host run on the host too.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// (mount point, filesystem type) of every line of /proc/self/mountinfo.
fn mounts() -> Vec<(String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields
                .iter()
                .position(|f| *f == "-")
                .expect("mountinfo separator");
            (fields[4].to_string(), fields[sep + 1].to_string())
        })
        .collect()
}

#[test]
fn guest_has_a_pure_cgroup2_tree_with_controllers_enabled() {
    let mounts = mounts();
    if !in_vm() {
        let v1: Vec<_> = mounts.iter().filter(|(_, t)| t == "cgroup").collect();
        println!(
            "not in the VM (CONTAIN_IN_VM unset): skipping the pure cgroup v2 checks; \
             this host has {} cgroup v1 mount(s)",
            v1.len()
        );
        return;
    }
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/run", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ] {
        assert!(
            mounts.iter().any(|(p, t)| p == point && t == fstype),
            "{fstype} is not mounted at {point}: {mounts:?}"
        );
    }
    assert!(
        !mounts.iter().any(|(_, t)| t == "cgroup"),
        "the guest must have no cgroup v1 hierarchy: {mounts:?}"
    );
    let controllers = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap();
    let enabled = fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap();
    for needed in ["cpu", "cpuset", "io", "memory", "pids", "hugetlb"] {
        assert!(
            controllers.split_whitespace().any(|c| c == needed),
            "controller {needed} missing from {controllers:?}"
        );
    }
    for controller in controllers.split_whitespace() {
        assert!(
            enabled.split_whitespace().any(|c| c == controller),
            "{controller} is not enabled in the root subtree_control ({enabled:?})"
        );
    }
    // One hierarchy; the command runs, as on a real host, in a non-root cgroup that holds
    // processes (/ci.scope, with pid 1), unless CONTAIN_VM_CGROUP names another (empty: /).
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let expected = match std::env::var("CONTAIN_VM_CGROUP") {
        Ok(cg) if cg.is_empty() => "0::/".to_owned(),
        Ok(cg) => format!("0::/{cg}"),
        Err(_) => "0::/ci.scope".to_owned(),
    };
    assert_eq!(own.trim(), expected, "a pure v2 host lists one hierarchy");
    let procs =
        fs::read_to_string(format!("/sys/fs/cgroup{}/cgroup.procs", &expected[3..])).unwrap();
    assert!(
        procs.lines().any(|p| p == "1"),
        "pid 1 shares the command's cgroup: {procs}"
    );
    // io.max entries name a block device; the guest loads brd for one.
    let ram0 = fs::metadata("/dev/ram0").expect("/dev/ram0 in the guest");
    assert!(ram0.file_type().is_block_device());
}

/// Removes the scratch directory even when an assertion fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pivot_root_works_in_a_new_mount_namespace() {
    if !is_root() {
        println!("skipped: needs root for unshare(CLONE_NEWNS) and mount (CI runs as root)");
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("vm_smoke-{}", std::process::id())));
    fs::create_dir(&dir.0).unwrap();
    let cstr = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // Everything the child needs is prepared before fork: it only makes system calls.
    let new_root = cstr(&dir.0);
    let old_root = cstr(&dir.0.join("old"));
    let marker = c"/marker-only-in-new-root";
    let (slash, tmpfs, dot, old) = (c"/", c"tmpfs", c".", c"old");
    let mut pipe = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(
        unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );

    // SAFETY: the child calls only async-signal-safe functions on memory prepared above and
    // leaves through _exit; the parent reaps it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: see above; each step's failure is reported as (step, errno) on the pipe.
        unsafe {
            let fail = |step: i32| -> ! {
                let report = [step, *libc::__errno_location()];
                libc::write(pipe[1], report.as_ptr().cast(), 8);
                libc::_exit(1)
            };
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                fail(1);
            }
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                slash.as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            ) != 0
            {
                fail(2);
            }
            if libc::mount(
                tmpfs.as_ptr(),
                new_root.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
            {
                fail(3);
            }
            if libc::mkdir(old_root.as_ptr(), 0o700) != 0 {
                fail(4);
            }
            let marker_in_new = libc::openat(
                libc::AT_FDCWD,
                new_root.as_ptr(),
                libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if marker_in_new < 0 || libc::mkdirat(marker_in_new, marker.as_ptr().add(1), 0o700) != 0
            {
                fail(5);
            }
            if libc::chdir(new_root.as_ptr()) != 0 {
                fail(6);
            }
            if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), old.as_ptr()) != 0 {
                fail(7);
            }
            if libc::chdir(slash.as_ptr()) != 0 || libc::access(marker.as_ptr(), libc::F_OK) != 0 {
                fail(8);
            }
            if libc::umount2(c"/old".as_ptr(), libc::MNT_DETACH) != 0 {
                fail(9);
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, an fd we own.
    unsafe { libc::close(pipe[1]) };
    let mut status = 0;
    // SAFETY: reaping the child we forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let mut report = [0i32; 2];
    // SAFETY: reading at most 8 bytes into an 8-byte array from the pipe we own.
    let n = unsafe { libc::read(pipe[0], report.as_mut_ptr().cast(), 8) };
    // SAFETY: closing the read end, an fd we own.
    unsafe { libc::close(pipe[0]) };
    let steps = [
        "",
        "unshare(CLONE_NEWNS)",
        "make / private",
        "mount tmpfs",
        "mkdir old",
        "mkdir marker",
        "chdir new root",
        "pivot_root",
        "find marker in the new root",
        "umount old root",
    ];
    assert!(
        n != 8,
        "{} failed: {}",
        steps.get(report[0] as usize).unwrap_or(&"?"),
        std::io::Error::from_raw_os_error(report[1])
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    assert!(
        !dir.0.join("old").exists(),
        "the tmpfs must exist only in the child's mount namespace"
    );
}

#[test]
fn userland_the_tests_rely_on_is_there() {
    for tool in [
        "/bin/sh",
        "/bin/true",
        "/bin/false",
        "/bin/sleep",
        "/bin/cat",
    ] {
        assert!(Path::new(tool).exists(), "{tool} is missing");
    }
    assert!(Command::new("/bin/true").status().unwrap().success());
    assert_eq!(Command::new("/bin/false").status().unwrap().code(), Some(1));
    let out = Command::new("/bin/sh")
        .args(["-c", "echo $((6 * 7))"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");

    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("root:x:0:0:")),
        "{passwd}"
    );
    assert!(
        passwd.lines().any(|l| l.starts_with("nobody:x:65534:")),
        "{passwd}"
    );
    let tmp_mode = fs::metadata("/tmp").unwrap().permissions().mode();
    assert_eq!(
        tmp_mode & 0o7777,
        0o1777,
        "/tmp must be world-writable and sticky"
    );
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    if in_vm() {
        for busybox in ["/bin/busybox", "/usr/bin/busybox"] {
            assert!(
                Path::new(busybox).exists(),
                "{busybox} is missing in the guest"
            );
        }
        assert_eq!(
            std::env::current_dir().unwrap(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
        );
    }
}
