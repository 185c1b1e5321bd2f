//! Spawning into cgroups: CLONE_INTO_CGROUP (and its fallback), cgroup namespaces, cgroups
//! created from limits, the exit report, and the errors on hosts without a controller.
//!
//! The controller cases need cgroup v2 with memory, pids and cpu: they run in the qemu guest
//! (`cargo xtask test`, from the busy non-root cgroup /ci.scope, as on a real host); on a
//! host without them they assert the `Unsupported` error instead. Nothing waits by sleeping:
//! children report on a pipe; the one sleep is the window over which CPU time is measured.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{is_root, output, role, stdout};
use contain::cgroup::{
    Bytes, Cgroup, CgroupBuilder, Controller, CpuMax, HostCgroups, OwnedCgroup, Resources,
};
use contain::namespace::Namespaces;
use contain::process::{CloneCall, Container};
use contain::Error;
use contain::Signal;

/// A parent group of ours for `cgroup_parent`, removed on drop: made where the library puts
/// groups by default, enabling for its children those of `controllers` the host offers (from
/// a busy cgroup that is `<mount>/contain`, as the caller's own cgroup cannot).
fn test_group(tag: &str, controllers: &[Controller]) -> OwnedCgroup {
    let mut b = CgroupBuilder::new(format!("contain-test-{tag}-{}", std::process::id()));
    for &c in controllers {
        if available(c).is_ok() {
            b = b.controller(c);
        }
    }
    b.create_in_default().expect("create a test cgroup")
}

fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

/// In the guest, which runs the tests from the busy cgroup /ci.scope unless
/// `CONTAIN_VM_CGROUP` (`cargo xtask vm --env CONTAIN_VM_CGROUP=`) says otherwise.
fn vm_busy() -> bool {
    in_vm() && std::env::var_os("CONTAIN_VM_CGROUP").is_none()
}

