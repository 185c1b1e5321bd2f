//! Container networking over rtnetlink: loopback in a new network namespace, or a veth pair
//! to the caller's namespace. No `ip`, no shell: every change is a netlink request whose
//! refusal comes back as [`Error::Netlink`] naming the request, the interface and the errno.
//!
//! # Modes ([`Net`], set with [`Container::network`](crate::process::Container::network))
//! - **Not set**: a container with [`Namespaces::NET`] behaves as with [`Net::None`]; without
//!   it the container shares the caller's network, as with [`Net::Host`].
//! - [`Net::None`]: its own network namespace with only `lo`, brought up. Works rootless.
//! - [`Net::Host`]: no network namespace at all; the container uses the caller's network.
//!   Asking for `Net::Host` *and* [`Namespaces::NET`] is a contradiction that `spawn` refuses.
//! - [`Net::Veth`]: a veth pair. One end is created directly in the container's namespace as
//!   `eth0` with its address and a default route via the other end, which stays in the
//!   caller's (the spawning thread's) namespace with its own address, up. The pair is deleted
//!   when the [`Child`](crate::process::Child) is dropped (and by the kernel if the container's
//!   namespace dies first). Needs `CAP_NET_ADMIN` in the caller's network namespace, i.e. root:
//!   without it `spawn` fails with [`Error::Unsupported`]. Nothing beyond the pair is set up:
//!   the container reaches the host end's address; forwarding and NAT to anywhere else
//!   (`net.ipv4.ip_forward`, a masquerade rule) are the caller's policy.
//!
//! # Default addresses
//! Unless the caller gives addresses ([`VethConfig::addresses`],
//! [`VethConfig::container_address`]), each container gets a /30 of `10.200.0.0/16`: host end
//! `10.200.X.Y+1/30`, container `10.200.X.Y+2/30`. The search for a free /30 starts at a slot
//! derived from the child's pid and steps by a pid-derived stride; it skips every /30 that
//! overlaps an IPv4 address already present in the caller's network namespace, and after
//! adding the host end's address it checks again and moves on if another interface claimed
//! an overlapping address meanwhile; a /30 that a route of the caller's namespace covers is
//! skipped too. Addresses the caller gives are refused when an address or a route (other than
//! the default route) of the caller's namespace overlaps them, as docker refuses a network
//! that overlaps the host's routes. So containers started in parallel, by one process or by
//! several, never keep the same subnet. If the host's own network uses `10.200.0.0/16`, pass
//! addresses explicitly. Only IPv4 is configured.
//!
//! # Without a container
//! The same operations work on any network namespace handle: [`set_link_up`],
//! [`add_address`], [`add_default_route`], [`link_index`], [`delete_link`], [`create_veth`].
//! Each opens a netlink socket *inside* that namespace through a short-lived helper process
//! (which enters the owning user namespace first when that is not the caller's, so this also
//! works rootless on namespaces the caller owns); the calling thread never changes namespace.

mod cidr;
pub(crate) mod dns;
mod enter;
mod rtnl;

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};

pub use cidr::Ipv4Cidr;
pub use dns::{ExtraHost, HostAddr, FALLBACK_NAMESERVERS, SYSTEMD_RESOLV_CONF};

use crate::namespace::{Namespace, Namespaces};
use crate::{sys, Errno, Error, Result};
use rtnl::{Reply, Rtnl};

/// How a container is connected to the network.
///
/// ```no_run
/// use contain::namespace::Namespaces;
/// use contain::net::{Net, VethConfig};
/// use contain::process::Container;
///
/// // Own network namespace, only `lo` (up): the default with Namespaces::NET.
/// let isolated = Container::new("ip")
///     .args(["-o", "link"])
///     .namespaces(Namespaces::NET)
///     .network(Net::None);
///
/// // A veth pair with the default /30 from 10.200.0.0/16 (root only).
/// let wired = Container::new("ping")
///     .args(["-c1", "10.200.0.1"])
///     .namespaces(Namespaces::NET)
///     .network(Net::veth());
///
/// // The caller's own network: no network namespace at all.
/// let host = Container::new("ip").arg("addr").network(Net::Host);
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Net {
    /// Its own network namespace (needs [`Namespaces::NET`]) with only `lo`, which is up.
    None,
    /// The caller's network: no network namespace (refused together with
    /// [`Namespaces::NET`]).
    Host,
    /// Its own network namespace (needs [`Namespaces::NET`]) joined to the caller's by a veth
    /// pair; root only.
    Veth(VethConfig),
}

