//! The contain-oci binary driven as containerd and runtime-tools drive runc: create ->
//! running -> stopped, the error words callers match, the lock, ids that could escape the
//! root. Each test makes a bundle with a busybox rootfs and a state root in its own temporary
//! directory. The container tests need root (they say so and skip otherwise).

mod common;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{is_root, text, wait_exit, TempDir, BIN};

/// A test's bundle (`dir/bundle` with `rootfs/` and config.json) and state root (`dir/root`).
struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A bundle whose process runs `args` in a busybox rootfs.
    fn new(tag: &str, args: &[&str]) -> Bundle {
        let dir = TempDir::new(tag);
        common::busybox_rootfs(
            &dir.path().join("bundle/rootfs"),
            &["sh", "sleep", "echo", "true", "cat", "trap"],
        );
        let b = Bundle { dir };
        b.config(args);
        b
    }

    fn config(&self, args: &[&str]) {
        self.config_with(args, serde_json::json!({}));
    }

    /// config.json running `args`, with the top-level fields of `extra` added.
    fn config_with(&self, args: &[&str], extra: serde_json::Value) {
        let mut config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "args": args,
                "env": ["PATH=/bin"],
                "cwd": "/",
                "user": { "uid": 0, "gid": 0 }
            },
            "root": { "path": "rootfs" },
            "hostname": "lifecycle",
            "annotations": { "test": "lifecycle" }
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        std::fs::write(self.bundle().join("config.json"), config.to_string()).unwrap();
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `contain-oci --root ROOT ARGS...`, stdio captured.
    fn oci(&self, args: &[&str]) -> Output {
        common::oci(&self.root(), args)
    }

    /// `n` runs of the command `args` at once (stdout dropped, stderr kept), each one's
    /// output once all have ended.
    fn oci_at_once(&self, n: usize, args: &[&str]) -> Vec<Output> {
        let children: Vec<_> = (0..n)
            .map(|_| {
                Command::new(BIN)
                    .arg("--root")
                    .arg(self.root())
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    }

    /// `create --bundle BUNDLE ID`, the container's stdout and stderr going to `out`.
    fn create(&self, id: &str, out: &Path) -> Output {
        common::create(&self.root(), &[], &self.bundle(), id, out)
    }

    fn state(&self, id: &str) -> serde_json::Value {
        common::state(&self.root(), id)
    }
}

#[test]
fn created_then_running_then_stopped() {
    if !is_root("created_then_running_then_stopped") {
        return;
    }
    let b = Bundle::new(
        "life",
        &[
            "sh",
            "-c",
            "echo hello from $(cat /proc/sys/kernel/hostname)",
        ],
    );
    let out = b.dir.path().join("out");
    let c = b.create("c1", &out);
    assert!(c.status.success(), "create: {}", text(&c.stderr));
    let st = b.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "c1");
    assert_eq!(st["annotations"]["test"], "lifecycle");
    assert_eq!(st["bundle"], b.bundle().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"",
        "nothing runs before start"
    );
    let s = b.oci(&["start", "c1"]);
    assert!(s.status.success(), "start: {}", text(&s.stderr));
    wait_exit(pid);
    // The container wrote to create's stdout, although create has long exited.
    assert_eq!(
        text(&std::fs::read(&out).unwrap()),
        "hello from lifecycle\n"
    );
    assert_eq!(b.state("c1")["status"], "stopped");
    assert_eq!(b.state("c1")["pid"], 0);
    // A second start of a stopped container fails.
    assert!(!b.oci(&["start", "c1"]).status.success());
    let d = b.oci(&["delete", "c1"]);
    assert!(d.status.success(), "delete: {}", text(&d.stderr));
    assert!(!b.root().join("c1").exists());
}

