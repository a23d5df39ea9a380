package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
)

// nbsp is the no-break space that Russian typography puts between groups of thousands and
// before the currency sign, so that "1 290,00 ₽" never breaks across lines.
const nbsp = "\u00a0"

// currencySigns are the signs shown after an amount; any other currency shows its code.
var currencySigns = map[string]string{"RUB": "₽", "USD": "$", "EUR": "€"}

// FormatMoney renders an amount in minor units the Russian way: groups of three digits
// separated by no-break spaces, a decimal comma, and the currency's sign after a no-break
// space: 129000 RUB is "1 290,00 ₽", -5 RUB is "−0,05 ₽" (a minus sign, U+2212). A currency
// the money package does not know is shown with two decimals and its code.
func FormatMoney(minor int64, currency string) string {
	exp := int32(2)
	if c, err := money.Lookup(currency); err == nil {
		exp = c.Exponent
	}
	neg := minor < 0
	// Work on the magnitude as a string so that the smallest int64 needs no special case.
	digits := strconv.FormatInt(minor, 10)
	digits = strings.TrimPrefix(digits, "-")
	for len(digits) <= int(exp) {
		digits = "0" + digits
	}
	whole, frac := digits[:len(digits)-int(exp)], digits[len(digits)-int(exp):]
	var b strings.Builder
	if neg {
		b.WriteString("−")
	}
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString(nbsp)
		}
		b.WriteRune(r)
	}
	if exp > 0 {
		b.WriteString(",")
		b.WriteString(frac)
	}
	b.WriteString(nbsp)
	if sign, ok := currencySigns[currency]; ok {
		b.WriteString(sign)
	} else {
		b.WriteString(currency)
	}
	return b.String()
}

// formatDecimal is FormatMoney for a decimal amount (a tariff's price, a suggested refund).
// An amount finer than the currency's minor unit is rounded half away from zero for display
// only.
func formatDecimal(d decimal.Decimal, currency string) string {
	exp := int32(2)
	if c, err := money.Lookup(currency); err == nil {
		exp = c.Exponent
	}
	return FormatMoney(d.Shift(exp).Round(0).IntPart(), currency)
}

// decimalInput renders an amount for an <input>: "1290.00", the form the engine parses back.
func decimalInput(d decimal.Decimal, currency string) string {
	exp := int32(2)
	if c, err := money.Lookup(currency); err == nil {
		exp = c.Exponent
	}
	return d.StringFixed(exp)
}

// Layouts of the pages: dates as Russians write them, and the <input type="datetime-local">
// and <input type="date"> values.
const (
	layoutDateTime = "02.01.2006 15:04"
	layoutDate     = "02.01.2006"
	layoutInputDT  = "2006-01-02T15:04"
	layoutInputD   = "2006-01-02"
	layoutInputM   = "2006-01"
)

// monthNames are the months in the nominative, as a table's row names them: "март 2026".
var monthNames = [...]string{"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
	"сентябрь", "октябрь", "ноябрь", "декабрь"}

// formatMonth renders the month of t (already in the console's location): "март 2026".
func formatMonth(t time.Time) string {
	return monthNames[t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// formatTime renders t in loc as "02.01.2006 15:04"; the zero time is an em dash.
func formatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format(layoutDateTime)
}

// lastDay is the last calendar day of a deadline given as the instant before which something
// must happen (24:00 of that day is 00:00 of the next): the day an operator should read.
func lastDay(deadline time.Time, loc *time.Location) time.Time {
	return deadline.In(loc).Add(-time.Nanosecond)
}

// daysLeft counts the calendar days in loc from now's date to the deadline's last day: 0 on
// the last day itself, negative once it passed.
func daysLeft(now, deadline time.Time, loc *time.Location) int {
	d := lastDay(deadline, loc)
	n := now.In(loc)
	dayOf := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	return int(dayOf(d).Sub(dayOf(n)).Hours() / 24)
}
