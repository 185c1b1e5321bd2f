//! Integration tests of the cgroup v2 layer.
//!
//! They create groups and need root; without root each test says so and returns. Groups go
//! where the library puts them by default (`CgroupBuilder::create_in_default`): the caller's
//! own cgroup when they need no controller, otherwise `<cgroup2 mount>/contain`, so the tests
//! pass both at the root cgroup and, as on real hosts (a service, a CI job, a container),
//! from a non-root cgroup that holds processes. Tests that need a controller cgroup v2 lacks
//! here (on a hybrid host: all but hugetlb), or one the root does not enable (the library
//! never reconfigures the host's root), assert the `Unsupported` error instead and say so;
//! they run for real in the qemu guest (pure cgroup v2, every controller, tests run from the
//! busy cgroup /ci.scope), where `CONTAIN_IN_VM=1` makes a missing controller a failure:
//!
//! ```text
//! cargo xtask test --vm-only -- --test cgroup
//! ```
//!
//! Every group is an `OwnedCgroup` (removed on drop, even when an assertion fails) and every
//! process a `Spawned` (killed and reaped on drop); each test checks that its group is gone.
//! Nothing waits by sleeping: children report "ready" on a pipe, and the library's waits
//! poll `cgroup.events`. The only sleeps are the fixed windows over which CPU time is
//! measured.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use contain::cgroup::{
    Bytes, Cgroup, CgroupBuilder, Controller, CpuList, CpuMax, Device, Hierarchy, HostCgroups,
    HugePageSize, IoMax, Max, OwnedCgroup, Resources, Weight,
};
use contain::{Errno, Error, Pid, Signal};

const TIMEOUT: Duration = Duration::from_secs(10);

/// True if running as root; otherwise says the test needs root.
fn root(test: &str) -> bool {
    let is_root = nix::unistd::geteuid().is_root();
    if !is_root {
        eprintln!("{test}: needs root to create cgroups; not run");
    }
    is_root
}

/// Set in the qemu guest, where every controller must be there.
fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

/// In the guest, which runs the tests from the busy cgroup /ci.scope unless
/// `CONTAIN_VM_CGROUP` (`cargo xtask vm --env CONTAIN_VM_CGROUP=`) says otherwise.
fn vm_busy() -> bool {
    in_vm() && std::env::var_os("CONTAIN_VM_CGROUP").is_none()
}

fn host() -> HostCgroups {
    HostCgroups::detect().expect("detect cgroups")
}

/// Whether cgroup v2 offers `c`; in the VM it must.
fn has(c: Controller) -> bool {
    let ok = host().check(c).is_ok();
    assert!(
        ok || !in_vm(),
        "the VM's cgroup v2 lacks {c}: {}",
        host().hierarchy()
    );
    ok
}

fn name(test: &str) -> String {
    format!("contain-test-{}-{test}", std::process::id())
}

/// Asserts that `e` is the `Unsupported` error for a controller cgroup v2 lacks, and that it
/// says why in the host's terms.
fn assert_unsupported(e: &Error, c: Controller) {
    let Error::Unsupported { feature, reason } = e else {
        panic!("expected Unsupported for {c}, got {e}")
    };
    // Every missing controller is named in the one error: "memory controller", or "memory
    // and pids controllers".
    assert!(
        feature == &format!("{c} controller")
            || (feature.ends_with(" controllers")
                && feature.split([' ', ',']).any(|w| w == c.name())),
        "{e}"
    );
    let host = host();
    if let Hierarchy::Hybrid { v2, v1 } = host.hierarchy() {
        let v1_name = if c == Controller::Io {
            "blkio"
        } else {
            c.name()
        };
        if let Some(m) = v1
            .iter()
            .find(|m| m.controllers.iter().any(|x| x == v1_name))
        {
            assert!(
                reason.contains(&format!(
                    "is bound to the cgroup v1 hierarchy at {}",
                    m.mount_point.display()
                )),
                "{e}"
            );
        }
        assert!(
            reason.contains(&format!("cgroup v2 at {}", v2.mount_point.display())),
            "{e}"
        );
    }
}

