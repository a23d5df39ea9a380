package ledger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/ledger"
)

// date is a wall-clock instant in loc.
func date(loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, loc)
}

func mustPlan(t testing.TB, total int64, start, end time.Time, loc *time.Location) ledger.Plan {
	t.Helper()
	p, err := ledger.NewPlan(total, start, end, loc)
	require.NoError(t, err)
	return p
}

func TestPlanEarnedBy(t *testing.T) {
	t.Parallel()

	jan := func(d, hh, mm int) time.Time { return date(moscow, 2026, time.January, d, hh, mm) }
	janStart, febStart := jan(1, 0, 0), date(moscow, 2026, time.February, 1, 0, 0)
	tests := []struct {
		name       string
		total      int64
		start, end time.Time
		loc        *time.Location
		at         time.Time
		days       int64
		want       int64
	}{
		{"3.1 nothing is earned at the start", 3100, janStart, febStart, moscow, janStart, 31, 0},
		{"nothing is earned before the start", 3100, janStart, febStart, moscow, janStart.Add(-time.Hour), 31, 0},
		{"a day is not earned until it has fully passed", 3100, janStart, febStart, moscow, jan(1, 23, 59), 31, 0},
		{"a day is earned at the midnight that ends it", 3100, janStart, febStart, moscow, jan(2, 0, 0), 31, 100},
		{"mid period: fifteen days passed", 3100, janStart, febStart, moscow, jan(16, 12, 0), 31, 1500},
		{"last minute before the end", 3100, janStart, febStart, moscow, jan(31, 23, 59), 31, 3000},
		{"3.1 everything is earned when the duration ends", 3100, janStart, febStart, moscow, febStart, 31, 3100},
		{"nothing more after the end", 3100, janStart, febStart, moscow, febStart.AddDate(1, 0, 0), 31, 3100},
		{"a month of 28 days", 2800, date(moscow, 2026, 2, 1, 0, 0), date(moscow, 2026, 3, 1, 0, 0), moscow,
			date(moscow, 2026, 2, 15, 0, 0), 28, 1400},
		{"anchored period Jan 31 → Feb 28 has 28 days", 2800, jan(31, 14, 0), date(moscow, 2026, 2, 28, 14, 0), moscow,
			date(moscow, 2026, 2, 1, 0, 0), 28, 100},
		{"anchored period: end's partial date earns nothing, so all is earned at its midnight", 2800, jan(31, 14, 0),
			date(moscow, 2026, 2, 28, 14, 0), moscow, date(moscow, 2026, 2, 28, 0, 0), 28, 2800},
		{"awkward total: 99001 kopecks over 31 days, first day takes a remainder kopeck", 99001, janStart, febStart, moscow,
			jan(2, 0, 0), 31, 3194},
		{"awkward total: the 18 remainder kopecks go to the first 18 days", 99001, janStart, febStart, moscow,
			jan(19, 0, 0), 31, 18 * 3194},
		{"awkward total: from day 19 on the days earn 3193", 99001, janStart, febStart, moscow,
			jan(20, 0, 0), 31, 18*3194 + 3193},
		{"awkward total: exact at the end", 99001, janStart, febStart, moscow, febStart, 31, 99001},
		{"DST spring: a 23-hour day is one day", 3100, date(berlin, 2026, 3, 1, 0, 0), date(berlin, 2026, 4, 1, 0, 0), berlin,
			date(berlin, 2026, 3, 30, 0, 0), 31, 2900},
		{"DST spring: the short day is not earned before its midnight", 3100, date(berlin, 2026, 3, 1, 0, 0),
			date(berlin, 2026, 4, 1, 0, 0), berlin, date(berlin, 2026, 3, 29, 23, 59), 31, 2800},
		{"DST autumn: a 25-hour day is one day", 3100, date(berlin, 2026, 10, 1, 0, 0), date(berlin, 2026, 11, 1, 0, 0), berlin,
			date(berlin, 2026, 10, 26, 0, 0), 31, 2500},
		{"DST jump over midnight: the day is earned when the jump lands", 3100, date(havana, 2026, 3, 1, 0, 0),
			date(havana, 2026, 4, 1, 0, 0), havana, date(havana, 2026, 3, 8, 1, 0), 31, 700},
		{"DST jump over midnight: not before", 3100, date(havana, 2026, 3, 1, 0, 0),
			date(havana, 2026, 4, 1, 0, 0), havana, date(havana, 2026, 3, 8, 1, 0).Add(-time.Second), 31, 600},
		{"6.3 dates are counted in the subscription's location (Moscow)", 3100, janStart, febStart, moscow, jan(1, 12, 0), 31, 0},
		{"6.3 dates are counted in the subscription's location (UTC sees Jan 1 as the second date)", 3100, janStart, febStart,
			time.UTC, jan(1, 12, 0), 31, 100},
		{"a period within one date is earned at its end", 500, jan(5, 10, 0), jan(5, 20, 0), moscow, jan(5, 19, 59), 1, 0},
		{"a period within one date: all at the end", 500, jan(5, 10, 0), jan(5, 20, 0), moscow, jan(5, 20, 0), 1, 500},
		{"a free period earns nothing", 0, janStart, febStart, moscow, jan(20, 0, 0), 31, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustPlan(t, tt.total, tt.start, tt.end, tt.loc)
			require.Equal(t, tt.days, p.Days())
			require.Equal(t, tt.want, p.EarnedBy(tt.at))
		})
	}
}

