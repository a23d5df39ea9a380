package yookassa

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config, each used when its field is left zero.
const (
	// BaseURLDefault is YooKassa's API v3 endpoint.
	BaseURLDefault = "https://api.yookassa.ru/v3"
	// TimeoutDefault bounds one HTTP attempt (connect, send, read the answer).
	TimeoutDefault = 30 * time.Second
	// LookupMarginDefault widens a Lookup listing on both sides for clock skew between the
	// engine, this process and YooKassa. Generous on purpose: a listing that starts after the
	// payment misses it, and once YooKassa forgot the key (24 h) a miss would let the engine
	// charge again; a wider window only costs pages.
	LookupMarginDefault = time.Hour
	// MaxListPagesDefault caps the pages (of 100 objects) one Lookup listing reads.
	MaxListPagesDefault = 50
)

// Clock gives the current time. billing.SystemClock and billingtest's manual clock have
// this method set.
type Clock interface {
	// Now returns the current instant.
	Now() time.Time
}

// Secret is a value that must never be printed: the shop's secret key. Make one with
// NewSecret. Every way fmt and log/slog render it (String, GoString, LogValue, %v, %+v, %#v,
// %s, %q, encoding/json) shows "[REDACTED]", and so does fmt's reflection into a struct that
// holds it in an unexported field (which calls no method: the value sits behind a func,
// which prints as an address). Read it with Reveal, which only the HTTP Basic auth of a
// request does.
type Secret struct {
	reveal func() string
}

// NewSecret wraps the secret key s.
func NewSecret(s string) Secret { return Secret{reveal: func() string { return s }} }

// redacted is what a Secret prints as.
const redacted = "[REDACTED]"

// String implements fmt.Stringer without the value.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without the value.
func (Secret) GoString() string { return `yookassa.NewSecret("` + redacted + `")` }

// LogValue implements slog.LogValuer without the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps the value out of encoded configs and logs (encoding/json uses it).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format implements fmt.Formatter so that no verb (%x included) prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// Reveal returns the secret itself ("" for the zero Secret). Call it only to authenticate a
// request.
func (s Secret) Reveal() string {
	if s.reveal == nil {
		return ""
	}
	return s.reveal()
}

// RetryPolicy says how often and how long to wait before a request is sent again. Only
// requests that are safe to repeat are retried: every GET, and a POST under its
// Idempotence-Key (YooKassa answers a repeat under the same key with the first result).
// Retried: a transport failure (timeout, dropped connection), HTTP 429 and HTTP 5xx.
// Never retried: any other 4xx (401, 403, 400 invalid_request: set-up faults).
type RetryPolicy struct {
	// MaxAttempts is how many times a request is sent at most, the first included.
	// Defaults to 4. 1 disables retries.
	MaxAttempts int
	// BaseDelay is the wait before the second attempt; each later wait doubles it.
	// Defaults to 500ms. Tests set it to a tiny value together with Config.Sleep.
	BaseDelay time.Duration
	// MaxDelay caps one wait, a Retry-After from YooKassa included. Defaults to 30s.
	MaxDelay time.Duration
}

// Defaults of RetryPolicy.
const (
	// MaxAttemptsDefault is RetryPolicy.MaxAttempts when zero.
	MaxAttemptsDefault = 4
	// BaseDelayDefault is RetryPolicy.BaseDelay when zero.
	BaseDelayDefault = 500 * time.Millisecond
	// MaxDelayDefault is RetryPolicy.MaxDelay when zero.
	MaxDelayDefault = 30 * time.Second
)

// Config configures a Gateway. Build one with New, which checks every field and fills the
// defaults. Trap: Config holds the secret key; it prints redacted (String, GoString,
// LogValue), but do not copy SecretKey into any other string.
type Config struct {
	// ShopID is the shop's identifier in YooKassa (the Basic auth user). Required.
	ShopID string
	// SecretKey is the shop's secret API key (the Basic auth password; "live_…" or
	// "test_…"). Required. Never logged, never in an error.
	SecretKey Secret
	// BaseURL is the API endpoint, without credentials. Defaults to BaseURLDefault; tests
	// point it at an httptest.Server. Must be https unless the host is a loopback address.
	BaseURL string
	// HTTPClient sends the requests. Defaults to a client without its own timeout (Timeout
	// bounds each attempt through the request's context). Its Transport may add a proxy.
	HTTPClient *http.Client
	// Timeout bounds one HTTP attempt. An attempt that times out is an ambiguous failure:
	// retried under the same key when attempts remain, else an error (outcome unknown),
	// never a decline. Defaults to TimeoutDefault.
	Timeout time.Duration
	// Retry is the retry policy. Zero fields take their defaults.
	Retry RetryPolicy
	// Sleep waits d or until ctx ends, between attempts. Defaults to a timer; tests inject
	// one that records d and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Clock gives the current time (the end of a Lookup listing window, a notification's
	// ReceivedAt). Defaults to the system clock.
	Clock Clock
	// Logger receives retries and anomalies at Warn, never a request body (receipts carry
	// a customer's email or phone), never a credential. Defaults to discarding.
	Logger *slog.Logger
	// LookupMargin widens a Lookup listing window on both sides for clock skew. Defaults to
	// LookupMarginDefault.
	LookupMargin time.Duration
	// MaxListPages caps the pages one Lookup or LookupRefund listing reads; a listing that
	// reaches it without a match is an error (ErrListingLimit), never ErrNotFound. Defaults
	// to MaxListPagesDefault.
	MaxListPages int
	// TrustedNetworks are the networks FromYooKassa accepts notifications from. Defaults to
	// NotificationIPs(). Set it when YooKassa publishes new ranges, or for tests.
	TrustedNetworks []netip.Prefix
}

