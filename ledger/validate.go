package ledger

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/smm-gpt/billing/money"
)

// Limits on the text fields of a transaction, in characters (runes), as PostgreSQL's
// char_length counts them.
const (
	// MaxKeyLength bounds Transaction.Key, Transaction.Reverses and Reference.ID.
	MaxKeyLength = 200
	// MaxMemoLength bounds Transaction.Memo.
	MaxMemoLength = 1000
)

// The problems Validate reports. Each is wrapped with detail (which posting, which currency)
// inside a *ValidationError; test for them with errors.Is.
var (
	// ErrInvalidKey: the key (or Reverses) is empty, longer than MaxKeyLength characters,
	// not valid UTF-8 or contains a NUL byte (which a PostgreSQL text column refuses).
	ErrInvalidKey = errors.New("ledger: invalid idempotency key")
	// ErrInvalidReference: the reference's kind is unknown or its ID is not a valid key.
	ErrInvalidReference = errors.New("ledger: invalid reference")
	// ErrInvalidMemo: the memo is longer than MaxMemoLength, not valid UTF-8, or has a NUL.
	ErrInvalidMemo = errors.New("ledger: invalid memo")
	// ErrMissingTime: the transaction's At is the zero time.
	ErrMissingTime = errors.New("ledger: transaction time is zero")
	// ErrTooFewPostings: fewer than two postings.
	ErrTooFewPostings = errors.New("ledger: a transaction needs at least two postings")
	// ErrNonPositive: a posting's amount is zero or negative; the side carries the sign.
	ErrNonPositive = errors.New("ledger: amount must be positive")
	// ErrInvalidSide: a posting's side is neither Debit nor Credit.
	ErrInvalidSide = errors.New("ledger: side must be debit or credit")
	// ErrUnknownAccount: a posting names an account the chart does not have.
	ErrUnknownAccount = errors.New("ledger: unknown account")
	// ErrCurrencyMismatch: a posting's currency differs from its account's currency.
	ErrCurrencyMismatch = errors.New("ledger: posting currency differs from the account's")
	// ErrUnbalanced: in some currency the debits do not equal the credits.
	ErrUnbalanced = errors.New("ledger: debits and credits differ")
)

// ValidationError lists every problem Validate found in one transaction. errors.Is finds each
// problem's sentinel through it (ErrUnbalanced, ErrNonPositive, money.ErrUnknownCurrency…);
// errors.As gives the whole list.
type ValidationError struct {
	// Key is the key of the transaction that failed.
	Key string
	// Problems are the problems in a fixed order: header fields, then postings in order,
	// then balances by currency code.
	Problems []error
}

// Error joins the problems into one line.
func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return fmt.Sprintf("ledger: transaction %q is invalid: %s", e.Key, strings.Join(msgs, "; "))
}

// Unwrap returns the problems, so that errors.Is and errors.As look into each.
func (e *ValidationError) Unwrap() []error { return e.Problems }

