//! Jobs: the one state machine, its guarded transitions, and the queries the
//! API and the printer threads need.
//!
//! **State machine** (the same words in the database, the API and events):
//!
//! ```text
//! queued  -> printing | paused | cancelled | failed
//! paused  -> queued | cancelled
//! printing -> done | failed | queued (printer error before the label left) | failed_restart (recovery)
//! done, failed, cancelled, failed_restart: terminal (retry makes a new job)
//! ```
//!
//! **Invariants.** [`insert`] is the only code that writes batch and job
//! rows, and [`transition`] the only code that changes `jobs.state` after
//! that (recovery too, one job at a time); it runs one UPDATE guarded by
//! the from-state and writes the event in the same transaction.
//! [`JobState`] is the one list of states: the schema's CHECK is tested
//! against it.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use super::events::{self, Subject, Writer};
use super::{now_ms, HubError, Origin};

/// Per-item print options (upstream `PrintOptions`). Stored as given in
/// `jobs.options` (returned by the API) and, for the printer thread, in the
/// typed columns `auto_cut` and `high_res`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrintOptions {
    pub copies: u32,
    pub auto_cut: bool,
    pub high_resolution: bool,
    pub half_cut: bool,
    pub last_page: bool,
}

impl Default for PrintOptions {
    fn default() -> PrintOptions {
        PrintOptions {
            copies: 1,
            auto_cut: true,
            high_resolution: false,
            half_cut: false,
            last_page: true,
        }
    }
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Paused,
    Printing,
    Done,
    Failed,
    Cancelled,
    FailedRestart,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Paused,
        JobState::Printing,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
        JobState::FailedRestart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Paused => "paused",
            JobState::Printing => "printing",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::FailedRestart => "failed_restart",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No edge leaves the state (retry makes a new job); a terminal job
    /// has `finished_at`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled | JobState::FailedRestart
        )
    }

    /// `states` as an SQL list of string literals (`'queued', 'paused'`).
    pub fn sql_list(states: &[JobState]) -> String {
        let quoted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        quoted.join(", ")
    }

    /// Whether the state machine has the edge `self -> to`.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Queued, Printing | Paused | Cancelled | Failed)
                | (Paused, Queued | Cancelled)
                | (Printing, Done | Failed | Queued | FailedRestart)
        )
    }
}

/// A structured job error: stored in `error_code`, `error_detail`, `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub code: String,
    pub message: String,
    pub detail: Option<Value>,
}

impl JobError {
    pub fn new(code: &str, message: impl Into<String>) -> JobError {
        JobError {
            code: code.to_string(),
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: Value) -> JobError {
        self.detail = Some(detail);
        self
    }
}

/// A job row without its bitmap.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub id: String,
    pub printer_id: String,
    pub batch_id: String,
    pub position: i64,
    pub copy_index: i64,
    pub copy_total: i64,
    pub state: JobState,
    pub content_type: String,
    pub label_data: Value,
    pub options: Value,
    pub model: String,
    pub media: String,
    pub error_code: Option<String>,
    pub error_detail: Option<Value>,
    pub error: Option<String>,
    pub api_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub retry_of: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub version: i64,
}

pub(crate) const JOB_COLUMNS: &str =
    "seq, id, printer_id, batch_id, position, copy_index, copy_total, \
    state, content_type, label_data, options, model, media, error_code, error_detail, error, \
    api_key_id, source_ip, retry_of, created_at, updated_at, started_at, finished_at, version";

