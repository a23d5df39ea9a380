package calendar_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
)

// issueDecrees is the decree data as issue 3 states it, copied here independently of
// russia.go: the weekdays off and the working weekend days of each Known year.
var issueDecrees = map[int]struct{ off, work string }{
	2024: {
		off:  "01-01 01-02 01-03 01-04 01-05 01-08 02-23 03-08 04-29 04-30 05-01 05-09 05-10 06-12 11-04 12-30 12-31",
		work: "04-27 11-02 12-28",
	},
	2025: {
		off:  "01-01 01-02 01-03 01-06 01-07 01-08 05-01 05-02 05-08 05-09 06-12 06-13 11-03 11-04 12-31",
		work: "11-01",
	},
	2026: {
		off:  "01-01 01-02 01-05 01-06 01-07 01-08 01-09 02-23 03-09 05-01 05-11 06-12 11-04 12-31",
		work: "",
	},
}

// decreeWorkday is the slow reference for a Known year: weekdays work, weekends rest,
// except for the days the decree lists.
func decreeWorkday(d calendar.Date) bool {
	dec := issueDecrees[d.Year]
	md := d.String()[5:]
	if strings.Contains(dec.off, md) {
		return false
	}
	if strings.Contains(dec.work, md) {
		return true
	}
	wd := d.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

func TestRussiaDecreeDays(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	for year, dec := range issueDecrees {
		for _, md := range strings.Fields(dec.off) {
			d := day(fmt.Sprintf("%d-%s", year, md))
			t.Run("decree "+d.String()+" weekday off", func(t *testing.T) {
				t.Parallel()
				wd := d.Weekday()
				require.False(t, wd == time.Saturday || wd == time.Sunday, "the issue lists only weekdays as off")
				require.False(t, cal.IsWorkday(d))
			})
		}
		for _, md := range strings.Fields(dec.work) {
			d := day(fmt.Sprintf("%d-%s", year, md))
			t.Run("decree "+d.String()+" working weekend day", func(t *testing.T) {
				t.Parallel()
				require.Equal(t, time.Saturday, d.Weekday())
				require.True(t, cal.IsWorkday(d))
			})
		}
	}
}

// TestRussiaEveryDayOfKnownYears checks every day of 2024–2026 against the decrees.
func TestRussiaEveryDayOfKnownYears(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	for year := range issueDecrees {
		for d := (calendar.Date{Year: year, Month: 1, Day: 1}); d.Year == year; d = d.AddDays(1) {
			require.Equal(t, decreeWorkday(d), cal.IsWorkday(d), "day %s", d)
		}
	}
}

func TestRussiaWorkdaysIn(t *testing.T) {
	t.Parallel()
	// Working days per month of the official production calendars.
	tests := []struct {
		year   int
		months [12]int
		total  int
	}{
		{2024, [12]int{17, 20, 20, 21, 20, 19, 23, 22, 21, 23, 21, 21}, 248},
		{2025, [12]int{17, 20, 21, 22, 18, 19, 23, 21, 22, 23, 19, 22}, 247},
		{2026, [12]int{15, 19, 21, 22, 19, 21, 23, 21, 22, 22, 20, 22}, 247},
	}
	cal := calendar.Russia()
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d year total", tt.year), func(t *testing.T) {
			t.Parallel()
			total := 0
			for m := time.January; m <= time.December; m++ {
				got, err := cal.WorkdaysIn(tt.year, m)
				require.NoError(t, err)
				require.Equal(t, tt.months[m-1], got, "%s %d", m, tt.year)
				total += got
			}
			require.Equal(t, tt.total, total)
		})
	}
}

func TestRussiaWorkdaysInBadInput(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	_, err := cal.WorkdaysIn(2025, 13)
	require.ErrorIs(t, err, calendar.ErrInvalidDate)
	_, err = cal.WorkdaysIn(2025, 0)
	require.ErrorIs(t, err, calendar.ErrInvalidDate)
	_, err = cal.WorkdaysIn(0, time.January)
	require.ErrorIs(t, err, calendar.ErrOutOfRange)
	_, err = cal.WorkdaysIn(10000, time.January)
	require.ErrorIs(t, err, calendar.ErrOutOfRange)
}

func TestRussiaKnown(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	require.Equal(t, []int{2024, 2025, 2026}, cal.KnownYears())
	for _, y := range []int{2023, 2024, 2025, 2026, 2027, 1, 9999} {
		require.Equal(t, y >= 2024 && y <= 2026, cal.Known(y), "year %d", y)
	}
}

