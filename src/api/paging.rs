//! Paging shared by the list routes: `limit` (bounded) and an
//! opaque `cursor`; the next page's cursor is in `X-Next-Cursor` and a
//! `Link: <...>; rel="next"` header, absent on the last page.
//!
//! **Invariant (bounded lists):** a list answer holds at most its route's
//! maximum `limit` items and at most [`MAX_PAGE_BYTES`] of JSON (a page
//! ends early, with a cursor, when the next item would pass it; one item
//! always fits). The handler reads at most `limit + 1` rows.
//!
//! A cursor is `base64url("<list>:<position>")`: opaque to clients, and a
//! cursor of one list is refused by another (422 `invalid_cursor`).

use serde_json::Value;

use super::ApiError;
use crate::http::{Reply, Request, Response};

/// The most JSON bytes one page carries (well under the 1 MB target).
pub const MAX_PAGE_BYTES: usize = 512 * 1024;

/// `limit` and `cursor` of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: usize,
    /// The position after which the page starts (the list decides what a
    /// position is: a `seq`, an event id).
    pub after: Option<i64>,
}

/// Reads `limit` (`default` when absent, 1 to `max`) and `cursor` (made
/// by [`cursor`] for the same `list`). `legacy_int` also accepts a bare
/// integer cursor (what `GET /api/jobs` answered before).
pub fn params(
    req: &Request,
    list: &str,
    default: usize,
    max: usize,
    legacy_int: bool,
) -> Result<Paging, ApiError> {
    let limit = match req.query("limit") {
        None | Some("") => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "validation_error",
                    format!("limit={v}: 1 to {max}"),
                ))
            }
        },
    };
    let after = match req.query("cursor") {
        None | Some("") => None,
        Some(c) => Some(
            parse_cursor(list, c, legacy_int).ok_or_else(|| ApiError::Invalid {
                code: "invalid_cursor",
                message: format!(
                "cursor={c}: not a cursor of this list (use X-Next-Cursor of the previous page)"
            ),
                detail: None,
            })?,
        ),
    };
    Ok(Paging { limit, after })
}

/// The opaque cursor of position `at` in `list`.
pub fn cursor(list: &str, at: i64) -> String {
    crate::base64::encode_url(format!("{list}:{at}").as_bytes())
}

fn parse_cursor(list: &str, c: &str, legacy_int: bool) -> Option<i64> {
    if legacy_int {
        if let Ok(n) = c.parse::<i64>() {
            return Some(n);
        }
    }
    let bytes = crate::base64::decode(c).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (name, at) = text.split_once(':')?;
    (name == list).then(|| at.parse().ok())?
}

/// Items of one page, cut at `limit` items or [`MAX_PAGE_BYTES`], each
/// serialised once, and the position of the last one included when more
/// follow.
pub struct Page {
    pub items: Vec<Vec<u8>>,
    pub next: Option<i64>,
}

impl Page {
    /// The items as one JSON array.
    pub fn array(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.push(b']');
        out
    }

    /// The items as values (for answers that wrap them in an object).
    pub fn values(&self) -> Vec<Value> {
        self.items
            .iter()
            .filter_map(|i| serde_json::from_slice(i).ok())
            .collect()
    }
}

/// Cuts `rows` (read with `limit + 1`) into a page: `shape` makes each
/// item, `position` is the value the next page starts after.
pub fn page<T>(
    rows: &[T],
    limit: usize,
    position: impl Fn(&T) -> i64,
    shape: impl Fn(&T) -> Value,
) -> Page {
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut bytes = 2;
    let mut next = None;
    for (i, row) in rows.iter().enumerate() {
        if i == limit {
            next = rows.get(i - 1).map(&position);
            break;
        }
        let item = serde_json::to_vec(&shape(row)).unwrap_or_else(|_| b"null".to_vec());
        if !items.is_empty() && bytes + item.len() + 1 > MAX_PAGE_BYTES {
            next = rows.get(i - 1).map(&position);
            break;
        }
        bytes += item.len() + 1;
        items.push(item);
    }
    Page { items, next }
}

/// The answer for a page whose body is the bare array of items, with
/// `X-Next-Cursor` and `Link` when more follow.
pub fn respond(req: &Request, list: &str, page: Page) -> Result<Reply, ApiError> {
    let mut resp = Response::new(200, "application/json", page.array());
    if let Some(at) = page.next {
        resp = with_next(resp, req, &cursor(list, at));
    }
    Ok(Reply::Respond(resp))
}

/// Adds `X-Next-Cursor` and `Link: <path?...&cursor=C>; rel="next"`.
pub fn with_next(resp: Response, req: &Request, cursor: &str) -> Response {
    let mut query: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k != "cursor")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    query.push(format!("cursor={cursor}"));
    resp.with_header("X-Next-Cursor", cursor).with_header(
        "Link",
        &format!("<{}?{}>; rel=\"next\"", req.path, query.join("&")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_are_opaque_and_tied_to_their_list() {
        let c = cursor("queue", 42);
        assert_eq!(parse_cursor("queue", &c, false), Some(42));
        assert_eq!(parse_cursor("jobs", &c, false), None);
        assert_eq!(parse_cursor("queue", "42", false), None);
        assert_eq!(parse_cursor("jobs", "42", true), Some(42));
        assert_eq!(parse_cursor("queue", "%%%", false), None);
    }

    #[test]
    fn a_page_stops_at_limit_or_bytes_and_names_the_next_position() {
        let rows: Vec<i64> = (1..=10).collect();
        let p = page(&rows, 3, |r| *r, |r| json!(r));
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.next, Some(3));
        assert_eq!(p.array(), b"[1,2,3]");
        assert_eq!(p.values(), vec![json!(1), json!(2), json!(3)]);
        let p = page(&rows[..3], 3, |r| *r, |r| json!(r));
        assert_eq!((p.items.len(), p.next), (3, None));
        // Items of 200 KB: two fit in the byte budget, the third starts
        // the next page.
        let big = "x".repeat(200 * 1024);
        let p = page(&rows, 10, |r| *r, |_| json!(big));
        assert_eq!((p.items.len(), p.next), (2, Some(2)));
        // One item always fits, however big.
        let huge = "x".repeat(MAX_PAGE_BYTES * 2);
        let p = page(&rows, 10, |r| *r, |_| json!(huge));
        assert_eq!((p.items.len(), p.next), (1, Some(1)));
    }
}
