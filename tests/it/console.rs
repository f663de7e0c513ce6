//! The web console: sessions, security headers, assets and SSE
//! over HTTP, and the people's flows in a real headless Chromium driven
//! over WebDriver (Debian's `chromium` + `chromium-driver`, installed by
//! `.ci/run`), with axe-core (installed by `.ci/run` into `target/axe`)
//! run on every page at phone and desktop width. Screenshots go to
//! `target/console-screenshots/`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{label, Client, Hub};
use crate::webdriver::Browser;

const T: Duration = Duration::from_secs(20);
const PHONE: (u32, u32) = (360, 900);
const DESKTOP: (u32, u32) = (1280, 1000);

// ---------------------------------------------------------------- HTTP

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

/// A request with exactly these headers (no key added).
fn call(
    hub: &Hub,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", hub.base));
    if body.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
        .unwrap();
    let mut resp = agent().run(req).unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = resp.body_mut().read_to_vec().unwrap();
    (status, headers, bytes)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn code(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes).unwrap()["error_code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Signs in with `key`: (cookie pair `lh_session=...`, csrf token).
fn sign_in(hub: &Hub, key: &str) -> (String, String) {
    let (status, headers, bytes) = call(
        hub,
        "POST",
        "/api/session",
        Some(&json!({ "key": key })),
        &[],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&bytes));
    let cookie = header(&headers, "set-cookie").unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = serde_json::from_slice::<Value>(&bytes).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    (pair, csrf)
}

fn new_key(hub: &Hub, name: &str, scope: &str, printers: &[&str]) -> (String, String) {
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": name, "scopes": [scope], "allowed_printer_ids": if printers.is_empty() { Value::Null } else { json!(printers) }}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let v = r.json();
    (
        v["plaintext"].as_str().unwrap().to_string(),
        v["key_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn sessions_are_strict_cookies_that_need_csrf_and_end_with_their_key() {
    let hub = Hub::start();
    // A wrong key opens nothing.
    let (status, _, bytes) = call(
        &hub,
        "POST",
        "/api/session",
        Some(&json!({"key": "lh_pat_nope"})),
        &[],
    );
    assert_eq!((status, code(&bytes).as_str()), (401, "invalid_key"));

    let (status, headers, _) = call(
        &hub,
        "POST",
        "/api/session",
        Some(&json!({ "key": hub.key })),
        &[],
    );
    assert_eq!(status, 201);
    let cookie = header(&headers, "set-cookie").unwrap();
    assert!(cookie.starts_with("lh_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure");
    let (_, headers, _) = call(
        &hub,
        "POST",
        "/api/session",
        Some(&json!({ "key": hub.key })),
        &[("X-Forwarded-Proto", "https")],
    );
    assert!(header(&headers, "set-cookie")
        .unwrap()
        .ends_with("; Secure"));

    // A print key limited to the demo printer: the session carries exactly that.
    let demo = hub.get("/api/printers/demo").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (key, key_id) = new_key(&hub, "limited", "print", &[&demo]);
    let (cookie, csrf) = sign_in(&hub, &key);
    let (status, _, bytes) = call(&hub, "GET", "/api/session", None, &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    let s: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(s["scope"], "print");
    assert_eq!(s["printers"], json!([demo]));
    assert_eq!(s["csrf_token"], csrf.as_str());
    let (status, _, bytes) = call(&hub, "GET", "/api/printers", None, &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap()[0]["id"],
        demo.as_str()
    );
    // Beyond its scope: refused like the key itself.
    let (status, _, bytes) = call(
        &hub,
        "GET",
        "/api/admin/api-keys",
        None,
        &[("Cookie", &cookie)],
    );
    assert_eq!((status, code(&bytes).as_str()), (403, "insufficient_scope"));

    // A state change needs the CSRF token: none, wrong, then right.
    let pause = format!("/api/printers/{demo}/pause");
    let (status, _, bytes) = call(&hub, "POST", &pause, None, &[("Cookie", &cookie)]);
    assert_eq!((status, code(&bytes).as_str()), (403, "csrf_token_invalid"));
    let (status, _, bytes) = call(
        &hub,
        "POST",
        &pause,
        None,
        &[("Cookie", &cookie), ("X-CSRF-Token", "x")],
    );
    assert_eq!((status, code(&bytes).as_str()), (403, "csrf_token_invalid"));
    assert_eq!(hub.get("/api/printers/demo").json()["paused"], false);
    let (status, _, _) = call(
        &hub,
        "POST",
        &pause,
        None,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
    );
    assert_eq!(status, 204);
    assert_eq!(hub.get("/api/printers/demo").json()["paused"], true);

    // Revoking the key ends the session at once.
    assert_eq!(
        hub.request(
            "DELETE",
            &format!("/api/admin/api-keys/{key_id}"),
            None,
            &[]
        )
        .status,
        204
    );
    let (status, _, bytes) = call(&hub, "GET", "/api/printers", None, &[("Cookie", &cookie)]);
    assert_eq!((status, code(&bytes).as_str()), (401, "session_invalid"));

    // Sign-out ends a session (it needs the CSRF token too).
    let (cookie, csrf) = sign_in(&hub, &hub.key.clone());
    let (status, _, bytes) = call(&hub, "DELETE", "/api/session", None, &[("Cookie", &cookie)]);
    assert_eq!((status, code(&bytes).as_str()), (403, "csrf_token_invalid"));
    let (status, headers, _) = call(
        &hub,
        "DELETE",
        "/api/session",
        None,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
    );
    assert_eq!(status, 204);
    assert!(header(&headers, "set-cookie")
        .unwrap()
        .contains("lh_session=;"));
    let (status, _, bytes) = call(&hub, "GET", "/api/session", None, &[("Cookie", &cookie)]);
    assert_eq!((status, code(&bytes).as_str()), (401, "session_invalid"));

    // The session routes are in the OpenAPI document.
    let doc = hub.get("/openapi.json").json();
    for m in ["post", "get", "delete"] {
        assert!(
            doc["paths"]["/api/session"][m].is_object(),
            "{m} /api/session"
        );
    }
}

#[test]
fn the_page_and_its_assets_are_hashed_cached_small_and_locked_down() {
    let hub = Hub::start();
    let (status, headers, page) = call(&hub, "GET", "/", None, &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
    let html = String::from_utf8(page.clone()).unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("style="), "no inline style");
    let (status, _, ui) = call(&hub, "GET", "/ui", None, &[]);
    assert_eq!((status, ui.len()), (200, page.len()));

    let mut total = page.len();
    let urls: Vec<&str> = html
        .split("\"/assets/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(urls.len() >= 4, "{urls:?}");
    let mut seen = std::collections::BTreeSet::new();
    for u in urls {
        if !seen.insert(u) {
            continue;
        }
        let (status, headers, bytes) = call(&hub, "GET", &format!("/assets/{u}"), None, &[]);
        assert_eq!(status, 200, "{u}");
        assert_eq!(
            header(&headers, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(header(&headers, "content-security-policy").is_some());
        // The name carries the content's hash.
        let hash = u.split('.').nth(1).unwrap();
        assert_eq!(hash.len(), 12, "{u}");
        let digest = sha2_hex(&bytes);
        assert!(digest.starts_with(hash), "{u}: {digest}");
        total += bytes.len();
    }
    assert!(total < 150 * 1024, "first page is {total} bytes");
    println!("first page: {total} bytes uncompressed");
    let (status, _, bytes) = call(&hub, "GET", "/assets/app.000000000000.js", None, &[]);
    assert_eq!((status, code(&bytes).as_str()), (404, "asset_not_found"));
}

fn sha2_hex(bytes: &[u8]) -> String {
    // sha2 is a dependency of the library; go through the same crate.
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads SSE frames from a raw stream until `pred` holds for one.
fn read_frame(reader: &mut BufReader<TcpStream>, pred: impl Fn(&str) -> bool) -> String {
    let mut frame = String::new();
    let deadline = Instant::now() + T;
    loop {
        assert!(Instant::now() < deadline, "no matching frame in time");
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "stream ended; last frame: {frame}");
        if line == "\n" || line == "\r\n" {
            if pred(&frame) {
                return frame;
            }
            frame.clear();
        } else {
            frame.push_str(&line);
        }
    }
}

fn open_stream(hub: &Hub, path: &str, extra: &[(&str, &str)]) -> BufReader<TcpStream> {
    let addr = hub.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Label-Hub-Key: {}\r\n",
        hub.key
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut ct = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.to_ascii_lowercase().starts_with("content-type:") {
            ct = line.clone();
        }
        if line == "\r\n" {
            break;
        }
    }
    assert!(ct.contains("text/event-stream"), "{ct}");
    r
}

#[test]
fn events_stream_with_upstream_names_and_resume_from_the_last_event_id() {
    let hub = Hub::start();
    let demo = hub.get("/api/printers/demo").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // From the start: the demo printer's first tape report is a
    // `printer.tape_changed` (the feed's printer.media_changed).
    let mut r = open_stream(&hub, "/api/events?since=0", &[]);
    let frame = read_frame(&mut r, |f| f.contains("event: printer.tape_changed"));
    assert!(frame.contains("\"to\":\"12\""), "{frame}");
    // Live: a pause arrives as printer.status.
    assert_eq!(
        hub.post_empty(&format!("/api/printers/{demo}/pause"))
            .status,
        204
    );
    let frame = read_frame(&mut r, |f| {
        f.contains("event: printer.status") && f.contains("\"reason\":\"operator\"")
    });
    let id: i64 = frame
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(r);
    // A job while nobody listens; a reconnect with Last-Event-ID gets it.
    let job = hub
        .post(
            "/print",
            &json!({"content_type": "text_one_line", "data": {"primary_id": "R"}}),
        )
        .json();
    let job_id = job["job_id"].as_str().unwrap().to_string();
    let mut r = open_stream(&hub, "/api/events", &[("Last-Event-ID", &id.to_string())]);
    let frame = read_frame(&mut r, |f| f.starts_with("id: ") || f.contains("\nid: "));
    let first: i64 = frame
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(first, id + 1, "resumes right after the last event seen");
    if !(frame.contains(&job_id) && frame.contains("event: job.created")) {
        read_frame(&mut r, |f| {
            f.contains(&job_id) && f.contains("event: job.created")
        });
    }
    // The JSON long-poll is still the default.
    let feed = hub.get("/api/events?since=0&limit=1");
    assert_eq!(feed.header("content-type"), Some("application/json"));
    // The dropped first stream is noticed at its next write; this one counts.
    let open = hub.get("/healthz").json()["sse_active_subscribers"]
        .as_u64()
        .unwrap();
    assert!((1..=2).contains(&open), "{open}");
}

#[test]
fn an_event_stream_ends_when_its_key_is_revoked() {
    let hub = Hub::start();
    let (key, key_id) = new_key(&hub, "watcher", "read", &[]);
    let addr = hub.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(
        format!(
            "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Label-Hub-Key: {key}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut r = BufReader::new(s);
    read_frame(&mut r, |f| f.contains(": connected"));
    assert_eq!(
        hub.request(
            "DELETE",
            &format!("/api/admin/api-keys/{key_id}"),
            None,
            &[]
        )
        .status,
        204
    );
    read_frame(&mut r, |f| f.contains("event: session.ended"));
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the end");
}

// ------------------------------------------------- error codes in words

/// Every `error_code` the hub can answer, derived from the sources: the
/// string literals of every `fn code(...)` body, every `code: "..."`, every
/// `ApiError::invalid("...")` and `JobError::new("...")`, and the pause
/// reasons.
fn error_codes() -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    fn literal_at(s: &str) -> Option<String> {
        let s = s.trim_start();
        let rest = s.strip_prefix('"')?;
        let end = rest.find('"')?;
        let lit = &rest[..end];
        (!lit.is_empty()
            && lit.starts_with(|c: char| c.is_ascii_lowercase())
            && lit
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .then(|| lit.to_string())
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut codes = std::collections::BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        // `fn code(&self)` / `fn code(self)` bodies: every `=> "literal"`.
        let mut rest = text;
        while let Some(i) = rest.find("fn code(") {
            let body_start = rest[i..].find('{').map(|j| i + j + 1).unwrap();
            let mut depth = 1;
            let mut end = body_start;
            for (k, c) in rest[body_start..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = body_start + k;
                    break;
                }
            }
            for part in rest[body_start..end].split("=>").skip(1) {
                if let Some(l) = literal_at(part) {
                    codes.insert(l);
                }
            }
            rest = &rest[end..];
        }
        for marker in [
            "code: ",
            "ApiError::invalid(",
            "JobError::new(",
            "AuthError::invalid(",
        ] {
            for part in text.split(marker).skip(1) {
                if let Some(l) = literal_at(part) {
                    if marker != "AuthError::invalid(" {
                        codes.insert(l);
                    }
                }
            }
        }
    }
    // AuthError::invalid names a field; its code is validation_error
    // (already in the set from AuthError::code). Pause reasons:
    codes.insert("operator".into());
    codes
}

#[test]
fn every_error_code_the_api_can_answer_has_a_human_message() {
    let codes = error_codes();
    assert!(codes.len() > 100, "the scan found too little: {codes:?}");
    for sure in [
        "csrf_token_invalid",
        "session_invalid",
        "cover_open",
        "media_mismatch",
        "invalid_job_state",
        "route_not_found",
        "snmp_timeout",
    ] {
        assert!(codes.contains(sure), "scan missed {sure}");
    }
    let js = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/assets/messages.js"),
    )
    .unwrap();
    let known: std::collections::BTreeSet<String> = js
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            (v.trim().starts_with('"')
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .then(|| k.to_string())
        })
        .collect();
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !known.contains(*c) && !["batch", "job", "printer"].contains(&c.as_str()))
        .collect();
    assert!(missing.is_empty(), "no human message for {missing:?}");
}

// ------------------------------------------------------------- browser

fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn axe_source() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. axe-core is installed by .ci/run: \
             (mkdir -p target/axe && cd target/axe && npm install axe-core@4)",
            p.display()
        )
    })
}

/// Runs axe-core on the current page: no serious or critical violation.
fn axe(b: &Browser, page: &str) {
    let src = axe_source();
    b.script(&format!("{src}\n;return true;"), json!([]));
    let v = b.script_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document, {resultTypes: ['violations']})
           .then(r => done(r.violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))
           .catch(e => done([{error: String(e)}]));",
        json!([]),
    );
    assert_eq!(v, json!([]), "axe on {page}: {v:#}");
}

