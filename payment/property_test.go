package payment_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/payment"
)

// TestChargeProtocolProperties drives the charge protocol of one renewal period, as the engine
// is meant to run it with this package, through random interleavings of duplicate jobs, crashes
// at every step, gateway timeouts (before and after the charge), lost lookups, duplicate and
// out-of-order webhooks and consent withdrawal, against a model gateway that deduplicates by key.
// After every step: at most one successful charge, no charge without consent or after a hard
// decline, no access without a successful charge, and VerifyPeriod holds. At the end, with the
// faults stopped, every charge the gateway holds is recorded: no payment is lost.
func TestChargeProtocolProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		w := &world{t: t, clock: dueAt, method: consented(), gw: map[string]*gwCharge{}}
		t.Repeat(map[string]func(*rapid.T){
			"start job": func(t *rapid.T) { w.jobs = append(w.jobs, &job{}) },
			"advance job": func(t *rapid.T) {
				if len(w.jobs) == 0 {
					t.Skip("no job")
				}
				i := rapid.IntRange(0, len(w.jobs)-1).Draw(t, "job")
				if w.advance(w.jobs[i], true) {
					w.jobs = slices.Delete(w.jobs, i, i+1)
				}
			},
			"crash job": func(t *rapid.T) {
				if len(w.jobs) == 0 {
					t.Skip("no job")
				}
				i := rapid.IntRange(0, len(w.jobs)-1).Draw(t, "job")
				w.jobs = slices.Delete(w.jobs, i, i+1)
			},
			"webhook":         func(t *rapid.T) { w.webhook() },
			"resolve pending": func(t *rapid.T) { w.resolvePending() },
			"withdraw consent": func(t *rapid.T) {
				// Rare, so that most runs get far into dunning before it happens, if it does.
				if w.method.ConsentWithdrawnAt.IsZero() && rapid.IntRange(0, 19).Draw(t, "withdraw") == 0 {
					w.method.ConsentWithdrawnAt = w.clock
				}
			},
			"": func(t *rapid.T) { w.check() },
		})

		// Faults stop: in-flight jobs are lost, the gateway settles what is pending, and jobs run
		// to the end one at a time, as River's retries and the reconciliation job would.
		w.jobs = nil
		for range 20 {
			for _, key := range w.keys() {
				if w.gw[key].res.Outcome == payment.OutcomePending {
					w.gw[key].res.Outcome = rapid.SampledFrom(finalOutcomes).Draw(t, "final outcome")
				}
			}
			j := &job{}
			for !w.advance(j, false) {
			}
			w.check()
		}
		w.checkSettled()
	})
}

var finalOutcomes = []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined}

// world is the engine's database (attempts, method), a model gateway and the jobs in flight.
type world struct {
	t        *rapid.T
	clock    time.Time
	method   payment.PaymentMethodStatus
	attempts []payment.Attempt // committed rows of the period, by Number
	gw       map[string]*gwCharge
	jobs     []*job
	ids      int
}

// gwCharge is what the model gateway holds under one key.
type gwCharge struct {
	res         payment.ChargeResult
	everPending bool
}

// job is one run of the renewal job: load, then charge, then record.
type job struct {
	phase   int // 0 load, 1 charge, 2 record
	attempt payment.Attempt
	res     payment.ChargeResult
	err     error
}

