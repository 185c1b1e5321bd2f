//! `linux` (config-linux.md) without its resources: namespaces, id maps, sysctl, masked and
//! read-only paths, devices, seccomp, rootfsPropagation, personality.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use contain::idmap::IdMap;
use contain::namespace::{Namespace, Namespaces};
use contain::process::{Container, Personality, PersonalityDomain, PersonalityFlags};
use contain::rootfs::{
    DeviceNode, NodeKind, Rootfs, DEFAULT_MASKED_PATHS, DEFAULT_READ_ONLY_PATHS,
};
use contain::security::{
    Seccomp, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOp, SeccompProfile,
    SeccompRule,
};
use oci_spec::runtime::{
    Arch, Linux, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, LinuxPersonality,
    LinuxPersonalityDomain,
};
use serde::Serialize;

use super::{refuse, Warn};

/// The namespaces of `linux.namespaces`.
#[derive(Debug, Default)]
pub(crate) struct NamespacePlan {
    /// Created new (an entry without `path`).
    pub new: Namespaces,
    /// Joined (an entry with `path`), opened and checked to be of the entry's type.
    pub join: Vec<Namespace>,
    /// Every kind the container has of its own, new or joined; the others are the
    /// runtime's (shared with the host).
    pub kinds: Namespaces,
}

/// The library's flag for `typ`.
fn kind(typ: LinuxNamespaceType) -> Namespaces {
    match typ {
        LinuxNamespaceType::Mount => Namespaces::MOUNT,
        LinuxNamespaceType::Cgroup => Namespaces::CGROUP,
        LinuxNamespaceType::Uts => Namespaces::UTS,
        LinuxNamespaceType::Ipc => Namespaces::IPC,
        LinuxNamespaceType::User => Namespaces::USER,
        LinuxNamespaceType::Pid => Namespaces::PID,
        LinuxNamespaceType::Network => Namespaces::NET,
        LinuxNamespaceType::Time => Namespaces::TIME,
    }
}

/// `linux.namespaces`: an entry without `path` is a new namespace, one with a path joins the
/// namespace that file is (`/proc/PID/ns/TYPE`, a bind mount of one), and a type not listed
/// is shared with the runtime (config-linux.md#namespaces).
///
/// # Errors
///
/// [`contain::Error::Config`] for a type listed twice, or a path that is not a namespace of
/// the entry's type; [`contain::Error::Sys`] naming `open` and the path when it cannot be
/// opened.
pub(crate) fn namespaces(linux: &Linux) -> contain::Result<NamespacePlan> {
    let mut plan = NamespacePlan::default();
    for ns in linux.namespaces().as_deref().unwrap_or(&[]) {
        let k = kind(ns.typ());
        if plan.kinds.contains(k) {
            return Err(refuse(
                "linux.namespaces",
                format!("type {:?} is listed twice", ns.typ().to_string()),
            ));
        }
        plan.kinds |= k;
        match ns.path() {
            None => plan.new |= k,
            Some(path) => plan.join.push(open_namespace(path, k)?),
        }
    }
    Ok(plan)
}

