//! Outbound webhooks: subscriptions, the durable outbox and its sender.
//!
//! The rows are written by `hub::events::outbox::enqueue`, in the transaction of
//! the event they report (an event and its deliveries commit together).
//!
//! One sender thread ([`spawn`]) posts due rows, signed the Standard
//! Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
//! and records each outcome: 2xx = delivered; anything else retries after
//! `PRINTER_HUB_WEBHOOK_RETRY_BASE_MS` doubling per attempt (capped at
//! `..._RETRY_MAX_MS`) until `PRINTER_HUB_WEBHOOK_GIVE_UP_S` (24 h) after the
//! event, then `failed`. Delivery is at-least-once: a crash between the
//! receiver's 2xx and the commit resends the same `webhook-id`.
//! Subscriber URLs obey `PRINTER_HUB_PRINTER_NETWORKS` when created and
//! again at every attempt (after DNS resolution).
//!
//! Outbound types: `job.done`, `job.failed` (also `failed_restart`),
//! `batch.finished` (the last job of a batch reached a terminal state),
//! `printer.paused`, `printer.needs_attention` (a status poll found a
//! blocking problem), `printer.media_changed` (tape/roll changed).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{client, sign, IntegrationError, Integrations};
use crate::hub::{now_ms, rfc3339, Hub, HubError};

pub use crate::hub::events::outbox::EVENT_TYPES;

/// Finished deliveries are kept this long (the delivery log).
const KEEP_FINISHED_MS: i64 = 7 * 86_400_000;
/// Most subscriptions.
pub const MAX_SUBSCRIPTIONS: i64 = 100;
/// Rows handled per sender pass.
const BATCH: usize = 32;

/// The sender's wake-up line (a full line already means "wake").
pub struct Wake {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Wake {
    pub fn new() -> Wake {
        let (tx, rx) = bounded(1);
        Wake { tx, rx }
    }

    pub fn wake(&self) {
        let _ = self.tx.try_send(());
    }
}

impl Default for Wake {
    fn default() -> Wake {
        Wake::new()
    }
}

// ---------------------------------------------------------------- admin

/// Body of `POST /api/admin/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

/// Body of `PATCH /api/admin/webhooks/{id}` (absent = unchanged).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

fn check_url(integ: &Integrations, url: &str) -> Result<String, IntegrationError> {
    let url = url.trim();
    if url.is_empty() || url.len() > 2048 {
        return Err(IntegrationError::invalid("url", "1 to 2048 characters"));
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| IntegrationError::invalid("url", "not a URL"))?;
    let port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => {
            return Err(IntegrationError::invalid(
                "url",
                "expected http:// or https://",
            ))
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| IntegrationError::invalid("url", "no host"))?;
    integ
        .config
        .networks
        .resolve(host, uri.port_u16().unwrap_or(port))
        .map_err(|reason| IntegrationError::UrlNotAllowed {
            url: url.to_string(),
            reason,
        })?;
    Ok(url.to_string())
}

fn check_events(list: &[String]) -> Result<String, IntegrationError> {
    if list.is_empty() || list.len() > EVENT_TYPES.len() {
        return Err(IntegrationError::invalid(
            "events",
            format!("one or more of {}", EVENT_TYPES.join(", ")),
        ));
    }
    let mut out: Vec<&str> = Vec::new();
    for e in list {
        let known = EVENT_TYPES.iter().find(|t| **t == e).ok_or_else(|| {
            IntegrationError::invalid(
                "events",
                format!(
                    "unknown event `{}`; known: {}",
                    e.chars().take(64).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            )
        })?;
        if !out.contains(known) {
            out.push(known);
        }
    }
    Ok(json!(out).to_string())
}

fn check_description(d: Option<String>) -> Result<Option<String>, IntegrationError> {
    match d {
        Some(d) if d.chars().count() > 500 => Err(IntegrationError::invalid(
            "description",
            "at most 500 characters",
        )),
        d => Ok(d),
    }
}

const SUB_COLUMNS: &str = "id, url, events, enabled, description, created_at, updated_at,
    last_status, last_http_status, last_error, last_attempt_at, hold_until";

fn sub_view(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let events: String = r.get(2)?;
    let ts = |v: Option<i64>| v.map(rfc3339);
    Ok(json!({
        "id": r.get::<_, String>(0)?,
        "url": r.get::<_, String>(1)?,
        "events": serde_json::from_str::<Value>(&events).unwrap_or(Value::Null),
        "enabled": r.get::<_, bool>(3)?,
        "description": r.get::<_, Option<String>>(4)?,
        "created_at": rfc3339(r.get(5)?),
        "updated_at": rfc3339(r.get(6)?),
        "last_delivery": {
            "status": r.get::<_, Option<String>>(7)?,
            "http_status": r.get::<_, Option<i64>>(8)?,
            "error": r.get::<_, Option<String>>(9)?,
            "at": ts(r.get(10)?),
            // Held after a failure: nothing is sent before this time.
            "retry_at": ts(r.get(11)?),
        },
    }))
}

fn add_counts(conn: &Connection, mut v: Value) -> Result<Value, IntegrationError> {
    let id = v["id"].as_str().unwrap_or("").to_string();
    let mut counts = json!({"pending": 0, "delivered": 0, "failed": 0});
    let mut stmt = conn.prepare_cached(
        "SELECT state, count(*) FROM webhook_outbox WHERE subscription_id = ?1 GROUP BY state",
    )?;
    let rows = stmt.query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        counts[state] = json!(n);
    }
    v["deliveries"] = counts;
    Ok(v)
}

/// `GET /api/admin/webhooks`.
pub fn list(conn: &Connection) -> Result<Value, IntegrationError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUB_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
    ))?;
    let rows: Vec<Value> = stmt.query_map([], sub_view)?.collect::<Result<_, _>>()?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|v| add_counts(conn, v))
            .collect::<Result<_, _>>()?,
    ))
}

