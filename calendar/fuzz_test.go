package calendar_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
)

// fuzzDate maps any fuzz input onto a valid date of 1990–2109, across the built-in
// decrees, the precomputed provisional years and both century rules for Feb 29.
func fuzzDate(yearSeed uint16, yday uint16) calendar.Date {
	year := 1990 + int(yearSeed%120)
	t := time.Date(year, time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(yday%365))
	return calendar.DateOf(t, time.UTC)
}

// slowDeadline is the day-by-day reference of Deadline, on refIsWorkday and package
// time only: count n days (every day, or only working days) from the day after event,
// then step to the next working day while the last day is not one.
func slowDeadline(event calendar.Date, n int, unit calendar.Unit) calendar.Date {
	t := time.Date(event.Year, event.Month, event.Day, 0, 0, 0, 0, time.UTC)
	at := func() calendar.Date { return calendar.DateOf(t, time.UTC) }
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if unit == calendar.CalendarDays || refIsWorkday(at()) {
			n--
		}
	}
	for !refIsWorkday(at()) {
		t = t.AddDate(0, 0, 1)
	}
	return at()
}

func FuzzAddWorkdays(f *testing.F) {
	for _, seed := range []struct {
		year, yday, n uint16
	}{
		{34, 360, 1},   // 2024-12-27, the working Saturday
		{34, 116, 2},   // 2024-04-26, the working Saturday before May
		{35, 303, 1},   // 2025-10-31, the working Saturday Nov 1
		{35, 363, 5},   // 2025-12-30, New Year 2026
		{36, 363, 30},  // 2026-12-30, into provisional 2027
		{10, 58, 300},  // 2000-02-28, a century leap year
		{110, 58, 300}, // 2100-02-28, a century common year
		{0, 0, 400},
	} {
		f.Add(seed.year, seed.yday, seed.n)
	}
	cal := calendar.Russia()
	f.Fuzz(func(t *testing.T, yearSeed, yday, nSeed uint16) {
		d := fuzzDate(yearSeed, yday)
		n := 1 + int(nSeed%400)
		got, err := cal.AddWorkdays(d, n)
		require.NoError(t, err)
		require.Equal(t, slowDeadline(d, n, calendar.BusinessDays), got, "AddWorkdays(%s, %d)", d, n)
	})
}

func FuzzDeadline(f *testing.F) {
	for _, seed := range []struct {
		year, yday, n uint16
		calendarDays  bool
	}{
		{34, 358, 10, true},  // 2024-12-25 + 10 calendar days ends in the New Year holidays
		{35, 110, 10, true},  // 2025-04-21 + 10 calendar days ends on May 1
		{35, 294, 10, true},  // 2025-10-22 + 10 calendar days ends on the working Saturday
		{35, 304, 5, false},  // 2025-11-01, the working Saturday
		{35, 348, 30, false}, // 2025-12-15 + 30 business days
		{38, 364, 7, true},   // 2028-12-31 of a leap year is day 366; yday 364 is Dec 30
	} {
		f.Add(seed.year, seed.yday, seed.n, seed.calendarDays)
	}
	cal := calendar.Russia()
	f.Fuzz(func(t *testing.T, yearSeed, yday, nSeed uint16, calendarDays bool) {
		d := fuzzDate(yearSeed, yday)
		n := 1 + int(nSeed%400)
		unit := calendar.BusinessDays
		if calendarDays {
			unit = calendar.CalendarDays
		}
		got, err := cal.Deadline(d, n, unit)
		require.NoError(t, err)
		require.Equal(t, slowDeadline(d, n, unit), got, "Deadline(%s, %d, %s)", d, n, unit)
	})
}
