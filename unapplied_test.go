package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// abandonedPaidCheckout makes the case of an unapplied payment: a pending checkout the host
// gave up on (FailFirstPayment), whose charge the provider then confirms and whose genuine
// webhook the engine receives. It returns the subscription.
func abandonedPaidCheckout(t *testing.T, b *renewalBundle, customer, token string) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub, pending := regPendingCheckout(t, b, customer, token)
	_, err := b.engine.FailFirstPayment(ctx, sub.ID, "customer left the checkout")
	require.NoError(t, err)
	ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)
	return sub
}

func TestUnappliedPayments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.3 money no period takes is booked as owed back, audited, and refunded with a return receipt", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := abandonedPaidCheckout(t, b, "c1", "tok-1")
		require.Equal(t, subscription.StatusEnded, b.get(t, sub.ID).Status, "the abandoned checkout stays ended: no access")

		regRunFor(t, b, time.Minute) // the refund job (River may have run it already)
		all, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		require.Len(t, all, 1)
		require.Equal(t, billing.UnappliedRefunded, all[0].State)
		require.Equal(t, int64(99000), all[0].AmountMinor)
		owedTx, err := b.engine.Ledger().TransactionGet(ctx, "unapplied:"+all[0].AttemptID)
		require.NoError(t, err, "booked as owed back when it was taken")
		require.Contains(t, owedTx.Postings, ledger.Posting{Account: "refunds_payable:RUB", Side: ledger.Credit,
			Amount: 99000, Currency: "RUB"})
		refunds := b.gateway.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, all[0].ProviderPaymentID, refunds[0].ProviderPaymentID)
		require.Equal(t, payment.ReceiptIncomeReturn, refunds[0].Receipt.Kind, "54-FZ: a return-of-income receipt")
		requireBooksMatchProvider(t, b.engine, b.gateway, "after the refund")
		owed, err := b.engine.Ledger().Balance(ctx, "refunds_payable:RUB", booksAt)
		require.NoError(t, err)
		require.Zero(t, owed.Normal())
		tb, err := b.engine.Ledger().TrialBalance(ctx)
		require.NoError(t, err)
		require.Zero(t, tb.NetByCurrency()["RUB"])

		log, err := b.engine.AuditLogList(ctx, billing.SubscriptionSubject(sub.ID))
		require.NoError(t, err)
		actions := map[string]bool{}
		for _, e := range log {
			actions[e.Action] = true
		}
		require.True(t, actions["payment.unapplied"], "audited: %v", actions)
		require.True(t, actions["payment.unapplied_refunded"], "audited: %v", actions)

		regRunFor(t, b, 24*time.Hour)
		n, err := b.engine.SweepDueRenewals(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		regRunFor(t, b, time.Hour)
		require.Len(t, b.gateway.Refunds(), 1, "refunded once, also after the sweeper ran")
	})

	t.Run("a refund the gateway keeps refusing is retried, then parked for a person after 5 tries", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.SoftDecline, billingtest.SoftDecline, billingtest.SoftDecline,
			billingtest.SoftDecline, billingtest.SoftDecline)
		abandonedPaidCheckout(t, b, "c1", "tok-1")
		regRunFor(t, b, 30*24*time.Hour)

		open, err := b.engine.UnappliedPaymentList(ctx, true)
		require.NoError(t, err)
		require.Len(t, open, 1)
		require.Equal(t, billing.UnappliedParked, open[0].State)
		require.Equal(t, 5, open[0].Failures)
		require.Contains(t, open[0].LastError, "soft_declined")
		require.Empty(t, b.gateway.Refunds())
		require.Equal(t, 5, b.gateway.Calls().Refund, "retried with backoff, then left alone")
		owed, err := b.engine.Ledger().Balance(ctx, "refunds_payable:RUB", booksAt)
		require.NoError(t, err)
		require.Equal(t, int64(99000), owed.Normal(), "still owed: the books say so until a person pays it back")
		requireBooksMatchProvider(t, b.engine, b.gateway, "parked")
	})

	t.Run("a pending refund of unapplied money completes on its webhook, confirmed with the gateway", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.Pending)
		abandonedPaidCheckout(t, b, "c1", "tok-1")
		regRunFor(t, b, time.Minute)
		open, err := b.engine.UnappliedPaymentList(ctx, true)
		require.NoError(t, err)
		require.Len(t, open, 1)
		require.Equal(t, billing.UnappliedRefunding, open[0].State, "the provider has not paid it yet")
		require.NotEmpty(t, open[0].ProviderRefundID)

		forged := payment.WebhookEvent{Kind: payment.KindRefund, ProviderRefundID: open[0].ProviderRefundID, Outcome: payment.OutcomeSucceeded}
		_, err = b.engine.HandleRefundWebhook(ctx, forged)
		require.ErrorIs(t, err, billing.ErrWebhookNotConfirmed, "the gateway still says pending")

		ev, err := b.gateway.ConfirmRefund(open[0].ProviderRefundID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		_, err = b.engine.HandleRefundWebhook(ctx, ev)
		require.NoError(t, err)
		all, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		require.Equal(t, billing.UnappliedRefunded, all[0].State)
		requireBooksMatchProvider(t, b.engine, b.gateway, "refunded by webhook")
		regRunFor(t, b, 24*time.Hour) // the job's retry finds it refunded: nothing more
		require.Len(t, b.gateway.Refunds(), 1)
		requireBooksMatchProvider(t, b.engine, b.gateway, "after the job's retries")
	})

	t.Run("a refund refused for good is parked at once", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.gateway.ScriptRefunds(billingtest.HardDecline)
		abandonedPaidCheckout(t, b, "c1", "tok-1")
		regRunFor(t, b, time.Hour)
		open, err := b.engine.UnappliedPaymentList(ctx, true)
		require.NoError(t, err)
		require.Len(t, open, 1)
		require.Equal(t, billing.UnappliedParked, open[0].State)
		require.Equal(t, 1, b.gateway.Calls().Refund)
	})
}

