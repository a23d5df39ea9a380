package billingtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/smm-gpt/billing/payment"
)

// Gateway is a scriptable fake payment provider: a payment.Gateway that keeps its payments in
// memory, for the engine's tests, host applications' tests and the demo. It is safe for
// concurrent use. Make it with NewGateway.
//
// It keeps the payment.Gateway contract the way a real provider does, so the engine's
// exactly-once charging is tested against the real rules:
//
//   - Charges and refunds are deduplicated by idempotency key: a second call under a key
//     returns the first call's result (as it stands now: a pending charge confirmed since is
//     reported confirmed) and moves no money. A second call under the key with another amount,
//     currency, payment method or customer (another payment) is refused with ErrKeyReused.
//   - Lookup and LookupRefund return what is stored under the key, or payment.ErrNotFound when
//     no call under the key was ever recorded.
//   - Every call is first checked with the request's Validate; a malformed request (a bug in
//     the caller) returns that *payment.ValidationError and records nothing.
//   - Every recorded charge gets the next provider payment id, "pay_1", "pay_2", … in the order
//     the gateway recorded them, declines included (a real provider makes a payment object for a
//     declined charge too); every recorded refund gets "rfd_1", "rfd_2", … likewise. A call that
//     records nothing (TimeoutBeforeCharge, an error) takes no id.
//   - Refunds of one payment never add up to more than it charged (see Refund).
//
// By default every charge and refund succeeds at once. Script, ScriptAll and ScriptRefunds
// queue other behaviours for the next calls; FailLookups and FailRefundLookups make lookups
// fail; SetLatency delays every answer; Land lands the charges held by LandsLater. Charges, ChargesFor, SuccessfulCharges, Refunds and
// Calls say what happened.
type Gateway struct {
	mu sync.Mutex

	latency time.Duration
	clock   interface{ Now() time.Time }

	// The scripts: per payment-method token, then for all charges; for refunds; lookup failures.
	byToken              map[string][]Behaviour
	all                  []Behaviour
	refundScript         []Behaviour
	lookupFailures       int
	refundLookupFailures int

	// The records, in the order they were made (index = number − 1).
	payments      []*paymentRecord
	paymentsByKey map[string]*paymentRecord
	paymentsByID  map[string]*paymentRecord
	refunds       []*refundRecord
	refundsByKey  map[string]*refundRecord
	refundsByID   map[string]*refundRecord
	// held are the LandsLater requests not landed yet, in the order they were held.
	held []payment.ChargeParams

	calls CallCounts
}

// The gateway implements payment.Gateway and payment.CheckoutGateway.
var (
	_ payment.Gateway         = (*Gateway)(nil)
	_ payment.CheckoutGateway = (*Gateway)(nil)
)

// CheckoutURLPrefix starts the ConfirmationURL of every checkout StartCheckout creates; the
// provider payment id follows.
const CheckoutURLPrefix = "https://checkout.billingtest.invalid/"

