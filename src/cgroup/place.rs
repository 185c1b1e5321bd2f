//! Where containers' cgroups go when the caller names no parent, what they are called, and
//! sweeping the groups that runs killed with SIGKILL left behind.
//!
//! # The default parent
//!
//! cgroup v2 lets a group other than the root either hold processes or enable (domain)
//! controllers for its children, not both. The caller's own cgroup always holds the caller, so
//! a group that needs controllers cannot go there unless that cgroup is the root. Like runc
//! and crun, which place containers at a path from the cgroup root, [`create_in_default`]
//! then uses a parent of the crate's own under the top of the cgroup2 mount:
//! `/sys/fs/cgroup/contain` ([`PARENT`]), created on demand, holding no processes itself.
//!
//! | what the group needs | where it goes |
//! | --- | --- |
//! | no controller | the caller's own cgroup (any cgroup may have children) |
//! | controllers, caller in the root cgroup | the root |
//! | controllers, otherwise | `<mount>/contain`, whose `cgroup.subtree_control` is ours |
//!
//! The host's own groups are never reconfigured: the controllers must already be enabled in
//! the mount top's `cgroup.subtree_control` (systemd enables every controller there at boot);
//! when one is not, or the top holds processes (a container's cgroup namespace), or creating
//! `contain` needs root, the error names the cgroup, the controller and what to do.
//!
//! # An exact path
//!
//! [`Container::cgroup_path`](crate::process::Container::cgroup_path) (OCI's
//! `linux.cgroupsPath`) names the container's group itself: absolute below the mount,
//! relative below the parent of the caller's own cgroup (as runc's cgroup v2 driver). The
//! missing parents are made and owned with the group (removed after it, each only when
//! empty); parents that existed are left as they were except for the controllers enabled
//! down the path, which a parent holding processes refuses ("no internal processes", said in
//! the error). An existing empty group at the path is taken over; a populated one is refused.
//!
//! # Names and sweeping
//!
//! A container's group is called `contain-<pid>-<start>-<pidns>-<seq>`: the creating
//! process's pid, its start time (field 22 of `/proc/<pid>/stat`, in clock ticks after boot),
//! the inode of its pid namespace, and a per-process counter. A run killed with SIGKILL
//! cannot remove its group; [`cleanup`] (and, once per process and parent, every spawn that
//! creates a group) removes the groups whose creator is gone: no process with that pid, or
//! one with another start time (a reused pid). A group whose creator lives, one made in
//! another pid namespace (whose pids mean other processes), or one that still holds
//! processes is never removed.
//!
//! [`create_in_default`]: super::CgroupBuilder::create_in_default

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::stat::{self, Mode};

use super::controllers::Controller;
use super::discover::{and_list, without_best_effort_hint, HostCgroups, BEST_EFFORT_HINT};
use super::group::{remove_if_empty, Cgroup, OwnedCgroup};
use super::resources::{CgroupBuilder, Resources, SkippedLimit};
use crate::errno::NixResultExt;
use crate::{Errno, Error, Result};

/// The name of the crate's parent group under the top of the cgroup2 mount, used when the
/// caller's own cgroup cannot enable the controllers a group needs (see the [module
/// docs](self)).
pub const PARENT: &str = "contain";

/// What [`cleanup`] found.
///
/// ```no_run
/// let swept = contain::cgroup::cleanup()?;
/// for path in &swept.removed {
///     eprintln!("removed the stale cgroup {}", path.display());
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleanup {
    /// Groups of dead runs that were removed (with their descendants), and the crate's
    /// parent group when it was left empty.
    pub removed: Vec<PathBuf>,
    /// Groups of dead runs that still hold processes (containers that outlived the process
    /// that started them): left alone. [`Cgroup::kill`] and [`Cgroup::remove_child`] end
    /// them when that is wanted.
    pub populated: Vec<PathBuf>,
}

