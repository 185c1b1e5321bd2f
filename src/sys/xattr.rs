//! Reading extended attributes of an open file, also of one opened `O_PATH` (a symlink, a
//! device, a fifo): `flistxattr`/`fgetxattr` refuse those (`EBADF` before Linux 6.13's
//! `O_PATH` support), so the same inode is then reached through its `/proc/self/fd/N` magic
//! link, which `listxattr`/`getxattr` follow to the file the descriptor refers to (not to a
//! symlink's target).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{syscall6, FdPath};
use crate::Errno;

/// `XATTR_LIST_MAX` and `XATTR_SIZE_MAX` (linux/limits.h): the kernel never returns more.
const XATTR_MAX: usize = 65536;

/// The names of `fd`'s extended attributes, each NUL-terminated, as the kernel lists them.
pub(crate) fn list(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    fetch(|buf, len| {
        // SAFETY: `buf` is valid for `len` bytes (or null with len 0); the fd is borrowed.
        let r = unsafe {
            syscall6(
                libc::SYS_flistxattr,
                fd.as_raw_fd() as usize,
                buf as usize,
                len,
                0,
                0,
                0,
            )
        };
        match r {
            Err(Errno::EBADF) => {
                let p = FdPath::new(fd.as_raw_fd(), b"");
                // SAFETY: `p` is NUL-terminated and lives across the call; `buf` as above.
                unsafe {
                    syscall6(
                        libc::SYS_listxattr,
                        p.as_ptr() as usize,
                        buf as usize,
                        len,
                        0,
                        0,
                        0,
                    )
                }
            }
            r => r,
        }
    })
}

/// The value of `fd`'s extended attribute `name`.
pub(crate) fn get(fd: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    fetch(|buf, len| {
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `len` bytes (or null with 0).
        let r = unsafe {
            syscall6(
                libc::SYS_fgetxattr,
                fd.as_raw_fd() as usize,
                name.as_ptr() as usize,
                buf as usize,
                len,
                0,
                0,
            )
        };
        match r {
            Err(Errno::EBADF) => {
                let p = FdPath::new(fd.as_raw_fd(), b"");
                // SAFETY: as above, with the NUL-terminated `p` living across the call.
                unsafe {
                    syscall6(
                        libc::SYS_getxattr,
                        p.as_ptr() as usize,
                        name.as_ptr() as usize,
                        buf as usize,
                        len,
                        0,
                        0,
                    )
                }
            }
            r => r,
        }
    })
}

/// Asks for the size, then the bytes; again when the attribute grew in between (`ERANGE`).
fn fetch(call: impl Fn(*mut u8, usize) -> Result<usize, Errno>) -> Result<Vec<u8>, Errno> {
    for _ in 0..4 {
        let size = call(std::ptr::null_mut(), 0)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size.min(XATTR_MAX)];
        match call(buf.as_mut_ptr(), buf.len()) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ERANGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn xattrs_of_a_file_without_any_are_empty() {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        // Whatever the filesystem keeps (security labels), the list parses into names.
        let names = list(f.as_fd()).unwrap();
        assert!(names.is_empty() || names.last() == Some(&0));
        let e = get(f.as_fd(), c"user.contain-none").unwrap_err();
        assert!(e == Errno::ENODATA || e == Errno::EOPNOTSUPP, "{e}");
    }
}
