//! Bounded by design: queue quotas, `label_too_long`, paged lists with
//! cursor continuity (these in this process), the preview pool, and stored
//! bitmaps (compressed, one per item, converted from an older database),
//! against the real binary. Memory and time figures are in
//! `cargo bench --bench quotas`, not here.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::inproc::InHub;
use crate::support::{label, temp_dir, Client, Hub};

const T: Duration = Duration::from_secs(60);

fn body(r: &crate::support::Resp) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

fn create_key(hub: &impl Client, name: &str, scope: &str) -> String {
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": name, "scopes": [scope]}),
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    r.json()["plaintext"].as_str().unwrap().to_string()
}

fn batch(n: usize, copies: u32) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"content_type": "text_one_line", "data": {"primary_id": format!("Q{i}")},
                   "options": {"copies": copies}})
        })
        .collect();
    json!({ "items": items })
}

fn post_as(hub: &impl Client, key: &str, path: &str, v: &Value) -> crate::support::Resp {
    hub.request(
        "POST",
        path,
        Some(v.to_string().as_bytes()),
        &[("X-Label-Hub-Key", key)],
    )
}

fn db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data_dir.join("labelhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// Finding: a print key could queue 340,000 labels at the default rate.
/// Now waiting labels are capped per key and per printer: 429 with a
/// stable code and `Retry-After`, nothing of the refused batch stored.
#[test]
fn queue_quotas_answer_429_per_key_and_per_printer() {
    let hub = InHub::start_env(&[
        ("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", "30"),
        ("PRINTER_HUB_MAX_QUEUED_PER_KEY", "20"),
    ]);
    assert_eq!(hub.post_empty("/api/printers/demo/pause").status, 204);
    let a = create_key(&hub, "a", "print");
    let b = create_key(&hub, "b", "print");
    let path = "/api/print/demo/batch";
    let r = post_as(&hub, &a, path, &batch(5, 3));
    assert_eq!(r.status, 202, "{}", body(&r));
    // 15 waiting for key a: 6 more pass the key's 20.
    let r = post_as(&hub, &a, path, &batch(2, 3));
    assert_eq!(r.status, 429, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "key_queue_full");
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["detail"].as_str().unwrap().contains("20"));
    // Key b has its own 20, but the printer holds 30.
    let r = post_as(&hub, &b, path, &batch(5, 2));
    assert_eq!(r.status, 202, "{}", body(&r));
    let r = post_as(&hub, &b, "/print", &label("one too many? no: 26"));
    assert_eq!(r.status, 202, "{}", body(&r));
    let r = post_as(&hub, &b, path, &batch(5, 1));
    assert_eq!(r.status, 429, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "printer_queue_full");
    assert!(r.header("retry-after").is_some());
    let n: i64 = db(&hub.data_dir)
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 26, "refused batches stored nothing");
    // Cancelling frees the quota.
    assert_eq!(hub.post_empty("/api/printers/demo/queue/clear").status, 204);
    let r = post_as(&hub, &a, path, &batch(2, 3));
    assert_eq!(r.status, 202, "{}", body(&r));
}

/// The same with the defaults: one key cannot queue more than 10,000
/// labels (two full batches of 500 x 10 fit, the third does not).
#[test]
fn default_quota_stops_one_key_at_ten_thousand_waiting_labels() {
    let hub = InHub::start();
    assert_eq!(hub.post_empty("/api/printers/demo/pause").status, 204);
    let key = create_key(&hub, "greedy", "print");
    for _ in 0..2 {
        let r = post_as(&hub, &key, "/api/print/demo/batch", &batch(500, 10));
        assert_eq!(r.status, 202, "{}", body(&r));
    }
    let r = post_as(&hub, &key, "/api/print/demo/batch", &batch(1, 1));
    assert_eq!(r.status, 429, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "key_queue_full");
}

