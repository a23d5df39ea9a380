package payment_test

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestNewChargeReceipt(t *testing.T) {
	t.Parallel()

	t.Run("54-FZ income receipt: one service line, full prepayment", func(t *testing.T) {
		t.Parallel()
		r, err := payment.NewChargeReceipt("Pro tariff, 1 month", price, rub, payment.VAT22Of122, payment.Contact{Phone: "+79001234567"})
		require.NoError(t, err)
		require.Equal(t, payment.ReceiptIncome, r.Kind)
		require.Len(t, r.Items, 1)
		it := r.Items[0]
		require.Equal(t, payment.PaymentModeFullPrepayment, it.PaymentMode)
		require.Equal(t, payment.SubjectService, it.Subject)
		require.True(t, it.Quantity.Equal(decimal.NewFromInt(1)))
		require.Equal(t, payment.VAT22Of122, it.VAT)
		require.Equal(t, price, r.Total())
		require.Equal(t, "+79001234567", r.Customer.Phone)
	})

	t.Run("54-FZ refund receipt is a return of income", func(t *testing.T) {
		t.Parallel()
		r, err := payment.NewRefundReceipt("Pro tariff, 1 month", price/2, rub, payment.VAT20Of120, payment.Contact{})
		require.NoError(t, err)
		require.Equal(t, payment.ReceiptIncomeReturn, r.Kind)
		require.Equal(t, price/2, r.Total())
		require.True(t, r.Customer.IsZero())
	})

	valid := []struct {
		name    string
		vat     payment.VATCode
		contact payment.Contact
	}{
		{"54-FZ VAT 22% (standard rate from 2026)", payment.VAT22, payment.Contact{}},
		{"54-FZ VAT 22/122 (prepayment)", payment.VAT22Of122, payment.Contact{}},
		{"54-FZ VAT 10%", payment.VAT10, payment.Contact{}},
		{"54-FZ VAT 10/110", payment.VAT10Of110, payment.Contact{}},
		{"54-FZ VAT 7% (USN)", payment.VAT7, payment.Contact{}},
		{"54-FZ VAT 7/107", payment.VAT7Of107, payment.Contact{}},
		{"54-FZ VAT 5% (USN)", payment.VAT5, payment.Contact{}},
		{"54-FZ VAT 5/105", payment.VAT5Of105, payment.Contact{}},
		{"54-FZ VAT 0%", payment.VAT0, payment.Contact{}},
		{"54-FZ without VAT", payment.VATNone, payment.Contact{}},
		{"54-FZ VAT 20% for a document about a 2025 sale", payment.VAT20, payment.Contact{}},
		{"contact by email and phone", payment.VATNone, payment.Contact{Email: "a.b@mail.example", Phone: "79001234567"}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := payment.NewChargeReceipt("Pro", price, rub, tt.vat, tt.contact)
			require.NoError(t, err)
			require.NoError(t, r.Validate())
		})
	}

	invalid := []struct {
		name        string
		description string
		amount      int64
		currency    string
		vat         payment.VATCode
		contact     payment.Contact
		wantField   string
	}{
		{"empty description", "", price, rub, payment.VAT22, payment.Contact{}, "Items[0].Description"},
		{"blank description", "  \t", price, rub, payment.VAT22, payment.Contact{}, "Items[0].Description"},
		{"54-FZ description over 128 characters", strings.Repeat("я", 129), price, rub, payment.VAT22, payment.Contact{}, "Items[0].Description"},
		{"zero amount", "Pro", 0, rub, payment.VAT22, payment.Contact{}, "Items[0].Amount"},
		{"negative amount", "Pro", -100, rub, payment.VAT22, payment.Contact{}, "Items[0].Amount"},
		{"unknown currency", "Pro", price, "RUR", payment.VAT22, payment.Contact{}, "Items[0].Currency"},
		{"empty currency", "Pro", price, "", payment.VAT22, payment.Contact{}, "Items[0].Currency"},
		{"no VAT code: the operator must choose", "Pro", price, rub, "", payment.Contact{}, "Items[0].VAT"},
		{"a VAT code that does not exist (18% ended in 2019)", "Pro", price, rub, "vat18", payment.Contact{}, "Items[0].VAT"},
		{"email without @", "Pro", price, rub, payment.VAT22, payment.Contact{Email: "a.example.com"}, "Customer.Email"},
		{"email with two @", "Pro", price, rub, payment.VAT22, payment.Contact{Email: "a@b@c"}, "Customer.Email"},
		{"email ending in @", "Pro", price, rub, payment.VAT22, payment.Contact{Email: "a@"}, "Customer.Email"},
		{"email with a space", "Pro", price, rub, payment.VAT22, payment.Contact{Email: "a b@c.d"}, "Customer.Email"},
		{"phone with letters", "Pro", price, rub, payment.VAT22, payment.Contact{Phone: "+7900abc4567"}, "Customer.Phone"},
		{"phone too short", "Pro", price, rub, payment.VAT22, payment.Contact{Phone: "+12345"}, "Customer.Phone"},
		{"phone too long", "Pro", price, rub, payment.VAT22, payment.Contact{Phone: "+1234567890123456"}, "Customer.Phone"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := payment.NewChargeReceipt(tt.description, tt.amount, tt.currency, tt.vat, tt.contact)
			require.ErrorIs(t, err, payment.ErrInvalid)
			var ve *payment.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.wantField, ve.Field)
			_, err = payment.NewRefundReceipt(tt.description, tt.amount, tt.currency, tt.vat, tt.contact)
			require.ErrorIs(t, err, payment.ErrInvalid, "a refund receipt follows the same rules")
		})
	}
}

