//! Namespaced sysctls: validated in the parent, written by the child through `/proc/sys`
//! once it is in its own namespaces (a `/proc/sys/net` or IPC file opened by a process shows
//! that process's namespace) and before its rootfs makes `/proc/sys` read-only.

use std::collections::BTreeMap;
use std::ffi::CString;

use crate::namespace::Namespaces;
use crate::{Error, Result};

/// The IPC sysctls the kernel keeps per IPC namespace (runc's and the OCI spec's list).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// docker's defaults for every network namespace it creates: any user may bind ports below
/// 1024 (the namespace has no other users to protect them from), and any group may open ICMP
/// echo ("ping") sockets, so that `ping` needs neither setuid nor CAP_NET_RAW.
pub(crate) const UNPRIVILEGED_PORT_START: &str = "net.ipv4.ip_unprivileged_port_start";
/// See [`UNPRIVILEGED_PORT_START`].
pub(crate) const PING_GROUP_RANGE: &str = "net.ipv4.ping_group_range";

/// One sysctl write for the child.
#[derive(Debug)]
pub(crate) struct PreparedSysctl {
    /// `/proc/sys/...`.
    pub path: CString,
    pub value: Vec<u8>,
    /// A caller's own setting fails the spawn; a default that the kernel lacks (or refuses,
    /// e.g. a read-only `/proc/sys` in the caller's world) is skipped.
    pub required: bool,
}

/// The dotted name and the `/proc/sys` path of `key` (`net.core.somaxconn` or
/// `net/core/somaxconn`: the slash form keeps dots inside a component, as in `eth0.100`).
fn names(key: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::config("sysctl", format!("{key:?}: {why}"));
    let (dotted, path) = if key.contains('/') {
        (key.replace('/', "."), key.to_owned())
    } else {
        (key.to_owned(), key.replace('.', "/"))
    };
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad("empty, `.` or `..` component"));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'+'))
    {
        return Err(bad(
            "not a sysctl name (letters, digits, `_`, `-`, `.`, `/`)",
        ));
    }
    Ok((dotted, format!("/proc/sys/{path}")))
}

/// Checks that `key` is namespaced and that the container has its own namespace of that kind.
fn check_namespaced(dotted: &str, created: Namespaces) -> Result<()> {
    let refuse = |why: String| Err(Error::config("sysctl", format!("{dotted}: {why}")));
    if IPC_KEYS.contains(&dotted) || dotted.starts_with("fs.mqueue.") {
        if !created.contains(Namespaces::IPC) {
            return refuse(
                "needs the container's own IPC namespace (Namespaces::IPC); it would change \
                 the host's"
                    .into(),
            );
        }
        return Ok(());
    }
    if dotted.starts_with("net.") {
        if !created.contains(Namespaces::NET) {
            return refuse(
                "needs the container's own network namespace (Namespaces::NET); it would \
                 change the host's"
                    .into(),
            );
        }
        return Ok(());
    }
    if dotted == "kernel.hostname" {
        return refuse("set it with Container::hostname".into());
    }
    if dotted == "kernel.domainname" {
        return refuse("set it with Container::domainname".into());
    }
    refuse(
        "not a namespaced sysctl: it would change the host's kernel for every process (only \
         kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.* are namespaced, as in \
         runc and docker)"
            .into(),
    )
}

/// The writes for a container with namespaces `created`: the caller's `sysctls`, checked,
/// then docker's network defaults where the caller did not set them. `gid_range` is the
/// (lowest, highest) gid mapped in a new user namespace: `ping_group_range` must name gids
/// the writer's namespace maps (`EINVAL` otherwise), so it covers the mapped range there.
pub(crate) fn prepare(
    sysctls: &BTreeMap<String, String>,
    created: Namespaces,
    gid_range: Option<(u32, u32)>,
) -> Result<Vec<PreparedSysctl>> {
    let mut out = Vec::new();
    let mut given = Vec::new();
    for (key, value) in sysctls {
        let (dotted, path) = names(key)?;
        check_namespaced(&dotted, created)?;
        if value.is_empty() || value.contains('\0') {
            return Err(Error::config(
                "sysctl",
                format!("{dotted}: the value {value:?} is empty or has a NUL byte"),
            ));
        }
        if let (PING_GROUP_RANGE, Some(range)) = (dotted.as_str(), gid_range) {
            check_ping_group_range(value, range)?;
        }
        out.push(PreparedSysctl {
            path: CString::new(path).map_err(|_| Error::config("sysctl", "NUL byte"))?,
            value: value.as_bytes().to_vec(),
            required: true,
        });
        given.push(dotted);
    }
    if created.contains(Namespaces::NET) {
        let (low, high) = gid_range.unwrap_or((0, 2_147_483_647));
        let range = format!("{low} {}", high.min(2_147_483_647));
        for (key, value) in [(UNPRIVILEGED_PORT_START, "0"), (PING_GROUP_RANGE, &range)] {
            if given.iter().any(|g| g == key) {
                continue;
            }
            let (_, path) = names(key)?;
            out.push(PreparedSysctl {
                path: CString::new(path).map_err(|_| Error::config("sysctl", "NUL byte"))?,
                value: value.as_bytes().to_vec(),
                required: false,
            });
        }
    }
    Ok(out)
}

