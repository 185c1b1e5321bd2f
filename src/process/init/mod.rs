//! The PID 1 of [`Container::init`](super::Container::init): `contain-init`, a freestanding
//! static program of a few KiB (source: `program.rs` beside this file, built by `build.rs`),
//! kept in a sealed memfd and exec'd by the child in place of the payload.
//!
//! Why exec an init rather than fork one from the caller: a forked PID 1 would hold a
//! copy-on-write copy of the caller's whole memory, its descriptors (every one, CLOEXEC or
//! not, until it execs — which it never does) and `/proc/1/exe` would be the caller's binary
//! (the CVE-2019-5736 pattern). Exec'd from a memfd sealed against writes, PID 1 holds only
//! its own few KiB, stdio, and an executable nobody can modify; and the spawn can use
//! `CLONE_VM` like every other spawn, at a cost independent of the caller's size.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use crate::errno::NixResultExt;
use crate::{Errno, Error, Result};

pub(crate) mod probe;
pub(crate) mod standby;

/// The program, built for the crate's target by `build.rs`.
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/contain-init"));

/// The init's NULL-terminated argv, `contain-init ERRFD [probe] PATH... -- ARGV...`:
/// `exec_paths` are the payload's candidate paths, `argv` its NULL-terminated argv; `probe`
/// lets the init look at a path whose exec failed with ENOENT (not under the caller's own
/// seccomp program, which may kill on the look's syscalls). `contain-init` is what `ps` shows
/// for PID 1.
pub(crate) fn argv(
    err_fd: &CStr,
    probe: bool,
    exec_paths: &[*const libc::c_char],
    argv: &[*const libc::c_char],
) -> Vec<*const libc::c_char> {
    [c"contain-init".as_ptr(), err_fd.as_ptr()]
        .into_iter()
        .chain(probe.then_some(PROBE.as_ptr()))
        .chain(exec_paths.iter().copied())
        .chain([c"--".as_ptr()])
        .chain(argv.iter().copied())
        .collect()
}

/// The init's argv in `pause` mode, `contain-init ERRFD pause` (NULL-terminated): it runs no
/// payload and holds the namespaces of a [`Pool`](crate::pool::Pool) slot; `ps` shows it so.
pub(crate) fn pause_argv(err_fd: &CStr) -> Vec<*const libc::c_char> {
    vec![
        c"contain-init".as_ptr(),
        err_fd.as_ptr(),
        PAUSE.as_ptr(),
        std::ptr::null(),
    ]
}

/// The init's argv in `standby` mode, `contain-init ERRFD standby SOCKFD` (NULL-terminated):
/// a [`Pool`](crate::pool::Pool) slot's standby process, which waits on `SOCKFD` for one
/// request and execs it (see `program.rs` and `standby.rs`).
pub(crate) fn standby_argv(err_fd: &CStr, socket_fd: &CStr) -> Vec<*const libc::c_char> {
    vec![
        c"contain-init".as_ptr(),
        err_fd.as_ptr(),
        STANDBY.as_ptr(),
        socket_fd.as_ptr(),
        std::ptr::null(),
    ]
}

/// The init's argument for the `standby` mode (see `program.rs`).
const STANDBY: &CStr = c"standby";

/// The init's argument for the `pause` mode (see `program.rs`).
const PAUSE: &CStr = c"pause";

/// The init's argument that allows it to probe (see `program.rs`): no `/`, so no path.
const PROBE: &CStr = c"probe";

/// `MFD_EXEC` (6.3): executable even where `vm.memfd_noexec` makes memfds non-executable by
/// default.
const MFD_EXEC: libc::c_uint = 0x10;

/// The sealed memfd holding `contain-init`, made at the first use and kept (close-on-exec) for
/// the life of the process.
pub(crate) fn memfd() -> Result<RawFd> {
    static FD: OnceLock<std::result::Result<OwnedFd, (&'static str, Errno)>> = OnceLock::new();
    match FD.get_or_init(make_memfd) {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err((syscall, errno)) => Err(Error::sys(syscall, *errno)),
    }
}

fn make_memfd() -> std::result::Result<OwnedFd, (&'static str, Errno)> {
    let name = c"contain-init";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name; the result is a new descriptor.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // Before 6.3 the flag is unknown, and every memfd is executable.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(("memfd_create(contain-init)", Errno::last()));
    }
    // SAFETY: memfd_create just returned this descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut written = 0;
    while written < PROGRAM.len() {
        match nix::unistd::write(&fd, &PROGRAM[written..]).ours() {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(("write(contain-init memfd)", e)),
        }
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) with an integer on our own descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(("fcntl(F_ADD_SEALS, contain-init memfd)", Errno::last()));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use crate::SetupStage;

    #[test]
    fn the_program_reports_the_library_s_exec_stage() {
        let source = include_str!("program.rs");
        let line = format!("const STAGE_EXEC: u32 = {};", SetupStage::Exec as u32);
        assert!(source.contains(&line), "program.rs must say {line}");
        let line = format!(
            "const SETUP_FAILED_EXIT: usize = {};",
            super::super::child::SETUP_FAILED_EXIT
        );
        assert!(source.contains(&line), "program.rs must say {line}");
        let line = format!(
            "const PROBE: &[u8] = b{:?};",
            super::PROBE.to_str().unwrap()
        );
        assert!(source.contains(&line), "program.rs must say {line}");
        let line = format!(
            "const PAUSE: &[u8] = b{:?};",
            super::PAUSE.to_str().unwrap()
        );
        assert!(source.contains(&line), "program.rs must say {line}");
        let line = format!(
            "const STANDBY: &[u8] = b{:?};",
            super::STANDBY.to_str().unwrap()
        );
        assert!(source.contains(&line), "program.rs must say {line}");
        assert!(
            source.contains("\nmod standby;\n"),
            "program.rs must include standby.rs"
        );
        // The report's layout and codes: one file, compiled into both.
        assert!(
            source.contains("\nmod probe;\n"),
            "program.rs must include probe.rs"
        );
        assert!(
            source.contains("interpreter: [u8; INTERP_SIZE],")
                && source.contains("probe::classify(")
        );
        assert_eq!(
            super::super::child::REPORT_SIZE,
            crate::process::child::ChildError::WIRE_SIZE + super::probe::INTERP_SIZE
        );
    }

    #[test]
    fn the_init_may_probe_only_when_told() {
        let err = c"5";
        let (path, arg) = (c"/bin/job", c"job");
        let with = super::argv(err, true, &[path.as_ptr()], &[arg.as_ptr()]);
        assert_eq!(with.len(), 6);
        // SAFETY: pointers into the C string literals above.
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(with[2]) }, c"probe");
        let without = super::argv(err, false, &[path.as_ptr()], &[arg.as_ptr()]);
        assert_eq!(without.len(), 5);
        assert_eq!(without[2], path.as_ptr());
    }

    #[test]
    fn the_program_is_a_small_static_elf() {
        let p = super::PROGRAM;
        assert_eq!(&p[..4], b"\x7fELF");
        assert!(p.len() < 16 * 1024, "{} bytes", p.len());
    }

    #[test]
    fn the_memfd_is_sealed_against_writes() {
        let fd = super::memfd().unwrap();
        // SAFETY: fcntl(F_GET_SEALS) on the live memfd.
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        assert_eq!(
            seals & (libc::F_SEAL_WRITE | libc::F_SEAL_SEAL),
            libc::F_SEAL_WRITE | libc::F_SEAL_SEAL
        );
        let path = format!("/proc/self/fd/{fd}");
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"x"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
}
