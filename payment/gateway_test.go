package payment_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestChargeRequestValidate(t *testing.T) {
	t.Parallel()

	base := func(t *testing.T) payment.ChargeRequest {
		return payment.ChargeRequest{
			IdempotencyKey: "renew:" + subID + ":7:1", PaymentMethod: token, CustomerID: custID,
			Amount: price, Currency: rub, Description: "Pro, 1 month", Receipt: receipt(t),
		}
	}
	tests := []struct {
		name    string
		modify  func(*payment.ChargeRequest)
		wantErr error
	}{
		{"valid", func(*payment.ChargeRequest) {}, nil},
		{"a 19-digit token that fails the Luhn check is a token", func(r *payment.ChargeRequest) { r.PaymentMethod = "4111111111111111112" }, nil},
		{"no key", func(r *payment.ChargeRequest) { r.IdempotencyKey = "" }, payment.ErrInvalid},
		{"key over 64 characters", func(r *payment.ChargeRequest) { r.IdempotencyKey = strings.Repeat("k", 65) }, payment.ErrInvalid},
		{"key with a space", func(r *payment.ChargeRequest) { r.IdempotencyKey = "renew 1" }, payment.ErrInvalid},
		{"key with non-ASCII", func(r *payment.ChargeRequest) { r.IdempotencyKey = "ключ" }, payment.ErrInvalid},
		{"no payment method", func(r *payment.ChargeRequest) { r.PaymentMethod = "" }, payment.ErrInvalid},
		{"5.1 card number as the payment method", func(r *payment.ChargeRequest) { r.PaymentMethod = "4111111111111111" }, payment.ErrCardData},
		{"5.1 card number with dashes", func(r *payment.ChargeRequest) { r.PaymentMethod = "5555-5555-5555-4444" }, payment.ErrCardData},
		{"1.3 no customer", func(r *payment.ChargeRequest) { r.CustomerID = "" }, payment.ErrInvalid},
		{"zero amount", func(r *payment.ChargeRequest) { r.Amount = 0 }, payment.ErrInvalid},
		{"unknown currency", func(r *payment.ChargeRequest) { r.Currency = "XYZ" }, payment.ErrInvalid},
		{"no description", func(r *payment.ChargeRequest) { r.Description = "" }, payment.ErrInvalid},
		{"54-FZ receipt in another currency", func(r *payment.ChargeRequest) {
			r.Currency = "USD"
		}, payment.ErrInvalid},
		{"54-FZ invalid receipt", func(r *payment.ChargeRequest) { r.Receipt.Items[0].VAT = "" }, payment.ErrInvalid},
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

	base := func(t *testing.T) payment.RefundRequest {
		r, err := payment.NewRefundReceipt("Pro, 1 month", price, rub, payment.VAT22Of122, payment.Contact{})
		require.NoError(t, err)
		return payment.RefundRequest{
			IdempotencyKey: "refund:0190-r1", ProviderPaymentID: ppID, Amount: price, Currency: rub,
			Description: "3.7 refund", Receipt: r,
		}
	}
	tests := []struct {
		name    string
		modify  func(*payment.RefundRequest)
		wantErr bool
	}{
		{"valid", func(*payment.RefundRequest) {}, false},
		{"no key", func(r *payment.RefundRequest) { r.IdempotencyKey = "" }, true},
		{"no provider payment", func(r *payment.RefundRequest) { r.ProviderPaymentID = " " }, true},
		{"zero amount", func(r *payment.RefundRequest) { r.Amount = 0 }, true},
		{"no description", func(r *payment.RefundRequest) { r.Description = "" }, true},
		{"54-FZ an income receipt on a refund", func(r *payment.RefundRequest) {
			r.Receipt.Kind = payment.ReceiptIncome
		}, true},
		{"54-FZ return receipt for another amount", func(r *payment.RefundRequest) { r.Amount = price - 1 }, true},
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
