//! The apps people already run, through the real binary: the
//! compatibility differences with the upstream hub's clients (checked
//! against its OpenAPI pieces in tests/data/upstream-apps-schemas.json),
//! lookups against fake Snipe-IT/Grocy/Spoolman servers on 127.0.0.1,
//! inbound webhooks ending with the emulator's PNG and its QR code, QR
//! landing pages, and outbound webhooks against a local receiver.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::hub::add_printer;
use crate::support::{audit_actions, decode_qr, label, temp_dir, Client, Hub};

const T: Duration = Duration::from_secs(60);
const WEBHOOK_KEY: &str = "0123456789abcdef0123456789abcdef-test";

// ------------------------------------------------------------ fake apps

/// One request a fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen) -> (u16, Vec<u8>) + Send + Sync;

/// An HTTP server on 127.0.0.1:0; every request is answered on its own
/// thread by `handler` and recorded.
struct Fake {
    base: String,
    /// Requests answered so far.
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests that arrived (answered or not).
    arrived: Arc<AtomicUsize>,
    grew: Arc<std::sync::Condvar>,
    server: Arc<tiny_http::Server>,
}

impl Fake {
    fn start(handler: Arc<Handler>) -> Fake {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let grew = Arc::new(std::sync::Condvar::new());
        let arrived = Arc::new(AtomicUsize::new(0));
        let (s, seen2, grew2, arrived2) =
            (server.clone(), seen.clone(), grew.clone(), arrived.clone());
        std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let (handler, seen, grew) = (handler.clone(), seen2.clone(), grew2.clone());
                arrived2.fetch_add(1, Ordering::SeqCst);
                grew.notify_all();
                std::thread::spawn(move || {
                    let mut body = Vec::new();
                    let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
                    let r = Seen {
                        method: req.method().to_string(),
                        url: req.url().to_string(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect(),
                        body,
                    };
                    let (status, answer) = handler(&r);
                    seen.lock().unwrap().push(r);
                    grew.notify_all();
                    let resp = tiny_http::Response::from_data(answer)
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        );
                    let _ = req.respond(resp);
                });
            }
        });
        Fake {
            base,
            seen,
            arrived,
            grew,
            server,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, url: &str) -> usize {
        self.seen().iter().filter(|s| s.url == url).count()
    }

    /// Waits until `pred` holds for the requests seen so far.
    fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap();
        loop {
            if pred(&seen) {
                return seen.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}: saw {:#?}", *seen);
            seen = self.grew.wait_timeout(seen, left).unwrap().0;
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

const SNIPEIT_TOKEN: &str = "snipe-token-1";
const GROCY_KEY: &str = "grocy-key-1";

/// Snipe-IT, Grocy and Spoolman in one server, answering the shapes their
/// APIs document, plus not-found, slow, 500 and garbage answers.
fn fake_apps() -> Fake {
    Fake::start(Arc::new(|r: &Seen| {
        let ok = |v: Value| (200, v.to_string().into_bytes());
        let path = r.url.split('?').next().unwrap_or("");
        if let Some(tag) = path.strip_prefix("/api/v1/hardware/bytag/") {
            if r.header("authorization") != Some(&format!("Bearer {SNIPEIT_TOKEN}")) {
                return (
                    401,
                    br#"{"status":"error","messages":"Unauthorized."}"#.to_vec(),
                );
            }
            return match tag {
                // Snipe-IT's hardware object (trimmed), HTML-escaped text.
                "LAPTOP-1" => ok(json!({"id": 42, "name": "ThinkPad T14 &amp; dock",
                    "asset_tag": "LAPTOP-1", "serial": "PF3ABC",
                    "model": {"id": 3, "name": "T14"}, "status_label": {"name": "Ready"}})),
                // Older Snipe-IT: a missing tag is HTTP 200 with an error body.
                "MISSING" => ok(
                    json!({"status": "error", "messages": "Asset does not exist.", "payload": null}),
                ),
                "GONE" => (
                    404,
                    br#"{"status":"error","messages":"Asset not found"}"#.to_vec(),
                ),
                "SLOW" => {
                    std::thread::sleep(Duration::from_secs(4));
                    ok(json!({"id": 1, "asset_tag": "SLOW"}))
                }
                "BOOM" => (500, b"<h1>Server Error</h1>".to_vec()),
                "GARBAGE" => (200, b"<html>not json".to_vec()),
                "BIG" => (200, vec![b' '; 3 << 20]),
                _ => ok(json!({"status": "error", "messages": "Asset does not exist."})),
            };
        }
        if let Some(id) = path.strip_prefix("/api/v1/locations/") {
            return match id {
                "7" => ok(json!({"id": 7, "name": "Shelf A"})),
                _ => (
                    404,
                    br#"{"status":"error","messages":"Location not found"}"#.to_vec(),
                ),
            };
        }
        if let Some(id) = path.strip_prefix("/api/objects/products/") {
            if r.header("grocy-api-key") != Some(GROCY_KEY) {
                return (401, br#"{"error_message":"Unauthorized"}"#.to_vec());
            }
            return match id {
                "3" => ok(
                    json!({"id": 3, "name": "Milk", "description": null, "location_id": 2,
                    "qu_id_purchase": 1, "min_stock_amount": 0}),
                ),
                // Grocy answers an unknown object id with 400.
                _ => (400, br#"{"error_message":"Object not found"}"#.to_vec()),
            };
        }
        if let Some(id) = path.strip_prefix("/api/v1/spool/") {
            return match id {
                "7" => ok(json!({"id": 7, "registered": "2024-01-01T00:00:00Z",
                    "filament": {"id": 2, "name": "PLA Galaxy Black", "material": "PLA",
                        "vendor": {"id": 1, "name": "Prusament"}},
                    "remaining_weight": 850.5, "used_weight": 149.5, "archived": false})),
                _ => (404, br#"{"message":"No spool with ID 99 found."}"#.to_vec()),
            };
        }
        (404, b"{}".to_vec())
    }))
}

fn app_env(fake: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("PRINTER_HUB_SNIPEIT_URL", fake.base.clone()),
        ("PRINTER_HUB_SNIPEIT_API_KEY", SNIPEIT_TOKEN.into()),
        ("PRINTER_HUB_SNIPEIT_TIMEOUT", "1".into()),
        ("PRINTER_HUB_GROCY_URL", format!("{}/", fake.base)),
        ("PRINTER_HUB_GROCY_API_KEY", GROCY_KEY.into()),
        ("PRINTER_HUB_SPOOLMAN_URL", fake.base.clone()),
        ("PRINTER_HUB_WEBHOOK_API_KEY", WEBHOOK_KEY.into()),
    ]
}

fn start_with(env: &[(&'static str, String)]) -> Hub {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Hub::start_env(&env)
}

fn code(r: &crate::support::Resp) -> String {
    r.json()["error_code"].as_str().unwrap_or("").to_string()
}

// ------------------------------------------------ upstream schema check

fn upstream() -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/upstream-apps-schemas.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Checks `v` against an upstream (OpenAPI 3.0) schema: types, nullable,
/// enums, required fields, nested properties, items and `$ref`s.
fn conforms(v: &Value, schema: &Value, all: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        let mut target = all["schemas"][name].clone();
        if schema["nullable"] == true {
            target["nullable"] = json!(true);
        }
        return conforms(v, &target, all, at);
    }
    if v.is_null() {
        assert!(
            schema["nullable"] == true || schema.get("type").is_none(),
            "{at}: null not allowed by {schema}"
        );
        return;
    }
    if let Some(e) = schema["enum"].as_array() {
        assert!(e.contains(v), "{at}: {v} not in upstream's enum {e:?}");
    }
    match schema["type"].as_str() {
        Some("string") => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}: {v} is not a string"));
            match schema["format"].as_str() {
                Some("uuid") => {
                    assert!(uuid::Uuid::parse_str(s).is_ok(), "{at}: {s} is not a UUID")
                }
                Some("date-time") => {
                    assert!(
                        time::OffsetDateTime::parse(
                            s,
                            &time::format_description::well_known::Rfc3339
                        )
                        .is_ok(),
                        "{at}: {s}"
                    )
                }
                _ => {}
            }
        }
        Some("integer") => assert!(v.is_i64() || v.is_u64(), "{at}: {v} is not an integer"),
        Some("number") => assert!(v.is_number(), "{at}: {v} is not a number"),
        Some("boolean") => assert!(v.is_boolean(), "{at}: {v} is not a boolean"),
        Some("array") => {
            for (i, item) in v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                conforms(item, &schema["items"], all, &format!("{at}[{i}]"));
            }
        }
        Some("object") | None
            if schema.get("properties").is_some() || schema["type"] == "object" =>
        {
            let obj = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {v} is not an object"));
            for req in schema["required"].as_array().into_iter().flatten() {
                let req = req.as_str().unwrap();
                assert!(
                    obj.contains_key(req),
                    "{at}: required `{req}` missing in {v}"
                );
            }
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    if let Some(x) = obj.get(k) {
                        conforms(x, s, all, &format!("{at}.{k}"));
                    }
                }
            }
        }
        _ => {}
    }
}

