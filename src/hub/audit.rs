//! The audit log (`audit_log`): who changed which key, printer or webhook
//! subscription, when, from where, and what it looked like before and
//! after. The hub writes a printer change and its row in one transaction;
//! `auth` (keys, the `/api/admin/audit` reads) and `integrations`
//! (subscriptions) use it too.
//!
//! **Invariants:**
//! - Snapshots pass through [`redact`] before they are written, so no API key,
//!   digest, token, password or SNMP community is ever stored here.
//! - Rows are only appended, and only deleted by [`prune`] (retention).
//! - `id` only grows (AUTOINCREMENT), so it is the paging cursor.

use rusqlite::{params, Connection, Row};
use serde_json::{Map, Value};

/// The fixed start of every API key (`auth::key`); [`redact`] finds keys
/// by it.
pub const KEY_MARKER: &str = "lh_pat_";

/// What replaces a secret in a snapshot.
pub const REDACTED: &str = "***REDACTED***";

/// One change to record.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// `api-key:<uuid>`, `sso:<user>` or `system`.
    pub actor: &'a str,
    pub source_ip: Option<&'a str>,
    /// `api_key.create`, `api_key.update`, `api_key.revoke`, `printer.create`, ...
    pub action: &'a str,
    /// `api_key` or `printer`.
    pub target_type: &'a str,
    pub target_id: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A stored row.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub source_ip: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Which rows to read, newest first.
#[derive(Clone, Debug)]
pub struct Query {
    /// Only rows with `id < before_id` (the paging cursor).
    pub before_id: Option<i64>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// 1..=500.
    pub limit: u32,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            before_id: None,
            target_type: None,
            target_id: None,
            limit: 100,
        }
    }
}

/// Appends a row (after redacting both snapshots). Returns its id. The
/// error is SQLite's, so any layer can `?` it inside its own transaction.
pub fn record(conn: &Connection, entry: Entry<'_>, now_ms: i64) -> rusqlite::Result<i64> {
    let snapshot = |v: Option<Value>| {
        v.map(|mut v| {
            redact(&mut v);
            v.to_string()
        })
    };
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, source_ip, action, target_type, target_id,
                                before_json, after_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        now_ms,
        entry.actor,
        entry.source_ip,
        entry.action,
        entry.target_type,
        entry.target_id,
        snapshot(entry.before),
        snapshot(entry.after),
    ])?;
    Ok(conn.last_insert_rowid())
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(AuditRow {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        source_ip: row.get(3)?,
        action: row.get(4)?,
        target_type: row.get(5)?,
        target_id: row.get(6)?,
        before: json(row.get(7)?),
        after: json(row.get(8)?),
    })
}

/// Reads rows, newest first.
pub fn list(conn: &Connection, q: &Query) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, source_ip, action, target_type, target_id, before_json, after_json
         FROM audit_log
         WHERE (?1 IS NULL OR id < ?1)
           AND (?2 IS NULL OR target_type = ?2)
           AND (?3 IS NULL OR target_id = ?3)
         ORDER BY id DESC
         LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            q.before_id,
            q.target_type,
            q.target_id,
            q.limit.clamp(1, 500)
        ],
        read_row,
    )?;
    rows.collect()
}

/// Deletes at most `limit` rows older than `cutoff_ms`, oldest first;
/// returns how many (the retention thread calls it until it returns less
/// than `limit`, releasing the lock in between).
pub fn prune(conn: &Connection, cutoff_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM audit_log WHERE id IN (
             SELECT id FROM audit_log WHERE at < ?1 ORDER BY id LIMIT ?2)",
    )?
    .execute(params![cutoff_ms, limit as i64])
}

