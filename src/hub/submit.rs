//! Submitting labels: validate and render first (errors are synchronous),
//! then one transaction writes the batch, one stored bitmap per item
//! (`hub::bitmaps`), every job row (one per physical label, copies pointing
//! at their item's bitmap) and the idempotency record, then the ids go on
//! the printer's channel. If that hand-off fails the rows are marked failed
//! with the cause and the cause is returned.
//!
//! **Bounded memory.** Each item is rendered, checked against
//! the printer's `max_length_mm`, compressed at once and put in a
//! [`Spool`]: in memory up to [`SPOOL_MEMORY`], then in an unlinked file in
//! the data directory. The transaction reads the items back one at a time.
//! So a 500-item batch never holds more than one uncompressed label per
//! render thread, and at most [`SPOOL_MEMORY`] of compressed ones.
//!
//! **Quotas.** Labels waiting (`queued`, `paused`, `printing`)
//! are capped per printer and per API key ([`check_quotas`]): checked on the
//! read connection before rendering (cheap refusal) and again inside the
//! transaction (exact under the write mutex).

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::bitmaps::{self, Packed};
use super::events::{Changes, Writer};
pub use super::jobs::PrintOptions;
use super::jobs::{self, JobError, JobState, NewBatch, NewJob};
use super::labels::{self, ContentType, LabelData, LabelError, LabelRequest, Target};
use super::printers::Printer;
use super::{now_ms, Hub, HubError, Origin};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
pub const IDEMPOTENCY_TTL: std::time::Duration =
    std::time::Duration::from_millis(IDEMPOTENCY_TTL_MS as u64);

/// One item of a submission, typed at the API edge ([`Item::parse`]).
#[derive(Debug, Clone)]
pub struct Item {
    pub content_type: ContentType,
    pub data: LabelData,
    /// The label data as submitted (compact JSON): stored for the API.
    pub data_json: String,
    pub options: PrintOptions,
}

impl Item {
    /// Parses one submitted item. `idx` is the item's index in a batch of
    /// more than one (errors name it as render errors do).
    pub fn parse(
        content_type: &str,
        data: Value,
        options: PrintOptions,
        idx: Option<usize>,
    ) -> Result<Item, LabelError> {
        let data_json = data.to_string();
        let (content_type, data) =
            labels::parse(content_type, data).map_err(|e| of_item(e, idx))?;
        Ok(Item {
            content_type,
            data,
            data_json,
            options,
        })
    }
}

/// An error about item `idx` of a batch of more than one names the item.
fn of_item(e: LabelError, idx: Option<usize>) -> LabelError {
    match (e, idx) {
        (
            LabelError::Render {
                code,
                message,
                detail,
            },
            Some(idx),
        ) => LabelError::Render {
            code,
            message: format!("items[{idx}]: {message}"),
            detail: Some(json!({"item": idx, "detail": detail})),
        },
        (e, _) => e,
    }
}

/// The idempotency record of a request.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Route and principal: the same key from another client or for another
    /// route is a different key.
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request body (hex).
    pub fingerprint: String,
}

/// A submission.
#[derive(Debug, Clone)]
pub struct Submission {
    pub printer: Printer,
    pub items: Vec<Item>,
    /// Batch-level half-cut: `Some(false)` switches half-cuts off.
    pub half_cut_override: Option<bool>,
    pub origin: Origin,
    pub idempotency: Option<Idempotency>,
}

/// What was accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub batch_id: String,
    pub printer_id: String,
    pub queued_at: i64,
    /// Every physical label, in print order.
    pub job_ids: Vec<String>,
}

/// The result of a submission.
#[derive(Debug, Clone)]
pub enum Outcome {
    Accepted(Accepted),
    /// A retry with a known idempotency key: the first response, verbatim.
    Replayed {
        status: u16,
        body: String,
    },
}

/// Bounds of a submission.
pub const MAX_ITEMS: usize = 500;
pub const MAX_COPIES: u32 = 10;

