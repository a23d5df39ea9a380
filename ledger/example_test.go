package ledger_test

import (
	"fmt"
	"time"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

// A month paid on January 1 for 990.01 RUB, ten days earned, then refunded in full: the
// refund takes back what is still deferred and gives back the earned part through
// refunded_revenue. The trial balance sums to zero.
func ExampleBook() {
	msk, _ := time.LoadLocation("Europe/Moscow")
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, msk)
	end := start.AddDate(0, 1, 0)
	book := ledger.NewBook(nil)
	apply := func(tx ledger.Transaction, err error) {
		if err == nil {
			_, _, err = book.Apply(tx)
		}
		if err != nil {
			fmt.Println(err)
		}
	}

	apply(ledger.Charge("charge:p1", "p1", "RUB", 99001, start, ledger.WithProviderFee(3465)))

	plan, _ := ledger.NewPlan(99001, start, end, msk)
	at := time.Date(2026, time.January, 11, 3, 0, 0, 0, msk)
	earned, _ := plan.ToRecognize(0, at, nil)
	apply(ledger.Recognize("recog:p1:2026-01-11", "p1", "RUB", earned, at))

	deferred := book.Balance(ledger.DeferredRevenue.Code("RUB")).Normal()
	apply(ledger.Refund("refund:r1", "r1", "RUB", 99001, ledger.RecognizedPartOfRefund(99001, deferred), at))

	for _, b := range book.TrialBalance() {
		fmt.Printf("%-22s %s\n", b.Account.Code, money.RUB.Format(b.Normal()))
	}
	fmt.Println("net:", book.TrialBalance().NetByCurrency()["RUB"])
	// Output:
	// deferred:RUB           0.00 RUB
	// provider:RUB           -34.65 RUB
	// provider_fees:RUB      34.65 RUB
	// refunded_revenue:RUB   319.40 RUB
	// revenue:RUB            319.40 RUB
	// net: 0
}

// 99001 kopecks over the 31 days of January: the 18 kopecks left over go to the first 18
// days, and the shares sum exactly to the total.
func ExamplePlan_Schedule() {
	msk, _ := time.LoadLocation("Europe/Moscow")
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, msk)
	plan, _ := ledger.NewPlan(99001, start, start.AddDate(0, 1, 0), msk)

	var sum int64
	for i, day := range plan.Schedule() {
		sum += day.Amount
		if i == 0 || i == 17 || i == 18 || i == 30 {
			fmt.Println(day.Date.Format(time.DateOnly), day.Amount)
		}
	}
	fmt.Println("days:", plan.Days(), "sum:", sum)
	// Output:
	// 2026-01-01 3194
	// 2026-01-18 3194
	// 2026-01-19 3193
	// 2026-01-31 3193
	// days: 31 sum: 99001
}
