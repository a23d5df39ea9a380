package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PruneBatch is the most rows one prune statement deletes. Each batch is one statement
// run alone (after a SET LOCAL for the usage events), so one short transaction: its row locks and the WAL it writes stay
// small whatever the backlog, and Consume or a command waiting on one of its rows (a
// replay of a key being deleted) waits for one batch at most.
const PruneBatch = 10_000

// pruneIdempotencyKeysSQL deletes at most $2 idempotency keys created before $1, the
// oldest first (billing_idempotency_keys_created_idx, migration 0013).
//
// What reads the table: ClaimKey only, to replay a retried Subscribe, RequestRefund or
// RequestAccountDeletion. Its result is the ID of a row kept in its own table, so a pruned
// key loses the replay, never the thing made. No decision reads it.
//
// SKIP LOCKED: a key a command holds right now (it claimed it in an open transaction) is
// left for the next run rather than waited for.
//
// The rows are deleted by their ctid (a TID scan: the batch's rows and nothing else), not
// by a join on the primary key: with a batch that is a good part of the table, the planner
// joined by hashing and read the whole table for every batch (a sequential scan, found by
// TestPeriodicScansReadOnlyTheRowsTheyNeed). A ctid is stable here: the subquery locked
// the row (FOR UPDATE) in this statement, so nobody else can move it before it is deleted.
const pruneIdempotencyKeysSQL = `
DELETE FROM billing_idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM billing_idempotency_keys
    WHERE created_at < $1
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`

// PruneIdempotencyKeys deletes at most limit idempotency keys created before cutoff and
// returns how many it deleted; see pruneIdempotencyKeysSQL.
func PruneIdempotencyKeys(ctx context.Context, q Querier, cutoff time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, pruneIdempotencyKeysSQL, cutoff, limit)
	return tag.RowsAffected(), err
}

// pruneUsageEventsSQL deletes at most $2 usage events of periods that ended before $1.
//
// What reads the table: Consume only, to replay a retried key (consumeSQL's prev; the
// common-case statement only inserts). No decision reads it: access reads the
// subscription and the counters' open_until, a hard limit and the 3.7 "not used" test
// read the counters (billing_usage.used, PeriodUsage), pro-rata refunds the counters and
// the period, revenue recognition the period and the ledger. The counters are never
// pruned, so deleting an event changes no count.
//
// Why the period's end and not the event's age: Consume's key is unique per subscription
// (the primary key), and a retry is meaningful while the call it repeats could still be
// counted, that is while its period may still be open. The condition is end_at < $1, and
// $1 is before now (now minus the horizon), so a period still open (now < its end) never
// loses an event, however old the event is; an extension only moves end_at forward
// (billing_periods_keep_terms). An event is counted before its period ends (Consume
// requires now < open_until, the period end), so every event of such a period has
// at < $1 too: the range scan on billing_usage_events_at_idx (migration 0013) finds it,
// and the probe of billing_periods' primary key keeps out the events of a period that is
// older than the cutoff but not yet ended before it (a period longer than the horizon, or
// extended): those are read again by every batch until their period is old enough, which
// stays cheap while periods are shorter than the horizon (Config.RetentionHorizon).
//
// Deleted by ctid, as pruneIdempotencyKeysSQL's rows are, and for the same reason. The
// period's end is a scalar subquery, one primary-key probe per event read, rather than a
// join: joined, the planner hashed every period that ended before the cutoff (a sequential
// scan of billing_periods, which is never pruned; TestPeriodicScansReadOnlyTheRowsTheyNeed).
const pruneUsageEventsSQL = `
DELETE FROM billing_usage_events
WHERE ctid = ANY (ARRAY(
    SELECT e.ctid
    FROM billing_usage_events e
    WHERE e.at < $1
      AND (SELECT p.end_at FROM billing_periods p WHERE p.subscription_id = e.subscription_id AND p.number = e.period) < $1
    ORDER BY e.at
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`

// PruneUsageEvents deletes at most limit usage events of periods that ended before cutoff
// and returns how many it deleted; see pruneUsageEventsSQL. It runs with JIT off, in a
// transaction of its own: the planner prices the probe of each event's period high enough
// to compile the plan (JIT) at every batch.
func PruneUsageEvents(ctx context.Context, db Beginner, cutoff time.Time, limit int) (int64, error) {
	var n int64
	err := withSettings(ctx, db, `SET LOCAL jit = off`, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, pruneUsageEventsSQL, cutoff, limit)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