fn check_replay(
    conn: &rusqlite::Connection,
    idem: &Idempotency,
) -> Result<Option<(u16, String)>, HubError> {
    let row: Option<(String, u16, String)> = conn
        .prepare_cached(
            "SELECT fingerprint, status, response FROM idempotency_keys
             WHERE scope = ?1 AND key = ?2 AND created_at > ?3",
        )?
        .query_row(
            // Expiry counts monotonic time across clock jumps.
            params![
                idem.scope,
                idem.key,
                super::clock::global().cutoff(IDEMPOTENCY_TTL)
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((fp, status, body)) if fp == idem.fingerprint => Ok(Some((status, body))),
        Some(_) => Err(HubError::Conflict {
            code: "idempotency_key_reused",
            message: format!(
                "Idempotency-Key `{}` was used within 24 h for a different request",
                idem.key
            ),
        }),
    }
}

/// One item, ready to insert.
struct PreparedItem {
    content_type: ContentType,
    data: String,
    options: PrintOptions,
    /// One id per copy.
    job_ids: Vec<String>,
    /// The compressed page, in the submission's spool.
    bitmap: Spooled,
}

/// A submission ready to insert: owned, so another thread can write it.
struct Prepared {
    accepted: Accepted,
    origin: Origin,
    half_cut: bool,
    model: &'static str,
    media: String,
    items: Vec<PreparedItem>,
    /// The compressed pages of `items`.
    spool: Spool,
    /// Quotas, from the configuration.
    max_per_printer: u64,
    max_per_key: u64,
    /// For messages.
    printer_slug: String,
    /// The key and the response to store for retries.
    idempotency: Option<(Idempotency, u16, String)>,
}

/// Compressed pages kept in memory before the spool goes to a file.
pub const SPOOL_MEMORY: usize = 4 << 20;

/// Where one compressed layer is in a [`Spool`].
#[derive(Debug, Clone, Copy)]
enum Loc {
    Mem { at: usize, len: usize },
    File { at: u64, len: usize },
}

/// A compressed page in a [`Spool`].
#[derive(Debug, Clone, Copy)]
struct Spooled {
    width: u32,
    height: u32,
    black: Loc,
    red: Option<Loc>,
}

/// The compressed pages of one submission: in memory up to
/// [`SPOOL_MEMORY`], then appended to a file that is unlinked as soon as it
/// is created (so nothing is left behind, even after kill -9).
struct Spool {
    mem: Vec<u8>,
    file: Option<std::fs::File>,
    file_len: u64,
    dir: std::path::PathBuf,
}

impl Spool {
    fn new(dir: std::path::PathBuf) -> Spool {
        Spool {
            mem: Vec::new(),
            file: None,
            file_len: 0,
            dir,
        }
    }

    fn put_layer(&mut self, bytes: &[u8]) -> Result<Loc, HubError> {
        use std::os::unix::fs::FileExt;
        if self.mem.len() + bytes.len() <= SPOOL_MEMORY {
            let at = self.mem.len();
            self.mem.extend_from_slice(bytes);
            return Ok(Loc::Mem {
                at,
                len: bytes.len(),
            });
        }
        let io = |error| HubError::Io {
            context: format!("spooling rendered labels in {}", self.dir.display()),
            error,
        };
        if self.file.is_none() {
            let path = self
                .dir
                .join(format!(".spool-{}", uuid::Uuid::new_v4().simple()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io)?;
            std::fs::remove_file(&path).map_err(io)?;
            self.file = Some(file);
        }
        let at = self.file_len;
        if let Some(f) = &self.file {
            f.write_all_at(bytes, at).map_err(io)?;
        }
        self.file_len += bytes.len() as u64;
        Ok(Loc::File {
            at,
            len: bytes.len(),
        })
    }

    fn put(&mut self, p: &Packed) -> Result<Spooled, HubError> {
        Ok(Spooled {
            width: p.width,
            height: p.height,
            black: self.put_layer(&p.black)?,
            red: match &p.red {
                Some(r) => Some(self.put_layer(r)?),
                None => None,
            },
        })
    }

    fn layer(&self, loc: Loc) -> Result<Vec<u8>, HubError> {
        use std::os::unix::fs::FileExt;
        match loc {
            Loc::Mem { at, len } => Ok(self.mem.get(at..at + len).unwrap_or_default().to_vec()),
            Loc::File { at, len } => {
                let mut buf = vec![0; len];
                let res = match &self.file {
                    Some(f) => f.read_exact_at(&mut buf, at),
                    None => Err(std::io::ErrorKind::NotFound.into()),
                };
                res.map_err(|error| HubError::Io {
                    context: "reading spooled labels back".into(),
                    error,
                })?;
                Ok(buf)
            }
        }
    }

    fn get(&self, s: &Spooled) -> Result<Packed, HubError> {
        Ok(Packed {
            width: s.width,
            height: s.height,
            black: self.layer(s.black)?,
            red: match s.red {
                Some(r) => Some(self.layer(r)?),
                None => None,
            },
        })
    }
}

/// Refuses `n` more waiting labels on `printer_id` (named `printer` in
/// messages) or from `api_key_id` past the configured quotas: 429
/// `printer_queue_full` / `key_queue_full` with `Retry-After`.
pub fn check_quotas(
    conn: &rusqlite::Connection,
    cfg: &super::Config,
    printer_id: &str,
    api_key_id: Option<&str>,
    n: u64,
) -> Result<(), HubError> {
    quotas(
        conn,
        cfg.max_queued_per_printer,
        cfg.max_queued_per_key,
        printer_id,
        printer_id,
        api_key_id,
        n,
    )
}

/// A waiting count for messages: past the cap only "more than" it.
fn shown(waiting: u64, cap: u64) -> String {
    if waiting > cap {
        format!("more than {cap}")
    } else {
        waiting.to_string()
    }
}

fn quotas(
    conn: &rusqlite::Connection,
    max_printer: u64,
    max_key: u64,
    printer_id: &str,
    printer: &str,
    api_key_id: Option<&str>,
    n: u64,
) -> Result<(), HubError> {
    let waiting = jobs::waiting_of_printer(conn, printer_id)?;
    if waiting + n > max_printer {
        return Err(HubError::Quota {
            code: "printer_queue_full",
            message: format!(
                "printer `{printer}` has {} labels waiting and takes at most {max_printer} \
                 (PRINTER_HUB_MAX_QUEUED_PER_PRINTER); {n} more do not fit, retry when it has printed some",
                shown(waiting, max_printer)
            ),
            retry_after_s: 30,
        });
    }
    if let Some(key) = api_key_id {
        let waiting = jobs::waiting_of_key(conn, key)?;
        if waiting + n > max_key {
            return Err(HubError::Quota {
                code: "key_queue_full",
                message: format!(
                    "this API key has {} labels waiting and may have at most {max_key} \
                     (PRINTER_HUB_MAX_QUEUED_PER_KEY); {n} more do not fit, retry when some have printed",
                    shown(waiting, max_key)
                ),
                retry_after_s: 30,
            });
        }
    }
    Ok(())
}

type Waiting = (Prepared, Arc<Answer>);

/// Where a queued submitter waits for its [`Reply`]: a plain lock and
/// condition variable, so the wait (a group commit, milliseconds) blocks at
/// once instead of spinning and yielding first as a channel's receive does.
#[derive(Default)]
struct Answer {
    reply: std::sync::Mutex<Option<Reply>>,
    ready: std::sync::Condvar,
}

impl Answer {
    fn send(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply);
        self.ready.notify_one();
    }

    /// The reply, once there is one.
    fn wait(&self) -> Reply {
        let mut slot = self.reply.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reply) = slot.take() {
                return reply;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The reply if there is one now.
    fn take(&self) -> Option<Reply> {
        self.reply.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What a queued submitter is told.
enum Reply {
    /// Its submission was written (or failed) in a group.
    Done(Result<Outcome, HubError>),
    /// It leads the next group (its own submission is still queued).
    Lead,
}

/// Group commit for submissions: concurrent submissions share one
/// transaction (one fsync) instead of queueing for one each.
///
/// **Invariant:** at most one submitter leads. A submitter queues its work;
/// if nobody leads, it leads, else it waits for its reply. The leader takes
/// the queue (its own work included), writes every submission in it (each
/// in its own savepoint, so one failure rolls back only itself), commits,
/// and replies to each; then it hands the lead to the first submitter
/// queued meanwhile (who writes the next group) or, with none, gives it up,
/// both under the queue's lock, so no queued work is left without a leader.
/// A leader that panics hands the lead on the same way ([`Leading`]).
#[derive(Default)]
pub struct GroupCommit {
    queue: std::sync::Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    leading: bool,
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Submissions queued for the next group.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// The lead, handed on when dropped.
struct Leading<'a>(&'a GroupCommit);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        // The first one queued leads next (its submitter waits for a reply
        // until it has one).
        match queue.waiting.first() {
            Some((_, next)) => next.send(Reply::Lead),
            None => queue.leading = false,
        }
    }
}

fn commit_grouped(hub: &Hub, prepared: Prepared) -> Result<Outcome, HubError> {
    let lost = || HubError::Commit("the submission was not written".into());
    let answer = Arc::new(Answer::default());
    let lead = {
        let mut queue = hub.submits.lock();
        queue.waiting.push((prepared, answer.clone()));
        !std::mem::replace(&mut queue.leading, true)
    };
    if !lead {
        match answer.wait() {
            Reply::Done(res) => return res,
            Reply::Lead => {}
        }
    }
    let leading = Leading(&hub.submits);
    let group = std::mem::take(&mut hub.submits.lock().waiting);
    let mut changes = Changes::default();
    {
        let mut conn = hub.db.writer();
        let results = write_group(&hub.db, &mut conn, &group, &mut changes);
        hub.db.note_group(&results);
        match results {
            Ok(results) => {
                for ((_, reply), res) in group.into_iter().zip(results) {
                    reply.send(Reply::Done(res));
                }
            }
            Err(e) => {
                for (_, reply) in group {
                    reply.send(Reply::Done(Err(e.for_group())));
                }
            }
        }
    }
    drop(leading);
    hub.notify(&changes);
    match answer.take() {
        Some(Reply::Done(res)) => res,
        _ => Err(lost()),
    }
}

/// Writes a group in one transaction and commits it. Each submission is
/// checked (replay, quotas: reads only) before its rows are written, so
/// one refused leaves nothing to undo. Only a write that fails halfway (a
/// disk error) rolls the transaction back; the group is then written again
/// with each submission in its own savepoint, so that failure rolls back
/// only its own. (Savepoints on every submission cost a tenth of a
/// `POST /print`: their journal of pages written before.)
fn write_group(
    db: &super::Db,
    conn: &mut rusqlite::Connection,
    group: &[Waiting],
    changes: &mut Changes,
) -> Result<Vec<Result<Outcome, HubError>>, HubError> {
    db.check_identity()?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    let mut written = Changes::default();
    let mut whole = true;
    for (prepared, _) in group {
        match write_one(&mut Writer::new(&tx, &mut written), prepared) {
            Written::Decided(res) => results.push(res),
            Written::Halfway(_) => {
                whole = false;
                break;
            }
        }
    }
    if whole {
        changes.merge(written);
        // Db::commit times the commit for the metrics.
        db.commit(tx)?;
        return Ok(results);
    }
    drop(tx);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    // Prepared once per connection (`execute_batch` parsed them each time).
    let run = |sql: &str| tx.prepare_cached(sql)?.execute([]).map(drop);
    for (prepared, _) in group {
        run("SAVEPOINT submit")?;
        let mut mine = Changes::default();
        let res = match write_one(&mut Writer::new(&tx, &mut mine), prepared) {
            Written::Decided(res) => res,
            Written::Halfway(e) => Err(e),
        };
        if res.is_ok() {
            run("RELEASE submit")?;
            changes.merge(mine);
        } else {
            run("ROLLBACK TO submit")?;
            run("RELEASE submit")?;
        }
        results.push(res);
    }
    db.commit(tx)?;
    Ok(results)
}

/// How writing one submission ended.
enum Written {
    /// Accepted, replayed, or refused before anything was written.
    Decided(Result<Outcome, HubError>),
    /// A write failed after others of it were made.
    Halfway(HubError),
}

fn write_one(w: &mut Writer<'_, '_>, p: &Prepared) -> Written {
    match check(w, p) {
        Ok(None) => match store(w, p) {
            Ok(outcome) => Written::Decided(Ok(outcome)),
            Err(e) => Written::Halfway(e),
        },
        Ok(Some(replayed)) => Written::Decided(Ok(replayed)),
        Err(e) => Written::Decided(Err(e)),
    }
}

/// What decides a submission before anything is written (reads only): a
/// replayed idempotent answer (`Some`), a quota refusal (`Err`), or go
/// ahead (`None`).
fn check(w: &mut Writer<'_, '_>, p: &Prepared) -> Result<Option<Outcome>, HubError> {
    if let Some((idem, _, _)) = &p.idempotency {
        if let Some((status, body)) = check_replay(w.tx, idem)? {
            return Ok(Some(Outcome::Replayed { status, body }));
        }
    }
    let a = &p.accepted;
    quotas(
        w.tx,
        p.max_per_printer,
        p.max_per_key,
        &a.printer_id,
        &p.printer_slug,
        p.origin.api_key_id.as_deref(),
        a.job_ids.len() as u64,
    )?;
    Ok(None)
}

/// Writes one checked submission: the batch, one row per label with its
/// `job.created` event, and the idempotency record.
fn store(w: &mut Writer<'_, '_>, p: &Prepared) -> Result<Outcome, HubError> {
    let a = &p.accepted;
    let batch = NewBatch {
        id: &a.batch_id,
        printer_id: &a.printer_id,
        origin: &p.origin,
        n_jobs: a.job_ids.len(),
        half_cut: p.half_cut,
        created_at: a.queued_at,
    };
    jobs::insert_batch(w, &batch)?;
    let mut last_event = 0;
    for (pos, item) in p.items.iter().enumerate() {
        // One stored bitmap per item, read back from the spool one at a
        // time; every copy points at it.
        let bitmap_id = bitmaps::insert(w.tx, &p.spool.get(&item.bitmap)?)?;
        for (copy, job_id) in item.job_ids.iter().enumerate() {
            let job = NewJob {
                id: job_id,
                position: pos,
                copy_index: copy,
                copy_total: item.job_ids.len(),
                content_type: item.content_type.as_str(),
                label_data: &item.data,
                options: &item.options,
                model: p.model,
                media: &p.media,
                bitmap_id: Some(bitmap_id),
                retry_of: None,
            };
            last_event = jobs::insert_job(w, &batch, &job)?;
        }
    }
    jobs::bump_batch(w, &a.batch_id, last_event)?;
    if let Some((idem, status, body)) = &p.idempotency {
        w.tx.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (scope, key, fingerprint, status, response, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![idem.scope, idem.key, idem.fingerprint, status, body, a.queued_at])?;
    }
    Ok(Outcome::Accepted(a.clone()))
}

/// What limits a rendered label beyond the renderer's own checks.
struct LengthLimit<'a> {
    /// Dots along the feed per inch on this medium.
    dpi_feed: u32,
    max_mm: i64,
    /// The model's limit in mm (`printers::model_max_length_mm`).
    model_max_mm: i64,
    printer: &'a str,
}

impl LengthLimit<'_> {
    /// 422 `label_too_long`, naming the length, when the page is longer
    /// than the printer's `max_length_mm`.
    fn check(&self, page: &labels::RenderedPage) -> Result<(), LabelError> {
        let dots = u64::from(page.black.width());
        let max_dots = (self.max_mm.max(0) as u64) * u64::from(self.dpi_feed) * 10 / 254;
        // At (or above) the model's own limit the renderer's check is the
        // one that counts (3000 mm rounds the QL-1100's 35,434 dots down).
        if dots <= max_dots || self.max_mm >= self.model_max_mm {
            return Ok(());
        }
        let mm = (dots * 254).div_ceil(u64::from(self.dpi_feed.max(1)) * 10);
        Err(LabelError::Render {
            code: "label_too_long",
            message: format!(
                "the label would be {mm} mm long; printer `{}` takes labels up to {} mm \
                 (max_length_mm): shorten the text or raise the printer's max_length_mm",
                self.printer, self.max_mm
            ),
            detail: Some(json!({"length_mm": mm, "max_length_mm": self.max_mm})),
        })
    }
}

