//! The one error type of the `auth` layer. `code()` is the stable machine
//! code; `api::error` maps each variant to an HTTP status.
//!
//! **Invariant:** the authentication failures that could tell an attacker
//! something about a key (unknown prefix, wrong secret, disabled, expired)
//! are all [`AuthError::InvalidKey`], with one message.

use std::fmt;

use super::key::RandomError;
use crate::http::Scope;

/// Everything that can go wrong in `auth`.
#[derive(Debug)]
pub enum AuthError {
    /// No `X-Label-Hub-Key` (and no trusted SSO headers). 401.
    MissingCredentials,
    /// The key is malformed, unknown, wrong, disabled or expired. 401.
    InvalidKey,
    /// The console session cookie is unknown, expired, signed out, or its
    /// key is no longer usable. 401.
    SessionInvalid,
    /// A cookie-authenticated request that changes state came without the
    /// session's CSRF token (or with a wrong one). 403.
    CsrfTokenInvalid,
    /// SSO headers were sent but the trust token is wrong or the user header
    /// is empty. 401.
    InvalidSsoToken,
    /// The key is valid but its scope is below the route's. 403.
    InsufficientScope { required: Scope, held: Scope },
    /// The key's printer allow-list does not include the printer. 403.
    PrinterNotAllowed,
    /// The key's submission bucket is empty. 429 with `Retry-After`.
    RateLimited {
        retry_after_s: u64,
        limit_per_minute: u32,
    },
    /// The client address holds too many connections or long-polls. 429.
    TooManyConnections { retry_after_s: u64 },
    /// The request reached the internal HTTP port without passing the
    /// front door (so its client address is unknown). 403.
    DirectConnection,
    /// The JSON body nests deeper than the limit. 400.
    JsonTooDeep { limit: usize },
    /// No API key with this id (admin API). 404.
    KeyNotFound { id: String },
    /// Disabling this key would leave no usable admin key. 409.
    LastAdminKey,
    /// An admin request value is not acceptable. 422.
    Invalid { field: String, message: String },
    /// SQLite failed.
    Db(rusqlite::Error),
    /// The OS random source failed; no key was made.
    Random(RandomError),
    /// Writing the bootstrap key file failed.
    Io {
        context: String,
        error: std::io::Error,
    },
}

impl AuthError {
    /// The stable machine code (`error_code` in problem+json).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::InvalidKey => "invalid_key",
            AuthError::InvalidSsoToken => "invalid_sso_token",
            AuthError::SessionInvalid => "session_invalid",
            AuthError::CsrfTokenInvalid => "csrf_token_invalid",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::PrinterNotAllowed => "printer_not_allowed",
            AuthError::RateLimited { .. } => "rate_limit_exceeded",
            AuthError::TooManyConnections { .. } => "too_many_connections",
            AuthError::DirectConnection => "direct_connection_refused",
            AuthError::JsonTooDeep { .. } => "json_too_deep",
            AuthError::KeyNotFound { .. } => "api_key_not_found",
            AuthError::LastAdminKey => "last_admin_key",
            AuthError::Invalid { .. } => "validation_error",
            AuthError::Db(_) => "database_error",
            AuthError::Random(_) => "random_source_failed",
            AuthError::Io { .. } => "io_error",
        }
    }

    /// Seconds a client should wait before retrying, for the 429s.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            AuthError::RateLimited { retry_after_s, .. }
            | AuthError::TooManyConnections { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> AuthError {
        AuthError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingCredentials => {
                f.write_str("this route needs an API key in the X-Label-Hub-Key header")
            }
            AuthError::InvalidKey => f.write_str("the API key is not valid"),
            AuthError::InvalidSsoToken => f.write_str("the single sign-on headers are not valid"),
            AuthError::SessionInvalid => {
                f.write_str("the session has ended (signed out, expired or its key revoked)")
            }
            AuthError::CsrfTokenInvalid => f.write_str(
                "a session request that changes something needs the X-CSRF-Token header",
            ),
            AuthError::InsufficientScope { required, held } => write!(
                f,
                "this route needs the `{required}` scope; the key has `{held}`"
            ),
            AuthError::PrinterNotAllowed => f.write_str("the key may not use this printer"),
            AuthError::RateLimited {
                retry_after_s,
                limit_per_minute,
            } => write!(
                f,
                "rate limit of {limit_per_minute} submissions per minute exceeded; \
                 retry after {retry_after_s} s"
            ),
            AuthError::TooManyConnections { retry_after_s } => write!(
                f,
                "too many concurrent requests from this address; retry after {retry_after_s} s"
            ),
            AuthError::DirectConnection => {
                f.write_str("connect to the hub's public address, not its internal port")
            }
            AuthError::JsonTooDeep { limit } => {
                write!(f, "the JSON body nests deeper than {limit} levels")
            }
            AuthError::KeyNotFound { id } => write!(f, "API key {id} not found"),
            AuthError::LastAdminKey => f.write_str(
                "this is the last usable admin key; create another admin key before disabling it",
            ),
            AuthError::Invalid { field, message } => write!(f, "{field}: {message}"),
            AuthError::Db(e) => write!(f, "database error: {e}"),
            AuthError::Random(e) => write!(f, "{e}"),
            AuthError::Io { context, error } => write!(f, "{context}: {error}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> AuthError {
        AuthError::Db(e)
    }
}

impl From<RandomError> for AuthError {
    fn from(e: RandomError) -> AuthError {
        AuthError::Random(e)
    }
}
