//! Server-Sent Events on `GET /api/events` (`Accept: text/event-stream`).
//!
//! The same events as the JSON feed, with upstream's event names
//! (`printer.media_changed` is sent as `printer.tape_changed`; the others
//! keep their names: `printer.status`, `job.state_changed`, `job.created`,
//! `printer.changed`). Each frame's `id:` is the feed cursor, so a browser's
//! automatic reconnect (`Last-Event-ID`) resumes exactly where it stopped.
//!
//! **No thread per stream:** the handler writes the head (see
//! `http::Reply::Stream`) and hands the connection to [`Streams`], whose one
//! `sse` thread owns every open stream. It wakes when the hub commits a
//! change (the same listener that wakes parked long-polls) and every
//! [`KEEP_ALIVE`] to send a comment line to idle streams. A write error
//! (the client went away) drops the stream.
//!
//! **Invariants:**
//! - On every round (a change, or at least every 5 s), before anything is
//!   written, each stream's key (and session) is checked again: a key that was revoked, disabled, expired
//!   or signed out ends the stream, and its printer allow-list is re-read,
//!   so an event of a printer the key may no longer use is never sent.
//! - The writes go to the front door over loopback (the front copies to
//!   the client under its own write timeout), so a slow browser does not
//!   stall the `sse` thread; a dead one is noticed at the next keep-alive.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;
use uuid::Uuid;

use crate::api::{int_param, Api, ApiError};
use crate::auth::{session, store};
use crate::http::{HttpError, Reply, Request, Response, StreamSink};
use crate::hub::events::{self, Filter};
use crate::hub::{now_ms, rfc3339, Hub};

/// Comment lines keep proxies and browsers from timing the stream out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read per stream per round.
const BATCH: usize = 200;

/// Who a stream belongs to, checked again on every wake.
#[derive(Clone, Debug)]
struct Owner {
    api_key_id: Option<Uuid>,
    session_token: Option<String>,
    /// Allowed printer ids at open time (empty = all); re-read from the key.
    allowed: Vec<String>,
}

struct Stream {
    writer: Box<dyn Write + Send>,
    cursor: i64,
    printer_id: Option<String>,
    batch_id: Option<String>,
    owner: Owner,
    last_write: Instant,
}

enum Msg {
    Open(Box<Stream>),
    Changed,
}

/// The registry of open event streams and its thread. Built before the
/// hub (the hub's change listener tells it of commits); its thread starts
/// with the first stream.
pub struct Streams {
    tx: Sender<Msg>,
    open: Arc<AtomicUsize>,
    thread: Mutex<Thread>,
}

/// The `sse` thread: not started, running, or failed to start.
enum Thread {
    Idle(Receiver<Msg>),
    Running,
    Failed,
}

impl Streams {
    pub fn new() -> Streams {
        let (tx, rx) = crossbeam_channel::unbounded();
        Streams {
            tx,
            open: Arc::new(AtomicUsize::new(0)),
            thread: Mutex::new(Thread::Idle(rx)),
        }
    }

    /// Starts the `sse` thread on the first call; `Err` if it could not
    /// start (then or before).
    fn start(&self, hub: &Arc<Hub>) -> Result<(), ApiError> {
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        let rx = match std::mem::replace(&mut *thread, Thread::Failed) {
            Thread::Idle(rx) => rx,
            Thread::Running => {
                *thread = Thread::Running;
                return Ok(());
            }
            Thread::Failed => return Err(ApiError::Http(HttpError::Busy)),
        };
        let (hub, count) = (hub.clone(), self.open.clone());
        match std::thread::Builder::new()
            .name("sse".into())
            .spawn(move || run(&hub, &rx, &count))
        {
            Ok(_) => {
                *thread = Thread::Running;
                Ok(())
            }
            Err(e) => {
                log::error!("could not start the event stream thread: {e}");
                Err(ApiError::Http(HttpError::Busy))
            }
        }
    }

    /// Something was committed: streams read what is new.
    pub fn changed(&self) {
        if self.open.load(Ordering::Relaxed) > 0 {
            let _ = self.tx.send(Msg::Changed);
        }
    }

