//! Mounts as docker users give them: `--tmpfs DST:OPTIONS`, `--volume SRC:DST:OPTIONS`,
//! `--shm-size`, a persistent `--upper` that one container at a time may use, mount targets
//! behind symlinks the image leaves dangling, and mount points of the wrong type.
//!
//! Library tests build busybox images (tests/common/busybox.rs); run-example tests use the
//! host view or such an image. Everything that mounts needs root.

mod common;

use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio as StdStdio;

use common::busybox::BusyboxRootfs;
use common::run::{code, read_until, run, run_example};
use common::{is_root, TempDir};
use contain::mount::Mount;
use contain::namespace::Namespaces;
use contain::process::{Container, Output, Stdio};
use contain::rootfs::{Rootfs, RootfsMode};
use contain::{Errno, Error};

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn overlay_available() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
}

fn namespaces() -> Namespaces {
    Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC | Namespaces::NET
}

fn sh(rootfs: Rootfs, script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", "/bin")
        .namespaces(namespaces())
        .rootfs(rootfs)
        .stdin(Stdio::Null)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
}

fn run_sh(rootfs: Rootfs, script: &str) -> Result<Output, Error> {
    sh(rootfs, script).spawn()?.wait_with_output()
}

fn ok_sh(rootfs: Rootfs, script: &str) -> String {
    let o = run_sh(rootfs, script).unwrap_or_else(|e| panic!("spawn failed: {e}"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{:?}: {text} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

/// The mountinfo line of the mount at `path` in the example's container.
fn mountinfo_line(args: &[&str], path: &str) -> String {
    let script = format!("grep ' {path} ' /proc/self/mountinfo");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--", "sh", "-c", &script]);
    let o = run(&all);
    assert_eq!(code(&o), 0, "{args:?}: {}", err(&o));
    out(&o)
}

/// The per-mount flags (mountinfo's sixth field) of the mount at `path` in `mountinfo`.
fn mount_flags(mountinfo: &str, path: &str) -> Vec<String> {
    let line = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some(path))
        .unwrap_or_else(|| panic!("no {path} in {mountinfo}"));
    let flags = line.split_whitespace().nth(5).unwrap();
    flags.split(',').map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// --tmpfs DST[:OPTIONS], --shm-size, --volume

#[test]
fn tmpfs_options_are_parsed_never_part_of_the_path() {
    if !is_root("tmpfs_options_are_parsed_never_part_of_the_path") {
        return;
    }
    // The input: a 1 MiB tmpfs at /run, and no directory named "/run:size=1m".
    let o = run(&[
        "--tmpfs",
        "/run:size=1m,mode=755",
        "--",
        "sh",
        "-c",
        "grep ' /run ' /proc/self/mountinfo; test -e '/run:size=1m,mode=755' && echo path-created; \
         stat -c %a /run",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("size=1024k"), "{text}");
    assert!(text.contains("mode=755"), "{text}");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(text.contains(flag), "docker's default {flag}: {text}");
    }
    assert!(!text.contains("path-created"), "{text}");
    assert!(text.trim_end().ends_with("755"), "{text}");

    // Defaults: docker's noexec,nosuid,nodev, the kernel's mode 1777; exec undoes noexec.
    let o = run(&["--tmpfs", "/scratch", "--", "stat", "-c", "%a", "/scratch"]);
    assert_eq!(out(&o).trim(), "1777", "{}", err(&o));
    let line = mountinfo_line(&["--tmpfs", "/x:exec,uid=1,gid=2,nr_inodes=1k"], "/x");
    assert!(!line.contains("noexec"), "{line}");
    assert!(line.contains("nosuid") && line.contains("nodev"), "{line}");
    assert!(line.contains("nr_inodes=1024"), "{line}");
    assert!(line.contains("uid=1") && line.contains("gid=2"), "{line}");
    let line = mountinfo_line(&["--tmpfs", "/x:ro"], "/x");
    assert!(
        mount_flags(&line, "/x").contains(&"ro".to_string()),
        "{line}"
    );

    // Anything unknown is refused, naming the option; nothing runs.
    for (spec, names) in [
        ("/run:size=1m,bogus", "\"bogus\""),
        ("/run:size=lots", "size=lots"),
        ("/run:mode=999", "mode=999"),
        ("run:size=1m", "not absolute"),
    ] {
        let o = run(&["--tmpfs", spec, "--", "echo", "ran"]);
        assert_eq!(code(&o), 125, "{spec}: {}", out(&o));
        assert!(
            err(&o).contains("--tmpfs") && err(&o).contains(names),
            "{spec}: {}",
            err(&o)
        );
        assert!(!out(&o).contains("ran"));
    }
    // An owner the container's user namespace does not map (--rootless maps only the
    // caller): the kernel's bare EINVAL is explained.
    let o = run(&[
        "--rootless",
        "--tmpfs",
        "/run:uid=70000",
        "--",
        "echo",
        "ran",
    ]);
    assert_eq!(code(&o), 125, "{}", out(&o));
    assert!(
        err(&o).contains("uid=70000")
            && err(&o).contains("mapped in the container's user namespace"),
        "{}",
        err(&o)
    );
    // A bind source that does not exist: said so, with the remedy (docker -v creates it).
    let o = run(&["-v", "/nonexistent-source:/x", "--", "echo", "ran"]);
    assert_eq!(code(&o), 125, "{}", out(&o));
    assert!(
        err(&o).contains("/nonexistent-source")
            && err(&o).contains("does not exist: create it first"),
        "{}",
        err(&o)
    );
    assert!(!std::path::Path::new("/nonexistent-source").exists());
}

#[test]
fn shm_size_follows_docker() {
    if !is_root("shm_size_follows_docker") {
        return;
    }
    let line = mountinfo_line(&["--shm-size", "1m"], "/dev/shm");
    assert!(line.contains("size=1024k"), "{line}");
    let line = mountinfo_line(&[], "/dev/shm");
    assert!(line.contains("size=65536k"), "default: {line}");
    // docker: 0 means the default (a tmpfs would take size=0 as no limit at all).
    let line = mountinfo_line(&["--shm-size", "0"], "/dev/shm");
    assert!(line.contains("size=65536k"), "0: {line}");
    let line = mountinfo_line(&["--shm-size", "128MiB"], "/dev/shm");
    assert!(line.contains("size=131072k"), "{line}");
    let o = run(&["--shm-size", "lots", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("--shm-size"), "{}", err(&o));
}

#[test]
fn volume_options_follow_docker_and_unknown_ones_are_refused() {
    if !is_root("volume_options_follow_docker_and_unknown_ones_are_refused") {
        return;
    }
    let tmp = TempDir::new("volume-opts");
    std::fs::write(tmp.path().join("f"), "from the host\n").unwrap();
    let spec = format!("{}:/data:ro,rslave", tmp.path().display());
    let o = run(&[
        "-v",
        &spec,
        "--",
        "sh",
        "-c",
        "cat /data/f; touch /data/new 2>/dev/null || echo read-only; \
         grep ' /data ' /proc/self/mountinfo",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    assert!(text.starts_with("from the host\nread-only\n"), "{text}");
    assert!(
        mount_flags(&text, "/data").contains(&"ro".to_string()),
        "{text}"
    );
    for (opts, names) in [("bogus", "\"bogus\""), ("z", "SELinux"), ("ro,rw", "twice")] {
        let spec = format!("{}:/data:{opts}", tmp.path().display());
        let o = run(&["-v", &spec, "--", "echo", "ran"]);
        assert_eq!(code(&o), 125, "{opts}");
        assert!(err(&o).contains(names), "{opts}: {}", err(&o));
    }
}

// ---------------------------------------------------------------------------------------------
// --upper: one container at a time

/// The container's init holds no descriptor of `dirs` (the lock stays in the parent).
fn holds_none_of(pid: i32, dirs: &[&Path]) {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue;
        };
        assert!(
            !dirs.iter().any(|d| target == *d),
            "the container holds {}",
            target.display()
        );
    }
}

#[test]
fn a_persistent_upper_is_used_by_one_container_at_a_time() {
    if !is_root("a_persistent_upper_is_used_by_one_container_at_a_time") {
        return;
    }
    if !overlay_available() {
        eprintln!("skipped: no overlayfs");
        return;
    }
    let image = BusyboxRootfs::new("upper-lock");
    let upper = image.dir().join("upper");
    let work = image.dir().join("upper.work");
    let rootfs = || Rootfs::new(image.root()).persistent_upper(&upper);
    let first = sh(rootfs(), "echo ready; read x; echo $x > /written").stdin(Stdio::Piped);
    let mut first = first.spawn().unwrap();
    let ready = read_until(first.stdout.as_ref().unwrap(), "ready");
    assert_eq!(ready, "ready\n");
    holds_none_of(first.pid().raw(), &[&upper, &work]);

    // The same upper: refused, naming the directory.
    match run_sh(rootfs(), "echo ran") {
        Err(Error::InUse { path, reason }) => {
            assert_eq!(path, upper);
            assert!(reason.contains("another container"), "{reason}");
        }
        other => panic!("a second container on the same upper: {other:?}"),
    }
    // The first one's work directory as another's upper: refused too.
    match run_sh(
        Rootfs::new(image.root()).persistent_upper(&work),
        "echo ran",
    ) {
        Err(Error::InUse { path, .. }) => assert_eq!(path, work),
        other => panic!("the work directory as an upper: {other:?}"),
    }
    // A symlinked alias of the same upper: the same directory, refused the same way (it would
    // otherwise get an alias.work of its own and share the upper).
    let alias = image.dir().join("upalias");
    symlink("upper", &alias).unwrap();
    match run_sh(
        Rootfs::new(image.root()).persistent_upper(&alias),
        "echo ran",
    ) {
        Err(Error::InUse { path, .. }) => assert_eq!(path, upper),
        other => panic!("an alias of the upper: {other:?}"),
    }
    assert!(!image.dir().join("upalias.work").exists());

    // The first one ends (waited for): the lock goes with it.
    first.stdin.as_mut().unwrap().write_all(b"one\n").unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(ok_sh(rootfs(), "cat /written"), "one\n");
    // Dropped without waiting (killed and reaped): released as well.
    let c = sh(rootfs(), "echo ready; read x").stdin(Stdio::Piped);
    let child = c.spawn().unwrap();
    read_until(child.stdout.as_ref().unwrap(), "ready");
    drop(child);
    assert_eq!(ok_sh(rootfs(), "cat /written"), "one\n");
}

#[test]
fn an_upper_inside_the_image_through_a_symlink_is_refused_and_nothing_is_created() {
    if !is_root("an_upper_inside_the_image_through_a_symlink_is_refused_and_nothing_is_created") {
        return;
    }
    let image = BusyboxRootfs::new("upper-inside");
    let link = image.dir().join("rootlink");
    symlink(image.root(), &link).unwrap();
    let before = entries_under(&image.root());
    for upper in [
        link.join("data/up2"),
        image.dir().join("elsewhere/../rootfs/data/up3"),
        link.clone(),
    ] {
        match run_sh(
            Rootfs::new(image.root()).persistent_upper(&upper),
            "echo ran",
        ) {
            Err(Error::Config { what, reason }) => {
                assert_eq!(what, "persistent upper directory", "{reason}");
                assert!(reason.contains("must not contain one another"), "{reason}");
            }
            other => panic!("{}: {other:?}", upper.display()),
        }
    }
    assert_eq!(
        entries_under(&image.root()),
        before,
        "something was created in the image"
    );
    assert!(!image.dir().join("elsewhere").exists());
}

#[test]
fn a_work_directory_or_lock_that_is_a_symlink_is_refused_and_its_target_untouched() {
    if !is_root("a_work_directory_or_lock_that_is_a_symlink_is_refused_and_its_target_untouched") {
        return;
    }
    let image = BusyboxRootfs::new("upper-worklink");
    let victim = image.dir().join("victim");
    std::fs::create_dir_all(victim.join("work/keep")).unwrap();
    let upper = image.dir().join("up");
    symlink(&victim, image.dir().join("up.work")).unwrap();
    let rootfs = || Rootfs::new(image.root()).persistent_upper(&upper);
    let mode = std::fs::metadata(victim.join("work")).unwrap().mode();
    match run_sh(rootfs(), "echo ran") {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "persistent upper directory", "{reason}");
            assert!(
                reason.contains("up.work") && reason.contains("symbolic link"),
                "{reason}"
            );
        }
        other => panic!("a symlinked work directory: {other:?}"),
    }
    assert!(victim.join("work/keep").is_dir(), "the victim was touched");
    assert_eq!(
        std::fs::metadata(victim.join("work")).unwrap().mode(),
        mode,
        "the victim's mode changed"
    );

    // A lock file that is a symlink: refused, never followed.
    std::fs::remove_file(image.dir().join("up.work")).unwrap();
    let target = image.dir().join("lock-target");
    symlink(&target, image.dir().join("up.lock")).unwrap();
    match run_sh(rootfs(), "echo ran") {
        Err(e @ Error::Sys { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("up.lock") && msg.contains("symbolic link"),
                "{msg}"
            );
        }
        other => panic!("a symlinked lock file: {other:?}"),
    }
    assert!(!target.exists(), "the lock's symlink was followed");

    // An upper that exists and is not a directory: says so.
    let file = image.dir().join("afile");
    std::fs::write(&file, "x").unwrap();
    match run_sh(
        Rootfs::new(image.root()).persistent_upper(&file),
        "echo ran",
    ) {
        Err(Error::Config { reason, .. }) => {
            assert!(reason.contains("is not a directory"), "{reason}");
        }
        other => panic!("a file as the upper: {other:?}"),
    }
}

/// Every path under `dir`, sorted.
fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .output()
        .unwrap();
    let mut v: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    v.sort();
    v
}

#[test]
fn the_run_example_refuses_a_second_run_on_the_same_upper() {
    if !is_root("the_run_example_refuses_a_second_run_on_the_same_upper") {
        return;
    }
    if !overlay_available() {
        eprintln!("skipped: no overlayfs");
        return;
    }
    let image = BusyboxRootfs::new("upper-example");
    let root = image.root();
    let upper = image.dir().join("upper");
    let args = |script: &str| -> Vec<String> {
        [
            "--rootfs",
            root.to_str().unwrap(),
            "--upper",
            upper.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            script,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut first = run_example()
        .args(args("echo ready; read x; exit 0"))
        .stdin(StdStdio::piped())
        .stdout(StdStdio::piped())
        .stderr(StdStdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        read_until(first.stdout.as_ref().unwrap(), "ready"),
        "ready\n"
    );
    let second = run_example().args(args("echo ran")).output().unwrap();
    assert_eq!(code(&second), 125, "{}", out(&second));
    assert!(
        err(&second).contains(&format!("{} is in use", upper.display())),
        "{}",
        err(&second)
    );
    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    let third = run_example().args(args("echo ran")).output().unwrap();
    assert_eq!(
        (code(&third), out(&third).as_str()),
        (0, "ran\n"),
        "{}",
        err(&third)
    );
}

// ---------------------------------------------------------------------------------------------
// Mount targets behind dangling symlinks

struct Dangling {
    image: BusyboxRootfs,
    file: PathBuf,
    dir: PathBuf,
    /// A host path that must never be created; the escaping link aims at it.
    host_canary: PathBuf,
}

impl Dangling {
    fn new(tag: &str) -> Dangling {
        let image = BusyboxRootfs::new(tag);
        let root = image.root();
        let file = image.dir().join("localtime");
        std::fs::write(&file, "TZif host zone\n").unwrap();
        let dir = image.dir().join("conf");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("inside"), "conf\n").unwrap();
        let host_canary = image.dir().join("escaped/zone");
        // The image: /etc/localtime -> a zoneinfo file it does not ship.
        symlink("/usr/share/zoneinfo/Etc/UTC", root.join("etc/localtime")).unwrap();
        symlink("../usr/share/zoneinfo/Rel", root.join("etc/timezone")).unwrap();
        let up = "../".repeat(20);
        let canary_rel = host_canary.strip_prefix("/").unwrap().display().to_string();
        symlink(format!("{up}{canary_rel}"), root.join("etc/escape")).unwrap();
        symlink("/opt/missing/conf.d", root.join("etc/conf.d")).unwrap();
        symlink("chain2", root.join("etc/chain1")).unwrap();
        symlink("/var/lib/chained", root.join("etc/chain2")).unwrap();
        Dangling {
            image,
            file,
            dir,
            host_canary,
        }
    }

    fn rootfs(&self, mode: RootfsMode) -> Rootfs {
        Rootfs::new(self.image.root())
            .mode(mode)
            .mount(Mount::bind(&self.file, "/etc/localtime").read_only())
            .mount(Mount::bind(&self.file, "/etc/timezone").read_only())
            .mount(Mount::bind(&self.file, "/etc/escape").read_only())
            .mount(Mount::bind(&self.dir, "/etc/conf.d").read_only())
            .mount(Mount::bind(&self.file, "/etc/chain1").read_only())
    }

    /// Inside the image, where the escaping link lands.
    fn escape_inside(&self) -> PathBuf {
        self.image
            .root()
            .join(self.host_canary.strip_prefix("/").unwrap())
    }
}

const READ_ALL: &str = "cat /etc/localtime /usr/share/zoneinfo/Etc/UTC /etc/timezone \
                        /etc/escape /etc/chain1 /var/lib/chained /etc/conf.d/inside";
const ALL_READ: &str = "TZif host zone\nTZif host zone\nTZif host zone\nTZif host zone\n\
                        TZif host zone\nTZif host zone\nconf\n";

#[test]
fn dangling_symlink_targets_are_created_inside_the_root() {
    if !is_root("dangling_symlink_targets_are_created_inside_the_root") {
        return;
    }
    // Overlay: created in the throw-away layer; the image is unchanged.
    if overlay_available() {
        let d = Dangling::new("dangling-overlay");
        assert_eq!(ok_sh(d.rootfs(RootfsMode::Overlay), READ_ALL), ALL_READ);
        for p in ["usr", "opt", "var"] {
            assert!(
                !d.image.root().join(p).exists(),
                "{p} appeared in the image"
            );
        }
        assert!(!d.escape_inside().exists());
        assert!(!d.host_canary.exists(), "created on the host");
        assert!(
            !d.host_canary.parent().unwrap().exists(),
            "created on the host"
        );
    }
    // ReadWrite: created in the image, where the links point, never outside it.
    let d = Dangling::new("dangling-rw");
    assert_eq!(ok_sh(d.rootfs(RootfsMode::ReadWrite), READ_ALL), ALL_READ);
    let root = d.image.root();
    for (p, dir) in [
        ("usr/share/zoneinfo/Etc/UTC", false),
        ("usr/share/zoneinfo/Rel", false),
        ("opt/missing/conf.d", true),
        ("var/lib/chained", false),
    ] {
        let md = std::fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!(md.is_dir(), dir, "{p}");
        assert!(
            dir || (md.is_file() && md.len() == 0),
            "{p}: not an empty file"
        );
    }
    assert!(
        d.escape_inside().is_file(),
        "the escaping link's target, inside"
    );
    assert!(!d.host_canary.exists(), "created on the host");
    assert!(
        !d.host_canary.parent().unwrap().exists(),
        "created on the host"
    );
    // The links are still links.
    assert!(std::fs::symlink_metadata(root.join("etc/localtime"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A second run finds the targets and binds again.
    assert_eq!(ok_sh(d.rootfs(RootfsMode::ReadWrite), READ_ALL), ALL_READ);

    // A read-only root cannot get them: a message that says so.
    let d = Dangling::new("dangling-ro");
    match run_sh(d.rootfs(RootfsMode::ReadOnly), "echo ran") {
        Err(Error::Sys {
            syscall,
            path: Some(p),
            errno: Errno::EROFS,
        }) => {
            assert_eq!(p, Path::new("/etc/localtime"));
            assert!(syscall.contains("read-only root"), "{syscall}");
            assert!(syscall.contains("create it in the image"), "{syscall}");
        }
        other => panic!("read-only root: {other:?}"),
    }
    assert!(!d.image.root().join("usr").exists());
}

#[test]
fn a_link_loop_is_refused_with_eloop() {
    if !is_root("a_link_loop_is_refused_with_eloop") {
        return;
    }
    let image = BusyboxRootfs::new("loop");
    symlink("/etc/b", image.root().join("etc/a")).unwrap();
    symlink("a", image.root().join("etc/b")).unwrap();
    let rootfs = Rootfs::new(image.root())
        .mode(RootfsMode::ReadWrite)
        .mount(Mount::tmpfs("/etc/a/x"));
    let e = run_sh(rootfs, "true").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ELOOP), "{e}");
    assert!(e.to_string().contains("/etc/a/x"), "{e}");
}

#[test]
fn the_run_example_binds_onto_a_dangling_localtime() {
    if !is_root("the_run_example_binds_onto_a_dangling_localtime") {
        return;
    }
    let d = Dangling::new("dangling-example");
    let mut args = vec!["--rootfs".to_string(), d.image.root().display().to_string()];
    if !overlay_available() {
        args.push("--read-only".into());
    }
    let vol = format!("{}:/etc/localtime:ro", d.file.display());
    args.extend([
        "-v".into(),
        vol,
        "--".into(),
        "/bin/cat".into(),
        "/etc/localtime".into(),
    ]);
    let o = run_example().args(&args).output().unwrap();
    if overlay_available() {
        assert_eq!(
            (code(&o), out(&o).as_str()),
            (0, "TZif host zone\n"),
            "{}",
            err(&o)
        );
        assert!(!d.image.root().join("usr").exists(), "the image changed");
    } else {
        assert_eq!(code(&o), 125);
        assert!(err(&o).contains("read-only root"), "{}", err(&o));
    }
}

// ---------------------------------------------------------------------------------------------
// Mount points of the wrong type

#[test]
fn a_mount_point_of_the_wrong_type_says_so() {
    if !is_root("a_mount_point_of_the_wrong_type_says_so") {
        return;
    }
    let image = BusyboxRootfs::new("wrong-type");
    let host_dir = image.dir().join("dir");
    std::fs::create_dir(&host_dir).unwrap();
    let host_file = image.dir().join("file");
    std::fs::write(&host_file, "x").unwrap();
    let ro = || Rootfs::new(image.root()).mode(RootfsMode::ReadOnly);
    let config = |r: Rootfs| match run_sh(r, "echo ran") {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "mount target");
            reason
        }
        other => panic!("{other:?}"),
    };
    // A directory onto a file (the issue: a bare `move_mount EINVAL` before).
    let why = config(ro().mount(Mount::bind(&host_dir, "/etc/passwd")));
    assert!(why.contains(&host_dir.display().to_string()), "{why}");
    assert!(why.contains("/etc/passwd"), "{why}");
    assert!(why.contains("is a directory"), "{why}");
    // A file onto a directory.
    let why = config(ro().mount(Mount::bind(&host_file, "/etc")));
    assert!(why.contains(&host_file.display().to_string()), "{why}");
    assert!(
        why.contains("is a file") && why.contains("/etc/file"),
        "{why}"
    );
    // A new filesystem onto a file.
    let why = config(ro().mount(Mount::tmpfs("/etc/passwd")));
    assert!(
        why.contains("tmpfs") && why.contains("/etc/passwd"),
        "{why}"
    );

    // The same through the run example.
    let spec = format!("{}:/etc/passwd", host_dir.display());
    let o = run(&["-v", &spec, "--", "echo", "ran"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("is a directory"), "{}", err(&o));
    assert!(!err(&o).contains("EINVAL"), "{}", err(&o));
}
