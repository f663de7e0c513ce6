//! Console sessions: a person pastes an API key once and the
//! browser holds an opaque session cookie instead of the key.
//!
//! - `POST /api/session {key}` verifies the key exactly as the gate does and
//!   answers with `Set-Cookie: lh_session=<token>; HttpOnly;
//!   SameSite=Strict; Path=/` (plus `Secure` behind TLS, see
//!   [`cookie_is_secure`]) and a CSRF token in the body.
//! - Every later request carrying the cookie is authenticated by
//!   [`credentials`] — the ONE call in the gate where credentials are read.
//! - `DELETE /api/session` signs out (the row is deleted).
//!
//! **Invariants:**
//! - Only the SHA-256 of the cookie token is stored (`sessions.token_digest`);
//!   a database leak hands out no usable session.
//! - A session carries exactly its key's scope, printer allow-list and rate
//!   bucket: the key row is read on every request, so a key that is revoked,
//!   disabled or expired ends its sessions at once (and `ON DELETE CASCADE`
//!   removes them with the key).
//! - A cookie-authenticated request that is not `GET`/`HEAD` must carry the
//!   session's CSRF token in `X-CSRF-Token` (compared in constant time), or
//!   it is refused (403 `csrf_token_invalid`) before any handler runs. The
//!   cookie is also `SameSite=Strict`; the token is the second, independent
//!   guard.
//! - An API key header always wins over a cookie: a request with
//!   `X-Label-Hub-Key` is decided by the key alone (no CSRF needed: a
//!   browser never adds that header by itself).

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::gate::Touch;
use super::key::{ct_eq_str, digest};
use super::{store, AuthError, Gate, KEY_HEADER};
use crate::http::Principal;

/// The cookie's name.
pub const COOKIE: &str = "lh_session";
/// The request header carrying the CSRF token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// How long a session lives (it never outlives its key).
pub const TTL_MS: i64 = 12 * 3600 * 1000;

/// A session as stored.
#[derive(Clone, Debug)]
pub struct Session {
    pub api_key_id: Uuid,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A new session: the cookie token (only here, never stored) and its row.
pub struct Created {
    pub token: String,
    pub session: Session,
}

fn random_token() -> Result<String, AuthError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)
        .map_err(|e| AuthError::Random(super::key::RandomError::from_message(e.to_string())))?;
    Ok(crate::base64::encode_url(&raw))
}

/// Opens a session for key `api_key_id` (already verified by the caller),
/// never past the key's own expiry. Expired sessions are pruned on the way.
pub fn create(
    conn: &Connection,
    api_key_id: &Uuid,
    key_expires_at: Option<i64>,
    now_ms: i64,
) -> Result<Created, AuthError> {
    let token = random_token()?;
    let csrf_token = random_token()?;
    let expires_at = match key_expires_at {
        Some(k) => k.min(now_ms + TTL_MS),
        None => now_ms + TTL_MS,
    };
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_ms])?;
    conn.execute(
        "INSERT INTO sessions (token_digest, api_key_id, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            digest(token.as_bytes()).to_vec(),
            api_key_id.to_string(),
            csrf_token,
            now_ms,
            expires_at
        ],
    )?;
    Ok(Created {
        token,
        session: Session {
            api_key_id: *api_key_id,
            csrf_token,
            created_at: now_ms,
            expires_at,
        },
    })
}

/// The live session of a cookie token (`SessionInvalid` when unknown or
/// expired).
pub fn lookup(conn: &Connection, token: &str, now_ms: i64) -> Result<Session, AuthError> {
    let row = conn
        .query_row(
            "SELECT api_key_id, csrf_token, created_at, expires_at FROM sessions
             WHERE token_digest = ?1",
            [digest(token.as_bytes()).to_vec()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((key, csrf_token, created_at, expires_at)) = row else {
        return Err(AuthError::SessionInvalid);
    };
    if expires_at <= now_ms {
        return Err(AuthError::SessionInvalid);
    }
    let api_key_id = Uuid::parse_str(&key).map_err(|_| AuthError::SessionInvalid)?;
    Ok(Session {
        api_key_id,
        csrf_token,
        created_at,
        expires_at,
    })
}

/// Ends the session of a cookie token (sign-out). Unknown tokens are fine.
pub fn delete(conn: &Connection, token: &str) -> Result<(), AuthError> {
    conn.execute(
        "DELETE FROM sessions WHERE token_digest = ?1",
        [digest(token.as_bytes()).to_vec()],
    )?;
    Ok(())
}

/// Sessions open right now (tests, diagnostics).
pub fn count(conn: &Connection, now_ms: i64) -> Result<i64, AuthError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sessions WHERE expires_at > ?1",
        [now_ms],
        |r| r.get(0),
    )?)
}

