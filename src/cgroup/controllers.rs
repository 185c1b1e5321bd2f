//! The cgroup v2 controllers and a typed view of each one's interface files.
//!
//! A view is had from [`Cgroup::memory`], [`Cgroup::cpu`], ... which first check that the
//! controller is enabled for that group (it is listed in its `cgroup.controllers`), and
//! otherwise return [`Error::Unsupported`](crate::Error::Unsupported) saying why.

use std::fmt;
use std::str::FromStr;

use super::group::Cgroup;
use super::parse::{self, CpuStat, IoStat, MemoryEvents, MemoryStat, PidsEvents};
use super::value::{Bytes, CpuList, CpuMax, Device, HugePageSize, IoMax, Max, Weight};
use crate::{Errno, Error, Result};

/// A cgroup v2 controller.
///
/// ```
/// use contain::cgroup::Controller;
/// assert_eq!("memory".parse::<Controller>()?, Controller::Memory);
/// assert_eq!(Controller::Io.to_string(), "io");
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Controller {
    /// CPU bandwidth and weight (`cpu.*`).
    Cpu,
    /// CPU and memory-node placement (`cpuset.*`).
    Cpuset,
    /// Block I/O limits and weight (`io.*`).
    Io,
    /// Memory limits and accounting (`memory.*`).
    Memory,
    /// Process count limit (`pids.*`).
    Pids,
    /// HugeTLB limits (`hugetlb.<size>.*`).
    Hugetlb,
    /// RDMA resources (`rdma.*`).
    Rdma,
    /// Miscellaneous scalar resources (`misc.*`).
    Misc,
}

impl Controller {
    /// Every controller this crate knows.
    pub const ALL: [Controller; 8] = [
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Io,
        Controller::Memory,
        Controller::Pids,
        Controller::Hugetlb,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The name used in `cgroup.controllers` and `cgroup.subtree_control`.
    pub const fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The name of the cgroup v1 controller that holds the same resource.
    pub(crate) const fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            c => c.name(),
        }
    }

    /// The known controllers in a space-separated list (`cgroup.controllers`); unknown names
    /// are skipped.
    pub(crate) fn parse_list(text: &str) -> Vec<Controller> {
        text.split_ascii_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Controller {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Controller::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::parse("controller name", format!("unknown controller {s:?}")))
    }
}

/// The memory controller of one cgroup.
///
/// ```no_run
/// use contain::cgroup::{Bytes, Cgroup, Max};
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// let mem = cg.memory()?;
/// mem.set_max(Max::Limit(Bytes::mib(256)))?;
/// mem.set_swap_max(Max::Limit(Bytes(0)))?;
/// println!("peak {} bytes, {} OOM kills", mem.peak()?, mem.events()?.oom_kill);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Memory<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Memory<'_> {
    /// `memory.max`: the hard limit; over it the group reclaims, then the OOM killer acts.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.max` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_max(&self, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface("memory.max", v)
    }
    /// `memory.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.max` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `max` or a number of bytes.
    pub fn max(&self) -> Result<Max<Bytes>> {
        self.cg.read_interface("memory.max")
    }
    /// `memory.high`: the throttle limit; over it the group is slowed and reclaimed hard.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.high` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_high(&self, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface("memory.high", v)
    }
    /// `memory.high`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.high` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `max` or a number of bytes.
    pub fn high(&self) -> Result<Max<Bytes>> {
        self.cg.read_interface("memory.high")
    }
    /// `memory.low`: best-effort protection from reclaim.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.low` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_low(&self, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface("memory.low", v)
    }
    /// `memory.low`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.low` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `max` or a number of bytes.
    pub fn low(&self) -> Result<Max<Bytes>> {
        self.cg.read_interface("memory.low")
    }
    /// `memory.min`: hard protection from reclaim.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.min` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_min(&self, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface("memory.min", v)
    }
    /// `memory.min`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.min` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `max` or a number of bytes.
    pub fn min(&self) -> Result<Max<Bytes>> {
        self.cg.read_interface("memory.min")
    }
    /// `memory.swap.max`: the swap limit (`Bytes(0)` disables swap for the group).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.swap.max` (the root cgroup, or a kernel
    /// without swap accounting, e.g. booted with `swapaccount=0`); otherwise those of
    /// [`Cgroup::write_file`].
    pub fn set_swap_max(&self, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface("memory.swap.max", v)
    }
    /// `memory.swap.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.swap.max` (the root cgroup, or a kernel
    /// without swap accounting); otherwise those of [`Cgroup::read_file`], or [`Error::Parse`]
    /// naming the file when it does not hold `max` or a number of bytes.
    pub fn swap_max(&self) -> Result<Max<Bytes>> {
        self.cg.read_interface("memory.swap.max")
    }
    /// `memory.oom.group`: whether the OOM killer kills the whole group at once (Linux 4.19+).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.oom.group` (the root cgroup; kernels
    /// before 4.19); otherwise those of [`Cgroup::write_file`].
    pub fn set_oom_group(&self, on: bool) -> Result<()> {
        self.cg.write_interface("memory.oom.group", u8::from(on))
    }
    /// `memory.oom.group`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.oom.group` (the root cgroup; kernels
    /// before 4.19); otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file
    /// when it does not hold a number.
    pub fn oom_group(&self) -> Result<bool> {
        Ok(self.cg.read_interface_u64("memory.oom.group")? != 0)
    }
    /// `memory.current`: usage now, including descendants.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.current` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold a number of bytes.
    pub fn current(&self) -> Result<Bytes> {
        self.cg.read_interface("memory.current")
    }
    /// `memory.peak`: the highest usage so far (Linux 5.19+).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.peak` (the root cgroup; kernels before
    /// 5.19); otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it
    /// does not hold a number of bytes.
    pub fn peak(&self) -> Result<Bytes> {
        self.cg.read_interface("memory.peak")
    }
    /// `memory.swap.current`: swap in use.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.swap.current` (the root cgroup, or a
    /// kernel without swap accounting); otherwise those of [`Cgroup::read_file`], or
    /// [`Error::Parse`] naming the file when it does not hold a number of bytes.
    pub fn swap_current(&self) -> Result<Bytes> {
        self.cg.read_interface("memory.swap.current")
    }
    /// `memory.stat`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.stat`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold `KEY VALUE`
    /// lines.
    pub fn stat(&self) -> Result<MemoryStat> {
        self.cg.read_interface("memory.stat")
    }
    /// `memory.events`: limit hits and OOM kills in this group and below.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `memory.events` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `KEY VALUE` lines.
    pub fn events(&self) -> Result<MemoryEvents> {
        self.cg.read_interface("memory.events")
    }
}