fn check(v: &Value, schema: &str) {
    let all = upstream();
    conforms(v, &all["schemas"][schema], &all, schema);
}

// ------------------------------------------------- compatibility tests

#[test]
fn legacy_job_route_speaks_upstreams_vocabulary() {
    let mut hub = Hub::start();
    let job = hub.post("/print", &label("legacy")).json();
    let id = job["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
    let legacy = hub.get(&format!("/jobs/{id}")).json();
    assert_eq!(legacy["status"], "completed");
    check(&legacy, "PrintJobStatusResponse");
    // The /api route keeps labelhub's vocabulary.
    assert_eq!(hub.get(&format!("/api/jobs/{id}")).json()["state"], "done");

    // A label in flight when the hub dies: failed_restart -> failed +
    // printer_interrupted on the legacy route.
    add_printer(&hub, "slow", "emulator:?media=12&speed=5");
    let mut body = json!({"content_type": "text_one_line",
        "data": {"primary_id": "a long label that takes a while at five mm per second"}});
    body["printer"] = json!("slow");
    let r = hub.post("/print", &body).json();
    let slow = r["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&slow, T, |j| j["state"] == "printing");
    hub.restart_after_kill();
    let api = hub.get(&format!("/api/jobs/{slow}")).json();
    assert_eq!(api["state"], "failed_restart");
    let legacy = hub.get(&format!("/jobs/{slow}")).json();
    assert_eq!(legacy["status"], "failed");
    assert_eq!(legacy["error_code"], "printer_interrupted");
    check(&legacy, "PrintJobStatusResponse");
}

#[test]
fn since_pages_forward_like_upstreams_frontend() {
    let hub = Hub::start();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = hub.post("/print", &label(&format!("p{i}"))).json();
        let id = r["job_id"].as_str().unwrap().to_string();
        // Distinct creation times: the next job is created after the
        // wall clock has passed this one's millisecond.
        let created = hub.get(&format!("/api/jobs/{id}")).json()["created_at"]
            .as_str()
            .unwrap()
            .to_string();
        let created =
            time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
                .unwrap();
        while time::OffsetDateTime::now_utc() - created < time::Duration::milliseconds(2) {
            std::hint::spin_loop();
        }
        ids.push(id);
    }
    let first = hub
        .get("/api/jobs?since=2000-01-01T00:00:00Z&limit=2")
        .json();
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["id"], ids[0].as_str(), "oldest first, as upstream");
    assert_eq!(first[1]["id"], ids[1].as_str());
    for j in first {
        check(j, "JobRead");
    }
    // The frontend's next page: since = created_at of the last job shown.
    let since = first[1]["created_at"].as_str().unwrap();
    let next = hub
        .get(&format!(
            "/api/jobs?since={}&limit=2",
            since.replace('+', "%2B")
        ))
        .json();
    let next: Vec<&str> = next
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        next,
        [ids[1].as_str(), ids[2].as_str()],
        "inclusive, like upstream"
    );
    let last = hub
        .get(&format!(
            "/api/jobs?since={}&limit=50",
            hub.get(&format!("/api/jobs/{}", ids[4])).json()["created_at"]
                .as_str()
                .unwrap()
        ))
        .json();
    assert_eq!(last.as_array().unwrap().len(), 1);
    // labelhub's own list is still newest first with a cursor.
    let own = hub.get("/api/jobs?limit=2");
    assert_eq!(own.json()[0]["id"], ids[4].as_str());
    assert!(own.header("x-next-cursor").is_some());
    // An offset whose `+` arrived unencoded (form decoding makes it a space).
    let plus = hub.get("/api/jobs?since=2000-01-01T01:00:00+01:00&limit=1");
    assert_eq!(plus.status, 200, "{}", String::from_utf8_lossy(&plus.bytes));
    assert_eq!(plus.json()[0]["id"], ids[0].as_str());
    let bad = hub.get("/api/jobs?since=yesterday");
    assert_eq!(bad.status, 422);
}

