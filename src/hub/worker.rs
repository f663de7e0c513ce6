//! The printer thread: one per enabled printer. It takes job ids from its
//! channel, checks the printer's live status, and prints runs of jobs (the
//! labels of one batch with the same options) as one multi-page stream,
//! recording progress after each label.
//!
//! **Invariants.**
//! * Exactly one job of a printer is `printing` at a time: a label is claimed
//!   (`queued -> printing`) right before its page is sent, and marked `done`
//!   in the same transaction that claims the next one. A crash mid-batch
//!   leaves the labels not yet sent `queued` and the one in flight
//!   `printing` (recovery makes it `failed_restart`).
//! * Nothing a job does ends the thread: database, transport and render
//!   errors fail that job; a panic is caught per run and logged. Only
//!   [`Msg::Stop`] or a closed channel ends the loop.
//! * Printer problems (offline, cover open, no media) pause the printer and
//!   send nothing; its jobs wait. A medium that does not match a job pauses
//!   that job only.
//! * A failed write never strands the queue. The thread keeps the
//!   state changes it owes ([`Owed`]: a label that was sent is owed `done`),
//!   puts the ids it had taken back at the front of its queue, reports
//!   `storage_error` and sends nothing until one retried transaction (with
//!   backoff) records everything owed. A label that went out is marked done
//!   then, never sent again. After the retry the queue is reloaded from the
//!   database in `seq` order, so nothing submitted meanwhile prints ahead of
//!   the jobs that waited. While owing, the thread claims nothing, so at most
//!   one job per printer is `printing` (the unique index
//!   `jobs_one_printing` is the backstop).

use std::collections::{HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use serde_json::json;

use super::device::{Device, DeviceError, DeviceSpec, StreamOptions};
use super::jobs::{self, JobError, JobState, QueuedJob};
use super::labels;
use super::live::{Live, Msg};
use super::printers::{self, Printer};
use super::{now_ms, Hub, HubError};

pub(crate) fn spawn(
    hub: Arc<Hub>,
    printer: Printer,
    rx: Receiver<Msg>,
    live: Arc<Live>,
    done: Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("printer-{}", printer.slug))
        .spawn(move || {
            // Dropped when the thread ends, however it ends: the registry
            // waits on the other side.
            let _done = done;
            let mut worker = Worker {
                hub,
                printer,
                rx,
                live,
                device: None,
                pending: VecDeque::new(),
                pending_set: HashSet::new(),
                stop: false,
                recorded: None,
                owed: Vec::new(),
                stall: None,
            };
            worker.run();
        })
}

struct Worker {
    hub: Arc<Hub>,
    printer: Printer,
    rx: Receiver<Msg>,
    live: Arc<Live>,
    device: Option<Box<dyn Device>>,
    pending: VecDeque<String>,
    pending_set: HashSet<String>,
    stop: bool,
    /// The last status written to the database (online, problem, media) and
    /// when: unchanged polls are not written again for a minute, so a busy
    /// printer does not pay a commit per label for its status.
    recorded: Option<(StatusKey, std::time::Instant)>,
    /// Job state changes whose write failed, retried until recorded.
    owed: Vec<Owed>,
    /// Set while a write failed: when to retry and the current backoff.
    stall: Option<Stall>,
}

/// A job state change the printer thread owes the database: its write
/// failed; it is written again (with the same guard) until it succeeds.
#[derive(Debug, Clone)]
struct Owed {
    id: String,
    from: &'static [JobState],
    to: JobState,
    error: Option<JobError>,
}

/// Retrying after a failed write.
#[derive(Debug, Clone, Copy)]
struct Stall {
    backoff: Duration,
    next: Instant,
}

/// The first retry after a failed write, and the longest wait between two.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// What a status write records: online, problem code, medium.
type StatusKey = (bool, Option<String>, Option<String>);

/// How a status check ended.
enum Ready {
    /// Print; the loaded medium if known.
    Yes(Option<String>),
    /// The printer is paused now.
    No,
}

