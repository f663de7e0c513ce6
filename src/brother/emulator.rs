//! A Brother PT/QL printer in software: the printer the tests, the demo mode
//! and the benchmarks print to.
//!
//! An [`Emulator`] has a model, a loaded medium, an output directory, a print
//! speed and at most one fault. Jobs reach it in-process through
//! [`Emulator::transport`] (the `emulator:` printer URI) or over the network
//! through [`Emulator::serve`] (raw TCP like port 9100, SNMP on UDP at the
//! same address; `labelhub emulate`).
//!
//! What it does with a job (module `job`):
//! * frames the stream command by command; each time a page's print command
//!   (`0x0C`/`0x1A`) arrives, that page is checked with the strict decoder
//!   for this model (`decode::decode_for`) and against the loaded medium the
//!   way a printer does (`ESC i z` width/type/length, two-colour roll, a line
//!   length the head does not have, compression or `Z` or high resolution on
//!   a model without them), then "printed": it waits the time the real
//!   printer needs at the configured speed, and writes `<seq:06>.png` in
//!   label orientation (1 = black, red pixels red);
//! * keeps the raw stream of every job as `job-<seq:06>.bin`;
//! * at the end decodes the whole stream once more, strictly: a stream the
//!   decoder rejects (e.g. the last page ends with `0x0C`) fails the job even
//!   if its pages came out;
//! * appends one JSON line per printed page and per job to `events.jsonl`.
//!
//! Faults ([`Fault`]): cover open, no media, a different medium loaded, the
//! connection dropped after N bytes of a job, printer off. Set with
//! [`Emulator::set_fault`], by `--fault` in standalone mode, or by writing the
//! control file `<out_dir>/fault` (`cover_open`, `no_media`, `media=<id>`,
//! `offline`, `drop`, `drop=<bytes>`; empty = no fault). The file, when it
//! exists, wins over the API and is read before every status request and job.
//!
//! **Invariants.**
//! * One job at a time, like the hardware; a second job waits for the first.
//! * Files appear atomically (written aside, then renamed), so a reader that
//!   polls the directory never sees half a PNG or half a stream.
//! * A job error (rejected stream, wrong media) is reported by the next
//!   status request (status type "error" with the error bits) and then
//!   cleared, like the printer's one-shot error notification; the in-process
//!   transport also returns it from `write`/`finish`.
//! * Sequence numbers continue from the files already in `out_dir`, so
//!   restarting never overwrites earlier output.

mod job;
mod server;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::encode::Page;
use super::media::{self, Geometry, MediaError};
use super::model::{Family, Model};
use super::seq::max_seq;
use super::snmp::{self, Oid, Value};
use super::status::{Errors, Phase, Problem, Status, StatusType};
use crate::bitmap::Bitmap;

pub(crate) use job::JobRun;
pub use job::{Rejection, DEFAULT_DROP_AFTER};
pub use server::Server;

/// Most printed pages and jobs kept in memory (the files stay on disk).
const HISTORY: usize = 1000;
/// How long a job waits for the previous one to finish.
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(60);

/// How fast pages come out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// No waiting: a page is printed as soon as it arrived.
    Instant,
    /// The model's nominal speed (`Model::speed_mm_s`).
    Real,
    /// This many millimetres per second.
    MmPerS(u32),
}

impl Speed {
    /// `instant`, `real` or a positive number of mm/s.
    pub fn parse(s: &str) -> Result<Speed, String> {
        match s.trim() {
            "instant" => Ok(Speed::Instant),
            "real" => Ok(Speed::Real),
            n => match n.parse::<u32>() {
                Ok(v) if v > 0 => Ok(Speed::MmPerS(v)),
                _ => Err(format!(
                    "speed `{s}` must be `instant`, `real` or a number of mm/s"
                )),
            },
        }
    }

    /// Millimetres per second for `model`, `None` when instant.
    pub fn mm_per_s(self, model: &Model) -> Option<f64> {
        match self {
            Speed::Instant => None,
            Speed::Real => Some(f64::from(model.speed_mm_s.max(1))),
            Speed::MmPerS(v) => Some(f64::from(v.max(1))),
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Instant => f.write_str("instant"),
            Speed::Real => f.write_str("real"),
            Speed::MmPerS(v) => write!(f, "{v}"),
        }
    }
}

