package tariff_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/tariff"
)

func TestTermsForRenewal(t *testing.T) {
	t.Parallel()
	const month = 30 * 24 * time.Hour
	day := func(m time.Month, d int) time.Time { return time.Date(2025, m, d, 0, 0, 0, 0, time.UTC) }
	jan1, feb1, mar1, apr1 := day(1, 1), day(2, 1), day(3, 1), day(4, 1)
	tests := []struct {
		name    string
		steps   []step
		current int // number of the version current terms were sold under
		at      time.Time
		want    int // version number the renewal is sold under
	}{
		{name: "3.5 renewal with no change keeps the current version",
			steps: []step{{at: jan1, price: "990"}}, current: 1, at: feb1, want: 1},
		{name: "2.1.6 price rise mid-period waits for the next renewal, then applies without notice",
			steps: []step{{at: jan1, price: "990"}, {at: day(1, 15), price: "1290"}}, current: 1, at: feb1, want: 2},
		{name: "2.1.6 renewal before a scheduled rise takes effect keeps the old price",
			steps: []step{{at: jan1, price: "990"}, {at: day(1, 15), effective: mar1, price: "1290"}}, current: 1, at: feb1, want: 1},
		{name: "2.1.6 rise published inside the notice window waits one more period",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 15), price: "1290", notice: month}}, current: 1, at: feb1, want: 1},
		{name: "2.1.6 the postponed rise applies at the renewal after the notice",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 15), price: "1290", notice: month}}, current: 1, at: mar1, want: 2},
		{name: "2.1.6 rise published exactly the notice before the renewal applies",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: feb1.Add(-month), price: "1290"}}, current: 1, at: feb1, want: 2},
		{name: "2.1.6 rise published one ns short of the notice waits",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: feb1.Add(-month + 1), price: "1290"}}, current: 1, at: feb1, want: 1},
		{name: "2.1.6 rise scheduled ahead with enough notice applies when it takes effect",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: jan1.Add(time.Hour), effective: feb1, price: "1290"}}, current: 1, at: feb1, want: 2},
		{name: "2.1.6 price cut applies at once despite a notice period",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 31), price: "790"}}, current: 1, at: feb1, want: 2},
		{name: "3.2 limits change at the same price applies at once despite a notice period",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 31), price: "990.00", images: 50}}, current: 1, at: feb1, want: 2},
		{name: "2.1.6 the newest noticed rise wins over a newer unnoticed one",
			steps:   []step{{at: jan1, price: "990", notice: month}, {at: jan1.Add(time.Hour), price: "1290"}, {at: day(2, 20), price: "1590"}},
			current: 1, at: mar1, want: 2},
		{name: "2.1.6 the newer rise applies once its notice has passed too",
			steps:   []step{{at: jan1, price: "990", notice: month}, {at: jan1.Add(time.Hour), price: "1290"}, {at: day(2, 20), price: "1590"}},
			current: 1, at: apr1, want: 3},
		{name: "2.1.6 a cut superseded by an unnoticed rise still applies",
			steps:   []step{{at: jan1, price: "990", notice: month}, {at: day(1, 20), price: "790"}, {at: day(1, 25), price: "1290"}},
			current: 1, at: feb1, want: 2},
		{name: "2.1.6 a grandfathered customer is never moved back to an older version",
			steps:   []step{{at: jan1, price: "500", notice: month}, {at: day(1, 10), price: "790", notice: month}, {at: day(1, 25), price: "1290"}},
			current: 2, at: feb1, want: 2},
		{name: "2.1.6 the notice is the one bought with, even when the new version's is longer",
			steps: []step{{at: jan1, price: "990"}, {at: day(1, 31), price: "1290", notice: 3 * month}}, current: 1, at: feb1, want: 2},
		{name: "2.1.6 the notice is the one bought with, even when the new version's is shorter",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 31), price: "1290"}}, current: 1, at: feb1, want: 1},
		{name: "2.1.6 a currency change needs notice like a rise",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 31), price: "10", currency: "USD"}}, current: 1, at: feb1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			history := publish(t, tt.steps...)
			current := history[tt.current-1].Terms()
			got, err := tariff.TermsForRenewal(current, history, tt.at)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Version)
			require.True(t, history[tt.want-1].Terms().Equal(got), "got %+v", got)

			// The answer shares no limits with the history or the current terms.
			got.Limits[0].Quantity = -1
			require.Equal(t, int64(500), history[tt.want-1].Limits[0].Quantity)
			require.Equal(t, int64(500), current.Limits[0].Quantity)
		})
	}
}