func TestReconcileParksAnAttemptThatKeepsFailing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
	sub := regSubscribe(t, b, "c1", "tok-1")
	res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, payment.StateUnknown, res.Attempt.State)

	b.gateway.FailLookups(1000)
	for range 10 {
		b.clock.Advance(7 * time.Hour) // past the longest backoff
		n, err := b.engine.ReconcilePayments(ctx)
		require.NoError(t, err, "an item's failure is recorded, not returned")
		require.Equal(t, 1, n)
	}
	parked, err := b.engine.AttemptListParked(ctx)
	require.NoError(t, err)
	require.Len(t, parked, 1)
	require.Equal(t, res.Attempt.ID, parked[0].Attempt.ID)
	require.Equal(t, 10, parked[0].Failures)
	require.Contains(t, parked[0].LastError, "unavailable")

	lookups := b.gateway.Calls().Lookup
	b.clock.Advance(7 * time.Hour)
	n, err := b.engine.ReconcilePayments(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a parked attempt waits for a person")
	require.Equal(t, lookups, b.gateway.Calls().Lookup)
}

func TestReconcileBacksOffAFailingAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
	sub := regSubscribe(t, b, "c1", "tok-1")
	_, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)

	b.gateway.FailLookups(3)
	b.clock.Advance(2 * time.Minute)
	n, err := b.engine.ReconcilePayments(ctx) // fails: next look in 2 minutes
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = b.engine.ReconcilePayments(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not looked at again before its backoff")
	b.clock.Advance(3 * time.Minute)
	for range 2 { // fails twice more, each after its backoff
		n, err = b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		b.clock.Advance(time.Hour)
	}
	n, err = b.engine.ReconcilePayments(ctx) // the gateway answers: settled
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, subscription.StatusActive, b.get(t, sub.ID).Status, "the charge that succeeded pays period 1")
	requireBooksMatchProvider(t, b.engine, b.gateway, "settled")
}
