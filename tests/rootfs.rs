//! The container's root filesystem: overlay, read-only, persistent upper and host-view roots,
//! /proc masking, /dev, volumes, hostile images, pivot_root and its chroot fallback.
//!
//! Every test runs as root (CI) and then again as uid 65534 in a user namespace (rootless),
//! through `common::rerun_as_nobody`; run as another user, a test runs its rootless half only.
//! Images are built at test time from a static busybox (see `common::busybox`). Each test checks
//! that the host's mount table is identical before and after, and removes what it created even
//! when it fails.

mod common;

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use common::busybox::BusyboxRootfs;
use common::{is_root, rerun_as_nobody, role, TempDir};
use contain::mount::Mount;
use contain::mountinfo::MountInfo;
use contain::namespace::Namespaces;
use contain::process::{Container, Output, Stdio};
use contain::rootfs::{Rootfs, RootfsMode, DEFAULT_MASKED_PATHS, DEFAULT_READ_ONLY_PATHS};
use contain::{Bytes, Errno, Error, SetupStage};

// ---------------------------------------------------------------------------------------------
// Harness

/// Runs `check` as the current user; as root, then again as nobody (rootless).
fn as_root_and_rootless(name: &str, check: fn()) {
    match role().as_deref() {
        Some("nobody") => return check(),
        Some(_) => return,
        None => {}
    }
    check();
    if is_root(&format!("{name} (rootless half as nobody)")) {
        // Some initramfs guests keep / at mode 0700: nobody cannot run anything there.
        let root_mode = std::fs::metadata("/").unwrap().mode();
        if root_mode & 0o001 == 0 {
            eprintln!("{name}: rootless half not run: / is mode {root_mode:o}, other users cannot reach any program here");
            return;
        }
        let out = rerun_as_nobody(name, "nobody", false);
        assert!(out.status.success(), "the rootless run of {name} failed");
    }
}

fn rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

fn namespaces() -> Namespaces {
    let ns =
        Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC | Namespaces::NET;
    if rootless() {
        ns | Namespaces::USER
    } else {
        ns
    }
}

/// `/bin/sh -c script` in a container with `rootfs`.
fn sh(rootfs: Rootfs, script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", "/bin:/usr/bin:/sbin:/usr/sbin")
        .namespaces(namespaces())
        .rootfs(rootfs)
        .stdin(Stdio::Null)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
}

fn run(c: &Container) -> Result<Output, Error> {
    c.spawn()?.wait_with_output()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs a container whose command must succeed; returns its stdout.
fn ok(c: &Container) -> String {
    let o = run(c).unwrap_or_else(|e| panic!("spawn failed: {e}"));
    assert!(
        o.status.success(),
        "container failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    text(&o)
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_string_lossy().into_owned();
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// Whether `/` is the initramfs (where `pivot_root` cannot work and chroot is used).
fn root_is_initramfs() -> bool {
    MountInfo::read_self()
        .unwrap()
        .into_iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
        .is_some_and(|m| m.fs_type == "rootfs" || m.fs_type == "ramfs")
}

/// Whether an overlay root must work here.
fn overlay_expected() -> bool {
    overlay_listed() && (!rootless() || kernel_at_least(5, 11))
}

fn overlay_listed() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
}

/// Runs an overlay container. Where the kernel cannot give one (no overlayfs at all, or a user
/// namespace before Linux 5.11), checks that spawn said exactly that and returns `None`.
fn run_overlay(c: &Container) -> Option<Output> {
    match run(c) {
        Ok(o) => Some(o),
        Err(Error::Unsupported { feature, reason })
            if feature == "overlay filesystem" && !overlay_listed() =>
        {
            eprintln!("no overlayfs in this kernel; checked the error instead: {reason}");
            None
        }
        Err(Error::Unsupported { feature, reason })
            if feature == "overlay in a user namespace"
                && rootless()
                && !kernel_at_least(5, 11) =>
        {
            eprintln!("overlayfs in a user namespace needs 5.11; checked the error: {reason}");
            None
        }
        Err(e) => panic!("spawn failed: {e}"),
    }
}

/// Like [`ok`] for an overlay container; `None` where the kernel has no overlay (see above).
fn ok_overlay(c: &Container) -> Option<String> {
    let o = run_overlay(c)?;
    assert!(
        o.status.success(),
        "container failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(text(&o))
}

/// Asserts on drop that this process's mount table did not change.
struct HostMountsUnchanged(Vec<MountInfo>);

impl HostMountsUnchanged {
    fn new() -> HostMountsUnchanged {
        HostMountsUnchanged(MountInfo::read_self().unwrap())
    }
}

impl Drop for HostMountsUnchanged {
    fn drop(&mut self) {
        let now = MountInfo::read_self().unwrap();
        if !std::thread::panicking() {
            assert_eq!(self.0, now, "the host's mount table changed");
        } else if now != self.0 {
            eprintln!("the host's mount table changed as well");
        }
    }
}

/// Every entry under `dir` with its type, mode, owner, size, mtime and a hash of its content
/// (or link target), sorted: equal snapshots mean the tree is byte-for-byte the same.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            let kind = if meta.file_type().is_symlink() {
                std::fs::read_link(&path).unwrap().hash(&mut h);
                "link"
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir"
            } else {
                std::fs::read(&path).unwrap().hash(&mut h);
                "file"
            };
            out.push(format!(
                "{} {kind} {:o} {}:{} {} {}.{} {:x}",
                path.strip_prefix(dir).unwrap().display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                h.finish()
            ));
        }
    }
    out.sort();
    out
}

