package billing

import "time"

// Clock is the engine's only source of the current time. Production code uses
// SystemClock; tests use billingtest.Clock, a manual clock that can be advanced across
// months. Pure policy packages never read a clock: the engine passes them the instant.
type Clock interface {
	// Now returns the current instant.
	Now() time.Time
}

// SystemClock is the Clock of the operating system.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
