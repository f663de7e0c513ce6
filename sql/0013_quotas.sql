-- Quotas and bounded storage.
--
-- 1. Label bitmaps move out of `jobs` into `bitmaps`, one row per submitted
--    item: the copies of an item (and retries of a job) point at the same
--    row through `jobs.bitmap_id`. New rows are deflate-compressed
--    (hub::bitmaps); the rows converted here are stored 'raw' first and
--    compressed by hub::bitmaps::compress_legacy when the hub opens, in
--    small transactions (SQL cannot deflate).
-- 2. A bitmap row lives as long as a job points at it: the trigger below
--    deletes it with its last job (retention, clear).
-- 3. printers.max_length_mm: the longest label a printer accepts (default
--    500 mm; the medium's own limit still applies).
-- 4. Partial indexes for the quota counts and the paged queue.

CREATE TABLE bitmaps (
    id        INTEGER PRIMARY KEY,
    encoding  TEXT NOT NULL CHECK (encoding IN ('raw', 'deflate')),
    width     INTEGER NOT NULL,            -- label orientation (see bitmap.rs)
    height    INTEGER NOT NULL,
    black     BLOB NOT NULL,
    red       BLOB                         -- same encoding as black
);
CREATE INDEX bitmaps_raw ON bitmaps(id) WHERE encoding = 'raw';

-- One row per item of every existing batch: the first copy's seq is a
-- unique id for it.
INSERT INTO bitmaps (id, encoding, width, height, black, red)
SELECT seq, 'raw', width, height, bitmap, bitmap_red FROM jobs
 WHERE seq = (SELECT min(k.seq) FROM jobs k
               WHERE k.batch_id = jobs.batch_id AND k.position = jobs.position);

ALTER TABLE jobs ADD COLUMN bitmap_id INTEGER REFERENCES bitmaps(id);
UPDATE jobs SET bitmap_id = (SELECT min(k.seq) FROM jobs k
                              WHERE k.batch_id = jobs.batch_id AND k.position = jobs.position);
ALTER TABLE jobs DROP COLUMN bitmap;
ALTER TABLE jobs DROP COLUMN bitmap_red;
ALTER TABLE jobs DROP COLUMN width;
ALTER TABLE jobs DROP COLUMN height;
CREATE INDEX jobs_bitmap ON jobs(bitmap_id);

CREATE TRIGGER jobs_bitmap_release AFTER DELETE ON jobs
WHEN OLD.bitmap_id IS NOT NULL
BEGIN
    DELETE FROM bitmaps WHERE id = OLD.bitmap_id
       AND NOT EXISTS (SELECT 1 FROM jobs WHERE bitmap_id = OLD.bitmap_id);
END;

ALTER TABLE printers ADD COLUMN max_length_mm INTEGER NOT NULL DEFAULT 500;

-- Waiting jobs (the quota counts and the queue listing walk only these).
CREATE INDEX jobs_printer_waiting ON jobs(printer_id, seq)
    WHERE state IN ('queued', 'paused', 'printing');
CREATE INDEX jobs_key_waiting ON jobs(api_key_id)
    WHERE state IN ('queued', 'paused', 'printing');
-- GET /api/jobs?printer_id=: newest first without sorting the printer's jobs.
CREATE INDEX jobs_printer_seq ON jobs(printer_id, seq);
-- GET /api/events?batch_id= / ?printer_id=: a page without scanning every
-- newer event.
CREATE INDEX events_batch ON events(batch_id, id) WHERE batch_id IS NOT NULL;
CREATE INDEX events_printer ON events(printer_id, id) WHERE printer_id IS NOT NULL;