/// The cpu controller of one cgroup (in cgroup v2 since Linux 4.15).
///
/// ```no_run
/// use contain::cgroup::{Cgroup, CpuMax, Weight};
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// cg.cpu()?.set_max(CpuMax::cpus(1.5)?)?;
/// cg.cpu()?.set_weight(Weight::new(50)?)?;
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cpu<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Cpu<'_> {
    /// `cpu.max`: bandwidth limit.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpu.max` (the root cgroup has none); otherwise
    /// those of [`Cgroup::write_file`].
    pub fn set_max(&self, v: CpuMax) -> Result<()> {
        self.cg.write_interface("cpu.max", v)
    }
    /// `cpu.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpu.max` (the root cgroup has none); otherwise
    /// those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold
    /// `QUOTA PERIOD` in microseconds.
    pub fn max(&self) -> Result<CpuMax> {
        self.cg.read_interface("cpu.max")
    }
    /// `cpu.weight`: share of CPU time against siblings.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpu.weight` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_weight(&self, v: Weight) -> Result<()> {
        self.cg.write_interface("cpu.weight", v)
    }
    /// `cpu.weight`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpu.weight` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold a weight in 1..=10000.
    pub fn weight(&self) -> Result<Weight> {
        self.cg.read_interface("cpu.weight")
    }
    /// `cpu.stat`, with the throttling counters.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpu.stat`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold `KEY VALUE`
    /// lines.
    pub fn stat(&self) -> Result<CpuStat> {
        self.cg.read_interface("cpu.stat")
    }
}

/// The pids controller of one cgroup.
///
/// ```no_run
/// use contain::cgroup::{Cgroup, Max};
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// cg.pids()?.set_max(Max::Limit(64))?;
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Pids<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Pids<'_> {
    /// `pids.max`: the most tasks (threads included) the group may hold.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `pids.max` (the root cgroup has none);
    /// otherwise those of [`Cgroup::write_file`].
    pub fn set_max(&self, v: Max<u64>) -> Result<()> {
        self.cg.write_interface("pids.max", v)
    }
    /// `pids.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `pids.max` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `max` or a number.
    pub fn max(&self) -> Result<Max<u64>> {
        self.cg.read_interface("pids.max")
    }
    /// `pids.current`: tasks now.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `pids.current`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold a number.
    pub fn current(&self) -> Result<u64> {
        self.cg.read_interface_u64("pids.current")
    }
    /// `pids.events`: forks refused because of `pids.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `pids.events` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold `KEY VALUE` lines.
    pub fn events(&self) -> Result<PidsEvents> {
        self.cg.read_interface("pids.events")
    }
}

