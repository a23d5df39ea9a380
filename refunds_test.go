package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

type refundBundle struct {
	*testBundle
	gateway *billingtest.Gateway
	runner  *billingtest.Runner

	mu          sync.Mutex
	escalations []billing.RefundEscalation
}

// setupRefunds gives a test an engine with the fake gateway, River on the test clock, a
// tariff "pro" at 990 RUB a month with 500 generations, and a subscription of c1 charged
// through the gateway at 2026-03-02 10:00 MSK (a Monday; 9 March 2026 is a day off, so
// the 3.7 window's 5th working day is Tuesday 10 March).
func setupRefunds(t *testing.T) (*refundBundle, subscription.Subscription) {
	t.Helper()
	return setupRefundsWith(t, func(*billing.Config) {})
}

// setupRefundsWith is setupRefunds with change applied to the engine's Config.
func setupRefundsWith(t *testing.T, change func(*billing.Config)) (*refundBundle, subscription.Subscription) {
	t.Helper()
	gw := billingtest.NewGateway()
	rb := &refundBundle{gateway: gw}
	rb.testBundle = setupWith(t, func(c *billing.Config) {
		change(c)
		c.Gateway = gw
		c.OnRefundEscalation = func(e billing.RefundEscalation) {
			rb.mu.Lock()
			defer rb.mu.Unlock()
			rb.escalations = append(rb.escalations, e)
		}
	})
	rb.runner = rb.withRiver(t)
	rb.publish(t, "pro", "990", "generations", 500)
	ctx := context.Background()
	sub, err := rb.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-c1", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	res, err := rb.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusActive, res.Subscription.Status)
	return rb, res.Subscription
}

func (b *refundBundle) msk(month time.Month, day, hour int) time.Time {
	return time.Date(2026, month, day, hour, 0, 0, 0, b.moscow)
}

// request records a refund request received at received, with the clock moved there.
func (b *refundBundle) request(t *testing.T, subID string, received time.Time, key string) billing.RefundRequest {
	t.Helper()
	if received.After(b.clock.Now()) {
		b.clock.Set(received)
	}
	r, err := b.engine.RequestRefund(context.Background(), billing.RefundRequestParams{
		SubscriptionID: subID, ReceivedAt: received, Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: key})
	require.NoError(t, err)
	return r
}

