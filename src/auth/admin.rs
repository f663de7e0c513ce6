//! The admin API for keys and the audit log, in upstream's shapes:
//! `/api/admin/api-keys` (list, create, get, patch, delete = revoke) and
//! `/api/admin/audit` (read). The `api` layer routes here with a parsed body
//! and a connection (inside one transaction, so a change and its audit row
//! commit together); this module validates, writes and audits.
//!
//! **Invariants:**
//! - The plaintext appears only in [`create`]'s answer; [`key_view`] (upstream
//!   `ApiKeyRead`) never carries the digest or the key.
//! - Every change writes one audit row with the redacted before/after view.
//! - The last enabled, unexpired admin key that is not limited to printers
//!   cannot be disabled or limited to printers (that would lock every admin
//!   out of key management; the bootstrap key is only made when no key
//!   exists). Admin keys limited to printers do not count: they cannot
//!   manage keys.

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::store::{self, KeyPatch, KeyRow, NewKey};
use super::{audit, AuthError, Gate};
#[cfg(doc)]
use crate::http::Principal;
use crate::http::Scope;
use crate::hub::{parse_rfc3339, rfc3339};

/// Longest key name, notes text and allow-list.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_NOTES_CHARS: usize = 2000;
pub const MAX_ALLOWED_PRINTERS: usize = 256;

/// Body of `POST /api/admin/api-keys` (upstream `ApiKeyCreate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub scopes: Vec<String>,
    /// Absent or `null`: every printer. `[]` is refused (an empty list
    /// silently meaning "every printer" surprised operators).
    #[serde(default)]
    pub allowed_printer_ids: Option<Vec<String>>,
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: i64,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

fn default_rate() -> i64 {
    60
}

/// Body of `PATCH /api/admin/api-keys/{id}` (upstream `ApiKeyPatch`; `null`
/// or absent = unchanged; scopes cannot change).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub rate_limit_per_minute: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Absent: unchanged; `null`: every printer; `[]`: refused.
    #[serde(default, deserialize_with = "present")]
    pub allowed_printer_ids: Option<Option<Vec<String>>>,
}

/// A field that is present (even as `null`) is `Some`: tells "absent" from
/// "null" in a PATCH body.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Who is making an admin change, for the audit row.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// [`Principal::actor`]: `api-key:<uuid>` or `sso:<user>`.
    pub name: &'a str,
    pub source_ip: Option<&'a str>,
}

/// `ApiKeyRead`: metadata only.
pub fn key_view(row: &KeyRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "key_prefix": row.key_prefix,
        "scopes": [row.scope.as_str()],
        "allowed_printer_ids": row.allowed_printer_ids,
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "enabled": row.enabled,
        "created_at": rfc3339(row.created_at),
        "last_used_at": row.last_used_at.map(rfc3339),
        "last_used_ip": row.last_used_ip,
        "expires_at": row.expires_at.map(rfc3339),
        "notes": row.notes,
    })
}

/// `GET /api/admin/api-keys`.
pub fn list(conn: &Connection) -> Result<Value, AuthError> {
    Ok(Value::Array(
        store::list_keys(conn)?.iter().map(key_view).collect(),
    ))
}

/// `GET /api/admin/api-keys/{id}`. A malformed id is simply not found.
pub fn get(conn: &Connection, id: &str) -> Result<Value, AuthError> {
    Ok(key_view(&store::get_key(conn, &parse_id(id)?)?))
}

