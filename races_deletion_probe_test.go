package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// TestRaceAccountDeletionVsCheckoutPaid: ExecuteAccountDeletion at once with the confirming
// webhook, StartCheckout and ReconcilePayments of the customer's checkout the provider has
// just paid (the method saved on the page). Afterwards: the subscription is final, no access,
// no token of the deleted customer with consent standing or not forgotten, and the books
// equal the provider once the unapplied payment's refund job ran.
func TestRaceAccountDeletionVsCheckoutPaid(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		customer := fmt.Sprintf("c%d", r)
		sub, co := newCheckout(t, b, customer)
		del, err := b.engine.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: customer,
			ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "del-" + customer})
		require.NoError(t, err)
		ev, err := b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSucceeded) // the customer pays
		require.NoError(t, err)
		b.gateway.SetLatency(time.Millisecond)
		gate := newGate()
		run := gate.run
		for g := 0; g < 2; g++ {
			run(func() { _, _ = b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1") })
			run(func() { _, _ = b.engine.HandlePaymentWebhook(ctx, ev) })
		}
		run(func() { _, _ = b.engine.StartCheckout(ctx, sub.ID, returnURL) })
		run(func() { _, _ = b.engine.ReconcilePayments(ctx) })
		gate.open()
		b.gateway.SetLatency(0)
		_, err = b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1") // done, or done now
		require.NoError(t, err)
		_, _ = b.engine.HandlePaymentWebhook(ctx, ev)
		regRunFor(t, b, time.Hour)

		got := b.get(t, sub.ID)
		acc, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		var live int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM billing_payment_methods
			WHERE customer_id = $1 AND (forgotten_at IS NULL OR consent_withdrawn_at IS NULL)`, customer).Scan(&live))
		t.Logf("round %d: subscription %s, access %v, live tokens %d, provider charges %d refunds %d",
			r, got.Status, acc.Granted, live, len(b.gateway.Charges()), len(b.gateway.Refunds()))
		require.True(t, got.Status.Final(), "round %d: a subscription of the deleted customer is %s", r, got.Status)
		require.False(t, acc.Granted, "round %d: access after the account deletion", r)
		require.Zero(t, live, "round %d: a token of the deleted customer is not forgotten", r)
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRaceAccountDeletionVsRenewal: ExecuteAccountDeletion at once with renewal runs of the
// customer's subscription at its period end (the charge in flight when the deletion
// commits, or not yet sent), plus WithdrawConsent on its token. Afterwards: the subscription
// is final, no access, its token forgotten, at most one charge of period 2, and the books
// equal the provider once the unapplied payment's refund job ran (a charge that landed
// after the deletion is refunded).
func TestRaceAccountDeletionVsRenewal(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b, sub := setupDeletions(t)
		del := b.requestDeletion(t, "c1", b.clock.Now(), "del-c1")
		b.clock.Set(sub.Current.End)
		b.gateway.SetLatency(2 * time.Millisecond)
		gate := newGate()
		run := gate.run
		for g := 0; g < 3; g++ {
			run(func() { _ = billing.RenewPeriod(b.engine, ctx, sub.ID, 1) })
		}
		run(func() { _, _ = b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1") })
		run(func() { _ = b.engine.WithdrawConsent(ctx, "c1", "tok-c1", "customer:c1") })
		run(func() { _, _ = b.engine.ReconcilePayments(ctx) })
		gate.open()
		b.gateway.SetLatency(0)
		_, err := b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1")
		require.NoError(t, err)
		b.clock.Advance(2 * time.Minute)
		_, err = b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour))
		require.NoError(t, err)

		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		acc, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		live := b.count(t, `SELECT count(*) FROM billing_payment_methods
			WHERE customer_id = 'c1' AND (forgotten_at IS NULL OR consent_withdrawn_at IS NULL)`)
		t.Logf("round %d: subscription %s, access %v, live tokens %d, period-2 charges %d, provider refunds %d",
			r, got.Status, acc.Granted, live, len(b.gateway.ChargesFor(sub.ID, 2)), len(b.gateway.Refunds()))
		require.True(t, got.Status.Final(), "round %d: the deleted customer's subscription is %s", r, got.Status)
		require.False(t, acc.Granted, "round %d: access after the account deletion", r)
		require.Zero(t, live, "round %d: a token of the deleted customer is not forgotten", r)
		require.LessOrEqual(t, len(b.gateway.ChargesFor(sub.ID, 2)), 1)
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}

// TestRaceAccountDeletionVsRefundAndResume: ExecuteAccountDeletion at once with an
// operator's ExecuteRefund of the customer's verified refund request and Resume of the
// suspended subscription, each twice. Afterwards, once the refund's retry job ran: the
// subscription is final with no access, the customer's token forgotten, the provider
// refunded the period at most once, a refund the provider paid is the request's (refunded)
// and no request is left executing, and the books equal the provider.
func TestRaceAccountDeletionVsRefundAndResume(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b, sub := setupDeletions(t)
		req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
			Channel: refund.ChannelEmail, IdempotencyKey: "refund-c1"})
		require.NoError(t, err)
		_, err = b.engine.VerifyRefund(ctx, req.ID, "admin:1")
		require.NoError(t, err)
		_, err = b.engine.Suspend(ctx, sub.ID, subscription.AdminAction{Actor: "admin:1", Reason: "support ticket"})
		require.NoError(t, err)
		del := b.requestDeletion(t, "c1", b.clock.Now(), "del-c1")
		b.gateway.SetLatency(2 * time.Millisecond)
		gate := newGate()
		run := gate.run
		for g := 0; g < 2; g++ {
			run(func() { _, _ = b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1") })
			run(func() { _, _ = b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"}) })
			run(func() {
				_, _ = b.engine.Resume(ctx, sub.ID, subscription.AdminAction{Actor: "admin:2", Reason: "ticket closed"})
			})
		}
		gate.open()
		b.gateway.SetLatency(0)
		_, err = b.engine.ExecuteAccountDeletion(ctx, del.ID, "admin:1")
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour))
		require.NoError(t, err)

		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		acc, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		after, err := b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		live := b.count(t, `SELECT count(*) FROM billing_payment_methods
			WHERE customer_id = 'c1' AND (forgotten_at IS NULL OR consent_withdrawn_at IS NULL)`)
		t.Logf("round %d: subscription %s, access %v, refund request %s, provider refunds %d",
			r, got.Status, acc.Granted, after.State, len(b.gateway.Refunds()))
		require.True(t, got.Status.Final(), "round %d: the deleted customer's subscription is %s", r, got.Status)
		require.False(t, acc.Granted, "round %d: access after the account deletion", r)
		require.Zero(t, live, "round %d: a token of the deleted customer is not forgotten", r)
		require.LessOrEqual(t, len(b.gateway.Refunds()), 1, "round %d: the period refunded more than once", r)
		require.NotEqual(t, refund.StateExecuting, after.State, "round %d: the refund request is left executing", r)
		if len(b.gateway.Refunds()) == 1 {
			require.Equal(t, refund.StateRefunded, after.State, "round %d: the provider paid the refund", r)
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}
