//! Disk I/O limits that a user can see work: io.max throttling direct reads and writes of a
//! real block device (the qemu guest's brd /dev/ram0), through the library and through the
//! run example's docker flags; block devices resolved from paths, partitions refused naming
//! their disk; cpuset limits; and, on hosts without the io controller in cgroup v2 (this
//! hybrid VM), the flags failing with 125 and the library's message.
//!
//! The throttle tests need root, cgroup v2's io controller and /dev/ram0: they run in the
//! guest (`cargo xtask test`), from its busy cgroup /ci.scope, and skip elsewhere saying why.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as StdStdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::run::{code, run, run_example};
use common::{is_root, skip};
use contain::cgroup::{
    Controller, Device, DeviceAccess, DeviceKind, DeviceRule, HostCgroups, IoMax, IoUsage,
    Resources,
};
use contain::namespace::Namespaces;
use contain::process::{Container, Output, Stdio};
use contain::security::Security;
use contain::{Bytes, Error};

/// The guest's brd device (`rd_nr=1 rd_size=65536`: 64 MiB).
const RAM0: &str = "/dev/ram0";

/// One test at a time on /dev/ram0: the test harness runs tests on threads, and a
/// throttled run must not share the disk with another test's writes (nor have its file
/// system written over).
static RAM0_LOCK: Mutex<()> = Mutex::new(());

fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

/// Why the throttle tests cannot run here, if they cannot: not root, no io controller in
/// cgroup v2 (then the guest must have one), or no /dev/ram0.
fn cannot_throttle() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (CI runs as root)".into());
    }
    if let Err(e) = HostCgroups::detect().unwrap().check(Controller::Io) {
        assert!(!in_vm(), "the guest's cgroup v2 lacks io: {e}");
        return Some(format!("no io controller in cgroup v2 here: {e}"));
    }
    if !Path::new(RAM0).exists() {
        assert!(!in_vm(), "the guest has no {RAM0} (brd)");
        return Some(format!("no {RAM0} (the qemu guest loads brd)"));
    }
    None
}

/// The default device allowlist and read-write access to /dev/ram0, so that the container
/// may open the disk itself (as `docker run --device /dev/ram0` allows).
fn security_with_ram0(ram0: Device) -> Security {
    let mut security = Security::default();
    let mut rules = DeviceRule::default_allowlist();
    rules.push(DeviceRule {
        kind: DeviceKind::Block,
        major: Some(ram0.major),
        minor: Some(ram0.minor),
        access: DeviceAccess::READ | DeviceAccess::WRITE,
    });
    security.device_allowlist = Some(rules);
    security
}

/// Runs busybox/coreutils `dd` with `args` in a container (mount and PID namespaces, the
/// caller's file system) whose cgroup has `limit`, and says how long it took, spawn to exit.
fn timed_dd(ram0: Device, limit: Option<IoMax>, args: &[&str]) -> (Duration, Output) {
    let mut resources = Resources::new();
    if let Some(limit) = limit {
        resources = resources.io_max(limit);
    }
    let c = Container::new("dd")
        .args(args)
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .resources(resources)
        .security(security_with_ram0(ram0))
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    let started = Instant::now();
    let out = c.spawn().unwrap().wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "dd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out)
}

/// At least what the limit implies, less the first slice the kernel lets through at once
/// (blk-throttle dispatches within 100 ms slices, and the first I/O goes unthrottled).
fn assert_throttled(took: Duration, at_least: Duration, what: &str) {
    eprintln!(
        "{what}: {:.2} s (limit implies ≥ {at_least:?})",
        took.as_secs_f64()
    );
    assert!(
        took >= at_least,
        "{what} took {took:?}: not throttled (≥ {at_least:?} expected)"
    );
}

/// Unthrottled, the same I/O takes well under the throttled time (even under TCG).
fn assert_unthrottled(took: Duration, throttled_bound: Duration, what: &str) {
    eprintln!("{what} without a limit: {:.2} s", took.as_secs_f64());
    assert!(
        took < throttled_bound / 2,
        "{what} took {took:?} without a limit: the comparison proves nothing"
    );
}

/// 8 MiB at 2 MiB/s, or 100 operations at 25 per second: 4 s, at least 3.5 s with the first
/// slice.
const BOUND: Duration = Duration::from_millis(3500);

