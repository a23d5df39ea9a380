package billing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

const returnURL = "https://app.example/billing/return"

// newCheckout subscribes customer with no saved payment method (a new customer, TERMS 3.3)
// and starts the first payment on the provider's page.
func newCheckout(t *testing.T, b *renewalBundle, customer string) (subscription.Subscription, billing.CheckoutResult) {
	t.Helper()
	ctx := context.Background()
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro", IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	require.Empty(t, sub.PaymentMethod)
	co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
	require.NoError(t, err)
	return sub, co
}

// TestCheckoutOnTheProvidersPage: a new customer pays on the provider's page; nothing is
// granted before the provider confirms the payment (TERMS 3.3, 100% prepayment); the method
// the provider saved becomes the token of the renewals, bound to the customer.
func TestCheckoutOnTheProvidersPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.3 paid on the page: active, the saved method renews", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub, co := newCheckout(t, b, "c1")
		require.Equal(t, subscription.StatusPending, co.Subscription.Status, "no access before the payment")
		require.Equal(t, payment.StatePending, co.Attempt.State)
		require.True(t, strings.HasPrefix(co.ConfirmationURL, billingtest.CheckoutURLPrefix), co.ConfirmationURL)
		acc, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.False(t, acc.Granted, "3.3: no access while the customer has not paid")

		again, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.Equal(t, co.ConfirmationURL, again.ConfirmationURL, "the same payment, the same page")
		require.Equal(t, 1, b.gateway.Recorded(), "one payment at the provider")

		ev, err := b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSucceeded) // the customer pays
		require.NoError(t, err)
		_, err = b.engine.HandlePaymentWebhook(ctx, ev)
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, "pm_1", got.PaymentMethod, "the method the provider saved is the renewals' token")
		requireBooksMatchProvider(t, b.engine, b.gateway, "after the checkout")

		b.clock.Set(got.Current.End)
		require.NoError(t, b.runner.RunDue(ctx))
		renewal := b.gateway.ChargesFor(sub.ID, 2)
		require.Len(t, renewal, 1, "3.5: the period end charges the saved method")
		require.Equal(t, "pm_1", renewal[0].PaymentMethod)
		require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
	})

	t.Run("3.3 a forged success changes nothing; reconciliation finds the real one", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub, co := newCheckout(t, b, "c1")
		forged := payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: co.Attempt.ProviderPaymentID,
			Outcome: payment.OutcomeSucceeded, Amount: co.Attempt.Amount, Currency: co.Attempt.Currency}
		_, err := b.engine.HandlePaymentWebhook(ctx, forged)
		require.ErrorIs(t, err, billing.ErrWebhookNotConfirmed, "the provider says pending")
		require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status)

		_, err = b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSucceeded) // webhook lost
		require.NoError(t, err)
		b.clock.Advance(2 * time.Minute)
		_, err = b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status, "reconciliation settled the checkout")
		require.Equal(t, "pm_1", got.PaymentMethod)
	})

	t.Run("3.3 declined or abandoned on the page: the checkout ends, nothing granted", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub, co := newCheckout(t, b, "c1")
		ev, err := b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSoftDeclined)
		require.NoError(t, err)
		_, err = b.engine.HandlePaymentWebhook(ctx, ev)
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusEnded, got.Status)
		require.Nil(t, got.Current, "no period was ever granted")
		require.Empty(t, got.PaymentMethod)
		again, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.Empty(t, again.ConfirmationURL, "an ended checkout has no page")
		require.Equal(t, 1, b.gateway.Recorded(), "and starts no second payment")
	})

	t.Run("an unknown answer: the next call continues the same payment under its key", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		b.gateway.Script("", billingtest.TimeoutBeforeCharge)
		sub, co := newCheckout(t, b, "c1")
		require.Equal(t, payment.StateUnknown, co.Attempt.State)
		require.Empty(t, co.ConfirmationURL)
		b.clock.Advance(2 * time.Minute) // past the time the first call may still be in flight
		again, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		if again.ConfirmationURL == "" { // the first call's lookup, then the resend
			again, err = b.engine.StartCheckout(ctx, sub.ID, returnURL)
			require.NoError(t, err)
		}
		require.NotEmpty(t, again.ConfirmationURL)
		require.Equal(t, co.Attempt.IdempotencyKey, again.Attempt.IdempotencyKey, "the same key")
		require.Equal(t, 1, b.gateway.Recorded(), "one payment at the provider")
	})

	t.Run("bad input is refused and writes nothing", func(t *testing.T) {
		t.Parallel()
		b := setupRenewals(t)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		for _, bad := range []string{"", "/relative", "ftp://x.example/", "https://"} {
			_, err = b.engine.StartCheckout(ctx, sub.ID, bad)
			var ie *billing.InputError
			require.ErrorAs(t, err, &ie, "returnURL %q", bad)
		}
		_, err = b.engine.StartCheckout(ctx, "not-a-uuid", returnURL)
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		require.Empty(t, regAttempts(t, b, sub.ID), "nothing written")
		require.Zero(t, b.gateway.Calls().Charge)
	})

	t.Run("a gateway without a checkout page: ErrNoCheckout", func(t *testing.T) {
		t.Parallel()
		gw := billingtest.NewGateway()
		tb := setupWith(t, func(c *billing.Config) { c.Gateway = chargeOnly{gw} })
		tb.publish(t, "pro", "990", "generations", 500)
		sub, err := tb.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		_, err = tb.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.ErrorIs(t, err, billing.ErrNoCheckout)
	})
}

// chargeOnly is a gateway with the payment.Gateway methods only: no page for a checkout.
type chargeOnly struct{ g *billingtest.Gateway }

func (c chargeOnly) Charge(ctx context.Context, r payment.ChargeParams) (payment.ChargeResult, error) {
	return c.g.Charge(ctx, r)
}
func (c chargeOnly) Refund(ctx context.Context, r payment.RefundParams) (payment.RefundResult, error) {
	return c.g.Refund(ctx, r)
}
func (c chargeOnly) Lookup(ctx context.Context, r payment.LookupParams) (payment.ChargeResult, error) {
	return c.g.Lookup(ctx, r)
}
func (c chargeOnly) LookupRefund(ctx context.Context, r payment.RefundLookupParams) (payment.RefundResult, error) {
	return c.g.LookupRefund(ctx, r)
}
