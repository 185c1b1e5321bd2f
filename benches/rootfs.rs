//! Container start time with a root filesystem: spawn + wait of `/bin/true` in new mount and
//! PID namespaces, without a rootfs (the baseline), with a busybox image (overlay on a tmpfs,
//! read-only bind) and with the host view.
//!
//! `cargo bench --bench rootfs` (as root; as another user the cases run in a user namespace).
//! The busybox image is built in a temporary directory from a static busybox
//! (`$CONTAIN_BENCH_BUSYBOX`, else /bin/busybox or /usr/bin/busybox).

use std::time::Duration;

mod common;

use common::Image;
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::{Rootfs, RootfsMode};
use criterion::{criterion_group, criterion_main, Criterion};

fn rootfs_benches(c: &mut Criterion) {
    let image = Image::new("rootfs");
    let mut ns = Namespaces::MOUNT | Namespaces::PID | Namespaces::IPC | Namespaces::UTS;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: every case runs in a user namespace");
        ns |= Namespaces::USER;
    }
    let cases: Vec<(&str, Option<Rootfs>)> = vec![
        ("no_rootfs", None),
        ("rootfs_busybox_overlay", Some(Rootfs::new(image.root()))),
        (
            "rootfs_busybox_read_only",
            Some(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly)),
        ),
        ("rootfs_host", Some(Rootfs::host())),
    ];
    let mut g = c.benchmark_group("spawn_wait_true");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    for (name, rootfs) in cases {
        for userns in [false, true] {
            if userns && ns.contains(Namespaces::USER) {
                continue; // already measured
            }
            let mut container = Container::new("/bin/true").namespaces(if userns {
                ns | Namespaces::USER
            } else {
                ns
            });
            if let Some(r) = &rootfs {
                container = container.rootfs(r.clone());
            }
            let id = if userns {
                format!("{name}/userns")
            } else {
                name.to_string()
            };
            // Overlay may be missing (then the case says so and is not measured).
            if let Err(e) = container.spawn().and_then(|mut c| c.wait()) {
                eprintln!("{id}: not measured: {e}");
                continue;
            }
            g.bench_function(id, |b| {
                b.iter(|| {
                    let st = container.spawn().unwrap().wait().unwrap();
                    assert!(st.success());
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, rootfs_benches);
criterion_main!(benches);
