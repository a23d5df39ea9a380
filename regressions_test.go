package billing_test

// Regression tests for the issue "money moves that never reach the books, and rules the
// charge path breaks". Each test states a rule and asserts it; on the code the issue was
// filed against every one of them fails, for the reason its comment names. The fake
// gateway's own records (Charges, ChargesFor, Refunds, Calls) are the independent truth;
// the ledger (Books) is what the engine believes.
//
// The money invariant, where it fits: the ledger's provider cash balance ("provider:RUB")
// equals what the provider holds for us: the sum of its succeeded charges minus the sum of
// its succeeded refunds.

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// booksAt is an instant after everything a test posts: Balance counts every entry up to it.
var booksAt = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// providerHolds is what the gateway holds for us in RUB: succeeded charges minus succeeded
// refunds, in kopecks.
func providerHolds(gw *billingtest.Gateway) int64 {
	var held int64
	for _, c := range gw.Charges() {
		held += c.Amount
	}
	for _, r := range gw.Refunds() {
		held -= r.Amount
	}
	return held
}

// requireBooksMatchProvider asserts the money invariant: ledger provider:RUB == gateway
// charges − gateway refunds.
func requireBooksMatchProvider(t *testing.T, e *billing.Engine, gw *billingtest.Gateway, msg string) {
	t.Helper()
	bal, err := e.Ledger().Balance(context.Background(), "provider:RUB", booksAt)
	require.NoError(t, err)
	require.Equal(t, providerHolds(gw), bal.Net(),
		"%s: ledger provider:RUB must equal the provider's charges − refunds (gateway charges %d, refunds %d)",
		msg, len(gw.Charges()), len(gw.Refunds()))
}

// requireRefundedAtProvider asserts that every succeeded charge of subscription subID's
// period was refunded in full at the provider.
func requireRefundedAtProvider(t *testing.T, gw *billingtest.Gateway, subID string, period int) {
	t.Helper()
	refunded := map[string]int64{}
	for _, r := range gw.Refunds() {
		refunded[r.ProviderPaymentID] += r.Amount
	}
	charges := gw.ChargesFor(subID, period)
	require.NotEmpty(t, charges)
	for _, c := range charges {
		require.Equal(t, c.Amount, refunded[c.ProviderPaymentID], "charge %s must be refunded to the customer", c.ProviderPaymentID)
	}
}

// regRunFor works every River job due in the next d of the test clock.
func regRunFor(t *testing.T, b *renewalBundle, d time.Duration) {
	t.Helper()
	_, err := b.runner.RunUntil(context.Background(), b.clock.Now().Add(d))
	require.NoError(t, err)
}