/// The mount points the container may have: its own filesystems, nothing of the host's.
fn container_mount_points() -> BTreeSet<PathBuf> {
    let mut allowed: BTreeSet<PathBuf> = [
        "/",
        "/proc",
        "/sys",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        // The generated files, on the container's own tmpfs.
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    allowed.extend(DEFAULT_MASKED_PATHS.iter().map(PathBuf::from));
    allowed.extend(DEFAULT_READ_ONLY_PATHS.iter().map(PathBuf::from));
    allowed
}

// ---------------------------------------------------------------------------------------------
// What the container sees

#[test]
fn the_image_is_visible_the_host_is_not() {
    as_root_and_rootless("the_image_is_visible_the_host_is_not", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("visible");
        let host_file = image.dir().join("host-file");
        std::fs::write(&host_file, "host").unwrap();
        let script = format!(
            "cat /etc/image; \
             test -e /usr && echo usr-visible; \
             test -e {host} && echo host-file-visible; \
             echo pid=$$; \
             echo cmdline=$(tr '\\0' ' ' < /proc/1/cmdline); \
             echo procs=$(ls /proc | grep -c '^[0-9]'); \
             echo --; cat /proc/self/mountinfo",
            host = host_file.display()
        );
        let Some(out) = ok_overlay(&sh(Rootfs::new(image.root()), &script)) else {
            return;
        };
        let (head, mountinfo) = out.split_once("--\n").unwrap();
        let lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines[0], "image visible", "{out}");
        assert_eq!(lines[1], "pid=1", "no host file may be visible: {out}");
        assert!(
            lines[2].starts_with("cmdline=/bin/sh -c cat /etc/image"),
            "{out}"
        );
        // sh, and the subshells of the command substitution: no host process.
        let procs: u32 = lines[3].strip_prefix("procs=").unwrap().parse().unwrap();
        assert!((1..=4).contains(&procs), "{out}");

        let mounts = contain::mountinfo::parse(mountinfo).unwrap();
        let allowed = container_mount_points();
        for m in &mounts {
            assert!(
                allowed.contains(&m.mount_point),
                "a host mount is visible in the container: {m:?}"
            );
        }
        assert_eq!(mounts[0].mount_point, Path::new("/"));
        assert_eq!(mounts[0].fs_type, "overlay", "{mounts:?}");
        // Nothing stacked on it either: no scratch tmpfs (the writable layer's, the /etc
        // files', the old root's holder) outlives the old root's detach.
        let at_root = mounts.iter().filter(|m| m.mount_point == Path::new("/"));
        assert_eq!(at_root.count(), 1, "{mountinfo}");
        let tmp = image.dir().to_string_lossy().into_owned();
        assert!(
            !mountinfo.contains(&tmp),
            "the image's host path shows in mountinfo: {mountinfo}"
        );
        // Device nodes: made with mknod as root, bound from the host in a user namespace.
        let null_bound = mounts
            .iter()
            .any(|m| m.mount_point == Path::new("/dev/null"));
        assert_eq!(null_bound, rootless(), "{mountinfo}");
    });
}

#[test]
fn writes_vanish_and_the_image_stays_byte_for_byte_the_same() {
    as_root_and_rootless(
        "writes_vanish_and_the_image_stays_byte_for_byte_the_same",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("vanish");
            let before = snapshot(image.dir());
            let write = "echo new > /new && echo changed > /etc/image && rm /bin/ls && \
                     mkdir -p /tmp/d /mnt/sub && echo x > /tmp/d/f && echo shm > /dev/shm/x && \
                     cat /etc/image && test ! -e /bin/ls && echo written";
            let Some(out) = ok_overlay(&sh(Rootfs::new(image.root()), write)) else {
                return;
            };
            assert_eq!(out, "changed\nwritten");
            let look =
                "test -e /new && echo new-seen; cat /etc/image; test -e /bin/ls && echo ls; \
                    test -e /tmp/d && echo tmp-seen; test -e /mnt/sub && echo mnt-seen; \
                    test -e /dev/shm/x && echo shm-seen; echo done";
            let out = ok(&sh(Rootfs::new(image.root()), look));
            assert_eq!(
                out, "image vanish\nls\ndone",
                "a second run sees the first one's writes"
            );
            assert_eq!(
                snapshot(image.dir()),
                before,
                "the image or its directory changed"
            );
        },
    );
}

#[test]
fn mounts_made_inside_never_reach_the_host() {
    as_root_and_rootless("mounts_made_inside_never_reach_the_host", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("inside");
        let before = snapshot(image.dir());
        let script = "mount -t tmpfs none /mnt && echo in > /mnt/f && mount --bind /mnt /data && \
                      cat /data/f && grep -c ' /data ' /proc/self/mountinfo";
        let mut c = sh(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly), script);
        // Mounting inside needs CAP_SYS_ADMIN, which the default capability set drops.
        c = c.capabilities(contain::security::CapSet::ALL);
        assert_eq!(ok(&c), "in\n1");
        assert_eq!(snapshot(image.dir()), before);
    });
}

