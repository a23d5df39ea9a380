package payment_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestChargeRequestValidate(t *testing.T) {
	t.Parallel()

	base := func(t *testing.T) payment.ChargeParams {
		return payment.ChargeParams{
			IdempotencyKey: "renew:" + subID + ":7:1", PaymentMethod: token, CustomerID: custID,
			Amount: price, Currency: rub, Description: "Pro, 1 month", Receipt: receipt(t),
		}
	}
	tests := []struct {
		name    string
		modify  func(*payment.ChargeParams)
		wantErr error
	}{
		{"valid", func(*payment.ChargeParams) {}, nil},
		{"a 19-digit token that fails the Luhn check is a token", func(r *payment.ChargeParams) { r.PaymentMethod = "4111111111111111112" }, nil},
		{"no key", func(r *payment.ChargeParams) { r.IdempotencyKey = "" }, payment.ErrInvalid},
		{"key over 64 characters", func(r *payment.ChargeParams) { r.IdempotencyKey = strings.Repeat("k", 65) }, payment.ErrInvalid},
		{"key with a space", func(r *payment.ChargeParams) { r.IdempotencyKey = "renew 1" }, payment.ErrInvalid},
		{"key with non-ASCII", func(r *payment.ChargeParams) { r.IdempotencyKey = "ключ" }, payment.ErrInvalid},
		{"no payment method", func(r *payment.ChargeParams) { r.PaymentMethod = "" }, payment.ErrInvalid},
		{"5.1 card number as the payment method", func(r *payment.ChargeParams) { r.PaymentMethod = "4111111111111111" }, payment.ErrCardData},
		{"5.1 card number with dashes", func(r *payment.ChargeParams) { r.PaymentMethod = "5555-5555-5555-4444" }, payment.ErrCardData},
		{"1.3 no customer", func(r *payment.ChargeParams) { r.CustomerID = "" }, payment.ErrInvalid},
		{"zero amount", func(r *payment.ChargeParams) { r.Amount = 0 }, payment.ErrInvalid},
		{"unknown currency", func(r *payment.ChargeParams) { r.Currency = "XYZ" }, payment.ErrInvalid},
		{"no description", func(r *payment.ChargeParams) { r.Description = "" }, payment.ErrInvalid},
		{"54-FZ receipt in another currency", func(r *payment.ChargeParams) {
			r.Currency = "USD"
		}, payment.ErrInvalid},
		{"54-FZ invalid receipt", func(r *payment.ChargeParams) { r.Receipt.Items[0].VAT = "" }, payment.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base(t)
			tt.modify(&r)
			err := r.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, err, payment.ErrInvalid)
			if tt.wantErr == payment.ErrCardData {
				require.NotContains(t, err.Error(), "1111", "5.1 an error never repeats card data")
				require.NotContains(t, err.Error(), "4444")
			}
		})
	}
}

func TestRefundRequestValidate(t *testing.T) {
	t.Parallel()

	base := func(t *testing.T) payment.RefundParams {
		r, err := payment.NewRefundReceipt("Pro, 1 month", price, rub, payment.VAT22Of122, payment.Contact{})
		require.NoError(t, err)
		return payment.RefundParams{
			IdempotencyKey: "refund:0190-r1", ProviderPaymentID: ppID, Amount: price, Currency: rub,
			Description: "3.7 refund", Receipt: r,
		}
	}
	tests := []struct {
		name    string
		modify  func(*payment.RefundParams)
		wantErr bool
	}{
		{"valid", func(*payment.RefundParams) {}, false},
		{"no key", func(r *payment.RefundParams) { r.IdempotencyKey = "" }, true},
		{"no provider payment", func(r *payment.RefundParams) { r.ProviderPaymentID = " " }, true},
		{"zero amount", func(r *payment.RefundParams) { r.Amount = 0 }, true},
		{"no description", func(r *payment.RefundParams) { r.Description = "" }, true},
		{"54-FZ an income receipt on a refund", func(r *payment.RefundParams) {
			r.Receipt.Kind = payment.ReceiptIncome
		}, true},
		{"54-FZ return receipt for another amount", func(r *payment.RefundParams) { r.Amount = price - 1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base(t)
			tt.modify(&r)
			err := r.Validate()
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, payment.ErrInvalid)
		})
	}
}

func TestOutcomeValid(t *testing.T) {
	t.Parallel()
	for _, o := range []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomePending, payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined, payment.OutcomeUnknown} {
		require.True(t, o.Valid(), o)
		require.True(t, payment.State(o).Valid(), "every outcome is also a state")
	}
	for _, o := range []payment.Outcome{"", "canceled", "created", "SUCCEEDED"} {
		require.False(t, o.Valid(), o)
	}
}
