//! Layer verification throughput: one pass over a ~100 MB layer that decompresses it and
//! hashes both the blob and the tar (sha256 twice), as an import streams each layer
//! (`contain::image::bench_layer_stream`, the importer's `LayerStream`).
//!
//! `cargo bench --bench image -- layer_stream`. The layer is a tar of the first ~100 MB of
//! `$CONTAIN_BENCH_TREE`, else of `$CARGO_TARGET_DIR/debian-bookworm-minbase`, else of
//! synthetic data (text and random bytes); it is compressed once with gzip (level 6, as
//! `docker`/`umoci` write) and zstd (level 3). Throughput is in bytes of the tar.
//!
//! Two groups: `layer_stream` in wall-clock time, and `layer_stream_cpu` in the thread's CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`), which stays meaningful on a machine busy with other work.
//!
//! A third, `image_start` (`cargo bench --bench image -- image_start`, as root; otherwise in
//! a user namespace): spawn + wait of `/bin/true` in new mount, PID, IPC and UTS namespaces
//! on a busybox tree (a static busybox from `$CONTAIN_BENCH_BUSYBOX`, /bin/busybox or
//! /usr/bin/busybox) as a plain directory (`Rootfs::new(dir)`: overlay, one lower) against
//! the same tree imported as a three-layer image into a store in a temporary directory, made
//! once per run (`image.rootfs()`: three lowers; `Image::container`: the image config
//! applied too). Goal: the image within 1.2x of the directory.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contain::image::{ImageCommand, ImageRef, Store};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::Rootfs;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};

const TARGET: usize = 100 << 20;

fn tree() -> Option<PathBuf> {
    std::env::var_os("CONTAIN_BENCH_TREE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|t| PathBuf::from(t).join("debian-bookworm-minbase"))
        })
        .filter(|p| p.is_dir())
}

/// About 100 MB of tar: a real tree if there is one, else synthetic.
fn layer_tar() -> Vec<u8> {
    if let Some(dir) = tree() {
        let out = Command::new("tar")
            .args(["--sort=name", "-C"])
            .arg(&dir)
            .args(["-cf", "-", "."])
            .output()
            .expect("run tar");
        if !out.stdout.is_empty() {
            let mut v = out.stdout;
            // Cut at a header boundary and close the archive with two zero blocks.
            v.truncate(TARGET.min(v.len()) & !511);
            v.extend([0u8; 1024]);
            eprintln!(
                "layer_stream: {} MB of tar from {}",
                v.len() >> 20,
                dir.display()
            );
            return v;
        }
    }
    eprintln!("layer_stream: synthetic data (set CONTAIN_BENCH_TREE to a directory)");
    let mut v = Vec::with_capacity(TARGET);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while v.len() < TARGET {
        v.extend_from_slice(b"usr/share/doc/package/changelog: the quick brown fox 0123456789\n");
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v
}

fn diff_id(tar: &[u8]) -> String {
    let h = Sha256::digest(tar);
    let mut s = String::from("sha256:");
    for b in h {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The calling thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the live local `ts`.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Criterion measurement: CPU time of the benchmark thread.
struct CpuTime;

/// Formats nanoseconds of CPU time, and bytes per CPU second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e6;
        }
        "ms (cpu)"
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let bytes = match t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => *b as f64,
            _ => 0.0,
        };
        for v in values {
            *v = bytes * (1e9 / *v) / (1024.0 * 1024.0);
        }
        "MiB/cpu-s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// The layer as stored three ways: (name, blob), and the tar's diff_id.
fn inputs() -> (Vec<(&'static str, Vec<u8>)>, String, u64) {
    let tar = layer_tar();
    let id = diff_id(&tar);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
    eprintln!(
        "layer_stream: tar {} B, gzip {} B, zstd {} B",
        tar.len(),
        gz.len(),
        zst.len()
    );
    let n = tar.len() as u64;
    (vec![("gzip", gz), ("zstd", zst), ("plain", tar)], id, n)
}

fn run<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let (blobs, id, n) = inputs();
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(n));
    for (name, raw) in &blobs {
        g.bench_function(*name, |b| {
            b.iter(|| contain::image::bench_layer_stream(raw, &id).unwrap())
        });
    }
    g.finish();
}

fn layer_stream(c: &mut Criterion) {
    run(c, "layer_stream");
}

fn layer_stream_cpu(c: &mut Criterion<CpuTime>) {
    run(c, "layer_stream_cpu");
}

/// A temporary directory, removed on drop.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    diff_id(bytes)["sha256:".len()..].to_owned()
}

