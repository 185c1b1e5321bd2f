//! A stack of layer directories under one overlay: how the lower layers reach overlayfs on
//! this kernel (probed once), how many it takes, and reading a file of the merged view before
//! clone. Parent-side code; the child's part is in `apply.rs`.
//!
//! # Passing the lowers
//! The child opens every layer `O_PATH` (in its own mount namespace: overlayfs takes only
//! layers on mounts of the mounting process's namespace, `clone_private_mount`, so a
//! descriptor the parent opened fails with `EINVAL`, "failed to clone lowerpath") and names
//! each by its descriptor:
//! - **`lowerdir+`** (Linux 6.7; the documentation says 6.8): one
//!   `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", "/proc/self/fd/N")` per layer, top first.
//!   Each value is far below fsconfig's 256-byte cap, so the kernel's own limit of 500 lowers
//!   (`OVL_MAX_STACK`) is the only one. `FSCONFIG_SET_FD` (6.13) would spare the path walk, but
//!   overlayfs then records the layer's host path (`d_path`) as the name it shows in
//!   `/proc/self/mountinfo` (checked on 6.18), and the container would see where the layers
//!   live; `/proc/self/fd/N` shows only that.
//! - **`mount(2)`** on older kernels (Debian 12's 6.1 has neither `lowerdir+` nor per-option
//!   parsing: through fsconfig its `lowerdir` is one 255-byte string, about 60 layers). The
//!   whole option string goes in one page: the layers as bare descriptor numbers,
//!   `lowerdir=12:13:14`, resolved against the child's working directory, which is
//!   `/proc/self/fd` for that one call (as containers/storage's `mountfrom` does). The overlay
//!   is mounted on a directory of a private tmpfs and cloned off it (`open_tree`), so the
//!   result is a detached mount as with `fsmount`. One page (4096 bytes; the kernel cuts
//!   longer data silently, so the parent checks the length) holds 500 descriptor numbers of up
//!   to five digits.
//!
//! Which one: the parent opens an overlay context (`fsopen`, needs `CAP_SYS_ADMIN` over its
//! mount namespace; it is never created), sets `lowerdir+` to `/` and a made-up flag:
//! `lowerdir+` taken and the made-up key refused is 6.7+. 6.5 and 6.6 refuse `lowerdir+`
//! (`EINVAL`, unknown key); kernels before 6.5 take both, as their legacy option page takes
//! any key and is parsed only at `FSCONFIG_CMD_CREATE`. A parent without that capability (rootless) cannot open the
//! context and goes by the kernel release (6.7 and later: `lowerdir+`); a child whose first
//! `lowerdir+` is refused with `EINVAL` falls back to `mount(2)`. [`OVERLAY_LEGACY_ENV`]`=1` in the
//! environment forces `mount(2)`.
//!
//! # Options for untrusted layers
//! Every overlay of this module is mounted with `index=off` (nothing to gain for a throw-away
//! or per-container upper, and `index=on` ties the upper to the lowers' file handles),
//! `redirect_dir=nofollow` (a crafted `overlay.redirect` xattr in a layer is not followed;
//! renames of lower directories fail with `EXDEV` and `mv` copies, as with the default
//! `redirect_dir=off`) and `metacopy=off` (a crafted `overlay.metacopy` file cannot borrow
//! another file's data; the overlayfs documentation warns against `metacopy=on` with untrusted
//! layers). With `userxattr` the kernel forces the last two anyway and accepts them said
//! explicitly (6.1 and 6.18). `xino` is left at the kernel's default (`xino_auto`, off in
//! Debian): it only changes inode numbers.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::io_errno;
use crate::mount::apply::{open, Fd};
use crate::sys::mount as raw;
use crate::{Errno, Error, Result};

/// overlayfs' `OVL_MAX_STACK`: the most lower layers one overlay takes (every kernel since
/// 4.0; `fs/overlayfs/super.c`, since 6.5 `params.h`).
pub(crate) const OVL_MAX_STACK: usize = 500;

/// The most bytes of `mount(2)` data the kernel reads: one page (4096 bytes on every
/// architecture's smallest page) less the NUL it forces into the last byte.
pub(crate) const LEGACY_DATA_MAX: usize = 4095;