/// Creates `builder`'s group where the library puts groups by default. `None` when the
/// group cannot be made here for a reason of the host's, after checking that the error says
/// so: a controller cgroup v2 lacks, or one the root cgroup does not enable (the library
/// refuses to reconfigure the host's root; the guest enables everything). In the VM neither
/// may happen.
fn create(test: &str, builder: &CgroupBuilder, needs: &[Controller]) -> Option<OwnedCgroup> {
    let e = match builder.create_in_default() {
        Ok(cg) => return Some(cg),
        Err(e) => e,
    };
    if let Some(&c) = needs.iter().find(|&&c| !has(c)) {
        assert_unsupported(&e, c);
        eprintln!("{test}: cgroup v2 lacks {c} here; checked the error instead");
        return None;
    }
    let root = Cgroup::root().unwrap();
    let enabled = root.subtree_control().unwrap();
    if let Some(&c) = needs.iter().find(|c| !enabled.contains(c)) {
        assert!(!in_vm(), "the guest's root enables every controller: {e}");
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Unsupported { .. })
                && msg.contains(&format!(
                    "echo +{c} > {}",
                    root.path().join("cgroup.subtree_control").display()
                ))
                && msg.contains("does not reconfigure the host's hierarchy"),
            "{msg}"
        );
        eprintln!(
            "{test}: the host's root cgroup does not enable {c} (its cgroup.subtree_control), \
             which the library leaves as it is; checked the error instead (runs in the VM)"
        );
        return None;
    }
    panic!("{test}: creating {builder:?} failed: {e}");
}

/// Whether the caller's own cgroup is not the root (it then holds processes: this one).
fn own_is_busy() -> bool {
    let own = Cgroup::own().unwrap();
    !own.is_root().unwrap()
}

/// A child process, killed and reaped on drop.
struct Spawned {
    child: Child,
}

impl Spawned {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32).unwrap()
    }

    fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `/bin/sh -c script` inside `cg`: the shell waits on stdin until the parent has
/// moved it in with `add_process`, so it never runs outside the group.
fn spawn_in(cg: &Cgroup, script: &str, stdout: Stdio) -> Spawned {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read _ || exit 1\n{script}"))
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn /bin/sh");
    let mut p = Spawned { child };
    cg.add_process(p.pid()).expect("add_process");
    let mut stdin = p.child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the child");
    p
}

/// Reads one line from the child's stdout (its "ready" report).
fn read_line(p: &mut Spawned) -> String {
    let out = p.child.stdout.take().expect("stdout piped");
    let mut r = BufReader::new(out);
    let mut line = String::new();
    r.read_line(&mut line).expect("read child stdout");
    p.child.stdout = Some(r.into_inner());
    line
}

fn assert_gone(path: &Path) {
    assert!(!path.exists(), "{} was left behind", path.display());
}

fn usage_usec(cg: &Cgroup) -> u64 {
    cg.cpu_stat().expect("cpu.stat").usage_usec
}

#[test]
fn discovery_matches_the_host() {
    let host = host();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let has_v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    match (host.hierarchy(), has_v2, has_v1) {
        (Hierarchy::PureV2(_), true, false) | (Hierarchy::Hybrid { .. }, true, true) => {}
        (Hierarchy::V1Only { .. }, false, true) | (Hierarchy::None, false, false) => {}
        (h, _, _) => panic!("classified as {h:?}, mountinfo has v2: {has_v2}, v1: {has_v1}"),
    }
    eprintln!("host: {}", host.hierarchy());
    let Some(v2) = host.hierarchy().v2() else {
        return;
    };
    let offered = std::fs::read_to_string(v2.mount_point.join("cgroup.controllers")).unwrap();
    let offered: Vec<&str> = offered.split_whitespace().collect();
    for c in Controller::ALL {
        assert_eq!(
            v2.controllers.contains(&c),
            offered.contains(&c.name()),
            "{c}"
        );
        match host.check(c) {
            Ok(()) => assert!(offered.contains(&c.name())),
            Err(e) => assert_unsupported(&e, c),
        }
    }
    assert!(host.own_cgroup_dir().unwrap().is_dir());
    if in_vm() {
        assert!(
            matches!(host.hierarchy(), Hierarchy::PureV2(_)),
            "{}",
            host.hierarchy()
        );
        for c in [
            Controller::Cpu,
            Controller::Cpuset,
            Controller::Io,
            Controller::Memory,
            Controller::Pids,
        ] {
            assert!(v2.controllers.contains(&c), "the VM lacks {c}");
        }
    }
    if let Hierarchy::Hybrid { v1, .. } = host.hierarchy() {
        // This development host: hugetlb is the one controller left to cgroup v2.
        if v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| c == "memory"))
            && offered == ["hugetlb"]
        {
            assert_eq!(v2.controllers, vec![Controller::Hugetlb]);
            let e = host.check(Controller::Memory).unwrap_err().to_string();
            assert!(e.contains("offers only hugetlb. To fix: "), "{e}");
        }
    }
}

