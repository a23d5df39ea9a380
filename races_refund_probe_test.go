package billing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
)

// TestRaceRefundRetryVsStaleCanceledWebhook: a refund request whose first refund the
// provider canceled (pending, then refund.canceled: the request is failed) is executed again
// by the operator while the provider redelivers the first refund's refund.canceled
// notification. The redelivered notification reads the request under its old key, looks
// that key up (canceled) and settles the request's new try with it: the second refund,
// which the provider then pays, is never booked (the request stays failed, the webhook of
// the paid refund is a no-op). Expected: books = provider and the request refunded.
func TestRaceRefundRetryVsStaleCanceledWebhook(t *testing.T) {
	ctx := context.Background()
	bad := 0
	rounds := raceRounds(t, 6)
	for r := 0; r < rounds; r++ {
		rb, sub := setupRefunds(t)
		req := rb.request(t, sub.ID, rb.clock.Now(), fmt.Sprintf("refund-%d", r))
		rb.verify(t, req.ID)
		rb.gateway.ScriptRefunds(billingtest.Pending, billingtest.Pending)
		got, err := rb.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateExecuting, got.State)
		ev1, err := rb.gateway.ConfirmRefund("rfd_1", payment.OutcomeSoftDeclined)
		require.NoError(t, err)
		_, err = rb.engine.HandleRefundWebhook(ctx, ev1)
		require.NoError(t, err)
		got, err = rb.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateFailed, got.State, "setup: the canceled refund fails the request")

		rb.gateway.SetLatency(3 * time.Millisecond)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _ = rb.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		}()
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _ = rb.engine.HandleRefundWebhook(ctx, ev1) // the provider redelivers
			}()
		}
		close(start)
		wg.Wait()
		rb.gateway.SetLatency(0)

		// The provider pays the second refund and notifies; the retry jobs and the sweep run.
		ev2, err := rb.gateway.ConfirmRefund("rfd_2", payment.OutcomeSucceeded)
		require.NoError(t, err, "round %d: the second try reached the provider", r)
		_, werr := rb.engine.HandleRefundWebhook(ctx, ev2)
		_, err = rb.engine.SweepDueRenewals(ctx)
		require.NoError(t, err)
		_, err = rb.runner.RunUntil(ctx, rb.clock.Now().Add(24*time.Hour))
		require.NoError(t, err)

		got, err = rb.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		bal, err := rb.engine.Ledger().Balance(ctx, "provider:RUB", booksAt)
		require.NoError(t, err)
		t.Logf("round %d: request %s, provider refunds %d, books provider:RUB %d vs provider %d, webhook of the paid refund: %v",
			r, got.State, len(rb.gateway.Refunds()), bal.Net(), providerHolds(rb.gateway), werr)
		if got.State != refund.StateRefunded || bal.Net() != providerHolds(rb.gateway) {
			bad++
		}
	}
	require.Zero(t, bad, "%d of %d rounds: a refund the provider paid is not in the books (request not refunded)", bad, rounds)
}

// TestRaceSweptRefundRetryVsExecuteRefund: the same stale settlement through RetryRefund,
// the job the sweep now restarts for every executing request. The first refund is pending
// and the provider cancels it without a notification reaching the engine; several retry
// jobs look it up at once (the sweep's and the request's own) while the operator executes
// the request again as soon as it shows failed. A retry job that read the request under the
// first key settles the second try with the first key's cancellation. Expected: the refund
// the provider pays is booked and the request refunded.
func TestRaceSweptRefundRetryVsExecuteRefund(t *testing.T) {
	ctx := context.Background()
	bad := 0
	rounds := raceRounds(t, 6)
	for r := 0; r < rounds; r++ {
		rb, sub := setupRefunds(t)
		req := rb.request(t, sub.ID, rb.clock.Now(), fmt.Sprintf("refund-%d", r))
		rb.verify(t, req.ID)
		rb.gateway.ScriptRefunds(billingtest.Pending, billingtest.Pending)
		_, err := rb.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		_, err = rb.gateway.ConfirmRefund("rfd_1", payment.OutcomeSoftDeclined) // its notification is lost
		require.NoError(t, err)

		rb.gateway.SetLatency(2 * time.Millisecond)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 3; i++ {
					_ = billing.RetryRefund(rb.engine, ctx, req.ID)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 40; i++ { // the operator retries once the request shows failed
				got, err := rb.engine.RefundRequestGet(ctx, req.ID)
				if err == nil && got.State == refund.StateFailed {
					_, _ = rb.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		close(start)
		wg.Wait()
		rb.gateway.SetLatency(0)

		ev2, err := rb.gateway.ConfirmRefund("rfd_2", payment.OutcomeSucceeded)
		if err != nil {
			t.Logf("round %d: no second try reached the provider (%v)", r, err)
			continue
		}
		_, werr := rb.engine.HandleRefundWebhook(ctx, ev2)
		_, err = rb.engine.SweepDueRenewals(ctx)
		require.NoError(t, err)
		_, err = rb.runner.RunUntil(ctx, rb.clock.Now().Add(24*time.Hour))
		require.NoError(t, err)
		got, err := rb.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		bal, err := rb.engine.Ledger().Balance(ctx, "provider:RUB", booksAt)
		require.NoError(t, err)
		t.Logf("round %d: request %s, provider refunds %d, books provider:RUB %d vs provider %d, webhook of the paid refund: %v",
			r, got.State, len(rb.gateway.Refunds()), bal.Net(), providerHolds(rb.gateway), werr)
		if got.State != refund.StateRefunded || bal.Net() != providerHolds(rb.gateway) {
			bad++
		}
	}
	require.Zero(t, bad, "%d of %d rounds: a refund the provider paid is not in the books (request not refunded)", bad, rounds)
}
