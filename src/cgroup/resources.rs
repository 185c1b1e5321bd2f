//! [`Resources`]: a set of limits as plain data, and [`CgroupBuilder`], which creates a group
//! with them.

use std::ffi::OsString;

use nix::sys::stat::{self, Mode};

use super::controllers::{explain_cpuset, explain_io_max, Controller};
use super::group::{Cgroup, OwnedCgroup};
use super::value::{Bytes, CpuList, CpuMax, HugePageSize, IoMax, Max, Weight};
use crate::{Error, Result};

/// Limits for a cgroup, as plain data: every `None` (or empty list) leaves the kernel's
/// default. Applied with [`Cgroup::apply`] or given to [`CgroupBuilder::resources`] or
/// [`Container::resources`](crate::process::Container::resources), which also enable the
/// controllers they need.
///
/// Built with one setter per field, by value like every builder of the crate (the struct is
/// `#[non_exhaustive]`, so it cannot be written as a literal outside the crate); the fields
/// stay public to read. Sizes take [`Bytes`] or [`Max::Unlimited`], counts a plain number:
///
/// ```
/// use contain::cgroup::{CpuMax, Max, Resources};
/// use contain::Bytes;
/// let limits = Resources::new()
///     .memory_max(Bytes::mib(256))
///     .memory_swap_max(Bytes(0)) // no swap
///     .cpu_max(CpuMax::cpus(0.5)?)
///     .pids_max(128);
/// assert_eq!(limits.memory_max, Some(Max::Limit(Bytes::mib(256))));
/// assert_eq!(limits.controllers().len(), 3);
///
/// // A setting that depends on the job: the builder is a value, reassign it.
/// let mut limits = limits;
/// if let Some(pids) = std::env::var("JOB_PIDS").ok().and_then(|p| p.parse::<u64>().ok()) {
///     limits = limits.pids_max(pids);
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Resources {
    /// `memory.max`.
    pub memory_max: Option<Max<Bytes>>,
    /// `memory.high`.
    pub memory_high: Option<Max<Bytes>>,
    /// `memory.low`.
    pub memory_low: Option<Max<Bytes>>,
    /// `memory.min`.
    pub memory_min: Option<Max<Bytes>>,
    /// `memory.swap.max`.
    pub memory_swap_max: Option<Max<Bytes>>,
    /// `memory.oom.group`.
    pub memory_oom_group: Option<bool>,
    /// `cpu.max`.
    pub cpu_max: Option<CpuMax>,
    /// `cpu.weight`.
    pub cpu_weight: Option<Weight>,
    /// `pids.max`.
    pub pids_max: Option<Max<u64>>,
    /// `io.max` entries, one per device.
    pub io_max: Vec<IoMax>,
    /// The default `io.weight`.
    pub io_weight: Option<Weight>,
    /// `cpuset.cpus`.
    pub cpuset_cpus: Option<CpuList>,
    /// `cpuset.mems`.
    pub cpuset_mems: Option<CpuList>,
    /// `hugetlb.<size>.max`, per page size.
    pub hugetlb_max: Vec<(HugePageSize, Max<Bytes>)>,
    /// Other interface files, written as given after the settings above (the OCI spec's
    /// `linux.resources.unified`): see [`Resources::unified`].
    pub unified: Vec<(UnifiedKey, String)>,
}

/// The name of a cgroup v2 interface file for [`Resources::unified`]: `<prefix>.<name>`
/// (`memory.high`, `cgroup.max.descendants`), of ASCII lower-case letters, digits, `_` and
/// `.`, at most 255 bytes, and none of the files that place processes or change the group's
/// kind or state (`cgroup.procs`, `cgroup.threads`, `cgroup.subtree_control`,
/// `cgroup.type`, `cgroup.freeze`, `cgroup.kill`), which are the runtime's, not a limit.
///
/// ```
/// use contain::cgroup::UnifiedKey;
/// assert!("memory.high".parse::<UnifiedKey>().is_ok());
/// assert!("../memory.high".parse::<UnifiedKey>().is_err());
/// assert!("cgroup.procs".parse::<UnifiedKey>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnifiedKey(String);

