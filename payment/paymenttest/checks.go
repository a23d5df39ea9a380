package paymenttest

import (
	"strings"
	"sync"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

// check is one rule of the contract and the test of it.
type check struct {
	name string
	run  func(s *suite)
}

// checkGroup is the checks of one method (or one concern), run as one subtest.
type checkGroup struct {
	name   string
	checks []check
}

// checks is the suite, in reading order: each name states the rule it pins.
var checks = []checkGroup{
	{"Charge", []check{
		{"success names the payment and echoes amount and currency", chargeSucceeds},
		{"same key twice is one charge", chargeSameKeyTwice},
		{"concurrent charges under one key are one charge", chargeSameKeyConcurrently},
		{"same key with another amount is never a second charge", chargeSameKeyOtherAmount},
		{"different keys are different charges", chargeDifferentKeys},
		{"soft decline is a result with a decline code, not an error", chargeDeclines(SoftDecline, payment.OutcomeSoftDeclined)},
		{"hard decline is a result with a decline code, not an error", chargeDeclines(HardDecline, payment.OutcomeHardDeclined)},
		{"lost answer is an error or the one recovered payment, never a decline; Lookup and a repeat find the one charge", chargeLostAnswer},
		{"failure before the provider is an error; Lookup answers ErrNotFound; the key then charges once", chargeFailsBeforeProvider},
	}},
	{"Lookup", []check{
		{"never-seen key is ErrNotFound and charges nothing", lookupNeverSeen},
		{"unseen key naming another key's payment is ErrNotFound", lookupForgedUnseenKey},
		{"a key's lookup naming another key's payment never answers that payment", lookupForgedSeenKey},
		{"pending settled as succeeded is reflected", lookupPendingSettles(payment.OutcomeSucceeded)},
		{"pending settled as soft decline is reflected", lookupPendingSettles(payment.OutcomeSoftDeclined)},
		{"pending settled as hard decline is reflected", lookupPendingSettles(payment.OutcomeHardDeclined)},
	}},
	{"Refund", []check{
		{"refund names itself and echoes the payment, amount and currency", refundSucceeds},
		{"same key twice is one refund", refundSameKeyTwice},
		{"concurrent refunds under one key are one refund", refundSameKeyConcurrently},
		{"same key with another amount is never a second refund", refundSameKeyOtherAmount},
		{"partial refunds add up to the payment and no further", refundPartialsAddUp},
		{"refund above what is left is an error and moves no money", refundAboveLeft},
		{"refund of a pending payment is an error and moves no money", refundOfPending},
		{"refund of a declined payment is an error", refundOfDeclined},
		{"LookupRefund of a never-seen key is ErrNotFound", lookupRefundNeverSeen},
		{"LookupRefund of an unseen key naming another key's refund is ErrNotFound", lookupRefundForged},
	}},
	{"Context", []check{
		{"canceled Charge is an error, never a decline; the key then charges once", canceledCharge},
		{"canceled Lookup is an error, never ErrNotFound", canceledLookup},
		{"canceled Refund is an error; the key then refunds once", canceledRefund},
		{"canceled LookupRefund is an error, never ErrNotFound", canceledLookupRefund},
	}},
	{"Validation", []check{
		{"charge without a key is refused before the provider", invalidChargeKey},
		{"charge of a card number is refused before the provider, without repeating it", invalidChargeCardNumber},
		{"invalid refund is refused before the provider", invalidRefund},
		{"lookups without a key are errors, never ErrNotFound", invalidLookups},
	}},
}

// chargeSucceeds: a succeeded charge names the provider payment and echoes amount and
// currency; Lookup answers the same payment.
func chargeSucceeds(s *suite) {
	c, res := s.succeeded()
	got := s.lookedUp(c, res.ProviderPaymentID)
	s.requireCharge(got, c, payment.OutcomeSucceeded)
	require.Equal(s.t, res.ProviderPaymentID, got.ProviderPaymentID, "Lookup names the charge's payment")
	got = s.lookedUp(c, "")
	require.Equal(s.t, res.ProviderPaymentID, got.ProviderPaymentID, "Lookup by key alone names the charge's payment")
}

// chargeSameKeyTwice: a second Charge under a key returns the first one's payment and makes
// no second.
func chargeSameKeyTwice(s *suite) {
	before := s.payments()
	c, first := s.succeeded()
	again, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err, "the repeated Charge")
	s.requireCharge(again, c, payment.OutcomeSucceeded)
	require.Equal(s.t, first.ProviderPaymentID, again.ProviderPaymentID, "the same key is the same payment")
	require.Equal(s.t, before+1, s.payments(), "two Charges under one key made more than one provider payment")
}

