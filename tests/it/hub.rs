//! The hub end to end: the real binary over loopback (a few API checks in
//! this process), the built-in emulator as the printer.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::inproc::InHub;
use crate::support::{label, temp_dir, Client, Hub};

const T: Duration = Duration::from_secs(30);

/// Creates an emulator printer through the admin API.
pub fn add_printer(hub: &Hub, slug: &str, uri: &str) -> Value {
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": slug, "slug": slug, "model": "PT-P750W", "connection": {"uri": uri}}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let img = image::open(path).unwrap();
    (img.width(), img.height())
}

#[test]
fn submit_prints_and_the_png_appears() {
    let hub = Hub::start();
    assert!(hub.log_text().contains("created the demo printer"));
    let r = hub.post("/print", &label("Hello"));
    assert_eq!(r.status, 202);
    let body = r.json();
    assert_eq!(body["status"], "queued");
    let job_id = body["job_id"].as_str().unwrap();
    let job = hub.wait_job(job_id, T, |j| j["state"] == "done");
    assert_eq!(job["result"], json!({}));
    assert_eq!(job["payload"]["media"], "12");
    let pngs = hub.pngs("demo");
    assert_eq!(pngs.len(), 1);
    // 12 mm tape on a PT-P750W: 70 printable dots across.
    assert_eq!(png_size(&pngs[0]).1, 70);
    // The legacy shape speaks upstream's vocabulary on that route: done =
    // completed.
    let legacy = hub.get(&format!("/jobs/{job_id}")).json();
    assert_eq!(legacy["status"], "completed");
    assert_eq!(legacy["job_id"], job_id);
}