/// Finding: a 200-character typo on 12 mm tape was accepted as a 990 mm
/// label. Now the printer's `max_length_mm` (default 500) refuses it with
/// 422 `label_too_long` naming the length; an admin can raise it up to the
/// model's limit.
#[test]
fn a_label_longer_than_max_length_mm_is_refused_with_its_length() {
    let hub = InHub::start();
    let typo = json!({"content_type": "text_one_line", "data": {"primary_id": "W".repeat(200)}});
    let r = hub.post("/print", &typo);
    assert_eq!(r.status, 422, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["error_code"], "label_too_long");
    let mm = v["error_detail"]["length_mm"].as_i64().unwrap();
    assert!(mm > 500, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains(&format!("{mm} mm")),
        "{v}"
    );
    assert_eq!(v["error_detail"]["max_length_mm"], 500);
    // In a batch the item is named.
    let r = hub.post(
        "/api/print/demo/batch",
        &json!({"items": [{"content_type": "text_one_line", "data": {"primary_id": "ok"}}, typo]}),
    );
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "label_too_long");
    assert!(r.json()["detail"].as_str().unwrap().starts_with("items[1]"));
    assert_eq!(
        hub.get("/api/jobs").json().as_array().unwrap().len(),
        0,
        "nothing of the batch was stored"
    );
    // The admin field: shown, bounded by the model, and raising it lets
    // the label through.
    let p = hub.get("/api/v1/admin/printers/demo").json();
    assert_eq!(p["max_length_mm"], 500);
    let r = hub.put(
        "/api/v1/admin/printers/demo",
        &json!({"max_length_mm": 100_000}),
    );
    assert_eq!(r.status, 422, "{}", body(&r));
    let r = hub.put(
        "/api/v1/admin/printers/demo",
        &json!({"max_length_mm": 1000}),
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["max_length_mm"], 1000);
    let r = hub.post("/print", &typo);
    assert_eq!(r.status, 202, "{}", body(&r));
    // A short label stays refused when the limit is set below it.
    let r = hub.put("/api/v1/admin/printers/demo", &json!({"max_length_mm": 5}));
    assert_eq!(r.status, 200, "{}", body(&r));
    let r = hub.post("/print", &label("Hello"));
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "label_too_long");
}

/// Follows `X-Next-Cursor` from `first` to the end; returns every item.
fn walk(hub: &impl Client, first: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut path = first.to_string();
    loop {
        let r = hub.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", body(&r));
        assert!(r.bytes.len() < 1 << 20);
        pages += 1;
        items.extend(r.json().as_array().unwrap().iter().cloned());
        match r.header("x-next-cursor") {
            Some(c) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!("{first}{sep}cursor={c}");
            }
            None => break,
        }
        assert!(pages < 100, "the cursor must advance");
    }
    (items, pages)
}

/// Finding: `GET /api/printers/{id}/queue` returned every waiting job
/// (427 MB for 400,000). Now every list is paged: bounded `limit`,
/// opaque cursors that continue without gaps or repeats.
#[test]
fn lists_are_paged_and_cursors_continue_without_gaps() {
    let hub = InHub::start();
    assert_eq!(hub.post_empty("/api/printers/demo/pause").status, 204);
    let r = hub.post("/api/print/demo/batch", &batch(60, 5));
    assert_eq!(r.status, 202, "{}", body(&r));
    let batch_id = r.json()["batch_id"].as_str().unwrap().to_string();
    let ids: Vec<String> = db(&hub.data_dir)
        .prepare("SELECT id FROM jobs ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids.len(), 300);

    // The queue: default page 100, queue order, continuity.
    let r = hub.get("/api/printers/demo/queue");
    assert_eq!(r.json().as_array().unwrap().len(), 100);
    assert!(r.header("x-next-cursor").is_some());
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    let (items, pages) = walk(&hub, "/api/printers/demo/queue?limit=70");
    assert_eq!(pages, 5);
    let got: Vec<&str> = items.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        hub.get("/api/printers/demo/queue?limit=201").json()["error_code"],
        "validation_error"
    );
    assert_eq!(hub.get("/api/printers/demo/queue?limit=0").status, 422);

    // Jobs: newest first, the same continuity.
    let (items, _) = walk(&hub, &format!("/api/jobs?batch_id={batch_id}&limit=45"));
    let got: HashSet<&str> = items.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(items.len(), 300);
    assert_eq!(got.len(), 300);
    assert_eq!(hub.get("/api/jobs?limit=201").status, 422);

    // A cursor of one list is refused by another.
    let c = hub
        .get("/api/jobs?limit=1")
        .header("x-next-cursor")
        .unwrap()
        .to_string();
    let r = hub.get(&format!("/api/printers/demo/queue?cursor={c}"));
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["error_code"], "invalid_cursor");

    // Events: bounded limit, `next` continues.
    assert_eq!(hub.get("/api/events?since=0&limit=501").status, 422);
    let mut since = 0;
    let mut seen = 0;
    loop {
        let v = hub
            .get(&format!("/api/events?since={since}&limit=128"))
            .json();
        let n = v["events"].as_array().unwrap().len();
        seen += n;
        if n == 0 {
            break;
        }
        since = v["next"].as_i64().unwrap();
    }
    assert!(seen >= 300, "{seen}");

    // The audit log is paged too (auth's `limit` / `before_id`).
    assert_eq!(hub.get("/api/admin/audit?limit=100000").status, 422);
}

