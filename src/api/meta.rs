//! `/healthz`, `/readiness` and `/openapi.json`.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{json, openapi, Api, ApiError};
use crate::http::{Reply, Request, Response};
use crate::hub::{db, printers};

/// `GET /healthz`: static, no dependencies.
pub fn healthz(api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    json(
        200,
        &json!({
            "status": "ok",
            "version": crate::build_info::VERSION,
            "revision": crate::build_info::REVISION,
            "build_date": crate::build_info::BUILD_DATE,
            "repository": env!("CARGO_PKG_NAME"),
            "sse_active_subscribers": api.open_streams(),
            "waiting_requests": api.waiters(),
            "uptime_s": api.hub.started.elapsed().as_secs(),
        }),
    )
}

fn check(status: &str, detail: Option<String>, metric: Option<Value>) -> Value {
    let mut v = json!({"status": status});
    if let Some(d) = detail {
        v["detail"] = json!(d);
    }
    if let Some(m) = metric {
        v["metric"] = m;
    }
    v
}

/// `GET /readiness`: `not-ready` (503) when the database or the schema
/// fails, or the database cannot be written or a printer holds its queue
/// after a failed write (`checks.storage`); `degraded` when a printer
/// thread is dead or a printer is unreachable; else `ready`.
///
/// A key limited to printers sees only its printers: the printer checks
/// count, name and measure nothing else.
pub fn readiness(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let (status, body) = ready(api, Some(req));
    json(status, &body)
}

/// `GET /readiness/public`: `{"status": "ready"}` (200, also when degraded)
/// or `{"status": "not-ready"}` (503); nothing about printers, no key.
pub fn readiness_public(api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let (status, _) = ready(api, None);
    let word = if status == 200 { "ready" } else { "not-ready" };
    json(status, &json!({"status": word}))
}

/// The readiness checks; printers filtered to what `req`'s principal may
/// see (all when `None`: the answer is then reduced to one word).
fn ready(api: &Api, req: Option<&Request>) -> (u16, Value) {
    let mut checks = Map::new();
    let t = Instant::now();
    let db_ok = {
        let conn = api.hub.db.read();
        conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .is_ok()
    };
    let latency = t.elapsed().as_secs_f64() * 1000.0;
    checks.insert(
        "database".into(),
        check(
            if db_ok { "ok" } else { "fail" },
            None,
            Some(json!({"latency_ms": latency})),
        ),
    );
    // A database that cannot be written is not ready,
    // with the reason; ready again as soon as a write succeeds.
    let storage = api.hub.db.storage_health();
    // Printers holding their queue after a failed write: any of them makes
    // the hub not ready; only those the key may see are named.
    let holding: Vec<_> = printers::list(&api.hub.db.read(), false)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            api.hub
                .threads
                .live(&p.id)
                .is_some_and(|l| l.storage_error.is_some())
        })
        .collect();
    let held: Vec<String> = holding
        .iter()
        .filter(|p| req.is_none_or(|r| crate::auth::access::may_use_printer(r, &p.id)))
        .map(|p| p.slug.clone())
        .collect();
    let storage_fail = storage.is_some() || !holding.is_empty();
    checks.insert(
        "storage".into(),
        match &storage {
            None if holding.is_empty() => check("ok", None, None),
            None => check(
                "fail",
                Some(format!(
                    "storage_error: printers holding their queue until a write succeeds: {}",
                    held.join(", ")
                )),
                Some(json!({"error_code": "storage_error", "printers": held})),
            ),
            Some(f) => check(
                "fail",
                Some(format!("{}: {}", f.fault.code(), f.message)),
                Some(json!({"error_code": f.fault.code(),
                            "since_s": f.since.elapsed().as_secs(),
                            "printers": held})),
            ),
        },
    );
    let version = api.hub.db.schema_version().ok();
    let migrations_ok = version == Some(db::SCHEMA_VERSION);
    checks.insert(
        "migrations".into(),
        check(
            if migrations_ok { "ok" } else { "fail" },
            Some(format!(
                "schema {}, binary {}",
                version.map_or_else(|| "unreadable".to_string(), |v| v.to_string()),
                db::SCHEMA_VERSION
            )),
            None,
        ),
    );
    let list: Vec<_> = printers::list(&api.hub.db.read(), false)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| req.is_none_or(|r| crate::auth::access::may_use_printer(r, &p.id)))
        .collect();
    let mut dead = Vec::new();
    let mut unreachable = Vec::new();
    let mut never_polled = 0;
    for p in &list {
        if api.hub.threads.alive(&p.id) != Some(true) {
            dead.push(p.slug.clone());
        }
        match api.hub.threads.live(&p.id).and_then(|l| l.online) {
            Some(false) => unreachable.push(p.slug.clone()),
            None => never_polled += 1,
            Some(true) => {}
        }
    }
    checks.insert(
        "printer_threads".into(),
        check(
            if dead.is_empty() { "ok" } else { "fail" },
            (!dead.is_empty()).then(|| format!("no running thread: {}", dead.join(", "))),
            Some(json!({"printers": list.len(), "dead": dead.len()})),
        ),
    );
    let reach = if list.is_empty() {
        "skipped"
    } else if !unreachable.is_empty() {
        "fail"
    } else if never_polled > 0 {
        "stale"
    } else {
        "ok"
    };
    checks.insert(
        "printer_reachability".into(),
        check(
            reach,
            (!unreachable.is_empty()).then(|| format!("unreachable: {}", unreachable.join(", "))),
            Some(json!({"unreachable": unreachable.len(), "not_polled_yet": never_polled})),
        ),
    );
    let critical_fail = !db_ok || !migrations_ok || storage_fail;
    let degraded = checks.values().any(|c| c["status"] == "fail");
    let status = if critical_fail {
        "not-ready"
    } else if degraded {
        "degraded"
    } else {
        "ready"
    };
    (
        if critical_fail { 503 } else { 200 },
        json!({
            "status": status,
            "checks": checks,
            "version": crate::build_info::VERSION,
            "revision": crate::build_info::REVISION,
        }),
    )
}

/// `GET /openapi.json`
pub fn openapi(_api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let doc = openapi::document(&super::routes());
    Ok(Reply::Respond(Response::json(200, &doc)))
}
