package ledger

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/smm-gpt/billing/money"
)

// The errors Book.Apply returns besides a *ValidationError. A PostgreSQL store returns the
// same ones for the same cases.
var (
	// ErrKeyReused: a transaction with this key was posted before with other content (see
	// Fingerprint). Nothing is written.
	ErrKeyReused = errors.New("ledger: idempotency key reused with different content")
	// ErrAlreadyReversed: the transaction named in Reverses has been reversed already.
	ErrAlreadyReversed = errors.New("ledger: transaction already reversed")
	// ErrInvalidReversal: Reverses names a transaction that was never posted, or the
	// reversal is not its exact mirror (see Mirrors).
	ErrInvalidReversal = errors.New("ledger: reversal does not mirror a posted transaction")
)

// Book is an in-memory, append-only ledger: the reference model of the package's rules, used in
// tests and as the oracle the PostgreSQL store is compared with. It is deliberately plain (maps
// and a slice, no indexes or caches beyond running totals) so that it is obviously right. It is
// not safe for concurrent use.
type Book struct {
	accounts Lookup
	byKey    map[string]int // key → index in posted
	posted   []postedTx
	balances map[string]Balance
	turnover map[string]int64 // currency → sum of all debits ever posted
	reversed map[string]string
}

// postedTx is a posted transaction with its fingerprint.
type postedTx struct {
	tx          Transaction
	fingerprint string
}

// NewBook returns an empty book over the chart behind accounts; nil means StandardChart.
func NewBook(accounts Lookup) *Book {
	if accounts == nil {
		accounts = StandardChart
	}
	return &Book{
		accounts: accounts,
		byKey:    make(map[string]int),
		balances: make(map[string]Balance),
		turnover: make(map[string]int64),
		reversed: make(map[string]string),
	}
}

// Apply posts tx, or finds it posted already. It returns the posted transaction and
// duplicate = true when tx's key was posted before with the same Fingerprint: the first
// transaction comes back (with its own At and Memo) and nothing changes. Otherwise it
// returns, writing nothing:
//
//   - a *ValidationError when Validate refuses tx;
//   - ErrKeyReused when the key was posted with other content;
//   - ErrInvalidReversal or ErrAlreadyReversed for a bad Reverses;
//   - money.ErrRange when a currency's total turnover would pass int64, which keeps every
//     balance and trial-balance sum exact.
func (b *Book) Apply(tx Transaction) (posted Transaction, duplicate bool, err error) {
	if err := Validate(tx, b.accounts); err != nil {
		return Transaction{}, false, err
	}
	fingerprint := Fingerprint(tx)
	if i, ok := b.byKey[tx.Key]; ok {
		if b.posted[i].fingerprint != fingerprint {
			return Transaction{}, false, fmt.Errorf("%w: key %q", ErrKeyReused, tx.Key)
		}
		return clone(b.posted[i].tx), true, nil
	}
	if tx.Reverses != "" {
		i, ok := b.byKey[tx.Reverses]
		switch {
		case !ok || !Mirrors(tx, b.posted[i].tx):
			return Transaction{}, false, fmt.Errorf("%w: %q reversing %q", ErrInvalidReversal, tx.Key, tx.Reverses)
		case b.reversed[tx.Reverses] != "":
			return Transaction{}, false, fmt.Errorf("%w: %q by %q", ErrAlreadyReversed, tx.Reverses, b.reversed[tx.Reverses])
		}
	}
	txTotals := sideTotals(tx.Postings)
	for currency, t := range txTotals {
		if b.turnover[currency] > math.MaxInt64-t.debits {
			return Transaction{}, false, fmt.Errorf("%w: %s turnover of the book", money.ErrRange, currency)
		}
	}

	for currency, t := range txTotals {
		b.turnover[currency] += t.debits
	}
	for _, p := range tx.Postings {
		bal := b.balances[p.Account]
		bal.Account, _ = b.accounts(p.Account)
		if p.Side == Debit {
			bal.Debits += p.Amount
		} else {
			bal.Credits += p.Amount
		}
		b.balances[p.Account] = bal
	}
	if tx.Reverses != "" {
		b.reversed[tx.Reverses] = tx.Key
	}
	stored := clone(tx)
	b.byKey[tx.Key] = len(b.posted)
	b.posted = append(b.posted, postedTx{tx: stored, fingerprint: fingerprint})
	return clone(stored), false, nil
}

// Transaction returns the posted transaction with key, if any.
func (b *Book) Transaction(key string) (Transaction, bool) {
	i, ok := b.byKey[key]
	if !ok {
		return Transaction{}, false
	}
	return clone(b.posted[i].tx), true
}

// Transactions returns every posted transaction in the order posted.
func (b *Book) Transactions() []Transaction {
	out := make([]Transaction, len(b.posted))
	for i, p := range b.posted {
		out[i] = clone(p.tx)
	}
	return out
}

// Balance returns the turnover of the account with code. An account never posted to has
// zero turnover, and a code the chart does not know has a zero Account as well.
func (b *Book) Balance(code string) Balance {
	bal, ok := b.balances[code]
	if !ok {
		bal.Account, _ = b.accounts(code)
	}
	return bal
}

// TrialBalance returns the balance of every account posted to, ordered by code. Its
// NetByCurrency is zero in every currency: that is the double-entry check.
func (b *Book) TrialBalance() TrialBalance {
	tb := make(TrialBalance, 0, len(b.balances))
	for _, bal := range b.balances {
		tb = append(tb, bal)
	}
	slices.SortFunc(tb, func(x, y Balance) int { return strings.Compare(x.Account.Code, y.Account.Code) })
	return tb
}

// Balance is the turnover of one account: the sums of its debits and of its credits.
type Balance struct {
	// Account is the account.
	Account Account
	// Debits is the sum of the amounts posted on the debit side.
	Debits int64
	// Credits is the sum of the amounts posted on the credit side.
	Credits int64
}

// Net returns Debits − Credits: positive for a debit balance, negative for a credit one.
func (b Balance) Net() int64 { return b.Debits - b.Credits }

// Normal returns the balance on the account's normal side: Debits − Credits for a
// debit-normal account (provider, fees, refunded revenue), Credits − Debits for a
// credit-normal one (deferred, revenue, refunds payable). It is ≥ 0 for a healthy account;
// only provider cash can rightly go below 0 (a refund after the provider kept its fee).
func (b Balance) Normal() int64 {
	if b.Account.NormalSide() == Credit {
		return -b.Net()
	}
	return b.Net()
}

// TrialBalance is the balance of every account posted to, ordered by account code.
type TrialBalance []Balance

// NetByCurrency returns, per currency, the sum of the accounts' Net: zero in every currency
// for a book of balanced transactions.
func (tb TrialBalance) NetByCurrency() map[string]int64 {
	out := make(map[string]int64)
	for _, b := range tb {
		out[b.Account.Currency] += b.Net()
	}
	return out
}

// clone returns tx with its own copy of the postings, so that neither the caller nor the
// book can change what the other holds.
func clone(tx Transaction) Transaction {
	tx.Postings = slices.Clone(tx.Postings)
	return tx
}
