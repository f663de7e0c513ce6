//! How raster streams reach a printer: one small [`Transport`] trait and its
//! four implementations, chosen by a printer URI.
//!
//! | URI | implementation | status from |
//! |---|---|---|
//! | `tcp://host[:9100][?community=public&snmp_port=161]` | raw TCP (`tcp`) | SNMP v2c, Brother status OID |
//! | `usb:///dev/usb/lp0` | USB printer device file (`usb`) | `ESC i S` on the device |
//! | `dir:///path[?media=12]` | a `.bin` file per job (`dir`) | the `media` parameter |
//! | `emulator:[?media=12&speed=instant\|real\|<mm/s>]` | the in-process emulator | the emulator |
//!
//! **Invariants.**
//! * A job is `begin` → `write`* → `finish` (or `abort`). Whatever happens,
//!   after `finish`, `abort` or an error from any call, nothing of the job
//!   stays open: the socket is closed, the device file released, the
//!   partial `.bin` removed.
//! * Every wait is bounded. TCP and USB jobs get a deadline of
//!   [`job_timeout`] (10 s plus the stream's size at a quarter of the
//!   model's print speed), status requests a few seconds.
//! * Errors are [`TransportError`] values whose `code()` is stable and whose
//!   message says what to do (the USB busy/permission errors name the
//!   usblp/ipp-usb conflict and the udev rule).

mod dir;
mod emulated;
mod tcp;
mod usb;

use std::fmt;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::emulator::{self, Speed};
use super::model::Model;
use super::status::{Problem, Status, StatusError};

/// A connection to one printer, used for one job at a time.
pub trait Transport: Send {
    /// Where the bytes go, for logs and error messages (no secrets).
    fn describe(&self) -> String;
    /// The printer's live status (USB `ESC i S`, SNMP for TCP, the emulator).
    fn status(&mut self) -> Result<Status, TransportError>;
    /// Starts a job of about `size_hint` bytes (connects / opens).
    fn begin(&mut self, size_hint: usize) -> Result<(), TransportError>;
    /// Sends the next part of the stream; returns when the printer accepted
    /// it (the emulator prints each completed page here, at real speed if
    /// configured).
    fn write(&mut self, chunk: &[u8]) -> Result<(), TransportError>;
    /// Ends the job: flushes and closes.
    fn finish(&mut self) -> Result<(), TransportError>;
    /// Drops the job without finishing it. Never fails.
    fn abort(&mut self);
}

/// What `open` needs besides the URI.
#[derive(Clone, Debug)]
pub struct OpenCtx {
    /// The hub's data directory; emulator output goes to
    /// `data_dir/emulator/<printer_key>/`.
    pub data_dir: PathBuf,
    /// The printer's key (slug), used for the emulator's directory.
    pub printer_key: String,
}

/// A parsed printer URI.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// Raw TCP (port 9100 by default); status over SNMP unless `snmp_port`
    /// is `None` (`snmp_port=off`).
    Tcp {
        host: String,
        port: u16,
        snmp_port: Option<u16>,
        community: String,
    },
    /// A USB printer device file such as `/dev/usb/lp0`.
    Usb { path: PathBuf },
    /// A directory that receives one `.bin` file per job. `media` is what
    /// `status()` reports as loaded.
    Dir {
        path: PathBuf,
        media: Option<String>,
    },
    /// The in-process emulator; `media` defaults to the model's usual
    /// medium (12 mm tape, 62 mm roll).
    Emulator { media: Option<String>, speed: Speed },
}

