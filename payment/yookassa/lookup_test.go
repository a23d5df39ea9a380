package yookassa_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
)

// createdAt is when the tests' attempts were created: two days before now, past YooKassa's
// 24 h memory of keys.
var createdAt = now.Add(-48 * time.Hour)

// requireOnlyGETs checks that a lookup made no request that could create anything.
func requireOnlyGETs(t *testing.T, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		require.Equal(t, http.MethodGet, r.Method, "Lookup never creates: %s %s", r.Method, r.Path)
		require.Empty(t, r.Header.Get("Idempotence-Key"))
	}
}

func TestLookupByID(t *testing.T) {
	t.Parallel()
	other := "ffffffff-000f-5000-9000-000000000000"
	tests := []struct {
		name     string
		handle   func(int, request) answer
		wantErr  error
		want     payment.Outcome
		wantReqs []string
	}{
		{
			name:     "the payment under the key answers",
			handle:   always(answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, nil)}),
			want:     payment.OutcomeSucceeded,
			wantReqs: []string{"/payments/" + paymentID},
		},
		{
			name: "another key: a forged webhook's id proves nothing; the key is searched, not found",
			handle: sequence(
				answer{Body: paymentJSON(t, paymentID, "succeeded", "someone-elses-key", nil)},
				answer{Body: listJSON(t, "", paymentJSON(t, other, "succeeded", "yet-another", nil))},
			),
			wantErr:  payment.ErrNotFound,
			wantReqs: []string{"/payments/" + paymentID, "/payments"},
		},
		{
			name: "another key, and the search finds the real payment under the key",
			handle: sequence(
				answer{Body: paymentJSON(t, paymentID, "succeeded", "someone-elses-key", nil)},
				answer{Body: listJSON(t, "", paymentJSON(t, other, "canceled", chargeKey,
					map[string]any{"cancellation_details": map[string]string{"party": "payment_network", "reason": "card_expired"}}))},
			),
			want:     payment.OutcomeHardDeclined,
			wantReqs: []string{"/payments/" + paymentID, "/payments"},
		},
		{
			name: "404 for the id: searched by key",
			handle: sequence(
				answer{Status: 404, Body: `{"type":"error","code":"not_found"}`},
				answer{Body: listJSON(t, "")},
			),
			wantErr:  payment.ErrNotFound,
			wantReqs: []string{"/payments/" + paymentID, "/payments"},
		},
		{
			name:     "401 for the id is an error, not ErrNotFound",
			handle:   always(answer{Status: 401, Body: `{"type":"error","code":"invalid_credentials"}`}),
			wantErr:  &yookassa.APIError{},
			wantReqs: []string{"/payments/" + paymentID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.handle)
			res, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, ProviderPaymentID: paymentID, CreatedAt: createdAt})
			reqs := b.api.requests()
			requireOnlyGETs(t, reqs)
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Path)
			}
			require.Equal(t, tt.wantReqs, paths)
			switch want := tt.wantErr.(type) {
			case nil:
				require.NoError(t, err)
				require.Equal(t, tt.want, res.Outcome)
			case *yookassa.APIError:
				require.ErrorAs(t, err, &want)
				require.NotErrorIs(t, err, payment.ErrNotFound)
			default:
				require.ErrorIs(t, err, want)
			}
		})
	}
}

func TestLookupCheckoutReturnsTheSavedMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, map[string]any{
		"payment_method": map[string]any{"type": "bank_card", "id": "pm-saved-1", "saved": true,
			"card": map[string]any{"first6": "555555", "last4": "4477", "expiry_month": "07", "expiry_year": "2030", "card_type": "MasterCard"}},
	})}))
	res, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, ProviderPaymentID: paymentID, CreatedAt: createdAt})
	require.NoError(t, err)
	require.Equal(t, payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: paymentID, Amount: 99000, Currency: "RUB", PaymentMethod: "pm-saved-1"}, res)

	t.Run("a method not saved is not returned", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: paymentJSON(t, paymentID, "succeeded", chargeKey, map[string]any{
			"payment_method": map[string]any{"type": "bank_card", "id": "pm-once", "saved": false}})}))
		res, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, ProviderPaymentID: paymentID, CreatedAt: createdAt})
		require.NoError(t, err)
		require.Empty(t, res.PaymentMethod)
	})
}