#[test]
fn create_list_and_remove() {
    if !root("create_list_and_remove") {
        return;
    }
    let own = Cgroup::own().unwrap();
    let name = name("basic");
    let path = own.path().join(&name);
    // Without controllers the default place is the caller's own cgroup, busy or not.
    let cg = CgroupBuilder::new(&name).create_in_default().unwrap();
    assert_eq!(cg.path(), path);
    assert!(path.is_dir());
    assert!(own.children().unwrap().iter().any(|n| n == name.as_str()));
    assert!(!cg.is_root().unwrap());
    assert!(cg.procs().unwrap().is_empty());
    assert!(!cg.events().unwrap().populated);
    // A duplicated handle and a re-opened one see the same group.
    assert_eq!(cg.try_clone().unwrap().path(), path);
    assert_eq!(Cgroup::open(&path).unwrap().procs().unwrap(), vec![]);
    // A second create of the same name is refused, never adopted.
    let e = CgroupBuilder::new(&name).create_in(&own).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST), "{e}");

    let mut p = spawn_in(&cg, "exec sleep 60", Stdio::null());
    assert_eq!(cg.procs().unwrap(), vec![p.pid()]);
    assert_eq!(cg.threads().unwrap(), vec![p.pid()]);
    assert!(cg.events().unwrap().populated);
    let usage = cg.usage().unwrap();
    let with_memory = cg.controllers().unwrap().contains(&Controller::Memory);
    assert_eq!(usage.memory_events.is_some(), with_memory);
    assert_eq!(usage.memory_peak.is_some(), with_memory);

    cg.remove(TIMEOUT).unwrap();
    assert_gone(&path);
    assert_eq!(p.wait().signal(), Some(libc::SIGKILL));
}

#[test]
fn nested_groups_are_removed_depth_first() {
    if !root("nested_groups_are_removed_depth_first") {
        return;
    }
    let name = name("nested");
    let top = CgroupBuilder::new(&name).create_in_default().unwrap();
    let path = top.path().to_owned();
    let a = CgroupBuilder::new("a").create_in(&top).unwrap().keep();
    let b = CgroupBuilder::new("b").create_in(&a).unwrap().keep();
    CgroupBuilder::new("c").create_in(&a).unwrap().keep();
    let mut p = spawn_in(&b, "exec sleep 60", Stdio::null());
    assert!(top.events().unwrap().populated);
    assert_eq!(top.child("a/b").unwrap().procs().unwrap(), vec![p.pid()]);
    assert!(top.child("../x").is_err());
    drop(top); // the guard kills, waits and removes a/b, a/c, a and the top
    assert_gone(&path);
    assert_eq!(p.wait().signal(), Some(libc::SIGKILL));
    drop((a, b));
}

#[test]
fn a_failing_test_still_removes_its_group() {
    if !root("a_failing_test_still_removes_its_group") {
        return;
    }
    let name = name("panics");
    let path = Cgroup::own().unwrap().path().join(&name);
    let result = std::thread::spawn(move || {
        let cg = CgroupBuilder::new(&name).create_in_default().unwrap();
        let _p = spawn_in(&cg, "exec sleep 60", Stdio::null());
        panic!("deliberate failure with {} populated", cg.path().display());
    })
    .join();
    assert!(result.is_err());
    assert_gone(&path);
}

#[test]
fn freeze_stops_progress_and_thaw_resumes_it() {
    if !root("freeze_stops_progress_and_thaw_resumes_it") {
        return;
    }
    let cg = CgroupBuilder::new(name("freeze"))
        .create_in_default()
        .unwrap();
    let path = cg.path().to_owned();
    let mut p = spawn_in(&cg, "echo ready; while :; do :; done", Stdio::piped());
    assert_eq!(read_line(&mut p), "ready\n");
    cg.freeze(TIMEOUT).unwrap();
    assert!(cg.events().unwrap().frozen);
    // `frozen 1` is reported as the last task enters the freezer, a moment before it is
    // switched out and its last slice is accounted; on a busy host that moment can stretch,
    // hence slack against the ~300 ms a running loop gets: a tenth of it (5 ms was
    // exceeded once in the emulated guest, at 5.8 ms).
    let frozen_at = usage_usec(&cg);
    std::thread::sleep(Duration::from_millis(300)); // a measuring window, not a wait
    let frozen_used = usage_usec(&cg) - frozen_at;
    assert!(
        frozen_used < 30_000,
        "a frozen group used {frozen_used} µs of CPU in 300 ms"
    );

    cg.thaw(TIMEOUT).unwrap();
    assert!(!cg.events().unwrap().frozen);
    let thawed_at = usage_usec(&cg);
    std::thread::sleep(Duration::from_millis(300)); // a measuring window, not a wait
    let thawed_used = usage_usec(&cg) - thawed_at;
    assert!(
        thawed_used > 20_000,
        "a thawed busy loop used only {thawed_used} µs of CPU in 300 ms"
    );

    // The root cannot be frozen, and says so.
    let e = Cgroup::root().unwrap().freeze(TIMEOUT).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    drop(cg);
    assert_gone(&path);
}

