//! Pure parsers for cgroup v2 interface files.
//!
//! The kernel uses two layouts (Documentation/admin-guide/cgroup-v2.rst, "Interface Files"):
//! *flat keyed* (`KEY VALUE` per line: `memory.stat`, `memory.events`, `cpu.stat`,
//! `cgroup.events`) and *nested keyed* (`KEY SUB=VALUE ...` per line: `io.stat`, `io.max`).
//! [`flat_keyed`] and [`nested_keyed`] parse those layouts; the typed structs here build on
//! them. None of these functions touches the filesystem, and none panics on any input: bad
//! input is an [`Error::Parse`] naming the line.

use std::str::FromStr;
use std::time::Duration;

use super::value::{parse_u64, Bytes, Device, IoMax, Max};
use crate::{Error, Result};

/// Parses a flat-keyed file: one `KEY VALUE` line per entry, `VALUE` an unsigned integer.
/// Blank lines are skipped; entries come back in file order.
///
/// ```
/// let entries = contain::cgroup::parse::flat_keyed("anon 4096\nfile 0\n")?;
/// assert_eq!(entries, vec![("anon", 4096), ("file", 0)]);
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Parse`] naming the line when it is not two words or `VALUE` is not an unsigned integer.
pub fn flat_keyed(text: &str) -> Result<Vec<(&str, u64)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => continue,
            (Some(key), Some(value), None) => match parse_u64(value) {
                Some(v) => out.push((key, v)),
                None => {
                    return Err(bad_line(
                        "flat-keyed file",
                        n,
                        line,
                        "value is not an unsigned number",
                    ))
                }
            },
            _ => {
                return Err(bad_line(
                    "flat-keyed file",
                    n,
                    line,
                    "expected \"KEY VALUE\"",
                ))
            }
        }
    }
    Ok(out)
}

/// One line of a nested-keyed file: `KEY SUB=VALUE SUB=VALUE ...`.
///
/// ```
/// use contain::cgroup::parse::{nested_keyed, NestedLine};
/// let lines = nested_keyed("8:0 rbps=max wbps=1048576\n")?;
/// assert_eq!(lines, vec![NestedLine { key: "8:0", fields: vec![("rbps", "max"), ("wbps", "1048576")] }]);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedLine<'a> {
    /// The line's key, e.g. a device number `8:0`.
    pub key: &'a str,
    /// The `SUB=VALUE` pairs, in order; values are kept as text (they may be `max`).
    pub fields: Vec<(&'a str, &'a str)>,
}

