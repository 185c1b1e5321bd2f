//! Mounts: a builder for bind, tmpfs, proc, sysfs, devpts, mqueue, overlay and cgroup2 mounts,
//! with flags and propagation, that can be applied inside a rootfs without ever leaving it.
//!
//! A mount is used in two steps, because container runtimes mount in the child between `clone`
//! and `execve`, where nothing may allocate:
//!
//! 1. [`Mount::prepare`] (in the parent) validates the configuration and builds every string,
//!    option list and flag word ahead of time, giving a [`PreparedMount`].
//! 2. [`PreparedMount::apply_in`] (in the child, or anywhere) performs the mount with raw
//!    system calls only: no allocation, no locks, no libc, no `errno`. Failures come back as a
//!    small `Copy` value, [`MountError`], that the child can write to a pipe and the parent can
//!    turn into a [`crate::Error`] with [`PreparedMount::error`].
//!
//! [`Mount::mount`] does both in the calling process, for callers that manage their own mount
//! namespace.
//!
//! # Safety inside a rootfs
//! The target is always resolved relative to a root directory with `openat2(2)` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: symlinks in the image, absolute or relative, and
//! `..` chains are resolved as if that directory were `/`, so a mount can never land outside it
//! (the runc/crun symlink-race class of CVEs). The mount is then made through the descriptor
//! (`move_mount(MOVE_MOUNT_T_EMPTY_PATH)`, or `mount(2)` on `/proc/self/fd/N` on kernels without
//! the new mount API), never by path. Missing mount points are created with `mkdirat(2)` relative
//! to a parent directory descriptor that was itself resolved in the root, one component at a
//! time: a directory for a directory source or a new filesystem, an empty file for a file
//! source. A symlink on the way (or as the last component) that leads to a missing path is
//! read (`readlinkat`) and followed *inside the root*, as `RESOLVE_IN_ROOT` would: an absolute
//! target from the root, `..` stopping at the root, at most 40 links (`ELOOP`). The missing
//! path it names is created there, with its missing parents: an image whose
//! `/etc/localtime -> /usr/share/zoneinfo/Etc/UTC` ships no zoneinfo gets that file created
//! in its root (in the overlay's upper layer, or in the image with `ReadWrite`) and the bind
//! lands on it, as with runc and docker. Nothing is ever created outside the root. On a
//! read-only root the creation fails with `EROFS` and an error that says so.
//!
//! The mount point's type must fit the source: a directory (or a new filesystem) onto a
//! directory, a file onto a non-directory. A mismatch is reported before the mount with an
//! [`Error::Config`] that names both paths and what to do (the kernel would only say
//! `EINVAL`).
//!
//! # Kernel support
//! - `openat2(2)` (Linux 5.6) is required.
//! - The new mount API (`fsopen`, `fsmount`, `open_tree`, `move_mount`; Linux 5.2) is used when
//!   present; `ENOSYS` falls back to `mount(2)` through `/proc/self/fd/N`, which needs a procfs
//!   at `/proc` in the calling mount namespace (the host's is still there before `pivot_root`).
//! - Flags on bind mounts are set with `mount_setattr(2)` (Linux 5.12), recursively for a
//!   recursive bind, on the detached copy before it is attached, so it is never visible
//!   writable. Without `mount_setattr` a non-recursive bind falls back to a remount (keeping the
//!   flags the kernel locks); a *recursive* bind with flags fails with `ENOSYS` (reported as
//!   [`Error::Unsupported`]) rather than silently leaving submounts writable.
//!
//! # Propagation
//! Mounts made in a new mount namespace still propagate to the host when the mount they are made
//! under is shared. Make the new namespace's `/` a slave or private first (for example
//! [`make_rslave`]`("/")` or [`make_rprivate`]`("/")` right after `unshare(CLONE_NEWNS)`).

pub(crate) mod apply;
mod spec;

pub use spec::parse_size;

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use crate::cgroup::Bytes;
use crate::sys::mount as raw;
use crate::{Errno, Error, Result};

/// How access times are updated on a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Atime {
    /// Update the access time only if it is older than the modification time (the default).
    Relatime,
    /// Never update access times.
    Noatime,
    /// Always update access times.
    Strictatime,
}

/// Mount propagation (see `mount_namespaces(7)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// No events to or from peers.
    Private,
    /// Receives events from its master peer group, sends none.
    Slave,
    /// Sends and receives events within its peer group.
    Shared,
    /// Private, and cannot be the source of a bind mount.
    Unbindable,
}

