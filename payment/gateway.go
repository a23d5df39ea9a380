package payment

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/smm-gpt/billing/money"
)

// Gateway is what a payment provider adapter implements (YooKassa, CloudPayments, a test
// fake). The engine is its only caller. Every method does I/O and takes a context first.
//
// The contract, which the engine's exactly-once charging relies on:
//
//   - Charge charges a saved payment method under req.IdempotencyKey. The gateway must treat
//     a second Charge under the same key as the same charge (return the first one's result and
//     never charge twice). The engine guarantees one key per attempt and reuses it on every retry.
//   - A returned error from Charge means "outcome unknown" (a timeout, a dropped connection, a
//     5xx): the money may or may not have moved. It is the same as a result with OutcomeUnknown
//     and the returned ChargeResult is ignored. The engine never charges again on it; it asks
//     Lookup. So an adapter must not turn an ambiguous failure into a decline.
//   - A decline is a result, not an error: OutcomeSoftDeclined (insufficient funds, issuer
//     unavailable, limits: try again later) or OutcomeHardDeclined (card revoked, expired, lost,
//     stolen, fraud, consent or permission withdrawn at the provider: never try again). The
//     adapter maps the provider's codes to one of the two and keeps them in DeclineCode.
//   - Trap: a fault of the operator's own set-up (bad credentials, malformed request) is an
//     error, not a decline. A decline ends the customer's subscription; an error only makes the
//     engine look the key up (ErrNotFound) and try again later under the same key.
//   - Lookup answers what happened to the charge made under a key. ErrNotFound means the
//     gateway never saw the key; charging again is then safe, and only under the same key (a
//     request still in flight is deduplicated by it). Any other error means "still unknown: ask
//     again later". A Lookup result with OutcomeUnknown is treated the same way.
//   - Trap: keys must stay looked-up-able and deduplicated for as long as the engine may retry
//     (days, not minutes). An adapter for a provider that forgets keys after 24 hours must find
//     the charge another way (Attempt.ChargeParams also puts the key in the charge's Metadata
//     under MetadataIdempotencyKey) rather than answer ErrNotFound for a charge it cannot see.
//   - Refund and LookupRefund follow the same rules for refunds, under their own keys.
//
// Compatibility (the promise of v1 to adapter authors): Gateway gains no method within a
// major version. A new capability comes as an optional interface of its own, as
// [CheckoutGateway] did, which the engine finds with a type assertion and does without when
// an adapter lacks it; an adapter written against v1 keeps compiling and keeps working. The
// *Params structs may gain fields, whose zero value always means what the adapter did before
// (an adapter ignores a field it does not know); the *Result structs may gain fields an
// adapter may leave zero. Outcomes and the meaning of each error above do not change. An
// adapter checks itself against the contract with paymenttest.Run, which grows with it.
type Gateway interface {
	// Charge charges req.PaymentMethod for req.Amount under req.IdempotencyKey. An error means
	// the outcome is unknown; a decline is a result.
	Charge(ctx context.Context, req ChargeParams) (ChargeResult, error)
	// Refund returns req.Amount of the provider payment req.ProviderPaymentID under
	// req.IdempotencyKey. An error means the outcome is unknown.
	Refund(ctx context.Context, req RefundParams) (RefundResult, error)
	// Lookup returns the charge made under req.IdempotencyKey, or ErrNotFound when the gateway
	// never saw the key. It never charges.
	Lookup(ctx context.Context, req LookupParams) (ChargeResult, error)
	// LookupRefund returns the refund made under req.IdempotencyKey, or ErrNotFound when the
	// gateway never saw the key. It settles a refund whose outcome is unknown (the TERMS 3.8
	// deadline keeps running meanwhile). It never refunds.
	LookupRefund(ctx context.Context, req RefundLookupParams) (RefundResult, error)
}

// LookupParams asks a gateway what happened to the charge made (or maybe made) under a key,
// with what the engine knows that helps a provider find it.
type LookupParams struct {
	// IdempotencyKey is the key of the charge. Required.
	IdempotencyKey string
	// ProviderPaymentID is the provider's id of the charge when an answer gave it (a pending
	// charge), else empty. A hint only: an adapter that fetches the payment by this id must
	// check that it was made under IdempotencyKey (the metadata's MetadataIdempotencyKey);
	// when it was not, the id is ignored and the key looked up as if none were given. Never
	// answer with a payment made under another key.
	ProviderPaymentID string
	// CreatedAt is when the engine created the attempt, by its clock: a charge under the key
	// was made at or after it. An adapter whose provider forgets keys searches its payments
	// from this instant (less a margin for clock skew).
	CreatedAt time.Time
}