// StartCheckout creates, under req.IdempotencyKey, a payment the customer confirms on the
// provider's page (payment.CheckoutGateway): pending, with ConfirmationURL CheckoutURLPrefix
// followed by its provider payment id. The same key returns the same payment (another amount,
// currency or customer under it is ErrKeyReused). The test plays the customer with Confirm:
// OutcomeSucceeded pays it and saves the payment method "pm_<Number>", which later Lookups and
// the webhook's confirmation report in ChargeResult.PaymentMethod (and Charges shows as the
// charge's PaymentMethod); a decline is a refusal or an abandoned page. The Script of the
// token "" plays for checkouts, so a test can make one fail (TimeoutBeforeCharge, a decline);
// by default a checkout is pending.
func (g *Gateway) StartCheckout(ctx context.Context, req payment.CheckoutParams) (payment.CheckoutResult, error) {
	g.count(func(c *CallCounts) { c.Charge++ })
	if err := req.Validate(); err != nil {
		return payment.CheckoutResult{}, err
	}
	if err := g.wait(ctx); err != nil {
		return payment.CheckoutResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.paymentsByKey[req.IdempotencyKey]; ok {
		if p.saves == "" || p.req.CustomerID != req.CustomerID || p.req.Amount != req.Amount || p.req.Currency != req.Currency {
			return payment.CheckoutResult{}, fmt.Errorf("%w: checkout key %q was used for %d %s of %q",
				ErrKeyReused, req.IdempotencyKey, p.req.Amount, p.req.Currency, p.req.CustomerID)
		}
		return g.checkoutResult(p), nil
	}
	outcome, code, err := payment.OutcomePending, payment.OutcomePending, error(nil)
	if len(g.byToken[""]) > 0 {
		if outcome, code, err = g.nextChargeBehaviour("").play(); outcome == "" {
			return payment.CheckoutResult{}, err
		}
	}
	creq := payment.ChargeParams{IdempotencyKey: req.IdempotencyKey, CustomerID: req.CustomerID, Amount: req.Amount,
		Currency: req.Currency, Description: req.Description, Receipt: req.Receipt, Metadata: req.Metadata}
	p := g.record(creq, outcome, code)
	p.saves = "pm_" + strconv.Itoa(p.number)
	p.req.PaymentMethod = p.saves
	if outcome == payment.OutcomeSucceeded {
		p.res.PaymentMethod = p.saves
	}
	return g.checkoutResult(p), err
}

// checkoutResult is the answer about checkout p as it stands. Call with g.mu held.
func (g *Gateway) checkoutResult(p *paymentRecord) payment.CheckoutResult {
	out := payment.CheckoutResult{ChargeResult: p.res}
	if p.res.Outcome == payment.OutcomePending {
		out.ConfirmationURL = CheckoutURLPrefix + p.res.ProviderPaymentID
	}
	return out
}

// NewGateway returns an empty gateway: no payments, nothing scripted (every charge and refund
// succeeds), no latency, and webhook events stamped with the wall clock (see SetClock).
func NewGateway() *Gateway {
	return &Gateway{
		byToken:       map[string][]Behaviour{},
		paymentsByKey: map[string]*paymentRecord{},
		paymentsByID:  map[string]*paymentRecord{},
		refundsByKey:  map[string]*refundRecord{},
		refundsByID:   map[string]*refundRecord{},
	}
}

// Behaviour is what the gateway does with one charge (or refund) that it has not seen under
// its key before. Queue behaviours with Script, ScriptAll and ScriptRefunds; an empty queue
// means Succeed. A call answered from the deduplication store plays no behaviour.
type Behaviour int

// The behaviours.
const (
	// Succeed: the money moves; the answer is OutcomeSucceeded. The default.
	Succeed Behaviour = iota
	// SoftDecline: refused for now, DeclineCode DeclineCodeSoft ("insufficient_funds"). The
	// engine retries on the dunning schedule, under a new key.
	SoftDecline
	// HardDecline: refused for good, DeclineCode DeclineCodeHard ("card_expired"). Never retried.
	HardDecline
	// Pending: accepted, to be confirmed later. The answer is OutcomePending with a provider id;
	// Lookup keeps answering pending until Confirm (ConfirmRefund for a refund) settles it and
	// returns the webhook event the test forwards to the engine.
	Pending
	// TimeoutAfterSuccess: the money moves (the charge is recorded as succeeded, Lookup finds
	// it, a repeat under the key returns it) but the call returns ErrTimeout, so the engine
	// sees an unknown outcome and must settle it by Lookup, never by charging again.
	TimeoutAfterSuccess
	// TimeoutBeforeCharge: the request never took effect: nothing is recorded, Lookup answers
	// payment.ErrNotFound, and the call returns ErrTimeout. Charging again under the same key is
	// then a fresh charge (it plays the next behaviour).
	TimeoutBeforeCharge
	// LandsLater: a charge the provider answers slower than the caller waits. The call returns
	// ErrTimeout and nothing is recorded yet (Lookup answers payment.ErrNotFound), but the
	// request is held: Land later records every held request as succeeded, in the order they
	// were held, and returns their webhook events. A new Charge under a held key lands it at
	// once (the provider deduplicates by key) and answers succeeded. Charges only: a refund
	// that plays it fails with a *payment.ValidationError.
	LandsLater
)

// String returns the behaviour's name, e.g. "TimeoutAfterSuccess".
func (b Behaviour) String() string {
	switch b {
	case Succeed:
		return "Succeed"
	case SoftDecline:
		return "SoftDecline"
	case HardDecline:
		return "HardDecline"
	case Pending:
		return "Pending"
	case TimeoutAfterSuccess:
		return "TimeoutAfterSuccess"
	case TimeoutBeforeCharge:
		return "TimeoutBeforeCharge"
	case LandsLater:
		return "LandsLater"
	}
	return "Behaviour(" + strconv.Itoa(int(b)) + ")"
}

// The decline codes and messages the gateway answers with.
const (
	// DeclineCodeSoft is the DeclineCode of a SoftDecline.
	DeclineCodeSoft = "insufficient_funds"
	// DeclineCodeHard is the DeclineCode of a HardDecline.
	DeclineCodeHard = "card_expired"
)

// The metadata keys ChargesFor reads: the engine puts the subscription id and the period
// number (in decimal) into every ChargeParams.Metadata under these keys.
const (
	// MetadataSubscriptionID is the key of the subscription id in ChargeParams.Metadata.
	MetadataSubscriptionID = "subscription_id"
	// MetadataPeriod is the key of the period number, a decimal string ("7").
	MetadataPeriod = "period"
)

// The gateway's errors. Each is also what a test checks with errors.Is.
var (
	// ErrTimeout is what Charge and Refund return for TimeoutAfterSuccess and
	// TimeoutBeforeCharge. It matches context.DeadlineExceeded with errors.Is, like the error
	// of an HTTP call that timed out; to the engine it means "outcome unknown".
	ErrTimeout = fmt.Errorf("billingtest: gateway did not answer in time (scripted): %w", context.DeadlineExceeded)
	// ErrUnavailable is what Lookup and LookupRefund return while FailLookups or
	// FailRefundLookups has failures queued: not ErrNotFound, so "still unknown, ask later".
	ErrUnavailable = errors.New("billingtest: gateway unavailable (scripted)")
	// ErrKeyReused means a call reused an idempotency key for another payment (another amount,
	// currency, payment method or customer; for a refund, another payment id, amount or
	// currency). Nothing is recorded. It is a bug in the caller: keys are per attempt.
	ErrKeyReused = errors.New("billingtest: idempotency key reused for another request")
	// ErrNoSuchPayment means a refund or a Confirm names a provider payment id (or Confirm a
	// refund id) the gateway never issued. Nothing is recorded.
	ErrNoSuchPayment = errors.New("billingtest: no such provider payment")
	// ErrRefundExceedsPayment means a refund asks for more than is left of its payment: more
	// than the charged amount minus the refunds already succeeded or pending, any refund of a
	// payment that did not succeed, or a refund in another currency. Nothing is recorded.
	ErrRefundExceedsPayment = errors.New("billingtest: refund exceeds what is left of the payment")
	// ErrNotPending means Confirm (or ConfirmRefund) was asked for another outcome than the one
	// the payment already has. Confirming the same outcome again is not an error: it returns the
	// same event, like a provider resending a webhook.
	ErrNotPending = errors.New("billingtest: payment is already settled with another outcome")
)

// Charge is one charge the gateway recorded: the request as received, with the provider's id.
type Charge struct {
	// ChargeParams is the request as the gateway received it (key, payment method, customer,
	// amount, currency, description, receipt, metadata). A copy: changing it changes nothing.
	payment.ChargeParams
	// ProviderPaymentID is the id the gateway gave the charge, "pay_<Number>".
	ProviderPaymentID string
	// Number is the charge's place in the order the gateway recorded charges, from 1. Declined
	// and pending charges take numbers too, so succeeded charges' numbers may have gaps.
	Number int
}

// Refund is one refund the gateway recorded: the request as received, with the provider's id.
type Refund struct {
	// RefundRequest is the request as the gateway received it. A copy.
	payment.RefundParams
	// ProviderRefundID is the id the gateway gave the refund, "rfd_<Number>".
	ProviderRefundID string
	// Number is the refund's place in the order the gateway recorded refunds, from 1.
	Number int
}

// CallCounts counts the calls of each Gateway method, every call included: deduplicated ones,
// refused ones (invalid request, ctx done) and failed ones.
type CallCounts struct {
	// Charge counts calls to Charge.
	Charge int
	// Refund counts calls to Refund.
	Refund int
	// Lookup counts calls to Lookup.
	Lookup int
	// LookupRefund counts calls to LookupRefund.
	LookupRefund int
}

// paymentRecord is a recorded charge and what the gateway answers about it.
type paymentRecord struct {
	req    payment.ChargeParams
	res    payment.ChargeResult
	number int
	// held is the sum of the payment's succeeded and pending refunds, in minor units.
	held int64
	// saves is the payment method a checkout on the provider's page saves when it succeeds.
	saves string
}

// refundRecord is a recorded refund and what the gateway answers about it.
type refundRecord struct {
	req     payment.RefundParams
	res     payment.RefundResult
	number  int
	payment *paymentRecord
}

// Script queues behaviours for the next charges of the payment method token, after any
// already queued for it. A token's queue is played before the ScriptAll queue: a charge of
// token plays the head of token's queue if it has one, else the head of the ScriptAll queue,
// else Succeed. An unknown Behaviour value makes the charge that plays it fail with a
// *payment.ValidationError.
func (g *Gateway) Script(token string, behaviours ...Behaviour) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.byToken[token] = append(g.byToken[token], behaviours...)
}

