package paymenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

// The amounts and the currency of the suite's requests.
const (
	// price is the amount of every charge: 990.00 RUB.
	price = int64(99000)
	// currency is the currency of every request.
	currency = "RUB"
	// concurrency is how many calls the concurrency checks make at once under one key.
	concurrency = 8
)

// suite is one check's bundle: the test, its harness and the gateway under test.
type suite struct {
	t   *testing.T
	h   Harness
	gw  payment.Gateway
	ctx context.Context
}

// newSuite bundles a check's harness.
func newSuite(t *testing.T, h Harness) *suite {
	t.Helper()
	require.NotNil(t, h, "newHarness returned nil")
	gw := h.Gateway()
	require.NotNil(t, gw, "Harness.Gateway returned nil")
	return &suite{t: t, h: h, gw: gw, ctx: t.Context()}
}

// method returns a new payment method behaving as b, or skips the check when the harness
// cannot simulate b.
func (s *suite) method(b Behaviour) string {
	s.t.Helper()
	token := s.h.NewPaymentMethod(s.t, b)
	if token == "" {
		s.t.Skipf("the harness cannot simulate %s", b)
	}
	return token
}

// payments is the harness's count of provider payments.
func (s *suite) payments() int {
	s.t.Helper()
	return s.h.ProviderPayments(s.t)
}

// charge is a charge request made the way the engine makes it, and when its attempt was made.
type charge struct {
	req       payment.ChargeParams
	createdAt time.Time
}

// newCharge builds the request of a new renewal attempt under a fresh random key, charging
// token amount kopecks, with payment.Attempt.ChargeParams as the engine does.
func (s *suite) newCharge(token string, amount int64) charge {
	s.t.Helper()
	nonce := randomHex(s.t)
	key, err := payment.NewAttemptKey(payment.PurposeRenewal, nonce)
	require.NoError(s.t, err)
	now := time.Now().UTC()
	a, err := payment.NewAttempt(payment.AttemptSpec{
		ID: "att-" + nonce, SubscriptionID: "sub-" + nonce, Purpose: payment.PurposeRenewal,
		PeriodNumber: 2, Number: 1, Amount: amount, Currency: currency, DueAt: now, IdempotencyKey: key,
	}, now)
	require.NoError(s.t, err)
	receipt, err := payment.NewChargeReceipt("Conformance tariff, 1 month", amount, currency,
		payment.VAT22Of122, payment.Contact{Email: "conformance@example.com"})
	require.NoError(s.t, err)
	req, err := a.ChargeParams(payment.PaymentMethodStatus{Token: token, ConsentGivenAt: now.Add(-time.Hour)},
		payment.ChargeDetails{CustomerID: "cust-" + nonce, Description: "Conformance, 1 month", Receipt: receipt,
			Metadata: map[string]string{"subscription_id": "sub-" + nonce, "period": "2"}}, now)
	require.NoError(s.t, err)
	return charge{req: req, createdAt: now}
}

// lookup is the LookupParams for c, naming providerPaymentID ("" when no answer gave one).
func (c charge) lookup(providerPaymentID string) payment.LookupParams {
	return payment.LookupParams{IdempotencyKey: c.req.IdempotencyKey, ProviderPaymentID: providerPaymentID, CreatedAt: c.createdAt}
}

// succeeded charges a new Succeed method price kopecks and requires success.
func (s *suite) succeeded() (charge, payment.ChargeResult) {
	s.t.Helper()
	c := s.newCharge(s.method(Succeed), price)
	res, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err, "Charge of a Succeed method")
	s.requireCharge(res, c, payment.OutcomeSucceeded)
	return c, res
}

// requireCharge requires res to be a well-formed answer about c with outcome: the provider's
// id set when succeeded or pending, the amount and currency echoed (0 and "" are allowed for
// a decline), and a DeclineCode on a decline.
func (s *suite) requireCharge(res payment.ChargeResult, c charge, outcome payment.Outcome) {
	s.t.Helper()
	require.Equal(s.t, outcome, res.Outcome, "outcome of the charge under %s", c.req.IdempotencyKey)
	switch outcome {
	case payment.OutcomeSucceeded, payment.OutcomePending:
		require.NotEmpty(s.t, res.ProviderPaymentID, "ProviderPaymentID is required when %s", outcome)
		require.Equal(s.t, c.req.Amount, res.Amount, "Amount must echo the request's when %s", outcome)
		require.Equal(s.t, c.req.Currency, res.Currency, "Currency must echo the request's when %s", outcome)
	case payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined:
		require.NotEmpty(s.t, res.DeclineCode, "a decline carries the provider's code in DeclineCode")
		require.Contains(s.t, []int64{0, c.req.Amount}, res.Amount, "a decline's Amount is 0 or the request's")
		require.Contains(s.t, []string{"", c.req.Currency}, res.Currency, "a decline's Currency is empty or the request's")
	}
}

