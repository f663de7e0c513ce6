//! Scopes: `read` ⊂ `print` ⊂ `admin`.
//!
//! **Invariant:** a scope grants itself and every smaller scope, and nothing
//! else; the order of the variants *is* the hierarchy (`Ord` is derived).

use std::fmt;

/// What a key (or an SSO user) may do. Every route declares the one it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read printers, jobs, batches, previews.
    Read,
    /// Everything `read` may, plus submit and control jobs and queues.
    Print,
    /// Everything, including API keys, printers and the audit log.
    Admin,
}

impl Scope {
    /// All scopes, smallest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Print, Scope::Admin];

    /// Whether a holder of `self` may use a route that requires `required`.
    pub fn allows(self, required: Scope) -> bool {
        self >= required
    }

    /// The wire name (`read`, `print`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Print => "print",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name (exact, lower case).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_is_read_print_admin() {
        use Scope::*;
        let table = [
            (Read, Read, true),
            (Read, Print, false),
            (Read, Admin, false),
            (Print, Read, true),
            (Print, Print, true),
            (Print, Admin, false),
            (Admin, Read, true),
            (Admin, Print, true),
            (Admin, Admin, true),
        ];
        for (held, needed, ok) in table {
            assert_eq!(held.allows(needed), ok, "{held} for {needed}");
        }
    }

    #[test]
    fn lists_take_the_highest_and_refuse_unknown_names() {
        assert_eq!(Scope::from_list(&["read", "print"]), Some(Scope::Print));
        assert_eq!(Scope::from_list(&["admin", "read"]), Some(Scope::Admin));
        assert_eq!(Scope::from_list::<&str>(&[]), None);
        assert_eq!(Scope::from_list(&["read", "root"]), None);
        assert_eq!(Scope::from_list(&["Admin"]), None);
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
