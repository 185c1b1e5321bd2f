//! The `--log FILE` / `--log-format text|json` lines (containerd shows the last
//! `{"level":"error","msg":...}` line of a failed command to its user). Errors go to stderr
//! too; warnings go to stderr only without `--log` (see [`warn`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::LogFormat;

/// Where log lines go besides stderr.
#[derive(Debug)]
struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets where [`error`], [`warn`] and [`debug`] write; the first call wins.
pub fn init(file: Option<PathBuf>, format: LogFormat, debug: bool) {
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
}

fn line(level: &str, msg: &str, format: LogFormat) -> String {
    let time = crate::state::now_rfc3339();
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        LogFormat::Text => format!("{time} {level} {msg}\n"),
    }
}

fn write(level: &str, msg: &str, to_stderr: bool) {
    let logger = LOGGER.get();
    if let Some(Logger {
        file: Some(path),
        format,
        ..
    }) = logger
    {
        // Appending one write per line: lines of concurrent commands do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = f.write_all(line(level, msg, *format).as_bytes());
        }
    }
    if to_stderr {
        let _ = writeln!(std::io::stderr(), "contain-oci: {level}: {msg}");
    }
}

/// An error: one line on stderr and in the log.
pub fn error(msg: &str) {
    write("error", msg, true);
}

/// A warning: one line in the `--log` file when there is one, else on stderr.
///
/// Not both, as runc does: `create`'s stderr is the container's own (containerd's shim and
/// podman's conmon hand the container's stdio to `create`), so a warning written there would
/// show up in the container's output; the shim passes `--log` and reads that.
pub fn warn(msg: &str) {
    let to_stderr = LOGGER.get().is_none_or(|l| l.file.is_none());
    write("warning", msg, to_stderr);
}

/// A debug line, in the log only, and only with `--debug`.
pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("debug", msg, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_level_msg_and_time() {
        let l = line("error", "container \"x\" does not exist", LogFormat::Json);
        assert!(l.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