// regSubscribe makes a pending subscription of customer on "pro" paid with token.
func regSubscribe(t *testing.T, b *renewalBundle, customer, token string) subscription.Subscription {
	t.Helper()
	sub, err := b.engine.Subscribe(context.Background(), billing.SubscribeParams{
		CustomerID: customer, TariffCode: "pro", PaymentMethod: token, IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	return sub
}

// regPendingCheckout makes customer's subscription paying with token whose first charge the
// provider answered "pending": the checkout waits for the provider. It returns the
// subscription and the pending attempt.
func regPendingCheckout(t *testing.T, b *renewalBundle, customer, token string) (subscription.Subscription, payment.Attempt) {
	t.Helper()
	b.gateway.Script(token, billingtest.Pending)
	sub := regSubscribe(t, b, customer, token)
	res, err := b.engine.ChargeFirstPayment(context.Background(), sub.ID)
	require.NoError(t, err)
	require.Equal(t, payment.StatePending, res.Attempt.State)
	return sub, res.Attempt
}

// regAttempts returns the subscription's charge attempts.
func regAttempts(t *testing.T, b *renewalBundle, subID string) []payment.Attempt {
	t.Helper()
	atts, err := b.engine.AttemptList(context.Background(), subID)
	require.NoError(t, err)
	return atts
}

var regOperator = subscription.AdminAction{Actor: "admin:1", Reason: "regression test"}

// TestRegression01AbandonedCheckoutNotChargedLater: a checkout the host gave up on
// (FailFirstPayment) is never charged afterwards (TERMS 3.4: paying at checkout is the
// consent to charges; an abandoned checkout gave none). Today ReconcilePayments finds the timed-out key
// unknown at the provider, turns the attempt back to created, and the next run charges it.
func TestRegression01AbandonedCheckoutNotChargedLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	b.gateway.Script("tok-1", billingtest.TimeoutBeforeCharge)
	sub := regSubscribe(t, b, "c1", "tok-1")
	res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, payment.StateUnknown, res.Attempt.State)
	_, err = b.engine.FailFirstPayment(ctx, sub.ID, "customer left the checkout")
	require.NoError(t, err)

	for range 3 { // the reconciliation job, every 10 minutes
		b.clock.Advance(10 * time.Minute)
		_, _ = b.engine.ReconcilePayments(ctx)
	}
	regRunFor(t, b, time.Hour)

	require.Empty(t, b.charged(sub.ID, 1), "an abandoned checkout is never charged")
	require.Equal(t, 1, b.gateway.Calls().Charge, "no Charge call after the checkout ended")
}

// TestRegression01bPendingCheckoutPaidAfterAbandonIsBookedAndRefunded: a pending checkout
// ended by FailFirstPayment whose charge then succeeds (the provider's webhook) is money we
// hold: it reaches the books (as owed back) and is refunded to the customer. Today the
// webhook is accepted and the money is neither booked nor refunded.
func TestRegression01bPendingCheckoutPaidAfterAbandonIsBookedAndRefunded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub, pending := regPendingCheckout(t, b, "c1", "tok-1")
	_, err := b.engine.FailFirstPayment(ctx, sub.ID, "customer left the checkout")
	require.NoError(t, err)

	b.clock.Advance(5 * time.Minute)
	ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	t.Logf("HandlePaymentWebhook: %v", err)
	regRunFor(t, b, 24*time.Hour)

	require.Len(t, b.gateway.ChargesFor(sub.ID, 1), 1, "setup: the provider took the money")
	requireBooksMatchProvider(t, b.engine, b.gateway, "a charge that landed on an ended checkout")
	requireRefundedAtProvider(t, b.gateway, sub.ID, 1)
}

// renewalUnknownThenTerminated makes customer's subscription whose renewal charge moved
// money at the provider but timed out (attempt unknown), then an operator terminates it.
func renewalUnknownThenTerminated(t *testing.T, b *renewalBundle, customer, token string) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub := b.checkout(t, customer, token)
	require.Equal(t, subscription.StatusActive, sub.Status)
	b.gateway.Script(token, billingtest.TimeoutAfterSuccess)
	b.clock.Set(sub.Current.End)
	require.NoError(t, b.runner.RunDue(ctx))
	atts := regAttempts(t, b, sub.ID)
	require.Equal(t, payment.StateUnknown, atts[len(atts)-1].State, "setup: the renewal's outcome is unknown")
	require.Len(t, b.gateway.ChargesFor(sub.ID, 2), 1, "setup: the provider took the renewal")
	_, err := b.engine.Terminate(ctx, sub.ID, regOperator)
	require.NoError(t, err)
	return sub
}

// TestRegression02TerminatedSubscriptionChargeReachesBooks: money the provider took for a
// renewal is in the books even when the operator terminated the subscription before the
// outcome was known (TERMS 2.1.2 ends access, not our duty to account for money): booked as
// owed back and refunded. Today settle's Renew refuses the terminated subscription, the
// transaction rolls back and the attempt stays open with the money outside the books.
func TestRegression02TerminatedSubscriptionChargeReachesBooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := renewalUnknownThenTerminated(t, b, "c1", "tok-1")

	b.clock.Advance(5 * time.Minute)
	_, err := b.engine.ReconcilePayments(ctx)
	t.Logf("ReconcilePayments: %v", err)
	regRunFor(t, b, 24*time.Hour)

	requireBooksMatchProvider(t, b.engine, b.gateway, "a renewal charge of a terminated subscription")
	requireRefundedAtProvider(t, b.gateway, sub.ID, 2)
}

