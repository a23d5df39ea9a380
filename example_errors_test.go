package billing_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/smm-gpt/billing"
)

// ExampleConfigError shows New refusing a configuration: every bad field is named at once.
func ExampleConfigError() {
	_, err := billing.New(nil, billing.Config{})
	var ce *billing.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(p.Field)
		}
	}
	fmt.Println(errors.Is(err, billing.ErrInvalidConfig))
	// Output:
	// pool
	// Location
	// true
}

// ExampleKindOf maps any error of a command to what it means for the caller, with one
// call: its kind, and the HTTP status to answer with (HTTPStatus). The detail stays in the
// chain for errors.Is and errors.As.
func ExampleKindOf() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 10); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		show := func(what string, err error) {
			fmt.Printf("%-20s %d %s\n", what, billing.HTTPStatus(err), cmp.Or(string(billing.KindOf(err)), "(no error)"))
		}

		_, err = ex.engine.Subscribe(ctx, billing.SubscribeParams{TariffCode: "pro"}) // no customer, no key
		show("missing fields", err)
		var ie *billing.InputError
		if errors.As(err, &ie) {
			fmt.Println("  customer named:", ie.Has("CustomerID"))
		}

		_, err = ex.engine.SubscriptionGet(ctx, "0190c6b2-52f1-7c8e-9a4d-1f2e3d4c5b6a")
		show("unknown subscription", err)

		_, err = ex.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "user-42", TariffCode: "pro",
			PaymentMethod: "tok_other", IdempotencyKey: "checkout-user-42"}) // the checkout's key, another card
		show("key reused", err)
		fmt.Println("  idempotency conflict:", errors.Is(err, billing.ErrIdempotencyConflict))

		_, err = ex.engine.Consume(ctx, id, "generations", 11, "req-1")
		show("over the limit", err)
		fmt.Println("  limit exceeded:", errors.Is(err, billing.ErrLimitExceeded))

		_, err = ex.engine.Consume(ctx, id, "generations", 1, "req-2")
		show("within the limit", err)
	})
	// Output:
	// missing fields       400 invalid_input
	//   customer named: true
	// unknown subscription 404 not_found
	// key reused           409 conflict
	//   idempotency conflict: true
	// over the limit       403 limit_exceeded
	//   limit exceeded: true
	// within the limit     200 (no error)
}
