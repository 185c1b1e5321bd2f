//! Applying a [`PreparedMount`]: raw system calls only.
//!
//! Everything in this file may run in a child created with `CLONE_VM`, between `clone` and
//! `execve`: it does not allocate, lock, format, panic on any input, or call libc. It uses only
//! the strings and flags built by [`Mount::prepare`](super::Mount::prepare), its own stack, and
//! `crate::sys::mount`, whose wrappers return errors without touching `errno`. Descriptors are
//! raw and closed with a raw `close` (see [`Fd`]).

use crate::sys::FdPath;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::c_int;

use super::{MountError, MountStep, Op, PreparedMount};
use crate::sys::mount as raw;
use crate::Errno;

/// A descriptor owned by this file's code, closed with the raw syscall on drop.
pub(crate) struct Fd(pub(crate) c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from the kernel in this file and is not used after this.
        let _ = unsafe { raw::close(self.0) };
    }
}

const EMPTY: &CStr = c"";
const O_PATH: u64 = (libc::O_PATH | libc::O_CLOEXEC) as u64;
const IN_ROOT: u64 = raw::RESOLVE_IN_ROOT | raw::RESOLVE_NO_MAGICLINKS;

/// A bind's source: its host path, or a descriptor opened from it earlier.
#[derive(Clone, Copy)]
enum Source<'a> {
    Path(&'a CStr),
    Fd(c_int),
}

fn fail(step: MountStep) -> impl Fn(Errno) -> MountError {
    move |errno| MountError { step, errno }
}