// chargeSameKeyConcurrently: N Charges at once under one key make one provider payment. A call
// may fail (a provider answering "request in progress" is an unknown outcome), but every
// answer names the one payment, and Lookup finds it.
func chargeSameKeyConcurrently(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(Succeed), price)
	results := make([]payment.ChargeResult, concurrency)
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() { results[i], errs[i] = s.gw.Charge(s.ctx, c.req) })
	}
	wg.Wait()
	found := s.lookedUp(c, "")
	s.requireCharge(found, c, payment.OutcomeSucceeded)
	for i := range concurrency {
		if errs[i] != nil {
			continue
		}
		s.requireCharge(results[i], c, payment.OutcomeSucceeded)
		require.Equal(s.t, found.ProviderPaymentID, results[i].ProviderPaymentID, "call %d of %d under one key", i+1, concurrency)
	}
	require.Equal(s.t, before+1, s.payments(), "%d concurrent Charges under one key made more than one provider payment", concurrency)
}

// chargeSameKeyOtherAmount: a Charge reusing a key for another amount (a bug in the caller)
// is refused with an error or answered with the key's first payment; it never makes a second.
func chargeSameKeyOtherAmount(s *suite) {
	before := s.payments()
	c, first := s.succeeded()
	other := c
	other.req.Amount = price + 100
	receipt, err := payment.NewChargeReceipt("Conformance tariff, 1 month", other.req.Amount, currency,
		payment.VAT22Of122, payment.Contact{Email: "conformance@example.com"})
	require.NoError(s.t, err)
	other.req.Receipt = receipt
	res, err := s.gw.Charge(s.ctx, other.req)
	if err == nil {
		require.Equal(s.t, first.ProviderPaymentID, res.ProviderPaymentID,
			"a key reused for another amount must be refused or answer the key's payment, not make another")
	}
	require.Equal(s.t, before+1, s.payments(), "a key reused for another amount made a second payment")
	got := s.lookedUp(c, "")
	s.requireCharge(got, c, payment.OutcomeSucceeded)
	require.Equal(s.t, first.ProviderPaymentID, got.ProviderPaymentID)
}

// chargeDifferentKeys: two keys are two payments, even of the same method and amount.
func chargeDifferentKeys(s *suite) {
	before := s.payments()
	token := s.method(Succeed)
	c1, c2 := s.newCharge(token, price), s.newCharge(token, price)
	r1, err := s.gw.Charge(s.ctx, c1.req)
	require.NoError(s.t, err)
	s.requireCharge(r1, c1, payment.OutcomeSucceeded)
	r2, err := s.gw.Charge(s.ctx, c2.req)
	require.NoError(s.t, err)
	s.requireCharge(r2, c2, payment.OutcomeSucceeded)
	require.NotEqual(s.t, r1.ProviderPaymentID, r2.ProviderPaymentID, "two keys must be two payments")
	require.Equal(s.t, before+2, s.payments())
	require.Equal(s.t, r1.ProviderPaymentID, s.lookedUp(c1, "").ProviderPaymentID)
	require.Equal(s.t, r2.ProviderPaymentID, s.lookedUp(c2, "").ProviderPaymentID)
}

// chargeDeclines: a decline is a result (no error) with its outcome and code; Lookup and a
// repeat under the key answer the same decline and make no new payment.
func chargeDeclines(b Behaviour, want payment.Outcome) func(*suite) {
	return func(s *suite) {
		c := s.newCharge(s.method(b), price)
		res, err := s.gw.Charge(s.ctx, c.req)
		require.NoError(s.t, err, "a decline is a result, not an error")
		s.requireCharge(res, c, want)
		after := s.payments()
		got := s.lookedUp(c, res.ProviderPaymentID)
		s.requireCharge(got, c, want)
		again, err := s.gw.Charge(s.ctx, c.req)
		require.NoError(s.t, err, "the repeated Charge of a declined key")
		s.requireCharge(again, c, want)
		if res.ProviderPaymentID != "" {
			require.Equal(s.t, res.ProviderPaymentID, again.ProviderPaymentID, "the same key is the same payment")
		}
		require.Equal(s.t, after, s.payments(), "Lookup or a repeat of a declined key made a provider payment")
	}
}

