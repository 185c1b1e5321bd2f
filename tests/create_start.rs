//! OCI's create/start split in the library: `Container::create` parks a fully set-up
//! container before exec; `Created::start` or `process::start` from another process lets it
//! run; the parked process survives a creator that exits.

mod common;

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

use common::{is_root, role, TempDir};
use contain::cgroup::Resources;
use contain::namespace::Namespaces;
use contain::process::{start, Container, Stdio};
use contain::{Errno, Error, SetupStage};

/// A container that writes `marker` when (and only when) its command runs.
fn marker_container(marker: &Path) -> Container {
    Container::new("sh")
        .args(["-c", &format!("echo ran > {}", marker.display())])
        .namespaces(Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS)
        .hostname("created")
}

/// The process's state letter in /proc/PID/stat; `None` once it is reaped.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn create_parks_before_exec_and_start_runs_the_command() {
    if !is_root("create_parks_before_exec_and_start_runs_the_command") {
        return;
    }
    let dir = TempDir::new("create");
    let marker = dir.path().join("marker");
    let fifo = dir.path().join("exec.fifo");
    let created = marker_container(&marker).create(&fifo).unwrap();
    assert!(fifo.exists(), "the fifo says: created, not started");
    assert!(proc_state(created.pid().raw()).is_some(), "alive");
    // Parked means set up: it has its own UTS namespace with the name already set.
    let ours = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/uts", created.pid())).unwrap();
    assert_ne!(ours, theirs);
    assert!(!marker.exists(), "the command must not run before start");
    let mut child = created.start().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    assert!(!fifo.exists(), "start removes the fifo");
}

#[test]
fn a_missing_command_fails_create_not_start() {
    if !is_root("a_missing_command_fails_create_not_start") {
        return;
    }
    let dir = TempDir::new("create-missing");
    let fifo = dir.path().join("exec.fifo");
    let e = Container::new("/no/such/program")
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .create(&fifo)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{e}"
    );
    assert!(!fifo.exists(), "a failed create leaves no fifo");
    // A fifo already there: created before.
    std::fs::write(&fifo, "").unwrap();
    let e = Container::new("true").create(&fifo).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Sys {
                syscall: "mkfifo",
                errno: Errno::EEXIST,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn dropping_a_created_container_kills_it_and_removes_its_cgroup_and_fifo() {
    if !is_root("dropping_a_created_container_kills_it_and_removes_its_cgroup_and_fifo") {
        return;
    }
    let dir = TempDir::new("create-drop");
    let marker = dir.path().join("marker");
    let fifo = dir.path().join("exec.fifo");
    let mut c = marker_container(&marker);
    let with_cgroup = contain::cgroup::HostCgroups::detect()
        .unwrap()
        .v2_mount()
        .is_ok();
    if with_cgroup {
        c = c.resources(Resources::new());
    }
    let created = c.create(&fifo).unwrap();
    let pidfd = common::pidfd_open(created.pid().raw());
    let cgroup = created.cgroup().map(|cg| cg.path().to_owned());
    assert_eq!(cgroup.is_some(), with_cgroup);
    drop(created);
    // Reaped: signal 0 through a pidfd of a reaped process is ESRCH.
    // SAFETY: pidfd_send_signal with a null siginfo reads no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd.as_fd()),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        (r, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::ESRCH)),
        "the parked process is reaped"
    );
    assert!(!fifo.exists() && !marker.exists());
    if let Some(cg) = cgroup {
        assert!(!cg.exists(), "{} removed", cg.display());
    }
    // Starting what is gone: no fifo.
    let e = start(&fifo).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Sys {
                syscall: "open",
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{e}"
    );
}

/// The role of the creating process in `a_parked_container_outlives_its_creator`: creates,
/// detaches, prints the pid, exits.
fn creator(fifo: &Path, marker: &Path) {
    let created = marker_container(marker)
        .parent_death_signal(None)
        // Nothing of the creator's output may stay open in the parked process: the test
        // reads the creator's output to its end.
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .create(fifo)
        .unwrap();
    println!("parked-pid={}", created.detach().unwrap().pid);
}

#[test]
fn a_parked_container_outlives_its_creator_and_another_process_starts_it() {
    let test = "a_parked_container_outlives_its_creator_and_another_process_starts_it";
    if let Some(r) = role() {
        let (fifo, marker) = r.split_once('|').unwrap();
        return creator(Path::new(fifo), Path::new(marker));
    }
    if !is_root(test) {
        return;
    }
    // As a container shim: a subreaper, to which the parked process is re-parented when its
    // creator exits.
    // SAFETY: prctl with integer arguments.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let dir = TempDir::new("create-detach");
    let fifo = dir.path().join("exec.fifo");
    let marker = dir.path().join("marker");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(
            "CONTAIN_TEST_ROLE",
            format!("{}|{}", fifo.display(), marker.display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "creator: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // The harness prints its own lines around the creator's.
    let pid: i32 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("parked-pid=")?.parse().ok())
        .unwrap_or_else(|| panic!("no pid from the creator: {text}"));
    // The creator is gone; the parked process lives on, ours now, still parked: its fifo
    // has a reader (start's non-blocking open would fail with ENXIO otherwise).
    let pidfd = common::pidfd_open(pid);
    assert!(proc_state(pid).is_some());
    assert!(fifo.exists() && !marker.exists());
    start(&fifo).unwrap();
    let status = nix::sys::wait::waitid(
        nix::sys::wait::Id::PIDFd(pidfd.as_fd()),
        nix::sys::wait::WaitPidFlag::WEXITED,
    )
    .unwrap();
    assert!(
        matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    assert!(!fifo.exists());
    // A second start finds nothing to start.
    assert!(start(&fifo).is_err());
}

/// `readlink /proc/PID/exe` run as a container process would be: uid 0 with docker's default
/// capabilities (no CAP_SYS_PTRACE), in the host's namespaces. `Some(target)` when allowed.
fn exe_as_seen_by_a_container_process(pid: i32) -> Option<String> {
    let out = Container::new("readlink")
        .arg(format!("/proc/{pid}/exe"))
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn a_parked_process_does_not_show_the_callers_binary_to_the_container() {
    // CVE-2019-5736: a process of the container opening /proc/1/exe of the parked process
    // (before start, through an exec) would hold the caller's binary, writable once the
    // caller is gone.
    if !is_root("a_parked_process_does_not_show_the_callers_binary_to_the_container") {
        return;
    }
    let dir = TempDir::new("create-exe");
    let fifo = dir.path().join("exec.fifo");
    let created = Container::new("true")
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .create(&fifo)
        .unwrap();
    // The check can fail: the same probe reads the exe of a dumpable process with the same
    // uid and capabilities.
    let mut control = Container::new("sleep")
        .arg("1000")
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .spawn()
        .unwrap();
    let seen = exe_as_seen_by_a_container_process(control.pid().raw());
    // (`sleep` may be a busybox applet: compared with what we, root, read.)
    let exe = std::fs::read_link(format!("/proc/{}/exe", control.pid())).unwrap();
    assert_eq!(seen.as_deref(), exe.to_str());
    control.kill_container().unwrap();
    let parked = exe_as_seen_by_a_container_process(created.pid().raw());
    assert_eq!(parked, None, "the parked process's exe is readable");
    // After start the command is an ordinary (dumpable) process again.
    let mut child = created.start().unwrap();
    assert!(child.wait().unwrap().success());
}
