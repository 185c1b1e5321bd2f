//! The warm pool: requests run in the template's isolation, each in a slot of its own that
//! nobody used before and nobody uses after; the pool refills, destroys used slots, and
//! leaves no process, namespace or cgroup behind; bad templates and requests are refused.
//!
//! All cases need root (CI runs as root). Nothing waits by sleeping: `Pool::wait_ready`
//! waits on the pool's condition variable, and processes are watched through pidfds.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::busybox::BusyboxRootfs;
use common::{is_root, pidfd_open, role, stdout};
use contain::cgroup::{Controller, HostCgroups, Resources};
use contain::namespace::{id_of_pid, Namespaces};
use contain::net::Net;
use contain::pool::{Pool, PooledChild};
use contain::process::{Container, Stdio};
use contain::rootfs::{Rootfs, RootfsMode};
use contain::security::{CapSet, Rlimit, Seccomp};
use contain::{Errno, Error, Pid, SetupStage};

/// The tests take turns: two of them count this process's children, where the others'
/// pools would show.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

const LONG: Duration = Duration::from_secs(60);

fn me() -> Pid {
    Pid::from_raw(std::process::id() as i32).unwrap()
}

fn template(image: &BusyboxRootfs) -> Container {
    Container::new("unused")
        .namespaces(Namespaces::all() - Namespaces::USER - Namespaces::TIME)
        .rootfs(Rootfs::new(image.root()))
        .hostname("pooled")
        .network(Net::None)
}

fn sh(script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
}

fn run(pool: &Pool, script: &str) -> String {
    let out = pool.spawn(sh(script)).unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// Whether the process behind `pidfd` has ended (a pidfd polls readable then).
fn ended(pidfd: &OwnedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap() == 1
}

/// How many of this process's threads are pools' refill threads.
fn refill_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "contain-pool")
        })
        .count()
}

/// The pids in `now` that are not in `before`.
fn new_since(before: &[i32], now: Vec<i32>) -> Vec<i32> {
    now.into_iter().filter(|p| !before.contains(p)).collect()
}

/// This process's children that are slots' holders (`contain-init ERRFD pause`).
fn holders() -> Vec<i32> {
    children_running(b"pause")
}

/// This process's children that are slots' standby processes (`contain-init ERRFD standby
/// 3`), waiting for a request.
fn standbys() -> Vec<i32> {
    children_running(b"standby\x003")
}

