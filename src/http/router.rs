//! The router: a table of routes, each with a method, a path pattern with
//! `{name}` parameters, the [`Scope`] it requires, its access [`Policy`],
//! and its handler.
//!
//! **The one canonical path rule** (served, never redirected): the path is
//! split on `/`, empty segments are dropped (so a trailing slash, a leading
//! `//` and repeated slashes mean nothing), and each segment is
//! percent-decoded exactly once (`%2F` stays inside its segment). Literal
//! segments are compared after decoding, so `/%61pi/jobs/` is `/api/jobs`.
//! `Request::path` is then the canonical form, `/` + the decoded segments
//! joined by `/`. `HEAD` is routed as `GET`.
//!
//! **Invariants.**
//! * Every route declares its scope and policy in the table; there is no way
//!   to add a route without them, so access is decided per resolved route in
//!   one place ([`super::App::authenticate`]), never by comparing paths.
//! * Path parameters named `printer_id`, `printer_key` or `slug` name a
//!   printer, `job_id` a job and `batch_id` a batch (inferred, see
//!   [`Resource::of_param`]); query parameters that name one are listed in
//!   the route's [`Policy`]. Such a query parameter given empty or more than
//!   once is refused here (400), before anything else looks at it.
//! * Path parameters and resource-naming query parameters are resolved once
//!   into `Request::params`; handlers read them only from there.

use std::collections::HashMap;

use super::{HttpError, Reply, Request, Scope};

/// What a parameter names (the printer allow-list applies to all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Printer,
    Job,
    Batch,
}

impl Resource {
    /// The resource a path parameter names, from its name.
    pub fn of_param(name: &str) -> Option<Resource> {
        match name {
            "printer_id" | "printer_key" | "slug" => Some(Resource::Printer),
            "job_id" => Some(Resource::Job),
            "batch_id" => Some(Resource::Batch),
            _ => None,
        }
    }
}

/// A route's access policy besides its scope. Built with the `const`
/// methods: `Policy::NONE.lists().query(&[("printer_id", Resource::Printer)])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Query parameters that name a printer, job or batch.
    pub query: &'static [(&'static str, Resource)],
    /// Creates jobs: charged to the caller's submission bucket (429).
    pub submission: bool,
    /// Honours `Idempotency-Key`, keyed by (key, route, printer, value).
    pub idempotent: bool,
    /// Lists across printers: narrowed to the caller's printers (through
    /// its `printer_id` query parameter when it has one, else by the
    /// handler filtering with the principal).
    pub lists: bool,
    /// Could widen a caller's reach (create printers, manage keys) or shows
    /// every printer's history (audit): only for keys not limited to
    /// printers.
    pub unrestricted: bool,
}

impl Policy {
    /// No resource query parameters, no flags.
    pub const NONE: Policy = Policy {
        query: &[],
        submission: false,
        idempotent: false,
        lists: false,
        unrestricted: false,
    };

    pub const fn query(mut self, query: &'static [(&'static str, Resource)]) -> Policy {
        self.query = query;
        self
    }

    pub const fn submission(mut self) -> Policy {
        self.submission = true;
        self
    }

    pub const fn idempotent(mut self) -> Policy {
        self.idempotent = true;
        self
    }

    pub const fn lists(mut self) -> Policy {
        self.lists = true;
        self
    }

    pub const fn unrestricted(mut self) -> Policy {
        self.unrestricted = true;
        self
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::NONE
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
    pub policy: Policy,
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
            .split('/')
            .filter(|s| !s.is_empty())
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
            policy: Policy::NONE,
            handler,
            summary,
            segments,
        }
    }

    /// The same route with this policy.
    pub fn with_policy(mut self, policy: Policy) -> Route<A> {
        self.policy = policy;
        self
    }

    /// Every parameter of this route that names a resource: the path's
    /// (inferred from their names), then the policy's query parameters.
    pub fn resources(&self) -> Vec<(&'static str, Resource)> {
        let mut out: Vec<(&'static str, Resource)> = self
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(name) => Resource::of_param(name).map(|r| (*name, r)),
                Segment::Literal(_) => None,
            })
            .collect();
        out.extend(self.policy.query.iter().copied());
        out
    }

    fn matches(&self, parts: &[String]) -> Option<HashMap<&'static str, String>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(*name, part.clone());
                }
            }
        }
        Some(params)
    }
}

/// The canonical form of a request path: decoded non-empty segments.
pub fn canonical_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

/// The route table.
pub struct Router<A> {
    pub routes: Vec<Route<A>>,
}

impl<A> Router<A> {
    pub fn new(routes: Vec<Route<A>>) -> Router<A> {
        Router { routes }
    }

