//! Network printers by SNMP: one v2c GetRequest per address of an IPv4
//! CIDR for sysDescr, Brother's device id (IEEE 1284 string) and status
//! block, and `hrPrinterStatus`.
//!
//! **Bounds.** At most [`MAX_HOSTS`] addresses (a /20); requests are paced
//! at `rate` per second (at most [`MAX_RATE`]), each unanswered address is
//! asked once more, and the whole sweep ends at `deadline` (at most
//! [`MAX_DEADLINE`]) whatever happens. A sweep that cannot probe every
//! address twice within the deadline at that rate is refused up front, so
//! a result never silently covers part of the range. Everything runs on one
//! UDP socket in the calling thread; memory is one record per address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::{model_in, Found};
use crate::brother::snmp::{self, Message, Oid, Pdu, PduKind, Value, Version};
use crate::brother::status;

/// Most addresses one sweep covers.
pub const MAX_HOSTS: u32 = 4096;
/// Fastest request rate, per second.
pub const MAX_RATE: u32 = 1000;
/// Longest sweep.
pub const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// What to sweep and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Network address and prefix length.
    pub net: Ipv4Addr,
    pub prefix: u8,
    /// SNMP port (161).
    pub snmp_port: u16,
    /// The raw print port put in the suggested URI (9100).
    pub raw_port: u16,
    pub community: String,
    /// Requests per second.
    pub rate: u32,
    /// How long to wait for each address's answer.
    pub timeout: Duration,
    /// Bound on the whole sweep.
    pub deadline: Duration,
}

impl ScanOptions {
    /// Defaults for `cidr` (port 161, 9100, `public`, 100/s, 1 s, 20 s).
    pub fn new(cidr: &str) -> Result<ScanOptions, String> {
        let (net, prefix) = parse_cidr(cidr)?;
        Ok(ScanOptions {
            net,
            prefix,
            snmp_port: 161,
            raw_port: 9100,
            community: "public".into(),
            rate: 100,
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(20),
        })
    }

    /// The addresses to ask: every address of a /31 or /32, else all but
    /// the network and broadcast addresses.
    pub fn hosts(&self) -> Vec<Ipv4Addr> {
        let base = u32::from(self.net);
        let size = 1u64 << (32 - u32::from(self.prefix));
        let (first, last) = if size <= 2 { (0, size) } else { (1, size - 1) };
        (first..last)
            .map(|i| Ipv4Addr::from(base.wrapping_add(i as u32)))
            .collect()
    }

    /// Checks every bound; the message says which and why.
    pub fn check(&self) -> Result<(), String> {
        let hosts = self.hosts().len() as u64;
        if self.prefix < 20 {
            return Err(format!(
                "/{} is {} addresses; sweep at most {MAX_HOSTS} (a /20) at a time",
                self.prefix,
                1u64 << (32 - u32::from(self.prefix))
            ));
        }
        if !(1..=MAX_RATE).contains(&self.rate) {
            return Err(format!(
                "rate {}: 1 to {MAX_RATE} requests per second",
                self.rate
            ));
        }
        if self.timeout < Duration::from_millis(50) || self.timeout > Duration::from_secs(10) {
            return Err(format!(
                "timeout {} ms: 50 to 10000 ms per address",
                self.timeout.as_millis()
            ));
        }
        if self.deadline.is_zero() || self.deadline > MAX_DEADLINE {
            return Err(format!(
                "deadline {} ms: 1 to {} s",
                self.deadline.as_millis(),
                MAX_DEADLINE.as_secs()
            ));
        }
        if self.snmp_port == 0 || self.raw_port == 0 {
            return Err("ports must be 1 to 65535".into());
        }
        // Two requests per address at the rate, plus the last timeout.
        let needed =
            Duration::from_secs_f64(2.0 * hosts as f64 / f64::from(self.rate)) + self.timeout;
        if needed > self.deadline {
            return Err(format!(
                "{hosts} addresses at {}/s with a {} ms timeout need {:.1} s, more than the \
                 deadline of {:.1} s: raise the rate or the deadline, or narrow the range",
                self.rate,
                self.timeout.as_millis(),
                needed.as_secs_f64(),
                self.deadline.as_secs_f64()
            ));
        }
        Ok(())
    }
}

/// `192.168.1.0/24` or a single address (`/32`). Host bits are cleared.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (
            a,
            p.parse::<u8>()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to 32"))?,
        ),
        None => (s, 32),
    };
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address or CIDR like 192.168.1.0/24"))?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    Ok((Ipv4Addr::from(u32::from(addr) & mask), prefix))
}