#[test]
fn failures_name_the_path_and_leave_the_host_alone() {
    as_root_and_rootless("failures_name_the_path_and_leave_the_host_alone", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("fail");
        let before = snapshot(image.dir());
        let missing = image.dir().join("no-such-source");

        // A volume whose source is missing: the bind names the host path.
        let c = sh(
            Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::bind(&missing, "/data")),
            "true",
        );
        match run(&c) {
            Err(Error::Sys {
                syscall,
                path: Some(p),
                errno: Errno::ENOENT,
            }) if syscall.starts_with("open_tree (the bind source does not exist")
                && p == missing => {}
            other => panic!("{other:?}"),
        }
        // A mount point a read-only image lacks.
        let c = sh(
            Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::tmpfs("/nope")),
            "true",
        );
        match run(&c) {
            Err(Error::Sys {
                syscall,
                path: Some(p),
                errno: Errno::EROFS,
            }) if p == Path::new("/nope")
                && syscall.starts_with("mkdirat")
                && syscall.contains("read-only root") => {}
            other => panic!("{other:?}"),
        }
        // A missing image.
        let c = sh(Rootfs::new(&missing).mode(RootfsMode::ReadOnly), "true");
        match run(&c) {
            Err(Error::Sys {
                path: Some(p),
                errno: Errno::ENOENT,
                ..
            }) if p == missing => {}
            other => panic!("{other:?}"),
        }
        // A failure after pivot_root: the command is not in the image.
        let c = Container::new("/usr/bin/env")
            .namespaces(namespaces())
            .rootfs(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly));
        match c.spawn() {
            Err(Error::Setup {
                stage: SetupStage::Exec,
                errno: Errno::ENOENT,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(snapshot(image.dir()), before);
    });
}

// ---------------------------------------------------------------------------------------------
// /proc, /sys, /dev

#[test]
fn masked_paths_read_only_paths_and_device_nodes() {
    as_root_and_rootless("masked_paths_read_only_paths_and_device_nodes", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("masks");
        let mut script = String::new();
        for p in DEFAULT_MASKED_PATHS {
            script += &format!(
                "if [ -d {p} ]; then echo \"{p} dir $(ls -A {p} | wc -l) $(stat -f -c %T {p})\"; \
                 elif [ -e {p} ]; then echo \"{p} file $(stat -c %t:%T {p}) $(head -c 1 {p} | wc -c)\"; \
                 else echo \"{p} missing\"; fi; "
            );
        }
        script += "(echo x > /proc/sys/kernel/domainname) 2>&1; \
                   (echo x > /proc/sysrq-trigger) 2>&1; \
                   echo hi > /dev/null && echo null-ok; \
                   echo urandom=$(head -c 4 /dev/urandom | wc -c) zero=$(head -c 5 /dev/zero | wc -c); \
                   (echo x > /dev/full) 2>&1; \
                   echo null=$(stat -c %t:%T /dev/null) tty=$(stat -c %t:%T /dev/tty); \
                   echo ptmx=$(readlink /dev/ptmx) fd=$(readlink /dev/fd) stdin=$(readlink /dev/stdin); \
                   test -c /dev/pts/ptmx && echo pts-ok; \
                   (touch /sys/x) 2>&1; \
                   echo --; cat /proc/self/mountinfo";
        let c = sh(
            Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
            &script,
        );
        let out = ok(&c);
        let (report, mountinfo) = out.split_once("--\n").unwrap();
        let mut checked = 0;
        for p in DEFAULT_MASKED_PATHS {
            let line = report
                .lines()
                .find(|l| l.split(' ').next() == Some(*p))
                .unwrap_or_else(|| panic!("{p}: {out}"));
            let host = Path::new(p);
            if !host.exists() {
                continue;
            }
            checked += 1;
            if host.is_dir() {
                assert_eq!(line, format!("{p} dir 0 tmpfs"), "{out}");
            } else {
                assert_eq!(line, format!("{p} file 1:3 0"), "{out}");
            }
        }
        assert!(
            checked > 0,
            "no masked path exists on this kernel: the test proves nothing"
        );
        assert!(
            report.contains("/proc/sys/kernel/domainname: Read-only file system"),
            "{out}"
        );
        if Path::new("/proc/sysrq-trigger").exists() {
            assert!(
                report.contains("/proc/sysrq-trigger: Read-only file system"),
                "{out}"
            );
        }
        assert!(report.contains("null-ok\nurandom=4 zero=5\n"), "{out}");
        assert!(report.contains("No space left on device"), "{out}");
        // In a user namespace a device the host lacks is left out.
        let tty = if rootless() && !Path::new("/dev/tty").exists() {
            ""
        } else {
            "5:0"
        };
        assert!(report.contains(&format!("null=1:3 tty={tty}\n")), "{out}");
        assert!(
            report.contains("ptmx=pts/ptmx fd=/proc/self/fd stdin=/proc/self/fd/0\npts-ok"),
            "{out}"
        );
        assert!(
            report.contains("touch: /sys/x: Read-only file system"),
            "{out}"
        );
        let mounts = contain::mountinfo::parse(mountinfo).unwrap();
        for p in DEFAULT_READ_ONLY_PATHS
            .iter()
            .filter(|p| Path::new(p).exists())
        {
            let m = mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == Path::new(p))
                .unwrap_or_else(|| panic!("{p} is not a mount: {mountinfo}"));
            assert!(m.is_read_only(), "{m:?}");
        }
        let sys = mounts
            .iter()
            .find(|m| m.mount_point == Path::new("/sys"))
            .unwrap();
        assert_eq!(sys.fs_type, "sysfs", "a new sysfs with a network namespace");
        assert!(sys.is_read_only());
    });
}

