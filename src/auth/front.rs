//! The front door: a small accept loop in front of tiny_http that takes the
//! hostile part of HTTP off the handler threads.
//!
//! tiny_http 0.12 sets no socket timeouts, reads header lines of any length
//! and any number, and hands a request to a handler while its body is still
//! arriving. So the hub does not expose tiny_http: it listens on a loopback
//! port, and this front listens on the public address. For each client
//! connection the front
//!
//! 1. takes a slot for the client address ([`ClientSlots`]): past the
//!    per-address cap the answer is 429, past the overall cap 503;
//! 2. reads the request head within `header_timeout` (408), at most
//!    `max_header_bytes` and `max_headers` (431), and checks its syntax
//!    strictly (400, 501 for transfer codings other than `chunked`, 505);
//! 3. reads the whole body — `Content-Length` or chunked — at most
//!    `max_body_bytes` (413), each read within `body_timeout` (408), and
//!    within a memory budget shared by all connections (503);
//! 4. only then connects to tiny_http, sends the request (normalised:
//!    `Content-Length`, `Connection: close`), reads the whole response, and
//!    writes it to the client within `body_timeout`.
//!
//! **Invariants:**
//! - A handler thread never waits on a client: it gets complete requests and
//!   writes its answer to the front at loopback speed.
//! - The backend's view of the peer (`127.0.0.1:port` of the front's
//!   outgoing socket) maps to the real client address in [`PeerMap`] for
//!   exactly as long as that request is in flight; a request that did not
//!   come through the front has no entry and must be refused.
//! - Every connection ends: each wait has a deadline, and each connection
//!   thread holds its [`Slot`] (released on drop).
//! - Error answers are made by the `render` function given at start (the api
//!   layer's one mapping), never here.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::rate::{ClientSlots, Refused, Slot};

/// Limits of the front (from `AuthConfig` and the hub's body limit).
#[derive(Clone, Debug)]
pub struct FrontConfig {
    pub max_conns: usize,
    pub max_conns_per_client: usize,
    /// Long-polls (`?wait=` > 0) per client address at once.
    pub max_waits_per_client: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// Bytes of request bodies buffered at once over all connections.
    pub body_budget_bytes: usize,
    /// How long the backend may take to answer (long-polls included).
    pub response_timeout: Duration,
}

impl Default for FrontConfig {
    fn default() -> FrontConfig {
        FrontConfig {
            max_conns: 512,
            max_conns_per_client: 32,
            max_waits_per_client: 8,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 32 * 1024 * 1024,
            body_budget_bytes: 512 * 1024 * 1024,
            response_timeout: Duration::from_secs(600),
        }
    }
}

/// Why the front answered a request itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrontError {
    /// The client address holds `max_conns_per_client` connections. 429.
    TooManyConnections,
    /// The client address holds `max_waits_per_client` long-polls. 429.
    TooManyWaits,
    /// `max_conns` connections are open, or the body budget is spent. 503.
    Busy,
    /// The request head did not arrive within `header_timeout`. 408.
    HeaderTimeout,
    /// The body stalled for `body_timeout`. 408.
    BodyTimeout,
    /// The head is longer than `max_header_bytes`. 431.
    HeadTooLarge { limit: usize },
    /// More than `max_headers` headers. 431.
    TooManyHeaders { limit: usize },
    /// The head is not valid HTTP/1.x. 400.
    BadRequest { message: String },
    /// The body is larger than `max_body_bytes`. 413.
    BodyTooLarge { limit: usize },
    /// A transfer coding other than `chunked`. 501.
    UnsupportedTransferEncoding,
    /// Not HTTP/1.0 or HTTP/1.1. 505.
    UnsupportedVersion,
    /// tiny_http could not be reached or did not answer. 503.
    BackendUnavailable,
}

