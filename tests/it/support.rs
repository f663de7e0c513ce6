//! The test harness: starts the real `labelhub serve` binary on
//! 127.0.0.1:0 with a temporary data directory, learns the port from the
//! `listening on` log line, and talks HTTP to it with ureq.
//!
//! Every request is built in [`Hub::request`], which sends the bootstrap
//! admin key (read from `<data_dir>/bootstrap-admin.key`) unless the caller
//! passes its own `X-Label-Hub-Key`.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request as a test sends it.
pub struct Call<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    /// Every header sent.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    /// A call with these headers (and `Content-Type: application/json`
    /// when there is a body).
    pub fn new(
        method: &'a str,
        target: &'a str,
        mut headers: Vec<(&'a str, &'a str)>,
        body: Option<Vec<u8>>,
    ) -> Call<'a> {
        if body.is_some() {
            headers.insert(0, ("Content-Type", "application/json"));
        }
        Call {
            method,
            target,
            headers,
            body,
        }
    }

    /// A call with `key` unless `headers` name one.
    pub fn with_key(
        key: &'a str,
        method: &'a str,
        target: &'a str,
        body: Option<&[u8]>,
        headers: &[(&'a str, &'a str)],
    ) -> Call<'a> {
        let mut all = headers.to_vec();
        if !key.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("x-label-hub-key"))
        {
            all.push(("X-Label-Hub-Key", key));
        }
        Call::new(method, target, all, body.map(<[u8]>::to_vec))
    }
}

/// What the tests talk to: the real binary ([`Hub`]) or the library in
/// this process ([`crate::inproc::InHub`]).
pub trait Client {
    /// The admin key [`Client::request`] sends unless told otherwise.
    fn key(&self) -> &str;

    /// Runs a call; `exact`: the target byte for byte on a connection of
    /// its own (so `//`, `%61` and trailing slashes reach the server
    /// unchanged).
    fn call(&self, call: Call<'_>, exact: bool) -> Resp;

    /// A request with the admin key unless `headers` name a key.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.call(
            Call::with_key(self.key(), method, path, body, headers),
            false,
        )
    }

    /// One request exactly as given, the key only when given.
    fn send(
        &self,
        method: &str,
        target: &str,
        key: Option<&str>,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut headers: Vec<(&str, &str)> =
            key.map(|k| ("X-Label-Hub-Key", k)).into_iter().collect();
        headers.extend_from_slice(extra);
        let body = body.map(|b| b.to_string().into_bytes());
        self.call(Call::new(method, target, headers, body), true)
    }

    fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None, &[])
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    fn post_empty(&self, path: &str) -> Resp {
        self.request("POST", path, None, &[])
    }

    fn put(&self, path: &str, body: &Value) -> Resp {
        self.request("PUT", path, Some(body.to_string().as_bytes()), &[])
    }

    /// Long-polls a batch until `all_terminal` (bounded).
    fn wait_batch(&self, batch_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut since = -1i64;
        loop {
            let r = self.get(&format!("/api/batches/{batch_id}?wait=10&since={since}"));
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
            let snap = r.json();
            if snap["summary"]["all_terminal"] == true {
                return snap;
            }
            since = snap["version"].as_i64().unwrap();
            assert!(Instant::now() < deadline, "batch not finished: {snap}");
        }
    }

    /// Long-polls a job until `pred` holds for it (bounded).
    fn wait_job(&self, job_id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut since = -1i64;
        loop {
            let r = self.get(&format!("/api/jobs/{job_id}?wait=10&since={since}"));
            assert_eq!(r.status, 200);
            let job = r.json();
            if pred(&job) {
                return job;
            }
            since = job["version"].as_i64().unwrap();
            assert!(Instant::now() < deadline, "job never matched: {job}");
        }
    }
}

impl Client for Hub {
    fn key(&self) -> &str {
        &self.key
    }