// advance runs the job's next phase and reports whether the job is done. With faults, the
// gateway may time out and lookups may fail.
func (w *world) advance(j *job, faults bool) bool {
	t := w.t
	w.clock = w.clock.Add(time.Minute)
	switch j.phase {
	case 0:
		if len(w.attempts) == 0 {
			a, err := payment.NewAttempt(payment.AttemptSpec{
				ID: w.id(), SubscriptionID: subID, Purpose: payment.PurposeRenewal, PeriodNumber: 7,
				Number: 1, Amount: price, Currency: rub, DueAt: dueAt, IdempotencyKey: keyOf(payment.PurposeRenewal, 1),
			}, w.clock)
			must(t, err)
			w.attempts = append(w.attempts, a) // commit, before any gateway call
			j.attempt, j.phase = a, 1
			return false
		}
		last := w.attempts[len(w.attempts)-1]
		d, err := payment.Decide(last, payment.DefaultDunningSchedule(), w.method, w.clock)
		must(t, err)
		switch d.Action {
		case payment.ActionReconcile, payment.ActionWait:
			a, notFound := w.lookup(last, faults)
			if !notFound {
				return true // settled, still open, or the lookup failed: a later job looks again
			}
			if payment.CanCharge(w.method, w.clock) != nil {
				w.cancel(a)
				return true
			}
			j.attempt, j.phase = a, 1 // the gateway never saw the key: charge it under the same key
			return false
		case payment.ActionRetry:
			next, err := last.Retry(w.id(), keyOf(payment.PurposeRenewal, last.Number+1), w.clock)
			must(t, err)
			if len(w.attempts) >= next.Number {
				return true // the unique constraint: another job made this attempt first
			}
			w.attempts = append(w.attempts, next)
			j.attempt, j.phase = next, 1
			return false
		}
		return true // activate or stop
	case 1:
		req, err := j.attempt.ChargeParams(w.method, payment.ChargeDetails{
			CustomerID: custID, Description: "Pro, 1 month", Receipt: receipt(t),
		}, w.clock)
		switch {
		case errors.Is(err, payment.ErrConsentWithdrawn):
			if a, notFound := w.lookup(w.row(j.attempt.Number), faults); notFound && a.State == payment.StateCreated {
				w.cancel(a)
			}
			return true
		case errors.Is(err, payment.ErrIllegalTransition):
			t.Fatalf("the job's own attempt is created: %v", err)
		}
		must(t, err)
		j.res, j.err = w.charge(req, faults)
		j.phase = 2
		return false
	default:
		a, _, err := w.row(j.attempt.Number).RecordCharge(j.res, j.err, w.clock)
		must(t, err)
		w.commit(a)
		return true
	}
}

// lookup asks the gateway about a's key, commits the answer and reports whether the gateway
// answered ErrNotFound.
func (w *world) lookup(a payment.Attempt, faults bool) (payment.Attempt, bool) {
	var res payment.ChargeResult
	var err error
	switch c, ok := w.gw[a.IdempotencyKey]; {
	case faults && rapid.Bool().Draw(w.t, "lookup fails"):
		err = errTimeout
	case !ok:
		err = fmt.Errorf("model: %w", payment.ErrNotFound)
	default:
		res = c.res
	}
	a, _, recErr := a.RecordLookup(res, err, w.clock)
	must(w.t, recErr)
	w.commit(a)
	return a, errors.Is(err, payment.ErrNotFound)
}

// cancel cancels a created attempt after a Lookup answered ErrNotFound.
func (w *world) cancel(a payment.Attempt) {
	if _, ok := w.gw[a.IdempotencyKey]; ok {
		w.t.Fatalf("cancel of %s which the gateway holds", a.IdempotencyKey)
	}
	a, err := a.Cancel(payment.ErrNotFound, w.clock)
	must(w.t, err)
	w.commit(a)
}

// charge is the model gateway's Charge: deduplicated by key; with faults it may time out before
// the request arrives or after it was processed.
func (w *world) charge(req payment.ChargeParams, faults bool) (payment.ChargeResult, error) {
	t := w.t
	if !w.method.ConsentWithdrawnAt.IsZero() {
		t.Fatalf("charge of %s after consent was withdrawn", req.IdempotencyKey)
	}
	fault := "none"
	if faults {
		fault = rapid.SampledFrom([]string{"none", "none", "lost", "timeout after"}).Draw(t, "fault")
	}
	if fault == "lost" {
		return payment.ChargeResult{}, errTimeout
	}
	c, ok := w.gw[req.IdempotencyKey]
	if !ok {
		for key, other := range w.gw {
			if other.res.Outcome == payment.OutcomeHardDeclined {
				t.Fatalf("charge of %s after %s was hard-declined", req.IdempotencyKey, key)
			}
		}
		o := rapid.SampledFrom([]payment.Outcome{payment.OutcomeSucceeded, payment.OutcomePending, payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined}).Draw(t, "outcome")
		c = &gwCharge{res: payment.ChargeResult{
			Outcome: o, ProviderPaymentID: "pp-" + req.IdempotencyKey, Amount: req.Amount, Currency: req.Currency,
		}, everPending: o == payment.OutcomePending}
		w.gw[req.IdempotencyKey] = c
	}
	if fault == "timeout after" {
		return payment.ChargeResult{}, errTimeout
	}
	return c.res, nil
}

