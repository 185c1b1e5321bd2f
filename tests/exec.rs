//! `Container::enter`: a new process inside a running container (OCI's `exec`). All of these
//! need root (they make containers with a rootfs) and skip otherwise.
//!
//! Each test starts a target (busybox `sleep` in a rootfs with every namespace, its own
//! cgroup where the host has cgroup v2), enters it, and looks at the entered process from the
//! host: `/proc/PID/ns/*`, `/proc/PID/cgroup`, `/proc/PID/status` (NSpid, capabilities).

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::busybox::BusyboxRootfs;
use common::{is_root, output, stdout};
use contain::cgroup::Resources;
use contain::idmap::IdMap;
use contain::namespace::Namespaces;
use contain::process::{Child, Container, Stdio, Target};
use contain::rootfs::Rootfs;
use contain::security::CapSet;
use contain::{Errno, Error, Pid, SetupStage, Signal};

/// Every namespace kind, by its /proc/PID/ns name.
const KINDS: [&str; 8] = ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time"];

/// A running container: `sleep 60` in a busybox rootfs with every namespace (a user namespace
/// mapping 0-65535 to itself when `userns`), hostname `target`, and its own cgroup where the
/// host has cgroup v2.
fn target(image: &BusyboxRootfs, userns: bool) -> Child {
    let ns = if userns {
        Namespaces::all()
    } else {
        Namespaces::all() - Namespaces::USER
    };
    let mut c = Container::new("sleep")
        .arg("60")
        .namespaces(ns)
        .hostname("target")
        .rootfs(Rootfs::new(image.root()))
        .stdin(Stdio::Null);
    if userns {
        c = c
            .uid_map(&[IdMap::new(0, 0, 65_536)])
            .gid_map(&[IdMap::new(0, 0, 65_536)]);
    }
    if has_v2() {
        c = c.resources(Resources::new());
    }
    c.spawn().expect("start the target container")
}

fn has_v2() -> bool {
    contain::cgroup::HostCgroups::detect()
        .ok()
        .is_some_and(|h| h.v2_mount().is_ok())
}

fn read(path: String) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ns_link(pid: Pid, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("({kind}: {e})"))
}

/// The `0::` line of /proc/PID/cgroup.
fn v2_cgroup(pid: Pid) -> String {
    read(format!("/proc/{pid}/cgroup"))
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or("")
        .to_owned()
}

/// A field of /proc/PID/status.
fn status_field(pid: Pid, field: &str) -> String {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_owned()
}

fn stop(mut c: Child) {
    let _ = c.kill(Signal::SIGKILL);
    let _ = c.wait();
}

#[test]
fn an_entered_process_shares_every_namespace_the_cgroup_and_the_root() {
    const TEST: &str = "an_entered_process_shares_every_namespace_the_cgroup_and_the_root";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("exec-ns");
    for userns in [false, true] {
        let box1 = target(&image, userns);
        let bind = CapSet::EMPTY.with("NET_BIND_SERVICE".parse().unwrap());
        let mut entered = Container::new("/bin/sh")
            .args(["-c", "cat /etc/image; pwd; hostname; exec sleep 30"])
            .current_dir("/tmp")
            .capabilities(bind)
            .stdout(Stdio::Piped)
            .enter(Target::from_pidfd(box1.pidfd()).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("userns {userns}: enter: {e}"));
        let mut out = entered.stdout.take().unwrap();
        let mut text = String::new();
        // Three lines, then `sleep` holds stdout open: read until the third newline.
        let mut buf = [0u8; 256];
        while text.matches('\n').count() < 3 {
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(n > 0, "userns {userns}: EOF after {text:?}");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(
            text, "image exec-ns\n/tmp\ntarget\n",
            "userns {userns}: the container's root, the cwd inside it, its hostname"
        );
        let (t, e) = (box1.pid(), entered.pid());
        for kind in KINDS {
            assert_eq!(
                ns_link(e, kind),
                ns_link(t, kind),
                "userns {userns}: the {kind} namespace"
            );
        }
        assert_eq!(
            v2_cgroup(e),
            v2_cgroup(t),
            "userns {userns}: the same cgroup v2 group"
        );
        if has_v2() {
            let own = v2_cgroup(Pid::from_raw(std::process::id() as i32).unwrap());
            assert_ne!(v2_cgroup(t), own, "the target has a cgroup of its own");
        }
        // In the container's PID namespace (host pid, then the pid inside), and not its init.
        let nspid: Vec<i32> = status_field(e, "NSpid")
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(nspid.len(), 2, "userns {userns}: {nspid:?}");
        assert_eq!(nspid[0], e.raw());
        assert!(nspid[1] > 1, "userns {userns}: {nspid:?}");
        // Capabilities as asked: only NET_BIND_SERVICE (bit 10) in the bounding set.
        assert_eq!(status_field(e, "CapBnd"), "0000000000000400");
        assert_eq!(status_field(e, "NoNewPrivs"), "1");
        // Root of the entered user namespace (nsenter's default), i.e. 0 here.
        assert_eq!(
            status_field(e, "Uid").split_whitespace().next(),
            Some("0"),
            "userns {userns}"
        );
        stop(entered);
        stop(box1);
    }
}

#[test]
fn an_entered_process_runs_as_the_user_asked_with_the_containers_passwd() {
    const TEST: &str = "an_entered_process_runs_as_the_user_asked_with_the_containers_passwd";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("exec-user");
    let box1 = target(&image, false);
    // `nobody` exists only in the image's /etc/passwd as 65534 (and its home is /).
    let o = output(
        Container::new("sh")
            .args(["-c", "id -u; id -g; echo $HOME; umask"])
            .user("nobody".parse().unwrap())
            .umask(0o027)
            .enter(Target::open(box1.pid()).unwrap()),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "65534\n65534\n/\n0027");
    stop(box1);
}

#[test]
fn entering_a_gone_process_is_esrch() {
    if !is_root("entering_a_gone_process_is_esrch") {
        return;
    }
    let image = BusyboxRootfs::new("exec-gone");
    let box1 = target(&image, false);
    let t = Target::from_pidfd(box1.pidfd()).unwrap();
    stop(box1);
    let e = Container::new("true").enter(t).spawn().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Sys {
                errno: Errno::ESRCH,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_cwd_outside_the_root_and_a_missing_program_are_typed_errors() {
    const TEST: &str = "a_cwd_outside_the_root_and_a_missing_program_are_typed_errors";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("exec-errors");
    let box1 = target(&image, false);
    // A directory of the host's, open in this process: through /proc/self/fd it would be
    // reachable from inside (CVE-2024-21626) until the caller's descriptors are closed.
    let host_dir = std::fs::File::open("/").unwrap();
    let e = Container::new("true")
        .current_dir(format!("/proc/self/fd/{}", host_dir.as_raw_fd()))
        .enter(Target::from_pidfd(box1.pidfd()).unwrap())
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Sys { syscall, .. } if syscall.starts_with("getcwd (outside")),
        "{e}"
    );
    // Missing in the container (a host path that the image lacks).
    let e = Container::new("/usr/bin/env")
        .enter(Target::from_pidfd(box1.pidfd()).unwrap())
        .spawn()
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
    let e = Container::new("true")
        .current_dir("/no/such/dir")
        .enter(Target::from_pidfd(box1.pidfd()).unwrap())
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Sys {
                errno: Errno::ENOENT,
                syscall,
                ..
            } if syscall.starts_with("chdir")
        ),
        "{e}"
    );
    // Nothing new for an entered process.
    let e = Container::new("true")
        .hostname("other")
        .enter(Target::from_pidfd(box1.pidfd()).unwrap())
        .spawn()
        .unwrap_err();
    assert!(matches!(e, Error::Config { what: "enter", .. }), "{e}");
    stop(box1);
}

