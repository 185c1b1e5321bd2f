//! Name resolution settings for a container: docker's `--add-host` entries and the resolver
//! configuration (`/etc/resolv.conf`) derived from the host's, as docker's libnetwork does.
//!
//! The files themselves are generated and mounted by [`crate::rootfs`] (see its
//! [`/etc` section](crate::rootfs#etchosts-etchostname-etcresolvconf)); this module holds the
//! caller's settings and the pure text processing, with no I/O of its own.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::{Error, Result};

/// The nameservers a container gets when its own network namespace would otherwise have none
/// (the host's were all loopback addresses, which do not answer there): Google's public DNS,
/// as docker.
pub const FALLBACK_NAMESERVERS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// Where the resolver of a host that runs systemd-resolved's stub (`nameserver 127.0.0.53`
/// as the only nameserver of `/etc/resolv.conf`) finds the real upstream servers; docker
/// reads this file instead in that case, and so do we.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The address of an `--add-host` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostAddr {
    /// A fixed address.
    Ip(IpAddr),
    /// docker's `host-gateway`: the host as the container reaches it. With
    /// [`Net::Veth`](super::Net::Veth) the host end's address (known only once the pair is
    /// made, at spawn); with [`Net::Host`](super::Net::Host) `127.0.0.1` (the host's own
    /// network). Refused for a container without a way to the host
    /// ([`Net::None`](super::Net::None), a joined network namespace).
    HostGateway,
}

impl From<IpAddr> for HostAddr {
    fn from(ip: IpAddr) -> HostAddr {
        HostAddr::Ip(ip)
    }
}

impl From<Ipv4Addr> for HostAddr {
    fn from(ip: Ipv4Addr) -> HostAddr {
        HostAddr::Ip(IpAddr::V4(ip))
    }
}

impl From<std::net::Ipv6Addr> for HostAddr {
    fn from(ip: std::net::Ipv6Addr) -> HostAddr {
        HostAddr::Ip(IpAddr::V6(ip))
    }
}

impl FromStr for HostAddr {
    type Err = Error;

    /// An IPv4 or IPv6 address (IPv6 also in brackets, `[::1]`), or `host-gateway`.
    fn from_str(s: &str) -> Result<HostAddr> {
        if s == "host-gateway" {
            return Ok(HostAddr::HostGateway);
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(s);
        bare.parse::<IpAddr>().map(HostAddr::Ip).map_err(|_| {
            Error::config(
                "--add-host address",
                format!("{s:?} is not an IP address or host-gateway"),
            )
        })
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Ip(ip) => ip.fmt(f),
            HostAddr::HostGateway => f.write_str("host-gateway"),
        }
    }
}

/// One `/etc/hosts` entry the caller adds: docker's `--add-host NAME:IP`.
///
/// ```
/// use contain::net::{ExtraHost, HostAddr};
/// let db: ExtraHost = "db:10.0.0.5".parse()?;
/// assert_eq!(db.name, "db");
/// let v6: ExtraHost = "v6:::1".parse()?;            // docker splits at the first ':'
/// let gw: ExtraHost = "host.docker.internal:host-gateway".parse()?;
/// assert_eq!(gw.addr, HostAddr::HostGateway);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtraHost {
    /// The host name: one token of 1 to 253 bytes (no whitespace, `#`, `;` or NUL; `spawn`
    /// checks it again, since the field is public).
    pub name: String,
    /// Its address.
    pub addr: HostAddr,
}

impl FromStr for ExtraHost {
    type Err = Error;

    /// `NAME:IP` (split at the first `:`, so `NAME:::1` is IPv6; `NAME=IP` is accepted too, as
    /// docker 26 does), with `host-gateway` for the host's address.
    fn from_str(s: &str) -> Result<ExtraHost> {
        let (name, addr) = s
            .split_once('=')
            .or_else(|| s.split_once(':'))
            .ok_or_else(|| {
                Error::config("--add-host", format!("{s:?} is not NAME:IP (or NAME=IP)"))
            })?;
        check_token("--add-host name", name)?;
        Ok(ExtraHost {
            name: name.to_owned(),
            addr: addr.parse()?,
        })
    }
}

