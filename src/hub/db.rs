//! The database: opening, pragmas, migrations and the one shared connection.
//!
//! **Invariants.**
//! * Every write of the hub goes through the one `Mutex<Connection>` held by
//!   [`Db`] ([`Db::lock`], [`Db::write`]). Reads may use a second,
//!   `query_only` connection ([`Db::read`]) so they do not wait behind a
//!   commit's fsync; in WAL mode each read statement sees the last commit.
//!   A reader that pairs a snapshot with the newest event id (long-polls)
//!   reads the event id first.
//! * Pragmas: WAL, `synchronous=FULL` (an acknowledged job survives a power
//!   cut), `foreign_keys=ON`, `busy_timeout=5000`. [`PRAGMAS`] is the one list;
//!   the benchmark applies the same list to measure the raw commit rate.
//! * Migrations are `sql/NNNN_*.sql`, embedded, applied in order in one
//!   transaction each, recorded in `PRAGMA user_version`. A database whose
//!   version is newer than [`SCHEMA_VERSION`] is refused and left untouched.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::HubError;

/// The migrations, in order. Entry `i` takes the schema from version `i` to
/// `i + 1`. Append only; never edit or remove an entry.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../sql/0001_init.sql"),
    // auth (issue 5): api_keys, audit_log.
    include_str!("../../sql/0010_auth.sql"),
    // policy (issue 9): printers.snmp_community.
    include_str!("../../sql/0011_printer_secrets.sql"),
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
/// second connection for reads (file databases only), so reads do not
/// queue behind a commit's fsync. WAL gives every read statement the last
/// committed state.
pub struct Db {
    conn: Mutex<Connection>,
    reader: Option<Mutex<Connection>>,
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
        // Opened after the migrations, so it never sees an old schema.
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        apply_pragmas(&reader)?;
        reader.pragma_update(None, "query_only", "ON")?;
        reader.set_prepared_statement_cache_capacity(64);
        db.reader = Some(Mutex::new(reader));
        Ok(db)
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
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Db {
            conn: Mutex::new(conn),
            reader: None,
        })
    }

    /// Locks the connection. A poisoned mutex (a panic while it was held) is
    /// recovered: rusqlite rolls back an unfinished transaction on drop, so
    /// the connection is consistent.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection for reads: never use it to write (it is
    /// `query_only`). Falls back to the writing connection in memory.
    pub fn read(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => r.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.lock(),
        }
    }

    /// Runs `f` inside one IMMEDIATE transaction, committed when `f` returns
    /// `Ok`, rolled back otherwise.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let res = f(&tx)?;
        let t = std::time::Instant::now();
        tx.commit()?;
        crate::metrics::commit(t.elapsed());
        Ok(res)
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, HubError> {
        user_version(&self.lock())
    }
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
            .lock()
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
        let dir = std::env::temp_dir().join(format!("labelhub-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("hub.db")).unwrap();
        let conn = db.lock();
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
        let dir = std::env::temp_dir().join(format!("labelhub-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("hub.db")).unwrap();
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
    fn migrating_twice_is_a_no_op() {
        let dir = std::env::temp_dir().join(format!("labelhub-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.db");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn newer_database_is_refused_and_left_alone() {
        let dir = std::env::temp_dir().join(format!("labelhub-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.db");
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