#[test]
fn an_entered_process_is_a_pidfd_child_that_can_be_killed_and_waited() {
    const TEST: &str = "an_entered_process_is_a_pidfd_child_that_can_be_killed_and_waited";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("exec-wait");
    let mut box1 = target(&image, false);
    let mut entered = Container::new("sleep")
        .arg("30")
        .enter(Target::from_pidfd(box1.pidfd()).unwrap())
        .spawn()
        .unwrap();
    assert_eq!(
        entered.wait_timeout(Duration::from_millis(1)).unwrap(),
        None
    );
    entered.kill(Signal::SIGTERM).unwrap();
    let status = entered.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM));
    // The container itself is untouched.
    assert_eq!(box1.try_wait().unwrap(), None);
    let o = output(
        Container::new("sh")
            .args(["-c", "exit 7"])
            .enter(Target::from_pidfd(box1.pidfd()).unwrap()),
    );
    assert_eq!(o.status.code(), Some(7));
    stop(box1);
}

/// Rootless: a caller without privileges enters the container it made in its own user
/// namespace (run as nobody by the root test), with and without a PID namespace of its own
/// (with one, the child forks the command's process inside, since the caller's thread may
/// not set its `pid_for_children`).
#[test]
fn a_rootless_caller_enters_its_own_container() {
    const TEST: &str = "a_rootless_caller_enters_its_own_container";
    if common::role().is_some() {
        for pid_ns in [false, true] {
            let mut ns = Namespaces::USER | Namespaces::MOUNT | Namespaces::UTS;
            if pid_ns {
                ns |= Namespaces::PID;
            }
            let mut box1 = Container::new("sleep")
                .arg("60")
                .namespaces(ns)
                .hostname("rootless")
                .stdin(Stdio::Null)
                .spawn()
                .expect("a rootless container");
            let mut entered = Container::new("sh")
                .args(["-c", "hostname; id -u; exec sleep 30"])
                .stdout(Stdio::Piped)
                .enter(Target::from_pidfd(box1.pidfd()).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("pid namespace {pid_ns}: {e}"));
            let mut out = entered.stdout.take().unwrap();
            let mut text = String::new();
            let mut buf = [0u8; 64];
            while text.matches('\n').count() < 2 {
                let n = std::io::Read::read(&mut out, &mut buf).unwrap();
                assert!(n > 0, "pid namespace {pid_ns}: EOF after {text:?}");
                text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            }
            assert_eq!(text, "rootless\n0\n", "pid namespace {pid_ns}");
            let (t, e) = (box1.pid(), entered.pid());
            for kind in KINDS {
                assert_eq!(ns_link(e, kind), ns_link(t, kind), "{pid_ns}: {kind}");
            }
            // Its handle names it (not an intermediate): its pid, its signal, its status.
            entered.kill(Signal::SIGTERM).unwrap();
            assert_eq!(entered.wait().unwrap().signal(), Some(Signal::SIGTERM));
            box1.kill(Signal::SIGKILL).unwrap();
            box1.wait().unwrap();
        }
        // A failed exec after the fork is reported as any other.
        let mut box1 = Container::new("sleep")
            .arg("60")
            .namespaces(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
            .stdin(Stdio::Null)
            .spawn()
            .unwrap();
        let e = Container::new("/no/such/program")
            .enter(Target::from_pidfd(box1.pidfd()).unwrap())
            .spawn()
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
        box1.kill(Signal::SIGKILL).unwrap();
        box1.wait().unwrap();
        return;
    }
    if !is_root(TEST) {
        return;
    }
    common::assert_passes_as_nobody(TEST, "nobody", false);
}
