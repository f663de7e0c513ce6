//! `cargo bench --bench hub`: the hub's figures (issue 4), measured on the
//! real binary over loopback with the built-in emulator, plus this
//! machine's raw SQLite commit rate with the hub's pragmas, measured in the
//! same run: the physical limit for accepting durable jobs one at a time.
//!
//! The Python hub's figures on a 2-core machine (from the issue) are
//! printed beside ours.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{agent, temp_dir, Hub};

impl Hub {
    fn get(&self, path: &str) -> Value {
        self.call("GET", path, None).1
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, body, _) = self.call("POST", path, Some(body));
        (status, body)
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn printer_id(&self, slug: &str) -> String {
        self.get(&format!("/api/printers/{slug}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until every job in `ids` is terminal (long-polls).
    fn wait_terminal(&self, ids: &[String]) {
        for id in ids {
            let mut since = -1;
            loop {
                let job = self.get(&format!("/api/jobs/{id}?wait=30&since={since}"));
                let state = job["state"].as_str().unwrap_or("");
                if !matches!(state, "queued" | "printing" | "paused") {
                    assert_eq!(state, "done", "{job}");
                    break;
                }
                since = job["version"].as_i64().unwrap();
            }
        }
    }
}

/// Makes the request body of label `n`.
type MakeLabel = fn(usize) -> Value;

/// A typical asset label: QR code plus an id.
fn label(n: usize) -> Value {
    json!({"content_type": "qr_one_line", "data": {"primary_id": format!("A-{n:05}"), "qr_payload": format!("https://inv.example/a/{n}")}})
}

/// A text-only label (cheaper to render: shows the hub's own share).
fn text_label(n: usize) -> Value {
    json!({"content_type": "text_one_line", "data": {"primary_id": format!("A-{n:05}")}})
}

/// In-process render time of one label (median of 200), to separate the
/// renderer's CPU from the hub's.
fn render_cost(make: fn(usize) -> Value) -> Duration {
    use labelhub::render::{self, ContentType, LabelData, Target};
    let target = Target::lookup("PT-P750W", "12").unwrap();
    let mut times: Vec<Duration> = (0..200)
        .map(|n| {
            let req = make(n);
            let ct = ContentType::parse(req["content_type"].as_str().unwrap()).unwrap();
            let data: LabelData = serde_json::from_value(req["data"].clone()).unwrap();
            let t = Instant::now();
            render::render(ct, &data, &target).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[100]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Commits per second of one-row transactions with the hub's pragmas.
fn raw_commit_rate() -> f64 {
    let dir = temp_dir("raw");
    let conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    labelhub::hub::db::apply_pragmas(&conn).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        .unwrap();
    let blob = vec![7u8; 300];
    let mut rates = Vec::new();
    for _ in 0..3 {
        let n = 500;
        let t = Instant::now();
        for _ in 0..n {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [&blob])
                .unwrap();
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
    median(rates)
}

/// `/print` from `clients` threads, `per_client` requests each.
fn print_load(
    hub: &Hub,
    make: fn(usize) -> Value,
    clients: usize,
    per_client: usize,
) -> (f64, Duration, Duration) {
    clients_load(clients, |c| {
        let agent = agent();
        (0..per_client)
            .map(|i| {
                let t = Instant::now();
                let (status, _, _) =
                    hub.call_with(&agent, "POST", "/print", Some(&make(c * 100_000 + i)));
                assert_eq!(status, 202);
                t.elapsed()
            })
            .collect()
    })
}

/// Runs `client(c)` on `clients` threads at once; each returns its
/// requests' latencies. Returns (requests/s over the wall time, p50, p99).
fn clients_load(
    clients: usize,
    client: impl Fn(usize) -> Vec<Duration> + Sync,
) -> (f64, Duration, Duration) {
    let t = Instant::now();
    let client = &client;
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients).map(|c| s.spawn(move || client(c))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = t.elapsed();
    lat.sort();
    (
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    )
}

/// A plain tiny_http hello-world server in this process (the baseline for
/// the HTTP stack): `threads` threads answering every request with
/// `hello`. Returns its address; it runs until the process ends.
fn hello_world(threads: usize) -> std::net::SocketAddr {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    for _ in 0..threads {
        let server = server.clone();
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let _ = req.respond(tiny_http::Response::from_string("hello"));
            }
        });
    }
    addr
}

/// CPU time (user + system, in clock ticks of 10 ms) of process `pid`,
/// all its threads.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // "pid (comm) state ppid ... utime stime ...": comm may hold spaces.
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// `conns` kept-alive connections, each sending `request` and reading the
/// answer (framed by its Content-Length), one at a time, for `run`.
/// Connection `c` sends `requests[c % requests.len()]`.
/// A minimal client, so the load generator takes as little of the shared
/// two cores as possible. Returns (requests/s, p50, p99).
fn keepalive_load(
    addr: std::net::SocketAddr,
    requests: &[&[u8]],
    expect: u16,
    conns: usize,
    run: Duration,
) -> (f64, Duration, Duration) {
    use std::io::{Read, Write};
    let start = Instant::now();
    clients_load(conns, |conn| {
        let request = requests[conn % requests.len()];
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut lat = Vec::new();
        while start.elapsed() < run {
            let t = Instant::now();
            c.write_all(request).unwrap();
            let mut have = 0;
            loop {
                let n = c.read(&mut buf[have..]).unwrap();
                assert!(n > 0, "closed");
                have += n;
                let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = std::str::from_utf8(&buf[..end]).unwrap();
                let status: u16 = head[9..12].parse().unwrap();
                assert_eq!(status, expect, "{head}");
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if have >= end + 4 + len {
                    assert_eq!(have, end + 4 + len);
                    break;
                }
            }
            lat.push(t.elapsed());
        }
        lat
    })
}

/// The load average now (1 minute), for the record beside each figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The median of `v` (the upper one of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median (by rate) of measured rounds.
fn median_round(mut rounds: Vec<(f64, Duration, Duration)>) -> (f64, Duration, Duration) {
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds[rounds.len() / 2]
}

/// Rounds of each figure, taken in turn with its baseline
/// (`BENCH_ROUNDS`, default 3).
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3)
}

/// The front-door figures (issue 9): the HTTP stack against a plain
/// tiny_http hello-world, and `POST /print` over kept-alive connections
/// against the raw commit rate. Each figure and its baseline are measured
/// in turn, [`rounds`] times; medians are printed, and the ratio is that of
/// the medians.
fn front_figures(hub: &Hub) {
    http_figures(hub);
    print_figures(hub);
}

/// `GET /healthz` through the whole hub against a tiny_http hello-world.
fn http_figures(hub: &Hub) {
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();
    let run = Duration::from_secs(2);
    let rounds = rounds();
    let hello = hello_world(2);
    let get = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";
    println!(
        "\nthe way in (16 kept-alive connections, {} s a round, {rounds} rounds each in turn with its baseline; medians; load average at the start):",
        run.as_secs()
    );
    let l = loadavg();
    let (mut base, mut ours) = (Vec::new(), Vec::new());
    let (me, hub_pid) = (std::process::id(), hub.child.id());
    let (mut base_cpu, mut client_cpu, mut hub_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (c0, t) = (cpu_ticks(me), Instant::now());
        base.push(keepalive_load(hello, &[get], 200, 16, run));
        base_cpu.push(us_per(cpu_ticks(me) - c0, base[base.len() - 1].0, t));
        let (c0, h0, t) = (cpu_ticks(me), cpu_ticks(hub_pid), Instant::now());
        ours.push(keepalive_load(addr, &[healthz], 200, 16, run));
        let rate = ours[ours.len() - 1].0;
        client_cpu.push(us_per(cpu_ticks(me) - c0, rate, t));
        hub_cpu.push(us_per(cpu_ticks(hub_pid) - h0, rate, t));
    }
    let ratios: Vec<String> = base
        .iter()
        .zip(&ours)
        .map(|(b, o)| format!("{:.2}", o.0 / b.0))
        .collect();
    let (base, b50, b99) = median_round(base);
    let (ours, h50, h99) = median_round(ours);
    println!(
        "  tiny_http hello-world (2 threads):   {base:>7.0} req/s  p50 {:.2} ms  p99 {:.2} ms  (load {l})",
        ms(b50),
        ms(b99)
    );
    println!(
        "  GET /healthz through the whole hub:  {ours:>7.0} req/s  p50 {:.2} ms  p99 {:.2} ms  = {:.2}x hello-world (target >= 0.5x; rounds {})",
        ms(h50),
        ms(h99),
        ours / base,
        ratios.join(", ")
    );
    println!(
        "  CPU per request (medians): hello-world rounds, bench process (server and client) {:.1} us; /healthz rounds, bench process (client) {:.1} us, hub {:.1} us",
        median(base_cpu),
        median(client_cpu),
        median(hub_cpu)
    );
}

/// Microseconds of CPU per request: `ticks` (10 ms each) over the requests
/// made at `rate` since `since`.
fn us_per(ticks: u64, rate: f64, since: Instant) -> f64 {
    ticks as f64 * 10_000.0 / (rate * since.elapsed().as_secs_f64())
}

/// `POST /print` over kept-alive connections against the raw commit rate.
fn print_figures(hub: &Hub) {
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();
    let run = Duration::from_secs(2);
    let n_rounds = rounds();
    let pid = hub.printer_id("demo");
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    for (name, make) in [
        ("text_one_line", text_label as MakeLabel),
        ("qr_one_line", label),
    ] {
        // Keys of their own per kind, four connections on each: one key
        // may submit at most 10,000 labels a minute, which a quiet machine
        // reaches in 3 s.
        let body = make(7).to_string();
        let requests: Vec<String> = (0..4)
            .map(|k| {
                let (status, created, _) = hub.call(
                    "POST",
                    "/api/admin/api-keys",
                    Some(&json!({"name": format!("bench-{name}-{k}"), "scopes": ["admin"], "rate_limit_per_minute": 10000})),
                );
                assert_eq!(status, 201, "{created}");
                let key = created["plaintext"].as_str().unwrap();
                format!(
                    "POST /print HTTP/1.1\r\nHost: bench\r\nX-Label-Hub-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            })
            .collect();
        let requests: Vec<&[u8]> = requests.iter().map(|r| r.as_bytes()).collect();
        let l = loadavg();
        let (mut raw, mut rounds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut hub_cpu = Vec::new();
        for _ in 0..n_rounds {
            raw.push(raw_commit_rate());
            let (h0, t) = (cpu_ticks(hub.child.id()), Instant::now());
            rounds.push(keepalive_load(addr, &requests, 202, 16, run));
            let rate = rounds[rounds.len() - 1].0;
            hub_cpu.push(us_per(cpu_ticks(hub.child.id()) - h0, rate, t));
            ratios.push(format!(
                "{:.2}",
                rounds[rounds.len() - 1].0 / raw[raw.len() - 1]
            ));
            // Each round starts on an empty queue.
            hub.post(&format!("/api/printers/{pid}/queue/clear"), &json!({}));
        }
        let raw = median(raw);
        let (rate, p50, p99) = median_round(rounds);
        println!(
            "  POST /print ({name}), 16 clients: {rate:>7.0} jobs/s  p50 {:.2} ms  p99 {:.2} ms  (load {l})  = {:.2}x the raw commit rate {raw:.0}/s (target >= 1.0x, p99 < 10 ms; rounds {})",
            ms(p50),
            ms(p99),
            rate / raw,
            ratios.join(", ")
        );
        println!("    hub CPU per job (median): {:.1} us", median(hub_cpu));
    }
    hub.post(&format!("/api/printers/{pid}/resume"), &json!({}));
}

fn main() {
    if std::env::args().any(|a| a == "accept") {
        // Profiling aid: a steady /print load; the hub's pid goes to stderr.
        let dir = temp_dir("accept");
        let hub = Hub::start(&dir, &[]);
        eprintln!("hub pid {}", hub.child.id());
        let pid = hub.printer_id("demo");
        hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
        for _ in 0..3 {
            let (rate, p50, p99) = print_load(&hub, text_label, 16, 200);
            println!(
                "{rate:.0} jobs/s p50 {:.2} ms p99 {:.2} ms",
                ms(p50),
                ms(p99)
            );
        }
        hub.stop();
        return;
    }
    if std::env::args().any(|a| a == "healthz") {
        // The HTTP stack alone: GET /healthz (public, no database).
        let dir = temp_dir("healthz");
        let hub = Hub::start(&dir, &[]);
        for clients in [1, 4, 16] {
            let t = Instant::now();
            let per = 2000 / clients;
            std::thread::scope(|s| {
                for _ in 0..clients {
                    let hub = &hub;
                    s.spawn(move || {
                        let agent = agent();
                        for _ in 0..per {
                            hub.call_with(&agent, "GET", "/healthz", None);
                        }
                    });
                }
            });
            println!(
                "healthz {clients} clients: {:.0} req/s",
                (per * clients) as f64 / t.elapsed().as_secs_f64()
            );
        }
        hub.stop();
        return;
    }
    if std::env::args().any(|a| a == "way") {
        // `GET /healthz` against hello-world only (more rounds: BENCH_ROUNDS).
        let dir = temp_dir("way");
        let hub = Hub::start(&dir, &[]);
        hub.get("/healthz");
        http_figures(&hub);
        hub.stop();
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    if std::env::args().any(|a| a == "front") {
        // Only the way-in figures (issue 9), with their baselines.
        let dir = temp_dir("front");
        // A quiet machine queues more than the default waiting-label
        // limits in 3 s (the paused printer keeps every job waiting).
        let hub = Hub::start(
            &dir,
            &[
                ("PRINTER_HUB_MAX_QUEUED_PER_KEY", "1000000"),
                ("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", "1000000"),
            ],
        );
        hub.get("/healthz");
        println!(
            "idle: RSS {:.1} MiB, {} threads",
            hub.rss_kib() as f64 / 1024.0,
            hub.threads()
        );
        front_figures(&hub);
        hub.stop();
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    if std::env::args().any(|a| a == "metrics") {
        // observe (issue 12): what one request's metrics hook costs (the
        // latency histogram and the response counter of a route pattern),
        // beside the same loop without it, in the same run.
        let n = 2_000_000u32;
        let mut best = [f64::MAX; 2];
        for _ in 0..5 {
            let t = Instant::now();
            for i in 0..n {
                std::hint::black_box(Duration::from_nanos(u64::from(i)));
            }
            best[0] = best[0].min(t.elapsed().as_secs_f64() * 1e9 / f64::from(n));
            let t = Instant::now();
            for i in 0..n {
                labelhub::metrics::http_request(
                    "GET",
                    "/api/jobs/{job_id}",
                    200,
                    std::hint::black_box(Duration::from_nanos(u64::from(i))),
                );
            }
            best[1] = best[1].min(t.elapsed().as_secs_f64() * 1e9 / f64::from(n));
        }
        println!(
            "metrics hook: {:.1} ns per request (empty loop {:.1} ns), best of 5 x {n}",
            best[1] - best[0],
            best[0]
        );
        let t = Instant::now();
        let mut e = labelhub::metrics::Exposition::new();
        e.registry(&|id| Some(id.to_string()));
        let text = e.finish();
        println!(
            "registry exposition: {} bytes in {:.1} us",
            text.len(),
            t.elapsed().as_secs_f64() * 1e6
        );
        return;
    }
    if std::env::args().any(|a| a == "rss") {
        let n = std::env::var("BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        rss_after_many(n, 0);
        return;
    }
    if std::env::args().any(|a| a == "reads") {
        reads_under_load();
        return;
    }
    if std::env::args().any(|a| a == "longpoll") {
        let dir = temp_dir("lp");
        let hub = Hub::start(&dir, &[]);
        let pid = hub.printer_id("demo");
        hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
        print_load(&hub, label, 16, 60);
        hub.post(&format!("/api/printers/{pid}/queue/clear"), &json!({}));
        hub.post(&format!("/api/printers/{pid}/resume"), &json!({}));
        println!("{:?}", long_poll_cost(&hub));
        hub.stop();
        return;
    }
    println!("labelhub hub benchmark (release build, loopback, built-in emulator)");
    let raw = raw_commit_rate();
    println!(
        "raw SQLite commit rate (WAL, synchronous=FULL, one row per commit): {raw:.0} commits/s"
    );

    let dir = temp_dir("main");
    let hub = Hub::start(&dir, &[]);
    // Idle: after start-up and a first status poll.
    hub.get("/healthz");
    let idle_rss = hub.rss_kib();
    let idle_threads = hub.threads();
    println!(
        "idle: RSS {:.1} MiB, {idle_threads} threads",
        idle_rss as f64 / 1024.0
    );
    front_figures(&hub);
    let pid = hub.printer_id("demo");

    // 1. Accepting jobs (printer paused: only the durable accept path).
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    println!("\nPOST /print, printer paused (the durable accept path: parse, render, one transaction, hand-off):");
    let kinds: [(&str, MakeLabel); 2] = [("qr_one_line", label), ("text_one_line", text_label)];
    for (name, make) in kinds {
        let render = render_cost(make);
        println!(
            "  {name} labels (render alone: {:.2} ms in-process)",
            ms(render)
        );
        println!("    clients  jobs/s   p50 ms   p99 ms   vs raw commit rate   vs Python hub (63 jobs/s)");
        for (clients, per) in [(1, 400), (4, 150), (16, 60)] {
            let (rate, p50, p99) = print_load(&hub, make, clients, per);
            println!(
                "    {clients:>7}  {rate:>6.0}  {:>7.2}  {:>7.2}   {:>17.2}x   {:>21.0}x",
                ms(p50),
                ms(p99),
                rate / raw,
                rate / 63.0
            );
        }
    }
    println!("    (Python hub at 16 clients: 63 jobs/s, p99 2700 ms)");
    hub.post(&format!("/api/printers/{pid}/queue/clear"), &json!({}));

    // 2. One 500-item batch POST.
    let items: Vec<Value> = (0..500).map(label).collect();
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let (status, _) = hub.post("/api/print/demo/batch", &json!({"items": items}));
        assert_eq!(status, 202);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "\n500-item batch POST: median {:.0} ms (of 3)   (Python hub: 5600 ms, {:.0}x)",
        ms(times[1]),
        5600.0 / ms(times[1])
    );
    hub.post(&format!("/api/printers/{pid}/queue/clear"), &json!({}));
    hub.post(&format!("/api/printers/{pid}/resume"), &json!({}));

    // 3. 500 jobs from submit to done on the instant emulator.
    let t = Instant::now();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|c| {
                let hub = &hub;
                s.spawn(move || {
                    let agent = agent();
                    (0..125)
                        .map(|i| {
                            let (_, body, _) =
                                hub.call_with(&agent, "POST", "/print", Some(&label(c * 1000 + i)));
                            body["job_id"].as_str().unwrap().to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    hub.wait_terminal(&ids);
    let single = t.elapsed();
    let t = Instant::now();
    let (_, batch) = hub.post("/api/print/demo/batch", &json!({"items": items}));
    let batch_ids: Vec<String> = batch["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    hub.wait_terminal(&batch_ids);
    let batched = t.elapsed();
    println!(
        "500 jobs submit -> done (instant emulator, PNG per label): {:.2} s as 500 POST /print from 4 clients, \
         {:.2} s as one 500-item batch   (Python hub: 12.7 s)",
        single.as_secs_f64(),
        batched.as_secs_f64()
    );
    let after_rss = hub.rss_kib();
    println!(
        "RSS after these {} jobs: {:.1} MiB",
        1000 + 1500 + 600,
        after_rss as f64 / 1024.0
    );

    // 4. What one waiting long-poll client costs.
    let (waiters, rss_per, threads_per) = long_poll_cost(&hub);
    println!(
        "\nlong-poll: {waiters} parked requests cost {:.1} KiB RSS each and {threads_per:.2} threads each \
         (a connection thread; our handler threads stay free)",
        rss_per
    );
    hub.stop();
    std::fs::remove_dir_all(&dir).unwrap();

    // 5. Start-up with 1,000 and 100,000 queued jobs.
    println!(
        "\nstart-up to `listening on` (median of 3)      (Python hub with 1,000 queued: 9200 ms)"
    );
    for n in [0usize, 1_000, 100_000] {
        let dir = temp_dir("startup");
        seed_queued(&dir, n);
        let mut times = Vec::new();
        for _ in 0..3 {
            let hub = Hub::start(&dir, &[]);
            times.push(hub.started);
            hub.stop();
        }
        times.sort();
        println!("  {n:>7} queued: {:>7.1} ms", ms(times[1]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // 6. RSS after 100,000 jobs.
    rss_after_many(100_000, idle_rss);
}

/// Parks `n` long-polls and measures the process's growth.
fn long_poll_cost(hub: &Hub) -> (usize, f64, f64) {
    let n = 200;
    let pid = hub.printer_id("demo");
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    let (_, acc) = hub.post("/print", &label(1));
    let batch = acc["batch_id"].as_str().unwrap().to_string();
    let job = acc["job_id"].as_str().unwrap().to_string();
    let version = hub.get(&format!("/api/batches/{batch}"))["version"]
        .as_i64()
        .unwrap();
    let rss0 = hub.rss_kib();
    let threads0 = hub.threads();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // Waves of 25 connections, so the listen backlog never overflows
        // (a dropped SYN is retried only after seconds).
        for wave in 0..n / 25 {
            for _ in 0..25 {
                let tx = tx.clone();
                let hub = &hub;
                let batch = &batch;
                s.spawn(move || {
                    let agent = agent();
                    let (status, _, _) = hub.call_with(
                        &agent,
                        "GET",
                        &format!("/api/batches/{batch}?wait=60&since={version}"),
                        None,
                    );
                    tx.send(status).unwrap();
                });
            }
            let want = (wave + 1) * 25;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let waiting = hub.get("/healthz")["waiting_requests"]
                    .as_u64()
                    .unwrap_or(0);
                if waiting >= want as u64 {
                    break;
                }
                if Instant::now() > deadline {
                    let answered: Vec<u16> = rx.try_iter().collect();
                    panic!("only {waiting} of {want} parked; answered early: {answered:?}");
                }
                std::thread::yield_now();
            }
        }
        let rss1 = hub.rss_kib();
        let threads1 = hub.threads();
        hub.post(&format!("/api/jobs/{job}/cancel"), &json!({}));
        for _ in 0..n {
            assert_eq!(rx.recv().unwrap(), 200);
        }
        hub.post(&format!("/api/printers/{pid}/resume"), &json!({}));
        (
            n,
            (rss1.saturating_sub(rss0)) as f64 / n as f64,
            (threads1 - threads0) as f64 / n as f64,
        )
    })
}

/// Makes a data directory whose demo printer is paused with `n` queued jobs.
fn seed_queued(dir: &Path, n: usize) {
    let hub = Hub::start(dir, &[]);
    let pid = hub.printer_id("demo");
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    if n > 0 {
        hub.post("/print", &label(0));
    }
    hub.stop();
    if n <= 1 {
        return;
    }
    let conn = rusqlite::Connection::open(dir.join("labelhub.db")).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         INSERT INTO jobs (id, printer_id, batch_id, position, copy_index, copy_total, state, content_type,
             label_data, options, model, media, bitmap_id, created_at, updated_at, version)
         WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {})
         SELECT lower(hex(randomblob(16))), printer_id, batch_id, position, copy_index, copy_total, 'queued',
             content_type, label_data, options, model, media, bitmap_id, created_at,
             updated_at, version
         FROM jobs, k WHERE jobs.seq = (SELECT min(seq) FROM jobs);
         COMMIT;",
        n - 1
    ))
    .unwrap();
}

/// Prints `n` jobs through a `dir:` printer (no PNG per label) and compares
/// the RSS with the idle one.
fn rss_after_many(n: usize, idle_rss: u64) {
    let dir = temp_dir("many");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let hub = Hub::start(&dir, &[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    let (status, _) = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "bulk", "slug": "bulk", "model": "PT-P750W", "media": "12",
                "connection": {"uri": format!("dir://{}?media=12", out.display())}}),
    );
    assert_eq!(status, 201);
    let t = Instant::now();
    let items: Vec<Value> = (0..500).map(label).collect();
    let mut last = Vec::new();
    let mut samples = Vec::new();
    for round in 0..n / 500 {
        let (status, body) = hub.post("/api/print/bulk/batch", &json!({"items": items}));
        assert_eq!(status, 202, "{body}");
        last = body["job_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        // Keep the queue short: wait for every 10th batch.
        if round % 10 == 9 {
            hub.wait_terminal(&last[last.len() - 1..]);
            samples.push(hub.rss_kib());
        }
    }
    hub.wait_terminal(&last);
    let took = t.elapsed();
    let rss = hub.rss_kib();
    println!(
        "\n{n} jobs ({} batches of 500 on a dir: printer) printed in {:.1} s ({:.0} labels/s); \
         RSS {:.1} MiB after (idle was {:.1} MiB); RSS at each 10% step: {:?} MiB",
        n / 500,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        rss as f64 / 1024.0,
        idle_rss as f64 / 1024.0,
        samples
            .iter()
            .map(|k| (*k as f64 / 1024.0 * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    hub.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cargo bench --bench hub -- reads`: read latency from one kept-alive
/// client with no other load, then while 4 and 16 kept-alive clients `POST
/// /print` (printer paused), in the same run. Reads use the pool of read
/// connections, so they should not wait behind the group commits.
fn reads_under_load() {
    let dir = temp_dir("reads");
    let hub = Hub::start(
        &dir,
        &[
            ("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", "1000000"),
            ("PRINTER_HUB_MAX_QUEUED_PER_KEY", "1000000"),
        ],
    );
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();
    let pid = hub.printer_id("demo");
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    print_load(&hub, text_label, 4, 50);
    let body = text_label(7).to_string();
    let post = format!(
        "POST /print HTTP/1.1\r\nHost: bench\r\nX-Label-Hub-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        hub.key,
        body.len()
    );
    let run = Duration::from_secs(5);
    println!(
        "reads from 1 kept-alive client, {} s each: alone, then while 4 and 16 clients POST /print (printer paused)",
        run.as_secs()
    );
    // Main took the writer for the key list; the other two used its one
    // read connection.
    for path in [
        "/api/jobs?limit=50".to_string(),
        format!("/api/printers/{pid}"),
        "/api/admin/api-keys".to_string(),
    ] {
        let get = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nX-Label-Hub-Key: {}\r\n\r\n",
            hub.key
        );
        let shown = if path.starts_with("/api/printers/") {
            "/api/printers/{id}"
        } else {
            path.as_str()
        };
        let l = loadavg();
        let (rate, p50, p99) = keepalive_load(addr, &[get.as_bytes()], 200, 1, run);
        println!(
            "  GET {shown}, alone:{:>16} p50 {:>6.2} ms  p99 {:>7.2} ms  {rate:>5.0} req/s  (load {l})",
            "",
            ms(p50),
            ms(p99)
        );
        // 4 writers leave handler threads free, so a read waits only for
        // the database; 16 occupy all 8.
        for writers in [4, 16] {
            let l = loadavg();
            let ((rate, p50, p99), (jobs, _, _)) = std::thread::scope(|s| {
                let load = s.spawn(|| keepalive_load(addr, &[post.as_bytes()], 202, writers, run));
                let reads = keepalive_load(addr, &[get.as_bytes()], 200, 1, run);
                (reads, load.join().unwrap())
            });
            println!(
                "  GET {shown}, {writers:>2} clients POST: p50 {:>6.2} ms  p99 {:>7.2} ms  {rate:>5.0} req/s  (load {l}; {jobs:.0} jobs/s accepted)",
                ms(p50),
                ms(p99)
            );
        }
    }
    hub.post(&format!("/api/printers/{pid}/queue/clear"), &json!({}));
    hub.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
