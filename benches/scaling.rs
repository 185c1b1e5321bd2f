//! How container starts scale: with their count (1000 back to back: does the last hundred
//! cost what the first did?) and with threads (1, 2, 4, ... threads spawning at once:
//! containers per second and the latency tail).
//!
//! `cargo bench --bench scaling` (as root: every namespace; not root: a user namespace only).
//! Options after `--`: `--count N` (default 1000), `--per-thread N` (default 100),
//! `--threads 1,2,4,...` (default powers of two up to twice the CPUs), `--without-net` (no
//! network namespace), `--pool` (each start is a request to a warm `Pool` of the same
//! isolation, twice as many slots as threads, its refill and teardown running beside the
//! requests: the pool's sustained rate, not one request's latency). Not criterion: what is
//! reported is a drift and a tail, which criterion's sampling averages away. Each start is
//! spawn to reaped exit of `/bin/true`.

use std::time::{Duration, Instant};

use contain::namespace::Namespaces;
use contain::pool::Pool;
use contain::process::Container;

const TRUE: &str = "/bin/true";

struct Options {
    count: usize,
    per_thread: usize,
    threads: Vec<usize>,
    /// Leave the network namespace out (its creation and the kernel's deferred cleanup
    /// are the heaviest part of a start).
    without_net: bool,
    /// Start through a warm pool.
    pool: bool,
}

fn options() -> Options {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = Vec::new();
    let mut t = 1;
    while t <= 2 * cpus {
        threads.push(t);
        t *= 2;
    }
    let mut o = Options {
        count: 1000,
        per_thread: 100,
        threads,
        without_net: false,
        pool: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--count" => o.count = value.parse().expect("--count N"),
            "--per-thread" => o.per_thread = value.parse().expect("--per-thread N"),
            "--threads" => {
                o.threads = value
                    .split(',')
                    .map(|n| n.parse().expect("--threads 1,2,4"))
                    .collect()
            }
            "--without-net" => {
                o.without_net = true;
                i += 1;
                continue;
            }
            "--pool" => {
                o.pool = true;
                i += 1;
                continue;
            }
            // cargo bench passes --bench; the rest is ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// What starts the containers: `spawn` of one configuration, or a pool of it.
enum Starter {
    Direct(Box<Container>),
    Pool(Pool),
}

impl Starter {
    /// `namespaces` started directly, or from a pool of `slots`.
    fn new(namespaces: Namespaces, pool: bool, slots: usize) -> Starter {
        match pool {
            false => Starter::Direct(Box::new(Container::new(TRUE).namespaces(namespaces))),
            true => {
                let template = Container::new("unused").namespaces(namespaces | Namespaces::PID);
                let pool = Pool::new(template, slots).expect("a pool");
                assert!(pool.wait_ready(Duration::from_secs(60)).unwrap());
                Starter::Pool(pool)
            }
        }
    }

    /// Spawn to reaped exit of one container.
    fn start(&self) -> Duration {
        let t0 = Instant::now();
        let status = match self {
            Starter::Direct(c) => c.spawn().unwrap().wait().unwrap(),
            Starter::Pool(p) => p.spawn(Container::new(TRUE)).unwrap().wait().unwrap(),
        };
        assert!(status.success(), "{status:?}");
        t0.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(d: &[Duration]) -> Duration {
    d.iter().sum::<Duration>() / d.len().max(1) as u32
}

fn main() {
    let o = options();
    let root = nix::unistd::geteuid().is_root();
    let mut namespaces = if root {
        Namespaces::all() - Namespaces::USER
    } else {
        Namespaces::USER
    };
    if o.without_net {
        namespaces -= Namespaces::NET;
    }
    let container = Starter::new(namespaces, o.pool, 4);
    println!(
        "namespaces: {namespaces:?}{}; {} CPUs; kernel {}",
        if o.pool { ", through a pool" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );

    // 1. Count: the same container started o.count times in a row.
    for _ in 0..10 {
        container.start();
    }
    let times: Vec<Duration> = (0..o.count).map(|_| container.start()).collect();
    let hundred = 100.min(o.count);
    let first = mean(&times[..hundred]);
    let last = mean(&times[o.count - hundred..]);
    println!(
        "count: {} back to back: first {hundred} mean {:.3} ms, last {hundred} mean {:.3} ms, last/first {:.2}",
        o.count,
        ms(first),
        ms(last),
        last.as_secs_f64() / first.as_secs_f64()
    );

    // 2. Threads: each starts o.per_thread containers at once with the others.
    println!("| threads | containers/s | x 1 thread | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut one = 0.0;
    drop(container);
    for &n in &o.threads {
        let container = Starter::new(namespaces, o.pool, 2 * n);
        let container = &container;
        let t0 = Instant::now();
        let mut all: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        (0..o.per_thread)
                            .map(|_| container.start())
                            .collect::<Vec<Duration>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let rate = all.len() as f64 / t0.elapsed().as_secs_f64();
        if n == o.threads[0] {
            one = rate;
        }
        all.sort();
        println!(
            "| {n} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
            rate / one,
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99))
        );
    }
}
