package yookassatest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, WithCredentials("555", "test_secret"))
	for _, tc := range []struct {
		name       string
		user, pass string
		wantStatus int
	}{
		{"no Authorization header", "", "", http.StatusUnauthorized},
		{"wrong secret key", "555", "test_other", http.StatusUnauthorized},
		{"wrong shop ID", "556", "test_secret", http.StatusUnauthorized},
		{"secret key as the user", "test_secret", "555", http.StatusUnauthorized},
		{"right credentials: 404 for an unknown payment", "555", "test_secret", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.requestAs(t, tc.user, tc.pass, http.MethodGet, "/payments/2f000001-000f-5000-8000-000000000001", "", nil)
			require.Equal(t, tc.wantStatus, r.status)
			e := r.apiError(t)
			if tc.wantStatus == http.StatusUnauthorized {
				require.Equal(t, "invalid_credentials", e.Code)
				require.NotContains(t, string(r.body), "test_secret", "the secret key is never echoed")
			} else {
				require.Equal(t, "not_found", e.Code)
			}
		})
	}
	// A refused POST creates nothing.
	r := b.requestAs(t, "555", "bad", http.MethodPost, "/payments", "k-unauth", autopayment("pm-1"))
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Empty(t, b.srv.Payments())
	require.Equal(t, 5, b.srv.Requests().Unauthorized, "four GETs and one POST refused")
}

func TestCreatePaymentValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := strings.Repeat("я", 129)
	for _, tc := range []struct {
		name      string
		mutate    func(m map[string]any)
		parameter string
	}{
		{"amount missing", func(m map[string]any) { delete(m, "amount") }, "amount"},
		{"amount value a number, not a string", func(m map[string]any) {
			m["amount"] = map[string]any{"value": 990, "currency": "RUB"}
		}, "amount.value"},
		{"amount value without decimals", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "990", "currency": "RUB"}
		}, "amount.value"},
		{"amount value with one decimal", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "990.0", "currency": "RUB"}
		}, "amount.value"},
		{"amount value in kopecks", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "99000", "currency": "RUB"}
		}, "amount.value"},
		{"amount zero", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "0.00", "currency": "RUB"}
		}, "amount.value"},
		{"currency unknown", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "990.00", "currency": "RUR"}
		}, "amount.currency"},
		{"currency not the shop's", func(m map[string]any) {
			m["amount"] = map[string]any{"value": "990.00", "currency": "USD"}
		}, "amount.currency"},
		{"description 129 characters", func(m map[string]any) { m["description"] = long }, "description"},
		{"metadata 17 keys", func(m map[string]any) {
			md := map[string]any{}
			for i := range 17 {
				md[fmt.Sprintf("k%d", i)] = "v"
			}
			m["metadata"] = md
		}, "metadata"},
		{"metadata key 33 characters", func(m map[string]any) {
			m["metadata"] = map[string]any{strings.Repeat("k", 33): "v"}
		}, "metadata"},
		{"metadata value 513 characters", func(m map[string]any) {
			m["metadata"] = map[string]any{"k": strings.Repeat("v", 513)}
		}, "metadata"},
		{"metadata value a number", func(m map[string]any) { m["metadata"] = map[string]any{"k": 1} }, "metadata"},
		{"neither payment_method_id nor confirmation", func(m map[string]any) { delete(m, "payment_method_id") }, "confirmation"},
		{"receipt missing", func(m map[string]any) { delete(m, "receipt") }, "receipt"},
		{"receipt without customer contact", func(m map[string]any) {
			r := receiptFor("990.00")
			r["customer"] = map[string]any{"full_name": "Ivanov"}
			m["receipt"] = r
		}, "receipt.customer"},
		{"receipt phone with +", func(m map[string]any) {
			r := receiptFor("990.00")
			r["customer"] = map[string]any{"phone": "+79000000000"}
			m["receipt"] = r
		}, "receipt.customer.phone"},
		{"receipt without items", func(m map[string]any) {
			r := receiptFor("990.00")
			r["items"] = []any{}
			m["receipt"] = r
		}, "receipt.items"},
		{"receipt item description 129 characters", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["description"] = long })
		}, "receipt.items[0].description"},
		{"receipt item quantity 0", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["quantity"] = 0 })
		}, "receipt.items[0].quantity"},
		{"receipt item vat_code as a name", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["vat_code"] = "vat22" })
		}, "receipt.items[0].vat_code"},
		{"receipt item vat_code 13", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["vat_code"] = 13 })
		}, "receipt.items[0].vat_code"},
		{"receipt item vat_code 0", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["vat_code"] = 0 })
		}, "receipt.items[0].vat_code"},
		{"receipt item without payment_mode", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { delete(it, "payment_mode") })
		}, "receipt.items[0].payment_mode"},
		{"receipt item payment_subject unknown", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["payment_subject"] = "subscription" })
		}, "receipt.items[0].payment_subject"},
		{"receipt item amount is the line total with quantity 2", func(m map[string]any) {
			m["receipt"] = withItem(func(it map[string]any) { it["quantity"] = 2 })
		}, "receipt"},
		{"receipt total differs from the amount", func(m map[string]any) { m["receipt"] = receiptFor("900.00") }, "receipt"},
		{"confirmation type external", func(m map[string]any) {
			delete(m, "payment_method_id")
			m["confirmation"] = map[string]any{"type": "embedded"}
		}, "confirmation.type"},
		{"redirect without return_url", func(m map[string]any) {
			delete(m, "payment_method_id")
			m["confirmation"] = map[string]any{"type": "redirect"}
		}, "confirmation.return_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := autopayment("pm-valid")
			tc.mutate(body)
			r := b.request(t, http.MethodPost, "/payments", keyOf("key-"+tc.name), body)
			require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
			e := r.apiError(t)
			require.Equal(t, "invalid_request", e.Code)
			require.Equal(t, tc.parameter, e.Parameter, "description %q", e.Description)
		})
	}
	require.Empty(t, b.srv.Payments(), "no refused request creates a payment")

	t.Run("vat codes 1..12 are accepted, 11 and 12 being 22% and 22/122", func(t *testing.T) {
		for code := 1; code <= 12; code++ {
			body := autopayment("pm-valid")
			body["receipt"] = withItem(func(it map[string]any) { it["vat_code"] = code })
			b.createPayment(t, fmt.Sprintf("vat-%d", code), body)
		}
		require.Len(t, VatCodes, 12)
		require.Equal(t, "VAT 22%", VatCodes[11])
		require.Equal(t, "VAT 22/122", VatCodes[12])
	})
	t.Run("unit price × quantity adds up", func(t *testing.T) {
		body := autopayment("pm-valid")
		body["receipt"] = withItem(func(it map[string]any) {
			it["quantity"] = 3
			it["amount"] = map[string]any{"value": "330.00", "currency": "RUB"}
		})
		b.createPayment(t, "qty-3", body)
		recs := b.srv.Payments()
		rec := recs[len(recs)-1]
		require.Equal(t, "3", rec.Receipt.Items[0].Quantity.String())
		require.Equal(t, "330.00", rec.Receipt.Items[0].Amount.Value)
	})
	t.Run("malformed JSON and the wrong content type", func(t *testing.T) {
		r := b.request(t, http.MethodPost, "/payments", "bad-json", "{")
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "invalid_request", r.apiError(t).Code)

		req, err := http.NewRequest(http.MethodPost, b.srv.URL()+"/payments", strings.NewReader("amount=1"))
		require.NoError(t, err)
		req.SetBasicAuth(b.srv.ShopID(), b.srv.SecretKey())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotence-Key", "form")
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	})
}

