//! Appliance routes: discovery, backup, deleting a printer.
//!
//! * `GET /api/v1/admin/discover`: USB printers from sysfs (under
//!   `PRINTER_HUB_SYSFS_ROOT`) and, with `?cidr=`, an SNMP sweep. One sweep
//!   at a time (409 `discovery_running`); the sweep's deadline is at most
//!   [`MAX_API_DEADLINE`] so a handler thread is never held longer.
//! * `GET /api/v1/admin/backup`: the same consistent copy as `labelhub
//!   backup`, sent as `application/vnd.sqlite3`. The copy is written to a
//!   temporary file in the data directory and sent from memory (the HTTP
//!   layer buffers whole answers); databases above [`MAX_API_BACKUP`] are
//!   refused with a pointer to the CLI.
//! * `DELETE /api/v1/admin/printers/{slug}[?cancel_queued=true]`.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::{json, origin, Api, ApiError};
use crate::discover::{auto, net, usb};
use crate::http::{Reply, Request, Response};
use crate::hub::{backup, printers, remove, HubError};

/// Longest SNMP sweep through the API.
pub const MAX_API_DEADLINE: Duration = Duration::from_secs(30);

/// Largest database the API sends (bytes); bigger ones: `labelhub backup`.
pub const MAX_API_BACKUP: u64 = 256 * 1024 * 1024;

static SWEEP: Mutex<()> = Mutex::new(());

fn num<T: std::str::FromStr>(req: &Request, name: &str) -> Result<Option<T>, ApiError> {
    match req.query(name) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                "validation_error",
                format!("{name}={v}: expected a whole number"),
            )
        }),
    }
}

fn flag(req: &Request, name: &str, default: bool) -> Result<bool, ApiError> {
    match req.query(name) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(ApiError::invalid(
            "validation_error",
            format!("{name}={v}: expected true or false"),
        )),
    }
}

/// `GET /api/v1/admin/discover?cidr=&community=&snmp_port=&raw_port=&rate=&timeout_ms=&deadline_s=&usb=`
pub fn discover(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let with_usb = flag(req, "usb", true)?;
    let cidr = super::text_param(req, "cidr");
    let mut opts = match &cidr {
        Some(c) => {
            Some(net::ScanOptions::new(c).map_err(|m| ApiError::invalid("validation_error", m))?)
        }
        None => None,
    };
    if let Some(o) = opts.as_mut() {
        if let Some(c) = super::text_param(req, "community") {
            o.community = c.chars().take(64).collect();
        }
        o.snmp_port = num(req, "snmp_port")?.unwrap_or(o.snmp_port);
        o.raw_port = num(req, "raw_port")?.unwrap_or(o.raw_port);
        o.rate = num(req, "rate")?.unwrap_or(o.rate);
        if let Some(ms) = num::<u64>(req, "timeout_ms")? {
            o.timeout = Duration::from_millis(ms);
        }
        if let Some(s) = num::<u64>(req, "deadline_s")? {
            o.deadline = Duration::from_secs(s);
        }
        if o.deadline > MAX_API_DEADLINE {
            return Err(ApiError::invalid(
                "validation_error",
                format!(
                    "deadline_s={}: at most {} s through the API (use `labelhub discover` for longer sweeps)",
                    o.deadline.as_secs(),
                    MAX_API_DEADLINE.as_secs()
                ),
            ));
        }
        o.check()
            .map_err(|m| ApiError::invalid("validation_error", m))?;
    }
    let mut found = if with_usb {
        usb::scan(&api.hub.config.sysfs_root)
    } else {
        Vec::new()
    };
    let mut network = None;
    if let Some(o) = &opts {
        // A sweep that panicked (the handler answered 500) leaves the lock
        // poisoned; that must not block every later sweep.
        let _guard = match SWEEP.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(ApiError::Conflict {
                    code: "discovery_running",
                    message: "another network sweep is running; try again when it is done".into(),
                })
            }
        };
        let report = net::scan(o).map_err(|m| HubError::Io {
            context: "SNMP sweep".into(),
            error: std::io::Error::other(m),
        })?;
        network = Some(json!({
            "cidr": report.cidr, "probed": report.probed, "answered": report.answered,
            "requests_sent": report.requests_sent, "elapsed_ms": report.elapsed_ms,
        }));
        found.extend(report.found);
    }
    let configured = printers::list(&api.hub.db.read(), true)?;
    for f in &mut found {
        if let Some(p) = auto::configured_as(f, &configured) {
            // A key limited to some printers learns that the device is
            // taken, not by which printer.
            if crate::auth::access::may_use_printer(req, &p.id) {
                f.mark_configured(&p.slug);
            } else {
                f.mark_configured("(a printer this key cannot see)");
            }
        }
    }
    json(200, &json!({"found": found, "network": network}))
}

/// Whether the caller's key is limited to some printers.
fn limited(req: &Request) -> bool {
    req.principal
        .as_ref()
        .is_none_or(|p| p.printers.is_limited())
}

/// `GET /api/v1/admin/backup`: a consistent copy of the database. It holds
/// every printer's jobs and every key's digest, so a key limited to some
/// printers gets 403 `printer_not_allowed`.
pub fn backup(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    if limited(req) {
        return Err(ApiError::Auth {
            status: 403,
            code: "printer_not_allowed",
            message: "a backup holds every printer's data: it needs an admin key that is not \
                      limited to some printers"
                .into(),
            retry_after: None,
        });
    }
    let db = api.hub.config.db_path();
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    if size > MAX_API_BACKUP {
        return Err(ApiError::Conflict {
            code: "backup_too_large",
            message: format!(
                "the database is {size} bytes, more than the {MAX_API_BACKUP} the API sends; \
                 run `labelhub backup -o FILE` on the hub's machine"
            ),
        });
    }
    let tmp = api
        .hub
        .config
        .data_dir
        .join(format!(".api-backup-{}.db", uuid::Uuid::new_v4()));
    let res = backup::backup_to(&db, &tmp).and_then(|info| {
        std::fs::read(&tmp)
            .map(|bytes| (info, bytes))
            .map_err(|error| HubError::Io {
                context: format!("reading {}", tmp.display()),
                error,
            })
    });
    let _ = std::fs::remove_file(&tmp);
    let (info, bytes) = res?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "backup".into());
    Ok(Reply::Respond(
        Response::new(200, "application/vnd.sqlite3", bytes)
            .with_header(
                "Content-Disposition",
                &format!("attachment; filename=\"labelhub-{stamp}.db\""),
            )
            .with_header(
                "X-Labelhub-Schema-Version",
                &info.schema_version.to_string(),
            )
            .with_header("Cache-Control", "no-store"),
    ))
}

/// `DELETE /api/v1/admin/printers/{slug}?cancel_queued=true`: 200 with
/// what was removed; 409 `printer_has_jobs` while jobs wait (without
/// `cancel_queued`), 409 `printer_busy` while a label is being sent.
pub fn delete_printer(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let cancel = flag(req, "cancel_queued", false)?;
    let o = origin(req);
    let by = format!(
        "{}:{}",
        o.created_by.unwrap_or_else(|| "anonymous".into()),
        o.source_ip.unwrap_or_default()
    );
    let d = remove::delete_printer(&api.hub, req.param("slug"), cancel, &by)?;
    json(
        200,
        &json!({
            "deleted": d.printer.slug,
            "id": d.printer.id,
            "jobs_cancelled": d.cancelled,
            "jobs_deleted": d.jobs_deleted,
        }),
    )
}