// chargeLostAnswer: when the provider charged but the answer was lost, Charge either returns
// an error (outcome unknown) or, when the adapter retried under the same key and the provider
// replayed its answer, the one succeeded payment: the contract (payment.Gateway) makes an error
// "unknown" and a recovered answer the truth. Never a decline, never a second charge. Lookup
// then finds the charge succeeded, and a repeat under the key returns that payment.
func chargeLostAnswer(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(LostAnswer), price)
	res, err := s.gw.Charge(s.ctx, c.req)
	if err != nil {
		require.NotErrorIs(s.t, err, payment.ErrNotFound)
	} else {
		s.requireCharge(res, c, payment.OutcomeSucceeded)
	}
	found := s.lookedUp(c, "")
	s.requireCharge(found, c, payment.OutcomeSucceeded)
	if err == nil {
		require.Equal(s.t, found.ProviderPaymentID, res.ProviderPaymentID, "the recovered answer must name the charge that landed")
	}
	again, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err, "the repeated Charge after a lost answer")
	s.requireCharge(again, c, payment.OutcomeSucceeded)
	require.Equal(s.t, found.ProviderPaymentID, again.ProviderPaymentID, "the repeat must return the charge that landed")
	require.Equal(s.t, before+1, s.payments(), "a lost answer and its repeat charged more than once")
}

// chargeFailsBeforeProvider: a call that failed before the provider took it is an error; the
// provider holds nothing (Lookup: ErrNotFound), and charging again under the same key makes
// exactly one payment.
func chargeFailsBeforeProvider(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(FailBeforeProvider), price)
	res, err := s.gw.Charge(s.ctx, c.req)
	require.Error(s.t, err, "a call that failed before the provider must return an error, got outcome %q", res.Outcome)
	_, err = s.gw.Lookup(s.ctx, c.lookup(""))
	s.requireNotFound(err, "Lookup of a key the provider never took")
	require.Equal(s.t, before, s.payments())
	again, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err, "Charge again under the same key after ErrNotFound")
	s.requireCharge(again, c, payment.OutcomeSucceeded)
	require.Equal(s.t, again.ProviderPaymentID, s.lookedUp(c, "").ProviderPaymentID)
	require.Equal(s.t, before+1, s.payments())
}

// lookupNeverSeen: Lookup of a key never charged is ErrNotFound, makes no payment, and leaves
// the key free: a Charge under it then makes one payment.
func lookupNeverSeen(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(Succeed), price)
	for range 2 {
		_, err := s.gw.Lookup(s.ctx, c.lookup(""))
		s.requireNotFound(err, "Lookup of a never-seen key")
	}
	require.Equal(s.t, before, s.payments(), "Lookup made a provider payment")
	res, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err)
	s.requireCharge(res, c, payment.OutcomeSucceeded)
	require.Equal(s.t, before+1, s.payments())
}

// lookupForgedUnseenKey: Lookup of a never-seen key that names another key's payment (a
// webhook body may name any payment) is ErrNotFound, not that payment.
func lookupForgedUnseenKey(s *suite) {
	_, paid := s.succeeded()
	before := s.payments()
	other := s.newCharge(s.method(Succeed), price)
	res, err := s.gw.Lookup(s.ctx, other.lookup(paid.ProviderPaymentID))
	require.ErrorIs(s.t, err, payment.ErrNotFound,
		"Lookup of an unseen key naming payment %s must check the payment's key and answer ErrNotFound; got %+v", paid.ProviderPaymentID, res)
	require.Equal(s.t, before, s.payments(), "Lookup made a provider payment")
}

// lookupForgedSeenKey: Lookup of a charged key that names another key's payment answers the
// key's own payment or an error, never the payment named.
func lookupForgedSeenKey(s *suite) {
	_, paidA := s.succeeded()
	b, paidB := s.succeeded()
	res, err := s.gw.Lookup(s.ctx, b.lookup(paidA.ProviderPaymentID))
	if err != nil {
		return // ErrNotFound (the contract's word) or "still unknown": both safe
	}
	require.NotEqual(s.t, paidA.ProviderPaymentID, res.ProviderPaymentID,
		"Lookup under one key answered another key's payment, named in the request")
	s.requireCharge(res, b, payment.OutcomeSucceeded)
	require.Equal(s.t, paidB.ProviderPaymentID, res.ProviderPaymentID)
}