impl Net {
    /// [`Net::Veth`] with every default: host end `ctn<PID>`, container end `eth0`, a free /30
    /// from `10.200.0.0/16`.
    pub fn veth() -> Net {
        Net::Veth(VethConfig::new())
    }
}

/// How [`Net::Veth`] sets up the pair. Plain data; checked when the container is spawned.
///
/// ```
/// use contain::net::{Net, VethConfig};
///
/// // Everything explicit.
/// let net = Net::Veth(
///     VethConfig::new()
///         .host_name("web0")
///         .container_name("eth0")
///         .addresses("192.168.77.1/24".parse()?, "192.168.77.2/24".parse()?),
/// );
/// // Only the container's address: the host end gets the subnet's first other address
/// // (here 10.9.0.1/24).
/// let net = Net::Veth(VethConfig::new().container_address("10.9.0.5/24".parse()?));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethConfig {
    host_name: Option<String>,
    container_name: Option<String>,
    addresses: Addresses,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Addresses {
    /// A free /30 of [`DEFAULT_POOL`].
    #[default]
    Pool,
    /// The container's; the host end takes the first other usable address of the subnet.
    Container(Ipv4Cidr),
    /// Both, as given.
    Both { host: Ipv4Cidr, container: Ipv4Cidr },
}

/// The range default veth subnets come from: `10.200.0.0/16`, cut into /30s.
pub const DEFAULT_POOL: &str = "10.200.0.0/16";

const POOL_BASE: u32 = u32::from_be_bytes([10, 200, 0, 0]);
const POOL_SLOTS: u32 = 1 << 14; // /30s in a /16

/// The container end's name unless [`VethConfig::container_name`] says otherwise.
pub const DEFAULT_CONTAINER_NAME: &str = "eth0";

/// What every refusal for want of privileges says.
const NEEDS_ROOT: &str = "veth networking needs root (CAP_NET_ADMIN in the host network \
                          namespace); use Net::None, or run as root";

impl VethConfig {
    /// Every default: see [`Net::veth`].
    pub fn new() -> VethConfig {
        VethConfig::default()
    }

    /// The host end's name (1 to 15 bytes; default `ctn<PID>`, PID as the caller sees it).
    #[must_use]
    pub fn host_name(mut self, name: impl Into<String>) -> VethConfig {
        self.host_name = Some(name.into());
        self
    }

    /// The container end's name (default `eth0`).
    #[must_use]
    pub fn container_name(mut self, name: impl Into<String>) -> VethConfig {
        self.container_name = Some(name.into());
        self
    }

    /// Both addresses: `host` for the caller's end, `container` for the container's (the
    /// default route's gateway is `host`). They must be distinct addresses of one subnet.
    #[must_use]
    pub fn addresses(mut self, host: Ipv4Cidr, container: Ipv4Cidr) -> VethConfig {
        self.addresses = Addresses::Both { host, container };
        self
    }

    /// The container's address; the host end gets the first other usable address of the same
    /// subnet (`10.9.0.1/24` for `10.9.0.5/24`, `10.9.0.2/30` for `10.9.0.1/30`).
    #[must_use]
    pub fn container_address(mut self, container: Ipv4Cidr) -> VethConfig {
        self.addresses = Addresses::Container(container);
        self
    }

    fn plan(&self) -> Result<VethPlan> {
        if let Some(name) = &self.host_name {
            check_ifname("veth host end name", name)?;
        }
        let container_name = self
            .container_name
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_owned());
        check_ifname("veth container end name", &container_name)?;
        let addresses = match self.addresses {
            Addresses::Pool => None,
            Addresses::Container(container) => {
                cidr::check_endpoint("veth container address", &container)?;
                let host =
                    cidr::first_free_host(&container, container.address()).ok_or_else(|| {
                        Error::config(
                            "veth container address",
                            format!("{container}: the subnet has no address left for the host end"),
                        )
                    })?;
                Some((host, container))
            }
            Addresses::Both { host, container } => {
                cidr::check_endpoint("veth host address", &host)?;
                cidr::check_endpoint("veth container address", &container)?;
                if host.prefix_len() != container.prefix_len()
                    || !host.contains(container.address())
                {
                    return Err(Error::config(
                        "veth addresses",
                        format!("{host} and {container} are not in one subnet"),
                    ));
                }
                if host.address() == container.address() {
                    return Err(Error::config(
                        "veth addresses",
                        format!("both ends cannot have the same address {}", host.address()),
                    ));
                }
                Some((host, container))
            }
        };
        Ok(VethPlan {
            host_name: self.host_name.clone(),
            container_name,
            addresses,
        })
    }
}

