package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

type renewalBundle struct {
	*testBundle
	gateway *billingtest.Gateway
	runner  *billingtest.Runner
}

// setupRenewals gives a test an engine with the fake gateway, River workers on the test
// clock and a tariff "pro" at 990 RUB a month with 500 generations.
func setupRenewals(t *testing.T) *renewalBundle {
	t.Helper()
	return setupRenewalsBy(t, false)
}

// setupRenewalsBy is setupRenewals with the renewals claimed from the subscriptions table
// (Config.ClaimRenewals) when claims is set, or River's renewal jobs.
func setupRenewalsBy(t *testing.T, claims bool) *renewalBundle {
	t.Helper()
	gw := billingtest.NewGateway()
	b := setupWith(t, func(c *billing.Config) { c.Gateway = gw; c.ClaimRenewals = claims })
	runner := b.withRiver(t)
	b.publish(t, "pro", "990", "generations", 500)
	return &renewalBundle{testBundle: b, gateway: gw, runner: runner}
}

// checkout subscribes a customer paying with token and charges the first period.
func (b *renewalBundle) checkout(t *testing.T, customer, token string) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro", PaymentMethod: token, IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	return res.Subscription
}

func (b *renewalBundle) get(t *testing.T, id string) subscription.Subscription {
	t.Helper()
	sub, err := b.engine.SubscriptionGet(context.Background(), id)
	require.NoError(t, err)
	return sub
}

// charged returns the amounts the gateway accepted for a subscription period.
func (b *renewalBundle) charged(id string, period int) []int64 {
	var out []int64
	for _, c := range b.gateway.ChargesFor(id, period) {
		out = append(out, c.Amount)
	}
	return out
}

// TestRenewals runs every row twice: with River's renewal job per period, and with the
// renewals claimed from the subscriptions table (Config.ClaimRenewals).
func TestRenewals(t *testing.T) {
	t.Parallel()
	for _, claims := range []bool{false, true} {
		name := "renewal jobs"
		if claims {
			name = "claimed renewals"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testRenewals(t, func(t *testing.T) *renewalBundle { return setupRenewalsBy(t, claims) })
		})
	}
}

func testRenewals(t *testing.T, setupRenewals func(*testing.T) *renewalBundle) {
	ctx := context.Background()

	t.Run("3.5 a year of monthly renewals: 12 charges on the anchored dates", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.clock.Set(time.Date(2026, 3, 31, 12, 0, 0, 0, b.moscow))
		sub := b.checkout(t, "c1", "tok-1")
		require.Equal(t, subscription.StatusActive, sub.Status, "3.3 access after the charge succeeded")
		_, err := b.runner.RunUntil(ctx, time.Date(2027, 3, 15, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 12, got.Current.Number)
		for p := 1; p <= 12; p++ {
			require.Equal(t, []int64{99000}, b.charged(sub.ID, p), "period %d charged once", p)
		}
		// Anchored on Mar 31: Apr 30, May 31, Jun 30 … Feb 28, then Mar 31 again, no drift.
		require.Equal(t, time.Date(2027, 2, 28, 12, 0, 0, 0, b.moscow), got.Current.Start.In(b.moscow))
		require.Equal(t, time.Date(2027, 3, 31, 12, 0, 0, 0, b.moscow), got.Current.End.In(b.moscow))
	})

	t.Run("2.1.6 a price change mid-period: this period unchanged, the next renewal at the new price", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		b.clock.Advance(10 * 24 * time.Hour)
		_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "pro", Name: "pro", Price: decimal.NewFromInt(1290),
			Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
		require.NoError(t, err)
		require.True(t, b.get(t, sub.ID).Current.Terms.Price.Equal(decimal.NewFromInt(990)))
		_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 2, got.Current.Number)
		require.True(t, got.Current.Terms.Price.Equal(decimal.NewFromInt(1290)))
		require.Equal(t, []int64{129000}, b.charged(sub.ID, 2))
	})

	t.Run("3.6 auto-renew off: the paid period runs out, nothing is charged", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		_, err := b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(40*24*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusEnded, got.Status)
		require.Empty(t, b.charged(sub.ID, 2))
	})

	t.Run("3.5 a soft decline is retried; paid a day late, the period starts when paid: no day without access is sold", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		b.gateway.Script("tok-1", billingtest.SoftDecline)
		end := sub.Current.End
		_, err := b.runner.RunUntil(ctx, end.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.False(t, d.Granted, "no access while past due")
		_, err = b.runner.RunUntil(ctx, end.Add(25*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, 2, got.Current.Number)
		paidAt := end.Add(24 * time.Hour) // the first dunning retry
		require.True(t, got.Current.Start.Equal(paidAt), "starts when paid: %s", got.Current.Start)
		require.True(t, got.Current.End.Equal(got.Current.Start.AddDate(0, 1, 0)), "a full month: %s", got.Current.End)
		require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
	})

	t.Run("3.5 all retries fail: the subscription ends", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		b.gateway.Script("tok-1", billingtest.SoftDecline, billingtest.SoftDecline, billingtest.SoftDecline, billingtest.SoftDecline)
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(10*24*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusEnded, got.Status)
		require.Empty(t, b.charged(sub.ID, 2))
		attempts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 5, "the checkout charge and 4 renewal attempts: at the end and after 1, 3, 5 days")
	})

	t.Run("hard decline: stop at once, never retried", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		b.gateway.Script("tok-1", billingtest.HardDecline)
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(10*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, subscription.StatusEnded, b.get(t, sub.ID).Status)
		attempts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 2)
	})

	t.Run("consent withdrawn while a renewal is queued: never charged again", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"))
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(10*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, subscription.StatusEnded, b.get(t, sub.ID).Status)
		require.Empty(t, b.charged(sub.ID, 2))
	})

	t.Run("3.5 timeout after success: the outcome is looked up, never charged twice", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 2, got.Current.Number)
		require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
	})

	t.Run("3.3 a pending first charge grants access only on its webhook; a duplicate webhook is a no-op", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.gateway.Script("tok-1", billingtest.Pending)
		sub := b.checkout(t, "c1", "tok-1")
		require.Equal(t, subscription.StatusPending, sub.Status)
		atts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		ev, err := b.gateway.Confirm(atts[0].ProviderPaymentID, "succeeded")
		require.NoError(t, err)
		_, err = b.engine.HandlePaymentWebhook(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, b.get(t, sub.ID).Status)
		_, err = b.engine.HandlePaymentWebhook(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, 1, b.get(t, sub.ID).Current.Number)
	})

	t.Run("2.1.4 a period extended by the operator renews at its new end, once", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub := b.checkout(t, "c1", "tok-1")
		oldEnd := sub.Current.End
		newEnd := oldEnd.Add(3 * 24 * time.Hour)
		_, err := b.engine.ExtendPeriod(ctx, sub.ID, newEnd, subscription.AdminAction{Actor: "admin:1", Reason: "maintenance on 10 March"})
		require.NoError(t, err)

		_, err = b.runner.RunUntil(ctx, oldEnd.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "the job at the old end charges nothing")
		require.Empty(t, b.charged(sub.ID, 2))
		err = billing.RenewPeriod(b.engine, ctx, sub.ID, 1)
		require.ErrorIs(t, err, billing.ErrNotDue)

		_, err = b.runner.RunUntil(ctx, newEnd.Add(time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 2, got.Current.Number, "the snoozed job renews at the new end")
		require.True(t, got.Current.Start.Equal(newEnd))
		require.Equal(t, []int64{99000}, b.charged(sub.ID, 2))
	})
}
