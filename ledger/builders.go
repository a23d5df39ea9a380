package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/smm-gpt/billing/money"
)

// ErrRefundSplit is returned by the refund builders when the recognized part of a refund is
// negative or larger than the refund itself.
var ErrRefundSplit = errors.New("ledger: recognized part of a refund must be within [0, amount]")

// Option adds to a transaction a builder makes. Options apply in the order given, after the
// builder's own postings and before validation.
type Option func(tx *Transaction, currency string)

// WithProviderFee adds the provider's fee to the transaction: Dr provider_fees, Cr provider,
// fee minor units of the transaction's currency. Use it with Charge when the provider keeps
// its fee out of the payment, or with Refund or PayRefund when it charges for a refund. A fee
// of 0 adds nothing, so a caller can always pass what the provider reported; a negative fee
// fails validation with ErrNonPositive.
func WithProviderFee(fee int64) Option {
	return func(tx *Transaction, currency string) {
		if fee == 0 {
			return
		}
		tx.Postings = append(tx.Postings,
			leg(ProviderFees, Debit, fee, currency),
			leg(ProviderCash, Credit, fee, currency))
	}
}

// WithMemo sets the transaction's memo (text for people; at most MaxMemoLength characters).
func WithMemo(memo string) Option {
	return func(tx *Transaction, _ string) { tx.Memo = memo }
}

// Charge books a successful payment of amount minor units: Dr provider, Cr deferred. The
// money is owed as service until Recognize earns it. paymentID becomes the reference
// (RefPayment). It returns a *ValidationError for an invalid key, ID or time, a non-positive
// amount, or money.ErrUnknownCurrency for a currency the library does not know.
func Charge(key, paymentID, currency string, amount int64, at time.Time, opts ...Option) (Transaction, error) {
	return build(key, Reference{Kind: RefPayment, ID: paymentID}, currency, at, opts,
		leg(ProviderCash, Debit, amount, currency),
		leg(DeferredRevenue, Credit, amount, currency))
}

// UnappliedCharge books a successful payment that no subscription period can take (the
// checkout was abandoned, the subscription ended, the period was paid by another charge):
// Dr provider, Cr refunds_payable, amount minor units. The money is owed back to the customer
// until PayRefund books its refund through the provider. paymentID is the reference
// (RefPayment). The errors are Charge's.
func UnappliedCharge(key, paymentID, currency string, amount int64, at time.Time, opts ...Option) (Transaction, error) {
	return build(key, Reference{Kind: RefPayment, ID: paymentID}, currency, at, opts,
		leg(ProviderCash, Debit, amount, currency),
		leg(RefundsPayable, Credit, amount, currency))
}

// Recognize books amount minor units of a paid period as earned: Dr deferred, Cr revenue.
// periodID is the period whose money is earned (RefRecognition). Compute the amount with
// Plan.ToRecognize and skip the posting when it is 0: a zero amount is ErrNonPositive.
func Recognize(key, periodID, currency string, amount int64, at time.Time, opts ...Option) (Transaction, error) {
	return build(key, Reference{Kind: RefRecognition, ID: periodID}, currency, at, opts,
		leg(DeferredRevenue, Debit, amount, currency),
		leg(Revenue, Credit, amount, currency))
}

// Refund books a refund of amount minor units that is approved and paid out at once:
// Dr deferred (amount − recognizedPart), Dr refunded_revenue (recognizedPart), Cr provider
// (amount). recognizedPart is the part of the refund that gives back revenue already earned;
// use RecognizedPartOfRefund to take from what is still deferred first. A part that is 0
// (or equal to amount) leaves its leg out, since postings are never zero. refundID is the
// reference (RefRefund).
//
// After a refund the period earns nothing more than what is left of it: build its Plan again
// with total = charged − what refunds took from deferred, and, when the refund ends the
// period, recognize the rest with ToRecognize's endedEarlyAt.
func Refund(key, refundID, currency string, amount, recognizedPart int64, at time.Time, opts ...Option) (Transaction, error) {
	return refund(key, refundID, currency, amount, recognizedPart, ProviderCash, at, opts)
}

