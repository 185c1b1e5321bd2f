//! Applying a layer's tar to a layer directory: every write is an `*at` call on a directory
//! descriptor opened with `openat2(2)` inside the layer, never through a symbolic link, and
//! whiteouts become what overlayfs takes as whiteouts.
//!
//! Runtime authors can apply layers themselves with [`unpack`]; [`Store`](super::Store) uses
//! it for every layer it imports.
//!
//! # What an entry may be
//! Names are taken as the tar has them (PAX `path`, GNU long names of any length), then split
//! on `/`; empty and `.` components are dropped. Refused, with an
//! [`Error::Image`] of kind [`ImageErrorKind::UnsafeEntry`] naming the entry (nothing of it
//! is written):
//! - a `..` component anywhere, an absolute name (`/etc/x`; tar tools strip the `/` when they
//!   write, so a layer that keeps it was not made by one: refused rather than joined under
//!   the root as containerd does), a NUL byte;
//! - an entry for the layer's root (`.`, `./`, `/`) that is not a directory;
//! - a name whose parent is a symbolic link (in this layer: layers never need to write through
//!   one; `RESOLVE_NO_SYMLINKS` on every parent), or that passes through a whiteout name;
//! - a hard link to a directory, to an absolute or `..` target, or through a symlink;
//! - `.wh.` with an empty name, `.wh..`, `.wh...`.
//!
//! A malformed tar is [`ImageErrorKind::Malformed`] (so is an entry whose PAX `path` or
//! `linkpath` and GNU long name or link differ: GNU tar reads the one, Go's `archive/tar`
//! the other; an empty PAX value deletes its record, the header's field stands); a tar entry type or format this module
//! does not read (PAX-format sparse files, GNU volume headers) is
//! [`ImageErrorKind::Unsupported`].
//!
//! # Replacing
//! A name that exists already (a duplicate in the tar, or in [`Apply::Flatten`] a file of a
//! lower layer) is replaced as the OCI image spec says ("Changeset over existing files"): a
//! directory over a directory keeps its contents and takes the new attributes; anything else
//! is removed (a directory recursively, without following any symlink) and created fresh.
//! Nothing is ever written, chmod-ed or chown-ed through a symlink: files are created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, metadata is set on descriptors or with
//! `AT_SYMLINK_NOFOLLOW` (the shapes of RUSTSEC-2018-0002, RUSTSEC-2021-0080 and
//! RUSTSEC-2026-0067). A parent that is neither a directory nor a symlink (a file `a`, then
//! `a/b`) is replaced by a directory, as umoci does.
//!
//! # Metadata
//! Owners with `lchown` semantics when [`UnpackOptions::chown`] (else the caller's), then the
//! mode (setuid, setgid and sticky kept; not for symlinks), then xattrs (`SCHILY.xattr.*`;
//! `chown` clears `security.capability`, so they come after it), then access and modification
//! times (PAX sub-second times kept, an mtime of 0 stays 0; the access time is the PAX
//! `atime` or else the mtime). Directories get their mode and times at the end, after their
//! children (so that a read-only directory can be filled without privilege).
//!
//! Xattrs named `trusted.overlay.*` or `user.overlay.*` are dropped and counted
//! ([`UnpackStats::overlay_xattrs_stripped`]): overlayfs would act on them (hide, redirect).
//! `user.*` xattrs on symlinks and special files are dropped (the kernel allows them on
//! regular files and directories only), and so are those on a filesystem without `user.*`
//! xattrs (`ENOTSUP`: tmpfs before Linux 6.6); without `chown` (rootless) an xattr the
//! kernel refuses (`EPERM`, `EACCES`, `ENOTSUP`: `security.*`, `trusted.*`) is dropped too;
//! all counted in [`UnpackStats::xattrs_skipped`].
//!
//! Device nodes are created only with `chown` (they need `CAP_MKNOD`); otherwise skipped and
//! counted. FIFOs are created. Sparse files (GNU type `S`) are written with holes. Global PAX
//! headers are ignored. Top-level AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, ...) is
//! ignored.
//!
//! # Whiteouts
//! `.wh..wh..opq` (matched before the `.wh.` prefix) makes its directory opaque wherever it
//! appears in the tar; `.wh.NAME` deletes NAME of the layers below (OCI image spec, layer.md
//! "Whiteouts"). With [`Apply::Layer`]:
//! - `.wh.NAME` becomes a 0/0 character device NAME (also unprivileged, Linux 5.8);
//! - `.wh..wh..opq` sets `trusted.overlay.opaque=y` and `user.overlay.opaque=y`
//!   ([`OverlayFlavour::Trusted`]) or the latter only ([`OverlayFlavour::User`]).
//!
//! With [`Apply::Flatten`] they remove what the layers below put in the directory.
//!
//! Whiteouts hide the layers *below* only. A `.wh.NAME` for a NAME this layer also writes
//! keeps this layer's NAME; when that NAME is a directory, the directory is made opaque
//! (whichever comes first in the tar): that is a directory deleted and recreated in one
//! layer, and the lower directory's contents must not show through.
//!
//! # Parents
//! A parent directory missing from the tar is made. With [`Apply::Layer`] it then takes the
//! owner, mode, xattrs and times of the directory it stands for in the layers below (from
//! [`Lowers`], the first layer that shows it), as containerd does: in an overlay the upper
//! directory's attributes win, so a plain 0755 `tmp/` over the base's 1777 one would change
//! the image. Without a lower directory (or with [`Apply::Flatten`], where the lower one is
//! there already) it is 0755, owned by the caller.
//!
//! # Hard links
//! The target is looked up in this layer first. When it is not there, [`Lowers`] gives the
//! layers below (in [`Apply::Layer`] mode), and the target is taken from the first that has
//! it (a whiteout or an opaque directory above hides it), copied up into this layer (its
//! content with `copy_file_range`, owner, mode, xattrs and times) and linked there
//! ([`UnpackStats::hardlinks_copied`]). A link to a symlink links the symlink.
//!
//! # The stream
//! The tar is read to the end of the stream, past its end-of-archive blocks (the store's
//! digest covers all of it). A tar without end blocks, even one whose last entry lacks its
//! padding (umoci 0.4.7 `insert` layers), is accepted. GNU long names, long links and PAX
//! headers are limited to 1 MiB each. No file is fsync-ed (the store syncs the filesystem
//! once per layer).

mod stream;

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use self::stream::{Entry, Kind, Stream, StreamError, Time};
use super::OverlayFlavour;
use crate::error::ImageErrorKind;
use crate::sys::fs as sysfs;
use crate::sys::mount::{
    RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};
use crate::{Errno, Error, Result};

/// How a layer is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Into its own empty directory, one overlay lower: `.wh.X` becomes a 0/0 character
    /// device, `.wh..wh..opq` the opaque xattr(s) of the flavour.
    Layer(OverlayFlavour),
    /// Onto a directory that already holds the layers below (flattening): `.wh.X` removes X,
    /// `.wh..wh..opq` removes what the directory held before this layer.
    Flatten,
}