/// Checks a network interface name as the kernel will (`dev_valid_name`), for a clearer error.
fn check_ifname(what: &'static str, name: &str) -> Result<()> {
    let why = if name.is_empty() || name.len() > 15 {
        Some("must be 1 to 15 bytes (IFNAMSIZ)")
    } else if name == "." || name == ".." {
        Some("cannot be . or ..")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("cannot contain '/', ':', NUL or whitespace")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::config(what, format!("{name:?} {why}"))),
        None => Ok(()),
    }
}

/// A veth pair whose first end lives in the network namespace it was created from. Dropping
/// it deletes the pair (deleting one end deletes both); a pair the kernel already removed
/// (because the peer's namespace died) is not an error.
///
/// The end is remembered by its interface index, which the kernel does not hand out again in
/// a namespace, so a later interface of the same name is never deleted by mistake.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// use contain::net;
///
/// # let pid = contain::Pid::from_raw(4242).unwrap();
/// let peer_ns = Namespace::of_pid(pid, Namespaces::NET)?;
/// let veth = net::create_veth("v-host", "v-peer", &peer_ns)?;
/// net::add_address(&Namespace::current(Namespaces::NET)?, veth.name(), "10.7.0.1/30".parse()?)?;
/// net::set_link_up(&Namespace::current(Namespaces::NET)?, veth.name())?;
/// veth.delete()?; // or just drop it
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug)]
pub struct Veth {
    rtnl: Rtnl,
    name: String,
    index: u32,
    peer_name: String,
    host_address: Option<Ipv4Cidr>,
    container_address: Option<Ipv4Cidr>,
    deleted: bool,
}

impl Veth {
    /// The name of this end (the host end, for a container's pair).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index of this end in its network namespace.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The name of the other end, in the other namespace.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The address `spawn` gave this (host) end; `None` for a pair made by [`create_veth`].
    pub fn host_address(&self) -> Option<Ipv4Cidr> {
        self.host_address
    }

    /// The address `spawn` gave the container's end; `None` for a pair made by
    /// [`create_veth`].
    pub fn container_address(&self) -> Option<Ipv4Cidr> {
        self.container_address
    }

    /// Deletes the pair now, reporting errors that dropping would ignore.
    ///
    /// # Errors
    ///
    /// [`Error::Netlink`] naming `RTM_DELLINK` and the interface when the kernel refuses (`EPERM`
    /// without `CAP_NET_ADMIN`); [`Error::Sys`] when the netlink socket fails. A pair already gone
    /// (its other namespace died) is `Ok`.
    pub fn delete(mut self) -> Result<()> {
        self.deleted = true;
        self.rtnl.delete_link(self.index, &self.name).map(drop)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.rtnl.delete_link(self.index, &self.name);
        }
    }
}

