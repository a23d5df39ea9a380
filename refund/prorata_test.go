package refund_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/refund"
)

func mustDecimal(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestProRata(t *testing.T) {
	t.Parallel()
	start := msk(2025, time.March, 1, 0, 0)
	day := func(n float64) time.Time { return start.Add(time.Duration(n * 24 * float64(time.Hour))) }
	period := func(price string, meters ...refund.MeterUsage) refund.Period {
		return refund.Period{
			GrantedAt: start, Start: start, End: day(30),
			Price: mustDecimal(price), Currency: "RUB", Meters: meters,
		}
	}
	gen := func(quantity, used int64) refund.MeterUsage {
		return refund.MeterUsage{Meter: "generations", Quantity: quantity, Used: used}
	}
	lateGrant := period("990.00", gen(100, 0))
	lateGrant.GrantedAt = day(10)
	neverGranted := period("990.00", gen(100, 0))
	neverGranted.GrantedAt = time.Time{}
	yen := period("9900")
	yen.Currency = "JPY"

	tests := []struct {
		name       string
		period     refund.Period
		at         time.Time
		costs      string
		wantAmount string
		wantUnused string
		wantBasis  refund.Basis
	}{
		{"art. 32 refusal at the start, nothing used: the whole price", period("990.00", gen(100, 0)), start, "0", "990.00", "990.00", refund.BasisTime},
		{"art. 32 half the time, nothing used: half the price", period("990.00", gen(100, 0)), day(15), "0", "495.00", "495.00", refund.BasisTime},
		{"art. 32 volume used faster than time: volume wins", period("990.00", gen(100, 80)), day(7), "0", "198.00", "198.00", refund.BasisVolume},
		{"art. 32 time used faster than volume: time wins", period("990.00", gen(100, 10)), day(22.5), "0", "247.50", "247.50", refund.BasisTime},
		{"art. 32 a tie is computed by time", period("990.00", gen(100, 50)), day(15), "0", "495.00", "495.00", refund.BasisTime},
		{"art. 32 the fraction of a kopeck is rounded down", period("100.00", gen(100, 0)), day(10), "0", "66.66", "66.66", refund.BasisTime},
		{"art. 32 costs are taken off", period("990.00", gen(100, 0)), day(15), "100.00", "395.00", "495.00", refund.BasisTime},
		{"art. 32 costs above the unused share give zero, never below", period("990.00", gen(100, 0)), day(15), "600.00", "0.00", "495.00", refund.BasisTime},
		{"art. 32 costs equal to the price", period("990.00", gen(100, 0)), start, "990.00", "0.00", "990.00", refund.BasisTime},
		{"art. 32 refusal after the period end: all time used", period("990.00", gen(100, 0)), day(45), "0", "0.00", "0.00", refund.BasisTime},
		{"art. 32 refusal before the period starts: no time used", period("990.00", gen(100, 0)), day(-3), "0", "990.00", "990.00", refund.BasisTime},
		{"3.7 late access by the operator: time before the grant is unused", lateGrant, day(20), "0", "660.00", "660.00", refund.BasisTime},
		{"art. 32 a period never granted used no time", neverGranted, day(20), "0", "990.00", "990.00", refund.BasisTime},
		{"3.1 soft limits: use above the volume counts as all of it", period("990.00", gen(100, 150)), day(1), "0", "0.00", "0.00", refund.BasisVolume},
		{"art. 32 several meters: the most used one", period("990.00", gen(100, 10), refund.MeterUsage{Meter: "images", Quantity: 50, Used: 30}), day(3), "0", "396.00", "396.00", refund.BasisVolume},
		{"art. 32 a meter without volume has no share", period("990.00", refund.MeterUsage{Meter: "tokens", Used: 1_000_000}), day(15), "0", "495.00", "495.00", refund.BasisTime},
		{"art. 32 a free period refunds nothing", period("0", gen(100, 0)), start, "0", "0.00", "0.00", refund.BasisTime},
		{"art. 32 a currency without minor units", yen, day(10), "100", "6500", "6600", refund.BasisTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := refund.ProRata(tt.period, tt.at, mustDecimal(tt.costs))
			require.NoError(t, err)
			cur := money.MustLookup(tt.period.Currency)
			require.Equal(t, tt.wantAmount, got.Amount.StringFixed(cur.Exponent))
			require.Equal(t, tt.wantUnused, got.Unused.StringFixed(cur.Exponent))
			require.Equal(t, tt.wantBasis, got.Basis)
			minor, err := cur.ToMinor(got.Amount)
			require.NoError(t, err)
			require.Equal(t, minor, got.AmountMinor)
			require.Equal(t, tt.period.Currency, got.Currency)
		})
	}
}

func TestProRataShares(t *testing.T) {
	t.Parallel()
	start := msk(2025, time.March, 1, 0, 0)
	p := refund.Period{
		GrantedAt: start, Start: start, End: start.Add(40 * 24 * time.Hour),
		Price: mustDecimal("990.00"), Currency: "RUB",
		Meters: []refund.MeterUsage{{Meter: "generations", Quantity: 300, Used: 100}},
	}
	got, err := refund.ProRata(p, start.Add(15*24*time.Hour), decimal.Zero)
	require.NoError(t, err)
	require.Equal(t, "37.50%", got.UsedByTime.String())
	require.Equal(t, "33.33%", got.UsedByVolume.String())
	require.Equal(t, refund.Share{Used: 100, Of: 300}, got.UsedByVolume)
	require.Equal(t, "n/a", refund.Share{}.String())
}

