package subscription

import (
	"errors"
	"fmt"
)

// ErrTransitionNotAllowed is matched (errors.Is) by every *TransitionError: the event is
// not allowed in the subscription's status, or not yet / no longer at this instant.
var ErrTransitionNotAllowed = errors.New("subscription: transition not allowed")

// ErrPeriodNotOver is the cause of a *TransitionError for an event that may only happen
// once the paid period has ended (MarkPastDue, End, Renew): a paid period runs to its end
// (TERMS 3.6, 2.1.6).
var ErrPeriodNotOver = errors.New("subscription: the paid period has not ended yet")

// ErrPeriodOver is the cause of a *TransitionError for an event that needs the period
// still running (ExtendPeriod): once the period is over its renewal may already be under
// way, so extend the next period instead.
var ErrPeriodOver = errors.New("subscription: the paid period is over")

// ErrInvalid is matched (errors.Is) by every *ValidationError: a parameter or a stored
// field is missing or malformed. Nothing was changed.
var ErrInvalid = errors.New("subscription: invalid input")

// ErrCardData is the cause of a *ValidationError for a payment-method token that looks
// like a card number. Only the gateway's opaque token may be stored, never card data
// (TERMS 5.1).
var ErrCardData = errors.New("subscription: payment method looks like card data")

// ErrNotExhausted is returned by Exhaust when no hard limit of the current period is used
// up: exhausting it would cut access the customer paid for (TERMS 3.1).
var ErrNotExhausted = errors.New("subscription: no hard limit is used up")

// ErrNoAccess is matched (errors.Is) by every *NoAccessError: the subscription gives no
// access at that instant. The engine returns it from Consume and Reserve.
var ErrNoAccess = errors.New("subscription: no access")

// ErrMeterUnknown is the cause of a *ValidationError for a meter the period's terms have
// no limit for. A meter is never counted without a limit.
var ErrMeterUnknown = errors.New("subscription: meter not in the period's terms")

// ErrInvalidQuantity is the cause of a *ValidationError for a quantity out of range: not
// positive for Consume and Reserve, negative or above the reservation for Commit, or so
// large that a counter would overflow.
var ErrInvalidQuantity = errors.New("subscription: invalid quantity")

// ErrLimitExceeded is matched (errors.Is) by every *LimitError: the request would take a
// hard limit past its quantity and was refused whole.
var ErrLimitExceeded = errors.New("subscription: hard limit would be exceeded")

// ErrReservationResolved is returned for a reservation already committed, released or
// expired: each reservation resolves at most once.
var ErrReservationResolved = errors.New("subscription: reservation already resolved")

// ErrReservationExpired is returned by Commit at or after the reservation's ExpiresAt:
// the hold has lapsed, and only Release or Expire, which free its volume, resolve it.
var ErrReservationExpired = errors.New("subscription: reservation expired")

// ErrReservationNotExpired is returned by Expire before the reservation's ExpiresAt: a
// sweeper running early must not take volume from a call still in flight.
var ErrReservationNotExpired = errors.New("subscription: reservation not expired yet")

// ErrReservationMismatch is returned when a reservation is resolved against a period it
// was not made in, or its meter is not counted there: volume is always freed where it
// was held.
var ErrReservationMismatch = errors.New("subscription: reservation does not belong to this period")

// TransitionError reports an event the subscription does not allow: its status does not
// allow it, or (with Cause ErrPeriodNotOver / ErrPeriodOver) the instant does not.
// errors.Is(err, ErrTransitionNotAllowed) holds for every one, and errors.Is(err, Cause)
// when Cause is set.
type TransitionError struct {
	// From is the status the subscription was in.
	From Status
	// Event is the refused event.
	Event Action
	// Cause is nil when the status does not allow the event at all, else the sentinel
	// saying which time condition failed.
	Cause error
}

// Error says which event was refused in which status, and why.
func (e *TransitionError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("subscription: %s not allowed in status %s: %v", e.Event, e.From, e.Cause)
	}
	return fmt.Sprintf("subscription: %s not allowed in status %s", e.Event, e.From)
}

// Unwrap returns ErrTransitionNotAllowed and the Cause, if any.
func (e *TransitionError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrTransitionNotAllowed, e.Cause}
	}
	return []error{ErrTransitionNotAllowed}
}

// ValidationError reports one bad parameter or stored field: the first one found.
// errors.Is(err, ErrInvalid) holds for every one, and errors.Is(err, Cause) when Cause is
// set (ErrMeterUnknown, ErrInvalidQuantity, ErrCardData).
type ValidationError struct {
	// Field names the parameter or field: "actor", "end", "checkout.limits[1].meter".
	Field string
	// Problem says what is wrong, in words for an operator.
	Problem string
	// Cause is a more precise sentinel, or nil.
	Cause error
}

// Error renders "subscription: invalid field: problem".
func (e *ValidationError) Error() string {
	return "subscription: invalid " + e.Field + ": " + e.Problem
}

// Unwrap returns ErrInvalid and the Cause, if any.
func (e *ValidationError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrInvalid, e.Cause}
	}
	return []error{ErrInvalid}
}

// LimitError reports a request refused because it would take a hard limit past its
// quantity. It carries the counters as they were, so the caller can say how much is
// left: Limit - Used - Reserved. errors.Is(err, ErrLimitExceeded) holds.
type LimitError struct {
	// Meter is the limited meter.
	Meter string
	// Limit is the period's volume of the meter.
	Limit int64
	// Used and Reserved are the meter's counters before the request.
	Used, Reserved int64
	// Requested is the refused quantity.
	Requested int64
}

// Error says how much was asked and how much is left.
func (e *LimitError) Error() string {
	return fmt.Sprintf("subscription: %s: requested %d, %d left of %d (%d used, %d reserved)",
		e.Meter, e.Requested, max(e.Limit-e.Used-e.Reserved, 0), e.Limit, e.Used, e.Reserved)
}

// Unwrap returns ErrLimitExceeded.
func (e *LimitError) Unwrap() error { return ErrLimitExceeded }

// NoAccessError reports why a subscription gives no access (see Access). errors.Is(err,
// ErrNoAccess) holds; errors.As gives the Reason to show the customer.
type NoAccessError struct {
	// Reason says why: ReasonNotPaid, ReasonUsedUp, ReasonExpired…
	Reason Reason
}

// Error renders "subscription: no access: <reason>".
func (e *NoAccessError) Error() string { return "subscription: no access: " + string(e.Reason) }

// Unwrap returns ErrNoAccess.
func (e *NoAccessError) Unwrap() error { return ErrNoAccess }

func invalid(field, problem string) error {
	return &ValidationError{Field: field, Problem: problem}
}
