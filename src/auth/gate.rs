//! The gate: request headers in, [`Principal`] or [`AuthError`] out, plus
//! the per-principal submission buckets.
//!
//! Resolution order (first match wins, a failure never falls through):
//! 1. `X-Label-Hub-Key` present → the key decides (valid, or 401 `invalid_key`).
//! 2. SSO configured and its trust header present → the token decides.
//! 3. Otherwise 401 `missing_credentials`.
//!
//! **Invariants:**
//! - For a key, the same work is done whatever is wrong with it: the digest
//!   of the presented key is compared in constant time against the stored
//!   digest, or against a dummy one when the prefix is unknown, *before*
//!   `enabled` and `expires_at` are looked at; every failure is
//!   `invalid_key`.
//! - `last_used_at` is written at most once a minute per key, not on every
//!   request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use uuid::Uuid;

use super::key::{Presented, DUMMY_DIGEST};
use super::rate::RateLimiter;
use super::{store, AuthConfig, AuthError, KEY_HEADER};
use crate::http::Principal;

/// How often `last_used_at` is refreshed per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A due refresh of a key's `last_used_*`, from [`Gate::authenticate_read`].
#[derive(Debug)]
pub struct Touch {
    id: Uuid,
    ip: Option<String>,
    now_ms: i64,
}

impl Touch {
    /// Writes the refresh on the writing connection; a failure is logged,
    /// never fatal to the request.
    pub fn write(self, conn: &Connection) {
        if let Err(e) = store::touch(conn, &self.id, self.ip.as_deref(), self.now_ms) {
            log::warn!("could not record use of API key {}: {e}", self.id);
        }
    }
}

/// Shared by all handler threads (`Arc<Gate>` or a field of the server).
pub struct Gate {
    config: AuthConfig,
    buckets: RateLimiter,
    touched: Mutex<HashMap<Uuid, Instant>>,
}

impl Gate {
    /// A gate with these settings.
    pub fn new(config: AuthConfig) -> Gate {
        Gate {
            config,
            buckets: RateLimiter::default(),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Authenticates a request. `header(name)` returns a request header
    /// (case-insensitive); `client` is the caller's address for
    /// `last_used_ip`; `now_ms` is the wall clock for expiry.
    pub fn authenticate<'a>(
        &self,
        conn: &Connection,
        header: impl Fn(&str) -> Option<&'a str>,
        client: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        let (principal, touch) = self.authenticate_read(conn, header, client, now_ms)?;
        if let Some(touch) = touch {
            touch.write(conn);
        }
        Ok(principal)
    }

    /// [`Gate::authenticate`] with reads only, so `conn` may be a
    /// `query_only` connection and authentication need not wait behind a
    /// commit. The occasional `last_used_*` refresh is returned for the
    /// caller to [`Touch::write`] on the writing connection.
    pub fn authenticate_read<'a>(
        &self,
        conn: &Connection,
        header: impl Fn(&str) -> Option<&'a str>,
        client: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<(Principal, Option<Touch>), AuthError> {
        if let Some(value) = header(KEY_HEADER) {
            return self.authenticate_key(conn, value, client, now_ms);
        }
        // `Authorization: Bearer lh_pat_...`: what a Prometheus scraper can
        // send (`authorization: {credentials: ...}`; it cannot set custom
        // headers). Only a value shaped like our keys counts, so a bearer
        // token meant for a proxy in front still reaches SSO below.
        if let Some(value) = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|v| v.starts_with(super::key::KEY_MARKER))
        {
            return self.authenticate_key(conn, value, client, now_ms);
        }
        if let Some(sso) = &self.config.sso {
            if let Some(res) = sso.authenticate(&header) {
                return res.map(|p| (p, None));
            }
        }
        Err(AuthError::MissingCredentials)
    }

    fn authenticate_key(
        &self,
        conn: &Connection,
        value: &str,
        client: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<(Principal, Option<Touch>), AuthError> {
        // A malformed value cannot match any key; its shape is the caller's
        // own knowledge, so answering early leaks nothing about stored keys.
        let presented = Presented::parse(value).ok_or(AuthError::InvalidKey)?;
        let found = store::digest_by_prefix(conn, presented.prefix())?;
        let digest = found.as_ref().map_or(&DUMMY_DIGEST, |(_, d)| d);
        let secret_ok = presented.verify(digest);
        let id = match found {
            Some((id, _)) if secret_ok => id,
            _ => return Err(AuthError::InvalidKey),
        };
        // Only now, with the secret proven, is the row's state looked at.
        let row = match store::get_key(conn, &id) {
            Ok(row) => row,
            Err(AuthError::KeyNotFound { .. }) => return Err(AuthError::InvalidKey),
            Err(e) => return Err(e),
        };
        if !row.usable_at(now_ms) {
            return Err(AuthError::InvalidKey);
        }
        let touch = self.touch_due(&row.id).then(|| Touch {
            id: row.id,
            ip: client.map(|ip| ip.to_string()),
            now_ms,
        });
        Ok((row.principal(), touch))
    }

    /// Whether `last_used_*` of key `id` is due for a refresh (at most once
    /// per [`TOUCH_EVERY`]); records the refresh as done.
    fn touch_due(&self, id: &Uuid) -> bool {
        let now = Instant::now();
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        match touched.get(id) {
            Some(at) if now.saturating_duration_since(*at) < TOUCH_EVERY => return false,
            _ => {}
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.saturating_duration_since(*at) < TOUCH_EVERY);
        }
        touched.insert(*id, now);
        true
    }

