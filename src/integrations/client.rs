//! The one outbound HTTP client: blocking (ureq, no async runtime), with a
//! total deadline per request, no redirects, and a bounded answer (a
//! larger body is an error, never read into memory). Used by the lookups
//! and the webhook sender; both run on their own threads' time.

use std::io::Read;
use std::time::Duration;

use super::policy::Networks;

/// Largest answer body read from an app or subscriber.
pub const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request. `networks`, when given, is checked against the resolved
/// addresses of the URL's host first.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
    networks: Option<&Networks>,
) -> Result<Answer, String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("bad URL {url}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{url}: only http:// and https:// are supported")),
    };
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(concat!("labelhub/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent: ureq::Agent = match networks {
        // The connection goes to exactly the addresses that were checked
        // (no second DNS answer can point it elsewhere).
        Some(networks) => {
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let addrs = networks.resolve(host, port)?;
            ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                Pinned(addrs),
            )
        }
        None => config.into(),
    };
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.unwrap_or(&[]).to_vec())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let mut resp = agent.run(req).map_err(|e| describe(&e, timeout))?;
    let status = resp.status().as_u16();
    let mut out = Vec::new();
    resp.body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .reader()
        .take(MAX_ANSWER_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            if e.to_string().contains("limit") {
                format!("answer larger than {MAX_ANSWER_BYTES} bytes")
            } else if e.kind() == std::io::ErrorKind::TimedOut {
                format!("timed out after {:.1} s", timeout.as_secs_f64())
            } else {
                format!("reading the answer failed: {e}")
            }
        })?;
    Ok(Answer { status, body: out })
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("timed out after {:.1} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection refused or unreachable".into(),
        ureq::Error::BodyExceedsLimit(n) => format!("answer larger than {n} bytes"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!("timed out after {:.1} s", timeout.as_secs_f64())
        }
        other => other.to_string(),
    }
}

/// A resolver that answers with addresses resolved (and checked) before.
#[derive(Debug)]
struct Pinned(Vec<std::net::SocketAddr>);

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for addr in self.0.iter().take(16) {
            out.push(*addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}
