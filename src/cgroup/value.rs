//! Value types for cgroup interface files.
//!
//! Each type holds only values the kernel accepts, formats itself the way the kernel reads it
//! (`Display`) and parses what the kernel writes (`FromStr`), so `x.to_string().parse() == x`.
//! Parsing never panics, whatever the input.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// A limit that is either a value or `max` (no limit), as in `memory.max` or `pids.max`.
///
/// ```
/// use contain::cgroup::{Bytes, Max};
/// let limit: Max<Bytes> = "64M".parse()?;
/// assert_eq!(limit, Max::Limit(Bytes::mib(64)));
/// assert_eq!(Max::<u64>::Unlimited.to_string(), "max");
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Max<T> {
    /// At most this much.
    Limit(T),
    /// No limit (`max`).
    Unlimited,
}

impl<T> Max<T> {
    /// The limit, or `None` for `max`.
    pub fn limit(self) -> Option<T> {
        match self {
            Max::Limit(v) => Some(v),
            Max::Unlimited => None,
        }
    }

    /// Whether this is `max`.
    pub fn is_unlimited(&self) -> bool {
        matches!(self, Max::Unlimited)
    }
}

impl<T> From<T> for Max<T> {
    fn from(v: T) -> Self {
        Max::Limit(v)
    }
}

impl<T: fmt::Display> fmt::Display for Max<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Max::Limit(v) => v.fmt(f),
            Max::Unlimited => f.write_str("max"),
        }
    }
}

impl<T> FromStr for Max<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "max" {
            return Ok(Max::Unlimited);
        }
        s.parse::<T>()
            .map(Max::Limit)
            .map_err(|e| Error::parse("limit", format!("{s:?}: {e}")))
    }
}

/// A size in bytes: every size the crate takes (memory limits, [`Rootfs::size`],
/// [`Rootfs::shm_size`], [`Mount::size`]) is one, so `Bytes::mib(64)` reads the same
/// everywhere. Also re-exported as `contain::Bytes`.
///
/// [`Display`](fmt::Display) writes the plain number of bytes, as the kernel reads and writes
/// it in cgroup files; [`human`](Self::human) is for people.
///
/// # Parsing
/// [`FromStr`] takes both forms users meet, with units in powers of 1024:
/// - the kernel's (`memory.max`, `memparse`): a plain number of bytes, or digits with a
///   suffix `K`, `M`, `G`, `T` or `P`, either case (`512K`, `64M`);
/// - docker's (`--memory`, `--shm-size`, `--tmpfs size=`, its `units.RAMInBytes`): a decimal
///   number that may have a fraction (`1.5g`), then, optionally after blanks, a unit `k`, `m`,
///   `g`, `t` or `p` with an optional `i` and `b` (`64mb`, `64 MiB`), or a bare `b` for bytes.
///   As with docker, `kb`, `KiB` and `k` all mean 1024 bytes (never 1000). docker computes
///   the fraction in floating point and truncates; here it is computed exactly and rounded
///   down to whole bytes, so `1.5k` is 1536 in both. docker's pattern also lets an `i`
///   stand without a unit (`5i`, `5ib`: 5 bytes); that is refused here as a likely typo.
///
/// Anything else (a sign, `.5m`, `1.2.3`, `1x`, an empty string) and sizes above `u64::MAX`
/// are refused with [`Error::Parse`] saying what is wanted; parsing never panics.
///
/// The kernel rounds memory limits down to whole pages, so a value read back may be smaller
/// than the one written.
///
/// ```
/// use contain::Bytes;
/// assert_eq!("512K".parse::<Bytes>()?, Bytes::kib(512));
/// assert_eq!("1.5g".parse::<Bytes>()?, Bytes::mib(1536));
/// assert_eq!("64 MiB".parse::<Bytes>()?, Bytes::mib(64));
/// assert!("-1".parse::<Bytes>().is_err());
/// assert_eq!(Bytes::gib(1).as_u64(), 1 << 30);
/// assert_eq!(Bytes::mib(2).to_string(), "2097152");
/// # Ok::<(), contain::Error>(())
/// ```
///
/// [`Rootfs::size`]: crate::rootfs::Rootfs::size
/// [`Rootfs::shm_size`]: crate::rootfs::Rootfs::shm_size
/// [`Mount::size`]: crate::mount::Mount::size
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

