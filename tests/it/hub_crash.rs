//! Crash and shutdown: kill -9 at random points while a slow emulator
//! prints, SIGTERM under load.
//!
//! Every label carries a QR code with its own name, and the emulator's PNGs
//! are decoded back, so "printed twice" and "printed out of order" are
//! checked on what came out of the printer, not on what the hub believes.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::hub::add_printer;
use crate::support::{decode_qr, Client, Hub};

const T: Duration = Duration::from_secs(60);

/// A small xorshift generator; the seed is printed so a failure can be
/// replayed with `LABELHUB_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("LABELHUB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("LABELHUB_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn qr_label(name: &str) -> Value {
    json!({"content_type": "qr_only", "data": {"qr_payload": name}})
}

/// Waits (on the event feed) until `n` state changes to `to_state` have
/// happened since `cursor`; returns the new cursor.
fn wait_events(hub: &Hub, mut cursor: i64, to_state: &str, n: usize) -> i64 {
    let deadline = Instant::now() + T;
    let mut seen = 0;
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "only {seen} of {n} `{to_state}` events"
        );
        let feed = hub
            .get(&format!("/api/events?since={cursor}&wait=10"))
            .json();
        for e in feed["events"].as_array().unwrap() {
            if e["data"]["to_state"] == to_state {
                seen += 1;
            }
        }
        cursor = feed["next"].as_i64().unwrap();
    }
    cursor
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_prints_nothing_twice() {
    let mut rng = Rng::new();
    let mut hub = Hub::start_env(&[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    add_printer(&hub, "slow", "emulator:?media=12&speed=40");
    // Submission order = the order labels must come out in.
    let mut accepted: Vec<(String, String)> = Vec::new(); // (job id, label name)
    let mut kills = 0;
    for round in 0..3 {
        let names: Vec<String> = (0..6).map(|i| format!("R{round}-B{i}")).collect();
        let items: Vec<Value> = names.iter().map(|n| qr_label(n)).collect();
        let cursor = hub.get("/api/events").json()["next"].as_i64().unwrap();
        let r = hub.post("/api/print/slow/batch", &json!({"items": items}));
        assert_eq!(r.status, 202);
        for (id, name) in r.json()["job_ids"].as_array().unwrap().iter().zip(&names) {
            accepted.push((id.as_str().unwrap().to_string(), name.clone()));
        }
        for i in 0..2 {
            let name = format!("R{round}-S{i}");
            let mut body = qr_label(&name);
            body["printer"] = json!("slow");
            let r = hub.post("/print", &body);
            assert_eq!(r.status, 202);
            accepted.push((r.json()["job_id"].as_str().unwrap().to_string(), name));
        }
        // A random point: right after the k-th label started printing, or
        // right after the k-th finished.
        let k = 1 + rng.below(5) as usize;
        let kind = if rng.below(2) == 0 {
            "printing"
        } else {
            "done"
        };
        wait_events(&hub, cursor, kind, k);
        hub.restart_after_kill();
        kills += 1;
        eprintln!("round {round}: killed after {k} `{kind}`");
    }
    // Everything still queued prints after the last restart.
    let deadline = Instant::now() + T;
    let states: HashMap<String, Value> = loop {
        let all: HashMap<String, Value> = accepted
            .iter()
            .map(|(id, _)| {
                let r = hub.get(&format!("/api/jobs/{id}"));
                assert_eq!(r.status, 200, "accepted job {id} lost");
                (id.clone(), r.json())
            })
            .collect();
        if all
            .values()
            .all(|j| j["state"] != "queued" && j["state"] != "printing")
        {
            break all;
        }
        assert!(Instant::now() < deadline, "jobs never finished");
        hub.get("/api/events?wait=2");
    };
    let mut interrupted = 0;
    for (id, job) in &states {
        match job["state"].as_str().unwrap() {
            "done" => {}
            "failed_restart" => {
                assert_eq!(job["error_code"], "printer_interrupted", "{id}");
                interrupted += 1;
            }
            other => panic!("job {id} ended {other}: {job}"),
        }
    }
    assert!(
        interrupted <= kills,
        "at most one label in flight per crash"
    );

    // What came out of the printer.
    let printed: Vec<String> = hub.pngs("slow").iter().map(|p| decode_qr(p)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for name in &printed {
        *count.entry(name).or_default() += 1;
    }
    for (name, n) in &count {
        assert_eq!(*n, 1, "label {name} printed {n} times");
    }
    for (id, name) in &accepted {
        let state = states[id]["state"].as_str().unwrap();
        let n = count.get(name.as_str()).copied().unwrap_or(0);
        match state {
            "done" => assert_eq!(n, 1, "{name} is done but came out {n} times"),
            _ => assert!(n <= 1, "{name} ({state}) came out {n} times"),
        }
    }
    // In submission order.
    let position: HashMap<&str, usize> = accepted
        .iter()
        .enumerate()
        .map(|(i, (_, n))| (n.as_str(), i))
        .collect();
    let order: Vec<usize> = printed.iter().map(|n| position[n.as_str()]).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "printed out of order: {printed:?}"
    );
    assert!(printed.len() >= accepted.len() - interrupted);
}

#[test]
fn sigterm_under_load_finishes_the_label_in_flight_and_keeps_the_queue() {
    let mut hub = Hub::start_env(&[
        ("PRINTER_HUB_DEMO_PRINTER", "false"),
        ("PRINTER_HUB_SHUTDOWN_TIMEOUT_S", "10"),
    ]);
    add_printer(&hub, "slow", "emulator:?media=12&speed=300");
    let accepted = std::sync::Mutex::new(Vec::<String>::new());
    let (exit, took) = std::thread::scope(|s| {
        for c in 0..4 {
            let hub = &hub;
            let accepted = &accepted;
            s.spawn(move || {
                for i in 0..25 {
                    let mut body = qr_label(&format!("C{c}-{i}"));
                    body["printer"] = json!("slow");
                    let Ok(r) =
                        hub.try_request("POST", "/print", Some(body.to_string().as_bytes()), &[])
                    else {
                        return;
                    };
                    match r.status {
                        202 => accepted
                            .lock()
                            .unwrap()
                            .push(r.json()["job_id"].as_str().unwrap().to_string()),
                        503 | 429 => return,
                        other => {
                            panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.bytes))
                        }
                    }
                }
            });
        }
        // Under load: once a few labels have printed, stop.
        wait_events(&hub, 0, "done", 2);
        hub.sigterm(Duration::from_secs(20))
    });
    assert!(exit.success(), "{exit:?}");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
    let accepted = accepted.into_inner().unwrap();
    assert!(accepted.len() >= 3);
    hub.start_again();
    let mut done = 0;
    for id in &accepted {
        let job = hub.wait_job(id, T, |j| {
            j["state"] != "queued" && j["state"] != "printing"
        });
        assert_eq!(
            job["state"], "done",
            "graceful stop leaves no interrupted label: {job}"
        );
        done += 1;
    }
    assert_eq!(
        hub.pngs("slow").len(),
        done,
        "every accepted job printed exactly once"
    );
}
