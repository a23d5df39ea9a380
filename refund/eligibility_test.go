package refund_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/refund"
)

// msk returns a wall-clock instant in Moscow.
func msk(year int, month time.Month, day, hour, min int) time.Time {
	return time.Date(year, month, day, hour, min, 0, 0, calendar.Moscow())
}

// date parses a "2006-01-02" literal of a test table.
func date(s string) calendar.Date {
	d, err := calendar.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// unused is a period granted at grant, nothing used, nothing reserved.
func unused(grant time.Time) refund.Period {
	return refund.Period{
		GrantedAt: grant,
		Start:     grant,
		End:       grant.AddDate(0, 1, 0),
		Price:     mustDecimal("990.00"),
		Currency:  "RUB",
		Meters:    []refund.MeterUsage{{Meter: "generations", Quantity: 100}},
	}
}

func TestEligibility(t *testing.T) {
	t.Parallel()
	withUse := func(p refund.Period, used int64) refund.Period {
		p.Meters = []refund.MeterUsage{{Meter: "generations", Quantity: 100, Used: used}}
		return p
	}
	withReservations := func(p refund.Period, n int) refund.Period {
		p.OpenReservations = n
		return p
	}
	renewal := func(p refund.Period) refund.Period {
		p.Renewal = true
		return p
	}
	lateGrant := unused(msk(2025, time.March, 3, 10, 0))  // paid Monday Mar 3
	lateGrant.GrantedAt = msk(2025, time.March, 6, 14, 0) // access only on Thursday

	tests := []struct {
		name       string
		period     refund.Period
		received   time.Time
		opts       refund.Options
		wantFailed []refund.Reason
		wantLast   calendar.Date
	}{
		{
			name:     "3.7 grant at 23:30 Moscow, request at 23:59 of the 5th working day",
			period:   unused(msk(2025, time.March, 3, 23, 30)),
			received: msk(2025, time.March, 10, 23, 59),
			wantLast: date("2025-03-10"),
		},
		{
			name:       "3.7 grant at 23:30 Moscow, request at 24:00 of the 5th working day is late",
			period:     unused(msk(2025, time.March, 3, 23, 30)),
			received:   msk(2025, time.March, 11, 0, 0),
			wantFailed: []refund.Reason{refund.ReasonWindowClosed},
			wantLast:   date("2025-03-10"),
		},
		{
			name:     "3.7 grant at 00:30 Moscow (21:30 UTC the day before) counts from the Moscow date",
			period:   unused(time.Date(2025, time.March, 3, 21, 30, 0, 0, time.UTC)),
			received: msk(2025, time.March, 11, 10, 0),
			wantLast: date("2025-03-11"),
		},
		{
			name:       "3.7 grant on a Friday: the window is the next working week",
			period:     unused(msk(2025, time.March, 7, 15, 0)),
			received:   msk(2025, time.March, 17, 9, 0),
			wantFailed: []refund.Reason{refund.ReasonWindowClosed},
			wantLast:   date("2025-03-14"),
		},
		{
			name:     "3.7 grant on a Friday, request on the next Friday evening",
			period:   unused(msk(2025, time.March, 7, 15, 0)),
			received: msk(2025, time.March, 14, 18, 0),
			wantLast: date("2025-03-14"),
		},
		{
			name:     "3.7 grant before the New Year holidays: they do not count",
			period:   unused(msk(2025, time.December, 26, 12, 0)),
			received: msk(2026, time.January, 14, 20, 0),
			wantLast: date("2026-01-14"),
		},
		{
			name:       "3.7 grant before the New Year holidays, request the day after the window",
			period:     unused(msk(2025, time.December, 26, 12, 0)),
			received:   msk(2026, time.January, 15, 0, 0),
			wantFailed: []refund.Reason{refund.ReasonWindowClosed},
			wantLast:   date("2026-01-14"),
		},
		{
			name:     "3.7 grant before the May holidays, request on a holiday inside the window",
			period:   unused(msk(2025, time.April, 30, 10, 0)),
			received: msk(2025, time.May, 10, 12, 0),
			wantLast: date("2025-05-13"),
		},
		{
			name:     "3.7 grant on the working Saturday 2025-11-01",
			period:   unused(msk(2025, time.November, 1, 10, 0)),
			received: msk(2025, time.November, 11, 23, 0),
			wantLast: date("2025-11-11"),
		},
		{
			name:       "3.7 grant the Friday before the working Saturday: the Saturday is day 1",
			period:     unused(msk(2025, time.October, 31, 10, 0)),
			received:   msk(2025, time.November, 11, 9, 0),
			wantFailed: []refund.Reason{refund.ReasonWindowClosed},
			wantLast:   date("2025-11-10"),
		},
		{
			name:     "3.7 request at the instant of the grant",
			period:   unused(msk(2025, time.March, 3, 10, 0)),
			received: msk(2025, time.March, 3, 10, 0),
			wantLast: date("2025-03-10"),
		},
		{
			name:       "3.7 usage of one unit",
			period:     withUse(unused(msk(2025, time.March, 3, 10, 0)), 1),
			received:   msk(2025, time.March, 4, 10, 0),
			wantFailed: []refund.Reason{refund.ReasonUsed},
			wantLast:   date("2025-03-10"),
		},
		{
			name:       "3.7 an open reservation",
			period:     withReservations(unused(msk(2025, time.March, 3, 10, 0)), 1),
			received:   msk(2025, time.March, 4, 10, 0),
			wantFailed: []refund.Reason{refund.ReasonOpenReservation},
			wantLast:   date("2025-03-10"),
		},
		{
			name:     "3.7 late access by the operator counts from the actual grant",
			period:   lateGrant,
			received: msk(2025, time.March, 12, 10, 0), // 7 working days after payment
			wantLast: date("2025-03-13"),
		},
		{
			name:     "3.7 a renewed period is refundable by default",
			period:   renewal(unused(msk(2025, time.March, 3, 10, 0))),
			received: msk(2025, time.March, 4, 10, 0),
			wantLast: date("2025-03-10"),
		},
		{
			name:       "3.7 a renewed period with FirstPeriodOnly",
			period:     renewal(unused(msk(2025, time.March, 3, 10, 0))),
			received:   msk(2025, time.March, 4, 10, 0),
			opts:       refund.Options{FirstPeriodOnly: true},
			wantFailed: []refund.Reason{refund.ReasonRenewal},
			wantLast:   date("2025-03-10"),
		},
		{
			name:     "3.7 a first period with FirstPeriodOnly",
			period:   unused(msk(2025, time.March, 3, 10, 0)),
			received: msk(2025, time.March, 4, 10, 0),
			opts:     refund.Options{FirstPeriodOnly: true},
			wantLast: date("2025-03-10"),
		},
		{
			name:     "3.7 every failed condition is listed",
			period:   renewal(withReservations(withUse(unused(msk(2025, time.March, 3, 10, 0)), 5), 2)),
			received: msk(2025, time.April, 1, 10, 0),
			opts:     refund.Options{FirstPeriodOnly: true},
			wantFailed: []refund.Reason{
				refund.ReasonWindowClosed, refund.ReasonUsed, refund.ReasonOpenReservation, refund.ReasonRenewal,
			},
			wantLast: date("2025-03-10"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := refund.Eligibility(tt.received, tt.period, calendar.Russia(), calendar.Moscow(), tt.opts)
			require.NoError(t, err)
			require.Equal(t, tt.wantFailed, got.Failed)
			require.Equal(t, len(tt.wantFailed) == 0, got.Eligible)
			require.Equal(t, tt.wantLast, got.WindowLastDay)
			require.Equal(t, tt.wantLast.EndsAt(calendar.Moscow()), got.WindowEndsAt)
			require.Equal(t, calendar.DateOf(tt.period.GrantedAt, calendar.Moscow()), got.GrantDate)
			require.Equal(t, tt.received, got.ReceivedAt)
			if got.Eligible {
				require.NoError(t, got.Err())
			} else {
				err := got.Err()
				require.ErrorIs(t, err, refund.ErrNotEligible)
				var ne *refund.NotEligibleError
				require.ErrorAs(t, err, &ne)
				require.Equal(t, tt.wantFailed, ne.Decision.Failed)
			}
		})
	}
}

func TestEligibilityDefaultsToRussiaAndMoscow(t *testing.T) {
	t.Parallel()
	p := unused(time.Date(2025, time.March, 3, 21, 30, 0, 0, time.UTC)) // 00:30 Mar 4 in Moscow
	received := msk(2025, time.March, 11, 10, 0)
	got, err := refund.Eligibility(received, p, nil, nil, refund.Options{})
	require.NoError(t, err)
	require.True(t, got.Eligible)
	require.Equal(t, date("2025-03-11"), got.WindowLastDay)

	// In UTC the grant is on Mar 3, and the same request is late.
	got, err = refund.Eligibility(received, p, nil, time.UTC, refund.Options{})
	require.NoError(t, err)
	require.Equal(t, []refund.Reason{refund.ReasonWindowClosed}, got.Failed)
}

// everyDay is another country's calendar with no days off, to show the plug-in seam.
type everyDay struct{}

func (everyDay) IsWorkday(d calendar.Date) bool { return d.Valid() }
func (everyDay) Deadline(event calendar.Date, n int, _ calendar.Unit) (calendar.Date, error) {
	return event.AddDays(n), event.Validate()
}

func TestEligibilityOnAnotherCalendar(t *testing.T) {
	t.Parallel()
	got, err := refund.Eligibility(msk(2025, time.May, 6, 10, 0), unused(msk(2025, time.May, 1, 10, 0)),
		everyDay{}, calendar.Moscow(), refund.Options{})
	require.NoError(t, err)
	require.True(t, got.Eligible)
	require.Equal(t, date("2025-05-06"), got.WindowLastDay)
}

// brokenCalendar answers with errors or nonsense.
type brokenCalendar struct {
	last calendar.Date
	err  error
}

func (brokenCalendar) IsWorkday(calendar.Date) bool { return true }
func (b brokenCalendar) Deadline(calendar.Date, int, calendar.Unit) (calendar.Date, error) {
	return b.last, b.err
}

func TestEligibilityRefusesBadInput(t *testing.T) {
	t.Parallel()
	grant := msk(2025, time.March, 3, 10, 0)
	p := unused(grant)
	neverGranted := p
	neverGranted.GrantedAt = time.Time{}
	negativeUse := p
	negativeUse.Meters = []refund.MeterUsage{{Meter: "generations", Quantity: 100, Used: -1}}
	negativeReservations := p
	negativeReservations.OpenReservations = -1

	tests := []struct {
		name     string
		received time.Time
		period   refund.Period
		cal      calendar.BusinessCalendar
		want     error
	}{
		{"a zero received instant", time.Time{}, p, nil, refund.ErrMissingTime},
		{"3.7 a period never granted", grant, neverGranted, nil, refund.ErrNotGranted},
		{"3.7 a request before the grant", grant.Add(-time.Second), p, nil, refund.ErrRequestBeforeGrant},
		{"negative usage", grant, negativeUse, nil, refund.ErrBadUsage},
		{"negative open reservations", grant, negativeReservations, nil, refund.ErrBadUsage},
		{"a calendar error", grant, p, brokenCalendar{err: calendar.ErrOutOfRange}, calendar.ErrOutOfRange},
		{"a calendar answering an invalid date", grant, p, brokenCalendar{last: calendar.Date{Year: 2025, Month: 2, Day: 30}}, refund.ErrCalendar},
		{"a calendar answering a day before the grant", grant, p, brokenCalendar{last: date("2025-03-01")}, refund.ErrCalendar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := refund.Eligibility(tt.received, tt.period, tt.cal, nil, refund.Options{})
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, refund.ErrInvalid)
			require.False(t, errors.Is(err, refund.ErrNotEligible))
			require.Zero(t, got)
		})
	}
}

