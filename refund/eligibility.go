package refund

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/calendar"
)

// WindowBusinessDays is the length of the full-refund window of TERMS 3.7: 5 business
// days after access was granted.
const WindowBusinessDays = 5

// Period is what the refund rules need to know about one paid subscription period.
// The engine fills it from its own records; this package never sees a subscription.
type Period struct {
	// GrantedAt is the instant access to this period was actually granted. When the
	// operator granted it late, it is the late instant, not the payment (TERMS 3.7:
	// "including when access was late through the operator's fault"). Zero means never
	// granted.
	GrantedAt time.Time
	// Start and End bound the paid period; End is exclusive. ProRata needs them;
	// Eligibility does not look at them.
	Start, End time.Time
	// Price is what was paid for the period, in Currency; never negative.
	Price decimal.Decimal
	// Currency is the ISO 4217 code of Price ("RUB"); it must be known to package money.
	Currency string
	// Meters is the usage of the period, one entry per meter. Any Used above zero makes
	// the period ineligible for a full refund.
	Meters []MeterUsage
	// OpenReservations is the number of reservations of volume not yet committed,
	// released or expired; any makes the period ineligible (an AI call may be running).
	OpenReservations int
	// Renewal is true for a period bought by an automatic renewal (TERMS 3.5), false
	// for the first period of a subscription. It matters only with
	// Options.FirstPeriodOnly.
	Renewal bool
}

// MeterUsage is the usage of one meter in a period.
type MeterUsage struct {
	// Meter names what is counted ("generations").
	Meter string
	// Quantity is the period's volume of the meter (its limit); 0 when the meter has
	// no volume, in which case it counts for eligibility but not for ProRata's share.
	Quantity int64
	// Used is the consumed plus committed volume; reserved volume is not included
	// (see Period.OpenReservations). It may exceed Quantity under soft limits.
	Used int64
}

// used returns the total used volume of all meters, or ErrBadUsage.
func (p Period) used() (int64, error) {
	if p.OpenReservations < 0 {
		return 0, fmt.Errorf("%w: open reservations %d", ErrBadUsage, p.OpenReservations)
	}
	var total int64
	for _, m := range p.Meters {
		if m.Used < 0 || m.Quantity < 0 {
			return 0, fmt.Errorf("%w: meter %q used %d of %d", ErrBadUsage, m.Meter, m.Used, m.Quantity)
		}
		total = min(total, math.MaxInt64-m.Used) + m.Used // saturates instead of overflowing
	}
	return total, nil
}

// Options are the operator's switches for the full refund of TERMS 3.7. The zero value
// is the default of the terms.
type Options struct {
	// FirstPeriodOnly, when true, makes only a subscription's first paid period
	// refundable under 3.7; a renewed period then fails with ReasonRenewal. By default
	// (false) every paid period, renewals included, is refundable, because each renewal
	// is a new payment the customer may regret (issue 8).
	FirstPeriodOnly bool
}

// Reason is a condition of TERMS 3.7 that a request failed.
type Reason string

// The conditions a Decision can fail, in the order Decision.Failed lists them.
const (
	// ReasonWindowClosed: received at or after 24:00 of the 5th working day after the grant.
	ReasonWindowClosed Reason = "window_closed"
	// ReasonUsed: some volume of the period was consumed or committed.
	ReasonUsed Reason = "used"
	// ReasonOpenReservation: a reservation of volume is still open.
	ReasonOpenReservation Reason = "open_reservation"
	// ReasonRenewal: a renewed period, and Options.FirstPeriodOnly is set.
	ReasonRenewal Reason = "renewal"
)

// Decision is the answer of Eligibility: whether the request qualifies for the full
// refund of TERMS 3.7, and the facts it rests on, so that it explains itself to the
// customer and to the operator.
type Decision struct {
	// Eligible is true when no condition failed.
	Eligible bool
	// Failed lists every failed condition, in the order of the Reason constants;
	// empty when Eligible.
	Failed []Reason
	// ReceivedAt is the instant the request was received; the decision is made at it.
	ReceivedAt time.Time
	// GrantedAt is the instant access was granted (the actual grant).
	GrantedAt time.Time
	// GrantDate is the date of GrantedAt in the location; the window counts from the
	// day after it (art. 191).
	GrantDate calendar.Date
	// WindowLastDay is the 5th working day after GrantDate: the last day of the window.
	WindowLastDay calendar.Date
	// WindowEndsAt is 24:00 of WindowLastDay in the location (art. 194): a request
	// received before this instant is in time, one received at it is late.
	WindowEndsAt time.Time
	// Used is the total consumed and committed volume of the period.
	Used int64
	// OpenReservations is the number of open reservations.
	OpenReservations int
	// Renewal is copied from the period.
	Renewal bool
}