impl Propagation {
    fn ms_flag(self) -> MsFlags {
        match self {
            Propagation::Private => MsFlags::MS_PRIVATE,
            Propagation::Slave => MsFlags::MS_SLAVE,
            Propagation::Shared => MsFlags::MS_SHARED,
            Propagation::Unbindable => MsFlags::MS_UNBINDABLE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Bind {
        source: PathBuf,
    },
    Tmpfs,
    Proc,
    Sysfs,
    Devpts,
    Mqueue,
    Overlay {
        lower: Vec<PathBuf>,
        upper: Option<PathBuf>,
        work: Option<PathBuf>,
    },
    Cgroup2,
}

impl Kind {
    fn fstype(&self) -> &'static str {
        match self {
            Kind::Bind { .. } => "bind",
            Kind::Tmpfs => "tmpfs",
            Kind::Proc => "proc",
            Kind::Sysfs => "sysfs",
            Kind::Devpts => "devpts",
            Kind::Mqueue => "mqueue",
            Kind::Overlay { .. } => "overlay",
            Kind::Cgroup2 => "cgroup2",
        }
    }
}

/// A mount to make: what, where, with which flags and propagation.
///
/// Plain data until [`prepare`](Mount::prepare)d; every setter takes and returns `self`, and
/// all validation happens in `prepare`.
///
/// # Example
/// ```
/// use contain::mount::{Atime, Mount, Propagation};
/// use contain::Bytes;
///
/// let mounts = [
///     Mount::proc("/proc").nosuid().nodev().noexec(),
///     Mount::tmpfs("/tmp").size(Bytes::mib(64)).mode(0o1777).nosuid().nodev(),
///     Mount::bind("/srv/data", "/data").read_only().atime(Atime::Noatime),
///     Mount::devpts("/dev/pts").ptmxmode(0o666).mode(0o620).gid(5),
///     Mount::tmpfs("/run").propagation(Propagation::Private, true),
/// ];
/// // In the parent, before clone: validate and build every string.
/// let prepared = mounts.iter().map(Mount::prepare).collect::<contain::Result<Vec<_>>>()?;
/// // In the child, with the rootfs directory open: `prepared[i].apply_in(Some(rootfs_fd))`.
/// # drop(prepared);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    kind: Kind,
    target: PathBuf,
    read_only: bool,
    nosuid: bool,
    nodev: bool,
    noexec: bool,
    nosymfollow: bool,
    atime: Option<Atime>,
    recursive: bool,
    propagation: Option<(Propagation, bool)>,
    create_target: bool,
    size: Option<u64>,
    mode: Option<u32>,
    ptmxmode: Option<u32>,
    gid: Option<u32>,
    options: Vec<(String, Option<String>)>,
    /// The source of a new filesystem (its type when `None`).
    source_name: Option<String>,
}

impl Mount {
    fn new(kind: Kind, target: PathBuf) -> Mount {
        Mount {
            kind,
            target,
            read_only: false,
            nosuid: false,
            nodev: false,
            noexec: false,
            nosymfollow: false,
            atime: None,
            recursive: true,
            propagation: None,
            create_target: true,
            size: None,
            mode: None,
            ptmxmode: None,
            gid: None,
            options: Vec::new(),
            source_name: None,
        }
    }

    /// A bind mount of `source` (a directory or a file) at `target`.
    ///
    /// Recursive by default (`rbind`): a non-recursive bind would show the directories that
    /// submounts of `source` cover, which may hide things on purpose. A relative `source` is
    /// taken relative to the current directory when the mount is prepared.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::bind("/etc/resolv.conf", "/etc/resolv.conf").read_only();
    /// ```
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Mount {
        Mount::new(
            Kind::Bind {
                source: source.into(),
            },
            target.into(),
        )
    }

