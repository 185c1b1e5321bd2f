//! `run`: start a command in a container.
//!
//! ```text
//! cargo run --release --example run -- [--ns LIST] [--hostname NAME] [--domainname NAME] [--env K=V]...
//!     [--workdir DIR] [--user USER[:GROUP]] [--rootless]
//!     [--rootfs DIR] [--read-only] [--upper DIR] [--volume SRC:DST[:OPTS]]... [--tmpfs DST[:OPTS]]...
//!     [--shm-size SIZE] [--dns IP]... [--add-host NAME:IP]...
//!     [--no-rootfs] [--sysctl K=V]... [--security-opt OPT]...
//!     [--memory SIZE] [--cpus N] [--pids N] [--device-write-bps DEV:RATE]... [--cpuset-cpus LIST]
//!     [--stats] [--timing] [--pause-after SECS [--pause-for SECS]] [--repeat N [--pool-size K]]
//!     [--] COMMAND [ARG...]
//! cargo run --release --example run -- --image REF [--entrypoint CMD] [--store DIR] [OPTIONS]
//!     [--] [ARG...]
//! ```
//!
//! `--image REF` runs an image, as `docker run IMAGE`: REF is an OCI layout directory with an
//! optional `:TAG` (`DIR:TAG`, as skopeo's `oci:` transport names it), an `oci-archive` or
//! `docker save` tarball (`FILE[:TAG]`), or `NAME[:TAG]` of an image already in the store (see
//! the `images` example; a layout or tarball is imported into the store first). The image's
//! Entrypoint, Cmd, Env, WorkingDir and User apply; ARGs replace its Cmd; `--entrypoint`,
//! `--env`, `--workdir` and `--user` override it, as docker's flags do.
//!
//! As with docker, set-uid binaries work (no_new_privs is off unless
//! `--security-opt no-new-privileges`), the umask is 0022, HOME comes from the image's
//! /etc/passwd, HOSTNAME is set, `-t` sets TERM=xterm, and a missing `--workdir` is created.
//! `-t` is docker's `-it` and, as docker, needs a terminal as stdin ("the input device is
//! not a TTY"): leave it out to pipe input. As root, `--net host` creates no user namespace
//! and keeps the host's hostname, as docker.
//!
//! The container gets its own root filesystem: the image directory given with `--rootfs`, or
//! by default a read-only view of the host's /usr, /bin, /sbin, /lib* and a minimal /etc. Either
//! way on a throw-away writable layer (a tmpfs in the container's mount namespace), so
//! nothing it writes survives it; `--read-only` has no writable layer, `--upper DIR` keeps the
//! writes in DIR. `--no-rootfs` runs in the caller's filesystem instead.
//!
//! Signals sent to `run` go to the container, as with `docker run` (sig-proxy): every one a
//! process can catch but SIGCHLD and SIGPIPE, real-time signals included; SIGTSTP reaches
//! the container instead of stopping `run`. SIGWINCH resizes the container's terminal with
//! `-t`.
//!
//! Limits are docker's flags on cgroup v2: `--memory`, `--memory-swap`, `--cpus`,
//! `--cpu-weight`, `--pids`, `--device-{read,write}-{bps,iops} DEV:RATE` (DEV the path of a
//! whole disk, resolved to its `major:minor` by the library; RATE with docker's units, `1mb`
//! being 1 MiB), `--blkio-weight`, `--cpuset-cpus` and `--cpuset-mems`. A host whose cgroup v2
//! lacks a controller fails them with 125 and the library's message, unless
//! `--limits-best-effort`. `--stats` prints what the container used, `--pause-after` freezes
//! it a while (docker pause) to show the freezer.
//!
//! `--repeat N` runs the command N times, each time in a new container taken from a warm pool
//! (`contain::pool`) of `--pool-size` containers made ahead from the same flags: a run then
//! costs about a process spawn. Each run starts from a pool at rest (the refill between runs
//! is not timed); one line on stderr gives the runs' start-to-exit times (p50, p90, max) and
//! what one container started without the pool took. The exit status is the last run's, or
//! the first failing one's.
//!
//! Exit status, as `docker run`: the command's own; 128+N if a signal N killed it; 125 if
//! contain failed before the command started; 126 if the command cannot be executed; 127 if
//! it was not found.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use contain::cgroup::{Bytes, CpuList, CpuMax, Device, IoMax, Max, Resources, Weight};
use contain::idmap::IdMap;
use contain::image::{Image, ImageCommand, ImageRef, Store};
use contain::mount::{parse_size, Mount};
use contain::namespace::Namespaces;
use contain::net::{Net, VethConfig};
use contain::process::{Child, Container, ExitStatus, SignalForwarder, TtyRelay};
use contain::rootfs::{Rootfs, RootfsMode};
use contain::security::{CapSet, Rlimit, Seccomp};
use contain::Signal;
use contain::{Errno, Error, ExecTarget, SetupStage};

const EXIT_CONTAIN_FAILED: u8 = 125;
const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NetMode {
    None,
    Host,
    Veth,
}