// RefundLookupParams asks a gateway what happened to the refund made (or maybe made) under a
// key.
type RefundLookupParams struct {
	// IdempotencyKey is the key of the refund. Required.
	IdempotencyKey string
	// ProviderPaymentID is the provider's id of the payment refunded. Required.
	ProviderPaymentID string
	// ProviderRefundID is the provider's id of the refund when an answer gave it, else empty.
	// A hint, under the same rule as LookupParams.ProviderPaymentID: check the key.
	ProviderRefundID string
	// CreatedAt is when the engine decided the refund, by its clock: a refund under the key was
	// made at or after it.
	CreatedAt time.Time
}

// CheckoutGateway is implemented by a gateway that can take a first payment with the
// customer present: the provider's payment page (3-D Secure, SBP, a wallet), where the
// customer agrees to save the payment method for renewals. YooKassa: a payment with
// confirmation type redirect and save_payment_method; T-Bank: Init with Recurrent=Y (the
// RebillId is the saved method); CloudPayments: a widget payment whose token is the saved
// method. The engine's StartCheckout uses it when the gateway has it.
//
// The payment then settles as any charge does: by Lookup (the reconciliation job) or by a
// webhook the engine confirms with Lookup. A succeeded result carries the saved method in
// ChargeResult.PaymentMethod.
type CheckoutGateway interface {
	// StartCheckout creates the payment under req.IdempotencyKey (the same rules as Charge:
	// the same key is the same payment; an error means the outcome is unknown) and returns
	// where to send the customer.
	StartCheckout(ctx context.Context, req CheckoutParams) (CheckoutResult, error)
}

// CheckoutParams is a first payment the customer confirms on the provider's page, saving
// the payment method for renewals.
type CheckoutParams struct {
	// IdempotencyKey identifies the payment at the gateway. At most MaxKeyLen printable ASCII
	// characters.
	IdempotencyKey string
	// CustomerID is the host's opaque customer id (TERMS 1.3, 5.1).
	CustomerID string
	// Amount is the amount in minor units of Currency, > 0.
	Amount int64
	// Currency is the ISO 4217 code.
	Currency string
	// Description is shown by the provider. Required; an adapter truncates it to its limit.
	Description string
	// Receipt is the 54-FZ receipt: kind Income, total equal to Amount.
	Receipt Receipt
	// Metadata is passed to the provider as is; it carries IdempotencyKey under
	// MetadataIdempotencyKey. No personal data, no card data.
	Metadata map[string]string
	// ReturnURL is where the provider sends the customer back after the payment page.
	// Required, an absolute http(s) URL.
	ReturnURL string
}

// Validate checks every field. It returns a *ValidationError (errors.Is ErrInvalid).
func (r CheckoutParams) Validate() error {
	if err := checkKey("IdempotencyKey", r.IdempotencyKey); err != nil {
		return err
	}
	if err := checkCharge(r.CustomerID, r.Amount, r.Currency, r.Description); err != nil {
		return err
	}
	if u, err := url.Parse(r.ReturnURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("ReturnURL", fmt.Sprintf("%q: not an absolute http(s) URL", r.ReturnURL))
	}
	return checkReceiptFor("Receipt", r.Receipt, ReceiptIncome, r.Amount, r.Currency)
}

// CheckoutResult is the gateway's answer to StartCheckout.
type CheckoutResult struct {
	// ChargeResult is the payment as created: usually OutcomePending with its
	// ProviderPaymentID and ConfirmationURL, the provider's page to send the customer to
	// (required when pending); a provider may answer a decline (or, rarely, success) at once.
	ChargeResult
}

// Outcome is what the gateway says happened to a charge or a refund. The string values are
// stable (they are stored) and equal the matching attempt State.
type Outcome string

// The outcomes. The zero Outcome is invalid.
const (
	// OutcomeSucceeded: the money moved. For a charge, access may be granted (TERMS 3.3).
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomePending: the gateway accepted the request and will confirm later, by a webhook the
	// host forwards (ApplyWebhook) or on a later Lookup. It grants no access (TERMS 3.3).
	OutcomePending Outcome = "pending"
	// OutcomeSoftDeclined: refused for now (insufficient funds, issuer unavailable). A renewal
	// is retried on the dunning schedule, each time as a new attempt under a new key. For a
	// refund: refused for now, may be tried again later.
	OutcomeSoftDeclined Outcome = "soft_declined"
	// OutcomeHardDeclined: refused for good (card revoked or expired, fraud, consent
	// withdrawn). Never retried. For a refund: the money must go back another way.
	OutcomeHardDeclined Outcome = "hard_declined"
	// OutcomeUnknown: no answer (timeout). Equal to an error from Charge or Refund. Settled only
	// by Lookup (or a webhook), never by charging again.
	OutcomeUnknown Outcome = "unknown"
)

