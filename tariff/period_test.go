package tariff_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/tariff"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestPeriodValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		period tariff.Period
		fields []string // nil: valid
	}{
		{name: "3.1 one month is valid", period: tariff.Period{Count: 1, Unit: tariff.Month}},
		{name: "3.1 a century of days is valid", period: tariff.Period{Count: 36525, Unit: tariff.Day}},
		{name: "3.1 count zero", period: tariff.Period{Count: 0, Unit: tariff.Month}, fields: []string{"period.count"}},
		{name: "3.1 count negative", period: tariff.Period{Count: -1, Unit: tariff.Day}, fields: []string{"period.count"}},
		{name: "3.1 count over a century", period: tariff.Period{Count: 1201, Unit: tariff.Month}, fields: []string{"period.count"}},
		{name: "3.1 unknown unit", period: tariff.Period{Count: 2, Unit: "fortnight"}, fields: []string{"period.unit"}},
		{name: "3.1 zero period names both fields", period: tariff.Period{}, fields: []string{"period.count", "period.unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.period.Validate()
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tariff.ErrInvalid)
			require.Equal(t, tt.fields, fieldsOf(t, err))
		})
	}
}

func TestPeriodString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		period tariff.Period
		want   string
	}{
		{tariff.Period{Count: 1, Unit: tariff.Month}, "1 month"},
		{tariff.Period{Count: 2, Unit: tariff.Week}, "2 weeks"},
		{tariff.Period{Count: 30, Unit: tariff.Day}, "30 days"},
		{tariff.Period{Count: 1, Unit: tariff.Year}, "1 year"},
		{tariff.Period{Count: 3, Unit: "fortnight"}, `3 "fortnight"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.period.String())
		})
	}
}

func TestPeriodEnd(t *testing.T) {
	t.Parallel()
	utc := time.UTC
	msk := mustLoad(t, "Europe/Moscow")
	nyc := mustLoad(t, "America/New_York")
	ber := mustLoad(t, "Europe/Berlin")
	month := tariff.Period{Count: 1, Unit: tariff.Month}
	tests := []struct {
		name   string
		period tariff.Period
		anchor time.Time
		n      int
		loc    *time.Location
		want   time.Time
		length time.Duration // when set: End(n) - End(n-1), the real length of the n-th period
	}{
		{name: "3.5 month from Jan 31 ends Feb 29 in a leap year", period: month,
			anchor: time.Date(2024, 1, 31, 12, 0, 0, 0, utc), n: 1, loc: utc,
			want: time.Date(2024, 2, 29, 12, 0, 0, 0, utc)},
		{name: "3.5 month from Jan 31 ends Feb 28 in a common year", period: month,
			anchor: time.Date(2023, 1, 31, 12, 0, 0, 0, utc), n: 1, loc: utc,
			want: time.Date(2023, 2, 28, 12, 0, 0, 0, utc)},
		{name: "3.5 second month from Jan 31 returns to Mar 31, no drift", period: month,
			anchor: time.Date(2023, 1, 31, 12, 0, 0, 0, utc), n: 2, loc: utc,
			want: time.Date(2023, 3, 31, 12, 0, 0, 0, utc)},
		{name: "3.5 third month from Jan 31 is clamped to Apr 30", period: month,
			anchor: time.Date(2023, 1, 31, 12, 0, 0, 0, utc), n: 3, loc: utc,
			want: time.Date(2023, 4, 30, 12, 0, 0, 0, utc)},
		{name: "3.5 month from Dec 31 crosses the year", period: month,
			anchor: time.Date(2023, 12, 31, 23, 59, 59, 999, utc), n: 1, loc: utc,
			want: time.Date(2024, 1, 31, 23, 59, 59, 999, utc)},
		{name: "3.5 quarter from Nov 30 ends Feb 29", period: tariff.Period{Count: 3, Unit: tariff.Month},
			anchor: time.Date(2023, 11, 30, 8, 0, 0, 0, utc), n: 1, loc: utc,
			want: time.Date(2024, 2, 29, 8, 0, 0, 0, utc)},
		{name: "3.5 year from Feb 29 ends Feb 28", period: tariff.Period{Count: 1, Unit: tariff.Year},
			anchor: time.Date(2024, 2, 29, 10, 0, 0, 0, msk), n: 1, loc: msk,
			want: time.Date(2025, 2, 28, 10, 0, 0, 0, msk)},
		{name: "3.5 fourth year from Feb 29 ends Feb 29 again", period: tariff.Period{Count: 1, Unit: tariff.Year},
			anchor: time.Date(2024, 2, 29, 10, 0, 0, 0, msk), n: 4, loc: msk,
			want: time.Date(2028, 2, 29, 10, 0, 0, 0, msk)},
		{name: "3.5 year from Feb 29 2096 skips the non-leap 2100", period: tariff.Period{Count: 1, Unit: tariff.Year},
			anchor: time.Date(2096, 2, 29, 10, 0, 0, 0, utc), n: 4, loc: utc,
			want: time.Date(2100, 2, 28, 10, 0, 0, 0, utc)},
		{name: "3.5 two weeks are 14 calendar days", period: tariff.Period{Count: 2, Unit: tariff.Week},
			anchor: time.Date(2024, 2, 20, 9, 30, 0, 0, msk), n: 1, loc: msk,
			want: time.Date(2024, 3, 5, 9, 30, 0, 0, msk)},
		{name: "3.5 days cross the month and the leap day", period: tariff.Period{Count: 10, Unit: tariff.Day},
			anchor: time.Date(2024, 2, 25, 9, 30, 0, 0, msk), n: 1, loc: msk,
			want: time.Date(2024, 3, 6, 9, 30, 0, 0, msk)},
		{name: "3.5 n zero is the anchor in loc", period: month,
			anchor: time.Date(2024, 1, 31, 21, 30, 0, 0, utc), n: 0, loc: msk,
			want: time.Date(2024, 2, 1, 0, 30, 0, 0, msk)},
		{name: "3.5 negative n counts back, clamped", period: month,
			anchor: time.Date(2024, 3, 31, 12, 0, 0, 0, utc), n: -1, loc: utc,
			want: time.Date(2024, 2, 29, 12, 0, 0, 0, utc)},
		{name: "3.5 negative n crosses the year back", period: month,
			anchor: time.Date(2024, 1, 15, 12, 0, 0, 0, utc), n: -13, loc: utc,
			want: time.Date(2022, 12, 15, 12, 0, 0, 0, utc)},
		{name: "6.3 civil time is loc's: Jan 30 21:30 UTC is Jan 31 in Moscow, so Feb 28", period: month,
			anchor: time.Date(2023, 1, 30, 21, 30, 0, 0, utc), n: 1, loc: msk,
			want: time.Date(2023, 2, 28, 0, 30, 0, 0, msk)},
		{name: "6.3 nil loc means the anchor's location", period: month,
			anchor: time.Date(2023, 1, 31, 0, 30, 0, 0, msk), n: 1, loc: nil,
			want: time.Date(2023, 2, 28, 0, 30, 0, 0, msk)},
		{name: "3.5 day across spring-forward in New York lasts 23h", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 3, 9, 10, 0, 0, 0, nyc), n: 1, loc: nyc,
			want: time.Date(2024, 3, 10, 14, 0, 0, 0, utc), length: 23 * time.Hour},
		{name: "3.5 day across fall-back in New York lasts 25h", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 11, 2, 10, 0, 0, 0, nyc), n: 1, loc: nyc,
			want: time.Date(2024, 11, 3, 15, 0, 0, 0, utc), length: 25 * time.Hour},
		{name: "3.5 week across spring-forward in Berlin lasts 167h", period: tariff.Period{Count: 1, Unit: tariff.Week},
			anchor: time.Date(2024, 3, 28, 9, 0, 0, 0, ber), n: 1, loc: ber,
			want: time.Date(2024, 4, 4, 7, 0, 0, 0, utc), length: 167 * time.Hour},
		{name: "3.5 month across fall-back in Berlin keeps 12:00 wall time", period: month,
			anchor: time.Date(2024, 10, 15, 12, 0, 0, 0, ber), n: 1, loc: ber,
			want: time.Date(2024, 11, 15, 11, 0, 0, 0, utc)},
		{name: "3.5 wall time skipped by spring-forward moves forward by the gap", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 3, 9, 2, 30, 0, 0, nyc), n: 1, loc: nyc,
			want: time.Date(2024, 3, 10, 7, 30, 0, 0, utc)}, // 03:30 EDT
		{name: "3.5 the day after the gap is back on the anchor's wall time", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 3, 9, 2, 30, 0, 0, nyc), n: 2, loc: nyc,
			want: time.Date(2024, 3, 11, 6, 30, 0, 0, utc), length: 23 * time.Hour}, // 02:30 EDT
		{name: "3.5 gap in Berlin moves 02:15 to 03:15 CEST", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 3, 30, 2, 15, 0, 0, ber), n: 1, loc: ber,
			want: time.Date(2024, 3, 31, 1, 15, 0, 0, utc)},
		{name: "3.5 wall time repeated by fall-back takes its first occurrence", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 11, 2, 1, 30, 0, 0, nyc), n: 1, loc: nyc,
			want: time.Date(2024, 11, 3, 5, 30, 0, 0, utc)}, // 01:30 EDT, not EST
		{name: "3.5 the day after the repeated hour lasts 25h", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2024, 11, 2, 1, 30, 0, 0, nyc), n: 2, loc: nyc,
			want: time.Date(2024, 11, 4, 6, 30, 0, 0, utc), length: 25 * time.Hour},
		{name: "6.3 Moscow's 2014 switch to UTC+3 repeats 01:30: first occurrence", period: tariff.Period{Count: 1, Unit: tariff.Day},
			anchor: time.Date(2014, 10, 25, 1, 30, 0, 0, msk), n: 1, loc: msk,
			want: time.Date(2014, 10, 25, 21, 30, 0, 0, utc)},
		{name: "3.1 invalid period gives the zero time", period: tariff.Period{Count: 0, Unit: tariff.Month},
			anchor: time.Date(2024, 1, 31, 12, 0, 0, 0, utc), n: 1, loc: utc,
			want: time.Time{}},
		{name: "3.1 an end beyond 10,000 years gives the zero time", period: tariff.Period{Count: 1, Unit: tariff.Year},
			anchor: time.Date(2024, 1, 31, 12, 0, 0, 0, utc), n: 10_001, loc: utc,
			want: time.Time{}},
		{name: "3.1 the most negative n gives the zero time, not an overflow", period: tariff.Period{Count: 100, Unit: tariff.Year},
			anchor: time.Date(2024, 1, 31, 12, 0, 0, 0, utc), n: -1 << 63, loc: utc,
			want: time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.period.End(tt.anchor, tt.n, tt.loc)
			require.True(t, tt.want.Equal(got), "got %s, want %s", got, tt.want)
			if !tt.want.IsZero() {
				wantLoc := tt.loc
				if wantLoc == nil {
					wantLoc = tt.anchor.Location()
				}
				require.Equal(t, wantLoc, got.Location())
			}
			if tt.length != 0 {
				prev := tt.period.End(tt.anchor, tt.n-1, tt.loc)
				require.Equal(t, tt.length, got.Sub(prev))
			}
		})
	}
}

// TestPeriodEndMonthlyChainDoesNotDrift renews monthly from Jan 31 2024 120 times (and
// other anchors and lengths) and checks each end against a calendar computed here by hand.
func TestPeriodEndMonthlyChainDoesNotDrift(t *testing.T) {
	t.Parallel()
	msk := mustLoad(t, "Europe/Moscow")
	nyc := mustLoad(t, "America/New_York")
	tests := []struct {
		name    string
		anchor  time.Time
		period  tariff.Period
		renewal int
	}{
		{name: "3.5 120 monthly renewals from Jan 31 2024 in Moscow",
			anchor: time.Date(2024, 1, 31, 15, 4, 5, 6, msk), period: tariff.Period{Count: 1, Unit: tariff.Month}, renewal: 120},
		{name: "3.5 120 monthly renewals from Jan 30 2023 in New York across DST",
			anchor: time.Date(2023, 1, 30, 23, 59, 0, 0, nyc), period: tariff.Period{Count: 1, Unit: tariff.Month}, renewal: 120},
		{name: "3.5 60 two-month renewals from Aug 31 2025",
			anchor: time.Date(2025, 8, 31, 0, 0, 0, 0, msk), period: tariff.Period{Count: 2, Unit: tariff.Month}, renewal: 60},
		{name: "3.5 40 yearly renewals from Feb 29 2024",
			anchor: time.Date(2024, 2, 29, 12, 0, 0, 0, msk), period: tariff.Period{Count: 1, Unit: tariff.Year}, renewal: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := tt.anchor.Location()
			y, m, d := tt.anchor.Year(), int(tt.anchor.Month()), tt.anchor.Day()
			step := tt.period.Count
			if tt.period.Unit == tariff.Year {
				step *= 12
			}
			prev := tt.anchor
			for n := 1; n <= tt.renewal; n++ {
				m += step
				for m > 12 {
					m -= 12
					y++
				}
				got := tt.period.End(tt.anchor, n, loc)
				require.Equal(t, y, got.Year(), "renewal %d: %s", n, got)
				require.Equal(t, time.Month(m), got.Month(), "renewal %d: %s", n, got)
				require.Equal(t, min(d, handDaysIn(y, m)), got.Day(), "renewal %d: %s", n, got)
				h, mi, s := got.Clock()
				ah, ami, as := tt.anchor.Clock()
				require.Equal(t, [4]int{ah, ami, as, tt.anchor.Nanosecond()}, [4]int{h, mi, s, got.Nanosecond()}, "renewal %d: %s", n, got)
				require.True(t, got.After(prev), "renewal %d: %s not after %s", n, got, prev)
				prev = got
			}
		})
	}
}

// TestPeriodEndAtEveryClockChange takes every UTC-offset change of several zones from
// 1990 to 2040 and renews daily onto a wall time inside it: a skipped time (gap) and a
// repeated one (fold) both resolve with the offset in force before the change, which
// moves a skipped time forward by the gap and picks a repeated time's first occurrence.
func TestPeriodEndAtEveryClockChange(t *testing.T) {
	t.Parallel()
	day := tariff.Period{Count: 1, Unit: tariff.Day}
	for _, name := range []string{"Europe/Moscow", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
		"America/Sao_Paulo", "America/Havana", "Pacific/Chatham", "Asia/Tehran"} {
		t.Run("3.5 "+name, func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, name)
			changes := 0
			for at := time.Date(1990, 1, 1, 0, 0, 0, 0, loc); at.Year() < 2040; {
				_, end := at.ZoneBounds()
				if end.IsZero() {
					break // no further change
				}
				_, before := end.Add(-time.Second).Zone()
				_, after := end.Zone()
				at = end
				if before == after {
					continue // a new abbreviation, same offset
				}
				changes++
				// The wall times read as UTC: the change runs from end+before to end+after.
				mid := end.Add(time.Duration(before+after) / 2 * time.Second).UTC()
				naive := time.Date(mid.Year(), mid.Month(), mid.Day(), mid.Hour(), mid.Minute(), mid.Second(), 0, time.UTC)
				anchor := time.Date(naive.Year(), naive.Month(), naive.Day()-1, naive.Hour(), naive.Minute(), naive.Second(), 0, loc)
				want := naive.Add(-time.Duration(before) * time.Second)
				got := day.End(anchor, 1, loc)
				require.True(t, want.Equal(got), "change at %s (%+ds → %+ds): anchor %s, got %s, want %s",
					end, before, after, anchor, got, want.In(loc))
			}
			require.Greater(t, changes, 10)
		})
	}
}

// handDaysIn is the Gregorian month length, written out without the time package.
func handDaysIn(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// TestPeriodEndProperties checks for random anchors, locations, periods and n that ends
// strictly increase with n, and that monthly and yearly ends keep the anchor's day of
// month clamped to the month's length and its wall-clock time (unless a DST gap moved it).
func TestPeriodEndProperties(t *testing.T) {
	t.Parallel()
	names := []string{"UTC", "Europe/Moscow", "America/New_York", "Europe/Berlin",
		"Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "America/Havana"}
	locs := make([]*time.Location, len(names))
	for i, name := range names {
		locs[i] = mustLoad(t, name)
	}
	units := []tariff.Unit{tariff.Day, tariff.Week, tariff.Month, tariff.Year}
	lo := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hi := time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var gaps atomic.Int64 // monthly ends whose wall time fell into a DST gap
	defer func() { t.Logf("%d monthly ends fell into a DST gap", gaps.Load()) }()
	rapid.Check(t, func(t *rapid.T) {
		loc := rapid.SampledFrom(locs).Draw(t, "loc")
		var anchor time.Time
		if rapid.Bool().Draw(t, "civil") {
			// Early-morning and late-evening wall times on any day, where DST changes fall.
			hour := rapid.SampledFrom([]int{0, 1, 2, 3, 22, 23}).Draw(t, "hour")
			anchor = time.Date(rapid.IntRange(1971, 2089).Draw(t, "year"), time.Month(rapid.IntRange(1, 12).Draw(t, "month")),
				rapid.IntRange(1, 31).Draw(t, "day"), hour, rapid.IntRange(0, 59).Draw(t, "minute"), 0, 0, loc)
		} else {
			anchor = time.Unix(0, rapid.Int64Range(lo, hi).Draw(t, "anchor")).In(loc)
		}
		p := tariff.Period{Count: rapid.IntRange(1, 24).Draw(t, "count"), Unit: rapid.SampledFrom(units).Draw(t, "unit")}
		n := rapid.IntRange(-50, 200).Draw(t, "n")

		end, next := p.End(anchor, n, loc), p.End(anchor, n+1, loc)
		if !next.After(end) {
			t.Fatalf("End(%d) = %s is not after End(%d) = %s", n+1, next, n, end)
		}
		if p.Unit != tariff.Month && p.Unit != tariff.Year {
			return
		}
		months := n * p.Count
		if p.Unit == tariff.Year {
			months *= 12
		}
		total := anchor.Year()*12 + int(anchor.Month()) - 1 + months
		wantY, wantM := total/12, total%12+1
		wantD := min(anchor.Day(), handDaysIn(wantY, wantM))
		ah, am, as := anchor.Clock()
		if wallExists(wantY, wantM, wantD, ah, am, as, anchor.Nanosecond(), loc) {
			want := [7]int{wantY, wantM, wantD, ah, am, as, anchor.Nanosecond()}
			h, mi, s := end.Clock()
			got := [7]int{end.Year(), int(end.Month()), end.Day(), h, mi, s, end.Nanosecond()}
			if got != want {
				t.Fatalf("End(%d) = %s, want civil %v", n, end, want)
			}
		} else if gaps.Add(1); end.Year() != wantY || int(end.Month()) != wantM || end.Day() < wantD {
			t.Fatalf("End(%d) = %s in a gap, want on or after %d-%02d-%02d", n, end, wantY, wantM, wantD)
		}
	})
}

// wallExists reports whether loc's clocks ever read the civil time, trying every UTC
// offset loc has in the four days around it (sampled hourly).
func wallExists(y, m, d, hh, mm, ss, ns int, loc *time.Location) bool {
	naive := time.Date(y, time.Month(m), d, hh, mm, ss, ns, time.UTC)
	for h := -48; h <= 48; h++ {
		_, off := naive.Add(time.Duration(h) * time.Hour).In(loc).Zone()
		got := naive.Add(-time.Duration(off) * time.Second).In(loc)
		gh, gm, gs := got.Clock()
		if got.Year() == y && int(got.Month()) == m && got.Day() == d && gh == hh && gm == mm && gs == ss {
			return true
		}
	}
	return false
}

func BenchmarkPeriodEnd(b *testing.B) {
	msk := mustLoad(b, "Europe/Moscow")
	p := tariff.Period{Count: 1, Unit: tariff.Month}
	anchor := time.Date(2024, 1, 31, 15, 4, 5, 0, msk)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = p.End(anchor, i%120+1, msk)
	}
}
