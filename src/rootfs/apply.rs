//! Assembling a [`PreparedRootfs`] in the child: raw system calls only.
//!
//! Runs between `clone` and `execve` in a child that shares the parent's memory: no
//! allocation, no locks, no libc, no `errno`, no panics. It uses the strings prepared by
//! [`Rootfs::prepare`](super::Rootfs::prepare), its own stack (for `/proc/self/fd/N` paths)
//! and `crate::sys`. Every descriptor it opens is close-on-exec and closed on drop ([`Fd`]).

use crate::sys::FdPath;
use std::ffi::CStr;
use std::os::fd::BorrowedFd;

use libc::{c_char, c_int};

use super::{Base, InRoot, Op, PreparedRootfs, Step, Upper};
use crate::mount::apply::{open, Fd};
use crate::mount::MountError;
use crate::sys::mount as raw;
use crate::{Errno, SetupStage};

/// A failed step, as the child reports it (see `ChildError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RootfsError {
    pub stage: SetupStage,
    pub errno: Errno,
    /// 0 for the root itself (and the pivot), else 1 + the index of the step.
    pub index: u32,
    /// An [`Op`], or a `MountStep` of a prepared mount.
    pub step: u32,
}

/// (step code, errno) of a failure inside one step.
type Failure = (u32, Errno);

fn at(op: Op) -> impl Fn(Errno) -> Failure {
    move |errno| (op as u32, errno)
}

fn mount_failure(e: MountError) -> Failure {
    (e.step as u32, e.errno)
}

const EMPTY: &CStr = c"";
const O_PATH: u64 = (libc::O_PATH | libc::O_CLOEXEC) as u64;
const O_PATH_DIR: u64 = O_PATH | libc::O_DIRECTORY as u64;
const IN_ROOT: u64 = raw::RESOLVE_IN_ROOT | raw::RESOLVE_NO_MAGICLINKS;
const MOVE_EMPTY: u32 = raw::MOVE_MOUNT_F_EMPTY_PATH | raw::MOVE_MOUNT_T_EMPTY_PATH;
const CLONE: u32 = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;

/// `fsconfig(FSCONFIG_SET_STRING)`.
fn set_string(fs: c_int, key: &CStr, value: *const c_char, op: Op) -> Result<(), Failure> {
    // SAFETY: key and value are NUL-terminated strings that live across the call.
    unsafe { raw::fsconfig(fs, raw::FSCONFIG_SET_STRING, key.as_ptr(), value.cast(), 0) }
        .map_err(at(op))
}

