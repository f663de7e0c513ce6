//! Access control and hostile input. In this process: the route table
//! walk (missing key, wrong scope, other printer), key lifecycle and
//! audit, submission rate limits. Against the real `labelhub serve`: the
//! bootstrap key file, source addresses, SSO, the per-address caps and
//! fairness, slow clients, hard limits, and a flood of hostile requests.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::inproc::InHub;
use crate::support::{
    audit_actions, connect_from, drip, fill, label, parse_http, resources, Client, Hub, Resp, Rng,
};

// ---------------------------------------------------------------- helpers

/// One request with exactly the given key (or none).
fn call(
    hub: &impl Client,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    hub.send(method, path, key, body, &[])
}

/// A request over a fresh socket with the given headers only.
fn raw_resp(
    hub: &Hub,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: hub\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let out = raw(
        hub.addr(),
        Ipv4Addr::LOCALHOST,
        req.as_bytes(),
        Duration::from_secs(30),
    )
    .unwrap();
    parse_resp(&out).unwrap_or_else(|| {
        panic!(
            "no HTTP answer to {method} {path}: {:?}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// Connects from `src` (any 127.x.y.z), sends `bytes`, half-closes, and
/// reads until the server closes (or `timeout`).
fn raw(
    dst: SocketAddr,
    src: Ipv4Addr,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut s = connect_from(dst, src)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // A refusal may arrive (and the server close) before all is written.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(out)
}

fn parse_resp(bytes: &[u8]) -> Option<Resp> {
    parse_http(bytes, false)
}

fn code(r: &Resp) -> String {
    serde_json::from_slice::<Value>(&r.bytes)
        .ok()
        .and_then(|v| v["error_code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Creates a key with the bootstrap key; returns (id, plaintext).
fn create_key(hub: &impl Client, body: Value) -> (String, String) {
    let r = hub.post("/api/admin/api-keys", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let v = r.json();
    (
        v["key_id"].as_str().unwrap().to_string(),
        v["plaintext"].as_str().unwrap().to_string(),
    )
}

fn printer_id(hub: &impl Client, slug: &str) -> String {
    let list = hub.get("/api/printers").json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == slug)
        .unwrap_or_else(|| panic!("no printer {slug} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn add_printer(hub: &impl Client, slug: &str) -> String {
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": format!("Printer {slug}"), "slug": slug, "model": "PT-P750W",
                "connection": {"uri": "emulator:?media=12&speed=instant"}}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()["id"].as_str().unwrap().to_string()
}

/// Every job (newest first, up to 200), as the bootstrap admin sees them.
fn all_jobs(hub: &impl Client) -> Vec<Value> {
    let r = hub.get("/api/jobs?limit=200");
    assert_eq!(r.status, 200);
    r.json().as_array().unwrap().clone()
}

// ------------------------------------------------------- the route walk

/// A body each route accepts far enough for the gate to be the judge.
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("GET" | "DELETE", _) => None,
        ("POST", "/print") => Some(label("walk")),
        ("POST", "/api/print/{printer_key}/batch") => Some(json!({"items": [label("walk")]})),
        ("POST", "/api/render/preview") => {
            Some(json!({"content_type": "text_one_line", "data": {"primary_id": "x"}}))
        }
        ("POST", "/api/v1/admin/printers") => Some(json!({"name": "Walk", "slug": "walk",
            "model": "PT-P750W", "connection": {"uri": "emulator:?media=12"}})),
        ("PUT", _) => Some(json!({"name": "Renamed"})),
        ("POST", "/api/admin/api-keys") => Some(json!({"name": "walk", "scopes": ["admin"]})),
        ("PATCH", _) => Some(json!({"notes": "walk"})),
        _ => Some(json!({})),
    }
}

/// Whether a route names or implies one printer (a key limited to another
/// printer must be refused), could widen a limited key's reach, or shows
/// every printer's changes.
fn touches_a_printer(method: &str, path: &str) -> bool {
    [
        "{printer_id}",
        "{printer_key}",
        "{slug}",
        "{job_id}",
        "{batch_id}",
    ]
    .iter()
    .any(|p| path.contains(p))
        || matches!(path, "/print" | "/printer/resume" | "/api/admin/audit")
        || path.starts_with("/api/admin/api-keys")
        || path == "/api/v1/admin/connection-test"
        || path.starts_with("/api/admin/webhooks")
        || (method == "POST" && path == "/api/v1/admin/printers")
        // appliance: a backup holds every printer's data.
        || path == "/api/v1/admin/backup"
}

/// List routes: a limited key sees only its printers there.
fn is_list(method: &str, path: &str) -> bool {
    method == "GET"
        && matches!(
            path,
            "/api/jobs" | "/api/events" | "/api/printers" | "/api/v1/admin/printers" | "/metrics"
        )
}

#[test]
fn every_route_refuses_a_missing_key_a_lower_scope_and_another_printers_key() {
    let hub = InHub::start();
    let demo = printer_id(&hub, "demo");
    let other = add_printer(&hub, "other");
    // A job and batch on each printer.
    let printed = hub.post("/print", &label("mine")).json();
    let (job, batch) = (
        printed["job_id"].as_str().unwrap().to_string(),
        printed["batch_id"].as_str().unwrap().to_string(),
    );
    hub.wait_batch(&batch, Duration::from_secs(30));
    let other_batch = hub
        .post(
            "/api/print/other/batch",
            &json!({"items": [label("theirs")]}),
        )
        .json();
    let other_job = other_batch["job_ids"][0].as_str().unwrap().to_string();
    hub.wait_batch(
        other_batch["batch_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );

    let (_, read) = create_key(&hub, json!({"name": "r", "scopes": ["read"]}));
    let (print_id, print) = create_key(&hub, json!({"name": "p", "scopes": ["print"]}));
    let (_, limited) = create_key(
        &hub,
        json!({"name": "other-only", "scopes": ["admin"], "allowed_printer_ids": [other]}),
    );
    let jobs_before = all_jobs(&hub);
    let keys = |hub: &InHub| {
        let mut v = hub.get("/api/admin/api-keys").json();
        for k in v.as_array_mut().unwrap() {
            let k = k.as_object_mut().unwrap();
            k.remove("last_used_at");
            k.remove("last_used_ip");
        }
        v
    };
    let keys_before = keys(&hub);

    let doc = call(&hub, None, "GET", "/openapi.json", None);
    assert_eq!(doc.status, 200, "the OpenAPI document is public");
    let doc = doc.json();
    let mut walked = 0;
    let mut seen_scopes = std::collections::BTreeSet::new();
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            let scope = op["x-scope"].as_str().unwrap();
            seen_scopes.insert(scope.to_string());
            let path = fill(template, &resources(&demo, "demo", &job, &batch, &print_id));
            let body = body_for(&method, template);
            let what = format!("{method} {template}");
            walked += 1;

            let anon = call(&hub, None, &method, &path, body.as_ref());
            if scope == "public" {
                // A console asset needs a real hashed name and sign-in a
                // key in the body; both answer without one. Inbound
                // webhooks check their own secret (X-API-Key; off = 503
                // here), QR landing pages are for phones scanning a label.
                if matches!(template.as_str(), "/assets/{file}" | "/api/session") {
                    assert!(anon.status != 401 && anon.status < 500, "{what} is public");
                } else if template.starts_with("/api/webhook/") {
                    assert_eq!(anon.status, 503, "{what} is public");
                } else {
                    assert_eq!(anon.status, 200, "{what} is public");
                }
                continue;
            }
            assert_eq!(anon.status, 401, "{what} without a key");
            assert_eq!(code(&anon), "missing_credentials", "{what}");
            assert_eq!(
                anon.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );

            let lower: &[&str] = match scope {
                "read" => &[],
                "print" => &[&read],
                "admin" => &[&read, &print],
                other => panic!("{what}: unknown scope {other}"),
            };
            for key in lower {
                let r = call(&hub, Some(key), &method, &path, body.as_ref());
                assert_eq!(r.status, 403, "{what} with a lower scope");
                assert_eq!(code(&r), "insufficient_scope", "{what}");
            }

            let r = call(&hub, Some(&limited), &method, &path, body.as_ref());
            if touches_a_printer(&method, template) {
                assert_eq!(
                    r.status, 403,
                    "{what} with a key limited to another printer"
                );
                assert_eq!(code(&r), "printer_not_allowed", "{what}");
            } else if is_list(&method, template) {
                assert_eq!(
                    r.status,
                    200,
                    "{what}: {}",
                    String::from_utf8_lossy(&r.bytes)
                );
                let text = String::from_utf8_lossy(&r.bytes);
                assert!(
                    !text.contains(&demo),
                    "{what} shows the other printer: {text}"
                );
                assert!(!text.contains(&job), "{what} shows the other printer's job");
            } else if template.starts_with("/api/lookup/") {
                // Let through; no app is configured here.
                assert_eq!(code(&r), "integration_not_configured", "{what}");
            } else {
                assert!(r.status < 400, "{what}: {} {}", r.status, code(&r));
            }
        }
    }
    assert!(walked >= 30, "walked only {walked} routes");
    let public: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, ops)| {
            ops.as_object()
                .unwrap()
                .values()
                .any(|op| op["x-scope"] == "public")
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(
        public,
        [
            "/",
            "/api/session",
            "/api/webhook/grocy",
            "/api/webhook/spoolman",
            "/asset/{entity_id}",
            "/assets/{file}",
            "/healthz",
            "/loc/{entity_id}",
            "/openapi.json",
            "/product/{entity_id}",
            "/readiness/public",
            "/spool/{entity_id}",
            "/ui"
        ],
        "only these need no key (the console's page, files and sign-in; webhooks have their own secret)"
    );
    assert_eq!(
        seen_scopes.into_iter().collect::<Vec<_>>(),
        ["admin", "print", "public", "read"]
    );

    // The limited key works on its own printer, job and batch.
    for path in [
        format!("/api/printers/{other}"),
        format!("/api/jobs/{other_job}"),
        format!("/api/batches/{}", other_batch["batch_id"].as_str().unwrap()),
        "/api/jobs".to_string(),
    ] {
        let r = call(&hub, Some(&limited), "GET", &path, None);
        assert_eq!(r.status, 200, "{path}");
    }
    let mine = call(&hub, Some(&limited), "GET", "/api/jobs", None).json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], other_job.as_str());

    // Nothing the refused requests asked for happened.
    assert_eq!(all_jobs(&hub), jobs_before, "jobs changed");
    assert_eq!(keys(&hub), keys_before, "keys changed");
    let printers = hub
        .get("/api/v1/admin/printers?include_disabled=true")
        .json();
    assert_eq!(printers.as_array().unwrap().len(), 2);
    assert!(printers
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["enabled"] == true && p["name"] != "Renamed"));
}

// ------------------------------------------------- keys, audit, bootstrap

#[test]
fn bootstrap_key_file_is_private_and_never_logged() {
    use std::os::unix::fs::PermissionsExt;
    let hub = Hub::start();
    let path = hub.data_dir.join("bootstrap-admin.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(hub.key.starts_with("lh_pat_") && hub.key.len() == 50);
    let log = hub.log_text();
    assert!(
        log.contains(&path.display().to_string()),
        "the log names the file"
    );
    assert!(
        !log.contains(&hub.key[16..]),
        "the log must not contain the key"
    );
    let keys = hub.get("/api/admin/api-keys").json();
    assert_eq!(keys[0]["name"], "bootstrap-admin");
    assert_eq!(keys[0]["scopes"], json!(["admin"]));
    assert!(!keys.to_string().contains(&hub.key[16..]));
}

#[test]
fn key_lifecycle_create_use_patch_revoke_and_audit() {
    let hub = InHub::start();
    let (id, key) = create_key(
        &hub,
        json!({"name": "kiosk", "scopes": ["print"], "rate_limit_per_minute": 100, "notes": "front desk"}),
    );
    assert_eq!(call(&hub, Some(&key), "GET", "/api/jobs", None).status, 200);
    let view = hub.get(&format!("/api/admin/api-keys/{id}")).json();
    for field in [
        "id",
        "name",
        "key_prefix",
        "scopes",
        "allowed_printer_ids",
        "rate_limit_per_minute",
        "enabled",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "expires_at",
        "notes",
    ] {
        assert!(view.get(field).is_some(), "ApiKeyRead.{field}");
    }
    assert_eq!(view["key_prefix"].as_str().unwrap(), &key[..16]);
    assert_eq!(view["last_used_ip"], "127.0.0.1");
    assert!(!view.to_string().contains(&key[16..]));

    // Disabled: the same 401 as a key that never existed.
    let r = hub.request(
        "PATCH",
        &format!("/api/admin/api-keys/{id}"),
        Some(br#"{"enabled": false}"#),
        &[],
    );
    assert_eq!(r.status, 200);
    let disabled = call(&hub, Some(&key), "GET", "/api/jobs", None);
    let mut forged = key.clone();
    forged.replace_range(49.., if key.ends_with('A') { "B" } else { "A" });
    let wrong = call(&hub, Some(&forged), "GET", "/api/jobs", None);
    let unknown = call(
        &hub,
        Some("lh_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "GET",
        "/api/jobs",
        None,
    );
    for r in [&disabled, &wrong, &unknown] {
        assert_eq!(r.status, 401);
        assert_eq!(code(r), "invalid_key");
    }
    assert_eq!(disabled.json()["detail"], unknown.json()["detail"]);

    // Scopes cannot change; bad values are refused with the field named.
    let r = hub.request(
        "PATCH",
        &format!("/api/admin/api-keys/{id}"),
        Some(br#"{"scopes": ["admin"]}"#),
        &[],
    );
    assert_eq!(r.status, 422);
    let r = hub.request(
        "PATCH",
        &format!("/api/admin/api-keys/{id}"),
        Some(br#"{"rate_limit_per_minute": 0}"#),
        &[],
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error_detail"]["field"], "rate_limit_per_minute");
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "x", "scopes": ["superuser"]}),
    );
    assert_eq!(r.status, 422);

    // Revoke; the last admin key cannot be revoked.
    let r = hub.request("DELETE", &format!("/api/admin/api-keys/{id}"), None, &[]);
    assert_eq!(r.status, 204);
    let boot = hub.get("/api/admin/api-keys").json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = hub.request("DELETE", &format!("/api/admin/api-keys/{boot}"), None, &[]);
    assert_eq!(r.status, 409);
    assert_eq!(code(&r), "last_admin_key");
    let r = hub.request("DELETE", "/api/admin/api-keys/not-a-uuid", None, &[]);
    assert_eq!(r.status, 404);

    // Every change is in the audit log, attributed, without the key.
    let audit = hub.get("/api/admin/audit").json();
    let actions = audit_actions(&audit);
    assert_eq!(
        actions[..3],
        ["api_key.revoke", "api_key.update", "api_key.create"],
        "{audit}"
    );
    let boot_actor = format!("api-key:{boot}");
    assert_eq!(audit["items"][0]["actor"], boot_actor.as_str());
    assert_eq!(audit["items"][0]["source_ip"], "127.0.0.1");
    assert_eq!(audit["items"][1]["before"]["enabled"], true);
    assert_eq!(audit["items"][1]["after"]["enabled"], false);
    assert!(!audit.to_string().contains(&key[16..]));
    assert!(!audit.to_string().contains(&hub.key[16..]));

    // Printer changes are audited too, with the actor and address.
    add_printer(&hub, "audited");
    let audit = hub
        .get("/api/admin/audit?target_type=printer&limit=1")
        .json();
    assert_eq!(audit["items"][0]["action"], "printer.create");
    assert_eq!(audit["items"][0]["actor"], boot_actor.as_str());
    assert_eq!(audit["items"][0]["source_ip"], "127.0.0.1");
}

#[test]
fn jobs_record_their_key_and_source_address() {
    let hub = Hub::start();
    let (id, key) = create_key(&hub, json!({"name": "p", "scopes": ["print"]}));
    let r = call(&hub, Some(&key), "POST", "/print", Some(&label("who")));
    assert_eq!(r.status, 202);
    let job = hub
        .get(&format!(
            "/api/jobs/{}",
            r.json()["job_id"].as_str().unwrap()
        ))
        .json();
    assert_eq!(job["api_key_id"], id.as_str());
    assert_eq!(job["source_ip"], "127.0.0.1");
}

#[test]
fn sso_needs_the_configured_token_and_nothing_else_grants_access() {
    let token = "t0k3n-".repeat(8);
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_SSO_TRUST_TOKEN", &token),
        ("PRINTER_HUB_SSO_SCOPE", "read"),
    ]);
    let ok = raw_resp(
        &hub,
        "GET",
        "/api/jobs",
        None,
        &[("X-Pangolin-Token", &token), ("Remote-User", "ann")],
    );
    assert_eq!(ok.status, 200);
    let r = raw_resp(
        &hub,
        "POST",
        "/print",
        Some(&label("x").to_string()),
        &[("X-Pangolin-Token", &token), ("Remote-User", "ann")],
    );
    assert_eq!(r.status, 403, "SSO users get the configured scope only");
    let wrong = &token[..token.len() - 1];
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("X-Pangolin-Token", wrong), ("Remote-User", "ann")],
            401,
            "invalid_sso_token",
        ),
        (vec![("X-Pangolin-Token", &token)], 401, "invalid_sso_token"),
        (vec![("Remote-User", "admin")], 401, "missing_credentials"),
        (
            vec![("X-Pangolin-User", "admin")],
            401,
            "missing_credentials",
        ),
        (
            vec![("Authorization", "Basic Y2xhdWRlLWF1dG9tYXRpb246eA==")],
            401,
            "missing_credentials",
        ),
        (
            vec![
                ("X-Label-Hub-Key", ""),
                ("X-Pangolin-Token", &token),
                ("Remote-User", "ann"),
            ],
            401,
            "invalid_key",
        ),
    ];
    for (headers, status, want) in cases {
        let r = raw_resp(&hub, "GET", "/api/jobs", None, &headers);
        assert_eq!((r.status, code(&r).as_str()), (status, want), "{headers:?}");
    }
    // Without a configured token the same headers grant nothing.
    let plain = Hub::start();
    let r = raw_resp(
        &plain,
        "GET",
        "/api/jobs",
        None,
        &[("X-Pangolin-Token", &token), ("Remote-User", "ann")],
    );
    assert_eq!((r.status, code(&r).as_str()), (401, "missing_credentials"));
}

// ------------------------------------------------------------ rate limits

#[test]
fn submissions_are_rate_limited_per_key_with_retry_after() {
    let hub = InHub::start();
    let (_, slow) = create_key(
        &hub,
        json!({"name": "slow", "scopes": ["print"], "rate_limit_per_minute": 2}),
    );
    let (_, other) = create_key(
        &hub,
        json!({"name": "other", "scopes": ["print"], "rate_limit_per_minute": 2}),
    );
    for _ in 0..2 {
        assert_eq!(
            call(&hub, Some(&slow), "POST", "/print", Some(&label("a"))).status,
            202
        );
    }
    let r = call(&hub, Some(&slow), "POST", "/print", Some(&label("a")));
    assert_eq!(r.status, 429);
    assert_eq!(code(&r), "rate_limit_exceeded");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "one token per 30 s: {retry}");
    // Batches draw from the same bucket; reads are not limited; other keys
    // have their own bucket.
    let r = call(
        &hub,
        Some(&slow),
        "POST",
        "/api/print/demo/batch",
        Some(&json!({"items": [label("b")]})),
    );
    assert_eq!(r.status, 429);
    for _ in 0..5 {
        assert_eq!(
            call(&hub, Some(&slow), "GET", "/api/jobs", None).status,
            200
        );
    }
    assert_eq!(
        call(&hub, Some(&other), "POST", "/print", Some(&label("c"))).status,
        202
    );
    // Refused requests cost nothing: a wrong-scope key never drains a bucket.
    assert_eq!(all_jobs(&hub).len(), 3);
}

