//! A CI job runner written on the crate's public API alone, as a new user would from the README
//! and the rustdoc (issue 10): every namespace, a busybox image as an overlay root (writes
//! vanish), piped stdout and stderr, a wall-clock timeout that kills the whole job, usage at
//! exit, memory and pids limits applied where the host supports them, and errors that say
//! what to do. No `unsafe`, no libc, no nix in the runner itself.
//!
//! Then what a runner needs of it: 20 jobs from 4 threads with the right results, and nothing
//! left behind (processes, cgroups, mounts, temp dirs, descriptors).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::busybox::BusyboxRootfs;
use common::{is_root, TempDir};
use contain::cgroup::{LimitPolicy, Resources};
use contain::mount::Mount;
use contain::namespace::{self, NamespaceId, Namespaces};
use contain::process::{Container, ExitStatus, Stdio};
use contain::rootfs::Rootfs;
use contain::{Bytes, Signal};

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/// Where a job's script is bound inside the container (read-only).
const JOB_DIR: &str = "/job";

/// How jobs are run: the image and the limits, as a CI runner's configuration gives them
/// (sizes as text, as a YAML file would).
#[derive(Clone, Debug)]
struct Runner {
    /// The extracted image (used as the lower layer of an overlay: the job's writes vanish).
    image: PathBuf,
    /// The shell that runs a script without a `#!` line (a name looked up in the image's PATH).
    shell: String,
    /// docker's `--memory` syntax.
    memory: String,
    /// docker's `--pids-limit`.
    pids: u64,
    /// docker's `--init`: a PID 1 that reaps orphans and passes signals on (default on).
    init: bool,
}

/// What a finished job gives back.
#[derive(Debug)]
struct JobResult {
    /// How the job's PID 1 ended (`None` when it could not be started).
    status: Option<ExitStatus>,
    /// Whether the wall-clock timeout ended it.
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// CPU time of the job: from its cgroup when it had one, else from waitid's rusage.
    cpu: Option<Duration>,
    /// Peak memory: the cgroup's `memory.peak` when there is one, else rusage's max RSS.
    peak_memory: Option<Bytes>,
    /// Which of the two `peak_memory` came from: "cgroup" or "rusage".
    peak_memory_from: &'static str,
    /// OOM kills in the job's cgroup (`None` without the memory controller).
    oom_kills: Option<u64>,
    /// The limits this host could not apply, one line each.
    warnings: Vec<String>,
    /// The job could not run: what went wrong and what to do (the library's message).
    error: Option<String>,
    /// For the leak checks: the job's PID namespace and cgroup (which must be gone after).
    pid_ns: Option<NamespaceId>,
    cgroup: Option<PathBuf>,
}

impl JobResult {
    fn failed(error: String) -> JobResult {
        JobResult {
            status: None,
            timed_out: false,
            stdout: Vec::new(),
            stderr: Vec::new(),
            cpu: None,
            peak_memory: None,
            peak_memory_from: "",
            oom_kills: None,
            warnings: Vec::new(),
            error: Some(error),
            pid_ns: None,
            cgroup: None,
        }
    }

    /// The status as a shell reports it (128+N for signal N), or 125 when the job did not
    /// start, as `docker run` says.
    fn code(&self) -> i32 {
        self.status.map_or(125, |s| s.shell_code())
    }
}

impl Runner {
    fn new(image: &Path) -> Runner {
        Runner {
            image: image.to_owned(),
            shell: "sh".into(),
            memory: "256m".into(),
            pids: 64,
            init: true,
        }
    }

