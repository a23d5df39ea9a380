package calendar

import (
	"sync"
	"time"
)

// Russia returns the Russian production calendar of a five-day week (Saturday and
// Sunday off), with the government decrees on moving days off built in for the
// years whose decrees it holds (2024, 2025 and 2026); those years are Known.
//
// Every other year is provisional and NOT official: it applies the base rules of
// Labour Code art. 112 — Jan 1–8, Feb 23, Mar 8, May 1, May 9, Jun 12 and Nov 4 are
// non-working holidays, and a holiday other than Jan 1–8 that falls on a Saturday or
// Sunday moves the day off to the next working day — but none of the extra moves the
// yearly decree makes (for 2026 the decree also gave Jan 9 and Dec 31 off, so the
// provisional 2026 would have had two working days more). Each autumn, load the next
// year's decree with WithXML before relying on deadlines that reach into it.
//
// The data is built once and shared; every call returns its own *Calendar, and no
// method changes a Calendar, so callers cannot corrupt each other's calendar.
func Russia() *Calendar { return &Calendar{data: russiaData()} }

// decree is one year's government decree on moving days off: which weekdays are off
// (holidays and moved days off) and which Saturdays or Sundays are working days.
// Ordinary Saturdays and Sundays not listed are off.
type decree struct {
	year int
	// off lists, per month, the days of the month that are weekdays but not working days.
	off map[time.Month][]int
	// work lists, per month, the days of the month that are Saturdays or Sundays but
	// working days.
	work map[time.Month][]int
}

// russianDecrees are the decrees built into Russia. Year totals: 2024 has 248
// working days, 2025 and 2026 have 247 each.
var russianDecrees = []decree{
	{
		year: 2024,
		off: map[time.Month][]int{
			time.January:  {1, 2, 3, 4, 5, 8},
			time.February: {23},
			time.March:    {8},
			time.April:    {29, 30},
			time.May:      {1, 9, 10},
			time.June:     {12},
			time.November: {4},
			time.December: {30, 31},
		},
		work: map[time.Month][]int{
			time.April:    {27},
			time.November: {2},
			time.December: {28},
		},
	},
	{
		year: 2025,
		off: map[time.Month][]int{
			time.January:  {1, 2, 3, 6, 7, 8},
			time.May:      {1, 2, 8, 9},
			time.June:     {12, 13},
			time.November: {3, 4},
			time.December: {31},
		},
		work: map[time.Month][]int{
			time.November: {1},
		},
	},
	{
		year: 2026,
		off: map[time.Month][]int{
			time.January:  {1, 2, 5, 6, 7, 8, 9},
			time.February: {23},
			time.March:    {9},
			time.May:      {1, 11},
			time.June:     {12},
			time.November: {4},
			time.December: {31},
		},
	},
}

// russiaData builds the shared, immutable data of Russia once.
var russiaData = sync.OnceValue(func() *calendarData {
	d := &calendarData{}
	for _, dec := range russianDecrees {
		y := weekends(dec.year)
		for m, days := range dec.off {
			for _, day := range days {
				y.work.clear(dayOfYear(Date{Year: dec.year, Month: m, Day: day}))
			}
		}
		for m, days := range dec.work {
			for _, day := range days {
				y.work.set(dayOfYear(Date{Year: dec.year, Month: m, Day: day}))
			}
		}
		y.known = true
		d = d.withYear(dec.year, y)
	}
	return d
})

// art112Holidays are the non-working holidays of Labour Code art. 112 part 1, after
// the New Year holidays (Jan 1–8), whose weekend days art. 112 part 2 moves to the
// next working day.
var art112Holidays = [...]struct {
	month time.Month
	day   int
}{
	{time.February, 23}, // Defender of the Fatherland Day
	{time.March, 8},     // International Women's Day
	{time.May, 1},       // Spring and Labour Day
	{time.May, 9},       // Victory Day
	{time.June, 12},     // Russia Day
	{time.November, 4},  // Unity Day
}

// The years whose provisional days are computed once and shared; any other year is
// computed on each use, into the caller's buffer, still without allocating.
const (
	provisionalFirst = 1900
	provisionalLast  = 2399
)

var provisionalTable = sync.OnceValue(func() []yearDays {
	t := make([]yearDays, provisionalLast-provisionalFirst+1)
	for i := range t {
		t[i] = art112Year(provisionalFirst + i)
	}
	return t
})

// provisional returns the art. 112 days of year y, from the shared table or computed
// into buf.
func provisional(y int, buf *yearDays) *yearDays {
	if y >= provisionalFirst && y <= provisionalLast {
		return &provisionalTable()[y-provisionalFirst]
	}
	*buf = art112Year(y)
	return buf
}

// art112Year projects the base rules of Labour Code art. 112 onto year y: weekends
// off, Jan 1–8 off (no move when they fall on a weekend: that is left to the decree),
// the other holidays off, and a holiday on a weekend moves the day off to the next
// working day after it.
func art112Year(y int) yearDays {
	yd := weekends(y)
	for day := 1; day <= 8; day++ {
		yd.work.clear(dayOfYear(Date{Year: y, Month: time.January, Day: day}))
	}
	holiday := func(i int) bool {
		for _, h := range art112Holidays {
			if dayOfYear(Date{Year: y, Month: h.month, Day: h.day}) == i {
				return true
			}
		}
		return false
	}
	n := daysInYear(y)
	for _, h := range art112Holidays {
		d := Date{Year: y, Month: h.month, Day: h.day}
		i := dayOfYear(d)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			yd.work.clear(i)
			continue
		}
		for j := i + 1; j < n; j++ {
			if yd.work.has(j) && !holiday(j) {
				yd.work.clear(j)
				break
			}
		}
	}
	return yd
}

// weekends returns year y with Monday to Friday working and Saturday, Sunday off.
func weekends(y int) yearDays {
	var yd yearDays
	wd := Date{Year: y, Month: time.January, Day: 1}.Weekday()
	for i, n := 0, daysInYear(y); i < n; i++ {
		if wd != time.Saturday && wd != time.Sunday {
			yd.work.set(i)
		}
		wd = (wd + 1) % 7
	}
	return yd
}