    /// A new tmpfs at `target`; see [`size`](Mount::size) and [`mode`](Mount::mode).
    ///
    /// ```
    /// use contain::mount::Mount;
    /// use contain::Bytes;
    /// let m = Mount::tmpfs("/dev/shm").size(Bytes::mib(64)).mode(0o1777).nosuid().nodev();
    /// ```
    pub fn tmpfs(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Tmpfs, target.into())
    }

    /// A new procfs at `target`, for the pid namespace of the process that applies it.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::proc("/proc").nosuid().nodev().noexec();
    /// ```
    pub fn proc(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Proc, target.into())
    }

    /// A sysfs at `target`, for the network namespace of the process that applies it.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::sysfs("/sys").read_only().nosuid().nodev().noexec();
    /// ```
    pub fn sysfs(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Sysfs, target.into())
    }

    /// A new devpts instance at `target` (always `newinstance`); see
    /// [`ptmxmode`](Mount::ptmxmode), [`mode`](Mount::mode), [`gid`](Mount::gid).
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::devpts("/dev/pts").ptmxmode(0o666).mode(0o620).gid(5).nosuid().noexec();
    /// ```
    pub fn devpts(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Devpts, target.into())
    }

    /// A POSIX message queue filesystem at `target`, for the IPC namespace of the process
    /// that applies it.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::mqueue("/dev/mqueue").nosuid().nodev().noexec();
    /// ```
    pub fn mqueue(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Mqueue, target.into())
    }

    /// An overlay at `target`: `lower` layers (first is topmost), with writes going to `upper`
    /// and `work` (an empty directory on the same filesystem as `upper`).
    ///
    /// Layer paths must not contain `:`, `,` or `\` (the overlay option syntax has no reliable
    /// escape for them across kernels).
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::overlay(vec!["/images/app".into(), "/images/base".into()],
    ///                        "/run/c1/upper", "/run/c1/work", "/run/c1/root");
    /// ```
    pub fn overlay(
        lower: Vec<PathBuf>,
        upper: impl Into<PathBuf>,
        work: impl Into<PathBuf>,
        target: impl Into<PathBuf>,
    ) -> Mount {
        let kind = Kind::Overlay {
            lower,
            upper: Some(upper.into()),
            work: Some(work.into()),
        };
        Mount::new(kind, target.into())
    }

    /// A read-only overlay of `lower` layers (first is topmost) without an upper layer.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::overlay_read_only(vec!["/images/app".into(), "/images/base".into()], "/mnt");
    /// ```
    pub fn overlay_read_only(lower: Vec<PathBuf>, target: impl Into<PathBuf>) -> Mount {
        Mount::new(
            Kind::Overlay {
                lower,
                upper: None,
                work: None,
            },
            target.into(),
        )
    }

    /// A cgroup2 filesystem at `target`, showing the cgroup namespace of the process that
    /// applies it.
    ///
    /// Apply it in a new cgroup namespace: in the initial one, a cgroup2 mount also resets
    /// hierarchy-wide options (such as `nsdelegate`) of the host's cgroup2 to the ones given.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::cgroup2("/sys/fs/cgroup").nosuid().nodev().noexec();
    /// ```
    pub fn cgroup2(target: impl Into<PathBuf>) -> Mount {
        Mount::new(Kind::Cgroup2, target.into())
    }

    /// Makes the mount read-only (for a recursive bind, every submount too).
    #[must_use]
    pub fn read_only(mut self) -> Mount {
        self.read_only = true;
        self
    }

    /// Ignores set-user-id and set-group-id bits and file capabilities.
    #[must_use]
    pub fn nosuid(mut self) -> Mount {
        self.nosuid = true;
        self
    }

    /// Refuses access to device nodes.
    #[must_use]
    pub fn nodev(mut self) -> Mount {
        self.nodev = true;
        self
    }

    /// Refuses to execute programs.
    #[must_use]
    pub fn noexec(mut self) -> Mount {
        self.noexec = true;
        self
    }

    /// Refuses to follow symlinks on this mount in path resolution (Linux 5.10).
    #[must_use]
    pub fn nosymfollow(mut self) -> Mount {
        self.nosymfollow = true;
        self
    }

    /// Sets how access times are updated.
    #[must_use]
    pub fn atime(mut self, atime: Atime) -> Mount {
        self.atime = Some(atime);
        self
    }

    /// For a bind: whether submounts of the source come along (default `true`), and with them
    /// the flags. New filesystems have no submounts, so it changes nothing for them.
    #[must_use]
    pub fn recursive(mut self, recursive: bool) -> Mount {
        self.recursive = recursive;
        self
    }

    /// Sets the propagation of the new mount (with `recursive`, of its submounts too).
    #[must_use]
    pub fn propagation(mut self, propagation: Propagation, recursive: bool) -> Mount {
        self.propagation = Some((propagation, recursive));
        self
    }

    /// Whether a missing mount point is created (default `true`).
    #[must_use]
    pub fn create_target(mut self, create: bool) -> Mount {
        self.create_target = create;
        self
    }

    /// tmpfs only: the size limit (`Bytes::mib(64)`, or `"64m".parse()?` for docker's
    /// `--tmpfs size=` syntax); writes beyond fail with `ENOSPC`. The kernel rounds it up to
    /// whole pages; `Bytes(0)` is no limit, as tmpfs reads `size=0`. Default: the kernel's
    /// tmpfs default (half of RAM).
    #[must_use]
    pub fn size(mut self, bytes: Bytes) -> Mount {
        self.size = Some(bytes.as_u64());
        self
    }

    /// tmpfs: permissions of the root directory; devpts: permissions of new pty nodes.
    /// Permission bits such as `0o1777` (at most `0o7777`); the kernel's defaults are `1777`
    /// for tmpfs and `600` for devpts.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Mount {
        self.mode = Some(mode);
        self
    }

    /// devpts only: permissions of the `ptmx` node (the kernel's default, `000`, makes it
    /// unusable; `0o666` is what containers use).
    #[must_use]
    pub fn ptmxmode(mut self, mode: u32) -> Mount {
        self.ptmxmode = Some(mode);
        self
    }

    /// devpts only: group of new pty nodes.
    #[must_use]
    pub fn gid(mut self, gid: u32) -> Mount {
        self.gid = Some(gid);
        self
    }

    /// For a new filesystem: the source name the kernel shows for it (mountinfo's source
    /// field, `df`), e.g. `shm` for a tmpfs at `/dev/shm` as docker and runc name theirs.
    /// Default: the filesystem type. Ignored for binds (their source is the path). A name
    /// with a NUL is refused when the mount is prepared.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let m = Mount::tmpfs("/dev/shm").source_name("shm");
    /// ```
    #[must_use]
    pub fn source_name(mut self, name: impl Into<String>) -> Mount {
        self.source_name = Some(name.into());
        self
    }

    /// A filesystem option `key=value` passed as it is (e.g. tmpfs `nr_inodes`, proc
    /// `hidepid`, overlay `redirect_dir`). Not for binds.
    #[must_use]
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Mount {
        self.options.push((key.into(), Some(value.into())));
        self
    }

    /// A filesystem flag option without a value (e.g. overlay `userxattr`). Not for binds.
    #[must_use]
    pub fn option_flag(mut self, key: impl Into<String>) -> Mount {
        self.options.push((key.into(), None));
        self
    }

    /// The mount point, as seen from the root it is applied in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Validates the mount and builds everything [`PreparedMount::apply_in`] needs.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Config`] for a relative target, a NUL byte anywhere, an option that
    /// does not belong to this filesystem type, a mode above `0o7777`, or overlay layer paths
    /// with `:`, `,` or `\`.
    pub fn prepare(&self) -> Result<PreparedMount> {
        let target_rel = split_target(&self.target)?;
        self.check_options()?;

        let mut attr_set = 0;
        let mut attr_clr = 0;
        let mut ms = MsFlags::empty();
        for (on, attr, flag) in [
            (self.read_only, raw::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
            (self.nosuid, raw::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
            (self.nodev, raw::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
            (self.noexec, raw::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
            (
                self.nosymfollow,
                raw::MOUNT_ATTR_NOSYMFOLLOW,
                MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
            ),
        ] {
            if on {
                attr_set |= attr;
                ms |= flag;
            }
        }
        if let Some(atime) = self.atime {
            attr_clr |= raw::MOUNT_ATTR__ATIME;
            let (attr, flag) = match atime {
                Atime::Relatime => (raw::MOUNT_ATTR_RELATIME, MsFlags::MS_RELATIME),
                Atime::Noatime => (raw::MOUNT_ATTR_NOATIME, MsFlags::MS_NOATIME),
                Atime::Strictatime => (raw::MOUNT_ATTR_STRICTATIME, MsFlags::MS_STRICTATIME),
            };
            attr_set |= attr;
            ms |= flag;
        }

        let op = match &self.kind {
            Kind::Bind { source } => {
                let source = absolute(source, "bind source")?;
                Op::Bind {
                    source: cstring(source.as_os_str(), "bind source")?,
                    recursive: self.recursive,
                }
            }
            kind => {
                let params = self.fs_params()?;
                let mut data = Vec::new();
                for (key, value) in &params {
                    if !data.is_empty() {
                        data.push(b',');
                    }
                    data.extend_from_slice(key.as_bytes());
                    if let Some(v) = value {
                        data.push(b'=');
                        data.extend_from_slice(v.as_bytes());
                    }
                }
                let fstype = kind.fstype();
                Op::New {
                    fstype: cstring(OsStr::new(fstype), "filesystem type")?,
                    source: cstring(
                        OsStr::new(self.source_name.as_deref().unwrap_or(fstype)),
                        "mount source",
                    )?,
                    data: if data.is_empty() {
                        None
                    } else {
                        Some(cstring(OsStr::from_bytes(&data), "mount options")?)
                    },
                    params,
                }
            }
        };

        Ok(PreparedMount {
            op,
            host_paths: matches!(self.kind, Kind::Bind { .. } | Kind::Overlay { .. }),
            source: match &self.kind {
                Kind::Bind { source } => Some(source.clone()),
                _ => None,
            },
            target: self.target.clone(),
            target_rel,
            create: self.create_target,
            attr: raw::MountAttr {
                attr_set,
                attr_clr,
                propagation: 0,
                userns_fd: 0,
            },
            ms_flags: ms.bits(),
            propagation: self.propagation.map(|(p, rec)| (p.ms_flag().bits(), rec)),
        })
    }

    /// Prepares and applies the mount in the calling process, at the absolute path `target`.
    ///
    /// For callers that manage their own mount namespace (for example after
    /// `unshare(CLONE_NEWNS)`); errors name the syscall, the path and the errno.
    ///
    /// ```no_run
    /// use contain::mount::Mount;
    /// use contain::Bytes;
    /// Mount::tmpfs("/mnt/scratch").size(Bytes::mib(16)).mount()?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`prepare`](Mount::prepare) ([`Error::Config`]), then those of
    /// [`PreparedMount::apply_in`] as [`PreparedMount::error`] words them: [`Error::Sys`] naming
    /// the step's syscall and the target (`EPERM` without `CAP_SYS_ADMIN`, `ENOENT` for a missing
    /// bind source), [`Error::Unsupported`] before Linux 5.6 (`openat2`) or for recursive flags
    /// before 5.12 (`mount_setattr`), [`Error::Config`] for a mount point of the wrong type or a
    /// `uid=`/`gid=` the filesystem refuses.
    pub fn mount(&self) -> Result<()> {
        let prepared = self.prepare()?;
        prepared.apply_in(None).map_err(|e| prepared.error(e))
    }

    /// Like [`mount`](Mount::mount), with the target resolved inside the directory `root`.
    ///
    /// `root` must be a directory of the calling process's mount namespace (opened after any
    /// `unshare(CLONE_NEWNS)`, and after anything was mounted on it), or the kernel refuses
    /// the mount with `EINVAL`.
    ///
    /// # Errors
    ///
    /// Those of [`mount`](Mount::mount); `EINVAL` when `root` is not in the caller's mount
    /// namespace.
    pub fn mount_in(&self, root: impl AsFd) -> Result<()> {
        let prepared = self.prepare()?;
        prepared
            .apply_in(Some(root.as_fd()))
            .map_err(|e| prepared.error(e))
    }

    fn check_options(&self) -> Result<()> {
        let name = self.kind.fstype();
        let refuse = |what: &'static str, set: bool, allowed: bool| {
            if set && !allowed {
                Err(Error::config(
                    what,
                    format!("not an option of a {name} mount"),
                ))
            } else {
                Ok(())
            }
        };
        let is = |k: &Kind| std::mem::discriminant(k) == std::mem::discriminant(&self.kind);
        refuse("mount size", self.size.is_some(), is(&Kind::Tmpfs))?;
        refuse(
            "mount mode",
            self.mode.is_some(),
            is(&Kind::Tmpfs) || is(&Kind::Devpts),
        )?;
        refuse("ptmxmode", self.ptmxmode.is_some(), is(&Kind::Devpts))?;
        refuse("mount gid", self.gid.is_some(), is(&Kind::Devpts))?;
        let bind = matches!(self.kind, Kind::Bind { .. });
        refuse("mount options", !self.options.is_empty(), !bind)?;
        for mode in [self.mode, self.ptmxmode].into_iter().flatten() {
            if mode > 0o7777 {
                return Err(Error::config(
                    "mount mode",
                    format!("{mode:#o} is above 0o7777"),
                ));
            }
        }
        for (key, value) in &self.options {
            if key.is_empty() || key.contains([',', '=', '\0']) || key == "source" {
                return Err(Error::config(
                    "mount options",
                    format!("bad option name {key:?}"),
                ));
            }
            if value.as_ref().is_some_and(|v| v.contains([',', '\0'])) {
                return Err(Error::config(
                    "mount options",
                    format!("value of {key:?} contains ',' or NUL"),
                ));
            }
        }
        Ok(())
    }

    /// The filesystem options, in order, as `fsconfig` keys and values.
    fn fs_params(&self) -> Result<Vec<(CString, Option<CString>)>> {
        fn param(key: &str, value: Option<&[u8]>) -> Result<(CString, Option<CString>)> {
            let key = cstring(OsStr::new(key), "mount options")?;
            let value = value
                .map(|v| cstring(OsStr::from_bytes(v), "mount options"))
                .transpose()?;
            Ok((key, value))
        }
        let mut params = Vec::new();
        match &self.kind {
            Kind::Devpts => params.push(param("newinstance", None)?),
            Kind::Overlay { lower, upper, work } => {
                if lower.is_empty() {
                    return Err(Error::config(
                        "overlay lower layers",
                        "at least one is needed",
                    ));
                }
                let mut joined = Vec::new();
                for dir in lower {
                    if !joined.is_empty() {
                        joined.push(b':');
                    }
                    let dir = overlay_dir(dir, "overlay lower layer")?;
                    joined.extend_from_slice(dir.as_os_str().as_bytes());
                }
                params.push(param("lowerdir", Some(&joined))?);
                for (key, dir) in [("upperdir", upper), ("workdir", work)] {
                    if let Some(dir) = dir {
                        let dir = overlay_dir(dir, "overlay upper or work directory")?;
                        params.push(param(key, Some(dir.as_os_str().as_bytes()))?);
                    }
                }
            }
            _ => {}
        }
        if let Some(size) = self.size {
            params.push(param("size", Some(size.to_string().as_bytes()))?);
        }
        if let Some(mode) = self.mode {
            params.push(param("mode", Some(format!("{mode:o}").as_bytes()))?);
        }
        if let Some(mode) = self.ptmxmode {
            params.push(param("ptmxmode", Some(format!("{mode:o}").as_bytes()))?);
        }
        if let Some(gid) = self.gid {
            params.push(param("gid", Some(gid.to_string().as_bytes()))?);
        }
        for (key, value) in &self.options {
            params.push(param(key, value.as_deref().map(str::as_bytes))?);
        }
        Ok(params)
    }
}

/// The operation a [`PreparedMount`] performs.
#[derive(Debug)]
enum Op {
    Bind {
        source: CString,
        recursive: bool,
    },
    New {
        fstype: CString,
        source: CString,
        data: Option<CString>,
        params: Vec<(CString, Option<CString>)>,
    },
}

/// A validated [`Mount`] with every string and flag built: ready to be applied in a child
/// process between `clone` and `execve`. Create it with [`Mount::prepare`].
#[derive(Debug)]
pub struct PreparedMount {
    op: Op,
    /// Making it resolves host paths: a bind's source, an overlay's directories.
    host_paths: bool,
    /// For error messages.
    source: Option<PathBuf>,
    target: PathBuf,
    /// The target relative to the root (`.` for `/`).
    target_rel: CString,
    create: bool,
    attr: raw::MountAttr,
    ms_flags: u64,
    propagation: Option<(u64, bool)>,
}

/// The step of [`PreparedMount::apply_in`] that failed; with the errno it is a [`MountError`].
///
/// Numbered from 1 so that it can cross a pipe as a `u32` ([`MountStep::from_u32`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum MountStep {
    /// `openat2` of `/` (no root descriptor was given).
    OpenRoot = 1,
    /// `open_tree` of the bind source.
    OpenTree,
    /// `openat2` of the bind source (without the new mount API).
    OpenSource,
    /// `statx` of the bind source, to choose the mount point type.
    StatSource,
    /// `openat2` of the target inside the root.
    ResolveTarget,
    /// `mkdirat` of a missing mount point or one of its parents.
    CreateDir,
    /// `openat2(O_CREAT)` of a missing file mount point.
    CreateFile,
    /// `fsopen`.
    FsOpen,
    /// `fsconfig` of the source or an option.
    FsConfig,
    /// `fsconfig(FSCONFIG_CMD_CREATE)`: the filesystem refused the options.
    FsCreate,
    /// `fsmount`.
    FsMount,
    /// `move_mount` onto the target.
    MoveMount,
    /// `mount(2)` onto the target (without the new mount API).
    Mount,
    /// `mount_setattr` of the flags.
    SetAttr,
    /// `fstatfs` of the new mount, for the flags a remount must keep.
    StatFs,
    /// `mount(2)` with `MS_REMOUNT | MS_BIND` (without `mount_setattr`).
    Remount,
    /// `mount_setattr` of the propagation.
    SetPropagation,
    /// `mount(2)` with a propagation flag (without `mount_setattr`).
    SetPropagationLegacy,
    /// `statx` of the mount point (or of a path component on the way to a missing one).
    StatTarget,
    /// `readlinkat` of a symlink on the way to a missing mount point.
    ReadLink,
    /// The mount point's type does not fit: `ENOTDIR` for a directory (or a new filesystem)
    /// onto a non-directory, `EISDIR` for a file onto a directory.
    TargetType,
    /// `fchownat` of a directory created on the way to a working directory (given to the
    /// container's user).
    Chown,
}

impl MountStep {
    const ALL: [MountStep; 22] = [
        MountStep::OpenRoot,
        MountStep::OpenTree,
        MountStep::OpenSource,
        MountStep::StatSource,
        MountStep::ResolveTarget,
        MountStep::CreateDir,
        MountStep::CreateFile,
        MountStep::FsOpen,
        MountStep::FsConfig,
        MountStep::FsCreate,
        MountStep::FsMount,
        MountStep::MoveMount,
        MountStep::Mount,
        MountStep::SetAttr,
        MountStep::StatFs,
        MountStep::Remount,
        MountStep::SetPropagation,
        MountStep::SetPropagationLegacy,
        MountStep::StatTarget,
        MountStep::ReadLink,
        MountStep::TargetType,
        MountStep::Chown,
    ];

    /// The step with this wire number (`step as u32`), if any.
    pub fn from_u32(n: u32) -> Option<MountStep> {
        MountStep::ALL.iter().copied().find(|s| *s as u32 == n)
    }

    /// The system call this step makes.
    pub fn syscall(self) -> &'static str {
        match self {
            MountStep::OpenRoot
            | MountStep::OpenSource
            | MountStep::ResolveTarget
            | MountStep::CreateFile => "openat2",
            MountStep::OpenTree => "open_tree",
            MountStep::StatSource | MountStep::StatTarget | MountStep::TargetType => "statx",
            MountStep::ReadLink => "readlinkat",
            MountStep::CreateDir => "mkdirat",
            MountStep::FsOpen => "fsopen",
            MountStep::FsConfig | MountStep::FsCreate => "fsconfig",
            MountStep::FsMount => "fsmount",
            MountStep::MoveMount => "move_mount",
            MountStep::Mount | MountStep::Remount | MountStep::SetPropagationLegacy => "mount",
            MountStep::SetAttr | MountStep::SetPropagation => "mount_setattr",
            MountStep::StatFs => "fstatfs",
            MountStep::Chown => "fchownat",
        }
    }
}

