//! Submitting labels: validate and render first (errors are synchronous),
//! then one transaction writes the batch, every job row (one per physical
//! label) and the idempotency record, then the ids go on the printer's
//! channel. If that hand-off fails the rows are marked failed with the cause
//! and the cause is returned.

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::events::{self, Subject};
use super::jobs::{self, JobError, JobState};
use super::labels::{self, LabelRequest, RenderedPage};
use super::printers::Printer;
use super::{now_ms, Hub, HubError, Origin};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Per-item print options (upstream `PrintOptions`).
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

/// One item of a submission.
#[derive(Debug, Clone)]
pub struct Item {
    pub content_type: String,
    pub data: Value,
    pub options: PrintOptions,
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
            params![idem.scope, idem.key, now_ms() - IDEMPOTENCY_TTL_MS],
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

/// Validates, renders, stores and hands off a submission. `respond` makes
/// the (status, body) of the success response, stored for idempotent
/// retries in the same transaction as the jobs.
pub fn submit(
    hub: &Hub,
    sub: Submission,
    respond: &dyn Fn(&Accepted) -> (u16, String),
) -> Result<Outcome, HubError> {
    if let Some(idem) = &sub.idempotency {
        if let Some((status, body)) = check_replay(&hub.db.lock(), idem)? {
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

    // Render everything before touching the database.
    let mut pages: Vec<RenderedPage> = Vec::with_capacity(sub.items.len());
    for (idx, item) in sub.items.iter().enumerate() {
        let req = LabelRequest {
            model,
            media: &media,
            content_type: &item.content_type,
            data: &item.data,
            high_res: item.options.high_resolution,
        };
        let page = hub.renderer.render(&req).map_err(|e| match e {
            labels::LabelError::Render {
                code,
                message,
                status,
                detail,
            } if sub.items.len() > 1 => labels::LabelError::Render {
                code,
                message: format!("items[{idx}]: {message}"),
                status,
                detail: Some(json!({"item": idx, "detail": detail})),
            },
            e => e,
        })?;
        pages.push(page);
    }

    let half_cut = model.half_cut
        && match sub.half_cut_override {
            Some(v) => v,
            None => printer.half_cut || sub.items.iter().any(|i| i.options.half_cut),
        };
    let accepted = hub.write(|w| {
        if let Some(idem) = &sub.idempotency {
            if let Some((status, body)) = check_replay(w.tx, idem)? {
                return Ok(Outcome::Replayed { status, body });
            }
        }
        let now = now_ms();
        let batch_id = uuid::Uuid::new_v4().to_string();
        let n_jobs: u32 = sub.items.iter().map(|i| i.options.copies).sum();
        w.tx.prepare_cached(
            "INSERT INTO batches (id, printer_id, created_by, api_key_id, source_ip, n_jobs, half_cut, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            batch_id,
            printer.id,
            sub.origin.created_by,
            sub.origin.api_key_id,
            sub.origin.source_ip,
            n_jobs,
            half_cut,
            now
        ])?;
        let mut job_ids = Vec::with_capacity(n_jobs as usize);
        let mut last_event = 0;
        for (pos, (item, page)) in sub.items.iter().zip(&pages).enumerate() {
            let (width, height, black, red) = labels::pack(page);
            let data = item.data.to_string();
            let options = serde_json::to_string(&item.options).unwrap_or_default();
            for copy in 0..item.options.copies {
                let job_id = uuid::Uuid::new_v4().to_string();
                last_event = w.event(
                    events::JOB_CREATED,
                    Subject {
                        printer_id: Some(&printer.id),
                        job_id: Some(&job_id),
                        batch_id: Some(&batch_id),
                    },
                    &json!({"job_id": job_id, "batch_id": batch_id, "printer_id": printer.id,
                            "to_state": "queued", "position": pos, "copy_index": copy}),
                )?;
                w.tx.prepare_cached(
                    "INSERT INTO jobs (id, printer_id, batch_id, position, copy_index, copy_total, state,
                         content_type, label_data, options, model, media, width, height, bitmap, bitmap_red,
                         api_key_id, source_ip, created_at, updated_at, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18, ?18, ?19)",
                )?
                .execute(params![
                    job_id,
                    printer.id,
                    batch_id,
                    pos as i64,
                    copy,
                    item.options.copies,
                    item.content_type,
                    data,
                    options,
                    model.name,
                    media,
                    width,
                    height,
                    black,
                    red,
                    sub.origin.api_key_id,
                    sub.origin.source_ip,
                    now,
                    last_event
                ])?;
                job_ids.push(job_id);
            }
        }
        jobs::bump_batch(w, &batch_id, last_event)?;
        let accepted = Accepted {
            batch_id,
            printer_id: printer.id.clone(),
            queued_at: now,
            job_ids,
        };
        if let Some(idem) = &sub.idempotency {
            let (status, body) = respond(&accepted);
            w.tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (scope, key, fingerprint, status, response, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![idem.scope, idem.key, idem.fingerprint, status, body, now])?;
        }
        Ok(Outcome::Accepted(accepted))
    })?;

    let Outcome::Accepted(accepted) = accepted else {
        return Ok(accepted);
    };
    if let Err(message) = hub.printers.hand_off(&printer.id, &accepted.job_ids) {
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