/// Something wrong with the printer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cover open: status error bit; jobs are refused.
    CoverOpen,
    /// Nothing loaded: width 0, "no media"; jobs are refused.
    NoMedia,
    /// This medium is loaded instead of the configured one: jobs for
    /// another width are rejected with "wrong media", as a printer does.
    Media(String),
    /// Turned off: TCP connections refused, SNMP silent, in-process
    /// transport offline.
    Offline,
    /// Every job's connection is dropped after this many bytes (pages
    /// completed before that point are printed).
    Drop { after_bytes: usize },
}

impl Fault {
    /// Parses the control-file / `--fault` syntax. `Ok(None)` = no fault.
    pub fn parse(s: &str) -> Result<Option<Fault>, String> {
        let s = s.trim();
        Ok(Some(match s {
            "" | "none" => return Ok(None),
            "cover_open" => Fault::CoverOpen,
            "no_media" => Fault::NoMedia,
            "offline" => Fault::Offline,
            "drop" => Fault::Drop {
                after_bytes: DEFAULT_DROP_AFTER,
            },
            other => {
                if let Some(id) = other.strip_prefix("media=") {
                    if id.trim().is_empty() {
                        return Err("`media=` needs a media id".into());
                    }
                    Fault::Media(id.trim().to_string())
                } else if let Some(n) = other.strip_prefix("drop=") {
                    let after_bytes = n
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| format!("`drop={n}`: expected a number of bytes"))?;
                    Fault::Drop { after_bytes }
                } else {
                    return Err(format!(
                        "unknown fault `{other}` (cover_open, no_media, media=<id>, offline, \
                         drop, drop=<bytes>, or empty)"
                    ));
                }
            }
        }))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CoverOpen => f.write_str("cover_open"),
            Fault::NoMedia => f.write_str("no_media"),
            Fault::Media(id) => write!(f, "media={id}"),
            Fault::Offline => f.write_str("offline"),
            Fault::Drop { after_bytes } => write!(f, "drop={after_bytes}"),
        }
    }
}

/// How to build an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub model: &'static Model,
    /// The loaded medium (a media id of the model's family).
    pub media_id: String,
    /// Where PNGs, streams and `events.jsonl` go (created if missing).
    pub out_dir: PathBuf,
    pub speed: Speed,
    /// Fault active from the start.
    pub fault: Option<Fault>,
}

/// Why an emulator could not be created or served.
#[derive(Debug)]
pub enum EmulatorError {
    /// The medium does not exist or does not fit the model.
    Media(MediaError),
    /// A fault names a medium the model cannot take.
    BadFault(String),
    /// The output directory cannot be used.
    Io { path: PathBuf, detail: String },
    /// The listen address cannot be bound.
    Bind { addr: String, detail: String },
}

impl EmulatorError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EmulatorError::Media(e) => e.code(),
            EmulatorError::BadFault(_) => "invalid_fault",
            EmulatorError::Io { .. } => "io_error",
            EmulatorError::Bind { .. } => "bind_failed",
        }
    }
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulatorError::Media(e) => write!(f, "{e}"),
            EmulatorError::BadFault(s) => write!(f, "invalid fault: {s}"),
            EmulatorError::Io { path, detail } => write!(f, "{}: {detail}", path.display()),
            EmulatorError::Bind { addr, detail } => write!(f, "cannot listen on {addr}: {detail}"),
        }
    }
}

impl std::error::Error for EmulatorError {}

/// One page that came out of the emulator.
#[derive(Clone, Debug)]
pub struct PrintedPage {
    /// Page sequence number (the PNG's name).
    pub seq: u64,
    /// Job sequence number (the `.bin`'s name).
    pub job: u64,
    /// Index of the page within its job.
    pub index: usize,
    pub png: PathBuf,
    /// The label as printed, in label orientation (`DecodedPage::label`).
    pub page: Page,
    pub media_id: String,
    pub auto_cut: bool,
    pub half_cut: bool,
    pub chain: bool,
    pub high_res: bool,
    pub compressed: bool,
    /// Ended with `0x1A`.
    pub last: bool,
    /// Tape/paper fed for this page, margins included.
    pub length_mm: f64,
    /// Ink outside the medium's print window (lost at the tape edge).
    pub ink_outside: bool,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every page printed and the whole stream decoded cleanly.
    Printed,
    /// Refused or stopped: `code` is the transport error code
    /// (`job_rejected`, `wrong_media`, `cover_open` ...).
    Rejected { code: &'static str, reason: String },
    /// The connection was dropped (fault) or lost.
    Dropped,
    /// The sender gave up (`abort`, idle connection).
    Aborted,
}

impl JobOutcome {
    fn name(&self) -> &'static str {
        match self {
            JobOutcome::Printed => "printed",
            JobOutcome::Rejected { .. } => "rejected",
            JobOutcome::Dropped => "dropped",
            JobOutcome::Aborted => "aborted",
        }
    }
}

