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
use crate::setup;
use crate::sys;
use crate::vm::{Status, Vm, VmOptions};

/// The package whose integration tests run in the guest.
const PACKAGE: &str = "contain";
/// The other package whose integration tests run in the guest when neither a package nor a
/// test is named (contain-oci's, whose cgroup paths need pure cgroup v2).
const OCI_PACKAGE: &str = "contain-oci";

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
    setup::ensure(setup::Scope {
        host: opts.host,
        vm: opts.vm,
    })?;
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
    let (tests, binaries) = build_integration_tests(cargo_opts)?;
    if tests.is_empty() {
        eprintln!("xtask: [vm] package {PACKAGE} has no integration tests (tests/*.rs)");
        return Ok(());
    }
    let examples = build_examples(cargo_opts)?;
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
        let mut executables = vec![test.executable.clone()];
        executables.extend(examples.iter().cloned());
        // The package's binaries (contain-oci's tests run `CARGO_BIN_EXE_contain-oci`).
        executables.extend(binaries.iter().cloned());
        let outcome = vm.run(executables, argv, &test.package_root, &env);
        sys::check_interrupted()?;
        let (passed, detail) = match &outcome {
            Ok(o) => match o.status {
                Status::Exited(0) => (true, String::new()),
                Status::Exited(code) => (false, format!("exit code {code}")),
                Status::TimedOut if o.slow_tests.is_empty() => (false, "timed out".to_string()),
                Status::TimedOut => (
                    false,
                    format!("timed out; still running: {}", o.slow_tests.join(", ")),
                ),
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
/// integration test executables (target kind "test", test profile) and the binaries built
/// with them (kind "bin": what their tests run through `CARGO_BIN_EXE_<name>`). With
/// `--test NAME` in the options, only those test binaries (`--tests` would add every other
/// one); with `--package`/`-p` in them (`-p contain-oci`), that package instead of contain;
/// with neither, contain-oci's tests too.
fn build_integration_tests(cargo_opts: &[OsString]) -> Result<(Vec<TestBinary>, Vec<PathBuf>)> {
    let mut command = cargo();
    command.args(["test", "--no-run"]);
    if !names_package(cargo_opts) {
        command.args(["--package", PACKAGE]);
        if !names_tests(cargo_opts) {
            command.args(["--package", OCI_PACKAGE]);
        }
    }
    if !names_tests(cargo_opts) {
        command.arg("--tests");
    }
    command.args(cargo_opts);
    let messages = cargo_artifacts(command, "[vm] ")?;
    let mut tests: Vec<TestBinary> = messages.iter().filter_map(integration_test).collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    let binaries = messages
        .iter()
        .filter_map(|m| artifact(m, "bin", false))
        .filter_map(|m| Some(PathBuf::from(m.get("executable")?.as_str()?)))
        .collect();
    Ok((tests, binaries))
}

/// Whether the cargo options pick a package (`--package NAME`, `-p NAME`, `--package=NAME`).
fn names_package(cargo_opts: &[OsString]) -> bool {
    cargo_opts.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--package" || a == "-p" || a.starts_with("--package=") || a.starts_with("-p")
    })
}

/// `cargo build --package contain --examples`: the tests of the examples (exit codes, OOM
/// reports) run them from target/<profile>/examples/, so the guest gets them at that path.
/// After the host `cargo test`, which builds the examples too, this is a no-op.
fn build_examples(cargo_opts: &[OsString]) -> Result<Vec<PathBuf>> {
    let mut command = cargo();
    command
        .args(["build", "--package", PACKAGE, "--examples"])
        .args(build_options(cargo_opts));
    let mut examples: Vec<PathBuf> = cargo_artifacts(command, "[vm] ")?
        .iter()
        .filter_map(example)
        .collect();
    examples.sort();
    Ok(examples)
}

/// Run cargo with `--message-format=json` and return its messages, after printing the
/// command as `xtask: TAG cargo ...`. Compiler errors, which JSON mode would swallow, are
/// printed; a failed build is an error.
pub(crate) fn cargo_artifacts(mut command: Command, tag: &str) -> Result<Vec<json::Value>> {
    command.arg("--message-format=json").stdout(Stdio::piped());
    eprintln!("xtask: {tag}{}", cmd::display_as(&command, "cargo"));
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run `{}`", cmd::display(&command)))?;
    let Some(stdout) = child.stdout.take() else {
        bail!("no stdout pipe from cargo");
    };
    let mut messages = Vec::new();
    let mut parse_errors = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        match json::parse(&line) {
            Ok(message) => {
                if let Some(rendered) = error_diagnostic(&message) {
                    eprint!("{rendered}");
                }
                messages.push(message);
            }
            Err(e) => parse_errors.push(format!("{e}: {line}")),
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "`{}` failed ({})",
            cmd::display_as(&command, "cargo"),
            cmd::describe(status)
        );
    }
    if !parse_errors.is_empty() {
        bail!(
            "cannot read cargo's JSON output:\n  {}",
            parse_errors.join("\n  ")
        );
    }
    Ok(messages)
}