impl Bytes {
    /// `n` bytes.
    pub const fn new(n: u64) -> Self {
        Bytes(n)
    }
    /// `n` KiB (saturating at `u64::MAX`).
    pub const fn kib(n: u64) -> Self {
        Bytes(n.saturating_mul(1 << 10))
    }
    /// `n` MiB (saturating at `u64::MAX`).
    pub const fn mib(n: u64) -> Self {
        Bytes(n.saturating_mul(1 << 20))
    }
    /// `n` GiB (saturating at `u64::MAX`).
    pub const fn gib(n: u64) -> Self {
        Bytes(n.saturating_mul(1 << 30))
    }
    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// For people (error messages, reports): the largest of T, G, M and K that divides the
    /// size exactly, as [`FromStr`] takes it back (`512M`, `1536K`), else the plain number of
    /// bytes (`1000`). [`Display`](fmt::Display) stays the kernel's plain number, as the
    /// cgroup files take it.
    ///
    /// ```
    /// use contain::cgroup::Bytes;
    /// assert_eq!(Bytes::mib(512).human().to_string(), "512M");
    /// assert_eq!(Bytes::kib(1536).human().to_string(), "1536K");
    /// assert_eq!(Bytes(1000).human().to_string(), "1000");
    /// assert_eq!("512M".parse::<Bytes>()?, Bytes::mib(512));
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn human(self) -> impl fmt::Display {
        HumanBytes(self.0)
    }
}

/// [`Bytes::human`]'s form.
struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
            if n != 0 && n % (1u64 << shift) == 0 {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

impl From<u64> for Bytes {
    fn from(n: u64) -> Self {
        Bytes(n)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Bytes {
    type Err = Error;

    /// See [Parsing](Bytes#parsing).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        match parse_size(t) {
            Ok(n) => Ok(Bytes(n)),
            Err(TooLarge(true)) => Err(Error::parse(
                "byte size",
                format!(
                    "{t:?} is too large: at most {} bytes (16 EiB - 1)",
                    u64::MAX
                ),
            )),
            Err(TooLarge(false)) => Err(Error::parse(
                "byte size",
                format!(
                    "{t:?} is not a size: want a number with an optional unit k, m, g, t or p \
                     (powers of 1024, e.g. 64m, 1.5g, 512KiB)"
                ),
            )),
        }
    }
}

/// Why [`parse_size`] refused: `true` for a well-formed size above `u64::MAX`.
struct TooLarge(bool);

/// The one size parser, behind [`Bytes`]'s `FromStr` (the kernel's and docker's syntax);
/// `t` is trimmed.
fn parse_size(t: &str) -> std::result::Result<u64, TooLarge> {
    let syntax = TooLarge(false);
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(syntax);
    }
    // At most three bytes (`KiB`): anything longer is refused before it is copied.
    let unit = unit.trim_start();
    if unit.len() > 3 {
        return Err(syntax);
    }
    let mut unit = unit.to_ascii_lowercase();
    if unit.ends_with('b') {
        unit.pop();
    }
    if unit.len() == 2 && unit.ends_with('i') {
        unit.pop();
    }
    let shift = match unit.as_str() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(syntax),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    // Digits only here, so a failed parse is an overflow.
    let too_large = TooLarge(true);
    let Some(bytes) = int
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
    else {
        return Err(too_large);
    };
    if frac.is_empty() {
        return Ok(bytes);
    }
    // Exact enough: at most 18 fraction digits are looked at (10^18 << 50 fits a u128); more
    // could only add less than a byte.
    let digits = &frac[..frac.len().min(18)];
    let f: u128 = digits.parse().map_err(|_| TooLarge(false))?;
    let scale = 10u128.pow(digits.len() as u32);
    u64::try_from((f << shift) / scale)
        .ok()
        .and_then(|extra| bytes.checked_add(extra))
        .ok_or(too_large)
}

