//! Hub tests with a fake renderer and a fake printer: the state machine,
//! printer threads, recovery, retention and idempotency, without HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};

use super::device::{
    Device, DeviceError, DeviceProblem, DeviceSpec, DeviceStatus, Devices, StreamOptions,
};
use super::jobs::{self, JobState};
use super::labels::{LabelError, LabelRequest, RenderedPage, Renderer};
use super::printers::{self, NewPrinter};
use super::submit::{self, Idempotency, Item, Outcome, PrintOptions, Submission};
use super::*;
use crate::bitmap::Bitmap;

/// Renders a blank label 60 dots long, marked with the number `n` in
/// `primary_id`; the title `bad` is refused.
struct FakeRenderer;

impl Renderer for FakeRenderer {
    fn render(&self, req: &LabelRequest<'_>) -> Result<RenderedPage, LabelError> {
        if req.data.title.as_deref() == Some("bad") {
            return Err(LabelError::Render {
                code: "content_type_data_mismatch",
                message: "missing fields: title".into(),
                detail: Some(json!({"missing_fields": ["title"]})),
            });
        }
        let width = 60;
        let mut black = Bitmap::new(width, req.target.geometry.printable_dots);
        // Mark the label with its `n` so tests can tell pages apart.
        let n: u32 = req
            .data
            .primary_id
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        black.set(n % width, 0, true);
        Ok(RenderedPage { black, red: None })
    }

    fn to_png(&self, _page: &RenderedPage) -> Vec<u8> {
        Vec::new()
    }
}

#[derive(Default)]
struct FakeState {
    /// (stream number, label marker, last)
    pages: Vec<(usize, u32, bool)>,
    streams: usize,
    problem: Option<String>,
    media: Option<String>,
    fail_page: Option<usize>,
    offline: bool,
    /// Page index at which `page()` tells `reached` and waits for `release`.
    block_at: Option<(usize, Sender<()>, Receiver<()>)>,
}

#[derive(Clone, Default)]
struct FakePrinter {
    state: Arc<Mutex<FakeState>>,
}

impl FakePrinter {
    fn with_media(media: &str) -> FakePrinter {
        let p = FakePrinter::default();
        p.state.lock().unwrap().media = Some(media.into());
        p
    }
    fn pages(&self) -> Vec<(usize, u32, bool)> {
        self.state.lock().unwrap().pages.clone()
    }
}

struct FakeDevice(FakePrinter);

impl Device for FakeDevice {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        let s = self.0.state.lock().unwrap();
        if s.offline {
            return Err(DeviceError {
                code: "printer_offline".into(),
                message: "unreachable".into(),
                printer_problem: true,
            });
        }
        Ok(DeviceStatus {
            problem: s.problem.clone().map(|code| DeviceProblem {
                code,
                message: "fake problem".into(),
            }),
            media: s.media.clone(),
            details: Value::Null,
        })
    }
    fn begin(
        &mut self,
        _media: &str,
        _opts: StreamOptions,
        _size_hint: usize,
    ) -> Result<(), DeviceError> {
        self.0.state.lock().unwrap().streams += 1;
        Ok(())
    }
    fn page(&mut self, page: &RenderedPage, last: bool) -> Result<(), DeviceError> {
        let gate = {
            let s = self.0.state.lock().unwrap();
            match &s.block_at {
                Some((at, reached, release)) if *at == s.pages.len() => {
                    Some((reached.clone(), release.clone()))
                }
                _ => None,
            }
        };
        if let Some((reached, release)) = gate {
            reached.send(()).unwrap();
            release.recv().unwrap();
        }
        let mut s = self.0.state.lock().unwrap();
        if s.fail_page == Some(s.pages.len()) {
            s.fail_page = None;
            return Err(DeviceError {
                code: "connection_dropped".into(),
                message: "the printer hung up".into(),
                printer_problem: false,
            });
        }
        let marker = (0..page.black.width())
            .find(|x| page.black.get(*x, 0))
            .unwrap_or(0);
        let stream = s.streams;
        s.pages.push((stream, marker, last));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn abort(&mut self) {}
}

struct FakeDevices(FakePrinter);

