//! `cargo xtask`: the project's developer commands.
//!
//! - `cargo xtask test`: `cargo test --workspace` on the host, then every integration test
//!   binary of `contain` in a qemu guest with a pure cgroup v2 hierarchy.
//! - `cargo xtask vm -- PROGRAM [ARGS...]`: one program in that guest, its exit code returned.
//! - `cargo xtask setup`: install what the tests need (both commands above do it first).
//! - `cargo xtask oci-validate`: the runtime-tools validation suite against `contain-oci`
//!   (or another OCI runtime), one line per test file and the totals.
//! - `cargo xtask podman`, `cargo xtask containerd`: podman and containerd drive `contain-oci`
//!   (or another OCI runtime); a table of cases.
//! - `cargo xtask build-oci`: `contain-oci` as shipped (static, LTO), its path printed.
//! - `cargo xtask bench-peers`: container start against unshare(1), bwrap, crun, runc and
//!   plain `/bin/true` in one hyperfine run; a markdown table, also into the README.
//! - `cargo xtask fuzz`: every fuzz target for a while each, and a table.
//! - `cargo xtask soak`: tests/soak.rs with 10,000 starts.

mod cache;
mod clients;
mod cmd;
mod containerd;
mod cpio;
mod error;
mod fuzz;
mod guest;
mod json;
mod oci;
mod peers;
mod podman;
mod setup;
mod soak;
mod sys;
mod test;
mod vm;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use error::{bail, Context, Result};
use vm::{AccelChoice, Status, Vm, VmOptions};

