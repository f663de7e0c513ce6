//! `cargo bench --bench quotas`: the figures of issue 10, part 3 ("bounded
//! by design"), on the real binary over loopback.
//!
//! 1. Peak RSS (`VmHWM`) of the hub for the worst request the API allows:
//!    500 items x 10 copies of the longest label on the widest QL medium
//!    (QL-1100, 102 mm), each item a different text, with the default
//!    `max_length_mm` (500 mm) and with it raised to the model's limit
//!    (3 m); one request, then three at once. Baseline: the idle hub's
//!    peak measured in the same run, and the 961 MiB (one) and
//!    2.9 GB (three) on main.
//! 2. Database growth per stored 62 mm x 100 mm label (QL-820NWB, die-cut
//!    62x100), and per extra copy.
//! 3. A queue of 400,000 jobs (and 400,000 events): time and size of every
//!    list request, plus the peak RSS of eight concurrent queue pages.
//!
//! `cargo bench --bench quotas -- worst|db|lists` runs one part.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{temp_dir, Hub};

impl Hub {
    /// CPU time used so far (clock ticks).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    }

    /// Waits (bounded) until the process uses under 5% of a core.
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = self.cpu_ticks();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.cpu_ticks();
            if now - last <= 2 {
                return;
            }
            last = now;
        }
    }

    /// Peak resident set size so far.
    fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }

    fn add_printer(&self, slug: &str, model: &str, media: &str, dir: &Path, extra: Value) {
        let out = dir.join(format!("out-{slug}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut body = json!({"name": slug, "slug": slug, "model": model, "media": media,
            "connection": {"uri": format!("dir://{}?media={media}", out.display())}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, v, _) = self.call("POST", "/api/v1/admin/printers", Some(&body));
        assert_eq!(status, 201, "{v}");
        let (status, v, _) = self.call("POST", &format!("/api/printers/{slug}/pause"), None);
        assert_eq!(status, 204, "{v}");
    }
}

/// A small deterministic generator (different text per item).
struct Lcg(u64);

impl Lcg {
    fn text(&mut self, n: usize) -> String {
        self.text_of(n, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    }

    fn text_of(&mut self, n: usize, chars: &[u8]) -> String {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                chars[(self.0 >> 33) as usize % chars.len()] as char
            })
            .collect()
    }
}

/// The most characters of text whose `text_one_line` label on QL-1100 /
/// 102 mm is at most `max_mm` long (200 is the field's limit).
fn longest_text_chars(max_mm: f64) -> (usize, f64) {
    use labelhub::render::{self, ContentType, LabelData, Target};
    let target = Target::lookup("QL-1100", "102").unwrap();
    let dpi = f64::from(target.geometry.dpi_feed);
    let len = |n: usize| {
        // All `W` (the widest glyph): every mix of W and M of this many
        // characters is at most as long.
        let data = LabelData {
            primary_id: Some("W".repeat(n)),
            ..LabelData::default()
        };
        render::render(ContentType::TextOneLine, &data, &target)
            .map(|p| f64::from(p.black.width()) * 25.4 / dpi)
            .unwrap_or(f64::MAX)
    };
    let (mut lo, mut hi) = (1, 200);
    if len(hi) <= max_mm {
        return (hi, len(hi));
    }
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if len(mid) <= max_mm {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, len(lo))
}

fn worst_batch(chars: usize, seed: u64) -> Value {
    let mut g = Lcg(seed);
    let items: Vec<Value> = (0..500)
        .map(|_| {
            json!({"content_type": "text_one_line", "data": {"primary_id": g.text_of(chars, b"WM")},
                   "options": {"copies": 10}})
        })
        .collect();
    json!({ "items": items })
}

