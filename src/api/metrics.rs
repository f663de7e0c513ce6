//! `GET /metrics`: the Prometheus text exposition format (0.0.4).
//!
//! **Access.** The route needs a `read` key, like every route that names
//! printers, and what it shows follows the key's printer allow-list: a
//! series labelled with a printer appears only for printers the key may
//! use, so a key limited to one printer learns nothing of the others (not
//! even their slugs). The process-wide series (request latency per route
//! pattern, commit latency, database size, connections, parked long-polls)
//! carry no printer, job or key data and are shown to every read key. A
//! scraper gets its own read key (`POST /api/admin/api-keys`), sent as
//! `X-Label-Hub-Key` or `Authorization: Bearer` (Prometheus'
//! `authorization: {credentials: ...}`); it never needs `print` or `admin`.
//!
//! Everything is read at scrape time: the counters and histograms from
//! [`crate::metrics`], the rest from the database (one grouped query over
//! the `jobs_printer_state` index), the printer threads' live state and the
//! HTTP server.

use std::collections::HashMap;

use super::{Api, ApiError};
use crate::auth::access::may_use_printer;
use crate::http::{Reply, Request, Response};
use crate::hub::{observe, printers};
use crate::metrics::{Exposition, Kind, CONTENT_TYPE};

/// States reported by `labelhub_jobs` (all of them, zero when none).
const STATES: &[&str] = &[
    "queued",
    "paused",
    "printing",
    "done",
    "failed",
    "cancelled",
    "failed_restart",
];

/// States that make up a printer's queue (as `GET .../queue` lists them).
const QUEUE_STATES: &[&str] = &["queued", "paused", "printing"];

pub fn metrics(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let (all, counts) = {
        let conn = api.hub.db.read();
        (
            printers::list(&conn, true)?,
            observe::jobs_by_printer_state(&conn)?,
        )
    };
    let visible: Vec<&printers::Printer> =
        all.iter().filter(|p| may_use_printer(req, &p.id)).collect();
    let slug_of: HashMap<&str, &str> = visible
        .iter()
        .map(|p| (p.id.as_str(), p.slug.as_str()))
        .collect();
    let mut by_state: HashMap<(&str, &str), i64> = HashMap::new();
    for (printer, state, n) in &counts {
        by_state.insert((printer.as_str(), state.as_str()), *n);
    }

    let mut e = Exposition::new();
    e.family(
        "labelhub_build_info",
        Kind::Gauge,
        "Always 1; the labels name the running build",
    );
    e.sample(
        "labelhub_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            (
                "revision",
                option_env!("LABELHUB_REVISION").unwrap_or("unknown"),
            ),
        ],
        1.0,
    );
    e.family(
        "labelhub_uptime_seconds",
        Kind::Gauge,
        "Seconds since the hub opened its database",
    );
    e.sample(
        "labelhub_uptime_seconds",
        &[],
        api.hub.started.elapsed().as_secs_f64(),
    );

    e.registry(&|id| slug_of.get(id).map(|s| s.to_string()));

    e.family(
        "labelhub_jobs",
        Kind::Gauge,
        "Jobs in the database by printer and state (terminal jobs until retention deletes them)",
    );
    for p in &visible {
        for state in STATES {
            let n = by_state.get(&(p.id.as_str(), *state)).copied().unwrap_or(0);
            e.sample(
                "labelhub_jobs",
                &[("printer", &p.slug), ("state", state)],
                n as f64,
            );
        }
    }
    e.family(
        "labelhub_queue_depth",
        Kind::Gauge,
        "Jobs queued, paused or printing on a printer",
    );
    for p in &visible {
        let n: i64 = QUEUE_STATES
            .iter()
            .map(|s| by_state.get(&(p.id.as_str(), *s)).copied().unwrap_or(0))
            .sum();
        e.sample("labelhub_queue_depth", &[("printer", &p.slug)], n as f64);
    }

    printer_status(api, &visible, &mut e);

    e.family(
        "labelhub_db_size_bytes",
        Kind::Gauge,
        "Database file plus write-ahead log on disk",
    );
    e.sample(
        "labelhub_db_size_bytes",
        &[],
        observe::database_bytes(&api.hub.config.db_path()) as f64,
    );
    e.family(
        "labelhub_http_parked_requests",
        Kind::Gauge,
        "Long-poll requests waiting for a change (no handler thread held)",
    );
    e.sample("labelhub_http_parked_requests", &[], api.waiters() as f64);
    e.family(
        "labelhub_http_open_connections",
        Kind::Gauge,
        "Client connections open at the front door",
    );
    e.sample(
        "labelhub_http_open_connections",
        &[],
        crate::metrics::open_connections() as f64,
    );
    Ok(Reply::Respond(Response::new(
        200,
        CONTENT_TYPE,
        e.finish().into_bytes(),
    )))
}

/// Per printer: its thread, whether it answered the last status poll,
/// paused, and the problem it reports.
fn printer_status(api: &Api, visible: &[&printers::Printer], e: &mut Exposition) {
    e.family(
        "labelhub_printer_enabled",
        Kind::Gauge,
        "1 when the printer is enabled",
    );
    for p in visible {
        let v = if p.enabled { 1.0 } else { 0.0 };
        e.sample("labelhub_printer_enabled", &[("printer", &p.slug)], v);
    }
    e.family(
        "labelhub_printer_thread_up",
        Kind::Gauge,
        "1 when an enabled printer's thread is running (0 = dead thread)",
    );
    for p in visible.iter().filter(|p| p.enabled) {
        let v = if api.hub.threads.alive(&p.id) == Some(true) {
            1.0
        } else {
            0.0
        };
        e.sample("labelhub_printer_thread_up", &[("printer", &p.slug)], v);
    }
    e.family(
        "labelhub_printer_online",
        Kind::Gauge,
        "1 when the printer answered its last status request, 0 when not (absent before the first)",
    );
    let live: Vec<_> = visible
        .iter()
        .map(|p| (p, api.hub.threads.live(&p.id)))
        .collect();
    for (p, l) in &live {
        if let Some(online) = l.as_ref().and_then(|l| l.online) {
            let v = if online { 1.0 } else { 0.0 };
            e.sample("labelhub_printer_online", &[("printer", &p.slug)], v);
        }
    }
    e.family(
        "labelhub_printer_paused",
        Kind::Gauge,
        "1 when the printer is paused (by the operator or by a problem)",
    );
    for p in visible {
        let v = if p.paused { 1.0 } else { 0.0 };
        e.sample("labelhub_printer_paused", &[("printer", &p.slug)], v);
    }
    e.family(
        "labelhub_printer_problem",
        Kind::Gauge,
        "1 for the problem a printer reports now (cover_open, no_media, printer_offline...)",
    );
    for (p, l) in &live {
        if let Some(problem) = l.as_ref().and_then(|l| l.problem.as_deref()) {
            e.sample(
                "labelhub_printer_problem",
                &[("printer", &p.slug), ("problem", problem)],
                1.0,
            );
        }
    }
}