impl<'a> NestedLine<'a> {
    /// The value of sub-key `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// Parses a nested-keyed file: one `KEY SUB=VALUE ...` line per entry. Blank lines are skipped.
///
/// ```
/// use contain::cgroup::parse::nested_keyed;
/// let lines = nested_keyed("8:0 rbytes=90 wbytes=0\n")?;
/// assert_eq!(lines[0].key, "8:0");
/// assert_eq!(lines[0].get("rbytes"), Some("90"));
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Parse`] naming the line when its first word has a `=` or a later word is not
/// `SUB=VALUE` with both sides non-empty.
pub fn nested_keyed(text: &str) -> Result<Vec<NestedLine<'_>>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        let Some(key) = words.next() else { continue };
        if key.contains('=') {
            return Err(bad_line(
                "nested-keyed file",
                n,
                line,
                "the line starts with SUB=VALUE, not a key",
            ));
        }
        let mut fields = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => fields.push((k, v)),
                _ => {
                    return Err(bad_line(
                        "nested-keyed file",
                        n,
                        line,
                        &format!("{word:?} is not SUB=VALUE"),
                    ))
                }
            }
        }
        out.push(NestedLine { key, fields });
    }
    Ok(out)
}

fn bad_line(what: &str, n: usize, line: &str, why: &str) -> Error {
    let shown: String = line.chars().take(120).collect();
    Error::parse(what, format!("line {}: {shown:?}: {why}", n + 1))
}

fn field_u64(what: &str, line: &NestedLine<'_>, name: &str) -> Result<u64> {
    match line.get(name) {
        None => Ok(0),
        Some(v) => parse_u64(v).ok_or_else(|| {
            Error::parse(what, format!("{} {name}={v:?} is not a number", line.key))
        }),
    }
}

/// Per-device I/O statistics, one line of `io.stat`.
///
/// ```
/// use contain::cgroup::{parse, Device};
/// let stat = &parse::io_stat("259:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n")?[0];
/// assert_eq!((stat.device, stat.wbytes, stat.wios), (Device::new(259, 0), 1024, 2));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    /// The device.
    pub device: Device,
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

/// Parses `io.stat`: one [`IoStat`] per device; counters the kernel leaves out are 0 and
/// unknown counters are ignored.
///
/// ```
/// let stats = contain::cgroup::parse::io_stat("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")?;
/// assert_eq!(stats[0].rbytes, 4096);
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Parse`] when a line's key is not `MAJOR:MINOR`, a counter is not an unsigned integer,
/// or a line is malformed (see [`nested_keyed`]).
pub fn io_stat(text: &str) -> Result<Vec<IoStat>> {
    nested_keyed(text)?
        .iter()
        .map(|l| {
            let w = "io.stat";
            Ok(IoStat {
                device: l.key.parse()?,
                rbytes: field_u64(w, l, "rbytes")?,
                wbytes: field_u64(w, l, "wbytes")?,
                rios: field_u64(w, l, "rios")?,
                wios: field_u64(w, l, "wios")?,
                dbytes: field_u64(w, l, "dbytes")?,
                dios: field_u64(w, l, "dios")?,
            })
        })
        .collect()
}

/// Parses `io.max`: one [`IoMax`] per device; limits left out are `max`.
///
/// ```
/// use contain::cgroup::{parse, Max};
/// let limits = parse::io_max("8:16 rbps=2097152 wbps=max riops=max wiops=120\n")?;
/// assert_eq!(limits[0].wiops, Max::Limit(120));
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Parse`] when a line's key is not `MAJOR:MINOR`, a limit is neither `max` nor an
/// unsigned integer, or a line is malformed (see [`nested_keyed`]).
pub fn io_max(text: &str) -> Result<Vec<IoMax>> {
    nested_keyed(text)?
        .iter()
        .map(|l| {
            let mut m = IoMax::new(l.key.parse()?);
            for &(k, v) in &l.fields {
                let v = v
                    .parse::<Max<u64>>()
                    .map_err(|e| Error::parse("io.max", format!("{} {k}: {e}", l.key)))?;
                let bytes = |v: Max<u64>| match v {
                    Max::Limit(n) => Max::Limit(Bytes(n)),
                    Max::Unlimited => Max::Unlimited,
                };
                match k {
                    "rbps" => m.rbps = bytes(v),
                    "wbps" => m.wbps = bytes(v),
                    "riops" => m.riops = v,
                    "wiops" => m.wiops = v,
                    _ => {
                        return Err(Error::parse(
                            "io.max",
                            format!("{}: unknown key {k:?}", l.key),
                        ))
                    }
                }
            }
            Ok(m)
        })
        .collect()
}

/// Looks up `key` in flat-keyed entries.
fn lookup(entries: &[(&str, u64)], key: &str) -> Option<u64> {
    entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn require(what: &str, entries: &[(&str, u64)], key: &str) -> Result<u64> {
    lookup(entries, key).ok_or_else(|| Error::parse(what, format!("no {key:?} entry")))
}

/// `cgroup.events`: whether the subtree has live processes, and whether it is frozen.
///
/// ```
/// let ev: contain::cgroup::CgroupEvents = "populated 1\nfrozen 0\n".parse()?;
/// assert!(ev.populated && !ev.frozen);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupEvents {
    /// Some process lives in this cgroup or below.
    pub populated: bool,
    /// The cgroup is frozen (always false on kernels without the v2 freezer).
    pub frozen: bool,
}

impl FromStr for CgroupEvents {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let e = flat_keyed(s)?;
        Ok(CgroupEvents {
            populated: require("cgroup.events", &e, "populated")? != 0,
            frozen: lookup(&e, "frozen").unwrap_or(0) != 0,
        })
    }
}

/// `memory.events`: how often the group hit each boundary. Counters the kernel does not have
/// are 0.
///
/// ```
/// let ev: contain::cgroup::MemoryEvents = "low 0\nhigh 0\nmax 35\noom 1\noom_kill 1\n".parse()?;
/// assert_eq!(ev.oom_kill, 1);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEvents {
    /// Reclaimed below `memory.low` under pressure.
    pub low: u64,
    /// Throttled for going over `memory.high`.
    pub high: u64,
    /// Usage was about to go over `memory.max`.
    pub max: u64,
    /// The OOM killer was invoked.
    pub oom: u64,
    /// Processes killed by the OOM killer.
    pub oom_kill: u64,
    /// Whole-group OOM kills (`memory.oom.group`).
    pub oom_group_kill: u64,
}

