package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/tariff"
)

func TestRetentionHorizonConfig(t *testing.T) {
	t.Parallel()
	// A pool that is never connected: New does no I/O.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	const day = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		horizon time.Duration
		refused bool
	}{
		{"zero takes the default (400 days)", 0, false},
		{"6.2 the minimum, 90 days, covers the claim period", billing.MinRetentionHorizon, false},
		{"a year", 365 * day, false},
		{"negative turns pruning off", -1, false},
		{"6.2 30 days would prune keys within the claim period", 30 * day, true},
		{"a day under the minimum", billing.MinRetentionHorizon - day, true},
		{"a nanosecond", time.Nanosecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := billing.DefaultConfig()
			cfg.RetentionHorizon = tc.horizon
			engine, err := billing.New(pool, cfg)
			if !tc.refused {
				require.NoError(t, err)
				require.NotNil(t, engine)
				return
			}
			require.Nil(t, engine)
			require.ErrorIs(t, err, billing.ErrInvalidConfig)
			var ce *billing.ConfigError
			require.ErrorAs(t, err, &ce)
			require.True(t, ce.Has("RetentionHorizon"), "error should name RetentionHorizon: %v", err)
			require.Len(t, ce.Problems, 1)
		})
	}
}

// retentionCounts counts what PruneExpired must never touch, table by table, plus the
// used volume of every counter.
func retentionCounts(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"billing_ledger_accounts", "billing_ledger_transactions", "billing_ledger_entries",
		"billing_audit_log", "billing_payment_attempts", "billing_refund_requests", "billing_unapplied_payments",
		"billing_subscriptions", "billing_periods", "billing_usage", "billing_reservations", "billing_payment_methods",
		"billing_account_deletions"} {
		var n int64
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
		out[table] = n
	}
	var used int64
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(sum(used), 0) FROM billing_usage`).Scan(&used))
	out["sum(billing_usage.used)"] = used
	return out
}

// rowKeys returns the keys of a table's rows, in order.
func rowKeys(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		out = append(out, k)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestPruneExpired runs four months of two subscriptions (c1 monthly and renewed through
// the real River workers, c2 annual), then prunes with the minimum horizon, 90 days: the
// keys older than the horizon and the events of c1's first period (ended before it) go,
// with 25 000 more of each so that several batches run; the events of c1's later periods
// and of c2's period, still open although its events are four months old, stay, and so do
// the ledger, the audit log, attempts, refunds, periods and counters.
func TestPruneExpired(t *testing.T) {
	t.Parallel()
	b, c1 := setupRefundsWith(t, func(c *billing.Config) { c.RetentionHorizon = billing.MinRetentionHorizon })
	ctx := context.Background()
	_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{
		Code: "year", Name: "year", Price: decimal.RequireFromString("9900"),
		Period: tariff.Period{Count: 1, Unit: tariff.Year},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 5000}},
	})
	require.NoError(t, err)
	c2, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "year", PaymentMethod: "tok-c2", IdempotencyKey: "sub-c2"})
	require.NoError(t, err)
	_, err = b.engine.ChargeFirstPayment(ctx, c2.ID)
	require.NoError(t, err)

	consume := func(subID, key string) billing.ConsumeResult {
		t.Helper()
		res, err := b.engine.Consume(ctx, subID, "generations", 1, key)
		require.NoError(t, err)
		return res
	}
	// 2 March: period 1 of both.
	for _, k := range []string{"c1-p1-a", "c1-p1-b", "c1-p1-c"} {
		consume(c1.ID, k)
	}
	consume(c2.ID, "c2-open-a")
	consume(c2.ID, "c2-open-b")
	_, err = b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: c1.ID, ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelEmail, Text: "refund please", IdempotencyKey: "refund-c1"})
	require.NoError(t, err)
	// 10 April: c1 renewed on 2 April, period 2 (ends 2 May).
	_, err = b.runner.RunUntil(ctx, b.msk(time.April, 10, 12))
	require.NoError(t, err)
	require.Equal(t, 2, consume(c1.ID, "c1-p2").Period)
	// 5 May: a young key (c3 subscribes) and an event of period 3.
	_, err = b.runner.RunUntil(ctx, b.msk(time.May, 5, 12))
	require.NoError(t, err)
	require.Equal(t, 3, consume(c1.ID, "c1-p3").Period)
	_, err = b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c3", TariffCode: "pro", PaymentMethod: "tok-c3", IdempotencyKey: "sub-c3"})
	require.NoError(t, err)
	// 3 July: the cutoff is 90 days earlier, 4 April 10:00. c1's period 1 ended on 2 April,
	// before it; period 2 on 2 May, after it; c2's period ends in March 2027.
	_, err = b.runner.RunUntil(ctx, b.msk(time.July, 3, 10))
	require.NoError(t, err)

	// 25 000 more of each, old: keys of 2 March, events of c1's period 1.
	_, err = b.pool.Exec(ctx, `INSERT INTO billing_idempotency_keys (scope, key, request_hash, created_at)
		SELECT 'bulk', 'k' || g, '\x00', $1 FROM generate_series(1, 25000) g`, b.msk(time.March, 2, 10))
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
		SELECT $1, 'bulk-' || g, 1, 'generations', 1, 1, $2 FROM generate_series(1, 25000) g`, c1.ID, b.msk(time.March, 20, 10))
	require.NoError(t, err)

	before := retentionCounts(t, b.pool)
	res, err := b.engine.PruneExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.PruneResult{IdempotencyKeys: 25_000 + 3, UsageEvents: 25_000 + 3}, res)
	require.Equal(t, before, retentionCounts(t, b.pool), "PruneExpired touched what it must never touch")

	require.Equal(t, []string{"subscribe:c3/sub-c3"},
		rowKeys(t, b.pool, `SELECT scope || '/' || key FROM billing_idempotency_keys ORDER BY 1`),
		"keys of 2 March (sub-c1, sub-c2, refund-c1) go, the key of 5 May stays")
	require.Equal(t, []string{"c1-p2", "c1-p3", "c2-open-a", "c2-open-b"},
		rowKeys(t, b.pool, `SELECT key FROM billing_usage_events ORDER BY 1`),
		"the events of c1's period 1 go; the events of a period that ended after the cutoff, or is still open, stay")

	// c2's period is open: its keys, four months old, still replay, so a retry is never
	// counted twice. That holds by construction: only periods that ended before the cutoff,
	// itself before now, lose their events.
	replay := consume(c2.ID, "c2-open-a")
	require.True(t, replay.Replayed)
	require.Equal(t, int64(1), replay.Used)
	// A key of a period that ended before the horizon is forgotten: retried now, it is a
	// new call, counted in the current period (Config.RetentionHorizon says so).
	again := consume(c1.ID, "c1-p1-a")
	require.False(t, again.Replayed)
	require.Equal(t, 5, again.Period)

	res, err = b.engine.PruneExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.PruneResult{}, res, "a second run finds nothing")
}

