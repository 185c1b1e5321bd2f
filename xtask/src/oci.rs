//! `cargo xtask oci-validate`: the opencontainers/runtime-tools validation suite
//! (`validation/*/*.go`, each a TAP-printing test program) against one OCI runtime binary,
//! by default this workspace's `contain-oci` as `cargo xtask build-oci` builds it; one line per test file and the
//! totals.
//!
//! The suite's source is not part of this repository and never enters it: it is expected as
//! a plain source tree at `$RTT/src` (default `/tmp/rtt/src`), extracted from a git copy of
//! the public repository at commit 260e151, the newest that builds with Debian 12's go 1.19
//! from its vendored dependencies. The programs are built there with `GOFLAGS=-mod=vendor`
//! and no network (`GOPROXY=off`), into `$RTT/bin/NAME.t`.
//!
//! The files run in private mount, cgroup, ipc, uts and net namespaces (`unshare(1)` starts a
//! second xtask in them): `linux_ns_itype` starts a container with no namespaces of its own,
//! whose proc/sys/dev/mqueue mounts would otherwise land in the host's mount namespace. The
//! cgroup namespace is rooted at our own cgroup, and cgroup v1 hierarchies mounted with
//! another root get a mount of that re-rooted view on top (in the private mount namespace
//! only), so every container cgroup, whatever path the runtime or a test picks, is created
//! below our own cgroup. The runtime is called through a wrapper script that passes
//! `--root <private state dir>` and, with `--oci-version`, rewrites a bundle's `ociVersion`
//! on `create` (crun 1.8 rejects any version without "1.0"; the suite writes 1.3.0).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::setup;
use crate::sys;
use crate::test::{artifact, cargo, cargo_artifacts};

/// The workspace package that is scored unless `--runtime` names another binary.
const PACKAGE: &str = "contain-oci";
/// The runtime-tools commit the harness is written against (the setup hint names it).
const COMMIT: &str = "260e151";
/// Set in the environment of the second xtask, the one inside the namespaces.
const IN_SANDBOX: &str = "XTASK_OCI_IN_SANDBOX";
/// Set in the environment of the xtask that `--vm` runs in the guest.
const IN_VM: &str = "XTASK_OCI_IN_VM";
/// The test file names, space-separated, for a guest (which has no source tree to list).
const TESTS_ENV: &str = "XTASK_OCI_TESTS";
/// Where the test programs are when not in `$RTT/bin` (the guest's stripped copies).
const BIN_ENV: &str = "XTASK_OCI_BIN";

/// `cargo xtask oci-validate` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The runtime binary; `None`: build and score `contain-oci`.
    pub runtime: Option<PathBuf>,
    /// An extended regular expression (grep -E) for the test file names to run.
    pub only: Option<String>,
    /// Rewrite a config.json `ociVersion` of 1.N.x (N >= 1) to this on `create`.
    pub oci_version: Option<String>,
    /// Cover /sys/fs/cgroup/unified/cgroup.controllers with an empty read-only file;
    /// `None`: only for binaries named crun* (crun 1.8 refuses hybrid hosts otherwise).
    pub hide_unified: Option<bool>,
    /// Pass `--root <private state dir>` before every command.
    pub root_flag: bool,
    /// Per-file timeout in seconds.
    pub timeout: u32,
    /// Further global arguments for the runtime, after `--root DIR`.
    pub extra: Vec<OsString>,
    /// Run the files in the qemu guest (pure cgroup v2) instead of on this host.
    pub vm: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime: None,
            only: None,
            oci_version: None,
            hide_unified: None,
            root_flag: true,
            timeout: 120,
            extra: Vec::new(),
            vm: false,
        }
    }
}

/// Parse the arguments after `oci-validate`.
pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        let mut value = || -> Result<String> {
            i += 1;
            match args.get(i) {
                Some(v) => Ok(v.to_string_lossy().into_owned()),
                None => bail!("{arg} needs a value"),
            }
        };
        match arg.as_str() {
            "--" => {
                opts.extra = args[i + 1..].to_vec();
                break;
            }
            "--runtime" => opts.runtime = Some(PathBuf::from(value()?)),
            "--only" => opts.only = Some(value()?),
            "--oci-version" => opts.oci_version = Some(value()?),
            "--timeout" => {
                let v = value()?;
                opts.timeout = match v.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => bail!("--timeout {v}: expected a whole number of seconds, at least 1"),
                };
            }
            "--hide-unified" => opts.hide_unified = Some(true),
            "--no-hide" => opts.hide_unified = Some(false),
            "--no-root" => opts.root_flag = false,
            "--vm" => opts.vm = true,
            _ => bail!("unknown argument {arg} (see `cargo xtask help`)"),
        }
        i += 1;
    }
    Ok(opts)
}

/// The same options as arguments, for the second xtask (with the runtime resolved).
fn to_args(opts: &Options) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if opts.vm {
        args.push("--vm".into());
    }
    if let Some(runtime) = &opts.runtime {
        args.extend(["--runtime".into(), runtime.clone().into_os_string()]);
    }
    if let Some(only) = &opts.only {
        args.extend(["--only".into(), only.into()]);
    }
    if let Some(v) = &opts.oci_version {
        args.extend(["--oci-version".into(), v.into()]);
    }
    match opts.hide_unified {
        Some(true) => args.push("--hide-unified".into()),
        Some(false) => args.push("--no-hide".into()),
        None => {}
    }
    if !opts.root_flag {
        args.push("--no-root".into());
    }
    args.extend(["--timeout".into(), opts.timeout.to_string().into()]);
    if !opts.extra.is_empty() {
        args.push("--".into());
        args.extend(opts.extra.iter().cloned());
    }
    args
}

