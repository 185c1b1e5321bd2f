//! Mount tests. They need root (CAP_SYS_ADMIN); as another user each test says so and skips.
//!
//! Every scenario runs in a forked child that first enters its own mount namespace and makes
//! `/` recursively private, so nothing it mounts can reach the host; the child reports back
//! through its exit status and a pipe. Each test also checks that the host's mount table (this
//! process's `/proc/self/mountinfo`) is identical before and after, and removes its temporary
//! directory even when it fails.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use contain::mount::{self, Atime, Mount, PreparedMount, Propagation};
use contain::mountinfo::{MountFlags, MountInfo};
use contain::{Bytes, Errno, Error};
use nix::sched::CloneFlags;

// ---------------------------------------------------------------------------------------------
// Harness

/// Counts allocations while armed. Only ever armed in a forked (single-threaded) child.
struct CountingAlloc;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: mount tests need root (CAP_SYS_ADMIN to mount); run them as root");
            return;
        }
    };
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

fn err<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// A temporary directory, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("contain-mount-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).expect("create temp dir");
        TempDir(path)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// Asserts on drop that this process's mount table did not change.
struct HostMountsUnchanged(Vec<MountInfo>);

impl HostMountsUnchanged {
    fn new() -> HostMountsUnchanged {
        HostMountsUnchanged(MountInfo::read_self().expect("read host mountinfo"))
    }
}

impl Drop for HostMountsUnchanged {
    fn drop(&mut self) {
        let now = MountInfo::read_self().expect("read host mountinfo");
        if std::thread::panicking() {
            if now != self.0 {
                eprintln!("host mount table changed as well: {now:#?}");
            }
        } else {
            assert_eq!(self.0, now, "the host mount table changed");
        }
    }
}

/// New-API syscalls (x86_64 / aarch64 numbers are the same for these).
const NEW_MOUNT_API: &[libc::c_long] = &[
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// What this machine has.
    Current,
    /// As before Linux 5.2: no new mount API at all (seccomp makes it ENOSYS).
    NoNewMountApi,
    /// As Linux 5.2 to 5.11: everything but mount_setattr.
    NoMountSetattr,
    /// No mount_setattr, and mount(2) fails with EPERM: the fallbacks for flags and
    /// propagation fail after the new mount was attached.
    NoMountSetattrMountFails,
}

/// Makes the listed syscalls fail with ENOSYS in this process, like an older kernel.
fn simulate(kernel: Kernel) -> Check {
    let enosys =
        |nrs: &[libc::c_long]| nrs.iter().map(|&nr| (nr, libc::ENOSYS)).collect::<Vec<_>>();
    let blocked = match kernel {
        Kernel::Current => return Ok(()),
        Kernel::NoNewMountApi => enosys(NEW_MOUNT_API),
        Kernel::NoMountSetattr => enosys(&[libc::SYS_mount_setattr]),
        Kernel::NoMountSetattrMountFails => vec![
            (libc::SYS_mount_setattr, libc::ENOSYS),
            (libc::SYS_mount, libc::EPERM),
        ],
    };
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut prog = vec![
        stmt(ld, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(ld, 0), // seccomp_data.nr
    ];
    for &(nr, errno) in &blocked {
        prog.push(jeq(nr as u32, 0, 1));
        prog.push(stmt(ret, libc::SECCOMP_RET_ERRNO | errno as u32));
    }
    prog.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; the filter program is valid for the duration of the call.
    unsafe {
        ensure!(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0,
            "no_new_privs"
        );
        ensure!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog
            ) == 0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
    // The simulation must really be in force, or the test proves nothing.
    let (nr, errno) = blocked[0];
    // SAFETY: null arguments; with the filter the call fails without reading them.
    let r = unsafe { libc::syscall(nr, 0usize, 0usize, 0usize, 0usize, 0usize) };
    let blocked_ok = r == -1 && Errno::last() == Errno::from_raw(errno);
    ensure!(blocked_ok, "syscall {nr} is not blocked");
    Ok(())
}

/// Runs `f` in a forked child in a new mount namespace (plus `extra` namespaces) whose `/` is
/// recursively private, with `kernel` simulated. Returns the child's verdict.
fn in_child(extra: CloneFlags, kernel: Kernel, f: impl FnOnce() -> Check) -> Check {
    let (mut reader, writer) = {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err("pipe2"))?;
        (fs::File::from(r), fs::File::from(w))
    };
    // SAFETY: the child only runs this test's code and then _exits. The test harness has other
    // threads, but glibc makes malloc safe after fork and the child does not touch stdio locks
    // unless it panics.
    match unsafe { nix::unistd::fork() }.map_err(err("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(reader);
            let verdict = std::panic::catch_unwind(AssertUnwindSafe(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNS | extra).map_err(err("unshare"))?;
                mount::make_rprivate("/").map_err(err("make-rprivate /"))?;
                simulate(kernel)?;
                f()
            }));
            let (code, msg) = match verdict {
                Ok(Ok(())) => (0, String::new()),
                Ok(Err(msg)) => (1, msg),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    (2, format!("panic: {msg}"))
                }
            };
            let mut writer = writer;
            let _ = writer.write_all(msg.as_bytes());
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(writer);
            let mut msg = String::new();
            let _ = reader.read_to_string(&mut msg);
            let status = nix::sys::wait::waitpid(child, None).map_err(err("waitpid"))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(format!("child failed ({other:?}): {msg}")),
            }
        }
    }
}

