// Package calendar owns civil dates, the Russian production calendar (which days
// are working days) and the legal deadlines counted on it: Civil Code art. 191 (a
// period counted in days starts on the day after the event), art. 193 (a period
// whose last day is a non-working day ends on the next working day) and art. 194
// (an act may be done until 24:00 of the last day). Refunds (TERMS 3.7, 3.8),
// account deletion (2.2.4) and claims (6.2) count on it.
//
// The package is pure: no I/O beyond the io.Reader handed to LoadXML, no clock, no
// logging. Time zones come in as a *time.Location parameter; the IANA database is
// embedded (see tzdata.go), so Europe/Moscow works in a bare container.
//
// Invariants:
//   - A *Calendar never changes after it is built. Every method only reads, so a
//     Calendar is safe for concurrent use, and Russia() hands out a calendar no
//     caller can alter: adding a year (WithXML) returns a new Calendar.
//   - A computing method either returns a valid Date or an error; it never
//     normalises a bad input (Feb 30, n = 0) into a plausible but wrong date.
//     Boolean methods never panic: IsWorkday of an invalid Date is false.
//   - A year is Known only when its days come from an official decree (built in,
//     or loaded from an xmlcalendar.ru file). Every other year is provisional: the
//     base rules of Labour Code art. 112 projected onto it, which the government's
//     yearly decree usually changes. Deadlines that reach a provisional year are
//     provisional too; check Known before treating them as final.
//   - Working-day lookups go through per-year bitsets: IsWorkday and AddWorkdays
//     allocate nothing.
package calendar

