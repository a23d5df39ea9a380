package billingtest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives its tests: a harness's River
// client not stopped, a pool not closed, a fake gateway's delayed answer still waiting.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
