//! Access control (issue 5): API keys, scopes, single sign-on, rate limits
//! and the audit log. (The front door that guards the HTTP server against
//! hostile clients is `http::front`; it uses [`rate`]'s per-address slots.)
//!
//! - [`key`]: key material (generation, parsing, digests, constant time).
//! - [`scope`], [`principal`]: what a caller may do and on which printers.
//! - [`store`], [`audit`]: the `api_keys` and `audit_log` tables.
//! - [`gate`]: turns request headers into a [`Principal`] (or a 401).
//! - [`sso`]: the trusted reverse-proxy path, only with a shared secret.
//! - [`rate`]: token buckets per principal, slots per client address.
//! - [`bootstrap`]: the first admin key, written to a 0600 file.
//! - [`admin`]: the API key and audit log logic (handlers: `api::keys`).
//! - [`access`]: the gate every request passes, from its resolved route.
//! - [`session`]: console sessions (cookie, CSRF token), read by the gate.
//!
//! **Architecture invariants:**
//! - Every route but `/healthz` and `/openapi.json` needs a [`Principal`];
//!   the only ways to get one are a verified API key and SSO with the
//!   configured trust token. There is no anonymous or bypass principal.
//! - A bad key never reveals why it is bad: unknown, wrong, disabled and
//!   expired keys all get [`AuthError::InvalidKey`] after the same work.
//! - `auth` owns its SQL (`api_keys`, `audit_log`) and takes the connection
//!   from the caller; it never holds the hub's lock itself.

pub mod access;
pub mod admin;
pub mod audit;
pub mod bootstrap;
pub mod config;
mod error;
pub mod gate;
pub mod key;
pub mod limits;
pub mod rate;
pub mod session;
pub mod sso;
pub mod store;

pub use access::AuthState;
pub use config::AuthConfig;
pub use error::AuthError;
pub use gate::Gate;

/// The request header carrying an API key (upstream's name).
pub const KEY_HEADER: &str = "X-Label-Hub-Key";