#[test]
fn batch_of_fifty_with_copies_lists_every_label_in_order() {
    let hub = Hub::start();
    let items: Vec<Value> = (0..50)
        .map(|i| {
            json!({"content_type": "text_one_line", "data": {"primary_id": format!("L{i:02}")},
                   "options": {"copies": 1 + i % 3}})
        })
        .collect();
    let expected: usize = (0..50).map(|i| 1 + i % 3).sum();
    let r = hub.post("/api/print/demo/batch", &json!({"items": items}));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let accepted = r.json();
    let ids: Vec<&str> = accepted["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), expected);
    let snap = hub.wait_batch(accepted["batch_id"].as_str().unwrap(), T);
    let s = &snap["summary"];
    assert_eq!(s["total"], expected);
    assert_eq!(s["done"], expected);
    assert_eq!(s["queued"], 0);
    assert_eq!(s["failed"], 0);
    assert_eq!(s["all_terminal"], true);
    let jobs = snap["jobs"].as_array().unwrap();
    let order: Vec<(i64, i64)> = jobs
        .iter()
        .map(|j| {
            (
                j["position"].as_i64().unwrap(),
                j["copy_index"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(i64, i64)> = (0..50i64)
        .flat_map(|i| (0..1 + i % 3).map(move |c| (i, c)))
        .collect();
    assert_eq!(order, want);
    let snap_ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(
        snap_ids, ids,
        "the response lists every label in print order"
    );
    assert_eq!(hub.pngs("demo").len(), expected);
}

#[test]
fn long_poll_answers_within_100_ms_of_a_change_and_after_the_wait_without_one() {
    let hub = Hub::start();
    let printer = hub.get("/api/printers/demo").json();
    let pid = printer["id"].as_str().unwrap().to_string();
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/pause")).status,
        204
    );
    let accepted = hub.post("/print", &label("wait")).json();
    let job_id = accepted["job_id"].as_str().unwrap().to_string();
    let batch_id = accepted["batch_id"].as_str().unwrap().to_string();
    let version = hub.get(&format!("/api/batches/{batch_id}")).json()["version"]
        .as_i64()
        .unwrap();

    // Without a change: answers after the wait with the same version.
    let t = Instant::now();
    let snap = hub
        .get(&format!("/api/batches/{batch_id}?wait=1&since={version}"))
        .json();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(990) && took < Duration::from_millis(3000),
        "{took:?}"
    );
    assert_eq!(snap["version"], version);

    // With a change: a waiting request answers right after it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let hub = &hub;
        let (b, j) = (batch_id.clone(), job_id.clone());
        s.spawn(move || {
            let snap = hub
                .get(&format!("/api/batches/{b}?wait=30&since={version}"))
                .json();
            tx.send((Instant::now(), snap)).unwrap();
            let _ = j;
        });
        // The request is parked once the server counts it as waiting.
        let deadline = Instant::now() + T;
        while hub.get("/healthz").json()["waiting_requests"] == 0 {
            assert!(Instant::now() < deadline, "never parked");
        }
        let sent = Instant::now();
        assert_eq!(
            hub.post_empty(&format!("/api/jobs/{job_id}/cancel")).status,
            200
        );
        // The change is committed before the cancel is answered; measure
        // from that acknowledgement (the commit's fsync is not the
        // long-poll's latency).
        let committed = Instant::now();
        let (answered, snap) = rx.recv_timeout(T).unwrap();
        let latency = answered.saturating_duration_since(committed);
        eprintln!(
            "long-poll answered {:?} after the cancel was sent, {latency:?} after it was acknowledged",
            answered.saturating_duration_since(sent)
        );
        assert!(
            latency < Duration::from_millis(100),
            "answered {latency:?} after the change"
        );
        assert!(snap["version"].as_i64().unwrap() > version);
        assert_eq!(snap["jobs"][0]["state"], "cancelled");
    });

    // The job long-poll and the event feed see the same change.
    let job = hub
        .get(&format!("/api/jobs/{job_id}?wait=5&since=0"))
        .json();
    assert_eq!(job["state"], "cancelled");
    let feed = hub
        .get(&format!("/api/events?since=0&batch_id={batch_id}"))
        .json();
    let types: Vec<String> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["type"].as_str().unwrap(),
                e["data"]["to_state"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        types,
        vec!["job.created:queued", "job.state_changed:cancelled"]
    );
    // An event long-poll from the newest cursor waits for the next event.
    let next = feed["last_id"].as_i64().unwrap();
    let t = Instant::now();
    let empty = hub.get(&format!("/api/events?since={next}&wait=1")).json();
    assert!(t.elapsed() >= Duration::from_millis(990));
    assert_eq!(empty["events"], json!([]));
}

#[test]
fn cancel_of_a_queued_job_prevents_its_printing_and_pause_resume_holds_the_queue() {
    let hub = Hub::start();
    let pid = printer_id(&hub, "demo");
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/pause")).status,
        204
    );
    let status = hub.get(&format!("/api/printers/{pid}/status")).json();
    assert_eq!(status["paused"], true);
    assert_eq!(status["paused_reason"], "operator");
    let a = hub.post("/print", &label("cancel me")).json();
    let b = hub.post("/print", &label("print me")).json();
    let a_id = a["job_id"].as_str().unwrap();
    let b_id = b["job_id"].as_str().unwrap();
    let queue = hub.get(&format!("/api/printers/{pid}/queue")).json();
    assert_eq!(queue.as_array().unwrap().len(), 2);
    let r = hub.post_empty(&format!("/api/jobs/{a_id}/cancel"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "cancelled");
    let again = hub.post_empty(&format!("/api/jobs/{a_id}/cancel"));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["error_code"], "invalid_job_state");
    assert_eq!(
        again.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(hub.pngs("demo").len(), 0, "nothing printed while paused");
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/resume"))
            .status,
        204
    );
    hub.wait_job(b_id, T, |j| j["state"] == "done");
    assert_eq!(
        hub.get(&format!("/api/jobs/{a_id}")).json()["state"],
        "cancelled"
    );
    assert_eq!(
        hub.pngs("demo").len(),
        1,
        "only the job that was not cancelled printed"
    );
    // Retry makes a new job from the cancelled one.
    let retry = hub.post_empty(&format!("/api/jobs/{a_id}/retry"));
    assert_eq!(retry.status, 201);
    let new_id = retry.json()["id"].as_str().unwrap().to_string();
    hub.wait_job(&new_id, T, |j| j["state"] == "done");
    assert_eq!(hub.pngs("demo").len(), 2);
}