#[test]
fn one_client_cannot_starve_the_others() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_MAX_CONNS_PER_CLIENT", "8"),
        ("PRINTER_HUB_HEADER_TIMEOUT_S", "60"),
    ]);
    let dst = hub.addr();
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    let victim = Ipv4Addr::new(127, 0, 0, 2);
    let key = hub.key.clone();
    let get = |src: Ipv4Addr| {
        let req = format!("GET /api/jobs HTTP/1.1\r\nHost: hub\r\nX-Label-Hub-Key: {key}\r\n\r\n");
        raw(dst, src, req.as_bytes(), Duration::from_secs(30))
            .ok()
            .and_then(|b| parse_resp(&b))
    };

    // Phase 1: the attacker holds all its slots with slow, unfinished heads.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = connect_from(dst, attacker).unwrap();
        s.write_all(b"GET /api/jobs HTTP/1.1\r\nHost: slow\r\n")
            .unwrap();
        held.push(s);
    }
    // Its next connection is refused at once, with Retry-After.
    let refused = (0..50)
        .find_map(|_| get(attacker).filter(|r| r.status == 429))
        .expect("the 9th connection from one address gets 429");
    assert_eq!(code(&refused), "too_many_connections");
    assert_eq!(refused.header("retry-after"), Some("1"));

    // The victim is served promptly while the attacker holds its slots.
    let mut worst_held = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = get(victim).expect("the victim gets an answer");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        worst_held = worst_held.max(t.elapsed());
    }
    drop(held);

    // Phase 2: 16 threads flood from the attacker's address as fast as
    // they can; at most 8 of their requests are in the hub at once.
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = (0..16)
        .map(|_| {
            let stop = stop.clone();
            let key = hub.key.clone();
            std::thread::spawn(move || {
                let mut n = (0u32, 0u32);
                let req = format!("GET /api/jobs HTTP/1.1\r\nX-Label-Hub-Key: {key}\r\n\r\n");
                while !stop.load(Ordering::Relaxed) {
                    if let Some(r) = raw(dst, attacker, req.as_bytes(), Duration::from_secs(30))
                        .ok()
                        .and_then(|b| parse_resp(&b))
                    {
                        if r.status == 429 {
                            n.1 += 1
                        } else {
                            n.0 += 1
                        }
                    }
                }
                n
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..30 {
        let t = Instant::now();
        let r = get(victim).expect("the victim gets an answer");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        worst = worst.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let (served, limited) = floods
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    eprintln!(
        "fairness: victim worst latency {worst_held:?} while the attacker held its slots, \
         {worst:?} during its flood; attacker {served} served, {limited} refused with 429"
    );
    assert!(
        worst_held < Duration::from_secs(2),
        "victim waited {worst_held:?}"
    );
    assert!(worst < Duration::from_secs(2), "victim waited {worst:?}");
    assert!(served > 0, "the attacker is served too, within its share");
    assert!(limited > 0, "the flood was capped");
}

// ----------------------------------------------------- slow clients, limits

#[test]
fn slow_clients_are_cut_off_and_do_not_hold_the_server() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_HEADER_TIMEOUT_S", "1"),
        ("PRINTER_HUB_BODY_TIMEOUT_S", "1"),
    ]);
    let dst = hub.addr();
    // A head that never ends.
    let t = Instant::now();
    let out = raw_keep_open(dst, b"GET /api/jobs HTTP/1.1\r\nHost: x\r\n");
    let r = parse_resp(&out).unwrap();
    assert_eq!(
        (r.status, code(&r).as_str()),
        (408, "request_header_timeout")
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A body that stalls.
    let out = raw_keep_open(
        dst,
        b"POST /print HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"content",
    );
    let r = parse_resp(&out).unwrap();
    assert_eq!((r.status, code(&r).as_str()), (408, "request_body_timeout"));

    // A slowloris that keeps dripping bytes is cut at the head deadline,
    // not kept alive by each byte.
    let mut s = connect_from(dst, Ipv4Addr::LOCALHOST).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let dripping = drip(
        s.try_clone().unwrap(),
        b"GET /api/jobs HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drip kept it open {:?}",
        t.elapsed()
    );
    assert_eq!(parse_resp(&out).unwrap().status, 408);
    drop(s);
    dripping.join().unwrap();

    // Meanwhile and afterwards, the server answers.
    assert_eq!(hub.get("/healthz").status, 200);
}

/// Sends `bytes` and waits (without closing) for the server's answer.
fn raw_keep_open(dst: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect_from(dst, Ipv4Addr::LOCALHOST).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn hard_limits_answer_with_clear_problems() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_MAX_BODY_BYTES", "4096"),
        ("PRINTER_HUB_MAX_HEADERS", "16"),
        ("PRINTER_HUB_MAX_HEADER_BYTES", "2048"),
    ]);
    let dst = hub.addr();
    let key = hub.key.clone();
    let send = |req: &[u8]| {
        parse_resp(&raw(dst, Ipv4Addr::LOCALHOST, req, Duration::from_secs(20)).unwrap()).unwrap()
    };

    let big = "x".repeat(5000);
    let r = send(
        format!(
            "POST /print HTTP/1.1\r\nX-Label-Hub-Key: {key}\r\nContent-Length: 5000\r\n\r\n{big}"
        )
        .as_bytes(),
    );
    assert_eq!((r.status, code(&r).as_str()), (413, "body_too_large"));
    let many: String = (0..20).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = send(format!("GET /healthz HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert_eq!((r.status, code(&r).as_str()), (431, "too_many_headers"));
    let r = send(
        format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "y".repeat(3000)
        )
        .as_bytes(),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (431, "request_header_too_large")
    );

    // JSON nesting, batch size, string length, wait, malformed input.
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let r = call(&hub, Some(&key), "POST", "/print", None);
    assert_eq!(r.status, 422, "empty body");
    let r = hub.request("POST", "/print", Some(deep.as_bytes()), &[]);
    assert_eq!((r.status, code(&r).as_str()), (400, "json_too_deep"));
    let items: Vec<Value> = (0..501)
        .map(|_| json!({"content_type": "text_one_line", "data": {}}))
        .collect();
    let r = hub.request(
        "POST",
        "/api/print/demo/batch",
        Some(json!({"items": items}).to_string().as_bytes()),
        &[],
    );
    assert!(r.status == 422 || r.status == 413, "{}", r.status);
    let r = hub.post(
        "/print",
        &json!({"content_type": "text_one_line", "data": {"primary_id": "z".repeat(1000)}}),
    );
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.bytes));
    for q in [
        "limit=abc",
        "limit=0",
        "cursor=x",
        "state=bogus",
        "since=yesterday",
    ] {
        let r = hub.get(&format!("/api/jobs?{q}"));
        assert!(r.status == 422 || r.status == 400, "{q}: {}", r.status);
    }
    for q in ["wait=NaN", "wait=-1", "wait=inf", "since=-5", "limit=0"] {
        let r = hub.get(&format!("/api/events?{q}"));
        assert!(r.status == 422 || r.status == 400, "{q}: {}", r.status);
    }
    // A huge wait is accepted (and capped at 60 s by the API); with events
    // already there it answers at once.
    let r = hub.get("/api/events?wait=1e9&since=0");
    assert_eq!(r.status, 200);
    for (path, status) in [
        ("/api/jobs/not-a-uuid", 404),
        ("/api/jobs/%FF%FE", 404),
        ("/api/jobs/%00", 404),
        ("/api/batches/..%2F..%2Fetc%2Fpasswd", 404),
        ("/api/nope", 404),
    ] {
        assert_eq!(hub.get(path).status, status, "{path}");
    }
    // Image bytes and pixels are checked before decoding.
    let wide = {
        let img = image::GrayImage::new(16_385, 1);
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        labelhub::base64::encode(&png.into_inner())
    };
    let hub_big = Hub::start();
    let r = hub_big.post(
        "/api/render/preview",
        &json!({"content_type": "image", "data": {"image": wide}}),
    );
    assert_eq!((r.status, code(&r).as_str()), (413, "image_too_large"));
    let r = hub_big.post(
        "/api/render/preview",
        &json!({"content_type": "image", "data": {"image": labelhub::base64::encode(b"\x89PNG\r\n\x1a\nnot really")}}),
    );
    assert!(r.status == 422 || r.status == 400, "{}", r.status);
    drop(hub_big);
    let r = hub.request(
        "POST",
        "/print",
        Some(b"{\"content_type\": \"\xff\xfe\"}"),
        &[],
    );
    assert_eq!(r.status, 422, "invalid UTF-8");
    let r = send(b"POST /print HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(
        (r.status, code(&r).as_str()),
        (501, "unsupported_transfer_encoding")
    );
    let r = send(b"GET / HTTP/2.0\r\n\r\n");
    assert_eq!(r.status, 505);
    let r = send(b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(all_jobs(&hub).is_empty(), "no job was created");
}

