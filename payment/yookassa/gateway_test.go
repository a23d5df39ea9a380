package yookassa_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
)

func TestChargeRequestShape(t *testing.T) {
	t.Parallel()
	// Every VAT code of the library goes as the vat_code YooKassa documents
	// (yookassa.ru/developers/54fz/parameters-values), the 2026 rates included.
	tests := []struct {
		vat  payment.VATCode
		code float64
	}{
		{payment.VATNone, 1}, {payment.VAT0, 2}, {payment.VAT10, 3}, {payment.VAT20, 4},
		{payment.VAT10Of110, 5}, {payment.VAT20Of120, 6}, {payment.VAT5, 7}, {payment.VAT7, 8},
		{payment.VAT5Of105, 9}, {payment.VAT7Of107, 10}, {payment.VAT22, 11}, {payment.VAT22Of122, 12},
	}
	for _, tt := range tests {
		t.Run(string(tt.vat), func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, nil)}))
			req := chargeRequest(t, tt.vat)
			req.Description = strings.Repeat("д", 200) // cut to 128 characters, not bytes
			res, err := b.gw.Charge(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: paymentID, Amount: 99000, Currency: "RUB"}, res)

			reqs := b.api.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, "/payments", r.Path)
			require.Equal(t, chargeKey, r.Header.Get("Idempotence-Key"))
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(testShopID+":"+testSecret)), r.Header.Get("Authorization"))

			body := r.Body
			require.Equal(t, map[string]any{"value": "990.00", "currency": "RUB"}, body["amount"])
			require.Equal(t, true, body["capture"])
			require.Equal(t, req.PaymentMethod, body["payment_method_id"])
			require.Equal(t, strings.Repeat("д", 128), body["description"])
			require.NotContains(t, body, "confirmation")
			require.NotContains(t, body, "save_payment_method")
			require.Equal(t, map[string]any{payment.MetadataAttemptID: "att-1", payment.MetadataIdempotencyKey: chargeKey}, body["metadata"])
			require.Equal(t, map[string]any{
				"customer": map[string]any{"email": "buyer@example.com", "phone": "79001234567"},
				"items": []any{map[string]any{
					"description":     "Тариф «Про», 1 месяц",
					"quantity":        float64(1),
					"amount":          map[string]any{"value": "990.00", "currency": "RUB"},
					"vat_code":        tt.code,
					"payment_mode":    "full_prepayment",
					"payment_subject": "service",
				}},
			}, body["receipt"])
		})
	}
}

func TestChargeAddsKeyToMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "pending", chargeKey, nil)}))
	req := chargeRequest(t, payment.VAT22Of122)
	req.Metadata = nil
	res, err := b.gw.Charge(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, payment.OutcomePending, res.Outcome)
	require.Equal(t, map[string]any{payment.MetadataIdempotencyKey: chargeKey}, b.api.requests()[0].Body["metadata"])
}

func TestChargeStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status string
		want   payment.Outcome
	}{
		{"3.3 succeeded grants access", "succeeded", payment.OutcomeSucceeded},
		{"3.3 pending grants nothing yet", "pending", payment.OutcomePending},
		{"3.3 waiting_for_capture is money held, not taken", "waiting_for_capture", payment.OutcomePending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Body: paymentJSON(t, paymentID, tt.status, chargeKey,
				map[string]any{"payment_method": map[string]any{"id": "pm-1", "saved": true, "type": "bank_card"}})}))
			res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22))
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Outcome)
			require.Equal(t, paymentID, res.ProviderPaymentID)
			require.Empty(t, res.PaymentMethod, "a charge of a saved method saves nothing new")
		})
	}
	t.Run("an unknown status is an error, not a decline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "on_the_moon", chargeKey, nil)}))
		_, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22))
		require.ErrorContains(t, err, "unknown status")
	})
}