// withItem returns a valid receipt with its one item changed by f.
func withItem(f func(it map[string]any)) map[string]any {
	r := receiptFor("990.00")
	f(r["items"].([]any)[0].(map[string]any))
	return r
}

func TestAutopaymentSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "k1", autopayment("pm-card-1"))

	require.Len(t, p.ID, 36)
	require.Equal(t, "succeeded", p.Status)
	require.Equal(t, Amount{Value: "990.00", Currency: "RUB"}, p.Amount)
	require.True(t, p.Paid)
	require.True(t, p.Refundable)
	require.True(t, p.Test)
	require.Equal(t, "pm-card-1", p.PaymentMethod.ID)
	require.True(t, p.PaymentMethod.Saved)
	require.Equal(t, "bank_card", p.PaymentMethod.Type)
	require.Equal(t, "2026-03-02T09:00:00.000Z", p.CreatedAt)
	require.Equal(t, p.CreatedAt, p.CapturedAt)
	require.Equal(t, map[string]string{"billing_key": "k1", "subscription": "sub-1"}, p.Metadata)
	require.Nil(t, p.CancellationDetails)
	require.Equal(t, p, b.getPayment(t, p.ID))

	rec, ok := b.srv.Payment(p.ID)
	require.True(t, ok)
	require.Equal(t, "k1", rec.IdempotenceKey)
	require.Equal(t, "pm-card-1", rec.PaymentMethodID)
	require.Equal(t, "user@example.com", rec.Receipt.Customer.Email)
	require.Equal(t, 12, rec.Receipt.Items[0].VatCode)

	ns := b.srv.Notifications()
	require.Len(t, ns, 1)
	require.Equal(t, "payment.succeeded", ns[0].Event)
	require.False(t, ns[0].Attempted, "no webhook URL: recorded, not sent")
}

func TestCaptureFalseWaitsForCaptureAndExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := autopayment("pm-1")
	delete(body, "capture") // the documented default is false
	p := b.createPayment(t, "k1", body)
	require.Equal(t, "waiting_for_capture", p.Status)
	require.True(t, p.Paid)
	require.False(t, p.Refundable)
	require.Equal(t, "2026-03-09T09:00:00.000Z", p.ExpiresAt)

	b.srv.Advance(CaptureWindow - time.Millisecond)
	require.Equal(t, "waiting_for_capture", b.getPayment(t, p.ID).Status)
	b.srv.Advance(time.Millisecond)
	got := b.getPayment(t, p.ID)
	require.Equal(t, "canceled", got.Status)
	require.Equal(t, &CancellationDetails{Party: "yoo_money", Reason: "expired_on_capture"}, got.CancellationDetails)
	events := []string{}
	for _, n := range b.srv.Notifications() {
		events = append(events, n.Event)
	}
	require.Equal(t, []string{"payment.waiting_for_capture", "payment.canceled"}, events)

	t.Run("captured by the test before it expires", func(t *testing.T) {
		p := b.createPayment(t, "k2", body)
		require.NoError(t, b.srv.Succeed(p.ID))
		rec, ok := b.srv.Payment(p.ID)
		require.True(t, ok)
		require.Equal(t, "succeeded", rec.Payment.Status)
		require.Empty(t, rec.Payment.ExpiresAt)
		require.True(t, rec.Payment.Refundable)
		require.False(t, rec.Capture, "the record keeps the request's flag")
	})
}

