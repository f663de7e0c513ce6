-- Waiting-job counts for the queue quotas (hub::submit::check_quotas),
-- so a submission reads one row instead of walking a long queue.
--
-- A job is waiting while its state is queued, paused or printing. The
-- triggers keep the counts in the same transaction as every change of a
-- job's state, printer or key, whoever writes it (submit, retry, cancel,
-- the workers, recovery, retention, printer removal). A row whose count
-- falls to 0 stays (a few bytes per printer and key).

CREATE TABLE waiting_per_printer (
    printer_id TEXT PRIMARY KEY,
    n          INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE waiting_per_key (
    api_key_id TEXT PRIMARY KEY,
    n          INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO waiting_per_printer (printer_id, n)
SELECT printer_id, count(*) FROM jobs
 WHERE state IN ('queued', 'paused', 'printing') GROUP BY printer_id;

INSERT INTO waiting_per_key (api_key_id, n)
SELECT api_key_id, count(*) FROM jobs
 WHERE state IN ('queued', 'paused', 'printing') AND api_key_id IS NOT NULL
 GROUP BY api_key_id;

CREATE TRIGGER jobs_waiting_insert AFTER INSERT ON jobs
WHEN NEW.state IN ('queued', 'paused', 'printing')
BEGIN
    INSERT INTO waiting_per_printer (printer_id, n) VALUES (NEW.printer_id, 1)
        ON CONFLICT (printer_id) DO UPDATE SET n = n + 1;
    INSERT INTO waiting_per_key (api_key_id, n)
        SELECT NEW.api_key_id, 1 WHERE NEW.api_key_id IS NOT NULL
        ON CONFLICT (api_key_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_waiting_delete AFTER DELETE ON jobs
WHEN OLD.state IN ('queued', 'paused', 'printing')
BEGIN
    UPDATE waiting_per_printer SET n = n - 1 WHERE printer_id = OLD.printer_id;
    UPDATE waiting_per_key SET n = n - 1 WHERE api_key_id = OLD.api_key_id;
END;

-- An update counts out of the old owners and into the new ones, only when
-- the job's waiting status or owners change (queued -> printing does not).
CREATE TRIGGER jobs_waiting_update_out AFTER UPDATE OF state, printer_id, api_key_id ON jobs
WHEN OLD.state IN ('queued', 'paused', 'printing')
 AND NOT (NEW.state IN ('queued', 'paused', 'printing')
          AND NEW.printer_id IS OLD.printer_id AND NEW.api_key_id IS OLD.api_key_id)
BEGIN
    UPDATE waiting_per_printer SET n = n - 1 WHERE printer_id = OLD.printer_id;
    UPDATE waiting_per_key SET n = n - 1 WHERE api_key_id = OLD.api_key_id;
END;

CREATE TRIGGER jobs_waiting_update_in AFTER UPDATE OF state, printer_id, api_key_id ON jobs
WHEN NEW.state IN ('queued', 'paused', 'printing')
 AND NOT (OLD.state IN ('queued', 'paused', 'printing')
          AND NEW.printer_id IS OLD.printer_id AND NEW.api_key_id IS OLD.api_key_id)
BEGIN
    INSERT INTO waiting_per_printer (printer_id, n) VALUES (NEW.printer_id, 1)
        ON CONFLICT (printer_id) DO UPDATE SET n = n + 1;
    INSERT INTO waiting_per_key (api_key_id, n)
        SELECT NEW.api_key_id, 1 WHERE NEW.api_key_id IS NOT NULL
        ON CONFLICT (api_key_id) DO UPDATE SET n = n + 1;
END;