impl fmt::Display for Endpoint {
    /// The canonical URI without the SNMP community.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp {
                host,
                port,
                snmp_port,
                ..
            } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                match snmp_port {
                    Some(161) => write!(f, "tcp://{host}:{port}"),
                    Some(p) => write!(f, "tcp://{host}:{port}?snmp_port={p}"),
                    None => write!(f, "tcp://{host}:{port}?snmp_port=off"),
                }
            }
            Endpoint::Usb { path } => write!(f, "usb://{}", path.display()),
            Endpoint::Dir { path, media } => {
                write!(f, "dir://{}", path.display())?;
                match media {
                    Some(m) => write!(f, "?media={m}"),
                    None => Ok(()),
                }
            }
            Endpoint::Emulator { media, speed } => {
                write!(f, "emulator:?speed={speed}")?;
                match media {
                    Some(m) => write!(f, "&media={m}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Default raw printing port.
pub const DEFAULT_TCP_PORT: u16 = 9100;
/// Default SNMP port and community.
pub const DEFAULT_SNMP_PORT: u16 = 161;
pub const DEFAULT_COMMUNITY: &str = "public";

/// Parses and validates a printer URI without touching the printer.
pub fn parse_uri(uri: &str) -> Result<Endpoint, TransportError> {
    let bad = |reason: &str| TransportError::InvalidUri {
        uri: redact_uri(uri),
        reason: reason.to_string(),
    };
    let trimmed = uri.trim();
    let (scheme, rest) = trimmed
        .split_once(':')
        .ok_or_else(|| bad("expected tcp://, usb://, dir:// or emulator:"))?;
    let (body, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let params = parse_query(query).map_err(|r| bad(&r))?;
    let unknown = |allowed: &[&str]| {
        params
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| {
                bad(&format!(
                    "unknown parameter `{k}` (allowed: {})",
                    allowed.join(", ")
                ))
            })
    };
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    match scheme.to_ascii_lowercase().as_str() {
        "tcp" => {
            if let Some(e) = unknown(&["community", "snmp_port"]) {
                return Err(e);
            }
            let authority = body
                .strip_prefix("//")
                .ok_or_else(|| bad("expected tcp://host:port"))?;
            let authority = authority.strip_suffix('/').unwrap_or(authority);
            let (host, port) = split_host_port(authority).map_err(|r| bad(&r))?;
            let snmp_port = match get("snmp_port").as_deref() {
                None => Some(DEFAULT_SNMP_PORT),
                Some("off") => None,
                Some(p) => Some(
                    p.parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or_else(|| bad("snmp_port must be 1..65535 or `off`"))?,
                ),
            };
            let community = get("community").unwrap_or_else(|| DEFAULT_COMMUNITY.to_string());
            if community.is_empty() {
                return Err(bad("community must not be empty"));
            }
            Ok(Endpoint::Tcp {
                host,
                port: port.unwrap_or(DEFAULT_TCP_PORT),
                snmp_port,
                community,
            })
        }
        "usb" => {
            if let Some(e) = unknown(&[]) {
                return Err(e);
            }
            let path = local_path(body).map_err(|r| bad(&r))?;
            Ok(Endpoint::Usb { path })
        }
        "dir" => {
            if let Some(e) = unknown(&["media"]) {
                return Err(e);
            }
            let path = local_path(body).map_err(|r| bad(&r))?;
            Ok(Endpoint::Dir {
                path,
                media: get("media"),
            })
        }
        "emulator" => {
            if let Some(e) = unknown(&["media", "speed"]) {
                return Err(e);
            }
            if !(body.is_empty() || body == "//" || body == "///") {
                return Err(bad("expected emulator:?media=ID&speed=instant|real|<mm/s>"));
            }
            let speed = match get("speed") {
                None => Speed::Instant,
                Some(s) => Speed::parse(&s).map_err(|r| bad(&r))?,
            };
            Ok(Endpoint::Emulator {
                media: get("media"),
                speed,
            })
        }
        other => Err(bad(&format!(
            "unknown scheme `{other}` (expected tcp, usb, dir or emulator)"
        ))),
    }
}

/// Where printer connections may point: checked when an admin sets a URI
/// and again every time a printer thread opens its device.
///
/// * `usb://` only a character device, never under `/proc` or `/sys` (a
///   path that does not exist yet must be under `/dev/`: the printer may be
///   unplugged).
/// * `dir://` only under one of `dir_roots` (the data directory and
///   `PRINTER_HUB_DIR_ROOTS`), symbolic links resolved, no `..`.
/// * `tcp://` only to addresses in `networks` (`PRINTER_HUB_PRINTER_NETWORKS`)
///   when that list is not empty; a host name must resolve, and every
///   address it resolves to must be inside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reach {
    pub dir_roots: Vec<PathBuf>,
    pub networks: Vec<Network>,
}

/// An IP network in CIDR notation (`192.168.1.0/24`, `fd00::/8`; a bare
/// address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Result<Network, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(a) => u128::from(a),
            }
        };
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let shift = width - u32::from(self.prefix);
        (bits(ip) >> shift) == (bits(self.addr) >> shift)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Checks that `endpoint` (parsed from `uri`) stays within `reach`.
