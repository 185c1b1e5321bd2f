//! Soak (as root): many containers started and reaped, then the same from many threads at
//! once, then concurrent imports of images that share layers. Afterwards this process and the
//! host are exactly as before: the same descriptors, mounts, cgroups, `contain*` temporary
//! directories and store contents, no child process; and the resident memory grew by less
//! than 5 MiB over the run.
//!
//! `CONTAIN_SOAK_COUNT` sets how many containers run one after another (default 1000, 200 in
//! the emulated qemu guest); `cargo xtask soak` runs this file alone with 10,000. The starts
//! take turns over five kinds: every namespace but user with no rootfs; a busybox rootfs on
//! an overlay; the same with contain-init as PID 1; a request from a warm pool; an imported
//! image (when umoci is installed to make one). Where cgroup v2 has the pids controller, the
//! rootfs kind also gets a cgroup of its own with `pids.max`.
//!
//! One test function on purpose: the before-and-after comparisons would see other tests.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::busybox::BusyboxRootfs;
use common::TempDir;
use contain::cgroup::Resources;
use contain::image::{Image, ImageCommand, Store};
use contain::namespace::Namespaces;
use contain::pool::Pool;
use contain::process::Container;
use contain::rootfs::Rootfs;

/// What a run may leak, by name.
#[derive(Debug, PartialEq, Eq)]
struct World {
    /// What each descriptor is, sorted (the numbers of the pool's pidfds, and the inodes of
    /// its standbys' sockets, change as its slots are replaced).
    fds: Vec<String>,
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<PathBuf>,
    temp: BTreeSet<String>,
    store: BTreeSet<PathBuf>,
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every directory below `dir` (cgroups), or every path (a store), recursively.
fn tree(dir: &Path, dirs_only: bool, out: &mut BTreeSet<PathBuf>) {
    let Ok(d) = std::fs::read_dir(dir) else {
        return;
    };
    for e in d.filter_map(|e| e.ok()) {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() || !dirs_only {
            out.insert(e.path());
        }
        if t.is_dir() {
            tree(&e.path(), dirs_only, out);
        }
    }
}

fn world(store: &Path) -> World {
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            let target = target.display().to_string();
            match target.starts_with("socket:[") {
                true => "socket:[...]".to_string(),
                false => target,
            }
        })
        // The directory stream that lists them.
        .filter(|s| !s.starts_with("/proc/") || !s.ends_with("/fd"))
        .collect::<Vec<_>>();
    let mut fds = fds;
    fds.sort();
    let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap();
    let mounts = contain::mountinfo::parse(&mountinfo)
        .unwrap()
        .into_iter()
        .map(|m| {
            format!(
                "{} {}",
                m.mount_point.display(),
                m.fs_type.to_string_lossy()
            )
        })
        .collect();
    let mut cgroups = BTreeSet::new();
    if let Ok(root) = contain::cgroup::Cgroup::root() {
        tree(root.path(), true, &mut cgroups);
    }
    let mut store_paths = BTreeSet::new();
    tree(store, false, &mut store_paths);
    World {
        fds,
        mounts,
        cgroups,
        temp: entries(&std::env::temp_dir())
            .into_iter()
            .filter(|n| n.starts_with("contain"))
            .collect(),
        store: store_paths,
    }
}

