package payment

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Receipt is the fiscal data of one payment or refund under Law 54-FZ: every charge carries an
// Income receipt and every refund an IncomeReturn ("return of income") receipt. The provider (or
// the operator's online cash register behind it) turns it into the fiscal document; this type
// only carries what the library knows. Build it with NewChargeReceipt or NewRefundReceipt.
type Receipt struct {
	// Kind is Income for a charge, IncomeReturn for a refund. Required.
	Kind ReceiptKind
	// Items are the receipt's lines, at least one, all in one currency. The library's
	// constructors make one line: the tariff period bought (or returned).
	Items []ReceiptItem
	// Customer is where the fiscal receipt is sent, when the host gives a contact. Optional here;
	// trap: some providers (YooKassa) refuse a receipt without one. It is personal data
	// (TERMS 5.1): the engine passes it to the gateway and does not store it.
	Customer Contact
}

// ReceiptKind is the 54-FZ "calculation sign" (tag 1054) of a receipt.
type ReceiptKind string

// The receipt kinds the library issues.
const (
	// ReceiptIncome is "income" (приход): a charge.
	ReceiptIncome ReceiptKind = "income"
	// ReceiptIncomeReturn is "return of income" (возврат прихода): a refund.
	ReceiptIncomeReturn ReceiptKind = "income_return"
)

// ReceiptItem is one line of a receipt.
type ReceiptItem struct {
	// Description is the name of what is sold (tag 1030), e.g. "Pro tariff, 1 month".
	// Non-empty, at most 128 characters.
	Description string
	// Quantity is how many units, > 0. The constructors use 1 (one period).
	Quantity decimal.Decimal
	// Amount is the line total in minor units (price × quantity), > 0. It must divide by
	// Quantity into a whole number of minor units (UnitPrice), because providers take a unit
	// price and the fiscal service refuses lines that do not add up.
	Amount int64
	// Currency is the ISO 4217 code of Amount. A 54-FZ receipt is in roubles; a charge in
	// another currency needs the operator's own fiscal arrangement.
	Currency string
	// VAT is the VAT rate code of the line. Required: the operator's tax regime decides it and
	// the library never guesses. See VATCode.
	VAT VATCode
	// PaymentMode is the "payment method sign" (tag 1214); always PaymentModeFullPrepayment for
	// these subscriptions (TERMS 3.3: 100% prepayment).
	PaymentMode PaymentMode
	// Subject is the "subject of calculation" (tag 1212); always SubjectService.
	Subject PaymentSubject
}

// VATCode is the VAT rate of a receipt line (54-FZ tag 1199). It is the operator's setting:
// the tax regime and, for prepayment, the tax law decide it, so the library takes it from the
// host and never picks one. Adapters map it to their provider's codes.
//
// Rates current for Russia in 2026:
//   - VAT22 is the standard rate from 1 January 2026 (Federal Law 425-FZ of 28.11.2025), VAT10
//     the reduced one, VAT0 the zero rate; VATNone is for an operator exempt from VAT (e.g. on
//     the simplified regime under its threshold).
//   - VAT5 and VAT7 are the rates a simplified-regime (USN) operator may choose since 2025.
//   - VAT22Of122, VAT10Of110, VAT5Of105, VAT7Of107 are the "calculated" rates (the tax inside a
//     gross amount). Trap: on a full-prepayment receipt an operator paying VAT usually must use
//     the calculated rate (Tax Code art. 164 p. 4), e.g. VAT22Of122 rather than VAT22; ask the
//     operator's accountant.
//   - VAT20 and VAT20Of120 are the rates before 2026. Use them only for documents about a sale
//     made before 1 January 2026, e.g. the return receipt of a 2025 payment (a return receipt
//     repeats the rate of the receipt it returns); never for a new sale.
type VATCode string

// The VAT codes.
const (
	VATNone    VATCode = "none"
	VAT0       VATCode = "vat0"
	VAT5       VATCode = "vat5"
	VAT7       VATCode = "vat7"
	VAT10      VATCode = "vat10"
	VAT20      VATCode = "vat20"
	VAT22      VATCode = "vat22"
	VAT5Of105  VATCode = "vat5_105"
	VAT7Of107  VATCode = "vat7_107"
	VAT10Of110 VATCode = "vat10_110"
	VAT20Of120 VATCode = "vat20_120"
	VAT22Of122 VATCode = "vat22_122"
)

