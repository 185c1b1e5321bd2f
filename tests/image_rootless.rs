//! The image store without privilege, and where no image tools are installed (the 6.1 guest):
//! an image made by umoci imported and run as nobody (`OverlayFlavour::User`: the opaque
//! markers in `user.overlay.*`, files owned by the caller and root inside a user namespace);
//! an OCI layout written here by hand (three layers: a whiteout, an opaque directory, a
//! hard link into an earlier layer) imported and run as root and as nobody; an image run
//! with cgroup limits under `LimitPolicy::BestEffort`; a rootless build.
//!
//! The rootless halves rerun this binary as uid 65534 (`common::rerun_as_nobody_in`); they
//! need a temporary directory on a filesystem with `user.*` xattrs (tmpfs has them from Linux
//! 6.6 only) and skip, with a message, without one.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::oci::{sh, tool, Layout};
use common::{role, skip, TempDir};
use contain::cgroup::{Bytes, CgroupBuilder, Controller, HostCgroups, LimitPolicy, Resources};
use contain::idmap::IdMap;
use contain::image::build::BuildOptions;
use contain::image::{Image, ImageCommand, OverlayFlavour, Store};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::Error;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Whether `dir`'s filesystem takes `user.*` xattrs (ext4 does; tmpfs before Linux 6.6 not).
fn user_xattrs(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let path = CString::new(probe.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated strings and a one-byte value.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"user.probe".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    std::fs::remove_file(&probe).unwrap();
    r == 0
}

/// The value of xattr `name` on `path` (not following a link), `None` when it has none.
fn xattr(path: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// A directory nobody owns, for a rootless store: in a temporary directory, or, where that
/// has no `user.*` xattrs in the qemu guest (its /tmp is tmpfs, without them before Linux
/// 6.6), on an ext2 filesystem made on the guest's ram disk `/dev/ram0`, unmounted on drop.
struct NobodyDir {
    path: PathBuf,
    /// The mount point on the ram disk, when there is one.
    mounted: Option<PathBuf>,
    /// One test at a time has the ram disk.
    _ram: Option<std::sync::MutexGuard<'static, ()>>,
    tmp: TempDir,
}

impl Drop for NobodyDir {
    fn drop(&mut self) {
        if let Some(m) = &self.mounted {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

/// The rootless half's store directory, or `None` (said why) where it cannot run.
fn nobody_dir(test: &str, tag: &str) -> Option<NobodyDir> {
    // Some initramfs guests keep / at mode 0700: nobody cannot run anything there.
    let root_mode = std::fs::metadata("/").unwrap().mode();
    if root_mode & 0o001 == 0 {
        skip(
            test,
            &format!("rootless half: / is mode {root_mode:o}, other users cannot reach it"),
        );
        return None;
    }
    let tmp = TempDir::new(tag);
    std::fs::set_permissions(tmp.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let mut dir = NobodyDir {
        path: tmp.path().join("nobody"),
        mounted: None,
        _ram: None,
        tmp,
    };
    let in_vm = std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1");
    if !user_xattrs(dir.tmp.path()) {
        let ram = Path::new("/dev/ram0");
        if !in_vm || !ram.exists() {
            skip(
                test,
                &format!(
                    "rootless half: {} has no user.* xattrs (tmpfs before Linux 6.6), which \
                     rootless layers need for their opaque markers",
                    dir.tmp.path().display()
                ),
            );
            return None;
        }
        static RAM: std::sync::Mutex<()> = std::sync::Mutex::new(());
        dir._ram = Some(RAM.lock().unwrap_or_else(|p| p.into_inner()));
        let m = dir.tmp.path().join("ext2");
        std::fs::create_dir(&m).unwrap();
        sh(Command::new("mke2fs").arg("-q").arg(ram));
        sh(Command::new("mount").args(["-t", "ext2"]).arg(ram).arg(&m));
        dir.mounted = Some(m.clone());
        dir.path = m.join("nobody");
        assert!(user_xattrs(&m), "ext2 on /dev/ram0 without user xattrs");
        eprintln!("{test}: the rootless store is on ext2 on /dev/ram0 (/tmp has no user xattrs)");
    }
    std::fs::create_dir(&dir.path).unwrap();
    std::os::unix::fs::chown(&dir.path, Some(65534), Some(65534)).unwrap();
    Some(dir)
}

/// Makes `dir` and everything below it readable by everyone (`chmod -R a+rX`).
fn world_readable(dir: &Path) {
    sh(Command::new("chmod").arg("-R").arg("a+rX").arg(dir));
}

/// The namespaces a run uses: all of them (a user namespace too, rootless or not).
fn all() -> Namespaces {
    Namespaces::all()
}

/// Runs `script` with `/bin/sh -c` in `image` (as uid 0 inside, whatever the image says),
/// in `ns`; returns exit code, stdout, stderr.
fn run_script(image: &Image, script: &str, ns: Namespaces) -> (i32, String, String) {
    let c = script_container(image, script).namespaces(ns);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn script_container(image: &Image, script: &str) -> Container {
    image
        .container(&ImageCommand {
            entrypoint: Some(vec!["/bin/sh".into()]),
            args: vec!["-c".into(), script.into()],
        })
        .unwrap()
        .user("0:0".parse().unwrap())
}

// ---------------------------------------------------------------------------------------------
// A layout written by hand (no image tools needed)

fn sha256_hex(b: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// An OCI layout in `dir/NAME` with one image tagged `tag`: `layers` (uncompressed tars,
/// bottom first) and `config` (the image config's `config` object, JSON).
fn oci_layout(dir: &Path, name: &str, tag: &str, layers: &[Vec<u8>], config: &str) -> PathBuf {
    let layout = dir.join(name);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        std::fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let layers: Vec<(String, usize)> = layers.iter().map(|l| put(l)).collect();
    let diff_ids = layers
        .iter()
        .map(|(d, _)| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(",");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":[{diff_ids}]}}}}"#
    );
    let (config, config_size) = put(config.as_bytes());
    let descs = layers
        .iter()
        .map(|(d, n)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{descs}]}}"#
    );
    let (manifest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

/// Builds a layer tar entry by entry.
struct LayerTar(tar::Builder<Vec<u8>>);

impl LayerTar {
    fn new() -> LayerTar {
        LayerTar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, owner: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner);
        h.set_gid(owner);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h
    }

    fn dir(mut self, path: &str, mode: u32) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    fn file(mut self, path: &str, mode: u32, owner: u64, data: &[u8]) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Regular, mode, owner);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Three layers:
/// 1. a busybox root (`/bin/busybox` and applet links, `/etc/passwd`), `/etc/gone`,
///    `/data/d/{old,sub/deep}`, `/e/e1`;
/// 2. `/etc/gone` whited out, `/data/d` made opaque with `/data/d/new` (owned 1000:1000);
/// 3. `/h3`, a hard link to the first layer's `/e/e1`.
///
/// The merged view: no `/etc/gone`, `/data/d` holds `new` only, `/h3` and `/e/e1` are one
/// file.
fn three_layer_layout(dir: &Path) -> PathBuf {
    let mut l1 = LayerTar::new();
    for d in [
        "bin",
        "etc",
        "data",
        "data/d",
        "data/d/sub",
        "e",
        "proc",
        "sys",
        "dev",
    ] {
        l1 = l1.dir(d, 0o755);
    }
    l1 = l1
        .dir("tmp", 0o1777)
        .file("bin/busybox", 0o755, 0, common::busybox::busybox());
    for applet in common::busybox::APPLETS {
        l1 = l1.symlink(&format!("bin/{applet}"), "busybox");
    }
    let l1 = l1
        .file(
            "etc/passwd",
            0o644,
            0,
            b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .file("etc/group", 0o644, 0, b"root:x:0:\nnogroup:x:65534:\n")
        .file("etc/gone", 0o644, 0, b"gone\n")
        .file("data/d/old", 0o644, 0, b"old\n")
        .file("data/d/sub/deep", 0o644, 0, b"deep\n")
        .file("e/e1", 0o644, 0, b"e1\n")
        .done();
    let l2 = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/.wh.gone", 0o644, 0, b"")
        .dir("data", 0o755)
        .dir("data/d", 0o755)
        .file("data/d/.wh..wh..opq", 0o644, 0, b"")
        .file("data/d/new", 0o644, 1000, b"new\n")
        .done();
    let l3 = LayerTar::new().hardlink("h3", "e/e1").done();
    oci_layout(
        dir,
        "hand3",
        "three",
        &[l1, l2, l3],
        r#"{"Env":["PATH=/bin","LAYERS=three"],"Cmd":["/bin/sh","-c","echo $LAYERS"]}"#,
    )
}

/// What the checks run inside, and what they print for the three-layer image.
const THREE_SCRIPT: &str = "test -e /etc/gone && echo gone-visible; ls /data/d; cat /h3; \
     stat -c '%i' /h3 /e/e1 | sort -u | wc -l; stat -c '%u:%g' /etc/passwd; id -u";

/// The output of [`THREE_SCRIPT`]: `/data/d` holds `new` only; `/h3` is `/e/e1` (one inode).
fn three_expected(owner: &str) -> String {
    format!("new\ne1\n1\n{owner}\n0\n")
}

/// Checks an imported three-layer image: its layers, its merged view, its default command,
/// and (as nobody) that a build works.
fn check_three(store: &Store, layout: &Path) {
    let flavour = store.overlay_flavour();
    let image = store
        .import(
            &format!("{}:three", layout.display()).parse().unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(image.layers().len(), 3);
    // The opaque marker of layer 2, in the namespaces of the flavour (a root store on a
    // filesystem without user xattrs, tmpfs before 6.6, has the trusted one only).
    let ux = user_xattrs(store.root());
    let d = image.layers()[1].dir.join("data/d");
    assert_eq!(
        xattr(&d, c"user.overlay.opaque").as_deref(),
        ux.then_some(&b"y"[..]),
        "{flavour:?}"
    );
    assert_eq!(
        xattr(&d, c"trusted.overlay.opaque").is_some(),
        flavour == OverlayFlavour::Trusted,
        "{flavour:?}"
    );
    // The hard link of layer 3 points at a copy of the lower file in layer 3 itself.
    let l3 = &image.layers()[2].dir;
    let (h, t) = (
        std::fs::metadata(l3.join("h3")).unwrap(),
        std::fs::metadata(l3.join("e/e1")).unwrap(),
    );
    assert_eq!((h.ino(), h.nlink()), (t.ino(), 2));

    if !ux {
        // An overlay in a user namespace reads user.overlay.* only: it would show the lower
        // /data/d/old. Refused at spawn, naming the cause; without one it runs.
        let e = script_container(&image, "true")
            .namespaces(all())
            .output()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { reason, .. } if reason.contains("trusted.overlay")),
            "{e:?}"
        );
        let ns = Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC;
        let (code, out, err) = run_script(&image, THREE_SCRIPT, ns);
        assert_eq!(
            (code, out.as_str()),
            (0, three_expected("0:0").as_str()),
            "{err}"
        );
        return;
    }
    // The merged view in a user namespace: owners are root inside (rootless: the caller's
    // files; as root: the layers' own, root's 0 mapped to 0).
    let (code, out, err) = run_script(&image, THREE_SCRIPT, all());
    assert_eq!(
        (code, out.as_str()),
        (0, three_expected("0:0").as_str()),
        "{err}"
    );
    let (code, out, err) = run_script(&image, "stat -c '%u:%g' /data/d/new", all());
    let new_owner = if flavour == OverlayFlavour::Trusted {
        // 1000 is not mapped in the default single-id map.
        "65534:65534\n"
    } else {
        // Unpacked without privilege: the caller's file, root inside.
        "0:0\n"
    };
    assert_eq!((code, out.as_str()), (0, new_owner), "{err}");
    if flavour == OverlayFlavour::Trusted {
        // Without a user namespace: the owners of the tar.
        let ns = Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC;
        let (code, out, err) = run_script(&image, THREE_SCRIPT, ns);
        assert_eq!(
            (code, out.as_str()),
            (0, three_expected("0:0").as_str()),
            "{err}"
        );
        let (code, out, err) = run_script(&image, "stat -c '%u:%g' /data/d/new", ns);
        assert_eq!((code, out.as_str()), (0, "1000:1000\n"), "{err}");
    }
    // The image's own Cmd and Env.
    let out = image
        .container(&ImageCommand::default())
        .unwrap()
        .namespaces(all())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "three\n");
}

#[test]
fn a_hand_made_three_layer_image_imports_and_runs_as_root_and_rootless() {
    const TEST: &str = "a_hand_made_three_layer_image_imports_and_runs_as_root_and_rootless";
    match role().as_deref().map(|r| r.split('|').collect::<Vec<_>>()) {
        Some(r) if r.len() == 3 && r[0] == "nobody" => {
            let store = Store::open(r[2]).unwrap();
            assert_eq!(store.overlay_flavour(), OverlayFlavour::User);
            check_three(&store, Path::new(r[1]));
            build_works_rootless(&store, Path::new(r[2]), "three");
            return;
        }
        Some(_) => return,
        None => {}
    }
    if !common::is_root(TEST) {
        return;
    }
    let d = TempDir::new("rl-three");
    std::fs::set_permissions(d.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let layout = three_layer_layout(d.path());
    let store = Store::open(d.path().join("store")).unwrap();
    assert_eq!(store.overlay_flavour(), OverlayFlavour::Trusted);
    check_three(&store, &layout);

    // Root may choose the rootless flavour; where user xattrs exist, it is the same view.
    if user_xattrs(d.path()) {
        let user = Store::open(d.path().join("store-user"))
            .unwrap()
            .flavour(OverlayFlavour::User);
        let image = user
            .import(
                &format!("{}:three", layout.display()).parse().unwrap(),
                None,
            )
            .unwrap();
        let (code, out, err) = run_script(&image, THREE_SCRIPT, all());
        assert_eq!(
            (code, out.as_str()),
            (0, three_expected("0:0").as_str()),
            "{err}"
        );
    }

    let Some(nobody) = nobody_dir(TEST, "rl-three-nobody") else {
        return;
    };
    world_readable(&layout);
    let role = format!(
        "nobody|{}|{}",
        layout.display(),
        nobody.path.join("store").display()
    );
    let out = common::rerun_as_nobody_in(TEST, &role, false, None);
    assert!(out.status.success(), "{TEST} failed as nobody");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{TEST}: the rootless scenario did not run"
    );
}

// ---------------------------------------------------------------------------------------------
// An image made by umoci, imported and run as nobody

/// The role of the rootless half: import the umoci image `rl` and run it.
fn umoci_as_nobody(layout: &Path, store_dir: &Path, subids: bool) {
    let store = Store::open(store_dir).unwrap();
    assert_eq!(store.overlay_flavour(), OverlayFlavour::User);
    let r = format!("{}:rl", layout.display()).parse().unwrap();
    let image = store.import(&r, Some("rl:1")).unwrap();
    assert_eq!(image.layers().len(), 4);
    let me = nix::unistd::geteuid().as_raw();
    // The layers are ours; whiteouts are 0/0 character devices; opaque markers are in
    // user.overlay.* only (nobody cannot set trusted.*).
    for l in image.layers() {
        assert_eq!(std::fs::metadata(&l.dir).unwrap().uid(), me, "{l:?}");
    }
    let wh = std::fs::symlink_metadata(image.layers()[1].dir.join("etc/image")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0,
        "{wh:?}"
    );
    let opq = image.layers()[3].dir.join("data/d");
    assert_eq!(
        xattr(&opq, c"user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr(&opq, c"trusted.overlay.opaque"), None);

    let script = "test -e /etc/image && echo image-visible; cat /etc/app; ls /data/d; \
                  stat -c '%u:%g' /etc/passwd /bin/busybox /data/d/fresh; id -u";
    let (code, out, err) = run_script(&image, script, all());
    assert_eq!(
        (code, out.as_str()),
        (0, "app layer\nfresh\n0:0\n0:0\n0:0\n0\n"),
        "{err}"
    );

    // The image says `User 65534`, which a one-id user namespace does not map: spawn fails
    // and says so; with the caller's user given, it runs.
    let e = image
        .container(&ImageCommand::args(["id -u"]))
        .unwrap()
        .namespaces(all())
        .output()
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("the image's User, not mapped: {msg}");
    assert!(msg.contains("65534"), "{msg}");
    let out = image
        .container(&ImageCommand::args(["echo $GREETING; pwd; id -u"]))
        .unwrap()
        .user("0".parse().unwrap())
        .namespaces(all())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n/work\n0\n",
        "{out:?}"
    );
    if !subids {
        return;
    }
    // With nobody's subordinate ids (/etc/subuid: nobody:200000:65536, through newuidmap)
    // mapped above the caller's own, the image's User runs as it is (as podman does), and
    // the caller's files are still root's.
    let maps = [IdMap::new(0, me, 1), IdMap::new(1, 200_000, 65_536)];
    let gmaps = [
        IdMap::new(0, nix::unistd::getegid().as_raw(), 1),
        IdMap::new(1, 200_000, 65_536),
    ];
    let out = image
        .container(&ImageCommand::args([
            "echo $GREETING; pwd; id -u; stat -c %u:%g /etc/passwd",
        ]))
        .unwrap()
        .namespaces(all())
        .uid_map(&maps)
        .gid_map(&gmaps)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n/work\n65534\n0:0\n",
        "{out:?}"
    );

    build_works_rootless(&store, store_dir, "rl:1");
    assert_eq!(
        store.images().unwrap().len(),
        2,
        "the image and the one built on it"
    );
}

#[test]
fn a_umoci_image_with_whiteouts_and_an_opaque_dir_imports_and_runs_rootless() {
    const TEST: &str = "a_umoci_image_with_whiteouts_and_an_opaque_dir_imports_and_runs_rootless";
    match role().as_deref().map(|r| r.split('|').collect::<Vec<_>>()) {
        // nobody|LAYOUT|STORE|SUBIDS
        Some(r) if r.len() == 4 && r[0] == "nobody" => {
            return umoci_as_nobody(Path::new(r[1]), Path::new(r[2]), r[3] == "subids")
        }
        Some(_) => return,
        None => {}
    }
    if !common::is_root(TEST) || !tool(TEST, "umoci") {
        return;
    }
    let Some(nobody) = nobody_dir(TEST, "rl-umoci-nobody") else {
        return;
    };
    // base (busybox), app (a whiteout of /etc/image; /etc/app), then a layer with
    // /data/d/{old,sub/deep} by umoci repack, then one that makes /data/d opaque (umoci
    // itself writes a whiteout per deleted child, never an opaque marker; `raw add-layer`
    // takes it verbatim).
    let layout = Layout::new("rl-umoci");
    let l = layout.path().display().to_string();
    let work = TempDir::new("rl-umoci-work");
    let b = work.path().join("b3");
    sh(Command::new("umoci")
        .args(["unpack", "--image", &format!("{l}:app")])
        .arg(&b));
    std::fs::create_dir_all(b.join("rootfs/data/d/sub")).unwrap();
    std::fs::write(b.join("rootfs/data/d/old"), "old\n").unwrap();
    std::fs::write(b.join("rootfs/data/d/sub/deep"), "deep\n").unwrap();
    sh(Command::new("umoci")
        .args(["repack", "--image", &format!("{l}:d")])
        .arg(&b));
    let opaque = work.path().join("opaque.tar");
    std::fs::write(
        &opaque,
        LayerTar::new()
            .dir("data", 0o755)
            .dir("data/d", 0o755)
            .file("data/d/.wh..wh..opq", 0o644, 0, b"")
            .file("data/d/fresh", 0o644, 0, b"fresh\n")
            .done(),
    )
    .unwrap();
    sh(Command::new("umoci")
        .args([
            "raw",
            "add-layer",
            "--image",
            &format!("{l}:d"),
            "--tag",
            "rl",
        ])
        .arg(&opaque));
    world_readable(&layout.path());
    let mut dir = layout.path();
    while dir.pop() && dir != Path::new("/") && dir.starts_with(std::env::temp_dir()) {
        if dir == std::env::temp_dir() {
            break;
        }
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
    }
    // With subordinate ids for nobody (see rerun_as_nobody_in) where the host has the
    // helpers and the files to replace.
    let subids = ["newuidmap", "newgidmap"]
        .iter()
        .all(|h| common::in_path(h).is_some())
        && ["/etc/subuid", "/etc/subgid"]
            .iter()
            .all(|f| Path::new(f).exists());
    if !subids {
        skip(
            TEST,
            "the image's User with subordinate ids: needs newuidmap, newgidmap, /etc/subuid \
             and /etc/subgid (apt-get install uidmap)",
        );
    }
    let role = format!(
        "nobody|{}|{}|{}",
        layout.path().display(),
        nobody.path.join("store").display(),
        if subids { "subids" } else { "none" }
    );
    let out = common::rerun_as_nobody_in(TEST, &role, subids, None);
    assert!(out.status.success(), "{TEST} failed as nobody");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{TEST}: the rootless scenario did not run"
    );
}

/// A rootless build of `FROM base` works: its RUN runs in a user namespace with the caller as
/// root, and the caller's files are root's in the new layer (`store_dir` is the store's
/// directory, owned by the caller).
fn build_works_rootless(store: &Store, store_dir: &Path, base: &str) {
    let ctx = store_dir.parent().unwrap().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        // USER 0: the base may run as a user a one-id map has not (umoci's as 65534).
        format!("FROM {base}\nUSER 0\nRUN echo built > /built\n"),
    )
    .unwrap();
    let image = store
        .build(&BuildOptions::new(&ctx).tag("built"), &|_| {})
        .unwrap();
    assert_eq!(store.image("built").unwrap().id(), image.id());
    let top = &image.layers().last().unwrap().dir;
    assert_eq!(
        std::fs::read_to_string(top.join("built")).unwrap(),
        "built\n"
    );
}

// ---------------------------------------------------------------------------------------------
// A build on the hand-made image (no image tools needed)

#[test]
fn a_build_from_a_hand_made_image_deletes_and_replaces_lower_content() {
    const TEST: &str = "a_build_from_a_hand_made_image_deletes_and_replaces_lower_content";
    if role().is_some() || !common::is_root(TEST) {
        return;
    }
    let d = TempDir::new("rl-build");
    let layout = three_layer_layout(d.path());
    let store = Store::open(d.path().join("store")).unwrap();
    store
        .import(
            &format!("{}:three", layout.display()).parse().unwrap(),
            Some("three"),
        )
        .unwrap();
    let ctx = d.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), "hello\n").unwrap();
    // A file of a lower layer deleted (a whiteout); a directory deleted and made again (opaque
    // in the RUN's upper layer: neither layer 1's old nor layer 2's new shows through); a
    // hard-linked lower file kept through its other name.
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM three\n\
         RUN rm /e/e1 && rm -rf /data/d && mkdir /data/d && echo built > /data/d/b && \
             echo x > /etc/new\n\
         COPY hello /hello\n",
    )
    .unwrap();
    let image = store
        .build(&BuildOptions::new(&ctx).tag("built"), &|_| {})
        .unwrap();
    assert_eq!(image.layers().len(), 5);
    // The RUN layer marks /data/d opaque (or whites out each of its lower names).
    let run_layer = &image.layers()[3].dir;
    let dd = run_layer.join("data/d");
    let opaque = xattr(&dd, c"trusted.overlay.opaque").is_some();
    let whiteouts = std::fs::read_dir(&dd)
        .unwrap()
        .filter(|e| {
            let m = e.as_ref().unwrap().metadata().unwrap();
            std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type())
        })
        .count();
    assert!(
        opaque || whiteouts > 0,
        "/data/d of the RUN layer hides nothing"
    );
    let ns = Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC;
    let (code, out, err) = run_script(
        &image,
        "test -e /e/e1 && echo e1-visible; ls /data/d; cat /h3 /hello /etc/new",
        ns,
    );
    assert_eq!((code, out.as_str()), (0, "b\ne1\nhello\nx\n"), "{err}");
    // A rebuild is all cache and the same image, even seconds later (a slow guest): the
    // config's `created` is when the last step first ran, kept in the build cache.
    let again = store
        .build(&BuildOptions::new(&ctx).tag("built"), &|_| {})
        .unwrap();
    assert_eq!(again.id(), image.id());
    for e in std::fs::read_dir(store.root().join("build-cache")).unwrap() {
        let p = e.unwrap().path();
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(v["made"].is_i64(), "{}: {v}", p.display());
        v["made"] = 86_400.into();
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    let old = store
        .build(&BuildOptions::new(&ctx).tag("built"), &|_| {})
        .unwrap();
    let created = old.configuration().created().clone().unwrap_or_default();
    assert!(created.starts_with("1970-01-02T00:00:00"), "{created}");
}