/// A compiler artifact of target kind `kind`, in the test profile or not.
pub(crate) fn artifact<'a>(
    message: &'a json::Value,
    kind: &str,
    test: bool,
) -> Option<&'a json::Value> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let kinds = message.get("target")?.get("kind")?.as_array()?;
    if kinds.len() != 1 || kinds[0].as_str()? != kind {
        return None;
    }
    if message.get("profile")?.get("test")?.as_bool()? != test {
        return None;
    }
    Some(message)
}

fn integration_test(message: &json::Value) -> Option<TestBinary> {
    let message = artifact(message, "test", true)?;
    let executable = PathBuf::from(message.get("executable")?.as_str()?);
    let manifest = Path::new(message.get("manifest_path")?.as_str()?);
    let name = message.get("target")?.get("name")?.as_str()?;
    // Another package's tests are named after it: contain-oci/exec beside exec.
    let name = match manifest.parent()?.file_name()?.to_str()? {
        dir if dir == OCI_PACKAGE => format!("{dir}/{name}"),
        _ => name.to_string(),
    };
    Some(TestBinary {
        name,
        executable,
        package_root: manifest.parent()?.to_path_buf(),
    })
}

fn example(message: &json::Value) -> Option<PathBuf> {
    let message = artifact(message, "example", false)?;
    Some(PathBuf::from(message.get("executable")?.as_str()?))
}

/// The cargo test options that also mean something to `cargo build` without changing which
/// targets it builds: profile, features, target, lock-file and job settings.
fn build_options(cargo_opts: &[OsString]) -> Vec<OsString> {
    const FLAGS: [&str; 6] = [
        "--release",
        "--all-features",
        "--no-default-features",
        "--locked",
        "--frozen",
        "--offline",
    ];
    const WITH_VALUE: [&str; 7] = [
        "--profile",
        "--features",
        "-F",
        "--target",
        "--config",
        "-j",
        "--jobs",
    ];
    let mut kept = Vec::new();
    let mut args = cargo_opts.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let name = text.split('=').next().unwrap_or("");
        if FLAGS.contains(&text.as_ref()) {
            kept.push(arg.clone());
        } else if WITH_VALUE.contains(&name) {
            kept.push(arg.clone());
            if !text.contains('=') {
                if let Some(value) = args.next() {
                    kept.push(value.clone());
                }
            }
        }
    }
    kept
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

/// Whether the cargo options pick integration tests by name (`--test NAME`, `--test=NAME`).
fn names_tests(cargo_opts: &[OsString]) -> bool {
    cargo_opts
        .iter()
        .any(|a| a == "--test" || a.to_string_lossy().starts_with("--test="))
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
pub(crate) fn cargo() -> Command {
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
        assert_eq!(found.name, "t");
        let oci = line("test", true).replace("/w/Cargo.toml", "/w/contain-oci/Cargo.toml");
        let found = pick(oci).unwrap();
        assert_eq!(found.name, "contain-oci/t");
        assert_eq!(found.package_root, Path::new("/w/contain-oci"));
        assert!(pick(line("lib", true)).is_none());
        assert!(pick(line("test", false)).is_none());
        assert!(pick(r#"{"reason":"build-finished","success":true}"#.into()).is_none());
    }

    #[test]
    fn picks_plain_examples_only() {
        let line = |test: bool| {
            format!(
                r#"{{"reason":"compiler-artifact","target":{{"kind":["example"],"name":"run"}},"profile":{{"test":{test}}},"executable":"/w/target/debug/examples/run"}}"#
            )
        };
        let pick = |l: String| example(&json::parse(&l).unwrap());
        assert_eq!(
            pick(line(false)).unwrap(),
            Path::new("/w/target/debug/examples/run")
        );
        assert!(pick(line(true)).is_none());
    }

    #[test]
    fn keeps_only_build_options_for_the_examples() {
        let args: Vec<OsString> = [
            "--release",
            "--no-fail-fast",
            "--features",
            "a b",
            "-j=2",
            "--test",
            "x",
            "name",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let kept: Vec<_> = build_options(&args);
        assert_eq!(kept, ["--release", "--features", "a b", "-j=2"]);
    }

    #[test]
    fn a_named_package_replaces_contain() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(names_package(&args(&[
            "-p",
            "contain-oci",
            "--test",
            "update_run"
        ])));
        assert!(names_package(&args(&["--package=contain-oci"])));
        assert!(!names_package(&args(&["--release", "--test", "net"])));
    }

    #[test]
    fn test_names_replace_all_tests() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(names_tests(&args(&["--release", "--test", "net"])));
        assert!(names_tests(&args(&["--test=net"])));
        assert!(!names_tests(&args(&["--release", "--tests"])));
        assert!(!names_tests(&args(&[])));
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
