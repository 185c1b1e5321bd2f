//! End to end (as root): a realistic config.json — `runc spec`'s default, written out by hand
//! below, plus a bind mount, a masked file and a sysctl — mapped by `contain_oci::spec` and
//! spawned on a busybox rootfs; the container reports what it got.

// The main crate's busybox rootfs builder (its other helpers need the crate's dev-deps).
#[allow(dead_code)]
#[path = "../../tests/common/busybox.rs"]
mod busybox;

mod common;

// The temporary directory `busybox` builds its rootfs in.
use common::TempDir;

use std::path::Path;

use contain::process::Stdio;
use contain_oci::spec::container;
use oci_spec::runtime::Spec;
use serde_json::json;

/// runc 1.1's `runc spec` (rootfs read-only, hostname `runc`, the three capabilities, the
/// mounts, masked and read-only paths, and the deny-all device rule), with `args`, a uid, a
/// bind of `<bundle>/vol` at `/data`, one more masked path, three device nodes, a sysctl and
/// an `rshared` root.
fn runc_default(uid: u32, args: &[&str]) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": uid, "additionalGids": [5]},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "inheritable": caps,
                "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/data", "type": "bind", "source": "vol",
             "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "cgroup"}
            ],
            "devices": [
                {"path": "/dev/test1", "type": "c", "major": 1, "minor": 3, "fileMode": 432,
                 "uid": 10, "gid": 5},
                {"path": "/dev/test2", "type": "b", "major": 7, "minor": 200},
                {"path": "/dev/test3", "type": "p", "fileMode": 384}
            ],
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "rootfsPropagation": "rshared",
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/etc/image"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Maps `runc_default(uid, sh -c script)` for a bundle at `bundle`, runs it and returns its
/// stdout (after checking it succeeded) and the mapping's warnings.
fn run(bundle: &Path, uid: u32, script: &str) -> (String, Vec<String>) {
    let spec: Spec = serde_json::from_value(runc_default(uid, &["sh", "-c", script])).unwrap();
    let (c, warnings) = container(bundle, &spec).expect("the config maps");
    let out = c
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stdout}{stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
    (stdout, warnings)
}

/// `KILL` (5), `NET_BIND_SERVICE` (10) and `AUDIT_WRITE` (29), as /proc/PID/status shows them.
const CAPS: &str = "0000000020000420";

/// The bundle: a busybox rootfs and `vol/marker` beside it.
fn bundle() -> busybox::BusyboxRootfs {
    let image = busybox::BusyboxRootfs::new("oci-spec");
    std::fs::create_dir(image.dir().join("vol")).unwrap();
    std::fs::write(image.dir().join("vol/marker"), "from the bundle\n").unwrap();
    assert!(!std::fs::read_to_string(image.root().join("etc/image"))
        .unwrap()
        .is_empty());
    image
}

#[test]
fn runc_default_config_runs_on_busybox() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: runc_default_config_runs_on_busybox: needs root (CI runs as root)");
        return;
    }
    let image = bundle();
    let script = "hostname; id -u; id -G; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status; \
                  cat /data/marker; echo \"masked:[$(cat /etc/image)]\"; \
                  cat /proc/sys/net/ipv4/ip_forward; \
                  touch /data/x 2>/dev/null && echo data-writable || echo data-ro; \
                  touch /y 2>/dev/null && echo root-writable || echo root-ro";
    let (stdout, warnings) = run(image.dir(), 1000, script);
    let want = format!(
        "runc\n1000\n1000 5\nCapInh:\t{CAPS}\nCapPrm:\t{CAPS}\nCapEff:\t{CAPS}\n\
         CapBnd:\t{CAPS}\nCapAmb:\t{CAPS}\nfrom the bundle\nmasked:[]\n1\ndata-ro\nroot-ro\n"
    );
    assert_eq!(stdout, want);
    assert!(!image.dir().join("vol/x").exists());
    // runc's default asks for nothing the library does not do.
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn runc_default_config_as_root_keeps_caps_and_makes_devices_and_root_propagation() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "skipped: runc_default_config_as_root_keeps_caps_and_makes_devices_and_root_propagation: \
             needs root (CI runs as root)"
        );
        return;
    }
    let image = bundle();
    // The root's mountinfo line: "ID PARENT MAJ:MIN ROOT / OPTIONS [shared:N ...] - ...".
    let (stdout, _) = run(
        image.dir(),
        0,
        "id -u; grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status; \
         grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo | grep -o 'shared:'; \
         for d in /dev/test1 /dev/test2 /dev/test3; do stat -c '%n %F %t:%T %a %u:%g' $d; done",
    );
    assert_eq!(
        stdout,
        format!(
            "0\nCapPrm:\t{CAPS}\nCapEff:\t{CAPS}\nCapBnd:\t{CAPS}\nshared:\n\
             /dev/test1 character special file 1:3 660 10:5\n\
             /dev/test2 block special file 7:c8 666 0:0\n\
             /dev/test3 fifo 0:0 600 0:0\n"
        )
    );
}

/// A profile that refuses `close_range` with EPERM, installed before the setup's own
/// `close_range` (without noNewPrivileges the filter comes first, while the process may
/// still install it): the setup falls back to closing one descriptor at a time, as with
/// runtime-tools' default profile (which lists calls up to landlock's, but not close_range).
#[test]
fn profile_without_close_range_before_the_setup_ends() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: profile_without_close_range_before_the_setup_ends: needs root");
        return;
    }
    let image = bundle();
    let mut config = runc_default(0, &["sh", "-c", "echo started"]);
    config["process"]["noNewPrivileges"] = json!(false);
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let spec: Spec = serde_json::from_value(config).unwrap();
    let (c, _) = container(image.dir(), &spec).expect("the config maps");
    let out = c
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
}