/// `openat2(dfd, path, flags, mode, resolve)` wrapped in an [`Fd`].
pub(crate) fn open(
    dfd: c_int,
    path: &CStr,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> Result<Fd, Errno> {
    let how = raw::OpenHow {
        flags,
        mode,
        resolve,
    };
    // SAFETY: `path` is a NUL-terminated string borrowed for the call.
    unsafe { raw::openat2(dfd, path.as_ptr(), &how) }.map(Fd)
}

impl PreparedMount {
    /// Performs the mount, with the target resolved inside the directory `root` (or inside `/`
    /// when `None`), creating a missing mount point if the mount asks for it.
    ///
    /// Allocation-free and async-signal-safe: it only makes raw system calls (no libc, no
    /// `errno`), so it may run in a child created with `CLONE_VM` between `clone` and `execve`.
    ///
    /// `root` must be a directory in the calling process's mount namespace: a child in a new
    /// mount namespace has to open it itself (a descriptor opened by the parent before the
    /// clone points into the parent's namespace, and the kernel refuses with `EINVAL`), and
    /// must reopen it after mounting anything on it.
    ///
    /// If a step after the mount was attached fails (flags, propagation), the new mount is
    /// detached again (best effort, through `/proc/self/fd`).
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// use contain::mount::Mount;
    /// use contain::Bytes;
    ///
    /// let prepared = Mount::tmpfs("/tmp").size(Bytes::mib(1)).prepare()?; // in the parent
    /// let rootfs = std::fs::File::open("/var/lib/c1/rootfs")?;   // in the child: raw openat2
    /// prepared.apply_in(Some(rootfs.as_fd())).map_err(|e| prepared.error(e))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`MountError`]: the [`MountStep`] that failed and the kernel's errno; turn it into an
    /// [`Error`](crate::Error) with [`PreparedMount::error`]. The usual ones: `ENOENT` from
    /// [`MountStep::OpenTree`]/[`MountStep::OpenSource`] (no bind source) or
    /// [`MountStep::ResolveTarget`] (no mount point, and none to be created); `EROFS` from
    /// [`MountStep::CreateDir`]/[`MountStep::CreateFile`] on a read-only root; `ENOTDIR`/`EISDIR`
    /// from [`MountStep::TargetType`]; `EPERM` from the mount steps without `CAP_SYS_ADMIN` in the
    /// mount namespace's user namespace; `EINVAL` when `root` is not in the caller's mount
    /// namespace; `ENOSYS` before Linux 5.6 (`openat2`), or from [`MountStep::SetAttr`] for a
    /// recursive bind with flags before Linux 5.12 (`mount_setattr`).
    pub fn apply_in(&self, root: Option<BorrowedFd<'_>>) -> Result<(), MountError> {
        let own_root;
        let root = match root {
            Some(fd) => fd.as_raw_fd(),
            None => {
                let flags = O_PATH | libc::O_DIRECTORY as u64;
                own_root =
                    open(libc::AT_FDCWD, c"/", flags, 0, 0).map_err(fail(MountStep::OpenRoot))?;
                own_root.0
            }
        };
        match &self.op {
            Op::Bind { source, recursive } => self.bind(root, Source::Path(source), *recursive),
            Op::New {
                fstype,
                source,
                data,
                params,
            } => self.new_fs(root, fstype, source, data.as_deref(), params),
        }
    }

    /// Puts `tree`, a detached mount the caller made itself (an `open_tree(OPEN_TREE_CLONE)`
    /// copy), onto this mount's target inside `root`, as [`apply_in`](Self::apply_in) does for
    /// a bind: the flags go on the detached copy, the target is resolved inside `root` (and
    /// created if the mount asks for it: a directory or a file, as `tree` is), then
    /// `move_mount`. Allocation-free, like `apply_in`.
    pub(crate) fn attach_tree(&self, root: c_int, tree: c_int) -> Result<(), MountError> {
        let dir = is_dir(tree)?;
        if self.has_attrs() {
            self.setattr(tree, false)?;
        }
        let target = self.resolve_target(root, dir)?;
        // SAFETY: both paths are the empty NUL-terminated string.
        unsafe { raw::move_mount(tree, EMPTY.as_ptr(), target.0, EMPTY.as_ptr(), MOVE_EMPTY) }
            .map_err(fail(MountStep::MoveMount))?;
        self.finish(tree, true)
    }

    fn has_attrs(&self) -> bool {
        self.attr.attr_set != 0 || self.attr.attr_clr != 0
    }

    /// Everything of the mount that names a host path, done now, for
    /// [`apply_from`](Self::apply_from) to finish later: a bind's source opened (`open_tree`
    /// without a clone: an `O_PATH` descriptor, with an automount on the way triggered as a
    /// path lookup of the bind would), a new filesystem created and detached (`fsopen`,
    /// `fsconfig`, `fsmount`: an overlay's `lowerdir`, `upperdir` and `workdir` are host
    /// paths, resolved as the filesystem is configured). Meant for the mounts that
    /// [`resolve host paths`](Self::resolves_host_paths); any other new filesystem is created
    /// at its turn, so that the container's mounts are numbered (and listed in
    /// `/proc/self/mountinfo`, Linux 6.8+) in the order they are made, the root first.
    ///
    /// The rootfs assembly does this for every such mount before it stacks anything on the
    /// host's `/`: a `..` at the process's root walks into whatever is stacked there (the kernel's
    /// `follow_dotdot` stays at the root, then steps into the mounts on it), so a host path
    /// through a symlink with a `..` from `/` resolved later would lead into the image.
    pub(crate) fn open_early(&self) -> Result<Fd, MountError> {
        match &self.op {
            Op::Bind { source, .. } => {
                let flags = raw::OPEN_TREE_CLOEXEC;
                // SAFETY: `source` is a NUL-terminated string borrowed for the call.
                match unsafe { raw::open_tree(libc::AT_FDCWD, source.as_ptr(), flags) } {
                    Ok(fd) => Ok(Fd(fd)),
                    Err(Errno::ENOSYS) => open(libc::AT_FDCWD, source, O_PATH, 0, 0)
                        .map_err(fail(MountStep::OpenSource)),
                    Err(errno) => Err(MountError {
                        step: MountStep::OpenTree,
                        errno,
                    }),
                }
            }
            Op::New {
                fstype,
                source,
                params,
                ..
            } => self.create(fstype, source, params),
        }
    }

    /// Finishes inside `root` what [`open_early`](Self::open_early) began with `early`: a bind
    /// from its source's descriptor, a new filesystem attached. Given -1, it fails with
    /// `EBADF`.
    pub(crate) fn apply_from(&self, root: c_int, early: c_int) -> Result<(), MountError> {
        match &self.op {
            Op::Bind { recursive, .. } => self.bind(root, Source::Fd(early), *recursive),
            Op::New { .. } => self.attach_new(root, early),
        }
    }

    fn bind(&self, root: c_int, source: Source<'_>, recursive: bool) -> Result<(), MountError> {
        let rec = if recursive { raw::AT_RECURSIVE } else { 0 };
        let flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC | rec;
        let (dfd, path, flags) = match source {
            Source::Path(path) => (libc::AT_FDCWD, path, flags),
            Source::Fd(fd) => (fd, EMPTY, flags | libc::AT_EMPTY_PATH as u32),
        };
        // SAFETY: `path` is a NUL-terminated string borrowed for the call.
        match unsafe { raw::open_tree(dfd, path.as_ptr(), flags) } {
            Ok(tree) => {
                let tree = Fd(tree);
                let dir = is_dir(tree.0)?;
                // Flags go on the detached copy, so it is never visible without them.
                let mut attrs_done = !self.has_attrs();
                if !attrs_done {
                    match self.setattr(tree.0, recursive) {
                        Ok(()) => attrs_done = true,
                        Err(e) if e.errno == Errno::ENOSYS && !recursive => {}
                        Err(e) => return Err(e),
                    }
                }
                let target = self.resolve_target(root, dir)?;
                let to = target.0;
                // SAFETY: both paths are the empty NUL-terminated string.
                unsafe { raw::move_mount(tree.0, EMPTY.as_ptr(), to, EMPTY.as_ptr(), MOVE_EMPTY) }
                    .map_err(fail(MountStep::MoveMount))?;
                // `tree` now refers to the attached mount.
                self.finish(tree.0, attrs_done)
            }
            Err(Errno::ENOSYS) => {
                if self.has_attrs() && recursive && !have_mount_setattr() {
                    return Err(MountError {
                        step: MountStep::SetAttr,
                        errno: Errno::ENOSYS,
                    });
                }
                let own;
                let src = match source {
                    Source::Path(path) => {
                        own = open(libc::AT_FDCWD, path, O_PATH, 0, 0)
                            .map_err(fail(MountStep::OpenSource))?;
                        own.0
                    }
                    Source::Fd(fd) => fd,
                };
                let target = self.resolve_target(root, is_dir(src)?)?;
                let mut flags = libc::MS_BIND;
                if recursive {
                    flags |= libc::MS_REC;
                }
                // Mount the very inode that was checked, onto the very inode that was resolved.
                let (from, to) = (FdPath::new(src, b""), FdPath::new(target.0, b""));
                // SAFETY: both paths are NUL-terminated stack buffers; the others are null.
                unsafe {
                    raw::mount(
                        from.as_ptr(),
                        to.as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    )
                }
                .map_err(fail(MountStep::Mount))?;
                let mnt = self.reopen_new_mount(root)?;
                self.finish(mnt.0, !self.has_attrs())
            }
            Err(errno) => Err(MountError {
                step: MountStep::OpenTree,
                errno,
            }),
        }
    }

    fn new_fs(
        &self,
        root: c_int,
        fstype: &CStr,
        source: &CStr,
        data: Option<&CStr>,
        params: &[(std::ffi::CString, Option<std::ffi::CString>)],
    ) -> Result<(), MountError> {
        match self.create(fstype, source, params) {
            Ok(mnt) => self.attach_new(root, mnt.0),
            Err(MountError {
                step: MountStep::FsOpen,
                errno: Errno::ENOSYS,
            }) => {
                let target = self.resolve_target(root, true)?;
                let to = FdPath::new(target.0, b"");
                let data = data.map_or(std::ptr::null(), CStr::as_ptr);
                // SAFETY: source, target, fstype and data are NUL-terminated strings (data may be
                // null), all live for the call.
                unsafe {
                    raw::mount(
                        source.as_ptr(),
                        to.as_ptr(),
                        fstype.as_ptr(),
                        self.ms_flags,
                        data.cast(),
                    )
                }
                .map_err(fail(MountStep::Mount))?;
                if self.propagation.is_none() {
                    return Ok(());
                }
                let mnt = self.reopen_new_mount(root)?;
                self.finish(mnt.0, true)
            }
            Err(e) => Err(e),
        }
    }

    /// A new filesystem of `fstype`, configured and detached (`fsopen`, `fsconfig`,
    /// `fsmount`), with the mount's flags.
    fn create(
        &self,
        fstype: &CStr,
        source: &CStr,
        params: &[(std::ffi::CString, Option<std::ffi::CString>)],
    ) -> Result<Fd, MountError> {
        // SAFETY: `fstype` is a NUL-terminated string borrowed for the call.
        let fs = Fd(unsafe { raw::fsopen(fstype.as_ptr(), raw::FSOPEN_CLOEXEC) }
            .map_err(fail(MountStep::FsOpen))?);
        let set = |key: &CStr, value: Option<&CStr>| {
            let (cmd, value) = match value {
                Some(v) => (raw::FSCONFIG_SET_STRING, v.as_ptr()),
                None => (raw::FSCONFIG_SET_FLAG, std::ptr::null()),
            };
            // SAFETY: key and value are NUL-terminated strings (or a null value for a flag)
            // borrowed for the call.
            unsafe { raw::fsconfig(fs.0, cmd, key.as_ptr(), value.cast(), 0) }
                .map_err(fail(MountStep::FsConfig))
        };
        set(c"source", Some(source))?;
        for (key, value) in params {
            set(key, value.as_deref())?;
        }
        raw::fsconfig_create(fs.0).map_err(fail(MountStep::FsCreate))?;
        // The flag values of fsmount's attr_flags are the MOUNT_ATTR_* bits (all < 2^32).
        let attrs = self.attr.attr_set as u32;
        raw::fsmount(fs.0, raw::FSMOUNT_CLOEXEC, attrs)
            .map(Fd)
            .map_err(fail(MountStep::FsMount))
    }

    /// Attaches `mnt`, a new filesystem from [`create`](Self::create), on the mount point
    /// inside `root` (resolved, maybe created, only now), then sets its propagation.
    fn attach_new(&self, root: c_int, mnt: c_int) -> Result<(), MountError> {
        let target = self.resolve_target(root, true)?;
        // SAFETY: both paths are the empty NUL-terminated string.
        unsafe { raw::move_mount(mnt, EMPTY.as_ptr(), target.0, EMPTY.as_ptr(), MOVE_EMPTY) }
            .map_err(fail(MountStep::MoveMount))?;
        self.finish(mnt, true)
    }

    /// After the mount is attached: the flags (if not done yet) and the propagation. On
    /// failure the new mount is detached again.
    fn finish(&self, mnt: c_int, attrs_done: bool) -> Result<(), MountError> {
        let result = self.finish_inner(mnt, attrs_done);
        if result.is_err() {
            let path = FdPath::new(mnt, b"");
            // No UMOUNT_NOFOLLOW: the magic link must be followed to the mount.
            let flags = libc::MNT_DETACH as usize;
            // SAFETY: `path` is a NUL-terminated stack buffer. Best effort: the error that
            // matters is the one being returned.
            let _ = unsafe {
                crate::sys::syscall3(libc::SYS_umount2, path.as_ptr() as usize, flags, 0)
            };
        }
        result
    }

    fn finish_inner(&self, mnt: c_int, attrs_done: bool) -> Result<(), MountError> {
        if !attrs_done {
            let recursive = matches!(
                self.op,
                Op::Bind {
                    recursive: true,
                    ..
                }
            );
            match self.setattr(mnt, recursive) {
                Err(e) if e.errno == Errno::ENOSYS && !recursive => self.remount(mnt)?,
                other => other?,
            }
        }
        if let Some((propagation, recursive)) = self.propagation {
            let attr = raw::MountAttr {
                propagation,
                ..Default::default()
            };
            let flags = libc::AT_EMPTY_PATH as u32 | if recursive { raw::AT_RECURSIVE } else { 0 };
            // SAFETY: the path is the empty NUL-terminated string.
            match unsafe { raw::mount_setattr(mnt, EMPTY.as_ptr(), flags, &attr) } {
                Ok(()) => {}
                Err(Errno::ENOSYS) => {
                    let path = FdPath::new(mnt, b"");
                    let flags = propagation | if recursive { libc::MS_REC } else { 0 };
                    let null = std::ptr::null();
                    // SAFETY: the target is a NUL-terminated stack buffer; the rest are null.
                    unsafe { raw::mount(null, path.as_ptr(), null, flags, null.cast()) }
                        .map_err(fail(MountStep::SetPropagationLegacy))?;
                }
                Err(errno) => {
                    return Err(MountError {
                        step: MountStep::SetPropagation,
                        errno,
                    })
                }
            }
        }
        Ok(())
    }

    /// `mount_setattr` of the prepared flags on `mnt` (and its submounts if `recursive`).
    fn setattr(&self, mnt: c_int, recursive: bool) -> Result<(), MountError> {
        let flags = libc::AT_EMPTY_PATH as u32 | if recursive { raw::AT_RECURSIVE } else { 0 };
        // SAFETY: the path is the empty NUL-terminated string.
        unsafe { raw::mount_setattr(mnt, EMPTY.as_ptr(), flags, &self.attr) }
            .map_err(fail(MountStep::SetAttr))
    }

    /// Applies the flags to the top mount of a bind with `MS_REMOUNT | MS_BIND`, keeping the
    /// flags it already has: the kernel refuses (`EPERM`) to clear flags that are locked (a bind
    /// made in a user namespace of a `nosuid` mount must stay `nosuid`).
    fn remount(&self, mnt: c_int) -> Result<(), MountError> {
        let st = raw::fstatfs(mnt).map_err(fail(MountStep::StatFs))?;
        let have = st.f_flags as u64;
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND | self.ms_flags;
        for (st_flag, ms_flag) in [
            (libc::ST_RDONLY, libc::MS_RDONLY),
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (ST_NOSYMFOLLOW, libc::MS_NOSYMFOLLOW),
        ] {
            if have & st_flag != 0 {
                flags |= ms_flag;
            }
        }
        if self.attr.attr_clr & raw::MOUNT_ATTR__ATIME == 0 {
            // Keep the atime mode; remount would otherwise reset it to relatime.
            flags |= if have & libc::ST_NOATIME != 0 {
                libc::MS_NOATIME
            } else if have & libc::ST_RELATIME != 0 {
                libc::MS_RELATIME
            } else {
                libc::MS_STRICTATIME
            };
        }
        let path = FdPath::new(mnt, b"");
        let null = std::ptr::null();
        // SAFETY: the target is a NUL-terminated stack buffer; the rest are null.
        unsafe { raw::mount(null, path.as_ptr(), null, flags, null.cast()) }
            .map_err(fail(MountStep::Remount))
    }

    /// Reopens the target after `mount(2)` put something on it: the path now resolves to the
    /// root of the new mount.
    fn reopen_new_mount(&self, root: c_int) -> Result<Fd, MountError> {
        open(root, &self.target_rel, O_PATH, 0, IN_ROOT).map_err(fail(MountStep::ResolveTarget))
    }

    /// Opens the target inside `root` (`O_PATH`), creating it if it is missing and the mount
    /// asks for it (see [`create_in_root`]), and checks that its type fits the mount: a
    /// directory for a directory source or a new filesystem (`dir`), a non-directory for a
    /// file source ([`MountStep::TargetType`]; the kernel would only say `EINVAL`).
    fn resolve_target(&self, root: c_int, dir: bool) -> Result<Fd, MountError> {
        let fd = match open(root, &self.target_rel, O_PATH, 0, IN_ROOT) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if self.create => create_in_root(root, &self.target_rel, dir, None)?,
            Err(errno) => {
                return Err(MountError {
                    step: MountStep::ResolveTarget,
                    errno,
                })
            }
        };
        let stx = raw::fstatx(fd.0, libc::STATX_TYPE).map_err(fail(MountStep::StatTarget))?;
        let target_dir = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
        match (dir, target_dir) {
            (true, false) => Err(MountError {
                step: MountStep::TargetType,
                errno: Errno::ENOTDIR,
            }),
            (false, true) => Err(MountError {
                step: MountStep::TargetType,
                errno: Errno::EISDIR,
            }),
            _ => Ok(fd),
        }
    }
}

