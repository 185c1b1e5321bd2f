//! How long a kill that leaves nothing takes: from `Child::kill_container()` to the `Child`
//! dropped, for a container of 200 processes (a shell and 199 sleeps) in a new PID namespace,
//! with a cgroup of its own (`cgroup.kill`, wait for `populated 0`, reap, `rmdir`) and
//! without one (SIGKILL to the namespace's init: the kernel kills and reaps the rest before
//! the init can be reaped).
//!
//! Spawning the container and waiting for its "ready" line are outside the measurement
//! (`iter_custom`). `cargo bench --bench kill`, as root (PID namespaces need it); in the qemu
//! guest: `cargo bench --bench kill --no-run`, then
//! `cargo xtask vm --files <bench binary> -- <bench binary> --bench`.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use contain::cgroup::Resources;
use contain::namespace::Namespaces;
use contain::process::{Child, Container, Stdio};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

/// Processes in the container: the shell and its sleeps.
const PROCESSES: usize = 200;

fn container(cgroup: bool) -> Container {
    let script = format!(
        "i=1; while [ $i -lt {PROCESSES} ]; do sleep 1000 >/dev/null & i=$((i+1)); done; \
         echo ready; wait"
    );
    let c = Container::new("sh")
        .args(["-c", &script])
        .namespaces(Namespaces::PID)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null);
    if cgroup {
        c.resources(Resources::new())
    } else {
        c
    }
}

/// Spawns the container and waits until all its processes run.
fn ready(c: &Container) -> contain::Result<Child> {
    let mut child = c.spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout piped"))
        .read_line(&mut line)
        .expect("read the ready line");
    assert_eq!(line.trim(), "ready", "the container did not start");
    Ok(child)
}

fn kill_benches(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: kill benches: PID namespaces need root");
        return;
    }
    let mut cases = Vec::new();
    match ready(&container(true)) {
        Ok(mut probe) => {
            probe.kill_container().expect("kill the probe");
            cases.push(("cgroup_kill", true));
        }
        Err(e) => eprintln!("skipped: kill/cgroup_kill: no cgroup v2 group can be made here: {e}"),
    }
    cases.push(("pid_namespace", false));

    let mut g = c.benchmark_group(format!("kill_container_and_drop/{PROCESSES}_processes"));
    // Each iteration spawns 200 processes first (seconds in the TCG guest): ten samples of
    // one iteration each.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(10));
    for (name, cgroup) in cases {
        let c = container(cgroup);
        // Every measured kill, warm-up included, for the median printed below (criterion's
        // own summary gives the mean and the median's confidence interval).
        let mut each = Vec::new();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let mut child = ready(&c).expect("spawn");
                    let start = Instant::now();
                    child.kill_container().expect("kill_container");
                    drop(child);
                    let one = start.elapsed();
                    each.push(one);
                    took += one;
                }
                took
            })
        });
        each.sort_unstable();
        if let Some(median) = each.get(each.len() / 2) {
            eprintln!(
                "kill_container_and_drop/{PROCESSES}_processes/{name}: median {:.2} ms of {} \
                 kills (min {:.2} ms, max {:.2} ms)",
                median.as_secs_f64() * 1e3,
                each.len(),
                each[0].as_secs_f64() * 1e3,
                each[each.len() - 1].as_secs_f64() * 1e3,
            );
        }
    }
    g.finish();
}

criterion_group!(benches, kill_benches);
criterion_main!(benches);