/// Bytes of the legacy data that are not layers, at most: the options, `lowerdir=` and an
/// upper and work directory (as descriptor numbers).
const LEGACY_RESERVED: usize = 256;

/// Digits of a descriptor number [`max_lowers`] assumes for the legacy method (below
/// 100000); the child checks the real length (`E2BIG`).
const LEGACY_FD_DIGITS: usize = 5;

/// What the legacy method fits in a page, at most [`OVL_MAX_STACK`].
const LEGACY_MAX_LOWERS: usize = {
    let fit = (LEGACY_DATA_MAX - LEGACY_RESERVED) / (LEGACY_FD_DIGITS + 1);
    if fit < OVL_MAX_STACK {
        fit
    } else {
        OVL_MAX_STACK
    }
};

// 500 descriptor numbers of five digits and their colons, with the reserve, fit in the page:
// the legacy method takes as many layers as overlayfs.
const _: () = assert!(LEGACY_MAX_LOWERS == OVL_MAX_STACK);

/// The overlay options every overlay of a rootfs is mounted with (see the module
/// documentation): key, value.
pub(crate) const UNTRUSTED_LOWER_OPTIONS: [(&CStr, &CStr); 3] = [
    (c"index", c"off"),
    (c"redirect_dir", c"nofollow"),
    (c"metacopy", c"off"),
];

/// How the child passes the lower layers to overlayfs (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LowerMethod {
    /// `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", "/proc/self/fd/N")` per layer (6.7+).
    Append,
    /// One `mount(2)` with `lowerdir=N:N:...` relative to `/proc/self/fd`.
    Legacy,
}

/// The method of this kernel, probed once per process; `None` when the kernel has no
/// overlayfs.
pub(crate) fn lower_method() -> Option<LowerMethod> {
    static METHOD: OnceLock<Option<LowerMethod>> = OnceLock::new();
    *METHOD.get_or_init(probe)
}

/// Set to `1` in a process's environment, makes it pass the layers with `mount(2)` as on
/// kernels before 6.7 (read once): for tests of that path on newer kernels, and a way out on
/// a kernel whose `lowerdir+` misbehaves.
pub const OVERLAY_LEGACY_ENV: &str = "CONTAIN_OVERLAY_LEGACY";

