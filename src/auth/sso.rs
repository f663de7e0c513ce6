//! Trusted reverse-proxy single sign-on.
//!
//! A proxy that has authenticated a user may forward the request with the
//! user's name in one header (`Remote-User`) and a shared secret in another
//! (`X-Pangolin-Token`). labelhub believes the user header **only** when the
//! secret equals `PRINTER_HUB_SSO_TRUST_TOKEN`, compared in constant time.
//!
//! **Invariants:**
//! - Without a configured token, SSO headers are ignored: no header alone
//!   grants anything, and there is no bypass user.
//! - A wrong token is an error (401), never a fall-through to another method.
//! - The configured token is at least [`MIN_TOKEN_LEN`] characters.

use super::key::ct_eq_str;
use super::AuthError;
use crate::http::{Principal, PrinterAccess, Scope, Source};

/// Shortest accepted trust token (as upstream's webhook secret).
pub const MIN_TOKEN_LEN: usize = 32;
/// Longest accepted user name.
pub const MAX_USER_LEN: usize = 256;

/// SSO settings; present only when a trust token is configured.
#[derive(Clone)]
pub struct Sso {
    pub token: String,
    pub user_header: String,
    pub trust_header: String,
    /// The scope an SSO user gets.
    pub scope: Scope,
    /// Submissions per minute per SSO user.
    pub rate_limit_per_minute: u32,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("token", &"***REDACTED***")
            .field("user_header", &self.user_header)
            .field("trust_header", &self.trust_header)
            .field("scope", &self.scope)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .finish()
    }
}

impl Sso {
    /// Authenticates from request headers (`header(name)` is
    /// case-insensitive). `None` when the request carries no trust header,
    /// so the caller answers `missing_credentials`.
    pub fn authenticate<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<Result<Principal, AuthError>> {
        let presented = header(&self.trust_header)?;
        if !ct_eq_str(presented, &self.token) {
            return Some(Err(AuthError::InvalidSsoToken));
        }
        let user = header(&self.user_header).map(str::trim).unwrap_or("");
        if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(|c| c.is_control()) {
            return Some(Err(AuthError::InvalidSsoToken));
        }
        Some(Ok(Principal {
            source: Source::Sso {
                user: user.to_string(),
            },
            scope: self.scope,
            printers: PrinterAccess::All,
            rate_limit_per_minute: self.rate_limit_per_minute,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::tests::headers;

    fn sso() -> Sso {
        Sso {
            token: "t".repeat(40),
            user_header: "Remote-User".into(),
            trust_header: "X-Pangolin-Token".into(),
            scope: Scope::Print,
            rate_limit_per_minute: 60,
        }
    }

    #[test]
    fn right_token_and_user_grant_the_configured_scope() {
        let token = "t".repeat(40);
        let h = [("x-pangolin-token", token.as_str()), ("remote-user", "ann")];
        let p = sso().authenticate(headers(&h)).unwrap().unwrap();
        assert_eq!(p.scope, Scope::Print);
        assert_eq!(p.actor(), "sso:ann");
    }

    #[test]
    fn user_header_alone_grants_nothing() {
        let h = [("Remote-User", "admin"), ("X-Pangolin-User", "admin")];
        assert!(sso().authenticate(headers(&h)).is_none());
    }

    #[test]
    fn wrong_token_or_empty_user_is_refused() {
        let short = "t".repeat(39);
        let long = "t".repeat(41);
        let token = "t".repeat(40);
        let cases: [&[(&str, &str)]; 4] = [
            &[("X-Pangolin-Token", &short), ("Remote-User", "ann")],
            &[("X-Pangolin-Token", &long), ("Remote-User", "ann")],
            &[("X-Pangolin-Token", ""), ("Remote-User", "ann")],
            &[("X-Pangolin-Token", &token), ("Remote-User", "  ")],
        ];
        for h in cases {
            let err = sso().authenticate(headers(h)).unwrap().unwrap_err();
            assert_eq!(err.code(), "invalid_sso_token");
        }
    }
}