func TestPruneExpiredOff(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(c *billing.Config) { c.RetentionHorizon = -1 })
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `INSERT INTO billing_idempotency_keys (scope, key, request_hash, created_at)
		VALUES ('old', 'k', '\x00', '2000-01-01')`)
	require.NoError(t, err)
	res, err := b.engine.PruneExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.PruneResult{}, res)
	require.Equal(t, []string{"k"}, rowKeys(t, b.pool, `SELECT key FROM billing_idempotency_keys`))
}

// TestPruneExpiredPeriodicJob runs the engine's periodic jobs (PeriodicJobs) in a real
// River client: the prune job is inserted when the client's scheduler starts, worked by
// the engine's worker, and prunes.
func TestPruneExpiredPeriodicJob(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(c *billing.Config) { c.Gateway = billingtest.NewGateway() })
	ctx := context.Background()
	workers := river.NewWorkers()
	require.NoError(t, b.engine.RegisterWorkers(workers))
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Schema:               billingtest.RiverSchema(),
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:              workers,
		PeriodicJobs:         b.engine.PeriodicJobs(time.Hour),
		FetchPollInterval:    5 * time.Millisecond,
		FetchCooldown:        time.Millisecond,
		RescueStuckJobsAfter: billingtest.RescueStuckJobsAfter,
		Test:                 river.TestConfig{Time: b.clock},
	})
	require.NoError(t, err)
	require.NoError(t, b.engine.UseRiver(client))

	b.publish(t, "pro", "990", "generations", 500)
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-c1", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	_, err = b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "old")
	require.NoError(t, err)
	before := retentionCounts(t, b.pool)

	// 500 days on, past the default horizon of 400 days, before the client starts: its
	// scheduler inserts the prune job at once (RunOnStart). The renewal job of period 1,
	// due long ago, may run too, late; it does not bear on the prune.
	b.clock.Set(b.clock.Now().Add(500 * 24 * time.Hour))
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})
	var keys, events, done int
	require.Eventually(t, func() bool {
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM billing_idempotency_keys WHERE key = 'sub-c1'),
			(SELECT count(*) FROM billing_usage_events WHERE key = 'old'),
			(SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_prune_expired' AND state = 'completed')`).Scan(&keys, &events, &done))
		return done >= 1
	}, 30*time.Second, 20*time.Millisecond, "the prune job never completed")
	require.Zero(t, keys, "the subscribe key of 500 days ago is pruned")
	require.Zero(t, events, "the event of a period that ended 469 days ago is pruned")
	// Only the late renewal may have written since: compare the ledger with it discounted
	// by checking that nothing was deleted.
	after := retentionCounts(t, b.pool)
	for table, n := range before {
		require.GreaterOrEqual(t, after[table], n, "%s lost rows", table)
	}
}
