//! Operator actions on jobs and printers: cancel, pause, resume, retry,
//! clear a queue, pause and resume a printer. Each is one transaction with
//! its events; what a printer thread must learn goes on its channel after
//! the commit.

use std::sync::Arc;

use super::jobs::{self, Job, JobError, JobState, NewBatch, NewJob, PrintOptions};
use super::printers::{self, Printer};
use super::{now_ms, Hub, HubError, Origin};

fn refuse(id: &str, state: JobState, action: &'static str) -> HubError {
    HubError::InvalidJobState {
        id: id.to_string(),
        state: state.as_str().to_string(),
        action,
    }
}

/// `queued | paused -> cancelled`. A cancelled job never prints: the
/// printer thread claims jobs with a guarded `queued -> printing`.
pub fn cancel_job(hub: &Hub, id: &str) -> Result<Job, HubError> {
    hub.write(|w| {
        match jobs::transition(
            w,
            id,
            &[JobState::Queued, JobState::Paused],
            JobState::Cancelled,
            None,
        )? {
            Ok(_) => jobs::get(w.tx, id),
            Err(state) => Err(refuse(id, state, "cancel")),
        }
    })
}

/// `queued -> paused` (held by the operator).
pub fn pause_job(hub: &Hub, id: &str) -> Result<Job, HubError> {
    let err = JobError::new(
        "paused_by_operator",
        "held by an operator; resume it to print",
    );
    hub.write(|w| {
        match jobs::transition(w, id, &[JobState::Queued], JobState::Paused, Some(&err))? {
            Ok(_) => jobs::get(w.tx, id),
            Err(state) => Err(refuse(id, state, "pause")),
        }
    })
}

/// `paused -> queued`; the job goes to the end of its printer's queue.
pub fn resume_job(hub: &Hub, id: &str) -> Result<Job, HubError> {
    let job = hub.write(|w| {
        match jobs::transition(w, id, &[JobState::Paused], JobState::Queued, None)? {
            Ok(_) => jobs::get(w.tx, id),
            Err(state) => Err(refuse(id, state, "resume")),
        }
    })?;
    hand_off_or_fail(hub, &job.printer_id, std::slice::from_ref(&job.id))?;
    jobs::get(&hub.db.read(), id)
}

/// Prints a finished job again: a new job (and a one-label batch) with the
/// same render inputs and the same stored bitmap row (`hub::bitmaps`).
/// The queue quotas apply as to a submission.
pub fn retry_job(hub: &Hub, id: &str, origin: &Origin) -> Result<Job, HubError> {
    let new_id = jobs::new_id();
    let batch_id = jobs::new_id();
    let job = hub.write(|w| {
        let old = jobs::get(w.tx, id)?;
        if !old.state.is_terminal() {
            return Err(refuse(id, old.state, "retry"));
        }
        // As `/print` answers for a disabled printer.
        let printer = printers::get(w.tx, &old.printer_id)?;
        if !printer.enabled {
            return Err(HubError::Conflict {
                code: "printer_disabled",
                message: format!("printer `{}` is disabled", printer.slug),
            });
        }
        super::submit::check_quotas(
            w.tx,
            &hub.config,
            &old.printer_id,
            origin.api_key_id.as_deref(),
            1,
        )?;
        // The same render inputs and bitmap, as stored.
        let (label_data, options, bitmap_id): (String, String, Option<i64>) =
            w.tx.prepare_cached("SELECT label_data, options, bitmap_id FROM jobs WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let options: PrintOptions = serde_json::from_str(&options).unwrap_or_default();
        let batch = NewBatch {
            id: &batch_id,
            printer_id: &old.printer_id,
            origin,
            n_jobs: 1,
            half_cut: false,
            created_at: now_ms(),
        };
        jobs::insert_batch(w, &batch)?;
        let event = jobs::insert_job(
            w,
            &batch,
            &NewJob {
                id: &new_id,
                position: 0,
                copy_index: 0,
                copy_total: 1,
                content_type: &old.content_type,
                label_data: &label_data,
                options: &options,
                model: &old.model,
                media: &old.media,
                bitmap_id,
                retry_of: Some(id),
            },
        )?;
        jobs::bump_batch(w, &batch_id, event)?;
        jobs::get(w.tx, &new_id)
    })?;
    hand_off_or_fail(hub, &job.printer_id, std::slice::from_ref(&job.id))?;
    jobs::get(&hub.db.read(), &new_id)
}

/// Gives ids to the printer thread; on failure marks them failed with the
/// cause and returns it.
pub fn hand_off_or_fail(hub: &Hub, printer_id: &str, ids: &[String]) -> Result<(), HubError> {
    if let Err(message) = hub.threads.hand_off(printer_id, ids) {
        let enabled = printers::get(&hub.db.read(), printer_id)
            .map(|p| p.enabled)
            .unwrap_or(false);
        if !enabled {
            // A disabled printer keeps its queue until it is enabled again.
            return Ok(());
        }
        let cause = JobError::new("handoff_failed", message.clone());
        hub.write(|w| {
            for id in ids {
                jobs::transition(w, id, &[JobState::Queued], JobState::Failed, Some(&cause))?.ok();
            }
            Ok(())
        })?;
        return Err(HubError::Handoff {
            printer: printer_id.to_string(),
            message,
        });
    }
    Ok(())
}

/// Cancels every queued and paused job of a printer. Returns how many.
pub fn clear_queue(hub: &Hub, printer: &Printer) -> Result<usize, HubError> {
    hub.write(|w| jobs::cancel_waiting(w, &printer.id))
}

/// Pauses a printer by hand: its jobs wait until it is resumed.
pub fn pause_printer(hub: &Hub, printer: &Printer) -> Result<bool, HubError> {
    let changed = hub.write(|w| {
        printers::set_paused(
            w,
            &printer.id,
            true,
            Some("operator"),
            Some("paused by an operator"),
        )
    })?;
    hub.threads.wake(&printer.id);
    Ok(changed)
}

/// Resumes a printer paused by hand or by a problem.
pub fn resume_printer(hub: &Hub, printer: &Printer) -> Result<bool, HubError> {
    let changed = hub.write(|w| printers::set_paused(w, &printer.id, false, None, None))?;
    hub.threads.wake(&printer.id);
    Ok(changed)
}

/// Applies an admin change to the printer threads.
pub fn apply_printer(hub: &Arc<Hub>, printer: &Printer) -> Result<(), HubError> {
    hub.threads.apply(hub, printer)
}