func TestDecisionExplainsItself(t *testing.T) {
	t.Parallel()
	p := unused(msk(2025, time.November, 1, 10, 0))
	got, err := refund.Eligibility(msk(2025, time.November, 5, 10, 0), p, nil, nil, refund.Options{})
	require.NoError(t, err)
	require.Equal(t, "eligible for a full refund (TERMS 3.7): received 2025-11-05 10:00 MSK, "+
		"window ends 2025-11-12 00:00 MSK (24:00 of 2025-11-11, 5th working day after the grant on 2025-11-01); "+
		"nothing used; no open reservation", got.String())

	p.Meters[0].Used = 3
	p.OpenReservations = 1
	p.Renewal = true
	got, err = refund.Eligibility(msk(2025, time.November, 12, 0, 0), p, nil, nil, refund.Options{FirstPeriodOnly: true})
	require.NoError(t, err)
	require.Equal(t, "not eligible for a full refund (TERMS 3.7): received 2025-11-12 00:00 MSK, "+
		"after the window ended at 2025-11-12 00:00 MSK (24:00 of 2025-11-11, 5th working day after the grant on 2025-11-01); "+
		"used volume 3; open reservations 1; a renewed period, and only first periods are refundable", got.String())
	require.Contains(t, got.Err().Error(), "refund: not eligible for a full refund: not eligible")
}
