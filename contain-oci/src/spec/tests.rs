//! Unit tests of the mapping, on configs written as JSON literals.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::*;

/// `patch` merged (objects recursively, other values replaced; `null` removes) over a
/// minimal valid config: rootfs, `/bin/sh`, pid and mount namespaces.
fn spec(patch: Value) -> Spec {
    let mut base = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/sh", "-c", "exit 0"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
    });
    merge(&mut base, patch);
    serde_json::from_value(base).expect("test config parses")
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

fn map(s: &Spec) -> contain::Result<(contain::process::Container, Warnings)> {
    container(Path::new("/bundle"), s)
}

/// The container's Debug form (its fields are private: the form shows what was set).
fn shown(s: &Spec) -> (String, Warnings) {
    let (c, w) = map(s).expect("config maps");
    (format!("{c:?}"), w)
}

/// The `what` of a Config error, or a panic naming what came instead.
fn refused(r: contain::Result<(contain::process::Container, Warnings)>) -> (&'static str, String) {
    match r {
        Err(contain::Error::Config { what, reason }) => (what, reason),
        Err(e) => panic!("expected a Config error, got {e}"),
        Ok((c, _)) => panic!("expected a Config error, got {c:?}"),
    }
}

#[test]
fn process_fields_are_mapped() {
    let (c, w) = shown(&spec(json!({"process": {
        "args": ["sleep", "30"],
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm", "EMPTY="],
        "cwd": "/work",
        "terminal": true,
        "user": {"uid": 10, "gid": 20, "additionalGids": [5, 6], "umask": 2},
        "noNewPrivileges": true
    }})));
    assert!(
        c.starts_with("Container { program: \"sleep\", arg0: None, args: [\"30\"]"),
        "{c}"
    );
    assert!(
        c.contains(r#"env: {"EMPTY": "", "PATH": "/usr/bin:/bin", "TERM": "xterm"}"#),
        "{c}"
    );
    assert!(c.contains("cwd: Some(\"/work\")"), "{c}");
    assert!(
        c.contains("uid: Some(10), gid: Some(20), groups: Some([5, 6])"),
        "{c}"
    );
    assert!(c.contains("umask: 2,"), "{c}");
    assert!(c.contains("tty: true"), "{c}");
    assert!(c.contains("no_new_privs: true"), "{c}");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn no_process_runs_true() {
    let (c, _) = shown(&spec(json!({"process": null})));
    assert!(
        c.starts_with(&format!(
            "Container {{ program: {NO_PROCESS_PROGRAM:?}, arg0: None, args: []"
        )),
        "{c}"
    );
}

#[test]
fn bad_process_fields_are_refused() {
    let (what, _) = refused(map(&spec(json!({"process": {"args": []}}))));
    assert_eq!(what, "process.args");
    let (what, why) = refused(map(&spec(json!({"process": {"env": ["NOEQUALS"]}}))));
    assert_eq!(what, "process.env");
    assert!(why.contains("NOEQUALS"), "{why}");
    let (what, _) = refused(map(&spec(json!({"process": {"cwd": "work"}}))));
    assert_eq!(what, "process.cwd");
    let (what, _) = refused(map(&spec(json!({"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}
    ]}}))));
    assert_eq!(what, "process.rlimits");
}

#[test]
fn unknown_capability_and_rlimit_fail_to_parse() {
    // runtime-tools' process_capabilities_fail and process_rlimits_fail: refused when
    // config.json is read, before this module sees it.
    let mut v = json!({"ociVersion": "1.0.2", "process": {"args": ["a"], "cwd": "/",
        "user": {"uid": 0, "gid": 0}, "capabilities": {"bounding": ["CAP_TEST"]}}});
    assert!(serde_json::from_value::<Spec>(v.clone()).is_err());
    v["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"]});
    assert!(serde_json::from_value::<Spec>(v.clone()).is_ok());
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]);
    assert!(serde_json::from_value::<Spec>(v).is_err());
}

