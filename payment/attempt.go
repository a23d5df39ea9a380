package payment

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smm-gpt/billing/money"
)

// Attempt is one try at charging one subscription period: the row the engine writes (and
// commits) before it calls the gateway, so that a retry after a crash finds it and reuses its
// key. Its methods and ApplyWebhook are the only moves between states; each returns the new
// Attempt and leaves the receiver untouched.
//
// States and moves (the gateway's word always decides; the engine never guesses):
//
//	created ──RecordCharge──▶ succeeded | pending | soft_declined | hard_declined | unknown
//	created ──Cancel────────▶ canceled   (Lookup: ErrNotFound; consent withdrawn, …)
//	unknown ──RecordLookup / ApplyWebhook──▶ any outcome; ErrNotFound ─▶ created (same key)
//	pending ──ApplyWebhook / RecordLookup──▶ succeeded | soft_declined | hard_declined
//	soft_declined ──Retry──▶ a new created attempt, Number+1, its own key
//	any other ──RecordCharge──▶ as a webhook would (a duplicate job's answer); errors are no-ops
//
// succeeded, soft_declined and hard_declined are final: the same outcome again is a no-op, a
// different one is ErrAlreadySettled, and a stale "pending" (an out-of-order webhook) is a no-op.
// canceled is final for the engine but yields to the gateway: if the gateway later reports the
// charge anyway, that answer is recorded, so no payment is ever lost.
type Attempt struct {
	// ID is the attempt's id (a UUIDv7 from the engine).
	ID string
	// SubscriptionID is the subscription being charged.
	SubscriptionID string
	// Purpose says whether this is the checkout charge or a renewal; it changes the key and
	// whether a soft decline is retried (see Decide).
	Purpose Purpose
	// PeriodNumber is the subscription period being paid for, counting from 1.
	PeriodNumber int
	// Number is the attempt's number within the period, counting from 1. A new number exists
	// only after a soft decline (Retry), so a soft-declined attempt's Number is also the count of
	// the period's soft declines so far.
	Number int
	// IdempotencyKey is the gateway key (NewAttemptKey: unguessable). Fixed when the
	// attempt is made; every call about this attempt uses it.
	IdempotencyKey string
	// Amount is the amount to charge in minor units, > 0.
	Amount int64
	// Currency is the ISO 4217 code of Amount.
	Currency string
	// DueAt is when the period's charge fell due: the checkout time, or the end of the previous
	// period for a renewal. Dunning retries are counted from it.
	DueAt time.Time
	// State is where the attempt stands.
	State State
	// ProviderPaymentID is the provider's id of the payment, once the gateway gave one.
	ProviderPaymentID string
	// DeclineCode is the provider's reason code when declined.
	DeclineCode string
	// DeclineMessage is the provider's human-readable reason when declined.
	DeclineMessage string
	// CreatedAt is when the attempt was made.
	CreatedAt time.Time
	// SettledAt is when the attempt reached a final state (succeeded, a decline, canceled);
	// zero while it is open (created, pending, unknown).
	SettledAt time.Time
	// Unapplied marks a succeeded attempt whose money no period took (the subscription could
	// no longer take it): the engine books it as owed back and refunds it. The period is
	// still unpaid, and may get a new attempt (Retry).
	Unapplied bool
}

// Purpose is why an attempt charges.
type Purpose string

// The purposes.
const (
	// PurposeCheckout is the first charge of a new subscription, with the customer present
	// (TERMS 3.3: no access before it succeeds). A decline is not retried on the dunning
	// schedule: the customer can try another card at once.
	PurposeCheckout Purpose = "checkout"
	// PurposeRenewal is the automatic charge for the next period (TERMS 3.5), retried on the
	// dunning schedule after a soft decline.
	PurposeRenewal Purpose = "renewal"
)

// keyPrefix is the purpose's prefix in an idempotency key.
func (p Purpose) keyPrefix() (string, bool) {
	switch p {
	case PurposeCheckout:
		return "checkout", true
	case PurposeRenewal:
		return "renew", true
	}
	return "", false
}

// State is where an attempt stands. The outcome states have the same strings as the Outcome
// they record.
type State string

