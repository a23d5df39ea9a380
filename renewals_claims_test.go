package billing_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// Renewals claimed from the subscriptions table (Config.ClaimRenewals, renewals_claims.go).
// TestRenewals runs every renewal rule with claims too; the model test and the kill -9 test
// drive both ways of renewing.

// renewAt reads a subscription's renew_at (nil: no renewal run waits).
func (b *renewalBundle) renewAt(t *testing.T, id string) *time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT renew_at FROM billing_subscriptions WHERE id = $1`, id).Scan(&at))
	return at
}

// jobsOfKind counts River's jobs of kind, in any state.
func (b *renewalBundle) jobsOfKind(t *testing.T, kind string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+riverJob+` WHERE kind = $1`, kind).Scan(&n))
	return n
}

// checkoutMany makes n subscriptions with their first period paid, all ending at once.
func (b *renewalBundle) checkoutMany(t *testing.T, n int) []subscription.Subscription {
	t.Helper()
	subs := make([]subscription.Subscription, n)
	for i := range subs {
		subs[i] = b.checkout(t, fmt.Sprintf("c%d", i), fmt.Sprintf("tok-%d", i))
	}
	return subs
}

func TestClaimedRenewalIsScheduledOnTheSubscriptionRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	sub := b.checkout(t, "c1", "tok-1")
	at := b.renewAt(t, sub.ID)
	require.NotNil(t, at, "the paid period schedules its renewal on the row")
	require.True(t, at.Equal(sub.Current.End), "at the period's end: %s", at)

	_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	got := b.get(t, sub.ID)
	require.Equal(t, 2, got.Current.Number)
	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
	at = b.renewAt(t, sub.ID)
	require.NotNil(t, at)
	require.True(t, at.Equal(got.Current.End), "the renewal schedules the next one at the new end: %s", at)
	require.Zero(t, b.jobsOfKind(t, "billing_renew"), "no River job per renewal")
	require.Positive(t, b.jobsOfKind(t, "billing_claim_renewals"), "the claim job renewed it")

	_, err = b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, got.Current.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, subscription.StatusEnded, b.get(t, sub.ID).Status, "3.6 auto-renew off: the period runs out")
	require.Nil(t, b.renewAt(t, sub.ID), "the run that ended it left nothing waiting")
	require.Empty(t, b.charged(sub.ID, 3))
}

func TestClaimedRenewalLeftByAKilledClaimerRunsWhenItsLeaseEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	sub := b.checkout(t, "c1", "tok-1")
	end := sub.Current.End
	// A claimer claimed it at its end (renew_at a lease ahead) and was killed before it ran.
	lease := end.Add(billing.RenewalClaimLease)
	_, err := b.pool.Exec(ctx, `UPDATE billing_subscriptions SET renew_at = $2 WHERE id = $1`, sub.ID, lease)
	require.NoError(t, err)

	_, err = b.runner.RunUntil(ctx, lease.Add(-time.Second))
	require.NoError(t, err)
	require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "claimed by the dead claimer until its lease ends")
	require.Empty(t, b.charged(sub.ID, 2))

	_, err = b.runner.RunUntil(ctx, lease.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 2, b.get(t, sub.ID).Current.Number, "claimed again when the lease ended")
	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
}

func TestClaimedRenewalRunTwiceChargesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	sub := b.checkout(t, "c1", "tok-1")
	b.clock.Set(sub.Current.End.Add(time.Minute)) // no job falls due in between: the renewal is late, on purpose
	// A claimer renewed it and was killed before it ended its claim (a lease past, the
	// schedule of the new period lost): the next claim runs the current period, not yet due.
	require.NoError(t, billing.RenewPeriod(b.engine, ctx, sub.ID, 1))
	lease := b.clock.Now().Add(billing.RenewalClaimLease)
	_, err := b.pool.Exec(ctx, `UPDATE billing_subscriptions SET renew_at = $2 WHERE id = $1`, sub.ID, lease.Add(-time.Hour))
	require.NoError(t, err)
	n, err := b.engine.ClaimDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := b.get(t, sub.ID)
	require.Equal(t, 2, got.Current.Number)
	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2), "the second run found the period paid")
	at := b.renewAt(t, sub.ID)
	require.NotNil(t, at)
	require.True(t, at.Equal(got.Current.End), "the claim renewed the current period, not yet due: renew_at is its end again, %s", at)
}

func TestClaimsAtOnceRenewEveryDueSubscriptionOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	subs := b.checkoutMany(t, 2*billing.RenewalClaimChunk+30)
	b.clock.Set(subs[len(subs)-1].Current.End.Add(time.Minute))

	// Three claimers (three processes' claim jobs) at once, until none finds work.
	var mu sync.Mutex
	claimed := 0
	for {
		var wg sync.WaitGroup
		round := 0
		for range 3 {
			wg.Go(func() {
				n, err := b.engine.ClaimDueRenewals(ctx)
				require.NoError(t, err)
				mu.Lock()
				claimed, round = claimed+n, round+n
				mu.Unlock()
			})
		}
		wg.Wait()
		if round == 0 {
			break
		}
	}
	require.Equal(t, len(subs), claimed, "each due subscription claimed once")
	b.requireRenewedOnce(t, subs)
}

func TestClaimJobTakingAFullChunkStartsTheNext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	subs := b.checkoutMany(t, billing.RenewalClaimChunk+5)
	b.clock.Set(subs[0].Current.End.Add(time.Minute)) // all end at once; no job falls due in between

	n, err := billing.ClaimRenewalsJob(b.engine, ctx) // the claim job's work
	require.NoError(t, err)
	require.Equal(t, billing.RenewalClaimChunk, n)
	require.Equal(t, 1, b.jobsOfKind(t, "billing_claim_renewals"), "a full chunk inserts the next claim job, before it renews")

	require.NoError(t, b.runner.RunDue(ctx)) // River works the next claim job: the last 5
	require.Equal(t, 1, b.jobsOfKind(t, "billing_claim_renewals"), "a chunk that was not full inserts none")
	for _, s := range subs {
		require.Equal(t, 2, b.get(t, s.ID).Current.Number)
	}
}

// TestClaimChunkIsConfigChunk: a claim takes Config.ClaimChunk due subscriptions, renews them
// in batches of RenewalBatchSize, and a claim job that took a full chunk inserts the next.
func TestClaimChunkIsConfigChunk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := billingtest.NewGateway()
	tb := setupWith(t, func(c *billing.Config) {
		c.Gateway = gw
		c.ClaimRenewals = true
		c.ClaimChunk = 3
		c.RenewalBatchSize = 2
	})
	b := &renewalBundle{testBundle: tb, gateway: gw, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	subs := b.checkoutMany(t, 8)
	b.clock.Set(subs[0].Current.End.Add(time.Minute)) // all end at once; no job falls due in between

	n, err := b.engine.ClaimDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n, "a claim takes ClaimChunk")
	n, err = billing.ClaimRenewalsJob(b.engine, ctx) // the claim job's work
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 1, b.jobsOfKind(t, "billing_claim_renewals"), "a chunk of ClaimChunk is full: the next claim job")
	require.NoError(t, b.runner.RunDue(ctx)) // River works it: the last 2
	require.Equal(t, 1, b.jobsOfKind(t, "billing_claim_renewals"), "a chunk that was not full inserts none")
	b.requireRenewedOnce(t, subs)
	prepareBatches, prepared, _, _ := billing.RenewalBatchCounts(b.engine)
	require.Equal(t, 8, prepared)
	require.Equal(t, 5, prepareBatches, "step 1 in batches of RenewalBatchSize: 2+1, 2+1, 2")
}

// TestNextClaimJobGoesToTheEngineQueue: the next claim job a full chunk inserts is in
// Config.Queue at Config.Priority (the engine's River client gives every job of the engine
// both), not in River's default queue, where it would wait for good in an installation whose
// workers work only the engine's queue.
func TestNextClaimJobGoesToTheEngineQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := billingtest.NewGateway()
	tb := setupWith(t, func(c *billing.Config) {
		c.Gateway, c.ClaimRenewals, c.ClaimChunk, c.Queue, c.Priority = gw, true, 1, "billing", 2
	})
	tb.withRiverNotStarted(t) // the job is looked at, not run
	b := &renewalBundle{testBundle: tb, gateway: gw}
	b.publish(t, "pro", "990", "generations", 500)
	subs := b.checkoutMany(t, 2)
	b.clock.Set(subs[0].Current.End.Add(time.Minute))
	n, err := billing.ClaimRenewalsJob(b.engine, ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var queue string
	var priority int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT queue, priority FROM `+riverJob+` WHERE kind = 'billing_claim_renewals'`).Scan(&queue, &priority))
	require.Equal(t, "billing", queue)
	require.Equal(t, 2, priority)
}