/// Paths of the work directory (`$RTT`, default /tmp/rtt).
struct Dirs {
    rtt: PathBuf,
    src: PathBuf,
    bin: PathBuf,
}

impl Dirs {
    fn from_env() -> Dirs {
        let rtt = match std::env::var_os("RTT") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from("/tmp/rtt"),
        };
        let bin = match std::env::var_os(BIN_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => rtt.join("bin"),
        };
        Dirs {
            src: rtt.join("src"),
            bin,
            rtt,
        }
    }
}

/// `cargo xtask oci-validate`: returns the exit code (0 iff every selected file passed).
pub fn run(opts: &Options) -> Result<u8> {
    if std::env::var_os(IN_SANDBOX).is_some() {
        return run_in_sandbox(opts);
    }
    if std::env::var_os(IN_VM).is_some() {
        return run_in_guest(opts);
    }
    // SAFETY: geteuid has no preconditions.
    if !opts.vm && unsafe { libc::geteuid() } != 0 {
        bail!("the validation suite needs root (namespaces, mounts, cgroups): run this as root");
    }
    for (program, package) in [("unshare", "util-linux"), ("timeout", "coreutils")] {
        if setup::find_program(program).is_none() {
            bail!("{program} not found (Debian package {package})");
        }
    }
    let dirs = Dirs::from_env();
    if !dirs.src.join("Makefile").is_file() || !dirs.src.join("validation").is_dir() {
        bail!("{}", source_hint(&dirs));
    }
    let go = match find_go() {
        Some(go) => go,
        None => {
            setup::install(&["golang-go"], "go >= 1.19 builds the runtime-tools suite")?;
            find_go().ok_or_else(|| {
                crate::error::Error::new("no go >= 1.19 after installing golang-go")
            })?
        }
    };
    let tests = selected_tests(&dirs.src, opts.only.as_deref())?;
    let runtime = match &opts.runtime {
        Some(path) => resolve_runtime(path)?,
        None => build_contain_oci()?,
    };
    build_suite(&go, &dirs, &tests)?;

    let inner = Options {
        runtime: Some(runtime),
        ..opts.clone()
    };
    if opts.vm {
        return run_vm(&inner, &dirs, &tests);
    }
    let me = std::env::current_exe().context("the path of this xtask binary")?;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--cgroup", "--ipc", "--uts", "--net"])
        .args(["--propagation", "private"])
        .arg(me)
        .arg("oci-validate")
        .args(to_args(&inner))
        .env(IN_SANDBOX, "1");
    let status = cmd::status(&mut command)?;
    sys::check_interrupted()?;
    match status.code() {
        Some(code) => Ok(u8::try_from(code).unwrap_or(1)),
        None => bail!("the sandboxed run {}", cmd::describe(status)),
    }
}

