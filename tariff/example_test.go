package tariff_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/tariff"
)

// A monthly period bought on Jan 31 keeps its day, clamped to each month's length.
func ExamplePeriod_End() {
	moscow, _ := time.LoadLocation("Europe/Moscow")
	monthly := tariff.Period{Count: 1, Unit: tariff.Month}
	bought := time.Date(2024, 1, 31, 15, 0, 0, 0, moscow)
	for n := 1; n <= 4; n++ {
		fmt.Println(monthly.End(bought, n, moscow).Format("2006-01-02 15:04 MST"))
	}
	// Output:
	// 2024-02-29 15:00 MSK
	// 2024-03-31 15:00 MSK
	// 2024-04-30 15:00 MSK
	// 2024-05-31 15:00 MSK
}

// Publishing checks every field at once and names each bad one.
func ExampleNewVersion() {
	spec := tariff.Spec{
		Code:   "pro",
		Name:   "Pro",
		Price:  decimal.RequireFromString("990.001"),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "images", Quantity: 0}},
	}
	_, err := tariff.NewVersion(spec, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var verr *tariff.ValidationError
	if errors.As(err, &verr) {
		for _, f := range verr.Fields {
			fmt.Println(f)
		}
	}
	fmt.Println(errors.Is(err, tariff.ErrInvalid))
	// Output:
	// price: 990.001 has more decimals than RUB allows (2)
	// limits[0].quantity: must be at least 1
	// true
}

// A price rise published less than the customer's notice before a renewal waits one
// more period; the paid period itself is never recalculated (TERMS 2.1.6).
func ExampleTermsForRenewal() {
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	spec := tariff.Spec{
		Code:    "pro",
		Name:    "Pro",
		Price:   decimal.NewFromInt(990),
		Period:  tariff.Period{Count: 1, Unit: tariff.Month},
		Options: tariff.Options{PriceNotice: 30 * 24 * time.Hour},
	}
	v1, _ := tariff.NewVersion(spec, nil, jan)
	spec.Price = decimal.NewFromInt(1290)
	v2, _ := tariff.NewVersion(spec, &v1, jan.AddDate(0, 0, 20)) // published Jan 21
	versions := []tariff.Version{v1, v2}

	current := v1.Terms() // bought Jan 1
	for _, renewal := range []time.Time{jan.AddDate(0, 1, 0), jan.AddDate(0, 2, 0)} {
		terms, _ := tariff.TermsForRenewal(current, versions, renewal)
		fmt.Printf("%s: v%d %s %s per %s\n", renewal.Format("Jan 2"), terms.Version, terms.Price, terms.Currency, terms.Period)
		current = terms
	}
	// Output:
	// Feb 1: v1 990 RUB per 1 month
	// Mar 1: v2 1290 RUB per 1 month
}
