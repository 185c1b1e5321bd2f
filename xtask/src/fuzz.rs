//! `cargo xtask fuzz`: every fuzz target of `fuzz/` (cargo-fuzz, libFuzzer) for a while each,
//! on the stable toolchain (`cargo fuzz build --sanitizer none`), one after another, and a
//! table of what each did.
//!
//! Each target's corpus is `fuzz/corpus/TARGET` (kept between runs, ignored by git), seeded
//! from `fuzz/seeds/TARGET` (committed). A crash leaves its input in `fuzz/artifacts/TARGET/`
//! and fails the command. Targets that write files (`layer`, `in_root`) do so under a scratch
//! directory made here and removed afterwards (`CONTAIN_FUZZ_SCRATCH`), in a mount namespace
//! where everything but that directory, the corpus and the artifacts is read-only
//! (`CONTAIN_FUZZ_WRITABLE`, fuzz/fuzz_targets/common/confine.rs).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::clients::WorkDir;
use crate::cmd;
use crate::error::{bail, Context, Result};

/// `cargo xtask fuzz` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Seconds per target.
    pub seconds: u32,
    /// The targets to run; all when empty.
    pub targets: Vec<String>,
}

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options {
        seconds: 60,
        targets: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--seconds") => {
                i += 1;
                let v = args.get(i).and_then(|v| v.to_str()).unwrap_or("");
                opts.seconds = match v.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => bail!("--seconds takes a whole number of at least 1, not {v:?}"),
                };
            }
            Some(t) if !t.starts_with('-') => opts.targets.push(t.to_string()),
            _ => bail!(
                "unknown argument {} (see `cargo xtask help`)",
                args[i].to_string_lossy()
            ),
        }
        i += 1;
    }
    Ok(opts)
}

/// One target's run.
struct Outcome {
    target: String,
    seconds: f64,
    /// Inputs executed (libFuzzer's `stat::number_of_executed_units`).
    execs: Option<u64>,
    /// Files in the corpus afterwards.
    corpus: usize,
    /// `None`: passed; else what went wrong (and where the input is).
    failure: Option<String>,
}

pub fn run(opts: &Options) -> Result<u8> {
    let root = crate::cache::workspace_root();
    let fuzz = root.join("fuzz");
    ensure_cargo_fuzz()?;
    let all = list_targets(&fuzz)?;
    let targets = if opts.targets.is_empty() {
        all.clone()
    } else {
        for t in &opts.targets {
            if !all.contains(t) {
                bail!("no fuzz target {t:?}: the targets are {}", all.join(", "));
            }
        }
        opts.targets.clone()
    };
    eprintln!("xtask: building the fuzz targets (cargo fuzz build --sanitizer none -O)");
    let status = cmd::status(
        Command::new("cargo")
            .args(["fuzz", "build", "--sanitizer", "none", "-O"])
            .current_dir(&fuzz),
    )?;
    if !status.success() {
        bail!("cargo fuzz build: {}", cmd::describe(status));
    }
    let bin_dir = fuzz.join("target").join(host_triple()?).join("release");
    let scratch = WorkDir::new("fuzz")?;
    let mut outcomes = Vec::new();
    for target in &targets {
        let outcome = run_target(&fuzz, &bin_dir, target, opts.seconds, scratch.path());
        outcomes.push(outcome?);
    }
    drop(scratch);

    println!("| target | seconds | inputs run | corpus files | result |");
    println!("|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {:.0} | {} | {} | {} |",
            o.target,
            o.seconds,
            o.execs.map_or("?".into(), |n| n.to_string()),
            o.corpus,
            o.failure.as_deref().unwrap_or("pass")
        );
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    eprintln!(
        "xtask: {} fuzz targets, {} seconds each: {} passed, {failed} failed",
        outcomes.len(),
        opts.seconds,
        outcomes.len() - failed
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

fn run_target(
    fuzz: &Path,
    bin_dir: &Path,
    target: &str,
    seconds: u32,
    scratch: &Path,
) -> Result<Outcome> {
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("mkdir {}", corpus.display()))?;
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("mkdir {}", artifacts.display()))?;
    let mut command = Command::new(bin_dir.join(target));
    command
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .env("CONTAIN_FUZZ_SCRATCH", scratch)
        // The targets that write as root (layer, in_root) make everything else read-only.
        .env(
            "CONTAIN_FUZZ_WRITABLE",
            std::env::join_paths([scratch, corpus.as_path(), artifacts.as_path()])
                .context("CONTAIN_FUZZ_WRITABLE")?,
        )
        .current_dir(fuzz)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let seeds = fuzz.join("seeds").join(target);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("run {}", cmd::display(&command)))?;
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let execs = log
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok());
    let corpus_files = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
    let failure = (!out.status.success()).then(|| {
        let input = log
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .unwrap_or("no input saved")
            .trim()
            .to_string();
        // The panic message, or libFuzzer's own line about the failure.
        let why = log
            .lines()
            .find(|l| l.contains("panicked at") || l.starts_with("==") && l.contains("ERROR"))
            .unwrap_or("")
            .trim()
            .to_string();
        eprintln!("{log}");
        format!("FAIL ({}): {why} {input}", cmd::describe(out.status))
    });
    Ok(Outcome {
        target: target.to_string(),
        seconds,
        execs,
        corpus: corpus_files,
        failure,
    })
}

/// The `[[bin]]` names of fuzz/Cargo.toml, in order.
fn list_targets(fuzz: &Path) -> Result<Vec<String>> {
    let manifest = fuzz.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("read {}", manifest.display()))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let (true, Some(v)) = (in_bin, line.strip_prefix("name")) {
            let name = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            targets.push(name.to_string());
        }
    }
    if targets.is_empty() {
        bail!("no [[bin]] targets in {}", manifest.display());
    }
    Ok(targets)
}

/// Installs cargo-fuzz when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    let status = cmd::status(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    if !status.success() {
        bail!("cargo install cargo-fuzz: {}", cmd::describe(status));
    }
    Ok(())
}

/// The host's target triple, where cargo-fuzz puts the binaries.
fn host_triple() -> Result<String> {
    let out = cmd::stdout(Command::new("rustc").arg("-vV"))?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| crate::error::Error::new("rustc -vV printed no host line"))
}
