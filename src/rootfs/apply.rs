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

use super::layers::{LowerMethod, LEGACY_DATA_MAX, OVL_MAX_STACK, UNTRUSTED_LOWER_OPTIONS};
use super::{
    Base, EarlyFd, InRoot, Op, Overlay, PreparedRootfs, Step, Upper, LOWER_OPEN_STEP, LOWER_STEP,
};
use crate::mount::apply::{open, Fd};
use crate::mount::{MountError, PreparedMount};
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

/// The directory of the last `Dir`, `Symlink` or `Device` step, kept open for the next one
/// in the same directory (the device nodes and links of `/dev` come one after another):
/// one `openat2` for the run instead of one per entry. Every other step forgets it, so a
/// mount on the directory can never leave it naming what the mount covers.
#[derive(Default)]
struct ParentDir<'a> {
    open: Option<(&'a CStr, Fd)>,
}

impl<'a> ParentDir<'a> {
    /// The directory `dir` of the new root, resolved inside it (or the one kept open).
    fn get(&mut self, root: c_int, dir: &'a InRoot) -> Result<c_int, Failure> {
        match &self.open {
            Some((rel, fd)) if *rel == dir.rel.as_c_str() => Ok(fd.0),
            _ => {
                self.open = None;
                let fd =
                    open(root, &dir.rel, O_PATH_DIR, 0, IN_ROOT).map_err(at(Op::OpenParent))?;
                let raw = fd.0;
                self.open = Some((dir.rel.as_c_str(), fd));
                Ok(raw)
            }
        }
    }
}

/// The steps' mounts begun before anything is stacked on the host's `/` (see
/// [`PreparedMount::open_early`]): each step takes its own descriptor; whatever a failed
/// assembly left is closed on drop.
struct EarlyMounts<'a> {
    steps: &'a [Step],
}

impl<'a> EarlyMounts<'a> {
    /// Opens every bind's source (a device's bind fallback too) and creates every overlay
    /// volume: on failure, the step's index (from 1) and what failed. A fallback's source
    /// that cannot be opened is left out: its step then reports `mknod`'s own error.
    fn open(steps: &'a [Step]) -> Result<EarlyMounts<'a>, (u32, Failure)> {
        let early = EarlyMounts { steps };
        for (i, step) in steps.iter().enumerate() {
            let Some((mount, slot, needed)) = step.early_mount() else {
                continue;
            };
            match mount.open_early() {
                Ok(fd) => slot.put(fd),
                Err(e) if needed => {
                    let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    return Err((index, mount_failure(e)));
                }
                Err(_) => {}
            }
        }
        Ok(early)
    }
}

impl Drop for EarlyMounts<'_> {
    fn drop(&mut self) {
        for (_, slot, _) in self.steps.iter().filter_map(Step::early_mount) {
            drop(slot.take());
        }
    }
}

