package yookassa_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
)

// Credentials of the tests' shop. The secret must never show up in any output.
const (
	testShopID = "shop-100500"
	testSecret = "test_SuperSecretKey-DoNotPrint-42"
)

// now is the fixed time of the tests' clock.
var now = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// fixedClock is a Clock that always says now.
type fixedClock struct{}

func (fixedClock) Now() time.Time { return now }

// request is one request the fake API received.
type request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   map[string]any
}

// answer is what the fake API sends back.
type answer struct {
	Status int
	Header map[string]string
	Body   string
}

// fakeAPI is an httptest server whose answers a test scripts: handle gets the number of the
// request (0-based) and the request.
type fakeAPI struct {
	t      testing.TB
	mu     sync.Mutex
	reqs   []request
	handle func(n int, r request) answer
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	rec := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &rec.Body); err != nil {
			f.t.Errorf("request body is not JSON: %v", err)
		}
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	a := f.handle(n, rec)
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

// requests returns what the fake received so far.
func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// testBundle is what each test gets from setup.
type testBundle struct {
	api    *fakeAPI
	gw     *yookassa.Gateway
	sleeps *[]time.Duration
	cfg    yookassa.Config
}

// setup starts a fake API answering with handle and a gateway pointed at it, with a fixed
// clock and a Sleep that records the waits and returns at once. edit may change the config.
func setup(t *testing.T, handle func(n int, r request) answer, edit ...func(*yookassa.Config)) testBundle {
	t.Helper()
	api := &fakeAPI{t: t, handle: handle}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	sleeps := &[]time.Duration{}
	cfg := yookassa.Config{
		ShopID:    testShopID,
		SecretKey: yookassa.NewSecret(testSecret),
		BaseURL:   srv.URL,
		Clock:     fixedClock{},
		Retry:     yookassa.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute},
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			*sleeps = append(*sleeps, d)
			mu.Unlock()
			return ctx.Err()
		},
	}
	for _, e := range edit {
		e(&cfg)
	}
	gw, err := yookassa.New(cfg)
	require.NoError(t, err)
	return testBundle{api: api, gw: gw, sleeps: sleeps, cfg: cfg}
}

// always answers every request with a.
func always(a answer) func(int, request) answer {
	return func(int, request) answer { return a }
}

// sequence answers request n with as[n], and the last one after that.
func sequence(as ...answer) func(int, request) answer {
	return func(n int, _ request) answer { return as[min(n, len(as)-1)] }
}

// Keys of the tests' attempts (what payment.NewAttemptKey would make).
const (
	chargeKey = "att-7f3c9a1e-0b44-4c1e-9a51-2d9e8f6b1c00"
	refundKey = "ref-1b2c3d4e-5f60-4711-8293-a4b5c6d7e8f9"
	paymentID = "2e9b4c8f-000f-5000-9000-1b6d2c3e4f50"
	refundID  = "2e9b5d01-0015-5000-a000-1c2d3e4f5a6b"
)

// chargeRequest is a valid charge of 990.00 RUB under chargeKey with a receipt at vat.
func chargeRequest(t *testing.T, vat payment.VATCode) payment.ChargeParams {
	t.Helper()
	r, err := payment.NewChargeReceipt("Тариф «Про», 1 месяц", 99000, "RUB", vat, payment.Contact{Email: "buyer@example.com", Phone: "+79001234567"})
	require.NoError(t, err)
	return payment.ChargeParams{
		IdempotencyKey: chargeKey,
		PaymentMethod:  "2e9b4c8f-000f-5000-9000-aaaaaaaaaaaa",
		CustomerID:     "cust-42",
		Amount:         99000,
		Currency:       "RUB",
		Description:    "Тариф «Про», 1 месяц",
		Receipt:        r,
		Metadata:       map[string]string{payment.MetadataAttemptID: "att-1", payment.MetadataIdempotencyKey: chargeKey},
	}
}

// refundRequest is a valid refund of 990.00 RUB of paymentID under refundKey.
func refundRequest(t *testing.T) payment.RefundParams {
	t.Helper()
	r, err := payment.NewRefundReceipt("Возврат: тариф «Про», 1 месяц", 99000, "RUB", payment.VAT22Of122, payment.Contact{Email: "buyer@example.com"})
	require.NoError(t, err)
	return payment.RefundParams{
		IdempotencyKey:    refundKey,
		ProviderPaymentID: paymentID,
		Amount:            99000,
		Currency:          "RUB",
		Description:       "refund, TERMS 3.7",
		Receipt:           r,
		Metadata:          map[string]string{"billing_refund_request_id": "rr-1", payment.MetadataIdempotencyKey: refundKey},
	}
}

// paymentJSON renders a YooKassa payment object.
func paymentJSON(t testing.TB, id, status, key string, extra map[string]any) string {
	t.Helper()
	p := map[string]any{
		"id":         id,
		"status":     status,
		"amount":     map[string]string{"value": "990.00", "currency": "RUB"},
		"created_at": "2026-03-02T11:59:00.000Z",
		"paid":       status == "succeeded",
		"test":       true,
		"refundable": status == "succeeded",
		"metadata":   map[string]string{payment.MetadataIdempotencyKey: key},
	}
	for k, v := range extra {
		p[k] = v
	}
	return mustJSON(t, p)
}

// refundJSON renders a YooKassa refund object.
func refundJSON(t testing.TB, id, status, key string, extra map[string]any) string {
	t.Helper()
	r := map[string]any{
		"id":         id,
		"payment_id": paymentID,
		"status":     status,
		"amount":     map[string]string{"value": "990.00", "currency": "RUB"},
		"created_at": "2026-03-02T11:59:00.000Z",
		"metadata":   map[string]string{payment.MetadataIdempotencyKey: key},
	}
	for k, v := range extra {
		r[k] = v
	}
	return mustJSON(t, r)
}

// listJSON renders a list page of raw objects.
func listJSON(t testing.TB, next string, items ...string) string {
	t.Helper()
	raw := make([]json.RawMessage, len(items))
	for i, s := range items {
		raw[i] = json.RawMessage(s)
	}
	l := map[string]any{"type": "list", "items": raw}
	if next != "" {
		l["next_cursor"] = next
	}
	return mustJSON(t, l)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// fixture reads a YooKassa PHP SDK fixture from the shared fixtures (never copied here).
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/work/shared/fixtures/yookassa/sdk-php-fixtures", name))
	if os.IsNotExist(err) {
		t.Skipf("shared fixture %s not present on this machine", name)
	}
	require.NoError(t, err)
	return string(b)
}
