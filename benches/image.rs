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

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

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

criterion_group!(wall, layer_stream);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = layer_stream_cpu
}
criterion_main!(wall, cpu);
