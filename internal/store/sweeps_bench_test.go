package store_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
)

// BenchmarkDueWithoutJobMillion measures the renewal sweep's statement on a million
// subscriptions (fillSweepTables: 900 000 open ones with their renewal job scheduled, 1 000
// due, 1 000 past_due waiting for their next try; one INSERT … SELECT per table, then
// VACUUM ANALYZE, outside the timed region, a few minutes on 2 shared cores):
//   - before: the statement before migration 0018 (oldDueWithoutJobSQL), which joins every
//     open subscription with its current period and looks for the job by args->>;
//   - after: store.DueWithoutJob, a range of billing_subscriptions_due_idx and one GIN probe
//     of River's args index per due row, with sweepSettings (no JIT, no parallel workers).
//
// Then what the index costs a renewal: renewal-write/* renews 1 000 subscriptions per op the way
// SaveSubscription does (the subscription's UPDATE of current_period and current_period_end,
// the new period's INSERT, one transaction), with migration 0018's index and check trigger,
// then with both dropped; it reports the share of HOT updates (hot/upd). The table is filled
// with fillfactor 90, the free space a table renewed every month keeps, without which no
// UPDATE of a freshly filled table could be HOT.
//
// It logs EXPLAIN (ANALYZE, BUFFERS) of both statements (BENCHMARKS.md, "Periodic sweeps").
// BILLING_BENCH_SUBSCRIPTIONS=20000 runs it small.
func BenchmarkDueWithoutJobMillion(b *testing.B) {
	ctx := context.Background()
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BILLING_BENCH_SUBSCRIPTIONS")); err == nil && v > 0 {
		n = v
	}
	pool := billingtest.NewPool(b)
	if _, err := pool.Exec(ctx, `ALTER TABLE billing_subscriptions SET (fillfactor = 90)`); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	fillSweepTables(b, pool, n, 1000, true)
	// pg-tmp.sh runs with synchronous_commit off: the fill's hint bits, without which VACUUM
	// marks no page all-visible (and the sweep's index-only scan visits the heap), can be set
	// only once the WAL writer flushed its commit.
	time.Sleep(time.Second)
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE billing_subscriptions`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE billing_periods`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE river_job`); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d subscriptions in %s", n, time.Since(start).Round(time.Second))

	now := time.Now()
	logExplainAnalyze(b, pool, "before", "", oldDueWithoutJobSQL, now, 1000)
	logExplainAnalyze(b, pool, "after", store.SweepSettings, store.DueWithoutJobSQL(""), now, time.Time{}, uuid.Nil.String(), 1000)
	b.Run("before", func(b *testing.B) {
		for range b.N {
			rows, err := pool.Query(ctx, oldDueWithoutJobSQL, now, 1000)
			if err != nil {
				b.Fatal(err)
			}
			due, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.SubscriptionPeriod])
			if err != nil || len(due) == 0 {
				b.Fatal(len(due), err)
			}
		}
	})
	b.Run("after", func(b *testing.B) {
		for range b.N {
			due, _, _, err := store.DueWithoutJob(ctx, pool, "", now, store.DueCursor{}, 1000)
			if err != nil || len(due) == 0 {
				b.Fatal(len(due), err)
			}
		}
	})

	// Subscriptions to renew, each once: the open ones not due, from the middle of the fill.
	rows, err := pool.Query(ctx, `SELECT id::text FROM billing_subscriptions
		WHERE status = 'active' AND current_period_end > now() ORDER BY customer_id LIMIT 60000`)
	if err != nil {
		b.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pool.Acquire(ctx) // one session, whose statistics hotUpdates flushes
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	const renewalsPerRound = 1000
	renew := func(b *testing.B) (time.Duration, float64) {
		hot0, upd0 := hotUpdates(b, conn.Conn())
		start := time.Now()
		for range renewalsPerRound {
			if len(ids) == 0 {
				b.Fatal("out of subscriptions to renew: lower -benchtime")
			}
			id := ids[0]
			ids = ids[1:]
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				var end time.Time
				if err := tx.QueryRow(ctx, `UPDATE billing_subscriptions SET current_period = current_period + 1,
					current_period_end = current_period_end + interval '30 days', updated_at = now()
					WHERE id = $1 RETURNING current_period_end`, id).Scan(&end); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at)
					VALUES ($1, 2, '{}', $2::timestamptz - interval '30 days', $2, now())`, id, end)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		hot1, upd1 := hotUpdates(b, conn.Conn())
		return elapsed, float64(hot1-hot0) / float64(max(upd1-upd0, 1))
	}
	exec := func(b *testing.B, sql string) {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	const (
		dropIndex     = `DROP INDEX billing_subscriptions_due_idx`
		restoreIndex  = `CREATE INDEX billing_subscriptions_due_idx ON billing_subscriptions (current_period_end, id) INCLUDE (current_period) WHERE status IN ('active', 'exhausted', 'past_due')`
		disableChecks = `ALTER TABLE billing_subscriptions DISABLE TRIGGER billing_subscriptions_period_end_check; ALTER TABLE billing_periods DISABLE TRIGGER billing_periods_end_check`
		enableChecks  = `ALTER TABLE billing_subscriptions ENABLE TRIGGER billing_subscriptions_period_end_check; ALTER TABLE billing_periods ENABLE TRIGGER billing_periods_end_check`
	)
	// Each arm leaves the schema as migration 0018 made it.
	arms := []struct {
		name          string
		before, after []string
	}{
		{"0018", nil, nil},
		{"index-no-check", []string{disableChecks}, []string{enableChecks}},
		{"no-index-no-check", []string{dropIndex, disableChecks}, []string{restoreIndex, enableChecks}},
	}
	// Rounds of 1 000 renewals per arm, the order rotated every round, so that a drift of the
	// shared machine's speed hits every arm alike; the index is dropped and rebuilt outside
	// the timed renewals.
	b.Run("renewal-write", func(b *testing.B) {
		b.StopTimer()
		took := make([]time.Duration, len(arms))
		hot := make([]float64, len(arms))
		for r := range b.N {
			for k := range arms {
				a := (r + k) % len(arms)
				for _, sql := range arms[a].before {
					exec(b, sql)
				}
				d, h := renew(b)
				took[a], hot[a] = took[a]+d, hot[a]+h
				for _, sql := range arms[a].after {
					exec(b, sql)
				}
			}
		}
		n := float64(b.N * renewalsPerRound)
		for a, arm := range arms {
			b.ReportMetric(float64(took[a].Nanoseconds())/n, "ns/renewal-"+arm.name)
			b.ReportMetric(hot[a]/float64(b.N), "hot/upd-"+arm.name)
		}
	})
}

// hotUpdates returns the HOT and all updates of billing_subscriptions so far, with conn's
// own pending statistics flushed first.
func hotUpdates(b *testing.B, conn *pgx.Conn) (hot, upd int64) {
	b.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables
		WHERE relname = 'billing_subscriptions'`).Scan(&hot, &upd); err != nil {
		b.Fatal(err)
	}
	return hot, upd
}

// logExplainAnalyze logs EXPLAIN (ANALYZE, BUFFERS) of sql, run after settings in one transaction.
func logExplainAnalyze(b *testing.B, pool *pgxpool.Pool, name, settings, sql string, args ...any) {
	b.Helper()
	ctx := context.Background()
	var lines []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if settings != "" {
			if _, err := tx.Exec(ctx, settings); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s:\n%s", name, strings.Join(lines, "\n"))
}
