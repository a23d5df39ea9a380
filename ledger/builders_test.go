package ledger_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

func TestBuilders(t *testing.T) {
	t.Parallel()

	type build func() (ledger.Transaction, error)
	tests := []struct {
		name  string
		build build
		ref   ledger.Reference
		legs  []ledger.Posting
		memo  string
		want  []error
	}{
		{
			name:  "3.3 a successful payment is owed as service: Dr provider, Cr deferred",
			build: func() (ledger.Transaction, error) { return ledger.Charge("charge:p1", "p1", "RUB", 99000, t0) },
			ref:   ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
			legs:  []ledger.Posting{rub(ledger.ProviderCash, ledger.Debit, 99000), rub(ledger.DeferredRevenue, ledger.Credit, 99000)},
		},
		{
			name: "charge with the provider's fee kept out of it",
			build: func() (ledger.Transaction, error) {
				return ledger.Charge("charge:p1", "p1", "RUB", 99000, t0, ledger.WithProviderFee(3465), ledger.WithMemo("pro, January"))
			},
			ref: ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
			legs: []ledger.Posting{
				rub(ledger.ProviderCash, ledger.Debit, 99000), rub(ledger.DeferredRevenue, ledger.Credit, 99000),
				rub(ledger.ProviderFees, ledger.Debit, 3465), rub(ledger.ProviderCash, ledger.Credit, 3465),
			},
			memo: "pro, January",
		},
		{
			name: "a fee of zero adds no legs",
			build: func() (ledger.Transaction, error) {
				return ledger.Charge("c", "p1", "RUB", 100, t0, ledger.WithProviderFee(0))
			},
			ref:  ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
			legs: []ledger.Posting{rub(ledger.ProviderCash, ledger.Debit, 100), rub(ledger.DeferredRevenue, ledger.Credit, 100)},
		},
		{
			name: "a payment no period can take is owed back: Dr provider, Cr refunds_payable",
			build: func() (ledger.Transaction, error) {
				return ledger.UnappliedCharge("unapplied:a1", "p1", "RUB", 99000, t0)
			},
			ref:  ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
			legs: []ledger.Posting{rub(ledger.ProviderCash, ledger.Debit, 99000), rub(ledger.RefundsPayable, ledger.Credit, 99000)},
		},
		{
			name: "earned revenue: Dr deferred, Cr revenue",
			build: func() (ledger.Transaction, error) {
				return ledger.Recognize("recog:s1:2026-01-15", "s1", "RUB", 3194, t0)
			},
			ref:  ledger.Reference{Kind: ledger.RefRecognition, ID: "s1"},
			legs: []ledger.Posting{rub(ledger.DeferredRevenue, ledger.Debit, 3194), rub(ledger.Revenue, ledger.Credit, 3194)},
		},
		{
			name:  "3.7 full refund before anything is earned takes it all from deferred",
			build: func() (ledger.Transaction, error) { return ledger.Refund("refund:r1", "r1", "RUB", 99000, 0, t0) },
			ref:   ledger.Reference{Kind: ledger.RefRefund, ID: "r1"},
			legs:  []ledger.Posting{rub(ledger.DeferredRevenue, ledger.Debit, 99000), rub(ledger.ProviderCash, ledger.Credit, 99000)},
		},
		{
			name:  "3.7 full refund after two days were earned gives back earned revenue through the contra account",
			build: func() (ledger.Transaction, error) { return ledger.Refund("refund:r1", "r1", "RUB", 99000, 6388, t0) },
			ref:   ledger.Reference{Kind: ledger.RefRefund, ID: "r1"},
			legs: []ledger.Posting{
				rub(ledger.DeferredRevenue, ledger.Debit, 92612), rub(ledger.RefundedRevenue, ledger.Debit, 6388),
				rub(ledger.ProviderCash, ledger.Credit, 99000),
			},
		},
		{
			name:  "refund of earned revenue only leaves deferred alone",
			build: func() (ledger.Transaction, error) { return ledger.Refund("refund:r1", "r1", "RUB", 500, 500, t0) },
			ref:   ledger.Reference{Kind: ledger.RefRefund, ID: "r1"},
			legs:  []ledger.Posting{rub(ledger.RefundedRevenue, ledger.Debit, 500), rub(ledger.ProviderCash, ledger.Credit, 500)},
		},
		{
			name: "3.8 an approved refund is owed until paid: Cr refunds payable",
			build: func() (ledger.Transaction, error) {
				return ledger.ApproveRefund("refund:r1", "r1", "RUB", 99000, 0, t0)
			},
			ref:  ledger.Reference{Kind: ledger.RefRefund, ID: "r1"},
			legs: []ledger.Posting{rub(ledger.DeferredRevenue, ledger.Debit, 99000), rub(ledger.RefundsPayable, ledger.Credit, 99000)},
		},
		{
			name:  "3.8 the payout settles refunds payable from provider cash",
			build: func() (ledger.Transaction, error) { return ledger.PayRefund("refund-paid:r1", "r1", "RUB", 99000, t0) },
			ref:   ledger.Reference{Kind: ledger.RefRefund, ID: "r1"},
			legs:  []ledger.Posting{rub(ledger.RefundsPayable, ledger.Debit, 99000), rub(ledger.ProviderCash, ledger.Credit, 99000)},
		},
		{
			name:  "zero charge is refused",
			build: func() (ledger.Transaction, error) { return ledger.Charge("c", "p1", "RUB", 0, t0) },
			want:  []error{ledger.ErrNonPositive},
		},
		{
			name: "negative fee is refused",
			build: func() (ledger.Transaction, error) {
				return ledger.Charge("c", "p1", "RUB", 100, t0, ledger.WithProviderFee(-1))
			},
			want: []error{ledger.ErrNonPositive},
		},
		{
			name:  "zero recognition is refused: skip the posting instead",
			build: func() (ledger.Transaction, error) { return ledger.Recognize("r", "s1", "RUB", 0, t0) },
			want:  []error{ledger.ErrNonPositive},
		},
		{
			name:  "unknown currency",
			build: func() (ledger.Transaction, error) { return ledger.Charge("c", "p1", "XXX", 100, t0) },
			want:  []error{money.ErrUnknownCurrency},
		},
		{
			name:  "empty payment ID",
			build: func() (ledger.Transaction, error) { return ledger.Charge("c", "", "RUB", 100, t0) },
			want:  []error{ledger.ErrInvalidReference},
		},
		{
			name:  "refund whose recognized part exceeds it",
			build: func() (ledger.Transaction, error) { return ledger.Refund("r", "r1", "RUB", 100, 101, t0) },
			want:  []error{ledger.ErrRefundSplit},
		},
		{
			name:  "refund with a negative recognized part",
			build: func() (ledger.Transaction, error) { return ledger.ApproveRefund("r", "r1", "RUB", 100, -1, t0) },
			want:  []error{ledger.ErrRefundSplit},
		},
		{
			name:  "negative refund",
			build: func() (ledger.Transaction, error) { return ledger.Refund("r", "r1", "RUB", -100, 0, t0) },
			want:  []error{ledger.ErrNonPositive},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tx, err := tt.build()
			requireErrors(t, err, tt.want...)
			if err != nil {
				return
			}
			require.Equal(t, tt.ref, tx.Ref)
			require.Equal(t, tt.legs, tx.Postings)
			require.Equal(t, tt.memo, tx.Memo)
			require.Equal(t, t0, tx.At)
			requireBalanced(t, tx)
			require.NoError(t, ledger.Validate(tx, ledger.StandardChart))
		})
	}
}