/// `--vm`: the same run in the qemu guest (pure cgroup v2, the guest kernel): the runtime, this
/// xtask, util-linux's `unshare` (the tests call `unshare --fork`, which busybox lacks), GNU
/// tar (busybox's does not unpack the gzipped rootfs), the
/// stripped test programs, `runtimetest` and the rootfs tarball are copied in at their host
/// paths; the guest prints the per-file lines and hands the TAP files back as a base64 tar
/// in a quiet region of its console, unpacked into `$RTT/results/NAME-vm-STAMP`.
fn run_vm(opts: &Options, dirs: &Dirs, tests: &[String]) -> Result<u8> {
    let Some(runtime) = &opts.runtime else {
        bail!("internal: the VM run needs the resolved --runtime");
    };
    let Some(unshare) = setup::find_program("unshare") else {
        bail!("unshare not found (Debian package util-linux)");
    };
    // GNU tar: busybox's does not see that the rootfs tarball is gzipped.
    let Some(tar) = setup::find_program("tar") else {
        bail!("tar not found (Debian package tar)");
    };
    let me = std::env::current_exe().context("the path of this xtask binary")?;
    let vm_bin = dirs.rtt.join("vm").join("bin");
    std::fs::create_dir_all(&vm_bin).with_context(|| format!("mkdir {}", vm_bin.display()))?;
    let mut files = Vec::new();
    for test in tests {
        let from = dirs.bin.join(format!("{test}.t"));
        let to = vm_bin.join(format!("{test}.t"));
        let stale = match (std::fs::metadata(&from), std::fs::metadata(&to)) {
            (Ok(f), Ok(t)) => f.modified().ok() > t.modified().ok(),
            _ => true,
        };
        if stale {
            // Without their debug information: a third less to copy into the guest.
            let stripped = Command::new("strip")
                .arg("-o")
                .arg(&to)
                .arg(&from)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stripped {
                std::fs::copy(&from, &to)
                    .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
            }
        }
        files.push(to);
    }
    for name in ["runtimetest", "rootfs-amd64.tar.gz"] {
        let path = dirs.src.join(name);
        if !path.is_file() {
            bail!("{} is missing (the suite needs it)", path.display());
        }
        files.push(path);
    }
    let per_file = u64::from(opts.timeout) + 15;
    let options = crate::vm::VmOptions {
        // Every file at its timeout, plus the boot: only a bound for a hung guest.
        timeout: std::time::Duration::from_secs(per_file * tests.len() as u64 + 300),
        files,
        ..crate::vm::VmOptions::default()
    };
    let vm = crate::vm::Vm::prepare(options)?;
    let name = runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runtime".into());
    let inner = Options {
        vm: false,
        ..opts.clone()
    };
    let mut argv: Vec<OsString> = vec![me.clone().into_os_string(), "oci-validate".into()];
    argv.extend(to_args(&inner));
    let env: Vec<(String, OsString)> = vec![
        ("RTT".into(), dirs.rtt.clone().into_os_string()),
        (IN_VM.into(), "1".into()),
        (TESTS_ENV.into(), tests.join(" ").into()),
        (BIN_ENV.into(), vm_bin.into_os_string()),
    ];
    eprintln!(
        "xtask: {} test files of {} in the guest ({}, kernel {})",
        tests.len(),
        runtime.display(),
        vm.accel_name(),
        vm.kernel().display()
    );
    let outcome = vm.run(
        vec![runtime.clone(), me, unshare, tar],
        argv,
        Path::new("/"),
        &env,
    )?;
    sys::check_interrupted()?;
    println!(
        "guest: boot {:.1}s, whole VM run {:.0}s",
        outcome.boot.map_or(0.0, |b| b.as_secs_f64()),
        outcome.total.as_secs_f64()
    );
    if !outcome.captured.is_empty() {
        let stamp = cmd::stdout(Command::new("date").args(["-u", "+%Y%m%d-%H%M%S"]))?;
        let out = dirs
            .rtt
            .join("results")
            .join(format!("{name}-vm-{}", stamp.trim()));
        std::fs::create_dir_all(&out).with_context(|| format!("mkdir {}", out.display()))?;
        unpack_base64_tar(&outcome.captured, &out)?;
        println!("TAP of the guest run in {}", out.display());
    }
    match outcome.status {
        crate::vm::Status::Exited(code) => Ok(u8::try_from(code).unwrap_or(1)),
        crate::vm::Status::TimedOut => bail!("the guest run timed out"),
        crate::vm::Status::Unreported => bail!("the guest ended without an exit status"),
    }
}

/// `base64 -d | tar -xz -C out`.
fn unpack_base64_tar(text: &[u8], out: &Path) -> Result<()> {
    let mut decode = Command::new("sh");
    decode
        .arg("-c")
        .arg("base64 -d | tar -xz -C \"$1\"")
        .arg("sh")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = decode
        .spawn()
        .with_context(|| format!("cannot run `{}`", cmd::display(&decode)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows in the exit status below.
        let _ = stdin.write_all(text);
    }
    let done = child
        .wait_with_output()
        .context("waiting for base64 | tar")?;
    if !done.status.success() {
        bail!(
            "unpacking the guest's results into {}: {}",
            out.display(),
            String::from_utf8_lossy(&done.stderr).trim()
        );
    }
    Ok(())
}

/// The xtask `--vm` starts in the guest: the same sandboxed run (without a cgroup namespace:
/// the guest runs us in the non-root /ci.scope, and a namespace rooted there would hide the
/// cgroup2 mount's root from the runtime), then the TAP files as a base64 tar in a quiet
/// region of the console for the host to unpack.
fn run_in_guest(opts: &Options) -> Result<u8> {
    let dirs = Dirs::from_env();
    let me = std::env::current_exe().context("the path of this xtask binary")?;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--ipc", "--uts", "--net"])
        .args(["--propagation", "private"])
        .arg(me)
        .arg("oci-validate")
        .args(to_args(opts))
        .env_remove(IN_VM)
        .env(IN_SANDBOX, "1");
    let status = cmd::status(&mut command)?;
    let results = dirs.rtt.join("results");
    println!("{}", crate::vm::QUIET_BEGIN);
    let packed = Command::new("sh")
        .arg("-c")
        .arg("tar -cz -C \"$1\" . | base64")
        .arg("sh")
        .arg(&results)
        .status();
    println!("{}", crate::vm::QUIET_END);
    if !packed.is_ok_and(|s| s.success()) {
        eprintln!("xtask: could not pack {} for the host", results.display());
    }
    match status.code() {
        Some(code) => Ok(u8::try_from(code).unwrap_or(1)),
        None => bail!("the sandboxed run {}", cmd::describe(status)),
    }
}

/// What to do when `$RTT/src` is missing: the one way to get the suite's source.
fn source_hint(dirs: &Dirs) -> String {
    let src = dirs.src.display();
    let git = dirs.rtt.join("runtime-tools.git");
    let git = git.display();
    format!(
        "no runtime-tools source tree at {src} (it is not part of this repository and must \
         never be copied into it). Get it once per machine from the public repository:\n    \
         git clone --bare https://github.com/opencontainers/runtime-tools {git}\n    \
         mkdir -p {src} && git --git-dir={git} archive {COMMIT} | tar -x -C {src}\n\
         ({COMMIT} is the newest commit that builds offline with Debian 12's go 1.19; any git \
         copy of the repository works as --git-dir. RTT=DIR picks another work directory than \
         /tmp/rtt.)"
    )
}

/// A go >= 1.19: the one in PATH, else Debian's /usr/lib/go-1.N/bin/go.
fn find_go() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = setup::find_program("go").into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        let mut versioned: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("go-1."))
            .map(|e| e.path().join("bin/go"))
            .collect();
        versioned.sort();
        candidates.extend(versioned.into_iter().rev());
    }
    candidates.into_iter().find(|go| {
        Command::new(go)
            .arg("version")
            .output()
            .ok()
            .is_some_and(|out| go_minor(&String::from_utf8_lossy(&out.stdout)) >= Some(19))
    })
}