/// A shell with three background sleeps; reports "ready" once all four processes exist.
const FAMILY: &str = "sleep 60 & sleep 60 & sleep 60 & echo ready; wait";

#[test]
fn kill_ends_every_process() {
    if !root("kill_ends_every_process") {
        return;
    }
    let cg = CgroupBuilder::new(name("kill"))
        .create_in_default()
        .unwrap();
    let path = cg.path().to_owned();
    let sub = CgroupBuilder::new("sub").create_in(&cg).unwrap().keep();
    let mut p = spawn_in(&cg, FAMILY, Stdio::piped());
    let mut q = spawn_in(&sub, FAMILY, Stdio::piped());
    assert_eq!(read_line(&mut p), "ready\n");
    assert_eq!(read_line(&mut q), "ready\n");
    assert_eq!(cg.procs().unwrap().len(), 4);
    assert_eq!(sub.procs().unwrap().len(), 4);

    cg.kill().unwrap();
    cg.wait_empty(TIMEOUT).unwrap();
    assert!(cg.procs().unwrap().is_empty() && sub.procs().unwrap().is_empty());
    assert_eq!(p.wait().signal(), Some(libc::SIGKILL));
    assert_eq!(q.wait().signal(), Some(libc::SIGKILL));

    let root = Cgroup::root().unwrap();
    let e = root.kill().unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
    // signal_all at the root would reach every process of the host, this one included:
    // refused too (SIGURG, ignored by default, in case the refusal ever breaks).
    let e = root.signal_all(Signal::SIGURG).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
    // The root has no cgroup.events: Unsupported, saying so, not a bare ENOENT.
    let e = root.events().unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("root cgroup"),
        "{e}"
    );
    let e = root.wait_empty(TIMEOUT).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    drop((sub, cg));
    assert_gone(&path);
}

#[test]
fn kill_by_signal_is_the_fallback_for_old_kernels() {
    if !root("kill_by_signal_is_the_fallback_for_old_kernels") {
        return;
    }
    let cg = CgroupBuilder::new(name("killsig"))
        .create_in_default()
        .unwrap();
    let path = cg.path().to_owned();
    let sub = CgroupBuilder::new("sub").create_in(&cg).unwrap().keep();
    let mut p = spawn_in(&cg, FAMILY, Stdio::piped());
    let mut q = spawn_in(&sub, FAMILY, Stdio::piped());
    assert_eq!(read_line(&mut p), "ready\n");
    assert_eq!(read_line(&mut q), "ready\n");

    cg.kill_by_signal().unwrap();
    cg.wait_empty(TIMEOUT).unwrap();
    assert_eq!(p.wait().signal(), Some(libc::SIGKILL));
    assert_eq!(q.wait().signal(), Some(libc::SIGKILL));
    assert!(
        !cg.events().unwrap().frozen,
        "kill_by_signal left the group frozen"
    );

    // signal_all reaches everyone, and only them.
    let mut r = spawn_in(
        &sub,
        "trap 'exit 7' TERM; echo ready; while :; do :; done",
        Stdio::piped(),
    );
    assert_eq!(read_line(&mut r), "ready\n");
    assert_eq!(cg.signal_all(Signal::SIGTERM).unwrap(), 1);
    assert_eq!(r.wait().code(), Some(7));
    cg.wait_empty(TIMEOUT).unwrap();
    drop((sub, cg));
    assert_gone(&path);
}

#[test]
fn controller_not_enabled_for_a_group_is_explained() {
    if !root("controller_not_enabled_for_a_group_is_explained") {
        return;
    }
    let top = CgroupBuilder::new(name("notenabled"))
        .create_in_default()
        .unwrap();
    let path = top.path().to_owned();
    let inner = CgroupBuilder::new("inner").create_in(&top).unwrap();
    for c in [Controller::Hugetlb, Controller::Memory, Controller::Pids] {
        let e = match c {
            Controller::Hugetlb => inner.hugetlb().err(),
            Controller::Memory => inner.memory().err(),
            _ => inner.pids().err(),
        };
        let e =
            e.unwrap_or_else(|| panic!("{c} is enabled in a group whose parent enables nothing"));
        if has(c) {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!(
                    "{c} is available in cgroup v2 but not enabled for {}",
                    inner.path().display()
                )),
                "{msg}"
            );
        } else {
            assert_unsupported(&e, c);
        }
    }
    drop(inner);
    drop(top);
    assert_gone(&path);
}

