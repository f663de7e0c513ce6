//! The hub: configuration, database, the job state machine,
//! printer threads, restart recovery and retention.
//!
//! **Architecture invariants.**
//! * Only `hub` talks SQL; `api` calls typed functions of this module.
//! * One state machine, one vocabulary ([`jobs::JobState`]) in the database,
//!   the API and the events. Every transition is one UPDATE guarded by the
//!   expected from-state, written in the same transaction as its event.
//! * The database is the truth; printer channels only carry wake-ups and job
//!   ids. A printer thread that (re)starts loads its queue from the database,
//!   so restarts, recovery and admin changes need no in-memory hand-over.
//! * After every commit that wrote events, [`Hub::write`] tells the change
//!   listener given to [`Hub::open`], so waiting requests wake up.
//! * `hub` uses no upper layer: tables that other layers write inside a hub
//!   transaction keep their SQL here ([`audit`], [`events::outbox`]).

pub mod audit;
pub mod backup;
pub mod bitmaps;
pub mod clock;
pub mod config;
pub mod control;
pub mod db;
pub mod device;
pub mod events;
pub mod jobs;
pub mod labels;
pub mod live;
pub mod observe;
pub mod printers;
pub mod recovery;
pub mod registry;
pub mod remove;
pub mod retention;
pub mod submit;
pub mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

pub use config::Config;
pub use db::Db;
pub use events::Changes;

/// The error type of the hub layer. `code()` is the stable machine code the
/// API puts in `error_code`.
#[derive(Debug)]
pub enum HubError {
    /// SQLite failed.
    Db(rusqlite::Error),
    /// The database was written by a newer labelhub; it is left untouched.
    DatabaseTooNew { found: i64, supported: i64 },
    /// A migration script failed; its transaction was rolled back.
    Migration { version: i64, message: String },
    /// A file-system operation failed.
    Io {
        context: String,
        error: std::io::Error,
    },
    /// No such job / batch / printer (`kind` is one of those words).
    NotFound { kind: &'static str, id: String },
    /// The job is not in a state that allows the action.
    InvalidJobState {
        id: String,
        state: String,
        action: &'static str,
    },
    /// The request is well-formed JSON but a value is not acceptable.
    Invalid { field: String, message: String },
    /// The request conflicts with what exists (duplicate slug, already
    /// enabled, idempotency key reused with another body, printer disabled).
    Conflict { code: &'static str, message: String },
    /// The label could not be rendered or does not fit the medium.
    Label(labels::LabelError),
    /// The job rows were written but the printer thread could not take them;
    /// the rows are marked failed with this cause.
    Handoff { printer: String, message: String },
    /// The hub is shutting down.
    ShuttingDown,
    /// A group commit failed; every submission in it gets this message.
    Commit(String),
    /// The database cannot be written (disk full, read-only, I/O error,
    /// file replaced): retry later.
    Storage {
        fault: db::StorageFault,
        message: String,
    },
    /// A quota is full (waiting labels per printer or per key); retrying
    /// later may succeed.
    Quota {
        code: &'static str,
        message: String,
        retry_after_s: u64,
    },
}

impl HubError {
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Db(_) => "database_error",
            HubError::DatabaseTooNew { .. } => "database_too_new",
            HubError::Migration { .. } => "migration_failed",
            HubError::Io { .. } => "io_error",
            HubError::NotFound { kind, .. } => match *kind {
                "job" => "job_not_found",
                "batch" => "batch_not_found",
                "printer" => "printer_not_found",
                _ => "not_found",
            },
            HubError::InvalidJobState { .. } => "invalid_job_state",
            HubError::Invalid { .. } => "validation_error",
            HubError::Conflict { code, .. } => code,
            HubError::Label(e) => e.code(),
            HubError::Handoff { .. } => "handoff_failed",
            HubError::ShuttingDown => "shutting_down",
            HubError::Commit(_) => "database_error",
            HubError::Storage { fault, .. } => fault.code(),
            HubError::Quota { code, .. } => code,
        }
    }