/// A plain decimal `u64` (digits only, no sign), as the kernel prints it.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A relative share (`cpu.weight`, `io.weight`): 1 to 10000, default 100.
///
/// ```
/// use contain::cgroup::Weight;
/// let w = Weight::new(200)?;
/// assert_eq!(w.get(), 200);
/// assert!(Weight::new(0).is_err());
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u16);

impl Weight {
    /// The smallest weight.
    pub const MIN: Weight = Weight(1);
    /// The kernel's default weight.
    pub const DEFAULT: Weight = Weight(100);
    /// The largest weight.
    pub const MAX: Weight = Weight(10000);

    /// A weight; refused unless `1 <= n <= 10000`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `n` is 0 or above 10000.
    pub fn new(n: u64) -> Result<Weight> {
        match u16::try_from(n) {
            Ok(w) if (1..=10000).contains(&w) => Ok(Weight(w)),
            _ => Err(Error::config("weight", format!("{n} is outside 1..=10000"))),
        }
    }

    /// The `io.weight` for docker's `--blkio-weight N` (cgroup v1's `blkio.weight`, 10 to
    /// 1000), mapped onto 1 to 10000 as runc and crun map it for cgroup v2:
    /// `1 + (N - 10) * 9999 / 990`, so 10 is 1, 500 is 4950 and 1000 is 10000.
    ///
    /// ```
    /// use contain::cgroup::Weight;
    /// assert_eq!(Weight::from_blkio_weight(10)?.get(), 1);
    /// assert_eq!(Weight::from_blkio_weight(500)?.get(), 4950);
    /// assert_eq!(Weight::from_blkio_weight(1000)?.get(), 10000);
    /// assert!(Weight::from_blkio_weight(5).is_err());
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `n` is outside 10 to 1000 (docker's range; its 0, "unset", is
    /// for the caller to leave out).
    pub fn from_blkio_weight(n: u64) -> Result<Weight> {
        if !(10..=1000).contains(&n) {
            return Err(Error::config(
                "blkio weight",
                format!("{n} is outside 10..=1000 (cgroup v1's blkio.weight range, as docker's --blkio-weight)"),
            ));
        }
        Weight::new(1 + (n - 10) * 9999 / 990)
    }

    /// The weight as a number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight::DEFAULT
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Weight {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let n =
            parse_u64(t).ok_or_else(|| Error::parse("weight", format!("{t:?} is not a number")))?;
        Weight::new(n).map_err(|_| Error::parse("weight", format!("{n} is outside 1..=10000")))
    }
}

/// CPU bandwidth (`cpu.max`): at most `quota` of CPU time in every `period`.
///
/// The kernel accepts periods from 1 ms to 1 s and quotas from 1 ms to about 203 days; the
/// constructors enforce that, at microsecond resolution.
///
/// ```
/// use std::time::Duration;
/// use contain::cgroup::{CpuMax, Max};
/// // A fifth of one CPU.
/// let fifth = CpuMax::cpus(0.2)?;
/// assert_eq!(fifth.to_string(), "20000 100000");
/// let half = CpuMax::new(Max::Limit(Duration::from_millis(50)), Duration::from_millis(100))?;
/// assert_eq!(half.quota(), Max::Limit(Duration::from_millis(50)));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuMax {
    quota_us: Max<u64>,
    period_us: u64,
}

impl CpuMax {
    /// The kernel's default period, 100 ms.
    pub const DEFAULT_PERIOD: Duration = Duration::from_millis(100);
    const MIN_US: u64 = 1_000;
    const MAX_PERIOD_US: u64 = 1_000_000;
    /// `(1 << 44) - 1` µs: the kernel's `max_cfs_runtime`.
    const MAX_QUOTA_US: u64 = (1 << 44) - 1;

    /// No limit, with the default period.
    pub const fn unlimited() -> Self {
        CpuMax {
            quota_us: Max::Unlimited,
            period_us: 100_000,
        }
    }

    /// `quota` per `period`, both at whole microseconds.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `period` is outside 1 ms..=1 s or `quota` outside 1 ms..=about 203
    /// days (`(1 << 44) - 1` µs, the kernel's `max_cfs_runtime`).
    pub fn new(quota: Max<Duration>, period: Duration) -> Result<Self> {
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        let quota_us = match quota {
            Max::Unlimited => Max::Unlimited,
            Max::Limit(q) => Max::Limit(u64::try_from(q.as_micros()).unwrap_or(u64::MAX)),
        };
        Self::from_micros(quota_us, period_us).map_err(|reason| Error::config("cpu.max", reason))
    }