    /// Finds the route for a method and path (see the module's canonical
    /// path rule). Literal segments win over parameters because routes are
    /// tried in table order.
    pub fn find(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(usize, HashMap<&'static str, String>), HttpError> {
        self.find_parts(method, &canonical_segments(path), path)
    }

    fn find_parts(
        &self,
        method: &str,
        parts: &[String],
        path: &str,
    ) -> Result<(usize, HashMap<&'static str, String>), HttpError> {
        let mut allowed = Vec::new();
        for (idx, route) in self.routes.iter().enumerate() {
            if let Some(params) = route.matches(parts) {
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

    /// Resolves a request once: canonicalises `req.path`, finds the route,
    /// and fills `req.route`, `req.template`, `req.policy` and `req.params`
    /// (path parameters, then the route's resource-naming query
    /// parameters, each refused when empty or repeated).
    pub fn resolve(&self, req: &mut Request) -> Result<(), HttpError> {
        let parts = canonical_segments(&req.path);
        req.path = format!("/{}", parts.join("/"));
        let (idx, mut params) = self.find_parts(&req.method, &parts, &req.path)?;
        let route = &self.routes[idx];
        req.route = idx;
        req.template = route.path;
        req.scope = route.scope;
        req.policy = route.policy;
        for (name, _) in route.policy.query {
            let mut values = req.query.iter().filter(|(k, _)| k == name);
            match (values.next(), values.next()) {
                (None, _) => {}
                (Some(_), Some(_)) => {
                    return Err(HttpError::BadParameter {
                        name: name.to_string(),
                        message: "given more than once".into(),
                    })
                }
                (Some((_, v)), None) if v.is_empty() => {
                    return Err(HttpError::BadParameter {
                        name: name.to_string(),
                        message: "empty".into(),
                    })
                }
                (Some((_, v)), None) => {
                    params.insert(name, v.clone());
                }
            }
        }
        req.params = params;
        Ok(())
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
        assert_eq!(r.find("GET", "//api//jobs/x/").unwrap().0, 0);
    }

    fn request(method: &str, path: &str, query: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: parse_query(query),
            headers: Vec::new(),
            body: Vec::new(),
            peer: None,
            params: HashMap::new(),
            principal: None,
            wake: crate::http::Wake::Fresh,
            deadline: None,
            route: usize::MAX,
            template: "",
            scope: Scope::Admin,
            policy: Policy::NONE,
            received: std::time::Instant::now(),
        }
    }

    const FEED: Policy = Policy::NONE.lists().query(&[
        ("printer_id", Resource::Printer),
        ("batch_id", Resource::Batch),
    ]);

    fn table() -> Router<()> {
        Router::new(vec![
            Route::new("GET", "/api/jobs", Scope::Read, "", ok).with_policy(FEED),
            Route::new("GET", "/api/jobs/{job_id}", Scope::Read, "", ok),
            Route::new("POST", "/print", Scope::Print, "", ok)
                .with_policy(Policy::NONE.submission().idempotent()),
        ])
    }

    #[test]
    fn every_spelling_resolves_to_the_one_canonical_route() {
        let r = table();
        for path in [
            "/api/jobs",
            "/api/jobs/",
            "//api/jobs",
            "/api//jobs//",
            "/%61pi/jobs",
            "/api/%6A%6F%62%73/",
        ] {
            let mut req = request("GET", path, "");
            r.resolve(&mut req).unwrap();
            assert_eq!(req.route, 0, "{path}");
            assert_eq!(req.path, "/api/jobs", "{path}");
            assert_eq!(req.template, "/api/jobs");
            assert_eq!(req.policy, FEED);
            assert_eq!(req.scope, Scope::Read);
        }
        let mut req = request("HEAD", "/print/", "");
        assert!(matches!(
            r.resolve(&mut req),
            Err(HttpError::MethodNotAllowed { .. })
        ));
        let mut req = request("POST", "/%70rint/", "");
        r.resolve(&mut req).unwrap();
        assert!(req.policy.submission && req.policy.idempotent);
        // A percent-encoded slash stays inside its segment; decoding is
        // done once (`%2561` is `%61`, not `a`).
        let mut req = request("GET", "/api/jobs/a%2Fb/", "");
        r.resolve(&mut req).unwrap();
        assert_eq!(req.param("job_id"), "a/b");
        let mut req = request("GET", "/api/jobs/%2561", "");
        r.resolve(&mut req).unwrap();
        assert_eq!(req.param("job_id"), "%61");
        let routes = r.routes[1].resources();
        assert_eq!(routes, vec![("job_id", Resource::Job)]);
        assert_eq!(r.routes[0].resources().len(), 2);
    }

    #[test]
    fn resource_query_parameters_must_be_given_once_and_not_empty() {
        let r = table();
        for query in [
            "printer_id=",
            "printer_id=a&printer_id=b",
            "printer_id=a&printer_id=a",
            "printer_id=a&p%72inter_id=b",
            "batch_id=",
        ] {
            let mut req = request("GET", "/api/jobs/", query);
            let err = r.resolve(&mut req).unwrap_err();
            assert_eq!(err.code(), "invalid_parameter", "{query}");
        }
        let mut req = request("GET", "/api/jobs", "printer_id=p1&batch_id=b1&state=");
        r.resolve(&mut req).unwrap();
        assert_eq!(req.resolved("printer_id"), Some("p1"));
        assert_eq!(req.resolved("batch_id"), Some("b1"));
        assert_eq!(req.resolved("state"), None, "not a resource: not resolved");
        // Parameters no route names are the handler's business.
        let mut req = request("GET", "/api/jobs/x", "printer_id=&printer_id=");
        r.resolve(&mut req).unwrap();
        assert_eq!(req.resolved("printer_id"), None);
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin.allows(Scope::Print));
        assert!(Scope::Print.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Print));
        assert!(Scope::Read.allows(Scope::Public));
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