#[test]
fn without_a_network_namespace_sys_is_a_read_only_bind() {
    as_root_and_rootless(
        "without_a_network_namespace_sys_is_a_read_only_bind",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("sysbind");
            let c = sh(
                Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
                "(touch /sys/x) 2>&1; grep ' /sys' /proc/self/mountinfo",
            )
            .namespaces(namespaces() - Namespaces::NET);
            let out = ok(&c);
            assert!(
                out.starts_with("touch: /sys/x: Read-only file system\n"),
                "{out}"
            );
            // Every mount of the host's /sys came along, read-only.
            let mounts = contain::mountinfo::parse(out.split_once('\n').unwrap().1).unwrap();
            assert!(mounts.iter().all(MountInfo::is_read_only), "{out}");
            let host_sys = MountInfo::read_self()
                .unwrap()
                .into_iter()
                .filter(|m| m.mount_point.starts_with("/sys"))
                .count();
            // Plus the masked /sys paths.
            assert!(mounts.len() >= host_sys, "{out}");
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Modes

#[test]
fn read_only_root_refuses_writes_with_erofs() {
    as_root_and_rootless("read_only_root_refuses_writes_with_erofs", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("ro");
        let before = snapshot(image.dir());
        let script = "(touch /new) 2>&1; (echo x > /etc/image) 2>&1; (mkdir /tmp/d) 2>&1; \
                      echo shm > /dev/shm/x && echo shm-ok";
        let out = ok(&sh(
            Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
            script,
        ));
        assert_eq!(
            out,
            "touch: /new: Read-only file system\n\
             /bin/sh: can't create /etc/image: Read-only file system\n\
             mkdir: can't create directory '/tmp/d': Read-only file system\n\
             shm-ok"
        );
        assert_eq!(snapshot(image.dir()), before);
    });
}

#[test]
fn read_write_root_writes_to_the_image() {
    as_root_and_rootless("read_write_root_writes_to_the_image", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("rw");
        let c = sh(
            Rootfs::new(image.root()).mode(RootfsMode::ReadWrite),
            "echo kept > /kept",
        );
        ok(&c);
        assert_eq!(
            std::fs::read_to_string(image.root().join("kept")).unwrap(),
            "kept\n"
        );
    });
}

/// A symlink at `link` to the absolute `target`, written relative: as many `..` as lead from
/// the link's directory to `/`, and `surplus` more (the host resolves those to `/` too).
/// Returns `link`.
fn link_through_slash(link: &Path, target: &Path, surplus: usize) -> PathBuf {
    let depth = link.parent().unwrap().components().count() - 1;
    let relative = format!(
        "{}{}",
        "../".repeat(depth + surplus),
        target.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(relative, link).unwrap();
    link.to_path_buf()
}

#[test]
fn an_image_path_through_a_symlink_with_surplus_dotdots_is_the_host_s_path() {
    as_root_and_rootless(
        "an_image_path_through_a_symlink_with_surplus_dotdots_is_the_host_s_path",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("dotdot");
            // More `..` than the link's depth: the host resolves them to `/`. The child must
            // too, though scratch tmpfs mounts get stacked on its `/` (a `..` at the process's
            // root walks into what is stacked there), so it opens the image first: as a bind,
            // as the overlay's layer with a scratch upper, and with a persistent one.
            let link = link_through_slash(&image.dir().join("via-link"), &image.root(), 3);
            let read_only = Rootfs::new(&link).mode(RootfsMode::ReadOnly);
            assert_eq!(ok(&sh(read_only, "cat /etc/image")), "image dotdot");
            if let Some(out) = ok_overlay(&sh(Rootfs::new(&link), "cat /etc/image")) {
                assert_eq!(out, "image dotdot");
            }
            let upper = image.dir().join("upper");
            let persistent = Rootfs::new(&link).persistent_upper(&upper);
            if let Some(out) = ok_overlay(&sh(persistent, "cat /etc/image")) {
                assert_eq!(out, "image dotdot");
            }
        },
    );
}

#[test]
fn a_volume_source_through_a_symlink_via_slash_is_the_host_s_path() {
    as_root_and_rootless(
        "a_volume_source_through_a_symlink_via_slash_is_the_host_s_path",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("voldotdot");
            // The host's volume, and a directory at the same path inside the image. A `..`
            // that reaches the host's `/` (as in /etc/resolv.conf -> ../run/...), or goes
            // past it, steps into the mounts stacked there: a source resolved once the new
            // root is on the host's `/` would be the image's directory, a path the image
            // chose (and through its symlinks, any host path).
            let volume = image.dir().join("volume");
            std::fs::create_dir(&volume).unwrap();
            std::fs::write(volume.join("which"), "host").unwrap();
            let decoy = image.root().join(volume.strip_prefix("/").unwrap());
            std::fs::create_dir_all(&decoy).unwrap();
            std::fs::write(decoy.join("which"), "image").unwrap();
            let empty = image.dir().join("empty");
            std::fs::create_dir(&empty).unwrap();
            for surplus in [0, 3] {
                let link = image.dir().join(format!("volume-link-{surplus}"));
                let link = link_through_slash(&link, &volume, surplus);
                assert_eq!(std::fs::read_to_string(link.join("which")).unwrap(), "host");
                let read_only = || Rootfs::new(image.root()).mode(RootfsMode::ReadOnly);
                let bind = read_only().mount(Mount::bind(&link, "/data"));
                assert_eq!(ok(&sh(bind, "cat /data/which")), "host", "{link:?}");
                let overlay = Rootfs::new(image.root()).mount(Mount::bind(&link, "/data"));
                if let Some(out) = ok_overlay(&sh(overlay, "cat /data/which")) {
                    assert_eq!(out, "host", "{link:?}");
                }
                // An overlay volume names its layers by host path too (without an upper
                // layer, overlayfs wants two).
                let layers = vec![link.clone(), empty.clone()];
                let layered = read_only().mount(Mount::overlay_read_only(layers, "/data"));
                if let Some(out) = ok_overlay(&sh(layered, "cat /data/which")) {
                    assert_eq!(out, "host", "{link:?}");
                }
            }
        },
    );
}

