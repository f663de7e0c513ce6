//! The front door: the process's public listener, in front of tiny_http,
//! taking the hostile part of HTTP off the handler threads.
//!
//! tiny_http 0.12 sets no socket timeouts, reads header lines of any length
//! and any number, and hands a request to a handler while its body is still
//! arriving. So the hub does not expose tiny_http: it listens on a Unix
//! socket (mode 0600, in a 0700 directory, see `http::server`) and this
//! front listens on the public address. Per client connection (one thread,
//! kept alive over many requests) the front
//!
//! 1. takes a slot for the client address (`http::front::slots::ClientSlots`):
//!    past the per-address cap the answer is 429, past the overall cap 503;
//! 2. reads each request head ([`head`]) within `header_timeout` (408), at
//!    most `max_header_bytes` and `max_headers` (431), and checks its
//!    syntax strictly (400, 501 for transfer codings other than `chunked`,
//!    505); a long-poll (decoded `wait` parameter) takes a per-address wait
//!    slot (429 past `max_waits_per_client`);
//! 3. reads the whole body ([`body`]) — `Content-Length` or chunked — at
//!    most `max_body_bytes` (413, before reading when declared), each read
//!    within `body_timeout` (408), within a memory budget shared by all
//!    connections (503);
//! 4. forwards the complete request over a pooled, kept-alive Unix socket
//!    connection ([`forward`]) with the client address in
//!    [`CLIENT_HEADER`] (set here, stripped from client input), and streams
//!    the answer back; past `max_in_flight` requests waiting for an answer
//!    (in a handler or queued for one) the answer is 503;
//! 5. keeps the connection for the next request (HTTP/1.1 without
//!    `Connection: close`), one request at a time; an idle connection is
//!    closed after `idle_timeout`, or after a second while more than half
//!    of `max_conns` are taken (idle connections are shed until no more
//!    than half are), or when the server stops.
//!
//! **Invariants:**
//! - A handler thread never waits on a client: it gets complete requests and
//!   writes its answer to the front at socket speed.
//! - The backend learns the client address only from [`CLIENT_HEADER`],
//!   which only the front writes; a request without it did not come through
//!   the front and is refused by the gate.
//! - Every connection ends: each wait has a deadline, and each connection
//!   thread holds its slot (released on drop) for the connection's life.
//! - Error answers are made by the `render` function given at start (the api
//!   layer's one mapping), never here; after one the connection is closed.

mod body;
mod forward;
pub mod head;
pub mod slots;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use forward::HOLD_LIMIT;
pub use head::{parse_head, Framing, Head};

use body::Budget;
use forward::{Next, Pool};
use head::Idle;
use slots::{ClientSlots, Refused, Slot};

/// The header that carries the real client address (`ip:port`) from the
/// front to `http::server`. The front removes any copy a client sends.
pub const CLIENT_HEADER: &str = "X-Labelhub-Client";

/// Limits of the front (from `AuthConfig` and the hub's body limit).
#[derive(Clone, Debug)]
pub struct FrontConfig {
    pub max_conns: usize,
    pub max_conns_per_client: usize,
    /// Long-polls (`?wait=` > 0) per client address at once.
    pub max_waits_per_client: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// Bytes of request bodies buffered at once over all connections.
    pub body_budget_bytes: usize,
    /// How long the backend may take to answer (long-polls included).
    pub response_timeout: Duration,
    /// Idle backend connections kept open.
    pub pool_idle: usize,
    /// Requests forwarded and not yet answered (long-polls aside: they
    /// park without a handler), i.e. in a handler or waiting for one;
    /// past this a request gets 503 `server_busy`.
    pub max_in_flight: usize,
}

