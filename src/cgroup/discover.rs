//! What the host offers: where cgroup v2 is mounted, which controllers it has, which ones are
//! bound to cgroup v1 instead, and the caller's own cgroup.
//!
//! Everything is read from `/proc/self/mountinfo`, `/proc/self/cgroup`, `/proc/cgroups` and
//! the v2 root's `cgroup.controllers`; no path is hard-coded. The classification itself is a
//! pure function of those texts ([`HostCgroups::from_texts`]).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::controllers::Controller;
use crate::{Error, Result};

/// The last remedy of a missing controller, for strict callers; dropped from the reasons of
/// [`SkippedLimit`](super::SkippedLimit)s, whose callers already chose it.
pub(crate) const BEST_EFFORT_HINT: &str = "; or drop these limits, or have the limits this \
     host supports applied and the rest reported (LimitPolicy::BestEffort)";

/// `e` without its last remedy, best effort ([`BEST_EFFORT_HINT`], or the device filter's
/// `DEVICES_BEST_EFFORT_HINT`): the reason something was skipped under best effort.
pub(crate) fn without_best_effort_hint(e: &Error) -> Error {
    match e {
        Error::Unsupported { feature, reason } => Error::Unsupported {
            feature: feature.clone(),
            reason: [BEST_EFFORT_HINT, super::devices::DEVICES_BEST_EFFORT_HINT]
                .iter()
                .find_map(|hint| reason.strip_suffix(hint))
                .unwrap_or(reason)
                .to_owned(),
        },
        e => e.clone(),
    }
}

/// A cgroup v2 mount.
///
/// ```
/// use contain::cgroup::{Controller, HostCgroups};
/// let mountinfo = "35 24 0:30 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n";
/// let host = HostCgroups::from_texts(mountinfo, "0::/\n", "", "cpu memory\n")?;
/// let v2 = host.v2_mount()?;
/// assert_eq!(v2.mount_point, std::path::Path::new("/sys/fs/cgroup"));
/// assert_eq!(v2.controllers, vec![Controller::Cpu, Controller::Memory]);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup`.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (`/` unless the mount is of a subtree).
    pub root: PathBuf,
    /// The controllers its root offers (its `cgroup.controllers`).
    pub controllers: Vec<Controller>,
}

/// A cgroup v1 hierarchy mount.
///
/// ```
/// use contain::cgroup::HostCgroups;
/// let mountinfo = "34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
/// let host = HostCgroups::from_texts(mountinfo, "", "", "")?;
/// let v1 = &host.hierarchy().v1()[0];
/// assert_eq!(v1.controllers, ["cpu", "cpuacct"]);
/// assert_eq!(v1.name, None);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The v1 controllers bound to it (v1 names: `cpu`, `cpuacct`, `blkio`, ...).
    pub controllers: Vec<String>,
    /// A named hierarchy without controllers, e.g. `systemd` for `name=systemd`.
    pub name: Option<String>,
}

/// The cgroup layout of the host.
///
/// ```no_run
/// use contain::cgroup::{HostCgroups, Hierarchy};
/// let host = HostCgroups::detect()?;
/// match host.hierarchy() {
///     Hierarchy::PureV2(v2) => println!("cgroup v2 at {}", v2.mount_point.display()),
///     other => println!("not pure cgroup v2: {other}"),
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Only cgroup v2 is mounted.
    PureV2(V2Mount),
    /// cgroup v2 is mounted beside cgroup v1 hierarchies, which hold some controllers.
    Hybrid {
        /// The v2 mount and the controllers left to it.
        v2: V2Mount,
        /// The v1 mounts.
        v1: Vec<V1Mount>,
    },
    /// Only cgroup v1 is mounted.
    V1Only {
        /// The v1 mounts.
        v1: Vec<V1Mount>,
    },
    /// No cgroup filesystem is mounted.
    None,
}

impl Hierarchy {
    /// The v2 mount, if there is one.
    pub fn v2(&self) -> Option<&V2Mount> {
        match self {
            Hierarchy::PureV2(v2) | Hierarchy::Hybrid { v2, .. } => Some(v2),
            _ => None,
        }
    }

