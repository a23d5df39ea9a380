package billing_test

// Probes of a review of the chunked claims (renewClaimed, commit dce4ec8). Each failed on
// that commit; each test says what fixed it.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// cancelAfterChargesGateway charges every request for real, waits until n charges were
// made, then cancels the claim's context (River's job timeout, or StopAndCancel on a
// deploy) and only then answers: every charge succeeded at the provider before the
// claim's context ended.
type cancelAfterChargesGateway struct {
	*billingtest.Gateway
	gate *cancelAtN
}

func (g *cancelAfterChargesGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	res, err := g.Gateway.Charge(context.WithoutCancel(ctx), req)
	g.gate.pass()
	return res, err
}

// cancelAtN, once armed, holds each call that passes it until n have come, and then cancels
// the claim's context (River's job timeout, or StopAndCancel on a deploy) before letting
// them all go on.
type cancelAtN struct {
	n      int32
	cancel context.CancelFunc
	armed  atomic.Bool
	seen   atomic.Int32
	all    chan struct{}
	once   sync.Once
}

func newCancelAtN(n int32, cancel context.CancelFunc) *cancelAtN {
	return &cancelAtN{n: n, cancel: cancel, all: make(chan struct{})}
}

// pass counts a call and waits as the gate says; a call before it is armed goes through.
func (c *cancelAtN) pass() {
	if !c.armed.Load() {
		return
	}
	if c.seen.Add(1) == c.n {
		c.once.Do(func() { c.cancel(); close(c.all) })
	}
	<-c.all
}