#[test]
fn preview_of_an_unsupported_tape_is_409_unsupported_tape() {
    let hub = Hub::start();
    let r = hub.post(
        "/api/render/preview",
        &json!({"content_type": "qr_only", "data": {"qr_payload": "x"}, "tape_mm": 13}),
    );
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(code(&r), "unsupported_tape");
    assert_eq!(r.json()["error_detail"]["tape_mm"], 13.0);
    let doc = upstream();
    assert!(doc["paths"]["/api/render/preview"]["post"]["responses"]["409"].is_object());
    let ok = hub.post(
        "/api/render/preview",
        &json!({"content_type": "qr_only", "data": {"qr_payload": "x"}, "tape_mm": 24}),
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn key_scopes_batch_creator_and_tcp_connections_match_upstream() {
    let hub = Hub::start();
    let created = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "frontend", "scopes": ["read", "print"]}),
    );
    assert_eq!(created.status, 201);
    let created = created.json();
    assert_eq!(
        created["scopes"],
        json!(["read", "print"]),
        "echoed as sent"
    );
    check(&created, "ApiKeyCreateResponse");
    let key = created["plaintext"].as_str().unwrap();
    let key_id = created["key_id"].as_str().unwrap();

    let r = hub.request(
        "POST",
        "/api/print/demo/batch",
        Some(json!({"items": [label("b")]}).to_string().as_bytes()),
        &[("X-Label-Hub-Key", key)],
    );
    assert_eq!(r.status, 202);
    let batch = hub.wait_batch(r.json()["batch_id"].as_str().unwrap(), T);
    assert_eq!(batch["created_by"], key_id, "the bare key id");
    check(&batch, "BatchRead");

    for (slug, uri, host, port) in [
        (
            "tcp-q",
            "tcp://127.0.0.1:9101?snmp_port=off",
            "127.0.0.1",
            9101,
        ),
        ("tcp-v6", "tcp://[::1]:9102", "::1", 9102),
        (
            "tcp-noport",
            "tcp://printer.invalid",
            "printer.invalid",
            9100,
        ),
    ] {
        let r = hub.post(
            "/api/v1/admin/printers",
            &json!({"name": slug, "slug": slug, "model": "PT-P750W", "connection": {"uri": uri}}),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        for path in [
            format!("/api/v1/admin/printers/{slug}"),
            format!("/api/printers/{slug}"),
        ] {
            let conn = hub.get(&path).json()["connection"].clone();
            assert_eq!(conn["host"], host, "{path}: {conn}");
            assert_eq!(conn["port"], port, "{path}: {conn}");
            check(&conn, "PrinterConnection");
        }
    }
}

// ------------------------------------------------------------- lookups

