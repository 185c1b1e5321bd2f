//! A start from a warm [`Pool`] against `std::process::Command` and against a cold container
//! start, all spawn + wait of the same static busybox `true`.
//!
//! `cargo bench --bench pool` (as root).
//!
//! - `std_command`: `Command::new(<image>/bin/true).status()`, the process-spawn baseline.
//! - `cold_container`: the pool's template spawned directly: every namespace but user and
//!   time, the busybox rootfs on an overlay, hostname, `lo` up, default security.
//! - `pool/standby/default_security` and `pool/standby/unrestricted`: [`Pool::spawn`] of
//!   `/bin/true` into a ready slot whose standby process serves it (a pool whose template has
//!   the request's settings), with the default security (docker's capabilities, its seccomp
//!   profile, no_new_privs) and with [`Security::unrestricted`] (no filter).
//! - `pool/entered/default_security`: the same request with a working directory the
//!   template lacks, which the standby does not serve: started with `Container::enter` into
//!   the slot, with the whole process setup on the request's path.
//!
//! Before each timed request the pool is brought to rest (`wait_ready`, not timed), so each
//! one measures a start from a warm pool with no refill or teardown running beside it; the
//! refill and teardown the request causes run after its timing stops.
//!
//! The busybox is `$CONTAIN_BENCH_BUSYBOX`, else /bin/busybox or /usr/bin/busybox (static:
//! `apt-get install busybox-static`).

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

mod common;

use common::Image;
use contain::namespace::Namespaces;
use contain::net::Net;
use contain::pool::Pool;
use contain::process::Container;
use contain::rootfs::Rootfs;
use contain::security::Security;
use criterion::{criterion_group, criterion_main, Criterion};

fn template(image: &Image, program: &str) -> Container {
    Container::new(program)
        .namespaces(Namespaces::all() - Namespaces::USER - Namespaces::TIME)
        .rootfs(Rootfs::new(image.root()))
        .hostname("pooled")
        .network(Net::None)
}

fn pool_benches(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("pool: not measured: needs root");
        return;
    }
    let image = Image::new("pool");
    let host_true = image.root().join("bin/busybox");
    let cold = template(&image, "/bin/true");
    let mut g = c.benchmark_group("pool_spawn_wait_true");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    g.bench_function("std_command", |b| {
        b.iter(|| {
            let st = std::process::Command::new(&host_true)
                .arg0("true")
                .status()
                .unwrap();
            assert!(st.success());
        })
    });
    g.bench_function("cold_container", |b| {
        b.iter(|| assert!(cold.spawn().unwrap().wait().unwrap().success()))
    });
    for (name, security, cwd) in [
        ("pool/standby/default_security", Security::default(), None),
        ("pool/standby/unrestricted", Security::unrestricted(), None),
        (
            "pool/entered/default_security",
            Security::default(),
            Some("/"),
        ),
    ] {
        let pool =
            Pool::new(template(&image, "unused").security(security.clone()), 4).expect("a pool");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    assert!(pool.wait_ready(Duration::from_secs(60)).unwrap());
                    let mut request = Container::new("/bin/true").security(security.clone());
                    if let Some(cwd) = cwd {
                        request = request.current_dir(cwd);
                    }
                    let start = Instant::now();
                    let st = pool.spawn(request).unwrap().wait().unwrap();
                    total += start.elapsed();
                    assert!(st.success());
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pool_benches);
criterion_main!(benches);
