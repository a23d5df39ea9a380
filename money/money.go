// Package money holds the currencies the library knows and the exact arithmetic on
// amounts that every other package uses.
//
// Invariants:
//   - An amount is a decimal.Decimal with a currency; it is never a float.
//   - An amount that is stored or posted has at most as many decimals as its currency
//     has minor units (2 for RUB, 0 for JPY); ToMinor refuses anything finer instead of
//     rounding it away.
//   - Split divides an integer of minor units into parts that always sum to the whole;
//     remainders go to the earliest parts, so the result is deterministic.
package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 currency the library knows, with the number of decimal
// places of its minor unit (RUB has 2: kopecks).
type Currency struct {
	// Code is the three-letter ISO 4217 code, upper case ("RUB").
	Code string
	// Exponent is the number of decimals of the minor unit (2 for RUB, 0 for JPY).
	Exponent int32
}

// RUB is the Russian rouble, the default currency of the library.
var RUB = Currency{Code: "RUB", Exponent: 2}

// known lists the currencies an operator in Russia plausibly bills in. A code not here
// is refused as unknown rather than guessed.
var known = map[string]Currency{
	"RUB": RUB,
	"USD": {Code: "USD", Exponent: 2},
	"EUR": {Code: "EUR", Exponent: 2},
	"KZT": {Code: "KZT", Exponent: 2},
	"BYN": {Code: "BYN", Exponent: 2},
	"CNY": {Code: "CNY", Exponent: 2},
	"AMD": {Code: "AMD", Exponent: 2},
	"UZS": {Code: "UZS", Exponent: 2},
	"JPY": {Code: "JPY", Exponent: 0},
}

// ErrUnknownCurrency is returned for a currency code the library does not know.
var ErrUnknownCurrency = errors.New("money: unknown currency")

// ErrPrecision is returned for an amount with more decimals than its currency's minor unit.
var ErrPrecision = errors.New("money: more decimals than the currency allows")

// ErrRange is returned for an amount whose minor units do not fit in an int64.
var ErrRange = errors.New("money: amount out of range")

// Lookup returns the currency for an ISO 4217 code. The code is matched exactly
// (upper case); an unknown code returns ErrUnknownCurrency.
func Lookup(code string) (Currency, error) {
	c, ok := known[code]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	return c, nil
}

// MustLookup is Lookup for codes known at compile time; it panics on an unknown code.
func MustLookup(code string) Currency {
	c, err := Lookup(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Known reports whether code is a currency the library knows.
func Known(code string) bool {
	_, ok := known[strings.TrimSpace(code)]
	return ok && code == strings.TrimSpace(code)
}

// String returns the currency code.
func (c Currency) String() string { return c.Code }

// CheckPrecision returns ErrPrecision when d has more decimals than c's minor unit.
func (c Currency) CheckPrecision(d decimal.Decimal) error {
	if !d.Equal(d.Truncate(c.Exponent)) {
		return fmt.Errorf("%w: %s has more than %d decimals for %s", ErrPrecision, d, c.Exponent, c.Code)
	}
	return nil
}

// ToMinor converts d to an integer count of minor units (kopecks for RUB). It refuses
// an amount with more decimals than the currency has (ErrPrecision) or one that does
// not fit in an int64 (ErrRange); it never rounds.
func (c Currency) ToMinor(d decimal.Decimal) (int64, error) {
	if err := c.CheckPrecision(d); err != nil {
		return 0, err
	}
	m := d.Shift(c.Exponent)
	if !m.IsInteger() || !m.BigInt().IsInt64() {
		return 0, fmt.Errorf("%w: %s %s", ErrRange, d, c.Code)
	}
	return m.IntPart(), nil
}

// FromMinor converts an integer count of minor units back to a decimal amount.
func (c Currency) FromMinor(minor int64) decimal.Decimal {
	return decimal.New(minor, -c.Exponent)
}

// Format renders minor units as "990.00 RUB".
func (c Currency) Format(minor int64) string {
	return c.FromMinor(minor).StringFixed(c.Exponent) + " " + c.Code
}

// Split divides total into len(weights) parts proportional to weights, exactly: the
// parts sum to total. Each part is floor(total*w/sum); the remainder is handed out one
// minor unit at a time to the earliest parts with a non-zero weight. Weights must be
// non-negative with a positive sum; otherwise Split returns nil.
func Split(total int64, weights []int64) []int64 {
	var sum int64
	for _, w := range weights {
		if w < 0 {
			return nil
		}
		sum += w
	}
	if sum <= 0 {
		return nil
	}
	parts := make([]int64, len(weights))
	var given int64
	for i, w := range weights {
		parts[i] = mulDiv(total, w, sum)
		given += parts[i]
	}
	for i := 0; given != total; i = (i + 1) % len(weights) {
		if weights[i] == 0 {
			continue
		}
		if given < total {
			parts[i]++
			given++
		} else {
			parts[i]--
			given--
		}
	}
	return parts
}

// ProRata returns floor(total*num/den) without overflow for den > 0 and 0 ≤ num ≤ den.
// It is the share of total earned by num of den units (days, seconds, volume).
func ProRata(total, num, den int64) int64 {
	if den <= 0 {
		return 0
	}
	return mulDiv(total, num, den)
}

// mulDiv computes floor(a*b/c) in big integers so that a*b may exceed int64.
func mulDiv(a, b, c int64) int64 {
	p := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	return new(big.Int).Div(p, big.NewInt(c)).Int64() // Euclidean: floor for c > 0
}