fn run(extra: CloneFlags, kernel: Kernel, f: impl FnOnce() -> Check) {
    if let Err(msg) = in_child(extra, kernel, f) {
        panic!("{msg}");
    }
}

fn mounts() -> Result<Vec<MountInfo>, String> {
    MountInfo::read_self().map_err(err("read mountinfo"))
}

/// The topmost mount at `path`.
fn mount_at(path: &Path) -> Result<MountInfo, String> {
    mounts()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
        .ok_or_else(|| format!("nothing is mounted at {}", path.display()))
}

fn opt(m: &MountInfo, key: &str) -> Option<String> {
    m.super_option(key)
        .flatten()
        .map(|v| v.to_string_lossy().into_owned())
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

fn write_fails_with(path: &Path, errno: Errno) -> Check {
    match fs::write(path, b"x") {
        Ok(()) => Err(format!("writing {} succeeded", path.display())),
        Err(e) if errno_of(&e) == errno => Ok(()),
        Err(e) => Err(format!("writing {}: {e}, wanted {errno}", path.display())),
    }
}

fn prepare(m: Mount) -> PreparedMount {
    m.prepare().unwrap_or_else(|e| panic!("prepare {m:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Each filesystem type

#[test]
fn tmpfs_with_size_mode_and_flags() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("tmpfs");
    let target = tmp.join("t");
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            Mount::tmpfs(&target)
                .size(Bytes::mib(1))
                .mode(0o710)
                .nosuid()
                .nodev()
                .atime(Atime::Noatime)
                .mount()
                .map_err(err("mount"))?;
            let m = mount_at(&target)?;
            ensure!(m.fs_type == "tmpfs", "{m:?}");
            ensure!(opt(&m, "size").as_deref() == Some("1024k"), "{m:?}");
            ensure!(opt(&m, "mode").as_deref() == Some("710"), "{m:?}");
            let want = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOATIME;
            ensure!(m.mount_options.flags == want, "{:?}", m.mount_options);
            let mode = fs::metadata(&target)
                .map_err(err("stat"))?
                .permissions()
                .mode();
            ensure!(mode & 0o7777 == 0o710, "mode {mode:o}");
            // A 1 MiB tmpfs cannot hold 2 MiB.
            match fs::write(target.join("big"), vec![0u8; 2 << 20]) {
                Err(e) if errno_of(&e) == Errno::ENOSPC => {}
                other => return Err(format!("2 MiB in a 1 MiB tmpfs: {other:?}")),
            }
            // The parent-side helpers take it down again.
            let before = mounts()?.len();
            mount::unmount(&target).map_err(err("unmount"))?;
            ensure!(mounts()?.len() == before - 1, "unmount left the tmpfs");
            Mount::tmpfs(&target).mount().map_err(err("mount again"))?;
            let _busy = fs::File::create(target.join("open")).map_err(err("create"))?;
            match mount::unmount(&target) {
                Err(Error::Sys {
                    syscall: "umount2",
                    errno: Errno::EBUSY,
                    ..
                }) => {}
                other => return Err(format!("unmount of a busy mount: {other:?}")),
            }
            mount::detach(&target).map_err(err("detach"))?;
            ensure!(mounts()?.len() == before - 1, "detach left the tmpfs");
            Ok(())
        });
    }
    assert!(
        fs::read_dir(&target).unwrap().next().is_none(),
        "the tmpfs content stayed in the child"
    );
}

