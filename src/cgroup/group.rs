//! [`Cgroup`]: a handle on one cgroup v2 directory, and [`OwnedCgroup`]: one this process
//! created and removes again.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::fcntl::{self, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{self, Mode};
use nix::sys::statfs;
use nix::unistd::{self, UnlinkatFlags};

use super::controllers::{Controller, Cpu, Cpuset, Hugetlb, Io, Memory, Pids};
use super::discover::HostCgroups;
use super::parse::{CgroupEvents, CpuStat, IoStat, MemoryEvents};
use super::resources::Resources;
use super::value::Bytes;
use crate::errno::NixResultExt;
use crate::{Errno, Error, Pid, Result, Signal};

/// How long [`OwnedCgroup`]'s `Drop` waits for the processes it killed to exit.
pub const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// A cgroup v2 directory, held open.
///
/// Every file of the group is reached with `openat` on the directory descriptor, so the handle
/// keeps naming the same group even if paths change around it; the path is kept for messages
/// only. Dropping a `Cgroup` closes the descriptor and leaves the group alone (see
/// [`OwnedCgroup`] for groups that are removed on drop).
///
/// ```no_run
/// use contain::cgroup::{Cgroup, Controller};
/// let root = Cgroup::root()?;
/// println!("{} offers {:?}", root.path().display(), root.controllers()?);
/// let job = Cgroup::open("/sys/fs/cgroup/job")?;
/// for pid in job.procs()? {
///     println!("{pid}");
/// }
/// # Ok::<(), contain::Error>(())
/// ```
pub struct Cgroup {
    dir: OwnedFd,
    path: PathBuf,
}

impl fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cgroup")
            .field("fd", &self.dir.as_raw_fd())
            .field("path", &self.path)
            .finish()
    }
}

impl AsFd for Cgroup {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW);

impl Cgroup {
    /// Opens the cgroup v2 directory at `path`; refused unless it is on a cgroup2 filesystem.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `open` and the path (`ENOENT` when it does not exist, `ENOTDIR`,
    /// `EACCES`) or `fstatfs`; [`Error::Unsupported`] when the directory is not on a cgroup2
    /// filesystem (a cgroup v1 hierarchy, or no cgroup at all).
    pub fn open(path: impl AsRef<Path>) -> Result<Cgroup> {
        let path = path.as_ref();
        // Symlinks in the path are fine here: where it leads is checked to be cgroup2.
        let flags = DIR_FLAGS.difference(OFlag::O_NOFOLLOW);
        let dir = fcntl::open(path, flags, Mode::empty())
            .map_err(|e| Error::sys_path("open", path, e))?;
        Cgroup::from_dir(dir, path.to_owned())
    }

    /// The root of the host's cgroup v2 mount (found in `/proc/self/mountinfo`).
    ///
    /// # Errors
    ///
    /// Those of [`HostCgroups::detect`] (reading `/proc/self/mountinfo`), [`Error::Unsupported`]
    /// when no cgroup2 filesystem is mounted (a v1-only host), and those of [`open`](Self::open).
    pub fn root() -> Result<Cgroup> {
        Cgroup::open(&HostCgroups::detect()?.v2_mount()?.mount_point)
    }

    /// The caller's own cgroup (from `/proc/self/cgroup`): where a delegated subtree starts.
    ///
    /// # Errors
    ///
    /// Those of [`HostCgroups::detect`] and [`HostCgroups::own_cgroup_dir`] (no cgroup2 mount, or
    /// the caller's cgroup lies outside it, as in a container with a private cgroup namespace and
    /// no cgroup2 mounted), and those of [`open`](Self::open).
    pub fn own() -> Result<Cgroup> {
        Cgroup::open(HostCgroups::detect()?.own_cgroup_dir()?)
    }

    fn from_dir(dir: OwnedFd, path: PathBuf) -> Result<Cgroup> {
        let fs = statfs::fstatfs(&dir).map_err(|e| Error::sys_path("fstatfs", &path, e))?;
        if fs.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC {
            return Ok(Cgroup { dir, path });
        }
        let what = if fs.filesystem_type() == statfs::CGROUP_SUPER_MAGIC {
            "a cgroup v1"
        } else {
            "not a cgroup"
        };
        Err(Error::unsupported(
            "cgroup v2",
            format!(
                "{} is {what} directory; contain works on cgroup v2 only",
                path.display()
            ),
        ))
    }

