package subscription

import (
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/smm-gpt/billing/tariff"
)

// The functions below count usage in one Period. They do not ask whether the
// subscription gives access: the caller checks Access(sub, now) first (ErrNoAccess), then
// calls one of them on sub.Current, and calls Exhaust when ShouldExhaust becomes true, all
// in one transaction. Each returns a new Period (its Usage map copied) and leaves its
// argument untouched; on error it returns the argument unchanged.
//
// For a hard limit (the default, tariff.Options.SoftLimits false) every function keeps
// Used + Reserved ≤ Limit.Quantity. With soft limits the counters may pass the quantity:
// it is only reported (ShouldExhaust stays false).

// CanConsume reports whether quantity of meter may be consumed or reserved in p now: nil,
// or a *ValidationError with ErrMeterUnknown (no limit for the meter in p.Terms) or
// ErrInvalidQuantity (quantity ≤ 0, or a counter would overflow), or a *LimitError
// (ErrLimitExceeded) when a hard limit would be passed: Used + Reserved + quantity >
// Limit.Quantity. The request is judged whole: it fits entirely or is refused.
func CanConsume(p Period, meter string, quantity int64) error {
	_, err := afterAdding(p, meter, quantity)
	return err
}

// Consume counts quantity of meter as used in p, all or nothing, with the checks of
// CanConsume. The caller calls Exhaust if ShouldExhaust(result) becomes true.
func Consume(p Period, meter string, quantity int64) (Period, error) {
	u, err := afterAdding(p, meter, quantity)
	if err != nil {
		return p, err
	}
	u.Used += quantity
	return p.withUsage(meter, u), nil
}

// ShouldExhaust reports whether a hard limit of p is used up: some meter's Used has
// reached its Limit.Quantity (TERMS 3.1). Reserved volume does not count: an open
// reservation may still be released. Always false with soft limits.
func ShouldExhaust(p Period) bool {
	return len(usedUpMeters(p)) > 0
}

// ReservationState is where a reservation is in its life. The values are stored.
type ReservationState string

// The reservation states. Open is the only one that can change; each of the others is
// reached at most once and is final.
const (
	// ReservationOpen holds its Quantity against the limit.
	ReservationOpen ReservationState = "open"
	// ReservationCommitted moved Actual to Used and freed the rest.
	ReservationCommitted ReservationState = "committed"
	// ReservationReleased freed everything; nothing was used.
	ReservationReleased ReservationState = "released"
	// ReservationExpired was left alone past its ExpiresAt; everything was freed.
	ReservationExpired ReservationState = "expired"
)

// DefaultReservationTTL is the TTL Reserve uses when ReserveParams.TTL is zero.
const DefaultReservationTTL = 10 * time.Minute

// Reservation holds volume of one meter in one period for a call whose cost is known
// only afterwards (an AI generation). It resolves at most once: Commit, Release or
// Expire.
type Reservation struct {
	// ID identifies the reservation; the engine makes it.
	ID string
	// Period is the Number of the period the volume is held in. It is resolved there,
	// even after a renewal started a new one.
	Period int
	// Meter is the meter held.
	Meter string
	// Quantity is the volume held while open.
	Quantity int64
	// Actual is the volume Commit moved to Used; 0 otherwise.
	Actual int64
	// State is open until resolved.
	State ReservationState
	// CreatedAt is when Reserve made it.
	CreatedAt time.Time
	// ExpiresAt is when it lapses: from then on only Expire can resolve it (Commit is
	// refused with ErrReservationExpired). Choose a TTL longer than the slowest call.
	ExpiresAt time.Time
	// ResolvedAt is when it was committed, released or expired; zero while open.
	ResolvedAt time.Time
}

// ReserveParams are the inputs of Reserve.
type ReserveParams struct {
	// ID is the new reservation's ID, made by the engine. Required.
	ID string
	// Meter is the meter to hold; it must have a limit in the period's terms.
	Meter string
	// Quantity is the volume to hold, at least 1: the most the call may cost.
	Quantity int64
	// TTL is how long the reservation holds before it may be expired. Zero means
	// DefaultReservationTTL; negative is refused.
	TTL time.Duration
}

