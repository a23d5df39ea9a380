package ledger_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

// validCharge is a correct transaction each row of TestValidate breaks in one way.
func validCharge() ledger.Transaction {
	return ledger.Transaction{
		Key: "charge:p1",
		Ref: ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
		Postings: []ledger.Posting{
			rub(ledger.ProviderCash, ledger.Debit, 99000),
			rub(ledger.DeferredRevenue, ledger.Credit, 99000),
		},
		At: t0,
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()

	usd := func(role ledger.Role, side ledger.Side, amount int64) ledger.Posting {
		return ledger.Posting{Account: role.Code("USD"), Side: side, Amount: amount, Currency: "USD"}
	}
	tests := []struct {
		name   string
		change func(tx *ledger.Transaction)
		want   []error
	}{
		{"a charge as built is valid", func(*ledger.Transaction) {}, nil},
		{"empty key", func(tx *ledger.Transaction) { tx.Key = "" }, []error{ledger.ErrInvalidKey}},
		{"key of 201 characters", func(tx *ledger.Transaction) { tx.Key = strings.Repeat("k", 201) }, []error{ledger.ErrInvalidKey}},
		{"key of 200 two-byte characters is within the limit", func(tx *ledger.Transaction) { tx.Key = strings.Repeat("ж", 200) }, nil},
		{"key with a NUL byte", func(tx *ledger.Transaction) { tx.Key = "charge\x00p1" }, []error{ledger.ErrInvalidKey}},
		{"key that is not UTF-8", func(tx *ledger.Transaction) { tx.Key = "charge\xffp1" }, []error{ledger.ErrInvalidKey}},
		{"reversal naming its own key", func(tx *ledger.Transaction) { tx.Reverses = tx.Key }, []error{ledger.ErrInvalidKey}},
		{"unknown reference kind", func(tx *ledger.Transaction) { tx.Ref.Kind = "gift" }, []error{ledger.ErrInvalidReference}},
		{"empty reference ID", func(tx *ledger.Transaction) { tx.Ref.ID = "" }, []error{ledger.ErrInvalidReference}},
		{"memo of 1001 characters", func(tx *ledger.Transaction) { tx.Memo = strings.Repeat("m", 1001) }, []error{ledger.ErrInvalidMemo}},
		{"zero time", func(tx *ledger.Transaction) { tx.At = time.Time{} }, []error{ledger.ErrMissingTime}},
		{"no postings", func(tx *ledger.Transaction) { tx.Postings = nil }, []error{ledger.ErrTooFewPostings}},
		{"one posting is too few and unbalanced", func(tx *ledger.Transaction) { tx.Postings = tx.Postings[:1] },
			[]error{ledger.ErrTooFewPostings, ledger.ErrUnbalanced}},
		{"zero amount on both legs", func(tx *ledger.Transaction) { tx.Postings[0].Amount, tx.Postings[1].Amount = 0, 0 },
			[]error{ledger.ErrNonPositive}},
		{"negative amount: the side carries the sign", func(tx *ledger.Transaction) {
			tx.Postings[1] = rub(ledger.DeferredRevenue, ledger.Debit, -99000)
		}, []error{ledger.ErrNonPositive}},
		{"side neither debit nor credit", func(tx *ledger.Transaction) { tx.Postings[0].Side = "" }, []error{ledger.ErrInvalidSide}},
		{"account not in the chart", func(tx *ledger.Transaction) { tx.Postings[0].Account = "cash:RUB" }, []error{ledger.ErrUnknownAccount}},
		{"posting in USD on a RUB account", func(tx *ledger.Transaction) { tx.Postings[0].Currency = "USD" },
			[]error{ledger.ErrCurrencyMismatch, ledger.ErrUnbalanced}},
		{"unknown currency", func(tx *ledger.Transaction) {
			tx.Postings[0] = ledger.Posting{Account: "provider:XXX", Side: ledger.Debit, Amount: 99000, Currency: "XXX"}
		}, []error{money.ErrUnknownCurrency, ledger.ErrUnknownAccount, ledger.ErrUnbalanced}},
		{"unbalanced by one kopeck", func(tx *ledger.Transaction) { tx.Postings[1].Amount = 98999 }, []error{ledger.ErrUnbalanced}},
		{"balanced in sum but not per currency", func(tx *ledger.Transaction) {
			tx.Postings[1] = usd(ledger.DeferredRevenue, ledger.Credit, 99000)
		}, []error{ledger.ErrUnbalanced}},
		{"two currencies each balanced", func(tx *ledger.Transaction) {
			tx.Postings = append(tx.Postings, usd(ledger.ProviderCash, ledger.Debit, 5), usd(ledger.DeferredRevenue, ledger.Credit, 5))
		}, nil},
		{"debits that overflow int64", func(tx *ledger.Transaction) {
			tx.Postings = []ledger.Posting{
				rub(ledger.ProviderCash, ledger.Debit, math.MaxInt64), rub(ledger.ProviderCash, ledger.Debit, 1),
				rub(ledger.DeferredRevenue, ledger.Credit, math.MaxInt64), rub(ledger.DeferredRevenue, ledger.Credit, 1),
			}
		}, []error{money.ErrRange}},
		{"every problem is listed at once", func(tx *ledger.Transaction) {
			tx.Key, tx.At = "", time.Time{}
			tx.Postings[0].Account = "nope"
			tx.Postings[1].Amount = -1
		}, []error{ledger.ErrInvalidKey, ledger.ErrMissingTime, ledger.ErrUnknownAccount, ledger.ErrNonPositive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tx := validCharge()
			tt.change(&tx)
			err := ledger.Validate(tx, ledger.StandardChart)
			requireErrors(t, err, tt.want...)
			if err != nil {
				var verr *ledger.ValidationError
				require.True(t, errors.As(err, &verr))
				require.Equal(t, tx.Key, verr.Key)
			}
		})
	}
}

func TestValidateCustomChart(t *testing.T) {
	t.Parallel()
	chart := map[string]ledger.Account{
		"bank": {Code: "bank", Type: ledger.Asset, Currency: "EUR"},
		"fees": {Code: "fees", Type: ledger.Expense, Currency: "EUR"},
	}
	lookup := func(code string) (ledger.Account, bool) { a, ok := chart[code]; return a, ok }
	tx := ledger.Transaction{
		Key: "fee:1", Ref: ledger.Reference{Kind: ledger.RefAdjustment, ID: "a1"}, At: t0,
		Postings: []ledger.Posting{
			{Account: "fees", Side: ledger.Debit, Amount: 10, Currency: "EUR"},
			{Account: "bank", Side: ledger.Credit, Amount: 10, Currency: "EUR"},
		},
	}
	require.NoError(t, ledger.Validate(tx, lookup))
	requireErrors(t, ledger.Validate(tx, nil), ledger.ErrUnknownAccount) // nil is the standard chart
}
