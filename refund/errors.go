package refund

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every bad-input error of this package; the more
// precise sentinels below wrap it. Nothing was decided.
var ErrInvalid = errors.New("refund: invalid input")

// The precise bad-input errors. Each matches ErrInvalid too.
var (
	// ErrMissingTime is returned for a zero instant that the rule needs (the request's
	// received instant, a period's start or end).
	ErrMissingTime = fmt.Errorf("%w: instant missing", ErrInvalid)
	// ErrNotGranted is returned by Eligibility for a period whose GrantedAt is zero:
	// without a grant the 3.7 window has not opened. Nothing was delivered, so the
	// engine returns such a payment by its own path, not as a 3.7 refund.
	ErrNotGranted = fmt.Errorf("%w: access to the period was never granted", ErrInvalid)
	// ErrRequestBeforeGrant is returned by Eligibility for a request received before
	// access was granted: the 3.7 window counts from the grant and has not opened.
	// A person may still decide a refund under art. 32 (ProRata).
	ErrRequestBeforeGrant = fmt.Errorf("%w: request received before access was granted", ErrInvalid)
	// ErrReceivedInFuture is returned by CheckReceivedAt for a request whose received
	// instant is later than now: a clock or data-entry mistake.
	ErrReceivedInFuture = fmt.Errorf("%w: request received in the future", ErrInvalid)
	// ErrBadPeriod is returned for a period whose End is not after its Start (or is
	// absurdly far after it: more than 290 years, beyond a time.Duration).
	ErrBadPeriod = fmt.Errorf("%w: period end not after its start", ErrInvalid)
	// ErrBadUsage is returned for negative usage, a negative limit or a negative count
	// of open reservations.
	ErrBadUsage = fmt.Errorf("%w: negative usage", ErrInvalid)
	// ErrBadAmount is returned for a negative price, an unknown currency, or an amount
	// with more decimals than its currency has (money.ErrPrecision is wrapped too).
	ErrBadAmount = fmt.Errorf("%w: bad amount", ErrInvalid)
	// ErrNegativeCost is returned by ProRata for negative costs.
	ErrNegativeCost = fmt.Errorf("%w: negative costs", ErrInvalid)
	// ErrCostAbovePrice is returned by ProRata for costs above the period's price: the
	// provider's costs of one period cannot exceed what the customer paid for it, so
	// such a figure is a data-entry mistake. (Costs above the unused share but within
	// the price are accepted and give a refund of zero.)
	ErrCostAbovePrice = fmt.Errorf("%w: costs above the price", ErrInvalid)
	// ErrCalendar wraps an error from the calendar (an out-of-range date).
	ErrCalendar = fmt.Errorf("%w: calendar", ErrInvalid)
)

// ErrNotEligible is matched (errors.Is) by every *NotEligibleError: the request does not
// qualify for the full refund of TERMS 3.7.
var ErrNotEligible = errors.New("refund: not eligible for a full refund")

// NotEligibleError is what Decision.Err returns for a request that does not qualify;
// it lists every failed condition.
type NotEligibleError struct {
	// Decision is the decision that failed, with its explanation.
	Decision Decision
}

// Error returns the decision's explanation.
func (e *NotEligibleError) Error() string {
	return ErrNotEligible.Error() + ": " + e.Decision.String()
}

// Unwrap returns ErrNotEligible.
func (e *NotEligibleError) Unwrap() error { return ErrNotEligible }

// ErrTransitionNotAllowed is matched (errors.Is) by every *TransitionError.
var ErrTransitionNotAllowed = errors.New("refund: transition not allowed")

// TransitionError is returned by Next for an event the request's state does not allow.
type TransitionError struct {
	// From is the state the request was in.
	From State
	// Event is the refused event.
	Event Event
}

// Error says which event was refused in which state.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("refund: %s not allowed in state %s", e.Event, e.From)
}

// Unwrap returns ErrTransitionNotAllowed.
func (e *TransitionError) Unwrap() error { return ErrTransitionNotAllowed }