/// The N of `go version go1.N.x linux/amd64`.
fn go_minor(version: &str) -> Option<u32> {
    let rest = version.split_whitespace().nth(2)?.strip_prefix("go1.")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A runtime named with --runtime: a path, or a name looked up like `command -v`.
pub(crate) fn resolve_runtime(path: &Path) -> Result<PathBuf> {
    let found = if path.components().count() == 1 {
        setup::find_program(&path.to_string_lossy())
    } else {
        Some(path.to_path_buf())
    };
    let Some(found) = found else {
        bail!("--runtime {}: not found in PATH", path.display());
    };
    let real =
        std::fs::canonicalize(&found).with_context(|| format!("--runtime {}", found.display()))?;
    let executable =
        std::fs::metadata(&real).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !executable {
        bail!("--runtime {}: not an executable file", real.display());
    }
    Ok(real)
}

/// How `cargo xtask build-oci` links contain-oci.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Static and not position-independent: no dynamic loader, no relocations at start.
    Static,
    /// Static PIE: the binary's own image is randomized too (ASLR), at a relocation pass
    /// per start.
    StaticPie,
}

impl Link {
    /// The cargo profile (Cargo.toml) of this link: one output directory each, so building
    /// one never rebuilds the other.
    fn profile(self) -> &'static str {
        match self {
            Link::Static => "oci",
            Link::StaticPie => "oci-pie",
        }
    }

    /// The rustc flags: glibc linked statically, and for `Static` code at fixed addresses.
    fn rustflags(self) -> &'static str {
        match self {
            Link::Static => "-C target-feature=+crt-static -C relocation-model=static",
            Link::StaticPie => "-C target-feature=+crt-static",
        }
    }
}

/// `cargo xtask build-oci [--pie]`: the contain-oci that is shipped and measured, its path on
/// stdout.
pub(crate) fn run_build(args: &[OsString]) -> Result<u8> {
    let mut link = Link::Static;
    for arg in args {
        match arg.to_str() {
            Some("--pie") => link = Link::StaticPie,
            _ => bail!(
                "unknown argument {} (see `cargo xtask help`)",
                arg.to_string_lossy()
            ),
        }
    }
    println!("{}", build_contain_oci_as(link)?.display());
    Ok(0)
}

/// contain-oci as `cargo xtask build-oci` builds it (static, not PIE), returning the binary.
pub(crate) fn build_contain_oci() -> Result<PathBuf> {
    build_contain_oci_as(Link::Static)
}

/// `cargo build --profile oci|oci-pie -p contain-oci --target HOST` with glibc linked in:
/// each of the three commands a shim runs per container (create, start, delete) starts
/// without the dynamic loader's work.
fn build_contain_oci_as(link: Link) -> Result<PathBuf> {
    build_static(PACKAGE, "bin", PACKAGE, link)
}

/// `cargo build --profile oci|oci-pie -p PACKAGE --KIND NAME --target HOST` (`kind`: `bin`
/// or `example`), returning the executable. `--target` keeps the static flags off build
/// scripts and proc macros, which must stay dynamic. RUSTFLAGS already set are kept, ours
/// after them.
pub(crate) fn build_static(package: &str, kind: &str, name: &str, link: Link) -> Result<PathBuf> {
    let host = host_triple()?;
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.trim().is_empty() {
        flags.push(' ');
    }
    flags.push_str(link.rustflags());
    let mut build = cargo();
    build.env("RUSTFLAGS", flags).args([
        "build",
        "--profile",
        link.profile(),
        "--package",
        package,
        &format!("--{kind}"),
        name,
        "--target",
        &host,
    ]);
    built_executable(build, kind, name)
}

/// Runs a `cargo build` of one target and returns the executable of the `kind` (`bin`,
/// `example`) named `name` among what it built.
pub(crate) fn built_executable(build: Command, kind: &str, name: &str) -> Result<PathBuf> {
    let binary = cargo_artifacts(build, "")?
        .iter()
        .filter_map(|m| artifact(m, kind, false))
        .find(|m| {
            m.get("target")
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                == Some(name)
        })
        .and_then(|m| {
            m.get("executable")
                .and_then(|e| e.as_str())
                .map(PathBuf::from)
        });
    match binary {
        Some(path) => Ok(path),
        None => bail!("cargo built no {kind} named {name}"),
    }
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let text = cmd::stdout(Command::new(rustc).arg("-vV"))?;
    match text.lines().find_map(|l| l.strip_prefix("host: ")) {
        Some(host) => Ok(host.trim().to_owned()),
        None => bail!("`rustc -vV` printed no `host:` line"),
    }
}

