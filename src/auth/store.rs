//! The `api_keys` table: typed reads and writes on a connection the caller
//! holds (the hub's one `Mutex<Connection>`, or a transaction of it).
//!
//! **Invariants:**
//! - The plaintext of a key is never written; `key_digest` is its SHA-256.
//! - `key_prefix` is unique: [`insert_key`] draws a new key on the (2^-54)
//!   chance of a clash instead of letting two rows share a prefix.
//! - Nothing here checks a secret: [`digest_by_prefix`] returns the id and
//!   digest, and the gate verifies in constant time before it reads the row.
//! - Scopes are stored as the single effective scope; `scopes` in the API is
//!   derived from it.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::key::{self, KeyDigest, Plaintext};
use super::AuthError;
use crate::http::{Principal, PrinterAccess, Scope, Source};

/// A stored key, without its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub scope: Scope,
    pub allowed_printer_ids: Vec<Uuid>,
    pub rate_limit_per_minute: u32,
    pub enabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<i64>,
    pub notes: Option<String>,
}

impl KeyRow {
    /// Whether the key may authenticate at `now_ms` (enabled, not expired).
    pub fn usable_at(&self, now_ms: i64) -> bool {
        self.enabled && self.expires_at.is_none_or(|t| now_ms < t)
    }

    /// The principal of this key: what a verified key or one of its
    /// console sessions acts as.
    pub fn principal(self) -> Principal {
        Principal {
            printers: PrinterAccess::from_list(self.allowed_printer_ids),
            source: Source::ApiKey {
                id: self.id,
                prefix: self.key_prefix,
            },
            scope: self.scope,
            rate_limit_per_minute: self.rate_limit_per_minute,
        }
    }
}

/// What an admin asks for when creating a key (already validated).
#[derive(Clone, Debug)]
pub struct NewKey {
    pub name: String,
    pub scope: Scope,
    pub allowed_printer_ids: Vec<Uuid>,
    pub rate_limit_per_minute: u32,
    pub notes: Option<String>,
    pub expires_at: Option<i64>,
}

/// A change to a key; `None` leaves a field as it is. Scopes and the key
/// itself cannot change (revoke and create a new key instead).
#[derive(Clone, Debug, Default)]
pub struct KeyPatch {
    pub enabled: Option<bool>,
    pub rate_limit_per_minute: Option<u32>,
    pub notes: Option<String>,
    pub allowed_printer_ids: Option<Vec<Uuid>>,
}

const COLUMNS: &str = "id, name, key_prefix, scope, allowed_printer_ids, rate_limit_per_minute, \
                       enabled, created_at, last_used_at, last_used_ip, expires_at, notes";

fn read_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    let id: String = row.get(0)?;
    let scope: String = row.get(3)?;
    let printers: String = row.get(4)?;
    let bad = |col: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("api_keys: bad {what}").into(),
        )
    };
    Ok(KeyRow {
        id: Uuid::parse_str(&id).map_err(|_| bad(0, "id"))?,
        name: row.get(1)?,
        key_prefix: row.get(2)?,
        scope: Scope::parse(&scope).ok_or_else(|| bad(3, "scope"))?,
        allowed_printer_ids: serde_json::from_str(&printers)
            .map_err(|_| bad(4, "allowed_printer_ids"))?,
        rate_limit_per_minute: row.get(5)?,
        enabled: row.get(6)?,
        created_at: row.get(7)?,
        last_used_at: row.get(8)?,
        last_used_ip: row.get(9)?,
        expires_at: row.get(10)?,
        notes: row.get(11)?,
    })
}