/// Renders every item (copies share their item's page), on up to one
/// thread per core for large batches, compressing each page as soon as it
/// is drawn and putting it in `spool`. The first error in item order wins.
fn render_all(
    hub: &Hub,
    target: &Target,
    limit: &LengthLimit<'_>,
    items: &[Item],
    spool: &mut Spool,
) -> Result<Vec<Spooled>, HubError> {
    let shared = std::sync::Mutex::new(std::mem::replace(spool, Spool::new(spool.dir.clone())));
    let render_one = |idx: usize, item: &Item| -> Result<Spooled, HubError> {
        let req = LabelRequest {
            target,
            content_type: item.content_type,
            data: &item.data,
        };
        let page = hub
            .renderer
            .render(&req)
            .and_then(|page| limit.check(&page).map(|()| page))
            .map_err(|e| of_item(e, (items.len() > 1).then_some(idx)))?;
        let packed = bitmaps::compress(&page);
        drop(page);
        shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(&packed)
    };
    // Only batches of 32 or more labels split; asking the OS (which reads
    // cgroup files) is skipped for the single labels of /print.
    let threads = if items.len() < 32 {
        1
    } else {
        cores().min(items.len() / 16).max(1)
    };
    let results: Vec<Result<Spooled, HubError>> = if threads == 1 {
        let mut out = Vec::with_capacity(items.len());
        for (idx, item) in items.iter().enumerate() {
            let r = render_one(idx, item);
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    } else {
        let chunk = items.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .enumerate()
                .map(|(n, part)| {
                    let render_one = &render_one;
                    s.spawn(move || {
                        // A chunk stops at its first error: the errors of
                        // later items cannot be the first in item order.
                        let mut out = Vec::with_capacity(part.len());
                        for (i, item) in part.iter().enumerate() {
                            let r = render_one(n * chunk + i, item);
                            let failed = r.is_err();
                            out.push(r);
                            if failed {
                                break;
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(HubError::Label(LabelError::Render {
                            code: "internal_render_error",
                            message: "the renderer panicked".into(),
                            detail: None,
                        }))]
                    })
                })
                .collect()
        })
    };
    *spool = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    results.into_iter().collect()
}

