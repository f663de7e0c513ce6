//! The server: a pool of handler threads taking requests from tiny_http's
//! queue, and the long-poll timer thread.
//!
//! Intake: in `serve`, tiny_http listens on a Unix socket (mode 0600 in a
//! 0700 directory) that only `http::front` talks to, over a pool of
//! kept-alive connections. The client address comes from the
//! [`CLIENT_HEADER`] the front sets (and strips from client input); a
//! request without it has no `peer` and is refused by the gate. On a TCP
//! listener (unit tests) the peer is the socket's and the header is
//! ignored. Either way the header never reaches a handler.
//!
//! Answers always carry a `Content-Length` (tiny_http's chunked encoding is
//! switched off): the front frames each answer on a kept-alive connection
//! by it.
//!
//! Threads: tiny_http itself runs an accept thread and a connection thread
//! per open connection (one per pooled front connection); ours are
//! `http-N` (the pool) and `http-park-timer`. The pool keeps
//! [`ServerConfig::standing`] threads. A request that writes (any method
//! but GET, HEAD and OPTIONS) may wait for a commit's fsync; when one takes
//! the last free thread, one more starts first, up to
//! [`ServerConfig::threads`], so reads never queue behind writes. A thread
//! beyond the standing ones ends after [`ServerConfig::idle`] without a
//! request. Reads never start threads: they only use the CPU, and more
//! threads than that cost `GET /healthz` a third of its rate (with 32
//! standing threads each request woke a sleeping one).
//! Each handler thread calls
//! `tiny_http::Server::recv` itself (no hand-over between threads). A
//! long-poll coming back from parking waits in the resume channel, which a
//! handler reads before each `recv`; the parking rings a doorbell
//! (`tiny_http::Server::unblock`, which makes one `recv` return) so that an
//! idle handler looks at once. How many requests may wait for a handler is
//! bounded by the front (`FrontConfig::max_in_flight`, 503 past it).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::front::CLIENT_HEADER;
use super::park::{Parked, Parking, Refused, Resumed};
use super::router::Router;
use super::{App, HttpError, Reply, Request, Response, Wake};

/// Where tiny_http listens.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A TCP address (tests of this module; the peer is the socket's).
    Tcp(String),
    /// A Unix socket path, for the front (the peer comes from
    /// [`CLIENT_HEADER`]). The socket gets mode 0600 and its directory 0700;
    /// a stale socket file left by a killed process is replaced.
    Unix(PathBuf),
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Listen,
    /// Most handler threads.
    pub threads: usize,
    /// Handler threads that always run (at most `threads`).
    pub standing: usize,
    /// How long a thread beyond the standing ones waits for a request
    /// before it ends.
    pub idle: Duration,
    pub max_body: usize,
}

/// The handler threads: how many run, how many are busy, and their
/// handles (for the shutdown).
struct Pool {
    alive: AtomicUsize,
    busy: AtomicUsize,
    max: usize,
    standing: usize,
    idle: Duration,
    handles: Mutex<Vec<JoinHandle<()>>>,
    named: AtomicUsize,
}

impl Pool {
    fn handles(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a place for one more thread, if there is room.
    fn reserve(&self) -> bool {
        self.alive
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (a < self.max).then_some(a + 1)
            })
            .is_ok()
    }

    /// Gives up an idle thread's place, unless only standing ones are left.
    fn retire(&self) -> bool {
        self.alive
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (a > self.standing).then(|| a - 1)
            })
            .is_ok()
    }
}

/// A running server.
pub struct Server {
    tiny: Arc<tiny_http::Server>,
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    parking: Arc<Parking>,
    pool: Arc<Pool>,
    /// The long-poll timer.
    timer: JoinHandle<()>,
    /// Set when stopping: a handler that wakes without a request ends, and
    /// requests it still receives are answered 503 `shutting_down`.
    stopping: Arc<AtomicBool>,
    /// The app's 503 `shutting_down` answer.
    shutting_down: Box<dyn Fn() -> Response + Send + Sync>,
}

struct Shared<A> {
    app: Arc<A>,
    tiny: Arc<tiny_http::Server>,
    resumed: Receiver<Resumed>,
    stopping: Arc<AtomicBool>,
    router: Arc<Router<A>>,
    parking: Arc<Parking>,
    max_body: usize,
    /// The peer comes from [`CLIENT_HEADER`] (Unix socket behind the front).
    peer_from_header: bool,
    pool: Arc<Pool>,
}

