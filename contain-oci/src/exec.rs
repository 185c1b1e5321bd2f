//! `exec`: a new process in a running (or created) container, as runc's `exec` with the
//! flags containerd's shim and podman pass.
//!
//! The process is the container's saved `process` with `ARGS` and the flags applied (runc's
//! rules: `--env` appended, `--cwd`, `--user UID[:GID]`, `--additional-gids`, `--cap` added to
//! the bounding, effective and permitted sets (and ambient where the inheritable set is
//! given), `--no-new-privs`, `--tty` as the terminal), or, with `--process FILE` (`-`:
//! stdin), that OCI `process` object (the flags above are then ignored, as runc does), its
//! missing `capabilities`, `rlimits` and `noNewPrivileges` taken from the container's.
//! It gets the container's seccomp profile from the saved config, and enters the container's
//! namespaces and cgroup through the library ([`contain::process::Container::enter`]).
//!
//! Without `--detach` the exec'd process is our child: stdio passes through, the signals we
//! can catch are forwarded to it, and `exec` exits with its status (128+N for signal N).
//! With `--detach`, `exec` returns once the command has been exec'd (an exec failure is an
//! error), writes `--pid-file`, and exits: the process, our direct child (no intermediate
//! process of ours stays), is re-parented to our subreaper (the shim), which reaps it.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use contain::process::{Container, Target, TtyRelay};
use contain::{Pid, Signal};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, Spec};

use crate::cli;
use crate::commands::{self, Ctx};
use crate::state::{self, Locked, Status};
use crate::{log, Error};

/// `exec`: returns the exit status for `exec` to exit with (0 with `--detach`).
///
/// # Errors
///
/// The container does not exist, is stopped ("cannot exec in a stopped container: container
/// ID is not running") or paused (without `--ignore-paused`); the process cannot be made from
/// the flags or `--process`; the library's errors of entering it and starting the command.
pub fn exec(ctx: &Ctx, args: &cli::Exec) -> Result<i32, Error> {
    let locked = Locked::existing(&ctx.root, &args.id)?;
    let st = locked.load()?;
    let spec = commands::saved_config(&locked.dir)?;
    let not_running = || {
        Error::msg(format!(
            "cannot exec in a stopped container: container {} is not running",
            args.id
        ))
    };
    match st.status() {
        Status::Stopped => return Err(not_running()),
        Status::Paused if !args.ignore_paused => {
            return Err(Error::msg(format!(
                "cannot exec in a paused container {} (use --ignore-paused to override)",
                args.id
            )))
        }
        _ => {}
    }
    let pid = Pid::from_raw(st.pid).ok_or_else(not_running)?;
    let target = match Target::open(pid) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(contain::Errno::ESRCH) => return Err(not_running()),
        Err(e) => return Err(e.into()),
    };
    // The pidfd pins the process: still the one `create` made (its start time), or gone.
    if !st.alive() {
        return Err(not_running());
    }
    // No lock while the command runs: `kill`, `delete --force` and `state` must go on.
    drop(locked);

    let process = process(args, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && args.detach && args.console_socket.is_none() {
        return Err(Error::msg(
            "exec --tty --detach needs a --console-socket to hand the terminal over",
        ));
    }
    let (mut c, warnings) =
        contain_oci::spec::exec_process(&process, spec.linux().as_ref()).map_err(Error::from)?;
    for w in warnings {
        log::warn(&w);
    }
    if args.process_label.as_ref().is_some_and(|l| !l.is_empty()) {
        log::warn("--process-label: ignored (SELinux is not supported)");
    }
    if args.apparmor.as_ref().is_some_and(|l| !l.is_empty()) {
        log::warn("--apparmor: ignored (AppArmor is not supported)");
    }
    c = c.parent_death_signal(None).enter(target);
    c = preserve_fds(c, args.preserve_fds)?;
    // oomScoreAdj (the library has no builder for it) is inherited across fork: set on
    // ourselves, it is the command's from its first instruction, and a command that exits
    // at once cannot make it fail.
    contain_oci::spec::AfterCreate {
        oom_score_adj: process.oom_score_adj(),
    }
    .apply(std::process::id() as i32)?;
    let mut child = c.spawn()?;
    let host_pid = child.pid();
    let mut relay = None;
    if let Some(master) = child.take_tty() {
        match &args.console_socket {
            Some(sock) => commands::send_console(sock, &master)?,
            None => {
                relay = Some(TtyRelay::start(
                    master,
                    std::io::stdin().as_fd(),
                    std::io::stdout().as_fd(),
                )?)
            }
        }
    }
    if let Some(path) = &args.pid_file {
        state::write_atomic(path, host_pid.to_string().as_bytes())?;
    }
    if args.detach {
        log::debug(&format!("exec in {}: pid {host_pid}, detached", args.id));
        child.detach();
        return Ok(0);
    }
    // SIGWINCH is the relay's (it resizes the terminal); SIGCHLD is about our own children.
    let skip = [Signal::SIGWINCH, Signal::SIGCHLD];
    let _forwarder = contain::process::SignalForwarder::all_except(&skip)
        .and_then(|mut f| f.forward_to(child.signaller()?).map(|()| f))?;
    let status = child.wait()?;
    if let Some(r) = relay {
        r.finish();
    }
    Ok(status.shell_code())
}

