package refund

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
)

// ProRataRefund is a suggested refund for a customer who refuses the service under
// consumer protection law art. 32: the unused share of the period's price, less the
// provider's actual costs.
//
// It is a suggestion for a person to decide, never an automatic payout: the operator
// reviews it (and the costs it rests on), may change it, and the engine records who
// decided. The full refund of TERMS 3.7 is a different rule (Eligibility).
type ProRataRefund struct {
	// Currency is the period's currency code.
	Currency string
	// Price is what was paid for the period.
	Price decimal.Decimal
	// UsedByTime is the share of the period's time the customer had access: from the
	// later of Start and GrantedAt (time lost to a late grant is unused) to the refusal,
	// out of End − Start, in nanoseconds.
	UsedByTime Share
	// UsedByVolume is the largest used share of any meter with a volume, Used (capped at
	// Quantity) out of Quantity; Of is 0 when no meter has a volume.
	UsedByVolume Share
	// Basis is the share the amount is computed from: the larger used share, time on a tie.
	Basis Basis
	// Unused is the price times one minus the Basis share, rounded down to the minor unit.
	Unused decimal.Decimal
	// Costs are the provider's actual costs the operator entered.
	Costs decimal.Decimal
	// Amount is the suggested refund, Unused − Costs, never below zero.
	Amount decimal.Decimal
	// AmountMinor is Amount in minor units (kopecks), for the gateway and the ledger.
	AmountMinor int64
}

// Share is a fraction Used/Of, kept exact. Of is positive except in a Share that does
// not apply (UsedByVolume of a period without volumes), where both are 0.
type Share struct {
	// Used is the part used (the numerator).
	Used int64
	// Of is the whole (the denominator).
	Of int64
}

// String renders the share as a percentage with two decimals ("37.50%"), rounded half
// up, or "n/a" when Of is 0.
func (s Share) String() string {
	if s.Of == 0 {
		return "n/a"
	}
	return decimal.NewFromInt(s.Used).Mul(decimal.NewFromInt(100)).
		DivRound(decimal.NewFromInt(s.Of), 2).StringFixed(2) + "%"
}

// Basis names the share a ProRataRefund is computed from.
type Basis string

// The bases of a pro-rata refund.
const (
	BasisTime   Basis = "time"
	BasisVolume Basis = "volume"
)

// ProRata suggests the refund for a refusal at instant at of period p under consumer
// protection law art. 32, less costs (the provider's actual costs, entered by the
// operator, in p.Currency). It is for a person to decide; see ProRataRefund.
//
// The used share is the larger of the share by time and the share by volume, so a
// customer who used 80% of the volume in the first week gets back 20%, and one who used
// nothing for three weeks of four gets back 25%. The unused share of the price is
// rounded down to the minor unit (the fraction of a kopeck stays with the operator),
// then the costs are taken off; the amount is never below zero. A refusal before the
// period (or the grant) starts uses no time; one at or after End uses it all.
//
// Errors (all match ErrInvalid): a zero at, Start or End (ErrMissingTime); End not after
// Start, or more than 290 years after it (ErrBadPeriod); an unknown currency, a negative
// price or one with more decimals than the currency (ErrBadAmount); negative usage
// (ErrBadUsage); negative costs (ErrNegativeCost), costs with too many decimals
// (ErrBadAmount) or above the price (ErrCostAbovePrice).
func ProRata(p Period, at time.Time, costs decimal.Decimal) (ProRataRefund, error) {
	if at.IsZero() || p.Start.IsZero() || p.End.IsZero() {
		return ProRataRefund{}, fmt.Errorf("%w: refusal %v, period %v to %v", ErrMissingTime, at, p.Start, p.End)
	}
	if !p.End.After(p.Start) || p.End.Sub(p.Start) == math.MaxInt64 {
		return ProRataRefund{}, fmt.Errorf("%w: %s to %s", ErrBadPeriod, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
	}
	cur, err := money.Lookup(p.Currency)
	if err != nil {
		return ProRataRefund{}, fmt.Errorf("%w: %w", ErrBadAmount, err)
	}
	if p.Price.IsNegative() {
		return ProRataRefund{}, fmt.Errorf("%w: price %s is negative", ErrBadAmount, p.Price)
	}
	priceMinor, err := cur.ToMinor(p.Price)
	if err != nil {
		return ProRataRefund{}, fmt.Errorf("%w: price: %w", ErrBadAmount, err)
	}
	if costs.IsNegative() {
		return ProRataRefund{}, fmt.Errorf("%w: %s", ErrNegativeCost, costs)
	}
	costsMinor, err := cur.ToMinor(costs)
	if err != nil {
		return ProRataRefund{}, fmt.Errorf("%w: costs: %w", ErrBadAmount, err)
	}
	if costsMinor > priceMinor {
		return ProRataRefund{}, fmt.Errorf("%w: costs %s, price %s", ErrCostAbovePrice,
			cur.Format(costsMinor), cur.Format(priceMinor))
	}
	if _, err := p.used(); err != nil {
		return ProRataRefund{}, err
	}

	byTime := timeShare(p, at)
	byVolume := volumeShare(p.Meters)
	basis, share := BasisTime, byTime
	if byVolume.Of > 0 && greater(byVolume, byTime) {
		basis, share = BasisVolume, byVolume
	}
	unusedMinor := money.ProRata(priceMinor, share.Of-share.Used, share.Of)
	amountMinor := max(unusedMinor-costsMinor, 0)
	return ProRataRefund{
		Currency:     cur.Code,
		Price:        cur.FromMinor(priceMinor),
		UsedByTime:   byTime,
		UsedByVolume: byVolume,
		Basis:        basis,
		Unused:       cur.FromMinor(unusedMinor),
		Costs:        cur.FromMinor(costsMinor),
		Amount:       cur.FromMinor(amountMinor),
		AmountMinor:  amountMinor,
	}, nil
}

// timeShare is the time the customer had access until at, out of the period's length.
// Access runs from the later of Start and GrantedAt; never granted means none.
func timeShare(p Period, at time.Time) Share {
	total := p.End.Sub(p.Start)
	from := p.Start
	if p.GrantedAt.IsZero() {
		from = p.End
	} else if p.GrantedAt.After(from) {
		from = p.GrantedAt
	}
	if at.After(p.End) {
		at = p.End
	}
	used := time.Duration(0)
	if at.After(from) {
		used = at.Sub(from)
	}
	return Share{Used: int64(min(used, total)), Of: int64(total)}
}

// volumeShare is the largest used share of any meter with a volume.
func volumeShare(meters []MeterUsage) Share {
	var best Share
	for _, m := range meters {
		if m.Quantity <= 0 {
			continue
		}
		s := Share{Used: min(m.Used, m.Quantity), Of: m.Quantity}
		if best.Of == 0 || greater(s, best) {
			best = s
		}
	}
	return best
}

// greater reports whether a > b, exactly, for shares with positive Of.
func greater(a, b Share) bool {
	l := new(big.Int).Mul(big.NewInt(a.Used), big.NewInt(b.Of))
	r := new(big.Int).Mul(big.NewInt(b.Used), big.NewInt(a.Of))
	return l.Cmp(r) > 0
}
