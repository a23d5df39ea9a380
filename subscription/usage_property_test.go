package subscription_test

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// TestUsageAgainstModel replays random sequences of consume, reserve, commit, release,
// expire and clock steps against the package and against a plain in-memory model, and
// requires after every step: the same accept/refuse answer, the same counters, hard
// limits never passed (Used + Reserved ≤ Limit), each reservation resolved at most once.
func TestUsageAgainstModel(t *testing.T) {
	t.Parallel()
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft limits %t", soft), func(t *testing.T) {
			t.Parallel()
			var failure error
			cfg := &quick.Config{MaxCount: 400, Rand: rand.New(rand.NewSource(20260115))}
			err := quick.Check(func(s script) bool {
				failure = s.run(soft)
				return failure == nil
			}, cfg)
			require.NoError(t, failure)
			require.NoError(t, err)
		})
	}
}

type opKind int

const (
	opConsume opKind = iota
	opReserve
	opCommit
	opRelease
	opExpire
	opAdvance
	opKinds
)

func (k opKind) String() string {
	return [...]string{"consume", "reserve", "commit", "release", "expire", "advance"}[k]
}

// op is one step: Meter indexes modelMeters (the last is unknown to the terms), Target
// picks a reservation made earlier, Qty is a quantity or the actual of a commit.
type op struct {
	Kind   opKind
	Meter  int
	Qty    int64
	Target int
	Step   time.Duration // TTL of a reservation, or clock advance
}

func (o op) String() string {
	return fmt.Sprintf("%s(meter=%d qty=%d target=%d step=%s)", o.Kind, o.Meter, o.Qty, o.Target, o.Step)
}

type script []op

var modelMeters = []string{"generations", "images", "videos"}

// Generate makes up to 150 steps with small quantities, so limits are hit often.
func (script) Generate(r *rand.Rand, _ int) reflect.Value {
	s := make(script, 1+r.Intn(150))
	for i := range s {
		s[i] = op{
			Kind:   opKind(r.Intn(int(opKinds))),
			Meter:  r.Intn(len(modelMeters)),
			Qty:    int64(r.Intn(14)) - 1, // -1..12
			Target: r.Intn(1 << 16),
			Step:   time.Duration(r.Intn(6)) * time.Minute,
		}
	}
	return reflect.ValueOf(s)
}

type modelReservation struct {
	meter     string
	qty       int64
	expiresAt time.Time
	open      bool
}

// run replays s and returns the first difference from the model.
func (s script) run(soft bool) error {
	terms := tariff.Terms{Code: "pro", Version: 1, Limits: []tariff.Limit{
		{Meter: "generations", Quantity: 25}, {Meter: "images", Quantity: 10}}}
	terms.Options.SoftLimits = soft
	limits := map[string]int64{"generations": 25, "images": 10}
	used, reserved := map[string]int64{}, map[string]int64{}
	var model []modelReservation

	p := subscription.Period{Number: 1, Terms: terms, Start: start, End: end, GrantedAt: start}
	var reservations []subscription.Reservation
	now := start

	fits := func(meter string, qty int64) bool {
		limit, known := limits[meter]
		return known && qty >= 1 && (soft || used[meter]+reserved[meter]+qty <= limit)
	}
	for i, o := range s {
		var err error
		var want bool
		meter := modelMeters[o.Meter]
		switch o.Kind {
		case opConsume:
			want = fits(meter, o.Qty)
			var np subscription.Period
			if np, err = subscription.Consume(p, meter, o.Qty); err == nil {
				p = np
				used[meter] += o.Qty
			}
		case opReserve:
			want = fits(meter, o.Qty)
			ttl := o.Step + time.Minute
			np, r, rerr := subscription.Reserve(p, subscription.ReserveParams{
				ID: fmt.Sprint("r", i), Meter: meter, Quantity: o.Qty, TTL: ttl}, now)
			if err = rerr; err == nil {
				p = np
				reserved[meter] += o.Qty
				reservations = append(reservations, r)
				model = append(model, modelReservation{meter: meter, qty: o.Qty, expiresAt: now.Add(ttl), open: true})
			}
		case opCommit, opRelease, opExpire:
			if len(model) == 0 {
				continue
			}
			k := o.Target % len(model)
			m := &model[k]
			var np subscription.Period
			var nr subscription.Reservation
			switch o.Kind {
			case opCommit:
				want = m.open && now.Before(m.expiresAt) && o.Qty >= 0 && o.Qty <= m.qty
				np, nr, err = subscription.Commit(p, reservations[k], o.Qty, now)
			case opRelease:
				want = m.open
				np, nr, err = subscription.Release(p, reservations[k], now)
			default:
				want = m.open && !now.Before(m.expiresAt)
				np, nr, err = subscription.Expire(p, reservations[k], now)
			}
			if !m.open && !errors.Is(err, subscription.ErrReservationResolved) {
				return fmt.Errorf("step %d %v: resolved twice: %v", i, o, err)
			}
			if err == nil {
				p, reservations[k] = np, nr
				m.open = false
				reserved[m.meter] -= m.qty
				if o.Kind == opCommit {
					used[m.meter] += o.Qty
				}
			}
		case opAdvance:
			now = now.Add(o.Step)
			continue
		}
		if want != (err == nil) {
			return fmt.Errorf("step %d %v: model says ok=%t, package says %v", i, o, want, err)
		}
		for _, l := range terms.Limits {
			got, wantUsage := p.Usage[l.Meter], subscription.Usage{Used: used[l.Meter], Reserved: reserved[l.Meter]}
			if got != wantUsage {
				return fmt.Errorf("step %d %v: %s counters %+v, model %+v", i, o, l.Meter, got, wantUsage)
			}
			if !soft && got.Used+got.Reserved > l.Quantity {
				return fmt.Errorf("step %d %v: %s passed its hard limit %d: %+v", i, o, l.Meter, l.Quantity, got)
			}
		}
		if want := !soft && (used["generations"] >= 25 || used["images"] >= 10); subscription.ShouldExhaust(p) != want {
			return fmt.Errorf("step %d %v: ShouldExhaust=%t, model %t", i, o, !want, want)
		}
		if _, ok := p.Usage["videos"]; ok {
			return fmt.Errorf("step %d %v: a meter without a limit was counted", i, o)
		}
	}
	return nil
}
