//! Builds `contain-init`, the PID 1 that `Container::init(true)` execs from a sealed memfd
//! (see src/process/init/program.rs), with the same rustc and target as the crate: a
//! freestanding static executable of a few KiB that the library embeds with
//! `include_bytes!`. It needs only what building any Rust binary for a Linux target needs (the
//! target's `core` and a linker).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/process/init/program.rs";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=src/process/init/probe.rs");
    println!("cargo:rerun-if-changed=src/process/init/standby.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("contain-init");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");

    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "bin",
        "--crate-name",
        "contain_init",
    ])
    .args(["--target", &target])
    .args([
        "-C",
        "opt-level=s",
        "-C",
        "panic=abort",
        "-C",
        "debuginfo=0",
    ])
    .args(["-C", "strip=symbols", "-C", "relocation-model=static"])
    .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
    .args([
        "-C",
        "link-arg=-static",
        "-C",
        "link-arg=-Wl,--build-id=none",
    ])
    // The crate's own flags (sanitizers, coverage, ...) are not meant for this program.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RUSTFLAGS");
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        let mut arg = std::ffi::OsString::from("linker=");
        arg.push(linker);
        cmd.arg("-C").arg(arg);
    }
    cmd.arg("-o").arg(&out).arg(source);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("contain: cannot run rustc to build contain-init: {e}"));
    if !status.success() {
        panic!(
            "contain: building contain-init ({source}) for {target} failed ({status}); it needs \
             the target's `core` and a C linker driver (cc), as any Rust binary for Linux does"
        );
    }
}