/// Brings link `name` up in `netns`.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// # let pid = contain::Pid::from_raw(4242).unwrap();
/// contain::net::set_link_up(&Namespace::of_pid(pid, Namespaces::NET)?, "lo")?;
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid interface name (1 to 15 bytes, no `/`, `:`, NUL or
/// whitespace); [`Error::Netlink`] naming the request and `name`: `ENODEV` when there is no such
/// link, `EPERM` without `CAP_NET_ADMIN` over `netns`. Opening the socket inside `netns` can fail
/// with [`Error::Config`] when `netns` is not a network namespace, or [`Error::Sys`] naming
/// `setns(user namespace owning the network namespace)`, `setns(network namespace)` or
/// `socket(AF_NETLINK) in the network namespace` (`EPERM` when the caller has no capabilities over
/// a namespace it does not own).
pub fn set_link_up(netns: &Namespace, name: &str) -> Result<()> {
    check_ifname("interface name", name)?;
    Rtnl::open_in(netns)?.set_up_by_name(name)
}

/// Adds an IPv4 address to link `name` in `netns`.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// # let pid = contain::Pid::from_raw(4242).unwrap();
/// let ns = Namespace::of_pid(pid, Namespaces::NET)?;
/// contain::net::add_address(&ns, "eth0", "10.7.0.2/30".parse()?)?;
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid interface name; [`Error::Netlink`] naming
/// `RTM_GETLINK` with `ENODEV` when there is no such link, or `RTM_NEWADDR` and `name`: `EEXIST`
/// when the link already has that address, `EPERM` without `CAP_NET_ADMIN`. Opening the socket
/// inside `netns` can fail with [`Error::Config`] when `netns` is not a network namespace, or
/// [`Error::Sys`] naming `setns(user namespace owning the network namespace)`, `setns(network
/// namespace)` or `socket(AF_NETLINK) in the network namespace` (`EPERM` when the caller has no
/// capabilities over a namespace it does not own).
pub fn add_address(netns: &Namespace, name: &str, address: Ipv4Cidr) -> Result<()> {
    check_ifname("interface name", name)?;
    let mut rtnl = Rtnl::open_in(netns)?;
    let index = rtnl.require_index(name)?;
    rtnl.add_address(index, name, &address)
}

/// Adds the IPv4 default route via `gateway` out of link `name` in `netns`. The link must be
/// up and have an address in the gateway's subnet.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// # let pid = contain::Pid::from_raw(4242).unwrap();
/// let ns = Namespace::of_pid(pid, Namespaces::NET)?;
/// contain::net::add_default_route(&ns, "eth0", "10.7.0.1".parse().unwrap())?;
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid interface name; [`Error::Netlink`] naming
/// `RTM_GETLINK` with `ENODEV` when there is no such link, or `RTM_NEWROUTE default` and `name`:
/// `EEXIST` when there is a default route already, `ENETUNREACH` when the gateway is not in a
/// subnet of the link (or the link is down), `EPERM` without `CAP_NET_ADMIN`. Opening the socket
/// inside `netns` can fail with [`Error::Config`] when `netns` is not a network namespace, or
/// [`Error::Sys`] naming `setns(user namespace owning the network namespace)`, `setns(network
/// namespace)` or `socket(AF_NETLINK) in the network namespace` (`EPERM` when the caller has no
/// capabilities over a namespace it does not own).
pub fn add_default_route(netns: &Namespace, name: &str, gateway: Ipv4Addr) -> Result<()> {
    check_ifname("interface name", name)?;
    let mut rtnl = Rtnl::open_in(netns)?;
    let index = rtnl.require_index(name)?;
    rtnl.add_default_route(index, name, gateway)
}

/// The index of link `name` in `netns`, or `None` if it has no such link.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// let here = Namespace::current(Namespaces::NET)?;
/// assert_eq!(contain::net::link_index(&here, "lo")?, Some(1));
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid interface name; [`Error::Netlink`] naming
/// `RTM_GETLINK` for an errno other than `ENODEV` (which is `None`). Opening the socket inside
/// `netns` can fail with [`Error::Config`] when `netns` is not a network namespace, or
/// [`Error::Sys`] naming `setns(user namespace owning the network namespace)`, `setns(network
/// namespace)` or `socket(AF_NETLINK) in the network namespace` (`EPERM` when the caller has no
/// capabilities over a namespace it does not own).
pub fn link_index(netns: &Namespace, name: &str) -> Result<Option<u32>> {
    check_ifname("interface name", name)?;
    Rtnl::open_in(netns)?.link_index(name)
}

/// Deletes link `name` in `netns` (both ends, for a veth). `Ok(false)` if there was none.
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// let here = Namespace::current(Namespaces::NET)?;
/// contain::net::delete_link(&here, "ctn4242")?;
/// # Ok::<(), contain::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid interface name; [`Error::Netlink`] naming
/// `RTM_DELLINK` and `name`: `EPERM` without `CAP_NET_ADMIN`, `EOPNOTSUPP` for a link that cannot
/// be deleted (such as `lo`). Opening the socket inside `netns` can fail with [`Error::Config`]
/// when `netns` is not a network namespace, or [`Error::Sys`] naming `setns(user namespace owning
/// the network namespace)`, `setns(network namespace)` or `socket(AF_NETLINK) in the network
/// namespace` (`EPERM` when the caller has no capabilities over a namespace it does not own).
pub fn delete_link(netns: &Namespace, name: &str) -> Result<bool> {
    check_ifname("interface name", name)?;
    let mut rtnl = Rtnl::open_in(netns)?;
    match rtnl.link_index(name)? {
        Some(index) => rtnl.delete_link(index, name),
        None => Ok(false),
    }
}

/// Creates a veth pair: `name` in the calling thread's network namespace and `peer_name`
/// directly in `peer_netns` (`IFLA_NET_NS_FD`: it never exists in the caller's). Both ends
/// are down and without addresses. The returned [`Veth`] deletes the pair when dropped.
///
/// # Errors
///
/// Fails with [`Error::Unsupported`] without `CAP_NET_ADMIN` or without a veth driver.
/// [`Error::Config`] for an invalid name, or a `peer_netns` that is not a network namespace;
/// [`Error::Netlink`] naming `RTM_NEWLINK veth` and `name` for other refusals, e.g. `EEXIST`
/// when either name is taken.
///
/// # Examples
///
/// ```no_run
/// use contain::namespace::{Namespace, Namespaces};
/// # let pid = contain::Pid::from_raw(4242).unwrap();
/// let peer_ns = Namespace::of_pid(pid, Namespaces::NET)?;
/// let veth = contain::net::create_veth("v-host", "eth0", &peer_ns)?;
/// println!("{} has index {}", veth.name(), veth.index());
/// # Ok::<(), contain::Error>(())
/// ```
pub fn create_veth(name: &str, peer_name: &str, peer_netns: &Namespace) -> Result<Veth> {
    check_ifname("veth name", name)?;
    check_ifname("veth peer name", peer_name)?;
    if peer_netns.kind() != Namespaces::NET {
        return Err(Error::config(
            "veth peer namespace",
            format!("expected a network namespace, got {:?}", peer_netns.kind()),
        ));
    }
    create_veth_with(Rtnl::current()?, name, peer_name, peer_netns.as_fd())
}

fn create_veth_with(
    mut rtnl: Rtnl,
    name: &str,
    peer_name: &str,
    peer_netns: BorrowedFd<'_>,
) -> Result<Veth> {
    rtnl.create_veth(name, peer_name, peer_netns)
        .map_err(|e| match e {
            Reply::Errno(Errno::EPERM) => Error::unsupported("veth networking", NEEDS_ROOT),
            Reply::Errno(Errno::EOPNOTSUPP) => Error::unsupported(
                "veth networking",
                "the kernel has no veth driver (CONFIG_VETH; load the veth module)",
            ),
            e => e.into_error("RTM_NEWLINK veth", Some(name)),
        })?;
    let index = match rtnl.link_index(name) {
        Ok(Some(index)) => index,
        Ok(None) => return Err(Error::netlink("RTM_GETLINK", Some(name), Errno::ENODEV)),
        Err(e) => {
            let _ = rtnl.delete_link_by_name(name);
            return Err(e);
        }
    };
    Ok(Veth {
        rtnl,
        name: name.to_owned(),
        index,
        peer_name: peer_name.to_owned(),
        host_address: None,
        container_address: None,
        deleted: false,
    })
}

impl Rtnl {
    /// A socket inside `netns` (see the module docs).
    fn open_in(netns: &Namespace) -> Result<Rtnl> {
        Rtnl::from_fd(enter::route_socket_in(netns)?)
    }

    fn require_index(&mut self, name: &str) -> Result<u32> {
        self.link_index(name)?
            .ok_or_else(|| Error::netlink("RTM_GETLINK", Some(name), Errno::ENODEV))
    }
}

/// Whether the calling thread has `CAP_NET_ADMIN` in its user namespace, from
/// `/proc/thread-self/status`; `None` if that cannot be read.
fn has_net_admin() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    const CAP_NET_ADMIN: u32 = 12;
    Some(caps & (1 << CAP_NET_ADMIN) != 0)
}