// The attempt states.
const (
	// StateCreated: recorded with its key, and the gateway holds no charge under the key as far
	// as the engine knows. Trap: a created attempt found by a retried job may have reached the
	// gateway just before a crash; look it up (RecordLookup) before charging it.
	StateCreated State = "created"
	// StatePending: the gateway accepted it and confirms later. No access yet.
	StatePending State = State(OutcomePending)
	// StateSucceeded: paid. Final.
	StateSucceeded State = State(OutcomeSucceeded)
	// StateSoftDeclined: refused for now. Final for this attempt; the period may get a new one.
	StateSoftDeclined State = State(OutcomeSoftDeclined)
	// StateHardDeclined: refused for good. Final; the period gets no new attempt.
	StateHardDeclined State = State(OutcomeHardDeclined)
	// StateUnknown: the call got no answer. Settled only by Lookup or a webhook.
	StateUnknown State = State(OutcomeUnknown)
	// StateCanceled: never charged; the engine gave up on it after making sure the gateway
	// never saw its key (consent withdrawn before the call).
	StateCanceled State = "canceled"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case StateCreated, StatePending, StateSucceeded, StateSoftDeclined, StateHardDeclined, StateUnknown, StateCanceled:
		return true
	}
	return false
}

// Settled reports whether s is final: succeeded, soft_declined, hard_declined or canceled.
func (s State) Settled() bool {
	switch s {
	case StateSucceeded, StateSoftDeclined, StateHardDeclined, StateCanceled:
		return true
	}
	return false
}

// AttemptSpec is what the engine knows when it makes an attempt; NewAttempt adds the key
// and the state.
type AttemptSpec struct {
	// ID is the new attempt's id (a UUIDv7).
	ID string
	// SubscriptionID is the subscription being charged; no ":" (it is part of the key).
	SubscriptionID string
	// Purpose is PurposeCheckout or PurposeRenewal.
	Purpose Purpose
	// PeriodNumber is the period being paid for, ≥ 1.
	PeriodNumber int
	// Number is the attempt's number in the period, ≥ 1.
	Number int
	// Amount is the amount to charge in minor units, > 0: the period's price under the terms
	// chosen for it (TERMS 2.1.6).
	Amount int64
	// Currency is the ISO 4217 code of Amount.
	Currency string
	// DueAt is when the period's charge fell due.
	DueAt time.Time
	// IdempotencyKey is the attempt's gateway key, from NewAttemptKey; never the key of
	// another attempt. At most MaxKeyLen printable ASCII characters.
	IdempotencyKey string
}

// NewAttempt makes an attempt in state created with its idempotency key fixed. The engine
// commits it before calling the gateway. It returns a *ValidationError for bad input.
func NewAttempt(spec AttemptSpec, createdAt time.Time) (Attempt, error) {
	if strings.TrimSpace(spec.ID) == "" {
		return Attempt{}, invalid("ID", "empty")
	}
	if _, ok := spec.Purpose.keyPrefix(); !ok {
		return Attempt{}, invalid("Purpose", fmt.Sprintf("%q is neither %q nor %q", spec.Purpose, PurposeCheckout, PurposeRenewal))
	}
	if strings.TrimSpace(spec.SubscriptionID) == "" {
		return Attempt{}, invalid("SubscriptionID", "empty")
	}
	if spec.PeriodNumber < 1 {
		return Attempt{}, invalid("PeriodNumber", fmt.Sprintf("%d, must be ≥ 1", spec.PeriodNumber))
	}
	if spec.Number < 1 {
		return Attempt{}, invalid("Number", fmt.Sprintf("%d, must be ≥ 1", spec.Number))
	}
	key := spec.IdempotencyKey
	if err := checkKey("IdempotencyKey", key); err != nil {
		return Attempt{}, err
	}
	if err := checkMoney("", spec.Amount, spec.Currency); err != nil {
		return Attempt{}, err
	}
	if spec.DueAt.IsZero() {
		return Attempt{}, invalid("DueAt", "zero")
	}
	if createdAt.IsZero() {
		return Attempt{}, invalid("createdAt", "zero")
	}
	return Attempt{
		ID:             spec.ID,
		SubscriptionID: spec.SubscriptionID,
		Purpose:        spec.Purpose,
		PeriodNumber:   spec.PeriodNumber,
		Number:         spec.Number,
		IdempotencyKey: key,
		Amount:         spec.Amount,
		Currency:       spec.Currency,
		DueAt:          spec.DueAt,
		State:          StateCreated,
		CreatedAt:      createdAt,
	}, nil
}

