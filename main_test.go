package billing_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives its tests: a River client
// not stopped, a pool not closed, a worker or gateway call still waiting. Every harness,
// pool and client of the tests and examples is stopped or closed by then (tb.Cleanup, or
// the example's own defer), so no goroutine is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
