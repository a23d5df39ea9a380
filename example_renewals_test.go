package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/tariff"
)

// ExampleEngine_RegisterWorkers shows the engine's River jobs at work: at the period end the
// renewal job charges the saved card for the next period (TERMS 3.5), at the tariff's
// current price; the paid period kept its own (TERMS 2.1.6).
func ExampleEngine_RegisterWorkers() {
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
		sub, err := ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}

		ex.clock.Advance(10 * 24 * time.Hour) // no job falls due in these 10 days
		_, err = ex.engine.Tariffs().Publish(ctx, "operator:olga", tariff.Spec{Code: "pro", Name: "Pro",
			Price: decimal.NewFromInt(1290), Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
		if err != nil {
			fmt.Println(err)
			return
		}
		// The runner moves the test clock to each job's scheduled instant and lets the real
		// workers run it; in production River runs them on the wall clock.
		if _, err := ex.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour)); err != nil {
			fmt.Println(err)
			return
		}
		attempts, err := ex.engine.AttemptList(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, a := range attempts {
			fmt.Println("period", a.PeriodNumber, a.Purpose, a.State, a.Amount, a.Currency)
		}
		sub, err = ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "period", sub.Current.Number, "until", sub.Current.End.In(ex.moscow).Format("2 Jan 2006"))
	})
	// Output:
	// period 1 checkout succeeded 99000 RUB
	// period 2 renewal succeeded 129000 RUB
	// active period 2 until 2 May 2026
}

// ExampleEngine_RegisterWorkers_declined shows dunning: the renewal charge is declined,
// the subscription goes past due with no access, and the retry River schedules succeeds
// and renews it.
func ExampleEngine_RegisterWorkers_declined() {
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
		sub, err := ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		// The card has no money at the period end; the next charge goes through.
		ex.gateway.Script("tok_user-42", billingtest.SoftDecline)
		if _, err := ex.runner.RunUntil(ctx, sub.Current.End.Add(time.Minute)); err != nil {
			fmt.Println(err)
			return
		}
		sub, err = ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "period", sub.Current.Number)

		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 0, 7)); err != nil {
			fmt.Println(err)
			return
		}
		attempts, err := ex.engine.AttemptList(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, a := range attempts {
			fmt.Println("period", a.PeriodNumber, a.Purpose, a.State)
		}
		sub, err = ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "period", sub.Current.Number)
	})
	// Output:
	// past_due period 1
	// period 1 checkout succeeded
	// period 2 renewal soft_declined
	// period 2 renewal succeeded
	// active period 2
}

// ExampleEngine_SetAutoRenew turns auto-renewal off (TERMS 3.6): access lasts to the end of
// the paid period, then the subscription ends and nothing more is charged.
func ExampleEngine_SetAutoRenew() {
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
		sub, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "auto-renew", sub.AutoRenew)
		if _, err := ex.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour)); err != nil {
			fmt.Println(err)
			return
		}
		sub, err = ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "charges:", len(ex.gateway.Charges()))
	})
	// Output:
	// active auto-renew false
	// ended charges: 1
}