import (
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// BusinessCalendar is what the refund package and the engine need from a production
// calendar. *Calendar (Russia) satisfies it; to serve another country, implement it
// over that country's decrees and pass it wherever a BusinessCalendar is accepted.
//
// Implementations must be safe for concurrent use and, like *Calendar, must return an
// error, never a wrong date, for an invalid event, an n outside 1..MaxCount or an
// unknown unit.
type BusinessCalendar interface {
	// IsWorkday reports whether d is a working day; false for an invalid d.
	IsWorkday(d Date) bool
	// Deadline returns the last day of a period of n units that starts the day after
	// event (art. 191), moved to the next working day when it is not one (art. 193).
	Deadline(event Date, n int, unit Unit) (Date, error)
}

// Calendar is a production calendar: for every date, whether it is a working day.
// It holds the years that come from decrees (Known) and projects Labour Code art. 112
// onto every other year (provisional). Get one from Russia, LoadXML or WithXML.
//
// The zero Calendar, and a nil *Calendar, behave as Russia(): a forgotten calendar
// still counts on the Russian one (TERMS 6.3) rather than on bare weekends.
// A Calendar is immutable and safe for concurrent use; copying one is cheap and shares
// its data.
type Calendar struct {
	data *calendarData // nil means Russia's built-in data
}

// MaxCount is the largest n that AddWorkdays and Deadline accept: about 400 years of
// working days. A larger n is a bug in the caller, refused with ErrInvalidCount.
const MaxCount = 100_000

// Unit is the unit in which Deadline counts a period.
type Unit uint8

// The units of Deadline. The zero Unit is neither: forgetting to choose one is an
// error (ErrInvalidUnit), never a silent default.
const (
	// BusinessDays counts working days of the calendar (TERMS 2.2.4, 3.7, 6.2).
	BusinessDays Unit = iota + 1
	// CalendarDays counts every day; the last day still moves to the next working day
	// when it is a non-working one (art. 193; TERMS 3.8).
	CalendarDays
)

// String returns "business days" or "calendar days".
func (u Unit) String() string {
	switch u {
	case BusinessDays:
		return "business days"
	case CalendarDays:
		return "calendar days"
	default:
		return fmt.Sprintf("Unit(%d)", uint8(u))
	}
}

// Errors of the computing methods, testable with errors.Is. ErrInvalidDate (date.go)
// and ErrInvalidXML (xml.go) complete the set.
var (
	// ErrInvalidCount is returned for n < 1 or n > MaxCount.
	ErrInvalidCount = errors.New("calendar: count out of range")
	// ErrInvalidUnit is returned for a Unit other than BusinessDays and CalendarDays.
	ErrInvalidUnit = errors.New("calendar: unknown unit")
	// ErrOutOfRange is returned when a result would fall after year MaxYear, or for a
	// year outside MinYear..MaxYear.
	ErrOutOfRange = errors.New("calendar: date out of range")
)

// IsWorkday reports whether d is a working day. An invalid d is not one: the result
// is false, never a panic.
func (c *Calendar) IsWorkday(d Date) bool {
	if !d.Valid() {
		return false
	}
	var buf yearDays
	return c.year(d.Year, &buf).work.has(dayOfYear(d))
}

// AddWorkdays returns the n-th working day after d; d itself is not counted, even
// when it is a working day (Civil Code art. 191: the period starts the next day).
// So AddWorkdays(Friday, 1) is the next Monday, unless that is a holiday.
//
// It returns ErrInvalidDate for an invalid d, ErrInvalidCount for n outside
// 1..MaxCount and ErrOutOfRange when the answer would fall after MaxYear.
func (c *Calendar) AddWorkdays(d Date, n int) (Date, error) {
	if err := d.Validate(); err != nil {
		return Date{}, err
	}
	if n < 1 || n > MaxCount {
		return Date{}, fmt.Errorf("%w: n = %d, want 1..%d", ErrInvalidCount, n, MaxCount)
	}
	var buf yearDays
	year, from := d.Year, dayOfYear(d)+1
	for year <= MaxYear {
		y := c.year(year, &buf)
		if left := y.work.count(from, daysInYear(year)); n > left {
			n -= left
		} else {
			return dateOfYearDay(year, y.work.nth(from, n)), nil
		}
		year, from = year+1, 0
	}
	return Date{}, fmt.Errorf("%w: working days from %s run past year %d", ErrOutOfRange, d, MaxYear)
}

// Deadline returns the last day of a period of n units that starts on the day after
// event (art. 191); when that day is not a working day, the next working day (art.
// 193). The act is in time until 24:00 of that day in the relevant location (art.
// 194): compare against the returned Date's EndsAt(loc).
//
// With BusinessDays the last day is AddWorkdays(event, n) and is always a working day.
// With CalendarDays it is event.AddDays(n), moved forward if needed: a request
// received on 2024-12-25 has 10 calendar days until 2025-01-04, a Saturday in the New
// Year holidays, so the deadline is 2025-01-09.
//
// Errors as for AddWorkdays, plus ErrInvalidUnit.
func (c *Calendar) Deadline(event Date, n int, unit Unit) (Date, error) {
	if err := event.Validate(); err != nil {
		return Date{}, err
	}
	if n < 1 || n > MaxCount {
		return Date{}, fmt.Errorf("%w: n = %d, want 1..%d", ErrInvalidCount, n, MaxCount)
	}
	switch unit {
	case BusinessDays:
		return c.AddWorkdays(event, n)
	case CalendarDays:
		last := event.AddDays(n)
		if !last.Valid() {
			return Date{}, fmt.Errorf("%w: %s plus %d days is past year %d", ErrOutOfRange, event, n, MaxYear)
		}
		if c.IsWorkday(last) {
			return last, nil
		}
		return c.AddWorkdays(last, 1)
	default:
		return Date{}, fmt.Errorf("%w: %s", ErrInvalidUnit, unit)
	}
}

// WorkdaysIn returns the number of working days in a month. It returns ErrOutOfRange
// for a year outside MinYear..MaxYear and ErrInvalidDate for a month outside 1..12.
func (c *Calendar) WorkdaysIn(year int, month time.Month) (int, error) {
	first := Date{Year: year, Month: month, Day: 1}
	if year < MinYear || year > MaxYear {
		return 0, fmt.Errorf("%w: year %d", ErrOutOfRange, year)
	}
	if err := first.Validate(); err != nil {
		return 0, err
	}
	var buf yearDays
	from := dayOfYear(first)
	return c.year(year, &buf).work.count(from, from+daysIn(year, month)), nil
}

// Known reports whether year's days come from an official decree, built in or loaded
// from a file. For any other year the calendar answers with the provisional art. 112
// rules, and Known is false: treat such answers as a forecast, not as law.
func (c *Calendar) Known(year int) bool {
	d := c.get()
	i := year - d.first
	return i >= 0 && i < len(d.years) && d.years[i].known
}

// KnownYears returns the Known years in ascending order, in a new slice.
func (c *Calendar) KnownYears() []int {
	d := c.get()
	var out []int
	for i, y := range d.years {
		if y.known {
			out = append(out, d.first+i)
		}
	}
	return out
}

// get returns the calendar's data; the zero and the nil Calendar are Russia.
func (c *Calendar) get() *calendarData {
	if c == nil || c.data == nil {
		return russiaData()
	}
	return c.data
}

// year returns the working days of year y: the calendar's own entry when it has one,
// else the provisional art. 112 year, from the shared table or computed into buf.
// y must be within MinYear..MaxYear.
func (c *Calendar) year(y int, buf *yearDays) *yearDays {
	d := c.get()
	if i := y - d.first; i >= 0 && i < len(d.years) {
		return &d.years[i]
	}
	return provisional(y, buf)
}

// calendarData is the immutable content of a Calendar: one entry per year for the
// contiguous run of years first..first+len(years)-1 that covers every Known year.
// Years of the run that no decree covers hold their provisional days, known false.
type calendarData struct {
	first int
	years []yearDays
}

// withYear returns a copy of d in which year y holds days; d is left untouched.
func (d *calendarData) withYear(y int, days yearDays) *calendarData {
	if len(d.years) == 0 {
		return &calendarData{first: y, years: []yearDays{days}}
	}
	first, last := min(d.first, y), max(d.first+len(d.years)-1, y)
	out := &calendarData{first: first, years: make([]yearDays, last-first+1)}
	for i := range out.years {
		year := first + i
		if j := year - d.first; j >= 0 && j < len(d.years) {
			out.years[i] = d.years[j]
		} else {
			provisional(year, &out.years[i])
		}
	}
	out.years[y-first] = days
	return out
}

// yearDays holds which days of one year are working days.
type yearDays struct {
	// work has bit i set when day i of the year (Jan 1 is 0) is a working day. Bits
	// past the year's last day are always clear.
	work bitset
	// known is true when the days come from a decree, false when provisional.
	known bool
}

// bitset is a set of day-of-year indexes, 0 to 383.
type bitset [6]uint64

func (b *bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b *bitset) clear(i int)    { b[i>>6] &^= 1 << (i & 63) }
func (b *bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// count returns the number of members in [from, to), 0 ≤ from ≤ to ≤ 384.
func (b *bitset) count(from, to int) int {
	n := 0
	for w := from >> 6; w < len(b) && w<<6 < to; w++ {
		word := b[w]
		if lo := from - w<<6; lo > 0 {
			word &^= 1<<lo - 1
		}
		if hi := to - w<<6; hi < 64 {
			word &= 1<<hi - 1
		}
		n += bits.OnesCount64(word)
	}
	return n
}

// nth returns the n-th (n ≥ 1) member at or after from, or -1 when there are fewer.
func (b *bitset) nth(from, n int) int {
	for w := from >> 6; w < len(b); w++ {
		word := b[w]
		if lo := from - w<<6; lo > 0 {
			word &^= 1<<lo - 1
		}
		if c := bits.OnesCount64(word); n > c {
			n -= c
			continue
		}
		for ; n > 1; n-- {
			word &= word - 1 // drop the lowest member
		}
		return w<<6 + bits.TrailingZeros64(word)
	}
	return -1
}
