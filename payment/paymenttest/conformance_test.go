package paymenttest_test

import (
	"testing"

	"github.com/smm-gpt/billing/payment/paymenttest"
)

// TestMemoryGateway runs the suite against the in-memory fake provider.
func TestMemoryGateway(t *testing.T) {
	t.Parallel()
	paymenttest.Run(t, func(*testing.T) paymenttest.Harness { return newMemoryHarness() })
}

// TestHTTPGateway runs the suite against the HTTP adapter of the fake provider.
func TestHTTPGateway(t *testing.T) {
	t.Parallel()
	paymenttest.Run(t, func(t *testing.T) paymenttest.Harness { return newHTTPHarness(t) })
}