/// Full-page screenshots at phone and desktop width, with axe at both;
/// ends at desktop width.
fn shoot(b: &Browser, name: &str) {
    for ((w, h), tag) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        b.resize(w, h);
        // Let layout settle on the new width (two animation frames).
        b.script_async(
            "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            json!([]),
        );
        // The whole page: grow the window to the page's height.
        let full = b
            .script("return document.documentElement.scrollHeight", json!([]))
            .as_u64()
            .unwrap_or(h as u64)
            .clamp(h as u64, 3000) as u32;
        if full > h {
            b.resize(w, full);
        }
        b.script("window.scrollTo(0, 0); return true;", json!([]));
        let png = b.screenshot();
        std::fs::write(shots_dir().join(format!("{name}-{tag}.png")), png).unwrap();
        axe(b, &format!("{name} ({tag})"));
    }
}

fn sign_in_browser(b: &Browser, hub: &Hub, key: &str) {
    b.goto(&format!("{}/", hub.base));
    let input = b.wait("#key", T);
    b.type_text(&input, key);
    b.click(&b.find("form.signin button[type=submit]").unwrap());
    b.wait("#nav a[data-page=printers]", T);
}

fn nav(b: &Browser, page: &str) {
    b.click(&b.wait(&format!("#nav a[data-page={page}]"), T));
}