#[test]
fn lookups_answer_documented_shapes_and_name_failures() {
    let fake = fake_apps();
    let hub = start_with(&app_env(&fake));
    let asset = hub.get("/api/lookup/snipeit/LAPTOP-1");
    assert_eq!(
        asset.status,
        200,
        "{}",
        String::from_utf8_lossy(&asset.bytes)
    );
    let asset = asset.json();
    check(&asset, "LookupResult");
    assert_eq!(asset["name"], "ThinkPad T14 & dock");
    assert_eq!(asset["url"], format!("{}/hardware/42", fake.base));
    assert_eq!(asset["extra"]["secondary"], json!(["S/N: PF3ABC"]));
    // Cached: a second lookup does not ask Snipe-IT again.
    assert_eq!(hub.get("/api/lookup/snipeit/LAPTOP-1").status, 200);
    assert_eq!(fake.count("/api/v1/hardware/bytag/LAPTOP-1"), 1);

    let product = hub.get("/api/lookup/grocy/3").json();
    check(&product, "LookupResult");
    assert_eq!(product["name"], "Milk");
    assert_eq!(product["url"], format!("{}/product/3", fake.base));
    let spool = hub.get("/api/lookup/spoolman/7").json();
    check(&spool, "LookupResult");
    assert_eq!(spool["name"], "Prusament PLA Galaxy Black");
    assert_eq!(spool["url"], format!("{}/spool/show/7", fake.base));
    assert_eq!(spool["extra"]["secondary"], json!(["851g remaining"]));

    for (path, status, error) in [
        ("/api/lookup/snipeit/MISSING", 404, "lookup_not_found"),
        ("/api/lookup/snipeit/GONE", 404, "lookup_not_found"),
        ("/api/lookup/grocy/404", 404, "lookup_not_found"),
        ("/api/lookup/grocy/abc", 404, "lookup_not_found"),
        ("/api/lookup/spoolman/99", 404, "lookup_not_found"),
        ("/api/lookup/snipeit/SLOW", 502, "integration_lookup_failed"),
        ("/api/lookup/snipeit/BOOM", 502, "integration_lookup_failed"),
        (
            "/api/lookup/snipeit/GARBAGE",
            502,
            "integration_lookup_failed",
        ),
        ("/api/lookup/snipeit/BIG", 502, "integration_lookup_failed"),
        ("/api/lookup/inventree/1", 422, "unknown_app"),
    ] {
        let t = Instant::now();
        let r = hub.get(path);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(code(&r), error, "{path}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        if status == 502 {
            let detail = &r.json()["error_detail"];
            assert_eq!(detail["app"], "snipeit", "{path}");
            assert!(r.json()["detail"].as_str().unwrap().contains("snipeit"));
            let cause = detail["cause"].as_str().unwrap();
            let expected = match path.rsplit('/').next().unwrap() {
                "SLOW" => "timed out",
                "BOOM" => "HTTP 500",
                "GARBAGE" => "not a JSON object",
                _ => "larger than",
            };
            assert!(cause.contains(expected), "{path}: {cause}");
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "{path} bounded by the 1 s timeout"
            );
        }
    }
    // A failure is not cached: BOOM was asked twice after two lookups.
    hub.get("/api/lookup/snipeit/BOOM");
    assert_eq!(fake.count("/api/v1/hardware/bytag/BOOM"), 2);
    // Read scope: no key, no lookup.
    let anon = hub.request(
        "GET",
        "/api/lookup/grocy/3",
        None,
        &[("X-Label-Hub-Key", "")],
    );
    assert_eq!(anon.status, 401);

    // A wrong Snipe-IT token is a failure of the app, named as such.
    let mut env = app_env(&fake);
    env.retain(|(k, _)| *k != "PRINTER_HUB_SNIPEIT_API_KEY");
    env.push(("PRINTER_HUB_SNIPEIT_API_KEY", "wrong".into()));
    let other = start_with(&env);
    let r = other.get("/api/lookup/snipeit/LAPTOP-1");
    assert_eq!(r.status, 502);
    assert!(r.json()["error_detail"]["cause"]
        .as_str()
        .unwrap()
        .contains("401"));
    // No URL: the app is not configured.
    let bare = Hub::start();
    let r = bare.get("/api/lookup/spoolman/7");
    assert_eq!(r.status, 503);
    assert_eq!(code(&r), "integration_not_configured");
}

/// Waits for the job, then decodes the QR of the PNG it printed.
fn printed_qr(hub: &Hub, job_id: &str, before: usize) -> String {
    hub.wait_job(job_id, T, |j| j["state"] == "done");
    let pngs = hub.pngs("demo");
    assert_eq!(pngs.len(), before + 1);
    decode_qr(pngs.last().unwrap())
}