impl FrontError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            FrontError::TooManyConnections => "too_many_connections",
            FrontError::TooManyWaits => "too_many_waits",
            FrontError::Busy => "server_busy",
            FrontError::HeaderTimeout => "request_header_timeout",
            FrontError::BodyTimeout => "request_body_timeout",
            FrontError::HeadTooLarge { .. } => "request_header_too_large",
            FrontError::TooManyHeaders { .. } => "too_many_headers",
            FrontError::BadRequest { .. } => "bad_request",
            FrontError::BodyTooLarge { .. } => "body_too_large",
            FrontError::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            FrontError::UnsupportedVersion => "http_version_not_supported",
            FrontError::BackendUnavailable => "backend_unavailable",
        }
    }

    /// Seconds to put in `Retry-After`, for the answers that have one.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            FrontError::TooManyConnections
            | FrontError::TooManyWaits
            | FrontError::Busy
            | FrontError::BackendUnavailable => Some(1),
            _ => None,
        }
    }

    fn bad(message: impl Into<String>) -> FrontError {
        FrontError::BadRequest {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FrontError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrontError::TooManyConnections => {
                f.write_str("too many open connections from this address; retry shortly")
            }
            FrontError::TooManyWaits => {
                f.write_str("too many long-polls from this address; retry shortly")
            }
            FrontError::Busy => f.write_str("the server is busy; retry shortly"),
            FrontError::HeaderTimeout => f.write_str("the request head did not arrive in time"),
            FrontError::BodyTimeout => f.write_str("the request body stalled"),
            FrontError::HeadTooLarge { limit } => {
                write!(f, "the request line and headers exceed {limit} bytes")
            }
            FrontError::TooManyHeaders { limit } => write!(f, "more than {limit} request headers"),
            FrontError::BadRequest { message } => write!(f, "malformed request: {message}"),
            FrontError::BodyTooLarge { limit } => {
                write!(f, "the request body is larger than {limit} bytes")
            }
            FrontError::UnsupportedTransferEncoding => {
                f.write_str("only the chunked transfer coding is supported")
            }
            FrontError::UnsupportedVersion => {
                f.write_str("only HTTP/1.0 and HTTP/1.1 are supported")
            }
            FrontError::BackendUnavailable => f.write_str("the server could not take the request"),
        }
    }
}

