package billing_test

// Commands run at once against the money paths, many rounds each, checked against the fake
// provider's own record (an adversarial probe of the money-safety change found the stale
// refund-key rotation with TestRaceRefundUnappliedPendingThenStaleDecline: 37 of 40 rounds
// failed before the fix). BILLING_RACE_ROUNDS sets the rounds of every test (make soak: 40).

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
)

// TestRaceConcurrentRefundUnapplied: several RefundUnapplied calls (plus the River job) at
// once on one unapplied payment whose first refund tries are declined. The provider must
// refund it at most once; the books must equal the provider.
func TestRaceConcurrentRefundUnapplied(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.SoftDecline, billingtest.SoftDecline)
		abandonedPaidCheckout(t, b, fmt.Sprintf("c%d", r), fmt.Sprintf("tok-%d", r))
		b.gateway.SetLatency(3 * time.Millisecond)
		open, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		require.Len(t, open, 1)
		id := open[0].ID
		var wg sync.WaitGroup
		for g := 0; g < 12; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 6; i++ {
					_ = b.engine.RefundUnapplied(ctx, id)
				}
			}()
		}
		wg.Wait()
		b.gateway.SetLatency(0)
		all, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		refunds := b.gateway.Refunds()
		t.Logf("round %d: state %s failures %d, provider refunds %d", r, all[0].State, all[0].Failures, len(refunds))
		require.LessOrEqual(t, len(refunds), 1, "round %d: the provider refunded one unapplied payment %d times", r, len(refunds))
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRaceRefundUnappliedVsWebhook: the refund job / RefundUnapplied racing the refund webhook
// of a pending refund of the same unapplied payment: payout booked once.
func TestRaceRefundUnappliedVsWebhook(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.Pending)
		abandonedPaidCheckout(t, b, fmt.Sprintf("c%d", r), fmt.Sprintf("tok-%d", r))
		var open []billing.UnappliedPayment
		require.Eventually(t, func() bool {
			var err error
			open, err = b.engine.UnappliedPaymentList(ctx, true)
			return err == nil && len(open) == 1 && open[0].ProviderRefundID != ""
		}, 5*time.Second, 10*time.Millisecond)
		ev, err := b.gateway.ConfirmRefund(open[0].ProviderRefundID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = b.engine.HandleRefundWebhook(ctx, ev) }()
			go func() { defer wg.Done(); _ = b.engine.RefundUnapplied(ctx, open[0].ID) }()
		}
		wg.Wait()
		require.Len(t, b.gateway.Refunds(), 1)
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRaceConcurrentReconcile: ReconcilePayments in several goroutines at once on first
// payments whose answer was lost, some succeeded, some never charged.
func TestRaceConcurrentReconcile(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		var subs []string
		for i := 0; i < 3; i++ {
			tok := fmt.Sprintf("tok-%d-%d", r, i)
			bh := billingtest.TimeoutAfterSuccess
			if i == 1 {
				bh = billingtest.TimeoutBeforeCharge
			}
			b.gateway.Script(tok, bh)
			sub := regSubscribe(t, b, fmt.Sprintf("c%d-%d", r, i), tok)
			_, _ = b.engine.ChargeFirstPayment(ctx, sub.ID)
			subs = append(subs, sub.ID)
		}
		b.clock.Advance(2 * time.Minute)
		b.gateway.SetLatency(time.Millisecond)
		var wg sync.WaitGroup
		for g := 0; g < 5; g++ {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = b.engine.ReconcilePayments(ctx) }()
		}
		wg.Wait()
		b.gateway.SetLatency(0)
		b.clock.Advance(25 * time.Hour)
		_, err := b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		regRunFor(t, b, time.Hour)
		for _, s := range subs {
			for p := 1; p <= 2; p++ {
				require.LessOrEqual(t, len(b.gateway.ChargesFor(s, p)), 1)
			}
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRaceRefundUnappliedPendingThenStaleDecline: RefundUnapplied in several goroutines at
// once; the first refund is declined, the second pending. A caller that read the declined key
// before the rotation may rotate the key again while the pending refund is at the provider.
// After the provider settles every pending refund (webhooks delivered, jobs run) the books
// must equal the provider.
func TestRaceRefundUnappliedPendingThenStaleDecline(t *testing.T) {
	racePendingThenStaleDecline(t, 12, 4, raceRounds(t, 4))
}

// TestRaceRefundUnappliedPendingThenStaleDecline2: the same with only two callers (e.g. the
// River job and an operator's "retry now"), one try each.
func TestRaceRefundUnappliedPendingThenStaleDecline2(t *testing.T) {
	racePendingThenStaleDecline(t, 2, 2, raceRounds(t, 6))
}

func racePendingThenStaleDecline(t *testing.T, callers, tries, rounds int) {
	ctx := context.Background()
	bad := 0
	for r := 0; r < rounds; r++ {
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.SoftDecline, billingtest.Pending)
		abandonedPaidCheckout(t, b, fmt.Sprintf("c%d", r), fmt.Sprintf("tok-%d", r))
		b.gateway.SetLatency(3 * time.Millisecond)
		open, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		id := open[0].ID
		var wg sync.WaitGroup
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < tries; i++ {
					_ = b.engine.RefundUnapplied(ctx, id)
				}
			}()
		}
		wg.Wait()
		b.gateway.SetLatency(0)
		mid, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		// the provider settles every pending refund; its webhooks reach the engine
		for n := 1; n <= 10; n++ {
			ev, err := b.gateway.ConfirmRefund(fmt.Sprintf("rfd_%d", n), payment.OutcomeSucceeded)
			if err != nil {
				continue
			}
			_, werr := b.engine.HandleRefundWebhook(ctx, ev)
			t.Logf("round %d: rfd_%d confirmed at the provider; webhook: %v", r, n, werr)
		}
		regRunFor(t, b, 30*24*time.Hour)
		_, _ = b.engine.SweepDueRenewals(ctx)
		regRunFor(t, b, 30*24*time.Hour)
		all, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		bal, err := b.engine.Ledger().Balance(ctx, "provider:RUB", booksAt)
		require.NoError(t, err)
		t.Logf("round %d: mid state %s key %s… failures %d; end state %s failures %d; provider refunds %d; provider holds %d, books %d",
			r, mid[0].State, mid[0].RefundKey[:8], mid[0].Failures, all[0].State, all[0].Failures, len(b.gateway.Refunds()), providerHolds(b.gateway), bal.Net())
		if providerHolds(b.gateway) != bal.Net() {
			bad++
		}
	}
	require.Zero(t, bad, "rounds where the provider's money differs from the books")
}

