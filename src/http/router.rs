//! The router: a table of routes, each with a method, a path pattern with
//! `{name}` parameters, the [`Scope`] it requires, and its handler.
//!
//! **Invariant:** every route declares its scope in the table; there is no
//! way to add a route without one, so authentication (issue 5) is decided
//! per route in one place ([`super::App::authenticate`]).

use std::collections::HashMap;

use super::{HttpError, Reply, Request};

/// Access a route needs. `admin` includes `print`, which includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// No authentication (health, OpenAPI document).
    Public,
    Read,
    Print,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Read => "read",
            Scope::Print => "print",
            Scope::Admin => "admin",
        }
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// A handler: runs on a handler thread; may be called again for a parked
/// long-poll request.
pub type Handler<A> = fn(&A, &mut Request) -> Reply;

/// One route.
pub struct Route<A> {
    pub method: &'static str,
    /// `/api/jobs/{job_id}`
    pub path: &'static str,
    pub scope: Scope,
    pub handler: Handler<A>,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    segments: Vec<Segment>,
}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

impl<A> Route<A> {
    pub fn new(
        method: &'static str,
        path: &'static str,
        scope: Scope,
        summary: &'static str,
        handler: Handler<A>,
    ) -> Route<A> {
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(s),
                },
            )
            .collect();
        Route {
            method,
            path,
            scope,
            handler,
            summary,
            segments,
        }
    }

    fn matches(&self, parts: &[&str]) -> Option<HashMap<&'static str, String>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => {
                    params.insert(*name, percent_decode(part));
                }
            }
        }
        Some(params)
    }
}

/// The route table.
pub struct Router<A> {
    pub routes: Vec<Route<A>>,
}

impl<A> Router<A> {
    pub fn new(routes: Vec<Route<A>>) -> Router<A> {
        Router { routes }
    }

    /// Finds the route for a method and path. Literal segments win over
    /// parameters because routes are tried in table order.
    pub fn find(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(usize, HashMap<&'static str, String>), HttpError> {
        let trimmed = path.trim_start_matches('/');
        let trimmed = if trimmed.len() > 1 {
            trimmed.trim_end_matches('/')
        } else {
            trimmed
        };
        let parts: Vec<&str> = trimmed.split('/').collect();
        let mut allowed = Vec::new();
        for (idx, route) in self.routes.iter().enumerate() {
            if let Some(params) = route.matches(&parts) {
                if route.method == method || (method == "HEAD" && route.method == "GET") {
                    return Ok((idx, params));
                }
                allowed.push(route.method.to_string());
            }
        }
        if allowed.is_empty() {
            Err(HttpError::NotFound {
                path: path.to_string(),
            })
        } else {
            allowed.dedup();
            Err(HttpError::MethodNotAllowed {
                method: method.to_string(),
                allowed,
            })
        }
    }
}

/// Decodes `%XX` escapes (and `+` as space in query strings is handled by
/// the caller). Invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    fn ok(_: &(), _: &mut Request) -> Reply {
        Reply::Respond(Response::empty(200))
    }

    #[test]
    fn params_literals_and_methods() {
        let r: Router<()> = Router::new(vec![
            Route::new("GET", "/api/jobs/{job_id}", Scope::Read, "", ok),
            Route::new("POST", "/api/jobs/{job_id}/cancel", Scope::Print, "", ok),
            Route::new(
                "GET",
                "/api/printers/{printer_id}/queue",
                Scope::Read,
                "",
                ok,
            ),
            Route::new(
                "POST",
                "/api/printers/{printer_id}/queue/clear",
                Scope::Print,
                "",
                ok,
            ),
        ]);
        let (idx, params) = r.find("GET", "/api/jobs/abc").unwrap();
        assert_eq!(idx, 0);
        assert_eq!(params["job_id"], "abc");
        assert_eq!(
            r.find("POST", "/api/jobs/a%20b/cancel").unwrap().1["job_id"],
            "a b"
        );
        assert_eq!(r.find("POST", "/api/printers/p/queue/clear").unwrap().0, 3);
        assert!(matches!(
            r.find("DELETE", "/api/jobs/x"),
            Err(HttpError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            r.find("GET", "/api/jobs"),
            Err(HttpError::NotFound { .. })
        ));
        assert!(matches!(
            r.find("GET", "/api/jobs//"),
            Err(HttpError::NotFound { .. })
        ));
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin.grants(Scope::Print));
        assert!(Scope::Print.grants(Scope::Read));
        assert!(!Scope::Read.grants(Scope::Print));
        assert!(Scope::Read.grants(Scope::Public));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("a=1&b=x%2Fy&c=a+b&d"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x/y".into()),
                ("c".into(), "a b".into()),
                ("d".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
