package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
)

// ExampleEngine_Periods lists a subscription's paid periods, each with the terms it was
// paid under and the charge that paid it.
func ExampleEngine_PeriodList() {
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
		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 1, 1)); err != nil { // the renewal runs
			fmt.Println(err)
			return
		}
		periods, err := ex.engine.PeriodList(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, p := range periods {
			fmt.Printf("period %d %s → %s at %s %s, current %t",
				p.Period.Number, p.Period.Start.In(ex.moscow).Format("2 Jan"), p.Period.End.In(ex.moscow).Format("2 Jan"),
				p.Period.Terms.Price.StringFixed(2), p.Period.Terms.Currency, p.Current)
			if p.Charge != nil {
				fmt.Printf(", paid %d %s", p.Charge.Amount, p.Charge.Currency)
			}
			fmt.Println()
		}
	})
	// Output:
	// period 1 2 Mar → 2 Apr at 990.00 RUB, current false, paid 99000 RUB
	// period 2 2 Apr → 2 May at 990.00 RUB, current true, paid 99000 RUB
}

// ExampleEngine_Subscriptions walks the subscriptions a page at a time: each page's Next is
// the following page's After, until it is empty.
func ExampleEngine_SubscriptionList() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		for _, customer := range []string{"anna", "boris", "vera"} {
			if _, err := ex.checkout(ctx, customer); err != nil {
				fmt.Println(err)
				return
			}
		}
		params := billing.SubscriptionListParams{Status: subscription.StatusActive, Limit: 2}
		for page := 1; ; page++ {
			p, err := ex.engine.SubscriptionList(ctx, params)
			if err != nil {
				fmt.Println(err)
				return
			}
			for _, s := range p.Subscriptions {
				fmt.Println("page", page, s.CustomerID, s.Status)
			}
			if p.Next == "" {
				break
			}
			params.After = p.Next
		}
	})
	// Output:
	// page 1 anna active
	// page 1 boris active
	// page 2 vera active
}

// ExampleEngine_AttemptHistory tells the story of one charge attempt, for support: what the
// engine asked the provider and what it answered.
func ExampleEngine_AttemptHistoryGet() {
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
		attempts, err := ex.engine.AttemptList(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		h, err := ex.engine.AttemptHistoryGet(ctx, attempts[0].ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range h.Entries {
			fmt.Println(e.At.In(ex.moscow).Format(time.TimeOnly), e.Source, e.Action)
		}
	})
	// Output:
	// 10:00:00 record attempt.created
	// 10:00:00 record attempt.sent
	// 10:00:00 record attempt.succeeded
	// 10:00:00 ledger ledger.payment
}
