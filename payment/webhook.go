package payment

import (
	"fmt"
	"time"
)

// EventKind says whether a webhook is about a charge or a refund.
type EventKind string

// The event kinds.
const (
	// KindCharge: the event settles a charge attempt (ApplyWebhook).
	KindCharge EventKind = "charge"
	// KindRefund: the event settles a refund; the refund package handles it.
	KindRefund EventKind = "refund"
)

// WebhookEvent is a provider notification as the host forwards it to the engine. Webhooks are
// hints: the engine's HandlePaymentWebhook asks the gateway (Lookup) and applies the gateway's
// answer, never the body alone. Trap: ApplyWebhook itself trusts the event's content; a caller
// other than the engine must confirm the event with the gateway first, or an unchecked webhook
// could grant access without payment.
type WebhookEvent struct {
	// Kind is KindCharge or KindRefund.
	Kind EventKind
	// ProviderPaymentID is the provider's payment id. At least one of ProviderPaymentID and
	// IdempotencyKey is required; the engine finds the attempt by either.
	ProviderPaymentID string
	// ProviderRefundID is the provider's refund id, for KindRefund.
	ProviderRefundID string
	// IdempotencyKey is the key the charge (or refund) was made under, when the provider echoes it.
	IdempotencyKey string
	// Outcome is the state the provider reports: succeeded, pending or a decline. Unknown is not
	// a webhook outcome.
	Outcome Outcome
	// Amount is the amount in minor units, under the same rules as ChargeResult.Amount.
	Amount int64
	// Currency is the ISO 4217 code of Amount.
	Currency string
	// DeclineCode is the provider's reason code for a decline.
	DeclineCode string
	// DeclineMessage is the provider's human-readable reason for a decline.
	DeclineMessage string
	// ReceivedAt is when the host received the event; it becomes the attempt's SettledAt.
	ReceivedAt time.Time
}

// ApplyWebhook applies a charge webhook to the attempt it is about and reports whether the
// attempt changed. Webhooks arrive late, twice and out of order, so:
//   - a duplicate (the outcome the attempt already has) is a no-op: changed=false, no error;
//   - a stale "pending" for a settled attempt is a no-op;
//   - a pending attempt becomes succeeded or declined; a created or unknown attempt (its call
//     crashed or timed out) takes the outcome, which settles it without a Lookup;
//   - a different outcome for a settled attempt is ErrAlreadySettled, the attempt unchanged.
//
// Other errors, all leaving the attempt unchanged: ErrPaymentMismatch (a refund event, or a key
// or provider id that is not the attempt's), ErrAmountMismatch, and *ValidationError for a
// malformed event. A webhook that matches no attempt is the engine's ErrUnknownPayment.
func ApplyWebhook(a Attempt, ev WebhookEvent) (Attempt, bool, error) {
	const move = "webhook"
	if ev.Kind != KindCharge {
		return a, false, a.refuse(move, ErrPaymentMismatch, fmt.Sprintf("a %q event is not about a charge", ev.Kind))
	}
	if ev.ProviderPaymentID == "" && ev.IdempotencyKey == "" {
		return a, false, invalid("WebhookEvent", "neither ProviderPaymentID nor IdempotencyKey")
	}
	if ev.IdempotencyKey != "" && ev.IdempotencyKey != a.IdempotencyKey {
		return a, false, a.refuse(move, ErrPaymentMismatch, fmt.Sprintf("key %q, attempt has %q", ev.IdempotencyKey, a.IdempotencyKey))
	}
	if ev.Outcome == OutcomeUnknown {
		return a, false, invalid("WebhookEvent.Outcome", "a webhook reports a state; unknown is not one")
	}
	if ev.ReceivedAt.IsZero() {
		return a, false, invalid("WebhookEvent.ReceivedAt", "zero")
	}
	return a.observe(ChargeResult{
		Outcome:           ev.Outcome,
		ProviderPaymentID: ev.ProviderPaymentID,
		Amount:            ev.Amount,
		Currency:          ev.Currency,
		DeclineCode:       ev.DeclineCode,
		DeclineMessage:    ev.DeclineMessage,
	}, ev.ReceivedAt, move)
}