#[test]
fn capabilities_and_rlimits_are_exact() {
    let s = spec(json!({"process": {
        "capabilities": {
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"]
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 3000, "hard": 4000},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615u64}
        ]
    }}));
    let mut warn = Warn::default();
    let (_, sec) = process::container(s.process().as_ref(), &mut warn).unwrap();
    assert_eq!(sec.capabilities, "CAP_KILL,CAP_CHOWN".parse().unwrap());
    let limits = sec.rlimits.unwrap();
    assert_eq!(
        limits,
        [
            contain::security::Rlimit::new(libc::RLIMIT_NOFILE, 3000, 4000),
            contain::security::Rlimit::new(libc::RLIMIT_CORE, 0, u64::MAX),
        ]
    );
    assert!(warn.0.is_empty(), "{:?}", warn.0);
    // No capabilities object: no capabilities (runc), not the library's docker set.
    let (_, sec) = process::container(spec(json!({})).process().as_ref(), &mut warn).unwrap();
    assert!(sec.capabilities.is_empty());
    assert_eq!(sec.cap_sets, None);
}

#[test]
fn capability_sets_are_mapped_each() {
    let s = spec(
        json!({"process": {"user": {"uid": 10, "gid": 10}, "capabilities": {
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_CHOWN"],
            "ambient": ["CAP_CHOWN"]
        }}}),
    );
    let mut warn = Warn::default();
    let (_, sec) = process::container(s.process().as_ref(), &mut warn).unwrap();
    let set = |s: &str| s.parse::<contain::security::CapSet>().unwrap();
    assert_eq!(sec.capabilities, set("KILL,CHOWN"));
    assert_eq!(
        sec.cap_sets,
        Some(contain::security::CapSets {
            effective: set("KILL"),
            permitted: set("KILL,CHOWN"),
            inheritable: set("CHOWN"),
            ambient: set("CHOWN"),
        })
    );
    assert!(warn.0.is_empty(), "{:?}", warn.0);
}

#[test]
fn ambient_capabilities_not_permitted_and_inheritable_are_left_out_with_a_warning() {
    // `runc spec` and `crun spec` write ambient capabilities with an empty inheritable set;
    // raising them fails with EPERM, and both runtimes go on without them.
    let s = spec(json!({"process": {"capabilities": {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN", "CAP_SETUID"],
        "ambient": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"]
    }}}));
    let mut warn = Warn::default();
    let (_, sec) = process::container(s.process().as_ref(), &mut warn).unwrap();
    let set = |s: &str| s.parse::<contain::security::CapSet>().unwrap();
    assert_eq!(sec.cap_sets.unwrap().ambient, set("CHOWN"));
    assert_eq!(warn.0.len(), 1, "{:?}", warn.0);
    assert!(
        warn.0[0].starts_with("process.capabilities.ambient: CAP_KILL, CAP_SETUID not raised"),
        "{:?}",
        warn.0
    );
}

#[test]
fn unsupported_process_fields_warn_once() {
    let (_, w) = shown(&spec(json!({
        "process": {"apparmorProfile": "x", "selinuxLabel": "y",
                    "terminal": true, "consoleSize": {"height": 24, "width": 80}},
        "linux": {"mountLabel": "z", "intelRdt": {"closID": "a"}}
    })));
    for field in [
        "process.apparmorProfile",
        "process.selinuxLabel",
        "linux.mountLabel",
        "linux.intelRdt",
    ] {
        assert_eq!(
            w.iter().filter(|l| l.starts_with(field)).count(),
            1,
            "{field}: {w:?}"
        );
    }
    let mut warn = Warn::default();
    warn.say("a");
    warn.say("a");
    assert_eq!(warn.0, ["a"]);
}

#[test]
fn root_hostname_and_mode() {
    let (c, _) = shown(&spec(json!({
        "hostname": "mrsdalloway", "domainname": "example.org",
        "root": {"path": "rootfs", "readonly": true},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
    })));
    assert!(
        c.contains("hostname: Some(\"mrsdalloway\"), domainname: Some(\"example.org\")"),
        "{c}"
    );
    assert!(
        c.contains("layers: [\"/bundle/rootfs\"], host: false, mode: ReadOnly"),
        "{c}"
    );
    assert!(c.contains("etc_files: false"), "{c}");
    assert!(
        c.contains("namespaces: Namespaces(MOUNT | PID | UTS)"),
        "{c}"
    );
    let (c, _) = shown(&spec(json!({"root": {"path": "/abs/root"}})));
    assert!(
        c.contains("layers: [\"/abs/root\"], host: false, mode: ReadWrite"),
        "{c}"
    );
}

