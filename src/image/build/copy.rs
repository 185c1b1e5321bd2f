//! COPY and WORKDIR of a build: files from the build context written into a new upper
//! layer, the destination resolved in the image's merged view.
//!
//! Every write is an `*at` call on a directory descriptor of the upper layer, opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a symbolic link that one source put into
//! the layer is never followed by the next. Sources are opened from the context with
//! `RESOLVE_IN_ROOT` (a link or `..` in the context cannot leave it, as docker confines COPY
//! to the context); inside a source directory links are copied as links.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fchmod, fstat, mkdirat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use sha2::{Digest as _, Sha256};

use crate::errno::IntoErrno;
use crate::mount::apply::open;
use crate::rootfs::layers::{into_owned, merged_dir, DirAttrs};
use crate::sys::mount as raw;
use crate::{Errno, Error, Result};

/// The most entries one COPY walks (a bound on what a hostile context can make us do).
const MAX_ENTRIES: u64 = 1 << 22;

/// Where a COPY writes and how.
pub(crate) struct Target<'a> {
    /// The new layer's upper directory (empty at the start of the step).
    pub upper: &'a Path,
    /// The image's layers so far, top first (the merged view the destination is found in).
    pub lowers: &'a [&'a Path],
    /// The opaque-directory xattr of the layers (`trusted.overlay.opaque`, ...).
    pub opaque: &'a CStr,
    /// Owner of what is copied (`--chown`, else 0:0).
    pub owner: (u32, u32),
}

fn sys(call: &'static str, path: &Path, e: impl IntoErrno) -> Error {
    Error::sys_path(call, path, e)
}

fn cstr(name: &[u8], what: &Path) -> Result<CString> {
    CString::new(name).map_err(|_| {
        Error::config(
            "COPY",
            format!("{}: a name holds a NUL byte", what.display()),
        )
    })
}

