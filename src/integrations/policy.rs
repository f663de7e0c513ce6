//! The network policy of outbound connections: `PRINTER_HUB_PRINTER_NETWORKS`
//! is a comma-separated list of CIDRs (`192.168.1.0/24, 10.0.0.5/32,
//! fd00::/8`); empty = any address. Printers (the "policy" work) and webhook
//! subscribers obey the same list, so a key holder cannot make the hub talk
//! to a network the operator did not allow.
//!
//! **Invariant:** a host is allowed only if *every* address it resolves to
//! is inside the list (a name that resolves to one allowed and one
//! forbidden address is refused), and the check runs on the resolved
//! addresses right before connecting.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// One CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The allowed networks; empty = any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<Cidr>);

impl Networks {
    pub fn any() -> Networks {
        Networks(Vec::new())
    }

    /// Parses the variable's value (comma or whitespace separated).
    pub fn parse(s: &str) -> Result<Networks, String> {
        let list = s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if list.len() > 256 {
            return Err("at most 256 networks".into());
        }
        Ok(Networks(list))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|c| c.contains(ip))
    }

    /// Resolves `host:port` and checks every address. Returns the addresses.
    pub fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} resolves to no address"));
        }
        if let Some(bad) = addrs.iter().find(|a| !self.allows(a.ip())) {
            return Err(format!(
                "{host} resolves to {}, outside PRINTER_HUB_PRINTER_NETWORKS",
                bad.ip()
            ));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let n = Networks::parse("192.168.1.0/24, 10.0.0.5 fd00::/8").unwrap();
        assert!(n.allows("192.168.1.77".parse().unwrap()));
        assert!(!n.allows("192.168.2.1".parse().unwrap()));
        assert!(n.allows("10.0.0.5".parse().unwrap()));
        assert!(!n.allows("10.0.0.6".parse().unwrap()));
        assert!(n.allows("fd12::1".parse().unwrap()));
        assert!(n.allows("::ffff:192.168.1.3".parse().unwrap()));
        assert!(!n.allows("::1".parse().unwrap()));
        assert!(Networks::parse("0.0.0.0/0")
            .unwrap()
            .allows("8.8.8.8".parse().unwrap()));
        assert!(Networks::any().allows("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "::/129", "10.0.0.0/-1"] {
            assert!(Networks::parse(bad).is_err(), "{bad}");
        }
        let lo = Networks::parse("127.0.0.0/8").unwrap();
        assert!(lo.resolve("127.0.0.1", 80).is_ok());
        assert!(Networks::parse("10.0.0.0/8")
            .unwrap()
            .resolve("127.0.0.1", 80)
            .is_err());
    }
}
