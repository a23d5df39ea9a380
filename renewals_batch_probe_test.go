package billing_test

// Regression tests from a review of the renewal batches (renewals_batch.go): each failed
// before its fix (a panicking batch wedged every later renewal; a batch holding many
// subscriptions deadlocked a host transaction that changed two) and runs the one-renewal
// path as its control.

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/subscription"
)

// probeConn is a connection of its own (not the engine's pool).
func probeConn(t *testing.T, b *testBundle) *pgx.Conn {
	t.Helper()
	c, err := pgx.ConnectConfig(context.Background(), b.pool.Config().ConnConfig.Copy())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// lockSubs locks the subscription rows ids on a connection of its own and returns the
// transaction and its xid.
func lockSubs(t *testing.T, b *testBundle, ids ...string) (pgx.Tx, string) {
	t.Helper()
	ctx := context.Background()
	tx, err := probeConn(t, b).Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM billing_subscriptions WHERE id = ANY($1::uuid[]) FOR UPDATE`, ids)
	require.NoError(t, err)
	var xid string
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid))
	return tx, xid
}

// waitWaiters waits until n sessions wait on transaction xid's locks.
func waitWaiters(t *testing.T, c *pgx.Conn, xid string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got int
		require.NoError(t, c.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted`, xid).Scan(&got))
		if got == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "waiting for %d sessions on xid %s, have %d", n, xid, got)
		time.Sleep(5 * time.Millisecond)
	}
}

// panicClock is the test clock that panics while armed when read by the step 1 batch
// (renewals_batch.go prepareRenewals) or, for the control, by the one-renewal step 1
// (prepareAttempt): a stand-in for any panic on that path (an engine bug on unusual data, a
// host's Clock or Logger).
type panicClock struct {
	billing.Clock
	mu    sync.Mutex
	left  int
	where string
}

func (c *panicClock) Now() time.Time {
	c.mu.Lock()
	hit := c.left > 0 && strings.Contains(string(debug.Stack()), c.where)
	if hit {
		c.left--
	}
	c.mu.Unlock()
	if hit {
		panic("probe: a panic on the step 1 path")
	}
	return c.Clock.Now()
}

// TestRenewalBatchPanicDoesNotWedgeRenewals: a panic while a batch runs (recovered by the
// caller, as River recovers a worker's panic) leaves the batcher's running count raised and
// wakes no one (batcher.do has no defer): after four such panics every later renewal queues
// behind batches that will never end, and waits forever, past its own context's deadline
// (the wait does not select on ctx). River's worker slots fill with them. The one-renewal
// path (control) fails those four jobs and renews the fifth.
func TestRenewalBatchPanicDoesNotWedgeRenewals(t *testing.T) {
	for _, tc := range []struct {
		batch int
		where string
	}{{100, "prepareRenewals"}, {1, "prepareAttempt"}} {
		t.Run(fmt.Sprintf("batch size %d", tc.batch), func(t *testing.T) {
			ctx := context.Background()
			gw := billingtest.NewGateway()
			b := setupWith(t, func(c *billing.Config) { c.Gateway = gw })
			b.withRiverNotStarted(t)
			b.publish(t, "pro", "990", "generations", 500)
			rb := &renewalBundle{testBundle: b, gateway: gw}
			// The engine under test: the same database, the bundle's clock behind panicClock.
			pc := &panicClock{Clock: b.clock, where: tc.where}
			cfg := billing.DefaultConfig()
			cfg.Gateway, cfg.Clock, cfg.RenewalBatchSize = gw, pc, tc.batch
			eng, err := billing.New(b.pool, cfg)
			require.NoError(t, err)
			workers := river.NewWorkers()
			require.NoError(t, eng.RegisterWorkers(workers))
			client, err := billingtest.NewRiverClient(b.pool, b.clock, workers)
			require.NoError(t, err)
			require.NoError(t, eng.UseRiver(client))
			var subs []subscription.Subscription
			for i := range 5 {
				subs = append(subs, rb.checkout(t, fmt.Sprintf("c%d", i), fmt.Sprintf("tok-%d", i)))
			}
			b.clock.Set(subs[0].Current.End.Add(time.Minute))
			pc.mu.Lock()
			pc.left = 4
			pc.mu.Unlock()
			for _, s := range subs[:4] { // four renewal jobs hit the panic; River recovers each
				func() {
					defer func() { t.Logf("renewal of %s panicked: %v", s.CustomerID, recover()) }()
					_ = billing.RenewPeriod(eng, ctx, s.ID, 1)
				}()
			}
			jobCtx, cancel := context.WithTimeout(ctx, 2*time.Second) // River's JobTimeout, shortened
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- billing.RenewPeriod(eng, jobCtx, subs[4].ID, 1) }()
			select {
			case err := <-done:
				t.Logf("the fifth renewal returned: %v; period %d", err, rb.get(t, subs[4].ID).Current.Number)
				require.NoError(t, err)
			case <-time.After(6 * time.Second):
				t.Fatalf("the fifth renewal still waits 4 s after its context ended (%v): the batcher is wedged", jobCtx.Err())
			}
		})
	}
}

