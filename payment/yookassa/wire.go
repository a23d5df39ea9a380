package yookassa

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/payment"
)

// The YooKassa objects this package reads and writes, with only the fields it uses.
// Unknown fields of an answer (card details among them) are ignored and never stored.

// amount is YooKassa's MonetaryAmount: a decimal string and a currency.
type amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// paymentObject is a YooKassa payment.
type paymentObject struct {
	ID                  string               `json:"id"`
	Status              string               `json:"status"`
	Amount              amount               `json:"amount"`
	PaymentMethod       *paymentMethodObject `json:"payment_method"`
	Confirmation        *confirmationObject  `json:"confirmation"`
	CancellationDetails *cancellationDetails `json:"cancellation_details"`
	Metadata            map[string]string    `json:"metadata"`
}

// paymentMethodObject is the part of a payment's payment_method this package reads: the
// token and whether it was saved. Card fields (first6, last4, …) are not decoded (TERMS 5.1).
type paymentMethodObject struct {
	ID    string `json:"id"`
	Saved bool   `json:"saved"`
}

// confirmationObject is a payment's confirmation.
type confirmationObject struct {
	Type            string `json:"type"`
	ReturnURL       string `json:"return_url,omitempty"`
	ConfirmationURL string `json:"confirmation_url,omitempty"`
}

// cancellationDetails says who canceled a payment or refund and why.
type cancellationDetails struct {
	Party  string `json:"party"`
	Reason string `json:"reason"`
}

// refundObject is a YooKassa refund.
type refundObject struct {
	ID                  string               `json:"id"`
	PaymentID           string               `json:"payment_id"`
	Status              string               `json:"status"`
	Amount              amount               `json:"amount"`
	CancellationDetails *cancellationDetails `json:"cancellation_details"`
	Metadata            map[string]string    `json:"metadata"`
}

// paymentList and refundList are pages of a listing.
type paymentList struct {
	Items      []paymentObject `json:"items"`
	NextCursor string          `json:"next_cursor"`
}

type refundList struct {
	Items      []refundObject `json:"items"`
	NextCursor string         `json:"next_cursor"`
}

// createPayment is the body of POST /payments.
type createPayment struct {
	Amount            amount              `json:"amount"`
	Description       string              `json:"description,omitempty"`
	Receipt           *receiptData        `json:"receipt,omitempty"`
	PaymentMethodID   string              `json:"payment_method_id,omitempty"`
	Confirmation      *confirmationObject `json:"confirmation,omitempty"`
	SavePaymentMethod bool                `json:"save_payment_method,omitempty"`
	Capture           bool                `json:"capture"`
	Metadata          map[string]string   `json:"metadata,omitempty"`
}

