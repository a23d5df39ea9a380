package ledger_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

// mustTx unwraps a builder's result: mustTx(t)(ledger.Charge(…)).
func mustTx(t testing.TB) func(ledger.Transaction, error) ledger.Transaction {
	return func(tx ledger.Transaction, err error) ledger.Transaction {
		t.Helper()
		require.NoError(t, err)
		return tx
	}
}

func TestBookApply(t *testing.T) {
	t.Parallel()

	charge := mustTx(t)(ledger.Charge("charge:p1", "p1", "RUB", 99000, t0, ledger.WithMemo("first")))
	reversal := mustTx(t)(ledger.Reverse(charge, "reverse:p1", t0.Add(time.Hour)))
	tests := []struct {
		name      string
		before    []ledger.Transaction // posted first, each must succeed
		tx        func() ledger.Transaction
		duplicate bool
		want      []error
		provider  int64 // provider:RUB's normal balance afterwards
	}{
		{
			name:     "a new transaction is posted",
			tx:       func() ledger.Transaction { return charge },
			provider: 99000,
		},
		{
			name:   "the same key and content returns the first transaction, nothing more is posted",
			before: []ledger.Transaction{charge},
			tx: func() ledger.Transaction {
				retry := charge
				retry.At, retry.Memo = t0.Add(time.Minute), "retry"
				return retry
			},
			duplicate: true,
			provider:  99000,
		},
		{
			name:   "the same content with legs in another order is the same transaction",
			before: []ledger.Transaction{charge},
			tx: func() ledger.Transaction {
				retry := charge
				retry.Postings = []ledger.Posting{charge.Postings[1], charge.Postings[0]}
				return retry
			},
			duplicate: true,
			provider:  99000,
		},
		{
			name:   "the same key with another amount is refused",
			before: []ledger.Transaction{charge},
			tx: func() ledger.Transaction {
				return mustTx(t)(ledger.Charge("charge:p1", "p1", "RUB", 99100, t0))
			},
			want:     []error{ledger.ErrKeyReused},
			provider: 99000,
		},
		{
			name:   "an invalid transaction writes nothing",
			before: []ledger.Transaction{charge},
			tx: func() ledger.Transaction {
				tx := mustTx(t)(ledger.Charge("charge:p2", "p2", "RUB", 500, t0))
				tx.Postings[1].Amount = 499
				return tx
			},
			want:     []error{ledger.ErrUnbalanced},
			provider: 99000,
		},
		{
			name:     "a reversal undoes the original",
			before:   []ledger.Transaction{charge},
			tx:       func() ledger.Transaction { return reversal },
			provider: 0,
		},
		{
			name:      "a replayed reversal is a duplicate, not a second reversal",
			before:    []ledger.Transaction{charge, reversal},
			tx:        func() ledger.Transaction { return reversal },
			duplicate: true,
			provider:  0,
		},
		{
			name:   "a transaction is reversed at most once",
			before: []ledger.Transaction{charge, reversal},
			tx: func() ledger.Transaction {
				return mustTx(t)(ledger.Reverse(charge, "reverse:p1:again", t0.Add(2*time.Hour)))
			},
			want:     []error{ledger.ErrAlreadyReversed},
			provider: 0,
		},
		{
			name:     "a reversal of a transaction never posted is refused",
			tx:       func() ledger.Transaction { return reversal },
			want:     []error{ledger.ErrInvalidReversal},
			provider: 0,
		},
		{
			name:   "a reversal that does not mirror its original is refused",
			before: []ledger.Transaction{charge},
			tx: func() ledger.Transaction {
				partial := mustTx(t)(ledger.Reverse(charge, "reverse:p1", t0))
				partial.Postings[0].Amount, partial.Postings[1].Amount = 1000, 1000
				return partial
			},
			want:     []error{ledger.ErrInvalidReversal},
			provider: 99000,
		},
		{
			name: "turnover beyond int64 is refused instead of wrapping around",
			before: []ledger.Transaction{
				mustTx(t)(ledger.Charge("charge:big", "big", "RUB", math.MaxInt64-10, t0)),
			},
			tx: func() ledger.Transaction {
				return mustTx(t)(ledger.Recognize("recog:big", "big", "RUB", 11, t0))
			},
			want:     []error{money.ErrRange},
			provider: math.MaxInt64 - 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			book := ledger.NewBook(nil)
			for _, tx := range tt.before {
				_, dup, err := book.Apply(tx)
				require.NoError(t, err)
				require.False(t, dup)
			}
			trialBefore := book.TrialBalance()
			tx := tt.tx()

			posted, dup, err := book.Apply(tx)
			requireErrors(t, err, tt.want...)
			require.Equal(t, tt.duplicate, dup)
			switch {
			case err != nil:
				require.Equal(t, trialBefore, book.TrialBalance(), "a refused transaction writes nothing")
				require.Len(t, book.Transactions(), len(tt.before))
			case dup:
				first, ok := book.Transaction(tx.Key)
				require.True(t, ok)
				require.Equal(t, first, posted, "the first transaction comes back")
				require.Equal(t, trialBefore, book.TrialBalance(), "a duplicate writes nothing")
				require.Len(t, book.Transactions(), len(tt.before))
			default:
				require.Equal(t, tx, posted)
				require.Len(t, book.Transactions(), len(tt.before)+1)
			}
			require.Equal(t, tt.provider, book.Balance("provider:RUB").Normal())
			for currency, net := range book.TrialBalance().NetByCurrency() {
				require.Zero(t, net, currency)
			}
		})
	}
}