fn json_col(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

pub(crate) fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = r.get(7)?;
    Ok(Job {
        seq: r.get(0)?,
        id: r.get(1)?,
        printer_id: r.get(2)?,
        batch_id: r.get(3)?,
        position: r.get(4)?,
        copy_index: r.get(5)?,
        copy_total: r.get(6)?,
        // The CHECK constraint keeps this total; a foreign value reads as
        // failed rather than panicking.
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        content_type: r.get(8)?,
        label_data: json_col(r.get(9)?).unwrap_or(Value::Null),
        options: json_col(r.get(10)?).unwrap_or(Value::Null),
        model: r.get(11)?,
        media: r.get(12)?,
        error_code: r.get(13)?,
        error_detail: json_col(r.get(14)?),
        error: r.get(15)?,
        api_key_id: r.get(16)?,
        source_ip: r.get(17)?,
        retry_of: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        started_at: r.get(21)?,
        finished_at: r.get(22)?,
        version: r.get(23)?,
    })
}

/// Loads one job.
pub fn get(conn: &Connection, id: &str) -> Result<Job, HubError> {
    conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id], job_from_row)
        .optional()?
        .ok_or_else(|| HubError::not_found("job", id))
}

/// A batch row to write ([`insert_batch`]).
pub(crate) struct NewBatch<'a> {
    pub id: &'a str,
    pub printer_id: &'a str,
    pub origin: &'a Origin,
    pub n_jobs: usize,
    pub half_cut: bool,
    pub created_at: i64,
}

/// One job row (one physical label) of a [`NewBatch`] ([`insert_job`]).
pub(crate) struct NewJob<'a> {
    pub id: &'a str,
    pub position: usize,
    pub copy_index: usize,
    pub copy_total: usize,
    pub content_type: &'a str,
    /// The label data as submitted (JSON text); only the API reads it.
    pub label_data: &'a str,
    pub options: &'a PrintOptions,
    pub model: &'a str,
    pub media: &'a str,
    pub bitmap_id: Option<i64>,
    pub retry_of: Option<&'a str>,
}

/// A new job or batch id: a UUIDv7, ordered by time, so the unique
/// indexes on ids (and on `batch_id`) take each new row at their right
/// edge, the page the previous row dirtied, instead of on a random page
/// each (with v4 ids a group commit wrote a page per index per job).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Writes a batch row. Its jobs follow with [`insert_job`], then
/// [`bump_batch`] with the last event.
pub(crate) fn insert_batch(w: &Writer<'_, '_>, b: &NewBatch<'_>) -> Result<(), HubError> {
    w.tx.prepare_cached(
        "INSERT INTO batches (id, printer_id, created_by, api_key_id, source_ip, n_jobs, half_cut, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        b.id,
        b.printer_id,
        b.origin.created_by,
        b.origin.api_key_id,
        b.origin.source_ip,
        b.n_jobs as i64,
        b.half_cut,
        b.created_at
    ])?;
    Ok(())
}

/// Writes one `queued` job of batch `b` and its `job.created` event;
/// returns the event id (the job's version).
pub(crate) fn insert_job(
    w: &mut Writer<'_, '_>,
    b: &NewBatch<'_>,
    j: &NewJob<'_>,
) -> Result<i64, HubError> {
    let mut data = json!({"job_id": j.id, "batch_id": b.id, "printer_id": b.printer_id,
                          "to_state": JobState::Queued.as_str()});
    match j.retry_of {
        Some(old) => data["retry_of"] = json!(old),
        None => {
            data["position"] = json!(j.position);
            data["copy_index"] = json!(j.copy_index);
        }
    }
    let event = w.event(
        events::JOB_CREATED,
        Subject {
            printer_id: Some(b.printer_id),
            job_id: Some(j.id),
            batch_id: Some(b.id),
        },
        &data,
    )?;
    w.tx.prepare_cached(
        "INSERT INTO jobs (id, printer_id, batch_id, position, copy_index, copy_total, state,
             content_type, label_data, options, auto_cut, high_res, model, media, bitmap_id,
             api_key_id, source_ip, retry_of, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?18, ?19, ?19, ?20)",
    )?
    .execute(params![
        j.id,
        b.printer_id,
        b.id,
        j.position as i64,
        j.copy_index as i64,
        j.copy_total as i64,
        JobState::Queued.as_str(),
        j.content_type,
        j.label_data,
        serde_json::to_string(j.options).unwrap_or_default(),
        j.options.auto_cut,
        j.options.high_resolution,
        j.model,
        j.media,
        j.bitmap_id,
        b.origin.api_key_id,
        b.origin.source_ip,
        j.retry_of,
        b.created_at,
        event
    ])?;
    Ok(event)
}