/// Files [`UnifiedKey`] refuses.
const UNIFIED_REFUSED: [&str; 6] = [
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.type",
    "cgroup.freeze",
    "cgroup.kill",
];

impl UnifiedKey {
    /// The file name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The controller the file belongs to (its prefix, `memory` for `memory.high`); `None`
    /// for the core `cgroup.*` files and prefixes this crate does not know.
    pub fn controller(&self) -> Option<Controller> {
        self.0.split_once('.').and_then(|(p, _)| p.parse().ok())
    }
}

impl std::str::FromStr for UnifiedKey {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::Config`] naming `cgroup unified key` for a name that is not `<prefix>.<name>`
    /// of the allowed characters, or one of the refused files (see [`UnifiedKey`]).
    fn from_str(s: &str) -> Result<UnifiedKey> {
        let bad = |why: &str| Error::config("cgroup unified key", format!("{s:?}: {why}"));
        let Some((prefix, rest)) = s.split_once('.') else {
            return Err(bad("not <controller>.<file>"));
        };
        if prefix.is_empty() || rest.is_empty() || s.len() > 255 {
            return Err(bad("not <controller>.<file>"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(bad(
                "only a-z, 0-9, '_' and '.' make an interface file name",
            ));
        }
        if UNIFIED_REFUSED.contains(&s) {
            return Err(bad("the runtime's own file, not a limit"));
        }
        Ok(UnifiedKey(s.to_owned()))
    }
}

impl std::fmt::Display for UnifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Resources {
    /// No limits: every field `None` or empty (the same as [`Resources::default`]).
    pub fn new() -> Resources {
        Resources::default()
    }

    /// `memory.max`: the hard limit; above it the kernel reclaims, then OOM-kills in the
    /// group (docker's `--memory`). Takes [`Bytes`] or [`Max::Unlimited`].
    #[must_use]
    pub fn memory_max(mut self, v: impl Into<Max<Bytes>>) -> Resources {
        self.memory_max = Some(v.into());
        self
    }

    /// `memory.high`: the throttle limit; above it the group is slowed and reclaimed hard,
    /// never OOM-killed for it. Takes [`Bytes`] or [`Max::Unlimited`].
    #[must_use]
    pub fn memory_high(mut self, v: impl Into<Max<Bytes>>) -> Resources {
        self.memory_high = Some(v.into());
        self
    }

    /// `memory.low`: best-effort protection from reclaim (docker's `--memory-reservation` on
    /// cgroup v2). Takes [`Bytes`] or [`Max::Unlimited`].
    #[must_use]
    pub fn memory_low(mut self, v: impl Into<Max<Bytes>>) -> Resources {
        self.memory_low = Some(v.into());
        self
    }

    /// `memory.min`: hard protection from reclaim. Takes [`Bytes`] or [`Max::Unlimited`].
    #[must_use]
    pub fn memory_min(mut self, v: impl Into<Max<Bytes>>) -> Resources {
        self.memory_min = Some(v.into());
        self
    }

    /// `memory.swap.max`: the swap the group may use (`Bytes(0)`: none). Note that docker's
    /// `--memory-swap` is memory *plus* swap; this is swap alone. Takes [`Bytes`] or
    /// [`Max::Unlimited`].
    #[must_use]
    pub fn memory_swap_max(mut self, v: impl Into<Max<Bytes>>) -> Resources {
        self.memory_swap_max = Some(v.into());
        self
    }

    /// `memory.oom.group`: whether an OOM kill takes the whole group (Linux 4.19).
    #[must_use]
    pub fn memory_oom_group(mut self, on: bool) -> Resources {
        self.memory_oom_group = Some(on);
        self
    }

    /// `cpu.max`: CPU bandwidth ([`CpuMax::cpus`] for docker's `--cpus`).
    #[must_use]
    pub fn cpu_max(mut self, v: CpuMax) -> Resources {
        self.cpu_max = Some(v);
        self
    }

    /// `cpu.weight`: the relative CPU share (1 to 10000, default 100).
    #[must_use]
    pub fn cpu_weight(mut self, v: Weight) -> Resources {
        self.cpu_weight = Some(v);
        self
    }

    /// `pids.max`: at most this many processes and threads (docker's `--pids-limit`). Takes a
    /// number or [`Max::Unlimited`].
    #[must_use]
    pub fn pids_max(mut self, v: impl Into<Max<u64>>) -> Resources {
        self.pids_max = Some(v.into());
        self
    }

    /// Adds an `io.max` entry (docker's `--device-{read,write}-{bps,iops}`); an earlier entry
    /// for the same device is replaced. The device is a whole disk:
    /// [`Device::from_block_device`](super::Device::from_block_device) resolves a path and
    /// refuses a partition. The kernel throttles I/O the container's processes submit to
    /// that disk: direct I/O at once, buffered writes when they are written back.
    #[must_use]
    pub fn io_max(mut self, v: IoMax) -> Resources {
        self.io_max.retain(|m| m.device != v.device);
        self.io_max.push(v);
        self
    }

    /// The default `io.weight` (1 to 10000, default 100); docker's `--blkio-weight` maps onto
    /// it with [`Weight::from_blkio_weight`]. It takes effect on disks whose I/O is
    /// controlled by the iocost controller (`io.cost.qos`, Linux 5.4).
    #[must_use]
    pub fn io_weight(mut self, v: Weight) -> Resources {
        self.io_weight = Some(v);
        self
    }

    /// `cpuset.cpus`: the CPUs the group may run on (docker's `--cpuset-cpus`).
    #[must_use]
    pub fn cpuset_cpus(mut self, v: CpuList) -> Resources {
        self.cpuset_cpus = Some(v);
        self
    }

    /// `cpuset.mems`: the memory nodes the group may allocate from (docker's
    /// `--cpuset-mems`).
    #[must_use]
    pub fn cpuset_mems(mut self, v: CpuList) -> Resources {
        self.cpuset_mems = Some(v);
        self
    }

    /// `hugetlb.<size>.max` for one page size; an earlier limit for the same size is
    /// replaced. Takes [`Bytes`] or [`Max::Unlimited`].
    #[must_use]
    pub fn hugetlb_max(mut self, size: HugePageSize, v: impl Into<Max<Bytes>>) -> Resources {
        self.hugetlb_max.retain(|(s, _)| *s != size);
        self.hugetlb_max.push((size, v.into()));
        self
    }

    /// Writes `value` to the interface file `key` of the group, after every other setting
    /// (the OCI spec's `linux.resources.unified`, config-linux.md#unified); an earlier value
    /// for the same file is replaced. The key's controller (its prefix, when this crate knows
    /// it) is enabled like the others'; a core `cgroup.*` file needs none.
    ///
    /// ```
    /// use contain::cgroup::Resources;
    /// let limits = Resources::new()
    ///     .unified("memory.high".parse()?, "1G")
    ///     .unified("cgroup.max.descendants".parse()?, "10");
    /// assert_eq!(limits.controllers().len(), 1); // memory
    /// # Ok::<(), contain::Error>(())
    /// ```
    #[must_use]
    pub fn unified(mut self, key: UnifiedKey, value: impl Into<String>) -> Resources {
        self.unified.retain(|(k, _)| *k != key);
        self.unified.push((key, value.into()));
        self
    }