/// In a new user namespace the kernel takes only `ping_group_range` bounds it maps (else a bare
/// `EINVAL` from the child's write): refused here with the mapped range. A value that is not
/// two numbers is left to the kernel.
fn check_ping_group_range(value: &str, (low, high): (u32, u32)) -> Result<()> {
    let nums: Vec<Option<u64>> = value.split_whitespace().map(|n| n.parse().ok()).collect();
    let [Some(a), Some(b)] = nums[..] else {
        return Ok(());
    };
    let mapped = |g: u64| (u64::from(low)..=u64::from(high)).contains(&g);
    if mapped(a) && mapped(b) {
        return Ok(());
    }
    Err(Error::config(
        "sysctl",
        format!(
            "{PING_GROUP_RANGE}={value:?}: the container's user namespace maps gids {low} to \
             {high} only, and the kernel accepts no other (EINVAL): give a range within them, \
             e.g. \"{low} {high}\" (the default)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_owned(), v.to_owned())])
    }

    #[test]
    fn namespaced_keys_need_their_namespace() {
        let all = Namespaces::all();
        for k in [
            "net.core.somaxconn",
            "net/ipv4/conf/eth0.100/forwarding",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
        ] {
            assert!(prepare(&one(k, "1"), all, None).is_ok(), "{k}");
        }
        let e = prepare(&one("net.core.somaxconn", "1"), Namespaces::IPC, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("net.core.somaxconn") && e.contains("network namespace"),
            "{e}"
        );
        let e = prepare(&one("kernel.msgmax", "1"), Namespaces::NET, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel.msgmax") && e.contains("IPC namespace"),
            "{e}"
        );
    }

    #[test]
    fn host_wide_keys_are_refused_with_the_key_and_why() {
        for k in [
            "kernel.pid_max",
            "vm.swappiness",
            "fs.file-max",
            "kernel.hostname",
        ] {
            let e = prepare(&one(k, "1"), Namespaces::all(), None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(k), "{e}");
        }
        for k in ["", "net..x", "net/../../etc", "net.a b", "/net/x"] {
            assert!(
                prepare(&one(k, "1"), Namespaces::all(), None).is_err(),
                "{k:?}"
            );
        }
        assert!(prepare(&one("net.x", ""), Namespaces::all(), None).is_err());
    }

    #[test]
    fn docker_defaults_in_a_new_network_namespace_and_the_callers_value_wins() {
        let d = prepare(&BTreeMap::new(), Namespaces::NET, None).unwrap();
        let got: Vec<(&str, &[u8], bool)> = d
            .iter()
            .map(|s| (s.path.to_str().unwrap(), s.value.as_slice(), s.required))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                    &b"0"[..],
                    false
                ),
                (
                    "/proc/sys/net/ipv4/ping_group_range",
                    &b"0 2147483647"[..],
                    false
                )
            ]
        );
        assert_eq!(
            d[0].path.to_bytes(),
            b"/proc/sys/net/ipv4/ip_unprivileged_port_start"
        );
        let d = prepare(&BTreeMap::new(), Namespaces::NET, Some((0, 65_535))).unwrap();
        assert_eq!(d[1].value, b"0 65535");
        // The caller's range must be mapped (the input with the run example's map).
        let e = prepare(
            &one(PING_GROUP_RANGE, "0 2147483647"),
            Namespaces::NET | Namespaces::USER,
            Some((0, 65_535)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ping_group_range") && e.contains("maps gids 0 to 65535"),
            "{e}"
        );
        let ok = prepare(
            &one(PING_GROUP_RANGE, "100 200"),
            Namespaces::NET,
            Some((0, 65_535)),
        );
        assert!(ok.is_ok());
        assert!(prepare(
            &one(PING_GROUP_RANGE, "0 2147483647"),
            Namespaces::NET,
            None
        )
        .is_ok());
        let d = prepare(&one(UNPRIVILEGED_PORT_START, "1024"), Namespaces::NET, None).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].value.as_slice(), d[0].required), (&b"1024"[..], true));
        assert!(prepare(&BTreeMap::new(), Namespaces::IPC, None)
            .unwrap()
            .is_empty());
    }
}
