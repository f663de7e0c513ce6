//! Access control: API keys, single sign-on, console sessions, the gate
//! every request passes, submission rate limits and the audit log. (The
//! front door against hostile clients is `http::front`.)
//!
//! - [`key`]: key material (generation, parsing, digests, constant time).
//! - [`store`]: the `api_keys` table; [`audit`]: `hub::audit` as auth sees it.
//! - [`gate`]: turns request headers into a `Principal` (or a 401).
//! - [`sso`]: the trusted reverse-proxy path, only with a shared secret.
//! - [`rate`]: token buckets per principal.
//! - [`bootstrap`]: the first admin key, written to a 0600 file.
//! - [`admin`]: the API key and audit log logic (handlers: `api::keys`).
//! - [`access`]: the gate every request passes, from its resolved route.
//! - [`session`]: console sessions (cookie, CSRF token), read by the gate.
//!
//! `Scope` and `Principal` are plain data in `http::principal`; this module
//! decides them.
//!
//! **Architecture invariants:**
//! - Every route that is not public needs a `Principal`; the only ways to
//!   get one are a verified API key and SSO with the configured trust
//!   token. There is no anonymous or bypass principal.
//! - A bad key never reveals why it is bad: unknown, wrong, disabled and
//!   expired keys all get [`AuthError::InvalidKey`] after the same work.
//! - `auth` owns its SQL (`api_keys`, `sessions`) and takes
//!   the connection from its caller, so a change and its audit row share
//!   the caller's transaction. Only [`access`] opens the hub's `Db` itself:
//!   keys are read on the read connection, and the writer is taken only for
//!   the once-a-minute `last_used_*` refresh.

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