    /// Runs `script` in a new container and waits for it, at most `timeout`.
    fn run_job(&self, script: &str, timeout: Duration) -> JobResult {
        // Limits from the configuration's text: a bad size is the job's error, not a panic.
        let memory: Bytes = match self.memory.parse() {
            Ok(m) => m,
            Err(e) => return JobResult::failed(format!("memory limit {:?}: {e}", self.memory)),
        };
        // The script goes into the container as a read-only file in its own directory.
        let dir = TempDir::new("job");
        let file = dir.path().join("script");
        if let Err(e) = std::fs::write(&file, script)
            .and_then(|()| std::fs::set_permissions(&file, PermissionsExt::from_mode(0o755)))
        {
            return JobResult::failed(format!("writing {}: {e}", file.display()));
        }
        let in_container = format!("{JOB_DIR}/script");
        let container = if script.starts_with("#!") {
            // The script names its interpreter: let the kernel run it.
            Container::new(&in_container)
        } else {
            Container::new(&self.shell).arg(&in_container)
        };
        let container = container
            .namespaces(Namespaces::all())
            .hostname("job")
            .init(self.init)
            .rootfs(
                Rootfs::new(&self.image)
                    .size(Bytes::mib(64))
                    .mount(Mount::bind(dir.path(), JOB_DIR).read_only()),
            )
            .resources(Resources::new().memory_max(memory).pids_max(self.pids))
            .limit_policy(LimitPolicy::BestEffort)
            .stdin(Stdio::Null)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped);
        let child = match container.spawn() {
            Ok(c) => c,
            Err(e) => return JobResult::failed(e.to_string()),
        };
        let warnings = child
            .skipped_limits()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pid_ns = namespace::id_of_pid(child.pid(), Namespaces::PID).ok();
        let cgroup = child.cgroup().map(|c| c.path().to_owned());
        let out = match child.wait_with_output_timeout(timeout) {
            Ok(out) => out,
            Err(e) => return JobResult::failed(e.to_string()),
        };
        let (peak_memory, peak_memory_from) = match out.usage.cgroup.and_then(|c| c.memory_peak) {
            Some(peak) => (Some(peak), "cgroup"),
            None => (out.usage.rusage.map(|r| r.maxrss), "rusage"),
        };
        JobResult {
            status: Some(out.status),
            timed_out: out.timed_out,
            cpu: out.usage.cpu(),
            peak_memory,
            peak_memory_from,
            oom_kills: out
                .usage
                .cgroup
                .and_then(|c| c.memory_events)
                .map(|e| e.oom_kill),
            stdout: out.stdout,
            stderr: out.stderr,
            warnings,
            error: None,
            pid_ns,
            cgroup,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the tests look at on the host
// ---------------------------------------------------------------------------------------------

/// The tests of this file look at process-wide state (fds, mounts, cgroups): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's open descriptors and what they point at.
fn open_fds() -> BTreeSet<(String, String)> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        // The read_dir's own descriptor.
        .filter(|(_, t)| !t.starts_with("/proc/") || !t.ends_with("/fd"))
        .collect()
}

/// The host's mounts (mount id and the rest of the line).
fn mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The cgroup2 mount point, from mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    mounts().iter().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
    })
}

/// Every cgroup directory under `dir` whose name starts with `prefix`.
fn cgroups_named(dir: &Path, prefix: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                found.push(e.path());
            }
            cgroups_named(&e.path(), prefix, found);
        }
    }
}

/// The cgroups this process's spawns named `contain-<pid>-...` (see `cgroup::cleanup`).
fn our_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(mount) = cgroup2_mount() {
        cgroups_named(
            &mount,
            &format!("contain-{}-", std::process::id()),
            &mut found,
        );
    }
    found
}

/// Host processes that are in PID namespace `ns`, or whose command line contains `marker`.
fn processes_of(ns: &[NamespaceId], marker: &str) -> Vec<String> {
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Some(pid) = e
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(contain::Pid::from_raw)
        else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let in_ns = namespace::id_of_pid(pid, Namespaces::PID).is_ok_and(|id| ns.contains(&id));
        if in_ns || cmdline.contains(marker) {
            left.push(format!("{pid}: {cmdline}"));
        }
    }
    left
}

