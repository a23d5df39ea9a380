package billingtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
)

// startHTTPGateway serves a new fake gateway over HTTP and returns it with a client.
func startHTTPGateway(t *testing.T) (*billingtest.Gateway, *billingtest.GatewayServer, *httptest.Server, billingtest.HTTPGateway) {
	t.Helper()
	g := billingtest.NewGateway()
	s := billingtest.NewGatewayServer(g)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return g, s, srv, billingtest.HTTPGateway{BaseURL: srv.URL, Client: &http.Client{Timeout: 5 * time.Second}}
}

func TestHTTPGatewayCharge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name        string
		behaviour   billingtest.Behaviour
		wantOutcome payment.Outcome // "" when the call must fail
		wantCode    string
		wantStatus  int
		wantCharges int
		wantLookup  payment.Outcome // "" when Lookup must answer ErrNotFound
	}{
		{"succeed", billingtest.Succeed, payment.OutcomeSucceeded, "", 0, 1, payment.OutcomeSucceeded},
		{"a soft decline is a result, not an error", billingtest.SoftDecline, payment.OutcomeSoftDeclined, "", 0, 0, payment.OutcomeSoftDeclined},
		{"a hard decline is a result, not an error", billingtest.HardDecline, payment.OutcomeHardDeclined, "", 0, 0, payment.OutcomeHardDeclined},
		{"pending", billingtest.Pending, payment.OutcomePending, "", 0, 0, payment.OutcomePending},
		{"timeout after success: an error, and Lookup finds the charge", billingtest.TimeoutAfterSuccess, "", billingtest.CodeTimeout, http.StatusGatewayTimeout, 1, payment.OutcomeSucceeded},
		{"timeout before charge: an error, and Lookup answers ErrNotFound", billingtest.TimeoutBeforeCharge, "", billingtest.CodeTimeout, http.StatusGatewayTimeout, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _, _, h := startHTTPGateway(t)
			g.ScriptAll(tt.behaviour)
			req := gwReq(t, 7, 1)
			res, err := h.Charge(ctx, req)
			if tt.wantOutcome == "" {
				var he *billingtest.HTTPError
				require.ErrorAs(t, err, &he)
				require.Equal(t, tt.wantStatus, he.StatusCode)
				require.Equal(t, tt.wantCode, he.Code)
				require.NotErrorIs(t, err, payment.ErrNotFound)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantOutcome, res.Outcome)
				require.Equal(t, "pay_1", res.ProviderPaymentID)
				require.Equal(t, req.Amount, res.Amount)
				require.Equal(t, "RUB", res.Currency)
			}
			require.Len(t, g.ChargesFor(gwSub, 7), tt.wantCharges)

			got, err := h.Lookup(ctx, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
			if tt.wantLookup == "" {
				require.ErrorIs(t, err, payment.ErrNotFound)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantLookup, got.Outcome)
			}

			// The same key again: the first charge's result, never a second charge.
			if tt.wantOutcome != "" || tt.wantLookup != "" {
				again, err := h.Charge(ctx, req)
				require.NoError(t, err)
				require.Equal(t, "pay_1", again.ProviderPaymentID)
				require.Len(t, g.ChargesFor(gwSub, 7), tt.wantCharges)
			}
		})
	}
}

func TestHTTPGatewayReceivesTheRequestAsSent(t *testing.T) {
	t.Parallel()
	g, _, _, h := startHTTPGateway(t)
	req := gwReq(t, 3, 1)
	_, err := h.Charge(context.Background(), req)
	require.NoError(t, err)
	charges := g.Charges()
	require.Len(t, charges, 1)
	require.Equal(t, req.IdempotencyKey, charges[0].IdempotencyKey)
	require.Equal(t, req.Metadata, charges[0].Metadata)
	require.Equal(t, req.Receipt.Kind, charges[0].Receipt.Kind)
	require.Len(t, charges[0].Receipt.Items, 1)
	require.True(t, req.Receipt.Items[0].Quantity.Equal(charges[0].Receipt.Items[0].Quantity))
	require.Equal(t, req.Receipt.Items[0].Amount, charges[0].Receipt.Items[0].Amount)
}