/// This process's children whose command line is `contain-init ERRFD MODE`.
fn children_running(mode: &[u8]) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in children.split_whitespace() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let parent_is_me = status
                .lines()
                .any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(me.as_str()));
            let tail = [mode, b"\0"].concat();
            if cmdline.starts_with(b"contain-init\0") && cmdline.ends_with(&tail) && parent_is_me {
                found.push(pid.parse().unwrap());
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

#[test]
fn a_request_runs_in_the_template_s_isolation_as_pid_2() {
    if role().is_some() || !is_root("a_request_runs_in_the_template_s_isolation_as_pid_2") {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-isolation");
    let pool = Pool::new(template(&image), 1).unwrap();
    let out = run(
        &pool,
        "hostname; echo $$; cat /etc/image; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /sys/class/net",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pooled", "{out}");
    assert_eq!(lines[1], "2", "the request is PID 2: {out}");
    assert_eq!(lines[2], "image pool-isolation", "{out}");
    assert!(
        lines[3].starts_with("contain-init ") && lines[3].trim_end().ends_with(" pause"),
        "PID 1 is the holder: {out}"
    );
    assert_eq!(lines[4..], ["lo"], "only lo in the slot's network: {out}");

    // The request's own settings: user, environment, working directory.
    let out = pool
        .spawn(
            sh("id -u; echo $GREETING; pwd")
                .uid(65534)
                .gid(65534)
                .env("GREETING", "hello")
                .current_dir("/tmp"),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    assert_eq!(stdout(&out), "65534\nhello\n/tmp");
}

#[test]
fn each_request_gets_a_slot_nobody_else_had() {
    if role().is_some() || !is_root("each_request_gets_a_slot_nobody_else_had") {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-fresh");
    let pool = Pool::new(template(&image), 2).unwrap();
    // Two requests at once: different namespaces, neither the host's.
    let first = pool.spawn(sh("read line").stdin(Stdio::Piped)).unwrap();
    let second = pool.spawn(sh("read line").stdin(Stdio::Piped)).unwrap();
    let ids = |c: &PooledChild| {
        let holder = c.holder_pid();
        let request = c.pid();
        [
            Namespaces::NET,
            Namespaces::MOUNT,
            Namespaces::PID,
            Namespaces::UTS,
            Namespaces::IPC,
        ]
        .map(|kind| {
            let id = id_of_pid(holder, kind).unwrap();
            assert_eq!(id_of_pid(request, kind).unwrap(), id, "{kind:?}");
            id
        })
    };
    let (a, b) = (ids(&first), ids(&second));
    let host = [
        Namespaces::NET,
        Namespaces::MOUNT,
        Namespaces::PID,
        Namespaces::UTS,
        Namespaces::IPC,
    ]
    .map(|kind| id_of_pid(me(), kind).unwrap());
    for i in 0..a.len() {
        assert_ne!(a[i], b[i]);
        assert_ne!(a[i], host[i]);
        assert_ne!(b[i], host[i]);
    }
    drop((first, second));

    // What one request leaves in its slot, the next never sees.
    for _ in 0..3 {
        let out = run(
            &pool,
            "test -e /tmp/left-behind && echo seen; touch /tmp/left-behind; echo done",
        );
        assert_eq!(out, "done");
    }
    assert!(
        !image.root().join("tmp/left-behind").exists(),
        "the image is untouched"
    );
}

#[test]
fn the_pool_refills_destroys_used_slots_and_leaves_nothing() {
    if role().is_some() || !is_root("the_pool_refills_destroys_used_slots_and_leaves_nothing") {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-refill");
    let before = holders();
    let pool = Pool::new(template(&image), 3).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    assert_eq!(pool.ready(), 3);
    let ready = holders();
    assert_eq!(ready.len() - before.len(), 3, "{ready:?}");
    // Refilled by one thread per CPU, at most one per slot.
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(refill_threads(), 3.min(cpus));

    // A request whose child outlives it (an orphan, reparented to the slot's PID 1) and
    // the holder: both end with the slot.
    let child = pool
        .spawn(sh("sleep 1000 >/dev/null 2>&1 & echo started"))
        .unwrap();
    let holder = pidfd_open(child.holder_pid().raw());
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "started");
    assert!(pool.wait_ready(LONG).unwrap());
    assert!(ended(&holder), "the used slot's PID 1 has ended");
    assert_eq!(pool.ready(), 3, "refilled");
    assert_eq!(holders().len() - before.len(), 3);

    // The orphan ended with its namespace: no process of ours is in a sleep.
    drop(pool);
    assert_eq!(
        holders(),
        before,
        "no holder left after the pool is dropped"
    );
    assert_eq!(refill_threads(), 0, "the refill threads are joined");
}

#[test]
fn requests_from_many_threads_each_get_their_own_slot() {
    if role().is_some() || !is_root("requests_from_many_threads_each_get_their_own_slot") {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-threads");
    let pool = Pool::new(template(&image), 4).unwrap();
    let outputs: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    (0..5)
                        .map(|i| run(pool, &format!("echo $$ {t}-{i} > /tmp/me; cat /tmp/me")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(outputs.len(), 30);
    for (n, out) in outputs.iter().enumerate() {
        let (t, i) = (n / 5, n % 5);
        assert_eq!(out, &format!("2 {t}-{i}"));
    }
}

#[test]
fn the_slot_s_cgroup_holds_the_request_and_goes_with_the_slot() {
    if role().is_some() || !is_root("the_slot_s_cgroup_holds_the_request_and_goes_with_the_slot") {
        return;
    }
    let _turn = turn();
    let hosts = HostCgroups::detect().unwrap();
    let pids = hosts.check(Controller::Pids).is_ok();
    let resources = match pids {
        true => Resources::new().pids_max(64),
        false => Resources::new(),
    };
    let image = BusyboxRootfs::new("pool-cgroup");
    let pool = match Pool::new(template(&image).resources(resources), 1) {
        Ok(p) => p,
        Err(e @ Error::Unsupported { .. }) => {
            common::skip("the_slot_s_cgroup_...", &format!("no cgroup v2 here: {e}"));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let child = pool.spawn(sh("read line").stdin(Stdio::Piped)).unwrap();
    let group_of = |pid: Pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
            .unwrap()
    };
    let group = group_of(child.holder_pid());
    assert_eq!(
        group_of(child.pid()),
        group,
        "the request is in the slot's cgroup"
    );
    assert_ne!(group_of(me()), group);
    let v2 = hosts.v2_mount().unwrap();
    let group_in_mount = std::path::Path::new(&group)
        .strip_prefix(&v2.root)
        .unwrap()
        .to_path_buf();
    let dir: PathBuf = v2.mount_point.join(group_in_mount);
    assert!(dir.is_dir(), "{}", dir.display());
    if pids {
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max")).unwrap(),
            "64\n"
        );
    }
    drop(child);
    assert!(pool.wait_ready(LONG).unwrap());
    assert!(!dir.exists(), "{} removed with its slot", dir.display());
}

#[test]
fn bad_templates_and_requests_are_refused_and_leave_nothing() {
    if role().is_some() || !is_root("bad_templates_and_requests_are_refused_and_leave_nothing") {
        return;
    }
    let _turn = turn();
    let before = holders();
    let image = BusyboxRootfs::new("pool-bad");

    let no_pid = Container::new("x").namespaces(Namespaces::MOUNT | Namespaces::NET);
    match Pool::new(no_pid, 1) {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "pool");
            assert!(reason.contains("PID namespace"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let missing = template(&image).rootfs(Rootfs::new(image.dir().join("no-such-image")));
    let e = Pool::new(missing, 2).unwrap_err();
    assert!(e.to_string().contains("no-such-image"), "{e}");

    let pool = Pool::new(template(&image), 1).unwrap();
    let asks_for_isolation = Container::new("/bin/true").namespaces(Namespaces::NET);
    match pool.spawn(asks_for_isolation) {
        Err(Error::Config { what, .. }) => assert_eq!(what, "enter"),
        other => panic!("{other:?}"),
    }
    match pool.spawn(Container::new("/no/such/program")) {
        Err(e @ Error::Setup { .. }) => assert!(e.to_string().contains("/no/such/program"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Both failed requests' slots were destroyed; the pool still serves.
    assert_eq!(run(&pool, "echo ok"), "ok");
    drop(pool);
    assert_eq!(holders(), before);
}

#[test]
fn a_refill_that_fails_is_reported_and_the_pool_recovers() {
    if role().is_some() || !is_root("a_refill_that_fails_is_reported_and_the_pool_recovers") {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-recover");
    let root = image.root();
    let moved = image.dir().join("moved-away");
    let pool = Pool::new(template(&image), 2).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());

    // The image goes away: the slots made already still serve, the refill fails.
    std::fs::rename(&root, &moved).unwrap();
    assert_eq!(run(&pool, "echo first"), "first");
    let e = pool.wait_ready(LONG).unwrap_err();
    assert!(e.to_string().contains("rootfs"), "{e}");
    assert_eq!(pool.ready(), 1, "the refill stopped after its failure");
    assert_eq!(run(&pool, "echo second"), "second");
    // No slot is ready: the spawn makes one itself, and fails as the template does.
    let e = pool.spawn(sh("echo third")).unwrap_err();
    assert!(e.to_string().contains("rootfs"), "{e}");

    // Back again: a spawn that makes its slot sets the refill going again.
    std::fs::rename(&moved, &root).unwrap();
    assert_eq!(run(&pool, "echo fourth"), "fourth");
    assert!(pool.wait_ready(LONG).unwrap());
    assert_eq!(pool.ready(), 2);
}

/// A pool of a user that is not root: the template gets a user namespace (the caller mapped
/// to root inside), and a request enters it, forking into the slot's PID namespace.
#[test]
fn a_rootless_pool_serves_requests() {
    const TEST: &str = "a_rootless_pool_serves_requests";
    if role().is_none() {
        if !is_root(TEST) {
            return;
        }
        let _turn = turn();
        return common::assert_passes_as_nobody(TEST, "nobody", false);
    }
    let image = BusyboxRootfs::new("pool-rootless");
    let pool = Pool::new(
        template(&image).namespaces(Namespaces::all() - Namespaces::TIME),
        2,
    )
    .unwrap();
    for _ in 0..3 {
        let out = run(&pool, "echo $$ $(id -u) $(hostname)");
        assert_eq!(out, "2 0 pooled");
    }
    let e = pool.spawn(Container::new("/no/such/program")).unwrap_err();
    assert!(matches!(e, Error::Setup { .. }), "{e}");
}

#[test]
fn a_request_outlives_its_pool_and_a_dead_slot_is_passed_over() {
    if role().is_some() || !is_root("a_request_outlives_its_pool_and_a_dead_slot_is_passed_over") {
        return;
    }
    let _turn = turn();
    let before = holders();
    let image = BusyboxRootfs::new("pool-outlive");
    let pool = Pool::new(template(&image), 2).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());

    // A ready slot whose holder was killed from outside is passed over.
    let ready: Vec<i32> = new_since(&before, holders());
    assert_eq!(ready.len(), 2, "{ready:?}");
    // The kill ends the slot's standby (its PID 2) at once, and the holder once the pool
    // has reaped the standby: the standby's end is the one to wait for.
    let victim_ns = id_of_pid(Pid::from_raw(ready[0]).unwrap(), Namespaces::PID).unwrap();
    let victim: Vec<OwnedFd> = standbys()
        .into_iter()
        .filter(|&p| id_of_pid(Pid::from_raw(p).unwrap(), Namespaces::PID).unwrap() == victim_ns)
        .map(pidfd_open)
        .collect();
    assert_eq!(victim.len(), 1, "the slot has one standby");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ready[0]),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let mut fds = [nix::poll::PollFd::new(
        victim[0].as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).unwrap();
    for _ in 0..2 {
        assert_eq!(run(&pool, "echo served"), "served");
    }

    // The pool goes while a request runs: the request goes on and ends as it would have.
    let mut child = pool
        .spawn(sh("read line; echo got $line").stdin(Stdio::Piped))
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    drop(pool);
    std::io::Write::write_all(&mut &stdin, b"late\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "got late");
    drop(image);
    // The pool's thread destroys the last slot after its request; the holder is our child
    // until then, so its end is watched through its pidfd.
    loop {
        let left: Vec<i32> = new_since(&before, holders());
        let Some(&pid) = left.first() else { break };
        // SAFETY: pidfd_open with integers; a new descriptor or -1 (ESRCH: reaped already).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: the descriptor was just returned to us.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
            let mut fds = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).unwrap();
        }
    }
}

#[test]
fn templates_that_keep_writes_and_requests_with_a_cgroup_are_refused() {
    if role().is_some()
        || !is_root("templates_that_keep_writes_and_requests_with_a_cgroup_are_refused")
    {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-refuse");
    let rw = template(&image).rootfs(Rootfs::new(image.root()).mode(RootfsMode::ReadWrite));
    let upper = template(&image)
        .rootfs(Rootfs::new(image.root()).persistent_upper(image.dir().join("upper")));
    for t in [rw, upper] {
        match Pool::new(t, 1) {
            Err(Error::Config {
                what: "pool",
                reason,
            }) => {
                assert!(reason.contains("keep writes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    let pool = Pool::new(template(&image), 1).unwrap();
    let with_cgroup = Container::new("/bin/true").resources(Resources::new());
    match pool.spawn(with_cgroup) {
        Err(Error::Config {
            what: "pool",
            reason,
        }) => assert!(reason.contains("cgroup"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.ready(), 1, "a refused request takes no slot");
}

#[test]
fn a_request_s_user_and_home_come_from_the_slot_s_etc_files() {
    let test = "a_request_s_user_and_home_come_from_the_slot_s_etc_files";
    if role().is_some() || !is_root(test) {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-users");
    let etc = image.root().join("etc");
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root-home:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
    )
    .unwrap();
    // Two slots: the first request's and the next ones', both read when they were made.
    let pool = Pool::new(template(&image), 2).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    let home = "echo $HOME; id -u; id -g; id -G";
    assert_eq!(run(&pool, home), "/root-home\n0\n0\n0");
    let out = pool
        .spawn(sh(home).user("app".parse().unwrap()))
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "/home/app\n1000\n1000\n1000 50");
    // HOME given wins over the file; a group by name is looked up too.
    let out = pool
        .spawn(
            sh(home)
                .env("HOME", "/given")
                .user("app:staff".parse().unwrap()),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "/given\n1000\n50\n50");
    // A user the slot's passwd lacks is refused while the request is prepared: the slot,
    // which nobody entered, goes back to the ready ones (of 2, one taken: no refill is due).
    assert!(pool.wait_ready(LONG).unwrap());
    let before = holders();
    match pool.spawn(sh(home).user("ghost".parse().unwrap())) {
        Err(e @ Error::Config { .. }) => assert!(e.to_string().contains("ghost"), "{e}"),
        Err(e) => panic!("not a configuration error: {e:?}"),
        Ok(_) => panic!("a user the image lacks was accepted"),
    }
    assert_eq!(pool.ready(), 2, "the refused request's slot is not back");
    assert_eq!(holders(), before, "the refused request used up a slot");
}

#[test]
fn a_request_refused_after_it_entered_its_slot_does_not_give_it_back() {
    let test = "a_request_refused_after_it_entered_its_slot_does_not_give_it_back";
    if role().is_some() || !is_root(test) {
        return;
    }
    let _turn = turn();
    let image = BusyboxRootfs::new("pool-late-refusal");
    let pool = Pool::new(template(&image), 2).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    // The kernel refuses a hard limit above fs.nr_open in the child, once it is in the
    // slot's namespaces and cgroup: a configuration error, but after the entering.
    let huge = 1 << 40;
    let refused = pool.spawn(sh("echo $$").rlimit(Rlimit::new(Rlimit::RLIMIT_NOFILE, 1024, huge)));
    assert!(refused.is_err(), "a NOFILE hard limit of 2^40 was accepted");
    // The entered slot is destroyed, never handed out again: every request is PID 2 in a
    // PID namespace nobody used before.
    for _ in 0..2 {
        assert!(pool.wait_ready(LONG).unwrap());
        assert_eq!(run(&pool, "echo $$"), "2");
    }
}

/// The security a process runs under, as `/proc/self/status` shows it.
const SECURITY_LINES: &str =
    "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status";

#[test]
fn a_request_with_the_template_s_settings_is_run_by_the_slot_s_standby() {
    let test = "a_request_with_the_template_s_settings_is_run_by_the_slot_s_standby";
    if role().is_some() || !is_root(test) {
        return;
    }
    let _turn = turn();
    let (holders_before, standbys_before) = (holders(), standbys());
    let image = BusyboxRootfs::new("pool-standby");
    let script = image.root().join("bin/orphaned-script");
    std::fs::write(&script, "#!/no/such/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pool = Pool::new(template(&image), 2).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    assert_eq!(
        standbys().len() - standbys_before.len(),
        2,
        "each ready slot has its standby"
    );

    // Served by the standby (PID 2: nobody was entered beside it), with the request's
    // stdio, arguments, environment and exit status.
    // (Each request below starts from a pool at rest: a slot that `spawn` makes itself, when
    // none is ready, has no standby.)
    let mut child = pool
        .spawn(
            sh("echo $$; cat; echo $GREETING $HOME $PATH; pwd; echo oops >&2; exit 7")
                .stdin(Stdio::Piped)
                .env("GREETING", "hello")
                .timing(true),
        )
        .unwrap();
    let stages: Vec<&str> = child
        .start_timing()
        .expect("timing was asked for")
        .stages()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        stages,
        ["prepare", "exec"],
        "no child stages: it was set up before"
    );
    let stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut &stdin, b"from stdin\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!(
            "2\nfrom stdin\nhello / {}\n/",
            contain::process::DEFAULT_PATH
        )
    );
    assert_eq!(out.stderr, b"oops\n");

    // stdin from /dev/null, stdout into a file of the caller's.
    let dir = common::TempDir::new("pool-standby-out");
    let file = std::fs::File::create(dir.path().join("out")).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    let st = pool
        .spawn(
            Container::new("/bin/sh")
                .args(["-c", "cat; echo $$ to the file"])
                .stdin(Stdio::Null)
                .stdout(Stdio::Fd(file.into())),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert!(st.success(), "{st:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "2 to the file\n"
    );

    // The standby holds what the request would have had entered: the same capabilities,
    // no_new_privs and seccomp mode as a request with another working directory, which the
    // standby does not serve and which is entered beside it (PID 3).
    assert!(pool.wait_ready(LONG).unwrap());
    let served = run(&pool, &format!("echo $$; {SECURITY_LINES}"));
    assert!(pool.wait_ready(LONG).unwrap());
    let entered = pool
        .spawn(sh(&format!("echo $$; {SECURITY_LINES}")).current_dir("/"))
        .unwrap()
        .wait_with_output()
        .unwrap();
    let entered = stdout(&entered);
    let (served_pid, served_security) = served.split_once('\n').unwrap();
    let (entered_pid, entered_security) = entered.split_once('\n').unwrap();
    assert_eq!((served_pid, entered_pid), ("2", "3"));
    assert_eq!(served_security, entered_security);
    assert!(served_security.contains("Seccomp:\t2"), "{served_security}");

    assert!(pool.wait_ready(LONG).unwrap());
    // Other settings are the request's own: entered, as PID 3, after the standby was killed
    // and reaped (it must not wait beside a request with other settings).
    let out = pool
        .spawn(
            sh("echo $$; id -u; test -e /proc/2/status && echo standby still there")
                .uid(65534)
                .gid(65534),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(stdout(&out), "3\n65534");

    assert!(pool.wait_ready(LONG).unwrap());
    // A request larger than the standby's message is entered too.
    let big = "x".repeat(70_000);
    let out = pool
        .spawn(sh("echo $$ ${#BIG}").env("BIG", &big))
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(stdout(&out), "3 70000");

    // The standby's exec failures are the spawn's: the path, and a script's interpreter.
    assert!(pool.wait_ready(LONG).unwrap());
    match pool.spawn(Container::new("/no/such/program")) {
        Err(Error::Setup {
            stage: SetupStage::Exec,
            errno: Errno::ENOENT,
            exec: Some(exec),
        }) => assert_eq!(exec.path.as_deref(), Some(Path::new("/no/such/program"))),
        other => panic!("{other:?}"),
    }
    assert!(pool.wait_ready(LONG).unwrap());
    match pool.spawn(Container::new("/bin/orphaned-script")) {
        Err(Error::Setup {
            stage: SetupStage::Exec,
            errno: Errno::ENOENT,
            exec: Some(exec),
        }) => assert_eq!(
            exec.interpreter.as_deref(),
            Some(Path::new("/no/such/interpreter"))
        ),
        other => panic!("{other:?}"),
    }
    // A failed request's slot is not used again: the next is a fresh one's standby.
    assert!(pool.wait_ready(LONG).unwrap());
    assert_eq!(run(&pool, "echo $$"), "2");

    drop(pool);
    assert_eq!(holders(), holders_before, "holders left behind");
    assert_eq!(standbys(), standbys_before, "standbys left behind");
}

#[test]
fn a_standby_gives_piped_stdio_to_the_user_and_templates_it_cannot_serve_make_none() {
    let test = "a_standby_gives_piped_stdio_to_the_user_and_templates_it_cannot_serve_make_none";
    if role().is_some() || !is_root(test) {
        return;
    }
    let _turn = turn();
    let standbys_before = standbys();
    let image = BusyboxRootfs::new("pool-standby-user");

    // The template's user is the request's: the standby runs it, and the pipes it gets are
    // the user's, who can reopen them (as an entered request's are).
    let pool = Pool::new(template(&image).uid(65534).gid(65534), 1).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    let out = pool
        .spawn(
            sh("echo $$; id -u; echo reopened > /proc/self/fd/1")
                .uid(65534)
                .gid(65534),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "2\n65534\nreopened");
    drop(pool);

    // A filter of the caller's may deny what a standby does; a NOFILE limit under 7 leaves
    // no room for the stdio it receives: such templates make slots without a standby, and
    // their requests (with the same settings) are entered, as PID 2: nobody was there.
    let custom = || Seccomp::Program(Seccomp::default_program(CapSet::DOCKER_DEFAULT).unwrap());
    let nofile = || Rlimit::new(Rlimit::RLIMIT_NOFILE, 6, 6);
    let cases = [
        (
            template(&image).seccomp(custom()),
            sh("echo $$").seccomp(custom()),
        ),
        (
            template(&image).rlimit(nofile()),
            sh("echo $$").rlimit(nofile()),
        ),
    ];
    for (template, request) in cases {
        let pool = Pool::new(template, 2).unwrap();
        assert!(pool.wait_ready(LONG).unwrap());
        assert_eq!(
            standbys(),
            standbys_before,
            "a standby that cannot serve was made"
        );
        let out = pool.spawn(request).unwrap().wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout(&out), "2");
    }
}

#[test]
fn a_signal_sent_to_a_waiting_standby_does_not_reach_the_request() {
    let test = "a_signal_sent_to_a_waiting_standby_does_not_reach_the_request";
    if role().is_some() || !is_root(test) {
        return;
    }
    let _turn = turn();
    let before = standbys();
    let image = BusyboxRootfs::new("pool-standby-signal");
    let pool = Pool::new(template(&image), 1).unwrap();
    assert!(pool.wait_ready(LONG).unwrap());
    let standby: Vec<i32> = new_since(&before, standbys());
    assert_eq!(standby.len(), 1, "{standby:?}");
    // Queued while the standby waits (it blocks every signal until the request's exec).
    for signal in [nix::sys::signal::SIGTERM, nix::sys::signal::SIGHUP] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(standby[0]), signal).unwrap();
    }
    let out = pool
        .spawn(sh("echo $$ alive"))
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "the request got the standby's signals: {out:?}"
    );
    assert_eq!(stdout(&out), "2 alive");
}
