//! What each piece of a container start costs on its own, timed around the piece only
//! (`iter_custom`; what each iteration sets up and tears down around it is not timed):
//!
//! - `cgroup_create_remove`: `CgroupBuilder::create_in_default` with a `pids.max`, then
//!   `OwnedCgroup::remove` (mkdir, controller files, rmdir); on a host whose cgroup v2 lacks
//!   the pids controller, `cgroup_create_remove_no_controller`, a group without limits;
//! - `overlay_mount`: a busybox lower directory with an upper and work directory, mounted and
//!   detached (`Mount::overlay`), in a mount namespace of the bench's thread;
//! - `tmpfs_detach`: `umount2(MNT_DETACH)` of a tmpfs (mounted untimed), in a mount namespace of
//!   the bench's thread: the RCU grace period every detaching `umount2` waits for, which is
//!   why a start detaches its scratch mounts together with the old root;
//! - `mount_ns_copy`: `unshare(CLONE_NEWNS)` of the host's mount table, on a fresh thread;
//! - `pivot_root`: `pivot_root(".", ".")` into a bind-mounted busybox tree and the detach of the
//!   old root, in a mount namespace of a fresh thread (the start itself puts the old root on a
//!   holder tmpfs instead, see `rootfs`, at the same cost);
//! - `id_map_write`: `uid_map` and `gid_map` (`setgroups` `deny` first) of a process in a
//!   new user namespace, one range each;
//! - `netns_copy`: `unshare(CLONE_NEWNET)` on a fresh thread; `netns_lo_up`: the same and
//!   `lo` set up over rtnetlink (`net::set_link_up`); the kernel frees each namespace later,
//!   on a worker thread (`cleanup_net`), which this does not time;
//! - `seccomp_install`: `seccomp(SECCOMP_SET_MODE_FILTER)` of the default program (docker's
//!   profile for docker's capabilities), on a fresh thread with `no_new_privs`: the kernel's
//!   check and JIT compile of the program.
//!
//! Each needs root and skips with the reason where the host lacks what it needs.
//! `cargo bench --bench pieces [-- FILTER]`

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use contain::cgroup::{CgroupBuilder, Resources};
use contain::mount::{self, Mount};
use contain::namespace::{self, Namespace, Namespaces};
use contain::security::{CapSet, Seccomp};
use criterion::{criterion_group, criterion_main, Criterion};

/// Runs `f` on a new thread and returns what it returns (a piece that changes the calling
/// thread for good — a namespace, a filter — is timed there).
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("bench thread")
}

/// Sums `iters` timings of `one`, each made on a fresh thread.
fn timed_on_threads(
    iters: u64,
    one: impl Fn() -> Duration + Send + Sync + Clone + 'static,
) -> Duration {
    (0..iters).map(|_| on_thread(one.clone())).sum()
}

fn skip(name: &str, why: impl std::fmt::Display) {
    eprintln!("pieces/{name}: skipped: {why}");
}