/// What the printer thread needs of a job: no label data, no JSON.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    pub id: String,
    pub batch_id: String,
    pub state: JobState,
    pub media: String,
    pub auto_cut: bool,
    pub high_res: bool,
    /// The batch's half-cut setting (`batches.half_cut`).
    pub half_cut: bool,
    /// Length of the stored label in dots (0 when the bitmap is missing).
    pub width: i64,
}

/// Loads the [`QueuedJob`] view of one job.
pub fn queued(conn: &Connection, id: &str) -> Result<QueuedJob, HubError> {
    conn.prepare_cached(
        "SELECT j.id, j.batch_id, j.state, j.media, j.auto_cut, j.high_res, b.half_cut,
                coalesce(m.width, 0)
           FROM jobs j JOIN batches b ON b.id = j.batch_id
           LEFT JOIN bitmaps m ON m.id = j.bitmap_id
          WHERE j.id = ?1",
    )?
    .query_row([id], |r| {
        let state: String = r.get(2)?;
        Ok(QueuedJob {
            id: r.get(0)?,
            batch_id: r.get(1)?,
            state: JobState::parse(&state).unwrap_or(JobState::Failed),
            media: r.get(3)?,
            auto_cut: r.get(4)?,
            high_res: r.get(5)?,
            half_cut: r.get(6)?,
            width: r.get(7)?,
        })
    })
    .optional()?
    .ok_or_else(|| HubError::not_found("job", id))
}

/// The rendered label of a job, as stored.
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub width: u32,
    pub height: u32,
    pub black: Vec<u8>,
    pub red: Option<Vec<u8>>,
}

/// Loads a job's bitmap (decompressed; a damaged row reads with an empty
/// layer, which `labels::unpack` refuses). See `hub::bitmaps`.
pub fn page(conn: &Connection, id: &str) -> Result<StoredPage, HubError> {
    super::bitmaps::of_job(conn, id)
}

/// Waiting jobs (queued, paused, printing) of one printer: what the
/// per-printer quota needs. One row read: the count is kept by the
/// triggers of `sql/0016_waiting_counts.sql`.
pub fn waiting_of_printer(conn: &Connection, printer_id: &str) -> Result<u64, HubError> {
    count_waiting(
        conn,
        "SELECT n FROM waiting_per_printer WHERE printer_id = ?1",
        printer_id,
    )
}

/// Waiting jobs submitted with one API key (the per-key quota), kept like
/// [`waiting_of_printer`].
pub fn waiting_of_key(conn: &Connection, api_key_id: &str) -> Result<u64, HubError> {
    count_waiting(
        conn,
        "SELECT n FROM waiting_per_key WHERE api_key_id = ?1",
        api_key_id,
    )
}

/// Reads one of the waiting counts above for `owner` (none: 0).
fn count_waiting(conn: &Connection, sql: &str, owner: &str) -> Result<u64, HubError> {
    let n: Option<i64> = conn
        .prepare_cached(sql)?
        .query_row(params![owner], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// One page of a printer's queue (printing, queued, paused) in queue
/// order, after the job with `seq = after`: at most `limit` jobs and
/// [`LIST_READ_BYTES`] of stored JSON. The second value is the cursor of
/// the next page.
pub fn queue_page(
    conn: &Connection,
    printer_id: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<Job>, Option<i64>), HubError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS}, length(label_data) + length(options) FROM jobs INDEXED BY jobs_printer_waiting
          WHERE printer_id = ?1 AND state IN ('queued', 'paused', 'printing') AND seq > ?2
          ORDER BY seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = limit.max(1);
    collect_bounded(
        &mut stmt,
        params![printer_id, after.unwrap_or(0), limit as i64 + 1],
        limit,
    )
}

