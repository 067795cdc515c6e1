//! IPv4 subnets: parsing, overlap, and the host's routed subnets (which a new
//! network must not take).

use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// An IPv4 subnet in CIDR notation, e.g. `10.90.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = |why: &str| Error::InvalidArgument(format!("invalid subnet {s:?}: {why}"));
        let (a, p) = s.split_once('/').ok_or_else(|| bad("use CIDR notation, e.g. 10.90.0.0/24"))?;
        if a.contains(':') {
            return Err(bad("IPv6 networks are not supported yet"));
        }
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("the prefix length must be a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let net = Subnet { addr, prefix };
        if net.network() != addr {
            return Err(bad(&format!("host bits are set (did you mean {}/{prefix}?)", net.network())));
        }
        Ok(net)
    }

    fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The first host address (Docker's and podman's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Subnets the host routes today (`/proc/net/route`, the main table), the
/// default route excepted.
pub(crate) fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        // The kernel prints the raw network-order word as a native integer.
        let prefix = mask.count_ones() as u8;
        if prefix == 0 {
            continue;
        }
        out.push(Subnet { addr: Ipv4Addr::from(dst.to_ne_bytes()), prefix });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Subnet;

    #[test]
    fn parse_and_overlap() {
        let a = Subnet::parse("10.90.0.0/24").unwrap();
        assert_eq!(a.first_host().to_string(), "10.90.0.1");
        assert_eq!(a.broadcast().to_string(), "10.90.0.255");
        assert!(a.overlaps(&Subnet::parse("10.0.0.0/8").unwrap()));
        assert!(!a.overlaps(&Subnet::parse("10.90.1.0/24").unwrap()));
        assert!(a.contains("10.90.0.77".parse().unwrap()));
        for bad in ["10.90.0.0", "10.90.0.1/24", "300.1.1.0/24", "10.0.0.0/40", "fd00::/64", "x/24"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }
}
