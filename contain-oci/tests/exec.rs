//! `contain-oci exec` driven as containerd's shim and podman drive `runc exec`: the exit
//! status, the container's namespaces, `--detach` with `--pid-file` (the process re-parented
//! to a subreaper standing in for the shim), `--tty` with `--console-socket`, `--process FILE`
//! and the flags, exec into a stopped container, what is left afterwards; and the
//! createContainer and startContainer hooks, which run in the container's namespaces. Each
//! test makes a bundle with a busybox rootfs and a state root in its own temporary directory;
//! they need root (they say so and skip otherwise).

mod common;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{is_root, text, wait_exit, TempDir, BIN};

/// A bundle (`dir/bundle`: busybox rootfs, config.json running `sleep 60` with hostname
/// `execbox`) and a state root (`dir/root`), with one container `c` created and started.
/// Dropping it deletes the container (`delete --force`).
struct Running {
    dir: TempDir,
    pid: i32,
}

impl Running {
    /// The container created and started.
    fn new(tag: &str, args: &[&str]) -> Running {
        let mut r = Running::bundle(tag, args, serde_json::json!({}));
        assert!(r.create().success(), "create: {}", r.out());
        let s = r.oci(&["start", "c"]);
        assert!(s.status.success(), "start: {}", text(&s.stderr));
        r
    }

    /// The bundle only, with the top-level fields of `extra` added to its config.
    fn bundle(tag: &str, args: &[&str], extra: serde_json::Value) -> Running {
        let dir = TempDir::new(&format!("exec-{tag}"));
        common::busybox_rootfs(
            &dir.path().join("bundle/rootfs"),
            &[
                "sh", "sleep", "echo", "true", "cat", "id", "pwd", "hostname", "readlink", "ls",
                "mkdir",
            ],
        );
        let mut config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "args": args,
                "env": ["PATH=/bin", "FROM=config"],
                "cwd": "/",
                "user": { "uid": 0, "gid": 0 },
                "capabilities": {
                    "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                    "permitted": ["CAP_KILL"]
                }
            },
            "root": { "path": "rootfs" },
            "hostname": "execbox"
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        std::fs::write(dir.path().join("bundle/config.json"), config.to_string()).unwrap();
        Running { dir, pid: 0 }
    }

    /// `create --bundle BUNDLE c`, its stdout and stderr (and the container's) to `dir/out`;
    /// on success the container's pid is noted.
    fn create(&mut self) -> std::process::ExitStatus {
        let bundle = self.dir.path().join("bundle");
        let out = self.dir.path().join("out");
        let status = common::create(&self.root(), &[], &bundle, "c", &out).status;
        if status.success() {
            let st: serde_json::Value =
                serde_json::from_slice(&self.oci(&["state", "c"]).stdout).unwrap();
            self.pid = st["pid"].as_i64().unwrap() as i32;
        }
        status
    }

    /// What create (and the container) wrote.
    fn out(&self) -> String {
        text(&std::fs::read(self.dir.path().join("out")).unwrap_or_default())
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `contain-oci --root ROOT ARGS...`, stdio captured.
    fn oci(&self, args: &[&str]) -> Output {
        common::oci(&self.root(), args)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.oci(&["delete", "--force", "c"]);
    }
}

