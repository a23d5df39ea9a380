package billing_test

import (
	"context"
	"fmt"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
)

// ExampleEngine_ExecuteAccountDeletion deletes an account on request (TERMS 2.2.4): the
// request is recorded with its deadline, 10 business days on the production calendar;
// executing it ends the customer's subscriptions at once and forgets their saved card token,
// and the renewal already queued charges nothing. The paid period is not refunded by it.
func ExampleEngine_ExecuteAccountDeletion() {
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

		req, err := ex.engine.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: "user-42",
			ReceivedAt: ex.clock.Now(), Channel: refund.ChannelProfile, IdempotencyKey: "delete-user-42"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// 10 business days after Mon 2 Mar, the holiday on Mon 9 Mar not counted: 24:00 of Tue 17 Mar.
		fmt.Println("delete by:", req.Deadline.In(ex.moscow).Format("Mon 2 Jan 15:04"))

		done, err := ex.engine.ExecuteAccountDeletion(ctx, req.ID, "operator:olga")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(done.State, done.DoneBy)
		d, err := ex.engine.Access(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("access:", d.Granted, d.Reason)

		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 2, 0)); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("renewal charges:", len(ex.gateway.ChargesFor(id, 2)))
	})
	// Output:
	// delete by: Wed 18 Mar 00:00
	// done operator:olga
	// access: false terminated
	// renewal charges: 0
}
