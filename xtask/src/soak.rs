//! `cargo xtask soak`: tests/soak.rs alone, release build, with many more starts than the
//! test suite's 1,000 (default 10,000), on this host, as root. The test prints its timings
//! and RSS; it fails when anything of the run is left behind or RSS grew by 5 MiB or more.

use std::ffi::OsString;
use std::process::Command;

use crate::cmd;
use crate::error::{bail, Result};

/// `cargo xtask soak` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Containers started one after another.
    pub count: u32,
}

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options { count: 10_000 };
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--count") => {
                i += 1;
                let v = args.get(i).and_then(|v| v.to_str()).unwrap_or("");
                opts.count = match v.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => bail!("--count takes a whole number of at least 1, not {v:?}"),
                };
            }
            _ => bail!(
                "unknown argument {} (see `cargo xtask help`)",
                args[i].to_string_lossy()
            ),
        }
        i += 1;
    }
    Ok(opts)
}

pub fn run(opts: &Options) -> Result<u8> {
    if !nix_is_root() {
        bail!("the soak needs root (it starts containers with every namespace)");
    }
    crate::setup::ensure(crate::setup::Scope {
        host: true,
        vm: false,
    })?;
    let mut command = Command::new("cargo");
    command
        .args(["test", "--release", "--test", "soak", "--", "--nocapture"])
        .env("CONTAIN_SOAK_COUNT", opts.count.to_string())
        .current_dir(crate::cache::workspace_root());
    eprintln!(
        "xtask: {} (CONTAIN_SOAK_COUNT={})",
        cmd::display(&command),
        opts.count
    );
    let status = cmd::status(&mut command)?;
    Ok(if status.success() { 0 } else { 1 })
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
