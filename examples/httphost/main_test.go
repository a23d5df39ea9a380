package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/tariff"
)

// testBundle is the service on its own migrated database, with real River (real time) and
// the fake gateway, behind an httptest server: the API, the console and River UI, as run
// serves them.
type testBundle struct {
	srv     *httptest.Server
	gateway *billingtest.Gateway
	host    *host
}

// setup starts the service with a tariff "pro": 990 RUB a month, 5 generations.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	logger := slog.New(slog.DiscardHandler)
	gateway := billingtest.NewGateway()
	h, err := newHost(ctx, pool, gateway, logger)
	require.NoError(t, err)
	_, err = h.engine.Tariffs().Publish(ctx, "test", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 5}}})
	require.NoError(t, err)
	require.NoError(t, h.river.Start(ctx))
	t.Cleanup(func() { h.stopRiver(logger) })
	handler, err := withOperatorPages(t.Context(), newServer(h, nil, logger), h, logger)
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testBundle{srv: srv, gateway: gateway, host: h}
}

// do sends a request with body (a string is sent as is, anything else as JSON) and the
// Idempotency-Key key when not empty, and decodes the JSON answer into a map.
func (b *testBundle) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, r)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set(headerIdempotencyKey, key)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// subscribe checks out customer with token and returns the answer.
func (b *testBundle) subscribe(t *testing.T, customer, token string) (int, map[string]any) {
	t.Helper()
	return b.do(t, "POST", "/subscriptions", "checkout-1",
		map[string]string{"customer_id": customer, "tariff_code": "pro", "payment_method": token})
}

func (b *testBundle) consume(t *testing.T, id, key string, n int) (int, map[string]any) {
	t.Helper()
	return b.do(t, "POST", "/subscriptions/"+id+"/consume", key, map[string]any{"meter": "generations", "quantity": n})
}

// field reads a nested field of a JSON answer: field(m, "access", "granted").
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[p]
	}
	return v
}

func TestSubscribeConsumeRefund(t *testing.T) {
	t.Parallel()
	b := setup(t)

	code, sub := b.subscribe(t, "anna", "tok_anna")
	require.Equal(t, http.StatusCreated, code, sub)
	id := sub["id"].(string)
	require.Equal(t, "active", sub["status"], "3.3 access after the charge succeeded")
	require.Equal(t, true, field(sub, "access", "granted"))
	require.Equal(t, "succeeded", field(sub, "payment", "state"))
	require.Equal(t, "990.00", field(sub, "checkout", "price"), "3.4 the terms shown at checkout")

	code, again := b.subscribe(t, "anna", "tok_anna")
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, id, again["id"], "a retried checkout returns the first subscription")
	require.Len(t, b.gateway.ChargesFor(id, 1), 1, "3.5 a retried checkout never charges twice")

	code, res := b.consume(t, id, "gen-1", 3)
	require.Equal(t, http.StatusOK, code, res)
	require.Equal(t, 3.0, res["used"])
	require.Equal(t, 5.0, res["limit"])

	code, res = b.consume(t, id, "gen-1", 3)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, res["replayed"], "the same key returns the first result")
	require.Equal(t, 3.0, res["used"])

	code, res = b.consume(t, id, "gen-1", 2)
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "conflict", res["error"])

	code, res = b.consume(t, id, "gen-2", 3)
	require.Equal(t, http.StatusForbidden, code, "3.1 a request that would pass the limit is refused whole")
	require.Equal(t, "limit_exceeded", res["error"])

	code, res = b.consume(t, id, "gen-3", 2)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, res["exhausted"])

	code, res = b.consume(t, id, "gen-4", 1)
	require.Equal(t, http.StatusForbidden, code, "3.1 the volume used up ends access before the period ends")
	require.Equal(t, "no_access", res["error"])
	require.Equal(t, "used_up", res["reason"])

	code, got := b.do(t, "GET", "/subscriptions/"+id, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "exhausted", got["status"])
	require.Equal(t, false, field(got, "access", "granted"))
	require.Equal(t, 5.0, field(got, "current_period", "usage", "generations", "used"))

	code, req := b.do(t, "POST", "/subscriptions/"+id+"/refund-requests", "refund-1", map[string]string{"text": "please refund"})
	require.Equal(t, http.StatusCreated, code, req)
	require.Equal(t, false, req["eligible"], "3.7 no full refund once the tariff was used")
	require.Equal(t, "received", req["state"], "an ineligible request is still recorded for an operator")
	require.Contains(t, req["failed"], "used")

	code, other := b.do(t, "POST", "/subscriptions", "checkout-1",
		map[string]string{"customer_id": "boris", "tariff_code": "pro", "payment_method": "tok_boris"})
	require.Equal(t, http.StatusCreated, code)
	require.NotEqual(t, id, other["id"], "keys are scoped by customer: boris's checkout-1 is not anna's")
	code, req = b.do(t, "POST", "/subscriptions/"+other["id"].(string)+"/refund-requests", "refund-1", map[string]string{"text": "changed my mind"})
	require.Equal(t, http.StatusCreated, code, req)
	require.Equal(t, true, req["eligible"], "3.7 asked at once, nothing used: eligible")
	require.Equal(t, "990.00", req["amount"])
	deadline, err := time.Parse(time.RFC3339, req["payout_deadline"].(string))
	require.NoError(t, err)
	require.True(t, deadline.After(time.Now().Add(9*24*time.Hour)), "3.8 paid within 10 calendar days of the request")
}

func TestPendingChargeActivatesOnWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gateway.Script("tok_vera", billingtest.Pending)

	code, sub := b.subscribe(t, "vera", "tok_vera")
	require.Equal(t, http.StatusAccepted, code, sub)
	require.Equal(t, "pending", sub["status"])
	require.Equal(t, "pending", field(sub, "payment", "state"))
	id := sub["id"].(string)

	code, res := b.consume(t, id, "gen-1", 1)
	require.Equal(t, http.StatusForbidden, code, "3.3 no access before the charge succeeds")
	require.Equal(t, "not_paid", res["reason"])

	forged := payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: field(sub, "payment", "provider_payment_id").(string),
		Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB"}
	code, res = b.do(t, "POST", "/webhooks/payments", "", forged)
	require.Equal(t, http.StatusBadRequest, code, "3.3 a success the provider does not confirm grants nothing: %v", res)
	require.Equal(t, "invalid_input", res["error"])
	require.Contains(t, res["message"], "webhook not confirmed")

	ev, err := b.gateway.Confirm(field(sub, "payment", "provider_payment_id").(string), payment.OutcomeSucceeded)
	require.NoError(t, err)
	for range 2 { // the provider resends: the duplicate is a no-op
		code, res = b.do(t, "POST", "/webhooks/payments", "", ev)
		require.Equal(t, http.StatusOK, code, res)
		require.Equal(t, "succeeded", res["state"])
	}

	code, got := b.do(t, "GET", "/subscriptions/"+id, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", got["status"])
	require.Equal(t, true, field(got, "access", "granted"))
	require.Equal(t, 1.0, field(got, "current_period", "number"))
	require.Len(t, b.gateway.ChargesFor(id, 1), 1)

	code, res = b.consume(t, id, "gen-1", 1)
	require.Equal(t, http.StatusOK, code, "the key refused before access may be used again")
	require.Equal(t, 1.0, res["used"])
}

func TestDeclinedFirstCharge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gateway.Script("tok_gleb", billingtest.HardDecline)
	code, res := b.subscribe(t, "gleb", "tok_gleb")
	require.Equal(t, http.StatusPaymentRequired, code, res)
	require.Equal(t, "payment_declined", res["error"])
	require.Equal(t, "ended", field(res, "subscription", "status"), "3.3 a declined first charge grants no access")
	require.Equal(t, billingtest.DeclineCodeHard, field(res, "subscription", "payment", "decline_code"))
}