/// What `spawn` does for the network, decided before clone.
#[derive(Debug)]
pub(crate) enum Setup {
    /// Bring `lo` up in the new network namespace.
    Loopback,
    /// A veth pair to the caller's network namespace.
    Veth(VethPlan),
}

/// A checked [`VethConfig`].
#[derive(Debug)]
pub(crate) struct VethPlan {
    host_name: Option<String>,
    container_name: String,
    addresses: Option<(Ipv4Cidr, Ipv4Cidr)>,
}

impl Setup {
    /// Checks `net` against the namespaces the container will get (`new`: the clone flags).
    /// `None`: nothing to do after clone.
    pub(crate) fn prepare(net: Option<&Net>, new: Namespaces) -> Result<Option<Setup>> {
        let own_netns = new.contains(Namespaces::NET);
        let needs_netns = |mode: &str| {
            Error::config(
                "network",
                format!(
                    "{mode} gives the container its own network namespace: add \
                     Namespaces::NET (or use Net::Host for the caller's network)"
                ),
            )
        };
        match net {
            None if own_netns => Ok(Some(Setup::Loopback)),
            None => Ok(None),
            Some(Net::Host) if own_netns => Err(Error::config(
                "network",
                "Net::Host shares the caller's network, but Namespaces::NET asks for a new \
                 network namespace: drop one of them",
            )),
            Some(Net::Host) => Ok(None),
            Some(Net::None) if own_netns => Ok(Some(Setup::Loopback)),
            Some(Net::None) => Err(needs_netns("Net::None")),
            Some(Net::Veth(config)) if own_netns => {
                let plan = config.plan()?;
                if has_net_admin() == Some(false) {
                    return Err(Error::unsupported("veth networking", NEEDS_ROOT));
                }
                Ok(Some(Setup::Veth(plan)))
            }
            Some(Net::Veth(_)) => Err(needs_netns("Net::Veth")),
        }
    }