#[test]
fn hugetlb_limits() {
    if !root("hugetlb_limits") {
        return;
    }
    let two_mb = HugePageSize::from_bytes(Bytes::mib(2)).unwrap();
    let limits = Resources::new().hugetlb_max(two_mb, Bytes::mib(4));
    let builder = CgroupBuilder::new(name("hugetlb")).resources(limits);
    let Some(cg) = create("hugetlb_limits", &builder, &[Controller::Hugetlb]) else {
        return;
    };
    let path = cg.path().to_owned();
    let hugetlb = cg.hugetlb().unwrap();
    assert!(
        hugetlb.sizes().unwrap().contains(&two_mb),
        "{:?}",
        hugetlb.sizes()
    );
    assert_eq!(hugetlb.max(two_mb).unwrap(), Max::Limit(Bytes::mib(4)));
    // The kernel rounds down to whole huge pages.
    hugetlb.set_max(two_mb, Max::Limit(Bytes::mib(5))).unwrap();
    assert_eq!(hugetlb.max(two_mb).unwrap(), Max::Limit(Bytes::mib(4)));
    hugetlb.set_max(two_mb, Max::Unlimited).unwrap();
    assert_eq!(hugetlb.max(two_mb).unwrap(), Max::Unlimited);
    assert_eq!(hugetlb.current(two_mb).unwrap(), Bytes(0));
    assert_eq!(hugetlb.events(two_mb).unwrap(), 0);
    // A size the kernel does not have is a clear error, not a silent no-op.
    let e = hugetlb
        .max(HugePageSize::from_bytes(Bytes(1 << 40)).unwrap())
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    drop(cg);
    assert_gone(&path);
}

#[test]
fn no_internal_processes_rule_is_explained() {
    let test = "no_internal_processes_rule_is_explained";
    if !root(test) {
        return;
    }
    // The kernel's rule is about domain controllers (memory, hugetlb); threaded ones (pids,
    // cpu) the library refuses the same way, as they would turn the group into a thread root.
    let c = [Controller::Memory, Controller::Hugetlb]
        .into_iter()
        .find(|&c| host().check(c).is_ok())
        .unwrap_or(Controller::Memory);
    let builder = CgroupBuilder::new(name("nip")).controller(c);
    let Some(g) = create(test, &builder, &[c]) else {
        return;
    };
    let path = g.path().to_owned();
    assert!(g.controllers().unwrap().contains(&c));
    let p = spawn_in(&g, "exec sleep 60", Stdio::null());
    let e = CgroupBuilder::new("leaf")
        .controller(c)
        .create_in(&g)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
    assert!(
        msg.contains("no internal processes") && msg.contains(&p.pid().to_string()),
        "{msg}"
    );
    assert!(
        g.children().unwrap().is_empty(),
        "a failed create left a directory"
    );
    drop(p);
    g.wait_empty(TIMEOUT).unwrap();

    // The other way round: a group that enables controllers for children cannot take processes.
    let leaf = CgroupBuilder::new("leaf")
        .controller(c)
        .create_in(&g)
        .unwrap()
        .keep();
    let q = Command::new("sleep").arg("60").spawn().unwrap();
    let q = Spawned { child: q };
    let e = g.add_process(q.pid()).unwrap_err();
    assert!(e.to_string().contains("no internal processes"), "{e}");
    leaf.add_process(q.pid()).unwrap();
    drop((leaf, g));
    assert_gone(&path);
    drop(q);

    // Threaded controllers too: enabling pids in a group with processes is refused before
    // anything is written (the kernel would take it and turn the group into a thread root,
    // whose ordinary children can hold no process: EOPNOTSUPP).
    if has(Controller::Pids) {
        let Some(g) = create(test, &CgroupBuilder::new(name("nip-pids")), &[]) else {
            return;
        };
        let p = spawn_in(&g, "exec sleep 60", Stdio::null());
        let e = g.enable_controllers(&[Controller::Pids]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("no internal processes") && msg.contains(&p.pid().to_string()),
            "{msg}"
        );
        assert!(g.subtree_control().unwrap().is_empty(), "{msg}");
        let path = g.path().to_owned();
        drop(p);
        drop(g);
        assert_gone(&path);
    }
}

