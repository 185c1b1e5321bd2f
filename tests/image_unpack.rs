//! Applying layer tars (`contain::image::unpack`): whiteouts and opaque directories across
//! three layers (checked through a real overlay mount as root, and in the layer directories
//! rootless), flattening, hard links into a lower layer, capabilities, setuid, sparse files,
//! long names, devices, tars made by GNU tar and umoci, and hostile layers.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{is_root, role, skip};
use contain::image::unpack::{unpack, Apply, UnpackOptions, UnpackStats};
use contain::image::OverlayFlavour;
use contain::{Error, ImageErrorKind};

// ---------------------------------------------------------------------------------------------
// Building tars byte by byte (tar::Builder refuses the hostile names these tests need).

#[derive(Default)]
struct Tar(Vec<u8>);

/// Metadata of one entry.
#[derive(Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
        }
    }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len += 1;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl Tar {
    /// A raw header: `name` and `link` copied as given (long ones through GNU L/K headers).
    fn raw(
        &mut self,
        name: &[u8],
        ty: u8,
        link: &[u8],
        m: &Meta,
        size: u64,
        data: &[u8],
    ) -> &mut Self {
        if name.len() > 100 {
            let mut body = name.to_vec();
            body.push(0);
            self.raw(
                b"././@LongLink",
                b'L',
                b"",
                &Meta::default(),
                body.len() as u64,
                &body,
            );
        }
        if link.len() > 100 {
            let mut body = link.to_vec();
            body.push(0);
            self.raw(
                b"././@LongLink",
                b'K',
                b"",
                &Meta::default(),
                body.len() as u64,
                &body,
            );
        }
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            let n = name.len().min(100);
            old.name[..n].copy_from_slice(&name[..n]);
            let l = link.len().min(100);
            old.linkname[..l].copy_from_slice(&link[..l]);
        }
        h.set_mode(m.mode);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_mtime(m.mtime);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_m(name, data, &Meta::default())
    }
    fn file_m(&mut self, name: &str, data: &[u8], m: &Meta) -> &mut Self {
        self.raw(name.as_bytes(), b'0', b"", m, data.len() as u64, data)
    }
    fn dir(&mut self, name: &str) -> &mut Self {
        self.dir_m(
            name,
            &Meta {
                mode: 0o755,
                ..Meta::default()
            },
        )
    }
    fn dir_m(&mut self, name: &str, m: &Meta) -> &mut Self {
        self.raw(name.as_bytes(), b'5', b"", m, 0, b"")
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            b'2',
            target.as_bytes(),
            &Meta {
                mode: 0o777,
                ..Meta::default()
            },
            0,
            b"",
        )
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            b'1',
            target.as_bytes(),
            &Meta::default(),
            0,
            b"",
        )
    }
    /// A whiteout (an empty file, as docker and buildkit write them).
    fn wh(&mut self, name: &str) -> &mut Self {
        self.file(name, b"")
    }
    /// A PAX header for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.raw(
            b"PaxHeaders/x",
            b'x',
            b"",
            &Meta::default(),
            body.len() as u64,
            &body,
        )
    }
    /// The archive with its two end blocks.
    fn done(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Applying and looking at the result.

/// A [`common::TempDir`] whose read-only directories (layers hold 0555 ones) are made
/// writable before it is removed, so that a rootless run leaves nothing behind either.
struct TempDir(Option<common::TempDir>);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        TempDir(Some(common::TempDir::new(tag)))
    }
    fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map(|t| t.path())
            .unwrap_or(Path::new("/nonexistent"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        fn writable(dir: &Path) {
            let _ = std::fs::set_permissions(dir, PermissionsExt::from_mode(0o700));
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        writable(&e.path());
                    }
                }
            }
        }
        if let Some(t) = self.0.take() {
            writable(t.path());
        }
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    File::open(p)
        .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
        .into()
}

fn apply_with(
    tar: &[u8],
    dir: &Path,
    apply: Apply,
    chown: bool,
    lowers: &[&Path],
) -> contain::Result<UnpackStats> {
    let fd = open_dir(dir);
    let lower: Vec<PathBuf> = lowers.iter().map(|p| p.to_path_buf()).collect();
    let mut open_lowers = move || Ok(lower.iter().map(|p| open_dir(p)).collect());
    unpack(
        &mut &tar[..],
        fd.as_fd(),
        &mut open_lowers,
        UnpackOptions { apply, chown },
    )
}

fn root_flavour() -> Apply {
    Apply::Layer(if nix::unistd::geteuid().is_root() {
        OverlayFlavour::Trusted
    } else {
        OverlayFlavour::User
    })
}