// String renders the config without the secret key.
func (c Config) String() string {
	return fmt.Sprintf("yookassa.Config{ShopID:%q SecretKey:%s BaseURL:%q Timeout:%s Retry:%+v LookupMargin:%s MaxListPages:%d TrustedNetworks:%d}",
		c.ShopID, redacted, c.BaseURL, c.Timeout, c.Retry, c.LookupMargin, c.MaxListPages, len(c.TrustedNetworks))
}

// GoString renders the config for %#v without the secret key.
func (c Config) GoString() string { return c.String() }

// LogValue renders the config for log/slog without the secret key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("shop_id", c.ShopID),
		slog.String("secret_key", redacted),
		slog.String("base_url", c.BaseURL),
		slog.Duration("timeout", c.Timeout),
	)
}

// ConfigError lists every bad field of a Config at once.
type ConfigError struct {
	// Problems are "Field: what is wrong", one per bad field. They never hold the secret.
	Problems []string
}

// Error joins the problems.
func (e *ConfigError) Error() string {
	return "yookassa: invalid config: " + strings.Join(e.Problems, "; ")
}

// withDefaults checks c and returns it with every default filled, or a *ConfigError.
func (c Config) withDefaults() (Config, error) {
	var problems []string
	bad := func(field, problem string) { problems = append(problems, field+": "+problem) }
	if strings.TrimSpace(c.ShopID) == "" {
		bad("ShopID", "empty")
	} else if strings.ContainsAny(c.ShopID, ": \t\r\n") {
		bad("ShopID", "contains a colon or white space")
	}
	if strings.TrimSpace(c.SecretKey.Reveal()) == "" {
		bad("SecretKey", "empty")
	}
	if c.BaseURL == "" {
		c.BaseURL = BaseURLDefault
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		bad("BaseURL", "not an absolute http(s) URL")
	} else {
		if u.User != nil {
			bad("BaseURL", "carries credentials; set ShopID and SecretKey instead")
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			bad("BaseURL", "plain http to a non-loopback host would send the secret key in clear")
		}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	switch {
	case c.Timeout < 0:
		bad("Timeout", "negative")
	case c.Timeout == 0:
		c.Timeout = TimeoutDefault
	}
	switch {
	case c.Retry.MaxAttempts < 0:
		bad("Retry.MaxAttempts", "negative")
	case c.Retry.MaxAttempts == 0:
		c.Retry.MaxAttempts = MaxAttemptsDefault
	}
	switch {
	case c.Retry.BaseDelay < 0:
		bad("Retry.BaseDelay", "negative")
	case c.Retry.BaseDelay == 0:
		c.Retry.BaseDelay = BaseDelayDefault
	}
	switch {
	case c.Retry.MaxDelay < 0:
		bad("Retry.MaxDelay", "negative")
	case c.Retry.MaxDelay == 0:
		c.Retry.MaxDelay = MaxDelayDefault
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.LookupMargin < 0:
		bad("LookupMargin", "negative")
	case c.LookupMargin == 0:
		c.LookupMargin = LookupMarginDefault
	}
	switch {
	case c.MaxListPages < 0:
		bad("MaxListPages", "negative")
	case c.MaxListPages == 0:
		c.MaxListPages = MaxListPagesDefault
	}
	if c.TrustedNetworks == nil {
		c.TrustedNetworks = NotificationIPs()
	}
	for i, p := range c.TrustedNetworks {
		if !p.IsValid() {
			bad(fmt.Sprintf("TrustedNetworks[%d]", i), "not a valid prefix")
		}
	}
	if len(problems) > 0 {
		return Config{}, &ConfigError{Problems: problems}
	}
	return c, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// systemClock is the default Clock.
type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
