//! Access-control settings, read once from `PRINTER_HUB_*` variables next to
//! the hub's own (`hub::config`, which also holds the audit log's retention
//! since the retention thread is the hub's). [`AuthConfig::from_vars`]
//! reports every bad variable at once.

use std::collections::BTreeMap;
use std::time::Duration;

use super::sso::{Sso, MIN_TOKEN_LEN};
use crate::http::Scope;
use crate::hub::config::{env_vars, VarReader};

/// Every variable, its default and what it means (README table).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "PRINTER_HUB_SSO_TRUST_TOKEN",
        "(empty: SSO off)",
        "shared secret a trusted reverse proxy sends; at least 32 characters",
    ),
    (
        "PRINTER_HUB_SSO_TRUST_HEADER",
        "X-Pangolin-Token",
        "header carrying the trust token",
    ),
    (
        "PRINTER_HUB_SSO_USER_HEADER",
        "Remote-User",
        "header carrying the authenticated user name",
    ),
    (
        "PRINTER_HUB_SSO_SCOPE",
        "admin",
        "scope given to SSO users: read, print or admin",
    ),
    (
        "PRINTER_HUB_SSO_RATE_LIMIT",
        "60",
        "submissions per minute per SSO user",
    ),
    (
        "PRINTER_HUB_MAX_CONNS",
        "512",
        "open client connections at once; beyond it new ones get 503",
    ),
    (
        "PRINTER_HUB_MAX_CONNS_PER_CLIENT",
        "32",
        "open connections per client address; beyond it 429",
    ),
    (
        "PRINTER_HUB_MAX_WAITS_PER_CLIENT",
        "8",
        "parked long-polls per client address; beyond it 429",
    ),
    (
        "PRINTER_HUB_HEADER_TIMEOUT_S",
        "10",
        "time a client has to send the request line and headers (408 after)",
    ),
    (
        "PRINTER_HUB_BODY_TIMEOUT_S",
        "30",
        "longest pause while a client sends a body, and while it reads the answer",
    ),
    (
        "PRINTER_HUB_MAX_HEADER_BYTES",
        "16384",
        "request line plus headers (431 beyond)",
    ),
    (
        "PRINTER_HUB_MAX_HEADERS",
        "64",
        "number of request headers (431 beyond)",
    ),
];

/// The settings of `auth`.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `None` unless a trust token is configured.
    pub sso: Option<Sso>,
    pub max_conns: usize,
    pub max_conns_per_client: usize,
    pub max_waits_per_client: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            sso: None,
            max_conns: 512,
            max_conns_per_client: 32,
            max_waits_per_client: 8,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl AuthConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<AuthConfig, Vec<String>> {
        AuthConfig::from_vars(&env_vars())
    }

    /// Reads settings from a map of variables; one message per bad one.
    /// Variables that are not ours are left to `hub::config`.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<AuthConfig, Vec<String>> {
        let mut cfg = AuthConfig::default();
        let mut r = VarReader::new(vars);
        let sso_rate = r.num("PRINTER_HUB_SSO_RATE_LIMIT", 1, 10_000).unwrap_or(60) as u32;
        if let Some(n) = r.num("PRINTER_HUB_MAX_CONNS", 1, 100_000) {
            cfg.max_conns = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_CONNS_PER_CLIENT", 1, 100_000) {
            cfg.max_conns_per_client = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_WAITS_PER_CLIENT", 1, 100_000) {
            cfg.max_waits_per_client = n as usize;
        }
        if let Some(s) = r.num("PRINTER_HUB_HEADER_TIMEOUT_S", 1, 3600) {
            cfg.header_timeout = Duration::from_secs(s);
        }
        if let Some(s) = r.num("PRINTER_HUB_BODY_TIMEOUT_S", 1, 3600) {
            cfg.body_timeout = Duration::from_secs(s);
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_HEADER_BYTES", 1024, 1 << 20) {
            cfg.max_header_bytes = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_HEADERS", 8, 1000) {
            cfg.max_headers = n as usize;
        }

        let scope = match r.get("PRINTER_HUB_SSO_SCOPE") {
            None => Scope::Admin,
            Some(v) => Scope::parse(v).unwrap_or_else(|| {
                r.error(format!(
                    "PRINTER_HUB_SSO_SCOPE={v}: expected read, print or admin"
                ));
                Scope::Read
            }),
        };
        let header = |name: &str, default: &str| -> Result<String, String> {
            let v = r.get(name).unwrap_or(default);
            if v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Ok(v.to_string())
            } else {
                Err(format!("{name}={v}: not a header name"))
            }
        };
        let user_header = header("PRINTER_HUB_SSO_USER_HEADER", "Remote-User");
        let trust_header = header("PRINTER_HUB_SSO_TRUST_HEADER", "X-Pangolin-Token");
        // The token is read raw (not trimmed) and never echoed in errors.
        match vars.get("PRINTER_HUB_SSO_TRUST_TOKEN").map(String::as_str) {
            None | Some("") => {}
            Some(token) if token.trim() != token || token.chars().count() < MIN_TOKEN_LEN => {
                r.error(format!(
                    "PRINTER_HUB_SSO_TRUST_TOKEN: must be at least {MIN_TOKEN_LEN} characters \
                     without surrounding spaces (value not shown)"
                ));
            }
            Some(token) => match (user_header, trust_header) {
                (Ok(user_header), Ok(trust_header)) => {
                    cfg.sso = Some(Sso {
                        token: token.to_string(),
                        user_header,
                        trust_header,
                        scope,
                        rate_limit_per_minute: sso_rate,
                    })
                }
                (u, t) => {
                    for message in u.err().into_iter().chain(t.err()) {
                        r.error(message);
                    }
                }
            },
        }
        r.finish(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::config::tests::vars;

    #[test]
    fn sso_is_off_by_default_and_user_headers_need_a_token() {
        let cfg =
            AuthConfig::from_vars(&vars(&[("PRINTER_HUB_SSO_USER_HEADER", "X-User")])).unwrap();
        assert!(cfg.sso.is_none());
    }

    #[test]
    fn short_tokens_are_refused_without_echoing_them() {
        let errs = AuthConfig::from_vars(&vars(&[("PRINTER_HUB_SSO_TRUST_TOKEN", "hunter2")]))
            .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(!errs[0].contains("hunter2"));
    }

    #[test]
    fn a_good_token_enables_sso_with_its_settings() {
        let token = "k".repeat(32);
        let cfg = AuthConfig::from_vars(&vars(&[
            ("PRINTER_HUB_SSO_TRUST_TOKEN", &token),
            ("PRINTER_HUB_SSO_SCOPE", "read"),
            ("PRINTER_HUB_SSO_TRUST_HEADER", "X-Proxy-Secret"),
        ]))
        .unwrap();
        let sso = cfg.sso.unwrap();
        assert_eq!(sso.scope, Scope::Read);
        assert_eq!(sso.trust_header, "X-Proxy-Secret");
        assert_eq!(sso.user_header, "Remote-User");
        assert!(!format!("{sso:?}").contains(&token));
    }

    #[test]
    fn bad_numbers_and_scopes_are_all_reported() {
        let errs = AuthConfig::from_vars(&vars(&[
            ("PRINTER_HUB_MAX_CONNS", "0"),
            ("PRINTER_HUB_HEADER_TIMEOUT_S", "soon"),
            ("PRINTER_HUB_SSO_SCOPE", "root"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