    /// The controllers these limits need, each once.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut out = Vec::new();
        let memory = self.memory_max.is_some()
            || self.memory_high.is_some()
            || self.memory_low.is_some()
            || self.memory_min.is_some()
            || self.memory_swap_max.is_some()
            || self.memory_oom_group.is_some();
        for (needed, c) in [
            (memory, Controller::Memory),
            (
                self.cpu_max.is_some() || self.cpu_weight.is_some(),
                Controller::Cpu,
            ),
            (self.pids_max.is_some(), Controller::Pids),
            (
                !self.io_max.is_empty() || self.io_weight.is_some(),
                Controller::Io,
            ),
            (
                self.cpuset_cpus.is_some() || self.cpuset_mems.is_some(),
                Controller::Cpuset,
            ),
            (!self.hugetlb_max.is_empty(), Controller::Hugetlb),
        ] {
            if needed {
                out.push(c);
            }
        }
        for c in self.unified.iter().filter_map(|(k, _)| k.controller()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Writes every limit that is set; stops at the first error.
    pub(crate) fn apply_to(&self, cg: &Cgroup) -> Result<()> {
        self.settings().iter().try_for_each(|s| s.write_to(cg))
    }

    /// Writes every limit that is set and returns those that could not be written, each
    /// with its error (see [`LimitPolicy::BestEffort`]).
    pub(crate) fn apply_best_effort(&self, cg: &Cgroup) -> Vec<SkippedLimit> {
        let mut skipped = Vec::new();
        for s in self.settings() {
            if let Err(reason) = s.write_to(cg) {
                skipped.push(s.skipped(reason));
            }
        }
        skipped
    }

    /// Every limit that is set, as written to its interface file, in the order they are
    /// applied: cpuset, memory (protections first, then limits, so a tightening never trips
    /// over a stale value), cpu, pids, io, hugetlb, then the unified ones in order.
    pub(crate) fn settings(&self) -> Vec<Setting> {
        let mut out = Vec::new();
        let mut add = |controller, file: &str, value: Option<String>| {
            if let Some(value) = value {
                out.push(Setting {
                    controller: Some(controller),
                    file: file.to_owned(),
                    value,
                });
            }
        };
        let s = |v: &dyn std::fmt::Display| v.to_string();
        use Controller::*;
        add(
            Cpuset,
            "cpuset.cpus",
            self.cpuset_cpus.as_ref().map(|v| s(v)),
        );
        add(
            Cpuset,
            "cpuset.mems",
            self.cpuset_mems.as_ref().map(|v| s(v)),
        );
        add(Memory, "memory.min", self.memory_min.map(|v| s(&v)));
        add(Memory, "memory.low", self.memory_low.map(|v| s(&v)));
        add(Memory, "memory.high", self.memory_high.map(|v| s(&v)));
        add(Memory, "memory.max", self.memory_max.map(|v| s(&v)));
        add(
            Memory,
            "memory.swap.max",
            self.memory_swap_max.map(|v| s(&v)),
        );
        add(
            Memory,
            "memory.oom.group",
            self.memory_oom_group.map(|v| s(&u8::from(v))),
        );
        add(Cpu, "cpu.max", self.cpu_max.map(|v| s(&v)));
        add(Cpu, "cpu.weight", self.cpu_weight.map(|v| s(&v)));
        add(Pids, "pids.max", self.pids_max.map(|v| s(&v)));
        add(
            Io,
            "io.weight",
            self.io_weight.map(|v| format!("default {v}")),
        );
        for m in &self.io_max {
            add(Io, "io.max", Some(s(m)));
        }
        for (size, v) in &self.hugetlb_max {
            add(Hugetlb, &format!("hugetlb.{size}.max"), Some(s(v)));
        }
        for (key, value) in &self.unified {
            out.push(Setting {
                controller: key.controller(),
                file: key.as_str().to_owned(),
                value: value.clone(),
            });
        }
        out
    }

    /// These limits without those of `c`.
    pub(crate) fn without(&self, c: Controller) -> Resources {
        let mut r = self.clone();
        match c {
            Controller::Memory => {
                r.memory_max = None;
                r.memory_high = None;
                r.memory_low = None;
                r.memory_min = None;
                r.memory_swap_max = None;
                r.memory_oom_group = None;
            }
            Controller::Cpu => {
                r.cpu_max = None;
                r.cpu_weight = None;
            }
            Controller::Pids => r.pids_max = None,
            Controller::Io => {
                r.io_max.clear();
                r.io_weight = None;
            }
            Controller::Cpuset => {
                r.cpuset_cpus = None;
                r.cpuset_mems = None;
            }
            Controller::Hugetlb => r.hugetlb_max.clear(),
            Controller::Rdma | Controller::Misc => {}
        }
        r.unified.retain(|(k, _)| k.controller() != Some(c));
        r
    }

    /// Every limit of `c` as skipped because of `reason`.
    pub(crate) fn skip(&self, c: Controller, reason: &Error) -> Vec<SkippedLimit> {
        self.settings()
            .into_iter()
            .filter(|s| s.controller == Some(c))
            .map(|s| s.skipped(reason.clone()))
            .collect()
    }
}

/// One limit of a [`Resources`], as written to its interface file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    /// `None` for a core `cgroup.*` file (or an unknown prefix) of [`Resources::unified`].
    pub controller: Option<Controller>,
    pub file: String,
    pub value: String,
}