    /// A share of one CPU: `cpus = 0.5` is half a CPU, `2.0` two CPUs, with the default period.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `cpus` is not a positive finite number, is below 0.01 (a quota under
    /// 1 ms per 100 ms), or is too large for the kernel's quota.
    pub fn cpus(cpus: f64) -> Result<Self> {
        if !cpus.is_finite() || cpus <= 0.0 {
            return Err(Error::config(
                "cpu.max",
                format!("{cpus} CPUs: must be a positive number"),
            ));
        }
        let quota = (cpus * 100_000.0).round();
        if quota > Self::MAX_QUOTA_US as f64 {
            return Err(Error::config("cpu.max", format!("{cpus} CPUs is too many")));
        }
        Self::from_micros(Max::Limit(quota as u64), 100_000)
            .map_err(|reason| Error::config("cpu.max", reason))
    }

    fn from_micros(quota_us: Max<u64>, period_us: u64) -> std::result::Result<Self, String> {
        if !(Self::MIN_US..=Self::MAX_PERIOD_US).contains(&period_us) {
            return Err(format!("period {period_us} µs is outside 1 ms..=1 s"));
        }
        if let Max::Limit(q) = quota_us {
            if !(Self::MIN_US..=Self::MAX_QUOTA_US).contains(&q) {
                return Err(format!(
                    "quota {q} µs is outside 1 ms..={} µs",
                    Self::MAX_QUOTA_US
                ));
            }
        }
        Ok(CpuMax {
            quota_us,
            period_us,
        })
    }

    /// CPU time allowed per period, or `Unlimited`.
    pub fn quota(&self) -> Max<Duration> {
        match self.quota_us {
            Max::Limit(q) => Max::Limit(Duration::from_micros(q)),
            Max::Unlimited => Max::Unlimited,
        }
    }

    /// The accounting period.
    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period_us)
    }

    /// The limit as a number of CPUs (`quota / period`), or `None` when unlimited.
    pub fn as_cpus(&self) -> Option<f64> {
        self.quota_us
            .limit()
            .map(|q| q as f64 / self.period_us as f64)
    }
}

impl Default for CpuMax {
    fn default() -> Self {
        CpuMax::unlimited()
    }
}

impl fmt::Display for CpuMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.quota_us, self.period_us)
    }
}

impl FromStr for CpuMax {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| Error::parse("cpu.max", format!("{:?}: {why}", s.trim()));
        let mut words = s.split_ascii_whitespace();
        let (Some(quota), Some(period), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("expected \"QUOTA PERIOD\"".into()));
        };
        let quota = quota.parse::<Max<u64>>().map_err(|e| bad(e.to_string()))?;
        let period = parse_u64(period).ok_or_else(|| bad("period is not a number".into()))?;
        Self::from_micros(quota, period).map_err(bad)
    }
}

/// A set of CPU or memory-node numbers in the kernel's list format, e.g. `0-3,5`
/// (`cpuset.cpus`, `cpuset.mems`). Kept as sorted, merged ranges, so huge ranges cost nothing.
///
/// ```
/// use contain::cgroup::CpuList;
/// let cpus: CpuList = "0-3,5,4".parse()?;
/// assert_eq!(cpus.to_string(), "0-5");
/// assert!(cpus.contains(2) && !cpus.contains(6));
/// assert_eq!(CpuList::from_ids([7, 1, 2]).to_string(), "1-2,7");
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CpuList {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u32, u32)>,
}

impl CpuList {
    /// The empty set (for `cpuset.cpus`: "use the parent's").
    pub fn new() -> Self {
        CpuList::default()
    }