#[test]
fn running_kill_and_a_stopped_container_is_not_running() {
    if !is_root("running_kill_and_a_stopped_container_is_not_running") {
        return;
    }
    let b = Bundle::new("kill", &["sleep", "30"]);
    let out = b.dir.path().join("out");
    assert!(
        b.create("k", &out).status.success(),
        "{}",
        text(&std::fs::read(&out).unwrap())
    );
    let pid = b.state("k")["pid"].as_i64().unwrap();
    assert!(b.oci(&["start", "k"]).status.success());
    assert_eq!(b.state("k")["status"], "running");
    let k = b.oci(&["kill", "k", "KILL"]);
    assert!(k.status.success(), "kill: {}", text(&k.stderr));
    wait_exit(pid);
    assert_eq!(b.state("k")["status"], "stopped");
    let again = b.oci(&["kill", "k", "SIGTERM"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("container not running"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        b.state("k")["status"],
        "stopped",
        "kill of a stopped one changes nothing"
    );
    assert!(b.oci(&["delete", "k"]).status.success());
}

#[test]
fn delete_without_force_refuses_created_and_running_containers() {
    if !is_root("delete_without_force_refuses_created_and_running_containers") {
        return;
    }
    let b = Bundle::new("delete", &["sleep", "30"]);
    let out = b.dir.path().join("out");
    assert!(b.create("d", &out).status.success());
    let pid = b.state("d")["pid"].as_i64().unwrap();
    let d = b.oci(&["delete", "d"]);
    assert_eq!(d.status.code(), Some(1));
    assert!(
        text(&d.stderr).contains("not stopped"),
        "{}",
        text(&d.stderr)
    );
    assert_eq!(b.state("d")["status"], "created");
    assert!(b.oci(&["start", "d"]).status.success());
    assert!(!b.oci(&["delete", "d"]).status.success());
    assert_eq!(b.state("d")["status"], "running");
    let f = b.oci(&["delete", "--force", "d"]);
    assert!(f.status.success(), "delete --force: {}", text(&f.stderr));
    assert!(!b.root().join("d").exists());
    // --force waited for it: no such live process (a zombie or reaped).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false);
    assert!(!alive, "pid {pid} still alive after delete --force");
}

#[test]
fn unknown_ids_do_not_exist_and_bad_ids_make_no_paths() {
    let b = Bundle::new("ids", &["true"]);
    for cmd in [
        &["state", "nope"][..],
        &["kill", "nope", "KILL"],
        &["delete", "nope"],
        &["start", "nope"],
    ] {
        let o = b.oci(cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}");
        assert!(
            text(&o.stderr).contains("does not exist"),
            "{cmd:?}: {}",
            text(&o.stderr)
        );
        assert_eq!(
            text(&o.stderr).lines().count(),
            1,
            "one line: {}",
            text(&o.stderr)
        );
    }
    let out = b.dir.path().join("out");
    for bad in ["a/b", "..", "../escape", "", "."] {
        let o = b.create(bad, &out);
        assert_eq!(o.status.code(), Some(1), "create {bad:?}");
        assert!(
            text(&o.stderr).contains("container id"),
            "{bad:?}: {}",
            text(&o.stderr)
        );
        let o = b.oci(&["delete", "--force", bad]);
        assert_eq!(o.status.code(), Some(1), "delete {bad:?}");
    }
    assert!(!b.dir.path().join("escape").exists());
    assert!(!b.root().join("a").exists());
    // Missing ids are usage errors.
    for cmd in ["state", "start", "kill", "delete"] {
        assert!(!b.oci(&[cmd]).status.success(), "{cmd} without an id");
    }
}

#[test]
fn a_failed_create_leaves_no_state_and_ids_are_unique() {
    if !is_root("a_failed_create_leaves_no_state_and_ids_are_unique") {
        return;
    }
    let b = Bundle::new("failed", &["/no/such/program"]);
    let out = b.dir.path().join("out");
    let c = b.create("f", &out);
    assert_eq!(c.status.code(), Some(1));
    assert!(
        !b.root().join("f").exists(),
        "a failed create left its directory"
    );
    b.config(&["sleep", "30"]);
    assert!(b.create("f", &out).status.success());
    let dup = b.create("f", &out);
    assert_eq!(dup.status.code(), Some(1));
    assert!(
        text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    assert_eq!(
        b.state("f")["status"],
        "created",
        "the duplicate changed nothing"
    );
    // An invalid ociVersion is refused at create.
    let spec = std::fs::read_to_string(b.bundle().join("config.json")).unwrap();
    std::fs::write(
        b.bundle().join("config.json"),
        spec.replace("1.0.2", "invalid"),
    )
    .unwrap();
    assert_eq!(b.create("g", &out).status.code(), Some(1));
    assert!(!b.root().join("g").exists());
    assert!(b.oci(&["delete", "--force", "f"]).status.success());
}

#[test]
fn concurrent_deletes_take_turns_on_the_lock() {
    if !is_root("concurrent_deletes_take_turns_on_the_lock") {
        return;
    }
    let b = Bundle::new("lock", &["true"]);
    let out = b.dir.path().join("out");
    assert!(b.create("l", &out).status.success());
    let pid = b.state("l")["pid"].as_i64().unwrap();
    assert!(b.oci(&["start", "l"]).status.success());
    wait_exit(pid);
    // Plain deletes of the stopped container: one wins, the others find it gone (with
    // --force all would succeed, as runc's do, whichever came first).
    let outs = b.oci_at_once(4, &["delete", "l"]);
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        ok,
        1,
        "exactly one delete wins: {:?}",
        outs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            text(&o.stderr).contains("does not exist"),
            "{}",
            text(&o.stderr)
        );
    }
    assert!(!b.root().join("l").exists());
}

#[test]
fn concurrent_kills_all_land_or_say_not_running() {
    if !is_root("concurrent_kills_all_land_or_say_not_running") {
        return;
    }
    let b = Bundle::new("kills", &["sleep", "30"]);
    let out = b.dir.path().join("out");
    assert!(b.create("k", &out).status.success());
    let pid = b.state("k")["pid"].as_i64().unwrap();
    assert!(b.oci(&["start", "k"]).status.success());
    let outs = b.oci_at_once(4, &["kill", "k", "9"]);
    assert!(outs.iter().any(|o| o.status.success()), "no kill landed");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            text(&o.stderr).contains("container not running"),
            "{}",
            text(&o.stderr)
        );
    }
    wait_exit(pid);
    assert_eq!(b.state("k")["status"], "stopped");
    assert!(b.oci(&["delete", "k"]).status.success());
}

