//! Response shapes: hub rows to JSON, with the upstream field names
//! (`JobRead`, `BatchRead`, `PrinterRead`, admin `PrinterRead`) plus the
//! fields upstream lacked (error_code, error_detail, batch position, copy
//! index, version).

use serde_json::{json, Value};

use crate::brother::transport::{self, Endpoint};
use crate::hub::jobs::{BatchSnapshot, Job, JobState};
use crate::hub::printers::Printer;
use crate::hub::registry::LiveState;
use crate::hub::rfc3339;

fn ts(ms: Option<i64>) -> Value {
    ms.map(|m| Value::String(rfc3339(m))).unwrap_or(Value::Null)
}

/// Width in mm of a medium id when it is a plain number ("12" -> 12).
fn tape_mm(media: &str) -> Value {
    media
        .trim_end_matches("mm")
        .parse::<f64>()
        .ok()
        .map(|v| {
            if v.fract() == 0.0 {
                json!(v as i64)
            } else {
                json!(v)
            }
        })
        .unwrap_or(Value::Null)
}

/// Upstream `JobRead` plus our fields.
pub fn job(job: &Job) -> Value {
    json!({
        "id": job.id,
        "printer_id": job.printer_id,
        "batch_id": job.batch_id,
        "template_key": null,
        "state": job.state.as_str(),
        "payload": {
            "content_type": job.content_type,
            "label_data": job.label_data,
            "options": job.options,
            "model": job.model,
            "media": job.media,
            "rendered_tape_mm": tape_mm(&job.media),
            "tape_mm": tape_mm(&job.media),
            "copy_index": job.copy_index,
            "copy_total": job.copy_total,
        },
        "result": if job.state == JobState::Done { json!({}) } else { Value::Null },
        "error": job.error,
        "error_code": job.error_code,
        "error_detail": job.error_detail,
        "position": job.position,
        "copy_index": job.copy_index,
        "copy_total": job.copy_total,
        "retry_of": job.retry_of,
        "api_key_id": job.api_key_id,
        "source_ip": job.source_ip,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "started_at": ts(job.started_at),
        "finished_at": ts(job.finished_at),
        "version": job.version,
    })
}

/// Upstream `PrintJobStatusResponse` (`GET /jobs/{id}`) in upstream's
/// vocabulary for that route (its clients poll until `completed`): `done`
/// is `completed`, `failed_restart` is `failed` with `error_code`
/// `printer_interrupted`. The `/api/*` routes keep labelhub's vocabulary.
pub fn legacy_job(job: &Job) -> Value {
    let (status, error_code) = match job.state {
        JobState::Done => ("completed", job.error_code.clone()),
        JobState::FailedRestart => ("failed", Some("printer_interrupted".to_string())),
        other => (other.as_str(), job.error_code.clone()),
    };
    json!({
        "job_id": job.id,
        "status": status,
        "error_code": error_code,
        "error_message": job.error,
        "error_detail": job.error_detail,
        "created_at": rfc3339(job.created_at),
        "started_at": ts(job.started_at),
        "finished_at": ts(job.finished_at),
        "live": null,
        "version": job.version,
    })
}

/// Upstream `BatchRead`: every physical label is listed, in print order.
pub fn batch(snap: &BatchSnapshot) -> Value {
    let count = |s| snap.count(s);
    let jobs: Vec<Value> = snap.jobs.iter().map(job).collect();
    json!({
        "id": snap.batch.id,
        "printer_id": snap.batch.printer_id,
        "created_by": snap.batch.created_by,
        "created_at": rfc3339(snap.batch.created_at),
        "jobs": jobs,
        "summary": {
            "total": snap.jobs.len(),
            "queued": count(JobState::Queued),
            "paused": count(JobState::Paused),
            "printing": count(JobState::Printing),
            "done": count(JobState::Done),
            "failed": count(JobState::Failed) + count(JobState::FailedRestart),
            "failed_restart": count(JobState::FailedRestart),
            "cancelled": count(JobState::Cancelled),
            "all_terminal": snap.all_terminal(),
            // Labels accepted in this batch, and how many retention has
            // deleted since: a shrinking batch is never silent.
            "expected": snap.batch.n_jobs,
            "evicted": (snap.batch.n_jobs - snap.jobs.len() as i64).max(0),
        },
        "version": snap.batch.version,
    })
}

/// `ptouch` / `brother_ql`, as upstream names the back-ends.
pub fn backend(model: &str) -> &'static str {
    match crate::brother::model::by_name(model).map(|m| m.family) {
        Some(crate::brother::model::Family::Ql) => "brother_ql",
        _ => "ptouch",
    }
}

/// The connection object: the URI (never with the community), plus
/// upstream's `host`, `port` and `snmp {discover, community}` for TCP. The
/// community is shown only when `reveal` (admin routes), else `***`.
pub fn connection(p: &Printer, reveal: bool) -> Value {
    let mut conn = json!({"uri": p.shown_uri()});
    if let Ok(Endpoint::Tcp {
        host,
        port,
        snmp_port,
        community,
    }) = transport::parse_uri(&p.connection_uri())
    {
        conn["host"] = json!(host);
        conn["port"] = json!(port);
        conn["snmp"] = json!({
            "discover": snmp_port.is_some(),
            "community": if reveal { community.as_str() } else { "***" },
        });
    }
    conn
}

/// Upstream `PrinterRead` (`/api/printers`) plus status fields.
pub fn printer(p: &Printer, live: Option<&LiveState>, alive: Option<bool>) -> Value {
    json!({
        "id": p.id,
        "slug": p.slug,
        "name": p.name,
        "model": p.model,
        "backend": backend(&p.model),
        "connection": connection(p, false),
        "enabled": p.enabled,
        "paused": p.paused,
        "paused_reason": p.paused_reason,
        "paused_detail": p.paused_detail,
        "media": p.media,
        "loaded_media": p.loaded_media(),
        "online": live.and_then(|l| l.online),
        // Set while the printer holds its queue after a
        // failed write.
        "storage_error": live.and_then(|l| l.storage_error.clone()),
        "thread_alive": alive.unwrap_or(false),
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

/// Upstream admin `PrinterRead` plus our settings.
pub fn admin_printer(p: &Printer) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "slug": p.slug,
        "model": p.model,
        "backend": backend(&p.model),
        "connection": connection(p, true),
        "media": p.media,
        "queue": {"timeout_s": p.queue_timeout_s},
        "max_length_mm": p.max_length_mm,
        "cut_defaults": {"half_cut": p.half_cut, "auto_cut": p.auto_cut},
        "auto_resume": p.auto_resume,
        "enabled": p.enabled,
        "paused": p.paused,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}
