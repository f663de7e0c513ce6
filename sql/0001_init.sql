-- labelhub schema, version 1.
-- Applied once by hub::db::migrate inside one transaction; PRAGMA user_version
-- records it. Never edit a released migration: add sql/NNNN_*.sql instead.
--
-- Times are INTEGER milliseconds since the Unix epoch (UTC); the API renders
-- them as RFC 3339. Ids are UUID strings. JSON columns hold compact JSON text.

CREATE TABLE printers (
    id              TEXT PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL UNIQUE,
    model           TEXT NOT NULL,              -- canonical model name, e.g. PT-P750W
    uri             TEXT NOT NULL,              -- tcp://, usb://, dir://, emulator:
    media           TEXT,                       -- configured loaded media (when the printer cannot report it)
    seen_media      TEXT,                       -- media last reported by the printer
    half_cut        INTEGER NOT NULL DEFAULT 0, -- cut defaults
    auto_cut        INTEGER NOT NULL DEFAULT 1,
    auto_resume     INTEGER NOT NULL DEFAULT 1, -- resume by itself when status polling sees the problem gone
    queue_timeout_s INTEGER NOT NULL DEFAULT 30,
    enabled         INTEGER NOT NULL DEFAULT 1,
    paused          INTEGER NOT NULL DEFAULT 0,
    paused_reason   TEXT,                       -- error code of the problem, or 'operator'
    paused_detail   TEXT,                       -- human text for paused_reason
    status          TEXT,                       -- JSON of the last status poll
    status_at       INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE printers_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    printer_id  TEXT NOT NULL,
    slug        TEXT NOT NULL,
    action      TEXT NOT NULL,                  -- create / update / disable / enable
    before_json TEXT,
    after_json  TEXT,
    updated_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    printer_id  TEXT NOT NULL REFERENCES printers(id),
    created_by  TEXT,
    api_key_id  TEXT,
    source_ip   TEXT,
    n_jobs      INTEGER NOT NULL,
    half_cut    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0      -- id of the last event touching one of its jobs
);
CREATE INDEX batches_created ON batches(created_at);

-- One row per physical label. `seq` is the queue order (FIFO per printer).
CREATE TABLE jobs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    printer_id    TEXT NOT NULL REFERENCES printers(id),
    batch_id      TEXT NOT NULL REFERENCES batches(id),
    position      INTEGER NOT NULL,             -- item index in the batch request
    copy_index    INTEGER NOT NULL,             -- 0-based copy of that item
    copy_total    INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN
                    ('queued','paused','printing','done','failed','cancelled','failed_restart')),
    content_type  TEXT NOT NULL,                -- render inputs ...
    label_data    TEXT NOT NULL,                -- JSON
    options       TEXT NOT NULL,                -- JSON print options
    model         TEXT NOT NULL,                -- ... and what it was rendered for
    media         TEXT NOT NULL,
    width         INTEGER NOT NULL,             -- packed rendered bitmap (label orientation)
    height        INTEGER NOT NULL,
    bitmap        BLOB NOT NULL,
    bitmap_red    BLOB,
    error_code    TEXT,
    error_detail  TEXT,                         -- JSON object
    error         TEXT,                         -- human message
    api_key_id    TEXT,
    source_ip     TEXT,
    retry_of      TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    version       INTEGER NOT NULL DEFAULT 0    -- id of the last event about this job
);
CREATE INDEX jobs_printer_state ON jobs(printer_id, state, seq);
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_batch ON jobs(batch_id, position, copy_index);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;

-- The change feed. `id` only grows (AUTOINCREMENT never reuses ids, even
-- after retention deletes old rows), so it doubles as a cursor and version.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,                  -- job.created, job.state_changed, printer.status, printer.media_changed
    printer_id  TEXT,
    job_id      TEXT,
    batch_id    TEXT,
    data        TEXT NOT NULL                   -- JSON payload
);
CREATE INDEX events_at ON events(at);

CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,                  -- route + principal
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,                  -- sha256 of the request body
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency_keys(created_at);
