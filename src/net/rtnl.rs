//! A small synchronous rtnetlink client: one `NETLINK_ROUTE` socket, bound for its lifetime to
//! the network namespace it was opened in, and the handful of requests container networking
//! needs. Every request asks for an acknowledgement, so a refusal comes back as the errno of
//! that very request.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::Ipv4Cidr;
use crate::{Errno, Error, Result};

/// Large enough for any single datagram the kernel sends on a dump (it caps them at 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;

/// A `NETLINK_ROUTE` socket and its sequence counter.
#[derive(Debug)]
pub(crate) struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub(crate) fn current() -> Result<Rtnl> {
        let socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_error("socket(AF_NETLINK)", &e))?;
        Rtnl::with(socket)
    }

    /// Wraps a `NETLINK_ROUTE` socket opened elsewhere (in another network namespace).
    pub(crate) fn from_fd(fd: OwnedFd) -> Result<Rtnl> {
        // SAFETY: `fd` is an open NETLINK_ROUTE socket whose ownership moves into the Socket,
        // which closes it on drop. (Socket is Clone; we never clone it.)
        let socket = unsafe { Socket::from_raw_fd(fd.into_raw_fd()) };
        Rtnl::with(socket)
    }

    fn with(mut socket: Socket) -> Result<Rtnl> {
        socket
            .bind_auto()
            .map_err(|e| io_error("bind(AF_NETLINK)", &e))?;
        // Errors then echo only the request's header, not the whole request.
        let _ = socket.set_cap_ack(true);
        Ok(Rtnl { socket, seq: 0 })
    }

    /// The index of link `name`, or `None` if there is none.
    pub(crate) fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.exchange(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(Reply::Errno(Errno::ENODEV)) => Ok(None),
            Err(e) => Err(e.into_error("RTM_GETLINK", Some(name))),
        }
    }

    /// Sets `IFF_UP` on link `index` (named `name` in errors).
    pub(crate) fn set_up(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.ack(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.into_error("RTM_SETLINK up", Some(name)))
    }

    /// Sets `IFF_UP` on link `name`, looked up by the kernel.
    pub(crate) fn set_up_by_name(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.ack(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.into_error("RTM_SETLINK up", Some(name)))
    }

    /// Creates veth `name` here, with its peer `peer` created directly in the network
    /// namespace `peer_netns` (`IFLA_NET_NS_FD`).
    pub(crate) fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
    ) -> Result<(), Reply> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_owned()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes link `index`; `Ok(false)` if it is already gone.
    pub(crate) fn delete_link(&mut self, index: u32, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.ack(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(()) => Ok(true),
            Err(Reply::Errno(Errno::ENODEV | Errno::ENOENT)) => Ok(false),
            Err(e) => Err(e.into_error("RTM_DELLINK", Some(name))),
        }
    }

    /// Deletes link `name`, looked up by the kernel; `Ok(false)` if there is none.
    pub(crate) fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.ack(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(()) => Ok(true),
            Err(Reply::Errno(Errno::ENODEV | Errno::ENOENT)) => Ok(false),
            Err(e) => Err(e.into_error("RTM_DELLINK", Some(name))),
        }
    }

    fn address_message(index: u32, address: &Ipv4Cidr) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = address.prefix_len();
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        let ip = IpAddr::V4(address.address());
        msg.attributes.push(AddressAttribute::Local(ip));
        msg.attributes.push(AddressAttribute::Address(ip));
        msg
    }

    /// Adds an IPv4 address to link `index`.
    pub(crate) fn add_address(&mut self, index: u32, name: &str, address: &Ipv4Cidr) -> Result<()> {
        let msg = Self::address_message(index, address);
        self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|e| e.into_error("RTM_NEWADDR", Some(name)))
    }

    /// Removes an IPv4 address from link `index`.
    pub(crate) fn delete_address(
        &mut self,
        index: u32,
        name: &str,
        address: &Ipv4Cidr,
    ) -> Result<()> {
        let msg = Self::address_message(index, address);
        self.ack(RouteNetlinkMessage::DelAddress(msg), 0)
            .map_err(|e| e.into_error("RTM_DELADDR", Some(name)))
    }

    /// Every IPv4 address in this network namespace, with the index of its link.
    pub(crate) fn ipv4_addresses(&mut self) -> Result<Vec<(u32, Ipv4Cidr)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self
            .exchange(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)
            .map_err(|e| e.into_error("RTM_GETADDR dump", None))?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(a) = reply else {
                continue;
            };
            if a.header.family != AddressFamily::Inet {
                continue;
            }
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
            // point-to-point links and the same as IFA_LOCAL otherwise.
            let pick = |local: bool| {
                a.attributes.iter().find_map(|attr| match (attr, local) {
                    (AddressAttribute::Local(IpAddr::V4(ip)), true)
                    | (AddressAttribute::Address(IpAddr::V4(ip)), false) => Some(*ip),
                    _ => None,
                })
            };
            if let Some(ip) = pick(true).or_else(|| pick(false)) {
                out.push((a.header.index, Ipv4Cidr::capped(ip, a.header.prefix_len)));
            }
        }
        Ok(out)
    }

    /// The destinations of every IPv4 route of this namespace (all tables), except default
    /// routes and loopback ones: the subnets whose traffic the namespace already sends
    /// somewhere (as docker's check of a new network against the host's routes).
    pub(crate) fn ipv4_route_destinations(&mut self) -> Result<Vec<Ipv4Cidr>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self
            .exchange(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)
            .map_err(|e| e.into_error("RTM_GETROUTE dump", None))?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(r) = reply else {
                continue;
            };
            let prefix_len = r.header.destination_prefix_length;
            if r.header.address_family != AddressFamily::Inet || prefix_len == 0 {
                continue;
            }
            let dst = r.attributes.iter().find_map(|attr| match attr {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = dst.filter(|ip| !ip.is_loopback()) {
                out.push(Ipv4Cidr::capped(ip, prefix_len));
            }
        }
        Ok(out)
    }

    /// Adds the IPv4 default route via `gateway` out of link `index`.
    pub(crate) fn add_default_route(
        &mut self,
        index: u32,
        name: &str,
        gateway: Ipv4Addr,
    ) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = 0;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|e| e.into_error("RTM_NEWROUTE default", Some(name)))
    }

    /// Sends a request that changes something and waits for its acknowledgement.
    fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), Reply> {
        self.exchange(msg, flags | NLM_F_ACK).map(drop)
    }

    /// Sends one request and collects the replies carrying its sequence number, up to its
    /// acknowledgement, the end of a dump, or (for a plain get) the single answer.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Reply> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        let kernel = SocketAddr::new(0, 0);
        let sent = self
            .socket
            .send_to(&buf, &kernel, 0)
            .map_err(|e| Reply::Io("sendto(AF_NETLINK)", crate::error::io_errno(&e)))?;
        if sent != buf.len() {
            return Err(Reply::Io("sendto(AF_NETLINK)", Errno::EMSGSIZE));
        }

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let wants_ack = flags & NLM_F_ACK != 0;
        let mut replies = Vec::new();
        let mut datagram = vec![0u8; RECV_BUFFER];
        loop {
            let n = loop {
                match self.socket.recv(&mut &mut datagram[..], libc::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Reply::Io("recv(AF_NETLINK)", crate::error::io_errno(&e)))
                    }
                }
            };
            if n > datagram.len() {
                return Err(Reply::Io("recv(AF_NETLINK)", Errno::EMSGSIZE));
            }
            let mut rest = &datagram[..n];
            while !rest.is_empty() {
                let len = NetlinkBuffer::new_checked(rest)
                    .map_err(|e| Reply::Decode(e.to_string()))?
                    .length() as usize;
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
                    .map_err(|e| Reply::Decode(e.to_string()))?;
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
                if message.header.sequence_number != seq {
                    continue; // an answer to an earlier request we gave up on
                }
                match message.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(Reply::Errno(Errno::from_raw(-code.get()))),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump && !wants_ack {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Why a request failed, before it is named.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The kernel answered with this errno.
    Errno(Errno),
    /// Sending or receiving failed.
    Io(&'static str, Errno),
    /// The kernel's answer did not parse.
    Decode(String),
}

impl Reply {
    pub(crate) fn into_error(self, request: &'static str, interface: Option<&str>) -> Error {
        match self {
            Reply::Errno(errno) => Error::netlink(request, interface, errno),
            Reply::Io(syscall, errno) => Error::sys(syscall, errno),
            Reply::Decode(reason) => Error::parse(format!("netlink {request} reply"), reason),
        }
    }
}

fn io_error(syscall: &'static str, e: &std::io::Error) -> Error {
    Error::sys(syscall, crate::error::io_errno(e))
}