/// I/O weights (`io.weight`): a default and per-device overrides.
///
/// ```
/// use contain::cgroup::{Device, IoWeights, Weight};
/// let w: IoWeights = "default 100\n8:0 200\n".parse()?;
/// assert_eq!(w.default, Weight::DEFAULT);
/// assert_eq!(w.devices, vec![(Device::new(8, 0), Weight::new(200)?)]);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoWeights {
    /// The weight of devices without an entry.
    pub default: Weight,
    /// Per-device weights.
    pub devices: Vec<(Device, Weight)>,
}

impl FromStr for IoWeights {
    type Err = Error;

    /// `default 100\n8:0 200\n`.
    fn from_str(s: &str) -> Result<Self> {
        let mut out = IoWeights {
            default: Weight::DEFAULT,
            devices: Vec::new(),
        };
        for line in s.lines().filter(|l| !l.trim().is_empty()) {
            let mut w = line.split_ascii_whitespace();
            let (Some(key), Some(value), None) = (w.next(), w.next(), w.next()) else {
                return Err(Error::parse(
                    "io.weight",
                    format!("{line:?}: expected \"KEY WEIGHT\""),
                ));
            };
            let weight: Weight = value.parse()?;
            if key == "default" {
                out.default = weight;
            } else {
                out.devices.push((key.parse()?, weight));
            }
        }
        Ok(out)
    }
}

/// The io controller of one cgroup.
///
/// ```no_run
/// use contain::cgroup::{Cgroup, Device, IoMax};
/// use contain::Bytes;
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// cg.io()?.set_max(IoMax::new(Device::new(8, 0)).wbps(Bytes::mib(10)))?; // 10 MiB/s
/// for dev in cg.io()?.stat()? {
///     println!("{}: {} bytes read", dev.device, dev.rbytes);
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Io<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Io<'_> {
    /// Writes one device's `io.max` entry (all four limits; `max` removes a limit).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.max` (the root cgroup has none);
    /// [`Error::Config`] (what: `"io.max"`) when the kernel refuses the entry: a rate of 0
    /// (`ERANGE`) or 1 (`EINVAL`), or a device number that is no whole disk here (`ENODEV`:
    /// none, or a partition; [`Device::from_block_device`] says which before); otherwise
    /// those of [`Cgroup::write_file`].
    pub fn set_max(&self, v: IoMax) -> Result<()> {
        let line = v.to_string();
        self.cg
            .write_interface("io.max", &line)
            .map_err(|e| explain_io_max(self.cg, &line, e))
    }
    /// `io.max`: the devices with limits.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.max` (the root cgroup has none); otherwise
    /// those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold
    /// `MAJ:MIN key=value...` lines.
    pub fn max(&self) -> Result<Vec<IoMax>> {
        parse::io_max(&self.cg.read_interface_text("io.max")?)
            .map_err(|e| self.cg.reword(e, "io.max"))
    }
    /// Sets the default `io.weight`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.weight` (the root cgroup; a kernel without
    /// the iocost controller, `CONFIG_BLK_CGROUP_IOCOST`); otherwise those of
    /// [`Cgroup::write_file`].
    pub fn set_weight(&self, v: Weight) -> Result<()> {
        self.cg
            .write_interface("io.weight", format_args!("default {v}"))
    }
    /// Sets the `io.weight` of one device.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.weight` (the root cgroup; a kernel without
    /// the iocost controller, `CONFIG_BLK_CGROUP_IOCOST`); otherwise those of
    /// [`Cgroup::write_file`]: `ENODEV` from `write` when no block device has that number on this
    /// host.
    pub fn set_device_weight(&self, device: Device, v: Weight) -> Result<()> {
        self.cg
            .write_interface("io.weight", format_args!("{device} {v}"))
    }
    /// `io.weight`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.weight` (the root cgroup; a kernel without
    /// the iocost controller); otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming
    /// the file when it does not hold `default N` and `MAJ:MIN N` lines.
    pub fn weight(&self) -> Result<IoWeights> {
        self.cg.read_interface("io.weight")
    }
    /// `io.stat`: per-device counters.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `io.stat`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold `MAJ:MIN
    /// key=value...` lines.
    pub fn stat(&self) -> Result<Vec<IoStat>> {
        parse::io_stat(&self.cg.read_interface_text("io.stat")?)
            .map_err(|e| self.cg.reword(e, "io.stat"))
    }
}