#[test]
fn proc_sysfs_mqueue_and_cgroup2() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("pseudo");
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        let flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWCGROUP;
        run(flags, kernel, || {
            let proc_dir = tmp.join("proc");
            Mount::proc(&proc_dir)
                .nosuid()
                .nodev()
                .noexec()
                .mount()
                .map_err(err("proc"))?;
            let m = mount_at(&proc_dir)?;
            ensure!(m.fs_type == "proc", "{m:?}");
            ensure!(
                m.mount_options
                    .flags
                    .contains(MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC),
                "{m:?}"
            );
            let me = fs::read_link(proc_dir.join("self")).map_err(err("readlink proc/self"))?;
            ensure!(
                me == Path::new(&std::process::id().to_string()),
                "proc/self -> {me:?}"
            );

            let sys_dir = tmp.join("sys");
            Mount::sysfs(&sys_dir)
                .read_only()
                .nosuid()
                .nodev()
                .noexec()
                .mount()
                .map_err(err("sysfs"))?;
            let m = mount_at(&sys_dir)?;
            ensure!(m.fs_type == "sysfs" && m.is_read_only(), "{m:?}");
            ensure!(sys_dir.join("kernel").is_dir(), "sysfs has no kernel/");
            write_fails_with(&sys_dir.join("kernel/new"), Errno::EROFS)?;

            let mq_dir = tmp.join("mqueue");
            Mount::mqueue(&mq_dir)
                .nosuid()
                .nodev()
                .noexec()
                .mount()
                .map_err(err("mqueue"))?;
            let m = mount_at(&mq_dir)?;
            ensure!(m.fs_type == "mqueue", "{m:?}");

            let cg_dir = tmp.join("cgroup");
            Mount::cgroup2(&cg_dir)
                .nosuid()
                .nodev()
                .noexec()
                .mount()
                .map_err(err("cgroup2"))?;
            let m = mount_at(&cg_dir)?;
            ensure!(m.fs_type == "cgroup2", "{m:?}");
            ensure!(
                cg_dir.join("cgroup.procs").is_file(),
                "cgroup2 has no cgroup.procs"
            );
            Ok(())
        });
    }
}

#[test]
fn devpts_new_instance_with_ptmxmode() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("devpts");
    let pts = tmp.join("pts");
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            Mount::devpts(&pts)
                .ptmxmode(0o666)
                .mode(0o620)
                .nosuid()
                .noexec()
                .mount()
                .map_err(err("devpts"))?;
            let m = mount_at(&pts)?;
            ensure!(m.fs_type == "devpts", "{m:?}");
            ensure!(opt(&m, "ptmxmode").as_deref() == Some("666"), "{m:?}");
            ensure!(opt(&m, "mode").as_deref() == Some("620"), "{m:?}");
            let ptmx = pts.join("ptmx");
            let mode = fs::metadata(&ptmx)
                .map_err(err("stat ptmx"))?
                .permissions()
                .mode();
            ensure!(mode & 0o777 == 0o666, "ptmx mode {mode:o}");
            // A new instance starts empty: the first pty is 0.
            let _master = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&ptmx)
                .map_err(err("open ptmx"))?;
            let slave = fs::metadata(pts.join("0")).map_err(err("stat pts/0"))?;
            ensure!(slave.file_type().is_char_device(), "pts/0 is not a tty");
            ensure!(
                slave.permissions().mode() & 0o777 == 0o620,
                "pts/0 mode {:o}",
                slave.permissions().mode()
            );
            Ok(())
        });
    }
}