/// A failure of [`PreparedMount::apply_in`]: which step, and the errno. `Copy` and
/// allocation-free, so a child can send it to its parent (as `step as u32` and `errno as i32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountError {
    /// What failed.
    pub step: MountStep,
    /// The kernel's answer.
    pub errno: Errno,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}): {}",
            self.step.syscall(),
            self.step,
            self.errno
        )
    }
}

impl std::error::Error for MountError {}

impl PreparedMount {
    /// The mount point, as seen from the root the mount is applied in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Whether a missing mount point is created.
    pub(crate) fn creates_target(&self) -> bool {
        self.create
    }

    /// Whether making the mount resolves host paths (a bind's source, an overlay's
    /// directories), which [`open_early`](Self::open_early) can then do ahead of the rest.
    pub(crate) fn resolves_host_paths(&self) -> bool {
        self.host_paths
    }

    /// Turns a failure of [`apply_in`](PreparedMount::apply_in) into a [`crate::Error`] that
    /// names the syscall and the path: [`Error::Unsupported`] when the kernel lacks what the
    /// mount needs, [`Error::Config`] when a new filesystem's `uid=`/`gid=` is refused (an id
    /// the container's user namespace does not map), else [`Error::Sys`] (whose `syscall`
    /// says the cause and remedy where known, e.g. a missing bind source).
    pub fn error(&self, e: MountError) -> Error {
        use MountStep::*;
        if e.errno == Errno::ENOSYS {
            match e.step {
                OpenRoot | ResolveTarget | CreateFile | OpenSource => {
                    return Error::unsupported(
                        "mounting inside a root directory",
                        "resolving the target needs openat2(2) with RESOLVE_IN_ROOT (Linux 5.6)",
                    );
                }
                SetAttr => {
                    return Error::unsupported(
                        format!("recursive mount flags on {}", self.target.display()),
                        "making every submount of a recursive bind read-only (or nosuid, ...) needs \
                         mount_setattr(2) with AT_RECURSIVE (Linux 5.12); use .recursive(false) to \
                         flag the top mount only",
                    );
                }
                _ => {}
            }
        }
        if e.step == TargetType {
            return self.type_error(e.errno);
        }
        if e.errno == Errno::EROFS && matches!(e.step, CreateDir | CreateFile) {
            // Still a Sys error with the errno and the target, so callers can match on them.
            let syscall = if e.step == CreateDir {
                "mkdirat of a missing mount point (or of a missing path a symlink in the image \
                 leads to) on a read-only root: create it in the image, or make the root \
                 writable (RootfsMode::Overlay)"
            } else {
                "openat2(O_CREAT) of a missing file mount point (or of the missing file a \
                 symlink in the image leads to) on a read-only root: create it in the image, \
                 or make the root writable (RootfsMode::Overlay)"
            };
            return Error::sys_path(syscall, self.target.clone(), e.errno);
        }
        if let (Errno::EINVAL, FsConfig | FsCreate | Mount, Op::New { params, .. }) =
            (e.errno, e.step, &self.op)
        {
            let ids: Vec<String> = params
                .iter()
                .filter(|(k, _)| matches!(k.as_bytes(), b"uid" | b"gid"))
                .map(|(k, v)| {
                    let v = v.as_deref().map(CStr::to_string_lossy).unwrap_or_default();
                    format!("{}={v}", k.to_string_lossy())
                })
                .collect();
            if !ids.is_empty() {
                return Error::config(
                    "mount options",
                    format!(
                        "{} {}: EINVAL: the filesystem refused an option; {} must name ids \
                         mapped in the container's user namespace (in a new user namespace \
                         only the ids of its uid_map/gid_map exist): use one of those, or map \
                         this one",
                        e.step.syscall(),
                        self.target.display(),
                        ids.join(", ")
                    ),
                );
            }
        }
        if e.errno == Errno::ENOENT && matches!(e.step, OpenTree | OpenSource | StatSource) {
            if let Some(source) = &self.source {
                let syscall = match e.step {
                    OpenTree => {
                        "open_tree (the bind source does not exist: create it first; unlike \
                         docker -v, a missing source is not created)"
                    }
                    OpenSource => {
                        "openat2 (the bind source does not exist: create it first; unlike \
                         docker -v, a missing source is not created)"
                    }
                    _ => {
                        "statx (the bind source does not exist: create it first; unlike \
                         docker -v, a missing source is not created)"
                    }
                };
                return Error::sys_path(syscall, source.clone(), e.errno);
            }
        }
        let path = match (e.step, &self.source) {
            (OpenTree | OpenSource | StatSource, Some(source)) => source.clone(),
            (OpenRoot, _) => PathBuf::from("/"),
            _ => self.target.clone(),
        };
        Error::sys_path(e.step.syscall(), path, e.errno)
    }
}

