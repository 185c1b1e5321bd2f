//! Faults during a start (as root): the process that starts a container is SIGKILLed at
//! points spread over the whole start, from before its first syscall to after the exec. The
//! container's processes must die with it (parent-death signal, then the PID namespace's
//! end), and what the dead run left (its cgroup, where it made one) must be swept by
//! `cgroup::cleanup`, leaving nothing.
//!
//! (The other faults are tested where their feature is: a killed import in image_store.rs,
//! OOM and pids exhaustion in cgroup_spawn.rs, a full writable layer in rootfs.rs, exec
//! failures in spawn.rs, a parent killed after the start in rootfs.rs.)

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::busybox::BusyboxRootfs;
use common::procs::{become_subreaper, reap_all, with_marker};
use common::{is_root, role};
use contain::cgroup::{CgroupBuilder, Resources};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::Rootfs;

const TEST: &str = "a_starter_killed_at_any_point_of_a_start_leaves_nothing";

/// The tests here take turns: the starter test reaps every child of the process (it is the
/// subreaper of what it kills), which would take the others' containers.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The container cgroups (`contain-*`) in the places the crate puts them by default.
fn container_groups() -> BTreeSet<PathBuf> {
    let Ok(root) = contain::cgroup::Cgroup::root() else {
        return BTreeSet::new();
    };
    let mut places = vec![root.path().to_path_buf(), root.path().join("contain")];
    if let Ok(own) = contain::cgroup::Cgroup::own() {
        places.push(own.path().to_path_buf());
    }
    let mut out = BTreeSet::new();
    for dir in places {
        if let Ok(d) = std::fs::read_dir(&dir) {
            out.extend(
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("contain-"))
                    .map(|e| e.path()),
            );
        }
    }
    out
}

/// The starter: says "go" on stdout, waits for one byte on stdin, then starts a container
/// that sleeps (its argument the marker) and waits for it, until killed.
fn starter() {
    let image = std::env::var("CONTAIN_TEST_IMAGE").unwrap();
    let marker = std::env::var("CONTAIN_TEST_MARKER").unwrap();
    let cgroup = std::env::var_os("CONTAIN_TEST_CGROUP").is_some();
    let mut c = Container::new("/bin/sleep")
        .arg(&marker)
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(Rootfs::new(image));
    if cgroup {
        c = c.resources(Resources::new().pids_max(16));
    }
    println!("go");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read(&mut [0u8]);
    let mut child = c.spawn().unwrap();
    println!("started");
    std::io::stdout().flush().unwrap();
    let _ = child.wait();
}