impl Setting {
    /// Writes the setting to its file in `cg`, which must have the controller enabled.
    fn write_to(&self, cg: &Cgroup) -> Result<()> {
        if let Some(c) = self.controller {
            cg.require_controller(c)?;
        }
        let written = cg.write_interface(&self.file, &self.value);
        written.map_err(|e| match self.file.as_str() {
            "cpuset.cpus" | "cpuset.mems" => explain_cpuset(cg, &self.file, &self.value, e),
            "io.max" => explain_io_max(cg, &self.value, e),
            _ => e,
        })
    }

    fn skipped(self, reason: Error) -> SkippedLimit {
        SkippedLimit {
            setting: self.file,
            value: self.value,
            controller: self.controller,
            reason,
        }
    }
}

/// What happens to limits ([`Resources`]) that this host cannot apply: a controller cgroup
/// v2 lacks (a hybrid host, where it is bound to cgroup v1), one the parent cgroup does not
/// enable, no cgroup at all for a rootless caller whose cgroup is not delegated to it.
///
/// Set with [`Container::limit_policy`](crate::process::Container::limit_policy). Docker
/// drops some limits the kernel cannot apply with a warning ("Your kernel does not support
/// swap limit capabilities ... Limitation discarded."); here strictness is the default, and
/// skipping is asked for and reported, so that a runner decides what a missing limit means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// Every limit is applied, or `spawn` fails saying which could not be and why (the
    /// default).
    #[default]
    Strict,
    /// The limits the host supports are applied; the rest are skipped and listed in
    /// [`Child::skipped_limits`](crate::process::Child::skipped_limits), each with its error.
    /// When no cgroup can be made at all (rootless without delegation), the container runs
    /// without one ([`Child::cgroup`](crate::process::Child::cgroup) is `None`) and every
    /// limit is listed. The default device allowlist
    /// ([`Security::device_allowlist`](crate::security::Security::device_allowlist)) is then
    /// left out, as for a container without limits (the default seccomp filter's ban on
    /// block device nodes closes the same hole); one the caller set is security rather than a
    /// limit, and is never skipped: without a cgroup for it `spawn` fails.
    BestEffort,
}