/// Validates, renders, stores and hands off a submission. `respond` makes
/// the (status, body) of the success response, stored for idempotent
/// retries in the same transaction as the jobs.
pub fn submit(
    hub: &Hub,
    mut sub: Submission,
    respond: &dyn Fn(&Accepted) -> (u16, String),
) -> Result<Outcome, HubError> {
    if let Some(idem) = &sub.idempotency {
        if let Some((status, body)) = check_replay(&hub.db.read(), idem)? {
            return Ok(Outcome::Replayed { status, body });
        }
    }
    let printer = &sub.printer;
    if !printer.enabled {
        return Err(HubError::Conflict {
            code: "printer_disabled",
            message: format!("printer `{}` is disabled", printer.slug),
        });
    }
    if sub.items.is_empty() || sub.items.len() > MAX_ITEMS {
        return Err(HubError::invalid(
            "items",
            format!("1 to {MAX_ITEMS} items, got {}", sub.items.len()),
        ));
    }
    for (idx, item) in sub.items.iter().enumerate() {
        if !(1..=MAX_COPIES).contains(&item.options.copies) {
            return Err(HubError::invalid(
                &format!("items[{idx}].options.copies"),
                format!("1 to {MAX_COPIES}, got {}", item.options.copies),
            ));
        }
    }
    let model = labels::model_by_name(&printer.model)?;
    let Some(media) = printer.loaded_media().map(str::to_string) else {
        return Err(HubError::Conflict {
            code: "no_media_loaded",
            message: format!(
                "printer `{}` reports no loaded media and none is configured",
                printer.slug
            ),
        });
    };

    // Quotas first: a full queue is refused before any rendering.
    let n_labels: u64 = sub.items.iter().map(|i| u64::from(i.options.copies)).sum();
    quotas(
        &hub.db.read(),
        hub.config.max_queued_per_printer,
        hub.config.max_queued_per_key,
        &printer.id,
        &printer.slug,
        sub.origin.api_key_id.as_deref(),
        n_labels,
    )?;
    let target = Target::on(model, &media).map_err(|e| HubError::Label(LabelError::Media(e)))?;
    let limit = LengthLimit {
        dpi_feed: target.geometry.dpi_feed,
        max_mm: printer.max_length_mm,
        model_max_mm: super::printers::model_max_length_mm(model),
        printer: &printer.slug,
    };

    // Render (and compress) everything before touching the database.
    let t_render = std::time::Instant::now();
    let mut spool = Spool::new(hub.config.data_dir.clone());
    let pages = render_all(hub, &target, &limit, &sub.items, &mut spool)?;
    let render_ms = t_render.elapsed().as_secs_f64() * 1000.0;
    let t_store = std::time::Instant::now();

    let half_cut = model.half_cut
        && match sub.half_cut_override {
            Some(v) => v,
            None => printer.half_cut || sub.items.iter().any(|i| i.options.half_cut),
        };
    // Everything the transaction writes is prepared outside it: ids, times,
    // JSON, compressed bitmaps and the response stored for idempotent retries.
    let now = now_ms();
    let batch_id = jobs::new_id();
    let prepared_items: Vec<PreparedItem> = std::mem::take(&mut sub.items)
        .into_iter()
        .zip(pages)
        .map(|(item, bitmap)| PreparedItem {
            content_type: item.content_type,
            data: item.data_json,
            options: item.options,
            job_ids: (0..item.options.copies).map(|_| jobs::new_id()).collect(),
            bitmap,
        })
        .collect();
    let accepted = Accepted {
        batch_id,
        printer_id: printer.id.clone(),
        queued_at: now,
        job_ids: prepared_items
            .iter()
            .flat_map(|i| i.job_ids.iter().cloned())
            .collect(),
    };
    let idempotency = sub.idempotency.clone().map(|idem| {
        let (status, body) = respond(&accepted);
        (idem, status, body)
    });
    let prepared = Prepared {
        accepted,
        origin: sub.origin.clone(),
        half_cut,
        model: model.name,
        media: media.clone(),
        items: prepared_items,
        spool,
        max_per_printer: hub.config.max_queued_per_printer,
        max_per_key: hub.config.max_queued_per_key,
        printer_slug: printer.slug.clone(),
        idempotency,
    };
    let accepted = commit_grouped(hub, prepared)?;

    let Outcome::Accepted(accepted) = accepted else {
        return Ok(accepted);
    };
    log::debug!(
        "batch {}: {} labels rendered in {render_ms:.1} ms, stored in {:.1} ms",
        accepted.batch_id,
        accepted.job_ids.len(),
        t_store.elapsed().as_secs_f64() * 1000.0
    );
    if let Err(message) = hub.threads.hand_off(&printer.id, &accepted.job_ids) {
        let cause = JobError::new("handoff_failed", message.clone());
        hub.write(|w| {
            for id in &accepted.job_ids {
                jobs::transition(w, id, &[JobState::Queued], JobState::Failed, Some(&cause))?.ok();
            }
            Ok(())
        })?;
        return Err(HubError::Handoff {
            printer: printer.slug.clone(),
            message,
        });
    }
    Ok(Outcome::Accepted(accepted))
}

/// CPUs available to the process, read once (`available_parallelism` reads
/// cgroup files on every call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}
