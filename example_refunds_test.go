package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
)

// ExampleEngine_RequestRefund records a refund request, decides it under TERMS 3.7, and pays
// it back through the gateway within the 3.8 deadline.
func ExampleEngine_RequestRefund() {
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
		ex.clock.Advance(2 * 24 * time.Hour) // the customer writes on day 3, nothing used

		req, err := ex.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: id,
			ReceivedAt: ex.clock.Now(), Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "mail-1881"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// The window ends at 24:00 of the 5th working day after the grant on Mon 2 Mar (the
		// holiday on Mon 9 Mar does not count); the payout deadline is 10 calendar days after
		// the request, moved past the weekend to 24:00 of Mon 16 Mar (Civil Code art. 193).
		fmt.Println("eligible:", req.Eligible)
		fmt.Println("window ends:", req.WindowEndsAt.In(ex.moscow).Format("Mon 2 Jan 15:04"))
		fmt.Println("pay by:", req.PayoutDeadline.In(ex.moscow).Format("Mon 2 Jan 15:04"))

		if _, err := ex.engine.VerifyRefund(ctx, req.ID, "operator:olga"); err != nil {
			fmt.Println(err)
			return
		}
		done, err := ex.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "operator:olga"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(done.State, done.AmountMinor, done.Currency)
		d, err := ex.engine.Access(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("access:", d.Granted, d.Reason)
	})
	// Output:
	// eligible: true
	// window ends: Wed 11 Mar 00:00
	// pay by: Tue 17 Mar 00:00
	// refunded 99000 RUB
	// access: false refunded
}
