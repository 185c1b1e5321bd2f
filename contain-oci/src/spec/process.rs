//! `process` (config.md#process): what runs, as whom, with which capabilities and limits.

use contain::process::Container;
use contain::security::{CapSet, Capability, Rlimit, Seccomp, Security};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

use super::{refuse, Warn, NO_PROCESS_PROGRAM};

/// The container for `process` (or [`NO_PROCESS_PROGRAM`] without one), and the security
/// settings it asks for, which the caller completes (seccomp, device rules) and applies last
/// with [`Container::security`].
///
/// Capabilities: the library keeps one set, used as bounding, effective and permitted, and
/// empties inheritable and ambient (CVE-2022-29162). The set is the config's `bounding` (all
/// five sets empty when `capabilities` is absent, as runc); an `effective` or `permitted`
/// that differs from it, effective capabilities for a uid other than 0 (which the library
/// drops at the identity switch, as docker does), and a non-empty `inheritable` or
/// `ambient`, are warned about.
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
        if p.console_size().is_some() {
            warn.say(
                "process.consoleSize: not applied (the library sizes the terminal from the \
                 caller's own; a console socket's receiver sets the size)",
            );
        }
    }

    if let Some(caps) = p.capabilities() {
        let set = |c: &Option<Capabilities>| c.as_ref().map(cap_set).unwrap_or(CapSet::EMPTY);
        let bounding = set(caps.bounding());
        security.capabilities = bounding;
        for (name, other) in [
            ("effective", set(caps.effective())),
            ("permitted", set(caps.permitted())),
        ] {
            if other != bounding {
                warn.say(format!(
                    "process.capabilities.{name}: the container gets the bounding set \
                     {bounding:?} as its {name} set instead of {other:?} (one set for both)"
                ));
            }
        }
        if user.uid() != 0 && !set(caps.effective()).is_empty() {
            warn.say(format!(
                "process.capabilities.effective: uid {} gets empty effective and permitted \
                 sets (the library keeps them for uid 0 only; the bounding set is kept)",
                user.uid()
            ));
        }
        for (name, other) in [
            ("inheritable", set(caps.inheritable())),
            ("ambient", set(caps.ambient())),
        ] {
            if !other.is_empty() {
                warn.say(format!(
                    "process.capabilities.{name}: not applied, the {name} set stays empty \
                     (CVE-2022-29162)"
                ));
            }
        }
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