// Eligibility decides whether a request received at the instant received qualifies for
// the full refund of TERMS 3.7 for period p, counting business days on cal in location
// loc (nil cal: calendar.Russia(); nil loc: Europe/Moscow).
//
// The window: the grant date is the date of p.GrantedAt in loc; the day after it is day
// 1 (art. 191); the window's last day is the 5th working day of cal after the grant
// date, and the window ends at 24:00 of it in loc (art. 194). A grant at 23:30 Moscow
// time and one an hour later, at 00:30, fall on different dates, so the second window
// ends a working day later. The request must also find the period unused: no volume
// consumed or committed (p.Meters) and no open reservation.
//
// A request that fails returns Eligible false and a nil error: the Decision lists every
// failed condition (Decision.Err turns it into a *NotEligibleError). Errors are for bad
// input only: a zero received instant (ErrMissingTime), a period never granted
// (ErrNotGranted), a request received before the grant (ErrRequestBeforeGrant),
// negative usage (ErrBadUsage) or a calendar failure (ErrCalendar).
func Eligibility(received time.Time, p Period, cal calendar.BusinessCalendar, loc *time.Location, opts Options) (Decision, error) {
	cal, loc = defaults(cal, loc)
	if received.IsZero() {
		return Decision{}, fmt.Errorf("%w: the request's received instant", ErrMissingTime)
	}
	if p.GrantedAt.IsZero() {
		return Decision{}, ErrNotGranted
	}
	if received.Before(p.GrantedAt) {
		return Decision{}, fmt.Errorf("%w: received %s, granted %s", ErrRequestBeforeGrant,
			received.In(loc).Format(time.RFC3339), p.GrantedAt.In(loc).Format(time.RFC3339))
	}
	used, err := p.used()
	if err != nil {
		return Decision{}, err
	}
	grantDate := calendar.DateOf(p.GrantedAt, loc)
	lastDay, err := deadline(cal, grantDate, WindowBusinessDays, calendar.BusinessDays)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{
		ReceivedAt:       received,
		GrantedAt:        p.GrantedAt,
		GrantDate:        grantDate,
		WindowLastDay:    lastDay,
		WindowEndsAt:     lastDay.EndsAt(loc),
		Used:             used,
		OpenReservations: p.OpenReservations,
		Renewal:          p.Renewal,
	}
	if !received.Before(d.WindowEndsAt) {
		d.Failed = append(d.Failed, ReasonWindowClosed)
	}
	if used > 0 {
		d.Failed = append(d.Failed, ReasonUsed)
	}
	if p.OpenReservations > 0 {
		d.Failed = append(d.Failed, ReasonOpenReservation)
	}
	if opts.FirstPeriodOnly && p.Renewal {
		d.Failed = append(d.Failed, ReasonRenewal)
	}
	d.Eligible = len(d.Failed) == 0
	return d, nil
}

// Err returns nil for an eligible Decision and a *NotEligibleError otherwise, for
// callers that refuse an ineligible full refund (errors.Is ErrNotEligible).
func (d Decision) Err() error {
	if d.Eligible {
		return nil
	}
	return &NotEligibleError{Decision: d}
}

// Fails reports whether the decision failed condition r.
func (d Decision) Fails(r Reason) bool {
	for _, f := range d.Failed {
		if f == r {
			return true
		}
	}
	return false
}

// String explains the decision in one line for an operator or a log, with instants in
// the location of WindowEndsAt: "eligible for a full refund (TERMS 3.7): received
// 2025-11-05 10:00 MSK, window ends 2025-11-12 00:00 MSK (24:00 of 2025-11-11, 5th
// working day after the grant on 2025-11-01); nothing used; no open reservation".
func (d Decision) String() string {
	const layout = "2006-01-02 15:04 MST"
	loc := d.WindowEndsAt.Location()
	var b strings.Builder
	if d.Eligible {
		b.WriteString("eligible for a full refund (TERMS 3.7): ")
	} else {
		b.WriteString("not eligible for a full refund (TERMS 3.7): ")
	}
	fmt.Fprintf(&b, "received %s", d.ReceivedAt.In(loc).Format(layout))
	if d.Fails(ReasonWindowClosed) {
		b.WriteString(", after the window ended at ")
	} else {
		b.WriteString(", window ends ")
	}
	fmt.Fprintf(&b, "%s (24:00 of %s, %s working day after the grant on %s)",
		d.WindowEndsAt.Format(layout), d.WindowLastDay, ordinal(WindowBusinessDays), d.GrantDate)
	if d.Used > 0 {
		fmt.Fprintf(&b, "; used volume %d", d.Used)
	} else {
		b.WriteString("; nothing used")
	}
	if d.OpenReservations > 0 {
		fmt.Fprintf(&b, "; open reservations %d", d.OpenReservations)
	} else {
		b.WriteString("; no open reservation")
	}
	if d.Fails(ReasonRenewal) {
		b.WriteString("; a renewed period, and only first periods are refundable")
	}
	return b.String()
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	default:
		return fmt.Sprintf("%dth", n)
	}
}

// defaults applies the library's defaults (TERMS 6.3): the Russian calendar, Moscow.
func defaults(cal calendar.BusinessCalendar, loc *time.Location) (calendar.BusinessCalendar, *time.Location) {
	if cal == nil {
		cal = calendar.Russia()
	}
	if loc == nil {
		loc = calendar.Moscow()
	}
	return cal, loc
}

// deadline asks cal for a deadline and checks the answer, so that a faulty plug-in
// calendar cannot produce a wrong instant.
func deadline(cal calendar.BusinessCalendar, event calendar.Date, n int, unit calendar.Unit) (calendar.Date, error) {
	last, err := cal.Deadline(event, n, unit)
	if err != nil {
		return calendar.Date{}, fmt.Errorf("%w: %w", ErrCalendar, err)
	}
	if !last.After(event) || last.EndsAt(time.UTC).IsZero() {
		return calendar.Date{}, fmt.Errorf("%w: deadline %s for %d %s after %s", ErrCalendar, last, n, unit, event)
	}
	return last, nil
}