impl World {
    /// What differs from `before`, one line per field, for the failure message.
    fn changes(&self, before: &World) -> String {
        fn diff<T: Ord + std::fmt::Debug + Clone>(a: &[T], b: &[T]) -> String {
            let (a, b): (BTreeSet<T>, BTreeSet<T>) =
                (a.iter().cloned().collect(), b.iter().cloned().collect());
            format!(
                "gone {:?}, new {:?}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            )
        }
        let v = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        let p = |s: &BTreeSet<PathBuf>| s.iter().cloned().collect::<Vec<_>>();
        format!(
            "fds ({} -> {}): {}\nmounts: {}\ncgroups: {}\ntemp: {}\nstore: {}",
            before.fds.len(),
            self.fds.len(),
            diff(&before.fds, &self.fds),
            diff(&v(&before.mounts), &v(&self.mounts)),
            diff(&p(&before.cgroups), &p(&self.cgroups)),
            diff(&v(&before.temp), &v(&self.temp)),
            diff(&p(&before.store), &p(&self.store)),
        )
    }
}

/// Checks that the world is as `before`, saying what changed.
fn check_world(store: &Path, before: &World, when: &str) {
    let now = world(store);
    assert!(now == *before, "{when}:\n{}", now.changes(before));
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// This process's children (of every thread), with their state letter: the pool's slot
/// holders are among them while the pool lives.
fn children() -> BTreeSet<(i32, char)> {
    let me = std::process::id().to_string();
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let (state, ppid) = (fields.next(), fields.next());
        if ppid == Some(me.as_str()) {
            let pid = head
                .split(' ')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            out.insert((pid, state.and_then(|s| s.chars().next()).unwrap_or('?')));
        }
    }
    out
}

/// No zombie, and as many children as `before` (the pool's holders, replaced as used).
fn check_children(before: usize, when: &str) {
    let now = children();
    assert!(
        now.iter().all(|(_, s)| *s != 'Z'),
        "{when}: a zombie child: {now:?}"
    );
    assert_eq!(now.len(), before, "{when}: children {now:?}");
}

/// The kinds of start, and what they need.
struct Kinds {
    plain: Container,
    rootfs: Container,
    init: Container,
    pool: Pool,
    image: Option<Container>,
}

impl Kinds {
    fn count(&self) -> usize {
        4 + usize::from(self.image.is_some())
    }