/// Writes `bytes` as a blob of the layout `dir`; returns its descriptor's JSON.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!(
        r#"{{"mediaType":"{media_type}","digest":"sha256:{hex}","size":{}}}"#,
        bytes.len()
    )
}

/// A busybox tree in `root`: bin/busybox, bin/{sh,true} links to it, empty mount points.
fn busybox_tree(root: &Path) {
    let busybox = std::env::var("CONTAIN_BENCH_BUSYBOX")
        .ok()
        .into_iter()
        .chain(["/bin/busybox".into(), "/usr/bin/busybox".into()])
        .find(|p| Path::new(p).is_file())
        .expect("a static busybox (apt-get install busybox-static)");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "true"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
}

/// An OCI layout in `dir` (tag `bench`) of `tree` as three gzip layers: bin/busybox, the
/// links, the rest.
fn layout_of(tree: &Path, dir: &Path) {
    use std::io::Write;
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let parts: [&[&str]; 3] = [
        &["--no-recursion", "bin", "bin/busybox"],
        &["--no-recursion", "bin/sh", "bin/true"],
        &["--no-recursion", "proc", "sys", "dev", "tmp", "etc"],
    ];
    let (mut layers, mut diffs) = (Vec::new(), Vec::new());
    for args in parts {
        let out = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(tree)
            .args(["-cf", "-"])
            .args(args)
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar: {:?}", out);
        diffs.push(format!(r#""{}""#, diff_id(&out.stdout)));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&out.stdout).unwrap();
        layers.push(put_blob(
            dir,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &e.finish().unwrap(),
        ));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diffs.join(",")
    );
    let config = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.as_bytes(),
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{config},"layers":[{}]}}"#,
        layers.join(",")
    );
    let manifest = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    let manifest = manifest.trim_end_matches('}');
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{manifest},"annotations":{{"org.opencontainers.image.ref.name":"bench"}}}}]}}"#
        ),
    )
    .unwrap();
}

fn image_start(c: &mut Criterion) {
    let temp =
        Temp(std::env::temp_dir().join(format!("contain-bench-image-{}", std::process::id())));
    let tree = temp.0.join("tree");
    busybox_tree(&tree);
    let layout = temp.0.join("layout");
    layout_of(&tree, &layout);
    let store = Store::open(temp.0.join("store")).unwrap();
    let image = store
        .import(
            &ImageRef::Layout {
                dir: layout,
                tag: Some("bench".into()),
            },
            None,
        )
        .unwrap();
    let mut ns = Namespaces::MOUNT | Namespaces::PID | Namespaces::IPC | Namespaces::UTS;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: every case runs in a user namespace");
        ns |= Namespaces::USER;
    }
    let cases = [
        (
            "plain_dir",
            Container::new("/bin/true").rootfs(Rootfs::new(&tree)),
        ),
        (
            "image_rootfs",
            Container::new("/bin/true").rootfs(image.rootfs().unwrap()),
        ),
        (
            "image_container",
            image.container(&ImageCommand::args(["/bin/true"])).unwrap(),
        ),
    ];
    let cases: Vec<(&str, Container)> = cases
        .into_iter()
        .map(|(name, c)| (name, c.namespaces(ns)))
        .filter(|(name, c)| match c.spawn().and_then(|mut c| c.wait()) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("{name}: not measured: {e}");
                false
            }
        })
        .collect();
    let mut g = c.benchmark_group("image_start");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let start = |c: &Container| {
        let st = c.spawn().unwrap().wait().unwrap();
        assert!(st.success());
    };
    for (name, container) in &cases {
        g.bench_function(*name, |b| b.iter(|| start(container)));
    }
    g.finish();
    // Criterion measures the cases one after the other, so load from elsewhere that comes
    // and goes skews their ratio: measure them again in turn, round after round, and print
    // the ratio of medians to the plain directory.
    if cases.len() > 1 && cases[0].0 == "plain_dir" {
        let rounds = 200;
        let mut times = vec![Vec::with_capacity(rounds); cases.len()];
        for _ in 0..rounds {
            for (i, (_, container)) in cases.iter().enumerate() {
                let t = std::time::Instant::now();
                start(container);
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let medians: Vec<f64> = times.iter_mut().map(median).collect();
        for ((name, _), m) in cases.iter().zip(&medians) {
            eprintln!(
                "image_start (interleaved, {rounds} rounds): {name}: median {m:.2} ms, {:.2}x plain_dir",
                m / medians[0]
            );
        }
    }
    drop(image);
    drop(store);
}

criterion_group!(wall, layer_stream);
criterion_group!(start, image_start);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = layer_stream_cpu
}
criterion_main!(wall, cpu, start);
