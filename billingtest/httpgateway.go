package billingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smm-gpt/billing/payment"
)

// The paths GatewayServer serves and HTTPGateway calls, each a POST of a JSON body.
const (
	// PathCharge takes a payment.ChargeParams and answers a payment.ChargeResult.
	PathCharge = "/charge"
	// PathRefund takes a payment.RefundParams and answers a payment.RefundResult.
	PathRefund = "/refund"
	// PathLookup takes a payment.LookupParams and answers a payment.ChargeResult, or 404
	// not_found.
	PathLookup = "/lookup"
	// PathLookupRefund takes a payment.RefundLookupParams and answers a payment.RefundResult,
	// or 404 not_found.
	PathLookupRefund = "/lookup-refund"
)

// The codes of a GatewayServer's error bodies (HTTPError.Code).
const (
	// CodeNotFound (HTTP 404) means the gateway never saw the key: payment.ErrNotFound.
	CodeNotFound = "not_found"
	// CodeInvalid (HTTP 400) is a malformed request: a bad body or a *payment.ValidationError.
	CodeInvalid = "invalid"
	// CodeKeyReused (HTTP 409) is ErrKeyReused.
	CodeKeyReused = "key_reused"
	// CodeRefused (HTTP 422) is ErrNoSuchPayment or ErrRefundExceedsPayment.
	CodeRefused = "refused"
	// CodeUnavailable (HTTP 503) is ErrUnavailable (scripted lookup failures).
	CodeUnavailable = "unavailable"
	// CodeTimeout (HTTP 504) is ErrTimeout (scripted timeouts) or a deadline.
	CodeTimeout = "timeout"
	// CodeInternal (HTTP 500) is any other error.
	CodeInternal = "internal"
)

// ErrorBody is the JSON body of a GatewayServer's non-2xx answer.
type ErrorBody struct {
	// Code is one of the Code… constants.
	Code string `json:"code"`
	// Message is the gateway's error text.
	Message string `json:"message"`
}

// GatewayServer serves a *Gateway over JSON/HTTP (POST PathCharge, PathRefund, PathLookup,
// PathLookupRefund), so that engines in other processes can share one fake provider: start it
// with httptest.NewServer and point an HTTPGateway at its URL. Make it with NewGatewayServer.
//
// Like a real provider, it finishes a request it received even when the client has gone (a
// killed process, a client timeout): the Gateway call runs without the request's
// cancellation. SetMaxDelay adds a random delay, part before the Gateway handles the call and
// part after, so that a client killed or timed out mid-call leaves either nothing recorded or
// a charge recorded that it never heard about.
type GatewayServer struct {
	g   *Gateway
	mux *http.ServeMux

	mu       sync.Mutex
	maxDelay time.Duration
}

// NewGatewayServer returns a server of g with no delay.
func NewGatewayServer(g *Gateway) *GatewayServer {
	s := &GatewayServer{g: g, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+PathCharge, func(w http.ResponseWriter, r *http.Request) {
		var req payment.ChargeParams
		serve(s, w, r, &req, func(ctx context.Context) (any, error) { return g.Charge(ctx, req) })
	})
	s.mux.HandleFunc("POST "+PathRefund, func(w http.ResponseWriter, r *http.Request) {
		var req payment.RefundParams
		serve(s, w, r, &req, func(ctx context.Context) (any, error) { return g.Refund(ctx, req) })
	})
	s.mux.HandleFunc("POST "+PathLookup, func(w http.ResponseWriter, r *http.Request) {
		var req payment.LookupParams
		serve(s, w, r, &req, func(ctx context.Context) (any, error) { return g.Lookup(ctx, req) })
	})
	s.mux.HandleFunc("POST "+PathLookupRefund, func(w http.ResponseWriter, r *http.Request) {
		var req payment.RefundLookupParams
		serve(s, w, r, &req, func(ctx context.Context) (any, error) { return g.LookupRefund(ctx, req) })
	})
	return s
}

// SetMaxDelay makes every call wait a random time between 0 and d in all, split at random
// between before and after the Gateway handles it. 0, the default, answers at once.
func (s *GatewayServer) SetMaxDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxDelay = max(d, 0)
}

