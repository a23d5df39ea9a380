package store_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
)

// fillSweepTables fills the tables the periodic sweeps read with n subscriptions, one period
// each, as a live installation holds them: most open, their renewal job scheduled at their
// period end; due of them (the period ended an hour ago, no job but for some) and one in a
// thousand past_due (its next try scheduled) for the renewal sweep;
// every event delivered but 20, its delivery job completed; a settled attempt, a refunded
// unapplied payment and a refunded request per subscription but a handful still open; n
// idempotency keys over 100 days; 20 usage events per period, a day before its end. Then
// ANALYZE, so that the planner chooses honestly.
// With subscriptionsOnly, it fills the subscriptions, their periods and renewal jobs only
// (the renewal sweep's tables, for BenchmarkDueWithoutJobMillion).
func fillSweepTables(tb testing.TB, pool *pgxpool.Pool, n, due int, subscriptionsOnly bool) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx) // one session: the fill's temp table lives in it
	require.NoError(tb, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `
		INSERT INTO billing_tariffs (code, name, status, created_at) VALUES ('pro', 'pro', 'active', now());
		CREATE TEMP TABLE fill AS SELECT gen_random_uuid() AS id, i,
			CASE WHEN i % 10 = 7 THEN 'ended' WHEN i % 1000 = 8 THEN 'past_due' WHEN i % 1000 = 9 THEN 'exhausted' ELSE 'active' END AS status,
			CASE WHEN i % 10 = 7 THEN now() - interval '40 days' + i * interval '1 second'
			     WHEN i % 1000 = 8 OR i <= `+strconv.Itoa(due)+` THEN now() - interval '1 hour'
			     ELSE now() + (i % 30 + 1) * interval '1 day' + i * interval '1 second' END AS end_at
		FROM generate_series(1, `+strconv.Itoa(n)+`) i;
		INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, checkout,
			current_period, current_period_end, created_at, updated_at)
		SELECT id, 'c' || i, 'pro', status, true, 'Europe/Moscow', '{}', 1, end_at, now(), now() FROM fill;
		INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at)
		SELECT id, 1, '{}', end_at - interval '30 days', end_at, end_at - interval '30 days' FROM fill;
		INSERT INTO river_job (args, kind, max_attempts, state, scheduled_at)
		SELECT jsonb_build_object('subscription_id', id::text, 'period', 1, 'try', 1), 'billing_renew', 25, 'scheduled', end_at
		FROM fill WHERE status IN ('active', 'exhausted') AND end_at > now();
		-- Due ones whose renewal waits (not swept), and some with a job of another period (swept).
		INSERT INTO river_job (args, kind, max_attempts, state, scheduled_at)
		SELECT jsonb_build_object('subscription_id', id::text, 'period', CASE WHEN i <= 20 THEN 1 ELSE 2 END, 'try', 1),
			'billing_renew', 25, 'available', end_at
		FROM fill WHERE status = 'active' AND end_at <= now() AND i <= 30;
		-- The past_due ones wait for their next try.
		INSERT INTO river_job (args, kind, max_attempts, state, scheduled_at)
		SELECT jsonb_build_object('subscription_id', id::text, 'period', 1, 'try', 2), 'billing_renew', 25, 'scheduled', now() + interval '1 day'
		FROM fill WHERE status = 'past_due' AND i > 30;
		ANALYZE billing_subscriptions; ANALYZE billing_periods; ANALYZE river_job;`)
	require.NoError(tb, err)
	if subscriptionsOnly {
		return
	}
	_, err = conn.Exec(ctx, `
		INSERT INTO billing_events (id, kind, subscription_id, customer_id, occurred_at, delivered_at)
		SELECT gen_random_uuid(), 'renewed', id, 'c' || i, now(), CASE WHEN i > 20 THEN now() END FROM fill;
		INSERT INTO river_job (args, kind, max_attempts, state, scheduled_at, finalized_at)
		SELECT jsonb_build_object('event_id', id::text), 'billing_deliver_event', 25, 'completed', now(), now()
		FROM billing_events WHERE delivered_at IS NOT NULL;
		INSERT INTO billing_payment_attempts (id, subscription_id, purpose, period, number, idempotency_key, amount_minor,
			currency, terms, due_at, state, created_at, settled_at, sent_at)
		SELECT gen_random_uuid(), id, 'renewal', 1, 1, 'k' || i, 100, 'RUB', '{}', end_at,
			CASE WHEN i <= 5 THEN 'unknown' WHEN i <= 10 THEN 'canceled' ELSE 'succeeded' END, end_at, end_at, end_at FROM fill;
		INSERT INTO billing_unapplied_payments (id, attempt_id, subscription_id, period, provider_payment_id, amount_minor,
			currency, reason, state, refund_key, created_at)
		SELECT gen_random_uuid(), a.id, a.subscription_id, 1, 'p' || a.idempotency_key, 100, 'RUB', 'ended',
			CASE WHEN f.i <= 3 THEN 'refunding' ELSE 'refunded' END, 'r' || a.idempotency_key, a.created_at
		FROM billing_payment_attempts a JOIN fill f ON f.id = a.subscription_id;
		INSERT INTO billing_refund_requests (id, subscription_id, period, idempotency_key, received_at, channel, state,
			eligible, window_ends_at, payout_deadline, provider_payment_id, amount_minor, currency, created_at, updated_at)
		SELECT gen_random_uuid(), id, 1, 'k' || i, now(), 'email', CASE WHEN i <= 3 THEN 'executing' ELSE 'refunded' END,
			true, now(), now() + i * interval '1 second', 'p' || i, 100, 'RUB', now(), now() FROM fill;
		INSERT INTO billing_idempotency_keys (scope, key, request_hash, created_at)
		SELECT 'consume', 'k' || i, '\x00', now() - (i % 100) * interval '1 day' FROM fill;
		INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
		SELECT id, 'k' || k, 1, 'tokens', 1, k, end_at - interval '1 day' + k * interval '1 second'
		FROM fill, generate_series(1, 20) k;
		ANALYZE billing_usage_events; ANALYZE river_job; ANALYZE billing_events;
		ANALYZE billing_payment_attempts; ANALYZE billing_unapplied_payments; ANALYZE billing_refund_requests;
		ANALYZE billing_idempotency_keys;`)
	require.NoError(tb, err)
}