/// Options of [`unpack`].
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// How whiteouts are applied.
    pub apply: Apply,
    /// Set owners from the headers (`lchown`, needs `CAP_CHOWN`) and create device nodes
    /// (`CAP_MKNOD`): what root does. Otherwise files keep the caller's ids (rootless),
    /// device nodes are skipped and counted, and xattrs the kernel refuses are skipped and
    /// counted.
    pub chown: bool,
}

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackStats {
    /// Entries applied (whiteouts included; skipped device nodes and ignored AUFS metadata
    /// not).
    pub entries: u64,
    /// Bytes of file content written (the data regions of sparse files).
    pub bytes: u64,
    /// Device nodes not created (without [`UnpackOptions::chown`]).
    pub devices_skipped: u64,
    /// `trusted.overlay.*` and `user.overlay.*` xattrs dropped.
    pub overlay_xattrs_stripped: u64,
    /// Other xattrs not set: `user.*` on symlinks and special files or on a filesystem
    /// without `user.*` xattrs (tmpfs before Linux 6.6), and, without
    /// [`UnpackOptions::chown`], those the kernel refused (`security.*`, `trusted.*`).
    pub xattrs_skipped: u64,
    /// Hard links whose target was in a lower layer (copied up).
    pub hardlinks_copied: u64,
}

/// The layers below, top first, opened on first need (the caller may have to wait for them
/// to be committed): only a hard link into a lower layer, or a directory that this layer
/// fills without an entry of its own (see [the module documentation](self), "Parents"),
/// needs them; most layers never call it. Each is a directory
/// descriptor of a layer unpacked with [`Apply::Layer`] (whiteouts as character devices,
/// opaque directories as xattrs). Called at most once per [`unpack`].
pub type Lowers<'a> = &'a mut dyn FnMut() -> Result<Vec<OwnedFd>>;

/// Applies the tar read from `tar` (uncompressed) to the directory `dir`, and reads `tar` to
/// its end. See the [module documentation](self) for what is applied and how.
///
/// `dir` is the layer's directory (any descriptor of it, `O_PATH` included); for
/// [`Apply::Layer`] it should be empty. Entries are never written outside it.
///
/// # Errors
/// - [`Error::Image`] naming the entry (`entry`; `object` is left empty for the caller):
///   [`ImageErrorKind::UnsafeEntry`] for a hostile entry, [`ImageErrorKind::Malformed`] for
///   a malformed tar or a hard link to a missing file, [`ImageErrorKind::Unsupported`] for a
///   tar feature not handled.
/// - [`Error::Sys`] for a failed syscall, its path the entry's inside the layer (e.g.
///   `ENOSPC`, or `ENOTSUP` for the `user.overlay.opaque` of [`OverlayFlavour::User`] on a
///   filesystem without `user.*` xattrs: tmpfs before Linux 6.6).
/// - What `lowers` returns; errors of `tar` as [`Error::Sys`] (`read`) or, when the reader
///   carries a [`crate::Error`] in its `io::Error`, that error.
///
/// Partial output is left in `dir` on error: the caller unpacks into a temporary directory.
pub fn unpack(
    tar: &mut dyn Read,
    dir: BorrowedFd<'_>,
    lowers: Lowers<'_>,
    opts: UnpackOptions,
) -> Result<UnpackStats> {
    let root = sysfs::openat(dir.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| Error::sys_path("openat", ".", e))?;
    let mut u = Unpacker {
        root,
        opts,
        lowers,
        lower_fds: None,
        stats: UnpackStats::default(),
        written: HashSet::new(),
        touched: HashSet::new(),
        whiteouts: HashSet::new(),
        dirs: HashMap::new(),
        cache: None,
        buf: vec![0u8; 256 * 1024],
    };
    let mut stream = Stream::new(tar);
    loop {
        let entry = match stream.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(stream_error(e)),
        };
        u.apply(entry, &mut stream)?;
    }
    stream.drain().map_err(stream_error)?;
    u.finish()?;
    Ok(u.stats)
}

/// A [`StreamError`] as the crate's error.
fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Io(e) => io_error(e),
        StreamError::Malformed(name, reason) => {
            image_err(ImageErrorKind::Malformed, name.as_deref(), reason)
        }
        StreamError::Unsupported(name, reason) => {
            image_err(ImageErrorKind::Unsupported, name.as_deref(), reason)
        }
    }
}

/// An error of the tar's reader: the crate's own error when it carries one (a digest
/// check), the errno when there is one, else a malformed stream (a corrupt gzip).
fn io_error(e: std::io::Error) -> Error {
    if let Some(n) = e.raw_os_error() {
        return Error::sys("read", Errno::from_raw(n));
    }
    let malformed = |why: String| {
        Error::image(
            ImageErrorKind::Malformed,
            "",
            format!("reading the layer: {why}"),
        )
    };
    let msg = e.to_string();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(ours)) => *ours,
        Some(Err(other)) => malformed(other.to_string()),
        None => malformed(msg),
    }
}

/// An [`Error::Image`] about `entry`.
fn image_err(kind: ImageErrorKind, entry: Option<&[u8]>, reason: impl Into<String>) -> Error {
    Error::Image {
        kind,
        object: String::new(),
        entry: entry.map(|n| PathBuf::from(OsStr::from_bytes(n))),
        reason: reason.into(),
    }
}

fn unsafe_entry(entry: &[u8], reason: impl Into<String>) -> Error {
    image_err(ImageErrorKind::UnsafeEntry, Some(entry), reason)
}

/// A failed syscall on `path` (inside the layer).
fn sys(syscall: &'static str, path: &[u8], e: Errno) -> Error {
    Error::sys_path(syscall, PathBuf::from(OsStr::from_bytes(path)), e)
}