#[test]
fn memory_max_oom_kills() {
    if !root("memory_max_oom_kills") {
        return;
    }
    let limits = Resources::new()
        .memory_max(Bytes::mib(32))
        .memory_swap_max(Bytes(0));
    let builder = CgroupBuilder::new(name("oom")).resources(limits);
    let Some(cg) = create("memory_max_oom_kills", &builder, &[Controller::Memory]) else {
        if !has(Controller::Memory) {
            let plain = CgroupBuilder::new(name("oom")).create_in_default().unwrap();
            assert_unsupported(&plain.memory().unwrap_err(), Controller::Memory);
            assert_eq!(plain.usage().unwrap().memory_peak, None);
        }
        return;
    };
    let path = cg.path().to_owned();
    let mem = cg.memory().unwrap();
    assert_eq!(mem.max().unwrap(), Max::Limit(Bytes::mib(32)));
    assert_eq!(mem.swap_max().unwrap(), Max::Limit(Bytes(0)));
    mem.set_high(Max::Limit(Bytes::mib(30))).unwrap();
    assert_eq!(mem.high().unwrap(), Max::Limit(Bytes::mib(30)));
    mem.set_high(Max::Unlimited).unwrap();
    mem.set_low(Max::Limit(Bytes::mib(1))).unwrap();
    assert_eq!(mem.low().unwrap(), Max::Limit(Bytes::mib(1)));
    mem.set_min(Max::Limit(Bytes::mib(1))).unwrap();
    assert_eq!(mem.min().unwrap(), Max::Limit(Bytes::mib(1)));
    mem.set_oom_group(true).unwrap();
    assert!(mem.oom_group().unwrap());
    assert_eq!(mem.events().unwrap().oom_kill, 0);

    // dd allocates a 64 MiB buffer: twice the limit.
    let mut p = spawn_in(
        &cg,
        "exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        Stdio::null(),
    );
    assert_eq!(
        p.wait().signal(),
        Some(libc::SIGKILL),
        "dd was not OOM-killed"
    );
    let events = mem.events().unwrap();
    assert!(events.oom_kill >= 1 && events.max >= 1, "{events:?}");
    let usage = cg.usage().unwrap();
    assert_eq!(
        usage.memory_events.map(|e| e.oom_kill),
        Some(events.oom_kill)
    );
    let peak = usage.memory_peak.expect("memory.peak").as_u64();
    assert!(peak > (16 << 20) && peak <= (32 << 20), "peak {peak}");
    assert!(mem.current().unwrap() <= Bytes::mib(32));
    assert!(mem.stat().unwrap().get("anon").is_some());
    drop(cg);
    assert_gone(&path);
}

#[test]
fn pids_max_makes_forks_fail() {
    if !root("pids_max_makes_forks_fail") {
        return;
    }
    let limits = Resources::new().pids_max(4);
    let builder = CgroupBuilder::new(name("pids")).resources(limits);
    let Some(cg) = create("pids_max_makes_forks_fail", &builder, &[Controller::Pids]) else {
        return;
    };
    let path = cg.path().to_owned();
    let pids = cg.pids().unwrap();
    assert_eq!(pids.max().unwrap(), Max::Limit(4));
    // A subshell forks sleeps until fork fails (with 4 tasks: shell, subshell, 2 sleeps).
    let script =
        "(for i in 1 2 3 4 5 6 7 8; do sleep 60 & done) 2>/dev/null; echo started; exec sleep 60";
    let mut p = spawn_in(&cg, script, Stdio::piped());
    assert_eq!(read_line(&mut p), "started\n");
    let current = pids.current().unwrap();
    assert!((2..=4).contains(&current), "pids.current {current}");
    assert!(pids.events().unwrap().max >= 1, "{:?}", pids.events());
    pids.set_max(Max::Unlimited).unwrap();
    assert_eq!(pids.max().unwrap(), Max::Unlimited);
    drop(cg);
    assert_gone(&path);
}

#[test]
fn cpu_max_limits_a_busy_loop() {
    if !root("cpu_max_limits_a_busy_loop") {
        return;
    }
    let limits = Resources::new()
        .cpu_max(CpuMax::cpus(0.2).unwrap())
        .cpu_weight(Weight::new(50).unwrap());
    let builder = CgroupBuilder::new(name("cpu")).resources(limits);
    let Some(cg) = create("cpu_max_limits_a_busy_loop", &builder, &[Controller::Cpu]) else {
        return;
    };
    let path = cg.path().to_owned();
    let cpu = cg.cpu().unwrap();
    assert_eq!(cpu.max().unwrap(), CpuMax::cpus(0.2).unwrap());
    assert_eq!(cpu.weight().unwrap(), Weight::new(50).unwrap());
    let mut p = spawn_in(&cg, "echo ready; while :; do :; done", Stdio::piped());
    assert_eq!(read_line(&mut p), "ready\n");
    let (t0, u0) = (Instant::now(), usage_usec(&cg));
    std::thread::sleep(Duration::from_secs(2)); // a measuring window, not a wait
    let (t1, u1) = (Instant::now(), usage_usec(&cg));
    let share = (u1 - u0) as f64 / (t1 - t0).as_micros() as f64;
    eprintln!("cpu.max 0.2: the busy loop got {share:.3} of a CPU");
    assert!((0.1..=0.3).contains(&share), "share {share}");
    let stat = cpu.stat().unwrap();
    assert!(stat.nr_throttled.unwrap_or(0) >= 1, "{stat:?}");
    drop(cg);
    assert_gone(&path);
}