/// `GET /api/admin/webhooks/{id}`.
pub fn get(conn: &Connection, id: &str) -> Result<Value, IntegrationError> {
    let v = conn
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id = ?1"
        ))?
        .query_row([id], sub_view)
        .optional()?
        .ok_or_else(|| IntegrationError::NoSuchSubscription(id.chars().take(64).collect()))?;
    add_counts(conn, v)
}

/// Who changes a subscription (for the audit log, like key and printer
/// changes).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `api-key:<id>` or `sso:<user>`.
    pub name: &'a str,
    pub source_ip: Option<&'a str>,
}

fn audit(
    conn: &Connection,
    actor: Actor<'_>,
    action: &str,
    id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), HubError> {
    crate::hub::audit::record(
        conn,
        crate::hub::audit::Entry {
            actor: actor.name,
            source_ip: actor.source_ip,
            action,
            target_type: "webhook",
            target_id: Some(id),
            before,
            after,
        },
        now_ms(),
    )?;
    Ok(())
}

fn view_in(conn: &Connection, id: &str) -> Result<Option<Value>, HubError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id = ?1"
        ))?
        .query_row([id], sub_view)
        .optional()?)
}

/// `POST /api/admin/webhooks`: the answer carries the secret, this once.
pub fn create(
    hub: &Hub,
    integ: &Integrations,
    req: CreateRequest,
    actor: Actor<'_>,
) -> Result<Value, IntegrationError> {
    let url = check_url(integ, &req.url)?;
    let events = check_events(&req.events)?;
    let description = check_description(req.description)?;
    let secret = match req.secret {
        Some(s) => {
            sign::secret_key(&s).ok_or_else(|| {
                IntegrationError::invalid(
                    "secret",
                    "expected whsec_ followed by base64 of 16 to 64 bytes (or leave it out)",
                )
            })?;
            s
        }
        None => sign::new_secret().map_err(|e| IntegrationError::invalid("secret", e))?,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    hub.db.write(|tx| {
        let n: i64 = tx.query_row("SELECT count(*) FROM webhook_subscriptions", [], |r| r.get(0))?;
        if n >= MAX_SUBSCRIPTIONS {
            return Err(HubError::Invalid {
                field: "subscriptions".into(),
                message: format!("at most {MAX_SUBSCRIPTIONS} webhook subscriptions"),
            });
        }
        tx.execute(
            "INSERT INTO webhook_subscriptions (id, url, events, secret, enabled, description, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, url, events, secret, req.enabled, description, now],
        )?;
        let after = view_in(tx, &id)?;
        audit(tx, actor, "webhook.create", &id, None, after)
    })?;
    let mut v = get(&hub.db.read(), &id)?;
    v["secret"] = json!(secret);
    Ok(v)
}

/// `PATCH /api/admin/webhooks/{id}`.
pub fn update(
    hub: &Hub,
    integ: &Integrations,
    id: &str,
    req: PatchRequest,
    actor: Actor<'_>,
) -> Result<Value, IntegrationError> {
    get(&hub.db.read(), id)?;
    let url = req
        .url
        .as_deref()
        .map(|u| check_url(integ, u))
        .transpose()?;
    let events = req.events.as_deref().map(check_events).transpose()?;
    let description = check_description(req.description)?;
    hub.db.write(|tx| {
        let before = view_in(tx, id)?;
        tx.execute(
            "UPDATE webhook_subscriptions SET url = coalesce(?2, url), events = coalesce(?3, events),
                 enabled = coalesce(?4, enabled), description = coalesce(?5, description), updated_at = ?6
             WHERE id = ?1",
            params![id, url, events, req.enabled, description, now_ms()],
        )?;
        let after = view_in(tx, id)?;
        audit(tx, actor, "webhook.update", id, before, after)
    })?;
    integ.sender.wake();
    get(&hub.db.read(), id)
}

/// `DELETE /api/admin/webhooks/{id}`: the subscription and its deliveries.
pub fn delete(hub: &Hub, id: &str, actor: Actor<'_>) -> Result<(), IntegrationError> {
    let n = hub.db.write(|tx| {
        let before = view_in(tx, id)?;
        tx.execute(
            "DELETE FROM webhook_outbox WHERE subscription_id = ?1",
            [id],
        )?;
        let n = tx.execute("DELETE FROM webhook_subscriptions WHERE id = ?1", [id])?;
        if n > 0 {
            audit(tx, actor, "webhook.delete", id, before, None)?;
        }
        Ok(n)
    })?;
    if n == 0 {
        return Err(IntegrationError::NoSuchSubscription(
            id.chars().take(64).collect(),
        ));
    }
    Ok(())
}

fn delivery_view(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let payload: String = r.get(4)?;
    let ts = |v: Option<i64>| v.map(rfc3339);
    Ok(json!({
        "id": r.get::<_, String>(0)?,
        "subscription_id": r.get::<_, String>(1)?,
        "event_id": r.get::<_, i64>(2)?,
        "type": r.get::<_, String>(3)?,
        "payload": serde_json::from_str::<Value>(&payload).unwrap_or(Value::Null),
        "created_at": rfc3339(r.get(5)?),
        "state": r.get::<_, String>(6)?,
        "attempts": r.get::<_, i64>(7)?,
        "next_attempt_at": match r.get::<_, String>(6)?.as_str() {
            "pending" => ts(Some(r.get(8)?)),
            _ => None,
        },
        "last_attempt_at": ts(r.get(9)?),
        "last_http_status": r.get::<_, Option<i64>>(10)?,
        "last_error": r.get::<_, Option<String>>(11)?,
        "delivered_at": ts(r.get(12)?),
        "seq": r.get::<_, i64>(13)?,
    }))
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, kind, payload, created_at, state,
    attempts, next_attempt_at, last_attempt_at, last_http_status, last_error, delivered_at, rowid";

/// `GET /api/admin/webhooks/{id}/deliveries`: newest first; the second
/// value is the next page's cursor.
pub fn deliveries(
    conn: &Connection,
    sub: &str,
    state: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> Result<(Value, Option<i64>), IntegrationError> {
    get(conn, sub)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox
         WHERE subscription_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR rowid < ?3)
         ORDER BY rowid DESC LIMIT ?4"
    ))?;
    let mut rows: Vec<Value> = stmt
        .query_map(params![sub, state, before, limit as i64 + 1], delivery_view)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().and_then(|r| r["seq"].as_i64())
    } else {
        None
    };
    Ok((Value::Array(rows), next))
}