// Valid reports whether v is one of the VAT codes above. The zero VATCode is not valid.
func (v VATCode) Valid() bool {
	switch v {
	case VATNone, VAT0, VAT5, VAT7, VAT10, VAT20, VAT22,
		VAT5Of105, VAT7Of107, VAT10Of110, VAT20Of120, VAT22Of122:
		return true
	}
	return false
}

// PaymentMode is the 54-FZ "payment method sign" (tag 1214).
type PaymentMode string

// PaymentModeFullPrepayment is "full prepayment" (полная предоплата 100%), the only mode of
// these subscriptions: the period is paid before it is served (TERMS 3.3).
const PaymentModeFullPrepayment PaymentMode = "full_prepayment"

// PaymentSubject is the 54-FZ "subject of calculation" (tag 1212).
type PaymentSubject string

// SubjectService is "service" (услуга), the only subject of these subscriptions.
const SubjectService PaymentSubject = "service"

// Contact is where a fiscal receipt is sent: an email, a phone, both or neither. Personal data
// (TERMS 5.1): passed through, never stored by the library.
type Contact struct {
	// Email is an address with one "@"; empty when not given.
	Email string
	// Phone is 7 to 15 digits, optionally after a "+" (E.164); empty when not given.
	Phone string
}

// IsZero reports whether no contact was given.
func (c Contact) IsZero() bool { return c.Email == "" && c.Phone == "" }

// NewChargeReceipt returns the Income receipt of a charge: one line of quantity 1 with the
// given description, amount (minor units), currency and VAT, full prepayment, subject service,
// and the optional contact. It returns a *ValidationError for bad input.
func NewChargeReceipt(description string, amount int64, currency string, vat VATCode, contact Contact) (Receipt, error) {
	return newReceipt(ReceiptIncome, description, amount, currency, vat, contact)
}

// NewRefundReceipt returns the IncomeReturn ("return of income") receipt of a refund, shaped
// like NewChargeReceipt's. Trap: vat must be the rate of the receipt being returned (a refund
// in 2026 of a 2025 payment repeats VAT20 or VAT20Of120), and amount is what is returned now,
// which may be less than what was paid (a pro-rata refund).
func NewRefundReceipt(description string, amount int64, currency string, vat VATCode, contact Contact) (Receipt, error) {
	return newReceipt(ReceiptIncomeReturn, description, amount, currency, vat, contact)
}

// Validate checks the receipt: a known kind, at least one valid line, all lines in one
// currency, a total that fits in int64, and a well-formed contact. It returns a
// *ValidationError naming the first bad field.
func (r Receipt) Validate() error {
	if r.Kind != ReceiptIncome && r.Kind != ReceiptIncomeReturn {
		return invalid("Kind", fmt.Sprintf("%q is neither %q nor %q", r.Kind, ReceiptIncome, ReceiptIncomeReturn))
	}
	if len(r.Items) == 0 {
		return invalid("Items", "a receipt needs at least one line")
	}
	var total int64
	for i, it := range r.Items {
		field := fmt.Sprintf("Items[%d].", i)
		if err := it.validate(field); err != nil {
			return err
		}
		if it.Currency != r.Items[0].Currency {
			return invalid(field+"Currency", fmt.Sprintf("%q differs from the first line's %q", it.Currency, r.Items[0].Currency))
		}
		if total > math.MaxInt64-it.Amount {
			return invalid("Items", "total overflows int64")
		}
		total += it.Amount
	}
	return r.Customer.validate("Customer.")
}

// Total returns the sum of the lines' amounts in minor units. Call it on a valid receipt.
func (r Receipt) Total() int64 {
	var total int64
	for _, it := range r.Items {
		total += it.Amount
	}
	return total
}