#[test]
fn overlay_writes_land_in_upper() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("overlay");
    let (l1, l2, upper, work, merged) = (
        tmp.join("l1"),
        tmp.join("l2"),
        tmp.join("upper"),
        tmp.join("work"),
        tmp.join("merged"),
    );
    for d in [&l1, &l2, &upper, &work] {
        fs::create_dir(d).unwrap();
    }
    fs::write(l1.join("both"), "top").unwrap();
    fs::write(l2.join("both"), "bottom").unwrap();
    fs::write(l2.join("only-low"), "low").unwrap();
    // overlay may be a module the kernel cannot load (e.g. a VM without modules).
    let probe = Mount::overlay_read_only(vec![l1.clone(), l2.clone()], tmp.join("probe"));
    let available = in_child(CloneFlags::empty(), Kernel::Current, || {
        match probe.mount() {
            Err(e) if e.errno() == Some(Errno::ENODEV) => Err("no overlay".into()),
            _ => Ok(()),
        }
    });
    if available.is_err() {
        eprintln!("skipped: this kernel has no overlay filesystem (ENODEV)");
        return;
    }
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            Mount::overlay(vec![l1.clone(), l2.clone()], &upper, &work, &merged)
                .mount()
                .map_err(err("overlay"))?;
            let m = mount_at(&merged)?;
            ensure!(m.fs_type == "overlay", "{m:?}");
            ensure!(
                fs::read_to_string(merged.join("both")).map_err(err("read"))? == "top",
                "first lower is topmost"
            );
            ensure!(
                fs::read_to_string(merged.join("only-low")).map_err(err("read"))? == "low",
                "lower visible"
            );
            fs::write(merged.join("new"), "new").map_err(err("write new"))?;
            fs::write(merged.join("only-low"), "changed").map_err(err("write only-low"))?;
            Ok(())
        });
        assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(upper.join("only-low")).unwrap(),
            "changed"
        );
        assert_eq!(
            fs::read_to_string(l2.join("only-low")).unwrap(),
            "low",
            "lower layer untouched"
        );
        assert!(!l1.join("new").exists() && !l2.join("new").exists());
        fs::remove_dir_all(&upper).unwrap();
        fs::remove_dir_all(&work).unwrap();
        fs::create_dir(&upper).unwrap();
        fs::create_dir(&work).unwrap();
    }
    let ro = Mount::overlay_read_only(vec![l1.clone(), l2.clone()], tmp.join("ro"));
    run(CloneFlags::empty(), Kernel::Current, || {
        ro.mount().map_err(err("read-only overlay"))?;
        ensure!(
            fs::read_to_string(tmp.join("ro/both")).map_err(err("read"))? == "top",
            "merged view"
        );
        write_fails_with(&tmp.join("ro/new"), Errno::EROFS)
    });
}

// ---------------------------------------------------------------------------------------------
// Binds, flags, propagation

#[test]
fn recursive_read_only_bind_covers_submounts() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("rbind");
    let (src, dst, flat) = (tmp.join("src"), tmp.join("dst"), tmp.join("flat"));
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/under"), "hidden by the submount").unwrap();
    for kernel in [Kernel::Current, Kernel::NoMountSetattr] {
        run(CloneFlags::empty(), kernel, || {
            Mount::tmpfs(src.join("sub"))
                .mount()
                .map_err(err("submount"))?;
            fs::write(src.join("sub/in-tmpfs"), "x").map_err(err("write submount"))?;
            let rbind = Mount::bind(&src, &dst).read_only().nosuid();
            let result = rbind.mount();
            if kernel == Kernel::NoMountSetattr {
                // Without mount_setattr a recursive read-only bind is refused, not half done.
                ensure!(
                    matches!(result, Err(Error::Unsupported { .. })),
                    "{result:?}"
                );
                ensure!(mount_at(&dst).is_err(), "a refused bind was left mounted");
                return Ok(());
            }
            result.map_err(err("rbind"))?;
            for p in [&dst, &dst.join("sub")] {
                let m = mount_at(p)?;
                ensure!(
                    m.mount_options
                        .flags
                        .contains(MountFlags::READ_ONLY | MountFlags::NOSUID),
                    "{m:?}"
                );
            }
            ensure!(dst.join("sub/in-tmpfs").exists(), "submount came along");
            write_fails_with(&dst.join("new"), Errno::EROFS)?;
            write_fails_with(&dst.join("sub/new"), Errno::EROFS)?;
            fs::write(src.join("sub/still-writable"), "x")
                .map_err(err("source must stay writable"))?;

            Mount::bind(&src, &flat)
                .recursive(false)
                .mount()
                .map_err(err("non-recursive bind"))?;
            ensure!(
                mount_at(&flat.join("sub")).is_err(),
                "non-recursive bind took a submount"
            );
            ensure!(
                flat.join("sub/under").exists(),
                "non-recursive bind should show the covered dir"
            );
            Ok(())
        });
    }
    // Non-recursive flags work without mount_setattr (remount fallback), keeping the rest.
    for kernel in [Kernel::NoMountSetattr, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            Mount::tmpfs(&src)
                .nodev()
                .atime(Atime::Noatime)
                .mount()
                .map_err(err("tmpfs"))?;
            Mount::bind(&src, &dst)
                .recursive(false)
                .read_only()
                .mount()
                .map_err(err("bind ro"))?;
            let m = mount_at(&dst)?;
            let want = MountFlags::READ_ONLY | MountFlags::NODEV | MountFlags::NOATIME;
            ensure!(
                m.mount_options.flags == want,
                "{kernel:?}: {:?}",
                m.mount_options
            );
            write_fails_with(&dst.join("x"), Errno::EROFS)?;
            fs::write(src.join("x"), "x").map_err(err("source must stay writable"))
        });
    }
}