#[test]
fn root_without_pid_or_mount_namespace_is_refused() {
    let (what, why) = refused(map(&spec(
        json!({"linux": {"namespaces": [{"type": "mount"}]}}),
    )));
    assert_eq!(what, "linux.namespaces");
    assert!(why.contains("PID namespace"), "{why}");
    let (_, why) = refused(map(&spec(json!({"linux": {"namespaces": []}}))));
    assert!(why.contains("mount namespace"), "{why}");
    // Without root, no namespaces are needed: the container shares all of the runtime's.
    let (c, _) = shown(&spec(json!({"root": null, "linux": {"namespaces": []}})));
    assert!(c.contains("namespaces: Namespaces(0x0)"), "{c}");
    assert!(c.contains("rootfs: None"), "{c}");
}

#[test]
fn mounts_become_library_mounts() {
    let (c, w) = shown(&spec(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=128m"]},
        {"destination": "/data", "type": "bind", "source": "/srv/data",
         "options": ["rbind", "ro", "nosuid", "rprivate"]},
        {"destination": "/rel", "source": "vol", "options": ["bind", "nodev", "noexec"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m", "mode=1777", "uid=5", "nr_inodes=100"]}
    ]})));
    // The standard ones add nothing to the rootfs's mounts; /dev/shm's size is kept.
    assert!(c.contains("shm_size: Some(134217728)"), "{c}");
    let mounts = &c[c.find("mounts: [").unwrap()..c.find("masked: [").unwrap()];
    assert_eq!(mounts.matches("Mount {").count(), 3, "{mounts}");
    assert!(mounts.contains("source: \"/srv/data\""), "{mounts}");
    assert!(mounts.contains("source: \"/bundle/vol\""), "{mounts}");
    assert!(
        mounts.contains("propagation: Some((Private, true))"),
        "{mounts}"
    );
    assert!(mounts.contains("nr_inodes"), "{mounts}");
    assert!(mounts.contains("source_name: Some(\"tmpfs\")"), "{mounts}");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn unsupported_mount_type_is_refused_by_destination() {
    let (what, why) = refused(map(&spec(json!({"mounts": [
        {"destination": "/mnt/nfs", "type": "nfs", "source": "server:/x"}
    ]}))));
    assert_eq!(what, "mounts");
    assert!(why.contains("/mnt/nfs") && why.contains("nfs"), "{why}");
    let (_, why) = refused(map(&spec(json!({"mounts": [
        {"destination": "relative", "type": "tmpfs"}
    ]}))));
    assert!(why.contains("relative"), "{why}");
    let (_, why) = refused(map(&spec(json!({"mounts": [
        {"destination": "/b", "type": "bind"}
    ]}))));
    assert!(why.contains("source"), "{why}");
}

#[test]
fn standard_mount_options_it_cannot_honour_warn() {
    let (_, w) = shown(&spec(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "options": ["hidepid=2"]},
        {"destination": "/sys", "type": "tmpfs"},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]}
    ]})));
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].contains("hidepid=2"), "{w:?}");
    assert!(w[1].contains("\"/sys\"") && w[1].contains("tmpfs"), "{w:?}");
    assert!(w[2].contains("without a cgroup namespace"), "{w:?}");
    // With one, the library's own cgroup2 is the mount asked for: nothing to say.
    let (c, w) = shown(&spec(json!({
        "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["rw"]}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "cgroup"}]}
    })));
    assert!(w.is_empty(), "{w:?}");
    assert!(c.contains("cgroup_writable: true"), "{c}");
}

