//! `contain-oci`: an OCI runtime with runc's command line, built on the `contain` crate.
//!
//! State lives under `--root` (see [`state`]); each command is in [`commands`]. Errors are one
//! line on stderr (and in `--log`), exit status 1.

mod cli;
mod commands;
mod exec;
mod hooks;
mod log;
mod state;
mod update;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// A command's failure: the one line printed and logged.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn msg(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }

    /// An I/O error of `op` on `path`.
    pub fn io(op: &str, path: impl AsRef<Path>, e: std::io::Error) -> Error {
        Error(format!("{op} {}: {e}", path.as_ref().display()))
    }
}

/// Reads a config.json: oci-spec's types, parsed with serde_json directly so that a malformed
/// file is reported with serde's line, column and what was wanted (oci-spec's own loader
/// says only "serde failed").
pub(crate) fn load_spec(path: &Path) -> Result<oci_spec::runtime::Spec, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<contain::Error> for Error {
    fn from(e: contain::Error) -> Error {
        Error(e.to_string())
    }
}

/// runc-style `--version` lines.
fn version() -> String {
    format!(
        "contain-oci version {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        state::OCI_VERSION
    )
}

fn dispatch(cli: Cli) -> Result<u8, Error> {
    if cli.systemd_cgroup {
        return Err(Error::msg(
            "--systemd-cgroup is not supported: contain-oci manages cgroups itself (cgroupfs)",
        ));
    }
    let Some(command) = cli.command else {
        return Err(Error::msg("no command given (see --help)"));
    };
    let ctx = commands::Ctx {
        root: cli.root.unwrap_or_else(state::default_root),
    };
    match command {
        Command::Create(a) => commands::create(&ctx, &a)?,
        Command::Start(a) => commands::start(&ctx, &a.id)?,
        Command::State(a) => commands::state(&ctx, &a.id)?,
        Command::Kill(a) => commands::kill(&ctx, &a)?,
        Command::Delete(a) => commands::delete(&ctx, &a)?,
        Command::Run(a) => {
            let code = commands::run(&ctx, &a)?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::List(a) => commands::list(&ctx, &a)?,
        Command::Features => println!("{:#}", commands::features()),
        Command::Ps(a) => commands::ps(&ctx, &a)?,
        Command::Pause(a) => commands::freeze(&ctx, &a.id, true)?,
        Command::Resume(a) => commands::freeze(&ctx, &a.id, false)?,
        Command::Exec(a) => {
            let code = exec::exec(&ctx, &a)?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::Update(a) => update::update(&ctx, &a)?,
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and usage errors: clap's own text; usage errors exit 1 as runc's do.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    log::init(cli.log.clone(), cli.log_format, cli.debug);
    if cli.version {
        print!("{}", version());
        return ExitCode::SUCCESS;
    }
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log::error(&e.to_string());
            ExitCode::from(1)
        }
    }
}
