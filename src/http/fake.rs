//! In-process requests, in the style of rouille's `Request::fake_http`: a
//! request runs through the router (canonical path, route, policy,
//! resolved parameters), the app's gate and the route's handler, with no
//! socket, process or thread, the way [`super::server`] runs one behind the
//! front. Tests of the API and of the access policy use it to try many
//! cases cheaply; what only the front or the socket does (head limits, a
//! target starting with `//`, slow clients) is tested on the real binary.
//!
//! The client address is set as the front sets it ([`FakeRequest::peer`];
//! [`FakeRequest::no_peer`] is a request that bypassed the front), and any
//! client-sent [`CLIENT_HEADER`] is dropped, as the server drops it. A
//! handler that parks comes back as [`Outcome::Parked`]: run it again with
//! [`Parked::wake`] as a change or the deadline would ([`Fake::call`]
//! answers at once, as the deadline would).

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::front::CLIENT_HEADER;
use super::router::Router;
use super::{App, HttpError, Reply, Request, Response, Wake};

/// The client address a fake request comes from unless told otherwise.
pub const PEER: &str = "127.0.0.1:40000";

/// A request to run in-process.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: String,
    /// Path and query, spelled as a client would send them.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Option<SocketAddr>,
}

impl FakeRequest {
    pub fn new(method: &str, target: &str) -> FakeRequest {
        FakeRequest {
            method: method.to_ascii_uppercase(),
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: PEER.parse().ok(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> FakeRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> FakeRequest {
        self.body = body.into();
        self
    }

    /// A JSON body with its `Content-Type`.
    pub fn json(self, value: &serde_json::Value) -> FakeRequest {
        self.header("Content-Type", "application/json")
            .body(value.to_string())
    }

    /// The client address the front saw.
    pub fn peer(mut self, peer: SocketAddr) -> FakeRequest {
        self.peer = Some(peer);
        self
    }

    /// A request that did not come through the front (no client address).
    pub fn no_peer(mut self) -> FakeRequest {
        self.peer = None;
        self
    }
}

/// What a fake request came to.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// A streamed answer: its head (the stream itself is dropped, as if the
    /// client closed the connection at once).
    Stream(Response),
    Parked(Box<Parked>),
}

/// A request whose handler parked it (`Reply::Park`).
#[derive(Debug)]
pub struct Parked {
    pub req: Request,
    pub keys: Vec<String>,
    pub seen: i64,
    pub deadline: Instant,
}

impl Outcome {
    /// The answer; a parked request is answered as its deadline would
    /// answer it, a stream by its head.
    pub fn response<A: App>(self, fake: &Fake<'_, A>) -> Response {
        match self {
            Outcome::Respond(r) | Outcome::Stream(r) => r,
            Outcome::Parked(p) => p.wake(fake, Wake::Deadline).response(fake),
        }
    }
}

impl Parked {
    /// Runs the handler again, as parking does when one of its keys
    /// changes ([`Wake::Changed`]) or its deadline passes
    /// ([`Wake::Deadline`]).
    pub fn wake<A: App>(self, fake: &Fake<'_, A>, wake: Wake) -> Outcome {
        let mut req = self.req;
        req.wake = wake;
        fake.run(req)
    }
}

/// Runs requests against an app and its route table.
pub struct Fake<'a, A> {
    pub app: &'a A,
    pub router: &'a Router<A>,
    /// The server's body limit.
    pub max_body: usize,
}

impl<'a, A: App> Fake<'a, A> {
    pub fn new(app: &'a A, router: &'a Router<A>) -> Fake<'a, A> {
        Fake {
            app,
            router,
            max_body: usize::MAX,
        }
    }

    /// Runs a request to its answer ([`Outcome::response`]).
    pub fn call(&self, req: FakeRequest) -> Response {
        self.send(req).response(self)
    }

