//! What podman (with conmon) and containerd's runc shim need of the runtime beyond the
//! lifecycle, found by `cargo xtask podman` and `cargo xtask containerd` and checked here
//! without them: warnings stay out of the container's stderr when the caller reads `--log`,
//! podman's `"pids": {"limit": 0}` needs no pids controller, and `delete --force` of a
//! container that is not there succeeds quietly. The tests that create containers need root
//! (they say so and skip otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{is_root, TempDir, BIN};

/// A test's directory: `bundle/` (a busybox rootfs and config.json), `root/` (the state),
/// removed with what is in it on drop.
struct Bundle(TempDir);

impl Bundle {
    /// `linux` and `process` merged into a config running `true`.
    fn new(tag: &str, process: serde_json::Value, linux: serde_json::Value) -> Bundle {
        let b = Bundle(TempDir::new(&format!("clients-{tag}")));
        common::busybox_rootfs(&b.bundle().join("rootfs"), &["sh", "true"]);
        let mut p = serde_json::json!({
            "args": ["true"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}
        });
        let mut l = serde_json::json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]});
        for (base, extra) in [(&mut p, process), (&mut l, linux)] {
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
        }
        let config = serde_json::json!({
            "ociVersion": "1.0.2", "process": p, "root": {"path": "rootfs"}, "linux": l
        });
        std::fs::write(b.bundle().join("config.json"), config.to_string()).unwrap();
        b
    }

    fn bundle(&self) -> PathBuf {
        self.0.path().join("bundle")
    }

    /// `contain-oci --root ROOT GLOBAL... create --bundle BUNDLE ID` with its stdout and
    /// stderr (the container's) going to the file `out`; returns the status and that file.
    fn create(&self, global: &[&str], id: &str, out: &Path) -> Output {
        common::create(&self.0.path().join("root"), global, &self.bundle(), id, out)
    }

    fn delete(&self, id: &str) {
        let o = Command::new(BIN)
            .arg("--root")
            .arg(self.0.path().join("root"))
            .args(["delete", "--force", id])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "delete --force {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn warnings_go_to_the_log_and_stay_out_of_the_containers_stderr() {
    if !is_root("warnings_go_to_the_log_and_stay_out_of_the_containers_stderr") {
        return;
    }
    // An AppArmor profile is warned about and ignored.
    let b = Bundle::new(
        "warn",
        serde_json::json!({"apparmorProfile": "some-profile"}),
        serde_json::json!({}),
    );
    let log = b.0.path().join("log.json");
    let out = b.0.path().join("out");
    let c = b.create(
        &["--log", log.to_str().unwrap(), "--log-format", "json"],
        "logged",
        &out,
    );
    let stderr = String::from_utf8_lossy(&c.stderr).into_owned();
    assert!(c.status.success(), "create: {stderr}");
    assert!(
        !stderr.contains("apparmorProfile"),
        "the warning reached the container's stderr: {stderr:?}"
    );
    let lines = std::fs::read_to_string(&log).unwrap();
    let warned = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|v| {
            v["level"] == "warning"
                && v["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("apparmorProfile"))
        });
    assert!(warned, "no warning line in the log: {lines:?}");
    b.delete("logged");

    // Without --log (runtime-tools, a person at a terminal) stderr is the only place.
    let c = b.create(&[], "plain", &out);
    let stderr = String::from_utf8_lossy(&c.stderr).into_owned();
    assert!(c.status.success(), "create: {stderr}");
    assert!(stderr.contains("apparmorProfile"), "{stderr:?}");
    b.delete("plain");
}

#[test]
fn a_pids_limit_of_0_sets_nothing() {
    if !is_root("a_pids_limit_of_0_sets_nothing") {
        return;
    }
    // podman writes this for --pids-limit 0 and -1. On a host whose pids controller is on
    // cgroup v1 (a hybrid one) a limit would be refused; 0 must not need the controller.
    let b = Bundle::new(
        "pids0",
        serde_json::json!({}),
        serde_json::json!({"resources": {"pids": {"limit": 0}}}),
    );
    let out = b.0.path().join("out");
    let c = b.create(&[], "p", &out);
    assert!(
        c.status.success(),
        "create: {}",
        String::from_utf8_lossy(&c.stderr)
    );
    b.delete("p");
}

#[test]
fn delete_force_of_a_missing_container_succeeds_quietly() {
    // podman runs `delete --force ID` after a create that failed, and shows its output.
    let b = Bundle::new("gone", serde_json::json!({}), serde_json::json!({}));
    let oci = |args: &[&str]| {
        Command::new(BIN)
            .arg("--root")
            .arg(b.0.path().join("root"))
            .args(args)
            .output()
            .unwrap()
    };
    let f = oci(&["delete", "--force", "never-made"]);
    assert!(
        f.status.success() && f.stderr.is_empty() && f.stdout.is_empty(),
        "{:?}: {}",
        f.status,
        String::from_utf8_lossy(&f.stderr)
    );
    // Without --force it is still the error containerd matches, and a bad id still fails.
    let p = oci(&["delete", "never-made"]);
    assert_eq!(p.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&p.stderr).contains("does not exist"));
    assert_eq!(oci(&["delete", "--force", "../x"]).status.code(), Some(1));
}
