//! The handlers of `/api/admin/api-keys` and `/api/admin/audit`: HTTP in
//! and out around `auth::admin`, which holds the rules and the SQL.

use serde_json::Value;

use super::{body, json, Api, ApiError};
use uuid::Uuid;

use crate::auth::admin::{self, Actor};
use crate::auth::{AuthError, Gate};
use crate::http::{Reply, Request, Response};
use crate::hub::{now_ms, printers};

fn gate(api: &Api) -> Result<&Gate, ApiError> {
    api.auth()
        .map(|a| &a.gate)
        .ok_or_else(|| AuthError::MissingCredentials.into())
}

/// Runs `f` in one transaction on the hub's connection, as the request's
/// audit actor, with a check that a printer id exists.
fn in_tx<T>(
    api: &Api,
    req: &Request,
    f: impl FnOnce(&rusqlite::Connection, Actor<'_>, &dyn Fn(&Uuid) -> bool) -> Result<T, AuthError>,
) -> Result<T, ApiError> {
    let (name, ip) = super::actor(req);
    let actor = Actor {
        name: &name,
        source_ip: ip.as_deref(),
    };
    let conn = api.hub.db.writer();
    let tx = conn
        .unchecked_transaction()
        .map_err(|e| ApiError::from(AuthError::Db(e)))?;
    let exists = |id: &Uuid| printers::get(&tx, &id.to_string()).is_ok();
    let out = f(&tx, actor, &exists)?;
    tx.commit().map_err(|e| ApiError::from(AuthError::Db(e)))?;
    Ok(out)
}

/// `GET /api/admin/api-keys`
pub fn list_keys(api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let list = admin::list(&api.hub.db.read())?;
    json(200, &list)
}

/// `POST /api/admin/api-keys` -> 201 with the plaintext (once).
pub fn create_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: admin::CreateRequest = body(req)?;
    let created = in_tx(api, req, |conn, actor, exists| {
        admin::create(conn, r, actor, exists, now_ms())
    })?;
    let resp = Response::json(201, &created).with_header("Cache-Control", "no-store");
    Ok(Reply::Respond(resp))
}

/// `GET /api/admin/api-keys/{key_id}`
pub fn get_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let view = admin::get(&api.hub.db.read(), req.param("key_id"))?;
    json(200, &view)
}

/// `PATCH /api/admin/api-keys/{key_id}`
pub fn update_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: admin::PatchRequest = body(req)?;
    let gate = gate(api)?;
    let id = req.param("key_id");
    let view = in_tx(api, req, |conn, actor, exists| {
        admin::update(conn, gate, id, r, actor, exists, now_ms())
    })?;
    json(200, &view)
}

/// `DELETE /api/admin/api-keys/{key_id}` -> 204 (revoked = disabled).
pub fn revoke_key(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let gate = gate(api)?;
    let id = req.param("key_id");
    in_tx(api, req, |conn, actor, _| {
        admin::revoke(conn, gate, id, actor, now_ms())
    })?;
    Ok(Reply::Respond(Response::empty(204)))
}

/// `GET /api/admin/audit?limit&before_id&target_type&target_id`
pub fn audit(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let q = admin::audit_query(&req.query)?;
    let page: Value = admin::audit_page(&api.hub.db.read(), &q)?;
    json(200, &page)
}
