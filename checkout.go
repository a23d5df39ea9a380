package billing

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// ErrNoCheckout is returned by StartCheckout when Config.Gateway does not implement
// payment.CheckoutGateway: its provider cannot take a first payment on its own page.
var ErrNoCheckout = errors.New("billing: the payment gateway takes no payment on the provider's page (payment.CheckoutGateway)")

// CheckoutResult is what StartCheckout returns.
type CheckoutResult struct {
	// Subscription is the subscription after the call: pending while the customer has not
	// paid, active once the payment succeeded, ended when it was declined.
	Subscription subscription.Subscription
	// Attempt is the checkout's charge attempt.
	Attempt payment.Attempt
	// ConfirmationURL is the provider's page to send the customer to, while the payment
	// waits for the customer and the subscription is pending; empty once it settled, once
	// the subscription ended (FailFirstPayment), or when the provider has not answered yet
	// (call StartCheckout again: it continues the same payment).
	ConfirmationURL string
}

// StartCheckout starts the first payment of a pending subscription on the provider's page,
// for a customer with no saved payment method (TERMS 3.3, 3.4): the gateway creates a
// payment that saves the method, and the host sends the customer to ConfirmationURL; the
// provider sends the customer back to returnURL. Nothing is granted until the payment
// succeeded (100% prepayment): the provider's notification, forwarded to
// HandlePaymentWebhook, is confirmed with the gateway before it counts, and the
// reconciliation job asks the gateway meanwhile. On success the subscription is activated
// and the saved method, bound to the customer, is the token its renewals charge; a decline
// or a payment the customer abandoned (the provider cancels it) ends the checkout.
//
// It is idempotent: calling it again for the same subscription continues the same payment
// (the same key, the same page) instead of starting another; after the payment settled it
// returns the result. If the first payment of the subscription is already under way by its
// saved method (ChargeFirstPayment), that one is continued and no page is returned.
//
// Errors: an *InputError for a malformed ID or a returnURL that is not an absolute http(s)
// URL; ErrNotFound; ErrNoGateway; ErrNoCheckout when the gateway cannot do it.
func (e *Engine) StartCheckout(ctx context.Context, subscriptionID, returnURL string) (_ CheckoutResult, err error) {
	ctx, span := e.tel.start(ctx, "StartCheckout", subAttr(subscriptionID))
	defer span.end(&err)
	check := inputCheck{op: "StartCheckout"}
	check.id("subscriptionID", subscriptionID)
	if u, err := url.Parse(returnURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		check.add("returnURL", fmt.Sprintf("%q is not an absolute http(s) URL", returnURL))
	}
	if err := check.err(); err != nil {
		return CheckoutResult{}, err
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return CheckoutResult{}, ErrNoGateway
	}
	if _, ok := gw.(payment.CheckoutGateway); !ok {
		return CheckoutResult{}, ErrNoCheckout
	}
	p, err := e.prepareAttempt(ctx, subscriptionID, payment.PurposeCheckout, 1, returnURL)
	if err != nil {
		return CheckoutResult{}, opError("StartCheckout", err)
	}
	var a store.AttemptRow
	if p.attempt.ID != "" {
		if a, err = e.runAttempt(ctx, gw, p); err != nil && !errors.Is(err, errRetryLater) {
			return CheckoutResult{}, opError("StartCheckout", err)
		}
	}
	sub, err := store.GetSubscription(ctx, e.pool, subscriptionID)
	if err != nil {
		return CheckoutResult{}, opError("StartCheckout", err)
	}
	out := CheckoutResult{Subscription: sub, Attempt: a.Attempt}
	if a.State == payment.StatePending && sub.Status == subscription.StatusPending {
		// No page for a subscription that can no longer take the payment (ended meanwhile):
		// the money would be booked unapplied and refunded.
		out.ConfirmationURL = a.ConfirmationURL
	}
	return out, nil
}
