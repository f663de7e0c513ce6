//! Printing routes: `POST /print`, `POST /api/print/{printer_key}/batch`
//! (both with `Idempotency-Key`), and `POST /api/render/preview`.

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{body, origin, Api, ApiError};
use crate::http::{Reply, Request, Response};
use crate::hub::labels::{self, LabelError, LabelRequest, Target};
use crate::hub::printers;
use crate::hub::rfc3339;
use crate::hub::submit::{self, Accepted, Idempotency, Item, Outcome, PrintOptions, Submission};
use crate::hub::HubError;

/// Upstream `PrintRequest` plus `printer` (slug or id; default printer when
/// absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintRequest {
    pub content_type: String,
    #[serde(default)]
    pub options: PrintOptions,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub lookup: Option<Value>,
    #[serde(default)]
    pub printer: Option<String>,
}

/// One item of a batch (upstream `PrintRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub content_type: String,
    #[serde(default)]
    pub options: PrintOptions,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub lookup: Option<Value>,
}

/// Upstream `BatchRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub items: Vec<ItemRequest>,
    #[serde(default)]
    pub printer_slug: Option<String>,
    #[serde(default)]
    pub half_cut_override: Option<bool>,
}

/// Types one item at the edge: its label data (given or looked up), content
/// type and options. `idx` and `of` place it in a batch.
fn item(
    api: &Api,
    (idx, of): (Option<usize>, usize),
    content_type: &str,
    options: PrintOptions,
    data: Option<Value>,
    lookup: Option<Value>,
) -> Result<Item, ApiError> {
    let at = |field: &str| match idx {
        Some(i) => format!("items[{i}].{field}"),
        None => field.to_string(),
    };
    let data = match (data, lookup) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "validation_error",
                format!("{}: send either `data` or `lookup`, not both", at("lookup")),
            ))
        }
        // Label data from Snipe-IT, Grocy or Spoolman.
        (None, Some(lookup)) => {
            super::integrations::lookup_label_data(api, &lookup, &at("lookup"))?
        }
        (Some(Value::Object(map)), None) => Value::Object(map),
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "validation_error",
                format!("{}: expected an object", at("data")),
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "validation_error",
                format!("{}: required (or `lookup`)", at("data")),
            ))
        }
    };
    let idx = idx.filter(|_| of > 1);
    Ok(Item::parse(content_type, data, options, idx).map_err(HubError::from)?)
}

/// The `Idempotency-Key` of a submission, keyed by (API key, resolved
/// route, resolved printer id, key): the same key on another spelling of
/// the path, or with the printer named by slug instead of id, is the same
/// request.
pub(super) fn idempotency(
    req: &Request,
    printer_id: &str,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(key) = req.header("idempotency-key") else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::invalid(
            "validation_error",
            "Idempotency-Key: 1 to 255 characters",
        ));
    }
    let principal = req
        .principal
        .as_ref()
        .map(|p| p.actor())
        .unwrap_or_else(|| "anonymous".into());
    let route = format!("{} {}", req.method, req.template);
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update(b" ");
    hash.update(printer_id.as_bytes());
    hash.update(b"\n");
    hash.update(&req.body);
    let fingerprint: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(Idempotency {
        scope: format!("{route}|{printer_id}|{principal}"),
        key: key.to_string(),
        fingerprint,
    }))
}

fn outcome(out: Outcome, make: impl Fn(&Accepted) -> (u16, String)) -> Result<Reply, ApiError> {
    let resp = match out {
        Outcome::Accepted(a) => {
            let (status, body) = make(&a);
            Response::new(status, "application/json", body.into_bytes())
        }
        Outcome::Replayed { status, body } => {
            Response::new(status, "application/json", body.into_bytes())
                .with_header("Idempotent-Replayed", "true")
        }
    };
    Ok(Reply::Respond(resp))
}

