package paymenttest_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/paymenttest"
)

// memoryHarness drives the in-memory fake provider, billingtest.Gateway, which is both the
// gateway under test and the provider: its Script makes tokens behave, its Confirm settles a
// pending charge, and Recorded counts its payments.
type memoryHarness struct {
	provider *billingtest.Gateway
	tokens   atomic.Int64
}

// newMemoryHarness returns a harness of a new, empty fake provider.
func newMemoryHarness() *memoryHarness {
	return &memoryHarness{provider: billingtest.NewGateway()}
}

// Gateway returns the fake itself: it is its own adapter.
func (h *memoryHarness) Gateway() payment.Gateway { return h.provider }

// behaviours maps the suite's behaviours to the fake's scripts. Succeed needs no script: the
// fake succeeds by default.
var behaviours = map[paymenttest.Behaviour]billingtest.Behaviour{
	paymenttest.SoftDecline:        billingtest.SoftDecline,
	paymenttest.HardDecline:        billingtest.HardDecline,
	paymenttest.Pending:            billingtest.Pending,
	paymenttest.LostAnswer:         billingtest.TimeoutAfterSuccess,
	paymenttest.FailBeforeProvider: billingtest.TimeoutBeforeCharge,
}

// NewPaymentMethod makes a new token and scripts its first new charge.
func (h *memoryHarness) NewPaymentMethod(t testing.TB, b paymenttest.Behaviour) string {
	token := "pm-conformance-" + strconv.FormatInt(h.tokens.Add(1), 10)
	if b == paymenttest.Succeed {
		return token
	}
	scripted, ok := behaviours[b]
	if !ok {
		return "" // not one the fake can play: the suite skips the check
	}
	h.provider.Script(token, scripted)
	return token
}

// Settle confirms the pending charge at the fake, as the provider would before its webhook.
func (h *memoryHarness) Settle(t testing.TB, providerPaymentID string, outcome payment.Outcome) {
	t.Helper()
	if _, err := h.provider.Confirm(providerPaymentID, outcome); err != nil {
		t.Fatalf("Confirm %s as %s: %v", providerPaymentID, outcome, err)
	}
}

// PayOnPage plays the customer on the fake's checkout page: Confirm pays the checkout (and
// saves its method) or refuses it.
func (h *memoryHarness) PayOnPage(t testing.TB, providerPaymentID string, outcome payment.Outcome) {
	t.Helper()
	h.Settle(t, providerPaymentID, outcome)
}

// ProviderPayments counts every charge the fake recorded, declines and pending included.
func (h *memoryHarness) ProviderPayments(testing.TB) int { return h.provider.Recorded() }

// httpHarness drives billingtest.HTTPGateway, an adapter that speaks JSON over HTTP to the
// fake provider served by billingtest.NewGatewayServer: the provider side is the memory
// harness's, the gateway under test is the HTTP client.
type httpHarness struct {
	*memoryHarness
	gateway billingtest.HTTPGateway
}

// newHTTPHarness serves a new fake provider on an httptest server, closed when t ends.
func newHTTPHarness(t *testing.T) *httpHarness {
	m := newMemoryHarness()
	srv := httptest.NewServer(billingtest.NewGatewayServer(m.provider))
	t.Cleanup(srv.Close)
	return &httpHarness{memoryHarness: m, gateway: billingtest.HTTPGateway{
		BaseURL: srv.URL, Client: &http.Client{Timeout: 10 * time.Second},
	}}
}

// Gateway returns the HTTP adapter.
func (h *httpHarness) Gateway() payment.Gateway { return h.gateway }

// ExampleRun wires the suite to two adapters of the fake provider: an adapter's author writes
// a harness like these for their provider's simulator or sandbox, and one test that calls
// Run with a function making a fresh harness (this package's own tests run exactly these).
func ExampleRun() {
	// In the adapter's _test.go file:
	testMemoryGateway := func(t *testing.T) {
		paymenttest.Run(t, func(*testing.T) paymenttest.Harness { return newMemoryHarness() })
	}
	testHTTPGateway := func(t *testing.T) {
		paymenttest.Run(t, func(t *testing.T) paymenttest.Harness { return newHTTPHarness(t) })
	}
	_, _ = testMemoryGateway, testHTTPGateway
}