#[derive(Parser, Debug)]
#[command(
    about = "Run a command in new Linux namespaces",
    trailing_var_arg = true
)]
struct Args {
    /// Namespaces to create, exactly: a comma list of user,mount,pid,uts,ipc,net,cgroup,time,
    /// or all. Not root (or --rootless): user is added, with the caller mapped to root inside.
    /// Default: all, without net for --net host.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    ns: Option<Namespaces>,
    /// Hostname inside (default contain; with --net host the host's, as docker); needs a UTS
    /// namespace. `hostname`, /etc/hostname, /etc/hosts and $HOSTNAME agree on it.
    #[arg(long, allow_hyphen_values = true)]
    hostname: Option<String>,
    /// Environment variable for the command (repeatable). PATH has a default.
    #[arg(
        long = "env",
        short = 'e',
        value_name = "K=V",
        allow_hyphen_values = true
    )]
    env: Vec<String>,
    /// Working directory inside (absolute, as docker; created if missing).
    #[arg(long, short = 'w', allow_hyphen_values = true)]
    workdir: Option<PathBuf>,
    /// User and group to run as inside, as docker: NAME or UID, optionally :GROUP or :GID
    /// (names from the image's /etc/passwd and /etc/group; without :GROUP the user's
    /// supplementary groups too).
    #[arg(
        long,
        short = 'u',
        value_name = "USER[:GROUP]",
        allow_hyphen_values = true
    )]
    user: Option<String>,
    /// Use a user namespace mapping the caller to root even when running as root.
    #[arg(long)]
    rootless: bool,
    /// Network: none (own namespace, only lo), host (the host's network), or veth (eth0 with
    /// an address and default route via a host-side veth end). Default: none when net is in
    /// --ns (or --ns is not given), host otherwise; none and veth need net in a given --ns,
    /// host needs it left out. As root, --net host without --ns or --rootless creates no user
    /// namespace (as docker), so that root inside can bind ports below 1024 and open raw
    /// sockets in the host's network; a user namespace (--rootless, or user in --ns) does not
    /// own the host's network namespace, so root inside has no network privilege there.
    #[arg(long, value_enum)]
    net: Option<NetMode>,
    /// The container's eth0 address with --net veth, e.g. 10.88.0.2/30 (default: a free /30
    /// in 10.200.0.0/16).
    #[arg(long, value_name = "CIDR", allow_hyphen_values = true)]
    veth_addr: Option<String>,
    /// Give the container a pseudo-terminal, relayed to ours in raw mode: docker's `-it`.
    /// stdin must be a terminal (else "the input device is not a TTY", as docker): to pipe
    /// input (or </dev/null), leave -t out.
    #[arg(long, short = 't')]
    tty: bool,
    /// Run a minimal init as PID 1 (reaps zombies, forwards signals).
    #[arg(long)]
    init: bool,
    /// Add a capability to docker's default set (repeatable; e.g. NET_ADMIN or ALL).
    #[arg(long = "cap-add", value_name = "CAP", allow_hyphen_values = true)]
    cap_add: Vec<String>,
    /// Drop a capability from the set (repeatable; ALL for none).
    #[arg(long = "cap-drop", value_name = "CAP", allow_hyphen_values = true)]
    cap_drop: Vec<String>,
    /// Do not install the default seccomp filter.
    #[arg(long)]
    no_seccomp: bool,
    /// A resource limit NAME=SOFT[:HARD], e.g. nofile=1024:4096 (repeatable).
    #[arg(long, value_name = "NAME=SOFT[:HARD]", allow_hyphen_values = true)]
    ulimit: Vec<String>,
    /// Memory limit (memory.max), e.g. 256M.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true, value_parser = memory_value)]
    memory: Option<Bytes>,
    /// Memory plus swap, as docker: swap.max = SIZE - --memory ("-1" for unlimited swap, 0
    /// for unset).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true, value_parser = memory_swap_value)]
    memory_swap: Option<String>,
    /// CPU limit as a fraction of one CPU (cpu.max), e.g. 0.5.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = cpus_value)]
    cpus: Option<f64>,
    /// CPU weight 1-10000 (cpu.weight).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = cpu_weight_value)]
    cpu_weight: Option<u64>,
    /// Maximum number of processes (pids.max).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = pids_value)]
    pids: Option<u64>,
    /// Limit reads from a block device, in bytes per second: DEV:RATE with docker's units,
    /// e.g. /dev/sda:1mb or /dev/nvme0n1:512kb (repeatable; io.max rbps). DEV is a whole
    /// disk: the kernel limits disks, not partitions.
    #[arg(long, value_name = "DEV:RATE", allow_hyphen_values = true)]
    device_read_bps: Vec<String>,
    /// Limit writes to a block device, in bytes per second: DEV:RATE (repeatable; io.max wbps).
    #[arg(long, value_name = "DEV:RATE", allow_hyphen_values = true)]
    device_write_bps: Vec<String>,
    /// Limit reads from a block device, in operations per second: DEV:N (repeatable; io.max
    /// riops).
    #[arg(long, value_name = "DEV:N", allow_hyphen_values = true)]
    device_read_iops: Vec<String>,
    /// Limit writes to a block device, in operations per second: DEV:N (repeatable; io.max
    /// wiops).
    #[arg(long, value_name = "DEV:N", allow_hyphen_values = true)]
    device_write_iops: Vec<String>,
    /// Relative block I/O weight, 10 to 1000 as docker's (0: unset), mapped onto io.weight
    /// 1-10000 as runc and crun map it; it takes effect where the disk's I/O scheduler
    /// honours io.weight (iocost).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = blkio_weight_value)]
    blkio_weight: Option<u64>,
    /// CPUs the container may run on, e.g. 0-3 or 1,3 (cpuset.cpus).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from, e.g. 0 or 0-1 (cpuset.mems; NUMA).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    cpuset_mems: Option<String>,
    /// Freeze the container SECS seconds after it starts (docker pause, cgroup.freeze) and
    /// thaw it --pause-for seconds later: a demonstration of freezing from the handle.
    #[arg(long, value_name = "SECS", value_parser = seconds_value)]
    pause_after: Option<Duration>,
    /// How long --pause-after keeps the container frozen (default 1).
    #[arg(long, value_name = "SECS", value_parser = seconds_value, requires = "pause_after")]
    pause_for: Option<Duration>,
    /// Run the command N times, each in a new container from a warm pool (see the top of
    /// this file), and print the start-to-exit times.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// How many containers the --repeat pool keeps ready (default 4).
    #[arg(long, value_name = "K", requires = "repeat")]
    pool_size: Option<usize>,
    /// Cgroup under which the container's cgroup is made (absolute, or relative to the
    /// cgroup v2 root); default: the caller's own cgroup when no controller is needed, else
    /// `/sys/fs/cgroup/contain` (a group that holds processes cannot delegate controllers).
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    cgroup_parent: Option<PathBuf>,
    /// Print one line to stderr at exit: wall time, CPU time, peak memory, OOM kills, and
    /// the bytes and operations read and written on block devices (io.stat).
    #[arg(long)]
    stats: bool,
    /// Print one line to stderr once the command has started: how long each stage of the
    /// start took (the library's `Container::timing`).
    #[arg(long)]
    timing: bool,
    /// The image directory to use as the root (default: a read-only view of the host).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "no_rootfs",
        allow_hyphen_values = true
    )]
    rootfs: Option<PathBuf>,
    /// No writable layer: the root is read-only.
    #[arg(long, conflicts_with = "no_rootfs")]
    read_only: bool,
    /// Keep the writable layer in DIR (overlayfs also uses DIR.work beside it).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["read_only", "no_rootfs"],
        allow_hyphen_values = true
    )]
    upper: Option<PathBuf>,
    /// Bind a host path into the container (repeatable); OPTS as docker's: ro, rw, and a
    /// propagation (rprivate, rslave, rshared, ...).
    #[arg(
        long = "volume",
        short = 'v',
        value_name = "SRC:DST[:OPTS]",
        conflicts_with = "no_rootfs",
        allow_hyphen_values = true
    )]
    volumes: Vec<String>,
    /// Mount a tmpfs at DST in the container (repeatable); OPTS as docker's: size=64m,
    /// mode=1777, uid, gid, nr_inodes, exec, suid, dev, ro (default: noexec,nosuid,nodev).
    #[arg(
        long = "tmpfs",
        value_name = "DST[:OPTS]",
        conflicts_with = "no_rootfs",
        allow_hyphen_values = true
    )]
    tmpfs: Vec<String>,
    /// Run in the caller's filesystem (no rootfs; a mount namespace is still created if asked).
    #[arg(long)]
    no_rootfs: bool,
    /// The command and its arguments (with --image: the arguments, which replace the image's
    /// Cmd).
    #[arg(required_unless_present = "image", value_name = "COMMAND")]
    command: Vec<OsString>,
    /// Size of /dev/shm, e.g. 256m (default 64m, as docker; 0 means the default).
    #[arg(
        long,
        value_name = "SIZE",
        conflicts_with = "no_rootfs",
        allow_hyphen_values = true
    )]
    shm_size: Option<String>,
    /// A nameserver for the container's /etc/resolv.conf (repeatable; replaces the host's).
    #[arg(long, value_name = "IP", allow_hyphen_values = true)]
    dns: Vec<std::net::IpAddr>,
    /// A search domain for /etc/resolv.conf (repeatable; `.` for none).
    #[arg(long = "dns-search", value_name = "DOMAIN", allow_hyphen_values = true)]
    dns_search: Vec<String>,
    /// A resolver option for /etc/resolv.conf, e.g. ndots:2 (repeatable).
    #[arg(long = "dns-option", value_name = "OPT", allow_hyphen_values = true)]
    dns_option: Vec<String>,
    /// A line for /etc/hosts: NAME:IP, or NAME:host-gateway for the host (repeatable).
    #[arg(long = "add-host", value_name = "NAME:IP", allow_hyphen_values = true)]
    add_host: Vec<String>,
    /// A namespaced sysctl KEY=VALUE (repeatable), e.g. net.core.somaxconn=1024
    /// (kernel.hostname and kernel.domainname: --hostname and --domainname).
    #[arg(long, value_name = "KEY=VALUE", allow_hyphen_values = true)]
    sysctl: Vec<String>,
    /// Security options, as docker (repeatable): no-new-privileges[=BOOL] (BOOL as docker's:
    /// 1, t, true, 0, f, false in any of Go's spellings; default false: set-uid binaries such
    /// as sudo work), seccomp=unconfined (as --no-seccomp). apparmor=unconfined and
    /// label=disable (or label:disable) are accepted and do nothing: contain applies no
    /// AppArmor profile or SELinux label; other apparmor, label and seccomp profiles are
    /// refused.
    #[arg(long = "security-opt", value_name = "OPT", allow_hyphen_values = true)]
    security_opt: Vec<String>,
    /// Domain name inside (setdomainname; `hostname -d` may read /etc/hosts instead), as
    /// docker's --domainname; needs a UTS namespace.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    domainname: Option<String>,
    /// Apply the limits (--memory, --cpus, --pids, ...) this host supports and warn
    /// about the rest on stderr, instead of refusing to run (contain's LimitPolicy::BestEffort;
    /// docker drops some unsupported limits with a warning by default).
    #[arg(long)]
    limits_best_effort: bool,
    /// Run an image: an OCI layout DIR[:TAG], an archive FILE[:TAG], or NAME[:TAG] in the store.
    #[arg(
        long,
        value_name = "REF",
        conflicts_with_all = ["rootfs", "no_rootfs"],
        allow_hyphen_values = true
    )]
    image: Option<String>,
    /// With --image: the program to run instead of the image's Entrypoint ("" clears it); the
    /// image's Cmd is dropped too, as docker's --entrypoint.
    #[arg(
        long,
        value_name = "CMD",
        requires = "image",
        allow_hyphen_values = true
    )]
    entrypoint: Option<OsString>,
    /// The image store (default /var/lib/contain as root, else $XDG_DATA_HOME/contain).
    #[arg(
        long,
        value_name = "DIR",
        requires = "image",
        allow_hyphen_values = true
    )]
    store: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_CONTAIN_FAILED);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let (code, msg) = match &e {
                Error::Setup {
                    stage: SetupStage::Exec,
                    errno: Errno::ENOENT,
                    exec,
                } => (
                    // 127 as docker, whichever file is missing; the words say which. The
                    // library's message names the PATH searched and the likely cause.
                    EXIT_NOT_FOUND,
                    format!(
                        "{}: {}: {e}",
                        program_name(&args, exec.as_deref()),
                        match exec.as_ref().map(|f| f.target) {
                            Some(ExecTarget::Missing | ExecTarget::Unknown) | None => {
                                "command not found"
                            }
                            // It exists: its interpreter or loader is what is missing.
                            Some(_) => "cannot run",
                        }
                    ),
                ),
                Error::Setup {
                    stage: SetupStage::Exec,
                    exec,
                    ..
                } => (
                    EXIT_CANNOT_EXECUTE,
                    format!(
                        "{}: cannot execute: {e}",
                        program_name(&args, exec.as_deref())
                    ),
                ),
                _ => (EXIT_CONTAIN_FAILED, e.to_string()),
            };
            eprintln!("contain: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The program that could not run, for messages: as the failure names it, else as given (an
/// image's Entrypoint or Cmd is not among the flags).
fn program_name(args: &Args, exec: Option<&contain::ExecFailure>) -> String {
    match (exec, args.command.first()) {
        (Some(f), _) => f.program.to_string_lossy().into_owned(),
        (None, Some(c)) => c.to_string_lossy().into_owned(),
        (None, None) => "the image's command".to_owned(),
    }
}

fn run(args: &Args) -> contain::Result<ExitCode> {
    if let Some(times) = args.repeat {
        return run_repeated(args, times);
    }
    check_tty_input(args)?;
    let c = container(args)?;
    // Every signal we can catch but SIGCHLD and SIGPIPE goes to the container, as with docker
    // run's sig-proxy (SIGWINCH is the tty relay's with -t); blocked from here on so that one
    // arriving during setup waits for the container instead of ending us.
    let mut forward = if args.tty {
        SignalForwarder::all_except(&[Signal::SIGWINCH])?
    } else {
        SignalForwarder::all()?
    };
    let started = Instant::now();
    let mut child = c.timing(args.timing).spawn()?;
    if let Some(timing) = child.start_timing() {
        print_timing(&timing);
    }
    warn_skipped_limits(args, &child)?;
    let relay = match child.take_tty() {
        Some(master) => Some(TtyRelay::start(
            master,
            std::io::stdin().as_fd(),
            std::io::stdout().as_fd(),
        )?),
        None => None,
    };
    let status = match args.pause_after {
        Some(after) => {
            forward.forward_to(child.signaller()?)?;
            pause_then_wait(
                &mut child,
                after,
                args.pause_for.unwrap_or(Duration::from_secs(1)),
            )?
        }
        // Nothing else to do meanwhile: forwarding in this thread starts none.
        None => {
            forward.forward_until_exit(&child.signaller()?)?;
            child.wait()?
        }
    };
    drop(forward);
    if let Some(relay) = relay {
        relay.finish();
    }
    if args.stats {
        print_stats(&child, started.elapsed(), &status)?;
    }
    Ok(ExitCode::from(status.shell_code().clamp(0, 255) as u8))
}

/// `--repeat N`: N runs from a warm pool, each from a pool at rest; the timing line on
/// stderr. The status is the first failing run's, else the last one's.
fn run_repeated(args: &Args, times: u32) -> contain::Result<ExitCode> {
    const READY: Duration = Duration::from_secs(60);
    for (given, flag) in [
        (args.image.is_some(), "--image"),
        (args.tty, "-t"),
        (args.init, "--init"),
        (args.pause_after.is_some(), "--pause-after"),
        (args.stats, "--stats"),
        (args.no_rootfs, "--no-rootfs"),
    ] {
        if given {
            return Err(Error::Config {
                what: "--repeat",
                reason: format!("cannot be combined with {flag}"),
            });
        }
    }
    let single = Instant::now();
    let status = container(args)?.spawn()?.wait()?;
    let single = single.elapsed();
    if !status.success() {
        return Ok(ExitCode::from(status.shell_code().clamp(0, 255) as u8));
    }
    let pool = contain::pool::Pool::new(container(args)?, args.pool_size.unwrap_or(4))?;
    let mut times_taken = Vec::with_capacity(times as usize);
    // With --timing: each pooled start's stages, for their medians.
    let mut stages: Vec<Vec<(&'static str, Duration)>> = Vec::new();
    let mut last = status;
    for _ in 0..times {
        pool.wait_ready(READY)?;
        let request = request(args)?.timing(args.timing);
        let start = Instant::now();
        let mut child = pool.spawn(request)?;
        last = child.wait()?;
        if let Some(timing) = child.start_timing() {
            stages.push(timing.stages());
        }
        drop(child);
        times_taken.push(start.elapsed());
        if !last.success() {
            break;
        }
    }
    print_stage_medians(&stages);
    times_taken.sort_unstable();
    let at = |q: f64| times_taken[((times_taken.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "contain: {} runs from a pool of {}: start to exit p50 {:.2} ms, p90 {:.2} ms, max {:.2} \
         ms; without the pool {:.2} ms",
        times_taken.len(),
        pool.size(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(1.0)),
        ms(single)
    );
    Ok(ExitCode::from(last.shell_code().clamp(0, 255) as u8))
}

/// `--repeat` with `--timing`: `contain: pooled start stages, medians of N: prepare 0.06,
/// ...` (milliseconds); nothing when no run reported its stages.
fn print_stage_medians(runs: &[Vec<(&'static str, Duration)>]) {
    let Some(first) = runs.first() else { return };
    let medians: Vec<String> = (0..first.len())
        .map(|i| {
            let mut took: Vec<Duration> =
                runs.iter().filter_map(|r| r.get(i)).map(|s| s.1).collect();
            took.sort_unstable();
            format!(
                "{} {:.3}",
                first[i].0,
                took[took.len() / 2].as_secs_f64() * 1e3
            )
        })
        .collect();
    eprintln!(
        "contain: pooled start stages, medians of {} (ms): {}",
        runs.len(),
        medians.join(", ")
    );
}

/// What a `--repeat` run brings to its pooled container: the command and the flags of the
/// process (environment, working directory, user, capabilities, seccomp, rlimits, security
/// options); the isolation is the pool's.
fn request(args: &Args) -> contain::Result<Container> {
    // (--init and -t are refused with --repeat: process_options sets them off.)
    let mut c = process_options(
        args,
        Container::new(&args.command[0]).args(&args.command[1..]),
    )?;
    if let Some(user) = &args.user {
        c = c.user(user.parse()?);
    }
    security_opts(args, security(args, c)?)
}

/// `--pause-after`: freezes the container after `after` (unless it has ended), thaws it
/// `length` later, and waits for it, saying each step on stderr.
fn pause_then_wait(
    child: &mut Child,
    after: Duration,
    length: Duration,
) -> contain::Result<ExitStatus> {
    const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
    if let Some(status) = child.wait_timeout(after)? {
        return Ok(status);
    }
    child.freeze(FREEZE_TIMEOUT)?;
    eprintln!(
        "contain: paused (cgroup.freeze) for {:.3}s",
        length.as_secs_f64()
    );
    // A frozen container does not exit unless killed (SIGKILL ends frozen processes).
    if let Some(status) = child.wait_timeout(length)? {
        return Ok(status);
    }
    child.thaw(FREEZE_TIMEOUT)?;
    eprintln!("contain: resumed");
    child.wait()
}

/// The container the flags describe. The groups of flags are read in this order, which is
/// the order in which bad flags are reported.
fn container(args: &Args) -> contain::Result<Container> {
    let root = nix::unistd::geteuid().is_root();
    let image = image(args)?;
    let c = match &image {
        Some(image) => image.container(&ImageCommand {
            entrypoint: args.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            args: args.command.clone(),
        })?,
        None => Container::new(&args.command[0]).args(&args.command[1..]),
    };
    let (mut c, ns) = namespace_options(args, root, c)?;
    c = process_options(args, c)?;
    c = security(args, c)?;
    c = identity(args, root, ns, c)?;
    for kv in &args.sysctl {
        let (k, v) = key_value(kv, "--sysctl", "KEY=VALUE")?;
        uts_sysctl(k)?;
        c = c.sysctl(k, v);
    }
    c = security_opts(args, c)?;
    c = filesystem(args, image.as_ref(), c)?;
    cgroup(args, c)
}

/// `--image`: the image in the store, imported first when REF is a layout or an archive.
fn image(args: &Args) -> contain::Result<Option<Image>> {
    let Some(reference) = &args.image else {
        return Ok(None);
    };
    let store = match &args.store {
        Some(dir) => Store::open(dir)?,
        None => Store::open_default()?,
    };
    let reference: ImageRef = reference.parse()?;
    Ok(Some(match &reference {
        ImageRef::Stored(name) => store.image(name)?,
        _ => store.import(&reference, None)?,
    }))
}

/// `--ns`, `--net`, `--veth-addr` and `--hostname` (and a user namespace when not root or
/// `--rootless`). Returns the container and the namespaces.
fn namespace_options(
    args: &Args,
    root: bool,
    c: Container,
) -> contain::Result<(Container, Namespaces)> {
    let (mut ns, net) = namespaces_and_net(args)?;
    if root && args.ns.is_none() && matches!(net, NetMode::Host) {
        // As docker as root: no user namespace, which would not own the host's network
        // namespace (no ports below 1024, no raw sockets for root inside).
        ns.remove(Namespaces::USER);
    }
    if args.rootless || !root {
        ns |= Namespaces::USER;
    }
    let mut c = c.network(match (net, &args.veth_addr) {
        (NetMode::Host, _) => Net::Host,
        (NetMode::None, _) => Net::None,
        (NetMode::Veth, None) => Net::veth(),
        (NetMode::Veth, Some(cidr)) => {
            Net::Veth(VethConfig::new().container_address(cidr.parse()?))
        }
    });
    c = c.namespaces(ns);
    match (&args.hostname, ns.contains(Namespaces::UTS)) {
        (Some(name), true) => c = c.hostname(name),
        (None, true) => {
            if let Some(name) = default_hostname(net)? {
                c = c.hostname(name);
            }
        }
        (Some(_), false) => {
            return Err(Error::Config {
                what: "--hostname",
                reason: "needs a UTS namespace of the container's own (add uts to --ns): \
                         without one it has the host's name"
                    .into(),
            })
        }
        (None, false) => {}
    }
    Ok((domainname(args, ns, c)?, ns))
}

/// `--env`, `--workdir`, `--init` and `-t`.
fn process_options(args: &Args, mut c: Container) -> contain::Result<Container> {
    for kv in &args.env {
        let (k, v) = key_value(kv, "--env", "K=V")?;
        c = c.env(k, v);
    }
    if let Some(dir) = &args.workdir {
        c = c.current_dir(dir);
    }
    Ok(c.init(args.init).tty(args.tty))
}

/// Splits a flag's `K=V` value at its first `=`; `form` names the shape in the error.
fn key_value<'a>(
    kv: &'a str,
    what: &'static str,
    form: &str,
) -> contain::Result<(&'a str, &'a str)> {
    kv.split_once('=').ok_or_else(|| Error::Config {
        what,
        reason: format!("{kv:?} is not {form}"),
    })
}

/// `--cap-add`, `--cap-drop`, `--no-seccomp` and `--ulimit`.
fn security(args: &Args, c: Container) -> contain::Result<Container> {
    let mut c = c.capabilities(capabilities(args)?);
    if args.no_seccomp {
        c = c.seccomp(Seccomp::Disabled);
    }
    for l in &args.ulimit {
        c = c.rlimit(Rlimit::parse(l)?);
    }
    Ok(c)
}

/// `--user`, and the id maps of the user namespace.
fn identity(
    args: &Args,
    root: bool,
    ns: Namespaces,
    mut c: Container,
) -> contain::Result<Container> {
    if root && !args.rootless && ns.contains(Namespaces::USER) {
        // As root, keep every id as it is (0 to 2^32 - 2), so that --user with any uid (an
        // OpenShift-style 1000680000 too) and the image's files work.
        c = c
            .uid_map(&[IdMap::new(0, 0, u32::MAX)])
            .gid_map(&[IdMap::new(0, 0, u32::MAX)]);
    }
    if let Some(user) = &args.user {
        c = c.user(user.parse()?);
    }
    Ok(c)
}

/// The root filesystem (unless `--no-rootfs`) and the names in its generated /etc files.
fn filesystem(args: &Args, image: Option<&Image>, mut c: Container) -> contain::Result<Container> {
    if !args.no_rootfs {
        c = c.rootfs(rootfs(args, image)?);
    }
    names(args, c)
}

/// A cgroup of the container's own when there are limits, `--stats` or `--cgroup-parent`.
fn cgroup(args: &Args, mut c: Container) -> contain::Result<Container> {
    let limits = resources(args)?;
    let best_effort = args.limits_best_effort || stats_only(args, &limits);
    let use_cgroup = args.stats
        || args.pause_after.is_some()
        || args.cgroup_parent.is_some()
        || limits != Resources::default();
    if use_cgroup {
        c = c.resources(limits);
    }
    if let Some(parent) = &args.cgroup_parent {
        c = c.cgroup_parent(parent);
    }
    // --stats alone asks for a cgroup only to count: without one (rootless, no delegated
    // cgroup) the counts come from waitid's rusage, and nothing needs to be said.
    if best_effort {
        c = c.limit_policy(contain::cgroup::LimitPolicy::BestEffort);
    }
    Ok(c)
}

/// `--stats` is the only reason for a cgroup: no limit, no `--cgroup-parent`.
fn stats_only(args: &Args, limits: &Resources) -> bool {
    args.stats && args.cgroup_parent.is_none() && *limits == Resources::default()
}

/// `--stats`: wall and CPU time, peak memory and OOM kills, on stderr.
/// `--timing`: `contain: start 4.80 ms: prepare 0.31, clone 0.52, ...` (milliseconds).
fn print_timing(timing: &contain::process::StartTiming) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let stages: Vec<String> = timing
        .stages()
        .iter()
        .map(|(name, took)| format!("{name} {:.2}", ms(*took)))
        .collect();
    eprintln!(
        "contain: start {:.2} ms: {} (ms)",
        ms(timing.total),
        stages.join(", ")
    );
}

fn print_stats(child: &Child, wall: Duration, status: &ExitStatus) -> contain::Result<()> {
    // The cgroup's counters when there is a cgroup (every process of the container), else
    // waitid's rusage (the processes that were waited for); peak memory only from the
    // cgroup: the rusage's maxrss is at least this program's own.
    let u = child.usage()?;
    let secs =
        |d: Option<Duration>| d.map_or("n/a".to_string(), |d| format!("{:.3}s", d.as_secs_f64()));
    let (user, system) = match (&u.cgroup, &u.rusage) {
        (Some(cg), _) => (Some(cg.cpu.user()), Some(cg.cpu.system())),
        (None, Some(ru)) => (Some(ru.utime), Some(ru.stime)),
        (None, None) => (None, None),
    };
    let peak = u
        .memory_peak()
        .map_or("n/a".to_string(), |b| b.0.to_string());
    let oom = u
        .cgroup
        .and_then(|cg| cg.memory_events)
        .map_or("n/a".to_string(), |e| e.oom_kill.to_string());
    // Block-layer I/O from io.stat, with the io controller (which I/O limits enable).
    let io = u.cgroup.and_then(|cg| cg.io).map_or(
        "rbytes=n/a wbytes=n/a rios=n/a wios=n/a".to_string(),
        |io| {
            format!(
                "rbytes={} wbytes={} rios={} wios={}",
                io.rbytes, io.wbytes, io.rios, io.wios
            )
        },
    );
    eprintln!(
        "contain: stats: wall={:.3}s cpu={} user={} system={} peak_memory={peak} oom_kill={oom} {io} status={}",
        wall.as_secs_f64(),
        secs(u.cpu()),
        secs(user),
        secs(system),
        status.shell_code(),
    );
    Ok(())
}

fn capabilities(args: &Args) -> contain::Result<CapSet> {
    let mut caps = CapSet::DOCKER_DEFAULT;
    for name in &args.cap_add {
        caps = if name.eq_ignore_ascii_case("all") {
            CapSet::ALL
        } else {
            caps.with(name.parse()?)
        };
    }
    for name in &args.cap_drop {
        caps = if name.eq_ignore_ascii_case("all") {
            CapSet::EMPTY
        } else {
            caps.without(name.parse()?)
        };
    }
    Ok(caps)
}

fn resources(args: &Args) -> contain::Result<Resources> {
    let mut r = Resources::new();
    if let Some(memory) = args.memory {
        r = r.memory_max(memory);
    }
    if let Some(total) = &args.memory_swap {
        if total == "-1" {
            r = r.memory_swap_max(Max::Unlimited);
        } else if let Some(swap) = memory_swap(args, parse_size(total, "--memory-swap")?)? {
            r = r.memory_swap_max(swap);
        }
    }
    if let Some(cpus) = args.cpus {
        r = r.cpu_max(CpuMax::cpus(cpus)?);
    }
    if let Some(weight) = args.cpu_weight {
        r = r.cpu_weight(Weight::new(weight)?);
    }
    if let Some(pids) = args.pids {
        r = r.pids_max(pids);
    }
    for limit in io_limits(args)? {
        r = r.io_max(limit);
    }
    if let Some(weight) = args.blkio_weight.filter(|&w| w != 0) {
        r = r.io_weight(Weight::from_blkio_weight(weight)?);
    }
    if let Some(cpus) = &args.cpuset_cpus {
        r = r.cpuset_cpus(cpu_list(cpus, "--cpuset-cpus")?);
    }
    if let Some(mems) = &args.cpuset_mems {
        r = r.cpuset_mems(cpu_list(mems, "--cpuset-mems")?);
    }
    Ok(r)
}

/// `--cpuset-cpus` and `--cpuset-mems`: a list such as 0-3,8.
fn cpu_list(s: &str, what: &'static str) -> contain::Result<CpuList> {
    s.parse().map_err(|_| Error::Config {
        what,
        reason: format!("{s:?} is not a list of numbers and ranges, e.g. 0-3 or 1,3"),
    })
}

/// The `--device-{read,write}-{bps,iops}` flags, one io.max entry per device (the disk a path
/// names, resolved by the library).
fn io_limits(args: &Args) -> contain::Result<Vec<IoMax>> {
    let mut limits: Vec<IoMax> = Vec::new();
    let flags: [(&'static str, &[String]); 4] = [
        ("--device-read-bps", &args.device_read_bps),
        ("--device-write-bps", &args.device_write_bps),
        ("--device-read-iops", &args.device_read_iops),
        ("--device-write-iops", &args.device_write_iops),
    ];
    for (what, specs) in flags {
        for spec in specs {
            let (path, rate) = device_rate(spec, what)?;
            let device = Device::from_block_device(path)?;
            let i = match limits.iter().position(|l| l.device == device) {
                Some(i) => i,
                None => {
                    limits.push(IoMax::new(device));
                    limits.len() - 1
                }
            };
            let l = limits[i];
            limits[i] = match what {
                "--device-read-bps" => l.rbps(Bytes(rate)),
                "--device-write-bps" => l.wbps(Bytes(rate)),
                "--device-read-iops" => l.riops(rate),
                _ => l.wiops(rate),
            };
        }
    }
    Ok(limits)
}

/// `DEV:RATE` of an I/O limit flag: the path and the rate, bytes with docker's units (1mb is
/// 1 MiB) for the bps flags, a whole number for the iops ones; at least 2, as the kernel
/// takes (blk-throttle refuses 0 and 1).
fn device_rate<'a>(spec: &'a str, what: &'static str) -> contain::Result<(&'a str, u64)> {
    let bps = what.ends_with("bps");
    let form = if bps {
        "DEV:RATE, e.g. /dev/sda:1mb (bytes per second; units b, kb, mb, gb)"
    } else {
        "DEV:N, e.g. /dev/sda:100 (operations per second)"
    };
    let bad = |why: String| Error::Config {
        what,
        reason: format!("{spec:?}: {why}"),
    };
    let (path, rate) = spec
        .rsplit_once(':')
        .filter(|(p, r)| !p.is_empty() && !r.is_empty())
        .ok_or_else(|| bad(format!("expected {form}")))?;
    let n = if bps {
        parse_size(rate, what)
            .map_err(|_| bad(format!("{rate:?} is not a rate: expected {form}")))?
            .0
    } else {
        rate.trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("{rate:?} is not a whole number: expected {form}")))?
    };
    if n < 2 {
        return Err(bad(
            "the rate must be at least 2 (the kernel refuses 0 and 1; leave the flag out for \
             no limit)"
                .into(),
        ));
    }
    Ok((path, n))
}

/// swap.max for `--memory-swap TOTAL`: TOTAL - --memory; none for 0 (unset, as docker).
fn memory_swap(args: &Args, total: Bytes) -> contain::Result<Option<Max<Bytes>>> {
    if total.0 == 0 {
        return Ok(None);
    }
    let memory = args.memory.ok_or_else(|| Error::Config {
        what: "--memory-swap",
        reason: "needs --memory (it is memory plus swap)".into(),
    })?;
    let swap = total.0.checked_sub(memory.0).ok_or_else(|| Error::Config {
        what: "--memory-swap",
        reason: format!(
            "{} is less than --memory {}: it is memory plus swap, so at least as much",
            total.human(),
            memory.human()
        ),
    })?;
    Ok(Some(Max::Limit(Bytes(swap))))
}

/// The rootfs the flags describe.
fn rootfs(args: &Args, image: Option<&Image>) -> contain::Result<Rootfs> {
    let mut rootfs = match (image, &args.rootfs) {
        (Some(image), _) => image.rootfs()?,
        (None, Some(dir)) => Rootfs::new(dir),
        (None, None) => Rootfs::host(),
    };
    if args.read_only {
        rootfs = rootfs.mode(RootfsMode::ReadOnly);
    }
    if let Some(upper) = &args.upper {
        rootfs = rootfs.persistent_upper(upper);
    }
    for spec in &args.volumes {
        rootfs = rootfs.mount(Mount::parse_volume(spec)?);
    }
    for spec in &args.tmpfs {
        rootfs = rootfs.mount(Mount::parse_tmpfs(spec)?);
    }
    if let Some(size) = &args.shm_size {
        rootfs = rootfs.shm_size(parse_size(size, "--shm-size")?);
    }
    Ok(rootfs)
}

/// `--add-host`, `--dns`, `--dns-search`, `--dns-option`, as docker's.
fn names(args: &Args, mut c: Container) -> contain::Result<Container> {
    for spec in &args.add_host {
        let host: contain::net::ExtraHost = spec.parse()?;
        c = c.add_host(host.name, host.addr);
    }
    for &ip in &args.dns {
        c = c.dns(ip);
    }
    for domain in &args.dns_search {
        c = c.dns_search(domain);
    }
    for option in &args.dns_option {
        c = c.dns_option(option);
    }
    Ok(c)
}

/// docker's `--security-opt`: `no-new-privileges[=BOOL]` (also the old `:` spelling;
/// docker's default is off), `seccomp=unconfined`, and `apparmor=unconfined` and
/// `label=disable` as no-ops (no AppArmor profile or SELinux label is applied here).
fn security_opts(args: &Args, mut c: Container) -> contain::Result<Container> {
    let mut no_new_privs = false;
    for opt in &args.security_opt {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None) => no_new_privs = true,
            ("no-new-privileges", Some(v)) => {
                no_new_privs = parse_bool(v).ok_or_else(|| Error::Config {
                    what: "--security-opt",
                    reason: format!(
                        "{opt:?}: {v:?} is not a boolean (1, t, true, 0, f, false, as docker)"
                    ),
                })?;
            }
            ("seccomp", Some("unconfined")) => c = c.seccomp(Seccomp::Disabled),
            ("apparmor", Some("unconfined")) | ("label", Some("disable")) => {}
            ("seccomp" | "apparmor" | "label", _) => {
                return Err(Error::Config {
                    what: "--security-opt",
                    reason: format!(
                        "{opt:?}: profiles and labels are not supported (contain applies its \
                         own seccomp filter and no AppArmor or SELinux; seccomp=unconfined, \
                         apparmor=unconfined and label=disable are)"
                    ),
                })
            }
            _ => {
                return Err(Error::Config {
                    what: "--security-opt",
                    reason: format!(
                        "{opt:?} is not supported (no-new-privileges[=true|false], \
                         seccomp=unconfined, apparmor=unconfined, label=disable)"
                    ),
                })
            }
        }
    }
    Ok(c.no_new_privs(no_new_privs))
}