/// Splits the hub's `<actor>:<ip>` change author (printer admin routes)
/// into the actor and the address; the address is recognised by parsing, so
/// IPv6 addresses and actors containing `:` both work.
pub fn split_actor(by: &str) -> (&str, Option<&str>) {
    for (i, _) in by.match_indices(':') {
        let (actor, ip) = (&by[..i], &by[i + 1..]);
        if !actor.is_empty() && ip.parse::<std::net::IpAddr>().is_ok() {
            return (actor, Some(ip));
        }
    }
    (by.strip_suffix(':').unwrap_or(by), None)
}

/// Field names whose values are secrets, wherever they appear.
const SECRET_NAMES: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "community",
    "plaintext",
    "digest",
    "hash",
    "credential",
    "authorization",
    "private",
];

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| lower.contains(s))
}

/// Replaces secrets in a JSON snapshot, in place: values of secret-named
/// fields, API keys (`lh_pat_…`) inside any string, user:password in URIs and
/// `community=` / `token=` / `password=` query parameters.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => redact_map(map),
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            let clean = scrub(s);
            if clean != *s {
                *s = clean;
            }
        }
        _ => {}
    }
}

fn redact_map(map: &mut Map<String, Value>) {
    for (name, v) in map.iter_mut() {
        if is_secret_name(name) && !v.is_null() {
            *v = Value::String(REDACTED.into());
        } else {
            redact(v);
        }
    }
}

/// Scrubs secrets out of one string.
fn scrub(s: &str) -> String {
    let mut out = scrub_keys(s);
    // scheme://user:password@host → scheme://***REDACTED***@host
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out = format!("{}{REDACTED}{}", &out[..scheme_end + 3], &rest[at..]);
        }
    }
    // ?community=...&token=... → values redacted
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => format!("{name}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", parts.join("&"));
    }
    out
}

/// Replaces every `lh_pat_` followed by key characters with the redaction.
fn scrub_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(KEY_MARKER) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + KEY_MARKER.len()..];
        let n = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        if n > 9 {
            out.push_str(REDACTED);
        } else {
            // A bare prefix (marker + ≤ 9 chars) is public: keep it.
            out.push_str(&rest[pos..pos + KEY_MARKER.len() + n]);
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_actor_finds_the_address() {
        let id = "api-key:6f1b3c7e-9d6a-4f48-9a8c-d4e0e1c5a3b2";
        assert_eq!(
            split_actor(&format!("{id}:127.0.0.1")),
            (id, Some("127.0.0.1"))
        );
        assert_eq!(split_actor(&format!("{id}:::1")), (id, Some("::1")));
        assert_eq!(
            split_actor("sso:a:b:10.0.0.1"),
            ("sso:a:b", Some("10.0.0.1"))
        );
        assert_eq!(split_actor("anonymous:"), ("anonymous", None));
        assert_eq!(split_actor("system"), ("system", None));
    }

    #[test]
    fn record_list_and_prune() {
        let db = crate::hub::Db::open_in_memory().unwrap();
        let conn = db.writer();
        for i in 0..5 {
            record(
                &conn,
                Entry {
                    actor: "system",
                    source_ip: Some("127.0.0.1"),
                    action: "api_key.create",
                    target_type: "api_key",
                    target_id: Some(if i % 2 == 0 { "a" } else { "b" }),
                    before: None,
                    after: Some(json!({"i": i, "token": "zzz"})),
                },
                i * 10,
            )
            .unwrap();
        }
        let all = list(&conn, &Query::default()).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].at, 40, "newest first");
        assert_eq!(all[0].after.as_ref().unwrap()["token"], REDACTED);
        let page = list(
            &conn,
            &Query {
                before_id: Some(all[1].id),
                limit: 2,
                ..Query::default()
            },
        )
        .unwrap();
        assert_eq!(page.iter().map(|r| r.at).collect::<Vec<_>>(), [20, 10]);
        let only_b = list(
            &conn,
            &Query {
                target_id: Some("b".into()),
                ..Query::default()
            },
        )
        .unwrap();
        assert_eq!(only_b.len(), 2);
        assert_eq!(prune(&conn, 25, 2).unwrap(), 2);
        assert_eq!(prune(&conn, 25, 2).unwrap(), 1);
        assert_eq!(list(&conn, &Query::default()).unwrap().len(), 2);
    }
}

