package billing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
)

// contacts is a host's ReceiptContact hook over a map, counting its calls.
type contacts struct {
	mu    sync.Mutex
	byID  map[string]payment.Contact
	fail  error
	calls int
}

func (c *contacts) lookup(_ context.Context, customerID string) (payment.Contact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		return payment.Contact{}, c.fail
	}
	return c.byID[customerID], nil
}

// TestReceipts: every 54-FZ receipt the engine sends carries the customer's contact from the
// host's hook (the engine keeps no personal data, TERMS 5.1), and a refund's return receipt
// repeats the VAT code its charge was made under, also after Config.VAT changed.
func TestReceipts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("5.1 charges, renewals and refunds carry the customer's contact", func(t *testing.T) {
		t.Parallel()
		hook := &contacts{byID: map[string]payment.Contact{"c1": {Email: "c1@example.ru"}}}
		gw := billingtest.NewGateway()
		tb := setupWith(t, func(c *billing.Config) {
			c.Gateway, c.VAT, c.ReceiptContact = gw, payment.VAT22Of122, hook.lookup
		})
		b := &renewalBundle{testBundle: tb, gateway: gw, runner: tb.withRiver(t)}
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.checkout(t, "c1", "tok-1")
		b.clock.Set(sub.Current.End)
		require.NoError(t, b.runner.RunDue(ctx))
		rb := &refundBundle{testBundle: tb, gateway: gw, runner: b.runner}
		req := rb.request(t, sub.ID, b.clock.Now(), "refund-1")
		rb.verify(t, req.ID)
		_, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)

		charges := gw.Charges()
		require.Len(t, charges, 2, "the first charge and the renewal")
		for _, c := range charges {
			require.Equal(t, "c1@example.ru", c.Receipt.Customer.Email, "charge %s", c.ProviderPaymentID)
			require.Equal(t, payment.VAT22Of122, c.Receipt.Items[0].VAT)
		}
		refunds := gw.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, "c1@example.ru", refunds[0].Receipt.Customer.Email)
		require.Equal(t, payment.ReceiptIncomeReturn, refunds[0].Receipt.Kind)
	})

	t.Run("a refund repeats the VAT of its charge after Config.VAT changed (2025 rate, 2026 refund)", func(t *testing.T) {
		t.Parallel()
		rb, sub := setupRefundsWith(t, func(c *billing.Config) { c.VAT = payment.VAT20Of120 })
		req := rb.request(t, sub.ID, rb.clock.Now(), "refund-1")
		rb.verify(t, req.ID)
		cfg := billing.DefaultConfig() // the operator moved to the new rate and restarted
		cfg.Clock, cfg.Gateway, cfg.VAT = rb.clock, rb.gateway, payment.VAT22Of122
		after, err := billing.New(rb.pool, cfg)
		require.NoError(t, err)
		restarted := *rb.testBundle
		restarted.engine = after
		restarted.withRiverNotStarted(t)
		_, err = after.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		refunds := rb.gateway.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, payment.VAT20Of120, rb.gateway.Charges()[0].Receipt.Items[0].VAT, "setup: charged under the old rate")
		require.Equal(t, payment.VAT20Of120, refunds[0].Receipt.Items[0].VAT, "the return receipt repeats the charge's rate")
		got, err := after.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
	})

	t.Run("no contact from the host: nothing is sent, the charge waits", func(t *testing.T) {
		t.Parallel()
		hook := &contacts{fail: errors.New("crm down")}
		gw := billingtest.NewGateway()
		tb := setupWith(t, func(c *billing.Config) { c.Gateway, c.ReceiptContact = gw, hook.lookup })
		tb.withRiverNotStarted(t)
		tb.publish(t, "pro", "990", "generations", 500)
		sub, err := tb.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "s"})
		require.NoError(t, err)
		_, err = tb.engine.ChargeFirstPayment(ctx, sub.ID)
		require.ErrorContains(t, err, "crm down")
		require.Zero(t, gw.Calls().Charge, "no receipt, no charge")
		hook.mu.Lock()
		hook.fail = nil
		hook.byID = map[string]payment.Contact{"c1": {Phone: "+79990000000"}}
		hook.mu.Unlock()
		tb.clock.Advance(2 * time.Minute)
		res, err := tb.engine.ChargeFirstPayment(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StateSucceeded, res.Attempt.State)
		require.Equal(t, "+79990000000", gw.Charges()[0].Receipt.Customer.Phone)
	})
}