/// `POST /api/admin/webhooks/{id}/deliveries/{delivery_id}/redeliver`:
/// the same message (same `webhook-id`) is sent again now, with a fresh
/// retry window.
pub fn redeliver(
    hub: &Hub,
    integ: &Integrations,
    sub: &str,
    delivery: &str,
) -> Result<Value, IntegrationError> {
    let now = now_ms();
    let n = hub.db.write(|tx| {
        let n = tx.execute(
            "UPDATE webhook_outbox SET state = 'pending', next_attempt_at = ?3, window_start = ?3,
                 delivered_at = NULL
             WHERE id = ?1 AND subscription_id = ?2",
            params![delivery, sub, now],
        )?;
        if n > 0 {
            // The operator asks for now: release a held subscriber too.
            tx.execute(
                "UPDATE webhook_subscriptions SET hold_until = NULL WHERE id = ?1",
                [sub],
            )?;
        }
        Ok(n)
    })?;
    if n == 0 {
        get(&hub.db.read(), sub)?;
        return Err(IntegrationError::NoSuchDelivery(
            delivery.chars().take(64).collect(),
        ));
    }
    integ.sender.wake();
    let v = hub
        .db
        .read()
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE id = ?1"
        ))?
        .query_row([delivery], delivery_view)?;
    Ok(v)
}