fn cstr(b: &[u8]) -> CString {
    // Names were checked for NUL bytes when they were split.
    CString::new(b).unwrap_or_default()
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    if !parent.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The longest name accepted, `PATH_MAX` with its NUL: no real file is deeper, and it bounds
/// how deep the recursive removals of whiteouts and replacements go.
const NAME_MAX_BYTES: usize = 4095;

/// The components of an entry name: empty and `.` components dropped; `..`, an absolute
/// name and NUL refused (the reason is returned), and names longer than `PATH_MAX`
/// ([`ImageErrorKind::Unsupported`]). An empty list is the root.
fn components(name: &[u8]) -> std::result::Result<Vec<&[u8]>, (ImageErrorKind, &'static str)> {
    let unsafe_name = |why| Err((ImageErrorKind::UnsafeEntry, why));
    if name.contains(&0) {
        return unsafe_name("the name holds a NUL byte");
    }
    let comps: Vec<&[u8]> = name
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.iter().any(|c| *c == b"..") {
        return unsafe_name("a '..' component");
    }
    if name.starts_with(b"/") && !comps.is_empty() {
        return unsafe_name("an absolute name");
    }
    if comps.iter().map(|c| c.len() + 1).sum::<usize>() > NAME_MAX_BYTES + 1 {
        return Err((
            ImageErrorKind::Unsupported,
            "a name longer than PATH_MAX (4096 bytes)",
        ));
    }
    Ok(comps)
}

const WH: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const AUFS_META: &[u8] = b".wh..wh.";

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

fn timespec(t: Time) -> libc::timespec {
    libc::timespec {
        tv_sec: t.sec as libc::time_t,
        tv_nsec: t.nsec as libc::c_long,
    }
}

/// Mode and times a directory gets at the end.
struct DirMeta {
    mode: u32,
    /// `[atime, mtime]`; `None` for a directory made only as a parent.
    times: Option<[libc::timespec; 2]>,
    /// Made only as a parent where this layer had nothing: takes the attributes of the
    /// directory of a lower layer it stands for ([`Apply::Layer`]).
    inherit: bool,
}

/// Where xattrs go.
enum XattrTarget<'a> {
    /// A regular file or directory open for it.
    Fd(RawFd),
    /// `name` in the directory `parent` (symlinks, special files), not followed.
    At(RawFd, &'a CStr),
}

struct Unpacker<'l> {
    /// The layer's directory, opened for reading (xattrs, mode of the root).
    root: OwnedFd,
    opts: UnpackOptions,
    lowers: &'l mut dyn FnMut() -> Result<Vec<OwnedFd>>,
    lower_fds: Option<Vec<OwnedFd>>,
    stats: UnpackStats,
    /// Paths (`a/b`, no leading `/`) this layer wrote: entries and the parents it made.
    written: HashSet<Vec<u8>>,
    /// Directories on the way to what this layer wrote (kept by an opaque directory when
    /// flattening).
    touched: HashSet<Vec<u8>>,
    /// Whiteouts this layer made ([`Apply::Layer`]).
    whiteouts: HashSet<Vec<u8>>,
    /// Directories to give their mode and times at the end.
    dirs: HashMap<Vec<u8>, DirMeta>,
    /// The last parent directory opened (entries of one directory come together).
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn apply(&mut self, e: Entry, stream: &mut Stream<'_>) -> Result<()> {
        let comps =
            components(&e.name).map_err(|(kind, why)| image_err(kind, Some(&e.name), why))?;
        let Some((base, parents)) = comps.split_last() else {
            if e.kind != Kind::Dir {
                return Err(unsafe_entry(
                    &e.name,
                    format!(
                        "the layer's root as a {:?}: only a directory may be",
                        e.kind
                    ),
                ));
            }
            return self.root_dir(&e);
        };
        if comps[0].starts_with(AUFS_META) && !(comps.len() == 1 && *base == OPAQUE) {
            // AUFS hard-link and metadata directories (moby skips them too).
            return Ok(());
        }
        if let Some(c) = parents.iter().find(|c| c.starts_with(WH)) {
            return Err(unsafe_entry(
                &e.name,
                format!(
                    "a path through the whiteout name {:?}",
                    String::from_utf8_lossy(c)
                ),
            ));
        }
        let parent_path = parents.join(&b'/');
        if *base == OPAQUE {
            self.stats.entries += 1;
            return self.opaque(&e.name, parents, &parent_path);
        }
        if let Some(target) = base.strip_prefix(WH) {
            if target.is_empty() || target == b"." || target == b".." || target.starts_with(WH) {
                return Err(unsafe_entry(&e.name, "a whiteout without a valid name"));
            }
            self.stats.entries += 1;
            return self.whiteout(&e.name, parents, &parent_path, target);
        }
        let path = join(&parent_path, base);
        match e.kind {
            Kind::HardLink => self.hardlink(&e, parents, &parent_path, base, &path)?,
            Kind::Char | Kind::Block if !self.opts.chown => {
                self.stats.devices_skipped += 1;
                return Ok(());
            }
            _ => self.create(&e, stream, parents, &parent_path, base, &path)?,
        }
        self.stats.entries += 1;
        self.written.insert(path);
        Ok(())
    }

    /// Opens the parent directory `comps` inside the layer, making what is missing; never
    /// through a symlink.
    fn parent(&mut self, entry: &[u8], comps: &[&[u8]], path: &[u8]) -> Result<Rc<OwnedFd>> {
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == path {
                return Ok(fd.clone());
            }
        }
        let fd = if comps.is_empty() {
            sysfs::openat(
                self.root.as_raw_fd(),
                c".",
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
            .map_err(|e| sys("openat", b".", e))?
        } else {
            match sysfs::openat2(
                self.root.as_raw_fd(),
                &cstr(path),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                    self.make_parent(entry, comps)?
                }
                Err(e) => return Err(sys("openat2", path, e)),
            }
        };
        if !self.touched.contains(path) {
            for i in 0..=comps.len() {
                self.touched.insert(comps[..i].join(&b'/'));
            }
        }
        if !self.opts.chown {
            self.make_writable(fd.as_raw_fd(), path)?;
        }
        let fd = Rc::new(fd);
        self.cache = Some((path.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Without privilege, a directory that is not writable by its owner (a lower layer's
    /// 0555 when flattening) cannot take new entries: it is made writable now and gets its
    /// mode and times back at the end.
    fn make_writable(&mut self, fd: RawFd, path: &[u8]) -> Result<()> {
        if self.opts.chown {
            // CAP_DAC_OVERRIDE.
            return Ok(());
        }
        let st = sysfs::fstat(fd).map_err(|e| sys("fstat", path, e))?;
        if st.st_mode & 0o700 == 0o700 {
            return Ok(());
        }
        sysfs::fchmod(fd, (st.st_mode & 0o7777) | 0o700).map_err(|e| sys("fchmod", path, e))?;
        // A directory of this layer has its mode and times recorded already.
        self.dirs.entry(path.to_vec()).or_insert(DirMeta {
            mode: st.st_mode & 0o7777,
            times: Some(stat_times(&st)),
            inherit: false,
        });
        Ok(())
    }

    /// The slow way of [`Unpacker::parent`]: one component at a time, making missing
    /// directories, replacing a whiteout or a file by a directory, refusing a symlink.
    fn make_parent(&mut self, entry: &[u8], comps: &[&[u8]]) -> Result<OwnedFd> {
        self.cache = None;
        let mut cur = sysfs::openat(
            self.root.as_raw_fd(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| sys("openat", b".", e))?;
        let mut path: Vec<u8> = Vec::new();
        for comp in comps {
            let cur_path = std::mem::take(&mut path);
            path = join(&cur_path, comp);
            let name = cstr(comp);
            let open = |cur: &OwnedFd| {
                sysfs::openat2(
                    cur.as_raw_fd(),
                    &name,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
                )
            };
            let next = match open(&cur) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    self.make_writable(cur.as_raw_fd(), &cur_path)?;
                    self.mkdir_parent(&cur, &name, &path, true)?;
                    open(&cur).map_err(|e| sys("openat2", &path, e))?
                }
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    let st = sysfs::lstatat(cur.as_raw_fd(), &name)
                        .map_err(|e| sys("fstatat", &path, e))?;
                    let Some(st) = st else {
                        return Err(sys("openat2", &path, Errno::ENOENT));
                    };
                    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                        return Err(unsafe_entry(
                            entry,
                            format!(
                                "its parent {:?} is a symbolic link",
                                String::from_utf8_lossy(&path)
                            ),
                        ));
                    }
                    // A whiteout this layer made (`.wh.d`, then `d/x`): the directory is
                    // deleted below and recreated here, so opaque. Any other non-directory
                    // (a file `a`, then `a/b`) is replaced by a directory, as umoci does.
                    let was_whiteout = self.whiteouts.remove(&path);
                    self.make_writable(cur.as_raw_fd(), &cur_path)?;
                    sysfs::unlinkat(cur.as_raw_fd(), &name, 0)
                        .map_err(|e| sys("unlinkat", &path, e))?;
                    self.mkdir_parent(&cur, &name, &path, false)?;
                    let fd = open(&cur).map_err(|e| sys("openat2", &path, e))?;
                    if was_whiteout {
                        self.set_opaque(fd.as_raw_fd(), &path)?;
                    }
                    fd
                }
                Err(e) => return Err(sys("openat2", &path, e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Makes a missing parent directory (mode 0755 at the end, unless an entry for it
    /// follows).
    fn mkdir_parent(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        path: &[u8],
        inherit: bool,
    ) -> Result<()> {
        sysfs::mkdirat(dir.as_raw_fd(), name, 0o700).map_err(|e| sys("mkdirat", path, e))?;
        self.written.insert(path.to_vec());
        self.dirs.insert(
            path.to_vec(),
            DirMeta {
                mode: 0o755,
                times: None,
                inherit,
            },
        );
        Ok(())
    }

    /// An entry for the root directory itself: its owner, xattrs, and at the end mode and
    /// times.
    fn root_dir(&mut self, e: &Entry) -> Result<()> {
        let fd = sysfs::openat(
            self.root.as_raw_fd(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(|err| sys("openat", b".", err))?;
        self.chown_fd(fd.as_raw_fd(), e, b".")?;
        self.xattrs(XattrTarget::Fd(fd.as_raw_fd()), e, false, b".")?;
        self.dirs.insert(
            Vec::new(),
            DirMeta {
                mode: e.mode,
                times: Some(self.times(e)),
                inherit: false,
            },
        );
        self.stats.entries += 1;
        Ok(())
    }

    fn times(&self, e: &Entry) -> [libc::timespec; 2] {
        [timespec(e.atime.unwrap_or(e.mtime)), timespec(e.mtime)]
    }

    /// Creates a file, directory, symlink, device or FIFO `base` in `parents`.
    fn create(
        &mut self,
        e: &Entry,
        stream: &mut Stream<'_>,
        parents: &[&[u8]],
        parent_path: &[u8],
        base: &[u8],
        path: &[u8],
    ) -> Result<()> {
        let parent = self.parent(&e.name, parents, parent_path)?;
        let pfd = parent.as_raw_fd();
        let name = cstr(base);
        let existing = sysfs::lstatat(pfd, &name).map_err(|err| sys("fstatat", path, err))?;
        let mut replaced_whiteout = false;
        if let Some(st) = existing {
            if !(e.kind == Kind::Dir && is_dir(&st)) {
                replaced_whiteout = self.whiteouts.remove(path);
                remove(pfd, &name, path)?;
            }
        }
        match e.kind {
            Kind::Dir => {
                if existing.is_none_or(|st| !is_dir(&st)) {
                    sysfs::mkdirat(pfd, &name, 0o700).map_err(|err| sys("mkdirat", path, err))?;
                }
                let fd = sysfs::openat(
                    pfd,
                    &name,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|err| sys("openat", path, err))?;
                self.chown_fd(fd.as_raw_fd(), e, path)?;
                self.xattrs(XattrTarget::Fd(fd.as_raw_fd()), e, false, path)?;
                if replaced_whiteout {
                    self.set_opaque(fd.as_raw_fd(), path)?;
                }
                self.dirs.insert(
                    path.to_vec(),
                    DirMeta {
                        mode: e.mode,
                        times: Some(self.times(e)),
                        inherit: false,
                    },
                );
            }
            Kind::File => {
                let fd = sysfs::openat(
                    pfd,
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(|err| sys("openat", path, err))?;
                let mut file = std::fs::File::from(fd);
                self.write_data(&mut file, e, stream, path)?;
                let fd = file;
                self.chown_fd(fd.as_raw_fd(), e, path)?;
                sysfs::fchmod(fd.as_raw_fd(), e.mode).map_err(|err| sys("fchmod", path, err))?;
                self.xattrs(XattrTarget::Fd(fd.as_raw_fd()), e, false, path)?;
                sysfs::futimens(fd.as_raw_fd(), &self.times(e))
                    .map_err(|err| sys("futimens", path, err))?;
            }
            Kind::Symlink => {
                if e.link.contains(&0) {
                    return Err(unsafe_entry(&e.name, "a symlink target with a NUL byte"));
                }
                sysfs::symlinkat(&cstr(&e.link), pfd, &name)
                    .map_err(|err| sys("symlinkat", path, err))?;
                self.meta_at(pfd, &name, e, true, path)?;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let (ty, dev) = match e.kind {
                    Kind::Char => (libc::S_IFCHR, libc::makedev(e.dev_major, e.dev_minor)),
                    Kind::Block => (libc::S_IFBLK, libc::makedev(e.dev_major, e.dev_minor)),
                    _ => (libc::S_IFIFO, 0),
                };
                match sysfs::mknodat(pfd, &name, ty | 0o600, dev) {
                    Ok(()) => {}
                    // Root of a user namespace has no CAP_MKNOD for devices (containerd
                    // skips them there too).
                    Err(Errno::EPERM) if e.kind != Kind::Fifo => {
                        self.stats.devices_skipped += 1;
                        return Ok(());
                    }
                    Err(err) => return Err(sys("mknodat", path, err)),
                }
                self.meta_at(pfd, &name, e, false, path)?;
            }
            // Made by Unpacker::hardlink; never dispatched here.
            Kind::HardLink => return self.hardlink(e, parents, parent_path, base, path),
        }
        Ok(())
    }

    /// Owner, mode (not for symlinks), xattrs and times of `name` in `pfd`, never followed.
    fn meta_at(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        e: &Entry,
        symlink: bool,
        path: &[u8],
    ) -> Result<()> {
        if self.opts.chown {
            let (uid, gid) = ids(e, path)?;
            sysfs::fchownat(pfd, name, uid, gid, libc::AT_SYMLINK_NOFOLLOW)
                .map_err(|err| sys("fchownat", path, err))?;
        }
        if !symlink {
            // No fchmodat(AT_SYMLINK_NOFOLLOW) before Linux 6.6 (fchmodat2): chmod through
            // an O_PATH descriptor of the node itself, checked not to be a symlink.
            let fd = sysfs::openat(pfd, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(|err| sys("openat", path, err))?;
            let st = sysfs::fstat(fd.as_raw_fd()).map_err(|err| sys("fstat", path, err))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(sys("chmod", path, Errno::ELOOP));
            }
            let proc =
                CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
            sysfs::chmod(&proc, e.mode).map_err(|err| sys("chmod", path, err))?;
        }
        self.xattrs(XattrTarget::At(pfd, name), e, true, path)?;
        sysfs::utimensat(pfd, name, &self.times(e), libc::AT_SYMLINK_NOFOLLOW)
            .map_err(|err| sys("utimensat", path, err))
    }

    fn chown_fd(&self, fd: RawFd, e: &Entry, path: &[u8]) -> Result<()> {
        if !self.opts.chown {
            return Ok(());
        }
        let (uid, gid) = ids(e, path)?;
        sysfs::fchownat(fd, c"", uid, gid, libc::AT_EMPTY_PATH)
            .map_err(|err| sys("fchown", path, err))
    }

    /// Sets the entry's xattrs, dropping `*.overlay.*` ones (and `user.*` ones on symlinks
    /// and special files, `special`); without `chown`, those the kernel refuses.
    fn xattrs(
        &mut self,
        target: XattrTarget<'_>,
        e: &Entry,
        special: bool,
        path: &[u8],
    ) -> Result<()> {
        for (key, value) in &e.xattrs {
            if key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.") {
                self.stats.overlay_xattrs_stripped += 1;
                continue;
            }
            if special && key.starts_with(b"user.") {
                self.stats.xattrs_skipped += 1;
                continue;
            }
            let k = cstr(key);
            let r = match &target {
                XattrTarget::Fd(fd) => sysfs::fsetxattr(*fd, &k, value),
                XattrTarget::At(pfd, name) => {
                    let mut p = format!("/proc/self/fd/{pfd}/").into_bytes();
                    p.extend_from_slice(name.to_bytes());
                    sysfs::lsetxattr(&cstr(&p), &k, value)
                }
            };
            match r {
                Ok(()) => {}
                Err(err) if self.skippable(key, err) => self.stats.xattrs_skipped += 1,
                Err(err) => {
                    return Err(Error::sys_path(
                        "setxattr",
                        PathBuf::from(format!(
                            "{} ({})",
                            String::from_utf8_lossy(path),
                            String::from_utf8_lossy(key)
                        )),
                        err,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Writes the entry's data (with holes for a sparse file).
    fn write_data(
        &mut self,
        file: &mut std::fs::File,
        e: &Entry,
        stream: &mut Stream<'_>,
        path: &[u8],
    ) -> Result<()> {
        let werr = |err: std::io::Error| {
            sys(
                "write",
                path,
                Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
            )
        };
        match &e.sparse {
            None => loop {
                let n = stream
                    .read_data(&mut self.buf, &e.name)
                    .map_err(stream_error)?;
                if n == 0 {
                    break;
                }
                file.write_all(&self.buf[..n]).map_err(werr)?;
                self.stats.bytes += n as u64;
            },
            Some(map) => {
                use std::os::unix::fs::FileExt;
                for &(off, len) in map {
                    let mut done = 0u64;
                    while done < len {
                        let want = (len - done).min(self.buf.len() as u64) as usize;
                        let n = stream
                            .read_data(&mut self.buf[..want], &e.name)
                            .map_err(stream_error)?;
                        if n == 0 {
                            return Err(image_err(
                                ImageErrorKind::Malformed,
                                Some(&e.name),
                                "sparse data ends early",
                            ));
                        }
                        file.write_all_at(&self.buf[..n], off + done)
                            .map_err(werr)?;
                        done += n as u64;
                        self.stats.bytes += n as u64;
                    }
                }
                file.set_len(e.size).map_err(|err| {
                    sys(
                        "ftruncate",
                        path,
                        Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// `.wh..wh..opq` in the directory `parents`.
    fn opaque(&mut self, entry: &[u8], parents: &[&[u8]], parent_path: &[u8]) -> Result<()> {
        let dir = self.parent(entry, parents, parent_path)?;
        match self.opts.apply {
            Apply::Layer(_) => self.set_opaque(dir.as_raw_fd(), parent_path),
            Apply::Flatten => self.clear_unwritten(dir.as_raw_fd(), parent_path),
        }
    }

    /// Marks the directory `fd` opaque ([`Apply::Layer`]), as the flavour says.
    ///
    /// The `user.overlay.opaque` of [`OverlayFlavour::Trusted`] is a courtesy to mounts
    /// with `userxattr`; a filesystem without `user.*` xattrs (tmpfs before Linux 6.6) goes
    /// without it. For [`OverlayFlavour::User`] it is the marker: an error there.
    fn set_opaque(&mut self, fd: RawFd, path: &[u8]) -> Result<()> {
        let Apply::Layer(flavour) = self.opts.apply else {
            return Ok(());
        };
        if flavour == OverlayFlavour::Trusted {
            sysfs::fsetxattr(fd, c"trusted.overlay.opaque", b"y")
                .map_err(|e| sys("fsetxattr trusted.overlay.opaque", path, e))?;
        }
        match sysfs::fsetxattr(fd, c"user.overlay.opaque", b"y") {
            Err(Errno::EOPNOTSUPP) if flavour == OverlayFlavour::Trusted => Ok(()),
            r => r.map_err(|e| sys("fsetxattr user.overlay.opaque", path, e)),
        }
    }

    /// Whether an xattr the kernel refused is skipped (and counted) rather than an error:
    /// without privilege, whatever it refuses (`security.*`, `trusted.*`); with it, `user.*`
    /// where the filesystem has none (tmpfs before Linux 6.6).
    fn skippable(&self, key: &[u8], e: Errno) -> bool {
        match e {
            Errno::EPERM | Errno::EACCES | Errno::EOPNOTSUPP if !self.opts.chown => true,
            Errno::EOPNOTSUPP => key.starts_with(b"user."),
            _ => false,
        }
    }

    /// Removes every child of the directory `fd` (at `path`) that this layer did not write,
    /// keeping the directories on the way to what it wrote (and clearing them in turn).
    fn clear_unwritten(&mut self, fd: RawFd, path: &[u8]) -> Result<()> {
        self.make_writable(fd, path)?;
        for child in list(fd, path)? {
            let cpath = join(path, child.to_bytes());
            if self.touched.contains(&cpath) {
                let sub = sysfs::openat(
                    fd,
                    &child,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                );
                if let Ok(sub) = sub {
                    self.clear_unwritten(sub.as_raw_fd(), &cpath)?;
                    continue;
                }
            }
            if self.written.contains(&cpath) {
                continue;
            }
            remove(fd, &child, &cpath)?;
        }
        Ok(())
    }

    /// `.wh.NAME` in `parents`.
    fn whiteout(
        &mut self,
        entry: &[u8],
        parents: &[&[u8]],
        parent_path: &[u8],
        target: &[u8],
    ) -> Result<()> {
        let dir = self.parent(entry, parents, parent_path)?;
        let pfd = dir.as_raw_fd();
        let name = cstr(target);
        let path = join(parent_path, target);
        let existing = sysfs::lstatat(pfd, &name).map_err(|e| sys("fstatat", &path, e))?;
        if self.written.contains(&path) {
            // This layer's own NAME stays (whiteouts hide the layers below only); a
            // directory of this layer must still hide the lower one's contents.
            if let Some(st) = existing {
                if is_dir(&st) {
                    let sub = sysfs::openat(
                        pfd,
                        &name,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    )
                    .map_err(|e| sys("openat", &path, e))?;
                    match self.opts.apply {
                        Apply::Layer(_) => self.set_opaque(sub.as_raw_fd(), &path)?,
                        Apply::Flatten => self.clear_unwritten(sub.as_raw_fd(), &path)?,
                    }
                }
            }
            return Ok(());
        }
        match self.opts.apply {
            Apply::Layer(_) => {
                if existing.is_some() {
                    // A second whiteout for NAME.
                    return Ok(());
                }
                sysfs::mknodat(pfd, &name, libc::S_IFCHR, 0)
                    .map_err(|e| sys("mknodat (whiteout)", &path, e))?;
                self.whiteouts.insert(path);
            }
            Apply::Flatten => {
                if existing.is_some() {
                    remove(pfd, &name, &path)?;
                }
            }
        }
        Ok(())
    }

    /// A hard link `base` in `parents` to `e.link`.
    fn hardlink(
        &mut self,
        e: &Entry,
        parents: &[&[u8]],
        parent_path: &[u8],
        base: &[u8],
        path: &[u8],
    ) -> Result<()> {
        let tcomps = components(&e.link).map_err(|(kind, why)| {
            image_err(kind, Some(&e.name), format!("hard link target: {why}"))
        })?;
        let Some((tbase, tparents)) = tcomps.split_last() else {
            return Err(unsafe_entry(&e.name, "a hard link to the layer's root"));
        };
        if tcomps.iter().any(|c| c.starts_with(WH)) {
            return Err(unsafe_entry(&e.name, "a hard link to a whiteout name"));
        }
        let tparent_path = tparents.join(&b'/');
        let tpath = join(&tparent_path, tbase);
        let tname = cstr(tbase);
        // The target's directory in this layer, if it has it (never through a symlink).
        let tdir = match sysfs::openat2(
            self.root.as_raw_fd(),
            &cstr(if tparent_path.is_empty() {
                b"."
            } else {
                &tparent_path
            }),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        ) {
            Ok(fd) => Some(fd),
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                if symlink_on_the_way(self.root.as_raw_fd(), tparents)? {
                    return Err(unsafe_entry(
                        &e.name,
                        "a hard link target through a symbolic link",
                    ));
                }
                None
            }
            Err(err) => return Err(sys("openat2", &tpath, err)),
        };
        let tst = match &tdir {
            Some(d) => {
                sysfs::lstatat(d.as_raw_fd(), &tname).map_err(|err| sys("fstatat", &tpath, err))?
            }
            None => None,
        };
        let tdir = match (tdir, tst) {
            (_, Some(st)) if is_dir(&st) => {
                return Err(unsafe_entry(&e.name, "a hard link to a directory"))
            }
            (_, Some(st)) if is_whiteout(&st) && self.whiteouts.contains(&tpath) => {
                return Err(image_err(
                    ImageErrorKind::Malformed,
                    Some(&e.name),
                    "the hard link's target was deleted in this layer",
                ))
            }
            (Some(dir), Some(_)) => dir,
            _ => {
                if self.opts.apply == Apply::Flatten
                    || !self.copy_up(&e.name, tparents, &tparent_path, tbase, &tpath)?
                {
                    return Err(image_err(
                        ImageErrorKind::Malformed,
                        Some(&e.name),
                        format!(
                            "hard link target {:?} not found",
                            String::from_utf8_lossy(&e.link)
                        ),
                    ));
                }
                self.stats.hardlinks_copied += 1;
                // The copy's directory, as copy_up left it in the cache.
                let d = self.parent(&e.name, tparents, &tparent_path)?;
                sysfs::openat(d.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(|err| sys("openat", &tparent_path, err))?
            }
        };
        let parent = self.parent(&e.name, parents, parent_path)?;
        let pfd = parent.as_raw_fd();
        let name = cstr(base);
        if let Some(st) = sysfs::lstatat(pfd, &name).map_err(|err| sys("fstatat", path, err))? {
            let t = sysfs::lstatat(tdir.as_raw_fd(), &tname)
                .map_err(|err| sys("fstatat", &tpath, err))?;
            if t.is_some_and(|t| t.st_ino == st.st_ino && t.st_dev == st.st_dev) {
                return Ok(());
            }
            self.whiteouts.remove(path);
            remove(pfd, &name, path)?;
        }
        sysfs::linkat(tdir.as_raw_fd(), &tname, pfd, &name).map_err(|err| sys("linkat", path, err))
    }

    /// The layers below, opened on first use.
    fn lowers(&mut self) -> Result<&[OwnedFd]> {
        if self.lower_fds.is_none() {
            self.lower_fds = Some((self.lowers)()?);
        }
        Ok(self.lower_fds.as_deref().unwrap_or_default())
    }

    /// Copies `tpath` from the first layer below that shows it into this layer: `false` when
    /// none does (or this layer hides it).
    fn copy_up(
        &mut self,
        entry: &[u8],
        tparents: &[&[u8]],
        tparent_path: &[u8],
        tbase: &[u8],
        tpath: &[u8],
    ) -> Result<bool> {
        // This layer hides the lower ones' path when a directory on the way is opaque, or a
        // whiteout or a non-directory stands in for one.
        if matches!(
            hidden_in(self.root.as_raw_fd(), tparents)?,
            Visible::Hidden | Visible::LastLayer
        ) {
            return Ok(false);
        }
        let tname = cstr(tbase);
        let mut source: Option<(OwnedFd, libc::stat)> = None;
        let lowers: Vec<RawFd> = self.lowers()?.iter().map(AsRawFd::as_raw_fd).collect();
        for lower in lowers {
            let vis = hidden_in(lower, tparents)?;
            if vis == Visible::Hidden {
                return Ok(false);
            }
            if vis != Visible::Missing {
                let dir =
                    open_dir_in(lower, tparent_path).map_err(|err| sys("openat2", tpath, err))?;
                if let Some(st) = sysfs::lstatat(dir.as_raw_fd(), &tname)
                    .map_err(|err| sys("fstatat", tpath, err))?
                {
                    if is_whiteout(&st) {
                        return Ok(false);
                    }
                    if is_dir(&st) {
                        return Err(unsafe_entry(entry, "a hard link to a directory"));
                    }
                    source = Some((dir, st));
                    break;
                }
            }
            if vis == Visible::LastLayer {
                return Ok(false);
            }
        }
        let Some((sdir, st)) = source else {
            return Ok(false);
        };
        let dir = self.parent(entry, tparents, tparent_path)?;
        let dfd = dir.as_raw_fd();
        let fmt = st.st_mode & libc::S_IFMT;
        let times = stat_times(&st);
        match fmt {
            libc::S_IFREG => {
                let src = sysfs::openat(
                    sdir.as_raw_fd(),
                    &tname,
                    libc::O_RDONLY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|err| sys("openat (lower layer)", tpath, err))?;
                let dst = sysfs::openat(
                    dfd,
                    &tname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(|err| sys("openat", tpath, err))?;
                self.copy_content(&src, &dst, tpath)?;
                if self.opts.chown {
                    sysfs::fchownat(
                        dst.as_raw_fd(),
                        c"",
                        st.st_uid,
                        st.st_gid,
                        libc::AT_EMPTY_PATH,
                    )
                    .map_err(|err| sys("fchown", tpath, err))?;
                }
                sysfs::fchmod(dst.as_raw_fd(), st.st_mode & 0o7777)
                    .map_err(|err| sys("fchmod", tpath, err))?;
                self.copy_xattrs(&src, &dst, tpath)?;
                sysfs::futimens(dst.as_raw_fd(), &times)
                    .map_err(|err| sys("futimens", tpath, err))?;
            }
            libc::S_IFLNK => {
                let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
                let n = sysfs::readlinkat(sdir.as_raw_fd(), &tname, &mut buf)
                    .map_err(|err| sys("readlinkat", tpath, err))?;
                buf.truncate(n);
                sysfs::symlinkat(&cstr(&buf), dfd, &tname)
                    .map_err(|err| sys("symlinkat", tpath, err))?;
                if self.opts.chown {
                    sysfs::fchownat(dfd, &tname, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW)
                        .map_err(|err| sys("fchownat", tpath, err))?;
                }
                sysfs::utimensat(dfd, &tname, &times, libc::AT_SYMLINK_NOFOLLOW)
                    .map_err(|err| sys("utimensat", tpath, err))?;
            }
            _ => {
                if matches!(fmt, libc::S_IFCHR | libc::S_IFBLK) && !self.opts.chown {
                    return Ok(false);
                }
                sysfs::mknodat(dfd, &tname, fmt | 0o600, st.st_rdev)
                    .map_err(|err| sys("mknodat", tpath, err))?;
                if self.opts.chown {
                    sysfs::fchownat(dfd, &tname, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW)
                        .map_err(|err| sys("fchownat", tpath, err))?;
                }
                let fd = sysfs::openat(dfd, &tname, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .map_err(|err| sys("openat", tpath, err))?;
                let proc =
                    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
                sysfs::chmod(&proc, st.st_mode & 0o7777).map_err(|err| sys("chmod", tpath, err))?;
                sysfs::utimensat(dfd, &tname, &times, libc::AT_SYMLINK_NOFOLLOW)
                    .map_err(|err| sys("utimensat", tpath, err))?;
            }
        }
        self.written.insert(tpath.to_vec());
        Ok(true)
    }

    /// Directories this layer made only as parents (a layer without entries for them, as
    /// Bazel's rules_img and others write) take owner, mode, xattrs and times from the
    /// directory they stand for in the layers below (as containerd's `mkparent` does): in an
    /// overlay the upper directory's attributes win, and a 0755 `tmp/` over a 1777 one would
    /// change what the image is. Only here are the lower layers needed without a hard link.
    fn inherit_implicit(&mut self) -> Result<()> {
        let implicit: Vec<Vec<u8>> = self
            .dirs
            .iter()
            .filter(|(_, d)| d.inherit)
            .map(|(p, _)| p.clone())
            .collect();
        let root = self.root.as_raw_fd();
        let lowers: Vec<RawFd> = self.lowers()?.iter().map(AsRawFd::as_raw_fd).collect();
        for path in implicit {
            let comps: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
            let Some((base, parents)) = comps.split_last() else {
                continue;
            };
            let name = cstr(base);
            let mut found = None;
            for &lower in &lowers {
                let vis = hidden_in(lower, parents)?;
                if vis == Visible::Hidden {
                    break;
                }
                if vis != Visible::Missing {
                    let parent = open_dir_in(lower, &parents.join(&b'/'))
                        .map_err(|e| sys("openat2", &path, e))?;
                    match sysfs::lstatat(parent.as_raw_fd(), &name)
                        .map_err(|e| sys("fstatat", &path, e))?
                    {
                        Some(st) if is_dir(&st) => {
                            found = Some(
                                sysfs::openat(
                                    parent.as_raw_fd(),
                                    &name,
                                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                                    0,
                                )
                                .map_err(|e| sys("openat (lower layer)", &path, e))?,
                            );
                            break;
                        }
                        Some(_) => break,
                        None => {}
                    }
                }
                if vis == Visible::LastLayer {
                    break;
                }
            }
            let Some(src) = found else {
                continue;
            };
            // An opaque directory of this layer on the way hides the lower ones. (Asked only
            // now: walking this layer's path for every directory of a deep chain that no lower
            // has would cost the square of its depth.)
            if matches!(
                hidden_in(root, parents)?,
                Visible::Hidden | Visible::LastLayer
            ) {
                continue;
            }
            let st =
                sysfs::fstat(src.as_raw_fd()).map_err(|e| sys("fstat (lower layer)", &path, e))?;
            let dst = match open_dir_in(root, &path) {
                Ok(fd) => fd,
                // Replaced by a non-directory later in the tar (`a/x`, then `a`), or removed
                // with a directory above it: nothing to inherit.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(sys("openat2", &path, e)),
            };
            if self.opts.chown {
                sysfs::fchownat(
                    dst.as_raw_fd(),
                    c"",
                    st.st_uid,
                    st.st_gid,
                    libc::AT_EMPTY_PATH,
                )
                .map_err(|e| sys("fchown", &path, e))?;
            }
            self.copy_xattrs(&src, &dst, &path)?;
            if let Some(meta) = self.dirs.get_mut(&path) {
                meta.mode = st.st_mode & 0o7777;
                meta.times = Some(stat_times(&st));
            }
        }
        Ok(())
    }

    /// File content from `src` to `dst`, its holes kept: each data region (`SEEK_DATA`,
    /// `SEEK_HOLE`) copied at its offset, then the size set. A lower layer's sparse file (a
    /// GNU sparse entry of a terabyte in a few hundred bytes of tar) must not become its size
    /// in zeros on disk.
    fn copy_content(&mut self, src: &OwnedFd, dst: &OwnedFd, path: &[u8]) -> Result<()> {
        let (s, d) = (src.as_raw_fd(), dst.as_raw_fd());
        let size = sysfs::fstat(s)
            .map_err(|e| sys("fstat (lower layer)", path, e))?
            .st_size;
        let seek = |fd: RawFd, off: i64, whence: i32| {
            sysfs::lseek(fd, off, whence).map_err(|e| sys("lseek", path, e))
        };
        let mut off = 0i64;
        while off < size {
            let data = match sysfs::lseek(s, off, libc::SEEK_DATA) {
                Ok(data) => data,
                Err(Errno::ENXIO) => break,
                Err(e) => return Err(sys("lseek (lower layer)", path, e)),
            };
            let hole = seek(s, data, libc::SEEK_HOLE)?.min(size);
            seek(s, data, libc::SEEK_SET)?;
            seek(d, data, libc::SEEK_SET)?;
            self.copy_range(src, dst, (hole - data) as u64, path)?;
            off = hole;
        }
        sysfs::ftruncate(d, size).map_err(|e| sys("ftruncate", path, e))
    }

    /// `len` bytes from `src` to `dst` at their offsets: `copy_file_range`, or read and write
    /// where it cannot (another filesystem before Linux 5.3 or since 5.19, some filesystems).
    fn copy_range(&mut self, src: &OwnedFd, dst: &OwnedFd, len: u64, path: &[u8]) -> Result<()> {
        let mut left = len;
        while left > 0 {
            let want = left.min(1 << 30) as usize;
            match sysfs::copy_file_range(src.as_raw_fd(), dst.as_raw_fd(), want) {
                // The file shrank meanwhile: the size set after stands.
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.stats.bytes += n as u64;
                    left -= n as u64;
                }
                Err(
                    Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EPERM,
                ) => break,
                Err(e) => return Err(sys("copy_file_range", path, e)),
            }
        }
        // Duplicates share the offsets; the Files own them.
        let mut r = std::fs::File::from(src.try_clone().map_err(io_error)?);
        let mut w = std::fs::File::from(dst.try_clone().map_err(io_error)?);
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = r.read(&mut self.buf[..want]).map_err(|e| {
                sys(
                    "read (lower layer)",
                    path,
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
            if n == 0 {
                return Ok(());
            }
            w.write_all(&self.buf[..n]).map_err(|e| {
                sys(
                    "write",
                    path,
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
            self.stats.bytes += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// The xattrs of `src` onto `dst`, but `*.overlay.*`.
    fn copy_xattrs(&mut self, src: &OwnedFd, dst: &OwnedFd, path: &[u8]) -> Result<()> {
        let mut names = vec![0u8; 64 * 1024];
        let n = match sysfs::flistxattr(src.as_raw_fd(), &mut names) {
            Ok(n) => n,
            Err(Errno::ENOTSUP) => return Ok(()),
            Err(e) => return Err(sys("flistxattr (lower layer)", path, e)),
        };
        names.truncate(n);
        let mut value = vec![0u8; 64 * 1024];
        for key in names.split(|b| *b == 0).filter(|k| !k.is_empty()) {
            if key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.") {
                continue;
            }
            let k = cstr(key);
            let len = match sysfs::fgetxattr(src.as_raw_fd(), &k, &mut value) {
                Ok(l) => l,
                Err(Errno::ENODATA) => continue,
                Err(e) => return Err(sys("fgetxattr (lower layer)", path, e)),
            };
            match sysfs::fsetxattr(dst.as_raw_fd(), &k, &value[..len]) {
                Ok(()) => {}
                Err(err) if self.skippable(key, err) => self.stats.xattrs_skipped += 1,
                Err(e) => return Err(sys("fsetxattr", path, e)),
            }
        }
        Ok(())
    }

    /// Modes and times of the directories, deepest first (a child's creation changed its
    /// parent's mtime).
    fn finish(&mut self) -> Result<()> {
        self.cache = None;
        if matches!(self.opts.apply, Apply::Layer(_)) && self.dirs.values().any(|d| d.inherit) {
            self.inherit_implicit()?;
        }
        let mut dirs: Vec<(Vec<u8>, DirMeta)> = self.dirs.drain().collect();
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        // The parent of the directory just done, opened through its `..`: the next one when
        // walking up a chain (`a/b/c`, `a/b`, `a`), which then costs no walk from the root (a
        // layer of deep paths would cost the square of their depth, else).
        let mut up: Option<(Vec<u8>, OwnedFd)> = None;
        for (path, meta) in dirs {
            let fd = match up.take() {
                Some((p, fd)) if p == path => fd,
                _ => match open_dir_in(self.root.as_raw_fd(), &path) {
                    Ok(fd) => fd,
                    // Replaced by a non-directory later in the tar.
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                    Err(e) => return Err(sys("openat2", &path, e)),
                },
            };
            // Before the mode may take away the search permission. A directory of the layer
            // below its root: its `..` is its parent in the layer.
            if let Some(cut) = path.iter().rposition(|b| *b == b'/') {
                up = sysfs::openat(
                    fd.as_raw_fd(),
                    c"..",
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .ok()
                .map(|p| (path[..cut].to_vec(), p));
            }
            sysfs::fchmod(fd.as_raw_fd(), meta.mode).map_err(|e| sys("fchmod", &path, e))?;
            if let Some(t) = meta.times {
                sysfs::futimens(fd.as_raw_fd(), &t).map_err(|e| sys("futimens", &path, e))?;
            }
        }
        Ok(())
    }
}

/// The entry's owner as `lchown` takes it.
fn ids(e: &Entry, path: &[u8]) -> Result<(u32, u32)> {
    match (u32::try_from(e.uid), u32::try_from(e.gid)) {
        (Ok(u), Ok(g)) if u != u32::MAX && g != u32::MAX => Ok((u, g)),
        _ => Err(image_err(
            ImageErrorKind::Malformed,
            Some(path),
            format!("owner {}:{} out of range", e.uid, e.gid),
        )),
    }
}

/// A directory inside `root` (`""` is the root itself), never through a symlink.
fn open_dir_in(root: RawFd, path: &[u8]) -> std::result::Result<OwnedFd, Errno> {
    sysfs::openat2(
        root,
        &cstr(if path.is_empty() { b"." } else { path }),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    )
}

/// How a layer treats a path (through its parent directories `comps`) for the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visible {
    /// All of the parents are directories here; lower layers still count.
    Continue,
    /// The parents are directories here and one is opaque: this layer is the last to look in.
    LastLayer,
    /// Some parent is missing here; lower layers still count.
    Missing,
    /// A parent is a whiteout, a non-directory: hidden from here down.
    Hidden,
}

fn hidden_in(layer: RawFd, comps: &[&[u8]]) -> Result<Visible> {
    let mut cur = sysfs::openat(layer, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| sys("openat", b".", e))?;
    let mut vis = if is_opaque(cur.as_raw_fd()) {
        Visible::LastLayer
    } else {
        Visible::Continue
    };
    for c in comps {
        let name = cstr(c);
        match sysfs::openat2(
            cur.as_raw_fd(),
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        ) {
            Ok(fd) => {
                if is_opaque(fd.as_raw_fd()) {
                    vis = Visible::LastLayer;
                }
                cur = fd;
            }
            Err(Errno::ENOENT) => {
                return Ok(if vis == Visible::LastLayer {
                    Visible::Hidden
                } else {
                    Visible::Missing
                })
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => return Ok(Visible::Hidden),
            Err(e) => return Err(sys("openat2", c, e)),
        }
    }
    Ok(vis)
}

/// Whether one of the directories `comps` (from `root` down) is a symlink.
fn symlink_on_the_way(root: RawFd, comps: &[&[u8]]) -> Result<bool> {
    let mut cur = sysfs::openat(root, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| sys("openat", b".", e))?;
    for c in comps {
        let name = cstr(c);
        match sysfs::lstatat(cur.as_raw_fd(), &name).map_err(|e| sys("fstatat", c, e))? {
            Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => return Ok(true),
            Some(st) if is_dir(&st) => {
                cur = sysfs::openat(
                    cur.as_raw_fd(),
                    &name,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| sys("openat", c, e))?;
            }
            _ => return Ok(false),
        }
    }
    Ok(false)
}

/// Whether a directory carries an overlayfs opaque xattr (either namespace).
fn is_opaque(fd: RawFd) -> bool {
    let mut v = [0u8; 4];
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|k| matches!(sysfs::fgetxattr(fd, k, &mut v), Ok(1) if v[0] == b'y'))
}

/// The names in the directory `fd` (not `.` and `..`).
fn list(fd: RawFd, path: &[u8]) -> Result<Vec<CString>> {
    sysfs::read_dir_names(fd).map_err(|e| sys("readdir", path, e))
}

/// Removes `name` in `dir`, a directory with everything in it, never following a symlink.
fn remove(dir: RawFd, name: &CStr, path: &[u8]) -> Result<()> {
    match sysfs::unlinkat(dir, name, 0) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(sys("unlinkat", path, e)),
    }
    {
        let sub = sysfs::openat(
            dir,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|e| sys("openat", path, e))?;
        // Rootless, a read-only directory (a lower layer's 0555) cannot lose its children
        // otherwise; it goes anyway.
        let _ = sysfs::fchmod(sub.as_raw_fd(), 0o700);
        for child in list(sub.as_raw_fd(), path)? {
            remove(sub.as_raw_fd(), &child, &join(path, child.to_bytes()))?;
        }
    }
    sysfs::unlinkat(dir, name, libc::AT_REMOVEDIR).map_err(|e| sys("unlinkat", path, e))
}

/// The access and modification times of `st`, as `utimensat` takes them.
fn stat_times(st: &libc::stat) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ]
}