func TestLookupByListing(t *testing.T) {
	t.Parallel()
	x := func(id, key string) string { return paymentJSON(t, id, "succeeded", key, nil) }
	b := setup(t, sequence(
		answer{Body: listJSON(t, "c1", x("p1", "k1"), x("p2", "k2"))},
		answer{Body: listJSON(t, "c2", x("p3", "k3"))},
		answer{Body: listJSON(t, "", x("p4", "k4"), paymentJSON(t, paymentID, "pending", chargeKey, nil))},
	))
	res, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, CreatedAt: createdAt})
	require.NoError(t, err)
	require.Equal(t, payment.ChargeResult{Outcome: payment.OutcomePending, ProviderPaymentID: paymentID, Amount: 99000, Currency: "RUB"}, res)

	reqs := b.api.requests()
	require.Len(t, reqs, 3)
	requireOnlyGETs(t, reqs)
	for i, r := range reqs {
		require.Equal(t, "/payments", r.Path)
		require.Equal(t, "2026-02-28T11:00:00.000Z", r.Query.Get("created_at.gte"), "CreatedAt less the 1 h margin")
		require.Equal(t, "2026-03-02T13:00:00.000Z", r.Query.Get("created_at.lte"), "now plus the margin")
		require.Equal(t, "100", r.Query.Get("limit"))
		require.Equal(t, []string{"", "c1", "c2"}[i], r.Query.Get("cursor"))
	}
}

func TestLookupListingFailures(t *testing.T) {
	t.Parallel()
	page := func(next string) answer {
		return answer{Body: listJSON(t, next, paymentJSON(t, "p1", "succeeded", "k1", nil))}
	}
	tests := []struct {
		name    string
		handle  func(int, request) answer
		edit    func(*yookassa.Config)
		wantErr error
	}{
		{"a 5xx on page 2 after retries is an error, not ErrNotFound",
			func(n int, _ request) answer {
				if n == 0 {
					return page("c1")
				}
				return answer{Status: 502}
			}, nil, nil},
		{"an undecodable page is an error", sequence(page("c1"), answer{Body: `{"items": [`}), nil, nil},
		{"a 404 on a listing is an error", sequence(page("c1"), answer{Status: 404}), nil, nil},
		{"the page limit is ErrListingLimit",
			func(n int, _ request) answer { return page("c") },
			func(c *yookassa.Config) { c.MaxListPages = 2 }, yookassa.ErrListingLimit},
		{"two payments under one key is ErrDuplicateKey",
			always(answer{Body: listJSON(t, "", paymentJSON(t, "p1", "succeeded", chargeKey, nil), paymentJSON(t, "p2", "succeeded", chargeKey, nil))}),
			nil, yookassa.ErrDuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var edits []func(*yookassa.Config)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			b := setup(t, tt.handle, edits...)
			_, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, CreatedAt: createdAt})
			require.Error(t, err)
			require.NotErrorIs(t, err, payment.ErrNotFound, "only a complete listing may say the key was never seen")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			requireOnlyGETs(t, b.api.requests())
		})
	}
	t.Run("the page limit after a match returns the match", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{Body: listJSON(t, "more", paymentJSON(t, paymentID, "succeeded", chargeKey, nil))}),
			func(c *yookassa.Config) { c.MaxListPages = 1 })
		res, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, CreatedAt: createdAt})
		require.NoError(t, err)
		require.Equal(t, paymentID, res.ProviderPaymentID)
	})
	t.Run("a zero CreatedAt without a match by id is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{}))
		_, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey})
		require.ErrorIs(t, err, payment.ErrInvalid)
		require.False(t, errors.Is(err, payment.ErrNotFound))
		require.Empty(t, b.api.requests())
	})
}