// TestRenewalTakesFrom checks RenewalTakesFrom against TermsForRenewal itself: a renewal
// due one nanosecond before the instant keeps an older version, one due at it takes the
// newest (the preview of Catalog.PreviewPublish states this instant).
func TestRenewalTakesFrom(t *testing.T) {
	t.Parallel()
	const month = 30 * 24 * time.Hour
	day := func(m time.Month, d int) time.Time { return time.Date(2025, m, d, 0, 0, 0, 0, time.UTC) }
	jan1, feb1, mar1 := day(1, 1), day(2, 1), day(3, 1)
	tests := []struct {
		name  string
		steps []step
		want  time.Time
	}{
		{name: "2.1.6 a rise without notice: from its publication",
			steps: []step{{at: jan1, price: "990"}, {at: day(1, 15), price: "1290"}}, want: day(1, 15)},
		{name: "2.1.6 a scheduled rise: from its effective instant",
			steps: []step{{at: jan1, price: "990"}, {at: day(1, 15), effective: mar1, price: "1290"}}, want: mar1},
		{name: "2.1.6 a rise within the notice bought with: from publication plus the notice",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 15), effective: feb1, price: "1290"}}, want: day(1, 15).Add(month)},
		{name: "2.1.6 a rise scheduled beyond the notice: from its effective instant",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 2), effective: mar1, price: "1290"}}, want: mar1},
		{name: "2.1.6 a cut ignores the notice: from its effective instant",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 15), effective: feb1, price: "790"}}, want: feb1},
		{name: "2.1.6 a currency change needs the notice like a rise",
			steps: []step{{at: jan1, price: "990", notice: month}, {at: day(1, 15), price: "10", currency: "USD"}}, want: day(1, 15).Add(month)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			history := publish(t, tt.steps...)
			current, next := history[0].Terms(), history[len(history)-1]
			got := tariff.RenewalTakesFrom(current, next)
			require.True(t, got.Equal(tt.want), "got %s, want %s", got, tt.want)
			before, err := tariff.TermsForRenewal(current, history, got.Add(-time.Nanosecond))
			require.NoError(t, err)
			require.Less(t, before.Version, next.Number, "a renewal due before the instant keeps an older version")
			at, err := tariff.TermsForRenewal(current, history, got)
			require.NoError(t, err)
			require.Equal(t, next.Number, at.Version, "a renewal due at the instant takes the new version")
		})
	}
	t.Run("3.2 a version not newer than the customer's is never taken", func(t *testing.T) {
		t.Parallel()
		history := publish(t, step{at: jan1, price: "990"}, step{at: day(1, 15), price: "1290"})
		require.True(t, tariff.RenewalTakesFrom(history[1].Terms(), history[0]).IsZero())
		require.True(t, tariff.RenewalTakesFrom(history[1].Terms(), history[1]).IsZero())
	})
}

func TestTermsForRenewalErrors(t *testing.T) {
	t.Parallel()
	jan1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	history := publish(t, step{at: jan1, price: "990"}, step{at: jan1.AddDate(0, 1, 0), price: "1290"})
	current := history[0].Terms()

	t.Run("3.2 no version in force at the renewal", func(t *testing.T) {
		t.Parallel()
		_, err := tariff.TermsForRenewal(current, history, jan1.Add(-time.Nanosecond))
		require.ErrorIs(t, err, tariff.ErrNoVersion)
	})
	t.Run("3.2 no versions at all", func(t *testing.T) {
		t.Parallel()
		_, err := tariff.TermsForRenewal(current, nil, jan1)
		require.ErrorIs(t, err, tariff.ErrNoVersion)
	})
	t.Run("3.2 versions of another tariff are refused", func(t *testing.T) {
		t.Parallel()
		other := current.Clone()
		other.Code = "basic"
		_, err := tariff.TermsForRenewal(other, history, jan1.AddDate(0, 2, 0))
		require.ErrorIs(t, err, tariff.ErrInvalid)
	})
}

