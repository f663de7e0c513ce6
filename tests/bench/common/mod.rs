//! What the benchmarks that run the real binary share (`mod common;`): a
//! hub process on loopback with an admin key of its own, JSON calls, and
//! figures read from `/proc`.

#![allow(dead_code)] // each benchmark uses part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_labelhub");

pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "labelhub-bench-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build(),
    )
}

/// A hub process.
pub struct Hub {
    pub child: Child,
    pub base: String,
    /// From spawning to listening.
    pub started: Duration,
    pub agent: ureq::Agent,
    /// The API key sent with every request.
    pub key: String,
    /// The hub's log (its stderr).
    pub log: PathBuf,
}

impl Hub {
    /// Starts `labelhub serve` on `dir` (extra variables in `env`) and makes
    /// an admin key with the highest submission rate (the bootstrap key is
    /// limited to 60 a minute). The key is kept in `dir/bench.key`, so a
    /// hub started again on the same directory uses it.
    /// The hub logs to `dir/hub.log` (a file, so the load generator spends
    /// nothing on reading it); `BENCH_HUB_LOG=1` makes it the debug log
    /// (profiling aid).
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Hub {
        let t = Instant::now();
        let log = dir.join("hub.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let from = file.metadata().unwrap().len() as usize;
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env("PRINTER_HUB_DATA_DIR", dir)
            .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
            .env(
                "PRINTER_HUB_LOG_LEVEL",
                if std::env::var_os("BENCH_HUB_LOG").is_some() {
                    "debug"
                } else {
                    "info"
                },
            )
            // One load generator on one address: lift the per-address caps.
            .env("PRINTER_HUB_MAX_CONNS_PER_CLIENT", "2000")
            .env("PRINTER_HUB_MAX_WAITS_PER_CLIENT", "2000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let new = text.get(from..).unwrap_or_default();
            if let Some(rest) = new.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the hub exited ({status}):\n{new}");
            }
            assert!(Instant::now() < deadline, "hub did not start:\n{new}");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut hub = Hub {
            child,
            base: format!("http://{addr}"),
            started: t.elapsed(),
            agent: agent(),
            key: String::new(),
            log,
        };
        let bootstrap =
            std::fs::read_to_string(dir.join("bootstrap-admin.key")).unwrap_or_default();
        hub.key = bootstrap.trim().to_string();
        if hub.key.is_empty() {
            hub.key = std::fs::read_to_string(dir.join("bench.key")).unwrap();
            return hub;
        }
        let (status, body, _) = hub.call(
            "POST",
            "/api/admin/api-keys",
            Some(&json!({"name": "bench", "scopes": ["admin"], "rate_limit_per_minute": 10000})),
        );
        assert_eq!(status, 201, "{body}");
        hub.key = body["plaintext"].as_str().unwrap().to_string();
        std::fs::write(dir.join("bench.key"), &hub.key).unwrap();
        std::fs::remove_file(dir.join("bootstrap-admin.key")).ok();
        hub
    }

    /// One call with `agent` (one per client thread): status, JSON body
    /// (null if not JSON) and body size.
    pub fn call_with(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value, usize) {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("X-Label-Hub-Key", &self.key)
            .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
            .unwrap();
        let mut resp = agent.run(req).unwrap();
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        let n = bytes.len();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            n,
        )
    }

    /// [`Hub::call_with`] on the hub's own agent.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value, usize) {
        self.call_with(&self.agent, method, path, body)
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .unwrap()
            .count()
    }

    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("[ERROR]")) {
            eprintln!("[hub] {line}");
        }
    }
}