    /// The v1 mounts (empty unless hybrid or v1 only).
    pub fn v1(&self) -> &[V1Mount] {
        match self {
            Hierarchy::Hybrid { v1, .. } | Hierarchy::V1Only { v1 } => v1,
            _ => &[],
        }
    }
}

fn names(cs: &[Controller]) -> String {
    if cs.is_empty() {
        return "no controllers".into();
    }
    cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Hierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v1 = |f: &mut fmt::Formatter<'_>, v1: &[V1Mount]| {
            let list: Vec<String> = v1
                .iter()
                .map(|m| {
                    let what = match (&m.name, m.controllers.is_empty()) {
                        (Some(n), true) => format!("name={n}"),
                        _ => m.controllers.join(","),
                    };
                    format!("{what} at {}", m.mount_point.display())
                })
                .collect();
            write!(f, "cgroup v1 ({})", list.join("; "))
        };
        match self {
            Hierarchy::PureV2(v2) => {
                write!(
                    f,
                    "pure cgroup v2 at {} ({})",
                    v2.mount_point.display(),
                    names(&v2.controllers)
                )
            }
            Hierarchy::Hybrid { v2, v1: m } => {
                write!(
                    f,
                    "hybrid: cgroup v2 at {} ({}) beside ",
                    v2.mount_point.display(),
                    names(&v2.controllers)
                )?;
                v1(f, m)
            }
            Hierarchy::V1Only { v1: m } => {
                f.write_str("only ")?;
                v1(f, m)
            }
            Hierarchy::None => f.write_str("no cgroup filesystem mounted"),
        }
    }
}

/// One line of `/proc/cgroups`: a controller the kernel knows.
///
/// ```
/// use contain::cgroup::HostCgroups;
/// let proc_cgroups = "#subsys_name hierarchy num_cgroups enabled\nmemory 4 34 1\n";
/// let host = HostCgroups::from_texts("", "", proc_cgroups, "")?;
/// let memory = &host.kernel_controllers()[0];
/// assert_eq!((memory.name.as_str(), memory.hierarchy, memory.enabled), ("memory", 4, true));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelController {
    /// Its (v1) name.
    pub name: String,
    /// The v1 hierarchy it is bound to; 0 when unbound (free for cgroup v2).
    pub hierarchy: u32,
    /// False when disabled on the kernel command line (`cgroup_disable=`).
    pub enabled: bool,
}

/// The host's cgroup layout and the caller's place in it.
///
/// ```no_run
/// use contain::cgroup::{Controller, HostCgroups};
/// let host = HostCgroups::detect()?;
/// println!("{}", host.hierarchy());
/// // Err(Unsupported) with the reason when memory is not available in cgroup v2.
/// host.check(Controller::Memory)?;
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroups {
    hierarchy: Hierarchy,
    own: Option<PathBuf>,
    kernel: Vec<KernelController>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const SELF_CGROUP: &str = "/proc/self/cgroup";
const PROC_CGROUPS: &str = "/proc/cgroups";

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error("read", Path::new(path), e))
}

pub(crate) fn io_error(syscall: &'static str, path: &Path, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::sys_path(syscall, path, crate::Errno::from_raw(n)),
        None => Error::parse(path.display().to_string(), e.to_string()),
    }
}

impl HostCgroups {
    /// Reads the layout of the host as the calling process sees it.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `read` and `/proc/self/mountinfo`, `/proc/self/cgroup` or the v2
    /// mount's `cgroup.controllers` (`ENOENT` without `/proc`); [`Error::Parse`] when
    /// `/proc/self/mountinfo` has a malformed line. A host without any cgroup is not an error here:
    /// it is [`Hierarchy::None`].
    pub fn detect() -> Result<HostCgroups> {
        let mountinfo = read(MOUNTINFO)?;
        let self_cgroup = read(SELF_CGROUP)?;
        // Optional: newer kernels may drop it; it only refines error messages.
        let proc_cgroups = std::fs::read_to_string(PROC_CGROUPS).unwrap_or_default();
        let v2_controllers = match find_v2_mount(&parse_mountinfo(&mountinfo)?) {
            Some(m) => {
                let p = m.mount_point.join("cgroup.controllers");
                std::fs::read_to_string(&p).map_err(|e| io_error("read", &p, e))?
            }
            None => String::new(),
        };
        HostCgroups::from_texts(&mountinfo, &self_cgroup, &proc_cgroups, &v2_controllers)
    }