/// Entries of the temp dir that this process made (`common::TempDir` names hold the pid).
fn our_temp_dirs() -> Vec<String> {
    let tag = format!("-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&tag))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// One job: output on both streams, the hostname, writes that vanish, usage, and limits that
/// are either applied (seen from inside) or reported.
#[test]
fn one_job_output_usage_and_limits() {
    if !is_root("one_job_output_usage_and_limits") {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("runner-one");
    let runner = Runner::new(&image.root());
    let script = "echo out; echo err >&2; hostname; touch /written; \
                  i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
                  cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null; exit 3";
    let r = runner.run_job(script, Duration::from_secs(60));
    assert_eq!(r.error, None);
    eprintln!("{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    assert_eq!(r.status.unwrap().code(), Some(3));
    assert!(!r.timed_out);
    assert_eq!(text(&r.stderr), "err\n");
    let out = text(&r.stdout);
    assert!(out.starts_with("out\njob\n"), "{out}");
    // Writes vanish: the image is unchanged, and a second job does not see them.
    assert!(!image.root().join("written").exists());
    let again = runner.run_job(
        "test -e /written && echo seen || echo gone",
        Duration::from_secs(60),
    );
    assert_eq!(text(&again.stdout), "gone\n", "{again:?}");

    // Usage: CPU time from the cgroup or the rusage, peak memory from one of them.
    let cpu = r.cpu.expect("CPU time");
    assert!(cpu > Duration::ZERO, "{cpu:?}");
    let peak = r.peak_memory.expect("peak memory");
    assert!(peak.as_u64() > 0, "{peak:?}");
    assert!(["cgroup", "rusage"].contains(&r.peak_memory_from));

    // Limits: applied (the container's own cgroup files say so) or listed as skipped.
    let mut values = out.lines().skip(2);
    for (setting, want) in [("memory.max", "268435456"), ("pids.max", "64")] {
        if let Some(w) = r.warnings.iter().find(|w| w.starts_with(setting)) {
            eprintln!("skipped on this host: {w}");
            assert!(
                w.contains("not applied") || w.contains("not supported"),
                "{w}"
            );
        } else {
            assert_eq!(values.next(), Some(want), "{setting} applied: {out}");
        }
    }
}

/// The limits, where the host applies them: a job that forks past `pids.max` cannot, and one
/// that grows past `memory.max` is OOM-killed, which the result says. Where the host cannot
/// apply them (this hybrid host), the job still runs and the result lists them as skipped.
#[test]
fn limits_are_enforced_or_reported() {
    if !is_root("limits_are_enforced_or_reported") {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("runner-limits");
    let mut runner = Runner::new(&image.root());
    runner.memory = "32m".into();
    runner.pids = 8;
    let t = Duration::from_secs(120);
    let probe = runner.run_job("true", t);
    assert_eq!(probe.code(), 0, "{probe:?}");
    let skipped = |setting: &str| probe.warnings.iter().any(|w| w.starts_with(setting));

    let forks = runner.run_job(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1000 & done; echo forked all",
        t,
    );
    if skipped("pids.max") {
        eprintln!("pids.max not applied here: {:?}", probe.warnings);
        assert_eq!(text(&forks.stdout), "forked all\n", "{forks:?}");
    } else {
        assert!(text(&forks.stderr).contains("fork"), "{forks:?}");
        assert!(!forks.timed_out);
    }

    if skipped("memory.max") {
        eprintln!("memory.max not applied here: {:?}", probe.warnings);
        assert_eq!(probe.oom_kills, None);
    } else {
        let big = runner.run_job(
            "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
            t,
        );
        eprintln!(
            "{:?} oom_kills={:?} peak={:?}",
            big.status, big.oom_kills, big.peak_memory
        );
        assert_eq!(big.code(), 128 + 9, "OOM-killed: {big:?}");
        assert!(big.oom_kills.unwrap_or(0) >= 1, "{big:?}");
        assert_eq!(big.peak_memory_from, "cgroup");
        assert!(big.peak_memory.unwrap() <= Bytes::mib(33), "{big:?}");
        assert_eq!(text(&big.stdout), "");
    }
}

/// 20 jobs from 4 threads: distinct outputs, failures, a timeout (with a background process),
/// more than 1 MiB of output; and afterwards nothing of them is left.
#[test]
fn twenty_jobs_from_four_threads_leave_nothing_behind() {
    if !is_root("twenty_jobs_from_four_threads_leave_nothing_behind") {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("runner-many");
    let image_dir = image.dir().to_owned();
    let runner = Runner::new(&image.root());
    // A first job, so that what the crate keeps for the process's lifetime (the init memfd,
    // documented on Container::init) is open before the descriptors are counted.
    let warm = runner.run_job("true", Duration::from_secs(60));
    assert_eq!(warm.code(), 0, "{warm:?}");

    let fds_before = open_fds();
    let mounts_before = mounts();
    let marker = format!("{}", 900_000 + std::process::id() % 90_000);

    // (script, timeout, check)
    type Check = Box<dyn Fn(&JobResult) + Send + Sync>;
    let mut jobs: Vec<(String, Duration, Check)> = Vec::new();
    for i in 0..20 {
        let long = Duration::from_secs(120);
        match i {
            // Times out; its background process must go with it.
            7 => jobs.push((
                format!("sleep {marker} & echo started; echo still >&2; sleep {marker}"),
                Duration::from_secs(3),
                Box::new(|r: &JobResult| {
                    assert!(r.timed_out, "{r:?}");
                    assert_eq!(r.status.unwrap().signal(), Some(Signal::SIGKILL), "{r:?}");
                    assert_eq!(r.code(), 137);
                    assert_eq!(text(&r.stdout), "started\n");
                    assert_eq!(text(&r.stderr), "still\n");
                }),
            )),
            // More than 1 MiB on stdout and on stderr at once.
            11 => jobs.push((
                "head -c 1100000 /dev/zero | tr '\\0' e >&2; head -c 1500000 /dev/zero | tr '\\0' o"
                    .into(),
                long,
                Box::new(|r: &JobResult| {
                    assert_eq!(r.code(), 0, "{:?}", r.error);
                    assert_eq!(r.stdout.len(), 1_500_000);
                    assert!(r.stdout.iter().all(|&b| b == b'o'));
                    assert_eq!(r.stderr.len(), 1_100_000);
                    assert!(r.stderr.iter().all(|&b| b == b'e'));
                }),
            )),
            // A background process that does not hold the output: gone when the job ends.
            13 => jobs.push((
                format!("sleep {marker} </dev/null >/dev/null 2>&1 & echo job 13; exit 0"),
                long,
                Box::new(|r: &JobResult| {
                    assert_eq!(r.code(), 0, "{r:?}");
                    assert!(!r.timed_out);
                    assert_eq!(text(&r.stdout), "job 13\n");
                }),
            )),
            // Killed by a signal (the init reports it as 128+N, as a shell does).
            17 => jobs.push((
                "echo job 17; kill -TERM $$; echo not reached".into(),
                long,
                Box::new(|r: &JobResult| {
                    assert_eq!(r.code(), 128 + 15, "{r:?}");
                    assert_eq!(text(&r.stdout), "job 17\n");
                }),
            )),
            // Failing jobs, each with its own code.
            i if i % 3 == 0 => jobs.push((
                format!("echo job {i}; echo failing {i} >&2; exit {}", 10 + i),
                long,
                Box::new(move |r: &JobResult| {
                    assert_eq!(r.status.unwrap().code(), Some(10 + i), "{r:?}");
                    assert_eq!(text(&r.stdout), format!("job {i}\n"));
                    assert_eq!(text(&r.stderr), format!("failing {i}\n"));
                }),
            )),
            i => jobs.push((
                format!("echo job {i}; hostname; echo $(( {i} * {i} ))"),
                long,
                Box::new(move |r: &JobResult| {
                    assert!(r.status.unwrap().success(), "{r:?}");
                    assert_eq!(text(&r.stdout), format!("job {i}\njob\n{}\n", i * i));
                    assert_eq!(r.stderr, b"");
                }),
            )),
        }
    }

    let results: Vec<Mutex<Option<JobResult>>> =
        (0..jobs.len()).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (jobs, results, runner) = (&jobs, &results, &runner);
            s.spawn(move || {
                for (i, (script, timeout, _)) in jobs.iter().enumerate().skip(t).step_by(4) {
                    let r = runner.run_job(script, *timeout);
                    *results[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    let results: Vec<JobResult> = results
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every job ran"))
        .collect();
    for (i, ((_, _, check), r)) in jobs.iter().zip(&results).enumerate() {
        eprintln!(
            "job {i}: {} timed_out={} cpu={:?} peak={:?} ({}) skipped limits: {}",
            r.code(),
            r.timed_out,
            r.cpu,
            r.peak_memory.map(|b| b.human().to_string()),
            r.peak_memory_from,
            r.warnings.len()
        );
        assert_eq!(r.error, None, "job {i}");
        check(r);
        assert!(r.cpu.is_some(), "job {i}: no CPU time");
        assert!(r.peak_memory.is_some(), "job {i}: no peak memory");
    }

    // Nothing left: processes (by PID namespace and by the marker), cgroups, mounts, temp
    // dirs, descriptors.
    let namespaces: Vec<NamespaceId> = results.iter().filter_map(|r| r.pid_ns).collect();
    assert_eq!(namespaces.len(), 20, "every job's PID namespace was seen");
    assert_eq!(
        processes_of(&namespaces, &format!("sleep {marker}")),
        Vec::<String>::new()
    );
    for r in &results {
        if let Some(cg) = &r.cgroup {
            assert!(!cg.exists(), "cgroup {} left behind", cg.display());
        }
    }
    assert_eq!(our_cgroups(), Vec::<PathBuf>::new());
    let new_mounts: Vec<_> = mounts().difference(&mounts_before).cloned().collect();
    assert_eq!(new_mounts, Vec::<String>::new(), "mounts left on the host");
    drop(image);
    assert!(!image_dir.exists());
    assert_eq!(our_temp_dirs(), Vec::<String>::new());
    let fds_after = open_fds();
    assert_eq!(
        fds_after.difference(&fds_before).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "descriptors leaked into the caller"
    );
}

/// The job's errors: each says what is wrong and what to do, and nothing panics.
#[test]
fn job_errors_name_the_problem_and_a_remedy() {
    if !is_root("job_errors_name_the_problem_and_a_remedy") {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("runner-errors");
    let t = Duration::from_secs(60);

    // A shell the image does not have.
    let mut runner = Runner::new(&image.root());
    runner.shell = "bash".into();
    let r = runner.run_job("echo hi", t);
    let e = r.error.clone().expect("bash is not in a busybox image");
    eprintln!("missing program: {e}");
    assert_eq!(r.code(), 125);
    assert!(e.contains("bash"), "names the program: {e}");
    assert!(e.contains("remedy"), "says what to do: {e}");

    // A script whose `#!` interpreter the image lacks (without the init: see the ignored
    // test below for the runner's default, with it).
    let mut runner = Runner::new(&image.root());
    runner.init = false;
    let r = runner.run_job("#!/usr/bin/python3\nprint('hi')\n", t);
    let e = r.error.expect("no python3 in a busybox image");
    eprintln!("bad interpreter: {e}");
    assert!(e.contains("/job/script"), "names the script: {e}");
    assert!(
        e.contains("interpreter"),
        "says the interpreter is missing: {e}"
    );
    assert!(!e.contains("does not exist"), "the script exists: {e}");
    assert!(e.contains("remedy"), "says what to do: {e}");

    // A size the limit cannot be.
    let mut runner = Runner::new(&image.root());
    runner.memory = "12 parsecs".into();
    let r = runner.run_job("echo hi", t);
    let e = r.error.expect("a bad size is refused");
    eprintln!("bad size: {e}");
    assert!(e.contains("12 parsecs"), "names the value: {e}");
    assert!(
        e.contains("64m") || e.contains("64M") || e.contains("e.g."),
        "says what a size looks like: {e}"
    );
}

/// The runner's default (`init` on): a script whose `#!` interpreter is missing must not be
/// reported as a script that "does not exist", and the message should name the interpreter.
/// (It once said "/job/script does not exist in the container's root": under
/// `Container::init(true)` nothing looked at the file.)
#[test]
fn bad_interpreter_is_named_under_init() {
    if !is_root("bad_interpreter_is_named_under_init") {
        return;
    }
    let _serial = serial();
    let image = BusyboxRootfs::new("runner-interp");
    let runner = Runner::new(&image.root());
    assert!(runner.init);
    let r = runner.run_job("#!/usr/bin/python3\nprint('hi')\n", Duration::from_secs(60));
    let e = r.error.expect("no python3 in a busybox image");
    eprintln!("bad interpreter under init: {e}");
    assert!(!e.contains("does not exist"), "the script exists: {e}");
    assert!(e.contains("/usr/bin/python3"), "names the interpreter: {e}");
}