// TestRegression02bOneFailingAttemptDoesNotBlockReconciliation: reconciliation settles every
// open attempt it can; one that fails never blocks the others. Today ReconcilePayments
// reads attempts oldest first and returns at the first error, so customer c2's unknown
// checkout (the money taken) is never settled while c1's terminated renewal fails first.
func TestRegression02bOneFailingAttemptDoesNotBlockReconciliation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	renewalUnknownThenTerminated(t, b, "c1", "tok-1")

	b.clock.Advance(time.Second) // c2's attempt is younger than c1's
	b.gateway.Script("tok-2", billingtest.TimeoutAfterSuccess)
	sub2 := regSubscribe(t, b, "c2", "tok-2")
	res, err := b.engine.ChargeFirstPayment(ctx, sub2.ID)
	require.NoError(t, err)
	require.Equal(t, payment.StateUnknown, res.Attempt.State, "setup: c2's checkout outcome is unknown")

	for range 3 {
		b.clock.Advance(10 * time.Minute)
		_, err = b.engine.ReconcilePayments(ctx)
		t.Logf("ReconcilePayments: %v", err)
	}

	atts := regAttempts(t, b, sub2.ID)
	require.Equal(t, payment.StateSucceeded, atts[0].State, "c2's attempt is settled by reconciliation")
	require.Equal(t, subscription.StatusActive, b.get(t, sub2.ID).Status, "c2 paid: access (TERMS 3.3)")
}

// TestRegression03LateRenewalIsRecordedWithAFullPeriod: a successful renewal charge always
// reaches the books, and the customer gets a full period of access after paying (TERMS 3.5).
// Today a 1-day tariff soft-declined at its end and paid on the dunning retry a day later
// anchors the new period's end at the retry instant (already passed); Renew refuses it, the
// settle rolls back, and the customer is charged with nothing recorded.
func TestRegression03LateRenewalIsRecordedWithAFullPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "daily", Name: "daily", Price: decimal.NewFromInt(100),
		Period: tariff.Period{Count: 1, Unit: tariff.Day}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 50}}})
	require.NoError(t, err)
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "daily", PaymentMethod: "tok-1", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	end := res.Subscription.Current.End
	b.gateway.Script("tok-1", billingtest.SoftDecline)

	_, err = b.runner.RunUntil(ctx, end.Add(24*time.Hour+time.Hour)) // the end, then the retry a day later
	require.NoError(t, err)

	charges := b.gateway.ChargesFor(sub.ID, 2)
	require.Len(t, charges, 1, "setup: the dunning retry charged period 2")
	requireBooksMatchProvider(t, b.engine, b.gateway, "a renewal paid on its dunning retry")
	got := b.get(t, sub.ID)
	require.Equal(t, 2, got.Current.Number, "period 2 started")
	paidAt := end.Add(24 * time.Hour)
	require.GreaterOrEqual(t, got.Current.End.Sub(paidAt), 24*time.Hour, "a full day of access after paying")
}

// holdGateway is the fake gateway with one Charge call that can be held in flight: it
// stands for a request that reached the provider only after another run gave up on it.
type holdGateway struct {
	*billingtest.Gateway
	mu      sync.Mutex
	hold    chan struct{}
	entered chan struct{}
}

// holdNext makes the next Charge wait, after closing entered, until release is closed.
func (g *holdGateway) holdNext() (entered chan struct{}, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entered, g.hold = make(chan struct{}), make(chan struct{})
	return g.entered, g.hold
}