#[test]
fn propagation_is_visible_in_mountinfo() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("propagation");
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            let (a, b, c, p) = (tmp.join("a"), tmp.join("b"), tmp.join("c"), tmp.join("p"));
            Mount::tmpfs(&a)
                .propagation(Propagation::Shared, false)
                .mount()
                .map_err(err("shared"))?;
            let group = mount_at(&a)?.shared_peer_group().ok_or("a is not shared")?;
            Mount::bind(&a, &b)
                .propagation(Propagation::Slave, false)
                .mount()
                .map_err(err("slave"))?;
            let mb = mount_at(&b)?;
            ensure!(
                mb.master_peer_group() == Some(group) && mb.shared_peer_group().is_none(),
                "{mb:?}"
            );
            // A slave receives mounts made under its master.
            Mount::tmpfs(a.join("later"))
                .mount()
                .map_err(err("mount under master"))?;
            ensure!(
                mount_at(&b.join("later")).is_ok(),
                "the slave did not receive the mount"
            );

            Mount::tmpfs(&c)
                .propagation(Propagation::Unbindable, false)
                .mount()
                .map_err(err("unbindable"))?;
            ensure!(mount_at(&c)?.is_unbindable(), "c is not unbindable");
            match Mount::bind(&c, tmp.join("c2")).mount() {
                Err(Error::Sys {
                    errno: Errno::EINVAL,
                    ..
                }) => {}
                other => return Err(format!("binding an unbindable mount: {other:?}")),
            }

            Mount::tmpfs(&p)
                .propagation(Propagation::Private, false)
                .mount()
                .map_err(err("private"))?;
            Mount::tmpfs(p.join("s"))
                .propagation(Propagation::Shared, false)
                .mount()
                .map_err(err("shared sub"))?;
            ensure!(mount_at(&p)?.optional_fields.is_empty(), "p is not private");
            // Recursive: the whole tree becomes unbindable, then private again.
            mount::set_propagation(&p, Propagation::Unbindable, true)
                .map_err(err("runbindable"))?;
            ensure!(
                mount_at(&p)?.is_unbindable() && mount_at(&p.join("s"))?.is_unbindable(),
                "not recursive"
            );
            mount::make_rprivate(&p).map_err(err("rprivate"))?;
            ensure!(
                mount_at(&p.join("s"))?.optional_fields.is_empty(),
                "not private"
            );
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Inside a rootfs

/// Lists every path under `dir` (sorted), to see that nothing changed there.
fn tree(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push(p.clone());
            }
            out.push((p, is_dir));
        }
    }
    out.sort();
    out
}

struct HostileRootfs {
    tmp: TempDir,
    rootfs: PathBuf,
    canary: PathBuf,
    host_file: PathBuf,
}