    /// Configures the network of the child `pid` (alive, waiting for the go-ahead, with a new
    /// network namespace), from the spawning thread. Returns the veth pair to keep in the
    /// `Child`, which deletes it when dropped.
    /// Whether the parent has work to do while the child waits (the child brings `lo` up
    /// itself, see [`LOOPBACK_UP`]).
    pub(crate) fn needs_parent(&self) -> bool {
        matches!(self, Setup::Veth(_))
    }

    pub(crate) fn apply(&self, pid: i32, pidfd: BorrowedFd<'_>) -> Result<Option<Veth>> {
        match self {
            Setup::Loopback => Ok(None),
            Setup::Veth(plan) => plan.attach(pid, &child_netns(pid, pidfd)?).map(Some),
        }
    }
}

/// `RTM_NEWLINK` for ifindex 1 (the loopback device is always the first device of a network
/// namespace) with `IFF_UP` set, asking for an ack: 16 bytes of `nlmsghdr`, 16 of
/// `ifinfomsg`. The child sends it from inside its new namespace with raw system calls, which
/// costs far less than a helper entering the namespace from outside.
pub(crate) const LOOPBACK_UP: [u8; 32] = loopback_up();

const fn loopback_up() -> [u8; 32] {
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST_ACK: u16 = 1 | 4;
    const IFF_UP: u32 = 1;
    let mut m = [0u8; 32];
    let len = 32u32.to_ne_bytes();
    let (ty, flags) = (RTM_NEWLINK.to_ne_bytes(), NLM_F_REQUEST_ACK.to_ne_bytes());
    let (index, up) = (1i32.to_ne_bytes(), IFF_UP.to_ne_bytes());
    let mut i = 0;
    while i < 4 {
        m[i] = len[i];
        m[20 + i] = index[i]; // ifi_index
        m[24 + i] = up[i]; // ifi_flags
        m[28 + i] = up[i]; // ifi_change
        i += 1;
    }
    m[4] = ty[0];
    m[5] = ty[1];
    m[6] = flags[0];
    m[7] = flags[1];
    m
}