/// Binds a Unix socket only this user can reach: the directory is created
/// 0700 (and tightened if it exists), the socket set to 0600.
fn bind_private_unix(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )))
        }
        Err(_) => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// A server bound to its address whose threads have not started: start-up
/// binds it early, so the long-poll parking (made before the hub, to hear
/// every commit) can be given its [`Bound::doorbell`].
pub struct Bound {
    cfg: ServerConfig,
    tiny: Arc<tiny_http::Server>,
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
}

impl Server {
    /// Binds the address (no thread runs until [`Bound::start`]).
    pub fn bind(cfg: ServerConfig) -> std::io::Result<Bound> {
        let (tiny, path) = match &cfg.listen {
            Listen::Tcp(addr) => (tiny_http::Server::http(addr), None),
            Listen::Unix(path) => (
                tiny_http::Server::from_listener(bind_private_unix(path)?, None),
                Some(path.clone()),
            ),
        };
        let tiny = tiny.map_err(|e| std::io::Error::other(e.to_string()))?;
        let addr = tiny.server_addr().to_ip();
        Ok(Bound {
            cfg,
            tiny: Arc::new(tiny),
            addr,
            path,
        })
    }
}

impl Bound {
    /// Wakes one handler thread waiting on tiny_http's queue, so it picks
    /// up a request back from parking (for [`Parking::with_doorbell`]).
    pub fn doorbell(&self) -> super::park::Doorbell {
        // Weak: the hub keeps the parking after the server is gone.
        let tiny = Arc::downgrade(&self.tiny);
        Box::new(move || {
            if let Some(tiny) = tiny.upgrade() {
                tiny.unblock();
            }
        })
    }

    /// Starts every thread; long-polls park in `parking`.
    pub fn start<A: App>(
        self,
        app: Arc<A>,
        router: Arc<Router<A>>,
        parking: Arc<Parking>,
    ) -> std::io::Result<Server> {
        let Bound {
            cfg,
            tiny,
            addr,
            path,
        } = self;
        let resume_rx = parking.resumed().clone();
        let stopping = Arc::new(AtomicBool::new(false));
        let max = cfg.threads.max(1);
        let pool = Arc::new(Pool {
            alive: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            max,
            standing: cfg.standing.clamp(1, max),
            idle: cfg.idle,
            handles: Mutex::new(Vec::new()),
            named: AtomicUsize::new(0),
        });
        let shared = Arc::new(Shared {
            app: app.clone(),
            tiny: tiny.clone(),
            resumed: resume_rx,
            stopping: stopping.clone(),
            router,
            parking: parking.clone(),
            max_body: cfg.max_body,
            peer_from_header: path.is_some(),
            pool: pool.clone(),
        });
        for _ in 0..pool.standing {
            pool.alive.fetch_add(1, Ordering::AcqRel);
            spawn_handler(&shared)?;
        }
        let timer = {
            let parking = parking.clone();
            std::thread::Builder::new()
                .name("http-park-timer".into())
                .spawn(move || parking.run_timer())?
        };
        Ok(Server {
            tiny,
            addr,
            path,
            parking,
            pool,
            timer,
            stopping,
            shutting_down: Box::new(move || shutting_down(&*app)),
        })
    }
}

impl Server {
    /// The bound TCP address (the real port when 0 was asked for), if TCP.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The Unix socket path, if a Unix socket.
    pub fn socket_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Handler threads running now.
    pub fn handler_threads(&self) -> usize {
        self.pool.alive.load(Ordering::Acquire)
    }

