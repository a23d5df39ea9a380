package calendar

import (
	"errors"
	"fmt"
	"time"
)

// Date is a civil date: a day on the wall calendar, with no time of day and no
// location. It is a small value type, compared with == or Compare, like time.Month.
//
// The zero Date is "no date" and is not Valid; every computing method refuses it
// with ErrInvalidDate, and IsWorkday reports false for it. A Date whose fields do
// not name a real day (Feb 30, month 13, year 0) is never normalised into another
// day: it stays invalid, so a mistake surfaces as an error instead of a wrong date.
type Date struct {
	// Year is the year, MinYear to MaxYear (1 to 9999) for a valid Date.
	Year int
	// Month is the month, time.January to time.December.
	Month time.Month
	// Day is the day of the month, 1 to the month's length.
	Day int
}

// The range of years a valid Date may have. Four-digit years keep String
// round-trippable and every day-count computation far from integer overflow.
const (
	MinYear = 1
	MaxYear = 9999
)

// ErrInvalidDate is returned for a Date that does not name a real day in years
// MinYear to MaxYear (the zero Date, Feb 30, month 13), or for a string that is not
// a "2006-01-02" date.
var ErrInvalidDate = errors.New("calendar: invalid date")

// DateOf returns the date of instant t on the wall calendar of loc: the same instant
// can be one date in UTC and the next in Moscow (22:30 UTC is 01:30 the next day at
// UTC+3). A nil loc means Europe/Moscow (see Moscow), the library's default location
// (TERMS 6.3); pass time.UTC explicitly for UTC.
func DateOf(t time.Time, loc *time.Location) Date {
	if loc == nil {
		loc = Moscow()
	}
	y, m, d := t.In(loc).Date()
	return Date{Year: y, Month: m, Day: d}
}

// ParseDate parses the "2006-01-02" form that String writes. It accepts exactly ten
// characters and refuses a day that does not exist (ErrInvalidDate).
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return Date{}, fmt.Errorf("%w: %q is not YYYY-MM-DD", ErrInvalidDate, s)
	}
	y, ok1 := atoi(s[0:4])
	m, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return Date{}, fmt.Errorf("%w: %q is not YYYY-MM-DD", ErrInvalidDate, s)
	}
	date := Date{Year: y, Month: time.Month(m), Day: d}
	if err := date.Validate(); err != nil {
		return Date{}, err
	}
	return date, nil
}

// String returns the date as "2006-01-02". An invalid Date prints its fields as they
// are ("2025-02-30"), which is what an error message about it needs.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText writes the "2006-01-02" form; it refuses an invalid Date so that
// nothing unreadable is ever stored.
func (d Date) MarshalText() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return []byte(d.String()), nil
}

// UnmarshalText reads the "2006-01-02" form, as ParseDate does.
func (d *Date) UnmarshalText(text []byte) error {
	parsed, err := ParseDate(string(text))
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// Valid reports whether d names a real day in years MinYear to MaxYear.
func (d Date) Valid() bool {
	return d.Year >= MinYear && d.Year <= MaxYear &&
		d.Month >= time.January && d.Month <= time.December &&
		d.Day >= 1 && d.Day <= daysIn(d.Year, d.Month)
}

// Validate returns nil for a valid Date and an error wrapping ErrInvalidDate, which
// names the date, otherwise.
func (d Date) Validate() error {
	if !d.Valid() {
		return fmt.Errorf("%w: %s", ErrInvalidDate, d)
	}
	return nil
}

// IsZero reports whether d is the zero Date, "no date".
func (d Date) IsZero() bool { return d == Date{} }

// Compare returns -1 if d is before e, 0 if they are the same day and +1 if d is
// after e. It compares the fields in order and is meaningful for valid dates.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(d.Year, e.Year)
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	default:
		return cmpInt(d.Day, e.Day)
	}
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is a later day than e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// Equal reports whether d and e are the same day; it is the same as d == e.
func (d Date) Equal(e Date) bool { return d == e }

