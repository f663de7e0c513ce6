//! The bootstrap admin key: on a first start with no key at all, the hub
//! makes one admin key and writes it to `<data_dir>/bootstrap-admin.key`.
//!
//! **Invariants:**
//! - The key is written only to that file, created with mode 0600 and
//!   renamed into place (never a half-written file); the log gets the path,
//!   never the key.
//! - The row and the file appear together: if the file cannot be written the
//!   row is rolled back, so the next start tries again.
//! - Once any key exists (even a revoked one) nothing is created.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::json;

use super::store::{self, NewKey};
use super::{audit, AuthError};
use crate::http::Scope;

/// File name of the bootstrap key inside the data directory.
pub const FILE_NAME: &str = "bootstrap-admin.key";

/// Creates the bootstrap admin key if the database has no key. Returns the
/// path of the key file when one was written. `conn` must not be inside a
/// transaction that the caller rolls back later.
pub fn ensure(
    conn: &Connection,
    data_dir: &Path,
    now_ms: i64,
) -> Result<Option<PathBuf>, AuthError> {
    conn.execute_batch("SAVEPOINT bootstrap_key")?;
    let res = create_if_none(conn, data_dir, now_ms);
    match res {
        Ok(_) => conn.execute_batch("RELEASE bootstrap_key")?,
        Err(_) => conn.execute_batch("ROLLBACK TO bootstrap_key; RELEASE bootstrap_key")?,
    }
    res
}

fn create_if_none(
    conn: &Connection,
    data_dir: &Path,
    now_ms: i64,
) -> Result<Option<PathBuf>, AuthError> {
    if store::count_keys(conn)? > 0 {
        return Ok(None);
    }
    let (row, plaintext) = store::insert_key(
        conn,
        &NewKey {
            name: "bootstrap-admin".into(),
            scope: Scope::Admin,
            allowed_printer_ids: vec![],
            rate_limit_per_minute: 60,
            notes: Some(format!("created on first start; stored in {FILE_NAME}")),
            expires_at: None,
        },
        now_ms,
    )?;
    audit::record(
        conn,
        audit::Entry {
            actor: "system",
            source_ip: None,
            action: "api_key.create",
            target_type: "api_key",
            target_id: Some(&row.id.to_string()),
            before: None,
            after: Some(json!({
                "name": row.name,
                "key_prefix": row.key_prefix,
                "scopes": [row.scope.as_str()],
            })),
        },
        now_ms,
    )?;
    let path = data_dir.join(FILE_NAME);
    write_secret_file(&path, &format!("{}\n", plaintext.expose()))?;
    Ok(Some(path))
}

/// Writes `contents` to `path` with mode 0600, via a temporary file in the
/// same directory and a rename.
fn write_secret_file(path: &Path, contents: &str) -> Result<(), AuthError> {
    let io = |context: String| move |error| AuthError::Io { context, error };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; make it exact.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::key::Presented;

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("labelhub-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn first_start_writes_a_0600_admin_key_once() {
        let conn = crate::auth::store::tests::conn();
        let dir = tempdir();
        let path = ensure(&conn, &dir, 5).unwrap().unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let presented = Presented::parse(text.trim_end()).unwrap();
        let (id, digest) = store::digest_by_prefix(&conn, presented.prefix())
            .unwrap()
            .unwrap();
        assert!(presented.verify(&digest));
        let row = store::get_key(&conn, &id).unwrap();
        assert_eq!(row.scope, Scope::Admin);
        assert_eq!(row.name, "bootstrap-admin");
        let audit = audit::list(&conn, &audit::Query::default()).unwrap();
        assert_eq!(audit.len(), 1);
        assert!(!audit[0]
            .after
            .as_ref()
            .unwrap()
            .to_string()
            .contains(text.trim_end()));
        // Second start: nothing new.
        assert_eq!(ensure(&conn, &dir, 6).unwrap(), None);
        assert_eq!(store::count_keys(&conn).unwrap(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_file_leaves_no_key_behind() {
        let conn = crate::auth::store::tests::conn();
        let dir = tempdir();
        // A directory where the file should go makes the rename fail.
        std::fs::create_dir_all(dir.join(FILE_NAME).join("x")).unwrap();
        let err = ensure(&conn, &dir, 5).unwrap_err();
        assert_eq!(err.code(), "io_error");
        assert_eq!(store::count_keys(&conn).unwrap(), 0);
        assert!(audit::list(&conn, &audit::Query::default())
            .unwrap()
            .is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the blocking directory remains");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
