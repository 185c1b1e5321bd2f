//! `linux.resources` and `linux.cgroupsPath` (config-linux.md#control-groups) as the library's
//! cgroup v2 [`Resources`] and device rules.

use std::collections::BTreeMap;
use std::time::Duration;

use contain::cgroup::{
    CpuList, CpuMax, Device, DeviceAccess, DeviceKind, DeviceRule, HugePageSize, IoMax, Resources,
    UnifiedKey, Weight,
};
use contain::process::Container;
use contain::{Bytes, Max};
use oci_spec::runtime::{Linux, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{refuse, Warn};

/// cgroup v1 `cpu.shares` (2 to 262144, default 1024) as cgroup v2 `cpu.weight` (1 to
/// 10000, default 100): the linear map runc and crun 1.8 use
/// (`1 + (shares - 2) * 9999 / 262142`), so 2 is 1, 1024 is 39 and 262144 is 10000.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// A byte count of the spec (`-1` for no limit) as a limit; `None` for 0 (unset).
fn bytes(v: i64) -> Option<Max<Bytes>> {
    match v {
        0 => None,
        v if v < 0 => Some(Max::Unlimited),
        v => Some(Max::Limit(Bytes(v as u64))),
    }
}

/// `c` with a cgroup of its own carrying `linux.resources`, under `cgroupsPath`'s parent;
/// and the device allowlist for [`contain::security::Security::device_allowlist`].
///
/// - memory: `limit` → `memory.max`, `reservation` → `memory.low`, `swap` (memory + swap,
///   as cgroup v1's memsw) → `memory.swap.max` = swap − limit (runc's conversion);
///   `kernel`, `kernelTCP`, `swappiness`, `disableOOMKiller` (v1 only) are warned about.
/// - cpu: `shares` → `cpu.weight` ([`shares_to_weight`]), `quota`/`period` → `cpu.max`,
///   `cpus`/`mems` → cpuset; the realtime, `idle` and `burst` knobs are warned about.
/// - pids: `limit` → `pids.max` (negative: `max`; 0: not written, as runc does).
/// - blockIO: `weight` → `io.weight` (v1's 10 to 1000 scaled), throttles → `io.max` per
///   device; `leafWeight` and `weightDevice` are warned about.
/// - hugepageLimits → `hugetlb.<size>.max`.
/// - devices: the rules in order, starting from "all allowed": a deny of everything empties
///   the list, an allow adds its rule, a deny of one rule removes an equal allow (another
///   deny is warned about); when anything was denied, runc's default nodes are allowed too
///   (the library's [`DeviceRule::default_allowlist`]). `None`: no filter.
/// - `unified`: each file written as given, after the others (`Resources::unified`; keys
///   in name order, checked by `UnifiedKey`).
/// - `network`, `rdma`: warned about.
///
/// `cgroupsPath` (config-linux.md#cgroups-path): the container's group is made at exactly
/// that path ([`Container::cgroup_path`]): absolute below the cgroup v2 mount, relative below
/// the parent of the runtime's own cgroup (as runc's cgroup v2 driver); missing parents are
/// made (and removed again by `delete`), an existing group that holds processes is refused.
/// Without it, the library's default place.
///
/// # Errors
///
/// [`contain::Error::Config`] for a value the library refuses (a weight out of range, a
/// swap below the memory limit, an unparsable `cpus`, `mems` or page size).
pub(crate) fn apply(
    linux: &Linux,
    mut c: Container,
    warn: &mut Warn,
) -> contain::Result<(Container, Option<Vec<DeviceRule>>)> {
    let empty = LinuxResources::default();
    let r = linux.resources().as_ref().unwrap_or(&empty);
    let res = limits(r, warn)?;
    let devices = device_rules(r.devices().as_deref().unwrap_or(&[]), warn);

    c = c.resources(res);

    if let Some(path) = linux.cgroups_path() {
        c = c.cgroup_path(path);
    }
    Ok((c, devices))
}

/// The cgroup v2 limits of `r` (see [`apply`]).
///
/// # Errors
///
/// As [`apply`].
pub(crate) fn limits(r: &LinuxResources, warn: &mut Warn) -> contain::Result<Resources> {
    let mut res = Resources::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().and_then(bytes);
        if let Some(l) = limit {
            res = res.memory_max(l);
        }
        if let Some(l) = m.reservation().and_then(bytes) {
            res = res.memory_low(l);
        }
        match (m.swap().and_then(bytes), limit) {
            (None, _) => {}
            (Some(Max::Unlimited), _) => res = res.memory_swap_max(Max::Unlimited),
            (Some(Max::Limit(swap)), Some(Max::Limit(mem))) if swap.0 >= mem.0 => {
                res = res.memory_swap_max(Bytes(swap.0 - mem.0));
            }
            (Some(Max::Limit(swap)), Some(Max::Limit(mem))) => {
                return Err(refuse(
                    "linux.resources.memory",
                    format!(
                        "swap {} (memory plus swap) is below limit {}",
                        swap.0, mem.0
                    ),
                ))
            }
            (Some(Max::Limit(_)), _) => {
                return Err(refuse(
                    "linux.resources.memory",
                    "swap (memory plus swap) needs a memory limit",
                ))
            }
        }
        for (set, name) in [
            (m.kernel().is_some(), "kernel"),
            (m.kernel_tcp().is_some(), "kernelTCP"),
            (m.swappiness().is_some(), "swappiness"),
            (m.disable_oom_killer().is_some(), "disableOOMKiller"),
            (m.use_hierarchy().is_some(), "useHierarchy"),
        ] {
            if set {
                warn.say(format!(
                    "linux.resources.memory.{name}: not applied (no cgroup v2 equivalent)"
                ));
            }
        }
    }

    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            res = res.cpu_weight(Weight::new(shares_to_weight(shares))?);
        }
        let period = cpu.period().filter(|p| *p > 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        if quota.is_some() || period.is_some() {
            let period = Duration::from_micros(period.unwrap_or(100_000));
            let quota = match quota {
                Some(q) if q > 0 => Max::Limit(Duration::from_micros(q as u64)),
                _ => Max::Unlimited,
            };
            res = res.cpu_max(CpuMax::new(quota, period)?);
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            res = res.cpuset_cpus(cpus.parse::<CpuList>()?);
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            res = res.cpuset_mems(mems.parse::<CpuList>()?);
        }
        for (set, name) in [
            (cpu.realtime_runtime().is_some(), "realtimeRuntime"),
            (cpu.realtime_period().is_some(), "realtimePeriod"),
            (cpu.idle().is_some(), "idle"),
            (cpu.burst().is_some(), "burst"),
        ] {
            if set {
                warn.say(format!("linux.resources.cpu.{name}: not applied"));
            }
        }
    }

    // runc's meaning: 0 sets nothing (podman writes `{"limit": 0}` for `--pids-limit 0` and
    // `-1`, so such a container needs no pids controller), a negative limit is "max".
    if let Some(pids) = r.pids() {
        match pids.limit() {
            0 => {}
            n if n > 0 => res = res.pids_max(Max::Limit(n as u64)),
            _ => res = res.pids_max(Max::Unlimited),
        }
    }

    if let Some(io) = r.block_io() {
        if let Some(w) = io.weight().filter(|w| *w > 0) {
            res = res.io_weight(Weight::from_blkio_weight(u64::from(w))?);
        }
        if io.leaf_weight().is_some() {
            warn.say("linux.resources.blockIO.leafWeight: not applied (cgroup v1 only)");
        }
        if io.weight_device().as_ref().is_some_and(|d| !d.is_empty()) {
            warn.say("linux.resources.blockIO.weightDevice: not applied");
        }
        let mut per_device: BTreeMap<(i64, i64), IoMax> = BTreeMap::new();
        let lists = [
            (io.throttle_read_bps_device(), 0),
            (io.throttle_write_bps_device(), 1),
            (io.throttle_read_iops_device(), 2),
            (io.throttle_write_iops_device(), 3),
        ];
        for (list, which) in lists {
            for t in list.as_deref().unwrap_or(&[]) {
                let (major, minor) = (t.major(), t.minor());
                let dev = Device::new(
                    u32::try_from(major).map_err(|_| bad_device(major, minor))?,
                    u32::try_from(minor).map_err(|_| bad_device(major, minor))?,
                );
                let entry = per_device
                    .remove(&(major, minor))
                    .unwrap_or_else(|| IoMax::new(dev));
                let rate = t.rate();
                let entry = match which {
                    0 => entry.rbps(Bytes(rate)),
                    1 => entry.wbps(Bytes(rate)),
                    2 => entry.riops(rate),
                    _ => entry.wiops(rate),
                };
                per_device.insert((major, minor), entry);
            }
        }
        for (_, entry) in per_device {
            res = res.io_max(entry);
        }
    }

    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        let size: HugePageSize = h.page_size().parse()?;
        res = res.hugetlb_max(
            size,
            if h.limit() < 0 {
                Max::Unlimited
            } else {
                Max::Limit(Bytes(h.limit() as u64))
            },
        );
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let key: UnifiedKey = k
                .parse()
                .map_err(|e| refuse("linux.resources.unified", format!("{e}")))?;
            res = res.unified(key, v.as_str());
        }
    }
    if r.network().is_some() {
        warn.say("linux.resources.network: not applied (net_cls/net_prio are cgroup v1 only)");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        warn.say("linux.resources.rdma: not applied");
    }

    Ok(res)
}

