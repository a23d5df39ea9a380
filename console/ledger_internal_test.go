package console

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/ledger"
)

func TestOperationOf(t *testing.T) {
	t.Parallel()
	tx := func(kind ledger.RefKind, period int, reverses string) billing.LedgerTransaction {
		return billing.LedgerTransaction{Period: period, Transaction: ledger.Transaction{Ref: ledger.Reference{Kind: kind}, Reverses: reverses}}
	}
	tests := []struct {
		name string
		tx   billing.LedgerTransaction
		want string
	}{
		{"3.5 a period's charge", tx(ledger.RefPayment, 2, ""), "оплата периода"},
		{"3.7 a period's refund", tx(ledger.RefRefund, 1, ""), "возврат"},
		{"revenue earned by a period", tx(ledger.RefRecognition, 1, ""), "признание выручки"},
		{"3.3 money no period took: owed back", tx(ledger.RefPayment, 0, ""), "неразнесённый платёж (к возврату)"},
		{"3.3 that money paid back", tx(ledger.RefRefund, 0, ""), "возврат неразнесённого платежа"},
		{"a reversal says so", tx(ledger.RefRecognition, 1, "recognition:x/1:1"), "сторно: признание выручки"},
		{"a host's adjustment", tx(ledger.RefAdjustment, 1, ""), "корректировка"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, operationOf(tt.tx), tt.name)
	}
}
