//! From an OCI bundle's config.json (runtime spec v1.0-1.2, config.md and config-linux.md) to
//! a `contain::process::Container`.
//!
//! [`container`] maps every field this runtime honours onto the library's builders; what it
//! cannot honour but may go on without (AppArmor, SELinux, intelRdt, cgroup v1-only knobs,
//! ...) becomes one line of [`Warnings`], said once each, as crun does; what it cannot do
//! and must not ignore (an unknown mount type, a namespace path of the wrong type, a rootfs
//! without a PID namespace) is a [`contain::Error::Config`] naming the field.
//!
//! Unknown capability names (`CAP_TEST`) and rlimit types (`RLIMIT_TEST`) never reach this
//! module: oci-spec's types refuse them when config.json is parsed.
//!
//! The parts: `process.rs` (`process`), `mounts.rs` (`mounts`), `linux.rs` (`linux` without
//! its resources) and `resources.rs` (`linux.resources`, `linux.cgroupsPath`).

mod linux;
mod mounts;
mod process;
mod resources;
#[cfg(test)]
mod tests;

use std::path::Path;

use contain::process::Container;
use contain::rootfs::{Rootfs, RootfsMode};
use oci_spec::runtime::Spec;

/// What the spec asks that this runtime does not do but goes on without (AppArmor, SELinux,
/// intelRdt, ...): one line each, warned once, as crun does.
pub type Warnings = Vec<String>;

/// The program a config without `process` runs (runtime-tools' `start` test creates and
/// starts one, and both must succeed): `true`, looked up in the default `PATH` inside the
/// container. It exits 0 where the rootfs has `true`; where it has none, the exec fails
/// after `start` and the container stops with the library's exec error, as a missing
/// `process.args[0]` would.
pub const NO_PROCESS_PROGRAM: &str = "true";

/// What the runtime applies itself to the created (parked) container process, from the
/// host, before `start` lets it exec: settings the library has no builder for, which a
/// process inherits across `execve`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterCreate {
    /// `process.oomScoreAdj`: written to `/proc/PID/oom_score_adj` (-1000 to 1000; lowering
    /// it below the current value needs `CAP_SYS_RESOURCE`, proc(5)).
    pub oom_score_adj: Option<i32>,
}

impl AfterCreate {
    /// What `spec` asks to be applied after create.
    pub fn of(spec: &Spec) -> AfterCreate {
        AfterCreate {
            oom_score_adj: spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        }
    }