/// A rootfs full of symlinks that point out of it, next to a canary directory they aim at.
fn hostile_rootfs() -> HostileRootfs {
    let tmp = TempDir::new("hostile");
    let rootfs = tmp.join("rootfs");
    let canary = tmp.join("canary");
    fs::create_dir_all(canary.join("etc")).unwrap();
    fs::write(canary.join("etc/passwd"), "canary").unwrap();
    for d in ["etc", "conf", "run", "real/deep", "sub"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let host_file = tmp.join("host-file");
    fs::write(&host_file, "from the host").unwrap();
    let up = "../".repeat(16);
    let canary_rel = canary
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // Absolute link to the host canary.
    symlink(&canary, rootfs.join("abs")).unwrap();
    // Relative `..` chain out of the root.
    symlink(format!("{up}{canary_rel}"), rootfs.join("rel")).unwrap();
    // Absolute link to /etc: inside the root it is the rootfs's own etc.
    symlink("/etc", rootfs.join("etc_link")).unwrap();
    // Nested chain: n1 -> n2/etc, n2 -> real/../n3, n3 -> ../../..(...)/canary
    symlink("n2/etc", rootfs.join("n1")).unwrap();
    symlink("real/../n3", rootfs.join("n2")).unwrap();
    symlink(format!("{up}{canary_rel}"), rootfs.join("n3")).unwrap();
    // Final components that are links out: to a directory and to a file.
    symlink(&canary, rootfs.join("real/deep/final")).unwrap();
    symlink(canary.join("etc/passwd"), rootfs.join("conf/passwd")).unwrap();
    // An in-root dangling link to a file that does not exist yet (the resolv.conf pattern).
    symlink("../run/stub-resolv.conf", rootfs.join("conf/resolv.conf")).unwrap();
    // A symlinked parent that stays inside.
    symlink("/sub", rootfs.join("lnk")).unwrap();
    HostileRootfs {
        tmp,
        rootfs,
        canary,
        host_file,
    }
}

#[test]
fn hostile_symlinks_never_escape_the_rootfs() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let h = hostile_rootfs();
    let canary_before = tree(&h.canary);
    let outside_before = fs::read_dir(&h.tmp.0).unwrap().count();

    // (target inside the rootfs, where it must land if it succeeds)
    let must_land: &[(&str, &str)] = &[
        ("/etc_link", "etc"),
        ("/../../etc", "etc"),
        ("/etc_link/../../../etc", "etc"),
        ("/lnk/new", "sub/new"),
    ];
    // Links out of the root are followed inside it, as RESOLVE_IN_ROOT does: what they
    // name is created there (the host's canary path, below the rootfs).
    let canary_rel = h
        .canary
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let inside = |p: &str| format!("{canary_rel}{p}");
    let followed: Vec<(&str, String)> = vec![
        ("/abs", inside("")),
        ("/abs/etc", inside("/etc")),
        ("/rel", inside("")),
        ("/rel/etc", inside("/etc")),
        ("/n1", inside("/etc")),
        ("/n1/x", inside("/etc/x")),
        ("/real/deep/final", inside("")),
        ("/real/deep/final/etc", inside("/etc")),
    ];

    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            let root = fs::File::open(&h.rootfs).map_err(err("open rootfs"))?;
            let before = mounts()?;
            let check_contained = |what: &str| -> Check {
                for m in mounts()? {
                    if !before.contains(&m) {
                        ensure!(
                            m.mount_point.starts_with(&h.rootfs),
                            "{what}: a mount escaped to {}",
                            m.mount_point.display()
                        );
                    }
                }
                ensure!(
                    tree(&h.canary) == canary_before,
                    "{what}: the canary changed"
                );
                Ok(())
            };
            for (target, lands) in must_land {
                let p = prepare(Mount::tmpfs(*target));
                p.apply_in(Some(root.as_fd()))
                    .map_err(|e| format!("{kernel:?} {target}: {}", p.error(e)))?;
                let m = mount_at(&h.rootfs.join(lands))?;
                ensure!(m.fs_type == "tmpfs", "{target}: {m:?}");
                check_contained(target)?;
            }
            for (target, lands) in &followed {
                let p = prepare(Mount::tmpfs(*target));
                let result = p.apply_in(Some(root.as_fd()));
                check_contained(target)?;
                result.map_err(|e| format!("{kernel:?} {target}: {}", p.error(e)))?;
                let m = mount_at(&h.rootfs.join(lands))?;
                ensure!(m.fs_type == "tmpfs", "{target}: {m:?}");
            }
            // A file bind onto a final-component link to a host file lands on the link's
            // in-root target, created there with its missing parents.
            let p = prepare(Mount::bind(&h.host_file, "/conf/passwd"));
            let result = p.apply_in(Some(root.as_fd()));
            check_contained("/conf/passwd")?;
            result.map_err(|e| format!("/conf/passwd bind: {}", p.error(e)))?;
            let landed = h.rootfs.join(inside("/etc/passwd"));
            ensure!(
                fs::read_to_string(&landed).map_err(err("read"))? == "from the host",
                "/conf/passwd bind is not at its in-root link target"
            );
            // The resolv.conf pattern: the dangling in-root link's target is created inside.
            let p = prepare(Mount::bind(&h.host_file, "/conf/resolv.conf"));
            p.apply_in(Some(root.as_fd()))
                .map_err(|e| format!("resolv.conf: {}", p.error(e)))?;
            let landed = h.rootfs.join("run/stub-resolv.conf");
            ensure!(
                mount_at(&landed).is_ok(),
                "resolv.conf bind is not at its link target"
            );
            ensure!(
                fs::read_to_string(&landed).map_err(err("read"))? == "from the host",
                "wrong content"
            );
            check_contained("/conf/resolv.conf")
        });
        assert_eq!(tree(&h.canary), canary_before, "the canary changed");
        assert_eq!(
            fs::read_dir(&h.tmp.0).unwrap().count(),
            outside_before,
            "something was created next to the rootfs"
        );
        assert!(h.rootfs.join("run/stub-resolv.conf").is_file());
        assert!(h.rootfs.join("sub/new").is_dir());
        fs::remove_file(h.rootfs.join("run/stub-resolv.conf")).unwrap();
        fs::remove_dir(h.rootfs.join("sub/new")).unwrap();
        let top = canary_rel.split('/').next().unwrap();
        assert!(
            h.rootfs.join(&canary_rel).is_dir(),
            "the link target was not created inside"
        );
        fs::remove_dir_all(h.rootfs.join(top)).unwrap();
    }
}

