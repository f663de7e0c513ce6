//! The appliance: build information, the command line as users
//! expect it, backup and restore, discovery (fake sysfs, SNMP against
//! emulators on 127.0.0.x), USB auto-add, deleting printers, 415 for
//! multipart, and the systemd unit (`systemd-analyze verify`). The .deb is
//! built and installed by tests/packaging.sh (run by .ci/run).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{label, temp_dir, Client, Hub};

const T: Duration = Duration::from_secs(60);

fn labelhub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .args(args)
        .env_remove("PRINTER_HUB_DATA_DIR")
        .env_remove("PRINTER_HUB_SYSFS_ROOT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------
// Build information and the command line
// ---------------------------------------------------------------------------

#[test]
fn version_and_healthz_carry_the_build_information() {
    let out = labelhub(&["--version"]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    assert!(
        line.starts_with(&format!(
            "labelhub {} (revision ",
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    let revision = line
        .split("revision ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    // The tests run from a git checkout: the revision is known.
    assert!(
        revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    assert_eq!(text(&labelhub(&["version"]).stdout), line);
    assert_eq!(text(&labelhub(&["-V"]).stdout), line);

    let hub = Hub::start();
    let h = hub.get("/healthz").json();
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["revision"], revision.as_str());
    let date = h["build_date"].as_str().unwrap();
    assert!(line.contains(&format!("built {date}")), "{line} vs {date}");
    assert!(
        date.starts_with("20") && date.ends_with('Z') && date.len() == 20,
        "{date}"
    );
    assert_ne!(date, "1970-01-01T00:00:00Z");
    // No Rust debug formatting in what the hub says about itself.
    let ready = hub.get("/readiness");
    let body = text(&ready.bytes);
    assert!(!body.contains("Some(") && !body.contains("None"), "{body}");
    assert!(
        body.contains("schema 2, binary 2") || body.contains(", binary "),
        "{body}"
    );
}

#[test]
fn bare_labelhub_prints_the_help_on_stderr_and_exits_2() {
    let out = labelhub(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("USAGE:") && err.contains("labelhub discover"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // Asked for, the help goes to stdout with success.
    let out = labelhub(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("USAGE:"));
}

const COMMANDS: &[&str] = &[
    "serve", "discover", "backup", "restore", "models", "media", "emulate", "raster", "decode",
    "render",
];

#[test]
fn a_usage_error_is_one_line_and_a_hint_for_every_command() {
    for cmd in COMMANDS {
        let out = labelhub(&[cmd, "--no-such-flag"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = text(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{cmd}: {err}");
        assert_eq!(
            lines[0],
            format!("labelhub {cmd}: invalid option '--no-such-flag'"),
            "{cmd}"
        );
        assert_eq!(
            lines[1],
            format!("hint: run `labelhub {cmd} --help` for the options")
        );
        assert!(!err.contains("Long(") && !err.contains("Some("), "{err}");
    }
    let out = labelhub(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "labelhub: unknown command `frobnicate`\nhint: run `labelhub help` for the commands\n"
    );
    let out = labelhub(&["--frob"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).lines().count(), 2);
    // A missing required option is a usage error too, still one line.
    let out = labelhub(&["render", "--model", "PT-P750W"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        2,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_command_documents_and_takes_dash_o() {
    for cmd in COMMANDS {
        let out = labelhub(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        let help = text(&out.stdout);
        assert!(help.contains("-o, --output"), "{cmd} --help:\n{help}");
    }
    // And the short and long spellings work where a listing is written.
    let dir = temp_dir("dash-o");
    let a = dir.join("a.txt");
    let b = dir.join("b.json");
    assert!(labelhub(&["models", "-o", arg(&a)]).status.success());
    assert!(labelhub(&["models", "--json", "--output", arg(&b)])
        .status
        .success());
    assert!(std::fs::read_to_string(&a).unwrap().contains("QL-820NWB"));
    let list: Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
    assert!(list.as_array().unwrap().len() >= 29);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn models_and_media_list_what_is_supported() {
    let out = labelhub(&["models"]);
    assert!(out.status.success());
    let t = text(&out.stdout);
    for m in labelhub::brother::model::all() {
        assert!(t.contains(m.name), "{} missing:\n{t}", m.name);
    }
    let out = labelhub(&["media", "--model", "ql-820nwb", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "QL-820NWB");
    let ids: Vec<&str> = v["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"62") && ids.contains(&"62red") && ids.contains(&"29x90"),
        "{ids:?}"
    );
    let m = labelhub::brother::model::by_name("QL-820NWB").unwrap();
    assert_eq!(ids.len(), labelhub::brother::media::for_model(m).count());
    let out = labelhub(&["media", "--model", "PT-P750W"]);
    let t = text(&out.stdout);
    assert!(t.contains("TZe laminated") && !t.contains("62red"), "{t}");
    // Unknown model: a usage error naming the known ones.
    let out = labelhub(&["media", "--model", "QL-9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("known: PT-P700"));
}

#[test]
fn serve_help_lists_every_printer_hub_variable() {
    let out = labelhub(&["serve", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    let all = labelhub::hub::config::VARIABLES
        .iter()
        .chain(labelhub::auth::config::VARIABLES.iter());
    let mut n = 0;
    for (name, _, _) in all {
        assert!(help.contains(name), "{name} missing from serve --help");
        n += 1;
    }
    assert!(n >= 14);
    assert!(help.contains("PRINTER_HUB_AUTO_ADD_USB"));
    // Every PRINTER_HUB_* name the source reads, wherever its table is.
    let mut names = std::collections::BTreeSet::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap();
                for (i, _) in src.match_indices("\"PRINTER_HUB_") {
                    let name: String = src[i + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    names.insert(name);
                }
            }
        }
    }
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        assert!(
            help.contains(name.as_str()),
            "{name} is read but not in serve --help"
        );
    }
}

#[test]
fn serve_checks_the_address_before_creating_anything() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("bind-first").join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .arg("serve")
        .env("PRINTER_HUB_DATA_DIR", &dir)
        .env("PRINTER_HUB_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        !dir.exists(),
        "the data directory was created before the bind"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[test]
fn a_second_hub_on_the_same_data_directory_is_refused() {
    let hub = Hub::start();
    let out = Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .arg("serve")
        .env("PRINTER_HUB_DATA_DIR", &hub.data_dir)
        .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("hub is running") && err.contains(&format!("pid {}", hub.pid())),
        "{err}"
    );
    // The first hub is untouched.
    assert_eq!(hub.get("/healthz").status, 200);
}

#[test]
fn serve_dash_o_writes_the_log_to_a_file() {
    let dir = temp_dir("serve-log");
    let log = dir.join("hub.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .args(["serve", "-o", arg(&log)])
        .env("PRINTER_HUB_DATA_DIR", dir.join("data"))
        .env("PRINTER_HUB_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("listening on") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no listening line in {}",
            log.display()
        );
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_notifies_systemd_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let hub = Hub::start_env(&[("NOTIFY_SOCKET", arg(&path)), ("WATCHDOG_USEC", "200000")]);
    let mut buf = [0u8; 1024];
    let mut recv = || {
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(
        first.starts_with("READY=1\nSTATUS=listening on 127.0.0.1:"),
        "{first}"
    );
    // Pings at half the interval while the database answers.
    let mut pings = 0;
    while pings < 3 {
        let msg = recv();
        assert_eq!(msg, "WATCHDOG=1\n");
        pings += 1;
    }
    assert!(hub
        .log_text()
        .contains("systemd watchdog on: pinging every 100 ms"));
    let (status, _) = hub.sigterm(T);
    assert!(status.success());
    let mut rest = Vec::new();
    sock.set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m == "STOPPING=1\n"), "{rest:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// The API as users expect it
// ---------------------------------------------------------------------------

#[test]
fn a_multipart_upload_gets_415_saying_to_send_json_with_base64() {
    let hub = Hub::start();
    for ct in [
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
    ] {
        let r = hub.request(
            "POST",
            "/print",
            Some(b"--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nPNG\r\n--xyz--\r\n"),
            &[("Content-Type", ct)],
        );
        assert_eq!(r.status, 415, "{ct}: {}", text(&r.bytes));
        let p = r.json();
        assert_eq!(p["error_code"], "unsupported_media_type");
        let msg = p["detail"].as_str().unwrap();
        assert!(
            msg.contains("application/json") && msg.contains("base64"),
            "{msg}"
        );
    }
    // JSON still works.
    assert_eq!(hub.post("/print", &label("A-1")).status, 202);
}

#[test]
fn deleting_a_printer_with_waiting_jobs_needs_cancel_queued() {
    let hub = Hub::start();
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "Shelf", "slug": "shelf", "model": "PT-P750W",
                "connection": {"uri": "emulator:?media=12&speed=instant"}}),
    );
    assert_eq!(r.status, 201, "{}", text(&r.bytes));
    assert_eq!(hub.post_empty("/api/printers/shelf/pause").status, 204);
    let mut body = label("B-1");
    body["printer"] = json!("shelf");
    let job = hub.post("/print", &body).json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();

    let r = hub.request("DELETE", "/api/v1/admin/printers/shelf", None, &[]);
    assert_eq!(r.status, 409, "{}", text(&r.bytes));
    assert_eq!(r.json()["error_code"], "printer_has_jobs");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("cancel_queued=true"));
    // Still there, still paused, job still waiting.
    assert_eq!(hub.get("/api/v1/admin/printers/shelf").status, 200);
    assert_eq!(
        hub.get(&format!("/api/jobs/{job}")).json()["state"],
        "queued"
    );
    let r = hub.request(
        "DELETE",
        "/api/v1/admin/printers/shelf?cancel_queued=maybe",
        None,
        &[],
    );
    assert_eq!(r.status, 422);

    let r = hub.request(
        "DELETE",
        "/api/v1/admin/printers/shelf?cancel_queued=true",
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", text(&r.bytes));
    let d = r.json();
    assert_eq!(d["deleted"], "shelf");
    assert_eq!(d["jobs_cancelled"], 1);
    assert_eq!(d["jobs_deleted"], 1);
    assert_eq!(hub.get("/api/v1/admin/printers/shelf").status, 404);
    assert_eq!(hub.get(&format!("/api/jobs/{job}")).status, 404);
    let r = hub.request("DELETE", "/api/v1/admin/printers/shelf", None, &[]);
    assert_eq!(r.status, 404);
    // The audit log has the deletion.
    let audit = hub.get("/api/admin/audit").json();
    assert!(audit.to_string().contains("delete"), "{audit}");
    // A printer without jobs goes without the flag; the demo printer
    // still prints.
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "Empty", "slug": "empty", "model": "PT-P750W",
                "connection": {"uri": "emulator:?media=12&speed=instant"}}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        hub.request("DELETE", "/api/v1/admin/printers/empty", None, &[])
            .status,
        200
    );
    let id = hub.post("/print", &label("C-1")).json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
}

// ---------------------------------------------------------------------------
// Backup and restore
// ---------------------------------------------------------------------------

fn integrity(db: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let jobs: i64 = conn
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    (ok, jobs)
}

#[test]
fn a_backup_taken_while_500_labels_print_restores_to_a_sound_database() {
    let hub = Hub::start_env(&[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    let r = hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "Slow", "slug": "slow", "model": "PT-P750W",
                "connection": {"uri": "emulator:?media=12&speed=200"}}),
    );
    assert_eq!(r.status, 201);
    let items: Vec<Value> = (0..500)
        .map(|i| json!({"content_type": "text_one_line", "data": {"primary_id": format!("L{i:03}")}}))
        .collect();
    let r = hub.post("/api/print/slow/batch", &json!({"items": items}));
    assert_eq!(r.status, 202, "{}", text(&r.bytes));
    let batch = r.json()["batch_id"].as_str().unwrap().to_string();
    // Wait until labels are coming out.
    let deadline = Instant::now() + T;
    let mut since = -1;
    loop {
        let snap = hub
            .get(&format!("/api/batches/{batch}?wait=10&since={since}"))
            .json();
        if snap["summary"]["done"].as_i64().unwrap() >= 3 {
            break;
        }
        since = snap["version"].as_i64().unwrap();
        assert!(Instant::now() < deadline, "nothing printed: {snap}");
    }
    let dir = temp_dir("backup");
    let file = dir.join("hub-backup.db");
    let out = labelhub(&["backup", "-o", arg(&file), "--data-dir", arg(&hub.data_dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("500 jobs") && said.contains("integrity ok"),
        "{said}"
    );
    // The same through the API.
    let r = hub.get("/api/v1/admin/backup");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.sqlite3"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"labelhub-"));
    assert!(r.bytes.starts_with(b"SQLite format 3\0"));
    let api_file = dir.join("api-backup.db");
    std::fs::write(&api_file, &r.bytes).unwrap();
    // Both were taken while the batch was printing.
    let snap = hub.get(&format!("/api/batches/{batch}")).json();
    assert!(
        snap["summary"]["done"].as_i64().unwrap() < 500,
        "the batch finished before the backups: {snap}"
    );
    for f in [&file, &api_file] {
        let (ok, jobs) = integrity(f);
        assert_eq!(ok, "ok");
        assert_eq!(jobs, 500);
    }
    // Nothing of the API's temporary copy stays in the data directory.
    let leftovers: Vec<String> = std::fs::read_dir(&hub.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("api-backup"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Restore is refused while the hub runs.
    let out = labelhub(&["restore", arg(&file), "--data-dir", arg(&hub.data_dir)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("hub is running") && err.contains("stop it first"),
        "{err}"
    );

    // Into a fresh data directory (the machine was replaced): restored,
    // sound, and a hub serves it with the same key and the same batch.
    let key = std::fs::read_to_string(hub.data_dir.join("bootstrap-admin.key")).unwrap();
    drop(hub);
    let fresh = dir.join("data");
    let report = dir.join("report.json");
    let out = labelhub(&[
        "restore",
        arg(&file),
        "--data-dir",
        arg(&fresh),
        "-o",
        arg(&report),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rep: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(rep["restored"]["jobs"], 500);
    assert_eq!(rep["restored"]["integrity"], "ok");
    let (ok, jobs) = integrity(&fresh.join("labelhub.db"));
    assert_eq!((ok.as_str(), jobs), ("ok", 500));
    std::fs::write(fresh.join("bootstrap-admin.key"), key).unwrap();
    let again = Hub::start_in(&fresh, &[("PRINTER_HUB_DEMO_PRINTER", "false")], false);
    let snap = again.get(&format!("/api/batches/{batch}")).json();
    assert_eq!(snap["summary"]["total"], 500, "{snap}");
    // Restoring over it again keeps the replaced database aside.
    drop(again);
    let out = labelhub(&["restore", arg(&api_file), "--data-dir", arg(&fresh)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("labelhub.db.before-restore-"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_limited_to_some_printers_gets_no_backup() {
    let hub = Hub::start();
    let demo = hub.get("/api/printers").json()[0]["id"].clone();
    let r = hub.post(
        "/api/admin/api-keys",
        &json!({"name": "limited admin", "scopes": ["admin"], "allowed_printer_ids": [demo]}),
    );
    assert_eq!(r.status, 201, "{}", text(&r.bytes));
    let key = r.json()["plaintext"].as_str().unwrap().to_string();
    let r = hub.request(
        "GET",
        "/api/v1/admin/backup",
        None,
        &[("X-Label-Hub-Key", key.as_str())],
    );
    assert_eq!(r.status, 403, "{}", text(&r.bytes));
    assert_eq!(r.json()["error_code"], "printer_not_allowed");
    assert!(!r.bytes.starts_with(b"SQLite"));
    assert_eq!(hub.get("/api/v1/admin/backup").status, 200);
}

#[test]
fn restore_refuses_a_newer_schema_and_files_that_are_not_backups() {
    let dir = temp_dir("restore-bad");
    let newer = dir.join("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE jobs (x); PRAGMA user_version = 99;")
        .unwrap();
    let data = dir.join("data");
    let out = labelhub(&["restore", arg(&newer), "--data-dir", arg(&data)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("schema version 99") && err.contains("newer labelhub"),
        "{err}"
    );
    assert!(!data.join("labelhub.db").exists());
    let junk = dir.join("junk.db");
    std::fs::write(&junk, b"not sqlite at all").unwrap();
    let out = labelhub(&["restore", arg(&junk), "--data-dir", arg(&data)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a labelhub database"));
    let out = labelhub(&[
        "backup",
        "-o",
        arg(&dir.join("x.db")),
        "--data-dir",
        arg(&data),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no database at"));
    let out = labelhub(&["backup"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

/// A fake sysfs tree (kernel layout, with symlinks).
struct FakeSys {
    root: PathBuf,
}

impl FakeSys {
    fn new() -> FakeSys {
        let root = temp_dir("sysfs");
        std::fs::create_dir_all(root.join("sys/class/usbmisc")).unwrap();
        std::fs::create_dir_all(root.join("sys/bus/usb/devices")).unwrap();
        FakeSys { root }
    }

    fn write(&self, rel: &str, t: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{t}\n")).unwrap();
    }

    fn printer(&self, n: u32, port: &str, model: &str, pid: &str, serial: &str) {
        let dev = format!("sys/devices/platform/usb1/{port}");
        self.write(&format!("{dev}/idVendor"), "04f9");
        self.write(&format!("{dev}/idProduct"), pid);
        self.write(&format!("{dev}/serial"), serial);
        self.write(&format!("{dev}/product"), model);
        self.write(&format!("{dev}/{port}:1.0/bInterfaceClass"), "07");
        self.write(
            &format!("{dev}/{port}:1.0/ieee1284_id"),
            &format!("MFG:Brother;CMD:PT-CBP;MDL:{model};CLS:PRINTER;SN:{serial};"),
        );
        self.bus_links(port);
        let lp = self.root.join(format!("sys/class/usbmisc/lp{n}"));
        std::fs::create_dir_all(&lp).unwrap();
        symlink(
            format!("../../../devices/platform/usb1/{port}/{port}:1.0"),
            lp.join("device"),
        )
        .unwrap();
        // The device node: a character device, as the hub requires of a
        // usb:// path (/dev/null stands in for usblp).
        std::fs::create_dir_all(self.root.join("dev/usb")).unwrap();
        symlink("/dev/null", self.root.join(format!("dev/usb/lp{n}"))).unwrap();
    }

    /// The device and its interface under sys/bus/usb/devices, as sysfs
    /// links them.
    fn bus_links(&self, port: &str) {
        symlink(
            format!("../../../devices/platform/usb1/{port}"),
            self.root.join(format!("sys/bus/usb/devices/{port}")),
        )
        .unwrap();
        symlink(
            format!("../../../devices/platform/usb1/{port}/{port}:1.0"),
            self.root.join(format!("sys/bus/usb/devices/{port}:1.0")),
        )
        .unwrap();
    }

    fn mass_storage(&self, port: &str, model: &str, pid: &str) {
        let dev = format!("sys/devices/platform/usb1/{port}");
        self.write(&format!("{dev}/idVendor"), "04f9");
        self.write(&format!("{dev}/idProduct"), pid);
        self.write(&format!("{dev}/product"), model);
        self.write(&format!("{dev}/{port}:1.0/bInterfaceClass"), "08");
        self.bus_links(port);
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn discover_reads_usb_printers_and_mass_storage_devices_from_sysfs() {
    let sys = FakeSys::new();
    sys.printer(0, "1-1", "QL-820NWB", "209d", "000K9Z111111");
    sys.mass_storage("1-2", "QL-700", "2049");
    let out = labelhub(&["discover", "--sysfs-root", arg(&sys.root), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = v["found"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{v:#}");
    assert_eq!(found[0]["kind"], "usb");
    assert_eq!(found[0]["model"], "QL-820NWB");
    assert_eq!(found[0]["serial"], "000K9Z111111");
    let uri = format!("usb://{}", sys.root.join("dev/usb/lp0").display());
    assert_eq!(found[0]["add"]["connection"]["uri"], uri.as_str());
    assert_eq!(found[1]["kind"], "usb_mass_storage");
    assert!(found[1]["fix"].as_str().unwrap().contains("Editor Lite"));
    assert!(found[1]["add"].is_null());
    // The table says the same in words.
    let out = labelhub(&["discover", "--sysfs-root", arg(&sys.root)]);
    let t = text(&out.stdout);
    assert!(
        t.contains("ready to add") && t.contains("fix: the printer is in Editor Lite mode"),
        "{t}"
    );

    // Through the API, and each result is added with one call.
    let hub = Hub::start_env(&[("PRINTER_HUB_SYSFS_ROOT", arg(&sys.root))]);
    let r = hub.get("/api/v1/admin/discover");
    assert_eq!(r.status, 200, "{}", text(&r.bytes));
    let d = r.json();
    let add = d["found"][0]["add"].clone();
    assert_eq!(add, found[0]["add"]);
    let r = hub.post("/api/v1/admin/printers", &add);
    assert_eq!(r.status, 201, "{}", text(&r.bytes));
    let again = hub.get("/api/v1/admin/discover").json();
    assert_eq!(again["found"][0]["configured_as"], add["slug"]);
    assert!(again["found"][0]["add"].is_null());
    // Read scope is not enough.
    let r = hub.request(
        "GET",
        "/api/v1/admin/discover",
        None,
        &[("X-Label-Hub-Key", "lh_pat_nope")],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn usb_auto_add_adds_a_newly_plugged_printer_by_itself() {
    let sys = FakeSys::new();
    sys.printer(0, "1-1", "PT-P750W", "2062", "E6Z000001");
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_DEMO_PRINTER", "false"),
        ("PRINTER_HUB_AUTO_ADD_USB", "1"),
        ("PRINTER_HUB_SYSFS_ROOT", arg(&sys.root)),
    ]);
    hub.wait_log("USB auto-add: added printer pt-p750w-6z000001", T)
        .unwrap_or_else(|| panic!("{}", hub.log_text()));
    // Plugged in while the hub runs.
    sys.printer(1, "1-2", "QL-820NWB", "209d", "000K9Z222222");
    hub.wait_log("USB auto-add: added printer ql-820nwb-9z222222", T)
        .unwrap_or_else(|| panic!("{}", hub.log_text()));
    let list = hub
        .get("/api/v1/admin/printers?include_disabled=true")
        .json();
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["pt-p750w-6z000001", "ql-820nwb-9z222222"]);
    // Added once: the next scans leave them alone.
    let log = hub.log_text();
    assert_eq!(log.matches("added printer pt-p750w-6z000001").count(), 1);
}

/// `labelhub emulate` on one address; killed on drop.
struct Emu(Child);

impl Emu {
    fn start(model: &str, addr: &str, out: &Path) -> Emu {
        let mut child = Command::new(env!("CARGO_BIN_EXE_labelhub"))
            .args([
                "emulate",
                "--model",
                model,
                "--listen",
                addr,
                "-o",
                arg(out),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("listening on"), "{first}");
        Emu(child)
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_snmp_sweep_finds_the_emulators_on_loopback_within_its_rate_and_time() {
    let probe = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let dir = temp_dir("sweep");
    let _a = Emu::start("QL-820NWB", &format!("127.0.0.2:{port}"), &dir.join("a"));
    let _b = Emu::start("PT-P750W", &format!("127.0.0.3:{port}"), &dir.join("b"));
    let _c = Emu::start("QL-1110NWB", &format!("127.0.0.5:{port}"), &dir.join("c"));
    let p = port.to_string();
    let t = Instant::now();
    let out = labelhub(&[
        "discover",
        "--no-usb",
        "--cidr",
        "127.0.0.0/29",
        "--snmp-port",
        &p,
        "--raw-port",
        &p,
        "--rate",
        "20",
        "--timeout-ms",
        "300",
        "--deadline-s",
        "5",
        "--json",
    ]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = v["found"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f["address"].as_str().unwrap(), f["model"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("127.0.0.2", "QL-820NWB"),
            ("127.0.0.3", "PT-P750W"),
            ("127.0.0.5", "QL-1110NWB")
        ]
    );
    assert_eq!(found[0]["media"], "62", "{:#}", found[0]);
    assert_eq!(found[1]["media"], "12");
    let net = &v["network"];
    assert_eq!(net["probed"], 6);
    assert_eq!(net["answered"], 3);
    // Three silent addresses are asked twice: 9 requests at 20/s take at
    // least 8 intervals of 50 ms; the whole sweep stays within its bound.
    assert_eq!(net["requests_sent"], 9);
    let ms = net["elapsed_ms"].as_u64().unwrap();
    assert!(ms >= 400, "rate not held: {ms} ms");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A range the deadline cannot cover at the rate is refused up front.
    let out = labelhub(&[
        "discover",
        "--no-usb",
        "--cidr",
        "127.0.0.0/24",
        "--rate",
        "10",
        "--deadline-s",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("raise the rate"));

    // Through the API: found, added in one call, and it prints.
    let hub = Hub::start_env(&[("PRINTER_HUB_DEMO_PRINTER", "false")]);
    let r = hub.get(&format!(
        "/api/v1/admin/discover?usb=false&cidr=127.0.0.0/29&snmp_port={port}&raw_port={port}&timeout_ms=300&deadline_s=5"
    ));
    assert_eq!(r.status, 200, "{}", text(&r.bytes));
    let d = r.json();
    assert_eq!(d["found"].as_array().unwrap().len(), 3, "{d:#}");
    let add = d["found"][1]["add"].clone();
    assert_eq!(
        add["connection"]["uri"],
        format!("tcp://127.0.0.3:{port}?snmp_port={port}")
    );
    let r = hub.post("/api/v1/admin/printers", &add);
    assert_eq!(r.status, 201, "{}", text(&r.bytes));
    let mut body = label("NET-1");
    body["printer"] = add["slug"].clone();
    let r = hub.post("/print", &body);
    assert_eq!(r.status, 202, "{}", text(&r.bytes));
    let id = r.json()["job_id"].as_str().unwrap().to_string();
    hub.wait_job(&id, T, |j| j["state"] == "done");
    // Bounds hold through the API too.
    let r = hub.get("/api/v1/admin/discover?cidr=10.0.0.0/8");
    assert_eq!(r.status, 422);
    let r = hub.get("/api/v1/admin/discover?cidr=127.0.0.0/29&deadline_s=120");
    assert_eq!(r.status, 422);
    drop(hub);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// The systemd unit
// ---------------------------------------------------------------------------

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // The unit as shipped, with ExecStart pointed at the binary under test
    // (verify checks that the command exists). systemd-analyze must be
    // installed (.ci/run does it): a missing tool fails the test.
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/labelhub.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/labelhub serve"));
    for needle in [
        "User=labelhub",
        "StateDirectory=labelhub",
        "SupplementaryGroups=lp",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=char-usb rw",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/default/labelhub",
        "Type=notify",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(needle), "{needle} missing from the unit");
    }
    let dir = temp_dir("unit");
    let path = dir.join("labelhub.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/labelhub", env!("CARGO_BIN_EXE_labelhub")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", arg(&path)])
        .output()
        .expect("systemd-analyze is not installed (.ci/run installs systemd)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "systemd-analyze verify warned");
    // And a broken unit fails the same check (the test can fail).
    std::fs::write(&path, unit.replace("NoNewPrivileges=", "NoNewPrivilege=")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", arg(&path)])
        .output()
        .unwrap();
    assert!(!text(&out.stderr).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
