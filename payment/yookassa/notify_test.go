package yookassa_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
)

// notify wraps a YooKassa object in a notification body.
func notify(event, object string) []byte {
	return []byte(fmt.Sprintf(`{"type":"notification","event":%q,"object":%s}`, event, object))
}

func TestParseNotification(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{}))
	tests := []struct {
		name string
		body []byte
		want payment.WebhookEvent
	}{
		{"payment.succeeded (SDK fixture createPaymentFixtures.json)",
			notify("payment.succeeded", fixture(t, "createPaymentFixtures.json")),
			payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: "1da5c87d-0984-50e8-a7f3-8de646dd9ec9",
				Outcome: payment.OutcomeSucceeded, Amount: 1000, Currency: "RUB", ReceivedAt: now}},
		{"payment.canceled (SDK fixture createPaymentErrorsGeneralFixtures.json)",
			notify("payment.canceled", fixture(t, "createPaymentErrorsGeneralFixtures.json")),
			payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: "1da5c87d-0984-50e8-a7f3-8de646dd9ec9",
				Outcome: payment.OutcomeSoftDeclined, Amount: 2000, Currency: "RUB", DeclineCode: "general_decline",
				DeclineMessage: "payment canceled: general_decline, decided by YooKassa", ReceivedAt: now}},
		{"refund.succeeded (SDK fixture refundInfoFixtures.json)",
			notify("refund.succeeded", fixture(t, "refundInfoFixtures.json")),
			payment.WebhookEvent{Kind: payment.KindRefund, ProviderPaymentID: "1da5c87d-0984-50e8-a7f3-8de646dd9ec9",
				ProviderRefundID: "1ddd77af-0bd7-500d-895b-c475c55fdefc", Outcome: payment.OutcomeSucceeded, Amount: 1000, Currency: "RUB", ReceivedAt: now}},
		{"payment.waiting_for_capture carries the key from metadata",
			notify("payment.waiting_for_capture", paymentJSON(t, paymentID, "waiting_for_capture", chargeKey, nil)),
			payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: paymentID, IdempotencyKey: chargeKey,
				Outcome: payment.OutcomePending, Amount: 99000, Currency: "RUB", ReceivedAt: now}},
		{"payment.canceled with a hard reason and the key",
			notify("payment.canceled", paymentJSON(t, paymentID, "canceled", chargeKey,
				map[string]any{"cancellation_details": map[string]string{"party": "yoo_money", "reason": "permission_revoked"}})),
			payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: paymentID, IdempotencyKey: chargeKey,
				Outcome: payment.OutcomeHardDeclined, Amount: 99000, Currency: "RUB", DeclineCode: "permission_revoked",
				DeclineMessage: "payment canceled: permission_revoked, decided by YooKassa", ReceivedAt: now}},
		{"refund.succeeded carries the refund's key",
			notify("refund.succeeded", refundJSON(t, refundID, "succeeded", refundKey, nil)),
			payment.WebhookEvent{Kind: payment.KindRefund, ProviderPaymentID: paymentID, ProviderRefundID: refundID, IdempotencyKey: refundKey,
				Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB", ReceivedAt: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := b.gw.ParseNotification(tt.body)
			require.NoError(t, err)
			require.Equal(t, tt.want, ev)
		})
	}
}

func TestParseNotificationRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{}))
	for _, event := range []string{"payment_method.active", "payout.succeeded", "deal.closed", "refund.canceled"} {
		t.Run("unknown event "+event+" is answered 200", func(t *testing.T) {
			t.Parallel()
			_, err := b.gw.ParseNotification(notify(event, `{"id":"x"}`))
			require.ErrorIs(t, err, yookassa.ErrUnknownEvent)
			var ue *yookassa.UnknownEventError
			require.ErrorAs(t, err, &ue)
			require.Equal(t, event, ue.Event)
		})
	}
	malformed := map[string][]byte{
		"not JSON":                     []byte(`<xml/>`),
		"not a notification":           []byte(`{"type":"list","event":"payment.succeeded","object":{}}`),
		"an object without an id":      notify("payment.succeeded", `{"status":"succeeded","amount":{"value":"1.00","currency":"RUB"}}`),
		"an object with a bad amount":  notify("payment.succeeded", `{"id":"p","status":"succeeded","amount":{"value":"1,00","currency":"RUB"}}`),
		"an object with a bad status":  notify("payment.succeeded", `{"id":"p","status":"maybe","amount":{"value":"1.00","currency":"RUB"}}`),
		"a refund object that is junk": notify("refund.succeeded", `[1,2]`),
	}
	for name, body := range malformed {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := b.gw.ParseNotification(body)
			require.Error(t, err)
			require.NotErrorIs(t, err, yookassa.ErrUnknownEvent, "a malformed body is not answered 200")
		})
	}
}