// lookupPendingSettles: a pending charge answers pending with its payment until the provider
// settles it; Lookup then answers the settlement; a repeat under the key makes no payment.
func lookupPendingSettles(outcome payment.Outcome) func(*suite) {
	return func(s *suite) {
		before := s.payments()
		c := s.newCharge(s.method(Pending), price)
		res, err := s.gw.Charge(s.ctx, c.req)
		require.NoError(s.t, err)
		s.requireCharge(res, c, payment.OutcomePending)
		got := s.lookedUp(c, res.ProviderPaymentID)
		s.requireCharge(got, c, payment.OutcomePending)
		require.Equal(s.t, res.ProviderPaymentID, got.ProviderPaymentID)

		s.h.Settle(s.t, res.ProviderPaymentID, outcome)
		got = s.lookedUp(c, res.ProviderPaymentID)
		s.requireCharge(got, c, outcome)
		require.Equal(s.t, res.ProviderPaymentID, got.ProviderPaymentID, "the settled payment is the pending one")

		again, err := s.gw.Charge(s.ctx, c.req)
		require.NoError(s.t, err, "the repeated Charge of a settled pending key")
		require.Contains(s.t, []payment.Outcome{payment.OutcomePending, outcome}, again.Outcome,
			"a repeat answers the first answer or the payment as it stands")
		require.Equal(s.t, res.ProviderPaymentID, again.ProviderPaymentID, "the same key is the same payment")
		require.Equal(s.t, before+1, s.payments())
	}
}

// refundSucceeds: a refund names itself and echoes the payment, amount and currency;
// LookupRefund answers the same refund.
func refundSucceeds(s *suite) {
	_, paid := s.succeeded()
	req := s.newRefund(paid.ProviderPaymentID, price)
	res := s.refunded(req)
	for _, id := range []string{res.ProviderRefundID, ""} {
		got, err := s.gw.LookupRefund(s.ctx, refundLookup(req, id))
		require.NoError(s.t, err, "LookupRefund of a refund made")
		s.requireRefund(got, req)
		require.Equal(s.t, res.ProviderRefundID, got.ProviderRefundID, "LookupRefund names the refund")
	}
}

// refundSameKeyTwice: a second Refund under a key returns the first refund and takes nothing
// more: the rest of the payment is still refundable, and not a kopeck beyond it.
func refundSameKeyTwice(s *suite) {
	_, paid := s.succeeded()
	half := price / 2
	req := s.newRefund(paid.ProviderPaymentID, half)
	first := s.refunded(req)
	again := s.refunded(req)
	require.Equal(s.t, first.ProviderRefundID, again.ProviderRefundID, "the same key is the same refund")
	s.refunded(s.newRefund(paid.ProviderPaymentID, price-half))
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, 1), "beyond the payment (the repeat refunded twice?)")
}

// refundSameKeyConcurrently: N Refunds at once under one key are one refund.
func refundSameKeyConcurrently(s *suite) {
	_, paid := s.succeeded()
	half := price / 2
	req := s.newRefund(paid.ProviderPaymentID, half)
	results := make([]payment.RefundResult, concurrency)
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() { results[i], errs[i] = s.gw.Refund(s.ctx, req) })
	}
	wg.Wait()
	found, err := s.gw.LookupRefund(s.ctx, refundLookup(req, ""))
	require.NoError(s.t, err, "LookupRefund after %d concurrent Refunds", concurrency)
	s.requireRefund(found, req)
	for i := range concurrency {
		if errs[i] != nil {
			continue
		}
		s.requireRefund(results[i], req)
		require.Equal(s.t, found.ProviderRefundID, results[i].ProviderRefundID, "call %d of %d under one key", i+1, concurrency)
	}
	s.refunded(s.newRefund(paid.ProviderPaymentID, price-half))
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, 1), "beyond the payment (concurrent calls refunded twice?)")
}

// refundSameKeyOtherAmount: a Refund reusing a key for another amount is refused with an error
// or answered with the key's first refund; it takes nothing more.
func refundSameKeyOtherAmount(s *suite) {
	_, paid := s.succeeded()
	first := int64(30000)
	req := s.newRefund(paid.ProviderPaymentID, first)
	made := s.refunded(req)
	other := s.newRefund(paid.ProviderPaymentID, 40000)
	other.IdempotencyKey, other.Metadata = req.IdempotencyKey, req.Metadata
	res, err := s.gw.Refund(s.ctx, other)
	if err == nil {
		require.Equal(s.t, made.ProviderRefundID, res.ProviderRefundID,
			"a refund key reused for another amount must be refused or answer the key's refund, not make another")
	}
	s.refunded(s.newRefund(paid.ProviderPaymentID, price-first))
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, 1), "beyond the payment (the reused key refunded again?)")
}

