//! OCI hooks (config.md#posix-platform-hooks): each runs on the host with the state JSON on its
//! stdin, its `args` (`args[0]` as `argv[0]`), its `env` only, and its `timeout` in seconds.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::Hook;

use crate::Error;

/// Runs `hooks` in order, stopping at the first that fails.
///
/// # Errors
///
/// [`Error`] naming the hook's kind (`which`), index and path: it could not be run, it
/// exited non-zero or by a signal, or it ran past its timeout (then it is killed).
pub fn run(which: &str, hooks: &[Hook], state_json: &str) -> Result<(), Error> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state_json).map_err(|e| {
            Error::msg(format!(
                "{which} hook #{i} ({}): {e}",
                hook.path().display()
            ))
        })?;
    }
    Ok(())
}

/// Runs `hooks` in order, each failure only a warning (poststart, poststop).
pub fn run_warn(which: &str, hooks: &[Hook], state_json: &str) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, state_json) {
            crate::log::warn(&format!(
                "{which} hook #{i} ({}): {e}",
                hook.path().display()
            ));
        }
    }
}

fn run_one(hook: &Hook, state_json: &str) -> Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the write: EPIPE is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let status = match hook.timeout().filter(|&t| t > 0) {
        None => child.wait().map_err(|e| format!("wait: {e}"))?,
        Some(secs) => {
            let pidfd = crate::sys::pidfd_open(child.id() as i32)
                .map_err(|e| format!("pidfd_open: {e}"))?;
            let exited = crate::sys::wait_exit(pidfd.as_fd(), Duration::from_secs(secs as u64))
                .map_err(|e| format!("poll: {e}"))?;
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {secs} s"));
            }
            child.wait().map_err(|e| format!("wait: {e}"))?
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("failed: {status}"))
    }
}
