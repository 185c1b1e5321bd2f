//! Hostile inputs against the image code, one test per defect found in review: layers whose
//! hard links copy up a sparse lower file, implicit parents replaced later in the layer,
//! entries whose PAX and GNU names disagree, a store opened while a build runs, and a RUN
//! step that turns the upper's `/etc` into a link to the host.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::TempDir;
use contain::image::build::BuildOptions;
use contain::image::unpack::{unpack, Apply, UnpackOptions, UnpackStats};
use contain::image::{OverlayFlavour, Store};
use contain::{Error, ImageErrorKind};

// ---------------------------------------------------------------------------------------------
// Tars byte by byte.

#[derive(Default)]
struct Tar(Vec<u8>);

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
    fn header(&mut self, h: &mut tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn raw(&mut self, name: &[u8], ty: u8, link: &[u8], mode: u32, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(ty));
        self.header(&mut h, data)
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), b'0', b"", 0o644, data)
    }
    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name.as_bytes(), b'5', b"", mode, b"")
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name.as_bytes(), b'1', target.as_bytes(), 0o644, b"")
    }
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.raw(b"PaxHeaders/x", b'x', b"", 0o644, &body)
    }
    fn long_name(&mut self, name: &str) -> &mut Self {
        let mut body = name.as_bytes().to_vec();
        body.push(0);
        self.raw(b"././@LongLink", b'L', b"", 0o644, &body)
    }
    /// An old-GNU sparse file (`S`) of `real` bytes whose only data is `data` at offset 0.
    fn sparse(&mut self, name: &str, real: u64, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::GNUSparse);
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.set_real_size(real);
            gnu.sparse[0].set_offset(0);
            gnu.sparse[0].set_length(data.len() as u64);
        }
        self.header(&mut h, data)
    }
    fn done(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    File::open(p)
        .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
        .into()
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn flavour() -> Apply {
    Apply::Layer(if root() {
        OverlayFlavour::Trusted
    } else {
        OverlayFlavour::User
    })
}

/// Applies `tar` to `dir` as a layer over `lowers` (top first).
fn apply(tar: &[u8], dir: &Path, lowers: &[&Path]) -> contain::Result<UnpackStats> {
    let fd = open_dir(dir);
    let lower: Vec<PathBuf> = lowers.iter().map(|p| p.to_path_buf()).collect();
    let mut open_lowers = move || Ok(lower.iter().map(|p| open_dir(p)).collect());
    unpack(
        &mut &tar[..],
        fd.as_fd(),
        &mut open_lowers,
        UnpackOptions {
            apply: flavour(),
            chown: root(),
        },
    )
}

fn mkdir(p: &Path) -> PathBuf {
    std::fs::create_dir(p).unwrap();
    p.to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Unpack

/// A hard link to a file of a lower layer copies the file up; a sparse file of 256 MiB that
/// holds 512 bytes must not become 256 MiB of zeros on disk (a few hundred bytes of tar
/// asking for terabytes, else).
#[test]
fn a_hardlink_into_a_sparse_lower_file_copies_it_with_its_holes() {
    let t = TempDir::new("hostile-sparse-copyup");
    let (l1, l2) = (mkdir(&t.path().join("l1")), mkdir(&t.path().join("l2")));
    let real = 256 << 20;
    apply(
        &Tar::default().sparse("big", real, &[7u8; 512]).done(),
        &l1,
        &[],
    )
    .unwrap();
    assert!(std::fs::metadata(l1.join("big")).unwrap().blocks() * 512 < 1 << 20);
    let stats = apply(&Tar::default().hardlink("link", "big").done(), &l2, &[&l1]).unwrap();
    assert_eq!(stats.hardlinks_copied, 1);
    let m = std::fs::metadata(l2.join("link")).unwrap();
    assert_eq!(m.len(), real);
    assert_eq!(m.nlink(), 2, "link and big are one file");
    assert!(
        m.blocks() * 512 < 1 << 20,
        "the copy-up filled the holes: {} bytes allocated",
        m.blocks() * 512
    );
    let head = {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 1024];
        File::open(l2.join("link"))
            .unwrap()
            .read_exact_at(&mut b, 0)
            .unwrap();
        b
    };
    assert_eq!(head[..512], [7u8; 512]);
    assert_eq!(head[512..], [0u8; 512]);
}

/// `a/x` makes the parent `a` (which takes the attributes of the lower layer's `a`), then the
/// entry `a` replaces it with a file: a valid layer (a duplicate name, the last one wins).
#[test]
fn an_implicit_parent_replaced_later_in_the_layer_applies() {
    let t = TempDir::new("hostile-implicit-replaced");
    let (l1, l2) = (mkdir(&t.path().join("l1")), mkdir(&t.path().join("l2")));
    apply(&Tar::default().dir("a", 0o750).done(), &l1, &[]).unwrap();
    let tar = Tar::default().file("a/x", b"x").file("a", b"file").done();
    apply(&tar, &l2, &[&l1]).unwrap();
    let m = std::fs::symlink_metadata(l2.join("a")).unwrap();
    assert!(m.is_file(), "{m:?}");
    assert_eq!(std::fs::read(l2.join("a")).unwrap(), b"file");
}

/// A layer of entries with deep parents that the tar does not list (`0/a/a/.../a/f`, 2000
/// levels, each chain distinct): each entry makes 2000 directories, and setting their modes
/// and times at the end (and looking for their attributes in the layers below) walked each
/// one's path from the root: 20 such entries (100 KiB of tar) took 470 s in a release build.
/// Compared with as many directories made shallow (`i/j/f`), so that the bound holds on a
/// slow machine (a VM without KVM) too: the square of the depth took 9 times as long here
/// (75 s, 8 s), a linear walk takes as long (3.4 s, 3.5 s).
#[test]
fn deep_implicit_parents_cost_linear_time() {
    let t = TempDir::new("hostile-deep");
    let l1 = mkdir(&t.path().join("l1"));
    apply(&Tar::default().dir("other", 0o755).done(), &l1, &[]).unwrap();
    let timed = |tar: &[u8], name: &str| {
        let l = mkdir(&t.path().join(name));
        let start = std::time::Instant::now();
        let stats = apply(tar, &l, &[&l1]).unwrap();
        (start.elapsed(), stats, l)
    };
    let mut deep = Tar::default();
    let mut shallow = Tar::default();
    for i in 0..4 {
        let mut p = format!("{i}/").into_bytes();
        while p.len() < 4000 {
            p.extend_from_slice(b"a/");
        }
        p.push(b'f');
        deep.pax(&[("path", &p)]).file("f", b"");
        for j in 0..2000 {
            shallow.file(&format!("{i}/{j}/f"), b"");
        }
    }
    let (shallow_took, _, _) = timed(&shallow.done(), "shallow");
    let (deep_took, stats, l2) = timed(&deep.done(), "deep");
    assert_eq!(stats.entries, 4);
    assert!(
        deep_took < shallow_took * 4 + std::time::Duration::from_secs(1),
        "4 deep entries took {deep_took:?}, 8000 shallow directories {shallow_took:?}"
    );
    // The chains are there, with the default mode.
    let mut p = l2.join("3");
    for _ in 0..10 {
        p.push("a");
    }
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o755
    );
}

