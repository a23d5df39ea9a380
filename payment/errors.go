package payment

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError: a request, receipt, schedule,
// gateway answer or webhook that is malformed. Nothing was decided; fix the input.
var ErrInvalid = errors.New("payment: invalid input")

// ErrNotFound is what a Gateway's Lookup returns (wrapped or not) when the gateway has never
// seen the idempotency key. It is the one answer that makes charging again safe, and only
// under the same key. Any other Lookup error means "still unknown".
var ErrNotFound = errors.New("payment: gateway has no charge under this idempotency key")

// ErrAmountMismatch means the gateway answered about a charge of another amount or currency
// than the attempt asked for. The attempt is left unchanged: money may have moved in the wrong
// amount, so the engine must neither grant access nor charge again, and must escalate to a person.
var ErrAmountMismatch = errors.New("payment: gateway answer has a different amount or currency than the attempt")

// ErrPaymentMismatch means an answer or webhook names another payment than the attempt (another
// idempotency key or provider payment id, or a refund event given to a charge attempt).
var ErrPaymentMismatch = errors.New("payment: answer is about another payment")

// ErrIllegalTransition means the move is not allowed from the attempt's state: for example
// building a charge request for an attempt whose outcome is unknown (it is settled by Lookup,
// never by charging again), retrying an attempt that was not soft-declined, or canceling one
// the gateway may hold.
var ErrIllegalTransition = errors.New("payment: illegal attempt transition")

// ErrAlreadySettled means the attempt already has a final outcome and the new answer contradicts
// it (a webhook saying "declined" for a succeeded attempt). The attempt is left unchanged. A
// duplicate answer with the same outcome is not an error but a no-op.
var ErrAlreadySettled = errors.New("payment: attempt already settled with another outcome")

// ErrConflictingOutcome means the gateway contradicts what it said before about an attempt that
// is not settled yet, e.g. Lookup answers ErrNotFound for a charge it reported as pending. It
// needs a person; the attempt is left unchanged and nothing is charged.
var ErrConflictingOutcome = errors.New("payment: gateway contradicts its earlier answer")

// ErrConsentWithdrawn means the customer withdrew consent to charges on the payment method
// (law in force from 1 March 2026). No charge may be made on it from that moment, even by a job
// queued earlier; the check happens before any gateway call.
var ErrConsentWithdrawn = errors.New("payment: consent to charges on this payment method was withdrawn")

// ErrNoConsent means the payment method has no recorded consent to recurring charges
// (TERMS 3.4: paying at checkout is that consent) as of the time of the charge.
var ErrNoConsent = errors.New("payment: no consent to recurring charges on this payment method")

// ErrCardData means a field that must hold an opaque provider token looks like a card number.
// TERMS 5.1: the library never receives card data. The error never repeats the value.
var ErrCardData = errors.New("payment: card data where an opaque token is expected")

// ErrDoubleCharge means two attempts of one subscription period succeeded: the invariant this
// package exists for is broken. VerifyPeriod reports it.
var ErrDoubleCharge = errors.New("payment: more than one successful charge in one period")

// ErrUnknownPayment is for the engine: a webhook or lookup answer that matches no recorded
// attempt. This package never returns it (it sees one attempt at a time); it is declared here so
// that the engine, the jobs and the tests share one sentinel.
var ErrUnknownPayment = errors.New("payment: no attempt matches this payment")

// ValidationError describes one malformed field. It matches ErrInvalid with errors.Is, and also
// the rule sentinel in Err when there is one (ErrCardData). Problem never contains card data.
type ValidationError struct {
	// Field names the field, e.g. "Receipt.Items[0].Description".
	Field string
	// Problem says what is wrong, in words.
	Problem string
	// Err is the rule broken, when a sentinel names it; nil otherwise.
	Err error
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("payment: invalid %s: %s", e.Field, e.Problem)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the rule sentinel, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// TransitionError is an attempt move refused because of the attempt's state or of the answer's
// content. Err is the sentinel to test: ErrIllegalTransition, ErrAlreadySettled,
// ErrConflictingOutcome, ErrAmountMismatch or ErrPaymentMismatch.
type TransitionError struct {
	// AttemptID is the attempt the move was tried on.
	AttemptID string
	// From is the attempt's state when the move was tried.
	From State
	// Move names the move: "record charge", "record lookup", "webhook", "cancel", "retry",
	// "charge request".
	Move string
	// Detail says what the answer said, in words.
	Detail string
	// Err is the sentinel.
	Err error
}

// Error implements error.
func (e *TransitionError) Error() string {
	msg := fmt.Sprintf("payment: attempt %s: %s from %s: %v", e.AttemptID, e.Move, e.From, e.Err)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Unwrap returns the sentinel.
func (e *TransitionError) Unwrap() error { return e.Err }

// invalid builds a *ValidationError.
func invalid(field, problem string) error {
	return &ValidationError{Field: field, Problem: problem}
}