// TestRaceResumeRacesRenewalAndSweeper: a subscription suspended across its period end is
// resumed while the renewal job, the sweeper and reconciliation run. At most one charge for
// period 2 at the provider, books equal the provider, and in the end it renewed or ended.
func TestRaceResumeRacesRenewalAndSweeper(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		tok := fmt.Sprintf("tok-%d", r)
		sub := b.checkout(t, fmt.Sprintf("c%d", r), tok)
		if r%2 == 1 {
			b.gateway.Script(tok, billingtest.Pending)
		}
		_, err := b.engine.Suspend(ctx, sub.ID, regOperator)
		require.NoError(t, err)
		b.clock.Set(sub.Current.End.Add(2 * time.Hour))
		require.NoError(t, b.runner.RunDue(ctx))
		b.gateway.SetLatency(2 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Add(6)
		go func() { defer wg.Done(); _, _ = b.engine.Resume(ctx, sub.ID, regOperator) }()
		for g := 0; g < 2; g++ {
			go func() { defer wg.Done(); _, _ = b.engine.SweepDueRenewals(ctx) }()
			go func() { defer wg.Done(); _ = b.runner.RunDue(ctx) }()
		}
		go func() { defer wg.Done(); _, _ = b.engine.ReconcilePayments(ctx) }()
		wg.Wait()
		b.gateway.SetLatency(0)
		for _, ev := range b.gateway.Land() {
			_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
		}
		for i := 0; i < 3; i++ {
			regRunFor(t, b, time.Hour)
			_, _ = b.engine.SweepDueRenewals(ctx)
			_, _ = b.engine.ReconcilePayments(ctx)
			b.clock.Advance(8 * time.Hour)
		}
		regRunFor(t, b, time.Hour)
		require.LessOrEqual(t, len(b.gateway.ChargesFor(sub.ID, 2)), 1, "round %d", r)
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
		got := b.get(t, sub.ID)
		atts := regAttempts(t, b, sub.ID)
		if r%2 == 0 {
			require.True(t, (got.Current != nil && got.Current.Number >= 2) || got.Status.Final(),
				"round %d: renewed or ended; status %s period %d attempts %v", r, got.Status, got.Current.Number, atts)
		}
	}
}

