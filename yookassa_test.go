package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// yooBundle is an engine whose gateway is the YooKassa adapter talking to the YooKassa
// simulator, River on the test clock, and a tariff "pro" at 990 RUB a month. The engine,
// the adapter and the simulator read one clock: created_at at the simulator, the attempts'
// CreatedAt and the adapter's Lookup windows all move together.
type yooBundle struct {
	*testBundle
	sim     *yookassatest.Server
	gateway *yookassa.Gateway
	runner  *billingtest.Runner
}

// yooTrustedAddr is a notification sender inside YooKassa's documented networks.
const yooTrustedAddr = "185.71.76.10:44321"

// setupYooKassa starts a simulator and an engine on the adapter, with receipts (the
// customer's e-mail, VAT 22/122) as YooKassa requires. change adjusts the adapter's config.
func setupYooKassa(t *testing.T, change func(*yookassa.Config)) *yooBundle {
	t.Helper()
	sim := yookassatest.New()
	t.Cleanup(sim.Close)
	var gw *yookassa.Gateway
	tb := setupWith(t, func(c *billing.Config) {
		sim.SetClock(c.Clock.Now)
		cfg := yookassa.Config{
			ShopID: sim.ShopID(), SecretKey: yookassa.NewSecret(sim.SecretKey()), BaseURL: sim.URL(),
			HTTPClient: sim.Client(), Timeout: 10 * time.Second, Clock: c.Clock,
			Retry: yookassa.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond},
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		}
		change(&cfg)
		var err error
		gw, err = yookassa.New(cfg)
		require.NoError(t, err)
		c.Gateway, c.VAT = gw, payment.VAT22Of122
		c.ReceiptContact = func(_ context.Context, customerID string) (payment.Contact, error) {
			return payment.Contact{Email: customerID + "@example.ru"}, nil
		}
	})
	runner := tb.withRiver(t)
	tb.publish(t, "pro", "990", "generations", 500)
	return &yooBundle{testBundle: tb, sim: sim, gateway: gw, runner: runner}
}

// subscribe subscribes customer paying with the saved card method and charges the first
// period through the adapter.
func (b *yooBundle) subscribe(t *testing.T, customer, method string) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro", PaymentMethod: method, IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	res, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusActive, res.Subscription.Status, "the first charge succeeded at the simulator")
	return res.Subscription
}

// requestRefund records and verifies a TERMS 3.7 refund request of the current period, three
// days after the clock.
func (b *yooBundle) requestRefund(t *testing.T, subID string) billing.RefundRequest {
	t.Helper()
	ctx := context.Background()
	b.clock.Advance(3 * 24 * time.Hour)
	req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: subID, ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "refund-1"})
	require.NoError(t, err)
	require.True(t, req.Eligible, req.Explanation)
	_, err = b.engine.VerifyRefund(ctx, req.ID, "admin:1")
	require.NoError(t, err)
	return req
}

func (b *yooBundle) get(t *testing.T, id string) subscription.Subscription {
	t.Helper()
	sub, err := b.engine.SubscriptionGet(context.Background(), id)
	require.NoError(t, err)
	return sub
}

// simPayments returns the simulator's own record of the payments of subscription subID's
// period (the engine puts both in a payment's metadata).
func (b *yooBundle) simPayments(subID string, period int) []yookassatest.PaymentRecord {
	var out []yookassatest.PaymentRecord
	for _, p := range b.sim.Payments() {
		if p.Payment.Metadata["subscription_id"] == subID && p.Payment.Metadata["period"] == strconv.Itoa(period) {
			out = append(out, p)
		}
	}
	return out
}

// requireOneSucceeded requires exactly one payment at the simulator for the period, and
// that it succeeded.
func (b *yooBundle) requireOneSucceeded(t *testing.T, subID string, period int) yookassatest.PaymentRecord {
	t.Helper()
	ps := b.simPayments(subID, period)
	require.Len(t, ps, 1, "period %d: exactly one payment at the simulator", period)
	require.Equal(t, "succeeded", ps[0].Payment.Status, "period %d", period)
	require.Equal(t, "990.00", ps[0].Payment.Amount.Value, "period %d", period)
	return ps[0]
}

