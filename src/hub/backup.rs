//! Backups, restores and the data-directory lock.
//!
//! * [`backup_to`]: a consistent copy of the database while the hub runs,
//!   with SQLite's online backup API from a connection of its own. The
//!   whole copy is one backup step, i.e. one read transaction: in WAL mode
//!   that is a snapshot of the last commit that never blocks the hub's
//!   writer (a copy in many small steps would restart after every commit of
//!   a busy hub). The copy is written to `FILE.part`, switched to the
//!   `DELETE` journal (one self-contained file), checked with
//!   `PRAGMA integrity_check`, synced and renamed over `FILE`.
//! * [`inspect`]: what a backup file is (schema version, integrity, jobs).
//! * [`restore`]: puts a backup in place of the database. Refused while a
//!   hub holds the data-directory lock, for a file that is not a labelhub
//!   database, fails the integrity check, or has a schema newer than this
//!   binary (an older one is migrated by the next `serve`). The database it
//!   replaces (with its `-wal`/`-shm`) is kept beside it as
//!   `labelhub.db.before-restore-<UTC time>`.
//! * [`DataDirLock`]: `serve` holds an exclusive lock on
//!   `<data dir>/labelhub.lock` for its lifetime (the file holds its pid);
//!   `restore` takes the same lock, so it cannot run under a live hub, and
//!   two hubs cannot share a data directory. The kernel drops the lock when
//!   the process ends, also after `kill -9`.
//!
//! **Invariant:** nothing here writes to the live database file; a restore
//! only renames files while no hub runs.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::db::SCHEMA_VERSION;
use super::HubError;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "labelhub.lock";

/// How long a backup retries while SQLite reports the source busy.
const BUSY_RETRY: Duration = Duration::from_secs(30);

/// An exclusive lock on the data directory, released on drop (or when the
/// process dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock without waiting. A lock held by another process is
    /// `HubError::Conflict { code: "hub_running" }` naming its pid.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, HubError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |context: String| move |error| HubError::Io { context, error };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(HubError::Conflict {
                    code: "hub_running",
                    message: format!(
                        "a labelhub hub is running on {}{}; stop it first (systemctl stop labelhub)",
                        data_dir.display(),
                        if pid.is_empty() {
                            String::new()
                        } else {
                            format!(" (pid {pid})")
                        }
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(HubError::Io {
                    context: format!("locking {}", path.display()),
                    error,
                })
            }
        }
        // Holding the lock: record who holds it (best effort: a full disk
        // must not stop the hub from starting).
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()));
        Ok(DataDirLock { _file: file, path })
    }
}

/// What a backup or a backup file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupInfo {
    pub bytes: u64,
    pub schema_version: i64,
    pub jobs: i64,
    pub printers: i64,
    /// `ok`, or the first problems `PRAGMA integrity_check` reported.
    pub integrity: String,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> HubError {
    move |error| HubError::Io { context, error }
}

