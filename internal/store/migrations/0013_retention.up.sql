-- 0013: indexes for the retention prune (Config.RetentionHorizon, Engine.PruneExpired),
-- which deletes, in batches of at most 10 000 rows, idempotency keys older than the horizon
-- and usage events of periods that ended before it. Each batch reads its rows in index
-- order from the oldest, so it never scans the young rows that stay.
--
-- A plain CREATE INDEX, since a migration runs in one transaction: it blocks writes to
-- the table while it builds. On a large existing installation, build the two indexes with
-- CREATE INDEX CONCURRENTLY under these names before migrating; IF NOT EXISTS then skips
-- them here.

-- Keys by age: pruneIdempotencyKeys takes the oldest first.
CREATE INDEX IF NOT EXISTS billing_idempotency_keys_created_idx ON billing_idempotency_keys (created_at);

-- Events by the instant they were counted: an event is counted before its period ends
-- (Consume requires now < open_until, the period end), so every event of a period that
-- ended before the cutoff has at < cutoff, and the prune's range scan on at finds them
-- all. The index grows at its right edge only (at is the engine's clock), so it adds
-- little to Consume's insert (BENCHMARKS.md, "Retention").
CREATE INDEX IF NOT EXISTS billing_usage_events_at_idx ON billing_usage_events (at);