/// The session cookie's value in a `Cookie` header, if any (the first
/// `lh_session`).
pub fn cookie_token(cookie_header: Option<&str>) -> Option<&str> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The principal of a session: exactly its key's, read now.
pub fn principal(
    conn: &Connection,
    session: &Session,
    now_ms: i64,
) -> Result<Principal, AuthError> {
    let row = match store::get_key(conn, &session.api_key_id) {
        Ok(row) => row,
        Err(AuthError::KeyNotFound { .. }) => return Err(AuthError::SessionInvalid),
        Err(e) => return Err(e),
    };
    if !row.usable_at(now_ms) {
        return Err(AuthError::SessionInvalid);
    }
    Ok(row.principal())
}

/// Whether a method changes state (and so needs the CSRF token).
fn changes_state(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// THE hook where a request's credentials are read (called once by the
/// gate, `auth::access::authenticate`):
///
/// 1. `X-Label-Hub-Key` present → the key decides ([`Gate::authenticate_read`]);
/// 2. a session cookie → that session (401 `session_invalid` when unknown,
///    expired, signed out or its key unusable), and for a state-changing
///    method the CSRF token (403 `csrf_token_invalid`);
/// 3. otherwise the gate (SSO, or 401 `missing_credentials`).
pub fn credentials<'a>(
    gate: &Gate,
    conn: &Connection,
    method: &str,
    header: impl Fn(&str) -> Option<&'a str>,
    client: Option<IpAddr>,
    now_ms: i64,
) -> Result<(Principal, Option<Touch>), AuthError> {
    if header(KEY_HEADER).is_none() {
        if let Some(token) = cookie_token(header("cookie")) {
            let session = lookup(conn, token, now_ms)?;
            if changes_state(method) {
                let sent = header(CSRF_HEADER).unwrap_or("");
                if sent.is_empty() || !ct_eq_str(sent, &session.csrf_token) {
                    return Err(AuthError::CsrfTokenInvalid);
                }
            }
            return Ok((principal(conn, &session, now_ms)?, None));
        }
    }
    gate.authenticate_read(conn, header, client, now_ms)
}

