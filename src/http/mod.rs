//! HTTP plumbing: the tiny_http accept thread, the bounded handler pool, the
//! router (path parameters, one [`Scope`] per route), long-poll parking,
//! body limits and panic containment. It knows nothing about jobs or
//! printers: the application supplies an [`App`] and a [`Router`].
//!
//! **Invariants.**
//! * A fixed number of handler threads serve every request; when their
//!   queue is full the accept thread answers 503 at once.
//! * A handler that panics answers 500 and the thread serves the next
//!   request (`catch_unwind`).
//! * A long-poll handler that has nothing new returns [`Reply::Park`]: the
//!   request is stored in [`park::Parking`] and the handler thread is free.
//!   A change or the deadline puts it back on the pool's queue.
//! * Every error response is made by [`App::error`] (the api layer's one
//!   mapping), never here.

pub mod fake;
pub mod front;
pub mod park;
pub mod principal;
pub mod router;
pub mod server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

pub use principal::{Principal, PrinterAccess, Scope, Source};
pub use router::{Policy, Resource, Route, Router};
pub use server::{Listen, Server, ServerConfig};

/// Why a long-poll request is being handled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// First time.
    Fresh,
    /// Something it waits for may have changed.
    Changed,
    /// Its deadline passed (or the server is stopping): answer now.
    Deadline,
}

/// A parsed request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Option<SocketAddr>,
    /// The resolved parameters ([`Router::resolve`]): the route's path
    /// parameters (`{job_id}` -> decoded value) and its resource-naming
    /// query parameters (validated: given once, not empty). The gate may
    /// narrow a list by setting `printer_id` here.
    pub params: HashMap<&'static str, String>,
    /// Set by authentication.
    pub principal: Option<Principal>,
    /// Why the handler runs (long-polls run more than once).
    pub wake: Wake,
    /// The long-poll deadline, fixed the first time the request parks.
    pub deadline: Option<Instant>,
    /// Index of the matched route.
    pub route: usize,
    /// The matched route's path pattern (`/api/jobs/{job_id}`).
    pub template: &'static str,
    /// The matched route's scope.
    pub scope: Scope,
    /// The matched route's access policy.
    pub policy: Policy,
    /// When the request was received.
    pub received: Instant,
}

impl Request {
    /// A request as it arrives, before [`Router::resolve`] fills in its
    /// route, scope, policy and parameters. `target` is the raw request
    /// target; its query string is split off and parsed here.
    pub fn arrived(
        method: String,
        target: &str,
        headers: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        received: Instant,
    ) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method,
            path: path.to_string(),
            query: router::parse_query(query),
            headers,
            body: Vec::new(),
            peer,
            params: HashMap::new(),
            principal: None,
            wake: Wake::Fresh,
            deadline: None,
            route: usize::MAX,
            template: "",
            scope: Scope::Admin,
            policy: Policy::NONE,
            received,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A resolved parameter (path, or resource-naming query parameter);
    /// empty when the request has none.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// A resolved parameter, `None` when absent.
    pub fn resolved(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string().into_bytes())
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Takes over a response body that is written piece by piece after the
/// handler returned (the console's Server-Sent Events): it gets the
/// connection's writer once the head is sent, and must not block the
/// handler thread with it (hand it to another thread).
pub struct StreamSink(pub Box<dyn FnOnce(Box<dyn std::io::Write + Send>) + Send>);

impl std::fmt::Debug for StreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSink")
    }
}

/// What a handler decided.
#[derive(Debug)]
pub enum Reply {
    Respond(Response),
    /// Send `head` (status and headers, no length: the body ends when the
    /// connection closes), then hand the connection to `sink`.
    Stream {
        head: Response,
        sink: StreamSink,
    },
    /// Nothing new yet: park the request until one of `keys` changes past
    /// event `seen`, or until `deadline`.
    Park {
        keys: Vec<String>,
        seen: i64,
        deadline: Instant,
    },
}

/// Errors of the HTTP layer itself; [`App::error`] turns them into
/// responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No route has this path.
    NotFound { path: String },
    /// The path exists with other methods.
    MethodNotAllowed {
        method: String,
        allowed: Vec<String>,
    },
    /// The body is larger than the limit.
    BodyTooLarge { limit: usize },
    /// The body could not be read.
    BadBody { message: String },
    /// A query parameter that names a resource is empty or repeated.
    BadParameter { name: String, message: String },
    /// The handler queue is full.
    Busy,
    /// The handler panicked.
    Panic,
    /// The server is stopping.
    ShuttingDown,
}

impl HttpError {
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::NotFound { .. } => "route_not_found",
            HttpError::MethodNotAllowed { .. } => "method_not_allowed",
            HttpError::BodyTooLarge { .. } => "body_too_large",
            HttpError::BadBody { .. } => "bad_request_body",
            HttpError::BadParameter { .. } => "invalid_parameter",
            HttpError::Busy => "server_busy",
            HttpError::Panic => "internal_error",
            HttpError::ShuttingDown => "shutting_down",
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NotFound { path } => write!(f, "no route for {path}"),
            HttpError::MethodNotAllowed { method, allowed } => {
                write!(
                    f,
                    "{method} is not allowed here (allowed: {})",
                    allowed.join(", ")
                )
            }
            HttpError::BodyTooLarge { limit } => {
                write!(f, "the request body is larger than {limit} bytes")
            }
            HttpError::BadBody { message } => {
                write!(f, "the request body could not be read: {message}")
            }
            HttpError::BadParameter { name, message } => {
                write!(
                    f,
                    "query parameter `{name}`: {message} (give it once, not empty)"
                )
            }
            HttpError::Busy => f.write_str("the server is busy; retry shortly"),
            HttpError::Panic => f.write_str("the handler failed unexpectedly; the server goes on"),
            HttpError::ShuttingDown => f.write_str("the server is shutting down"),
        }
    }
}

/// The application behind the server.
pub trait App: Send + Sync + 'static {
    /// Checks the caller for a route's scope and fills `req.principal`.
    /// `Err` is the response to send instead (401/403/429).
    fn authenticate(&self, req: &mut Request, scope: Scope) -> Result<(), Response>;
    /// The response for an HTTP-layer error.
    fn error(&self, req: Option<&Request>, err: &HttpError) -> Response;
}