pub fn check_reach(uri: &str, endpoint: &Endpoint, reach: &Reach) -> Result<(), TransportError> {
    let bad = |reason: String| TransportError::InvalidUri {
        uri: redact_uri(uri),
        reason,
    };
    match endpoint {
        Endpoint::Usb { path } => check_usb_path(path).map_err(bad),
        Endpoint::Dir { path, .. } => check_dir_path(path, &reach.dir_roots).map_err(bad),
        Endpoint::Tcp { host, port, .. } if !reach.networks.is_empty() => {
            let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| {
                        bad(format!(
                            "cannot resolve `{host}` to check it against PRINTER_HUB_PRINTER_NETWORKS: {e}"
                        ))
                    })?
                    .map(|a| a.ip())
                    .collect(),
            };
            let outside = addrs
                .iter()
                .find(|ip| !reach.networks.iter().any(|n| n.contains(**ip)));
            match (addrs.is_empty(), outside) {
                (true, _) => Err(bad(format!("`{host}` has no address"))),
                (false, Some(ip)) => Err(bad(format!(
                    "{ip} is outside PRINTER_HUB_PRINTER_NETWORKS ({})",
                    reach
                        .networks
                        .iter()
                        .map(Network::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
                (false, None) => Ok(()),
            }
        }
        Endpoint::Tcp { .. } | Endpoint::Emulator { .. } => Ok(()),
    }
}

/// `usb://`: a character device, not under `/proc` or `/sys`.
fn check_usb_path(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("`..` is not allowed in a device path".into());
    }
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.starts_with("/dev/") => {
            // Not plugged in yet; every open checks again.
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if real.starts_with("/proc") || real.starts_with("/sys") {
        return Err(format!(
            "{} is not a printer device (/proc and /sys are refused)",
            real.display()
        ));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.file_type().is_char_device() {
        return Err(format!(
            "{} is not a character device (a USB printer is /dev/usb/lpN)",
            real.display()
        ));
    }
    Ok(())
}

/// `dir://`: under one of `roots` once symbolic links are resolved.
fn check_dir_path(path: &Path, roots: &[PathBuf]) -> Result<(), String> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("`..` is not allowed in an output directory".into());
    }
    let real = resolve_existing(path);
    let inside = roots.iter().any(|root| {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        real.starts_with(&root)
    });
    if inside {
        Ok(())
    } else {
        Err(format!(
            "{} is outside the data directory and PRINTER_HUB_DIR_ROOTS ({})",
            path.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// `path` with its longest existing ancestor's symbolic links resolved
/// (the rest, not created yet, appended as it is).
fn resolve_existing(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(real) = std::fs::canonicalize(&cur) {
            return rest.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The URI with the value of a `community=` parameter replaced by `***`
/// (for logs, error messages and non-admin views).
pub fn redact_uri(uri: &str) -> String {
    let Some((base, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == "community" => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// `k=v&k=v` into pairs. No percent-decoding (none of our values need it).
fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    let mut res: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("parameter `{part}` has no value"))?;
        if v.is_empty() {
            return Err(format!("parameter `{k}` has an empty value"));
        }
        if res.iter().any(|(seen, _)| seen == k) {
            return Err(format!("parameter `{k}` is given twice"));
        }
        res.push((k.to_string(), v.to_string()));
    }
    Ok(res)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unterminated `[` in the host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected `:port` after `]`")?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err("IPv6 addresses must be in brackets: tcp://[::1]:9100".into()),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#'))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("`{p}` is not a port (1..65535)"))?,
        ),
    };
    Ok((host.to_string(), port))
}

/// The path of `usb:///dev/usb/lp0` / `dir:///srv/out` (must be absolute).
fn local_path(body: &str) -> Result<PathBuf, String> {
    let path = body
        .strip_prefix("//")
        .ok_or("expected three slashes and an absolute path, e.g. usb:///dev/usb/lp0")?;
    if !path.starts_with('/') {
        return Err("the path must be absolute (three slashes: scheme:///path)".into());
    }
    if path.len() < 2 {
        return Err("the path is empty".into());
    }
    Ok(PathBuf::from(path))
}

/// Opens a transport for `model` at `uri`. Nothing is connected yet
/// (`begin` does that), except that the emulator is created.
pub fn open(
    uri: &str,
    model: &'static Model,
    ctx: &OpenCtx,
) -> Result<Box<dyn Transport>, TransportError> {
    match parse_uri(uri)? {
        Endpoint::Tcp {
            host,
            port,
            snmp_port,
            community,
        } => Ok(Box::new(tcp::TcpTransport::new(
            host, port, snmp_port, community, model,
        ))),
        Endpoint::Usb { path } => Ok(Box::new(usb::UsbTransport::new(path, model))),
        Endpoint::Dir { path, media } => {
            if let Some(id) = &media {
                super::media::geometry(model, id).map_err(|e| TransportError::InvalidUri {
                    uri: uri.to_string(),
                    reason: e.to_string(),
                })?;
            }
            Ok(Box::new(dir::DirTransport::new(path, media, model)))
        }
        Endpoint::Emulator { media, speed } => {
            let media_id = match media {
                Some(m) => m,
                None => emulator::default_media(model).to_string(),
            };
            let out_dir = ctx
                .data_dir
                .join("emulator")
                .join(safe_file_name(&ctx.printer_key));
            let emu = emulator::Emulator::shared(emulator::EmulatorConfig {
                model,
                media_id,
                out_dir,
                speed,
                fault: None,
            })
            .map_err(|e| TransportError::InvalidUri {
                uri: uri.to_string(),
                reason: e.to_string(),
            })?;
            Ok(emu.transport())
        }
    }
}

/// A printer key as one safe path component.
fn safe_file_name(key: &str) -> String {
    let res: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match res.trim_matches('.') {
        "" => "printer".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// Base allowance of every job before the size-dependent part.
pub const JOB_TIMEOUT_BASE: Duration = Duration::from_secs(10);
/// Slowest rate a printer is assumed to accept data at, bytes per second.
const MIN_RATE: f64 = 1024.0;

/// How long a job of `bytes` may take to be accepted by `model`: 10 s plus
/// the time to print that many bytes of uncompressed raster at a quarter
/// of the model's nominal speed (network printers and usblp accept data
/// only as fast as they print once their buffer is full).
pub fn job_timeout(model: &Model, bytes: usize) -> Duration {
    let line_bytes = f64::from(model.bytes_per_line) + 3.0;
    let lines_per_mm = f64::from(model.dpi) / 25.4;
    let rate = f64::from(model.speed_mm_s) * lines_per_mm * line_bytes / 4.0;
    let rate = rate.max(MIN_RATE);
    JOB_TIMEOUT_BASE + Duration::from_secs_f64(bytes as f64 / rate)
}

/// Why talking to a printer failed.
#[derive(Debug)]
pub enum TransportError {
    /// The printer URI is malformed or names an unknown medium.
    InvalidUri { uri: String, reason: String },
    /// Nothing answers: connection refused, host unreachable, no device.
    Offline { target: String, detail: String },
    /// The device is held by someone else.
    Busy { target: String, hint: String },
    /// The OS refuses access.
    PermissionDenied { target: String, hint: String },
    /// A bounded wait ran out.
    Timeout {
        target: String,
        what: &'static str,
        after: Duration,
    },
    /// The printer closed or reset the connection in the middle of a job.
    ConnectionDropped { target: String, detail: String },
    /// The printer reports a condition that stops printing.
    Printer {
        target: String,
        problem: Problem,
        detail: String,
    },
    /// The printer refused the stream (emulator: the strict decoder or a
    /// media check failed).
    Rejected { target: String, reason: String },
    /// No status can be had from this transport right now.
    StatusUnavailable { target: String, detail: String },
    /// The printer answered with something that is not a status block.
    BadStatus { target: String, error: StatusError },
    /// Another I/O error.
    Io { target: String, detail: String },
    /// `write`/`finish` without a successful `begin`.
    NotStarted { target: String },
}

impl TransportError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TransportError::InvalidUri { .. } => "invalid_printer_uri",
            TransportError::Offline { .. } => "printer_offline",
            TransportError::Busy { .. } => "printer_busy",
            TransportError::PermissionDenied { .. } => "permission_denied",
            TransportError::Timeout { .. } => "timeout",
            TransportError::ConnectionDropped { .. } => "connection_dropped",
            TransportError::Printer { problem, .. } => problem.code(),
            TransportError::Rejected { .. } => "job_rejected",
            TransportError::StatusUnavailable { .. } => "status_unavailable",
            TransportError::BadStatus { error, .. } => error.code(),
            TransportError::Io { .. } => "io_error",
            TransportError::NotStarted { .. } => "job_not_started",
        }
    }

    /// The printer problem behind this error, if it is one.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            TransportError::Printer { problem, .. } => Some(*problem),
            TransportError::Offline { .. } => Some(Problem::Offline),
            _ => None,
        }
    }

    /// Maps an I/O error of `target` to the closest variant.
    pub(crate) fn from_io(target: &str, what: &'static str, e: &io::Error) -> TransportError {
        let target = target.to_string();
        match e.kind() {
            io::ErrorKind::ConnectionRefused => TransportError::Offline {
                target,
                detail: format!("{what}: connection refused (printer off or wrong port)"),
            },
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                TransportError::Offline {
                    target,
                    detail: format!("{what}: {e}"),
                }
            }
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof => TransportError::ConnectionDropped {
                target,
                detail: format!("{what}: {e}"),
            },
            _ => TransportError::Io {
                target,
                detail: format!("{what}: {e}"),
            },
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::InvalidUri { uri, reason } => {
                write!(f, "invalid printer URI `{uri}`: {reason}")
            }
            TransportError::Offline { target, detail } => {
                write!(f, "printer {target} is offline: {detail}")
            }
            TransportError::Busy { target, hint } => write!(f, "{target} is busy: {hint}"),
            TransportError::PermissionDenied { target, hint } => {
                write!(f, "permission denied on {target}: {hint}")
            }
            TransportError::Timeout {
                target,
                what,
                after,
            } => write!(
                f,
                "{target}: {what} timed out after {:.1} s",
                after.as_secs_f64()
            ),
            TransportError::ConnectionDropped { target, detail } => {
                write!(
                    f,
                    "{target} dropped the connection during the job: {detail}"
                )
            }
            TransportError::Printer {
                target,
                problem,
                detail,
            } => write!(f, "{target}: {problem} ({detail})"),
            TransportError::Rejected { target, reason } => {
                write!(f, "{target} rejected the job: {reason}")
            }
            TransportError::StatusUnavailable { target, detail } => {
                write!(f, "no status from {target}: {detail}")
            }
            TransportError::BadStatus { target, error } => write!(f, "{target}: {error}"),
            TransportError::Io { target, detail } => write!(f, "{target}: {detail}"),
            TransportError::NotStarted { target } => {
                write!(
                    f,
                    "{target}: no job in progress (begin was not called or failed)"
                )
            }
        }
    }
}

impl std::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    #[test]
    fn networks_parse_and_contain() {
        let lan = Network::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains("192.168.1.77".parse().unwrap()));
        assert!(!lan.contains("192.168.2.1".parse().unwrap()));
        assert!(lan.contains("::ffff:192.168.1.5".parse().unwrap()));
        assert!(!lan.contains("fd00::1".parse().unwrap()));
        let ula = Network::parse("fd00::/8").unwrap();
        assert!(ula.contains("fd12::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let host = Network::parse("10.0.0.5").unwrap();
        assert!(host.contains("10.0.0.5".parse().unwrap()));
        assert!(!host.contains("10.0.0.6".parse().unwrap()));
        for bad in ["10.0.0.0/33", "printer.local/24", "::/129", ""] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reach_limits_usb_dir_and_tcp() {
        let root = std::env::temp_dir().join(format!("labelhub-reach-{}", std::process::id()));
        std::fs::create_dir_all(root.join("out")).unwrap();
        let file = root.join("file");
        std::fs::write(&file, b"x").unwrap();
        let reach = Reach {
            dir_roots: vec![root.clone()],
            networks: vec![
                Network::parse("127.0.0.0/8").unwrap(),
                Network::parse("::1").unwrap(),
            ],
        };
        let check = |uri: &str| {
            let ep = parse_uri(uri).unwrap();
            check_reach(uri, &ep, &reach)
        };
        assert!(check("usb:///dev/null").is_ok(), "a character device");
        assert!(check("usb:///dev/usb/lp-not-plugged-in").is_ok());
        for uri in [
            format!("usb://{}", file.display()),
            "usb:///proc/self/mem".into(),
            "usb:///sys/kernel/notes".into(),
            "usb:///dev".into(),
            "usb:///dev/../etc/passwd".into(),
            "usb:///tmp/labelhub-no-such-device".into(),
            "dir:///etc".into(),
            format!("dir://{}/../x", root.display()),
            "tcp://10.1.2.3:9100".into(),
            "tcp://[2001:db8::1]:9100".into(),
        ] {
            let err = check(&uri).unwrap_err();
            assert_eq!(err.code(), "invalid_printer_uri", "{uri}");
        }
        assert!(check(&format!("dir://{}/out", root.display())).is_ok());
        assert!(check(&format!("dir://{}/new/deeper", root.display())).is_ok());
        assert!(check("tcp://127.0.0.1:9100").is_ok());
        assert!(check("tcp://localhost:9100").is_ok());
        let open = Reach::default();
        let far = parse_uri("tcp://10.1.2.3").unwrap();
        assert!(check_reach("tcp://10.1.2.3", &far, &open).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_community_is_redacted() {
        assert_eq!(
            redact_uri("tcp://h:9100?community=s3cret&snmp_port=162"),
            "tcp://h:9100?community=***&snmp_port=162"
        );
        let err = parse_uri("tcp://h:9100?community=s3cret&bogus=1").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    use super::*;
    use crate::brother::model;

    #[test]
    fn parses_tcp_uris() {
        assert_eq!(
            parse_uri("tcp://192.168.1.20:9100").unwrap(),
            Endpoint::Tcp {
                host: "192.168.1.20".into(),
                port: 9100,
                snmp_port: Some(161),
                community: "public".into()
            }
        );
        assert_eq!(
            parse_uri("tcp://printer.lan").unwrap(),
            Endpoint::Tcp {
                host: "printer.lan".into(),
                port: 9100,
                snmp_port: Some(161),
                community: "public".into()
            }
        );
        let ep = parse_uri("tcp://[::1]:9101?snmp_port=1161&community=labels").unwrap();
        assert_eq!(
            ep,
            Endpoint::Tcp {
                host: "::1".into(),
                port: 9101,
                snmp_port: Some(1161),
                community: "labels".into()
            }
        );
        // Display drops the community.
        assert_eq!(ep.to_string(), "tcp://[::1]:9101?snmp_port=1161");
        let ep = parse_uri("tcp://127.0.0.1:9100?snmp_port=off").unwrap();
        assert!(matches!(
            ep,
            Endpoint::Tcp {
                snmp_port: None,
                ..
            }
        ));
        assert_eq!(parse_uri(&ep.to_string()).unwrap(), ep);
    }

    #[test]
    fn parses_usb_dir_and_emulator_uris() {
        assert_eq!(
            parse_uri("usb:///dev/usb/lp0").unwrap(),
            Endpoint::Usb {
                path: "/dev/usb/lp0".into()
            }
        );
        assert_eq!(
            parse_uri("dir:///srv/labels?media=12").unwrap(),
            Endpoint::Dir {
                path: "/srv/labels".into(),
                media: Some("12".into())
            }
        );
        assert_eq!(
            parse_uri("emulator:?media=62red&speed=real").unwrap(),
            Endpoint::Emulator {
                media: Some("62red".into()),
                speed: Speed::Real
            }
        );
        assert_eq!(
            parse_uri("emulator:").unwrap(),
            Endpoint::Emulator {
                media: None,
                speed: Speed::Instant
            }
        );
        assert_eq!(
            parse_uri("emulator://?speed=45").unwrap(),
            Endpoint::Emulator {
                media: None,
                speed: Speed::MmPerS(45)
            }
        );
        for uri in [
            "usb:///dev/usb/lp0",
            "dir:///srv/labels?media=12",
            "emulator:?speed=real&media=29x90",
        ] {
            let ep = parse_uri(uri).unwrap();
            assert_eq!(parse_uri(&ep.to_string()).unwrap(), ep, "{uri}");
        }
    }

    #[test]
    fn rejects_bad_uris_with_reasons() {
        for (uri, needle) in [
            ("", "expected"),
            ("ftp://host", "unknown scheme"),
            ("tcp://", "host is empty"),
            ("tcp://host:0", "not a port"),
            ("tcp://host:99999", "not a port"),
            ("tcp://::1:9100", "brackets"),
            ("tcp://host?colour=red", "unknown parameter `colour`"),
            ("tcp://host?snmp_port=x", "snmp_port"),
            ("tcp://host?community=", "empty value"),
            ("tcp://host?community=a&community=b", "twice"),
            ("tcp:host", "tcp://host:port"),
            ("usb://dev/usb/lp0", "absolute"),
            ("usb:/dev/usb/lp0", "three slashes"),
            ("usb:///dev/usb/lp0?x=1", "unknown parameter"),
            ("dir://", "three slashes"),
            ("emulator:?speed=fast", "speed"),
            ("emulator:foo", "expected emulator"),
        ] {
            let err = parse_uri(uri).unwrap_err();
            assert_eq!(err.code(), "invalid_printer_uri", "{uri}");
            assert!(err.to_string().contains(needle), "{uri}: {err}");
        }
    }

    #[test]
    fn job_timeout_scales_with_size_and_model() {
        let p750w = model::by_name("PT-P750W").unwrap();
        let ql = model::by_name("QL-820NWB").unwrap();
        assert_eq!(job_timeout(p750w, 0), JOB_TIMEOUT_BASE);
        let small = job_timeout(p750w, 10_000);
        let big = job_timeout(p750w, 1_000_000);
        assert!(small < big);
        // A 100 mm P750W label (709 lines of 19 bytes) prints in ~3.3 s at
        // 30 mm/s; its allowance beyond the base must exceed that.
        let label = 709 * 19;
        let extra = job_timeout(p750w, label) - JOB_TIMEOUT_BASE;
        assert!(extra > Duration::from_secs_f64(100.0 / 30.0), "{extra:?}");
        // A faster printer gets less time per byte.
        assert!(job_timeout(ql, 1_000_000) < big);
    }

    #[test]
    fn io_errors_map_to_codes() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            TransportError::from_io("t", "connect", &refused).code(),
            "printer_offline"
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            TransportError::from_io("t", "write", &reset).code(),
            "connection_dropped"
        );
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(
            TransportError::from_io("t", "write", &pipe).code(),
            "connection_dropped"
        );
        let p = TransportError::Printer {
            target: "t".into(),
            problem: Problem::CoverOpen,
            detail: "refused".into(),
        };
        assert_eq!(p.code(), "cover_open");
        assert_eq!(p.problem(), Some(Problem::CoverOpen));
    }

    #[test]
    fn printer_keys_become_safe_directory_names() {
        assert_eq!(safe_file_name("office-p750w"), "office-p750w");
        assert_eq!(safe_file_name("../../etc"), "_.._etc");
        assert_eq!(safe_file_name(".."), "printer");
        assert_eq!(safe_file_name("a b/c"), "a_b_c");
    }
}