    fn call(&self, call: Call<'_>, exact: bool) -> Resp {
        let what = format!("{} {}", call.method, call.target);
        if !exact {
            return self
                .try_call(call)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        let mut s =
            std::net::TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let mut req = format!("{what} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n");
        for (k, v) in &call.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = call.body.unwrap_or_default();
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(&body);
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_http(&out, call.method == "HEAD").unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {what}: {:?}",
                String::from_utf8_lossy(&out)
            )
        })
    }
}

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running hub process.
pub struct Hub {
    child: Mutex<Option<Child>>,
    pub base: String,
    pub data_dir: PathBuf,
    owns_dir: bool,
    log: Arc<Log>,
    agent: ureq::Agent,
    env: Vec<(String, String)>,
    /// The bootstrap admin key the hub wrote on its first start (auth):
    /// sent with every request unless the caller gives its own key header.
    pub key: String,
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "labelhub-it-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Hub {
    /// A hub with a fresh data directory and the demo printer.
    pub fn start() -> Hub {
        Hub::start_in(&temp_dir("hub"), &[], true)
    }

    /// A hub with extra `PRINTER_HUB_*` variables.
    pub fn start_env(env: &[(&str, &str)]) -> Hub {
        Hub::start_in(&temp_dir("hub"), env, true)
    }

    /// A hub on `data_dir` (kept when `owns_dir` is false).
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)], owns_dir: bool) -> Hub {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut hub = Hub {
            child: Mutex::new(None),
            base: String::new(),
            data_dir: data_dir.to_path_buf(),
            owns_dir,
            log: Arc::new(Log::default()),
            agent: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(90)))
                    .build(),
            ),
            env,
            key: String::new(),
        };
        hub.spawn();
        hub
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_labelhub"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PRINTER_HUB_DATA_DIR", &self.data_dir)
            .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
            .env("PRINTER_HUB_LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        self.log = Arc::new(Log::default());
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("LABELHUB_TEST_LOG").is_some() {
                    eprintln!("[hub] {line}");
                }
                log.lines.lock().unwrap().push(line);
                log.grew.notify_all();
            }
        });
        *self.child.lock().unwrap() = Some(child);
        let line = self
            .wait_log("listening on ", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the hub did not start; log:\n{}", self.log_text()));
        let addr = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        self.base = format!("http://{addr}");
        let key_file = self.data_dir.join("bootstrap-admin.key");
        if let Ok(key) = std::fs::read_to_string(&key_file) {
            self.key = key.trim().to_string();
        }
    }

    /// Kills the process (SIGKILL) and starts it again on the same data
    /// directory and variables.
    pub fn restart_after_kill(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts the process again (after it exited).
    pub fn start_again(&mut self) {
        assert!(self.child.lock().unwrap().is_none(), "still running");
        self.spawn();
    }

    /// The full log so far.
    pub fn log_text(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    /// Waits for a log line containing `needle` (from the current process's
    /// start); returns it.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = self.log.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends SIGTERM; returns the exit status and how long it took.
    pub fn sigterm(&self, timeout: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.lock().unwrap().take().expect("running");
        let pid = child.id().to_string();
        let t = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => (status.unwrap(), t.elapsed()),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!(
                    "no exit within {timeout:?} after SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// Like [`Client::request`], but a transport error (server gone) is an `Err`.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, ureq::Error> {
        self.try_call(Call::with_key(&self.key, method, path, body, headers))
    }

    /// A call through the keep-alive client.
    fn try_call(&self, call: Call<'_>) -> Result<Resp, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method(call.method)
            .uri(format!("{}{}", self.base, call.target));
        for (k, v) in &call.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(call.body.unwrap_or_default()).unwrap();
        let mut resp = self.agent.run(req)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()?;
        Ok(Resp {
            status,
            headers,
            bytes,
        })
    }

    /// PNG files the emulator wrote for printer `slug`, sorted.
    pub fn pngs(&self, slug: &str) -> Vec<PathBuf> {
        let dir = self.data_dir.join("emulator").join(slug);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "png"));
        files.sort();
        files
    }

    /// Sets a fault on the emulator of printer `slug` (its `fault` file,
    /// read at the next job or status request); returns the file.
    pub fn emulator_fault(&self, slug: &str, fault: &str) -> PathBuf {
        let file = self.data_dir.join("emulator").join(slug).join("fault");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, fault).unwrap();
        file
    }

    /// The address the hub listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().as_ref().unwrap().id()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill9();
        if self.owns_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A simple print request body for the demo printer.