/// One job the emulator received.
#[derive(Clone, Debug)]
pub struct JobRecord {
    pub seq: u64,
    /// The raw stream (`None` when nothing was kept, e.g. refused at once).
    pub bin: Option<PathBuf>,
    pub bytes: usize,
    pub pages: usize,
    pub outcome: JobOutcome,
}

struct State {
    /// Medium loaded by configuration / `set_media`.
    media_id: String,
    /// The media id the configuration asked for (to tell a config change
    /// from a `set_media` when the emulator is reopened).
    configured_media: String,
    speed: Speed,
    fault: Option<Fault>,
    /// One-shot job error, reported by the next status request.
    pending_error: Errors,
    busy: bool,
    printing: bool,
    last_page_seq: u64,
    last_job_seq: u64,
    pages_total: u64,
    jobs_total: u64,
    printed: VecDeque<PrintedPage>,
    jobs: VecDeque<JobRecord>,
}

/// A software Brother printer. Cheap to share: `Arc<Emulator>`.
pub struct Emulator {
    model: &'static Model,
    out_dir: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

/// Why a job cannot start.
pub(crate) enum StartError {
    Offline,
    Problem(Problem),
    Busy,
    Io(String),
}

/// Emulators by output directory: the `emulator:` transport of a printer
/// finds the same emulator (faults, sequence numbers) on every `open`.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Emulator>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Emulator>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The medium an `emulator:` URI without `media=` loads: 12 mm tape, 62 mm
/// roll, else the first medium the model takes.
pub fn default_media(model: &Model) -> &'static str {
    let preferred = match model.family {
        Family::Pt => "12",
        Family::Ql => "62",
    };
    if media::geometry(model, preferred).is_ok() {
        return preferred;
    }
    media::for_model(model).next().map_or(preferred, |m| m.id)
}

impl Emulator {
    /// A new emulator. Creates `out_dir`; numbering continues after the
    /// files already there.
    pub fn new(config: EmulatorConfig) -> Result<Arc<Emulator>, EmulatorError> {
        let geometry =
            media::geometry(config.model, &config.media_id).map_err(EmulatorError::Media)?;
        if let Some(Fault::Media(id)) = &config.fault {
            media::geometry(config.model, id)
                .map_err(|e| EmulatorError::BadFault(e.to_string()))?;
        }
        fs::create_dir_all(&config.out_dir).map_err(|e| EmulatorError::Io {
            path: config.out_dir.clone(),
            detail: e.to_string(),
        })?;
        let last_page_seq = max_seq(&config.out_dir, "", ".png");
        let last_job_seq = max_seq(&config.out_dir, "job-", ".bin");
        Ok(Arc::new(Emulator {
            model: config.model,
            out_dir: config.out_dir,
            state: Mutex::new(State {
                media_id: geometry.media.id.to_string(),
                configured_media: geometry.media.id.to_string(),
                speed: config.speed,
                fault: config.fault,
                pending_error: Errors::NONE,
                busy: false,
                printing: false,
                last_page_seq,
                last_job_seq,
                pages_total: 0,
                jobs_total: 0,
                printed: VecDeque::new(),
                jobs: VecDeque::new(),
            }),
            changed: Condvar::new(),
        }))
    }