/// The cpuset controller of one cgroup (in cgroup v2 since Linux 5.0).
///
/// ```no_run
/// use contain::cgroup::{Cgroup, CpuList};
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// cg.cpuset()?.set_cpus(&"0-1".parse()?)?;
/// println!("runs on {}", cg.cpuset()?.effective_cpus()?);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cpuset<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Cpuset<'_> {
    /// `cpuset.cpus`: the CPUs the group may use (empty: those of the parent).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.cpus` (the root cgroup has none);
    /// [`Error::Config`] (what: `"cpuset"`) when the kernel refuses the list (`EINVAL` or
    /// `ERANGE`): a CPU the parent does not have, named with the parent's
    /// `cpuset.cpus.effective` (docker's "Requested CPUs are not available"); otherwise those
    /// of [`Cgroup::write_file`].
    pub fn set_cpus(&self, v: &CpuList) -> Result<()> {
        self.cg
            .write_interface("cpuset.cpus", v)
            .map_err(|e| explain_cpuset(self.cg, "cpuset.cpus", &v.to_string(), e))
    }
    /// `cpuset.cpus` as configured.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.cpus` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold a CPU list such as `0-3,8`.
    pub fn cpus(&self) -> Result<CpuList> {
        self.cg.read_interface("cpuset.cpus")
    }
    /// `cpuset.cpus.effective`: the CPUs the group actually gets.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.cpus.effective`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold a CPU list
    /// such as `0-3,8`.
    pub fn effective_cpus(&self) -> Result<CpuList> {
        self.cg.read_interface("cpuset.cpus.effective")
    }
    /// `cpuset.mems`: the memory nodes the group may use (empty: those of the parent).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.mems` (the root cgroup has none);
    /// [`Error::Config`] (what: `"cpuset"`) when the kernel refuses the list (`EINVAL` or
    /// `ERANGE`): a memory node the parent does not have, named with the parent's
    /// `cpuset.mems.effective`; otherwise those of [`Cgroup::write_file`].
    pub fn set_mems(&self, v: &CpuList) -> Result<()> {
        self.cg
            .write_interface("cpuset.mems", v)
            .map_err(|e| explain_cpuset(self.cg, "cpuset.mems", &v.to_string(), e))
    }
    /// `cpuset.mems` as configured.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.mems` (the root cgroup has none);
    /// otherwise those of [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does
    /// not hold a node list such as `0-1`.
    pub fn mems(&self) -> Result<CpuList> {
        self.cg.read_interface("cpuset.mems")
    }
    /// `cpuset.mems.effective`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `cpuset.mems.effective`; otherwise those of
    /// [`Cgroup::read_file`], or [`Error::Parse`] naming the file when it does not hold a node list
    /// such as `0-1`.
    pub fn effective_mems(&self) -> Result<CpuList> {
        self.cg.read_interface("cpuset.mems.effective")
    }
}

/// An `io.max` write that the kernel refused, said in words: `ERANGE` and `EINVAL` are rates
/// below 2 (blk-throttle's `tg_set_limit` takes 2 and up, or `max`), `ENODEV` a device
/// number that is no whole disk; any other error as it was.
pub(crate) fn explain_io_max(cg: &Cgroup, line: &str, e: Error) -> Error {
    let why = match e {
        Error::Sys {
            errno: Errno::ERANGE | Errno::EINVAL,
            syscall: "write",
            ..
        } => "the kernel takes rates of 2 and more (bytes or operations per second), or max",
        Error::Sys {
            errno: Errno::ENODEV,
            syscall: "write",
            ..
        } => "no whole disk has that device number here (a partition's is refused too: give its disk)",
        e => return e,
    };
    Error::config(
        "io.max",
        format!("{line:?} was refused for {}: {why}", cg.path().display()),
    )
}

/// A `cpuset.cpus` or `cpuset.mems` write that the kernel refused with `EINVAL` (a CPU or
/// node the parent group does not have) or `ERANGE` (past the kernel's count), said as docker
/// says it, with what the parent has; any other error as it was.
pub(crate) fn explain_cpuset(cg: &Cgroup, file: &str, value: &str, e: Error) -> Error {
    let Error::Sys {
        errno: errno @ (Errno::EINVAL | Errno::ERANGE),
        syscall: "write",
        ..
    } = e
    else {
        return e;
    };
    let (what, effective) = if file == "cpuset.mems" {
        ("memory nodes", "cpuset.mems.effective")
    } else {
        ("CPUs", "cpuset.cpus.effective")
    };
    let mut reason = format!(
        "requested {what} {value} are not available ({file} of {}: {errno:?})",
        cg.path().display()
    );
    if let Some((parent, has)) = cg
        .parent()
        .ok()
        .flatten()
        .and_then(|p| p.read_file(effective).ok().map(|has| (p, has)))
    {
        reason += &format!(
            ": its parent {} has {} ({effective})",
            parent.path().display(),
            has.trim()
        );
    }
    Error::config("cpuset", reason)
}