/// Whether the caller's own cgroup is not the root (it then holds processes: this one).
fn own_is_busy() -> bool {
    !Cgroup::own().unwrap().is_root().unwrap()
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
        let cg = test_group(tag, &[]);
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
    let parent = test_group("inner", &[c]);
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
    let parent = test_group("limits", &[Controller::Pids]);
    let mut limits = Resources::new();
    if available(Controller::Pids).is_ok() {
        limits = limits.pids_max(64);
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
    let usage = child.usage().unwrap().cgroup.expect("the cgroup's usage");
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
    let limits = Resources::new()
        .memory_max(Bytes::mib(32))
        .memory_swap_max(Bytes(0));
    let parent = test_group("oom", &[Controller::Memory]);
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
    assert_eq!(status.signal(), Some(Signal::SIGKILL), "{status}");
    assert_eq!(status.shell_code(), 137);
    let usage = child.usage().unwrap().cgroup.expect("the cgroup's usage");
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
    let limits = Resources::new().pids_max(4);
    let parent = test_group("pids", &[Controller::Pids]);
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
    let limits = Resources::new().cpu_max(CpuMax::cpus(0.2).unwrap());
    let parent = test_group("cpu", &[Controller::Cpu]);
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
    std::thread::sleep(Duration::from_secs(2)); // a measuring window, not a wait
    let used = child.usage().unwrap().cgroup.unwrap().cpu.usage();
    let share = used.as_secs_f64() / start.elapsed().as_secs_f64();
    child.kill(Signal::SIGKILL).unwrap();
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
    let parent = test_group("cgns", &[]);
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

/// The limits the default-placement tests ask for: memory and pids where cgroup v2 has them.
fn small_limits() -> Resources {
    let mut limits = Resources::new();
    if available(Controller::Memory).is_ok() {
        limits = limits.memory_max(Bytes::mib(64));
    }
    if available(Controller::Pids).is_ok() {
        limits = limits.pids_max(32);
    }
    limits
}

/// The failure of a real host: from a cgroup that holds processes (a service, a CI job; the
/// guest's /ci.scope), limits work without naming a parent. The container's group goes to
/// `<mount>/contain`, the caller's own cgroup is left as it was, and the group goes with the
/// child.
#[test]
fn limits_work_by_default_from_a_busy_cgroup() {
    let test = "limits_work_by_default_from_a_busy_cgroup";
    if !is_root(test) {
        return;
    }
    for c in [Controller::Memory, Controller::Pids] {
        if let Err(e) = available(c) {
            assert!(!in_vm(), "{e}");
            eprintln!("{test}: needs {c} on cgroup v2 ({e}); not run");
            return;
        }
        if !Cgroup::root()
            .unwrap()
            .subtree_control()
            .unwrap()
            .contains(&c)
        {
            assert!(!in_vm(), "the guest's root enables every controller");
            eprintln!("{test}: the host's root cgroup does not enable {c}; not run");
            return;
        }
    }
    let busy = own_is_busy();
    if !busy {
        assert!(!vm_busy(), "the guest runs tests from a non-root cgroup");
        eprintln!("{test}: this process is in the root cgroup: the group goes there");
    }
    let own = Cgroup::own().unwrap();
    let before = own.subtree_control().unwrap();
    let o = output(
        Container::new("cat")
            .arg("/proc/self/cgroup")
            .resources(small_limits()),
    );
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("{text}"));
    let mine = format!("/contain-{}-", std::process::id());
    if busy {
        let expected = format!("/{}{mine}", contain::cgroup::PARENT);
        assert!(rel.starts_with(&expected), "{rel} (wanted {expected}...)");
    } else {
        assert!(rel.starts_with(&mine), "{rel}");
    }
    assert_eq!(own.subtree_control().unwrap(), before);
    // The Child was dropped by `output`: its group is gone.
    let v2 = HostCgroups::detect()
        .unwrap()
        .v2_mount()
        .unwrap()
        .mount_point
        .clone();
    let path = v2.join(rel.trim_start_matches('/'));
    assert!(!path.exists(), "{} was left behind", path.display());
}

/// Without root, from a cgroup that holds processes, no parent can take the controllers:
/// the error says why and what to do.
#[test]
fn without_a_parent_that_can_delegate_the_error_says_what_to_do() {
    let test = "without_a_parent_that_can_delegate_the_error_says_what_to_do";
    if role().as_deref() == Some("nobody") {
        let e = Container::new("true")
            .resources(small_limits())
            .spawn()
            .unwrap_err();
        let msg = e.to_string();
        eprintln!("the error: {msg}");
        let own = Cgroup::own().unwrap();
        assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
        for needed in [
            own.path().to_str().unwrap(),
            "no internal processes",
            "memory",
            "cgroup_parent",
            "Delegate=yes",
        ] {
            assert!(msg.contains(needed), "{needed:?} missing from: {msg}");
        }
        return;
    }
    if role().is_some() || !is_root(test) {
        return;
    }
    if available(Controller::Memory).is_err() || !own_is_busy() {
        assert!(
            !vm_busy(),
            "the guest has memory and runs tests from a busy cgroup"
        );
        eprintln!("{test}: needs memory on cgroup v2 and a non-root own cgroup; not run");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let root_mode = std::fs::metadata("/").unwrap().mode();
    if root_mode & 0o001 == 0 {
        eprintln!("{test}: / is mode {root_mode:o}, nobody cannot run the test binary; not run");
        return;
    }
    common::assert_passes_as_nobody(test, "nobody", false);
}

/// Removes a group on drop unless it is gone already: what a test made or found is never
/// left behind, even when an assertion fails.
struct Leftover(PathBuf);

impl Drop for Leftover {
    fn drop(&mut self) {
        if let (Some(parent), Some(name)) = (self.0.parent(), self.0.file_name()) {
            if let Ok(parent) = Cgroup::open(parent) {
                let _ = parent.remove_child(name, Duration::from_secs(5));
            }
        }
    }
}

/// Starts this test binary as a run that makes a container cgroup, reports its path and
/// waits to be killed; kills it with SIGKILL once it has reported, and returns the path.
fn killed_run(test: &str) -> PathBuf {
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", "runner")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(runner.stdout.take().unwrap());
    let mut line = String::new();
    let mut path = None;
    while out.read_line(&mut line).unwrap() > 0 {
        // libtest may print "test ... " on the same line first.
        if let Some((_, p)) = line.trim_end().split_once("cgroup=") {
            path = Some(PathBuf::from(p));
            break;
        }
        line.clear();
    }
    runner.kill().unwrap();
    let status = runner.wait().unwrap();
    let path = path.unwrap_or_else(|| panic!("the run reported no cgroup ({status})"));
    assert!(
        path.is_dir(),
        "{}: a SIGKILLed run leaves its group",
        path.display()
    );
    path
}

/// The parts of a container group's name: `contain-<pid>-<start>-<pidns>-<seq>`.
fn name_parts(path: &Path) -> [u64; 4] {
    let name = path.file_name().unwrap().to_str().unwrap();
    let parts: Vec<u64> = name
        .strip_prefix("contain-")
        .unwrap_or_else(|| panic!("{name}"))
        .split('-')
        .map(|n| n.parse().unwrap())
        .collect();
    parts.try_into().unwrap_or_else(|_| panic!("{name}"))
}

/// A run killed with SIGKILL leaves its empty group behind: the next run's first spawn in the
/// same parent sweeps it, and so does `cleanup`; groups of live runs, groups that still hold
/// processes, and groups of other pid namespaces are kept; a group named after a live pid
/// with another start time (a reused pid) is swept.
#[test]
fn stale_groups_of_dead_runs_are_swept() {
    let test = "stale_groups_of_dead_runs_are_swept";
    if role().as_deref() == Some("runner") {
        let mut child = Container::new("true")
            .resources(small_limits())
            .spawn()
            .unwrap();
        assert!(child.wait().unwrap().success());
        println!("cgroup={}", child.cgroup().unwrap().path().display());
        // Hang until killed: the test never writes to or closes our stdin first.
        let _ = std::io::stdin().read_line(&mut String::new());
        return;
    }
    if role().is_some() || !is_root(test) {
        return;
    }
    let first = killed_run(test);
    let _first_guard = Leftover(first.clone());
    let parent_path = first.parent().unwrap().to_owned();
    let parent = Cgroup::open(&parent_path).unwrap();

    // A second run's first spawn there sweeps the first run's group.
    let second = killed_run(test);
    let _second_guard = Leftover(second.clone());
    assert_eq!(second.parent(), Some(parent_path.as_path()));
    assert!(
        !first.exists(),
        "the next run's spawn left {}",
        first.display()
    );

    // A live run's group: ours.
    let mut live = Container::new("true")
        .resources(small_limits())
        .spawn()
        .unwrap();
    assert!(live.wait().unwrap().success());
    let live_path = live.cgroup().unwrap().path().to_owned();
    assert_eq!(live_path.parent(), Some(parent_path.as_path()));
    let [pid, start, pidns, _] = name_parts(&live_path);
    assert_eq!(pid, u64::from(std::process::id()));

    // Our pid with another start time: a run whose pid was reused by this process.
    let reused = CgroupBuilder::new(format!("contain-{pid}-{}-{pidns}-0", start + 1))
        .create_in(&parent)
        .unwrap();
    // Another pid namespace: its pids mean other processes, so it is not ours to judge.
    let foreign = CgroupBuilder::new(format!("contain-{}-1-{}-0", 1 << 23, pidns + 1))
        .create_in(&parent)
        .unwrap();
    // A dead run's group that still holds a process (a container that outlived its runner).
    let orphan = CgroupBuilder::new(format!("contain-{}-1-{pidns}-0", 1 << 23))
        .create_in(&parent)
        .unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    orphan
        .add_process(contain::Pid::from_raw(sleeper.id() as i32).unwrap())
        .unwrap();

    // The second run's group is swept by this process's first spawn there, or else now.
    let second_left = second.exists();
    let swept = contain::cgroup::cleanup().unwrap();
    eprintln!("{swept:?}");
    assert_eq!(swept.removed.contains(&second), second_left, "{swept:?}");
    assert!(
        swept.removed.contains(&reused.path().to_owned()),
        "{swept:?}"
    );
    assert!(!second.exists() && !reused.path().exists());
    assert!(live_path.is_dir(), "a live run's group was removed");
    assert!(
        foreign.path().is_dir(),
        "another pid namespace's group was removed"
    );
    assert!(
        swept.populated.contains(&orphan.path().to_owned()),
        "{swept:?}"
    );
    assert!(orphan.path().is_dir());
    assert_eq!(
        sleeper.try_wait().unwrap(),
        None,
        "cleanup killed a process"
    );
    assert!(
        !swept.removed.contains(&live_path) && !swept.removed.contains(&foreign.path().to_owned())
    );

    // Once empty, the orphan's group goes too.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    orphan.wait_empty(Duration::from_secs(10)).unwrap();
    let swept = contain::cgroup::cleanup_in(&parent).unwrap();
    assert_eq!(swept.removed, vec![orphan.path().to_owned()], "{swept:?}");
    drop(live);
    assert!(
        !live_path.exists(),
        "the live run's group goes with its Child"
    );
    foreign.remove(Duration::from_secs(5)).unwrap();
}

/// The cgroup v2 mount point.
fn v2_mount() -> PathBuf {
    HostCgroups::detect()
        .unwrap()
        .v2_mount()
        .unwrap()
        .mount_point
        .clone()
}

/// pids.max 17 where the host offers pids on cgroup v2 (the guest does), else no limit.
fn pids_17(test: &str) -> (Resources, bool) {
    match available(Controller::Pids) {
        Ok(()) => (Resources::new().pids_max(17), true),
        Err(e) => {
            assert!(!in_vm(), "{e}");
            eprintln!("{test}: no pids on cgroup v2 ({e}): placement checked without a limit");
            (Resources::new(), false)
        }
    }
}

/// The pid is in `cg`, and pids.max is 17 there when the limit was asked for.
fn assert_placed(child: &contain::process::Child, cg: &Path, limited: bool) {
    let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l == child.pid().to_string()),
        "{} not in {}: {procs}",
        child.pid(),
        cg.display()
    );
    if limited {
        let max = std::fs::read_to_string(cg.join("pids.max")).unwrap();
        assert_eq!(max.trim(), "17", "{}", cg.display());
    }
}