/// The steps of [`tmpfs`] for the scratch mounts (the root's, the writable layer's, the old
/// root's holder).
const SCRATCH_OPS: [Op; 3] = [Op::ScratchOpen, Op::ScratchConfig, Op::ScratchMount];

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
        make_private().map_err(report(SetupStage::Mount, 0))?;
        // Every host path is opened first (the mounts' sources and new filesystems, then the
        // root's directories): a `..` at the process's root walks into whatever is stacked
        // on the host's `/`, so nothing new may be there yet.
        let early =
            EarlyMounts::open(&self.steps).map_err(|(i, e)| report(SetupStage::Mount, i)(e))?;
        let root = self.make_root().map_err(report(SetupStage::Mount, 0))?;
        // Every scratch mount goes on the host's `/` before the new root, below it: the old
        // root's detach after `pivot_root` then takes them all at the cost of one RCU grace
        // period (each `umount2` waits for one: 0.09-0.4 ms on the 2-core VM).
        let mut etc_tmpfs = None;
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Etc(files) = step {
                let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let tmpfs = files.attach_tmpfs();
                etc_tmpfs = Some(tmpfs.map_err(report(SetupStage::Mount, index))?);
            }
        }
        attach_root(&root).map_err(report(SetupStage::Mount, 0))?;
        // The checked /dev/null for masking, opened at the first masked file.
        let mut null = None;
        let mut parent = ParentDir::default();
        let etc = etc_tmpfs.as_ref().map_or(-1, |fd| fd.0);
        for (i, step) in self.steps.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            step.apply(root.0, &mut null, &mut parent, etc, go_fd)
                .map_err(report(SetupStage::Mount, index))?;
        }
        drop(parent);
        drop(etc_tmpfs);
        drop(null);
        drop(early);
        if self.read_only_root {
            set_attrs(root.0, raw::MOUNT_ATTR_RDONLY, false, Op::RootReadOnly)
                .map_err(report(SetupStage::Mount, 0))?;
        }
        self.enter(root).map_err(report(SetupStage::PivotRoot, 0))
    }

    /// The new root, detached (an overlay's scratch tmpfs is attached already, see
    /// [`overlay`]).
    fn make_root(&self) -> Result<Fd, Failure> {
        let root = match &self.base {
            Base::Tmpfs { size } => tmpfs(size.as_deref(), c"755", 0, SCRATCH_OPS)?,
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
                tree
            }
            Base::Overlay(o) => overlay(o)?,
        };
        Ok(root)
    }

    /// `pivot_root` into `root` (or `chroot`, where allowed) and detach the old root.
    ///
    /// The old root is not put on top of the new one (`pivot_root(".", ".")`, runc's way):
    /// the scratch mounts stacked on it would then be above it there, and `umount2` detaches
    /// the topmost mount of a place. It goes on a directory of a small tmpfs, the holder,
    /// attached on top of the new root's `/` for this; the holder's one detach then takes the
    /// old root, every host mount and every scratch mount with it: one RCU grace period
    /// (`synchronize_rcu_expedited`, which every detaching `umount2` waits for, 0.09-0.4 ms on
    /// the 2-core VM) where a detach per mount would cost one each.
    fn enter(&self, root: Fd) -> Result<(), Failure> {
        let holder = tmpfs(None, c"700", 0, SCRATCH_OPS)?;
        // SAFETY: the name is a NUL-terminated string.
        unsafe { raw::mkdirat(holder.0, c"old".as_ptr(), 0o700) }.map_err(at(Op::OldRootDir))?;
        // SAFETY: both paths are the empty NUL-terminated string.
        unsafe { raw::move_mount(holder.0, EMPTY.as_ptr(), root.0, EMPTY.as_ptr(), MOVE_EMPTY) }
            .map_err(at(Op::OldRootAttach))?;
        raw::fchdir(root.0).map_err(at(Op::Fchdir))?;
        // Through the host's /proc (as the overlay's layers are named): the magic link leads
        // into the holder, stacked on the new root's `/`.
        let put_old = FdPath::new(holder.0, b"/old");
        // SAFETY: both are NUL-terminated strings.
        let pivoted = match unsafe { raw::pivot_root(c".".as_ptr(), put_old.as_ptr()) } {
            Ok(()) => true,
            // An initramfs cannot be moved: the host's tree stays, below the new root.
            Err(Errno::EINVAL) if self.chroot_fallback => false,
            Err(errno) => return Err((Op::PivotRoot as u32, errno)),
        };
        // The holder is the topmost mount at its own `/` (the old root sits on its "old"):
        // this detaches it with everything below it.
        raw::fchdir(holder.0).map_err(at(Op::Fchdir))?;
        // SAFETY: "." is a NUL-terminated string.
        unsafe { raw::umount2(c".".as_ptr(), libc::MNT_DETACH) }.map_err(at(Op::DetachOldRoot))?;
        if !pivoted {
            raw::fchdir(root.0).map_err(at(Op::Fchdir))?;
            // SAFETY: "." is a NUL-terminated string.
            unsafe { raw::chroot(c".".as_ptr()) }.map_err(at(Op::Chroot))?;
        }
        drop(root);
        // SAFETY: "/" is a NUL-terminated string.
        unsafe { raw::chdir(c"/".as_ptr()) }.map_err(at(Op::ChdirRoot))?;
        if self.root_propagation != 0 {
            set_propagation(self.root_propagation, Op::RootPropagation)?;
        }
        Ok(())
    }
}

/// Attaches the new root on top of the host's `/` (last: on top of the scratch mounts),
/// private.
fn attach_root(root: &Fd) -> Result<(), Failure> {
    attach_on_slash(root.0, Op::AttachRoot)?;
    let private = raw::MountAttr {
        propagation: libc::MS_PRIVATE,
        ..Default::default()
    };
    // SAFETY: the path is the empty NUL-terminated string; `private` lives across the call.
    unsafe { raw::mount_setattr(root.0, EMPTY.as_ptr(), libc::AT_EMPTY_PATH as u32, &private) }
        .map_err(at(Op::RootPrivate))
}

