package payment

import (
	"errors"
	"fmt"
	"time"
)

// Action is what the engine does next about a period's charge.
type Action string

// The actions.
const (
	// ActionActivate: the period is paid. Grant access (TERMS 3.3) or start the renewed period.
	ActionActivate Action = "activate"
	// ActionWait: the charge is pending. No access; wait for the webhook, and let the
	// reconciliation job look the key up if none comes.
	ActionWait Action = "wait"
	// ActionRetry: soft decline with retries left. At Decision.RetryAt make a new attempt
	// (Attempt.Retry) under its own key; no access meanwhile (past_due).
	ActionRetry Action = "retry"
	// ActionStop: no more charges for this period; Decision.Reason says why. The subscription
	// ends (or, at checkout, never starts).
	ActionStop Action = "stop"
	// ActionReconcile: the outcome is unknown. Ask the gateway (Lookup under the attempt's key)
	// and record the answer with RecordLookup. Never a new charge.
	ActionReconcile Action = "reconcile"
)

// StopReason says why a period's charging stopped.
type StopReason string

// The stop reasons.
const (
	// StopHardDecline: the gateway refused for good (card revoked, expired, fraud). Never retried.
	StopHardDecline StopReason = "hard_decline"
	// StopConsentWithdrawn: the customer withdrew consent to charges on the method. Never retried.
	StopConsentWithdrawn StopReason = "consent_withdrawn"
	// StopNoConsent: the method has no consent to recurring charges (TERMS 3.4).
	StopNoConsent StopReason = "no_consent"
	// StopRetriesExhausted: the last retry of the dunning schedule was soft-declined too.
	StopRetriesExhausted StopReason = "retries_exhausted"
	// StopDeclinedAtCheckout: the first charge of a subscription was declined; the customer is
	// present and may subscribe again with another card (TERMS 3.3).
	StopDeclinedAtCheckout StopReason = "declined_at_checkout"
	// StopCanceled: the engine canceled the attempt before charging it.
	StopCanceled StopReason = "canceled"
)

// Decision is Decide's answer.
type Decision struct {
	// Action is what to do.
	Action Action
	// RetryAt is when to make the next attempt, for ActionRetry; zero otherwise. It may be in the
	// past (a late job): retry at once.
	RetryAt time.Time
	// Reason is why, for ActionStop; empty otherwise.
	Reason StopReason
}

// Decide maps the state of a period's latest attempt to what the engine does next:
//
//	succeeded      → Activate (whatever the consent now: the money is in)
//	pending        → Wait (no access before success, TERMS 3.3)
//	unknown        → Reconcile (Lookup; never a new charge)
//	created        → Reconcile: an attempt found open by a retried job may have been sent
//	hard_declined  → Stop(hard_decline), never retried
//	soft_declined  → Stop(consent_withdrawn | no_consent) when CanCharge(method, at) refuses;
//	                 Stop(declined_at_checkout) for a checkout attempt;
//	                 Retry at NextRetry(schedule, a.DueAt, a.Number) while retries are left;
//	                 Stop(retries_exhausted) after the last one
//	canceled       → Stop(consent_withdrawn) if consent is withdrawn, else Stop(canceled)
//
// It returns a *ValidationError for an invalid schedule (checked even when unused, so a bad
// setting shows on the first charge, not on the first decline), attempt state or purpose, and
// any *ValidationError of the method's token.
func Decide(a Attempt, schedule DunningSchedule, method PaymentMethodStatus, at time.Time) (Decision, error) {
	if err := schedule.Validate(); err != nil {
		return Decision{}, err
	}
	if _, ok := a.Purpose.keyPrefix(); !ok {
		return Decision{}, invalid("Attempt.Purpose", fmt.Sprintf("%q is not a purpose", a.Purpose))
	}
	switch a.State {
	case StateSucceeded:
		return Decision{Action: ActionActivate}, nil
	case StatePending:
		return Decision{Action: ActionWait}, nil
	case StateUnknown, StateCreated:
		return Decision{Action: ActionReconcile}, nil
	case StateHardDeclined:
		return stop(StopHardDecline), nil
	case StateCanceled:
		if errors.Is(CanCharge(method, at), ErrConsentWithdrawn) {
			return stop(StopConsentWithdrawn), nil
		}
		return stop(StopCanceled), nil
	case StateSoftDeclined:
		switch err := CanCharge(method, at); {
		case errors.Is(err, ErrConsentWithdrawn):
			return stop(StopConsentWithdrawn), nil
		case errors.Is(err, ErrNoConsent):
			return stop(StopNoConsent), nil
		case err != nil:
			return Decision{}, err
		}
		if a.Purpose == PurposeCheckout {
			return stop(StopDeclinedAtCheckout), nil
		}
		if retryAt, ok := NextRetry(schedule, a.DueAt, a.Number); ok {
			return Decision{Action: ActionRetry, RetryAt: retryAt}, nil
		}
		return stop(StopRetriesExhausted), nil
	}
	return Decision{}, invalid("Attempt.State", fmt.Sprintf("%q is not a state", a.State))
}

// stop is the Decision to stop for reason.
func stop(reason StopReason) Decision { return Decision{Action: ActionStop, Reason: reason} }
