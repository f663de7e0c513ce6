//! The database: opening, pragmas, migrations, the one writer and the pool
//! of readers.
//!
//! **Invariants.**
//! * Every write of the hub goes through the one writing connection behind
//!   its mutex ([`Db::writer`], [`Db::write`]). Every other read takes a
//!   `query_only` connection from a small pool ([`Db::read`]): reads run
//!   side by side and never wait behind a commit's fsync, and in WAL mode
//!   each read statement sees the last commit. A read that decides a write
//!   runs on the writer, inside that write's transaction. A reader that
//!   pairs a snapshot with the newest event id (long-polls) reads the event
//!   id first.
//! * Pragmas: WAL, `synchronous=FULL` (an acknowledged job survives a power
//!   cut), `foreign_keys=ON`, `busy_timeout=5000`. [`PRAGMAS`] is the one list;
//!   the benchmark applies the same list to measure the raw commit rate.
//! * Migrations are `sql/NNNN_*.sql`, embedded, applied in order in one
//!   transaction each, recorded in `PRAGMA user_version`. A database whose
//!   version is newer than [`SCHEMA_VERSION`] is refused and left untouched.
//! * Storage faults are states, not just errors: every commit
//!   records whether the disk took it ([`Db::storage_fault`]); a fault is
//!   cleared by the next commit that succeeds. Before every commit the file
//!   at the database path is compared with the one opened (device and
//!   inode): a deleted or replaced database stops every write for good
//!   (`storage_replaced`), instead of writing into an unlinked file. A read
//!   connection is only opened on the file the writer opened.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::HubError;

/// Why the database cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLITE_FULL, ENOSPC): 507.
    Full,
    /// Read-only, I/O error, cannot open: 503.
    Unavailable,
    /// The database file was deleted or replaced under the running hub:
    /// writes stop until a restart (503).
    Replaced,
}

impl StorageFault {
    pub fn code(self) -> &'static str {
        match self {
            StorageFault::Full => "storage_full",
            StorageFault::Unavailable => "storage_unavailable",
            StorageFault::Replaced => "storage_replaced",
        }
    }

    /// Classifies an SQLite error; `None` when it is not the disk's fault.
    pub fn of(e: &rusqlite::Error) -> Option<StorageFault> {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code()? {
            C::DiskFull => Some(StorageFault::Full),
            C::ReadOnly
            | C::SystemIoFailure
            | C::CannotOpen
            | C::DatabaseCorrupt
            | C::NotADatabase
            | C::FileLockingProtocolFailed => Some(StorageFault::Unavailable),
            _ => None,
        }
    }
}

/// The current storage fault: what, why, since when.
#[derive(Debug, Clone)]
pub struct FaultState {
    pub fault: StorageFault,
    pub message: String,
    pub since: Instant,
}

/// The test seam for write faults: `LABELHUB_TEST_STORAGE_FAULT` names a
/// file whose content (`full`, `readonly`, `ioerr`, or nothing) makes every
/// commit fail with that SQLite error until the file changes. Read once per
/// commit, only when the variable is set.
pub const FAULT_FILE_VAR: &str = "LABELHUB_TEST_STORAGE_FAULT";

/// The migrations, in order. Entry `i` takes the schema from version `i` to
/// `i + 1`. Append only; never edit or remove an entry.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../sql/0001_init.sql"),
    // access control: api_keys, audit_log.
    include_str!("../../sql/0010_auth.sql"),
    // printers.snmp_community.
    include_str!("../../sql/0011_printer_secrets.sql"),
    // storage faults: one `printing` per printer, the storage probe row.
    include_str!("../../sql/0012_faults.sql"),
    // quotas: bitmaps table, max_length_mm, waiting indexes.
    include_str!("../../sql/0013_quotas.sql"),
    // console: browser sessions.
    include_str!("../../sql/0014_sessions.sql"),
    // integrations: webhook subscriptions and outbox.
    include_str!("../../sql/0015_integrations.sql"),
    // waiting-job counts for the queue quotas, kept by triggers.
    include_str!("../../sql/0016_waiting_counts.sql"),
    // The printer thread's typed print options.
    include_str!("../../sql/0017_job_options.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Connection pragmas, applied in this order on every open.
pub const PRAGMAS: &[(&str, &str)] = &[
    ("journal_mode", "WAL"),
    ("synchronous", "FULL"),
    ("foreign_keys", "ON"),
    ("busy_timeout", "5000"),
];

/// The hub's database: the one writing connection behind its mutex, and a
/// pool of read connections (file databases only), so reads do not queue
/// behind a commit's fsync. WAL gives every read statement the last
/// committed state.
pub struct Db {
    conn: Mutex<Connection>,
    /// The pool's read connections, each opened when a read first finds
    /// every opened one busy (an idle hub holds one or none); no slots in
    /// memory.
    readers: Vec<OnceLock<Mutex<Connection>>>,
    /// The file opened and its (device, inode), for the replaced check.
    identity: Option<(PathBuf, (u64, u64))>,
    fault: Mutex<Option<FaultState>>,
    /// Injected fault (unit tests) and the control file (integration tests).
    injected: Mutex<Option<std::ffi::c_int>>,
    fault_file: Option<PathBuf>,
    last_probe: Mutex<Option<Instant>>,
}

/// A read connection from [`Db::read`]: a pooled one, released on drop,
/// or one opened for this read alone when the pool is full and busy
/// (closed on drop). It is `query_only`: never write through it.
pub struct Reader<'a>(Held<'a>);