// ServeHTTP serves the four paths; anything else is a plain 404 or 405 without an ErrorBody.
func (s *GatewayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// delays returns the waits before and after the Gateway call.
func (s *GatewayServer) delays() (time.Duration, time.Duration) {
	s.mu.Lock()
	d := s.maxDelay
	s.mu.Unlock()
	if d <= 0 {
		return 0, 0
	}
	total := rand.N(d + 1)
	before := rand.N(total + 1)
	return before, total - before
}

// serve decodes the body into req, calls call without the request's cancellation between the
// two delays, and writes the result or the error.
func serve(s *GatewayServer, w http.ResponseWriter, r *http.Request, req any, call func(context.Context) (any, error)) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorBody{Code: CodeInvalid, Message: "bad request body: " + err.Error()})
		return
	}
	before, after := s.delays()
	time.Sleep(before)
	res, err := call(context.WithoutCancel(r.Context()))
	time.Sleep(after)
	if err != nil {
		status, code := statusOf(err)
		writeJSON(w, status, ErrorBody{Code: code, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// statusOf maps a Gateway error to its HTTP status and code.
func statusOf(err error) (int, string) {
	var ve *payment.ValidationError
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.As(err, &ve):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, ErrKeyReused):
		return http.StatusConflict, CodeKeyReused
	case errors.Is(err, ErrNoSuchPayment), errors.Is(err, ErrRefundExceedsPayment):
		return http.StatusUnprocessableEntity, CodeRefused
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout
	}
	return http.StatusInternalServerError, CodeInternal
}

// writeJSON writes v as the JSON body of an answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

// HTTPGateway is a payment.Gateway that calls a GatewayServer over net/http: the adapter of
// an engine in another process than the fake provider (the crash test's children).
//
// It keeps the payment.Gateway contract: a transport error, a timeout, a non-2xx answer or
// a 2xx answer it cannot read is returned as an error (outcome unknown), never as a
// decline; declines are results. Only a 404 whose body has code CodeNotFound, from a lookup,
// is payment.ErrNotFound; a 404 of a wrong URL is an *HTTPError like any other status. A
// charge or refund request that does not validate is refused with its
// *payment.ValidationError before anything is sent (TERMS 5.1: a card number where the token
// goes never leaves the process).
type HTTPGateway struct {
	// BaseURL is the server's URL without a trailing slash, e.g. an httptest.Server's URL.
	BaseURL string
	// Client makes the calls; nil means http.DefaultClient. Its Timeout bounds each call
	// (an expired one is an error: outcome unknown), as does the caller's context.
	Client *http.Client
}

// HTTPGateway implements payment.Gateway.
var _ payment.Gateway = HTTPGateway{}

// HTTPError is HTTPGateway's error for a non-2xx answer (other than a lookup's not_found).
type HTTPError struct {
	// Path is the path called, e.g. PathCharge.
	Path string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code and Message are from the answer's ErrorBody; empty when it had none.
	Code, Message string
}

// Error names the call, the status and the server's message.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("billingtest: HTTP gateway %s: HTTP %d %s: %s", e.Path, e.StatusCode, e.Code, e.Message)
}

// Charge posts req to PathCharge. An error means the outcome is unknown; an invalid req is
// its *payment.ValidationError, and nothing is sent.
func (h HTTPGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	if err := req.Validate(); err != nil {
		return payment.ChargeResult{}, err
	}
	var res payment.ChargeResult
	if err := h.call(ctx, PathCharge, req, &res, false); err != nil {
		return payment.ChargeResult{}, err
	}
	if !res.Outcome.Valid() {
		return payment.ChargeResult{}, fmt.Errorf("billingtest: HTTP gateway %s: answer without a valid outcome (%q)", PathCharge, res.Outcome)
	}
	return res, nil
}

// Refund posts req to PathRefund. An error means the outcome is unknown; an invalid req is
// its *payment.ValidationError, and nothing is sent.
func (h HTTPGateway) Refund(ctx context.Context, req payment.RefundParams) (payment.RefundResult, error) {
	if err := req.Validate(); err != nil {
		return payment.RefundResult{}, err
	}
	var res payment.RefundResult
	if err := h.call(ctx, PathRefund, req, &res, false); err != nil {
		return payment.RefundResult{}, err
	}
	if !res.Outcome.Valid() {
		return payment.RefundResult{}, fmt.Errorf("billingtest: HTTP gateway %s: answer without a valid outcome (%q)", PathRefund, res.Outcome)
	}
	return res, nil
}

// Lookup posts req to PathLookup; payment.ErrNotFound when the gateway never saw the key.
func (h HTTPGateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	var res payment.ChargeResult
	if err := h.call(ctx, PathLookup, req, &res, true); err != nil {
		return payment.ChargeResult{}, err
	}
	if !res.Outcome.Valid() {
		return payment.ChargeResult{}, fmt.Errorf("billingtest: HTTP gateway %s: answer without a valid outcome (%q)", PathLookup, res.Outcome)
	}
	return res, nil
}

// LookupRefund posts req to PathLookupRefund; payment.ErrNotFound when the gateway never saw
// the key.
func (h HTTPGateway) LookupRefund(ctx context.Context, req payment.RefundLookupParams) (payment.RefundResult, error) {
	var res payment.RefundResult
	if err := h.call(ctx, PathLookupRefund, req, &res, true); err != nil {
		return payment.RefundResult{}, err
	}
	if !res.Outcome.Valid() {
		return payment.RefundResult{}, fmt.Errorf("billingtest: HTTP gateway %s: answer without a valid outcome (%q)", PathLookupRefund, res.Outcome)
	}
	return res, nil
}

// call posts in as JSON to path and decodes a 2xx answer into out. lookup says whether a
// not_found answer is payment.ErrNotFound.
func (h HTTPGateway) call(ctx context.Context, path string, in, out any, lookup bool) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("billingtest: HTTP gateway %s: encode: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(h.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("billingtest: HTTP gateway %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("billingtest: HTTP gateway %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("billingtest: HTTP gateway %s: read answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		_ = json.Unmarshal(data, &eb) // a body that is not an ErrorBody leaves Code empty
		if lookup && resp.StatusCode == http.StatusNotFound && eb.Code == CodeNotFound {
			return fmt.Errorf("%w: %s", payment.ErrNotFound, eb.Message)
		}
		if eb.Code == "" && eb.Message == "" {
			eb.Message = strings.TrimSpace(string(data))
		}
		return &HTTPError{Path: path, StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("billingtest: HTTP gateway %s: decode answer: %w", path, err)
	}
	return nil
}
