package billing

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// The error vocabulary. Every error of a command is of one kind ([ErrorKind]), and matches
// that kind's sentinel with [errors.Is]: a host maps any engine error to its own answer with
// one call ([KindOf], or [HTTPStatus] for HTTP) and never needs the detail sentinels below to
// decide what to tell its caller. The detail sentinels ([ErrIdempotencyConflict],
// [ErrLimitExceeded], [ErrNotEligible]…) stay for the cases that need them.
var (
	// ErrInvalidInput is matched by every refused input: an [*InputError] naming the fields,
	// a [*TariffValidationError], a card number where a token belongs, a time in the future
	// ([KindInvalidInput]). Nothing was written.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNotFound: the tariff, subscription, reservation, request or payment named does
	// not exist ([KindNotFound]).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request is well formed but the state does not allow it: an
	// idempotency key reused with another request, a transition the subscription's or the
	// refund request's status does not allow, a period already refunded, a retired tariff,
	// another customer's payment method ([KindConflict]). Nothing was written.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the engine cannot serve the command now: it is not wired for it (no
	// Gateway, no River client, no checkout page), the schema is not the code's, or the
	// context ended ([KindUnavailable]). Retrying later, or after fixing the wiring, may work.
	ErrUnavailable = errors.New("unavailable")
	// ErrInternal is matched by an error of none of the other kinds: the database failed, or
	// an invariant the engine keeps did not hold ([KindInternal]). The cause is kept for the
	// log; tell the caller only that something went wrong.
	ErrInternal = errors.New("internal error")

	// ErrIdempotencyConflict: an idempotency key was used before with a different request.
	// The first request's effect stands; nothing was written. Of [KindConflict].
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
)

// The typed errors a caller reaches with errors.As for their detail, named here so that a
// host needs no other package to match them (as River aliases rivertype's). Each is the
// policy package's type itself, so errors.As with either name finds the same error. The
// other types in a command's chain (*subscription.ValidationError, *payment.TransitionError…)
// carry detail for the log only: errors.Is with the sentinels above tells a caller all it
// needs.
type (
	// NoAccessError is why a subscription gives no access (Consume, Reserve, Access): its
	// Reason (subscription.ReasonNotPaid, ReasonUsedUp, ReasonExpired…) is what to tell the
	// customer. It matches ErrNoAccess.
	NoAccessError = subscription.NoAccessError
	// LimitError is a Consume or Reserve refused because it would pass a hard limit (TERMS
	// 3.1): Limit - Used - Reserved is what is left of the meter. It matches ErrLimitExceeded.
	LimitError = subscription.LimitError
	// TransitionError is a subscription command its status (or, with Cause, the instant)
	// does not allow: From is the status. It matches ErrTransitionNotAllowed.
	TransitionError = subscription.TransitionError
	// NotEligibleError is a refund request that does not qualify for the full refund of
	// TERMS 3.7 (ExecuteRefund without an override): Decision lists every failed condition.
	// It matches ErrNotEligible.
	NotEligibleError = refund.NotEligibleError
	// RefundTransitionError is a refund command the request's state does not allow: From is
	// the state. It matches ErrRefundTransition.
	RefundTransitionError = refund.TransitionError
	// TariffValidationError lists every bad field of a tariff spec (Tariffs().Publish), with
	// paths a form can map ("limits[2].quantity"). The command's error matches ErrInvalidInput.
	TariffValidationError = tariff.ValidationError
	// LedgerValidationError lists every problem of a transaction refused by Ledger().Post.
	// The command's error matches ErrInvalidInput, and each problem's sentinel
	// (ledger.ErrUnbalanced…).
	LedgerValidationError = ledger.ValidationError
)

// ErrorKind is what an engine error means to its caller, whatever its detail. A declined
// charge or refund is a result, not an error ([ChargeResult].Attempt, [RefundRequest].State),
// so no kind stands for it.
type ErrorKind string

// The kinds of error, each matched by its sentinel ([ErrorKind.Sentinel]).
const (
	// KindInvalidInput: the request was refused as malformed ([ErrInvalidInput]). HTTP 400.
	KindInvalidInput ErrorKind = "invalid_input"
	// KindNotFound: what the request names does not exist ([ErrNotFound]). HTTP 404.
	KindNotFound ErrorKind = "not_found"
	// KindConflict: the state does not allow the request ([ErrConflict]). HTTP 409.
	KindConflict ErrorKind = "conflict"
	// KindNoAccess: the subscription gives no access now ([ErrNoAccess], with the reason in
	// [*NoAccessError]). HTTP 403.
	KindNoAccess ErrorKind = "no_access"
	// KindLimitExceeded: the request would pass a hard limit of the paid period (TERMS 3.1,
	// [ErrLimitExceeded]). HTTP 403: the customer needs another tariff or the next period.
	KindLimitExceeded ErrorKind = "limit_exceeded"
	// KindUnavailable: the engine cannot serve the request now ([ErrUnavailable]). HTTP 503.
	KindUnavailable ErrorKind = "unavailable"
	// KindInternal: anything else ([ErrInternal]). HTTP 500.
	KindInternal ErrorKind = "internal"
)

