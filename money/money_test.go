package money_test

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/money"
)

func TestToMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cur     money.Currency
		amount  string
		want    int64
		wantErr error
	}{
		{"roubles and kopecks", money.RUB, "990.00", 99000, nil},
		{"whole roubles", money.RUB, "990", 99000, nil},
		{"one kopeck", money.RUB, "0.01", 1, nil},
		{"zero is allowed (free tariff)", money.RUB, "0", 0, nil},
		{"negative converts; callers refuse it where it is wrong", money.RUB, "-1.5", -150, nil},
		{"a third decimal is refused, not rounded", money.RUB, "990.005", 0, money.ErrPrecision},
		{"trailing zeros past the minor unit are fine", money.RUB, "1.2300", 123, nil},
		{"yen has no minor unit", money.MustLookup("JPY"), "1.5", 0, money.ErrPrecision},
		{"out of int64 range", money.RUB, "99999999999999999999", 0, money.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.cur.ToMinor(decimal.RequireFromString(tt.amount))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, tt.cur.FromMinor(got).Equal(decimal.RequireFromString(tt.amount)))
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	c, err := money.Lookup("RUB")
	require.NoError(t, err)
	require.Equal(t, money.RUB, c)
	for _, bad := range []string{"", "rub", "XXX", " RUB"} {
		_, err := money.Lookup(bad)
		require.ErrorIs(t, err, money.ErrUnknownCurrency, bad)
		require.False(t, money.Known(bad), bad)
	}
	require.Equal(t, "990.00 RUB", money.RUB.Format(99000))
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		total   int64
		weights []int64
		want    []int64
	}{
		{"even", 300, []int64{1, 1, 1}, []int64{100, 100, 100}},
		{"remainder goes to the earliest parts", 100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{"zero weight gets nothing", 10, []int64{0, 1, 1}, []int64{0, 5, 5}},
		{"remainder skips zero weights", 11, []int64{0, 1, 1}, []int64{0, 6, 5}},
		{"proportional", 99001, []int64{31, 28}, []int64{52018, 46983}},
		{"negative weight refused", 10, []int64{-1, 2}, nil},
		{"zero sum refused", 10, []int64{0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, money.Split(tt.total, tt.weights))
		})
	}
}

func TestSplitSumsToWhole(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		total := rapid.Int64Range(0, 1<<50).Draw(t, "total")
		weights := rapid.SliceOfN(rapid.Int64Range(0, 1<<20), 1, 60).Draw(t, "weights")
		weights[0]++ // a positive sum
		parts := money.Split(total, weights)
		var sum int64
		for i, p := range parts {
			require.GreaterOrEqual(t, p, int64(0))
			if weights[i] == 0 {
				require.Zero(t, p)
			}
			sum += p
		}
		require.Equal(t, total, sum)
	})
}

func TestProRata(t *testing.T) {
	t.Parallel()
	require.Equal(t, int64(33), money.ProRata(100, 1, 3))
	require.Equal(t, int64(100), money.ProRata(100, 3, 3))
	require.Equal(t, int64(0), money.ProRata(100, 0, 3))
	require.Equal(t, int64(0), money.ProRata(100, 1, 0))
	require.Equal(t, int64(1<<62/3), money.ProRata(1<<62, 1, 3), "no overflow in the product")
}