/// Opens the live database for reading without creating it, without
/// migrating it and without taking any write lock.
fn open_source(db_path: &Path) -> Result<Connection, HubError> {
    if !db_path.is_file() {
        return Err(HubError::Invalid {
            field: "data_dir".into(),
            message: format!(
                "no database at {} (is PRINTER_HUB_DATA_DIR or --data-dir right?)",
                db_path.display()
            ),
        });
    }
    // Read-write open (never create) so the WAL index can be used while the
    // hub runs; `query_only` makes this connection unable to write.
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// Copies the live database at `db_path` into `dest` (a consistent
/// snapshot), checks the copy and returns what it holds. `dest` appears
/// only when complete and checked.
pub fn backup_to(db_path: &Path, dest: &Path) -> Result<BackupInfo, HubError> {
    let src = open_source(db_path)?;
    let part = part_path(dest);
    let _ = std::fs::remove_file(&part);
    let res = (|| {
        {
            let mut dst = Connection::open(&part)?;
            {
                let backup = Backup::new(&src, &mut dst)?;
                let started = Instant::now();
                loop {
                    // -1: every page in one step, one read transaction.
                    match backup.step(-1)? {
                        StepResult::Done => break,
                        _ if started.elapsed() > BUSY_RETRY => {
                            return Err(HubError::Conflict {
                                code: "database_busy",
                                message: format!(
                                    "the database stayed locked for {} s; try again",
                                    BUSY_RETRY.as_secs()
                                ),
                            })
                        }
                        // Busy/Locked (or More, which -1 does not return):
                        // wait briefly for the other connection.
                        _ => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
            // One self-contained file: no -wal beside the backup.
            dst.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        }
        let info = inspect(&part)?;
        if info.integrity != "ok" {
            return Err(HubError::Invalid {
                field: "backup".into(),
                message: format!("the copy failed its integrity check: {}", info.integrity),
            });
        }
        File::open(&part)
            .and_then(|f| f.sync_all())
            .map_err(io(format!("syncing {}", part.display())))?;
        std::fs::rename(&part, dest).map_err(io(format!(
            "renaming {} to {}",
            part.display(),
            dest.display()
        )))?;
        sync_dir(dest);
        Ok(info)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    res
}

/// Reads a database file without changing it: schema version, integrity
/// and row counts. A file that is not an SQLite database, or not one of
/// labelhub's, is `HubError::Invalid`.
pub fn inspect(path: &Path) -> Result<BackupInfo, HubError> {
    let not_ours = |why: String| HubError::Invalid {
        field: "file".into(),
        message: format!("{} is not a labelhub database: {why}", path.display()),
    };
    let bytes = std::fs::metadata(path)
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    let mut head = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| not_ours(format!("cannot read its header ({e})")))?;
    if &head != b"SQLite format 3\0" {
        return Err(not_ours("no SQLite header".into()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare("PRAGMA integrity_check(10)")?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let integrity = problems.join("; ");
    if schema_version == 0 {
        return Err(not_ours(
            "schema version 0 (an empty or foreign database)".into(),
        ));
    }
    let count = |table: &str| -> Result<i64, HubError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| not_ours(format!("no readable `{table}` table ({e})")))
    };
    // A newer schema may have changed these tables: count only what we know.
    let (jobs, printers) = if schema_version <= SCHEMA_VERSION {
        (count("jobs")?, count("printers")?)
    } else {
        (-1, -1)
    };
    Ok(BackupInfo {
        bytes,
        schema_version,
        jobs,
        printers,
        integrity,
    })
}

/// What [`restore`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub restored: BackupInfo,
    /// Where the replaced database went (`None` when there was none).
    pub previous: Option<PathBuf>,
}

/// Puts the backup `file` in place of `<data_dir>/labelhub.db`. Refused
/// while a hub runs on `data_dir`, and for a file that is not a sound
/// labelhub database of a schema this binary can run.
pub fn restore(data_dir: &Path, file: &Path, now_ms: i64) -> Result<RestoreReport, HubError> {
    let info = inspect(file)?;
    if info.schema_version > SCHEMA_VERSION {
        return Err(HubError::DatabaseTooNew {
            found: info.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if info.integrity != "ok" {
        return Err(HubError::Invalid {
            field: "file".into(),
            message: format!(
                "{} fails PRAGMA integrity_check: {}",
                file.display(),
                info.integrity
            ),
        });
    }
    std::fs::create_dir_all(data_dir).map_err(io(format!(
        "creating data directory {}",
        data_dir.display()
    )))?;
    let _lock = DataDirLock::acquire(data_dir)?;
    let db = data_dir.join("labelhub.db");
    // Copy first (the backup may be on another file system), then swap by
    // renames, so a crash leaves either the old or the new database.
    let staged = data_dir.join("labelhub.db.restoring");
    let _ = std::fs::remove_file(&staged);
    let copy = (|| {
        let mut from = File::open(file)?;
        let mut to = File::create(&staged)?;
        std::io::copy(&mut from, &mut to)?;
        to.sync_all()
    })();
    if let Err(error) = copy {
        let _ = std::fs::remove_file(&staged);
        return Err(HubError::Io {
            context: format!("copying {} to {}", file.display(), staged.display()),
            error,
        });
    }
    let previous = if db.exists() {
        let stamp = stamp(now_ms);
        let aside = data_dir.join(format!("labelhub.db.before-restore-{stamp}"));
        for suffix in ["-wal", "-shm"] {
            let from = data_dir.join(format!("labelhub.db{suffix}"));
            if from.exists() {
                let to = data_dir.join(format!("labelhub.db.before-restore-{stamp}{suffix}"));
                std::fs::rename(&from, &to)
                    .map_err(io(format!("moving {} aside", from.display())))?;
            }
        }
        std::fs::rename(&db, &aside).map_err(io(format!("moving {} aside", db.display())))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staged, &db).map_err(io(format!(
        "renaming {} to {}",
        staged.display(),
        db.display()
    )))?;
    sync_dir(&db);
    Ok(RestoreReport {
        restored: info,
        previous,
    })
}

/// `20261202T101500Z` for a time in ms since the epoch.
fn stamp(now_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Makes a rename durable (best effort; not every file system allows it).
fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hub::db::Db;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "labelhub-backup-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn backup_copies_a_live_database_into_one_checked_file() {
        let d = dir("copy");
        let db = Db::open(&d.join("labelhub.db")).unwrap();
        let out = d.join("copy.db");
        let info = backup_to(&d.join("labelhub.db"), &out).unwrap();
        assert_eq!(info.schema_version, SCHEMA_VERSION);
        assert_eq!(info.integrity, "ok");
        assert!(!d.join("copy.db-wal").exists());
        assert!(!part_path(&out).exists());
        let conn = Connection::open(&out).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        drop(db);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn backup_of_a_missing_database_says_where_it_looked() {
        let d = dir("missing");
        let err = backup_to(&d.join("labelhub.db"), &d.join("x.db")).unwrap_err();
        assert!(err.to_string().contains("no database at"), "{err}");
        assert!(!d.join("x.db").exists());
        assert!(!d.join("labelhub.db").exists(), "backup must not create it");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_and_names_the_holder() {
        let d = dir("lock");
        let held = DataDirLock::acquire(&d).unwrap();
        let err = DataDirLock::acquire(&d).unwrap_err();
        assert_eq!(err.code(), "hub_running");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        DataDirLock::acquire(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn restore_refuses_newer_schemas_foreign_files_and_a_held_lock() {
        let d = dir("restore");
        let newer = d.join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE t (x); PRAGMA user_version = {};",
                SCHEMA_VERSION + 1
            ))
            .unwrap();
        let err = restore(&d.join("data"), &newer, 0).unwrap_err();
        assert_eq!(err.code(), "database_too_new", "{err}");

        let text = d.join("notes.txt");
        std::fs::write(&text, "hello, this is not a database").unwrap();
        let err = restore(&d.join("data"), &text, 0).unwrap_err();
        assert!(err.to_string().contains("not a labelhub database"), "{err}");

        let empty = d.join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        let err = restore(&d.join("data"), &empty, 0).unwrap_err();
        assert!(err.to_string().contains("schema version 0"), "{err}");

        // A good backup, refused while the lock is held, then restored.
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        drop(Db::open(&data.join("labelhub.db")).unwrap());
        let good = d.join("good.db");
        backup_to(&data.join("labelhub.db"), &good).unwrap();
        let lock = DataDirLock::acquire(&data).unwrap();
        let err = restore(&data, &good, 0).unwrap_err();
        assert_eq!(err.code(), "hub_running");
        drop(lock);
        let report = restore(&data, &good, 1_795_929_252_000).unwrap();
        let aside = report.previous.unwrap();
        assert!(aside.ends_with("labelhub.db.before-restore-20261129T051412Z"));
        assert!(aside.exists());
        assert_eq!(report.restored.integrity, "ok");
        assert!(data.join("labelhub.db").exists());
        assert!(!data.join("labelhub.db.restoring").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