/// The child's network namespace, opened through `/proc/PID` and then checked to be the
/// child's: the pid cannot have been reused while the pidfd says the child is still there
/// (we have not reaped it), and it must not be our own namespace.
fn child_netns(pid: i32, pidfd: BorrowedFd<'_>) -> Result<Namespace> {
    let pid = crate::Pid::from_raw(pid).ok_or(Error::sys("clone", Errno::ESRCH))?;
    let ns = Namespace::of_pid(pid, Namespaces::NET)?;
    sys::pidfd_send_signal(pidfd, 0).map_err(|e| Error::sys("pidfd_send_signal", e))?;
    if ns.id()? == Namespace::current(Namespaces::NET)?.id()? {
        return Err(Error::config(
            "network",
            format!("process {pid} is in the caller's network namespace, not a new one"),
        ));
    }
    Ok(ns)
}

impl VethPlan {
    fn attach(&self, pid: i32, netns: &Namespace) -> Result<Veth> {
        let host_name = self
            .host_name
            .clone()
            .unwrap_or_else(|| format!("ctn{pid}"));
        let mut veth = create_veth_with(
            Rtnl::current()?,
            &host_name,
            &self.container_name,
            netns.as_fd(),
        )?;
        let (host, container) = match self.addresses {
            Some((host, container)) => {
                refuse_routed_subnet(&mut veth, &host)?;
                veth.rtnl.add_address(veth.index, &veth.name, &host)?;
                (host, container)
            }
            None => claim_pool_subnet(&mut veth, pid)?,
        };
        veth.host_address = Some(host);
        veth.container_address = Some(container);
        veth.rtnl.set_up(veth.index, &veth.name)?;

        let mut inside = Rtnl::open_in(netns)?;
        inside.set_up_by_name("lo")?;
        let name = &self.container_name;
        let index = inside.require_index(name)?;
        inside.add_address(index, name, &container)?;
        inside.set_up(index, name)?;
        inside.add_default_route(index, name, host.address())?;
        Ok(veth)
    }
}

/// Refuses a caller's subnet that an address or a route of the caller's namespace already
/// covers: the host's own traffic to it (its DNS server, a VPN's network) would go into the
/// container instead. docker refuses such networks too.
fn refuse_routed_subnet(veth: &mut Veth, host: &Ipv4Cidr) -> Result<()> {
    let addresses = veth.rtnl.ipv4_addresses()?.into_iter().map(|(_, a)| a);
    let routes = veth.rtnl.ipv4_route_destinations()?;
    match addresses.chain(routes).find(|r| r.overlaps(host)) {
        Some(taken) => Err(Error::config(
            "veth addresses",
            format!(
                "the subnet of {host} overlaps {taken}, an address or route of the caller's \
                 network namespace: the host's traffic to it would go into the container; \
                 choose a subnet nothing here uses (docker refuses such networks too)"
            ),
        )),
        None => Ok(()),
    }
}

/// The `slot`th /30 of the pool: (host end, container end).
fn pool_subnet(slot: u32) -> (Ipv4Cidr, Ipv4Cidr) {
    let base = POOL_BASE + (slot % POOL_SLOTS) * 4;
    let at = |n: u32| Ipv4Cidr::capped(Ipv4Addr::from(base + n), 30);
    (at(1), at(2))
}

/// The order in which `pid` tries the pool's slots: a pid-derived start and odd stride (odd,
/// so every slot of the power-of-two pool is visited), so that containers racing for slots
/// walk different paths.
fn pool_order(pid: i32) -> impl Iterator<Item = u32> {
    let h = (pid as u32).wrapping_mul(0x9e37_79b1);
    let start = h % POOL_SLOTS;
    let stride = ((h >> 14) % POOL_SLOTS) | 1;
    (0..POOL_SLOTS).map(move |i| (start + i * stride) % POOL_SLOTS)
}

