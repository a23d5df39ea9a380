package yookassatest

import (
	"fmt"
	"time"
)

// PaymentCancellationReasons maps each documented cancellation_details.reason of a payment
// (the enum of PaymentCancellationDetails in the OpenAPI specification, the list of the
// "Declined payments" page; deal_expired is for Safe Deal only) to the party the simulator
// reports with it by default: yoo_money, payment_network or merchant. Trap: the documented
// party value is "yoo_money", not "yookassa". The docs do not tie a party to each reason:
// the defaults are the simulator's reading of each reason's description (the issuer for
// card and bank declines, YooMoney for its own checks and timeouts, the merchant for its
// cancellation), and the real service may send another party with the same reason (the
// SDK's fixture has general_decline from yoo_money). An adapter must decide on the reason,
// not the party; DeclineBy tests that.
var PaymentCancellationReasons = map[string]string{
	"3d_secure_failed":              "payment_network",
	"call_issuer":                   "payment_network",
	"canceled_by_merchant":          "merchant",
	"card_expired":                  "payment_network",
	"country_forbidden":             "yoo_money",
	"deal_expired":                  "yoo_money",
	"expired_on_capture":            "yoo_money",
	"expired_on_confirmation":       "yoo_money",
	"fraud_suspected":               "yoo_money",
	"general_decline":               "payment_network",
	"identification_required":       "yoo_money",
	"insufficient_funds":            "payment_network",
	"internal_timeout":              "yoo_money",
	"invalid_card_number":           "payment_network",
	"invalid_csc":                   "payment_network",
	"issuer_unavailable":            "payment_network",
	"payment_method_limit_exceeded": "payment_network",
	"payment_method_restricted":     "payment_network",
	"permission_revoked":            "yoo_money",
	"unsupported_mobile_operator":   "payment_network",
}

// RefundCancellationReasons maps each documented cancellation_details.reason of a refund
// (the enum of RefundCancellationDetails) to the simulator's default party, yoo_money or
// refund_network (the simulator's reading, as for PaymentCancellationReasons).
var RefundCancellationReasons = map[string]string{
	"yoo_money_account_closed":         "yoo_money",
	"insufficient_funds":               "yoo_money",
	"general_decline":                  "refund_network",
	"rejected_by_payee":                "refund_network",
	"rejected_by_timeout":              "refund_network",
	"payment_basket_id_not_found":      "refund_network",
	"payment_article_number_not_found": "refund_network",
	"payment_tru_code_not_found":       "refund_network",
	"some_articles_already_refunded":   "refund_network",
	"too_many_refunding_articles":      "refund_network",
}

// VatCodes are the receipt item vat_code values (tag 1199) of the "parameters values" page:
// integers 1..12, where 11 is VAT 22% and 12 the calculated rate 22/122, both from
// 1 January 2026.
var VatCodes = map[int]string{
	1:  "no VAT",
	2:  "VAT 0%",
	3:  "VAT 10%",
	4:  "VAT 20%",
	5:  "VAT 10/110",
	6:  "VAT 20/120",
	7:  "VAT 5%",
	8:  "VAT 7%",
	9:  "VAT 5/105",
	10: "VAT 7/107",
	11: "VAT 22%",
	12: "VAT 22/122",
}

// Behaviour is what the simulator does with one POST /v3/payments or POST /v3/refunds that
// passed validation and was not an idempotent replay. Make one with Success, Decline,
// DeclineBy, Pending, PendingThen, TimeoutAfterSuccess, InternalErrorAfterSuccess,
// InternalError or TooManyRequests, and queue it with Server.Script, ScriptAll or
// ScriptRefunds. The zero Behaviour is Success.
type Behaviour struct {
	kind   behaviourKind
	reason string
	party  string
	after  time.Duration
	then   *Behaviour
}

type behaviourKind int

const (
	kindSuccess behaviourKind = iota
	kindDecline
	kindPending
	kindPendingThen
	kindTimeoutAfterSuccess
	kindInternalErrorAfterSuccess
	kindInternalError
	kindTooManyRequests
)