fn print_response(a: &Accepted) -> (u16, String) {
    let body = json!({
        "job_id": a.job_ids.first(),
        "status": "queued",
        "batch_id": a.batch_id,
        "printer_id": a.printer_id,
        "job_ids": a.job_ids,
    });
    (202, body.to_string())
}

fn batch_response(a: &Accepted) -> (u16, String) {
    let body = json!({
        "batch_id": a.batch_id,
        "printer_id": a.printer_id,
        "queued_at": rfc3339(a.queued_at),
        "job_ids": a.job_ids,
    });
    (202, body.to_string())
}

/// `POST /print`
pub fn print(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: PrintRequest = body(req)?;
    let printer = {
        let conn = api.hub.db.read();
        match &r.printer {
            Some(key) => printers::get(&conn, key)?,
            None => printers::default_printer(&conn)?,
        }
    };
    crate::auth::access::require_printer(req, &printer.id)?;
    let item = item(api, (None, 1), &r.content_type, r.options, r.data, r.lookup)?;
    let idempotency = idempotency(req, &printer.id)?;
    let sub = Submission {
        printer,
        items: vec![item],
        half_cut_override: None,
        origin: origin(req),
        idempotency,
    };
    let out = submit::submit(&api.hub, sub, &print_response)?;
    outcome(out, print_response)
}

/// `POST /api/print/{printer_key}/batch`
pub fn batch(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: BatchRequest = body(req)?;
    let printer = printers::get(&api.hub.db.read(), req.param("printer_key"))?;
    if let Some(slug) = &r.printer_slug {
        if *slug != printer.slug {
            return Err(ApiError::Invalid {
                code: "printer_slug_mismatch",
                message: format!(
                    "printer_slug `{slug}` does not match the path's printer `{}`",
                    printer.slug
                ),
                detail: Some(json!({"printer_slug": slug, "path_slug": printer.slug})),
            });
        }
    }
    if r.items.is_empty() || r.items.len() > submit::MAX_ITEMS {
        return Err(ApiError::invalid(
            "validation_error",
            format!(
                "items: 1 to {} items, got {}",
                submit::MAX_ITEMS,
                r.items.len()
            ),
        ));
    }
    // Lookups run one after another, before the submission, within one
    // overall deadline (a batch of slow lookups cannot hold a handler).
    let lookups_until = std::time::Instant::now() + super::integrations::BATCH_LOOKUP_BUDGET;
    let of = r.items.len();
    let items = r
        .items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            if it.lookup.is_some() && std::time::Instant::now() > lookups_until {
                return Err(super::integrations::lookup_budget_spent(i));
            }
            item(
                api,
                (Some(i), of),
                &it.content_type,
                it.options,
                it.data,
                it.lookup,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let idempotency = idempotency(req, &printer.id)?;
    let sub = Submission {
        printer,
        items,
        half_cut_override: r.half_cut_override,
        origin: origin(req),
        idempotency,
    };
    let out = submit::submit(&api.hub, sub, &batch_response)?;
    outcome(out, batch_response)
}

/// Upstream `_PreviewRequest` plus an optional model and media id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub content_type: String,
    pub data: Value,
    #[serde(default)]
    pub tape_mm: Option<f64>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub media: Option<String>,
    #[serde(default)]
    pub high_resolution: bool,
}