    /// The set of the given numbers.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Self {
        CpuList::from_ranges(ids.into_iter().map(|id| (id, id)))
    }

    /// The inclusive range `first..=last` (empty if `first > last`).
    pub fn range(first: u32, last: u32) -> Self {
        CpuList::from_ranges((first <= last).then_some((first, last)))
    }

    /// The union of inclusive ranges; ranges with `first > last` are ignored.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut all: Vec<(u32, u32)> = ranges.into_iter().filter(|&(a, b)| a <= b).collect();
        all.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match merged.last_mut() {
                Some(prev) if u64::from(a) <= u64::from(prev.1) + 1 => prev.1 = prev.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        CpuList { ranges: merged }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= id && id <= b)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// The inclusive ranges, sorted.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// The numbers, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for CpuList {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(CpuList::new());
        }
        let mut ranges = Vec::new();
        for part in t.split(',') {
            let bad = || Error::parse("cpu list", format!("{t:?}: bad element {part:?}"));
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a = parse_u64(a)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?;
            let b = parse_u64(b)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?;
            if a > b {
                return Err(bad());
            }
            ranges.push((a, b));
        }
        Ok(CpuList::from_ranges(ranges))
    }
}

/// A block device number `major:minor`, the key of `io.max`, `io.weight` and `io.stat` lines.
///
/// ```
/// use contain::cgroup::Device;
/// let sda: Device = "8:0".parse()?;
/// assert_eq!(sda, Device::new(8, 0));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Device {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl Device {
    /// The device `major:minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Device { major, minor }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let num = |x: &str| parse_u64(x).and_then(|n| u32::try_from(n).ok());
        match t.split_once(':') {
            Some((a, b)) => match (num(a), num(b)) {
                (Some(major), Some(minor)) => Ok(Device { major, minor }),
                _ => Err(Error::parse(
                    "device number",
                    format!("{t:?}: expected MAJOR:MINOR"),
                )),
            },
            None => Err(Error::parse(
                "device number",
                format!("{t:?}: expected MAJOR:MINOR"),
            )),
        }
    }
}

/// One device's limits in `io.max`: bytes and I/O operations per second, read and write.
///
/// ```
/// use contain::cgroup::{Device, IoMax};
/// use contain::Bytes;
/// let limit = IoMax::new(Device::new(8, 0)).wbps(Bytes::mib(10)).riops(1000);
/// assert_eq!(limit.to_string(), "8:0 rbps=max wbps=10485760 riops=1000 wiops=max");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoMax {
    /// The device the limits apply to.
    pub device: Device,
    /// Read bytes per second.
    pub rbps: Max<Bytes>,
    /// Written bytes per second.
    pub wbps: Max<Bytes>,
    /// Read operations per second.
    pub riops: Max<u64>,
    /// Write operations per second.
    pub wiops: Max<u64>,
}

impl IoMax {
    /// No limits on `device` (writing this removes its entry).
    pub const fn new(device: Device) -> Self {
        IoMax {
            device,
            rbps: Max::Unlimited,
            wbps: Max::Unlimited,
            riops: Max::Unlimited,
            wiops: Max::Unlimited,
        }
    }
    /// With a read bandwidth limit: bytes per second (`Bytes::mib(10)`: 10 MiB/s).
    #[must_use]
    pub fn rbps(mut self, v: impl Into<Max<Bytes>>) -> Self {
        self.rbps = v.into();
        self
    }
    /// With a write bandwidth limit: bytes per second.
    #[must_use]
    pub fn wbps(mut self, v: impl Into<Max<Bytes>>) -> Self {
        self.wbps = v.into();
        self
    }
    /// With a read IOPS limit: operations per second.
    #[must_use]
    pub fn riops(mut self, v: impl Into<Max<u64>>) -> Self {
        self.riops = v.into();
        self
    }
    /// With a write IOPS limit: operations per second.
    #[must_use]
    pub fn wiops(mut self, v: impl Into<Max<u64>>) -> Self {
        self.wiops = v.into();
        self
    }
}

impl fmt::Display for IoMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rbps={} wbps={} riops={} wiops={}",
            self.device, self.rbps, self.wbps, self.riops, self.wiops
        )
    }
}

impl FromStr for IoMax {
    type Err = Error;

    /// One `io.max` line; keys left out are `max`.
    fn from_str(s: &str) -> Result<Self> {
        let mut lines = crate::cgroup::parse::io_max(s)?;
        match (lines.pop(), lines.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(Error::parse(
                "io.max",
                format!("{:?}: expected exactly one line", s.trim()),
            )),
        }
    }
}

