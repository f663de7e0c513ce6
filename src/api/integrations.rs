//! Routes of the apps people already run: lookups
//! (`GET /api/lookup/{app}/{entity_id}`, and `lookup` on print requests),
//! inbound webhooks (`POST /api/webhook/spoolman|grocy`), QR landing pages
//! (`/loc`, `/asset`, `/spool`, `/product`) and the outbound webhook admin
//! API (`/api/admin/webhooks...`). The work is in `crate::integrations`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, int_param, json, Api, ApiError};
use crate::http::{Reply, Request, Response};
use crate::hub::printers;
use crate::hub::submit::{self, Accepted, Item, Outcome, PrintOptions, Submission};
use crate::hub::Origin;
use crate::integrations::inbound::{self, Label};
use crate::integrations::{outbox, secret_eq, App, IntegrationError, Kind};

/// Longest time the lookups of one batch may take together.
pub const BATCH_LOOKUP_BUDGET: Duration = Duration::from_secs(30);
/// Largest inbound webhook body.
const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// `lookup: {app, id}` (or upstream's `{app, identifier}`) of a print
/// request or batch item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRef {
    app: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    identifier: Option<Value>,
}

/// Resolves a print request's `lookup` into label data.
pub fn lookup_label_data(api: &Api, lookup: &Value, at: &str) -> Result<Value, ApiError> {
    let r: LookupRef = serde_json::from_value(lookup.clone()).map_err(|e| {
        ApiError::invalid(
            "validation_error",
            format!(
                "{at}: expected {{\"app\": \"snipeit|grocy|spoolman\", \"id\": \"...\"}} ({e})"
            ),
        )
    })?;
    let id = match r.id.or(r.identifier) {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "validation_error",
                format!("{at}.id: required, a string or whole number"),
            ))
        }
    };
    let app = App::parse(&r.app)?;
    let entity = api.integrations().lookups.lookup(Kind::of_app(app), &id)?;
    Ok(entity.label_data())
}

/// The error when a batch's lookups ran out of time at item `i`.
pub fn lookup_budget_spent(i: usize) -> ApiError {
    IntegrationError::LookupFailed {
        app: "batch",
        cause: format!(
            "the lookups took longer than {} s in all (stopped at items[{i}]); send fewer lookups per batch",
            BATCH_LOOKUP_BUDGET.as_secs()
        ),
    }
    .into()
}

/// `GET /api/lookup/{app}/{entity_id}`: upstream `LookupResult`.
pub fn lookup(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let app = App::parse(req.param("app"))?;
    let entity = api
        .integrations()
        .lookups
        .lookup(Kind::of_app(app), req.param("entity_id"))?;
    json(200, &entity.view())
}

// ------------------------------------------------------------- webhooks

/// `POST /api/webhook/spoolman`
pub fn webhook_spoolman(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    webhook(api, req, App::Spoolman)
}

/// `POST /api/webhook/grocy` (upstream's body or Grocy's own label
/// printer webhook, JSON or form).
pub fn webhook_grocy(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    webhook(api, req, App::Grocy)
}

