package payment

import (
	"fmt"
	"time"
)

// Day is 24 hours, the unit of the default dunning schedule. In Europe/Moscow (no daylight
// saving since 2014) it is one calendar day; in a zone with daylight saving a retry may move by
// an hour, which does not matter for a retry.
const Day = 24 * time.Hour

// DunningSchedule says when a soft-declined renewal is tried again (TERMS 3.5). Delays count
// from the period's due time, not from the previous failure: with the default {1, 3, 5} days a
// renewal due at D is tried at D, then D+1d, D+3d and D+5d, whatever time each try took. So the
// dates are known in advance, do not drift when a job runs late, and a retry that is already
// overdue (a late job) runs at once rather than pushing the later ones back.
//
// The zero value (no Delays) is the default schedule; retries cannot be switched off, because a
// soft decline is often a momentary lack of funds. Each retry is a new attempt under its own key.
//
// Trap: the engine anchors a period paid on a retry as if paid on time, so a schedule longer
// than a period (5 days of retries on a daily tariff) sells a period that is over when it is paid.
type DunningSchedule struct {
	// Delays are the retry times after the due time: positive and strictly increasing.
	// Default {1, 3, 5} × Day.
	Delays []time.Duration
}

// DefaultDunningSchedule returns the schedule of the issue: retries 1, 3 and 5 days after the due
// time.
func DefaultDunningSchedule() DunningSchedule {
	return DunningSchedule{Delays: []time.Duration{1 * Day, 3 * Day, 5 * Day}}
}

// Validate returns a *ValidationError when a delay is not positive or not greater than the one
// before. The zero schedule is valid (it is the default).
func (s DunningSchedule) Validate() error {
	var prev time.Duration
	for i, d := range s.Delays {
		if d <= prev {
			return invalid(fmt.Sprintf("Delays[%d]", i), fmt.Sprintf("%s, must be positive and greater than the delay before", d))
		}
		prev = d
	}
	return nil
}

// Retries returns how many retries the schedule allows after the first attempt.
func (s DunningSchedule) Retries() int { return len(s.delays()) }

// delays returns the schedule's delays, or the default ones for the zero schedule.
func (s DunningSchedule) delays() []time.Duration {
	if len(s.Delays) == 0 {
		return DefaultDunningSchedule().Delays
	}
	return s.Delays
}

// NextRetry returns when the period's next attempt is due after failedAttempts soft declines
// (counting the one just recorded; a soft-declined attempt's Number), and false when none is
// left: the last retry failed and the subscription ends. With the default schedule and due
// time D: 1 → D+1d, 2 → D+3d, 3 → D+5d, 4 → false.
//
// The time may lie in the past when a job ran late; the engine then retries at once. NextRetry
// answers false for failedAttempts < 1 (nothing has failed; the first attempt is due at dueAt)
// and for an invalid schedule; Decide reports the latter as an error.
func NextRetry(schedule DunningSchedule, dueAt time.Time, failedAttempts int) (time.Time, bool) {
	if schedule.Validate() != nil {
		return time.Time{}, false
	}
	delays := schedule.delays()
	if failedAttempts < 1 || failedAttempts > len(delays) {
		return time.Time{}, false
	}
	return dueAt.Add(delays[failedAttempts-1]), true
}