/// A huge page size, as named in `hugetlb.<size>.*` files (`2MB`, `1GB`, `64KB`).
///
/// ```
/// use contain::cgroup::{Bytes, HugePageSize};
/// let size: HugePageSize = "2MB".parse()?;
/// assert_eq!(size.bytes(), Bytes::mib(2));
/// assert_eq!(HugePageSize::from_bytes(Bytes::gib(1))?.to_string(), "1GB");
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HugePageSize(u64);

impl HugePageSize {
    /// A page size of `bytes`: a power of two of at least 4 KiB.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `bytes` is not a power of two of at least 4096.
    pub fn from_bytes(bytes: Bytes) -> Result<Self> {
        let bytes = bytes.as_u64();
        if bytes.is_power_of_two() && bytes >= 4096 {
            Ok(HugePageSize(bytes))
        } else {
            Err(Error::config(
                "huge page size",
                format!("{bytes} is not a power of two of at least 4096"),
            ))
        }
    }

    /// The page size.
    pub const fn bytes(self) -> Bytes {
        Bytes(self.0)
    }
}

impl fmt::Display for HugePageSize {
    /// The kernel's own naming (`mem_fmt` in mm/hugetlb_cgroup.c).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const G: u64 = 1 << 30;
        const M: u64 = 1 << 20;
        if self.0 >= G {
            write!(f, "{}GB", self.0 / G)
        } else if self.0 >= M {
            write!(f, "{}MB", self.0 / M)
        } else {
            write!(f, "{}KB", self.0 / 1024)
        }
    }
}