/// Whether the cookie gets `Secure`: when the request reached us over TLS,
/// which for a hub behind a TLS-terminating reverse proxy is only known from
/// `X-Forwarded-Proto: https`. That header is trusted from anyone because it
/// can only make the cookie *stricter*: a client that lies gets a cookie its
/// own browser will not send back over plain HTTP.
pub fn cookie_is_secure(forwarded_proto: Option<&str>) -> bool {
    forwarded_proto
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that opens a session.
pub fn set_cookie(token: &str, max_age_s: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie (sign-out).
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::insert_key;
    use crate::auth::store::tests::{disable, headers, new_key};
    use crate::auth::AuthConfig;
    use crate::http::{PrinterAccess, Scope};

    fn conn() -> Connection {
        let conn = crate::auth::store::tests::conn();
        conn.execute_batch(include_str!("../../sql/0014_sessions.sql"))
            .unwrap();
        conn
    }

    #[test]
    fn a_session_carries_its_keys_scope_and_needs_csrf_to_change_state() {
        let conn = conn();
        let gate = Gate::new(AuthConfig::default());
        let mut nk = new_key(Scope::Print);
        let printer = Uuid::new_v4();
        nk.allowed_printer_ids = vec![printer];
        let (row, _) = insert_key(&conn, &nk, 1).unwrap();
        let created = create(&conn, &row.id, None, 10).unwrap();
        let cookie = format!("other=1; {COOKIE}={}", created.token);
        let (p, _) = credentials(
            &gate,
            &conn,
            "GET",
            headers(&[("cookie", &cookie)]),
            None,
            20,
        )
        .unwrap();
        assert_eq!(p.scope, Scope::Print);
        assert_eq!(p.printers, PrinterAccess::Only(vec![printer]));
        assert_eq!(p.api_key_id(), Some(row.id));
        for csrf in [None, Some(""), Some("wrong")] {
            let mut h = vec![("cookie", cookie.as_str())];
            if let Some(c) = csrf {
                h.push((CSRF_HEADER, c));
            }
            let err = credentials(&gate, &conn, "POST", headers(&h), None, 20).unwrap_err();
            assert_eq!(err.code(), "csrf_token_invalid");
        }
        let h = [
            ("cookie", cookie.as_str()),
            (CSRF_HEADER, created.session.csrf_token.as_str()),
        ];
        assert!(credentials(&gate, &conn, "POST", headers(&h), None, 20).is_ok());
        // Disabling the key ends the session; so does expiry and sign-out.
        disable(&conn, &row.id);
        let err = credentials(&gate, &conn, "GET", headers(&h), None, 20).unwrap_err();
        assert_eq!(err.code(), "session_invalid");
    }

    #[test]
    fn sessions_expire_never_outlive_their_key_and_end_on_sign_out() {
        let conn = conn();
        let gate = Gate::new(AuthConfig::default());
        let mut nk = new_key(Scope::Read);
        nk.expires_at = Some(1000);
        let (row, _) = insert_key(&conn, &nk, 1).unwrap();
        let created = create(&conn, &row.id, row.expires_at, 10).unwrap();
        assert_eq!(created.session.expires_at, 1000);
        let cookie = format!("{COOKIE}={}", created.token);
        let h = [("cookie", cookie.as_str())];
        assert!(credentials(&gate, &conn, "GET", headers(&h), None, 999).is_ok());
        let err = credentials(&gate, &conn, "GET", headers(&h), None, 1000).unwrap_err();
        assert_eq!(err.code(), "session_invalid");

        let (row, _) = insert_key(&conn, &new_key(Scope::Read), 1).unwrap();
        let created = create(&conn, &row.id, None, 10).unwrap();
        assert_eq!(created.session.expires_at, 10 + TTL_MS);
        let cookie = format!("{COOKIE}={}", created.token);
        let h = [("cookie", cookie.as_str())];
        assert!(credentials(&gate, &conn, "GET", headers(&h), None, 20).is_ok());
        assert!(credentials(&gate, &conn, "GET", headers(&h), None, 10 + TTL_MS).is_err());
        delete(&conn, &created.token).unwrap();
        let err = credentials(&gate, &conn, "GET", headers(&h), None, 20).unwrap_err();
        assert_eq!(err.code(), "session_invalid");
        // A made-up cookie is refused the same way.
        let h = [("cookie", "lh_session=madeup")];
        let err = credentials(&gate, &conn, "GET", headers(&h), None, 20).unwrap_err();
        assert_eq!(err.code(), "session_invalid");
        // No cookie, no key: the gate's answer.
        let err = credentials(&gate, &conn, "GET", headers(&[]), None, 20).unwrap_err();
        assert_eq!(err.code(), "missing_credentials");
    }

    #[test]
    fn cookies_are_strict_and_secure_only_behind_tls() {
        assert!(!cookie_is_secure(None));
        assert!(!cookie_is_secure(Some("http")));
        assert!(cookie_is_secure(Some("https")));
        assert!(cookie_is_secure(Some("HTTPS, http")));
        let c = set_cookie("t", 60, true);
        assert_eq!(
            c,
            "lh_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(cookie_token(Some("a=b; lh_session=xyz; c=d")), Some("xyz"));
        assert_eq!(cookie_token(Some("lh_session=")), None);
        assert_eq!(cookie_token(Some("xlh_session=1")), None);
    }
}
