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