#[test]
fn idempotent_retry_returns_the_first_response_and_creates_nothing() {
    let hub = InHub::start();
    let key = [("Idempotency-Key", "order-42")];
    let body = label("once").to_string();
    let first = hub.request("POST", "/print", Some(body.as_bytes()), &key);
    assert_eq!(first.status, 202);
    let second = hub.request("POST", "/print", Some(body.as_bytes()), &key);
    assert_eq!(second.status, 202);
    assert_eq!(second.bytes, first.bytes);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    let other = label("twice").to_string();
    let conflict = hub.request("POST", "/print", Some(other.as_bytes()), &key);
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["error_code"], "idempotency_key_reused");
    let jobs = hub.get("/api/jobs").json();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    // The batch route has its own keys.
    let batch = json!({"items": [label("b")]}).to_string();
    let b1 = hub.request(
        "POST",
        "/api/print/demo/batch",
        Some(batch.as_bytes()),
        &key,
    );
    let b2 = hub.request(
        "POST",
        "/api/print/demo/batch",
        Some(batch.as_bytes()),
        &key,
    );
    assert_eq!(b1.status, 202);
    assert_eq!(b1.bytes, b2.bytes);
}

#[test]
fn a_printer_added_through_the_admin_api_prints_without_a_restart() {
    let hub = Hub::start();
    let created = add_printer(&hub, "second", "emulator:?media=12&speed=instant");
    assert_eq!(created["backend"], "ptouch");
    assert_eq!(created["media"], "12");
    let dup = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "other", "slug": "second", "model": "PT-P750W", "connection": {"uri": "emulator:"}}),
    );
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["error_code"], "duplicate_slug");
    let bad = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "x", "slug": "xyz", "model": "PT-NOPE", "connection": {"uri": "emulator:"}}),
    );
    assert_eq!(bad.status, 422);
    let r = hub.post("/print", &json!({"content_type": "text_one_line", "data": {"primary_id": "2nd"}, "printer": "second"}));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert_eq!(hub.pngs("second").len(), 1);
    assert_eq!(hub.pngs("demo").len(), 0);
    // Disabled: its thread stops and new jobs are refused.
    let d = hub.post_empty("/api/v1/admin/printers/second/disable");
    assert_eq!(d.status, 200);
    assert_eq!(
        hub.post_empty("/api/v1/admin/printers/second/disable")
            .json()["error_code"],
        "already_disabled"
    );
    let refused = hub.post(
        "/print",
        &json!({"content_type": "text_one_line", "data": {"primary_id": "x"}, "printer": "second"}),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["error_code"], "printer_disabled");
    // Enabled again and moved to another medium: it prints on the new one.
    assert_eq!(
        hub.post_empty("/api/v1/admin/printers/second/enable")
            .status,
        200
    );
    let upd = hub.put(
        "/api/v1/admin/printers/second",
        &json!({"connection": {"uri": "emulator:?media=24&speed=instant"}}),
    );
    assert_eq!(upd.status, 200, "{}", String::from_utf8_lossy(&upd.bytes));
    assert_eq!(upd.json()["media"], "24", "the new URI's medium is taken");
    let deadline = Instant::now() + T;
    loop {
        let st = hub.get("/api/printers/second/status").json();
        if st["media"] == "24" {
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        hub.get("/api/events?wait=1");
    }
    let r = hub.post("/print", &json!({"content_type": "text_one_line", "data": {"primary_id": "24"}, "printer": "second"}));
    let job = hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert_eq!(job["payload"]["media"], "24");
    assert_eq!(png_size(&hub.pngs("second")[1]).1, 128);
}