/// Gives the host end a free /30 of the pool (see the module docs) and returns the pair of
/// addresses.
fn claim_pool_subnet(veth: &mut Veth, pid: i32) -> Result<(Ipv4Cidr, Ipv4Cidr)> {
    let mut in_use = veth.rtnl.ipv4_addresses()?;
    let routed = veth.rtnl.ipv4_route_destinations()?;
    for slot in pool_order(pid) {
        let (host, container) = pool_subnet(slot);
        if in_use.iter().any(|(_, a)| a.overlaps(&host)) || routed.iter().any(|r| r.overlaps(&host))
        {
            continue;
        }
        veth.rtnl.add_address(veth.index, &veth.name, &host)?;
        // Another container may have taken an overlapping address between our look and our
        // claim. Whoever sees a rival after adding their own backs off; of two racers at
        // least the later one sees the earlier, so no two keep the same subnet.
        in_use = veth.rtnl.ipv4_addresses()?;
        if in_use
            .iter()
            .any(|(index, a)| *index != veth.index && a.overlaps(&host))
        {
            veth.rtnl.delete_address(veth.index, &veth.name, &host)?;
            continue;
        }
        return Ok((host, container));
    }
    Err(Error::unsupported(
        "default veth addresses",
        format!(
            "every /30 of {DEFAULT_POOL} overlaps an address in use in this network \
             namespace; give addresses with VethConfig::addresses"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_order_visits_every_slot_once() {
        for pid in [1, 2, 4242, i32::MAX] {
            let mut seen = vec![false; POOL_SLOTS as usize];
            for s in pool_order(pid) {
                assert!(!seen[s as usize], "pid {pid} visits {s} twice");
                seen[s as usize] = true;
            }
            assert!(seen.iter().all(|s| *s), "pid {pid} misses a slot");
        }
        let a: Vec<u32> = pool_order(100).take(4).collect();
        let b: Vec<u32> = pool_order(101).take(4).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn pool_subnets_are_disjoint_30s_of_the_pool() {
        let pool: Ipv4Cidr = "10.200.0.0/16".parse().unwrap();
        assert_eq!(pool.to_string(), DEFAULT_POOL);
        let (h0, c0) = pool_subnet(0);
        assert_eq!(
            (h0.to_string(), c0.to_string()),
            ("10.200.0.1/30".into(), "10.200.0.2/30".into())
        );
        let (h, c) = pool_subnet(POOL_SLOTS - 1);
        assert_eq!(
            (h.to_string(), c.to_string()),
            ("10.200.255.253/30".into(), "10.200.255.254/30".into())
        );
        assert!(pool.overlaps(&h) && h.contains(c.address()));
        assert!(!pool_subnet(1).0.overlaps(&h0));
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("n", "eth0").is_ok());
        assert!(check_ifname("n", "ctn4194304").is_ok());
        assert!(check_ifname("n", "fifteen-bytes-x").is_ok());
        for bad in [
            "",
            "sixteen-bytes-xx",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\0",
        ] {
            let e = check_ifname("n", bad).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn modes_map_onto_namespaces() {
        let net = Namespaces::NET;
        let none = Namespaces::empty();
        assert!(matches!(
            Setup::prepare(None, net),
            Ok(Some(Setup::Loopback))
        ));
        assert!(matches!(Setup::prepare(None, none), Ok(None)));
        assert!(matches!(
            Setup::prepare(Some(&Net::None), net),
            Ok(Some(Setup::Loopback))
        ));
        assert!(matches!(Setup::prepare(Some(&Net::Host), none), Ok(None)));
        for (mode, ns) in [(Net::Host, net), (Net::None, none), (Net::veth(), none)] {
            let e = Setup::prepare(Some(&mode), ns).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{mode:?}: {e}");
            assert!(e.to_string().contains("Namespaces::NET"), "{mode:?}: {e}");
        }
    }

    #[test]
    fn veth_configs_are_checked() {
        let c = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        let plan = VethConfig::new().plan().unwrap();
        assert_eq!(plan.container_name, "eth0");
        assert_eq!(plan.host_name, None);
        assert_eq!(plan.addresses, None);
        let plan = VethConfig::new()
            .container_address(c("10.9.0.5/24"))
            .plan()
            .unwrap();
        assert_eq!(plan.addresses, Some((c("10.9.0.1/24"), c("10.9.0.5/24"))));
        for bad in [
            VethConfig::new().host_name("this-name-is-too-long"),
            VethConfig::new().container_name(""),
            VethConfig::new().addresses(c("10.0.0.1/30"), c("10.0.0.5/30")),
            VethConfig::new().addresses(c("10.0.0.1/30"), c("10.0.0.2/29")),
            VethConfig::new().addresses(c("10.0.0.1/30"), c("10.0.0.1/30")),
            VethConfig::new().addresses(c("10.0.0.0/30"), c("10.0.0.1/30")),
            VethConfig::new().container_address(c("10.0.0.1/32")),
            VethConfig::new().container_address(c("127.0.0.1/8")),
        ] {
            let e = bad.plan().unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad:?}: {e}");
        }
    }
}
