//! cgroup v2: discovery, groups on directory descriptors, typed controllers, lifecycle.
//!
//! - [`HostCgroups`] says what the host offers ([`Hierarchy`]: pure v2, hybrid, v1 only, none)
//!   from `/proc/self/mountinfo`, `/proc/self/cgroup` and `/proc/cgroups`. cgroup v1 is never
//!   used: on hybrid and v1 hosts, asking for a controller that cgroup v2 lacks gives
//!   [`Error::Unsupported`](crate::Error::Unsupported) saying where it is bound instead, e.g.
//!   "memory controller is not supported here: memory is bound to the cgroup v1 hierarchy at
//!   /sys/fs/cgroup/memory; cgroup v2 at /sys/fs/cgroup/unified offers only hugetlb. To fix:
//!   ... boot with `systemd.unified_cgroup_hierarchy=1` ...". Every missing controller is
//!   named in the one error ([`HostCgroups::check_all`]), each with its remedy.
//! - Best effort: [`LimitPolicy::BestEffort`] (on
//!   [`Container::limit_policy`](crate::process::Container::limit_policy)) applies the limits
//!   the host supports and lists the rest as [`SkippedLimit`]s, each with its error, instead
//!   of refusing the container; [`Cgroup::apply_best_effort`] does the same on a group.
//! - [`Cgroup`] is an open directory descriptor; every interface file is reached with
//!   `openat` on it, and its fd is what `clone3(CLONE_INTO_CGROUP)` takes.
//! - [`CgroupBuilder`] creates a group, enabling the controllers it needs in the parents'
//!   `cgroup.subtree_control`, and returns an [`OwnedCgroup`].
//! - Ownership: a group this process created is an [`OwnedCgroup`], removed when dropped
//!   (its processes killed, then its subtree removed depth-first), unless
//!   [`keep`](OwnedCgroup::keep) turns it into a plain [`Cgroup`]. A [`Cgroup`] that was
//!   opened is never removed by this crate except by an explicit
//!   [`remove_child`](Cgroup::remove_child) on its parent.
//! - Controllers are typed views ([`Memory`], [`Cpu`], [`Pids`], [`Io`], [`Cpuset`],
//!   [`Hugetlb`]) whose values cannot be wrong: [`Max`], [`Bytes`], [`Weight`], [`CpuMax`],
//!   [`CpuList`], [`IoMax`]. The file formats are parsed by pure functions in [`parse`].
//! - Lifecycle: [`Cgroup::freeze`], [`Cgroup::thaw`], [`Cgroup::kill`],
//!   [`Cgroup::wait_empty`] wait on `cgroup.events` with `poll(POLLPRI)`, with a timeout.
//! - Placement ([`place`]): where a group that needs controllers can go when the caller's
//!   own cgroup holds processes (as it does in a container, a CI job or a service):
//!   [`CgroupBuilder::create_in_default`] and containers' groups use `<mount>/contain`
//!   ([`PARENT`]). [`cleanup`] removes the groups that runs killed with SIGKILL left behind
//!   (checked by pid and start time; never a live or populated one).
//!
//! ```no_run
//! use std::time::Duration;
//! use contain::cgroup::{Bytes, Cgroup, CgroupBuilder, Resources};
//!
//! let limits = Resources::new().memory_max(Bytes::mib(64));
//! let job = CgroupBuilder::new("job-42").resources(limits).create_in_default()?;
//! let child = std::process::Command::new("sleep").arg("60").spawn().expect("spawn");
//! job.add_process(contain::Pid::from_raw(child.id() as i32).expect("a pid"))?;
//! println!("{:?}", job.usage()?);
//! job.kill()?;
//! job.remove(Duration::from_secs(5))?;
//! # Ok::<(), contain::Error>(())
//! ```

mod blockdev;
mod controllers;
mod devices;
mod discover;
mod group;
pub mod parse;
pub mod place;
mod resources;
mod value;

pub use controllers::{Controller, Cpu, Cpuset, Hugetlb, Io, IoWeights, Memory, Pids};
pub use devices::{attach_device_filter, DeviceAccess, DeviceKind, DeviceRule};
pub(crate) use discover::without_best_effort_hint;
pub use discover::{Hierarchy, HostCgroups, KernelController, V1Mount, V2Mount};
pub use group::{Cgroup, IoUsage, OwnedCgroup, Usage, DROP_TIMEOUT};
pub use parse::{CgroupEvents, CpuStat, IoStat, MemoryEvents, MemoryStat, PidsEvents};
pub use place::{cleanup, cleanup_in, Cleanup, PARENT};
pub use resources::{CgroupBuilder, LimitPolicy, Resources, SkippedLimit, UnifiedKey};
pub use value::{Bytes, CpuList, CpuMax, Device, HugePageSize, IoMax, Max, Weight};