/// Checks a word that goes into `/etc/hosts` or `/etc/resolv.conf`: a single token that
/// cannot break the file's syntax (no whitespace, no comment sign, no NUL), 1 to 253 bytes.
pub(crate) fn check_token(what: &'static str, s: &str) -> Result<()> {
    let bad = s.is_empty()
        || s.len() > 253
        || s.bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'#' || b == b';' || b == 0);
    if bad {
        return Err(Error::config(
            what,
            format!("{s:?} must be 1 to 253 bytes without whitespace, '#', ';' or NUL"),
        ));
    }
    Ok(())
}

/// What the caller says about the resolver: docker's `--dns`, `--dns-search`, `--dns-option`.
/// Each non-empty list replaces that part of the generated `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolver {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl Resolver {
    pub(crate) fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }

    pub(crate) fn check(&self) -> Result<()> {
        for s in &self.search {
            if s != "." {
                check_token("dns search domain", s)?;
            }
        }
        for o in &self.options {
            check_token("dns option", o)?;
        }
        Ok(())
    }
}

/// The address of a `nameserver` line (a zone index `%eth0` dropped), `None` for other lines
/// or an address that does not parse.
fn nameserver(line: &str) -> Option<Option<IpAddr>> {
    let mut words = line.split_whitespace();
    if words.next() != Some("nameserver") {
        return None;
    }
    let addr = words.next().unwrap_or("");
    let addr = addr.split('%').next().unwrap_or(addr);
    Some(addr.parse().ok())
}

/// The first word of a line without its comment.
fn keyword(line: &str) -> Option<&str> {
    let line = line.split(['#', ';']).next().unwrap_or("");
    line.split_whitespace().next()
}

/// The nameservers of a resolv.conf text that parse as addresses.
pub(crate) fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines().filter_map(nameserver).flatten().collect()
}

/// Whether a host's resolv.conf names systemd-resolved's stub as its only nameserver (docker
/// then reads [`SYSTEMD_RESOLV_CONF`]).
pub(crate) fn is_systemd_stub(text: &str) -> bool {
    nameservers(text) == [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))]
}

/// The container's resolv.conf from the host's `base` text.
///
/// `own_netns`: the container has its own network namespace, reached over IPv4 only: loopback
/// nameservers (they would answer only in the host's namespace) and IPv6 ones are dropped, and
/// [`FALLBACK_NAMESERVERS`] are used when none is left (docker's libnetwork, with IPv6 off).
/// The caller's servers, search domains and options replace the host's lines of that kind;
/// a search list of only `.` means no search line at all (docker's `--dns-search .`).
pub(crate) fn resolv_conf(base: &str, own_netns: bool, caller: &Resolver) -> String {
    let mut out = String::new();
    let mut servers_kept = 0;
    for line in base.lines() {
        let drop = match keyword(line) {
            Some("nameserver") if !caller.servers.is_empty() => true,
            Some("nameserver") if own_netns => match nameserver(line).flatten() {
                Some(ip) => ip.is_loopback() || ip.is_ipv6(),
                // Not an address (fe80::1%eth0 parses; garbage stays as the host has it).
                None => false,
            },
            Some("search" | "domain") => !caller.search.is_empty(),
            Some("options") => !caller.options.is_empty(),
            _ => false,
        };
        if drop {
            continue;
        }
        if keyword(line) == Some("nameserver") {
            servers_kept += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    let search: Vec<&str> = caller
        .search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        out.push_str("search ");
        out.push_str(&search.join(" "));
        out.push('\n');
    }
    for ip in &caller.servers {
        out.push_str(&format!("nameserver {ip}\n"));
    }
    if caller.servers.is_empty() && servers_kept == 0 && own_netns {
        for ip in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {ip}\n"));
        }
    }
    if !caller.options.is_empty() {
        out.push_str("options ");
        out.push_str(&caller.options.join(" "));
        out.push('\n');
    }
    out
}