    /// Stops accepting, answers parked long-polls with their snapshot, lets
    /// handlers finish the requests they have, and joins the threads (up to
    /// `timeout`; a thread still busy after that is left behind).
    pub fn shutdown(self, timeout: Duration) {
        self.parking.close();
        self.stopping.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        let mut rung = 0;
        // No thread starts once `stopping` is set; one started just before
        // is in the handles at the next take.
        loop {
            let threads = std::mem::take(&mut *self.pool.handles());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                // Each unblock ends one handler's wait (one that is busy
                // ends on a later one).
                while !t.is_finished() && Instant::now() < deadline {
                    self.tiny.unblock();
                    rung += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        }
        // `Parking::close` (above) rang the timer, which then ends.
        let _ = self.timer.join();
        // What is still queued (tiny_http would answer a request dropped
        // unanswered with an empty 500). `try_recv` also says "none" for
        // each unblock left over, so it is asked past those.
        for _ in 0..=rung {
            if let Ok(Some(raw)) = self.tiny.try_recv() {
                respond(raw, (self.shutting_down)());
            }
        }
    }
}

/// `OPTIONS *`: the front's handshake on a new connection (see
/// `http::front::forward::Pool::open`), answered at once with an empty 204
/// (also for a client that sends it).
fn is_handshake(raw: &tiny_http::Request) -> bool {
    *raw.method() == tiny_http::Method::Options && raw.url() == "*"
}

/// The app's answer to a request that arrives while the server stops.
fn shutting_down<A: App>(app: &A) -> Response {
    app.error(None, &HttpError::ShuttingDown)
        .with_header("Retry-After", "1")
}

/// Starts a handler thread (its place in `alive` is taken already).
fn spawn_handler<A: App>(shared: &Arc<Shared<A>>) -> std::io::Result<()> {
    let n = shared.pool.named.fetch_add(1, Ordering::Relaxed);
    let mine = shared.clone();
    let handle = std::thread::Builder::new()
        .name(format!("http-{n}"))
        .spawn(move || handler_loop(&mine))?;
    let mut handles = shared.pool.handles();
    handles.retain(|h| !h.is_finished());
    handles.push(handle);
    Ok(())
}

/// Runs one request on this thread, counted busy; when a request that
/// `may_wait` takes the last free thread, one more starts first (up to the
/// pool's most).
fn busy<A: App>(shared: &Arc<Shared<A>>, may_wait: bool, work: impl FnOnce()) {
    let pool = &shared.pool;
    let busy = pool.busy.fetch_add(1, Ordering::AcqRel) + 1;
    if may_wait
        && busy >= pool.alive.load(Ordering::Acquire)
        && !shared.stopping.load(Ordering::Acquire)
        && pool.reserve()
    {
        if let Err(e) = spawn_handler(shared) {
            pool.alive.fetch_sub(1, Ordering::AcqRel);
            log::warn!("cannot start another handler thread: {e}");
        }
    }
    work();
    pool.busy.fetch_sub(1, Ordering::AcqRel);
}

/// One handler thread: requests back from parking first, then the next
/// request from tiny_http. `recv` returns without a request when the
/// parking rings (`Parking::with_doorbell`) or the server stops. A thread
/// beyond the standing ones ends after the pool's idle time without one.
fn handler_loop<A: App>(shared: &Arc<Shared<A>>) {
    let pool = &shared.pool;
    loop {
        while let Ok(r) = shared.resumed.try_recv() {
            busy(shared, false, || run(shared, r.raw, r.req));
        }
        let got = if pool.alive.load(Ordering::Acquire) > pool.standing {
            shared.tiny.recv_timeout(pool.idle)
        } else {
            shared.tiny.recv().map(Some)
        };
        match got {
            Ok(Some(raw)) if shared.stopping.load(Ordering::Acquire) => {
                respond(raw, shutting_down(&*shared.app));
            }
            Ok(Some(raw)) if is_handshake(&raw) => respond(raw, Response::empty(204)),
            Ok(Some(raw)) => {
                let writes = !matches!(
                    raw.method(),
                    tiny_http::Method::Get | tiny_http::Method::Head | tiny_http::Method::Options
                );
                busy(shared, writes, || fresh(shared, raw))
            }
            Ok(None) if pool.retire() => return,
            Ok(None) => {}
            Err(_) if shared.stopping.load(Ordering::Acquire) => {
                // Stopping: answer what came back from parking, then end.
                while let Ok(r) = shared.resumed.try_recv() {
                    run(shared, r.raw, r.req);
                }
                return;
            }
            // The doorbell (or an accept error tiny_http reports).
            Err(_) => {}
        }
    }
}

fn fresh<A: App>(shared: &Shared<A>, mut raw: tiny_http::Request) {
    let received = Instant::now();
    let method = raw.method().as_str().to_ascii_uppercase();
    let url = raw.url().to_string();
    let mut client: Option<SocketAddr> = None;
    let headers: Vec<(String, String)> = raw
        .headers()
        .iter()
        .filter_map(|h| {
            let name = h.field.as_str().as_str();
            if name.eq_ignore_ascii_case(CLIENT_HEADER) {
                client = h.value.as_str().parse().ok();
                return None;
            }
            Some((name.to_ascii_lowercase(), h.value.as_str().to_string()))
        })
        .collect();
    let peer = if shared.peer_from_header {
        client
    } else {
        raw.remote_addr().copied()
    };
    let mut req = Request::arrived(method, &url, headers, peer, received);
    if let Err(e) = shared.router.resolve(&mut req) {
        let resp = shared.app.error(Some(&req), &e);
        return finish(raw, &req, resp);
    }
    if let Some(len) = raw.body_length() {
        if len > shared.max_body {
            let resp = shared.app.error(
                Some(&req),
                &HttpError::BodyTooLarge {
                    limit: shared.max_body,
                },
            );
            return finish(raw, &req, resp.with_header("Connection", "close"));
        }
    }
    let mut body = Vec::with_capacity(raw.body_length().unwrap_or(0).min(shared.max_body));
    match raw
        .as_reader()
        .take(shared.max_body as u64 + 1)
        .read_to_end(&mut body)
    {
        Ok(_) if body.len() > shared.max_body => {
            let resp = shared.app.error(
                Some(&req),
                &HttpError::BodyTooLarge {
                    limit: shared.max_body,
                },
            );
            return finish(raw, &req, resp.with_header("Connection", "close"));
        }
        Ok(_) => req.body = body,
        Err(e) => {
            let resp = shared.app.error(
                Some(&req),
                &HttpError::BadBody {
                    message: e.to_string(),
                },
            );
            return finish(raw, &req, resp);
        }
    }
    let scope = req.scope;
    let auth = catch_unwind(AssertUnwindSafe(|| {
        shared.app.authenticate(&mut req, scope)
    }));
    match auth {
        Ok(Ok(())) => run(shared, raw, req),
        Ok(Err(resp)) => finish(raw, &req, resp),
        Err(_) => {
            log::error!("authentication panicked for {} {}", req.method, req.path);
            let resp = shared.app.error(Some(&req), &HttpError::Panic);
            finish(raw, &req, resp)
        }
    }
}

/// Runs the route's handler (first time or after parking).
fn run<A: App>(shared: &Shared<A>, raw: tiny_http::Request, mut req: Request) {
    let Some(route) = shared.router.routes.get(req.route) else {
        let resp = shared.app.error(Some(&req), &HttpError::Panic);
        return finish(raw, &req, resp);
    };
    let reply = catch_unwind(AssertUnwindSafe(|| (route.handler)(&shared.app, &mut req)));
    match reply {
        Ok(Reply::Respond(resp)) => finish(raw, &req, resp),
        Ok(Reply::Stream { head, sink }) => stream(raw, &req, head, sink),
        Ok(Reply::Park {
            keys,
            seen,
            deadline,
        }) => {
            if req.wake == Wake::Deadline {
                log::error!(
                    "{} {} parked again after its deadline",
                    req.method,
                    req.path
                );
                let resp = shared.app.error(Some(&req), &HttpError::Panic);
                return finish(raw, &req, resp);
            }
            match shared
                .parking
                .park(Parked { raw, req }, keys, seen, deadline)
            {
                Ok(()) | Err(Refused::Requeued) => {}
                Err(Refused::Full(parked)) => {
                    // No room to wait: answer with the snapshot now.
                    let mut req = parked.req;
                    req.wake = Wake::Deadline;
                    run(shared, parked.raw, req)
                }
            }
        }
        Err(_) => {
            log::error!(
                "handler panicked: {} {} (answered 500)",
                req.method,
                req.path
            );
            let resp = shared.app.error(Some(&req), &HttpError::Panic);
            finish(raw, &req, resp)
        }
    }
}

fn finish(raw: tiny_http::Request, req: &Request, resp: Response) {
    let elapsed = req.received.elapsed();
    crate::metrics::http_request(&req.method, req.template, resp.status, elapsed);
    access_log(req, resp.status, elapsed);
    respond(raw, resp);
}

/// Writes a streamed response's head on the connection and hands the
/// connection to the sink (the handler thread is free at once).
fn stream(raw: tiny_http::Request, req: &Request, head: Response, sink: super::StreamSink) {
    let elapsed = req.received.elapsed();
    crate::metrics::http_request(&req.method, req.template, head.status, elapsed);
    access_log(req, head.status, elapsed);
    let mut out = format!("HTTP/1.1 {} OK\r\n", head.status);
    for (name, value) in &head.headers {
        if name.bytes().all(|b| b.is_ascii_graphic()) && !value.contains(['\r', '\n']) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut writer = raw.into_writer();
    if writer
        .write_all(out.as_bytes())
        .and_then(|()| writer.flush())
        .is_ok()
    {
        (sink.0)(writer);
    }
}

/// Log target of the access log (`PRINTER_HUB_ACCESS_LOG=0` filters it out
/// in `cli::serve`, so a switched-off line is never formatted).
pub const ACCESS_LOG_TARGET: &str = "labelhub::access";

/// One info line per answered request: method, route pattern (never the
/// raw path, which may carry ids or junk), status, milliseconds, the key's
/// public prefix (never the key) and the client address.
fn access_log(req: &Request, status: u16, elapsed: Duration) {
    let who: std::borrow::Cow<'_, str> = match &req.principal {
        Some(p) => p.key_prefix().map_or_else(|| p.actor().into(), Into::into),
        None => "-".into(),
    };
    let route = if req.template.is_empty() {
        crate::metrics::UNMATCHED
    } else {
        req.template
    };
    log::info!(
        target: ACCESS_LOG_TARGET,
        "access {} {} {} {:.1}ms key={} client={}",
        crate::metrics::method_label(&req.method),
        route,
        status,
        elapsed.as_secs_f64() * 1000.0,
        who,
        req.peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
    );
}

fn respond(raw: tiny_http::Request, resp: Response) {
    // Always `Content-Length`, never chunked: the front frames answers on
    // its kept-alive connections by it.
    let mut out = tiny_http::Response::from_data(resp.body)
        .with_status_code(resp.status)
        .with_chunked_threshold(usize::MAX);
    for (name, value) in &resp.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out = out.with_header(h);
        }
    }
    if let Err(e) = raw.respond(out) {
        log::debug!("client went away before the response: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;
    use crate::http::{Route, Scope};

    struct TestApp;

    impl App for TestApp {
        fn authenticate(&self, req: &mut Request, scope: Scope) -> Result<(), Response> {
            if scope == Scope::Admin && req.header("x-admin").is_none() {
                return Err(Response::empty(401));
            }
            Ok(())
        }
        fn error(&self, _req: Option<&Request>, err: &HttpError) -> Response {
            Response::new(
                match err {
                    HttpError::Panic => 500,
                    HttpError::NotFound { .. } => 404,
                    HttpError::BodyTooLarge { .. } => 413,
                    _ => 400,
                },
                "text/plain",
                err.code().as_bytes().to_vec(),
            )
        }
    }

    fn boom(_: &TestApp, _: &mut Request) -> Reply {
        panic!("deliberate test panic")
    }

    fn echo(_: &TestApp, req: &mut Request) -> Reply {
        Reply::Respond(Response::new(
            200,
            "text/plain",
            req.param("name").as_bytes().to_vec(),
        ))
    }

    fn admin(_: &TestApp, _: &mut Request) -> Reply {
        Reply::Respond(Response::empty(204))
    }

    fn start() -> Server {
        let router = Router::new(vec![
            Route::new("GET", "/boom", Scope::Public, "", boom),
            Route::new("GET", "/echo/{name}", Scope::Read, "", echo),
            Route::new("POST", "/admin", Scope::Admin, "", admin),
        ]);
        let cfg = ServerConfig {
            listen: Listen::Tcp("127.0.0.1:0".into()),
            threads: 2,
            standing: 2,
            idle: Duration::from_secs(30),
            max_body: 16,
        };
        let bound = Server::bind(cfg).unwrap();
        let parking = Arc::new(Parking::new(8).with_doorbell(bound.doorbell()));
        bound
            .start(Arc::new(TestApp), Arc::new(router), parking)
            .unwrap()
    }

    /// One request on a fresh connection; returns (status, body).
    fn call(addr: SocketAddr, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    #[test]
    fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
        let server = start();
        let addr = server.addr().unwrap();
        for _ in 0..5 {
            let (status, body) = call(
                addr,
                "GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            assert_eq!((status, body.as_str()), (500, "internal_error"));
        }
        let (status, body) = call(
            addr,
            "GET /echo/a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((status, body.as_str()), (200, "a b"));
        server.shutdown(Duration::from_secs(5));
    }

    /// Requests inside `hold` now and whether they may leave, with the
    /// condition variable rung on every change of either.
    static HOLD: (Mutex<(usize, bool)>, std::sync::Condvar) =
        (Mutex::new((0, false)), std::sync::Condvar::new());

    fn hold(_: &TestApp, _: &mut Request) -> Reply {
        let (lock, rung) = &HOLD;
        let mut state = lock.lock().unwrap();
        state.0 += 1;
        rung.notify_all();
        let (mut state, _) = rung
            .wait_timeout_while(state, Duration::from_secs(30), |s| !s.1)
            .unwrap();
        state.0 -= 1;
        rung.notify_all();
        Reply::Respond(Response::empty(204))
    }

    /// Waits (up to 20 s) until `holding` requests are inside `hold`.
    fn wait_holding(holding: usize) {
        let (lock, rung) = &HOLD;
        let (state, timeout) = rung
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(20), |s| {
                s.0 != holding
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "{} inside hold, not {holding}",
            state.0
        );
    }

    fn release(open: bool) {
        let (lock, rung) = &HOLD;
        lock.lock().unwrap().1 = open;
        rung.notify_all();
    }

    #[test]
    fn the_pool_grows_while_every_thread_is_busy_and_shrinks_when_idle() {
        let router = Router::new(vec![
            Route::new("POST", "/hold", Scope::Public, "", hold),
            Route::new("GET", "/hold", Scope::Public, "", hold),
        ]);
        let bound = Server::bind(ServerConfig {
            listen: Listen::Tcp("127.0.0.1:0".into()),
            threads: 4,
            standing: 1,
            idle: Duration::from_millis(200),
            max_body: 16,
        })
        .unwrap();
        let parking = Arc::new(Parking::new(8).with_doorbell(bound.doorbell()));
        let server = bound
            .start(Arc::new(TestApp), Arc::new(router), parking)
            .unwrap();
        assert_eq!(server.handler_threads(), 1);
        let addr = server.addr().unwrap();
        std::thread::scope(|s| {
            let clients: Vec<_> = (0..5)
                .map(|_| {
                    s.spawn(move || {
                        call(
                            addr,
                            "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .0
                    })
                })
                .collect();
            // One standing thread, and three more as each write takes the
            // last free one; never more than the most (the fifth waits).
            wait_holding(4);
            assert_eq!(server.handler_threads(), 4);
            release(true);
            for c in clients {
                assert_eq!(c.join().unwrap(), 204);
            }
        });
        // Nothing to wait on for a thread's end: polled, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.handler_threads() != 1 {
            assert!(Instant::now() < deadline, "the idle threads did not end");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Reads start no thread: the second waits for the first.
        release(false);
        std::thread::scope(|s| {
            let get = "GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let clients: Vec<_> = (0..2).map(|_| s.spawn(move || call(addr, get).0)).collect();
            wait_holding(1);
            assert_eq!(server.handler_threads(), 1);
            release(true);
            for c in clients {
                assert_eq!(c.join().unwrap(), 204);
            }
        });
        let (status, _) = call(
            addr,
            "GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 204);
        server.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn scopes_limits_and_unknown_routes() {
        let server = start();
        let addr = server.addr().unwrap();
        let (status, _) = call(
            addr,
            "POST /admin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 401);
        let (status, _) = call(
            addr,
            "POST /admin HTTP/1.1\r\nHost: x\r\nX-Admin: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 204);
        let (status, body) = call(
            addr,
            "POST /admin HTTP/1.1\r\nHost: x\r\nX-Admin: 1\r\nContent-Length: 17\r\nConnection: close\r\n\r\n01234567890123456",
        );
        assert_eq!((status, body.as_str()), (413, "body_too_large"));
        let (status, _) = call(
            addr,
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 404);
        server.shutdown(Duration::from_secs(5));
    }
}