fn assert_malformed(r: contain::Result<UnpackStats>) {
    match r {
        Err(Error::Image {
            kind: ImageErrorKind::Malformed,
            ..
        }) => {}
        other => panic!("expected a Malformed error, got {other:?}"),
    }
}

/// GNU tar takes the PAX `path` over a GNU long name, Go's archive/tar (containerd, most
/// scanners) the GNU long name over the PAX `path`: an entry carrying both, different, is
/// two different files to two readers, and is refused.
#[test]
fn an_entry_whose_pax_path_and_gnu_long_name_disagree_is_refused() {
    let t = TempDir::new("hostile-pax-gnu");
    let l = mkdir(&t.path().join("l"));
    let tar = Tar::default()
        .pax(&[("path", b"pax-name")])
        .long_name("gnu-name")
        .file("short", b"x")
        .done();
    assert_malformed(apply(&tar, &l, &[]));
    assert!(!l.join("pax-name").exists() && !l.join("gnu-name").exists());
    // The same link target twice is no ambiguity.
    let l2 = mkdir(&t.path().join("l2"));
    let tar = Tar::default()
        .pax(&[("path", b"same")])
        .long_name("same")
        .file("short", b"x")
        .done();
    apply(&tar, &l2, &[]).unwrap();
    assert_eq!(std::fs::read(l2.join("same")).unwrap(), b"x");
}