#[test]
fn a_medium_that_does_not_match_pauses_the_job_with_expected_and_loaded() {
    let hub = Hub::start();
    add_printer(&hub, "swap", "emulator:?media=12&speed=instant");
    let pid = printer_id(&hub, "swap");
    // Hold the printer, swap the tape behind the hub's back, submit a job
    // rendered for the 12 mm the hub last saw.
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/pause")).status,
        204
    );
    let fault = hub.emulator_fault("swap", "media=24");
    let r = hub.post("/print", &json!({"content_type": "text_one_line", "data": {"primary_id": "12mm"}, "printer": "swap"}));
    let job_id = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/resume"))
            .status,
        204
    );
    let job = hub.wait_job(&job_id, T, |j| j["state"] == "paused");
    assert_eq!(job["error_code"], "media_mismatch");
    assert_eq!(
        job["error_detail"],
        json!({"expected": "12", "loaded": "24"})
    );
    // The printer goes on with jobs that match (rendered for 24 mm now).
    let r = hub.post("/print", &json!({"content_type": "text_one_line", "data": {"primary_id": "24mm"}, "printer": "swap"}));
    let other = hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert_eq!(other["payload"]["media"], "24");
    // Tape back, job resumed: it prints.
    std::fs::write(&fault, "").unwrap();
    let deadline = Instant::now() + T;
    while hub.get("/api/printers/swap/status").json()["media"] != "12" {
        assert!(Instant::now() < deadline);
        hub.get("/api/events?wait=1");
    }
    assert_eq!(
        hub.post_empty(&format!("/api/jobs/{job_id}/resume")).status,
        200
    );
    hub.wait_job(&job_id, T, |j| j["state"] == "done");
}

