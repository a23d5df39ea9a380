package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// TestRaceStartCheckoutVsFirstPayment: on one pending subscription with a saved card,
// StartCheckout, ChargeFirstPayment, FailFirstPayment (every other round) and
// ReconcilePayments at once; then the provider settles whatever is pending as paid and its
// webhook races the same commands again. Afterwards: at most one charge of period 1 kept
// (charges less refunds), access only for an active subscription whose charge is kept,
// every charge of an ended subscription refunded, books = provider.
func TestRaceStartCheckoutVsFirstPayment(t *testing.T) {
	ctx := context.Background()
	for r := 0; r < raceRounds(t, 4); r++ {
		b := setupRenewals(t)
		customer, tok := fmt.Sprintf("c%d", r), fmt.Sprintf("tok-%d", r)
		if r%4 >= 2 {
			b.gateway.Script(tok, billingtest.Pending) // the saved card's charge waits too
		}
		sub := regSubscribe(t, b, customer, tok)
		fail := r%2 == 1
		race := func(extra func()) {
			b.gateway.SetLatency(time.Millisecond)
			gate := newGate()
			run := gate.run
			run(func() { _, _ = b.engine.StartCheckout(ctx, sub.ID, returnURL) })
			run(func() { _, _ = b.engine.StartCheckout(ctx, sub.ID, returnURL) })
			run(func() { _, _ = b.engine.ChargeFirstPayment(ctx, sub.ID) })
			run(func() { _, _ = b.engine.ReconcilePayments(ctx) })
			if fail {
				run(func() { _, _ = b.engine.FailFirstPayment(ctx, sub.ID, "customer gave up") })
			}
			if extra != nil {
				run(extra)
				run(extra)
			}
			gate.open()
			b.gateway.SetLatency(0)
		}
		race(nil)
		// The provider settles what waits as paid; its webhook races the commands.
		for _, a := range regAttempts(t, b, sub.ID) {
			if a.State != payment.StatePending || a.ProviderPaymentID == "" {
				continue
			}
			ev, err := b.gateway.Confirm(a.ProviderPaymentID, payment.OutcomeSucceeded)
			require.NoError(t, err)
			race(func() { _, _ = b.engine.HandlePaymentWebhook(ctx, ev) })
		}
		b.clock.Advance(2 * time.Minute)
		_, err := b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		regRunFor(t, b, time.Hour)

		got := b.get(t, sub.ID)
		acc, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		charges := b.gateway.ChargesFor(sub.ID, 1)
		refunded := map[string]int64{}
		for _, rf := range b.gateway.Refunds() {
			refunded[rf.ProviderPaymentID] += rf.Amount
		}
		kept := 0
		for _, c := range charges {
			if refunded[c.ProviderPaymentID] < c.Amount {
				kept++
			}
		}
		t.Logf("round %d (fail %v): subscription %s, access %v, period-1 charges %d kept %d, attempts %d",
			r, fail, got.Status, acc.Granted, len(charges), kept, len(regAttempts(t, b, sub.ID)))
		require.LessOrEqual(t, kept, 1, "round %d: two charges of period 1 kept", r)
		if got.Status == subscription.StatusActive {
			require.Equal(t, 1, kept, "round %d: active without a kept charge", r)
		} else {
			require.False(t, acc.Granted, "round %d: access for a %s subscription", r, got.Status)
			require.Zero(t, kept, "round %d: a charge of a %s checkout is kept", r, got.Status)
		}
		requireBooksMatchProvider(t, b.engine, b.gateway, fmt.Sprintf("round %d", r))
	}
}
