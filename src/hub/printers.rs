//! Printers as rows: create, change, enable/disable (with an audit row and a
//! `printer.changed` event each), pause state, last status and media.
//!
//! **Invariant:** this module only writes rows; starting, restarting and
//! stopping threads after a change is `registry`'s job, called by the API
//! right after the commit.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use super::events::{self, Subject, Writer};
use super::{now_ms, HubError};

/// The default of `printers.max_length_mm` (sql/0013_quotas.sql).
pub const DEFAULT_MAX_LENGTH_MM: i64 = 500;

/// The longest label `model` can print, in mm (its length limit, to the
/// nearest mm: 7086 dots at 180 dpi is the 1 m of the manuals).
pub fn model_max_length_mm(model: &crate::brother::model::Model) -> i64 {
    let dpi10 = i64::from(model.dpi) * 10;
    (i64::from(model.max_length_dots) * 254 + dpi10 / 2) / dpi10
}

/// A printer row.
#[derive(Debug, Clone, PartialEq)]
pub struct Printer {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub model: String,
    /// The connection URI, without the SNMP community.
    pub uri: String,
    /// The SNMP community of a `tcp://` printer (a secret; `None` = the
    /// default). Never logged, shown only to admin routes.
    pub snmp_community: Option<String>,
    /// Configured loaded medium (used when the printer cannot report one).
    pub media: Option<String>,
    /// Medium last reported by the printer.
    pub seen_media: Option<String>,
    pub half_cut: bool,
    pub auto_cut: bool,
    pub auto_resume: bool,
    pub queue_timeout_s: i64,
    /// Longest label accepted, in mm (the medium's own limit
    /// still applies). Longer labels are refused with `label_too_long`.
    pub max_length_mm: i64,
    pub enabled: bool,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub paused_detail: Option<String>,
    pub status: Option<Value>,
    pub status_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Printer {
    /// The medium jobs are rendered for: what the printer reported last,
    /// else the configured one.
    pub fn loaded_media(&self) -> Option<&str> {
        self.seen_media.as_deref().or(self.media.as_deref())
    }

    /// The URI the transport opens: [`Printer::uri`] plus the community.
    /// A secret: for the device only, never for logs or answers.
    pub fn connection_uri(&self) -> String {
        match &self.snmp_community {
            Some(c) if self.uri.starts_with("tcp://") => {
                let sep = if self.uri.contains('?') { '&' } else { '?' };
                format!("{}{sep}community={c}", self.uri)
            }
            _ => self.uri.clone(),
        }
    }

    /// The URI for logs and non-admin answers (`community=***`).
    pub fn shown_uri(&self) -> String {
        crate::brother::transport::redact_uri(&self.uri)
    }

    /// The audit snapshot (the community as `***`).
    pub fn audit_json(&self) -> Value {
        json!({
            "id": self.id, "slug": self.slug, "name": self.name, "model": self.model,
            "uri": self.shown_uri(),
            "snmp_community": self.snmp_community.as_ref().map(|_| "***"),
            "media": self.media, "half_cut": self.half_cut,
            "auto_cut": self.auto_cut, "auto_resume": self.auto_resume,
            "queue_timeout_s": self.queue_timeout_s, "max_length_mm": self.max_length_mm,
            "enabled": self.enabled,
        })
    }
}

const COLUMNS: &str = "id, slug, name, model, uri, media, seen_media, half_cut, auto_cut, auto_resume, \
    queue_timeout_s, enabled, paused, paused_reason, paused_detail, status, status_at, created_at, updated_at, \
    snmp_community, max_length_mm";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Printer> {
    let status: Option<String> = r.get(15)?;
    Ok(Printer {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        model: r.get(3)?,
        uri: r.get(4)?,
        media: r.get(5)?,
        seen_media: r.get(6)?,
        half_cut: r.get(7)?,
        auto_cut: r.get(8)?,
        auto_resume: r.get(9)?,
        queue_timeout_s: r.get(10)?,
        max_length_mm: r.get(20)?,
        enabled: r.get(11)?,
        paused: r.get(12)?,
        paused_reason: r.get(13)?,
        paused_detail: r.get(14)?,
        status: status.and_then(|s| serde_json::from_str(&s).ok()),
        status_at: r.get(16)?,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        snmp_community: r.get(19)?,
    })
}

/// All printers in creation order.
pub fn list(conn: &Connection, include_disabled: bool) -> Result<Vec<Printer>, HubError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM printers WHERE enabled OR ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([include_disabled], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A printer by id or slug.
pub fn get(conn: &Connection, key: &str) -> Result<Printer, HubError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM printers WHERE id = ?1 OR slug = ?1 ORDER BY id = ?1 DESC LIMIT 1"
    ))?
    .query_row([key], from_row)
    .optional()?
    .ok_or_else(|| HubError::not_found("printer", key))
}