func TestHTTPGatewayErrorsAreNeverDeclinesNorNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("invalid request: its ValidationError, and nothing sent", func(t *testing.T) {
		t.Parallel()
		g, _, _, h := startHTTPGateway(t)
		req := gwReq(t, 1, 1)
		req.Amount = 0
		_, err := h.Charge(ctx, req)
		require.ErrorIs(t, err, payment.ErrInvalid)
		refund := gwRefund(t, "refund-1", "pay_1", gwPrice)
		refund.IdempotencyKey = ""
		_, err = h.Refund(ctx, refund)
		require.ErrorIs(t, err, payment.ErrInvalid)
		require.Equal(t, billingtest.CallCounts{}, g.Calls(), "an invalid request reached the server")
	})
	t.Run("malformed body at the server: 400 invalid", func(t *testing.T) {
		t.Parallel()
		g, _, srv, _ := startHTTPGateway(t)
		resp, err := http.Post(srv.URL+billingtest.PathCharge, "application/json", strings.NewReader(`{"Amount": "many"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		var eb billingtest.ErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
		require.Equal(t, billingtest.CodeInvalid, eb.Code)
		require.Empty(t, g.Charges())
	})
	t.Run("key reused: 409, an error", func(t *testing.T) {
		t.Parallel()
		_, _, _, h := startHTTPGateway(t)
		req := gwReq(t, 1, 1)
		_, err := h.Charge(ctx, req)
		require.NoError(t, err)
		req = gwCharge(t, req.IdempotencyKey, req.PaymentMethod, req.Amount+1, req.Metadata)
		_, err = h.Charge(ctx, req)
		var he *billingtest.HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, http.StatusConflict, he.StatusCode)
	})
	t.Run("lookup unavailable: 503, an error, not ErrNotFound", func(t *testing.T) {
		t.Parallel()
		g, _, _, h := startHTTPGateway(t)
		g.FailLookups(1)
		_, err := h.Lookup(ctx, payment.LookupParams{IdempotencyKey: "never-seen"})
		require.Error(t, err)
		require.NotErrorIs(t, err, payment.ErrNotFound)
		_, err = h.Lookup(ctx, payment.LookupParams{IdempotencyKey: "never-seen"})
		require.ErrorIs(t, err, payment.ErrNotFound)
	})
	t.Run("a 404 of a wrong URL is not ErrNotFound", func(t *testing.T) {
		t.Parallel()
		_, _, srv, _ := startHTTPGateway(t)
		h := billingtest.HTTPGateway{BaseURL: srv.URL + "/v2"}
		_, err := h.Lookup(ctx, payment.LookupParams{IdempotencyKey: "never-seen"})
		var he *billingtest.HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, http.StatusNotFound, he.StatusCode)
		require.NotErrorIs(t, err, payment.ErrNotFound)
		_, err = h.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "never-seen"})
		require.NotErrorIs(t, err, payment.ErrNotFound)
	})
	t.Run("a 2xx answer without an outcome is an error", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{}`))
		}))
		t.Cleanup(srv.Close)
		h := billingtest.HTTPGateway{BaseURL: srv.URL}
		_, err := h.Charge(ctx, gwReq(t, 1, 1))
		require.Error(t, err)
		_, err = h.Lookup(ctx, payment.LookupParams{IdempotencyKey: "k"})
		require.Error(t, err)
		require.NotErrorIs(t, err, payment.ErrNotFound)
	})
	t.Run("server gone: a transport error", func(t *testing.T) {
		t.Parallel()
		_, _, srv, h := startHTTPGateway(t)
		srv.Close()
		_, err := h.Charge(ctx, gwReq(t, 1, 1))
		require.Error(t, err)
		_, err = h.Lookup(ctx, payment.LookupParams{IdempotencyKey: "k"})
		require.Error(t, err)
		require.NotErrorIs(t, err, payment.ErrNotFound)
	})
}

func TestHTTPGatewayTimeoutLandsLater(t *testing.T) {
	t.Parallel()
	g, _, _, h := startHTTPGateway(t)
	g.SetLatency(200 * time.Millisecond)
	req := gwReq(t, 2, 1)

	// The client gives up once the provider has the request (a timeout, a killed process).
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for g.Calls().Charge == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := h.Charge(ctx, req)
	require.Error(t, err, "a call given up is an error: outcome unknown")
	require.NotErrorIs(t, err, payment.ErrNotFound)

	// The provider finishes the request the client gave up on: the money moves.
	require.Eventually(t, func() bool { return len(g.ChargesFor(gwSub, 2)) == 1 }, 5*time.Second, 10*time.Millisecond)
	g.SetLatency(0)
	res, err := h.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
	require.NoError(t, err)
	require.Equal(t, payment.OutcomeSucceeded, res.Outcome)
}

func TestHTTPGatewayRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g, _, _, h := startHTTPGateway(t)
	charged, err := h.Charge(ctx, gwReq(t, 1, 1))
	require.NoError(t, err)

	_, err = h.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-1"})
	require.ErrorIs(t, err, payment.ErrNotFound)
	res, err := h.Refund(ctx, gwRefund(t, "r-1", charged.ProviderPaymentID, gwPrice))
	require.NoError(t, err)
	require.Equal(t, payment.OutcomeSucceeded, res.Outcome)
	require.Equal(t, "rfd_1", res.ProviderRefundID)
	got, err := h.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-1"})
	require.NoError(t, err)
	require.Equal(t, res, got)

	_, err = h.Refund(ctx, gwRefund(t, "r-2", charged.ProviderPaymentID, 1))
	var he *billingtest.HTTPError
	require.ErrorAs(t, err, &he, "refunding more than is left is an error")
	require.Equal(t, http.StatusUnprocessableEntity, he.StatusCode)

	g.ScriptRefunds(billingtest.SoftDecline)
	g2charge, err := h.Charge(ctx, gwReq(t, 2, 1))
	require.NoError(t, err)
	res, err = h.Refund(ctx, gwRefund(t, "r-3", g2charge.ProviderPaymentID, 100))
	require.NoError(t, err, "a refused refund is a result")
	require.Equal(t, payment.OutcomeSoftDeclined, res.Outcome)
	require.Len(t, g.Refunds(), 1)
}

func TestHTTPGatewayConcurrentSameKey(t *testing.T) {
	t.Parallel()
	g, s, _, h := startHTTPGateway(t)
	s.SetMaxDelay(20 * time.Millisecond)
	req := gwReq(t, 5, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			res, err := h.Charge(context.Background(), req)
			if err == nil && res.ProviderPaymentID != "pay_1" {
				err = errors.New("second provider payment " + res.ProviderPaymentID)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, g.ChargesFor(gwSub, 5), 1)
	require.Equal(t, 32, g.Calls().Charge)
}