func TestBookKeepsItsOwnCopy(t *testing.T) {
	t.Parallel()
	book := ledger.NewBook(nil)
	tx := mustTx(t)(ledger.Charge("charge:p1", "p1", "RUB", 100, t0))
	posted, _, err := book.Apply(tx)
	require.NoError(t, err)

	tx.Postings[0].Amount = 1
	posted.Postings[0].Amount = 2
	listed := book.Transactions()
	listed[0].Postings[0].Amount = 3

	stored, ok := book.Transaction("charge:p1")
	require.True(t, ok)
	require.Equal(t, int64(100), stored.Postings[0].Amount)
}

func TestBookBalances(t *testing.T) {
	t.Parallel()
	book := ledger.NewBook(nil)
	for _, tx := range []ledger.Transaction{
		mustTx(t)(ledger.Charge("charge:p1", "p1", "RUB", 99000, t0, ledger.WithProviderFee(3465))),
		mustTx(t)(ledger.Recognize("recog:s1:1", "s1", "RUB", 3194, t0)),
		mustTx(t)(ledger.Refund("refund:r1", "r1", "RUB", 99000, 3194, t0)),
		mustTx(t)(ledger.Charge("charge:p2", "p2", "JPY", 1200, t0)),
	} {
		_, _, err := book.Apply(tx)
		require.NoError(t, err)
	}

	tests := []struct {
		code                   string
		debits, credits, value int64
	}{
		{"provider:RUB", 99000, 3465 + 99000, -3465},
		{"deferred:RUB", 3194 + 95806, 99000, 0},
		{"revenue:RUB", 0, 3194, 3194},
		{"refunded_revenue:RUB", 3194, 0, 3194},
		{"provider_fees:RUB", 3465, 0, 3465},
		{"provider:JPY", 1200, 0, 1200},
		{"deferred:JPY", 0, 1200, 1200},
		{"refunds_payable:RUB", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			b := book.Balance(tt.code)
			require.Equal(t, tt.code, b.Account.Code)
			require.Equal(t, tt.debits, b.Debits)
			require.Equal(t, tt.credits, b.Credits)
			require.Equal(t, tt.value, b.Normal())
		})
	}
	require.Equal(t, ledger.Balance{}, book.Balance("nope:RUB"))

	trial := book.TrialBalance()
	require.Len(t, trial, 7, "only accounts posted to")
	require.Equal(t, map[string]int64{"RUB": 0, "JPY": 0}, trial.NetByCurrency())
	for i := 1; i < len(trial); i++ {
		require.Less(t, trial[i-1].Account.Code, trial[i].Account.Code)
	}
}