// ScriptAll queues behaviours for the next charges of any payment method that has no queue of
// its own (see Script), after any already queued.
func (g *Gateway) ScriptAll(behaviours ...Behaviour) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.all = append(g.all, behaviours...)
}

// ScriptRefunds queues behaviours for the next refunds, after any already queued. For a
// refund, TimeoutBeforeCharge means the refund never took effect, TimeoutAfterSuccess that
// the money went back but the call timed out, and the declines have their refund meaning
// (see payment.Outcome).
func (g *Gateway) ScriptRefunds(behaviours ...Behaviour) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refundScript = append(g.refundScript, behaviours...)
}

// ScriptedLeft returns how many queued charge and refund behaviours have not been played yet.
// A test that scripted a story can require it to be 0 at the end, to know the story was told.
func (g *Gateway) ScriptedLeft() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.all) + len(g.refundScript)
	for _, q := range g.byToken {
		n += len(q)
	}
	return n
}

// FailLookups makes the next n calls to Lookup, whatever their key, return ErrUnavailable
// (added to any failures already queued). A failed Lookup counts as a call.
func (g *Gateway) FailLookups(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lookupFailures += max(n, 0)
}

// FailRefundLookups makes the next n calls to LookupRefund return ErrUnavailable.
func (g *Gateway) FailRefundLookups(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refundLookupFailures += max(n, 0)
}

