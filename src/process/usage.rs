//! What a finished container used: the rusage the kernel hands over when the child is reaped,
//! and its cgroup's counters when it has a cgroup of its own.

use std::time::Duration;

use crate::cgroup::{self, Bytes};

/// What a container used: [`Child::usage`](super::Child::usage), and
/// [`Output::usage`](super::Output::usage) of
/// [`wait_with_output`](super::Child::wait_with_output).
///
/// Two sources that count different things:
/// - [`rusage`](Self::rusage), from `waitid(2)` when the child is reaped: needs no cgroup and
///   no privilege, so rootless callers get it too. It counts the child and the descendants
///   that were *waited for* (see [`Rusage`]).
/// - [`cgroup`](Self::cgroup), the counters of the cgroup `spawn` created for the child
///   ([`Container::resources`](super::Container::resources)): every process the container
///   ever ran, waited for or not, and its page cache in `memory.peak`.
///
/// ```no_run
/// use contain::process::{Container, Stdio};
/// let out = Container::new("sh")
///     .args(["-c", "echo hi"])
///     .stdout(Stdio::Piped)
///     .spawn()?
///     .wait_with_output()?;
/// if let Some(ru) = out.usage.rusage {
///     eprintln!("user {:?} system {:?} maxrss {} bytes", ru.utime, ru.stime, ru.maxrss.0);
/// }
/// if let Some(cg) = out.usage.cgroup {
///     eprintln!("cgroup cpu {:?} memory.peak {:?}", cg.cpu.usage(), cg.memory_peak);
/// }
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// The resource usage `waitid` reported when it reaped the child; `None` while the child
    /// runs, and when somebody else reaped it (a caller that ignores SIGCHLD, or a
    /// `waitpid(-1)` loop: the status then comes from the pidfd, which keeps no rusage).
    pub rusage: Option<Rusage>,
    /// The counters of the child's own cgroup (`cpu.stat`, `memory.peak`, `memory.events`),
    /// read when the usage was asked for; `None` when `spawn` made no cgroup for the child
    /// (and, in [`Output::usage`](super::Output::usage), when they could not be read: the
    /// output and status are not given up for them).
    pub cgroup: Option<cgroup::Usage>,
}

impl Usage {
    /// Total CPU time: the cgroup's `cpu.stat` `usage_usec` when there is a cgroup (it counts
    /// every process of the container), else user + system time from the rusage; `None`
    /// when there is neither.
    pub fn cpu(&self) -> Option<Duration> {
        match (&self.cgroup, &self.rusage) {
            (Some(cg), _) => Some(cg.cpu.usage()),
            (None, Some(ru)) => Some(ru.utime + ru.stime),
            (None, None) => None,
        }
    }

    /// Peak memory of the container: its cgroup's `memory.peak` (Linux 5.19; every process
    /// of the container and its page cache), when `spawn` made a cgroup with the memory
    /// controller. `None` otherwise, deliberately: the rusage's
    /// [`maxrss`](Rusage::maxrss) is no substitute, as it is at least the caller's own peak
    /// RSS (the child shares the caller's memory until it execs) and counts one process, not
    /// the container; read it there when a rough figure is enough.
    pub fn memory_peak(&self) -> Option<Bytes> {
        self.cgroup.as_ref().and_then(|cg| cg.memory_peak)
    }
}

