//! `Rootfs::from_layers`: a stack of layer directories as the lower layers of one overlay,
//! with whiteouts (character devices 0:0) and opaque directories (`*.overlay.opaque`) as the
//! image store writes them.
//!
//! As root most tests run twice: with the method this kernel takes (`lowerdir+` from 6.7 on)
//! and again in a child process with `CONTAIN_OVERLAY_LEGACY=1` (one `mount(2)` page, the
//! method of older kernels such as the guest's 6.1). The rootless half runs as nobody.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::busybox::BusyboxRootfs;
use common::{is_root, output, rerun_as_nobody, role, stdout, TempDir};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::{max_lowers, Rootfs, RootfsMode, OVERLAY_LEGACY_ENV};
use contain::Error;

// ---------------------------------------------------------------------------------------------
// Harness

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

fn sh(rootfs: Rootfs, script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .namespaces(namespaces())
        .rootfs(rootfs)
}

/// Runs `script` and returns its trimmed stdout, asserting that it succeeded.
fn run(rootfs: Rootfs, script: &str) -> String {
    let o = output(sh(rootfs, script));
    assert!(
        o.status.success(),
        "{script}: {} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// Whether the kernel has overlayfs at all; says so when it has not.
fn overlay(test: &str) -> bool {
    match max_lowers() {
        Ok(_) => true,
        Err(e) => {
            common::skip(test, &format!("no overlayfs: {e}"));
            false
        }
    }
}

/// Runs test `name` of this binary again, as root, with the layers passed by mount(2).
fn rerun_with_legacy_mount(name: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", "legacy")
        .env(OVERLAY_LEGACY_ENV, "1")
        .output()
        .expect("run the test binary again");
    eprintln!(
        "--- {name} with {OVERLAY_LEGACY_ENV}=1 ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} failed with the mount(2) method"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{name}: the mount(2) run did not run"
    );
}

/// Runs `check` here; as root (and not already a rerun) again with the mount(2) method and,
/// when `rootless_too`, as nobody.
fn everywhere(name: &str, rootless_too: bool, check: fn()) {
    match role().as_deref() {
        Some("nobody") | Some("legacy") => return check(),
        Some(_) => return,
        None => {}
    }
    check();
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    rerun_with_legacy_mount(name);
    if rootless_too {
        let root_mode = std::fs::metadata("/").unwrap().mode();
        if root_mode & 0o001 == 0 {
            common::skip(name, &format!("rootless half: / is mode {root_mode:o}"));
            return;
        }
        let out = rerun_as_nobody(name, "nobody", false);
        assert!(out.status.success(), "the rootless run of {name} failed");
    }
}

/// Whether this kernel's overlayfs takes `lowerdir+` (6.7), by its release.
fn lowerdir_plus_kernel() -> bool {
    let uts = nix::sys::utsname::uname().unwrap();
    let release = uts.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || {
        parts
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= (6, 7)
}

/// A character device 0:0: overlayfs' whiteout.
fn whiteout(path: &Path) {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a live buffer of `value.len()` bytes.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Marks `dir` opaque: `trusted.overlay.opaque` when `trusted` (root), and
/// `user.overlay.opaque` (as the store's root-made layers carry both), which must work when
/// not `trusted` (see [`can_mark_opaque`]).
fn opaque(dir: &Path, trusted: bool) {
    if trusted {
        set_xattr(dir, "trusted.overlay.opaque", b"y")
            .unwrap_or_else(|e| panic!("trusted.overlay.opaque on {}: {e}", dir.display()));
    }
    match set_xattr(dir, "user.overlay.opaque", b"y") {
        Ok(()) => {}
        Err(e) if trusted && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
        Err(e) => panic!("user.overlay.opaque on {}: {e}", dir.display()),
    }
}

/// Whether directories under the temp dir take the opaque marker [`opaque`] sets (`user.*`
/// xattrs need tmpfs from Linux 6.6 on; the guest's /tmp is its initramfs); says so when not.
fn can_mark_opaque(test: &str, trusted: bool) -> bool {
    let probe = TempDir::new("xattr-probe");
    let name = if trusted {
        "trusted.overlay.opaque"
    } else {
        "user.overlay.opaque"
    };
    match set_xattr(probe.path(), name, b"y") {
        Ok(()) => true,
        Err(e) => {
            common::skip(
                test,
                &format!(
                    "{name} cannot be set in {}: {e}",
                    std::env::temp_dir().display()
                ),
            );
            false
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A busybox bottom layer and the directory the other layers go in.
struct Stack {
    base: BusyboxRootfs,
    dir: TempDir,
}

impl Stack {
    fn new(tag: &str) -> Stack {
        let base = BusyboxRootfs::new(tag);
        let dir = TempDir::new(&format!("{tag}-layers"));
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        Stack { base, dir }
    }

    fn layer(&self, name: &str) -> PathBuf {
        let l = self.dir.path().join(name);
        std::fs::create_dir_all(&l).unwrap();
        std::fs::set_permissions(&l, PermissionsExt::from_mode(0o755)).unwrap();
        l
    }
}

/// bottom (busybox, /data/{keep,gone,olddir/x}, /opq/old, /etc/motd), middle (/data/mid,
/// /etc/motd replaced, /opq/old2), top (whiteouts of /data/gone and the directory
/// /data/olddir, /opq opaque with /opq/new). Returns the layers, bottom first.
fn three_layers(s: &Stack, trusted: bool) -> Vec<PathBuf> {
    let bottom = s.base.root();
    write(&bottom.join("data/keep"), "keep\n");
    write(&bottom.join("data/gone"), "gone\n");
    write(&bottom.join("data/olddir/x"), "x\n");
    write(&bottom.join("opq/old"), "old\n");
    write(&bottom.join("etc/motd"), "bottom\n");
    let middle = s.layer("middle");
    write(&middle.join("data/mid"), "middle\n");
    write(&middle.join("etc/motd"), "middle\n");
    write(&middle.join("opq/old2"), "old2\n");
    let top = s.layer("top");
    std::fs::create_dir_all(top.join("data")).unwrap();
    whiteout(&top.join("data/gone"));
    whiteout(&top.join("data/olddir"));
    write(&top.join("opq/new"), "new\n");
    opaque(&top.join("opq"), trusted);
    vec![bottom, middle, top]
}

const MERGED_VIEW: &str = "ls /opq | tr '\\n' ' '; echo; cat /data/mid /data/keep /etc/motd; \
     test -e /data/gone && echo gone-present || echo gone-absent; \
     test -e /data/olddir && echo dir-present || echo dir-absent";

const MERGED_EXPECTED: &str = "new \nmiddle\nkeep\nmiddle\ngone-absent\ndir-absent";

// ---------------------------------------------------------------------------------------------
// The merged view

#[test]
fn three_layers_merge_with_whiteouts_and_opaque_dirs() {
    const TEST: &str = "three_layers_merge_with_whiteouts_and_opaque_dirs";
    everywhere(TEST, true, || {
        if !overlay(TEST) || !can_mark_opaque(TEST, !rootless()) {
            return;
        }
        let s = Stack::new("three");
        let layers = three_layers(&s, !rootless());
        let before: Vec<_> = layers.iter().map(|l| tree(l)).collect();
        assert_eq!(
            run(Rootfs::from_layers(&layers), MERGED_VIEW),
            MERGED_EXPECTED
        );
        // The root's mount options name the layers by descriptor, never by host path.
        let mountinfo = run(
            Rootfs::from_layers(&layers),
            "grep ' / / ' /proc/self/mountinfo",
        );
        assert!(
            !mountinfo.contains(s.dir.path().to_str().unwrap()),
            "{mountinfo}"
        );
        assert!(
            mountinfo.contains("lowerdir"),
            "not the overlay: {mountinfo}"
        );
        eprintln!("root mount: {mountinfo}");
        if role().as_deref() == Some("legacy") || !lowerdir_plus_kernel() {
            // mount(2): one lowerdir= option, relative descriptor numbers.
            assert!(
                mountinfo.contains("lowerdir=") && !mountinfo.contains("lowerdir+"),
                "{mountinfo}"
            );
        } else {
            assert!(mountinfo.contains("lowerdir+="), "{mountinfo}");
        }
        // Writes go to the throw-away layer; no layer changes.
        run(
            Rootfs::from_layers(&layers),
            "echo w > /data/keep; rm /data/mid; mkdir /data/olddir; echo n > /opq/old",
        );
        let after: Vec<_> = layers.iter().map(|l| tree(l)).collect();
        assert_eq!(before, after);
    });
}

#[test]
fn user_xattr_layers_need_userxattr_without_a_user_namespace() {
    const TEST: &str = "user_xattr_layers_need_userxattr_without_a_user_namespace";
    if role().is_some() || !is_root(TEST) || !overlay(TEST) || !can_mark_opaque(TEST, false) {
        return;
    }
    // Made as a rootless store makes them: user.overlay.opaque only.
    let s = Stack::new("userxattr");
    let layers = three_layers(&s, false);
    assert_eq!(
        run(Rootfs::from_layers(&layers).userxattr(true), MERGED_VIEW),
        MERGED_EXPECTED
    );
    // A trusted.* mount does not see the marker: /opq merges all three.
    let view = run(Rootfs::from_layers(&layers), "ls /opq | tr '\\n' ' '");
    assert_eq!(view, "new old old2");
}

#[test]
fn one_hundred_layers_each_add_a_file() {
    everywhere("one_hundred_layers_each_add_a_file", false, || {
        many_layers("one_hundred_layers_each_add_a_file", 100)
    });
}

#[test]
fn four_hundred_layers_each_add_a_file() {
    everywhere("four_hundred_layers_each_add_a_file", false, || {
        many_layers("four_hundred_layers_each_add_a_file", 400)
    });
}

/// `n` layers: busybox, then `n - 1` layers that each add `/f/<i>` and replace `/f/top`.
fn many_layers(test: &str, n: usize) {
    if !overlay(test) {
        return;
    }
    let s = Stack::new(&format!("many{n}"));
    let mut layers = vec![s.base.root()];
    for i in 1..n {
        let l = s.layer(&format!("{i:03}"));
        write(&l.join(format!("f/{i}")), "");
        write(&l.join("f/top"), &format!("{i}\n"));
        layers.push(l);
    }
    let max = max_lowers().unwrap();
    let rootfs = Rootfs::from_layers(&layers);
    if n > max {
        let e = sh(rootfs, "true").spawn().unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { reason, .. } if reason.contains("too many layers")),
            "{e}"
        );
        eprintln!("{test}: {n} layers refused as expected (max {max}); running {max}");
        layers.truncate(max);
        return check_many(&layers, max);
    }
    check_many(&layers, n);
}

fn check_many(layers: &[PathBuf], n: usize) {
    let out = run(
        Rootfs::from_layers(layers),
        "ls /f | wc -l; cat /f/top; cat /f/1",
    );
    // n - 1 numbered files and `top`; the top layer's `top`; a bottom layer's file.
    assert_eq!(out, format!("{}\n{}", n, n - 1));
}

#[test]
fn a_persistent_upper_over_layers_gets_the_writes_and_whiteouts() {
    const TEST: &str = "a_persistent_upper_over_layers_gets_the_writes_and_whiteouts";
    everywhere(TEST, true, || {
        if !overlay(TEST) || !can_mark_opaque(TEST, !rootless()) {
            return;
        }
        let s = Stack::new("upper");
        let layers = three_layers(&s, !rootless());
        let upper = s.dir.path().join("upper");
        let _work = WorkDirCleanup(s.dir.path().join("upper.work/work"));
        let rootfs = Rootfs::from_layers(&layers).persistent_upper(&upper);
        run(
            rootfs.clone(),
            "echo new > /newfile; rm /data/keep; echo changed > /data/mid",
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("newfile")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("data/mid")).unwrap(),
            "changed\n"
        );
        let keep = std::fs::symlink_metadata(upper.join("data/keep")).unwrap();
        assert!(
            keep.file_type().is_char_device() && keep.rdev() == 0,
            "a deleted lower file is a 0:0 character device in the upper: {keep:?}"
        );
        // The layers are unchanged; a second run sees the first one's writes.
        assert_eq!(
            std::fs::read_to_string(layers[0].join("data/keep")).unwrap(),
            "keep\n"
        );
        assert_eq!(
            run(
                rootfs,
                "cat /newfile /data/mid; test -e /data/keep || echo deleted"
            ),
            "new\nchanged\ndeleted"
        );
    });
}

#[test]
fn a_read_only_stack_is_an_overlay_without_upper() {
    const TEST: &str = "a_read_only_stack_is_an_overlay_without_upper";
    everywhere(TEST, true, || {
        if !overlay(TEST) || !can_mark_opaque(TEST, !rootless()) {
            return;
        }
        let s = Stack::new("ro");
        let layers = three_layers(&s, !rootless());
        let rootfs = Rootfs::from_layers(&layers).mode(RootfsMode::ReadOnly);
        let out = run(
            rootfs,
            &format!("{MERGED_VIEW}; touch /x 2>/dev/null && echo written || echo refused"),
        );
        assert_eq!(out, format!("{MERGED_EXPECTED}\nrefused"));
        assert!(!layers.iter().any(|l| l.join("x").exists()));
        // ReadWrite has no single directory to write to.
        let e = sh(
            Rootfs::from_layers(&layers).mode(RootfsMode::ReadWrite),
            "true",
        )
        .spawn()
        .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
    });
}

// ---------------------------------------------------------------------------------------------
// Reading files before clone (the user lookup)

#[test]
fn the_user_lookup_reads_passwd_through_the_layers() {
    const TEST: &str = "the_user_lookup_reads_passwd_through_the_layers";
    // Root only: the users' ids are not mapped in a rootless container.
    if !is_root(TEST) && role().is_none() {
        return;
    }
    everywhere(TEST, false, || {
        if !overlay(TEST) {
            return;
        }
        let s = Stack::new("passwd");
        let bottom = s.base.root();
        write(
            &bottom.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nalice:x:1234:1234::/home/alice:/bin/sh\n",
        );
        // A higher layer replaces passwd: alice is gone, bob is new.
        let middle = s.layer("middle");
        write(
            &middle.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nbob:x:2345:2345::/home/bob:/bin/sh\n",
        );
        // /usr/etc/passwd (with carol) in its own layer; the top layer has nothing of /etc.
        let usr = s.layer("usr");
        write(
            &usr.join("usr/etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\ncarol:x:3456:3456::/home/carol:/bin/sh\n",
        );
        let top = s.layer("top");
        write(&top.join("unrelated"), "");
        let layers = vec![bottom.clone(), middle.clone(), usr.clone(), top.clone()];
        let as_user = |layers: &[PathBuf], user: &str| {
            sh(Rootfs::from_layers(layers), "echo $(id -u) $HOME").user(user.parse().unwrap())
        };
        assert_eq!(stdout(&output(as_user(&layers, "bob"))), "2345 /home/bob");
        let e = as_user(&layers, "alice").spawn().unwrap_err();
        assert!(e.to_string().contains("alice"), "{e}");

        // A whiteout of /etc/passwd in the top layer hides every lower one.
        whiteout(&top.join("etc/passwd").tap_parent());
        let e = as_user(&layers, "bob").spawn().unwrap_err();
        assert!(e.to_string().contains("bob"), "{e}");
        std::fs::remove_file(top.join("etc/passwd")).unwrap();

        // /etc turned into a link to usr/etc in a higher layer: the lookup follows it in the
        // merged view (the link in one layer, its target in another).
        let link = s.layer("link");
        symlink("usr/etc", link.join("etc")).unwrap();
        let linked = vec![bottom.clone(), middle.clone(), usr.clone(), link.clone()];
        assert_eq!(
            stdout(&output(as_user(&linked, "carol"))),
            "3456 /home/carol"
        );
        // An absolute link whose target climbs out stays inside the stack.
        std::fs::remove_file(link.join("etc")).unwrap();
        symlink("/../../../../usr/etc", link.join("etc")).unwrap();
        assert_eq!(
            stdout(&output(as_user(&linked, "carol"))),
            "3456 /home/carol"
        );

        // A whiteout of the directory /etc's parent chain: /usr deleted above hides carol.
        let gone = s.layer("gone");
        whiteout(&gone.join("usr"));
        let hidden = vec![bottom, middle, usr, link, gone];
        let e = as_user(&hidden, "carol").spawn().unwrap_err();
        assert!(e.to_string().contains("carol"), "{e}");
    });
}

#[test]
fn an_opaque_etc_hides_the_lower_passwd_from_the_lookup() {
    const TEST: &str = "an_opaque_etc_hides_the_lower_passwd_from_the_lookup";
    everywhere(TEST, true, || {
        if !overlay(TEST) || !can_mark_opaque(TEST, !rootless()) {
            return;
        }
        let s = Stack::new("opaque-etc");
        let bottom = s.base.root();
        write(
            &bottom.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\ndave:x:4567:4567::/home/dave:/bin/sh\n",
        );
        // The top layer's /etc is opaque and has a group file but no passwd: the lookup
        // finds none (nor does the container), so `dave` is unknown.
        let top = s.layer("top");
        write(&top.join("etc/group"), "root:x:0:\n");
        opaque(&top.join("etc"), !rootless());
        let layers = vec![bottom, top];
        assert_eq!(
            run(
                Rootfs::from_layers(&layers),
                "test -e /etc/passwd && echo present || echo absent"
            ),
            "absent"
        );
        let e = sh(Rootfs::from_layers(&layers), "true")
            .user("dave".parse().unwrap())
            .spawn()
            .unwrap_err();
        assert!(e.to_string().contains("dave"), "{e}");
    });
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// overlayfs leaves its `work` directory mode 000: a rootless owner could not remove it
/// (and the temp dir around it) without making it writable again.
struct WorkDirCleanup(PathBuf);

impl Drop for WorkDirCleanup {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, PermissionsExt::from_mode(0o700));
    }
}

trait TapParent {
    /// `self`, its parent directory created.
    fn tap_parent(self) -> Self;
}

impl TapParent for PathBuf {
    fn tap_parent(self) -> PathBuf {
        std::fs::create_dir_all(self.parent().unwrap()).unwrap();
        self
    }
}

/// Every path under `root` with its type, size and mode, sorted: to compare a layer before
/// and after a run.
fn tree(root: &Path) -> Vec<(PathBuf, u32, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            }
            out.push((
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                m.mode(),
                m.len(),
            ));
        }
    }
    out.sort();
    out
}