func TestReceiptValidate(t *testing.T) {
	t.Parallel()

	line := func() payment.ReceiptItem {
		return payment.ReceiptItem{
			Description: "Pro", Quantity: decimal.NewFromInt(1), Amount: price, Currency: rub,
			VAT: payment.VAT22, PaymentMode: payment.PaymentModeFullPrepayment, Subject: payment.SubjectService,
		}
	}
	tests := []struct {
		name      string
		modify    func(*payment.Receipt)
		wantField string
	}{
		{"valid", func(*payment.Receipt) {}, ""},
		{"two lines in one currency", func(r *payment.Receipt) { r.Items = append(r.Items, line()) }, ""},
		{"quantity 3 of 330.00", func(r *payment.Receipt) {
			r.Items[0].Quantity = decimal.NewFromInt(3)
		}, ""},
		{"fractional quantity dividing exactly", func(r *payment.Receipt) { r.Items[0].Quantity = decimal.RequireFromString("0.5") }, ""},
		{"no kind", func(r *payment.Receipt) { r.Kind = "" }, "Kind"},
		{"unknown kind", func(r *payment.Receipt) { r.Kind = "expense" }, "Kind"},
		{"no lines", func(r *payment.Receipt) { r.Items = nil }, "Items"},
		{"lines in two currencies", func(r *payment.Receipt) {
			l := line()
			l.Currency = "USD"
			r.Items = append(r.Items, l)
		}, "Items[1].Currency"},
		{"zero quantity", func(r *payment.Receipt) { r.Items[0].Quantity = decimal.Zero }, "Items[0].Quantity"},
		{"negative quantity", func(r *payment.Receipt) { r.Items[0].Quantity = decimal.NewFromInt(-1) }, "Items[0].Quantity"},
		{"amount that does not divide by the quantity", func(r *payment.Receipt) {
			r.Items[0].Amount = 100
			r.Items[0].Quantity = decimal.NewFromInt(3)
		}, "Items[0].Amount"},
		{"3.3 payment mode other than full prepayment", func(r *payment.Receipt) { r.Items[0].PaymentMode = "full_payment" }, "Items[0].PaymentMode"},
		{"no payment mode", func(r *payment.Receipt) { r.Items[0].PaymentMode = "" }, "Items[0].PaymentMode"},
		{"subject other than service", func(r *payment.Receipt) { r.Items[0].Subject = "commodity" }, "Items[0].Subject"},
		{"total overflows int64", func(r *payment.Receipt) {
			r.Items[0].Amount = 1 << 62
			l := line()
			l.Amount = 1 << 62
			r.Items = append(r.Items, l, l)
		}, "Items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := payment.Receipt{Kind: payment.ReceiptIncome, Items: []payment.ReceiptItem{line()}}
			tt.modify(&r)
			err := r.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, payment.ErrInvalid)
			var ve *payment.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.wantField, ve.Field)
		})
	}
}

func TestReceiptItemUnitPrice(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		amount   int64
		quantity string
		want     int64
		wantErr  bool
	}{
		{"one period", price, "1", price, false},
		{"three units", 99000, "3", 33000, false},
		{"half a unit", 500, "0.5", 1000, false},
		{"not a whole number of kopecks", 100, "3", 0, true},
		{"zero quantity", 100, "0", 0, true},
		{"unit price beyond int64", 1 << 62, "0.1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it := payment.ReceiptItem{Amount: tt.amount, Quantity: decimal.RequireFromString(tt.quantity)}
			got, err := it.UnitPrice()
			if tt.wantErr {
				require.ErrorIs(t, err, payment.ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestVATCodeValid(t *testing.T) {
	t.Parallel()
	for _, v := range []payment.VATCode{"", "vat18", "vat18_118", "VAT22", "22"} {
		require.False(t, v.Valid(), v)
	}
}
