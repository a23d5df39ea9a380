package yookassa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxAnswer bounds the body of an answer read into memory.
const maxAnswer = 4 << 20

// APIError is a non-2xx answer from YooKassa that is final: a 4xx other than 429, or a 429
// or 5xx still there after the last retry. It is an error, never a decline: for a create
// request it means the outcome is unknown (5xx, 429) or the operator's set-up is at fault
// (401 invalid_credentials, 403 forbidden, 400 invalid_request). It never holds a
// credential or a request body.
type APIError struct {
	// Op is the call, e.g. "POST /payments".
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is YooKassa's error code ("invalid_request", "invalid_credentials", …), if any.
	Code string
	// Description is YooKassa's text about the error, if any.
	Description string
	// Parameter names the request parameter at fault, if YooKassa said.
	Parameter string
	// ID is YooKassa's id of the error, for its support.
	ID string
}

// Error names the call, the status and YooKassa's code and text.
func (e *APIError) Error() string {
	s := fmt.Sprintf("yookassa: %s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Parameter != "" {
		s += " (parameter " + e.Parameter + ")"
	}
	if e.ID != "" {
		s += " [error id " + e.ID + "]"
	}
	return s
}

// SetupFault reports whether the error is a fault of the operator's set-up or of the
// request (401, 403, 400 and other non-retryable 4xx), rather than a passing failure.
func (e *APIError) SetupFault() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests
}

// errorBody is YooKassa's error object.
type errorBody struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
	Parameter   string `json:"parameter"`
	RetryAfter  int64  `json:"retry_after"` // milliseconds
}

// errNotFoundAnswer is what call returns for HTTP 404, so that a caller fetching by id can
// tell it from other failures.
var errNotFoundAnswer = errors.New("yookassa: HTTP 404 not_found")

// call sends one API request and decodes a 2xx answer into out. method is GET or POST;
// a POST carries key as its Idempotence-Key and body as JSON. Retries follow the policy
// (safe for both: GETs change nothing, POSTs carry the key). A 404 is errNotFoundAnswer
// (wrapped in an *APIError). Every other failure is an error.
func (g *Gateway) call(ctx context.Context, method, path string, query url.Values, key string, body, out any) error {
	op := method + " " + path
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("yookassa: %s: encode: %w", op, err)
		}
	}
	target := g.cfg.BaseURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		retry, wait, err := g.try(ctx, op, method, target, key, payload, out)
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry || attempt >= g.cfg.Retry.MaxAttempts || ctx.Err() != nil {
			break
		}
		if wait <= 0 {
			wait = g.backoff(attempt)
		}
		wait = min(wait, g.cfg.Retry.MaxDelay)
		g.cfg.Logger.WarnContext(ctx, "yookassa: retrying", "op", op, "attempt", attempt, "wait", wait, "error", err.Error())
		if err := g.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("yookassa: %s: waiting to retry: %w (last failure: %w)", op, err, lastErr)
		}
	}
	return lastErr
}

// try sends one attempt. It reports whether a failure may be retried and how long YooKassa
// asked to wait (0: not said).
func (g *Gateway) try(ctx context.Context, op, method, target, key string, payload []byte, out any) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return false, 0, fmt.Errorf("yookassa: %s: %w", op, err)
	}
	req.SetBasicAuth(g.cfg.ShopID, g.secret().Reveal())
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotence-Key", key)
	}
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		// A timeout or a dropped connection: the request may have arrived. Safe to repeat
		// (GET, or POST under its key); the final one is an error, outcome unknown.
		return true, 0, fmt.Errorf("yookassa: %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return true, 0, fmt.Errorf("yookassa: %s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			// The request was processed but the answer cannot be read: outcome unknown.
			// Repeating under the same key (or a GET) gives the answer again.
			return true, 0, fmt.Errorf("yookassa: %s: undecodable answer (HTTP %d): %w", op, resp.StatusCode, err)
		}
		return false, 0, nil
	}
	var eb errorBody
	_ = json.Unmarshal(data, &eb) // a body that is not an error object leaves the fields empty
	apiErr := &APIError{Op: op, StatusCode: resp.StatusCode, Code: eb.Code, Description: eb.Description, Parameter: eb.Parameter, ID: eb.ID}
	if resp.StatusCode == http.StatusNotFound {
		return false, 0, fmt.Errorf("%w: %w", errNotFoundAnswer, apiErr)
	}
	retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	wait := retryAfter(resp.Header.Get("Retry-After"), g.cfg.Clock.Now())
	if wait == 0 && eb.RetryAfter > 0 {
		wait = time.Duration(eb.RetryAfter) * time.Millisecond
	}
	return retryable, wait, apiErr
}

// backoff returns the wait before attempt+1: BaseDelay doubled per attempt so far.
func (g *Gateway) backoff(attempt int) time.Duration {
	d := g.cfg.Retry.BaseDelay
	for i := 1; i < attempt && d < g.cfg.Retry.MaxDelay; i++ {
		d *= 2
	}
	return d
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date. 0 when absent or bad.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