// Valid reports whether o is one of the five outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomeSucceeded, OutcomePending, OutcomeSoftDeclined, OutcomeHardDeclined, OutcomeUnknown:
		return true
	}
	return false
}

// ChargeParams is one charge of a saved payment method. Build it with Attempt.ChargeParams,
// which fills the key, amount and currency from the attempt and checks consent; an adapter
// receives it already valid.
type ChargeParams struct {
	// IdempotencyKey identifies the attempt at the gateway; the same key is sent on every retry
	// of the attempt (NewAttemptKey: unguessable). At most MaxKeyLen printable ASCII
	// characters.
	IdempotencyKey string
	// PaymentMethod is the provider's opaque token for the saved card or wallet. Never card data
	// (TERMS 5.1): a value that looks like a card number is refused with ErrCardData.
	PaymentMethod string
	// CustomerID is the host's opaque customer id (TERMS 1.3, 5.1), for the provider's records.
	CustomerID string
	// Amount is the amount to charge in minor units of Currency (kopecks), > 0.
	Amount int64
	// Currency is the ISO 4217 code ("RUB"), one the money package knows.
	Currency string
	// Description is the payment's description shown by the provider ("Pro, 1 month"). Required;
	// an adapter truncates it to its provider's limit.
	Description string
	// Receipt is the 54-FZ fiscal receipt of the charge: kind Income, total equal to Amount.
	Receipt Receipt
	// Metadata is passed to the provider as is (attempt id, subscription id). No personal data
	// and no card data. May be nil.
	Metadata map[string]string
}

// Validate checks every field and that the receipt is an Income receipt for exactly Amount in
// Currency. It returns a *ValidationError (errors.Is ErrInvalid).
func (r ChargeParams) Validate() error {
	if err := checkKey("IdempotencyKey", r.IdempotencyKey); err != nil {
		return err
	}
	if err := checkToken("PaymentMethod", r.PaymentMethod); err != nil {
		return err
	}
	if err := checkCharge(r.CustomerID, r.Amount, r.Currency, r.Description); err != nil {
		return err
	}
	return checkReceiptFor("Receipt", r.Receipt, ReceiptIncome, r.Amount, r.Currency)
}

// checkCharge checks what a charge and a checkout share: whose it is, how much, and its
// description.
func checkCharge(customerID string, amount int64, currency, description string) error {
	if strings.TrimSpace(customerID) == "" {
		return invalid("CustomerID", "empty: a charge always belongs to a customer (TERMS 1.3)")
	}
	if err := checkMoney("", amount, currency); err != nil {
		return err
	}
	if strings.TrimSpace(description) == "" {
		return invalid("Description", "empty")
	}
	return nil
}

// ChargeResult is the gateway's answer to Charge or Lookup.
type ChargeResult struct {
	// Outcome is what happened. Required.
	Outcome Outcome
	// ProviderPaymentID is the provider's id of the payment; required when the outcome is
	// succeeded or pending (it is what a refund and a webhook refer to).
	ProviderPaymentID string
	// Amount is the amount the gateway charged (or declined) in minor units. Required and equal
	// to the attempt's when the outcome is succeeded or pending; otherwise 0 or equal.
	Amount int64
	// Currency is the ISO 4217 code of Amount, under the same rule as Amount.
	Currency string
	// DeclineCode is the provider's reason code for a decline ("insufficient_funds").
	DeclineCode string
	// DeclineMessage is the provider's human-readable reason for a decline.
	DeclineMessage string
	// ConfirmationURL is the provider's page of a checkout payment (CheckoutGateway) that
	// waits for the customer: set by StartCheckout when pending, and by Lookup of a pending
	// checkout when the provider reports it. Trap: a Lookup that leaves it empty strands a
	// checkout whose StartCheckout answer was lost (the payment exists, its page is unknown,
	// and StartCheckout cannot be resent once the provider has forgotten the key).
	ConfirmationURL string
	// PaymentMethod is the payment method the provider saved with a succeeded checkout
	// (CheckoutGateway), the token for renewals. The engine reads it for such checkouts only;
	// an adapter may report the method of any charge here.
	PaymentMethod string
}

