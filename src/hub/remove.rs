//! Deleting a printer: `DELETE
//! /api/v1/admin/printers/{slug}`.
//!
//! A printer with queued or paused jobs is not deleted (409
//! `printer_has_jobs`) unless the caller asks to cancel them; a label
//! being sent is never cut off: the printer's thread is stopped first (it
//! finishes the label in flight), and if a job is still `printing` after
//! that the delete is refused (409 `printer_busy`) and the thread started
//! again. Otherwise one transaction cancels the waiting jobs (their events
//! wake long-polls), deletes the printer's jobs and batches and the
//! printer row, and writes the audit row. To keep a printer's history,
//! disable it instead.

use std::sync::Arc;

use rusqlite::params;

use super::jobs::{self, JobState};
use super::printers::{self, Printer};
use super::{control, Hub, HubError};

/// What a delete did.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub printer: Printer,
    /// Queued or paused jobs cancelled by `cancel_queued`.
    pub cancelled: usize,
    /// Job rows removed (all states).
    pub jobs_deleted: usize,
}

fn count(w: &super::events::Writer<'_, '_>, id: &str, state: JobState) -> Result<i64, HubError> {
    Ok(w.tx
        .prepare_cached("SELECT count(*) FROM jobs WHERE printer_id = ?1 AND state = ?2")?
        .query_row(params![id, state.as_str()], |r| r.get(0))?)
}

/// Deletes the printer `key` (id or slug).
pub fn delete_printer(
    hub: &Arc<Hub>,
    key: &str,
    cancel_queued: bool,
    by: &str,
) -> Result<Deleted, HubError> {
    let printer = printers::get(&hub.db.read(), key)?;
    hub.threads.stop(&printer.id, hub.config.shutdown_timeout);
    let res = hub.write(|w| {
        let queued = count(w, &printer.id, JobState::Queued)?;
        let paused = count(w, &printer.id, JobState::Paused)?;
        let printing = count(w, &printer.id, JobState::Printing)?;
        if printing > 0 {
            return Err(HubError::Conflict {
                code: "printer_busy",
                message: format!(
                    "printer `{}` is still sending a label; try again when it is done",
                    printer.slug
                ),
            });
        }
        let mut cancelled = 0;
        if queued + paused > 0 {
            if !cancel_queued {
                return Err(HubError::Conflict {
                    code: "printer_has_jobs",
                    message: format!(
                        "printer `{}` has {queued} queued and {paused} paused jobs; cancel \
                         them first, or delete with ?cancel_queued=true to cancel them",
                        printer.slug
                    ),
                });
            }
            cancelled = jobs::cancel_waiting(w, &printer.id)?;
        }
        let jobs_deleted =
            w.tx.prepare_cached("DELETE FROM jobs WHERE printer_id = ?1")?
                .execute(params![printer.id])?;
        w.tx.prepare_cached("DELETE FROM batches WHERE printer_id = ?1")?
            .execute(params![printer.id])?;
        let printer = printers::delete(w, &printer.id, by)?;
        Ok(Deleted {
            printer,
            cancelled,
            jobs_deleted,
        })
    });
    match &res {
        Ok(d) => log::info!(
            "printer {} deleted ({} jobs removed, {} cancelled first)",
            d.printer.slug,
            d.jobs_deleted,
            d.cancelled
        ),
        Err(_) if printer.enabled => {
            // Refused: the printer goes on as it was.
            if let Err(e) = control::apply_printer(hub, &printer) {
                log::error!("printer {}: cannot restart its thread: {e}", printer.slug);
            }
        }
        Err(_) => {}
    }
    res
}