/// Descriptors 3 .. 3+n-1 of ours, passed on at the same numbers.
fn preserve_fds(mut c: Container, n: u32) -> Result<Container, Error> {
    for fd in 3..3 + n as i32 {
        // SAFETY: fd is only borrowed for the dup; --preserve-fds says the caller passed it
        // open, and dup fails with EBADF (reported) if it is not.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let dup = nix::unistd::dup(borrowed)
            .map_err(|e| Error::msg(format!("dup({fd}) for --preserve-fds: {e}")))?;
        c = c.pass_fd(dup, fd);
    }
    Ok(c)
}

/// The OCI process to run: `--process FILE` alone, or the saved config's with the flags.
fn process(args: &cli::Exec, spec: &Spec) -> Result<Process, Error> {
    if let Some(path) = &args.process {
        let bytes = read_process_file(path)?;
        let mut p: Process = serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("--process {}: {e}", path.display())))?;
        // What the object leaves out is the container's, as in runc (its init config takes
        // the container's capabilities, rlimits and no_new_privs when the process has none).
        if let Some(base) = spec.process() {
            if p.capabilities().is_none() {
                p.set_capabilities(base.capabilities().clone());
            }
            if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
                p.set_rlimits(base.rlimits().clone());
            }
            if p.no_new_privileges().is_none() {
                p.set_no_new_privileges(base.no_new_privileges());
            }
        }
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::msg(format!(
                "--process {}: args must not be empty",
                path.display()
            )));
        }
        return Ok(p);
    }
    if args.args.is_empty() {
        return Err(Error::msg(
            "exec needs the command to run (ID COMMAND [ARGS...]) or --process FILE",
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.args.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if !args.env.is_empty() {
        let env = p.env_mut().get_or_insert_with(Vec::new);
        env.extend(args.env.iter().cloned());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        p.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            p.user_mut().set_gid(gid);
        }
    }
    if !args.additional_gids.is_empty() {
        let gids = p
            .user_mut()
            .additional_gids_mut()
            .get_or_insert_with(Vec::new);
        gids.extend(&args.additional_gids);
    }
    if !args.cap.is_empty() {
        add_caps(&mut p, &args.cap)?;
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

fn read_process_file(path: &Path) -> Result<Vec<u8>, Error> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", "stdin (--process -)", e))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// `--user UID[:GID]` (numbers only, as runc).
fn parse_user(s: &str) -> Result<(u32, Option<u32>), Error> {
    let bad = || Error::msg(format!("--user {s:?}: expected UID[:GID] (numbers)"));
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// runc's `--cap`: into the bounding, effective and permitted sets, and the ambient one when
/// the process has an inheritable set (ambient needs inheritable).
fn add_caps(p: &mut Process, names: &[String]) -> Result<(), Error> {
    let mut caps = p.capabilities().clone().unwrap_or_else(|| {
        let mut c = LinuxCapabilities::default();
        c.set_bounding(None)
            .set_effective(None)
            .set_inheritable(None)
            .set_permitted(None)
            .set_ambient(None);
        c
    });
    let mut parsed = Vec::new();
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| Error::msg(format!("--cap {name:?}: unknown capability")))?;
        parsed.push(cap);
    }
    let add = |set: &Option<Capabilities>| {
        let mut s = set.clone().unwrap_or_default();
        s.extend(parsed.iter().copied());
        Some(s)
    };
    let (b, e, pm) = (
        add(caps.bounding()),
        add(caps.effective()),
        add(caps.permitted()),
    );
    caps.set_bounding(b).set_effective(e).set_permitted(pm);
    if caps.inheritable().is_some() {
        let a = add(caps.ambient());
        caps.set_ambient(a);
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flag_parses_as_runc() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:50").unwrap(), (1000, Some(50)));
        assert!(parse_user("www-data").is_err());
        assert!(parse_user("1:x").is_err());
    }

    #[test]
    fn caps_go_to_bounding_effective_permitted_and_ambient_with_inheritable() {
        let mut p = Process::default();
        p.set_capabilities(None);
        add_caps(&mut p, &["CAP_NET_ADMIN".into()]).unwrap();
        let caps = p.capabilities().clone().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::NetAdmin));
        }
        assert!(caps.ambient().is_none(), "no inheritable set: no ambient");
        let mut p = Process::default();
        add_caps(&mut p, &["SYS_PTRACE".into()]).unwrap();
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysPtrace));
        assert!(add_caps(&mut p, &["CAP_BOGUS".into()]).is_err());
    }
}
