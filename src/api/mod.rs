//! The REST API: the route table (method, path, scope, handler), request
//! and response shapes, and the error mapping ([`error`]).
//!
//! Paths and JSON field names follow the upstream hub's OpenAPI document so
//! its clients keep working; where upstream had bugs (two state
//! vocabularies, hidden copies, five error shapes) this API has one state
//! vocabulary, lists every physical label, and answers every error as
//! problem+json with an `error_code`.
//!
//! **Invariants.**
//! * Every route is in [`routes`] with its scope; `/openapi.json` is built
//!   from the same table (a test checks nothing is missing).
//! * Handlers call typed `hub` functions and contain no SQL except reads
//!   through `hub::jobs`/`hub::printers` query functions.
//! * Every request passes one gate, [`Api::authenticate`] (→
//!   `auth::access`), before its handler; only public routes need no
//!   principal, and without access control only they answer.

pub mod admin;
pub mod appliance;
pub mod console;
pub mod error;
pub mod events;
pub mod integrations;
pub mod jobs;
pub mod keys;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod print;
pub mod printers;
pub mod shapes;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::park::Parking;
use crate::http::{
    App, HttpError, Policy, Reply, Request, Resource, Response, Route, Router, Scope, Wake,
};
use crate::hub::{ChangeListener, Changes, Hub, Origin};

pub use error::ApiError;

/// Longest long-poll wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The application state handed to every handler.
pub struct Api {
    pub hub: Arc<Hub>,
    /// Parked long-polls, event streams, the webhook sender: built before
    /// the hub, which tells them of every commit.
    followers: Arc<Followers>,
    /// Access control; without it only public routes answer.
    auth: Option<Arc<crate::auth::AuthState>>,
    /// The bounded preview pool.
    pub previews: print::PreviewPool,
}

impl Api {
    /// The API over a hub opened with `followers` as its change listener.
    pub fn new(
        hub: Arc<Hub>,
        followers: Arc<Followers>,
        auth: Option<Arc<crate::auth::AuthState>>,
    ) -> Arc<Api> {
        Arc::new(Api {
            previews: print::PreviewPool::new(
                hub.config.preview_concurrency,
                hub.config.preview_per_key,
            ),
            hub,
            followers,
            auth,
        })
    }

    /// Lookups, webhooks in and out.
    pub fn integrations(&self) -> &crate::integrations::Integrations {
        &self.followers.integrations
    }

    /// The installed access control.
    pub fn auth(&self) -> Option<&crate::auth::AuthState> {
        self.auth.as_deref()
    }

    /// The event stream registry (its thread starts with the first stream).
    pub fn streams(&self) -> &crate::api::console::sse::Streams {
        &self.followers.streams
    }

    /// Open event streams right now.
    pub fn open_streams(&self) -> usize {
        self.followers.streams.len()
    }

    /// Parked long-poll requests right now.
    pub fn waiters(&self) -> usize {
        self.followers.parking.len()
    }
}

/// Whoever waits for the hub's commits: parked long-polls, the event
/// stream thread, the webhook sender. Built before the hub and handed to
/// [`Hub::open`] as its change listener.
pub struct Followers {
    pub parking: Arc<Parking>,
    pub streams: crate::api::console::sse::Streams,
    pub integrations: Arc<crate::integrations::Integrations>,
}

impl Followers {
    pub fn new(
        parking: Arc<Parking>,
        integrations: Arc<crate::integrations::Integrations>,
    ) -> Arc<Followers> {
        Arc::new(Followers {
            parking,
            streams: crate::api::console::sse::Streams::new(),
            integrations,
        })
    }
}

impl ChangeListener for Followers {
    fn changed(&self, changes: &Changes) {
        // Only a commit that queued webhooks has anything for the sender
        // (waking it on every commit cost a thread wake-up and two queries
        // per group commit).
        if changes.webhooks > 0 {
            self.integrations.sender.wake();
        }
        let mut keys: Vec<String> =
            Vec::with_capacity(changes.jobs.len() + changes.batches.len() + 2);
        keys.extend(changes.jobs.iter().map(|j| format!("job:{j}")));
        keys.extend(changes.batches.iter().map(|b| format!("batch:{b}")));
        keys.extend(changes.printers.iter().map(|p| format!("printer:{p}")));
        keys.push("events".into());
        self.parking.notify(&keys, changes.max_event);
        self.streams.changed();
    }
}

impl App for Api {
    fn authenticate(&self, req: &mut Request, scope: Scope) -> Result<(), Response> {
        Api::authenticate(self, req, scope).map_err(|e| error::problem(Some(req), &e))
    }

