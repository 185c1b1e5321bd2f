//! Property (as root): for random config.json files — namespaces, hostname, a read-only or
//! writable root, environment, tmpfs mounts, rlimits, capabilities, masked and read-only
//! paths, and a pids limit where cgroup v2 has the controller — `create`, `state`, `kill`,
//! `delete` work in turn and leave nothing: no state directory, no process (this test is the
//! subreaper of what it starts, so a leaked process is its child), no mount, no cgroup.

mod common;
#[path = "../../tests/common/procs.rs"]
mod procs;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{busybox_rootfs, create, is_root, oci, text, TempDir};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The parts of a config that vary.
#[derive(Debug, Clone)]
struct Shape {
    extra_ns: Vec<&'static str>,
    hostname: Option<String>,
    readonly: bool,
    env: Vec<(String, String)>,
    tmpfs: Vec<&'static str>,
    nofile: Option<u64>,
    caps: Vec<&'static str>,
    masked: bool,
    pids: Option<i64>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        proptest::sample::subsequence(vec!["ipc", "uts", "network", "cgroup"], 0..=4),
        proptest::option::of("[a-z]([a-z0-9-]{0,18}[a-z0-9])?"),
        any::<bool>(),
        proptest::collection::vec(("[A-Z][A-Z0-9_]{0,8}", "[ -~]{0,16}"), 0..4),
        proptest::sample::subsequence(vec!["/tmp", "/run", "/data"], 0..=3),
        proptest::option::of(64u64..4096),
        proptest::sample::subsequence(
            vec![
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_SETUID",
                "CAP_SYS_ADMIN",
            ],
            0..=5,
        ),
        any::<bool>(),
        proptest::option::of(8i64..256),
    )
        .prop_map(
            |(extra_ns, hostname, readonly, env, tmpfs, nofile, caps, masked, pids)| Shape {
                extra_ns,
                hostname,
                readonly,
                env,
                tmpfs,
                nofile,
                caps,
                masked,
                pids,
            },
        )
}

fn config(s: &Shape, pids_ok: bool) -> Value {
    let mut ns: Vec<Value> = ["pid", "mount"]
        .iter()
        .chain(&s.extra_ns)
        .map(|t| json!({"type": t}))
        .collect();
    // A hostname needs a UTS namespace of the container's.
    if s.hostname.is_some() && !s.extra_ns.contains(&"uts") {
        ns.push(json!({"type": "uts"}));
    }
    let mut env = vec!["PATH=/bin".to_string()];
    env.extend(s.env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut linux = json!({ "namespaces": ns });
    if s.masked {
        linux["maskedPaths"] = json!(["/proc/kcore", "/proc/keys"]);
        linux["readonlyPaths"] = json!(["/proc/sys", "/proc/sysrq-trigger"]);
    }
    if let (Some(limit), true) = (s.pids, pids_ok) {
        linux["resources"] = json!({"pids": {"limit": limit}});
    }
    let mut process = json!({
        "args": ["sleep", "600"],
        "env": env,
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": s.caps, "effective": s.caps, "permitted": s.caps}
    });
    if let Some(n) = s.nofile {
        process["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": n, "soft": n}]);
    }
    let mut c = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": s.readonly},
        "mounts": s.tmpfs.iter().map(|d| json!({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})).collect::<Vec<_>>(),
        "linux": linux
    });
    if let Some(h) = &s.hostname {
        c["hostname"] = json!(h);
    }
    c
}

fn mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// The container cgroups (`contain-*`) where contain puts them by default. The shared parent
/// `<cgroup2>/contain`, made on demand, may stay (as `cgroup::cleanup` documents).
fn container_cgroups() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for top in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        for dir in [top.to_string(), format!("{top}/contain")] {
            if let Ok(d) = std::fs::read_dir(&dir) {
                out.extend(
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with("contain-"))
                        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
    }
    out
}

fn status(root: &Path, id: &str) -> String {
    let o = oci(root, &["state", id]);
    assert!(o.status.success(), "state: {}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["status"].as_str().unwrap_or("").to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn create_state_kill_delete_leaves_nothing(s in shape()) {
        if !is_root("create_state_kill_delete_leaves_nothing") {
            return Ok(());
        }
        procs::become_subreaper();
        let pids_ok = Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"));
        let dir = TempDir::new("property");
        let bundle = dir.path().join("bundle");
        busybox_rootfs(&bundle.join("rootfs"), &["sleep"]);
        // The tmpfs targets exist in the image (a read-only root cannot get new ones).
        for d in ["tmp", "run", "data"] {
            std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
        }
        let cfg = config(&s, pids_ok);
        std::fs::write(bundle.join("config.json"), cfg.to_string()).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let (mounts_before, cgroups_before) = (mounts(), container_cgroups());

        let out = dir.path().join("out");
        let o = create(&root, &[], &bundle, "p", &out);
        prop_assert!(o.status.success(), "create {}: {}", cfg, text(&o.stderr));
        prop_assert_eq!(status(&root, "p"), "created");
        let o = oci(&root, &["start", "p"]);
        prop_assert!(o.status.success(), "start: {}", text(&o.stderr));
        prop_assert_eq!(status(&root, "p"), "running");
        let o = oci(&root, &["kill", "p", "KILL"]);
        prop_assert!(o.status.success(), "kill: {}", text(&o.stderr));
        let deadline = Instant::now() + Duration::from_secs(10);
        while status(&root, "p") != "stopped" {
            prop_assert!(Instant::now() < deadline, "not stopped 10 s after kill");
            std::thread::yield_now();
        }
        let o = oci(&root, &["delete", "p"]);
        prop_assert!(o.status.success(), "delete: {}", text(&o.stderr));

        prop_assert!(procs::reap_all(), "a process outlived delete: {}", cfg);
        prop_assert!(std::fs::read_dir(&root).unwrap().next().is_none(), "state left");
        prop_assert_eq!(mounts(), mounts_before, "mounts left");
        prop_assert_eq!(container_cgroups(), cgroups_before, "cgroups left");
    }
}
