package yookassa_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/smm-gpt/billing/payment/yookassa"
)

// A host's notification endpoint: drop senders outside YooKassa's networks, answer 200 to
// events the billing does not handle, and hand the rest to the engine (which confirms each
// with Lookup before acting).
func ExampleGateway_ParseNotification() {
	gw, err := yookassa.New(yookassa.Config{ShopID: "100500", SecretKey: yookassa.NewSecret("live_example")})
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gw.FromYooKassa(r.RemoteAddr) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		ev, err := gw.ParseNotification(body)
		switch {
		case errors.Is(err, yookassa.ErrUnknownEvent):
			w.WriteHeader(http.StatusOK) // not ours: stop the redelivery
			return
		case err != nil:
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		// The host would now call the engine's HandlePaymentWebhook(ctx, ev).
		fmt.Println(ev.Kind, ev.ProviderPaymentID, ev.Outcome, ev.Amount, ev.Currency)
		w.WriteHeader(http.StatusOK)
	})

	body := `{"type":"notification","event":"payment.succeeded","object":{"id":"2e9b4c8f-000f-5000-9000-1b6d2c3e4f50",` +
		`"status":"succeeded","amount":{"value":"990.00","currency":"RUB"},"metadata":{"billing_idempotency_key":"k"}}}`
	for _, from := range []string{"185.71.76.10:44321", "203.0.113.7:5555"} {
		req := httptest.NewRequest(http.MethodPost, "/yookassa", strings.NewReader(body))
		req.RemoteAddr = from
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(from, rec.Code)
	}
	fmt.Printf("%v\n", gw)
	// Output:
	// charge 2e9b4c8f-000f-5000-9000-1b6d2c3e4f50 succeeded 99000 RUB
	// 185.71.76.10:44321 200
	// 203.0.113.7:5555 403
	// yookassa.Gateway{yookassa.Config{ShopID:"100500" SecretKey:[REDACTED] BaseURL:"https://api.yookassa.ru/v3" Timeout:30s Retry:{MaxAttempts:4 BaseDelay:500ms MaxDelay:30s} LookupMargin:1h0m0s MaxListPages:50 TrustedNetworks:7}}
}
