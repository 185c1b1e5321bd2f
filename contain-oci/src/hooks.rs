//! OCI hooks (config.md#posix-platform-hooks): each runs with the state JSON on its stdin,
//! its `args` (`args[0]` as `argv[0]`), its `env` only, and its `timeout` in seconds.
//!
//! prestart, createRuntime, poststart and poststop run on the host ([`run`], [`run_warn`]).
//! createContainer and startContainer run in the container's namespaces ([`run_in`]): entered
//! through the library ([`contain::process::Container::enter`]) from the container's parked
//! process, with all capabilities, no seccomp filter and no no_new_privs (a hook is the
//! runtime's, not the container's), in the container's cgroup, with its root as `/`.
//!
//! The path of a createContainer hook is resolved inside the container, as startContainer's
//! is: the spec (config.md#createcontainer-hooks) asks for it to resolve in the runtime's
//! namespace. Doing that would mean executing a host file from inside the container (an
//! `execveat` of a descriptor opened before entering, or `/proc/self/fd/N`), which leaves
//! the host binary reachable from the container as the hook's `/proc/PID/exe` while it runs
//! (runc's CVE-2019-5736), and fails for scripts opened close-on-exec; this runtime resolves
//! it inside instead.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use contain::process::{Container, Target};
use contain::security::{CapSet, Seccomp, Security};
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
            let pid = contain::Pid::from_raw(child.id() as i32)
                .ok_or_else(|| format!("no pid for it: {}", child.id()))?;
            let exited = contain::process::Target::open(pid)
                .and_then(|t| t.wait_exit(Duration::from_secs(secs as u64)))
                .map_err(|e| e.to_string())?;
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

/// Runs `hooks` in order in the namespaces (and cgroup) of the container whose process
/// `target` names, stopping at the first that fails (createContainer, startContainer).
///
/// # Errors
///
/// [`Error`] naming the hook's kind (`which`), index and path: it could not be started in
/// the container (its path not found there, the container's process gone), it exited non-zero
/// or by a signal, or it ran past its timeout (then it is killed).
pub fn run_in(
    which: &str,
    hooks: &[Hook],
    state_json: &str,
    target: std::os::fd::BorrowedFd<'_>,
) -> Result<(), Error> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one_in(hook, state_json, target).map_err(|e| {
            Error::msg(format!(
                "{which} hook #{i} ({}, in the container): {e}",
                hook.path().display()
            ))
        })?;
    }
    Ok(())
}

fn run_one_in(
    hook: &Hook,
    state_json: &str,
    target: std::os::fd::BorrowedFd<'_>,
) -> Result<(), String> {
    let mut c = Container::new(hook.path()).env_clear();
    if let Some((first, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        c = c.arg0(first).args(rest);
    }
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            c = c.env(k, v);
        }
    }
    let security = Security {
        capabilities: CapSet::ALL,
        no_new_privs: false,
        seccomp: Seccomp::Disabled,
        new_session: false,
        ..Security::default()
    };
    let target = Target::from_pidfd(target).map_err(|e| e.to_string())?;
    let mut child = c
        .security(security)
        .stdin(contain::process::Stdio::Piped)
        .enter(target)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the write: EPIPE is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let status = match hook.timeout().filter(|&t| t > 0) {
        None => child.wait().map_err(|e| format!("wait: {e}"))?,
        Some(secs) => match child
            .wait_timeout(Duration::from_secs(secs as u64))
            .map_err(|e| format!("wait: {e}"))?
        {
            Some(status) => status,
            None => {
                let _ = child.kill(contain::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("timed out after {secs} s"));
            }
        },
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("failed: exit status {}", status.shell_code()))
    }
}
