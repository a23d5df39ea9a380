// Package billingtest is the test kit of the billing engine, for its own tests and for
// host applications:
//   - Clock, a manual clock that can be advanced across months (also River's time source);
//   - NewPool / NewPoolWith / NewEmptyPool, a migrated (with the host's own migrations too,
//     or empty) PostgreSQL database of each test's own, so tests run in parallel;
//   - Gateway, a scriptable fake payment provider that deduplicates by idempotency key and
//     records every charge and refund it accepted;
//   - Runner and NewRiverClient, which move the clock to each instant a River job falls due
//     and let the real workers run it;
//   - NewHarness, all of the above wired for one test (tb), stopped when the test ends, and
//     StartHarness, the same for a program that is not a test.
package billingtest

import (
	"sync"
	"time"
)

// Clock is a manual clock: it stands still until Set or Advance moves it. It is safe for
// concurrent use. It satisfies billing.Clock, and River's rivertype.TimeGenerator, so one
// clock can drive both the engine and a River client in a test (river.Config.Test.Time).
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start until moved.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current instant.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NowOrNil returns the clock's current instant; it never returns nil. It is part of
// River's rivertype.TimeGenerator.
func (c *Clock) NowOrNil() *time.Time {
	now := c.Now()
	return &now
}

// Set moves the clock to t, forwards or backwards.
//
// TRAP: with a River client on this clock, Set (and Advance, AdvanceDate) jumps over the
// jobs due in between, and River then runs every one of them late, all at the new instant,
// where they compute their dates from the wrong "now" (a renewal charges late, a retry is
// scheduled from the jump, not from its due time). To move time across scheduled jobs use
// Runner.RunUntil, which stops at each job's instant and lets it run there.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new instant. A negative d moves it
// back.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// AdvanceDate moves the clock by years, months and days of the civil calendar in the
// clock's current location (time.Time.AddDate) and returns the new instant.
func (c *Clock) AdvanceDate(years, months, days int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.AddDate(years, months, days)
	return c.now
}
