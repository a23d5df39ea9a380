package billing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
