package yookassatest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// badRequest is a 400 invalid_request naming the parameter at fault.
type badRequest struct {
	parameter   string
	description string
}

func bad(parameter, format string, args ...any) *badRequest {
	return &badRequest{parameter: parameter, description: fmt.Sprintf(format, args...)}
}

// The documented limits.
const (
	maxDescription       = 128 // Description schema; a receipt item's description too
	maxRefundDescription = 250
	maxMetadataKeys      = 16
	maxMetadataKey       = 32
	maxMetadataValue     = 512
	maxIdempotenceKey    = 64
	maxReturnURL         = 2048
	maxReceiptItems      = 100
	maxListLimit         = 100
	defaultListLimit     = 10
)

// amountValue is the strict form the simulator accepts: digits, a point, two digits.
var amountValue = regexp.MustCompile(`^(0|[1-9][0-9]{0,15})\.[0-9]{2}$`)

// phonePattern is the Phone schema's pattern: 4 to 15 digits, no "+".
var phonePattern = regexp.MustCompile(`^[0-9]{4,15}$`)

// currencies are the CurrencyCode enum.
var currencies = map[string]bool{"RUB": true, "EUR": true, "USD": true, "KZT": true, "BYN": true, "UAH": true,
	"UZS": true, "TRY": true, "INR": true, "MDL": true, "AZN": true, "AMD": true}

var paymentModes = set("full_prepayment", "partial_prepayment", "advance", "full_payment", "partial_payment",
	"credit", "credit_payment")

var paymentSubjects = set("commodity", "excise", "job", "service", "gambling_bet", "gambling_prize", "lottery",
	"lottery_prize", "intellectual_activity", "payment", "agent_commission", "property_right",
	"non_operating_gain", "insurance_premium", "sales_tax", "resort_fee", "composite", "another", "fine", "tax",
	"lien", "cost", "pension_insurance_without_payouts", "pension_insurance_with_payouts",
	"health_insurance_without_payouts", "health_insurance_with_payouts", "health_insurance", "casino",
	"agent_withdrawals", "non_marked_excise", "marked_excise", "marked", "non_marked")

func set(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// parseAmount checks a MonetaryAmount at parameter name and returns its minor units.
func parseAmount(name string, raw json.RawMessage, currency string) (int64, string, *badRequest) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, "", bad(name, "%s is required", name)
	}
	var a struct {
		Value    json.RawMessage `json:"value"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, "", bad(name, "%s must be an object with value and currency", name)
	}
	var value string
	if err := json.Unmarshal(a.Value, &value); err != nil {
		return 0, "", bad(name+".value", "%s.value must be a string such as \"100.00\"", name)
	}
	if !amountValue.MatchString(value) {
		return 0, "", bad(name+".value", "%s.value %q is not an amount with two decimals", name, value)
	}
	units, _ := strconv.ParseInt(strings.Replace(value, ".", "", 1), 10, 64)
	if units <= 0 {
		return 0, "", bad(name+".value", "%s.value must be more than 0", name)
	}
	if !currencies[a.Currency] {
		return 0, "", bad(name+".currency", "%s.currency %q is not a supported currency", name, a.Currency)
	}
	if currency != "" && a.Currency != currency {
		return 0, "", bad(name+".currency", "%s.currency %q differs from %q", name, a.Currency, currency)
	}
	return units, a.Currency, nil
}

// formatAmount renders minor units as a MonetaryAmount value.
func formatAmount(units int64, currency string) Amount {
	return Amount{Value: fmt.Sprintf("%d.%02d", units/100, units%100), Currency: currency}
}

// checkDescription checks a description of at most limit characters.
func checkDescription(name, d string, limit int) *badRequest {
	if n := utf8.RuneCountInString(d); n > limit {
		return bad(name, "%s is %d characters, more than %d", name, n, limit)
	}
	return nil
}

// parseMetadata checks the Metadata schema: at most 16 keys of at most 32 characters, string
// values of at most 512 characters.
func parseMetadata(raw json.RawMessage) (map[string]string, *badRequest) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, bad("metadata", "metadata must be an object")
	}
	if len(m) > maxMetadataKeys {
		return nil, bad("metadata", "metadata has %d keys, more than %d", len(m), maxMetadataKeys)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if n := utf8.RuneCountInString(k); n > maxMetadataKey {
			return nil, bad("metadata", "metadata key %q is %d characters, more than %d", k, n, maxMetadataKey)
		}
		if string(v) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, bad("metadata", "metadata value of %q must be a string", k)
		}
		if n := utf8.RuneCountInString(s); n > maxMetadataValue {
			return nil, bad("metadata", "metadata value of %q is %d characters, more than %d", k, n, maxMetadataValue)
		}
		out[k] = s
	}
	return out, nil
}

// parseReceipt checks a receipt (ReceiptData) for a payment or refund of total minor units in
// currency: a customer email or phone, 1 to 100 items each with description, quantity, unit
// price, vat_code 1..12, payment_mode and payment_subject; and Σ price × quantity = total.
func parseReceipt(raw json.RawMessage, total int64, currency string) (*Receipt, *badRequest) {
	var r struct {
		Customer *struct {
			FullName string `json:"full_name"`
			Email    string `json:"email"`
			Phone    string `json:"phone"`
		} `json:"customer"`
		Items []struct {
			Description    string          `json:"description"`
			Quantity       json.RawMessage `json:"quantity"`
			Amount         json.RawMessage `json:"amount"`
			VatCode        json.RawMessage `json:"vat_code"`
			PaymentMode    string          `json:"payment_mode"`
			PaymentSubject string          `json:"payment_subject"`
		} `json:"items"`
		TaxSystemCode int `json:"tax_system_code"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, bad("receipt", "receipt is malformed: %v", err)
	}
	out := &Receipt{TaxSystemCode: r.TaxSystemCode}
	if r.Customer == nil || (r.Customer.Email == "" && r.Customer.Phone == "") {
		return nil, bad("receipt.customer", "receipt.customer needs an email or a phone")
	}
	if e := r.Customer.Email; e != "" {
		if at := strings.IndexByte(e, '@'); at <= 0 || at == len(e)-1 || len(e) > 254 || strings.ContainsAny(e, " \t\r\n") {
			return nil, bad("receipt.customer.email", "receipt.customer.email %q is not an email address", e)
		}
	}
	if p := r.Customer.Phone; p != "" && !phonePattern.MatchString(p) {
		return nil, bad("receipt.customer.phone", "receipt.customer.phone %q is not 4 to 15 digits (ITU-T E.164 without +)", p)
	}
	out.Customer = ReceiptCustomer{Email: r.Customer.Email, Phone: r.Customer.Phone, FullName: r.Customer.FullName}
	if r.TaxSystemCode != 0 && (r.TaxSystemCode < 1 || r.TaxSystemCode > 6) {
		return nil, bad("receipt.tax_system_code", "receipt.tax_system_code %d is not 1..6", r.TaxSystemCode)
	}
	if len(r.Items) == 0 || len(r.Items) > maxReceiptItems {
		return nil, bad("receipt.items", "receipt.items has %d items, must have 1 to %d", len(r.Items), maxReceiptItems)
	}
	sum := decimal.Zero
	for i, it := range r.Items {
		p := fmt.Sprintf("receipt.items[%d].", i)
		if it.Description == "" {
			return nil, bad(p+"description", "%sdescription is required", p)
		}
		if err := checkDescription(p+"description", it.Description, maxDescription); err != nil {
			return nil, err
		}
		qty, err := parseNumber(it.Quantity)
		if err != nil || !qty.IsPositive() {
			return nil, bad(p+"quantity", "%squantity must be a number more than 0", p)
		}
		price, _, berr := parseAmount(p+"amount", it.Amount, currency)
		if berr != nil {
			return nil, berr
		}
		vat, err := parseNumber(it.VatCode)
		if err != nil || !vat.IsInteger() || vat.IntPart() < 1 || vat.IntPart() > 12 {
			return nil, bad(p+"vat_code", "%svat_code must be an integer from 1 to 12", p)
		}
		if !paymentModes[it.PaymentMode] {
			return nil, bad(p+"payment_mode", "%spayment_mode %q is not a payment mode", p, it.PaymentMode)
		}
		if !paymentSubjects[it.PaymentSubject] {
			return nil, bad(p+"payment_subject", "%spayment_subject %q is not a payment subject", p, it.PaymentSubject)
		}
		sum = sum.Add(decimal.NewFromInt(price).Mul(qty))
		out.Items = append(out.Items, ReceiptItem{
			Description:    it.Description,
			Quantity:       qty,
			Amount:         formatAmount(price, currency),
			VatCode:        int(vat.IntPart()),
			PaymentMode:    it.PaymentMode,
			PaymentSubject: it.PaymentSubject,
		})
	}
	if !sum.Round(0).Equal(decimal.NewFromInt(total)) {
		return nil, bad("receipt", "the receipt's items (price × quantity) add up to %s, not the amount %s",
			formatAmount(sum.Round(0).IntPart(), currency).Value, formatAmount(total, currency).Value)
	}
	return out, nil
}