func TestRecognizedPartOfRefund(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		amount, deferredLeft int64
		want                 int64
	}{
		{"refund within what is deferred touches no revenue", 500, 1000, 0},
		{"refund of exactly what is deferred", 1000, 1000, 0},
		{"3.7 full refund of a partly earned period", 99000, 92612, 6388},
		{"nothing deferred: all from revenue", 700, 0, 700},
		{"negative deferred is treated as none", 700, -5, 700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ledger.RecognizedPartOfRefund(tt.amount, tt.deferredLeft))
		})
	}
}

func TestReverse(t *testing.T) {
	t.Parallel()
	charge, err := ledger.Charge("charge:p1", "p1", "RUB", 99000, t0, ledger.WithProviderFee(3465))
	require.NoError(t, err)

	later := t0.Add(48 * time.Hour)
	rev, err := ledger.Reverse(charge, "reverse:charge:p1", later)
	require.NoError(t, err)
	require.Equal(t, "charge:p1", rev.Reverses)
	require.Equal(t, charge.Ref, rev.Ref)
	require.Equal(t, later, rev.At)
	require.Equal(t, "reversal of charge:p1", rev.Memo)
	require.NoError(t, ledger.Validate(rev, nil))
	require.True(t, ledger.Mirrors(rev, charge))
	for i, p := range rev.Postings {
		require.Equal(t, charge.Postings[i].Side.Opposite(), p.Side)
		require.Equal(t, charge.Postings[i].Amount, p.Amount)
	}
	require.Equal(t, ledger.Debit, charge.Postings[0].Side, "Reverse must not change its argument")

	_, err = ledger.Reverse(charge, charge.Key, later)
	requireErrors(t, err, ledger.ErrInvalidKey)
	_, err = ledger.Reverse(charge, "", later)
	requireErrors(t, err, ledger.ErrInvalidKey)
}