/// A boolean as docker parses one (Go's strconv.ParseBool).
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The namespaces and network the flags ask for. `--ns` means exactly the namespaces listed:
/// without it, all of them, less net for `--net host`; the default `--net` follows the list
/// (none with net, host without). A `--net` that contradicts a given list is refused rather
/// than quietly changing it.
fn namespaces_and_net(args: &Args) -> contain::Result<(Namespaces, NetMode)> {
    let Some(ns) = args.ns else {
        let net = args.net.unwrap_or(NetMode::None);
        let mut ns = Namespaces::all();
        if matches!(net, NetMode::Host) {
            ns.remove(Namespaces::NET);
        }
        return Ok((ns, net));
    };
    let has_net = ns.contains(Namespaces::NET);
    match (args.net, has_net) {
        (None, true) => Ok((ns, NetMode::None)),
        (None, false) => Ok((ns, NetMode::Host)),
        (Some(NetMode::Host), true) => Err(Error::Config {
            what: "--net host",
            reason: "it shares the host's network, but --ns lists net: leave net out of --ns"
                .into(),
        }),
        (Some(net @ (NetMode::None | NetMode::Veth)), false) => Err(Error::Config {
            what: "--net",
            reason: format!(
                "--net {} needs a network namespace, but --ns does not list net: add net to \
                 --ns (or leave --net out for the host's network)",
                if matches!(net, NetMode::None) {
                    "none"
                } else {
                    "veth"
                }
            ),
        }),
        (Some(net), _) => Ok((ns, net)),
    }
}

