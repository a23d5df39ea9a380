package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/tariff"
)

// ExampleCatalog_Publish publishes a tariff and a price change that takes effect later: the
// version in force depends on the instant asked about (TERMS 2.1.6, 3.2).
func ExampleCatalog_Publish() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		catalog := ex.engine.Tariffs()
		spec := tariff.Spec{Code: "pro", Name: "Pro", Price: decimal.NewFromInt(990),
			Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}}
		v1, err := catalog.Publish(ctx, "operator:olga", spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d: %s %s per %s\n", v1.Number, v1.Price.StringFixed(2), v1.Currency, v1.Period)

		spec.Price = decimal.NewFromInt(1290)
		spec.EffectiveAt = time.Date(2026, 4, 1, 0, 0, 0, 0, ex.moscow)
		v2, err := catalog.Publish(ctx, "operator:olga", spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d: %s %s from %s\n", v2.Number, v2.Price.StringFixed(2), v2.Currency, v2.EffectiveAt.In(ex.moscow).Format("2 Jan 2006"))

		for _, at := range []time.Time{ex.clock.Now(), v2.EffectiveAt} {
			v, err := catalog.InForce(ctx, "pro", at)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("in force on %s: v%d at %s\n", at.In(ex.moscow).Format("2 Jan"), v.Number, v.Price.StringFixed(2))
		}
	})
	// Output:
	// v1: 990.00 RUB per 1 month
	// v2: 1290.00 RUB from 1 Apr 2026
	// in force on 2 Mar: v1 at 990.00
	// in force on 1 Apr: v2 at 1290.00
}

// ExampleCatalog_PreviewPublish shows what a price rise would do before publishing it
// (TERMS 2.1.6): the paid periods running on older versions keep their price, and renewals
// due from the effective date on take the new one. Nothing is written.
func ExampleCatalog_PreviewPublish() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		for _, customer := range []string{"user-1", "user-2"} {
			if _, err := ex.checkout(ctx, customer); err != nil {
				fmt.Println(err)
				return
			}
		}
		spec := tariff.Spec{Code: "pro", Name: "Pro", Price: decimal.NewFromInt(1290),
			Period:      tariff.Period{Count: 1, Unit: tariff.Month},
			Limits:      []tariff.Limit{{Meter: "generations", Quantity: 500}},
			EffectiveAt: time.Date(2026, 3, 20, 0, 0, 0, 0, ex.moscow)}
		p, err := ex.engine.Tariffs().PreviewPublish(ctx, spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d: %d paid periods keep the old price; renewals from %s at %s %s\n", p.Version.Number,
			p.Grandfathered, p.RenewFrom.In(ex.moscow).Format("2 Jan 2006"), p.Version.Price.StringFixed(2), p.Version.Currency)
		for _, g := range p.ByVersion {
			fmt.Printf("  on v%d: %d at %s %s\n", g.Version, g.Periods, g.Price.StringFixed(2), g.Currency)
		}
	})
	// Output:
	// v2: 2 paid periods keep the old price; renewals from 20 Mar 2026 at 1290.00 RUB
	//   on v1: 2 at 990.00 RUB
}
