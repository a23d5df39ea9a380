package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConsumeCall is one Consume call of a batch (ConsumeCrossing.ConsumeBatch).
type ConsumeCall struct {
	SubscriptionID string
	Key            string
	Meter          string
	Quantity       int64
}

// consumeBatchSQL is the common-case Consume statement (consumeUnlessExhaustingSQL, with
// the same threshold test notCrossing written against the call's quantity) for many calls
// at once, one statement and one implicit transaction for all of them (group commit,
// usage_batch.go of the engine):
//   - req: the calls, from four arrays, numbered from 1 in their order;
//   - lk: the open usage row of each call's meter, where the call leaves volume under a hard
//     limit and crosses no threshold (the single statement's WHERE, checked again by
//     PostgreSQL on the latest row version when the row changed since the statement began),
//     locked with SKIP LOCKED: a row another transaction holds is left out, so the batch
//     never waits on a row lock, whatever order other transactions (a host's, with several
//     ConsumeTx) lock usage rows in;
//   - upd: the counters, with the whole WHERE checked again on the row version lk locked;
//   - ins: the calls' usage events, each under its key (a key used before fails the whole
//     statement on the primary key of billing_usage_events: nothing is counted). A key that
//     a transaction still open is inserting for the same subscription (a retry, or an
//     idempotency conflict, of a call not yet committed) makes the insert wait for that
//     transaction while the batch holds its other rows: ConsumeBatch bounds that wait with
//     consumeBatchLockWait, so a batch never stays in a wait cycle long enough for
//     PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) to abort the other
//     side, a host's transaction.
//
// It returns the number of each call it counted, with its period, used volume after it
// and limit; a call not returned counted nothing, and the caller decides it on its own.
// The calls should be of distinct subscriptions (the caller's batch takes one call per
// subscription): two calls of one meter join one usage row twice, and UPDATE … FROM then
// counts only one of them, which it returns; the other is not returned, counted nothing,
// and runs alone (TestConsumeBatchSameSubscriptionSpelledTwice: an ID in upper case).
func consumeBatchSQL(notCrossing string) string {
	cond := func(q string) string {
		return strings.ReplaceAll(`u.open_until > '-infinity' AND $5 < u.open_until
      AND (NOT u.hard OR (u.used + u.reserved + $4 <= u.quantity AND u.used + $4 < u.quantity)`+notCrossing+`)`, "$4", q)
	}
	return `
WITH req AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS r(sub, key, meter, qty, i)
), lk AS (
    SELECT u.subscription_id, u.period, u.meter, r.key, r.qty, r.i
    FROM req r JOIN billing_usage u ON u.subscription_id = r.sub AND u.meter = r.meter
    WHERE ` + cond("r.qty") + `
    FOR UPDATE OF u SKIP LOCKED
), upd AS (
    UPDATE billing_usage u SET used = u.used + lk.qty
    FROM lk
    WHERE u.subscription_id = lk.subscription_id AND u.period = lk.period AND u.meter = lk.meter
      AND ` + cond("lk.qty") + `
    RETURNING lk.i, lk.key, lk.qty, u.subscription_id, u.period, u.meter, u.used, u.quantity
), ins AS (
    INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
    SELECT subscription_id, key, period, meter, qty, used, $5 FROM upd
)
SELECT i, period, used, quantity FROM upd`
}

// consumeBatchLockWait is the lock_timeout of a Consume batch: the longest it waits on a
// key another transaction is inserting (its rows it never waits on). Far below PostgreSQL's
// deadlock_timeout (1 s by default; keep it above this), and long enough for a single-call
// Consume to commit.
const consumeBatchLockWait = "100ms"

// BatchSender sends a pgx.Batch in one round trip: a *pgxpool.Pool or a *pgx.Conn.
type BatchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// ConsumeBatch runs the common-case statement for calls at once (consumeBatchSQL), at now,
// in one round trip and one implicit transaction with consumeBatchLockWait as its
// lock_timeout. The i-th outcome is the i-th call's: Applied when it counted; otherwise
// nothing of that call was written, and the caller runs it alone. An error means nothing at
// all was written (a unique violation of billing_usage_events_pkey: a key used before; a
// lock timeout: a key another transaction is inserting; a database error).
func (c ConsumeCrossing) ConsumeBatch(ctx context.Context, q BatchSender, calls []ConsumeCall, now time.Time) ([]ConsumeOutcome, error) {
	subs, keys, meters, qtys := make([]string, len(calls)), make([]string, len(calls)), make([]string, len(calls)), make([]int64, len(calls))
	for i, k := range calls {
		subs[i], keys[i], meters[i], qtys[i] = k.SubscriptionID, k.Key, k.Meter, k.Quantity
	}
	sql := c.batch
	if sql == "" { // a zero ConsumeCrossing: no thresholds
		sql = consumeBatchSQL("")
	}
	b := &pgx.Batch{}
	// Both settings for the batch's implicit transaction only. A generic plan: the statement
	// takes arrays, and PostgreSQL would otherwise plan it anew on every run (custom plans,
	// ~0.3 ms, more than the statement's own work for a few calls).
	b.Queue(`SELECT set_config('lock_timeout', '` + consumeBatchLockWait + `', true), set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(sql, subs, keys, meters, qtys, now)
	br := q.SendBatch(ctx, b)
	out, err := readConsumeBatch(br, len(calls))
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err // the statement failed as a whole: nothing was counted
	}
	return out, nil
}

func readConsumeBatch(br pgx.BatchResults, n int) ([]ConsumeOutcome, error) {
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]ConsumeOutcome, n)
	for rows.Next() {
		var i int64
		var o ConsumeOutcome
		if err := rows.Scan(&i, &o.Period, &o.UsedAfter, &o.Quantity); err != nil {
			return nil, err
		}
		o.Applied = true
		out[i-1] = o
	}
	return out, rows.Err()
}
