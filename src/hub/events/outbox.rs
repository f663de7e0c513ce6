//! The webhook outbox's storage side: an event the hub writes
//! ([`super::Writer::event`]) calls [`enqueue`] inside the same
//! transaction, which adds one `webhook_outbox` row per enabled
//! subscription that wants the event's outbound type, with the exact JSON
//! body and a stable id (`msg_<uuid>`, the `webhook-id`). The event and its
//! deliveries commit or roll back together, so a kill -9 loses neither.
//! Subscriptions and the sender are `integrations::outbox`.

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::{self as events, Subject};
use crate::hub::{now_ms, rfc3339, HubError};

/// Every outbound event type.
pub const EVENT_TYPES: &[&str] = &[
    "job.done",
    "job.failed",
    "batch.finished",
    "printer.paused",
    "printer.needs_attention",
    "printer.media_changed",
];

/// The outbound types an event stands for (empty for most events).
fn outbound_types(
    conn: &Connection,
    kind: &str,
    subject: &Subject<'_>,
    data: &Value,
) -> Result<Vec<&'static str>, HubError> {
    let mut out = Vec::new();
    match kind {
        events::JOB_STATE_CHANGED => {
            let to = data["to_state"].as_str().unwrap_or("");
            match to {
                "done" => out.push("job.done"),
                "failed" | "failed_restart" => out.push("job.failed"),
                _ => {}
            }
            let terminal = matches!(to, "done" | "failed" | "cancelled" | "failed_restart");
            if let (true, Some(batch), Some(job)) = (terminal, subject.batch_id, subject.job_id) {
                // The event is written before the job's UPDATE: count the
                // batch's other unfinished jobs.
                let open: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM jobs WHERE batch_id = ?1 AND id != ?2
                           AND state NOT IN ('done', 'failed', 'cancelled', 'failed_restart')",
                    )?
                    .query_row(params![batch, job], |r| r.get(0))?;
                if open == 0 {
                    out.push("batch.finished");
                }
            }
        }
        events::PRINTER_STATUS => {
            if data.get("reason").is_some() {
                if data["paused"].as_bool() == Some(true) {
                    out.push("printer.paused");
                }
            } else if !data["problem"].is_null() {
                out.push("printer.needs_attention");
            }
        }
        events::PRINTER_MEDIA_CHANGED => out.push("printer.media_changed"),
        _ => {}
    }
    Ok(out)
}

