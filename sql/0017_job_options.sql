-- The printer thread reads typed columns, never JSON: the two print
-- options a stream depends on, from `options` (which stays, as submitted,
-- for the API). Written by hub::jobs::insert_job from then on.
ALTER TABLE jobs ADD COLUMN auto_cut INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN high_res INTEGER NOT NULL DEFAULT 0;
UPDATE jobs
   SET auto_cut = coalesce(json_extract(options, '$.auto_cut'), 1),
       high_res = coalesce(json_extract(options, '$.high_resolution'), 0)
 WHERE json_valid(options);