#[test]
fn a_volume_source_behind_an_automount_is_the_mounted_filesystem() {
    if !is_root("a_volume_source_behind_an_automount_is_the_mounted_filesystem") {
        return;
    }
    use contain::namespace::Namespace;
    use std::io::BufRead;
    // debugfs's `tracing` is an automount point: the first path lookup through it mounts
    // tracefs there. A bind of it must bind tracefs (as a bind by path does), not the trap.
    if !std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\ttracefs")) {
        eprintln!("skipped: no tracefs in this kernel");
        return;
    }
    let image = BusyboxRootfs::new("automount");
    let debugfs = image.dir().join("debugfs");
    std::fs::create_dir(&debugfs).unwrap();
    // A mount namespace of its own, private, with a fresh debugfs; it says when it is ready.
    let script = format!(
        "mount --make-rprivate / && mount -t debugfs none {} && echo ready && exec sleep 30",
        debugfs.display()
    );
    let mut holder = Container::new("/bin/sh")
        .args(["-c", &script])
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .namespaces(Namespaces::MOUNT)
        .security(contain::security::Security::unrestricted())
        .stdin(Stdio::Null)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut ready = String::new();
    let stdout = holder.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut ready)
        .unwrap();
    let c = sh(
        Rootfs::new(image.root())
            .mode(RootfsMode::ReadOnly)
            .mount(Mount::bind(debugfs.join("tracing"), "/data").read_only()),
        "grep ' /data ' /proc/self/mountinfo",
    )
    .namespaces(namespaces() - Namespaces::MOUNT)
    .join(Namespace::of_pid(holder.pid(), Namespaces::MOUNT).unwrap());
    let result = run(&c);
    holder.kill(contain::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    assert_eq!(ready.trim(), "ready");
    let o = result.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = text(&o);
    assert!(out.contains(" - tracefs "), "{out}");
    assert!(!out.contains(" - debugfs "), "{out}");
}

#[test]
fn a_persistent_upper_keeps_the_writes() {
    as_root_and_rootless("a_persistent_upper_keeps_the_writes", || {
        let _host = HostMountsUnchanged::new();
        let image = BusyboxRootfs::new("upper");
        let image_before = snapshot(&image.root());
        let upper = image.dir().join("upper");
        let _work = OpenUpOnDrop(image.dir().join("upper.work"));
        let rootfs = || Rootfs::new(image.root()).persistent_upper(&upper);
        let Some(_) = ok_overlay(&sh(rootfs(), "echo kept > /kept; rm /etc/image")) else {
            return;
        };
        assert_eq!(
            std::fs::read_to_string(upper.join("kept")).unwrap(),
            "kept\n"
        );
        assert!(
            image.dir().join("upper.work").is_dir(),
            "the work dir is beside"
        );
        let out = ok(&sh(
            rootfs(),
            "cat /kept; test -e /etc/image || echo removed",
        ));
        assert_eq!(out, "kept\nremoved");
        assert_eq!(snapshot(&image.root()), image_before);
    });
}

#[test]
fn the_host_view_runs_host_programs_and_hides_the_rest() {
    as_root_and_rootless(
        "the_host_view_runs_host_programs_and_hides_the_rest",
        || {
            let _host = HostMountsUnchanged::new();
            let tmp = TempDir::new("hostview");
            let canary = tmp.path().join("canary");
            std::fs::write(&canary, "host").unwrap();
            let script = format!(
                "test -e /root && echo root-visible; test -e /home && echo home-visible; \
             test -e {canary} && echo tmp-visible; test -e /var && echo var-visible; \
             test -s /etc/passwd && echo passwd; \
             (touch /usr/x) 2>/dev/null || echo usr-read-only; \
             touch /tmp/x /x && echo writable; echo pid=$$",
                canary = canary.display()
            );
            let c = sh(Rootfs::host(), &script);
            assert_eq!(ok(&c), "passwd\nusr-read-only\nwritable\npid=1");
            let c = sh(
                Rootfs::host().mode(RootfsMode::ReadOnly),
                "(touch /tmp/y) 2>/dev/null || echo read-only",
            );
            assert_eq!(ok(&c), "read-only");
        },
    );
}

/// overlayfs leaves `work/work` with mode 000 in the work directory: as a non-root owner the
/// temporary directory could not be removed without opening it up first.
struct OpenUpOnDrop(PathBuf);

impl Drop for OpenUpOnDrop {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = std::fs::set_permissions(entry.path(), PermissionsExt::from_mode(0o700));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile images

/// A busybox image plus a canary directory beside it that hostile links aim at.
struct Hostile {
    image: BusyboxRootfs,
    canary: PathBuf,
}

impl Hostile {
    fn new(tag: &str) -> Hostile {
        let image = BusyboxRootfs::new(tag);
        let canary = image.dir().join("canary");
        std::fs::create_dir_all(canary.join("etc")).unwrap();
        std::fs::write(canary.join("etc/passwd"), "canary").unwrap();
        Hostile { image, canary }
    }

    /// `../` enough times to leave any root, then the canary's absolute path.
    fn up_to_canary(&self) -> String {
        format!(
            "{}{}",
            "../".repeat(16),
            self.canary.strip_prefix("/").unwrap().display()
        )
    }