func TestCheckoutSavesThePaymentMethod(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "first", checkout())
	require.Equal(t, "pending", p.Status)
	require.False(t, p.Paid)
	require.Nil(t, p.PaymentMethod, "the customer has not chosen a method yet")
	require.Equal(t, "redirect", p.Confirmation.Type)
	require.Equal(t, "https://shop.example/return", p.Confirmation.ReturnURL)
	require.True(t, strings.HasPrefix(p.Confirmation.ConfirmationURL, "http://"), p.Confirmation.ConfirmationURL)
	require.Empty(t, b.srv.Notifications(), "no event for pending")

	require.NoError(t, b.srv.Succeed(p.ID)) // the customer pays on the page
	got := b.getPayment(t, p.ID)
	require.Equal(t, "succeeded", got.Status)
	require.True(t, got.PaymentMethod.Saved)
	require.Len(t, got.PaymentMethod.ID, 36)
	require.Error(t, b.srv.Succeed(p.ID), "a succeeded payment does not settle again")

	renewal := b.createPayment(t, "renewal", autopayment(got.PaymentMethod.ID))
	require.Equal(t, "succeeded", renewal.Status)
	require.Equal(t, got.PaymentMethod.ID, renewal.PaymentMethod.ID)

	t.Run("canceled by the customer's bank", func(t *testing.T) {
		p := b.createPayment(t, "first-2", checkout())
		require.NoError(t, b.srv.Cancel(p.ID, "3d_secure_failed"))
		got := b.getPayment(t, p.ID)
		require.Equal(t, "canceled", got.Status)
		require.Equal(t, &CancellationDetails{Party: "payment_network", Reason: "3d_secure_failed"}, got.CancellationDetails)
		require.Error(t, b.srv.Cancel(p.ID, "not_a_reason"))
	})
}

func TestIdempotence(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("key required, at most 64 characters, of the documented pattern", func(t *testing.T) {
		for _, key := range []string{"", strings.Repeat("k", 65), "renew~1", "renew#1", "renew 1"} {
			r := b.request(t, http.MethodPost, "/payments", key, autopayment("pm-1"))
			require.Equal(t, http.StatusBadRequest, r.status)
			e := r.apiError(t)
			require.Equal(t, "invalid_request", e.Code)
			require.Equal(t, "Idempotence-Key", e.Parameter)
		}
		b.createPayment(t, strings.Repeat("k", 64), autopayment("pm-1"))
		for _, key := range []string{"renew_0123abcdEF-xyz", "2e1da982-1bb1-41f0-b9cf-758cc8bcf069", "a.b+c:d/e=f"} {
			b.createPayment(t, key, autopayment("pm-1"))
		}
	})

	t.Run("same key, same body: the same answer, one payment", func(t *testing.T) {
		first := b.request(t, http.MethodPost, "/payments", "same", checkout())
		require.Equal(t, http.StatusOK, first.status)
		var p Payment
		require.NoError(t, json.Unmarshal(first.body, &p))
		require.NoError(t, b.srv.Succeed(p.ID)) // the object changes meanwhile
		b.srv.Advance(IdempotenceWindow - time.Second)
		// The same body with its keys in another order and other spacing.
		again := b.request(t, http.MethodPost, "/payments", "same", reorder(t, checkout()))
		require.Equal(t, first.status, again.status)
		require.JSONEq(t, string(first.body), string(again.body), "the stored answer, not the current state")
		require.Equal(t, "succeeded", b.getPayment(t, p.ID).Status)
		count := 0
		for _, rec := range b.srv.Payments() {
			if rec.IdempotenceKey == "same" {
				count++
			}
		}
		require.Equal(t, 1, count)
	})

	t.Run("same key, another body: Idempotence key duplicated", func(t *testing.T) {
		b.createPayment(t, "dup", autopayment("pm-1"))
		other := autopayment("pm-1")
		other["amount"] = map[string]any{"value": "1.00", "currency": "RUB"}
		other["receipt"] = receiptFor("1.00")
		r := b.request(t, http.MethodPost, "/payments", "dup", other)
		require.Equal(t, http.StatusBadRequest, r.status)
		e := r.apiError(t)
		require.Equal(t, "invalid_request", e.Code)
		require.Equal(t, "Idempotence-Key", e.Parameter)
		require.Equal(t, "Idempotence key duplicated", e.Description)

		// The same key on another endpoint is another request too.
		r = b.request(t, http.MethodPost, "/refunds", "dup", autopayment("pm-1"))
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "Idempotence-Key", r.apiError(t).Parameter)
	})

	t.Run("after 24 hours the key is forgotten: a second payment", func(t *testing.T) {
		first := b.createPayment(t, "old", autopayment("pm-1"))
		b.srv.Advance(IdempotenceWindow)
		second := b.createPayment(t, "old", autopayment("pm-1"))
		require.NotEqual(t, first.ID, second.ID)
		// And the new answer is stored for the next 24 hours.
		third := b.createPayment(t, "old", autopayment("pm-1"))
		require.Equal(t, second.ID, third.ID)
	})

	t.Run("a refused request is not stored", func(t *testing.T) {
		bad := autopayment("pm-1")
		bad["description"] = strings.Repeat("d", 200)
		r := b.request(t, http.MethodPost, "/payments", "fixme", bad)
		require.Equal(t, http.StatusBadRequest, r.status)
		b.createPayment(t, "fixme", autopayment("pm-1"))
	})

	t.Run("concurrent retries under one key make one payment", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := b.request(t, http.MethodPost, "/payments", "race", autopayment("pm-race"))
				var p Payment
				if json.Unmarshal(r.body, &p) == nil {
					ids[i] = p.ID
				}
			}()
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
	})
}