// Sentinel returns the error every error of kind k matches with [errors.Is].
func (k ErrorKind) Sentinel() error {
	switch k {
	case KindInvalidInput:
		return ErrInvalidInput
	case KindNotFound:
		return ErrNotFound
	case KindConflict:
		return ErrConflict
	case KindNoAccess:
		return ErrNoAccess
	case KindLimitExceeded:
		return ErrLimitExceeded
	case KindUnavailable:
		return ErrUnavailable
	}
	return ErrInternal
}

// HTTPStatus is the HTTP status of kind k: 400, 404, 409, 403, 403, 503 or 500.
func (k ErrorKind) HTTPStatus() int {
	switch k {
	case KindInvalidInput:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindNoAccess, KindLimitExceeded:
		return http.StatusForbidden
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// KindOf returns the kind of err: of an [*Error], its Kind; of any other error, the kind its
// chain says (an [*InputError] is [KindInvalidInput], a wrapped [tariff.ErrRetired]
// [KindConflict]…); [KindInternal] when nothing in the chain is known. KindOf(nil) is "".
func KindOf(err error) ErrorKind {
	if err == nil {
		return ""
	}
	var be *Error
	if errors.As(err, &be) {
		return be.Kind
	}
	return classify(err)
}

// HTTPStatus returns the HTTP status to answer err with: KindOf(err).HTTPStatus() (see
// [ErrorKind.HTTPStatus]), and
// 200 for nil.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return KindOf(err).HTTPStatus()
}

// Error is an error of a command: which command, the kind, and the cause. Every command's
// error is an *Error or an [*InputError]. [errors.Is] matches the kind's sentinel and every
// error in the cause's chain; [errors.As] reaches the typed errors of the cause
// ([*NoAccessError], [*LimitError], [*NotEligibleError]…).
type Error struct {
	// Op is the command that failed ("Subscribe", "Consume").
	Op string
	// Kind is what the error means to the caller.
	Kind ErrorKind
	// Err is the cause.
	Err error
}

// Error reads "billing: Op: cause", the cause without a prefix of its own that repeats
// "billing:" or the command's name.
func (e *Error) Error() string {
	cause := e.Err.Error()
	for {
		trimmed := strings.TrimPrefix(strings.TrimPrefix(cause, "billing: "), e.Op+": ")
		if trimmed == cause {
			break
		}
		cause = trimmed
	}
	return "billing: " + e.Op + ": " + cause
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind.Sentinel() }

// kindSentinels lists, in the order they are tried, the errors whose presence in a chain
// gives its kind. The first match wins: ErrMeterUnknown, for instance, is invalid input
// before anything else it may match.
var kindSentinels = []struct {
	kind ErrorKind
	errs []error
}{
	{KindInvalidInput, []error{ErrInvalidInput, ErrInvalidConfig, tariff.ErrInvalid, subscription.ErrInvalid, payment.ErrInvalid,
		refund.ErrInvalid, subscription.ErrCardData, payment.ErrCardData, subscription.ErrInvalidQuantity, subscription.ErrMeterUnknown,
		refund.ErrReceivedInFuture, ErrRefundAmount, ErrAmountMismatch, ErrWebhookNotConfirmed, money.ErrUnknownCurrency,
		money.ErrPrecision, money.ErrRange, ledger.ErrInvalidKey, ledger.ErrInvalidReference, ledger.ErrInvalidMemo,
		ledger.ErrMissingTime, ledger.ErrTooFewPostings, ledger.ErrNonPositive, ledger.ErrInvalidSide, ledger.ErrUnknownAccount,
		ledger.ErrCurrencyMismatch, ledger.ErrUnbalanced, ledger.ErrInvalidReversal, calendar.ErrOutOfRange}},
	{KindNotFound, []error{ErrNotFound, store.ErrNotFound, tariff.ErrNoVersion, payment.ErrUnknownPayment}},
	{KindNoAccess, []error{ErrNoAccess}},
	{KindLimitExceeded, []error{ErrLimitExceeded}},
	{KindConflict, []error{ErrConflict, ErrIdempotencyConflict, store.ErrKeyConflict, ledger.ErrKeyReused, ErrTransitionNotAllowed,
		ErrRefundTransition, ErrNotEligible, ErrPeriodNotPaid, ErrAlreadyRefunded, ErrPaymentMethodNotOwned, tariff.ErrRetired, tariff.ErrVersionChanged,
		subscription.ErrPeriodNotOver, subscription.ErrPeriodOver, subscription.ErrNotExhausted, subscription.ErrReservationResolved,
		subscription.ErrReservationExpired, subscription.ErrReservationNotExpired, subscription.ErrReservationMismatch,
		ledger.ErrAlreadyReversed, store.ErrLedgerAlreadyReversed, payment.ErrConsentWithdrawn, payment.ErrNoConsent,
		payment.ErrPaymentMismatch, payment.ErrAlreadySettled, payment.ErrConflictingOutcome, payment.ErrAmountMismatch,
		payment.ErrIllegalTransition, errNotDue}},
	{KindUnavailable, []error{ErrUnavailable, ErrNoGateway, ErrNoRiverClient, ErrNoCheckout, ErrSchemaOutdated, ErrSchemaTooNew,
		ErrMigrationChanged, ErrSchemaMismatch, context.Canceled, context.DeadlineExceeded}},
}

// classify finds the kind of an error that is not an *Error (kindSentinels).
func classify(err error) ErrorKind {
	for _, k := range kindSentinels {
		for _, target := range k.errs {
			if errors.Is(err, target) {
				return k.kind
			}
		}
	}
	return KindInternal
}

// MaxIdempotencyKeyLen is the longest idempotency key accepted.
const MaxIdempotencyKeyLen = 200

// InputError names the fields of a request that were refused. Nothing was written.
type InputError struct {
	// Op is the command ("Consume", "Subscribe").
	Op string
	// Problems lists every bad field.
	Problems []FieldProblem
}

// Error lists every problem.
func (e *InputError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Problem
	}
	return fmt.Sprintf("billing: %s: invalid input: %s", e.Op, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, [ErrInvalidInput]) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Has reports whether field is among the problems.
func (e *InputError) Has(field string) bool {
	for _, p := range e.Problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// inputCheck collects problems of one request.
type inputCheck struct {
	op       string
	problems []FieldProblem
}

func (c *inputCheck) add(field, problem string) {
	c.problems = append(c.problems, FieldProblem{field, problem})
}

func (c *inputCheck) key(field, key string) {
	switch {
	case key == "":
		c.add(field, "required: an idempotency key makes a retry safe")
	case len(key) > MaxIdempotencyKeyLen:
		c.add(field, fmt.Sprintf("longer than %d bytes", MaxIdempotencyKeyLen))
	}
}

// received checks when and how a customer's request reached the operator (a refund request,
// an account deletion request).
func (c *inputCheck) received(at time.Time, channel refund.Channel) {
	if at.IsZero() {
		c.add("ReceivedAt", "required: when the request reached the operator")
	}
	if !channel.Valid() {
		c.add("Channel", fmt.Sprintf("%q: one of email, support, profile", channel))
	}
}

func (c *inputCheck) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &InputError{Op: c.op, Problems: c.problems}
}

// opError is the seam every command's error passes: the store's errors mapped to the
// engine's, the command named once, the kind fixed (*Error). An *InputError, which names
// the command itself, passes unchanged, as does an *Error already made.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	err = mapStoreError(err)
	return &Error{Op: op, Kind: classify(err), Err: err}
}