func TestMirrors(t *testing.T) {
	t.Parallel()
	charge, err := ledger.Charge("charge:p1", "p1", "RUB", 99000, t0)
	require.NoError(t, err)
	mirror := func(change func(*ledger.Transaction)) ledger.Transaction {
		rev, err := ledger.Reverse(charge, "rev", t0)
		require.NoError(t, err)
		change(&rev)
		return rev
	}
	tests := []struct {
		name     string
		reversal ledger.Transaction
		want     bool
	}{
		{"Reverse builds a mirror", mirror(func(*ledger.Transaction) {}), true},
		{"legs in another order still mirror", mirror(func(tx *ledger.Transaction) {
			tx.Postings[0], tx.Postings[1] = tx.Postings[1], tx.Postings[0]
		}), true},
		{"same sides as the original do not mirror it", mirror(func(tx *ledger.Transaction) {
			tx.Postings = append([]ledger.Posting(nil), charge.Postings...)
		}), false},
		{"another amount", mirror(func(tx *ledger.Transaction) { tx.Postings[0].Amount, tx.Postings[1].Amount = 1, 1 }), false},
		{"another reference", mirror(func(tx *ledger.Transaction) { tx.Ref.ID = "p2" }), false},
		{"names another transaction", mirror(func(tx *ledger.Transaction) { tx.Reverses = "charge:p2" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ledger.Mirrors(tt.reversal, charge))
		})
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base, err := ledger.Charge("charge:p1", "p1", "RUB", 99000, t0, ledger.WithProviderFee(3465))
	require.NoError(t, err)
	fp := ledger.Fingerprint(base)
	require.Len(t, fp, 64)

	variant := func(change func(*ledger.Transaction)) ledger.Transaction {
		tx := base
		tx.Postings = append([]ledger.Posting(nil), base.Postings...)
		change(&tx)
		return tx
	}
	tests := []struct {
		name string
		tx   ledger.Transaction
		same bool
	}{
		{"postings in another order: same content", variant(func(tx *ledger.Transaction) {
			tx.Postings[0], tx.Postings[3] = tx.Postings[3], tx.Postings[0]
		}), true},
		{"a retry computed later: At is not content", variant(func(tx *ledger.Transaction) { tx.At = t0.Add(1) }), true},
		{"another memo: prose is not content", variant(func(tx *ledger.Transaction) { tx.Memo = "retry" }), true},
		{"another key: the key is what is looked up", variant(func(tx *ledger.Transaction) { tx.Key = "other" }), true},
		{"another amount", variant(func(tx *ledger.Transaction) { tx.Postings[0].Amount++; tx.Postings[1].Amount++ }), false},
		{"another side", variant(func(tx *ledger.Transaction) { tx.Postings[2].Side = ledger.Credit }), false},
		{"another account", variant(func(tx *ledger.Transaction) { tx.Postings[1].Account = "revenue:RUB" }), false},
		{"another reference ID", variant(func(tx *ledger.Transaction) { tx.Ref.ID = "p2" }), false},
		{"another reference kind", variant(func(tx *ledger.Transaction) { tx.Ref.Kind = ledger.RefAdjustment }), false},
		{"now reversing something", variant(func(tx *ledger.Transaction) { tx.Reverses = "x" }), false},
		{"a leg fewer", variant(func(tx *ledger.Transaction) { tx.Postings = tx.Postings[:2] }), false},
		{"a leg split in two", variant(func(tx *ledger.Transaction) {
			tx.Postings[0].Amount = 49500
			tx.Postings = append(tx.Postings, tx.Postings[0])
		}), false},
		{"fields cannot run into each other", variant(func(tx *ledger.Transaction) {
			tx.Ref.Kind, tx.Ref.ID = "paymentp", "1"
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.same, ledger.Fingerprint(tt.tx) == fp)
		})
	}
}

func TestNewPosting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		amount   string
		currency string
		side     ledger.Side
		want     int64
		err      []error
	}{
		{"roubles and kopecks", "990.50", "RUB", ledger.Debit, 99050, nil},
		{"whole yen", "1200", "JPY", ledger.Credit, 1200, nil},
		{"a tenth of a kopeck is refused, not rounded", "990.501", "RUB", ledger.Debit, 0, []error{money.ErrPrecision}},
		{"a fraction of a yen", "0.5", "JPY", ledger.Debit, 0, []error{money.ErrPrecision}},
		{"trailing zeros beyond the exponent are fine", "1.500", "RUB", ledger.Debit, 150, nil},
		{"zero", "0", "RUB", ledger.Debit, 0, []error{ledger.ErrNonPositive}},
		{"negative", "-1", "RUB", ledger.Debit, 0, []error{ledger.ErrNonPositive}},
		{"beyond int64 kopecks", "100000000000000000000", "RUB", ledger.Debit, 0, []error{money.ErrRange}},
		{"unknown currency", "1", "XXX", ledger.Debit, 0, []error{money.ErrUnknownCurrency}},
		{"lower-case code is not guessed", "1", "rub", ledger.Debit, 0, []error{money.ErrUnknownCurrency}},
		{"invalid side", "1", "RUB", "left", 0, []error{ledger.ErrInvalidSide}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ledger.NewPosting("provider:"+tt.currency, tt.side, decimal.RequireFromString(tt.amount), tt.currency)
			requireErrors(t, err, tt.err...)
			if err == nil {
				require.Equal(t, ledger.Posting{Account: "provider:" + tt.currency, Side: tt.side, Amount: tt.want, Currency: tt.currency}, p)
			}
		})
	}
}