/// The namespace file `path`, checked to be of kind `want`.
fn open_namespace(path: &Path, want: Namespaces) -> contain::Result<Namespace> {
    let file = File::open(path).map_err(|e| contain::Error::Sys {
        syscall: "open",
        path: Some(path.to_owned()),
        errno: contain::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let ns = Namespace::from_fd(OwnedFd::from(file)).map_err(|e| {
        refuse(
            "linux.namespaces",
            format!("{path:?} is not a namespace file: {e}"),
        )
    })?;
    if ns.kind() != want {
        return Err(refuse(
            "linux.namespaces",
            format!(
                "{path:?} is a {} namespace, not a {} one",
                ns.kind().proc_name().unwrap_or("?"),
                want.proc_name().unwrap_or("?")
            ),
        ));
    }
    Ok(ns)
}

/// `maskedPaths` and `readonlyPaths` on `rootfs`, less the library's own defaults (which
/// every rootfs gets: a config that lists fewer still gets those); `devices` as
/// [`Rootfs::device`] nodes (mode `0o666` and owner 0:0 unless given); `rootfsPropagation`
/// (`[r]private`, `[r]shared`, `[r]slave`, `[r]unbindable`) as [`Rootfs::root_propagation`].
///
/// # Errors
///
/// [`contain::Error::Config`] for another `rootfsPropagation`, a device of type `a` or with
/// a negative or too large number.
pub(crate) fn paths(linux: &Linux, mut rootfs: Rootfs) -> contain::Result<Rootfs> {
    for d in linux.devices().as_deref().unwrap_or(&[]) {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::Char,
            LinuxDeviceType::B => NodeKind::Block,
            LinuxDeviceType::P => NodeKind::Fifo,
            LinuxDeviceType::A => {
                return Err(refuse(
                    "linux.devices",
                    format!("{:?}: type \"a\" is a cgroup rule, not a node", d.path()),
                ))
            }
        };
        let number = |n: i64| {
            u32::try_from(n).map_err(|_| {
                refuse(
                    "linux.devices",
                    format!("{:?}: {n} is not a device number", d.path()),
                )
            })
        };
        let (major, minor) = if kind == NodeKind::Fifo {
            (0, 0)
        } else {
            (number(d.major())?, number(d.minor())?)
        };
        rootfs = rootfs.device(
            DeviceNode::new(d.path(), kind, major, minor)
                .mode(d.file_mode().map_or(0o666, |m| m & 0o7777))
                .owner(d.uid().unwrap_or(0), d.gid().unwrap_or(0)),
        );
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let (propagation, recursive) = super::mounts::propagation(p).ok_or_else(|| {
            refuse(
                "linux.rootfsPropagation",
                format!("{p:?} is not one of [r]private, [r]shared, [r]slave, [r]unbindable"),
            )
        })?;
        rootfs = rootfs.root_propagation(propagation, recursive);
    }
    let mut seen = Vec::new();
    for p in linux.masked_paths().as_deref().unwrap_or(&[]) {
        if !DEFAULT_MASKED_PATHS.contains(&p.as_str()) && !seen.contains(p) {
            seen.push(p.clone());
            rootfs = rootfs.mask(p);
        }
    }
    seen.clear();
    for p in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        if !DEFAULT_READ_ONLY_PATHS.contains(&p.as_str()) && !seen.contains(p) {
            seen.push(p.clone());
            rootfs = rootfs.read_only_path(p);
        }
    }
    Ok(rootfs)
}

