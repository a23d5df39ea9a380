package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/smm-gpt/billing/money"
)

// ErrInvalidPlan is returned by NewPlan for a negative total, a zero start or end, an end not
// after the start, or a nil location.
var ErrInvalidPlan = errors.New("ledger: invalid recognition plan")

// ErrRecognizedOutOfRange is returned by Plan.ToRecognize when the amount already recognized
// is negative or more than the plan's total: the ledger and the period disagree.
var ErrRecognizedOutOfRange = errors.New("ledger: already recognized amount outside [0, total]")

// Plan is the revenue recognition plan of one paid period: Total minor units earned
// straight-line by calendar days in the period's location, from start to end.
//
// The rule, which EarnedBy, Schedule and ToRecognize all follow:
//
//   - The period has n = max(1, D) days, where D is the number of calendar dates from the
//     date of start up to (not including) the date of end, both dates taken in the location.
//     An anchored month from Jan 31 14:00 to Feb 28 14:00 has 28 days; Jan 1 00:00 to
//     Feb 1 00:00 has 31. Days are calendar dates, not 24-hour spans, so a DST day of 23 or 25
//     hours is one day like any other.
//   - A day is earned once it has fully passed, when the next date begins in the location
//     (at local midnight, or where a DST jump skips midnight, when the jump lands). Before
//     end, earned(at) = the first k days' shares, k = the dates passed since start's date.
//     Start's partial date counts as a whole day and end's partial date as none: together
//     they make up one day of the period, so everything is earned at the last midnight
//     before end (at end itself when start and end share a date).
//   - The shares are money.Split of Total over n equal weights: each day gets Total/n and the
//     Total%n minor units left over go one each to the earliest days. The shares always sum
//     exactly to Total.
//
// Hence earned is 0 at start, exactly Total at end, and never decreases. A Plan is a value;
// make it with NewPlan.
type Plan struct {
	total      int64
	start, end time.Time
	loc        *time.Location
	days       int64
}

// NewPlan returns the plan of total minor units over [start, end) in loc. total may be 0 (a
// free period earns nothing). It returns ErrInvalidPlan for a negative total, a zero start or
// end, end not after start, or a nil loc.
func NewPlan(total int64, start, end time.Time, loc *time.Location) (Plan, error) {
	switch {
	case total < 0:
		return Plan{}, fmt.Errorf("%w: total %d is negative", ErrInvalidPlan, total)
	case start.IsZero() || end.IsZero():
		return Plan{}, fmt.Errorf("%w: zero start or end", ErrInvalidPlan)
	case !end.After(start):
		return Plan{}, fmt.Errorf("%w: end %s is not after start %s", ErrInvalidPlan, end, start)
	case loc == nil:
		return Plan{}, fmt.Errorf("%w: nil location", ErrInvalidPlan)
	}
	days := max(1, civilDay(end, loc)-civilDay(start, loc))
	return Plan{total: total, start: start, end: end, loc: loc, days: days}, nil
}

// Total returns the minor units the plan earns in all.
func (p Plan) Total() int64 { return p.total }

// Days returns the number of days the total is spread over (at least 1).
func (p Plan) Days() int64 { return p.days }

// EarnedBy returns how much of the total is earned by the instant at: 0 up to start, the
// shares of the days fully passed in between, the whole total from end on.
func (p Plan) EarnedBy(at time.Time) int64 {
	switch {
	case !at.Before(p.end):
		return p.total
	case !at.After(p.start):
		return 0
	}
	passed := min(p.days, max(0, civilDay(at, p.loc)-civilDay(p.start, p.loc)))
	return p.earnedAfterDays(passed)
}

// EarnedEarlyEnd is EarnedBy for a period that ended early at endedAt (volume used up,
// TERMS 3.1; terminated, TERMS 2.1.2; refunded): from endedAt on, all the rest of the total
// is earned at once. An endedAt at or after end changes nothing.
func (p Plan) EarnedEarlyEnd(endedAt, at time.Time) int64 {
	if endedAt.Before(p.end) && !at.Before(endedAt) {
		return p.total
	}
	return p.EarnedBy(at)
}

// ToRecognize returns the amount to book now with Recognize: what is earned by at (all the
// rest when endedEarlyAt is not nil and at is not before it) minus alreadyRecognized, never
// below 0. It is 0 when nothing new is earned, and also when a refund lowered the plan's total
// so that the straight line now runs below what is already recognized: the schedule never
// undoes recognition, it waits until earned catches up (or the period ends early).
// It returns ErrRecognizedOutOfRange when alreadyRecognized is negative or above Total.
func (p Plan) ToRecognize(alreadyRecognized int64, at time.Time, endedEarlyAt *time.Time) (int64, error) {
	if alreadyRecognized < 0 || alreadyRecognized > p.total {
		return 0, fmt.Errorf("%w: %d of %d", ErrRecognizedOutOfRange, alreadyRecognized, p.total)
	}
	earned := p.EarnedBy(at)
	if endedEarlyAt != nil {
		earned = p.EarnedEarlyEnd(*endedEarlyAt, at)
	}
	return max(0, earned-alreadyRecognized), nil
}

// DayShare is one day of a Schedule.
type DayShare struct {
	// Date is the calendar date in the plan's location, given as midnight UTC of that date:
	// read it with Date(). It is a date, not the instant the day starts: in a zone whose DST
	// jump skips midnight (America/Havana), local midnight does not exist.
	Date time.Time
	// Amount is the minor units the day earns.
	Amount int64
}

// Schedule returns the plan's days in order with the share each earns. The shares sum
// exactly to Total, and the shares of the days before at's date sum to EarnedBy(at) for any
// at between start and end.
func (p Plan) Schedule() []DayShare {
	weights := make([]int64, p.days)
	for i := range weights {
		weights[i] = 1
	}
	shares := money.Split(p.total, weights)
	y, m, d := p.start.In(p.loc).Date()
	out := make([]DayShare, p.days)
	for i, amount := range shares {
		out[i] = DayShare{Date: time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC), Amount: amount}
	}
	return out
}

// earnedAfterDays is the sum of the first k shares of money.Split over equal weights: each
// day total/days, plus one minor unit for each of the first total%days days.
func (p Plan) earnedAfterDays(k int64) int64 {
	q, r := p.total/p.days, p.total%p.days
	return k*q + min(k, r)
}

// civilDay numbers the calendar date of t in loc: days since 1970-01-01. It counts dates,
// not 24-hour spans, so it is exact across DST changes.
func civilDay(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
}

// secondsPerDay is the length of a UTC day, in which civilDay counts.
const secondsPerDay = 24 * 60 * 60
