package yookassa_test

import (
	"context"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/paymenttest"
	"github.com/smm-gpt/billing/payment/yookassa"
	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
)

// TestConformance runs the payment.Gateway conformance suite (and its Checkout checks)
// against the adapter talking to the YooKassa simulator. With retries, a lost answer is
// recovered under the same key; without, it is an error the suite's Lookup settles: the
// suite's LostAnswer check takes both.
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("with retries", func(t *testing.T) {
		t.Parallel()
		paymenttest.Run(t, func(t *testing.T) paymenttest.Harness { return newSimHarness(t, 3) })
	})
	t.Run("without retries", func(t *testing.T) {
		t.Parallel()
		paymenttest.Run(t, func(t *testing.T) paymenttest.Harness { return newSimHarness(t, 1) })
	})
}

// simHarness drives the adapter on a fresh simulator. The simulator's clock follows the
// system clock, as the suite stamps its attempts with time.Now (the adapter's Lookup lists
// payments by created_at from the attempt's CreatedAt).
type simHarness struct {
	sim      *yookassatest.Server
	gw       *yookassa.Gateway
	attempts int // the adapter's Retry.MaxAttempts
	tokens   atomic.Int64
}

// newSimHarness starts a simulator, closed when t ends, and the adapter on it, sending each
// request at most attempts times, without waiting between them.
func newSimHarness(t *testing.T, attempts int) *simHarness {
	t.Helper()
	sim := yookassatest.New()
	t.Cleanup(sim.Close)
	sim.SetClock(time.Now)
	gw, err := yookassa.New(yookassa.Config{
		ShopID: sim.ShopID(), SecretKey: yookassa.NewSecret(sim.SecretKey()), BaseURL: sim.URL(),
		HTTPClient: sim.Client(), Timeout: 10 * time.Second,
		Retry:           yookassa.RetryPolicy{MaxAttempts: attempts, BaseDelay: time.Millisecond},
		Sleep:           func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	require.NoError(t, err)
	return &simHarness{sim: sim, gw: gw, attempts: attempts}
}

// Gateway returns the adapter.
func (h *simHarness) Gateway() payment.Gateway { return h.gw }

// NewPaymentMethod makes a new saved-card id and scripts its first payment at the simulator.
func (h *simHarness) NewPaymentMethod(t testing.TB, b paymenttest.Behaviour) string {
	id := "pm-conformance-" + strconv.FormatInt(h.tokens.Add(1), 10)
	switch b {
	case paymenttest.Succeed:
	case paymenttest.SoftDecline:
		h.sim.Script(id, yookassatest.Decline("insufficient_funds"))
	case paymenttest.HardDecline:
		h.sim.Script(id, yookassatest.Decline("card_expired"))
	case paymenttest.Pending:
		h.sim.Script(id, yookassatest.Pending())
	case paymenttest.LostAnswer:
		h.sim.Script(id, yookassatest.TimeoutAfterSuccess())
	case paymenttest.FailBeforeProvider:
		for range h.attempts {
			h.sim.Script(id, yookassatest.InternalError()) // every retry of the first Charge fails too
		}
	default:
		return ""
	}
	return id
}

// Settle settles a pending payment at the simulator.
func (h *simHarness) Settle(t testing.TB, providerPaymentID string, outcome payment.Outcome) {
	t.Helper()
	var err error
	switch outcome {
	case payment.OutcomeSucceeded:
		err = h.sim.Succeed(providerPaymentID)
	case payment.OutcomeSoftDeclined:
		err = h.sim.Cancel(providerPaymentID, "insufficient_funds")
	case payment.OutcomeHardDeclined:
		err = h.sim.Cancel(providerPaymentID, "card_expired")
	default:
		t.Fatalf("Settle %s as %s: not a settlement", providerPaymentID, outcome)
	}
	if err != nil {
		t.Fatalf("Settle %s as %s: %v", providerPaymentID, outcome, err)
	}
}

// PayOnPage plays the customer on YooKassa's page: the payment succeeds and saves its method,
// or is canceled.
func (h *simHarness) PayOnPage(t testing.TB, providerPaymentID string, outcome payment.Outcome) {
	t.Helper()
	h.Settle(t, providerPaymentID, outcome)
}

// ProviderPayments counts the simulator's payments, whatever their status.
func (h *simHarness) ProviderPayments(testing.TB) int { return len(h.sim.Payments()) }