func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, sub := b.subscribe(t, "anna", "tok_anna")
	require.Equal(t, http.StatusCreated, code)
	id := sub["id"].(string)
	unknown := uuid.Must(uuid.NewV7()).String()
	checkout := func(customer, tariffCode, token string) map[string]string {
		return map[string]string{"customer_id": customer, "tariff_code": tariffCode, "payment_method": token}
	}

	tests := []struct {
		name         string
		method, path string
		key          string
		body         any
		status       int
		errCode      string
	}{
		{"bad JSON", "POST", "/subscriptions", "k", `{"customer_id": `, http.StatusBadRequest, "invalid_input"},
		{"an unknown field", "POST", "/subscriptions", "k", `{"customer": "x"}`, http.StatusBadRequest, "invalid_input"},
		{"data after the object", "POST", "/subscriptions", "k", `{"customer_id":"x"} {}`, http.StatusBadRequest, "invalid_input"},
		{"no Idempotency-Key", "POST", "/subscriptions", "", checkout("zoe", "pro", "tok_zoe"), http.StatusBadRequest, "invalid_input"},
		{"1.3 no customer ID", "POST", "/subscriptions", "k", checkout("", "pro", "tok_zoe"), http.StatusBadRequest, "invalid_input"},
		{"5.1 a card number instead of a token", "POST", "/subscriptions", "k", checkout("zoe", "pro", "4111111111111111"), http.StatusBadRequest, "invalid_input"},
		{"an unknown tariff", "POST", "/subscriptions", "k", checkout("zoe", "gold", "tok_zoe"), http.StatusNotFound, "not_found"},
		{"a malformed subscription ID", "GET", "/subscriptions/42", "", nil, http.StatusBadRequest, "invalid_input"},
		{"an unknown subscription", "GET", "/subscriptions/" + unknown, "", nil, http.StatusNotFound, "not_found"},
		{"consume on an unknown subscription", "POST", "/subscriptions/" + unknown + "/consume", "k",
			map[string]any{"meter": "generations", "quantity": 1}, http.StatusNotFound, "not_found"},
		{"consume a meter the tariff has no limit for", "POST", "/subscriptions/" + id + "/consume", "k",
			map[string]any{"meter": "videos", "quantity": 1}, http.StatusBadRequest, "invalid_input"},
		{"consume zero", "POST", "/subscriptions/" + id + "/consume", "k",
			map[string]any{"meter": "generations", "quantity": 0}, http.StatusBadRequest, "invalid_input"},
		{"consume without an Idempotency-Key", "POST", "/subscriptions/" + id + "/consume", "",
			map[string]any{"meter": "generations", "quantity": 1}, http.StatusBadRequest, "invalid_input"},
		{"a refund request through an unknown channel", "POST", "/subscriptions/" + id + "/refund-requests", "k",
			map[string]string{"channel": "fax"}, http.StatusBadRequest, "invalid_input"},
		{"a webhook with bad JSON", "POST", "/webhooks/payments", "", `{"Kind":`, http.StatusBadRequest, "invalid_input"},
		{"a webhook about no charge of ours", "POST", "/webhooks/payments", "", payment.WebhookEvent{Kind: payment.KindCharge,
			ProviderPaymentID: "pay_999", Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB"}, http.StatusNotFound, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, res := b.do(t, tt.method, tt.path, tt.key, tt.body)
			require.Equal(t, tt.status, code, res)
			require.Equal(t, tt.errCode, res["error"], res)
		})
	}
}

// TestRunServesAndShutsDown runs main's path: wire everything on a real listener, serve,
// and shut down gracefully when the context is cancelled (as on SIGINT or SIGTERM).
func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	pool := billingtest.NewPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, pool.Config().ConnString(), "127.0.0.1:0", slog.New(slog.DiscardHandler), func(a net.Addr) { addrs <- a })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start serving")
	}

	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Post(base+"/subscriptions", "application/json", strings.NewReader(""))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no Idempotency-Key")

	// The console at /console: 401 until the DEMO sign-in sets its cookie, then the queue.
	resp, err = http.Get(base + "/console/refunds")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	resp, err = client.PostForm(base+"/demo/signin", url.Values{"operator": {"olga"}, "role": {"operator"}})
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "signed in, redirected to the queue")
	require.Contains(t, string(page), "Очередь возвратов")
	require.Contains(t, string(page), "demo:olga")
	// River UI at /riverui, behind the same sign-in.
	resp, err = client.Get(base + "/riverui/api/jobs?state=available")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "River UI serves the signed-in operator")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown returns nil")
	case <-time.After(30 * time.Second):
		t.Fatal("run did not shut down")
	}
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "the listener is closed after shutdown")
}
