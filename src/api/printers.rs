//! Printer read routes and operator controls (`/api/printers/...`,
//! legacy `/printer/resume`).

use serde_json::{json, Value};

use super::{json, shapes, Api, ApiError};
use crate::http::{Reply, Request, Response};
use crate::hub::jobs;
use crate::hub::{control, now_ms, printers, rfc3339};

/// `GET /api/printers?slug=`
pub fn list(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let all = printers::list(&api.hub.db.read(), false)?;
    let slug = req.resolved("slug");
    let selected: Vec<_> = all
        .iter()
        .filter(|p| slug.is_none_or(|s| p.slug == s))
        .filter(|p| crate::auth::access::may_use_printer(req, &p.id))
        .collect();
    if let Some(s) = slug {
        if selected.is_empty() {
            return Err(crate::hub::HubError::NotFound {
                kind: "printer",
                id: s.to_string(),
            }
            .into());
        }
    }
    let body: Vec<Value> = selected
        .iter()
        .map(|p| {
            let live = api.hub.threads.live(&p.id);
            shapes::printer(p, live.as_ref(), api.hub.threads.alive(&p.id))
        })
        .collect();
    json(200, &Value::Array(body))
}

/// `GET /api/printers/{printer_id}` (id or slug; disabled ones too).
pub fn get(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("printer_id"))?;
    let live = api.hub.threads.live(&p.id);
    json(
        200,
        &shapes::printer(&p, live.as_ref(), api.hub.threads.alive(&p.id)),
    )
}

/// `GET /api/printers/{printer_id}/status`: upstream `PrinterStatus` from
/// the printer thread's last poll, plus pause state.
pub fn status(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("printer_id"))?;
    let live = api.hub.threads.live(&p.id).unwrap_or_default();
    let stored = p.status.clone().unwrap_or(Value::Null);
    let online = live.online.or_else(|| stored["online"].as_bool());
    // A thread holding its queue after a failed write
    // reports `storage_error` first: nothing prints until writes work.
    let problem = if live.storage_error.is_some() {
        Some("storage_error".to_string())
    } else {
        live.problem
            .clone()
            .or_else(|| stored["problem"].as_str().map(str::to_string))
    };
    let captured = live.polled_at.or(p.status_at);
    let media = p.loaded_media().map(str::to_string);
    json(
        200,
        &json!({
            "printer_id": p.id,
            "online": online,
            "tape_loaded": media.as_ref().map(|m| format!("{m}mm")),
            "media": media,
            "error_state": problem,
            "captured_at": captured.map(rfc3339),
            "last_probe_age_s": captured.map(|c| (now_ms() - c).max(0) / 1000),
            "last_error": live.last_error,
            "note": if captured.is_none() { Some("No probe yet") } else { None },
            "paused": p.paused || live.storage_error.is_some(),
            "paused_reason": if live.storage_error.is_some() { Some("storage_error") } else { p.paused_reason.as_deref() },
            "paused_detail": live.storage_error.as_deref().or(p.paused_detail.as_deref()),
            "storage_error": live.storage_error,
            "auto_resume": p.auto_resume,
            "thread_alive": api.hub.threads.alive(&p.id).unwrap_or(false),
            "current_job": live.current_job,
            "details": stored.get("details").cloned().unwrap_or(Value::Null),
        }),
    )
}

/// `GET /api/printers/{printer_id}/queue?limit&cursor`: printing, queued
/// and paused jobs in queue order, one page at a time (`api::paging`;
/// default 100, at most 200 jobs, as `GET /api/jobs`).
pub fn queue(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let paging = super::paging::params(req, "queue", 100, 200, false)?;
    let conn = api.hub.db.read();
    let p = printers::get(&conn, req.param("printer_id"))?;
    let (list, next) = jobs::queue_page(&conn, &p.id, paging.after, paging.limit)?;
    drop(conn);
    let mut page = super::paging::page(&list, paging.limit, |j| j.seq, shapes::job);
    if page.next.is_none() {
        page.next = next;
    }
    super::paging::respond(req, "queue", page)
}

/// `POST /api/printers/{printer_id}/pause` -> 204
pub fn pause(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("printer_id"))?;
    control::pause_printer(&api.hub, &p)?;
    Ok(Reply::Respond(Response::empty(204)))
}

/// `POST /api/printers/{printer_id}/resume` -> 204
pub fn resume(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("printer_id"))?;
    control::resume_printer(&api.hub, &p)?;
    Ok(Reply::Respond(Response::empty(204)))
}

/// `POST /api/printers/{printer_id}/queue/clear` -> 204 (`X-Cancelled: n`)
pub fn clear(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("printer_id"))?;
    let n = control::clear_queue(&api.hub, &p)?;
    Ok(Reply::Respond(
        Response::empty(204).with_header("X-Cancelled", &n.to_string()),
    ))
}

/// `POST /printer/resume`: the default printer; 409 `already_active`.
pub fn legacy_resume(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::default_printer(&api.hub.db.read())?;
    crate::auth::access::require_printer(req, &p.id)?;
    if !p.paused {
        return Err(ApiError::Conflict {
            code: "already_active",
            message: format!("printer `{}` is not paused", p.slug),
        });
    }
    control::resume_printer(&api.hub, &p)?;
    json(200, &json!({"printer_id": p.id, "state": "active"}))
}
