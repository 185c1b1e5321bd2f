//! What the default seccomp filter (docker's profile) costs at spawn: spawn+wait of /bin/true
//! with `Seccomp::Default`, with the smaller program a container keeping `CAP_SYS_ADMIN` gets,
//! with a one-instruction program (the cost of any filter) and with `Seccomp::Disabled`. The
//! instruction counts of the default programs are printed first.
//!
//! `cargo bench --bench seccomp`

use std::time::Duration;

use contain::process::Container;
use contain::security::{CapSet, Seccomp};
use criterion::{criterion_group, criterion_main, Criterion};

const TRUE: &str = "/bin/true";

fn seccomp_benches(c: &mut Criterion) {
    let admin = CapSet::DOCKER_DEFAULT.with("SYS_ADMIN".parse().unwrap());
    for (name, caps) in [
        ("docker default caps", CapSet::DOCKER_DEFAULT),
        ("+SYS_ADMIN", admin),
    ] {
        let program = Seccomp::default_program(caps).unwrap();
        eprintln!("default filter, {name}: {} instructions", program.len());
    }
    let mut g = c.benchmark_group("spawn_wait_true/seccomp");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    // One instruction (allow everything): what installing any filter costs.
    let allow = vec![contain::security::SockFilter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let cases = [
        ("disabled", Seccomp::Disabled, CapSet::DOCKER_DEFAULT),
        (
            "allow_1_insn",
            Seccomp::Program(allow),
            CapSet::DOCKER_DEFAULT,
        ),
        ("default", Seccomp::Default, CapSet::DOCKER_DEFAULT),
        ("default_sys_admin", Seccomp::Default, admin),
    ];
    for (name, seccomp, caps) in cases {
        let container = Container::new(TRUE).seccomp(seccomp).capabilities(caps);
        g.bench_function(name, |b| {
            b.iter(|| {
                let st = container.spawn().unwrap().wait().unwrap();
                assert!(st.success());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, seccomp_benches);
criterion_main!(benches);