fn apply(tar: &[u8], dir: &Path) -> contain::Result<UnpackStats> {
    let root = nix::unistd::geteuid().is_root();
    apply_with(tar, dir, root_flavour(), root, &[])
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(p.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings; the kernel writes at most buf.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

/// Whether the filesystem of `dir` takes `user.*` xattrs (tmpfs does only since Linux 6.6:
/// the guest's 6.1 /tmp does not).
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

fn is_whiteout(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// What a tree holds, path → description (type, mode, owner, size, content or target, and
/// the mtime of non-directories), whiteouts left out (an overlay mount hides them).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                walk(root, &p, out);
                "dir".to_string()
            } else if ft.is_symlink() {
                format!(
                    "-> {} mtime {}",
                    std::fs::read_link(&p).unwrap().display(),
                    m.mtime()
                )
            } else if ft.is_file() {
                format!(
                    "{:?} mtime {}",
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()),
                    m.mtime()
                )
            } else if ft.is_char_device() && m.rdev() == 0 {
                continue;
            } else {
                format!("special {:o} rdev {}", m.mode() & libc::S_IFMT, m.rdev())
            };
            out.insert(
                rel,
                format!(
                    "{what} mode {:o} {}:{}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    walk(root, root, &mut out);
    out
}

fn names(root: &Path) -> Vec<String> {
    snapshot(root).into_keys().collect()
}

/// A canary directory next to the layer: its contents, modes and mtimes before and after.
struct Canary {
    dir: PathBuf,
    before: Vec<(String, u32, i64, Vec<u8>)>,
}

impl Canary {
    fn new(parent: &Path) -> Canary {
        let dir = parent.join("canary");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("victim"), b"precious").unwrap();
        std::fs::set_permissions(dir.join("victim"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o750)).unwrap();
        let c = Command::new("touch")
            .args(["-h", "-d", "2001-01-01"])
            .arg(dir.join("victim"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(c.success());
        let mut canary = Canary {
            dir,
            before: Vec::new(),
        };
        canary.before = canary.state();
        canary
    }
    fn state(&self) -> Vec<(String, u32, i64, Vec<u8>)> {
        let mut v = Vec::new();
        let m = std::fs::symlink_metadata(&self.dir).unwrap();
        v.push((".".into(), m.mode(), m.mtime(), Vec::new()));
        let mut entries: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            v.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                m.mode(),
                m.mtime(),
                data,
            ));
        }
        v
    }
    fn assert_untouched(&self, case: &str) {
        assert_eq!(
            self.state(),
            self.before,
            "{case}: the canary outside the layer changed"
        );
    }
}

