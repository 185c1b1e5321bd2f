//! Raw mount-API syscalls (open_tree, move_mount, fsopen, fsconfig, fsmount, mount_setattr) and
//! the few file syscalls that mounting inside a rootfs needs (openat2, mkdirat, statx, fstatfs,
//! mount, close).
//!
//! Every function here is a thin, allocation-free wrapper around [`super::syscall6`]: it takes
//! raw descriptors and NUL-terminated pointers prepared by the caller and returns the kernel's
//! answer as `Result<_, Errno>`, never touching `errno`. That makes them usable between `clone`
//! and `execve` in a child that shares the parent's memory. Descriptors they return are raw
//! (`c_int`): the child must not run `OwnedFd`'s destructor (it calls libc `close`), so it
//! closes them with [`close`].
//!
//! Constants and structs are spelled out from the kernel UAPI headers (`linux/mount.h`,
//! `linux/openat2.h`) so that they do not depend on the libc crate's version.

use crate::Errno;
use libc::{c_char, c_int, c_void};

use super::{syscall3, syscall6};

// linux/mount.h
pub(crate) const OPEN_TREE_CLONE: u32 = 1;
pub(crate) const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
pub(crate) const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

pub(crate) const FSOPEN_CLOEXEC: u32 = 1;
pub(crate) const FSCONFIG_SET_FLAG: u32 = 0;
pub(crate) const FSCONFIG_SET_STRING: u32 = 1;
pub(crate) const FSCONFIG_CMD_CREATE: u32 = 6;
pub(crate) const FSMOUNT_CLOEXEC: u32 = 1;

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub(crate) const MOUNT_ATTR__ATIME: u64 = 0x0000_0070;
pub(crate) const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
pub(crate) const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

// linux/fcntl.h
pub(crate) const AT_RECURSIVE: u32 = 0x8000;

