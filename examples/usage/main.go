// Command usage shows how a host meters a slow AI call whose cost is known only afterwards,
// on the real engine: PostgreSQL from DATABASE_URL, real River workers, a test clock, and the
// fake payment gateway of billingtest.
//
// The pattern, around every call:
//
//	r, err := engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: id, Meter: "generations",
//		Quantity: mostItMayCost, TTL: 2 * time.Minute, IdempotencyKey: requestID})
//	// errors.Is(err, billing.ErrLimitExceeded) or billing.ErrNoAccess: do not make the call
//	result, callErr := callTheModel(ctx, ...)
//	if callErr != nil {
//		engine.Release(ctx, r.ID) // the call failed: the volume goes back
//	} else {
//		engine.Commit(ctx, r.ID, result.ActualCost) // at most the reserved quantity
//	}
//
// A reservation counts against the limit like used volume (TERMS 3.1), so concurrent calls can
// never together pass it. One left alone (the process died mid-call) expires after its TTL
// through a River job and frees its volume.
//
// Its output is deterministic (fixed clock, no IDs), and a test compares it with
// testdata/golden.txt. Run it with `./scripts/pg-tmp.sh go run ./examples/usage`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "usage:", err)
		os.Exit(1)
	}
}

// meter is what the tariff limits: images generated.
const meter = "generations"

// demo holds what the story works with.
type demo struct {
	out    io.Writer
	engine *billing.Engine
	clock  *billingtest.Clock
	runner *billingtest.Runner
	moscow *time.Location
	sub    string // the subscription's ID
}

func run(ctx context.Context, url string, out io.Writer) error {
	if url == "" {
		return errors.New("DATABASE_URL is not set; run it under ./scripts/pg-tmp.sh, which starts a throwaway PostgreSQL")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return err
	}
	d := &demo{out: out, moscow: moscow}
	cfg := billing.DefaultConfig()
	h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 4, 1, 9, 0, 0, 0, moscow), cfg)
	if err != nil {
		return err
	}
	defer h.Stop() //nolint:errcheck // the story is over; a slow stop changes nothing
	d.engine, d.clock, d.runner = h.Engine, h.Clock, h.Runner
	return d.story(ctx)
}

func (d *demo) story(ctx context.Context) error {
	e := d.engine
	d.say("== Metering slow AI calls with reservations, clock starts %s Moscow time", d.day(d.clock.Now()))
	if _, err := e.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: "starter", Name: "Starter",
		Price: decimal.NewFromInt(490), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: meter, Quantity: 100}}}); err != nil {
		return err
	}
	sub, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "anna", TariffCode: "starter",
		PaymentMethod: "tok_anna", IdempotencyKey: "checkout-anna"})
	if err != nil {
		return err
	}
	if _, err := e.ChargeFirstPayment(ctx, sub.ID); err != nil {
		return err
	}
	d.sub = sub.ID
	d.say("anna pays 490.00 RUB for a month of 100 generations")
	d.usage(ctx)

	d.say("\n-- 1. Reserve before a slow call, Commit what it actually cost")
	if err := d.generate(ctx, "call-1", 10, 7, nil); err != nil {
		return err
	}

	d.say("\n-- 2. The call fails: Release gives the volume back")
	if err := d.generate(ctx, "call-2", 10, 0, errors.New("model timed out")); err != nil {
		return err
	}

	d.say("\n-- 3. Nobody comes back: the reservation expires after its TTL")
	r, err := e.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: 20,
		TTL: 5 * time.Minute, IdempotencyKey: "call-3"})
	if err != nil {
		return err
	}
	d.say("%s reserve 20 for 5 minutes, then the worker process dies mid-call", d.at())
	d.usage(ctx)
	if _, err := d.runner.RunUntil(ctx, r.ExpiresAt.Add(time.Second)); err != nil {
		return err
	}
	d.say("%s River's expiry job has run", d.at())
	d.usage(ctx)
	_, err = e.ReservationCommit(ctx, r.ID, 20)
	d.say("a late Commit: %s", errorName(err))

	d.say("\n-- 4. The limit refuses a reservation that does not fit (TERMS 3.1)")
	if _, err := e.Consume(ctx, d.sub, meter, 80, "batch-1"); err != nil {
		return err
	}
	d.say("%s consume 80 at once (a batch job)", d.at())
	d.usage(ctx)
	_, err = e.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: 20, IdempotencyKey: "call-4"})
	d.say("reserve 20: %s", errorName(err))
	held, err := e.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: 13, IdempotencyKey: "call-5"})
	if err != nil {
		return err
	}
	d.say("reserve 13: granted, the rest of the volume is held")
	_, err = e.Consume(ctx, d.sub, meter, 1, "one-more")
	d.say("while it is held, consume 1: %s", errorName(err))
	if _, err := e.ReservationCommit(ctx, held.ID, 5); err != nil {
		return err
	}
	d.say("commit 5 of the 13: the other 8 come back")
	d.usage(ctx)

	d.say("\n-- 5. Eight calls at once, 8 left: the database lets exactly the ones that fit through")
	var wg sync.WaitGroup
	results := make([]error, 8)
	held3 := make([]subscription.Reservation, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held3[i], results[i] = e.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: 3,
				IdempotencyKey: fmt.Sprintf("burst-%d", i)})
		}()
	}
	wg.Wait()
	granted, refused := 0, 0
	for _, err := range results {
		switch {
		case err == nil:
			granted++
		case errors.Is(err, billing.ErrLimitExceeded):
			refused++
		default:
			return err
		}
	}
	d.say("8 × reserve 3: %d granted, %d refused with ErrLimitExceeded", granted, refused)
	d.usage(ctx)

	d.say("\n-- 6. The volume is used up: access ends before the month does (TERMS 3.1, whichever first)")
	for i, r := range held3 {
		if results[i] == nil {
			if _, err := e.ReservationCommit(ctx, r.ID, 3); err != nil {
				return err
			}
		}
	}
	if _, err := e.Consume(ctx, d.sub, meter, 2, "last-two"); err != nil {
		return err
	}
	d.say("commit both in full, consume the last 2")
	d.usage(ctx)
	_, err = e.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: 1, IdempotencyKey: "call-6"})
	d.say("reserve 1: %s", errorName(err))
	return nil
}