func TestProRataRefusesBadInput(t *testing.T) {
	t.Parallel()
	start := msk(2025, time.March, 1, 0, 0)
	good := refund.Period{
		GrantedAt: start, Start: start, End: start.AddDate(0, 1, 0),
		Price: mustDecimal("990.00"), Currency: "RUB",
	}
	with := func(f func(*refund.Period)) refund.Period {
		p := good
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		period refund.Period
		at     time.Time
		costs  string
		want   error
	}{
		{"art. 32 negative costs", good, start, "-0.01", refund.ErrNegativeCost},
		{"art. 32 costs above the price", good, start, "990.01", refund.ErrCostAbovePrice},
		{"costs finer than a kopeck", good, start, "1.001", money.ErrPrecision},
		{"a price finer than a kopeck", with(func(p *refund.Period) { p.Price = mustDecimal("990.001") }), start, "0", money.ErrPrecision},
		{"a negative price", with(func(p *refund.Period) { p.Price = mustDecimal("-1") }), start, "0", refund.ErrBadAmount},
		{"an unknown currency", with(func(p *refund.Period) { p.Currency = "XXX" }), start, "0", money.ErrUnknownCurrency},
		{"a lower-case currency", with(func(p *refund.Period) { p.Currency = "rub" }), start, "0", refund.ErrBadAmount},
		{"a zero refusal instant", good, time.Time{}, "0", refund.ErrMissingTime},
		{"a zero period start", with(func(p *refund.Period) { p.Start = time.Time{} }), start, "0", refund.ErrMissingTime},
		{"an end before the start", with(func(p *refund.Period) { p.End = p.Start.Add(-time.Hour) }), start, "0", refund.ErrBadPeriod},
		{"an end equal to the start", with(func(p *refund.Period) { p.End = p.Start }), start, "0", refund.ErrBadPeriod},
		{"an absurdly long period", with(func(p *refund.Period) { p.End = p.Start.AddDate(300, 0, 0) }), start, "0", refund.ErrBadPeriod},
		{"negative usage", with(func(p *refund.Period) { p.Meters = []refund.MeterUsage{{Meter: "x", Quantity: 5, Used: -1}} }), start, "0", refund.ErrBadUsage},
		{"a negative volume", with(func(p *refund.Period) { p.Meters = []refund.MeterUsage{{Meter: "x", Quantity: -5}} }), start, "0", refund.ErrBadUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := refund.ProRata(tt.period, tt.at, mustDecimal(tt.costs))
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, refund.ErrInvalid)
			require.Zero(t, got)
		})
	}
}

// TestProRataProperties checks the invariants on random periods: the amount lies in
// [0, unused] ⊆ [0, price], is exact in minor units, matches a reference computed in
// decimals, and never grows with later refusal or more usage.
func TestProRataProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC).
			Add(time.Duration(rapid.Int64Range(0, 365*24*3600).Draw(t, "startSec")) * time.Second)
		length := time.Duration(rapid.Int64Range(1, 400*24*3600).Draw(t, "lenSec")) * time.Second
		priceMinor := rapid.Int64Range(0, 1_000_000_000_00).Draw(t, "priceMinor")
		quantity := rapid.Int64Range(0, 1_000_000).Draw(t, "quantity")
		used := rapid.Int64Range(0, 2_000_000).Draw(t, "used")
		at := start.Add(time.Duration(rapid.Int64Range(-int64(length), 2*int64(length)).Draw(t, "atOffset")))
		costsMinor := rapid.Int64Range(0, priceMinor).Draw(t, "costsMinor")
		p := refund.Period{
			GrantedAt: start, Start: start, End: start.Add(length),
			Price: money.RUB.FromMinor(priceMinor), Currency: "RUB",
			Meters: []refund.MeterUsage{{Meter: "m", Quantity: quantity, Used: used}},
		}
		got, err := refund.ProRata(p, at, money.RUB.FromMinor(costsMinor))
		require.NoError(t, err)
		require.GreaterOrEqual(t, got.AmountMinor, int64(0))
		require.True(t, got.Amount.LessThanOrEqual(got.Unused))
		require.True(t, got.Unused.LessThanOrEqual(p.Price))
		require.True(t, money.RUB.FromMinor(got.AmountMinor).Equal(got.Amount))

		// Reference in decimals: price × (1 − max(time share, volume share)), floored to kopecks.
		timeUsed := decimal.NewFromInt(int64(min(max(at.Sub(start), 0), length))).Div(decimal.NewFromInt(int64(length)))
		share := timeUsed
		if quantity > 0 {
			if v := decimal.NewFromInt(min(used, quantity)).Div(decimal.NewFromInt(quantity)); v.GreaterThan(share) {
				share = v
			}
		}
		// Div rounds to 16 decimals; compare with a kopeck of slack at the rounding edge.
		ref := p.Price.Mul(decimal.NewFromInt(1).Sub(share)).RoundFloor(2)
		require.True(t, got.Unused.Sub(ref).Abs().LessThanOrEqual(mustDecimal("0.01")), "unused %s, reference %s", got.Unused, ref)

		later, err := refund.ProRata(p, at.Add(time.Hour), money.RUB.FromMinor(costsMinor))
		require.NoError(t, err)
		require.LessOrEqual(t, later.AmountMinor, got.AmountMinor, "a later refusal never refunds more")
		p.Meters[0].Used++
		more, err := refund.ProRata(p, at, money.RUB.FromMinor(costsMinor))
		require.NoError(t, err)
		require.LessOrEqual(t, more.AmountMinor, got.AmountMinor, "more usage never refunds more")
	})
}