    /// Classifies the texts of `/proc/self/mountinfo`, `/proc/self/cgroup`, `/proc/cgroups`
    /// (may be empty) and the v2 mount's `cgroup.controllers` (empty without one).
    ///
    /// ```
    /// use contain::cgroup::{Controller, HostCgroups, Hierarchy};
    /// let mountinfo = "31 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    /// let host = HostCgroups::from_texts(mountinfo, "0::/user.slice\n", "", "cpu memory pids\n")?;
    /// assert!(matches!(host.hierarchy(), Hierarchy::PureV2(_)));
    /// assert!(host.check(Controller::Memory).is_ok());
    /// assert!(host.check(Controller::Io).is_err());
    /// assert_eq!(host.own_cgroup_dir()?, std::path::Path::new("/sys/fs/cgroup/user.slice"));
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] when `mountinfo` has a malformed line; the other texts are read leniently
    /// (lines that do not parse are skipped).
    pub fn from_texts(
        mountinfo: &str,
        self_cgroup: &str,
        proc_cgroups: &str,
        v2_controllers: &str,
    ) -> Result<HostCgroups> {
        let mounts = parse_mountinfo(mountinfo)?;
        let v2 = find_v2_mount(&mounts).map(|m| V2Mount {
            mount_point: m.mount_point.clone(),
            root: m.root.clone(),
            controllers: Controller::parse_list(v2_controllers),
        });
        let v1: Vec<V1Mount> = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup")
            .map(|m| {
                let mut controllers = Vec::new();
                let mut name = None;
                for opt in m.super_options.split(',') {
                    if let Some(n) = opt.strip_prefix("name=") {
                        name = Some(n.to_owned());
                    } else if is_v1_controller(opt) {
                        controllers.push(opt.to_owned());
                    }
                }
                V1Mount {
                    mount_point: m.mount_point.clone(),
                    controllers,
                    name,
                }
            })
            .collect();
        let hierarchy = match (v2, v1.is_empty()) {
            (Some(v2), true) => Hierarchy::PureV2(v2),
            (Some(v2), false) => Hierarchy::Hybrid { v2, v1 },
            (None, false) => Hierarchy::V1Only { v1 },
            (None, true) => Hierarchy::None,
        };
        Ok(HostCgroups {
            hierarchy,
            own: parse_self_cgroup(self_cgroup),
            kernel: parse_proc_cgroups(proc_cgroups),
        })
    }

    /// The layout.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The controllers the kernel lists in `/proc/cgroups` (empty if it could not be read).
    pub fn kernel_controllers(&self) -> &[KernelController] {
        &self.kernel
    }

    /// The caller's cgroup v2 path from `/proc/self/cgroup` (relative to its cgroup namespace),
    /// e.g. `/user.slice/user-1000.slice/session-2.scope`.
    pub fn own_cgroup(&self) -> Option<&Path> {
        self.own.as_deref()
    }

    /// The cgroup v2 mount, or `Unsupported` saying what the host has instead.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when no cgroup2 filesystem is mounted (cgroup v1 only, or no cgroup
    /// at all), saying which.
    pub fn v2_mount(&self) -> Result<&V2Mount> {
        self.hierarchy
            .v2()
            .ok_or_else(|| Error::unsupported("cgroup v2", self.no_v2_reason()))
    }

    /// The directory of the caller's own cgroup under the v2 mount.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when there is no cgroup2 mount, when `/proc/self/cgroup` has no `0::`
    /// line, or when the caller's cgroup lies outside what the mount shows (a cgroup2 mount made in
    /// another cgroup namespace).
    pub fn own_cgroup_dir(&self) -> Result<PathBuf> {
        let v2 = self.v2_mount()?;
        let Some(own) = &self.own else {
            return Err(Error::unsupported(
                "the caller's cgroup",
                format!("{SELF_CGROUP} has no cgroup v2 (\"0::\") entry"),
            ));
        };
        match own.strip_prefix(&v2.root) {
            Ok(rel) => Ok(v2.mount_point.join(rel)),
            Err(_) => Err(Error::unsupported(
                "the caller's cgroup",
                format!(
                    "{} is outside the cgroup2 mount at {}, which shows only {}",
                    own.display(),
                    v2.mount_point.display(),
                    v2.root.display()
                ),
            )),
        }
    }

    /// `Ok` if cgroup v2 offers `controller` at its mount; otherwise
    /// [`Error::Unsupported`] saying why (bound to v1, disabled, not in the kernel, ...) and
    /// what to do. [`check_all`](Self::check_all) checks several at once.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] naming `<controller> controller`, with the reason and the remedy.
    pub fn check(&self, controller: Controller) -> Result<()> {
        self.check_all(&[controller])
    }

    /// `Ok` if cgroup v2 offers every one of `controllers` at its mount; otherwise one
    /// [`Error::Unsupported`] that names *every* missing controller, where each one is instead
    /// (bound to a cgroup v1 hierarchy, disabled on the kernel command line, not delegated to
    /// this cgroup namespace, absent from the kernel), and the remedy for each cause (e.g.
    /// booting with `systemd.unified_cgroup_hierarchy=1` on a hybrid host). The feature is
    /// `"memory controller"` for one, `"memory, cpu and pids controllers"` for several.
    ///
    /// # Errors
    ///
    /// The one [`Error::Unsupported`] above, when any controller is missing.
    ///
    /// # Examples
    ///
    /// ```
    /// use contain::cgroup::{Controller, HostCgroups};
    /// let mountinfo = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
    ///                  42 31 0:39 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
    ///                  43 31 0:40 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    /// let host = HostCgroups::from_texts(mountinfo, "0::/\n", "", "hugetlb\n")?;
    /// let e = host.check_all(&[Controller::Memory, Controller::Pids]).unwrap_err().to_string();
    /// assert!(e.starts_with("memory and pids controllers are not supported here"), "{e}");
    /// assert!(e.contains("systemd.unified_cgroup_hierarchy=1"), "{e}");
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn check_all(&self, controllers: &[Controller]) -> Result<()> {
        let mut missing: Vec<(Controller, String, Cause)> = Vec::new();
        for &c in controllers {
            if let Some((why, cause)) = self.missing_why(c) {
                if !missing.iter().any(|(m, ..)| *m == c) {
                    missing.push((c, why, cause));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let cs: Vec<Controller> = missing.iter().map(|(c, ..)| *c).collect();
        let feature = match cs.len() {
            1 => format!("{} controller", cs[0]),
            _ => format!("{} controllers", and_list(&cs)),
        };
        let mut reason: Vec<String> = missing.iter().map(|(_, why, _)| why.clone()).collect();
        reason.push(self.offers());
        let mut causes: Vec<Cause> = missing.iter().map(|(.., cause)| *cause).collect();
        causes.sort_unstable();
        causes.dedup();
        let remedies: Vec<String> = causes
            .iter()
            .map(|&cause| {
                let these: Vec<Controller> = missing
                    .iter()
                    .filter(|(.., k)| *k == cause)
                    .map(|(c, ..)| *c)
                    .collect();
                self.remedy(cause, &these)
            })
            .collect();
        Err(Error::unsupported(
            feature,
            format!(
                "{}. To fix: {}{BEST_EFFORT_HINT}",
                reason.join("; "),
                remedies.join("; ")
            ),
        ))
    }

    fn no_v2_reason(&self) -> String {
        match &self.hierarchy {
            Hierarchy::None => format!("no cgroup filesystem is mounted (no cgroup2 entry in {MOUNTINFO})"),
            _ => format!("only cgroup v1 is mounted (no cgroup2 entry in {MOUNTINFO}); contain supports cgroup v2 only"),
        }
    }

    /// What cgroup v2 offers at its mount, e.g. "cgroup v2 at /sys/fs/cgroup/unified offers
    /// only hugetlb".
    fn offers(&self) -> String {
        let Some(v2) = self.hierarchy.v2() else {
            return self.no_v2_reason();
        };
        if v2.controllers.is_empty() {
            format!(
                "cgroup v2 at {} offers no controllers",
                v2.mount_point.display()
            )
        } else {
            format!(
                "cgroup v2 at {} offers only {}",
                v2.mount_point.display(),
                names(&v2.controllers)
            )
        }
    }

    /// Why `c` is not usable through cgroup v2, or `None` if it is.
    pub(crate) fn missing_reason(&self, c: Controller) -> Option<String> {
        let (why, _) = self.missing_why(c)?;
        Some(match self.hierarchy.v2() {
            Some(_) => format!("{why}; {}", self.offers()),
            None => why,
        })
    }

    /// Why `c` is not usable through cgroup v2 (without what v2 offers), and the kind of
    /// cause, for the remedy; `None` if it is usable.
    fn missing_why(&self, c: Controller) -> Option<(String, Cause)> {
        let v1_name = c.v1_name();
        let shown = if v1_name == c.name() {
            c.name().to_owned()
        } else {
            format!("{} ({v1_name} in cgroup v1)", c.name())
        };
        let v1_mount = self
            .hierarchy
            .v1()
            .iter()
            .find(|m| m.controllers.iter().any(|x| x == v1_name));
        let kernel = self.kernel.iter().find(|k| k.name == v1_name);
        let Some(v2) = self.hierarchy.v2() else {
            let base = self.no_v2_reason();
            return Some(match v1_mount {
                Some(m) => (
                    format!(
                        "{shown} is bound to the cgroup v1 hierarchy at {}; {base}",
                        m.mount_point.display()
                    ),
                    Cause::NoV2,
                ),
                None => (base, Cause::NoV2),
            });
        };
        if v2.controllers.contains(&c) {
            return None;
        }
        Some(if let Some(m) = v1_mount {
            (
                format!(
                    "{shown} is bound to the cgroup v1 hierarchy at {}",
                    m.mount_point.display()
                ),
                Cause::BoundToV1,
            )
        } else if let Some(k) = kernel.filter(|k| k.hierarchy != 0) {
            (
                format!(
                    "{shown} is bound to cgroup v1 hierarchy {} (not mounted here)",
                    k.hierarchy
                ),
                Cause::BoundToV1,
            )
        } else if kernel.is_some_and(|k| !k.enabled) {
            (
                format!(
                    "{shown} is disabled on the kernel command line (cgroup_disable={v1_name})"
                ),
                Cause::Disabled,
            )
        } else if !self.kernel.is_empty() && kernel.is_none() {
            (
                format!("the kernel has no {shown} controller (not in {PROC_CGROUPS})"),
                Cause::NotInKernel,
            )
        } else if v2.root != Path::new("/") {
            (
                format!(
                    "{shown} is not delegated to the cgroup {} shown at this mount",
                    v2.root.display()
                ),
                Cause::NotDelegated,
            )
        } else {
            (
                format!("the kernel does not offer {shown} to cgroup v2"),
                Cause::NotInKernel,
            )
        })
    }

    /// What to do about `cause` for the controllers `cs`.
    fn remedy(&self, cause: Cause, cs: &[Controller]) -> String {
        let v1_names = cs.iter().map(|c| c.v1_name()).collect::<Vec<_>>().join(",");
        let list = and_list(cs);
        match cause {
            Cause::BoundToV1 => format!(
                "{list} can be had in cgroup v2 only once cgroup v1 lets go of {}: boot with \
                 `systemd.unified_cgroup_hierarchy=1` (systemd hosts: all controllers in cgroup \
                 v2), or with `cgroup_no_v1={v1_names}` (or `cgroup_no_v1=all`) on the kernel \
                 command line",
                if cs.len() == 1 { "it" } else { "them" }
            ),
            Cause::Disabled => format!(
                "remove `cgroup_disable={v1_names}` from the kernel command line and reboot"
            ),
            Cause::NotInKernel => {
                format!("use a kernel built with the {list} controller (see /proc/cgroups)")
            }
            Cause::NotDelegated => format!(
                "ask whoever manages the cgroup {} to delegate {list} to it (enable {} in its \
                 parent's cgroup.subtree_control; systemd: Delegate=yes; docker: a cgroup v2 \
                 host and --cgroupns=private)",
                self.hierarchy
                    .v2()
                    .map_or_else(String::new, |v2| v2.root.display().to_string()),
                if cs.len() == 1 { "it" } else { "them" }
            ),
            Cause::NoV2 => "boot with `systemd.unified_cgroup_hierarchy=1`, or mount cgroup v2 \
                 (`mount -t cgroup2 none /sys/fs/cgroup/unified`)"
                .to_owned(),
        }
    }
}

/// Why a controller is missing from cgroup v2, for the remedy (one per kind in an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    NoV2,
    BoundToV1,
    Disabled,
    NotInKernel,
    NotDelegated,
}

/// "memory", "memory and pids", "memory, cpu and pids".
pub(crate) fn and_list(cs: &[Controller]) -> String {
    match cs {
        [] => String::new(),
        [one] => one.name().to_owned(),
        [rest @ .., last] => format!(
            "{} and {last}",
            rest.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// v1 controller names as they appear in cgroup v1 super options.
fn is_v1_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "blkio"
            | "perf_event"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// The fields of a mountinfo line this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub super_options: String,
}

/// Parses `/proc/self/mountinfo` (proc(5)): field 4 is the root, field 5 the mount point,
/// then optional fields up to a lone `-`, then fstype, source and super options.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().skip(6).position(|f| *f == "-").map(|i| i + 6);
        let parsed = sep.and_then(|sep| {
            Some(MountEntry {
                root: unescape(fields.get(3)?),
                mount_point: unescape(fields.get(4)?),
                fstype: (*fields.get(sep + 1)?).to_owned(),
                super_options: fields.get(sep + 3).copied().unwrap_or("").to_owned(),
            })
        });
        match parsed {
            Some(m) => out.push(m),
            None => {
                let shown: String = line.chars().take(120).collect();
                return Err(Error::parse(
                    MOUNTINFO,
                    format!("line {}: {shown:?}", n + 1),
                ));
            }
        }
    }
    Ok(out)
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = (u32::from(d[0] - b'0') << 6)
                    | (u32::from(d[1] - b'0') << 3)
                    | u32::from(d[2] - b'0');
                match u8::try_from(v) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 4;
                    }
                    Err(_) => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The first cgroup2 mount that is not hidden under a later mount on the same mount point.
pub(crate) fn find_v2_mount(mounts: &[MountEntry]) -> Option<&MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| m.fstype == "cgroup2")
        .find(|(i, m)| {
            !mounts
                .iter()
                .skip(i + 1)
                .any(|later| later.mount_point == m.mount_point)
        })
        .map(|(_, m)| m)
}

