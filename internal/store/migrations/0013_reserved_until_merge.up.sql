-- 0013: a placeholder on branch `events` only. Migrations run 1..n without gaps
-- (store.Migrations), and migration 0014 (events) was numbered after the 0012 and 0013
-- another branch adds. Delete this file when that branch is merged: its 0013 takes the
-- number. Nothing here changes the schema.
SELECT 1;