fn worst() {
    println!("## 1. Peak RSS of the worst request (500 items x 10 copies, QL-1100 102 mm)");
    println!("baseline (issue, main): 961 MiB for one request, 2.9 GB for three at once");
    for (max_mm, label) in [
        (500.0, "default max_length_mm 500"),
        (3000.0, "max_length_mm raised to the model's 3 m"),
    ] {
        let (chars, mm) = longest_text_chars(max_mm);
        for parallel in [1usize, 3] {
            let dir = temp_dir("worst");
            let hub = Hub::start(
                &dir,
                &[
                    ("PRINTER_HUB_DEMO_PRINTER", "false"),
                    ("PRINTER_HUB_MAX_QUEUED_PER_KEY", "1000000"),
                    ("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", "1000000"),
                ],
            );
            hub.add_printer(
                "wide",
                "QL-1100",
                "102",
                &dir,
                json!({"max_length_mm": max_mm as i64}),
            );
            let idle = hub.peak_mib();
            let bodies: Vec<Value> = (0..parallel)
                .map(|i| worst_batch(chars, 11 + i as u64))
                .collect();
            let body_mib = bodies[0].to_string().len() as f64 / (1 << 20) as f64;
            let t = Instant::now();
            std::thread::scope(|s| {
                let hub = &hub;
                let hs: Vec<_> = bodies
                    .iter()
                    .map(|b| s.spawn(move || hub.call("POST", "/api/print/wide/batch", Some(b))))
                    .collect();
                for h in hs {
                    let (status, v, _) = h.join().unwrap();
                    assert_eq!(status, 202, "{v}");
                }
            });
            let took = t.elapsed();
            let peak = hub.peak_mib();
            println!(
                "{label}: label {mm:.0} mm ({chars} chars), {parallel} request(s) at once \
                 (body {body_mib:.2} MiB each): peak RSS {peak:.1} MiB (idle peak {idle:.1} MiB), \
                 accepted in {:.1} s; ratio to main's {}: {:.3}",
                took.as_secs_f64(),
                if parallel == 1 { "961 MiB" } else { "2.9 GB" },
                peak / if parallel == 1 { 961.0 } else { 2.9 * 1024.0 }
            );
            hub.stop();
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}

/// Logical database size (pages in use, WAL included) in bytes.
fn db_bytes(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("labelhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let q = |p: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap()
    };
    (q("page_count") - q("freelist_count")) * q("page_size")
}

fn asset_batch(n: usize, copies: u32, seed: u64) -> Value {
    let mut g = Lcg(seed);
    let items: Vec<Value> = (0..n)
        .map(|_| {
            let id = g.text(6);
            json!({"content_type": "qr_three_lines", "options": {"copies": copies},
                   "data": {"qr_payload": format!("https://inventory.example.org/item/{id}"),
                            "primary_id": id, "title": format!("Cable box {}", g.text(8)),
                            "secondary": [format!("Shelf {} / bin {}", g.text(2), g.text(3))]}})
        })
        .collect();
    json!({ "items": items })
}

fn db_growth() {
    println!("\n## 2. Database growth per stored 62 mm x 100 mm label (QL-820NWB, 62x100)");
    let dir = temp_dir("db");
    let hub = Hub::start(&dir, &[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    hub.add_printer("ql62", "QL-820NWB", "62x100", &dir, json!({}));
    let s0 = db_bytes(&dir);
    let (status, v, _) = hub.call(
        "POST",
        "/api/print/ql62/batch",
        Some(&asset_batch(500, 1, 3)),
    );
    assert_eq!(status, 202, "{v}");
    let s1 = db_bytes(&dir);
    let (status, v, _) = hub.call(
        "POST",
        "/api/print/ql62/batch",
        Some(&asset_batch(50, 10, 5)),
    );
    assert_eq!(status, 202, "{v}");
    let s2 = db_bytes(&dir);
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("labelhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (rows, avg): (i64, f64) = conn
        .query_row(
            "SELECT count(*), avg(length(black)) FROM bitmaps",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // The packed 1109 x 696 bitmap before compression.
    let raw: i64 = 1109_u64.div_ceil(8) as i64 * 696;
    let per_label = (s1 - s0) as f64 / 500.0;
    let per_copy_batch = (s2 - s1) as f64 / 500.0;
    println!(
        "500 different labels: +{:.0} KiB, {per_label:.0} bytes per label (target < 20 KB; \
         uncompressed bitmap alone {raw} bytes, ratio {:.3})",
        (s1 - s0) as f64 / 1024.0,
        per_label / raw as f64
    );
    println!(
        "50 labels x 10 copies: +{:.0} KiB, {per_copy_batch:.0} bytes per label; \
         bitmap rows {rows} for 1000 labels (one per item), compressed bitmap {avg:.0} bytes on average",
        (s2 - s1) as f64 / 1024.0
    );
    println!(
        "so a copy adds {:.0} bytes (job row + event), no bitmap",
        ((s2 - s1) as f64 - 50.0 * (per_label)) / 450.0
    );
    hub.stop();
    std::fs::remove_dir_all(&dir).ok();
}

/// A data directory whose paused demo printer has `n` queued jobs (all
/// sharing one bitmap row) and one `job.created` event per job.
fn seed_queue(dir: &Path, n: usize) {
    let hub = Hub::start(dir, &[]);
    let (status, v, _) = hub.call("POST", "/api/printers/demo/pause", None);
    assert_eq!(status, 204, "{v}");
    let (status, v, _) = hub.call(
        "POST",
        "/print",
        Some(
            &json!({"content_type": "qr_one_line", "data": {"primary_id": "A-00001",
                      "qr_payload": "https://inv.example/a/1"}}),
        ),
    );
    assert_eq!(status, 202, "{v}");
    hub.stop();
    let conn = rusqlite::Connection::open(dir.join("labelhub.db")).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         INSERT INTO jobs (id, printer_id, batch_id, position, copy_index, copy_total, state, content_type,
             label_data, options, model, media, bitmap_id, api_key_id, created_at, updated_at, version)
         WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {m})
         SELECT lower(hex(randomblob(16))), printer_id, batch_id, position, copy_index, copy_total, 'queued',
             content_type, label_data, options, model, media, bitmap_id, api_key_id, created_at,
             updated_at, version
         FROM jobs, k WHERE jobs.seq = (SELECT min(seq) FROM jobs);
         INSERT INTO events (at, kind, printer_id, job_id, batch_id, data)
         SELECT created_at, 'job.created', printer_id, id, batch_id,
             json_object('job_id', id, 'batch_id', batch_id, 'printer_id', printer_id, 'to_state', 'queued',
                         'position', position, 'copy_index', copy_index)
         FROM jobs WHERE seq > (SELECT min(seq) FROM jobs);
         COMMIT;",
        m = n - 1
    ))
    .unwrap();
}

fn lists() {
    const N: usize = 400_000;
    println!("\n## 3. Every list request with {N} queued jobs (targets: < 100 ms, < 1 MB)");
    let dir = temp_dir("lists");
    let t = Instant::now();
    seed_queue(&dir, N);
    println!("(seeded in {:.1} s)", t.elapsed().as_secs_f64());
    let hub = Hub::start(&dir, &[]);
    // The printer thread loads its 400,000 queued ids at start: measure
    // once the process is idle again.
    hub.wait_idle();
    let (_, p, _) = hub.call("GET", "/api/printers/demo", None);
    let pid = p["id"].as_str().unwrap().to_string();
    let mid_queue = labelhub::api::paging::cursor("queue", N as i64 / 2);
    let mid_jobs = labelhub::api::paging::cursor("jobs", N as i64 / 2);
    let routes = [
        "/api/printers/demo/queue".to_string(),
        "/api/printers/demo/queue?limit=200".to_string(),
        format!("/api/printers/demo/queue?limit=200&cursor={mid_queue}"),
        "/api/jobs".to_string(),
        "/api/jobs?limit=200".to_string(),
        format!("/api/jobs?limit=200&cursor={mid_jobs}"),
        "/api/jobs?state=queued&limit=200".to_string(),
        "/api/jobs?state=done&limit=200".to_string(),
        format!("/api/jobs?printer_id={pid}&limit=200"),
        "/api/jobs?since=2000-01-01T00:00:00Z&limit=200".to_string(),
        "/api/events?since=0&limit=500".to_string(),
        format!("/api/events?since={}&limit=500", N / 2),
        "/api/admin/audit?limit=500".to_string(),
        "/api/printers".to_string(),
        "/api/v1/admin/printers?include_disabled=true".to_string(),
        "/api/admin/api-keys".to_string(),
    ];
    println!(
        "{:<62} {:>9} {:>9} {:>10}",
        "request", "median ms", "max ms", "bytes"
    );
    let mut worst_ms: f64 = 0.0;
    let mut worst_bytes = 0;
    for path in &routes {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..21 {
            let t = Instant::now();
            let (status, v, n) = hub.call("GET", path, None);
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{path}: {v}");
            bytes = n;
        }
        samples.sort_by(f64::total_cmp);
        worst_ms = worst_ms.max(samples[samples.len() - 1]);
        worst_bytes = worst_bytes.max(bytes);
        println!(
            "{path:<62} {:>9.1} {:>9.1} {bytes:>10}",
            samples[samples.len() / 2],
            samples[samples.len() - 1]
        );
    }
    // A submission against the full queue: refused by the quota at once.
    let mut samples = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let (status, v, _) = hub.call(
            "POST",
            "/print",
            Some(&json!({"content_type": "text_one_line", "data": {"primary_id": "x"}})),
        );
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 429, "{v}");
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "{:<62} {:>9.1} {:>9.1}",
        "POST /print (429 printer_queue_full)", samples[10], samples[20]
    );
    // Eight concurrent largest queue pages (main: 13.3 GB RSS).
    let before = hub.peak_mib();
    std::thread::scope(|s| {
        let hub = &hub;
        for _ in 0..8 {
            s.spawn(move || {
                for _ in 0..5 {
                    let (status, _, _) =
                        hub.call("GET", "/api/printers/demo/queue?limit=200", None);
                    assert_eq!(status, 200);
                }
            });
        }
    });
    println!(
        "slowest list answer {worst_ms:.1} ms, largest {worst_bytes} bytes; \
         8 concurrent queue readers: peak RSS {:.1} MiB (before {before:.1} MiB; main: 13.3 GB)",
        hub.peak_mib()
    );
    hub.stop();
    std::fs::remove_dir_all(&dir).ok();
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|a| a == name);
    if want("db") {
        db_growth();
    }
    if want("lists") {
        lists();
    }
    if want("worst") {
        worst();
    }
}