/// A limit that [`LimitPolicy::BestEffort`] did not apply, and why.
///
/// ```
/// use contain::cgroup::SkippedLimit;
/// fn report(skipped: &[SkippedLimit]) {
///     for s in skipped {
///         // e.g. "memory.max=67108864 not applied: memory controller is not supported here: ..."
///         eprintln!("warning: {}={} not applied: {}", s.setting, s.value, s.reason);
///     }
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SkippedLimit {
    /// The interface file it would have been written to, e.g. `"memory.max"`,
    /// `"hugetlb.2MB.max"`.
    pub setting: String,
    /// The value, as it would have been written (e.g. `"67108864"`, `"max 100000"`).
    pub value: String,
    /// The controller the setting belongs to; `None` for a core `cgroup.*` file of
    /// [`Resources::unified`] and for what belongs to none: `"cgroup"` (no
    /// cgroup could be made for the container at all: it runs without one, so
    /// [`Child::cgroup`](crate::process::Child::cgroup) is `None`,
    /// [`Child::kill_container`](crate::process::Child::kill_container) reaches only what its
    /// PID namespace holds, and the default device allowlist, attached to that cgroup, is left
    /// out as for a container without limits) and `"devices"` (the default device allowlist,
    /// a BPF program that could not be loaded).
    pub controller: Option<Controller>,
    /// Why it was not applied (usually [`Error::Unsupported`], naming the cause and remedy).
    pub reason: Error,
}

