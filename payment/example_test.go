package payment_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/smm-gpt/billing/payment"
)

// The charge protocol for one renewal: the attempt and its key exist before the gateway is
// called; a timeout makes the outcome unknown, which is settled by Lookup, never by charging
// again.
func Example() {
	due := time.Date(2026, time.March, 31, 0, 0, 0, 0, time.UTC)
	method := payment.PaymentMethodStatus{Token: "pm-tok-8c1d", ConsentGivenAt: due.AddDate(0, -1, 0)}

	// 1. Record the attempt (the engine commits it here).
	a, _ := payment.NewAttempt(payment.AttemptSpec{
		ID: "att-1", SubscriptionID: "sub-1", Purpose: payment.PurposeRenewal,
		PeriodNumber: 2, Number: 1, Amount: 99000, Currency: "RUB", DueAt: due,
		IdempotencyKey: "renew_9f86d081884c7d659a2feaa0c55ad015", // payment.NewAttemptKey with a random nonce
	}, due)
	fmt.Println("key:", a.IdempotencyKey)

	// 2. Build the request (consent and 54-FZ receipt checked) and call the gateway: it times out.
	receipt, _ := payment.NewChargeReceipt("Pro tariff, 1 month", 99000, "RUB", payment.VAT22Of122, payment.Contact{Email: "user@example.com"})
	req, _ := a.ChargeParams(method, payment.ChargeDetails{CustomerID: "cust-42", Description: "Pro, 1 month", Receipt: receipt}, due)
	callErr := errors.New("context deadline exceeded")

	// 3. Record the answer and decide.
	a, _, _ = a.RecordCharge(payment.ChargeResult{}, callErr, due)
	d, _ := payment.Decide(a, payment.DefaultDunningSchedule(), method, due)
	fmt.Println(a.State, "→", d.Action)

	// The reconciliation asks the gateway under the same key; the charge had gone through.
	res := payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: "pp-1", Amount: req.Amount, Currency: req.Currency}
	a, _, _ = a.RecordLookup(res, nil, due.Add(time.Minute))
	d, _ = payment.Decide(a, payment.DefaultDunningSchedule(), method, due.Add(time.Minute))
	fmt.Println(a.State, "→", d.Action)
	// Output:
	// key: renew_9f86d081884c7d659a2feaa0c55ad015
	// unknown → reconcile
	// succeeded → activate
}

// Retries of a soft-declined renewal count from the due time: 1, 3 and 5 days after it.
func ExampleNextRetry() {
	due := time.Date(2026, time.March, 31, 0, 0, 0, 0, time.UTC)
	for failed := 1; ; failed++ {
		at, ok := payment.NextRetry(payment.DefaultDunningSchedule(), due, failed)
		if !ok {
			fmt.Printf("after %d failures: stop, the subscription ends\n", failed)
			break
		}
		fmt.Printf("after %d failure(s): retry on %s\n", failed, at.Format("Jan 2"))
	}
	// Output:
	// after 1 failure(s): retry on Apr 1
	// after 2 failure(s): retry on Apr 3
	// after 3 failure(s): retry on Apr 5
	// after 4 failures: stop, the subscription ends
}

// A charge's 54-FZ receipt: one service line, full prepayment, the operator's VAT code.
func ExampleNewChargeReceipt() {
	r, err := payment.NewChargeReceipt("Pro tariff, 1 month", 99000, "RUB", payment.VAT22Of122, payment.Contact{Phone: "+79001234567"})
	fmt.Println(err)
	it := r.Items[0]
	fmt.Println(r.Kind, it.Quantity, it.Amount, it.VAT, it.PaymentMode, it.Subject)

	_, err = payment.NewChargeReceipt("Pro tariff, 1 month", 99000, "RUB", "", payment.Contact{})
	fmt.Println(errors.Is(err, payment.ErrInvalid), err)
	// Output:
	// <nil>
	// income 1 99000 vat22_122 full_prepayment service
	// true payment: invalid Items[0].VAT: "" is not a VAT code; the operator must choose one
}

// Webhooks come late and twice: the first settles a pending charge, a duplicate is a no-op,
// a contradicting one is an error.
func ExampleApplyWebhook() {
	due := time.Date(2026, time.March, 31, 0, 0, 0, 0, time.UTC)
	a, _ := payment.NewAttempt(payment.AttemptSpec{
		ID: "att-1", SubscriptionID: "sub-1", Purpose: payment.PurposeCheckout,
		PeriodNumber: 1, Number: 1, Amount: 99000, Currency: "RUB", DueAt: due,
		IdempotencyKey: "checkout_2c26b46b68ffc68ff99b453c1d304134",
	}, due)
	a, _, _ = a.RecordCharge(payment.ChargeResult{Outcome: payment.OutcomePending, ProviderPaymentID: "pp-1", Amount: 99000, Currency: "RUB"}, nil, due)

	ev := payment.WebhookEvent{
		Kind: payment.KindCharge, ProviderPaymentID: "pp-1", Outcome: payment.OutcomeSucceeded,
		Amount: 99000, Currency: "RUB", ReceivedAt: due.Add(time.Minute),
	}
	a, changed, err := payment.ApplyWebhook(a, ev)
	fmt.Println(a.State, changed, err)
	a, changed, err = payment.ApplyWebhook(a, ev)
	fmt.Println(a.State, changed, err)
	ev.Outcome = payment.OutcomeHardDeclined
	_, changed, err = payment.ApplyWebhook(a, ev)
	fmt.Println(changed, errors.Is(err, payment.ErrAlreadySettled))
	// Output:
	// succeeded true <nil>
	// succeeded false <nil>
	// false true
}
