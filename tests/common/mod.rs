//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use contain::process::{Container, Output, Stdio};

/// Says that `test` (or a part of it) does not run here and why: one line, `skipped: ...`.
pub fn skip(test: &str, why: &str) {
    eprintln!("skipped: {test}: {why}");
}

/// True when running as root; otherwise prints why the caller returns early.
pub fn is_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        skip(test, "needs root (CI runs as root)");
    }
    root
}

/// `program` as `command -v` finds it in $PATH (as a container without a rootfs would).
pub fn in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How long a test waits for a container or a program it runs to the end: far above what any
/// test needs, even under TCG, and well below the guest's 600 s, so that a hang fails the test
/// that hung (by name, with what it waited on) instead of the whole binary.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a container with piped stdout/stderr and returns what it wrote; one still running
/// after [`RUN_LIMIT`] (or whose output something it started still holds open) is killed and
/// fails the test, with where its threads waited shortly before.
pub fn output(c: Container) -> Output {
    let c = c.stdout(Stdio::Piped).stderr(Stdio::Piped);
    let child = c.spawn().unwrap_or_else(|e| panic!("spawn failed: {e}"));
    let pid = child.pid().as_u32();
    // Where it waits, looked at just before the deadline (the kill would end the threads).
    let (done, watched) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let look = RUN_LIMIT - std::time::Duration::from_secs(2);
        match watched.recv_timeout(look) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => run::waits_of(pid).0,
            _ => String::new(),
        }
    });
    let out = child
        .wait_with_output_timeout(RUN_LIMIT)
        .expect("wait_with_output_timeout");
    drop(done);
    let waits = watcher.join().unwrap();
    assert!(
        !out.timed_out,
        "the container (pid {pid}) did not end, or something it started still held its \
         output, {RUN_LIMIT:?} after it started; killed ({}). Where its threads waited:\n\
         {waits}stdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout as a trimmed String.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A temporary directory removed (recursively) on drop, even when the test fails.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "contain-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
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

/// The role a re-executed test binary plays (see [`rerun_as_nobody`]).
pub fn role() -> Option<String> {
    std::env::var("CONTAIN_TEST_ROLE").ok()
}

/// Re-runs test `name` of this binary as uid/gid 65534 with `CONTAIN_TEST_ROLE=role`, from a
/// copy of the binary in a world-readable temp dir. With `subids`, the process gets a private
/// mount namespace in which /etc/subuid and /etc/subgid say "nobody:200000:65536" (the host's
/// files are not touched).
pub fn rerun_as_nobody(name: &str, role: &str, subids: bool) -> std::process::Output {
    rerun_as_nobody_in(name, role, subids, None)
}

/// [`rerun_as_nobody`], the process first moved (still as root) into the cgroup v2 directory
/// `cgroup` (its `cgroup.procs` is written), as a delegated scope would hold it.
pub fn rerun_as_nobody_in(
    name: &str,
    role: &str,
    subids: bool,
    cgroup: Option<&Path>,
) -> std::process::Output {
    let procs_c = cgroup.map(|c| {
        std::ffi::CString::new(c.join("cgroup.procs").as_os_str().as_encoded_bytes()).unwrap()
    });
    let dir = TempDir::new("nobody");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let exe = dir.path().join("test-bin");
    copy_executable(&std::env::current_exe().unwrap(), &exe);
    let subfile = dir.path().join("subid");
    std::fs::write(&subfile, "nobody:200000:65536\n").unwrap();
    let subfile_c = std::ffi::CString::new(subfile.as_os_str().as_encoded_bytes()).unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", role)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .current_dir("/");
    // SAFETY: pre_exec runs in the forked child; it only makes syscalls with prepared data.
    unsafe {
        cmd.pre_exec(move || {
            use nix::mount::{mount, MsFlags};
            if subids {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                mount(
                    None::<&OsStr>,
                    "/",
                    None::<&OsStr>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&OsStr>,
                )?;
                for target in ["/etc/subuid", "/etc/subgid"] {
                    mount(
                        Some(subfile_c.as_c_str()),
                        target,
                        None::<&OsStr>,
                        MsFlags::MS_BIND,
                        None::<&OsStr>,
                    )?;
                }
            }
            if let Some(procs) = &procs_c {
                // "0": the writing process itself. libc only, a prepared path and a static
                // buffer: no allocation after fork.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            nix::unistd::setgroups(&[])?;
            nix::unistd::setresgid(65534.into(), 65534.into(), 65534.into())?;
            nix::unistd::setresuid(65534.into(), 65534.into(), 65534.into())?;
            Ok(())
        });
    }
    // Longer than the limit of each container or program the test runs, whose own report
    // says more.
    let out = run::output_within(&mut cmd, RUN_LIMIT + std::time::Duration::from_secs(30));
    eprintln!(
        "--- {name} as nobody ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`rerun_as_nobody`], asserting that the scenario ran and passed.
pub fn assert_passes_as_nobody(name: &str, role: &str, subids: bool) {
    let out = rerun_as_nobody(name, role, subids);
    assert!(out.status.success(), "{name} failed as nobody");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{name}: the scenario did not run"
    );
}
/// A pidfd for `pid` (pidfd_open(2), Linux 5.3), so that a test can check on a process, or
/// kill a leftover one, without ever hitting a reused pid. Panics when there is no such
/// process.
pub fn pidfd_open(pid: i32) -> std::os::fd::OwnedFd {
    match pidfd_open_live(pid) {
        Ok(fd) => fd,
        Err(e) => panic!("pidfd_open({pid}): {e}"),
    }
}

/// As [`pidfd_open`], but a process that is gone (ESRCH) is an `Err` the caller may skip:
/// for lists read from `cgroup.procs` or /proc while their processes still fork and exit.
#[allow(dead_code)]
pub fn pidfd_open_live(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes no pointers; the result is checked before it is owned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2) (Linux 5.1) of `signal` (0: only whether it exists) to the process
/// behind `pidfd`: never a later process that reused its pid.
pub fn pidfd_send_signal(pidfd: std::os::fd::BorrowedFd<'_>, signal: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a null siginfo reads no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub mod busybox;
pub use busybox::copy_executable;
pub mod oci;
pub mod procs;
pub mod run;
