//! Running host commands with errors that say which command failed and what it printed.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::process::{Command, ExitStatus, Output};

use crate::error::{Error, Result};

/// `program arg arg` for messages, quoting arguments that need it.
pub fn display(command: &Command) -> String {
    display_as(command, command.get_program())
}

/// Like [`display`] with another program name, e.g. `cargo` for `$CARGO`'s full path.
pub fn display_as(command: &Command, program: impl AsRef<OsStr>) -> String {
    let mut out = shell_word(program.as_ref());
    for arg in command.get_args() {
        out.push(' ');
        out.push_str(&shell_word(arg));
    }
    out
}

/// One word for a shell: as is when plain, else single-quoted.
pub fn shell_word(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Run to completion with output captured; a non-zero exit is an error quoting stderr.
pub fn output(command: &mut Command) -> Result<Output> {
    let out = command
        .output()
        .map_err(|e| Error::new(format!("cannot run `{}`: {e}", display(command))))?;
    if !out.status.success() {
        let mut msg = format!("`{}` failed ({})", display(command), describe(out.status));
        for stream in [&out.stderr, &out.stdout] {
            let text = String::from_utf8_lossy(stream);
            let text = text.trim();
            if !text.is_empty() {
                // The end of the output is where the reason usually is.
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                for line in tail.into_iter().rev() {
                    let _ = write!(msg, "\n    {line}");
                }
            }
        }
        return Err(Error::new(msg));
    }
    Ok(out)
}

/// Run to completion with output captured; return stdout as text.
pub fn stdout(command: &mut Command) -> Result<String> {
    let out = output(command)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run with inherited stdio; the exit status is returned, not judged.
pub fn status(command: &mut Command) -> Result<ExitStatus> {
    command
        .status()
        .map_err(|e| Error::new(format!("cannot run `{}`: {e}", display(command))))
}

/// "exit code 3", "killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("{status}"),
    }
}

/// Whether `program` is found in $PATH.
pub fn in_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}
