package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
)

// checkpointModel is the ledger as TestLedgerCheckpointsMatchEntries posted it: every leg
// that was committed, with its transaction's instant. It spans every rapid check of the
// test, as the database does.
type checkpointModel struct {
	legs   []checkpointLeg
	posted []ledger.Transaction // committed, not reversed, not reversals
	seq    int
}

type checkpointLeg struct {
	account string
	side    ledger.Side
	amount  int64
	at      time.Time
}

func (m *checkpointModel) add(t ledger.Transaction) {
	for _, p := range t.Postings {
		m.legs = append(m.legs, checkpointLeg{p.Account, p.Side, p.Amount, t.At})
	}
}

// balance is the naive sum: the account's legs at or before at.
func (m *checkpointModel) balance(account string, at time.Time) [2]int64 {
	var out [2]int64
	for _, l := range m.legs {
		if l.account != account || l.at.After(at) {
			continue
		}
		if l.side == ledger.Debit {
			out[0] += l.amount
		} else {
			out[1] += l.amount
		}
	}
	return out
}

// TestLedgerCheckpointsMatchEntries is the property of balance checkpoints: whatever was
// posted (charges with and without a fee, in two currencies, at instants before and after
// the clock, so back-dated and future-dated against the checkpoints; reversals; postings
// rolled back, which leave gaps in the entry numbers) and wherever checkpoints were taken
// (at random points, with the clock at random instants, before or after the entries),
// Balance at any instant and TrialBalance equal the naive sum of the entries, in the model
// and in the database (store.LedgerBalanceFromEntries, the query Balance ran before
// checkpoints).
func TestLedgerCheckpointsMatchEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	m := &checkpointModel{}
	start := b.clock.Now()
	day := 24 * time.Hour
	rapid.Check(t, func(rt *rapid.T) {
		instant := func(label string) time.Time {
			return start.Add(time.Duration(rapid.Int64Range(-30*int64(day), 60*int64(day)).Draw(rt, label))).Truncate(time.Microsecond)
		}
		key := func(kind string) string {
			m.seq++
			return fmt.Sprintf("%s:%d", kind, m.seq)
		}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2, 3: // a charge, standalone or in a caller's transaction
				currency := rapid.SampledFrom([]string{"RUB", "USD"}).Draw(rt, "currency")
				amount := rapid.Int64Range(1, 1_000_000).Draw(rt, "amount")
				tx, err := ledger.Charge(key("charge"), key("pay"), currency, amount, instant("at"),
					ledger.WithProviderFee(rapid.Int64Range(0, amount/10).Draw(rt, "fee")))
				require.NoError(rt, err)
				if rapid.Bool().Draw(rt, "inCallerTx") {
					err = pgx.BeginFunc(ctx, b.pool, func(dbtx pgx.Tx) error {
						_, _, err := books.PostTx(ctx, dbtx, tx)
						return err
					})
				} else {
					_, _, err = books.Post(ctx, tx)
				}
				require.NoError(rt, err)
				m.add(tx)
				m.posted = append(m.posted, tx)
			case 4: // a posting rolled back: its entry numbers are never used
				tx, err := ledger.Charge(key("rolledback"), key("pay"), "RUB", 777, instant("at"))
				require.NoError(rt, err)
				dbtx, err := b.pool.Begin(ctx)
				require.NoError(rt, err)
				_, _, err = books.PostTx(ctx, dbtx, tx)
				require.NoError(rt, err)
				require.NoError(rt, dbtx.Rollback(ctx))
			case 5: // a reversal of an earlier transaction, at an instant of its own
				if len(m.posted) == 0 {
					continue
				}
				i := rapid.IntRange(0, len(m.posted)-1).Draw(rt, "reversed")
				rev, err := ledger.Reverse(m.posted[i], key("reversal"), instant("at"))
				require.NoError(rt, err)
				_, _, err = books.Post(ctx, rev)
				require.NoError(rt, err)
				m.add(rev)
				m.posted = append(m.posted[:i:i], m.posted[i+1:]...)
			case 6, 7: // a checkpoint, with the clock anywhere around the entries
				b.clock.Set(instant("clock"))
				_, err := books.CheckpointForTest(ctx, 10*time.Second)
				require.NoError(rt, err)
			case 8, 9:
				checkAgainstModel(rt, b, m, instant("probe"))
			}
		}
		checkAgainstModel(rt, b, m, instant("probe"))
	})
	var checkpoints int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM billing_ledger_checkpoints`).Scan(&checkpoints))
	require.Positive(t, checkpoints, "the test took checkpoints")
}

// checkAgainstModel compares Balance of every account of the model at instants around
// probe and around every leg with the model and with the database's naive sum, and
// TrialBalance with both.
func checkAgainstModel(rt *rapid.T, b *testBundle, m *checkpointModel, probe time.Time) {
	ctx := context.Background()
	books := b.engine.Ledger()
	instants := []time.Time{probe, probe.Add(-365 * 24 * time.Hour), probe.Add(365 * 24 * time.Hour)}
	for _, l := range m.legs[max(0, len(m.legs)-6):] { // the latest legs' instants, and just before them
		instants = append(instants, l.at, l.at.Add(-time.Microsecond))
	}
	accounts := map[string]bool{}
	for _, l := range m.legs {
		accounts[l.account] = true
	}
	for account := range accounts {
		for _, at := range instants {
			got, err := books.Balance(ctx, account, at)
			require.NoError(rt, err)
			require.Equal(rt, m.balance(account, at), [2]int64{got.Debits, got.Credits}, "Balance(%s, %s) against the model", account, at)
			d, c, err := store.LedgerBalanceFromEntries(ctx, b.pool, account, at)
			require.NoError(rt, err)
			require.Equal(rt, [2]int64{d, c}, [2]int64{got.Debits, got.Credits}, "Balance(%s, %s) against the entries", account, at)
		}
	}
	tb, err := books.TrialBalance(ctx)
	require.NoError(rt, err)
	naive, err := store.LedgerTrialBalanceFromEntries(ctx, b.pool)
	require.NoError(rt, err)
	require.Equal(rt, naive, tb)
	require.Len(rt, tb, len(accounts))
	for _, bal := range tb {
		require.Equal(rt, m.balance(bal.Account.Code, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)), [2]int64{bal.Debits, bal.Credits}, bal.Account.Code)
	}
}

// TestLedgerCheckpointWaitsForInFlightPostings pins the horizon: a posting that drew its
// entry numbers before a later posting and commits after it is in the checkpoint's sums or
// after them, never lost. The checkpoint run that starts while it is open waits for it;
// one that cannot wait long enough writes nothing.
func TestLedgerCheckpointWaitsForInFlightPostings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// "slow" draws its entry numbers first and stays open; "fast" draws later ones and commits.
	b, books, charge, slow := openSlowPosting(t)
	_, _, err := books.Post(ctx, charge("fast", 3))
	require.NoError(t, err)

	n, err := books.CheckpointForTest(ctx, 50*time.Millisecond)
	require.NoError(t, err)
	require.Zero(t, n, "a run that cannot see the in-flight posting end writes nothing")

	done := make(chan error, 1)
	go func() {
		_, err := books.CheckpointForTest(ctx, 30*time.Second)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the checkpoint ran while a posting below its horizon was in flight: %v", err)
	default:
	}
	require.NoError(t, slow.Commit(ctx))
	require.NoError(t, <-done)

	bal, err := books.Balance(ctx, "provider:RUB", b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, int64(123), bal.Debits, "first + slow + fast")
	var checkpoints int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM billing_ledger_checkpoints WHERE account = 'provider:RUB'`).Scan(&checkpoints))
	require.Equal(t, 1, checkpoints)
}

