package subscription_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// A subscription's life: checkout, first charge, usage up to the hard limit, renewal at
// the period end. Errors are ignored for brevity where the step cannot fail.
func Example() {
	msk := time.FixedZone("MSK", 3*60*60)
	checkout := time.Date(2026, time.March, 2, 10, 0, 0, 0, msk)
	periodEnd := checkout.AddDate(0, 1, 0)
	terms := tariff.Terms{
		Code: "starter", Version: 1, Name: "Starter", Price: decimal.RequireFromString("490"), Currency: "RUB",
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 3}},
	}

	sub, _, _ := subscription.New(subscription.NewParams{ID: "sub-1", CustomerID: "cust-42", Checkout: terms}, checkout)
	fmt.Println(subscription.Access(sub, checkout).Reason) // TERMS 3.3

	sub, _, _ = subscription.Activate(sub, subscription.ActivateParams{
		Start: checkout, End: periodEnd, PaymentMethod: "pm_7f3a"}, checkout.Add(time.Second))
	fmt.Println(subscription.Access(sub, checkout.Add(time.Minute)).Granted)

	p, _ := subscription.Consume(*sub.Current, "generations", 3)
	sub.Current = &p
	_, err := subscription.Consume(*sub.Current, "generations", 1)
	fmt.Println(errors.Is(err, subscription.ErrLimitExceeded))
	if subscription.ShouldExhaust(*sub.Current) {
		sub, _, _ = subscription.Exhaust(sub, checkout.Add(time.Hour))
	}
	fmt.Println(subscription.Access(sub, checkout.Add(2*time.Hour)).Err()) // TERMS 3.1

	fmt.Println(subscription.DecideRenewal(sub, periodEnd).Action)
	sub, entry, _ := subscription.Renew(sub, subscription.RenewParams{
		Terms: terms, Start: periodEnd, End: periodEnd.AddDate(0, 1, 0)}, periodEnd)
	fmt.Println(entry.From, "→", entry.To, "period", sub.Current.Number)
	// Output:
	// not_paid
	// true
	// true
	// subscription: no access: used_up
	// charge
	// exhausted → active period 2
}
