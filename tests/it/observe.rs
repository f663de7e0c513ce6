//! Observability end to end: `/metrics` read back from
//! the real binary and checked by Prometheus' own parser (`promtool check
//! metrics`, installed by `.ci/run`), the access log, and the info lines
//! of job outcomes.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hub::add_printer;
use crate::support::{label, Client, Hub};

const T: Duration = Duration::from_secs(30);

/// `GET /metrics` with the hub's admin key; checks status and type.
fn scrape(hub: &Hub) -> String {
    let r = hub.get("/metrics");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    String::from_utf8(r.bytes).unwrap()
}

/// Runs `promtool check metrics` on the text: it must parse and pass
/// promtool's lint (names, suffixes, HELP/TYPE) without a single remark.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (Debian: apt-get install prometheus; .ci/run does): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let remarks = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && remarks.trim().is_empty(),
        "promtool check metrics: {} {remarks}\n{text}",
        out.status
    );
}

/// The value of the sample whose name and labels are exactly `series`
/// (`name{a="b",c="d"}` as written), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn print_one(hub: &Hub, text: &str, printer: Option<&str>) -> String {
    let mut body = label(text);
    if let Some(p) = printer {
        body["printer"] = json!(p);
    }
    let r = hub.post("/print", &body);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()["job_id"].as_str().unwrap().to_string()
}

