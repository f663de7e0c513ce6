//! `cargo bench --bench console`: what an open Server-Sent Events stream
//! costs the hub (issue 11). Starts the real binary on loopback, opens 50
//! `GET /api/events` streams (`Accept: text/event-stream`), and reads the
//! process's threads and resident memory from `/proc/<pid>/status` before
//! and after; then one event reaches all 50 streams and the fan-out time is
//! printed. The same run also parks 50 JSON long-polls for comparison.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_labelhub");
const STREAMS: usize = 50;

struct Hub {
    child: Child,
    addr: String,
    key: String,
    dir: PathBuf,
}

impl Hub {
    fn start() -> Hub {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("labelhub-bench-console-{nanos}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PRINTER_HUB_DATA_DIR", &dir)
            .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
            .env("PRINTER_HUB_LOG_LEVEL", "info")
            // 50 streams + 50 polls from one address.
            .env("PRINTER_HUB_MAX_WAITS_PER_CLIENT", "200")
            .env("PRINTER_HUB_MAX_CONNS_PER_CLIENT", "400")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let key = std::fs::read_to_string(dir.join("bootstrap-admin.key"))
            .unwrap()
            .trim()
            .to_string();
        Hub {
            child,
            addr,
            key,
            dir,
        }
    }

    fn request(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nX-Label-Hub-Key: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.key
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// (threads, VmRSS in KiB)
    fn cost(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (field("Threads:"), field("VmRSS:"))
    }

    /// Threads by name.
    fn thread_names(&self) -> std::collections::BTreeMap<String, i64> {
        let mut out = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(format!("/proc/{}/task", self.child.id())).unwrap() {
            let comm = std::fs::read_to_string(e.unwrap().path().join("comm")).unwrap_or_default();
            *out.entry(comm.trim().to_string()).or_insert(0) += 1;
        }
        out
    }

    fn healthz(&self, field: &str) -> u64 {
        let out = self.request("GET", "/healthz");
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v[field].as_u64().unwrap()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn open_stream(hub: &Hub) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(&hub.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Label-Hub-Key: {}\r\n\r\n",
        hub.key
    )
    .unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with(": connected") {
            return r;
        }
    }
}

fn settle(hub: &Hub) -> (u64, u64) {
    // Let thread counts settle (tiny_http frees a connection thread once the
    // request is read): take the last of readings 100 ms apart that repeat.
    let mut last = hub.cost();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = hub.cost();
        if now.0 == last.0 {
            return now;
        }
        last = now;
    }
    last
}

fn main() {
    let hub = Hub::start();
    // Warm up: the stream thread and every pool thread exist after this.
    drop(open_stream(&hub));
    hub.request("GET", "/api/printers");
    let (t0, rss0) = settle(&hub);
    let names0 = hub.thread_names();

    let mut streams: Vec<_> = (0..STREAMS).map(|_| open_stream(&hub)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.healthz("sse_active_subscribers") < STREAMS as u64 {
        assert!(Instant::now() < deadline, "streams not registered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (t1, rss1) = settle(&hub);
    let names1 = hub.thread_names();
    let mut grew: Vec<String> = Vec::new();
    for (name, n) in &names1 {
        let d = n - names0.get(name).copied().unwrap_or(0);
        if d != 0 {
            grew.push(format!("{name} {d:+}"));
        }
    }

    // One change reaches every stream.
    let started = Instant::now();
    let pause = hub.request("POST", "/api/printers/demo/pause");
    assert!(pause.starts_with("HTTP/1.1 204"), "{pause}");
    let mut slowest = Duration::ZERO;
    for r in &mut streams {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line.starts_with("event: printer.status") {
                slowest = slowest.max(started.elapsed());
                break;
            }
        }
    }
    drop(streams);

    // The same number of parked JSON long-polls, for comparison.
    let hub2 = Hub::start();
    hub2.request("GET", "/api/printers");
    let (p0, prss0) = settle(&hub2);
    let mut polls = Vec::new();
    for _ in 0..STREAMS {
        let mut s = TcpStream::connect(&hub2.addr).unwrap();
        write!(
            s,
            "GET /api/events?wait=60 HTTP/1.1\r\nHost: x\r\nX-Label-Hub-Key: {}\r\n\r\n",
            hub2.key
        )
        .unwrap();
        polls.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub2.healthz("waiting_requests") < STREAMS as u64 {
        assert!(Instant::now() < deadline, "polls not parked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (p1, prss1) = settle(&hub2);
    drop(polls);

    let per = |a: u64, b: u64| (b as f64 - a as f64) / STREAMS as f64;
    println!("labelhub console: cost of {STREAMS} open event streams (one run, this machine)");
    println!(
        "  SSE streams:      threads {t0} -> {t1} ({:+.2} per stream), RSS {rss0} -> {rss1} KiB ({:+.1} KiB per stream)",
        per(t0, t1),
        per(rss0, rss1)
    );
    println!(
        "  parked long-polls: threads {p0} -> {p1} ({:+.2} per poll),   RSS {prss0} -> {prss1} KiB ({:+.1} KiB per poll)",
        per(p0, p1),
        per(prss0, prss1)
    );
    println!(
        "  threads that came with the streams, by name: {}",
        grew.join(", ")
    );
    println!(
        "  one event to all {STREAMS} streams: slowest arrival {:.1} ms after the request",
        slowest.as_secs_f64() * 1000.0
    );
}
