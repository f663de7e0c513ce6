//! The gate every request passes ([`authenticate`], called by
//! `Api::authenticate`) and the re-check of a parked long-poll
//! ([`recheck`]). It reads the request (`http`) and the key and printer
//! tables (`hub`), never `api`: its errors are [`AuthError`]s, which
//! `api::error` turns into answers.
//!
//! The gate decides from the *resolved route* only (`Request::scope`,
//! `Request::policy`, `Request::params`, filled by `http::Router::resolve`):
//! nothing here looks at the request's path. Per request, in this order
//! (the first failure answers):
//! 1. the real client address, which `http::server` took from the header
//!    only `http::front` sets; a request without one did not come through
//!    the front and is refused (`direct_connection_refused`);
//! 2. public routes (`/healthz`, `/readiness/public`, `/openapi.json`) stop
//!    here;
//! 3. the credentials ([`Gate::authenticate`]: 401);
//! 4. the route's scope (403 `insufficient_scope`);
//! 5. the printer allow-list ([`check_printers`]): `unrestricted` routes
//!    refuse limited keys; every resolved parameter that names a printer,
//!    job or batch (path or query) must be one of the key's printers; `lists`
//!    routes with a `printer_id` query parameter are narrowed to the key's
//!    printer (403 `printer_not_allowed`);
//! 6. the JSON nesting limit (400 `json_too_deep`);
//! 7. the submission bucket, for `submission` routes (429).
//!
//! **Invariants:**
//! - A key limited to printers never reaches a handler for another printer's
//!   printer, job or batch; list routes only show its printers; and it
//!   cannot manage keys, read the audit log or create printers (that could
//!   widen its access).
//! - A parked long-poll is answered only while its key still holds: steps 3
//!   to 5 run again every time it wakes.
//! - Requests the gate refuses cost no tokens; only submissions are rate
//!   limited.

use super::limits::{json_depth, MAX_JSON_DEPTH};
use super::{AuthError, Gate};
use crate::http::{Principal, PrinterAccess, Request, Resource, Scope};
use crate::hub::{jobs, now_ms, printers, Db};

/// What `Api` holds for access control: the gate, and whether the server
/// runs behind the front (always, in `serve`): then a request must carry
/// the client address the front set.
pub struct AuthState {
    pub gate: Gate,
    pub behind_front: bool,
}

/// The gate. On success `req.principal` is set (none for public routes)
/// and `req.peer` is the real client address.
pub fn authenticate(
    db: &Db,
    state: &AuthState,
    req: &mut Request,
    scope: Scope,
) -> Result<(), AuthError> {
    if state.behind_front && req.peer.is_none() {
        return Err(AuthError::DirectConnection);
    }
    let Some(principal) = admit(db, state, req, scope)? else {
        return Ok(());
    };
    if json_depth(&req.body) > MAX_JSON_DEPTH {
        return Err(AuthError::JsonTooDeep {
            limit: MAX_JSON_DEPTH,
        });
    }
    if req.policy.submission {
        state.gate.charge_submission(&principal)?;
    }
    Ok(())
}

/// Steps 3 to 5 again for a request that waited parked: the key must still
/// exist, be enabled and unexpired, hold the route's scope and be allowed
/// the route's printers. Nothing is charged.
pub fn recheck(db: &Db, state: &AuthState, req: &mut Request) -> Result<(), AuthError> {
    admit(db, state, req, req.scope).map(|_| ())
}

/// Credentials, scope and printers; sets `req.principal`. `None` for a
/// public route.
fn admit(
    db: &Db,
    state: &AuthState,
    req: &mut Request,
    scope: Scope,
) -> Result<Option<Principal>, AuthError> {
    if scope == Scope::Public {
        req.principal = None;
        return Ok(None);
    }
    // Keys are looked up on the read connection: authentication does not
    // wait behind a commit's fsync. The writing connection is taken only for
    // the once-a-minute `last_used_*` refresh.
    let (principal, touch) = {
        let conn = db.read();
        let ip = req.peer.map(|p| p.ip());
        // The one place credentials are read: an API key, else a console
        // session cookie (+ CSRF token for state changes), else SSO.
        super::session::credentials(
            &state.gate,
            &conn,
            &req.method,
            |name| req.header(name),
            ip,
            now_ms(),
        )?
    };
    if let Some(touch) = touch {
        touch.write(&db.writer());
    }
    require_scope(&principal, scope)?;
    check_printers(db, &principal, req)?;
    req.principal = Some(principal.clone());
    Ok(Some(principal))
}