/// Our copy of the host's mounts shares propagation with the host until this.
fn make_private() -> Result<(), Failure> {
    set_propagation(libc::MS_REC | libc::MS_PRIVATE, Op::MakePrivate)
}

/// `mount(2)` of the propagation `flags` (`MS_PRIVATE`, `MS_SHARED`, ..., maybe `MS_REC`) on
/// `/`.
fn set_propagation(flags: libc::c_ulong, op: Op) -> Result<(), Failure> {
    let null = std::ptr::null();
    // SAFETY: the target is a NUL-terminated string; the other pointers are null.
    unsafe { raw::mount(null, c"/".as_ptr(), null, flags, null.cast()) }.map_err(at(op))
}

/// The overlay of the layers and the writable layer (if any), detached. Every host
/// directory of it (the layers, a persistent upper) is opened before its scratch tmpfs is
/// attached on the host's `/` (a `..` at the process's root would walk into it); that tmpfs
/// then stays below the new root and leaves with the old one (see `assemble`).
fn overlay(o: &Overlay) -> Result<Fd, Failure> {
    if matches!(o.method, LowerMethod::Append) {
        if let Some(mnt) = overlay_append(o)? {
            return Ok(mnt);
        }
    }
    overlay_legacy(o)
}

/// Opens the lower layer `i` (top first) of `o`.
fn open_lower(o: &Overlay, i: usize) -> Result<Fd, Failure> {
    let path = o
        .lowers
        .get(i)
        .ok_or((Op::OverlayConfig as u32, Errno::EINVAL))?;
    open(libc::AT_FDCWD, path, O_PATH_DIR, 0, 0)
        .map_err(|errno| (layer_step(LOWER_OPEN_STEP, i), errno))
}

fn layer_step(base: u32, i: usize) -> u32 {
    base.saturating_add(u32::try_from(i).unwrap_or(u32::MAX))
}

/// The permission bits of the top layer's root (`lower`): the scratch upper directory gets
/// them, as it becomes the overlay's root directory.
fn top_mode(lower: c_int) -> Result<u32, Failure> {
    let stx = raw::fstatx(lower, libc::STATX_MODE).map_err(at(Op::StatLower))?;
    Ok(u32::from(stx.stx_mode) & 0o7777)
}

/// A tmpfs attached on top of `/` (for `/proc/self/fd/N` paths into it; it leaves with the
/// old root after `pivot_root`, overlayfs holding its own reference to the layers) with `upper`
/// (mode `mode`, see [`top_mode`]) and `work`.
fn scratch_upper(size: Option<&CStr>, mode: u32) -> Result<Fd, Failure> {
    let scratch = tmpfs(size, c"700", 0, SCRATCH_OPS)?;
    attach_on_slash(scratch.0, Op::ScratchAttach)?;
    for (name, mode) in [(c"upper", mode), (c"work", 0o700)] {
        // SAFETY: `name` is a NUL-terminated string.
        unsafe { raw::mkdirat(scratch.0, name.as_ptr(), mode) }.map_err(at(Op::MakeLayerDir))?;
    }
    Ok(scratch)
}

/// A persistent upper layer's directories, opened here (in the container's namespace).
fn open_upper(upper: &CStr, work: &CStr) -> Result<(Fd, Fd), Failure> {
    let up = open(libc::AT_FDCWD, upper, O_PATH_DIR, 0, 0).map_err(at(Op::OpenUpper))?;
    let wk = open(libc::AT_FDCWD, work, O_PATH_DIR, 0, 0).map_err(at(Op::OpenWork))?;
    Ok((up, wk))
}

