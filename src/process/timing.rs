//! Where a start's time went: [`Container::timing`](super::Container::timing) records the
//! stages of a spawn, [`Child::start_timing`](super::Child::start_timing) reports them.
//!
//! The parent reads `CLOCK_MONOTONIC` before it prepares and when it sees the exec; the child
//! reads the same clock at the end of each of its stages, with the raw system call (no vDSO,
//! no libc: it runs between clone and exec), and stores the values in memory it shares with
//! the parent (`CLONE_VM`). A spawn that copies the parent's memory instead (a parked
//! [`create`](super::Container::create), a joined time namespace, a rootless enter that forks)
//! has no child stages to report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long each stage of one [`spawn`](super::Container::spawn) took: consecutive
/// intervals on `CLOCK_MONOTONIC`, which add up to `total`.
///
/// The child's stages are `None` when the child did not share the caller's memory, where it
/// records them (a parked [`create`](super::Container::create), a joined time namespace, a
/// rootless enter that forks); `exec` then counts from the clone. A request a
/// [`Pool`](crate::pool::Pool) slot's standby process ran has no child stages either (they
/// were run before the request): `prepare` is the request's preparation, `exec` from sending
/// it to the standby to its `execve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTiming {
    /// The parent's preparation: checking the configuration, compiling what the child needs
    /// (argv, environment, seccomp program, mounts), creating the cgroup, the pipes and the
    /// child's stack.
    pub prepare: Duration,
    /// From the `clone3` call to the child's first instruction: the kernel's copy of the
    /// process and the new namespaces (the network and mount namespaces cost most).
    pub clone: Option<Duration>,
    /// The child's namespaces: joining those to join, waiting for the parent to write the id
    /// maps, place the cgroup or set up the veth, becoming root of a new user namespace.
    pub namespaces: Option<Duration>,
    /// `lo` up, sysctls, hostname and domain name.
    pub network_and_names: Option<Duration>,
    /// The root filesystem: mounts, `/proc`, `/dev`, `pivot_root`, the working directory.
    pub rootfs: Option<Duration>,
    /// The process: descriptors, identity, capabilities, rlimits, seccomp filter.
    pub process: Option<Duration>,
    /// From the end of the child's setup (or from the clone, without child stages) to the
    /// parent seeing the `execve` done.
    pub exec: Duration,
    /// From the start of `spawn` to the parent seeing the `execve` done.
    pub total: Duration,
}

/// Where the child records the end of its stages (indices into [`ChildStamps`]).
pub(crate) const STARTED: usize = 0;
pub(crate) const NAMESPACES: usize = 1;
pub(crate) const NETWORK_AND_NAMES: usize = 2;
pub(crate) const ROOTFS: usize = 3;
pub(crate) const READY: usize = 4;

/// The child's stamps, in nanoseconds of `CLOCK_MONOTONIC`; 0 for a stage not reached.
pub(crate) type ChildStamps = [AtomicU64; 5];

/// `CLOCK_MONOTONIC` in nanoseconds, by the raw system call: async-signal-safe, no
/// allocation, usable between clone and exec.
pub(crate) fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, a local.
    let r = unsafe {
        crate::sys::syscall3(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC as usize,
            &mut ts as *mut libc::timespec as usize,
            0,
        )
    };
    match r {
        Ok(_) => ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
        Err(_) => 0,
    }
}

/// Records the end of stage `at` in the child (no-op when `stamps` is null: timing is off).
///
/// # Safety
/// `stamps` is null or points to [`ChildStamps`] that outlive the child's setup.
pub(crate) unsafe fn stamp(stamps: *const ChildStamps, at: usize) {
    // SAFETY: the caller's contract; the index is one of the constants above.
    if let Some(stamps) = unsafe { stamps.as_ref() } {
        stamps[at].store(now(), Ordering::Relaxed);
    }
}

/// The parent's side: when `spawn` started and when the clone was called.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParentStamps {
    pub started: u64,
    pub cloning: u64,
}

impl StartTiming {
    /// The intervals between the stamps; `exec_seen` is when the parent saw the exec.
    pub(crate) fn new(
        parent: ParentStamps,
        child: Option<&ChildStamps>,
        exec_seen: u64,
    ) -> StartTiming {
        let span = |from: u64, to: u64| Duration::from_nanos(to.saturating_sub(from));
        let child = child
            .map(|c| c.each_ref().map(|s| s.load(Ordering::Relaxed)))
            .filter(|c| c.iter().all(|&s| s != 0));
        let stage = |a: usize, b: usize| child.map(|c| span(c[a], c[b]));
        StartTiming {
            prepare: span(parent.started, parent.cloning),
            clone: child.map(|c| span(parent.cloning, c[STARTED])),
            namespaces: stage(STARTED, NAMESPACES),
            network_and_names: stage(NAMESPACES, NETWORK_AND_NAMES),
            rootfs: stage(NETWORK_AND_NAMES, ROOTFS),
            process: stage(ROOTFS, READY),
            exec: span(child.map_or(parent.cloning, |c| c[READY]), exec_seen),
            total: span(parent.started, exec_seen),
        }
    }

    /// The stages that were measured, in order, with their names (`prepare`, `clone`,
    /// `namespaces`, `network_and_names`, `rootfs`, `process`, `exec`).
    pub fn stages(&self) -> Vec<(&'static str, Duration)> {
        [
            ("prepare", Some(self.prepare)),
            ("clone", self.clone),
            ("namespaces", self.namespaces),
            ("network_and_names", self.network_and_names),
            ("rootfs", self.rootfs),
            ("process", self.process),
            ("exec", Some(self.exec)),
        ]
        .into_iter()
        .filter_map(|(name, d)| d.map(|d| (name, d)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stages_add_up_to_the_total() {
        let parent = ParentStamps {
            started: 1_000,
            cloning: 1_300,
        };
        let child: ChildStamps = [1_500, 2_000, 2_100, 3_000, 3_400].map(AtomicU64::new);
        let t = StartTiming::new(parent, Some(&child), 3_900);
        assert_eq!(t.prepare, Duration::from_nanos(300));
        assert_eq!(t.clone, Some(Duration::from_nanos(200)));
        assert_eq!(t.rootfs, Some(Duration::from_nanos(900)));
        assert_eq!(t.exec, Duration::from_nanos(500));
        let sum: Duration = t.stages().iter().map(|(_, d)| *d).sum();
        assert_eq!(sum, t.total);
        assert_eq!(t.total, Duration::from_nanos(2_900));
    }

    #[test]
    fn without_child_stages_exec_counts_from_the_clone() {
        let parent = ParentStamps {
            started: 1_000,
            cloning: 1_300,
        };
        // A stage the child never reached (0) means no child stages at all.
        let child: ChildStamps = [1_500, 2_000, 0, 3_000, 3_400].map(AtomicU64::new);
        for child in [None, Some(&child)] {
            let t = StartTiming::new(parent, child, 3_900);
            assert_eq!(t.clone, None);
            assert_eq!(t.rootfs, None);
            assert_eq!(t.exec, Duration::from_nanos(2_600));
            assert_eq!(t.stages().len(), 2);
            let sum: Duration = t.stages().iter().map(|(_, d)| *d).sum();
            assert_eq!(sum, t.total);
        }
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = now();
        let b = now();
        assert!(a > 0 && b >= a);
    }
}