#[test]
fn requests_that_bypass_the_front_door_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let hub = Hub::start();
    let line = hub
        .wait_log("internal HTTP server on unix:", Duration::from_secs(5))
        .unwrap();
    let path = std::path::PathBuf::from(
        line.split("internal HTTP server on unix:")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap(),
    );
    // Only this user can reach the internal socket at all.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    // And a request that reaches it without the front's client address is
    // refused.
    let req = format!(
        "GET /api/jobs HTTP/1.1\r\nX-Label-Hub-Key: {}\r\nConnection: close\r\n\r\n",
        hub.key
    );
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let r = parse_resp(&out).unwrap();
    assert_eq!(
        (r.status, code(&r).as_str()),
        (403, "direct_connection_refused")
    );
}

// ------------------------------------------------------------- the flood

/// One hostile request (raw bytes). `key` is a valid print key, so bodies
/// reach the parsers; every body is invalid in some definite way.
fn hostile(rng: &mut Rng, key: &str, job: &str) -> Vec<u8> {
    let paths = [
        "/print".to_string(),
        "/api/print/demo/batch".into(),
        "/api/jobs".into(),
        format!("/api/jobs/{job}"),
        "/api/jobs/not-a-uuid".into(),
        "/api/jobs/%FF%FE%00".into(),
        "/api/jobs/..%2F..%2Fetc%2Fpasswd".into(),
        "/api/batches/%C3%28".into(),
        "/api/printers/%%%".into(),
        "/api/events".into(),
        format!("/api/jobs/{job}/cancel"),
        "/api/admin/api-keys".into(),
        "/../../etc/passwd".into(),
        format!("/api/{}", "a".repeat(4000)),
        "/api/jobs/\u{00e9}".into(),
    ];
    let queries = [
        "",
        "?limit=-1",
        "?limit=99999999999999999999",
        "?wait=NaN",
        "?wait=-5",
        "?wait=1e999",
        "?since=x",
        "?cursor=abc",
        "?state=%00",
        "?&&&==&",
        "?printer_id=%FF",
        "?a=%",
        "?limit=1&limit=2",
    ];
    let bodies: [&[u8]; 24] = [
        b"",
        b"{",
        b"null",
        b"[]",
        b"\"text\"",
        b"{\"content_type\": 5}",
        b"{\"content_type\": \"no_such_type\", \"data\": {}}",
        b"{\"content_type\": \"text_one_line\"}",
        b"{\"content_type\": \"text_one_line\", \"data\": []}",
        b"{\"content_type\": \"text_one_line\", \"data\": {}, \"extra\": 1}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\"}, \"options\": {\"copies\": 0}}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\"}, \"options\": {\"copies\": 11}}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\"}, \"options\": {\"copies\": 1e99}}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\"}, \"lookup\": {}}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\"}, \"printer\": \"nope\"}",
        b"{\"content_type\": \"\xff\xfe\xfd\", \"data\": {}}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"\\ud800\"}",
        b"{\"items\": []}",
        b"{\"items\": [{}]}",
        b"{\"items\": \"x\"}",
        b"\x00\x01\x02\x03",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": 1}}",
        b"{\"name\": \"x\", \"scopes\": [\"root\"]}",
        b"{\"content_type\": \"text_one_line\", \"data\": {\"primary_id\": \"x\", \"title\": 7}}",
    ];
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get", "P0ST",
        "GET GET",
    ];
    let keys = [
        key.to_string(),
        key.to_string(),
        String::new(),
        "lh_pat_".into(),
        format!("{}x", key),
        key.to_uppercase(),
        "Bearer x".into(),
        "lh_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    ];
    match rng.below(10) {
        // Random bytes.
        0 => (0..rng.below(600)).map(|_| rng.next() as u8).collect(),
        // A valid request with bytes flipped.
        1 => {
            let mut b =
                format!("GET /api/jobs HTTP/1.1\r\nX-Label-Hub-Key: {key}\r\n\r\n").into_bytes();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            b
        }
        // Header attacks.
        2 => {
            let attacks = [
                (0..100)
                    .map(|i| format!("X-{i}: v\r\n"))
                    .collect::<String>(),
                format!("X-Big: {}\r\n", "z".repeat(20_000)),
                "Content-Length: 5\r\nContent-Length: 6\r\n".into(),
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n".into(),
                "Transfer-Encoding: gzip, chunked\r\n".into(),
                "X-Folded: a\r\n continued\r\n".into(),
                "NoColonHere\r\n".into(),
                "X-Nul: a\u{0}b\r\n".into(),
                "X-Utf8: \u{00e9}\u{00e8}\r\n".into(),
                "Content-Length: -1\r\n".into(),
                "Content-Length: 999999999999\r\n".into(),
                "Expect: 999-nope\r\n".into(),
                " Leading: space\r\n".into(),
            ];
            format!(
                "POST /print HTTP/1.1\r\nX-Label-Hub-Key: {key}\r\n{}\r\nabc",
                rng.pick(&attacks)
            )
            .into_bytes()
        }
        // Chunked-body attacks.
        3 => {
            let attacks = [
                "zz\r\nabc\r\n0\r\n\r\n",
                "ffffffffffffffff\r\n",
                "3\r\nabcdef\r\n0\r\n\r\n",
                "3\nabc\n0\n\n",
                "-1\r\n\r\n",
                "3;x=\u{0}\r\nabc\r\n0\r\n\r\n",
                "5000000\r\n",
            ];
            format!("POST /print HTTP/1.1\r\nX-Label-Hub-Key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n{}", rng.pick(&attacks)).into_bytes()
        }
        // Broken request lines.
        4 => {
            let lines = [
                "GET\r\n\r\n",
                "GET / HTTP/2.0\r\n\r\n",
                "GET / HTTP/1.1x\r\n\r\n",
                "GET http://evil/ HTTP/1.1\r\n\r\n",
                " GET / HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\n\n",
                "\r\n\r\n",
                "GET /\x7f HTTP/1.1\r\n\r\n",
            ];
            rng.pick(&lines).as_bytes().to_vec()
        }
        // Deep JSON.
        5 => {
            let n = 33 + rng.below(100_000);
            let body = format!(
                "{{\"content_type\":\"text_one_line\",\"data\":{}{}}}",
                "[".repeat(n),
                "]".repeat(n)
            );
            framed("POST", "/print", "", key, body.as_bytes())
        }
        // Well-framed requests with hostile method, path, query, key, body.
        _ => {
            let method = rng.pick(&methods);
            let path = format!("{}{}", rng.pick(&paths), rng.pick(&queries));
            let k = rng.pick(&keys).clone();
            let body = *rng.pick(&bodies);
            framed(method, &path, "", &k, body)
        }
    }
}