/// `POST /api/render/preview`: a PNG, no printer, no queue, no database.
pub fn preview(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    // The bounded pool first: a preview never waits for a slot,
    // so it cannot hold a handler thread either.
    let who = {
        let o = origin(req);
        o.api_key_id
            .or(o.created_by)
            .or(o.source_ip)
            .unwrap_or_default()
    };
    let _slot = api.previews.try_acquire(&who)?;
    let r: PreviewRequest = body(req)?;
    let model =
        labels::model_by_name(r.model.as_deref().unwrap_or("PT-P750W")).map_err(HubError::from)?;
    let media = match (&r.media, r.tape_mm) {
        (Some(m), _) => m.clone(),
        (None, Some(mm)) if mm.fract() == 0.0 => format!("{}", mm as i64),
        (None, Some(mm)) => format!("{mm}"),
        (None, None) => "12".to_string(),
    };
    if !r.data.is_object() {
        return Err(ApiError::invalid(
            "validation_error",
            "data: expected an object",
        ));
    }
    let tape_mm = r.tape_mm;
    let unsupported = |e: LabelError| match (&r.media, tape_mm, &e) {
        // A width given as `tape_mm` that the model cannot print is
        // upstream's 409 `unsupported_tape`.
        (None, Some(mm), LabelError::Media(_))
        | (
            None,
            Some(mm),
            LabelError::Render {
                code: "unknown_media" | "media_not_supported",
                ..
            },
        ) => HubError::Label(LabelError::Render {
            code: "unsupported_tape",
            message: format!("tape_mm={mm} is not a supported tape width: {e}"),
            detail: Some(json!({"tape_mm": mm})),
        }),
        _ => HubError::from(e),
    };
    let (content_type, data) = labels::parse(&r.content_type, r.data).map_err(HubError::from)?;
    let mut target = Target::on(model, &media).map_err(|e| unsupported(e.into()))?;
    target.high_res = r.high_resolution;
    let page = api
        .hub
        .renderer
        .render(&LabelRequest {
            target: &target,
            content_type,
            data: &data,
        })
        .map_err(unsupported)?;
    let png = api.hub.renderer.to_png(&page);
    Ok(Reply::Respond(Response::new(200, "image/png", png)))
}

/// The preview pool: at most `total` previews render at once,
/// and at most `per_key` for one API key (or principal, or client address).
/// A preview past either answers 429 `preview_busy` with `Retry-After: 1`
/// at once, so previews cannot take the CPU (or the handler threads) that
/// printing needs.
pub struct PreviewPool {
    total: usize,
    per_key: usize,
    busy: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// A slot of the [`PreviewPool`], given back on drop (also on a panic).
pub struct PreviewSlot<'a> {
    pool: &'a PreviewPool,
    key: String,
}

impl PreviewPool {
    pub fn new(total: usize, per_key: usize) -> PreviewPool {
        PreviewPool {
            total: total.max(1),
            per_key: per_key.max(1),
            busy: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for `key`, or refuses at once.
    pub fn try_acquire(&self, key: &str) -> Result<PreviewSlot<'_>, ApiError> {
        let mut busy = self.lock();
        let total: usize = busy.values().sum();
        let mine = busy.get(key).copied().unwrap_or(0);
        let refuse = |message: String| ApiError::Busy {
            code: "preview_busy",
            message,
            retry_after_s: 1,
        };
        if total >= self.total {
            return Err(refuse(format!(
                "{total} previews are rendering, the most at once \
                 (PRINTER_HUB_PREVIEW_CONCURRENCY); retry in a moment"
            )));
        }
        if mine >= self.per_key {
            return Err(refuse(format!(
                "this key already has {mine} previews rendering, the most at once for one key \
                 (PRINTER_HUB_PREVIEW_PER_KEY); retry in a moment"
            )));
        }
        *busy.entry(key.to_string()).or_insert(0) += 1;
        Ok(PreviewSlot {
            pool: self,
            key: key.to_string(),
        })
    }
}

impl Drop for PreviewSlot<'_> {
    fn drop(&mut self) {
        let mut busy = self.pool.lock();
        if let Some(n) = busy.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[test]
    fn preview_pool_bounds_total_and_per_key_and_frees_on_drop() {
        let pool = PreviewPool::new(2, 1);
        let a = pool.try_acquire("a").unwrap();
        assert_eq!(pool.try_acquire("a").err().unwrap().code(), "preview_busy");
        let b = pool.try_acquire("b").unwrap();
        let err = pool.try_acquire("c").err().unwrap();
        assert_eq!((err.code(), err.status()), ("preview_busy", 429));
        drop(a);
        let _a2 = pool.try_acquire("a").unwrap();
        drop(b);
        let _c = pool.try_acquire("c").unwrap();
    }
}
