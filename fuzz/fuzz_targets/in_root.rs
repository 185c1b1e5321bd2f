//! Fuzzes path resolution inside a root: a tree of directories, files and symbolic links
//! (their targets anything: `/`, `../..`, `../sibling`, loops) is made in `root/` from the
//! input, then a tmpfs is mounted at a path of the input *inside* that root
//! (`Mount::mount_in`, which resolves the target with `openat2(RESOLVE_IN_ROOT)` and creates
//! what is missing, as every mount of a container's rootfs is made). Whatever the tree and
//! the path, the mount must land inside `root/` and nothing may be created outside it: the
//! directory beside it stays empty, and nothing else appears next to them.
//!
//! The input is lines: the first is the mount target, each other one an entry made before:
//! `d NAME`, `f NAME` or `l NAME TARGET`. Names are relative; an entry whose parent is not a
//! directory made here is skipped (so that making the tree never follows a link itself).
//! Runs as root, in a mount namespace of its own (made at the first input) in which `/` is
//! private: nothing is mounted in the host's.
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use contain::mount::{self, Mount};
use contain::namespace::{self, Namespaces};
use libfuzzer_sys::fuzz_target;

#[path = "common/confine.rs"]
mod confine;

/// This process's scratch directory, in its own mount namespace (see `layer` for the path).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Confined (`cargo xtask fuzz`): in a read-only mount namespace already.
        confine::confine();
        if std::env::var_os("CONTAIN_FUZZ_WRITABLE").is_none() {
            namespace::unshare(Namespaces::MOUNT).expect("unshare(CLONE_NEWNS): run as root");
            mount::make_rprivate("/").expect("make / private");
        }
        let parent = std::env::var_os("CONTAIN_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = parent.join(format!("contain-fuzz-in-root-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// `name` as a path below `root` whose parents are all directories made here, or `None`.
fn entry_path(root: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if name.is_empty()
        || name.contains('\0')
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(n) if n.len() < 256))
    {
        return None;
    }
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len() - 1] {
        at.push(c);
        let is_dir = fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_dir());
        if !is_dir {
            return None;
        }
    }
    Some(root.join(rel))
}

/// The mounts at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read("/proc/self/mountinfo").unwrap();
    let mut points: Vec<PathBuf> = contain::mountinfo::parse(&text)
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.reverse();
    points
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let Some(target) = lines.next() else { return };
    if target.contains('\0') || target.len() > 4096 {
        return;
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let base = scratch().join(N.fetch_add(1, Ordering::Relaxed).to_string());
    let root = base.join("root");
    let sibling = base.join("sibling");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir(&sibling).unwrap();
    for line in lines.take(32) {
        let mut words = line.splitn(3, ' ');
        let (kind, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let Some(path) = entry_path(&root, name) else {
            continue;
        };
        let _ = match (kind, words.next()) {
            ("d", None) => fs::create_dir(&path),
            // O_CREAT | O_EXCL: never through a link this input made.
            ("f", None) => fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map(drop),
            ("l", Some(to)) if !to.contains('\0') => symlink(to, &path),
            _ => continue,
        };
    }

    let root_fd = fs::File::open(&root).unwrap();
    let inside = if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    };
    let mounted = Mount::tmpfs(inside).mount_in(&root_fd).is_ok();
    drop(root_fd);

    let below = mounts_below(&base);
    for point in &below {
        assert!(
            point.starts_with(&root),
            "{target:?} was mounted at {point:?}, outside the root"
        );
        mount::detach(point).unwrap();
    }
    assert_eq!(
        mounted,
        !below.is_empty(),
        "{target:?}: mounted {mounted}, mounts {below:?}"
    );
    assert_eq!(
        fs::read_dir(&sibling).unwrap().count(),
        0,
        "{target:?}: written beside the root"
    );
    assert_eq!(
        fs::read_dir(&base).unwrap().count(),
        2,
        "{target:?}: entries beside the root"
    );
    assert_eq!(
        fs::read_dir(scratch()).unwrap().count(),
        1,
        "{target:?}: beside this input"
    );
    fs::remove_dir_all(&base).unwrap();
});