#[test]
fn errors_are_json_lines_in_the_log_and_version_names_the_spec() {
    let b = Bundle::new("log", &["true"]);
    let log = b.dir.path().join("log.json");
    let o = b.oci(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "ghost",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let last = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"]
        .as_str()
        .unwrap()
        .contains("container ghost does not exist"));
    let s = b.oci(&["--systemd-cgroup", "list"]);
    assert_eq!(s.status.code(), Some(1));
    assert!(text(&s.stderr).contains("not supported"));
    let v = b.oci(&["--version"]);
    assert!(v.status.success());
    let version = text(&v.stdout);
    assert!(version.starts_with("contain-oci version "), "{version}");
    assert!(version.contains("\nspec: 1."), "{version}");
    let f = b.oci(&["features"]);
    let features: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(features["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    let l = b.oci(&["list", "-q"]);
    assert!(
        l.status.success() && l.stdout.is_empty(),
        "{}",
        text(&l.stderr)
    );
}

/// A host hook appending `word` to `log`.
fn hook(word: &str, log: &Path) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo {word} >> {}", log.display())],
    })
}

#[test]
fn hooks_run_in_order_at_create_start_and_delete_with_the_state_on_stdin() {
    if !is_root("hooks_run_in_order_at_create_start_and_delete_with_the_state_on_stdin") {
        return;
    }
    let b = Bundle::new("hooks", &["true"]);
    let log = b.dir.path().join("hooks.log");
    let stdin = b.dir.path().join("stdin.json");
    b.config_with(
        &["sh", "-c", "echo process > /ran"],
        serde_json::json!({ "hooks": {
            "createRuntime": [hook("createRuntime", &log)],
            "prestart": [
                hook("prestart1", &log),
                { "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", stdin.display())],
                  "timeout": 5 },
                hook("prestart2", &log),
            ],
            "poststart": [hook("poststart", &log)],
            "poststop": [{ "path": "/bin/false" }, hook("poststop", &log)],
        }}),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let out = b.dir.path().join("out");
    let c = b.create("h", &out);
    assert!(c.status.success(), "create: {}", text(&c.stderr));
    assert_eq!(
        read(),
        "createRuntime\n",
        "prestart runs at start, not create"
    );
    let pid = b.state("h")["pid"].as_i64().unwrap();
    let s = b.oci(&["start", "h"]);
    assert!(s.status.success(), "start: {}", text(&s.stderr));
    assert_eq!(read(), "createRuntime\nprestart1\nprestart2\npoststart\n");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&stdin).unwrap()).unwrap();
    assert_eq!(state["id"], "h");
    assert_eq!(state["status"], "created");
    assert_eq!(state["annotations"]["test"], "lifecycle");
    wait_exit(pid);
    let d = b.oci(&["delete", "h"]);
    assert!(
        d.status.success(),
        "a failing poststop is a warning: {}",
        text(&d.stderr)
    );
    assert!(
        text(&d.stderr).contains("poststop hook #0"),
        "{}",
        text(&d.stderr)
    );
    assert_eq!(
        read(),
        "createRuntime\nprestart1\nprestart2\npoststart\npoststop\n"
    );
    assert_eq!(
        std::fs::read_to_string(b.bundle().join("rootfs/ran")).unwrap(),
        "process\n"
    );
}