func TestPaymentDeclineTable(t *testing.T) {
	t.Parallel()
	soft, hard := payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined
	// One row per reason of the declined-payments page (and the OpenAPI enum), as the
	// package doc's table decides it.
	tests := []struct {
		reason, party string
		want          payment.Outcome
	}{
		{"3d_secure_failed", "payment_network", soft},
		{"call_issuer", "payment_network", soft},
		{"canceled_by_merchant", "merchant", soft},
		{"card_expired", "payment_network", hard},
		{"country_forbidden", "yoo_money", hard},
		{"deal_expired", "yoo_money", soft},
		{"expired_on_capture", "yoo_money", soft},
		{"expired_on_confirmation", "yoo_money", soft},
		{"fraud_suspected", "yoo_money", hard},
		{"general_decline", "payment_network", soft},
		{"identification_required", "yoo_money", soft},
		{"insufficient_funds", "payment_network", soft},
		{"internal_timeout", "yoo_money", soft},
		{"invalid_card_number", "payment_network", hard},
		{"invalid_csc", "payment_network", soft},
		{"issuer_unavailable", "payment_network", soft},
		{"payment_method_limit_exceeded", "yoo_money", soft},
		{"payment_method_restricted", "payment_network", hard},
		{"permission_revoked", "yoo_money", hard},
		{"unsupported_mobile_operator", "payment_network", hard},
		{"a_reason_added_next_year", "payment_network", soft},
	}
	documented := 0
	for _, tt := range tests {
		if _, ok := yookassa.PaymentDeclineOutcome(tt.reason); ok {
			documented++
		}
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "canceled", chargeKey,
				map[string]any{"cancellation_details": map[string]string{"party": tt.party, "reason": tt.reason}})}))
			res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
			require.NoError(t, err, "a decline is a result, not an error")
			require.Equal(t, tt.want, res.Outcome)
			require.Equal(t, tt.reason, res.DeclineCode)
			require.Contains(t, res.DeclineMessage, tt.reason)
			require.NotContains(t, res.DeclineMessage, "party \"", "a documented party is named in words")
		})
	}
	require.Equal(t, 20, documented, "every documented reason has a row")

	t.Run("canceled without cancellation_details is a soft decline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "canceled", chargeKey, nil)}))
		res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
		require.NoError(t, err)
		require.Equal(t, payment.OutcomeSoftDeclined, res.Outcome)
		require.Empty(t, res.DeclineCode)
		require.Contains(t, res.DeclineMessage, "without cancellation_details")
	})
}

func TestRefundDeclineTable(t *testing.T) {
	t.Parallel()
	soft, hard := payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined
	tests := []struct {
		reason string
		want   payment.Outcome
	}{
		{"general_decline", soft},
		{"insufficient_funds", soft},
		{"rejected_by_timeout", soft},
		{"rejected_by_payee", hard},
		{"yoo_money_account_closed", hard},
		{"payment_basket_id_not_found", hard},
		{"payment_article_number_not_found", hard},
		{"payment_tru_code_not_found", hard},
		{"too_many_refunding_articles", hard},
		{"some_articles_already_refunded", hard},
		{"a_reason_added_next_year", soft},
	}
	documented := 0
	for _, tt := range tests {
		if _, ok := yookassa.RefundDeclineOutcome(tt.reason); ok {
			documented++
		}
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Body: refundJSON(t, refundID, "canceled", refundKey,
				map[string]any{"cancellation_details": map[string]string{"party": "refund_network", "reason": tt.reason}})}))
			res, err := b.gw.Refund(context.Background(), refundRequest(t))
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Outcome)
			require.Equal(t, tt.reason, res.DeclineCode)
			require.Contains(t, res.DeclineMessage, "refund network")
		})
	}
	require.Equal(t, 10, documented)
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ok := answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, nil)}
	tests := []struct {
		name      string
		answers   []answer
		wantSleep []time.Duration
	}{
		{"429 with Retry-After in seconds, then success", []answer{
			{Status: 429, Header: map[string]string{"Retry-After": "7"}, Body: `{"type":"error","code":"too_many_requests"}`}, ok},
			[]time.Duration{7 * time.Second}},
		{"429 with retry_after in the body (ms), then success", []answer{
			{Status: 429, Body: `{"type":"error","code":"too_many_requests","retry_after":1800}`}, ok},
			[]time.Duration{1800 * time.Millisecond}},
		{"500 then 503 then success, exponential backoff", []answer{
			{Status: 500, Body: `{"type":"error","code":"internal_server_error"}`},
			{Status: 503, Body: `<html>busy</html>`}, ok},
			[]time.Duration{time.Second, 2 * time.Second}},
		{"Retry-After above MaxDelay is capped", []answer{
			{Status: 503, Header: map[string]string{"Retry-After": "3600"}}, ok},
			[]time.Duration{time.Minute}},
		{"an undecodable 200 is asked again under the same key", []answer{
			{Status: 200, Body: `{"id": "truncat`}, ok},
			[]time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, sequence(tt.answers...))
			res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
			require.NoError(t, err)
			require.Equal(t, payment.OutcomeSucceeded, res.Outcome)
			reqs := b.api.requests()
			require.Len(t, reqs, len(tt.answers))
			for _, r := range reqs {
				require.Equal(t, chargeKey, r.Header.Get("Idempotence-Key"), "every retry under the same key")
				require.Equal(t, reqs[0].Body, r.Body, "every retry sends the same body")
			}
			require.Equal(t, tt.wantSleep, *b.sleeps)
		})
	}
}