/// The printer `POST /print` uses without a `printer` field: the first
/// enabled printer in creation order.
pub fn default_printer(conn: &Connection) -> Result<Printer, HubError> {
    // One row, not the list: `POST /print` asks this for every label.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {COLUMNS} FROM printers WHERE enabled ORDER BY created_at, rowid LIMIT 1")
    });
    conn.prepare_cached(&SQL)?
        .query_row([], from_row)
        .optional()?
        .ok_or_else(|| HubError::not_found("printer", "(default)"))
}

/// Fields of a new printer (already validated by the API).
#[derive(Debug, Clone)]
pub struct NewPrinter {
    pub slug: String,
    pub name: String,
    pub model: String,
    pub uri: String,
    /// Kept out of `uri` (see [`Printer::snmp_community`]).
    pub snmp_community: Option<String>,
    pub media: Option<String>,
    pub half_cut: bool,
    pub auto_cut: bool,
    pub auto_resume: bool,
    pub queue_timeout_s: i64,
    pub max_length_mm: i64,
    pub enabled: bool,
}

/// Changes to a printer; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PrinterUpdate {
    pub name: Option<String>,
    pub uri: Option<String>,
    /// Set with `uri` (a new connection replaces the community too).
    pub snmp_community: Option<Option<String>>,
    pub media: Option<Option<String>>,
    pub half_cut: Option<bool>,
    pub auto_cut: Option<bool>,
    pub auto_resume: Option<bool>,
    pub queue_timeout_s: Option<i64>,
    pub max_length_mm: Option<i64>,
    pub enabled: Option<bool>,
}

fn conflict_on_unique(e: rusqlite::Error, slug: &str, name: &str) -> HubError {
    let text = e.to_string();
    if text.contains("UNIQUE") && text.contains("printers.slug") {
        HubError::Conflict {
            code: "duplicate_slug",
            message: format!("a printer with slug `{slug}` exists"),
        }
    } else if text.contains("UNIQUE") && text.contains("printers.name") {
        HubError::Conflict {
            code: "duplicate_name",
            message: format!("a printer named `{name}` exists"),
        }
    } else {
        e.into()
    }
}

fn audit(
    w: &mut Writer<'_, '_>,
    action: &str,
    before: Option<&Printer>,
    after: &Printer,
    by: &str,
) -> Result<(), HubError> {
    // auth: snapshots are redacted (a URI may carry credentials), and the
    // change also goes to the common audit log read by GET /api/admin/audit.
    let snapshot = |p: &Printer| {
        let mut v = p.audit_json();
        super::audit::redact(&mut v);
        v
    };
    let now = now_ms();
    w.tx.prepare_cached(
        "INSERT INTO printers_audit (printer_id, slug, action, before_json, after_json, updated_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        after.id,
        after.slug,
        action,
        before.map(|p| snapshot(p).to_string()),
        snapshot(after).to_string(),
        by,
        now
    ])?;
    let (actor, source_ip) = super::audit::split_actor(by);
    super::audit::record(
        w.tx,
        super::audit::Entry {
            actor,
            source_ip,
            action: &format!("printer.{action}"),
            target_type: "printer",
            target_id: Some(&after.id),
            before: before.map(snapshot),
            after: Some(snapshot(after)),
        },
        now,
    )?;
    w.event(
        events::PRINTER_CHANGED,
        Subject {
            printer_id: Some(&after.id),
            ..Subject::default()
        },
        &json!({"printer_id": after.id, "slug": after.slug, "action": action, "enabled": after.enabled}),
    )?;
    Ok(())
}

/// Inserts a printer.
pub fn create(w: &mut Writer<'_, '_>, new: &NewPrinter, by: &str) -> Result<Printer, HubError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    w.tx.prepare_cached(
        "INSERT INTO printers (id, slug, name, model, uri, media, half_cut, auto_cut, auto_resume,
             queue_timeout_s, enabled, created_at, updated_at, snmp_community, max_length_mm)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
    )?
    .execute(params![
        id,
        new.slug,
        new.name,
        new.model,
        new.uri,
        new.media,
        new.half_cut,
        new.auto_cut,
        new.auto_resume,
        new.queue_timeout_s,
        new.enabled,
        now,
        new.snmp_community,
        new.max_length_mm
    ])
    .map_err(|e| conflict_on_unique(e, &new.slug, &new.name))?;
    let printer = get(w.tx, &id)?;
    audit(w, "create", None, &printer, by)?;
    Ok(printer)
}

/// Deletes the printer row with an audit row. Its
/// jobs and batches must be gone already (foreign keys); `hub::remove`
/// does that in the same transaction.
pub fn delete(w: &mut Writer<'_, '_>, key: &str, by: &str) -> Result<Printer, HubError> {
    let before = get(w.tx, key)?;
    w.tx.prepare_cached("DELETE FROM printers WHERE id = ?1")?
        .execute(params![before.id])?;
    audit(w, "delete", Some(&before), &before, by)?;
    Ok(before)
}