#[test]
fn a_printer_problem_pauses_the_printer_until_it_is_gone() {
    let hub = Hub::start_env(&[("PRINTER_HUB_STATUS_POLL_S", "1")]);
    add_printer(&hub, "cover", "emulator:?media=12&speed=instant");
    let fault = hub.emulator_fault("cover", "cover_open");
    let r = hub.post(
        "/print",
        &json!({"content_type": "text_one_line", "data": {"primary_id": "c"}, "printer": "cover"}),
    );
    let job_id = r.json()["job_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + T;
    loop {
        let st = hub.get("/api/printers/cover/status").json();
        if st["paused"] == true {
            assert_eq!(st["paused_reason"], "cover_open");
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        hub.get("/api/events?wait=1");
    }
    assert_eq!(
        hub.get(&format!("/api/jobs/{job_id}")).json()["state"],
        "queued"
    );
    std::fs::write(&fault, "").unwrap();
    hub.wait_job(&job_id, T, |j| j["state"] == "done");
    assert_eq!(
        hub.get("/api/printers/cover/status").json()["paused"],
        false
    );
}

#[test]
fn errors_are_problem_json_with_an_error_code() {
    let hub = Hub::start_env(&[("PRINTER_HUB_MAX_BODY_BYTES", "2048")]);
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("GET", "/api/jobs/nope", None, 404, "job_not_found"),
        ("GET", "/api/batches/nope", None, 404, "batch_not_found"),
        ("GET", "/no/such/route", None, 404, "route_not_found"),
        ("DELETE", "/print", None, 405, "method_not_allowed"),
        (
            "POST",
            "/print",
            Some(json!({"content_type": "text_one_line"})),
            422,
            "validation_error",
        ),
        (
            "POST",
            "/print",
            Some(json!({"content_type": "text_one_line", "data": {}, "bogus": 1})),
            422,
            "validation_error",
        ),
        (
            "POST",
            "/print",
            Some(json!({"content_type": "qr_two_lines", "data": {"title": "t"}})),
            422,
            "content_type_data_mismatch",
        ),
        (
            "POST",
            "/print",
            Some(
                json!({"content_type": "text_one_line", "data": {"primary_id": "x"}, "printer": "nope"}),
            ),
            404,
            "printer_not_found",
        ),
        (
            "POST",
            "/api/print/demo/batch",
            Some(json!({"items": []})),
            422,
            "validation_error",
        ),
        (
            "POST",
            "/api/print/demo/batch",
            Some(json!({"items": [label("x")], "printer_slug": "other"})),
            422,
            "printer_slug_mismatch",
        ),
        ("GET", "/api/jobs?limit=0", None, 422, "validation_error"),
        ("GET", "/api/jobs/x?wait=abc", None, 422, "validation_error"),
    ];
    for (method, path, body, status, code) in cases {
        let b = body.map(|b| b.to_string());
        let r = hub.request(method, path, b.as_deref().map(str::as_bytes), &[]);
        assert_eq!(
            r.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{method} {path}"
        );
        let p = r.json();
        assert_eq!(p["error_code"], code, "{method} {path}: {p}");
        assert_eq!(p["status"], status);
        assert!(p["title"].is_string() && p["detail"].is_string() && p["type"].is_string());
    }
    let missing = hub
        .post(
            "/print",
            &json!({"content_type": "qr_two_lines", "data": {"title": "t"}}),
        )
        .json();
    assert_eq!(
        missing["error_detail"]["missing_fields"],
        json!(["qr_payload", "primary_id"])
    );
    let big = vec![b' '; 4096];
    let r = hub.request("POST", "/print", Some(&big), &[]);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error_code"], "body_too_large");
    // The server is still serving.
    assert_eq!(hub.get("/healthz").status, 200);
}

#[test]
fn openapi_lists_every_route_and_meta_routes_answer() {
    let hub = InHub::start();
    let doc = hub.get("/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in [
        ("post", "/print"),
        ("post", "/api/print/{printer_key}/batch"),
        ("get", "/api/batches/{batch_id}"),
        ("get", "/api/events"),
        ("post", "/api/v1/admin/printers"),
        ("post", "/api/printers/{printer_id}/queue/clear"),
        ("get", "/readiness"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let ready = hub.get("/readiness");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["checks"]["printer_threads"]["status"], "ok");
    let png = hub.post(
        "/api/render/preview",
        &json!({"content_type": "text_one_line", "data": {"primary_id": "P"}}),
    );
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.bytes[1..4], b"PNG");
}

#[test]
fn retention_deletes_backdated_terminal_jobs_at_start() {
    let mut hub = Hub::start();
    let old = hub.post("/print", &label("old")).json();
    let new = hub.post("/print", &label("new")).json();
    let old_id = old["job_id"].as_str().unwrap().to_string();
    let new_id = new["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&old_id, T, |j| j["state"] == "done");
    hub.wait_job(&new_id, T, |j| j["state"] == "done");
    let (status, _) = hub.sigterm(T);
    assert!(status.success());
    {
        let conn = rusqlite::Connection::open(hub.data_dir.join("labelhub.db")).unwrap();
        let long_ago: i64 = 1_000_000_000_000; // 2001
        conn.execute(
            "UPDATE jobs SET finished_at = ?1 WHERE id = ?2",
            rusqlite::params![long_ago, old_id],
        )
        .unwrap();
        conn.execute(
            "UPDATE batches SET created_at = ?1 WHERE id = ?2",
            rusqlite::params![long_ago, old["batch_id"].as_str().unwrap()],
        )
        .unwrap();
    }
    hub.start_again();
    hub.wait_log("retention: deleted 1 jobs, 1 batches", T)
        .expect("retention ran at start");
    assert_eq!(hub.get(&format!("/api/jobs/{old_id}")).status, 404);
    assert_eq!(
        hub.get(&format!(
            "/api/batches/{}",
            old["batch_id"].as_str().unwrap()
        ))
        .status,
        404
    );
    assert_eq!(
        hub.get(&format!("/api/jobs/{new_id}")).json()["state"],
        "done"
    );
}

#[test]
fn a_newer_database_is_refused_and_left_alone() {
    let dir = temp_dir("newer");
    let db = dir.join("labelhub.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 42;")
            .unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .arg("serve")
        .env("PRINTER_HUB_DATA_DIR", &dir)
        .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 42"), "{err}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 42);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .arg("serve")
        .env("PRINTER_HUB_DATA_DIR", &dir)
        .env("PRINTER_HUB_JOB_RETENTION_DAYS", "-3")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PRINTER_HUB_JOB_RETENTION_DAYS"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The id of the printer with this slug.
fn printer_id(hub: &Hub, slug: &str) -> String {
    hub.get(&format!("/api/printers/{slug}")).json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