impl PreparedMount {
    /// The error for a mount point of the wrong type (see [`MountStep::TargetType`]).
    fn type_error(&self, errno: Errno) -> Error {
        let target = self.target.display();
        let what = match (&self.source, &self.op) {
            (Some(source), _) => source.display().to_string(),
            (None, Op::New { fstype, .. }) => format!("a new {}", fstype.to_string_lossy()),
            (None, Op::Bind { .. }) => "the bind source".to_string(),
        };
        let reason = if errno == Errno::EISDIR {
            let name = self
                .source
                .as_deref()
                .and_then(Path::file_name)
                .map_or("FILE".into(), |n| n.to_string_lossy());
            format!(
                "{what} is a file but the mount point {target} is a directory in the \
                 container: a file can only be mounted onto a file; give the file's full \
                 path as the target (e.g. {}/{name})",
                target.to_string().trim_end_matches('/')
            )
        } else if self.source.is_some() {
            format!(
                "{what} is a directory but the mount point {target} is not (a file in the \
                 container): a directory can only be mounted onto a directory; choose another \
                 target, or bind a file onto it"
            )
        } else {
            format!(
                "the mount point {target} of {what} is not a directory in the container: a \
                 filesystem can only be mounted onto a directory"
            )
        };
        Error::config("mount target", reason)
    }
}

