//! Who is calling and what a route needs: the one [`Scope`] and the one
//! [`Principal`] of the crate. `http` carries them (the route table
//! declares a scope, the request carries its caller to the handler and the
//! access log); `auth` decides them (how a caller proves itself, what is
//! refused), so they are plain data here.
//!
//! **Invariant:** a [`Principal`] exists only after a secret was verified
//! (an API key digest or the SSO trust token, in `auth`). There is no
//! anonymous or built-in principal; public routes simply need none.

use std::fmt;

use uuid::Uuid;

/// Access, as a route requires it and as a caller holds it. The order of
/// the variants is the hierarchy (`Ord` is derived): a scope grants itself
/// and every smaller one, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// No credentials (health, the OpenAPI document, console files). A
    /// route's scope, never a key's.
    Public,
    /// Read printers, jobs, batches, previews.
    Read,
    /// Everything `read` may, plus submit and control jobs and queues.
    Print,
    /// Everything, including API keys, printers and the audit log.
    Admin,
}

impl Scope {
    /// Whether a holder of `self` may use a route that requires `required`.
    pub fn allows(self, required: Scope) -> bool {
        self >= required
    }

    /// The wire name (`public`, `read`, `print`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Read => "read",
            Scope::Print => "print",
            Scope::Admin => "admin",
        }
    }

    /// Parses the name of a scope a key can hold (`read`, `print`, `admin`;
    /// exact, lower case): `public` is not one.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "print" => Some(Scope::Print),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// The effective scope of an upstream-style `scopes` list: the highest
    /// one named. `None` if the list is empty or names an unknown scope
    /// (upstream accepted anything; labelhub refuses it).
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Option<Scope> {
        let mut best: Option<Scope> = None;
        for s in list {
            let scope = Scope::parse(s.as_ref())?;
            best = Some(best.map_or(scope, |b| b.max(scope)));
        }
        best
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the principal proved itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An API key (`X-Label-Hub-Key`, or a console session of that key).
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

    /// Whether the list is limited to some printers.
    pub fn is_limited(&self) -> bool {
        matches!(self, PrinterAccess::Only(_))
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

    /// The allow-list as text (empty = all printers).
    pub fn ids(&self) -> Vec<String> {
        match self {
            PrinterAccess::All => Vec::new(),
            PrinterAccess::Only(ids) => ids.iter().map(Uuid::to_string).collect(),
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

    /// The API key's public lookup prefix (`lh_pat_` + 9 characters), for
    /// the access log; never the key.
    pub fn key_prefix(&self) -> Option<&str> {
        match &self.source {
            Source::ApiKey { prefix, .. } => Some(prefix),
            Source::Sso { .. } => None,
        }
    }

    /// `api-key:<uuid>` or `sso:<user>`: the actor in audit rows, the
    /// `created_by` of batches and the rate-limit bucket.
    pub fn actor(&self) -> String {
        match &self.source {
            Source::ApiKey { id, .. } => format!("api-key:{id}"),
            Source::Sso { user } => format!("sso:{user}"),
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
    fn hierarchy_is_public_read_print_admin() {
        use Scope::*;
        let all = [Public, Read, Print, Admin];
        for (i, held) in all.into_iter().enumerate() {
            for (j, needed) in all.into_iter().enumerate() {
                assert_eq!(held.allows(needed), i >= j, "{held} for {needed}");
            }
        }
    }

    #[test]
    fn lists_take_the_highest_and_refuse_unknown_names() {
        assert_eq!(Scope::from_list(&["read", "print"]), Some(Scope::Print));
        assert_eq!(Scope::from_list(&["admin", "read"]), Some(Scope::Admin));
        assert_eq!(Scope::from_list::<&str>(&[]), None);
        assert_eq!(Scope::from_list(&["read", "root"]), None);
        assert_eq!(Scope::from_list(&["Admin"]), None);
        assert_eq!(Scope::from_list(&["public"]), None);
        for s in [Scope::Read, Scope::Print, Scope::Admin] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn allow_list_limits_printers_and_empty_means_all() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let p = key(Scope::Admin, vec![a]);
        assert!(p.printers.is_limited());
        assert!(p.printers.allows_str(&a.to_string()));
        assert!(!p.printers.allows_str(&b.to_string()));
        assert!(!p.printers.allows_str("not-a-uuid"));
        assert_eq!(p.printers.ids(), [a.to_string()]);
        let all = key(Scope::Read, vec![]);
        assert!(!all.printers.is_limited());
        assert!(all.printers.allows_str(&b.to_string()));
    }

    #[test]
    fn actor_names_the_key_or_user() {
        let p = key(Scope::Read, vec![]);
        assert_eq!(p.actor(), format!("api-key:{}", Uuid::nil()));
        assert_eq!(p.api_key_id(), Some(Uuid::nil()));
        assert_eq!(p.key_prefix(), Some("lh_pat_abcdefghi"));
        let s = Principal {
            source: Source::Sso { user: "ann".into() },
            ..p
        };
        assert_eq!(s.actor(), "sso:ann");
        assert_eq!(s.api_key_id(), None);
        assert_eq!(s.key_prefix(), None);
    }
}