// ---------------------------------------------------------------------------------------------
// Cgroup limits on an image's container

/// Runs the three-layer image with memory and pids limits under `BestEffort`: each limit is
/// either applied (the value in the container's cgroup) or reported skipped, never both, and
/// the image runs either way.
fn limits_on_an_image(image: &Image, parent: Option<&Path>) {
    let limits = Resources::new().memory_max(Bytes::mib(64)).pids_max(32);
    // Rootless with a user namespace; as root without one (a root store on tmpfs before 6.6
    // refuses one for an image with opaque directories, see check_three).
    let ns = if nix::unistd::geteuid().is_root() {
        all() - Namespaces::USER
    } else {
        all()
    };
    let mut c = script_container(image, "cat /proc/self/cgroup; echo ran")
        .namespaces(ns)
        .resources(limits)
        .limit_policy(LimitPolicy::BestEffort)
        .stdout(contain::process::Stdio::Piped);
    if let Some(p) = parent {
        c = c.cgroup_parent(p);
    }
    let mut child = c.spawn().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    assert!(out.ends_with("ran\n"), "{out}");
    let skipped: Vec<String> = child
        .skipped_limits()
        .iter()
        .map(|s| s.setting.clone())
        .collect();
    eprintln!("skipped limits: {:?}", child.skipped_limits());
    match child.cgroup() {
        Some(cg) => {
            // Inside, the container's own group (a cgroup namespace: its root).
            assert!(out.lines().any(|l| l == "0::/"), "{out}");
            let hosts = HostCgroups::detect().unwrap();
            for (file, value, controller) in [
                ("memory.max", "67108864", Controller::Memory),
                ("pids.max", "32", Controller::Pids),
            ] {
                let applied =
                    std::fs::read_to_string(cg.path().join(file)).is_ok_and(|v| v.trim() == value);
                let was_skipped = skipped.iter().any(|s| s == file);
                // In a parent of ours (or a delegated one) where the host has the controller
                // on cgroup v2 (the guest), the limit must be applied.
                if parent.is_some() && hosts.check(controller).is_ok() {
                    assert!(applied, "{file} not applied: {skipped:?}");
                }
                assert!(
                    applied != was_skipped,
                    "{file}: applied {applied}, skipped {skipped:?}"
                );
            }
        }
        None => {
            // No cgroup at all (rootless without delegation): every limit is listed.
            for file in ["memory.max", "pids.max"] {
                assert!(skipped.iter().any(|s| s == file), "{file}: {skipped:?}");
            }
        }
    }
}