// createRefund is the body of POST /refunds.
type createRefund struct {
	PaymentID   string            `json:"payment_id"`
	Amount      amount            `json:"amount"`
	Description string            `json:"description,omitempty"`
	Receipt     *receiptData      `json:"receipt,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// receiptData is YooKassa's receipt of a payment or a refund. A refund's receipt is the
// "return of income" one: YooKassa takes its sign from the refund it is attached to.
type receiptData struct {
	Customer *receiptCustomer `json:"customer,omitempty"`
	Items    []receiptItem    `json:"items"`
}

type receiptCustomer struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

type receiptItem struct {
	Description    string      `json:"description"`
	Quantity       json.Number `json:"quantity"`
	Amount         amount      `json:"amount"` // the unit price (54-FZ tag 1079)
	VATCode        int         `json:"vat_code"`
	PaymentMode    string      `json:"payment_mode"`
	PaymentSubject string      `json:"payment_subject"`
}

// Limits of the YooKassa API this package checks before sending.
const (
	// maxDescription is the length of a payment's description, in characters.
	maxDescription = 128
	// maxRefundDescription is the length of a refund's description, in characters.
	maxRefundDescription = 250
	// maxMetadataKeys, maxMetadataKeyLen and maxMetadataValueLen are the metadata limits:
	// 16 keys, a key of at most 32 characters, a value of at most 512.
	maxMetadataKeys     = 16
	maxMetadataKeyLen   = 32
	maxMetadataValueLen = 512
)

// vatCodes maps the library's VAT codes to YooKassa's vat_code (1..12), per "Коды ставок
// НДС" on https://yookassa.ru/developers/54fz/parameters-values (11 and 12 are the rates
// from 1 January 2026).
var vatCodes = map[payment.VATCode]int{
	payment.VATNone:    1,
	payment.VAT0:       2,
	payment.VAT10:      3,
	payment.VAT20:      4,
	payment.VAT10Of110: 5,
	payment.VAT20Of120: 6,
	payment.VAT5:       7,
	payment.VAT7:       8,
	payment.VAT5Of105:  9,
	payment.VAT7Of107:  10,
	payment.VAT22:      11,
	payment.VAT22Of122: 12,
}

// currencies are the codes YooKassa takes (CurrencyCode in its OpenAPI specification).
var currencies = map[string]bool{
	"RUB": true, "EUR": true, "USD": true, "KZT": true, "BYN": true, "UAH": true,
	"UZS": true, "TRY": true, "INR": true, "MDL": true, "AZN": true, "AMD": true,
}

// toAmount renders minor units as YooKassa's amount, with the currency's exponent
// ("990.00" for 99000 RUB kopecks).
func toAmount(field string, minor int64, code string) (amount, error) {
	c, err := money.Lookup(code)
	if err != nil || !currencies[code] {
		return amount{}, &payment.ValidationError{Field: field, Problem: fmt.Sprintf("currency %q is not one YooKassa takes", code)}
	}
	return amount{Value: c.FromMinor(minor).StringFixed(c.Exponent), Currency: code}, nil
}

// fromAmount parses YooKassa's amount into minor units. An amount finer than the currency
// allows or in an unknown currency is an error (the answer cannot be trusted).
func fromAmount(a amount) (int64, string, error) {
	c, err := money.Lookup(a.Currency)
	if err != nil {
		return 0, "", fmt.Errorf("yookassa: answer amount: %w", err)
	}
	d, err := decimal.NewFromString(a.Value)
	if err != nil {
		return 0, "", fmt.Errorf("yookassa: answer amount %q: %w", a.Value, err)
	}
	minor, err := c.ToMinor(d)
	if err != nil {
		return 0, "", fmt.Errorf("yookassa: answer amount: %w", err)
	}
	return minor, c.Code, nil
}

// toReceipt maps a payment.Receipt to YooKassa's receipt. Trap: YooKassa refuses a receipt
// without the customer's email or phone, so that is checked here, before sending.
func toReceipt(field string, r payment.Receipt) (*receiptData, error) {
	if r.Customer.IsZero() {
		return nil, &payment.ValidationError{Field: field + ".Customer", Problem: "YooKassa needs an email or a phone to send the receipt to"}
	}
	out := &receiptData{
		Customer: &receiptCustomer{Email: r.Customer.Email, Phone: strings.TrimPrefix(r.Customer.Phone, "+")},
	}
	for i, it := range r.Items {
		f := fmt.Sprintf("%s.Items[%d]", field, i)
		vat, ok := vatCodes[it.VAT]
		if !ok {
			return nil, &payment.ValidationError{Field: f + ".VAT", Problem: fmt.Sprintf("%q has no YooKassa vat_code", it.VAT)}
		}
		unit, err := it.UnitPrice()
		if err != nil {
			return nil, err
		}
		price, err := toAmount(f+".Currency", unit, it.Currency)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, receiptItem{
			Description:    truncate(it.Description, maxDescription),
			Quantity:       json.Number(it.Quantity.String()),
			Amount:         price,
			VATCode:        vat,
			PaymentMode:    string(it.PaymentMode), // "full_prepayment": the library's values are YooKassa's
			PaymentSubject: string(it.Subject),     // "service"
		})
	}
	return out, nil
}

// withKey returns a copy of meta that carries key under payment.MetadataIdempotencyKey,
// checked against YooKassa's metadata limits. A different key already there, or a limit
// broken, is a *payment.ValidationError: nothing is sent.
func withKey(meta map[string]string, key string) (map[string]string, error) {
	if err := checkIdempotenceKey(key); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	if v, ok := out[payment.MetadataIdempotencyKey]; ok && v != key {
		return nil, &payment.ValidationError{Field: "Metadata", Problem: fmt.Sprintf("%s is %q, not the request's key %q", payment.MetadataIdempotencyKey, v, key)}
	}
	out[payment.MetadataIdempotencyKey] = key
	if len(out) > maxMetadataKeys {
		return nil, &payment.ValidationError{Field: "Metadata", Problem: fmt.Sprintf("%d keys, YooKassa takes at most %d (the key %s included)", len(out), maxMetadataKeys, payment.MetadataIdempotencyKey)}
	}
	for k, v := range out {
		if n := utf8.RuneCountInString(k); n > maxMetadataKeyLen || n == 0 {
			return nil, &payment.ValidationError{Field: "Metadata", Problem: fmt.Sprintf("key %q: %d characters, YooKassa takes 1 to %d", k, n, maxMetadataKeyLen)}
		}
		if n := utf8.RuneCountInString(v); n > maxMetadataValueLen {
			return nil, &payment.ValidationError{Field: "Metadata[" + k + "]", Problem: fmt.Sprintf("%d characters, YooKassa takes at most %d", n, maxMetadataValueLen)}
		}
	}
	return out, nil
}

// checkIdempotenceKey checks key against YooKassa's Idempotence-Key: 1 to 64 of the
// characters 0-9, a-z, A-Z, '+', '-', '_' and '.' (its OpenAPI pattern). The engine's keys
// (letters, digits, '-', '_') always pass; anything else would be refused by YooKassa with
// 400 on every retry, so it is refused here, before sending.
func checkIdempotenceKey(key string) error {
	if key == "" || len(key) > payment.MaxKeyLen {
		return &payment.ValidationError{Field: "IdempotencyKey", Problem: fmt.Sprintf("%d characters, YooKassa takes 1 to %d", len(key), payment.MaxKeyLen)}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '+' || c == '-' || c == '_' || c == '.') {
			return &payment.ValidationError{Field: "IdempotencyKey", Problem: fmt.Sprintf("character %q is not one YooKassa's Idempotence-Key takes", c)}
		}
	}
	return nil
}

// truncate cuts s to at most n characters (runes), never inside a character.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