func TestAmbiguousFailuresAreErrorsNotDeclines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		answer    answer
		wantCalls int
		wantCode  int
	}{
		{"5xx after the last retry", answer{Status: 500, Body: `{"type":"error","code":"internal_server_error"}`}, 3, 500},
		{"429 after the last retry", answer{Status: 429}, 3, 429},
		{"undecodable 200 after the last retry", answer{Status: 200, Body: `not json`}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(tt.answer))
			res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
			require.Error(t, err)
			require.Equal(t, payment.ChargeResult{}, res)
			require.Len(t, b.api.requests(), tt.wantCalls)
			var apiErr *yookassa.APIError
			if tt.wantCode != 0 {
				require.ErrorAs(t, err, &apiErr)
				require.Equal(t, tt.wantCode, apiErr.StatusCode)
				require.False(t, apiErr.SetupFault())
			}
		})
	}
}

func TestTimeoutIsAnError(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setup(t, func(int, request) answer {
		<-release // never answers while the client waits
		return answer{}
	}, func(c *yookassa.Config) {
		c.Timeout = 20 * time.Millisecond
		c.Retry.MaxAttempts = 2
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close, which waits for handlers
	res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, payment.ChargeResult{}, res)
	require.Len(t, *b.sleeps, 1, "a timed-out POST is retried under its key")
}

func TestSetupFaultsAreErrorsWithoutRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		code   string
	}{
		{401, "invalid_credentials"},
		{403, "forbidden"},
		{400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Status: tt.status, Body: `{"type":"error","id":"e-1","code":"` + tt.code + `","description":"no","parameter":"payment_method_id"}`}))
			_, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
			var apiErr *yookassa.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.StatusCode)
			require.Equal(t, tt.code, apiErr.Code)
			require.Equal(t, "payment_method_id", apiErr.Parameter)
			require.True(t, apiErr.SetupFault())
			require.Len(t, b.api.requests(), 1)
			require.Empty(t, *b.sleeps)
			require.NotContains(t, err.Error(), testSecret)
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	manyKeys := map[string]string{payment.MetadataIdempotencyKey: chargeKey}
	for i := range 16 {
		manyKeys[string(rune('a'+i))] = "v"
	}
	tests := []struct {
		name string
		edit func(*payment.ChargeParams)
	}{
		{"17 metadata keys with the key", func(r *payment.ChargeParams) { r.Metadata = manyKeys }},
		{"a metadata key of 33 characters", func(r *payment.ChargeParams) { r.Metadata[strings.Repeat("k", 33)] = "v" }},
		{"a metadata value of 513 characters", func(r *payment.ChargeParams) { r.Metadata["note"] = strings.Repeat("ж", 513) }},
		{"metadata naming another key", func(r *payment.ChargeParams) { r.Metadata[payment.MetadataIdempotencyKey] = "other" }},
		{"a receipt without an email or phone", func(r *payment.ChargeParams) { r.Receipt.Customer = payment.Contact{} }},
		{"5.1 a card number as the payment method", func(r *payment.ChargeParams) { r.PaymentMethod = "4111 1111 1111 1111" }},
		{"a key with a character YooKassa refuses", func(r *payment.ChargeParams) {
			r.IdempotencyKey = "att:1234567890abcdef"
			r.Metadata[payment.MetadataIdempotencyKey] = r.IdempotencyKey
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, nil)}))
			req := chargeRequest(t, payment.VAT22Of122)
			tt.edit(&req)
			_, err := b.gw.Charge(context.Background(), req)
			require.ErrorIs(t, err, payment.ErrInvalid)
			require.Empty(t, b.api.requests(), "nothing is sent")
		})
	}
	t.Run("a currency YooKassa does not take", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{}))
		req := chargeRequest(t, payment.VAT22Of122)
		req.Currency = "CNY"
		for i := range req.Receipt.Items {
			req.Receipt.Items[i].Currency = "CNY"
		}
		_, err := b.gw.Charge(context.Background(), req)
		require.ErrorIs(t, err, payment.ErrInvalid)
		require.Empty(t, b.api.requests())
	})
}