// NewAttemptKey returns the gateway idempotency key of a new attempt: the purpose's prefix
// and nonce, e.g. "renew_9f86d081884c7d659a2feaa0c55ad015". The engine passes 128 bits of an HMAC
// under its installation's secret, in hex, as the nonce (the same for the same subscription,
// period and attempt number, so a retry that lost its row makes the same key), so that a key can be neither guessed nor derived from a subscription
// ID: a webhook or a request that names a key proves nothing by itself (the engine confirms
// every webhook with the gateway). The key is stored with the attempt before the gateway is
// called, and every retry of the attempt reuses it; the database holds it under a unique
// constraint.
//
// The nonce must be at least 16 characters of [0-9a-zA-Z-]; the key is at most MaxKeyLen
// characters. It returns a *ValidationError.
func NewAttemptKey(purpose Purpose, nonce string) (string, error) {
	prefix, ok := purpose.keyPrefix()
	if !ok {
		return "", invalid("Purpose", fmt.Sprintf("%q is neither %q nor %q", purpose, PurposeCheckout, PurposeRenewal))
	}
	if len(nonce) < 16 {
		return "", invalid("nonce", fmt.Sprintf("%d characters, fewer than 16: a key must not be guessable", len(nonce)))
	}
	for i := 0; i < len(nonce); i++ {
		c := nonce[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return "", invalid("nonce", "only letters, digits and '-'")
		}
	}
	key := prefix + "_" + nonce
	if err := checkKey("IdempotencyKey", key); err != nil {
		return "", err
	}
	return key, nil
}

// ChargeDetails are the parts of a charge request that do not come from the attempt.
type ChargeDetails struct {
	// CustomerID is the host's opaque customer id.
	CustomerID string
	// Description is the payment's description ("Pro, 1 month").
	Description string
	// Receipt is the charge's Income receipt, total equal to the attempt's amount.
	Receipt Receipt
	// Metadata is copied into the request; may be nil.
	Metadata map[string]string
}

// The metadata keys Attempt.ChargeParams adds, so that an adapter (or a person at the
// provider's dashboard) can find a charge by attempt even where the provider forgets keys.
const (
	MetadataAttemptID      = "billing_attempt_id"
	MetadataIdempotencyKey = "billing_idempotency_key"
)

// ChargeParams builds the gateway request for the attempt: its key, amount and currency, the
// method's token and the details. It refuses before any gateway call:
//   - ErrConsentWithdrawn / ErrNoConsent from CanCharge(method, at);
//   - an attempt not in state created (a *TransitionError with ErrIllegalTransition: an
//     unknown or pending attempt is settled by Lookup, never charged again);
//   - a request that does not validate (*ValidationError).
func (a Attempt) ChargeParams(method PaymentMethodStatus, d ChargeDetails, at time.Time) (ChargeParams, error) {
	if a.State != StateCreated {
		return ChargeParams{}, a.refuse("charge request", ErrIllegalTransition, "only a created attempt is charged")
	}
	if err := CanCharge(method, at); err != nil {
		return ChargeParams{}, err
	}
	meta := a.metadata(d.Metadata)
	req := ChargeParams{
		IdempotencyKey: a.IdempotencyKey,
		PaymentMethod:  method.Token,
		CustomerID:     d.CustomerID,
		Amount:         a.Amount,
		Currency:       a.Currency,
		Description:    d.Description,
		Receipt:        d.Receipt,
		Metadata:       meta,
	}
	if err := req.Validate(); err != nil {
		return ChargeParams{}, err
	}
	return req, nil
}

// metadata is extra with the attempt's ID and key added (MetadataAttemptID,
// MetadataIdempotencyKey), in a new map: what every request of the attempt carries.
func (a Attempt) metadata(extra map[string]string) map[string]string {
	meta := make(map[string]string, len(extra)+2)
	maps.Copy(meta, extra)
	meta[MetadataAttemptID] = a.ID
	meta[MetadataIdempotencyKey] = a.IdempotencyKey
	return meta
}

