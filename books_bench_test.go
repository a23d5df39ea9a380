package billing_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
)

// The ledger benchmarks, and the measurement behind its schema choice (BENCHMARKS.md,
// "Ledger"): balances computed from the entries (what migration 0005 does) against a
// balance row per account updated under row locks taken in account code order (the
// alternative, simulated here by bench_balances on top of the same posting).
//
//	./scripts/pg-tmp.sh go test -run '^$' -bench 'Ledger' -benchtime 2000x -count 1 .

// ledgerBench is a database and an engine for the ledger benchmarks.
type ledgerBench struct {
	pool  *pgxpool.Pool
	books *billing.Books
	seq   atomic.Int64
}

func newLedgerBench(b *testing.B) *ledgerBench {
	b.Helper()
	pool := billingtest.NewPool(b)
	cfg := billing.DefaultConfig()
	cfg.Clock = billingtest.NewClock(ledgerAt)
	engine, err := billing.New(pool, cfg)
	require.NoError(b, err)
	lb := &ledgerBench{pool: pool, books: engine.Ledger()}
	ctx := context.Background()
	_, _, err = lb.books.Post(ctx, lb.charge()) // creates the RUB accounts
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `CREATE TABLE bench_balances (
		code text PRIMARY KEY, debits bigint NOT NULL DEFAULT 0, credits bigint NOT NULL DEFAULT 0);
		INSERT INTO bench_balances (code) SELECT code FROM billing_ledger_accounts`)
	require.NoError(b, err)
	return lb
}

// charge is a new two-leg transaction: Dr provider:RUB, Cr deferred:RUB, both hot accounts.
func (lb *ledgerBench) charge() ledger.Transaction {
	n := lb.seq.Add(1)
	tx, err := ledger.Charge(fmt.Sprintf("bench:charge:%d", n), fmt.Sprintf("pay-%d", n), "RUB", 1000+n%997, ledgerAt)
	if err != nil {
		panic(err)
	}
	return tx
}

// updateBalanceRows is the alternative schema's extra work per posting: lock the balance rows
// of the accounts posted to in code order (so that concurrent postings cannot deadlock),
// then add the posting's amounts; one statement.
func updateBalanceRows(ctx context.Context, tx pgx.Tx, t ledger.Transaction) error {
	codes := make([]string, len(t.Postings))
	debits, credits := make([]int64, len(t.Postings)), make([]int64, len(t.Postings))
	for i, p := range t.Postings {
		codes[i] = p.Account
		if p.Side == ledger.Debit {
			debits[i] = p.Amount
		} else {
			credits[i] = p.Amount
		}
	}
	_, err := tx.Exec(ctx, `WITH locked AS (
			SELECT count(*) FROM (SELECT 1 FROM bench_balances WHERE code = ANY($1) ORDER BY code FOR UPDATE) l
		)
		UPDATE bench_balances b SET debits = b.debits + v.d, credits = b.credits + v.c
		FROM locked, (SELECT code, sum(d) AS d, sum(c) AS c FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(code, d, c)
		              GROUP BY code) v
		WHERE b.code = v.code`, codes, debits, credits)
	return err
}

// callerWork stands for the rest of a command's transaction after it posted (save the
// subscription, write the audit entry, insert the River job): three more round trips, during
// which a balance row stays locked.
func callerWork(ctx context.Context, tx pgx.Tx) error {
	for range 3 {
		if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
	}
	return nil
}

// postInCommand posts one charge inside a command's transaction, with or without the
// balance rows of the alternative schema.
func (lb *ledgerBench) postInCommand(ctx context.Context, balanceRows bool) error {
	return pgx.BeginFunc(ctx, lb.pool, func(tx pgx.Tx) error {
		t := lb.charge()
		if _, _, err := lb.books.PostTx(ctx, tx, t); err != nil {
			return err
		}
		if balanceRows {
			if err := updateBalanceRows(ctx, tx, t); err != nil {
				return err
			}
		}
		return callerWork(ctx, tx)
	})
}

