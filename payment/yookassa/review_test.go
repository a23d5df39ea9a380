package yookassa_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment/yookassa"
)

// TestSecretNeverPrintedThroughAValue: the Secret's doc promises that no way fmt or
// log/slog renders it shows the value. fmt reaches an unexported field by reflection and
// calls none of its methods there, so a Gateway printed as a value (its String, GoString
// and LogValue have pointer receivers) prints its cfg field raw, the secret key included,
// alone or inside a host's struct.
func TestSecretNeverPrintedThroughAValue(t *testing.T) {
	t.Parallel()
	b := setup(t, always(answer{Status: 500}))
	type host struct {
		name string
		gw   yookassa.Gateway
	}
	var out []string
	for _, v := range []any{*b.gw, host{name: "billing", gw: *b.gw}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("gateway", "gw", *b.gw)
	out = append(out, logs.String())
	for _, s := range out {
		require.NotContains(t, s, testSecret)
	}
}

// TestSecretNeverPrintedInsideAHostStruct: Secret's doc says every way fmt renders it shows
// "[REDACTED]". A host that keeps its yookassa.Config in an unexported field of its own
// struct and prints that struct (a config dump at start-up, %+v in a panic message) prints
// the key: fmt calls no method of a value it reached through an unexported field.
func TestSecretNeverPrintedInsideAHostStruct(t *testing.T) {
	t.Parallel()
	type hostConfig struct {
		listen string
		yoo    yookassa.Config
	}
	c := hostConfig{listen: ":8080", yoo: yookassa.Config{ShopID: testShopID, SecretKey: yookassa.NewSecret(testSecret)}}
	for _, verb := range []string{"%v", "%+v", "%s"} {
		require.NotContains(t, fmt.Sprintf(verb, c), testSecret, verb)
	}
}
