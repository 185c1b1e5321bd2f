//! `process` (config.md#process): what runs, as whom, with which capabilities and limits.

use contain::process::{Container, WindowSize};
use contain::security::{CapSet, CapSets, Capability, Rlimit, Seccomp, Security};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

use super::{refuse, Warn, NO_PROCESS_PROGRAM};

/// The container for `process` (or [`NO_PROCESS_PROGRAM`] without one), and the security
/// settings it asks for, which the caller completes (seccomp, device rules) and applies last
/// with [`Container::security`].
///
/// Capabilities: `bounding` is the library's [`Security::capabilities`], the four others
/// its [`Security::cap_sets`], each exactly as listed (an absent set is empty; without
/// `capabilities` every set is empty, as runc does).
///
/// # Errors
///
/// [`contain::Error::Config`] for empty `args`, an `env` entry without `=`, a relative
/// `cwd`, or an rlimit whose soft limit is above its hard one.
pub(crate) fn container(
    process: Option<&Process>,
    warn: &mut Warn,
) -> contain::Result<(Container, Security)> {
    let mut security = Security {
        capabilities: CapSet::EMPTY,
        no_new_privs: false,
        seccomp: Seccomp::Disabled,
        rlimits: Some(Vec::new()),
        new_session: true,
        cap_sets: None,
        device_allowlist: None,
    };
    let Some(p) = process else {
        return Ok((Container::new(NO_PROCESS_PROGRAM), security));
    };
    let args = p.args().as_deref().unwrap_or(&[]);
    let Some((program, rest)) = args.split_first() else {
        return Err(refuse(
            "process.args",
            "empty: at least the program to run is needed",
        ));
    };
    if p.command_line().is_some() {
        warn.say("process.commandLine: ignored (Windows only)");
    }
    let mut c = Container::new(program).args(rest).env_clear();
    for entry in p.env().as_deref().unwrap_or(&[]) {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(refuse("process.env", format!("{entry:?} is not KEY=VALUE")));
        };
        c = c.env(key, value);
    }
    if !p.cwd().is_absolute() {
        return Err(refuse(
            "process.cwd",
            format!("{:?} is not an absolute path", p.cwd()),
        ));
    }
    c = c.current_dir(p.cwd());

    let user = p.user();
    c = c.uid(user.uid()).gid(user.gid());
    c = c.groups(user.additional_gids().as_deref().unwrap_or(&[]));
    if let Some(mask) = user.umask() {
        c = c.umask(mask);
    }
    if user.username().is_some() {
        warn.say("process.user.username: ignored (Windows only)");
    }

    if p.terminal().unwrap_or(false) {
        c = c.tty(true);
        if let Some(size) = p.console_size() {
            let cells = |n: u64, what: &str| {
                u16::try_from(n).map_err(|_| {
                    refuse(
                        "process.consoleSize",
                        format!("{what} {n} is more than a terminal has (65535)"),
                    )
                })
            };
            c = c.console_size(WindowSize {
                rows: cells(size.height(), "height")?,
                cols: cells(size.width(), "width")?,
            });
        }
    }

    if let Some(caps) = p.capabilities() {
        let set = |c: &Option<Capabilities>| c.as_ref().map(cap_set).unwrap_or(CapSet::EMPTY);
        security.capabilities = set(caps.bounding());
        let (permitted, inheritable) = (set(caps.permitted()), set(caps.inheritable()));
        security.cap_sets = Some(CapSets {
            effective: set(caps.effective()),
            permitted,
            inheritable,
            ambient: raisable_ambient(set(caps.ambient()), permitted, inheritable, warn),
        });
    }

    let mut limits = Vec::new();
    for l in p.rlimits().as_deref().unwrap_or(&[]) {
        if l.soft() > l.hard() {
            return Err(refuse(
                "process.rlimits",
                format!(
                    "{:?}: soft limit {} above hard limit {}",
                    l.typ(),
                    l.soft(),
                    l.hard()
                ),
            ));
        }
        limits.retain(|x: &Rlimit| x.resource != resource(l.typ()));
        limits.push(Rlimit::new(resource(l.typ()), l.soft(), l.hard()));
    }
    security.rlimits = Some(limits);
    security.no_new_privs = p.no_new_privileges().unwrap_or(false);

    if p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty()) {
        warn.say("process.apparmorProfile: ignored (AppArmor is not supported)");
    }
    if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) {
        warn.say("process.selinuxLabel: ignored (SELinux is not supported)");
    }
    if p.io_priority().is_some() {
        warn.say("process.ioPriority: not applied");
    }
    if p.scheduler().is_some() {
        warn.say("process.scheduler: not applied");
    }
    if p.exec_cpu_affinity().is_some() {
        warn.say("process.execCPUAffinity: not applied");
    }
    Ok((c, security))
}

/// The set of `caps` (oci-spec's names are the kernel's, checked when parsed).
/// The part of `ambient` that can be raised: a capability is ambient only if it is also
/// permitted and inheritable (capabilities(7); `PR_CAP_AMBIENT_RAISE` fails with EPERM
/// otherwise). The rest is warned about and left out, as runc and crun do: `runc spec` and
/// `crun spec` list ambient capabilities with an empty inheritable set, and the runtime spec
/// says a runtime SHOULD NOT fail for capabilities it cannot grant (config.md#process).
fn raisable_ambient(
    ambient: CapSet,
    permitted: CapSet,
    inheritable: CapSet,
    warn: &mut Warn,
) -> CapSet {
    let raisable = ambient
        .iter()
        .filter(|&c| permitted.contains(c) && inheritable.contains(c))
        .fold(CapSet::EMPTY, CapSet::with);
    if raisable != ambient {
        let left: Vec<String> = ambient
            .iter()
            .filter(|&c| !raisable.contains(c))
            .map(|c| c.to_string())
            .collect();
        warn.say(format!(
            "process.capabilities.ambient: {} not raised: an ambient capability must also be \
             permitted and inheritable (capabilities(7))",
            left.join(", ")
        ));
    }
    raisable
}

pub(crate) fn cap_set(caps: &Capabilities) -> CapSet {
    caps.iter().fold(CapSet::EMPTY, |set, cap| {
        // oci-spec displays CAP_-less SCREAMING_SNAKE_CASE names, which the library parses.
        match cap.to_string().parse::<Capability>() {
            Ok(c) => set.with(c),
            Err(_) => set,
        }
    })
}

/// The `RLIMIT_*` number of `typ`.
fn resource(typ: PosixRlimitType) -> u32 {
    match typ {
        PosixRlimitType::RlimitCpu => Rlimit::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Rlimit::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Rlimit::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Rlimit::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Rlimit::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Rlimit::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Rlimit::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Rlimit::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Rlimit::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Rlimit::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Rlimit::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Rlimit::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Rlimit::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Rlimit::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Rlimit::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Rlimit::RLIMIT_RTTIME,
    }
}