/// What a sweep saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanReport {
    pub cidr: String,
    pub probed: usize,
    pub answered: usize,
    pub requests_sent: usize,
    pub elapsed_ms: u64,
    pub found: Vec<Found>,
}

const OIDS: [&[u32]; 4] = [
    snmp::SYS_DESCR,
    snmp::BROTHER_DEVICE_ID,
    snmp::BROTHER_STATUS,
    snmp::HR_PRINTER_STATUS,
];

fn request(community: &str, request_id: i32) -> Vec<u8> {
    snmp::encode(&Message {
        version: Version::V2c,
        community: community.as_bytes().to_vec(),
        pdu: Pdu {
            kind: PduKind::GetRequest,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: OIDS.iter().map(|o| (Oid::from(*o), Value::Null)).collect(),
        },
    })
}

/// Sweeps the range. Only socket errors fail the sweep; silent addresses
/// are simply not in `found`.
pub fn scan(opts: &ScanOptions) -> Result<ScanReport, String> {
    opts.check()?;
    let started = Instant::now();
    let hard_end = started + opts.deadline;
    let hosts = opts.hosts();
    let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    let mut seed = [0u8; 4];
    let _ = getrandom::fill(&mut seed);
    let base = (u32::from_le_bytes(seed) >> 2) as i32;
    let id_of = |i: usize| base.wrapping_add(i as i32) & 0x3fff_ffff;
    let index: HashMap<Ipv4Addr, usize> = hosts.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.rate));
    let mut answers: Vec<Option<Vec<(Oid, Value)>>> = vec![None; hosts.len()];
    let mut sent = 0usize;
    let mut buf = vec![0u8; 65_536];
    let mut next_send = started;
    // Pass 0 asks everyone, pass 1 asks again whoever stayed silent.
    for pass in 0..2 {
        let todo: Vec<usize> = (0..hosts.len()).filter(|i| answers[*i].is_none()).collect();
        if todo.is_empty() {
            break;
        }
        let mut queue = todo.into_iter();
        let mut pending = queue.next();
        let mut last_sent = Instant::now();
        loop {
            let now = Instant::now();
            if now >= hard_end {
                break;
            }
            if let Some(i) = pending {
                if now >= next_send {
                    let to = SocketAddrV4::new(hosts[i], opts.snmp_port);
                    // A send error for one address (no route) is that
                    // address's silence, not the sweep's failure.
                    let _ = socket.send_to(&request(&opts.community, id_of(i)), to);
                    sent += 1;
                    last_sent = now;
                    next_send = (next_send + interval).max(now);
                    pending = queue.next();
                    continue;
                }
            }
            let wait_until = match pending {
                Some(_) => next_send,
                None => last_sent + opts.timeout,
            }
            .min(hard_end);
            if pending.is_none() && now >= wait_until {
                break;
            }
            let wait = wait_until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            socket
                .set_read_timeout(Some(wait))
                .map_err(|e| format!("socket: {e}"))?;
            match socket.recv_from(&mut buf) {
                Ok((n, SocketAddr::V4(from))) => {
                    let Some(&i) = index.get(from.ip()) else {
                        continue;
                    };
                    let Ok(msg) = snmp::decode(&buf[..n]) else {
                        continue;
                    };
                    if msg.pdu.kind != PduKind::Response
                        || msg.pdu.request_id != id_of(i)
                        || msg.community != opts.community.as_bytes()
                        || answers[i].is_some()
                    {
                        continue;
                    }
                    answers[i] = Some(msg.pdu.varbinds);
                    if pending.is_none() && answers.iter().all(Option::is_some) {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => return Err(format!("SNMP sweep failed: {e}")),
            }
        }
        if Instant::now() >= hard_end {
            log::debug!("discover: SNMP sweep hit its deadline in pass {pass}");
            break;
        }
    }
    let found: Vec<Found> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_ref().map(|vb| record(hosts[i], opts, vb)))
        .collect();
    Ok(ScanReport {
        cidr: format!("{}/{}", opts.net, opts.prefix),
        probed: hosts.len(),
        answered: found.len(),
        requests_sent: sent,
        elapsed_ms: started.elapsed().as_millis() as u64,
        found,
    })
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::OctetString(b)) => {
            let s = String::from_utf8_lossy(b).trim().to_string();
            (!s.is_empty()).then(|| s.chars().take(256).collect())
        }
        _ => None,
    }
}