    fn replace_with_link(&self, name: &str, target: &str) {
        let p = self.image.root().join(name);
        let _ = std::fs::remove_dir_all(&p);
        symlink(target, p).unwrap();
    }
}

/// Spawns and returns the error; the canary, the image and the host must be unchanged.
fn refused(h: &Hostile, rootfs: Rootfs) -> Error {
    let canary = snapshot(&h.canary);
    let image = snapshot(&h.image.root());
    let e = match run(&sh(rootfs, "echo ran")) {
        Err(e) => e,
        Ok(o) => panic!("a hostile image ran: {}", text(&o)),
    };
    assert_eq!(snapshot(&h.canary), canary, "the canary changed ({e})");
    assert_eq!(snapshot(&h.image.root()), image, "the image changed ({e})");
    e
}

fn sys_path(e: &Error) -> Option<&Path> {
    match e {
        Error::Sys { path, .. } => path.as_deref(),
        _ => None,
    }
}

#[test]
fn hostile_dev_and_proc_links_cannot_leave_the_root() {
    as_root_and_rootless("hostile_dev_and_proc_links_cannot_leave_the_root", || {
        let _host = HostMountsUnchanged::new();
        for (name, relative) in [
            ("dev", false),
            ("dev", true),
            ("proc", false),
            ("proc", true),
        ] {
            let h = Hostile::new(&format!("hostile-{name}"));
            let target = if relative {
                h.up_to_canary()
            } else {
                h.canary.display().to_string()
            };
            h.replace_with_link(name, &target);
            // Inside the root the link leads to a path that does not exist: on a read-only
            // root it cannot be created, refused.
            let e = refused(&h, Rootfs::new(h.image.root()).mode(RootfsMode::ReadOnly));
            assert_eq!(sys_path(&e), Some(Path::new(&format!("/{name}"))), "{e}");
            assert_eq!(e.errno(), Some(Errno::EROFS), "{e}");
            if overlay_expected() {
                // With a writable layer it is created there, inside the root (as runc does),
                // and the mount lands on it; the canary and the image stay as they are.
                let canary = snapshot(&h.canary);
                let image = snapshot(&h.image.root());
                let inside = h.canary.display().to_string();
                let out = ok(&sh(
                    Rootfs::new(h.image.root()),
                    &format!("grep -c ' {inside} ' /proc/self/mountinfo"),
                ));
                assert_eq!(out, "1", "{name}");
                assert_eq!(snapshot(&h.canary), canary, "the canary changed");
                assert_eq!(snapshot(&h.image.root()), image, "the image changed");
            }
        }
        // /dev -> a directory that exists inside: the tmpfs lands there, inside the root.
        let h = Hostile::new("hostile-dev-inside");
        h.replace_with_link("dev", "../../../../../mnt");
        let canary = snapshot(&h.canary);
        let out = ok(&sh(
            Rootfs::new(h.image.root()).mode(RootfsMode::ReadOnly),
            "echo hi > /dev/null && stat -c %t:%T /mnt/null && grep -c ' /mnt ' /proc/self/mountinfo",
        ));
        assert_eq!(out, "1:3\n1");
        assert_eq!(snapshot(&h.canary), canary);
        assert!(std::fs::read_dir(h.image.root().join("mnt"))
            .unwrap()
            .next()
            .is_none());
    });
}

#[test]
fn hostile_volume_targets_stay_inside_the_root() {
    as_root_and_rootless("hostile_volume_targets_stay_inside_the_root", || {
        let _host = HostMountsUnchanged::new();
        let h = Hostile::new("hostile-volumes");
        let root = h.image.root();
        let volume = h.image.dir().join("volume");
        std::fs::create_dir(&volume).unwrap();
        std::fs::write(volume.join("from-volume"), "volume\n").unwrap();
        // Links out of the root: absolute, a `..` chain, and a nested relative chain.
        symlink(&h.canary, root.join("abs")).unwrap();
        symlink(h.up_to_canary(), root.join("rel")).unwrap();
        symlink("n2/etc", root.join("n1")).unwrap();
        symlink("mnt/../n3", root.join("n2")).unwrap();
        symlink(h.up_to_canary(), root.join("n3")).unwrap();
        symlink("/etc", root.join("etc_link")).unwrap();
        let before = snapshot(&root);

        // `..` past the root stays at the root: these land on the image's /etc.
        for target in ["/../../etc", "/etc_link", "/etc_link/../../../etc"] {
            let rootfs = Rootfs::new(&root)
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::bind(&volume, target).read_only());
            let out = ok(&sh(
                rootfs,
                "cat /etc/from-volume; test -e /etc/image || echo covered",
            ));
            assert_eq!(out, "volume\ncovered", "{target}");
        }
        // Links whose in-root target does not exist: followed inside the root and created
        // there (in the image, with ReadWrite), never outside.
        let canary_rel = h.canary.strip_prefix("/").unwrap().to_path_buf();
        // The outermost directory the runs will create (the image has /tmp, say).
        let first_new = canary_rel
            .ancestors()
            .map(|a| root.join(a))
            .filter(|p| !p.exists())
            .last()
            .unwrap();
        for (target, lands) in [
            ("/abs", ""),
            ("/abs/etc", "/etc"),
            ("/rel/etc", "/etc"),
            ("/n1", "/etc"),
            ("/n1/x", "/etc/x"),
        ] {
            let canary = snapshot(&h.canary);
            // (Generated /etc files would create their targets in a read-write image.)
            let rootfs = Rootfs::new(&root)
                .mode(RootfsMode::ReadWrite)
                .etc_files(false)
                .mount(Mount::tmpfs(target));
            let inside = format!("/{}{lands}", canary_rel.display());
            let out = ok(&sh(
                rootfs,
                &format!("grep -c ' {inside} ' /proc/self/mountinfo"),
            ));
            assert_eq!(out, "1", "{target}");
            assert!(root.join(&canary_rel).is_dir(), "{target}");
            assert_eq!(snapshot(&h.canary), canary, "{target}: the canary changed");
        }
        std::fs::remove_dir_all(&first_new).unwrap();
        // Its parent's mtime changed with the creation, nothing else.
        let parent = first_new.parent().unwrap().strip_prefix(&root).unwrap();
        let skip_parent = |snap: Vec<String>| -> Vec<String> {
            let prefix = format!("{} ", parent.display());
            snap.into_iter()
                .filter(|l| !l.starts_with(&prefix))
                .collect()
        };
        assert_eq!(
            skip_parent(snapshot(&root)),
            skip_parent(before),
            "a read-write run created something besides the links' in-root targets"
        );
    });
}