    /// Open streams right now.
    pub fn len(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Streams {
    fn default() -> Streams {
        Streams::new()
    }
}

/// Whether the request asks for an event stream.
pub fn wants_stream(req: &Request) -> bool {
    req.header("accept")
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// `GET /api/events` with `Accept: text/event-stream`: checks the
/// parameters, then hands the connection to the `sse` thread.
pub fn open(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let streams = api.streams();
    streams.start(&api.hub)?;
    let last = events::last_id(&api.hub.db.read())?;
    let resume = match req.header("last-event-id").filter(|s| !s.is_empty()) {
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            ApiError::invalid(
                "validation_error",
                "Last-Event-ID: expected a previous event id",
            )
        })?),
        None => int_param(req, "since")?,
    };
    let cursor = resume.unwrap_or(last);
    if cursor < 0 {
        return Err(ApiError::invalid(
            "validation_error",
            "since: 0 or a previous event id",
        ));
    }
    let principal = req.principal.as_ref();
    let owner = Owner {
        api_key_id: principal.and_then(|p| p.api_key_id()),
        session_token: match req.header(crate::auth::KEY_HEADER) {
            Some(_) => None,
            None => session::cookie_token(req.header("cookie")).map(str::to_string),
        },
        allowed: principal.map(|p| p.printers.ids()).unwrap_or_default(),
    };
    // Through the resolved route (a slug is resolved to the printer's id,
    // a restricted key's feed is narrowed by the gate).
    let printer_id = req.resolved("printer_id").map(str::to_string);
    let batch_id = req.resolved("batch_id").map(str::to_string);
    let tx = streams.tx.clone();
    let head = Response::new(200, "text/event-stream; charset=utf-8", Vec::new())
        .with_header("Cache-Control", "no-store")
        .with_header("X-Accel-Buffering", "no");
    let sink = StreamSink(Box::new(move |mut writer: Box<dyn Write + Send>| {
        if writer
            .write_all(b": connected\nretry: 3000\n\n")
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
        let _ = tx.send(Msg::Open(Box::new(Stream {
            writer,
            cursor,
            printer_id,
            batch_id,
            owner,
            last_write: Instant::now(),
        })));
    }));
    Ok(Reply::Stream { head, sink })
}

/// The `sse` thread's loop. It ends when the channel closes: the hub's
/// listener keeps a sender, so in `serve` it runs as long as the process.
fn run(hub: &Hub, rx: &Receiver<Msg>, open: &AtomicUsize) {
    let mut streams: Vec<Stream> = Vec::new();
    loop {
        let msg = if streams.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(KEEP_ALIVE / 3) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut changed = false;
        let mut first = msg;
        // Take everything queued: one round of reads serves them all.
        loop {
            match first.take().or_else(|| rx.try_recv().ok()) {
                Some(Msg::Open(s)) => {
                    streams.push(*s);
                    changed = true;
                }
                Some(Msg::Changed) => changed = true,
                None => break,
            }
        }
        let now = Instant::now();
        streams.retain_mut(|s| {
            let keep = serve(hub, s, changed, now);
            if !keep {
                log::debug!("event stream closed at cursor {}", s.cursor);
            }
            keep
        });
        open.store(streams.len(), Ordering::Relaxed);
    }
}

/// One round for one stream; `false` ends it.
fn serve(hub: &Hub, s: &mut Stream, changed: bool, now: Instant) -> bool {
    // Every round (at least every KEEP_ALIVE / 3): the key still holds.
    match still_allowed(hub, &s.owner) {
        Some(allowed) => s.owner.allowed = allowed,
        None => {
            let _ = s.writer.write_all(b"event: session.ended\ndata: {}\n\n");
            let _ = s.writer.flush();
            return false;
        }
    }
    if changed {
        for _ in 0..50 {
            let list = {
                let conn = hub.db.read();
                let filter = Filter {
                    printer_id: s.printer_id.clone(),
                    batch_id: s.batch_id.clone(),
                };
                match events::since(&conn, s.cursor, BATCH, &filter) {
                    Ok(list) => list,
                    Err(e) => {
                        log::warn!("event stream: reading events failed: {e}");
                        return true;
                    }
                }
            };
            if list.is_empty() {
                break;
            }
            let mut out = String::new();
            for e in &list {
                s.cursor = e.id;
                let visible = s.owner.allowed.is_empty()
                    || e.printer_id
                        .as_ref()
                        .is_some_and(|p| s.owner.allowed.iter().any(|a| a == p));
                if !visible {
                    continue;
                }
                let name = upstream_name(&e.kind);
                let data = json!({
                    "id": e.id,
                    "at": rfc3339(e.at),
                    "type": name,
                    "printer_id": e.printer_id,
                    "job_id": e.job_id,
                    "batch_id": e.batch_id,
                    "data": e.data,
                });
                out.push_str(&format!("id: {}\nevent: {name}\ndata: {data}\n\n", e.id));
            }
            if !out.is_empty() {
                if s.writer
                    .write_all(out.as_bytes())
                    .and_then(|()| s.writer.flush())
                    .is_err()
                {
                    return false;
                }
                s.last_write = now;
            }
            if list.len() < BATCH {
                break;
            }
        }
    }
    if now.saturating_duration_since(s.last_write) >= KEEP_ALIVE {
        if s.writer
            .write_all(b": keep-alive\n\n")
            .and_then(|()| s.writer.flush())
            .is_err()
        {
            return false;
        }
        s.last_write = now;
    }
    true
}

/// The owner's printer allow-list now, or `None` when its key or session
/// no longer holds.
fn still_allowed(hub: &Hub, owner: &Owner) -> Option<Vec<String>> {
    let conn = hub.db.read();
    let now = now_ms();
    if let Some(token) = &owner.session_token {
        session::lookup(&conn, token, now).ok()?;
    }
    match owner.api_key_id {
        Some(id) => {
            let row = store::get_key(&conn, &id).ok()?;
            row.usable_at(now).then(|| {
                row.allowed_printer_ids
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            })
        }
        // SSO principals carry no key to re-check.
        None => Some(owner.allowed.clone()),
    }
}

/// Upstream's event names.
pub fn upstream_name(kind: &str) -> &str {
    match kind {
        events::PRINTER_MEDIA_CHANGED => "printer.tape_changed",
        other => other,
    }
}