func TestPlanEarlyEnd(t *testing.T) {
	t.Parallel()
	start, end := date(moscow, 2026, 1, 1, 0, 0), date(moscow, 2026, 2, 1, 0, 0)
	p := mustPlan(t, 99001, start, end, moscow)
	ended := date(moscow, 2026, 1, 10, 15, 0)

	tests := []struct {
		name            string
		endedAt, at     time.Time
		want            int64
		alreadyBooked   int64
		wantToRecognize int64
	}{
		{"3.1 volume used up: the rest is earned at once", ended, ended, 99001, 9 * 3194, 99001 - 9*3194},
		{"3.1 before the early end the straight line holds", ended, ended.Add(-time.Minute), 9 * 3194, 9 * 3194, 0},
		{"2.1.2 terminated later on: still everything", ended, end.Add(time.Hour), 99001, 0, 99001},
		{"an end at the period's end is no early end", end, end.Add(-time.Minute), 99001 - 3193, 0, 99001 - 3193},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, p.EarnedEarlyEnd(tt.endedAt, tt.at))
			got, err := p.ToRecognize(tt.alreadyBooked, tt.at, &tt.endedAt)
			require.NoError(t, err)
			require.Equal(t, tt.wantToRecognize, got)
		})
	}
}

func TestPlanToRecognize(t *testing.T) {
	t.Parallel()
	start, end := date(moscow, 2026, 1, 1, 0, 0), date(moscow, 2026, 2, 1, 0, 0)
	p := mustPlan(t, 3100, start, end, moscow)
	tests := []struct {
		name    string
		already int64
		at      time.Time
		want    int64
		err     error
	}{
		{"first run books what is earned", 0, date(moscow, 2026, 1, 11, 3, 0), 1000, nil},
		{"a second run the same day books nothing", 1000, date(moscow, 2026, 1, 11, 23, 0), 0, nil},
		{"the next day books one day", 1000, date(moscow, 2026, 1, 12, 0, 0), 100, nil},
		{"more booked than earned (total lowered by a refund) books nothing, never negative", 2000,
			date(moscow, 2026, 1, 11, 3, 0), 0, nil},
		{"at the end the rest is booked", 3000, end, 100, nil},
		{"fully booked books nothing", 3100, end.AddDate(0, 1, 0), 0, nil},
		{"booked more than the total", 3101, end, 0, ledger.ErrRecognizedOutOfRange},
		{"negative booked", -1, end, 0, ledger.ErrRecognizedOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.ToRecognize(tt.already, tt.at, nil)
			if tt.err != nil {
				requireErrors(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewPlanRefuses(t *testing.T) {
	t.Parallel()
	start, end := date(moscow, 2026, 1, 1, 0, 0), date(moscow, 2026, 2, 1, 0, 0)
	tests := []struct {
		name       string
		total      int64
		start, end time.Time
		loc        *time.Location
	}{
		{"negative total", -1, start, end, moscow},
		{"end before start", 100, end, start, moscow},
		{"empty period", 100, start, start, moscow},
		{"zero start", 100, time.Time{}, end, moscow},
		{"zero end", 100, start, time.Time{}, moscow},
		{"nil location", 100, start, end, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ledger.NewPlan(tt.total, tt.start, tt.end, tt.loc)
			requireErrors(t, err, ledger.ErrInvalidPlan)
		})
	}
}

func TestPlanSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		total      int64
		start, end time.Time
		loc        *time.Location
		first      []int64 // the first shares
		last       int64
		days       int
		firstDate  string
		lastDate   string
	}{
		{"99001 kopecks over 31 days: 18 days of 3194, then 3193", 99001,
			date(moscow, 2026, 1, 1, 0, 0), date(moscow, 2026, 2, 1, 0, 0), moscow,
			[]int64{3194, 3194}, 3193, 31, "2026-01-01", "2026-01-31"},
		{"anchored Jan 31 → Feb 28: dates Jan 31 to Feb 27", 100,
			date(moscow, 2026, 1, 31, 14, 0), date(moscow, 2026, 2, 28, 14, 0), moscow,
			[]int64{4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3}, 3, 28, "2026-01-31", "2026-02-27"},
		{"a total smaller than the day count: one kopeck each to the first days", 2,
			date(moscow, 2026, 2, 1, 0, 0), date(moscow, 2026, 3, 1, 0, 0), moscow,
			[]int64{1, 1, 0}, 0, 28, "2026-02-01", "2026-02-28"},
		{"a period within one date is one day", 500,
			date(moscow, 2026, 2, 1, 10, 0), date(moscow, 2026, 2, 1, 11, 0), moscow,
			[]int64{500}, 500, 1, "2026-02-01", "2026-02-01"},
		{"Havana's skipped midnight keeps its date", 3100,
			date(havana, 2026, 3, 1, 0, 0), date(havana, 2026, 4, 1, 0, 0), havana,
			[]int64{100}, 100, 31, "2026-03-01", "2026-03-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustPlan(t, tt.total, tt.start, tt.end, tt.loc).Schedule()
			require.Len(t, s, tt.days)
			var sum int64
			for i, d := range s {
				sum += d.Amount
				if i > 0 {
					require.Equal(t, s[i-1].Date.AddDate(0, 0, 1), d.Date, "consecutive dates")
				}
			}
			require.Equal(t, tt.total, sum)
			for i, want := range tt.first {
				require.Equal(t, want, s[i].Amount, "day %d", i)
			}
			require.Equal(t, tt.last, s[len(s)-1].Amount)
			require.Equal(t, tt.firstDate, s[0].Date.Format(time.DateOnly))
			require.Equal(t, tt.lastDate, s[len(s)-1].Date.Format(time.DateOnly))
		})
	}
}

// TestPlanProperties checks the rule on random plans: earned starts at 0, ends at the total,
// never decreases, equals the schedule's prefix sums, and booking ToRecognize at random
// increasing instants adds up to exactly the total.
func TestPlanProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		loc := mustLocation(rapid.SampledFrom([]string{"Europe/Moscow", "Europe/Berlin", "America/Havana", "UTC"}).Draw(t, "loc"))
		base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		start := time.Unix(base+rapid.Int64Range(0, 10*365*86400).Draw(t, "start"), 0)
		length := time.Duration(rapid.Int64Range(0, 400).Draw(t, "days"))*24*time.Hour +
			time.Duration(rapid.Int64Range(1, 86400).Draw(t, "seconds"))*time.Second
		end := start.Add(length)
		total := rapid.OneOf(rapid.Int64Range(0, 100), rapid.Int64Range(0, 1<<50)).Draw(t, "total")
		p, err := ledger.NewPlan(total, start, end, loc)
		require.NoError(t, err)

		require.Zero(t, p.EarnedBy(start))
		require.Equal(t, total, p.EarnedBy(end))

		schedule := p.Schedule()
		require.Len(t, schedule, int(p.Days()))
		var sum int64
		for _, d := range schedule {
			require.GreaterOrEqual(t, d.Amount, int64(0))
			sum += d.Amount
		}
		require.Equal(t, total, sum)

		// Sweep the period in steps of about an hour: earned never decreases and equals the
		// schedule's shares of the dates before at's date.
		step := time.Hour + time.Duration(rapid.IntRange(-1800, 1800).Draw(t, "step jitter"))*time.Second
		var last, prefix int64
		next := 0 // index of the first schedule day not yet in prefix
		for at := start.Add(time.Second); at.Before(end); at = at.Add(step) {
			y, m, d := at.In(loc).Date()
			today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			for next < len(schedule) && schedule[next].Date.Before(today) {
				prefix += schedule[next].Amount
				next++
			}
			earned := p.EarnedBy(at)
			require.Equal(t, prefix, earned, "at %s", at.In(loc))
			require.GreaterOrEqual(t, earned, last)
			last = earned
		}
		require.LessOrEqual(t, last, total)

		span := end.Sub(start)
		var booked int64
		at := start
		for range rapid.IntRange(0, 20).Draw(t, "runs") {
			at = at.Add(time.Duration(rapid.Int64Range(0, int64(span)/3).Draw(t, "step")))
			n, err := p.ToRecognize(booked, at, nil)
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, int64(0))
			booked += n
			require.Equal(t, p.EarnedBy(at), booked)
		}
		n, err := p.ToRecognize(booked, end, nil)
		require.NoError(t, err)
		require.Equal(t, total, booked+n)
	})
}