#[test]
fn a_starter_killed_at_any_point_of_a_start_leaves_nothing() {
    if role().as_deref() == Some("starter") {
        starter();
        return;
    }
    if role().is_some() || !is_root(TEST) {
        return;
    }
    let _turn = serial();
    become_subreaper();
    let image = BusyboxRootfs::new("faults");
    // A cgroup where cgroup v2 has the pids controller (the qemu guest), so that a killed
    // start leaves one for cleanup to sweep.
    let cgroup = CgroupBuilder::new(format!("contain-faults-probe-{}", std::process::id()))
        .resources(Resources::new().pids_max(16))
        .create_in_default()
        .map(|g| g.remove(Duration::from_secs(5)))
        .is_ok();
    let groups_before = container_groups();
    // Delays from the starter's go to its SIGKILL: 0 (before its spawn's first syscall) up
    // to past the exec, roughly doubling. They place the fault; nothing waits on them.
    let delays: Vec<Duration> = std::iter::once(Duration::ZERO)
        .chain((0..16).map(|i| Duration::from_micros(25 << i)))
        .collect();
    // Kills that came after the spawn returned.
    let mut reached_exec = 0;
    for (i, delay) in delays.iter().enumerate() {
        let marker = format!(
            "{}",
            900_000 + i * 1000 + std::process::id() as usize % 1000
        );
        let mut starter = Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env("CONTAIN_TEST_ROLE", "starter")
            .env("CONTAIN_TEST_IMAGE", image.root())
            .env("CONTAIN_TEST_MARKER", &marker)
            .envs(cgroup.then_some(("CONTAIN_TEST_CGROUP", "1")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(starter.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("go") {
            line.clear();
        }
        assert!(
            line.contains("go"),
            "delay {delay:?}: the starter did not start"
        );
        starter.stdin.as_mut().unwrap().write_all(b"x").unwrap();
        std::thread::sleep(*delay);
        starter.kill().unwrap();
        starter.wait().unwrap();
        // Whether its spawn had returned (the command running) before the kill.
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        if rest.contains("started") {
            reached_exec += 1;
        }
        // The container dies with its starter: its PID 1 gets SIGKILL as the starter's
        // parent-death signal, and the kernel ends the rest of the namespace with it. Its
        // processes are re-parented here (the subreaper) and reaped.
        assert!(
            reap_all(),
            "starter killed after {delay:?}: a child still runs after 10 s"
        );
        assert!(
            with_marker(&marker).is_empty(),
            "delay {delay:?}: {:?}",
            with_marker(&marker)
        );
    }
    // What the dead starters left is swept.
    if cgroup {
        contain::cgroup::cleanup().unwrap();
    }
    assert_eq!(
        container_groups(),
        groups_before,
        "cgroups left by killed starts"
    );
    eprintln!(
        "{} kills, {reached_exec} after the spawn returned; cgroups {}",
        delays.len(),
        if cgroup {
            "made and swept"
        } else {
            "not made (no pids controller in cgroup v2)"
        }
    );
    assert!(
        reached_exec > 0 && reached_exec < delays.len(),
        "the delays did not span the start: {reached_exec} of {} kills came after it",
        delays.len()
    );
}

/// The image directory removed (rm -rf) while a container on it runs: the container goes on
/// (what it has open or mapped stays; what it looks up afresh is gone, as the kernel's
/// overlay over a removed lower directory says), its exit is reported as usual, and nothing
/// is left: no mount, no temporary directory of the crate's.
#[test]
fn the_image_removed_while_its_container_runs() {
    const TEST: &str = "the_image_removed_while_its_container_runs";
    if role().is_some() || !is_root(TEST) {
        return;
    }
    let _turn = serial();
    let mounts = || {
        let text = std::fs::read("/proc/self/mountinfo").unwrap();
        contain::mountinfo::parse(&text)
            .unwrap()
            .into_iter()
            .map(|m| m.mount_point)
            .collect::<BTreeSet<_>>()
    };
    let before = mounts();
    let image = BusyboxRootfs::new("faults-removed");
    let mut child = Container::new("/bin/sh")
        .args([
            "-c",
            "echo ready; read x; cat /etc/image || echo gone; echo alive",
        ])
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(Rootfs::new(image.root()))
        .stdin(contain::process::Stdio::Piped)
        .stdout(contain::process::Stdio::Piped)
        .stderr(contain::process::Stdio::Piped)
        .spawn()
        .unwrap();
    // Handshake: the shell runs before its image goes.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    std::fs::remove_dir_all(image.root()).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.ends_with("alive\n"), "{rest}");
    assert!(
        rest.starts_with("gone\n") || rest.starts_with("image faults-removed\n"),
        "{rest}"
    );
    eprintln!("after the image was removed the container printed {rest:?}");
    drop(child);
    drop(image);
    assert_eq!(mounts(), before, "mounts left");
}

/// The writable layer full: a container whose throw-away layer is a 1 MiB tmpfs writes 2 MB.
/// The write fails inside (ENOSPC) at the layer's size, the container goes on (it removes the file and writes
/// a small one), and the host is untouched: the image directory holds exactly what it held,
/// and no mount is left.
#[test]
fn a_full_writable_layer_is_enospc_inside_and_the_host_is_untouched() {
    const TEST: &str = "a_full_writable_layer_is_enospc_inside_and_the_host_is_untouched";
    if role().is_some() || !is_root(TEST) {
        return;
    }
    let _turn = serial();
    let mounts = || {
        let text = std::fs::read("/proc/self/mountinfo").unwrap();
        contain::mountinfo::parse(&text)
            .unwrap()
            .into_iter()
            .map(|m| m.mount_point)
            .collect::<BTreeSet<_>>()
    };
    let before = mounts();
    let image = BusyboxRootfs::new("faults-full");
    let listing = |root: &std::path::Path| {
        let mut v: Vec<_> = walk(root);
        v.sort();
        v
    };
    let image_before = listing(&image.root());
    let out = Container::new("/bin/sh")
        .args([
            "-c",
            "head -c 2000000 /dev/zero > /big; echo rc=$?; wc -c < /big; rm -f /big; \
             echo small > /small && cat /small",
        ])
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(Rootfs::new(image.root()).size(contain::Bytes::mib(1)))
        .stdout(contain::process::Stdio::Piped)
        .stderr(contain::process::Stdio::Piped)
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    // The write stopped at the layer's size (busybox head says only "I/O error" for ENOSPC).
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"rc=1"), "{stdout}{stderr}");
    let written: u64 = lines
        .get(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        written <= 1 << 20,
        "{written} bytes written to a 1 MiB layer: {stdout}"
    );
    assert_eq!(lines.last(), Some(&"small"), "{stdout}");
    assert_eq!(listing(&image.root()), image_before, "the image changed");
    assert_eq!(mounts(), before, "mounts left");
}

/// Every path below `root` with its size, links not followed.
fn walk(root: &std::path::Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().filter_map(|e| e.ok()) {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), m.len()));
        if m.is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
