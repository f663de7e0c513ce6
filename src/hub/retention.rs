//! Retention: deletes terminal jobs older than the retention window, then
//! batches left without jobs, old events and expired idempotency keys.
//!
//! **Invariant:** [`purge`] deletes in chunks of [`CHUNK`] rows, one short
//! transaction each, and releases the database mutex between chunks, so a
//! purge of millions of rows never stalls requests for longer than one chunk.
//! It takes the cutoff as a parameter; tests call it directly.
//!
//! **Invariant (clock steps):** [`run_once`] takes its cutoffs
//! from [`clock::Clock::cutoff`], which moves them back by every forward
//! wall-clock jump seen within the window, so nothing younger than what
//! the process has seen pass on its monotonic clock is removed; and it
//! purges nothing while the wall clock looks wrong (earlier than the newest
//! event, or less than [`clock::SETTLE`] after a jump). The thread looks at
//! the clock every [`clock::LOOK_EVERY`], so a jump is logged when it
//! happens, not at the next purge.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::clock::{self, Clock};
use super::submit::IDEMPOTENCY_TTL;
use super::{Db, Hub, HubError};

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
            let conn = db.writer();
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
/// keys created before `idempotency_cutoff`.
pub fn purge(db: &Db, cutoff: i64, idempotency_cutoff: i64) -> Result<Purged, HubError> {
    db.check_identity()?;
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
        idempotency_cutoff,
    )?;
    Ok(Purged {
        jobs,
        batches,
        events,
        idempotency_keys,
    })
}

/// The newest time stamped on a row the hub writes all the time (events).
fn newest_row(db: &Db) -> Result<Option<i64>, HubError> {
    Ok(db
        .read()
        .query_row("SELECT max(at) FROM events", [], |r| r.get(0))?)
}

/// Runs one purge with the configured window (no-op when disabled), on the
/// process's clock.
pub fn run_once(hub: &Hub) -> Result<Purged, HubError> {
    run_with(hub, clock::global())
}

/// [`run_once`] on a given clock: nothing is purged while the clock looks
/// wrong, and every cutoff counts monotonic time across jumps.
pub fn run_with(hub: &Hub, clock: &Clock) -> Result<Purged, HubError> {
    if let Some(why) = clock.purge_refusal(newest_row(&hub.db)?) {
        log::warn!("retention: nothing purged: {why}");
        return Ok(Purged::default());
    }
    let cutoff = match hub.config.retention {
        Some(window) => clock.cutoff(window),
        // Retention disabled: keep jobs and events, still expire keys.
        None => i64::MIN,
    };
    let idempotency_cutoff = clock.cutoff(IDEMPOTENCY_TTL);
    // The audit log, on its own (longer) retention.
    if let Some(window) = hub.config.audit_retention {
        let audit_cutoff = clock.cutoff(window);
        let mut audit_rows = 0;
        loop {
            let n = super::audit::prune(&hub.db.writer(), audit_cutoff, CHUNK)?;
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
    purge(&hub.db, cutoff, idempotency_cutoff)
}

/// Starts the retention thread: runs at once, then every `interval`, until
/// `shutdown` fires or closes. Between runs it looks at the clock every
/// [`clock::LOOK_EVERY`] (a jump is logged when it is seen).
pub fn spawn(hub: Arc<Hub>, shutdown: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    let interval = hub.config.retention_interval;
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut runs = 0u64;
            loop {
                runs += 1;
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
                log::debug!("retention: run {runs} done");
                // Monotonic: a wall-clock step neither hurries nor delays it.
                let next = std::time::Instant::now() + interval;
                loop {
                    let left = next.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match shutdown.recv_timeout(left.min(clock::LOOK_EVERY)) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                            clock::global().observe();
                        }
                        _ => return,
                    }
                }
            }
        })
}

/// A duration helper for tests and config.
pub fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}