/// A noisy grey PNG of about `kib` KiB, base64 (an upload that does not
/// compress).
fn noisy_png_b64(side: u32) -> String {
    let mut x: u32 = 12345;
    let img = image::GrayImage::from_fn(side, side, |_, _| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        image::Luma([(x >> 16) as u8])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    labelhub::base64::encode(&png.into_inner())
}

/// Jobs carrying big uploads: a page stops before 512 KiB of JSON (one
/// item always fits), so no answer (and no read) grows with `limit`.
#[test]
fn pages_of_jobs_with_big_uploads_stay_bounded_in_bytes() {
    let hub = Hub::start();
    assert_eq!(hub.post_empty("/api/printers/demo/pause").status, 204);
    let image = noisy_png_b64(560);
    assert!(image.len() > 300 * 1024, "{}", image.len());
    let items: Vec<Value> = (0..4)
        .map(|_| json!({"content_type": "image", "data": {"image": image}}))
        .collect();
    let r = hub.post("/api/print/demo/batch", &json!({"items": items}));
    assert_eq!(r.status, 202, "{}", body(&r));
    for first in ["/api/jobs?limit=200", "/api/printers/demo/queue?limit=200"] {
        let (items, pages) = walk(&hub, first);
        assert_eq!(items.len(), 4, "{first}");
        assert!(pages >= 2, "{first}: cut by bytes, not by limit");
    }
}

fn big_preview() -> Value {
    // The longest label the widest QL medium takes: a 3 m text preview.
    json!({"model": "QL-1100", "media": "102", "content_type": "text_one_line",
           "data": {"primary_id": "W".repeat(200)}})
}

/// Finding: 16 connections of big previews from one read key slowed
/// another key's /print to 1.1-1.7 s. Now previews render on a bounded
/// pool with a per-key limit; beyond it: 429 `preview_busy` at once.
#[test]
fn previews_beyond_the_pool_answer_429_preview_busy() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_PREVIEW_CONCURRENCY", "2"),
        ("PRINTER_HUB_PREVIEW_PER_KEY", "1"),
    ]);
    let reader = create_key(&hub, "reader", "read");
    let body_bytes = big_preview().to_string();
    let barrier = std::sync::Barrier::new(6);
    let answers: Vec<(u16, Option<String>, Option<String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let (hub, reader, body_bytes, barrier) = (&hub, &reader, &body_bytes, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let r = hub.request(
                        "POST",
                        "/api/render/preview",
                        Some(body_bytes.as_bytes()),
                        &[("X-Label-Hub-Key", reader.as_str())],
                    );
                    let code = (r.status != 200).then(|| r.json()["error_code"].to_string());
                    (r.status, code, r.header("retry-after").map(str::to_string))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(ok + busy.len(), 6, "{answers:?}");
    assert!(ok >= 1, "{answers:?}");
    assert!(
        !busy.is_empty(),
        "one key cannot render 6 at once: {answers:?}"
    );
    for b in &busy {
        assert_eq!(b.1.as_deref(), Some("\"preview_busy\""));
        assert_eq!(b.2.as_deref(), Some("1"));
    }
    // Printing is not held up by previews: /print answers while another
    // key's previews run, and the slots are free again afterwards.
    let r = hub.post("/print", &label("still printing"));
    assert_eq!(r.status, 202);
    let r = hub.request(
        "POST",
        "/api/render/preview",
        Some(
            json!({"content_type": "text_one_line", "data": {"primary_id": "x"}})
                .to_string()
                .as_bytes(),
        ),
        &[("X-Label-Hub-Key", reader.as_str())],
    );
    assert_eq!(r.status, 200, "{}", body(&r));
}

/// Findings: every copy stored its own bitmap, uncompressed (1 GB of
/// database for one big batch). Now one compressed row per item; copies
/// and retries point at it, a 62 mm x 100 mm label stores in < 20 KB, and
/// the labels still print.
#[test]
fn copies_share_one_compressed_bitmap_and_still_print() {
    let hub = Hub::start();
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "ql62", "slug": "ql62", "model": "QL-820NWB",
                "connection": {"uri": "emulator:?media=62x100&speed=instant"}}),
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    let items: Vec<Value> = (0..3)
        .map(|i| {
            json!({"content_type": "qr_three_lines",
                   "data": {"qr_payload": format!("https://example.org/item/{i}"), "primary_id": format!("A-{i}"),
                            "title": "Cable box, USB-C", "secondary": ["Shelf 3 / bin 12"]},
                   "options": {"copies": 4}})
        })
        .collect();
    let r = hub.post("/api/print/ql62/batch", &json!({"items": items}));
    assert_eq!(r.status, 202, "{}", body(&r));
    let batch_id = r.json()["batch_id"].as_str().unwrap().to_string();
    let b = wait_all_done(&hub, &batch_id);
    assert_eq!(hub.pngs("ql62").len(), 12);
    let conn = db(&hub.data_dir);
    let (rows, distinct, max_len, width, height): (i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM bitmaps), count(DISTINCT j.bitmap_id), max(length(b.black)),
                    max(b.width), max(b.height)
               FROM jobs j JOIN bitmaps b ON b.id = j.bitmap_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct), (3, 3), "one stored bitmap per item");
    assert_eq!((width, height), (1109, 696), "62 x 100 mm");
    assert!(max_len < 20_000, "stored {max_len} bytes for one label");
    // A retry shares the row too.
    let job = b["jobs"][0]["id"].as_str().unwrap().to_string();
    let r = hub.post_empty(&format!("/api/jobs/{job}/retry"));
    assert!(r.status == 201 || r.status == 202, "{}", body(&r));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM bitmaps", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
}