// AddDays returns the date n calendar days after d (before it for a negative n).
// It returns the zero Date, which is invalid, when d is invalid or the result falls
// outside years MinYear to MaxYear; it never normalises an invalid date.
func (d Date) AddDays(n int) Date {
	if !d.Valid() || n > maxDaySpan || n < -maxDaySpan {
		return Date{}
	}
	z := d.days() + n
	if z < minDays || z > maxDays {
		return Date{}
	}
	return dateFromDays(z)
}

// Weekday returns the day of the week of d. For an invalid Date it returns
// time.Weekday(-1), which matches no day, rather than the weekday of some other date.
func (d Date) Weekday() time.Weekday {
	if !d.Valid() {
		return -1
	}
	return weekdayOfDays(d.days())
}

// StartsAt returns the first instant of d in loc: 00:00 local time. A nil loc means
// Europe/Moscow. For an invalid Date it returns the zero time.Time (check IsZero).
//
// Trap: in a zone that skips midnight for daylight saving, the day starts at the
// first instant that exists (Go's time.Date rule); Moscow has had no DST since 2014.
func (d Date) StartsAt(loc *time.Location) time.Time {
	if !d.Valid() {
		return time.Time{}
	}
	if loc == nil {
		loc = Moscow()
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// EndsAt returns 24:00 of d in loc, which is the first instant of the next day: the
// end of a last day under Civil Code art. 194. An act done at instant t is in time
// when t.Before(d.EndsAt(loc)); at EndsAt itself it is late. A nil loc means
// Europe/Moscow. For an invalid Date, or the last day of MaxYear, it returns the zero
// time.Time (check IsZero).
func (d Date) EndsAt(loc *time.Location) time.Time {
	return d.AddDays(1).StartsAt(loc)
}

// minDays and maxDays are the day numbers of the first and the last valid Date.
var (
	minDays = Date{Year: MinYear, Month: time.January, Day: 1}.days()
	maxDays = Date{Year: MaxYear, Month: time.December, Day: 31}.days()
)

// maxDaySpan bounds the n of AddDays so that day arithmetic can never overflow;
// it is larger than the whole range of valid dates (about 3.65 million days).
const maxDaySpan = 4_000_000

// days returns the number of days from 1970-01-01 to d (negative before it), by
// Howard Hinnant's days_from_civil algorithm. d must be valid.
func (d Date) days() int {
	y, m := d.Year, int(d.Month)
	if m <= 2 {
		y--
	}
	era := y / 400 // y ≥ 0 for valid dates, so truncation is floor
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d.Day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// dateFromDays is the inverse of days (Hinnant's civil_from_days) for day numbers
// of valid dates (minDays to maxDays).
func dateFromDays(z int) Date {
	z += 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return Date{Year: y, Month: time.Month(m), Day: day}
}

// weekdayOfDays returns the weekday of a day number from days (1970-01-01 was a Thursday).
func weekdayOfDays(z int) time.Weekday {
	return time.Weekday(((z % 7) + 7 + int(time.Thursday)) % 7)
}

// daysBefore[m-1] is the number of days before month m in a common year.
var daysBefore = [13]int{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the length of month m of year y; m must be January to December.
func daysIn(y int, m time.Month) int {
	if m == time.February && isLeap(y) {
		return 29
	}
	return daysBefore[m] - daysBefore[m-1]
}

func daysInYear(y int) int {
	if isLeap(y) {
		return 366
	}
	return 365
}

// dayOfYear returns the 0-based index of valid d within its year (Jan 1 is 0).
func dayOfYear(d Date) int {
	i := daysBefore[d.Month-1] + d.Day - 1
	if d.Month > time.February && isLeap(d.Year) {
		i++
	}
	return i
}

// dateOfYearDay is the inverse of dayOfYear.
func dateOfYearDay(y, i int) Date {
	leap := 0
	if isLeap(y) {
		leap = 1
	}
	m := time.December
	for m > time.January {
		start := daysBefore[m-1]
		if m > time.February {
			start += leap
		}
		if i >= start {
			return Date{Year: y, Month: m, Day: i - start + 1}
		}
		m--
	}
	return Date{Year: y, Month: time.January, Day: i + 1}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	default:
		return 0
	}
}

// atoi parses a short run of ASCII digits; no sign, no spaces.
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