#[test]
fn a_failing_prestart_hook_fails_start_and_the_process_never_runs() {
    if !is_root("a_failing_prestart_hook_fails_start_and_the_process_never_runs") {
        return;
    }
    let b = Bundle::new("prestart-fail", &["true"]);
    b.config_with(
        &["sh", "-c", "echo process > /ran"],
        serde_json::json!({ "hooks": { "prestart": [{ "path": "/bin/false" }] } }),
    );
    let out = b.dir.path().join("out");
    assert!(b.create("p", &out).status.success());
    let pid = b.state("p")["pid"].as_i64().unwrap();
    let s = b.oci(&["start", "p"]);
    assert_eq!(s.status.code(), Some(1));
    assert!(
        text(&s.stderr).contains("prestart hook #0"),
        "{}",
        text(&s.stderr)
    );
    wait_exit(pid);
    assert!(!b.bundle().join("rootfs/ran").exists(), "the process ran");
    // runtime.md#lifecycle: on to step 9, delete: the container is gone.
    let st = b.oci(&["state", "p"]);
    assert!(
        text(&st.stderr).contains("does not exist"),
        "{}",
        text(&st.stderr)
    );
    assert!(!b.root().join("p").exists());
}

#[test]
fn run_exits_with_the_containers_status_and_leaves_nothing() {
    if !is_root("run_exits_with_the_containers_status_and_leaves_nothing") {
        return;
    }
    let b = Bundle::new("run", &["sh", "-c", "echo ran; exit 3"]);
    let o = Command::new(BIN)
        .arg("--root")
        .arg(b.root())
        .args(["run", "--bundle"])
        .arg(b.bundle())
        .arg("r")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ran\n", "the container has run's stdout");
    assert!(!b.root().join("r").exists());
}

#[test]
fn a_create_that_died_midway_is_not_listed_and_delete_cleans_it() {
    let b = Bundle::new("stale", &["true"]);
    // What a `create` killed between making its directory and writing state.json leaves.
    std::fs::create_dir_all(b.root().join("half")).unwrap();
    std::fs::write(b.root().join("half/lock"), "").unwrap();
    let st = b.oci(&["state", "half"]);
    assert!(
        text(&st.stderr).contains("does not exist"),
        "{}",
        text(&st.stderr)
    );
    let l = b.oci(&["list", "-q"]);
    assert!(l.status.success());
    assert_eq!(text(&l.stdout), "", "listed a container with no state");
    let d = b.oci(&["delete", "--force", "half"]);
    assert!(d.status.success(), "{}", text(&d.stderr));
    assert!(!b.root().join("half").exists());
}

#[test]
fn the_terminal_master_goes_to_the_console_socket() {
    use std::os::unix::net::UnixListener;
    if !is_root("the_terminal_master_goes_to_the_console_socket") {
        return;
    }
    let b = Bundle::new("console", &["true"]);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.bundle().join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = true.into();
    config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    std::fs::write(b.bundle().join("config.json"), config.to_string()).unwrap();
    let out = b.dir.path().join("out");
    // Without a socket to hand the terminal to, create refuses.
    assert_eq!(b.create("t0", &out).status.code(), Some(1));
    assert!(!b.root().join("t0").exists());
    let sock_path = b.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let o = b.oci(&[
        "create",
        "--bundle",
        b.bundle().to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        "t",
    ]);
    assert!(o.status.success(), "create: {}", text(&o.stderr));
    let master = common::recv_console_master(&listener);
    assert!(nix::unistd::isatty(&master).unwrap(), "not a terminal");
    assert!(b.oci(&["delete", "--force", "t"]).status.success());
}

