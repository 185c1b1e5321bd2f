//! `cargo xtask test`: the host suite, then each integration test binary in its own guest.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cache::workspace_root;
use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::json;
use crate::sys;
use crate::vm::{Status, Vm, VmOptions};

/// The package whose integration tests run in the guest.
const PACKAGE: &str = "contain";

pub struct TestOptions {
    pub host: bool,
    pub vm: bool,
    pub vm_options: VmOptions,
    /// Arguments for `cargo test`, as after `cargo test --workspace`.
    pub cargo_args: Vec<OsString>,
}

/// One line of the summary.
struct Run {
    place: &'static str,
    name: String,
    passed: bool,
    detail: String,
    time: Duration,
}

/// Returns the process exit code: 0 when every run passed.
pub fn run(opts: &TestOptions) -> Result<u8> {
    let (cargo_opts, harness_args) = split_cargo_args(&opts.cargo_args);
    let mut runs = Vec::new();

    if opts.host {
        let mut command = cargo();
        command.args(["test", "--workspace"]).args(&opts.cargo_args);
        eprintln!("xtask: [host] {}", cmd::display_as(&command, "cargo"));
        let start = Instant::now();
        let status = cmd::status(&mut command)?;
        sys::check_interrupted()?;
        runs.push(Run {
            place: "host",
            name: "cargo test --workspace".into(),
            passed: status.success(),
            detail: if status.success() {
                String::new()
            } else {
                cmd::describe(status)
            },
            time: start.elapsed(),
        });
    }

    if opts.vm {
        let start = Instant::now();
        if let Err(e) = vm_runs(opts, cargo_opts, harness_args, &mut runs) {
            sys::check_interrupted()?;
            eprintln!("xtask: [vm] error: {e}");
            runs.push(Run {
                place: "vm",
                name: "setup".into(),
                passed: false,
                detail: e.to_string(),
                time: start.elapsed(),
            });
        }
    }

    let passed = runs.iter().filter(|r| r.passed).count();
    let failed = runs.len() - passed;
    println!();
    println!("xtask: summary (one run: the host `cargo test`, or one test binary in one VM)");
    for r in &runs {
        let verdict = if r.passed { "ok" } else { "FAILED" };
        let detail = match r.detail.lines().next() {
            Some(first) if !first.is_empty() => format!(" ({first})"),
            _ => String::new(),
        };
        println!(
            "  {verdict:<6} {:<4} {}{detail}  [{:.1} s]",
            r.place,
            r.name,
            r.time.as_secs_f64()
        );
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

fn vm_runs(
    opts: &TestOptions,
    cargo_opts: &[OsString],
    harness_args: &[OsString],
    runs: &mut Vec<Run>,
) -> Result<()> {
    let tests = build_integration_tests(cargo_opts)?;
    if tests.is_empty() {
        eprintln!("xtask: [vm] package {PACKAGE} has no integration tests (tests/*.rs)");
        return Ok(());
    }
    let vm = Vm::prepare(opts.vm_options.clone())?;
    eprintln!(
        "xtask: [vm] kernel {}, accelerator {}",
        vm.kernel().display(),
        vm.accel_name()
    );
    let total = tests.len();
    for (n, test) in tests.into_iter().enumerate() {
        let label = format!("[vm {}/{total}] {}", n + 1, test.name);
        eprintln!("xtask: {label}: {}", test.executable.display());
        let mut argv = vec![test.executable.clone().into_os_string()];
        argv.extend(harness_args.iter().cloned());
        // As cargo does: the package root as cwd and CARGO_MANIFEST_DIR.
        let env = [
            (
                "CARGO_MANIFEST_DIR".to_string(),
                test.package_root.clone().into_os_string(),
            ),
            ("CARGO_PKG_NAME".to_string(), PACKAGE.into()),
        ];
        let start = Instant::now();
        let outcome = vm.run(
            vec![test.executable.clone()],
            argv,
            &test.package_root,
            &env,
        );
        sys::check_interrupted()?;
        let (passed, detail) = match &outcome {
            Ok(o) => match o.status {
                Status::Exited(0) => (true, String::new()),
                Status::Exited(code) => (false, format!("exit code {code}")),
                Status::TimedOut => (false, "timed out".to_string()),
                Status::Unreported => (false, "the guest reported no exit status".to_string()),
            },
            Err(e) => (false, e.to_string()),
        };
        let timing = match &outcome {
            Ok(o) => {
                let boot = o
                    .boot
                    .map(|b| format!(", boot {:.1} s", b.as_secs_f64()))
                    .unwrap_or_default();
                format!("{boot}, qemu {:.1} s", o.total.as_secs_f64())
            }
            Err(_) => String::new(),
        };
        eprintln!(
            "xtask: {label}: {}{timing}, total {:.1} s",
            if passed { "ok" } else { "FAILED" },
            start.elapsed().as_secs_f64()
        );
        if let Err(e) = &outcome {
            eprintln!("xtask: {label}: error: {e}");
        }
        runs.push(Run {
            place: "vm",
            name: test.name,
            passed,
            detail,
            time: start.elapsed(),
        });
    }
    Ok(())
}

struct TestBinary {
    name: String,
    executable: PathBuf,
    package_root: PathBuf,
}

/// `cargo test --package contain --tests --no-run --message-format=json`, keeping the
/// integration test executables (target kind "test", test profile).
fn build_integration_tests(cargo_opts: &[OsString]) -> Result<Vec<TestBinary>> {
    let mut command = cargo();
    command
        .args(["test", "--package", PACKAGE, "--tests", "--no-run"])
        .arg("--message-format=json")
        .args(cargo_opts)
        .stdout(Stdio::piped());
    eprintln!("xtask: [vm] {}", cmd::display_as(&command, "cargo"));
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run `{}`", cmd::display(&command)))?;
    let Some(stdout) = child.stdout.take() else {
        bail!("no stdout pipe from cargo");
    };
    let mut tests = Vec::new();
    let mut parse_errors = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        match json::parse(&line) {
            Ok(message) => {
                if let Some(test) = integration_test(&message) {
                    tests.push(test);
                } else if let Some(rendered) = error_diagnostic(&message) {
                    // JSON mode prints no diagnostics; show the errors, the reason it failed.
                    eprint!("{rendered}");
                }
            }
            Err(e) => parse_errors.push(format!("{e}: {line}")),
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "`{}` failed ({})",
            cmd::display(&command),
            cmd::describe(status)
        );
    }
    if !parse_errors.is_empty() {
        bail!(
            "cannot read cargo's JSON output:\n  {}",
            parse_errors.join("\n  ")
        );
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

fn integration_test(message: &json::Value) -> Option<TestBinary> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = message.get("target")?;
    let kind = target.get("kind")?.as_array()?;
    if kind.len() != 1 || kind[0].as_str()? != "test" {
        return None;
    }
    if !message.get("profile")?.get("test")?.as_bool()? {
        return None;
    }
    let executable = PathBuf::from(message.get("executable")?.as_str()?);
    let manifest = Path::new(message.get("manifest_path")?.as_str()?);
    Some(TestBinary {
        name: target.get("name")?.as_str()?.to_string(),
        executable,
        package_root: manifest.parent()?.to_path_buf(),
    })
}

fn error_diagnostic(message: &json::Value) -> Option<&str> {
    if message.get("reason")?.as_str()? != "compiler-message" {
        return None;
    }
    let diagnostic = message.get("message")?;
    if diagnostic.get("level")?.as_str()? != "error" {
        return None;
    }
    diagnostic.get("rendered")?.as_str()
}

/// `[cargo options...] -- [harness args...]`: the options also shape the VM build, the
/// harness arguments also go to each binary in the guest.
fn split_cargo_args(args: &[OsString]) -> (&[OsString], &[OsString]) {
    match args.iter().position(|a| a == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[]),
    }
}

/// The cargo that runs us (so toolchain overrides hold), from the workspace root.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_integration_tests_only() {
        let line = |kind: &str, test: bool| {
            format!(
                r#"{{"reason":"compiler-artifact","manifest_path":"/w/Cargo.toml","target":{{"kind":["{kind}"],"name":"t"}},"profile":{{"test":{test}}},"executable":"/w/target/debug/deps/t-1"}}"#
            )
        };
        let pick = |l: String| integration_test(&json::parse(&l).unwrap());
        let found = pick(line("test", true)).unwrap();
        assert_eq!(found.executable, Path::new("/w/target/debug/deps/t-1"));
        assert_eq!(found.package_root, Path::new("/w"));
        assert!(pick(line("lib", true)).is_none());
        assert!(pick(line("test", false)).is_none());
        assert!(pick(r#"{"reason":"build-finished","success":true}"#.into()).is_none());
    }

    #[test]
    fn splits_cargo_options_from_harness_args() {
        let args: Vec<OsString> = ["--release", "--", "x", "--nocapture"]
            .iter()
            .map(OsString::from)
            .collect();
        let (cargo, harness) = split_cargo_args(&args);
        assert_eq!(cargo, &args[..1]);
        assert_eq!(harness, &args[2..]);
    }
}
