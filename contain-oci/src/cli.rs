//! runc's command line (the subset containerd's shim and podman call), as clap derive types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The whole command line: global flags, then one command.
#[derive(Debug, Parser)]
#[command(
    name = "contain-oci",
    about = "An OCI runtime built on the contain crate (runc's command line)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Where container state lives (default: /run/contain-oci as root,
    /// $XDG_RUNTIME_DIR/contain-oci otherwise).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write log lines (errors, warnings, and with --debug debug lines) to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The format of the --log lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug lines too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: an error).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Print the version, the OCI runtime spec version, and exit.
    #[arg(short = 'v', long)]
    pub version: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How `--log` lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time level msg`.
    Text,
    /// One JSON object a line: `{"level":...,"msg":...,"time":...}` (what containerd reads).
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle, parked before its process runs.
    Create(Create),
    /// Let a created container's process run.
    Start(Id),
    /// Print a container's state as JSON (runtime spec, runtime.md#state).
    State(Id),
    /// Send a signal to a container's process (default TERM).
    Kill(Kill),
    /// Delete a stopped container (running or created ones with --force).
    Delete(Delete),
    /// Create and start a container, wait for it, delete it; exit with its status.
    Run(Run),
    /// List the containers under --root.
    List(List),
    /// Print the features this runtime supports (runtime spec, features.md).
    Features,
    /// List a container's processes (host pids).
    Ps(Ps),
    /// Freeze every process of a container (cgroup.freeze).
    Pause(Id),
    /// Thaw a paused container.
    Resume(Id),
    /// Run a new process inside a running container.
    Exec(Exec),
    /// Change a created, running or paused container's cgroup limits.
    Update(Update),
}

/// A command taking only a container id.
#[derive(Debug, Args)]
pub struct Id {
    /// The container id.
    pub id: String,
}

/// `create` and `run`.
#[derive(Debug, Args)]
pub struct Create {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's host pid here (no newline; written atomically).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to which the pty master is sent (SCM_RIGHTS) when process.terminal.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3 .. 3+N-1 on to the container.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (the rootfs switch is the library's choice).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is made).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// The container id.
    pub id: String,
}

/// `exec` (runc's flags; see `exec.rs` for how they apply).
#[derive(Debug, Args)]
pub struct Exec {
    /// An OCI `process` object (config.md#process) in a JSON file (`-`: stdin) to run; the
    /// flags that shape the process are then ignored.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs (its exit goes to our subreaper).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's host pid here (no newline; written atomically).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to which the pty master is sent (SCM_RIGHTS) with --tty.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Give the process a pseudo-terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The working directory in the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as UID[:GID] (numbers).
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Add a supplementary group (repeatable).
    #[arg(long, short = 'g', value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable; CAP_NET_ADMIN or NET_ADMIN).
    #[arg(long, short = 'c', value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass fds 3 .. 3+N-1 on to the process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// The SELinux label (not supported: a warning).
    #[arg(long, short = 'l', value_name = "LABEL")]
    pub process_label: Option<String>,
    /// The AppArmor profile (not supported: a warning).
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Exec into a paused container too.
    #[arg(long)]
    pub ignore_paused: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct Kill {
    /// Signal every process of the container's cgroup, not only its init.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// The signal: a name with or without SIG (KILL, SIGTERM) or a number.
    #[arg(default_value = "TERM")]
    pub signal: String,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct Delete {
    /// Kill a created or running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container id.
    pub id: String,
}

/// `list` and `ps` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// `list`.
#[derive(Debug, Args)]
pub struct List {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `ps`.
#[derive(Debug, Args)]
pub struct Ps {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The container id.
    pub id: String,
}

/// `update`: runc's flags; `--resources` first, each flag over it. Only what is given changes.
#[derive(Debug, Args)]
pub struct Update {
    /// A JSON `linux.resources` object (runtime spec, config-linux.md#control-groups) in
    /// FILE, or on stdin for `-`.
    #[arg(long, short = 'r', value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (memory.max): bytes, or with a unit k, m, g, t (1024-based); -1: none.
    #[arg(long, short = 'm', value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit (memory.low), as --memory.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap (cgroup v1's memsw): memory.swap.max is this minus the memory
    /// limit; -1: unlimited swap.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (cgroup v1's 2 to 262144), written as cpu.weight.
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds per period (cpu.max); -1: none.
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds (cpu.max).
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// Realtime period (cgroup v1 only: refused).
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime (cgroup v1 only: refused).
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may run on (cpuset.cpus: `0-2,4`).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (cpuset.mems).
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (pids.max); 0 or less: none.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000 (io.weight, scaled).
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// The container id.
    pub id: String,
}

/// `run`: `create`'s flags, and `--detach`.
#[derive(Debug, Args)]
pub struct Run {
    /// Create and start the container, then exit (0) without waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// What `create` takes.
    #[command(flatten)]
    pub create: Create,
}