#[cfg(test)]
mod printer_audit_tests {
    use super::*;
    use crate::hub::events::{Changes, Writer};
    use crate::hub::printers::{self, NewPrinter, PrinterUpdate};
    use crate::hub::Db;

    #[test]
    fn printer_changes_land_in_the_audit_log_redacted() {
        let db = Db::open_in_memory().unwrap();
        let mut changes = Changes::default();
        let new = NewPrinter {
            snmp_community: None,
            slug: "office".into(),
            name: "Office".into(),
            model: "PT-P750W".into(),
            uri: "tcp://user:hunter2@192.0.2.9:9100?community=sekrit".into(),
            media: Some("12".into()),
            half_cut: false,
            auto_cut: true,
            auto_resume: true,
            queue_timeout_s: 30,
            max_length_mm: crate::hub::printers::DEFAULT_MAX_LENGTH_MM,
            enabled: true,
        };
        let printer = db
            .write(|tx| {
                let mut w = Writer::new(tx, &mut changes);
                let p = printers::create(&mut w, &new, "api-key:k")?;
                printers::update(
                    &mut w,
                    &p.id,
                    &PrinterUpdate {
                        name: Some("Front office".into()),
                        ..PrinterUpdate::default()
                    },
                    "sso:ann",
                )?;
                Ok(p)
            })
            .unwrap();
        let rows = list(&db.writer(), &Query::default()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].action, "printer.create");
        assert_eq!(rows[1].actor, "api-key:k");
        assert_eq!(rows[0].actor, "sso:ann");
        assert_eq!(rows[0].target_id.as_deref(), Some(printer.id.as_str()));
        assert_eq!(rows[0].before.as_ref().unwrap()["name"], "Office");
        assert_eq!(rows[0].after.as_ref().unwrap()["name"], "Front office");
        let text = format!("{rows:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("sekrit"),
            "{text}"
        );
        let legacy: String = db
            .writer()
            .query_row(
                "SELECT group_concat(after_json) FROM printers_audit",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            !legacy.contains("hunter2") && !legacy.contains("sekrit"),
            "{legacy}"
        );
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;
    use crate::hub::device::BrotherDevices;
    use crate::hub::labels::RenderLabels;
    use crate::hub::{now_ms, retention, Config, Hub, NoListener};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_retention_thread_prunes_the_audit_log_on_its_own_window() {
        let dir = std::env::temp_dir().join(format!("labelhub-audit-{}", uuid::Uuid::new_v4()));
        let config = Config {
            data_dir: dir.clone(),
            retention: Some(Duration::from_secs(86_400)),
            audit_retention: Some(Duration::from_secs(10 * 86_400)),
            ..Config::default()
        };
        let hub = Hub::open(
            config,
            Arc::new(RenderLabels),
            Arc::new(BrotherDevices),
            Arc::new(NoListener),
        )
        .unwrap();
        let day = 86_400_000;
        let now = now_ms();
        for (i, age_days) in [20, 11, 5, 2, 0].iter().enumerate() {
            record(
                &hub.db.writer(),
                Entry {
                    actor: "system",
                    source_ip: None,
                    action: "api_key.create",
                    target_type: "api_key",
                    target_id: Some(&i.to_string()),
                    before: None,
                    after: None,
                },
                now - age_days * day,
            )
            .unwrap();
        }
        retention::run_once(&hub).unwrap();
        let left: Vec<String> = list(&hub.db.writer(), &Query::default())
            .unwrap()
            .into_iter()
            .filter_map(|r| r.target_id)
            .collect();
        // Older than 10 days gone; 5 and 2 days old kept although jobs
        // expire after one day.
        assert_eq!(left, ["4", "3", "2"]);
        drop(hub);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