pub fn label(text: &str) -> Value {
    serde_json::json!({"content_type": "text_one_line", "data": {"primary_id": text}})
}

/// xorshift64*: a small seeded PRNG for reproducible test inputs (no extra
/// crate). The same seed gives the same sequence in every test that uses it.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Decodes the one QR code on a label PNG (scaled up 4x with a white
/// border: the labels are small).
pub fn decode_qr(path: &Path) -> String {
    let img = image::open(path).unwrap().to_luma8();
    let (w, h) = img.dimensions();
    let pad = 16;
    let mut big =
        image::GrayImage::from_pixel(w * 4 + 2 * pad, h * 4 + 2 * pad, image::Luma([255]));
    for (x, y, p) in img.enumerate_pixels() {
        for dx in 0..4 {
            for dy in 0..4 {
                big.put_pixel(pad + x * 4 + dx, pad + y * 4 + dy, *p);
            }
        }
    }
    let mut prepared = rqrr::PreparedImage::prepare(big);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "{}: one QR code", path.display());
    grids[0].decode().unwrap().1
}

/// A TCP connection to `dst` from `src` (any 127.x.y.z).
pub fn connect_from(
    dst: std::net::SocketAddr,
    src: std::net::Ipv4Addr,
) -> std::io::Result<std::net::TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&std::net::SocketAddr::from((src, 0)).into())?;
    sock.connect_timeout(&dst.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

/// Writes `bytes` one at a time, 50 ms apart, for 200 bytes (cycling),
/// on another thread: a client that keeps a request dribbling in.
pub fn drip(mut writer: std::net::TcpStream, bytes: &'static [u8]) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for b in bytes.iter().cycle().take(200) {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// The actions of an audit log page, newest first.
pub fn audit_actions(audit: &Value) -> Vec<&str> {
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect()
}

/// Path parameters that name no printer, job or batch: a console asset,
/// an app's entity, a webhook subscription and delivery.
const OTHER_PARAMS: &[(&str, &str)] = &[
    ("file", "app.js"),
    ("app", "grocy"),
    ("entity_id", "3"),
    ("subscription_id", "00000000-0000-4000-8000-000000000000"),
    ("delivery_id", "msg_walk"),
];

/// The path parameters that name a printer (by id and by slug), a job, a
/// batch and an API key, for [`fill`].
pub fn resources<'a>(
    printer_id: &'a str,
    slug: &'a str,
    job: &'a str,
    batch: &'a str,
    key_id: &'a str,
) -> [(&'static str, &'a str); 6] {
    [
        ("printer_id", printer_id),
        ("printer_key", slug),
        ("slug", slug),
        ("job_id", job),
        ("batch_id", batch),
        ("key_id", key_id),
    ]
}

/// A route template with its `{name}` parameters filled from `values`
/// (then [`OTHER_PARAMS`]); a parameter without a value fails the test.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                None => seg.to_string(),
                Some(name) => values
                    .iter()
                    .chain(OTHER_PARAMS)
                    .find(|(k, _)| *k == name)
                    .unwrap_or_else(|| panic!("no value for {{{name}}} in {template}"))
                    .1
                    .to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// A raw HTTP/1.1 answer (status line, headers, body; a chunked body is
/// decoded; `head`: the answer to a HEAD, whose body is kept as sent).
pub fn parse_http(bytes: &[u8], head: bool) -> Option<Resp> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    Some(Resp {
        status,
        headers,
        bytes: body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        b = &b[nl + 2..];
        if size == 0 || size > b.len() {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}