const USAGE: &str = "\
usage:
  cargo xtask test [--host-only | --vm-only] [VM OPTIONS] [-- CARGO TEST ARGS...]
      Installs what the tests need when something is missing (see `setup`), runs
      `cargo test --workspace CARGO TEST ARGS` on the host, then builds the integration
      tests of package `contain` (tests/*.rs) and runs each binary in its own qemu guest.
      Cargo options (e.g. --release) apply to both; test-harness arguments after a second
      `--` (filters, --nocapture) are passed to the binaries in the guest too:
          cargo xtask test -- --release -- cgroup --nocapture
          cargo xtask test --vm-only -- --test net
  cargo xtask setup [--host-only | --vm-only]
      Installs what the tests need, only what is missing (each need is a PATH lookup, so a
      second run does nothing): qemu-system-x86 and libc-bin for the guests; busybox-static,
      uidmap, iproute2 and debootstrap for the tests. As root with apt-get (apt-get update,
      then apt-get install -y --no-install-recommends ...); not root, it prints the one
      command to run and fails. `test` and `vm` do this first.
  cargo xtask vm [VM OPTIONS] [--cwd DIR] -- PROGRAM [ARGS...]
      Boots a guest that runs PROGRAM and exits with its exit code (124: timed out,
      125: the guest reported no status, 126: the VM could not be set up). PROGRAM is a host
      file (copied into the guest at the same absolute path with its shared libraries,
      e.g. target/release/examples/run) or a command the guest's busybox provides (/bin/sh).
  cargo xtask oci-validate [--runtime PATH] [--only REGEX] [--oci-version V] [--timeout S]
                           [--hide-unified | --no-hide] [--no-root] [--vm] [-- EXTRA...]
      Runs the opencontainers/runtime-tools validation suite (validation/*/*.go, TAP) on
      this host, as root, and prints a line per test file (PASS/FAIL, assertions passed,
      failed and skipped, seconds, why) and the totals; exit 0 iff every file passed. The
      runtime: contain-oci as `build-oci` builds it, or PATH (a path or a name in PATH,
      not built). Installs golang-go if no go >= 1.19 is found. The suite's source is not
      in this repository: it is expected at $RTT/src (RTT defaults to /tmp/rtt), a plain
      tree of commit 260e151; when missing, the error says how to get it. The programs are
      built there offline (GOFLAGS=-mod=vendor) into $RTT/bin; TAP output is kept in
      $RTT/results/. The files run in private mount, cgroup, ipc, uts and net namespaces,
      with container cgroups below our own; the runtime is called as
      `RUNTIME --root $RTT/state/NAME EXTRA... COMMAND ...`.
        --only REGEX     only the test files whose name matches (grep -E)
        --oci-version V  on create, rewrite a bundle's ociVersion 1.N.x (N >= 1) to V
                         (crun 1.8 needs 1.0.2)
        --timeout S      per-file timeout (default 120)
        --hide-unified   cover /sys/fs/cgroup/unified/cgroup.controllers with an empty
                         file (crun 1.8 refuses hybrid hosts otherwise; default for crun*)
        --no-hide        never do that
        --no-root        no --root flag (a runtime without runc's global --root)
        --vm             run the files in the qemu guest (pure cgroup v2, Debian's kernel;
                         no root needed here): the runtime (with its libraries), this
                         xtask, util-linux's unshare, GNU tar, the stripped test programs
                         ($RTT/vm/bin), runtimetest and the rootfs tarball are copied in;
                         the same lines and totals, TAP back in $RTT/results/NAME-vm-STAMP
          cargo xtask oci-validate --only 'state|kill'
          cargo xtask oci-validate --runtime crun --oci-version 1.0.2
          cargo xtask oci-validate --vm --only '^linux_cgroups'
  cargo xtask podman [--runtime PATH] [--debian DIR | --no-debian] [--no-vm]
      As root: podman (Debian's 4.3, installed with conmon and umoci when missing) runs
      containers with `--runtime contain-oci` (as `build-oci` builds it) or PATH, from a busybox
      image and a Debian bookworm minbase image (DIR, default
      $CARGO_TARGET_DIR/debian-bookworm-minbase, made with debootstrap when missing), both
      made as oci-archives with umoci and `podman load`ed into a private storage in a temp
      dir. Cases: exit codes, output, -it and exec -it (under script(1)), run -d, exec,
      pause/unpause, kill -s USR1, stop (TERM, and KILL after -t), --memory and
      --pids-limit, --cgroup-parent, Debian, nothing left after rm.
      Where the memory controller is not on cgroup v2 (a hybrid host), the limit cases run
      again in the qemu guest (pure cgroup v2; --no-vm skips it). Prints a table (case,
      expected, got, PASS/FAIL/SKIP); exit 0 iff no case failed. Everything it made is
      removed (containers, storage, temp dir, cgroups).
  cargo xtask containerd [--runtime PATH] [--no-vm]
      As root: a containerd of its own (Debian's 1.6; config, root, state and socket in a
      temp dir) runs the busybox image (imported with `ctr image import`) through the runc
      shim with `--runc-binary contain-oci` (or PATH): ctr run --rm, a detached task with
      ctr task exec, pause/resume, kill and delete, a missing program, whose error must
      name it, and nothing left after the deletes.
      Where the cpu controller is not on cgroup v2 the cases run again in the qemu guest
      with ctr's default spec and a memory limit (--no-vm skips it). A table as for
      podman; containerd is stopped and everything removed at the end.
  cargo xtask build-oci [--pie]
      Builds contain-oci as it is shipped, measured (benches/oci-peers.sh) and scored by
      the three commands above, and prints its path: profile `oci` (release, fat LTO, one
      codegen unit) for the host's target triple, glibc linked statically and the code not
      position-independent, so each command a shim runs starts without the dynamic
      loader's work (static non-PIE --version: 0.8 ms, dynamic PIE: 1.3-1.6 ms, hyperfine
      medians on the 2-core VM). The binary's image, with the libc linked into it, is then
      at a fixed address (the heap, the stack and mmap regions stay randomized). --pie: a
      static PIE instead (profile `oci-pie`), whose image is randomized too, for 0.3 ms more
      per command.
          target/x86_64-unknown-linux-gnu/oci/contain-oci
  cargo xtask bench-peers [--runs N] [--no-readme]
      As root: installs crun, runc, bubblewrap, busybox-static, hyperfine and jq when
      missing, builds the run example (release) and contain-oci (as build-oci), makes a
      static busybox rootfs and `crun spec` bundles in a temp dir, runs each command once
      (one that fails is listed with its error, not timed), then times the rest in ONE
      hyperfine run (-N, 3 warmups, N runs each, default 60): plain /bin/true, unshare(1)
      with mnt,uts,ipc,pid,net and --root, bwrap --unshare-all, crun run without and with
      a cgroup, runc run, contain-oci run, and the run example with a rootfs (all
      namespaces; without a net namespace) and without one, built with --release and,
      with and without a rootfs, as build-oci builds contain-oci (static, LTO: what the
      link costs a process that starts containers). Prints a markdown table of
      medians, CPU time and ratios to plain /bin/true, and writes it into README.md
      between the bench-peers markers (--no-readme: print only). On a hybrid host the
      timing runs in a private mount namespace where unified/cgroup.controllers reads
      empty (crun 1.8 refuses to start otherwise). Everything made is removed.
  cargo xtask fuzz [--seconds N] [TARGET...]
      Runs every fuzz target of fuzz/ (or those named) for N seconds each (default 60),
      one after another, on the stable toolchain: installs cargo-fuzz when missing, builds
      with `cargo fuzz build --sanitizer none -O`, runs each libFuzzer binary on its
      corpus fuzz/corpus/TARGET (kept between runs), seeded from fuzz/seeds/TARGET. Prints
      a table (target, seconds, inputs run, corpus files, result); a crash prints its
      panic and leaves the input in fuzz/artifacts/TARGET/, and the exit code is 1. Files
      the targets write go to a temp dir removed at the end. Run as root: `layer` sets
      trusted.* xattrs.
          cargo xtask fuzz --seconds 600 layer
  cargo xtask soak [--count N]
      As root: tests/soak.rs alone (release), with N containers started and reaped one
      after another (default 10000; the test suite runs 1000, 200 in the guest), then 64
      threads starting at once and 16 concurrent imports of images sharing layers. Fails
      when a descriptor, mount, cgroup, contain* temp dir, store entry or child is left,
      or RSS grew by 5 MiB or more; prints the timings and RSS. In the guest (pure cgroup
      v2, where the soak's rootfs kind also gets a cgroup with pids.max):
          cargo xtask test --vm-only --env CONTAIN_SOAK_COUNT=2000 -- --test soak

VM options:
  --mem MIB            guest memory (default 1024, more for large payloads)
  --smp N              guest vCPUs (default 2)
  --timeout SECS       kill the VM after SECS seconds (default 600); from a minute up, the
                       guest first lists every user thread (state, wait channel, kernel
                       stack) if the command still runs, and `test` names the tests that
                       never finished
  --files PATH...      host files or directories to copy into the guest at the same path
                       (ELF files with their libraries); repeatable
  --env NAME=VALUE     set a variable in the guest; repeatable. Always set: CONTAIN_IN_VM=1,
                       and RUST_BACKTRACE, RUST_LOG, RUST_TEST_THREADS, RUST_TEST_NOCAPTURE,
                       RUST_LIB_BACKTRACE, RUST_MIN_STACK when set on the host
  --accel auto|kvm|tcg accelerator (default auto: KVM if a probe guest boots with it)
  --cgroup-opts OPTS   cgroup2 mount options (default nsdelegate,memory_recursiveprot)
  --bare               leave the host's tools out of the guest: no iproute2 `ip` (busybox's
                       applet is removed too), no newuidmap/newgidmap, no /etc/subuid or
                       /etc/subgid, so the tests' skips for a host without them run
  --verbose            also show firmware and kernel output

The guest: Debian's linux-image-cloud-amd64 and busybox-static, fetched with apt-get into
target/vm-cache/ (CONTAIN_VM_KERNEL / CONTAIN_VM_BUSYBOX override them); pure cgroup2 at
/sys/fs/cgroup with every controller enabled at the root; the root a bind mount (so
pivot_root works); the command runs as root with the host's cwd and stdin from /dev/null.
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Err(e) = sys::catch_termination_signals() {
        eprintln!("xtask: {e}");
        return ExitCode::from(126);
    }
    let result = match args.first().and_then(|a| a.to_str()) {
        Some("test") => parse_test(&args[1..]).and_then(|opts| test::run(&opts)),
        Some("vm") => parse_vm(&args[1..]).and_then(|cmd| run_vm(&cmd)),
        Some("setup") => parse_setup(&args[1..]).and_then(|scope| {
            setup::ensure(scope)?;
            eprintln!("xtask: everything the tests need is installed");
            Ok(0)
        }),
        Some("oci-validate") => oci::parse(&args[1..]).and_then(|opts| oci::run(&opts)),
        Some("podman") => podman::parse(&args[1..]).and_then(|opts| podman::run(&opts)),
        Some("containerd") => containerd::parse(&args[1..]).and_then(|opts| containerd::run(&opts)),
        Some("build-oci") => oci::run_build(&args[1..]),
        Some("bench-peers") => peers::parse(&args[1..]).and_then(|opts| peers::run(&opts)),
        Some("fuzz") => fuzz::parse(&args[1..]).and_then(|opts| fuzz::run(&opts)),
        Some("soak") => soak::parse(&args[1..]).and_then(|opts| soak::run(&opts)),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            if sys::interrupted().is_some() {
                ExitCode::from(130)
            } else {
                ExitCode::from(126)
            }
        }
    }
}

