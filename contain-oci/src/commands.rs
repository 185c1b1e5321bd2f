//! The commands (runtime spec, runtime.md#operations, with runc's command line).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use contain::cgroup::Cgroup;
use contain::process::{Container, Created, Target};
use contain::{Pid, Signal};
use nix::errno::Errno;
use oci_spec::runtime::{Hook, Spec};

use crate::cli::{self, Format};
use crate::state::{self, Locked, State, Status};
use crate::{hooks, log, Error};

/// How long `delete --force` and cgroup removal wait for a killed container.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What every command gets: the state root.
#[derive(Debug)]
pub struct Ctx {
    /// `--root`.
    pub root: PathBuf,
}

/// The config `create` saved (ROOT/ID/config.json): what `start` and `delete` run hooks
/// from, whatever the bundle's config.json says now.
pub(crate) fn saved_config(dir: &Path) -> Result<Spec, Error> {
    let path = dir.join("config.json");
    crate::load_spec(&path)
}

fn hook_list(spec: &Spec, pick: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<Hook>>) -> Vec<Hook> {
    spec.hooks()
        .as_ref()
        .and_then(|h| pick(h).clone())
        .unwrap_or_default()
}

/// Checks `ociVersion` is a version of the 1.x spec (`1.0.2`, `1.2.0`, `1.0.2-dev`).
fn check_oci_version(v: &str) -> Result<(), Error> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || parts[0] != "1" {
        return Err(Error::msg(format!(
            "config.json: ociVersion {v:?} is not a 1.x runtime spec version"
        )));
    }
    Ok(())
}

/// The container `spec` describes, its warnings logged once each.
fn container_for(bundle: &Path, spec: &Spec) -> Result<Container, Error> {
    let (c, warnings) = contain_oci::spec::container(bundle, spec)?;
    for w in warnings {
        log::warn(&w);
    }
    Ok(c)
}

/// Removes a half-made container's directory unless disarmed.
struct DirGuard<'a>(Option<&'a Locked>);

impl Drop for DirGuard<'_> {
    fn drop(&mut self) {
        if let Some(l) = self.0 {
            let _ = l.remove();
        }
    }
}

/// Sends `fd` over the unix socket at `path` with SCM_RIGHTS (runc's --console-socket).
pub(crate) fn send_console(path: &Path, fd: &OwnedFd) -> Result<(), Error> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let sock = UnixStream::connect(path).map_err(|e| Error::io("connect", path, e))?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::msg(format!("sendmsg(SCM_RIGHTS) to {}: {e}", path.display())))?;
    Ok(())
}

/// What a successful create leaves to `create` or `run`.
struct Made {
    locked: Locked,
    created: Created,
    state: State,
    spec: Spec,
}

/// Everything of `create` but detaching: the directory, the parked container, the state
/// saved, the pid file, the console, the createRuntime hooks. On failure nothing is left.
fn make(ctx: &Ctx, args: &cli::Create) -> Result<Made, Error> {
    let locked = Locked::new_container(&ctx.root, &args.id)?;
    let guard = DirGuard(Some(&locked));
    let bundle =
        std::fs::canonicalize(&args.bundle).map_err(|e| Error::io("open", &args.bundle, e))?;
    let config = bundle.join("config.json");
    let spec = crate::load_spec(&config)?;
    check_oci_version(spec.version())?;
    spec.save(locked.dir.join("config.json"))
        .map_err(|e| Error::msg(format!("saving the config: {e}")))?;
    if args.no_pivot {
        log::debug("--no-pivot: ignored, the library picks how to switch roots");
    }
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && args.console_socket.is_none() {
        return Err(Error::msg(
            "process.terminal is set: a --console-socket is needed to hand the terminal over",
        ));
    }
    let mut container = container_for(&bundle, &spec)?.parent_death_signal(None);
    for fd in 3..3 + args.preserve_fds as i32 {
        // SAFETY: fd is only borrowed for the dup; --preserve-fds says the caller passed it
        // open, and dup fails with EBADF (reported) if it is not.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let dup = nix::unistd::dup(borrowed)
            .map_err(|e| Error::msg(format!("dup({fd}) for --preserve-fds: {e}")))?;
        container = container.pass_fd(dup, fd);
    }
    let fifo = locked.dir.join("exec.fifo");
    let mut created = container.create(&fifo)?;
    // What is set on the parked process before it runs (oomScoreAdj).
    contain_oci::spec::AfterCreate::of(&spec).apply(created.pid().raw())?;
    if let Some(sock) = &args.console_socket {
        let master = created
            .take_tty()
            .ok_or_else(|| Error::msg("the container has no terminal to send"))?;
        send_console(sock, &master)?;
    }
    let pid = created.pid().raw();
    let (_, start_time) = state::proc_stat(pid)
        .ok_or_else(|| Error::msg(format!("the container's process {pid} vanished")))?;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| bundle.join(r.path()))
        .unwrap_or_else(|| bundle.clone());
    let state = State {
        oci_version: state::OCI_VERSION.into(),
        id: args.id.clone(),
        pid,
        start_time,
        bundle,
        rootfs,
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: created.cgroup().map(|c| c.path().to_owned()),
        cgroup_parents_made: created.cgroup_parents_made(),
        created: state::now_rfc3339(),
        exec_fifo: fifo,
        owner: nix::unistd::geteuid().as_raw(),
    };
    locked.save(&state)?;
    let json = state.oci_json().to_string();
    hooks::run(
        "createRuntime",
        &hook_list(&spec, |h| h.create_runtime()),
        &json,
    )?;
    // In the container's namespaces, entered from its parked process (runtime.md#lifecycle
    // step 5); a failure ends the create (the parked process is killed, the state removed).
    hooks::run_in(
        "createContainer",
        &hook_list(&spec, |h| h.create_container()),
        &json,
        created.pidfd(),
    )?;
    if let Some(path) = &args.pid_file {
        state::write_atomic(path, pid.to_string().as_bytes())?;
    }
    std::mem::forget(guard);
    Ok(Made {
        locked,
        created,
        state,
        spec,
    })
}