/// The hugetlb controller of one cgroup (in cgroup v2 since Linux 5.6).
///
/// The kernel rounds limits down to whole huge pages.
///
/// ```no_run
/// use contain::cgroup::{Bytes, Cgroup, Max};
/// let cg = Cgroup::open("/sys/fs/cgroup/job")?;
/// let hugetlb = cg.hugetlb()?;
/// for size in hugetlb.sizes()? {
///     hugetlb.set_max(size, Max::Limit(Bytes(0)))?;
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Hugetlb<'a> {
    pub(super) cg: &'a Cgroup,
}

impl Hugetlb<'_> {
    /// The huge page sizes the kernel supports, from the `hugetlb.<size>.max` files present.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `readdir` (or `openat`) and the group's directory, when it cannot be
    /// listed (`EACCES`).
    pub fn sizes(&self) -> Result<Vec<HugePageSize>> {
        let mut sizes: Vec<HugePageSize> = self
            .cg
            .files()?
            .iter()
            .filter_map(|name| {
                name.to_str()?
                    .strip_prefix("hugetlb.")?
                    .strip_suffix(".max")?
                    .parse()
                    .ok()
            })
            .collect();
        sizes.sort_unstable();
        Ok(sizes)
    }
    /// `hugetlb.<size>.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `hugetlb.<size>.max` (the root cgroup, or a
    /// size the kernel does not support: see [`sizes`](Self::sizes)); otherwise those of
    /// [`Cgroup::write_file`].
    pub fn set_max(&self, size: HugePageSize, v: Max<Bytes>) -> Result<()> {
        self.cg.write_interface(&format!("hugetlb.{size}.max"), v)
    }
    /// `hugetlb.<size>.max`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `hugetlb.<size>.max` (the root cgroup, or a
    /// size the kernel does not support); otherwise those of [`Cgroup::read_file`], or
    /// [`Error::Parse`] naming the file when it does not hold `max` or a number of bytes.
    pub fn max(&self, size: HugePageSize) -> Result<Max<Bytes>> {
        self.cg.read_interface(&format!("hugetlb.{size}.max"))
    }
    /// `hugetlb.<size>.current`: huge pages in use, in bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `hugetlb.<size>.current` (the root cgroup, or a
    /// size the kernel does not support); otherwise those of [`Cgroup::read_file`], or
    /// [`Error::Parse`] naming the file when it does not hold a number of bytes.
    pub fn current(&self, size: HugePageSize) -> Result<Bytes> {
        self.cg.read_interface(&format!("hugetlb.{size}.current"))
    }
    /// `hugetlb.<size>.events`: allocations refused because of the limit.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the group has no `hugetlb.<size>.events` (the root cgroup, or a
    /// size the kernel does not support); otherwise those of [`Cgroup::read_file`], or
    /// [`Error::Parse`] naming the file when it does not hold `KEY VALUE` lines with `max`.
    pub fn events(&self, size: HugePageSize) -> Result<u64> {
        let ev: PidsEvents = self.cg.read_interface(&format!("hugetlb.{size}.events"))?;
        Ok(ev.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names() {
        for c in Controller::ALL {
            assert_eq!(c.name().parse::<Controller>().unwrap(), c);
        }
        assert!("blkio".parse::<Controller>().is_err());
        assert_eq!(Controller::Io.v1_name(), "blkio");
        assert_eq!(
            Controller::parse_list("cpuset cpu io memory hugetlb pids rdma misc perf_event\n"),
            vec![
                Controller::Cpuset,
                Controller::Cpu,
                Controller::Io,
                Controller::Memory,
                Controller::Hugetlb,
                Controller::Pids,
                Controller::Rdma,
                Controller::Misc
            ]
        );
    }

    #[test]
    fn io_weights() {
        let w: IoWeights = "default 100\n8:0 200\n".parse().unwrap();
        assert_eq!(w.default, Weight::DEFAULT);
        assert_eq!(
            w.devices,
            vec![(Device::new(8, 0), Weight::new(200).unwrap())]
        );
        assert!("default 0".parse::<IoWeights>().is_err());
        assert!("default".parse::<IoWeights>().is_err());
        assert!("sda 10".parse::<IoWeights>().is_err());
    }
}