impl FromStr for HugePageSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let bad = || Error::parse("huge page size", format!("{t:?}: expected e.g. 2MB or 1GB"));
        let (digits, shift) = if let Some(d) = t.strip_suffix("GB") {
            (d, 30)
        } else if let Some(d) = t.strip_suffix("MB") {
            (d, 20)
        } else if let Some(d) = t.strip_suffix("KB") {
            (d, 10)
        } else {
            return Err(bad());
        };
        let bytes = parse_u64(digits)
            .and_then(|n| n.checked_mul(1u64 << shift))
            .ok_or_else(bad)?;
        let size = HugePageSize::from_bytes(Bytes(bytes)).map_err(|_| bad())?;
        // Only the kernel's own spelling (no "1024MB" for 1GB), so names map one to one.
        if size.to_string() == t {
            Ok(size)
        } else {
            Err(bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn max_parses_and_formats() {
        assert_eq!("max".parse::<Max<u64>>().unwrap(), Max::Unlimited);
        assert_eq!(" 42\n".parse::<Max<u64>>().unwrap(), Max::Limit(42));
        assert!("-1".parse::<Max<u64>>().is_err());
        assert!("".parse::<Max<u64>>().is_err());
        assert!("MAX".parse::<Max<u64>>().is_err());
        assert_eq!(Max::Limit(7u64).to_string(), "7");
        assert_eq!(Max::<Bytes>::Unlimited.to_string(), "max");
        assert_eq!(Max::Limit(3u64).limit(), Some(3));
        assert!(Max::<u64>::Unlimited.is_unlimited());
    }

    #[test]
    fn bytes_suffixes() {
        assert_eq!("0".parse::<Bytes>().unwrap(), Bytes(0));
        assert_eq!("1k".parse::<Bytes>().unwrap(), Bytes(1024));
        assert_eq!("32M".parse::<Bytes>().unwrap(), Bytes::mib(32));
        assert_eq!("2g".parse::<Bytes>().unwrap(), Bytes::gib(2));
        assert_eq!("1T".parse::<Bytes>().unwrap(), Bytes(1 << 40));
        assert_eq!(
            "18446744073709551615".parse::<Bytes>().unwrap(),
            Bytes(u64::MAX)
        );
        // docker's forms too (one parser for both).
        assert_eq!("1.5G".parse::<Bytes>().unwrap(), Bytes::mib(1536));
        assert_eq!("1KB".parse::<Bytes>().unwrap(), Bytes(1024));
        assert_eq!("1 K".parse::<Bytes>().unwrap(), Bytes(1024));
        for bad in [
            "",
            "K",
            "-1",
            "1.5.G",
            "1 K K",
            "99999999999999999999",
            "17179869184G",
            "ü",
        ] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad:?} should not parse");
        }
        assert_eq!(Bytes::gib(u64::MAX), Bytes(u64::MAX));
    }

    #[test]
    fn weight_range() {
        assert!(Weight::new(0).is_err());
        assert!(Weight::new(10001).is_err());
        assert!(Weight::new(u64::MAX).is_err());
        assert_eq!(Weight::new(1).unwrap(), Weight::MIN);
        assert_eq!(Weight::new(10000).unwrap(), Weight::MAX);
        assert_eq!("100\n".parse::<Weight>().unwrap(), Weight::DEFAULT);
        assert!("0".parse::<Weight>().is_err());
        assert!("abc".parse::<Weight>().is_err());
    }

    #[test]
    fn cpu_max_bounds() {
        assert_eq!("max 100000".parse::<CpuMax>().unwrap(), CpuMax::unlimited());
        let c = "20000 100000\n".parse::<CpuMax>().unwrap();
        assert_eq!(c.quota(), Max::Limit(Duration::from_millis(20)));
        assert_eq!(c.period(), Duration::from_millis(100));
        assert_eq!(c.as_cpus(), Some(0.2));
        assert_eq!(CpuMax::cpus(0.2).unwrap(), c);
        assert_eq!(CpuMax::cpus(2.0).unwrap().to_string(), "200000 100000");
        for bad in [
            "",
            "max",
            "1 2 3",
            "999 100000",
            "1000 999",
            "1000 1000001",
            "x 100000",
            "max -1",
        ] {
            assert!(bad.parse::<CpuMax>().is_err(), "{bad:?} should not parse");
        }
        assert!(CpuMax::cpus(0.0).is_err());
        assert!(CpuMax::cpus(-1.0).is_err());
        assert!(CpuMax::cpus(f64::NAN).is_err());
        assert!(CpuMax::cpus(f64::INFINITY).is_err());
        assert!(CpuMax::cpus(1e30).is_err());
        assert!(
            CpuMax::cpus(0.001).is_err(),
            "0.1 ms per 100 ms is below the kernel minimum"
        );
        assert!(CpuMax::new(Max::Unlimited, Duration::from_secs(2)).is_err());
        assert!(CpuMax::new(
            Max::Limit(Duration::from_secs(u64::MAX)),
            Duration::from_secs(1)
        )
        .is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!("".parse::<CpuList>().unwrap(), CpuList::new());
        assert_eq!("\n".parse::<CpuList>().unwrap(), CpuList::new());
        let l = "0-3,5\n".parse::<CpuList>().unwrap();
        assert_eq!(l.ranges(), &[(0, 3), (5, 5)]);
        assert_eq!(l.len(), 5);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 5]);
        assert_eq!("5,0-2,3".parse::<CpuList>().unwrap().to_string(), "0-3,5");
        assert_eq!("0-4294967295".parse::<CpuList>().unwrap().len(), 1 << 32);
        assert_eq!(CpuList::range(3, 1), CpuList::new());
        for bad in [
            "-",
            "1-",
            "-1",
            "3-1",
            "1,,2",
            "a",
            "0-7:2/4",
            "4294967296",
            " 1 - 2",
        ] {
            assert!(bad.parse::<CpuList>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn devices_and_io_max() {
        assert_eq!("253:16".parse::<Device>().unwrap(), Device::new(253, 16));
        for bad in ["", "8", "8:", ":0", "8:0:1", "a:b", "-1:0"] {
            assert!(bad.parse::<Device>().is_err(), "{bad:?} should not parse");
        }
        let m: IoMax = "8:0 rbps=1 wbps=max riops=3 wiops=4".parse().unwrap();
        assert_eq!(
            m,
            IoMax::new(Device::new(8, 0))
                .rbps(Bytes(1))
                .riops(3)
                .wiops(4)
        );
        assert!("8:0 rbps=1\n8:1 rbps=2".parse::<IoMax>().is_err());
        assert!("".parse::<IoMax>().is_err());
    }

    #[test]
    fn huge_page_sizes() {
        assert_eq!(
            "2MB".parse::<HugePageSize>().unwrap().bytes(),
            Bytes(2 << 20)
        );
        assert_eq!(
            "1GB".parse::<HugePageSize>().unwrap().bytes(),
            Bytes(1 << 30)
        );
        assert_eq!(
            "64KB".parse::<HugePageSize>().unwrap().bytes(),
            Bytes(64 << 10)
        );
        for bad in [
            "",
            "2M",
            "3MB",
            "1024MB",
            "0KB",
            "2KB",
            "MB",
            "99999999999999GB",
        ] {
            assert!(
                bad.parse::<HugePageSize>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    fn any_max() -> impl Strategy<Value = Max<u64>> {
        prop_oneof![Just(Max::Unlimited), any::<u64>().prop_map(Max::Limit)]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = s.parse::<Max<u64>>();
            let _ = s.parse::<Max<Bytes>>();
            let _ = s.parse::<Bytes>();
            let _ = s.parse::<Weight>();
            let _ = s.parse::<CpuMax>();
            let _ = s.parse::<CpuList>();
            let _ = s.parse::<Device>();
            let _ = s.parse::<IoMax>();
            let _ = s.parse::<HugePageSize>();
        }

        #[test]
        fn list_like_inputs_never_panic(s in "[0-9,\\- maxKMGT:=\n]{0,40}") {
            let _ = s.parse::<CpuList>();
            let _ = s.parse::<Bytes>();
            let _ = s.parse::<CpuMax>();
            let _ = s.parse::<IoMax>();
        }

        #[test]
        fn max_round_trips(m in any_max()) {
            prop_assert_eq!(m.to_string().parse::<Max<u64>>().unwrap(), m);
        }

        #[test]
        fn bytes_round_trip(n in any::<u64>()) {
            prop_assert_eq!(Bytes(n).to_string().parse::<Bytes>().unwrap(), Bytes(n));
        }

        #[test]
        fn weight_round_trips(n in 1u64..=10000) {
            let w = Weight::new(n).unwrap();
            prop_assert_eq!(w.to_string().parse::<Weight>().unwrap(), w);
        }

        #[test]
        fn cpu_max_round_trips(q in prop_oneof![Just(None), (1_000u64..=(1 << 44) - 1).prop_map(Some)],
                               p in 1_000u64..=1_000_000) {
            let quota = q.map_or(Max::Unlimited, |q| Max::Limit(Duration::from_micros(q)));
            let c = CpuMax::new(quota, Duration::from_micros(p)).unwrap();
            prop_assert_eq!(c.to_string().parse::<CpuMax>().unwrap(), c);
        }

        #[test]
        fn cpu_list_round_trips(ids in proptest::collection::vec(any::<u32>(), 0..20),
                                ranges in proptest::collection::vec((0u32..5000, 0u32..100), 0..10)) {
            let l = CpuList::from_ranges(ids.iter().map(|&i| (i, i)).chain(ranges.iter().map(|&(a, n)| (a, a + n))));
            let parsed = l.to_string().parse::<CpuList>().unwrap();
            prop_assert_eq!(&parsed, &l);
            for id in ids { prop_assert!(parsed.contains(id)); }
        }

        #[test]
        fn device_and_io_max_round_trip(maj in any::<u32>(), min in any::<u32>(),
                                        r in any_max(), w in any_max(), ri in any_max(), wi in any_max()) {
            let bytes = |v: Max<u64>| match v { Max::Limit(n) => Max::Limit(Bytes(n)), Max::Unlimited => Max::Unlimited };
            let m = IoMax { device: Device::new(maj, min), rbps: bytes(r), wbps: bytes(w), riops: ri, wiops: wi };
            prop_assert_eq!(m.to_string().parse::<IoMax>().unwrap(), m);
            prop_assert_eq!(m.device.to_string().parse::<Device>().unwrap(), m.device);
        }

        #[test]
        fn huge_page_size_round_trips(shift in 12u32..63) {
            let s = HugePageSize::from_bytes(Bytes(1u64 << shift)).unwrap();
            prop_assert_eq!(s.to_string().parse::<HugePageSize>().unwrap(), s);
        }
    }
}