/// Writes the outbox rows of one event, in the event's transaction;
/// returns how many.
pub fn enqueue(
    conn: &Connection,
    event_id: i64,
    kind: &str,
    subject: &Subject<'_>,
    data: &Value,
) -> Result<usize, HubError> {
    // Most events (created, queued, printing) never map: skip them before
    // touching the subscriptions table.
    let relevant = match kind {
        events::JOB_STATE_CHANGED => matches!(
            data["to_state"].as_str(),
            Some("done" | "failed" | "cancelled" | "failed_restart")
        ),
        events::PRINTER_STATUS | events::PRINTER_MEDIA_CHANGED => true,
        _ => false,
    };
    if !relevant {
        return Ok(0);
    }
    let subs: Vec<(String, String)> = {
        let mut stmt =
            conn.prepare_cached("SELECT id, events FROM webhook_subscriptions WHERE enabled = 1")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    if subs.is_empty() {
        return Ok(0);
    }
    let types = outbound_types(conn, kind, subject, data)?;
    let now = now_ms();
    let mut written = 0;
    for t in types {
        let mut body_data = data.clone();
        if t == "batch.finished" {
            body_data = json!({"batch_id": subject.batch_id, "printer_id": subject.printer_id});
        }
        if let Value::Object(m) = &mut body_data {
            m.insert("event_id".into(), json!(event_id));
        }
        let payload = json!({"type": t, "timestamp": rfc3339(now), "data": body_data}).to_string();
        for (sub, wanted) in &subs {
            let wanted: Vec<String> = serde_json::from_str(wanted).unwrap_or_default();
            if !wanted.iter().any(|w| w == t) {
                continue;
            }
            let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            conn.prepare_cached(
                "INSERT INTO webhook_outbox (id, subscription_id, event_id, kind, payload,
                     created_at, window_start, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)",
            )?
            .execute(params![id, sub, event_id, t, payload, now])?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_counts_the_webhook_rows_it_queued() {
        let db = crate::hub::Db::open_in_memory().unwrap();
        let done = |db: &crate::hub::Db| {
            db.write(|tx| {
                let mut changes = events::Changes::default();
                let subject = Subject {
                    printer_id: None,
                    job_id: Some("j"),
                    batch_id: Some("b"),
                };
                events::Writer::new(tx, &mut changes).event(
                    events::JOB_STATE_CHANGED,
                    subject,
                    &json!({"to_state": "done"}),
                )?;
                Ok(changes.webhooks)
            })
            .unwrap()
        };
        // No subscription: nothing for the webhook sender to wake for.
        assert_eq!(done(&db), 0);
        db.writer()
            .execute(
                "INSERT INTO webhook_subscriptions (id, url, events, secret, created_at, updated_at)
                 VALUES ('s', 'http://x', '[\"job.done\"]', 'k', 0, 0)",
                [],
            )
            .unwrap();
        assert_eq!(done(&db), 1);
    }

    #[test]
    fn events_map_to_outbound_types() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE jobs (id TEXT, batch_id TEXT, state TEXT);
             INSERT INTO jobs VALUES ('a', 'b1', 'printing'), ('b', 'b1', 'done'), ('c', 'b2', 'queued');",
        )
        .unwrap();
        let job = |id, batch| Subject {
            printer_id: Some("p"),
            job_id: Some(id),
            batch_id: Some(batch),
        };
        let changed = |to: &str| json!({"to_state": to});
        let types = |kind, s: &Subject<'_>, d: &Value| outbound_types(&conn, kind, s, d).unwrap();
        // The last open job of b1 finishing finishes the batch.
        assert_eq!(
            types(events::JOB_STATE_CHANGED, &job("a", "b1"), &changed("done")),
            ["job.done", "batch.finished"]
        );
        assert_eq!(
            types(
                events::JOB_STATE_CHANGED,
                &job("a", "b1"),
                &changed("failed_restart")
            ),
            ["job.failed", "batch.finished"]
        );
        assert_eq!(
            types(
                events::JOB_STATE_CHANGED,
                &job("a", "b1"),
                &changed("cancelled")
            ),
            ["batch.finished"]
        );
        // b2 still has `c` queued: the batch is not finished.
        assert_eq!(
            types(
                events::JOB_STATE_CHANGED,
                &job("x", "b2"),
                &changed("failed")
            ),
            ["job.failed"]
        );
        assert!(types(
            events::JOB_STATE_CHANGED,
            &job("a", "b1"),
            &changed("printing")
        )
        .is_empty());
        let printer = Subject {
            printer_id: Some("p"),
            ..Subject::default()
        };
        assert_eq!(
            types(
                events::PRINTER_STATUS,
                &printer,
                &json!({"paused": true, "reason": "cover_open"})
            ),
            ["printer.paused"]
        );
        assert!(types(
            events::PRINTER_STATUS,
            &printer,
            &json!({"paused": false, "reason": null})
        )
        .is_empty());
        assert_eq!(
            types(
                events::PRINTER_STATUS,
                &printer,
                &json!({"online": true, "problem": "no_media"})
            ),
            ["printer.needs_attention"]
        );
        assert!(types(
            events::PRINTER_STATUS,
            &printer,
            &json!({"online": true, "problem": null})
        )
        .is_empty());
        assert_eq!(
            types(
                events::PRINTER_MEDIA_CHANGED,
                &printer,
                &json!({"from": null, "to": "12"})
            ),
            ["printer.media_changed"]
        );
        assert!(types(events::JOB_CREATED, &job("a", "b1"), &json!({})).is_empty());
    }
}