#[test]
fn a_dev_null_that_is_not_the_device_is_never_used_for_masking() {
    as_root_and_rootless(
        "a_dev_null_that_is_not_the_device_is_never_used_for_masking",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("fake-null");
            let fake = image.dir().join("fake-null");
            std::fs::write(&fake, "not a device").unwrap();
            let rootfs = Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .mount(Mount::bind(&fake, "/dev/null"));
            let has_masked_file = DEFAULT_MASKED_PATHS.iter().any(|p| Path::new(p).is_file());
            match run(&sh(rootfs, "true")) {
                Err(e) if has_masked_file => {
                    assert_eq!(sys_path(&e), Some(Path::new("/dev/null")), "{e}");
                    assert_eq!(e.errno(), Some(Errno::ENODEV), "{e}");
                }
                Ok(o) if !has_masked_file => assert!(o.status.success()),
                other => panic!("{other:?}"),
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Entering the root

#[test]
fn a_working_directory_through_a_host_descriptor_is_refused() {
    as_root_and_rootless(
        "a_working_directory_through_a_host_descriptor_is_refused",
        || {
            // runc CVE-2024-21626: a descriptor of a host directory, open in the parent, is
            // still in the child until exec; /proc/self/fd/N would lead out of the root.
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("cwd");
            let host_dir = std::fs::File::open(image.dir()).unwrap();
            use std::os::fd::AsRawFd;
            let cwd = format!("/proc/self/fd/{}", host_dir.as_raw_fd());
            let mut c = sh(
                Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
                "pwd; ls",
            )
            .current_dir(&cwd);
            match run(&c) {
                Err(Error::Sys {
                    syscall,
                    path: Some(p),
                    errno: Errno::ENOENT,
                }) if syscall.starts_with("getcwd") && p == Path::new(&cwd) => {}
                other => panic!("{other:?}"),
            }
            // A directory inside the image is fine.
            c = c.current_dir("/etc");
            assert_eq!(ok(&c).lines().next(), Some("/etc"));
            drop(host_dir);
        },
    );
}

/// Makes `pivot_root` fail with EINVAL on this thread and its children (as on an initramfs).
fn pivot_root_fails() {
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
    let mut prog = [
        stmt(ld, 4), // arch
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(ld, 0), // nr
        jeq(libc::SYS_pivot_root as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with a valid filter that lives across the call; it applies to this
    // thread only (no TSYNC), which the caller runs for this purpose alone.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog
            ),
            0
        );
        let r = libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr());
        assert!(r == -1 && Errno::last() == Errno::EINVAL);
    }
}

#[test]
fn chroot_only_when_pivot_root_cannot_work_and_the_caller_allows_it() {
    as_root_and_rootless(
        "chroot_only_when_pivot_root_cannot_work_and_the_caller_allows_it",
        || {
            let _host = HostMountsUnchanged::new();
            let image = BusyboxRootfs::new("chroot");
            let root = image.root();
            // A thread of its own: the seccomp filter stays with it.
            std::thread::spawn(move || {
                pivot_root_fails();
                let rootfs = Rootfs::new(&root).mode(RootfsMode::ReadOnly);
                if root_is_initramfs() {
                    // The fallback is on by itself here.
                    assert_eq!(ok(&sh(rootfs.clone(), "cat /etc/image")), "image chroot");
                } else {
                    match run(&sh(rootfs.clone(), "true")) {
                        Err(Error::Unsupported { reason, .. })
                            if reason.contains("chroot_fallback") => {}
                        other => panic!("{other:?}"),
                    }
                }
                let out = ok(&sh(
                    rootfs.chroot_fallback(true),
                    "cat /etc/image; test -e /usr || echo no-usr; echo pid=$$",
                ));
                assert_eq!(out, "image chroot\nno-usr\npid=1");
            })
            .join()
            .unwrap();
        },
    );
}

#[test]
fn nothing_is_left_when_the_parent_is_killed() {
    if role().as_deref() == Some("killed-parent") {
        // Start a container and hang until killed.
        let image = std::env::var("CONTAIN_TEST_IMAGE").unwrap();
        let c = Container::new("/bin/sleep")
            .arg("60")
            .namespaces(namespaces())
            .rootfs(Rootfs::new(image).size(Bytes::mib(1)));
        match c.spawn() {
            Ok(child) => {
                println!("container={}", child.id());
                std::io::Write::flush(&mut std::io::stdout()).unwrap();
                // Hold the container until killed (or until the test ends: stdin closes).
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            }
            Err(Error::Unsupported { feature, .. }) if feature.contains("overlay") => {
                println!("no-overlay");
            }
            Err(e) => panic!("{e}"),
        }
        return;
    }
    if role().is_some() || !is_root("nothing_is_left_when_the_parent_is_killed") {
        return;
    }
    let _host = HostMountsUnchanged::new();
    let image = BusyboxRootfs::new("killed");
    let before = snapshot(image.dir());
    let mut parent = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "nothing_is_left_when_the_parent_is_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CONTAIN_TEST_ROLE", "killed-parent")
        .env("CONTAIN_TEST_IMAGE", image.root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _hold = parent.stdin.take();
    let mut stdout = std::io::BufReader::new(parent.stdout.take().unwrap());
    let mut container = None;
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0 {
        // libtest may print "test ... " on the same line first.
        if let Some((_, pid)) = line.trim().split_once("container=") {
            container = Some(pid.parse::<i32>().unwrap());
            break;
        }
        if line.trim().ends_with("no-overlay") {
            break;
        }
        line.clear();
    }
    // A pidfd taken while the parent (and so the container) surely lives: no pid reuse.
    let pidfd = container.map(|pid| {
        // SAFETY: pidfd_open(2) with a pid and no flags; the result is checked, then owned.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        assert!(
            fd >= 0,
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }
    });
    parent.kill().unwrap();
    parent.wait().unwrap();
    let Some(pidfd) = pidfd else {
        assert!(!overlay_listed(), "the container did not start");
        return;
    };
    // The parent-death signal ends the container; its namespace and mounts go with it.
    let mut pfd = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(n, 1, "the container outlived its parent by 10 s");
    // The image and the directory around it are as they were: no upper, work or mount
    // point was ever made on the host.
    assert_eq!(snapshot(image.dir()), before);
}