func TestLookupRefund(t *testing.T) {
	t.Parallel()
	req := payment.RefundLookupParams{IdempotencyKey: refundKey, ProviderPaymentID: paymentID, ProviderRefundID: refundID, CreatedAt: createdAt}
	tests := []struct {
		name     string
		req      payment.RefundLookupParams
		handle   func(int, request) answer
		want     payment.Outcome
		wantErr  error
		wantReqs []string
	}{
		{"by id, under the key", req,
			always(answer{Body: refundJSON(t, refundID, "succeeded", refundKey, nil)}),
			payment.OutcomeSucceeded, nil, []string{"/refunds/" + refundID}},
		{"by id under another key, then the listing finds nothing", req,
			sequence(answer{Body: refundJSON(t, refundID, "succeeded", "other", nil)}, answer{Body: listJSON(t, "")}),
			"", payment.ErrNotFound, []string{"/refunds/" + refundID, "/refunds"}},
		{"by listing over two pages, canceled with a reason", payment.RefundLookupParams{IdempotencyKey: refundKey, ProviderPaymentID: paymentID, CreatedAt: createdAt},
			sequence(
				answer{Body: listJSON(t, "c1", refundJSON(t, "r-0", "succeeded", "k0", nil))},
				answer{Body: listJSON(t, "", refundJSON(t, refundID, "canceled", refundKey,
					map[string]any{"cancellation_details": map[string]string{"party": "refund_network", "reason": "rejected_by_payee"}}))}),
			payment.OutcomeHardDeclined, nil, []string{"/refunds", "/refunds"}},
		{"a failure mid-listing is an error", payment.RefundLookupParams{IdempotencyKey: refundKey, ProviderPaymentID: paymentID, CreatedAt: createdAt},
			sequence(answer{Body: listJSON(t, "c1")}, answer{Status: 500}),
			"", errors.New("any"), []string{"/refunds", "/refunds", "/refunds", "/refunds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.handle)
			res, err := b.gw.LookupRefund(context.Background(), tt.req)
			reqs := b.api.requests()
			requireOnlyGETs(t, reqs)
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Path)
				if r.Path == "/refunds" {
					require.Equal(t, paymentID, r.Query.Get("payment_id"))
					require.Equal(t, "2026-02-28T11:00:00.000Z", r.Query.Get("created_at.gte"))
				}
			}
			require.Equal(t, tt.wantReqs, paths)
			switch {
			case tt.wantErr == nil:
				require.NoError(t, err)
				require.Equal(t, tt.want, res.Outcome)
			case errors.Is(tt.wantErr, payment.ErrNotFound):
				require.ErrorIs(t, err, payment.ErrNotFound)
			default:
				require.Error(t, err)
				require.NotErrorIs(t, err, payment.ErrNotFound)
			}
		})
	}
}

func TestLookupRefundOfAnotherPaymentIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: listJSON(t, "", refundJSON(t, refundID, "succeeded", refundKey, map[string]any{"payment_id": "another-payment"}))}))
	_, err := b.gw.LookupRefund(context.Background(), payment.RefundLookupParams{IdempotencyKey: refundKey, ProviderPaymentID: paymentID, CreatedAt: createdAt})
	require.ErrorContains(t, err, "another-payment")
	require.NotErrorIs(t, err, payment.ErrNotFound)
}

func TestLookupWindowWhenTheEnginesClockIsAhead(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Body: listJSON(t, "")}))
	_, err := b.gw.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: chargeKey, CreatedAt: now.Add(2 * time.Hour)})
	require.ErrorIs(t, err, payment.ErrNotFound)
	q := b.api.requests()[0].Query
	require.Equal(t, "2026-03-02T13:00:00.000Z", q.Get("created_at.gte"))
	require.Equal(t, "2026-03-02T15:00:00.000Z", q.Get("created_at.lte"), "CreatedAt plus the margin, not an empty window")
}