/// The overlay through `fsconfig`, one `lowerdir+` per layer (Linux 6.7, which resolves
/// each path at once, so every layer's descriptor is closed right after); `None` when the
/// kernel refuses the key (`EINVAL` for the first layer): the caller falls back to mount(2).
fn overlay_append(o: &Overlay) -> Result<Option<Fd>, Failure> {
    // SAFETY: the type is a NUL-terminated string.
    let fs = Fd(
        unsafe { raw::fsopen(c"overlay".as_ptr(), raw::FSOPEN_CLOEXEC) }
            .map_err(at(Op::OverlayOpen))?,
    );
    set_string(fs.0, c"source", c"overlay".as_ptr(), Op::OverlayConfig)?;
    let mut mode = 0o755;
    for i in 0..o.lowers.len() {
        let lower = open_lower(o, i)?;
        if i == 0 && matches!(o.upper, Some(Upper::Scratch { .. })) {
            mode = top_mode(lower.0)?;
        }
        let path = FdPath::new(lower.0, b"");
        match set_string(fs.0, c"lowerdir+", path.as_ptr(), Op::OverlayConfig) {
            Ok(()) => {}
            Err((_, Errno::EINVAL)) if i == 0 => return Ok(None),
            Err((_, errno)) => return Err((layer_step(LOWER_STEP, i), errno)),
        }
    }
    // The layers are resolved: now the scratch tmpfs may go on `/`. Held until the superblock
    // exists.
    let (_scratch, _dirs) = match &o.upper {
        Some(Upper::Scratch { size }) => {
            let scratch = scratch_upper(size.as_deref(), mode)?;
            let up = FdPath::new(scratch.0, b"/upper");
            let work = FdPath::new(scratch.0, b"/work");
            set_string(fs.0, c"upperdir", up.as_ptr(), Op::OverlayConfig)?;
            set_string(fs.0, c"workdir", work.as_ptr(), Op::OverlayConfig)?;
            (Some(scratch), None)
        }
        Some(Upper::Dir { upper, work, .. }) => {
            let (up, wk) = open_upper(upper, work)?;
            let (up_path, wk_path) = (FdPath::new(up.0, b""), FdPath::new(wk.0, b""));
            set_string(fs.0, c"upperdir", up_path.as_ptr(), Op::OverlayConfig)?;
            set_string(fs.0, c"workdir", wk_path.as_ptr(), Op::OverlayConfig)?;
            (None, Some((up, wk)))
        }
        None => (None, None),
    };
    for (key, value) in UNTRUSTED_LOWER_OPTIONS {
        set_string(fs.0, key, value.as_ptr(), Op::OverlayConfig)?;
    }
    if o.userxattr {
        // user.overlay.* instead of trusted.overlay.* (a user namespace cannot use trusted.*).
        set_flag(fs.0, c"userxattr", Op::OverlayConfig)?;
    }
    create(fs.0, Op::OverlayCreate)?;
    let attrs = if o.upper.is_none() {
        raw::MOUNT_ATTR_RDONLY as u32
    } else {
        0
    };
    let mnt = raw::fsmount(fs.0, raw::FSMOUNT_CLOEXEC, attrs).map_err(at(Op::OverlayMount))?;
    Ok(Some(Fd(mnt)))
}

/// The descriptors of the lower layers for the legacy method, closed on drop.
struct LowerFds {
    fds: [c_int; OVL_MAX_STACK],
    len: usize,
}

impl Drop for LowerFds {
    fn drop(&mut self) {
        for fd in self.fds.iter().take(self.len) {
            drop(Fd(*fd));
        }
    }
}