fn printers_json(ids: &[Uuid]) -> String {
    // Serialising a list of UUIDs cannot fail.
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// Inserts a new key and returns its row and plaintext (shown once).
pub fn insert_key(
    conn: &Connection,
    new: &NewKey,
    now_ms: i64,
) -> Result<(KeyRow, Plaintext), AuthError> {
    let id = Uuid::new_v4();
    // A prefix clash has probability ~n·2^-54; retry a few times rather than
    // ever sharing a prefix.
    for _ in 0..8 {
        let plaintext = key::generate()?;
        let inserted = conn.execute(
            "INSERT INTO api_keys (id, name, key_prefix, key_digest, scope, allowed_printer_ids,
                                   rate_limit_per_minute, enabled, created_at, expires_at, notes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)
             ON CONFLICT (key_prefix) DO NOTHING",
            params![
                id.to_string(),
                new.name,
                plaintext.prefix(),
                plaintext.digest().as_slice(),
                new.scope.as_str(),
                printers_json(&new.allowed_printer_ids),
                new.rate_limit_per_minute,
                now_ms,
                new.expires_at,
                new.notes,
            ],
        )?;
        if inserted == 1 {
            return Ok((get_key(conn, &id)?, plaintext));
        }
    }
    Err(AuthError::invalid(
        "key",
        "could not draw a key with an unused prefix",
    ))
}

/// Every key, oldest first (disabled ones included).
pub fn list_keys(conn: &Connection) -> Result<Vec<KeyRow>, AuthError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], read_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One key by id.
pub fn get_key(conn: &Connection, id: &Uuid) -> Result<KeyRow, AuthError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))?
        .query_row([id.to_string()], read_row)
        .optional()?
        .ok_or_else(|| AuthError::KeyNotFound { id: id.to_string() })
}

/// The id and digest of the key with this lookup prefix, if any. Only
/// these two small columns are read, so a hit costs about what a miss
/// costs; the rest of the row is read after the secret is verified.
pub fn digest_by_prefix(
    conn: &Connection,
    prefix: &str,
) -> Result<Option<(Uuid, KeyDigest)>, AuthError> {
    let found = conn
        .prepare_cached("SELECT id, key_digest FROM api_keys WHERE key_prefix = ?1")?
        .query_row([prefix], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    Ok(found.and_then(|(id, digest)| Some((Uuid::parse_str(&id).ok()?, digest.try_into().ok()?))))
}

/// Number of keys (enabled or not).
pub fn count_keys(conn: &Connection) -> Result<i64, AuthError> {
    Ok(conn.query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0))?)
}

/// Applies a patch; returns the row before and after.
pub fn update_key(
    conn: &Connection,
    id: &Uuid,
    patch: &KeyPatch,
) -> Result<(KeyRow, KeyRow), AuthError> {
    let before = get_key(conn, id)?;
    conn.execute(
        "UPDATE api_keys SET
             enabled = coalesce(?2, enabled),
             rate_limit_per_minute = coalesce(?3, rate_limit_per_minute),
             notes = CASE WHEN ?4 THEN ?5 ELSE notes END,
             allowed_printer_ids = coalesce(?6, allowed_printer_ids)
         WHERE id = ?1",
        params![
            id.to_string(),
            patch.enabled,
            patch.rate_limit_per_minute,
            patch.notes.is_some(),
            patch.notes,
            patch.allowed_printer_ids.as_deref().map(printers_json),
        ],
    )?;
    Ok((before, get_key(conn, id)?))
}

/// Revokes (disables) a key; returns the row before and after.
pub fn revoke_key(conn: &Connection, id: &Uuid) -> Result<(KeyRow, KeyRow), AuthError> {
    update_key(
        conn,
        id,
        &KeyPatch {
            enabled: Some(false),
            ..KeyPatch::default()
        },
    )
}