/// `PATH_MAX`: the longest path (with its NUL) the walk in [`create_in_root`] handles.
const PATH_MAX: usize = libc::PATH_MAX as usize;
/// Symlinks followed in one walk at most, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: u32 = 40;

/// A path on the stack, always NUL-terminated after `len` bytes.
struct StackPath {
    bytes: [u8; PATH_MAX],
    len: usize,
}

impl StackPath {
    fn new() -> StackPath {
        StackPath {
            bytes: [0; PATH_MAX],
            len: 0,
        }
    }

    /// Appends raw bytes; `ENAMETOOLONG` if they do not fit with the NUL.
    fn append(&mut self, b: &[u8]) -> Result<(), Errno> {
        let end = self.len + b.len();
        if end >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.bytes[self.len..end].copy_from_slice(b);
        self.bytes[end] = 0;
        self.len = end;
        Ok(())
    }

    /// Appends one component, with a `/` before it unless the path is empty.
    fn push(&mut self, name: &[u8]) -> Result<(), Errno> {
        if self.len > 0 {
            self.append(b"/")?;
        }
        self.append(name)
    }

    fn truncate(&mut self, len: usize) {
        self.len = len;
        self.bytes[len] = 0;
    }

    /// Drops the last component (nothing at the root: `..` stops there).
    fn pop(&mut self) {
        let cut = self.bytes[..self.len]
            .iter()
            .rposition(|&b| b == b'/')
            .unwrap_or(0);
        self.truncate(cut);
    }

