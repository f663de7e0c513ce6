//! Faults: write faults while printing, storage fault answers and
//! readiness, a deleted or replaced database, a real file-size limit, wall
//! clock steps, and the small defects (retry onto a disabled printer,
//! printer name characters, an empty allow-list, a removed emulator output
//! directory). Every test drives the real binary.
//!
//! Write faults come from the test seam `LABELHUB_TEST_STORAGE_FAULT` (a
//! control file: `full`, `readonly`, `ioerr`), for deterministic lengths,
//! and from a real RLIMIT_FSIZE set on the running hub with `prlimit`.
//! Clock steps come from `LABELHUB_TEST_CLOCK_OFFSET_FILE`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::hub::add_printer;
use crate::support::{decode_qr, label, temp_dir, Client, Hub, Resp};

const T: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 86_400_000;

fn qr_label(name: &str) -> Value {
    json!({"content_type": "qr_only", "data": {"qr_payload": name}})
}

/// The invariant, checked on the database itself after every step: at
/// most one job per printer is `printing`.
fn assert_one_printing(hub: &Hub) {
    let conn = rusqlite::Connection::open_with_flags(
        hub.data_dir.join("labelhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let doubles: Vec<(String, i64)> = conn
        .prepare(
            "SELECT printer_id, count(*) FROM jobs WHERE state = 'printing'
             GROUP BY printer_id HAVING count(*) > 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(doubles.is_empty(), "two jobs printing at once: {doubles:?}");
}

/// Polls `f` (a request each time) until it returns `Some`, with a deadline.
fn poll<R>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A hub whose storage fault control file is `<dir>/storage-fault`.
fn hub_with_fault_file(extra: &[(&str, &str)]) -> (Hub, PathBuf) {
    let dir = temp_dir("faults");
    let control = dir.join("storage-fault");
    set(&control, "");
    let mut env: Vec<(&str, &str)> =
        vec![("LABELHUB_TEST_STORAGE_FAULT", control.to_str().unwrap())];
    env.extend_from_slice(extra);
    let hub = Hub::start_in(&dir, &env, true);
    (hub, control)
}

fn readiness(hub: &Hub) -> (u16, Value) {
    let r = hub.get("/readiness");
    (r.status, r.json())
}

fn problem(r: &Resp) -> (u16, String, Option<String>) {
    let body = r.json();
    (
        r.status,
        body["error_code"].as_str().unwrap_or("").to_string(),
        r.header("retry-after").map(str::to_string),
    )
}

fn job_states(hub: &Hub, batch: &str) -> Vec<String> {
    let snap = hub.get(&format!("/api/batches/{batch}")).json();
    snap["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap().to_string())
        .collect()
}

/// The target: after a write fault of any length, every accepted job is
/// terminal within 30 s of the disk recovering, nothing prints twice and
/// nothing prints out of order. Fails on main: the label in flight stayed
/// `printing`, the rest of the batch stayed `queued` until a restart, and
/// the printer looked healthy meanwhile.
#[test]
fn a_write_fault_of_any_length_heals_within_30s_and_nothing_prints_twice() {
    let (hub, control) = hub_with_fault_file(&[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    add_printer(&hub, "slow", "emulator:?media=12&speed=60");
    let fault = |on: bool| set(&control, if on { "full" } else { "" });
    faults_mid_batch(&hub, &fault, (507, "storage_full"));
}

/// The same with a real fault: RLIMIT_FSIZE set with `prlimit` on the
/// running hub at the size its write-ahead log has, so every commit (which
/// appends to the log) fails with EFBIG. Fails on main: SIGXFSZ killed the
/// hub at the first write.
#[test]
fn a_real_write_fault_mid_batch_heals_and_nothing_prints_twice() {
    let hub = Hub::start_env(&[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    add_printer(&hub, "slow", "emulator:?media=12&speed=60");
    let wal = hub.data_dir.join("labelhub.db-wal");
    let pid = hub.pid();
    let fault = |on: bool| {
        let value = if on {
            format!("{}:", std::fs::metadata(&wal).unwrap().len())
        } else {
            "unlimited:".to_string()
        };
        prlimit_fsize(pid, &value);
    };
    faults_mid_batch(&hub, &fault, (503, "storage_unavailable"));
}

/// Sets the file size limit of a running process (util-linux `prlimit`).
fn prlimit_fsize(pid: u32, value: &str) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={value}")])
        .output()
        .expect("prlimit (util-linux) is installed by .ci/run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two rounds on printer `slow`: a batch of QR labels starts printing, the
/// fault starts (`fault(true)`), the printer must report storage_error, a
/// submission must get `expect`, readiness must fail; the fault lasts 0 s
/// then 8 s; after `fault(false)` every job must be terminal within 30 s.
/// At the end the printed QR codes are decoded: each label once, in order.
fn faults_mid_batch(hub: &Hub, fault: &dyn Fn(bool), expect: (u16, &str)) {
    let mut accepted: Vec<(String, String)> = Vec::new(); // (job id, name)
    let mut batches = Vec::new();
    // A short fault (healed as soon as it is seen) and an 8 s one.
    for (round, hold) in [(0, Duration::ZERO), (1, Duration::from_secs(8))] {
        let names: Vec<String> = (0..6).map(|i| format!("F{round}-B{i}")).collect();
        let items: Vec<Value> = names.iter().map(|n| qr_label(n)).collect();
        let r = hub.post("/api/print/slow/batch", &json!({"items": items}));
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
        let batch = r.json()["batch_id"].as_str().unwrap().to_string();
        for (id, name) in r.json()["job_ids"].as_array().unwrap().iter().zip(&names) {
            accepted.push((id.as_str().unwrap().to_string(), name.clone()));
        }
        batches.push(batch.clone());
        // Let the first label of the batch come out, then fill the disk.
        poll("a label done", T, || {
            assert_one_printing(hub);
            job_states(hub, &batch)
                .iter()
                .any(|s| s == "done")
                .then_some(())
        });
        fault(true);
        let status = poll("storage_error on the printer", T, || {
            assert_one_printing(hub);
            let s = hub.get("/api/printers/slow/status").json();
            (s["error_state"] == "storage_error").then_some(s)
        });
        assert_eq!(status["paused"], true, "{status}");
        assert!(status["storage_error"]
            .as_str()
            .unwrap()
            .starts_with(expect.1));
        let states = job_states(hub, &batch);
        assert!(
            states.iter().any(|s| s == "queued"),
            "labels wait: {states:?}"
        );
        // Submissions are refused with a retryable status meanwhile.
        let r = hub.post("/print", &{
            let mut b = qr_label("refused");
            b["printer"] = json!("slow");
            b
        });
        let (code, error, retry) = problem(&r);
        assert_eq!((code, error.as_str()), expect);
        assert!(retry.is_some(), "Retry-After");
        let (code, body) = readiness(hub);
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["status"], "not-ready");
        assert_eq!(body["checks"]["storage"]["status"], "fail", "{body}");
        // Pausing and resuming the printer meanwhile fails the same way.
        let r = hub.post_empty("/api/printers/slow/pause");
        assert_eq!(problem(&r).1, expect.1);
        assert_one_printing(hub);
        std::thread::sleep(hold); // the fault's length, not a synchronisation
        assert_one_printing(hub);
        fault(false);
        let healed = Instant::now();
        // A submission right after the disk is back must not print ahead
        // of the labels that waited.
        let late = format!("F{round}-late");
        let mut body = qr_label(&late);
        body["printer"] = json!("slow");
        let r = hub.post("/print", &body);
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
        let late_id = r.json()["job_id"].as_str().unwrap().to_string();
        accepted.push((late_id.clone(), late));
        let late_batch = hub.get(&format!("/api/jobs/{late_id}")).json()["batch_id"]
            .as_str()
            .unwrap()
            .to_string();
        poll("storage_error cleared", Duration::from_secs(30), || {
            let s = hub.get("/api/printers/slow/status").json();
            s["storage_error"].is_null().then_some(())
        });
        let resumed = healed.elapsed();
        for b in [&batch, &late_batch] {
            poll("every job terminal", Duration::from_secs(30), || {
                assert_one_printing(hub);
                job_states(hub, b)
                    .iter()
                    .all(|s| {
                        ["done", "failed", "cancelled", "failed_restart"].contains(&s.as_str())
                    })
                    .then_some(())
            });
        }
        let took = healed.elapsed();
        eprintln!(
            "round {round}: fault held {hold:?}; printer resumed {resumed:?} and all jobs \
             terminal {took:?} after the disk recovered"
        );
        assert!(took < Duration::from_secs(30), "{took:?}");
        poll("ready again", Duration::from_secs(10), || {
            let (code, body) = readiness(hub);
            (code == 200 && body["checks"]["storage"]["status"] == "ok").then_some(())
        });
        let s = hub.get("/api/printers/slow/status").json();
        assert_eq!(s["storage_error"], Value::Null, "{s}");
        assert_one_printing(hub);
    }
    // Every label done, each printed exactly once, in submission order.
    for (id, name) in &accepted {
        let job = hub.get(&format!("/api/jobs/{id}")).json();
        assert_eq!(job["state"], "done", "{name}: {job}");
    }
    let printed: Vec<String> = hub.pngs("slow").iter().map(|p| decode_qr(p)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for n in &printed {
        *count.entry(n.as_str()).or_default() += 1;
    }
    assert!(
        count.values().all(|c| *c == 1),
        "printed twice: {printed:?}"
    );
    let expected: Vec<String> = accepted.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(printed, expected);
    assert!(hub.log_text().contains("the database takes writes again"));
}

/// Fails on main: a full disk answered 500 `database_error` and readiness
/// stayed `ready`.
#[test]
fn storage_faults_answer_507_or_503_with_retry_after_and_readiness_says_why() {
    let (hub, control) = hub_with_fault_file(&[]);
    for (fault, status, code) in [
        ("full", 507, "storage_full"),
        ("readonly", 503, "storage_unavailable"),
        ("ioerr", 503, "storage_unavailable"),
    ] {
        set(&control, fault);
        let r = hub.post("/print", &label("x"));
        let (s, c, retry) = problem(&r);
        assert_eq!((s, c.as_str()), (status, code), "{fault}");
        assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
        let batch = hub.post(
            "/api/print/demo/batch",
            &json!({"items": [label("a"), label("b")]}),
        );
        assert_eq!(problem(&batch).1, code);
        let (s, body) = readiness(&hub);
        assert_eq!(s, 503, "{body}");
        assert_eq!(body["status"], "not-ready");
        let detail = body["checks"]["storage"]["detail"].as_str().unwrap();
        assert!(detail.starts_with(code), "{detail}");
        set(&control, "");
        poll("ready again", Duration::from_secs(10), || {
            (readiness(&hub).0 == 200).then_some(())
        });
        let r = hub.post("/print", &label("ok"));
        assert_eq!(r.status, 202);
        let id = r.json()["job_id"].as_str().unwrap().to_string();
        hub.wait_job(&id, T, |j| j["state"] == "done");
    }
}

/// Fails on main: after the database file was deleted the hub answered 202
/// and `ready`, and everything accepted was gone after a restart.
#[test]
fn a_deleted_or_replaced_database_stops_writes_with_a_loud_error() {
    for replace in [false, true] {
        let hub = Hub::start();
        let r = hub.post("/print", &label("before"));
        assert_eq!(r.status, 202);
        let id = r.json()["job_id"].as_str().unwrap().to_string();
        hub.wait_job(&id, T, |j| j["state"] == "done");
        let db = hub.data_dir.join("labelhub.db");
        if replace {
            let copy = hub.data_dir.join("copy.db");
            std::fs::copy(&db, &copy).unwrap();
            std::fs::rename(&copy, &db).unwrap();
        } else {
            std::fs::remove_file(&db).unwrap();
        }
        let r = hub.post("/print", &label("after"));
        let (s, c, retry) = problem(&r);
        assert_eq!(
            (s, c.as_str()),
            (503, "storage_replaced"),
            "replace={replace}"
        );
        assert!(retry.is_some());
        let (s, body) = readiness(&hub);
        assert_eq!(s, 503);
        let detail = body["checks"]["storage"]["detail"].as_str().unwrap();
        assert!(detail.starts_with("storage_replaced"), "{detail}");
        assert!(
            detail.contains(if replace { "replaced" } else { "is gone" }),
            "{detail}"
        );
        assert!(hub.wait_log("STORAGE:", Duration::from_secs(5)).is_some());
        // It stays refused.
        assert_eq!(
            problem(&hub.post("/print", &label("again"))).1,
            "storage_replaced"
        );
    }
}

/// A real write fault: RLIMIT_FSIZE set on the running hub with `prlimit`
/// makes SQLite's writes past the write-ahead log's current end fail with
/// EFBIG (the hub turns SIGXFSZ into an error). Fails on main: the hub was
/// killed by SIGXFSZ (or answered 500 `database_error`).
#[test]
fn a_real_file_size_limit_is_a_retryable_storage_fault_that_heals() {
    let hub = Hub::start();
    let r = hub.post("/print", &label("before"));
    assert_eq!(r.status, 202);
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
    let wal = hub.data_dir.join("labelhub.db-wal");
    let size = std::fs::metadata(&wal).unwrap().len();
    let pid = hub.pid();
    let limit = |value: &str| prlimit_fsize(pid, value);
    limit(&format!("{size}:"));
    let r = hub.post("/print", &label("refused"));
    let (s, c, retry) = problem(&r);
    assert_eq!(
        (s, c.as_str()),
        (503, "storage_unavailable"),
        "{}",
        hub.log_text()
    );
    assert!(retry.is_some());
    assert_eq!(readiness(&hub).0, 503);
    limit("unlimited:");
    poll("ready again", Duration::from_secs(10), || {
        (readiness(&hub).0 == 200).then_some(())
    });
    let r = hub.post("/print", &label("after"));
    assert_eq!(r.status, 202);
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
}

/// Waits for the retention run that starts after now (the thread logs
/// `retention: run N done` at debug level).
fn wait_retention_run(hub: &Hub) {
    let runs = hub.log_text().matches("retention: run ").count();
    poll("a retention run", T, || {
        (hub.log_text().matches("retention: run ").count() > runs + 1).then_some(())
    });
}

/// A hub whose wall clock is the system clock plus `<dir>/clock-offset`.
fn hub_with_clock(dir: &Path, offset: i64) -> (Hub, PathBuf) {
    let file = dir.join("clock-offset");
    set(&file, &offset.to_string());
    let hub = Hub::start_in(
        dir,
        &[
            ("LABELHUB_TEST_CLOCK_OFFSET_FILE", file.to_str().unwrap()),
            ("PRINTER_HUB_RETENTION_INTERVAL_S", "1"),
        ],
        true,
    );
    (hub, file)
}

fn post_idem(hub: &Hub, key: &str, body: &Value) -> Resp {
    hub.request(
        "POST",
        "/print",
        Some(body.to_string().as_bytes()),
        &[("Idempotency-Key", key)],
    )
}

/// Everything about one printed label still answers, and a retry with its
/// Idempotency-Key is recognised (no second print).
fn assert_fresh_label_kept(hub: &Hub, key: &str, body: &Value, first: &Value) {
    let job_id = first["job_id"].as_str().unwrap();
    let batch_id = first["batch_id"].as_str().unwrap();
    assert_eq!(hub.get(&format!("/api/jobs/{job_id}")).status, 200);
    assert_eq!(hub.get(&format!("/api/batches/{batch_id}")).status, 200);
    let feed = hub.get("/api/events?since=0").json();
    assert!(
        feed["events"].as_array().is_some_and(|e| !e.is_empty()),
        "the event feed was emptied: {feed}"
    );
    let again = post_idem(hub, key, body);
    assert_eq!(again.status, 202);
    assert_eq!(
        again.json()["batch_id"],
        first["batch_id"],
        "replayed, not a new batch"
    );
}

/// Fails on main (no jump is seen there; with a real step the labels
/// printed seconds earlier answered 404 and the retry printed again).
#[test]
fn a_31_day_forward_step_keeps_fresh_labels_and_recognises_retries() {
    let dir = temp_dir("clock");
    let (hub, offset) = hub_with_clock(&dir, 0);
    let body = label("before the step");
    let first = post_idem(&hub, "step-31", &body);
    assert_eq!(first.status, 202);
    let first = first.json();
    hub.wait_job(first["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    set(&offset, &(31 * DAY_MS).to_string());
    let line = hub
        .wait_log("clock jump", Duration::from_secs(30))
        .expect("jump logged");
    assert!(line.contains("WARN") || line.contains("warn"), "{line}");
    assert!(line.contains("forward"), "{line}");
    wait_retention_run(&hub);
    assert_fresh_label_kept(&hub, "step-31", &body, &first);
    let n_pngs = hub.pngs("demo").len();
    assert_eq!(n_pngs, 1, "printed once");
}

/// The Pi without a hardware clock: the hub starts in 1970, prints, then
/// NTP steps the clock to now. Fails on main (there the purge after the
/// step deleted the label, its batch and the feed, and the retry printed
/// again).
#[test]
fn a_start_in_1970_then_a_step_to_now_keeps_fresh_labels_and_recognises_retries() {
    let dir = temp_dir("clock1970");
    // A first run at the right time leaves rows stamped now.
    let (mut hub, offset) = hub_with_clock(&dir, 0);
    let r = hub.post("/print", &label("earlier run"));
    assert_eq!(r.status, 202);
    hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    set(&offset, &(60_000 - now).to_string()); // 1970-01-01T00:01
    hub.restart_after_kill();
    let body = label("printed in 1970");
    let first = post_idem(&hub, "k-1970", &body);
    assert_eq!(first.status, 202);
    let first = first.json();
    let job = hub.wait_job(first["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert!(
        job["created_at"].as_str().unwrap().starts_with("1970"),
        "{job}"
    );
    assert!(
        hub.wait_log("is earlier than the newest row", T).is_some(),
        "retention refuses to purge on a clock earlier than the rows"
    );
    set(&offset, "0"); // NTP
    assert!(hub
        .wait_log("clock jump", Duration::from_secs(30))
        .is_some());
    wait_retention_run(&hub);
    assert_fresh_label_kept(&hub, "k-1970", &body, &first);
    assert_eq!(hub.pngs("demo").len(), 2, "each label printed once");
}

/// Fails on main: 201 `queued` (and the job waited for the printer).
#[test]
fn a_retry_onto_a_disabled_printer_answers_409() {
    let hub = Hub::start();
    let r = hub.post("/print", &label("once"));
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
    assert_eq!(
        hub.post_empty("/api/v1/admin/printers/demo/disable").status,
        200
    );
    let r = hub.post_empty(&format!("/api/jobs/{id}/retry"));
    assert_eq!(problem(&r).0, 409, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(problem(&r).1, "printer_disabled");
    let mut body = label("direct");
    body["printer"] = json!("demo");
    let r = hub.post("/print", &body);
    assert_eq!(
        problem(&r),
        (409, "printer_disabled".to_string(), None),
        "as /print"
    );
}

/// Fails on main: newlines, a bidi override, BEL and a lone zero-width
/// space were accepted as printer names.
#[test]
fn printer_names_follow_the_key_name_rules() {
    let hub = Hub::start();
    let create = |name: &str, slug: &str| {
        hub.post(
            "/api/v1/admin/printers",
            &json!({"name": name, "slug": slug, "model": "PT-P750W",
                    "connection": {"uri": "emulator:?media=12&speed=instant"}}),
        )
    };
    for (i, bad) in [
        "two\nlines",
        "\u{202E}evil",
        "bell\u{7}",
        "\u{200B}",
        "  ",
        "",
    ]
    .iter()
    .enumerate()
    {
        let r = create(bad, &format!("bad-{i}"));
        assert_eq!(
            r.status,
            422,
            "{bad:?}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(r.json()["error_detail"]["field"], "name", "{bad:?}");
        // The same name is refused for an API key.
        let k = hub.post(
            "/api/admin/api-keys",
            &json!({"name": bad, "scopes": ["read"]}),
        );
        assert_eq!(k.status, 422, "key {bad:?}");
    }
    assert_eq!(
        create("Kitchen (2nd floor) – Ünïcode", "kitchen").status,
        201
    );
    let r = hub.request(
        "PUT",
        "/api/v1/admin/printers/kitchen",
        Some(json!({"name": "x\u{2066}y"}).to_string().as_bytes()),
        &[],
    );
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.bytes));
}

/// Fails on main: `allowed_printer_ids: []` silently meant "every printer".
#[test]
fn an_empty_printer_allow_list_is_refused_and_null_means_every_printer() {
    let hub = Hub::start();
    let printer = hub.get("/api/printers").json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "empty", "scopes": ["print"], "allowed_printer_ids": []}),
    );
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("null"),
        "{}",
        r.json()
    );
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "one", "scopes": ["print"], "allowed_printer_ids": [printer]}),
    );
    assert_eq!(r.status, 201);
    let key = r.json()["key_id"].as_str().unwrap().to_string();
    let patch = |body: Value| {
        hub.request(
            "PATCH",
            &format!("/api/admin/api-keys/{key}"),
            Some(body.to_string().as_bytes()),
            &[],
        )
    };
    let r = patch(json!({"allowed_printer_ids": []}));
    assert_eq!(r.status, 422);
    assert!(r.json()["detail"].as_str().unwrap().contains("null"));
    // Absent: unchanged.
    let r = patch(json!({"notes": "n"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["allowed_printer_ids"], json!([printer]));
    // null: every printer.
    let r = patch(json!({"allowed_printer_ids": null}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["allowed_printer_ids"], json!([]));
    // Creating without the field (or with null) is every printer too.
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "all", "scopes": ["print"], "allowed_printer_ids": null}),
    );
    assert_eq!(r.status, 201);
}

/// Fails on main: the printer paused and stayed paused until someone made
/// the directory again by hand.
#[test]
fn a_removed_emulator_output_directory_is_recreated() {
    let hub = Hub::start();
    let r = hub.post("/print", &label("one"));
    hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    let out = hub.data_dir.join("emulator").join("demo");
    std::fs::remove_dir_all(&out).unwrap();
    let r = hub.post("/print", &label("two"));
    assert_eq!(r.status, 202);
    hub.wait_job(r.json()["job_id"].as_str().unwrap(), T, |j| {
        j["state"] == "done"
    });
    assert_eq!(
        hub.pngs("demo").len(),
        1,
        "the new label in the new directory"
    );
    let p = hub.get("/api/printers/demo/status").json();
    assert_eq!(p["paused"], false, "{p}");
    assert!(hub.log_text().contains("was missing; recreated it"));
}
