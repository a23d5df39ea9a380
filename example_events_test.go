package billing_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/smm-gpt/billing"
)

// ExampleEvent receives the engine's business events in Config.OnEvent: each is recorded
// in the transaction of the change it reports and handed to the handler by a River job, at
// least once, so the handler deduplicates by Event.ID. Here a checkout, a usage threshold
// crossed, the renewal notice and the renewal a month later.
func ExampleEvent() {
	var (
		mu   sync.Mutex
		seen = map[string]billing.Event{} // by ID: a redelivery replaces nothing
	)
	cfg := billing.DefaultConfig()
	cfg.OnEvent = func(_ context.Context, ev billing.Event) error {
		// Keep it quick: a host hands the event to its own queue or outbox here.
		mu.Lock()
		defer mu.Unlock()
		seen[ev.ID] = ev
		return nil
	}
	runExampleWith(cfg, func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.engine.Consume(ctx, id, "generations", 450, "req-1"); err != nil { // 90%: crosses 80%
			fmt.Println(err)
			return
		}
		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 1, 1)); err != nil {
			fmt.Println(err)
			return
		}

		mu.Lock()
		defer mu.Unlock()
		events := make([]billing.Event, 0, len(seen))
		for _, ev := range seen {
			events = append(events, ev)
		}
		// Events come in no guaranteed order: order them by when they happened.
		slices.SortFunc(events, func(a, b billing.Event) int {
			return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.Period, b.Period), cmp.Compare(a.Kind, b.Kind))
		})
		for _, ev := range events {
			fmt.Printf("%s %s", ev.OccurredAt.In(ex.moscow).Format("2 Jan 15:04"), ev.Kind)
			if ev.Period > 0 {
				fmt.Printf(" (period %d)", ev.Period)
			}
			switch ev.Kind {
			case billing.EventUsageThreshold:
				fmt.Printf(": %s %d%% (%d of %d)", ev.Meter, ev.Threshold, ev.Used, ev.Limit)
			case billing.EventRenewalUpcoming:
				fmt.Printf(": charge due %s", ev.DueAt.In(ex.moscow).Format("2 Jan 15:04"))
			case billing.EventRenewed:
				fmt.Printf(": %d %s until %s", ev.AmountMinor, ev.Currency, ev.PeriodEnd.In(ex.moscow).Format("2 Jan"))
			}
			fmt.Println()
		}
	})
	// Output:
	// 2 Mar 10:00 subscribed
	// 2 Mar 10:00 activated (period 1)
	// 2 Mar 10:00 usage_threshold (period 1): generations 80% (450 of 500)
	// 30 Mar 10:00 renewal_upcoming (period 2): charge due 2 Apr 10:00
	// 2 Apr 10:00 renewed (period 2): 99000 RUB until 2 May
}

// ExampleEngine_Events reads the events recorded for a subscription, delivered or not: for
// support and audits (a consumer of events uses Config.OnEvent).
func ExampleEngine_EventList() {
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
		if _, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42"); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().Add(40*24*time.Hour)); err != nil {
			fmt.Println(err)
			return
		}
		events, err := ex.engine.EventList(ctx, billing.EventListParams{SubscriptionID: id})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, ev := range events {
			fmt.Print(ev.OccurredAt.In(ex.moscow).Format("2 Jan 15:04"), " ", ev.Kind)
			if ev.Kind == billing.EventEnded {
				fmt.Print(": ", ev.Status, ", ", ev.Reason)
			}
			fmt.Println()
		}
	})
	// Output:
	// 2 Mar 10:00 subscribed
	// 2 Mar 10:00 activated
	// 2 Apr 10:00 ended: ended, auto_renew_off
}
