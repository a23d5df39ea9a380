package yookassa

import (
	"fmt"

	"github.com/smm-gpt/billing/payment"
)

// paymentDeclines maps each documented cancellation_details.reason of a payment to a soft
// or hard decline. The table and the reasons for each choice are in the package doc; keep
// the two in step (TestPaymentDeclineTable checks every row).
var paymentDeclines = map[string]payment.Outcome{
	"3d_secure_failed":              payment.OutcomeSoftDeclined,
	"call_issuer":                   payment.OutcomeSoftDeclined,
	"canceled_by_merchant":          payment.OutcomeSoftDeclined,
	"card_expired":                  payment.OutcomeHardDeclined,
	"country_forbidden":             payment.OutcomeHardDeclined,
	"deal_expired":                  payment.OutcomeSoftDeclined,
	"expired_on_capture":            payment.OutcomeSoftDeclined,
	"expired_on_confirmation":       payment.OutcomeSoftDeclined,
	"fraud_suspected":               payment.OutcomeHardDeclined,
	"general_decline":               payment.OutcomeSoftDeclined,
	"identification_required":       payment.OutcomeSoftDeclined,
	"insufficient_funds":            payment.OutcomeSoftDeclined,
	"internal_timeout":              payment.OutcomeSoftDeclined,
	"invalid_card_number":           payment.OutcomeHardDeclined,
	"invalid_csc":                   payment.OutcomeSoftDeclined,
	"issuer_unavailable":            payment.OutcomeSoftDeclined,
	"payment_method_limit_exceeded": payment.OutcomeSoftDeclined,
	"payment_method_restricted":     payment.OutcomeHardDeclined,
	"permission_revoked":            payment.OutcomeHardDeclined,
	"unsupported_mobile_operator":   payment.OutcomeHardDeclined,
}

// refundDeclines maps each documented cancellation_details.reason of a refund. For a
// refund, soft means "may be tried again later" and hard "the money must go back another
// way" (a person arranges it).
var refundDeclines = map[string]payment.Outcome{
	"general_decline":                  payment.OutcomeSoftDeclined,
	"insufficient_funds":               payment.OutcomeSoftDeclined,
	"rejected_by_timeout":              payment.OutcomeSoftDeclined,
	"rejected_by_payee":                payment.OutcomeHardDeclined,
	"yoo_money_account_closed":         payment.OutcomeHardDeclined,
	"payment_basket_id_not_found":      payment.OutcomeHardDeclined,
	"payment_article_number_not_found": payment.OutcomeHardDeclined,
	"payment_tru_code_not_found":       payment.OutcomeHardDeclined,
	"too_many_refunding_articles":      payment.OutcomeHardDeclined,
	"some_articles_already_refunded":   payment.OutcomeHardDeclined,
}

// PaymentDeclineOutcome returns the outcome of a canceled payment with the given
// cancellation_details.reason: OutcomeSoftDeclined or OutcomeHardDeclined, and whether the
// reason is one YooKassa documents. An undocumented reason is a soft decline (see the
// package doc for why).
func PaymentDeclineOutcome(reason string) (payment.Outcome, bool) {
	o, ok := paymentDeclines[reason]
	if !ok {
		return payment.OutcomeSoftDeclined, false
	}
	return o, true
}

// RefundDeclineOutcome is PaymentDeclineOutcome for a canceled refund.
func RefundDeclineOutcome(reason string) (payment.Outcome, bool) {
	o, ok := refundDeclines[reason]
	if !ok {
		return payment.OutcomeSoftDeclined, false
	}
	return o, true
}

// parties names who canceled, for the decline message.
var parties = map[string]string{
	"merchant":        "the shop",
	"yoo_money":       "YooKassa",
	"payment_network": "the payment network (issuer or another payment service)",
	"refund_network":  "the refund network (issuer or another payment service)",
}

// declineMessage is the short text of a decline: the reason and who decided it.
func declineMessage(what string, d *cancellationDetails) string {
	if d == nil {
		return what + " canceled by YooKassa without cancellation_details"
	}
	party, ok := parties[d.Party]
	if !ok {
		party = fmt.Sprintf("party %q", d.Party)
	}
	return fmt.Sprintf("%s canceled: %s, decided by %s", what, d.Reason, party)
}