// CheckoutParams builds the gateway request for a first payment the customer confirms on
// the provider's page (CheckoutGateway): the attempt's key, amount and currency, the details
// and where the provider sends the customer back. There is no saved method to check consent
// on: paying on the provider's page, agreeing to save the method, is the consent (TERMS 3.4).
// It refuses an attempt that is not a created checkout (a *TransitionError) and a request
// that does not validate (*ValidationError).
func (a Attempt) CheckoutParams(d ChargeDetails, returnURL string) (CheckoutParams, error) {
	if a.State != StateCreated {
		return CheckoutParams{}, a.refuse("checkout request", ErrIllegalTransition, "only a created attempt is charged")
	}
	if a.Purpose != PurposeCheckout {
		return CheckoutParams{}, a.refuse("checkout request", ErrIllegalTransition, "only a checkout is confirmed on the provider's page")
	}
	meta := a.metadata(d.Metadata)
	req := CheckoutParams{
		IdempotencyKey: a.IdempotencyKey,
		CustomerID:     d.CustomerID,
		Amount:         a.Amount,
		Currency:       a.Currency,
		Description:    d.Description,
		Receipt:        d.Receipt,
		Metadata:       meta,
		ReturnURL:      returnURL,
	}
	if err := req.Validate(); err != nil {
		return CheckoutParams{}, err
	}
	return req, nil
}

// RecordCharge records the gateway's answer to Charge, passed as returned: (res, callErr), and
// reports whether the attempt changed. For a created attempt a non-nil callErr, or res.Outcome
// unknown, makes it unknown (res is then ignored); otherwise it takes res's outcome.
//
// The engine records under a fresh read of the row, which a webhook or a duplicate job may have
// settled meanwhile; so for an attempt that is no longer created the answer is recorded like a
// webhook's: the same outcome again (a duplicate job got the gateway's deduplicated answer) is a
// no-op, an error or unknown answer is a no-op (the attempt already knows more), a different
// final outcome is ErrAlreadySettled. This is no way to charge an unknown attempt again:
// ChargeParams refuses anything but a created attempt.
//
// Errors (the attempt is returned unchanged):
//   - *TransitionError with ErrAlreadySettled, ErrAmountMismatch or ErrPaymentMismatch when res
//     contradicts the attempt: the engine escalates and neither grants access nor charges;
//   - *ValidationError for a malformed res (no outcome, no provider id on success).
func (a Attempt) RecordCharge(res ChargeResult, callErr error, at time.Time) (Attempt, bool, error) {
	const move = "record charge"
	if callErr != nil || res.Outcome == OutcomeUnknown {
		switch a.State {
		case StateCreated:
			a.State = StateUnknown
			return a, true, nil
		case StatePending, StateSucceeded, StateSoftDeclined, StateHardDeclined, StateUnknown, StateCanceled:
			return a, false, nil
		default:
			return a, false, a.refuse(move, ErrIllegalTransition, "unknown state")
		}
	}
	return a.observe(res, at, move)
}

// RecordLookup records the gateway's answer to Lookup(a.IdempotencyKey), passed as returned:
// (res, lookupErr). It reports whether the attempt changed.
//
//   - lookupErr is ErrNotFound: a created or unknown attempt becomes created (the gateway never
//     saw the key; the engine may charge again under the same key, or Cancel). For a pending or
//     succeeded attempt that is ErrConflictingOutcome; for a declined or canceled one a no-op.
//   - any other lookupErr, or res.Outcome unknown: no news, a no-op; look again later.
//   - otherwise res settles the attempt exactly as a webhook would (see ApplyWebhook).
func (a Attempt) RecordLookup(res ChargeResult, lookupErr error, at time.Time) (Attempt, bool, error) {
	const move = "record lookup"
	if !a.State.Valid() {
		return a, false, a.refuse(move, ErrIllegalTransition, "unknown state")
	}
	if lookupErr != nil {
		if !errors.Is(lookupErr, ErrNotFound) {
			return a, false, nil
		}
		switch a.State {
		case StateCreated:
			return a, false, nil
		case StateUnknown:
			a.State = StateCreated
			return a, true, nil
		case StatePending, StateSucceeded:
			return a, false, a.refuse(move, ErrConflictingOutcome, "gateway says it never saw a charge it reported as "+string(a.State))
		default: // declined or canceled: nothing was taken either way
			return a, false, nil
		}
	}
	return a.observe(res, at, move)
}