    /// The path for `openat2` relative to the root: `.` when empty.
    fn c_str(&self) -> &CStr {
        if self.len == 0 {
            return c".";
        }
        CStr::from_bytes_until_nul(&self.bytes[..=self.len]).unwrap_or(c".")
    }

    /// The bytes from `from` to the end, with the NUL, as a C string.
    fn c_str_from(&self, from: usize) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes[from..=self.len]).unwrap_or(c".")
    }
}

/// Creates the missing mount point `rel` inside `root` and opens it (`O_PATH`): a directory
/// if `dir`, else an empty file (mode 0644), with every missing directory on the way (0755).
///
/// Walks the path one component at a time as `openat2(RESOLVE_IN_ROOT)` would: a symlink
/// in the image (`/etc/localtime -> /usr/share/zoneinfo/Etc/UTC`, which the image may not
/// ship) is read and followed *inside the root*, an absolute target from the root, `..`
/// stopping at the root, at most [`MAX_LINKS`] links, so that the missing target is created
/// where the container will see it, never outside. Every open and creation is relative to a
/// descriptor resolved with `RESOLVE_IN_ROOT`, so even a tree that changes under the walk
/// cannot send it out. No allocation: three `PATH_MAX` buffers on the stack.
///
/// `owner`: (uid, gid) to give each created entry to (`u32::MAX` leaves one unchanged), as
/// for a working directory created for the container's user.
pub(crate) fn create_in_root(
    root: c_int,
    rel: &CStr,
    dir: bool,
    owner: Option<(u32, u32)>,
) -> Result<Fd, MountError> {
    let resolve = fail(MountStep::ResolveTarget);
    // The resolved prefix (no symlinks left in it), relative to the root.
    let mut done = StackPath::new();
    // What is left to walk, from `pos` on; a symlink's target is put in front of it.
    let mut rest = StackPath::new();
    let mut spare = StackPath::new();
    rest.append(rel.to_bytes()).map_err(&resolve)?;
    let mut pos = 0;
    let mut links = 0;
    loop {
        while pos < rest.len && rest.bytes[pos] == b'/' {
            pos += 1;
        }
        if pos >= rest.len {
            break;
        }
        let end = rest.bytes[pos..rest.len]
            .iter()
            .position(|&b| b == b'/')
            .map_or(rest.len, |i| pos + i);
        let name = &rest.bytes[pos..end];
        let last = rest.bytes[end..rest.len].iter().all(|&b| b == b'/');
        let next = end;
        if name == b"." {
            pos = next;
            continue;
        }
        if name == b".." {
            done.pop();
            pos = next;
            continue;
        }
        let parent_len = done.len;
        done.push(name).map_err(&resolve)?;
        pos = next;
        let nofollow = O_PATH | libc::O_NOFOLLOW as u64;
        match open(root, done.c_str(), nofollow, 0, IN_ROOT) {
            Ok(fd) => {
                let stx =
                    raw::fstatx(fd.0, libc::STATX_TYPE).map_err(fail(MountStep::StatTarget))?;
                if u32::from(stx.stx_mode) & libc::S_IFMT != libc::S_IFLNK {
                    continue; // A directory (or, last, anything): walk on.
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(resolve(Errno::ELOOP));
                }
                // The link's target, then what was left after it.
                let n = raw::readlink_fd(fd.0, &mut spare.bytes[..PATH_MAX - 1])
                    .map_err(fail(MountStep::ReadLink))?;
                if n == 0 {
                    return Err(resolve(Errno::ENOENT));
                }
                spare.truncate(n);
                spare.append(b"/").map_err(&resolve)?;
                spare.append(&rest.bytes[pos..rest.len]).map_err(&resolve)?;
                std::mem::swap(&mut rest, &mut spare);
                pos = 0;
                // Relative to the link's directory; absolute: from the container's root.
                done.truncate(parent_len);
                if rest.bytes[0] == b'/' {
                    done.truncate(0);
                }
            }
            Err(Errno::ENOENT) => {
                let name_at = if parent_len == 0 { 0 } else { parent_len + 1 };
                // The parent: `done` cut at its last '/' for the call (`.` at the root).
                let o_dir = O_PATH | libc::O_DIRECTORY as u64;
                let parent = if parent_len == 0 {
                    open(root, c".", o_dir, 0, IN_ROOT)
                } else {
                    done.bytes[parent_len] = 0;
                    let p = CStr::from_bytes_until_nul(&done.bytes[..=parent_len]).unwrap_or(c".");
                    let fd = open(root, p, o_dir, 0, IN_ROOT);
                    done.bytes[parent_len] = b'/';
                    fd
                }
                .map_err(&resolve)?;
                let name = done.c_str_from(name_at);
                if last && !dir {
                    let flags = (libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_RDONLY
                        | libc::O_NONBLOCK
                        | libc::O_NOCTTY
                        | libc::O_CLOEXEC) as u64;
                    // A single component below a directory resolved in the root.
                    match open(parent.0, name, flags, 0o644, IN_ROOT) {
                        Ok(_) | Err(Errno::EEXIST) => {}
                        Err(errno) => {
                            return Err(MountError {
                                step: MountStep::CreateFile,
                                errno,
                            })
                        }
                    }
                } else {
                    mkdir(parent.0, name)?;
                }
                if let Some((uid, gid)) = owner {
                    // SAFETY: fchownat of the entry just made below a descriptor resolved in
                    // the root; a NUL-terminated name, integer ids, no following of links.
                    unsafe {
                        crate::sys::syscall6(
                            libc::SYS_fchownat,
                            parent.0 as usize,
                            name.as_ptr() as usize,
                            uid as usize,
                            gid as usize,
                            libc::AT_SYMLINK_NOFOLLOW as usize,
                            0,
                        )
                    }
                    .map_err(fail(MountStep::Chown))?;
                }
            }
            Err(errno) => return Err(resolve(errno)),
        }
    }
    open(root, done.c_str(), O_PATH, 0, IN_ROOT).map_err(resolve)
}