func (g *holdGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	g.mu.Lock()
	entered, hold := g.entered, g.hold
	g.entered, g.hold = nil, nil
	g.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	return g.Gateway.Charge(ctx, req)
}

// TestRegression04ChargeLandingOnCanceledAttemptIsBookedAndRefunded: a charge the provider
// reports after the engine canceled its attempt is money we hold: it reaches the books (as
// owed back) and is refunded (law of 1 March 2026: consent was withdrawn, so it is not
// ours). Today settle and the webhook only log it ("refund it at the provider").
func TestRegression04ChargeLandingOnCanceledAttemptIsBookedAndRefunded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := &holdGateway{Gateway: billingtest.NewGateway()}
	tb := setupWith(t, func(c *billing.Config) { c.Gateway = gw })
	b := &renewalBundle{testBundle: tb, gateway: gw.Gateway, runner: tb.withRiver(t)}
	b.publish(t, "pro", "990", "generations", 500)
	sub := b.checkout(t, "c1", "tok-1")

	// The renewal job calls the gateway; its request is slow to reach the provider.
	entered, release := gw.holdNext()
	b.clock.Set(sub.Current.End)
	jobDone := make(chan error, 1)
	go func() { jobDone <- b.runner.RunDue(ctx) }()
	<-entered

	// Meanwhile the customer withdraws consent, and more than chargeInFlightFor later the
	// reconciliation job finds the attempt open, the key unknown, and cancels it.
	require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"))
	b.clock.Advance(2 * time.Minute)
	_, err := b.engine.ReconcilePayments(ctx)
	require.NoError(t, err)
	atts := regAttempts(t, b, sub.ID)
	require.Equal(t, payment.StateCanceled, atts[len(atts)-1].State, "setup: the attempt was canceled")

	// The request lands: the provider charges, and sends its webhook.
	close(release)
	require.NoError(t, <-jobDone)
	charges := b.gateway.ChargesFor(sub.ID, 2)
	require.Len(t, charges, 1, "setup: the provider took the money after the cancel")
	ev, err := b.gateway.Confirm(charges[0].ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	t.Logf("HandlePaymentWebhook: %v", err)
	regRunFor(t, b, 24*time.Hour)

	requireBooksMatchProvider(t, b.engine, b.gateway, "a charge that landed on a canceled attempt")
	requireRefundedAtProvider(t, b.gateway, sub.ID, 2)
}

// TestRegression05RefundAfterTerminateIsRecorded: a refund the provider paid is in the
// ledger and its request is refunded (TERMS 3.7, 3.8), also when the operator terminated the
// subscription between verifying and executing it. Today subscription.Refund refuses the
// terminated subscription: the request stays executing and the ledger is never reversed.
func TestRegression05RefundAfterTerminateIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rb, sub := setupRefunds(t)
	req := rb.request(t, sub.ID, rb.clock.Now(), "refund-1")
	rb.verify(t, req.ID)
	_, err := rb.engine.Terminate(ctx, sub.ID, regOperator)
	require.NoError(t, err)

	_, err = rb.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
	t.Logf("ExecuteRefund: %v", err)
	_, err = rb.runner.RunUntil(ctx, rb.clock.Now().Add(24*time.Hour)) // the refund retry job
	require.NoError(t, err)

	require.Len(t, rb.gateway.Refunds(), 1, "setup: the provider paid the refund")
	requireBooksMatchProvider(t, rb.engine, rb.gateway, "a refund paid after Terminate")
	got, err := rb.engine.RefundRequestGet(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateRefunded, got.State, "the paid refund's request is refunded")
}