/// An empty PAX `path` deletes the record (POSIX pax "extended header": "If the value field is
/// zero length, it shall delete any header block field [...] of the same name"; Go keeps the
/// header's name): the entry is the header's `tmp`, not the layer's root.
#[test]
fn an_empty_pax_path_names_the_header_entry_not_the_root() {
    let t = TempDir::new("hostile-pax-empty");
    let l = mkdir(&t.path().join("l"));
    std::fs::set_permissions(&l, PermissionsExt::from_mode(0o755)).unwrap();
    let tar = Tar::default()
        .pax(&[("path", b"")])
        .dir("tmp", 0o1777)
        .done();
    apply(&tar, &l, &[]).unwrap();
    let m = std::fs::metadata(l.join("tmp")).expect("tmp made");
    assert_eq!(m.permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        std::fs::metadata(&l).unwrap().permissions().mode() & 0o7777,
        0o755,
        "the root took the entry's mode"
    );
}

// ---------------------------------------------------------------------------------------------
// Store and build (root: builds run as root)

/// A store with `mini:1` imported: `/bin/busybox` and a FIFO `/fifo`, no `/etc`, `/proc`...
/// Returns the store and the FIFO's path in its layer directory.
fn mini_store(dir: &Path) -> (Store, PathBuf) {
    let busybox = common::busybox::busybox();
    let tar = Tar::default()
        .dir("bin", 0o755)
        .raw(b"bin/busybox", b'0', b"", 0o755, busybox)
        .raw(b"fifo", b'6', b"", 0o666, b"")
        .done();
    let layout = common::oci::one_layer_layout(dir, "mini", &tar, None);
    let store = Store::open(dir.join("store")).unwrap();
    let image = store
        .import(
            &format!("{}", layout.display()).parse().unwrap(),
            Some("mini:1"),
        )
        .unwrap();
    let fifo = image.layers()[0].dir.join("fifo");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    (store, fifo)
}

fn context(dir: &Path, containerfile: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), containerfile).unwrap();
    ctx
}

/// Waits (inotify, no polling) until `name` exists in `dir`, or `dir` goes away (`false`).
fn wait_for(dir: &Path, name: &dyn Fn(&str) -> bool) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain syscalls on a descriptor of ours, closed on every path out.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC);
        assert!(fd >= 0);
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_DELETE_SELF;
        let found = if libc::inotify_add_watch(fd, path.as_ptr(), mask) < 0 {
            None
        } else {
            let existing = || {
                std::fs::read_dir(dir)
                    .ok()?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| name(n))
            };
            let mut found = existing();
            let mut buf = [0u8; 4096];
            while found.is_none() {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                assert!(n > 0, "inotify read");
                if !dir.exists() {
                    break;
                }
                found = existing();
            }
            found
        };
        libc::close(fd);
        found
    }
}

