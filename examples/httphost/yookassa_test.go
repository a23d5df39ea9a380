package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
	"github.com/smm-gpt/billing/tariff"
)

// ykBundle is the service on YooKassa's simulator (SIMULATOR: not the real service; it
// follows the documented API as far as the adapter uses it), with its notifications posted
// to the service's /webhooks/yookassa.
type ykBundle struct {
	testBundle
	sim     *yookassatest.Server
	handler http.Handler
}

func setupYooKassa(t *testing.T) *ykBundle {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	sim := yookassatest.New()
	t.Cleanup(sim.Close)
	sim.SetClock(time.Now)
	gw, err := simulatedGateway(sim, logger)
	require.NoError(t, err)
	prov := &provider{gateway: gw, sim: sim}
	h, err := newHost(ctx, billingtest.NewPool(t), gw, logger)
	require.NoError(t, err)
	_, err = h.engine.Tariffs().Publish(ctx, "test", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 5}}})
	require.NoError(t, err)
	require.NoError(t, h.river.Start(ctx))
	t.Cleanup(func() { h.stopRiver(logger) })
	handler := newServer(h, prov, logger)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	sim.SetWebhookURL(srv.URL + "/webhooks/yookassa")
	return &ykBundle{testBundle: testBundle{srv: srv}, sim: sim, handler: handler}
}

// notify posts a notification body to the webhook from remote (the TCP peer's address).
func (b *ykBundle) notify(t *testing.T, remote, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/yookassa", strings.NewReader(body))
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// paymentNotification is a payment notification as YooKassa sends it (the fields the adapter
// reads), claiming status about payment id under key.
func paymentNotification(id, key, status string) string {
	return fmt.Sprintf(`{"type":"notification","event":"payment.%s","object":{"id":%q,"status":%q,
		"paid":true,"amount":{"value":"990.00","currency":"RUB"},"created_at":"2026-12-01T00:00:00.000Z",
		"test":true,"refundable":true,"metadata":{"billing_idempotency_key":%q}}}`, status, id, status, key)
}

// TestYooKassaCheckout: a new customer pays on YooKassa's page; the service answers the
// confirmation URL, and the notification, confirmed with the API, activates the subscription.
func TestYooKassaCheckout(t *testing.T) {
	t.Parallel()
	b := setupYooKassa(t)
	body := map[string]string{"customer_id": "anna", "tariff_code": "pro", "return_url": "https://app.example/back", "email": "anna@example.ru"}
	code, sub := b.do(t, "POST", "/subscriptions", "co-1", body)
	require.Equal(t, http.StatusAccepted, code, sub)
	require.Equal(t, "pending", sub["status"], "3.3 no access before the payment")
	require.NotEmpty(t, sub["confirmation_url"])
	id, pay := sub["id"].(string), field(sub, "payment", "provider_payment_id").(string)

	code, again := b.do(t, "POST", "/subscriptions", "co-1", body)
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, sub["confirmation_url"], again["confirmation_url"], "a retry continues the same payment")
	require.Len(t, b.sim.Payments(), 1)

	code, res := b.do(t, "POST", "/simulator/payments/"+pay+"/succeed", "", nil) // the customer pays
	require.Equal(t, http.StatusOK, code, res)
	notes := b.sim.Notifications()
	require.NotEmpty(t, notes)
	require.Equal(t, http.StatusOK, notes[len(notes)-1].StatusCode, "the service took YooKassa's notification")
	code, got := b.do(t, "GET", "/subscriptions/"+id, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", got["status"])
	require.Equal(t, true, field(got, "access", "granted"))
	rec, ok := b.sim.Payment(pay)
	require.True(t, ok)
	require.NotNil(t, rec.Receipt, "a 54-FZ receipt went with the payment")
	require.Equal(t, "anna@example.ru", rec.Receipt.Customer.Email)

	code, res = b.do(t, "POST", "/subscriptions", "co-2", map[string]string{"customer_id": "boris", "tariff_code": "pro", "return_url": "https://app.example/back"})
	require.Equal(t, http.StatusBadRequest, code, "no e-mail: no receipt, no payment")
	require.Equal(t, "invalid_input", res["error"])
}

// TestYooKassaWebhookRefusals: the webhook acts only on what the API says.
func TestYooKassaWebhookRefusals(t *testing.T) {
	t.Parallel()
	b := setupYooKassa(t)
	code, sub := b.do(t, "POST", "/subscriptions", "co-1",
		map[string]string{"customer_id": "anna", "tariff_code": "pro", "return_url": "https://app.example/back", "email": "anna@example.ru"})
	require.Equal(t, http.StatusAccepted, code, sub)
	id, pay := sub["id"].(string), field(sub, "payment", "provider_payment_id").(string)
	rec, ok := b.sim.Payment(pay)
	require.True(t, ok)
	forged := paymentNotification(pay, rec.IdempotenceKey, "succeeded")

	code, _ = b.notify(t, "203.0.113.7:4242", forged)
	require.Equal(t, http.StatusForbidden, code, "not from YooKassa's networks")
	code, out := b.notify(t, "127.0.0.1:4242", forged)
	require.Equal(t, http.StatusBadRequest, code, "the API says pending: %s", out)
	require.Contains(t, out, "webhook not confirmed")
	code, got := b.do(t, "GET", "/subscriptions/"+id, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "pending", got["status"], "a forged notification changes nothing")

	code, _ = b.notify(t, "127.0.0.1:4242", `{"type":"notification","event":"deal.closed","object":{"id":"d1"}}`)
	require.Equal(t, http.StatusOK, code, "an event we do not handle: 200, so YooKassa stops retrying")
	code, _ = b.notify(t, "127.0.0.1:4242", paymentNotification("2f00ffff-000f-5000-8000-00000000ffff", "someone_elses", "succeeded"))
	require.Equal(t, http.StatusOK, code, "a payment not ours: 200")
	code, _ = b.notify(t, "127.0.0.1:4242", `not json`)
	require.Equal(t, http.StatusBadRequest, code)
}