/// One answering address as a [`Found`].
fn record(addr: Ipv4Addr, opts: &ScanOptions, varbinds: &[(Oid, Value)]) -> Found {
    let get = |oid: &[u32]| {
        let want = Oid::from(oid);
        varbinds.iter().find(|(o, _)| *o == want).map(|(_, v)| v)
    };
    let descr = text(get(snmp::SYS_DESCR));
    let ieee = text(get(snmp::BROTHER_DEVICE_ID))
        .map(|s| super::usb::parse_ieee1284(&s))
        .unwrap_or_default();
    let block = match get(snmp::BROTHER_STATUS) {
        Some(Value::OctetString(b)) => status::parse(b).ok(),
        _ => None,
    };
    let mut f = Found::new("network", addr.to_string());
    f.reported = ieee.get("MDL").cloned().or_else(|| descr.clone());
    f.serial = ieee.get("SN").cloned();
    let m = ieee
        .get("MDL")
        .and_then(|s| model_in(s))
        .or_else(|| descr.as_deref().and_then(model_in))
        .or_else(|| block.as_ref().and_then(|s| s.model()));
    let brother = ieee
        .get("MFG")
        .map(|s| s.to_ascii_lowercase().contains("brother"))
        .unwrap_or(false)
        || descr
            .as_deref()
            .map(|s| s.to_ascii_lowercase().contains("brother"))
            .unwrap_or(false)
        || block.is_some();
    match m.filter(|_| brother) {
        Some(m) => {
            f.model = Some(m.name.to_string());
            f.supported = true;
            let mut query = Vec::new();
            if opts.snmp_port != 161 {
                query.push(format!("snmp_port={}", opts.snmp_port));
            }
            if opts.community != "public" {
                query.push(format!("community={}", opts.community));
            }
            f.uri = Some(format!(
                "tcp://{addr}:{}{}{}",
                opts.raw_port,
                if query.is_empty() { "" } else { "?" },
                query.join("&")
            ));
            f.media = block.as_ref().and_then(|s| s.loaded_media_id(m.family));
            if let Some(p) = block.as_ref().and_then(|s| s.problem()) {
                f.problem = Some(format!("the printer reports: {p}"));
            }
        }
        None if brother => {
            f.problem = Some(format!(
                "Brother {} is not a model labelhub supports",
                f.reported.as_deref().unwrap_or("device")
            ));
            f.fix = Some("run `labelhub models` for the supported PT and QL models".into());
        }
        None => {
            f.problem = Some(format!(
                "not a Brother label printer ({})",
                descr.as_deref().unwrap_or("no sysDescr")
            ));
        }
    }
    f.complete();
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cidrs_parse_and_are_bounded() {
        assert_eq!(
            parse_cidr("192.168.1.77/24").unwrap(),
            (Ipv4Addr::new(192, 168, 1, 0), 24)
        );
        assert_eq!(
            parse_cidr("10.0.0.5").unwrap(),
            (Ipv4Addr::new(10, 0, 0, 5), 32)
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("printer.local").is_err());
        assert!(parse_cidr("::1/128").is_err());
        let mut o = ScanOptions::new("127.0.0.0/29").unwrap();
        assert_eq!(o.hosts().len(), 6);
        assert_eq!(o.hosts()[0], Ipv4Addr::new(127, 0, 0, 1));
        assert!(o.check().is_ok());
        assert_eq!(ScanOptions::new("127.0.0.9/32").unwrap().hosts().len(), 1);
        assert_eq!(ScanOptions::new("127.0.0.8/31").unwrap().hosts().len(), 2);
        o = ScanOptions::new("10.0.0.0/8").unwrap();
        assert!(o.check().unwrap_err().contains("at most 4096"));
        o = ScanOptions::new("10.0.0.0/20").unwrap();
        // 4094 addresses twice at 100/s do not fit 20 s.
        assert!(
            o.check().unwrap_err().contains("raise the rate"),
            "{:?}",
            o.check()
        );
        o.rate = 1000;
        assert!(o.check().is_ok());
        o.rate = 5000;
        assert!(o.check().is_err());
    }

    #[test]
    fn a_silent_range_ends_within_its_bounds() {
        // Nothing answers SNMP on 127.0.0.0/30 at a port nobody uses.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut o = ScanOptions::new("127.0.0.0/30").unwrap();
        o.snmp_port = port;
        o.timeout = Duration::from_millis(200);
        o.deadline = Duration::from_secs(2);
        let t = Instant::now();
        let r = scan(&o).unwrap();
        assert!(r.found.is_empty());
        assert_eq!(r.probed, 2);
        assert_eq!(r.requests_sent, 4, "each address is asked twice");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
