package billing_test

// Tests found by an adversarial review of the money-safety change (each failed on the code
// under review): ways forward after a suspension across a renewal, one provider payment booked
// once, and commands racing the charge protocol.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// canceledRenewal makes customer's active subscription whose renewal attempt for
// period 2 was sent, never reached the provider, and was then canceled by the charge
// protocol (resend) because the reason to charge was gone at that moment (stop makes it so).
func canceledRenewal(t *testing.T, b *renewalBundle, customer, token string,
	stop func(sub subscription.Subscription)) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub := b.checkout(t, customer, token)
	require.Equal(t, subscription.StatusActive, sub.Status)
	b.gateway.Script(token, billingtest.TimeoutBeforeCharge)
	b.clock.Set(sub.Current.End)
	_ = b.runner.RunDue(ctx) // the renewal's Charge times out before the provider: unknown
	atts := regAttempts(t, b, sub.ID)
	require.Equal(t, payment.StateUnknown, atts[len(atts)-1].State, "setup: renewal outcome unknown")
	stop(sub)
	for range 4 { // reconciliation: unknown -> created (not found) -> canceled (no reason now)
		b.clock.Advance(2 * time.Minute)
		_, _ = b.engine.ReconcilePayments(ctx)
	}
	atts = regAttempts(t, b, sub.ID)
	require.Equal(t, payment.StateCanceled, atts[len(atts)-1].State, "setup: the renewal attempt was canceled")
	require.Empty(t, b.gateway.ChargesFor(sub.ID, 2), "setup: nothing was charged")
	return sub
}

// TestResumeAfterACanceledRenewalRenews: a subscription suspended while its
// renewal's outcome was unknown (the charge never reached the provider) gets that attempt
// canceled; after Resume the renewal must charge (or end the subscription). Before the fix the
// canceled attempt is the period's latest, prepareAttempt "continues" it and does nothing
// forever: the subscription stays active past its end with no charge and no end.
func TestResumeAfterACanceledRenewalRenews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := canceledRenewal(t, b, "c1", "tok-1", func(sub subscription.Subscription) {
		_, err := b.engine.Suspend(ctx, sub.ID, regOperator)
		require.NoError(t, err)
	})
	_, err := b.engine.Resume(ctx, sub.ID, regOperator)
	require.NoError(t, err)
	for range 3 { // jobs, sweeper and reconciliation over a day
		regRunFor(t, b, time.Hour)
		_, _ = b.engine.SweepDueRenewals(ctx)
		_, _ = b.engine.ReconcilePayments(ctx)
		b.clock.Advance(8 * time.Hour)
	}
	regRunFor(t, b, time.Hour)
	got := b.get(t, sub.ID)
	acc, err := b.engine.Access(ctx, sub.ID)
	require.NoError(t, err)
	n, err := b.engine.SweepDueRenewals(ctx)
	t.Logf("access: %+v; a sweep now enqueues %d renewal job(s) (err %v)", acc, n, err)
	renewed := got.Current != nil && got.Current.Number == 2
	require.True(t, renewed || got.Status.Final(),
		"after Resume the subscription renews or ends; got status %s, period %d ended %s ago, provider charges for period 2: %d, attempts %v",
		got.Status, got.Current.Number, b.clock.Now().Sub(got.Current.End), len(b.gateway.ChargesFor(sub.ID, 2)), regAttempts(t, b, sub.ID))
}

// TestResumeAfterAnUnappliedRenewalRenews: the renewal charge is pending at the
// period end; an operator suspends the subscription; the provider confirms the charge, which
// the engine (rightly) books as unapplied and refunds. After Resume the subscription must
// renew (a new charge) or end. Before the fix the period's latest attempt is that succeeded
// (unapplied) attempt: prepareAttempt continues it and nothing ever happens again.
func TestResumeAfterAnUnappliedRenewalRenews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	b.gateway.Script("tok-1", billingtest.Pending)
	b.clock.Set(sub.Current.End)
	require.NoError(t, b.runner.RunDue(ctx))
	atts := regAttempts(t, b, sub.ID)
	pending := atts[len(atts)-1]
	require.Equal(t, payment.StatePending, pending.State, "setup: the renewal is pending")
	_, err := b.engine.Suspend(ctx, sub.ID, regOperator)
	require.NoError(t, err)
	b.clock.Advance(10 * time.Minute)
	ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)
	regRunFor(t, b, time.Hour) // the unapplied payment's refund
	require.Len(t, b.gateway.Refunds(), 1, "setup: the charge that landed while suspended was refunded")

	_, err = b.engine.Resume(ctx, sub.ID, regOperator)
	require.NoError(t, err)
	for range 3 {
		regRunFor(t, b, time.Hour)
		_, _ = b.engine.SweepDueRenewals(ctx)
		_, _ = b.engine.ReconcilePayments(ctx)
		b.clock.Advance(8 * time.Hour)
	}
	regRunFor(t, b, time.Hour)
	got := b.get(t, sub.ID)
	renewed := got.Current != nil && got.Current.Number == 2
	require.True(t, renewed || got.Status.Final(),
		"after Resume the subscription renews or ends; got status %s, period %d ended %s ago; provider charges for period 2: %d, refunds %d",
		got.Status, got.Current.Number, b.clock.Now().Sub(got.Current.End), len(b.gateway.ChargesFor(sub.ID, 2)), len(b.gateway.Refunds()))
	requireBooksMatchProvider(t, b.engine, b.gateway, "after resume")
	if renewed { // the customer paid period 2 once: the charge that landed while suspended went back in full
		charges, refunds := b.gateway.ChargesFor(sub.ID, 2), b.gateway.Refunds()
		require.Len(t, charges, 2, "the charge that landed while suspended, and the one after Resume")
		require.Len(t, refunds, 1)
		require.Equal(t, pending.ProviderPaymentID, refunds[0].ProviderPaymentID)
		require.Equal(t, charges[0].Amount, refunds[0].Amount, "refunded in full")
	}
}