func (b *refundBundle) verify(t *testing.T, id string) {
	t.Helper()
	_, err := b.engine.VerifyRefund(context.Background(), id, "admin:1")
	require.NoError(t, err)
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.7 request on day 3 without usage: verified, refunded once, no access", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		require.True(t, r.Eligible, r.Explanation)
		require.Equal(t, refund.StateReceived, r.State)
		require.Equal(t, b.msk(3, 11, 0), r.WindowEndsAt.In(b.moscow), "24:00 of Tue 10 March (9 March is a day off)")
		require.Equal(t, b.msk(3, 17, 0), r.PayoutDeadline.In(b.moscow), "3.8: 10 days → Sun 15 March → Mon 16 March, 24:00")
		require.Equal(t, int64(99000), r.AmountMinor)

		_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.ErrorIs(t, err, billing.ErrRefundTransition, "3.8 no payout before verification")

		b.verify(t, r.ID)
		got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
		require.NotEmpty(t, got.ProviderRefundID)

		refunds := b.gateway.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, int64(99000), refunds[0].Amount)
		require.Equal(t, r.ProviderPaymentID, refunds[0].ProviderPaymentID)
		require.Equal(t, payment.ReceiptIncomeReturn, refunds[0].Receipt.Kind, "54-FZ return of income")

		s, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusRefunded, s.Status)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.False(t, d.Granted)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "after-refund")
		require.ErrorIs(t, err, billing.ErrNoAccess)

		again, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:2"})
		require.NoError(t, err, "executing twice is a no-op")
		requireSameRequest(t, got, again)
		require.Len(t, b.gateway.Refunds(), 1)

		for account, want := range map[string]int64{"provider:RUB": 0, "deferred:RUB": 0} {
			bal, err := b.engine.Ledger().Balance(ctx, account, b.clock.Now())
			require.NoError(t, err)
			require.Equal(t, want, bal.Net(), "%s: the charge is reversed", account)
			require.NotZero(t, bal.Debits, "%s was posted to", account)
		}
		posted, err := b.engine.Ledger().TransactionGet(ctx, "refund:"+r.ID)
		require.NoError(t, err)
		require.Equal(t, r.ID, posted.Ref.ID)

		acts := actions(b.audit(t, sub.ID))
		require.Subset(t, acts, []string{"refund.requested", "refund.verified", "refund.executing", "refund.succeeded", "subscription.refund"})

		_, err = b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
			Channel: refund.ChannelSupport, IdempotencyKey: "r2"})
		require.ErrorIs(t, err, billing.ErrAlreadyRefunded)
	})

	t.Run("3.7 the same idempotency key returns the first request", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r1 := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		r2 := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		require.Equal(t, r1.ID, r2.ID)
		_, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.msk(3, 5, 10),
			Channel: refund.ChannelEmail, IdempotencyKey: "r1"})
		require.ErrorIs(t, err, billing.ErrIdempotencyConflict)
	})

	t.Run("3.7 request on the 7th working day: ineligible, refused without override, audited with it", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 12, 10), "r1")
		require.False(t, r.Eligible)
		require.Equal(t, []refund.Reason{refund.ReasonWindowClosed}, r.Failed)
		require.Contains(t, r.Explanation, "window")
		b.verify(t, r.ID)

		b.requireRefusedWritesNothing(t, sub.ID, billing.ErrNotEligible, func() error {
			_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
			return err
		})
		require.Empty(t, b.gateway.Refunds())

		_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true})
		require.ErrorIs(t, err, billing.ErrInvalidInput, "an override needs its reason")

		got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "art. 32, approved by head of support"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
		require.Equal(t, "art. 32, approved by head of support", got.OverrideReason)
		require.Len(t, b.gateway.Refunds(), 1)
		var found bool
		for _, a := range b.audit(t, sub.ID) {
			if a.Action == "refund.override" {
				found = true
				require.Equal(t, "admin:1", a.Actor)
				require.Equal(t, "art. 32, approved by head of support", a.Reason)
			}
		}
		require.True(t, found, "the override is in the audit log")
	})

	t.Run("3.7 after one generation: ineligible (used)", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		b.clock.Set(b.msk(3, 3, 12))
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 1, "g1")
		require.NoError(t, err)
		r := b.request(t, sub.ID, b.msk(3, 4, 10), "r1")
		require.False(t, r.Eligible)
		require.Equal(t, []refund.Reason{refund.ReasonUsed}, r.Failed)
	})

	t.Run("3.7 an open reservation: ineligible", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		_, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 3, TTL: time.Hour, IdempotencyKey: "res"})
		require.NoError(t, err)
		r := b.request(t, sub.ID, b.clock.Now(), "r1")
		require.False(t, r.Eligible)
		require.Equal(t, []refund.Reason{refund.ReasonOpenReservation}, r.Failed)
	})

	t.Run("3.8 received in the future: refused, nothing written", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		b.requireRefusedWritesNothing(t, sub.ID, billing.ErrReceivedInFuture, func() error {
			_, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID,
				ReceivedAt: b.clock.Now().Add(time.Minute), Channel: refund.ChannelEmail, IdempotencyKey: "r1"})
			return err
		})
	})

	t.Run("3.3 unpaid period: refused, nothing written", func(t *testing.T) {
		t.Parallel()
		b, _ := setupRefunds(t)
		pending := b.pendingSubscription(t, "c2", "pro")
		b.requireRefusedWritesNothing(t, pending.ID, billing.ErrPeriodNotPaid, func() error {
			_, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: pending.ID,
				ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "r1"})
			return err
		})
	})

	t.Run("3.7 a first period the host charged itself (ConfirmFirstPayment) is refunded like any other", func(t *testing.T) {
		t.Parallel()
		b, _ := setupRefunds(t)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c3", TariffCode: "pro", IdempotencyKey: "sub-c3"})
		require.NoError(t, err)
		// The host charges on its own payment page, through the same provider.
		receipt, err := payment.NewChargeReceipt("Pro, 1 month", 99000, "RUB", payment.VATNone, payment.Contact{})
		require.NoError(t, err)
		paid, err := b.gateway.Charge(ctx, payment.ChargeParams{IdempotencyKey: "host-c3", PaymentMethod: "tok-c3",
			CustomerID: "c3", Amount: 99000, Currency: "RUB", Description: "Pro, 1 month", Receipt: receipt})
		require.NoError(t, err)
		_, err = b.engine.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{
			ProviderPaymentID: paid.ProviderPaymentID, Amount: sub.Checkout.Price, Currency: sub.Checkout.Currency})
		require.NoError(t, err)

		r := b.request(t, sub.ID, b.clock.Now().Add(time.Hour), "r-c3")
		require.True(t, r.Eligible, r.Explanation)
		require.Equal(t, paid.ProviderPaymentID, r.ProviderPaymentID)
		b.verify(t, r.ID)
		got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
		refunds := b.gateway.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, paid.ProviderPaymentID, refunds[0].ProviderPaymentID)
		require.Equal(t, int64(99000), refunds[0].Amount)
		s, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusRefunded, s.Status)
	})

	t.Run("3.8 concurrent executions refund once", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		b.verify(t, r.ID)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Len(t, b.gateway.Refunds(), 1)
		got, err := b.engine.RefundRequestGet(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
	})

	t.Run("3.8 gateway failure then retry by the River job", func(t *testing.T) {
		t.Parallel()
		for _, behaviour := range []billingtest.Behaviour{billingtest.TimeoutBeforeCharge, billingtest.TimeoutAfterSuccess} {
			t.Run(behaviour.String(), func(t *testing.T) {
				t.Parallel()
				b, sub := setupRefunds(t)
				r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
				b.verify(t, r.ID)
				b.gateway.ScriptRefunds(behaviour)
				b.gateway.FailRefundLookups(1) // the first retry fails too: River tries again later
				got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
				require.NoError(t, err)
				require.Equal(t, refund.StateExecuting, got.State, "outcome unknown: executing, retry scheduled")
				_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(2*time.Hour))
				require.NoError(t, err)
				got, err = b.engine.RefundRequestGet(ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, refund.StateRefunded, got.State)
				require.Len(t, b.gateway.Refunds(), 1, "never refunded twice")
				s, err := b.engine.SubscriptionGet(ctx, sub.ID)
				require.NoError(t, err)
				require.Equal(t, subscription.StatusRefunded, s.Status)
			})
		}
	})

	t.Run("3.8 a declined refund fails and is executed again under a new key", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		b.verify(t, r.ID)
		b.gateway.ScriptRefunds(billingtest.HardDecline)
		got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateFailed, got.State)
		s, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, s.Status, "no money back, access stays")
		failed, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{State: refund.StateFailed})
		require.NoError(t, err)
		require.Len(t, failed, 1)

		again, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, again.State)
		require.Equal(t, 2, again.Attempt)
		require.NotEqual(t, got.GatewayKey, again.GatewayKey, "a refused refund moved no money: the next attempt has its own key")
		require.Len(t, b.gateway.Refunds(), 1)
	})

	t.Run("3.8 a pending refund completes on its webhook", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		b.verify(t, r.ID)
		b.gateway.ScriptRefunds(billingtest.Pending)
		got, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateExecuting, got.State)
		require.NotEmpty(t, got.ProviderRefundID)
		s, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, s.Status, "nothing ends before the money is back")

		ev, err := b.gateway.ConfirmRefund(got.ProviderRefundID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		done, err := b.engine.HandleRefundWebhook(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, done.State)
		again, err := b.engine.HandleRefundWebhook(ctx, ev)
		require.NoError(t, err, "a resent webhook is a no-op")
		requireSameRequest(t, done, again)
		s, err = b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusRefunded, s.Status)
	})

	t.Run("3.8 escalation fires two days before the payout deadline", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		due, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{State: refund.StateReceived, DueBefore: b.msk(3, 18, 0)})
		require.NoError(t, err)
		require.Len(t, due, 1)
		none, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{DueBefore: b.msk(3, 16, 0)})
		require.NoError(t, err)
		require.Empty(t, none)

		_, err = b.runner.RunUntil(ctx, b.msk(3, 14, 23))
		require.NoError(t, err)
		b.mu.Lock()
		require.Empty(t, b.escalations, "not yet")
		b.mu.Unlock()
		_, err = b.runner.RunUntil(ctx, r.PayoutDeadline.Add(-time.Hour))
		require.NoError(t, err)
		b.mu.Lock()
		defer b.mu.Unlock()
		require.Len(t, b.escalations, 1)
		require.Equal(t, r.ID, b.escalations[0].RequestID)
		b.verify(t, r.ID)
		_, err = b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		open, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{Open: true, DueBefore: b.msk(3, 18, 0)})
		require.NoError(t, err)
		require.Empty(t, open, "a refunded request is no longer near its deadline")
		require.Equal(t, b.msk(3, 15, 0), b.escalations[0].At.In(b.moscow))
		require.True(t, b.escalations[0].At.Before(r.PayoutDeadline))
		got, err := b.engine.RefundRequestGet(ctx, r.ID)
		require.NoError(t, err)
		require.True(t, got.EscalatedAt.Equal(b.escalations[0].At))
	})

	t.Run("3.8 a refunded request is not escalated", func(t *testing.T) {
		t.Parallel()
		b, sub := setupRefunds(t)
		r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
		b.verify(t, r.ID)
		_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, r.PayoutDeadline)
		require.NoError(t, err)
		b.mu.Lock()
		defer b.mu.Unlock()
		require.Empty(t, b.escalations)
	})
}

// requireSameRequest checks that two reads of a request agree (instants compared as
// instants: one may come from the clock, the other from PostgreSQL).
func requireSameRequest(t *testing.T, want, got billing.RefundRequest) {
	t.Helper()
	for _, p := range []struct{ w, g *time.Time }{
		{&want.ReceivedAt, &got.ReceivedAt}, {&want.WindowEndsAt, &got.WindowEndsAt}, {&want.PayoutDeadline, &got.PayoutDeadline},
		{&want.VerifiedAt, &got.VerifiedAt}, {&want.CreatedAt, &got.CreatedAt}, {&want.SettledAt, &got.SettledAt},
		{&want.EscalatedAt, &got.EscalatedAt},
	} {
		require.True(t, p.w.Equal(*p.g), "%s != %s", p.w, p.g)
		*p.w, *p.g = time.Time{}, time.Time{}
	}
	require.Equal(t, want, got)
}