/// `dd` moving `count` blocks of `bs` between /dev/ram0 and /dev/zero or /dev/null with
/// direct I/O: without a limit (fast), then with `limit` (at least [`BOUND`]). Returns what
/// io.stat counted for the throttled run.
fn throttled_dd(write: bool, bs: &str, count: &str, limit: fn(IoMax) -> IoMax) -> IoUsage {
    let ram0 = Device::from_block_device(RAM0).unwrap();
    let (bs, count) = (format!("bs={bs}"), format!("count={count}"));
    let args: [&str; 5] = if write {
        ["if=/dev/zero", "of=/dev/ram0", &bs, &count, "oflag=direct"]
    } else {
        ["if=/dev/ram0", "of=/dev/null", &bs, &count, "iflag=direct"]
    };
    let limit = limit(IoMax::new(ram0));
    let what = format!("dd {args:?}");
    let (took, _) = timed_dd(ram0, None, &args);
    assert_unthrottled(took, BOUND, &what);
    let (took, out) = timed_dd(ram0, Some(limit), &args);
    assert_throttled(took, BOUND, &format!("{what} with {limit}"));
    out.usage.cgroup.and_then(|cg| cg.io).expect("io.stat")
}

#[test]
fn bps_limits_throttle_direct_writes_and_reads_of_a_disk() {
    let test = "bps_limits_throttle_direct_writes_and_reads_of_a_disk";
    if let Some(why) = cannot_throttle() {
        return skip(test, &why);
    }
    let _ram0 = RAM0_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let io = throttled_dd(true, "1M", "8", |l| l.wbps(Bytes::mib(2)));
    assert!(io.wbytes >= 8 << 20 && io.wios >= 8, "{io:?}");
    let io = throttled_dd(false, "1M", "8", |l| l.rbps(Bytes::mib(2)));
    assert!(io.rbytes >= 8 << 20 && io.rios >= 8, "{io:?}");
}

#[test]
fn iops_limits_throttle_direct_writes_and_reads_of_a_disk() {
    let test = "iops_limits_throttle_direct_writes_and_reads_of_a_disk";
    if let Some(why) = cannot_throttle() {
        return skip(test, &why);
    }
    let _ram0 = RAM0_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let io = throttled_dd(true, "4k", "100", |l| l.wiops(25));
    assert!(io.wios >= 100, "{io:?}");
    let io = throttled_dd(false, "4k", "100", |l| l.riops(25));
    assert!(io.rios >= 100, "{io:?}");
}

/// A file system on /dev/ram0 mounted at a temporary directory, unmounted when dropped.
struct Ram0Fs {
    dir: PathBuf,
}