// parseNumber accepts a JSON number or a string holding one (the docs' examples send
// quantity as "1.00" and the schema says number).
func parseNumber(raw json.RawMessage) (decimal.Decimal, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return decimal.Zero, fmt.Errorf("missing")
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Zero, err
		}
	}
	return decimal.NewFromString(s)
}

// checkReturnURL checks confirmation.return_url: required, absolute, at most 2048 characters.
func checkReturnURL(u string) *badRequest {
	if u == "" {
		return bad("confirmation.return_url", "confirmation.return_url is required for a redirect confirmation")
	}
	if len(u) > maxReturnURL {
		return bad("confirmation.return_url", "confirmation.return_url is longer than %d characters", maxReturnURL)
	}
	if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
		return bad("confirmation.return_url", "confirmation.return_url %q is not an absolute URL", u)
	}
	return nil
}

// idempotenceKeyPattern is the IdempotenceKey parameter's pattern, [0-9a-zA-Z+-_.]{1,64}, read
// as a regular expression reads it: "+-_" is the range from '+' to '_', so letters, digits,
// '.', and '+' through '_' (which takes '-', '/', ':', '=', '@' and more). Outside it: space,
// the apostrophe, '!', '"', '#', '$', '%', '&', '(', ')', '*', '`', '{', '|', '}', '~' and non-ASCII.
var idempotenceKeyPattern = regexp.MustCompile(`^[0-9a-zA-Z+-_.]+$`)

// checkIdempotenceKey checks the Idempotence-Key header: required on POST, 1 to 64 characters
// of the documented pattern.
func checkIdempotenceKey(key string) *badRequest {
	if key == "" {
		return bad("Idempotence-Key", "Idempotence-Key header is required")
	}
	if len(key) > maxIdempotenceKey {
		return bad("Idempotence-Key", "Idempotence-Key is %d characters, more than %d", len(key), maxIdempotenceKey)
	}
	if !idempotenceKeyPattern.MatchString(key) {
		return bad("Idempotence-Key", "Idempotence-Key %q does not match [0-9a-zA-Z+-_.]{1,64}", key)
	}
	return nil
}