enum Held<'a> {
    /// A pooled connection (in memory: the writer's).
    Pooled(MutexGuard<'a, Connection>),
    Extra(Connection),
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match &self.0 {
            Held::Pooled(conn) => conn,
            Held::Extra(conn) => conn,
        }
    }
}

/// How many read connections the pool holds at most: enough for every
/// handler thread and the hub's own threads to read at once, so a read
/// almost never opens a connection for itself alone (an open parses the
/// schema: a millisecond, where a pooled read takes microseconds). The
/// pool opens them as reads overlap, so an idle hub holds one or two.
fn pool_size() -> usize {
    40
}

/// (device, inode) of a file.
fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// An SQLite error with `code`, as a failing disk would give it.
fn sqlite_error(code: std::ffi::c_int, message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message.to_string()))
}

impl Db {
    /// Opens (creating if needed) the database file, applies the pragmas and
    /// runs pending migrations.
    pub fn open(path: &Path) -> Result<Db, HubError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut db = Db::from_connection(conn)?;
        db.identity = Some((
            path.to_path_buf(),
            file_id(path).map_err(|error| HubError::Io {
                context: format!("reading {}", path.display()),
                error,
            })?,
        ));
        db.fault_file = std::env::var_os(FAULT_FILE_VAR).map(PathBuf::from);
        // Opened after the migrations (on first use), so they never see an
        // old schema.
        db.readers = (0..pool_size()).map(|_| OnceLock::new()).collect();
        Ok(db)
    }

    /// Opens a read connection on the file the writer opened: refused
    /// (`storage_replaced`, nothing recorded) when the file at the path is
    /// another one or gone.
    fn open_reader(&self) -> Result<Connection, HubError> {
        let same_file = || match &self.identity {
            Some((path, id)) => file_id(path).is_ok_and(|now| now == *id),
            None => false,
        };
        let Some((path, _)) = self.identity.as_ref().filter(|_| same_file()) else {
            return Err(HubError::Storage {
                fault: StorageFault::Replaced,
                message: "the database file is not the one opened".into(),
            });
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        apply_pragmas(&conn)?;
        conn.pragma_update(None, "query_only", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        // Checked again: the file was not swapped while it was opened.
        if !same_file() {
            return Err(HubError::Storage {
                fault: StorageFault::Replaced,
                message: "the database file was replaced while a reader opened it".into(),
            });
        }
        Ok(conn)
    }

    /// An in-memory database (unit tests).
    pub fn open_in_memory() -> Result<Db, HubError> {
        Db::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Db, HubError> {
        // Check the version before touching anything, so that a newer
        // database is left exactly as it was.
        let version = user_version(&conn)?;
        if version > SCHEMA_VERSION {
            return Err(HubError::DatabaseTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        apply_pragmas(&conn)?;
        migrate(&mut conn)?;
        // The writer's statement journals (kept while a statement that
        // fires triggers runs inside a larger transaction) stay in memory.
        // On disk each spilled past 64 KB to a temporary file, a write per
        // page: a sixth of a `POST /print`. After the migrations, so an
        // index they build sorts on disk.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Db {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            identity: None,
            fault: Mutex::new(None),
            injected: Mutex::new(None),
            fault_file: None,
            last_probe: Mutex::new(None),
        })
    }

    /// Locks the one writing connection. A poisoned mutex (a panic while it was held) is
    /// recovered: rusqlite rolls back an unfinished transaction on drop, so
    /// the connection is consistent.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for reads, never for writes (it is `query_only`): the
    /// first idle one of the pool; when every opened one is busy, one
    /// opened now (kept in the pool while it has room, else for this read
    /// alone); when none can be opened (the file is gone), the first
    /// opened one once it is free, or the writer. Never waits for the
    /// writer but in that last case and in memory, where it is the writer.
    /// Take one at a time: never a second while holding one.
    pub fn read(&self) -> Reader<'_> {
        if self.readers.is_empty() {
            return Reader(Held::Pooled(self.writer()));
        }
        // Each turn that does not return fills an empty slot, so this
        // ends after at most one turn per slot.
        loop {
            for slot in self.readers.iter().filter_map(OnceLock::get) {
                match slot.try_lock() {
                    Ok(conn) => return Reader(Held::Pooled(conn)),
                    Err(TryLockError::Poisoned(e)) => return Reader(Held::Pooled(e.into_inner())),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
            let conn = match self.open_reader() {
                Ok(conn) => conn,
                Err(e) => {
                    log::debug!("no new read connection ({e}); waiting for an opened one");
                    return match self.readers.iter().find_map(OnceLock::get) {
                        Some(first) => Reader(Held::Pooled(
                            first.lock().unwrap_or_else(PoisonError::into_inner),
                        )),
                        None => Reader(Held::Pooled(self.writer())),
                    };
                }
            };
            let Some(empty) = self.readers.iter().find(|s| s.get().is_none()) else {
                return Reader(Held::Extra(conn));
            };
            if let Err(conn) = empty.set(Mutex::new(conn)) {
                // Another read filled this slot first.
                return Reader(Held::Extra(
                    conn.into_inner().unwrap_or_else(PoisonError::into_inner),
                ));
            }
        }
    }

    /// How many read connections the pool holds open now.
    #[cfg(test)]
    fn open_readers(&self) -> usize {
        self.readers.iter().filter(|s| s.get().is_some()).count()
    }

    /// Runs `f` inside one IMMEDIATE transaction, committed when `f` returns
    /// `Ok`, rolled back otherwise.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let mut conn = self.writer();
        let res = (|| {
            self.check_identity()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let res = f(&tx)?;
            self.commit(tx)?;
            Ok(res)
        })();
        self.note(&res);
        res
    }

    /// Commits a write transaction: refused when the database file was
    /// replaced or a fault is injected (the transaction rolls back).
    /// Callers that commit by themselves (group commit) call [`Db::note`]
    /// with the outcome.
    pub fn commit(&self, tx: rusqlite::Transaction<'_>) -> Result<(), HubError> {
        self.check_identity()?;
        if let Some(code) = self.injected_fault() {
            drop(tx);
            return Err(sqlite_error(code, "injected test fault").into());
        }
        let t = std::time::Instant::now();
        tx.commit()?;
        crate::metrics::commit(t.elapsed());
        Ok(())
    }

    /// Records the outcome of a write: a storage error sets the fault
    /// state, a success clears it (except `Replaced`, which stays).
    pub fn note<T>(&self, res: &Result<T, HubError>) {
        let mut state = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        match res {
            Ok(_) => {
                if let Some(old) = state.as_ref() {
                    if old.fault != StorageFault::Replaced {
                        log::warn!(
                            "storage: writes succeed again after {:.1} s of {}",
                            old.since.elapsed().as_secs_f64(),
                            old.fault.code()
                        );
                        *state = None;
                    }
                }
            }
            Err(HubError::Storage { fault, message }) => match state.as_mut() {
                Some(old) if old.fault == StorageFault::Replaced => {}
                Some(old) if old.fault == *fault => old.message = message.clone(),
                _ => {
                    if *fault != StorageFault::Replaced {
                        log::error!("storage: writes fail ({}): {message}", fault.code());
                    }
                    *state = Some(FaultState {
                        fault: *fault,
                        message: message.clone(),
                        since: Instant::now(),
                    });
                }
            },
            Err(_) => {}
        }
    }

    /// [`Db::note`] for a group commit: a member that failed on the disk
    /// counts as a failed write even when the (smaller) commit succeeded.
    pub fn note_group<T>(&self, res: &Result<Vec<Result<T, HubError>>, HubError>) {
        let failed = res.as_ref().ok().and_then(|list| {
            list.iter().find_map(|r| {
                r.as_ref()
                    .err()
                    .filter(|e| matches!(e, HubError::Storage { .. }))
            })
        });
        match failed {
            Some(e) => self.note::<()>(&Err(e.for_group())),
            None => self.note(res),
        }
    }

    /// The storage fault seen by the last write, if any.
    pub fn storage_fault(&self) -> Option<FaultState> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fails with `storage_replaced` when the file at the database path is
    /// not the one opened (deleted, or another file moved there). Once seen,
    /// it stays: the process must be restarted on the right file.
    pub fn check_identity(&self) -> Result<(), HubError> {
        let replaced = |message: String| HubError::Storage {
            fault: StorageFault::Replaced,
            message,
        };
        if let Some(f) = self.storage_fault() {
            if f.fault == StorageFault::Replaced {
                return Err(replaced(f.message));
            }
        }
        let Some((path, id)) = &self.identity else {
            return Ok(());
        };
        let problem = match file_id(path) {
            Ok(now) if now == *id => return Ok(()),
            Ok(_) => format!(
                "the database file {} was replaced by another file while the hub runs; \
                 refusing every write (restart labelhub to use the new file)",
                path.display()
            ),
            Err(e) => format!(
                "the database file {} is gone ({e}) while the hub runs; refusing every \
                 write, nothing accepted now would survive a restart (restore the file \
                 or restart labelhub)",
                path.display()
            ),
        };
        log::error!("STORAGE: {problem}");
        let err = replaced(problem);
        self.note::<()>(&Err(replaced(err.to_string())));
        Err(err)
    }

    /// Makes every commit fail with SQLITE_FULL (`Full`) or
    /// SQLITE_READONLY (otherwise); `None` heals. Tests only.
    pub fn inject_fault(&self, fault: Option<StorageFault>) {
        *self.injected.lock().unwrap_or_else(|e| e.into_inner()) = fault.map(|f| match f {
            StorageFault::Full => rusqlite::ffi::SQLITE_FULL,
            _ => rusqlite::ffi::SQLITE_READONLY,
        });
    }

    /// The SQLite result code a commit must fail with, if a fault is
    /// injected.
    fn injected_fault(&self) -> Option<std::ffi::c_int> {
        if let Some(code) = *self.injected.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(code);
        }
        let text = std::fs::read_to_string(self.fault_file.as_ref()?).ok()?;
        match text.trim() {
            "full" => Some(rusqlite::ffi::SQLITE_FULL),
            "readonly" => Some(rusqlite::ffi::SQLITE_READONLY),
            "ioerr" => Some(rusqlite::ffi::SQLITE_IOERR_WRITE),
            _ => None,
        }
    }

    /// For readiness: checks that the file is still the one opened and,
    /// while a fault is recorded, tries one probe write (at most every
    /// 500 ms), so readiness turns back as soon as the disk takes writes.
    /// Returns the fault that remains.
    pub fn storage_health(&self) -> Option<FaultState> {
        if self.check_identity().is_err() {
            return self.storage_fault();
        }
        let fault = self.storage_fault()?;
        let due = {
            let mut last = self.last_probe.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(500));
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if !due {
            return Some(fault);
        }
        let _ = self.probe();
        self.storage_fault()
    }

    /// A write that needs the disk (one page of `storage_probe`): used to
    /// learn that a fault is over when nothing else writes.
    pub fn probe(&self) -> Result<(), HubError> {
        self.write(|tx| probe_row(tx))
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, HubError> {
        user_version(&self.writer())
    }
}

/// Rewrites the one row of `storage_probe`, so a transaction needs the
/// disk even when it changes nothing else.
pub fn probe_row(conn: &Connection) -> Result<(), HubError> {
    conn.prepare_cached("UPDATE storage_probe SET at = at + 1 WHERE id = 1")?
        .execute([])?;
    Ok(())
}

/// Applies [`PRAGMAS`] to a connection.
pub fn apply_pragmas(conn: &Connection) -> Result<(), HubError> {
    for (name, value) in PRAGMAS {
        // journal_mode answers with a row; the others answer with nothing.
        conn.query_row(&format!("PRAGMA {name} = {value}"), [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })?;
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64, HubError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Applies the migrations the database has not seen yet.
fn migrate(conn: &mut Connection) -> Result<(), HubError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version = user_version(&tx)?;
    if version > SCHEMA_VERSION {
        return Err(HubError::DatabaseTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (idx, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(|e| HubError::Migration {
            version: idx as i64 + 1,
            message: e.to_string(),
        })?;
        tx.pragma_update(None, "user_version", idx as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_gets_every_migration() {
        let db = Db::open_in_memory().unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        let n: i64 = db
            .writer()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn pragmas_are_applied_on_a_file() {
        let (dir, path) = temp_file();
        let db = Db::open(&path).unwrap();
        let conn = db.writer();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        let busy: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
        drop(conn);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_read_connection_sees_commits_and_cannot_write() {
        let (dir, path) = temp_file();
        let db = Db::open(&path).unwrap();
        db.write(|tx| {
            tx.execute(
                "INSERT INTO events (at, kind, data) VALUES (1, 'test', '{}')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let n: i64 = db
            .read()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(db.read().execute("DELETE FROM events", []).is_err());
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn readers_run_beside_each_other_and_beside_an_open_write() {
        let (dir, path) = temp_file();
        let db = Db::open(&path).unwrap();
        insert_event(&db).unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                .unwrap()
        };
        // The pool opens a connection when a read finds none idle: reads
        // one after another share one.
        assert_eq!(db.open_readers(), 0);
        for _ in 0..3 {
            assert_eq!(count(&db.read()), 1);
        }
        assert_eq!(db.open_readers(), 1);
        // The writer holds an open transaction: readers neither wait for
        // it nor see it.
        let mut writer = db.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "INSERT INTO events (at, kind, data) VALUES (2, 'test', '{}')",
            [],
        )
        .unwrap();
        // Every pooled connection and one more, all at once.
        let held: Vec<Reader<'_>> = (0..=pool_size()).map(|_| db.read()).collect();
        assert!(matches!(held.last().unwrap().0, Held::Extra(_)));
        assert_eq!(db.open_readers(), pool_size());
        for conn in &held {
            assert_eq!(count(conn), 1);
        }
        drop(held);
        tx.commit().unwrap();
        drop(writer);
        assert_eq!(count(&db.read()), 2);
        // No reader is opened on a file that is not the writer's; the
        // pooled ones keep reading the writer's file.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(db.open_reader().unwrap_err().code(), "storage_replaced");
        assert_eq!(count(&db.read()), 2);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_no_reader_opened_and_the_file_gone_reads_go_to_the_writer() {
        let (dir, path) = temp_file();
        let db = Db::open(&path).unwrap();
        insert_event(&db).unwrap();
        std::fs::remove_file(&path).unwrap();
        let reader = db.read();
        assert!(matches!(reader.0, Held::Pooled(_)));
        let n: i64 = reader
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        drop(reader);
        assert_eq!(db.open_readers(), 0);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A database path in a fresh directory: (directory, path).
    fn temp_file() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("labelhub-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.db");
        (dir, path)
    }

    fn insert_event(db: &Db) -> Result<(), HubError> {
        db.write(|tx| {
            tx.execute(
                "INSERT INTO events (at, kind, data) VALUES (1, 'test', '{}')",
                [],
            )?;
            Ok(())
        })
    }

    #[test]
    fn a_failed_write_is_a_fault_until_a_write_succeeds() {
        let db = Db::open_in_memory().unwrap();
        assert!(db.storage_fault().is_none());
        db.inject_fault(Some(StorageFault::Full));
        let err = insert_event(&db).unwrap_err();
        assert_eq!(err.code(), "storage_full");
        assert_eq!(db.storage_fault().unwrap().fault, StorageFault::Full);
        // Nothing was committed.
        let n: i64 = db
            .read()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        db.inject_fault(Some(StorageFault::Unavailable));
        assert_eq!(insert_event(&db).unwrap_err().code(), "storage_unavailable");
        // Still failing: the health check's probe fails too.
        assert!(db.storage_health().is_some());
        db.inject_fault(None);
        *db.last_probe.lock().unwrap() = None;
        assert!(db.storage_health().is_none(), "the probe write heals it");
        insert_event(&db).unwrap();
    }

    #[test]
    fn a_deleted_or_replaced_database_file_stops_every_write() {
        for replace in [false, true] {
            let (dir, path) = temp_file();
            let db = Db::open(&path).unwrap();
            insert_event(&db).unwrap();
            std::fs::remove_file(&path).unwrap();
            if replace {
                drop(Db::open(&path).unwrap());
            }
            let err = insert_event(&db).unwrap_err();
            assert_eq!(err.code(), "storage_replaced", "{err}");
            assert!(
                err.to_string()
                    .contains(if replace { "replaced" } else { "is gone" }),
                "{err}"
            );
            let health = db.storage_health().unwrap();
            assert_eq!(health.fault, StorageFault::Replaced);
            // It stays, even if the file comes back.
            assert!(db.storage_health().is_some());
            assert_eq!(insert_event(&db).unwrap_err().code(), "storage_replaced");
            drop(db);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let (dir, path) = temp_file();
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn newer_database_is_refused_and_left_alone() {
        let (dir, path) = temp_file();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
                .unwrap();
        }
        let err = Db::open(&path).err().unwrap();
        assert_eq!(err.code(), "database_too_new");
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 99);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "not switched to WAL");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