// TestRegression06ExtendedPeriodRenewsForAFullPeriod: an operator's extension (TERMS 2.1.4,
// 2.1.5) is a gift on top of the paid period; the next period paid in full is a full period
// (TERMS 3.5: the price buys one tariff period). Today period 1 extended by 19 days renews
// on the anchor's schedule: period 2 runs 11 days for the full month's price.
func TestRegression06ExtendedPeriodRenewsForAFullPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	newEnd := sub.Current.End.AddDate(0, 0, 19)
	_, err := b.engine.ExtendPeriod(ctx, sub.ID, newEnd, regOperator)
	require.NoError(t, err)

	_, err = b.runner.RunUntil(ctx, newEnd.Add(time.Hour))
	require.NoError(t, err)

	got := b.get(t, sub.ID)
	require.Equal(t, 2, got.Current.Number, "setup: renewed at the extended end")
	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2), "setup: period 2 charged in full")
	fullEnd := got.Current.Terms.Period.End(got.Current.Start, 1, b.moscow)
	require.False(t, got.Current.End.Before(fullEnd), "period 2 is a full month: %s → %s, want an end at or after %s",
		got.Current.Start.In(b.moscow), got.Current.End.In(b.moscow), fullEnd.In(b.moscow))
}

// TestRegression07ResumedAfterPeriodEndRenewsOrEnds: a subscription suspended across its
// period end (TERMS 2.1.2) has a way forward after Resume: it renews (or ends). Today the
// renewal job completes with nothing to do while suspended, and after Resume the sweeper's
// new job is dropped as a duplicate of the completed one (River's ByArgs uniqueness), so it
// stays active without access and with nothing scheduled. (Only River's job cleaner, once
// the completed job is past its retention, 24 hours by default, lets a later sweep
// schedule it: until then the customer has no access and no renewal.)
func TestRegression07ResumedAfterPeriodEndRenewsOrEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	end := sub.Current.End
	b.clock.Set(end.Add(-24 * time.Hour))
	_, err := b.engine.Suspend(ctx, sub.ID, regOperator)
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, end.Add(time.Hour))
	require.NoError(t, err)
	_, err = b.engine.Resume(ctx, sub.ID, regOperator)
	require.NoError(t, err)

	n, err := b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	t.Logf("SweepDueRenewals enqueued %d", n)
	regRunFor(t, b, time.Hour)

	got := b.get(t, sub.ID)
	renewed := got.Current.Number == 2
	require.True(t, renewed || got.Status.Final(),
		"after Resume it renews or ends; got status %s, period %d ending %s", got.Status, got.Current.Number, got.Current.End.In(b.moscow))
}