impl std::fmt::Display for SkippedLimit {
    /// `memory.max=268435456 not applied: ` and the reason (also for a core `cgroup.*` file
    /// of [`Resources::unified`]); for the `"cgroup"` and `"devices"` entries, e.g. `the
    /// container's own cgroup not made: ` and the reason.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.setting.as_str() {
            // "cgroup", "devices": the value says what is missing.
            "cgroup" | "devices" if self.controller.is_none() => {
                write!(f, "{} not made: ", self.value)?
            }
            _ => write!(f, "{}={} not applied: ", self.setting, self.value)?,
        }
        write!(f, "{}", self.reason)
    }
}

/// Creates a cgroup: plain data until [`create_in`](Self::create_in) or
/// [`create_in_own`](Self::create_in_own).
///
/// Creating enables the needed controllers in the parent's `cgroup.subtree_control` (and up
/// the tree where they are missing), makes the directory, and applies the resources. The
/// result is an [`OwnedCgroup`]: removed again on drop, and on any error during creation.
///
/// ```no_run
/// use contain::cgroup::{Cgroup, CgroupBuilder, Controller, Resources};
/// use contain::Bytes;
/// let limits = Resources::new().memory_max(Bytes::mib(64)).pids_max(32);
/// let job = CgroupBuilder::new("job-42")
///     .resources(limits)
///     .controller(Controller::Cpu) // for cpu.stat throttling counters, say
///     .create_in(&Cgroup::root()?)?;
/// // spawn into job.as_fd() with clone3(CLONE_INTO_CGROUP), or job.add_process(pid)
/// # drop(job);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupBuilder {
    name: OsString,
    controllers: Vec<Controller>,
    resources: Resources,
}

impl CgroupBuilder {
    /// A group to be called `name` (one path component).
    pub fn new(name: impl Into<OsString>) -> Self {
        CgroupBuilder {
            name: name.into(),
            controllers: Vec::new(),
            resources: Resources::default(),
        }
    }

    /// Also enables `controller` for the group, beyond those its resources need.
    #[must_use]
    pub fn controller(mut self, controller: Controller) -> Self {
        self.controllers.push(controller);
        self
    }

    /// Also enables each of `controllers` (see [`controller`](Self::controller)).
    pub(crate) fn controllers(mut self, controllers: &[Controller]) -> Self {
        self.controllers.extend_from_slice(controllers);
        self
    }

