//! Spawn latency: `std::process::Command` against `contain`'s spawn+wait of /bin/true, with no
//! namespace, each namespace alone and all of them, at a parent RSS of 10 MiB, 256 MiB and 1 GiB.
//!
//! `cargo bench --bench spawn` (as root: namespaces other than USER need it).

use std::hint::black_box;
use std::time::Duration;

use contain::namespace::Namespaces;
use contain::process::Container;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const TRUE: &str = "/bin/true";

/// Keeps `mib` MiB allocated and every page touched, so that they count in RSS.
fn ballast(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for page in v.chunks_mut(4096) {
        page[0] = 1;
    }
    v
}

fn spawn_benches(c: &mut Criterion) {
    let root = nix::unistd::geteuid().is_root();
    let mut cases: Vec<(String, Namespaces)> = vec![("none".into(), Namespaces::empty())];
    if root {
        for kind in Namespaces::all().iter() {
            cases.push((kind.proc_name().unwrap_or("?").to_string(), kind));
        }
        cases.push(("all".into(), Namespaces::all()));
    } else {
        eprintln!("not root: only the user namespace is measured");
        cases.push(("user".into(), Namespaces::USER));
    }

    for rss_mib in [10usize, 256, 1024] {
        let ballast = ballast(rss_mib);
        let mut g = c.benchmark_group(format!("spawn_wait_true/rss_{rss_mib}MiB"));
        g.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30);
        g.bench_function("std_command", |b| {
            b.iter(|| {
                let st = std::process::Command::new(TRUE).status().unwrap();
                assert!(st.success());
            })
        });
        for (name, ns) in &cases {
            let container = Container::new(TRUE).namespaces(*ns);
            g.bench_with_input(BenchmarkId::new("contain", name), ns, |b, _| {
                b.iter(|| {
                    let st = container.spawn().unwrap().wait().unwrap();
                    assert!(st.success());
                })
            });
        }
        g.finish();
        black_box(&ballast);
    }
}

criterion_group!(benches, spawn_benches);
criterion_main!(benches);