impl Default for FrontConfig {
    fn default() -> FrontConfig {
        FrontConfig {
            max_conns: 512,
            max_conns_per_client: 32,
            max_waits_per_client: 8,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 32 * 1024 * 1024,
            body_budget_bytes: 512 * 1024 * 1024,
            response_timeout: Duration::from_secs(600),
            pool_idle: 64,
            max_in_flight: 8 * 65,
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
    /// `max_conns` connections are open, the body budget is spent, or
    /// `max_in_flight` requests wait for an answer. 503.
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

struct Shared {
    cfg: FrontConfig,
    pool: Pool,
    slots: Arc<ClientSlots>,
    waits: Arc<ClientSlots>,
    budget: Budget,
    render: Render,
    stop: AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether a kept-alive connection idle for `idle` should be closed.
    fn quit_idle(&self, idle: Duration) -> bool {
        let crowded = self.slots.held() * 2 > self.cfg.max_conns;
        self.stopping()
            || idle >= self.cfg.idle_timeout
            || (crowded && idle >= Duration::from_secs(1))
    }
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
    /// tiny_http server listening on the Unix socket `backend`.
    pub fn start(
        listener: TcpListener,
        backend: PathBuf,
        cfg: FrontConfig,
        render: Render,
    ) -> io::Result<Front> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            slots: ClientSlots::new(cfg.max_conns_per_client, cfg.max_conns),
            waits: ClientSlots::new(cfg.max_waits_per_client, cfg.max_conns),
            budget: Budget::new(cfg.body_budget_bytes),
            pool: Pool::new(
                backend,
                cfg.pool_idle,
                cfg.response_timeout,
                cfg.max_in_flight,
            ),
            cfg,
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

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.slots.held()
    }

    /// A function that counts the connections open now (for `/metrics`).
    pub fn open_connections_probe(&self) -> Box<dyn Fn() -> usize + Send + Sync> {
        let shared = Arc::clone(&self.shared);
        Box::new(move || shared.slots.held())
    }

    /// Idle backend connections in the pool now.
    pub fn pooled_connections(&self) -> usize {
        self.shared.pool.idle()
    }

    /// Stops accepting and waits for the accept thread. Open connections
    /// finish the request they are in (answered `Connection: close`); idle
    /// kept-alive connections close within a second.
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
        self.shared.pool.clear();
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut backoff = Duration::from_millis(1);
    while !shared.stopping() {
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
        if shared.stopping() {
            break;
        }
        let accepted = Instant::now();
        match shared.slots.acquire(peer.ip()) {
            Ok(slot) => {
                let conn = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("front-conn".into())
                    .stack_size(256 * 1024)
                    .spawn(move || serve(stream, peer, accepted, &conn, slot));
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

/// Why a request ended early.
enum Failure {
    /// Tell the client (then close).
    Answer(FrontError),
    /// The client is gone, stopped reading or went idle: nothing to tell.
    Silent,
}

impl From<FrontError> for Failure {
    fn from(e: FrontError) -> Failure {
        Failure::Answer(e)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A client connection and the bytes received on it but not yet used.
struct Inbound {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    /// The read timeout set on the socket now (set only when it changes).
    timeout: Option<Duration>,
    /// Scratch space for reading answers from the backend.
    scratch: Vec<u8>,
}

impl Inbound {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads more bytes, waiting at most `timeout`; `Ok(0)` = closed.
    fn read_more(&mut self, timeout: Duration) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.timeout != Some(timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let read = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
        read
    }
}

/// One client connection: requests one after the other until the client
/// closes, asks to close, goes idle, or an error is answered.
fn serve(stream: TcpStream, peer: SocketAddr, accepted: Instant, shared: &Shared, _slot: Slot) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.cfg.body_timeout));
    let mut conn = Inbound {
        stream,
        buf: Vec::new(),
        pos: 0,
        timeout: None,
        scratch: vec![0u8; 16 * 1024],
    };
    let mut idle = Idle::First(accepted);
    loop {
        match one_request(&mut conn, peer, idle, shared) {
            Ok(Next::KeepAlive) => idle = Idle::KeptAlive,
            Ok(Next::Close) => {
                linger_close(&mut conn.stream, shared);
                return;
            }
            Err(Failure::Answer(err)) => {
                let _ = conn.stream.write_all(&error_response(shared, &err));
                linger_close(&mut conn.stream, shared);
                return;
            }
            Err(Failure::Silent) => return,
        }
    }
}

fn one_request(
    conn: &mut Inbound,
    peer: SocketAddr,
    idle: Idle,
    shared: &Shared,
) -> Result<Next, Failure> {
    let cfg = &shared.cfg;
    let head_bytes = conn.read_head(cfg, idle, &|idle| shared.quit_idle(idle))?;
    let head = parse_head(&head_bytes, cfg)?;
    drop(head_bytes);
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
        conn.stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Failure::Silent)?;
    }
    let (body, _reservation) = conn.read_body(&head.framing, cfg, &shared.budget)?;
    forward::exchange(
        &mut conn.stream,
        &mut conn.scratch,
        &head,
        &body,
        peer,
        head.keep_alive,
        shared,
    )
}

/// Half-closes and reads what the client still sends (briefly), so the close
/// does not reset the connection before the client has read the answer.
fn linger_close(client: &mut TcpStream, shared: &Shared) {
    let _ = client.flush();
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

#[cfg(test)]
mod tests;