    /// Start `i`'s kind, wait, and check that `/bin/true` (or `true`) succeeded.
    fn run(&self, i: usize) -> Result<(), String> {
        let status = match i % self.count() {
            0 => self.plain.spawn().and_then(|mut c| c.wait()),
            1 => self.rootfs.spawn().and_then(|mut c| c.wait()),
            2 => self.init.spawn().and_then(|mut c| c.wait()),
            3 => self
                .pool
                .spawn(Container::new("/bin/true"))
                .and_then(|mut c| c.wait()),
            _ => self
                .image
                .as_ref()
                .unwrap()
                .spawn()
                .and_then(|mut c| c.wait()),
        };
        match status {
            Ok(st) if st.success() => Ok(()),
            Ok(st) => Err(format!("start {i}: {st:?}")),
            Err(e) => Err(format!("start {i}: {e}")),
        }
    }
}

fn image_container(dir: &Path) -> Option<(common::oci::Layout, Store, Image)> {
    if !common::oci::tool("soak", "umoci") {
        return None;
    }
    let layout = common::oci::Layout::new("soak");
    let store = Store::open(dir.join("store")).unwrap();
    let image = store
        .import(&layout.reference("app"), Some("soak:1"))
        .unwrap();
    Some((layout, store, image))
}

#[test]
fn many_starts_in_turn_and_at_once_leave_nothing_behind() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let in_vm = std::env::var_os("CONTAIN_IN_VM").is_some();
    let count: usize = std::env::var("CONTAIN_SOAK_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if in_vm { 200 } else { 1000 });
    let dir = TempDir::new("soak");
    let busybox = BusyboxRootfs::new("soak");
    let all = Namespaces::all() - Namespaces::USER;
    let with_rootfs = || {
        Container::new("/bin/true")
            .namespaces(all)
            .rootfs(Rootfs::new(busybox.root()))
    };
    let limits = Resources::new().pids_max(64);
    let rootfs = match with_rootfs().resources(limits.clone()).spawn() {
        Ok(mut c) => {
            assert!(c.wait().unwrap().success());
            with_rootfs().resources(limits)
        }
        Err(e) => {
            eprintln!("soak: the rootfs kind runs without a cgroup: {e}");
            with_rootfs()
        }
    };
    let imported = image_container(dir.path());
    let kinds = Arc::new(Kinds {
        plain: Container::new("/bin/true").namespaces(all),
        rootfs,
        init: with_rootfs().init(true),
        pool: Pool::new(
            Container::new("unused")
                .namespaces(all - Namespaces::TIME)
                .rootfs(Rootfs::new(busybox.root())),
            2,
        )
        .unwrap(),
        image: imported.as_ref().map(|(_, _, image)| {
            image
                .container(&ImageCommand::args(["true"]))
                .unwrap()
                .namespaces(all)
        }),
    });
    let store_dir = imported
        .as_ref()
        .map_or(dir.path().join("no-store"), |(_, s, _)| {
            s.root().to_path_buf()
        });

    // Warm up (the allocator's and the kernel's caches, the pool), then measure.
    for i in 0..kinds.count() * 4 {
        kinds.run(i).unwrap();
    }
    assert!(kinds.pool.wait_ready(Duration::from_secs(60)).unwrap());
    let before = world(&store_dir);
    let holders = children().len();
    let rss_before = rss_kib();

    let started = Instant::now();
    for i in 0..count {
        kinds.run(i).unwrap();
    }
    let in_turn = started.elapsed();
    assert!(kinds.pool.wait_ready(Duration::from_secs(60)).unwrap());
    let rss_after = rss_kib();
    check_world(
        &store_dir,
        &before,
        &format!("after {count} starts in turn"),
    );
    check_children(holders, &format!("after {count} starts in turn"));
    assert!(
        rss_after < rss_before + 5 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over {count} starts"
    );

    // 64 threads at once, each starting every kind.
    let threads = 64;
    let per_thread = kinds.count() * 2;
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let kinds = Arc::clone(&kinds);
                s.spawn(move || {
                    (0..per_thread)
                        .filter_map(|i| kinds.run(t + i).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let at_once = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(kinds.pool.wait_ready(Duration::from_secs(120)).unwrap());
    check_world(&store_dir, &before, &format!("after {threads} threads"));
    check_children(holders, &format!("after {threads} threads"));
    eprintln!(
        "soak: {count} starts in turn in {:.1} s, {} from {threads} threads in {:.1} s; RSS \
         {rss_before} -> {rss_after} KiB",
        in_turn.as_secs_f64(),
        threads * per_thread,
        at_once.as_secs_f64()
    );

    // 16 imports at once of images that share their base layer, into a fresh store.
    if let Some((layout, _, _)) = &imported {
        let store = Store::open(dir.path().join("concurrent-store")).unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let store = &store;
                    let tag = if i % 2 == 0 { "app" } else { "base" };
                    s.spawn(move || store.import(&layout.reference(tag), Some(&format!("c{i}:1"))))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, r) in results.iter().enumerate() {
            assert!(r.is_ok(), "import {i}: {:?}", r.as_ref().err());
        }
        // Two images under 16 names; two layers between them (app's first is base's).
        let summaries = store.images().unwrap();
        assert_eq!(summaries.len(), 2, "{summaries:?}");
        let names: usize = summaries.iter().map(|s| s.names.len()).sum();
        assert_eq!(names, 16, "{summaries:?}");
        let layers: BTreeSet<_> = results
            .iter()
            .flatten()
            .flat_map(|i| i.layers().iter().map(|l| l.chain_id.to_string()))
            .collect();
        assert_eq!(layers.len(), 2, "{layers:?}");
        assert!(
            entries(&store.root().join("tmp")).is_empty(),
            "the store's tmp holds {:?}",
            entries(&store.root().join("tmp"))
        );
        let run = results[0]
            .as_ref()
            .unwrap()
            .container(&ImageCommand::args(["true"]))
            .unwrap()
            .namespaces(all);
        assert!(run.spawn().unwrap().wait().unwrap().success());
    }
}