func TestStandardChart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		ok     bool
		typ    ledger.AccountType
		normal ledger.Side
	}{
		{"provider:RUB", true, ledger.Asset, ledger.Debit},
		{"deferred:RUB", true, ledger.Liability, ledger.Credit},
		{"revenue:USD", true, ledger.Income, ledger.Credit},
		{"refunded_revenue:RUB", true, ledger.Income, ledger.Debit},
		{"refunds_payable:JPY", true, ledger.Liability, ledger.Credit},
		{"provider_fees:EUR", true, ledger.Expense, ledger.Debit},
		{"provider:XXX", false, "", ""},
		{"provider:rub", false, "", ""},
		{"provider", false, "", ""},
		{"cash:RUB", false, "", ""},
		{"provider:RUB:extra", false, "", ""},
		{"", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			a, ok := ledger.StandardChart(tt.code)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.code, a.Code)
				require.Equal(t, tt.typ, a.Type)
				require.Equal(t, tt.normal, a.NormalSide())
			}
		})
	}

	accounts := ledger.ChartFor("RUB")
	require.Len(t, accounts, len(ledger.Roles()))
	for i, a := range accounts {
		require.Equal(t, ledger.Roles()[i].Code("RUB"), a.Code)
		require.True(t, a.Type.Valid())
		require.Equal(t, "RUB", a.Currency)
	}
	require.Nil(t, ledger.ChartFor("XXX"))
}