// simHolds is what the simulator holds for the shop: succeeded payments less succeeded and
// pending refunds, in kopecks, from its own records.
func simHolds(t *testing.T, sim *yookassatest.Server) int64 {
	t.Helper()
	kopecks := func(a yookassatest.Amount) int64 {
		require.Equal(t, "RUB", a.Currency)
		return decimal.RequireFromString(a.Value).Shift(2).IntPart()
	}
	var held int64
	for _, p := range sim.Payments() {
		if p.Payment.Status == "succeeded" {
			held += kopecks(p.Payment.Amount)
		}
	}
	for _, r := range sim.Refunds() {
		if r.Refund.Status != "canceled" {
			held -= kopecks(r.Refund.Amount)
		}
	}
	return held
}

// requireBooksMatchSimulator requires the ledger's provider account to equal what the
// simulator says it holds.
func (b *yooBundle) requireBooksMatchSimulator(t *testing.T, msg string) {
	t.Helper()
	bal, err := b.engine.Ledger().Balance(context.Background(), "provider:RUB", booksAt)
	require.NoError(t, err)
	require.Equal(t, simHolds(t, b.sim), bal.Net(), "%s: ledger provider:RUB must equal the simulator's succeeded payments − refunds", msg)
}

// notification returns the body of the simulator's notification of event about objectID.
func (b *yooBundle) notification(t *testing.T, event, objectID string) []byte {
	t.Helper()
	for _, n := range b.sim.Notifications() {
		if n.Event == event && n.ObjectID == objectID {
			return n.Body
		}
	}
	t.Fatalf("the simulator sent no %s about %s", event, objectID)
	return nil
}

// deliver is the host's notification endpoint: senders outside YooKassa's networks are
// refused (403) before anything is read, the body is parsed by the adapter and handed to
// the engine, which confirms it with Lookup. It returns the HTTP status the host would
// answer and the engine's error.
func (b *yooBundle) deliver(remoteAddr string, body []byte) (int, error) {
	if !b.gateway.FromYooKassa(remoteAddr) {
		return http.StatusForbidden, nil
	}
	ev, err := b.gateway.ParseNotification(body)
	if errors.Is(err, yookassa.ErrUnknownEvent) {
		return http.StatusOK, nil
	}
	if err != nil {
		return http.StatusBadRequest, err
	}
	if ev.Kind == payment.KindRefund {
		_, err = b.engine.HandleRefundWebhook(context.Background(), ev)
	} else {
		_, err = b.engine.HandlePaymentWebhook(context.Background(), ev)
	}
	if err != nil {
		return http.StatusInternalServerError, err
	}
	return http.StatusOK, nil
}

