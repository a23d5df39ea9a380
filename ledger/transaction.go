package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
)

// Posting is one leg of a transaction: a positive Amount of minor units written on one Side
// of one account.
//
// The sign lives in Side, not in Amount: Amount is always > 0, so a store can keep the
// constraint "amount > 0" and a leg can never carry a sign that contradicts its side. Signed
// gives the debit-positive number used for sums.
type Posting struct {
	// Account is the code of the account posted to ("provider:RUB").
	Account string
	// Side is Debit or Credit.
	Side Side
	// Amount is the amount in minor units of Currency (kopecks for RUB), > 0.
	Amount int64
	// Currency is the ISO 4217 code of Amount; it must equal the account's currency.
	Currency string
}

// NewPosting builds a posting from a decimal amount in major units (990.00 RUB). It refuses
// an unknown currency (money.ErrUnknownCurrency), an amount with more decimals than the
// currency allows (money.ErrPrecision: 0.001 RUB is not rounded to 0.00), one too large for
// int64 minor units (money.ErrRange) and a zero or negative amount (ErrNonPositive).
func NewPosting(account string, side Side, amount decimal.Decimal, currency string) (Posting, error) {
	c, err := money.Lookup(currency)
	if err != nil {
		return Posting{}, err
	}
	minor, err := c.ToMinor(amount)
	if err != nil {
		return Posting{}, err
	}
	if minor <= 0 {
		return Posting{}, fmt.Errorf("%w: %s %s", ErrNonPositive, amount, currency)
	}
	if !side.Valid() {
		return Posting{}, fmt.Errorf("%w: %q", ErrInvalidSide, side)
	}
	return Posting{Account: account, Side: side, Amount: minor, Currency: currency}, nil
}

// Signed returns Amount for a debit and −Amount for a credit: the postings of a balanced
// transaction have signed amounts summing to zero in each currency.
func (p Posting) Signed() int64 {
	if p.Side == Credit {
		return -p.Amount
	}
	return p.Amount
}

// RefKind is the kind of business object that caused a transaction.
type RefKind string

// The kinds of reference. Their string values are what a store writes in a text column.
const (
	// RefPayment: a successful charge; the ID is the payment's ID.
	RefPayment RefKind = "payment"
	// RefRefund: a refund approved or paid; the ID is the refund's ID.
	RefRefund RefKind = "refund"
	// RefRecognition: revenue earned; the ID is the paid period's ID, so that the
	// recognitions of one period can be summed by reference.
	RefRecognition RefKind = "recognition"
	// RefAdjustment: a manual correction by an operator; the ID is the audit record's ID.
	RefAdjustment RefKind = "adjustment"
)

// Valid reports whether k is one of the four kinds.
func (k RefKind) Valid() bool {
	return k == RefPayment || k == RefRefund || k == RefRecognition || k == RefAdjustment
}

// Reference names the business object a transaction was posted for.
type Reference struct {
	// Kind is what the object is.
	Kind RefKind
	// ID is the object's ID (a UUID in the engine), non-empty, at most MaxKeyLength characters.
	ID string
}

// Transaction is a set of postings booked together, atomically, at one instant. It is a value:
// builders return it, a store writes it once and never changes it.
type Transaction struct {
	// Key is the idempotency key: unique across the ledger, non-empty, at most MaxKeyLength
	// characters. Derive it from the event ("charge:<payment id>"), never from the clock, so
	// that a retry of the same event finds the first posting.
	Key string
	// Ref is the business object the transaction was posted for.
	Ref Reference
	// Reverses is the Key of the transaction this one reverses; empty for any other
	// transaction. A transaction is reversed at most once, by its exact mirror (Reverse).
	Reverses string
	// Postings are the legs, at least two, balanced per currency. Their order carries no
	// meaning: Fingerprint ignores it.
	Postings []Posting
	// Memo is free text for people, at most MaxMemoLength characters; it may be empty.
	Memo string
	// At is when the movement happened (not when it was written); it must not be zero.
	At time.Time
}

// Fingerprint returns a stable hash (hex SHA-256) of what the transaction moves: Ref, Reverses
// and the postings, taken as a multiset (their order does not matter; two equal postings
// count twice). A store keeps it beside the key: a replayed key with the same fingerprint is the
// same transaction, another fingerprint is ErrKeyReused.
//
// Key, Memo and At are left out on purpose. The key is what is looked up; the memo is prose;
// and a retry of the same event computed a moment later carries a later At but is still the
// same movement of money, so it must return the first transaction rather than fail.
func Fingerprint(tx Transaction) string {
	h := sha256.New()
	var buf []byte
	field := func(s string) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(s)))
		buf = append(buf, s...)
		h.Write(buf)
	}
	field("ledger.Fingerprint v1")
	field(string(tx.Ref.Kind))
	field(tx.Ref.ID)
	field(tx.Reverses)
	for _, leg := range canonicalPostings(tx.Postings) {
		field(leg)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Mirrors reports whether reversal is the exact mirror of original: it names original's key in
// Reverses, has the same Ref, and moves the same postings on the opposite sides (in any
// order). A store checks it before accepting a transaction that sets Reverses.
func Mirrors(reversal, original Transaction) bool {
	if reversal.Reverses != original.Key || reversal.Ref != original.Ref {
		return false
	}
	return slices.Equal(canonicalPostings(reversal.Postings), canonicalPostings(mirrored(original.Postings)))
}

// mirrored returns a copy of postings with every side turned to the opposite one.
func mirrored(postings []Posting) []Posting {
	out := make([]Posting, len(postings))
	for i, p := range postings {
		p.Side = p.Side.Opposite()
		out[i] = p
	}
	return out
}

// canonicalPostings encodes each posting unambiguously and sorts the encodings, so that two
// posting lists that differ only in order encode the same.
func canonicalPostings(postings []Posting) []string {
	legs := make([]string, len(postings))
	for i, p := range postings {
		legs[i] = strconv.Quote(p.Account) + " " + strconv.Quote(string(p.Side)) + " " +
			strconv.FormatInt(p.Amount, 10) + " " + strconv.Quote(p.Currency)
	}
	slices.Sort(legs)
	return legs
}
