//! The HTTP face of `auth`: the gate every request passes
//! ([`authenticate`], called by `Api::authenticate`), and the handlers of
//! `/api/admin/api-keys` and `/api/admin/audit` (registered in
//! `api::routes`).
//!
//! Per request, in this order (the first failure answers):
//! 1. the real client address, which `http::server` took from the header
//!    only `http::front` sets; a request without one did not come through
//!    the front and is refused (`direct_connection_refused`);
//! 2. public routes (`/healthz`, `/openapi.json`) stop here;
//! 3. the credentials ([`Gate::authenticate`]: 401);
//! 4. the route's scope (403 `insufficient_scope`);
//! 5. the printer allow-list, for every route that names a printer, job or
//!    batch in its path, and for the list routes (403 `printer_not_allowed`);
//! 6. the JSON nesting limit (400 `json_too_deep`);
//! 7. the submission bucket, for routes that create jobs (429).
//!
//! **Invariants:**
//! - A key limited to printers never reaches a handler for another printer's
//!   printer, job or batch; list routes only show its printers; and it
//!   cannot manage keys or create printers (that could widen its access).
//! - Requests the gate refuses cost no tokens; only submissions are rate
//!   limited.

use serde_json::Value;

use super::admin::{self, Actor};
use super::limits::{json_depth, MAX_JSON_DEPTH};
use super::{AuthError, Gate, Principal, PrinterAccess, Scope};
use crate::api::{body, json, Api, ApiError};
use crate::http::{self, Reply, Request, Response};
use crate::hub::{jobs, now_ms, printers};

/// What `Api` holds for access control: the gate, and whether the server
/// runs behind the front (always, in `serve`): then a request must carry
/// the client address the front set.
pub struct AuthState {
    pub gate: Gate,
    pub behind_front: bool,
}

/// The paths of routes that create jobs (charged to the submission bucket).
fn is_submission(req: &Request) -> bool {
    req.method == "POST"
        && (req.path == "/print"
            || (req.path.starts_with("/api/print/") && req.path.ends_with("/batch"))
            || (req.path.starts_with("/api/jobs/") && req.path.ends_with("/retry")))
}

fn to_http_scope(scope: Scope) -> http::Scope {
    match scope {
        Scope::Read => http::Scope::Read,
        Scope::Print => http::Scope::Print,
        Scope::Admin => http::Scope::Admin,
    }
}

fn from_http_scope(scope: http::Scope) -> Option<Scope> {
    match scope {
        http::Scope::Public => None,
        http::Scope::Read => Some(Scope::Read),
        http::Scope::Print => Some(Scope::Print),
        http::Scope::Admin => Some(Scope::Admin),
    }
}

/// The gate. On success `req.principal` is set (none for public routes)
/// and `req.peer` is the real client address.
pub fn authenticate(
    api: &Api,
    state: &AuthState,
    req: &mut Request,
    scope: http::Scope,
) -> Result<(), ApiError> {
    if state.behind_front && req.peer.is_none() {
        return Err(AuthError::DirectConnection.into());
    }
    let Some(required) = from_http_scope(scope) else {
        req.principal = None;
        return Ok(());
    };
    // Keys are looked up on the read connection: authentication does not
    // wait behind a commit's fsync. The writing connection is taken only for
    // the once-a-minute `last_used_*` refresh.
    let (principal, touch) = {
        let conn = api.hub.db.read();
        let ip = req.peer.map(|p| p.ip());
        state
            .gate
            .authenticate_read(&conn, |name| req.header(name), ip, now_ms())?
    };
    if let Some(touch) = touch {
        touch.write(&api.hub.db.lock());
    }
    principal.require(required)?;
    check_printers(api, &principal, req)?;
    if json_depth(&req.body) > MAX_JSON_DEPTH {
        return Err(AuthError::JsonTooDeep {
            limit: MAX_JSON_DEPTH,
        }
        .into());
    }
    if is_submission(req) {
        state.gate.charge_submission(&principal)?;
    }
    req.principal = Some(http::Principal {
        api_key_id: principal.api_key_id().map(|id| id.to_string()),
        name: principal.actor(),
        scope: Some(to_http_scope(principal.scope)),
        allowed_printers: match &principal.printers {
            PrinterAccess::All => Vec::new(),
            PrinterAccess::Only(ids) => ids.iter().map(|id| id.to_string()).collect(),
        },
    });
    Ok(())
}