/// A database of the previous schema (bitmaps on every job row, raw) is
/// converted when the new binary opens it: one compressed row per item,
/// and its queued labels print.
#[test]
fn an_older_database_is_converted_and_its_queued_labels_print() {
    let dir = temp_dir("quotas-migrate");
    {
        let conn = rusqlite::Connection::open(dir.join("labelhub.db")).unwrap();
        conn.execute_batch(include_str!("../../sql/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../sql/0010_auth.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO printers (id, slug, name, model, uri, media, created_at, updated_at)
             VALUES ('p1', 'old', 'Old', 'PT-P750W', 'emulator:?media=12&speed=instant', '12', 0, 0);
             INSERT INTO batches (id, printer_id, n_jobs, created_at) VALUES ('b1', 'p1', 6, 0);",
        )
        .unwrap();
        // 12 mm tape on a PT-P750W: 70 dots across; 200 raster lines.
        let (w, h) = (200u32, 70u32);
        let stride = w.div_ceil(8) as usize;
        for pos in 0..2 {
            let mut bits = vec![0u8; stride * h as usize];
            for y in 10..60 {
                for x in (pos * 40 + 20)..(pos * 40 + 60) {
                    bits[y * stride + x / 8] |= 0x80 >> (x % 8);
                }
            }
            for copy in 0..3 {
                conn.execute(
                    "INSERT INTO jobs (id, printer_id, batch_id, position, copy_index, copy_total, state,
                         content_type, label_data, options, model, media, width, height, bitmap,
                         created_at, updated_at)
                     VALUES (?1, 'p1', 'b1', ?2, ?3, 3, 'queued', 'text_one_line', '{}', '{}',
                         'PT-P750W', '12', ?4, ?5, ?6, 0, 0)",
                    rusqlite::params![format!("j{pos}{copy}"), pos as i64, copy as i64, w, h, bits],
                )
                .unwrap();
            }
        }
    }
    let hub = Hub::start_in(&dir, &[], true);
    wait_all_done(&hub, "b1");
    assert_eq!(hub.pngs("old").len(), 6);
    let conn = db(&hub.data_dir);
    let (n, raw): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE encoding = 'raw') FROM bitmaps",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, raw), (2, 0), "one compressed row per item");
    let shared: i64 = conn
        .query_row(
            "SELECT count(DISTINCT bitmap_id) FROM jobs WHERE batch_id = 'b1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(shared, 2);
}

/// Waits for the batch to end, checks every one of its labels printed and
/// returns its last snapshot.
fn wait_all_done(hub: &Hub, batch_id: &str) -> Value {
    let b = hub.wait_batch(batch_id, T);
    let jobs = b["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{b}");
    b
}
