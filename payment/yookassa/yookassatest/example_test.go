package yookassatest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
)

// post sends a JSON body to the simulator as an adapter would: HTTP Basic with the shop ID
// and secret key, and an Idempotence-Key.
func post(srv *yookassatest.Server, path, key, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(srv.ShopID(), srv.SecretKey())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotence-Key", key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, m, nil
}

const receipt = `{"customer":{"email":"user@example.com"},"items":[{"description":"Pro, 1 month",
	"quantity":1,"amount":{"value":"990.00","currency":"RUB"},"vat_code":12,
	"payment_mode":"full_prepayment","payment_subject":"service"}]}`

// An autopayment from a saved card, declined by the issuer as scripted, then charged again
// under another key.
func Example() {
	srv := yookassatest.New()
	defer srv.Close()
	srv.Script("card-token-1", yookassatest.Decline("insufficient_funds"))

	body := `{"amount":{"value":"990.00","currency":"RUB"},"capture":true,
		"payment_method_id":"card-token-1","description":"Pro, 1 month","receipt":` + receipt + `}`
	for _, key := range []string{"attempt-1", "attempt-2"} {
		status, p, err := post(srv, "/payments", key, body)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(status, p["status"], p["cancellation_details"])
	}
	// Output:
	// 200 canceled map[party:payment_network reason:insufficient_funds]
	// 200 succeeded <nil>
}

// A first payment on the payment page that saves the card: pending until the test plays
// the customer, then succeeded with a saved payment method; the refund follows.
func ExampleServer_Succeed() {
	srv := yookassatest.New()
	defer srv.Close()

	body := `{"amount":{"value":"990.00","currency":"RUB"},"capture":true,"save_payment_method":true,
		"confirmation":{"type":"redirect","return_url":"https://shop.example/back"},
		"description":"Pro, 1 month","receipt":` + receipt + `}`
	_, p, err := post(srv, "/payments", "checkout-1", body)
	if err != nil {
		fmt.Println(err)
		return
	}
	id := p["id"].(string)
	fmt.Println(p["status"], p["confirmation"].(map[string]any)["confirmation_url"] != nil)

	srv.Advance(3 * time.Minute) // the customer takes a while
	if err := srv.Succeed(id); err != nil {
		fmt.Println(err)
		return
	}
	rec, _ := srv.Payment(id)
	fmt.Println(rec.Payment.Status, rec.Payment.PaymentMethod.Saved, rec.Payment.CapturedAt)
	for _, n := range srv.Notifications() {
		fmt.Println(n.Event, n.ObjectID == id)
	}
	// Output:
	// pending true
	// succeeded true 2026-03-02T09:03:00.000Z
	// payment.succeeded true
}
