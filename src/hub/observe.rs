//! What a printer thread tells the operator and the metrics about a job
//! outcome: one info line per job done, failed or paused for the wrong
//! medium, and the `metrics` counters. The worker calls these after the
//! commit that recorded the outcome, so a line never announces a change
//! that was rolled back.
//!
//! Also the read-only statistics the `/metrics` handler reads at scrape
//! time (jobs by printer and state, database size).

use rusqlite::Connection;

use super::jobs::{JobError, QueuedJob};
use super::printers::Printer;
use super::HubError;

/// A label was printed and its job marked `done`.
pub fn job_done(printer: &Printer, job_id: &str) {
    crate::metrics::label_printed(&printer.id);
    log::info!("printer {}: job {job_id} done", printer.slug);
}

/// A job was marked `failed`.
pub fn job_failed(printer: &Printer, job_id: &str, err: &JobError) {
    crate::metrics::job_failed(&printer.id, &err.code);
    log::info!(
        "printer {}: job {job_id} failed: {}: {}",
        printer.slug,
        err.code,
        err.message
    );
}

/// Jobs were paused because the loaded medium is not theirs: one line per
/// run (a run is one batch's labels for one medium), so a 500-label batch
/// does not write 500 lines.
pub fn jobs_paused_wrong_media(printer: &Printer, run: &[QueuedJob], loaded: &str) {
    let Some(first) = run.first() else { return };
    let which = match run.len() {
        1 => format!("job {}", first.id),
        n => format!("{n} jobs of batch {} (first {})", first.batch_id, first.id),
    };
    log::info!(
        "printer {}: {which} paused: wrong tape: it needs {} but {loaded} is loaded; \
         load it and resume the job",
        printer.slug,
        first.media
    );
}

/// Jobs per (printer id, state) as the database holds them now (terminal
/// jobs until retention deletes them). Reads the `jobs_printer_state`
/// index only.
pub fn jobs_by_printer_state(conn: &Connection) -> Result<Vec<(String, String, i64)>, HubError> {
    let mut stmt = conn.prepare_cached(
        "SELECT printer_id, state, count(*) FROM jobs GROUP BY printer_id, state \
         ORDER BY printer_id, state",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Bytes the database takes on disk: the main file (pages in use and
/// free) plus the write-ahead log, read from the file system.
pub fn database_bytes(db_path: &std::path::Path) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    size(db_path) + size(std::path::Path::new(&wal))
}