// ApproveRefund books a refund that is decided but not yet paid: the same debits as Refund,
// and Cr refunds_payable instead of provider, so the debt to the customer shows until
// PayRefund books the payout (TERMS 3.8: within 10 calendar days of the request).
func ApproveRefund(key, refundID, currency string, amount, recognizedPart int64, at time.Time, opts ...Option) (Transaction, error) {
	return refund(key, refundID, currency, amount, recognizedPart, RefundsPayable, at, opts)
}

// PayRefund books the payout of a refund approved by ApproveRefund: Dr refunds_payable,
// Cr provider, amount minor units. Pay exactly what was approved, under a key of its own.
func PayRefund(key, refundID, currency string, amount int64, at time.Time, opts ...Option) (Transaction, error) {
	return build(key, Reference{Kind: RefRefund, ID: refundID}, currency, at, opts,
		leg(RefundsPayable, Debit, amount, currency),
		leg(ProviderCash, Credit, amount, currency))
}

// RecognizedPartOfRefund splits a refund the usual way: it takes from what is still deferred
// for the period first, and only the rest (if any) from revenue already recognized. It
// returns max(0, amount − deferredLeft), the recognizedPart to pass to Refund.
func RecognizedPartOfRefund(amount, deferredLeft int64) int64 {
	return max(0, amount-max(0, deferredLeft))
}

// Reverse returns the transaction that undoes tx: the same postings on opposite sides, the
// same Ref, Reverses set to tx's key, under newKey at the instant at. It is how a mistake is
// corrected in an append-only ledger; a store accepts at most one reversal per transaction.
// It returns ErrInvalidKey (in a *ValidationError) when newKey is not a valid key or equals
// tx's key.
func Reverse(tx Transaction, newKey string, at time.Time) (Transaction, error) {
	if !validKey(newKey) || newKey == tx.Key {
		return Transaction{}, &ValidationError{Key: newKey, Problems: []error{
			fmt.Errorf("reversal key %q of %q: %w", newKey, tx.Key, ErrInvalidKey)}}
	}
	return Transaction{
		Key:      newKey,
		Ref:      tx.Ref,
		Reverses: tx.Key,
		Postings: mirrored(tx.Postings),
		Memo:     "reversal of " + tx.Key,
		At:       at,
	}, nil
}

// refund builds Refund and ApproveRefund, which differ only in the account credited.
func refund(key, refundID, currency string, amount, recognizedPart int64, credit Role, at time.Time, opts []Option) (Transaction, error) {
	switch {
	case amount <= 0:
		recognizedPart = 0 // one debit leg of amount, which validation refuses as ErrNonPositive
	case recognizedPart < 0 || recognizedPart > amount:
		return Transaction{}, fmt.Errorf("%w: %d of %d", ErrRefundSplit, recognizedPart, amount)
	}
	var legs []Posting
	if unrecognized := amount - recognizedPart; unrecognized > 0 || recognizedPart == 0 {
		legs = append(legs, leg(DeferredRevenue, Debit, unrecognized, currency))
	}
	if recognizedPart > 0 {
		legs = append(legs, leg(RefundedRevenue, Debit, recognizedPart, currency))
	}
	legs = append(legs, leg(credit, Credit, amount, currency))
	return build(key, Reference{Kind: RefRefund, ID: refundID}, currency, at, opts, legs...)
}

// build assembles a transaction on the standard chart, applies the options and validates it.
func build(key string, ref Reference, currency string, at time.Time, opts []Option, legs ...Posting) (Transaction, error) {
	if _, err := money.Lookup(currency); err != nil {
		return Transaction{}, err
	}
	tx := Transaction{Key: key, Ref: ref, Postings: legs, At: at}
	for _, opt := range opts {
		opt(&tx, currency)
	}
	if err := Validate(tx, StandardChart); err != nil {
		return Transaction{}, err
	}
	return tx, nil
}

// leg is one posting on role's account in currency.
func leg(role Role, side Side, amount int64, currency string) Posting {
	return Posting{Account: role.Code(currency), Side: side, Amount: amount, Currency: currency}
}
