//! `mounts` (config.md#mounts): the library's own standard mounts, binds and new filesystems.

use std::path::Path;

use contain::mount::{Atime, Mount, Propagation};
use contain::rootfs::Rootfs;
use contain::Bytes;
use oci_spec::runtime::Mount as OciMount;

use super::{refuse, Warn};

/// The mounts the library makes itself in every rootfs, with the filesystem type each has
/// there (`/sys` is a sysfs with a network namespace, a bind of the host's otherwise; the
/// cgroup2 at `/sys/fs/cgroup` comes with a cgroup namespace).
const STANDARD: [(&str, &[&str]); 7] = [
    ("/proc", &["proc"]),
    ("/dev", &["tmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/dev/shm", &["tmpfs"]),
    ("/dev/mqueue", &["mqueue"]),
    ("/sys", &["sysfs", "bind", "rbind"]),
    ("/sys/fs/cgroup", &["cgroup", "cgroup2"]),
];

/// Options that say nothing a standard mount lacks: the library mounts them so already
/// (`nosuid`, `noexec`, ...) or they are the kernel's defaults.
const STANDARD_OPTIONS: [&str; 12] = [
    "nosuid",
    "noexec",
    "nodev",
    "rw",
    "ro",
    "relatime",
    "strictatime",
    "defaults",
    "newinstance",
    "rbind",
    "bind",
    "rprivate",
];

/// `rootfs` with `mounts` added: the standard ones (see [`STANDARD`]) are left to the library
/// (a `size=` of `/dev/shm` is its size, an `rw` `/sys/fs/cgroup` makes it writable, other
/// options it cannot honour are warned about, and so is `/sys/fs/cgroup` without a cgroup
/// namespace, `cgroupns`, where the library mounts none); the others become [`Mount`]s in
/// order.
///
/// # Errors
///
/// [`contain::Error::Config`] naming the destination for a relative destination, a type
/// other than `bind`, `tmpfs`, `proc`, `sysfs`, `devpts`, `mqueue` and `cgroup2`, a bind
/// without a source, or an option value that does not parse (`size`, `mode`, `gid`).
pub(crate) fn apply(
    bundle: &Path,
    mounts: &[OciMount],
    cgroupns: bool,
    mut rootfs: Rootfs,
    warn: &mut Warn,
) -> contain::Result<Rootfs> {
    for m in mounts {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(refuse(
                "mounts",
                format!("destination {dest:?} is not an absolute path"),
            ));
        }
        let options = m.options().as_deref().unwrap_or(&[]);
        let typ = m.typ().as_deref().unwrap_or("");
        let bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let typ = if bind { "bind" } else { typ };
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            warn.say(format!(
                "mounts: {dest:?}: uidMappings/gidMappings (id-mapped mounts) not applied"
            ));
        }

        if let Some((_, types)) = STANDARD.iter().find(|(d, _)| Path::new(d) == dest) {
            rootfs = standard(dest, typ, types, options, cgroupns, rootfs, warn)?;
            continue;
        }
        let mount = match typ {
            "bind" => {
                let Some(source) = m.source() else {
                    return Err(refuse(
                        "mounts",
                        format!("{dest:?}: a bind mount needs a source"),
                    ));
                };
                let source = if source.is_absolute() {
                    source.clone()
                } else {
                    bundle.join(source)
                };
                Mount::bind(source, dest)
            }
            "tmpfs" => Mount::tmpfs(dest),
            "proc" => Mount::proc(dest),
            "sysfs" => Mount::sysfs(dest),
            "devpts" => Mount::devpts(dest),
            "mqueue" => Mount::mqueue(dest),
            "cgroup2" => Mount::cgroup2(dest),
            other => {
                return Err(refuse(
                    "mounts",
                    format!(
                        "{dest:?}: type {other:?} is not supported (bind, rbind, tmpfs, proc, \
                         sysfs, devpts, mqueue and cgroup2 are)"
                    ),
                ))
            }
        };
        let mount = match m.source() {
            // A new filesystem's source is a name (mountinfo shows it), a bind's a path.
            Some(name) if typ != "bind" && !name.as_os_str().is_empty() => {
                mount.source_name(name.to_string_lossy())
            }
            _ => mount,
        };
        rootfs = rootfs.mount(options_on(mount, dest, typ, options, warn)?);
    }
    Ok(rootfs)
}