// linux/openat2.h
pub(crate) const RESOLVE_NO_XDEV: u64 = 0x01;
pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct mount_attr` of `mount_setattr(2)` (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `struct open_how` of `openat2(2)` (`OPEN_HOW_SIZE_VER0`, 24 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

/// `open_tree(2)`: a descriptor for the mount at `path`, or with `OPEN_TREE_CLONE` a detached
/// copy of it (and with `AT_RECURSIVE` of the mounts below it).
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn open_tree(
    dfd: c_int,
    path: *const c_char,
    flags: u32,
) -> Result<c_int, Errno> {
    // SAFETY: the kernel only reads the string at `path`, valid per the caller's contract.
    unsafe {
        syscall3(
            libc::SYS_open_tree,
            dfd as usize,
            path as usize,
            flags as usize,
        )
    }
    .map(|fd| fd as c_int)
}

/// `move_mount(2)`: attach (or move) the mount `from_dfd`/`from_path` onto `to_dfd`/`to_path`.
///
/// # Safety
/// Both paths must point to NUL-terminated strings.
#[inline]
pub(crate) unsafe fn move_mount(
    from_dfd: c_int,
    from_path: *const c_char,
    to_dfd: c_int,
    to_path: *const c_char,
    flags: u32,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the two strings, valid per the caller's contract.
    unsafe {
        syscall6(
            libc::SYS_move_mount,
            from_dfd as usize,
            from_path as usize,
            to_dfd as usize,
            to_path as usize,
            flags as usize,
            0,
        )
    }
    .map(drop)
}

/// `fsopen(2)`: a filesystem context for the filesystem type `fstype`.
///
/// # Safety
/// `fstype` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn fsopen(fstype: *const c_char, flags: u32) -> Result<c_int, Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe { syscall3(libc::SYS_fsopen, fstype as usize, flags as usize, 0) }.map(|fd| fd as c_int)
}

/// `fsconfig(2)`: set a parameter of (or run a command on) a filesystem context.
///
/// # Safety
/// `key` and `value` must be null or point to what `cmd` expects (NUL-terminated strings for
/// `FSCONFIG_SET_STRING`, null value for `FSCONFIG_SET_FLAG` and the commands).
#[inline]
pub(crate) unsafe fn fsconfig(
    fsfd: c_int,
    cmd: u32,
    key: *const c_char,
    value: *const c_void,
    aux: c_int,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads `key` and `value`, valid for `cmd` per the caller's contract.
    unsafe {
        syscall6(
            libc::SYS_fsconfig,
            fsfd as usize,
            cmd as usize,
            key as usize,
            value as usize,
            aux as usize,
            0,
        )
    }
    .map(drop)
}

/// `fsconfig(fsfd, FSCONFIG_CMD_CREATE)`: creates the superblock from the parameters set.
pub(crate) fn fsconfig_create(fsfd: c_int) -> Result<(), Errno> {
    // SAFETY: the create command reads no key and no value.
    unsafe {
        fsconfig(
            fsfd,
            FSCONFIG_CMD_CREATE,
            std::ptr::null(),
            std::ptr::null(),
            0,
        )
    }
}

/// `fsmount(2)`: a detached mount of the superblock created in `fsfd`, with the
/// `MOUNT_ATTR_*` flags `attr_flags`.
#[inline]
pub(crate) fn fsmount(fsfd: c_int, flags: u32, attr_flags: u32) -> Result<c_int, Errno> {
    // SAFETY: no pointers; a bad descriptor is reported as EBADF.
    unsafe {
        syscall3(
            libc::SYS_fsmount,
            fsfd as usize,
            flags as usize,
            attr_flags as usize,
        )
    }
    .map(|fd| fd as c_int)
}

/// `mount_setattr(2)`: change mount attributes and propagation of `dfd`/`path` (with
/// `AT_RECURSIVE`, of the whole tree below it).
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn mount_setattr(
    dfd: c_int,
    path: *const c_char,
    flags: u32,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: the kernel reads `size_of::<MountAttr>()` bytes from the live reference `attr`
    // and the string at `path`, valid per the caller's contract.
    unsafe {
        syscall6(
            libc::SYS_mount_setattr,
            dfd as usize,
            path as usize,
            flags as usize,
            attr as *const MountAttr as usize,
            std::mem::size_of::<MountAttr>(),
            0,
        )
    }
    .map(drop)
}

/// `openat2(2)`.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn openat2(
    dfd: c_int,
    path: *const c_char,
    how: &OpenHow,
) -> Result<c_int, Errno> {
    // With RESOLVE_IN_ROOT/BENEATH the kernel answers EAGAIN when any mount or rename
    // happened anywhere during the walk; that is a race with other activity, not an error.
    let mut tries = 0;
    loop {
        // SAFETY: the kernel reads `size_of::<OpenHow>()` bytes from the live reference `how`
        // and the string at `path`, valid per the caller's contract.
        let r = unsafe {
            syscall6(
                libc::SYS_openat2,
                dfd as usize,
                path as usize,
                how as *const OpenHow as usize,
                std::mem::size_of::<OpenHow>(),
                0,
                0,
            )
        };
        match r {
            Err(Errno::EAGAIN) if tries < 128 => tries += 1,
            r => return r.map(|fd| fd as c_int),
        }
    }
}

/// `mkdirat(2)`.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn mkdirat(dfd: c_int, path: *const c_char, mode: u32) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe {
        syscall3(
            libc::SYS_mkdirat,
            dfd as usize,
            path as usize,
            mode as usize,
        )
    }
    .map(drop)
}

/// `mount(2)`.
///
/// # Safety
/// `source`, `fstype` and `data` must be null or NUL-terminated strings; `target` must be a
/// NUL-terminated string.
#[inline]
pub(crate) unsafe fn mount(
    source: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: u64,
    data: *const c_void,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the strings, valid per the caller's contract.
    unsafe {
        syscall6(
            libc::SYS_mount,
            source as usize,
            target as usize,
            fstype as usize,
            flags as usize,
            data as usize,
            0,
        )
    }
    .map(drop)
}

/// `statx(2)` of the descriptor `fd` itself (`AT_EMPTY_PATH`), asking for `mask`.
#[inline]
pub(crate) fn fstatx(fd: c_int, mask: u32) -> Result<libc::statx, Errno> {
    // SAFETY: statx is plain old data; all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is the empty NUL-terminated string; the kernel writes one `struct statx`
    // into `stx`, which is live and writable.
    unsafe {
        syscall6(
            libc::SYS_statx,
            fd as usize,
            c"".as_ptr() as usize,
            libc::AT_EMPTY_PATH as usize,
            mask as usize,
            &mut stx as *mut libc::statx as usize,
            0,
        )
    }?;
    Ok(stx)
}

/// `fstatfs(2)`: the mount flags (`ST_*`) of the mount `fd` is on are in `f_flags`.
#[inline]
pub(crate) fn fstatfs(fd: c_int) -> Result<libc::statfs64, Errno> {
    // SAFETY: statfs64 is plain old data; all zeroes is a valid value.
    let mut st: libc::statfs64 = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one `struct statfs` (the 64-bit layout on 64-bit targets,
    // which is what `statfs64` is) into `st`, which is live and writable.
    unsafe {
        syscall3(
            libc::SYS_fstatfs,
            fd as usize,
            &mut st as *mut libc::statfs64 as usize,
            0,
        )
    }?;
    Ok(st)
}

/// `close(2)` without touching `errno`. The descriptor is gone whatever the result.
///
/// # Safety
/// The caller owns `fd` and nothing uses it afterwards (I/O safety).
#[inline]
pub(crate) unsafe fn close(fd: c_int) -> Result<(), Errno> {
    // SAFETY: no pointers; ownership of `fd` is the caller's contract.
    unsafe { syscall3(libc::SYS_close, fd as usize, 0, 0) }.map(drop)
}

/// `mknodat(2)`.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn mknodat(
    dfd: c_int,
    path: *const c_char,
    mode: u32,
    dev: u64,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe {
        syscall6(
            libc::SYS_mknodat,
            dfd as usize,
            path as usize,
            mode as usize,
            dev as usize,
            0,
            0,
        )
    }
    .map(drop)
}

/// `symlinkat(2)`: a symlink `name` in `dfd` that points to `target`.
///
/// # Safety
/// `target` and `name` must point to NUL-terminated strings.
#[inline]
pub(crate) unsafe fn symlinkat(
    target: *const c_char,
    dfd: c_int,
    name: *const c_char,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the two strings, valid per the caller's contract.
    unsafe {
        syscall3(
            libc::SYS_symlinkat,
            target as usize,
            dfd as usize,
            name as usize,
        )
    }
    .map(drop)
}

/// `pivot_root(2)`.
///
/// # Safety
/// Both paths must point to NUL-terminated strings.
#[inline]
pub(crate) unsafe fn pivot_root(
    new_root: *const c_char,
    put_old: *const c_char,
) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the two strings, valid per the caller's contract.
    unsafe { syscall3(libc::SYS_pivot_root, new_root as usize, put_old as usize, 0) }.map(drop)
}

/// `umount2(2)`.
///
/// # Safety
/// `target` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn umount2(target: *const c_char, flags: c_int) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe { syscall3(libc::SYS_umount2, target as usize, flags as usize, 0) }.map(drop)
}

/// `fchdir(2)`.
#[inline]
pub(crate) fn fchdir(fd: c_int) -> Result<(), Errno> {
    // SAFETY: no pointers; a bad descriptor is reported as EBADF.
    unsafe { syscall3(libc::SYS_fchdir, fd as usize, 0, 0) }.map(drop)
}

/// `chdir(2)`.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn chdir(path: *const c_char) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe { syscall3(libc::SYS_chdir, path as usize, 0, 0) }.map(drop)
}

/// `chroot(2)`.
///
/// # Safety
/// `path` must point to a NUL-terminated string.
#[inline]
pub(crate) unsafe fn chroot(path: *const c_char) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the string, valid per the caller's contract.
    unsafe { syscall3(libc::SYS_chroot, path as usize, 0, 0) }.map(drop)
}

/// `umask(2)`: sets the file mode creation mask, returns the old one (it cannot fail).
#[inline]
pub(crate) fn umask(mask: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { syscall3(libc::SYS_umask, mask as usize, 0, 0) }.map_or(0o022, |old| old as u32)
}

/// `getcwd(2)` into `buf`: the length written, including the NUL. The kernel prefixes a
/// directory that is not below the caller's root with `(unreachable)`.
#[inline]
pub(crate) fn getcwd(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into the live, writable `buf`.
    unsafe { syscall3(libc::SYS_getcwd, buf.as_mut_ptr() as usize, buf.len(), 0) }
}

/// `readlinkat(fd, "", buf)`: the target of the symlink that `fd` (opened with
/// `O_PATH | O_NOFOLLOW`) is, without a NUL; the length written (Linux 2.6.39).
#[inline]
pub(crate) fn readlink_fd(fd: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the path is the empty NUL-terminated string; the kernel writes at most
    // `buf.len()` bytes into the live, writable `buf`.
    unsafe {
        super::syscall6(
            libc::SYS_readlinkat,
            fd as usize,
            c"".as_ptr() as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            0,
            0,
        )
    }
}
