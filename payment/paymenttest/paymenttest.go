// Package paymenttest is the conformance suite every payment.Gateway adapter must pass: one
// subtest per rule of the contract written on payment.Gateway (the same key is the same charge,
// a decline is a result and an error is "outcome unknown", Lookup answers ErrNotFound only for
// a key the provider never saw and never charges, refunds keep the same rules under their own
// keys, …). The engine's exactly-once charging rests on those rules; an adapter that breaks
// one double-charges or ends subscriptions that were paid.
//
// A real provider cannot be scripted through payment.Gateway alone, so the adapter's author
// gives the suite a Harness: the gateway under test plus hooks into the provider side (a
// simulator or a sandbox) to make payment methods that behave as asked, settle pending
// payments and count the payments the provider holds. Wire it in the adapter's tests:
//
//	func TestConformance(t *testing.T) {
//		paymenttest.Run(t, func(t *testing.T) paymenttest.Harness {
//			sim := yookassasim.Start(t) // the provider's simulator (names illustrative)
//			return &harness{sim: sim, gw: yookassa.New(sim.URL, …)}
//		})
//	}
//
// A gateway that is also a payment.CheckoutGateway gets the "Checkout" checks when its
// harness implements CheckoutHarness (PayOnPage plays the customer on the provider's page).
//
// See the package's example for a complete harness (the in-memory billingtest.Gateway).
//
// Decisions the suite takes where the contract leaves room, each pinned by a check:
//
//   - A refund the provider cannot make because it asks more than is left of the payment, or
//     names a payment that did not succeed (pending, declined), is refused with an error, not
//     a decline: like a malformed request it is a bug in the caller (the refund package checks
//     the amount first), and for a refund OutcomeHardDeclined means "the money must go back
//     another way", which is not what happened. No money moves and LookupRefund never reports
//     such a refund as succeeded or pending.
//   - A Charge whose answer was lost after the provider charged (LostAnswer) may return an
//     error (outcome unknown) or the one succeeded payment, when the adapter retried under the
//     same key and the provider replayed its answer: the contract makes an error "unknown"
//     and a recovered answer the truth. Never a decline, never a second payment.
//   - A repeated Charge under the key of a pending charge settled since may answer either the
//     first answer (pending, as a provider replaying its stored response does) or the payment
//     as it stands now; both name the same provider payment.
//   - Lookup under a key the provider holds, with the ProviderPaymentID of another key's payment,
//     may answer the key's own payment or an error, never the payment it was handed.
//   - A key reused for another amount (a bug in the caller) is refused with an error or
//     answered with the key's first payment or refund; it never makes a second one.
//   - An invalid request (no key, a card number for a token, a zero amount) is refused with the
//     request's own *payment.ValidationError (errors.Is payment.ErrInvalid, and
//     payment.ErrCardData for card data) before anything reaches the provider: the adapter calls
//     the request's Validate first.
package paymenttest

import (
	"strconv"
	"testing"

	"github.com/smm-gpt/billing/payment"
)

// Harness is what an adapter's author implements so the suite can drive both sides of the
// adapter: the gateway under test, and the provider behind it. Run asks for a new Harness for
// every check (its newHarness argument) and runs the checks in parallel, so each Harness
// should stand for a fresh provider (or at least count its own payments, see
// ProviderPayments). Every method reports its own failure with t.Fatal.
type Harness interface {
	// Gateway returns the adapter under test, talking to the harness's provider.
	Gateway() payment.Gateway
	// NewPaymentMethod returns a new saved-method token. Its first charge under a key the
	// provider has not seen behaves as b; every later new charge of it succeeds (so after
	// FailBeforeProvider, charging again under the same key succeeds). It returns "" when the
	// harness cannot simulate b; the checks that need b are then skipped, not failed.
	NewPaymentMethod(t testing.TB, b Behaviour) string
	// Settle settles the pending charge providerPaymentID (made with a Pending token) at the
	// provider with outcome: payment.OutcomeSucceeded, OutcomeSoftDeclined or
	// OutcomeHardDeclined. It does not call the gateway under test; the suite then asks it
	// with Lookup. A harness whose NewPaymentMethod never makes Pending tokens may fail here.
	Settle(t testing.TB, providerPaymentID string, outcome payment.Outcome)
	// ProviderPayments returns how many payments the provider holds for this harness, whatever
	// their outcome (succeeded, pending, declined): the suite compares it before and after
	// calls to catch a second charge under one key, or a Lookup that charged. A provider that
	// makes no payment object for a declined charge counts what it makes; the suite only
	// compares counts around calls that must not make one.
	ProviderPayments(t testing.TB) int
}

// Behaviour is what the provider does with the first new charge of a payment method (see
// Harness.NewPaymentMethod). The zero Behaviour is Succeed.
type Behaviour int

// The behaviours a harness can be asked for.
const (
	// Succeed: the money moves; Charge answers payment.OutcomeSucceeded.
	Succeed Behaviour = iota
	// SoftDecline: refused for now (insufficient funds); Charge answers
	// payment.OutcomeSoftDeclined with a DeclineCode.
	SoftDecline
	// HardDecline: refused for good (card expired, revoked); Charge answers
	// payment.OutcomeHardDeclined with a DeclineCode.
	HardDecline
	// Pending: the provider accepts the charge and settles it later, when the suite calls
	// Harness.Settle; Charge answers payment.OutcomePending with a ProviderPaymentID.
	Pending
	// LostAnswer: the money moves but the answer never reaches the adapter (a timeout after
	// the provider charged, a dropped connection). Charge returns an error (outcome unknown),
	// or, when the adapter's retry under the same key recovers the provider's answer, the one
	// succeeded payment; never a decline, never a second payment.
	LostAnswer
	// FailBeforeProvider: the call fails before the provider takes the charge (a timeout while
	// connecting, a 5xx before the payment was made). Charge must return an error, and the
	// provider holds nothing under the key, so Lookup answers payment.ErrNotFound.
	FailBeforeProvider
)

// String returns the behaviour's name, e.g. "LostAnswer".
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
	case LostAnswer:
		return "LostAnswer"
	case FailBeforeProvider:
		return "FailBeforeProvider"
	}
	return "Behaviour(" + strconv.Itoa(int(b)) + ")"
}

// Run runs every check of the contract against the gateways newHarness makes, each check a
// subtest named after its rule ("Charge/same key twice is one charge", …), in parallel, each
// with its own Harness. A check that needs a Behaviour the harness cannot simulate is skipped,
// and so are the "Checkout" checks unless the Harness is a CheckoutHarness whose Gateway is a
// payment.CheckoutGateway.
//
// Amounts are in RUB; every charge and refund request is built the way the engine builds it
// (payment.Attempt.ChargeParams, with payment.MetadataIdempotencyKey in the metadata, and a
// receipt from payment.NewChargeReceipt or payment.NewRefundReceipt). Keys are random, so a
// harness backed by one shared sandbox does not see the keys of an earlier run.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, group := range append(checks, checkoutChecks) {
		t.Run(group.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range group.checks {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(newSuite(t, newHarness(t)))
				})
			}
		})
	}
}