const DEMO_STATE: &str = "section.printer[data-printer=demo] [data-role=state]";
const DEMO_REASON: &str = "section.printer[data-printer=demo] [data-role=reason]";

/// Polls `cond` until it holds (or fails the test after `T`).
fn wait_true(cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn fill(b: &Browser, css: &str, text: &str) {
    let el = b.wait(css, T);
    b.clear(&el);
    b.type_text(&el, text);
}

#[test]
fn people_sign_in_print_watch_pause_cancel_see_faults_and_add_a_printer() {
    let hub = Hub::start_env(&[("PRINTER_HUB_STATUS_POLL_S", "1")]);
    let b = Browser::start(DESKTOP.0, DESKTOP.1);

    // Sign in.
    b.goto(&format!("{}/", hub.base));
    b.wait("#key", T);
    shoot(&b, "signin");
    sign_in_browser(&b, &hub, &hub.key);
    assert!(b.find("#nav a[data-page=admin]").is_some());

    // Printers: the demo printer is online with 12 mm tape.
    b.wait_text(DEMO_STATE, T, |t| t == "Online");
    b.wait_text(
        "section.printer[data-printer=demo] [data-role=media]",
        T,
        |t| t.contains("12 mm"),
    );
    shoot(&b, "printers");

    // Print: a qr_two_lines label from the form, with a live preview.
    nav(&b, "print");
    b.wait("#f-qr_payload", T);
    assert_eq!(
        b.script(
            "return document.getElementById('content_type').value",
            json!([])
        ),
        "qr_two_lines"
    );
    let labels: Vec<String> = b
        .find_all("#fields input, #fields textarea, #fields select")
        .iter()
        .map(|e| b.attr(e, "name").unwrap())
        .collect();
    assert_eq!(labels, ["qr_payload", "primary_id", "title", "secondary"]);
    fill(&b, "#f-qr_payload", "https://example.com/shelf/7");
    fill(&b, "#f-primary_id", "SHELF-7");
    fill(&b, "#f-title", "Screws");
    let img = b.wait("#preview-img", T);
    let first = b.attr(&img, "data-hash").unwrap();
    b.type_text(&b.find("#f-title").unwrap(), " M4");
    let deadline = Instant::now() + T;
    let second = loop {
        let h = b.attr(&b.find("#preview-img").unwrap(), "data-hash");
        if h.as_deref().is_some_and(|h| h != first) {
            break h.unwrap();
        }
        assert!(Instant::now() < deadline, "the preview never changed");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_ne!(first, second);
    shoot(&b, "print");
    let before = hub.pngs("demo").len();
    b.click(&b.find("#submit").unwrap());
    b.wait_text("#batch-summary", T, |t| t.contains("1 of 1 printed"));
    assert!(b.url().contains("#/batch/"));
    shoot(&b, "batch");
    assert_eq!(
        hub.pngs("demo").len(),
        before + 1,
        "the emulator's PNG exists"
    );

    // Pause from the dashboard, submit, cancel the queued job, resume.
    nav(&b, "printers");
    b.click(&b.wait(
        "section.printer[data-printer=demo] button[data-action=pause]",
        T,
    ));
    b.wait_text(DEMO_STATE, T, |t| t == "Paused");
    b.wait_text(DEMO_REASON, T, |t| t.contains("operator"));
    nav(&b, "print");
    fill(&b, "#f-qr_payload", "q");
    fill(&b, "#f-primary_id", "HELD");
    fill(&b, "#f-title", "waits");
    b.click(&b.wait("#submit", T));
    b.wait_text("#batch-summary", T, |t| t.contains("0 of 1 printed"));
    nav(&b, "jobs");
    b.click(&b.wait("#jobs tr[data-state=queued] button[data-action=cancel]", T));
    b.wait("#jobs tr[data-state=cancelled]", T);
    assert!(b.find("#jobs tr[data-state=queued]").is_none());
    shoot(&b, "jobs");
    nav(&b, "printers");
    b.click(&b.wait(
        "section.printer[data-printer=demo] button[data-action=resume]",
        T,
    ));
    b.wait_text(DEMO_STATE, T, |t| t == "Online");
    assert_eq!(
        hub.pngs("demo").len(),
        before + 1,
        "the cancelled job never printed"
    );

    // A fault on the emulator shows within 2 s, with the reason in words.
    let fault = hub.data_dir.join("emulator").join("demo").join("fault");
    std::fs::write(&fault, "cover_open").unwrap();
    let t0 = Instant::now();
    b.wait_text(DEMO_REASON, Duration::from_secs(2), |t| {
        t.contains("cover is open")
    });
    println!("cover open shown after {:?}", t0.elapsed());
    // Idle, the printer is "not ready"; it pauses once a job waits.
    b.wait_text(DEMO_STATE, T, |t| t == "Not ready" || t == "Paused");
    shoot(&b, "printers-fault");
    std::fs::write(&fault, "").unwrap();
    b.wait_text(DEMO_STATE, T, |t| t == "Online");

    // An admin adds a printer, after testing its connection.
    nav(&b, "admin");
    b.click(&b.wait("#add-printer-btn", T));
    fill(&b, "#pf-name", "Shelf printer");
    fill(&b, "#pf-slug", "shelf");
    fill(&b, "#pf-model", "PT-P750W");
    fill(&b, "#pf-uri", "emulator:?media=24&speed=instant");
    b.click(&b.find("#test-connection").unwrap());
    b.wait_text("#test-result", T, |t| {
        t.contains("ready") && t.contains("24 mm")
    });
    shoot(&b, "admin-printers");
    b.click(&b.find("#add-printer button[type=submit]").unwrap());
    b.wait("tr[data-printer=shelf]", T);
    let created = hub.get("/api/printers/shelf");
    assert_eq!(created.status, 200);
    assert_eq!(created.json()["name"], "Shelf printer");

    // ...and deletes it again. A label waits on it (paused), so the first
    // try is refused in words and the second, explicit action cancels it.
    assert_eq!(hub.post_empty("/api/printers/shelf/pause").status, 204);
    let mut waiting = label("WAITS");
    waiting["printer"] = json!("shelf");
    assert_eq!(hub.post("/print", &waiting).status, 202);
    const SHELF: &str = "tr[data-printer=shelf]";
    let focused = "const e = document.activeElement; return e ? (e.dataset.action || '') : '';";
    b.click(&b.wait(&format!("{SHELF} button[data-action=delete]"), T));
    // Keyboard: the safe choice has the focus; Escape closes the question.
    let keep = b.wait(&format!("{SHELF} button[data-action=keep]"), T);
    wait_true(|| b.script(focused, json!([])) == "keep", "focus on Keep");
    b.type_text(&keep, "\u{E00C}");
    wait_true(
        || {
            b.find(&format!("{SHELF} [data-action=confirm-delete]"))
                .is_none()
        },
        "Escape closes the confirmation",
    );
    assert_eq!(b.script(focused, json!([])), "delete");
    b.click(&b.wait(&format!("{SHELF} button[data-action=delete]"), T));
    // Enter on the focused confirm button deletes.
    let yes = b.wait(&format!("{SHELF} button[data-action=confirm-delete]"), T);
    b.type_text(&yes, "\u{E007}");
    b.wait_text(&format!("{SHELF} [data-role=delete-problem]"), T, |t| {
        t.contains("labels waiting") && t.contains("Cancel them first")
    });
    let force = b.wait(
        &format!("{SHELF} button[data-action=delete-cancel-queued]"),
        T,
    );
    assert_eq!(
        b.text_of(&format!("{SHELF} button[data-action=delete-cancel-queued]")),
        "Delete and cancel 1 waiting label"
    );
    assert_eq!(
        hub.get("/api/printers/shelf").status,
        200,
        "not deleted yet"
    );
    shoot(&b, "admin-printers-delete");
    b.click(&force);
    wait_true(
        || b.find(SHELF).is_none(),
        "the deleted printer leaves the list",
    );
    b.wait_text("#alert", T, |t| {
        t.contains("deleted") && t.contains("1 waiting label was cancelled")
    });
    assert!(b.find("tr[data-printer=demo]").is_some());
    shoot(&b, "admin-printers-deleted");
    assert_eq!(hub.get("/api/printers/shelf").status, 404);
    let list = hub.get("/api/v1/admin/printers?include_disabled=true");
    assert_eq!(list.status, 200);
    let slugs: Vec<Value> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].clone())
        .collect();
    assert_eq!(slugs, [json!("demo")], "gone from the admin list");

    // API keys: create one, the plaintext is shown once.
    b.click(&b.wait("a[href='#/admin/keys']", T));
    fill(&b, "#kf-name", "packing desk");
    b.click(&b.find("#create-key button[type=submit]").unwrap());
    let plaintext = b.wait_text("#plaintext", T, |t| t.starts_with("lh_pat_"));
    assert_eq!(
        hub.request(
            "GET",
            "/api/printers",
            None,
            &[("X-Label-Hub-Key", plaintext.trim())]
        )
        .status,
        200
    );
    shoot(&b, "admin-keys");
    b.click(&b.wait("a[href='#/admin/audit']", T));
    b.wait("#audit tr", T);
    shoot(&b, "admin-audit");
}

