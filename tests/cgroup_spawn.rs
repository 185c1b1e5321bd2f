//! Spawning into cgroups: CLONE_INTO_CGROUP (and its fallback), cgroup namespaces, cgroups
//! created from limits, the exit report, and the errors on hosts without a controller.
//!
//! The controller cases need cgroup v2 with memory, pids and cpu: they run in the qemu guest
//! (`cargo xtask test`); on a host without them they assert the `Unsupported` error instead.

mod common;

use std::time::Duration;

use common::{is_root, output, stdout};
use contain::cgroup::{
    Bytes, Cgroup, CgroupBuilder, Controller, CpuMax, HostCgroups, Max, Resources,
};
use contain::namespace::Namespaces;
use contain::process::{CloneCall, Container};
use contain::Error;

/// A group of ours directly under the cgroup v2 root, removed on drop.
fn test_group(tag: &str) -> contain::cgroup::OwnedCgroup {
    CgroupBuilder::new(format!("contain-test-{tag}-{}", std::process::id()))
        .create_in(&Cgroup::root().expect("a cgroup v2 mount (hybrid hosts have one)"))
        .expect("create a test cgroup")
}

fn available(c: Controller) -> Result<(), Error> {
    HostCgroups::detect().unwrap().check(c)
}

#[test]
fn spawns_straight_into_a_cgroup_with_and_without_clone3() {
    if !is_root("spawns_straight_into_a_cgroup_with_and_without_clone3") {
        return;
    }
    for (tag, call) in [("clone3", CloneCall::Auto), ("legacy", CloneCall::Legacy)] {
        let cg = test_group(tag);
        let name = cg
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let o = output(
            Container::new("cat")
                .arg("/proc/self/cgroup")
                .cgroup(cg.try_clone().unwrap())
                .clone_call(call),
        );
        assert!(o.status.success(), "{o:?}");
        assert!(
            stdout(&o)
                .lines()
                .any(|l| l.starts_with("0::") && l.ends_with(&format!("/{name}"))),
            "{tag}: {}",
            stdout(&o)
        );

        // With a cgroup namespace the container's own group is its root, on both paths.
        let o = output(
            Container::new("cat")
                .arg("/proc/self/cgroup")
                .namespaces(Namespaces::CGROUP)
                .cgroup(cg.try_clone().unwrap())
                .clone_call(call),
        );
        assert!(
            stdout(&o).lines().any(|l| l == "0::/"),
            "{tag}: {}",
            stdout(&o)
        );
        cg.remove(Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn a_group_with_processes_and_controllers_is_refused_with_the_rule_named() {
    if !is_root("a_group_with_processes_and_controllers_is_refused_with_the_rule_named") {
        return;
    }
    // The rule binds domain controllers (memory, hugetlb), not threaded ones (pids, cpu).
    let Ok(()) = available(Controller::Memory) else {
        // Hybrid host: only hugetlb is on cgroup v2; use it to enable a controller below.
        eprintln!("memory is not on cgroup v2 here: using hugetlb for subtree_control");
        return check_internal_process_rule(Controller::Hugetlb);
    };
    check_internal_process_rule(Controller::Memory);
}

fn check_internal_process_rule(c: Controller) {
    let root = Cgroup::root().unwrap();
    if std::env::var_os("CONTAIN_IN_VM").is_none() && !root.subtree_control().unwrap().contains(&c)
    {
        // Enabling it would change the host's own root cgroup, which tests never do.
        eprintln!(
            "{} is not enabled in the host's root cgroup.subtree_control: this runs in the VM",
            c.name()
        );
        return;
    }
    let parent = test_group("inner");
    let leaf = CgroupBuilder::new("leaf")
        .controller(c)
        .create_in(&parent)
        .unwrap();
    // `parent` now enables `c` for its children: it may not hold processes itself.
    let e = Container::new("true")
        .cgroup(parent.try_clone().unwrap())
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("no internal processes"), "{e}");
    drop(leaf);
    parent.remove(Duration::from_secs(5)).unwrap();
}

#[test]
fn limits_create_a_cgroup_that_goes_with_the_child() {
    if !is_root("limits_create_a_cgroup_that_goes_with_the_child") {
        return;
    }
    let parent = test_group("limits");
    let mut limits = Resources::default();
    if available(Controller::Pids).is_ok() {
        limits.pids_max = Some(Max::Limit(64));
    }
    let mut child = Container::new("sleep")
        .arg("0.1")
        .resources(limits)
        .cgroup_parent(parent.path())
        .spawn()
        .unwrap();
    let path = child
        .cgroup()
        .expect("spawn made a cgroup")
        .path()
        .to_owned();
    assert!(path.starts_with(parent.path()), "{path:?}");
    assert!(path.is_dir());
    assert!(child.wait().unwrap().success());
    let usage = child.usage().unwrap();
    assert!(usage.cpu.usage() > Duration::ZERO, "{usage:?}");
    drop(child);
    assert!(!path.exists(), "the child's cgroup must go with it");
    parent.remove(Duration::from_secs(5)).unwrap();
}

#[test]
fn memory_limit_ends_in_an_oom_kill_that_the_report_shows() {
    if !is_root("memory_limit_ends_in_an_oom_kill_that_the_report_shows") {
        return;
    }
    let mut limits = Resources::default();
    limits.memory_max = Some(Max::Limit(Bytes::mib(32)));
    limits.memory_swap_max = Some(Max::Limit(Bytes(0)));
    let parent = test_group("oom");
    let spawned = Container::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
        .resources(limits)
        .cgroup_parent(parent.path())
        .spawn();
    if let Err(missing) = available(Controller::Memory) {
        let e = spawned.unwrap_err();
        eprintln!("no memory controller on cgroup v2 here ({missing}); checked the error instead");
        assert!(
            matches!(&e, Error::Unsupported { feature, .. } if feature.contains("memory")),
            "{e}"
        );
        assert!(
            parent.children().unwrap().is_empty(),
            "nothing may be left behind"
        );
        return;
    }
    let mut child = spawned.unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert_eq!(status.shell_code(), 137);
    let usage = child.usage().unwrap();
    assert!(usage.memory_events.unwrap().oom_kill >= 1, "{usage:?}");
    assert!(
        usage.memory_peak.is_none_or(|p| p <= Bytes::mib(32)),
        "{usage:?}"
    );
}

#[test]
fn pids_limit_makes_forks_fail() {
    if !is_root("pids_limit_makes_forks_fail") {
        return;
    }
    let mut limits = Resources::default();
    limits.pids_max = Some(Max::Limit(4));
    let parent = test_group("pids");
    let spawned = Container::new("sh")
        .args(["-c", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait"])
        .resources(limits)
        .cgroup_parent(parent.path())
        .stderr(contain::process::Stdio::Piped)
        .spawn();
    if let Err(missing) = available(Controller::Pids) {
        let e = spawned.unwrap_err();
        eprintln!("no pids controller on cgroup v2 here ({missing}); checked the error instead");
        assert!(
            matches!(&e, Error::Unsupported { feature, .. } if feature.contains("pids")),
            "{e}"
        );
        return;
    }
    let mut child = spawned.unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    child.wait().unwrap();
    let events = child.cgroup().unwrap().pids().unwrap().events().unwrap();
    assert!(events.max >= 1, "pids.events: {events:?}");
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
}

#[test]
fn cpu_limit_holds_a_busy_loop_near_its_share() {
    if !is_root("cpu_limit_holds_a_busy_loop_near_its_share") {
        return;
    }
    let mut limits = Resources::default();
    limits.cpu_max = Some(CpuMax::cpus(0.2).unwrap());
    let parent = test_group("cpu");
    let spawned = Container::new("sh")
        .args(["-c", "while :; do :; done"])
        .resources(limits)
        .cgroup_parent(parent.path())
        .spawn();
    if let Err(missing) = available(Controller::Cpu) {
        let e = spawned.unwrap_err();
        eprintln!("no cpu controller on cgroup v2 here ({missing}); checked the error instead");
        assert!(
            matches!(&e, Error::Unsupported { feature, .. } if feature.contains("cpu")),
            "{e}"
        );
        return;
    }
    let mut child = spawned.unwrap();
    let start = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = child.usage().unwrap().cpu.usage();
    let share = used.as_secs_f64() / start.elapsed().as_secs_f64();
    child.kill(libc::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(
        (0.1..=0.3).contains(&share),
        "a 0.2 CPU limit gave {share:.3} of a CPU"
    );
}

#[test]
fn the_container_sees_its_own_cgroup_read_only_unless_delegated() {
    if !is_root("the_container_sees_its_own_cgroup_read_only_unless_delegated") {
        return;
    }
    let parent = test_group("cgns");
    let script = "cat /proc/self/cgroup | grep '^0::'; grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f6; mkdir /sys/fs/cgroup/sub && echo made";
    for writable in [false, true] {
        let o = output(
            Container::new("sh")
                .args(["-c", script])
                .namespaces(contain::namespace::Namespaces::all())
                .rootfs(contain::rootfs::Rootfs::host().cgroup_writable(writable))
                .resources(Resources::default())
                .cgroup_parent(parent.path()),
        );
        let text = stdout(&o);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("0::/"),
            "its own cgroup is its root: {text}"
        );
        let opts = lines.next().unwrap_or_default();
        if writable {
            assert!(opts.starts_with("rw"), "{opts}");
            assert_eq!(lines.next(), Some("made"), "delegated on purpose: {o:?}");
        } else {
            assert!(opts.starts_with("ro"), "{opts}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
                "{o:?}"
            );
        }
    }
    // The delegated subgroup went with the container's cgroup.
    assert!(parent.children().unwrap().is_empty());
    parent.remove(Duration::from_secs(5)).unwrap();
}