// refundPartialsAddUp: refunds under their own keys add up to the payment, each a refund of
// its own, and nothing is refundable after.
func refundPartialsAddUp(s *suite) {
	_, paid := s.succeeded()
	parts := []int64{30000, 30000, price - 60000}
	ids := map[string]bool{}
	for _, amount := range parts {
		ids[s.refunded(s.newRefund(paid.ProviderPaymentID, amount)).ProviderRefundID] = true
	}
	require.Len(s.t, ids, len(parts), "three keys must be three refunds")
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, 1), "of a fully refunded payment")
}

// refundAboveLeft: a refund of more than is left is an error and takes nothing: what is left
// can still be refunded.
func refundAboveLeft(s *suite) {
	_, paid := s.succeeded()
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, price+1), "of more than was charged")
	first := int64(50000)
	s.refunded(s.newRefund(paid.ProviderPaymentID, first))
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, price-first+1), "of more than is left")
	s.refunded(s.newRefund(paid.ProviderPaymentID, price-first))
}

// refundOfPending: a pending payment has nothing to refund yet; once it succeeds, all of it
// does.
func refundOfPending(s *suite) {
	c := s.newCharge(s.method(Pending), price)
	res, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err)
	s.requireCharge(res, c, payment.OutcomePending)
	s.requireRefundRefused(s.newRefund(res.ProviderPaymentID, price), "of a pending payment")
	s.h.Settle(s.t, res.ProviderPaymentID, payment.OutcomeSucceeded)
	s.refunded(s.newRefund(res.ProviderPaymentID, price))
}

// refundOfDeclined: a declined payment has nothing to refund.
func refundOfDeclined(s *suite) {
	c := s.newCharge(s.method(SoftDecline), price)
	res, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err)
	s.requireCharge(res, c, payment.OutcomeSoftDeclined)
	if res.ProviderPaymentID == "" {
		s.t.Skip("the gateway names no payment for a declined charge: nothing a refund could name")
	}
	s.requireRefundRefused(s.newRefund(res.ProviderPaymentID, price), "of a declined payment")
}

// lookupRefundNeverSeen: LookupRefund of a key never refunded is ErrNotFound, and refunds
// nothing: the whole payment is still refundable.
func lookupRefundNeverSeen(s *suite) {
	_, paid := s.succeeded()
	req := s.newRefund(paid.ProviderPaymentID, price)
	_, err := s.gw.LookupRefund(s.ctx, refundLookup(req, ""))
	s.requireNotFound(err, "LookupRefund of a never-seen key")
	s.refunded(req)
}

// lookupRefundForged: LookupRefund of a never-seen key that names another key's refund is
// ErrNotFound.
func lookupRefundForged(s *suite) {
	_, paid := s.succeeded()
	made := s.refunded(s.newRefund(paid.ProviderPaymentID, price/2))
	other := s.newRefund(paid.ProviderPaymentID, price-price/2)
	res, err := s.gw.LookupRefund(s.ctx, refundLookup(other, made.ProviderRefundID))
	require.ErrorIs(s.t, err, payment.ErrNotFound,
		"LookupRefund of an unseen key naming refund %s must check the refund's key and answer ErrNotFound; got %+v", made.ProviderRefundID, res)
}

// canceledCharge: a Charge with a canceled context is an error, never a decline; whatever it
// did, Charge under the same key with a live context then makes exactly one payment.
func canceledCharge(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(Succeed), price)
	res, err := s.gw.Charge(canceled(), c.req)
	require.Error(s.t, err, "Charge with a canceled context must return an error, got outcome %q", res.Outcome)
	again, err := s.gw.Charge(s.ctx, c.req)
	require.NoError(s.t, err)
	s.requireCharge(again, c, payment.OutcomeSucceeded)
	require.Equal(s.t, before+1, s.payments(), "a canceled Charge and its repeat made two payments")
}

// canceledLookup: a Lookup with a canceled context is an error, and not ErrNotFound: it saw
// nothing, so it cannot say the provider never saw the key (the engine would charge again).
func canceledLookup(s *suite) {
	c, _ := s.succeeded()
	res, err := s.gw.Lookup(canceled(), c.lookup(""))
	require.Error(s.t, err, "Lookup with a canceled context must return an error, got %+v", res)
	require.NotErrorIs(s.t, err, payment.ErrNotFound, "a canceled Lookup of a charged key answered ErrNotFound")
}