// Validate checks tx against the package invariants and the chart behind accounts, and
// returns nil or a *ValidationError listing every problem found:
//
//   - Key non-empty, at most MaxKeyLength characters (ErrInvalidKey); Reverses empty or a
//     valid key other than Key; Ref of a known kind with a valid ID (ErrInvalidReference);
//     Memo within MaxMemoLength (ErrInvalidMemo); At not zero (ErrMissingTime);
//   - at least two postings (ErrTooFewPostings), each with a positive amount (ErrNonPositive),
//     a valid side (ErrInvalidSide), a known currency (money.ErrUnknownCurrency), an account
//     accounts knows (ErrUnknownAccount) whose currency is the posting's
//     (ErrCurrencyMismatch);
//   - per currency, debits equal to credits (ErrUnbalanced) and both totals within int64
//     (money.ErrRange). The balance is only checked when every amount and side is valid, as
//     a sum over broken legs means nothing.
//
// Validate cannot see other transactions: key uniqueness and reversal rules are the store's
// (Book.Apply shows them). A nil accounts means StandardChart.
func Validate(tx Transaction, accounts Lookup) error {
	if accounts == nil {
		accounts = StandardChart
	}
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if !validKey(tx.Key) {
		add("key %q: %w", tx.Key, ErrInvalidKey)
	}
	if tx.Reverses != "" && (!validKey(tx.Reverses) || tx.Reverses == tx.Key) {
		add("reverses %q: %w", tx.Reverses, ErrInvalidKey)
	}
	if !tx.Ref.Kind.Valid() || !validKey(tx.Ref.ID) {
		add("reference %s %q: %w", tx.Ref.Kind, tx.Ref.ID, ErrInvalidReference)
	}
	if !validText(tx.Memo, MaxMemoLength) {
		add("memo: %w", ErrInvalidMemo)
	}
	if tx.At.IsZero() {
		add("%w", ErrMissingTime)
	}
	if len(tx.Postings) < 2 {
		add("%d postings: %w", len(tx.Postings), ErrTooFewPostings)
	}

	legsValid := true
	for i, p := range tx.Postings {
		if p.Amount <= 0 {
			add("posting %d (%s): amount %d: %w", i, p.Account, p.Amount, ErrNonPositive)
			legsValid = false
		}
		if !p.Side.Valid() {
			add("posting %d (%s): side %q: %w", i, p.Account, p.Side, ErrInvalidSide)
			legsValid = false
		}
		if !money.Known(p.Currency) {
			add("posting %d (%s): %w: %q", i, p.Account, money.ErrUnknownCurrency, p.Currency)
		}
		a, ok := accounts(p.Account)
		switch {
		case !ok:
			add("posting %d: account %q: %w", i, p.Account, ErrUnknownAccount)
		case a.Currency != p.Currency:
			add("posting %d (%s): currency %q, account in %q: %w", i, p.Account, p.Currency, a.Currency, ErrCurrencyMismatch)
		}
	}
	if legsValid {
		problems = append(problems, balanceProblems(tx.Postings)...)
	}

	if len(problems) > 0 {
		return &ValidationError{Key: tx.Key, Problems: problems}
	}
	return nil
}

// balanceProblems returns, per currency in code order, ErrUnbalanced where debits differ
// from credits and money.ErrRange where a side's total does not fit in int64. The postings'
// amounts and sides must already be valid.
func balanceProblems(postings []Posting) []error {
	totals := sideTotals(postings)
	currencies := make([]string, 0, len(totals))
	for c := range totals {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	var problems []error
	for _, c := range currencies {
		t := totals[c]
		switch {
		case t.overflow:
			problems = append(problems, fmt.Errorf("%s: %w: side total exceeds int64", c, money.ErrRange))
		case t.debits != t.credits:
			problems = append(problems, fmt.Errorf("%s: debits %d, credits %d: %w", c, t.debits, t.credits, ErrUnbalanced))
		}
	}
	return problems
}

// totals are the debit and credit totals of one currency.
type totals struct {
	debits, credits int64
	overflow        bool
}

// sideTotals sums positive posting amounts per currency and side, noting any overflow.
func sideTotals(postings []Posting) map[string]totals {
	out := make(map[string]totals)
	for _, p := range postings {
		t := out[p.Currency]
		sum := &t.debits
		if p.Side == Credit {
			sum = &t.credits
		}
		if *sum > math.MaxInt64-p.Amount {
			t.overflow = true
		} else {
			*sum += p.Amount
		}
		out[p.Currency] = t
	}
	return out
}

// validKey reports whether s is non-empty and valid text of at most MaxKeyLength characters.
func validKey(s string) bool { return s != "" && validText(s, MaxKeyLength) }

// validText reports whether s is valid UTF-8 without NUL bytes and at most max characters:
// what a PostgreSQL text column with a char_length check accepts.
func validText(s string, max int) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0) && utf8.RuneCountInString(s) <= max
}