/// Step 4: `Ok` if the principal's scope covers `required`.
fn require_scope(principal: &Principal, required: Scope) -> Result<(), AuthError> {
    if principal.scope.allows(required) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope {
            required,
            held: principal.scope,
        })
    }
}

/// Step 5: the printer allow-list, from the resolved route's policy.
fn check_printers(db: &Db, principal: &Principal, req: &mut Request) -> Result<(), AuthError> {
    let restricted = match &principal.printers {
        PrinterAccess::All => None,
        PrinterAccess::Only(allowed) => Some(allowed.clone()),
    };
    if restricted.is_some() && req.policy.unrestricted {
        return Err(AuthError::PrinterNotAllowed);
    }
    // Every resolved parameter that names a resource. A query `printer_id`
    // given as a slug is replaced by the printer's id, for every caller
    // (the feeds filter on ids).
    let named: Vec<(&'static str, Resource, String)> = req
        .params
        .iter()
        .filter_map(|(name, value)| {
            let kind = Resource::of_param(name).or_else(|| {
                req.policy
                    .query
                    .iter()
                    .find(|(q, _)| q == name)
                    .map(|(_, k)| *k)
            })?;
            Some((*name, kind, value.clone()))
        })
        .collect();
    if !named.is_empty() {
        let conn = db.read();
        for (name, kind, value) in named {
            // The printer a parameter names; a resource that does not exist
            // is left to the handler (404), except in a query parameter of
            // a limited key, which may name only its own printers.
            let printer = match kind {
                Resource::Printer => printers::get(&conn, &value).ok().map(|p| p.id),
                Resource::Job => jobs::printer_of_job(&conn, &value).ok().flatten(),
                Resource::Batch => jobs::batch(&conn, &value).ok().map(|b| b.printer_id),
            };
            let in_query = req.policy.query.iter().any(|(q, _)| *q == name);
            match printer {
                Some(id) => {
                    if !principal.printers.allows_str(&id) {
                        return Err(AuthError::PrinterNotAllowed);
                    }
                    if in_query && name == "printer_id" {
                        req.params.insert(name, id);
                    }
                }
                None if in_query && restricted.is_some() => {
                    return Err(AuthError::PrinterNotAllowed)
                }
                None => {}
            }
        }
    }
    // Lists across printers with a `printer_id` filter: narrowed to the
    // key's printer, or refused. (Lists without one filter in the handler.)
    let narrows = req.policy.lists
        && req
            .policy
            .query
            .iter()
            .any(|(q, k)| *q == "printer_id" && *k == Resource::Printer);
    if let (Some(allowed), true) = (restricted, narrows) {
        if req.resolved("printer_id").is_none() {
            match allowed.as_slice() {
                [only] => {
                    req.params.insert("printer_id", only.to_string());
                }
                _ => {
                    return Err(AuthError::invalid(
                        "printer_id",
                        "this key is limited to several printers: pass printer_id=<one of them>",
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Whether the request's principal may see or use the printer with this id
/// (for handlers that list printers or resolve a default printer).
pub fn may_use_printer(req: &Request, printer_id: &str) -> bool {
    req.principal
        .as_ref()
        .is_some_and(|p| p.printers.allows_str(printer_id))
}

/// `Err(printer_not_allowed)` unless [`may_use_printer`].
pub fn require_printer(req: &Request, printer_id: &str) -> Result<(), AuthError> {
    if may_use_printer(req, printer_id) {
        Ok(())
    } else {
        Err(AuthError::PrinterNotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Source;

    #[test]
    fn scope_checks_follow_the_hierarchy() {
        let p = Principal {
            source: Source::Sso { user: "ann".into() },
            scope: Scope::Print,
            printers: PrinterAccess::All,
            rate_limit_per_minute: 60,
        };
        assert!(require_scope(&p, Scope::Read).is_ok());
        assert!(require_scope(&p, Scope::Print).is_ok());
        let err = require_scope(&p, Scope::Admin).unwrap_err();
        assert_eq!(err.code(), "insufficient_scope");
    }
}