// TestHostConfirmOfTheEnginesChargeBooksItOnce: the host confirms (ConfirmFirstPayment)
// the very provider payment the engine's own pending checkout attempt made (it saw the
// provider's notification first). The provider holds one payment; the engine books it
// twice (payment:<ppid> and unapplied:<attempt>) and refunds it as "unapplied" while the
// subscription stays active with its period paid: the customer gets the period for free
// and the books disagree with the provider.
func TestHostConfirmOfTheEnginesChargeBooksItOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub, pending := regPendingCheckout(t, b, "c1", "tok-1")
	ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{ProviderPaymentID: pending.ProviderPaymentID,
		Amount: decimal.RequireFromString("990"), Currency: "RUB", PaymentMethod: "tok-1"})
	require.NoError(t, err, "the host's confirmation of the provider's payment")
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	t.Logf("HandlePaymentWebhook: %v", err)
	regRunFor(t, b, 24*time.Hour)
	got := b.get(t, sub.ID)
	t.Logf("status %s; provider charges %d, refunds %d", got.Status, len(b.gateway.Charges()), len(b.gateway.Refunds()))
	require.Len(t, b.gateway.Charges(), 1, "setup: one payment at the provider")
	requireBooksMatchProvider(t, b.engine, b.gateway, "one payment confirmed by the host and by the webhook")
	require.Empty(t, b.gateway.Refunds(), "the period is paid by that one payment: nothing to refund (status %s)", got.Status)
}