#[test]
fn cpuset_and_io() {
    if !root("cpuset_and_io") {
        return;
    }
    let limits = Resources::new().cpuset_cpus(CpuList::from_ids([0]));
    let builder = CgroupBuilder::new(name("cpuset")).resources(limits);
    if let Some(cg) = create("cpuset_and_io", &builder, &[Controller::Cpuset]) {
        let cpuset = cg.cpuset().unwrap();
        assert_eq!(cpuset.cpus().unwrap(), CpuList::from_ids([0]));
        assert_eq!(cpuset.effective_cpus().unwrap(), CpuList::from_ids([0]));
        cpuset.set_mems(&"0".parse().unwrap()).unwrap();
        assert_eq!(cpuset.mems().unwrap().to_string(), "0");
        assert!(cpuset.effective_mems().unwrap().contains(0));
        // CPUs the parent does not have are refused by the kernel, and the error says which
        // the parent has, as docker's "Requested CPUs are not available".
        for cpus in [4000, 8191] {
            let e = cpuset.set_cpus(&CpuList::from_ids([cpus])).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, Error::Config { what: "cpuset", .. })
                    && msg.contains(&format!("requested CPUs {cpus} are not available"))
                    && msg.contains("cpuset.cpus.effective"),
                "{msg}"
            );
        }
        assert_eq!(
            cpuset.cpus().unwrap(),
            CpuList::from_ids([0]),
            "left as it was"
        );
        let path = cg.path().to_owned();
        drop(cg);
        assert_gone(&path);
    }

    let builder = CgroupBuilder::new(name("io")).controller(Controller::Io);
    if let Some(cg) = create("cpuset_and_io", &builder, &[Controller::Io]) {
        let io = cg.io().unwrap();
        io.set_weight(Weight::new(200).unwrap()).unwrap();
        assert_eq!(io.weight().unwrap().default, Weight::new(200).unwrap());
        assert!(io.stat().unwrap().iter().all(|s| s.device.major > 0));
        assert!(io.max().unwrap().is_empty());
        // Limits on a device that does not exist, and rates of 0 and 1, are refused by the
        // kernel (ENODEV, ERANGE, EINVAL), and said in words.
        let e = io
            .set_max(IoMax::new(Device::new(254, 254)).wbps(Bytes::mib(1)))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config { what: "io.max", reason } if reason.contains("no whole disk")),
            "{e}"
        );
        let ram0 = Device::from_block_device("/dev/ram0");
        if let Ok(ram0) = ram0 {
            for rate in [0, 1] {
                let e = io.set_max(IoMax::new(ram0).riops(rate)).unwrap_err();
                assert!(
                    matches!(&e, Error::Config { what: "io.max", reason } if reason.contains("rates of 2 and more")),
                    "{e}"
                );
            }
        }
        let path = cg.path().to_owned();
        drop(cg);
        assert_gone(&path);
    }
}

#[test]
fn open_refuses_what_is_not_cgroup_v2() {
    let e = Cgroup::open("/proc").unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    if let Some(m) = host()
        .hierarchy()
        .v1()
        .iter()
        .find(|m| !m.controllers.is_empty())
    {
        let e = Cgroup::open(&m.mount_point).unwrap_err();
        assert!(e.to_string().contains("cgroup v1"), "{e}");
    }
    let _: PathBuf = host().own_cgroup_dir().unwrap();
}

/// CPU time the calling thread has used (first field of /proc/thread-self/schedstat, in ns).
fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    s.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat field")
}

#[test]
fn waits_time_out_and_sleep_in_poll() {
    if !root("waits_time_out_and_sleep_in_poll") {
        return;
    }
    let cg = CgroupBuilder::new(name("timeout"))
        .create_in_default()
        .unwrap();
    let path = cg.path().to_owned();
    let _p = spawn_in(&cg, "exec sleep 60", Stdio::null());
    let (t0, cpu0) = (Instant::now(), thread_cpu_ns());
    let e = cg.wait_empty(Duration::from_millis(500)).unwrap_err();
    let (waited, cpu) = (t0.elapsed(), thread_cpu_ns() - cpu0);
    assert_eq!(e.errno(), Some(Errno::ETIMEDOUT), "{e}");
    assert!(e.to_string().contains("cgroup.events"), "{e}");
    assert!(
        waited >= Duration::from_millis(500),
        "returned after {waited:?}"
    );
    // A sleep loop or a spinning poll would burn most of the 500 ms.
    assert!(cpu < 100_000_000, "waiting used {cpu} ns of CPU");
    cg.kill().unwrap();
    cg.wait_empty(TIMEOUT).unwrap();
    drop(cg);
    assert_gone(&path);
}

