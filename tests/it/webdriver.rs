//! A small blocking WebDriver (W3C) client over ureq, enough to drive
//! Debian's headless Chromium through `chromedriver` from `cargo test`
//! without an async runtime. WebDriver is plain JSON over HTTP.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port, opens a
//! session with a fresh `--user-data-dir`, and ends both on drop.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    profile: PathBuf,
}

/// A found element.
#[derive(Clone, Debug)]
pub struct El(pub String);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_exe(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found: install Debian's chromium and chromium-driver (.ci/run does)",
        names.join(" / ")
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` x
    /// `height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let driver_exe = find_exe(&["chromedriver"]);
        let chrome = find_exe(&["chromium", "chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_exe)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        let base = format!("http://127.0.0.1:{port}");
        // Generous: on a loaded 2-core CI machine chromedriver can be slow.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(mut r) = agent.get(format!("{base}/status")).call() {
                if let Ok(v) = r
                    .body_mut()
                    .read_to_vec()
                    .map(|b| serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
                {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = crate::support::temp_dir("chromium-profile");
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            profile,
        };
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", b.profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chrome, "args": args}
        }}});
        let v = b.raw("POST", "/session", Some(caps));
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b.resize(width, height);
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
            .unwrap();
        let mut resp = self
            .agent
            .run(req)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap_or_default())
            .unwrap_or(Value::Null);
        if status >= 400 {
            panic!("webdriver {method} {path} -> {status}: {v}");
        }
        v
    }

    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/session/{}{path}", self.base, self.session))
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
            .unwrap();
        let mut resp = self
            .agent
            .run(req)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap_or_default())
            .unwrap_or(Value::Null);
        if status >= 400 {
            Err(v["value"].clone())
        } else {
            Ok(v["value"].clone())
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"))
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find(&self, css: &str) -> Option<El> {
        self.try_cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(|s| El(s.to_string())))
    }

    pub fn find_all(&self, css: &str) -> Vec<El> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v[ELEMENT].as_str().map(|s| El(s.to_string())))
        .collect()
    }

    /// Polls until `css` matches a displayed element (no sleeps: a deadline).
    pub fn wait(&self, css: &str, timeout: Duration) -> El {
        let deadline = Instant::now() + timeout;
        loop {
            let shown = self.script(
                "const e = document.querySelector(arguments[0]);
                 return !!e && e.getClientRects().length > 0 && !e.closest('[hidden]');",
                json!([css]),
            );
            if shown == Value::Bool(true) {
                if let Some(el) = self.find(css) {
                    return el;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not appear; page text:\n{}",
                self.text_of("body")
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Polls until `pred(text of css)` holds.
    pub fn wait_text(&self, css: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text_of(css);
            if pred(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css}: text never matched; last: {t:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The text of the first element matching `css` ("" when none).
    pub fn text_of(&self, css: &str) -> String {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    pub fn click(&self, el: &El) {
        self.cmd("POST", &format!("/element/{}/click", el.0), Some(json!({})));
    }

    pub fn clear(&self, el: &El) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), Some(json!({})));
    }

    pub fn type_text(&self, el: &El, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        );
    }

    pub fn attr(&self, el: &El, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None)
            .as_str()
            .map(str::to_string)
    }

    /// Runs a synchronous script; `args` is a JSON array.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs an asynchronous script (its last argument is the callback).
    pub fn script_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None);
        labelhub::base64::decode(b64.as_str().unwrap()).unwrap()
    }

    /// The browser's current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_cmd("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