impl FromStr for MemoryEvents {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let e = flat_keyed(s)?;
        let get = |k| lookup(&e, k).unwrap_or(0);
        Ok(MemoryEvents {
            low: get("low"),
            high: get("high"),
            max: get("max"),
            oom: get("oom"),
            oom_kill: get("oom_kill"),
            oom_group_kill: get("oom_group_kill"),
        })
    }
}

/// `memory.stat`: every counter the kernel reports, in file order (the set of keys varies
/// between kernel versions, so they are looked up by name).
///
/// Sizes (`anon`, `file`, `kernel`, `sock`, `shmem`, ...) are in bytes; event counters
/// (`pgfault`, `pgmajfault`, `oom_kill`, ...) are counts (cgroup-v2.rst, "memory.stat").
///
/// ```
/// let stat: contain::cgroup::MemoryStat = "anon 8192\nfile 4096\n".parse()?;
/// assert_eq!(stat.get("anon"), Some(8192));
/// assert_eq!(stat.get("nonsense"), None);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryStat {
    entries: Vec<(String, u64)>,
}

impl MemoryStat {
    /// The counter `key` (e.g. `anon`, `file`, `kernel`, `sock`, `pgfault`).
    pub fn get(&self, key: &str) -> Option<u64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// All counters in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

impl FromStr for MemoryStat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(MemoryStat {
            entries: flat_keyed(s)?
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
    }
}

/// `cpu.stat`: CPU time used, and throttling when the cpu controller is enabled.
///
/// The usage counters exist in every cgroup (they are core, not part of the cpu controller);
/// the throttling counters only where the cpu controller is enabled.
///
/// ```
/// let stat: contain::cgroup::CpuStat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n".parse()?;
/// assert_eq!(stat.usage().as_micros(), 1500);
/// assert_eq!(stat.nr_throttled, None);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStat {
    /// Total CPU time in µs.
    pub usage_usec: u64,
    /// User CPU time in µs.
    pub user_usec: u64,
    /// System CPU time in µs.
    pub system_usec: u64,
    /// Enforcement periods that have elapsed (cpu controller only).
    pub nr_periods: Option<u64>,
    /// Periods in which the group was throttled (cpu controller only).
    pub nr_throttled: Option<u64>,
    /// Total time throttled in µs (cpu controller only).
    pub throttled_usec: Option<u64>,
}

impl CpuStat {
    /// Total CPU time.
    pub fn usage(&self) -> Duration {
        Duration::from_micros(self.usage_usec)
    }
    /// User CPU time.
    pub fn user(&self) -> Duration {
        Duration::from_micros(self.user_usec)
    }
    /// System CPU time.
    pub fn system(&self) -> Duration {
        Duration::from_micros(self.system_usec)
    }
}

impl FromStr for CpuStat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let e = flat_keyed(s)?;
        Ok(CpuStat {
            usage_usec: require("cpu.stat", &e, "usage_usec")?,
            user_usec: require("cpu.stat", &e, "user_usec")?,
            system_usec: require("cpu.stat", &e, "system_usec")?,
            nr_periods: lookup(&e, "nr_periods"),
            nr_throttled: lookup(&e, "nr_throttled"),
            throttled_usec: lookup(&e, "throttled_usec"),
        })
    }
}

/// `pids.events`: how often a fork failed because of `pids.max`.
///
/// ```
/// let ev: contain::cgroup::PidsEvents = "max 3\n".parse()?;
/// assert_eq!(ev.max, 3);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidsEvents {
    /// Forks refused because the group was at `pids.max`.
    pub max: u64,
}