func TestSweepGivesADueSubscriptionWithoutAClaimOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	sub := b.checkout(t, "c1", "tok-1")
	// Its schedule was lost (or it was renewed by River's jobs before claims were turned on).
	_, err := b.pool.Exec(ctx, `UPDATE billing_subscriptions SET renew_at = NULL WHERE id = $1`, sub.ID)
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "nothing waits: not renewed")

	n, err := b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	at := b.renewAt(t, sub.ID)
	require.NotNil(t, at)
	require.True(t, at.Equal(b.clock.Now()), "due now: %s", at)
	require.Zero(t, b.jobsOfKind(t, "billing_renew"), "with claims the sweep inserts no renewal job")

	require.NoError(t, b.runner.RunDue(ctx))
	require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
}

func TestClaimsOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, false)
	sub := b.checkout(t, "c1", "tok-1")
	require.Nil(t, b.renewAt(t, sub.ID), "River's renewal job, no renew_at")
	b.clock.Set(sub.Current.End.Add(time.Minute))
	n, err := b.engine.ClaimDueRenewals(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	kinds := func(e *billing.Engine) int {
		return len(e.PeriodicJobs(time.Minute))
	}
	require.Equal(t, kinds(b.engine)+1, kinds(setupRenewalsBy(t, true).engine), "with claims PeriodicJobs adds the claim job")
}