    /// The limits to apply.
    #[must_use]
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// Creates the group under `parent`. Fails with `EEXIST` if it exists: an existing group
    /// is never adopted (and so never removed) by accident.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when the name is not one path component.
    /// - Those of [`Cgroup::enable_controllers`] on `parent` ([`Error::Unsupported`] when a
    ///   controller is missing or `parent` holds processes).
    /// - [`Error::Sys`] naming `mkdirat` and the new path: `EEXIST` when the name is taken,
    ///   `EACCES` when `parent` is not delegated to the caller.
    /// - Those of [`Cgroup::apply`] for the limits; the new group is removed again then.
    pub fn create_in(&self, parent: &Cgroup) -> Result<OwnedCgroup> {
        super::group::check_child_name(&self.name)?;
        parent.enable_controllers(&self.wanted_controllers())?;
        let path = parent.path().join(&self.name);
        stat::mkdirat(
            parent.as_fd(),
            self.name.as_os_str(),
            Mode::from_bits_truncate(0o755),
        )
        .map_err(|e| Error::sys_path("mkdirat", &path, e))?;
        // From here on, failure removes the directory again (OwnedCgroup's Drop).
        let opened = parent
            .child(&self.name)
            .and_then(|cg| Ok((cg, parent.try_clone()?)));
        let (cg, parent_handle) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = nix::unistd::unlinkat(
                    parent.as_fd(),
                    self.name.as_os_str(),
                    nix::unistd::UnlinkatFlags::RemoveDir,
                );
                return Err(e);
            }
        };
        let owned = OwnedCgroup::new(cg, parent_handle, self.name.clone());
        owned.apply(&self.resources)?;
        Ok(owned)
    }

    /// Takes the existing, empty group `name` of `parent` as if it had been created here:
    /// enables the controllers in `parent`, applies the limits, and owns it (removed on drop).
    /// For an exact path whose last group is there already (an OCI runtime's
    /// `cgroupsPath`, as runc takes an existing empty cgroup). Nothing is removed on failure.
    pub(crate) fn adopt_in(&self, parent: &Cgroup) -> Result<OwnedCgroup> {
        super::group::check_child_name(&self.name)?;
        parent.enable_controllers(&self.wanted_controllers())?;
        let cg = parent.child(&self.name)?;
        cg.apply(&self.resources)?;
        Ok(OwnedCgroup::new(cg, parent.try_clone()?, self.name.clone()))
    }

    /// Creates the group under the caller's own cgroup (from `/proc/self/cgroup`).
    ///
    /// That cgroup holds the caller, so unless it is the root it cannot enable controllers
    /// for a child (cgroup v2's "no internal processes" rule): with controllers this fails
    /// with an `Unsupported` error that says so. [`create_in_default`](Self::create_in_default)
    /// picks a parent that can take them.
    ///
    /// # Errors
    ///
    /// Those of [`Cgroup::own`] and [`create_in`](Self::create_in); with controllers, unless the
    /// caller is in the root cgroup, [`Error::Unsupported`] for the "no internal processes" rule.
    pub fn create_in_own(&self) -> Result<OwnedCgroup> {
        self.create_in(&Cgroup::own()?)
    }

    /// Creates the group where [`Container::resources`](crate::process::Container::resources)
    /// puts containers' groups when no parent is given: the caller's own cgroup when the
    /// group needs no controller or the caller is in the root cgroup, otherwise the crate's
    /// parent `<cgroup2 mount>/contain` ([`PARENT`](super::PARENT)), made on demand. See
    /// [the module](super::place) for the rules.
    ///
    /// Nothing of the host's is reconfigured: the controllers must already be enabled at the
    /// top of the cgroup2 mount (systemd enables them all at boot).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] naming the cgroup, the controller and what to do when no parent
    /// can take the controllers (a controller the host lacks, one the root does not enable,
    /// no right to create the crate's parent without root); [`Error::Sys`] for a failed
    /// `mkdirat`, e.g. `EEXIST` when the name is taken.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use contain::cgroup::{CgroupBuilder, Resources};
    /// use contain::Bytes;
    /// let limits = Resources::new().memory_max(Bytes::mib(64));
    /// // From a systemd service: /sys/fs/cgroup/contain/job-42
    /// let job = CgroupBuilder::new("job-42").resources(limits).create_in_default()?;
    /// println!("{}", job.path().display());
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn create_in_default(&self) -> Result<OwnedCgroup> {
        super::place::create_in_default(self, false)
    }

    /// The controllers the group needs: those asked for and those its resources need.
    pub(crate) fn wanted_controllers(&self) -> Vec<Controller> {
        let mut wanted = self.controllers.clone();
        wanted.extend(self.resources.controllers());
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_follow_the_limits() {
        assert!(Resources::default().controllers().is_empty());
        let r = Resources {
            memory_oom_group: Some(true),
            io_weight: Some(Weight::DEFAULT),
            hugetlb_max: vec![(
                HugePageSize::from_bytes(Bytes::mib(2)).unwrap(),
                Max::Unlimited,
            )],
            cpuset_mems: Some(CpuList::from_ids([0])),
            ..Resources::default()
        };
        assert_eq!(
            r.controllers(),
            vec![
                Controller::Memory,
                Controller::Io,
                Controller::Cpuset,
                Controller::Hugetlb
            ]
        );
        let r = Resources {
            cpu_weight: Some(Weight::MIN),
            pids_max: Some(Max::Unlimited),
            ..Resources::default()
        };
        assert_eq!(r.controllers(), vec![Controller::Cpu, Controller::Pids]);
    }

    #[test]
    fn unified_keys_are_checked_and_written_last() {
        for bad in [
            "",
            "memory",
            ".high",
            "memory.",
            "../memory.high",
            "memory/high",
            "Memory.high",
            "memory.high\n",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.kill",
        ] {
            let e = bad.parse::<UnifiedKey>().unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Config {
                        what: "cgroup unified key",
                        ..
                    }
                ),
                "{bad:?}: {e}"
            );
        }
        let key = |k: &str| k.parse::<UnifiedKey>().unwrap();
        assert_eq!(key("memory.high").controller(), Some(Controller::Memory));
        assert_eq!(key("cgroup.max.descendants").controller(), None);
        assert_eq!(key("rdma.max").controller(), Some(Controller::Rdma));
        let r = Resources::new()
            .unified(key("memory.high"), "1")
            .pids_max(5)
            .unified(key("cgroup.max.depth"), "2")
            .unified(key("memory.high"), "3");
        assert_eq!(r.controllers(), vec![Controller::Pids, Controller::Memory]);
        let files: Vec<_> = r
            .settings()
            .into_iter()
            .map(|s| (s.controller, s.file, s.value))
            .collect();
        assert_eq!(
            files,
            [
                (Some(Controller::Pids), "pids.max".into(), "5".into()),
                (None, "cgroup.max.depth".into(), "2".into()),
                (Some(Controller::Memory), "memory.high".into(), "3".into()),
            ]
        );
        let r = r.without(Controller::Memory);
        assert_eq!(r.unified, [(key("cgroup.max.depth"), "2".to_owned())]);
        let skipped = SkippedLimit {
            setting: "cgroup.max.depth".into(),
            value: "2".into(),
            controller: None,
            reason: Error::config("x", "y"),
        };
        assert!(
            skipped
                .to_string()
                .starts_with("cgroup.max.depth=2 not applied: "),
            "{skipped}"
        );
    }

    /// As root with a cgroup v2 hierarchy: a core file of `unified` reaches the new group.
    #[test]
    fn unified_core_file_is_written() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: unified_core_file_is_written: needs root");
            return;
        }
        if Cgroup::own().is_err() {
            eprintln!("skipped: unified_core_file_is_written: no cgroup v2 here");
            return;
        }
        let name = format!("contain-unified-{}", std::process::id());
        let r = Resources::new().unified("cgroup.max.descendants".parse().unwrap(), "3");
        let cg = CgroupBuilder::new(&name)
            .resources(r)
            .create_in_own()
            .unwrap();
        assert_eq!(cg.read_file("cgroup.max.descendants").unwrap().trim(), "3");
        let path = cg.path().to_owned();
        drop(cg);
        assert!(!path.exists());
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_created() {
        let root = match Cgroup::root() {
            Ok(root) => root,
            Err(e) => return assert!(matches!(e, Error::Unsupported { .. }), "{e}"),
        };
        for bad in ["", "..", "a/b"] {
            let e = CgroupBuilder::new(bad).create_in(&root).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad:?}: {e}");
        }
    }
}