// TestPeriodicScansReadOnlyTheRowsTheyNeed checks the query plans of the periodic sweeps
// (the renewal sweep and the other lists SweepDueRenewals, ReconcilePayments and
// PruneExpired read) on 20 000 subscriptions with their jobs, events, attempts, refunds and
// keys, analyzed: each reads a range of an index on its open state (or age), never a
// sequential scan of a table that grows with the business; the renewal sweep is an
// index-only scan of billing_subscriptions_due_idx (migration 0018), and the jobs are probed
// through River's GIN index on args. The statements are run too, so that each finds what it
// should.
func TestPeriodicScansReadOnlyTheRowsTheyNeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	fillSweepTables(t, pool, 20000, 50, false)
	// An index-only scan needs the visibility map; autovacuum sets it in production.
	_, err := pool.Exec(ctx, `VACUUM billing_subscriptions`)
	require.NoError(t, err)

	plan := func(sql string, args ...any) string { return explain(t, pool, sql, args...) }
	seqScan := regexp.MustCompile(`Seq Scan on (billing_\w+|river_job)`)
	now := time.Now()
	for _, tc := range []struct {
		name  string
		sql   string
		args  []any
		needs []string
	}{
		{"renewal sweep", store.DueWithoutJobSQL(""), []any{now, time.Time{}, uuid.Nil.String(), 1000},
			[]string{"Index Only Scan using billing_subscriptions_due_idx", "river_job_args_index"}},
		{"event sweep", store.UndeliveredWithoutJobSQL(""), []any{1000},
			[]string{"billing_events_undelivered_idx", "river_job_args_index"}},
		{"executing refunds", store.ExecutingRefundsSQL, []any{1000}, []string{"billing_refund_requests_open_idx"}},
		{"unapplied refunding", store.OpenUnappliedSQL, nil, []string{"billing_unapplied_payments_open_idx"}},
		{"reconciliation", store.OpenAttemptsSQL, []any{now, now, now.Add(-24 * time.Hour), 100},
			[]string{"billing_payment_attempts_open_idx", "billing_payment_attempts_canceled_sent_idx"}},
		{"key prune", store.PruneIdempotencyKeysSQL, []any{now.AddDate(0, 0, -90), store.PruneBatch},
			[]string{"billing_idempotency_keys_created_idx", "Tid Scan on billing_idempotency_keys"}},
		{"usage event prune", store.PruneUsageEventsSQL, []any{now.AddDate(0, 0, -30), store.PruneBatch},
			[]string{"billing_usage_events_at_idx", "Tid Scan on billing_usage_events"}},
	} {
		got := plan(tc.sql, tc.args...)
		require.NotRegexp(t, seqScan, got, "%s:\n%s", tc.name, got)
		for _, s := range tc.needs {
			require.Contains(t, got, s, "%s:\n%s", tc.name, got)
		}
		t.Logf("%s:\n%s", tc.name, got)
	}

	due, _, full, err := store.DueWithoutJob(ctx, pool, "", now, store.DueCursor{}, 1000)
	require.NoError(t, err)
	require.False(t, full, "45 due rows fill no chunk of 1000")
	rows, err := pool.Query(ctx, oldDueWithoutJobSQL, now, 1000)
	require.NoError(t, err)
	want, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.SubscriptionPeriod])
	require.NoError(t, err)
	require.Len(t, want, 45-16, "the due open subscriptions (i <= 50 but the ended) without the 16 whose job waits")
	require.ElementsMatch(t, want, due, "what the statement before migration 0018 found")
	// In chunks of 7 the cursor walks every due row once: the same subscriptions in all.
	var walked []store.SubscriptionPeriod
	chunks := 0
	for cursor, full := (store.DueCursor{}), true; full; chunks++ {
		var chunk []store.SubscriptionPeriod
		chunk, cursor, full, err = store.DueWithoutJob(ctx, pool, "", now, cursor, 7)
		require.NoError(t, err)
		walked = append(walked, chunk...)
	}
	var dueRows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM billing_subscriptions
		WHERE status IN ('active', 'exhausted', 'past_due') AND current_period_end <= $1`, now).Scan(&dueRows))
	require.Equal(t, dueRows/7+1, chunks, "%d due rows in chunks of 7, the last one not full", dueRows)
	require.ElementsMatch(t, want, walked, "chunk by chunk, what one chunk of 1000 found")
	ids, err := store.UndeliveredWithoutJob(ctx, pool, "", 1000)
	require.NoError(t, err)
	require.Len(t, ids, 20)
	refunds, err := store.ExecutingRefunds(ctx, pool, 1000)
	require.NoError(t, err)
	require.Len(t, refunds, 3)
	open, err := store.ListUnapplied(ctx, pool, true)
	require.NoError(t, err)
	require.Len(t, open, 3)
}

// oldDueWithoutJobSQL is the renewal sweep's statement before migration 0018, the reference
// its result is compared with and the "before" of BenchmarkDueWithoutJobMillion: a join of
// every open subscription with its current period, and the job looked for by args->>.
const oldDueWithoutJobSQL = `SELECT s.id::text, s.current_period
	FROM billing_subscriptions s JOIN billing_periods p ON p.subscription_id = s.id AND p.number = s.current_period
	WHERE s.status IN ('active', 'exhausted', 'past_due') AND p.end_at <= $1
	  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = 'billing_renew'
	        AND j.state IN ('available', 'scheduled', 'running', 'retryable', 'pending')
	        AND j.args->>'subscription_id' = s.id::text AND (j.args->>'period')::int = s.current_period)
	ORDER BY p.end_at LIMIT $2`