    /// The emulator for `config.out_dir`, created on first use. A later call
    /// with another model replaces it; with another configured medium or
    /// speed it updates them (a `set_media` made since is kept when the
    /// configured medium did not change).
    pub fn shared(config: EmulatorConfig) -> Result<Arc<Emulator>, EmulatorError> {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = reg.get(&config.out_dir) {
            if existing.model.name == config.model.name {
                let geometry = media::geometry(config.model, &config.media_id)
                    .map_err(EmulatorError::Media)?;
                let mut st = existing.lock();
                if st.configured_media != geometry.media.id {
                    st.configured_media = geometry.media.id.to_string();
                    st.media_id = geometry.media.id.to_string();
                }
                st.speed = config.speed;
                drop(st);
                return Ok(Arc::clone(existing));
            }
        }
        let emu = Emulator::new(config)?;
        reg.insert(emu.out_dir.clone(), Arc::clone(&emu));
        Ok(emu)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn model(&self) -> &'static Model {
        self.model
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// Recreates the output directory when it was removed while the
    /// emulator runs (a printer must not stay paused because someone
    /// tidied up its output).
    pub(crate) fn ensure_out_dir(&self) -> Result<(), String> {
        if self.out_dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&self.out_dir)
            .map_err(|e| format!("recreating {}: {e}", self.out_dir.display()))?;
        log::warn!(
            "emulator: the output directory {} was missing; recreated it",
            self.out_dir.display()
        );
        Ok(())
    }

    /// Sets (or clears) the API fault. The control file still wins.
    pub fn set_fault(&self, fault: Option<Fault>) -> Result<(), EmulatorError> {
        if let Some(Fault::Media(id)) = &fault {
            media::geometry(self.model, id).map_err(|e| EmulatorError::BadFault(e.to_string()))?;
        }
        let mut st = self.lock();
        st.fault = fault;
        st.pending_error = Errors::NONE;
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    /// Loads another medium.
    pub fn set_media(&self, media_id: &str) -> Result<(), EmulatorError> {
        let g = media::geometry(self.model, media_id).map_err(EmulatorError::Media)?;
        let mut st = self.lock();
        st.media_id = g.media.id.to_string();
        st.pending_error = Errors::NONE;
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    pub fn set_speed(&self, speed: Speed) {
        self.lock().speed = speed;
    }

    /// The fault in force: the control file if it exists, else the API's.
    /// An unreadable or invalid control file is logged and ignored.
    pub fn fault(&self) -> Option<Fault> {
        let path = self.out_dir.join("fault");
        match fs::read_to_string(&path) {
            Ok(text) => match Fault::parse(text.lines().next().unwrap_or("")) {
                Ok(Some(Fault::Media(id))) if media::geometry(self.model, &id).is_err() => {
                    log::warn!(
                        "{}: media `{id}` does not fit the {}; ignored",
                        path.display(),
                        self.model.name
                    );
                    self.lock().fault.clone()
                }
                Ok(fault) => fault,
                Err(e) => {
                    log::warn!("{}: {e}; ignored", path.display());
                    self.lock().fault.clone()
                }
            },
            Err(_) => self.lock().fault.clone(),
        }
    }

    /// The medium loaded right now (a `Fault::Media` overrides), `None`
    /// when the fault is "no media".
    fn loaded(&self, st: &State, fault: &Option<Fault>) -> Option<Geometry> {
        let id = match fault {
            Some(Fault::NoMedia) => return None,
            Some(Fault::Media(id)) => id.as_str(),
            _ => st.media_id.as_str(),
        };
        media::geometry(self.model, id).ok()
    }

    /// The status a status request gets now, consuming a pending one-shot
    /// job error. `None` when the printer is off.
    pub fn status(&self) -> Option<Status> {
        self.status_inner(true)
    }

    /// The status without consuming a pending job error.
    pub fn peek_status(&self) -> Option<Status> {
        self.status_inner(false)
    }

    fn status_inner(&self, consume: bool) -> Option<Status> {
        let fault = self.fault();
        if fault == Some(Fault::Offline) {
            return None;
        }
        let mut st = self.lock();
        let g = self.loaded(&st, &fault);
        let mut res = Status::for_media(self.model, g.as_ref());
        if fault == Some(Fault::CoverOpen) {
            res.errors = res.errors | Errors::COVER_OPEN;
        }
        if !st.pending_error.is_empty() {
            res.errors = res.errors | st.pending_error;
            res.status_type = StatusType::Error;
            if consume {
                st.pending_error = Errors::NONE;
            }
        }
        if st.printing {
            res.phase = Phase::Printing;
        }
        Some(res)
    }

    /// The SNMP objects the emulator answers (Brother status block,
    /// Printer-MIB status and error state, device id, media name).
    /// Reading it counts as a status request.
    pub fn snmp_table(&self) -> Option<Vec<(Oid, Value)>> {
        let status = self.status()?;
        let printing = status.phase == Phase::Printing;
        let mut error_state = 0u8;
        if status.errors.contains(Errors::NO_MEDIA) || status.media_width_mm == 0 {
            error_state |= 0x40; // noPaper
        }
        if status.errors.contains(Errors::COVER_OPEN) {
            error_state |= 0x08; // doorOpen
        }
        if status.errors.contains(Errors::CUTTER_JAM) {
            error_state |= 0x04; // jammed
        }
        let name = self.model.name;
        let media_name = match status.loaded_media_id(self.model.family) {
            Some(_) => format!("{}mm", status.media_width_mm),
            None => String::new(),
        };
        Some(vec![
            (
                Oid::from(snmp::SYS_DESCR),
                Value::OctetString(format!("Brother {name} (labelhub emulator)").into_bytes()),
            ),
            (
                Oid::from(snmp::HR_PRINTER_STATUS),
                Value::Integer(if printing { 4 } else { 3 }),
            ),
            (
                Oid::from(snmp::HR_PRINTER_DETECTED_ERROR_STATE),
                Value::OctetString(vec![error_state, 0]),
            ),
            (
                Oid::from(snmp::PRT_INPUT_MEDIA_TYPE),
                Value::OctetString(media_name.into_bytes()),
            ),
            (
                Oid::from(snmp::BROTHER_DEVICE_ID),
                Value::OctetString(
                    format!("MFG:Brother;CMD:PJL;MDL:{name};CLS:PRINTER;DES:Brother {name};")
                        .into_bytes(),
                ),
            ),
            (
                Oid::from(snmp::BROTHER_STATUS),
                Value::OctetString(status.encode().to_vec()),
            ),
        ])
    }

    /// Printed pages still in memory (the last 1000), oldest first.
    pub fn printed(&self) -> Vec<PrintedPage> {
        self.lock().printed.iter().cloned().collect()
    }

    /// Jobs still in memory (the last 1000), oldest first.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.lock().jobs.iter().cloned().collect()
    }

    /// Waits until at least `n` pages were printed by this emulator instance
    /// (or `timeout` passes). Returns whether they were.
    pub fn wait_pages(&self, n: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.pages_total >= n)
    }