// SetLatency makes every call wait d before it is handled (0, the default, answers at once).
// A call whose ctx ends while it waits returns ctx.Err() and records nothing, like
// TimeoutBeforeCharge. Trap: the wait is in real time, not on a test Clock.
func (g *Gateway) SetLatency(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.latency = d
}

// SetClock makes Confirm and ConfirmRefund stamp their events' ReceivedAt from clock (a
// *Clock, say) instead of the wall clock, so that a test on a manual clock gets the settlement
// times it expects.
func (g *Gateway) SetClock(clock interface{ Now() time.Time }) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.clock = clock
}

// setClockUnlessSet is SetClock when no clock was set yet.
func (g *Gateway) setClockUnlessSet(clock interface{ Now() time.Time }) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clock == nil {
		g.clock = clock
	}
}

// Charge charges req under req.IdempotencyKey, playing the next scripted behaviour for
// req.PaymentMethod (see Script) unless the key was charged already, in which case it returns
// the stored result. It returns the *payment.ValidationError of an invalid request,
// ErrKeyReused, ctx.Err() and ErrTimeout as errors; declines are results.
func (g *Gateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	g.count(func(c *CallCounts) { c.Charge++ })
	if err := req.Validate(); err != nil {
		return payment.ChargeResult{}, err
	}
	if err := g.wait(ctx); err != nil {
		return payment.ChargeResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.paymentsByKey[req.IdempotencyKey]; ok {
		if p.req.PaymentMethod != req.PaymentMethod || p.req.CustomerID != req.CustomerID ||
			p.req.Amount != req.Amount || p.req.Currency != req.Currency {
			return payment.ChargeResult{}, fmt.Errorf("%w: charge key %q was used for %d %s of %q",
				ErrKeyReused, req.IdempotencyKey, p.req.Amount, p.req.Currency, p.req.CustomerID)
		}
		return p.res, nil
	}
	if i := g.heldIndex(req.IdempotencyKey); i >= 0 {
		h := g.held[i]
		if h.PaymentMethod != req.PaymentMethod || h.CustomerID != req.CustomerID ||
			h.Amount != req.Amount || h.Currency != req.Currency {
			return payment.ChargeResult{}, fmt.Errorf("%w: charge key %q was used for %d %s of %q",
				ErrKeyReused, req.IdempotencyKey, h.Amount, h.Currency, h.CustomerID)
		}
		g.held = slices.Delete(g.held, i, i+1)
		return g.record(h, payment.OutcomeSucceeded, payment.OutcomeSucceeded).res, nil
	}
	b := g.nextChargeBehaviour(req.PaymentMethod)
	if b == LandsLater {
		g.held = append(g.held, copyChargeRequest(req))
		return payment.ChargeResult{}, ErrTimeout
	}
	outcome, code, err := b.play()
	if outcome == "" {
		return payment.ChargeResult{}, err
	}
	return g.record(req, outcome, code).res, err
}

// record records a new charge of req with outcome (and the decline reason of code) under the
// next provider payment id. Call with g.mu held.
func (g *Gateway) record(req payment.ChargeParams, outcome, code payment.Outcome) *paymentRecord {
	p := &paymentRecord{req: copyChargeRequest(req), number: len(g.payments) + 1}
	p.res = payment.ChargeResult{
		Outcome:           outcome,
		ProviderPaymentID: "pay_" + strconv.Itoa(p.number),
		Amount:            req.Amount,
		Currency:          req.Currency,
	}
	p.res.DeclineCode, p.res.DeclineMessage = declineReason(code)
	g.payments = append(g.payments, p)
	g.paymentsByKey[req.IdempotencyKey] = p
	g.paymentsByID[p.res.ProviderPaymentID] = p
	return p
}

// heldIndex returns the index of the held request under key, or -1. Call with g.mu held.
func (g *Gateway) heldIndex(key string) int {
	return slices.IndexFunc(g.held, func(r payment.ChargeParams) bool { return r.IdempotencyKey == key })
}

// Land lands every charge held by LandsLater: each is recorded as succeeded (taking the next
// provider payment id, in the order they were held) and its webhook event, as Confirm makes
// it, is returned for the test to forward to the engine (or not). Nothing held: nil.
func (g *Gateway) Land() []payment.WebhookEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []payment.WebhookEvent
	for _, h := range g.held {
		p := g.record(h, payment.OutcomeSucceeded, payment.OutcomeSucceeded)
		out = append(out, g.chargeEvent(p))
	}
	g.held = nil
	return out
}