/// `POST /api/admin/api-keys`: answers upstream's `ApiKeyCreateResponse`
/// (status 201), the only time the plaintext is shown.
pub fn create(
    conn: &Connection,
    req: CreateRequest,
    actor: Actor<'_>,
    printer_exists: &dyn Fn(&Uuid) -> bool,
    now_ms: i64,
) -> Result<Value, AuthError> {
    // The creation answer echoes `scopes` as sent
    // (upstream's clients compare it); the key holds the highest one.
    let sent_scopes = req.scopes.clone();
    let new = NewKey {
        name: check_name(&req.name)?,
        scope: Scope::from_list(&req.scopes).ok_or_else(|| {
            AuthError::invalid(
                "scopes",
                "give at least one of \"read\", \"print\", \"admin\" and nothing else",
            )
        })?,
        allowed_printer_ids: match &req.allowed_printer_ids {
            None => Vec::new(),
            Some(ids) => check_printers(ids, printer_exists)?,
        },
        rate_limit_per_minute: check_rate(req.rate_limit_per_minute)?,
        notes: check_notes(req.notes)?,
        expires_at: match req.expires_at.as_deref() {
            None => None,
            Some(s) => {
                let at = parse_rfc3339(s).ok_or_else(|| {
                    AuthError::invalid("expires_at", "expected an RFC 3339 date-time")
                })?;
                if at <= now_ms {
                    return Err(AuthError::invalid("expires_at", "must be in the future"));
                }
                Some(at)
            }
        },
    };
    let (row, plaintext) = store::insert_key(conn, &new, now_ms)?;
    write_audit(
        conn,
        actor,
        "api_key.create",
        &row.id,
        None,
        Some(&row),
        now_ms,
    )?;
    Ok(json!({
        "key_id": row.id,
        "plaintext": plaintext.expose(),
        "prefix": row.key_prefix,
        "name": row.name,
        "scopes": sent_scopes,
    }))
}

/// `PATCH /api/admin/api-keys/{id}`.
pub fn update(
    conn: &Connection,
    gate: &Gate,
    id: &str,
    req: PatchRequest,
    actor: Actor<'_>,
    printer_exists: &dyn Fn(&Uuid) -> bool,
    now_ms: i64,
) -> Result<Value, AuthError> {
    let id = parse_id(id)?;
    let patch = KeyPatch {
        enabled: req.enabled,
        rate_limit_per_minute: req.rate_limit_per_minute.map(check_rate).transpose()?,
        notes: check_notes(req.notes)?,
        allowed_printer_ids: req
            .allowed_printer_ids
            .map(|ids| match ids {
                // Stored as the empty list: every printer.
                None => Ok(Vec::new()),
                Some(ids) => check_printers(&ids, printer_exists),
            })
            .transpose()?,
    };
    let limits = patch
        .allowed_printer_ids
        .as_ref()
        .is_some_and(|ids| !ids.is_empty());
    if patch.enabled == Some(false) || limits {
        refuse_last_admin(conn, &id, now_ms)?;
    }
    let (before, after) = store::update_key(conn, &id, &patch)?;
    write_audit(
        conn,
        actor,
        "api_key.update",
        &id,
        Some(&before),
        Some(&after),
        now_ms,
    )?;
    gate.forget_key(&id);
    Ok(key_view(&after))
}

/// `DELETE /api/admin/api-keys/{id}`: revokes (disables) the key; 204.
pub fn revoke(
    conn: &Connection,
    gate: &Gate,
    id: &str,
    actor: Actor<'_>,
    now_ms: i64,
) -> Result<(), AuthError> {
    let id = parse_id(id)?;
    refuse_last_admin(conn, &id, now_ms)?;
    let (before, after) = store::revoke_key(conn, &id)?;
    write_audit(
        conn,
        actor,
        "api_key.revoke",
        &id,
        Some(&before),
        Some(&after),
        now_ms,
    )?;
    gate.forget_key(&id);
    Ok(())
}

/// Query of `GET /api/admin/audit`: `limit` (1..=500, default 100),
/// `before_id` (cursor), `target_type`, `target_id`.
pub fn audit_query(params: &[(String, String)]) -> Result<audit::Query, AuthError> {
    let mut q = audit::Query::default();
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                q.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| AuthError::invalid("limit", "expected 1 to 500"))?
            }
            "before_id" => {
                q.before_id = Some(value.parse::<i64>().map_err(|_| {
                    AuthError::invalid("before_id", "expected the id of an audit row")
                })?)
            }
            "target_type" => q.target_type = Some(short(value, "target_type")?),
            "target_id" => q.target_id = Some(short(value, "target_id")?),
            _ => return Err(AuthError::invalid(name, "unknown query parameter")),
        }
    }
    Ok(q)
}

/// `GET /api/admin/audit`: `{items: [...], next_before_id}` newest first;
/// `next_before_id` is null on the last page.
pub fn audit_page(conn: &Connection, q: &audit::Query) -> Result<Value, AuthError> {
    let rows = audit::list(conn, q)?;
    let next = (rows.len() == q.limit.clamp(1, 500) as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": rfc3339(r.at),
                "actor": r.actor,
                "source_ip": r.source_ip,
                "action": r.action,
                "target_type": r.target_type,
                "target_id": r.target_id,
                "before": r.before,
                "after": r.after,
            })
        })
        .collect();
    Ok(json!({ "items": items, "next_before_id": next }))
}