// Value parsers for the numeric flags: negative numbers are taken as values (clap would
// otherwise suggest `-- -1`, which makes -1 the command) and refused with what is wanted.

/// `--cpus`: CPUs as a decimal, 0.01 (cpu.max's least quota, 1 ms per 100 ms period) up to
/// the kernel's largest quota.
fn cpus_value(s: &str) -> Result<f64, String> {
    const MAX: f64 = ((1u64 << 44) - 1) as f64 / 100_000.0;
    let range = format!("--cpus takes 0.01 to {MAX:.0} CPUs (a decimal, e.g. 0.5 or 2)");
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a number: {range}"))?;
    if !n.is_finite() || n * 100_000.0 < 999.5 || n > MAX {
        return Err(range);
    }
    Ok(n)
}

/// `--cpu-weight`: 1 to 10000, as cgroup v2's cpu.weight.
fn cpu_weight_value(s: &str) -> Result<u64, String> {
    match s.trim().parse::<i64>() {
        Ok(n @ 1..=10_000) => Ok(n as u64),
        Ok(_) => Err("--cpu-weight must be 1 to 10000 (cpu.weight; 100 is the default)".into()),
        Err(_) => Err("not a whole number (1 to 10000)".into()),
    }
}

/// `--pids`: at least 1 (pids.max; leave the flag out for no limit).
fn pids_value(s: &str) -> Result<u64, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n as u64),
        Ok(_) => Err(
            "--pids must be greater than 0 (the container itself is a process; leave --pids \
             out for no limit)"
                .into(),
        ),
        Err(_) => Err("not a whole number".into()),
    }
}

