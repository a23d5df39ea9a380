package paymenttest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

// CheckoutHarness is the optional capability of a Harness whose gateway is also a
// payment.CheckoutGateway (a first payment on the provider's page that saves the payment
// method for renewals). When the Harness implements it and its Gateway implements
// payment.CheckoutGateway, Run adds the "Checkout" checks; otherwise they are skipped.
type CheckoutHarness interface {
	Harness
	// PayOnPage plays the customer on the provider's page for the pending checkout payment
	// providerPaymentID: payment.OutcomeSucceeded pays it and saves the method; a decline
	// (OutcomeSoftDeclined or OutcomeHardDeclined) is a refused card or an abandoned page. It
	// does not call the gateway under test. Failures are reported with t.Fatal.
	PayOnPage(t testing.TB, providerPaymentID string, outcome payment.Outcome)
}

// checkoutChecks are the checks of payment.CheckoutGateway, run only for a CheckoutHarness.
var checkoutChecks = checkGroup{"Checkout", []check{
	{"start is pending with a confirmation URL; the same key is the same payment; Lookup reports the page", checkoutStartsPending},
	{"paid on the page, Lookup is succeeded with the saved method, which renewals charge", checkoutPaidSavesMethod},
	{"refused on the page, Lookup is the decline with its code", checkoutRefused},
}}

// checkout is a checkout request made as the engine makes it, and when it was made.
type checkout struct {
	req       payment.CheckoutParams
	createdAt time.Time
}

// checkoutGateway returns the gateway as a payment.CheckoutGateway and the harness as a
// CheckoutHarness, or skips the check.
func (s *suite) checkoutGateway() (payment.CheckoutGateway, CheckoutHarness) {
	s.t.Helper()
	h, ok := s.h.(CheckoutHarness)
	if !ok {
		s.t.Skip("the harness does not implement paymenttest.CheckoutHarness")
	}
	gw, ok := s.gw.(payment.CheckoutGateway)
	if !ok {
		s.t.Skip("the gateway does not implement payment.CheckoutGateway")
	}
	return gw, h
}

// newCheckout builds a checkout request under a fresh random key, shaped as the engine's.
func (s *suite) newCheckout() checkout {
	s.t.Helper()
	nonce := randomHex(s.t)
	key, err := payment.NewAttemptKey(payment.PurposeCheckout, nonce)
	require.NoError(s.t, err)
	receipt, err := payment.NewChargeReceipt("Conformance tariff, 1 month", price, currency,
		payment.VAT22Of122, payment.Contact{Email: "conformance@example.com"})
	require.NoError(s.t, err)
	return checkout{createdAt: time.Now().UTC(), req: payment.CheckoutParams{
		IdempotencyKey: key, CustomerID: "cust-" + nonce, Amount: price, Currency: currency,
		Description: "Conformance, 1 month", Receipt: receipt, ReturnURL: "https://shop.example.com/return",
		Metadata: map[string]string{payment.MetadataIdempotencyKey: key, "subscription_id": "sub-" + nonce},
	}}
}

// lookup is the LookupParams for c, naming providerPaymentID.
func (c checkout) lookup(providerPaymentID string) payment.LookupParams {
	return payment.LookupParams{IdempotencyKey: c.req.IdempotencyKey, ProviderPaymentID: providerPaymentID, CreatedAt: c.createdAt}
}

// started starts c and requires a pending payment with a confirmation URL, amount and
// currency echoed.
func (s *suite) started(gw payment.CheckoutGateway, c checkout) payment.CheckoutResult {
	s.t.Helper()
	res, err := gw.StartCheckout(s.ctx, c.req)
	require.NoError(s.t, err, "StartCheckout")
	require.Equal(s.t, payment.OutcomePending, res.Outcome, "a checkout waits for the customer")
	require.NotEmpty(s.t, res.ProviderPaymentID, "ProviderPaymentID is required when pending")
	require.NotEmpty(s.t, res.ConfirmationURL, "ConfirmationURL is required when pending")
	require.Equal(s.t, c.req.Amount, res.Amount, "Amount must echo the request's")
	require.Equal(s.t, c.req.Currency, res.Currency, "Currency must echo the request's")
	return res
}

// checkoutStartsPending: StartCheckout answers pending with a confirmation URL; the same key
// answers the same payment and makes no second; Lookup finds it pending, with its page.
func checkoutStartsPending(s *suite) {
	gw, _ := s.checkoutGateway()
	before := s.payments()
	c := s.newCheckout()
	first := s.started(gw, c)
	again := s.started(gw, c)
	require.Equal(s.t, first.ProviderPaymentID, again.ProviderPaymentID, "the same key is the same payment")
	require.Equal(s.t, before+1, s.payments(), "two StartCheckouts under one key made more than one provider payment")
	for _, id := range []string{first.ProviderPaymentID, ""} {
		got, err := s.gw.Lookup(s.ctx, c.lookup(id))
		require.NoError(s.t, err, "Lookup of a started checkout")
		require.Equal(s.t, payment.OutcomePending, got.Outcome, "an unpaid checkout is pending")
		require.Equal(s.t, first.ProviderPaymentID, got.ProviderPaymentID)
		require.Equal(s.t, first.ConfirmationURL, got.ConfirmationURL,
			"Lookup of a pending checkout reports its page (a lost StartCheckout answer is recovered only so)")
	}
}

// checkoutPaidSavesMethod: once the customer pays on the page, Lookup answers succeeded with
// the saved method in ChargeResult.PaymentMethod, and a renewal Charge of that method
// succeeds as a payment of its own.
func checkoutPaidSavesMethod(s *suite) {
	gw, h := s.checkoutGateway()
	c := s.newCheckout()
	started := s.started(gw, c)
	h.PayOnPage(s.t, started.ProviderPaymentID, payment.OutcomeSucceeded)
	got, err := s.gw.Lookup(s.ctx, c.lookup(started.ProviderPaymentID))
	require.NoError(s.t, err, "Lookup of a paid checkout")
	require.Equal(s.t, payment.OutcomeSucceeded, got.Outcome)
	require.Equal(s.t, started.ProviderPaymentID, got.ProviderPaymentID, "the paid payment is the started one")
	require.Equal(s.t, c.req.Amount, got.Amount)
	require.NotEmpty(s.t, got.PaymentMethod, "a paid checkout reports the saved method in ChargeResult.PaymentMethod")

	before := s.payments()
	renewal := s.newCharge(got.PaymentMethod, price)
	res, err := s.gw.Charge(s.ctx, renewal.req)
	require.NoError(s.t, err, "a renewal charge of the method the checkout saved")
	s.requireCharge(res, renewal, payment.OutcomeSucceeded)
	require.NotEqual(s.t, started.ProviderPaymentID, res.ProviderPaymentID, "the renewal is a payment of its own")
	require.Equal(s.t, before+1, s.payments())
}

// checkoutRefused: a checkout refused on the page (or abandoned) is a decline at Lookup, with
// the provider's code.
func checkoutRefused(s *suite) {
	gw, h := s.checkoutGateway()
	c := s.newCheckout()
	started := s.started(gw, c)
	h.PayOnPage(s.t, started.ProviderPaymentID, payment.OutcomeSoftDeclined)
	got, err := s.gw.Lookup(s.ctx, c.lookup(started.ProviderPaymentID))
	require.NoError(s.t, err, "Lookup of a refused checkout")
	require.Equal(s.t, payment.OutcomeSoftDeclined, got.Outcome)
	require.Equal(s.t, started.ProviderPaymentID, got.ProviderPaymentID)
	require.NotEmpty(s.t, got.DeclineCode, "a decline carries the provider's code")
}