#[test]
fn namespaces_new_joined_and_refused() {
    let (c, _) = shown(&spec(json!({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"},
        {"type": "uts", "path": "/proc/self/ns/uts"}
    ]}})));
    assert!(
        c.contains("namespaces: Namespaces(MOUNT | PID | IPC | NET)"),
        "{c}"
    );
    assert!(c.contains("join: [Namespace {"), "{c}");
    assert!(c.contains("kind: Namespaces(UTS)"), "{c}");

    let (what, why) = refused(map(&spec(json!({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "mount"}, {"type": "uts", "path": "/proc/self/ns/net"}
    ]}}))));
    assert_eq!(what, "linux.namespaces");
    assert!(why.contains("is a net namespace, not a uts one"), "{why}");
    let (_, why) = refused(map(&spec(json!({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "mount"}, {"type": "pid"}
    ]}}))));
    assert!(why.contains("twice"), "{why}");
    match map(&spec(json!({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc", "path": "/nonexistent/ns"}
    ]}}))) {
        Err(contain::Error::Sys {
            syscall: "open",
            path: Some(p),
            errno,
        }) => {
            assert_eq!(p, Path::new("/nonexistent/ns"));
            assert_eq!(errno.raw(), libc::ENOENT);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn id_maps_sysctl_and_paths() {
    let (c, _) = shown(&spec(json!({"linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "network"}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 20}],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "maskedPaths": ["/proc/kcore", "/proc/mine", "/proc/mine"],
        "readonlyPaths": ["/proc/sys", "/proc/ro"]
    }})));
    assert!(
        c.contains("uid_map: [IdMap { inside: 0, outside: 1000, count: 10 }]"),
        "{c}"
    );
    assert!(
        c.contains("gid_map: [IdMap { inside: 0, outside: 2000, count: 20 }]"),
        "{c}"
    );
    assert!(
        c.contains(r#"sysctls: {"net.ipv4.ip_forward": "1"}"#),
        "{c}"
    );
    assert_eq!(c.matches("\"/proc/kcore\"").count(), 1, "{c}");
    assert_eq!(c.matches("\"/proc/mine\"").count(), 1, "{c}");
    assert_eq!(c.matches("\"/proc/sys\"").count(), 1, "{c}");
    assert_eq!(c.matches("\"/proc/ro\"").count(), 1, "{c}");

    let (what, _) = refused(map(&spec(json!({"linux": {
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }}))));
    assert_eq!(what, "linux.uidMappings");
}

#[test]
fn devices_propagation_personality() {
    let (c, w) = shown(&spec(json!({"linux": {
        "devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432,
             "uid": 10, "gid": 5},
            {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
            {"path": "/dev/fifo", "type": "p"}
        ],
        "personality": {"domain": "LINUX32"}
    }})));
    assert!(
        c.contains(
            "devices: [DeviceNode { path: \"/dev/fuse\", kind: Char, major: 10, minor: 229, \
             mode: 432, uid: 10, gid: 5 }, DeviceNode { path: \"/dev/loop9\", kind: Block, \
             major: 7, minor: 9, mode: 438, uid: 0, gid: 0 }, DeviceNode { path: \"/dev/fifo\", \
             kind: Fifo, major: 0, minor: 0, mode: 438, uid: 0, gid: 0 }]"
        ),
        "{c}"
    );
    assert!(w.is_empty(), "{w:?}");
    assert!(
        c.contains(
            "personality: Some(Personality { domain: Linux32, flags: PersonalityFlags(0x0) })"
        ),
        "{c}"
    );
    let (what, _) = refused(map(&spec(json!({"linux": {"devices": [
        {"path": "/dev/x", "type": "a"}
    ]}}))));
    assert_eq!(what, "linux.devices");
    let (what, _) = refused(map(&spec(json!({"linux": {"devices": [
        {"path": "/dev/x", "type": "c", "major": -1, "minor": 0}
    ]}}))));
    assert_eq!(what, "linux.devices");
    let (c, w) = shown(&spec(json!({"linux": {
        "rootfsPropagation": "rslave", "personality": {"domain": "LINUX"}
    }})));
    assert!(w.is_empty(), "{w:?}");
    assert!(c.contains("root_propagation: Some((Slave, true))"), "{c}");
    let (c, _) = shown(&spec(json!({"linux": {"rootfsPropagation": "unbindable"}})));
    assert!(
        c.contains("root_propagation: Some((Unbindable, false))"),
        "{c}"
    );
    let (c, _) = shown(&spec(json!({})));
    assert!(c.contains("root_propagation: None"), "{c}");
    let (what, _) = refused(map(&spec(json!({"linux": {"rootfsPropagation": "bogus"}}))));
    assert_eq!(what, "linux.rootfsPropagation");
}

#[test]
fn shares_convert_as_runc_and_crun() {
    assert_eq!(resources::shares_to_weight(2), 1);
    assert_eq!(resources::shares_to_weight(1024), 39);
    assert_eq!(resources::shares_to_weight(262_144), 10_000);
    assert_eq!(resources::shares_to_weight(1), 1);
}

#[test]
fn resources_are_mapped() {
    use contain::cgroup::{CpuList, CpuMax, Device, HugePageSize, IoMax, Resources, Weight};
    use contain::{Bytes, Max};
    use std::time::Duration;
    let r: oci_spec::runtime::LinuxResources = serde_json::from_value(json!({
        "memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728, "swappiness": 10},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
                "realtimeRuntime": 1},
        "pids": {"limit": 32},
        "blockIO": {"weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "1000000"}
    }))
    .unwrap();
    let mut warn = Warn::default();
    let got = resources::limits(&r, &mut warn).unwrap();
    let want = Resources::new()
        .memory_max(Bytes(1_048_576))
        .memory_low(Bytes(524_288))
        .memory_swap_max(Bytes(2_097_152))
        .cpu_weight(Weight::new(39).unwrap())
        .cpu_max(
            CpuMax::new(
                Max::Limit(Duration::from_millis(50)),
                Duration::from_millis(100),
            )
            .unwrap(),
        )
        .cpuset_cpus(CpuList::range(0, 1))
        .cpuset_mems(CpuList::from_ids([0]))
        .pids_max(32)
        .io_weight(Weight::from_blkio_weight(500).unwrap())
        .io_max(IoMax::new(Device::new(8, 0)).rbps(Bytes(1000)).wiops(10))
        .hugetlb_max("2MB".parse::<HugePageSize>().unwrap(), Bytes(4_194_304))
        .unified("memory.high".parse().unwrap(), "1000000");
    assert_eq!(got, want);
    assert_eq!(warn.0.len(), 2, "{:?}", warn.0);
    assert!(warn.0[0].contains("swappiness"));
    assert!(warn.0[1].contains("realtimeRuntime"));
    let bad: oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"unified": {"cgroup.procs": "1"}})).unwrap();
    assert!(matches!(
        resources::limits(&bad, &mut warn),
        Err(contain::Error::Config {
            what: "linux.resources.unified",
            ..
        })
    ));

    let bad: oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"memory": {"limit": 2048, "swap": 1024}})).unwrap();
    assert!(matches!(
        resources::limits(&bad, &mut warn),
        Err(contain::Error::Config {
            what: "linux.resources.memory",
            ..
        })
    ));
    let unlimited: oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}}))
            .unwrap();
    let got = resources::limits(&unlimited, &mut warn).unwrap();
    assert_eq!(got.memory_max, Some(Max::Unlimited));
    assert_eq!(got.memory_swap_max, Some(Max::Unlimited));
    assert_eq!(got.pids_max, Some(Max::Unlimited));
    // podman's `{"limit": 0}` (its --pids-limit 0 and -1): nothing to write, no pids
    // controller needed (a host whose pids controller is on cgroup v1 runs it).
    let zero: oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"pids": {"limit": 0}})).unwrap();
    let got = resources::limits(&zero, &mut warn).unwrap();
    assert_eq!(got.pids_max, None);
    assert!(got.controllers().is_empty(), "{:?}", got.controllers());
}

