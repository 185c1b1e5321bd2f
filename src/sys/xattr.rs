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

/// The names in the directory open at `dir` (`.` and `..` left out), as `getdents64(2)`
/// returns them, in the directory's own order. `dir` must be a descriptor of its own (its
/// offset moves to the end).
pub(crate) fn dir_names(dir: BorrowedFd<'_>) -> Result<Vec<std::ffi::CString>, Errno> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const NAME_OFFSET: usize = 19;
    let mut buf = vec![0u8; 32 * 1024];
    let mut names = Vec::new();
    loop {
        // SAFETY: `buf` is valid for its length; the kernel writes whole records into it.
        let n = unsafe {
            syscall6(
                libc::SYS_getdents64,
                dir.as_raw_fd() as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                0,
                0,
                0,
            )
        }?;
        if n == 0 {
            return Ok(names);
        }
        let mut off = 0;
        while off + NAME_OFFSET <= n {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen < NAME_OFFSET || off + reclen > n {
                return Err(Errno::EIO);
            }
            let raw = &buf[off + NAME_OFFSET..off + reclen];
            let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let name = &raw[..len];
            if name != b"." && name != b".." {
                // No NUL inside: `len` stops at the first one.
                if let Ok(c) = std::ffi::CString::new(name) {
                    names.push(c);
                }
            }
            off += reclen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

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
        let mut got: Vec<String> = dir_names(f.as_fd())
            .unwrap()
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect();
        // The offset is at the end now: a second call on the same description lists nothing.
        let again = dir_names(f.as_fd());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(again, Ok(Vec::new()));
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

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