/// The overlay through one `mount(2)` (kernels without `lowerdir+`): the data names the
/// layers by descriptor number relative to `/proc/self/fd`, this process's working
/// directory for the call. Mounted on a directory of a scratch tmpfs (the writable layer's,
/// or one of its own) and cloned off it, so that the result is detached as `fsmount`'s is;
/// the scratch tmpfs, with the first mount in it, leaves with the old root after
/// `pivot_root`. Every layer (and a persistent upper) is opened before that tmpfs is
/// attached.
fn overlay_legacy(o: &Overlay) -> Result<Fd, Failure> {
    let mut data = Data::new();
    data.push(&o.legacy_head);
    // Open until mount(2) has parsed the data.
    let mut lowers = LowerFds {
        fds: [-1; OVL_MAX_STACK],
        len: 0,
    };
    for i in 0..o.lowers.len() {
        let fd = open_lower(o, i)?;
        let Some(slot) = lowers.fds.get_mut(i) else {
            return Err((Op::LegacyMount as u32, Errno::E2BIG));
        };
        *slot = fd.0;
        std::mem::forget(fd);
        lowers.len = i + 1;
        if i > 0 {
            data.push(b":");
        }
        data.push_number(*slot);
    }
    let dirs = match &o.upper {
        Some(Upper::Dir { upper, work, .. }) => Some(open_upper(upper, work)?),
        _ => None,
    };
    let dir = match &o.upper {
        Some(Upper::Scratch { size }) => {
            let mode = top_mode(lowers.fds.first().copied().unwrap_or(-1))?;
            let scratch = scratch_upper(size.as_deref(), mode)?;
            data.push_upper(scratch.0, b"/upper", scratch.0, b"/work");
            scratch
        }
        _ => {
            let own = tmpfs(None, c"700", 0, SCRATCH_OPS)?;
            attach_on_slash(own.0, Op::ScratchAttach)?;
            if let Some((up, wk)) = &dirs {
                data.push_upper(up.0, b"", wk.0, b"");
            }
            own
        }
    };
    // SAFETY: the name is a NUL-terminated string.
    unsafe { raw::mkdirat(dir.0, c"merged".as_ptr(), 0o700) }.map_err(at(Op::MakeLayerDir))?;
    let target = FdPath::new(dir.0, b"/merged");
    let data = data.finish().map_err(at(Op::LegacyMount))?;
    let flags = if o.upper.is_none() {
        libc::MS_RDONLY
    } else {
        0
    };
    let cwd = open(libc::AT_FDCWD, c".", O_PATH_DIR, 0, 0).map_err(at(Op::SaveCwd))?;
    // SAFETY: the path is a NUL-terminated string.
    unsafe { raw::chdir(c"/proc/self/fd".as_ptr()) }.map_err(at(Op::ChdirFds))?;
    // SAFETY: all four are NUL-terminated strings (`data` lives across the call).
    let mounted = unsafe {
        raw::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            flags,
            data.cast(),
        )
    };
    let back = raw::fchdir(cwd.0);
    mounted.map_err(at(Op::LegacyMount))?;
    back.map_err(at(Op::RestoreCwd))?;
    drop(lowers);
    drop(dirs);
    let flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC;
    // SAFETY: the path is a NUL-terminated stack buffer.
    let tree = Fd(
        unsafe { raw::open_tree(libc::AT_FDCWD, target.as_ptr(), flags) }
            .map_err(at(Op::CloneOverlay))?,
    );
    Ok(tree)
}

/// The `mount(2)` data of [`overlay_legacy`], built on the stack: one page at most.
struct Data {
    buf: [u8; LEGACY_DATA_MAX + 1],
    len: usize,
    overflow: bool,
}

