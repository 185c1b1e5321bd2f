//! The child SIGKILLed during its own setup (as root). Its own test binary, with one test:
//! it kills whichever new child of this process appears, which other tests running in
//! parallel threads would have too.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::busybox::BusyboxRootfs;
use common::procs::reap_all;
use common::{is_root, role};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::Rootfs;

/// The pids of this process's children (every thread's), from /proc.
fn children_of_us() -> BTreeSet<u32> {
    let me = std::process::id().to_string();
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if rest.split(' ').nth(1) == Some(me.as_str()) {
            if let Some(pid) = head.split(' ').next().and_then(|p| p.parse().ok()) {
                out.insert(pid);
            }
        }
    }
    out
}

/// The child SIGKILLed during its own setup (by a thread that watches for it to appear):
/// `spawn` returns, as an error or as a child whose status says SIGKILL, and nothing is left
/// (no mount, no temporary directory, no child). The setup is made long (64 tmpfs mounts)
/// so that the kill lands in it; the command, had it run, would print a line, so the test
/// knows which kills came before the exec and requires some did.
#[test]
fn the_child_killed_during_its_setup_leaves_nothing() {
    const TEST: &str = "the_child_killed_during_its_setup_leaves_nothing";
    if role().is_some() || !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("faults-setup");
    let mut rootfs = Rootfs::new(image.root());
    for i in 0..64 {
        rootfs = rootfs.mount(contain::mount::Mount::tmpfs(format!("/tmp/m{i}")));
    }
    let c = Container::new("/bin/echo")
        .arg("ran")
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(rootfs)
        .stdout(contain::process::Stdio::Piped);
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count()
    };
    let before = mounts();
    let mut before_exec = 0;
    for _ in 0..20 {
        let known = children_of_us();
        let watcher = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Some(pid) = children_of_us().difference(&known).next() {
                    // SAFETY: kill(2) of a child of ours that is not reaped yet (it cannot be:
                    // the spawning thread waits on its error pipe first).
                    unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                    return true;
                }
            }
            false
        });
        let result = c.spawn().and_then(|child| child.wait_with_output());
        assert!(watcher.join().unwrap(), "the child never appeared");
        match result {
            Err(e) => {
                before_exec += 1;
                eprintln!("killed in setup: {e}");
            }
            Ok(out) if out.stdout.is_empty() => {
                before_exec += 1;
                assert_eq!(
                    out.status.signal(),
                    Some(contain::Signal::SIGKILL),
                    "{:?}",
                    out.status
                );
            }
            Ok(out) => assert_eq!(out.stdout, b"ran\n"),
        }
        assert!(reap_all(), "a child still runs");
        assert_eq!(mounts(), before, "mounts left");
    }
    assert!(
        before_exec > 0,
        "every kill came after the exec: the setup was never hit"
    );
    eprintln!("{before_exec} of 20 kills landed before the exec");
}