/// OCI's `linux.cgroupsPath` with an absolute path: the group is made at exactly that path
/// below the mount, its missing parents on the way (and the controllers down the path); the
/// parents made go with the child, the one that existed stays.
#[test]
fn cgroup_path_absolute_is_exact_and_only_made_parents_go_with_the_child() {
    let test = "cgroup_path_absolute_is_exact_and_only_made_parents_go_with_the_child";
    if !is_root(test) {
        return;
    }
    let existing = test_group("exact", &[Controller::Pids]);
    let rel = existing.path().strip_prefix(v2_mount()).unwrap().to_owned();
    let (limits, limited) = pids_17(test);
    let mut child = Container::new("sleep")
        .arg("30")
        .resources(limits)
        .cgroup_path(Path::new("/").join(&rel).join("made-a/made-b/leaf"))
        .spawn()
        .unwrap();
    let cg = child.cgroup().expect("a cgroup").path().to_owned();
    assert_eq!(cg, existing.path().join("made-a/made-b/leaf"));
    assert_placed(&child, &cg, limited);
    child.kill(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    drop(child);
    assert!(
        !existing.path().join("made-a").exists(),
        "made parents left"
    );
    assert!(existing.path().is_dir(), "an existing parent was removed");
    existing.remove(Duration::from_secs(5)).unwrap();
}

/// A relative `cgroupsPath` is below the parent of our own cgroup (which holds us and so
/// cannot enable controllers), or below our own when it is the top, as runc's v2 driver.
#[test]
fn cgroup_path_relative_is_below_the_parent_of_our_own_cgroup() {
    let test = "cgroup_path_relative_is_below_the_parent_of_our_own_cgroup";
    if !is_root(test) {
        return;
    }
    let own = Cgroup::own().unwrap();
    let base = match own.parent().unwrap() {
        Some(parent) => parent.path().to_owned(),
        None => own.path().to_owned(),
    };
    let name = format!("contain-test-rel-{}", std::process::id());
    let (limits, limited) = pids_17(test);
    let mut child = Container::new("sleep")
        .arg("30")
        .resources(limits)
        .cgroup_path(format!("{name}/inner"))
        .spawn()
        .unwrap();
    let cg = child.cgroup().expect("a cgroup").path().to_owned();
    assert_eq!(cg, base.join(&name).join("inner"));
    assert_placed(&child, &cg, limited);
    child.kill(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    drop(child);
    assert!(!base.join(&name).exists(), "the made parent was left");
}

/// An existing group at the path that holds processes is refused (and left alone); an
/// empty one is taken over, and goes with the child. `..` is refused.
#[test]
fn cgroup_path_refuses_a_populated_group_and_takes_over_an_empty_one() {
    let test = "cgroup_path_refuses_a_populated_group_and_takes_over_an_empty_one";
    if !is_root(test) {
        return;
    }
    let existing = test_group("busy", &[]);
    let abs = Path::new("/").join(existing.path().strip_prefix(v2_mount()).unwrap());
    let mut first = Container::new("sleep")
        .arg("30")
        .cgroup(existing.try_clone().unwrap())
        .spawn()
        .unwrap();
    let e = Container::new("true")
        .cgroup_path(&abs)
        .spawn()
        .expect_err("a populated group must be refused");
    assert!(
        matches!(e, Error::Config { .. }) && e.to_string().contains("holds processes"),
        "{e}"
    );
    first.kill(Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    drop(first);
    assert!(existing.path().is_dir());

    let mut second = Container::new("true").cgroup_path(&abs).spawn().unwrap();
    assert_eq!(second.cgroup().unwrap().path(), existing.path());
    assert!(second.wait().unwrap().success());
    drop(second);
    assert!(
        !existing.path().exists(),
        "the adopted group stays ours to remove"
    );
    existing.remove(Duration::from_secs(5)).unwrap();

    let e = Container::new("true")
        .cgroup_path("a/../b")
        .spawn()
        .expect_err("`..` must be refused");
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

/// A parent on the path that holds processes cannot enable the controllers the limits need
/// (cgroup v2's "no internal processes" rule): the error says so, and nothing is made.
#[test]
fn cgroup_path_through_a_parent_with_processes_names_the_rule() {
    let test = "cgroup_path_through_a_parent_with_processes_names_the_rule";
    if !is_root(test) {
        return;
    }
    let (limits, limited) = pids_17(test);
    if !limited {
        eprintln!("{test}: no controller to enable here; not run");
        return;
    }
    let busy = test_group("busyparent", &[]);
    let abs = Path::new("/").join(busy.path().strip_prefix(v2_mount()).unwrap());
    let mut first = Container::new("sleep")
        .arg("30")
        .cgroup(busy.try_clone().unwrap())
        .spawn()
        .unwrap();
    let e = Container::new("true")
        .resources(limits)
        .cgroup_path(abs.join("made/leaf"))
        .spawn()
        .expect_err("a parent with processes cannot enable pids");
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("no internal processes"),
        "{e}"
    );
    assert!(!busy.path().join("made").exists(), "a made parent was left");
    first.kill(Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    drop(first);
    busy.remove(Duration::from_secs(5)).unwrap();
}
