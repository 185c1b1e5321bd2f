//! Helpers shared by contain-oci's integration tests: the binary, the root check, temporary
//! directories, busybox root filesystems, waiting for a pid to exit and taking a pty master
//! from a console socket. Each test file keeps its own bundle type (their configs differ).
//! Not every file uses every helper.
#![allow(dead_code)]

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// The contain-oci binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_contain-oci");

/// True when running as root; otherwise says that `test` is skipped.
pub fn is_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, needs root");
    }
    root
}

/// A temporary directory (`$TMPDIR/contain-oci-TAG-PID-N`), removed (with what is in it) on
/// drop, even when the test fails.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        for n in 0.. {
            let p = base.join(format!("contain-oci-{tag}-{}-{n}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return TempDir(p);
            }
        }
        unreachable!()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A static busybox from the host (`$CONTAIN_TEST_BUSYBOX`, /bin/busybox, /usr/bin/busybox).
pub fn busybox() -> PathBuf {
    let env = std::env::var_os("CONTAIN_TEST_BUSYBOX").map(PathBuf::from);
    env.into_iter()
        .chain(["/bin/busybox".into(), "/usr/bin/busybox".into()])
        .find(|p| p.exists())
        .expect("these tests need a static busybox (apt-get install busybox-static)")
}

/// A busybox root filesystem at `rootfs`: `bin/busybox` with `applets` as links to it, and
/// empty `proc`, `dev`, `sys` and `tmp`.
pub fn busybox_rootfs(rootfs: &Path, applets: &[&str]) {
    for d in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for applet in applets {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
}

/// `contain-oci --root ROOT ARGS...`, stdio captured (stdin null).
pub fn oci(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `contain-oci --root ROOT GLOBAL... create --bundle BUNDLE ID` with its stdout and stderr
/// (and the container's) going to the file `out`: a pipe would stay open in the parked
/// process. Returns the status and, as stderr, what the file holds.
pub fn create(root: &Path, global: &[&str], bundle: &Path, id: &str, out: &Path) -> Output {
    let f = std::fs::File::create(out).unwrap();
    let status = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(global)
        .args(["create", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(out).unwrap(),
    }
}

/// `contain-oci --root ROOT state ID`, parsed (it must succeed).
pub fn state(root: &Path, id: &str) -> serde_json::Value {
    let out = oci(root, &["state", id]);
    assert!(out.status.success(), "state {id}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A pidfd of `pid` (none: already reaped).
pub fn pidfd(pid: impl Into<i64>) -> Option<OwnedFd> {
    let pid = pid.into() as libc::pid_t;
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a descriptor the kernel just opened, owned by nobody else.
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Waits (up to 10 s, on a pidfd, not by sleeping) for `pid` to exit.
pub fn wait_exit(pid: impl Into<i64>) {
    let pid = pid.into();
    let Some(fd) = pidfd(pid) else { return };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call.
    let r = unsafe { libc::poll(&mut p, 1, 10_000) };
    assert_eq!(r, 1, "pid {pid} still running after 10 s");
}

/// Accepts one connection on the console socket `listener` and returns the one descriptor
/// (the pty master) it sends with SCM_RIGHTS.
pub fn recv_console_master(listener: &UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    assert_eq!(fds.len(), 1, "one descriptor");
    // SAFETY: the descriptor SCM_RIGHTS just gave us, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fds[0]) }
}
