//! The request head: read from the client within the head deadline and the
//! size/count limits, then checked strictly ([`parse_head`]).
//!
//! **Invariants:**
//! - Only visible ASCII, CRLF line ends, one space between the three parts
//!   of the request line, origin-form targets (or `OPTIONS *`), token header
//!   names without space before the colon, no folded lines, one consistent
//!   `Content-Length`, only the `chunked` transfer coding, never both.
//! - Hop-by-hop headers and the front's own [`CLIENT_HEADER`] are never
//!   forwarded as the client sent them: the front sets the client address
//!   itself, so a client cannot spoof it.

use std::time::{Duration, Instant};

use super::{FrontConfig, FrontError, Inbound, CLIENT_HEADER};
use crate::http::router::parse_query;

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
    /// Headers to forward (hop-by-hop, framing and the front's own client
    /// address header removed).
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    pub expect_continue: bool,
    /// Whether the client wants the connection kept open after the answer
    /// (HTTP/1.1 without `Connection: close`; HTTP/1.0 never).
    pub keep_alive: bool,
}

impl Head {
    /// Whether the request asks to wait: a `wait` query parameter — after
    /// the same percent-decoding the handlers use, so `w%61it=60` counts —
    /// with a value that is not zero (unparsable values count too; the API
    /// refuses them). Such requests count against the per-address
    /// long-poll cap.
    pub fn is_long_poll(&self) -> bool {
        // A Server-Sent Events stream (console) is a long wait too.
        if self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("accept") && value.contains("text/event-stream")
        }) {
            return true;
        }
        let Some((_, query)) = self.target.split_once('?') else {
            return false;
        };
        parse_query(query).iter().any(|(name, value)| {
            name == "wait" && value.trim().parse::<f64>().ok().is_none_or(|s| s != 0.0)
        })
    }

    /// Whether the answer to this request has no body whatever its
    /// `Content-Length` says.
    pub fn is_head_method(&self) -> bool {
        self.method == "HEAD"
    }

    /// The head sent to the backend: the same request line (as HTTP/1.1)
    /// and end-to-end headers, the client address in [`CLIENT_HEADER`], a
    /// `Content-Length` for the buffered body, and `Connection: close` when
    /// `last` (the backend connection ends with this answer).
    pub fn forwarded(&self, body_len: usize, client: std::net::SocketAddr, last: bool) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str(&self.method);
        out.push(' ');
        out.push_str(&self.target);
        out.push_str(" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str(CLIENT_HEADER);
        out.push_str(": ");
        out.push_str(&client.to_string());
        out.push_str("\r\nContent-Length: ");
        out.push_str(&body_len.to_string());
        if last {
            out.push_str("\r\nConnection: close");
        }
        out.push_str("\r\n\r\n");
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
    if text
        .split("\r\n")
        .any(|l| l.contains('\n') || l.contains('\r'))
    {
        return Err(FrontError::bad("lines must end with CRLF"));
    }
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
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
    let mut close = false;
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
            "connection" => {
                close |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
            _ => {}
        }
        if !HOP_BY_HOP.contains(&lower.as_str()) && !lower.eq_ignore_ascii_case(CLIENT_HEADER) {
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
        keep_alive: version == "HTTP/1.1" && !close,
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

/// Where the blank line that ends a head starts in `buf`, searching from
/// `from` (bytes before it were searched already).
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf.get(start..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| start + p)
}

/// How long a kept-alive connection may wait before its next request.
pub(super) enum Idle {
    /// The first request: the head deadline runs from the accept.
    First(Instant),
    /// A later request: wait for its first byte up to the idle timeout
    /// (shorter while the server is crowded, or stopping), then the head
    /// deadline runs from that byte.
    KeptAlive,
}

impl Inbound {
    /// Reads the next request head (without its blank line); the bytes after
    /// it stay buffered for the body and any pipelined request.
    pub(super) fn read_head(
        &mut self,
        cfg: &FrontConfig,
        idle: Idle,
        quit_idle: &dyn Fn(Duration) -> bool,
    ) -> Result<Vec<u8>, super::Failure> {
        use super::Failure;
        let deadline = match idle {
            Idle::First(accepted) => accepted + cfg.header_timeout,
            Idle::KeptAlive => {
                let since = Instant::now();
                // Wake once a second to give the connection up early when
                // the server gets crowded or stops.
                while self.buffered().is_empty() {
                    if quit_idle(since.elapsed()) {
                        return Err(Failure::Silent);
                    }
                    match self.read_more(Duration::from_secs(1)) {
                        Ok(0) => return Err(Failure::Silent),
                        Ok(_) => {}
                        Err(e) if super::is_timeout(&e) => {}
                        Err(_) => return Err(Failure::Silent),
                    }
                }
                Instant::now() + cfg.header_timeout
            }
        };
        let mut searched = 0;
        loop {
            let have = self.buffered();
            if let Some(end) = find_head_end(have, searched) {
                let head = have[..end].to_vec();
                self.consume(end + 4);
                return Ok(head);
            }
            searched = have.len();
            if have.len() > cfg.max_header_bytes {
                return Err(FrontError::HeadTooLarge {
                    limit: cfg.max_header_bytes,
                }
                .into());
            }
            let wait = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(FrontError::HeaderTimeout)?;
            match self.read_more(wait) {
                // Closed before a complete head: nobody to answer (an empty
                // connection is a health probe or a port scan).
                Ok(0) => return Err(Failure::Silent),
                Ok(_) => {}
                Err(e) if super::is_timeout(&e) => return Err(FrontError::HeaderTimeout.into()),
                Err(_) => return Err(Failure::Silent),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_plain_request_head_is_normalised_and_the_client_header_set_not_copied() {
        let head = parse(
            "POST /api/x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-Label-Hub-Key: k\r\nx-labelhub-CLIENT: 10.0.0.1:1",
        )
        .unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(
            head.headers,
            vec![
                ("Host".to_string(), "h".to_string()),
                ("X-Label-Hub-Key".to_string(), "k".to_string())
            ]
        );
        let client: std::net::SocketAddr = "127.0.0.9:4321".parse().unwrap();
        let out = String::from_utf8(head.forwarded(5, client, false)).unwrap();
        assert_eq!(
            out,
            "POST /api/x?y=1 HTTP/1.1\r\nHost: h\r\nX-Label-Hub-Key: k\r\nX-Labelhub-Client: 127.0.0.9:4321\r\nContent-Length: 5\r\n\r\n"
        );
        let out = String::from_utf8(head.forwarded(0, client, true)).unwrap();
        assert!(out.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_close() {
        let ka = |s: &str| parse(s).unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: TE, Close"));
        assert!(!ka("GET / HTTP/1.0"));
        assert!(!ka("GET / HTTP/1.0\r\nConnection: keep-alive"));
    }

    #[test]
    fn long_polls_are_recognised_by_their_decoded_wait_parameter() {
        let lp = |t: &str| parse(&format!("GET {t} HTTP/1.1")).unwrap().is_long_poll();
        assert!(lp("/api/events?wait=30"));
        assert!(lp("/api/jobs/x?since=3&wait=0.5"));
        assert!(lp("/api/jobs/x?w%61it=60"), "an encoded name counts");
        assert!(lp("/api/jobs/x?%77%61%69%74=60"));
        assert!(lp("/api/jobs/x?wait=%36%30"), "an encoded value counts");
        assert!(lp("/api/jobs/x?wait=0&wait=60"), "any repeat counts");
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

    #[test]
    fn the_head_end_is_found_across_reads() {
        let buf = b"GET / HTTP/1.1\r\nX: y\r\n\r\nrest";
        assert_eq!(find_head_end(buf, 0), Some(20));
        assert_eq!(find_head_end(buf, 21), Some(20), "split CRLF CRLF");
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n", 0), None);
    }
}
