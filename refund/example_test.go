package refund_test

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/refund"
)

// Access granted on the working Saturday of 1 November 2025; the refund email arrives
// on Tuesday 11 November at 23:00 Moscow time, still inside the 5-business-day window
// of TERMS 3.7 (Nov 3 and 4 are holidays). The payout is due within 10 calendar days
// of receipt (3.8).
func ExampleEligibility() {
	granted := time.Date(2025, time.November, 1, 10, 0, 0, 0, calendar.Moscow())
	received := time.Date(2025, time.November, 11, 23, 0, 0, 0, calendar.Moscow())
	p := refund.Period{
		GrantedAt: granted,
		Start:     granted,
		End:       granted.AddDate(0, 1, 0),
		Price:     decimal.RequireFromString("990.00"),
		Currency:  "RUB",
		Meters:    []refund.MeterUsage{{Meter: "generations", Quantity: 100}},
	}
	d, err := refund.Eligibility(received, p, calendar.Russia(), calendar.Moscow(), refund.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Eligible, d.WindowLastDay)
	payout, _ := refund.PayoutDeadline(received, calendar.Russia(), calendar.Moscow())
	fmt.Println(payout.LastDay, payout.EndsAt.UTC())
	// Output:
	// true 2025-11-11
	// 2025-11-21 2025-11-21 21:00:00 +0000 UTC
}

// A customer refuses after 10 days of a 30-day period, having used 40 of 100
// generations; the operator enters 50 roubles of costs. Volume (40%) was used faster
// than time (33%), so 60% of the price is unused. A person decides the final amount.
func ExampleProRata() {
	start := time.Date(2025, time.March, 1, 0, 0, 0, 0, calendar.Moscow())
	p := refund.Period{
		GrantedAt: start,
		Start:     start,
		End:       start.AddDate(0, 0, 30),
		Price:     decimal.RequireFromString("990.00"),
		Currency:  "RUB",
		Meters:    []refund.MeterUsage{{Meter: "generations", Quantity: 100, Used: 40}},
	}
	r, err := refund.ProRata(p, start.AddDate(0, 0, 10), decimal.RequireFromString("50"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Basis, r.UsedByTime, r.UsedByVolume)
	fmt.Println(r.Unused.StringFixed(2), "-", r.Costs.StringFixed(2), "=", r.Amount.StringFixed(2), r.Currency)
	// Output:
	// volume 33.33% 40.00%
	// 594.00 - 50.00 = 544.00 RUB
}