/// The library's maps for `maps`.
fn id_maps(maps: &[LinuxIdMapping]) -> Vec<IdMap> {
    maps.iter()
        .map(|m| IdMap::new(m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The rest of `linux` on `c`: id maps, sysctl, personality, and
/// warnings for what is not applied (intelRdt, mountLabel, ...).
///
/// # Errors
///
/// [`contain::Error::Config`] for id maps without a user namespace of the container's.
pub(crate) fn apply(
    linux: &Linux,
    mut c: Container,
    warn: &mut Warn,
) -> contain::Result<Container> {
    let userns = linux
        .namespaces()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let uid = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gid = linux.gid_mappings().as_deref().unwrap_or(&[]);
    if (!uid.is_empty() || !gid.is_empty()) && !userns {
        return Err(refuse(
            "linux.uidMappings",
            "id maps need a new user namespace (a {\"type\": \"user\"} entry without path)",
        ));
    }
    if !uid.is_empty() {
        c = c.uid_map(&id_maps(uid));
    }
    if !gid.is_empty() {
        c = c.gid_map(&id_maps(gid));
    }

    if let Some(sysctl) = linux.sysctl() {
        let mut keys: Vec<_> = sysctl.iter().collect();
        keys.sort();
        for (k, v) in keys {
            c = c.sysctl(k, v);
        }
    }

    if let Some(p) = linux.personality() {
        c = c.personality(personality(p)?);
    }
    if linux.intel_rdt().is_some() {
        warn.say("linux.intelRdt: ignored (Intel RDT is not supported)");
    }
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
        warn.say("linux.mountLabel: ignored (SELinux is not supported)");
    }
    if linux.memory_policy().is_some() {
        warn.say("linux.memoryPolicy: not applied");
    }
    if linux.time_offsets().is_some() {
        warn.say("linux.timeOffsets: not applied");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        warn.say("linux.netDevices: not moved into the container");
    }
    Ok(c)
}

/// The spec's name of `value` (its serde form: `SCMP_ACT_ERRNO`, `SCMP_ARCH_X86_64`, ...).
fn name_of(value: impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `linux.seccomp` as the library's profile ([`Seccomp::Profile`], compiled at spawn);
/// [`Seccomp::Disabled`] without one (config-linux.md#seccomp: no filter is asked for).
///
/// # Errors
///
/// [`contain::Error::Config`] for an argument index above 5 (the library checks the rest
/// when it compiles the profile: errnoRet with an action that takes none, notify, ...).
pub(crate) fn seccomp(linux: &Linux) -> contain::Result<Seccomp> {
    let Some(s) = linux.seccomp() else {
        return Ok(Seccomp::Disabled);
    };
    let action = |a| name_of(a).parse::<SeccompAction>();
    let mut profile = SeccompProfile::new(action(s.default_action())?);
    // As runc and crun: a name this table lacks is skipped (and warned about), not an error;
    // profiles written for newer kernels name calls older tables lack.
    profile.skip_unknown_syscalls = true;
    profile.default_errno_ret = s.default_errno_ret();
    for arch in s.architectures().as_deref().unwrap_or(&[]) {
        if *arch != Arch::ScmpArchNative {
            profile
                .architectures
                .push(name_of(arch).parse::<SeccompArch>()?);
        }
    }
    for flag in s.flags().as_deref().unwrap_or(&[]) {
        profile.flags.push(name_of(flag).parse::<SeccompFlag>()?);
    }
    profile.listener_path = s.listener_path().clone();
    for sc in s.syscalls().as_deref().unwrap_or(&[]) {
        let mut rule = SeccompRule::new(sc.names().iter().cloned(), action(sc.action())?);
        rule.errno_ret = sc.errno_ret();
        for a in sc.args().as_deref().unwrap_or(&[]) {
            let index = u32::try_from(a.index())
                .ok()
                .filter(|i| *i <= 5)
                .ok_or_else(|| {
                    refuse(
                        "linux.seccomp",
                        format!("argument index {} (0 to 5)", a.index()),
                    )
                })?;
            rule = rule.arg(SeccompArg {
                index,
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
                op: name_of(a.op()).parse::<SeccompOp>()?,
            });
        }
        profile.syscalls.push(rule);
    }
    Ok(Seccomp::Profile(profile))
}

/// `linux.personality` as the library's [`Personality`]: the domain (`LINUX`, `LINUX32`)
/// and the flags by their kernel names (`ADDR_NO_RANDOMIZE`, ...).
///
/// # Errors
///
/// [`contain::Error::Config`] naming `linux.personality` for a flag name the kernel's
/// `personality.h` does not have.
pub(crate) fn personality(p: &LinuxPersonality) -> contain::Result<Personality> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PersonalityDomain::Linux,
        LinuxPersonalityDomain::PerLinux32 => PersonalityDomain::Linux32,
    };
    let mut persona = Personality::new(domain);
    for name in p.flags().as_deref().unwrap_or(&[]) {
        let flag = PersonalityFlags::from_name(name).ok_or_else(|| {
            refuse(
                "linux.personality",
                format!("unknown flag {name:?} (the kernel's names: ADDR_NO_RANDOMIZE, ...)"),
            )
        })?;
        persona = persona.flags(flag);
    }
    Ok(persona)
}