// Recorded returns how many charges the gateway has recorded so far, whatever their outcome
// (succeeded, pending, declined): the Number of the last one. A charge with a larger Number
// was recorded later.
func (g *Gateway) Recorded() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.payments)
}

// Held returns how many charges LandsLater holds, not landed yet.
func (g *Gateway) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held)
}

// Refund returns req.Amount of the payment req.ProviderPaymentID under req.IdempotencyKey,
// playing the next ScriptRefunds behaviour unless the key was refunded already, in which case
// it returns the stored result.
//
// A refund for more than is left of the payment is refused with an error,
// ErrRefundExceedsPayment, not with a decline: like a provider's "invalid request", it is a
// bug in the caller (the refund package checks the amount first), and an error is what a real
// adapter returns for it. Nothing is recorded, so LookupRefund then answers ErrNotFound. What
// is left is the charged amount minus the payment's succeeded and pending refunds; a payment
// that did not succeed has nothing left. An unknown payment id is ErrNoSuchPayment.
func (g *Gateway) Refund(ctx context.Context, req payment.RefundParams) (payment.RefundResult, error) {
	g.count(func(c *CallCounts) { c.Refund++ })
	if err := req.Validate(); err != nil {
		return payment.RefundResult{}, err
	}
	if err := g.wait(ctx); err != nil {
		return payment.RefundResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.refundsByKey[req.IdempotencyKey]; ok {
		if r.req.ProviderPaymentID != req.ProviderPaymentID || r.req.Amount != req.Amount || r.req.Currency != req.Currency {
			return payment.RefundResult{}, fmt.Errorf("%w: refund key %q was used for %d %s of %s",
				ErrKeyReused, req.IdempotencyKey, r.req.Amount, r.req.Currency, r.req.ProviderPaymentID)
		}
		return r.res, nil
	}
	p, ok := g.paymentsByID[req.ProviderPaymentID]
	if !ok {
		return payment.RefundResult{}, fmt.Errorf("%w: %q", ErrNoSuchPayment, req.ProviderPaymentID)
	}
	if left := p.refundable(); p.res.Outcome != payment.OutcomeSucceeded || req.Currency != p.req.Currency || req.Amount > left {
		return payment.RefundResult{}, fmt.Errorf("%w: %d %s asked of %s, which is %s with %d %s left",
			ErrRefundExceedsPayment, req.Amount, req.Currency, p.res.ProviderPaymentID, p.res.Outcome, left, p.req.Currency)
	}
	b := Succeed
	if len(g.refundScript) > 0 {
		b, g.refundScript = g.refundScript[0], g.refundScript[1:]
	}
	outcome, code, err := b.play()
	if outcome == "" {
		return payment.RefundResult{}, err
	}
	r := &refundRecord{req: copyRefundRequest(req), number: len(g.refunds) + 1, payment: p}
	r.res = payment.RefundResult{
		Outcome:           outcome,
		ProviderRefundID:  "rfd_" + strconv.Itoa(r.number),
		ProviderPaymentID: req.ProviderPaymentID,
		Amount:            req.Amount,
		Currency:          req.Currency,
	}
	r.res.DeclineCode, r.res.DeclineMessage = declineReason(code)
	if holdsMoney(outcome) {
		p.held += req.Amount
	}
	g.refunds = append(g.refunds, r)
	g.refundsByKey[req.IdempotencyKey] = r
	g.refundsByID[r.res.ProviderRefundID] = r
	return r.res, err
}

// Lookup returns the charge recorded under idempotencyKey as it stands now (a pending
// checkout with its ConfirmationURL), or payment.ErrNotFound. While FailLookups failures are queued it returns ErrUnavailable instead.
// An empty key is a *payment.ValidationError.
func (g *Gateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	g.count(func(c *CallCounts) { c.Lookup++ })
	idempotencyKey := req.IdempotencyKey
	if idempotencyKey == "" {
		return payment.ChargeResult{}, &payment.ValidationError{Field: "idempotencyKey", Problem: "empty"}
	}
	if err := g.wait(ctx); err != nil {
		return payment.ChargeResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lookupFailures > 0 {
		g.lookupFailures--
		return payment.ChargeResult{}, ErrUnavailable
	}
	p, ok := g.paymentsByKey[idempotencyKey]
	if !ok {
		return payment.ChargeResult{}, fmt.Errorf("%w: %q", payment.ErrNotFound, idempotencyKey)
	}
	if p.saves != "" {
		return g.checkoutResult(p).ChargeResult, nil // a pending checkout's page too
	}
	return p.res, nil
}

// LookupRefund returns the refund recorded under idempotencyKey as it stands now, or
// payment.ErrNotFound. While FailRefundLookups failures are queued it returns ErrUnavailable.
func (g *Gateway) LookupRefund(ctx context.Context, req payment.RefundLookupParams) (payment.RefundResult, error) {
	g.count(func(c *CallCounts) { c.LookupRefund++ })
	idempotencyKey := req.IdempotencyKey
	if idempotencyKey == "" {
		return payment.RefundResult{}, &payment.ValidationError{Field: "idempotencyKey", Problem: "empty"}
	}
	if err := g.wait(ctx); err != nil {
		return payment.RefundResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refundLookupFailures > 0 {
		g.refundLookupFailures--
		return payment.RefundResult{}, ErrUnavailable
	}
	r, ok := g.refundsByKey[idempotencyKey]
	if !ok {
		return payment.RefundResult{}, fmt.Errorf("%w: refund %q", payment.ErrNotFound, idempotencyKey)
	}
	return r.res, nil
}

// Confirm settles the pending charge providerPaymentID with outcome (succeeded, soft_declined
// or hard_declined) and returns the charge webhook the provider would send, with the key, the
// amount and ReceivedAt from the clock (see SetClock). The test forwards the event to the
// engine; later Lookups and repeated Charges answer the new outcome, and a succeeded charge
// joins Charges.
//
// Confirming a charge with the outcome it already has returns the same event again (a
// resent webhook). Errors: ErrNoSuchPayment, ErrNotPending for another outcome than the
// settled one, and a *payment.ValidationError for an outcome that is not a settlement.
func (g *Gateway) Confirm(providerPaymentID string, outcome payment.Outcome) (payment.WebhookEvent, error) {
	if err := checkSettlement(outcome); err != nil {
		return payment.WebhookEvent{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.paymentsByID[providerPaymentID]
	if !ok {
		return payment.WebhookEvent{}, fmt.Errorf("%w: %q", ErrNoSuchPayment, providerPaymentID)
	}
	switch p.res.Outcome {
	case payment.OutcomePending:
		p.res.Outcome = outcome
		p.res.DeclineCode, p.res.DeclineMessage = declineReason(outcome)
		if outcome == payment.OutcomeSucceeded && p.saves != "" {
			p.res.PaymentMethod = p.saves // the customer paid on the page and let the provider save the method
		}
	case outcome:
	default:
		return payment.WebhookEvent{}, fmt.Errorf("%w: %s is %s, asked %s", ErrNotPending, providerPaymentID, p.res.Outcome, outcome)
	}
	return g.chargeEvent(p), nil
}

// chargeEvent is the charge webhook of p as it stands now. Call with g.mu held.
func (g *Gateway) chargeEvent(p *paymentRecord) payment.WebhookEvent {
	return payment.WebhookEvent{
		Kind:              payment.KindCharge,
		ProviderPaymentID: p.res.ProviderPaymentID,
		IdempotencyKey:    p.req.IdempotencyKey,
		Outcome:           p.res.Outcome,
		Amount:            p.res.Amount,
		Currency:          p.res.Currency,
		DeclineCode:       p.res.DeclineCode,
		DeclineMessage:    p.res.DeclineMessage,
		ReceivedAt:        g.now(),
	}
}

// ConfirmRefund settles the pending refund providerRefundID like Confirm settles a charge and
// returns the refund webhook (Kind payment.KindRefund). A declined refund gives its amount back
// to what is left of the payment; a succeeded one joins Refunds.
func (g *Gateway) ConfirmRefund(providerRefundID string, outcome payment.Outcome) (payment.WebhookEvent, error) {
	if err := checkSettlement(outcome); err != nil {
		return payment.WebhookEvent{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.refundsByID[providerRefundID]
	if !ok {
		return payment.WebhookEvent{}, fmt.Errorf("%w: refund %q", ErrNoSuchPayment, providerRefundID)
	}
	switch r.res.Outcome {
	case payment.OutcomePending:
		r.res.Outcome = outcome
		r.res.DeclineCode, r.res.DeclineMessage = declineReason(outcome)
		if !holdsMoney(outcome) {
			r.payment.held -= r.req.Amount
		}
	case outcome:
	default:
		return payment.WebhookEvent{}, fmt.Errorf("%w: %s is %s, asked %s", ErrNotPending, providerRefundID, r.res.Outcome, outcome)
	}
	return payment.WebhookEvent{
		Kind:              payment.KindRefund,
		ProviderPaymentID: r.res.ProviderPaymentID,
		ProviderRefundID:  r.res.ProviderRefundID,
		IdempotencyKey:    r.req.IdempotencyKey,
		Outcome:           r.res.Outcome,
		Amount:            r.res.Amount,
		Currency:          r.res.Currency,
		DeclineCode:       r.res.DeclineCode,
		DeclineMessage:    r.res.DeclineMessage,
		ReceivedAt:        g.now(),
	}, nil
}

// Charges returns every charge that succeeded (at once, after a timeout, or confirmed), in the
// order the gateway recorded them. Each key appears at most once, however often it was charged.
func (g *Gateway) Charges() []Charge {
	return g.chargesWhere(func(payment.ChargeParams) bool { return true })
}

// ChargesFor returns the succeeded charges whose Metadata names subscriptionID under
// MetadataSubscriptionID and period (in decimal) under MetadataPeriod. At most one per period
// is the engine's exactly-once invariant; a test requires len(...) == 1.
func (g *Gateway) ChargesFor(subscriptionID string, period int) []Charge {
	p := strconv.Itoa(period)
	return g.chargesWhere(func(r payment.ChargeParams) bool {
		return r.Metadata[MetadataSubscriptionID] == subscriptionID && r.Metadata[MetadataPeriod] == p
	})
}

// SuccessfulCharges returns how many succeeded charges match filter; a nil filter matches all.
func (g *Gateway) SuccessfulCharges(filter func(payment.ChargeParams) bool) int {
	if filter == nil {
		filter = func(payment.ChargeParams) bool { return true }
	}
	return len(g.chargesWhere(filter))
}

// Refunds returns every refund that succeeded, in the order the gateway recorded them.
func (g *Gateway) Refunds() []Refund {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Refund
	for _, r := range g.refunds {
		if r.res.Outcome == payment.OutcomeSucceeded {
			out = append(out, Refund{RefundParams: copyRefundRequest(r.req), ProviderRefundID: r.res.ProviderRefundID, Number: r.number})
		}
	}
	return out
}

// Calls returns how many times each method was called so far.
func (g *Gateway) Calls() CallCounts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// chargesWhere returns copies of the succeeded charges whose request matches keep, in order.
// keep runs without the lock, so it may call the gateway.
func (g *Gateway) chargesWhere(keep func(payment.ChargeParams) bool) []Charge {
	g.mu.Lock()
	var succeeded []Charge
	for _, p := range g.payments {
		if p.res.Outcome == payment.OutcomeSucceeded {
			succeeded = append(succeeded, Charge{ChargeParams: copyChargeRequest(p.req), ProviderPaymentID: p.res.ProviderPaymentID, Number: p.number})
		}
	}
	g.mu.Unlock()
	var out []Charge
	for _, c := range succeeded {
		if keep(c.ChargeParams) {
			out = append(out, c)
		}
	}
	return out
}

// nextChargeBehaviour pops the behaviour for a new charge of token. Call with g.mu held.
func (g *Gateway) nextChargeBehaviour(token string) Behaviour {
	if q := g.byToken[token]; len(q) > 0 {
		if len(q) == 1 {
			delete(g.byToken, token)
		} else {
			g.byToken[token] = q[1:]
		}
		return q[0]
	}
	if len(g.all) > 0 {
		b := g.all[0]
		g.all = g.all[1:]
		return b
	}
	return Succeed
}

// count bumps a call counter.
func (g *Gateway) count(bump func(*CallCounts)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	bump(&g.calls)
}

// wait sleeps the latency, or until ctx ends; it returns ctx.Err() when ctx ended first
// (or had already ended).
func (g *Gateway) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	d := g.latency
	g.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// now reads the clock set by SetClock, or the wall clock. Call with g.mu held.
func (g *Gateway) now() time.Time {
	if g.clock != nil {
		return g.clock.Now()
	}
	return time.Now()
}

// play returns what a new call playing b records and answers: the outcome to record ("" for
// nothing), the outcome whose decline reason to give, and the error the call returns.
func (b Behaviour) play() (payment.Outcome, payment.Outcome, error) {
	switch b {
	case Succeed:
		return payment.OutcomeSucceeded, payment.OutcomeSucceeded, nil
	case SoftDecline:
		return payment.OutcomeSoftDeclined, payment.OutcomeSoftDeclined, nil
	case HardDecline:
		return payment.OutcomeHardDeclined, payment.OutcomeHardDeclined, nil
	case Pending:
		return payment.OutcomePending, payment.OutcomePending, nil
	case TimeoutAfterSuccess:
		return payment.OutcomeSucceeded, payment.OutcomeSucceeded, ErrTimeout
	case TimeoutBeforeCharge:
		return "", "", ErrTimeout
	case LandsLater:
		return "", "", &payment.ValidationError{Field: "Behaviour", Problem: "LandsLater is for charges only"}
	}
	return "", "", &payment.ValidationError{Field: "Behaviour", Problem: fmt.Sprintf("%d is not a scripted behaviour", int(b))}
}

// refundable is what is left of the payment to refund, in minor units.
func (p *paymentRecord) refundable() int64 {
	if p.res.Outcome != payment.OutcomeSucceeded {
		return 0
	}
	return p.req.Amount - p.held
}

// holdsMoney reports whether a refund with outcome o takes (or may take) money from its payment.
func holdsMoney(o payment.Outcome) bool {
	return o == payment.OutcomeSucceeded || o == payment.OutcomePending
}

// declineReason returns the decline code and message of outcome o; empty for a non-decline.
func declineReason(o payment.Outcome) (string, string) {
	switch o {
	case payment.OutcomeSoftDeclined:
		return DeclineCodeSoft, "insufficient funds (billingtest)"
	case payment.OutcomeHardDeclined:
		return DeclineCodeHard, "card expired (billingtest)"
	}
	return "", ""
}

// checkSettlement refuses an outcome a webhook cannot settle a payment with.
func checkSettlement(o payment.Outcome) error {
	switch o {
	case payment.OutcomeSucceeded, payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined:
		return nil
	}
	return &payment.ValidationError{Field: "outcome", Problem: fmt.Sprintf("%q is not a settlement (succeeded, soft_declined, hard_declined)", o)}
}

// copyChargeRequest copies the request's map and receipt lines, so records share nothing with
// the caller.
func copyChargeRequest(r payment.ChargeParams) payment.ChargeParams {
	r.Metadata = maps.Clone(r.Metadata)
	r.Receipt.Items = slices.Clone(r.Receipt.Items)
	return r
}

// copyRefundRequest is copyChargeRequest for a refund.
func copyRefundRequest(r payment.RefundParams) payment.RefundParams {
	r.Metadata = maps.Clone(r.Metadata)
	r.Receipt.Items = slices.Clone(r.Receipt.Items)
	return r
}