// canceledRefund: a Refund with a canceled context is an error; the same key with a live
// context then refunds once.
func canceledRefund(s *suite) {
	_, paid := s.succeeded()
	req := s.newRefund(paid.ProviderPaymentID, price)
	res, err := s.gw.Refund(canceled(), req)
	require.Error(s.t, err, "Refund with a canceled context must return an error, got outcome %q", res.Outcome)
	s.refunded(req)
	s.requireRefundRefused(s.newRefund(paid.ProviderPaymentID, 1), "of a fully refunded payment")
}

// canceledLookupRefund: a LookupRefund with a canceled context is an error, not ErrNotFound.
func canceledLookupRefund(s *suite) {
	_, paid := s.succeeded()
	req := s.newRefund(paid.ProviderPaymentID, price)
	s.refunded(req)
	res, err := s.gw.LookupRefund(canceled(), refundLookup(req, ""))
	require.Error(s.t, err, "LookupRefund with a canceled context must return an error, got %+v", res)
	require.NotErrorIs(s.t, err, payment.ErrNotFound, "a canceled LookupRefund of a refund made answered ErrNotFound")
}

// invalidChargeKey: a charge without a key is refused with payment.ErrInvalid and makes no
// payment.
func invalidChargeKey(s *suite) {
	before := s.payments()
	c := s.newCharge(s.method(Succeed), price)
	c.req.IdempotencyKey = ""
	res, err := s.gw.Charge(s.ctx, c.req)
	require.ErrorIs(s.t, err, payment.ErrInvalid, "a charge without a key must be refused with the request's "+
		"*payment.ValidationError (call req.Validate first); got %+v", res)
	require.Equal(s.t, before, s.payments())
}

// invalidChargeCardNumber: a card number where the token goes is refused with
// payment.ErrCardData, the error does not repeat it (TERMS 5.1), and nothing reaches the
// provider.
func invalidChargeCardNumber(s *suite) {
	const pan = "4111 1111 1111 1111"
	before := s.payments()
	c := s.newCharge(s.method(Succeed), price)
	c.req.PaymentMethod = pan
	res, err := s.gw.Charge(s.ctx, c.req)
	require.ErrorIs(s.t, err, payment.ErrCardData, "a card number for a token must be refused with the request's "+
		"*payment.ValidationError (call req.Validate first); got %+v", res)
	require.NotContains(s.t, err.Error(), pan, "the error repeats the card number")
	require.NotContains(s.t, err.Error(), strings.ReplaceAll(pan, " ", ""), "the error repeats the card number")
	require.Equal(s.t, before, s.payments())
	_, err = s.gw.Lookup(s.ctx, c.lookup(""))
	s.requireNotFound(err, "Lookup of a key whose request was refused")
}

// invalidRefund: a refund without a key, or of nothing, is refused with payment.ErrInvalid and
// takes nothing.
func invalidRefund(s *suite) {
	_, paid := s.succeeded()
	noKey := s.newRefund(paid.ProviderPaymentID, price)
	noKey.IdempotencyKey = ""
	_, err := s.gw.Refund(s.ctx, noKey)
	require.ErrorIs(s.t, err, payment.ErrInvalid, "a refund without a key")
	zero := s.newRefund(paid.ProviderPaymentID, price)
	zero.Amount = 0
	_, err = s.gw.Refund(s.ctx, zero)
	require.ErrorIs(s.t, err, payment.ErrInvalid, "a refund of 0")
	s.refunded(s.newRefund(paid.ProviderPaymentID, price))
}

// invalidLookups: Lookup and LookupRefund without a key are errors, and not ErrNotFound (which
// would tell the engine to charge again).
func invalidLookups(s *suite) {
	_, paid := s.succeeded()
	_, err := s.gw.Lookup(s.ctx, payment.LookupParams{ProviderPaymentID: paid.ProviderPaymentID})
	require.Error(s.t, err, "Lookup without a key")
	require.NotErrorIs(s.t, err, payment.ErrNotFound, "Lookup without a key answered ErrNotFound")
	_, err = s.gw.LookupRefund(s.ctx, payment.RefundLookupParams{ProviderPaymentID: paid.ProviderPaymentID})
	require.Error(s.t, err, "LookupRefund without a key")
	require.NotErrorIs(s.t, err, payment.ErrNotFound, "LookupRefund without a key answered ErrNotFound")
}
