//! Container start time with a root filesystem: spawn + wait of `/bin/true` in new mount and
//! PID namespaces, without a rootfs (the baseline), with a busybox image (overlay on a tmpfs,
//! read-only bind) and with the host view.
//!
//! `cargo bench --bench rootfs` (as root; as another user the cases run in a user namespace).
//! The busybox image is built in a temporary directory from a static busybox
//! (`$CONTAIN_BENCH_BUSYBOX`, else /bin/busybox or /usr/bin/busybox).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::{Rootfs, RootfsMode};
use criterion::{criterion_group, criterion_main, Criterion};

/// A busybox image, removed on drop.
struct Image(PathBuf);

impl Image {
    fn new() -> Image {
        let busybox = std::env::var("CONTAIN_BENCH_BUSYBOX")
            .ok()
            .into_iter()
            .chain(["/bin/busybox".into(), "/usr/bin/busybox".into()])
            .find(|p| std::path::Path::new(p).is_file())
            .expect("a static busybox (apt-get install busybox-static)");
        let dir = std::env::temp_dir().join(format!("contain-bench-rootfs-{}", std::process::id()));
        let root = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "true"] {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        Image(dir)
    }

    fn root(&self) -> PathBuf {
        self.0.join("rootfs")
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rootfs_benches(c: &mut Criterion) {
    let image = Image::new();
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
