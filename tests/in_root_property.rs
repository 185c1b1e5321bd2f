//! Property (as root): for random trees of directories, files and symbolic links made in a
//! root — link targets absolute, relative, `..`-laden, into the directory beside the root,
//! looping — a tmpfs mounted at a random path inside the root (`Mount::mount_in`, which
//! resolves it with `openat2(RESOLVE_IN_ROOT)` and creates what is missing, as every mount of
//! a container's rootfs is made) lands inside the root, and nothing is created outside it.
//! The `in_root` fuzz target checks the same on inputs libFuzzer grows.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::TempDir;
use contain::mount::{self, Mount};
use contain::namespace::{self, Namespaces};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Entry {
    Dir(String),
    File(String),
    Link(String, String),
}

fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "etc", "x"], 1..=3).prop_map(|v| v.join("/"))
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just("../..".to_string()),
        Just("../../sibling".to_string()),
        Just("/../sibling".to_string()),
        Just("/etc".to_string()),
        name(),
        name().prop_map(|n| format!("../{n}")),
        name().prop_map(|n| format!("/{n}")),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        2 => name().prop_map(Entry::Dir),
        1 => name().prop_map(Entry::File),
        3 => (name(), target()).prop_map(|(n, t)| Entry::Link(n, t)),
    ]
}

/// Makes `entries` under `root`, each only where every parent is a directory made here (so
/// that making the tree never follows a link itself).
fn make(root: &Path, entries: &[Entry]) {
    for e in entries {
        let (Entry::Dir(n) | Entry::File(n) | Entry::Link(n, _)) = e;
        let parents_are_dirs = Path::new(n).ancestors().skip(1).all(|p| {
            p.as_os_str().is_empty()
                || fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.file_type().is_dir())
        });
        if !parents_are_dirs {
            continue;
        }
        let path = root.join(n);
        // Never through a link: mkdir and symlink do not follow one, and the file is made
        // with O_CREAT | O_EXCL, which fails on any existing name, a link included.
        let _ = match e {
            Entry::Dir(_) => fs::create_dir(&path),
            Entry::File(_) => fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map(drop),
            Entry::Link(_, t) => symlink(t, &path),
        };
    }
}

/// The mount points at or below `dir`.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    // This thread's mount namespace (/proc/self is the process's main thread's).
    let text = fs::read("/proc/thread-self/mountinfo").unwrap();
    contain::mountinfo::parse(&text)
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_mount_inside_a_root_of_hostile_links_stays_inside(
        entries in proptest::collection::vec(entry(), 0..10),
        at in name(),
    ) {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (mounts)");
            return Ok(());
        }
        let dir = TempDir::new("in-root");
        let root = dir.path().join("root");
        let sibling = dir.path().join("sibling");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&sibling).unwrap();
        make(&root, &entries);
        let (root2, dir2) = (root.clone(), dir.path().to_path_buf());
        let target = format!("/{at}");
        // In a mount namespace of a thread of its own: nothing reaches the host's.
        let (mounted, below) = std::thread::spawn(move || {
            namespace::unshare(Namespaces::MOUNT).unwrap();
            mount::make_rprivate("/").unwrap();
            let root_fd = fs::File::open(&root2).unwrap();
            let mounted = Mount::tmpfs(&target).mount_in(&root_fd).is_ok();
            let below = mounts_below(&dir2);
            for p in below.iter().rev() {
                mount::detach(p).unwrap();
            }
            (mounted, below)
        })
        .join()
        .unwrap();
        for p in &below {
            prop_assert!(p.starts_with(&root), "/{} mounted at {:?}: {:?}", at, p, entries);
        }
        prop_assert_eq!(mounted, !below.is_empty());
        prop_assert_eq!(fs::read_dir(&sibling).unwrap().count(), 0, "written beside: {:?}", entries);
        prop_assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "beside the root: {:?}", entries);
    }
}