// --------------------------------------------------------------- sender

struct Due {
    id: String,
    sub: String,
    url: String,
    secret: String,
    payload: String,
    attempts: i64,
    window_start: i64,
}

fn load_due(conn: &Connection, now: i64) -> Result<Vec<Due>, HubError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.subscription_id, s.url, s.secret, o.payload, o.attempts, o.window_start
         FROM webhook_outbox o JOIN webhook_subscriptions s ON s.id = o.subscription_id
         WHERE o.state = 'pending' AND o.next_attempt_at <= ?1 AND s.enabled = 1
           AND coalesce(s.hold_until, 0) <= ?1
         ORDER BY o.next_attempt_at, o.rowid LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, BATCH as i64], |r| {
        Ok(Due {
            id: r.get(0)?,
            sub: r.get(1)?,
            url: r.get(2)?,
            secret: r.get(3)?,
            payload: r.get(4)?,
            attempts: r.get(5)?,
            window_start: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn next_due(conn: &Connection) -> Result<Option<i64>, HubError> {
    Ok(conn
        .query_row(
            "SELECT min(max(o.next_attempt_at, coalesce(s.hold_until, 0))) FROM webhook_outbox o
             JOIN webhook_subscriptions s ON s.id = o.subscription_id
             WHERE o.state = 'pending' AND s.enabled = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// The delay before attempt `attempts + 1` after `attempts` failures.
pub fn backoff(base: Duration, max: Duration, attempts: i64) -> Duration {
    let shift = (attempts.max(1) - 1).min(40) as u32;
    base.checked_mul(1u32 << shift.min(31))
        .unwrap_or(max)
        .min(max)
}

/// Posts one message; returns (delivered, http status, error).
fn post(integ: &Integrations, d: &Due) -> (bool, Option<u16>, Option<String>) {
    let Some(key) = sign::secret_key(&d.secret) else {
        return (
            false,
            None,
            Some("the subscription's secret is unusable".into()),
        );
    };
    let ts = now_ms() / 1000;
    let sig = sign::signature(&key, &d.id, ts, d.payload.as_bytes());
    let ts = ts.to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("webhook-id", d.id.as_str()),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    match client::request(
        "POST",
        &d.url,
        &headers,
        Some(d.payload.as_bytes()),
        integ.config.delivery_timeout,
        Some(&integ.config.networks),
    ) {
        Ok(a) if (200..300).contains(&a.status) => (true, Some(a.status), None),
        Ok(a) => (false, Some(a.status), Some(format!("HTTP {}", a.status))),
        Err(e) => (false, None, Some(e)),
    }
}

fn record(
    hub: &Hub,
    integ: &Integrations,
    d: &Due,
    outcome: (bool, Option<u16>, Option<String>),
) -> Result<(), HubError> {
    let (ok, status, error) = outcome;
    let now = now_ms();
    let attempts = d.attempts + 1;
    let cfg = &integ.config;
    let next = now + backoff(cfg.retry_base, cfg.retry_max, attempts).as_millis() as i64;
    let give_up = d.window_start + cfg.give_up.as_millis() as i64;
    let state = if ok {
        "delivered"
    } else if next > give_up {
        "failed"
    } else {
        "pending"
    };
    let last = match state {
        "pending" => "retrying",
        s => s,
    };
    hub.db.write(|tx| {
        tx.execute(
            "UPDATE webhook_outbox SET state = ?2, attempts = ?3, next_attempt_at = ?4,
                 last_attempt_at = ?5, last_http_status = ?6, last_error = ?7,
                 delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE NULL END
             WHERE id = ?1 AND state = 'pending'",
            params![d.id, state, attempts, next, now, status, error],
        )?;
        tx.execute(
            "UPDATE webhook_subscriptions SET last_status = ?2, last_http_status = ?3,
                 last_error = ?4, last_attempt_at = ?5 WHERE id = ?1",
            params![d.sub, last, status, error, now],
        )?;
        // A subscriber that failed is held until the failed message's
        // retry time: its other messages (also ones written later) wait
        // too, so a dead receiver is not hammered and does not hold the
        // sender up for the other subscribers. A success releases it.
        let hold = (state == "pending").then_some(next);
        tx.execute(
            "UPDATE webhook_subscriptions SET hold_until = ?2 WHERE id = ?1",
            params![d.sub, if ok { None } else { hold }],
        )?;
        Ok(())
    })?;
    match state {
        "delivered" => log::debug!(
            "webhook {} delivered to {} (attempt {attempts})",
            d.id,
            d.url
        ),
        "failed" => log::warn!(
            "webhook {} to {} given up after {attempts} attempts: {}",
            d.id,
            d.url,
            error.as_deref().unwrap_or("")
        ),
        _ => log::info!(
            "webhook {} to {} failed (attempt {attempts}): {}; retrying",
            d.id,
            d.url,
            error.as_deref().unwrap_or("")
        ),
    }
    Ok(())
}

fn prune(hub: &Hub) -> Result<usize, HubError> {
    let cutoff = now_ms() - KEEP_FINISHED_MS;
    hub.db.write(|tx| {
        Ok(tx.execute(
            "DELETE FROM webhook_outbox WHERE state != 'pending' AND coalesce(last_attempt_at, created_at) < ?1",
            [cutoff],
        )?)
    })
}

/// Starts the sender thread; it ends when `stop` receives or closes.
pub fn spawn(
    hub: Arc<Hub>,
    integ: Arc<Integrations>,
    stop: Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("webhook-sender".into())
        .spawn(move || run(&hub, &integ, &stop))
}

fn run(hub: &Hub, integ: &Integrations, stop: &Receiver<()>) {
    let mut last_prune = 0i64;
    loop {
        let now = now_ms();
        if now - last_prune > 3_600_000 {
            last_prune = now;
            match prune(hub) {
                Ok(0) => {}
                Ok(n) => log::info!("pruned {n} finished webhook deliveries"),
                Err(e) => log::error!("pruning webhook deliveries failed: {e}"),
            }
        }
        let due = match load_due(&hub.db.read(), now) {
            Ok(d) => d,
            Err(e) => {
                log::error!("webhook outbox unreadable: {e}");
                Vec::new()
            }
        };
        let full = due.len() == BATCH;
        let mut failing: Vec<&str> = Vec::new();
        for d in &due {
            if !matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Empty)) {
                return;
            }
            if failing.contains(&d.sub.as_str()) {
                // Held by `record` after its failure in this pass.
                continue;
            }
            let outcome = post(integ, d);
            if !outcome.0 {
                failing.push(&d.sub);
            }
            if let Err(e) = record(hub, integ, d, outcome) {
                // The row stays pending and is sent again (at-least-once).
                log::error!("cannot record webhook {}: {e}", d.id);
            }
        }
        let wait = if full {
            Duration::ZERO
        } else {
            match next_due(&hub.db.read()) {
                Ok(Some(at)) => Duration::from_millis((at - now_ms()).clamp(0, 60_000) as u64),
                _ => Duration::from_secs(60),
            }
        };
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(integ.sender.rx) -> _ => {},
            default(wait) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Duration::from_secs(5);
        let m = Duration::from_secs(7200);
        assert_eq!(backoff(b, m, 1), Duration::from_secs(5));
        assert_eq!(backoff(b, m, 2), Duration::from_secs(10));
        assert_eq!(backoff(b, m, 5), Duration::from_secs(80));
        assert_eq!(backoff(b, m, 30), m);
        assert_eq!(backoff(b, m, i64::MAX), m);
    }

    #[test]
    fn events_are_checked() {
        assert!(check_events(&["job.done".into(), "job.done".into()]).is_ok());
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["job.exploded".into()]).is_err());
    }
}