/// A rootfs assembled in a joined mount namespace (OCI `linux.namespaces` with a mount path,
/// as runc and crun do it): the container's mount namespace is the holder's, its root the
/// image, and ours is untouched. The holder's namespace keeps what was mounted in it.
#[test]
fn a_rootfs_in_a_joined_mount_namespace() {
    if !is_root("a_rootfs_in_a_joined_mount_namespace") {
        return;
    }
    use contain::namespace::{id_of_pid, Namespace};
    let image = BusyboxRootfs::new("joined-mnt");
    let ours_before = MountInfo::read_self().unwrap().len();
    let mut holder = Container::new("sleep")
        .arg("30")
        .namespaces(Namespaces::MOUNT)
        .spawn()
        .unwrap();
    let holder_ns = id_of_pid(holder.pid(), Namespaces::MOUNT).unwrap();
    let c = sh(
        Rootfs::new(image.root()),
        "cat /etc/image; readlink /proc/self/ns/mnt",
    )
    .namespaces(namespaces() - Namespaces::MOUNT)
    .join(Namespace::of_pid(holder.pid(), Namespaces::MOUNT).unwrap());
    let result = run(&c);
    holder.kill(contain::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    let o = result.unwrap();
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let out = text(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("image joined-mnt"), "{out}");
    let ns = lines.next().unwrap_or_default();
    assert_eq!(
        ns,
        format!("mnt:[{}]", holder_ns.ino),
        "not the holder's namespace"
    );
    assert_eq!(MountInfo::read_self().unwrap().len(), ours_before);
}

/// Without a mount namespace of the container's, new or joined, a rootfs is refused by
/// name before anything starts: it would be assembled in the caller's.
#[test]
fn a_rootfs_without_a_mount_namespace_is_refused() {
    let image = BusyboxRootfs::new("no-mnt");
    let c = sh(Rootfs::new(image.root()), "true").namespaces(namespaces() - Namespaces::MOUNT);
    match c.spawn() {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "rootfs");
            assert!(reason.contains("mount namespace"), "{reason}");
        }
        Err(e) => panic!("not a config error: {e:?}"),
        Ok(mut child) => {
            let _ = child.kill(contain::Signal::SIGKILL);
            let _ = child.wait();
            panic!("a rootfs without a mount namespace was accepted");
        }
    }
}

/// `Container::timing`: a full container's start in named stages that add up to the whole;
/// nothing recorded without it.
#[test]
fn start_timing_names_each_stage_and_adds_up() {
    if role().is_some() || !is_root("start_timing_names_each_stage_and_adds_up") {
        return;
    }
    let image = BusyboxRootfs::new("timing");
    let c = Container::new("/bin/true")
        .namespaces(Namespaces::all() - Namespaces::USER - Namespaces::TIME)
        .rootfs(Rootfs::new(image.root()))
        .hostname("timed")
        .network(contain::net::Net::None)
        .timing(true);
    let mut child = c.spawn().unwrap();
    let t = child.start_timing().expect("timing on");
    let names: Vec<&str> = t.stages().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "prepare",
            "clone",
            "namespaces",
            "network_and_names",
            "rootfs",
            "process",
            "exec"
        ]
    );
    let sum: std::time::Duration = t.stages().iter().map(|(_, d)| *d).sum();
    assert_eq!(sum, t.total, "{t:?}");
    // Mounting /proc, /dev, the overlay and pivot_root are system calls: never free.
    assert!(t.rootfs.unwrap() > std::time::Duration::ZERO, "{t:?}");
    assert!(child.wait().unwrap().success());
    let child = Container::new("/bin/true").spawn().unwrap();
    assert_eq!(child.start_timing(), None);
}
