//! Restart recovery: runs before any thread starts (and for one printer
//! before its thread is started again after an admin change).
//!
//! * `printing` becomes `failed_restart` with `error_code`
//!   `printer_interrupted`: the label may or may not have come out, and the
//!   hub never prints one twice by itself.
//! * `queued` and `paused` keep their state and order (`seq`).
//! * A queued or paused row whose stored bitmap cannot be printed again
//!   (its size does not match) becomes `failed` with `recovery_unprintable`.
//! * A printer of an unknown model is only logged: its queued jobs wait
//!   until the printer is fixed.
//! * Jobs of disabled printers are left alone until the printer is enabled.
//! * Nothing here aborts the start-up: errors are logged and counted.

use std::sync::Arc;

use super::jobs::{self, JobError, JobState};
use super::printers::{self, Printer};
use super::{Hub, HubError};

/// What recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub interrupted: usize,
    pub unprintable: usize,
    pub queued: usize,
    pub errors: usize,
}

/// Recovers every enabled printer.
pub fn run(hub: &Arc<Hub>) -> Report {
    let mut total = Report::default();
    let list = match printers::list(&hub.db.read(), false) {
        Ok(list) => list,
        Err(e) => {
            log::error!("recovery: cannot list printers: {e}");
            total.errors += 1;
            return total;
        }
    };
    for printer in &list {
        match recover_printer(hub, printer) {
            Ok(r) => {
                total.interrupted += r.interrupted;
                total.unprintable += r.unprintable;
                total.queued += r.queued;
            }
            Err(e) => {
                log::error!("recovery of printer {}: {e}", printer.slug);
                total.errors += 1;
            }
        }
    }
    if total.interrupted + total.unprintable + total.queued > 0 {
        log::info!(
            "recovery: {} interrupted -> failed_restart, {} unprintable -> failed, {} queued kept",
            total.interrupted,
            total.unprintable,
            total.queued
        );
    }
    total
}

/// Recovers one printer's jobs (its thread must not be running).
pub fn recover_printer(hub: &Hub, printer: &Printer) -> Result<Report, HubError> {
    let (interrupted, unprintable, queued) = {
        let conn = hub.db.read();
        let ids = |sql: &str| -> Result<Vec<String>, HubError> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map([&printer.id], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        let interrupted =
            ids("SELECT id FROM jobs WHERE printer_id = ?1 AND state = 'printing' ORDER BY seq")?;
        // The blob size is in the record header: no bitmap is read here.
        // Compressed rows (hub::bitmaps) are checked when they are read.
        let unprintable = ids(
            "SELECT id FROM jobs WHERE printer_id = ?1 AND state IN ('queued','paused')
               AND NOT EXISTS (SELECT 1 FROM bitmaps b WHERE b.id = jobs.bitmap_id
                    AND b.width > 0 AND b.height > 0
                    AND (b.encoding != 'raw' OR (length(b.black) = ((b.width + 7) / 8) * b.height
                         AND (b.red IS NULL OR length(b.red) = ((b.width + 7) / 8) * b.height))))
             ORDER BY seq",
        )?;
        let queued: i64 = conn.query_row(
            "SELECT count(*) FROM jobs WHERE printer_id = ?1 AND state = 'queued'",
            [&printer.id],
            |r| r.get(0),
        )?;
        (interrupted, unprintable, queued)
    };
    let known_model = crate::brother::model::by_name(&printer.model).is_some();
    let interrupted_err = JobError::new(
        "printer_interrupted",
        "the hub stopped while this label was being sent; it may or may not have printed",
    );
    let unprintable_err = JobError::new(
        "recovery_unprintable",
        "the stored label cannot be printed again (its bitmap is damaged)",
    );
    hub.write(|w| {
        for id in &interrupted {
            jobs::transition(
                w,
                id,
                &[JobState::Printing],
                JobState::FailedRestart,
                Some(&interrupted_err),
            )?
            .ok();
        }
        for id in &unprintable {
            jobs::transition(
                w,
                id,
                &[JobState::Queued, JobState::Paused],
                JobState::Failed,
                Some(&unprintable_err),
            )?
            .ok();
        }
        Ok(())
    })?;
    if !known_model {
        log::error!(
            "printer {}: unknown model `{}`; its queued jobs wait until it is fixed",
            printer.slug,
            printer.model
        );
    }
    Ok(Report {
        interrupted: interrupted.len(),
        unprintable: unprintable.len(),
        queued: queued as usize - unprintable.len().min(queued as usize),
        errors: 0,
    })
}