// mapStoreError turns the store's errors into the engine's (the one seam, as River's
// interpretError): the store's sentinels never reach a caller.
func mapStoreError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return replaceSentinel(err, store.ErrNotFound, ErrNotFound)
	case errors.Is(err, store.ErrKeyConflict):
		return replaceSentinel(err, store.ErrKeyConflict, ErrIdempotencyConflict)
	case errors.Is(err, store.ErrLedgerAlreadyReversed):
		return replaceSentinel(err, store.ErrLedgerAlreadyReversed, ledger.ErrAlreadyReversed)
	}
	return err
}

// replaceSentinel returns err with the store's sentinel old replaced by the engine's new:
// the message keeps err's detail, the chain has new and not old.
func replaceSentinel(err, old, new error) error {
	if err == old {
		return new
	}
	detail := strings.TrimSuffix(err.Error(), ": "+old.Error())
	if detail == err.Error() {
		return fmt.Errorf("%w (%s)", new, detail)
	}
	return fmt.Errorf("%s: %w", detail, new)
}

// requestHash is the fingerprint of a request for its idempotency key: the parts joined
// with a separator no part contains.
func requestHash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// claimKeyForID claims an idempotency key for a command whose result is the ID of what it
// made (store.ClaimKey). On a replay it returns that ID, and the caller returns the thing
// it names; on first use it returns "", and the caller makes the thing and saves its ID
// with store.SaveResult in the same transaction.
func claimKeyForID(ctx context.Context, tx pgx.Tx, scope, key string, hash []byte, now time.Time) (string, error) {
	replay, err := store.ClaimKey(ctx, tx, scope, key, hash, now)
	if err != nil || replay == nil {
		return "", err
	}
	var id string
	if err := json.Unmarshal(replay, &id); err != nil {
		return "", fmt.Errorf("idempotency key %q: stored result: %w", key, err)
	}
	return id, nil
}