// Success: the payment succeeds at once (capture: true) or waits for capture (capture
// false or absent); the refund succeeds at once. The default.
func Success() Behaviour { return Behaviour{kind: kindSuccess} }

// Decline: the payment (or refund) is created canceled with cancellation_details.reason and
// the reason's default party (PaymentCancellationReasons, RefundCancellationReasons).
// Script, ScriptAll and ScriptRefunds panic on a reason undocumented for their kind.
func Decline(reason string) Behaviour { return Behaviour{kind: kindDecline, reason: reason} }

// DeclineBy is Decline with the party given.
func DeclineBy(reason, party string) Behaviour {
	return Behaviour{kind: kindDecline, reason: reason, party: party}
}

// Pending: the payment (or refund) is created pending and stays so until the test settles
// it (Server.Succeed, Server.Cancel, Server.SucceedRefund, Server.CancelRefund). A checkout
// payment (confirmation redirect) is Pending by default: the customer has not paid yet.
func Pending() Behaviour { return Behaviour{kind: kindPending} }

// PendingThen: the object is created pending and settles as then (Success or a Decline)
// once the simulator's clock has moved by after. The change is applied when the simulator
// next reads its clock (any request, accessor or Advance), and then notified.
func PendingThen(after time.Duration, then Behaviour) Behaviour {
	return Behaviour{kind: kindPendingThen, after: after, then: &then}
}

// TimeoutAfterSuccess: the object is created and succeeds (a checkout payment is created
// pending, as usual), its answer is stored under the idempotence key, and the connection is
// closed without an answer: the client sees a dropped connection (an unknown outcome).
func TimeoutAfterSuccess() Behaviour { return Behaviour{kind: kindTimeoutAfterSuccess} }

// InternalErrorAfterSuccess: the object is created and succeeds (a checkout payment is
// created pending), yet the answer is 500
// internal_server_error ("the result is unknown", as documented). A retry under the same key
// gets the object.
func InternalErrorAfterSuccess() Behaviour { return Behaviour{kind: kindInternalErrorAfterSuccess} }

// InternalError: 500 internal_server_error and nothing is created; the key is not stored.
func InternalError() Behaviour { return Behaviour{kind: kindInternalError} }

// TooManyRequests: 429 too_many_requests and nothing is created; the key is not stored.
func TooManyRequests() Behaviour { return Behaviour{kind: kindTooManyRequests} }

// String names the behaviour for test messages.
func (b Behaviour) String() string {
	switch b.kind {
	case kindSuccess:
		return "Success"
	case kindDecline:
		return fmt.Sprintf("Decline(%s/%s)", b.reason, b.party)
	case kindPending:
		return "Pending"
	case kindPendingThen:
		return fmt.Sprintf("PendingThen(%s, %s)", b.after, b.then)
	case kindTimeoutAfterSuccess:
		return "TimeoutAfterSuccess"
	case kindInternalErrorAfterSuccess:
		return "InternalErrorAfterSuccess"
	case kindInternalError:
		return "InternalError"
	case kindTooManyRequests:
		return "TooManyRequests"
	}
	return "Behaviour(?)"
}

// check panics, in the test's goroutine, on a behaviour the simulator cannot play: an
// undocumented reason, or a PendingThen that does not end in Success or a Decline.
func (b Behaviour) check(refund bool) {
	switch b.kind {
	case kindDecline:
		_ = b.cancellation(refund)
	case kindPendingThen:
		if b.then.kind != kindSuccess && b.then.kind != kindDecline {
			panic(fmt.Sprintf("yookassatest: %s: PendingThen must end in Success or a Decline", b))
		}
		b.then.check(refund)
	}
}

// cancellation returns the details of a Decline for a payment (refund false) or a refund.
func (b Behaviour) cancellation(refund bool) *CancellationDetails {
	table, what := PaymentCancellationReasons, "payment"
	if refund {
		table, what = RefundCancellationReasons, "refund"
	}
	party, ok := table[b.reason]
	if !ok {
		panic(fmt.Sprintf("yookassatest: %q is not a documented %s cancellation reason", b.reason, what))
	}
	if b.party != "" {
		party = b.party
	}
	return &CancellationDetails{Party: party, Reason: b.reason}
}
