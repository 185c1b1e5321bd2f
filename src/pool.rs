//! A warm pool: containers' isolation made ahead of demand, so that a request costs about a
//! process spawn (the "zygote" idea of SOCK, USENIX ATC '18, and of a pod's pause container).
//!
//! A [`Pool`] keeps up to `size` **slots** ready. A slot is one container's worth of isolation,
//! made from the pool's template [`Container`] by an ordinary [`spawn`](Container::spawn):
//! its namespaces created, its rootfs assembled and pivoted into, `/proc` and `/dev` mounted,
//! its hostname set, `lo` up, its cgroup made with its limits. The slot's PID 1 is
//! `contain-init` in `pause` mode, which runs no command: it holds the namespaces and reaps
//! orphans.
//!
//! Each slot also has a **standby process**, its PID 2: `contain-init` in `standby` mode,
//! entered into the slot ahead of demand with the template's process settings (identity,
//! working directory, umask, capabilities, no_new_privs, seccomp filter, rlimits), waiting on
//! a socket. [`Pool::spawn`] takes a ready slot and, when the request's process settings are
//! the template's, sends the standby the request (program, arguments, environment, stdio) in
//! one message; the standby puts the stdio in place and execs the program: the request costs
//! one `sendmsg` and an `execve`, about a process spawn. A request with other settings (or a
//! tty, passed descriptors, an init, a message over 64 KiB, or piped stdio to hand to a user
//! of the slot's own user namespace) is started with [`Container::enter`] instead, once the
//! standby is killed and reaped (it must not wait beside a request whose settings are
//! stricter than its own): one `clone3` into the slot's cgroup and PID namespace, one
//! `setns(pidfd)` for the other namespaces, then its own identity, capabilities, seccomp
//! filter, rlimits, environment and stdio, and `execve`. Either way nothing of the expensive
//! part of a start (copying the net and mount namespaces, the overlay and pivot_root, cgroup
//! creation) is left on the request's path.
//!
//! A template with a seccomp filter of the caller's ([`Seccomp::Program`],
//! [`Seccomp::Profile`]), which may deny what the standby does before the exec, or an
//! `RLIMIT_NOFILE` below 7, too low for the descriptors it receives, makes slots without one.
//!
//! [`Seccomp::Program`]: crate::security::Seccomp::Program
//! [`Seccomp::Profile`]: crate::security::Seccomp::Profile
//!
//! Measured with `cargo bench --bench pool` (spawn and wait of a static busybox `true`, one
//! run, a 2-core VM): `std::process::Command` 0.58 ms, a pooled start served by the standby
//! 0.80 ms (1.4x) with the default security and 0.77 ms (1.3x) unrestricted, one entered
//! 1.02 ms (1.7x), and the same container started cold 1.92 ms (3.3x). The ratios depend on
//! the host: on a VM whose CPUs are slow to wake from idle, 1.7x and 1.6x (the standby and
//! the caller each wait for an idle CPU once per request; the README's Performance section
//! takes a request apart).
//!
//! **A slot serves one request.** When the request's [`PooledChild`] is dropped, its slot is
//! destroyed (PID 1 killed, which ends every process left in the PID namespace; the namespaces,
//! the writable layer and the cgroup go with it) and a new one is made in its place: no file,
//! process or network setting of one request is seen by another, within what the template
//! isolates. A template whose rootfs keeps writes ([`RootfsMode::ReadWrite`], a
//! [`persistent_upper`](crate::rootfs::Rootfs::persistent_upper)) is refused; what it joins,
//! the namespace kinds it does not create and volumes bound from the host are shared by every
//! slot, as by containers spawned directly from it.
//!
//! [`RootfsMode::ReadWrite`]: crate::rootfs::RootfsMode::ReadWrite
//!
//! Background threads (one per CPU, at most one per slot) refill the pool and destroy used
//! slots, so neither costs the requests, and a pool's sustained rate is not what one CPU can
//! start. When no slot is ready (a burst larger than the pool), [`Pool::spawn`] makes one
//! itself, at the cost of a full container start.
//!
//! Differences from a container spawned directly, which follow from the design:
//! - the request's process is PID 2 in its PID namespace (PID 3 when entered after the
//!   standby), not PID 1 (PID 1 is the holder, as in a Kubernetes pod with a shared process
//!   namespace): signals reach it as to any process, and its orphans are reaped;
//! - a request run by the standby has the parent-death signal of the refill thread that
//!   made the standby (the pool's threads live as long as the pool and its requests),
//!   not of the calling thread, and its [`start_timing`](Child::start_timing) has no child
//!   stages (its setup was done before the request);
//! - the slot's hostname, mounts, network, sysctls and limits are the template's; a request
//!   brings only what [`Container::enter`] accepts (program, arguments, environment, working
//!   directory, user, security settings, stdio, passed descriptors).
//!
//! A template that creates a time namespace ([`Namespaces::TIME`]) makes every request dearer:
//! `setns` into a time namespace needs a process that shares its memory with nobody, so each
//! request's process is a copy of the caller's address space rather than a share of it
//! (`CLONE_VM`), and its start pays for the page tables (0.93 ms against 0.77 ms per pooled
//! `/bin/true` with the run example's `--repeat` on a 2-core VM). Leave it out unless the
//! requests need their own clocks' offsets.
//!
//! [`Namespaces::TIME`]: crate::namespace::Namespaces::TIME
//!
//! ```no_run
//! use contain::namespace::Namespaces;
//! use contain::pool::Pool;
//! use contain::process::Container;
//! use contain::rootfs::Rootfs;
//!
//! let template = Container::new("unused")
//!     .namespaces(Namespaces::all() - Namespaces::USER)
//!     .rootfs(Rootfs::new("/srv/images/busybox"))
//!     .hostname("worker");
//! let pool = Pool::new(template, 4)?;
//! let out = pool.spawn(Container::new("/bin/hostname"))?.wait_with_output()?;
//! assert_eq!(out.stdout, b"worker\n");
//! # Ok::<(), contain::Error>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::process::{
    Child, Container, Output, SpawnFailure, Standby, StandbyFailure, Stdio, Target,
};
use crate::{Error, Result, Signal};