/// Applies an update; returns the printer before and after.
pub fn update(
    w: &mut Writer<'_, '_>,
    key: &str,
    upd: &PrinterUpdate,
    by: &str,
) -> Result<(Printer, Printer), HubError> {
    let before = get(w.tx, key)?;
    let mut p = before.clone();
    if let Some(v) = &upd.name {
        p.name = v.clone();
    }
    if let Some(v) = &upd.uri {
        p.uri = v.clone();
    }
    if let Some(v) = &upd.snmp_community {
        p.snmp_community = v.clone();
    }
    if let Some(v) = &upd.media {
        p.media = v.clone();
    }
    if let Some(v) = upd.half_cut {
        p.half_cut = v;
    }
    if let Some(v) = upd.auto_cut {
        p.auto_cut = v;
    }
    if let Some(v) = upd.auto_resume {
        p.auto_resume = v;
    }
    if let Some(v) = upd.queue_timeout_s {
        p.queue_timeout_s = v;
    }
    if let Some(v) = upd.max_length_mm {
        p.max_length_mm = v;
    }
    if let Some(v) = upd.enabled {
        p.enabled = v;
    }
    let uri_changed = p.uri != before.uri || p.snmp_community != before.snmp_community;
    w.tx.prepare_cached(
        "UPDATE printers SET name = ?2, uri = ?3, media = ?4, half_cut = ?5, auto_cut = ?6,
             auto_resume = ?7, queue_timeout_s = ?8, enabled = ?9, updated_at = ?10,
             seen_media = CASE WHEN ?11 THEN NULL ELSE seen_media END,
             snmp_community = ?12, max_length_mm = ?13
         WHERE id = ?1",
    )?
    .execute(params![
        p.id,
        p.name,
        p.uri,
        p.media,
        p.half_cut,
        p.auto_cut,
        p.auto_resume,
        p.queue_timeout_s,
        p.enabled,
        now_ms(),
        uri_changed,
        p.snmp_community,
        p.max_length_mm
    ])
    .map_err(|e| conflict_on_unique(e, &p.slug, &p.name))?;
    let after = get(w.tx, &p.id)?;
    let action = match (before.enabled, after.enabled) {
        (true, false) => "disable",
        (false, true) => "enable",
        _ => "update",
    };
    audit(w, action, Some(&before), &after, by)?;
    Ok((before, after))
}

/// Sets or clears the printer's pause. Returns `false` when nothing changed.
pub fn set_paused(
    w: &mut Writer<'_, '_>,
    id: &str,
    paused: bool,
    reason: Option<&str>,
    detail: Option<&str>,
) -> Result<bool, HubError> {
    let before = get(w.tx, id)?;
    if before.paused == paused && before.paused_reason.as_deref() == reason {
        return Ok(false);
    }
    w.tx.prepare_cached(
        "UPDATE printers SET paused = ?2, paused_reason = ?3, paused_detail = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, paused, reason, detail, now_ms()])?;
    w.event(
        events::PRINTER_STATUS,
        Subject {
            printer_id: Some(id),
            ..Subject::default()
        },
        &json!({"printer_id": id, "paused": paused, "reason": reason, "detail": detail}),
    )?;
    Ok(true)
}

/// Records a status poll. Writes a `printer.status` event when the problem
/// or reachability changed and `printer.media_changed` when the reported
/// medium changed.
pub fn record_status(
    w: &mut Writer<'_, '_>,
    id: &str,
    online: bool,
    problem: Option<&str>,
    media: Option<&str>,
    details: &Value,
) -> Result<(), HubError> {
    let before = get(w.tx, id)?;
    let status = json!({"online": online, "problem": problem, "media": media, "details": details});
    let old_online = before.status.as_ref().and_then(|s| s["online"].as_bool());
    let old_problem = before
        .status
        .as_ref()
        .and_then(|s| s["problem"].as_str().map(str::to_string));
    let media_changed = online && media.is_some() && before.seen_media.as_deref() != media;
    w.tx.prepare_cached(
        "UPDATE printers SET status = ?2, status_at = ?3,
             seen_media = CASE WHEN ?4 THEN ?5 ELSE seen_media END WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.to_string(),
        now_ms(),
        media_changed,
        media
    ])?;
    if old_online != Some(online) || old_problem.as_deref() != problem {
        w.event(
            events::PRINTER_STATUS,
            Subject {
                printer_id: Some(id),
                ..Subject::default()
            },
            &json!({"printer_id": id, "online": online, "problem": problem, "paused": before.paused}),
        )?;
    }
    if media_changed {
        w.event(
            events::PRINTER_MEDIA_CHANGED,
            Subject {
                printer_id: Some(id),
                ..Subject::default()
            },
            &json!({"printer_id": id, "from": before.seen_media, "to": media}),
        )?;
    }
    Ok(())
}

/// Counts printers (any state).
pub fn count(conn: &Connection) -> Result<i64, HubError> {
    Ok(conn.query_row("SELECT count(*) FROM printers", [], |r| r.get(0))?)
}