impl Data {
    fn new() -> Data {
        Data {
            buf: [0; LEGACY_DATA_MAX + 1],
            len: 0,
            overflow: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > LEGACY_DATA_MAX {
            self.overflow = true;
            return;
        }
        for (slot, byte) in self.buf.iter_mut().skip(self.len).zip(bytes) {
            *slot = *byte;
        }
        self.len += bytes.len();
    }

    /// `n` in decimal.
    fn push_number(&mut self, n: c_int) {
        let mut digits = [0u8; 10];
        let mut n = n.unsigned_abs();
        let mut start = digits.len();
        while start > 0 {
            start -= 1;
            if let Some(d) = digits.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(digits.get(start..).unwrap_or_default());
    }

    /// `,upperdir=U<upper>,workdir=W<work>`.
    fn push_upper(&mut self, upper: c_int, upper_sfx: &[u8], work: c_int, work_sfx: &[u8]) {
        self.push(b",upperdir=");
        self.push_number(upper);
        self.push(upper_sfx);
        self.push(b",workdir=");
        self.push_number(work);
        self.push(work_sfx);
    }

    /// The NUL-terminated data, or `E2BIG` when it did not fit (the kernel would cut it).
    fn finish(&mut self) -> Result<*const c_char, Errno> {
        if self.overflow {
            return Err(Errno::E2BIG);
        }
        match self.buf.get_mut(self.len) {
            Some(nul) => *nul = 0,
            None => return Err(Errno::E2BIG),
        }
        Ok(self.buf.as_ptr().cast())
    }

    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Step {
    /// `etc`: the attached tmpfs of the `/etc` files (-1 without them).
    fn apply<'a>(
        &'a self,
        root: c_int,
        null: &mut Option<Fd>,
        parent: &mut ParentDir<'a>,
        etc: c_int,
        go_fd: c_int,
    ) -> Result<(), Failure> {
        if !matches!(
            self,
            Step::Dir { .. } | Step::Symlink { .. } | Step::Device { .. }
        ) {
            parent.open = None;
        }
        match self {
            Step::Mount { mount, early, .. } => mount_early(mount, early, root),
            Step::Dir {
                parent: dir,
                name,
                mode,
            } => {
                let dir = parent.get(root, dir)?;
                // SAFETY: `name` is a NUL-terminated string.
                unsafe { raw::mkdirat(dir, name.as_ptr(), *mode) }.map_err(at(Op::Mkdir))
            }
            Step::Symlink {
                parent: dir,
                name,
                target,
            } => {
                let dir = parent.get(root, dir)?;
                // SAFETY: both are NUL-terminated strings.
                unsafe { raw::symlinkat(target.as_ptr(), dir, name.as_ptr()) }
                    .map_err(at(Op::Symlink))
            }
            Step::Device {
                parent: dir,
                name,
                rdev,
                mode,
                owner,
                mknod,
                bind,
                early,
            } => {
                if *mknod {
                    let dir = parent.get(root, dir)?;
                    // SAFETY: `name` is a NUL-terminated string.
                    match unsafe { raw::mknodat(dir, name.as_ptr(), *mode, *rdev) } {
                        Ok(()) => {
                            if let Some((uid, gid)) = *owner {
                                crate::sys::fs::fchownat(
                                    dir,
                                    name,
                                    uid,
                                    gid,
                                    libc::AT_SYMLINK_NOFOLLOW,
                                )
                                .map_err(at(Op::DeviceChown))?;
                            }
                            return Ok(());
                        }
                        // No CAP_MKNOD: bind the host's node instead.
                        Err(Errno::EPERM) if bind.is_some() => {}
                        Err(errno) => return Err((Op::Mknod as u32, errno)),
                    }
                }
                // A mount (on the node's file, not on the directory): forget it all the same.
                parent.open = None;
                // Only from the source opened before anything was stacked on the host's `/`.
                match (bind, early.take()) {
                    (Some(bind), Some(fd)) => bind.apply_from(root, fd.0).map_err(mount_failure),
                    _ => Err((Op::Mknod as u32, Errno::EPERM)),
                }
            }
            Step::Mask(path) => mask(root, path, null),
            Step::ReadOnly(path) => read_only(root, path),
            Step::Etc(files) => files.apply(root, etc, go_fd),
        }
    }
}

/// Makes `mount` inside `root`: one that resolves host paths only from what
/// [`EarlyMounts`] began (without it, `EBADF`), any other as it is.
fn mount_early(mount: &PreparedMount, early: &EarlyFd, root: c_int) -> Result<(), Failure> {
    let fd = early.take();
    let result = match fd {
        None if !mount.resolves_host_paths() => {
            // SAFETY: `root` is open for the whole assembly (owned by `assemble`).
            mount.apply_in(Some(unsafe { BorrowedFd::borrow_raw(root) }))
        }
        _ => mount.apply_from(root, fd.as_ref().map_or(-1, |fd| fd.0)),
    };
    result.map_err(mount_failure)
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

#[cfg(test)]
mod tests {
    use super::Data;
    use crate::rootfs::layers::{legacy_head, LEGACY_DATA_MAX};

    #[test]
    fn legacy_data_names_layers_by_descriptor_top_first() {
        let mut d = Data::new();
        d.push(&legacy_head(true));
        for (i, fd) in [12, 13, 140].into_iter().enumerate() {
            if i > 0 {
                d.push(b":");
            }
            d.push_number(fd);
        }
        d.push_upper(7, b"/upper", 7, b"/work");
        assert_eq!(
            d.bytes(),
            b"index=off,redirect_dir=nofollow,metacopy=off,userxattr,lowerdir=12:13:140,\
              upperdir=7/upper,workdir=7/work"
        );
        assert!(d.finish().is_ok());
        let mut d = Data::new();
        d.push_number(0);
        d.push(b",");
        d.push_number(i32::MAX);
        assert_eq!(d.bytes(), b"0,2147483647");
    }

    #[test]
    fn five_hundred_layers_fit_a_page_and_more_than_a_page_is_e2big() {
        let mut d = Data::new();
        d.push(&legacy_head(true));
        for fd in 10_000..10_500 {
            d.push_number(fd);
            d.push(b":");
        }
        d.push_upper(99_999, b"/upper", 99_999, b"/work");
        assert!(d.finish().is_ok());
        let mut d = Data::new();
        for _ in 0..=LEGACY_DATA_MAX / 8 {
            d.push(b"1234567:");
        }
        assert_eq!(d.finish().unwrap_err(), crate::Errno::E2BIG);
    }
}