fn create_key(hub: &Hub, body: serde_json::Value) -> String {
    let r = hub.post("/api/admin/api-keys", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()["plaintext"].as_str().unwrap().to_string()
}

#[test]
fn metrics_move_when_labels_print_and_promtool_accepts_them() {
    let hub = Hub::start();
    let before = scrape(&hub);
    promtool_check(&before);
    assert_eq!(
        value(&before, r#"labelhub_jobs{printer="demo",state="done"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&before, r#"labelhub_queue_depth{printer="demo"}"#),
        Some(0.0)
    );
    let commits_before = value(&before, "labelhub_db_commit_duration_seconds_count").unwrap();

    let ids: Vec<String> = (0..3)
        .map(|i| print_one(&hub, &format!("m{i}"), None))
        .collect();
    for id in &ids {
        hub.wait_job(id, T, |j| j["state"] == "done");
    }
    let after = scrape(&hub);
    promtool_check(&after);
    assert_eq!(
        value(&after, r#"labelhub_labels_printed_total{printer="demo"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(&after, r#"labelhub_jobs{printer="demo",state="done"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(&after, r#"labelhub_queue_depth{printer="demo"}"#),
        Some(0.0)
    );
    // Each label: submit, claim, done (at least one commit each).
    let commits = value(&after, "labelhub_db_commit_duration_seconds_count").unwrap();
    assert!(
        commits >= commits_before + 3.0,
        "{commits_before} -> {commits}"
    );
    assert_eq!(
        value(
            &after,
            r#"labelhub_http_responses_total{method="POST",route="/print",code="202"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&after, r#"labelhub_printer_paused{printer="demo"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&after, r#"labelhub_printer_online{printer="demo"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&after, r#"labelhub_printer_thread_up{printer="demo"}"#),
        Some(1.0)
    );
    assert!(value(&after, "labelhub_db_size_bytes").unwrap() > 0.0);
    // This very scrape holds a connection open.
    assert!(value(&after, "labelhub_http_open_connections").unwrap() >= 1.0);
    assert_eq!(value(&after, "labelhub_http_parked_requests"), Some(0.0));
}

#[test]
fn a_parked_long_poll_shows_in_the_gauge() {
    let hub = Hub::start();
    let id = print_one(&hub, "x", None);
    let done = hub.wait_job(&id, T, |j| j["state"] == "done");
    let batch = done["batch_id"].as_str().unwrap().to_string();
    let base = hub.base.clone();
    let key = hub.key.clone();
    // A long-poll on the feed of a finished batch waits its whole 5 s
    // (nothing changes there).
    let waiter = std::thread::spawn(move || {
        ureq::get(format!("{base}/api/events?wait=5&batch_id={batch}"))
            .header("X-Label-Hub-Key", &key)
            .call()
            .map(|r| r.status().as_u16())
    });
    let deadline = Instant::now() + T;
    loop {
        let m = scrape(&hub);
        if value(&m, "labelhub_http_parked_requests") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        assert!(!waiter.is_finished(), "the long-poll answered early");
    }
    assert_eq!(waiter.join().unwrap().unwrap(), 200);
}

#[test]
fn latency_is_labelled_by_route_pattern_whatever_the_spelling() {
    let hub = Hub::start();
    let id = print_one(&hub, "r", None);
    hub.wait_job(&id, T, |j| j["state"] == "done");
    let count = |text: &str| {
        value(
            text,
            r#"labelhub_http_request_duration_seconds_count{method="GET",route="/api/jobs/{job_id}"}"#,
        )
        .unwrap_or(0.0)
    };
    let before = count(&scrape(&hub));
    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    for path in [
        format!("/api/jobs/{id}"),
        format!("/api/jobs/{id}/"),
        format!("/api/jobs/{encoded}"),
        format!("/api/jobs/{id}?wait=0"),
        "/api/jobs/no-such-job-qzxv".to_string(),
    ] {
        let r = hub.get(&path);
        assert!(r.status == 200 || r.status == 404, "{path}: {}", r.status);
    }
    let r = hub.request("HEAD", &format!("/api/jobs/{id}"), None, &[]);
    assert_eq!(r.status, 200);
    let r = hub.get("/no/such/route/secret-qzxv");
    assert_eq!(r.status, 404);
    // A method no client library sends, on a raw connection.
    let mut conn = std::net::TcpStream::connect(hub.base.trim_start_matches("http://")).unwrap();
    conn.write_all(b"BREW /coffee-qzxv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    let text = scrape(&hub);
    promtool_check(&text);
    assert_eq!(count(&text), before + 5.0, "{text}");
    assert_eq!(
        value(
            &text,
            r#"labelhub_http_request_duration_seconds_count{method="HEAD",route="/api/jobs/{job_id}"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"labelhub_http_responses_total{method="GET",route="/api/jobs/{job_id}",code="404"}"#
        ),
        Some(1.0)
    );
    assert!(value(
        &text,
        r#"labelhub_http_request_duration_seconds_count{method="GET",route="unmatched"}"#
    )
    .is_some());
    assert!(value(
        &text,
        r#"labelhub_http_request_duration_seconds_count{method="other",route="unmatched"}"#
    )
    .is_some());
    // No raw path, id or unknown method ever becomes a label. The marker in the raw paths is
    // letters, so that no sample value (a duration's digits) can match it by chance.
    for raw in [id.as_str(), "qzxv", "BREW", "%"] {
        assert!(
            !text.contains(raw),
            "{raw} leaked into the metrics:\n{text}"
        );
    }
    // Buckets are cumulative up to +Inf = count.
    let inf = value(
        &text,
        r#"labelhub_http_request_duration_seconds_bucket{method="GET",route="/api/jobs/{job_id}",le="+Inf"}"#,
    );
    assert_eq!(inf, Some(count(&text)));
}

#[test]
fn metrics_need_a_read_key_and_show_only_the_keys_printers() {
    let hub = Hub::start();
    add_printer(&hub, "hidden", "emulator:?media=12&speed=instant");
    let hidden_job = print_one(&hub, "h", Some("hidden"));
    hub.wait_job(&hidden_job, T, |j| j["state"] == "done");
    let demo_id = hub.get("/api/printers/demo").json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let all = scrape(&hub);
    assert!(all.contains(r#"printer="hidden""#));

    let r = hub.request("GET", "/metrics", None, &[("X-Label-Hub-Key", "")]);
    assert_eq!(r.status, 401);
    let limited = create_key(
        &hub,
        json!({"name": "scraper", "scopes": ["read"], "allowed_printer_ids": [demo_id]}),
    );
    let headers = [("X-Label-Hub-Key", limited.as_str())];
    let r = hub.request("GET", "/metrics", None, &headers);
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.bytes).unwrap();
    promtool_check(&text);
    assert!(text.contains(r#"labelhub_jobs{printer="demo",state="done"}"#));
    assert!(!text.contains("hidden"), "{text}");
    let all_ids = hub.get("/api/printers").json();
    for p in all_ids.as_array().into_iter().flatten() {
        if p["slug"] == "hidden" {
            assert!(!text.contains(p["id"].as_str().unwrap()));
        }
    }
}

#[test]
fn a_bearer_key_is_accepted_when_no_key_header_is_sent() {
    let hub = Hub::start();
    let key = create_key(&hub, json!({"name": "prom", "scopes": ["read"]}));
    let r = ureq::get(format!("{}/metrics", hub.base))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = ureq::get(format!("{}/metrics", hub.base))
        .header("Authorization", "Bearer not-a-key")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn every_request_gets_an_access_line_with_the_key_prefix_never_the_key() {
    let hub = Hub::start();
    let r = hub.get("/api/jobs/0000-nope/");
    assert_eq!(r.status, 404);
    let line = hub
        .wait_log("access GET /api/jobs/{job_id} 404 ", T)
        .unwrap_or_else(|| panic!("no access line:\n{}", hub.log_text()));
    assert!(line.contains("[INFO]"), "{line}");
    assert!(line.contains(&format!("key={}", &hub.key[..16])), "{line}");
    assert!(line.contains("client=127.0.0.1:"), "{line}");
    assert!(line.contains("ms "), "{line}");
    assert!(!hub.log_text().contains(&hub.key), "the key was logged");
    assert!(!line.contains("0000-nope"), "{line}");
    // Unauthenticated and unmatched requests are logged too.
    hub.request("GET", "/healthz", None, &[("X-Label-Hub-Key", "")]);
    hub.wait_log("access GET /healthz 200 ", T)
        .unwrap_or_else(|| panic!("{}", hub.log_text()));
    hub.get("/what/ever");
    hub.wait_log("access GET unmatched 404 ", T)
        .unwrap_or_else(|| panic!("{}", hub.log_text()));
}

#[test]
fn the_access_log_can_be_turned_off() {
    let hub = Hub::start_env(&[("PRINTER_HUB_ACCESS_LOG", "0")]);
    assert_eq!(hub.get("/healthz").status, 200);
    assert_eq!(hub.get("/api/jobs").status, 200);
    // The job's `done` line is written after both responses went out, so
    // an access line for them would be in the log before it.
    let id = print_one(&hub, "quiet", None);
    hub.wait_log(&format!("job {id} done"), T)
        .unwrap_or_else(|| panic!("{}", hub.log_text()));
    assert!(!hub.log_text().contains("access "), "{}", hub.log_text());
    // A bad value is a configuration error.
    let out = Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .arg("serve")
        .env_clear()
        .env("PRINTER_HUB_ACCESS_LOG", "sometimes")
        .env("PRINTER_HUB_DATA_DIR", crate::support::temp_dir("badlog"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRINTER_HUB_ACCESS_LOG=sometimes"));
}

#[test]
fn job_done_failed_and_wrong_tape_are_info_lines_and_counted() {
    let hub = Hub::start();
    // Done.
    let id = print_one(&hub, "ok", None);
    hub.wait_job(&id, T, |j| j["state"] == "done");
    let line = hub.wait_log(&format!("job {id} done"), T).unwrap();
    assert!(
        line.contains("[INFO]") && line.contains("printer demo"),
        "{line}"
    );

    // Failed: the connection drops in the middle of the label.
    add_printer(&hub, "flaky", "emulator:?media=12&speed=instant");
    hub.emulator_fault("flaky", "drop=1000");
    let id = print_one(&hub, "drop", Some("flaky"));
    let job = hub.wait_job(&id, T, |j| j["state"] == "failed");
    assert_eq!(job["error_code"], "connection_dropped");
    let line = hub
        .wait_log(&format!("job {id} failed: connection_dropped"), T)
        .unwrap();
    assert!(
        line.contains("[INFO]") && line.contains("printer flaky"),
        "{line}"
    );
    let text = scrape(&hub);
    assert_eq!(
        value(
            &text,
            r#"labelhub_jobs_failed_total{printer="flaky",error_code="connection_dropped"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"labelhub_jobs{printer="flaky",state="failed"}"#),
        Some(1.0)
    );

    // Wrong tape: the printer now holds 24 mm, the job was made for 12 mm.
    add_printer(&hub, "swap", "emulator:?media=12&speed=instant");
    let pid = hub.get("/api/printers/swap").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/pause")).status,
        204
    );
    hub.emulator_fault("swap", "media=24");
    let id = print_one(&hub, "12mm", Some("swap"));
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{pid}/resume"))
            .status,
        204
    );
    hub.wait_job(&id, T, |j| j["state"] == "paused");
    let line = hub
        .wait_log(&format!("job {id} paused: wrong tape"), T)
        .unwrap();
    assert!(
        line.contains("[INFO]") && line.contains("needs 12") && line.contains("24 is loaded"),
        "{line}"
    );
    let text = scrape(&hub);
    promtool_check(&text);
    assert_eq!(
        value(&text, r#"labelhub_jobs{printer="swap",state="paused"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"labelhub_queue_depth{printer="swap"}"#),
        Some(1.0)
    );
}
