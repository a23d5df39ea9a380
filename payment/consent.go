package payment

import "time"

// PaymentMethodStatus is what the engine knows about a saved payment method: its opaque token
// and the customer's consent to recurring charges on it. The zero value has no consent.
type PaymentMethodStatus struct {
	// Token is the provider's opaque token of the saved card or wallet (TERMS 5.1: never card
	// data).
	Token string
	// ConsentGivenAt is when the customer agreed to recurring charges on the method: paying at
	// checkout is that agreement (TERMS 3.4). Zero means no consent.
	ConsentGivenAt time.Time
	// ConsentWithdrawnAt is when the customer withdrew that consent (possible electronically
	// from 1 March 2026; the operator must stop charging at once). Zero means not withdrawn.
	// A withdrawal is final for this record: a customer who agrees again saves the method
	// again, which makes a new record without a withdrawal.
	ConsentWithdrawnAt time.Time
}

// CanCharge reports whether the method may be charged at time at. It returns nil, or:
//   - ErrConsentWithdrawn when a withdrawal is recorded, whatever its time: a recorded
//     withdrawal wins even if it is stamped after at, so that clock skew between nodes can
//     never let one more charge through;
//   - ErrNoConsent when no consent was given at or before at;
//   - a *ValidationError (with ErrCardData when it looks like a card number) for a bad token.
//
// The engine calls it before every gateway call, including those of jobs queued before the
// withdrawal; Attempt.ChargeParams calls it for the engine.
func CanCharge(m PaymentMethodStatus, at time.Time) error {
	if err := checkToken("Token", m.Token); err != nil {
		return err
	}
	if !m.ConsentWithdrawnAt.IsZero() {
		return ErrConsentWithdrawn
	}
	if m.ConsentGivenAt.IsZero() || m.ConsentGivenAt.After(at) {
		return ErrNoConsent
	}
	return nil
}