// BenchmarkLedgerPostTwoLeg measures posting a two-leg transaction (a charge: Dr provider,
// Cr deferred revenue):
//   - Post: the standalone call, one statement, one round trip;
//   - in-command/…: PostTx inside a command's transaction with three more round trips, with
//     balances computed from entries (shipped) or with balance rows (the alternative);
//   - hot-parallel/…: the same from 4×GOMAXPROCS goroutines at once, all posting to the same
//     two accounts: where a balance row's lock, held to commit, serializes every command.
func BenchmarkLedgerPostTwoLeg(b *testing.B) {
	ctx := context.Background()
	lb := newLedgerBench(b)
	b.Run("Post", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := lb.books.Post(ctx, lb.charge()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, mode := range []struct {
		name        string
		balanceRows bool
	}{{"entries", false}, {"balance-rows", true}} {
		b.Run("in-command/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := lb.postInCommand(ctx, mode.balanceRows); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hot-parallel/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := lb.postInCommand(ctx, mode.balanceRows); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.StopTimer()
	tb, err := lb.books.TrialBalance(ctx)
	require.NoError(b, err)
	require.Zero(b, tb.NetByCurrency()["RUB"])
}

// BenchmarkLedgerBalanceRead measures reading the balance of a hot account (provider:RUB)
// holding n entries: the shipped Books.Balance, a sum over an index-only scan that grows with
// n, next to reading the alternative's balance row, which does not.
func BenchmarkLedgerBalanceRead(b *testing.B) {
	ctx := context.Background()
	lb := newLedgerBench(b)
	have := 1
	for _, n := range []int{1_000, 10_000, 100_000} {
		// Bulk-load the charges up to n, in one statement per batch (the balance trigger
		// checks each batch), then let VACUUM set the visibility map as autovacuum would.
		_, err := lb.pool.Exec(ctx, `
			WITH t AS (
				INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
				SELECT gen_random_uuid(), 'bulk:' || i, 'x', 'payment', 'p' || i, '', $3::timestamptz + i * interval '1 second', now()
				FROM generate_series($1::int, $2::int) i
				RETURNING id, at
			)
			INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			SELECT t.id, l.seq, l.account, l.side, 1000, 'RUB', t.at
			FROM t, (VALUES (1, 'provider:RUB', 'debit'), (2, 'deferred:RUB', 'credit')) AS l(seq, account, side)`,
			have, n-1, ledgerAt)
		require.NoError(b, err)
		_, err = lb.pool.Exec(ctx, `VACUUM (ANALYZE) billing_ledger_entries`)
		require.NoError(b, err)
		have = n
		at := ledgerAt.Add(365 * 24 * time.Hour)
		b.Run(fmt.Sprintf("entries-%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bal, err := lb.books.Balance(ctx, "provider:RUB", at)
				if err != nil || bal.Debits == 0 {
					b.Fatal(bal, err)
				}
			}
		})
	}
	b.Run("balance-row", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var debits, credits int64
			if err := lb.pool.QueryRow(ctx, `SELECT debits, credits FROM bench_balances WHERE code = $1`, "provider:RUB").
				Scan(&debits, &credits); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLedgerBalanceCheckpoints measures Books.Balance of the hot account (provider:RUB)
// and Books.TrialBalance with the hot account at 10 M entries (20 M in the ledger; set
// BILLING_BENCH_LEDGER_ENTRIES for another size), without checkpoints (every entry summed,
// as before migration 0016), then after one checkpoint run, then with 5 000 charges posted
// since that run (what a balance reads between two runs of the job at ~500 postings/s), and
// at instants in the past (from the checkpoint backwards, or from the start). The fill is one
// INSERT … SELECT generate_series per million entries, balanced transactions through the
// append-only tables and their triggers, outside the timed region; it takes minutes.
//
//	./scripts/pg-tmp.sh go test -run '^$' -bench 'LedgerBalanceCheckpoints' -benchtime 1s -count 1 -timeout 2h .
func BenchmarkLedgerBalanceCheckpoints(b *testing.B) {
	ctx := context.Background()
	n := 10_000_000
	if s := os.Getenv("BILLING_BENCH_LEDGER_ENTRIES"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	pool := billingtest.NewPool(b)
	clock := billingtest.NewClock(ledgerAt)
	cfg := billing.DefaultConfig()
	cfg.Clock = clock
	engine, err := billing.New(pool, cfg)
	require.NoError(b, err)
	books := engine.Ledger()
	charge := func(key string, at time.Time) {
		tx, err := ledger.Charge(key, "pay-"+key, "RUB", 1000, at)
		require.NoError(b, err)
		_, _, err = books.Post(ctx, tx)
		require.NoError(b, err)
	}
	charge("first", ledgerAt) // creates the RUB accounts

	start := time.Now()
	const batch = 1_000_000
	for from := 1; from < n; from += batch {
		_, err := pool.Exec(ctx, `
			WITH t AS (
				INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
				SELECT gen_random_uuid(), 'bulk:' || i, 'x', 'payment', 'p' || i, '', $3::timestamptz + i * interval '1 second', now()
				FROM generate_series($1::int, $2::int) i
				RETURNING id, at
			)
			INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			SELECT t.id, l.seq, l.account, l.side, 1000, 'RUB', t.at
			FROM t, (VALUES (1, 'provider:RUB', 'debit'), (2, 'deferred:RUB', 'credit')) AS l(seq, account, side)`,
			from, min(from+batch, n)-1, ledgerAt)
		require.NoError(b, err)
	}
	_, err = pool.Exec(ctx, `VACUUM (ANALYZE) billing_ledger_transactions, billing_ledger_entries`)
	require.NoError(b, err)
	b.Logf("filled %d entries of provider:RUB (%d in the ledger) in %s", n, 2*n, time.Since(start).Round(time.Second))

	end := ledgerAt.Add(time.Duration(n) * time.Second) // the last bulk entry's instant
	now := end.Add(time.Minute)
	clock.Set(now)
	balance := func(name string, at time.Time) {
		b.Run(name+"/Balance", func(b *testing.B) {
			for b.Loop() {
				if _, err := books.Balance(ctx, "provider:RUB", at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	trialBalance := func(name string) {
		b.Run(name+"/TrialBalance", func(b *testing.B) {
			for b.Loop() {
				if _, err := books.TrialBalance(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// same checks, outside the timed region, that Balance equals the sum of the entries.
	same := func(at time.Time) {
		got, err := books.Balance(ctx, "provider:RUB", at)
		require.NoError(b, err)
		d, c, err := store.LedgerBalanceFromEntries(ctx, pool, "provider:RUB", at)
		require.NoError(b, err)
		require.Equal(b, [2]int64{d, c}, [2]int64{got.Debits, got.Credits}, "at %s", at)
	}

	balance("no-checkpoint", now)
	trialBalance("no-checkpoint")

	start = time.Now()
	written, err := books.CheckpointForTest(ctx, time.Minute)
	require.NoError(b, err)
	require.Positive(b, written)
	b.Logf("first checkpoint run (sums the whole ledger once): %s", time.Since(start).Round(time.Millisecond))
	balance("checkpoint", now)
	trialBalance("checkpoint")

	for i := range 5_000 {
		clock.Set(now.Add(time.Duration(i) * time.Millisecond))
		charge(fmt.Sprintf("after:%d", i), clock.Now())
	}
	now = clock.Now().Add(time.Second)
	balance("checkpoint+5000", now)
	trialBalance("checkpoint+5000")
	balance("checkpoint+5000/a-day-before", end.Add(-24*time.Hour))
	balance("checkpoint+5000/a-day-after-the-start", ledgerAt.Add(24*time.Hour))

	start = time.Now()
	clock.Set(now)
	written, err = books.CheckpointForTest(ctx, time.Minute)
	require.NoError(b, err)
	require.Positive(b, written)
	b.Logf("next checkpoint run (5 000 new charges): %s", time.Since(start).Round(time.Millisecond))
	for _, at := range []time.Time{now, end.Add(-24 * time.Hour), ledgerAt.Add(24 * time.Hour)} {
		same(at)
	}
}
