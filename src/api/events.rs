//! `GET /api/events?since=C&wait=S&printer_id&batch_id&limit`: the change
//! feed as JSON. Without `since` it starts at the newest event (nothing
//! old); `since=0` replays everything retention has kept. With `wait` and
//! nothing newer than `C`, the request is held until an event arrives or
//! `S` seconds pass.

use serde_json::json;

use super::{int_param, should_park, wait_param, Api, ApiError};
use crate::http::{Reply, Request, Response};
use crate::hub::events::{self, Filter};
use crate::hub::rfc3339;

pub fn feed(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    // The console's `Accept: text/event-stream` gets a stream.
    if req.method == "GET" && crate::console::sse::wants_stream(req) {
        return crate::console::sse::open(api, req);
    }
    let wait = wait_param(req)?;
    // Bounded like every list (`api::paging`): at most 500 events and
    // MAX_PAGE_BYTES of JSON; `next` continues where a page stopped.
    let limit = int_param(req, "limit")?.unwrap_or(500);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("validation_error", "limit: 1 to 500"));
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
    let page = super::paging::page(
        &list,
        limit as usize,
        |e| e.id,
        |e| {
            json!({
                "id": e.id,
                "at": rfc3339(e.at),
                "type": e.kind,
                "printer_id": e.printer_id,
                "job_id": e.job_id,
                "batch_id": e.batch_id,
                "data": e.data,
            })
        },
    );
    let cut = page.next.is_some();
    let next = match page.next {
        Some(at) => at,
        None => list.last().map(|e| e.id).unwrap_or(since.max(0)),
    };
    let more = cut || (page.items.len() as i64) == limit;
    // The items are serialised once (by `paging::page`) and spliced in.
    let mut out = b"{\"events\":".to_vec();
    out.extend_from_slice(&page.array());
    out.extend_from_slice(
        format!(",\"next\":{next},\"last_id\":{last},\"more\":{more}}}").as_bytes(),
    );
    Ok(Reply::Respond(Response::new(200, "application/json", out)))
}