func TestStartCheckout(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "pending", chargeKey, map[string]any{
		"confirmation": map[string]any{"type": "redirect", "return_url": "https://app.example/back", "confirmation_url": "https://yoomoney.ru/checkout/payments/v2/contract?orderId=x"},
	})}))
	c := chargeRequest(t, payment.VAT22Of122)
	req := payment.CheckoutParams{
		IdempotencyKey: c.IdempotencyKey, CustomerID: c.CustomerID, Amount: c.Amount, Currency: c.Currency,
		Description: c.Description, Receipt: c.Receipt, Metadata: c.Metadata, ReturnURL: "https://app.example/back",
	}
	res, err := b.gw.StartCheckout(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, payment.OutcomePending, res.Outcome)
	require.Equal(t, paymentID, res.ProviderPaymentID)
	require.Equal(t, "https://yoomoney.ru/checkout/payments/v2/contract?orderId=x", res.ConfirmationURL)

	r := b.api.requests()[0]
	require.Equal(t, "POST", r.Method)
	require.Equal(t, "/payments", r.Path)
	require.Equal(t, chargeKey, r.Header.Get("Idempotence-Key"))
	require.Equal(t, map[string]any{"type": "redirect", "return_url": "https://app.example/back"}, r.Body["confirmation"])
	require.Equal(t, true, r.Body["save_payment_method"])
	require.Equal(t, true, r.Body["capture"])
	require.NotContains(t, r.Body, "payment_method_id")
	require.Contains(t, r.Body, "receipt")

	t.Run("pending without a confirmation_url is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "pending", chargeKey, nil)}))
		_, err := b.gw.StartCheckout(context.Background(), req)
		require.ErrorContains(t, err, "confirmation_url")
	})
}

func TestRefundRequestShape(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: refundJSON(t, refundID, "succeeded", refundKey, nil)}))
	req := refundRequest(t)
	req.Description = strings.Repeat("r", 300)
	res, err := b.gw.Refund(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, payment.RefundResult{Outcome: payment.OutcomeSucceeded, ProviderRefundID: refundID, ProviderPaymentID: paymentID, Amount: 99000, Currency: "RUB"}, res)

	r := b.api.requests()[0]
	require.Equal(t, "POST", r.Method)
	require.Equal(t, "/refunds", r.Path)
	require.Equal(t, refundKey, r.Header.Get("Idempotence-Key"))
	require.Equal(t, paymentID, r.Body["payment_id"])
	require.Equal(t, map[string]any{"value": "990.00", "currency": "RUB"}, r.Body["amount"])
	require.Equal(t, strings.Repeat("r", 250), r.Body["description"])
	require.Equal(t, map[string]any{"billing_refund_request_id": "rr-1", payment.MetadataIdempotencyKey: refundKey}, r.Body["metadata"])
	receipt := r.Body["receipt"].(map[string]any)
	item := receipt["items"].([]any)[0].(map[string]any)
	require.Equal(t, float64(12), item["vat_code"])
	require.Equal(t, "full_prepayment", item["payment_mode"])
	require.Equal(t, "service", item["payment_subject"])
	require.Equal(t, map[string]any{"email": "buyer@example.com"}, receipt["customer"])

	t.Run("pending", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: refundJSON(t, refundID, "pending", refundKey, nil)}))
		res, err := b.gw.Refund(context.Background(), refundRequest(t))
		require.NoError(t, err)
		require.Equal(t, payment.OutcomePending, res.Outcome)
	})
}

func TestAmountsFollowTheCurrencyExponent(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: `{"id":"` + paymentID + `","status":"succeeded","amount":{"value":"12345.67","currency":"RUB"}}`}))
	req := chargeRequest(t, payment.VAT22Of122)
	req.Amount = 1234567
	req.Receipt.Items[0].Amount = 1234567
	res, err := b.gw.Charge(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, int64(1234567), res.Amount)
	require.Equal(t, map[string]any{"value": "12345.67", "currency": "RUB"}, b.api.requests()[0].Body["amount"])

	t.Run("an answer finer than kopecks is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: `{"id":"` + paymentID + `","status":"succeeded","amount":{"value":"990.001","currency":"RUB"}}`}))
		_, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
		require.Error(t, err)
	})
}

func TestContextCanceledStopsRetrying(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	b := setup(t, func(int, request) answer {
		cancel()
		return answer{Status: http.StatusServiceUnavailable}
	})
	_, err := b.gw.Charge(ctx, chargeRequest(t, payment.VAT22Of122))
	require.Error(t, err)
	require.Len(t, b.api.requests(), 1)
	require.False(t, errors.Is(err, payment.ErrNotFound))
}

func TestUndocumentedReasonIsLogged(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	var mu sync.Mutex
	b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "canceled", chargeKey,
		map[string]any{"cancellation_details": map[string]string{"party": "yoo_money", "reason": "brand_new_reason"}})}),
		func(c *yookassa.Config) { c.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)) })
	res, err := b.gw.Charge(context.Background(), chargeRequest(t, payment.VAT22Of122))
	require.NoError(t, err)
	require.Equal(t, payment.OutcomeSoftDeclined, res.Outcome)
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, logs.String(), "brand_new_reason")
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