// TestRussiaProvisional pins the art. 112 projection for years without a decree.
func TestRussiaProvisional(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		day    calendar.Date
		isWork bool
	}{
		// 2027 begins on a Friday.
		{"art. 112 Jan 1 off", day("2027-01-01"), false},
		{"art. 112 Jan 8 off", day("2027-01-08"), false},
		{"art. 112 no move for Jan 2-3 on a weekend", day("2027-01-11"), true},
		{"art. 112 Feb 23 on a Tuesday off", day("2027-02-23"), false},
		{"art. 112 the Monday before Feb 23 works (no decree bridge)", day("2027-02-22"), true},
		{"art. 112 Mar 8 on a Monday off", day("2027-03-08"), false},
		{"art. 112 May 1 on a Saturday moves to Monday May 3", day("2027-05-03"), false},
		{"art. 112 May 9 on a Sunday moves to Monday May 10", day("2027-05-10"), false},
		{"art. 112 May 11 works", day("2027-05-11"), true},
		{"art. 112 Jun 12 on a Saturday moves to Monday Jun 14", day("2027-06-14"), false},
		{"art. 112 Nov 4 on a Thursday off", day("2027-11-04"), false},
		{"art. 112 Nov 5 works (no decree bridge)", day("2027-11-05"), true},
		{"art. 112 Dec 31 works without a decree", day("2027-12-31"), true},
		// 2028 begins on a Saturday.
		{"art. 112 Jan 1 on a Saturday is not moved", day("2028-01-10"), true},
		{"art. 112 Jan 3 off", day("2028-01-03"), false},
		{"art. 112 Feb 23 on a Wednesday off", day("2028-02-23"), false},
		{"art. 112 Mar 8 on a Wednesday off", day("2028-03-08"), false},
		{"art. 112 May 1 on a Monday off", day("2028-05-01"), false},
		{"art. 112 May 9 on a Tuesday off", day("2028-05-09"), false},
		{"art. 112 Jun 12 on a Monday off", day("2028-06-12"), false},
		{"art. 112 Nov 4 on a Saturday moves to Monday Nov 6", day("2028-11-06"), false},
		{"art. 112 Nov 7 works", day("2028-11-07"), true},
		{"art. 112 Feb 29 of a leap year works", day("2028-02-29"), true},
		// 2023 had a decree too, but it is not built in: provisional.
		{"art. 112 2023 Feb 24 works without the decree", day("2023-02-24"), true},
	}
	cal := calendar.Russia()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.False(t, cal.Known(tt.day.Year))
			require.Equal(t, tt.isWork, cal.IsWorkday(tt.day))
		})
	}
}

func TestRussiaProvisionalYearTotals(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	total := func(year int) int {
		n := 0
		for m := time.January; m <= time.December; m++ {
			got, err := cal.WorkdaysIn(year, m)
			require.NoError(t, err)
			n += got
		}
		return n
	}
	// 2027: 261 weekdays; off: Jan 1, 4–8 (6), Feb 23, Mar 8, May 3, May 10, Jun 14, Nov 4.
	require.Equal(t, 261-12, total(2027))
	// 2028: 260 weekdays; off: Jan 3–7 (5), Feb 23, Mar 8, May 1, May 9, Jun 12, Nov 6.
	require.Equal(t, 260-11, total(2028))
}

// TestProvisionalAgreesWithReference compares IsWorkday with the slow art. 112
// reference over years inside and outside the precomputed table.
func TestProvisionalAgreesWithReference(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	for _, span := range [][2]int{{1990, 2023}, {2027, 2060}, {1, 3}, {1898, 1901}, {2398, 2401}, {9997, 9999}} {
		for d := (calendar.Date{Year: span[0], Month: 1, Day: 1}); d.Valid() && d.Year <= span[1]; d = d.AddDays(1) {
			require.Equal(t, refIsWorkday(d), cal.IsWorkday(d), "day %s", d)
		}
	}
}

func TestRussiaReturnsACalendarCallersCannotCorrupt(t *testing.T) {
	t.Parallel()
	a := calendar.Russia()
	*a = calendar.Calendar{} // the worst a caller can do without unsafe
	b := calendar.Russia()
	require.NotSame(t, a, b)
	require.True(t, b.Known(2025))
	require.False(t, b.IsWorkday(day("2025-05-02")))
	// The zero Calendar, and a nil one, are Russia too.
	require.True(t, a.Known(2025))
	var nilCal *calendar.Calendar
	require.False(t, nilCal.IsWorkday(day("2025-05-02")))
	require.True(t, nilCal.IsWorkday(day("2025-11-01")))
}

func TestCalendarConcurrentReads(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			start := day("2024-01-01").AddDays(g * 37)
			for i := range 500 {
				d := start.AddDays(i)
				_ = cal.IsWorkday(d)
				_, _ = cal.AddWorkdays(d, 30)
				_, _ = calendar.Russia().Deadline(d, 10, calendar.CalendarDays)
			}
		})
	}
	wg.Wait()
}

// refIsWorkday is the slow reference of the whole Russian calendar: the issue's
// decrees for 2024–2026 and art. 112 for other years, written with package time and
// without the package's bitsets.
func refIsWorkday(d calendar.Date) bool {
	if _, ok := issueDecrees[d.Year]; ok {
		return decreeWorkday(d)
	}
	weekend := func(t time.Time) bool { return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday }
	holidays := []time.Time{}
	for _, md := range [][2]int{{2, 23}, {3, 8}, {5, 1}, {5, 9}, {6, 12}, {11, 4}} {
		holidays = append(holidays, time.Date(d.Year, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC))
	}
	isHoliday := func(t time.Time) bool {
		if t.Month() == time.January && t.Day() <= 8 {
			return true
		}
		for _, h := range holidays {
			if h.Equal(t) {
				return true
			}
		}
		return false
	}
	moved := map[time.Time]bool{}
	for _, h := range holidays {
		if !weekend(h) {
			continue
		}
		for t := h.AddDate(0, 0, 1); t.Year() == d.Year; t = t.AddDate(0, 0, 1) {
			if !weekend(t) && !isHoliday(t) && !moved[t] {
				moved[t] = true
				break
			}
		}
	}
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	return !weekend(t) && !isHoliday(t) && !moved[t]
}
