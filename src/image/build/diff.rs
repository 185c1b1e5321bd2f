//! An overlay upper directory as a layer tar: what a RUN step wrote, as the OCI layer format
//! (image-spec `layer.md`) says a changeset is written.
//!
//! [`write_layer`] walks the upper directory through descriptors only (`openat` with
//! `O_NOFOLLOW`, `fstatat(AT_SYMLINK_NOFOLLOW)`, `readlinkat`): no symbolic link is followed
//! and no path string is resolved twice. What it writes:
//!
//! | in the upper directory | in the tar |
//! | --- | --- |
//! | character device 0/0 `d/x` (the kernel's whiteout, also when it is a hard link to the shared whiteout inode: `nlink > 1` is no hard link then) | empty file `d/.wh.x` |
//! | zero-size file with `*.overlay.whiteout` (the xattr whiteouts of Linux 6.7, made by tools) | empty file `d/.wh.x` |
//! | directory with `trusted.overlay.opaque=y` (or `user.overlay.opaque=y` for [`OverlayFlavour::User`]) | the directory, then `d/.wh..wh..opq` |
//! | other `trusted.overlay.*` / `user.overlay.*` xattrs (`origin`, `impure`, `nlink`, ...) and, on 6.7+, the escaped `*.overlay.overlay.*` ones | dropped (the store strips them on import anyway) |
//! | `*.overlay.redirect`, `*.overlay.metacopy` | refused: the content is in a lower layer; mount the build's overlay with `redirect_dir=off` (or `nofollow`) and `metacopy=off` |
//! | `security.selinux` | dropped: the host's label, not the image's |
//! | other xattrs (`security.capability`, `user.*`, `trusted.*`, ACLs) | `SCHILY.xattr.NAME` PAX records |
//! | two names of one inode (not a directory) | the first name in tar order as a file, the others as hard links (type `1`) to it |
//! | symlink, fifo, block and character device | as they are (symlinks never followed) |
//! | socket | skipped (counted in [`LayerDiff::sockets_skipped`]) |
//! | a name starting `.wh.` | refused: a reader would take it for a whiteout |
//!
//! # Determinism
//! Within a directory, whiteouts come first (the layer spec's SHOULD), then the other
//! entries, each group sorted by the bytes of their names; a directory comes before its
//! contents. Headers carry the numeric uid and gid, empty user and group names, the mode, the
//! mtime in whole seconds (as in the tree: `make`-style tools need them; clamped to
//! [`DiffOptions::source_date_epoch`] when set), no atime or ctime. Whiteouts and PAX headers
//! have mtime 0. PAX records appear only when the ustar fields cannot hold a value: names and
//! link targets over 100 bytes, ids over 2097151, sizes of 8 GiB and more, mtimes outside
//! 0..8^11, xattrs. The same tree therefore always gives the same bytes, and so the same
//! diff_id. Sparse files are written in full. The archive ends with the two zero blocks and
//! no record padding.

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use crate::image::{Digest, OverlayFlavour};
use crate::{Error, ImageErrorKind, Result};

/// How to turn an upper directory into a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Which xattr marks opaque directories: the namespace the overlay was mounted with
    /// (`trusted.overlay.opaque`, or `user.overlay.opaque` under `userxattr`).
    pub flavour: OverlayFlavour,
    /// Clamp mtimes later than this (seconds since the epoch) to it, as BuildKit's
    /// `SOURCE_DATE_EPOCH` rewrite does, for layers that do not depend on when they were
    /// built. `None`: mtimes as in the tree.
    pub source_date_epoch: Option<i64>,
    /// Paths (relative to the upper directory, no leading `/`, e.g. `proc` or
    /// `etc/resolv.conf`) left out with everything under them: mount points the container
    /// runtime created for a RUN step, which are no part of what the step wrote.
    pub exclude: Vec<PathBuf>,
    /// The host uid and gid that stand for root in the container that wrote the upper (a
    /// rootless build maps the caller to root): recorded as 0. Other ids are recorded as they
    /// are. `None`: every id as it is.
    pub root_ids: Option<(u32, u32)>,
}

