//! `update` (new cgroup limits on a live container), signal forwarding and `--detach` in
//! `run`, and `linux.personality` through the binary. Each test makes a bundle with a busybox
//! rootfs and a state root in its own temporary directory; they need root (they say so and
//! skip otherwise).
//!
//! The update tests check what the cgroup allows: where the container's cgroup v2 group has
//! the memory, pids and cpu controllers (pure cgroup v2: the project's VM, `cargo xtask test
//! --vm-only -- -p contain-oci --test update_run`), the limits are read back from
//! memory.max, pids.max and cpu.max; where it lacks them (a hybrid host, whose cgroup v2
//! offers only hugetlb), `update` must fail naming the controller.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{is_root, text, wait_exit, TempDir, BIN};

/// A bundle (`dir/bundle`: busybox rootfs, config.json) and a state root (`dir/root`).
struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A bundle running `args` with PID and mount namespaces and the fields of `linux`.
    fn new(tag: &str, args: &[&str], linux: serde_json::Value) -> Bundle {
        let dir = TempDir::new(tag);
        common::busybox_rootfs(
            &dir.path().join("bundle/rootfs"),
            &["sh", "sleep", "echo", "true", "cat", "uname"],
        );
        let mut l = serde_json::json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]});
        for (k, v) in linux.as_object().unwrap() {
            l[k] = v.clone();
        }
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": args, "env": ["PATH=/bin"], "cwd": "/",
                        "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": l
        });
        std::fs::write(dir.path().join("bundle/config.json"), config.to_string()).unwrap();
        Bundle { dir }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `contain-oci --root ROOT ARGS...`, stdio captured (stdin null).
    fn oci(&self, args: &[&str]) -> Output {
        common::oci(&self.root(), args)
    }

    /// `create` of `id`, its stderr (and the container's) going to a file: a pipe would
    /// stay open in the parked process, and reading it to its end would wait for the
    /// container to exit.
    fn create(&self, id: &str) {
        let log = self.dir.path().join(format!("create-{id}.err"));
        let status = Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(["create", "--bundle"])
            .arg(self.bundle())
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "create {id}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn state(&self, id: &str) -> serde_json::Value {
        common::state(&self.root(), id)
    }

    /// The container's cgroup directory, from ROOT/ID/state.json.
    fn cgroup(&self, id: &str) -> Option<PathBuf> {
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.root().join(id).join("state.json")).unwrap(),
        )
        .unwrap();
        st["cgroup"].as_str().map(PathBuf::from)
    }

    /// `linux.resources` of the config saved at create (ROOT/ID/config.json).
    fn saved_resources(&self, id: &str) -> serde_json::Value {
        let c: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.root().join(id).join("config.json")).unwrap(),
        )
        .unwrap();
        c["linux"]["resources"].clone()
    }
}

/// Whether `controller` is in the group's cgroup.controllers.
fn has_controller(cg: &Path, controller: &str) -> bool {
    std::fs::read_to_string(cg.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == controller)
}