// Cancel settles a created attempt as canceled: it will never be charged (consent was
// withdrawn before the call, the subscription was terminated). Pass the error of a Lookup of
// the attempt's key made just before: only ErrNotFound proves the gateway holds no charge under
// the key, because a duplicate job, or this job before a crash, may have sent it. Any other
// lookupErr (nil included: the gateway has the charge; record it with RecordLookup) is refused
// with ErrIllegalTransition, as is any state but created. Canceling a canceled attempt is a
// no-op.
//
// Trap: a charge still in flight when Lookup answers may land afterwards; the gateway's answer
// (a webhook) then still settles the canceled attempt, so the payment is not lost.
func (a Attempt) Cancel(lookupErr error, at time.Time) (Attempt, error) {
	const move = "cancel"
	switch {
	case a.State == StateCanceled:
		return a, nil
	case a.State != StateCreated:
		return a, a.refuse(move, ErrIllegalTransition, "only a created attempt can be canceled")
	case !errors.Is(lookupErr, ErrNotFound):
		return a, a.refuse(move, ErrIllegalTransition, "cancel needs Lookup's ErrNotFound first")
	}
	a.State = StateCanceled
	a.SettledAt = at
	return a, nil
}

// Retry makes the period's next attempt after a soft decline: Number+1, its own key (a new
// NewAttemptKey), the same
// amount, currency and due time, state created. Decide says whether and when; Retry only
// refuses (ErrIllegalTransition) an attempt that is not soft-declined, because any other state
// could still take money (pending, unknown), already has (succeeded) or must never be retried
// (hard decline, canceled).
func (a Attempt) Retry(id, key string, createdAt time.Time) (Attempt, error) {
	if !a.TookNothing() {
		return Attempt{}, a.refuse("retry", ErrIllegalTransition, "only an attempt that took nothing for the period is followed by another")
	}
	return NewAttempt(AttemptSpec{
		ID:             id,
		SubscriptionID: a.SubscriptionID,
		Purpose:        a.Purpose,
		PeriodNumber:   a.PeriodNumber,
		Number:         a.Number + 1,
		Amount:         a.Amount,
		Currency:       a.Currency,
		DueAt:          a.DueAt,
		IdempotencyKey: key,
	}, createdAt)
}

// TookNothing reports whether the attempt is over and took nothing for its period: soft-declined,
// canceled, or succeeded but unapplied (its money went back). Only such an attempt may be
// followed by another of the same period.
func (a Attempt) TookNothing() bool {
	return a.State == StateSoftDeclined || a.State == StateCanceled || a.State == StateSucceeded && a.Unapplied
}

// VerifyPeriod checks the invariants over all attempts of one subscription period, in any
// order: one subscription and period; numbers 1..n without gaps or repeats; each key valid
// and distinct from the others; every attempt but the last took nothing (TookNothing: a new
// attempt only after one that took nothing); at most one succeeded and applied. It returns
// ErrDoubleCharge for two applied successes, ErrIllegalTransition (wrapped) for an attempt
// after one that may have taken money, and a *ValidationError for the rest. An empty slice is
// valid.
func VerifyPeriod(attempts []Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(attempts), func(x, y Attempt) int { return cmp.Compare(x.Number, y.Number) })
	succeeded := 0
	for _, a := range sorted {
		if a.State == StateSucceeded && !a.Unapplied {
			succeeded++
		}
	}
	if succeeded > 1 {
		return fmt.Errorf("%w: %d attempts of subscription %s period %d succeeded",
			ErrDoubleCharge, succeeded, sorted[0].SubscriptionID, sorted[0].PeriodNumber)
	}
	first := sorted[0]
	keys := make(map[string]struct{}, len(sorted))
	for i, a := range sorted {
		field := fmt.Sprintf("attempts[number %d]", a.Number)
		if a.SubscriptionID != first.SubscriptionID || a.PeriodNumber != first.PeriodNumber || a.Purpose != first.Purpose {
			return invalid(field, "belongs to another subscription, period or purpose")
		}
		if a.Number != i+1 {
			return invalid(field, fmt.Sprintf("expected number %d: numbers run 1..n without gaps or repeats", i+1))
		}
		if err := checkKey(field+".IdempotencyKey", a.IdempotencyKey); err != nil {
			return err
		}
		if _, dup := keys[a.IdempotencyKey]; dup {
			return invalid(field, fmt.Sprintf("key %q is another attempt's too", a.IdempotencyKey))
		}
		keys[a.IdempotencyKey] = struct{}{}
		if !a.State.Valid() {
			return invalid(field, fmt.Sprintf("state %q", a.State))
		}
		if i < len(sorted)-1 && !a.TookNothing() {
			return fmt.Errorf("%w: attempt %d of subscription %s period %d is %s but attempt %d exists",
				ErrIllegalTransition, a.Number, a.SubscriptionID, a.PeriodNumber, a.State, a.Number+1)
		}
	}
	return nil
}