    fn error(&self, req: Option<&Request>, err: &HttpError) -> Response {
        error::http_error(req, err)
    }
}

impl Api {
    /// Decides whether the caller may use a route of `scope` and records
    /// who it is: `auth::access::authenticate` (keys, SSO, scopes, printer
    /// allow-lists, submission rate limits). Without installed access
    /// control only public routes answer.
    pub fn authenticate(&self, req: &mut Request, scope: Scope) -> Result<(), ApiError> {
        match self.auth.as_deref() {
            Some(state) => Ok(crate::auth::access::authenticate(
                &self.hub.db,
                state,
                req,
                scope,
            )?),
            None if scope == Scope::Public => Ok(()),
            None => Err(crate::auth::AuthError::MissingCredentials.into()),
        }
    }

    /// Checks the caller of a parked request again when it wakes (key
    /// still usable, scope, printers): `auth::access::recheck`.
    pub fn recheck(&self, req: &mut Request) -> Result<(), ApiError> {
        match self.auth.as_deref() {
            Some(state) => Ok(crate::auth::access::recheck(&self.hub.db, state, req)?),
            None if req.scope == Scope::Public => Ok(()),
            None => Err(crate::auth::AuthError::MissingCredentials.into()),
        }
    }
}

/// Audit origin of a request.
pub fn origin(req: &Request) -> Origin {
    let api_key_id = req
        .principal
        .as_ref()
        .and_then(|p| p.api_key_id())
        .map(|id| id.to_string());
    Origin {
        // A batch's `created_by` is the bare key id, as upstream's clients
        // expect; other principals keep their actor name.
        created_by: Some(match (&api_key_id, &req.principal) {
            (Some(id), _) => id.clone(),
            (None, Some(p)) => p.actor(),
            (None, None) => String::new(),
        }),
        api_key_id,
        source_ip: req.peer.map(|p| p.ip().to_string()),
    }
}

/// The audit actor of a request: its principal (`api-key:<id>`,
/// `sso:<user>`; `unknown` without one) and the client address.
pub fn actor(req: &Request) -> (String, Option<String>) {
    let name = req
        .principal
        .as_ref()
        .map(|p| p.actor())
        .unwrap_or_else(|| "unknown".into());
    (name, req.peer.map(|p| p.ip().to_string()))
}

/// Parses the JSON body into `T` (unknown fields are refused where `T`
/// says so).
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    refuse_form_uploads(req)?;
    if req.body.is_empty() {
        return Err(ApiError::invalid(
            "validation_error",
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| ApiError::Invalid {
        code: "validation_error",
        message: format!("invalid request body: {e}"),
        detail: Some(serde_json::json!({"line": e.line(), "column": e.column()})),
    })
}

/// A multipart or form upload gets a 415 that says
/// what to send instead (JSON, images as base64), before any parsing.
pub fn refuse_form_uploads(req: &Request) -> Result<(), ApiError> {
    // Every Content-Type header counts: a second one must not hide a form.
    let form = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .find(|ct| {
            ct.starts_with("multipart/") || ct.starts_with("application/x-www-form-urlencoded")
        });
    if let Some(ct) = form {
        let kind = ct.split(';').next().unwrap_or("").trim().to_string();
        return Err(ApiError::UnsupportedMediaType {
            code: "unsupported_media_type",
            message: format!(
                "{kind} uploads are not accepted: send Content-Type: application/json, with \
                 an image as base64 text in the `image` field of the label data"
            ),
        });
    }
    Ok(())
}

/// A JSON response.
pub fn json(status: u16, value: &Value) -> Result<Reply, ApiError> {
    Ok(Reply::Respond(Response::json(status, value)))
}

/// Parses `?wait=S` (seconds, at most 60). `None` when absent.
pub fn wait_param(req: &Request) -> Result<Option<Duration>, ApiError> {
    let Some(v) = req.query("wait") else {
        return Ok(None);
    };
    let secs: f64 = v
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            ApiError::invalid(
                "validation_error",
                format!("wait={v}: expected seconds from 0 to 60"),
            )
        })?;
    Ok(Some(Duration::from_secs_f64(
        secs.min(MAX_WAIT.as_secs_f64()),
    )))
}

/// A text query parameter; empty counts as absent.
pub fn text_param(req: &Request, name: &str) -> Option<String> {
    req.query(name)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses an integer query parameter.
pub fn int_param(req: &Request, name: &str) -> Result<Option<i64>, ApiError> {
    match req.query(name) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                "validation_error",
                format!("{name}={v}: expected an integer"),
            )
        }),
    }
}