impl Devices for FakeDevices {
    fn open(&self, _spec: &DeviceSpec) -> Result<Box<dyn Device>, DeviceError> {
        Ok(Box::new(FakeDevice(self.0.clone())))
    }
    fn validate_uri(&self, _uri: &str) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// Wakes the test on every commit.
struct Signal(Sender<()>);

impl ChangeListener for Signal {
    fn changed(&self, _: &Changes) {
        let _ = self.0.send(());
    }
}

struct Env {
    hub: Arc<Hub>,
    fake: FakePrinter,
    changes: Receiver<()>,
    dir: std::path::PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.hub.shutdown(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn env_with(fake: FakePrinter, start: bool) -> Env {
    let dir = std::env::temp_dir().join(format!("labelhub-hub-{}", uuid::Uuid::new_v4()));
    let config = Config {
        data_dir: dir.clone(),
        status_poll: Duration::from_millis(50),
        ..Config::default()
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let hub = Hub::open(
        config,
        Arc::new(FakeRenderer),
        Arc::new(FakeDevices(fake.clone())),
        Arc::new(Signal(tx)),
    )
    .unwrap();
    hub.ensure_demo_printer().unwrap();
    if start {
        recovery::run(&hub);
        hub.start_printers().unwrap();
    }
    Env {
        hub,
        fake,
        changes: rx,
        dir,
    }
}

fn env() -> Env {
    env_with(FakePrinter::with_media("12"), true)
}

impl Env {
    /// Rows in `jobs`.
    fn job_count(&self) -> i64 {
        self.hub
            .db
            .writer()
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .unwrap()
    }

    fn printer(&self) -> printers::Printer {
        printers::get(&self.hub.db.writer(), "demo").unwrap()
    }

    fn try_submit(&self, sub: Submission) -> Result<Outcome, HubError> {
        submit::submit(&self.hub, sub, &|_| (202, String::new()))
    }

    fn submit(&self, items: Vec<Item>) -> submit::Accepted {
        match self.try_submit(submission(self.printer(), items)).unwrap() {
            Outcome::Accepted(a) => a,
            Outcome::Replayed { .. } => panic!("replayed"),
        }
    }

    /// Waits (on commit notifications, with a deadline) until `f` holds.
    fn wait(&self, what: &str, f: impl Fn(&Env) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            // Either a commit or the status poll interval (the fake printer
            // changes without commits).
            let _ = self
                .changes
                .recv_timeout(left.min(Duration::from_millis(100)));
        }
    }

    fn states(&self, ids: &[String]) -> Vec<JobState> {
        let conn = self.hub.db.writer();
        ids.iter()
            .map(|id| jobs::get(&conn, id).unwrap().state)
            .collect()
    }

    fn all_in(&self, ids: &[String], state: JobState) -> bool {
        self.states(ids).iter().all(|s| *s == state)
    }
}

/// `items` for `printer`, anonymous, without an idempotency key.
fn submission(printer: printers::Printer, items: Vec<Item>) -> Submission {
    Submission {
        printer,
        items,
        half_cut_override: None,
        origin: Origin::default(),
        idempotency: None,
    }
}

fn item(n: u64, copies: u32) -> Item {
    let options = PrintOptions {
        copies,
        ..PrintOptions::default()
    };
    Item::parse(
        "text_one_line",
        json!({"primary_id": n.to_string()}),
        options,
        None,
    )
    .unwrap()
}

#[test]
fn batch_with_copies_prints_every_label_once_in_order_as_one_stream() {
    let env = env();
    let a = env.submit(vec![item(1, 2), item(2, 1), item(3, 3)]);
    assert_eq!(a.job_ids.len(), 6);
    env.wait("all done", |e| e.all_in(&a.job_ids, JobState::Done));
    let pages = env.fake.pages();
    let markers: Vec<u32> = pages.iter().map(|p| p.1).collect();
    assert_eq!(markers, vec![1, 1, 2, 3, 3, 3]);
    assert!(
        pages.iter().all(|p| p.0 == pages[0].0),
        "one stream: {pages:?}"
    );
    let lasts: Vec<bool> = pages.iter().map(|p| p.2).collect();
    assert_eq!(lasts, vec![false, false, false, false, false, true]);
    let snap = jobs::batch_snapshot(&env.hub.db.writer(), &a.batch_id).unwrap();
    let order: Vec<(i64, i64)> = snap
        .jobs
        .iter()
        .map(|j| (j.position, j.copy_index))
        .collect();
    assert_eq!(order, vec![(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (2, 2)]);
}

#[test]
fn render_errors_are_synchronous_and_write_nothing() {
    let env = env();
    let bad = Item::parse(
        "text_one_line",
        json!({"title": "bad"}),
        PrintOptions::default(),
        Some(1),
    )
    .unwrap();
    let sub = submission(env.printer(), vec![item(1, 1), bad]);
    let err = env.try_submit(sub).unwrap_err();
    assert_eq!(err.code(), "content_type_data_mismatch");
    let n = env.job_count();
    assert_eq!(n, 0);
}

#[test]
fn media_mismatch_pauses_the_job_with_expected_and_loaded() {
    let env = env();
    let a = env.submit(vec![item(1, 1)]);
    env.wait("done", |e| e.all_in(&a.job_ids, JobState::Done));
    env.fake.state.lock().unwrap().media = Some("24".into());
    // The printer reports 24 mm now: new jobs render for 24 mm. A job made
    // for 12 mm (submitted before the thread saw the change) must wait.
    let printer = env.printer();
    let printer = printers::Printer {
        seen_media: Some("12".into()),
        ..printer
    };
    let b = match env
        .try_submit(submission(printer, vec![item(2, 1)]))
        .unwrap()
    {
        Outcome::Accepted(a) => a,
        _ => unreachable!(),
    };
    env.wait("paused", |e| e.all_in(&b.job_ids, JobState::Paused));
    let job = jobs::get(&env.hub.db.writer(), &b.job_ids[0]).unwrap();
    assert_eq!(job.error_code.as_deref(), Some("media_mismatch"));
    assert_eq!(
        job.error_detail,
        Some(json!({"expected": "12", "loaded": "24"}))
    );
    // A matching job still prints.
    let c = env.submit(vec![item(3, 1)]);
    env.wait("24 mm job done", |e| e.all_in(&c.job_ids, JobState::Done));
    // Tape swapped back, job resumed: it prints.
    env.fake.state.lock().unwrap().media = Some("12".into());
    control::resume_job(&env.hub, &b.job_ids[0]).unwrap();
    env.wait("resumed job done", |e| e.all_in(&b.job_ids, JobState::Done));
}

#[test]
fn printer_problem_pauses_the_printer_and_it_resumes_by_itself() {
    let env = env();
    env.fake.state.lock().unwrap().problem = Some("cover_open".into());
    let a = env.submit(vec![item(1, 1)]);
    env.wait("printer paused", |e| e.printer().paused);
    assert_eq!(env.printer().paused_reason.as_deref(), Some("cover_open"));
    assert!(env.all_in(&a.job_ids, JobState::Queued));
    assert!(env.fake.pages().is_empty());
    env.fake.state.lock().unwrap().problem = None;
    env.wait("done after the cover closed", |e| {
        e.all_in(&a.job_ids, JobState::Done)
    });
    assert!(!env.printer().paused);
}

#[test]
fn cancelled_job_never_prints_and_operator_pause_holds_the_queue() {
    let env = env();
    let p = env.printer();
    control::pause_printer(&env.hub, &p).unwrap();
    let a = env.submit(vec![item(1, 1)]);
    let b = env.submit(vec![item(2, 1)]);
    control::cancel_job(&env.hub, &a.job_ids[0]).unwrap();
    let err = control::cancel_job(&env.hub, &a.job_ids[0]).unwrap_err();
    assert_eq!(err.code(), "invalid_job_state");
    control::resume_printer(&env.hub, &p).unwrap();
    env.wait("b done", |e| e.all_in(&b.job_ids, JobState::Done));
    assert_eq!(
        env.fake.pages().iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(env.states(&a.job_ids), vec![JobState::Cancelled]);
}

#[test]
fn a_failing_label_fails_its_job_and_the_thread_goes_on() {
    let env = env();
    env.fake.state.lock().unwrap().fail_page = Some(1);
    let a = env.submit(vec![item(1, 1), item(2, 1), item(3, 1)]);
    env.wait("terminal", |e| {
        e.states(&a.job_ids).iter().all(|s| s.is_terminal())
    });
    assert_eq!(
        env.states(&a.job_ids),
        vec![JobState::Done, JobState::Failed, JobState::Done]
    );
    let failed = jobs::get(&env.hub.db.writer(), &a.job_ids[1]).unwrap();
    assert_eq!(failed.error_code.as_deref(), Some("connection_dropped"));
    let b = env.submit(vec![item(4, 1)]);
    env.wait("next job", |e| e.all_in(&b.job_ids, JobState::Done));
    assert_eq!(env.hub.threads.alive(&env.printer().id), Some(true));
}

#[test]
fn recovery_fails_interrupted_keeps_queued_order_and_flags_damaged_rows() {
    let env = env_with(FakePrinter::with_media("12"), false);
    // Threads are not running: jobs stay where they are put.
    env.hub.threads.stop_all(Duration::from_secs(1));
    let p = env.printer();
    let _ = p;
    let a = {
        // Submit needs a running thread for the hand-off; write rows the
        // way submit does, then simulate a crash mid-batch.
        let hub = &env.hub;
        let items = vec![item(1, 1), item(2, 1), item(3, 1), item(4, 1)];
        let err = env
            .try_submit(submission(env.printer(), items))
            .unwrap_err();
        assert_eq!(err.code(), "handoff_failed", "the cause is not hidden");
        let conn = hub.db.writer();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM jobs ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Hand-off failed -> rows failed; put them back as a crash would
        // have left them: 1 done, 2 printing, 3 and 4 queued, 4 damaged.
        conn.execute_batch(&format!(
            "UPDATE jobs SET state='done' WHERE id='{}';
             UPDATE jobs SET state='printing', error_code=NULL WHERE id='{}';
             UPDATE jobs SET state='queued', error_code=NULL WHERE id IN ('{}','{}');
             UPDATE jobs SET bitmap_id = NULL WHERE id='{}';",
            ids[0], ids[1], ids[2], ids[3], ids[3]
        ))
        .unwrap();
        ids
    };
    let report = recovery::run(&env.hub);
    assert_eq!(report.interrupted, 1);
    assert_eq!(report.unprintable, 1);
    assert_eq!(
        env.states(&a),
        vec![
            JobState::Done,
            JobState::FailedRestart,
            JobState::Queued,
            JobState::Failed
        ]
    );
    let j = jobs::get(&env.hub.db.writer(), &a[1]).unwrap();
    assert_eq!(j.error_code.as_deref(), Some("printer_interrupted"));
    let j = jobs::get(&env.hub.db.writer(), &a[3]).unwrap();
    assert_eq!(j.error_code.as_deref(), Some("recovery_unprintable"));
}

#[test]
fn retention_purges_old_terminal_rows_in_chunks_and_keeps_the_rest() {
    let env = env();
    let a = env.submit((0..3).map(|n| item(n, 1)).collect());
    env.wait("done", |e| e.all_in(&a.job_ids, JobState::Done));
    let b = env.submit(vec![item(9, 1)]);
    env.wait("done", |e| e.all_in(&b.job_ids, JobState::Done));
    let now = now_ms();
    let old = now - 40 * 86_400_000;
    {
        let conn = env.hub.db.writer();
        conn.execute(
            "UPDATE jobs SET finished_at = ?1 WHERE batch_id = ?2",
            rusqlite::params![old, a.batch_id],
        )
        .unwrap();
        conn.execute(
            "UPDATE batches SET created_at = ?1 WHERE id = ?2",
            rusqlite::params![old, a.batch_id],
        )
        .unwrap();
        conn.execute(
            "UPDATE events SET at = ?1 WHERE batch_id = ?2",
            rusqlite::params![old, a.batch_id],
        )
        .unwrap();
        // A queued job that is old stays.
        conn.execute(
            "INSERT INTO idempotency_keys VALUES ('s', 'k', 'f', 202, '{}', ?1)",
            [now - 25 * 3600 * 1000],
        )
        .unwrap();
    }
    let cutoff = now - 30 * 86_400_000;
    let purged = retention::purge(&env.hub.db, cutoff, now - submit::IDEMPOTENCY_TTL_MS).unwrap();
    assert_eq!(purged.jobs, 3);
    assert_eq!(purged.batches, 1);
    assert!(purged.events >= 3);
    assert_eq!(purged.idempotency_keys, 1);
    assert!(jobs::batch_snapshot(&env.hub.db.writer(), &a.batch_id).is_err());
    assert!(env.all_in(&b.job_ids, JobState::Done));
    assert_eq!(
        retention::purge(&env.hub.db, cutoff, now - submit::IDEMPOTENCY_TTL_MS).unwrap(),
        retention::Purged::default()
    );
}

#[test]
fn idempotency_replays_and_refuses_another_body() {
    let env = env();
    let idem = |fp: &str| Idempotency {
        scope: "POST /print|anonymous".into(),
        key: "k1".into(),
        fingerprint: fp.into(),
    };
    let sub = |fp: &str| Submission {
        idempotency: Some(idem(fp)),
        ..submission(env.printer(), vec![item(1, 1)])
    };
    let respond = |a: &submit::Accepted| (202, json!({"batch_id": a.batch_id}).to_string());
    let first = submit::submit(&env.hub, sub("A"), &respond).unwrap();
    let Outcome::Accepted(a) = first else {
        panic!()
    };
    let again = submit::submit(&env.hub, sub("A"), &respond).unwrap();
    match again {
        Outcome::Replayed { status, body } => {
            assert_eq!(status, 202);
            assert_eq!(body, json!({"batch_id": a.batch_id}).to_string());
        }
        _ => panic!("not replayed"),
    }
    let err = submit::submit(&env.hub, sub("B"), &respond).unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
    let n = env.job_count();
    assert_eq!(n, 1);
}

#[test]
fn every_transition_writes_one_event_and_versions_grow() {
    let env = env();
    let a = env.submit(vec![item(1, 1)]);
    env.wait("done", |e| e.all_in(&a.job_ids, JobState::Done));
    let conn = env.hub.db.writer();
    let kinds: Vec<(String, Value)> = conn
        .prepare("SELECT kind, data FROM events WHERE job_id = ?1 ORDER BY id")
        .unwrap()
        .query_map([&a.job_ids[0]], |r| {
            Ok((
                r.get(0)?,
                serde_json::from_str(&r.get::<_, String>(1)?).unwrap(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let seq: Vec<String> = kinds
        .iter()
        .map(|(k, d)| format!("{k}:{}", d["to_state"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seq,
        vec![
            "job.created:queued",
            "job.state_changed:printing",
            "job.state_changed:done"
        ]
    );
    let job = jobs::get(&conn, &a.job_ids[0]).unwrap();
    let batch = jobs::batch(&conn, &a.batch_id).unwrap();
    assert_eq!(
        job.version,
        events::last_id(&conn).unwrap().min(job.version)
    );
    assert_eq!(batch.version, job.version);
}

/// A new enabled PT-P750W on the emulator with 12 mm tape.
fn emulated(slug: &str) -> NewPrinter {
    NewPrinter {
        snmp_community: None,
        slug: slug.into(),
        name: slug.into(),
        model: "PT-P750W".into(),
        uri: "emulator:?media=12".into(),
        media: Some("12".into()),
        half_cut: false,
        auto_cut: true,
        auto_resume: true,
        queue_timeout_s: 30,
        max_length_mm: crate::hub::printers::DEFAULT_MAX_LENGTH_MM,
        enabled: true,
    }
}

#[test]
fn the_default_printer_is_the_first_enabled_one_created() {
    let env = env();
    let first = env.printer();
    let second = env
        .hub
        .write(|w| printers::create(w, &emulated("second"), "test"))
        .unwrap();
    env.hub
        .write(|w| printers::create(w, &emulated("third"), "test"))
        .unwrap();
    let default = || printers::default_printer(&env.hub.db.read()).unwrap().id;
    assert_eq!(default(), first.id);
    let off = printers::PrinterUpdate {
        enabled: Some(false),
        ..Default::default()
    };
    env.hub
        .write(|w| printers::update(w, &first.id, &off, "test"))
        .unwrap();
    assert_eq!(default(), second.id);
}

#[test]
fn printer_added_while_running_gets_a_thread_and_disable_stops_it() {
    let env = env();
    let new = emulated("second");
    let p = env
        .hub
        .write(|w| printers::create(w, &new, "test"))
        .unwrap();
    control::apply_printer(&env.hub, &p).unwrap();
    assert_eq!(env.hub.threads.alive(&p.id), Some(true));
    let upd = printers::PrinterUpdate {
        enabled: Some(false),
        ..Default::default()
    };
    let (_, after) = env
        .hub
        .write(|w| printers::update(w, &p.id, &upd, "test"))
        .unwrap();
    control::apply_printer(&env.hub, &after).unwrap();
    assert_eq!(env.hub.threads.alive(&p.id), None);
    let audit: i64 = env
        .hub
        .db
        .writer()
        .query_row(
            "SELECT count(*) FROM printers_audit WHERE printer_id = ?1",
            [&p.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 2);
}

#[test]
fn concurrent_submissions_share_commits_and_one_failure_stays_its_own() {
    let env = env();
    let printer = env.printer();
    // A key that exists with another body: that submission fails, the
    // others in the same group commit do not.
    let idem = Idempotency {
        scope: "s".into(),
        key: "taken".into(),
        fingerprint: "first".into(),
    };
    let first = Submission {
        idempotency: Some(idem.clone()),
        ..submission(printer.clone(), vec![item(0, 1)])
    };
    submit::submit(&env.hub, first, &|_| (202, "{}".into())).unwrap();
    let results: Vec<Result<Outcome, HubError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|n| {
                let hub = &env.hub;
                let printer = printer.clone();
                let idem = idem.clone();
                s.spawn(move || {
                    let sub = Submission {
                        idempotency: (n == 5).then(|| Idempotency {
                            fingerprint: "other".into(),
                            ..idem
                        }),
                        ..submission(printer, vec![item(n + 1, 2)])
                    };
                    submit::submit(hub, sub, &|_| (202, "{}".into()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&HubError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].code(), "idempotency_key_reused");
    let ids: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::Accepted(a)) => Some(a.job_ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(ids.len(), 22);
    let n = env.job_count();
    assert_eq!(n, 23);
    env.wait("all printed", |e| e.all_in(&ids, JobState::Done));
}

#[test]
fn a_write_that_fails_halfway_in_a_group_rolls_back_only_its_own_submission() {
    let env = env();
    let printer = env.printer();
    // Job rows of a label reading "halfway" fail after their batch row is
    // written: what a disk error in the middle of a submission does.
    env.hub
        .db
        .writer()
        .execute_batch(
            "CREATE TEMP TRIGGER halfway BEFORE INSERT ON main.jobs
             WHEN NEW.label_data LIKE '%halfway%'
             BEGIN SELECT RAISE(ABORT, 'injected halfway failure'); END;",
        )
        .unwrap();
    // The writer is held until all twelve are queued, so eleven of them
    // are written as one group (the first leads a group of its own).
    let writer = env.hub.db.writer();
    let results: Vec<Result<Outcome, HubError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|n| {
                let hub = &env.hub;
                let printer = printer.clone();
                s.spawn(move || {
                    let it = if n == 7 {
                        Item::parse(
                            "text_one_line",
                            json!({"primary_id": "halfway"}),
                            PrintOptions::default(),
                            None,
                        )
                        .unwrap()
                    } else {
                        item(n, 1)
                    };
                    submit::submit(hub, submission(printer, vec![it]), &|_| (202, "{}".into()))
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while env.hub.submits.queued() < 11 {
            assert!(Instant::now() < deadline, "the submissions did not queue");
            std::thread::yield_now();
        }
        drop(writer);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&HubError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].to_string().contains("injected halfway failure"),
        "{}",
        failed[0]
    );
    assert_eq!(env.job_count(), 11);
    let batches: i64 = env
        .hub
        .db
        .writer()
        .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        batches, 11,
        "the failed submission's batch row was rolled back"
    );
}

#[test]
fn a_printer_thread_that_died_is_restarted_on_the_next_hand_off() {
    let env = env();
    let id = env.printer().id;
    env.hub.threads.end_thread_for_test(&id);
    assert_eq!(env.hub.threads.alive(&id), Some(false), "readiness sees it");
    let a = env.submit(vec![item(1, 1)]);
    env.wait("printed by the restarted thread", |e| {
        e.all_in(&a.job_ids, JobState::Done)
    });
    assert_eq!(env.hub.threads.alive(&id), Some(true));
}

#[test]
fn operator_pause_mid_batch_ends_the_stream_and_keeps_the_order() {
    let env = env();
    let (reached_tx, reached) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    env.fake.state.lock().unwrap().block_at = Some((1, reached_tx, release_rx));
    let batch = env.submit((1..=4).map(|n| item(n, 1)).collect());
    let single = env.submit(vec![item(9, 1)]);
    reached.recv_timeout(Duration::from_secs(10)).unwrap();
    // Label 2 is being sent: pause now.
    control::pause_printer(&env.hub, &env.printer()).unwrap();
    release.send(()).unwrap();
    env.wait("the stream ended", |e| {
        e.states(&batch.job_ids)
            .iter()
            .filter(|s| **s == JobState::Done)
            .count()
            >= 2
            && !e.states(&batch.job_ids).contains(&JobState::Printing)
    });
    control::resume_printer(&env.hub, &env.printer()).unwrap();
    let mut all = batch.job_ids.clone();
    all.extend(single.job_ids.clone());
    env.wait("everything printed", |e| e.all_in(&all, JobState::Done));
    let pages = env.fake.pages();
    let markers: Vec<u32> = pages.iter().map(|p| p.1).collect();
    assert_eq!(markers, vec![1, 2, 3, 4, 9], "{pages:?}");
    // The first stream ended with a proper last page.
    let first_stream: Vec<&(usize, u32, bool)> =
        pages.iter().filter(|p| p.0 == pages[0].0).collect();
    assert!(first_stream.last().unwrap().2, "{pages:?}");
    assert!(first_stream.len() < 4, "paused before the end: {pages:?}");
}

#[test]
fn jobs_submitted_while_a_printer_thread_restarts_are_not_lost_or_failed() {
    let env = env();
    let printer = env.printer();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hub = &env.hub;
        let p = printer.clone();
        s.spawn(move || {
            for _ in 0..10 {
                control::apply_printer(hub, &p).unwrap();
            }
        });
        (0..30)
            .flat_map(|n| env.submit(vec![item(n, 1)]).job_ids)
            .collect()
    });
    env.wait("all printed", |e| e.all_in(&ids, JobState::Done));
}

// Write faults while printing.

impl Env {
    /// The invariant checked after every step: at most one job of the
    /// printer is `printing`.
    fn one_printing(&self) {
        let n: i64 = self
            .hub
            .db
            .read()
            .query_row(
                "SELECT count(*) FROM jobs WHERE state = 'printing' AND printer_id = ?1",
                [&self.printer().id],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n <= 1, "{n} jobs printing at once");
    }

    fn live(&self) -> registry::LiveState {
        self.hub.threads.live(&self.printer().id).unwrap()
    }

    /// `wait`, checking the invariant on every look.
    fn wait_checked(&self, what: &str, f: impl Fn(&Env) -> bool) {
        self.wait(what, |e| {
            e.one_printing();
            f(e)
        });
    }

    fn markers(&self) -> Vec<u32> {
        self.fake.pages().iter().map(|p| p.1).collect()
    }

    /// Submits labels `1..=n`; while page `at` is on its way the disk
    /// fails with `fault`. Returns once the printer thread reports it.
    fn fault_while_sending(
        &self,
        n: u64,
        at: usize,
        fault: super::db::StorageFault,
    ) -> submit::Accepted {
        let (reached_tx, reached) = crossbeam_channel::unbounded();
        let (release, release_rx) = crossbeam_channel::unbounded();
        self.fake.state.lock().unwrap().block_at = Some((at, reached_tx, release_rx));
        let batch = self.submit((1..=n).map(|n| item(n, 1)).collect());
        reached.recv_timeout(Duration::from_secs(10)).unwrap();
        self.hub.db.inject_fault(Some(fault));
        release.send(()).unwrap();
        self.wait_checked("storage_error", |e| e.live().storage_error.is_some());
        let error = self.live().storage_error.unwrap();
        assert!(error.starts_with(fault.code()), "{error}");
        batch
    }
}

/// Fails on main: the label in flight stayed `printing` forever, the rest
/// of the batch stayed `queued` (dropped from the thread's memory) and the
/// next submission printed ahead of them.
#[test]
fn a_write_fault_mid_batch_holds_the_queue_and_heals_without_reprinting() {
    use super::db::StorageFault;
    let env = env();
    // Label 3 is on its way; the disk fills before it can be recorded.
    let batch = env.fault_while_sending(6, 2, StorageFault::Full);
    assert_eq!(
        env.states(&batch.job_ids),
        vec![
            JobState::Done,
            JobState::Done,
            JobState::Printing,
            JobState::Queued,
            JobState::Queued,
            JobState::Queued
        ]
    );
    assert_eq!(
        env.hub.db.storage_fault().map(|f| f.fault),
        Some(StorageFault::Full)
    );
    // Submissions and operator actions fail with the storage code.
    let err = env
        .try_submit(submission(env.printer(), vec![item(8, 1)]))
        .unwrap_err();
    assert_eq!(err.code(), "storage_full");
    let err = control::pause_printer(&env.hub, &env.printer()).unwrap_err();
    assert_eq!(err.code(), "storage_full");
    env.one_printing();
    // The disk is back: a new submission comes in at once.
    env.hub.db.inject_fault(None);
    let late = env.submit(vec![item(9, 1)]);
    let mut all = batch.job_ids.clone();
    all.extend(late.job_ids.clone());
    env.wait_checked("everything printed", |e| e.all_in(&all, JobState::Done));
    assert_eq!(
        env.markers(),
        vec![1, 2, 3, 4, 5, 6, 9],
        "each label once, in order"
    );
    assert_eq!(env.live().storage_error, None);
    assert!(env.hub.db.storage_fault().is_none());
}

/// Fails on main: after the fault, pause then resume claimed the next
/// label while the stranded one was still `printing` (two at once).
#[test]
fn pause_and_resume_around_a_write_fault_never_make_two_printing() {
    use super::db::StorageFault;
    let env = env();
    let batch = env.fault_while_sending(4, 1, StorageFault::Unavailable);
    env.hub.db.inject_fault(None);
    control::pause_printer(&env.hub, &env.printer()).unwrap();
    env.one_printing();
    env.wait_checked("the owed label recorded", |e| {
        e.states(&batch.job_ids)[1] == JobState::Done
    });
    control::resume_printer(&env.hub, &env.printer()).unwrap();
    env.one_printing();
    env.wait_checked("everything printed", |e| {
        e.all_in(&batch.job_ids, JobState::Done)
    });
    assert_eq!(env.markers(), vec![1, 2, 3, 4]);
}

/// A fault while claiming (nothing sent yet) and while the printer resumes
/// by itself: the queue waits and prints once the disk is back.
#[test]
fn a_fault_before_anything_is_sent_holds_the_queue_until_writes_work() {
    use super::db::StorageFault;
    let env = env();
    env.fake.state.lock().unwrap().problem = Some("cover_open".into());
    let batch = env.submit((1..=3).map(|n| item(n, 1)).collect());
    env.wait_checked("printer paused", |e| e.printer().paused);
    env.hub.db.inject_fault(Some(StorageFault::Full));
    env.fake.state.lock().unwrap().problem = None;
    env.wait_checked("storage_error", |e| e.live().storage_error.is_some());
    assert!(env.fake.pages().is_empty());
    assert!(env.all_in(&batch.job_ids, JobState::Queued));
    env.hub.db.inject_fault(None);
    env.wait_checked("everything printed", |e| {
        e.all_in(&batch.job_ids, JobState::Done)
    });
    assert_eq!(env.markers(), vec![1, 2, 3]);
    assert!(!env.printer().paused);
}

// Clock steps.

/// A clock the test steps: (clock, wall ms, monotonic ms).
fn stepped_clock(
    wall: i64,
) -> (
    clock::Clock,
    Arc<std::sync::atomic::AtomicI64>,
    Arc<std::sync::atomic::AtomicI64>,
) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let w = Arc::new(AtomicI64::new(wall));
    let m = Arc::new(AtomicI64::new(0));
    let (w2, m2) = (w.clone(), m.clone());
    let c = clock::Clock::with_sources(
        Box::new(move || w2.load(Ordering::SeqCst)),
        Box::new(move || m2.load(Ordering::SeqCst)),
    );
    (c, w, m)
}

/// Fails on main (there, a purge after a +31 day step deleted the labels
/// printed a moment before, their batch and their events).
#[test]
fn a_31_day_forward_step_purges_nothing_fresh() {
    use std::sync::atomic::Ordering;
    const DAY: i64 = 86_400_000;
    let env = env();
    let a = env.submit(vec![item(1, 1), item(2, 1)]);
    env.wait("done", |e| e.all_in(&a.job_ids, JobState::Done));
    let (c, wall, mono) = stepped_clock(now_ms());
    mono.fetch_add(1_000, Ordering::SeqCst);
    wall.fetch_add(1_000 + 31 * DAY, Ordering::SeqCst);
    // Just after the jump: nothing at all.
    assert_eq!(
        retention::run_with(&env.hub, &c).unwrap(),
        retention::Purged::default()
    );
    assert_eq!(c.jumps().len(), 1);
    // Settled: the purge runs, but the labels are seconds old on the
    // monotonic clock.
    let settle = clock::SETTLE.as_millis() as i64 + 1_000;
    mono.fetch_add(settle, Ordering::SeqCst);
    wall.fetch_add(settle, Ordering::SeqCst);
    let purged = retention::run_with(&env.hub, &c).unwrap();
    assert_eq!(purged.jobs, 0, "{purged:?}");
    assert_eq!(purged.events, 0, "{purged:?}");
    assert!(env.all_in(&a.job_ids, JobState::Done));
    assert!(jobs::batch_snapshot(&env.hub.db.read(), &a.batch_id).is_ok());
    // Once 30 days have passed on the monotonic clock they go.
    mono.fetch_add(30 * DAY, Ordering::SeqCst);
    wall.fetch_add(30 * DAY, Ordering::SeqCst);
    let purged = retention::run_with(&env.hub, &c).unwrap();
    assert_eq!(purged.jobs, 2, "{purged:?}");
}

/// A start at 1970 (no hardware clock): nothing is purged while the clock
/// is earlier than the newest row; the step to now ages nothing.
#[test]
fn a_start_in_1970_then_a_step_to_now_purges_nothing_fresh() {
    use std::sync::atomic::Ordering;
    let env = env();
    let a = env.submit(vec![item(1, 1)]);
    env.wait("done", |e| e.all_in(&a.job_ids, JobState::Done));
    let real = now_ms();
    let (c, wall, mono) = stepped_clock(5_000);
    assert_eq!(
        retention::run_with(&env.hub, &c).unwrap(),
        retention::Purged::default()
    );
    // Rows written meanwhile carry 1970 times.
    env.hub
        .db
        .write(|tx| {
            tx.execute(
                "UPDATE jobs SET finished_at = 6000, created_at = 6000 WHERE id = ?1",
                [&a.job_ids[0]],
            )?;
            tx.execute("UPDATE events SET at = 6000", [])?;
            Ok(())
        })
        .unwrap();
    mono.fetch_add(60_000, Ordering::SeqCst);
    wall.store(real + 60_000, Ordering::SeqCst); // NTP
    let settle = clock::SETTLE.as_millis() as i64 + 1_000;
    mono.fetch_add(settle, Ordering::SeqCst);
    wall.fetch_add(settle, Ordering::SeqCst);
    let purged = retention::run_with(&env.hub, &c).unwrap();
    assert_eq!(purged, retention::Purged::default());
    assert!(env.all_in(&a.job_ids, JobState::Done));
}

/// An admin change restarts the printer thread while it owes a write: the
/// label that went out is never sent again (recorded `failed_restart`, "may
/// or may not have printed", as after a crash) and the rest print once.
#[test]
fn a_thread_restarted_while_it_owes_a_write_resends_nothing() {
    use super::db::StorageFault;
    let env = env();
    let batch = env.fault_while_sending(4, 1, StorageFault::Full);
    // The restart cannot record anything either.
    control::apply_printer(&env.hub, &env.printer()).unwrap();
    env.wait_checked("the new thread holds the queue", |e| {
        e.live().storage_error.is_some()
    });
    env.hub.db.inject_fault(None);
    env.wait_checked("everything terminal", |e| {
        e.states(&batch.job_ids).iter().all(|s| s.is_terminal())
    });
    assert_eq!(
        env.states(&batch.job_ids),
        vec![
            JobState::Done,
            JobState::FailedRestart,
            JobState::Done,
            JobState::Done
        ]
    );
    assert_eq!(env.markers(), vec![1, 2, 3, 4], "label 2 sent once");
}

/// The waiting counts of the quotas (`waiting_per_printer`,
/// `waiting_per_key`, kept by triggers) against a `count(*)` of the jobs.
fn assert_waiting_counts_agree(env: &Env, when: &str) {
    let p = env.printer();
    let conn = env.hub.db.writer();
    let pairs = |sql: &str| -> Vec<(String, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let waiting = "state IN ('queued', 'paused', 'printing')";
    assert_eq!(
        pairs("SELECT printer_id, n FROM waiting_per_printer WHERE n <> 0 ORDER BY 1"),
        pairs(&format!(
            "SELECT printer_id, count(*) FROM jobs WHERE {waiting} GROUP BY 1 ORDER BY 1"
        )),
        "per printer, {when}"
    );
    assert_eq!(
        pairs("SELECT api_key_id, n FROM waiting_per_key WHERE n <> 0 ORDER BY 1"),
        pairs(&format!(
            "SELECT api_key_id, count(*) FROM jobs WHERE {waiting} AND api_key_id IS NOT NULL
              GROUP BY 1 ORDER BY 1"
        )),
        "per key, {when}"
    );
    let n: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM jobs WHERE printer_id = ?1 AND {waiting}"),
            [&p.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        jobs::waiting_of_printer(&conn, &p.id).unwrap(),
        n as u64,
        "{when}"
    );
}

fn e_terminal(env: &Env, ids: &[String]) -> bool {
    env.states(ids).iter().all(|s| s.is_terminal())
}

#[test]
fn the_waiting_counts_follow_every_writer() {
    let env = env();
    let p = env.printer();
    let origin = |key: &str| Origin {
        api_key_id: Some(key.into()),
        ..Origin::default()
    };
    let submit_as = |key: &str, items: Vec<Item>| -> submit::Accepted {
        let sub = Submission {
            printer: env.printer(),
            items,
            half_cut_override: None,
            origin: origin(key),
            idempotency: None,
        };
        match submit::submit(&env.hub, sub, &|_| (202, String::new())).unwrap() {
            Outcome::Accepted(a) => a,
            Outcome::Replayed { .. } => panic!("replayed"),
        }
    };
    assert_waiting_counts_agree(&env, "at start");
    control::pause_printer(&env.hub, &p).unwrap();
    let a = submit_as("k1", vec![item(1, 3), item(2, 1)]);
    let b = submit_as("k2", vec![item(3, 2)]);
    let c = env.submit(vec![item(4, 1)]);
    assert_waiting_counts_agree(&env, "after submissions");
    assert_eq!(
        jobs::waiting_of_key(&env.hub.db.writer(), "k1").unwrap(),
        4,
        "copies count"
    );
    control::cancel_job(&env.hub, &a.job_ids[0]).unwrap();
    control::pause_job(&env.hub, &a.job_ids[1]).unwrap();
    assert_waiting_counts_agree(&env, "after cancel and pause");
    control::resume_job(&env.hub, &a.job_ids[1]).unwrap();
    control::retry_job(&env.hub, &a.job_ids[0], &origin("k2")).unwrap();
    assert_waiting_counts_agree(&env, "after retry");
    // Print everything that is queued; one label fails.
    env.fake.state.lock().unwrap().fail_page = Some(1);
    control::resume_printer(&env.hub, &p).unwrap();
    env.wait("printed", |e| {
        let left: i64 = e
            .hub
            .db
            .writer()
            .query_row(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'printing')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        left == 0
    });
    assert!(e_terminal(&env, &b.job_ids) && e_terminal(&env, &c.job_ids));
    assert_waiting_counts_agree(&env, "after printing and a failure");
    // Retention removes terminal rows only.
    let now = now_ms();
    env.hub
        .db
        .writer()
        .execute(
            "UPDATE jobs SET finished_at = 1 WHERE finished_at IS NOT NULL",
            [],
        )
        .unwrap();
    retention::purge(&env.hub.db, now, now - submit::IDEMPOTENCY_TTL_MS).unwrap();
    assert_waiting_counts_agree(&env, "after retention");
    control::pause_printer(&env.hub, &p).unwrap();
    submit_as("k1", vec![item(5, 1)]);
    control::clear_queue(&env.hub, &p).unwrap();
    assert_waiting_counts_agree(&env, "after clearing the queue");
    // A crash mid-label: recovery fails the `printing` job.
    let d = submit_as("k1", vec![item(6, 2)]);
    env.hub.threads.stop_all(Duration::from_secs(1));
    env.hub
        .db
        .writer()
        .execute(
            "UPDATE jobs SET state = 'printing' WHERE id = ?1",
            [&d.job_ids[0]],
        )
        .unwrap();
    assert_waiting_counts_agree(&env, "after a crash");
    recovery::run(&env.hub);
    assert_eq!(
        env.states(&d.job_ids),
        vec![JobState::FailedRestart, JobState::Queued]
    );
    assert_waiting_counts_agree(&env, "after recovery");
    // Deleting the printer cancels and removes its queued job.
    remove::delete_printer(&env.hub, &p.id, true, "test").unwrap();
    let conn = env.hub.db.writer();
    assert_eq!(jobs::waiting_of_printer(&conn, &p.id).unwrap(), 0);
    assert_eq!(jobs::waiting_of_key(&conn, "k1").unwrap(), 0);
    assert_eq!(jobs::waiting_of_key(&conn, "k2").unwrap(), 0);
}