    /// Waits until at least `n` jobs ended (any outcome).
    pub fn wait_jobs(&self, n: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.jobs_total >= n)
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if done(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.changed.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// How long `model` needs to feed `lines` raster lines plus the margin
    /// before and after, at `speed` (`None` when instant).
    pub fn print_duration(
        model: &Model,
        speed: Speed,
        lines: u32,
        margin_dots: u16,
        high_res: bool,
    ) -> Option<Duration> {
        let mm_s = speed.mm_per_s(model)?;
        let mm = feed_mm(model, lines, margin_dots, high_res);
        Some(Duration::from_secs_f64(mm / mm_s))
    }

    /// Starts a job: waits for a running one, refuses when the printer is
    /// off, the cover open or nothing loaded.
    pub(crate) fn start_job(self: &Arc<Self>) -> Result<JobRun, StartError> {
        let fault = self.fault();
        match fault {
            Some(Fault::Offline) => return Err(StartError::Offline),
            Some(Fault::CoverOpen) => return Err(StartError::Problem(Problem::CoverOpen)),
            Some(Fault::NoMedia) => return Err(StartError::Problem(Problem::NoMedia)),
            _ => {}
        }
        let deadline = Instant::now() + BUSY_WAIT;
        let mut st = self.lock();
        while st.busy {
            let now = Instant::now();
            if now >= deadline {
                return Err(StartError::Busy);
            }
            st = match self.changed.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
        let Some(geometry) = self.loaded(&st, &fault) else {
            return Err(StartError::Problem(Problem::NoMedia));
        };
        st.busy = true;
        st.pending_error = Errors::NONE;
        st.last_job_seq += 1;
        let seq = st.last_job_seq;
        let speed = st.speed;
        drop(st);
        let drop_after = match fault {
            Some(Fault::Drop { after_bytes }) => Some(after_bytes),
            _ => None,
        };
        job::JobRun::new(Arc::clone(self), seq, geometry, speed, drop_after).map_err(|e| {
            self.end_busy();
            StartError::Io(e)
        })
    }

    fn end_busy(&self) {
        let mut st = self.lock();
        st.busy = false;
        st.printing = false;
        drop(st);
        self.changed.notify_all();
    }

    fn set_printing(&self, printing: bool) {
        self.lock().printing = printing;
    }

    /// Records a job that was refused before it started (cover open, no
    /// media) on a network connection.
    fn record_refused(&self, problem: Problem) {
        let mut st = self.lock();
        st.last_job_seq += 1;
        let record = JobRecord {
            seq: st.last_job_seq,
            bin: None,
            bytes: 0,
            pages: 0,
            outcome: JobOutcome::Rejected {
                code: problem.code(),
                reason: problem.to_string(),
            },
        };
        drop(st);
        self.finish_record(record, Errors::NONE);
    }

    /// Stores a finished job and wakes waiters.
    fn finish_record(&self, record: JobRecord, error: Errors) {
        self.append_event(&job_event(&record));
        match &record.outcome {
            JobOutcome::Printed => log::info!(
                "emulator {}: job {} printed ({} pages, {} bytes)",
                self.model.name,
                record.seq,
                record.pages,
                record.bytes
            ),
            other => log::warn!(
                "emulator {}: job {} {}{}",
                self.model.name,
                record.seq,
                other.name(),
                match other {
                    JobOutcome::Rejected { reason, .. } => format!(": {reason}"),
                    _ => String::new(),
                }
            ),
        }
        let mut st = self.lock();
        st.pending_error = st.pending_error | error;
        st.jobs.push_back(record);
        while st.jobs.len() > HISTORY {
            st.jobs.pop_front();
        }
        st.jobs_total += 1;
        st.busy = false;
        st.printing = false;
        drop(st);
        self.changed.notify_all();
    }

    /// Stores a printed page and wakes waiters.
    fn record_page(&self, page: PrintedPage) {
        self.append_event(&page_event(&page));
        log::info!(
            "emulator {}: printed page {} ({}, {:.1} mm)",
            self.model.name,
            page.png.display(),
            page.media_id,
            page.length_mm
        );
        let mut st = self.lock();
        st.printed.push_back(page);
        while st.printed.len() > HISTORY {
            st.printed.pop_front();
        }
        st.pages_total += 1;
        drop(st);
        self.changed.notify_all();
    }

    fn next_page_seq(&self) -> u64 {
        let mut st = self.lock();
        st.last_page_seq += 1;
        st.last_page_seq
    }

    fn append_event(&self, line: &serde_json::Value) {
        let path = self.out_dir.join("events.jsonl");
        let res = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = res {
            log::warn!("{}: {e}", path.display());
        }
    }
}

/// Millimetres of medium fed for a page.
fn feed_mm(model: &Model, lines: u32, margin_dots: u16, high_res: bool) -> f64 {
    let dpi = if high_res {
        model.high_res_dpi.unwrap_or(model.dpi)
    } else {
        model.dpi
    };
    let dots = f64::from(lines) + 2.0 * f64::from(margin_dots);
    dots * 25.4 / f64::from(dpi.max(1))
}

fn page_event(page: &PrintedPage) -> serde_json::Value {
    serde_json::json!({
        "event": "page",
        "seq": page.seq,
        "job": page.job,
        "index": page.index,
        "png": page.png.file_name().map(|n| n.to_string_lossy().into_owned()),
        "media": page.media_id,
        "width": page.page.black.width(),
        "height": page.page.black.height(),
        "red": page.page.red.is_some(),
        "auto_cut": page.auto_cut,
        "half_cut": page.half_cut,
        "chain": page.chain,
        "high_res": page.high_res,
        "last": page.last,
        "length_mm": (page.length_mm * 10.0).round() / 10.0,
        "ink_outside": page.ink_outside,
    })
}

fn job_event(record: &JobRecord) -> serde_json::Value {
    let (code, reason) = match &record.outcome {
        JobOutcome::Rejected { code, reason } => (Some(*code), Some(reason.clone())),
        _ => (None, None),
    };
    serde_json::json!({
        "event": "job",
        "seq": record.seq,
        "outcome": record.outcome.name(),
        "code": code,
        "reason": reason,
        "pages": record.pages,
        "bytes": record.bytes,
        "bin": record.bin.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()),
    })
}

/// Writes `page` as a PNG (`bitmap::to_png`: grey for one colour, RGB with
/// red ink for two-colour pages). Atomic (temp file + rename).
fn write_png(path: &Path, page: &Page) -> Result<(), String> {
    let tmp = path.with_extension("png.part");
    let png = crate::bitmap::to_png(&page.black, page.red.as_ref())
        .map_err(|e| format!("encoding {}: {e}", tmp.display()))?;
    fs::write(&tmp, png).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// Reads a PNG written by the emulator back into a page: dark pixels are
/// black, saturated red pixels red (a red layer is present only for RGB
/// images). For tests and tools that check what came out.
pub fn read_png(path: &Path) -> Result<Page, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (w, h) = (img.width(), img.height());
    let bitmap = |data| Bitmap::from_packed(w, h, data).ok_or_else(|| "bitmap size".to_string());
    match img {
        image::DynamicImage::ImageLuma8(gray) => Ok(Page {
            black: bitmap(pack(gray.as_raw(), w, h, 1, |p| p[0] < 128))?,
            red: None,
        }),
        other => {
            let rgb = other.to_rgb8();
            let dark = |p: &[u8]| p[0] < 128 && p[1] < 128 && p[2] < 128;
            let red = |p: &[u8]| p[0] >= 128 && p[1] < 128 && p[2] < 128;
            Ok(Page {
                black: bitmap(pack(rgb.as_raw(), w, h, 3, dark))?,
                red: Some(bitmap(pack(rgb.as_raw(), w, h, 3, red))?),
            })
        }
    }
}

/// Packs pixels (`n` bytes each, row-major) into MSB-first bit rows.
fn pack(pixels: &[u8], w: u32, h: u32, n: usize, ink: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let stride = (w as usize).div_ceil(8);
    let mut res = vec![0u8; stride * h as usize];
    for (y, row) in pixels
        .chunks_exact((w as usize * n).max(1))
        .enumerate()
        .take(h as usize)
    {
        let out = &mut res[y * stride..(y + 1) * stride];
        for (i, group) in row.chunks(8 * n).enumerate() {
            let mut byte = 0u8;
            for (bit, p) in group.chunks_exact(n).enumerate() {
                if ink(p) {
                    byte |= 0x80 >> bit;
                }
            }
            out[i] = byte;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brother::model;

    #[test]
    fn speed_and_fault_syntax() {
        assert_eq!(Speed::parse("instant"), Ok(Speed::Instant));
        assert_eq!(Speed::parse("real"), Ok(Speed::Real));
        assert_eq!(Speed::parse("45"), Ok(Speed::MmPerS(45)));
        assert!(Speed::parse("0").is_err());
        assert!(Speed::parse("fast").is_err());
        for s in ["cover_open", "no_media", "media=18", "offline", "drop=100"] {
            let f = Fault::parse(s).unwrap().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            Fault::parse("drop"),
            Ok(Some(Fault::Drop {
                after_bytes: DEFAULT_DROP_AFTER
            }))
        );
        assert_eq!(Fault::parse("  "), Ok(None));
        assert!(Fault::parse("jam").unwrap_err().contains("unknown fault"));
        assert!(Fault::parse("drop=x").is_err());
        assert!(Fault::parse("media=").is_err());
    }

    #[test]
    fn print_duration_matches_the_model_speed() {
        let p750w = model::by_name("PT-P750W").unwrap();
        // A 100 mm label at 180 dpi is 709 lines; no margin.
        let d = Emulator::print_duration(p750w, Speed::Real, 709, 0, false).unwrap();
        let want = 709.0 * 25.4 / 180.0 / f64::from(p750w.speed_mm_s);
        assert!((d.as_secs_f64() - want).abs() < 1e-6, "{d:?}");
        assert!((d.as_secs_f64() - 100.0 / f64::from(p750w.speed_mm_s)).abs() < 0.01);
        // High resolution: twice the lines for the same length.
        let hr = Emulator::print_duration(p750w, Speed::Real, 1418, 0, true).unwrap();
        assert!((hr.as_secs_f64() - d.as_secs_f64()).abs() < 1e-6);
        // Margins are fed too; a fixed speed overrides the model's.
        let m = Emulator::print_duration(p750w, Speed::MmPerS(10), 709, 14, false).unwrap();
        assert!((m.as_secs_f64() - (100.0 + 2.0 * 14.0 * 25.4 / 180.0) / 10.0).abs() < 0.01);
        assert_eq!(
            Emulator::print_duration(p750w, Speed::Instant, 709, 0, false),
            None
        );
    }

    #[test]
    fn default_media_fits_every_model() {
        for m in model::all() {
            let id = default_media(m);
            assert!(media::geometry(m, id).is_ok(), "{} {id}", m.name);
        }
    }
}