fn webhook(api: &Api, req: &mut Request, app: App) -> Result<Reply, ApiError> {
    let integ = api.integrations();
    let secret = integ
        .config
        .webhook_key
        .as_deref()
        .ok_or(IntegrationError::WebhookNotConfigured)?;
    let header = req.header("x-api-key").map(|k| k.trim().to_string());
    if let Some(k) = &header {
        if !secret_eq(k.as_bytes(), secret.as_bytes()) {
            return Err(IntegrationError::WebhookUnauthorized { missing: false }.into());
        }
    }
    if req.body.len() > MAX_WEBHOOK_BODY {
        return Err(
            IntegrationError::invalid("body", format!("at most {MAX_WEBHOOK_BODY} bytes")).into(),
        );
    }
    let form = req.header("content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let parsed = inbound::parse(app, &req.body, form);
    if header.is_none() {
        // Grocy cannot send headers: its secret may ride in the body
        // (`api_key` in LABEL_PRINTER_PARAMS). Nothing is done for a
        // caller without a key, not even reporting a bad body.
        let key = parsed.as_ref().ok().and_then(|p| p.body_key.clone());
        match key {
            None => return Err(IntegrationError::WebhookUnauthorized { missing: true }.into()),
            Some(k) if !secret_eq(k.as_bytes(), secret.as_bytes()) => {
                return Err(IntegrationError::WebhookUnauthorized { missing: false }.into())
            }
            Some(_) => {}
        }
    }
    let parsed = parsed?;
    let data = match &parsed.label {
        Label::Lookup { kind, id } => integ.lookups.lookup(*kind, id)?.label_data(),
        Label::Data(d) => d.clone(),
    };
    let slug = match app {
        App::Spoolman => integ.config.spoolman_printer.as_deref(),
        App::Grocy => integ.config.grocy_printer.as_deref(),
        App::SnipeIt => None,
    };
    let printer = {
        let conn = api.hub.db.read();
        match slug {
            Some(s) => printers::get(&conn, s)?,
            None => printers::default_printer(&conn)?,
        }
    };
    // A sender that retries with the same `Idempotency-Key` gets the first
    // answer back, not a second label.
    let idempotency = super::print::idempotency(req, &printer.id)?;
    let sub = Submission {
        printer,
        items: vec![Item::parse(
            &parsed.content_type,
            data,
            PrintOptions {
                copies: parsed.copies,
                ..PrintOptions::default()
            },
            None,
        )
        .map_err(crate::hub::HubError::from)?],
        half_cut_override: None,
        origin: Origin {
            api_key_id: None,
            created_by: Some(format!("webhook:{}", app.name())),
            source_ip: req.peer.map(|p| p.ip().to_string()),
        },
        idempotency,
    };
    log::info!(
        "{} webhook ({}): printing {} cop{} on {}",
        app.name(),
        parsed.event_type.as_deref().unwrap_or("label"),
        parsed.copies,
        if parsed.copies == 1 { "y" } else { "ies" },
        sub.printer.slug
    );
    let respond = |a: &Accepted| {
        let body = json!({
            "job_id": a.job_ids.first(),
            "job_ids": a.job_ids,
            "batch_id": a.batch_id,
            "printer_id": a.printer_id,
        });
        (202, body.to_string())
    };
    match submit::submit(&api.hub, sub, &respond)? {
        Outcome::Accepted(a) => {
            let (status, body) = respond(&a);
            Ok(Reply::Respond(Response::new(
                status,
                "application/json",
                body.into_bytes(),
            )))
        }
        Outcome::Replayed { status, body } => Ok(Reply::Respond(
            Response::new(status, "application/json", body.into_bytes())
                .with_header("Idempotent-Replayed", "true"),
        )),
    }
}

// ------------------------------------------------------------- QR pages

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: u16, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>body{{font-family:sans-serif;margin:2em;max-width:40em}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    Reply::Respond(
        Response::new(status, "text/html; charset=utf-8", html.into_bytes())
            .with_header("Cache-Control", "no-store"),
    )
}

fn qr_page(api: &Api, req: &Request, kind: Kind, noun: &str) -> Result<Reply, ApiError> {
    let id = req.param("entity_id");
    let app = kind.app().name();
    Ok(match api.integrations().lookups.lookup(kind, id) {
        Ok(entity) => match &entity.url {
            Some(url) => Reply::Respond(
                Response::new(302, "text/plain; charset=utf-8", url.clone().into_bytes())
                    .with_header("Location", url)
                    .with_header("Cache-Control", "no-store"),
            ),
            None => page(
                200,
                &format!("{noun} {id}"),
                &format!("<p>{}</p>", escape(entity.name.as_deref().unwrap_or(id))),
            ),
        },
        Err(IntegrationError::NotConfigured { .. }) => page(
            200,
            &format!("{noun} {id}"),
            &format!(
                "<p>This label is {noun} <b>{}</b> in {app}.</p>\
                 <p>{app} is not connected to this print hub, so there is nothing more to show.</p>",
                escape(id)
            ),
        ),
        Err(IntegrationError::NotFound { .. }) | Err(IntegrationError::Invalid { .. }) => page(
            404,
            "Not found",
            &format!("<p>{app} has no {noun} <b>{}</b>.</p>", escape(id)),
        ),
        Err(e) => page(
            502,
            &format!("{noun} {id}"),
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    })
}

/// `GET /loc/{entity_id}`: a Snipe-IT location.
pub fn qr_location(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    qr_page(api, req, Kind::Location, "location")
}

/// `GET /asset/{entity_id}`: Snipe-IT hardware by asset tag.
pub fn qr_asset(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    qr_page(api, req, Kind::Asset, "asset")
}

/// `GET /spool/{entity_id}`: a Spoolman spool.
pub fn qr_spool(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    qr_page(api, req, Kind::Spool, "spool")
}

/// `GET /product/{entity_id}`: a Grocy product.
pub fn qr_product(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    qr_page(api, req, Kind::Product, "product")
}

// ------------------------------------------------------ outbound admin

/// The audit actor of a request (`api-key:<id>`, `sso:<user>`).
fn with_actor<T>(req: &Request, f: impl FnOnce(outbox::Actor<'_>) -> T) -> T {
    let (name, ip) = super::actor(req);
    f(outbox::Actor {
        name: &name,
        source_ip: ip.as_deref(),
    })
}

/// `GET /api/admin/webhooks`
pub fn list_subscriptions(api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    json(200, &outbox::list(&api.hub.db.read())?)
}

/// `POST /api/admin/webhooks`
pub fn create_subscription(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: outbox::CreateRequest = body(req)?;
    let created = with_actor(req, |a| outbox::create(&api.hub, api.integrations(), r, a))?;
    json(201, &created)
}

/// `GET /api/admin/webhooks/{subscription_id}`
pub fn get_subscription(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    json(
        200,
        &outbox::get(&api.hub.db.read(), req.param("subscription_id"))?,
    )
}

/// `PATCH /api/admin/webhooks/{subscription_id}`
pub fn update_subscription(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: outbox::PatchRequest = body(req)?;
    let id = req.param("subscription_id").to_string();
    let updated = with_actor(req, |a| {
        outbox::update(&api.hub, api.integrations(), &id, r, a)
    })?;
    json(200, &updated)
}

/// `DELETE /api/admin/webhooks/{subscription_id}`
pub fn delete_subscription(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let id = req.param("subscription_id").to_string();
    with_actor(req, |a| outbox::delete(&api.hub, &id, a))?;
    Ok(Reply::Respond(Response::empty(204)))
}

/// `GET /api/admin/webhooks/{subscription_id}/deliveries?state&limit&cursor`
pub fn deliveries(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let limit = int_param(req, "limit")?.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("validation_error", "limit: 1 to 200"));
    }
    let state = match req.query("state") {
        None | Some("") => None,
        Some(s @ ("pending" | "delivered" | "failed")) => Some(s.to_string()),
        Some(s) => {
            return Err(ApiError::invalid(
                "validation_error",
                format!("state={s}: one of pending, delivered, failed"),
            ))
        }
    };
    let (rows, next) = outbox::deliveries(
        &api.hub.db.read(),
        req.param("subscription_id"),
        state.as_deref(),
        int_param(req, "cursor")?,
        limit as usize,
    )?;
    let mut resp = Response::json(200, &rows);
    if let Some(c) = next {
        resp = resp.with_header("X-Next-Cursor", &c.to_string());
    }
    Ok(Reply::Respond(resp))
}

/// `POST /api/admin/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver`
pub fn redeliver(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    json(
        202,
        &outbox::redeliver(
            &api.hub,
            api.integrations(),
            req.param("subscription_id"),
            req.param("delivery_id"),
        )?,
    )
}