    /// Opens the existing descendant at the relative path `rel` (e.g. `"a/b"`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `rel` is empty, absolute, or has `.` or `..` components;
    /// [`Error::Sys`] naming `openat` and the joined path (`ENOENT` when no such group exists,
    /// `ENOTDIR`) or `fstatfs`.
    pub fn child(&self, rel: impl AsRef<Path>) -> Result<Cgroup> {
        let rel = rel.as_ref();
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(Error::config(
                "cgroup path",
                format!("{rel:?} must be relative, without `..` or `.`"),
            ));
        }
        let path = self.path.join(rel);
        let dir = fcntl::openat(&self.dir, rel, DIR_FLAGS, Mode::empty())
            .map_err(|e| Error::sys_path("openat", &path, e))?;
        Cgroup::from_dir(dir, path)
    }

    /// The parent group, or `None` at the top of the mount (the root, or the top of a mounted
    /// subtree).
    ///
    /// # Errors
    ///
    /// Those of [`is_root`](Self::is_root); [`Error::Sys`] naming `openat` or `fstatfs` and the
    /// parent's path.
    pub fn parent(&self) -> Result<Option<Cgroup>> {
        if self.is_root()? {
            return Ok(None);
        }
        let path = self
            .path
            .parent()
            .map_or_else(|| self.path.join(".."), Path::to_owned);
        let dir = fcntl::openat(&self.dir, "..", DIR_FLAGS, Mode::empty())
            .map_err(|e| Error::sys_path("openat", &path, e))?;
        match statfs::fstatfs(&dir) {
            Ok(fs) if fs.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC => {
                Ok(Some(Cgroup { dir, path }))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(Error::sys_path("fstatfs", path, e)),
        }
    }

    /// A second handle on the same group (a duplicated descriptor).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fcntl` (`F_DUPFD_CLOEXEC`) and the path: `EMFILE` when the process is
    /// out of descriptors.
    pub fn try_clone(&self) -> Result<Cgroup> {
        let dir = self
            .dir
            .try_clone()
            .map_err(|e| super::discover::io_error("fcntl", &self.path, e))?;
        Ok(Cgroup {
            dir,
            path: self.path.clone(),
        })
    }

    /// The path the group was opened at (for messages; files are reached through the fd).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory descriptor, e.g. for `clone3(CLONE_INTO_CGROUP)`.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Whether this is the root of the hierarchy (which has no `cgroup.type`).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `fstatat` and `<group>/cgroup.type` for an errno other than `ENOENT`
    /// (which means "root").
    pub fn is_root(&self) -> Result<bool> {
        match stat::fstatat(
            &self.dir,
            "cgroup.type",
            fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ours()
        {
            Ok(_) => Ok(false),
            Err(Errno::ENOENT) => Ok(true),
            Err(e) => Err(Error::sys_path("fstatat", self.path.join("cgroup.type"), e)),
        }
    }

    // ---------------------------------------------------------------- file access

    fn open_file(&self, name: &str, flags: OFlag) -> Result<File> {
        let fd = fcntl::openat(
            &self.dir,
            name,
            flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| Error::sys_path("openat", self.path.join(name), e))?;
        Ok(File::from(fd))
    }

    fn read_from(&self, file: &mut File, name: &str) -> Result<String> {
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| super::discover::io_error("read", &self.path.join(name), e))?;
        Ok(text)
    }

    /// Reads the interface file `name` of this group (a single file name, such as
    /// `"misc.max"`): the escape hatch for files this crate has no typed accessor for.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when `name` is empty, `.`, `..` or has a `/`.
    /// - [`Error::Sys`] naming `openat` and the file's path: `ENOENT` when the group has no such
    ///   file (the controller is not enabled here, the kernel is older, or this is the root
    ///   cgroup), `EACCES` when the caller may not read it.
    /// - [`Error::Sys`] naming `read` and the file with the kernel's errno (rare: `ENODEV` once
    ///   the group is removed); [`Error::Parse`] when the file is not UTF-8.
    pub fn read_file(&self, name: &str) -> Result<String> {
        check_file_name(name)?;
        let mut file = self.open_file(name, OFlag::O_RDONLY)?;
        self.read_from(&mut file, name)
    }

    /// Writes `value` to the interface file `name` of this group in one `write(2)`, as the
    /// kernel expects.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when `name` is empty, `.`, `..` or has a `/`.
    /// - [`Error::Sys`] naming `openat` and the file's path: `ENOENT` when the group has no such
    ///   file, `EACCES` when the caller may not write it (a group not delegated to the caller, or a
    ///   read-only file such as `memory.current`).
    /// - [`Error::Sys`] naming `write` with the kernel's answer to the value: `EINVAL` for a value
    ///   the file does not take, `EBUSY`, `ENODEV`, `EOPNOTSUPP` as cgroup-v2.rst lists them per
    ///   file; `EIO` when the kernel took only part of the value.
    pub fn write_file(&self, name: &str, value: &str) -> Result<()> {
        check_file_name(name)?;
        let mut file = self.open_file(name, OFlag::O_WRONLY)?;
        match file.write(value.as_bytes()) {
            Ok(n) if n == value.len() => Ok(()),
            Ok(_) => Err(Error::sys_path("write", self.path.join(name), Errno::EIO)),
            Err(e) => Err(super::discover::io_error("write", &self.path.join(name), e)),
        }
    }

    /// Reads and parses `name`, naming the file in a parse error.
    pub(crate) fn read_parsed<T: FromStr<Err = Error>>(&self, name: &str) -> Result<T> {
        self.read_file(name)?
            .parse()
            .map_err(|e| self.reword(e, name))
    }

    /// Replaces the `what` of a parse error by the file's path.
    pub(crate) fn reword(&self, e: Error, name: &str) -> Error {
        match e {
            Error::Parse { reason, .. } => {
                Error::parse(self.path.join(name).display().to_string(), reason)
            }
            e => e,
        }
    }

    /// A controller's interface file that does not exist means the kernel (or this group,
    /// such as the root) lacks it.
    fn interface_missing(&self, e: Error, name: &str) -> Error {
        match e {
            Error::Sys { errno: Errno::ENOENT, syscall: "openat", .. } => Error::unsupported(
                name.to_owned(),
                format!(
                    "{} has no {name} file (the root cgroup has no limits, and older kernels lack some files)",
                    self.path.display()
                ),
            ),
            e => e,
        }
    }

    pub(crate) fn read_interface_text(&self, name: &str) -> Result<String> {
        self.read_file(name)
            .map_err(|e| self.interface_missing(e, name))
    }

    pub(crate) fn read_interface<T: FromStr<Err = Error>>(&self, name: &str) -> Result<T> {
        self.read_parsed(name)
            .map_err(|e| self.interface_missing(e, name))
    }

    pub(crate) fn read_interface_u64(&self, name: &str) -> Result<u64> {
        let text = self.read_interface_text(name)?;
        super::value::parse_u64(text.trim()).ok_or_else(|| {
            Error::parse(
                self.path.join(name).display().to_string(),
                format!("{:?} is not a number", text.trim()),
            )
        })
    }

    pub(crate) fn write_interface(&self, name: &str, value: impl fmt::Display) -> Result<()> {
        self.write_file(name, &value.to_string())
            .map_err(|e| self.interface_missing(e, name))
    }

    /// Names in the group's directory, with whether each is a directory (a child group).
    fn entries(&self) -> Result<Vec<(OsString, bool)>> {
        read_dir(self.dir.as_fd()).map_err(|e| Error::sys_path("readdir", &self.path, e))
    }

    /// The interface files of this group.
    pub(crate) fn files(&self) -> Result<Vec<OsString>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, dir)| !dir)
            .map(|(n, _)| n)
            .collect())
    }

    /// The names of the child groups.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `readdir` and the group's path (`EACCES`, `EMFILE`).
    pub fn children(&self) -> Result<Vec<OsString>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, dir)| *dir)
            .map(|(n, _)| n)
            .collect())
    }

    // ---------------------------------------------------------------- controllers

    /// The controllers enabled for this group (`cgroup.controllers`).
    ///
    /// # Errors
    ///
    /// Those of [`read_file`](Self::read_file) on `cgroup.controllers`.
    pub fn controllers(&self) -> Result<Vec<Controller>> {
        Ok(Controller::parse_list(
            &self.read_file("cgroup.controllers")?,
        ))
    }

    /// The controllers this group enables for its children (`cgroup.subtree_control`).
    ///
    /// # Errors
    ///
    /// Those of [`read_file`](Self::read_file) on `cgroup.subtree_control`.
    pub fn subtree_control(&self) -> Result<Vec<Controller>> {
        Ok(Controller::parse_list(
            &self.read_file("cgroup.subtree_control")?,
        ))
    }

    /// Makes `wanted` available to this group's children: adds them to its
    /// `cgroup.subtree_control`, and first to its ancestors' where they are missing.
    ///
    /// cgroup v2 lets a non-root group either hold processes or pass domain controllers to
    /// children, not both ("no internal processes"); when this group holds processes the error
    /// says so and lists them. That is checked before anything is written, for threaded
    /// controllers (pids, cpu, cpuset) too: the kernel would take those, but it would turn the
    /// group into a thread root whose ordinary child groups can then hold no process at all
    /// (`EOPNOTSUPP`), so enabling them there only ever breaks the subtree.
    ///
    /// ```no_run
    /// use contain::cgroup::{Cgroup, Controller};
    /// Cgroup::root()?.enable_controllers(&[Controller::Memory, Controller::Pids])?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Unsupported`] when the host lacks a controller (not built, disabled on the kernel
    ///   command line, or bound to a cgroup v1 hierarchy: the message says which), when the top of
    ///   the mount does not offer it, or when this group (not the root) holds processes ("no
    ///   internal processes"; the message lists them and says to use a leaf).
    /// - [`Error::Sys`] naming `openat`/`read`/`write` and `cgroup.subtree_control` of this group
    ///   or an ancestor: `EACCES` when it is not delegated to the caller, `ENOENT` when a
    ///   controller disappeared.
    pub fn enable_controllers(&self, wanted: &[Controller]) -> Result<()> {
        let enabled = self.subtree_control()?;
        let mut missing: Vec<Controller> = wanted
            .iter()
            .copied()
            .filter(|c| !enabled.contains(c))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let available = self.controllers()?;
        let from_above: Vec<Controller> = missing
            .iter()
            .copied()
            .filter(|c| !available.contains(c))
            .collect();
        if !from_above.is_empty() {
            // A controller the host lacks is the first thing to say.
            if let Ok(host) = HostCgroups::detect() {
                host.check_all(&from_above)?;
            }
        }
        if !self.is_root()? && !self.procs()?.is_empty() {
            return Err(self.internal_processes_error(missing[0]));
        }
        if let Some(&first) = from_above.first() {
            match self.parent()? {
                Some(parent) => parent.enable_controllers(&from_above)?,
                None => return Err(self.unavailable(first)),
            }
        }
        for c in missing {
            let name = "cgroup.subtree_control";
            match self.write_file(name, &format!("+{c}")) {
                Ok(()) => {}
                Err(Error::Sys {
                    errno: Errno::EBUSY,
                    ..
                }) => return Err(self.internal_processes_error(c)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `Ok` if `c` is enabled for this group, else `Unsupported` saying why.
    pub(crate) fn require_controller(&self, c: Controller) -> Result<()> {
        self.require(c)
    }

    /// `Ok` if `c` is enabled for this group, else `Unsupported` saying why.
    fn require(&self, c: Controller) -> Result<()> {
        if self.controllers()?.contains(&c) {
            Ok(())
        } else {
            Err(self.unavailable(c))
        }
    }

    /// Why `c` is not enabled here: missing on the host, or not enabled by a parent.
    fn unavailable(&self, c: Controller) -> Error {
        let feature = format!("{c} controller");
        match HostCgroups::detect() {
            Ok(host) => match host.missing_reason(c) {
                Some(reason) => Error::unsupported(feature, reason),
                None => Error::unsupported(
                    feature,
                    format!(
                        "{c} is available in cgroup v2 but not enabled for {}: enable it in its \
                         parent's cgroup.subtree_control (CgroupBuilder::controller, or \
                         Cgroup::enable_controllers on the parent)",
                        self.path.display()
                    ),
                ),
            },
            Err(e) => Error::unsupported(
                feature,
                format!(
                    "{c} is not in {}/cgroup.controllers (host layout unknown: {e})",
                    self.path.display()
                ),
            ),
        }
    }

    fn internal_processes_error(&self, c: Controller) -> Error {
        let procs = self.procs().unwrap_or_default();
        let shown: Vec<String> = procs.iter().take(8).map(|p| p.to_string()).collect();
        let more = if procs.len() > 8 { ", ..." } else { "" };
        Error::unsupported(
            format!("enabling the {c} controller for children of {}", self.path.display()),
            format!(
                "the group holds processes ({}{more}) and is not the root cgroup; cgroup v2's \"no internal \
                 processes\" rule forbids a group to both hold processes and enable controllers for its \
                 children. Move the processes into a leaf child group first, or create the group under \
                 a parent without processes",
                if shown.is_empty() { "now gone".to_owned() } else { shown.join(", ") }
            ),
        )
    }

    /// The error for moving a process into this group that the kernel refused with `errno`
    /// (from writing `cgroup.procs` or from `clone3(CLONE_INTO_CGROUP)`), explained.
    pub(crate) fn attach_error(&self, pid: Option<Pid>, errno: Errno) -> Error {
        let what = pid.map_or_else(|| "the new process".to_owned(), |p| format!("process {p}"));
        match errno {
            Errno::EBUSY => {
                let ctl = self.subtree_control().unwrap_or_default();
                let names: Vec<&str> = ctl.iter().map(|c| c.name()).collect();
                Error::unsupported(
                    format!("moving {what} into {}", self.path.display()),
                    format!(
                        "the group enables controllers for its children ({}) and so may not hold \
                         processes itself (cgroup v2's \"no internal processes\" rule); use a leaf group",
                        names.join(", ")
                    ),
                )
            }
            Errno::EOPNOTSUPP => Error::unsupported(
                format!("moving {what} into {}", self.path.display()),
                "the group is a threaded or invalid domain group, which cannot hold processes",
            ),
            e => Error::sys_path("write", self.path.join("cgroup.procs"), e),
        }
    }

    /// The memory controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `memory` is not in this group's `cgroup.controllers`, saying
    /// whether the host lacks it or a parent does not enable it; those of
    /// [`controllers`](Self::controllers).
    pub fn memory(&self) -> Result<Memory<'_>> {
        self.require(Controller::Memory)?;
        Ok(Memory { cg: self })
    }

    /// The cpu controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `cpu` is not in this group's `cgroup.controllers`, saying
    /// whether the host lacks it or a parent does not enable it; those of
    /// [`controllers`](Self::controllers).
    pub fn cpu(&self) -> Result<Cpu<'_>> {
        self.require(Controller::Cpu)?;
        Ok(Cpu { cg: self })
    }

    /// The pids controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `pids` is not in this group's `cgroup.controllers`, saying
    /// whether the host lacks it or a parent does not enable it; those of
    /// [`controllers`](Self::controllers).
    pub fn pids(&self) -> Result<Pids<'_>> {
        self.require(Controller::Pids)?;
        Ok(Pids { cg: self })
    }

    /// The io controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `io` is not in this group's `cgroup.controllers`, saying whether
    /// the host lacks it or a parent does not enable it; those of
    /// [`controllers`](Self::controllers).
    pub fn io(&self) -> Result<Io<'_>> {
        self.require(Controller::Io)?;
        Ok(Io { cg: self })
    }

    /// The cpuset controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `cpuset` is not in this group's `cgroup.controllers` (it is in
    /// cgroup v2 since Linux 5.0), saying whether the host lacks it or a parent does not enable it;
    /// those of [`controllers`](Self::controllers).
    pub fn cpuset(&self) -> Result<Cpuset<'_>> {
        self.require(Controller::Cpuset)?;
        Ok(Cpuset { cg: self })
    }

    /// The hugetlb controller; `Unsupported` when it is not enabled for this group.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `hugetlb` is not in this group's `cgroup.controllers` (it is in
    /// cgroup v2 since Linux 5.6), saying whether the host lacks it or a parent does not enable it;
    /// those of [`controllers`](Self::controllers).
    pub fn hugetlb(&self) -> Result<Hugetlb<'_>> {
        self.require(Controller::Hugetlb)?;
        Ok(Hugetlb { cg: self })
    }

    /// Applies every limit set in `resources`.
    ///
    /// # Errors
    ///
    /// The first error of the controller accessors ([`memory`](Self::memory), ...:
    /// [`Error::Unsupported`] when a controller a limit needs is not enabled for the group) and of
    /// the setters ([`Memory::set_max`], ...). Limits are written one by one, in the order of
    /// [`Resources::controllers`]'s settings, and the first failure stops the rest: those
    /// before it stay applied.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        resources.apply_to(self)
    }

    /// Applies every limit set in `resources` that this group can take, and returns the
    /// others, each with its error (a controller not enabled here, a file the kernel lacks,
    /// a value it refused). The rules of [`LimitPolicy::BestEffort`](super::LimitPolicy).
    ///
    /// ```no_run
    /// use contain::cgroup::{Cgroup, Resources};
    /// use contain::Bytes;
    /// let limits = Resources::new().memory_max(Bytes::mib(64)).pids_max(32);
    /// for s in Cgroup::open("/sys/fs/cgroup/job")?.apply_best_effort(&limits) {
    ///     eprintln!("{} not applied: {}", s.setting, s.reason);
    /// }
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use = "the limits that were not applied are in the returned list"]
    pub fn apply_best_effort(&self, resources: &Resources) -> Vec<super::SkippedLimit> {
        resources.apply_best_effort(self)
    }

    /// `cpu.stat`: CPU time used by the group and its descendants. Available in every
    /// non-root group, with or without the cpu controller (whose throttling counters are then
    /// `None`).
    ///
    /// # Errors
    ///
    /// Those of [`read_file`](Self::read_file) on `cpu.stat`, [`Error::Unsupported`] when the group
    /// has none, and [`Error::Parse`] when it is not `KEY VALUE` lines.
    pub fn cpu_stat(&self) -> Result<CpuStat> {
        self.read_interface("cpu.stat")
    }

    /// What the group used: the numbers a runtime reports when a container ends.
    ///
    /// # Errors
    ///
    /// Those of [`cpu_stat`](Self::cpu_stat), [`controllers`](Self::controllers), (with the
    /// memory controller) [`Memory::events`] and (with the io controller) [`Io::stat`]. A
    /// missing `memory.peak` (kernels before 5.19) is `None`, not an error.
    pub fn usage(&self) -> Result<Usage> {
        let cpu = self.cpu_stat()?;
        let controllers = self.controllers()?;
        let (memory_peak, memory_events) = if controllers.contains(&Controller::Memory) {
            let mem = Memory { cg: self };
            let peak = match mem.peak() {
                Ok(p) => Some(p),
                Err(Error::Unsupported { .. }) => None,
                Err(e) => return Err(e),
            };
            (peak, Some(mem.events()?))
        } else {
            (None, None)
        };
        let io = if controllers.contains(&Controller::Io) {
            Some(IoUsage::sum(&Io { cg: self }.stat()?))
        } else {
            None
        };
        Ok(Usage {
            cpu,
            memory_peak,
            memory_events,
            io,
        })
    }

    // ---------------------------------------------------------------- processes

    fn read_pids(&self, name: &str) -> Result<Vec<Pid>> {
        let text = self.read_file(name)?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.trim()
                    .parse()
                    .ok()
                    .and_then(Pid::from_raw)
                    .ok_or_else(|| {
                        Error::parse(
                            self.path.join(name).display().to_string(),
                            format!("{l:?} is not a pid"),
                        )
                    })
            })
            .collect()
    }

    /// The processes in this group (`cgroup.procs`; not those of descendants).
    ///
    /// # Errors
    ///
    /// Those of [`read_file`](Self::read_file) on `cgroup.procs`; [`Error::Parse`] when a line is
    /// not a positive pid.
    pub fn procs(&self) -> Result<Vec<Pid>> {
        self.read_pids("cgroup.procs")
    }

    /// The threads in this group (`cgroup.threads`).
    ///
    /// # Errors
    ///
    /// Those of [`read_file`](Self::read_file) on `cgroup.threads`; [`Error::Parse`] when a line is
    /// not a positive thread id.
    pub fn threads(&self) -> Result<Vec<Pid>> {
        self.read_pids("cgroup.threads")
    }

    /// Moves process `pid` (all its threads) into this group by writing `cgroup.procs`.
    ///
    /// # Errors
    ///
    /// - [`Error::Unsupported`] when the kernel answers `EBUSY` (the group enables controllers for
    ///   its children, so it may hold no process: cgroup v2's "no internal processes" rule) or
    ///   `EOPNOTSUPP` (a threaded or invalid domain group).
    /// - [`Error::Sys`] naming `write` and `<group>/cgroup.procs` for any other errno: `ESRCH` when
    ///   no process `pid` exists, `EACCES`/`EPERM` when the caller may not move it (cgroup-v2.rst
    ///   "Delegation Containment": it needs write access to `cgroup.procs` of the common ancestor
    ///   of both groups), `ENOENT` when the group was removed.
    pub fn add_process(&self, pid: Pid) -> Result<()> {
        // Only the write's errno says something about the move; an open that fails is
        // reported as what it is.
        match self.write_file("cgroup.procs", &pid.to_string()) {
            Err(Error::Sys {
                syscall: "write",
                errno,
                ..
            }) => Err(self.attach_error(Some(pid), errno)),
            other => other,
        }
    }

    /// `cgroup.events`: whether any process lives in the subtree, and whether it is frozen.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] on the root cgroup, which has no `cgroup.events`; those of
    /// [`read_file`](Self::read_file); [`Error::Parse`] when it lacks `populated`.
    pub fn events(&self) -> Result<CgroupEvents> {
        self.read_parsed("cgroup.events")
            .map_err(|e| self.no_events(e))
    }

    /// `cgroup.events` missing is the root cgroup (or a kernel before 4.5): say so.
    fn no_events(&self, e: Error) -> Error {
        match e {
            Error::Sys {
                errno: Errno::ENOENT,
                ..
            } => Error::unsupported(
                "cgroup.events",
                format!(
                    "{} has no cgroup.events (the root cgroup has none; kernels before 4.5 \
                     lack it): watch a non-root group",
                    self.path.display()
                ),
            ),
            e => e,
        }
    }

    /// Waits until `cgroup.events` satisfies `done`, sleeping in `poll(POLLPRI)`: the kernel
    /// signals every change of the file.
    fn wait_events(
        &self,
        timeout: Duration,
        done: impl Fn(&CgroupEvents) -> bool,
    ) -> Result<CgroupEvents> {
        let name = "cgroup.events";
        let mut file = self
            .open_file(name, OFlag::O_RDONLY)
            .map_err(|e| self.no_events(e))?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Reading re-arms the notification, so read first, then poll.
            file.seek(SeekFrom::Start(0))
                .map_err(|e| super::discover::io_error("lseek", &self.path.join(name), e))?;
            let events: CgroupEvents = self
                .read_from(&mut file, name)?
                .parse()
                .map_err(|e| self.reword(e, name))?;
            if done(&events) {
                return Ok(events);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Err(Error::sys_path(
                    "poll",
                    self.path.join(name),
                    Errno::ETIMEDOUT,
                ));
            }
            let ms = left.as_millis().saturating_add(1);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
            match nix::poll::poll(&mut fds, timeout).ours() {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys_path("poll", self.path.join(name), e)),
            }
        }
    }

    /// Waits until no process is left in the group or its descendants (`populated 0`).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `poll` and `<group>/cgroup.events` with `ETIMEDOUT` when processes are
    /// still there after `timeout`; those of [`events`](Self::events) ([`Error::Unsupported`]
    /// on the root cgroup).
    pub fn wait_empty(&self, timeout: Duration) -> Result<()> {
        self.wait_events(timeout, |e| !e.populated).map(drop)
    }

    /// Freezes every process in the subtree and waits until the kernel reports `frozen 1`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::cgroup::Cgroup;
    /// let job = Cgroup::open("/sys/fs/cgroup/job")?;
    /// job.freeze(Duration::from_secs(5))?;
    /// // ... checkpoint, inspect ...
    /// job.thaw(Duration::from_secs(5))?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cgroup.freeze` (the root cgroup; kernels
    /// before 5.2); [`Error::Sys`] naming `write` and the file (`EACCES` when not delegated), or
    /// naming `poll` with `ETIMEDOUT` when the kernel has not reported `frozen 1` after `timeout`.
    pub fn freeze(&self, timeout: Duration) -> Result<()> {
        self.set_frozen(true, timeout)
    }

    /// Thaws the subtree and waits until the kernel reports `frozen 0`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cgroup.freeze` (the root cgroup; kernels
    /// before 5.2); [`Error::Sys`] naming `write` and the file (`EACCES` when not delegated), or
    /// naming `poll` with `ETIMEDOUT` when the kernel has not reported `frozen 0` after `timeout`.
    pub fn thaw(&self, timeout: Duration) -> Result<()> {
        self.set_frozen(false, timeout)
    }

    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        match self.write_file("cgroup.freeze", if frozen { "1" } else { "0" }) {
            Err(Error::Sys { errno: Errno::ENOENT, .. }) => {
                return Err(Error::unsupported(
                    "the cgroup freezer",
                    format!(
                        "{} has no cgroup.freeze (the root cgroup cannot be frozen; kernels before 5.2 lack it)",
                        self.path.display()
                    ),
                ))
            }
            other => other?,
        }
        self.wait_events(timeout, |e| e.frozen == frozen).map(drop)
    }

    fn refuse_root(&self, what: &str) -> Result<()> {
        if self.is_root()? {
            return Err(Error::config(
                "cgroup",
                format!("refusing to {what} the root cgroup {}", self.path.display()),
            ));
        }
        Ok(())
    }

    /// Sends SIGKILL to every process in the subtree (`cgroup.kill`, Linux 5.14+; before that
    /// [`kill_by_signal`](Self::kill_by_signal)). Returns once the signals are sent; use
    /// [`wait_empty`](Self::wait_empty) to wait for the processes to be gone. Refused on the
    /// root cgroup.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::cgroup::Cgroup;
    /// let job = Cgroup::open("/sys/fs/cgroup/job")?;
    /// job.kill()?;
    /// job.wait_empty(Duration::from_secs(10))?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on the root cgroup; [`Error::Sys`] naming `write` and
    /// `<group>/cgroup.kill` (`EACCES` when not delegated); before Linux 5.14, those of
    /// [`kill_by_signal`](Self::kill_by_signal).
    pub fn kill(&self) -> Result<()> {
        self.refuse_root("kill every process in")?;
        match self.write_file("cgroup.kill", "1") {
            Err(Error::Sys {
                errno: Errno::ENOENT,
                ..
            }) => self.kill_by_signal(),
            other => other,
        }
    }

    /// What [`kill`](Self::kill) does on kernels without `cgroup.kill`: freezes the subtree
    /// so that nothing can fork while it is listed, sends SIGKILL to every process in it, and
    /// thaws it again (unless it was frozen before).
    ///
    /// The thaw waits (up to 5 s) until the killed processes are gone: a group thawed while
    /// its killed tasks are still exiting can stay reported as `frozen 1` for good (seen on
    /// Linux 6.18).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on the root cgroup; those of [`signal_all`](Self::signal_all), and of
    /// [`thaw`](Self::thaw) when the group was frozen here. A failing freeze is not an error: the
    /// subtree is then signalled in rounds (at most 100) until a round reaches nobody.
    pub fn kill_by_signal(&self) -> Result<()> {
        self.refuse_root("kill every process in")?;
        let was_frozen = matches!(
            self.read_file("cgroup.freeze").as_deref().map(str::trim),
            Ok("1")
        );
        let frozen = self.freeze(Duration::from_secs(5));
        let mut result = self.signal_all(Signal::SIGKILL);
        if frozen.is_err() {
            // Without the freezer, processes may fork while we walk: go round until a pass
            // reaches nobody (bounded, in case they take long to die).
            for _ in 0..100 {
                if !matches!(result, Ok(n) if n > 0) {
                    break;
                }
                result = self.signal_all(Signal::SIGKILL);
            }
        }
        if !was_frozen && frozen.is_ok() {
            let _ = self.wait_empty(Duration::from_secs(5));
            if let Err(e) = self.thaw(Duration::from_secs(5)) {
                result = result.and(Err(e));
            }
        }
        result.map(drop)
    }

    /// Sends `signal` to every process in the subtree, e.g. SIGTERM for a graceful stop;
    /// returns how many processes it reached.
    ///
    /// Each pid is pinned with a pidfd and checked to still be in the group before it is
    /// signalled, so a pid reused by an unrelated process is never hit.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `pidfd_open`, `pidfd_send_signal` or `kill` (before Linux 5.3: no
    /// pidfds) with `EPERM` when the caller may not signal a process; those of reading
    /// `cgroup.procs` ([`procs`](Self::procs)) and of listing and opening the child groups.
    /// Processes that exit meanwhile (`ESRCH`) are skipped, not errors. [`Error::Config`] on
    /// the root cgroup: every process of the host, the caller included, is in its subtree.
    pub fn signal_all(&self, signal: Signal) -> Result<usize> {
        self.refuse_root("signal every process in")?;
        let mut sent = 0;
        let mut stack = vec![self.try_clone()?];
        while let Some(cg) = stack.pop() {
            sent += cg.signal_procs(signal)?;
            for name in cg.children()? {
                match cg.child(&name) {
                    Ok(c) => stack.push(c),
                    Err(Error::Sys {
                        errno: Errno::ENOENT,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(sent)
    }

    fn signal_procs(&self, signal: Signal) -> Result<usize> {
        let before = self.procs()?;
        if before.is_empty() {
            return Ok(0);
        }
        let mut pinned = Vec::with_capacity(before.len());
        for pid in before {
            match crate::sys::pidfd_open(pid.raw()) {
                Ok(fd) => pinned.push((pid, Some(fd))),
                Err(Errno::ESRCH) => {}
                // Kernels before 5.3: no pidfds; the group is frozen, so plain kill is safe enough.
                Err(Errno::ENOSYS) => pinned.push((pid, None)),
                Err(e) => return Err(Error::sys("pidfd_open", e)),
            }
        }
        let still = self.procs()?;
        let mut sent = 0;
        for (pid, fd) in pinned.into_iter().filter(|(p, _)| still.contains(p)) {
            let r = match &fd {
                Some(fd) => crate::sys::pidfd_send_signal(fd.as_fd(), signal.raw()),
                // SAFETY: kill(2) touches no memory of ours.
                None => match unsafe { libc::kill(pid.raw(), signal.raw()) } {
                    0 => Ok(()),
                    _ => Err(Errno::last()),
                },
            };
            match r {
                Ok(()) => sent += 1,
                Err(Errno::ESRCH) => {}
                Err(e) => {
                    return Err(Error::sys(
                        if fd.is_some() {
                            "pidfd_send_signal"
                        } else {
                            "kill"
                        },
                        e,
                    ))
                }
            }
        }
        Ok(sent)
    }

    /// Removes the child group `name` and everything below it: kills its processes, waits up
    /// to `timeout` for them to exit, then removes the directories depth-first.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use contain::cgroup::Cgroup;
    /// // Clean up what a crashed runtime left behind.
    /// Cgroup::root()?.remove_child("stale-job", Duration::from_secs(10))?;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when `name` is not one path component.
    /// - [`Error::Sys`] naming `openat` with `ENOENT` when there is no such child; naming `poll`
    ///   with `ETIMEDOUT` when its processes are still there after `timeout`; naming `rmdir`
    ///   (`EBUSY` when a process entered meanwhile, `EACCES`).
    /// - Those of [`kill`](Self::kill) and [`events`](Self::events) on the subtree.
    pub fn remove_child(&self, name: impl AsRef<OsStr>, timeout: Duration) -> Result<()> {
        let name = name.as_ref();
        check_child_name(name)?;
        let child = self.child(name)?;
        remove_tree(self, name, child, timeout)
    }
}

/// What a cgroup used, for exit reports.
///
/// ```no_run
/// use contain::cgroup::Cgroup;
/// let usage = Cgroup::open("/sys/fs/cgroup/job")?.usage()?;
/// let oom_kills = usage.memory_events.map_or(0, |e| e.oom_kill);
/// eprintln!("cpu {:?}, peak {:?}, oom_kill={oom_kills}", usage.cpu.usage(), usage.memory_peak);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// CPU time (`cpu.stat`).
    pub cpu: CpuStat,
    /// Highest memory use (`memory.peak`); `None` without the memory controller or on
    /// kernels before 5.19.
    pub memory_peak: Option<Bytes>,
    /// `memory.events` (OOM kills); `None` without the memory controller.
    pub memory_events: Option<MemoryEvents>,
    /// Disk I/O summed over every device (`io.stat`); `None` without the io controller.
    pub io: Option<IoUsage>,
}

/// Disk I/O a group did, summed over its devices' `io.stat` lines: what was read and
/// written at the block layer. Direct I/O counts when it is issued; buffered writes count
/// when written back, to the group that dirtied the pages (cgroup writeback, with the memory
/// controller; otherwise to the flusher's group).
///
/// ```
/// use contain::cgroup::{parse, IoUsage};
/// let io = IoUsage::sum(&parse::io_stat("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n\
///                                         8:16 rbytes=0 wbytes=8192 rios=0 wios=2 dbytes=0 dios=0\n")?);
/// assert_eq!((io.rbytes, io.wbytes, io.rios, io.wios), (4096, 8192, 1, 2));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IoUsage {
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Read operations.
    pub rios: u64,
    /// Write operations.
    pub wios: u64,
    /// Bytes discarded.
    pub dbytes: u64,
    /// Discard operations.
    pub dios: u64,
}

impl IoUsage {
    /// The sum of `stats` (saturating: counters are 64-bit and never wrap in practice).
    pub fn sum(stats: &[IoStat]) -> IoUsage {
        stats.iter().fold(IoUsage::default(), |a, s| IoUsage {
            rbytes: a.rbytes.saturating_add(s.rbytes),
            wbytes: a.wbytes.saturating_add(s.wbytes),
            rios: a.rios.saturating_add(s.rios),
            wios: a.wios.saturating_add(s.wios),
            dbytes: a.dbytes.saturating_add(s.dbytes),
            dios: a.dios.saturating_add(s.dios),
        })
    }
}

/// Kills, waits for, and removes `node` (named `name` in `parent`) and its descendants,
/// depth-first, without recursion (a subtree may be deep).
fn remove_tree(parent: &Cgroup, name: &OsStr, node: Cgroup, timeout: Duration) -> Result<()> {
    if node.events()?.populated {
        node.kill()?;
        node.wait_empty(timeout)?;
    }
    rmdir_tree(parent, name, node, false).map(drop)
}

/// Removes `name` in `parent` and its descendants only if no process lives in any of them;
/// never signals anyone. `Ok(false)` when the subtree is populated (or a process entered it
/// while it was being removed: the kernel refuses that rmdir with `EBUSY`), with what could
/// be removed below it gone.
pub(crate) fn remove_if_empty(parent: &Cgroup, name: &OsStr) -> Result<bool> {
    let node = match parent.child(name) {
        Ok(node) => node,
        Err(Error::Sys {
            errno: Errno::ENOENT,
            ..
        }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if node.events()?.populated {
        return Ok(false);
    }
    rmdir_tree(parent, name, node, true)
}

/// The depth-first `rmdir` walk of [`remove_tree`]; with `busy_is_ok`, an `EBUSY` stops it
/// with `Ok(false)` instead of an error.
fn rmdir_tree(parent: &Cgroup, name: &OsStr, node: Cgroup, busy_is_ok: bool) -> Result<bool> {
    struct Frame {
        cg: Cgroup,
        name: OsString,
        pending: Vec<OsString>,
    }
    let pending = node.children()?;
    let mut stack = vec![Frame {
        cg: node,
        name: name.to_owned(),
        pending,
    }];
    while let Some(top) = stack.last_mut() {
        if let Some(next) = top.pending.pop() {
            match top.cg.child(&next) {
                Ok(cg) => {
                    let pending = cg.children()?;
                    stack.push(Frame {
                        cg,
                        name: next,
                        pending,
                    });
                }
                Err(Error::Sys {
                    errno: Errno::ENOENT,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        let Some(done) = stack.pop() else { break };
        let holder = stack.last().map_or(parent, |f| &f.cg);
        match unistd::unlinkat(&holder.dir, done.name.as_os_str(), UnlinkatFlags::RemoveDir).ours()
        {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EBUSY) if busy_is_ok => return Ok(false),
            Err(e) => return Err(Error::sys_path("rmdir", done.cg.path(), e)),
        }
    }
    Ok(true)
}

fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::config(
            "cgroup file name",
            format!("{name:?} is not a single file name"),
        ));
    }
    Ok(())
}

/// A child group's name: one path component the kernel will take.
pub(crate) fn check_child_name(name: &OsStr) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty()
        || b.len() > 255
        || b.contains(&b'/')
        || b.contains(&0)
        || b == b"."
        || b == b".."
        || b.contains(&b'\n')
    {
        return Err(Error::config(
            "cgroup name",
            format!("{name:?} must be one path component (no '/', newline or NUL)"),
        ));
    }
    Ok(())
}

/// The entries of the directory `dir` (without `.` and `..`), with whether each is a
/// directory (cgroupfs fills in `d_type`). `dir`'s own offset is untouched.
fn read_dir(dir: BorrowedFd<'_>) -> std::result::Result<Vec<(OsString, bool)>, Errno> {
    Ok(crate::sys::read_dir(dir.as_raw_fd())?
        .into_iter()
        .map(|(n, t)| (OsString::from_vec(n.into_bytes()), t == libc::DT_DIR))
        .collect())
}

/// A cgroup this process created: removed (its processes killed first) when dropped.
///
/// Made by [`CgroupBuilder`](super::CgroupBuilder). It dereferences to [`Cgroup`] for all
/// operations. [`remove`](Self::remove) removes it and reports errors; [`keep`](Self::keep)
/// gives up ownership and leaves the group in place, as a plain [`Cgroup`]. `Drop` does what
/// `remove` does with a [`DROP_TIMEOUT`] and ignores errors, so that a failing caller (or
/// test) leaves nothing behind.
///
/// ```no_run
/// use contain::cgroup::{Cgroup, CgroupBuilder};
/// let job = CgroupBuilder::new("job-42").create_in(&Cgroup::root()?)?;
/// // ... run processes in it ...
/// job.remove(std::time::Duration::from_secs(10))?; // or just drop it
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedCgroup {
    inner: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    cgroup: Cgroup,
    parent: Cgroup,
    name: OsString,
    /// Ancestors made on the way to it (an exact path, `Container::cgroup_path`), deepest
    /// first, each as (the group it was made in, its name): removed after it when empty.
    made_parents: Vec<(Cgroup, OsString)>,
}

impl OwnedCgroup {
    pub(crate) fn new(cgroup: Cgroup, parent: Cgroup, name: OsString) -> Self {
        OwnedCgroup {
            inner: Some(Owned {
                cgroup,
                parent,
                name,
                made_parents: Vec::new(),
            }),
        }
    }

    /// Records the ancestors that were made for this group (deepest first, each as the group
    /// it was made in and its name): [`remove`](Self::remove) and `Drop` remove them after
    /// the group, each only when empty.
    pub(crate) fn with_made_parents(mut self, made: Vec<(Cgroup, OsString)>) -> Self {
        if let Some(o) = self.inner.as_mut() {
            o.made_parents = made;
        }
        self
    }

    /// The ancestors that were created together with this group (by
    /// [`Container::cgroup_path`](crate::process::Container::cgroup_path), for the missing
    /// parents of the exact path), deepest first; empty for a group made in an existing
    /// parent. [`remove`](Self::remove) and `Drop` remove them after the group, each only when
    /// it is empty (a group another container made in one meanwhile keeps it). After
    /// [`keep`](Self::keep), removing them is the caller's: an OCI runtime records them at
    /// `create` for its `delete`.
    pub fn made_parents(&self) -> Vec<PathBuf> {
        self.owned()
            .made_parents
            .iter()
            .map(|(holder, name)| holder.path().join(name))
            .collect()
    }

    /// Leaves the group in place and returns a plain handle on it.
    pub fn keep(mut self) -> Cgroup {
        match self.inner.take() {
            Some(o) => o.cgroup,
            None => unreachable!(
                "OwnedCgroup is only emptied by keep, remove and drop, which consume it"
            ),
        }
    }

    /// The group this one was created in.
    pub fn parent(&self) -> &Cgroup {
        &self.owned().parent
    }

    fn owned(&self) -> &Owned {
        match &self.inner {
            Some(o) => o,
            None => unreachable!(
                "OwnedCgroup is only emptied by keep, remove and drop, which consume it"
            ),
        }
    }

    /// Kills every process in the subtree, waits up to `timeout` for them to exit, and
    /// removes the group and its descendants.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when the group's name in its parent now names another directory (nothing
    ///   is removed then).
    /// - [`Error::Sys`] naming `fstat`/`fstatat`, `poll` (`ETIMEDOUT` when processes are still
    ///   there after `timeout`) or `rmdir` (`EBUSY`, `EACCES`), and those of [`Cgroup::kill`] on
    ///   the subtree.
    ///
    /// A group already gone is `Ok`.
    pub fn remove(mut self, timeout: Duration) -> Result<()> {
        match self.inner.take() {
            Some(o) => o.remove(timeout),
            None => Ok(()),
        }
    }
}

impl Owned {
    fn remove(self, timeout: Duration) -> Result<()> {
        // The name must still be our directory (cgroup v2 cannot rename, but be sure).
        let ours = stat::fstat(&self.cgroup.dir)
            .map_err(|e| Error::sys_path("fstat", self.cgroup.path(), e))?;
        match stat::fstatat(
            &self.parent.dir,
            self.name.as_os_str(),
            fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ours()
        {
            Ok(st) if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino) => {}
            Ok(_) => {
                return Err(Error::config(
                    "cgroup",
                    format!(
                        "{} was replaced by another directory; not removing it",
                        self.cgroup.path().display()
                    ),
                ))
            }
            Err(Errno::ENOENT) => return remove_made_parents(&self.made_parents),
            Err(e) => return Err(Error::sys_path("fstatat", self.cgroup.path(), e)),
        }
        let made = self.made_parents;
        remove_tree(&self.parent, &self.name, self.cgroup, timeout)?;
        remove_made_parents(&made)
    }
}

/// Removes the ancestors made with a group, deepest first, stopping at the first that is not
/// empty (it holds another group or a process).
fn remove_made_parents(made: &[(Cgroup, OsString)]) -> Result<()> {
    for (holder, name) in made {
        if !remove_if_empty(holder, name)? {
            break;
        }
    }
    Ok(())
}

impl Deref for OwnedCgroup {
    type Target = Cgroup;

    fn deref(&self) -> &Cgroup {
        &self.owned().cgroup
    }
}

impl AsFd for OwnedCgroup {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.owned().cgroup.as_fd()
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Some(o) = self.inner.take() {
            let _ = o.remove(DROP_TIMEOUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        for ok in ["a", "job-42", "a.b", "..."] {
            assert!(check_child_name(OsStr::new(ok)).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/a", "a\nb", "a\0b"] {
            assert!(check_child_name(OsStr::new(bad)).is_err(), "{bad:?}");
        }
        assert!(check_child_name(OsStr::new(&"x".repeat(256))).is_err());
        assert!(check_file_name("memory.max").is_ok());
        assert!(check_file_name("../x").is_err());
        assert!(check_file_name("").is_err());
    }

    #[test]
    fn opening_a_non_cgroup_directory_is_refused() {
        let e = Cgroup::open("/").unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { reason, .. } if reason.contains("not a cgroup")),
            "{e}"
        );
        let e = Cgroup::open("/nonexistent-contain-test").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
    }

    #[test]
    fn read_dir_lists_entries() {
        let dir = fcntl::open("/proc/self/.", DIR_FLAGS, Mode::empty()).unwrap();
        let entries = read_dir(dir.as_fd()).unwrap();
        assert!(entries.iter().any(|(n, d)| n == "fd" && *d));
        assert!(entries.iter().any(|(n, d)| n == "status" && !*d));
        assert!(!entries.iter().any(|(n, _)| n == "." || n == ".."));
    }
}