// TestYooKassaEndToEnd runs the engine through the YooKassa adapter on the simulator: every
// payment, refund, receipt and notification crosses the documented wire API, and each test
// checks the simulator's own records against the engine's books.
func TestYooKassaEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noChange := func(*yookassa.Config) {}

	t.Run("3.5 a year of monthly renewals: 12 renewals, each one payment at YooKassa", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		start := b.clock.Now()
		sub := b.subscribe(t, "c1", "pm-card-1")
		_, err := b.runner.RunUntil(ctx, start.AddDate(1, 0, 15))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, 13, got.Current.Number, "the first period and 12 renewals")
		for p := 1; p <= 13; p++ {
			rec := b.requireOneSucceeded(t, sub.ID, p)
			require.Equal(t, "pm-card-1", rec.PaymentMethodID, "period %d charges the saved card", p)
			require.True(t, rec.Capture, "period %d: a one-stage payment", p)
			require.Equal(t, "c1@example.ru", rec.Receipt.Customer.Email, "period %d: 54-FZ receipt to the customer", p)
			require.Equal(t, 12, rec.Receipt.Items[0].VatCode, "period %d: VAT 22/122", p)
		}
		require.Len(t, b.sim.Payments(), 13, "nothing else was charged")
		require.Equal(t, int64(13*99000), simHolds(t, b.sim))
		b.requireBooksMatchSimulator(t, "after a year")
	})

	t.Run("3.5 soft decline (insufficient_funds) is retried on the dunning schedule, then paid", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.Decline("insufficient_funds"))
		end := sub.Current.End
		_, err := b.runner.RunUntil(ctx, end.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status)
		_, err = b.runner.RunUntil(ctx, end.Add(25*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, 2, got.Current.Number)
		require.True(t, got.Current.Start.Equal(end.Add(24*time.Hour)), "paid on the first dunning retry, a day later: %s", got.Current.Start)

		ps := b.simPayments(sub.ID, 2)
		require.Len(t, ps, 2, "the declined renewal and its retry")
		statuses := map[string]string{}
		for _, p := range ps {
			reason := ""
			if p.Payment.CancellationDetails != nil {
				reason = p.Payment.CancellationDetails.Reason
			}
			statuses[p.Payment.Status] = reason
		}
		require.Equal(t, map[string]string{"canceled": "insufficient_funds", "succeeded": ""}, statuses)
		require.NotEqual(t, ps[0].IdempotenceKey, ps[1].IdempotenceKey, "a retry is a new attempt under a new key")
		b.requireBooksMatchSimulator(t, "after the retry")
	})

	t.Run("3.5 hard decline (card_expired) ends the subscription, never retried", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.Decline("card_expired"))
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(10*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, subscription.StatusEnded, b.get(t, sub.ID).Status)
		ps := b.simPayments(sub.ID, 2)
		require.Len(t, ps, 1, "no retry at YooKassa")
		require.Equal(t, "canceled", ps[0].Payment.Status)
		require.Equal(t, "card_expired", ps[0].Payment.CancellationDetails.Reason)
		atts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		require.Len(t, atts, 2, "the first charge and the one renewal attempt")
		require.Equal(t, payment.StateHardDeclined, atts[1].State)
		b.requireBooksMatchSimulator(t, "after the hard decline")
	})

	t.Run("3.7 refund: requested, verified, executed once with its 54-FZ return receipt", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		paid := b.requireOneSucceeded(t, sub.ID, 1)
		b.clock.Advance(3 * 24 * time.Hour)
		req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
			Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "refund-1"})
		require.NoError(t, err)
		require.True(t, req.Eligible, req.Explanation)
		_, err = b.engine.VerifyRefund(ctx, req.ID, "admin:1")
		require.NoError(t, err)
		done, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, done.State)

		refunds := b.sim.Refunds()
		require.Len(t, refunds, 1, "one refund at YooKassa")
		r := refunds[0]
		require.Equal(t, paid.Payment.ID, r.Refund.PaymentID, "of the period's payment")
		require.Equal(t, "succeeded", r.Refund.Status)
		require.Equal(t, "990.00", r.Refund.Amount.Value)
		require.Equal(t, done.ProviderRefundID, r.Refund.ID)
		require.NotNil(t, r.Receipt, "54-FZ: a return receipt")
		require.Equal(t, "c1@example.ru", r.Receipt.Customer.Email)
		require.Len(t, r.Receipt.Items, 1)
		require.Equal(t, 12, r.Receipt.Items[0].VatCode, "the charge's VAT, 22/122")
		require.Equal(t, "990.00", r.Receipt.Items[0].Amount.Value)

		again, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err, "executing a refunded request again is a no-op")
		require.Equal(t, refund.StateRefunded, again.State)
		require.Len(t, b.sim.Refunds(), 1, "and refunds nothing more")
		require.Zero(t, simHolds(t, b.sim))
		b.requireBooksMatchSimulator(t, "after the refund")
	})

	t.Run("3.8 a pending refund completes on YooKassa's refund.succeeded notification", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.ScriptRefunds(yookassatest.Pending())
		req := b.requestRefund(t, sub.ID)
		sent, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateExecuting, sent.State, "YooKassa took the refund and will confirm it")
		refunds := b.sim.Refunds()
		require.Len(t, refunds, 1)
		require.NoError(t, b.sim.SucceedRefund(refunds[0].Refund.ID))
		status, err := b.deliver(yooTrustedAddr, b.notification(t, "refund.succeeded", refunds[0].Refund.ID))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		got, err := b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
		require.Len(t, b.sim.Refunds(), 1)
		b.requireBooksMatchSimulator(t, "after the refund notification")
	})

	t.Run("3.8 a refund YooKassa cancels (rejected_by_payee) fails, moves no money, and is not retried blindly", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.ScriptRefunds(yookassatest.Decline("rejected_by_payee"))
		req := b.requestRefund(t, sub.ID)
		got, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateFailed, got.State, "the money must go back another way")
		require.Equal(t, "rejected_by_payee", got.DeclineCode)
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour))
		require.NoError(t, err)
		refunds := b.sim.Refunds()
		require.Len(t, refunds, 1)
		require.Equal(t, "canceled", refunds[0].Refund.Status)
		require.Equal(t, int64(99000), simHolds(t, b.sim))
		b.requireBooksMatchSimulator(t, "after the refused refund")
	})

	t.Run("3.8 a refund whose answer was lost is found by LookupRefund's listing and booked once", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(c *yookassa.Config) { c.Retry.MaxAttempts = 1 })
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.ScriptRefunds(yookassatest.TimeoutAfterSuccess())
		req := b.requestRefund(t, sub.ID)
		_, _ = b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"}) // the answer is lost
		got, err := b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateExecuting, got.State, "the outcome is unknown")
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour)) // the retry job looks the key up
		require.NoError(t, err)
		got, err = b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State)
		require.Len(t, b.sim.Refunds(), 1, "never refunded twice")
		require.Positive(t, b.sim.Requests().ListRefunds, "found by listing the payment's refunds")
		b.requireBooksMatchSimulator(t, "after the lookup")
	})

	t.Run("3.5 a pending renewal settled at YooKassa later is booked once by reconciliation", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.PendingThen(30*time.Minute, yookassatest.Success()))
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, b.get(t, sub.ID).Current.Number, "pending grants nothing (TERMS 3.3)")
		_, err = b.engine.ReconcilePayments(ctx) // the host's periodic job (Engine.PeriodicJobs)
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, 2, got.Current.Number)
		b.requireOneSucceeded(t, sub.ID, 2)
		b.requireBooksMatchSimulator(t, "after the pending renewal")
	})

	t.Run("3.3 a checkout whose notification was lost is settled by reconciliation a day later", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		b.clock.Advance(20 * time.Hour) // the customer comes back to the page the next day
		require.NoError(t, b.sim.Succeed(co.Attempt.ProviderPaymentID))
		b.clock.Advance(6 * time.Hour)           // past YooKassa's 24 hours of the key
		_, err = b.engine.ReconcilePayments(ctx) // the host's periodic job (Engine.PeriodicJobs)
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status, "reconciliation looked the checkout up")
		rec, _ := b.sim.Payment(co.Attempt.ProviderPaymentID)
		require.Equal(t, rec.Payment.PaymentMethod.ID, got.PaymentMethod)
		require.Len(t, b.sim.Payments(), 1)
		b.requireBooksMatchSimulator(t, "after reconciliation")
	})

	t.Run("3.3 checkout on YooKassa's page: the notification activates, the saved method renews", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.Equal(t, payment.StatePending, co.Attempt.State)
		rec, ok := b.sim.Payment(co.Attempt.ProviderPaymentID)
		require.True(t, ok, "the payment exists at YooKassa")
		require.Equal(t, "pending", rec.Payment.Status)
		require.True(t, rec.SavePaymentMethod, "the checkout asks to save the method for renewals")
		require.NotNil(t, rec.Payment.Confirmation)
		require.Equal(t, rec.Payment.Confirmation.ConfirmationURL, co.ConfirmationURL)
		require.Equal(t, returnURL, rec.Payment.Confirmation.ReturnURL)

		require.NoError(t, b.sim.Succeed(co.Attempt.ProviderPaymentID)) // the customer pays on the page
		status, err := b.deliver(yooTrustedAddr, b.notification(t, "payment.succeeded", co.Attempt.ProviderPaymentID))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		rec, _ = b.sim.Payment(co.Attempt.ProviderPaymentID)
		require.NotNil(t, rec.Payment.PaymentMethod)
		require.True(t, rec.Payment.PaymentMethod.Saved)
		saved := rec.Payment.PaymentMethod.ID
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, saved, got.PaymentMethod, "the method YooKassa saved is the renewals' token")
		b.requireBooksMatchSimulator(t, "after the checkout")

		b.clock.Set(got.Current.End)
		require.NoError(t, b.runner.RunDue(ctx))
		renewal := b.requireOneSucceeded(t, sub.ID, 2)
		require.Equal(t, saved, renewal.PaymentMethodID, "the renewal charges the saved method")
		require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
		b.requireBooksMatchSimulator(t, "after the renewal")
	})

	t.Run("3.3 a checkout whose answer was lost: the next StartCheckout gives the page of the one payment", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(c *yookassa.Config) { c.Retry.MaxAttempts = 1 })
		b.sim.ScriptAll(yookassatest.InternalErrorAfterSuccess()) // created, then 500: the result is unknown
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.Equal(t, payment.StateUnknown, co.Attempt.State)
		require.Empty(t, co.ConfirmationURL, "no answer, no page yet")
		b.clock.Advance(25 * time.Hour) // the customer comes back after YooKassa forgot the key
		var again billing.CheckoutResult
		for range 2 { // the first call's lookup may take one call, as in TestCheckoutOnTheProvidersPage
			again, err = b.engine.StartCheckout(ctx, sub.ID, returnURL)
			require.NoError(t, err)
		}
		require.Len(t, b.sim.Payments(), 1, "one payment at YooKassa")
		rec := b.sim.Payments()[0]
		require.Equal(t, payment.StatePending, again.Attempt.State)
		require.Equal(t, rec.Payment.ID, again.Attempt.ProviderPaymentID)
		require.Equal(t, rec.Payment.Confirmation.ConfirmationURL, again.ConfirmationURL,
			"the customer must be sent to the page of the payment that exists, or the checkout can never be paid")
	})

	t.Run("3.3 the notification of a checkout whose answer was lost finds the attempt by its key", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(c *yookassa.Config) { c.Retry.MaxAttempts = 1 })
		b.sim.ScriptAll(yookassatest.InternalErrorAfterSuccess())
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.Equal(t, payment.StateUnknown, co.Attempt.State)
		require.Empty(t, co.Attempt.ProviderPaymentID, "the engine never heard of the payment")
		id := b.sim.Payments()[0].Payment.ID
		require.NoError(t, b.sim.Succeed(id)) // the customer reached the page some other way (a retry the host made)
		status, err := b.deliver(yooTrustedAddr, b.notification(t, "payment.succeeded", id))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		rec, _ := b.sim.Payment(id)
		require.Equal(t, rec.Payment.PaymentMethod.ID, got.PaymentMethod)
		b.requireBooksMatchSimulator(t, "after the notification")
	})

	t.Run("3.3 a checkout abandoned on the page: YooKassa's payment.canceled ends it, nothing granted", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		require.NoError(t, b.sim.Cancel(co.Attempt.ProviderPaymentID, "expired_on_confirmation"))
		body := b.notification(t, "payment.canceled", co.Attempt.ProviderPaymentID)
		for range 2 { // a redelivered notification is a no-op
			status, err := b.deliver(yooTrustedAddr, body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
		}
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusEnded, got.Status)
		require.Nil(t, got.Current, "no period was ever granted")
		require.Empty(t, got.PaymentMethod)
		require.Len(t, b.sim.Payments(), 1)
		b.requireBooksMatchSimulator(t, "after the abandoned checkout")
	})

	t.Run("3.5 a pending renewal declined later (insufficient_funds): its notification starts the dunning", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		end := sub.Current.End
		b.sim.Script("pm-card-1", yookassatest.PendingThen(30*time.Minute, yookassatest.Decline("insufficient_funds")))
		_, err := b.runner.RunUntil(ctx, end.Add(time.Hour))
		require.NoError(t, err)
		ps := b.simPayments(sub.ID, 2)
		require.Len(t, ps, 1)
		require.Equal(t, "canceled", ps[0].Payment.Status, "settled by the simulator's clock")
		status, err := b.deliver(yooTrustedAddr, b.notification(t, "payment.canceled", ps[0].Payment.ID))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status)
		_, err = b.runner.RunUntil(ctx, end.Add(26*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status, "the dunning retry paid")
		require.Equal(t, 2, got.Current.Number)
		require.Len(t, b.simPayments(sub.ID, 2), 2)
		b.requireBooksMatchSimulator(t, "after the dunning")
	})

	t.Run("3.5 YooKassa answers 429 to every try of a renewal: nothing made, the same key charges once later", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.TooManyRequests(), yookassatest.TooManyRequests(), yookassatest.TooManyRequests())
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, 2, got.Current.Number)
		rec := b.requireOneSucceeded(t, sub.ID, 2)
		atts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		require.Len(t, atts, 2, "one renewal attempt, sent again under its key")
		require.Equal(t, atts[1].IdempotencyKey, rec.IdempotenceKey)
		b.requireBooksMatchSimulator(t, "after the throttled renewal")
	})

	t.Run("3.3 forged notifications change nothing: a false body, a stranger's address", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
		require.NoError(t, err)
		co, err := b.engine.StartCheckout(ctx, sub.ID, returnURL)
		require.NoError(t, err)
		id := co.Attempt.ProviderPaymentID

		rec, _ := b.sim.Payment(id)
		lie := rec.Payment
		lie.Status, lie.Paid = "succeeded", true
		forged, err := json.Marshal(yookassatest.Notification{Type: "notification", Event: "payment.succeeded", Object: lie})
		require.NoError(t, err)
		_, err = b.deliver(yooTrustedAddr, forged)
		require.ErrorIs(t, err, billing.ErrWebhookNotConfirmed, "YooKassa says pending")
		require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status)

		require.NoError(t, b.sim.Succeed(id))
		genuine := b.notification(t, "payment.succeeded", id)
		status, err := b.deliver("203.0.113.7:5555", genuine)
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, status, "a sender outside YooKassa's networks")
		require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status, "a refused sender changes nothing")
		atts, err := b.engine.AttemptList(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatePending, atts[0].State)

		status, err = b.deliver(yooTrustedAddr, genuine)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, subscription.StatusActive, b.get(t, sub.ID).Status, "the genuine notification from YooKassa's address")
		require.Len(t, b.sim.Payments(), 1)
		b.requireBooksMatchSimulator(t, "after the genuine notification")
	})

	t.Run("3.5 timeout after success at renewal: the adapter's retry recovers it, booked once", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, noChange)
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.TimeoutAfterSuccess())
		before := b.sim.Requests().CreatePayment
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
		b.requireOneSucceeded(t, sub.ID, 2)
		require.GreaterOrEqual(t, b.sim.Requests().CreatePayment-before, 2, "the lost answer was asked again under its key")
		b.requireBooksMatchSimulator(t, "after the lost answer")
	})

	t.Run("3.5 timeout after success at renewal, no retries: Lookup lists by created_at and finds it, booked once", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(c *yookassa.Config) { c.Retry.MaxAttempts = 1 })
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.Script("pm-card-1", yookassatest.TimeoutAfterSuccess())
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(2*time.Hour))
		require.NoError(t, err)
		got := b.get(t, sub.ID)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, 2, got.Current.Number)
		b.requireOneSucceeded(t, sub.ID, 2)
		require.Positive(t, b.sim.Requests().ListPayments, "the engine asked Lookup, which listed payments")
		b.requireBooksMatchSimulator(t, "after the lookup")
	})
}