impl FromStr for PidsEvents {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(PidsEvents {
            max: lookup(&flat_keyed(s)?, "max").unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flat_keyed_files() {
        let text = "anon 1\nfile 2\n\nkernel_stack 3";
        assert_eq!(
            flat_keyed(text).unwrap(),
            vec![("anon", 1), ("file", 2), ("kernel_stack", 3)]
        );
        assert_eq!(flat_keyed("").unwrap(), vec![]);
        for bad in [
            "anon",
            "anon -1",
            "anon 1 2",
            "anon x",
            "anon 18446744073709551616",
        ] {
            let e = flat_keyed(bad).unwrap_err();
            assert!(matches!(e, Error::Parse { .. }), "{bad:?}: {e}");
        }
        let e = flat_keyed("a 1\nb\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn nested_keyed_files() {
        let text = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n8:0\n";
        let lines = nested_keyed(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].key, "8:16");
        assert_eq!(lines[0].get("wios"), Some("353"));
        assert!(lines[1].fields.is_empty());
        for bad in ["rbps=1", "8:0 rbps", "8:0 =1", "8:0 rbps="] {
            assert!(nested_keyed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn io_files() {
        let stats = io_stat(
            "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0 new=5\n",
        )
        .unwrap();
        assert_eq!(
            stats,
            vec![IoStat {
                device: Device::new(8, 16),
                rbytes: 1459200,
                wbytes: 314773504,
                rios: 192,
                wios: 353,
                dbytes: 0,
                dios: 0
            }]
        );
        assert!(io_stat("8:16 rbytes=max").is_err());
        assert!(io_stat("sda rbytes=1").is_err());
        let max = io_max("8:16 rbps=2097152 wbps=max riops=max wiops=120\n8:0 rbps=1\n").unwrap();
        assert_eq!(max[0].rbps, Max::Limit(Bytes(2097152)));
        assert_eq!(max[0].wbps, Max::Unlimited);
        assert_eq!(max[1].wiops, Max::Unlimited);
        assert!(io_max("8:0 bogus=1").is_err());
        assert!(io_max("8:0 rbps=-1").is_err());
    }

    #[test]
    fn typed_flat_files() {
        let ev: CgroupEvents = "populated 0\nfrozen 1\n".parse().unwrap();
        assert_eq!(
            ev,
            CgroupEvents {
                populated: false,
                frozen: true
            }
        );
        assert!("frozen 1".parse::<CgroupEvents>().is_err());
        let me: MemoryEvents =
            "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\nsock_throttled 7\n"
                .parse()
                .unwrap();
        assert_eq!(
            me,
            MemoryEvents {
                low: 1,
                high: 2,
                max: 3,
                oom: 4,
                oom_kill: 5,
                oom_group_kill: 6
            }
        );
        let cs: CpuStat = "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 7\nnr_throttled 2\nthrottled_usec 99\n"
            .parse()
            .unwrap();
        assert_eq!(
            (cs.nr_periods, cs.nr_throttled, cs.throttled_usec),
            (Some(7), Some(2), Some(99))
        );
        assert_eq!(cs.user() + cs.system(), cs.usage());
        assert!("user_usec 6\nsystem_usec 4".parse::<CpuStat>().is_err());
        let ms: MemoryStat = "anon 1\nfile 2\n".parse().unwrap();
        assert_eq!(
            ms.iter().collect::<Vec<_>>(),
            vec![("anon", 1), ("file", 2)]
        );
        assert_eq!("max 0\n".parse::<PidsEvents>().unwrap().max, 0);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = flat_keyed(&s);
            let _ = nested_keyed(&s);
            let _ = io_stat(&s);
            let _ = io_max(&s);
            let _ = s.parse::<CgroupEvents>();
            let _ = s.parse::<MemoryEvents>();
            let _ = s.parse::<MemoryStat>();
            let _ = s.parse::<CpuStat>();
            let _ = s.parse::<PidsEvents>();
        }

        #[test]
        fn shaped_inputs_never_panic(s in "([a-z0-9:_]{0,6}( |=|\n)?[0-9a-z=]{0,8}[ \n]?){0,8}") {
            let _ = flat_keyed(&s);
            let _ = io_stat(&s);
            let _ = io_max(&s);
            let _ = s.parse::<CpuStat>();
        }

        #[test]
        fn flat_keyed_round_trips(entries in proptest::collection::vec(("[a-z_]{1,12}", any::<u64>()), 0..20)) {
            let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            let parsed = flat_keyed(&text).unwrap();
            let expected: Vec<(&str, u64)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn io_stat_round_trips(v in proptest::collection::vec((any::<u32>(), any::<u32>(), any::<[u64; 6]>()), 0..8)) {
            let stats: Vec<IoStat> = v.iter().map(|&(maj, min, c)| IoStat {
                device: Device::new(maj, min), rbytes: c[0], wbytes: c[1], rios: c[2], wios: c[3], dbytes: c[4], dios: c[5],
            }).collect();
            let text: String = stats.iter().map(|s| format!(
                "{} rbytes={} wbytes={} rios={} wios={} dbytes={} dios={}\n",
                s.device, s.rbytes, s.wbytes, s.rios, s.wios, s.dbytes, s.dios)).collect();
            prop_assert_eq!(io_stat(&text).unwrap(), stats);
        }
    }
}