func TestFromYooKassa(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{}))
	tests := []struct {
		addr string
		want bool
	}{
		{"185.71.76.1:443", true},
		{"185.71.76.31:1", true},
		{"185.71.76.32:1", false}, // past the /27
		{"185.71.77.10:5000", true},
		{"77.75.153.127:80", true},
		{"77.75.153.128:80", false}, // past the /25
		{"77.75.154.200:80", true},
		{"77.75.156.11:80", true},
		{"77.75.156.12:80", false},
		{"77.75.156.35", true}, // a bare IP
		{"[2a02:5180:0:1509::1]:443", true},
		{"[::ffff:185.71.76.5]:443", true}, // IPv4-mapped IPv6
		{"[2a03::1]:443", false},
		{"127.0.0.1:8080", false},
		{"not an address", false},
		{"", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, b.gw.FromYooKassa(tt.addr), tt.addr)
	}

	t.Run("TrustedNetworks overrides the default", func(t *testing.T) {
		t.Parallel()
		b := setup(t, always(answer{}), func(c *yookassa.Config) {
			c.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		require.True(t, b.gw.FromYooKassa("127.0.0.1:8080"))
		require.False(t, b.gw.FromYooKassa("185.71.76.1:443"))
	})
	t.Run("NotificationIPs returns a fresh copy", func(t *testing.T) {
		t.Parallel()
		a := yookassa.NotificationIPs()
		a[0] = netip.MustParsePrefix("0.0.0.0/0")
		require.NotEqual(t, a[0], yookassa.NotificationIPs()[0])
		require.Len(t, a, 7)
	})
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	b := setup(t, sequence(answer{Status: 503}, answer{Status: 401, Body: `{"type":"error","code":"invalid_credentials","description":"bad key"}`}),
		func(c *yookassa.Config) {
			c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
	_, err := b.gw.Charge(t.Context(), chargeRequest(t, payment.VAT22Of122))
	require.Error(t, err)

	cfg := b.cfg
	var out []string
	for _, v := range []any{cfg, &cfg, b.gw, cfg.SecretKey} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "gw", b.gw, "key", cfg.SecretKey)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "gw", b.gw, "key", cfg.SecretKey)
	out = append(out, err.Error(), logs.String())
	_, cfgErr := yookassa.New(yookassa.Config{SecretKey: yookassa.NewSecret(testSecret), BaseURL: "http://user:" + testSecret + "@api.example"})
	require.Error(t, cfgErr)
	out = append(out, cfgErr.Error())

	all := strings.Join(out, "\n")
	require.NotContains(t, all, testSecret)
	require.NotContains(t, all, "SuperSecret")
	require.NotContains(t, all, base64.StdEncoding.EncodeToString([]byte(testShopID+":"+testSecret)), "nor the Authorization header")
	require.NotContains(t, all, "buyer@example.com", "request bodies (receipts) are not logged")
	require.Contains(t, all, "[REDACTED]")
	require.Contains(t, logs.String(), "retrying", "the retry was logged")
	require.Equal(t, testSecret, cfg.SecretKey.Reveal())
}

func TestNewRefusesABadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  yookassa.Config
		want []string
	}{
		{"empty", yookassa.Config{}, []string{"ShopID: empty", "SecretKey: empty"}},
		{"plain http to the internet", yookassa.Config{ShopID: "1", SecretKey: yookassa.NewSecret("s"), BaseURL: "http://api.yookassa.ru/v3"}, []string{"BaseURL: plain http"}},
		{"credentials in the URL", yookassa.Config{ShopID: "1", SecretKey: yookassa.NewSecret("s"), BaseURL: "https://u:p@api.yookassa.ru/v3"}, []string{"BaseURL: carries credentials"}},
		{"negatives", yookassa.Config{ShopID: "1", SecretKey: yookassa.NewSecret("s"), Timeout: -1, Retry: yookassa.RetryPolicy{MaxAttempts: -1, BaseDelay: -1, MaxDelay: -1}, LookupMargin: -1, MaxListPages: -1},
			[]string{"Timeout: negative", "Retry.MaxAttempts: negative", "Retry.BaseDelay: negative", "Retry.MaxDelay: negative", "LookupMargin: negative", "MaxListPages: negative"}},
		{"a colon in the shop id", yookassa.Config{ShopID: "1:2", SecretKey: yookassa.NewSecret("s")}, []string{"ShopID: contains a colon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := yookassa.New(tt.cfg)
			var ce *yookassa.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, len(tt.want))
			for i, w := range tt.want {
				require.True(t, strings.HasPrefix(ce.Problems[i], w), "%q should start with %q", ce.Problems[i], w)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		g, err := yookassa.New(yookassa.Config{ShopID: "1", SecretKey: yookassa.NewSecret("s")})
		require.NoError(t, err)
		require.Contains(t, g.String(), yookassa.BaseURLDefault)
	})
}