/// The long-poll decision shared by jobs, batches and events: park when
/// the caller asked to wait, nothing is new, and the deadline has not come.
pub fn should_park(
    req: &Request,
    wait: Option<Duration>,
    is_new: bool,
) -> Option<std::time::Instant> {
    let wait = wait?;
    if is_new || req.wake == Wake::Deadline || wait.is_zero() {
        return None;
    }
    let deadline = req.deadline.unwrap_or(req.received + wait);
    (deadline > std::time::Instant::now()).then_some(deadline)
}

/// Wraps a fallible handler into the router's handler type. The optional
/// last argument is the route's [`Policy`] (resource-naming query
/// parameters, submission, idempotent, lists, unrestricted); path
/// parameters named `printer_id`/`printer_key`/`slug`/`job_id`/`batch_id`
/// name their resource without being listed.
///
/// A request that runs again after parking (a long-poll woken by a change
/// or its deadline) has its key checked again first ([`Api::recheck`]).
macro_rules! route {
    ($method:literal, $path:literal, $scope:ident, $summary:literal, $handler:path) => {
        route!($method, $path, $scope, $summary, $handler, Policy::NONE)
    };
    ($method:literal, $path:literal, $scope:ident, $summary:literal, $handler:path, $policy:expr) => {
        Route::new(
            $method,
            $path,
            Scope::$scope,
            $summary,
            |api: &Api, req: &mut Request| {
                if req.wake != Wake::Fresh {
                    if let Err(err) = api.recheck(req) {
                        return Reply::Respond(error::problem(Some(req), &err));
                    }
                }
                match $handler(api, req) {
                    Ok(reply) => reply,
                    Err(err) => Reply::Respond(error::problem(Some(req), &err)),
                }
            },
        )
        .with_policy($policy)
    };
}

/// The query parameters of the cross-printer feeds that name a resource.
const FEED_QUERY: &[(&str, Resource)] = &[
    ("printer_id", Resource::Printer),
    ("batch_id", Resource::Batch),
];
/// A list narrowed to the caller's printers through `printer_id`.
const FEED: Policy = Policy::NONE.lists().query(FEED_QUERY);
/// Creates jobs from a request body: rate-limited and idempotent.
const SUBMIT: Policy = Policy::NONE.submission().idempotent();
/// Only for keys not limited to printers.
const UNRESTRICTED: Policy = Policy::NONE.unrestricted();