#[test]
fn missing_mount_points_are_created_with_the_right_type() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("create");
    let rootfs = tmp.join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let (host_file, host_dir) = (tmp.join("file"), tmp.join("dir"));
    fs::write(&host_file, "file content").unwrap();
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("inside"), "").unwrap();
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            let root = fs::File::open(&rootfs).map_err(err("open rootfs"))?;
            for m in [
                Mount::tmpfs("/a/b/c"),
                Mount::bind(&host_file, "/x/y/file"),
                Mount::bind(&host_dir, "/m/dir"),
                Mount::bind(&host_file, "/etc/hostname"),
            ] {
                m.mount_in(root.as_fd())
                    .map_err(err(format!("{kernel:?} {}", m.target().display())))?;
            }
            ensure!(
                fs::read_to_string(rootfs.join("x/y/file")).map_err(err("read"))? == "file content",
                "file bind"
            );
            ensure!(rootfs.join("m/dir/inside").exists(), "dir bind");
            match Mount::tmpfs("/not/there")
                .create_target(false)
                .mount_in(root.as_fd())
            {
                Err(Error::Sys {
                    syscall: "openat2",
                    path: Some(p),
                    errno: Errno::ENOENT,
                }) if p == Path::new("/not/there") => {}
                other => return Err(format!("create_target(false): {other:?}")),
            }
            ensure!(
                !rootfs.join("not").exists(),
                "create_target(false) created something"
            );
            Ok(())
        });
        // What the child created stays (it is the rootfs's), with the right types.
        for (p, dir) in [
            ("a/b/c", true),
            ("x/y", true),
            ("m/dir", true),
            ("x/y/file", false),
            ("etc/hostname", false),
        ] {
            let md = fs::symlink_metadata(rootfs.join(p)).unwrap();
            assert_eq!(md.is_dir(), dir, "{p}");
            assert!(
                md.is_dir() || (md.is_file() && md.len() == 0),
                "{p} is not an empty file"
            );
        }
        for p in ["a", "x", "m", "etc/hostname"] {
            let p = rootfs.join(p);
            if p.is_dir() {
                fs::remove_dir_all(p).unwrap();
            } else {
                fs::remove_file(p).unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and the child contract

#[test]
fn errors_name_the_syscall_and_the_path() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("errors");
    let missing = tmp.join("missing");
    run(CloneFlags::empty(), Kernel::Current, || {
        match Mount::bind(&missing, tmp.join("b")).mount() {
            Err(Error::Sys {
                syscall,
                path: Some(p),
                errno: Errno::ENOENT,
            }) if syscall.starts_with("open_tree") && p == missing => {}
            other => return Err(format!("missing source: {other:?}")),
        }
        match Mount::tmpfs(tmp.join("t")).option("size", "lots").mount() {
            Err(Error::Sys {
                syscall: "fsconfig",
                errno: Errno::EINVAL,
                ..
            }) => {}
            other => return Err(format!("bad option: {other:?}")),
        }
        match Mount::tmpfs("relative").mount() {
            Err(Error::Config { .. }) => {}
            other => return Err(format!("relative target: {other:?}")),
        }
        Ok(())
    });
    run(
        CloneFlags::empty(),
        Kernel::NoNewMountApi,
        || match Mount::bind(&missing, tmp.join("b")).mount() {
            Err(Error::Sys {
                syscall,
                path: Some(p),
                errno: Errno::ENOENT,
            }) if syscall.starts_with("openat2") && p == missing => Ok(()),
            other => Err(format!("missing source, legacy: {other:?}")),
        },
    );
}

#[test]
fn a_failure_after_attaching_detaches_the_new_mount() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("undo");
    fs::create_dir(tmp.join("src")).unwrap();
    run(
        CloneFlags::empty(),
        Kernel::NoMountSetattrMountFails,
        || {
            let before = mounts()?;
            let cases = [
                // Propagation falls back to mount(MS_SHARED), which fails.
                (
                    Mount::tmpfs(tmp.join("t")).propagation(Propagation::Shared, false),
                    "mount",
                ),
                // Flags of a non-recursive bind fall back to a remount, which fails.
                (
                    Mount::bind(tmp.join("src"), tmp.join("b"))
                        .recursive(false)
                        .read_only(),
                    "mount",
                ),
            ];
            for (m, syscall) in cases {
                match m.mount() {
                    Err(Error::Sys {
                        syscall: s,
                        errno: Errno::EPERM,
                        ..
                    }) if s == syscall => {}
                    other => return Err(format!("{m:?}: {other:?}")),
                }
                ensure!(mounts()? == before, "{m:?} was left mounted");
            }
            Ok(())
        },
    );
}