// TestRegression08ForgedWebhookChangesNothing: access needs a real success (TERMS 3.3); a
// webhook whose content the gateway does not confirm changes nothing and returns an error.
// On the old main HandlePaymentWebhook trusted the body: a forged "succeeded" carrying the
// attempt's key (derived from the subscription ID) activated a subscription the provider
// never charged. Now the key is unguessable and the body is confirmed with the gateway: both a
// forgery with the old derived key and one with the real key (say it leaked) are refused.
func TestRegression08ForgedWebhookChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	b.gateway.Script("tok-1", billingtest.Pending)
	sub := regSubscribe(t, b, "c1", "tok-1")
	_, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)

	require.Empty(t, b.charged(sub.ID, 1), "setup: the provider has no success")

	derived := "checkout:" + sub.ID + ":1:1" // the key the old code derived
	_, err = b.engine.HandlePaymentWebhook(ctx, payment.WebhookEvent{Kind: payment.KindCharge, IdempotencyKey: derived,
		Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB"})
	require.ErrorIs(t, err, billing.ErrUnknownPayment, "a derived key names no attempt")
	require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status, "no access without a real success")

	atts := regAttempts(t, b, sub.ID)
	require.Len(t, atts, 1)
	for _, forged := range []payment.WebhookEvent{
		{Kind: payment.KindCharge, IdempotencyKey: atts[0].IdempotencyKey, Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB"},
		{Kind: payment.KindCharge, ProviderPaymentID: atts[0].ProviderPaymentID, Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB"},
		{Kind: payment.KindCharge, ProviderPaymentID: atts[0].ProviderPaymentID, Outcome: payment.OutcomeHardDeclined},
	} {
		_, err = b.engine.HandlePaymentWebhook(ctx, forged)
		require.ErrorIs(t, err, billing.ErrWebhookNotConfirmed, "a webhook the gateway does not confirm is refused: %+v", forged)
		require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status, "nothing changed")
		require.Equal(t, payment.StatePending, regAttempts(t, b, sub.ID)[0].State, "nothing changed")
	}

	// The genuine webhook, once the provider settled the charge, activates.
	ev, err := b.gateway.Confirm(atts[0].ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusActive, b.get(t, sub.ID).Status)
}

// TestRegression08bAttemptKeyNotDerivableFromSubscriptionID: the gateway key of a charge
// attempt cannot be computed from the subscription ID (which the customer sees), so a
// forged webhook cannot name a real attempt. On the old main the key was
// "checkout:<subscription>:<period>:<attempt>".
func TestRegression08bAttemptKeyNotDerivableFromSubscriptionID(t *testing.T) {
	t.Parallel()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	other := b.checkout(t, "c2", "tok-2")
	atts := regAttempts(t, b, sub.ID)
	require.Len(t, atts, 1)
	key := atts[0].IdempotencyKey
	require.NotEqual(t, "checkout:"+sub.ID+":1:1", key, "the attempt key is not derivable from the subscription ID")
	require.NotContains(t, key, sub.ID)
	require.LessOrEqual(t, len(key), payment.MaxKeyLen, "fits the providers' limit")
	require.GreaterOrEqual(t, len(key), len("checkout_")+32, "carries 128 bits of an HMAC")
	require.NotEqual(t, key[len("checkout_"):], regAttempts(t, b, other.ID)[0].IdempotencyKey[len("checkout_"):])
}

// TestRegression09CustomerCannotPayWithAnothersCard: a saved payment method belongs to the
// customer who saved it (TERMS 1.3, 3.4: consent is the card holder's). Today customer c2
// subscribes with c1's token "tok-A" and is charged on it.
func TestRegression09CustomerCannotPayWithAnothersCard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	subA := b.checkout(t, "c1", "tok-A")
	require.Equal(t, subscription.StatusActive, subA.Status)

	subB, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", PaymentMethod: "tok-A", IdempotencyKey: "sub-c2"})
	if err == nil {
		_, err = b.engine.ChargeFirstPayment(ctx, subB.ID)
	}

	onAsCard := b.gateway.SuccessfulCharges(func(r payment.ChargeParams) bool {
		return r.PaymentMethod == "tok-A" && r.CustomerID == "c2"
	})
	require.Zero(t, onAsCard, "no charge on c1's card for c2")
	require.Error(t, err, "c2's Subscribe (or charge) with c1's token is refused")
}

// TestRegression09bWithdrawConsentTouchesOnlyTheNamedCustomer: withdrawing consent on a
// token touches only the subscriptions of the customer who withdraws it (law of 1 March
// 2026 is about the card holder's consent). The old API, WithdrawConsent(ctx, token, actor),
// had no customer: anyone who named a token switched off every subscription charged from
// it. Now it is WithdrawConsent(ctx, customerID, token, actor): c2 naming c1's token is
// ErrNotFound and c1's subscription is left alone.
func TestRegression09bWithdrawConsentTouchesOnlyTheNamedCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	subA := b.checkout(t, "c1", "tok-A")
	b.checkout(t, "c2", "tok-B")

	err := b.engine.WithdrawConsent(ctx, "c2", "tok-A", "customer:c2") // c2 names c1's token
	require.ErrorIs(t, err, billing.ErrNotFound, "c2 has no such token")

	got := b.get(t, subA.ID)
	require.True(t, got.AutoRenew, "c1's subscription keeps auto-renew")
	require.Equal(t, "tok-A", got.PaymentMethod, "c1's subscription keeps its card")
	_, err = b.runner.RunUntil(ctx, subA.Current.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []int64{99000}, b.charged(subA.ID, 2), "c1's renewal is charged as agreed")
}