/// `fsconfig(FSCONFIG_SET_FLAG)`.
fn set_flag(fs: c_int, key: &CStr, op: Op) -> Result<(), Failure> {
    // SAFETY: key is a NUL-terminated string; a flag has no value.
    unsafe {
        raw::fsconfig(
            fs,
            raw::FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null(),
            0,
        )
    }
    .map_err(at(op))
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`.
fn create(fs: c_int, op: Op) -> Result<(), Failure> {
    raw::fsconfig_create(fs).map_err(at(op))
}

/// A new, detached tmpfs with `MOUNT_ATTR_*` flags `attrs`.
fn tmpfs(
    size: Option<&CStr>,
    mode: &CStr,
    attrs: u32,
    [open_op, config_op, mount_op]: [Op; 3],
) -> Result<Fd, Failure> {
    // SAFETY: the type is a NUL-terminated string.
    let fs =
        Fd(unsafe { raw::fsopen(c"tmpfs".as_ptr(), raw::FSOPEN_CLOEXEC) }.map_err(at(open_op))?);
    set_string(fs.0, c"source", c"tmpfs".as_ptr(), config_op)?;
    set_string(fs.0, c"mode", mode.as_ptr(), config_op)?;
    if let Some(size) = size {
        set_string(fs.0, c"size", size.as_ptr(), config_op)?;
    }
    create(fs.0, config_op)?;
    raw::fsmount(fs.0, raw::FSMOUNT_CLOEXEC, attrs)
        .map(Fd)
        .map_err(at(mount_op))
}

/// Attaches the detached mount `mnt` on top of the host's `/` in this (private) namespace.
/// The process's root stays the host's root below it, so host paths keep working; the new
/// mount is reached through `mnt` only.
fn attach_on_slash(mnt: c_int, op: Op) -> Result<(), Failure> {
    // SAFETY: both paths are NUL-terminated strings.
    unsafe {
        raw::move_mount(
            mnt,
            EMPTY.as_ptr(),
            libc::AT_FDCWD,
            c"/".as_ptr(),
            raw::MOVE_MOUNT_F_EMPTY_PATH,
        )
    }
    .map_err(at(op))
}

fn move_onto(tree: c_int, target: c_int) -> Result<(), Failure> {
    // SAFETY: both paths are the empty NUL-terminated string.
    unsafe { raw::move_mount(tree, EMPTY.as_ptr(), target, EMPTY.as_ptr(), MOVE_EMPTY) }
        .map_err(at(Op::MoveMount))
}

/// `mount_setattr` of `attr_set` on `mnt` (and, if `recursive`, the mounts below it).
fn set_attrs(mnt: c_int, attr_set: u64, recursive: bool, op: Op) -> Result<(), Failure> {
    let attr = raw::MountAttr {
        attr_set,
        ..Default::default()
    };
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { raw::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is the empty NUL-terminated string; `attr` lives across the call.
    unsafe { raw::mount_setattr(mnt, EMPTY.as_ptr(), flags, &attr) }.map_err(at(op))
}

/// Opens a directory of the new root, resolved inside it.
fn open_dir(root: c_int, dir: &InRoot) -> Result<Fd, Failure> {
    open(root, &dir.rel, O_PATH_DIR, 0, IN_ROOT).map_err(at(Op::OpenParent))
}

/// Whether the statx'ed object is a directory.
fn is_dir(fd: c_int, op: Op) -> Result<bool, Failure> {
    let stx = raw::fstatx(fd, libc::STATX_TYPE).map_err(at(op))?;
    Ok(u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR)
}

impl PreparedRootfs {
    /// Builds the container's root in the calling process's mount namespace (which must be
    /// its own) and moves into it. Allocation-free; see the module documentation.
    /// `go_fd`: the go-ahead pipe, which carries what the generated `/etc` files need from
    /// after clone (see `etc.rs`).
    pub(crate) fn apply(&self, go_fd: c_int) -> Result<(), RootfsError> {
        // Modes are exact (device nodes 0666, /tmp 1777); the caller's mask comes back before
        // the command runs.
        let umask = raw::umask(0);
        let result = self.assemble(go_fd);
        raw::umask(umask);
        result
    }

    fn assemble(&self, go_fd: c_int) -> Result<(), RootfsError> {
        let report = |stage: SetupStage, index: u32| {
            move |(step, errno): Failure| RootfsError {
                stage,
                errno,
                index,
                step,
            }
        };
        let root = self.attach_root().map_err(report(SetupStage::Mount, 0))?;
        // The checked /dev/null for masking, opened at the first masked file.
        let mut null = None;
        for (i, step) in self.steps.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            step.apply(root.0, &mut null, go_fd)
                .map_err(report(SetupStage::Mount, index))?;
        }
        drop(null);
        if self.read_only_root {
            set_attrs(root.0, raw::MOUNT_ATTR_RDONLY, false, Op::RootReadOnly)
                .map_err(report(SetupStage::Mount, 0))?;
        }
        self.enter(root).map_err(report(SetupStage::PivotRoot, 0))
    }

    /// The new root, attached on top of the host's `/`, private.
    fn attach_root(&self) -> Result<Fd, Failure> {
        let null = std::ptr::null();
        // Our copy of the host's mounts shares propagation with the host until this.
        // SAFETY: the target is a NUL-terminated string; the other pointers are null.
        unsafe {
            raw::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                null.cast(),
            )
        }
        .map_err(at(Op::MakePrivate))?;
        let root = match &self.base {
            Base::Tmpfs { size } => {
                let ops = [Op::ScratchOpen, Op::ScratchConfig, Op::ScratchMount];
                let root = tmpfs(size.as_deref(), c"755", 0, ops)?;
                attach_on_slash(root.0, Op::AttachRoot)?;
                root
            }
            Base::Bind {
                source, read_only, ..
            } => {
                let flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC | raw::AT_RECURSIVE;
                // SAFETY: `source` is a NUL-terminated string.
                let tree = Fd(
                    unsafe { raw::open_tree(libc::AT_FDCWD, source.as_ptr(), flags) }
                        .map_err(at(Op::CloneImage))?,
                );
                if *read_only {
                    // On the detached copy: it is never visible writable.
                    set_attrs(tree.0, raw::MOUNT_ATTR_RDONLY, true, Op::ImageReadOnly)?;
                }
                attach_on_slash(tree.0, Op::AttachRoot)?;
                tree
            }
            Base::Overlay {
                lower,
                upper,
                userxattr,
                ..
            } => {
                let root = overlay(lower, upper, *userxattr)?;
                attach_on_slash(root.0, Op::AttachRoot)?;
                root
            }
        };
        let private = raw::MountAttr {
            propagation: libc::MS_PRIVATE,
            ..Default::default()
        };
        // SAFETY: the path is the empty NUL-terminated string; `private` lives across the call.
        unsafe { raw::mount_setattr(root.0, EMPTY.as_ptr(), libc::AT_EMPTY_PATH as u32, &private) }
            .map_err(at(Op::RootPrivate))?;
        Ok(root)
    }

    /// `pivot_root` into `root` (or `chroot`, where allowed) and detach the old root.
    fn enter(&self, root: Fd) -> Result<(), Failure> {
        raw::fchdir(root.0).map_err(at(Op::Fchdir))?;
        drop(root);
        // SAFETY: "." is a NUL-terminated string.
        match unsafe { raw::pivot_root(c".".as_ptr(), c".".as_ptr()) } {
            // The old root now sits on top of the new one, at ".". It is the only mount there:
            // the new root was stacked straight on the old "/" and the scratch tmpfs of an
            // overlay was detached before. Detach it with every host mount below it.
            // SAFETY: "." is a NUL-terminated string.
            Ok(()) => unsafe { raw::umount2(c".".as_ptr(), libc::MNT_DETACH) }
                .map_err(at(Op::DetachOldRoot))?,
            Err(Errno::EINVAL) if self.chroot_fallback => {
                // SAFETY: "." is a NUL-terminated string.
                unsafe { raw::chroot(c".".as_ptr()) }.map_err(at(Op::Chroot))?
            }
            Err(errno) => return Err((Op::PivotRoot as u32, errno)),
        }
        // SAFETY: "/" is a NUL-terminated string.
        unsafe { raw::chdir(c"/".as_ptr()) }.map_err(at(Op::ChdirRoot))
    }
}

/// The overlay of the image (`lower`) and a writable layer, detached.
fn overlay(lower: &CStr, upper: &Upper, userxattr: bool) -> Result<Fd, Failure> {
    let lower = open(libc::AT_FDCWD, lower, O_PATH_DIR, 0, 0).map_err(at(Op::OpenLower))?;
    // SAFETY: the type is a NUL-terminated string.
    let fs = Fd(
        unsafe { raw::fsopen(c"overlay".as_ptr(), raw::FSOPEN_CLOEXEC) }
            .map_err(at(Op::OverlayOpen))?,
    );
    set_string(fs.0, c"source", c"overlay".as_ptr(), Op::OverlayConfig)?;
    let lower_path = FdPath::new(lower.0, b"");
    set_string(fs.0, c"lowerdir", lower_path.as_ptr(), Op::OverlayConfig)?;
    // Before 6.5 overlayfs parses its options only at FSCONFIG_CMD_CREATE: every layer's
    // /proc/self/fd path must still name an open descriptor then (`lower`, `scratch`, `dirs`).
    let (scratch, _dirs) = match upper {
        Upper::Scratch { size } => {
            let ops = [Op::ScratchOpen, Op::ScratchConfig, Op::ScratchMount];
            let scratch = tmpfs(size.as_deref(), c"700", 0, ops)?;
            // Attached only while overlayfs takes its own reference to the layers.
            attach_on_slash(scratch.0, Op::ScratchAttach)?;
            // The overlay's root directory is the upper one: give it the image root's mode.
            let stx = raw::fstatx(lower.0, libc::STATX_MODE).map_err(at(Op::StatLower))?;
            let mode = u32::from(stx.stx_mode) & 0o7777;
            for (name, mode) in [(c"upper", mode), (c"work", 0o700)] {
                // SAFETY: `name` is a NUL-terminated string.
                unsafe { raw::mkdirat(scratch.0, name.as_ptr(), mode) }
                    .map_err(at(Op::MakeLayerDir))?;
            }
            let (up, work) = (
                FdPath::new(scratch.0, b"/upper"),
                FdPath::new(scratch.0, b"/work"),
            );
            set_string(fs.0, c"upperdir", up.as_ptr(), Op::OverlayConfig)?;
            set_string(fs.0, c"workdir", work.as_ptr(), Op::OverlayConfig)?;
            (Some(scratch), None)
        }
        Upper::Dir { upper, work, .. } => {
            let up = open(libc::AT_FDCWD, upper, O_PATH_DIR, 0, 0).map_err(at(Op::OpenUpper))?;
            let wk = open(libc::AT_FDCWD, work, O_PATH_DIR, 0, 0).map_err(at(Op::OpenWork))?;
            let (up_path, wk_path) = (FdPath::new(up.0, b""), FdPath::new(wk.0, b""));
            set_string(fs.0, c"upperdir", up_path.as_ptr(), Op::OverlayConfig)?;
            set_string(fs.0, c"workdir", wk_path.as_ptr(), Op::OverlayConfig)?;
            (None, Some((up, wk)))
        }
    };
    if userxattr {
        // In a user namespace overlayfs cannot use trusted.* xattrs.
        set_flag(fs.0, c"userxattr", Op::OverlayConfig)?;
    }
    create(fs.0, Op::OverlayCreate)?;
    let mnt = Fd(raw::fsmount(fs.0, raw::FSMOUNT_CLOEXEC, 0).map_err(at(Op::OverlayMount))?);
    if let Some(scratch) = scratch {
        // Out of the tree again: the overlay keeps the layer alive, nothing else sees it, and
        // the new root can then sit directly on the old one.
        let path = FdPath::new(scratch.0, b"");
        // SAFETY: a NUL-terminated stack buffer; the magic link must be followed to the mount.
        unsafe { raw::umount2(path.as_ptr(), libc::MNT_DETACH) }.map_err(at(Op::ScratchDetach))?;
    }
    Ok(mnt)
}

impl Step {
    fn apply(&self, root: c_int, null: &mut Option<Fd>, go_fd: c_int) -> Result<(), Failure> {
        // SAFETY: `root` is open for the whole assembly (owned by `assemble`).
        let root_fd = unsafe { BorrowedFd::borrow_raw(root) };
        match self {
            Step::Mount { mount, .. } => mount.apply_in(Some(root_fd)).map_err(mount_failure),
            Step::Dir { parent, name, mode } => {
                let dir = open_dir(root, parent)?;
                // SAFETY: `name` is a NUL-terminated string.
                unsafe { raw::mkdirat(dir.0, name.as_ptr(), *mode) }.map_err(at(Op::Mkdir))
            }
            Step::Symlink {
                parent,
                name,
                target,
            } => {
                let dir = open_dir(root, parent)?;
                // SAFETY: both are NUL-terminated strings.
                unsafe { raw::symlinkat(target.as_ptr(), dir.0, name.as_ptr()) }
                    .map_err(at(Op::Symlink))
            }
            Step::Device {
                parent,
                name,
                rdev,
                mknod,
                bind,
            } => {
                if *mknod {
                    let dir = open_dir(root, parent)?;
                    let mode = libc::S_IFCHR | 0o666;
                    // SAFETY: `name` is a NUL-terminated string.
                    match unsafe { raw::mknodat(dir.0, name.as_ptr(), mode, *rdev) } {
                        Ok(()) => return Ok(()),
                        // No CAP_MKNOD: bind the host's node instead.
                        Err(Errno::EPERM) if bind.is_some() => {}
                        Err(errno) => return Err((Op::Mknod as u32, errno)),
                    }
                }
                match bind {
                    Some(bind) => bind.apply_in(Some(root_fd)).map_err(mount_failure),
                    None => Err((Op::Mknod as u32, Errno::EPERM)),
                }
            }
            Step::Mask(path) => mask(root, path, null),
            Step::ReadOnly(path) => read_only(root, path),
            Step::Etc(files) => files.apply(root, go_fd),
        }
    }
}

/// The target of a masked or read-only path, or `None` if the kernel does not have it.
fn open_target(root: c_int, path: &InRoot) -> Result<Option<Fd>, Failure> {
    match open(root, &path.rel, O_PATH, 0, IN_ROOT) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err((Op::OpenTarget as u32, errno)),
    }
}

/// `/dev/null` of the new root, checked through its descriptor to be the character device
/// 1:3 (never a symlink, a file or another device that the image or a mount put there).
fn checked_null(root: c_int) -> Result<Fd, Failure> {
    let flags = O_PATH | libc::O_NOFOLLOW as u64;
    let fd = open(root, c"dev/null", flags, 0, IN_ROOT).map_err(at(Op::OpenNull))?;
    let stx = raw::fstatx(fd.0, libc::STATX_TYPE).map_err(at(Op::CheckNull))?;
    let chr = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFCHR;
    if !chr || stx.stx_rdev_major != 1 || stx.stx_rdev_minor != 3 {
        return Err((Op::CheckNull as u32, Errno::ENODEV));
    }
    Ok(fd)
}

/// `/dev/null` over a file, an empty read-only tmpfs over a directory.
fn mask(root: c_int, path: &InRoot, null: &mut Option<Fd>) -> Result<(), Failure> {
    let Some(target) = open_target(root, path)? else {
        return Ok(());
    };
    let tree =
        if is_dir(target.0, Op::StatTarget)? {
            let attrs = (raw::MOUNT_ATTR_RDONLY
                | raw::MOUNT_ATTR_NOSUID
                | raw::MOUNT_ATTR_NODEV
                | raw::MOUNT_ATTR_NOEXEC) as u32;
            let ops = [Op::MaskOpen, Op::MaskCreate, Op::MaskMount];
            tmpfs(None, c"555", attrs, ops)?
        } else {
            let null = match null {
                Some(fd) => fd,
                None => null.insert(checked_null(root)?),
            };
            // SAFETY: the path is the empty NUL-terminated string.
            Fd(unsafe { raw::open_tree(null.0, EMPTY.as_ptr(), CLONE) }
                .map_err(at(Op::CloneTarget))?)
        };
    move_onto(tree.0, target.0)
}

/// Binds `path` onto itself, read-only (with everything mounted below it).
fn read_only(root: c_int, path: &InRoot) -> Result<(), Failure> {
    let Some(target) = open_target(root, path)? else {
        return Ok(());
    };
    // SAFETY: the path is the empty NUL-terminated string.
    let tree = Fd(
        unsafe { raw::open_tree(target.0, EMPTY.as_ptr(), CLONE | raw::AT_RECURSIVE) }
            .map_err(at(Op::CloneTarget))?,
    );
    let attrs = raw::MOUNT_ATTR_RDONLY
        | raw::MOUNT_ATTR_NOSUID
        | raw::MOUNT_ATTR_NODEV
        | raw::MOUNT_ATTR_NOEXEC;
    set_attrs(tree.0, attrs, true, Op::SetReadOnly)?;
    move_onto(tree.0, target.0)
}

/// After the `chdir` to the working directory: fails with `ENOENT` if it is not reachable from
/// the new root (the kernel's `getcwd` then says `(unreachable)/...`), as a directory reached
/// through a host descriptor in `/proc/self/fd` would be.
pub(crate) fn check_cwd() -> Result<(), Errno> {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    raw::getcwd(&mut buf)?;
    if buf[0] == b'/' {
        Ok(())
    } else {
        Err(Errno::ENOENT)
    }
}