fn short(value: &str, field: &str) -> Result<String, AuthError> {
    if value.chars().count() > 100 {
        return Err(AuthError::invalid(field, "longer than 100 characters"));
    }
    Ok(value.to_string())
}

fn write_audit(
    conn: &Connection,
    actor: Actor<'_>,
    action: &str,
    id: &Uuid,
    before: Option<&KeyRow>,
    after: Option<&KeyRow>,
    now_ms: i64,
) -> Result<(), AuthError> {
    audit::record(
        conn,
        audit::Entry {
            actor: actor.name,
            source_ip: actor.source_ip,
            action,
            target_type: "api_key",
            target_id: Some(&id.to_string()),
            before: before.map(key_view),
            after: after.map(key_view),
        },
        now_ms,
    )?;
    Ok(())
}

/// Refuses to disable (or limit to printers) the last admin key that can
/// manage keys: enabled, unexpired, admin scope and not limited to
/// printers.
fn refuse_last_admin(conn: &Connection, id: &Uuid, now_ms: i64) -> Result<(), AuthError> {
    let keys = store::list_keys(conn)?;
    let target = keys
        .iter()
        .find(|k| k.id == *id)
        .ok_or_else(|| AuthError::KeyNotFound { id: id.to_string() })?;
    let usable_admin = |k: &&KeyRow| {
        k.scope == Scope::Admin && k.usable_at(now_ms) && k.allowed_printer_ids.is_empty()
    };
    if usable_admin(&target) && keys.iter().filter(usable_admin).count() == 1 {
        return Err(AuthError::LastAdminKey);
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(id).map_err(|_| AuthError::KeyNotFound {
        id: id.chars().take(64).collect(),
    })
}

fn check_name(name: &str) -> Result<String, AuthError> {
    display_name(name, MAX_NAME_CHARS).map_err(|message| AuthError::invalid("name", message))
}

/// Characters a display name may not contain besides control characters:
/// invisible and direction-changing format characters (zero-width spaces
/// and joiners, bidi marks, embeddings, overrides and isolates, the BOM,
/// soft hyphen, line and paragraph separators).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The character rules of display names, shared by API keys and printers:
/// trimmed, 1 to `max` characters, no control
/// characters, no invisible or direction-changing format characters.
/// Returns the trimmed name or the message for the 422.
pub fn display_name(name: &str, max: usize) -> Result<String, String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0
        || n > max
        || name
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(format!(
            "1 to {max} characters, no control characters and no invisible or \
             direction-changing characters (zero-width spaces, bidi overrides)"
        ));
    }
    Ok(name.to_string())
}

fn check_notes(notes: Option<String>) -> Result<Option<String>, AuthError> {
    match notes {
        Some(n) if n.chars().count() > MAX_NOTES_CHARS => Err(AuthError::invalid(
            "notes",
            format!("longer than {MAX_NOTES_CHARS} characters"),
        )),
        other => Ok(other),
    }
}

fn check_rate(rate: i64) -> Result<u32, AuthError> {
    u32::try_from(rate)
        .ok()
        .filter(|r| (1..=10_000).contains(r))
        .ok_or_else(|| AuthError::invalid("rate_limit_per_minute", "expected 1 to 10000"))
}