/// `create`: the container parked before exec; this process then exits and the parked one
/// is re-parented to our subreaper (or init).
pub fn create(ctx: &Ctx, args: &cli::Create) -> Result<(), Error> {
    let Made {
        locked, created, ..
    } = make(ctx, args)?;
    // Last, once the state is saved: until then the parked process dies with us.
    match created.detach() {
        Ok(detached) => {
            log::debug(&format!("created {} (pid {})", args.id, detached.pid));
            Ok(())
        }
        Err(e) => {
            // The parked process is gone (killed from outside): nothing of it may stay.
            let _ = locked.remove();
            Err(e.into())
        }
    }
}

/// Kills the process of `state` (when it is still the one `create` made) and waits up to
/// [`KILL_TIMEOUT`] for it to exit.
fn kill_and_wait(state: &State) -> Result<(), Error> {
    let Some(target) = open_pid(state)? else {
        return Ok(());
    };
    match target.signal(Signal::SIGKILL) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(contain::Errno::ESRCH) => {}
        Err(e) => return Err(e.into()),
    }
    if target.wait_exit(KILL_TIMEOUT)? {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "container {} (pid {}) still there {} s after SIGKILL",
            state.id,
            state.pid,
            KILL_TIMEOUT.as_secs()
        )))
    }
}

/// The container's process when it is alive and still ours (its start time checked after
/// the pidfd pins it); `None` when it is gone.
fn open_pid(state: &State) -> Result<Option<Target>, Error> {
    let Some(pid) = Pid::from_raw(state.pid) else {
        return Ok(None);
    };
    let target = match Target::open(pid) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(contain::Errno::ESRCH) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !state.alive() {
        return Ok(None);
    }
    Ok(Some(target))
}