// reorder re-encodes a body with indentation; JSON object keys keep Go's sorted order, so
// the test also sends the keys reversed by hand for the top level.
func reorder(t *testing.T, m map[string]any) string {
	t.Helper()
	keys := keysOf(m)
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	var sb strings.Builder
	sb.WriteString("{\n")
	for i, k := range keys {
		v, err := json.MarshalIndent(m[k], "  ", "   ")
		require.NoError(t, err)
		if i > 0 {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, "  %q :  %s", k, v)
	}
	sb.WriteString("\n}")
	return sb.String()
}

func TestEveryDocumentedDeclineReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reasons := keysOf(anyMap(PaymentCancellationReasons))
	sort.Strings(reasons)
	for _, reason := range reasons {
		t.Run(reason, func(t *testing.T) {
			method := "pm-" + reason
			b.srv.Script(method, Decline(reason))
			p := b.createPayment(t, keyOf("k-"+reason), autopayment(method))
			require.Equal(t, "canceled", p.Status)
			require.False(t, p.Paid)
			require.False(t, p.Refundable)
			require.Empty(t, p.CapturedAt)
			require.Equal(t, &CancellationDetails{Party: PaymentCancellationReasons[reason], Reason: reason}, p.CancellationDetails)
			require.Contains(t, []string{"yoo_money", "payment_network", "merchant"}, p.CancellationDetails.Party)

			var raw map[string]any
			r := b.request(t, http.MethodGet, "/payments/"+p.ID, "", nil)
			require.NoError(t, json.Unmarshal(r.body, &raw))
			require.Equal(t, map[string]any{"party": PaymentCancellationReasons[reason], "reason": reason}, raw["cancellation_details"])

			// The script is used up: the next payment of the card succeeds.
			require.Equal(t, "succeeded", b.createPayment(t, keyOf("k2-"+reason), autopayment(method)).Status)
		})
	}
	t.Run("DeclineBy sets the party", func(t *testing.T) {
		b.srv.Script("pm-x", DeclineBy("general_decline", "yoo_money"))
		p := b.createPayment(t, "k-by", autopayment("pm-x"))
		require.Equal(t, &CancellationDetails{Party: "yoo_money", Reason: "general_decline"}, p.CancellationDetails)
	})
	t.Run("the table is the spec's enum", func(t *testing.T) {
		enum := specEnum(t, "PaymentCancellationDetails", "reason")
		sort.Strings(enum)
		require.Equal(t, enum, reasons)
		parties := specEnum(t, "PaymentCancellationDetails", "party")
		for _, party := range PaymentCancellationReasons {
			require.Contains(t, parties, party)
		}
		refundReasons := specEnum(t, "RefundCancellationDetails", "reason")
		sort.Strings(refundReasons)
		got := keysOf(anyMap(RefundCancellationReasons))
		sort.Strings(got)
		require.Equal(t, refundReasons, got)
	})
}

func anyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestTransportFaults(t *testing.T) {
	t.Parallel()

	t.Run("500 with nothing created: a retry under the key creates", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.Script("pm-1", InternalError())
		r := b.request(t, http.MethodPost, "/payments", "k", autopayment("pm-1"))
		require.Equal(t, http.StatusInternalServerError, r.status)
		require.Equal(t, "internal_server_error", r.apiError(t).Code)
		require.Empty(t, b.srv.Payments())
		require.Equal(t, "succeeded", b.createPayment(t, "k", autopayment("pm-1")).Status)
	})
	t.Run("429 with nothing created", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.ScriptAll(TooManyRequests())
		r := b.request(t, http.MethodPost, "/payments", "k", autopayment("pm-1"))
		require.Equal(t, http.StatusTooManyRequests, r.status)
		e := r.apiError(t)
		require.Equal(t, "too_many_requests", e.Code)
		require.Positive(t, e.RetryAfter)
		require.Empty(t, b.srv.Payments())
	})
	t.Run("timeout after success: no answer, the payment exists, a retry gets it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.Script("pm-1", TimeoutAfterSuccess())
		r := b.request(t, http.MethodPost, "/payments", "k", autopayment("pm-1"))
		require.Error(t, r.err, "the connection is dropped")
		recs := b.srv.Payments()
		require.Len(t, recs, 1)
		require.Equal(t, "succeeded", recs[0].Payment.Status)
		again := b.createPayment(t, "k", autopayment("pm-1"))
		require.Equal(t, recs[0].Payment.ID, again.ID)
		require.Len(t, b.srv.Payments(), 1)
	})
	t.Run("timeout after creating a checkout payment: pending, a retry gets it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.ScriptAll(TimeoutAfterSuccess())
		r := b.request(t, http.MethodPost, "/payments", "k", checkout())
		require.Error(t, r.err)
		again := b.createPayment(t, "k", checkout())
		require.Equal(t, "pending", again.Status)
		require.NotEmpty(t, again.Confirmation.ConfirmationURL)
		require.Len(t, b.srv.Payments(), 1)
	})
	t.Run("500 after success: a retry under the key gets the payment", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.Script("pm-1", InternalErrorAfterSuccess())
		r := b.request(t, http.MethodPost, "/payments", "k", autopayment("pm-1"))
		require.Equal(t, http.StatusInternalServerError, r.status)
		recs := b.srv.Payments()
		require.Len(t, recs, 1)
		require.Equal(t, recs[0].Payment.ID, b.createPayment(t, "k", autopayment("pm-1")).ID)
	})
	t.Run("fail the next N GETs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "k", autopayment("pm-1"))
		b.srv.FailGETs(2, http.StatusInternalServerError)
		b.srv.FailGETs(1, http.StatusTooManyRequests)
		for _, want := range []int{500, 500, 429, 200} {
			r := b.request(t, http.MethodGet, "/payments/"+p.ID, "", nil)
			require.Equal(t, want, r.status)
		}
		require.Panics(t, func() { b.srv.FailGETs(1, http.StatusBadGateway) })
	})
	t.Run("scripts per method come before ScriptAll", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.ScriptAll(Decline("general_decline"))
		b.srv.Script("pm-a", Decline("insufficient_funds"))
		require.Equal(t, "insufficient_funds", b.createPayment(t, "1", autopayment("pm-a")).CancellationDetails.Reason)
		require.Equal(t, "general_decline", b.createPayment(t, "2", autopayment("pm-a")).CancellationDetails.Reason)
		require.Equal(t, "succeeded", b.createPayment(t, "3", autopayment("pm-a")).Status)
	})
}

func TestPendingSettlesByTheClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.Script("pm-1", PendingThen(10*time.Minute, Success()), PendingThen(time.Hour, Decline("issuer_unavailable")), Pending())
	ok := b.createPayment(t, "a", autopayment("pm-1"))
	declined := b.createPayment(t, "b", autopayment("pm-1"))
	held := b.createPayment(t, "c", autopayment("pm-1"))
	for _, p := range []Payment{ok, declined, held} {
		require.Equal(t, "pending", p.Status)
		require.False(t, p.Paid)
	}
	b.srv.Advance(10 * time.Minute)
	require.Equal(t, "succeeded", b.getPayment(t, ok.ID).Status)
	require.Equal(t, "2026-03-02T09:10:00.000Z", b.getPayment(t, ok.ID).CapturedAt)
	require.Equal(t, "pending", b.getPayment(t, declined.ID).Status)

	// SetClock moves time too; the change applies when the time is read (here by a GET).
	b.srv.SetClock(func() time.Time { return DefaultStart.Add(time.Hour) })
	require.Equal(t, "canceled", b.getPayment(t, declined.ID).Status)

	b.srv.Advance(30 * 24 * time.Hour)
	require.Equal(t, "pending", b.getPayment(t, held.ID).Status, "Pending waits for the test")
	require.NoError(t, b.srv.Succeed(held.ID))
	require.Equal(t, "succeeded", b.getPayment(t, held.ID).Status)
}