/// A bounded set of ready slots and the threads that keep it full (see the [module](self)):
/// one per CPU, at most one per slot.
///
/// `Pool` is `Send` and `Sync`: threads share one through an `Arc` or a scoped borrow and call
/// [`spawn`](Self::spawn) at once. Dropping it stops refilling and destroys the ready slots; a
/// [`PooledChild`] still running keeps its slot until it is dropped (the pool's threads,
/// whose children the holders are, stay until then).
pub struct Pool {
    shared: Arc<Shared>,
    /// The refill threads (see [`refill_threads`]).
    workers: Vec<JoinHandle<()>>,
}

/// How many threads refill a pool of `size`: one per CPU, at most one per slot. Making a slot
/// is a container start (about 2 ms of mostly kernel work on the 2-core VM), so one thread
/// caps a pool's sustained rate at what one CPU starts, whatever the cores.
fn refill_threads(size: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    size.min(cpus).max(1)
}

struct Shared {
    /// The slots' isolation; its program and process settings are unused.
    template: Container,
    size: usize,
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
    /// Signalled when the refill threads have work: a slot retired, slots wanted, the pool
    /// stopped. Apart from `changed` so that a retired slot wakes one of them, not every
    /// thread (a woken thread may take the CPU of the caller that retired the slot).
    work: Condvar,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Slot>,
    /// Used slots, for the refill thread to destroy.
    retired: Vec<Slot>,
    /// Slots the refill thread is making now.
    making: usize,
    /// Used slots the refill thread is destroying now.
    destroying: usize,
    /// The pool is to be filled up to `size` (see [`Shared::wants_slot`]).
    due: bool,
    /// The refill thread's last failure, kept until a spawn makes a slot itself: the thread
    /// stops refilling meanwhile rather than retry in a loop.
    failed: Option<Error>,
    /// Slots of live [`PooledChild`]ren.
    in_use: usize,
    stop: bool,
}

/// One container's worth of isolation: its PID 1 (the holder), which owns its cgroup, what
/// entering it means, learnt when it was made, and its standby process (PID 2), when one
/// could be made.
struct Slot {
    holder: Child,
    target: Target,
    standby: Option<Standby>,
}

