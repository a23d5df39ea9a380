package payment_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestDunningScheduleValidate(t *testing.T) {
	t.Parallel()

	d := payment.Day
	tests := []struct {
		name    string
		delays  []time.Duration
		wantErr bool
	}{
		{"zero schedule is the default", nil, false},
		{"empty schedule is the default", []time.Duration{}, false},
		{"3.5 default 1, 3, 5 days", []time.Duration{d, 3 * d, 5 * d}, false},
		{"one retry", []time.Duration{time.Hour}, false},
		{"zero delay", []time.Duration{0, d}, true},
		{"negative delay", []time.Duration{-d}, true},
		{"equal delays", []time.Duration{d, d}, true},
		{"decreasing delays", []time.Duration{3 * d, d}, true},
		{"a bad delay after good ones", []time.Duration{d, 2 * d, 2*d - 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := payment.DunningSchedule{Delays: tt.delays}.Validate()
			if tt.wantErr {
				require.ErrorIs(t, err, payment.ErrInvalid)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestNextRetry(t *testing.T) {
	t.Parallel()

	def := payment.DefaultDunningSchedule()
	custom := payment.DunningSchedule{Delays: []time.Duration{6 * time.Hour, 2 * payment.Day}}
	tests := []struct {
		name     string
		schedule payment.DunningSchedule
		failed   int
		want     time.Time
		wantOK   bool
	}{
		{"3.5 soft decline retried after 1 day from the due time", def, 1, dueAt.AddDate(0, 0, 1), true},
		{"3.5 second retry 3 days after the due time", def, 2, dueAt.AddDate(0, 0, 3), true},
		{"3.5 third retry 5 days after the due time", def, 3, dueAt.AddDate(0, 0, 5), true},
		{"3.5 the last retry failed: none left, the subscription ends", def, 4, time.Time{}, false},
		{"far beyond the schedule", def, 100, time.Time{}, false},
		{"nothing failed yet: no retry", def, 0, time.Time{}, false},
		{"negative count", def, -1, time.Time{}, false},
		{"the zero schedule is the default", payment.DunningSchedule{}, 3, dueAt.AddDate(0, 0, 5), true},
		{"configured schedule: first retry", custom, 1, dueAt.Add(6 * time.Hour), true},
		{"configured schedule: second retry", custom, 2, dueAt.AddDate(0, 0, 2), true},
		{"configured schedule: exhausted", custom, 3, time.Time{}, false},
		{"invalid schedule gives no retry", payment.DunningSchedule{Delays: []time.Duration{payment.Day, payment.Day}}, 1, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := payment.NextRetry(tt.schedule, dueAt, tt.failed)
			require.Equal(t, tt.wantOK, ok)
			require.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
		})
	}

	t.Run("3.5 retries count from the due time, not from the previous failure", func(t *testing.T) {
		t.Parallel()
		// However late each try ran, the dates stay D+1d, D+3d, D+5d.
		var got []time.Time
		for failed := 1; ; failed++ {
			at, ok := payment.NextRetry(def, dueAt, failed)
			if !ok {
				break
			}
			got = append(got, at)
		}
		require.Equal(t, []time.Time{dueAt.AddDate(0, 0, 1), dueAt.AddDate(0, 0, 3), dueAt.AddDate(0, 0, 5)}, got)
		require.Equal(t, 3, def.Retries())
		require.Equal(t, 3, payment.DunningSchedule{}.Retries())
	})
}