    /// Applies it to the container's process `pid` (a host pid): call between create and
    /// start, while the process is parked.
    ///
    /// # Errors
    ///
    /// [`contain::Error::Config`] for an `oomScoreAdj` outside -1000 to 1000;
    /// [`contain::Error::Sys`] naming `write` and `/proc/PID/oom_score_adj` with the errno
    /// (`EACCES` lowering it without `CAP_SYS_RESOURCE`, `ENOENT` when the process is gone).
    pub fn apply(&self, pid: i32) -> contain::Result<()> {
        if let Some(adj) = self.oom_score_adj {
            if !(-1000..=1000).contains(&adj) {
                return Err(refuse(
                    "process.oomScoreAdj",
                    format!("{adj} is outside -1000 to 1000"),
                ));
            }
            let path = std::path::PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
            std::fs::write(&path, adj.to_string()).map_err(|e| contain::Error::Sys {
                syscall: "write",
                path: Some(path),
                errno: contain::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
        }
        Ok(())
    }
}

/// The cgroup v2 limits of a `linux.resources` object, as `create` applies them (the same
/// mapping, see [`container`]), with its warnings: what `update` writes to a running
/// container's cgroup. Device rules are not in it (they are a BPF program attached at
/// create).
///
/// # Errors
///
/// [`contain::Error::Config`] naming the field for a value the library refuses (a weight out
/// of range, a swap below the memory limit, an unparsable `cpus`, `mems` or page size, a
/// `unified` key that is not a cgroup file name).
pub fn resource_limits(
    r: &oci_spec::runtime::LinuxResources,
) -> contain::Result<(contain::cgroup::Resources, Warnings)> {
    let mut warn = Warn::default();
    let res = resources::limits(r, &mut warn)?;
    Ok((res, warn.0))
}

/// Collects warnings, each text once.
#[derive(Debug, Default)]
pub(crate) struct Warn(Warnings);

impl Warn {
    /// Adds `line` unless it was said already.
    pub(crate) fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if !self.0.contains(&line) {
            self.0.push(line);
        }
    }
}

/// A refusal of field `what`.
pub(crate) fn refuse(what: &'static str, reason: impl Into<String>) -> contain::Error {
    contain::Error::Config {
        what,
        reason: reason.into(),
    }
}

/// The container `spec` describes, its root and relative paths taken from `bundle`.
///
/// - `process`: args, env, cwd, user (uid, gid, additionalGids, umask),
///   terminal (with `consoleSize` as the pty's first size), capabilities (all five sets),
///   rlimits (exactly those listed),
///   noNewPrivileges. Without `process`: [`NO_PROCESS_PROGRAM`].
///   `oomScoreAdj` is not on the container: the runtime applies [`AfterCreate`] to the
///   parked process.
/// - `root`: the bundle's rootfs bound read-write (runc writes into it), or read-only with
///   `readonly`; no generated `/etc` files (an OCI runtime leaves `/etc` to the bundle).
/// - `hostname`, `domainname`.
/// - `mounts`: the ones the library makes itself are matched to its own;
///   `bind`/`rbind` and `tmpfs` (and `proc`, `sysfs`, `devpts`, `mqueue`, `cgroup2`
///   elsewhere) become [`contain::mount::Mount`]s; other types are refused.
/// - `linux`: namespaces (new, or joined by path), id maps, sysctl,
///   maskedPaths/readonlyPaths, seccomp, devices (nodes), rootfsPropagation, personality
///   (domain `LINUX`/`LINUX32` and flags by their kernel names, unknown ones refused).
/// - `linux.resources` and `cgroupsPath`: cgroup v2 limits (with `unified`), device rules;
///   the cgroup is made at exactly `cgroupsPath` (absolute: below the cgroup v2 mount;
///   relative: below the parent of the runtime's own cgroup), its missing parents with it.
///
/// Opening a namespace path (to join it) is the only thing it does on the host.
///
/// # Errors
///
/// [`contain::Error::Config`] naming the field for what the spec asks and cannot be done;
/// [`contain::Error::Sys`] when a namespace path cannot be opened.
pub fn container(bundle: &Path, spec: &Spec) -> contain::Result<(Container, Warnings)> {
    let mut warn = Warn::default();
    let (mut c, mut security) = process::container(spec.process().as_ref(), &mut warn)?;

    if let Some(name) = spec.hostname() {
        if !name.is_empty() {
            c = c.hostname(name);
        }
    }
    if let Some(name) = spec.domainname() {
        if !name.is_empty() {
            c = c.domainname(name);
        }
    }

    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux::namespaces(&linux)?;
    c = c.namespaces(namespaces.new);
    for ns in namespaces.join {
        c = c.join(ns);
    }
    let has = |k: contain::namespace::Namespaces| namespaces.kinds.contains(k);

    if let Some(root) = spec.root() {
        if !has(contain::namespace::Namespaces::MOUNT) {
            return Err(refuse(
                "linux.namespaces",
                "root needs a mount namespace of the container's (add {\"type\": \"mount\"}): \
                 this runtime builds the root filesystem in it",
            ));
        }
        if !has(contain::namespace::Namespaces::PID) {
            return Err(refuse(
                "linux.namespaces",
                "root needs a PID namespace of the container's (add {\"type\": \"pid\"}, or \
                 join one by path): this runtime mounts a new /proc, which shows the \
                 processes of the PID namespace it is mounted from",
            ));
        }
        let dir = bundle.join(root.path());
        let mode = if root.readonly().unwrap_or(false) {
            RootfsMode::ReadOnly
        } else {
            RootfsMode::ReadWrite
        };
        let mut rootfs = Rootfs::new(dir).mode(mode).etc_files(false);
        rootfs = mounts::apply(
            bundle,
            spec.mounts().as_deref().unwrap_or(&[]),
            has(contain::namespace::Namespaces::CGROUP),
            rootfs,
            &mut warn,
        )?;
        rootfs = linux::paths(&linux, rootfs)?;
        c = c.rootfs(rootfs);
    } else if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        warn.say("mounts: ignored without root (this runtime mounts only inside a root)");
    }

    c = linux::apply(&linux, c, &mut warn)?;
    security.seccomp = linux::seccomp(&linux)?;
    if let contain::security::Seccomp::Profile(p) = &security.seccomp {
        let unknown = p.unknown_names();
        if !unknown.is_empty() {
            warn.say(format!(
                "linux.seccomp: syscalls unknown to this runtime skipped (as runc does): {}",
                unknown.join(", ")
            ));
        }
    }
    let (c2, devices) = resources::apply(&linux, c, &mut warn)?;
    security.device_allowlist = devices;
    c = c2.security(security);

    if spec.solaris().is_some() {
        warn.say("solaris: ignored on Linux");
    }
    if spec.windows().is_some() {
        warn.say("windows: ignored on Linux");
    }
    if spec.vm().is_some() {
        warn.say("vm: ignored (this runtime runs containers, not virtual machines)");
    }
    Ok((c, warn.0))
}

/// The process `exec` starts in a running container (runc's `exec`), before
/// [`contain::process::Container::enter`]: `process` mapped as [`container`] maps
/// config.json's (args, env, cwd, user, terminal, capabilities, rlimits, noNewPrivileges),
/// with the container's seccomp profile from its saved `linux` (as runc gives an exec'd
/// process the container's filter). The container's device rules are not repeated: they are
/// attached to its cgroup, which the process joins. Nothing of `root`, `mounts`, `hostname`
/// or namespaces applies: those are the running container's.
///
/// # Errors
///
/// Those of [`container`] for the `process` fields and `linux.seccomp`.
pub fn exec_process(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
) -> contain::Result<(Container, Warnings)> {
    let mut warn = Warn::default();
    let (c, mut security) = process::container(Some(process), &mut warn)?;
    if let Some(linux) = linux {
        security.seccomp = linux::seccomp(linux)?;
    }
    Ok((c.security(security), warn.0))
}
