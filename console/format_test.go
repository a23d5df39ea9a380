package console_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/console"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		minor    int64
		currency string
		want     string // spaces stand for no-break spaces
	}{
		{"the issue's example: thousands grouped, decimal comma, sign after", 129000, "RUB", "1 290,00 ₽"},
		{"no grouping below a thousand", 99000, "RUB", "990,00 ₽"},
		{"kopecks only", 5, "RUB", "0,05 ₽"},
		{"zero", 0, "RUB", "0,00 ₽"},
		{"exactly a thousand", 100000, "RUB", "1 000,00 ₽"},
		{"millions: every group of three", 123456789012, "RUB", "1 234 567 890,12 ₽"},
		{"a negative balance: the minus sign U+2212", -129000, "RUB", "−1 290,00 ₽"},
		{"the smallest int64 needs no overflow", -9223372036854775808, "RUB", "−92 233 720 368 547 758,08 ₽"},
		{"another known currency with a sign", 1999, "USD", "19,99 $"},
		{"a currency without a sign shows its code", 1999, "XYZ", "19,99 XYZ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := strings.ReplaceAll(tt.want, " ", "\u00a0")
			require.Equal(t, want, console.FormatMoney(tt.minor, tt.currency))
		})
	}
}
