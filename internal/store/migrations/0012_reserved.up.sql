-- 0012: reserved. Version 12 belongs to a branch developed at the same time as the
-- retention branch (issue 15), whose migration is 0013; migrations must run 1..n without
-- gaps (store.Migrations), so this empty step keeps the retention branch runnable alone.
-- Drop this file when the branch that owns 0012 is merged: two files numbered 12 make
-- store.Migrations fail at once, so the merge cannot go unnoticed.
SELECT 1;