// The end of a claim waits on no row lock (a host transaction holding a subscription while
// it changes others must not stall a chunk, nor close a lock cycle with it): a row another
// transaction holds keeps the claim's lease, and is claimed again when it ends.
func TestClaimEndWaitsOnNoRowLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewalsBy(t, true)
	sub := b.checkout(t, "c1", "tok-1")
	now := sub.Current.End.Add(time.Minute)
	lease, claim := now.Add(billing.RenewalClaimLease), uuid.NewString()
	claimed, err := store.ClaimRenewals(ctx, b.pool, claim, now, lease, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)

	host, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = host.Rollback(ctx) }()
	_, err = host.Exec(ctx, `SELECT 1 FROM billing_subscriptions WHERE id = $1 FOR UPDATE`, sub.ID)
	require.NoError(t, err)

	settleCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, store.SettleRenewalClaims(settleCtx, b.pool, claim, now, []string{sub.ID}, []*time.Time{nil}, []bool{false}),
		"the end of the claim does not wait for the host's lock")
	at := b.renewAt(t, sub.ID)
	require.NotNil(t, at)
	require.True(t, at.Equal(lease), "the held row keeps the lease: %s", at)

	require.NoError(t, host.Commit(ctx))
	require.NoError(t, store.SettleRenewalClaims(ctx, b.pool, claim, now, []string{sub.ID}, []*time.Time{nil}, []bool{false}))
	require.Nil(t, b.renewAt(t, sub.ID), "once free, the claim ends")
}

// heldGateway holds every charge of token, once armed, until release is closed.
type heldGateway struct {
	*billingtest.Gateway
	token   string
	armed   atomic.Bool
	held    chan struct{} // closed when a charge is held
	release chan struct{}
	once    sync.Once
}

func (g *heldGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	if g.armed.Load() && req.PaymentMethod == g.token {
		g.once.Do(func() { close(g.held) })
		<-g.release
	}
	return g.Gateway.Charge(ctx, req)
}