/// The v2 path (`0::PATH`) in `/proc/self/cgroup`.
fn parse_self_cgroup(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("0"), Some(""), Some(path)) if path.starts_with('/') => Some(PathBuf::from(path)),
            _ => None,
        }
    })
}

/// `/proc/cgroups`: `#subsys_name hierarchy num_cgroups enabled`; malformed lines are skipped
/// (the file only refines messages).
fn parse_proc_cgroups(text: &str) -> Vec<KernelController> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_ascii_whitespace();
            let name = w.next()?;
            let hierarchy = w.next()?.parse().ok()?;
            let _num_cgroups = w.next()?;
            let enabled = w.next()? != "0";
            Some(KernelController {
                name: name.to_owned(),
                hierarchy,
                enabled,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// This development host: systemd-less hybrid, v1 controllers each on their own mount.
    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "9:name=systemd:/\n4:memory:/job\n0::/\n";
    const HYBRID_PROC_CGROUPS: &str = "\
#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t1\t1
cpuacct\t2\t1\t1
blkio\t7\t1\t1
memory\t4\t34\t1
devices\t5\t1\t1
freezer\t6\t1\t1
net_cls\t0\t1\t1
perf_event\t0\t1\t1
net_prio\t0\t1\t1
hugetlb\t0\t1\t1
pids\t8\t1\t1
";

    /// A systemd host in unified mode, with optional fields and a user slice.
    const PURE_MOUNTINFO: &str = "\
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const PURE_SELF: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

    /// An old systemd host in legacy mode.
    const V1_MOUNTINFO: &str = "\
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 24 0:26 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:5 - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:8 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_host() {
        let host = HostCgroups::from_texts(
            HYBRID_MOUNTINFO,
            HYBRID_SELF,
            HYBRID_PROC_CGROUPS,
            "hugetlb\n",
        )
        .unwrap();
        let Hierarchy::Hybrid { v2, v1 } = host.hierarchy() else {
            panic!("{:?}", host.hierarchy())
        };
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(v2.controllers, vec![Controller::Hugetlb]);
        assert_eq!(v1.len(), 9);
        assert_eq!(v1[8].name.as_deref(), Some("systemd"));
        assert!(v1[8].controllers.is_empty());
        assert_eq!(v1[3].controllers, vec!["memory".to_owned()]);
        assert_eq!(host.own_cgroup(), Some(Path::new("/")));
        assert_eq!(
            host.own_cgroup_dir().unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        assert!(host.check(Controller::Hugetlb).is_ok());
        let e = host.check(Controller::Memory).unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory controller is not supported here: memory is bound to the cgroup v1 hierarchy at \
             /sys/fs/cgroup/memory; cgroup v2 at /sys/fs/cgroup/unified offers only hugetlb. To \
             fix: memory can be had in cgroup v2 only once cgroup v1 lets go of it: boot with \
             `systemd.unified_cgroup_hierarchy=1` (systemd hosts: all controllers in cgroup v2), \
             or with `cgroup_no_v1=memory` (or `cgroup_no_v1=all`) on the kernel command line; \
             or drop these limits, or have the limits this host supports applied and the rest \
             reported (LimitPolicy::BestEffort)"
        );
        // Every missing controller in one error, with each one's place and remedy.
        let e = host
            .check_all(&[
                Controller::Memory,
                Controller::Hugetlb,
                Controller::Io,
                Controller::Rdma,
            ])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("memory, io and rdma controllers are not supported here: memory is bound to the cgroup v1 hierarchy at /sys/fs/cgroup/memory; io (blkio in cgroup v1) is bound to the cgroup v1 hierarchy at /sys/fs/cgroup/blkio; the kernel has no rdma controller"),
            "{e}"
        );
        assert!(
            e.contains("`cgroup_no_v1=memory,blkio`")
                && e.contains("built with the rdma controller"),
            "{e}"
        );
        let e = host.check(Controller::Io).unwrap_err().to_string();
        assert!(e.contains("io (blkio in cgroup v1) is bound to the cgroup v1 hierarchy at /sys/fs/cgroup/blkio"), "{e}");
        let e = host.check(Controller::Rdma).unwrap_err().to_string();
        assert!(e.contains("the kernel has no rdma controller"), "{e}");
        let d = host.hierarchy().to_string();
        assert!(
            d.starts_with(
                "hybrid: cgroup v2 at /sys/fs/cgroup/unified (hugetlb) beside cgroup v1 (cpu at"
            ),
            "{d}"
        );
    }

    #[test]
    fn hybrid_without_mounts_uses_proc_cgroups() {
        let mountinfo = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                         40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let proc = "#subsys_name hierarchy num_cgroups enabled\nmemory 4 1 1\npids 0 1 0\n";
        let host = HostCgroups::from_texts(mountinfo, "0::/\n", proc, "cpu\n").unwrap();
        let e = host.check(Controller::Memory).unwrap_err().to_string();
        assert!(
            e.contains("bound to cgroup v1 hierarchy 4 (not mounted here)"),
            "{e}"
        );
        let e = host.check(Controller::Pids).unwrap_err().to_string();
        assert!(
            e.contains("cgroup_disable=pids") && e.contains("offers only cpu"),
            "{e}"
        );
    }

    #[test]
    fn pure_v2_host() {
        let host = HostCgroups::from_texts(
            PURE_MOUNTINFO,
            PURE_SELF,
            "",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        let Hierarchy::PureV2(v2) = host.hierarchy() else {
            panic!("{:?}", host.hierarchy())
        };
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(v2.controllers.len(), 8);
        for c in Controller::ALL {
            assert!(host.check(c).is_ok(), "{c:?}");
        }
        assert_eq!(
            host.own_cgroup_dir().unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")
        );
        let host = HostCgroups::from_texts(PURE_MOUNTINFO, PURE_SELF, "", "").unwrap();
        let e = host.check(Controller::Cpu).unwrap_err().to_string();
        assert!(e.contains("offers no controllers"), "{e}");
    }

    #[test]
    fn v1_only_host() {
        let host = HostCgroups::from_texts(V1_MOUNTINFO, "5:memory:/\n1:name=systemd:/\n", "", "")
            .unwrap();
        let Hierarchy::V1Only { v1 } = host.hierarchy() else {
            panic!("{:?}", host.hierarchy())
        };
        assert_eq!(v1[1].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            v1[1].controllers,
            vec!["cpu".to_owned(), "cpuacct".to_owned()]
        );
        assert_eq!(host.own_cgroup(), None);
        let e = host.check(Controller::Memory).unwrap_err().to_string();
        assert!(
            e.contains("memory is bound to the cgroup v1 hierarchy at /sys/fs/cgroup/memory"),
            "{e}"
        );
        assert!(e.contains("contain supports cgroup v2 only"), "{e}");
        assert!(matches!(
            host.own_cgroup_dir(),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn no_cgroups() {
        let host =
            HostCgroups::from_texts("25 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "", "", "").unwrap();
        assert_eq!(host.hierarchy(), &Hierarchy::None);
        let e = host.check(Controller::Pids).unwrap_err().to_string();
        assert!(e.contains("no cgroup filesystem is mounted"), "{e}");
    }

    #[test]
    fn container_view_of_a_subtree() {
        // A cgroup namespace whose root is above the mount's root, and a caller outside it.
        let mountinfo = "600 500 0:30 /ctr /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        let host = HostCgroups::from_texts(mountinfo, "0::/ctr/init\n", "", "pids\n").unwrap();
        assert_eq!(
            host.own_cgroup_dir().unwrap(),
            Path::new("/sys/fs/cgroup/init")
        );
        let e = host.check(Controller::Memory).unwrap_err().to_string();
        assert!(e.contains("not delegated to the cgroup /ctr"), "{e}");
        let host = HostCgroups::from_texts(mountinfo, "0::/other\n", "", "pids\n").unwrap();
        let e = host.own_cgroup_dir().unwrap_err().to_string();
        assert!(e.contains("outside the cgroup2 mount"), "{e}");
    }

    #[test]
    fn mountinfo_escapes_and_shadowing() {
        let text = "1 0 0:1 / /a\\040b rw - cgroup2 none rw\n\
                    2 0 0:2 / /c rw shared:3 master:1 - cgroup2 none rw\n\
                    3 0 0:3 / /a\\040b rw - tmpfs none rw\n";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(mounts[0].mount_point, Path::new("/a b"));
        assert_eq!(
            find_v2_mount(&mounts).map(|m| m.mount_point.as_path()),
            Some(Path::new("/c"))
        );
        assert_eq!(unescape("x\\134y\\012"), Path::new("x\\y\n"));
        assert_eq!(unescape("bad\\9\\477\\"), Path::new("bad\\9\\477\\"));
        assert!(parse_mountinfo("1 0 0:1 / /x rw\n").is_err());
        assert!(parse_mountinfo("1 0 0:1 / /x rw -\n").is_err());
    }

    proptest! {
        #[test]
        fn discovery_never_panics(a in "\\PC*", b in "\\PC*", c in "\\PC*", d in "\\PC*") {
            let _ = HostCgroups::from_texts(&a, &b, &c, &d).map(|h| {
                let _ = h.own_cgroup_dir();
                for c in Controller::ALL { let _ = h.check(c); }
            });
        }

        #[test]
        fn mountinfo_like_lines_never_panic(fields in proptest::collection::vec("[-a-z0-9/\\\\:,]{0,6}", 0..14)) {
            let _ = parse_mountinfo(&fields.join(" "));
        }
    }
}