/// `cargo xtask vm`: the guest's status becomes ours.
fn run_vm(command: &VmCommand) -> Result<u8> {
    setup::ensure(setup::Scope {
        host: false,
        vm: true,
    })?;
    let vm = Vm::prepare(command.options.clone())?;
    let program = &command.argv[0];
    let program_path = Path::new(program);
    let (guest_program, executables) = if vm.provides(program_path) {
        (program.clone(), Vec::new())
    } else if program_path.components().count() == 1 {
        // A bare name is looked up in the guest's PATH by the guest shell.
        (program.clone(), Vec::new())
    } else {
        let host = std::fs::canonicalize(program_path).with_context(|| {
            format!(
                "{} is neither a host file nor a program the guest's busybox provides",
                program_path.display()
            )
        })?;
        (host.clone().into_os_string(), vec![host])
    };
    let mut argv = vec![guest_program];
    argv.extend(command.argv[1..].iter().cloned());
    let outcome = vm.run(executables, argv, &command.cwd, &[])?;
    if command.options.verbose {
        let boot = outcome.boot.map(|b| b.as_secs_f64()).unwrap_or(f64::NAN);
        eprintln!(
            "xtask: accelerator {}, boot {boot:.1} s, qemu {:.1} s",
            vm.accel_name(),
            outcome.total.as_secs_f64()
        );
    }
    Ok(match outcome.status {
        Status::Exited(code) => u8::try_from(code).unwrap_or(255),
        Status::TimedOut => 124,
        Status::Unreported => 125,
    })
}