/// Removes the cgroups that runs of this crate killed before they could remove them (a
/// SIGKILL, a crash) from the places [`Container::resources`](crate::process::Container::resources)
/// puts them by default: the caller's own cgroup and `<mount>/contain` ([`PARENT`]). The
/// crate's parent itself goes too when nothing is left in it (it is made again on demand).
///
/// Only groups named as the crate names them (`contain-<pid>-<start>-<pidns>-<seq>`) are
/// considered, and only those whose creating process is gone: no process with that pid, or
/// one that started at another time (a reused pid). Live runs' groups, groups made in
/// another pid namespace, and groups that still hold processes are kept; nothing is killed.
/// Groups under a parent given with `cgroup_parent` are swept by [`cleanup_in`].
///
/// Every spawn that creates a cgroup does the same sweep of its parent, once per process.
///
/// # Errors
///
/// [`Error::Sys`] for a cgroup that could not be read or removed (e.g. `EACCES`
/// without the right to write the parent), [`Error::Unsupported`] without cgroup v2.
///
/// # Examples
///
/// ```no_run
/// let swept = contain::cgroup::cleanup()?;
/// println!("removed {} stale cgroups", swept.removed.len());
/// # Ok::<(), contain::Error>(())
/// ```
pub fn cleanup() -> Result<Cleanup> {
    let host = HostCgroups::detect()?;
    let top = Cgroup::open(&host.v2_mount()?.mount_point)?;
    let mut out = Cleanup::default();
    if let Ok(own) = host.own_cgroup_dir().and_then(Cgroup::open) {
        out.extend(cleanup_in(&own)?);
    }
    match top.child(PARENT) {
        Ok(parent) => {
            out.extend(cleanup_in(&parent)?);
            // Left empty: remove it. A spawn that is about to create a group in it finds it
            // gone (ENOENT) and makes it again.
            if parent.children()?.is_empty() {
                match nix::unistd::unlinkat(
                    top.as_fd(),
                    PARENT,
                    nix::unistd::UnlinkatFlags::RemoveDir,
                )
                .ours()
                {
                    Ok(()) => out.removed.push(parent.path().to_owned()),
                    Err(Errno::EBUSY | Errno::ENOENT | Errno::EACCES | Errno::EPERM) => {}
                    Err(e) => return Err(Error::sys_path("rmdir", parent.path(), e)),
                }
            }
        }
        Err(Error::Sys {
            errno: Errno::ENOENT,
            ..
        }) => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// [`cleanup`] for the groups directly under `parent` (e.g. the one given to
/// `cgroup_parent`); `parent` itself is kept.
///
/// ```no_run
/// use contain::cgroup::{cleanup_in, Cgroup};
/// let swept = cleanup_in(&Cgroup::open("/sys/fs/cgroup/ci-jobs")?)?;
/// assert!(swept.populated.is_empty(), "containers outlived their runner: {:?}", swept.populated);
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Sys`] naming `read` and `/proc/self/stat` when the caller's start time cannot be read;
/// those of [`Cgroup::children`] on `parent`; for a stale group, those of reading its
/// `cgroup.events` and of `rmdir` (`EACCES` without the right to write `parent`). A group that a
/// process entered meanwhile (`EBUSY`) is reported in [`Cleanup::populated`], not as an error.
pub fn cleanup_in(parent: &Cgroup) -> Result<Cleanup> {
    let me = Creator::current()?;
    let mut out = Cleanup::default();
    for name in parent.children()? {
        let Some(owner) = Owner::parse(&name) else {
            continue;
        };
        if !owner.is_gone(&me) {
            continue;
        }
        let path = parent.path().join(&name);
        if remove_if_empty(parent, &name)? {
            out.removed.push(path);
        } else if path_exists(parent, &name) {
            out.populated.push(path);
        }
    }
    Ok(out)
}

impl Cleanup {
    fn extend(&mut self, other: Cleanup) {
        self.removed.extend(other.removed);
        self.populated.extend(other.populated);
    }
}

fn path_exists(parent: &Cgroup, name: &OsStr) -> bool {
    stat::fstatat(
        parent.as_fd(),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// The identity of a process that creates groups: pid, start time, pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Creator {
    pid: u32,
    start: u64,
    pidns: u64,
}

impl Creator {
    /// The calling process, read once.
    fn current() -> Result<Creator> {
        static ME: OnceLock<std::result::Result<Creator, Errno>> = OnceLock::new();
        let pid = std::process::id();
        let me = ME.get_or_init(|| {
            let start = start_time(pid).ok_or(Errno::ENOENT)?;
            Ok(Creator {
                pid,
                start,
                pidns: pidns_inode(),
            })
        });
        match me {
            // A forked child (fork without exec) is another process: read it afresh.
            Ok(me) if me.pid == pid => Ok(*me),
            Ok(_) => Ok(Creator {
                pid,
                start: start_time(pid).ok_or_else(|| {
                    Error::sys_path("read", format!("/proc/{pid}/stat"), Errno::ENOENT)
                })?,
                pidns: pidns_inode(),
            }),
            Err(e) => Err(Error::sys_path("read", "/proc/self/stat", *e)),
        }
    }
}

/// Who made a group, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// `contain-<pid>-<start>-<pidns>-<seq>`.
    Full(Creator),
    /// `contain-<pid>-<seq>`, as versions before 0.1 named them: only the pid is known.
    PidOnly(u32),
}

impl Owner {
    fn parse(name: &OsStr) -> Option<Owner> {
        let rest = name.as_bytes().strip_prefix(b"contain-")?;
        let rest = std::str::from_utf8(rest).ok()?;
        let mut numbers = Vec::with_capacity(4);
        for part in rest.split('-') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            numbers.push(part.parse::<u64>().ok()?);
        }
        let pid = |n: u64| u32::try_from(n).ok().filter(|&p| p > 0);
        match numbers[..] {
            [p, start, pidns, _seq] => Some(Owner::Full(Creator {
                pid: pid(p)?,
                start,
                pidns,
            })),
            [p, _seq] => Some(Owner::PidOnly(pid(p)?)),
            _ => None,
        }
    }

    /// Whether the creator is certainly gone, judged from `me`'s pid namespace.
    fn is_gone(&self, me: &Creator) -> bool {
        match *self {
            Owner::Full(c) if c.pidns != me.pidns => false,
            Owner::Full(c) if c == *me => false,
            Owner::Full(c) => start_time(c.pid) != Some(c.start),
            Owner::PidOnly(pid) => {
                pid != me.pid
                    && matches!(
                        stat::stat(format!("/proc/{pid}").as_str()).ours(),
                        Err(Errno::ENOENT)
                    )
            }
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (the start time in clock ticks after boot); `None` when
/// there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&text)
}

/// The start time in a `/proc/<pid>/stat` line: the command name (field 2) is in parentheses
/// and may contain anything, so fields are counted from the last `)`: field 3 is the first
/// after it, field 22 the 20th.
fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The inode of the caller's pid namespace (0 when it cannot be read, as on kernels without
/// `/proc/self/ns`).
fn pidns_inode() -> u64 {
    stat::stat("/proc/self/ns/pid").map_or(0, |st| st.st_ino)
}

/// The name of the next container group of this process.
fn container_name() -> Result<OsString> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let me = Creator::current()?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(format!("contain-{}-{}-{}-{seq}", me.pid, me.start, me.pidns).into())
}

/// Sweeps `parent` with [`cleanup_in`] the first time this process creates a group there.
/// Best effort: a failed sweep never fails the spawn.
fn sweep_once(parent: &Cgroup) {
    static SWEPT: Mutex<Option<HashSet<(u32, u64, u64)>>> = Mutex::new(None);
    let Ok(st) = stat::fstat(parent.as_fd()) else {
        return;
    };
    let key = (std::process::id(), st.st_dev, st.st_ino);
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let _ = cleanup_in(parent);
}

/// The cgroup `spawn` makes for a container with `resources`: under `parent` (absolute, or
/// relative to the cgroup v2 root) when given, else in the default place
/// ([`CgroupBuilder::create_in_default`]). Sweeps that parent of dead runs' groups first,
/// once per process.
pub(crate) fn create_for_container(
    parent: Option<&std::path::Path>,
    resources: &Resources,
) -> Result<OwnedCgroup> {
    let builder = CgroupBuilder::new(container_name()?).resources(resources.clone());
    create_for_container_with(parent, &builder)
}

/// [`create_for_container`] under [`LimitPolicy::BestEffort`]: the group with the limits the
/// host supports, and those it skipped; no group (and every limit skipped) when none can be
/// made. Each controller the host lacks, or the default parent's top does not enable, is
/// skipped with its own error; a group that cannot be made with the rest is made without
/// controllers (for usage and kill) when it can, its limits skipped with the first error.
///
/// Errors: a parent the caller named that is not there or not a cgroup (a typo is not
/// something the host lacks), and a refused configuration.
pub(crate) fn create_for_container_best_effort(
    parent: Option<&std::path::Path>,
    resources: &Resources,
) -> Result<(Option<OwnedCgroup>, Vec<SkippedLimit>)> {
    let skip_all = |r: &Resources, e: &Error| -> Vec<SkippedLimit> {
        r.controllers()
            .into_iter()
            .flat_map(|c| r.skip(c, &without_best_effort_hint(e)))
            .collect()
    };
    let mut skipped = Vec::new();
    let host = match HostCgroups::detect().and_then(|h| {
        h.v2_mount()?;
        Ok(h)
    }) {
        Ok(h) => h,
        Err(e) => {
            let mut skipped = skip_all(resources, &e);
            skipped.push(no_cgroup(&e));
            return Ok((None, skipped));
        }
    };
    let mut rest = resources.clone();
    for c in resources.controllers() {
        if let Err(e) = host.check(c) {
            skipped.extend(rest.skip(c, &without_best_effort_hint(&e)));
            rest = rest.without(c);
        }
    }
    if parent.is_none() && !rest.controllers().is_empty() {
        // Where the default parent gets its controllers from: the caller's own cgroup when
        // it is the root, else the top of the mount.
        let from = host
            .own_cgroup_dir()
            .and_then(Cgroup::open)
            .and_then(|own| {
                let top = match own.is_root()? {
                    true => own.try_clone()?,
                    false => Cgroup::open(&host.v2_mount()?.mount_point)?,
                };
                Ok((own, top))
            });
        if let Ok((own, top)) = from {
            for c in missing_in(&top, &rest.controllers()).unwrap_or_default() {
                let e = not_enabled_at_top(&own, &top, &[c]);
                skipped.extend(rest.skip(c, &e));
                rest = rest.without(c);
            }
        }
    }
    let made = container_name().and_then(|name| {
        let with = CgroupBuilder::new(&name).controllers(&rest.controllers());
        match create_for_container_with(parent, &with) {
            Ok(cg) => Ok(cg),
            Err(e) if rest.controllers().is_empty() => Err(e),
            Err(e) => {
                let plain = CgroupBuilder::new(name);
                let cg = create_for_container_with(parent, &plain).map_err(|_| e.clone());
                skipped.extend(skip_all(&rest, &e));
                rest = Resources::default();
                cg
            }
        }
    });
    match made {
        Ok(cg) => {
            skipped.extend(rest.apply_best_effort(&cg));
            Ok((Some(cg), skipped))
        }
        // A parent the caller named that is not there is a Config error (open_parent).
        Err(e @ Error::Config { .. }) => Err(e),
        Err(e) => {
            skipped.extend(skip_all(&rest, &e));
            skipped.push(no_cgroup(&e));
            Ok((None, skipped))
        }
    }
}

/// The cgroup `spawn` makes for a container at exactly `path`
/// ([`Container::cgroup_path`](crate::process::Container::cgroup_path); see
/// [`create_exactly`]), with the limits best effort skipped. Under best effort the controllers
/// the host lacks are skipped, but the group itself must be made: the caller named it.
pub(crate) fn create_for_container_at(
    path: &Path,
    resources: &Resources,
    best_effort: bool,
) -> Result<(OwnedCgroup, Vec<SkippedLimit>)> {
    if !best_effort {
        let cg = create_exactly(path, &|name| {
            CgroupBuilder::new(name).resources(resources.clone())
        })?;
        return Ok((cg, Vec::new()));
    }
    let host = HostCgroups::detect()?;
    let mut rest = resources.clone();
    let mut skipped = Vec::new();
    for c in resources.controllers() {
        if let Err(e) = host.check(c) {
            skipped.extend(rest.skip(c, &without_best_effort_hint(&e)));
            rest = rest.without(c);
        }
    }
    let controllers = rest.controllers();
    let cg = create_exactly(path, &|name| {
        CgroupBuilder::new(name).controllers(&controllers)
    })?;
    skipped.extend(rest.apply_best_effort(&cg));
    Ok((cg, skipped))
}

/// The entry of [`SkippedLimit`] that says the container runs without a cgroup of its own.
fn no_cgroup(e: &Error) -> SkippedLimit {
    SkippedLimit {
        setting: "cgroup".to_owned(),
        value: "the container's own cgroup".to_owned(),
        controller: None,
        reason: without_best_effort_hint(e),
    }
}

/// Creates `builder`'s group under `parent` (absolute, or relative to the cgroup v2 root), or
/// in the default place.
fn create_for_container_with(
    parent: Option<&std::path::Path>,
    builder: &CgroupBuilder,
) -> Result<OwnedCgroup> {
    match parent {
        None => create_in_default(builder, true),
        Some(p) => {
            let parent = open_parent(p)?;
            sweep_once(&parent);
            builder.create_in(&parent).map_err(|e| match e.errno() {
                Some(Errno::EACCES | Errno::EPERM | Errno::EROFS) => {
                    let wanted = builder.wanted_controllers();
                    match Cgroup::own() {
                        Ok(own) => not_delegated(&own, &parent, &wanted, e),
                        Err(_) => e,
                    }
                }
                _ => e,
            })
        }
    }
}

/// The parent the caller named (absolute, or relative to the cgroup v2 root). One that is
/// not there, or not a cgroup v2 directory, is the caller's mistake (a typo, a v1 path):
/// [`Error::Config`] with what to do, also under best effort, which skips only what the host
/// lacks.
fn open_parent(p: &std::path::Path) -> Result<Cgroup> {
    let opened = match p.is_absolute() {
        true => Cgroup::open(p),
        false => Cgroup::root()?.child(p),
    };
    opened.map_err(|e| match e {
        Error::Sys {
            errno: Errno::ENOENT | Errno::ENOTDIR,
            ..
        } => Error::config(
            "cgroup parent",
            format!(
                "{} does not exist ({e}): create it first (mkdir in the cgroup v2 hierarchy), \
                 or fix the path (absolute, or relative to the cgroup v2 root)",
                p.display()
            ),
        ),
        Error::Unsupported { reason, .. } if p.is_absolute() => Error::config(
            "cgroup parent",
            format!(
                "{}: {reason}; give a directory of the cgroup v2 hierarchy",
                p.display()
            ),
        ),
        e => e,
    })
}

/// Where [`create_exactly`] resolves `path`: the group its components are made in, and the
/// components (at least one, all plain names).
///
/// Absolute: below the cgroup v2 mount point (in a cgroup namespace with its own cgroup2
/// mount, the namespace's root). Relative: below the *parent* of the caller's own cgroup (the
/// caller's own cgroup when it is the top of the mount): the caller's own group holds the
/// caller, so by cgroup v2's "no internal processes" rule it could not enable controllers
/// for the new groups; runc's cgroup v2 driver (libcontainer/cgroups/fs2) resolves relative
/// paths the same way.
fn exact_base(host: &HostCgroups, path: &Path) -> Result<(Cgroup, Vec<OsString>)> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(name) => {
                super::group::check_child_name(name)?;
                names.push(name.to_owned());
            }
            _ => {
                return Err(Error::config(
                    "cgroup path",
                    format!(
                        "{}: `.` and `..` are not allowed in a cgroup path",
                        path.display()
                    ),
                ))
            }
        }
    }
    if names.is_empty() {
        return Err(Error::config(
            "cgroup path",
            format!(
                "{:?} names the top of the hierarchy, not a group of the container's own",
                path
            ),
        ));
    }
    let base = if path.is_absolute() {
        Cgroup::open(&host.v2_mount()?.mount_point)?
    } else {
        let own = Cgroup::open(host.own_cgroup_dir()?)?;
        match own.parent()? {
            Some(parent) => parent,
            None => own,
        }
    };
    Ok((base, names))
}

/// The groups [`create_exactly`] made on its way, removed again (deepest first, each only
/// when empty) if it fails.
struct MadeOnTheWay(Vec<(Cgroup, OsString)>);

impl MadeOnTheWay {
    /// Deepest first, for [`OwnedCgroup::with_made_parents`]; nothing is removed any more.
    fn take(mut self) -> Vec<(Cgroup, OsString)> {
        let mut made = std::mem::take(&mut self.0);
        made.reverse();
        made
    }
}

impl Drop for MadeOnTheWay {
    fn drop(&mut self) {
        for (holder, name) in self.0.iter().rev() {
            if !matches!(remove_if_empty(holder, name), Ok(true)) {
                break;
            }
        }
    }
}

/// The container's group at exactly `path` (see [`exact_base`] for absolute and relative
/// paths): the missing parents are made on the way (and recorded in the result, which removes
/// them with the group), the controllers `resources` need are enabled down the path
/// ([`Cgroup::enable_controllers`]: a parent that holds processes cannot enable them, and the
/// error says so), and the limits are written. An existing last group is taken over when it
/// holds no process (runc does the same) and refused otherwise; it is then removed with the
/// container like a new one. `builder_for` makes the builder of the last group from its
/// name (its resources and controllers).
pub(crate) fn create_exactly(
    path: &Path,
    builder_for: &dyn Fn(OsString) -> CgroupBuilder,
) -> Result<OwnedCgroup> {
    let host = HostCgroups::detect()?;
    let (base, names) = exact_base(&host, path)?;
    let Some((leaf, parents)) = names.split_last() else {
        return Err(Error::config("cgroup path", format!("{path:?} is empty")));
    };
    let builder = builder_for(leaf.clone());
    host.check_all(&builder.wanted_controllers())?;
    let mut made = MadeOnTheWay(Vec::new());
    let mut cur = base;
    for name in parents {
        let next = match cur.child(name) {
            Ok(next) => next,
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                let at = cur.path().join(name);
                match stat::mkdirat(
                    cur.as_fd(),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                )
                .ours()
                {
                    Ok(()) => made.0.push((cur.try_clone()?, name.clone())),
                    // Made by someone else meanwhile: theirs, never removed by us.
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::sys_path("mkdirat", at, e)),
                }
                cur.child(name)?
            }
            Err(e) => return Err(e),
        };
        cur = next;
    }
    let owned = match cur.child(leaf) {
        Ok(existing) => {
            let procs = existing.procs()?;
            if existing.events()?.populated {
                let shown: Vec<String> = procs.iter().take(8).map(|p| p.to_string()).collect();
                return Err(Error::config(
                    "cgroup path",
                    format!(
                        "{} exists and holds processes ({}): a container's cgroup must be new \
                         or empty",
                        existing.path().display(),
                        if shown.is_empty() {
                            "in its descendants".to_owned()
                        } else {
                            shown.join(", ")
                        }
                    ),
                ));
            }
            builder.adopt_in(&cur)?
        }
        Err(e) if e.errno() == Some(Errno::ENOENT) => builder.create_in(&cur)?,
        Err(e) => return Err(e),
    };
    Ok(owned.with_made_parents(made.take()))
}

/// [`CgroupBuilder::create_in_default`], sweeping the parent first when `sweep`.
pub(crate) fn create_in_default(builder: &CgroupBuilder, sweep: bool) -> Result<OwnedCgroup> {
    let wanted = builder.wanted_controllers();
    let host = HostCgroups::detect()?;
    // The controllers the host lacks, all in one error that says where each one is instead.
    host.check_all(&wanted)?;
    let own = Cgroup::open(host.own_cgroup_dir()?)?;
    if wanted.is_empty() || own.is_root()? {
        let missing = missing_in(&own, &wanted)?;
        if !missing.is_empty() {
            return Err(not_enabled_at_top(&own, &own, &missing));
        }
        if sweep {
            sweep_once(&own);
        }
        return builder.create_in(&own).map_err(|e| match e.errno() {
            Some(Errno::EACCES | Errno::EPERM | Errno::EROFS) => {
                not_delegated(&own, &own, &wanted, e)
            }
            _ => e,
        });
    }
    let top = Cgroup::open(&host.v2_mount()?.mount_point)?;
    // A concurrent `cleanup` may remove an empty `contain` between our opening it and
    // creating the group in it: then make it again.
    let mut tries = 0;
    loop {
        tries += 1;
        let made = crate_parent(&own, &top, &wanted).and_then(|parent| {
            if sweep {
                sweep_once(&parent);
            }
            builder.create_in(&parent).map_err(|e| match e.errno() {
                Some(Errno::EACCES | Errno::EPERM) => not_delegated(&own, &parent, &wanted, e),
                _ => e,
            })
        });
        match made {
            Err(e) if matches!(e.errno(), Some(Errno::ENOENT | Errno::ENODEV)) && tries < 3 => {}
            other => return other,
        }
    }
}

/// The controllers of `wanted` that `cg` does not enable for its children.
fn missing_in(cg: &Cgroup, wanted: &[Controller]) -> Result<Vec<Controller>> {
    let enabled = cg.subtree_control()?;
    Ok(wanted
        .iter()
        .copied()
        .filter(|c| !enabled.contains(c))
        .collect())
}

/// Opens (creating it if needed) `<top>/contain` and enables `wanted` in it. Writes only that
/// group's `cgroup.subtree_control`; `top` must enable `wanted` already.
fn crate_parent(own: &Cgroup, top: &Cgroup, wanted: &[Controller]) -> Result<Cgroup> {
    let missing = missing_in(top, wanted)?;
    if !missing.is_empty() {
        return Err(not_enabled_at_top(own, top, &missing));
    }
    let parent = match top.child(PARENT) {
        Ok(p) => p,
        Err(Error::Sys {
            errno: Errno::ENOENT,
            ..
        }) => {
            match stat::mkdirat(top.as_fd(), PARENT, Mode::from_bits_truncate(0o755)).ours() {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e @ (Errno::EACCES | Errno::EPERM | Errno::EROFS)) => {
                    let err = Error::sys_path("mkdirat", top.path().join(PARENT), e);
                    return Err(not_delegated(own, top, wanted, err));
                }
                Err(e) => return Err(Error::sys_path("mkdirat", top.path().join(PARENT), e)),
            }
            top.child(PARENT)?
        }
        Err(e) => return Err(e),
    };
    let procs = parent.procs()?;
    if !procs.is_empty() {
        return Err(Error::unsupported(
            format!("the cgroup parent {}", parent.path().display()),
            format!(
                "it holds processes ({}), which contain never puts there: something else uses \
                 this group. Move them out, or pass a parent with Container::cgroup_parent",
                procs
                    .iter()
                    .take(8)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    match parent.enable_controllers(wanted) {
        Err(e) if matches!(e.errno(), Some(Errno::EACCES | Errno::EPERM)) => {
            Err(not_delegated(own, &parent, wanted, e))
        }
        Err(e) => Err(e),
        Ok(()) => Ok(parent),
    }
}

/// Why the own cgroup cannot be the parent, as the start of an explanation.
fn own_is_busy(own: &Cgroup, c: &str) -> String {
    format!(
        "this process's own cgroup {} holds processes (this one at least), so cgroup v2's \"no \
         internal processes\" rule keeps it from enabling {c} for a child group",
        own.path().display()
    )
}

/// `top` (the mount's top, or the root as the caller's own cgroup) does not enable `cs` (all
/// of those missing there, named in one error).
fn not_enabled_at_top(own: &Cgroup, top: &Cgroup, cs: &[Controller]) -> Error {
    let list = and_list(cs);
    let plural = if cs.len() > 1 { "s" } else { "" };
    let feature = format!("a cgroup with the {list} controller{plural}");
    let control = top.path().join("cgroup.subtree_control");
    // One command per controller: a write with an unavailable one fails as a whole.
    let enable = cs
        .iter()
        .map(|c| format!("`echo +{c} > {}`", control.display()))
        .collect::<Vec<_>>()
        .join(" and ");
    let why_top = if own.path() == top.path() {
        String::new()
    } else {
        format!(
            "{}; the fallback parent {} needs {list} enabled above it, but ",
            own_is_busy(own, &list),
            top.path().join(PARENT).display()
        )
    };
    let is_root = top.is_root().unwrap_or(false);
    let busy = !is_root && top.procs().is_ok_and(|p| !p.is_empty());
    let reason = if is_root {
        format!(
            "{why_top}the root cgroup {} does not enable {list} for its children (not in its \
             cgroup.subtree_control), and contain does not reconfigure the host's hierarchy. \
             Enable {them} once with {enable} (systemd does this at boot), or pass a parent \
             that has {them} (Container::cgroup_parent, `run --cgroup-parent`)",
            top.path().display(),
            them = if cs.len() > 1 { "them" } else { "it" },
        )
    } else if busy {
        format!(
            "{why_top}{} (the top of this cgroup2 mount, e.g. a container's cgroup namespace) \
             holds processes and does not enable {list} for its children. Move its processes \
             into a leaf child first (e.g. `mkdir {0}/init` and write each pid of \
             {0}/cgroup.procs to {0}/init/cgroup.procs, as docker-in-docker images do), then \
             {enable}; or pass a parent that enables {list} with Container::cgroup_parent",
            top.path().display(),
        )
    } else {
        format!(
            "{why_top}{} (the top of this cgroup2 mount) does not enable {list} for its \
             children (not in its cgroup.subtree_control): {enable}, or pass a parent that has \
             {them} with Container::cgroup_parent; where this cgroup is not yours, it must be \
             delegated to you (systemd: Delegate=yes)",
            top.path().display(),
            them = if cs.len() > 1 { "them" } else { "it" },
        )
    };
    Error::unsupported(feature, reason)
}

/// `e`, a refused write in `at` (`EACCES`, `EPERM`, `EROFS`), as the `Unsupported` error that
/// says why: the cgroup the caller is in is not delegated to it, and what to do (systemd's
/// `Delegate=yes`, root, no limits). `wanted`: the controllers the group needed (none for a
/// group only for usage and kill).
fn not_delegated(own: &Cgroup, at: &Cgroup, wanted: &[Controller], e: Error) -> Error {
    let euid = nix::unistd::geteuid();
    let feature = match wanted {
        [] => "a cgroup for the container".to_owned(),
        [_] => format!("a cgroup with the {} controller", and_list(wanted)),
        _ => format!("a cgroup with the {} controllers", and_list(wanted)),
    };
    let owner = |cg: &Cgroup| {
        stat::fstat(cg.as_fd()).map_or_else(|_| "?".to_owned(), |st| st.st_uid.to_string())
    };
    let ro = e.errno() == Some(Errno::EROFS);
    let where_ = if at.path() == own.path() {
        format!(
            "{} is the cgroup this process is in; it is owned by uid {} and not delegated to \
             uid {euid}{}",
            own.path().display(),
            owner(own),
            if ro {
                ", and its cgroup2 mount is read-only"
            } else {
                ""
            }
        )
    } else {
        format!(
            "{}{}, and the fallback under {} (owned by uid {}) is not writable by uid {euid}: \
             this process's cgroup is not delegated to it",
            match wanted.is_empty() {
                true => String::new(),
                false => format!("{}; ", own_is_busy(own, &and_list(wanted))),
            },
            format_args!("{} is the cgroup this process is in", own.path().display()),
            at.path().display(),
            owner(at)
        )
    };
    Error::unsupported(
        feature,
        format!(
            "creating it in {} failed ({e}): {where_}. Without root, a process may make cgroups \
             only in a subtree delegated to its user: run the program in one, e.g. \
             `systemd-run --user --scope -p Delegate=yes PROGRAM` (then, for limits that need \
             controllers, move it into a leaf child of the scope and pass another child as the \
             parent: Container::cgroup_parent, `run --cgroup-parent`); or run as \
             root{BEST_EFFORT_HINT}",
            at.path().display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let me = Creator::current().unwrap();
        let name = container_name().unwrap();
        assert_eq!(Owner::parse(&name), Some(Owner::Full(me)));
        assert!(!Owner::parse(&name).unwrap().is_gone(&me));
        assert_eq!(
            Owner::parse(OsStr::new("contain-12-3")),
            Some(Owner::PidOnly(12))
        );
        for other in [
            "contain-test-1-x",
            "contain-test-dev-12",
            "contain",
            "contain-",
            "contain-1",
            "contain-1-2-3",
            "contain-0-1",
            "contain-1--2",
            "contain-1-2-3-4-5",
            "job-1-2",
            "contain-99999999999-1",
        ] {
            assert_eq!(Owner::parse(OsStr::new(other)), None, "{other}");
        }
    }

    #[test]
    fn owners_are_judged_by_pid_start_time_and_namespace() {
        let me = Creator::current().unwrap();
        let other_start = Creator {
            start: me.start + 1,
            ..me
        };
        assert!(
            Owner::Full(other_start).is_gone(&me),
            "same pid, another start"
        );
        let other_ns = Creator {
            pidns: me.pidns + 1,
            start: me.start + 1,
            ..me
        };
        assert!(!Owner::Full(other_ns).is_gone(&me), "another pid namespace");
        // pid 1 lives, with its own start time.
        let init = Creator {
            pid: 1,
            start: start_time(1).unwrap(),
            pidns: me.pidns,
        };
        assert!(!Owner::Full(init).is_gone(&me));
        assert!(!Owner::PidOnly(1).is_gone(&me));
        assert!(!Owner::PidOnly(me.pid).is_gone(&me));
        // The kernel's pid_max is at most 2^22: this pid is never in use.
        assert!(Owner::PidOnly(1 << 23).is_gone(&me));
        assert!(Owner::Full(Creator { pid: 1 << 23, ..me }).is_gone(&me));
    }

    #[test]
    fn start_time_parsing() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 1 \
                    18446744073709551615\n";
        assert_eq!(parse_start_time(line), Some(987_654));
        assert_eq!(parse_start_time("42 (x) S 1"), None);
        assert_eq!(parse_start_time("no parens"), None);
        assert!(start_time(std::process::id()).is_some());
    }
}