fn read(cg: &Path, file: &str) -> String {
    std::fs::read_to_string(cg.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", cg.join(file).display()))
        .trim()
        .to_string()
}

/// `update` with `args` of container `id`: on a group with `controller`, it succeeds and
/// `file` reads `want`; without it, it fails naming the controller.
fn update_reads_back(
    b: &Bundle,
    id: &str,
    args: &[&str],
    controller: &str,
    file: &str,
    want: &str,
) {
    let cg = b
        .cgroup(id)
        .expect("a container with resources has a cgroup");
    let mut all = vec!["update"];
    all.extend_from_slice(args);
    all.push(id);
    let o = b.oci(&all);
    // The project's VM (pure cgroup v2) must take the read-back path.
    let in_vm = std::env::var_os("CONTAIN_IN_VM").is_some();
    assert!(
        !in_vm || has_controller(&cg, controller),
        "{controller} not in {} in the VM after update {args:?}: {}",
        cg.display(),
        text(&o.stderr)
    );
    if has_controller(&cg, controller) {
        assert!(o.status.success(), "update {args:?}: {}", text(&o.stderr));
        assert_eq!(read(&cg, file), want, "update {args:?}");
        eprintln!("update {args:?}: {file} reads {want}");
    } else {
        assert_eq!(
            o.status.code(),
            Some(1),
            "update {args:?} without {controller}"
        );
        let err = text(&o.stderr);
        assert!(err.contains(controller), "update {args:?}: {err}");
        eprintln!(
            "{controller}: not in {}: update refused as expected",
            cg.display()
        );
    }
}

#[test]
fn update_changes_only_the_limits_given_and_saves_them() {
    if !is_root("update_changes_only_the_limits_given_and_saves_them") {
        return;
    }
    // Pure cgroup v2 (the VM): the container is created with limits on memory, pids and cpu,
    // so that its group has those controllers (the library puts it where they can be
    // enabled). The hybrid host cannot create with them (they are v1 controllers there).
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"));
    let resources = if v2 {
        serde_json::json!({"memory": {"limit": 209715200}, "pids": {"limit": 50},
                           "cpu": {"quota": 100000, "period": 100000}})
    } else {
        serde_json::json!({})
    };
    let b = Bundle::new(
        "update",
        &["sleep", "30"],
        serde_json::json!({ "resources": resources }),
    );
    b.create("u");
    let cg = b.cgroup("u").unwrap();
    // A created container can be updated; so can a running one.
    update_reads_back(
        &b,
        "u",
        &["--memory", "100m"],
        "memory",
        "memory.max",
        "104857600",
    );
    assert!(b.oci(&["start", "u"]).status.success());
    update_reads_back(&b, "u", &["--pids-limit", "20"], "pids", "pids.max", "20");
    update_reads_back(
        &b,
        "u",
        &["--cpu-quota", "50000", "--cpu-period", "100000"],
        "cpu",
        "cpu.max",
        "50000 100000",
    );
    // Only the quota: the saved period stays.
    update_reads_back(
        &b,
        "u",
        &["--cpu-quota", "20000"],
        "cpu",
        "cpu.max",
        "20000 100000",
    );
    if has_controller(&cg, "memory") {
        // Swap alone is memory plus swap over the saved memory limit: 150m - 100m.
        update_reads_back(
            &b,
            "u",
            &["--memory-swap", "150m"],
            "memory",
            "memory.swap.max",
            "52428800",
        );
        // --resources from stdin, one field: the others stay.
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(b.root())
            .args(["update", "--resources", "-", "u"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            br#"{"memory": {"reservation": 10485760}}"#,
        )
        .unwrap();
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "update -r -: {}", text(&o.stderr));
        assert_eq!(read(&cg, "memory.low"), "10485760");
        assert_eq!(read(&cg, "memory.max"), "104857600");
        let saved = b.saved_resources("u");
        assert_eq!(saved["memory"]["limit"], 104_857_600, "{saved}");
        assert_eq!(saved["memory"]["swap"], 157_286_400, "{saved}");
        assert_eq!(saved["memory"]["reservation"], 10_485_760, "{saved}");
    }
    if has_controller(&cg, "pids") {
        assert_eq!(b.saved_resources("u")["pids"]["limit"], 20);
    }
    // The realtime knobs do not exist in cgroup v2.
    let o = b.oci(&["update", "--cpu-rt-runtime", "1000", "u"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cgroup v1 only"),
        "{}",
        text(&o.stderr)
    );
    // A bad size names the flag.
    let o = b.oci(&["update", "--memory", "lots", "u"]);
    assert!(text(&o.stderr).contains("--memory"), "{}", text(&o.stderr));
    assert!(b.oci(&["delete", "--force", "u"]).status.success());
    assert!(!cg.exists(), "delete removes the cgroup");
}

#[test]
fn update_refuses_stopped_containers_and_ones_without_a_cgroup() {
    if !is_root("update_refuses_stopped_containers_and_ones_without_a_cgroup") {
        return;
    }
    let b = Bundle::new(
        "update-refuse",
        &["true"],
        serde_json::json!({"resources": {}}),
    );
    b.create("s");
    assert!(b.oci(&["start", "s"]).status.success());
    let pid = b.state("s")["pid"].as_i64().unwrap();
    wait_exit(pid);
    let o = b.oci(&["update", "--pids-limit", "5", "s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not running"),
        "{}",
        text(&o.stderr)
    );
    assert!(b.oci(&["delete", "s"]).status.success());

    let b = Bundle::new(
        "update-nocg",
        &["sleep", "30"],
        serde_json::json!({"resources": {}}),
    );
    b.create("n");
    // Created without limits, its group is under our own cgroup, which holds processes: a
    // controller it lacks cannot be enabled for it, and update says why (the VM, where our
    // cgroup is /ci.scope; on the hybrid host, memory is a v1 controller, which it says).
    let o = b.oci(&["update", "--memory", "100m", "n"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("no internal processes") || err.contains("cgroup v1"),
        "{err}"
    );
    // A state without a cgroup (as a runtime that made none would leave).
    let path = b.root().join("n/state.json");
    let mut st: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cg = st["cgroup"].as_str().map(PathBuf::from);
    st["cgroup"] = serde_json::Value::Null;
    std::fs::write(&path, st.to_string()).unwrap();
    let o = b.oci(&["update", "--pids-limit", "5", "n"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no cgroup of its own"),
        "{}",
        text(&o.stderr)
    );
    assert!(b.oci(&["delete", "--force", "n"]).status.success());
    // Its group, forgotten by the state, is removed here.
    if let Some(cg) = cg {
        let _ = std::fs::remove_dir(cg);
    }
    let o = b.oci(&["update", "--pids-limit", "5", "gone"]);
    assert!(
        text(&o.stderr).contains("does not exist"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn run_forwards_sigterm_and_exits_with_the_containers_status() {
    if !is_root("run_forwards_sigterm_and_exits_with_the_containers_status") {
        return;
    }
    let b = Bundle::new(
        "run-signal",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; sleep 30 & wait",
        ],
        serde_json::json!({}),
    );
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(b.root())
        .args(["run", "--bundle"])
        .arg(b.bundle())
        .arg("sig")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The handshake: the trap is set once "ready" is out.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert!(!b.root().join("sig").exists(), "run deletes the container");
}

#[test]
fn run_detach_leaves_the_container_running() {
    if !is_root("run_detach_leaves_the_container_running") {
        return;
    }
    let b = Bundle::new("run-detach", &["sleep", "30"], serde_json::json!({}));
    // stderr to a file: the container keeps it open (see `Bundle::create`).
    let log = b.dir.path().join("run.err");
    let status = Command::new(BIN)
        .arg("--root")
        .arg(b.root())
        .args(["run", "--detach", "--bundle"])
        .arg(b.bundle())
        .arg("d")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(b.state("d")["status"], "running");
    assert!(b.oci(&["delete", "--force", "d"]).status.success());
    assert!(!b.root().join("d").exists());
}

#[test]
#[cfg(target_arch = "x86_64")]
fn linux32_personality_makes_uname_say_i686() {
    if !is_root("linux32_personality_makes_uname_say_i686") {
        return;
    }
    let b = Bundle::new(
        "persona",
        &["uname", "-m"],
        serde_json::json!({"personality": {"domain": "LINUX32"}}),
    );
    let o = Command::new(BIN)
        .arg("--root")
        .arg(b.root())
        .args(["run", "--bundle"])
        .arg(b.bundle())
        .arg("p")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "i686\n");
}