// webhook delivers the state of a random gateway charge, or a stale "pending" for one that was
// pending once.
func (w *world) webhook() {
	keys := w.keys()
	if len(keys) == 0 {
		w.t.Skip("no charge")
	}
	key := rapid.SampledFrom(keys).Draw(w.t, "webhook for")
	c := w.gw[key]
	o := c.res.Outcome
	if c.everPending && rapid.Bool().Draw(w.t, "stale pending") {
		o = payment.OutcomePending
	}
	a := w.rowByKey(key)
	a, _, err := payment.ApplyWebhook(a, payment.WebhookEvent{
		Kind: payment.KindCharge, ProviderPaymentID: c.res.ProviderPaymentID, IdempotencyKey: key,
		Outcome: o, Amount: c.res.Amount, Currency: c.res.Currency, ReceivedAt: w.clock,
	})
	must(w.t, err)
	w.commit(a)
}

// resolvePending settles a random pending gateway charge.
func (w *world) resolvePending() {
	var pending []string
	for _, key := range w.keys() {
		if w.gw[key].res.Outcome == payment.OutcomePending {
			pending = append(pending, key)
		}
	}
	if len(pending) == 0 {
		w.t.Skip("nothing pending")
	}
	key := rapid.SampledFrom(pending).Draw(w.t, "pending")
	w.gw[key].res.Outcome = rapid.SampledFrom(finalOutcomes).Draw(w.t, "resolved to")
}

// check is the invariant after every step.
func (w *world) check() {
	t := w.t
	succeeded := 0
	for _, c := range w.gw {
		if c.res.Outcome == payment.OutcomeSucceeded {
			succeeded++
		}
	}
	if succeeded > 1 {
		t.Fatalf("%d successful charges in one period", succeeded)
	}
	if err := payment.VerifyPeriod(w.attempts); err != nil {
		t.Fatalf("VerifyPeriod: %v", err)
	}
	for _, a := range w.attempts {
		if a.State.Settled() == a.SettledAt.IsZero() {
			t.Fatalf("attempt %d is %s with SettledAt %v", a.Number, a.State, a.SettledAt)
		}
		c, ok := w.gw[a.IdempotencyKey]
		if a.State == payment.StateSucceeded && (!ok || c.res.Outcome != payment.OutcomeSucceeded) {
			t.Fatalf("attempt %d succeeded without a successful charge", a.Number)
		}
	}
}

// checkSettled is the end state: every attempt agrees with the gateway, none is open.
func (w *world) checkSettled() {
	t := w.t
	for _, a := range w.attempts {
		c, ok := w.gw[a.IdempotencyKey]
		switch {
		case !ok && a.State != payment.StateCanceled:
			t.Fatalf("attempt %d is %s but the gateway never saw it", a.Number, a.State)
		case ok && string(a.State) != string(c.res.Outcome):
			t.Fatalf("attempt %d is %s, the gateway says %s: a payment is lost", a.Number, a.State, c.res.Outcome)
		}
	}
	for key := range w.gw {
		w.rowByKey(key) // every charge the gateway holds has its attempt
	}
}

// row returns the committed attempt number n.
func (w *world) row(n int) payment.Attempt { return w.attempts[n-1] }

// rowByKey returns the committed attempt with the key; the row exists before any charge.
func (w *world) rowByKey(key string) payment.Attempt {
	for _, a := range w.attempts {
		if a.IdempotencyKey == key {
			return a
		}
	}
	w.t.Fatalf("the gateway holds %s which no attempt has", key)
	return payment.Attempt{}
}

// commit writes a back to its row.
func (w *world) commit(a payment.Attempt) { w.attempts[a.Number-1] = a }

// keys returns the gateway's keys in order, so that draws are reproducible.
func (w *world) keys() []string {
	keys := make([]string, 0, len(w.gw))
	for k := range w.gw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// id returns a fresh attempt id.
func (w *world) id() string {
	w.ids++
	return fmt.Sprintf("att-%d", w.ids)
}

// must fails the property on an unexpected error.
func must(t *rapid.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}