/// `Store::open` removes what killed imports and builds left in `tmp/`. Opening the store
/// while a build runs (another process listing images, say) must not remove the running
/// build's directory (its RUN's upper layer).
#[test]
fn opening_the_store_during_a_build_keeps_the_build_directory() {
    let t = "opening_the_store_during_a_build_keeps_the_build_directory";
    if !common::is_root(t) {
        return;
    }
    let d = TempDir::new("hostile-open-during-build");
    let (store, _) = mini_store(d.path());
    // The RUN says it started (a file in its upper), then waits on the image's FIFO, which
    // only its mount namespace shows as that pipe (overlayfs gives special files their own
    // inode): the test writes to it through /proc/PID/root.
    let ctx = context(
        d.path(),
        "FROM mini:1\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo > /started && read x < /fifo && echo $x > /out\"]\n",
    );
    let tmp = store.root().join("tmp");
    let tid = std::sync::atomic::AtomicI32::new(0);
    let (kept, built) = std::thread::scope(|s| {
        let build = s.spawn(|| {
            tid.store(
                nix::unistd::gettid().as_raw(),
                std::sync::atomic::Ordering::SeqCst,
            );
            let r = store.build(&BuildOptions::new(&ctx), &|_| {});
            if r.is_err() {
                // Wakes the waits below.
                let _ = std::fs::create_dir(store.root().join("tmp/failed.build.0"));
            }
            r
        });
        let work = wait_for(&tmp, &|n| n.contains(".build.")).unwrap();
        let kept = (|| {
            if work == "failed.build.0" {
                return None;
            }
            let upper = tmp.join(&work).join("upper");
            wait_for(&tmp.join(&work), &|n| n == "upper")?;
            wait_for(&upper, &|n| n == "started")?;
            let tid = tid.load(std::sync::atomic::Ordering::SeqCst);
            let children =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).unwrap();
            // Opens once the RUN reads the FIFO.
            let mut w = children
                .split_whitespace()
                .find_map(|pid| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(format!("/proc/{pid}/root/fifo"))
                        .ok()
                })
                .expect("the RUN's FIFO");
            Store::open(store.root()).unwrap();
            let kept = tmp.join(&work).exists();
            use std::io::Write;
            let _ = w.write_all(b"ran\n");
            Some(kept)
        })();
        (kept, build.join().unwrap())
    });
    assert_eq!(
        kept,
        Some(true),
        "Store::open removed a running build's files: {built:?}"
    );
    let image = built.unwrap();
    let top = &image.layers().last().unwrap().dir;
    assert_eq!(std::fs::read(top.join("out")).unwrap(), b"ran\n");
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_none(),
        "the build left temporaries"
    );
}

/// The mount-point stubs a RUN leaves (`/etc/hosts`... in an image without `/etc`) are
/// removed from the upper afterwards. A RUN that makes the upper's `etc` a symbolic link to a
/// host directory must not make that cleanup delete the host's files there.
#[test]
fn a_run_step_cannot_point_the_stub_cleanup_at_host_files() {
    let t = "a_run_step_cannot_point_the_stub_cleanup_at_host_files";
    if !common::is_root(t) {
        return;
    }
    let d = TempDir::new("hostile-stubs");
    let (store, _fifo) = mini_store(d.path());
    let canary = d.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    for f in ["hosts", "hostname", "resolv.conf"] {
        File::create(canary.join(f)).unwrap();
    }
    let script = format!(
        "/bin/busybox mv /etc /etc.moved && /bin/busybox ln -s {} /etc",
        canary.display()
    );
    let ctx = context(
        d.path(),
        &format!("FROM mini:1\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"{script}\"]\n"),
    );
    let built = store.build(&BuildOptions::new(&ctx), &|_| {});
    for f in ["hosts", "hostname", "resolv.conf"] {
        assert!(
            canary.join(f).exists(),
            "the build removed the host's {} ({built:?})",
            canary.join(f).display()
        );
    }
    let image = built.unwrap();
    let top = &image.layers().last().unwrap().dir;
    assert_eq!(
        std::fs::read_link(top.join("etc")).unwrap(),
        canary,
        "the RUN's own link is its layer's"
    );
}