/// `struct rusage` as `waitid(2)` (or `wait4(2)`) reports it for a reaped child: the child's
/// own usage (`RUSAGE_SELF`) plus that of every descendant it, or a descendant in turn,
/// waited for (`RUSAGE_CHILDREN`); the kernel's `RUSAGE_BOTH` of the zombie. Field names are
/// the kernel's without the `ru_` prefix; units are converted (see each field).
///
/// Which descendants are counted (Linux; `tests/wait_output.rs` checks it):
/// - Those reaped by a wait: by their parent (a shell waiting for its commands), by the
///   container's PID 1 (with a PID namespace, orphans are reparented to it; `contain-init`,
///   [`Container::init`](super::Container::init), reaps them all), or by the kernel on
///   PID 1's behalf when PID 1 exits and zombies are left.
/// - Not those still running when PID 1 of a PID namespace exits: the kernel kills them,
///   but makes PID 1 ignore SIGCHLD first, so they are reaped without being counted. A
///   runner that kills a container at a deadline loses their usage with them.
/// - Not, without a PID namespace, those that outlive their parent: they are reparented to
///   the caller's subreaper or init, out of the container's tree.
/// - `maxrss` is a maximum, never a sum (see there).
///
/// For every process of the container, waited for or not, use a cgroup
/// ([`Usage::cgroup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Rusage {
    /// User CPU time (`ru_utime`).
    pub utime: Duration,
    /// System CPU time (`ru_stime`).
    pub stime: Duration,
    /// Resident set size high-water mark of the *largest single process* among the child and
    /// its waited-for descendants (`ru_maxrss`, which the kernel reports in KiB; here in
    /// bytes). It is not a sum: a container of ten 100 MiB processes reports about 100 MiB.
    ///
    /// The caller's own peak RSS is a floor of this value: spawn shares the caller's address
    /// space until the child execs (as glibc's `posix_spawn`, and with it
    /// `std::process::Command`, does), and `execve` folds the high-water mark of the address
    /// space it leaves into the process's. A caller that has used 300 MiB sees about 300 MiB
    /// for `true` (measured on Linux 6.18; std's children report the same). The cgroup's
    /// `memory.peak` ([`Usage::cgroup`]) does not have this floor.
    pub maxrss: Bytes,
    /// Page faults served without I/O (`ru_minflt`).
    pub minflt: u64,
    /// Page faults that needed I/O (`ru_majflt`).
    pub majflt: u64,
    /// Blocks read from a filesystem, in 512-byte units (`ru_inblock`).
    pub inblock: u64,
    /// Blocks written to a filesystem, in 512-byte units (`ru_oublock`).
    pub oublock: u64,
    /// Voluntary context switches (`ru_nvcsw`): the process gave up the CPU to wait.
    pub nvcsw: u64,
    /// Involuntary context switches (`ru_nivcsw`): the scheduler took the CPU away.
    pub nivcsw: u64,
}

impl Rusage {
    /// From the kernel's `struct rusage`.
    pub(crate) fn from_raw(ru: &libc::rusage) -> Rusage {
        fn time(tv: libc::timeval) -> Duration {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.clamp(0, 999_999) as u64)
        }
        let n = |v: libc::c_long| v.max(0) as u64;
        Rusage {
            utime: time(ru.ru_utime),
            stime: time(ru.ru_stime),
            maxrss: Bytes(n(ru.ru_maxrss).saturating_mul(1024)),
            minflt: n(ru.ru_minflt),
            majflt: n(ru.ru_majflt),
            inblock: n(ru.ru_inblock),
            oublock: n(ru.ru_oublock),
            nvcsw: n(ru.ru_nvcsw),
            nivcsw: n(ru.ru_nivcsw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_units_of_the_kernel_struct() {
        // SAFETY: an all-zero rusage is a valid value.
        let mut raw: libc::rusage = unsafe { std::mem::zeroed() };
        raw.ru_utime = libc::timeval {
            tv_sec: 1,
            tv_usec: 500_000,
        };
        raw.ru_stime.tv_usec = 250;
        raw.ru_maxrss = 2048;
        raw.ru_nvcsw = 3;
        let ru = Rusage::from_raw(&raw);
        assert_eq!(ru.utime, Duration::from_millis(1500));
        assert_eq!(ru.stime, Duration::from_micros(250));
        assert_eq!(ru.maxrss, Bytes::mib(2));
        assert_eq!(ru.nvcsw, 3);
        let usage = Usage {
            rusage: Some(ru),
            cgroup: None,
        };
        assert_eq!(usage.cpu(), Some(Duration::from_micros(1_500_250)));
    }
}