// RefundParams is one refund of (part of) a succeeded provider payment. The refund package
// decides it (TERMS 3.7, 3.8, consumer law art. 32); the engine sends it.
type RefundParams struct {
	// IdempotencyKey identifies the refund at the gateway; reused on every retry of the same
	// refund. At most MaxKeyLen printable ASCII characters.
	IdempotencyKey string
	// ProviderPaymentID is the provider's id of the succeeded charge being refunded.
	ProviderPaymentID string
	// Amount is the amount to return in minor units, > 0 and at most what was charged (the
	// refund package checks the latter; the gateway refuses it too).
	Amount int64
	// Currency is the charge's currency.
	Currency string
	// Description is the reason shown by the provider ("refund, TERMS 3.7").
	Description string
	// Receipt is the 54-FZ "return of income" receipt: kind IncomeReturn, total equal to Amount.
	Receipt Receipt
	// Metadata is passed to the provider as is. No personal data, no card data. May be nil.
	Metadata map[string]string
}

// Validate checks every field and that the receipt is an IncomeReturn receipt for exactly
// Amount in Currency. It returns a *ValidationError.
func (r RefundParams) Validate() error {
	if err := checkKey("IdempotencyKey", r.IdempotencyKey); err != nil {
		return err
	}
	if strings.TrimSpace(r.ProviderPaymentID) == "" {
		return invalid("ProviderPaymentID", "empty: a refund returns a succeeded provider payment")
	}
	if err := checkMoney("", r.Amount, r.Currency); err != nil {
		return err
	}
	if strings.TrimSpace(r.Description) == "" {
		return invalid("Description", "empty")
	}
	return checkReceiptFor("Receipt", r.Receipt, ReceiptIncomeReturn, r.Amount, r.Currency)
}

// RefundResult is the gateway's answer to Refund or LookupRefund.
type RefundResult struct {
	// Outcome is what happened; see Outcome for what each means for a refund.
	Outcome Outcome
	// ProviderRefundID is the provider's id of the refund; set when succeeded or pending.
	ProviderRefundID string
	// ProviderPaymentID is the refunded payment.
	ProviderPaymentID string
	// Amount is the amount returned in minor units.
	Amount int64
	// Currency is the ISO 4217 code of Amount.
	Currency string
	// DeclineCode is the provider's reason code for a refused refund.
	DeclineCode string
	// DeclineMessage is the provider's human-readable reason for a refused refund.
	DeclineMessage string
}

// MaxKeyLen is the longest idempotency key the library produces or accepts: 64 characters,
// the tightest limit among Russian providers (YooKassa's Idempotence-Key).
const MaxKeyLen = 64

// checkKey checks an idempotency key: non-empty, at most MaxKeyLen printable ASCII characters
// without spaces.
func checkKey(field, key string) error {
	if key == "" {
		return invalid(field, "empty")
	}
	if len(key) > MaxKeyLen {
		return invalid(field, fmt.Sprintf("%d characters, more than %d", len(key), MaxKeyLen))
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return invalid(field, "not printable ASCII without spaces")
		}
	}
	return nil
}

// checkToken checks a payment-method token: non-empty and not a card number (TERMS 5.1).
func checkToken(field, token string) error {
	if strings.TrimSpace(token) == "" {
		return invalid(field, "empty: an opaque payment-method token is required")
	}
	if looksLikeCardNumber(token) {
		return &ValidationError{Field: field, Problem: "looks like a card number; pass the provider's token (TERMS 5.1)", Err: ErrCardData}
	}
	return nil
}

// checkMoney checks a positive amount of minor units in a known currency. prefix is prepended
// to the field names.
func checkMoney(prefix string, amount int64, currency string) error {
	if amount <= 0 {
		return invalid(prefix+"Amount", fmt.Sprintf("%d, must be > 0 minor units", amount))
	}
	if !money.Known(currency) {
		return invalid(prefix+"Currency", fmt.Sprintf("%q is not a known ISO 4217 code", currency))
	}
	return nil
}

// looksLikeCardNumber reports whether s is 13 to 19 digits (spaces and dashes allowed between
// them) that pass the Luhn check: a primary account number, not a token.
func looksLikeCardNumber(s string) bool {
	var digits []int
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, int(r-'0'))
		case r == ' ' || r == '-':
		default:
			return false
		}
	}
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	sum := 0
	for i := range digits {
		d := digits[len(digits)-1-i]
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