func TestListPayments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string // in creation order, one a minute
	for i := range 25 {
		if i%5 == 4 {
			b.srv.Script("pm-1", Decline("insufficient_funds"))
		}
		ids = append(ids, b.createPayment(t, fmt.Sprintf("k%02d", i), autopayment("pm-1")).ID)
		b.srv.Advance(time.Minute)
	}
	list := func(t *testing.T, query string) (List[Payment], reply) {
		t.Helper()
		r := b.request(t, http.MethodGet, "/payments"+query, "", nil)
		var l List[Payment]
		if r.status == http.StatusOK {
			require.NoError(t, json.Unmarshal(r.body, &l))
			require.Equal(t, "list", l.Type)
		}
		return l, r
	}
	itemIDs := func(l List[Payment]) []string {
		var out []string
		for _, p := range l.Items {
			out = append(out, p.ID)
		}
		return out
	}
	reversed := func(s []string) []string {
		out := make([]string, len(s))
		for i, v := range s {
			out[len(s)-1-i] = v
		}
		return out
	}

	t.Run("default limit 10, newest first, paged by cursor", func(t *testing.T) {
		var all []string
		query := ""
		pages := 0
		for {
			l, r := list(t, query)
			require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
			pages++
			require.LessOrEqual(t, len(l.Items), 10)
			all = append(all, itemIDs(l)...)
			if l.NextCursor == "" {
				break
			}
			query = "?cursor=" + l.NextCursor
		}
		require.Equal(t, 3, pages)
		require.Equal(t, reversed(ids), all)
	})
	t.Run("created_at filters", func(t *testing.T) {
		at := func(i int) string { return DefaultStart.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano) }
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"created_at.gte=" + at(20), reversed(ids[20:])},
			{"created_at.gt=" + at(20), reversed(ids[21:])},
			{"created_at.lte=" + at(2), reversed(ids[:3])},
			{"created_at.lt=" + at(2), reversed(ids[:2])},
			{"created_at.gte=" + at(3) + "&created_at.lt=" + at(6), reversed(ids[3:6])},
			{"created_at.gte=2026-03-02T12:03:00.000%2B03:00&created_at.lt=" + at(4), ids[3:4]},
		} {
			l, r := list(t, "?limit=100&"+tc.query)
			require.Equal(t, http.StatusOK, r.status, "%s: %s", tc.query, r.body)
			require.Equal(t, tc.want, itemIDs(l), tc.query)
		}
	})
	t.Run("status filter with paging", func(t *testing.T) {
		l, _ := list(t, "?status=canceled&limit=3")
		require.Len(t, l.Items, 3)
		require.NotEmpty(t, l.NextCursor)
		l2, _ := list(t, "?status=canceled&limit=3&cursor="+l.NextCursor)
		require.Len(t, l2.Items, 2)
		require.Empty(t, l2.NextCursor)
		for _, p := range append(l.Items, l2.Items...) {
			require.Equal(t, "canceled", p.Status)
		}
		require.Equal(t, []string{ids[24], ids[19], ids[14]}, itemIDs(l))
	})
	t.Run("captured_at and payment_method filters", func(t *testing.T) {
		at := func(i int) string { return DefaultStart.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
		l, r := list(t, "?limit=100&captured_at.gte="+at(15)+"&captured_at.lt="+at(20))
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		require.Equal(t, reversed(ids[15:19]), itemIDs(l), "the canceled payment 19 was never captured")
		l, _ = list(t, "?limit=100&payment_method=bank_card")
		require.Len(t, l.Items, 25)
		l, _ = list(t, "?limit=100&payment_method=sbp")
		require.Empty(t, l.Items)
		require.NotNil(t, l.Items, "items is [] on an empty page, never null")
	})
	t.Run("a filter built from a returned created_at finds its payment", func(t *testing.T) {
		b := setup(t)
		b.srv.SetClock(func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC) })
		p := b.createPayment(t, "k", autopayment("pm-1"))
		require.Equal(t, "2026-05-01T12:00:00.123Z", p.CreatedAt)
		r := b.request(t, http.MethodGet, "/payments?created_at.gte="+p.CreatedAt+"&created_at.lte="+p.CreatedAt, "", nil)
		require.Equal(t, http.StatusOK, r.status)
		var l List[Payment]
		require.NoError(t, json.Unmarshal(r.body, &l))
		require.Len(t, l.Items, 1)
	})
	t.Run("exactly limit items: no next_cursor", func(t *testing.T) {
		l, _ := list(t, "?limit=5&created_at.lt="+DefaultStart.Add(5*time.Minute).Format(time.RFC3339))
		require.Len(t, l.Items, 5)
		require.Empty(t, l.NextCursor)
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, tc := range []struct{ query, parameter string }{
			{"?limit=0", "limit"},
			{"?limit=101", "limit"},
			{"?limit=ten", "limit"},
			{"?status=paid", "status"},
			{"?created_at.gte=yesterday", "created_at.gte"},
			{"?cursor=nonsense", "cursor"},
			// Metadata is searchable on payouts only: an adapter must filter payments itself.
			{"?metadata%5Bbilling_key%5D=k1", "metadata[billing_key]"},
			{"?payment_id=" + ids[0], "payment_id"},
		} {
			_, r := list(t, tc.query)
			require.Equal(t, http.StatusBadRequest, r.status, tc.query)
			require.Equal(t, tc.parameter, r.apiError(t).Parameter, tc.query)
		}
		l, r := list(t, "?limit=100")
		require.Equal(t, http.StatusOK, r.status)
		require.Len(t, l.Items, 25)
	})
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "pay", autopayment("pm-1"))
	post := func(t *testing.T, key string, body map[string]any) reply {
		t.Helper()
		return b.request(t, http.MethodPost, "/refunds", key, body)
	}
	decode := func(t *testing.T, r reply) Refund {
		t.Helper()
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		var rf Refund
		require.NoError(t, json.Unmarshal(r.body, &rf))
		return rf
	}

	part := decode(t, post(t, "r1", refundOf(p.ID, "490.00")))
	require.Equal(t, "succeeded", part.Status)
	require.Equal(t, p.ID, part.PaymentID)
	require.Equal(t, Amount{Value: "490.00", Currency: "RUB"}, part.Amount)
	require.Len(t, part.ID, 36)
	got := b.getPayment(t, p.ID)
	require.Equal(t, &Amount{Value: "490.00", Currency: "RUB"}, got.RefundedAmount)
	require.True(t, got.Refundable)

	for _, tc := range []struct {
		name      string
		body      map[string]any
		parameter string
	}{
		{"more than what is left", refundOf(p.ID, "500.01"), "amount"},
		{"unknown payment", refundOf("2f0000ff-000f-5000-8000-0000000000ff", "1.00"), "payment_id"},
		{"no payment_id", func() map[string]any { m := refundOf(p.ID, "1.00"); delete(m, "payment_id"); return m }(), "payment_id"},
		{"amount without decimals", func() map[string]any {
			m := refundOf(p.ID, "1.00")
			m["amount"] = map[string]any{"value": "1", "currency": "RUB"}
			return m
		}(), "amount.value"},
		{"another currency", func() map[string]any {
			m := refundOf(p.ID, "1.00")
			m["amount"] = map[string]any{"value": "1.00", "currency": "EUR"}
			return m
		}(), "amount.currency"},
		{"description 251 characters", func() map[string]any {
			m := refundOf(p.ID, "1.00")
			m["description"] = strings.Repeat("d", 251)
			return m
		}(), "description"},
		{"receipt for another amount", func() map[string]any {
			m := refundOf(p.ID, "1.00")
			m["receipt"] = receiptFor("2.00")
			return m
		}(), "receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, keyOf("bad-"+tc.name), tc.body)
			require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
			e := r.apiError(t)
			require.Equal(t, "invalid_request", e.Code)
			require.Equal(t, tc.parameter, e.Parameter)
		})
	}

	t.Run("a pending refund holds its amount", func(t *testing.T) {
		b.srv.ScriptRefunds(Pending())
		pending := decode(t, post(t, "r2", refundOf(p.ID, "400.00")))
		require.Equal(t, "pending", pending.Status)
		r := post(t, "r3", refundOf(p.ID, "100.01"))
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "amount", r.apiError(t).Parameter)
		require.NoError(t, b.srv.CancelRefund(pending.ID, "rejected_by_payee"))
		canceled := b.request(t, http.MethodGet, "/refunds/"+pending.ID, "", nil)
		rf := decode(t, canceled)
		require.Equal(t, "canceled", rf.Status)
		require.Equal(t, &CancellationDetails{Party: "refund_network", Reason: "rejected_by_payee"}, rf.CancellationDetails)
		rest := decode(t, post(t, "r4", refundOf(p.ID, "500.00")))
		require.Equal(t, "succeeded", rest.Status)
		got := b.getPayment(t, p.ID)
		require.Equal(t, &Amount{Value: "990.00", Currency: "RUB"}, got.RefundedAmount)
		require.False(t, got.Refundable)
		r = post(t, "r5", refundOf(p.ID, "0.01"))
		require.Equal(t, http.StatusBadRequest, r.status)
	})
	t.Run("only a succeeded payment is refunded", func(t *testing.T) {
		pending := b.createPayment(t, "pending-pay", checkout())
		r := post(t, "r6", refundOf(pending.ID, "1.00"))
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "payment_id", r.apiError(t).Parameter)
	})
	t.Run("timeout after success and the key", func(t *testing.T) {
		p2 := b.createPayment(t, "pay2", autopayment("pm-2"))
		b.srv.ScriptRefunds(TimeoutAfterSuccess())
		r := post(t, "r7", refundOf(p2.ID, "990.00"))
		require.Error(t, r.err)
		again := decode(t, post(t, "r7", refundOf(p2.ID, "990.00")))
		require.Equal(t, "succeeded", again.Status)
		n := 0
		for _, rec := range b.srv.Refunds() {
			if rec.IdempotenceKey == "r7" {
				n++
				require.Equal(t, "990.00", rec.Receipt.Items[0].Amount.Value)
			}
		}
		require.Equal(t, 1, n)
	})
	t.Run("list by payment, newest first", func(t *testing.T) {
		r := b.request(t, http.MethodGet, "/refunds?payment_id="+p.ID, "", nil)
		require.Equal(t, http.StatusOK, r.status)
		var l List[Refund]
		require.NoError(t, json.Unmarshal(r.body, &l))
		require.Len(t, l.Items, 3)
		require.Equal(t, "500.00", l.Items[0].Amount.Value)
		require.Equal(t, "490.00", l.Items[2].Amount.Value)
		r = b.request(t, http.MethodGet, "/refunds?status=canceled&limit=1", "", nil)
		require.NoError(t, json.Unmarshal(r.body, &l))
		require.Len(t, l.Items, 1)
		require.Empty(t, l.NextCursor)
	})
	t.Run("unknown refund", func(t *testing.T) {
		r := b.request(t, http.MethodGet, "/refunds/2f0000ff-0015-5000-8000-0000000000ff", "", nil)
		require.Equal(t, http.StatusNotFound, r.status)
		require.Equal(t, "not_found", r.apiError(t).Code)
	})
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		bodies  [][]byte
		sources []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&raw)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if r.Header.Get("Authorization") != "" || r.Header.Get("Content-Type") != "application/json" {
			host = "unexpected headers"
		}
		mu.Lock()
		bodies = append(bodies, raw)
		sources = append(sources, host)
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	b := setup(t, WithWebhookURL(receiver.URL))

	p := b.createPayment(t, "k", autopayment("pm-1"))
	b.srv.SetWebhookSource(net.ParseIP("127.0.0.2"))
	b.srv.Script("pm-1", Decline("card_expired"))
	b.createPayment(t, "k2", autopayment("pm-1"))
	rf := b.request(t, http.MethodPost, "/refunds", "r", refundOf(p.ID, "10.00"))
	require.Equal(t, http.StatusOK, rf.status)

	ns := b.srv.Notifications()
	require.Len(t, ns, 3)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 3, "POSTed before the answer")
	for i, n := range ns {
		require.True(t, n.Attempted)
		require.Equal(t, http.StatusOK, n.StatusCode)
		require.JSONEq(t, string(n.Body), string(bodies[i]))
	}
	require.Equal(t, []string{"127.0.0.1", "127.0.0.2", "127.0.0.2"}, sources)

	var first struct {
		Type   string         `json:"type"`
		Event  string         `json:"event"`
		Object map[string]any `json:"object"`
	}
	require.NoError(t, json.Unmarshal(bodies[0], &first))
	require.Equal(t, "notification", first.Type)
	require.Equal(t, "payment.succeeded", first.Event)
	require.Equal(t, p.ID, first.Object["id"])
	require.Equal(t, "succeeded", first.Object["status"])
	var events []string
	for _, n := range ns {
		events = append(events, n.Event)
	}
	require.Equal(t, []string{"payment.succeeded", "payment.canceled", "refund.succeeded"}, events)
	var refundNote struct {
		Object Refund `json:"object"`
	}
	require.NoError(t, json.Unmarshal(bodies[2], &refundNote))
	require.Equal(t, p.ID, refundNote.Object.PaymentID)

	t.Run("a dead webhook is recorded, not retried", func(t *testing.T) {
		b2 := setup(t, WithWebhookURL("http://127.0.0.1:1/hook"))
		b2.createPayment(t, "k", autopayment("pm-1"))
		ns := b2.srv.Notifications()
		require.Len(t, ns, 1)
		require.True(t, ns[0].Attempted)
		require.Zero(t, ns[0].StatusCode)
		require.NotEmpty(t, ns[0].Err)
	})
}

