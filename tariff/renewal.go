package tariff

import (
	"fmt"
	"time"
)

// TermsForPurchase returns the terms a new subscription to t bought at instant at is
// sold under: those of the version in force then (TERMS 3.4: what checkout shows). It
// returns ErrRetired for a retired tariff and ErrNoVersion when no version is in force.
func TermsForPurchase(t Tariff, versions []Version, at time.Time) (Terms, error) {
	if err := t.CheckBuy(); err != nil {
		return Terms{}, err
	}
	if err := checkOneTariff(t.Code, versions); err != nil {
		return Terms{}, err
	}
	v, ok := InForce(versions, at)
	if !ok {
		return Terms{}, fmt.Errorf("%w: tariff %q at %s", ErrNoVersion, t.Code, at.Format(time.RFC3339Nano))
	}
	return v.Terms(), nil
}

// TermsForRenewal decides which terms a subscription now on current renews under at
// instant at (the end of its paid period), given its tariff's versions in any order.
//
// The answer is the version in force at at (TERMS 2.1.6, 3.2: the next renewal uses the
// tariff's current price, limits and period), with one exception. A price rise waits for
// notice: a version whose price is higher than current's, or in another currency, applies
// only once it was published at least current.Options.PriceNotice before at. The notice
// is the one the customer bought with, not the new version's. So the renewal takes the
// newest version newer than current's that has taken effect by at and is either no rise
// or was noticed in time, even if a later, unnoticed rise has superseded it; when none
// qualifies it renews on current (cloned) for one more period.
// A price cut, or a change of limits or period at the same or a lower price, applies at
// once. Prices are compared per period as published, whatever the period's length.
//
// Retirement does not stop renewals: a subscription on a retired tariff keeps renewing
// under the same rule, on its last version, until the operator moves it to another
// tariff (to do that, sell the other tariff's TermsForPurchase terms, bypassing
// CheckBuy if that one is retired too).
//
// It returns ErrNoVersion when no version is in force at at, and ErrInvalid when a
// version belongs to a tariff other than current.Code.
func TermsForRenewal(current Terms, versions []Version, at time.Time) (Terms, error) {
	if err := checkOneTariff(current.Code, versions); err != nil {
		return Terms{}, err
	}
	inForce, ok := InForce(versions, at)
	if !ok {
		return Terms{}, fmt.Errorf("%w: tariff %q at %s", ErrNoVersion, current.Code, at.Format(time.RFC3339Nano))
	}
	var chosen *Version
	for i := range versions {
		v := &versions[i]
		if v.Number <= current.Version || v.Number > inForce.Number || v.EffectiveAt.After(at) {
			continue // not newer than the customer's version, or not in force by at
		}
		if isRise(current, *v) && v.PublishedAt.Add(current.Options.PriceNotice).After(at) {
			continue // a rise without enough notice waits one more period
		}
		if chosen == nil || v.Number > chosen.Number {
			chosen = v
		}
	}
	if chosen == nil {
		return current.Clone(), nil
	}
	return chosen.Terms(), nil
}

// RenewalTakesFrom returns the earliest due instant at which a renewal of a period sold
// under current takes next, when next is the tariff's newest version (TERMS 2.1.6: the paid
// period keeps current's price to its end; the renewal due then is sold under TermsForRenewal).
// It is the rule TermsForRenewal applies, solved for the instant: next.EffectiveAt, or, when
// next is a rise for current (a higher price, or another currency), the later of that and
// next.PublishedAt + current.Options.PriceNotice. A renewal due at or after the instant takes
// next; one due before it keeps an older version. The due instant is the period's end (or,
// under Options.RenewWhenExhausted, when its volume ran out). It returns the zero Time when
// next is not newer than current's version or belongs to another tariff: no renewal of
// current ever moves to it.
func RenewalTakesFrom(current Terms, next Version) time.Time {
	if next.Code != current.Code || next.Number <= current.Version {
		return time.Time{}
	}
	from := next.EffectiveAt
	if isRise(current, next) {
		if noticed := next.PublishedAt.Add(current.Options.PriceNotice); noticed.After(from) {
			from = noticed
		}
	}
	return from
}

// isRise reports whether selling v would charge more than current: a higher price, or a
// price in another currency (which cannot be compared, so it needs notice like a rise).
func isRise(current Terms, v Version) bool {
	return v.Currency != current.Currency || v.Price.GreaterThan(current.Price)
}

// checkOneTariff returns ErrInvalid when a version belongs to a tariff other than code.
func checkOneTariff(code string, versions []Version) error {
	for _, v := range versions {
		if v.Code != code {
			return fmt.Errorf("%w: version %d belongs to tariff %q, not %q", ErrInvalid, v.Number, v.Code, code)
		}
	}
	return nil
}