// observe applies an answer from the gateway (a Charge or Lookup result, or a webhook) to the
// attempt. It checks the answer against the attempt, then moves by the state table on Attempt.
func (a Attempt) observe(res ChargeResult, at time.Time, move string) (Attempt, bool, error) {
	if err := a.checkAnswer(res, move); err != nil {
		return a, false, err
	}
	got := State(res.Outcome)
	if got == StateUnknown {
		return a, false, nil // no news
	}
	switch a.State {
	case StateCreated, StateUnknown:
		// Any answer settles (or, for pending, advances) an attempt the engine knows nothing of.
	case StatePending:
		if got == StatePending {
			return a, false, nil
		}
	case StateSucceeded, StateSoftDeclined, StateHardDeclined:
		if got == a.State || got == StatePending {
			return a, false, nil // a duplicate, or a stale answer from before the settlement
		}
		return a, false, a.refuse(move, ErrAlreadySettled, "gateway now says "+string(res.Outcome))
	case StateCanceled:
		// The gateway's word wins over the engine's belief: record what really happened, so
		// that a charge that landed after all is never lost.
	default:
		return a, false, a.refuse(move, ErrIllegalTransition, "unknown state")
	}
	a.State = got
	if res.ProviderPaymentID != "" {
		a.ProviderPaymentID = res.ProviderPaymentID
	}
	if got == StateSoftDeclined || got == StateHardDeclined {
		a.DeclineCode, a.DeclineMessage = res.DeclineCode, res.DeclineMessage
	}
	a.SettledAt = time.Time{}
	if got.Settled() {
		a.SettledAt = at
	}
	return a, true, nil
}

// checkAnswer checks that res is well-formed and about this attempt's payment, amount and
// currency.
func (a Attempt) checkAnswer(res ChargeResult, move string) error {
	if !res.Outcome.Valid() {
		return invalid("ChargeResult.Outcome", fmt.Sprintf("%q is not an outcome", res.Outcome))
	}
	if res.Outcome == OutcomeUnknown {
		return nil
	}
	moved := res.Outcome == OutcomeSucceeded || res.Outcome == OutcomePending
	if moved && res.ProviderPaymentID == "" && a.ProviderPaymentID == "" {
		return invalid("ChargeResult.ProviderPaymentID", "required when the outcome is "+string(res.Outcome))
	}
	if a.ProviderPaymentID != "" && res.ProviderPaymentID != "" && a.ProviderPaymentID != res.ProviderPaymentID {
		return a.refuse(move, ErrPaymentMismatch, fmt.Sprintf("provider payment %q, attempt has %q", res.ProviderPaymentID, a.ProviderPaymentID))
	}
	amountOK := res.Amount == a.Amount || (!moved && res.Amount == 0)
	currencyOK := res.Currency == a.Currency || (!moved && res.Currency == "")
	if !amountOK || !currencyOK {
		return a.refuse(move, ErrAmountMismatch, fmt.Sprintf("gateway: %d %s, attempt: %s",
			res.Amount, res.Currency, formatMinor(a.Amount, a.Currency)))
	}
	return nil
}

// refuse builds the *TransitionError of a refused move.
func (a Attempt) refuse(move string, sentinel error, detail string) error {
	return &TransitionError{AttemptID: a.ID, From: a.State, Move: move, Detail: detail, Err: sentinel}
}

// formatMinor renders minor units with their currency for messages, or the raw number when the
// currency is unknown.
func formatMinor(amount int64, currency string) string {
	c, err := money.Lookup(currency)
	if err != nil {
		return strconv.FormatInt(amount, 10) + " " + currency
	}
	return c.Format(amount)
}