/// `start`: prestart hooks, the go-ahead through the exec fifo, poststart hooks.
pub fn start(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let locked = Locked::existing(&ctx.root, id)?;
    let st = locked.load()?;
    match st.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::msg(format!(
                "cannot start container {id}: it has stopped"
            )))
        }
        s => {
            return Err(Error::msg(format!(
                "cannot start container {id}: it is {}",
                s.as_str()
            )))
        }
    }
    let spec = saved_config(&locked.dir)?;
    let json = st.oci_json().to_string();
    if let Err(e) = hooks::run("prestart", &hook_list(&spec, |h| h.prestart()), &json) {
        // runtime.md#lifecycle: a failing prestart hook stops the container and the
        // lifecycle goes on at step 9 (delete): the process never runs and the id is gone.
        let _ = kill_and_wait(&st);
        let _ = remove_cgroup(&st);
        let _ = finish_delete(&locked, &st);
        return Err(e);
    }
    // After start is called, before the program runs (runtime.md#lifecycle step 7): in the
    // namespaces of the parked process, which waits on the fifo until the byte below.
    let start_container = hook_list(&spec, |h| h.start_container());
    if !start_container.is_empty() {
        let entered = match open_pid(&st)? {
            Some(target) => {
                hooks::run_in("startContainer", &start_container, &json, target.pidfd())
            }
            None => Err(Error::msg(format!(
                "cannot start container {id}: it has stopped"
            ))),
        };
        if let Err(e) = entered {
            let _ = kill_and_wait(&st);
            let _ = remove_cgroup(&st);
            let _ = finish_delete(&locked, &st);
            return Err(e);
        }
    }
    // Our own reader of the fifo: it sees POLLHUP once no writer is left, i.e. once the
    // parked process (which holds it read-write) has closed it, right before its exec.
    let exec_seen = nix::fcntl::open(
        &st.exec_fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok();
    contain::process::start(&st.exec_fifo).map_err(|e| match e {
        contain::Error::Sys {
            errno: contain::Errno::ENXIO | contain::Errno::ENOENT,
            ..
        } => Error::msg(format!("cannot start container {id}: it has stopped")),
        e => e.into(),
    })?;
    if let Some(fd) = exec_seen {
        wait_hangup(&fd, KILL_TIMEOUT);
    }
    let json = st.oci_json().to_string();
    hooks::run_warn("poststart", &hook_list(&spec, |h| h.poststart()), &json);
    Ok(())
}

