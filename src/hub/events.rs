//! The change feed: the `events` table, the transaction writer that appends
//! to it, and the record of what a commit changed.
//!
//! **Invariant:** event ids only grow (AUTOINCREMENT), so an event id is both
//! the feed cursor and the version of the job and batch it touched
//! (`jobs.version`, `batches.version` hold the id of their last event).

pub mod outbox;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use super::{now_ms, HubError};

/// Kinds of events, as they appear in the feed's `type` field.
pub const JOB_CREATED: &str = "job.created";
pub const JOB_STATE_CHANGED: &str = "job.state_changed";
pub const PRINTER_STATUS: &str = "printer.status";
pub const PRINTER_MEDIA_CHANGED: &str = "printer.media_changed";
pub const PRINTER_CHANGED: &str = "printer.changed";

/// What one commit changed: handed to the change listener after the commit.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The largest event id written (0 when none).
    pub max_event: i64,
    pub jobs: Vec<String>,
    pub batches: Vec<String>,
    pub printers: Vec<String>,
    /// Webhook outbox rows written (the sender is woken only for these).
    pub webhooks: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.max_event == 0
    }

    /// Adds what another commit (or savepoint) changed.
    pub fn merge(&mut self, other: Changes) {
        self.max_event = self.max_event.max(other.max_event);
        self.webhooks += other.webhooks;
        self.jobs.extend(other.jobs);
        for b in other.batches {
            push_unique(&mut self.batches, &b);
        }
        for p in other.printers {
            push_unique(&mut self.printers, &p);
        }
    }
}

/// A transaction plus the record of the events written in it.
pub struct Writer<'a, 'b> {
    pub tx: &'a Transaction<'b>,
    changes: &'a mut Changes,
}

/// Where an event belongs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'s> {
    pub printer_id: Option<&'s str>,
    pub job_id: Option<&'s str>,
    pub batch_id: Option<&'s str>,
}

impl<'a, 'b> Writer<'a, 'b> {
    pub fn new(tx: &'a Transaction<'b>, changes: &'a mut Changes) -> Writer<'a, 'b> {
        Writer { tx, changes }
    }

    /// Appends an event and returns its id.
    pub fn event(
        &mut self,
        kind: &str,
        subject: Subject<'_>,
        data: &Value,
    ) -> Result<i64, HubError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO events (at, kind, printer_id, job_id, batch_id, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            now_ms(),
            kind,
            subject.printer_id,
            subject.job_id,
            subject.batch_id,
            data.to_string()
        ])?;
        let id = self.tx.last_insert_rowid();
        // Outbound webhook rows commit with their event.
        self.changes.webhooks += outbox::enqueue(self.tx, id, kind, &subject, data)?;
        self.changes.max_event = self.changes.max_event.max(id);
        if let Some(p) = subject.printer_id {
            push_unique(&mut self.changes.printers, p);
        }
        if let Some(j) = subject.job_id {
            self.changes.jobs.push(j.to_string());
        }
        if let Some(b) = subject.batch_id {
            push_unique(&mut self.changes.batches, b);
        }
        Ok(id)
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if list.last().map(String::as_str) != Some(item) && !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// One row of the feed.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub printer_id: Option<String>,
    pub job_id: Option<String>,
    pub batch_id: Option<String>,
    pub data: Value,
}

/// Filters of the feed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub printer_id: Option<String>,
    pub batch_id: Option<String>,
}

/// Events with `id > since`, oldest first, at most `limit`.
pub fn since(
    conn: &Connection,
    since: i64,
    limit: usize,
    filter: &Filter,
) -> Result<Vec<Event>, HubError> {
    // Only the filters given are named, so SQLite walks `events_batch` /
    // `events_printer` (sql/0013_quotas.sql) instead of scanning every
    // newer event for a rare batch.
    let sql = match (&filter.printer_id, &filter.batch_id) {
        (None, None) => {
            "SELECT id, at, kind, printer_id, job_id, batch_id, data FROM events
             WHERE id > ?1 AND ?2 IS NULL AND ?3 IS NULL ORDER BY id LIMIT ?4"
        }
        (Some(_), None) => {
            "SELECT id, at, kind, printer_id, job_id, batch_id, data FROM events
             WHERE id > ?1 AND printer_id = ?2 AND ?3 IS NULL ORDER BY id LIMIT ?4"
        }
        (None, Some(_)) => {
            "SELECT id, at, kind, printer_id, job_id, batch_id, data FROM events
             WHERE id > ?1 AND ?2 IS NULL AND batch_id = ?3 ORDER BY id LIMIT ?4"
        }
        (Some(_), Some(_)) => {
            "SELECT id, at, kind, printer_id, job_id, batch_id, data FROM events
             WHERE id > ?1 AND printer_id = ?2 AND batch_id = ?3 ORDER BY id LIMIT ?4"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![since, filter.printer_id, filter.batch_id, limit as i64],
        |r| {
            let data: String = r.get(6)?;
            Ok(Event {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                printer_id: r.get(3)?,
                job_id: r.get(4)?,
                batch_id: r.get(5)?,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest event id (0 for an empty feed).
pub fn last_id(conn: &Connection) -> Result<i64, HubError> {
    let id: Option<i64> = conn
        .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
        .optional()?
        .flatten();
    // After retention emptied the table, sqlite_sequence still knows the
    // last id handed out.
    match id {
        Some(id) => Ok(id),
        None => Ok(conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0)),
    }
}