#[test]
fn device_rules_become_an_allowlist() {
    use contain::cgroup::{DeviceAccess, DeviceKind, DeviceRule};
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
        {"allow": false, "type": "b", "major": 8, "access": "r"}
    ]))
    .unwrap();
    let mut warn = Warn::default();
    let list = resources::device_rules(&rules, &mut warn).unwrap();
    let fuse = DeviceRule {
        kind: DeviceKind::Char,
        major: Some(10),
        minor: Some(229),
        access: DeviceAccess::READ | DeviceAccess::WRITE,
    };
    assert_eq!(list[0], fuse);
    assert!(
        !list.iter().any(|r| r.kind == DeviceKind::Block),
        "{list:?}"
    );
    for d in DeviceRule::default_allowlist() {
        assert!(list.contains(&d), "{d:?} missing from {list:?}");
    }
    assert!(warn.0.is_empty(), "{:?}", warn.0);
    // Nothing denied: no filter.
    assert_eq!(resources::device_rules(&[], &mut warn), None);
    let allow_all: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(json!([{"allow": true, "access": "rwm"}])).unwrap();
    assert_eq!(resources::device_rules(&allow_all, &mut warn), None);
}

#[test]
fn cgroups_path_is_the_exact_group_without_a_warning() {
    for path in ["/runtime-tools/abc", "testdir/cgrouptest/container"] {
        let (c, w) = shown(&spec(json!({"linux": {"cgroupsPath": path,
            "resources": {"pids": {"limit": 10}}}})));
        assert!(
            c.contains(&format!("parent: Some({path:?}), exact: true")),
            "{c}"
        );
        assert!(c.contains("pids_max: Some(Limit(10))"), "{c}");
        assert!(w.is_empty(), "{w:?}");
    }
    // Without cgroupsPath: the library's default place, as before.
    let (c, w) = shown(&spec(
        json!({"linux": {"resources": {"pids": {"limit": 10}}}}),
    ));
    assert!(c.contains("parent: None, exact: false"), "{c}");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn seccomp_profile_is_mapped() {
    use contain::security::{
        Seccomp, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOp, SeccompProfile,
        SeccompRule,
    };
    let s = spec(json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    }}}));
    let linux = s.linux().clone().unwrap();
    let want = SeccompProfile {
        default_errno_ret: Some(38),
        architectures: vec![SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32],
        flags: vec![SeccompFlag::Log],
        syscalls: vec![
            SeccompRule::new(["read", "write"], SeccompAction::Allow),
            SeccompRule::new(["personality"], SeccompAction::Allow).arg(SeccompArg::new(
                0,
                SeccompOp::Equal,
                8,
            )),
            SeccompRule::new(["clone"], SeccompAction::Allow).arg(SeccompArg::masked_eq(
                0,
                2_114_060_288,
                0,
            )),
            SeccompRule::new(["getcwd"], SeccompAction::Errno).errno(1),
        ],
        skip_unknown_syscalls: true,
        ..SeccompProfile::new(SeccompAction::Errno)
    };
    match linux::seccomp(&linux).unwrap() {
        Seccomp::Profile(p) => assert_eq!(p, want),
        other => panic!("{other:?}"),
    }
    #[cfg(target_arch = "x86_64")]
    assert!(!want.compile().unwrap().is_empty());
    // No seccomp object: no filter at all.
    assert!(matches!(
        linux::seccomp(&spec(json!({})).linux().clone().unwrap()).unwrap(),
        Seccomp::Disabled
    ));
    let bad = spec(
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}}}),
    );
    assert!(matches!(
        linux::seccomp(&bad.linux().clone().unwrap()),
        Err(contain::Error::Config {
            what: "linux.seccomp",
            ..
        })
    ));
}