// TestRegression10aLateRenewalChargesPriceInForceAtDueInstant: TERMS 2.1.6: a renewal is
// charged at the price in force when it fell due (the period end), also when its job runs
// late. Today the job that runs after a price rise took effect (after the period end)
// charges the new price.
func TestRegression10aLateRenewalChargesPriceInForceAtDueInstant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	end := sub.Current.End
	b.clock.Advance(10 * 24 * time.Hour)
	_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "pro", Name: "pro", Price: decimal.NewFromInt(1290),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}},
		EffectiveAt: end.Add(time.Hour)})
	require.NoError(t, err)

	b.clock.Set(end.Add(2 * time.Hour)) // the renewal job runs two hours late
	require.NoError(t, b.runner.RunDue(ctx))

	require.Equal(t, []int64{99000}, b.charged(sub.ID, 2), "charged the 990 RUB in force at the period end")
}

// TestRegression10bAutoRenewOffStopsDunningRetry: TERMS 3.6: auto-renew off means no
// further charge. Today turning it off while a soft-declined renewal waits for its dunning
// retry does not stop the retry: the customer is charged.
func TestRegression10bAutoRenewOffStopsDunningRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	b.gateway.Script("tok-1", billingtest.SoftDecline)
	_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status, "setup: waiting for the dunning retry")

	_, err = b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(7*24*time.Hour))
	require.NoError(t, err)

	require.Empty(t, b.charged(sub.ID, 2), "no charge after auto-renew off")
}

// TestRegression10cConsumeHugeQuantityIsTypedError: a quantity no limit can hold is refused
// with a typed error (ErrInvalidInput or ErrLimitExceeded), nothing counted (TERMS 3.1).
// Today Consume(..., math.MaxInt64) returns PostgreSQL's raw "bigint out of range" once
// the meter has counted anything (used + quantity overflows); on an unused meter it is
// already refused with ErrLimitExceeded.
func TestRegression10cConsumeHugeQuantityIsTypedError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	typed := func(err error) bool {
		return errors.Is(err, billing.ErrInvalidInput) || errors.Is(err, billing.ErrLimitExceeded)
	}

	_, err := b.engine.Consume(ctx, sub.ID, "generations", math.MaxInt64, "use-0")
	require.True(t, typed(err), "on an unused meter: a typed error, got %v", err)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "use-1")
	require.NoError(t, err)

	_, err = b.engine.Consume(ctx, sub.ID, "generations", math.MaxInt64, "use-2")
	require.True(t, typed(err), "after 1 used: a typed error, got %v", err)
	require.Equal(t, int64(1), b.get(t, sub.ID).Current.Usage["generations"].Used, "nothing more counted")
}

// TestRegression10dRenewPeriodErrorsAreTyped: the renewal job's work (renewPeriod, public
// when this was found; its errors land in River's job rows and the logs) answers with
// the public sentinels: an unknown subscription matches billing.ErrNotFound, a malformed ID
// billing.ErrInvalidInput. Today it returns the internal store error and, for a malformed
// ID, PostgreSQL's raw error.
func TestRegression10dRenewPeriodErrorsAreTyped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)

	t.Run("unknown ID", func(t *testing.T) {
		err := billing.RenewPeriod(b.engine, ctx, "0190a3c4-0000-7000-8000-000000000000", 1)
		require.ErrorIs(t, err, billing.ErrNotFound, "unknown subscription")
	})
	t.Run("malformed ID", func(t *testing.T) {
		err := billing.RenewPeriod(b.engine, ctx, "not-a-uuid", 1)
		require.ErrorIs(t, err, billing.ErrInvalidInput, "malformed subscription ID")
	})
}