    /// Runs a request once: resolve, body limit, gate, handler.
    pub fn send(&self, fake: FakeRequest) -> Outcome {
        let headers = fake
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(CLIENT_HEADER))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let mut req = Request::arrived(
            fake.method.clone(),
            &fake.target,
            headers,
            fake.peer,
            Instant::now(),
        );
        if let Err(e) = self.router.resolve(&mut req) {
            return self.answer(&req, self.app.error(Some(&req), &e));
        }
        if fake.body.len() > self.max_body {
            let err = HttpError::BodyTooLarge {
                limit: self.max_body,
            };
            return self.answer(&req, self.app.error(Some(&req), &err));
        }
        req.body = fake.body;
        let scope = req.scope;
        match catch_unwind(AssertUnwindSafe(|| self.app.authenticate(&mut req, scope))) {
            Ok(Ok(())) => self.run(req),
            Ok(Err(resp)) => self.answer(&req, resp),
            Err(_) => self.answer(&req, self.app.error(Some(&req), &HttpError::Panic)),
        }
    }

    /// The route's handler, first time or after parking.
    fn run(&self, mut req: Request) -> Outcome {
        let Some(route) = self.router.routes.get(req.route) else {
            return self.answer(&req, self.app.error(Some(&req), &HttpError::Panic));
        };
        match catch_unwind(AssertUnwindSafe(|| (route.handler)(self.app, &mut req))) {
            Ok(Reply::Respond(resp)) => self.answer(&req, resp),
            Ok(Reply::Stream { head, .. }) => Outcome::Stream(head),
            Ok(Reply::Park { .. }) if req.wake == Wake::Deadline => {
                // The server answers 500 to a handler that parks again
                // after its deadline.
                self.answer(&req, self.app.error(Some(&req), &HttpError::Panic))
            }
            Ok(Reply::Park {
                keys,
                seen,
                deadline,
            }) => {
                req.deadline = Some(deadline);
                Outcome::Parked(Box::new(Parked {
                    req,
                    keys,
                    seen,
                    deadline,
                }))
            }
            Err(_) => self.answer(&req, self.app.error(Some(&req), &HttpError::Panic)),
        }
    }

    /// An answer as the client gets it: no body for `HEAD`.
    fn answer(&self, req: &Request, mut resp: Response) -> Outcome {
        if req.method == "HEAD" {
            resp.body.clear();
        }
        Outcome::Respond(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Route, Scope};

    struct TestApp;

    impl App for TestApp {
        fn authenticate(&self, req: &mut Request, scope: Scope) -> Result<(), Response> {
            if req.peer.is_none() || (scope == Scope::Admin && req.header("x-admin").is_none()) {
                return Err(Response::empty(401));
            }
            Ok(())
        }
        fn error(&self, _req: Option<&Request>, err: &HttpError) -> Response {
            let status = match err {
                HttpError::Panic => 500,
                HttpError::NotFound { .. } => 404,
                HttpError::BodyTooLarge { .. } => 413,
                _ => 400,
            };
            Response::new(status, "text/plain", err.code().as_bytes().to_vec())
        }
    }

    fn echo(_: &TestApp, req: &mut Request) -> Reply {
        let body = format!("{} {:?} {:?}", req.param("name"), req.peer, req.wake);
        Reply::Respond(Response::new(200, "text/plain", body.into_bytes()))
    }

    fn wait(_: &TestApp, req: &mut Request) -> Reply {
        match req.wake {
            Wake::Fresh => Reply::Park {
                keys: vec!["k".into()],
                seen: 1,
                deadline: Instant::now(),
            },
            w => Reply::Respond(Response::new(200, "text/plain", format!("{w:?}").into())),
        }
    }

    fn boom(_: &TestApp, _: &mut Request) -> Reply {
        panic!("deliberate test panic")
    }

    fn router() -> Router<TestApp> {
        Router::new(vec![
            Route::new("GET", "/echo/{name}", Scope::Read, "", echo),
            Route::new("POST", "/admin", Scope::Admin, "", echo),
            Route::new("GET", "/wait", Scope::Read, "", wait),
            Route::new("GET", "/boom", Scope::Public, "", boom),
        ])
    }

    fn text(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[test]
    fn spellings_gate_peer_parking_and_head() {
        let router = router();
        let fake = Fake::new(&TestApp, &router);
        for target in ["/echo/a%20b", "/echo//a%20b/", "/%65cho/a%20b"] {
            let r = fake.call(FakeRequest::new("GET", target).header(CLIENT_HEADER, "10.0.0.9:1"));
            assert_eq!(text(&r), format!("a b Some({PEER}) Fresh"), "{target}");
        }
        let r = fake.call(FakeRequest::new("HEAD", "/echo/x"));
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(
            fake.call(FakeRequest::new("GET", "/echo/x").no_peer())
                .status,
            401
        );
        assert_eq!(fake.call(FakeRequest::new("POST", "/admin")).status, 401);
        let admin = FakeRequest::new("POST", "/admin/").header("X-Admin", "1");
        assert_eq!(fake.call(admin.clone()).status, 200);
        let small = Fake {
            max_body: 2,
            ..Fake::new(&TestApp, &router)
        };
        assert_eq!(small.call(admin.body("abc")).status, 413);
        assert_eq!(fake.call(FakeRequest::new("GET", "/nope")).status, 404);
        assert_eq!(fake.call(FakeRequest::new("GET", "/boom")).status, 500);
        let Outcome::Parked(p) = fake.send(FakeRequest::new("GET", "/wait")) else {
            panic!("not parked")
        };
        assert_eq!(p.keys, ["k"]);
        assert!(p.req.deadline.is_some());
        assert_eq!(
            text(&p.wake(&fake, Wake::Changed).response(&fake)),
            "Changed"
        );
        assert_eq!(
            text(&fake.call(FakeRequest::new("GET", "/wait"))),
            "Deadline"
        );
    }
}