/// What a successful transition changed.
#[derive(Debug, Clone)]
pub struct Moved {
    pub from: JobState,
    pub printer_id: String,
    pub batch_id: String,
    pub event_id: i64,
}

/// Moves job `id` to `to` if its state is one of `from`. Returns
/// `Ok(Err(current))` (nothing written) when it is not. `error` is stored
/// (or cleared when `None`).
pub fn transition(
    w: &mut Writer<'_, '_>,
    id: &str,
    from: &[JobState],
    to: JobState,
    error: Option<&JobError>,
) -> Result<Result<Moved, JobState>, HubError> {
    let row: Option<(String, String, String)> =
        w.tx.prepare_cached("SELECT state, printer_id, batch_id FROM jobs WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
    let Some((state, printer_id, batch_id)) = row else {
        return Err(HubError::not_found("job", id));
    };
    let current = JobState::parse(&state).unwrap_or(JobState::Failed);
    if !from.contains(&current) || !current.can_become(to) {
        return Ok(Err(current));
    }
    let mut data = json!({
        "job_id": id,
        "batch_id": batch_id,
        "printer_id": printer_id,
        "from_state": current.as_str(),
        "to_state": to.as_str(),
        "error_code": error.map(|e| e.code.as_str()),
    });
    if let Some(detail) = error.and_then(|e| e.detail.as_ref()) {
        data["error_detail"] = detail.clone();
    }
    let event_id = w.event(
        events::JOB_STATE_CHANGED,
        Subject {
            printer_id: Some(&printer_id),
            job_id: Some(id),
            batch_id: Some(&batch_id),
        },
        &data,
    )?;
    let now = now_ms();
    let n =
        w.tx.prepare_cached(
            "UPDATE jobs SET state = ?1, updated_at = ?2, version = ?3,
             started_at = coalesce(?9, started_at), finished_at = ?10,
             error_code = ?4, error_detail = ?5, error = ?6
         WHERE id = ?7 AND state = ?8",
        )?
        .execute(params![
            to.as_str(),
            now,
            event_id,
            error.map(|e| e.code.as_str()),
            error.and_then(|e| e.detail.as_ref()).map(|d| d.to_string()),
            error.map(|e| e.message.as_str()),
            id,
            current.as_str(),
            (to == JobState::Printing).then_some(now),
            to.is_terminal().then_some(now),
        ])?;
    if n != 1 {
        // Cannot happen under the connection mutex; refuse rather than
        // write an event for a change that did not happen.
        return Err(HubError::Db(rusqlite::Error::StatementChangedRows(n)));
    }
    bump_batch(w, &batch_id, event_id)?;
    Ok(Ok(Moved {
        from: current,
        printer_id,
        batch_id,
        event_id,
    }))
}

/// Raises a batch's version to `event_id` (the last event of its jobs).
pub(crate) fn bump_batch(
    w: &Writer<'_, '_>,
    batch_id: &str,
    event_id: i64,
) -> Result<(), HubError> {
    w.tx.prepare_cached("UPDATE batches SET version = max(version, ?1) WHERE id = ?2")?
        .execute(params![event_id, batch_id])?;
    Ok(())
}

/// The most stored JSON (label data + options) one list read keeps: rows
/// stop there (at least one is read), so a page of jobs carrying big
/// uploaded images never holds more than this plus one row.
pub const LIST_READ_BYTES: i64 = 1 << 20;

/// Reads jobs (each row: [`JOB_COLUMNS`], then the byte size of its JSON)
/// until `limit` rows, or [`LIST_READ_BYTES`], or the end. The second value
/// is the `seq` of the last row kept when more rows follow.
fn collect_bounded(
    stmt: &mut rusqlite::CachedStatement<'_>,
    args: impl rusqlite::Params,
    limit: usize,
) -> Result<(Vec<Job>, Option<i64>), HubError> {
    let mut rows = stmt.query(args)?;
    let mut jobs = Vec::new();
    let mut bytes = 0i64;
    while let Some(row) = rows.next()? {
        let size: i64 = row.get(24)?;
        if jobs.len() == limit || (!jobs.is_empty() && bytes + size > LIST_READ_BYTES) {
            let next = jobs.last().map(|j: &Job| j.seq);
            return Ok((jobs, next));
        }
        bytes += size;
        jobs.push(job_from_row(row)?);
    }
    Ok((jobs, None))
}

/// Filters and paging of `GET /api/jobs`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub state: Option<JobState>,
    pub printer_id: Option<String>,
    pub batch_id: Option<String>,
    /// Only jobs created at or after this time (ms).
    pub since: Option<i64>,
    /// Only jobs older than this cursor (a `seq` from a previous page).
    pub before: Option<i64>,
    pub limit: usize,
}