fn pieces(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        skip("*", "needs root");
        return;
    }
    let image = common::Image::new("pieces");
    let mut g = c.benchmark_group("pieces");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);

    // cgroup: what `Container::resources` does around a start.
    let probe = CgroupBuilder::new(format!("contain-bench-probe-{}", std::process::id()))
        .resources(Resources::new().pids_max(64))
        .create_in_default();
    // Without the pids controller in cgroup v2 (a hybrid host), a group without limits:
    // mkdir and rmdir only.
    let (name, resources) = match probe {
        Ok(probe) => {
            probe.remove(Duration::from_secs(5)).unwrap();
            ("cgroup_create_remove", Resources::new().pids_max(64))
        }
        Err(e) => {
            skip("cgroup_create_remove", e);
            ("cgroup_create_remove_no_controller", Resources::new())
        }
    };
    match CgroupBuilder::new(format!("contain-bench-probe-{}", std::process::id()))
        .resources(resources.clone())
        .create_in_default()
    {
        Err(e) => skip(name, e),
        Ok(probe) => {
            probe.remove(Duration::from_secs(5)).unwrap();
            let mut n = 0u64;
            g.bench_function(name, |b| {
                b.iter(|| {
                    n += 1;
                    let name = format!("contain-bench-{}-{n}", std::process::id());
                    let group = CgroupBuilder::new(name)
                        .resources(resources.clone())
                        .create_in_default()
                        .unwrap();
                    group.remove(Duration::from_secs(5)).unwrap();
                })
            });
        }
    }

    // Mount pieces, each in a mount namespace of its own thread: nothing reaches the host's.
    let lower = image.root();
    let scratch = tempdir("pieces-overlay");
    g.bench_function("overlay_mount", |b| {
        b.iter_custom(|iters| {
            let (lower, scratch) = (lower.clone(), scratch.clone());
            on_thread(move || {
                private_mount_ns();
                let target = scratch.join("merged");
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let upper = scratch.join(format!("upper{i}"));
                    let work = scratch.join(format!("work{i}"));
                    for d in [&upper, &work, &target] {
                        std::fs::create_dir_all(d).unwrap();
                    }
                    let m = Mount::overlay(vec![lower.clone()], &upper, &work, &target);
                    let t = Instant::now();
                    m.mount().unwrap();
                    mount::detach(&target).unwrap();
                    total += t.elapsed();
                    std::fs::remove_dir_all(&upper).unwrap();
                    std::fs::remove_dir_all(&work).unwrap();
                }
                total
            })
        })
    });

    // Why a start detaches once: each `umount2` that detaches a mount waits for an RCU grace
    // period (`synchronize_rcu_expedited` in `namespace_unlock`), whatever it detaches.
    let target = scratch.join("tmpfs");
    std::fs::create_dir_all(&target).unwrap();
    g.bench_function("tmpfs_detach", |b| {
        b.iter_custom(|iters| {
            let target = target.clone();
            on_thread(move || {
                private_mount_ns();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    Mount::tmpfs(&target).mount().unwrap();
                    let t = Instant::now();
                    mount::detach(&target).unwrap();
                    total += t.elapsed();
                }
                total
            })
        })
    });

    g.bench_function("mount_ns_copy", |b| {
        b.iter_custom(|iters| {
            timed_on_threads(iters, || {
                let t = Instant::now();
                namespace::unshare(Namespaces::MOUNT).unwrap();
                t.elapsed()
            })
        })
    });

    let root = image.root();
    g.bench_function("pivot_root", |b| {
        b.iter_custom(|iters| {
            let root = root.clone();
            timed_on_threads(iters, move || {
                private_mount_ns();
                Mount::bind(&root, &root).mount().unwrap();
                std::env::set_current_dir(&root).unwrap();
                let t = Instant::now();
                nix::unistd::pivot_root(".", ".").unwrap();
                nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).unwrap();
                t.elapsed()
            })
        })
    });

    g.bench_function("id_map_write", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| id_map_write()).sum())
    });

    g.bench_function("netns_copy", |b| {
        b.iter_custom(|iters| {
            timed_on_threads(iters, || {
                let t = Instant::now();
                namespace::unshare(Namespaces::NET).unwrap();
                t.elapsed()
            })
        })
    });

    g.bench_function("netns_lo_up", |b| {
        b.iter_custom(|iters| {
            timed_on_threads(iters, || {
                let t = Instant::now();
                namespace::unshare(Namespaces::NET).unwrap();
                let netns = Namespace::current(Namespaces::NET).unwrap();
                contain::net::set_link_up(&netns, "lo").unwrap();
                t.elapsed()
            })
        })
    });

    let program = Seccomp::default_program(CapSet::DOCKER_DEFAULT).unwrap();
    eprintln!(
        "pieces/seccomp_install: the default program has {} instructions",
        program.len()
    );
    g.bench_function("seccomp_install", |b| {
        b.iter_custom(|iters| {
            let program = program.clone();
            timed_on_threads(iters, move || {
                let prog = libc::sock_fprog {
                    len: program.len() as u16,
                    filter: program.as_ptr() as *mut libc::sock_filter,
                };
                // SAFETY: prctl with integer arguments; affects this thread only.
                let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                assert_eq!(rc, 0, "PR_SET_NO_NEW_PRIVS");
                let t = Instant::now();
                // SAFETY: `prog` points at `program`, alive for the call; SockFilter has
                // sock_filter's layout. The filter applies to this thread only (no TSYNC),
                // which ends right after.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0,
                        &prog as *const libc::sock_fprog,
                    )
                };
                let took = t.elapsed();
                assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
                took
            })
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Gives the calling thread a mount namespace of its own in which nothing propagates back.
fn private_mount_ns() {
    namespace::unshare(Namespaces::MOUNT).unwrap();
    mount::make_rprivate("/").unwrap();
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("contain-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Times the writes of one `uid_map` and `gid_map` for a child in a new user namespace.
fn id_map_write() -> Duration {
    // The child makes its user namespace, says so over a pipe and waits for the pipe's end.
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    let (hold_r, hold_w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child calls only async-signal-safe functions (unshare, write, read, _exit).
    let pid = match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: raw syscalls on fds this child owns; ends with _exit.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                let byte = [ok as u8];
                libc::write(ready_w.as_fd().as_raw_fd(), byte.as_ptr().cast(), 1);
                let mut buf = [0u8; 1];
                libc::close(hold_w.as_fd().as_raw_fd());
                libc::read(hold_r.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), 1);
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    drop(hold_r);
    let mut byte = [0u8; 1];
    nix::unistd::read(&ready_r, &mut byte).unwrap();
    assert_eq!(byte[0], 1, "unshare(CLONE_NEWUSER) failed in the child");
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let t = Instant::now();
    std::fs::write(proc.join("setgroups"), "deny").unwrap();
    std::fs::write(proc.join("uid_map"), "0 100000 65536\n").unwrap();
    std::fs::write(proc.join("gid_map"), "0 100000 65536\n").unwrap();
    let took = t.elapsed();
    drop(hold_w);
    nix::sys::wait::waitpid(pid, None).unwrap();
    took
}

criterion_group!(benches, pieces);
criterion_main!(benches);