impl Ram0Fs {
    fn new() -> Ram0Fs {
        let dir = std::env::temp_dir().join(format!("contain-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mkfs = Command::new("mke2fs").args(["-q", "-F", RAM0]).output();
        let mkfs = mkfs.expect("mke2fs (busybox's in the guest, e2fsprogs' on a host)");
        assert!(mkfs.status.success(), "mke2fs: {mkfs:?}");
        nix::mount::mount(
            Some(RAM0),
            &dir,
            Some("ext2"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("mount {RAM0} at {}: {e}", dir.display()));
        Ram0Fs { dir }
    }
}

impl Drop for Ram0Fs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs the example with `args`, timing it; exit 0 expected. Returns the time and stderr.
fn timed_run(args: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let o = run(args);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(code(&o), 0, "run {args:?}: {err}");
    (took, err)
}

/// The value of `key=N` in the example's `--stats` line.
fn stat(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("contain: stats: "))
        .unwrap_or_else(|| panic!("no stats line: {stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn the_run_examples_docker_flags_throttle_a_volume_on_the_disk() {
    let test = "the_run_examples_docker_flags_throttle_a_volume_on_the_disk";
    if let Some(why) = cannot_throttle() {
        return skip(test, &why);
    }
    let _ram0 = RAM0_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // As a docker user does: the data lives on a volume, the limit names the disk under it.
    let fs = Ram0Fs::new();
    let volume = format!("{}:/data", fs.dir.display());
    let write = [
        "dd",
        "if=/dev/zero",
        "of=/data/f",
        "bs=1M",
        "count=8",
        "oflag=direct",
    ];
    let mut args = vec!["-v", &volume, "--stats", "--"];
    args.extend(write);
    let (took, _) = timed_run(&args);
    assert_unthrottled(took, BOUND, "run: 8 MiB direct writes to a volume");

    let mut args = vec![
        "--device-write-bps",
        "/dev/ram0:2mb",
        "-v",
        &volume,
        "--stats",
        "--",
    ];
    args.extend(write);
    let (took, err) = timed_run(&args);
    assert_throttled(took, BOUND, "run --device-write-bps /dev/ram0:2mb");
    assert!(stat(&err, "wbytes") >= 8 << 20, "{err}");
    assert!(stat(&err, "wios") >= 8, "{err}");

    let read = [
        "dd",
        "if=/data/f",
        "of=/dev/null",
        "bs=4k",
        "count=100",
        "iflag=direct",
    ];
    let mut args = vec![
        "--device-read-iops",
        "/dev/ram0:25",
        "--device-read-bps",
        "/dev/ram0:512kb",
        "-v",
        &volume,
        "--stats",
        "--",
    ];
    args.extend(read);
    let (took, err) = timed_run(&args);
    assert_throttled(took, BOUND, "run --device-read-iops /dev/ram0:25");
    assert!(stat(&err, "rios") >= 100, "{err}");
    assert!(stat(&err, "rbytes") >= 100 * 4096, "{err}");
    drop(fs);
}

#[test]
fn io_flags_fail_with_125_and_the_librarys_message_without_the_controller() {
    let host = HostCgroups::detect().unwrap();
    let Err(why) = host.check(Controller::Io) else {
        return skip(
            "io_flags_fail_with_125_and_the_librarys_message_without_the_controller",
            "this host's cgroup v2 has the io controller (the throttle tests cover it)",
        );
    };
    let disk = whole_disk().expect("a block device on this host");
    let disk = disk.to_str().unwrap();
    for flag in [
        "--device-read-bps",
        "--device-write-bps",
        "--device-read-iops",
        "--device-write-iops",
    ] {
        let rate = if flag.ends_with("iops") { "100" } else { "1mb" };
        let o = run(&[flag, &format!("{disk}:{rate}"), "--", "true"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 125, "{flag}: {err}");
        assert!(
            err.contains(&why.to_string()),
            "{flag}: the library's message ({why}): {err}"
        );
    }
    let o = run(&["--blkio-weight", "300", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 125, "{err}");
    assert!(err.contains(&why.to_string()), "{err}");
    // Best effort runs it and says what was not applied.
    let o = run(&[
        "--limits-best-effort",
        "--device-write-bps",
        &format!("{disk}:1mb"),
        "--",
        "true",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("io.max=") && err.contains("wbps=1048576") && err.contains("not applied"),
        "{err}"
    );
}

/// A whole disk of this machine, from /sys/block (which lists disks, not partitions).
fn whole_disk() -> Option<PathBuf> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| Path::new("/dev").join(e.file_name()))
        .find(|p| p.exists())
}

#[test]
fn bad_io_flags_are_refused_with_125_saying_what_is_wrong() {
    let disk = whole_disk().expect("a block device on this host");
    let disk = disk.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &["--device-read-bps", "/dev/null:1mb"],
            "/dev/null is a character device",
        ),
        (
            &["--device-write-bps", "/nonexistent:1mb"],
            "stat /nonexistent: ENOENT",
        ),
        (
            &["--device-write-bps", "/:1mb"],
            "/ is a directory, not a block device",
        ),
        (&["--device-read-bps", disk], "expected DEV:RATE"),
        (&["--device-read-bps", &format!("{disk}:0")], "at least 2"),
        (
            &["--device-read-bps", &format!("{disk}:1x")],
            "is not a rate",
        ),
        (
            &["--device-write-iops", &format!("{disk}:1.5")],
            "is not a whole number",
        ),
        (&["--blkio-weight", "5"], "10 to 1000"),
        (&["--cpuset-cpus", "a-b"], "is not a list"),
    ];
    for (args, says) in cases {
        let mut all = args.to_vec();
        all.extend(["--", "true"]);
        let o = run(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 125, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn block_devices_resolve_and_a_partition_names_its_disk() {
    let test = "block_devices_resolve_and_a_partition_names_its_disk";
    let disk = whole_disk().expect("a block device on this host");
    let dev = Device::from_block_device(&disk).unwrap();
    let sys = std::fs::read_to_string(format!(
        "/sys/block/{}/dev",
        disk.file_name().unwrap().to_str().unwrap()
    ))
    .unwrap();
    assert_eq!(dev.to_string(), sys.trim(), "{}", disk.display());
    if !is_root(test) {
        return;
    }
    let Some(loop_dev) = PartitionedLoop::new() else {
        return skip(
            test,
            "losetup -P found no partition (this kernel may lack MBR partition tables)",
        );
    };
    let part = loop_dev.partition();
    let e = Device::from_block_device(&part).unwrap_err();
    let disk = Device::from_block_device(&loop_dev.dev).unwrap();
    assert!(
        matches!(&e, Error::Config { what: "io device", reason }
            if reason.contains("is a partition of")
                && reason.contains(&format!("{} ({disk})", loop_dev.dev.display()))),
        "{e}"
    );
    // The run example says the same, with 125.
    let o = run(&[
        "--device-write-bps",
        &format!("{}:1mb", part.display()),
        "--",
        "true",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 125, "{err}");
    assert!(err.contains("is a partition of"), "{err}");
}

/// A 4 MiB loop device with one partition (an MBR written here), detached when dropped.
struct PartitionedLoop {
    dev: PathBuf,
    image: PathBuf,
}

impl PartitionedLoop {
    fn new() -> Option<PartitionedLoop> {
        let image =
            std::env::temp_dir().join(format!("contain-io-loop-{}.img", std::process::id()));
        let mut disk = vec![0u8; 4 << 20];
        // One Linux partition (type 0x83) from sector 2048, 4096 sectors long.
        let entry = &mut disk[446..462];
        entry[4] = 0x83;
        entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
        entry[12..16].copy_from_slice(&4096u32.to_le_bytes());
        disk[510] = 0x55;
        disk[511] = 0xaa;
        std::fs::write(&image, &disk).unwrap();
        let free = Command::new("losetup").arg("-f").output().ok()?;
        let dev = PathBuf::from(String::from_utf8_lossy(&free.stdout).trim());
        let attached = Command::new("losetup")
            .arg("-P")
            .arg(&dev)
            .arg(&image)
            .status()
            .ok()?;
        let lo = PartitionedLoop { dev, image };
        if !attached.success() {
            return None;
        }
        // devtmpfs makes the partition's node as the kernel scans the table (synchronously
        // in LOOP_SET_STATUS with LO_FLAGS_PARTSCAN).
        lo.partition().exists().then_some(lo)
    }

    fn partition(&self) -> PathBuf {
        PathBuf::from(format!("{}p1", self.dev.display()))
    }
}

impl Drop for PartitionedLoop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

#[test]
fn cpuset_flags_pin_the_container_and_unavailable_cpus_are_named() {
    let test = "cpuset_flags_pin_the_container_and_unavailable_cpus_are_named";
    if !is_root(test) {
        return;
    }
    let host = HostCgroups::detect().unwrap();
    if let Err(why) = host.check(Controller::Cpuset) {
        assert!(!in_vm(), "the guest's cgroup v2 lacks cpuset: {why}");
        let o = run(&["--cpuset-cpus", "0", "--", "true"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 125, "{err}");
        assert!(err.contains(&why.to_string()), "{err}");
        return;
    }
    let o = run(&[
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--",
        "sh",
        "-c",
        "grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("Cpus_allowed_list:\t0\n") && out.contains("Mems_allowed_list:\t0\n"),
        "{out}"
    );
    // A CPU the machine does not have: docker's "requested CPUs are not available", with
    // what is.
    let o = run(&["--cpuset-cpus", "4000", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 125, "{err}");
    assert!(
        err.contains("requested CPUs 4000 are not available")
            && err.contains("cpuset.cpus.effective"),
        "{err}"
    );
}

#[test]
fn pause_after_freezes_the_container_for_a_while_then_it_goes_on() {
    let test = "pause_after_freezes_the_container_for_a_while_then_it_goes_on";
    if !is_root(test) {
        return;
    }
    if let Err(e) = HostCgroups::detect().unwrap().v2_mount() {
        return skip(test, &format!("no cgroup v2 for a freezer: {e}"));
    }
    // A tick every 50 ms, stamped here as each arrives: the longest gap is the pause.
    let mut child = run_example()
        .args([
            "--pause-after",
            "0.5",
            "--pause-for",
            "1.5",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 40 ]; do echo $i; i=$((i+1)); sleep 0.05; done",
        ])
        .stdout(StdStdio::piped())
        .stderr(StdStdio::piped())
        .spawn()
        .unwrap();
    let mut stamps = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        line.unwrap();
        stamps.push(Instant::now());
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(stamps.len(), 40, "every tick arrives: {err}");
    assert!(
        err.contains("contain: paused (cgroup.freeze) for 1.500s")
            && err.contains("contain: resumed"),
        "{err}"
    );
    let longest = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    eprintln!("longest gap between ticks: {longest:?}");
    assert!(
        longest >= Duration::from_millis(1400),
        "no tick may arrive while frozen: longest gap {longest:?}"
    );
}