/// `openat2(dir, name, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.
pub(crate) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> std::result::Result<OwnedFd, Errno> {
    let flags = (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    open(
        dir.as_raw_fd(),
        name,
        flags,
        u64::from(mode),
        raw::RESOLVE_BENEATH | raw::RESOLVE_NO_SYMLINKS,
    )
    .map(into_owned)
}

/// The directory `dest` (absolute, in the image) made in the upper layer, as the merged view
/// resolves it; directories the lower layers have are made with their attributes, missing ones
/// with mode 0755 and `owner`. Returns the upper's descriptor for it and its path there.
pub(crate) fn make_dir(t: &Target<'_>, dest: &str) -> Result<(OwnedFd, PathBuf)> {
    let found = merged_dir(t.lowers, dest.trim_start_matches('/').as_bytes(), t.opaque)?;
    let mut path = PathBuf::from("/");
    let mut dir: OwnedFd = File::open(t.upper)
        .map_err(|e| sys("open", t.upper, crate::error::io_errno(&e)))?
        .into();
    let existing = found.existing.iter().map(|(n, a)| (n, Some(*a)));
    let missing = found.missing.iter().map(|n| (n, None));
    for (name, attrs) in existing.chain(missing) {
        path.push(OsStr::from_bytes(name));
        let name_c = cstr(name, &path)?;
        let shown = t.upper.join(path.strip_prefix("/").unwrap_or(&path));
        let next = match open_beneath(dir.as_fd(), &name_c, libc::O_DIRECTORY | libc::O_RDONLY, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                mkdirat(
                    dir.as_fd(),
                    name_c.as_c_str(),
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(|e| sys("mkdirat", &shown, e))?;
                let fd = open_beneath(dir.as_fd(), &name_c, libc::O_DIRECTORY | libc::O_RDONLY, 0)
                    .map_err(|e| sys("openat2", &shown, e))?;
                let a = attrs.unwrap_or(DirAttrs {
                    mode: 0o755,
                    uid: t.owner.0,
                    gid: t.owner.1,
                    mtime: (0, 0),
                });
                set_attrs(
                    fd.as_fd(),
                    &shown,
                    a.mode,
                    (a.uid, a.gid),
                    a.mtime,
                    attrs.is_some(),
                )?;
                fd
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                // Something of this step that is no directory: replace it.
                unlinkat(dir.as_fd(), name_c.as_c_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| sys("unlinkat", &shown, e))?;
                mkdirat(
                    dir.as_fd(),
                    name_c.as_c_str(),
                    Mode::from_bits_truncate(0o755),
                )
                .map_err(|e| sys("mkdirat", &shown, e))?;
                open_beneath(dir.as_fd(), &name_c, libc::O_DIRECTORY | libc::O_RDONLY, 0)
                    .map_err(|e| sys("openat2", &shown, e))?
            }
            Err(e) => return Err(sys("openat2", &shown, e)),
        };
        dir = next;
    }
    Ok((dir, path))
}

/// Owner, then mode (chown clears set-id bits), then times (mtime `None`-like (0,0) with
/// `keep_time` false leaves the time as is).
fn set_attrs(
    fd: BorrowedFd<'_>,
    shown: &Path,
    mode: u32,
    owner: (u32, u32),
    mtime: (i64, u32),
    keep_time: bool,
) -> Result<()> {
    nix::unistd::fchown(
        fd,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )
    .map_err(|e| sys("fchown", shown, e))?;
    fchmod(fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(|e| sys("fchmod", shown, e))?;
    if keep_time {
        let t = TimeSpec::new(mtime.0, i64::from(mtime.1));
        nix::sys::stat::futimens(fd, &t, &t).map_err(|e| sys("futimens", shown, e))?;
    }
    Ok(())
}

/// Opens the source `rel` in the context (a leading `/` and any `..` stay inside it, as
/// docker strips them; links followed inside the context).
fn open_source(context: &OwnedFd, context_path: &Path, rel: &str) -> Result<OwnedFd> {
    if rel.contains(['*', '?', '[']) {
        return Err(Error::unsupported(
            "COPY with wildcards",
            format!("{rel:?}: name the files or directories"),
        ));
    }
    let trimmed = rel.trim_start_matches('/').trim_end_matches('/');
    let name = if trimmed.is_empty() { "." } else { trimmed };
    let name_c = cstr(name.as_bytes(), Path::new(rel))?;
    let flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    open(
        context.as_raw_fd(),
        &name_c,
        flags,
        0,
        raw::RESOLVE_IN_ROOT | raw::RESOLVE_NO_MAGICLINKS,
    )
    .map(into_owned)
    .map_err(|e| match e {
        Errno::ENOENT => Error::config(
            "COPY",
            format!(
                "{rel}: no such file or directory in the build context {}",
                context_path.display()
            ),
        ),
        e => sys("openat2", &context_path.join(name), e),
    })
}

fn open_context(context: &Path) -> Result<OwnedFd> {
    let f = File::open(context).map_err(|e| sys("open", context, crate::error::io_errno(&e)))?;
    Ok(f.into())
}

/// Reopens an `O_PATH` descriptor for reading (a directory or a file).
fn reopen(fd: &OwnedFd, shown: &Path, dir: bool) -> Result<OwnedFd> {
    let flags = if dir {
        libc::O_RDONLY | libc::O_DIRECTORY
    } else {
        libc::O_RDONLY
    };
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| Error::sys("open", Errno::EINVAL))?;
    // SAFETY: a NUL-terminated path; the result is checked and owned at once.
    let r = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(sys("open", shown, Errno::last()));
    }
    // SAFETY: a new descriptor of ours.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// A directory's entry names (not `.` and `..`), sorted.
fn names(dir: &OwnedFd, shown: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = crate::sys::fs::read_dir_names(dir.as_raw_fd())
        .map_err(|e| sys("getdents64", shown, e))?
        .into_iter()
        .map(|n| n.into_bytes())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    out.sort();
    Ok(out)
}

/// A digest of what `sources` hold in the context: names, types, modes, sizes, contents and
/// link targets (not owners or times), for the cache key.
///
/// # Errors
/// As [`copy`] for unreadable sources.
pub(crate) fn sources_digest(context: &Path, sources: &[String]) -> Result<String> {
    let ctx = open_context(context)?;
    let mut h = Sha256::new();
    let mut count = 0u64;
    for s in sources {
        h.update(s.as_bytes());
        h.update([0]);
        let fd = open_source(&ctx, context, s)?;
        hash_tree(
            &fd,
            &context.join(s.trim_start_matches('/')),
            &mut h,
            &mut count,
        )?;
    }
    Ok(crate::image::store::hex(&h.finalize()))
}

fn hash_tree(fd: &OwnedFd, shown: &Path, h: &mut Sha256, count: &mut u64) -> Result<()> {
    *count += 1;
    if *count > MAX_ENTRIES {
        return Err(Error::config(
            "COPY",
            format!("more than {MAX_ENTRIES} entries"),
        ));
    }
    let st = fstat(fd).map_err(|e| sys("fstat", shown, e))?;
    let kind = st.st_mode & libc::S_IFMT;
    h.update(format!("{:o} {}\n", st.st_mode, st.st_size).as_bytes());
    match kind {
        libc::S_IFREG => {
            let mut f = File::from(reopen(fd, shown, false)?);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| sys("read", shown, crate::error::io_errno(&e)))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        libc::S_IFLNK => {
            let t = readlinkat(fd.as_fd(), "").map_err(|e| sys("readlinkat", shown, e))?;
            h.update(t.as_bytes());
        }
        libc::S_IFDIR => {
            let dir = reopen(fd, shown, true)?;
            for n in names(&dir, shown)? {
                h.update(&n);
                h.update([0]);
                let c = cstr(&n, shown)?;
                let child = open_beneath(dir.as_fd(), &c, libc::O_PATH, 0)
                    .map_err(|e| sys("openat2", &shown.join(OsStr::from_bytes(&n)), e))?;
                hash_tree(&child, &shown.join(OsStr::from_bytes(&n)), h, count)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// COPY `sources` (relative to `context`) to `dest` (absolute; a trailing `/` names a
/// directory) into the upper layer, as docker: a directory source copies its contents, a file
/// goes into `dest/` (or becomes `dest`), modes and mtimes kept, owners `t.owner`. Returns the
/// number of entries written.
///
/// # Errors
/// [`Error::Config`] for a source missing from the context or a destination through a file;
/// [`Error::Unsupported`] for wildcards; [`Error::Sys`] for a failed call, with the path.
pub(crate) fn copy(t: &Target<'_>, context: &Path, sources: &[String], dest: &str) -> Result<u64> {
    let ctx = open_context(context)?;
    let dest_is_dir = dest.ends_with('/') || sources.len() > 1;
    let mut count = 0u64;
    for s in sources {
        let src = open_source(&ctx, context, s)?;
        let shown = context.join(s.trim_start_matches('/'));
        let st = fstat(&src).map_err(|e| sys("fstat", &shown, e))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            // The contents into dest (made as a directory).
            let (dir, _) = make_dir(t, dest)?;
            let from = reopen(&src, &shown, true)?;
            for n in names(&from, &shown)? {
                copy_entry(t, &from, &n, &dir, &shown, &mut count)?;
            }
        } else {
            let (parent, name) = if dest_is_dir {
                let base = Path::new(s.trim_end_matches('/'))
                    .file_name()
                    .map(|n| n.as_bytes().to_vec())
                    .unwrap_or_default();
                (dest.trim_end_matches('/').to_owned(), base)
            } else {
                // An existing directory at dest takes the file inside, as docker.
                let probe = merged_dir(t.lowers, dest.trim_start_matches('/').as_bytes(), t.opaque);
                match probe {
                    Ok(found) if found.missing.is_empty() => {
                        let base = Path::new(s)
                            .file_name()
                            .map(|n| n.as_bytes().to_vec())
                            .unwrap_or_default();
                        (dest.to_owned(), base)
                    }
                    _ => {
                        let p = Path::new(dest);
                        let parent = p.parent().map_or("/".into(), |p| p.display().to_string());
                        let name = p
                            .file_name()
                            .map(|n| n.as_bytes().to_vec())
                            .unwrap_or_default();
                        (parent, name)
                    }
                }
            };
            if name.is_empty() {
                return Err(Error::config(
                    "COPY",
                    format!("{s} -> {dest}: no file name"),
                ));
            }
            let (dir, _) = make_dir(t, if parent.is_empty() { "/" } else { &parent })?;
            // The source by itself, from its own parent (opened again: the file, not a link).
            let from_parent = Path::new(s.trim_start_matches('/'))
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let from = open_source(&ctx, context, &from_parent.display().to_string())?;
            let from = reopen(&from, &shown, true)?;
            let src_name = Path::new(s.trim_end_matches('/'))
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            copy_as(t, &from, &src_name, &dir, &name, &shown, &mut count)?;
        }
    }
    Ok(count)
}

fn copy_entry(
    t: &Target<'_>,
    from: &OwnedFd,
    name: &[u8],
    to: &OwnedFd,
    shown: &Path,
    count: &mut u64,
) -> Result<()> {
    copy_as(t, from, name, to, name, shown, count)
}

/// Copies the entry `name` of the directory `from` to `to_name` in the directory `to`,
/// replacing what this step put there (a directory merges).
fn copy_as(
    t: &Target<'_>,
    from: &OwnedFd,
    name: &[u8],
    to: &OwnedFd,
    to_name: &[u8],
    shown_parent: &Path,
    count: &mut u64,
) -> Result<()> {
    *count += 1;
    if *count > MAX_ENTRIES {
        return Err(Error::config(
            "COPY",
            format!("more than {MAX_ENTRIES} entries"),
        ));
    }
    let shown = shown_parent.join(OsStr::from_bytes(name));
    let src_c = cstr(name, &shown)?;
    let dst_c = cstr(to_name, &shown)?;
    let st = nix::sys::stat::fstatat(from.as_fd(), src_c.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| sys("fstatat", &shown, e))?;
    let kind = st.st_mode & libc::S_IFMT;
    let mode = st.st_mode & 0o7777;
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    let owner = (
        Some(Uid::from_raw(t.owner.0)),
        Some(Gid::from_raw(t.owner.1)),
    );
    // What this step wrote before at the name, unless both are directories.
    if let Ok(old) =
        nix::sys::stat::fstatat(to.as_fd(), dst_c.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        let old_dir = old.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if !(old_dir && kind == libc::S_IFDIR) {
            if old_dir {
                // Through the descriptor's magic link: the tree of this step, links not
                // followed.
                let at = PathBuf::from(format!("/proc/self/fd/{}", to.as_raw_fd()));
                crate::image::store::remove_tree(&at.join(OsStr::from_bytes(to_name)))?;
            } else {
                unlinkat(to.as_fd(), dst_c.as_c_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| sys("unlinkat", &shown, e))?;
            }
        }
    }
    match kind {
        libc::S_IFDIR => {
            match mkdirat(
                to.as_fd(),
                dst_c.as_c_str(),
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(sys("mkdirat", &shown, e)),
            }
            let dst = open_beneath(to.as_fd(), &dst_c, libc::O_DIRECTORY | libc::O_RDONLY, 0)
                .map_err(|e| sys("openat2", &shown, e))?;
            let src = open_beneath(from.as_fd(), &src_c, libc::O_DIRECTORY | libc::O_RDONLY, 0)
                .map_err(|e| sys("openat2", &shown, e))?;
            for n in names(&src, &shown)? {
                copy_entry(t, &src, &n, &dst, &shown, count)?;
            }
            set_attrs(
                dst.as_fd(),
                &shown,
                mode,
                t.owner,
                (mtime.tv_sec(), mtime.tv_nsec() as u32),
                true,
            )?;
        }
        libc::S_IFREG => {
            let src = open_beneath(from.as_fd(), &src_c, libc::O_RDONLY, 0)
                .map_err(|e| sys("openat2", &shown, e))?;
            let dst = open_beneath(
                to.as_fd(),
                &dst_c,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )
            .map_err(|e| sys("openat2", &shown, e))?;
            let (mut src, mut dst) = (File::from(src), File::from(dst));
            std::io::copy(&mut src, &mut dst)
                .map_err(|e| sys("copy_file_range", &shown, crate::error::io_errno(&e)))?;
            set_attrs(
                dst.as_fd(),
                &shown,
                mode,
                t.owner,
                (mtime.tv_sec(), mtime.tv_nsec() as u32),
                true,
            )?;
        }
        libc::S_IFLNK => {
            let target = readlinkat(from.as_fd(), src_c.as_c_str())
                .map_err(|e| sys("readlinkat", &shown, e))?;
            symlinkat(target.as_os_str(), to, dst_c.as_c_str())
                .map_err(|e| sys("symlinkat", &shown, e))?;
            fchownat(
                to,
                dst_c.as_c_str(),
                owner.0,
                owner.1,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| sys("fchownat", &shown, e))?;
            utimensat(
                to,
                dst_c.as_c_str(),
                &mtime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| sys("utimensat", &shown, e))?;
        }
        // Devices, FIFOs and sockets of a build context are not copied (BuildKit's context
        // transfer skips sockets; a device node in a context is a mistake).
        _ => {}
    }
    Ok(())
}
