//! File syscalls on directory descriptors for the parent process (the image unpacker):
//! thin, safe wrappers over the C library's `*at` calls and the xattr calls nix lacks.
//!
//! Not for the child after `clone`: these go through libc and read `errno`. Every name
//! argument is one path component or a path the caller resolved safely; none of these
//! functions resolves anything itself beyond what its flags say.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::Errno;

/// `-1` → the calling thread's `errno`.
fn check(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `-1` → `errno`, for calls returning a size.
fn check_size(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

/// `openat(2)`, the new descriptor owned.
pub(crate) fn openat(dfd: RawFd, name: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    let fd = check(unsafe { libc::openat(dfd, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(2)` with `resolve` flags, the new descriptor owned.
pub(crate) fn openat2(dfd: RawFd, path: &CStr, flags: i32, resolve: u64) -> Result<OwnedFd, Errno> {
    let how = super::mount::OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and `how` a live open_how.
    let fd = unsafe { super::mount::openat2(dfd, path.as_ptr(), &how) }?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW`: `Ok(None)` when there is no such name.
pub(crate) fn lstatat(dfd: RawFd, name: &CStr) -> Result<Option<libc::stat>, Errno> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` live and writable.
    match check(unsafe { libc::fstatat(dfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }) {
        Ok(_) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: RawFd) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is live and writable.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dfd: RawFd, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dfd, name.as_ptr(), mode) }).map(drop)
}

/// `unlinkat(2)` (`flags`: 0 or `AT_REMOVEDIR`).
pub(crate) fn unlinkat(dfd: RawFd, name: &CStr, flags: i32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dfd, name.as_ptr(), flags) }).map(drop)
}

/// `symlinkat(2)`: `name` in `dfd` pointing to `target`.
pub(crate) fn symlinkat(target: &CStr, dfd: RawFd, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target.as_ptr(), dfd, name.as_ptr()) }).map(drop)
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: a link to a symlink links the symlink.
pub(crate) fn linkat(odfd: RawFd, oname: &CStr, ndfd: RawFd, nname: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::linkat(odfd, oname.as_ptr(), ndfd, nname.as_ptr(), 0) }).map(drop)
}

/// `mknodat(2)`.
pub(crate) fn mknodat(dfd: RawFd, name: &CStr, mode: u32, dev: u64) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mknodat(dfd, name.as_ptr(), mode, dev) }).map(drop)
}

/// `readlinkat(2)`: the target's length in `buf` (truncated when it is as long as `buf`).
pub(crate) fn readlinkat(dfd: RawFd, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel writes at most `buf.len()` bytes.
    check_size(unsafe { libc::readlinkat(dfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `fchownat(2)`; with `AT_SYMLINK_NOFOLLOW` a symlink itself is changed, with
/// `AT_EMPTY_PATH` and `c""` the descriptor itself (also an `O_PATH` one).
pub(crate) fn fchownat(
    dfd: RawFd,
    name: &CStr,
    uid: u32,
    gid: u32,
    flags: i32,
) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::fchownat(dfd, name.as_ptr(), uid, gid, flags) }).map(drop)
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: RawFd, mode: u32) -> Result<(), Errno> {
    // SAFETY: no pointers.
    check(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// `chmod(2)` of a path (the caller's `/proc/self/fd/N` of an `O_PATH` descriptor).
pub(crate) fn chmod(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

/// `utimensat(2)` of `name` in `dfd` (`[atime, mtime]`), `flags` as the syscall's.
pub(crate) fn utimensat(
    dfd: RawFd,
    name: &CStr,
    times: &[libc::timespec; 2],
    flags: i32,
) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated, `times` two live timespecs.
    check(unsafe { libc::utimensat(dfd, name.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

/// `futimens(3)`.
pub(crate) fn futimens(fd: RawFd, times: &[libc::timespec; 2]) -> Result<(), Errno> {
    // SAFETY: `times` are two live timespecs.
    check(unsafe { libc::futimens(fd, times.as_ptr()) }).map(drop)
}

/// `fsetxattr(2)`.
pub(crate) fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel reads `value.len()` bytes of `value`.
    check(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

/// `lsetxattr(2)`: the last component of `path` is not followed.
pub(crate) fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated; the kernel reads `value.len()` bytes.
    check(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// `fgetxattr(2)`: the value's length (`ERANGE` when `buf` is too small).
pub(crate) fn fgetxattr(fd: RawFd, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel writes at most `buf.len()` bytes.
    check_size(unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `flistxattr(2)`: NUL-separated names, their total length.
pub(crate) fn flistxattr(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes.
    check_size(unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `copy_file_range(2)` from the current offsets: bytes copied (0 at the end of `fd_in`).
pub(crate) fn copy_file_range(fd_in: RawFd, fd_out: RawFd, len: usize) -> Result<usize, Errno> {
    // SAFETY: null offsets mean the descriptors' own; no other pointers.
    check_size(unsafe {
        libc::copy_file_range(
            fd_in,
            std::ptr::null_mut(),
            fd_out,
            std::ptr::null_mut(),
            len,
            0,
        )
    } as isize)
}

/// `lseek(2)`: the new offset (`SEEK_DATA` past the last data region is `ENXIO`).
pub(crate) fn lseek(fd: RawFd, offset: i64, whence: i32) -> Result<i64, Errno> {
    // SAFETY: no pointers.
    let r = unsafe { libc::lseek(fd, offset, whence) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// `ftruncate(2)`.
pub(crate) fn ftruncate(fd: RawFd, len: i64) -> Result<(), Errno> {
    // SAFETY: no pointers.
    check(unsafe { libc::ftruncate(fd, len) }).map(drop)
}

/// The names in the directory `dir` (without `.` and `..`), read through a fresh
/// descriptor of it (so `dir`'s own offset is untouched).
pub(crate) fn read_dir_names(dir: RawFd) -> Result<Vec<std::ffi::CString>, Errno> {
    Ok(super::read_dir(dir)?.into_iter().map(|(n, _)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn dir_names_lists_every_name_but_dot_and_dotdot() {
        let dir = std::env::temp_dir().join(format!("contain-dirnames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut want: Vec<String> = (0..300).map(|i| format!("{i:0>120}")).collect();
        want.push("a\nb".into());
        for n in &want {
            std::fs::write(dir.join(n), "").unwrap();
        }
        let f = std::fs::File::open(&dir).unwrap();
        let mut got: Vec<String> = read_dir_names(f.as_raw_fd())
            .unwrap()
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect();
        // A fresh descriptor each time: a second call lists the same.
        let again = read_dir_names(f.as_raw_fd()).unwrap().len();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(again, want.len());
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