fn probe() -> Option<LowerMethod> {
    let legacy = std::env::var_os(OVERLAY_LEGACY_ENV).is_some_and(|v| v == "1");
    // SAFETY: the type is a NUL-terminated string.
    let fs = match unsafe { raw::fsopen(c"overlay".as_ptr(), raw::FSOPEN_CLOEXEC) } {
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(Errno::ENODEV) => return None,
        // EPERM: no CAP_SYS_ADMIN over the caller's mount namespace (rootless).
        Err(_) if legacy => return Some(LowerMethod::Legacy),
        Err(_) => return Some(by_release()),
    };
    if legacy {
        return Some(LowerMethod::Legacy);
    }
    let ctx = fs.as_raw_fd();
    // SAFETY: key and value are NUL-terminated strings that live across the call.
    let appended = unsafe {
        raw::fsconfig(
            ctx,
            raw::FSCONFIG_SET_STRING,
            c"lowerdir+".as_ptr(),
            c"/".as_ptr().cast(),
            0,
        )
    };
    // SAFETY: the key is a NUL-terminated string; a flag has no value.
    let unknown = unsafe {
        raw::fsconfig(
            ctx,
            raw::FSCONFIG_SET_FLAG,
            c"contain-probe-unknown-key".as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    match (appended, unknown) {
        // A parser that knows lowerdir+ and refuses what it does not know.
        (Ok(()), Err(_)) => Some(LowerMethod::Append),
        // 6.5, 6.6: lowerdir+ unknown; before 6.5: the legacy page takes any key.
        _ => Some(LowerMethod::Legacy),
    }
}

/// `lowerdir+` from Linux 6.7 on, by `uname`'s release; for a parent that cannot probe.
fn by_release() -> LowerMethod {
    match nix::sys::utsname::uname() {
        Ok(uts) => by_release_text(&uts.release().to_string_lossy()),
        Err(_) => LowerMethod::Legacy,
    }
}

/// [`by_release`] of a `uname -r` text such as `6.1.0-27-amd64`.
fn by_release_text(release: &str) -> LowerMethod {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (6, 7) {
        LowerMethod::Append
    } else {
        LowerMethod::Legacy
    }
}

/// How many lower layers a [`Rootfs::from_layers`](super::Rootfs::from_layers) overlay may
/// have on this kernel, by the way the layers are passed here (probed once per process; see
/// the [module documentation](super#layers)): 500 (overlayfs' `OVL_MAX_STACK`) with
/// `lowerdir+` (Linux 6.7+), and what one `mount(2)` page of options holds on older kernels,
/// assuming descriptor numbers below 100000 (also 500 with 4 KiB pages). A persistent or
/// throw-away upper layer is not counted. Beyond it `spawn` fails with
/// [`Error::Unsupported`]; flatten the bottom layers into one directory to fit.
///
/// # Errors
/// [`Error::Unsupported`] when the kernel has no overlay filesystem.
pub fn max_lowers() -> Result<usize> {
    match lower_method() {
        Some(LowerMethod::Append) => Ok(OVL_MAX_STACK),
        Some(LowerMethod::Legacy) => Ok(LEGACY_MAX_LOWERS),
        None => Err(no_overlayfs()),
    }
}

pub(crate) fn no_overlayfs() -> Error {
    Error::unsupported(
        "overlay filesystem",
        "the kernel has no overlayfs (not in /proc/filesystems, and no module could be \
         loaded): RootfsMode::ReadOnly or ReadWrite of a single directory work without it",
    )
}

/// The error for more layers than the kernel stacks.
pub(crate) fn too_many_layers(count: usize, max: usize) -> Error {
    Error::unsupported(
        "an overlay of this many layers",
        format!(
            "too many layers: {count} lower layers, and overlayfs on this kernel takes at most \
             {max} (rootfs::max_lowers); flatten the bottom layers into one directory"
        ),
    )
}

/// The start of the legacy method's `mount(2)` data: the options, then `lowerdir=`, after
/// which the child writes the descriptor numbers of the layers it opened (top first, `:`
/// between them) and its upper and work directories (see `apply.rs`).
pub(crate) fn legacy_head(userxattr: bool) -> Vec<u8> {
    let mut data = Vec::with_capacity(LEGACY_RESERVED);
    for (key, value) in UNTRUSTED_LOWER_OPTIONS {
        data.extend_from_slice(key.to_bytes());
        data.push(b'=');
        data.extend_from_slice(value.to_bytes());
        data.push(b',');
    }
    if userxattr {
        data.extend_from_slice(b"userxattr,");
    }
    data.extend_from_slice(b"lowerdir=");
    data
}

/// Opens a layer directory (`O_PATH`, close-on-exec), following the caller's path as given
/// (it is a host path of the caller's).
fn open_layer(path: &Path, what: &'static str) -> Result<OwnedFd> {
    let c = crate::mount::cstring(path.as_os_str(), what)?;
    let flags = (libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY) as u64;
    let fd = open(libc::AT_FDCWD, &c, flags, 0, 0)
        .map_err(|errno| Error::sys_path("openat2", path, errno))?;
    Ok(into_owned(fd))
}

pub(crate) fn into_owned(fd: Fd) -> OwnedFd {
    let raw = fd.0;
    std::mem::forget(fd);
    // SAFETY: `Fd` owned this open descriptor and was forgotten: ownership moves here.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

// ---------------------------------------------------------------------------------------------
// Reading a file of the merged view

/// Symbolic links followed in one lookup, as the kernel's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;
/// Path components looked at in one lookup (bounds what hostile link chains can make us do).
const MAX_COMPONENTS: usize = 4096;

/// One name looked up in a merged directory.
enum Entry {
    Missing,
    Dir(Vec<OwnedFd>),
    Symlink(OwnedFd),
    File(OwnedFd),
}

/// The file `rel` (relative) of the overlay of `layers` (top first; a missing directory
/// counts as empty) as the container's merged view shows it, at most `max` bytes; `None` when
/// it is not a regular file there. `opaque` names the xattr that marks an opaque directory.
pub(crate) fn read_merged(
    layers: &[&Path],
    rel: &CStr,
    opaque: &CStr,
    max: u64,
) -> Result<Option<Vec<u8>>> {
    let mut roots = Vec::with_capacity(layers.len());
    for layer in layers {
        match open_layer(layer, "layer directory") {
            Ok(fd) => roots.push(fd),
            Err(Error::Sys {
                errno: Errno::ENOENT,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    let lookup = Lookup {
        roots: &roots,
        opaque,
        what: layers.first().copied().unwrap_or(Path::new("/")),
    };
    let Some(file) = lookup.resolve(rel.to_bytes())? else {
        return Ok(None);
    };
    let path = || lookup.what.join(OsStr::from_bytes(rel.to_bytes()));
    let f = std::fs::File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| Error::sys_path("open", path(), io_errno(&e)))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max), &mut bytes)
        .map_err(|e| Error::sys_path("read", path(), io_errno(&e)))?;
    Ok(Some(bytes))
}

/// A directory of the merged view as [`merged_dir`] finds it: the path with every symbolic
/// link resolved, as components from the root, split into the part that exists (each with
/// the attributes of its topmost layer's directory) and the part that does not.
#[derive(Debug, Default)]
pub(crate) struct MergedDir {
    /// Existing directories from the root: name and `(mode, uid, gid, mtime seconds, mtime
    /// nanoseconds)` of the topmost layer's copy.
    pub existing: Vec<(Vec<u8>, DirAttrs)>,
    /// The components that do not exist (no link among them to resolve).
    pub missing: Vec<Vec<u8>>,
}

/// The attributes a directory made in an upper layer copies from the lower one it stands
/// for: mode (permission bits), uid, gid, mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirAttrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, u32),
}

/// Where the directory `rel` of the overlay of `layers` (top first) is, for writing into a
/// new upper layer: symbolic links resolved the way the merged view resolves them (a link
/// in a lower layer, `/bin -> usr/bin`, is followed inside the stack, never out of it).
///
/// # Errors
/// [`Error::Config`] when a component is a file (not a directory) or the links loop; as
/// [`read_merged`] for the layers.
pub(crate) fn merged_dir(layers: &[&Path], rel: &[u8], opaque: &CStr) -> Result<MergedDir> {
    let mut roots = Vec::with_capacity(layers.len());
    for layer in layers {
        roots.push(open_layer(layer, "layer directory")?);
    }
    let lookup = Lookup {
        roots: &roots,
        opaque,
        what: layers.first().copied().unwrap_or(Path::new("/")),
    };
    lookup.dir(rel)
}

struct Lookup<'a> {
    roots: &'a [OwnedFd],
    opaque: &'a CStr,
    /// For error messages: the top layer.
    what: &'a Path,
}

impl Lookup<'_> {
    /// The regular file at `rel` in the merged view, opened `O_PATH`.
    fn resolve(&self, rel: &[u8]) -> Result<Option<OwnedFd>> {
        // Components still to walk, the next one last.
        let mut pending: Vec<Vec<u8>> = split(rel).rev().map(<[u8]>::to_vec).collect();
        // The directories walked from the root (none of them a link).
        let mut walked: Vec<Vec<u8>> = Vec::new();
        let mut cur: Option<Vec<OwnedFd>> = None;
        let (mut links, mut seen) = (0, 0);
        while let Some(name) = pending.pop() {
            seen += 1;
            if seen > MAX_COMPONENTS {
                return Ok(None);
            }
            if name == b"." {
                continue;
            }
            if name == b".." {
                // Lexically, on the real directories walked: as the kernel's `..` (at the
                // root, the root).
                walked.pop();
                cur = match self.rewalk(&walked)? {
                    Some(dirs) => dirs,
                    None => return Ok(None),
                };
                continue;
            }
            let dirs = cur.as_deref().unwrap_or(self.roots);
            match self.entry(dirs, &name)? {
                Entry::Missing => return Ok(None),
                Entry::Symlink(link) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Ok(None);
                    }
                    let mut buf = vec![0u8; libc::PATH_MAX as usize];
                    let len = raw::readlink_fd(link.as_raw_fd(), &mut buf)
                        .map_err(|e| Error::sys_path("readlinkat", self.what, e))?;
                    buf.truncate(len);
                    if buf.first() == Some(&b'/') {
                        walked.clear();
                        cur = None;
                    }
                    pending.extend(split(&buf).rev().map(<[u8]>::to_vec));
                }
                Entry::Dir(fds) => {
                    if pending.is_empty() {
                        return Ok(None);
                    }
                    walked.push(name);
                    cur = Some(fds);
                }
                Entry::File(fd) => return Ok(pending.is_empty().then_some(fd)),
            }
        }
        Ok(None)
    }

    /// See [`merged_dir`].
    fn dir(&self, rel: &[u8]) -> Result<MergedDir> {
        let shown = || self.what.join(OsStr::from_bytes(rel));
        let refuse = |why: &str| {
            Err(Error::config(
                "directory in the image",
                format!("{}: {why}", String::from_utf8_lossy(rel)),
            ))
        };
        let mut pending: Vec<Vec<u8>> = split(rel).rev().map(<[u8]>::to_vec).collect();
        let mut out = MergedDir::default();
        let mut cur: Option<Vec<OwnedFd>> = None;
        let (mut links, mut seen) = (0, 0);
        while let Some(name) = pending.pop() {
            seen += 1;
            if seen > MAX_COMPONENTS {
                return refuse("too many path components");
            }
            if name == b"." {
                continue;
            }
            if name == b".." {
                out.existing.pop();
                let walked: Vec<Vec<u8>> = out.existing.iter().map(|(n, _)| n.clone()).collect();
                cur = match self.rewalk(&walked)? {
                    Some(dirs) => dirs,
                    None => return refuse("a directory changed while it was looked up"),
                };
                continue;
            }
            let dirs = cur.as_deref().unwrap_or(self.roots);
            match self.entry(dirs, &name)? {
                Entry::Missing => {
                    out.missing.push(name);
                    // Nothing below a missing directory exists: the rest is created as named
                    // (`..` leaves what is to be created).
                    while let Some(n) = pending.pop() {
                        match n.as_slice() {
                            b"." => {}
                            b".." => {
                                if out.missing.pop().is_none() {
                                    return refuse("`..` out of a directory to be created");
                                }
                            }
                            _ => out.missing.push(n),
                        }
                    }
                    return Ok(out);
                }
                Entry::Symlink(link) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return refuse("too many levels of symbolic links");
                    }
                    let mut buf = vec![0u8; libc::PATH_MAX as usize];
                    let len = raw::readlink_fd(link.as_raw_fd(), &mut buf)
                        .map_err(|e| Error::sys_path("readlinkat", shown(), e))?;
                    buf.truncate(len);
                    if buf.first() == Some(&b'/') {
                        out.existing.clear();
                        cur = None;
                    }
                    pending.extend(split(&buf).rev().map(<[u8]>::to_vec));
                }
                Entry::Dir(fds) => {
                    let mask =
                        libc::STATX_MODE | libc::STATX_UID | libc::STATX_GID | libc::STATX_MTIME;
                    let stx = raw::fstatx(fds[0].as_raw_fd(), mask)
                        .map_err(|e| Error::sys_path("statx", shown(), e))?;
                    let attrs = DirAttrs {
                        mode: u32::from(stx.stx_mode) & 0o7777,
                        uid: stx.stx_uid,
                        gid: stx.stx_gid,
                        mtime: (stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec),
                    };
                    out.existing.push((name, attrs));
                    cur = Some(fds);
                }
                Entry::File(_) => return refuse("a component is not a directory"),
            }
        }
        Ok(out)
    }

    /// The merged directory at `walked` (from the root, no links in it), `None` if it is
    /// no longer one.
    fn rewalk(&self, walked: &[Vec<u8>]) -> Result<Option<Option<Vec<OwnedFd>>>> {
        let mut cur: Option<Vec<OwnedFd>> = None;
        for name in walked {
            match self.entry(cur.as_deref().unwrap_or(self.roots), name)? {
                Entry::Dir(fds) => cur = Some(fds),
                _ => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// `name` in the merged directory made of `dirs` (top first): the topmost layer's entry
    /// wins; a whiteout (character device 0:0) hides it and everything below; a directory
    /// merges with the same name's directories below it, down to the first opaque one or the
    /// first layer where the name is not a directory.
    fn entry(&self, dirs: &[OwnedFd], name: &[u8]) -> Result<Entry> {
        let name_c = CString::new(name).map_err(|_| {
            Error::config(
                "rootfs file",
                "a path component holds a NUL byte".to_string(),
            )
        })?;
        let mut merged = Vec::new();
        for dir in dirs {
            let Some(fd) = self.open_in(dir, &name_c)? else {
                continue;
            };
            let stx = raw::fstatx(fd.as_raw_fd(), libc::STATX_TYPE).map_err(|e| {
                Error::sys_path("statx", self.what.join(OsStr::from_bytes(name)), e)
            })?;
            let kind = u32::from(stx.stx_mode) & libc::S_IFMT;
            let whiteout =
                kind == libc::S_IFCHR && stx.stx_rdev_major == 0 && stx.stx_rdev_minor == 0;
            if kind != libc::S_IFDIR {
                if !merged.is_empty() || whiteout {
                    // Below a directory, or hidden by a whiteout: nothing more to merge.
                    break;
                }
                return Ok(match kind {
                    libc::S_IFLNK => Entry::Symlink(fd),
                    libc::S_IFREG => Entry::File(fd),
                    _ => Entry::Missing,
                });
            }
            let opaque = self.is_opaque(&fd);
            merged.push(fd);
            if opaque {
                break;
            }
        }
        Ok(if merged.is_empty() {
            Entry::Missing
        } else {
            Entry::Dir(merged)
        })
    }

    /// `name` (one component) in the layer directory `dir`, never following a link.
    fn open_in(&self, dir: &OwnedFd, name: &CStr) -> Result<Option<OwnedFd>> {
        let flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
        let resolve = raw::RESOLVE_IN_ROOT | raw::RESOLVE_NO_SYMLINKS;
        match open(dir.as_raw_fd(), name, flags, 0, resolve) {
            Ok(fd) => Ok(Some(into_owned(fd))),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(Error::sys_path(
                "openat2",
                self.what.join(OsStr::from_bytes(name.to_bytes())),
                e,
            )),
        }
    }

    /// Whether the directory `fd` carries the opaque xattr with the value `y`.
    fn is_opaque(&self, fd: &OwnedFd) -> bool {
        // fgetxattr does not take O_PATH descriptors before 6.13 (getxattrat): the magic link.
        let Ok(path) = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return false;
        };
        let mut value = [0u8; 2];
        // SAFETY: both strings are NUL-terminated; the kernel writes at most 2 bytes into
        // the live buffer.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                self.opaque.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        n == 1 && value[0] == b'y'
    }
}

/// The non-empty components of a `/`-separated path.
fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_is_one_of_the_two_or_no_overlayfs() {
        // Whatever this kernel is, max_lowers agrees with the method.
        match lower_method() {
            Some(_) => assert_eq!(max_lowers().unwrap(), OVL_MAX_STACK),
            None => assert!(max_lowers().is_err()),
        }
    }

    #[test]
    fn the_legacy_head_lists_the_options_then_lowerdir() {
        assert_eq!(
            legacy_head(true),
            b"index=off,redirect_dir=nofollow,metacopy=off,userxattr,lowerdir="
        );
        assert_eq!(
            legacy_head(false),
            b"index=off,redirect_dir=nofollow,metacopy=off,lowerdir="
        );
        assert!(legacy_head(true).len() + 2 * 30 < LEGACY_RESERVED);
    }

    #[test]
    fn the_probe_finds_lowerdir_plus_from_6_7_on_as_root() {
        if !nix::unistd::geteuid().is_root() || std::env::var_os(OVERLAY_LEGACY_ENV).is_some() {
            return;
        }
        // As root the probe runs (it is not by_release): it agrees with the release here,
        // on the host's 6.18 and the guest's 6.1 alike.
        if let Some(method) = lower_method() {
            assert_eq!(method, by_release());
        }
    }

    #[test]
    fn lowerdir_plus_is_expected_from_6_7_on() {
        assert_eq!(by_release_text("6.1.0-27-amd64"), LowerMethod::Legacy);
        assert_eq!(by_release_text("6.6.58"), LowerMethod::Legacy);
        assert_eq!(by_release_text("6.7.0"), LowerMethod::Append);
        assert_eq!(by_release_text("6.18.44-fc-v782"), LowerMethod::Append);
        assert_eq!(by_release_text("7.0"), LowerMethod::Append);
        assert_eq!(by_release_text("5.15.0-1-generic"), LowerMethod::Legacy);
        assert_eq!(by_release_text("garbage"), LowerMethod::Legacy);
    }
}