// Reserve holds rp.Quantity of rp.Meter in p until Commit, Release or Expire, with the
// checks of CanConsume: held volume counts against a hard limit as used volume does, so
// concurrent calls can never together pass it.
func Reserve(p Period, rp ReserveParams, now time.Time) (Period, Reservation, error) {
	ttl := rp.TTL
	if ttl == 0 {
		ttl = DefaultReservationTTL
	}
	if err := firstError(checkNow(now), checkText("id", rp.ID)); err != nil {
		return p, Reservation{}, err
	}
	if ttl < 0 {
		return p, Reservation{}, invalid("ttl", "must not be negative")
	}
	u, err := afterAdding(p, rp.Meter, rp.Quantity)
	if err != nil {
		return p, Reservation{}, err
	}
	u.Reserved += rp.Quantity
	r := Reservation{
		ID: rp.ID, Period: p.Number, Meter: rp.Meter, Quantity: rp.Quantity,
		State: ReservationOpen, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	return p.withUsage(rp.Meter, u), r, nil
}

// Commit settles an open reservation for the actual volume used, 0 ≤ actual ≤
// r.Quantity (else ErrInvalidQuantity): actual moves to Used, the rest is freed. It is
// refused with ErrReservationResolved when r is no longer open, ErrReservationExpired at
// or after r.ExpiresAt, and ErrReservationMismatch when p is not r's period. The caller
// calls Exhaust if ShouldExhaust(result) becomes true.
func Commit(p Period, r Reservation, actual int64, now time.Time) (Period, Reservation, error) {
	u, err := resolving(p, r, now)
	if err == nil && !now.Before(r.ExpiresAt) {
		err = fmt.Errorf("%w: reservation %s expired at %s", ErrReservationExpired, r.ID, r.ExpiresAt.Format(time.RFC3339))
	}
	if err == nil && (actual < 0 || actual > r.Quantity) {
		err = &ValidationError{Field: "actual", Cause: ErrInvalidQuantity,
			Problem: fmt.Sprintf("%d is outside 0..%d, the reserved quantity", actual, r.Quantity)}
	}
	if err != nil {
		return p, r, err
	}
	if _, ok := add(u.Used, actual); !ok {
		return p, r, &ValidationError{Field: "actual", Cause: ErrInvalidQuantity, Problem: "used counter would overflow"}
	}
	u.Reserved -= r.Quantity
	u.Used += actual
	r.State, r.Actual, r.ResolvedAt = ReservationCommitted, actual, now
	return p.withUsage(r.Meter, u), r, nil
}

// Release frees all of an open reservation: the call was not made or cost nothing. It
// is accepted even past ExpiresAt while r is still open, since it frees what Expire
// would. Refused with ErrReservationResolved or ErrReservationMismatch as Commit is.
func Release(p Period, r Reservation, now time.Time) (Period, Reservation, error) {
	return free(p, r, ReservationReleased, now)
}

// Expire frees all of an open reservation left alone past its ExpiresAt; the sweeper
// calls it. Before ExpiresAt it returns ErrReservationNotExpired, so an early sweep never
// takes volume from a call in flight. Refused with ErrReservationResolved or
// ErrReservationMismatch as Commit is.
func Expire(p Period, r Reservation, now time.Time) (Period, Reservation, error) {
	if r.State == ReservationOpen && now.Before(r.ExpiresAt) {
		return p, r, fmt.Errorf("%w: reservation %s expires at %s", ErrReservationNotExpired, r.ID, r.ExpiresAt.Format(time.RFC3339))
	}
	return free(p, r, ReservationExpired, now)
}

// free resolves r to state to, giving back all its volume.
func free(p Period, r Reservation, to ReservationState, now time.Time) (Period, Reservation, error) {
	u, err := resolving(p, r, now)
	if err != nil {
		return p, r, err
	}
	u.Reserved -= r.Quantity
	r.State, r.ResolvedAt = to, now
	return p.withUsage(r.Meter, u), r, nil
}

// resolving checks that r is open, belongs to p and is held in p's counters, and returns
// the counters of its meter.
func resolving(p Period, r Reservation, now time.Time) (Usage, error) {
	if err := checkNow(now); err != nil {
		return Usage{}, err
	}
	if r.State != ReservationOpen {
		return Usage{}, fmt.Errorf("%w: reservation %s is %s", ErrReservationResolved, r.ID, r.State)
	}
	if _, ok := limitOf(p, r.Meter); !ok || r.Period != p.Number {
		return Usage{}, fmt.Errorf("%w: reservation %s of %s in period %d, resolved in period %d",
			ErrReservationMismatch, r.ID, r.Meter, r.Period, p.Number)
	}
	u := p.Usage[r.Meter]
	if r.Quantity < 1 || u.Reserved < r.Quantity {
		return Usage{}, fmt.Errorf("%w: reservation %s holds %d of %s, the period holds %d reserved",
			ErrReservationMismatch, r.ID, r.Quantity, r.Meter, u.Reserved)
	}
	return u, nil
}

// afterAdding returns the counters of meter in p if quantity may be added to them, or the
// reason it may not (see CanConsume).
func afterAdding(p Period, meter string, quantity int64) (Usage, error) {
	l, ok := limitOf(p, meter)
	if !ok {
		return Usage{}, &ValidationError{Field: "meter", Cause: ErrMeterUnknown,
			Problem: fmt.Sprintf("%q has no limit in tariff %s v%d", meter, p.Terms.Code, p.Terms.Version)}
	}
	if quantity < 1 {
		return Usage{}, &ValidationError{Field: "quantity", Cause: ErrInvalidQuantity,
			Problem: fmt.Sprintf("%d: must be at least 1", quantity)}
	}
	u := p.Usage[meter]
	if u.Used < 0 || u.Reserved < 0 {
		return Usage{}, invalid("usage", fmt.Sprintf("negative counters for %q: %+v", meter, u))
	}
	held, ok := add(u.Used, u.Reserved)
	if ok && !p.Terms.Options.SoftLimits {
		if quantity > l.Quantity-held {
			return Usage{}, &LimitError{Meter: meter, Limit: l.Quantity, Used: u.Used, Reserved: u.Reserved, Requested: quantity}
		}
		return u, nil
	}
	if _, fits := add(held, quantity); !ok || !fits {
		return Usage{}, &ValidationError{Field: "quantity", Cause: ErrInvalidQuantity,
			Problem: fmt.Sprintf("%d would overflow the counters of %q", quantity, meter)}
	}
	return u, nil
}

// withUsage returns p with meter's counters set to u, on a copy of the Usage map.
func (p Period) withUsage(meter string, u Usage) Period {
	usage := maps.Clone(p.Usage)
	if usage == nil {
		usage = make(map[string]Usage, 1)
	}
	usage[meter] = u
	p.Usage = usage
	return p
}

// limitOf returns the limit of meter in p's terms.
func limitOf(p Period, meter string) (tariff.Limit, bool) {
	for _, l := range p.Terms.Limits {
		if l.Meter == meter {
			return l, true
		}
	}
	return tariff.Limit{}, false
}

// usedUpMeters lists the meters of p whose hard limit is used up, in the terms' order.
func usedUpMeters(p Period) []string {
	if p.Terms.Options.SoftLimits {
		return nil
	}
	var meters []string
	for _, l := range p.Terms.Limits {
		if p.Usage[l.Meter].Used >= l.Quantity {
			meters = append(meters, l.Meter)
		}
	}
	return meters
}

// add returns a+b for non-negative a and b, and false if the sum overflows.
func add(a, b int64) (int64, bool) {
	if a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}