/// Step 5: the printer allow-list.
fn check_printers(api: &Api, principal: &Principal, req: &mut Request) -> Result<(), ApiError> {
    let PrinterAccess::Only(allowed) = &principal.printers else {
        return Ok(());
    };
    // Routes that could widen a restricted key's reach, or show other
    // printers' changes.
    let widening = req.path.starts_with("/api/admin/api-keys")
        || req.path == "/api/admin/audit"
        || (req.method == "POST" && req.path == "/api/v1/admin/printers");
    if widening {
        return Err(AuthError::PrinterNotAllowed.into());
    }
    // Whatever the path names. A resource that does not exist is left to
    // the handler (404).
    let conn = api.hub.db.lock();
    for name in ["printer_id", "printer_key", "slug"] {
        let key = req.param(name);
        if !key.is_empty() {
            if let Ok(p) = printers::get(&conn, key) {
                principal.require_printer(&p.id)?;
            }
        }
    }
    let job = req.param("job_id");
    if !job.is_empty() {
        if let Ok(j) = jobs::get(&conn, job) {
            principal.require_printer(&j.printer_id)?;
        }
    }
    let batch = req.param("batch_id");
    if !batch.is_empty() {
        if let Ok(b) = jobs::batch(&conn, batch) {
            principal.require_printer(&b.printer_id)?;
        }
    }
    drop(conn);
    // Feeds across printers: narrowed to the key's printer, or refused.
    if req.method == "GET" && (req.path == "/api/jobs" || req.path == "/api/events") {
        match req.query("printer_id").filter(|s| !s.is_empty()) {
            Some(id) => principal.require_printer(id)?,
            None if allowed.len() == 1 => {
                req.query
                    .push(("printer_id".into(), allowed[0].to_string()));
            }
            None => {
                return Err(AuthError::invalid(
                    "printer_id",
                    "this key is limited to several printers: pass printer_id=<one of them>",
                )
                .into())
            }
        }
    }
    Ok(())
}

/// Whether the request's principal may see or use the printer with this id
/// (for handlers that list printers or resolve a default printer).
pub fn may_use_printer(req: &Request, printer_id: &str) -> bool {
    match &req.principal {
        Some(p) => {
            p.allowed_printers.is_empty() || p.allowed_printers.iter().any(|a| a == printer_id)
        }
        None => false,
    }
}

/// `Err(printer_not_allowed)` unless [`may_use_printer`].
pub fn require_printer(req: &Request, printer_id: &str) -> Result<(), ApiError> {
    if may_use_printer(req, printer_id) {
        Ok(())
    } else {
        Err(AuthError::PrinterNotAllowed.into())
    }
}

fn state(api: &Api) -> Result<&AuthState, ApiError> {
    api.auth()
        .ok_or_else(|| AuthError::MissingCredentials.into())
}

fn actor(req: &Request) -> (String, Option<String>) {
    let name = req
        .principal
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "unknown".into());
    (name, req.peer.map(|p| p.ip().to_string()))
}

/// Runs `f` in one transaction on the hub's connection.
fn in_tx<T>(
    api: &Api,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, AuthError>,
) -> Result<T, ApiError> {
    let conn = api.hub.db.lock();
    let tx = conn
        .unchecked_transaction()
        .map_err(|e| ApiError::from(AuthError::Db(e)))?;
    let out = f(&tx)?;
    tx.commit().map_err(|e| ApiError::from(AuthError::Db(e)))?;
    Ok(out)
}

/// `GET /api/admin/api-keys`
pub fn list_keys(api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let list = admin::list(&api.hub.db.lock())?;
    json(200, &list)
}

/// `POST /api/admin/api-keys` -> 201 with the plaintext (once).
pub fn create_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: admin::CreateRequest = body(req)?;
    let (name, ip) = actor(req);
    let created = in_tx(api, |conn| {
        let exists = |id: &uuid::Uuid| printers::get(conn, &id.to_string()).is_ok();
        admin::create(
            conn,
            r,
            Actor {
                name: &name,
                source_ip: ip.as_deref(),
            },
            &exists,
            now_ms(),
        )
    })?;
    let resp = Response::json(201, &created).with_header("Cache-Control", "no-store");
    Ok(Reply::Respond(resp))
}

/// `GET /api/admin/api-keys/{key_id}`
pub fn get_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let view = admin::get(&api.hub.db.lock(), req.param("key_id"))?;
    json(200, &view)
}

/// `PATCH /api/admin/api-keys/{key_id}`
pub fn update_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: admin::PatchRequest = body(req)?;
    let st = state(api)?;
    let (name, ip) = actor(req);
    let id = req.param("key_id").to_string();
    let view = in_tx(api, |conn| {
        let exists = |id: &uuid::Uuid| printers::get(conn, &id.to_string()).is_ok();
        admin::update(
            conn,
            &st.gate,
            &id,
            r,
            Actor {
                name: &name,
                source_ip: ip.as_deref(),
            },
            &exists,
            now_ms(),
        )
    })?;
    json(200, &view)
}

/// `DELETE /api/admin/api-keys/{key_id}` -> 204 (revoked = disabled).
pub fn revoke_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let st = state(api)?;
    let (name, ip) = actor(req);
    let id = req.param("key_id").to_string();
    in_tx(api, |conn| {
        admin::revoke(
            conn,
            &st.gate,
            &id,
            Actor {
                name: &name,
                source_ip: ip.as_deref(),
            },
            now_ms(),
        )
    })?;
    Ok(Reply::Respond(Response::empty(204)))
}

/// `GET /api/admin/audit?limit&before_id&target_type&target_id`
pub fn audit(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let q = admin::audit_query(&req.query)?;
    let page: Value = admin::audit_page(&api.hub.db.lock(), &q)?;
    json(200, &page)
}
