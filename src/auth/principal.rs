//! Who is calling: the result of a successful authentication.
//!
//! **Invariant:** a [`Principal`] exists only after a secret was verified
//! (an API key digest or the SSO trust token). There is no anonymous or
//! built-in principal; `/healthz` and `/openapi.json` simply need none.

use uuid::Uuid;

use super::{AuthError, Scope};

/// How the principal proved itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An API key (`X-Label-Hub-Key`).
    ApiKey { id: Uuid, prefix: String },
    /// A user named by a trusted reverse proxy that presented the configured
    /// trust token.
    Sso { user: String },
}

/// Which printers the principal may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrinterAccess {
    /// Every printer (an empty allow-list, as upstream).
    All,
    /// Only these printer ids.
    Only(Vec<Uuid>),
}

impl PrinterAccess {
    /// Builds the access from an allow-list (empty = all printers).
    pub fn from_list(ids: Vec<Uuid>) -> PrinterAccess {
        if ids.is_empty() {
            PrinterAccess::All
        } else {
            PrinterAccess::Only(ids)
        }
    }

    /// Whether the printer with this id may be used.
    pub fn allows(&self, printer_id: &Uuid) -> bool {
        match self {
            PrinterAccess::All => true,
            PrinterAccess::Only(ids) => ids.contains(printer_id),
        }
    }

    /// Same, for a printer id held as text (unparsable text is never
    /// allowed by a restricted list).
    pub fn allows_str(&self, printer_id: &str) -> bool {
        match self {
            PrinterAccess::All => true,
            PrinterAccess::Only(_) => Uuid::parse_str(printer_id).is_ok_and(|id| self.allows(&id)),
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub source: Source,
    pub scope: Scope,
    pub printers: PrinterAccess,
    /// Submissions per minute (the token bucket's size and refill).
    pub rate_limit_per_minute: u32,
}

impl Principal {
    /// The API key id, if the principal is a key (recorded on jobs).
    pub fn api_key_id(&self) -> Option<Uuid> {
        match &self.source {
            Source::ApiKey { id, .. } => Some(*id),
            Source::Sso { .. } => None,
        }
    }

    /// `api-key:<uuid>` or `sso:<user>`: the actor in audit rows and the
    /// `created_by` of batches.
    pub fn actor(&self) -> String {
        match &self.source {
            Source::ApiKey { id, .. } => format!("api-key:{id}"),
            Source::Sso { user } => format!("sso:{user}"),
        }
    }

    /// The rate-limit bucket this principal draws from.
    pub fn bucket_key(&self) -> String {
        self.actor()
    }

    /// `Ok` if the principal's scope covers `required`.
    pub fn require(&self, required: Scope) -> Result<(), AuthError> {
        if self.scope.allows(required) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                required,
                held: self.scope,
            })
        }
    }

    /// `Ok` if the principal may touch the printer with this id.
    pub fn require_printer(&self, printer_id: &str) -> Result<(), AuthError> {
        if self.printers.allows_str(printer_id) {
            Ok(())
        } else {
            Err(AuthError::PrinterNotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: Scope, printers: Vec<Uuid>) -> Principal {
        Principal {
            source: Source::ApiKey {
                id: Uuid::nil(),
                prefix: "lh_pat_abcdefghi".into(),
            },
            scope,
            printers: PrinterAccess::from_list(printers),
            rate_limit_per_minute: 60,
        }
    }

    #[test]
    fn scope_checks_follow_the_hierarchy() {
        let p = key(Scope::Print, vec![]);
        assert!(p.require(Scope::Read).is_ok());
        assert!(p.require(Scope::Print).is_ok());
        let err = p.require(Scope::Admin).unwrap_err();
        assert_eq!(err.code(), "insufficient_scope");
    }

    #[test]
    fn allow_list_limits_printers_and_empty_means_all() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let p = key(Scope::Admin, vec![a]);
        assert!(p.require_printer(&a.to_string()).is_ok());
        assert_eq!(
            p.require_printer(&b.to_string()).unwrap_err().code(),
            "printer_not_allowed"
        );
        assert!(p.require_printer("not-a-uuid").is_err());
        let all = key(Scope::Read, vec![]);
        assert!(all.require_printer(&b.to_string()).is_ok());
    }

    #[test]
    fn actor_names_the_key_or_user() {
        let p = key(Scope::Read, vec![]);
        assert_eq!(p.actor(), format!("api-key:{}", Uuid::nil()));
        assert_eq!(p.api_key_id(), Some(Uuid::nil()));
        let s = Principal {
            source: Source::Sso { user: "ann".into() },
            ..p
        };
        assert_eq!(s.actor(), "sso:ann");
        assert_eq!(s.api_key_id(), None);
    }
}
