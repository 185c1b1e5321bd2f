//! IPv4 addresses with a prefix length (`10.200.0.1/30`), and the arithmetic veth setup needs.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::{Error, Result};

/// An IPv4 address together with the prefix length of its subnet, as in `10.200.0.1/30`.
///
/// ```
/// use contain::net::Ipv4Cidr;
/// let a: Ipv4Cidr = "10.200.0.6/30".parse()?;
/// assert_eq!(a.address(), std::net::Ipv4Addr::new(10, 200, 0, 6));
/// assert_eq!(a.prefix_len(), 30);
/// assert_eq!(a.network(), std::net::Ipv4Addr::new(10, 200, 0, 4));
/// assert_eq!(a.to_string(), "10.200.0.6/30");
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; the prefix length must be at most 32.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `prefix_len` is above 32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Cidr> {
        if prefix_len > 32 {
            return Err(Error::config(
                "IPv4 CIDR",
                format!("{address}/{prefix_len}: the prefix length must be 0 to 32"),
            ));
        }
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }

    /// `address/prefix_len` with the prefix length capped at 32, for lengths known to be valid.
    pub(crate) fn capped(address: Ipv4Addr, prefix_len: u8) -> Ipv4Cidr {
        Ipv4Cidr {
            address,
            prefix_len: prefix_len.min(32),
        }
    }

    /// The address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length (the `30` of `/30`).
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The subnet mask, e.g. `255.255.255.252` for `/30`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    /// The first address of the subnet (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask())
    }

    /// The last address of the subnet (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !self.mask())
    }

    /// Whether `ip` lies in this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.address) & self.mask()
    }

    /// Whether the two subnets share at least one address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        // Two aligned blocks overlap exactly when the larger one contains the smaller one.
        let shorter = self.prefix_len.min(other.prefix_len);
        let mask = prefix_mask(shorter);
        u32::from(self.address) & mask == u32::from(other.address) & mask
    }

    fn mask(&self) -> u32 {
        prefix_mask(self.prefix_len)
    }
}

fn prefix_mask(len: u8) -> u32 {
    match len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;

    /// Parses `a.b.c.d/N`. The prefix length is required: a bare address is ambiguous.
    fn from_str(s: &str) -> Result<Ipv4Cidr> {
        let bad = |why: &str| Error::config("IPv4 CIDR", format!("{s:?}: {why}"));
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.200.0.2/30"))?;
        let address: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 address in dotted-quad form"))?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the prefix length must be a number from 0 to 32"));
        }
        let prefix_len: u8 = len
            .parse()
            .map_err(|_| bad("the prefix length must be a number from 0 to 32"))?;
        if prefix_len > 32 {
            return Err(bad("the prefix length must be a number from 0 to 32"));
        }
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Refuses addresses that cannot sensibly sit on one end of a veth pair.
pub(crate) fn check_endpoint(what: &'static str, a: &Ipv4Cidr) -> Result<()> {
    let ip = a.address();
    let why = if !(1..=31).contains(&a.prefix_len()) {
        Some("the prefix length must be 1 to 31 (both ends need an address in one subnet)")
    } else if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
        Some("an unspecified, loopback, multicast or broadcast address cannot name an interface")
    } else if a.prefix_len() < 31 && (ip == a.network() || ip == a.broadcast()) {
        Some("that is the subnet's network or broadcast address")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::config(what, format!("{a}: {why}"))),
        None => Ok(()),
    }
}

/// The first address of `subnet` that is usable by a host and is not `taken`: for the host end
/// when only the container's address is given.
pub(crate) fn first_free_host(subnet: &Ipv4Cidr, taken: Ipv4Addr) -> Option<Ipv4Cidr> {
    let net = u32::from(subnet.network());
    let last = u32::from(subnet.broadcast());
    let (first, last) = if subnet.prefix_len() >= 31 {
        (net, last)
    } else {
        (net + 1, last - 1)
    };
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| *ip != taken)
        .map(|address| Ipv4Cidr {
            address,
            prefix_len: subnet.prefix_len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("10.200.3.9/30").to_string(), "10.200.3.9/30");
        assert_eq!(c("0.0.0.0/0").prefix_len(), 0);
        for bad in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/33",
            "10.0.0.1/-1",
            "10.0.0.1/+3",
            "10.0.0.1/030",
            "10.0.0/24",
            "10.0.0.256/24",
            "::1/64",
            "/24",
            "",
        ] {
            let e = bad.parse::<Ipv4Cidr>().unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("CIDR"), "{bad}: {e}");
        }
        assert!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 33).is_err());
    }

    #[test]
    fn subnet_arithmetic() {
        let a = c("10.200.0.6/30");
        assert_eq!(a.network(), Ipv4Addr::new(10, 200, 0, 4));
        assert_eq!(a.broadcast(), Ipv4Addr::new(10, 200, 0, 7));
        assert_eq!(a.netmask(), Ipv4Addr::new(255, 255, 255, 252));
        assert!(a.contains(Ipv4Addr::new(10, 200, 0, 5)));
        assert!(!a.contains(Ipv4Addr::new(10, 200, 0, 8)));
        assert!(a.overlaps(&c("10.200.0.0/16")));
        assert!(c("10.0.0.0/8").overlaps(&a));
        assert!(!a.overlaps(&c("10.200.0.8/30")));
        assert!(c("1.2.3.4/0").overlaps(&a));
        assert_eq!(c("1.2.3.4/32").broadcast(), Ipv4Addr::new(1, 2, 3, 4));
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("x", &c("10.200.0.1/30")).is_ok());
        assert!(check_endpoint("x", &c("10.200.0.0/31")).is_ok());
        for bad in [
            "10.200.0.0/30",
            "10.200.0.3/30",
            "10.200.0.1/32",
            "10.200.0.1/0",
            "127.0.0.2/8",
            "224.0.0.1/4",
            "0.0.0.0/8",
        ] {
            assert!(check_endpoint("x", &c(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_end_is_the_first_free_address() {
        let s = c("10.0.5.2/30");
        assert_eq!(first_free_host(&s, s.address()), Some(c("10.0.5.1/30")));
        let s = c("10.0.5.1/30");
        assert_eq!(first_free_host(&s, s.address()), Some(c("10.0.5.2/30")));
        let s = c("10.0.5.1/31");
        assert_eq!(first_free_host(&s, s.address()), Some(c("10.0.5.0/31")));
        let s = c("192.168.7.20/24");
        assert_eq!(first_free_host(&s, s.address()), Some(c("192.168.7.1/24")));
    }
}