fn ns(pid: i32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

#[test]
fn exec_exits_with_the_status_and_runs_in_the_containers_namespaces() {
    if !is_root("exec_exits_with_the_status_and_runs_in_the_containers_namespaces") {
        return;
    }
    let r = Running::new("status", &["sleep", "60"]);
    let o = r.oci(&[
        "exec",
        "c",
        "sh",
        "-c",
        "hostname; echo $$; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "execbox", "the container's hostname");
    let inner: i32 = lines[1].parse().unwrap();
    assert!(
        inner > 1,
        "a pid in the container's PID namespace, not its init: {inner}"
    );
    assert_eq!(Path::new(lines[2]), ns(r.pid, "pid"));
    assert_eq!(Path::new(lines[3]), ns(r.pid, "mnt"));
    // Killed by a signal: 128 + N, as runc and a shell report it.
    let o = r.oci(&["exec", "c", "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137), "{}", text(&o.stderr));
    // A command missing in the container is exec's own error (exit 1, the reason said).
    let o = r.oci(&["exec", "c", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("/no/such/program"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn exec_detach_writes_the_pid_file_and_leaves_the_process_to_the_subreaper() {
    if !is_root("exec_detach_writes_the_pid_file_and_leaves_the_process_to_the_subreaper") {
        return;
    }
    let r = Running::new("detach", &["sleep", "60"]);
    let pid_file = r.dir.path().join("exec.pid");
    // A stand-in for containerd's shim: a shell made a subreaper (the flag survives its
    // execve), which runs `exec --detach`, says its own pid and the exec'd process's parent,
    // waits for a line from us, then kills the process.
    let script = format!(
        "{bin} --root {root} exec --detach --pid-file {pf} c sleep 30 \
            </dev/null >/dev/null 2>&1 || exit 1; \
         pid=$(cat {pf}); echo $$ $(sed -n 's/^PPid:\t//p' /proc/$pid/status); \
         read _; kill -9 $pid",
        bin = BIN,
        root = r.root().display(),
        pf = pid_file.display()
    );
    let mut shim = Command::new("/bin/sh");
    shim.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut shim, || {
            match libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut shim = shim.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(shim.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ids: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "the shim said {line:?}");
    assert_eq!(
        ids[0], ids[1],
        "the exec'd process is the shim's child once exec has exited (no intermediate of ours)"
    );
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!written.ends_with('\n'), "no newline: {written:?}");
    let pid: i32 = written.parse().unwrap();
    assert_eq!(ns(pid, "pid"), ns(r.pid, "pid"));
    // In the container's cgroup (its own where the host has cgroup v2; on a hybrid host the
    // unified hierarchy's).
    let cgroup = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cgroup(pid), cgroup(r.pid));
    // Only stdio is open in it: nothing of contain-oci's.
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"]);
    std::io::Write::write_all(&mut shim.stdin.take().unwrap(), b"go\n").unwrap();
    assert!(shim.wait().unwrap().success());
    wait_exit(pid);
    // A detached exec whose command cannot run fails, and writes no pid file.
    std::fs::remove_file(&pid_file).unwrap();
    let o = r.oci(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
        "/no/such/program",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!pid_file.exists());
}

/// What the process of `exec_process_file_and_flags_set_env_cwd_user_and_caps` prints.
const SHOW: &str = "echo $FOO $FROM; pwd; id -u; id -g; grep CapBnd /proc/self/status; \
                    cat /proc/self/oom_score_adj";

#[test]
fn exec_process_file_and_flags_set_env_cwd_user_and_caps() {
    if !is_root("exec_process_file_and_flags_set_env_cwd_user_and_caps") {
        return;
    }
    let r = Running::new("process", &["sleep", "60"]);
    let process = r.dir.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "args": ["sh", "-c", SHOW],
            "oomScoreAdj": 321,
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/tmp",
            "user": { "uid": 1000, "gid": 1001 }
        })
        .to_string(),
    )
    .unwrap();
    let o = r.oci(&["exec", "--process", process.to_str().unwrap(), "c"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The object's env, cwd and user, nothing of the config's env; capabilities it does not
    // give are the container's (CAP_KILL, bit 5), as in runc.
    assert_eq!(
        text(&o.stdout),
        "bar\n/tmp\n1000\n1001\nCapBnd:\t0000000000000020\n321\n"
    );
    // Without --process: the config's process, ARGS and the flags on top.
    let o = r.oci(&[
        "exec",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=baz",
        "--user",
        "1000:1002",
        "--cap",
        "CAP_NET_ADMIN",
        "c",
        "sh",
        "-c",
        SHOW,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // CAP_KILL (5) from the config, CAP_NET_ADMIN (12) from --cap.
    // No oomScoreAdj in the config: the score it inherits (ours).
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    assert_eq!(
        text(&o.stdout),
        format!("baz config\n/tmp\n1000\n1002\nCapBnd:\t0000000000001020\n{own}")
    );
}

#[test]
fn exec_into_a_stopped_container_says_it_is_not_running() {
    if !is_root("exec_into_a_stopped_container_says_it_is_not_running") {
        return;
    }
    let r = Running::new("stopped", &["true"]);
    wait_exit(r.pid);
    let o = r.oci(&["exec", "c", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("container c is not running"),
        "{}",
        text(&o.stderr)
    );
    let o = r.oci(&["exec", "nosuch", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("does not exist"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn exec_leaves_nothing_behind() {
    if !is_root("exec_leaves_nothing_behind") {
        return;
    }
    let r = Running::new("nothing", &["sleep", "60"]);
    let listing = || {
        let mut v: Vec<_> = std::fs::read_dir(r.root().join("c"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let ps = |r: &Running| -> Vec<i64> {
        let o = r.oci(&["ps", "--format", "json", "c"]);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let procs_before = ps(&r);
    assert_eq!(procs_before, [i64::from(r.pid)]);
    // The exec'd shell's own descriptors: stdio, and the one ls opens for the listing.
    let o = r.oci(&["exec", "c", "ls", "/proc/self/fd"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    assert_eq!(listing(), before, "the state directory is untouched");
    assert_eq!(ps(&r), procs_before, "no process of the exec is left");
    assert_eq!(r.oci(&["state", "c"]).status.code(), Some(0));
}

/// A hook running `script` with `/bin/sh` (found inside the container, as the host's).
fn sh_hook(script: &str) -> serde_json::Value {
    serde_json::json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

#[test]
fn create_container_and_start_container_hooks_run_in_the_containers_namespaces() {
    if !is_root("create_container_and_start_container_hooks_run_in_the_containers_namespaces") {
        return;
    }
    let mut r = Running::bundle(
        "hooks",
        &["cat", "/started"],
        serde_json::json!({ "hooks": {
            "createContainer": [
                sh_hook(
                    "hostname > /created; cat > /created.json; \
                     readlink /proc/self/ns/mnt > /created.mnt"
                ),
                // A path that exists only inside the container: resolved there.
                { "path": "/inside-only.sh", "timeout": 10 },
            ],
            "startContainer": [sh_hook("echo start $(hostname) > /started")],
        }}),
    );
    let rootfs = r.rootfs();
    let script = rootfs.join("inside-only.sh");
    std::fs::write(&script, "#!/bin/sh\necho yes > /inside\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(r.create().success(), "create: {}", r.out());
    // createContainer ran at create, in the container's UTS and mount namespaces, with the
    // state on its stdin; startContainer not yet.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("created")).unwrap(),
        "execbox\n"
    );
    assert_eq!(
        Path::new(
            std::fs::read_to_string(rootfs.join("created.mnt"))
                .unwrap()
                .trim_end()
        ),
        ns(r.pid, "mnt")
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootfs.join("created.json")).unwrap()).unwrap();
    assert_eq!(state["id"], "c");
    assert_eq!(state["status"], "created");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("inside")).unwrap(),
        "yes\n"
    );
    assert!(
        !rootfs.join("started").exists(),
        "startContainer runs at start"
    );
    let s = r.oci(&["start", "c"]);
    assert!(s.status.success(), "start: {}", text(&s.stderr));
    // startContainer ran before the program: the program (whose stdout is create's) saw its
    // file.
    wait_exit(r.pid);
    assert!(r.out().ends_with("start execbox\n"), "{}", r.out());
}

#[test]
fn a_failing_or_late_container_hook_fails_create_and_start_and_leaves_nothing() {
    if !is_root("a_failing_or_late_container_hook_fails_create_and_start_and_leaves_nothing") {
        return;
    }
    let mut r = Running::bundle(
        "hooks-late",
        &["true"],
        serde_json::json!({ "hooks": {
            "createContainer": [{ "path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1 }],
        }}),
    );
    assert!(!r.create().success());
    let out = r.out();
    assert!(out.contains("createContainer hook #0"), "{out}");
    assert!(out.contains("timed out after 1 s"), "{out}");
    assert!(!r.root().join("c").exists(), "no state left");
    let mut r = Running::bundle(
        "hooks-fail",
        &["sh", "-c", "echo ran > /ran"],
        serde_json::json!({ "hooks": { "startContainer": [sh_hook("exit 3")] }}),
    );
    assert!(r.create().success(), "create: {}", r.out());
    let s = r.oci(&["start", "c"]);
    assert_eq!(s.status.code(), Some(1));
    assert!(
        text(&s.stderr).contains("startContainer hook #0"),
        "{}",
        text(&s.stderr)
    );
    assert!(!r.rootfs().join("ran").exists(), "the program never ran");
    assert!(!r.root().join("c").exists(), "the container is gone");
}

#[test]
fn exec_tty_sends_the_master_to_the_console_socket_even_into_a_created_container() {
    use std::os::unix::net::UnixListener;
    const TEST: &str =
        "exec_tty_sends_the_master_to_the_console_socket_even_into_a_created_container";
    if !is_root(TEST) {
        return;
    }
    let mut r = Running::bundle("tty", &["sleep", "60"], serde_json::json!({}));
    assert!(r.create().success(), "create: {}", r.out());
    let sock_path = r.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    // Created, not started: exec goes in all the same (as runc allows).
    let mut exec = Command::new(BIN)
        .arg("--root")
        .arg(r.root())
        .args(["exec", "--tty", "--console-socket"])
        .arg(&sock_path)
        .args(["c", "sh", "-c", "readlink /proc/self/fd/0; exit 4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No endless accept if exec fails before it connects: up to 10 s for the connection.
    let mut p = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call.
    if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
        let _ = exec.kill();
        let out = exec.wait_with_output().unwrap();
        panic!("exec never connected: {}", text(&out.stderr));
    }
    let master = std::fs::File::from(common::recv_console_master(&listener));
    // Read until the terminal's last user is gone (EIO).
    let mut seen = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match std::io::Read::read(&mut &master, &mut chunk) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read from the pty master: {e}"),
        }
    }
    let out = exec.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&seen).starts_with("/dev/pts/"),
        "a pty of the container's devpts: {:?}",
        text(&seen)
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.oci(&["state", "c"]).stdout).unwrap()
            ["status"],
        "created"
    );
}

#[test]
fn exec_gets_the_containers_seccomp_profile() {
    if !is_root("exec_gets_the_containers_seccomp_profile") {
        return;
    }
    let mut r = Running::bundle(
        "seccomp",
        &["sleep", "60"],
        serde_json::json!({ "linux": {
            "namespaces": [{ "type": "pid" }, { "type": "mount" }, { "type": "uts" }],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1
                }]
            }
        }}),
    );
    assert!(r.create().success(), "create: {}", r.out());
    assert!(r.oci(&["start", "c"]).status.success());
    let o = r.oci(&[
        "exec",
        "c",
        "sh",
        "-c",
        "mkdir /tmp/x; echo $?; echo ok > /tmp/y",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "1\n",
        "mkdir refused (EPERM) by the container's filter"
    );
    assert!(
        text(&o.stderr).contains("Operation not permitted"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        r.rootfs().join("tmp/y").exists(),
        "what the profile allows runs"
    );
}

#[test]
fn exec_tty_without_a_console_socket_relays_the_terminal() {
    if !is_root("exec_tty_without_a_console_socket_relays_the_terminal") {
        return;
    }
    let r = Running::new("relay", &["sleep", "60"]);
    let o = r.oci(&[
        "exec",
        "-t",
        "c",
        "sh",
        "-c",
        "readlink /proc/self/fd/0; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("/dev/pts/"),
        "{:?}",
        text(&o.stdout)
    );
}