// TestLedgerCheckpointsTable pins what the database allows on checkpoints: no UPDATE (a
// checkpoint is a fixed sum), DELETE (it is derived; balances are the same without it),
// and a checkpoint run with nothing new writes nothing.
func TestLedgerCheckpointsTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	_, _, err := books.Post(ctx, mustCharge(t, "c1", 5000))
	require.NoError(t, err)
	n, err := books.CheckpointForTest(ctx, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "provider:RUB and deferred:RUB")
	n, err = books.CheckpointForTest(ctx, 10*time.Second)
	require.NoError(t, err)
	require.Zero(t, n, "nothing new")

	_, err = b.pool.Exec(ctx, `UPDATE billing_ledger_checkpoints SET debits = debits + 1`)
	requireSQLState(t, err, "23000")
	before, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `DELETE FROM billing_ledger_checkpoints`)
	require.NoError(t, err)
	after, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// TestLedgerCheckpointPeriodicJob runs the engine's periodic jobs (PeriodicJobs) in a real
// River client: the checkpoint job is inserted when the client's scheduler starts, worked by
// the engine's worker, and writes the checkpoints Balance then starts from.
func TestLedgerCheckpointPeriodicJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWith(t, func(c *billing.Config) { c.Gateway = billingtest.NewGateway() })
	books := b.engine.Ledger()
	for i := range 5 {
		_, _, err := books.Post(ctx, mustCharge(t, fmt.Sprintf("c%d", i), int64(1000+i)))
		require.NoError(t, err)
	}
	want, err := store.LedgerTrialBalanceFromEntries(ctx, b.pool)
	require.NoError(t, err)

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
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})
	var done, checkpoints int
	require.Eventually(t, func() bool {
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_ledger_checkpoint' AND state = 'completed'),
			(SELECT count(*) FROM billing_ledger_checkpoints)`).Scan(&done, &checkpoints))
		return done >= 1
	}, 30*time.Second, 20*time.Millisecond, "the checkpoint job never completed")
	require.Equal(t, 2, checkpoints, "provider:RUB and deferred:RUB")
	got, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
	bal, err := books.Balance(ctx, "provider:RUB", ledgerAt)
	require.NoError(t, err)
	require.Equal(t, int64(5*1000+0+1+2+3+4), bal.Debits)
}

// TestLedgerCheckpointWaitsForThePostingWithTheNewestXid: a posting whose xid is the newest
// assigned (nothing later has completed) is in flight while the checkpoint job reads its
// horizon. A snapshot's xmax would not cover it, and the checkpoint would count its entry
// number without its amount; the horizon's xid is assigned after the number was read, so
// the job waits for the posting (or writes nothing), and the balance has both charges once
// it commits. Found by an adversarial review: it failed with 100 instead of 120.
func TestLedgerCheckpointWaitsForThePostingWithTheNewestXid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, books, _, slow := openSlowPosting(t)
	_, err := books.CheckpointForTest(ctx, 50*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, slow.Commit(ctx))

	bal, err := books.Balance(ctx, "provider:RUB", b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, int64(120), bal.Debits, "first + slow: a committed posting is missing from the balance")
}

// openSlowPosting is the start of the in-flight checkpoint tests: a bundle whose ledger holds
// a charge "first" of 100 RUB, and a charge "slow" of 20 posted in a transaction left open
// (rolled back when the test ends unless it commits). charge makes a charge of amount an
// hour before the clock.
func openSlowPosting(t *testing.T) (*testBundle, *billing.Books, func(key string, amount int64) ledger.Transaction, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	charge := func(key string, amount int64) ledger.Transaction {
		tx, err := ledger.Charge(key, "pay-"+key, "RUB", amount, b.clock.Now().Add(-time.Hour))
		require.NoError(t, err)
		return tx
	}
	_, _, err := books.Post(ctx, charge("first", 100))
	require.NoError(t, err)
	slow, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = slow.Rollback(ctx) })
	_, _, err = books.PostTx(ctx, slow, charge("slow", 20))
	require.NoError(t, err)
	return b, books, charge, slow
}