/// The suite's test file names (`validation/NAME/NAME.go`, not `util`), sorted, those
/// matching `only` (grep -E) when given.
fn selected_tests(src: &Path, only: Option<&str>) -> Result<Vec<String>> {
    let dir = src.join("validation");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "util" && entry.path().join(format!("{name}.go")).is_file() {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        bail!("no test files under {}", dir.display());
    }
    let Some(only) = only else {
        return Ok(names);
    };
    let mut grep = Command::new("grep");
    grep.args(["-E", "--", only])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = grep
        .spawn()
        .with_context(|| format!("cannot run `{}`", cmd::display(&grep)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // grep exits before reading when the expression is bad; its status says so below.
        let _ = stdin.write_all(format!("{}\n", names.join("\n")).as_bytes());
    }
    let out = child.wait_with_output().context("waiting for grep")?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()),
        Some(1) => bail!("--only {only}: no test file name matches"),
        _ => bail!(
            "--only {only}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// The environment for an offline go build of the vendored tree.
fn go_command(go: &Path, dirs: &Dirs) -> Result<Command> {
    let real = std::fs::canonicalize(go).with_context(|| format!("{}", go.display()))?;
    let Some(goroot) = real.parent().and_then(Path::parent) else {
        bail!("{}: cannot tell its GOROOT", real.display());
    };
    let mut command = Command::new(&real);
    command
        .current_dir(&dirs.src)
        .env("GOROOT", goroot)
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOTELEMETRY", "off")
        .env("GOCACHE", dirs.rtt.join("gocache"))
        .env("GOPATH", dirs.rtt.join("gopath"));
    Ok(command)
}

/// Build `runtimetest` (static: it runs inside the containers) and the missing test
/// programs, `cores` at a time.
fn build_suite(go: &Path, dirs: &Dirs, tests: &[String]) -> Result<()> {
    if !dirs.src.join("runtimetest").is_file() {
        let mut build = go_command(go, dirs)?;
        build.args([
            "build",
            "-tags",
            "netgo osusergo",
            "-ldflags",
            "-extldflags -static",
        ]);
        build.args(["-o", "runtimetest", "./cmd/runtimetest"]);
        eprintln!("xtask: {}", cmd::display(&build));
        cmd::output(&mut build)?;
    }
    let missing: Vec<&String> = tests
        .iter()
        .filter(|n| !dirs.bin.join(format!("{n}.t")).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: building {} test programs into {}",
        missing.len(),
        dirs.bin.display()
    );
    std::fs::create_dir_all(&dirs.bin).with_context(|| format!("mkdir {}", dirs.bin.display()))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in missing.chunks(cores) {
        let mut children = Vec::new();
        for name in chunk {
            let mut build = go_command(go, dirs)?;
            build
                .arg("build")
                .arg("-o")
                .arg(dirs.bin.join(format!("{name}.t")))
                .arg(format!("./validation/{name}/{name}.go"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let child = build
                .spawn()
                .with_context(|| format!("cannot run `{}`", cmd::display(&build)))?;
            children.push((build, child));
        }
        for (build, child) in children {
            let out = child.wait_with_output().context("waiting for go build")?;
            if !out.status.success() {
                bail!(
                    "`{}` failed ({}):\n{}",
                    cmd::display(&build),
                    cmd::describe(out.status),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                );
            }
        }
        sys::check_interrupted()?;
    }
    Ok(())
}

/// The second xtask, inside the namespaces `unshare` made: cgroup views, the wrapper, every
/// file, cleanup, totals.
fn run_in_sandbox(opts: &Options) -> Result<u8> {
    let Some(runtime) = &opts.runtime else {
        bail!("internal: the sandboxed run needs the resolved --runtime");
    };
    let dirs = Dirs::from_env();
    let name = runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runtime".into());
    let tests = match std::env::var(TESTS_ENV) {
        Ok(list) => list.split_whitespace().map(String::from).collect(),
        Err(_) => selected_tests(&dirs.src, opts.only.as_deref())?,
    };
    reroot_cgroup_mounts(&dirs)?;
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let hide = opts.hide_unified.unwrap_or(name.starts_with("crun")) && unified.exists();
    if hide {
        let empty = dirs.rtt.join("empty-file");
        File::create(&empty).with_context(|| format!("creating {}", empty.display()))?;
        run_quiet(
            Command::new("mount")
                .args(["--bind", "-o", "ro"])
                .arg(&empty)
                .arg(unified),
        )?;
    }

    let state = dirs.rtt.join("state").join(&name);
    let wrapper = dirs.rtt.join("wrappers").join(&name);
    let tmp = dirs.rtt.join("tmp");
    let stamp = cmd::stdout(Command::new("date").args(["-u", "+%Y%m%d-%H%M%S"]))?;
    let out = dirs
        .rtt
        .join("results")
        .join(format!("{name}-{}", stamp.trim()));
    for dir in [&state, &tmp, &out, &dirs.rtt.join("wrappers")] {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    let script = wrapper_script(runtime, opts.root_flag.then_some(state.as_path()), opts);
    std::fs::write(&wrapper, script).with_context(|| format!("writing {}", wrapper.display()))?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", wrapper.display()))?;

    let version = Command::new(runtime)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!(
        "runtime: {} ({version}); hide-unified={} oci-version={}; TAP in {}",
        runtime.display(),
        u8::from(hide),
        opts.oci_version.as_deref().unwrap_or("as-is"),
        out.display()
    );
    let started = Instant::now();
    let mut totals = FileResult::default();
    let (mut passed, mut failed) = (0, 0);
    for test in &tests {
        if sys::interrupted().is_some() {
            break;
        }
        let tap_path = out.join(format!("{test}.tap"));
        let err_path = out.join(format!("{test}.err"));
        let t0 = Instant::now();
        let status = Command::new("timeout")
            .args(["-k", "10", &opts.timeout.to_string()])
            .arg(dirs.bin.join(format!("{test}.t")))
            .current_dir(&dirs.src)
            .env("TMPDIR", &tmp)
            .env("RUNTIME", &wrapper)
            .stdin(Stdio::null())
            .stdout(File::create(&tap_path).with_context(|| format!("{}", tap_path.display()))?)
            .stderr(File::create(&err_path).with_context(|| format!("{}", err_path.display()))?)
            .status()
            .with_context(|| format!("cannot run {test}.t"))?;
        let seconds = t0.elapsed().as_secs_f64();
        let rc = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let tap = std::fs::read_to_string(&tap_path).unwrap_or_default();
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let result = judge(&tap, &err, rc);
        if result.pass {
            passed += 1;
        } else {
            failed += 1;
        }
        let line = format!(
            "{} {test:<36} ok={:<4} notok={:<3} skip={:<4} {seconds:5.1}s {}",
            if result.pass { "PASS" } else { "FAIL" },
            result.ok,
            result.not_ok,
            result.skip,
            result.why
        );
        println!("{}", line.trim_end());
        totals.ok += result.ok;
        totals.not_ok += result.not_ok;
        totals.skip += result.skip;
    }
    let wall = started.elapsed().as_secs();
    cleanup(&dirs, &wrapper, opts.root_flag);
    sys::check_interrupted()?;
    println!("wall time: {wall}s");
    println!(
        "assertions: {} passed, {} failed, {} skipped",
        totals.ok, totals.not_ok, totals.skip
    );
    println!("files: {passed} passed, {failed} failed");
    Ok(u8::from(failed > 0))
}

/// Run a command whose output only matters when it fails.
fn run_quiet(command: &mut Command) -> Result<()> {
    cmd::output(command).map(|_| ())
}

/// One mount of a cgroup v1 hierarchy, from /proc/self/mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct CgroupMount {
    /// The cgroup the mount shows, as seen from our cgroup namespace ("/" or "/..", ...).
    root: String,
    mount_point: PathBuf,
    /// The super options less rw/ro: the controllers, `name=`, `none`, ...
    options: String,
}

/// The cgroup v1 mounts in a mountinfo text (proc(5)), with octal escapes in the mount
/// point decoded.
fn cgroup_v1_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if right.first() != Some(&"cgroup") || left.len() < 5 {
                return None;
            }
            let options = right
                .get(2)?
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect::<Vec<_>>()
                .join(",");
            Some(CgroupMount {
                root: unescape(left[3]),
                mount_point: PathBuf::from(unescape(left[4])),
                options,
            })
        })
        .collect()
}

/// mountinfo's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, b| a * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Stack a mount of each v1 hierarchy as our cgroup namespace sees it (rooted at our own
/// cgroup) over every v1 mount whose root is elsewhere. Private mount namespace only.
fn reroot_cgroup_mounts(dirs: &Dirs) -> Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let scratch = dirs.rtt.join("mnt");
    std::fs::create_dir_all(&scratch).with_context(|| format!("mkdir {}", scratch.display()))?;
    for mount in cgroup_v1_mounts(&mountinfo) {
        if mount.root == "/" {
            continue;
        }
        run_quiet(
            Command::new("mount")
                .args(["-t", "cgroup", "-o", &mount.options, "cgroup"])
                .arg(&scratch),
        )
        .with_context(|| format!("re-rooting cgroup mount {}", mount.mount_point.display()))?;
        let bound = run_quiet(
            Command::new("mount")
                .arg("--bind")
                .arg(&scratch)
                .arg(&mount.mount_point),
        );
        run_quiet(Command::new("umount").arg(&scratch))?;
        bound
            .with_context(|| format!("re-rooting cgroup mount {}", mount.mount_point.display()))?;
    }
    Ok(())
}