#[test]
fn preserve_fds_hands_fd_3_to_the_container() {
    use std::os::unix::process::CommandExt;
    if !is_root("preserve_fds_hands_fd_3_to_the_container") {
        return;
    }
    let b = Bundle::new("fds", &["sh", "-c", "echo through fd 3 >&3"]);
    let target = b.dir.path().join("fd3");
    let file = std::fs::File::create(&target).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = Command::new(BIN);
    cmd.arg("--root")
        .arg(b.root())
        .args(["create", "--preserve-fds", "1", "--bundle"])
        .arg(b.bundle())
        .arg("p")
        .stdin(Stdio::null())
        // Not pipes: the container keeps create's stdio, so output() would wait for it.
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(b.dir.path().join("err")).unwrap());
    // SAFETY: dup2 and fcntl are async-signal-safe and touch only descriptors.
    unsafe {
        cmd.pre_exec(move || {
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    let err = std::fs::read(b.dir.path().join("err")).unwrap();
    assert!(status.success(), "create: {}", text(&err));
    drop(file);
    let pid = b.state("p")["pid"].as_i64().unwrap();
    assert!(b.oci(&["start", "p"]).status.success());
    wait_exit(pid);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "through fd 3\n");
    assert!(b.oci(&["delete", "p"]).status.success());
}

#[test]
fn ps_lists_the_containers_processes_and_list_shows_it() {
    if !is_root("ps_lists_the_containers_processes_and_list_shows_it") {
        return;
    }
    // Two processes in its PID namespace: a background sleep and the init (exec'd sleep).
    let b = Bundle::new("ps", &["sh", "-c", "sleep 30 & exec sleep 31"]);
    let out = b.dir.path().join("out");
    assert!(b.create("ps", &out).status.success());
    let pid = b.state("ps")["pid"].as_i64().unwrap();
    assert!(b.oci(&["start", "ps"]).status.success());
    // start returns before sh has forked: ask again (each ps is a fresh process, no sleep)
    // until both are there, for at most 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pids = loop {
        let o = b.oci(&["ps", "--format", "json", "ps"]);
        assert!(o.status.success(), "ps: {}", text(&o.stderr));
        let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
        if pids.len() == 2 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::yield_now();
    };
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid), "{pids:?} lacks the init {pid}");
    let l = b.oci(&["list", "--format", "json"]);
    let all: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    assert_eq!(all[0]["id"], "ps");
    assert_eq!(all[0]["status"], "running");
    assert!(b.oci(&["delete", "--force", "ps"]).status.success());
    // The PID namespace went with its init: the background sleep too.
    for p in pids {
        let alive = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
            .unwrap_or(false);
        assert!(!alive, "{p} survived delete --force");
    }
}

/// A cgroup directory removed (when empty) on drop.
struct CgroupDir(PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `linux.cgroupsPath` is the container's cgroup exactly (runtime-tools and containerd read
/// it there): the pid is in that group at `create`; `delete` removes it and the parent create
/// made, not the parent that existed (runtime.md#delete, delete_only_create_resources).
#[test]
fn cgroups_path_is_exact_and_delete_removes_only_what_create_made() {
    if !is_root("cgroups_path_is_exact_and_delete_removes_only_what_create_made") {
        return;
    }
    let mount = contain::cgroup::HostCgroups::detect()
        .unwrap()
        .v2_mount()
        .unwrap()
        .mount_point
        .clone();
    let name = format!("contain-oci-test-{}", std::process::id());
    let existing = CgroupDir(mount.join(&name));
    std::fs::create_dir(&existing.0).unwrap();
    let b = Bundle::new("cgpath", &["sleep", "30"]);
    let cgroups_path = format!("/{name}/made/ctr");
    b.config_with(
        &["sleep", "30"],
        serde_json::json!({"linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]
        }}),
    );
    let out = b.dir.path().join("out");
    let c = b.create("cg", &out);
    assert!(c.status.success(), "create: {}", text(&c.stderr));
    assert!(
        !text(&c.stderr).contains("cgroupsPath"),
        "{}",
        text(&c.stderr)
    );
    let pid = b.state("cg")["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2 = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("");
    assert_eq!(v2, cgroups_path, "{own}");
    let procs = std::fs::read_to_string(existing.0.join("made/ctr/cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let d = b.oci(&["delete", "--force", "cg"]);
    assert!(d.status.success(), "delete: {}", text(&d.stderr));
    assert!(
        !existing.0.join("made").exists(),
        "the parent create made is left"
    );
    assert!(existing.0.is_dir(), "the parent that existed was removed");
}

/// A profile that denies getcwd (runtime-tools' linux_seccomp) does not stop the container:
/// without noNewPrivileges the filter is installed before the identity switch, and the
/// working directory check (CVE-2024-21626) runs before it.
#[test]
fn a_seccomp_profile_denying_getcwd_still_starts_the_container() {
    if !is_root("a_seccomp_profile_denying_getcwd_still_starts_the_container") {
        return;
    }
    let b = Bundle::new("getcwd", &[]);
    b.config_with(
        &["sh", "-c", "echo started"],
        serde_json::json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
            }
        }}),
    );
    let out = b.dir.path().join("out");
    let c = b.create("gc", &out);
    assert!(c.status.success(), "create: {}", text(&c.stderr));
    let pid = b.state("gc")["pid"].as_i64().unwrap();
    let s = b.oci(&["start", "gc"]);
    assert!(s.status.success(), "start: {}", text(&s.stderr));
    wait_exit(pid);
    assert_eq!(text(&std::fs::read(&out).unwrap()), "started\n");
    let d = b.oci(&["delete", "gc"]);
    assert!(d.status.success(), "delete: {}", text(&d.stderr));
}
