//! Job and batch routes, including the long-polls of
//! `GET /api/jobs/{id}` and `GET /api/batches/{id}`.

use super::{int_param, json, origin, shapes, should_park, wait_param, Api, ApiError};
use crate::http::{Reply, Request};
use crate::hub::jobs::{self as hub_jobs, JobState, ListQuery};
use crate::hub::{control, events, parse_rfc3339};

/// `GET /api/jobs?state&printer_id&batch_id&since&limit&cursor`: newest
/// first; the next page's cursor is in `X-Next-Cursor` (and `Link`).
pub fn list(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let state = match req.query("state") {
        None | Some("") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "validation_error",
                format!("state={s}: one of queued, paused, printing, done, failed, cancelled, failed_restart"),
            )
        })?),
    };
    let since = match req.query("since") {
        None | Some("") => None,
        // A client that put `+01:00` in the query unencoded sends a space
        // (form decoding): read it as the `+` it was.
        Some(s) => Some(parse_rfc3339(&s.replace(' ', "+")).ok_or_else(|| {
            ApiError::invalid(
                "validation_error",
                format!("since={s}: expected an RFC 3339 time"),
            )
        })?),
    };
    let paging = super::paging::params(req, "jobs", 50, 200, true)?;
    let q = ListQuery {
        state,
        printer_id: req.resolved("printer_id").map(str::to_string),
        batch_id: req.resolved("batch_id").map(str::to_string),
        since,
        before: paging.after,
        limit: paging.limit,
    };
    // `since=<RFC 3339>` without a cursor has upstream's
    // meaning: jobs created at or after it, oldest first, so the upstream
    // frontend's "next page" (`since` = created_at of the last job shown)
    // reaches newer jobs instead of repeating the newest page.
    if q.since.is_some() && q.before.is_none() {
        let (jobs, _) = hub_jobs::list_since_oldest_first(&api.hub.db.read(), &q, None)?;
        return json(
            200,
            &serde_json::Value::Array(jobs.iter().map(shapes::job).collect()),
        );
    }
    let (jobs, next) = hub_jobs::list(&api.hub.db.read(), &q)?;
    let mut page = super::paging::page(&jobs, paging.limit, |j| j.seq, shapes::job);
    if page.next.is_none() {
        page.next = next;
    }
    super::paging::respond(req, "jobs", page)
}

/// The `since` of a long-poll: the query value, or (first time, absent)
/// the current version, remembered in the request for later runs.
fn since(req: &mut Request, current: i64) -> Result<i64, ApiError> {
    match int_param(req, "since")? {
        Some(v) => Ok(v),
        None => {
            req.query.push(("since".into(), current.to_string()));
            Ok(current)
        }
    }
}

/// `GET /api/jobs/{job_id}?wait=S&since=V`
pub fn get(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let wait = wait_param(req)?;
    let id = req.param("job_id").to_string();
    // The newest event id first, then the snapshot: a change committed in
    // between is in the snapshot or wakes the request (see `http::park`).
    let (job, seen) = {
        let conn = api.hub.db.read();
        let seen = events::last_id(&conn)?;
        (hub_jobs::get(&conn, &id)?, seen)
    };
    if wait.is_some() {
        let since = since(req, job.version)?;
        let is_new = job.version > since || job.state.is_terminal();
        if let Some(deadline) = should_park(req, wait, is_new) {
            return Ok(Reply::Park {
                keys: vec![format!("job:{id}")],
                seen,
                deadline,
            });
        }
    }
    json(200, &shapes::job(&job))
}

/// `GET /jobs/{job_id}` (legacy shape), also long-pollable.
pub fn legacy_get(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let reply = get(api, req)?;
    if let Reply::Respond(_) = reply {
        let job = hub_jobs::get(&api.hub.db.read(), req.param("job_id"))?;
        return json(200, &shapes::legacy_job(&job));
    }
    Ok(reply)
}

/// `POST /api/jobs/{job_id}/cancel`
pub fn cancel(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let job = control::cancel_job(&api.hub, req.param("job_id"))?;
    json(200, &shapes::job(&job))
}

/// `POST /api/jobs/{job_id}/pause`
pub fn pause(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let job = control::pause_job(&api.hub, req.param("job_id"))?;
    json(200, &shapes::job(&job))
}

/// `POST /api/jobs/{job_id}/resume`
pub fn resume(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let job = control::resume_job(&api.hub, req.param("job_id"))?;
    json(200, &shapes::job(&job))
}

/// `POST /jobs/{job_id}/resume` (legacy shape).
pub fn legacy_resume(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let job = control::resume_job(&api.hub, req.param("job_id"))?;
    json(200, &shapes::legacy_job(&job))
}

/// `POST /api/jobs/{job_id}/retry`
pub fn retry(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let job = control::retry_job(&api.hub, req.param("job_id"), &origin(req))?;
    json(201, &shapes::job(&job))
}

/// `GET /api/batches/{batch_id}?wait=S&since=V`: answers at once when the
/// batch's version is past `V` or every job is terminal; otherwise holds
/// the request until a job of the batch changes or `S` seconds pass.
pub fn batch(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let wait = wait_param(req)?;
    let id = req.param("batch_id").to_string();
    // The newest event id first, then the snapshot (as in `get`).
    let (snap, seen) = {
        let conn = api.hub.db.read();
        let seen = events::last_id(&conn)?;
        (hub_jobs::batch_snapshot(&conn, &id)?, seen)
    };
    if wait.is_some() {
        let since = since(req, snap.batch.version)?;
        let is_new = snap.batch.version > since || snap.all_terminal();
        if let Some(deadline) = should_park(req, wait, is_new) {
            return Ok(Reply::Park {
                keys: vec![format!("batch:{id}")],
                seen,
                deadline,
            });
        }
    }
    json(200, &shapes::batch(&snap))
}
