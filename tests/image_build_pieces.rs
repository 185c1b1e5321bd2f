//! The build pieces that need no store: an overlay upper directory as a layer tar
//! (`image::build::diff`), and writing an OCI layout / oci-archive that skopeo and umoci read
//! (`image::build::layout`).

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::TempDir;
use contain::image::build::diff::{write_layer, DiffOptions, LayerDiff};
use contain::image::OverlayFlavour;
use contain::{Error, ImageErrorKind};

/// One tar entry as the test compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct E {
    path: String,
    kind: char,
    mode: u32,
    uid: u64,
    link: Option<String>,
    data: Vec<u8>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn entries(tar_bytes: &[u8]) -> Vec<E> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let mut xattrs = Vec::new();
        let mut pax_uid = None;
        if let Some(p) = e.pax_extensions().expect("pax") {
            for x in p {
                let x = x.expect("pax record");
                if x.key() == Ok("uid") {
                    pax_uid = Some(x.value().unwrap().parse::<u64>().unwrap());
                }
                if let Some(k) = x.key().expect("utf-8 key").strip_prefix("SCHILY.xattr.") {
                    xattrs.push((k.to_string(), x.value_bytes().to_vec()));
                }
            }
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("data");
        out.push(E {
            path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: match h.entry_type() {
                tar::EntryType::Regular => 'f',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                tar::EntryType::Fifo => 'p',
                tar::EntryType::Char => 'c',
                tar::EntryType::Block => 'b',
                t => panic!("unexpected entry type {t:?}"),
            },
            mode: h.mode().expect("mode"),
            uid: pax_uid.unwrap_or_else(|| h.uid().expect("uid")),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            data,
            xattrs,
        });
    }
    out
}

