package console_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives its tests: a harness's River
// client not stopped, a pool not closed, an httptest server not closed, or a chromium tab or
// allocator of the browser tests not cancelled (chromedp's goroutines end when both contexts
// are cancelled). Every one of them is stopped through t.Cleanup, so no goroutine is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