/// Sets the propagation of the mount at `path` (with `recursive`, of its submounts too).
///
/// ```no_run
/// use contain::mount::{set_propagation, Propagation};
/// set_propagation("/".as_ref(), Propagation::Slave, true)?;
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Sys`] naming `mount` and `path`: `EINVAL` when `path` is not a mount point, `EPERM`
/// without `CAP_SYS_ADMIN` in the mount namespace's user namespace, `ENOENT` when it does not
/// exist.
pub fn set_propagation(path: &Path, propagation: Propagation, recursive: bool) -> Result<()> {
    let mut flags = propagation.ms_flag();
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    nix::mount::mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(|errno| Error::sys_path("mount", path, errno))
}

/// `mount --make-private PATH`.
///
/// # Errors
///
/// Those of [`set_propagation`].
pub fn make_private(path: impl AsRef<Path>) -> Result<()> {
    set_propagation(path.as_ref(), Propagation::Private, false)
}

/// `mount --make-rprivate PATH`: nothing mounted below `path` propagates to or from anywhere.
///
/// # Errors
///
/// Those of [`set_propagation`].
pub fn make_rprivate(path: impl AsRef<Path>) -> Result<()> {
    set_propagation(path.as_ref(), Propagation::Private, true)
}

/// `mount --make-rslave PATH`: mounts below `path` still receive events from the host, but
/// send none back.
///
/// # Errors
///
/// Those of [`set_propagation`].
pub fn make_rslave(path: impl AsRef<Path>) -> Result<()> {
    set_propagation(path.as_ref(), Propagation::Slave, true)
}

/// Unmounts the mount at `path` (`umount2(path, UMOUNT_NOFOLLOW)`).
///
/// # Errors
///
/// [`Error::Sys`] naming `umount2` and `path`: `EBUSY` when the mount is in use (see [`detach`]),
/// `EINVAL` when `path` is not a mount point (or is a symlink: `UMOUNT_NOFOLLOW`), `EPERM` without
/// `CAP_SYS_ADMIN`.
pub fn unmount(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    nix::mount::umount2(path, nix::mount::MntFlags::UMOUNT_NOFOLLOW)
        .map_err(|errno| Error::sys_path("umount2", path, errno))
}

/// Detaches the mount at `path` now and frees it once it is no longer busy
/// (`umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)`).
///
/// # Errors
///
/// [`Error::Sys`] naming `umount2` and `path`: `EINVAL` when `path` is not a mount point (or is a
/// symlink: `UMOUNT_NOFOLLOW`), `EPERM` without `CAP_SYS_ADMIN`, `ENOENT` when it does not exist.
pub fn detach(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let flags = nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW;
    nix::mount::umount2(path, flags).map_err(|errno| Error::sys_path("umount2", path, errno))
}

/// `s` as a C string, or a configuration error naming `what` when it holds a NUL byte.
pub(crate) fn cstring(s: &OsStr, what: &'static str) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::config(what, format!("{s:?} contains a NUL byte")))
}

/// `path` made absolute (against the current directory), refusing an empty one.
pub(crate) fn absolute(path: &Path, what: &'static str) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::config(what, "the path is empty"));
    }
    std::path::absolute(path).map_err(|e| Error::config(what, format!("{}: {e}", path.display())))
}

fn overlay_dir(dir: &Path, what: &'static str) -> Result<PathBuf> {
    let dir = absolute(dir, what)?;
    if dir
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b':' | b',' | b'\\' | 0))
    {
        return Err(Error::config(
            what,
            format!("{} contains ':', ',', '\\' or NUL", dir.display()),
        ));
    }
    Ok(dir)
}

/// The absolute `target` relative to the root (`.` for `/`), with `.` and `..` resolved
/// lexically, `..` at the root staying at the root (as the kernel does inside a root).
fn split_target(target: &Path) -> Result<CString> {
    if !target.is_absolute() {
        return Err(Error::config(
            "mount target",
            format!("{} is not an absolute path", target.display()),
        ));
    }
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in target.components() {
        match c {
            Component::Normal(name) => parts.push(name),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut bytes = Vec::new();
    for p in &parts {
        if !bytes.is_empty() {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(p.as_bytes());
    }
    if bytes.is_empty() {
        bytes.push(b'.');
    }
    if bytes.len() >= libc::PATH_MAX as usize {
        return Err(Error::config(
            "mount target",
            format!("{} is longer than PATH_MAX", target.display()),
        ));
    }
    cstring(OsStr::from_bytes(&bytes), "mount target")
}

#[cfg(test)]
mod tests;