fn framed(method: &str, path: &str, extra: &str, key: &str, body: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "{method} {path} HTTP/1.1\r\nHost: hub\r\nX-Label-Hub-Key: {key}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    b.extend_from_slice(body);
    b
}

#[test]
fn ten_thousand_hostile_requests_leave_the_hub_answering_and_jobs_intact() {
    const N: usize = 10_240;
    const THREADS: usize = 8;
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_HEADER_TIMEOUT_S", "2"),
        ("PRINTER_HUB_BODY_TIMEOUT_S", "2"),
    ]);
    // Existing jobs, finished.
    let b = hub
        .post(
            "/api/print/demo/batch",
            &json!({"items": [label("A"), label("B"), label("C")]}),
        )
        .json();
    hub.wait_batch(b["batch_id"].as_str().unwrap(), Duration::from_secs(30));
    let before = all_jobs(&hub);
    assert_eq!(before.len(), 3);
    let job = before[0]["id"].as_str().unwrap().to_string();
    let (_, key) = create_key(
        &hub,
        json!({"name": "flood", "scopes": ["print"], "rate_limit_per_minute": 10000}),
    );

    let dst = hub.addr();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let key = key.clone();
            let job = job.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1));
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                let mut silent = 0usize;
                for _ in 0..N / THREADS {
                    let req = hostile(&mut rng, &key, &job);
                    let out = raw(dst, Ipv4Addr::LOCALHOST, &req, Duration::from_secs(30)).unwrap();
                    match parse_resp(&out) {
                        Some(r) => {
                            assert!(
                                r.status < 500
                                    || r.status == 501
                                    || r.status == 505
                                    || r.status == 503,
                                "{} for {:?}: {}",
                                r.status,
                                String::from_utf8_lossy(&req[..req.len().min(300)]),
                                String::from_utf8_lossy(&r.bytes)
                            );
                            assert_ne!(
                                r.status,
                                202,
                                "a hostile request created a job: {:?}",
                                String::from_utf8_lossy(&req[..req.len().min(300)])
                            );
                            *statuses.entry(r.status).or_default() += 1;
                        }
                        None => silent += 1,
                    }
                }
                (statuses, silent)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut silent = 0;
    for w in workers {
        let (s, n) = w.join().unwrap();
        silent += n;
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    let took = t0.elapsed();
    eprintln!("hostile flood: {N} requests in {took:?}; answers by status {statuses:?}; closed without an answer: {silent}");
    assert_eq!(statuses.values().sum::<usize>() + silent, N);

    // Still answering, nothing created, nothing changed.
    assert_eq!(hub.get("/healthz").status, 200);
    assert_eq!(
        all_jobs(&hub),
        before,
        "existing jobs changed or new jobs appeared"
    );
    let r = hub.post("/print", &label("after"));
    assert_eq!(r.status, 202, "the hub still prints");
    assert!(!hub.log_text().contains("panicked"), "a handler panicked");
}