/// Records when and from where a key was last used.
pub fn touch(conn: &Connection, id: &Uuid, ip: Option<&str>, now_ms: i64) -> Result<(), AuthError> {
    conn.prepare_cached("UPDATE api_keys SET last_used_at = ?2, last_used_ip = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), now_ms, ip])?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::key::Presented;

    pub(crate) fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../sql/0010_auth.sql"))
            .unwrap();
        conn
    }

    /// Disables key `id`.
    pub(crate) fn disable(conn: &Connection, id: &Uuid) {
        let off = KeyPatch {
            enabled: Some(false),
            ..KeyPatch::default()
        };
        update_key(conn, id, &off).unwrap();
    }

    /// Request headers from pairs, looked up case-insensitively.
    pub(crate) fn headers<'a>(
        pairs: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    pub(crate) fn new_key(scope: Scope) -> NewKey {
        NewKey {
            name: "test".into(),
            scope,
            allowed_printer_ids: vec![],
            rate_limit_per_minute: 60,
            notes: None,
            expires_at: None,
        }
    }

    #[test]
    fn insert_stores_only_the_digest() {
        let conn = conn();
        let (row, plaintext) = insert_key(&conn, &new_key(Scope::Print), 1000).unwrap();
        assert_eq!(row.key_prefix, plaintext.prefix());
        assert_eq!(row.scope, Scope::Print);
        assert!(row.enabled);
        assert_eq!(row.created_at, 1000);
        // The plaintext is nowhere in the database file's rows.
        let dump: String = conn
            .query_row(
                "SELECT id || name || key_prefix || hex(key_digest) || scope FROM api_keys",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!dump.contains(&plaintext.expose()[16..]));
        let (id, digest) = digest_by_prefix(&conn, plaintext.prefix())
            .unwrap()
            .unwrap();
        assert_eq!(id, row.id);
        assert!(Presented::parse(plaintext.expose())
            .unwrap()
            .verify(&digest));
        assert!(digest_by_prefix(&conn, "lh_pat_AAAAAAAAA")
            .unwrap()
            .is_none());
    }

    #[test]
    fn prefixes_are_unique_in_the_schema() {
        let conn = conn();
        let (row, _) = insert_key(&conn, &new_key(Scope::Read), 1).unwrap();
        let err = conn.execute(
            "INSERT INTO api_keys (id, name, key_prefix, key_digest, scope, created_at)
             VALUES ('x', 'dup', ?1, zeroblob(32), 'read', 1)",
            [&row.key_prefix],
        );
        assert!(err.is_err());
    }

    #[test]
    fn patch_changes_only_given_fields_and_revoke_disables() {
        let conn = conn();
        let (row, _) = insert_key(&conn, &new_key(Scope::Admin), 1).unwrap();
        let printer = Uuid::new_v4();
        let (before, after) = update_key(
            &conn,
            &row.id,
            &KeyPatch {
                rate_limit_per_minute: Some(5),
                allowed_printer_ids: Some(vec![printer]),
                ..KeyPatch::default()
            },
        )
        .unwrap();
        assert_eq!(before, row);
        assert_eq!(after.rate_limit_per_minute, 5);
        assert_eq!(after.allowed_printer_ids, vec![printer]);
        assert_eq!(after.notes, None);
        assert!(after.enabled);
        let (_, revoked) = revoke_key(&conn, &row.id).unwrap();
        assert!(!revoked.enabled);
        assert_eq!(revoked.rate_limit_per_minute, 5);
        assert!(!revoked.usable_at(2));
    }

    #[test]
    fn expiry_and_database_checks() {
        let conn = conn();
        let mut new = new_key(Scope::Read);
        new.expires_at = Some(100);
        let (row, _) = insert_key(&conn, &new, 1).unwrap();
        assert!(row.usable_at(99));
        assert!(!row.usable_at(100));
        let bad = update_key(
            &conn,
            &row.id,
            &KeyPatch {
                rate_limit_per_minute: Some(0),
                ..KeyPatch::default()
            },
        );
        assert!(bad.is_err(), "the CHECK constraint refuses 0/min");
        let missing = get_key(&conn, &Uuid::new_v4()).unwrap_err();
        assert_eq!(missing.code(), "api_key_not_found");
        touch(&conn, &row.id, Some("192.0.2.1"), 50).unwrap();
        let row = get_key(&conn, &row.id).unwrap();
        assert_eq!(row.last_used_at, Some(50));
        assert_eq!(row.last_used_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(count_keys(&conn).unwrap(), 1);
        assert_eq!(list_keys(&conn).unwrap().len(), 1);
    }
}