// UnitPrice returns Amount / Quantity in minor units: the price of one unit, which a provider
// sends with the quantity. It returns a *ValidationError when Quantity is not positive or the
// division is not exact.
func (it ReceiptItem) UnitPrice() (int64, error) {
	if !it.Quantity.IsPositive() {
		return 0, invalid("Quantity", fmt.Sprintf("%s, must be > 0", it.Quantity))
	}
	amount := decimal.NewFromInt(it.Amount)
	price := amount.DivRound(it.Quantity, 0)
	if !price.Mul(it.Quantity).Equal(amount) || !price.BigInt().IsInt64() {
		return 0, invalid("Amount", fmt.Sprintf("%d minor units do not divide into %s equal whole units", it.Amount, it.Quantity))
	}
	return price.IntPart(), nil
}

// newReceipt builds and validates a one-line receipt.
func newReceipt(kind ReceiptKind, description string, amount int64, currency string, vat VATCode, contact Contact) (Receipt, error) {
	r := Receipt{
		Kind: kind,
		Items: []ReceiptItem{{
			Description: description,
			Quantity:    decimal.NewFromInt(1),
			Amount:      amount,
			Currency:    currency,
			VAT:         vat,
			PaymentMode: PaymentModeFullPrepayment,
			Subject:     SubjectService,
		}},
		Customer: contact,
	}
	if err := r.Validate(); err != nil {
		return Receipt{}, err
	}
	return r, nil
}

// maxItemDescription is the length limit of 54-FZ tag 1030, in characters.
const maxItemDescription = 128

// validate checks one line; field prefixes the field names.
func (it ReceiptItem) validate(field string) error {
	if strings.TrimSpace(it.Description) == "" {
		return invalid(field+"Description", "empty")
	}
	if n := utf8.RuneCountInString(it.Description); n > maxItemDescription {
		return invalid(field+"Description", fmt.Sprintf("%d characters, more than %d (54-FZ tag 1030)", n, maxItemDescription))
	}
	if err := checkMoney(field, it.Amount, it.Currency); err != nil {
		return err
	}
	if _, err := it.UnitPrice(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Field = field + ve.Field
		}
		return err
	}
	if !it.VAT.Valid() {
		return invalid(field+"VAT", fmt.Sprintf("%q is not a VAT code; the operator must choose one", it.VAT))
	}
	if it.PaymentMode != PaymentModeFullPrepayment {
		return invalid(field+"PaymentMode", fmt.Sprintf("%q, must be %q (TERMS 3.3)", it.PaymentMode, PaymentModeFullPrepayment))
	}
	if it.Subject != SubjectService {
		return invalid(field+"Subject", fmt.Sprintf("%q, must be %q", it.Subject, SubjectService))
	}
	return nil
}

// validate checks the contact's form; both fields are optional.
func (c Contact) validate(field string) error {
	if c.Email != "" {
		at := strings.IndexByte(c.Email, '@')
		if at <= 0 || at != strings.LastIndexByte(c.Email, '@') || at == len(c.Email)-1 ||
			strings.ContainsAny(c.Email, " \t\r\n") || len(c.Email) > 254 {
			return invalid(field+"Email", "not an email address")
		}
	}
	if c.Phone != "" {
		digits := strings.TrimPrefix(c.Phone, "+")
		if len(digits) < 7 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
			return invalid(field+"Phone", "not 7 to 15 digits after an optional +")
		}
	}
	return nil
}

// checkReceiptFor checks that r is a valid receipt of the given kind whose lines are in
// currency and total amount.
func checkReceiptFor(field string, r Receipt, kind ReceiptKind, amount int64, currency string) error {
	if err := r.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Field = field + "." + ve.Field
		}
		return err
	}
	if r.Kind != kind {
		return invalid(field+".Kind", fmt.Sprintf("%q, must be %q", r.Kind, kind))
	}
	if r.Items[0].Currency != currency {
		return invalid(field+".Items[0].Currency", fmt.Sprintf("%q differs from the request's %q", r.Items[0].Currency, currency))
	}
	if t := r.Total(); t != amount {
		return invalid(field+".Items", fmt.Sprintf("total %d differs from the amount %d", t, amount))
	}
	return nil
}