/// The POSIX sh script the tests call as $RUNTIME (the guest has busybox's sh only).
fn wrapper_script(runtime: &Path, state: Option<&Path>, opts: &Options) -> String {
    let word = |s: &std::ffi::OsStr| cmd::shell_word(s);
    let mut script = String::from(
        "#!/bin/sh\n# Written by `cargo xtask oci-validate`: the runtime under test.\n",
    );
    if let Some(version) = &opts.oci_version {
        // runtime-tools calls `create [--pid-file F] [--bundle DIR] ID`; no bundle: the cwd.
        let sed = format!(
            r#"s/("ociVersion"[[:space:]]*:[[:space:]]*")1\.[1-9][0-9]*\.[0-9]+"/\1{}"/"#,
            version.replace(['\\', '/', '&', '"', '\''], "")
        );
        let _ = write!(
            script,
            "if [ \"$1\" = create ]; then\n  \
             bundle=. prev=\n  \
             for a in \"$@\"; do case $prev in --bundle|-b) bundle=$a ;; esac; prev=$a; done\n  \
             [ -f \"$bundle/config.json\" ] && sed -i -E {} \"$bundle/config.json\"\n\
             fi\n",
            word(sed.as_ref())
        );
    }
    script.push_str("exec ");
    script.push_str(&word(runtime.as_os_str()));
    if let Some(state) = state {
        script.push_str(" --root ");
        script.push_str(&word(state.as_os_str()));
    }
    for arg in &opts.extra {
        script.push(' ');
        script.push_str(&word(arg));
    }
    script.push_str(" \"$@\"\n");
    script
}