#[test]
fn a_read_key_sees_no_admin_and_its_forged_or_tokenless_requests_are_refused() {
    let hub = Hub::start();
    let (key, _) = new_key(&hub, "wall screen", "read", &[]);
    let b = Browser::start(PHONE.0, PHONE.1);
    sign_in_browser(&b, &hub, &key);
    b.wait_text(DEMO_STATE, T, |t| !t.is_empty());
    assert!(b.find("#nav a[data-page=admin]").is_none(), "no admin link");
    assert!(b.find("#nav a[data-page=print]").is_none(), "no print link");
    assert!(
        b.find("button[data-action=pause]").is_none(),
        "no button it cannot use"
    );
    shoot(&b, "printers-read-key");
    b.goto(&format!("{}/#/admin", hub.base));
    b.wait_text("main h1", T, |t| t == "Not allowed");

    // Forged state changes from its session, with the right CSRF token:
    // the server refuses them.
    let forge = "const [method, path, body] = arguments; const done = arguments[3];
        fetch('/api/session').then(r => r.json()).then(s =>
          fetch(path, {method, credentials: 'same-origin',
                       headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token},
                       body: body ? JSON.stringify(body) : undefined}))
        .then(r => r.json().then(j => done([r.status, j.error_code])))
        .catch(e => done([0, String(e)]));";
    for (method, path, body) in [
        ("POST", "/api/printers/demo/pause", Value::Null),
        (
            "POST",
            "/api/v1/admin/printers",
            json!({"name": "x", "slug": "x", "model": "PT-P750W", "connection": {"uri": "emulator:"}}),
        ),
        (
            "POST",
            "/api/admin/api-keys",
            json!({"name": "mine", "scopes": ["admin"]}),
        ),
    ] {
        let r = b.script_async(forge, json!([method, path, body]));
        assert_eq!(r, json!([403, "insufficient_scope"]), "{method} {path}");
    }
    assert_eq!(hub.get("/api/printers/demo").json()["paused"], false);
    assert_eq!(hub.get("/api/printers/x").status, 404);

    // Without the CSRF token even an admin session changes nothing.
    b.goto(&format!("{}/", hub.base));
    b.click(&b.wait("#signout", T));
    b.wait("#key", T);
    sign_in_browser(&b, &hub, &hub.key);
    let r = b.script_async(
        "const done = arguments[0];
         fetch('/api/printers/demo/pause', {method: 'POST', credentials: 'same-origin'})
           .then(r => r.json().then(j => done([r.status, j.error_code])));",
        json!([]),
    );
    assert_eq!(r, json!([403, "csrf_token_invalid"]));
    assert_eq!(hub.get("/api/printers/demo").json()["paused"], false);
    // The console itself sends the token: the button works.
    b.click(&b.wait(
        "section.printer[data-printer=demo] button[data-action=pause]",
        T,
    ));
    b.wait_text(DEMO_STATE, T, |t| t == "Paused");
}
