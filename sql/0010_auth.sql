-- Access control: API keys and the audit log.
-- Times are INTEGER milliseconds since the Unix epoch (UTC), as in 0001.

-- One row per API key. The key itself is never stored: only its SHA-256
-- digest, found by the unique lookup prefix (`lh_pat_` + 9 random chars).
-- Revoking a key disables it; the row stays so jobs keep their api_key_id.
CREATE TABLE api_keys (
    id                    TEXT PRIMARY KEY,                  -- UUID
    name                  TEXT NOT NULL,
    key_prefix            TEXT NOT NULL UNIQUE CHECK (length(key_prefix) = 16),
    key_digest            BLOB NOT NULL CHECK (length(key_digest) = 32),
    scope                 TEXT NOT NULL CHECK (scope IN ('read', 'print', 'admin')),
    allowed_printer_ids   TEXT NOT NULL DEFAULT '[]',        -- JSON array of printer ids; [] = all
    rate_limit_per_minute INTEGER NOT NULL DEFAULT 60
                          CHECK (rate_limit_per_minute BETWEEN 1 AND 10000),
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at            INTEGER NOT NULL,
    last_used_at          INTEGER,
    last_used_ip          TEXT,
    expires_at            INTEGER,
    notes                 TEXT
);

-- Admin changes (API keys, printers). Snapshots are redacted before they are
-- written: no key, digest, token or SNMP community ever lands here.
-- Pruned by the retention thread on its own, longer retention.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,                   -- api-key:<uuid>, sso:<user>, system
    source_ip   TEXT,
    action      TEXT NOT NULL,                   -- api_key.create, printer.update, ...
    target_type TEXT NOT NULL,                   -- api_key, printer
    target_id   TEXT,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_target ON audit_log(target_type, target_id, id);
