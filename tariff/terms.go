package tariff

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
)

// Unit is the unit a Period counts in.
type Unit string

// The units of a Period. Days are calendar days in the subscription's location, not
// 24-hour spans; months keep the anchor's day of month, clamped to the month's length.
const (
	Day   Unit = "day"
	Week  Unit = "week"
	Month Unit = "month"
	Year  Unit = "year"
)

// Period is the length of one paid period: Count units of Unit ("1 month", "7 days").
// It is a value type, compared with ==.
type Period struct {
	// Count is the number of units, at least 1.
	Count int
	// Unit is Day, Week, Month or Year.
	Unit Unit
}

// Limit is the usage volume of one meter in one paid period.
type Limit struct {
	// Meter names what is counted: "generations", "images", "tokens". It matches
	// [a-z0-9_]{1,64}.
	Meter string
	// Quantity is the volume of the period, at least 1.
	Quantity int64
}

// Options are the per-tariff switches. The zero value is the safe default.
type Options struct {
	// SoftLimits, when true, only reports a used-up limit; by default (false) a used-up
	// limit ends access until the period ends (TERMS 3.1).
	SoftLimits bool
	// RenewWhenExhausted, when true and auto-renew is on, renews a period whose volume is
	// used up at once. By default (false) access waits for the period end, because the
	// frequency shown at checkout (TERMS 3.4) is the promise.
	RenewWhenExhausted bool
	// PriceNotice is how long before a renewal a price rise must have been published to
	// apply to it; a rise published later waits one more period. Default 0 (TERMS 2.1.6, 3.2).
	// The notice that counts is the one in the Terms the customer holds, not the new
	// version's (see TermsForRenewal); it is measured from Version.PublishedAt.
	PriceNotice time.Duration
}

// Terms is the snapshot a subscription period is sold under: what the customer saw at
// checkout (TERMS 3.4). A paid period keeps its Terms forever (TERMS 2.1.6); a price
// change publishes a new Version and touches no Terms already sold.
type Terms struct {
	// Code is the tariff's stable code ("pro").
	Code string
	// Version is the tariff version these terms come from, counting from 1.
	Version int
	// Name is the tariff's display name, as shown at checkout.
	Name string
	// Price is the price of one period; zero for a free tariff.
	Price decimal.Decimal
	// Currency is the ISO 4217 code of Price ("RUB").
	Currency string
	// Period is the length of one paid period.
	Period Period
	// Limits are the usage volumes of one period, at most one per meter.
	Limits []Limit
	// Options are the tariff's switches.
	Options Options
}

// Limit returns the limit of meter, and false when the terms set none (the meter is
// then not limited in the period).
func (t Terms) Limit(meter string) (Limit, bool) {
	for _, l := range t.Limits {
		if l.Meter == meter {
			return l, true
		}
	}
	return Limit{}, false
}

// IsFree reports whether the period costs nothing: no charge is made and access starts at once.
func (t Terms) IsFree() bool { return t.Price.IsZero() }

// PriceMinor returns the price in integer minor units of its currency (kopecks for RUB),
// the amount to charge. It fails (money.ErrUnknownCurrency, money.ErrPrecision,
// money.ErrRange) only for terms not made by Version.Terms from a published version.
func (t Terms) PriceMinor() (int64, error) {
	cur, err := money.Lookup(t.Currency)
	if err != nil {
		return 0, fmt.Errorf("tariff %q v%d: %w", t.Code, t.Version, err)
	}
	minor, err := cur.ToMinor(t.Price)
	if err != nil {
		return 0, fmt.Errorf("tariff %q v%d: %w", t.Code, t.Version, err)
	}
	return minor, nil
}

// Clone returns a deep copy of t: its Limits no longer share an array with t's, so a
// sold period's volumes cannot be changed through another copy.
func (t Terms) Clone() Terms {
	t.Limits = cloneLimits(t.Limits)
	return t
}

// Equal reports whether t and u sell the same thing: same code, version, name, currency,
// period and options, prices equal as numbers (990 equals 990.00), and the same limits in
// any order.
func (t Terms) Equal(u Terms) bool {
	if t.Code != u.Code || t.Version != u.Version || t.Name != u.Name || t.Currency != u.Currency ||
		t.Period != u.Period || t.Options != u.Options || !t.Price.Equal(u.Price) ||
		len(t.Limits) != len(u.Limits) {
		return false
	}
	a, b := sortedLimits(t.Limits), sortedLimits(u.Limits)
	return slices.Equal(a, b)
}

// sortedLimits returns a copy of limits ordered by meter, then quantity.
func sortedLimits(limits []Limit) []Limit {
	s := cloneLimits(limits)
	slices.SortFunc(s, func(x, y Limit) int {
		if c := cmp.Compare(x.Meter, y.Meter); c != 0 {
			return c
		}
		return cmp.Compare(x.Quantity, y.Quantity)
	})
	return s
}

// cloneLimits copies limits; nil stays nil.
func cloneLimits(limits []Limit) []Limit {
	if limits == nil {
		return nil
	}
	return append(make([]Limit, 0, len(limits)), limits...)
}