#[test]
fn print_and_batch_items_take_label_data_from_a_lookup() {
    let fake = fake_apps();
    let hub = start_with(&app_env(&fake));
    let r = hub.post(
        "/print",
        &json!({"content_type": "qr_two_lines", "lookup": {"app": "spoolman", "id": 7}}),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        printed_qr(&hub, &job, 0),
        format!("{}/spool/show/7", fake.base)
    );
    let data = &hub.get(&format!("/api/jobs/{job}")).json()["payload"]["label_data"];
    assert_eq!(data["title"], "Prusament PLA Galaxy Black");
    assert_eq!(data["primary_id"], "#7");

    // Batch items, with upstream's `identifier` spelling.
    let r = hub.post(
        "/api/print/demo/batch",
        &json!({"items": [
            {"content_type": "qr_two_lines", "lookup": {"app": "snipeit", "identifier": "LAPTOP-1"}},
            {"content_type": "qr_two_lines", "data": {"title": "plain", "primary_id": "1", "qr_payload": "plain"}}
        ]}),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let b = hub.wait_batch(r.json()["batch_id"].as_str().unwrap(), T);
    assert_eq!(b["summary"]["done"], 2);
    let pngs = hub.pngs("demo");
    assert_eq!(decode_qr(&pngs[1]), format!("{}/hardware/42", fake.base));

    // A missing entity refuses the whole batch; nothing is queued.
    let jobs_before = hub
        .get("/api/jobs?limit=200")
        .json()
        .as_array()
        .unwrap()
        .len();
    for (body, status, error) in [
        (
            json!({"items": [label("ok"), {"content_type": "qr_two_lines", "lookup": {"app": "grocy", "id": "404"}}]}),
            404,
            "lookup_not_found",
        ),
        (
            json!({"items": [{"content_type": "qr_two_lines", "lookup": {"app": "snipeit", "id": "BOOM"}}]}),
            502,
            "integration_lookup_failed",
        ),
        (
            json!({"items": [{"content_type": "qr_two_lines", "lookup": {"app": "nope", "id": "1"}}]}),
            422,
            "unknown_app",
        ),
        (
            json!({"items": [{"content_type": "qr_two_lines", "lookup": {"app": "grocy"}}]}),
            422,
            "validation_error",
        ),
        (
            json!({"items": [{"content_type": "qr_two_lines", "lookup": {"app": "grocy", "id": "3"}, "data": {}}]}),
            422,
            "validation_error",
        ),
    ] {
        let r = hub.post("/api/print/demo/batch", &body);
        assert_eq!(
            r.status,
            status,
            "{body}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(code(&r), error);
    }
    assert_eq!(
        hub.get("/api/jobs?limit=200")
            .json()
            .as_array()
            .unwrap()
            .len(),
        jobs_before
    );
}

// ------------------------------------------------------ inbound webhooks

fn webhook(hub: &Hub, app: &str, body: &[u8], headers: &[(&str, &str)]) -> crate::support::Resp {
    hub.request("POST", &format!("/api/webhook/{app}"), Some(body), headers)
}

/// A form POST the way Grocy's WebhookRunner sends one (no key header).
fn post_form(hub: &Hub, path: &str, form: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{}{path}", hub.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form.as_bytes())
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn webhooks_print_real_labels_and_check_the_secret() {
    let fake = fake_apps();
    let hub = start_with(&app_env(&fake));
    let body = br#"{"spool_id": 7, "type": "updated"}"#;
    // Missing, wrong and right secrets.
    let r = webhook(&hub, "spoolman", body, &[]);
    assert_eq!((r.status, code(&r).as_str()), (401, "missing_webhook_key"));
    let r = webhook(
        &hub,
        "spoolman",
        body,
        &[("X-API-Key", "0123456789abcdef0123456789abcdef-tesT")],
    );
    assert_eq!((r.status, code(&r).as_str()), (401, "invalid_webhook_key"));
    assert!(hub.pngs("demo").is_empty(), "nothing printed for a bad key");

    let r = webhook(&hub, "spoolman", body, &[("X-API-Key", WEBHOOK_KEY)]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    check(&r.json(), "WebhookAcceptedResponse");
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        printed_qr(&hub, &job, 0),
        format!("{}/spool/show/7", fake.base)
    );

    // Upstream's Grocy body with a quantity: two copies.
    let r = webhook(
        &hub,
        "grocy",
        br#"{"product_id": "3", "type": "stock_added", "quantity": 2}"#,
        &[("X-API-Key", WEBHOOK_KEY)],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["job_ids"].as_array().unwrap().len(), 2);
    let b = hub.wait_batch(r.json()["batch_id"].as_str().unwrap(), T);
    assert_eq!(b["summary"]["done"], 2);
    assert_eq!(
        decode_qr(&hub.pngs("demo")[2]),
        format!("{}/product/3", fake.base)
    );

    // Grocy's own label printer webhook, JSON, secret in the body via
    // LABEL_PRINTER_PARAMS (Grocy cannot send headers).
    let grocy = json!({"product": "Milk", "grocycode": "grcy:p:3:6574b7f3d2e1a",
        "due_date": "DD: 2026-12-24", "details": {"product": {"id": 3, "name": "Milk"}},
        "font_family": "Source Sans Pro (Regular)", "api_key": WEBHOOK_KEY});
    let r = webhook(&hub, "grocy", grocy.to_string().as_bytes(), &[]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(printed_qr(&hub, &job, 3), "grcy:p:3:6574b7f3d2e1a");
    assert_eq!(
        hub.get(&format!("/api/jobs/{job}")).json()["payload"]["label_data"]["primary_id"],
        "DD: 2026-12-24"
    );

    // ... and as form fields (LABEL_PRINTER_HOOK_JSON = false).
    let form = format!(
        "product=Milk&grocycode=grcy%3Ap%3A3&details%5Bproduct%5D%5Bid%5D=3&api_key={WEBHOOK_KEY}"
    );
    let (status, r) = post_form(&hub, "/api/webhook/grocy", &form);
    assert_eq!(status, 202, "{r}");
    let job = r["job_id"].as_str().unwrap().to_string();
    assert_eq!(printed_qr(&hub, &job, 4), "grcy:p:3");
    let (status, r) = post_form(
        &hub,
        "/api/webhook/grocy",
        "product=Milk&grocycode=grcy%3Ap%3A3&api_key=wrong",
    );
    assert_eq!(
        (status, &r["error_code"]),
        (401, &json!("invalid_webhook_key"))
    );

    // Bad bodies (with the right key) and lookups that fail.
    for (app, body, status, error) in [
        (
            "spoolman",
            &br#"{"spool_id": 99, "type": "updated"}"#[..],
            404,
            "lookup_not_found",
        ),
        (
            "spoolman",
            br#"{"spool_id": 1.5, "type": "updated"}"#,
            422,
            "validation_error",
        ),
        (
            "spoolman",
            br#"{"type": "updated"}"#,
            422,
            "validation_error",
        ),
        (
            "spoolman",
            br#"{"spool_id": 7, "type": "x", "quantity": 50}"#,
            422,
            "validation_error",
        ),
        ("grocy", b"not json", 422, "validation_error"),
        (
            "grocy",
            br#"{"grocycode": "grcy:p:3"}"#,
            422,
            "validation_error",
        ),
    ] {
        let r = webhook(&hub, app, body, &[("X-API-Key", WEBHOOK_KEY)]);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(body));
        assert_eq!(code(&r), error);
    }
    assert_eq!(hub.pngs("demo").len(), 5);

    // Webhooks off: 503.
    let bare = Hub::start();
    let r = webhook(&bare, "spoolman", body, &[("X-API-Key", WEBHOOK_KEY)]);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (503, "webhook_not_configured")
    );
}

#[test]
fn webhooks_print_on_the_printer_set_for_their_app() {
    let fake = fake_apps();
    let mut env = app_env(&fake);
    env.push(("PRINTER_HUB_SPOOLMAN_PRINTER", "spools".into()));
    let hub = start_with(&env);
    add_printer(&hub, "spools", "emulator:?media=24&speed=instant");
    let r = webhook(
        &hub,
        "spoolman",
        br#"{"spool_id": "7", "type": "updated"}"#,
        &[("X-API-Key", WEBHOOK_KEY)],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&job, T, |j| j["state"] == "done");
    let pngs = hub.pngs("spools");
    assert_eq!(pngs.len(), 1);
    assert!(hub.pngs("demo").is_empty());
    assert_eq!(decode_qr(&pngs[0]), format!("{}/spool/show/7", fake.base));

    // A retried webhook with the same Idempotency-Key prints once.
    let body = br#"{"spool_id": 7, "type": "updated"}"#;
    let headers = [
        ("X-API-Key", WEBHOOK_KEY),
        ("Idempotency-Key", "spool-7-evt-1"),
    ];
    let first = webhook(&hub, "spoolman", body, &headers);
    assert_eq!(first.status, 202);
    let again = webhook(&hub, "spoolman", body, &headers);
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["job_id"], first.json()["job_id"]);
    hub.wait_job(first.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert_eq!(hub.pngs("spools").len(), 2);
}

// ------------------------------------------------------------ QR pages

/// A GET that does not follow redirects.
fn get_raw(hub: &Hub, path: &str) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut r = agent.get(format!("{}{path}", hub.base)).call().unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (
        r.status().as_u16(),
        loc,
        r.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn qr_pages_redirect_to_the_app_or_explain() {
    let fake = fake_apps();
    let hub = start_with(&app_env(&fake));
    for (path, to) in [
        ("/spool/7", format!("{}/spool/show/7", fake.base)),
        ("/asset/LAPTOP-1", format!("{}/hardware/42", fake.base)),
        ("/loc/7", format!("{}/locations/7", fake.base)),
        ("/product/3", format!("{}/product/3", fake.base)),
    ] {
        let (status, loc, _) = get_raw(&hub, path);
        assert_eq!((status, loc.as_deref()), (302, Some(to.as_str())), "{path}");
    }
    for path in [
        "/spool/99",
        "/asset/MISSING",
        "/loc/8",
        "/product/404",
        "/asset/%3Cscript%3E",
    ] {
        let (status, _, html) = get_raw(&hub, path);
        assert_eq!(status, 404, "{path}");
        assert!(
            html.contains("<!doctype html>") && !html.contains("<script>"),
            "{html}"
        );
    }
    let (status, _, html) = get_raw(&hub, "/asset/BOOM");
    assert_eq!(status, 502);
    assert!(html.contains("HTTP 500"), "{html}");
    // Without the app configured: a page with what the label says.
    let bare = Hub::start();
    let (status, _, html) = get_raw(&bare, "/spool/12");
    assert_eq!(status, 200);
    assert!(
        html.contains("spool <b>12</b>") && html.contains("not connected"),
        "{html}"
    );
}

// ---------------------------------------------------- outbound webhooks

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut acc, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = acc << 6 | A.iter().position(|x| *x == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Verifies a Standard Webhooks signature the way a receiver does.
fn verify(secret: &str, r: &Seen) {
    let key = unb64(secret.strip_prefix("whsec_").unwrap());
    let id = r.header("webhook-id").unwrap();
    let ts = r.header("webhook-timestamp").unwrap();
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - ts.parse::<i64>().unwrap();
    assert!(age.abs() < 300, "timestamp within tolerance");
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(&r.body);
    let expected = format!("v1,{}", b64(&hmac(&key, &msg)));
    let sigs = r.header("webhook-signature").unwrap();
    assert!(
        sigs.split(' ').any(|s| s == expected),
        "signature {sigs} != {expected}"
    );
}

fn subscribe(hub: &Hub, url: &str, events: &[&str]) -> (String, String) {
    let r = hub.post(
        "/api/admin/webhooks",
        &json!({"url": url, "events": events}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

#[test]
fn outbound_webhooks_are_signed_and_retried_until_delivered_once() {
    // Fails the first three attempts at /flaky, then answers 200.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let receiver = Fake::start(Arc::new(move |r: &Seen| {
        if r.url == "/flaky" && c.fetch_add(1, Ordering::SeqCst) < 3 {
            (500, b"not yet".to_vec())
        } else {
            (200, b"{}".to_vec())
        }
    }));
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_WEBHOOK_RETRY_BASE_MS", "50"),
        ("PRINTER_HUB_PRINTER_NETWORKS", "127.0.0.0/8, ::1/128"),
    ]);
    let (sub, secret) = subscribe(&hub, &format!("{}/flaky", receiver.base), &["job.done"]);
    let (_, secret2) = subscribe(
        &hub,
        &format!("{}/all", receiver.base),
        &["job.done", "batch.finished", "printer.paused"],
    );

    let r = hub.post("/print", &label("hook")).json();
    let job = r["job_id"].as_str().unwrap().to_string();
    let printer = r["printer_id"].as_str().unwrap().to_string();
    hub.wait_job(&job, T, |j| j["state"] == "done");
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{printer}/pause"))
            .status,
        204
    );

    let seen = receiver.wait("4 attempts and 3 other events", T, |s| {
        s.iter().filter(|r| r.url == "/flaky").count() >= 4
            && s.iter().filter(|r| r.url == "/all").count() >= 3
    });
    let flaky: Vec<&Seen> = seen.iter().filter(|r| r.url == "/flaky").collect();
    let id = flaky[0].header("webhook-id").unwrap();
    assert!(id.starts_with("msg_"));
    for r in &flaky {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("webhook-id"),
            Some(id),
            "one stable id for every attempt"
        );
        assert_eq!(r.body, flaky[0].body, "the same body every time");
        verify(&secret, r);
    }
    let body: Value = serde_json::from_slice(&flaky[0].body).unwrap();
    assert_eq!(body["type"], "job.done");
    assert_eq!(body["data"]["job_id"], job.as_str());
    assert_eq!(body["data"]["to_state"], "done");
    let mut types = BTreeSet::new();
    for r in seen.iter().filter(|r| r.url == "/all") {
        verify(&secret2, r);
        types.insert(
            serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        types,
        BTreeSet::from([
            "job.done".to_string(),
            "batch.finished".into(),
            "printer.paused".into()
        ])
    );

    // The delivery log: delivered once, after four attempts (polled: the
    // hub records the outcome right after the receiver answered).
    let deadline = Instant::now() + T;
    let log = loop {
        let log = hub.get(&format!("/api/admin/webhooks/{sub}/deliveries"));
        assert_eq!(log.status, 200);
        let log = log.json();
        if log[0]["state"] != "pending" {
            break log;
        }
        assert!(Instant::now() < deadline, "{log}");
    };
    let d = &log[0];
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(d["id"], id);
    assert_eq!(d["state"], "delivered");
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["last_http_status"], 200);
    let s = hub.get(&format!("/api/admin/webhooks/{sub}")).json();
    assert_eq!(s["last_delivery"]["status"], "delivered");
    assert_eq!(
        s["deliveries"],
        json!({"pending": 0, "delivered": 1, "failed": 0})
    );
    assert!(
        s.get("secret").is_none(),
        "the secret is shown only at creation"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "exactly one successful delivery"
    );

    // Manual redeliver: the same message again.
    let r = hub.post_empty(&format!(
        "/api/admin/webhooks/{sub}/deliveries/{id}/redeliver"
    ));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let seen = receiver.wait("redelivery", T, |s| {
        s.iter().filter(|r| r.url == "/flaky").count() >= 5
    });
    let last = seen.iter().rfind(|r| r.url == "/flaky").unwrap();
    assert_eq!(last.header("webhook-id"), Some(id));
    verify(&secret, last);
    let r = hub.post_empty(&format!(
        "/api/admin/webhooks/{sub}/deliveries/msg_nope/redeliver"
    ));
    assert_eq!((r.status, code(&r).as_str()), (404, "delivery_not_found"));

    // Admin API: validation, patch, delete; admin scope only.
    for (body, error) in [
        (
            json!({"url": "ftp://x", "events": ["job.done"]}),
            "validation_error",
        ),
        (
            json!({"url": receiver.base, "events": ["job.exploded"]}),
            "validation_error",
        ),
        (
            json!({"url": receiver.base, "events": []}),
            "validation_error",
        ),
        (
            json!({"url": receiver.base, "events": ["job.done"], "secret": "plain"}),
            "validation_error",
        ),
        (
            json!({"url": "http://10.1.2.3/", "events": ["job.done"]}),
            "url_not_allowed",
        ),
    ] {
        let r = hub.post("/api/admin/webhooks", &body);
        assert_eq!((r.status, code(&r).as_str()), (422, error), "{body}");
    }
    let r = hub.request(
        "PATCH",
        &format!("/api/admin/webhooks/{sub}"),
        Some(br#"{"enabled": false}"#),
        &[],
    );
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(
        hub.get("/api/admin/webhooks")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        hub.request("DELETE", &format!("/api/admin/webhooks/{sub}"), None, &[])
            .status,
        204
    );
    assert_eq!(hub.get(&format!("/api/admin/webhooks/{sub}")).status, 404);
    let (_, print_key) = {
        let k = hub
            .post(
                "/api/admin/api-keys",
                &json!({"name": "p", "scopes": ["print"]}),
            )
            .json();
        (
            k["key_id"].clone(),
            k["plaintext"].as_str().unwrap().to_string(),
        )
    };
    let r = hub.request(
        "GET",
        "/api/admin/webhooks",
        None,
        &[("X-Label-Hub-Key", &print_key)],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn outbound_webhook_urls_obey_the_printer_network_policy() {
    let receiver = Fake::start(Arc::new(|_: &Seen| (200, b"{}".to_vec())));
    let hub = Hub::start_env(&[("PRINTER_HUB_PRINTER_NETWORKS", "10.0.0.0/8")]);
    let r = hub.post(
        "/api/admin/webhooks",
        &json!({"url": receiver.base, "events": ["job.done"]}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(code(&r), "url_not_allowed");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("PRINTER_HUB_PRINTER_NETWORKS"));
    assert!(receiver.seen().is_empty());
}

#[test]
fn kill_9_with_100_undelivered_events_loses_none() {
    // The receiver holds every request until `open`; the sender is stuck
    // on the first one while 99 more wait in the outbox.
    let open = Arc::new(AtomicBool::new(false));
    let gate = Arc::new((Mutex::new(()), std::sync::Condvar::new()));
    let (o, g) = (open.clone(), gate.clone());
    let receiver = Fake::start(Arc::new(move |_: &Seen| {
        let mut guard = g.0.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !o.load(Ordering::SeqCst) && Instant::now() < deadline {
            guard = g.1.wait_timeout(guard, Duration::from_secs(1)).unwrap().0;
        }
        (200, b"{}".to_vec())
    }));
    let dir = temp_dir("apps-outbox");
    let env = [("PRINTER_HUB_WEBHOOK_TIMEOUT_S", "300")];
    let first = Hub::start_in(&dir, &env, false);
    let (sub, secret) = subscribe(&first, &format!("{}/hook", receiver.base), &["job.done"]);
    let items: Vec<Value> = (0..100).map(|i| label(&format!("n{i}"))).collect();
    let r = first.post("/api/print/demo/batch", &json!({"items": items}));
    assert_eq!(r.status, 202);
    let jobs: BTreeSet<String> = r.json()["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_str().unwrap().to_string())
        .collect();
    first.wait_batch(r.json()["batch_id"].as_str().unwrap(), T);
    let s = first.get(&format!("/api/admin/webhooks/{sub}")).json();
    assert_eq!(s["deliveries"]["pending"], 100, "{s}");
    let deadline = Instant::now() + T;
    while receiver.arrived.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no delivery attempt");
        let guard = receiver.seen.lock().unwrap();
        let _ = receiver
            .grew
            .wait_timeout(guard, Duration::from_millis(100))
            .unwrap();
    }
    first.kill9();
    drop(first);

    // Restart: every event is delivered, each id at least once.
    open.store(true, Ordering::SeqCst);
    gate.1.notify_all();
    let second = Hub::start_in(&dir, &[], true);
    let seen = receiver.wait("100 distinct deliveries", T, |s| {
        s.iter()
            .filter_map(|r| r.header("webhook-id"))
            .collect::<BTreeSet<_>>()
            .len()
            >= 100
    });
    let mut by_job: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in &seen {
        verify(&secret, r);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        by_job
            .entry(body["data"]["job_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(r.header("webhook-id").unwrap().to_string());
    }
    assert_eq!(
        by_job.keys().cloned().collect::<BTreeSet<_>>(),
        jobs,
        "one event per job"
    );
    assert!(
        by_job.values().all(|ids| ids.len() == 1),
        "a stable id per event"
    );
    let deadline = Instant::now() + T;
    loop {
        let s = second.get(&format!("/api/admin/webhooks/{sub}")).json();
        if s["deliveries"]["delivered"] == 100 {
            assert_eq!(s["deliveries"]["pending"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        second.get("/api/events?wait=1&since=999999999");
    }
}

#[test]
fn outbound_printer_events_report_problems_media_and_are_audited() {
    let receiver = Fake::start(Arc::new(|_: &Seen| (204, Vec::new())));
    let hub = Hub::start_env(&[("PRINTER_HUB_STATUS_POLL_S", "1")]);
    let (sub, secret) = subscribe(
        &hub,
        &format!("{}/printers", receiver.base),
        &["printer.needs_attention", "printer.media_changed"],
    );
    // A printer whose cover is open: its first status poll reports the
    // loaded tape and the problem.
    hub.emulator_fault("cover", "cover_open");
    let printer = add_printer(&hub, "cover", "emulator:?media=12&speed=instant");
    let seen = receiver.wait("printer events", T, |s| {
        let types: BTreeSet<String> = s
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        types.contains("printer.needs_attention") && types.contains("printer.media_changed")
    });
    for r in &seen {
        verify(&secret, r);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["data"]["printer_id"], printer["id"]);
        match body["type"].as_str().unwrap() {
            "printer.needs_attention" => assert_eq!(body["data"]["problem"], "cover_open"),
            "printer.media_changed" => assert_eq!(body["data"]["to"], "12"),
            other => panic!("unexpected {other}"),
        }
    }

    // Subscription changes are in the audit log, without the secret.
    let r = hub.request(
        "PATCH",
        &format!("/api/admin/webhooks/{sub}"),
        Some(br#"{"description": "ops"}"#),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        hub.request("DELETE", &format!("/api/admin/webhooks/{sub}"), None, &[])
            .status,
        204
    );
    let audit = hub.get("/api/admin/audit?target_type=webhook").json();
    let actions = audit_actions(&audit);
    assert_eq!(
        actions,
        ["webhook.delete", "webhook.update", "webhook.create"]
    );
    assert!(
        !audit.to_string().contains(&secret),
        "no secret in the audit log"
    );
    assert_eq!(audit["items"][1]["after"]["description"], "ops");
}

#[test]
fn a_dead_subscriber_is_held_and_does_not_delay_the_others() {
    let receiver = Fake::start(Arc::new(|r: &Seen| {
        if r.url == "/dead" {
            (500, b"down".to_vec())
        } else {
            (200, b"{}".to_vec())
        }
    }));
    // After the first failure the dead subscriber waits a minute.
    let hub = Hub::start_env(&[("PRINTER_HUB_WEBHOOK_RETRY_BASE_MS", "60000")]);
    let (dead, _) = subscribe(&hub, &format!("{}/dead", receiver.base), &["job.done"]);
    subscribe(&hub, &format!("{}/live", receiver.base), &["job.done"]);
    for i in 0..5 {
        let r = hub.post("/print", &label(&format!("h{i}"))).json();
        hub.wait_job(r["job_id"].as_str().unwrap(), T, |j| j["state"] == "done");
    }
    let seen = receiver.wait("5 live deliveries", T, |s| {
        s.iter().filter(|r| r.url == "/live").count() >= 5
    });
    assert_eq!(
        seen.iter().filter(|r| r.url == "/dead").count(),
        1,
        "one attempt, then the dead subscriber is held"
    );
    let s = hub.get(&format!("/api/admin/webhooks/{dead}")).json();
    assert_eq!(s["deliveries"]["pending"], 5, "{s}");
    assert_eq!(s["last_delivery"]["status"], "retrying");
    assert_eq!(s["last_delivery"]["http_status"], 500);
    assert!(s["last_delivery"]["retry_at"].is_string(), "{s}");
}