#[test]
fn an_imported_image_runs_with_cgroup_limits_best_effort() {
    const TEST: &str = "an_imported_image_runs_with_cgroup_limits_best_effort";
    match role().as_deref().map(|r| r.split('|').collect::<Vec<_>>()) {
        // nobody|LAYOUT|STORE[|DELEGATED CGROUP]
        Some(r) if (3..=4).contains(&r.len()) && r[0] == "nobody" => {
            let store = Store::open(r[2]).unwrap();
            let image = store
                .import(&format!("{}:three", r[1]).parse().unwrap(), None)
                .unwrap();
            return limits_on_an_image(&image, r.get(3).map(Path::new));
        }
        Some(_) => return,
        None => {}
    }
    if !common::is_root(TEST) {
        return;
    }
    let d = TempDir::new("rl-limits");
    std::fs::set_permissions(d.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let layout = three_layer_layout(d.path());
    let store = Store::open(d.path().join("store")).unwrap();
    let image = store
        .import(
            &format!("{}:three", layout.display()).parse().unwrap(),
            None,
        )
        .unwrap();
    // A parent group of ours with the controllers the host has on cgroup v2 (in the guest:
    // both, from the busy /ci.scope; on a hybrid host: none, and both limits are skipped).
    let hosts = HostCgroups::detect().unwrap();
    let mut b = CgroupBuilder::new(format!("contain-test-rl-limits-{}", std::process::id()));
    for c in [Controller::Memory, Controller::Pids] {
        if hosts.check(c).is_ok() {
            b = b.controller(c);
        }
    }
    match b.create_in_default() {
        Ok(parent) => {
            limits_on_an_image(&image, Some(parent.path()));
            parent.remove(std::time::Duration::from_secs(5)).unwrap();
        }
        Err(e) => {
            skip(TEST, &format!("no cgroup v2 group can be made here: {e}"));
            limits_on_an_image(&image, None);
        }
    }

    let Some(nobody) = nobody_dir(TEST, "rl-limits-nobody") else {
        return;
    };
    world_readable(&layout);
    let role = format!(
        "nobody|{}|{}",
        layout.display(),
        nobody.path.join("store").display()
    );
    let out = common::rerun_as_nobody_in(TEST, &role, false, None);
    assert!(out.status.success(), "{TEST} failed as nobody");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{TEST}: the rootless scenario did not run"
    );

    // Rootless again, from a cgroup delegated to nobody (as systemd's Delegate=yes hands it
    // over: owned by nobody, the process in a leaf "proc", its containers made beside it,
    // the controllers enabled for them): the limits apply (in the guest) without root.
    if hosts.v2_mount().is_err() {
        return skip(TEST, "delegated half: no cgroup v2 here");
    }
    let mut b = CgroupBuilder::new(format!("contain-test-rl-deleg-{}", std::process::id()));
    for c in [Controller::Memory, Controller::Pids] {
        if hosts.check(c).is_ok() {
            b = b.controller(c);
        }
    }
    let deleg = b.create_in_default().unwrap();
    let leaf = CgroupBuilder::new("proc").create_in(&deleg).unwrap().keep();
    for p in [
        deleg.path().to_owned(),
        deleg.path().join("cgroup.procs"),
        deleg.path().join("cgroup.subtree_control"),
        deleg.path().join("cgroup.threads"),
        leaf.path().to_owned(),
        leaf.path().join("cgroup.procs"),
    ] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let role = format!("{role}|{}", deleg.path().display());
    let out = common::rerun_as_nobody_in(TEST, &role, false, Some(leaf.path()));
    assert!(
        out.status.success(),
        "{TEST} failed as nobody in a delegated cgroup"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{TEST}: the delegated scenario did not run"
    );
    drop(leaf);
    deleg.remove(std::time::Duration::from_secs(5)).unwrap();
}