fn check_printers(
    ids: &[String],
    printer_exists: &dyn Fn(&Uuid) -> bool,
) -> Result<Vec<Uuid>, AuthError> {
    if ids.is_empty() {
        return Err(AuthError::invalid(
            "allowed_printer_ids",
            "an empty list is refused: send null for every printer, or list the printer ids",
        ));
    }
    if ids.len() > MAX_ALLOWED_PRINTERS {
        return Err(AuthError::invalid(
            "allowed_printer_ids",
            format!("at most {MAX_ALLOWED_PRINTERS} printers"),
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let parsed = Uuid::parse_str(id)
            .ok()
            .filter(|u| printer_exists(u))
            .ok_or_else(|| {
                AuthError::invalid(
                    "allowed_printer_ids",
                    format!(
                        // appliance: no Debug formatting in messages;
                        // escape_debug still shows control characters.
                        "`{}` is not the id of a printer",
                        id.chars().take(64).collect::<String>().escape_debug()
                    ),
                )
            })?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::tests::conn;
    use crate::auth::AuthConfig;

    const ADMIN: &str = "api-key:00000000-0000-0000-0000-000000000000";

    fn actor(source_ip: Option<&str>) -> Actor<'_> {
        Actor {
            name: ADMIN,
            source_ip,
        }
    }

    fn any_printer(_: &Uuid) -> bool {
        true
    }

    fn create_req(body: Value) -> CreateRequest {
        serde_json::from_value(body).unwrap()
    }

    /// Changes a key (every printer exists).
    fn patch(
        conn: &Connection,
        gate: &Gate,
        id: &str,
        req: PatchRequest,
        now_ms: i64,
    ) -> Result<Value, AuthError> {
        update(conn, gate, id, req, actor(None), &any_printer, now_ms)
    }

    /// Creates a key from a request body (every printer exists).
    fn create_ok(conn: &Connection, body: Value, now_ms: i64) -> Value {
        create(conn, create_req(body), actor(None), &any_printer, now_ms).unwrap()
    }

    #[test]
    fn create_shows_the_plaintext_once_and_audits_without_it() {
        let conn = conn();
        let printer = Uuid::new_v4();
        let created = create(
            &conn,
            create_req(json!({"name": "shop", "scopes": ["read", "print"],
                              "allowed_printer_ids": [printer.to_string()],
                              "rate_limit_per_minute": 10, "notes": "till"})),
            actor(Some("192.0.2.1")),
            &any_printer,
            1000,
        )
        .unwrap();
        let plaintext = created["plaintext"].as_str().unwrap().to_owned();
        assert!(plaintext.starts_with("lh_pat_"));
        assert_eq!(created["scopes"], json!(["read", "print"]));
        assert_eq!(created["prefix"].as_str().unwrap(), &plaintext[..16]);
        let id = created["key_id"].as_str().unwrap();
        let view = get(&conn, id).unwrap();
        assert_eq!(view["allowed_printer_ids"], json!([printer]));
        assert_eq!(view["rate_limit_per_minute"], 10);
        assert_eq!(view["created_at"], "1970-01-01T00:00:01.000Z");
        let everything = format!(
            "{} {}",
            list(&conn).unwrap(),
            audit_page(&conn, &audit::Query::default()).unwrap()
        );
        assert!(!everything.contains(&plaintext[16..]));
        let page = audit_page(&conn, &audit::Query::default()).unwrap();
        assert_eq!(page["items"][0]["actor"], ADMIN);
        assert_eq!(page["items"][0]["source_ip"], "192.0.2.1");
    }

    #[test]
    fn create_validates_like_upstream_should_have() {
        let conn = conn();
        let actor = actor(None);
        let bad = [
            (json!({"name": "", "scopes": ["read"]}), "name"),
            (json!({"name": "x", "scopes": []}), "scopes"),
            (json!({"name": "x", "scopes": ["root"]}), "scopes"),
            (
                json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 0}),
                "rate_limit_per_minute",
            ),
            (
                json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 10001}),
                "rate_limit_per_minute",
            ),
            (
                json!({"name": "x", "scopes": ["read"], "allowed_printer_ids": ["nope"]}),
                "allowed_printer_ids",
            ),
            (
                json!({"name": "x", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"}),
                "expires_at",
            ),
            (
                json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
                "expires_at",
            ),
            (
                json!({"name": "x", "scopes": ["read"], "notes": "n".repeat(2001)}),
                "notes",
            ),
        ];
        for (body, field) in bad {
            let err = create(
                &conn,
                create_req(body.clone()),
                actor,
                &any_printer,
                1_000_000_000_000,
            )
            .unwrap_err();
            match err {
                AuthError::Invalid { field: f, .. } => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let none = |_: &Uuid| false;
        let err = create(
            &conn,
            create_req(json!({"name": "x", "scopes": ["read"],
                              "allowed_printer_ids": [Uuid::new_v4().to_string()]})),
            actor,
            &none,
            1,
        )
        .unwrap_err();
        assert_eq!(err.code(), "validation_error");
        assert!(serde_json::from_value::<CreateRequest>(
            json!({"name": "x", "scopes": ["read"], "admin": true})
        )
        .is_err());
        assert!(serde_json::from_value::<PatchRequest>(json!({"scopes": ["admin"]})).is_err());
        assert_eq!(store::count_keys(&conn).unwrap(), 0);
    }

    #[test]
    fn admin_keys_limited_to_printers_do_not_count_as_the_last_admin() {
        let conn = conn();
        let gate = Gate::new(AuthConfig::default());
        let actor = actor(None);
        let printer = Uuid::new_v4().to_string();
        let wide = create_ok(&conn, json!({"name": "wide", "scopes": ["admin"]}), 1);
        create_ok(
            &conn,
            json!({"name": "narrow", "scopes": ["admin"], "allowed_printer_ids": [printer]}),
            1,
        );
        let wide = wide["key_id"].as_str().unwrap().to_owned();
        let err = revoke(&conn, &gate, &wide, actor, 2).unwrap_err();
        assert_eq!(err.code(), "last_admin_key");
        let limit = PatchRequest {
            allowed_printer_ids: Some(Some(vec![printer])),
            ..PatchRequest::default()
        };
        let err = patch(&conn, &gate, &wide, limit, 2).unwrap_err();
        assert_eq!(err.code(), "last_admin_key");
        assert_eq!(get(&conn, &wide).unwrap()["enabled"], true);
    }

    #[test]
    fn patch_revoke_and_the_last_admin_key() {
        let conn = conn();
        let gate = Gate::new(AuthConfig::default());
        let actor = actor(None);
        let first = create_ok(&conn, json!({"name": "a", "scopes": ["admin"]}), 1);
        let a = first["key_id"].as_str().unwrap().to_owned();
        let err = revoke(&conn, &gate, &a, actor, 2).unwrap_err();
        assert_eq!(err.code(), "last_admin_key");
        let err = patch(
            &conn,
            &gate,
            &a,
            PatchRequest {
                enabled: Some(false),
                ..PatchRequest::default()
            },
            2,
        )
        .unwrap_err();
        assert_eq!(err.code(), "last_admin_key");
        let second = create_ok(&conn, json!({"name": "b", "scopes": ["admin"]}), 1);
        revoke(&conn, &gate, &a, actor, 3).unwrap();
        assert_eq!(get(&conn, &a).unwrap()["enabled"], false);
        let b = second["key_id"].as_str().unwrap();
        let patched = patch(
            &conn,
            &gate,
            b,
            PatchRequest {
                rate_limit_per_minute: Some(7),
                notes: Some("n".into()),
                ..PatchRequest::default()
            },
            4,
        )
        .unwrap();
        assert_eq!(patched["rate_limit_per_minute"], 7);
        assert_eq!(patched["notes"], "n");
        assert_eq!(patched["enabled"], true);
        let err = patch(
            &conn,
            &gate,
            b,
            PatchRequest {
                rate_limit_per_minute: Some(-1),
                ..PatchRequest::default()
            },
            4,
        )
        .unwrap_err();
        assert_eq!(err.code(), "validation_error");
        assert_eq!(
            get(&conn, "not-a-uuid").unwrap_err().code(),
            "api_key_not_found"
        );
        assert_eq!(
            revoke(&conn, &gate, &Uuid::new_v4().to_string(), actor, 5)
                .unwrap_err()
                .code(),
            "api_key_not_found"
        );
        let page = audit_page(&conn, &audit::Query::default()).unwrap();
        let actions: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            actions,
            [
                "api_key.update",
                "api_key.revoke",
                "api_key.create",
                "api_key.create"
            ]
        );
    }

    #[test]
    fn audit_query_parses_and_refuses() {
        let q = audit_query(&[
            ("limit".into(), "5".into()),
            ("before_id".into(), "9".into()),
        ])
        .unwrap();
        assert_eq!((q.limit, q.before_id), (5, Some(9)));
        for (k, v) in [
            ("limit", "0"),
            ("limit", "x"),
            ("before_id", "1.5"),
            ("colour", "red"),
        ] {
            assert!(audit_query(&[(k.into(), v.into())]).is_err(), "{k}={v}");
        }
    }
}
