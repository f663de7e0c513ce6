//! The network policy of outbound connections: `PRINTER_HUB_PRINTER_NETWORKS`
//! (read by `hub::config` into `brother::transport::Network`s, the same list
//! `tcp://` printers obey); empty = any address. Webhook subscribers obey
//! it too, so a key holder cannot make the hub talk to a network the
//! operator did not allow.
//!
//! **Invariant:** a host is allowed only if *every* address it resolves to
//! is inside the list (a name that resolves to one allowed and one
//! forbidden address is refused), the check runs right before connecting,
//! and `client` connects to exactly those checked addresses (no second DNS
//! answer: DNS rebinding cannot move the connection).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::brother::transport::Network;

/// The allowed networks; empty = any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<Network>);

impl Networks {
    pub fn any() -> Networks {
        Networks(Vec::new())
    }

    /// The hub's parsed `PRINTER_HUB_PRINTER_NETWORKS`.
    pub fn new(list: Vec<Network>) -> Networks {
        Networks(list)
    }

    /// Parses the variable's value (comma or whitespace separated).
    pub fn parse(s: &str) -> Result<Networks, String> {
        let list = s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(Network::parse)
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
