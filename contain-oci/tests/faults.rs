//! contain-oci killed mid-command (as root): `create` SIGKILLed at points spread over its
//! run, and `start` SIGKILLed at points over its run after a finished `create`. Afterwards the
//! state must be consistent — `state` says the container does not exist, or gives a status
//! of the runtime spec (created, running, stopped) — and `delete --force` must work (or say
//! it does not exist), leaving nothing: no state directory, no process of the container.

mod common;
#[path = "../../tests/common/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_rootfs, create, is_root, oci, text, TempDir, BIN};
use procs::{become_subreaper, reap_all, with_marker};

fn bundle(dir: &Path, marker: &str) -> PathBuf {
    let bundle = dir.join(format!("bundle-{marker}"));
    busybox_rootfs(&bundle.join("rootfs"), &["sleep"]);
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "args": ["sleep", marker],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0}
        },
        "root": {"path": "rootfs"},
        "hostname": "faults",
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]
        }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

/// `contain-oci --root ROOT ARGS...` started, SIGKILLed `delay` after, and reaped; whether it
/// had ended by itself first. Its output goes to the file `out` (a pipe would stay open in a
/// parked container).
fn killed(root: &Path, args: &[&str], delay: Duration, out: &Path) -> bool {
    let f = std::fs::File::create(out).unwrap();
    let mut c = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    // The delay places the fault; nothing waits on it.
    std::thread::sleep(delay);
    let ended = c.try_wait().unwrap().is_some();
    let _ = c.kill();
    c.wait().unwrap();
    let err = std::fs::read_to_string(out).unwrap_or_default();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    ended
}

/// The state is consistent and `delete --force` leaves nothing of `id`.
fn consistent_then_deleted(root: &Path, id: &str, marker: &str, when: &str) {
    let st = oci(root, &["state", id]);
    if st.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&st.stdout)
            .unwrap_or_else(|e| panic!("{when}: state is not JSON ({e}): {}", text(&st.stdout)));
        let status = v["status"].as_str().unwrap_or("");
        assert!(
            ["creating", "created", "running", "stopped"].contains(&status),
            "{when}: status {status:?}"
        );
    } else {
        let err = text(&st.stderr);
        assert!(err.contains("does not exist"), "{when}: state: {err}");
    }
    let del = oci(root, &["delete", "--force", id]);
    let err = text(&del.stderr);
    assert!(
        del.status.success() || err.contains("does not exist"),
        "{when}: delete --force: {err}"
    );
    assert!(
        !root.join(id).exists(),
        "{when}: {} left",
        root.join(id).display()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !with_marker(marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{when}: the container's process outlived delete: {:?}",
            with_marker(marker)
        );
        std::thread::yield_now();
    }
}

#[test]
fn create_or_start_killed_midway_leaves_a_consistent_state_that_delete_clears() {
    if !is_root("create_or_start_killed_midway_leaves_a_consistent_state_that_delete_clears") {
        return;
    }
    become_subreaper();
    let dir = TempDir::new("faults");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let delays: Vec<Duration> = std::iter::once(Duration::ZERO)
        .chain((0..14).map(|i| Duration::from_micros(50 << i)))
        .collect();
    let (mut creates_done, mut starts_done) = (0, 0);
    for (i, delay) in delays.iter().enumerate() {
        let marker = format!(
            "{}",
            700_000 + i * 1000 + std::process::id() as usize % 1000
        );
        let bundle = bundle(dir.path(), &marker);
        let id = format!("create-{i}");
        let b = bundle.to_str().unwrap();
        let out = dir.path().join(format!("out-{i}"));
        if killed(&root, &["create", "--bundle", b, &id], *delay, &out) {
            creates_done += 1;
        }
        let when = format!("create killed after {delay:?}");
        consistent_then_deleted(&root, &id, &marker, &when);
        assert!(reap_all(), "{when}: a child still runs after 10 s");

        let id = format!("start-{i}");
        let o = create(&root, &[], &bundle, &id, &out);
        assert!(o.status.success(), "create: {}", text(&o.stderr));
        if killed(
            &root,
            &["start", &id],
            *delay,
            &dir.path().join("start-out"),
        ) {
            starts_done += 1;
        }
        let when = format!("start killed after {delay:?}");
        consistent_then_deleted(&root, &id, &marker, &when);
        assert!(reap_all(), "{when}: a child still runs after 10 s");
    }
    eprintln!(
        "{} kills each: {creates_done} creates and {starts_done} starts had ended first",
        delays.len()
    );
    assert!(
        creates_done < delays.len() && starts_done < delays.len(),
        "every command ended before its kill: the faults hit nothing"
    );
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
}
