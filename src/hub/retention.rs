//! Retention: deletes terminal jobs older than the retention window, then
//! batches left without jobs, old events and expired idempotency keys.
//!
//! **Invariant:** [`purge`] deletes in chunks of [`CHUNK`] rows, one short
//! transaction each, and releases the database mutex between chunks, so a
//! purge of millions of rows never stalls requests for longer than one chunk.
//! It takes the cutoff as a parameter; tests call it directly.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::submit::IDEMPOTENCY_TTL_MS;
use super::{now_ms, Db, Hub, HubError};

/// Rows per delete statement.
pub const CHUNK: usize = 500;

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub jobs: usize,
    pub batches: usize,
    pub events: usize,
    pub idempotency_keys: usize,
}

fn chunked(db: &Db, sql: &str, arg: i64) -> Result<usize, HubError> {
    let mut total = 0;
    loop {
        let n = {
            let conn = db.lock();
            let mut stmt = conn.prepare_cached(sql)?;
            stmt.execute(rusqlite::params![arg, CHUNK as i64])?
        };
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
        std::thread::yield_now();
    }
}

/// Deletes terminal jobs finished before `cutoff` (ms), batches with no job
/// left created before `cutoff`, events before `cutoff`, and idempotency
/// keys older than 24 h relative to `now`.
pub fn purge(db: &Db, cutoff: i64, now: i64) -> Result<Purged, HubError> {
    let jobs = chunked(
        db,
        "DELETE FROM jobs WHERE seq IN (
             SELECT seq FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1
               AND state IN ('done','failed','cancelled','failed_restart') LIMIT ?2)",
        cutoff,
    )?;
    let batches = chunked(
        db,
        "DELETE FROM batches WHERE id IN (
             SELECT b.id FROM batches b WHERE b.created_at < ?1
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id) LIMIT ?2)",
        cutoff,
    )?;
    let events = chunked(
        db,
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 ORDER BY id LIMIT ?2)",
        cutoff,
    )?;
    let idempotency_keys = chunked(
        db,
        "DELETE FROM idempotency_keys WHERE rowid IN (
             SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        now - IDEMPOTENCY_TTL_MS,
    )?;
    Ok(Purged {
        jobs,
        batches,
        events,
        idempotency_keys,
    })
}

/// Runs one purge with the configured window (no-op when disabled).
pub fn run_once(hub: &Hub) -> Result<Purged, HubError> {
    let now = now_ms();
    let cutoff = match hub.config.retention {
        Some(window) => now - window.as_millis() as i64,
        // Retention disabled: keep jobs and events, still expire keys.
        None => i64::MIN,
    };
    // auth (issue 5): the audit log, on its own (longer) retention.
    if let Some(window) = hub.config.audit_retention {
        let audit_cutoff = now - window.as_millis() as i64;
        let mut audit_rows = 0;
        loop {
            let n = crate::auth::audit::prune(&hub.db.lock(), audit_cutoff, CHUNK)?;
            audit_rows += n;
            if n < CHUNK {
                break;
            }
            std::thread::yield_now();
        }
        if audit_rows > 0 {
            log::info!("retention: deleted {audit_rows} audit rows");
        }
    }
    purge(&hub.db, cutoff, now)
}

/// Starts the retention thread: runs at once, then every `interval`, until
/// `shutdown` fires or closes.
pub fn spawn(hub: Arc<Hub>, shutdown: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    let interval = hub.config.retention_interval;
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            match run_once(&hub) {
                Ok(p) if p != Purged::default() => log::info!(
                    "retention: deleted {} jobs, {} batches, {} events, {} idempotency keys",
                    p.jobs,
                    p.batches,
                    p.events,
                    p.idempotency_keys
                ),
                Ok(_) => {}
                Err(e) => log::error!("retention failed (will retry): {e}"),
            }
            match shutdown.recv_timeout(interval) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                _ => break,
            }
        })
}

/// A duration helper for tests and config.
pub fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}