fn diff(dir: &Path, opts: &DiffOptions) -> contain::Result<(LayerDiff, Vec<u8>)> {
    let d = fs::File::open(dir).expect("open upper");
    write_layer(d.as_fd(), opts, Vec::new())
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn setxattr(p: &Path, name: &str, value: &[u8], follow: bool) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated path and name, and a value buffer of the given length.
    let r = unsafe {
        if follow {
            libc::setxattr(
                c.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        } else {
            libc::lsetxattr(
                c.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        }
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Whether the filesystem of `dir` takes `user.*` xattrs (tmpfs only from Linux 6.6 on: the
/// guest's /tmp on 6.1 does not).
fn user_xattrs(dir: &Path) -> bool {
    let probe = dir.join(".user-xattr-probe");
    fs::write(&probe, "").unwrap();
    let c = CString::new(probe.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated path and name, a one-byte value.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.probe".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    let _ = fs::remove_file(&probe);
    r == 0
}

fn mknod_whiteout(p: &Path) {
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
}

/// An overlay mount, unmounted on drop (before the TempDir holding it is removed).
struct Overlay(PathBuf);

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// security.capability, revision 2, effective, CAP_NET_BIND_SERVICE permitted.
const CAP_NET_BIND: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn overlay_upper_becomes_the_expected_layer_tar() {
    if !common::is_root("overlay_upper_becomes_the_expected_layer_tar") {
        return;
    }
    let t = TempDir::new("diff-overlay");
    let (lower, upper, work, merged) = (
        t.path().join("lower"),
        t.path().join("upper"),
        t.path().join("work"),
        t.path().join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    // The lower layer: files, directories.
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(lower.join("etc/shadow"), "root:*:1::::::\n").unwrap();
    fs::create_dir_all(lower.join("gone/sub")).unwrap();
    fs::write(lower.join("gone/x"), "x").unwrap();
    fs::write(lower.join("gone/sub/y"), "y").unwrap();
    fs::create_dir(lower.join("olddir")).unwrap();
    fs::write(lower.join("olddir/f1"), "1").unwrap();
    fs::write(lower.join("chm"), "mode me").unwrap();
    fs::set_permissions(lower.join("chm"), fs::Permissions::from_mode(0o644)).unwrap();

    let opts = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .expect("mount overlay");
    let guard = Overlay(merged.clone());
    // What a RUN step does.
    let m = |p: &str| merged.join(p);
    fs::remove_file(m("etc/shadow")).unwrap();
    fs::remove_dir_all(m("gone")).unwrap();
    fs::remove_dir_all(m("olddir")).unwrap();
    fs::create_dir(m("olddir")).unwrap();
    fs::write(m("olddir/new"), "new").unwrap();
    fs::write(m("newfile"), "linked").unwrap();
    fs::hard_link(m("newfile"), m("newfile-link")).unwrap();
    symlink("/etc/passwd", m("lnk")).unwrap();
    fs::set_permissions(m("chm"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(m("capbin"), "\x7fELF").unwrap();
    fs::set_permissions(m("capbin"), fs::Permissions::from_mode(0o755)).unwrap();
    setxattr(&m("capbin"), "security.capability", &CAP_NET_BIND, true);
    let user_ok = user_xattrs(&upper);
    if user_ok {
        setxattr(&m("capbin"), "user.note", b"hello", true);
    } else {
        common::skip(
            "overlay_upper_becomes_the_expected_layer_tar",
            "user.* xattrs (not on this /tmp)",
        );
    }
    nix::unistd::mkfifo(&m("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    let long = "z".repeat(150);
    fs::write(m(&long), "long").unwrap();
    let sock = std::os::unix::net::UnixListener::bind(m("sock")).unwrap();
    drop(sock);
    drop(guard);

    let (d1, bytes) = diff(&upper, &DiffOptions::new(OverlayFlavour::Trusted)).expect("diff");
    let got = entries(&bytes);
    let paths: Vec<(&str, char)> = got.iter().map(|e| (e.path.as_str(), e.kind)).collect();
    let long_path = long.as_str();
    assert_eq!(
        paths,
        vec![
            (".wh.gone", 'f'),
            ("capbin", 'f'),
            ("chm", 'f'),
            ("etc/", 'd'),
            ("etc/.wh.shadow", 'f'),
            ("fifo", 'p'),
            ("lnk", 'l'),
            ("newfile", 'f'),
            ("newfile-link", 'h'),
            ("olddir/", 'd'),
            ("olddir/.wh..wh..opq", 'f'),
            ("olddir/new", 'f'),
            (long_path, 'f'),
        ],
        "{got:#?}"
    );
    let by = |p: &str| got.iter().find(|e| e.path == p).unwrap();
    assert_eq!(by("chm").mode, 0o600);
    assert_eq!(by("chm").data, b"mode me");
    assert_eq!(by("lnk").link.as_deref(), Some("/etc/passwd"));
    assert_eq!(by("newfile-link").link.as_deref(), Some("newfile"));
    assert_eq!(by("newfile").data, b"linked");
    assert_eq!(by("fifo").mode, 0o640);
    assert_eq!(by(long_path).data, b"long");
    let mut want = vec![("security.capability".to_string(), CAP_NET_BIND.to_vec())];
    if user_ok {
        want.push(("user.note".to_string(), b"hello".to_vec()));
    }
    assert_eq!(by("capbin").xattrs, want);
    assert_eq!(by(".wh.gone").data, b"");
    assert_eq!(by(".wh.gone").mode, 0);
    // No overlay-private xattr (origin, impure, opaque) leaks into the layer.
    for e in &got {
        for (k, _) in &e.xattrs {
            assert!(!k.contains("overlay."), "{}: {k}", e.path);
        }
    }
    assert_eq!(
        (
            d1.whiteouts,
            d1.opaque_dirs,
            d1.hardlinks,
            d1.sockets_skipped
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(d1.size, bytes.len() as u64);
    assert_eq!(
        d1.diff_id.to_string(),
        format!("sha256:{}", sha256_hex(&bytes))
    );
    // The same tree gives the same bytes.
    let (d2, again) = diff(&upper, &DiffOptions::new(OverlayFlavour::Trusted)).expect("diff");
    assert_eq!(d1, d2);
    assert!(bytes == again, "the second diff differs");
    // GNU tar reads it too (when installed), and sees the same names.
    if let Some(gnu) = common::in_path("tar") {
        let f = t.path().join("layer.tar");
        fs::write(&f, &bytes).unwrap();
        let o = std::process::Command::new(gnu)
            .arg("-tf")
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let listed = String::from_utf8_lossy(&o.stdout);
        assert_eq!(listed.lines().count(), got.len(), "{listed}");
        assert!(listed.lines().any(|l| l == long_path), "{listed}");
    }
}

#[test]
fn opaque_flavour_whiteout_links_and_mtime_clamp() {
    if !common::is_root("opaque_flavour_whiteout_links_and_mtime_clamp") {
        return;
    }
    let t = TempDir::new("diff-flavour");
    let up = t.path();
    fs::create_dir(up.join("u")).unwrap();
    fs::create_dir(up.join("t")).unwrap();
    let user_ok = user_xattrs(up);
    if user_ok {
        setxattr(&up.join("u"), "user.overlay.opaque", b"y", true);
    } else {
        common::skip(
            "opaque_flavour_whiteout_links_and_mtime_clamp",
            "user.overlay.opaque (no user.* xattrs on this /tmp)",
        );
    }
    setxattr(&up.join("t"), "trusted.overlay.opaque", b"y", true);
    // Two whiteouts that are one inode (the kernel's shared whiteout): not a hard link.
    mknod_whiteout(&up.join("w1"));
    fs::hard_link(up.join("w1"), up.join("w2")).unwrap();
    fs::write(up.join("old"), "x").unwrap();
    let set_mtime = |p: &Path, secs: u64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    set_mtime(&up.join("old"), 1_000);
    fs::write(up.join("new"), "y").unwrap();
    set_mtime(&up.join("new"), 2_000_000_000);

    let has = |p: &str, e: &[E]| e.iter().any(|e| e.path == p);
    let (_, b) = diff(up, &DiffOptions::new(OverlayFlavour::User)).unwrap();
    let e = entries(&b);
    assert_eq!(has("u/.wh..wh..opq", &e), user_ok, "{e:#?}");
    assert!(!has("t/.wh..wh..opq", &e), "{e:#?}");
    assert!(has(".wh.w1", &e) && has(".wh.w2", &e), "{e:#?}");
    assert!(e.iter().all(|e| e.kind != 'h'), "{e:#?}");
    // Whiteouts come before their siblings.
    assert_eq!(e[0].path, ".wh.w1");
    assert_eq!(e[1].path, ".wh.w2");
    let (_, b) = diff(up, &DiffOptions::new(OverlayFlavour::Trusted)).unwrap();
    let e = entries(&b);
    assert!(
        !has("u/.wh..wh..opq", &e) && has("t/.wh..wh..opq", &e),
        "{e:#?}"
    );

    // mtimes kept, or clamped to SOURCE_DATE_EPOCH.
    let mtime = |b: &[u8], p: &str| {
        let mut a = tar::Archive::new(b);
        let m = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| &*e.path_bytes() == p.as_bytes())
            .map(|e| e.header().mtime().unwrap());
        m.unwrap()
    };
    assert_eq!(mtime(&b, "new"), 2_000_000_000);
    let mut o = DiffOptions::new(OverlayFlavour::Trusted);
    o.source_date_epoch = Some(1_500_000_000);
    let (_, c) = diff(up, &o).unwrap();
    assert_eq!(mtime(&c, "new"), 1_500_000_000);
    assert_eq!(mtime(&c, "old"), 1_000);

    // Excluded paths (a runtime's mount points) are left out with their contents.
    fs::create_dir_all(up.join("proc/sub")).unwrap();
    fs::write(up.join("proc/sub/f"), "").unwrap();
    let mut o = DiffOptions::new(OverlayFlavour::Trusted);
    o.exclude = vec![PathBuf::from("proc"), PathBuf::from("old")];
    let (_, c) = diff(up, &o).unwrap();
    let e = entries(&c);
    assert!(
        e.iter()
            .all(|e| !e.path.starts_with("proc") && e.path != "old"),
        "{e:#?}"
    );
    assert!(has("new", &e), "{e:#?}");
}

#[test]
fn names_a_layer_cannot_carry_are_refused() {
    if !common::is_root("names_a_layer_cannot_carry_are_refused") {
        return;
    }
    let t = TempDir::new("diff-refuse");
    fs::create_dir(t.path().join("d")).unwrap();
    fs::write(t.path().join("d/.wh.sneaky"), "").unwrap();
    let e = diff(t.path(), &DiffOptions::new(OverlayFlavour::Trusted)).unwrap_err();
    assert!(
        matches!(&e, Error::Image { kind: ImageErrorKind::Unsupported, entry: Some(p), .. } if p == Path::new("d/.wh.sneaky")),
        "{e}"
    );
    let t = TempDir::new("diff-redirect");
    fs::create_dir(t.path().join("moved")).unwrap();
    setxattr(
        &t.path().join("moved"),
        "trusted.overlay.redirect",
        b"/orig",
        true,
    );
    let e = diff(t.path(), &DiffOptions::new(OverlayFlavour::Trusted)).unwrap_err();
    assert!(e.to_string().contains("redirect_dir=off"), "{e}");
    assert!(
        matches!(&e, Error::Image { entry: Some(p), .. } if p == Path::new("moved")),
        "{e}"
    );
}

#[test]
fn long_link_targets_big_ids_symlink_xattrs_and_devices() {
    if !common::is_root("long_link_targets_big_ids_symlink_xattrs_and_devices") {
        return;
    }
    let t = TempDir::new("diff-pax");
    let target = format!("/{}", "t".repeat(200));
    symlink(&target, t.path().join("l")).unwrap();
    setxattr(&t.path().join("l"), "trusted.mark", b"m", false);
    fs::write(t.path().join("big"), "").unwrap();
    nix::unistd::chown(
        &t.path().join("big"),
        Some(nix::unistd::Uid::from_raw(3_000_000)),
        Some(nix::unistd::Gid::from_raw(5)),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &t.path().join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    fs::set_permissions(t.path().join("null"), fs::Permissions::from_mode(0o666)).unwrap();
    let (_, b) = diff(t.path(), &DiffOptions::new(OverlayFlavour::Trusted)).unwrap();
    let mut a = tar::Archive::new(&b[..]);
    let null = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| &*e.path_bytes() == b"null")
        .expect("the device is in the layer");
    let h = null.header();
    assert_eq!(h.entry_type(), tar::EntryType::Char);
    assert_eq!(
        (h.device_major().unwrap(), h.device_minor().unwrap()),
        (Some(1), Some(3))
    );
    assert_eq!(h.mode().unwrap(), 0o666);
    let e = entries(&b);
    let l = e.iter().find(|e| e.path == "l").unwrap();
    assert_eq!(l.link.as_deref(), Some(target.as_str()));
    assert_eq!(l.xattrs, vec![("trusted.mark".to_string(), b"m".to_vec())]);
    let big = e.iter().find(|e| e.path == "big").unwrap();
    assert_eq!(big.uid, 3_000_000);
}

// ---------------------------------------------------------------------------------------
// OCI layout and oci-archive, read by skopeo and umoci.

use contain::image::build::layout::{
    image_documents, write_archive, write_gzip_layer, write_layout, Blob, BlobSource, HistoryEntry,
    LayoutImage, NewImage, NewLayer,
};
use contain::image::ImageConfig;

/// A tool's output, or None (and a skip message) when it is not installed.
fn tool(test: &str, name: &str, args: &[&str]) -> Option<std::process::Output> {
    let Some(p) = common::in_path(name) else {
        common::skip(test, &format!("{name} is not installed"));
        return None;
    };
    Some(
        std::process::Command::new(p)
            .args(args)
            .output()
            .expect("run tool"),
    )
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A two-layer image: layer 1 has etc/hostname, bin/tool and gone; layer 2 deletes gone and
/// adds app/run. Returns the documents and the gzip blobs (in `blobs`).
fn two_layer_image(t: &TempDir, cmd: &str) -> (NewImage, Vec<NewLayer>, Vec<PathBuf>) {
    let l1 = t.path().join("l1");
    fs::create_dir_all(l1.join("etc")).unwrap();
    fs::create_dir_all(l1.join("bin")).unwrap();
    fs::write(l1.join("etc/hostname"), "box\n").unwrap();
    fs::write(l1.join("bin/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(l1.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(l1.join("gone"), "bye").unwrap();
    let l2 = t.path().join("l2");
    fs::create_dir_all(l2.join("app")).unwrap();
    fs::write(l2.join("app/run"), cmd).unwrap();
    mknod_whiteout(&l2.join("gone"));
    let mut layers = Vec::new();
    let mut files = Vec::new();
    for (i, dir) in [&l1, &l2].into_iter().enumerate() {
        let f = t.path().join(format!("layer{i}.tar.gz"));
        let out = fs::File::create(&f).unwrap();
        let d = fs::File::open(dir).unwrap();
        let (layer, diff, _) =
            write_gzip_layer(d.as_fd(), &DiffOptions::new(OverlayFlavour::Trusted), out)
                .expect("gzip layer");
        assert_eq!(fs::metadata(&f).unwrap().len(), layer.size);
        assert_eq!(layer.diff_id, diff.diff_id);
        layers.push(layer);
        files.push(f);
    }
    let mut cfg = ImageConfig::default();
    cfg.set_cmd(Some(vec!["/app/run".into()]));
    cfg.set_env(Some(vec!["PATH=/bin".into()]));
    let hist = [
        HistoryEntry {
            created_by: "COPY l1 /".into(),
            empty_layer: false,
            comment: None,
        },
        HistoryEntry {
            created_by: "RUN /bin/sh -c make".into(),
            empty_layer: false,
            comment: None,
        },
        HistoryEntry {
            created_by: "CMD [\"/app/run\"]".into(),
            empty_layer: true,
            comment: None,
        },
    ];
    let img = image_documents(None, &cfg, &layers, &hist, Some("2026-11-30T00:00:00Z"))
        .expect("documents");
    (img, layers, files)
}

fn layout_image<'a>(layers: &'a [NewLayer], files: &'a [PathBuf]) -> Vec<Blob<'a>> {
    layers
        .iter()
        .zip(files)
        .map(|(l, f)| Blob {
            digest: &l.digest,
            size: l.size,
            source: BlobSource::Path(f),
        })
        .collect()
}

#[test]
fn layout_and_archive_are_read_by_skopeo_and_umoci() {
    const T: &str = "layout_and_archive_are_read_by_skopeo_and_umoci";
    if !common::is_root(T) {
        return;
    }
    let t = TempDir::new("layout");
    let (img, layers, files) = two_layer_image(&t, "v1");
    let blobs = layout_image(&layers, &files);
    let image = LayoutImage {
        manifest: &img.manifest,
        config: &img.config,
        layers: &blobs,
    };
    let dir = t.path().join("oci");
    let digest = write_layout(&dir, &image, Some("example.com/test:v1")).expect("layout");
    assert_eq!(digest, img.manifest_digest);
    let index = fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(
        index.contains("\"org.opencontainers.image.ref.name\":\"v1\""),
        "{index}"
    );
    assert!(
        index.contains("\"io.containerd.image.name\":\"example.com/test:v1\""),
        "{index}"
    );

    // oci-archive, twice: the same bytes.
    let (d1, a1) = write_archive(Vec::new(), &image, Some("test:v1")).expect("archive");
    let (_, a2) = write_archive(Vec::new(), &image, Some("test:v1")).expect("archive");
    assert_eq!(d1, digest);
    assert!(a1 == a2, "archives differ");
    let archive = t.path().join("image.tar");
    fs::write(&archive, &a1).unwrap();

    // A blob that does not match its digest is refused.
    let bad = [
        Blob {
            digest: &layers[0].digest,
            size: layers[0].size,
            source: BlobSource::Path(&files[1]),
        },
        blobs[1],
    ];
    let e = write_layout(
        &t.path().join("bad"),
        &LayoutImage {
            layers: &bad,
            ..image
        },
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Image {
                kind: ImageErrorKind::DigestMismatch | ImageErrorKind::SizeMismatch,
                ..
            }
        ),
        "{e}"
    );
    let e = write_archive(
        Vec::new(),
        &LayoutImage {
            layers: &bad,
            ..image
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Image { .. }), "{e}");

    let oci_ref = format!("oci:{}:v1", dir.display());
    if let Some(o) = tool(T, "skopeo", &["inspect", &oci_ref]) {
        let out = ok(&o, "skopeo inspect");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Digest"], digest.to_string(), "{out}");
        let ls: Vec<String> = v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ls,
            layers
                .iter()
                .map(|l| l.digest.to_string())
                .collect::<Vec<_>>()
        );
        let copied = t.path().join("copied.tar");
        let o = tool(
            T,
            "skopeo",
            &[
                "copy",
                &oci_ref,
                &format!("oci-archive:{}:v1", copied.display()),
            ],
        )
        .unwrap();
        ok(&o, "skopeo copy to oci-archive");
        // Our own archive reads as skopeo's does.
        let o = tool(
            T,
            "skopeo",
            &["inspect", &format!("oci-archive:{}:v1", archive.display())],
        )
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&ok(&o, "skopeo inspect oci-archive")).unwrap();
        assert_eq!(v["Digest"], digest.to_string());
        let o = tool(T, "skopeo", &["inspect", "--config", &oci_ref]).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(&ok(&o, "skopeo inspect --config")).unwrap();
        assert_eq!(c["config"]["Cmd"][0], "/app/run");
    }
    if let Some(o) = tool(T, "umoci", &["ls", "--layout", dir.to_str().unwrap()]) {
        assert_eq!(ok(&o, "umoci ls").trim(), "v1");
        let bundle = t.path().join("bundle");
        let o = tool(
            T,
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:v1", dir.display()),
                bundle.to_str().unwrap(),
            ],
        )
        .unwrap();
        ok(&o, "umoci unpack");
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            fs::read_to_string(rootfs.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(fs::read_to_string(rootfs.join("app/run")).unwrap(), "v1");
        assert!(
            !rootfs.join("gone").exists(),
            "the whiteout of layer 2 was not applied"
        );
        assert!(!rootfs.join(".wh.gone").exists());
        let mode = fs::metadata(rootfs.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}

#[test]
fn a_second_image_of_the_same_tag_takes_the_name() {
    const T: &str = "a_second_image_of_the_same_tag_takes_the_name";
    if !common::is_root(T) {
        return;
    }
    let t = TempDir::new("layout-retag");
    let dir = t.path().join("oci");
    let (img1, layers1, files1) = two_layer_image(&t, "one");
    let b1 = layout_image(&layers1, &files1);
    write_layout(
        &dir,
        &LayoutImage {
            manifest: &img1.manifest,
            config: &img1.config,
            layers: &b1,
        },
        Some("app:v1"),
    )
    .unwrap();
    let t2 = TempDir::new("layout-retag2");
    let (img2, layers2, files2) = two_layer_image(&t2, "two");
    let b2 = layout_image(&layers2, &files2);
    write_layout(
        &dir,
        &LayoutImage {
            manifest: &img2.manifest,
            config: &img2.config,
            layers: &b2,
        },
        Some("app:v1"),
    )
    .unwrap();
    // The same image and tag again: no second entry of it.
    write_layout(
        &dir,
        &LayoutImage {
            manifest: &img2.manifest,
            config: &img2.config,
            layers: &b2,
        },
        Some("app:v1"),
    )
    .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"].as_array().unwrap();
    let named: Vec<&serde_json::Value> = m
        .iter()
        .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .collect();
    assert_eq!(named.len(), 1, "{index}");
    assert_eq!(named[0]["digest"], img2.manifest_digest.to_string());
    assert!(
        m.iter()
            .any(|d| d["digest"] == img1.manifest_digest.to_string()),
        "the first image stays, unnamed: {index}"
    );
    if let Some(o) = tool(T, "umoci", &["ls", "--layout", dir.to_str().unwrap()]) {
        assert_eq!(ok(&o, "umoci ls").trim(), "v1");
    }
}