// TestRenewalBatchDoesNotDeadlockAHostTransaction: a batch holds many subscriptions' locks at
// once, taken in id order, so a host transaction that changes two subscriptions (here
// SetAutoRenewTx on b, then on a) could close a lock cycle with a renewal if the batch waited
// for a lock: the batch {a, c, b} would hold a and wait on c (another transaction's), the
// host would hold b and wait on a; when c frees, the batch would wait on b. PostgreSQL breaks
// the cycle by aborting the session that waited first: the host's, whose command fails with
// 40P01 that nothing retries in a host transaction. The batch takes its locks with SKIP
// LOCKED, so it never waits on one while holding others. One renewal at a time never holds
// two subscriptions (control).
func TestRenewalBatchDoesNotDeadlockAHostTransaction(t *testing.T) {
	for _, batch := range []int{100, 1} {
		t.Run(fmt.Sprintf("batch size %d", batch), func(t *testing.T) {
			ctx := context.Background()
			gw := billingtest.NewGateway()
			b := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.RenewalBatchSize = batch })
			b.withRiverNotStarted(t)
			b.publish(t, "pro", "990", "generations", 500)
			rb := &renewalBundle{testBundle: b, gateway: gw}
			var fill [4]subscription.Subscription
			for i := range fill {
				fill[i] = rb.checkout(t, fmt.Sprintf("f%d", i), fmt.Sprintf("tok-f%d", i))
			}
			sa := rb.checkout(t, "a", "tok-a") // ids grow with creation (UUIDv7): a < c < b
			sc := rb.checkout(t, "c", "tok-c")
			sb := rb.checkout(t, "b", "tok-b")
			require.Less(t, sa.ID, sc.ID)
			require.Less(t, sc.ID, sb.ID)
			b.clock.Set(sb.Current.End.Add(time.Minute))

			poll := probeConn(t, b)
			var l1, l2 pgx.Tx
			var xid1, xid2 string
			var wg sync.WaitGroup
			if batch > 1 { // four batches of one, stuck, so that a, c and b queue into one batch
				l1, xid1 = lockSubs(t, b, fill[0].ID)
				l2, xid2 = lockSubs(t, b, fill[1].ID, fill[2].ID, fill[3].ID)
				for _, s := range fill {
					wg.Go(func() { _ = billing.RenewPeriod(b.engine, ctx, s.ID, 1) })
				}
				waitWaiters(t, poll, xid1, 1)
				waitWaiters(t, poll, xid2, 3)
			}
			tc, xidC := lockSubs(t, b, sc.ID) // another transaction holds c for a moment

			hostConn := probeConn(t, b)
			host, err := hostConn.Begin(ctx)
			require.NoError(t, err)
			var hostPID int
			require.NoError(t, host.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&hostPID))
			_, err = b.engine.SetAutoRenewTx(ctx, host, sb.ID, false, "host") // the host holds b
			require.NoError(t, err)

			for _, s := range []subscription.Subscription{sa, sc, sb} {
				wg.Go(func() { _ = billing.RenewPeriod(b.engine, ctx, s.ID, 1) })
			}
			if batch > 1 {
				time.Sleep(300 * time.Millisecond) // a, c, b queue behind the four batches
				require.NoError(t, l1.Commit(ctx))
			}
			waitWaiters(t, poll, xidC, 1) // c's renewal waits on c (a batch skips it and falls back)

			hostErr := make(chan error, 1)
			go func() { _, err := b.engine.SetAutoRenewTx(ctx, host, sa.ID, false, "host"); hostErr <- err }()
			// Before the fix the batch held a while it waited on c, so the host always waited on
			// a here. Now the batch skips c and b (SKIP LOCKED) and may have renewed a and
			// committed already, or a's own renewal may: the host may not wait at all, so the
			// loop gives it two seconds and goes on either way.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				var waiting bool
				require.NoError(t, poll.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, hostPID).Scan(&waiting))
				if waiting {
					t.Log("the host waits on a")
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, tc.Commit(ctx)) // c is free: the batch goes on to b, held by the host

			var herr error
			select {
			case herr = <-hostErr:
			case <-time.After(15 * time.Second):
				t.Fatal("the host's SetAutoRenewTx(a) still waits")
			}
			if herr == nil {
				require.NoError(t, host.Commit(ctx))
			} else {
				_ = host.Rollback(ctx)
			}
			if l2 != nil {
				require.NoError(t, l2.Commit(ctx))
			}
			wg.Wait()
			t.Logf("host transaction's SetAutoRenewTx(a): %v", herr)
			require.NoError(t, herr, "the host's transaction was aborted by a deadlock with a renewal batch")
		})
	}
}