/// The route table: every route of the API with its scope.
pub fn routes() -> Router<Api> {
    Router::new(vec![
        // Meta.
        route!(
            "GET",
            "/healthz",
            Public,
            "Liveness and build information",
            meta::healthz
        ),
        route!(
            "GET",
            "/readiness",
            // Names printers (only the key's own); probes without a key
            // use /readiness/public.
            Read,
            "Database, migrations, printer threads and reachability",
            meta::readiness,
            Policy::NONE.lists()
        ),
        route!(
            "GET",
            "/readiness/public",
            Public,
            "Ready or not, nothing else (for monitoring without a key)",
            meta::readiness_public
        ),
        route!(
            "GET",
            "/openapi.json",
            Public,
            "This API's OpenAPI 3.1 document",
            meta::openapi
        ),
        // Printing.
        route!(
            "POST",
            "/print",
            Print,
            "Print one label (default printer or `printer`)",
            print::print,
            SUBMIT
        ),
        route!(
            "POST",
            "/api/print/{printer_key}/batch",
            Print,
            "Print a batch of 1-500 labels",
            print::batch,
            SUBMIT
        ),
        route!(
            "POST",
            "/api/render/preview",
            Read,
            "Render a label to PNG without printing",
            print::preview
        ),
        // Jobs.
        route!(
            "GET",
            "/api/jobs",
            Read,
            "List jobs, newest first, cursor paging",
            jobs::list,
            FEED
        ),
        route!(
            "GET",
            "/api/jobs/{job_id}",
            Read,
            "One job; long-poll with ?wait&since",
            jobs::get
        ),
        route!(
            "POST",
            "/api/jobs/{job_id}/cancel",
            Print,
            "Cancel a queued or paused job",
            jobs::cancel
        ),
        route!(
            "POST",
            "/api/jobs/{job_id}/retry",
            Print,
            "Print a finished job again as a new job",
            jobs::retry,
            Policy::NONE.submission()
        ),
        route!(
            "POST",
            "/api/jobs/{job_id}/pause",
            Print,
            "Hold a queued job (queued -> paused)",
            jobs::pause
        ),
        route!(
            "POST",
            "/api/jobs/{job_id}/resume",
            Print,
            "Release a paused job (paused -> queued)",
            jobs::resume
        ),
        route!(
            "GET",
            "/jobs/{job_id}",
            Read,
            "One job in the legacy status shape",
            jobs::legacy_get
        ),
        route!(
            "POST",
            "/jobs/{job_id}/resume",
            Print,
            "Legacy: release a paused job",
            jobs::legacy_resume
        ),
        // Batches and events.
        route!(
            "GET",
            "/api/batches/{batch_id}",
            Read,
            "Batch snapshot; long-poll with ?wait&since",
            jobs::batch
        ),
        route!(
            "GET",
            "/api/events",
            Read,
            "Change feed since a cursor; long-poll with ?wait",
            events::feed,
            FEED
        ),
        // Printers.
        route!(
            "GET",
            "/api/printers",
            Read,
            "Enabled printers",
            printers::list,
            Policy::NONE.lists().query(&[("slug", Resource::Printer)])
        ),
        route!(
            "GET",
            "/api/printers/{printer_id}",
            Read,
            "One printer",
            printers::get
        ),
        route!(
            "GET",
            "/api/printers/{printer_id}/status",
            Read,
            "Live status of a printer",
            printers::status
        ),
        route!(
            "GET",
            "/api/printers/{printer_id}/queue",
            Read,
            "Queued, paused and printing jobs, oldest first",
            printers::queue
        ),
        route!(
            "POST",
            "/api/printers/{printer_id}/pause",
            Print,
            "Pause a printer (jobs wait)",
            printers::pause
        ),
        route!(
            "POST",
            "/api/printers/{printer_id}/resume",
            Print,
            "Resume a paused printer",
            printers::resume
        ),
        route!(
            "POST",
            "/api/printers/{printer_id}/queue/clear",
            Print,
            "Cancel every queued and paused job",
            printers::clear
        ),
        route!(
            "POST",
            "/printer/resume",
            Print,
            "Legacy: resume the default printer",
            printers::legacy_resume
        ),
        // Admin.
        route!(
            "GET",
            "/api/v1/admin/printers",
            Admin,
            "All printers (?include_disabled)",
            admin::list,
            Policy::NONE.lists()
        ),
        route!(
            "POST",
            "/api/v1/admin/printers",
            Admin,
            "Create a printer (its thread starts at once)",
            admin::create,
            UNRESTRICTED
        ),
        route!(
            "GET",
            "/api/v1/admin/printers/{slug}",
            Admin,
            "One printer (admin shape)",
            admin::get
        ),
        route!(
            "PUT",
            "/api/v1/admin/printers/{slug}",
            Admin,
            "Change a printer (its thread restarts)",
            admin::update
        ),
        route!(
            "POST",
            "/api/v1/admin/printers/{slug}/disable",
            Admin,
            "Disable a printer (its thread stops)",
            admin::disable
        ),
        route!(
            "POST",
            "/api/v1/admin/printers/{slug}/enable",
            Admin,
            "Enable a printer (its thread starts)",
            admin::enable
        ),
        // Appliance: discovery, backup, deleting a printer.
        route!(
            "GET",
            "/api/v1/admin/discover",
            Admin,
            "USB printers and (?cidr=) an SNMP sweep; each result has the body that adds it",
            appliance::discover
        ),
        route!(
            "GET",
            "/api/v1/admin/backup",
            Admin,
            "Consistent copy of the database (SQLite file)",
            appliance::backup
        ),
        route!(
            "DELETE",
            "/api/v1/admin/printers/{slug}",
            Admin,
            "Delete a printer, its jobs and batches (409 while jobs wait unless ?cancel_queued=true)",
            appliance::delete_printer
        ),
        // Apps people already run: lookups, inbound
        // webhooks (their own X-API-Key secret, checked in the handler),
        // QR landing pages (public like upstream's: phones scan them) and
        // the outbound webhook admin API.
        route!(
            "GET",
            "/api/lookup/{app}/{entity_id}",
            Read,
            "Look an entity up in Snipe-IT, Grocy or Spoolman",
            integrations::lookup
        ),
        route!(
            "POST",
            "/api/webhook/spoolman",
            Public,
            "Spoolman webhook: print a spool label (X-API-Key)",
            integrations::webhook_spoolman,
            Policy::NONE.idempotent()
        ),
        route!(
            "POST",
            "/api/webhook/grocy",
            Public,
            "Grocy webhook or Grocy's label printer webhook (X-API-Key or api_key)",
            integrations::webhook_grocy,
            Policy::NONE.idempotent()
        ),
        route!(
            "GET",
            "/loc/{entity_id}",
            Public,
            "QR landing page: Snipe-IT location",
            integrations::qr_location
        ),
        route!(
            "GET",
            "/asset/{entity_id}",
            Public,
            "QR landing page: Snipe-IT asset (by tag)",
            integrations::qr_asset
        ),
        route!(
            "GET",
            "/spool/{entity_id}",
            Public,
            "QR landing page: Spoolman spool",
            integrations::qr_spool
        ),
        route!(
            "GET",
            "/product/{entity_id}",
            Public,
            "QR landing page: Grocy product",
            integrations::qr_product
        ),
        route!(
            "GET",
            "/api/admin/webhooks",
            Admin,
            "Outbound webhook subscriptions with their last delivery",
            integrations::list_subscriptions,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "POST",
            "/api/admin/webhooks",
            Admin,
            "Subscribe a URL to events; the signing secret is in this response only",
            integrations::create_subscription,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "GET",
            "/api/admin/webhooks/{subscription_id}",
            Admin,
            "One webhook subscription",
            integrations::get_subscription,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "PATCH",
            "/api/admin/webhooks/{subscription_id}",
            Admin,
            "Change a subscription's URL, events, enabled or description",
            integrations::update_subscription,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "DELETE",
            "/api/admin/webhooks/{subscription_id}",
            Admin,
            "Delete a subscription and its deliveries",
            integrations::delete_subscription,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "GET",
            "/api/admin/webhooks/{subscription_id}/deliveries",
            Admin,
            "Delivery log of a subscription, newest first",
            integrations::deliveries,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        route!(
            "POST",
            "/api/admin/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver",
            Admin,
            "Send a delivery again now (same webhook-id)",
            integrations::redeliver,
            // A subscription sees every printer's events.
            UNRESTRICTED
        ),
        // Prometheus metrics. A read key; the
        // printer series follow the key's allow-list (see api::metrics).
        route!(
            "GET",
            "/metrics",
            Read,
            "Prometheus metrics (text format 0.0.4), printers limited to the key's",
            metrics::metrics,
            // Lists across printers: the handler keeps only the caller's.
            Policy::NONE.lists()
        ),
        // API keys and the audit log.
        route!(
            "GET",
            "/api/admin/api-keys",
            Admin,
            "All API keys (metadata only, never the key)",
            keys::list_keys,
            UNRESTRICTED
        ),
        route!(
            "POST",
            "/api/admin/api-keys",
            Admin,
            "Create an API key; the plaintext is in this response only",
            keys::create_key,
            UNRESTRICTED
        ),
        route!(
            "GET",
            "/api/admin/api-keys/{key_id}",
            Admin,
            "One API key (metadata only)",
            keys::get_key,
            UNRESTRICTED
        ),
        route!(
            "PATCH",
            "/api/admin/api-keys/{key_id}",
            Admin,
            "Change enabled, rate limit, notes or printer allow-list",
            keys::update_key,
            UNRESTRICTED
        ),
        route!(
            "DELETE",
            "/api/admin/api-keys/{key_id}",
            Admin,
            "Revoke (disable) an API key",
            keys::revoke_key,
            UNRESTRICTED
        ),
        route!(
            "GET",
            "/api/admin/audit",
            Admin,
            "Audit log of key and printer changes, newest first",
            keys::audit,
            UNRESTRICTED
        ),
        // The console: the page, its files, sessions, the print
        // form's field table and "test connection".
        route!(
            "GET",
            "/",
            Public,
            "The web console (HTML)",
            crate::api::console::index
        ),
        route!(
            "GET",
            "/ui",
            Public,
            "The web console (HTML)",
            crate::api::console::index
        ),
        route!(
            "GET",
            "/assets/{file}",
            Public,
            "A console file by its content-hashed name (cached for a year)",
            crate::api::console::asset
        ),
        route!(
            "POST",
            "/api/session",
            Public,
            "Sign in: trade an API key for a session cookie and CSRF token",
            crate::api::console::sign_in
        ),
        route!(
            "GET",
            "/api/session",
            Read,
            "The signed-in session (key, scope, printers, CSRF token)",
            crate::api::console::show
        ),
        route!(
            "DELETE",
            "/api/session",
            Read,
            "Sign out: end the session and clear its cookie",
            crate::api::console::sign_out
        ),
        route!(
            "GET",
            "/api/content-types",
            Read,
            "Content types with their required and optional label fields",
            crate::api::console::content_types
        ),
        route!(
            "POST",
            "/api/v1/admin/connection-test",
            Admin,
            "Open a printer connection and read its status block (nothing stored)",
            crate::api::console::connection_test,
            UNRESTRICTED
        ),
    ])
}
