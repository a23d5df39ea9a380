package refund

import (
	"fmt"
	"time"

	"github.com/smm-gpt/billing/calendar"
)

// The periods of the deadlines, from the terms.
const (
	// PayoutCalendarDays: the money goes back within 10 calendar days of receiving the
	// request (TERMS 3.8).
	PayoutCalendarDays = 10
	// AccountDeletionBusinessDays: an account is deleted within 10 business days of the
	// request (TERMS 2.2.4).
	AccountDeletionBusinessDays = 10
	// ClaimBusinessDays: the pre-trial claim period is 30 business days from receipt
	// (TERMS 6.2).
	ClaimBusinessDays = 30
)

// Deadline is a legal deadline: its last day and the instant it passes.
type Deadline struct {
	// LastDay is the last day of the period, counted from the day after the event (Civil
	// Code art. 191) and moved to the next working day when it is not one (art. 193).
	LastDay calendar.Date
	// EndsAt is 24:00 of LastDay in the location (art. 194), that is 00:00 of the next
	// day: an act at an instant before EndsAt is in time, at EndsAt or later it is late.
	EndsAt time.Time
}

// Met reports whether an act done at instant t is in time: t is before EndsAt.
func (d Deadline) Met(t time.Time) bool { return t.Before(d.EndsAt) }

// PayoutDeadline is the deadline to pay a refund back (TERMS 3.8): 10 calendar days
// after the date the request was received in loc; a last day that is not a working day
// moves to the next working day (art. 193). Nil cal means calendar.Russia(), nil loc
// Europe/Moscow. A zero received instant returns ErrMissingTime.
//
// The count starts at receipt, not at the operator's verification: verifying late does
// not buy the operator time.
func PayoutDeadline(received time.Time, cal calendar.BusinessCalendar, loc *time.Location) (Deadline, error) {
	return deadlineFrom(received, PayoutCalendarDays, calendar.CalendarDays, cal, loc)
}

// AccountDeletionDeadline is the deadline to delete an account (TERMS 2.2.4): 10
// business days after the date of the request in loc. Nil cal means calendar.Russia(),
// nil loc Europe/Moscow. A zero requested instant returns ErrMissingTime.
func AccountDeletionDeadline(requested time.Time, cal calendar.BusinessCalendar, loc *time.Location) (Deadline, error) {
	return deadlineFrom(requested, AccountDeletionBusinessDays, calendar.BusinessDays, cal, loc)
}

// ClaimDeadline is the end of the pre-trial claim period (TERMS 6.2): 30 business days
// after the date the claim was received in loc. Nil cal means calendar.Russia(), nil
// loc Europe/Moscow. A zero received instant returns ErrMissingTime.
func ClaimDeadline(received time.Time, cal calendar.BusinessCalendar, loc *time.Location) (Deadline, error) {
	return deadlineFrom(received, ClaimBusinessDays, calendar.BusinessDays, cal, loc)
}

// CheckReceivedAt returns ErrReceivedInFuture when a request's received instant is
// later than now, and ErrMissingTime when either is zero. The engine calls it when it
// records a request, with its clock's now; a received instant in the past (an email
// read the next morning) is fine and keeps its own date for every deadline.
func CheckReceivedAt(received, now time.Time) error {
	if received.IsZero() || now.IsZero() {
		return fmt.Errorf("%w: received %v, now %v", ErrMissingTime, received, now)
	}
	if received.After(now) {
		return fmt.Errorf("%w: received %s, now %s", ErrReceivedInFuture,
			received.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

func deadlineFrom(event time.Time, n int, unit calendar.Unit, cal calendar.BusinessCalendar, loc *time.Location) (Deadline, error) {
	cal, loc = defaults(cal, loc)
	if event.IsZero() {
		return Deadline{}, fmt.Errorf("%w: the event's instant", ErrMissingTime)
	}
	last, err := deadline(cal, calendar.DateOf(event, loc), n, unit)
	if err != nil {
		return Deadline{}, err
	}
	return Deadline{LastDay: last, EndsAt: last.EndsAt(loc)}, nil
}
