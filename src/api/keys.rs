//! The handlers of `/api/admin/api-keys` and `/api/admin/audit`: HTTP in
//! and out around `auth::admin`, which holds the rules and the SQL.

use serde_json::Value;

use super::{body, json, Api, ApiError};
use crate::auth::access::AuthState;
use crate::auth::admin::{self, Actor};
use crate::auth::AuthError;
use crate::http::{Reply, Request, Response};
use crate::hub::{now_ms, printers};

fn state(api: &Api) -> Result<&AuthState, ApiError> {
    api.auth()
        .ok_or_else(|| AuthError::MissingCredentials.into())
}

fn actor(req: &Request) -> (String, Option<String>) {
    let name = req
        .principal
        .as_ref()
        .map(|p| p.actor())
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