    /// Charges one submission to the principal's bucket (429 when empty).
    pub fn charge_submission(&self, principal: &Principal) -> Result<(), AuthError> {
        self.charge_submission_at(principal, Instant::now())
    }

    /// [`Gate::charge_submission`] at a given instant (tests).
    pub fn charge_submission_at(
        &self,
        principal: &Principal,
        now: Instant,
    ) -> Result<(), AuthError> {
        self.buckets
            .check(&principal.actor(), principal.rate_limit_per_minute, now)
    }

    /// Forgets what is cached about a key (after revocation or a change).
    pub fn forget_key(&self, id: &Uuid) {
        self.buckets.forget(&format!("api-key:{id}"));
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::insert_key;
    use crate::auth::store::tests::{conn, disable, new_key};
    use crate::http::Scope;

    fn gate() -> Gate {
        Gate::new(AuthConfig::default())
    }

    fn with_key<'a>(value: &'a str) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name: &str| name.eq_ignore_ascii_case(KEY_HEADER).then_some(value)
    }

    #[test]
    fn a_valid_key_yields_its_principal_and_records_use() {
        let conn = conn();
        let (row, key) = insert_key(&conn, &new_key(Scope::Print), 1).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let p = gate()
            .authenticate(&conn, with_key(key.expose()), Some(ip), 2)
            .unwrap();
        assert_eq!(p.scope, Scope::Print);
        assert_eq!(p.api_key_id(), Some(row.id));
        let row = store::get_key(&conn, &row.id).unwrap();
        assert_eq!(row.last_used_ip.as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn a_read_only_authentication_hands_back_the_due_touch_once() {
        let conn = conn();
        let g = gate();
        let (row, key) = insert_key(&conn, &new_key(Scope::Print), 1).unwrap();
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let (p, touch) = g
            .authenticate_read(&conn, with_key(key.expose()), Some(ip), 2)
            .unwrap();
        assert_eq!(p.api_key_id(), Some(row.id));
        assert_eq!(
            store::get_key(&conn, &row.id).unwrap().last_used_ip,
            None,
            "nothing is written by the read"
        );
        touch.expect("the first use is due").write(&conn);
        assert_eq!(
            store::get_key(&conn, &row.id)
                .unwrap()
                .last_used_ip
                .as_deref(),
            Some("192.0.2.8")
        );
        let (_, again) = g
            .authenticate_read(&conn, with_key(key.expose()), Some(ip), 3)
            .unwrap();
        assert!(again.is_none(), "at most once per TOUCH_EVERY");
    }

    #[test]
    fn unknown_wrong_disabled_and_expired_keys_look_the_same() {
        let conn = conn();
        let g = gate();
        let (row, key) = insert_key(&conn, &new_key(Scope::Admin), 1).unwrap();
        let mut expiring = new_key(Scope::Admin);
        expiring.expires_at = Some(10);
        let (_, expired) = insert_key(&conn, &expiring, 1).unwrap();
        let unknown = crate::auth::key::generate().unwrap();
        let s = key.expose();
        let wrong = format!("{}{}", &s[..49], if s.ends_with('A') { 'B' } else { 'A' });

        let mut answers = vec![];
        for value in [unknown.expose(), &wrong, "garbage", "", expired.expose()] {
            answers.push(
                g.authenticate(&conn, with_key(value), None, 20)
                    .unwrap_err(),
            );
        }
        disable(&conn, &row.id);
        answers.push(g.authenticate(&conn, with_key(s), None, 20).unwrap_err());
        for err in &answers {
            assert_eq!(err.code(), "invalid_key");
            assert_eq!(err.to_string(), "the API key is not valid");
        }
    }

    #[test]
    fn no_credentials_and_sso_headers_without_configuration() {
        let conn = conn();
        let none = |_: &str| None;
        assert_eq!(
            gate()
                .authenticate(&conn, none, None, 0)
                .unwrap_err()
                .code(),
            "missing_credentials"
        );
        let sso_only = |name: &str| match name {
            "Remote-User" | "X-Pangolin-User" | "X-Pangolin-Token" => Some("admin"),
            _ => None,
        };
        assert_eq!(
            gate()
                .authenticate(&conn, sso_only, None, 0)
                .unwrap_err()
                .code(),
            "missing_credentials"
        );
    }

    #[test]
    fn submissions_are_charged_per_principal() {
        let conn = conn();
        let mut slow = new_key(Scope::Print);
        slow.rate_limit_per_minute = 2;
        let (_, key) = insert_key(&conn, &slow, 1).unwrap();
        let g = gate();
        let p = g
            .authenticate(&conn, with_key(key.expose()), None, 2)
            .unwrap();
        let t0 = Instant::now();
        assert!(g.charge_submission_at(&p, t0).is_ok());
        assert!(g.charge_submission_at(&p, t0).is_ok());
        let err = g.charge_submission_at(&p, t0).unwrap_err();
        assert_eq!(err.retry_after_s(), Some(30));
    }
}