/// A refusal of a throttle device number that is negative or too large.
fn bad_device(major: i64, minor: i64) -> contain::Error {
    refuse(
        "linux.resources.blockIO",
        format!("device {major}:{minor} is not a device number"),
    )
}

/// The allowlist `rules` leave (see [`apply`]); `None` when nothing is denied.
pub(crate) fn device_rules(
    rules: &[LinuxDeviceCgroup],
    warn: &mut Warn,
) -> Option<Vec<DeviceRule>> {
    let mut list: Option<Vec<DeviceRule>> = None;
    for r in rules {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::Any,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::P => {
                warn.say("linux.resources.devices: a rule of type p (fifo) is not a device rule: ignored");
                continue;
            }
        };
        let access =
            r.access()
                .as_deref()
                .unwrap_or("rwm")
                .chars()
                .fold(DeviceAccess::empty(), |a, ch| match ch {
                    'r' => a | DeviceAccess::READ,
                    'w' => a | DeviceAccess::WRITE,
                    'm' => a | DeviceAccess::MKNOD,
                    _ => a,
                });
        let num = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        let rule = DeviceRule {
            kind,
            major: num(r.major()),
            minor: num(r.minor()),
            access,
        };
        let everything = kind == DeviceKind::Any && rule.major.is_none() && rule.minor.is_none();
        match (r.allow(), everything) {
            (false, true) => list = Some(Vec::new()),
            (true, true) if access == DeviceAccess::all() => list = None,
            (true, _) => {
                if let Some(l) = list.as_mut() {
                    l.push(rule);
                }
            }
            (false, false) => match list.as_mut() {
                Some(l) if l.contains(&rule) => l.retain(|x| *x != rule),
                Some(_) => {}
                None => warn.say(format!(
                    "linux.resources.devices: deny {kind:?} {:?}:{:?} {} after allowing all: \
                     not applied (the filter is an allowlist)",
                    r.major(),
                    r.minor(),
                    r.access().as_deref().unwrap_or("rwm")
                )),
            },
        }
    }
    list.map(|mut l| {
        for d in DeviceRule::default_allowlist() {
            if !l.contains(&d) {
                l.push(d);
            }
        }
        l
    })
}