/// In the guest the tests run as on a real host: from a non-root cgroup that holds processes
/// (pid 1 and this one), unless `CONTAIN_VM_CGROUP=` asked for the root.
#[test]
fn the_vm_runs_the_tests_from_a_busy_cgroup() {
    if !vm_busy() {
        eprintln!(
            "the_vm_runs_the_tests_from_a_busy_cgroup: checks the qemu guest's layout; not in it"
        );
        return;
    }
    let own = Cgroup::own().unwrap();
    assert!(!own.is_root().unwrap(), "{}", own.path().display());
    let procs = own.procs().unwrap();
    assert!(
        procs.contains(&Pid::from_raw(std::process::id() as i32).unwrap())
            && procs.contains(&Pid::from_raw(1).unwrap()),
        "{procs:?}"
    );
    // The root enables every controller, as systemd does.
    let root = Cgroup::root().unwrap();
    assert_eq!(root.subtree_control().unwrap(), root.controllers().unwrap());
}

/// The failure of a real host (a service, a CI job): the caller's own cgroup holds
/// processes, so it cannot enable controllers for a child. Asking it to is refused before
/// anything is written, for threaded controllers too, and the cgroup is left as it was (a
/// pids enabled there once turned it into a thread root, and every later group made in it
/// refused processes: EOPNOTSUPP).
#[test]
fn a_busy_own_cgroup_is_refused_and_left_as_it_was() {
    let test = "a_busy_own_cgroup_is_refused_and_left_as_it_was";
    if !root(test) {
        return;
    }
    if !own_is_busy() {
        assert!(!vm_busy(), "the guest runs tests from a non-root cgroup");
        eprintln!("{test}: this process is in the root cgroup, which may hold processes and enable controllers; not run");
        return;
    }
    let own = Cgroup::own().unwrap();
    let before = own.subtree_control().unwrap();
    for c in [Controller::Pids, Controller::Memory, Controller::Cpu] {
        if !has(c) || before.contains(&c) {
            continue;
        }
        let e = CgroupBuilder::new(name("busy"))
            .controller(c)
            .create_in_own()
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
        assert!(
            msg.contains("no internal processes") && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        assert_eq!(own.subtree_control().unwrap(), before, "{c}");
        assert_gone(&own.path().join(name("busy")));
    }
}

/// From a busy cgroup, groups that need controllers go to `<mount>/contain`: limits work out
/// of the box, and the caller's own cgroup is not touched.
#[test]
fn groups_with_controllers_go_to_the_crate_parent_from_a_busy_cgroup() {
    let test = "groups_with_controllers_go_to_the_crate_parent_from_a_busy_cgroup";
    if !root(test) {
        return;
    }
    let own = Cgroup::own().unwrap();
    let own_before = own.subtree_control().unwrap();
    let limits = Resources::new().memory_max(Bytes::mib(64)).pids_max(16);
    let builder = CgroupBuilder::new(name("default")).resources(limits);
    let Some(cg) = create(test, &builder, &[Controller::Memory, Controller::Pids]) else {
        return;
    };
    let path = cg.path().to_owned();
    let top = host().v2_mount().unwrap().mount_point.clone();
    if own_is_busy() {
        assert_eq!(
            path,
            top.join(contain::cgroup::PARENT).join(name("default"))
        );
        let parent = cg.parent();
        assert!(parent.procs().unwrap().is_empty());
        let enabled = parent.subtree_control().unwrap();
        assert!(enabled.contains(&Controller::Memory) && enabled.contains(&Controller::Pids));
    } else {
        eprintln!("{test}: this process is in the root cgroup: the group goes there");
        assert_eq!(path, own.path().join(name("default")));
    }
    assert_eq!(own.subtree_control().unwrap(), own_before);
    assert_eq!(
        cg.memory().unwrap().max().unwrap(),
        Max::Limit(Bytes::mib(64))
    );
    assert_eq!(cg.pids().unwrap().max().unwrap(), Max::Limit(16));
    // It takes processes, and the limits hold for them.
    let mut p = spawn_in(&cg, "echo ready; exec sleep 60", Stdio::piped());
    assert_eq!(read_line(&mut p), "ready\n");
    assert_eq!(cg.procs().unwrap(), vec![p.pid()]);
    assert!(cg.pids().unwrap().current().unwrap() >= 1);
    drop(cg);
    assert_gone(&path);
    assert_eq!(p.wait().signal(), Some(libc::SIGKILL));
}
