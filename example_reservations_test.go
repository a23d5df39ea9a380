package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/smm-gpt/billing"
)

// ExampleEngine_Reserve holds volume before a slow AI call and settles it afterwards: ReservationCommit
// the actual cost (at most the reserved quantity), or ReservationRelease when the call failed.
func ExampleEngine_Reserve() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 100); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}

		r, err := ex.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: id, Meter: "generations",
			Quantity: 10, TTL: 2 * time.Minute, IdempotencyKey: "call-1"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.State, r.Quantity, "until", r.ExpiresAt.In(ex.moscow).Format("15:04"))
		// ... the call to the model returns 7 images ...
		r, err = ex.engine.ReservationCommit(ctx, r.ID, 7)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.State, r.Actual)

		r, err = ex.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: id, Meter: "generations",
			Quantity: 10, IdempotencyKey: "call-2"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// ... the call fails ...
		r, err = ex.engine.ReservationRelease(ctx, r.ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.State)

		sub, err := ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		u := sub.Current.Usage["generations"]
		fmt.Println("used", u.Used, "reserved", u.Reserved)
	})
	// Output:
	// open 10 until 10:02
	// committed 7
	// released
	// used 7 reserved 0
}

// ExampleEngine_Reserve_expiry shows a reservation nobody settles: River's job expires it
// at the end of its TTL and gives the volume back, as if ReservationRelease had been called.
func ExampleEngine_Reserve_expiry() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 100); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		r, err := ex.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: id, Meter: "generations",
			Quantity: 30, TTL: 5 * time.Minute, IdempotencyKey: "call-1"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// ... the worker that made the call crashed ...
		if _, err := ex.runner.RunUntil(ctx, r.ExpiresAt.Add(time.Minute)); err != nil {
			fmt.Println(err)
			return
		}
		sub, err := ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		u := sub.Current.Usage["generations"]
		fmt.Println("used", u.Used, "reserved", u.Reserved)
	})
	// Output:
	// used 0 reserved 0
}
