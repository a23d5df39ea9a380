package tariff

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
)

// DefaultCurrency is the currency of a Spec that names none (TERMS 6.3: a Russian operator).
const DefaultCurrency = "RUB"

// Length bounds of the identifiers and the display name.
const (
	maxCodeLen  = 64
	maxMeterLen = 64
	maxNameLen  = 200 // characters, not bytes
)

var (
	codePattern  = regexp.MustCompile(`^[a-z0-9_-]+$`)
	meterPattern = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// Spec is what an operator publishes: a new tariff (its first version) or a new version
// of an existing one. Pass it to NewVersion; Validate checks it alone, before any catalog
// is read.
type Spec struct {
	// Code is the tariff's stable code: 1 to 64 characters of [a-z0-9_-] ("pro",
	// "team-2025"). It is the key of the catalog and never changes between versions.
	Code string
	// Name is the display name shown at checkout ("Pro"): not blank, at most 200 characters.
	Name string
	// Price is the price of one period: zero for a free tariff, never negative, and with
	// no more decimals than the currency's minor unit (99.90 RUB, not 99.999).
	Price decimal.Decimal
	// Currency is an ISO 4217 code the money package knows, upper case. Empty means
	// DefaultCurrency ("RUB"); a lower-case "rub" is refused, not guessed.
	Currency string
	// Period is the length of one paid period, from 1 day to 100 years.
	Period Period
	// Limits are the usage volumes of one period: each meter at most once, each quantity
	// at least 1. No limits means unlimited use for the period.
	Limits []Limit
	// Options are the tariff's switches; the zero value is the safe default.
	Options Options
	// EffectiveAt is when the version takes effect. Zero, or an instant before
	// publication, means at publication: a version never takes effect in the past, so
	// publishing never changes which version was in force at an earlier instant. It may
	// not precede the previous version's EffectiveAt.
	EffectiveAt time.Time
	// ExpectedNumber, when not 0, is the number the caller expects the new version to get:
	// the one a preview showed (Catalog.PreviewPublish). If another version was published
	// since, NewVersion refuses with ErrVersionChanged instead of publishing on top of it,
	// so a confirmation publishes what it confirmed, and once (a repeated confirmation
	// finds the number taken). 0: the next number, unchecked. Never negative.
	ExpectedNumber int
}

// Validate checks every field of s and returns a *ValidationError naming each bad one
// (errors.Is(err, ErrInvalid) holds), or nil. It does not know the previous version;
// NewVersion also checks s against it.
func (s Spec) Validate() error {
	var ps problems
	s.check(&ps)
	return ps.err()
}

// check adds every problem of s alone to ps.
func (s Spec) check(ps *problems) {
	checkCode(ps, "code", s.Code)
	switch {
	case !utf8.ValidString(s.Name):
		ps.add("name", "is not valid UTF-8")
	case strings.TrimSpace(s.Name) == "":
		ps.add("name", "is required")
	case utf8.RuneCountInString(s.Name) > maxNameLen:
		ps.add("name", fmt.Sprintf("is longer than %d characters", maxNameLen))
	}
	checkPrice(ps, s.Price, s.currency())
	s.Period.check(ps, "period")
	checkLimits(ps, s.Limits)
	if s.Options.PriceNotice < 0 {
		ps.add("options.price_notice", "must not be negative")
	}
	if s.ExpectedNumber < 0 {
		ps.add("expected_number", "must not be negative")
	}
}

// currency returns s.Currency, or DefaultCurrency when it is empty.
func (s Spec) currency() string {
	if s.Currency == "" {
		return DefaultCurrency
	}
	return s.Currency
}

// Version is one immutable publication of a tariff: what it sells from EffectiveAt on,
// until a later version takes effect. Versions of a tariff are numbered 1, 2, 3… in
// publication order, and their EffectiveAt never decreases with the number. The catalog
// stores them append-only; only NewVersion makes new ones.
type Version struct {
	// Code is the code of the tariff the version belongs to.
	Code string
	// Number counts the tariff's versions from 1, in publication order.
	Number int
	// Name is the display name shown at checkout under this version.
	Name string
	// Price is the price of one period, in Currency; zero for a free tariff.
	Price decimal.Decimal
	// Currency is the ISO 4217 code of Price, never empty.
	Currency string
	// Period is the length of one paid period.
	Period Period
	// Limits are the usage volumes of one period, in the order published.
	Limits []Limit
	// Options are the tariff's switches.
	Options Options
	// EffectiveAt is the instant from which the version is sold (see InForce); never
	// before PublishedAt.
	EffectiveAt time.Time
	// PublishedAt is when the operator published the version; a price notice
	// (Options.PriceNotice) counts from it.
	PublishedAt time.Time
}

// NewVersion publishes spec as the version after previous (nil for a tariff's first
// version) at instant publishedAt, the catalog's clock reading. It returns the new,
// immutable version: number previous.Number+1 (or 1), currency defaulted, limits copied,
// EffectiveAt raised to publishedAt when earlier or zero.
//
// Besides every problem Validate finds it refuses, in the same *ValidationError, a code
// that differs from previous's ("code"), a version taking effect before previous does
// ("effective_at"), and a zero publishedAt or one before previous was published
// ("published_at"). The catalog must read previous under a lock (or retry on a unique
// number), so that concurrent publishers get distinct, ordered numbers.
func NewVersion(spec Spec, previous *Version, publishedAt time.Time) (Version, error) {
	var ps problems
	spec.check(&ps)
	effective := spec.EffectiveAt
	if effective.Before(publishedAt) {
		effective = publishedAt
	}
	number := 1
	if previous != nil {
		number = previous.Number + 1
		if spec.Code != previous.Code {
			ps.add("code", fmt.Sprintf("%q differs from the previous version's %q", spec.Code, previous.Code))
		}
		if effective.Before(previous.EffectiveAt) {
			ps.add("effective_at", fmt.Sprintf("%s is before version %d takes effect at %s",
				effective.Format(time.RFC3339Nano), previous.Number, previous.EffectiveAt.Format(time.RFC3339Nano)))
		}
	}
	switch {
	case publishedAt.IsZero():
		ps.add("published_at", "is required")
	case previous != nil && publishedAt.Before(previous.PublishedAt):
		ps.add("published_at", fmt.Sprintf("%s is before version %d was published at %s",
			publishedAt.Format(time.RFC3339Nano), previous.Number, previous.PublishedAt.Format(time.RFC3339Nano)))
	}
	if err := ps.err(); err != nil {
		return Version{}, err
	}
	if spec.ExpectedNumber != 0 && spec.ExpectedNumber != number {
		return Version{}, fmt.Errorf("%w: %q would be version %d, not the expected %d", ErrVersionChanged, spec.Code, number, spec.ExpectedNumber)
	}
	return Version{
		Code:        spec.Code,
		Number:      number,
		Name:        spec.Name,
		Price:       spec.Price,
		Currency:    spec.currency(),
		Period:      spec.Period,
		Limits:      cloneLimits(spec.Limits),
		Options:     spec.Options,
		EffectiveAt: effective,
		PublishedAt: publishedAt,
	}, nil
}

// Terms returns the snapshot a period sold under v keeps forever (TERMS 2.1.6). Its
// Limits are a copy: changing them touches neither v nor any other period's Terms.
func (v Version) Terms() Terms {
	return Terms{
		Code:     v.Code,
		Version:  v.Number,
		Name:     v.Name,
		Price:    v.Price,
		Currency: v.Currency,
		Period:   v.Period,
		Limits:   cloneLimits(v.Limits),
		Options:  v.Options,
	}
}

// InForce returns the version of one tariff in force at instant at: of the versions with
// EffectiveAt ≤ at, the one with the highest number (a version taking effect at the same
// instant as an earlier one supersedes it). The slice may be in any order; the result's
// Limits are a copy. It reports false when no version is in force yet.
func InForce(versions []Version, at time.Time) (Version, bool) {
	best := -1
	for i, v := range versions {
		if v.EffectiveAt.After(at) {
			continue
		}
		if best < 0 || v.Number > versions[best].Number {
			best = i
		}
	}
	if best < 0 {
		return Version{}, false
	}
	v := versions[best]
	v.Limits = cloneLimits(v.Limits)
	return v, true
}

// checkCode adds the problems of a tariff code.
func checkCode(ps *problems, field, code string) {
	switch {
	case code == "":
		ps.add(field, "is required")
	case len(code) > maxCodeLen:
		ps.add(field, fmt.Sprintf("is longer than %d characters", maxCodeLen))
	case !codePattern.MatchString(code):
		ps.add(field, fmt.Sprintf("%q must match [a-z0-9_-]+", code))
	}
}

// checkPrice adds the problems of a price in currency code: negative, unknown currency,
// more decimals than the currency has, or too large for int64 minor units.
func checkPrice(ps *problems, price decimal.Decimal, code string) {
	if price.IsNegative() {
		ps.add("price", "must not be negative")
	}
	cur, err := money.Lookup(code)
	if err != nil {
		ps.add("currency", fmt.Sprintf("%q is not a currency the library knows", code))
		return // precision cannot be judged without a currency
	}
	if _, err := cur.ToMinor(price); err != nil {
		switch {
		case errors.Is(err, money.ErrPrecision):
			ps.add("price", fmt.Sprintf("%s has more decimals than %s allows (%d)", price, cur.Code, cur.Exponent))
		default:
			ps.add("price", fmt.Sprintf("%s %s is too large", price, cur.Code))
		}
	}
}

// checkLimits adds the problems of each limit and of duplicate meters.
func checkLimits(ps *problems, limits []Limit) {
	first := make(map[string]int, len(limits)) // meter → index of its first limit
	for i, l := range limits {
		field := fmt.Sprintf("limits[%d]", i)
		switch {
		case l.Meter == "":
			ps.add(field+".meter", "is required")
		case len(l.Meter) > maxMeterLen:
			ps.add(field+".meter", fmt.Sprintf("is longer than %d characters", maxMeterLen))
		case !meterPattern.MatchString(l.Meter):
			ps.add(field+".meter", fmt.Sprintf("%q must match [a-z0-9_]+", l.Meter))
		default:
			if j, dup := first[l.Meter]; dup {
				ps.add(field+".meter", fmt.Sprintf("%q duplicates limits[%d]", l.Meter, j))
			} else {
				first[l.Meter] = i
			}
		}
		if l.Quantity < 1 {
			ps.add(field+".quantity", "must be at least 1")
		}
	}
}
