package tariff

import (
	"fmt"
	"strconv"
	"time"
)

// maxPeriodYears bounds one period: a period longer than a century is a typo, and the
// bound keeps End's arithmetic far from integer overflow.
const maxPeriodYears = 100

// maxEndYears bounds how far End reaches from its anchor; beyond it End returns the zero Time.
const maxEndYears = 10_000

// Validate reports a Count below 1 or above a century's worth of units (36,525 days,
// 5,217 weeks, 1,200 months, 100 years) and a Unit other than Day, Week, Month or Year,
// as a *ValidationError naming "period.count" and "period.unit".
func (p Period) Validate() error {
	var ps problems
	p.check(&ps, "period")
	return ps.err()
}

// check adds p's problems under the field prefix.
func (p Period) check(ps *problems, prefix string) {
	max, known := maxCount(p.Unit)
	switch {
	case p.Count < 1:
		ps.add(prefix+".count", "must be at least 1")
	case known && p.Count > max:
		ps.add(prefix+".count", fmt.Sprintf("must be at most %d %ss (%d years)", max, p.Unit, maxPeriodYears))
	}
	if !known {
		ps.add(prefix+".unit", fmt.Sprintf("unknown unit %q (want day, week, month or year)", p.Unit))
	}
}

// String renders the period for people: "1 month", "2 weeks", "30 days". An unknown unit
// is quoted ("3 \"fortnight\"") rather than hidden.
func (p Period) String() string {
	if _, known := maxCount(p.Unit); !known {
		return strconv.Itoa(p.Count) + " " + strconv.Quote(string(p.Unit))
	}
	if p.Count == 1 {
		return "1 " + string(p.Unit)
	}
	return strconv.Itoa(p.Count) + " " + string(p.Unit) + "s"
}

// End returns the end of the n-th period counted from anchor: n = 1 is the end of the
// first period (the first renewal), n = 2 the end of the second, n = 0 the anchor itself
// and a negative n counts back. The result is in loc; a nil loc means anchor's location.
//
// The arithmetic is civil time in loc, always from the anchor and never from the
// previous end, so a chain of renewals does not drift:
//   - Month and Year keep the anchor's day of month, clamped to the target month's
//     length: Jan 31 → Feb 29 (2024) → Mar 31 → Apr 30; a yearly Feb 29 → Feb 28 in
//     common years and Feb 29 again in leap years.
//   - Day and Week count calendar days in loc: across a DST change a day lasts 23 or
//     25 hours, and the end keeps the wall clock.
//   - The anchor's wall-clock time of day in loc is kept (not its time in UTC, nor in
//     anchor's own location: an anchor of Jan 31 21:30 UTC in Europe/Moscow is Feb 1
//     00:30, so its monthly ends fall on the 1st).
//   - A wall time that does not exist on the target day (the hour skipped when clocks
//     spring forward) moves forward by the length of the gap: 02:30 on a spring-forward
//     day in America/New_York ends at 03:30 EDT. A wall time that occurs twice (clocks
//     fall back) takes its first occurrence, the earlier instant. Where a zone's change
//     falls near midnight the moved end can land on the next day; where a zone skipped a
//     whole calendar day (Pacific/Apia, 30 Dec 2011) two ends can coincide.
//
// Trap: End trusts p to be valid. For an invalid period (see Validate), or an end more
// than 10,000 years from the anchor, it returns the zero Time; check Validate first, or
// check IsZero. Periods of published versions are always valid.
func (p Period) End(anchor time.Time, n int, loc *time.Location) time.Time {
	if loc == nil {
		loc = anchor.Location()
	}
	if p.Validate() != nil {
		return time.Time{}
	}
	a := anchor.In(loc)
	if n == 0 {
		return a
	}
	var perYear int64 // units of the period per year, for the reach bound
	switch p.Unit {
	case Day:
		perYear = 366
	case Week:
		perYear = 53
	case Month:
		perYear = 12
	case Year:
		perYear = 1
	}
	if reach := maxEndYears * perYear / int64(p.Count); int64(n) > reach || int64(n) < -reach {
		return time.Time{}
	}
	k := n * p.Count // |k| ≤ 3,660,000: no overflow
	y, m, d := a.Date()
	hh, mm, ss := a.Clock()
	ns := a.Nanosecond()
	switch p.Unit {
	case Day:
		d += k
	case Week:
		d += 7 * k
	case Year:
		k *= 12
		fallthrough
	case Month:
		months := int(m) - 1 + k
		y += floorDiv(months, 12)
		m = time.Month(months - floorDiv(months, 12)*12 + 1)
		d = min(d, daysIn(y, m))
	}
	return wallTime(y, m, d, hh, mm, ss, ns, loc)
}

// maxCount returns the largest Count of unit within maxPeriodYears, and whether unit is known.
func maxCount(u Unit) (int, bool) {
	switch u {
	case Day:
		return maxPeriodYears*365 + maxPeriodYears/4, true
	case Week:
		return (maxPeriodYears*365 + maxPeriodYears/4) / 7, true
	case Month:
		return maxPeriodYears * 12, true
	case Year:
		return maxPeriodYears, true
	}
	return 0, false
}

// wallTime returns the instant at which loc's clocks read the given civil date and time
// (day may overflow the month: time.Date normalizes it). Unlike time.Date it chooses
// deterministically at DST changes: a skipped wall time moves forward by the gap, a
// repeated one takes its first occurrence.
func wallTime(y int, m time.Month, d, hh, mm, ss, ns int, loc *time.Location) time.Time {
	// The civil time read as if it were UTC; the instant sought is naive - offset, where
	// offset is loc's UTC offset at that instant. Offsets stay within ±15 h, so the
	// offsets a day before and a day after bracket every change near the target.
	naive := time.Date(y, m, d, hh, mm, ss, ns, time.UTC)
	_, before := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, at := naive.In(loc).Zone()
	_, after := naive.Add(24 * time.Hour).In(loc).Zone()
	var found time.Time
	ok := false
	for _, off := range [...]int{before, at, after} {
		t := naive.Add(-time.Duration(off) * time.Second)
		if _, got := t.In(loc).Zone(); got != off {
			continue // loc's clocks do not read this civil time at t
		}
		if !ok || t.Before(found) {
			found, ok = t, true
		}
	}
	if !ok {
		// A gap: no instant reads this civil time. Using the offset in force before the
		// gap lands past it, later by the gap's length.
		found = naive.Add(-time.Duration(before) * time.Second)
	}
	return found.In(loc)
}

// daysIn returns the number of days of month m in year y (proleptic Gregorian).
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// floorDiv divides rounding toward negative infinity, so month arithmetic works for n < 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