    /// The error to hand every member of a failed group commit: storage
    /// faults keep their kind, anything else becomes `Commit`.
    pub(crate) fn for_group(&self) -> HubError {
        match self {
            HubError::Storage { fault, message } => HubError::Storage {
                fault: *fault,
                message: message.clone(),
            },
            e => HubError::Commit(e.to_string()),
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: &str) -> HubError {
        HubError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> HubError {
        HubError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubError::Db(e) => write!(f, "database error: {e}"),
            HubError::DatabaseTooNew { found, supported } => write!(
                f,
                "the database has schema version {found}, this labelhub supports up to {supported}; \
                 refusing to touch it (run a newer labelhub)"
            ),
            HubError::Migration { version, message } => {
                write!(f, "migration to schema version {version} failed: {message}")
            }
            HubError::Io { context, error } => write!(f, "{context}: {error}"),
            HubError::NotFound { kind, id } => write!(f, "{kind} {id} not found"),
            HubError::InvalidJobState { id, state, action } => {
                write!(f, "job {id} is {state}; cannot {action} it")
            }
            HubError::Invalid { field, message } => write!(f, "{field}: {message}"),
            HubError::Conflict { message, .. } => f.write_str(message),
            HubError::Label(e) => write!(f, "{e}"),
            HubError::Handoff { printer, message } => {
                write!(f, "printer {printer} could not take the job: {message}")
            }
            HubError::ShuttingDown => f.write_str("the hub is shutting down"),
            HubError::Commit(message) => write!(f, "database error: {message}"),
            HubError::Storage { fault, message } => match fault {
                db::StorageFault::Full => {
                    write!(f, "the disk is full; nothing was written: {message}")
                }
                db::StorageFault::Unavailable => write!(
                    f,
                    "the database cannot be written (read-only or I/O error); \
                     nothing was written: {message}"
                ),
                db::StorageFault::Replaced => f.write_str(message),
            },
            HubError::Quota { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for HubError {}

impl From<rusqlite::Error> for HubError {
    fn from(e: rusqlite::Error) -> HubError {
        match db::StorageFault::of(&e) {
            Some(fault) => HubError::Storage {
                fault,
                message: e.to_string(),
            },
            None => HubError::Db(e),
        }
    }
}

impl From<labels::LabelError> for HubError {
    fn from(e: labels::LabelError) -> HubError {
        HubError::Label(e)
    }
}

/// Who submitted something: recorded on batches and jobs for audit.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub api_key_id: Option<String>,
    /// `api-key:<id>` or another principal name.
    pub created_by: Option<String>,
    pub source_ip: Option<String>,
}

/// Told after every commit that wrote events (parked long-polls, event
/// streams, the webhook sender). Given to [`Hub::open`], so it hears every
/// commit from the first one.
pub trait ChangeListener: Send + Sync {
    fn changed(&self, changes: &Changes);
}

/// A listener that hears nothing (tools and tests without waiters).
pub struct NoListener;

impl ChangeListener for NoListener {
    fn changed(&self, _: &Changes) {}
}

/// The running hub: database, printer threads and the change listener.
/// Shared as `Arc<Hub>` by handler threads and printer threads.
pub struct Hub {
    pub config: Config,
    pub db: Db,
    /// The printer threads (the `printers` table is [`printers`]).
    pub threads: registry::Registry,
    pub renderer: Arc<dyn labels::Renderer>,
    /// Group commit of submissions.
    pub(crate) submits: submit::GroupCommit,
    pub devices: Arc<dyn device::Devices>,
    listener: Arc<dyn ChangeListener>,
    pub started: Instant,
}

impl Hub {
    /// Opens the database (migrating it). No thread is started yet: run
    /// [`recovery::run`], then [`Hub::start_printers`]. `listener` is told
    /// of every commit that writes events.
    pub fn open(
        config: Config,
        renderer: Arc<dyn labels::Renderer>,
        devices: Arc<dyn device::Devices>,
        listener: Arc<dyn ChangeListener>,
    ) -> Result<Arc<Hub>, HubError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| HubError::Io {
            context: format!("creating data directory {}", config.data_dir.display()),
            error,
        })?;
        let db = Db::open(&config.db_path())?;
        // Rows a migration stored uncompressed: before any thread.
        bitmaps::compress_legacy(&db)?;
        Ok(Arc::new(Hub {
            config,
            db,
            threads: registry::Registry::default(),
            renderer,
            submits: submit::GroupCommit::default(),
            devices,
            listener,
            started: Instant::now(),
        }))
    }

    /// Runs `f` in one IMMEDIATE transaction; after the commit, tells the
    /// listener which resources changed.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut events::Writer<'_, '_>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let mut changes = Changes::default();
        let res = self.db.write(|tx| {
            let mut w = events::Writer::new(tx, &mut changes);
            f(&mut w)
        })?;
        self.notify(&changes);
        Ok(res)
    }

    pub(crate) fn notify(&self, changes: &Changes) {
        if changes.is_empty() {
            return;
        }
        self.listener.changed(changes);
    }

    /// On a first start with no printer, creates the demo printer: a
    /// PT-P750W on the built-in emulator with 12 mm tape, writing PNGs under
    /// `<data dir>/emulator/demo/`. Returns it when created.
    pub fn ensure_demo_printer(&self) -> Result<Option<printers::Printer>, HubError> {
        if !self.config.demo_printer || printers::count(&self.db.read())? > 0 {
            return Ok(None);
        }
        let new = printers::NewPrinter {
            snmp_community: None,
            slug: "demo".into(),
            name: "Demo PT-P750W (emulator)".into(),
            model: "PT-P750W".into(),
            uri: "emulator:?media=12&speed=instant".into(),
            media: Some("12".into()),
            half_cut: true,
            auto_cut: true,
            auto_resume: true,
            queue_timeout_s: 30,
            max_length_mm: crate::hub::printers::DEFAULT_MAX_LENGTH_MM,
            enabled: true,
        };
        let printer = self.write(|w| printers::create(w, &new, "system:first-start"))?;
        log::info!(
            "no printer configured: created the demo printer `demo` (PT-P750W on the built-in \
             emulator, 12 mm tape); its labels are written as PNGs under {}",
            self.config.data_dir.join("emulator").join("demo").display()
        );
        Ok(Some(printer))
    }

    /// Starts one thread per enabled printer (after recovery).
    pub fn start_printers(self: &Arc<Hub>) -> Result<(), HubError> {
        registry::start_all(self)
    }

    /// Stops every printer thread: each finishes the label it is sending;
    /// queued jobs stay queued. Returns the printers whose thread did not
    /// stop within `timeout`.
    pub fn shutdown(&self, timeout: std::time::Duration) -> Vec<String> {
        self.threads.stop_all(timeout)
    }
}

/// Milliseconds since the Unix epoch (the wall clock; see [`clock`]).
pub fn now_ms() -> i64 {
    clock::wall_ms()
}

/// RFC 3339 with millisecond precision and a `Z` suffix.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Parses RFC 3339 into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests;
