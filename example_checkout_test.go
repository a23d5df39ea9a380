package billing_test

import (
	"context"
	"fmt"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
)

// ExampleEngine_Subscribe records a checkout and charges it: no access before the charge
// succeeds (TERMS 3.3), and the terms shown at checkout are kept (TERMS 3.4).
func ExampleEngine_Subscribe() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		sub, err := ex.engine.Subscribe(ctx, billing.SubscribeParams{
			CustomerID: "user-42", TariffCode: "pro", PaymentMethod: "tok_42", IdempotencyKey: "checkout-7f3a"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "at", sub.Checkout.Price.StringFixed(2), sub.Checkout.Currency)
		d, err := ex.engine.Access(ctx, sub.ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("access:", d.Granted, d.Reason)

		res, err := ex.engine.ChargeFirstPayment(ctx, sub.ID) // through Config.Gateway
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Attempt.State, "→", res.Subscription.Status)
		d, err = ex.engine.Access(ctx, sub.ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("access:", d.Granted, "until", d.EndsAt.In(ex.moscow).Format("2 Jan 2006 15:04"))
	})
	// Output:
	// pending at 990.00 RUB
	// access: false not_paid
	// succeeded → active
	// access: true until 2 Apr 2026 10:00
}

// ExampleEngine_HandlePaymentWebhook activates a subscription whose first charge the
// provider accepted as pending, when the provider's webhook confirms it. A duplicate webhook
// is a no-op.
func ExampleEngine_HandlePaymentWebhook() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		ex.gateway.Script("tok_42", billingtest.Pending) // the provider answers "pending"
		sub, err := ex.engine.Subscribe(ctx, billing.SubscribeParams{
			CustomerID: "user-42", TariffCode: "pro", PaymentMethod: "tok_42", IdempotencyKey: "checkout-7f3a"})
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := ex.engine.ChargeFirstPayment(ctx, sub.ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Attempt.State, res.Subscription.Status)

		// Later the provider calls the host's webhook endpoint; the host checks the signature
		// and forwards the event.
		ev, err := ex.gateway.Confirm(res.Attempt.ProviderPaymentID, payment.OutcomeSucceeded)
		if err != nil {
			fmt.Println(err)
			return
		}
		for range 2 {
			a, err := ex.engine.HandlePaymentWebhook(ctx, ev)
			if err != nil {
				fmt.Println(err)
				return
			}
			got, err := ex.engine.SubscriptionGet(ctx, sub.ID)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println(a.State, got.Status, "period", got.Current.Number)
		}
	})
	// Output:
	// pending pending
	// succeeded active period 1
	// succeeded active period 1
}
