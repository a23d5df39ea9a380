package billing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// TestReviewCheckoutPageNotOfferedForAnEndedSubscription: the host gave up on a pending
// checkout (FailFirstPayment: the subscription ended) while its payment still waits on the
// provider's page. StartCheckout called again (the customer clicks "pay" once more) must not
// send the customer to that page: a payment there would take money for a subscription that
// can no longer be granted (booked unapplied and refunded at best). It returns the page of
// the pending payment next to the ended subscription.
func TestReviewCheckoutPageNotOfferedForAnEndedSubscription(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub, co := newCheckout(t, b, "c1")
	require.NotEmpty(t, co.ConfirmationURL, "setup: the payment waits on the page")
	_, err := b.engine.FailFirstPayment(ctx, sub.ID, "the customer went away")
	require.NoError(t, err)

	again, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusEnded, again.Subscription.Status)
	require.Equal(t, payment.StatePending, again.Attempt.State, "the provider's payment still waits")
	require.Empty(t, again.ConfirmationURL, "no page to pay for an ended subscription")
}

// TestReviewCheckoutOnThePageGivesNoConsentToAnotherToken: the subscription was made with a
// token (Subscribe's PaymentMethod: no consent yet, consent is paying, TERMS 3.4), and the
// customer then paid on the provider's page instead. The method the provider saved is bound
// to another customer, so savedMethod does not take it ("the subscription will not renew
// from it"). The activation keeps the Subscribe token and records consent on it, so the
// renewal charges a card the customer never paid with nor agreed to have charged.
func TestReviewCheckoutOnThePageGivesNoConsentToAnotherToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	regSubscribe(t, b, "other", "pm_1") // the provider's first saved method is another customer's
	sub := regSubscribe(t, b, "c1", "tok-A")
	co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
	require.NoError(t, err)
	require.NotEmpty(t, co.ConfirmationURL)
	ev, err := b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSucceeded) // paid on the page
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)
	got := b.get(t, sub.ID)
	require.Equal(t, subscription.StatusActive, got.Status, "setup: paid on the page")
	t.Logf("payment method after the checkout: %q", got.PaymentMethod)

	b.clock.Set(got.Current.End)
	require.NoError(t, b.runner.RunDue(ctx))
	for _, c := range b.gateway.ChargesFor(sub.ID, 2) {
		require.NotEqual(t, "tok-A", c.PaymentMethod, "renewal charged a token the customer never paid with at checkout")
	}
}

// TestReviewUnappliedRefundBlockedByReceiptContactReachesAPerson: a checkout paid after the
// subscription ended is booked unapplied and must be refunded (TERMS 3.3: money is never
// kept for nothing). Config.ReceiptContact now fails for that customer (the host deleted
// their data, or its directory is down for good). RefundUnapplied promises that a failed
// refund is counted and parked for a person after 5 failures; a ReceiptContact failure is
// neither counted nor parked, so the money stays with the shop for ever and nobody is told.
func TestReviewUnappliedRefundBlockedByReceiptContactReachesAPerson(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := billingtest.NewGateway()
	var contactDown atomic.Bool
	tb := setupWith(t, func(c *billing.Config) {
		c.Gateway = gw
		c.ReceiptContact = func(_ context.Context, customerID string) (payment.Contact, error) {
			if contactDown.Load() {
				return payment.Contact{}, errors.New("directory: no such customer")
			}
			return payment.Contact{Email: customerID + "@example.ru"}, nil
		}
	})
	runner := tb.withRiver(t)
	tb.publish(t, "pro", "990", "generations", 500)
	b := &renewalBundle{testBundle: tb, gateway: gw, runner: runner}
	sub, co := newCheckout(t, b, "c1")
	_, err := b.engine.FailFirstPayment(ctx, sub.ID, "gave up")
	require.NoError(t, err)
	contactDown.Store(true)
	ev, err := b.gateway.Confirm(co.Attempt.ProviderPaymentID, payment.OutcomeSucceeded) // paid after the end
	require.NoError(t, err)
	_, err = b.engine.HandlePaymentWebhook(ctx, ev)
	require.NoError(t, err)

	for range 10 { // ten days of refund jobs and sweeps
		regRunFor(t, b, 24*time.Hour)
		_, _ = b.engine.SweepDueRenewals(ctx)
	}
	require.Empty(t, b.gateway.Refunds(), "setup: the refund could not be sent")
	us, err := b.engine.UnappliedPaymentList(ctx, false)
	require.NoError(t, err)
	require.Len(t, us, 1)
	t.Logf("unapplied payment: state %s, failures %d, last error %q", us[0].State, us[0].Failures, us[0].LastError)
	require.NotEqual(t, billing.UnappliedRefunding, us[0].State,
		"ten days later the money is neither returned nor parked for a person")
}
