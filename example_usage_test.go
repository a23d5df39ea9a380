package billing_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
)

// ExampleEngine_Consume counts usage all or nothing: a retry with the same key counts once,
// a request that would pass the limit is refused whole, and using the volume up ends access
// before the period does (TERMS 3.1).
func ExampleEngine_Consume() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}

		r, err := ex.engine.Consume(ctx, id, "generations", 200, "req-1")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("used", r.Used, "of", r.Limit)
		r, err = ex.engine.Consume(ctx, id, "generations", 200, "req-1") // a retry
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("used", r.Used, "replayed", r.Replayed)

		_, err = ex.engine.Consume(ctx, id, "generations", 400, "req-2")
		fmt.Println("over the limit:", errors.Is(err, billing.ErrLimitExceeded))

		r, err = ex.engine.Consume(ctx, id, "generations", 300, "req-3")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("used", r.Used, "exhausted", r.Exhausted)

		_, err = ex.engine.Consume(ctx, id, "generations", 1, "req-4")
		var na *subscription.NoAccessError
		if errors.As(err, &na) {
			fmt.Println("no access:", na.Reason)
		}
	})
	// Output:
	// used 200 of 500
	// used 200 replayed true
	// over the limit: true
	// used 500 exhausted true
	// no access: used_up
}