func TestTermsForPurchase(t *testing.T) {
	t.Parallel()
	jan1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	feb1 := jan1.AddDate(0, 1, 0)
	history := publish(t, step{at: jan1, price: "990"}, step{at: jan1.Add(time.Hour), effective: feb1, price: "1290"})
	active := tariff.Tariff{Code: "pro", Name: "Pro", Status: tariff.Active}
	retired, err := active.Retire(feb1)
	require.NoError(t, err)

	tests := []struct {
		name    string
		tariff  tariff.Tariff
		at      time.Time
		want    int
		wantErr error
	}{
		{name: "3.4 a purchase is sold under the version in force", tariff: active, at: feb1.Add(-time.Nanosecond), want: 1},
		{name: "3.4 a purchase at a change gets the new version, without notice", tariff: active, at: feb1, want: 2},
		{name: "3.2 nothing to buy before the first version", tariff: active, at: jan1.Add(-time.Nanosecond), wantErr: tariff.ErrNoVersion},
		{name: "3.2 a retired tariff can no longer be bought", tariff: retired, at: feb1, wantErr: tariff.ErrRetired},
		{name: "3.2 versions of another tariff are refused", tariff: tariff.Tariff{Code: "basic", Status: tariff.Active}, at: feb1, wantErr: tariff.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tariff.TermsForPurchase(tt.tariff, history, tt.at)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Version)
		})
	}

	t.Run("3.2 a retired tariff keeps renewing on its last version", func(t *testing.T) {
		t.Parallel()
		current := history[0].Terms()
		got, err := tariff.TermsForRenewal(current, history, feb1.AddDate(1, 0, 0))
		require.NoError(t, err)
		require.Equal(t, 2, got.Version)
	})
}

// TestTermsForRenewalProperties publishes random histories and renews at random
// instants, checking the rule's invariants rather than re-deriving its answer.
func TestTermsForRenewalProperties(t *testing.T) {
	t.Parallel()
	prices := []string{"0", "500", "990", "990.00", "1290"}
	notices := []time.Duration{0, time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		var history []tariff.Version
		published := start
		for i := range rapid.IntRange(1, 8).Draw(rt, "versions") {
			published = published.Add(time.Duration(rapid.Int64Range(0, 40*24).Draw(rt, "gap")) * time.Hour)
			spec := proSpec()
			spec.Price = decimal.RequireFromString(rapid.SampledFrom(prices).Draw(rt, "price"))
			spec.Options.PriceNotice = rapid.SampledFrom(notices).Draw(rt, "notice")
			if rapid.Bool().Draw(rt, "usd") {
				spec.Currency = "USD"
			}
			spec.EffectiveAt = published.Add(time.Duration(rapid.Int64Range(0, 40*24).Draw(rt, "lead")) * time.Hour)
			var prev *tariff.Version
			if i > 0 {
				prev = &history[i-1]
				spec.EffectiveAt = maxTime(spec.EffectiveAt, prev.EffectiveAt)
			}
			v, err := tariff.NewVersion(spec, prev, published)
			if err != nil {
				rt.Fatalf("NewVersion: %v", err)
			}
			history = append(history, v)
		}
		sold := rapid.SampledFrom(history).Draw(rt, "sold under")
		current := sold.Terms()
		at := sold.EffectiveAt.Add(time.Duration(rapid.Int64Range(0, 200*24).Draw(rt, "renew after")) * time.Hour)

		got, err := tariff.TermsForRenewal(current, history, at)
		if err != nil {
			rt.Fatalf("TermsForRenewal: %v", err)
		}
		if got.Version < current.Version {
			rt.Fatalf("renewal moved back from version %d to %d", current.Version, got.Version)
		}
		rise := got.Currency != current.Currency || got.Price.GreaterThan(current.Price)
		if got.Version != current.Version {
			v := history[got.Version-1]
			if v.EffectiveAt.After(at) {
				rt.Fatalf("version %d sold at %s before it takes effect at %s", v.Number, at, v.EffectiveAt)
			}
			if rise && v.PublishedAt.Add(current.Options.PriceNotice).After(at) {
				rt.Fatalf("rise to version %d published %s sold at %s without notice %s", v.Number, v.PublishedAt, at, current.Options.PriceNotice)
			}
			if !v.Terms().Equal(got) {
				rt.Fatalf("terms %+v differ from version %d's", got, v.Number)
			}
		} else if !current.Equal(got) {
			rt.Fatalf("kept version %d but terms changed: %+v", current.Version, got)
		}
		inForce, _ := tariff.InForce(history, at)
		noticed := !inForce.PublishedAt.Add(current.Options.PriceNotice).After(at)
		inForceRise := inForce.Currency != current.Currency || inForce.Price.GreaterThan(current.Price)
		if inForce.Number > current.Version && (!inForceRise || noticed) && got.Version != inForce.Number {
			rt.Fatalf("version %d in force at %s qualifies, got %d", inForce.Number, at, got.Version)
		}
	})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