/// A standard mount at `dest` (the library's own, of one of `types`): what of it can be
/// honoured goes on `rootfs`.
fn standard(
    dest: &Path,
    typ: &str,
    types: &[&str],
    options: &[String],
    cgroupns: bool,
    mut rootfs: Rootfs,
    warn: &mut Warn,
) -> contain::Result<Rootfs> {
    if !typ.is_empty() && !types.contains(&typ) {
        warn.say(format!(
            "mounts: {dest:?}: type {typ:?} not honoured, the container gets the runtime's own \
             {} there",
            types[0]
        ));
    }
    for o in options {
        let (key, value) = o.split_once('=').unwrap_or((o, ""));
        match (dest.to_str(), key) {
            (Some("/dev/shm"), "size") => {
                let bytes: Bytes = value
                    .parse()
                    .map_err(|_| refuse("mounts", format!("{dest:?}: size={value:?}")))?;
                rootfs = rootfs.shm_size(bytes);
            }
            (Some("/sys/fs/cgroup"), "rw") => rootfs = rootfs.cgroup_writable(true),
            (Some("/dev/pts"), "ptmxmode" | "mode" | "gid") => {}
            (Some("/dev/shm" | "/dev"), "mode" | "size") => {}
            (_, k) if STANDARD_OPTIONS.contains(&k) => {}
            _ => warn.say(format!(
                "mounts: {dest:?}: option {o:?} not honoured (the runtime mounts its own {} \
                 there)",
                types[0]
            )),
        }
    }
    if dest == Path::new("/sys/fs/cgroup") && !cgroupns {
        warn.say(
            "mounts: \"/sys/fs/cgroup\": not mounted without a cgroup namespace (the runtime \
             mounts a cgroup2 of the container's own cgroup there in one)",
        );
    }
    Ok(rootfs)
}

/// `mount` with the OCI `options` (mount(8) names) applied.
fn options_on(
    mut mount: Mount,
    dest: &Path,
    typ: &str,
    options: &[String],
    warn: &mut Warn,
) -> contain::Result<Mount> {
    let bad = |o: &str| refuse("mounts", format!("{dest:?}: option {o:?} does not parse"));
    let is_bind = typ == "bind";
    if is_bind {
        // `bind` alone is not recursive (mount(8)); `rbind` is.
        let rbind = options.iter().any(|o| o == "rbind");
        mount = mount.recursive(rbind);
    }
    for o in options {
        let (key, value) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        mount = match (key, value) {
            ("bind" | "rbind" | "rw" | "suid" | "dev" | "exec" | "defaults" | "async", None) => {
                mount
            }
            ("ro", None) => mount.read_only(),
            ("nosuid", None) => mount.nosuid(),
            ("nodev", None) => mount.nodev(),
            ("noexec", None) => mount.noexec(),
            ("nosymfollow", None) => mount.nosymfollow(),
            ("relatime", None) => mount.atime(Atime::Relatime),
            ("noatime", None) => mount.atime(Atime::Noatime),
            ("strictatime", None) => mount.atime(Atime::Strictatime),
            (p, None) if propagation(p).is_some() => {
                let (prop, recursive) = propagation(p).unwrap_or((Propagation::Private, false));
                mount.propagation(prop, recursive)
            }
            ("size", Some(v)) if typ == "tmpfs" => {
                mount.size(v.parse::<Bytes>().map_err(|_| bad(o))?)
            }
            ("mode", Some(v)) if !is_bind => {
                mount.mode(u32::from_str_radix(v, 8).map_err(|_| bad(o))?)
            }
            ("ptmxmode", Some(v)) if typ == "devpts" => {
                mount.ptmxmode(u32::from_str_radix(v, 8).map_err(|_| bad(o))?)
            }
            ("gid", Some(v)) if !is_bind => mount.gid(v.parse().map_err(|_| bad(o))?),
            (k, Some(v)) if !is_bind => mount.option(k, v),
            (k, None) if !is_bind && !k.starts_with("no") => mount.option_flag(k),
            _ => {
                warn.say(format!("mounts: {dest:?}: option {o:?} not honoured"));
                mount
            }
        };
    }
    Ok(mount)
}

/// The propagation a mount(8) option names, and whether it is recursive.
pub(crate) fn propagation(option: &str) -> Option<(Propagation, bool)> {
    let (name, recursive) = match option.strip_prefix('r') {
        Some(rest @ ("private" | "shared" | "slave" | "unbindable")) => (rest, true),
        _ => (option, false),
    };
    let p = match name {
        "private" => Propagation::Private,
        "shared" => Propagation::Shared,
        "slave" => Propagation::Slave,
        "unbindable" => Propagation::Unbindable,
        _ => return None,
    };
    Some((p, recursive))
}