/// `--blkio-weight`: 10 to 1000, or 0 for none, as docker's.
fn blkio_weight_value(s: &str) -> Result<u64, String> {
    match s.trim().parse::<i64>() {
        Ok(0) => Ok(0),
        Ok(n @ 10..=1000) => Ok(n as u64),
        Ok(_) => Err("--blkio-weight must be 10 to 1000 (or 0 for none), as docker's".into()),
        Err(_) => Err("not a whole number (10 to 1000)".into()),
    }
}

/// `--pause-after`, `--pause-for`: seconds, a decimal of at least 0.
fn seconds_value(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n).ok())
        .ok_or_else(|| "not a number of seconds (a decimal of 0 or more, e.g. 1.5)".into())
}

/// `--memory`: a size greater than 0, e.g. 256M.
fn memory_value(s: &str) -> Result<Bytes, String> {
    if s.trim().starts_with('-') {
        return Err("--memory must be greater than 0 (leave it out for no limit)".into());
    }
    // docker's size syntax (1.5g, 512MiB), as --shm-size and --tmpfs size= take it.
    match parse_size(s, "--memory") {
        Ok(Bytes(0)) => Err("--memory must be greater than 0 (leave it out for no limit)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--memory-swap`: a size (memory plus swap, e.g. 1g) or -1 for unlimited swap; the rest
/// is checked against `--memory` once both are known.
fn memory_swap_value(s: &str) -> Result<String, String> {
    let wanted = "--memory-swap takes a size, memory plus swap (e.g. 1g: a number with an \
                  optional k, m, g or t suffix), or -1 for unlimited swap";
    if s.trim() == "-1" {
        return Ok("-1".into());
    }
    match parse_size(s, "--memory-swap") {
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err(wanted.into()),
    }
}

/// `-t` is docker's `-it`: it relays our terminal, so stdin must be one. docker refuses
/// input that is not a terminal the same way; passing piped input through the container's
/// terminal would echo it, cut lines at 4096 bytes, act on control bytes and race with a
/// program that switches the terminal to raw mode.
fn check_tty_input(args: &Args) -> contain::Result<()> {
    use std::io::IsTerminal;
    if args.tty && !std::io::stdin().is_terminal() {
        return Err(Error::Config {
            what: "-t",
            reason: "the input device is not a TTY: -t relays a terminal (docker's -it); to \
                     pipe input, or run with </dev/null, leave -t out"
                .into(),
        });
    }
    Ok(())
}

/// kernel.hostname and kernel.domainname are set with their own flags.
fn uts_sysctl(key: &str) -> contain::Result<()> {
    let flag = match key.replace('/', ".").as_str() {
        "kernel.hostname" => "--hostname",
        "kernel.domainname" => "--domainname",
        _ => return Ok(()),
    };
    Err(Error::Config {
        what: "--sysctl",
        reason: format!("{key}: set it with {flag}"),
    })
}

/// The hostname without `--hostname`: the host's with `--net host` (as docker; none to set
/// when the host has an empty one, which the container then inherits), else `contain`.
fn default_hostname(net: NetMode) -> contain::Result<Option<OsString>> {
    if matches!(net, NetMode::Host) {
        let name = nix::unistd::gethostname().map_err(|e| Error::Sys {
            syscall: "gethostname",
            path: None,
            errno: Errno::from_raw(e as i32),
        })?;
        Ok((!name.is_empty()).then_some(name))
    } else {
        Ok(Some("contain".into()))
    }
}

/// `--domainname`, which needs a UTS namespace as `--hostname` does.
fn domainname(args: &Args, ns: Namespaces, c: Container) -> contain::Result<Container> {
    let Some(name) = &args.domainname else {
        return Ok(c);
    };
    if !ns.contains(Namespaces::UTS) {
        return Err(Error::Config {
            what: "--domainname",
            reason: "needs a UTS namespace of the container's own (add uts to --ns)".into(),
        });
    }
    Ok(c.domainname(name))
}

/// `--limits-best-effort`: one warning per limit the host could not apply.
fn warn_skipped_limits(args: &Args, child: &contain::process::Child) -> contain::Result<()> {
    // With --stats alone no limit was asked for: a missing cgroup (and with it the device
    // allowlist, as without --stats) is not worth a warning.
    let quiet = stats_only(args, &resources(args)?);
    for s in child.skipped_limits() {
        if !(quiet && s.controller.is_none()) {
            eprintln!("contain: warning: {s}");
        }
    }
    Ok(())
}