func TestWireShapesMatchTheSpecAndTheSDKFixtures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "k", autopayment("pm-1"))
	rf := b.request(t, http.MethodPost, "/refunds", "r", refundOf(p.ID, "10.00"))
	require.Equal(t, http.StatusOK, rf.status)
	simPayment := b.request(t, http.MethodGet, "/payments/"+p.ID, "", nil).json(t)
	simRefund := rf.json(t)

	check := func(t *testing.T, schema, fixture string, sim map[string]any) {
		props, required := specProperties(t, schema)
		for _, k := range keysOf(sim) {
			require.Contains(t, props, k, "%s.%s is not in the spec", schema, k)
		}
		for _, k := range required {
			require.Contains(t, sim, k, "%s.%s is required by the spec", schema, k)
		}
		var fix map[string]any
		require.NoError(t, json.Unmarshal(readFixture(t, "sdk-php-fixtures/"+fixture), &fix))
		for k, v := range fix {
			sv, ok := sim[k]
			if !ok {
				continue
			}
			require.IsType(t, v, sv, "%s: the SDK fixture and the simulator disagree on the type of %q", fixture, k)
			if m, ok := v.(map[string]any); ok && k != "metadata" {
				for sk := range sv.(map[string]any) {
					if _, ok := m[sk]; !ok && k != "payment_method" {
						t.Errorf("%s.%s: the simulator sends %q, the SDK fixture has %v", fixture, k, sk, keysOf(m))
					}
				}
			}
		}
		var common int
		for k := range sim {
			if _, ok := fix[k]; ok {
				common++
			}
		}
		require.GreaterOrEqual(t, common, len(sim)-2, "most fields of %s are in the SDK fixture", schema)
	}
	t.Run("payment", func(t *testing.T) { check(t, "Payment", "paymentInfoFixtures.json", simPayment) })
	t.Run("refund", func(t *testing.T) { check(t, "Refund", "refundInfoFixtures.json", simRefund) })
	t.Run("declined payment against the SDK's declined fixture", func(t *testing.T) {
		b.srv.Script("pm-d", Decline("general_decline"))
		d := b.createPayment(t, "d", autopayment("pm-d"))
		sim := b.request(t, http.MethodGet, "/payments/"+d.ID, "", nil).json(t)
		var fix map[string]any
		require.NoError(t, json.Unmarshal(readFixture(t, "sdk-php-fixtures/createPaymentErrorsGeneralFixtures.json"), &fix))
		require.ElementsMatch(t, keysOf(fix["cancellation_details"].(map[string]any)), keysOf(sim["cancellation_details"].(map[string]any)))
		simPM := sim["payment_method"].(map[string]any)
		fixPM := fix["payment_method"].(map[string]any)
		require.ElementsMatch(t, keysOf(fixPM), keysOf(simPM))
		require.ElementsMatch(t, keysOf(fixPM["card"].(map[string]any)), keysOf(simPM["card"].(map[string]any)))
		for _, k := range []string{"paid", "refundable", "test"} {
			require.Equal(t, fix[k], sim[k], k)
		}
	})
	t.Run("error body", func(t *testing.T) {
		props, _ := specProperties(t, "Error")
		r := b.requestAs(t, "x", "y", http.MethodGet, "/payments", "", nil)
		for _, k := range keysOf(r.json(t)) {
			if k != "code" { // code is declared by the allOf branches (BadRequest, …)
				require.Contains(t, props, k)
			}
		}
	})
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/payments/x/capture"},
		{http.MethodGet, "/receipts"},
		{http.MethodDelete, "/payments"},
	} {
		r := b.request(t, tc.method, tc.path, "k", map[string]any{})
		require.Equal(t, http.StatusNotFound, r.status, tc.path)
		require.Equal(t, "not_found", r.apiError(t).Code)
	}
}

