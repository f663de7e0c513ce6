//! `GET /api/events?since=C&wait=S&printer_id&batch_id&limit`: the change
//! feed as JSON. Without `since` it starts at the newest event (nothing
//! old); `since=0` replays everything retention has kept. With `wait` and
//! nothing newer than `C`, the request is held until an event arrives or
//! `S` seconds pass.

use serde_json::{json, Value};

use super::{int_param, json, should_park, wait_param, Api, ApiError};
use crate::http::{Reply, Request};
use crate::hub::events::{self, Filter};
use crate::hub::rfc3339;

pub fn feed(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    // console (issue 11): `Accept: text/event-stream` gets a stream.
    if req.method == "GET" && crate::console::sse::wants_stream(req) {
        return crate::console::sse::open(api, req);
    }
    let wait = wait_param(req)?;
    let limit = int_param(req, "limit")?.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid("validation_error", "limit: 1 to 5000"));
    }
    let filter = Filter {
        printer_id: req.resolved("printer_id").map(str::to_string),
        batch_id: req.resolved("batch_id").map(str::to_string),
    };
    let (list, last) = {
        let conn = api.hub.db.read();
        let last = events::last_id(&conn)?;
        let since = match int_param(req, "since")? {
            Some(s) => s,
            None => {
                req.query.push(("since".into(), last.to_string()));
                last
            }
        };
        if since < 0 {
            return Err(ApiError::invalid(
                "validation_error",
                "since: 0 or a previous `next`",
            ));
        }
        (events::since(&conn, since, limit as usize, &filter)?, last)
    };
    let since = int_param(req, "since")?.unwrap_or(last);
    if let Some(deadline) = should_park(req, wait, !list.is_empty()) {
        return Ok(Reply::Park {
            keys: vec!["events".into()],
            seen: last,
            deadline,
        });
    }
    let next = list.last().map(|e| e.id).unwrap_or(since.max(0));
    let items: Vec<Value> = list
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": rfc3339(e.at),
                "type": e.kind,
                "printer_id": e.printer_id,
                "job_id": e.job_id,
                "batch_id": e.batch_id,
                "data": e.data,
            })
        })
        .collect();
    json(
        200,
        &json!({"events": items, "next": next, "last_id": last, "more": (items.len() as i64) == limit}),
    )
}