#[track_caller]
fn assert_image_err(
    r: contain::Result<UnpackStats>,
    kind: ImageErrorKind,
    entry: &str,
    case: &str,
) {
    match r {
        Err(Error::Image {
            kind: k,
            entry: Some(ref e),
            ref reason,
            ..
        }) if k == kind => {
            assert_eq!(e, Path::new(entry), "{case}: wrong entry named ({reason})");
            let msg = r.as_ref().unwrap_err().to_string();
            assert!(msg.contains(reason.as_str()), "{msg}");
        }
        other => panic!("{case}: expected {kind:?} naming {entry:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Three layers with whiteouts and opaque directories.

fn layer1() -> Vec<u8> {
    Tar::default()
        .dir("a/")
        .file("a/x", b"x1")
        .file("a/y", b"y1")
        .dir("b/")
        .file("b/z", b"z1")
        .dir("c/")
        .file("c/w", b"w1")
        .dir("c/sub/")
        .file("c/sub/deep", b"d1")
        .dir("d/")
        .file("d/old", b"o1")
        .dir("e/")
        .file("e/e1", b"e1")
        .file("f", b"f1")
        .symlink("link", "a/x")
        .dir_m(
            "tmp/",
            &Meta {
                mode: 0o1777,
                ..Meta::default()
            },
        )
        .dir("g/")
        .file("g/old", b"g1")
        .dir_m(
            "ro/",
            &Meta {
                mode: 0o555,
                ..Meta::default()
            },
        )
        .file("ro/r1", b"r1")
        .dir_m(
            "ro/deep/",
            &Meta {
                mode: 0o555,
                ..Meta::default()
            },
        )
        .file("ro/deep/x", b"x1")
        .done()
}

fn layer2() -> Vec<u8> {
    Tar::default()
        .wh(".wh.b")
        .wh("a/.wh.x")
        // the opaque marker after an entry of the same directory: the entry stays
        .file("c/new", b"n2")
        .wh("c/.wh..wh..opq")
        // deleted and recreated in one layer
        .wh(".wh.d")
        .dir("d/")
        .file("d/fresh", b"f2")
        .file("e/e2", b"e2")
        .wh(".wh.f")
        // no entry for tmp/: the parent takes the lower layer's mode (1777)
        .file("tmp/t2", b"t")
        // recreated, then deleted: the whiteout hides layer 1's g/ only, this layer's stays
        .dir("g/")
        .file("g/new", b"g2")
        .wh(".wh.g")
        // into a read-only directory of layer 1 (rootless flattening must get in)
        .dir_m(
            "ro/",
            &Meta {
                mode: 0o555,
                ..Meta::default()
            },
        )
        .file("ro/r2", b"r2")
        .done()
}

fn layer3() -> Vec<u8> {
    Tar::default()
        .dir("b/")
        .file("b/again", b"b3")
        .wh("a/.wh..wh..opq")
        .file("a/q", b"q3")
        // into layer 1, through layer 2's merged e/
        .hardlink("h3", "e/e1")
        .wh(".wh.link")
        // a new directory inside layer 1's read-only ro/deep/
        .file("ro/deep/more/z", b"z3")
        .done()
}

const MERGED: &[&str] = &[
    "a",
    "a/q",
    "b",
    "b/again",
    "c",
    "c/new",
    "d",
    "d/fresh",
    "e",
    "e/e1",
    "e/e2",
    "g",
    "g/new",
    "h3",
    "ro",
    "ro/deep",
    "ro/deep/more",
    "ro/deep/more/z",
    "ro/deep/x",
    "ro/r1",
    "ro/r2",
    "tmp",
    "tmp/t2",
];

fn three_layers(base: &Path) -> [PathBuf; 3] {
    let dirs = [base.join("l1"), base.join("l2"), base.join("l3")];
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let root = nix::unistd::geteuid().is_root();
    let st1 = apply_with(&layer1(), &dirs[0], root_flavour(), root, &[]).unwrap();
    assert_eq!(st1.entries, 22);
    let st2 = apply_with(&layer2(), &dirs[1], root_flavour(), root, &[&dirs[0]]).unwrap();
    assert_eq!(st2.hardlinks_copied, 0);
    let st3 = apply_with(
        &layer3(),
        &dirs[2],
        root_flavour(),
        root,
        &[&dirs[1], &dirs[0]],
    )
    .unwrap();
    assert_eq!(st3.hardlinks_copied, 1, "{st3:?}");
    dirs
}

fn flatten(base: &Path) -> PathBuf {
    let flat = base.join("flat");
    std::fs::create_dir(&flat).unwrap();
    let root = nix::unistd::geteuid().is_root();
    for l in [layer1(), layer2(), layer3()] {
        apply_with(&l, &flat, Apply::Flatten, root, &[]).unwrap();
    }
    flat
}

/// What the layer directories hold, in the layer flavour of this user.
fn check_layer_dirs(dirs: &[PathBuf; 3], user_only: bool) {
    let user_ok = user_xattrs(&dirs[0]);
    let [l1, l2, l3] = dirs;
    assert!(l1.join("a/x").is_file());
    // whiteouts: 0/0 character devices
    for w in ["b", "a/x", "f"] {
        assert!(is_whiteout(&l2.join(w)), "l2/{w} is not a whiteout");
    }
    assert!(is_whiteout(&l3.join("link")));
    // opaque directories: the deleted-and-recreated d, c (marker after its entry), l3's a
    let opaque = |p: &Path| {
        let user = getxattr(p, "user.overlay.opaque");
        let trusted = getxattr(p, "trusted.overlay.opaque");
        if user_ok {
            assert_eq!(
                user.as_deref(),
                Some(&b"y"[..]),
                "{}: user.overlay.opaque",
                p.display()
            );
        }
        if user_only {
            assert_eq!(trusted, None, "{}", p.display());
        } else {
            assert_eq!(
                trusted.as_deref(),
                Some(&b"y"[..]),
                "{}: trusted.overlay.opaque",
                p.display()
            );
        }
    };
    opaque(&l2.join("c"));
    opaque(&l2.join("d"));
    opaque(&l3.join("a"));
    opaque(&l2.join("g"));
    assert_eq!(
        std::fs::metadata(l2.join("ro")).unwrap().mode() & 0o7777,
        0o555
    );
    assert_eq!(
        getxattr(&l2.join("e"), "user.overlay.opaque"),
        None,
        "e/ merges"
    );
    assert!(!l2.join("d").join("old").exists());
    assert_eq!(std::fs::read(l2.join("c/new")).unwrap(), b"n2");
    // the implicit tmp/ took layer 1's mode
    assert_eq!(
        std::fs::metadata(l2.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // the hard link's target was copied up into layer 3, and linked there
    let h = std::fs::metadata(l3.join("h3")).unwrap();
    let t = std::fs::metadata(l3.join("e/e1")).unwrap();
    assert_eq!((h.ino(), h.nlink()), (t.ino(), 2));
    assert_eq!(std::fs::read(l3.join("h3")).unwrap(), b"e1");
    assert_eq!(h.mtime(), 1_600_000_000);
}

struct Umount(PathBuf);

impl Drop for Umount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn whiteouts_and_opaque_dirs_across_three_layers_through_overlay() {
    const TEST: &str = "whiteouts_and_opaque_dirs_across_three_layers_through_overlay";
    if role().as_deref() == Some("nobody") || !nix::unistd::geteuid().is_root() {
        // Rootless: the xattrs and character devices in the layer directories, and
        // flattening.
        let t = TempDir::new("unpack-3l-user");
        if user_xattrs(t.path()) {
            let dirs = three_layers(t.path());
            check_layer_dirs(&dirs, true);
        } else {
            skip(
                TEST,
                "rootless layers (user.overlay.opaque) on a filesystem without user xattrs",
            );
        }
        let flat = flatten(t.path());
        assert_eq!(names(&flat), MERGED);
        return;
    }
    let t = TempDir::new("unpack-3l");
    let dirs = three_layers(t.path());
    check_layer_dirs(&dirs, false);
    let merged = t.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let lower = format!(
        "lowerdir={}:{}:{}",
        dirs[2].display(),
        dirs[1].display(),
        dirs[0].display()
    );
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &lower])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success(), "mount -t overlay: {st}");
    let _umount = Umount(merged.clone());
    let seen = snapshot(&merged);
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        MERGED,
        "{seen:#?}"
    );
    assert_eq!(
        std::fs::metadata(merged.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // Flattening the same three layers gives the merged tree (directory mtimes aside).
    let flat = flatten(t.path());
    assert_eq!(snapshot(&flat), seen);
    assert_eq!(
        std::fs::metadata(flat.join("ro")).unwrap().mode() & 0o7777,
        0o555
    );
    drop(_umount);
    // And the same without privilege.
    common::assert_passes_as_nobody(TEST, "nobody", false);
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn modes_times_long_names_pax_and_xattrs_are_kept() {
    let t = TempDir::new("unpack-meta");
    let long = format!("d/{}", "n".repeat(200));
    let pax_long = format!("p/{}", "q".repeat(250));
    let tar = Tar::default()
        .dir_m(
            "d/",
            &Meta {
                mode: 0o750,
                mtime: 0,
                ..Meta::default()
            },
        )
        .file_m(
            &long,
            b"long",
            &Meta {
                mode: 0o600,
                ..Meta::default()
            },
        )
        .file_m(
            "zero",
            b"0",
            &Meta {
                mtime: 0,
                ..Meta::default()
            },
        )
        .file_m(
            "suid",
            b"#!",
            &Meta {
                mode: 0o4755,
                ..Meta::default()
            },
        )
        .file_m(
            "sgid",
            b"#!",
            &Meta {
                mode: 0o2711,
                ..Meta::default()
            },
        )
        .dir_m(
            "sticky/",
            &Meta {
                mode: 0o1777,
                ..Meta::default()
            },
        )
        .dir_m(
            "ro/",
            &Meta {
                mode: 0o555,
                ..Meta::default()
            },
        )
        .file("ro/inside", b"filled after all")
        .pax(&[
            ("path", pax_long.as_bytes()),
            ("mtime", b"1234.5"),
            ("SCHILY.xattr.user.note", b"a\nb"),
        ])
        .file("short-name-ignored", b"pax")
        // a PAX size wins over the header's 0 (GNU tar and Go read it so; RUSTSEC-2026-0068)
        .pax(&[("size", b"5")])
        .raw(b"paxsize", b'0', b"", &Meta::default(), 0, b"hello")
        .pax(&[("SCHILY.xattr.user.on-link", b"x")])
        .symlink("sym", "nowhere")
        .raw(
            b"fifo",
            b'6',
            b"",
            &Meta {
                mode: 0o620,
                ..Meta::default()
            },
            0,
            b"",
        )
        .done();
    let st = apply(&tar, t.path()).unwrap();
    let p = t.path();
    let m = |rel: &str| std::fs::symlink_metadata(p.join(rel)).unwrap();
    assert_eq!(std::fs::read(p.join(&long)).unwrap(), b"long");
    assert_eq!(m(&long).mode() & 0o7777, 0o600);
    assert_eq!(
        (m("d").mode() & 0o7777, m("d").mtime()),
        (0o750, 0),
        "a directory's mtime 0 stays"
    );
    assert_eq!(m("zero").mtime(), 0);
    assert_eq!(m("suid").mode() & 0o7777, 0o4755);
    assert_eq!(m("sgid").mode() & 0o7777, 0o2711);
    assert_eq!(m("sticky").mode() & 0o7777, 0o1777);
    assert_eq!(m("ro").mode() & 0o7777, 0o555);
    assert_eq!(
        std::fs::read(p.join("ro/inside")).unwrap(),
        b"filled after all"
    );
    assert_eq!(std::fs::read(p.join(&pax_long)).unwrap(), b"pax");
    assert!(!p.join("short-name-ignored").exists());
    assert_eq!(
        (m(&pax_long).mtime(), m(&pax_long).mtime_nsec()),
        (1234, 500_000_000)
    );
    let user_ok = user_xattrs(p);
    if user_ok {
        assert_eq!(
            getxattr(&p.join(&pax_long), "user.note").as_deref(),
            Some(&b"a\nb"[..])
        );
    }
    assert_eq!(std::fs::read(p.join("paxsize")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read_link(p.join("sym")).unwrap(),
        Path::new("nowhere")
    );
    assert!(m("fifo").file_type().is_fifo());
    assert_eq!(m("fifo").mode() & 0o7777, 0o620);
    // user.* on a symlink: the kernel refuses it; skipped and counted (and the file's too
    // where the filesystem has no user xattrs)
    assert_eq!(st.xattrs_skipped, if user_ok { 1 } else { 2 }, "{st:?}");
    assert_eq!(st.bytes, (4 + 1 + 2 + 2 + 16 + 3 + 5) as u64);
}

#[test]
fn capabilities_survive_chown_and_overlay_xattrs_are_stripped() {
    if !is_root("capabilities_survive_chown_and_overlay_xattrs_are_stripped") {
        return;
    }
    let t = TempDir::new("unpack-caps");
    // VFS_CAP_REVISION_2 | effective; permitted = CAP_DAC_OVERRIDE | CAP_FOWNER (0x0a, a
    // newline byte in the PAX record) | CAP_NET_RAW.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&((1u32 << 1) | (1 << 3) | (1 << 13)).to_le_bytes());
    let tar = Tar::default()
        .pax(&[
            ("SCHILY.xattr.security.capability", &cap),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .file_m(
            "bin/ping",
            b"\x7fELF",
            &Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 1001,
                ..Meta::default()
            },
        )
        .pax(&[
            ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.trusted.other", b"kept"),
        ])
        .dir("etc/")
        .done();
    let st = apply(&tar, t.path()).unwrap();
    let ping = t.path().join("bin/ping");
    let m = std::fs::metadata(&ping).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o4755));
    assert_eq!(getxattr(&ping, "security.capability"), Some(cap));
    assert_eq!(getxattr(&ping, "trusted.overlay.opaque"), None);
    assert_eq!(
        getxattr(&t.path().join("etc"), "user.overlay.redirect"),
        None
    );
    assert_eq!(
        getxattr(&t.path().join("etc"), "trusted.other").as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(st.overlay_xattrs_stripped, 2);
}

#[test]
fn devices_are_made_as_root_and_skipped_rootless() {
    let t = TempDir::new("unpack-dev");
    let mut h = tar::Header::new_gnu();
    h.set_path("null").unwrap();
    h.set_entry_type(tar::EntryType::Char);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_size(0);
    h.set_cksum();
    let mut tar = Tar::default();
    tar.0.extend_from_slice(h.as_bytes());
    tar.file("after", b"x");
    let tar = tar.done();

    let rootless = t.path().join("rootless");
    std::fs::create_dir(&rootless).unwrap();
    let st = apply_with(
        &tar,
        &rootless,
        Apply::Layer(OverlayFlavour::User),
        false,
        &[],
    )
    .unwrap();
    assert_eq!(st.devices_skipped, 1);
    assert!(!rootless.join("null").exists());
    assert!(rootless.join("after").exists());
    if !is_root("devices_are_made_as_root_and_skipped_rootless (as root)") {
        return;
    }
    let rooted = t.path().join("root");
    std::fs::create_dir(&rooted).unwrap();
    let st = apply_with(
        &tar,
        &rooted,
        Apply::Layer(OverlayFlavour::Trusted),
        true,
        &[],
    )
    .unwrap();
    assert_eq!(st.devices_skipped, 0);
    let m = std::fs::symlink_metadata(rooted.join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(
        (
            libc::major(m.rdev()),
            libc::minor(m.rdev()),
            m.mode() & 0o7777
        ),
        (1, 3, 0o666)
    );
}

// ---------------------------------------------------------------------------------------------
// Hard links

#[test]
fn hardlinks_within_a_layer_and_into_an_earlier_one() {
    let t = TempDir::new("unpack-links");
    let l1 = t.path().join("l1");
    let l2 = t.path().join("l2");
    std::fs::create_dir(&l1).unwrap();
    std::fs::create_dir(&l2).unwrap();
    let tar1 = Tar::default()
        .pax(&[("SCHILY.xattr.user.tag", b"v")])
        .file_m(
            "usr/bin/tool",
            b"binary",
            &Meta {
                mode: 0o751,
                mtime: 42,
                ..Meta::default()
            },
        )
        .symlink("usr/bin/alias", "tool")
        .file("gone", b"g")
        .done();
    apply(&tar1, &l1).unwrap();
    let tar2 = Tar::default()
        .file("own", b"mine")
        .hardlink("own-link", "own")
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .hardlink("alias2", "usr/bin/alias")
        .done();
    let root = nix::unistd::geteuid().is_root();
    let st = apply_with(&tar2, &l2, root_flavour(), root, &[&l1]).unwrap();
    assert_eq!(st.hardlinks_copied, 2);
    let ino = |p: &str| std::fs::symlink_metadata(l2.join(p)).unwrap().ino();
    assert_eq!(ino("own"), ino("own-link"));
    assert_eq!(ino("usr/bin/tool"), ino("usr/bin/tool2"));
    let m = std::fs::metadata(l2.join("usr/bin/tool")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.mtime(), m.len()), (0o751, 42, 6));
    if user_xattrs(&l2) {
        assert_eq!(
            getxattr(&l2.join("usr/bin/tool"), "user.tag").as_deref(),
            Some(&b"v"[..])
        );
    }
    // a link to a symlink links the symlink itself
    assert_eq!(ino("alias2"), ino("usr/bin/alias"));
    assert_eq!(
        std::fs::read_link(l2.join("alias2")).unwrap(),
        Path::new("tool")
    );

    // A whiteout in this layer hides the lower target.
    let l3 = t.path().join("l3");
    std::fs::create_dir(&l3).unwrap();
    let tar3 = Tar::default()
        .wh(".wh.gone")
        .hardlink("again", "gone")
        .done();
    let r = apply_with(&tar3, &l3, root_flavour(), root, &[&l2, &l1]);
    assert_image_err(
        r,
        ImageErrorKind::Malformed,
        "again",
        "link to a deleted file",
    );

    // To a directory, to nothing: refused.
    let l4 = t.path().join("l4");
    std::fs::create_dir(&l4).unwrap();
    let r = apply_with(
        &Tar::default().dir("dir/").hardlink("dl", "dir").done(),
        &l4,
        root_flavour(),
        root,
        &[],
    );
    assert_image_err(r, ImageErrorKind::UnsafeEntry, "dl", "link to a directory");
    let r = apply_with(
        &Tar::default().hardlink("nl", "missing").done(),
        &l4,
        root_flavour(),
        root,
        &[&l1],
    );
    assert_image_err(r, ImageErrorKind::Malformed, "nl", "link to nothing");
}

// ---------------------------------------------------------------------------------------------
// Sparse files, GNU tar and umoci output

#[test]
fn a_gnu_sparse_file_keeps_its_holes() {
    let Some(gnutar) = common::in_path("tar") else {
        return skip("a_gnu_sparse_file_keeps_its_holes", "no tar in PATH");
    };
    let t = TempDir::new("unpack-sparse");
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = File::create(src.join("sparse")).unwrap();
    {
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"middle", 4 << 20).unwrap();
        f.write_all_at(b"end", (16 << 20) - 3).unwrap();
    }
    drop(f);
    let tarfile = t.path().join("layer.tar");
    let version = Command::new(&gnutar).arg("--version").output().unwrap();
    if !String::from_utf8_lossy(&version.stdout).contains("GNU tar") {
        return skip("a_gnu_sparse_file_keeps_its_holes", "tar is not GNU tar");
    }
    let out = Command::new(gnutar)
        .args(["--format=gnu", "-S", "-cf"])
        .arg(&tarfile)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&tarfile).unwrap();
    assert_eq!(bytes[156], b'S', "GNU tar did not write a sparse entry");
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let stats = apply(&bytes, &out).unwrap();
    // GNU tar stores the data regions in whole filesystem blocks.
    assert!(stats.bytes >= 9 && stats.bytes <= 16384, "{stats:?}");
    let m = std::fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(m.len(), 16 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "no holes: {} blocks",
        m.blocks()
    );
    assert_eq!(
        std::fs::read(out.join("sparse")).unwrap(),
        std::fs::read(src.join("sparse")).unwrap()
    );
}

/// The last layer of the image `layout:tag`, gunzipped.
fn last_layer(layout: &Path) -> Vec<u8> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let gz = std::fs::read(blob(layers.last().unwrap()["digest"].as_str().unwrap())).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn an_umoci_insert_layer_without_end_blocks_applies() {
    let Some(umoci) = common::in_path("umoci") else {
        return skip(
            "an_umoci_insert_layer_without_end_blocks_applies",
            "no umoci in PATH",
        );
    };
    let t = TempDir::new("unpack-umoci");
    let layout = t.path().join("oci");
    let image = format!("{}:t", layout.display());
    let run = |args: &[&str]| {
        let out = Command::new(&umoci).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init", "--layout", layout.to_str().unwrap()]);
    run(&["new", "--image", &image]);
    let src = t.path().join("payload");
    std::fs::write(&src, b"inserted by umoci\n").unwrap();
    run(&[
        "insert",
        "--image",
        &image,
        src.to_str().unwrap(),
        "/opt/payload",
    ]);
    let tar = last_layer(&layout);
    let ends_with_zero_blocks =
        tar.len() >= 1024 && tar[tar.len() - 1024..].iter().all(|b| *b == 0);
    eprintln!(
        "umoci insert layer: {} bytes, end blocks: {ends_with_zero_blocks}",
        tar.len()
    );
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    apply(&tar, &out).unwrap();
    assert_eq!(
        std::fs::read(out.join("opt/payload")).unwrap(),
        b"inserted by umoci\n"
    );

    // The same shape made by hand: no end blocks and no padding after the last entry.
    let mut cut = std::mem::take(&mut Tar::default().file("a", b"1").file("b", b"tail").0);
    cut.truncate(cut.len() - (512 - 4));
    let out2 = t.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    apply(&cut, &out2).unwrap();
    assert_eq!(std::fs::read(out2.join("b")).unwrap(), b"tail");
    // But data cut short is an error.
    let mut short = std::mem::take(&mut Tar::default().file("c", b"0123456789").0);
    short.truncate(512 + 4);
    let r = apply(&short, &out2);
    assert_image_err(r, ImageErrorKind::Malformed, "c", "truncated data");
}

#[test]
fn the_stream_is_read_to_its_end() {
    let t = TempDir::new("unpack-drain");
    // A global PAX header first (git archive writes one): ignored.
    let mut tar = Tar::default();
    let body = pax_record("comment", b"global");
    tar.raw(
        b"pax_global_header",
        b'g',
        b"",
        &Meta::default(),
        body.len() as u64,
        &body,
    );
    let mut tar = tar.file("a", b"1").done();
    tar.extend_from_slice(b"trailing bytes after the end-of-archive blocks");
    let mut reader = &tar[..];
    let fd = open_dir(t.path());
    unpack(
        &mut reader,
        fd.as_fd(),
        &mut || Ok(Vec::new()),
        UnpackOptions {
            apply: Apply::Flatten,
            chown: false,
        },
    )
    .unwrap();
    assert!(reader.is_empty(), "{} bytes left unread", reader.len());
    assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"1");
    assert!(!t.path().join("pax_global_header").exists());
}

// ---------------------------------------------------------------------------------------------
// Hostile layers

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    let t = TempDir::new("unpack-hostile");
    let canary = Canary::new(t.path());
    let c = canary.dir.display().to_string();
    let victim = format!("{c}/victim");
    let abs = format!("{c}/new");
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let d = t.path().join(format!("layer{n}"));
        std::fs::create_dir(&d).unwrap();
        d
    };
    let unsafe_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "../ path",
            Tar::default().file("../escape", b"x").done(),
            "../escape",
        ),
        (
            "a/../../ path",
            Tar::default().file("a/../../escape", b"x").done(),
            "a/../../escape",
        ),
        (
            "absolute path",
            Tar::default().file(&format!("{c}/new"), b"x").done(),
            &abs,
        ),
        (
            "//absolute",
            Tar::default().file("//etc/x", b"x").done(),
            "//etc/x",
        ),
        (
            "symlink then a file through it",
            Tar::default()
                .symlink("l", &c)
                .file("l/victim", b"pwned")
                .done(),
            "l/victim",
        ),
        (
            "symlink ../.. then a dir through it",
            Tar::default().symlink("up", "../..").dir("up/made/").done(),
            "up/made/",
        ),
        (
            "hardlink to /etc/shadow",
            Tar::default().hardlink("h", "/etc/shadow").done(),
            "h",
        ),
        (
            "hardlink to ../../etc/shadow",
            Tar::default().hardlink("h", "../../etc/shadow").done(),
            "h",
        ),
        (
            "hardlink through a symlink out",
            Tar::default()
                .symlink("l", &c)
                .hardlink("h", "l/victim")
                .done(),
            "h",
        ),
        (
            "symlinked parent inside the layer",
            Tar::default()
                .dir("real/")
                .symlink("s", "real")
                .file("s/x", b"x")
                .done(),
            "s/x",
        ),
        (
            "whiteout through a symlinked parent",
            Tar::default().symlink("l", &c).wh("l/.wh.victim").done(),
            "l/.wh.victim",
        ),
        (
            "opaque through a symlinked parent",
            Tar::default().symlink("l", &c).wh("l/.wh..wh..opq").done(),
            "l/.wh..wh..opq",
        ),
        (
            ".wh. with an empty name",
            Tar::default().wh("a/.wh.").done(),
            "a/.wh.",
        ),
        (
            ".wh... (dot-dot)",
            Tar::default().wh(".wh..").done(),
            ".wh..",
        ),
        (
            "/. as a symlink",
            Tar::default().symlink("/.", &c).file("victim", b"x").done(),
            "/.",
        ),
        (
            "./ as a symlink",
            Tar::default().symlink("./", &c).done(),
            "./",
        ),
        (". as a file", Tar::default().file(".", b"x").done(), "."),
        (
            "NUL in a PAX path",
            Tar::default()
                .pax(&[("path", b"a\0b")])
                .file("x", b"")
                .done(),
            "a\0b",
        ),
        (
            "a path through a whiteout name",
            Tar::default().file(".wh.x/y", b"").done(),
            ".wh.x/y",
        ),
    ];
    for (case, tar, entry) in unsafe_cases {
        for mode in [root_flavour(), Apply::Flatten] {
            let d = fresh();
            let r = apply_with(&tar, &d, mode, nix::unistd::geteuid().is_root(), &[]);
            assert_image_err(r, ImageErrorKind::UnsafeEntry, entry, case);
            canary.assert_untouched(case);
        }
    }

    // Replaced, never written through: a file, then a directory with mode 0777, over a
    // symlink that points out (RUSTSEC-2018-0002, RUSTSEC-2026-0067).
    let d = fresh();
    let tar = Tar::default()
        .symlink("f", &victim)
        .file("f", b"pwned")
        .symlink("d", &c)
        .dir_m(
            "d/",
            &Meta {
                mode: 0o777,
                ..Meta::default()
            },
        )
        .symlink("g", &victim)
        .pax(&[("SCHILY.xattr.user.x", b"y")])
        .dir_m(
            "g",
            &Meta {
                mode: 0o700,
                uid: 12345,
                ..Meta::default()
            },
        )
        .done();
    apply(&tar, &d).unwrap();
    assert_eq!(std::fs::read(d.join("f")).unwrap(), b"pwned");
    assert!(std::fs::symlink_metadata(d.join("d")).unwrap().is_dir());
    assert_eq!(
        std::fs::symlink_metadata(d.join("d")).unwrap().mode() & 0o7777,
        0o777
    );
    canary.assert_untouched("symlink replaced by a file and a directory");

    // Flattening onto a tree whose lower layer put a symlink out: the file replaces it.
    let d = fresh();
    apply_with(
        &Tar::default().symlink("etc", &c).done(),
        &d,
        Apply::Flatten,
        false,
        &[],
    )
    .unwrap();
    apply_with(
        &Tar::default().file("etc", b"replaced").done(),
        &d,
        Apply::Flatten,
        false,
        &[],
    )
    .unwrap();
    assert_eq!(std::fs::read(d.join("etc")).unwrap(), b"replaced");
    // A whiteout of the symlink removes the symlink, not what it points to.
    apply_with(
        &Tar::default().symlink("l2", &c).done(),
        &d,
        Apply::Flatten,
        false,
        &[],
    )
    .unwrap();
    apply_with(
        &Tar::default().wh(".wh.l2").done(),
        &d,
        Apply::Flatten,
        false,
        &[],
    )
    .unwrap();
    assert!(std::fs::symlink_metadata(d.join("l2")).is_err());
    canary.assert_untouched("flatten over symlinks");
    drop(t);
    if role().is_none() && nix::unistd::geteuid().is_root() {
        // The same, rootless (User flavour, no chown).
        common::assert_passes_as_nobody(
            "hostile_layers_are_refused_and_write_nothing_outside",
            "nobody",
            false,
        );
    }
}