/// Whether a hosts file text maps `name` (compared without case, as the resolver does).
pub(crate) fn hosts_has_name(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("");
        line.split_whitespace()
            .skip(1)
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(servers: &[&str], search: &[&str], options: &[&str]) -> Resolver {
        Resolver {
            servers: servers.iter().map(|s| s.parse().unwrap()).collect(),
            search: search.iter().map(|s| s.to_string()).collect(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn extra_hosts_parse_as_docker_does() {
        let h: ExtraHost = "db:10.0.0.5".parse().unwrap();
        assert_eq!(h.name, "db");
        assert_eq!(h.addr, HostAddr::Ip("10.0.0.5".parse().unwrap()));
        let h: ExtraHost = "v6:::1".parse().unwrap();
        assert_eq!(h.addr, HostAddr::Ip("::1".parse().unwrap()));
        let h: ExtraHost = "v6:[2001:db8::1]".parse().unwrap();
        assert_eq!(h.addr, HostAddr::Ip("2001:db8::1".parse().unwrap()));
        let h: ExtraHost = "gw=host-gateway".parse().unwrap();
        assert_eq!(h.addr, HostAddr::HostGateway);
        for bad in [
            "db",
            ":1.2.3.4",
            "db:",
            "db:nope",
            "a b:1.2.3.4",
            "a#b:1.2.3.4",
        ] {
            let e = bad.parse::<ExtraHost>().unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn host_network_keeps_the_hosts_resolv_conf() {
        let host = "# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(resolv_conf(host, false, &Resolver::default()), host);
    }

    #[test]
    fn own_netns_drops_loopback_and_ipv6_nameservers() {
        let host = "nameserver 127.0.0.1\nnameserver ::1\nnameserver 2001:db8::1\n\
                    nameserver 192.0.2.1\nsearch lan\n";
        let out = resolv_conf(host, true, &Resolver::default());
        assert_eq!(out, "nameserver 192.0.2.1\nsearch lan\n");
        assert!(nameservers(&out).iter().all(|ip| !ip.is_loopback()));
    }

    #[test]
    fn own_netns_without_nameservers_gets_docker_fallbacks() {
        let out = resolv_conf(
            "nameserver 127.0.0.53\nsearch lan\n",
            true,
            &Resolver::default(),
        );
        assert_eq!(out, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let out = resolv_conf("", true, &Resolver::default());
        assert_eq!(nameservers(&out).len(), 2);
    }

    #[test]
    fn caller_settings_replace_their_part() {
        let host = "nameserver 192.0.2.1\nsearch lan\noptions ndots:1\n# keep\n";
        let r = resolver(
            &["1.1.1.1", "2606:4700::1111"],
            &["a.example", "b.example"],
            &["ndots:2"],
        );
        let out = resolv_conf(host, true, &r);
        assert_eq!(
            out,
            "# keep\nsearch a.example b.example\nnameserver 1.1.1.1\n\
             nameserver 2606:4700::1111\noptions ndots:2\n"
        );
        // `--dns-search .`: no search line.
        let out = resolv_conf(host, false, &resolver(&[], &["."], &[]));
        assert!(!out.contains("search"), "{out}");
        assert!(out.contains("nameserver 192.0.2.1"), "{out}");
    }

    #[test]
    fn systemd_stub_is_recognised() {
        assert!(is_systemd_stub("nameserver 127.0.0.53\noptions edns0\n"));
        assert!(!is_systemd_stub(
            "nameserver 127.0.0.53\nnameserver 192.0.2.1\n"
        ));
        assert!(!is_systemd_stub("nameserver 10.0.0.1\n"));
    }

    #[test]
    fn hosts_names_are_found() {
        let text = "127.0.0.1 localhost\n127.0.1.1 Box.lan box # me\n# 10.0.0.1 ghost\n";
        assert!(hosts_has_name(text, "box"));
        assert!(hosts_has_name(text, "box.LAN"));
        assert!(!hosts_has_name(text, "ghost"));
        assert!(!hosts_has_name(text, "127.0.0.1"));
    }
}