/// Waits up to `timeout` for POLLHUP on a fifo reader (every writer gone). While `start`'s
/// byte is still unread the fifo polls readable at once: then the parked process is about to
/// read it, and this yields until it has.
fn wait_hangup(fd: &OwnedFd, timeout: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            log::debug("start: no exec seen on the fifo in time; poststart hooks run anyway");
            return;
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {
                let got = fds[0].revents().unwrap_or(PollFlags::empty());
                if got.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    return;
                }
                std::thread::yield_now();
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// `state`: the OCI state JSON on stdout.
pub fn state(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let locked = Locked::existing(&ctx.root, id)?;
    let st = locked.load()?;
    drop(locked);
    let text =
        serde_json::to_string_pretty(&st.oci_json()).map_err(|e| Error::msg(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `kill ID [SIGNAL]` (`--all`: every process of its cgroup).
pub fn kill(ctx: &Ctx, args: &cli::Kill) -> Result<(), Error> {
    let signal = Signal::from_str(&args.signal)?;
    let locked = Locked::existing(&ctx.root, &args.id)?;
    let st = locked.load()?;
    if st.status() == Status::Stopped {
        return Err(Error::msg("container not running"));
    }
    if args.all {
        if let Some(cg) = &st.cgroup {
            Cgroup::open(cg)?.signal_all(signal)?;
            return Ok(());
        }
    }
    let Some(target) = open_pid(&st)? else {
        return Err(Error::msg("container not running"));
    };
    match target.signal(signal) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Some(contain::Errno::ESRCH) => {
            Err(Error::msg("container not running: no such process"))
        }
        Err(e) => Err(Error::msg(format!("{} to {}: {e}", signal.name(), st.pid))),
    }
}

/// Removes the container's cgroup, when it had one and it is still there, then the parents
/// `create` made for it (deepest first, each only when empty: another container's group in
/// one keeps it).
fn remove_cgroup(st: &State) -> Result<(), Error> {
    let Some(path) = &st.cgroup else {
        return Ok(());
    };
    // Gone already is no error: an empty group of an exited container may be swept by
    // another run's spawn in the same parent (`contain::cgroup::cleanup`: its creator, our
    // `create`, has exited) at any moment, also between these steps.
    let gone = |e: &contain::Error| {
        matches!(
            e,
            contain::Error::Sys {
                errno: contain::Errno::ENOENT,
                ..
            }
        )
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("{}: not a cgroup of ours", path.display())))?;
    match Cgroup::open(path).and_then(|cg| cg.parent()) {
        Ok(Some(parent)) => match parent.remove_child(name, KILL_TIMEOUT) {
            Err(e) if !gone(&e) => return Err(e.into()),
            _ => {}
        },
        Ok(None) => {
            return Err(Error::msg(format!(
                "{}: the root cgroup is not removed",
                path.display()
            )))
        }
        Err(e) if gone(&e) => {}
        Err(e) => return Err(e.into()),
    }
    for parent in &st.cgroup_parents_made {
        match std::fs::remove_dir(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // EBUSY: it holds another group or a process now; keep it and the ones above.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => break,
            Err(e) => {
                return Err(Error::msg(format!(
                    "rmdir {} (a parent cgroup create made): {e}",
                    parent.display()
                )))
            }
        }
    }
    Ok(())
}

/// `delete`: a stopped container (with --force, a created or running one killed first, and
/// one that does not exist is no error).
pub fn delete(ctx: &Ctx, args: &cli::Delete) -> Result<(), Error> {
    let locked = match Locked::existing(&ctx.root, &args.id) {
        Ok(l) => l,
        // As runc and crun: `delete --force` of a container that is not there (any more)
        // succeeds. podman runs it after a create that failed and shows what it prints.
        Err(_)
            if args.force
                && state::validate_id(&args.id).is_ok()
                && !ctx.root.join(&args.id).exists() =>
        {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let st = match locked.load() {
        Ok(st) => st,
        Err(e) => {
            // No state.json while we hold the lock: a `create` that died midway. Clean up.
            if !locked.dir.join("state.json").exists() {
                locked.remove()?;
                if args.force {
                    return Ok(());
                }
            }
            return Err(e);
        }
    };
    let status = st.status();
    if status != Status::Stopped {
        if !args.force {
            return Err(Error::msg(format!(
                "cannot delete container {} that is not stopped: {}",
                args.id,
                status.as_str()
            )));
        }
        if status == Status::Paused {
            if let Some(cg) = &st.cgroup {
                let _ = Cgroup::open(cg).and_then(|c| c.thaw(KILL_TIMEOUT));
            }
        }
        kill_and_wait(&st)?;
    }
    remove_cgroup(&st)?;
    finish_delete(&locked, &st)
}

/// poststop hooks (warnings only), then the state directory goes.
fn finish_delete(locked: &Locked, st: &State) -> Result<(), Error> {
    match saved_config(&locked.dir) {
        Ok(spec) => {
            let mut json = st.oci_json();
            json["status"] = "stopped".into();
            hooks::run_warn(
                "poststop",
                &hook_list(&spec, |h| h.poststop()),
                &json.to_string(),
            );
        }
        Err(e) => log::warn(&format!("poststop hooks not run: {e}")),
    }
    locked.remove()
}

/// `run`: create, start, wait, delete; returns the container's status as a shell gives it.
/// In the foreground, as runc does, the signals this process receives (every one it can
/// catch but SIGCHLD and SIGPIPE: TERM, INT, HUP, QUIT, USR1, USR2, WINCH, ...) are
/// forwarded to the container's process from the moment it exists, so that a caller
/// stopping `run` stops the container, which then decides its own exit status.
/// With `--detach`: create then start, as the two commands do, and return 0 at once (the
/// container stays, for `state`, `kill` and `delete`).
pub fn run(ctx: &Ctx, args: &cli::Run) -> Result<i32, Error> {
    if args.detach {
        let made = make(ctx, &args.create)?;
        let id = made.state.id.clone();
        let Made {
            locked, created, ..
        } = made;
        let detached = match created.detach() {
            Ok(d) => d,
            Err(e) => {
                let _ = locked.remove();
                return Err(e.into());
            }
        };
        drop(locked);
        log::debug(&format!(
            "run --detach: created {id} (pid {})",
            detached.pid
        ));
        if let Err(e) = start(ctx, &id) {
            // Nothing may stay behind a failed run: the parked process and its state go.
            let _ = delete(
                ctx,
                &cli::Delete {
                    force: true,
                    id: id.clone(),
                },
            );
            return Err(e);
        }
        return Ok(0);
    }
    // Blocked from here on, so that none arriving while the container is set up is lost
    // (hooks run through std::process::Command, which resets the mask in its children).
    let mut forward = contain::process::SignalForwarder::all()?;
    let made = make(ctx, &args.create)?;
    let Made {
        locked,
        created,
        state: st,
        spec,
    } = made;
    let json = st.oci_json().to_string();
    let hooked =
        hooks::run("prestart", &hook_list(&spec, |h| h.prestart()), &json).and_then(|()| {
            hooks::run_in(
                "startContainer",
                &hook_list(&spec, |h| h.start_container()),
                &json,
                created.pidfd(),
            )
        });
    if let Err(e) = hooked {
        drop(created);
        let _ = locked.remove();
        return Err(e);
    }
    let mut child = match created.start() {
        Ok(c) => c,
        Err(e) => {
            let _ = locked.remove();
            return Err(e.into());
        }
    };
    if let Err(e) = child.signaller().and_then(|s| forward.forward_to(s)) {
        log::warn(&format!("signals are not forwarded to the container: {e}"));
    }
    let json = st.oci_json().to_string();
    hooks::run_warn("poststart", &hook_list(&spec, |h| h.poststart()), &json);
    let status = child.wait();
    drop(forward);
    drop(child);
    let _ = remove_cgroup(&st);
    finish_delete(&locked, &st)?;
    Ok(status?.shell_code())
}

/// `list`.
pub fn list(ctx: &Ctx, args: &cli::List) -> Result<(), Error> {
    let mut states = Vec::new();
    match std::fs::read_dir(&ctx.root) {
        Ok(entries) => {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if state::validate_id(&name).is_err() {
                    continue;
                }
                let path = e.path().join("state.json");
                if let Ok(text) = std::fs::read(&path) {
                    if let Ok(st) = serde_json::from_slice::<State>(&text) {
                        states.push(st);
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read_dir", &ctx.root, e)),
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    if args.quiet {
        for st in &states {
            println!("{}", st.id);
        }
        return Ok(());
    }
    match args.format {
        Format::Json => {
            let all: Vec<_> = states.iter().map(State::oci_json).collect();
            println!("{}", serde_json::Value::Array(all));
        }
        Format::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for st in &states {
                let status = st.status();
                let pid = if status == Status::Stopped { 0 } else { st.pid };
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    st.id,
                    pid,
                    status.as_str(),
                    st.bundle.display(),
                    st.created,
                    st.owner
                );
            }
        }
    }
    Ok(())
}

/// The host pids of the container: its cgroup's processes, or those in its PID namespace.
fn container_pids(st: &State) -> Result<Vec<i32>, Error> {
    if st.status() == Status::Stopped {
        return Ok(Vec::new());
    }
    if let Some(cg) = &st.cgroup {
        if cg.exists() {
            return Ok(Cgroup::open(cg)?
                .procs()?
                .into_iter()
                .map(|p| p.raw())
                .collect());
        }
    }
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", st.pid))
        .map_err(|e| Error::io("readlink", format!("/proc/{}/ns/pid", st.pid), e))?;
    let ours = std::fs::read_link("/proc/self/ns/pid").ok();
    if ours.as_ref() == Some(&ns) {
        // It shares our PID namespace: only its init is known to be its.
        return Ok(vec![st.pid]);
    }
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc")
        .map_err(|e| Error::io("read_dir", "/proc", e))?
        .flatten()
    {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            == Some(&ns)
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// `ps`.
pub fn ps(ctx: &Ctx, args: &cli::Ps) -> Result<(), Error> {
    let locked = Locked::existing(&ctx.root, &args.id)?;
    let st = locked.load()?;
    drop(locked);
    let pids = container_pids(&st)?;
    match args.format {
        Format::Json => println!("{}", serde_json::json!(pids)),
        Format::Table => {
            println!("{:<8} CMD", "PID");
            for pid in pids {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                println!("{pid:<8} {}", comm.trim_end());
            }
        }
    }
    Ok(())
}

/// `pause` (`freeze: true`) and `resume`.
pub fn freeze(ctx: &Ctx, id: &str, freeze: bool) -> Result<(), Error> {
    let locked = Locked::existing(&ctx.root, id)?;
    let st = locked.load()?;
    let status = st.status();
    let want = if freeze {
        Status::Running
    } else {
        Status::Paused
    };
    if status != want {
        return Err(Error::msg(format!(
            "container {id} is {}, not {}",
            status.as_str(),
            want.as_str()
        )));
    }
    let cg = st
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::msg(format!("container {id} has no cgroup of its own to freeze")))?;
    let cg = Cgroup::open(cg)?;
    if freeze {
        cg.freeze(KILL_TIMEOUT)?;
    } else {
        cg.thaw(KILL_TIMEOUT)?;
    }
    Ok(())
}

/// `features` (runtime spec, features.md): what this runtime supports.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state::OCI_VERSION,
        "hooks": [
            "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop"
        ],
        "mountOptions": [
            "bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "private", "rprivate", "shared", "rshared", "slave", "rslave",
            "unbindable", "runbindable", "mode", "size"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capability_names(),
            "cgroup": { "v1": false, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": true },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false }
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.version": state::OCI_VERSION
        }
    })
}

/// The names (`CAP_CHOWN` ...) of every capability the library knows.
fn capability_names() -> Vec<String> {
    (0..64u8)
        .filter_map(contain::security::Capability::from_number)
        .map(|c| c.to_string())
        .filter(|name| name.parse::<contain::security::Capability>().is_ok())
        .collect()
}