#[test]
fn apply_in_does_not_allocate() {
    require_root!();
    let _host = HostMountsUnchanged::new();
    let tmp = TempDir::new("noalloc");
    let rootfs = tmp.join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let host_file = tmp.join("file");
    fs::write(&host_file, "x").unwrap();
    for kernel in [Kernel::Current, Kernel::NoNewMountApi] {
        run(CloneFlags::empty(), kernel, || {
            let prepared = [
                prepare(
                    Mount::tmpfs("/new/tmp")
                        .size(Bytes::mib(1))
                        .read_only()
                        .propagation(Propagation::Private, true),
                ),
                prepare(
                    Mount::bind(&host_file, "/etc/file")
                        .read_only()
                        .recursive(false),
                ),
                prepare(
                    Mount::bind(rootfs.join("etc"), "/mnt/etc")
                        .nosuid()
                        .recursive(kernel == Kernel::Current)
                        .propagation(Propagation::Slave, false),
                ),
                prepare(Mount::proc("/proc").nosuid().nodev().noexec()),
                prepare(Mount::tmpfs("/abs/../../x").option("nr_inodes", "100")),
            ];
            let root = fs::File::open(&rootfs).map_err(err("open rootfs"))?;
            let mut failures = [None; 5];
            ALLOCATIONS.store(0, Ordering::Relaxed);
            ARMED.store(true, Ordering::Relaxed);
            for (p, failure) in prepared.iter().zip(failures.iter_mut()) {
                *failure = p.apply_in(Some(root.as_fd())).err();
            }
            ARMED.store(false, Ordering::Relaxed);
            let n = ALLOCATIONS.load(Ordering::Relaxed);
            for (p, failure) in prepared.iter().zip(failures) {
                if let Some(e) = failure {
                    return Err(format!("{kernel:?}: {}", p.error(e)));
                }
            }
            ensure!(n == 0, "{kernel:?}: apply_in allocated {n} times");
            ensure!(mount_at(&rootfs.join("proc")).is_ok(), "proc not mounted");
            Ok(())
        });
    }
}
