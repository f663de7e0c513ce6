-- Storage faults.
--
-- At most one job per printer is `printing`. The printer thread keeps this
-- (it claims a label in the transaction that marks the previous one done,
-- and claims nothing while a write is owed); this index is the backstop.
-- Older versions could leave a second `printing` row after a failed write:
-- all but the newest per printer become `failed_restart`, as recovery would
-- make them (the label may or may not have come out; it is never resent).
UPDATE jobs
   SET state = 'failed_restart',
       error_code = 'printer_interrupted',
       error = 'the hub lost track of this label after a failed write; it may or may not have printed',
       finished_at = updated_at
 WHERE state = 'printing'
   AND seq NOT IN (SELECT max(seq) FROM jobs WHERE state = 'printing' GROUP BY printer_id);
CREATE UNIQUE INDEX jobs_one_printing ON jobs(printer_id) WHERE state = 'printing';

-- One row rewritten to learn whether the disk takes writes again
-- (hub::db::probe_row); it needs a page write like any real change.
CREATE TABLE storage_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
INSERT INTO storage_probe (id, at) VALUES (1, 0);