// lookedUp looks c up (naming providerPaymentID) and requires an answer.
func (s *suite) lookedUp(c charge, providerPaymentID string) payment.ChargeResult {
	s.t.Helper()
	res, err := s.gw.Lookup(s.ctx, c.lookup(providerPaymentID))
	require.NoError(s.t, err, "Lookup of the charge under %s", c.req.IdempotencyKey)
	return res
}

// requireNotFound requires err to be payment.ErrNotFound.
func (s *suite) requireNotFound(err error, what string) {
	s.t.Helper()
	require.ErrorIs(s.t, err, payment.ErrNotFound, "%s must answer payment.ErrNotFound", what)
}

// newRefund builds a refund of amount kopecks of providerPaymentID under a fresh random key,
// shaped as the engine's.
func (s *suite) newRefund(providerPaymentID string, amount int64) payment.RefundParams {
	s.t.Helper()
	key := "refund_" + randomHex(s.t)
	receipt, err := payment.NewRefundReceipt("Conformance tariff, 1 month", amount, currency,
		payment.VAT22Of122, payment.Contact{Email: "conformance@example.com"})
	require.NoError(s.t, err)
	return payment.RefundParams{
		IdempotencyKey: key, ProviderPaymentID: providerPaymentID, Amount: amount, Currency: currency,
		Description: "refund, conformance", Receipt: receipt,
		Metadata: map[string]string{payment.MetadataIdempotencyKey: key},
	}
}

// refundLookup is the RefundLookupParams for req, naming providerRefundID.
func refundLookup(req payment.RefundParams, providerRefundID string) payment.RefundLookupParams {
	return payment.RefundLookupParams{IdempotencyKey: req.IdempotencyKey, ProviderPaymentID: req.ProviderPaymentID,
		ProviderRefundID: providerRefundID, CreatedAt: time.Now().UTC().Add(-time.Minute)}
}

// refunded makes req and requires it taken: succeeded or pending (a pending refund holds its
// amount), with the refund's id, the payment, the amount and the currency echoed.
func (s *suite) refunded(req payment.RefundParams) payment.RefundResult {
	s.t.Helper()
	res, err := s.gw.Refund(s.ctx, req)
	require.NoError(s.t, err, "Refund of %d of %s", req.Amount, req.ProviderPaymentID)
	s.requireRefund(res, req)
	return res
}

// requireRefund requires res to be a taken refund of req.
func (s *suite) requireRefund(res payment.RefundResult, req payment.RefundParams) {
	s.t.Helper()
	require.Contains(s.t, []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomePending}, res.Outcome,
		"outcome of the refund under %s (%s %s)", req.IdempotencyKey, res.DeclineCode, res.DeclineMessage)
	require.NotEmpty(s.t, res.ProviderRefundID, "ProviderRefundID is required when %s", res.Outcome)
	require.Equal(s.t, req.ProviderPaymentID, res.ProviderPaymentID, "ProviderPaymentID must echo the refunded payment")
	require.Equal(s.t, req.Amount, res.Amount, "Amount must echo the request's")
	require.Equal(s.t, req.Currency, res.Currency, "Currency must echo the request's")
}

// requireRefundRefused requires req to be refused with an error (the suite's reading of the
// contract: a refund the payment cannot cover is a bug in the caller, not a decline) and that
// LookupRefund then reports no refund that took money.
func (s *suite) requireRefundRefused(req payment.RefundParams, why string) {
	s.t.Helper()
	res, err := s.gw.Refund(s.ctx, req)
	require.Error(s.t, err, "a refund %s must be refused with an error (not a decline: the money need not "+
		"go back another way); got outcome %q", why, res.Outcome)
	lres, lerr := s.gw.LookupRefund(s.ctx, refundLookup(req, ""))
	if lerr == nil {
		require.NotContains(s.t, []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomePending}, lres.Outcome,
			"LookupRefund of the refused refund %s", why)
	}
}

// canceled returns a context that is already canceled.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// randomHex returns 32 random hex digits: key nonces no earlier run used.
func randomHex(t testing.TB) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}