// TestCheckoutLandingAfterWithdrawalSavesNoEmptyToken: consent is withdrawn while the
// checkout charge is pending (WithdrawConsent clears the subscription's token); the charge
// then succeeds and is applied. applyPaid calls SaveConsent with the now empty token, which
// stores a payment method "" bound to the customer with consent given.
func TestCheckoutLandingAfterWithdrawalSavesNoEmptyToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub, pending := regPendingCheckout(t, b, "c1", "tok-1")
	require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer"))
	ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)
	got := b.get(t, sub.ID)
	t.Logf("status %s, payment method %q", got.Status, got.PaymentMethod)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM billing_payment_methods WHERE token = ''`).Scan(&n))
	require.Zero(t, n, "no payment method with an empty token is ever stored")
}

// TestConcurrentCheckoutWebhookWithdrawReconcile runs, for many pending checkouts at once,
// the confirming webhook, WithdrawConsent, ChargeFirstPayment again and reconciliation side
// by side, and checks that no command fails for a reason other than a rule (deadlock, unique
// violation) and that the books match the provider.
func TestConcurrentCheckoutWebhookWithdrawReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	const n = 12
	type item struct {
		sub  subscription.Subscription
		ppid string
	}
	items := make([]item, n)
	for i := range n {
		tok := fmt.Sprintf("tok-%d", i)
		b.gateway.Script(tok, billingtest.Pending)
		sub := regSubscribe(t, b, fmt.Sprintf("c%d", i), tok)
		res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
		require.NoError(t, err)
		items[i] = item{sub, res.Attempt.ProviderPaymentID}
	}
	b.clock.Advance(2 * time.Minute)
	var mu sync.Mutex
	var bad []string
	note := func(what string, err error) {
		if err == nil {
			return
		}
		s := err.Error()
		if strings.Contains(s, "deadlock") || strings.Contains(s, "23505") || strings.Contains(s, "duplicate key") ||
			strings.Contains(s, "40001") || strings.Contains(s, "transaction failed") {
			mu.Lock()
			bad = append(bad, what+": "+s)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i, it := range items {
		ev, err := b.gateway.Confirm(it.ppid, payment.OutcomeSucceeded)
		require.NoError(t, err)
		wg.Add(4)
		go func() { defer wg.Done(); _, err := b.engine.HandlePaymentWebhook(ctx, ev); note("webhook", err) }()
		go func() {
			defer wg.Done()
			note("withdraw", b.engine.WithdrawConsent(ctx, fmt.Sprintf("c%d", i), fmt.Sprintf("tok-%d", i), "customer"))
		}()
		go func() { defer wg.Done(); _, err := b.engine.ChargeFirstPayment(ctx, it.sub.ID); note("charge", err) }()
		go func() { defer wg.Done(); _, err := b.engine.ReconcilePayments(ctx); note("reconcile", err) }()
	}
	wg.Wait()
	regRunFor(t, b, 48*time.Hour)
	_, _ = b.engine.ReconcilePayments(ctx)
	regRunFor(t, b, 48*time.Hour)
	require.Empty(t, bad, "commands failed on infrastructure errors")
	requireBooksMatchProvider(t, b.engine, b.gateway, "after the race")
}

// TestConcurrentRenewalWebhookAdminReconcile: many pending renewals; the confirming
// webhook, an operator's Suspend/Terminate/SetAutoRenew(off), the renewal job and
// reconciliation run side by side. No infrastructure error; books match the provider.
func TestConcurrentRenewalWebhookAdminReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	const n = 12
	subs := make([]subscription.Subscription, n)
	for i := range n {
		subs[i] = b.checkout(t, fmt.Sprintf("c%d", i), fmt.Sprintf("tok-%d", i))
		b.gateway.Script(fmt.Sprintf("tok-%d", i), billingtest.Pending)
	}
	b.clock.Set(subs[0].Current.End.Add(time.Second))
	require.NoError(t, b.runner.RunDue(ctx))
	b.clock.Advance(2 * time.Minute)
	var mu sync.Mutex
	var bad []string
	note := func(what string, err error) {
		if err == nil {
			return
		}
		s := err.Error()
		if strings.Contains(s, "deadlock") || strings.Contains(s, "duplicate key") || strings.Contains(s, "transaction failed") {
			mu.Lock()
			bad = append(bad, what+": "+s)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i, sub := range subs {
		atts := regAttempts(t, b, sub.ID)
		last := atts[len(atts)-1]
		require.Equal(t, payment.StatePending, last.State)
		ev, err := b.gateway.Confirm(last.ProviderPaymentID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		wg.Add(4)
		go func() { defer wg.Done(); _, err := b.engine.HandlePaymentWebhook(ctx, ev); note("webhook", err) }()
		go func() {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0:
				_, err = b.engine.Suspend(ctx, sub.ID, regOperator)
			case 1:
				_, err = b.engine.Terminate(ctx, sub.ID, regOperator)
			case 2:
				_, err = b.engine.SetAutoRenew(ctx, sub.ID, false, "customer")
			}
			note("admin", err)
		}()
		go func() { defer wg.Done(); note("renew", billing.RenewPeriod(b.engine, ctx, sub.ID, 1)) }()
		go func() { defer wg.Done(); _, err := b.engine.ReconcilePayments(ctx); note("reconcile", err) }()
	}
	wg.Wait()
	regRunFor(t, b, 48*time.Hour)
	require.Empty(t, bad, "commands failed on infrastructure errors")
	requireBooksMatchProvider(t, b.engine, b.gateway, "after the race")
}

// afterLookupGateway is holdGateway whose Lookup can run a hook once the provider answered.
type afterLookupGateway struct {
	*holdGateway
	mu    sync.Mutex
	after func()
}

func (g *afterLookupGateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	res, err := g.holdGateway.Lookup(ctx, req)
	g.mu.Lock()
	after := g.after
	g.after = nil
	g.mu.Unlock()
	if after != nil {
		after()
	}
	return res, err
}

// TestRenewalRunThatFindsAnUnknownOutcomeFailsSoItsJobRunsAgain: two runs of one renewal
// (the job and a duplicate). Run A marks the attempt sent and calls the gateway, slowly; run
// B finds the attempt, asks the provider (never seen), and before B decides, A's call times
// out and A records the outcome as unknown. B must fail, so that River runs its job again
// and the period is charged; before the fix B returned nil, its job completed, and the
// renewal waited for the reconciliation job (found by TestRenewalFaultsProperty in CI).
func TestRenewalRunThatFindsAnUnknownOutcomeFailsSoItsJobRunsAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := &afterLookupGateway{holdGateway: &holdGateway{Gateway: billingtest.NewGateway()}}
	tb := setupWith(t, func(c *billing.Config) { c.Gateway = gw })
	b := &renewalBundle{testBundle: tb, gateway: gw.Gateway, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	sub := b.checkout(t, "c1", "tok-1")
	b.gateway.Script("tok-1", billingtest.TimeoutBeforeCharge)
	b.clock.Set(sub.Current.End)

	entered, release := gw.holdNext()
	aDone := make(chan error, 1)
	go func() { aDone <- billing.RenewPeriod(b.engine, ctx, sub.ID, 1) }()
	<-entered
	var aErr error
	gw.mu.Lock()
	gw.after = func() { close(release); aErr = <-aDone } // A records "unknown" while B decides
	gw.mu.Unlock()
	bErr := billing.RenewPeriod(b.engine, ctx, sub.ID, 1)
	require.Error(t, aErr, "setup: run A's call timed out")
	atts := regAttempts(t, b, sub.ID)
	require.Equal(t, payment.StateUnknown, atts[len(atts)-1].State, "setup: the outcome is unknown")
	require.Error(t, bErr, "a run that leaves the period's charge unsettled fails, so its job runs again")
	require.Empty(t, b.gateway.ChargesFor(sub.ID, 2), "nothing charged yet")
}
