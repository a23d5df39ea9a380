package refund_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/refund"
)

func TestDeadlines(t *testing.T) {
	t.Parallel()
	type deadlineFunc func(time.Time, calendar.BusinessCalendar, *time.Location) (refund.Deadline, error)
	tests := []struct {
		name  string
		fn    deadlineFunc
		event time.Time
		loc   *time.Location
		want  calendar.Date
	}{
		{"3.8 payout: 10 calendar days ending on a weekday", refund.PayoutDeadline, msk(2025, time.March, 3, 10, 0), nil, date("2025-03-13")},
		{"3.8 payout: art. 193 moves a Sunday to Monday", refund.PayoutDeadline, msk(2025, time.March, 6, 10, 0), nil, date("2025-03-17")},
		{"3.8 payout across New Year 2025", refund.PayoutDeadline, msk(2024, time.December, 25, 22, 30), nil, date("2025-01-09")},
		{"3.8 payout across New Year 2026", refund.PayoutDeadline, msk(2025, time.December, 26, 12, 0), nil, date("2026-01-12")},
		{"3.8 payout ending on May 1 2025 moves past the May holidays", refund.PayoutDeadline, msk(2025, time.April, 21, 10, 0), nil, date("2025-05-05")},
		{"3.8 payout: received 00:30 Moscow is already the Moscow date", refund.PayoutDeadline, time.Date(2025, time.April, 20, 21, 30, 0, 0, time.UTC), nil, date("2025-05-05")},
		{"3.8 payout: the same instant counted in UTC", refund.PayoutDeadline, time.Date(2025, time.April, 20, 21, 30, 0, 0, time.UTC), time.UTC, date("2025-04-30")},
		{"3.8 payout ending on the working Saturday 2025-11-01 stays there", refund.PayoutDeadline, msk(2025, time.October, 22, 10, 0), nil, date("2025-11-01")},
		{"2.2.4 account deletion: 10 business days", refund.AccountDeletionDeadline, msk(2025, time.March, 3, 10, 0), nil, date("2025-03-17")},
		{"2.2.4 account deletion across the May holidays 2024 and the working Saturday", refund.AccountDeletionDeadline, msk(2024, time.April, 25, 10, 0), nil, date("2024-05-15")},
		{"6.2 claim: 30 business days across New Year 2026", refund.ClaimDeadline, msk(2025, time.December, 15, 10, 0), nil, date("2026-02-05")},
		{"6.2 claim received on a Saturday counts from Monday", refund.ClaimDeadline, msk(2025, time.March, 1, 10, 0), nil, date("2025-04-11")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.fn(tt.event, nil, tt.loc)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.LastDay)
			loc := tt.loc
			if loc == nil {
				loc = calendar.Moscow()
			}
			require.Equal(t, tt.want.EndsAt(loc), got.EndsAt)
			// art. 194: in time until 24:00 of the last day, late from then on.
			require.True(t, got.Met(got.EndsAt.Add(-time.Nanosecond)))
			require.False(t, got.Met(got.EndsAt))
		})
	}
}

func TestDeadlinesRefuseBadInput(t *testing.T) {
	t.Parallel()
	for _, fn := range []func(time.Time, calendar.BusinessCalendar, *time.Location) (refund.Deadline, error){
		refund.PayoutDeadline, refund.AccountDeletionDeadline, refund.ClaimDeadline,
	} {
		got, err := fn(time.Time{}, nil, nil)
		require.ErrorIs(t, err, refund.ErrMissingTime)
		require.Zero(t, got)
		got, err = fn(time.Date(9999, time.December, 31, 12, 0, 0, 0, time.UTC), nil, time.UTC)
		require.ErrorIs(t, err, calendar.ErrOutOfRange)
		require.ErrorIs(t, err, refund.ErrCalendar)
		require.Zero(t, got)
	}
}

func TestCheckReceivedAt(t *testing.T) {
	t.Parallel()
	now := msk(2025, time.March, 3, 10, 0)
	tests := []struct {
		name     string
		received time.Time
		now      time.Time
		want     error
	}{
		{"3.7 received a moment ago", now.Add(-time.Minute), now, nil},
		{"3.7 received yesterday, recorded today", now.AddDate(0, 0, -1), now, nil},
		{"3.7 received now", now, now, nil},
		{"3.7 received in the future", now.Add(time.Second), now, refund.ErrReceivedInFuture},
		{"a zero received instant", time.Time{}, now, refund.ErrMissingTime},
		{"a zero now", now, time.Time{}, refund.ErrMissingTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := refund.CheckReceivedAt(tt.received, tt.now)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, refund.ErrInvalid)
		})
	}
}