#[test]
fn huge_metadata_headers_are_bounded() {
    let t = TempDir::new("unpack-huge");
    for ty in [b'L', b'K', b'x'] {
        // A header that claims 4 GiB of long name or PAX records, and nothing behind it.
        let mut tar = Tar::default();
        tar.raw(b"././@LongLink", ty, b"", &Meta::default(), 0, b"");
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes().copy_from_slice(&tar.0[..512]);
        h.set_size(4 << 30);
        h.set_cksum();
        let bytes = h.as_bytes().to_vec();
        let start = std::time::Instant::now();
        let r = apply(&bytes, t.path());
        match r {
            Err(Error::Image {
                kind: ImageErrorKind::Malformed,
                ref reason,
                ..
            }) => {
                assert!(reason.contains("4294967296"), "{reason}")
            }
            other => panic!("type {}: {other:?}", ty as char),
        }
        assert!(start.elapsed().as_secs() < 5);
    }
    // A checksum that does not match.
    let mut bad = Tar::default().file("x", b"1").done();
    bad[0] = b'y';
    match apply(&bad, t.path()) {
        Err(Error::Image {
            kind: ImageErrorKind::Malformed,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // A name longer than PATH_MAX (a 1 MiB-deep tree would make recursive removals deep).
    let deep = "d/".repeat(2100) + "f";
    match apply(&Tar::default().file(&deep, b"").done(), t.path()) {
        Err(Error::Image {
            kind: ImageErrorKind::Unsupported,
            entry: Some(e),
            ..
        }) => assert_eq!(e, Path::new(&deep)),
        other => panic!("{other:?}"),
    }
    assert!(!t.path().join("d").exists(), "nothing of it was made");
    // Two GNU long names for one entry.
    let mut two = Tar::default();
    two.raw(b"././@LongLink", b'L', b"", &Meta::default(), 2, b"a\0");
    two.raw(b"././@LongLink", b'L', b"", &Meta::default(), 2, b"b\0");
    two.file("c", b"");
    assert!(apply(&two.done(), t.path()).is_err());
}