// TestRaceTerminateOrExtendRacesRenewal: Terminate, ExtendPeriod, SetAutoRenew(false) or
// WithdrawConsent at the instant the renewal job charges. Books equal the provider, at most
// one charge per period, every unapplied payment refunded, nothing left open.
func TestRaceTerminateOrExtendRacesRenewal(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		tok := fmt.Sprintf("tok-%d", r)
		cust := fmt.Sprintf("c%d", r)
		sub := b.checkout(t, cust, tok)
		if r%3 == 1 {
			b.gateway.Script(tok, billingtest.Pending)
		}
		if r%3 == 2 {
			b.gateway.Script(tok, billingtest.TimeoutAfterSuccess)
		}
		b.clock.Set(sub.Current.End)
		b.gateway.SetLatency(time.Duration(r%4) * time.Millisecond)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); _ = b.runner.RunDue(ctx) }()
		go func() { defer wg.Done(); _, _ = b.engine.SweepDueRenewals(ctx) }()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(r%5) * time.Millisecond)
			switch (r / 3) % 4 {
			case 0:
				_, _ = b.engine.Terminate(ctx, sub.ID, regOperator)
			case 1:
				_, _ = b.engine.ExtendPeriod(ctx, sub.ID, sub.Current.End.Add(72*time.Hour), regOperator)
			case 2:
				_, _ = b.engine.SetAutoRenew(ctx, sub.ID, false, "customer")
			case 3:
				_ = b.engine.WithdrawConsent(ctx, cust, tok, "customer")
			}
		}()
		wg.Wait()
		b.gateway.SetLatency(0)
		for _, ev := range b.gateway.Land() {
			_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
		}
		for _, a := range regAttempts(t, b, sub.ID) {
			if a.State == payment.StatePending && a.ProviderPaymentID != "" {
				if ev, err := b.gateway.Confirm(a.ProviderPaymentID, payment.OutcomeSucceeded); err == nil {
					_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
				}
			}
		}
		for i := 0; i < 4; i++ {
			b.clock.Advance(7 * time.Hour)
			regRunFor(t, b, time.Hour)
			_, _ = b.engine.ReconcilePayments(ctx)
		}
		regRunFor(t, b, time.Hour)
		for p := 1; p <= 3; p++ {
			require.LessOrEqual(t, len(b.gateway.ChargesFor(sub.ID, p)), 1, "round %d period %d", r, p)
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
		open, err := b.engine.UnappliedPaymentList(ctx, true)
		require.NoError(t, err)
		require.Empty(t, open, "round %d: unapplied money not refunded", r)
		parked, err := b.engine.AttemptListParked(ctx)
		require.NoError(t, err)
		require.Empty(t, parked, "round %d", r)
	}
}

// TestRacePeriodRefundRaces: a period refund settled by its webhook, RetryRefund and
// ExecuteRefund at once (pending case), or executed again from several goroutines after a
// refusal. One refund at the provider, books equal the provider.
func TestRacePeriodRefundRaces(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		sub := b.checkout(t, fmt.Sprintf("c%d", r), fmt.Sprintf("tok-%d", r))
		b.clock.Advance(time.Hour)
		req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
			Channel: "email", Text: "refund", IdempotencyKey: fmt.Sprintf("rr-%d", r)})
		require.NoError(t, err)
		opts := billing.ExecuteRefundOpts{Actor: "ops", Override: true, OverrideReason: "race test"}
		pendingCase := r%2 == 0
		if pendingCase {
			b.gateway.ScriptRefunds(billingtest.Pending)
		} else {
			b.gateway.ScriptRefunds(billingtest.SoftDecline)
		}
		_, err = b.engine.VerifyRefund(ctx, req.ID, "ops")
		require.NoError(t, err)
		got, err := b.engine.ExecuteRefund(ctx, req.ID, opts)
		require.NoError(t, err)
		b.gateway.SetLatency(2 * time.Millisecond)
		var wg sync.WaitGroup
		if pendingCase {
			rf, err := b.engine.RefundRequestGet(ctx, req.ID)
			require.NoError(t, err)
			ev, err := b.gateway.ConfirmRefund(rf.ProviderRefundID, payment.OutcomeSucceeded)
			require.NoError(t, err, "round %d %+v", r, got)
			for g := 0; g < 3; g++ {
				wg.Add(3)
				go func() { defer wg.Done(); _, _ = b.engine.HandleRefundWebhook(ctx, ev) }()
				go func() { defer wg.Done(); _ = billing.RetryRefund(b.engine, ctx, req.ID) }()
				go func() { defer wg.Done(); _, _ = b.engine.ExecuteRefund(ctx, req.ID, opts) }()
			}
		} else {
			for g := 0; g < 5; g++ {
				wg.Add(2)
				go func() { defer wg.Done(); _, _ = b.engine.ExecuteRefund(ctx, req.ID, opts) }()
				go func() { defer wg.Done(); _ = billing.RetryRefund(b.engine, ctx, req.ID) }()
			}
		}
		wg.Wait()
		b.gateway.SetLatency(0)
		regRunFor(t, b, 24*time.Hour)
		require.LessOrEqual(t, len(b.gateway.Refunds()), 1, "round %d", r)
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// raceRounds is how many rounds a race test runs: BILLING_RACE_ROUNDS, or def.
func raceRounds(t *testing.T, def int) int {
	return envInt(t, "BILLING_RACE_ROUNDS", def)
}

// gate holds goroutines at one gate so that the calls they make run at once (the race
// tests' way of making commands meet).
type gate struct {
	start chan struct{}
	wg    sync.WaitGroup
}

// newGate returns a closed gate.
func newGate() *gate { return &gate{start: make(chan struct{})} }

// run starts a goroutine that calls f once the gate opens.
func (g *gate) run(f func()) { g.wg.Go(func() { <-g.start; f() }) }

// open releases every goroutine run started and waits for them all.
func (g *gate) open() {
	close(g.start)
	g.wg.Wait()
}