impl Worker {
    fn run(&mut self) {
        if let Err(e) = self.reload_queue() {
            log::error!(
                "printer {}: loading the queue failed: {e}",
                self.printer.slug
            );
        }
        // A job left `printing` that recovery could not record (its write
        // failed too): the retry sweeps it to `failed_restart` first.
        let stranded =
            jobs::of_printer(&self.hub.db.read(), &self.printer.id, &[JobState::Printing]);
        if !matches!(stranded, Ok(ref list) if list.is_empty()) {
            self.stall = Some(Stall {
                backoff: FIRST_RETRY,
                next: Instant::now(),
            });
        }
        // Learn the loaded medium before the first job needs it.
        self.guarded("status poll", Worker::poll_idle);
        let poll = self.hub.config.status_poll;
        while !self.stop {
            self.drain();
            if self.stop {
                break;
            }
            if let Some(stall) = self.stall {
                let wait = stall.next.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(wait) {
                    Ok(msg) => self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => {
                        self.guarded("storage retry", Worker::retry_storage)
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            if self.printer.paused || self.pending.is_empty() {
                match self.rx.recv_timeout(poll) {
                    Ok(msg) => self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => {
                        self.guarded("status poll", Worker::poll_idle)
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            self.guarded("print", Worker::print_next);
        }
        if let Some(mut dev) = self.device.take() {
            dev.abort();
        }
        if !self.owed.is_empty() {
            // One last try; what stays unrecorded is `printing`, which
            // recovery makes `failed_restart` (never printed again).
            self.retry_storage();
        }
        log::info!("printer {} stopped", self.printer.slug);
    }

    /// Runs one step; a panic is logged and the device dropped, the thread
    /// goes on.
    fn guarded(&mut self, what: &str, f: fn(&mut Worker)) {
        let res = catch_unwind(AssertUnwindSafe(|| f(self)));
        if res.is_err() {
            log::error!(
                "printer {}: panic during {what}; continuing",
                self.printer.slug
            );
            self.device = None;
            // This thread is the only one that prints for this printer: a
            // job left `printing` was cut off by the panic.
            let err = JobError::new(
                "internal_error",
                "the printer thread failed unexpectedly while sending this label",
            );
            let id = self.printer.id.clone();
            let res = self
                .hub
                .write(|w| end_printing(w, &id, JobState::Failed, &err));
            if let Err(e) = res {
                // The retry sweeps what is left `printing`.
                self.stalled("recording the failure", &e);
            }
            self.live.update(|l| l.current_job = None);
            // Labels of the interrupted run are still queued: take them back.
            if let Err(e) = self.reload_queue() {
                log::error!(
                    "printer {}: loading the queue failed: {e}",
                    self.printer.slug
                );
            }
        }
    }

    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(msg) => self.handle(msg),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.stop = true;
                    break;
                }
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Jobs(ids) => {
                for id in ids {
                    self.push(id);
                }
            }
            Msg::Wake => {
                match printers::get(&self.hub.db.read(), &self.printer.id) {
                    Ok(p) => self.printer = p,
                    Err(e) => log::error!("printer {}: reload failed: {e}", self.printer.slug),
                }
                if let Err(e) = self.reload_queue() {
                    log::error!(
                        "printer {}: loading the queue failed: {e}",
                        self.printer.slug
                    );
                }
            }
            Msg::Stop => self.stop = true,
        }
        self.live.update(|l| l.pending = self.pending.len());
    }

    fn push(&mut self, id: String) {
        if self.pending_set.insert(id.clone()) {
            self.pending.push_back(id);
        }
    }

    fn pop(&mut self) -> Option<String> {
        let id = self.pending.pop_front()?;
        self.pending_set.remove(&id);
        Some(id)
    }

    /// Puts ids back at the front, keeping their order (moving them there
    /// if a queue reload already appended them).
    fn unpop(&mut self, ids: &[String]) {
        if ids.iter().any(|id| self.pending_set.contains(id)) {
            self.pending.retain(|p| !ids.contains(p));
        }
        for id in ids.iter().rev() {
            self.pending_set.insert(id.clone());
            self.pending.push_front(id.clone());
        }
    }

    /// Loads every queued job of this printer, in queue order.
    fn reload_queue(&mut self) -> Result<(), HubError> {
        let ids = jobs::of_printer(&self.hub.db.read(), &self.printer.id, &[JobState::Queued])?;
        // Keep the existing order for ids already pending; append the rest.
        for id in ids {
            self.push(id);
        }
        self.live.update(|l| l.pending = self.pending.len());
        Ok(())
    }

    /// Forgets the in-memory queue and loads it again in `seq` order.
    fn rebuild_queue(&mut self) -> Result<(), HubError> {
        self.pending.clear();
        self.pending_set.clear();
        self.reload_queue()
    }

    /// A write failed: hold the queue and retry with backoff.
    fn stalled(&mut self, what: &str, e: &HubError) {
        let backoff = match self.stall {
            Some(s) => (s.backoff * 2).min(MAX_RETRY),
            None => {
                log::error!(
                    "printer {}: {what} failed: {e}; holding the queue ({} owed) and retrying",
                    self.printer.slug,
                    self.owed.len()
                );
                FIRST_RETRY
            }
        };
        self.stall = Some(Stall {
            backoff,
            next: Instant::now() + backoff,
        });
        let text = format!("{}: {e}", e.code());
        self.live.update(|l| {
            l.storage_error = Some(text);
            l.current_job = None;
        });
    }

    /// Writes everything owed in one transaction (with a probe row, so it
    /// needs the disk). Any other job of this printer still `printing` was
    /// cut off (a panic, a recovery that could not write) and becomes
    /// `failed_restart`. On success the queue is reloaded in `seq` order.
    fn retry_storage(&mut self) {
        let owed = self.owed.clone();
        let printer_id = self.printer.id.clone();
        let interrupted = JobError::new(
            "printer_interrupted",
            "the hub lost track of this label while the database could not be written; \
             it may or may not have printed",
        );
        let res = self.hub.write(|w| {
            super::db::probe_row(w.tx)?;
            for o in &owed {
                match jobs::transition(w, &o.id, o.from, o.to, o.error.as_ref()) {
                    Ok(_) | Err(HubError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            end_printing(w, &printer_id, JobState::FailedRestart, &interrupted)
        });
        if let Err(e) = res {
            self.stalled("retrying the write", &e);
            return;
        }
        if self.stall.is_some() {
            log::warn!(
                "printer {}: the database takes writes again; recorded {} owed job state(s), \
                 printing resumes",
                self.printer.slug,
                owed.len()
            );
        }
        for o in &owed {
            match (&o.to, &o.error) {
                (JobState::Done, _) => super::observe::job_done(&self.printer, &o.id),
                (JobState::Failed, Some(err)) => {
                    super::observe::job_failed(&self.printer, &o.id, err)
                }
                _ => {}
            }
        }
        self.owed.clear();
        self.stall = None;
        self.live.update(|l| l.storage_error = None);
        if let Err(e) = self.rebuild_queue() {
            self.stalled("loading the queue", &e);
        }
    }

    fn device(&mut self) -> Result<&mut Box<dyn Device>, DeviceError> {
        if self.device.is_none() {
            let model = labels::model_by_name(&self.printer.model).map_err(|e| DeviceError {
                code: e.code().to_string(),
                message: e.to_string(),
                printer_problem: true,
            })?;
            let spec = DeviceSpec {
                printer_key: self.printer.slug.clone(),
                model,
                uri: self.printer.connection_uri(),
                data_dir: self.hub.config.data_dir.clone(),
                reach: self.hub.config.reach(),
            };
            self.device = Some(self.hub.devices.open(&spec)?);
        }
        match self.device.as_mut() {
            Some(dev) => Ok(dev),
            None => Err(DeviceError {
                code: "printer_offline".into(),
                message: "no device".into(),
                printer_problem: true,
            }),
        }
    }

    /// Asks the printer for its live status and records it. A problem or an
    /// unreachable printer pauses the printer.
    fn check(&mut self) -> Ready {
        let status = self.device().and_then(|d| d.status());
        let now = now_ms();
        match status {
            Err(e) => {
                self.device = None;
                self.live.update(|l| {
                    l.online = Some(false);
                    l.problem = Some(e.code.clone());
                    l.polled_at = Some(now);
                    l.last_error = Some(e.to_string());
                });
                self.record(false, Some(&e.code), None, &json!({"error": e.message}));
                self.pause(&e.code, &e.message);
                Ready::No
            }
            Ok(st) => {
                let problem = st.problem.clone();
                self.live.update(|l| {
                    l.online = Some(true);
                    l.problem = problem.as_ref().map(|p| p.code.clone());
                    l.media = st.media.clone();
                    l.polled_at = Some(now);
                });
                self.record(
                    true,
                    problem.as_ref().map(|p| p.code.as_str()),
                    st.media.as_deref(),
                    &st.details,
                );
                if let Some(p) = problem {
                    self.pause(&p.code, &p.message);
                    return Ready::No;
                }
                Ready::Yes(st.media.or_else(|| self.printer.media.clone()))
            }
        }
    }

    fn record(
        &mut self,
        online: bool,
        problem: Option<&str>,
        media: Option<&str>,
        details: &serde_json::Value,
    ) {
        let key = (
            online,
            problem.map(str::to_string),
            media.map(str::to_string),
        );
        if let Some((last, at)) = &self.recorded {
            if *last == key && at.elapsed() < Duration::from_secs(60) {
                return;
            }
        }
        self.recorded = Some((key, std::time::Instant::now()));
        let id = self.printer.id.clone();
        let res = self
            .hub
            .write(|w| printers::record_status(w, &id, online, problem, media, details));
        if let Err(e) = res {
            self.recorded = None;
            self.stalled("recording status", &e);
        }
        if online && media.is_some() {
            self.printer.seen_media = media.map(str::to_string);
        }
    }

    fn pause(&mut self, code: &str, message: &str) {
        if self.printer.paused && self.printer.paused_reason.as_deref() == Some(code) {
            return;
        }
        log::warn!("printer {} paused: {code}: {message}", self.printer.slug);
        let id = self.printer.id.clone();
        match self
            .hub
            .write(|w| printers::set_paused(w, &id, true, Some(code), Some(message)))
        {
            Ok(_) => {}
            Err(e) => self.stalled("recording the pause", &e),
        }
        self.printer.paused = true;
        self.printer.paused_reason = Some(code.to_string());
    }

    /// While idle or paused: poll the status; a printer paused by a problem
    /// resumes by itself when the problem is gone (if `auto_resume`).
    fn poll_idle(&mut self) {
        if self.printer.paused {
            let operator = self.printer.paused_reason.as_deref() == Some("operator");
            if operator || !self.printer.auto_resume {
                return;
            }
            let was = self.printer.paused_reason.clone();
            // check() re-pauses with the same reason without a new event.
            if let Ready::Yes(_) = self.check() {
                let id = self.printer.id.clone();
                if let Err(e) = self
                    .hub
                    .write(|w| printers::set_paused(w, &id, false, None, None))
                {
                    self.stalled("recording the resume", &e);
                    return;
                }
                log::info!(
                    "printer {} resumed by itself ({} is gone)",
                    self.printer.slug,
                    was.unwrap_or_default()
                );
                self.printer.paused = false;
                self.printer.paused_reason = None;
            }
        } else if self.device().is_ok() {
            // Idle: refresh status and media; problems pause only when a job
            // needs the printer.
            let status = self.device().and_then(|d| d.status());
            match status {
                Ok(st) => {
                    let problem = st.problem.as_ref().map(|p| p.code.clone());
                    self.live.update(|l| {
                        l.online = Some(true);
                        l.problem = problem.clone();
                        l.media = st.media.clone();
                        l.polled_at = Some(now_ms());
                    });
                    self.record(true, problem.as_deref(), st.media.as_deref(), &st.details);
                }
                Err(e) => {
                    self.device = None;
                    self.live.update(|l| {
                        l.online = Some(false);
                        l.problem = Some(e.code.clone());
                        l.polled_at = Some(now_ms());
                        l.last_error = Some(e.to_string());
                    });
                    self.record(false, Some(&e.code), None, &json!({"error": e.message}));
                }
            }
        }
    }

    /// Loads the next run: the first pending job and the pending jobs after
    /// it of the same batch with the same medium and options.
    fn next_run(&mut self) -> Result<Vec<QueuedJob>, HubError> {
        let mut run: Vec<QueuedJob> = Vec::new();
        while let Some(id) = self.pending.front().cloned() {
            let got = jobs::queued(&self.hub.db.read(), &id);
            let job = match got {
                Ok(job) => job,
                Err(HubError::NotFound { .. }) => {
                    self.pop();
                    continue;
                }
                Err(e) => {
                    let taken: Vec<String> = run.iter().map(|j| j.id.clone()).collect();
                    self.unpop(&taken);
                    return Err(e);
                }
            };
            if job.state != JobState::Queued {
                self.pop();
                continue;
            }
            if let Some(first) = run.first() {
                if job.batch_id != first.batch_id
                    || job.media != first.media
                    || !same_stream(&job, first)
                {
                    break;
                }
            }
            self.pop();
            run.push(job);
        }
        Ok(run)
    }

    fn print_next(&mut self) {
        let Ready::Yes(loaded) = self.check() else {
            return;
        };
        if self.stall.is_some() {
            // Recording the status failed: send nothing until writes work.
            return;
        }
        let run = match self.next_run() {
            Ok(run) => run,
            Err(e) => {
                self.stalled("reading the queue", &e);
                return;
            }
        };
        if run.is_empty() {
            return;
        }
        if let Some(loaded) = loaded {
            if !same_media(&self.printer.model, &loaded, &run[0].media) {
                let err = JobError::new(
                    "media_mismatch",
                    format!(
                        "the job needs media {} but the printer has {loaded} loaded; \
                         load it and resume the job",
                        run[0].media
                    ),
                )
                .with_detail(json!({"expected": run[0].media, "loaded": loaded}));
                let res = self.hub.write(|w| {
                    for job in &run {
                        jobs::transition(
                            w,
                            &job.id,
                            &[JobState::Queued],
                            JobState::Paused,
                            Some(&err),
                        )?
                        .ok();
                    }
                    Ok(())
                });
                match res {
                    Ok(()) => super::observe::jobs_paused_wrong_media(&self.printer, &run, &loaded),
                    Err(e) => {
                        let ids: Vec<String> = run.iter().map(|j| j.id.clone()).collect();
                        self.unpop(&ids);
                        self.stalled("pausing mismatched jobs", &e);
                    }
                }
                return;
            }
        }
        self.print_run(run);
    }

    /// Claims the first of `ids[*idx..]` that is still queued; advances
    /// `idx` past the ones that are not. A failed write is an error (`idx`
    /// then points at the label that was not claimed).
    fn claim_from(&mut self, ids: &[String], idx: &mut usize) -> Result<bool, HubError> {
        while *idx < ids.len() {
            if self.claim(&ids[*idx])? {
                return Ok(true);
            }
            *idx += 1;
        }
        Ok(false)
    }

    /// A write failed in the middle of a run: close the stream (what was
    /// sent stays sent), put `rest` back at the front of the queue, and
    /// hold the queue.
    fn stop_run(&mut self, stream_open: bool, rest: &[String], what: &str, e: &HubError) {
        if stream_open {
            if let Err(err) = self.device().and_then(|d| d.finish()) {
                log::warn!(
                    "printer {}: closing the stream failed: {err}",
                    self.printer.slug
                );
                self.device = None;
            }
        }
        self.unpop(rest);
        self.stalled(what, e);
    }

    /// Ends a run whose stream cannot end properly: the stream is aborted,
    /// `rest` goes back to the front of the queue, and a failed write
    /// (`what`, `e`) holds the queue.
    fn abort_run(&mut self, rest: &[String], failed: Option<(&str, &HubError)>) {
        if let Some(dev) = self.device.as_mut() {
            dev.abort();
        }
        self.device = None;
        self.unpop(rest);
        if let Some((what, e)) = failed {
            self.stalled(what, e);
        }
    }

    /// Prints a run as one stream. Page `i` is sent as the last page when a
    /// stop or pause has arrived or no later label of the run is still
    /// queued, so the stream always ends properly; the labels not sent go
    /// back to the queue.
    fn print_run(&mut self, run: Vec<QueuedJob>) {
        let ids: Vec<String> = run.iter().map(|j| j.id.clone()).collect();
        let opts = StreamOptions {
            auto_cut: run[0].auto_cut,
            half_cut: run[0].half_cut,
            high_res: run[0].high_res,
        };
        let media = run[0].media.clone();
        let size_hint = self.size_hint(&run);
        let begun = self.device().and_then(|d| d.begin(&media, opts, size_hint));
        if let Err(e) = begun {
            self.device_failed(None, &ids, e);
            return;
        }
        let mut idx = 0;
        let mut claimed = match self.claim_from(&ids, &mut idx) {
            Ok(claimed) => claimed,
            Err(e) => {
                // Nothing was sent: the stream is closed without a page.
                self.abort_run(&ids[idx..], Some(("claiming a label", &e)));
                return;
            }
        };
        // The first label of the stream: before it nothing was sent.
        let first = idx;
        while claimed {
            let id = ids[idx].clone();
            self.live.update(|l| l.current_job = Some(id.clone()));
            let page = jobs::page(&self.hub.db.read(), &id).map(labels::unpack);
            if let Err(e @ HubError::Storage { .. }) = &page {
                // The disk, not the label: nothing of it was sent, so it
                // goes back to `queued` once writes work again.
                self.owed.push(Owed {
                    id: id.clone(),
                    from: &[JobState::Printing],
                    to: JobState::Queued,
                    error: None,
                });
                if idx == first {
                    self.abort_run(&ids[idx..], Some(("reading a label", e)));
                } else {
                    self.stop_run(true, &ids[idx..], "reading a label", e);
                }
                return;
            }
            let Ok(Some(page)) = page else {
                let err = JobError::new(
                    "bitmap_unreadable",
                    "the stored label bitmap cannot be read",
                );
                self.finish_job(&id, Err(&err));
                idx += 1;
                if self.stall.is_some() {
                    // `finish_job` owes the failure; hold the rest.
                    self.abort_run(&ids[idx..], None);
                    return;
                }
                claimed = match self.claim_from(&ids, &mut idx) {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        self.abort_run(&ids[idx..], Some(("claiming a label", &e)));
                        return;
                    }
                };
                continue;
            };
            self.drain_during_run();
            let last = self.stop || self.printer.paused || !self.any_queued(&ids[idx + 1..]);
            let sent = self.device().and_then(|d| d.page(&page, last));
            let sent = sent.and_then(|()| {
                if last {
                    self.device().and_then(|d| d.finish())
                } else {
                    Ok(())
                }
            });
            if let Err(e) = sent {
                self.device_failed(Some(&id), &ids[idx + 1..], e);
                return;
            }
            // This label is out: mark it done and claim the next one in the
            // same transaction (a next page was announced, so it is sent
            // even if a stop arrives now; it will go as the last page).
            let next = if last {
                None
            } else {
                ids.get(idx + 1).cloned()
            };
            let res = self.hub.write(|w| {
                jobs::transition(w, &id, &[JobState::Printing], JobState::Done, None)?.ok();
                match &next {
                    Some(next) => Ok(jobs::transition(
                        w,
                        next,
                        &[JobState::Queued],
                        JobState::Printing,
                        None,
                    )?
                    .is_ok()),
                    None => Ok(false),
                }
            });
            self.live.update(|l| l.current_job = None);
            if res.is_ok() {
                super::observe::job_done(&self.printer, &id);
            }
            idx += 1;
            if let Err(e) = res {
                // The label is out: it is owed `done` and never sent again.
                // The next one was not claimed (the transaction rolled back).
                self.owed.push(Owed {
                    id: id.clone(),
                    from: &[JobState::Printing],
                    to: JobState::Done,
                    error: None,
                });
                self.stop_run(!last, &ids[idx..], "recording a printed label", &e);
                return;
            }
            if last {
                if idx < ids.len() {
                    self.unpop(&ids[idx..]);
                }
                return;
            }
            let next = match res {
                Ok(true) => Ok(true),
                _ => self.claim_from(&ids, &mut idx),
            };
            claimed = match next {
                Ok(claimed) => claimed,
                Err(e) => {
                    self.stop_run(true, &ids[idx..], "claiming a label", &e);
                    return;
                }
            };
        }
        // Every later label was cancelled after the last page was announced
        // as "more follow": close the stream as it is.
        if let Err(e) = self.device().and_then(|d| d.finish()) {
            log::warn!(
                "printer {}: closing the stream failed: {e}",
                self.printer.slug
            );
            self.device = None;
        }
    }

    /// About how many raster bytes a run sends: one line per dot of label
    /// length, a head's width each.
    fn size_hint(&self, run: &[QueuedJob]) -> usize {
        let lines: i64 = run.iter().map(|j| j.width).sum();
        let per_line = labels::model_by_name(&self.printer.model)
            .map(|m| m.bytes_per_line as usize + 3)
            .unwrap_or(100);
        lines.max(0) as usize * per_line + 1024
    }

    /// Handles messages between labels without blocking.
    fn drain_during_run(&mut self) {
        let was_paused = self.printer.paused;
        self.drain();
        if self.printer.paused && !was_paused {
            log::info!(
                "printer {} paused by the operator; stopping after this label",
                self.printer.slug
            );
        }
    }

    /// `queued -> printing`; `Ok(false)` when the job is no longer queued.
    fn claim(&mut self, id: &str) -> Result<bool, HubError> {
        self.hub.write(|w| {
            Ok(jobs::transition(w, id, &[JobState::Queued], JobState::Printing, None)?.is_ok())
        })
    }

    fn any_queued(&self, ids: &[String]) -> bool {
        if ids.is_empty() {
            return false;
        }
        let conn = self.hub.db.read();
        ids.iter().any(|id| {
            conn.query_row(
                "SELECT state = 'queued' FROM jobs WHERE id = ?1",
                [id],
                |r| r.get::<_, bool>(0),
            )
            .unwrap_or(false)
        })
    }

    /// Records how a claimed job ended; a failed write is owed.
    fn finish_job(&mut self, id: &str, res: Result<(), &JobError>) {
        let owed = match res {
            Ok(()) => Owed {
                id: id.to_string(),
                from: &[JobState::Printing],
                to: JobState::Done,
                error: None,
            },
            Err(err) => Owed {
                id: id.to_string(),
                from: &[JobState::Printing, JobState::Queued],
                to: JobState::Failed,
                error: Some(err.clone()),
            },
        };
        let out = self.hub.write(|w| {
            Ok(jobs::transition(w, id, owed.from, owed.to, owed.error.as_ref())?.is_ok())
        });
        match (&out, res) {
            (Ok(false), _) => {}
            (Ok(true), Ok(())) => super::observe::job_done(&self.printer, id),
            (Ok(true), Err(err)) => super::observe::job_failed(&self.printer, id, err),
            (Err(_), _) => {}
        }
        self.live.update(|l| l.current_job = None);
        if let Err(e) = out {
            self.owed.push(owed);
            self.stalled("recording a job's end", &e);
        }
    }

    /// A device error while sending: the label in flight fails, the rest go
    /// back to the queue; a printer problem also pauses the printer.
    fn device_failed(&mut self, in_flight: Option<&str>, rest: &[String], e: DeviceError) {
        log::warn!("printer {}: {e}", self.printer.slug);
        if let Some(dev) = self.device.as_mut() {
            dev.abort();
        }
        self.device = None;
        self.live.update(|l| l.last_error = Some(e.to_string()));
        let err = JobError::new(&e.code, e.message.clone());
        if let Some(id) = in_flight {
            self.finish_job(id, Err(&err));
        }
        if e.printer_problem {
            self.unpop(rest);
            self.pause(&e.code, &e.message);
        } else if in_flight.is_none() {
            // The stream could not even start for reasons of the jobs
            // themselves (e.g. options the model refuses): fail them.
            let res = self.hub.write(|w| {
                let mut failed = Vec::new();
                for id in rest {
                    if jobs::transition(w, id, &[JobState::Queued], JobState::Failed, Some(&err))?
                        .is_ok()
                    {
                        failed.push(id);
                    }
                }
                Ok(failed)
            });
            match res {
                Ok(failed) => failed
                    .iter()
                    .for_each(|id| super::observe::job_failed(&self.printer, id, &err)),
                Err(e) => {
                    self.unpop(rest);
                    self.stalled("failing jobs", &e);
                }
            }
        } else {
            self.unpop(rest);
        }
    }
}

/// Ends every job of `printer_id` still `printing` in `to`: a label cut
/// off mid-send (this thread is the only one that prints for the printer).
fn end_printing(
    w: &mut super::events::Writer<'_, '_>,
    printer_id: &str,
    to: JobState,
    err: &JobError,
) -> Result<(), HubError> {
    for id in jobs::of_printer(w.tx, printer_id, &[JobState::Printing])? {
        jobs::transition(w, &id, &[JobState::Printing], to, Some(err))?.ok();
    }
    Ok(())
}

/// Jobs that can share one stream: same cut and resolution options
/// (copies and per-label fields do not matter).
fn same_stream(a: &QueuedJob, b: &QueuedJob) -> bool {
    (a.auto_cut, a.high_res) == (b.auto_cut, b.high_res)
}

/// Media ids compare through the media table ("12" == "12mm").
fn same_media(model: &str, a: &str, b: &str) -> bool {
    let family = crate::brother::model::by_name(model).map(|m| m.family);
    match family {
        Some(f) => match (
            crate::brother::media::by_id(f, a),
            crate::brother::media::by_id(f, b),
        ) {
            (Some(x), Some(y)) => x.id == y.id,
            _ => a.eq_ignore_ascii_case(b),
        },
        None => a.eq_ignore_ascii_case(b),
    }
}