// claimsProbeBundle is a claims engine on gw (the fake behind it: fake), with change applied
// to its Config, and n subscriptions whose first periods all ended a minute ago.
func claimsProbeBundle(t *testing.T, gw payment.Gateway, fake *billingtest.Gateway, n int, change ...func(*billing.Config)) (*renewalBundle, []subscription.Subscription) {
	t.Helper()
	tb := setupWith(t, func(c *billing.Config) {
		c.Gateway = gw
		c.ClaimRenewals = true
		for _, f := range change {
			f(c)
		}
	})
	b := &renewalBundle{testBundle: tb, gateway: fake, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	subs := b.checkoutMany(t, n)
	b.clock.Set(subs[len(subs)-1].Current.End.Add(time.Minute))
	return b, subs
}

// TestClaimsProbeCanceledClaimStillAppliesItsCharges: a claimed chunk whose context
// ends after its charges succeeded at the provider (the claim job's one-minute timeout
// while calls near gatewayCallTimeout come back, or River's StopAndCancel) should still
// record them, as the batcher's step 3 does (runSafely: context.WithoutCancel + batchTimeout).
// On dce4ec8 renewClaimed ran settleRenewals and the settleInTx fallback under the claim's
// own context: all 6 charges stayed unrecorded, the customers without their paid periods
// until the lease ended and another claim looked the attempts up. Fixed: step 3 and the end
// of the claims run under a context of their own. With batches off (batch-1) a third look
// found the same on 2c5098d (6 of 6 unrecorded: the one-renewal path settled under the claim's
// context); fixed by chargePeriodSettlingIn.
func TestClaimsProbeCanceledClaimStillAppliesItsCharges(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{billing.DefaultRenewalBatchSize, 1} {
		t.Run(fmt.Sprintf("batch-%d", batch), func(t *testing.T) {
			t.Parallel()
			canceledClaimStillAppliesItsCharges(t, batch)
		})
	}
}

func canceledClaimStillAppliesItsCharges(t *testing.T, batch int) {
	const n = 6
	claimCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := &cancelAfterChargesGateway{Gateway: billingtest.NewGateway(), gate: newCancelAtN(n, cancel)}
	b, subs := claimsProbeBundle(t, gw, gw.Gateway, n, func(c *billing.Config) { c.RenewalBatchSize = batch })
	gw.gate.armed.Store(true)

	claimed, err := b.engine.ClaimDueRenewals(claimCtx)
	t.Logf("ClaimDueRenewals: claimed %d, err %v", claimed, err)
	var paidNotApplied []string
	for _, s := range subs {
		if len(b.charged(s.ID, 2)) == 1 && b.get(t, s.ID).Current.Number != 2 {
			paidNotApplied = append(paidNotApplied, s.ID)
		}
	}
	// Recovery, for the report: after the lease the next claim looks the charges up.
	b.clock.Set(b.clock.Now().Add(billing.RenewalClaimLease + time.Minute))
	_, err = b.engine.ClaimDueRenewals(context.Background())
	require.NoError(t, err)
	recovered := 0
	for _, s := range subs {
		require.Len(t, b.charged(s.ID, 2), 1, "charged once for period 2")
		if b.get(t, s.ID).Current.Number == 2 {
			recovered++
		}
	}
	t.Logf("after the lease: %d of %d on period 2, charged once each", recovered, n)
	require.Empty(t, paidNotApplied, "%d of %d charges succeeded at the provider but were not applied when the claim returned", len(paidNotApplied), n)
}

// gapGateway notes when each subscription's period-2 Charge arrives.
type gapGateway struct {
	*billingtest.Gateway
	mu      sync.Mutex
	charged map[string]time.Time // subscription -> wall time of its Charge
}

func (g *gapGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	g.mu.Lock()
	if _, ok := g.charged[req.Metadata["subscription_id"]]; !ok && req.Metadata["period"] == "2" {
		g.charged[req.Metadata["subscription_id"]] = time.Now()
	}
	g.mu.Unlock()
	return g.Gateway.Charge(ctx, req)
}

// TestClaimsProbeChargeIsSentSoonAfterItsAttemptIsMarkedSent: gatewayCallTimeout (54 s)
// is chosen so that a call ends before chargeInFlightFor (1 min) counted from sent_at, which
// step 1 sets right before its commit "that lets the provider calls go". renewClaimed
// prepares the chunk's step-1 batches one after another (RenewalBatchSize < chunk here);
// on dce4ec8 it started no call before the last batch was done, so the first batch's calls
// started after every later batch's transaction: five later batches each waiting out
// batchLockWait (2 s) on a usage row a host holds, the first batch's calls started 8 s
// after their sent_at, past the 6 s margin between gatewayCallTimeout and
// chargeInFlightFor. Fixed: each batch's calls start as soon as its transaction commits.
func TestClaimsProbeChargeIsSentSoonAfterItsAttemptIsMarkedSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 12
	gw := &gapGateway{Gateway: billingtest.NewGateway(), charged: map[string]time.Time{}}
	tb := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.ClaimRenewals = true; c.RenewalBatchSize = 2 })
	b := &renewalBundle{testBundle: tb, gateway: gw.Gateway, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	subs := b.checkoutMany(t, n)
	b.clock.Set(subs[len(subs)-1].Current.End.Add(time.Minute))
	ids := make([]string, n)
	for i, s := range subs {
		ids[i] = s.ID
	}
	sort.Strings(ids) // the claim's order (renew_at, id): batches {0,1} {2,3} … {10,11}

	// A host holds the usage rows of subscriptions 2, 4, 6, 8 and 10 (one in each later
	// batch) for 12 s, as a Consume in a host transaction would: the claim (SKIP LOCKED on the
	// subscription rows) takes them, and each later batch waits batchLockWait on them.
	host, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = host.Exec(ctx, `SELECT 1 FROM billing_usage WHERE subscription_id = ANY($1::uuid[]) FOR UPDATE`, []string{ids[2], ids[4], ids[6], ids[8], ids[10]})
	require.NoError(t, err)
	go func() { time.Sleep(12 * time.Second); _ = host.Rollback(ctx) }()

	// Watch when each period-2 attempt becomes visible (its step 1 committed).
	visible := map[string]time.Time{}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rows, err := b.pool.Query(ctx, `SELECT subscription_id::text FROM billing_payment_attempts WHERE period = 2 AND sent_at IS NOT NULL`)
			if err == nil {
				now := time.Now()
				for rows.Next() {
					var id string
					if rows.Scan(&id) == nil {
						if _, ok := visible[id]; !ok {
							visible[id] = now
						}
					}
				}
				rows.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err = b.engine.ClaimDueRenewals(ctx)
	require.NoError(t, err)
	close(stop)
	<-watched

	var worst time.Duration
	var worstID string
	for id, seen := range visible {
		gw.mu.Lock()
		at, ok := gw.charged[id]
		gw.mu.Unlock()
		if ok && at.Sub(seen) > worst {
			worst, worstID = at.Sub(seen), id
		}
	}
	t.Logf("largest wait between an attempt's step 1 commit (sent_at) and its Charge: %s (subscription %s)", worst.Round(time.Millisecond), worstID)
	for _, s := range subs {
		require.Equal(t, 2, b.get(t, s.ID).Current.Number)
		require.Len(t, b.charged(s.ID, 2), 1)
	}
	require.Less(t, worst, 6*time.Second, "a charge sent after the margin gatewayCallTimeout leaves before chargeInFlightFor")
}

// lostAnswerGateway, once lose is set, charges for real and loses every answer (the engine
// sees a timeout); its Lookup waits at its gate (once armed, the claim's context ends when
// every lookup has come), then answers what the fake recorded.
type lostAnswerGateway struct {
	*billingtest.Gateway
	lose atomic.Bool
	gate *cancelAtN
}

func (g *lostAnswerGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	res, err := g.Gateway.Charge(context.WithoutCancel(ctx), req)
	if err != nil || !g.lose.Load() {
		return res, err
	}
	return payment.ChargeResult{}, context.DeadlineExceeded
}

func (g *lostAnswerGateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	g.gate.pass()
	return g.Gateway.Lookup(context.WithoutCancel(ctx), req)
}

// TestClaimsProbeCanceledClaimStillAppliesALookedUpCharge: a claim that finds an earlier
// run's attempt looks it up, and when the provider says it succeeded, records it even if the
// claim job's context ended while the lookups were out, as the claim's new charges are
// (TestClaimsProbeCanceledClaimStillAppliesItsCharges). A second review found this path left
// out of 007920b: the recovery ran runAttempt, whose settling used the claim's context, and
// all 4 looked-up charges stayed unapplied until the next claim after the backoff. Fixed:
// runAttemptSettlingIn settles under a context of its own.
func TestClaimsProbeCanceledClaimStillAppliesALookedUpCharge(t *testing.T) {
	t.Parallel()
	const n = 4
	claimCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := &lostAnswerGateway{Gateway: billingtest.NewGateway(), gate: newCancelAtN(n, cancel)}
	b, subs := claimsProbeBundle(t, gw, gw.Gateway, n)

	// The first claim charges; every answer is lost, so every attempt is left unknown.
	gw.lose.Store(true)
	_, err := b.engine.ClaimDueRenewals(context.Background())
	require.NoError(t, err)
	for _, s := range subs {
		require.Len(t, b.charged(s.ID, 2), 1, "charged at the provider")
		require.Equal(t, 1, b.get(t, s.ID).Current.Number, "not applied: the answer was lost")
	}
	// The next claim, after the backoff, looks them up; its context ends while they are out.
	b.clock.Set(b.clock.Now().Add(time.Hour))
	gw.gate.armed.Store(true)
	claimed, err := b.engine.ClaimDueRenewals(claimCtx)
	t.Logf("second claim: claimed %d, err %v", claimed, err)
	require.Equal(t, n, claimed)
	for _, s := range subs {
		require.Len(t, b.charged(s.ID, 2), 1, "%s charged once for period 2", s.ID)
		require.Equal(t, 2, b.get(t, s.ID).Current.Number, "%s: the lookup found the charge, and it is applied", s.ID)
	}
}

// panicOnceGateway panics in the first Charge for token, before charging; every other call
// goes to the fake.
type panicOnceGateway struct {
	*billingtest.Gateway
	token    string
	panicked atomic.Bool
}

func (g *panicOnceGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	if req.PaymentMethod == g.token && g.panicked.CompareAndSwap(false, true) {
		panic("a host's gateway adapter panicked")
	}
	return g.Gateway.Charge(ctx, req)
}

// TestClaimedRenewalPanicFailsThatRenewalAlone: a panic in a host's gateway during a claimed
// chunk's call fails that renewal alone, as River turns a renewal job's panic into its
// failure: the process goes on (a panic in a goroutine of the chunk would end it), the
// chunk's other renewals are recorded, and the one that panicked is claimed again after its
// backoff and charged once. Checked failing (the test binary crashed) without recoverRenewal.
func TestClaimedRenewalPanicFailsThatRenewalAlone(t *testing.T) {
	t.Parallel()
	const n = 4
	gw := &panicOnceGateway{Gateway: billingtest.NewGateway()}
	b, subs := claimsProbeBundle(t, gw, gw.Gateway, n)
	gw.token = b.get(t, subs[0].ID).PaymentMethod

	claimed, err := b.engine.ClaimDueRenewals(context.Background())
	require.NoError(t, err)
	require.Equal(t, n, claimed)
	require.True(t, gw.panicked.Load(), "the gateway panicked")
	require.Equal(t, 1, b.get(t, subs[0].ID).Current.Number, "the renewal whose call panicked is not renewed yet")
	require.Empty(t, b.charged(subs[0].ID, 2))
	b.requireRenewedOnce(t, subs[1:])

	b.clock.Set(b.clock.Now().Add(time.Hour)) // past its backoff
	_, err = b.engine.ClaimDueRenewals(context.Background())
	require.NoError(t, err)
	b.requireRenewedOnce(t, subs)
}