/// Turns a [`FrontError`] into `(status, content type, body)`: supplied by
/// the api layer so that all error bodies come from one mapping.
pub type Render = Arc<dyn Fn(&FrontError) -> (u16, &'static str, Vec<u8>) + Send + Sync>;

/// Maps the backend's view of a peer to the real client address.
#[derive(Default)]
pub struct PeerMap {
    map: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

impl PeerMap {
    /// The client behind a backend connection from `backend_peer`, or `None`
    /// if that connection did not come through the front.
    pub fn client_of(&self, backend_peer: SocketAddr) -> Option<SocketAddr> {
        self.lock().get(&backend_peer).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests in flight (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct PeerEntry<'a> {
    peers: &'a PeerMap,
    key: SocketAddr,
}

impl Drop for PeerEntry<'_> {
    fn drop(&mut self) {
        self.peers.lock().remove(&self.key);
    }
}

/// Bytes of request bodies held in memory, over all connections.
struct Budget {
    used: AtomicUsize,
    limit: usize,
}

struct Reservation<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

struct Shared {
    cfg: FrontConfig,
    backend: SocketAddr,
    peers: Arc<PeerMap>,
    slots: Arc<ClientSlots>,
    waits: Arc<ClientSlots>,
    budget: Budget,
    render: Render,
    stop: AtomicBool,
}

/// The running front. Dropping it stops accepting (open connections finish
/// within their deadlines).
pub struct Front {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Front {
    /// Starts accepting on `listener`, forwarding complete requests to the
    /// tiny_http server at `backend`.
    pub fn start(
        listener: TcpListener,
        backend: SocketAddr,
        cfg: FrontConfig,
        render: Render,
    ) -> io::Result<Front> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            slots: ClientSlots::new(cfg.max_conns_per_client, cfg.max_conns),
            waits: ClientSlots::new(cfg.max_waits_per_client, cfg.max_conns),
            budget: Budget {
                used: AtomicUsize::new(0),
                limit: cfg.body_budget_bytes,
            },
            cfg,
            backend,
            peers: Arc::new(PeerMap::default()),
            render,
            stop: AtomicBool::new(false),
        });
        let inner = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("front-accept".into())
            .spawn(move || accept_loop(&listener, &inner))?;
        Ok(Front {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The public address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The peer map the backend uses to find real client addresses.
    pub fn peers(&self) -> Arc<PeerMap> {
        Arc::clone(&self.shared.peers)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.slots.held()
    }

    /// A function that counts the connections open now (for `/metrics`).
    pub fn open_connections_probe(&self) -> Box<dyn Fn() -> usize + Send + Sync> {
        let shared = Arc::clone(&self.shared);
        Box::new(move || shared.slots.held())
    }

    /// Stops accepting and waits for the accept thread.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], self.addr.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.addr.port()))
            }
            _ => self.addr,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut backoff = Duration::from_millis(1);
    while !shared.stop.load(Ordering::SeqCst) {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => {
                backoff = Duration::from_millis(1);
                conn
            }
            Err(e) => {
                // Out of file descriptors or similar: back off instead of
                // spinning, and keep serving the connections we have.
                log::warn!("accept failed: {e}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match shared.slots.acquire(peer.ip()) {
            Ok(slot) => {
                let conn = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("front-conn".into())
                    .stack_size(256 * 1024)
                    .spawn(move || serve(stream, peer, &conn, slot));
                if let Err(e) = spawned {
                    log::warn!("could not start a connection thread: {e}");
                }
            }
            Err(why) => {
                let err = match why {
                    Refused::Client => FrontError::TooManyConnections,
                    Refused::Full => FrontError::Busy,
                };
                refuse_now(stream, shared, &err);
            }
        }
    }
}

/// Answers a connection that gets no thread: what the client already sent
/// is read without waiting, so closing does not reset the connection before
/// the answer is read, and every write is bounded by a short timeout.
fn refuse_now(mut stream: TcpStream, shared: &Shared, err: &FrontError) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 4096];
        for _ in 0..16 {
            match stream.read(&mut scratch) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        let _ = stream.set_nonblocking(false);
    }
    let _ = stream.write_all(&error_response(shared, err));
    let _ = stream.shutdown(Shutdown::Write);
}

fn error_response(shared: &Shared, err: &FrontError) -> Vec<u8> {
    let (status, content_type, body) = (shared.render)(err);
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    if let Some(s) = err.retry_after_s() {
        head.push_str(&format!("Retry-After: {s}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// One client connection: one request, one answer, then close.
fn serve(mut client: TcpStream, peer: SocketAddr, shared: &Shared, _slot: Slot) {
    let _ = client.set_nodelay(true);
    let _ = client.set_write_timeout(Some(shared.cfg.body_timeout));
    match forward(&mut client, peer, shared) {
        Ok(()) => {}
        Err(Failure::Answer(err)) => {
            let _ = client.write_all(&error_response(shared, &err));
            linger_close(&mut client, shared);
        }
        Err(Failure::Silent) => {}
    }
}

/// Why a request ended early.
enum Failure {
    /// Tell the client.
    Answer(FrontError),
    /// The client is gone or stopped reading: nothing to tell.
    Silent,
}

impl From<FrontError> for Failure {
    fn from(e: FrontError) -> Failure {
        Failure::Answer(e)
    }
}

fn forward(client: &mut TcpStream, peer: SocketAddr, shared: &Shared) -> Result<(), Failure> {
    let cfg = &shared.cfg;
    let (head_bytes, mut rest) = read_head(client, cfg)?;
    let head = parse_head(&head_bytes, cfg)?;
    let _wait_slot = if head.is_long_poll() {
        Some(
            shared
                .waits
                .acquire(peer.ip())
                .map_err(|_| FrontError::TooManyWaits)?,
        )
    } else {
        None
    };
    if head.expect_continue {
        if let Framing::Length(n) = head.framing {
            if n > cfg.max_body_bytes {
                return Err(FrontError::BodyTooLarge {
                    limit: cfg.max_body_bytes,
                }
                .into());
            }
        }
        client
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Failure::Silent)?;
    }
    let (body, _reservation) = read_body(client, &mut rest, &head.framing, shared)?;

    let mut backend = TcpStream::connect_timeout(&shared.backend, Duration::from_secs(5))
        .map_err(|_| FrontError::BackendUnavailable)?;
    let _ = backend.set_nodelay(true);
    let _ = backend.set_read_timeout(Some(cfg.response_timeout));
    let _ = backend.set_write_timeout(Some(Duration::from_secs(30)));
    let local = backend
        .local_addr()
        .map_err(|_| FrontError::BackendUnavailable)?;
    shared.peers.lock().insert(local, peer);
    let _entry = PeerEntry {
        peers: &shared.peers,
        key: local,
    };

    let mut request = head.forwarded(body.len());
    request.extend_from_slice(&body);
    drop(body);
    backend
        .write_all(&request)
        .map_err(|_| FrontError::BackendUnavailable)?;
    drop(request);

    // Read the whole answer before writing any of it, so a slow reader
    // never holds a handler thread. Very large answers are streamed after
    // the first 16 MiB.
    const BUFFER_RESPONSE: usize = 16 * 1024 * 1024;
    let mut response = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut complete = false;
    while response.len() < BUFFER_RESPONSE {
        match backend.read(&mut chunk) {
            Ok(0) => {
                complete = true;
                break;
            }
            Ok(n) => {
                response.extend_from_slice(&chunk[..n]);
                // console (issue 11): a Server-Sent Events stream never
                // ends by itself; pass it on as it comes once its head is in.
                if is_event_stream(&response) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if response.is_empty() {
        return Err(FrontError::BackendUnavailable.into());
    }
    let response = with_connection_close(response);
    client.write_all(&response).map_err(|_| Failure::Silent)?;
    if !complete {
        loop {
            match backend.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => client.write_all(&chunk[..n]).map_err(|_| Failure::Silent)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Failure::Silent),
            }
        }
    }
    let _ = client.flush();
    linger_close(client, shared);
    Ok(())
}

/// Whether a (partial) response's complete head says
/// `Content-Type: text/event-stream`.
fn is_event_stream(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    String::from_utf8_lossy(&response[..end])
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("content-type")
                && value.trim().starts_with("text/event-stream")
        })
}

/// Marks a response as the last on its connection: the front serves one
/// request per client connection, and a client that believed otherwise
/// would reuse a closed connection. Any `Connection` / `Keep-Alive` header
/// of the backend is replaced by `Connection: close`. A response whose head
/// is not within the bytes read so far is passed on as it is.
fn with_connection_close(response: Vec<u8>) -> Vec<u8> {
    let Some(end) = find(&response, b"\r\n\r\n") else {
        return response;
    };
    let Ok(head) = std::str::from_utf8(&response[..end]) else {
        return response;
    };
    let mut out = Vec::with_capacity(response.len() + 19);
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0
            && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive"))
        {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&response[end + 4..]);
    out
}

/// Half-closes and reads what the client still sends (briefly), so the close
/// does not reset the connection before the client has read the answer.
fn linger_close(client: &mut TcpStream, shared: &Shared) {
    let _ = client.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left = 2 * shared.cfg.max_body_bytes.max(1 << 20);
    let mut scratch = [0u8; 16 * 1024];
    while left > 0 {
        let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if wait.is_zero() || client.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match client.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Reads until the blank line that ends the head. Returns the head (without
/// the blank line) and the bytes read past it.
fn read_head(client: &mut TcpStream, cfg: &FrontConfig) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let deadline = Instant::now() + cfg.header_timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Ok((buf, rest));
        }
        if buf.len() > cfg.max_header_bytes {
            return Err(FrontError::HeadTooLarge {
                limit: cfg.max_header_bytes,
            }
            .into());
        }
        let wait = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(FrontError::HeaderTimeout)?;
        client
            .set_read_timeout(Some(wait))
            .map_err(|_| Failure::Silent)?;
        match client.read(&mut chunk) {
            // Closed before a complete head: nobody to answer (an empty
            // connection is a health probe or a port scan).
            Ok(0) => return Err(Failure::Silent),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => return Err(FrontError::HeaderTimeout.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Failure::Silent),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How the request body is framed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
}

/// A checked request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Headers to forward (hop-by-hop and framing headers removed).
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    pub expect_continue: bool,
}

impl Head {
    /// Whether the request asks to wait (`?wait=` with a non-zero value):
    /// such requests count against the per-address long-poll cap.
    pub fn is_long_poll(&self) -> bool {
        // console (issue 11): a Server-Sent Events stream is a long wait too.
        if self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("accept") && value.contains("text/event-stream")
        }) {
            return true;
        }
        let Some((_, query)) = self.target.split_once('?') else {
            return false;
        };
        query.split('&').any(|pair| match pair.split_once('=') {
            Some(("wait", v)) => v.parse::<f64>().ok().is_none_or(|s| s != 0.0),
            _ => false,
        })
    }

    /// The head sent to the backend: same request line and end-to-end
    /// headers, a `Content-Length` for the buffered body, and
    /// `Connection: close`.
    fn forwarded(&self, body_len: usize) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
        ));
        out.into_bytes()
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Headers the front consumes or replaces instead of forwarding.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// Parses and checks a request head (without its blank line).
pub fn parse_head(bytes: &[u8], cfg: &FrontConfig) -> Result<Head, FrontError> {
    if bytes.len() > cfg.max_header_bytes {
        return Err(FrontError::HeadTooLarge {
            limit: cfg.max_header_bytes,
        });
    }
    if let Some(b) = bytes
        .iter()
        .find(|&&b| !(b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        return Err(FrontError::bad(format!(
            "byte 0x{b:02x} in the request head (only visible ASCII is allowed)"
        )));
    }
    // All bytes are ASCII, so this cannot fail.
    let text = std::str::from_utf8(bytes).map_err(|_| FrontError::bad("not ASCII"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    if text.contains('\n')
        && text
            .split("\r\n")
            .any(|l| l.contains('\n') || l.contains('\r'))
    {
        return Err(FrontError::bad("lines must end with CRLF"));
    }
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FrontError::bad(
            "the request line must be METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || method.len() > 32 || !method.bytes().all(is_tchar) {
        return Err(FrontError::bad("bad method"));
    }
    let origin_form = target.starts_with('/') && !target.starts_with("//");
    if !(origin_form || (target == "*" && method == "OPTIONS")) {
        return Err(FrontError::bad("the target must be a path starting with /"));
    }
    if target.contains('\t') {
        return Err(FrontError::bad("bad target"));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => return Err(FrontError::UnsupportedVersion),
        _ => return Err(FrontError::bad("bad protocol version")),
    }

    let mut headers = Vec::new();
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut count = 0usize;
    for line in lines {
        count += 1;
        if count > cfg.max_headers {
            return Err(FrontError::TooManyHeaders {
                limit: cfg.max_headers,
            });
        }
        if line.starts_with([' ', '\t']) {
            return Err(FrontError::bad("folded header lines are not allowed"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(FrontError::bad("a header line has no colon"));
        };
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(FrontError::bad("bad header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "content-length" => {
                let n = parse_length(value)?;
                if content_length.is_some_and(|old| old != n) {
                    return Err(FrontError::bad("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                if chunked || !value.eq_ignore_ascii_case("chunked") {
                    return Err(FrontError::UnsupportedTransferEncoding);
                }
                chunked = true;
            }
            "expect" => {
                if value.eq_ignore_ascii_case("100-continue") {
                    expect_continue = true;
                } else {
                    return Err(FrontError::bad("unsupported Expect value"));
                }
            }
            _ => {}
        }
        if !HOP_BY_HOP.contains(&lower.as_str()) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let framing = match (content_length, chunked) {
        (Some(_), true) => {
            return Err(FrontError::bad(
                "Content-Length and Transfer-Encoding together",
            ))
        }
        (_, true) => Framing::Chunked,
        (n, false) => Framing::Length(n.unwrap_or(0)),
    };
    if let Framing::Length(n) = framing {
        if n > cfg.max_body_bytes {
            return Err(FrontError::BodyTooLarge {
                limit: cfg.max_body_bytes,
            });
        }
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        framing,
        expect_continue,
    })
}

fn parse_length(value: &str) -> Result<usize, FrontError> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FrontError::bad("bad Content-Length"));
    }
    value
        .parse::<usize>()
        .map_err(|_| FrontError::bad("bad Content-Length"))
}

/// Reads the whole body into memory (within the budget).
fn read_body<'a>(
    client: &mut TcpStream,
    rest: &mut Vec<u8>,
    framing: &Framing,
    shared: &'a Shared,
) -> Result<(Vec<u8>, Option<Reservation<'a>>), Failure> {
    let cfg = &shared.cfg;
    let mut reader = BodyReader {
        client,
        pending: std::mem::take(rest),
        pos: 0,
        idle: cfg.body_timeout,
    };
    match framing {
        Framing::Length(0) => Ok((Vec::new(), None)),
        Framing::Length(n) => {
            let reservation = shared.budget.reserve(*n).ok_or(FrontError::Busy)?;
            let mut body = vec![0u8; *n];
            reader.read_exact(&mut body)?;
            Ok((body, Some(reservation)))
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            let mut reservations = Vec::new();
            loop {
                let line = reader.read_line(1024)?;
                let size_hex = line.split(';').next().unwrap_or("").trim();
                if size_hex.is_empty()
                    || size_hex.len() > 8
                    || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(FrontError::bad("bad chunk size").into());
                }
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| FrontError::bad("bad chunk size"))?;
                if size == 0 {
                    break;
                }
                if body.len() + size > cfg.max_body_bytes {
                    return Err(FrontError::BodyTooLarge {
                        limit: cfg.max_body_bytes,
                    }
                    .into());
                }
                reservations.push(shared.budget.reserve(size).ok_or(FrontError::Busy)?);
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                if !reader.read_line(2)?.is_empty() {
                    return Err(FrontError::bad("chunk data longer than its size").into());
                }
            }
            // Trailers: read and drop, within the head limits.
            let mut trailers = 0;
            loop {
                let line = reader.read_line(cfg.max_header_bytes)?;
                if line.is_empty() {
                    break;
                }
                trailers += 1;
                if trailers > cfg.max_headers {
                    return Err(FrontError::TooManyHeaders {
                        limit: cfg.max_headers,
                    }
                    .into());
                }
            }
            let total = body.len();
            drop(reservations);
            let reservation = shared.budget.reserve(total).ok_or(FrontError::Busy)?;
            Ok((body, Some(reservation)))
        }
    }
}

/// Reads a body from the bytes already received, then from the socket,
/// each socket read bounded by the idle timeout.
struct BodyReader<'a> {
    client: &'a mut TcpStream,
    pending: Vec<u8>,
    pos: usize,
    idle: Duration,
}

impl BodyReader<'_> {
    fn fill(&mut self) -> Result<(), Failure> {
        if self.pos < self.pending.len() {
            return Ok(());
        }
        self.pending.clear();
        self.pending.resize(64 * 1024, 0);
        self.pos = 0;
        self.client
            .set_read_timeout(Some(self.idle))
            .map_err(|_| Failure::Silent)?;
        loop {
            match self.client.read(&mut self.pending) {
                Ok(0) => {
                    self.pending.clear();
                    return Err(Failure::Silent);
                }
                Ok(n) => {
                    self.pending.truncate(n);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    self.pending.clear();
                    return Err(FrontError::BodyTimeout.into());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.pending.clear();
                    return Err(Failure::Silent);
                }
            }
        }
    }

    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Failure> {
        let mut done = 0;
        while done < out.len() {
            self.fill()?;
            let n = (self.pending.len() - self.pos).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// Reads a CRLF-terminated line of at most `max` bytes (without CRLF).
    fn read_line(&mut self, max: usize) -> Result<String, Failure> {
        let mut line = Vec::new();
        loop {
            self.fill()?;
            let b = self.pending[self.pos];
            self.pos += 1;
            if b == b'\n' {
                if line.last() != Some(&b'\r') {
                    return Err(FrontError::bad("chunk lines must end with CRLF").into());
                }
                line.pop();
                return String::from_utf8(line)
                    .map_err(|_| FrontError::bad("chunk line is not ASCII").into());
            }
            line.push(b);
            if line.len() > max + 1 {
                return Err(FrontError::bad("chunk line too long").into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn cfg() -> FrontConfig {
        FrontConfig {
            max_header_bytes: 1024,
            max_headers: 8,
            max_body_bytes: 1000,
            ..FrontConfig::default()
        }
    }

    fn parse(s: &str) -> Result<Head, FrontError> {
        parse_head(s.as_bytes(), &cfg())
    }

    #[test]
    fn a_plain_request_head_is_normalised() {
        let head = parse(
            "POST /api/x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-Label-Hub-Key: k",
        )
        .unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(
            head.headers,
            vec![
                ("Host".to_string(), "h".to_string()),
                ("X-Label-Hub-Key".to_string(), "k".to_string())
            ]
        );
        let out = String::from_utf8(head.forwarded(5)).unwrap();
        assert_eq!(
            out,
            "POST /api/x?y=1 HTTP/1.1\r\nHost: h\r\nX-Label-Hub-Key: k\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn responses_are_marked_as_the_last_on_their_connection() {
        let out = with_connection_close(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let partial = b"HTTP/1.1 200 OK\r\nContent-Le".to_vec();
        assert_eq!(with_connection_close(partial.clone()), partial);
    }

    #[test]
    fn long_polls_are_recognised_by_their_wait_parameter() {
        let lp = |t: &str| parse(&format!("GET {t} HTTP/1.1")).unwrap().is_long_poll();
        assert!(lp("/api/events?wait=30"));
        assert!(lp("/api/jobs/x?since=3&wait=0.5"));
        assert!(
            lp("/api/jobs/x?wait=abc"),
            "unparsable counts, the API refuses it"
        );
        assert!(!lp("/api/events?wait=0"));
        assert!(!lp("/api/events?waiting=1"));
        assert!(!lp("/api/events"));
    }

    #[test]
    fn hostile_heads_are_refused_with_the_right_error() {
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(2000));
        let many = format!("GET / HTTP/1.1{}", "\r\nX: 1".repeat(9));
        let cases: Vec<(String, &str)> = vec![
            ("GET / HTTP/2.0".into(), "http_version_not_supported"),
            ("GET / FTP/1.0".into(), "bad_request"),
            ("GET /  HTTP/1.1".into(), "bad_request"),
            ("GET http://evil/ HTTP/1.1".into(), "bad_request"),
            ("GET //x HTTP/1.1".into(), "bad_request"),
            ("G(T / HTTP/1.1".into(), "bad_request"),
            ("GET /\u{e9} HTTP/1.1".into(), "bad_request"),
            ("GET / HTTP/1.1\r\nX : y".into(), "bad_request"),
            ("GET / HTTP/1.1\r\nX: y\r\n z".into(), "bad_request"),
            ("GET / HTTP/1.1\r\nNoColon".into(), "bad_request"),
            ("GET / HTTP/1.1\nX: y".into(), "bad_request"),
            ("GET / HTTP/1.1\r\nX: a\0b".into(), "bad_request"),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2".into(),
                "bad_request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: -1".into(),
                "bad_request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999".into(),
                "bad_request",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1001".into(),
                "body_too_large",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip".into(),
                "unsupported_transfer_encoding",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3".into(),
                "bad_request",
            ),
            ("POST / HTTP/1.1\r\nExpect: 200-ok".into(), "bad_request"),
            (long, "request_header_too_large"),
            (many, "too_many_headers"),
        ];
        for (head, code) in cases {
            let err = parse(&head).unwrap_err();
            assert_eq!(err.code(), code, "{head:?}");
        }
        assert!(parse("OPTIONS * HTTP/1.1").is_ok());
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3")
                .unwrap()
                .framing,
            Framing::Length(3)
        );
    }

    type Seen = mpsc::Receiver<(Option<SocketAddr>, Vec<u8>)>;

    /// A fake backend: answers each connection with the request it got, and
    /// reports what the peer map said about the connection while serving it.
    fn echo_backend(peers: Arc<std::sync::OnceLock<Arc<PeerMap>>>) -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let tx = tx.clone();
                let peers = Arc::clone(&peers);
                std::thread::spawn(move || {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Read head + Content-Length body.
                    loop {
                        let n = s.read(&mut buf).unwrap();
                        req.extend_from_slice(&buf[..n]);
                        if let Some(end) = find(&req, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&req[..end]).to_string();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("Content-Length: "))
                                .unwrap()
                                .parse()
                                .unwrap();
                            if req.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let client = peers.get().unwrap().client_of(s.peer_addr().unwrap());
                    tx.send((client, req.clone())).unwrap();
                    let body = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        req.len()
                    );
                    s.write_all(body.as_bytes()).unwrap();
                    s.write_all(&req).unwrap();
                });
            }
        });
        (addr, rx)
    }

    fn render() -> Render {
        Arc::new(|e: &FrontError| {
            let status = match e {
                FrontError::TooManyConnections => 429,
                FrontError::HeaderTimeout | FrontError::BodyTimeout => 408,
                FrontError::BodyTooLarge { .. } => 413,
                _ => 400,
            };
            (status, "text/plain", e.code().as_bytes().to_vec())
        })
    }

    fn start(cfg: FrontConfig) -> (Front, Seen) {
        let cell = Arc::new(std::sync::OnceLock::new());
        let (backend, rx) = echo_backend(Arc::clone(&cell));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let front = Front::start(listener, backend, cfg, render()).unwrap();
        cell.set(front.peers()).ok().unwrap();
        (front, rx)
    }

    fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn chunked_bodies_are_reassembled_and_forwarded_with_a_length() {
        let (front, rx) = start(cfg());
        let out = exchange(
            front.local_addr(),
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        let (_, req) = rx.recv().unwrap();
        let req = String::from_utf8(req).unwrap();
        assert!(
            req.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\nabcde"),
            "{req}"
        );
        assert!(!req.contains("chunked"));
    }

    #[test]
    fn the_backend_sees_the_client_through_the_peer_map() {
        let (front, rx) = start(cfg());
        let peers = front.peers();
        let mut s = TcpStream::connect(front.local_addr()).unwrap();
        let me = s.local_addr().unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let (seen, _) = rx.recv().unwrap();
        assert_eq!(
            seen,
            Some(me),
            "the entry exists while the request is in flight"
        );
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
            "{out}"
        );
        // The entry never outlives the request: once the client has the
        // answer, the front drops it right after (poll with a deadline).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !peers.is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(peers.is_empty());
    }

    #[test]
    fn slow_heads_and_bodies_time_out() {
        let (front, _rx) = start(FrontConfig {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            ..cfg()
        });
        let t0 = Instant::now();
        let out = exchange(front.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(out.ends_with("request_header_timeout"));
        let out = exchange(
            front.local_addr(),
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        );
        assert!(out.ends_with("request_body_timeout"), "{out}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn oversized_bodies_get_413_before_being_read() {
        let (front, rx) = start(FrontConfig {
            body_timeout: Duration::from_millis(300),
            ..cfg()
        });
        let mut req = b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'x', 5000));
        let out = exchange(front.local_addr(), &req);
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        let out = exchange(
            front.local_addr(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n",
        );
        assert!(out.ends_with("request_body_timeout"), "{out}");
        let mut big = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1001));
        let out = exchange(front.local_addr(), &big);
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        assert!(rx.try_recv().is_err(), "nothing reached the backend");
    }

    #[test]
    fn a_client_past_its_connection_cap_gets_429_and_others_still_get_in() {
        let (front, _rx) = start(FrontConfig {
            max_conns_per_client: 2,
            ..cfg()
        });
        let addr = front.local_addr();
        // Two idle connections from 127.0.0.1 hold both of its slots.
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while front.open_connections() < 2 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let out = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 429"), "{out}");
        assert!(out.contains("Retry-After: 1"), "{out}");
        // Another address (127.0.0.2 is loopback too) is served.
        let mut s = socket_from("127.0.0.2", addr);
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        drop(held);
    }

    /// A TCP connection from a chosen loopback source address.
    fn socket_from(src: &str, dst: SocketAddr) -> TcpStream {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let src: SocketAddr = format!("{src}:0").parse().unwrap();
        sock.bind(&src.into()).unwrap();
        sock.connect(&dst.into()).unwrap();
        sock.into()
    }
}