impl DiffOptions {
    /// Options for `flavour`, mtimes kept.
    pub fn new(flavour: OverlayFlavour) -> DiffOptions {
        DiffOptions {
            flavour,
            source_date_epoch: None,
            exclude: Vec::new(),
            root_ids: None,
        }
    }
}

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDiff {
    /// sha256 of the tar bytes: the layer's diff_id (image-spec `config.md`).
    pub diff_id: Digest,
    /// Length of the tar in bytes.
    pub size: u64,
    /// Tar entries written (whiteouts and opaque markers included, PAX headers not).
    pub entries: u64,
    /// `.wh.NAME` entries written.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries written.
    pub opaque_dirs: u64,
    /// Hard-link entries written.
    pub hardlinks: u64,
    /// Sockets left out (a tar cannot carry them).
    pub sockets_skipped: u64,
}

/// A `Write` that hashes (sha256) and counts what passes through it.
#[derive(Debug)]
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> DigestWriter<W> {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest and length of everything written, and the inner writer (not flushed).
    pub fn finish(self) -> (Digest, u64, W) {
        (sha256_digest(self.hasher), self.written, self.inner)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) use crate::image::compress::sha256_digest;

/// Writes the layer tar of the overlay upper directory `upper` to `out` and returns what was
/// written (diff_id, size, counts) and `out` (flushed).
///
/// The directory must not change meanwhile (the container that wrote it has exited and the
/// overlay is unmounted, or at least no process writes to it). On an error, what was
/// written to `out` is no layer: the caller discards it.
///
/// # Errors
/// - [`Error::Sys`] naming the syscall and the entry's path in the layer for a failed
///   `openat`, `fstatat`, `readlinkat`, `read` or xattr call, and for a write to `out`
///   (`write`, no path).
/// - [`Error::Image`] of kind [`ImageErrorKind::Unsupported`] naming the entry for what a
///   layer cannot express: a name starting `.wh.`, an overlay `redirect` or `metacopy`
///   xattr; of kind [`ImageErrorKind::Malformed`] for a file that changed size while read.
pub fn write_layer<W: Write>(
    upper: BorrowedFd<'_>,
    opts: &DiffOptions,
    out: W,
) -> Result<(LayerDiff, W)> {
    let mut w = Walker {
        out: DigestWriter::new(out),
        opts: opts.clone(),
        links: std::collections::HashMap::new(),
        stats: Counts::default(),
        buf: vec![0u8; 128 * 1024],
    };
    let root = openat(
        upper,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys_path("openat", ".", e))?;
    let root_xattrs = w.xattrs(root.as_fd(), b"", true)?;
    if root_xattrs.opaque {
        w.marker(b".wh..wh..opq", true)?;
    }
    w.walk(root)?;
    // End of archive: two zero blocks.
    w.write_all(&[0u8; 1024])?;
    w.out
        .flush()
        .map_err(|e| Error::sys("write", io_errno(&e)))?;
    let (diff_id, size, out) = w.out.finish();
    let s = w.stats;
    Ok((
        LayerDiff {
            diff_id,
            size,
            entries: s.entries,
            whiteouts: s.whiteouts,
            opaque_dirs: s.opaque,
            hardlinks: s.hardlinks,
            sockets_skipped: s.sockets,
        },
        out,
    ))
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    entries: u64,
    whiteouts: u64,
    opaque: u64,
    hardlinks: u64,
    sockets: u64,
}

struct Walker<W: Write> {
    out: DigestWriter<W>,
    opts: DiffOptions,
    /// (dev, ino) of a non-directory with several links -> its first name in the tar.
    links: std::collections::HashMap<(u64, u64), Vec<u8>>,
    stats: Counts,
    buf: Vec<u8>,
}

/// A directory being listed: its descriptor, its path in the layer (ending in `/`, or empty
/// for the root) and the children still to write, in reverse order.
struct Frame {
    fd: OwnedFd,
    prefix: Vec<u8>,
    todo: Vec<Child>,
}

struct Child {
    name: CString,
    whiteout: bool,
}

/// What the xattrs of an entry say.
struct Xattrs {
    opaque: bool,
    whiteout: bool,
    /// Kept ones, sorted by name.
    keep: Vec<(Vec<u8>, Vec<u8>)>,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";

fn path_of(p: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(p))
}

fn io_errno(e: &std::io::Error) -> crate::Errno {
    crate::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn is_type(st: &FileStat, t: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == t
}

impl<W: Write> Walker<W> {
    fn write_all(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::sys("write", io_errno(&e)))
    }

    /// Lists `dir`: whiteouts first, then the rest, each sorted by name bytes.
    fn list(&self, dir: BorrowedFd<'_>, prefix: &[u8]) -> Result<Vec<Child>> {
        let shown = || path_of(if prefix.is_empty() { b"." } else { prefix });
        // read_dir_names opens the directory afresh: `dir`'s own offset stays.
        let names = crate::sys::fs::read_dir_names(dir.as_raw_fd())
            .map_err(|e| Error::sys_path("readdir", shown(), e))?;
        let mut children = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_c_str();
            let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| {
                let mut p = prefix.to_vec();
                p.extend_from_slice(name.to_bytes());
                Error::sys_path("fstatat", path_of(&p), e)
            })?;
            let whiteout = is_type(&st, libc::S_IFCHR) && st.st_rdev == 0;
            children.push(Child {
                name: name.to_owned(),
                whiteout,
            });
        }
        children.sort_by(|a, b| {
            (!a.whiteout, a.name.to_bytes()).cmp(&(!b.whiteout, b.name.to_bytes()))
        });
        Ok(children)
    }

    fn walk(&mut self, root: OwnedFd) -> Result<()> {
        let mut todo = self.list(root.as_fd(), b"")?;
        todo.reverse();
        let mut stack = vec![Frame {
            fd: root,
            prefix: Vec::new(),
            todo,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(child) = top.todo.pop() else {
                stack.pop();
                continue;
            };
            let mut path = top.prefix.clone();
            path.extend_from_slice(child.name.to_bytes());
            if self
                .opts
                .exclude
                .iter()
                .any(|e| e.as_os_str().as_bytes() == path)
            {
                continue;
            }
            if let Some(frame) = self.entry(top.fd.as_fd(), &child, path)? {
                stack.push(frame);
            }
        }
        Ok(())
    }

    /// Writes one entry; a directory comes back as a frame to descend into.
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        child: &Child,
        path: Vec<u8>,
    ) -> Result<Option<Frame>> {
        let name = child.name.as_c_str();
        if child.whiteout {
            self.whiteout(&path, name)?;
            return Ok(None);
        }
        if name.to_bytes().starts_with(WHITEOUT_PREFIX) {
            return Err(unsupported(
                &path,
                "a name starting with .wh. would read as a whiteout in a layer",
            ));
        }
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Error::sys_path("fstatat", path_of(&path), e))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => {
                self.stats.sockets += 1;
                Ok(None)
            }
            libc::S_IFDIR => {
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys_path("openat", path_of(&path), e))?;
                let st =
                    fstat(fd.as_fd()).map_err(|e| Error::sys_path("fstat", path_of(&path), e))?;
                let x = self.xattrs(fd.as_fd(), &path, true)?;
                let mut dir_path = path;
                dir_path.push(b'/');
                let h = self.header(&st, EntryType::Directory, 0);
                self.emit(h, &dir_path, None, &x.keep)?;
                if x.opaque {
                    let mut m = dir_path.clone();
                    m.extend_from_slice(b".wh..wh..opq");
                    self.marker(&m, true)?;
                }
                let mut todo = self.list(fd.as_fd(), &dir_path)?;
                todo.reverse();
                Ok(Some(Frame {
                    fd,
                    prefix: dir_path,
                    todo,
                }))
            }
            libc::S_IFREG => {
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys_path("openat", path_of(&path), e))?;
                let st =
                    fstat(fd.as_fd()).map_err(|e| Error::sys_path("fstat", path_of(&path), e))?;
                if !is_type(&st, libc::S_IFREG) {
                    return Err(changed(&path));
                }
                let x = self.xattrs(fd.as_fd(), &path, false)?;
                if x.whiteout && st.st_size == 0 {
                    self.whiteout(&path, name)?;
                    return Ok(None);
                }
                if self.hardlink(&st, &path, &x.keep)? {
                    return Ok(None);
                }
                let size = st.st_size as u64;
                let h = self.header(&st, EntryType::Regular, size);
                self.emit(h, &path, None, &x.keep)?;
                self.copy(fd, size, &path)?;
                Ok(None)
            }
            _ => {
                // Symlinks, fifos, devices: never opened for I/O.
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys_path("openat", path_of(&path), e))?;
                let st =
                    fstat(fd.as_fd()).map_err(|e| Error::sys_path("fstat", path_of(&path), e))?;
                let x = self.xattrs(fd.as_fd(), &path, false)?;
                let (ty, target) = match st.st_mode & libc::S_IFMT {
                    libc::S_IFLNK => {
                        let t = readlinkat(fd.as_fd(), c"")
                            .map_err(|e| Error::sys_path("readlinkat", path_of(&path), e))?;
                        (EntryType::Symlink, Some(t.as_bytes().to_vec()))
                    }
                    libc::S_IFIFO => (EntryType::Fifo, None),
                    libc::S_IFCHR => (EntryType::Char, None),
                    libc::S_IFBLK => (EntryType::Block, None),
                    libc::S_IFSOCK => {
                        self.stats.sockets += 1;
                        return Ok(None);
                    }
                    _ => return Err(changed(&path)),
                };
                if is_type(&st, libc::S_IFCHR) && st.st_rdev == 0 {
                    // Became a whiteout since the listing: the tree changed under us.
                    return Err(changed(&path));
                }
                if self.hardlink(&st, &path, &x.keep)? {
                    return Ok(None);
                }
                let mut h = self.header(&st, ty, 0);
                if matches!(ty, EntryType::Char | EntryType::Block) {
                    let major = libc::major(st.st_rdev);
                    let minor = libc::minor(st.st_rdev);
                    // Linux majors are 12 bits and minors 20: both fit ustar's 7 octal
                    // digits. (The calls fail only for pre-POSIX headers.)
                    let _ = h.h.set_device_major(major);
                    let _ = h.h.set_device_minor(minor);
                }
                self.emit(h, &path, target.as_deref(), &x.keep)?;
                Ok(None)
            }
        }
    }

    /// `.wh.NAME` beside the deleted `NAME` (`path` is the whiteout's own path).
    fn whiteout(&mut self, path: &[u8], name: &CStr) -> Result<()> {
        if name.to_bytes().starts_with(WHITEOUT_PREFIX) {
            return Err(unsupported(
                path,
                "a whiteout of a name starting with .wh. cannot be written",
            ));
        }
        let parent_len = path.len() - name.to_bytes().len();
        let mut p = path[..parent_len].to_vec();
        p.extend_from_slice(WHITEOUT_PREFIX);
        p.extend_from_slice(name.to_bytes());
        self.marker(&p, false)
    }

    /// An empty marker file (a whiteout or the opaque marker): 0/0, mode 0, mtime 0.
    fn marker(&mut self, path: &[u8], opaque: bool) -> Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        self.emit(Pending { h, pax: Vec::new() }, path, None, &[])?;
        if opaque {
            self.stats.opaque += 1;
        } else {
            self.stats.whiteouts += 1;
        }
        Ok(())
    }

    /// True (and the link written) when `st` is a further name of an inode already written.
    fn hardlink(
        &mut self,
        st: &FileStat,
        path: &[u8],
        keep: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool> {
        if st.st_nlink <= 1 {
            return Ok(false);
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = self.links.get(&key).cloned() {
            let h = self.header(st, EntryType::Link, 0);
            self.emit(h, path, Some(&first), keep)?;
            self.stats.hardlinks += 1;
            return Ok(true);
        }
        self.links.insert(key, path.to_vec());
        Ok(false)
    }

    /// A ustar header with `st`'s mode, ids and mtime; PAX records for what does not fit.
    fn header(&self, st: &FileStat, ty: EntryType, size: u64) -> Pending {
        let mut h = Header::new_ustar();
        let mut pax = Vec::new();
        h.set_entry_type(ty);
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = match self.opts.root_ids {
            Some((ru, rg)) => (
                if st.st_uid == ru { 0 } else { st.st_uid },
                if st.st_gid == rg { 0 } else { st.st_gid },
            ),
            None => (st.st_uid, st.st_gid),
        };
        for (id, key) in [(uid, "uid"), (gid, "gid")] {
            let v = u64::from(id);
            let fits = v <= 0o7777777;
            if !fits {
                pax.push((key.as_bytes().to_vec(), v.to_string().into_bytes()));
            }
            let v = if fits { v } else { 0 };
            if key == "uid" {
                h.set_uid(v)
            } else {
                h.set_gid(v)
            }
        }
        let mut mtime = st.st_mtime;
        if let Some(epoch) = self.opts.source_date_epoch {
            mtime = mtime.min(epoch);
        }
        if (0..=0o77777777777).contains(&mtime) {
            h.set_mtime(mtime as u64);
        } else {
            h.set_mtime(0);
            pax.push((b"mtime".to_vec(), mtime.to_string().into_bytes()));
        }
        if size <= 0o77777777777 {
            h.set_size(size);
        } else {
            h.set_size(0);
            pax.push((b"size".to_vec(), size.to_string().into_bytes()));
        }
        Pending { h, pax }
    }

    /// Writes the header of `path` (and its PAX header first when needed).
    fn emit(
        &mut self,
        p: Pending,
        path: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        let Pending { mut h, mut pax } = p;
        if path.len() <= 100 {
            h.as_old_mut().name[..path.len()].copy_from_slice(path);
        } else {
            pax.push((b"path".to_vec(), path.to_vec()));
            // Readers without PAX see a truncated name; ours is the last 100 bytes' worth.
            let tail = &path[path.len() - 100..];
            h.as_old_mut().name.copy_from_slice(tail);
        }
        if let Some(l) = link {
            if l.len() <= 100 {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
            } else {
                pax.push((b"linkpath".to_vec(), l.to_vec()));
            }
        }
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.push((key, v.clone()));
        }
        if !pax.is_empty() {
            let body = pax_records(&pax);
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            let mut name = b"PaxHeaders/".to_vec();
            let base = path
                .strip_suffix(b"/")
                .unwrap_or(path)
                .rsplit(|&b| b == b'/')
                .next()
                .unwrap_or_default();
            name.extend_from_slice(&base[..base.len().min(100 - name.len())]);
            x.as_old_mut().name[..name.len()].copy_from_slice(&name);
            x.set_mode(0o644);
            x.set_uid(0);
            x.set_gid(0);
            x.set_mtime(0);
            x.set_size(body.len() as u64);
            x.set_cksum();
            self.write_all(x.as_bytes())?;
            self.write_all(&body)?;
            self.pad(body.len() as u64)?;
        }
        h.set_cksum();
        self.write_all(h.as_bytes())?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Copies exactly `size` bytes of the file, then the block padding.
    fn copy(&mut self, fd: OwnedFd, size: u64, path: &[u8]) -> Result<()> {
        let mut f = std::fs::File::from(fd);
        let mut left = size;
        let mut buf = std::mem::take(&mut self.buf);
        let r = (|| {
            while left > 0 {
                let want = buf.len().min(left as usize);
                let n = match f.read(&mut buf[..want]) {
                    Ok(0) => return Err(changed(path)),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::sys_path("read", path_of(path), io_errno(&e))),
                };
                self.write_all(&buf[..n])?;
                left -= n as u64;
            }
            Ok(())
        })();
        self.buf = buf;
        r?;
        self.pad(size)
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    /// Reads and sorts out the xattrs of `fd` (any descriptor, `O_PATH` too).
    fn xattrs(&self, fd: BorrowedFd<'_>, path: &[u8], is_dir: bool) -> Result<Xattrs> {
        let shown = || path_of(if path.is_empty() { b"." } else { path });
        let names = match crate::sys::xattr::list(fd) {
            Ok(n) => n,
            // No xattr support on this filesystem: nothing to keep.
            Err(crate::Errno::EOPNOTSUPP) => Vec::new(),
            Err(e) => return Err(Error::sys_path("listxattr", shown(), e)),
        };
        let (ours, other) = match self.opts.flavour {
            OverlayFlavour::Trusted => ("trusted.overlay.", "user.overlay."),
            OverlayFlavour::User => ("user.overlay.", "trusted.overlay."),
        };
        let mut x = Xattrs {
            opaque: false,
            whiteout: false,
            keep: Vec::new(),
        };
        for n in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let s = n;
            if let Some(private) = s.strip_prefix(ours.as_bytes()) {
                match private {
                    b"opaque" if is_dir => {
                        let v = self.get(fd, n, path)?;
                        x.opaque = v == b"y";
                    }
                    b"whiteout" if !is_dir => x.whiteout = true,
                    b"redirect" | b"metacopy" => {
                        return Err(unsupported(
                            path,
                            format!(
                                "has {}: its content is in a lower layer; mount the build's \
                                 overlay with redirect_dir=off and metacopy=off",
                                String::from_utf8_lossy(n)
                            ),
                        ))
                    }
                    // origin, impure, nlink, upper, uuid, and the 6.7+ escaped
                    // `overlay.overlay.*` (a user's own `*.overlay.*`, which the store would
                    // strip on import anyway).
                    _ => {}
                }
                continue;
            }
            if s.starts_with(other.as_bytes()) || s == b"security.selinux" {
                continue;
            }
            let v = self.get(fd, n, path)?;
            x.keep.push((n.to_vec(), v));
        }
        x.keep.sort();
        Ok(x)
    }

    fn get(&self, fd: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<Vec<u8>> {
        let c = CString::new(name).map_err(|_| changed(path))?;
        crate::sys::xattr::get(fd, &c).map_err(|e| {
            Error::sys_path(
                "getxattr",
                path_of(if path.is_empty() { b"." } else { path }),
                e,
            )
        })
    }
}

/// A header being made and the PAX records it needs.
struct Pending {
    h: Header,
    pax: Vec<(Vec<u8>, Vec<u8>)>,
}

/// PAX extended header records: `LEN KEY=VALUE\n`, LEN counting the whole record.
fn pax_records(recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in recs {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        loop {
            let digits = len.to_string().len();
            if rest + digits == len {
                break;
            }
            len = rest + digits;
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

fn unsupported(path: &[u8], reason: impl Into<String>) -> Error {
    Error::Image {
        kind: ImageErrorKind::Unsupported,
        object: "layer diff".into(),
        entry: Some(path_of(path)),
        reason: reason.into(),
    }
}

fn changed(path: &[u8]) -> Error {
    Error::Image {
        kind: ImageErrorKind::Malformed,
        object: "layer diff".into(),
        entry: Some(path_of(path)),
        reason: "changed while it was read (the upper directory must not be in use)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[(b"path".to_vec(), b"x".to_vec())]);
        assert_eq!(r, b"9 path=x\n");
        // Where the length's own digits carry it from one to two digits.
        assert_eq!(
            pax_records(&[(b"k".to_vec(), b"vvvvv".to_vec())]),
            b"11 k=vvvvv\n"
        );
        let v = vec![b'a'; 90];
        let r = pax_records(&[(b"k".to_vec(), v)]);
        let len: usize = std::str::from_utf8(r.split(|&b| b == b' ').next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, r.len());
    }

    #[test]
    fn digest_writer_hashes_what_passes() {
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"").unwrap();
        let (d, n, v) = w.finish();
        assert_eq!(n, 0);
        assert!(v.is_empty());
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