impl Slot {
    /// Kills the holder (and with it everything in its PID namespace), reaps the standby and
    /// the holder, and drops the holder, which removes its cgroup.
    fn destroy(mut self) {
        let _ = self.holder.kill(Signal::SIGKILL);
        // First: the kernel ends a PID namespace's init only once every other process of the
        // namespace is reaped, and the standby is our child, not the holder's.
        drop(self.standby.take());
        let _ = self.holder.wait();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Pool")
            .field("size", &self.shared.size)
            .field("ready", &state.ready.len())
            .field("making", &state.making)
            .field("retired", &(state.retired.len() + state.destroying))
            .finish()
    }
}

impl Pool {
    /// A pool of up to `size` slots made from `template`, of which the first is made before
    /// this returns (so that a template that cannot start fails here, with the error of
    /// [`Container::spawn`]) and the others by the refill threads (one per CPU, at most
    /// `size`).
    ///
    /// The template gives the slots' isolation: [`namespaces`](Container::namespaces)
    /// (which must include [`Namespaces::PID`](crate::namespace::Namespaces::PID): the slot's
    /// PID 1 holds them), joined namespaces, [`rootfs`](Container::rootfs),
    /// [`hostname`](Container::hostname), [`network`](Container::network),
    /// [`sysctl`](Container::sysctl)s, id maps, and the cgroup
    /// ([`resources`](Container::resources), [`cgroup_parent`](Container::cgroup_parent));
    /// its program, arguments, stdio and [`init`](Container::init) setting are not used (its
    /// PID 1 is `contain-init` in `pause` mode, with stdio on `/dev/null`). `size` 0 is a
    /// pool that keeps nothing ready, where each [`spawn`](Self::spawn) makes its slot.
    ///
    /// The template's process settings ([`current_dir`](Container::current_dir), the user
    /// and groups, [`umask`](Container::umask), [`personality`](Container::personality),
    /// the parent-death signal, [`security`](Container::security) with the default filter or
    /// none) are those of the slots' standby processes: a request with the same settings is
    /// run by its slot's standby, one with others is entered (see the [module](self)).
    ///
    /// The slots are spawned by the refill threads, so the template's parent-death signal
    /// follows the one that made each, and they live as long as the pool; a slot that
    /// [`spawn`](Self::spawn) makes itself follows the calling thread, as the request's
    /// process does. A slot that [`spawn`](Self::spawn) makes itself has no standby (making
    /// one would only add a start to the request's).
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] naming `pool` when the template has no new PID namespace, or has a
    ///   tty or an [`enter`](Container::enter) target, or a rootfs that keeps writes
    ///   ([`RootfsMode::ReadWrite`](crate::rootfs::RootfsMode::ReadWrite),
    ///   [`persistent_upper`](crate::rootfs::Rootfs::persistent_upper)).
    /// - Those of [`Container::spawn`] for the first slot.
    /// - [`Error::Sys`] naming `pthread_create` when a refill thread cannot start.
    pub fn new(template: Container, size: usize) -> Result<Pool> {
        let template = template
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
            .pause();
        template.check_pool_template()?;
        let shared = Arc::new(Shared {
            template,
            size,
            state: Mutex::new(State {
                due: true,
                ..State::default()
            }),
            changed: Condvar::new(),
            work: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::new(),
        };
        for _ in 0..refill_threads(size) {
            let shared = Arc::clone(&pool.shared);
            let worker = std::thread::Builder::new()
                .name("contain-pool".into())
                .spawn(move || shared.refill())
                // (Dropping the pool stops the threads already started.)
                .map_err(|e| {
                    Error::sys(
                        "pthread_create (pool refill thread)",
                        crate::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                    )
                })?;
            pool.workers.push(worker);
        }
        // The first slot, made by a refill thread as every other (the holders' parent-death
        // signal follows the thread that spawned them).
        let mut state = pool.shared.lock();
        while size > 0 && state.ready.is_empty() {
            if let Some(e) = &state.failed {
                let e = e.clone();
                drop(state);
                return Err(e);
            }
            state = pool.shared.wait(state);
        }
        drop(state);
        Ok(pool)
    }

    /// The most slots the pool keeps ready.
    pub fn size(&self) -> usize {
        self.shared.size
    }

    /// How many slots are ready now.
    pub fn ready(&self) -> usize {
        self.shared.lock().ready.len()
    }

    /// Waits until the pool is at rest: `size` slots ready and every used slot destroyed, or
    /// `timeout` has passed (a server calls it before it takes traffic; a benchmark before
    /// each timed request). Returns whether it came to rest.
    ///
    /// # Errors
    ///
    /// The refill thread's failure to make a slot (an [`Error`] of [`Container::spawn`], or
    /// [`Error::Config`] naming `pool` if making one panicked): the
    /// thread stops refilling until a [`spawn`](Self::spawn) succeeds in making a slot itself,
    /// and until then every call says so.
    pub fn wait_ready(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        loop {
            if let Some(e) = &state.failed {
                return Err(e.clone());
            }
            if state.ready.len() >= self.shared.size
                && state.retired.is_empty()
                && state.destroying == 0
            {
                return Ok(true);
            }
            // The refill threads are woken only when there is work for them: a pool at rest
            // returns above without waking them, so as not to have them compete with the
            // request that comes next.
            if !state.due {
                state.due = true;
                self.shared.work.notify_all();
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(false),
                },
                None => Duration::from_secs(3600),
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Starts `process` in a ready slot (or, when none is ready, in a slot made now): by the
    /// slot's standby process when `process` has the template's process settings, else as
    /// [`Container::enter`] starts a process in a running container (see the
    /// [module](self)); what the process sees is the same either way. The slot is the
    /// request's alone and is destroyed when the [`PooledChild`] is dropped.
    ///
    /// `process` brings the program, arguments, environment, working directory, user,
    /// [`security`](Container::security) settings, stdio, passed descriptors and tty; it must
    /// not ask for namespaces, a rootfs, a hostname, sysctls, a network, a cgroup or an
    /// `enter` target of its own: the slot's are its own, and its cgroup the slot's, under the
    /// template's limits. These are checked before a slot is taken.
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] naming `enter` for a `process` that asks for namespaces, a rootfs,
    ///   names, sysctls or a network; naming `pool` for a cgroup
    ///   ([`cgroup`](Container::cgroup), [`resources`](Container::resources),
    ///   [`cgroup_parent`](Container::cgroup_parent)) or an `enter` target.
    /// - Those of [`Container::spawn`] with [`Container::enter`], and, when no slot was
    ///   ready, of making one (as in [`Pool::new`]). A slot whose start failed is destroyed,
    ///   never used again; one whose request was refused while it was prepared (a user the
    ///   slot's `/etc/passwd` lacks, an environment variable with a NUL byte) goes back to
    ///   the ready ones, nobody having entered it.
    ///
    /// The slot's `/etc/passwd` and `/etc/group`, for `HOME` and the
    /// [`user`](Container::user), are those it had when it was made (read then, off the
    /// request's path).
    pub fn spawn(&self, process: Container) -> Result<PooledChild> {
        process.check_pool_request()?;
        let mut slot = loop {
            match self.shared.take_ready() {
                Some(mut slot) => {
                    // A holder that has ended (killed from outside, the OOM killer) holds
                    // nothing: on to the next slot. Killing the holder kills the standby,
                    // whose end comes first (the holder's waits for the standby to be
                    // reaped, which `waiting` does).
                    let standby_waits = slot.standby.as_mut().is_none_or(Standby::waiting);
                    match slot.holder.try_wait() {
                        Ok(None) if standby_waits => break slot,
                        _ => self.shared.retire(slot),
                    }
                }
                None => {
                    let slot = self.shared.make_slot(false)?;
                    // The template works again: the refill threads may go on.
                    self.shared.lock().failed = None;
                    self.shared.work.notify_all();
                    break slot;
                }
            }
        };
        let target = match slot.target.try_clone() {
            Ok(t) => t,
            Err(e) => {
                self.shared.retire(slot);
                return Err(e);
            }
        };
        let spawned = self.start(&mut slot, process, target);
        // Only now, and only when the pool runs low, may the refill thread make the slot's
        // successor (otherwise when this request's slot is retired): making a slot copies
        // namespaces and mounts, which competes with starts for the CPU and the kernel's
        // locks.
        if self.shared.lock().ready.len() < self.shared.low_water() {
            self.shared.work.notify_all();
        }
        match spawned {
            Ok(child) => {
                self.shared.lock().in_use += 1;
                Ok(PooledChild {
                    child,
                    holder: slot.holder.pid(),
                    slot: Retiring {
                        slot: Some(slot),
                        shared: Arc::clone(&self.shared),
                    },
                })
            }
            // Refused by the preparation: nobody entered the slot, which may serve another.
            Err(SpawnFailure::Refused(e)) => {
                self.shared.put_back(slot);
                Err(e)
            }
            Err(SpawnFailure::Failed(e)) => {
                self.shared.retire(slot);
                Err(e)
            }
        }
    }

    /// Starts `process` in `slot`: by its standby when it has one that serves the request,
    /// else (or when the standby cannot take it) with [`Container::enter`].
    fn start(
        &self,
        slot: &mut Slot,
        process: Container,
        target: Target,
    ) -> std::result::Result<Child, SpawnFailure> {
        let request = process.enter(target);
        let request = match slot.standby.take() {
            Some(standby) if self.shared.template.standby_serves(&request) => {
                match standby.start(request).map_err(|e| *e) {
                    Ok(child) => return Ok(child),
                    Err(StandbyFailure::Refused(e, standby)) => {
                        slot.standby = Some(standby);
                        return Err(SpawnFailure::Refused(e));
                    }
                    Err(StandbyFailure::Failed(e)) => return Err(SpawnFailure::Failed(e)),
                    Err(StandbyFailure::NotTaken(standby, request)) => {
                        drop(standby);
                        *request
                    }
                }
            }
            // The standby must not wait beside a request it did not take: it holds the
            // template's settings (filter, rlimits, no_new_privs), which a request entered
            // with stricter ones could borrow by ptracing it. Killed and reaped (dropped)
            // first: the request sees no PID 2.
            standby => {
                drop(standby);
                request
            }
        };
        request.spawn_telling_refusals()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let in_use = {
            let mut state = self.shared.lock();
            state.stop = true;
            state.in_use
        };
        self.shared.work.notify_all();
        // The threads destroy the ready slots now, and those in use as they are retired; they
        // end after the last one. Joined when that is now, else left to finish on their own.
        if in_use == 0 {
            for worker in self.workers.drain(..) {
                let _ = worker.join();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (each change is one
        // push or pop), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    /// A refill thread's wait for work.
    fn wait_for_work<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.work.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    /// Below this many ready slots, a spawn has the refill thread start at once.
    fn low_water(&self) -> usize {
        self.size.div_ceil(2)
    }

    /// Whether the refill thread should make a slot now: the pool is not full, and either it
    /// runs low, or a slot was retired, or somebody waits for a full pool (`due`). Otherwise
    /// taking a slot leaves refilling to the moment its request ends, so that requests in a
    /// pool with slots to spare never compete with making slots.
    fn wants_slot(&self, state: &State) -> bool {
        let coming = state.ready.len() + state.making;
        state.failed.is_none()
            && coming < self.size
            && (state.due || state.ready.len() < self.low_water())
    }

    /// Makes a slot, with a standby process when `standby` (the refill thread's slots; one
    /// that [`Pool::spawn`] makes for its request would only add a start to it). A standby
    /// that cannot be made leaves the slot without one: its request is entered instead.
    fn make_slot(&self, standby: bool) -> Result<Slot> {
        let holder = self.template.spawn()?;
        let target = Target::from_pidfd(holder.pidfd())?.surveyed()?;
        // Only for a template whose standby can serve a request (see `standby_serves`).
        let standby = match standby && self.template.standby_may_serve() {
            true => target
                .try_clone()
                .and_then(|t| Standby::spawn(&self.template, t))
                .ok(),
            false => None,
        };
        Ok(Slot {
            holder,
            target,
            standby,
        })
    }

    /// A ready slot, if there is one. The refill thread is not told yet: see
    /// [`Pool::spawn`].
    fn take_ready(&self) -> Option<Slot> {
        self.lock().ready.pop_front()
    }

    /// Returns a slot that was taken but not entered to the front of the ready ones, unless
    /// the pool has filled up meanwhile, counting the slots being made (then it is destroyed:
    /// the pool stays bounded).
    fn put_back(&self, slot: Slot) {
        let mut state = self.lock();
        if state.stop || state.ready.len() + state.making >= self.size {
            drop(state);
            return self.retire(slot);
        }
        state.ready.push_front(slot);
        drop(state);
        self.changed.notify_all();
    }

    /// Hands a slot that was taken (used, or not usable) to the refill thread to destroy.
    fn retire(&self, slot: Slot) {
        self.retire_counted(slot, false);
    }

    /// [`retire`](Self::retire) for the slot of a [`PooledChild`]: one step with the count of
    /// slots in use, which a stopped pool's thread waits on to end (between two steps it
    /// could end and leave the slot behind).
    fn retire_in_use(&self, slot: Slot) {
        self.retire_counted(slot, true);
    }

    fn retire_counted(&self, slot: Slot, in_use: bool) {
        let mut state = self.lock();
        if in_use {
            state.in_use -= 1;
        }
        state.retired.push(slot);
        state.due = true;
        drop(state);
        // One thread destroys it (a busy one sees it before it waits again).
        self.work.notify_one();
    }

    /// A refill thread: destroys used slots first (they hold memory and a cgroup), then
    /// makes slots until `size` are ready or being made.
    fn refill(&self) {
        let mut state = self.lock();
        loop {
            if state.stop {
                let ready = std::mem::take(&mut state.ready);
                let retired = std::mem::take(&mut state.retired);
                drop(state);
                ready.into_iter().chain(retired).for_each(Slot::destroy);
                state = self.lock();
                // Slots retired meanwhile are destroyed on the next turn, without a wait (their
                // notification came while this thread was not waiting).
                if !state.retired.is_empty() {
                    continue;
                }
                if state.in_use == 0 {
                    // The others end too.
                    self.work.notify_all();
                    return;
                }
                state = self.wait_for_work(state);
                continue;
            }
            if !state.retired.is_empty() {
                let retired = std::mem::take(&mut state.retired);
                let n = retired.len();
                state.destroying += n;
                drop(state);
                retired.into_iter().for_each(Slot::destroy);
                state = self.lock();
                state.destroying -= n;
                self.changed.notify_all();
                continue;
            }
            if self.wants_slot(&state) {
                state.making += 1;
                drop(state);
                // A panic here (a bug) must not end this thread with `making` counted and
                // nobody told: `Pool::new` and `wait_ready` would wait for ever.
                let made =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.make_slot(true)))
                        .unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            Err(Error::Config {
                                what: "pool",
                                reason: format!(
                            "making a slot panicked (a bug in contain, please report it): {what}"
                        ),
                            })
                        });
                state = self.lock();
                state.making -= 1;
                match made {
                    Ok(slot) if !state.stop => state.ready.push_back(slot),
                    Ok(slot) => {
                        drop(state);
                        slot.destroy();
                        state = self.lock();
                    }
                    Err(e) => state.failed = Some(e),
                }
                self.changed.notify_all();
                continue;
            }
            if state.ready.len() + state.making >= self.size {
                state.due = false;
            }
            state = self.wait_for_work(state);
        }
    }
}

/// A process started by [`Pool::spawn`]: a [`Child`] (through `Deref`: `wait`, `kill`,
/// `pidfd`, `take_tty`, ...) and the slot it runs in, destroyed when this is dropped (after
/// the process is killed and reaped if it still runs, as dropping a `Child` does).
///
/// The `Child` is meant to stay inside: one moved out (`std::mem::replace` through
/// `DerefMut`) and kept unreaped past this value's drop holds up the slot's destruction on
/// a pool's thread, since the kernel ends a PID namespace's init only when every process of
/// the namespace has been reaped (`zap_pid_ns_processes`), its own children or not.
pub struct PooledChild {
    // Fields drop in this order: the process first (killed and reaped if it still runs, as
    // dropping a `Child` does), so that the slot's cgroup is empty when the slot goes.
    child: Child,
    slot: Retiring,
    holder: crate::Pid,
}

/// A slot in use, handed back to be destroyed when dropped.
struct Retiring {
    slot: Option<Slot>,
    shared: Arc<Shared>,
}

impl Drop for Retiring {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.shared.retire_in_use(slot);
        }
    }
}

impl fmt::Debug for PooledChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledChild")
            .field("child", &self.child)
            .field("holder", &self.holder_pid())
            .finish()
    }
}

impl PooledChild {
    /// As [`Child::wait_with_output`]; the slot is handed back to be destroyed when this
    /// returns.
    ///
    /// # Errors
    ///
    /// Those of [`Child::wait_with_output`].
    pub fn wait_with_output(self) -> Result<Output> {
        let PooledChild { child, slot, .. } = self;
        let out = child.wait_with_output();
        drop(slot);
        out
    }

    /// The slot's PID 1 (the holder of its namespaces), in the caller's PID namespace.
    pub fn holder_pid(&self) -> crate::Pid {
        self.holder
    }
}

impl Deref for PooledChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for PooledChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}