/// What one test file's run came to.
#[derive(Debug, Default, PartialEq, Eq)]
struct FileResult {
    pass: bool,
    /// `ok` lines that are not skips.
    ok: usize,
    not_ok: usize,
    skip: usize,
    /// Why it failed (or "(no assertions)" for a pass without any), one line.
    why: String,
}

/// Whether a TAP line starts with `word` as a whole word.
fn starts_with_word(line: &str, word: &str) -> bool {
    line.strip_prefix(word)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// The verdict on one file: any `not ok` or a non-zero exit fails it; a file with no
/// assertions fails when it printed an `"error": "..."` diagnostic (the hook tests report
/// problems only that way); the `*_fail` tests print nothing when they pass.
fn judge(tap: &str, err: &str, rc: i32) -> FileResult {
    let mut result = FileResult::default();
    let mut not_ok_lines = Vec::new();
    for line in tap.lines() {
        if starts_with_word(line, "not ok") {
            result.not_ok += 1;
            not_ok_lines.push(line);
        } else if starts_with_word(line, "ok") {
            let skip = line
                .split_once('#')
                .is_some_and(|(_, d)| d.trim_start().to_ascii_lowercase().starts_with("skip"));
            if skip {
                result.skip += 1;
            } else {
                result.ok += 1;
            }
        }
    }
    let diagnostic = tap.lines().find_map(|line| {
        let rest = line
            .strip_prefix(' ')?
            .trim_start()
            .strip_prefix("\"error\": \"")?;
        (!rest.starts_with('"')).then(|| format!("\"{rest}"))
    });
    let assertions = result.ok + result.skip;
    result.pass = rc == 0 && result.not_ok == 0 && !(assertions == 0 && diagnostic.is_some());
    if result.pass {
        if assertions == 0 {
            result.why = "(no assertions)".into();
        }
        return result;
    }
    let mut why = not_ok_lines.join(" ");
    if assertions + result.not_ok == 0 {
        if let Some(d) = diagnostic {
            why.push(' ');
            why.push_str(&d);
        }
    }
    why.push(' ');
    why.push_str(err);
    let why: Vec<&str> = why.split_whitespace().collect();
    let why: String = why.join(" ").chars().take(160).collect();
    result.why = format!("rc={rc}: {why}");
    result
}

/// Best effort: delete the containers left in the state directory, the test cgroups, mounts
/// leaked into our namespace (linux_ns_itype), then the bundles.
fn cleanup(dirs: &Dirs, wrapper: &Path, root_flag: bool) {
    if root_flag {
        if let Ok(out) = Command::new(wrapper).args(["list", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new(wrapper)
                    .args(["delete", "-f", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.filter_map(|e| e.ok()) {
            for p in [
                "testdir/cgrouptest/container",
                "testdir/cgrouptest",
                "testdir",
                "cgrouptest",
            ] {
                let _ = std::fs::remove_dir(h.path().join(p));
            }
        }
    }
    let tmp = dirs.rtt.join("tmp");
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut leaked: Vec<PathBuf> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(unescape).map(PathBuf::from))
            .filter(|p| p.starts_with(&tmp))
            .collect();
        leaked.sort();
        for mount_point in leaked.iter().rev() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(mount_point)
                .stderr(Stdio::null())
                .status();
        }
    }
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("ocitest") || n.starts_with("oci-pid") {
                let _ = Command::new("rm")
                    .args(["-rf", "--one-file-system"])
                    .arg(e.path())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_parse_and_round_trip() {
        let opts = parse(&args(&[
            "--runtime",
            "/usr/bin/crun",
            "--only",
            "^linux_ns",
            "--oci-version",
            "1.0.2",
            "--no-hide",
            "--timeout",
            "30",
            "--vm",
            "--",
            "--debug",
            "--log",
            "/tmp/x",
        ]))
        .unwrap();
        assert_eq!(opts.runtime.as_deref(), Some(Path::new("/usr/bin/crun")));
        assert_eq!(opts.only.as_deref(), Some("^linux_ns"));
        assert_eq!(opts.hide_unified, Some(false));
        assert_eq!(opts.timeout, 30);
        assert!(opts.vm);
        assert_eq!(opts.extra, args(&["--debug", "--log", "/tmp/x"]));
        assert_eq!(parse(&to_args(&opts)).unwrap(), opts);
        assert_eq!(
            parse(&to_args(&Options::default())).unwrap(),
            Options::default()
        );
        assert!(parse(&args(&["--timeout", "0"])).is_err());
        assert!(parse(&args(&["--only"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn reads_go_versions() {
        assert_eq!(go_minor("go version go1.19.8 linux/amd64"), Some(19));
        assert_eq!(go_minor("go version go1.22rc1 linux/amd64"), Some(22));
        assert_eq!(go_minor("go version devel +abc"), None);
        assert!(go_minor("go version go1.18.1 linux/amd64") < Some(19));
    }

    #[test]
    fn finds_v1_cgroup_mounts_in_mountinfo() {
        let text = "\
30 1 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 /.. /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/my\\040dir rw master:3 - cgroup cgroup ro,name=systemd
";
        let mounts = cgroup_v1_mounts(text);
        assert_eq!(
            mounts,
            [
                CgroupMount {
                    root: "/..".into(),
                    mount_point: "/sys/fs/cgroup/cpu,cpuacct".into(),
                    options: "cpu,cpuacct".into(),
                },
                CgroupMount {
                    root: "/".into(),
                    mount_point: "/sys/fs/cgroup/my dir".into(),
                    options: "name=systemd".into(),
                },
            ]
        );
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("end\\04"), "end\\04");
    }

    #[test]
    fn judges_tap_like_the_shared_script() {
        let passed = judge(
            "TAP version 13\nok 1 - a\nok 2 # SKIP no cgroup\n1..2\n",
            "",
            0,
        );
        assert_eq!(
            (passed.pass, passed.ok, passed.skip, passed.not_ok),
            (true, 1, 1, 0)
        );
        assert_eq!(passed.why, "");

        let failed = judge("ok 1 - a\nnot ok 2 - b MUST\n", "boom\n", 0);
        assert!(!failed.pass);
        assert_eq!((failed.ok, failed.not_ok), (1, 1));
        assert_eq!(failed.why, "rc=0: not ok 2 - b MUST boom");

        let crashed = judge("ok 1 - a\n", "panic: x", 2);
        assert!(!crashed.pass);
        assert!(crashed.why.starts_with("rc=2: panic"));

        // Hook tests: nothing but a diagnostic.
        let hook = judge(
            "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n",
            "",
            0,
        );
        assert!(!hook.pass);
        assert_eq!(hook.why, "rc=0: \"Hooks MUST be called\"");
        let empty_error = judge("  \"error\": \"\"\n", "", 0);
        assert!(empty_error.pass);
        assert_eq!(empty_error.why, "(no assertions)");

        // `okay` is no assertion; the reason is cut at 160 characters.
        assert_eq!(judge("okay\n", "", 0).ok, 0);
        assert_eq!(
            judge("", &"x ".repeat(200), 1).why.chars().count(),
            "rc=1: ".len() + 160
        );
    }

    #[test]
    fn wrapper_passes_root_extra_and_rewrites_the_version() {
        let opts = Options {
            oci_version: Some("1.0.2".into()),
            extra: args(&["--log", "/tmp/a b"]),
            ..Options::default()
        };
        let script = wrapper_script(
            Path::new("/usr/bin/crun"),
            Some(Path::new("/tmp/rtt/state/crun")),
            &opts,
        );
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script
            .ends_with("exec /usr/bin/crun --root /tmp/rtt/state/crun --log '/tmp/a b' \"$@\"\n"));
        assert!(script.contains(r#"\11.0.2"/"#), "{script}");
        let plain = wrapper_script(Path::new("/x/rt"), None, &Options::default());
        assert_eq!(
            plain,
            concat!(
                "#!/bin/sh\n",
                "# Written by `cargo xtask oci-validate`: the runtime under test.\n",
                "exec /x/rt \"$@\"\n"
            )
        );
    }

    /// The generated script, run by sh: only `create` rewrites, only 1.N.x with N >= 1.
    #[test]
    fn wrapper_rewrites_oci_version_on_create_only() {
        let dir = std::env::temp_dir().join(format!("xtask-oci-{:x}", crate::cache::random_u64()));
        std::fs::create_dir(&dir).unwrap();
        let config = dir.join("config.json");
        let wrapper = dir.join("wrapper");
        let opts = Options {
            oci_version: Some("1.0.2".into()),
            ..Options::default()
        };
        std::fs::write(
            &wrapper,
            wrapper_script(Path::new("/bin/true"), None, &opts),
        )
        .unwrap();
        let run = |args: &[&str], version: &str| {
            std::fs::write(
                &config,
                format!("{{\"ociVersion\" : \"{version}\", \"x\": 1}}"),
            )
            .unwrap();
            let status = Command::new("sh")
                .arg(&wrapper)
                .args(args)
                .status()
                .unwrap();
            assert!(status.success());
            std::fs::read_to_string(&config).unwrap()
        };
        let bundle = dir.to_str().unwrap();
        let created = run(&["create", "--bundle", bundle, "id"], "1.3.0");
        let started = run(&["start", "--bundle", bundle, "id"], "1.3.0");
        let old = run(&["create", "--bundle", bundle, "id"], "1.0.0");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(created, "{\"ociVersion\" : \"1.0.2\", \"x\": 1}");
        assert_eq!(started, "{\"ociVersion\" : \"1.3.0\", \"x\": 1}");
        assert_eq!(old, "{\"ociVersion\" : \"1.0.0\", \"x\": 1}");
    }
}