func TestScriptsRefuseWhatCannotBePlayed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name   string
		script func()
	}{
		{"an undocumented payment reason", func() { b.srv.Script("pm", Decline("card_stolen")) }},
		{"a refund reason for a payment", func() { b.srv.ScriptAll(Decline("rejected_by_payee")) }},
		{"a payment reason for a refund", func() { b.srv.ScriptRefunds(Decline("card_expired")) }},
		{"PendingThen ending in a fault", func() { b.srv.Script("pm", PendingThen(time.Minute, InternalError())) }},
		{"PendingThen ending in a bad reason", func() { b.srv.Script("pm", PendingThen(time.Minute, Decline("nope"))) }},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Panics(t, tc.script) })
	}
	// Nothing was queued, and the server is still usable.
	require.Equal(t, "succeeded", b.createPayment(t, "k", autopayment("pm")).Status)
	b.srv.ScriptRefunds(Decline("insufficient_funds"), PendingThen(time.Minute, DeclineBy("general_decline", "yoo_money")))
}

func TestWithoutReceiptsAndRefundSettlement(t *testing.T) {
	t.Parallel()
	b := setup(t, WithoutReceipts())
	body := autopayment("pm-1")
	delete(body, "receipt")
	p := b.createPayment(t, "k", body)
	require.Empty(t, p.ReceiptRegistration)
	rec, _ := b.srv.Payment(p.ID)
	require.Nil(t, rec.Receipt)

	// A receipt that is sent is still checked.
	bad := autopayment("pm-1")
	bad["receipt"] = receiptFor("1.00")
	r := b.request(t, http.MethodPost, "/payments", "k2", bad)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "receipt", r.apiError(t).Parameter)

	b.srv.ScriptRefunds(PendingThen(time.Hour, Success()), Pending())
	refund := func(key, value string) Refund {
		m := refundOf(p.ID, value)
		delete(m, "receipt")
		r := b.request(t, http.MethodPost, "/refunds", key, m)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		var rf Refund
		require.NoError(t, json.Unmarshal(r.body, &rf))
		require.Equal(t, "pending", rf.Status)
		return rf
	}
	later, held := refund("r1", "100.00"), refund("r2", "200.00")
	b.srv.Advance(time.Hour)
	require.NoError(t, b.srv.SucceedRefund(held.ID))
	require.Error(t, b.srv.SucceedRefund(held.ID))
	for _, rec := range b.srv.Refunds() {
		require.Equal(t, "succeeded", rec.Refund.Status, rec.Refund.ID)
	}
	require.Equal(t, &Amount{Value: "300.00", Currency: "RUB"}, b.getPayment(t, p.ID).RefundedAmount)
	var events []string
	for _, n := range b.srv.Notifications() {
		events = append(events, n.Event+" "+n.ObjectID)
	}
	require.Equal(t, []string{"payment.succeeded " + p.ID, "refund.succeeded " + later.ID, "refund.succeeded " + held.ID}, events)
}