struct VmCommand {
    options: VmOptions,
    cwd: PathBuf,
    argv: Vec<OsString>,
}

fn parse_vm(args: &[OsString]) -> Result<VmCommand> {
    let mut options = VmOptions::default();
    let mut cwd = std::env::current_dir().context("getcwd")?;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            i += 1;
            break;
        }
        if arg == "--cwd" {
            let dir = value(args, &mut i, "--cwd")?;
            cwd = std::path::absolute(&dir).with_context(|| format!("--cwd {dir}"))?;
            i += 1;
            continue;
        }
        if parse_vm_option(args, &mut i, &mut options)? {
            continue;
        }
        if arg.starts_with('-') {
            bail!("unknown option {arg} (see `cargo xtask help`)");
        }
        break;
    }
    let argv = args[i..].to_vec();
    if argv.is_empty() {
        bail!("no program given: cargo xtask vm [OPTIONS] -- PROGRAM [ARGS...]");
    }
    Ok(VmCommand { options, cwd, argv })
}

fn parse_setup(args: &[OsString]) -> Result<setup::Scope> {
    let mut scope = setup::Scope {
        host: true,
        vm: true,
    };
    for arg in args {
        match arg.to_string_lossy().as_ref() {
            "--host-only" => scope.vm = false,
            "--vm-only" => scope.host = false,
            other => bail!("unknown argument {other} (see `cargo xtask help`)"),
        }
    }
    if !scope.host && !scope.vm {
        bail!("--host-only and --vm-only exclude each other");
    }
    Ok(scope)
}