/// Jobs newest first. The second value is the cursor of the next page.
///
/// The WHERE clause names only the filters given, so SQLite can walk the
/// matching index (`jobs_state`, `jobs_printer_state`, `jobs_batch`)
/// instead of scanning every row backwards for a rare match.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<(Vec<Job>, Option<i64>), HubError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(st) = q.state {
        clauses.push("state = ?");
        args.push(st.as_str().to_string().into());
    }
    if let Some(p) = &q.printer_id {
        clauses.push("printer_id = ?");
        args.push(p.clone().into());
    }
    if let Some(b) = &q.batch_id {
        clauses.push("batch_id = ?");
        args.push(b.clone().into());
    }
    if let Some(t) = q.since {
        clauses.push("created_at >= ?");
        args.push(t.into());
    }
    if let Some(c) = q.before {
        clauses.push("seq < ?");
        args.push(c.into());
    }
    let limit = q.limit.max(1);
    args.push((limit as i64 + 1).into());
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {JOB_COLUMNS}, length(label_data) + length(options) FROM jobs {filter}
         ORDER BY seq DESC LIMIT ?"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    collect_bounded(&mut stmt, rusqlite::params_from_iter(args), limit)
}

/// The ids of a printer's jobs in the given states, in queue order.
pub fn of_printer(
    conn: &Connection,
    printer_id: &str,
    states: &[JobState],
) -> Result<Vec<String>, HubError> {
    // A literal list: one state is an equality, so the rows come in `seq`
    // order off `jobs_printer_state` without a sort.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id FROM jobs WHERE printer_id = ?1 AND state IN ({}) ORDER BY seq",
        JobState::sql_list(states)
    ))?;
    let rows = stmt.query_map([printer_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A batch row.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub printer_id: String,
    pub created_by: Option<String>,
    pub n_jobs: i64,
    pub created_at: i64,
    pub version: i64,
}

/// A batch with its jobs in print order.
#[derive(Debug, Clone)]
pub struct BatchSnapshot {
    pub batch: Batch,
    pub jobs: Vec<Job>,
}

impl BatchSnapshot {
    /// Jobs in each state.
    pub fn count(&self, state: JobState) -> usize {
        self.jobs.iter().filter(|j| j.state == state).count()
    }

    /// No job will change by itself any more.
    pub fn all_terminal(&self) -> bool {
        self.jobs.iter().all(|j| j.state.is_terminal())
    }
}

/// Cancels every queued and paused job of a printer inside `w`'s
/// transaction (read there, so none is missed or cancelled twice).
/// Returns how many.
pub fn cancel_waiting(w: &mut Writer<'_, '_>, printer_id: &str) -> Result<usize, HubError> {
    let waiting: Vec<String> =
        w.tx.prepare_cached(
            "SELECT id FROM jobs WHERE printer_id = ?1 AND state IN ('queued', 'paused')",
        )?
        .query_map(params![printer_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for id in &waiting {
        let from = [JobState::Queued, JobState::Paused];
        if transition(w, id, &from, JobState::Cancelled, None)?.is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// The printer a job belongs to (the gate's question: one indexed column,
/// not the job's label data).
pub fn printer_of_job(conn: &Connection, id: &str) -> Result<Option<String>, HubError> {
    Ok(conn
        .prepare_cached("SELECT printer_id FROM jobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

pub fn batch(conn: &Connection, id: &str) -> Result<Batch, HubError> {
    conn.prepare_cached(
        "SELECT id, printer_id, created_by, n_jobs, created_at, version FROM batches WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(Batch {
            id: r.get(0)?,
            printer_id: r.get(1)?,
            created_by: r.get(2)?,
            n_jobs: r.get(3)?,
            created_at: r.get(4)?,
            version: r.get(5)?,
        })
    })
    .optional()?
    .ok_or_else(|| HubError::not_found("batch", id))
}

/// Loads a batch and its jobs (position, then copy order).
pub fn batch_snapshot(conn: &Connection, id: &str) -> Result<BatchSnapshot, HubError> {
    let batch = batch(conn, id)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ?1 ORDER BY position, copy_index"
    ))?;
    let jobs = stmt
        .query_map([id], job_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BatchSnapshot { batch, jobs })
}

/// The ids of a batch's jobs still in `queued`, in print order.
pub fn queued_of_batch(conn: &Connection, batch_id: &str) -> Result<Vec<String>, HubError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM jobs WHERE batch_id = ?1 AND state = 'queued' ORDER BY position, copy_index",
    )?;
    let ids = stmt
        .query_map([batch_id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// Upstream's `GET /api/jobs?since=<time>`: jobs created
/// at or after `q.since`, **oldest first**, at most `q.limit`, so a client
/// that asks again with the `created_at` of the last job it showed reaches
/// newer jobs. The second value is the `seq` of the last row when more
/// follow (the next page's `after` cursor).
pub fn list_since_oldest_first(
    conn: &Connection,
    q: &ListQuery,
    after: Option<i64>,
) -> Result<(Vec<Job>, Option<i64>), HubError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR printer_id = ?2)
           AND (?3 IS NULL OR batch_id = ?3) AND created_at >= ?4
           AND (?5 IS NULL OR seq > ?5)
         ORDER BY seq LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = q.limit.max(1);
    let rows = stmt.query_map(
        params![
            q.state.map(JobState::as_str),
            q.printer_id,
            q.batch_id,
            q.since.unwrap_or(0),
            after,
            limit as i64 + 1
        ],
        job_from_row,
    )?;
    let mut jobs: Vec<Job> = rows.collect::<Result<_, _>>()?;
    let next = if jobs.len() > limit {
        jobs.truncate(limit);
        jobs.last().map(|j| j.seq)
    } else {
        None
    };
    Ok((jobs, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_uuids_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let id = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn states_round_trip_and_edges() {
        for st in JobState::ALL {
            assert_eq!(JobState::parse(st.as_str()), Some(st));
        }
        assert!(JobState::Queued.can_become(JobState::Printing));
        assert!(JobState::Paused.can_become(JobState::Queued));
        assert!(!JobState::Done.can_become(JobState::Queued));
        assert!(!JobState::Cancelled.can_become(JobState::Printing));
        assert!(!JobState::Paused.can_become(JobState::Printing));
        for st in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(JobState::ALL.iter().all(|to| !st.can_become(*to)));
        }
    }

    /// The schema's CHECK on `jobs.state` lists exactly `JobState::ALL`.
    #[test]
    fn schema_check_lists_every_state() {
        let db = super::super::Db::open_in_memory().unwrap();
        let table: String = db
            .read()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let at = table.find("CHECK (state IN").expect("the CHECK on state");
        let list = &table[at..];
        let list = &list[list.find('(').unwrap() + 1..];
        let list = &list[list.find('(').unwrap() + 1..list.find(')').unwrap()];
        let mut names: Vec<&str> = list
            .split(',')
            .map(|s| s.trim().trim_matches('\''))
            .collect();
        let mut want: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want);
    }
}