#[test]
fn oom_score_adj_is_applied_after_create() {
    let s = spec(json!({"process": {"oomScoreAdj": 500}}));
    let after = AfterCreate::of(&s);
    assert_eq!(after.oom_score_adj, Some(500));
    assert_eq!(AfterCreate::of(&spec(json!({}))), AfterCreate::default());
    // A process of ours stands for the parked container (raising needs no privilege).
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let result = after.apply(pid);
    let read = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"));
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
    assert_eq!(read.unwrap().trim(), "500");
    // Gone: the write's errno, with the path.
    match after.apply(pid) {
        Err(contain::Error::Sys {
            syscall: "write",
            path: Some(p),
            errno,
        }) => {
            assert_eq!(p, Path::new(&format!("/proc/{pid}/oom_score_adj")));
            assert_eq!(errno.raw(), libc::ENOENT);
        }
        other => panic!("{other:?}"),
    }
    let bad = AfterCreate {
        oom_score_adj: Some(1001),
    };
    assert!(matches!(
        bad.apply(pid),
        Err(contain::Error::Config {
            what: "process.oomScoreAdj",
            ..
        })
    ));
}

#[test]
fn personality_flags_and_console_size_are_mapped() {
    let (c, w) = shown(&spec(json!({
        "process": {"terminal": true, "consoleSize": {"height": 24, "width": 80}},
        "linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}
    })));
    assert!(w.is_empty(), "{w:?}");
    assert!(
        c.contains("console_size: Some(WindowSize { rows: 24, cols: 80 })"),
        "{c}"
    );
    assert!(
        c.contains("personality: Some(Personality { domain: Linux, flags: PersonalityFlags(ADDR_NO_RANDOMIZE) })"),
        "{c}"
    );
    let (what, why) = refused(map(&spec(json!({
        "linux": {"personality": {"domain": "LINUX", "flags": ["NO_SUCH"]}}
    }))));
    assert_eq!(what, "linux.personality", "{why}");
    let (what, _) = refused(map(&spec(json!({
        "process": {"terminal": true, "consoleSize": {"height": 70000, "width": 80}}
    }))));
    assert_eq!(what, "process.consoleSize");
}