// TestClaimedChunkDoesNotWaitForItsSlowestCall: a claimed chunk settles its succeeded
// charges in waves (renewClaimed), so a provider call that hangs holds up only its own
// renewal: the chunk's other subscriptions start their paid periods meanwhile.
func TestClaimedChunkDoesNotWaitForItsSlowestCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := &heldGateway{Gateway: billingtest.NewGateway(), token: "tok-0", held: make(chan struct{}), release: make(chan struct{})}
	tb := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.ClaimRenewals = true })
	b := &renewalBundle{testBundle: tb, gateway: gw.Gateway, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	subs := b.checkoutMany(t, 6)
	b.clock.Set(subs[len(subs)-1].Current.End.Add(time.Minute))
	gw.armed.Store(true)

	done := make(chan error, 1)
	go func() {
		n, err := b.engine.ClaimDueRenewals(ctx)
		if err == nil && n != len(subs) {
			err = fmt.Errorf("claimed %d of %d", n, len(subs))
		}
		done <- err
	}()
	<-gw.held
	require.Eventually(t, func() bool {
		for _, s := range subs[1:] {
			if b.get(t, s.ID).Current.Number != 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the other renewals wait for the held call")
	require.Equal(t, 1, b.get(t, subs[0].ID).Current.Number, "the held renewal is still in its call")
	close(gw.release)
	require.NoError(t, <-done)
	b.requireRenewedOnce(t, subs)
}

// TestClaimLeaseIsConfigLease: a claim leases its subscriptions for Config.ClaimLease.
func TestClaimLeaseIsConfigLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := &heldGateway{Gateway: billingtest.NewGateway(), token: "tok-0", held: make(chan struct{}), release: make(chan struct{})}
	tb := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.ClaimRenewals = true; c.ClaimLease = 30 * time.Second })
	b := &renewalBundle{testBundle: tb, gateway: gw.Gateway, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	sub := b.checkout(t, "c0", "tok-0")
	b.clock.Set(sub.Current.End.Add(time.Minute))
	gw.armed.Store(true)
	done := make(chan error, 1)
	go func() { _, err := b.engine.ClaimDueRenewals(ctx); done <- err }()
	<-gw.held
	at := b.renewAt(t, sub.ID)
	require.NotNil(t, at)
	require.True(t, at.Equal(b.clock.Now().Add(30*time.Second)), "leased until %s", at)
	close(gw.release)
	require.NoError(t, <-done)
	require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
}

// requireRenewedOnce checks that every subscription of subs is in period 2, charged once for it
// at the provider.
func (b *renewalBundle) requireRenewedOnce(t *testing.T, subs []subscription.Subscription) {
	t.Helper()
	for _, s := range subs {
		require.Equal(t, 2, b.get(t, s.ID).Current.Number)
		require.Len(t, b.charged(s.ID, 2), 1, "%s charged once for period 2", s.ID)
	}
}

// TestClaimedRenewalPendingAtThePeriodEndIsSettledWithoutAWebhook: a claimed renewal's charge
// is still pending at the provider when the claim ends. Nothing waits on the subscription's
// row then (renew_at is empty: a claim would only look the attempt up again), and access ends
// with the paid period (TERMS 3.3: no access before the charge succeeds). The webhook never
// comes; reconciliation alone must settle it: a charge that succeeded starts period 2 once,
// and one that was declined schedules the dunning retry on the row again, which charges anew.
// (A review's probe saw such subscriptions waiting with no renew_at and asked whether anything
// settles them.)
func TestClaimedRenewalPendingAtThePeriodEndIsSettledWithoutAWebhook(t *testing.T) {
	t.Parallel()
	for _, outcome := range []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomeSoftDeclined} {
		t.Run(string(outcome), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupRenewalsBy(t, true)
			sub := b.checkout(t, "c1", "tok-1")
			b.gateway.Script("tok-1", billingtest.Pending)
			_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(time.Minute))
			require.NoError(t, err)
			atts, err := b.engine.AttemptList(ctx, sub.ID)
			require.NoError(t, err)
			pending := atts[len(atts)-1]
			require.Equal(t, payment.StatePending, pending.State, "setup: the renewal charge is pending")
			require.Equal(t, 2, pending.PeriodNumber)
			require.Nil(t, b.renewAt(t, sub.ID), "setup: nothing waits on the row while the charge is pending")
			access, err := b.engine.Access(ctx, sub.ID)
			require.NoError(t, err)
			require.False(t, access.Granted, "3.3 no access past the paid period while the renewal is pending")

			_, err = b.gateway.Confirm(pending.ProviderPaymentID, outcome) // the webhook is lost
			require.NoError(t, err)
			_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(2*time.Minute))
			require.NoError(t, err)
			n, err := b.engine.ReconcilePayments(ctx)
			require.NoError(t, err)
			require.Positive(t, n, "reconciliation looks at the pending attempt")

			if outcome == payment.OutcomeSucceeded {
				got := b.get(t, sub.ID)
				require.Equal(t, 2, got.Current.Number, "the charge that succeeded starts period 2")
				require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
				at := b.renewAt(t, sub.ID)
				require.NotNil(t, at, "the next renewal waits on the row")
				require.True(t, at.Equal(got.Current.End), "at the new period's end: %s", at)
				access, err := b.engine.Access(ctx, sub.ID)
				require.NoError(t, err)
				require.True(t, access.Granted)
				return
			}
			require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "a declined charge starts no period")
			at := b.renewAt(t, sub.ID)
			require.NotNil(t, at, "the decline schedules the dunning retry on the row")
			require.True(t, at.After(b.clock.Now()), "the retry is ahead: %s", at)
			_, err = b.runner.RunUntil(ctx, at.Add(time.Minute))
			require.NoError(t, err)
			got := b.get(t, sub.ID)
			require.Equal(t, 2, got.Current.Number, "the retry charges the saved card anew and starts period 2")
			require.Equal(t, []int64{99000}, b.charged(sub.ID, 2), "charged once: the declined charge took nothing")
		})
	}
}
