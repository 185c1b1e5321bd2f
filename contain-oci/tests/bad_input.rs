//! Bad input through contain-oci, table-driven (the crate's own table is tests/bad_input.rs
//! of the main crate): malformed and hostile config.json files and bundles, and bad command
//! lines. Each `create` must fail with exit status 1 (as runc's) and one `contain-oci:
//! error:` line on stderr that names what is wrong, never a panic, and leave nothing: the
//! state root stays empty, no mount, no `contain*` cgroup, no child process.
//!
//! As root (the valid parts of the configs would create namespaces).

mod common;

use std::collections::BTreeSet;

use common::{busybox_rootfs, is_root, oci, text, TempDir};
use serde_json::{json, Value};

/// A config that `create` would take: busybox `true` in a read-only root with the usual
/// namespaces; each row changes one thing.
fn good() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "args": ["/bin/true"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin"]
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "bad-input",
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}
            ]
        }
    })
}

/// `good()` with the value at the JSON pointer `at` replaced (or removed for `Value::Null`
/// at a key).
fn with(at: &str, value: Value) -> Value {
    let mut v = good();
    let (parent, key) = at.rsplit_once('/').unwrap();
    let target = v.pointer_mut(parent).unwrap();
    match (target, value) {
        (Value::Object(m), Value::Null) => {
            m.remove(key);
        }
        (Value::Object(m), value) => {
            m.insert(key.to_string(), value);
        }
        (Value::Array(a), value) => a[key.parse::<usize>().unwrap()] = value,
        _ => unreachable!("{at}"),
    }
    v
}

/// What a failed create may leave behind: mounts and contain cgroups, by name.
fn leftovers() -> (BTreeSet<String>, BTreeSet<String>) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect();
    let mut cgroups = BTreeSet::new();
    for top in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        for dir in [top.to_string(), format!("{top}/contain")] {
            if let Ok(d) = std::fs::read_dir(&dir) {
                cgroups.extend(
                    d.filter_map(|e| e.ok())
                        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
    }
    (mounts, cgroups)
}

#[test]
fn bad_configs_and_bundles_fail_create_with_one_line_and_leave_nothing() {
    if !is_root("bad_configs_and_bundles_fail_create_with_one_line_and_leave_nothing") {
        return;
    }
    let dir = TempDir::new("bad-input");
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs, &["true"]);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let long = "a".repeat(5000);
    // (what, config.json's text or None for none, a word the error must hold)
    let rows: Vec<(&str, Option<String>, &str)> = vec![
        ("no config.json", None, "config.json"),
        ("not JSON", Some("{bad".into()), "line 1"),
        ("empty file", Some(String::new()), "EOF"),
        ("a JSON array", Some("[]".into()), "config.json"),
        ("ociVersion 2", Some(with("/ociVersion", json!("2.0.0")).to_string()), "ociVersion"),
        ("ociVersion not a version", Some(with("/ociVersion", json!("x")).to_string()), "ociVersion"),
        ("args empty", Some(with("/process/args", json!([])).to_string()), "args"),
        ("args not a list", Some(with("/process/args", json!("true")).to_string()), "expected a sequence"),
        ("root.path missing", Some(with("/root/path", json!("nope")).to_string()), "nope"),
        ("root.path a file", Some(with("/root/path", json!("rootfs/bin/true")).to_string()), "rootfs/bin/true"),
        ("5 KB hostname", Some(with("/hostname", json!(long)).to_string()), "hostname"),
        ("hostname with a slash", Some(with("/hostname", json!("a/b")).to_string()), "hostname"),
        (
            "unknown namespace type",
            Some(with("/linux/namespaces/0", json!({"type": "bogus"})).to_string()),
            "bogus",
        ),
        (
            "namespace path that does not exist",
            Some(with("/linux/namespaces/2", json!({"type": "ipc", "path": "/nonexistent/ns"})).to_string()),
            "/nonexistent/ns",
        ),
        (
            "uid mapping without a user namespace",
            Some(with("/linux/uidMappings", json!([{"containerID": 0, "hostID": 1000, "size": 1}])).to_string()),
            "user",
        ),
        (
            "mount with a relative destination",
            Some(with("/mounts", json!([{"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}])).to_string()),
            "tmp",
        ),
        (
            "unknown capability",
            Some(with("/process/capabilities", json!({"bounding": ["CAP_NOPE"]})).to_string()),
            "CAP_NOPE",
        ),
        (
            "unknown rlimit",
            Some(with("/process/rlimits", json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}])).to_string()),
            "RLIMIT_BOGUS",
        ),
        (
            "seccomp with an unknown action",
            Some(with("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_BOGUS"})).to_string()),
            "SCMP_ACT_BOGUS",
        ),
        (
            "seccomp argument index 6",
            Some(with("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]})).to_string()),
            "index",
        ),
        (
            "sysctl not namespaced",
            Some(with("/linux/sysctl", json!({"kernel.panic": "1"})).to_string()),
            "kernel.panic",
        ),
        (
            "cwd relative",
            Some(with("/process/cwd", json!("relative")).to_string()),
            "cwd",
        ),
    ];
    eprintln!("bad configs: {} rows", rows.len());
    let before = leftovers();
    for (i, (what, config, word)) in rows.iter().enumerate() {
        let bundle = dir.path().join(format!("bundle-{i}"));
        std::fs::create_dir(&bundle).unwrap();
        std::os::unix::fs::symlink(&rootfs, bundle.join("rootfs")).unwrap();
        if let Some(text) = config {
            std::fs::write(bundle.join("config.json"), text).unwrap();
        }
        let id = format!("bad-{i}");
        let o = oci(
            &state,
            &["create", "--bundle", bundle.to_str().unwrap(), &id],
        );
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{what}: {err}");
        assert!(
            lines[0].starts_with("contain-oci: error: "),
            "{what}: {err}"
        );
        assert!(lines[0].contains(word), "{what}: no {word:?} in {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert!(left.is_empty(), "{what}: state left: {left:?}");
    }
    // Bad command lines.
    for (args, word) in [
        (
            vec!["create", "--bundle", "/nonexistent/bundle", "x"],
            "/nonexistent/bundle",
        ),
        (vec!["start", "no-such-container"], "no-such-container"),
        (
            vec!["kill", "no-such-container", "KILL"],
            "no-such-container",
        ),
        (vec!["delete", "no-such-container"], "no-such-container"),
        (vec!["state", "../escape"], "escape"),
    ] {
        let o = oci(&state, &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(word), "{args:?}: no {word:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(leftovers(), before, "left behind");
    assert!(
        std::fs::read_dir(&state).unwrap().next().is_none(),
        "state root not empty"
    );
}