const MOVE_EMPTY: u32 = raw::MOVE_MOUNT_F_EMPTY_PATH | raw::MOVE_MOUNT_T_EMPTY_PATH;
const ST_NOSYMFOLLOW: u64 = 0x2000;

/// `mkdirat(at, name, 0755)`; an existing entry is fine (the caller reopens and checks it).
fn mkdir(at: c_int, name: &CStr) -> Result<(), MountError> {
    // SAFETY: `name` is a NUL-terminated string borrowed for the call.
    match unsafe { raw::mkdirat(at, name.as_ptr(), 0o755) } {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(MountError {
            step: MountStep::CreateDir,
            errno,
        }),
    }
}

/// Whether the descriptor is a directory (decides the type of a missing mount point).
fn is_dir(fd: c_int) -> Result<bool, MountError> {
    let stx = raw::fstatx(fd, libc::STATX_TYPE).map_err(fail(MountStep::StatSource))?;
    Ok(u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR)
}

/// Whether the kernel has `mount_setattr(2)`: a call with a bad descriptor fails with `EBADF`
/// (or `EINVAL`) where it exists and `ENOSYS` where it does not.
fn have_mount_setattr() -> bool {
    let attr = raw::MountAttr::default();
    // SAFETY: the path is the empty NUL-terminated string; fd -1 makes the call fail.
    let r = unsafe { raw::mount_setattr(-1, EMPTY.as_ptr(), libc::AT_EMPTY_PATH as u32, &attr) };
    r != Err(Errno::ENOSYS)
}