// generate is the host's handler around one AI call: reserve the most it may cost, make the
// call (slow: the clock moves 40 seconds), then commit the actual cost or release on failure.
func (d *demo) generate(ctx context.Context, key string, most, actual int64, callErr error) error {
	r, err := d.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: d.sub, Meter: meter, Quantity: most,
		TTL: 2 * time.Minute, IdempotencyKey: key})
	if err != nil {
		return err
	}
	d.say("%s reserve %d (the most the call may cost), TTL 2 minutes", d.at(), most)
	d.usage(ctx)
	d.clock.Advance(40 * time.Second) // the model works
	if callErr != nil {
		if _, err := d.engine.ReservationRelease(ctx, r.ID); err != nil {
			return err
		}
		d.say("%s the call fails (%v): release", d.at(), callErr)
	} else {
		if _, err := d.engine.ReservationCommit(ctx, r.ID, actual); err != nil {
			return err
		}
		d.say("%s the call returns %d images: commit %d", d.at(), actual, actual)
	}
	d.usage(ctx)
	return nil
}

// usage prints the meter's counters in the current period and whether access is granted.
func (d *demo) usage(ctx context.Context) {
	sub, err := d.engine.SubscriptionGet(ctx, d.sub)
	if err != nil {
		d.say("get: %v", err)
		return
	}
	u := sub.Current.Usage[meter]
	l, _ := sub.Current.Terms.Limit(meter)
	d.say("         used %3d  reserved %2d  left %3d of %d  (status %s)", u.Used, u.Reserved, l.Quantity-u.Used-u.Reserved, l.Quantity, sub.Status)
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) day(t time.Time) string { return t.In(d.moscow).Format("Mon 02 Jan 2006 15:04") }

func (d *demo) at() string { return d.clock.Now().In(d.moscow).Format("15:04:05") }

// errorName names the engine's sentinel an error matches.
func errorName(err error) string {
	var na *billing.NoAccessError
	switch {
	case err == nil:
		return "granted"
	case errors.As(err, &na):
		return fmt.Sprintf("refused with ErrNoAccess (%s)", na.Reason)
	case errors.Is(err, billing.ErrLimitExceeded):
		return "refused with ErrLimitExceeded"
	case errors.Is(err, subscription.ErrReservationExpired):
		return "refused with subscription.ErrReservationExpired"
	case errors.Is(err, subscription.ErrReservationResolved):
		return "refused with subscription.ErrReservationResolved (the job expired it)"
	}
	return err.Error()
}