fn parse_test(args: &[OsString]) -> Result<test::TestOptions> {
    let mut opts = test::TestOptions {
        host: true,
        vm: true,
        vm_options: VmOptions::default(),
        cargo_args: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--" => {
                opts.cargo_args = args[i + 1..].to_vec();
                break;
            }
            "--host-only" => opts.vm = false,
            "--vm-only" => opts.host = false,
            _ => {
                if parse_vm_option(args, &mut i, &mut opts.vm_options)? {
                    continue;
                }
                bail!("unknown argument {arg} (cargo test arguments go after `--`)");
            }
        }
        i += 1;
    }
    if !opts.host && !opts.vm {
        bail!("--host-only and --vm-only exclude each other");
    }
    Ok(opts)
}

/// Parse the VM option at `args[*i]` if it is one, advancing `i` past it and its values.
fn parse_vm_option(args: &[OsString], i: &mut usize, options: &mut VmOptions) -> Result<bool> {
    let arg = args[*i].to_string_lossy().into_owned();
    match arg.as_str() {
        "--mem" => options.mem = Some(number(&value(args, i, &arg)?, &arg, 64)?),
        "--smp" => options.smp = number(&value(args, i, &arg)?, &arg, 1)?,
        "--timeout" => {
            options.timeout = Duration::from_secs(number(&value(args, i, &arg)?, &arg, 1)?.into())
        }
        "--accel" => {
            let v = value(args, i, &arg)?;
            options.accel = AccelChoice::parse(&v)
                .ok_or_else(|| error::Error::new(format!("--accel {v}: use auto, kvm or tcg")))?;
        }
        "--cgroup-opts" => options.cgroup_opts = value(args, i, &arg)?,
        "--verbose" => options.verbose = true,
        "--bare" => options.bare = true,
        "--env" => {
            let v = value(args, i, &arg)?;
            let Some((name, val)) = v.split_once('=') else {
                bail!("--env {v}: expected NAME=VALUE");
            };
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                bail!("--env {v}: {name:?} is not a valid variable name");
            }
            options.env.push((name.to_string(), val.into()));
        }
        "--files" => {
            let before = options.files.len();
            while *i + 1 < args.len() && !args[*i + 1].to_string_lossy().starts_with('-') {
                *i += 1;
                let path = Path::new(&args[*i]);
                let abs = std::path::absolute(path)
                    .with_context(|| format!("--files {}", path.display()))?;
                if std::fs::symlink_metadata(&abs).is_err() {
                    bail!("--files {}: no such file or directory", path.display());
                }
                options.files.push(abs);
            }
            if options.files.len() == before {
                bail!("--files needs at least one path");
            }
        }
        _ => return Ok(false),
    }
    *i += 1;
    Ok(true)
}

/// The value after option `args[*i]`, advancing `i` to it.
fn value(args: &[OsString], i: &mut usize, option: &str) -> Result<String> {
    *i += 1;
    match args.get(*i) {
        Some(v) => Ok(v.to_string_lossy().into_owned()),
        None => bail!("{option} needs a value"),
    }
}

fn number(text: &str, option: &str, min: u32) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => bail!("{option} {text}: expected a whole number of at least {min}"),
    }
}
