package calendar_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/smm-gpt/billing/calendar"
)

// A refund request received on the evening of 25 December 2024 must be paid out
// within 10 calendar days (TERMS 3.8). The tenth day falls in the New Year holidays,
// so the deadline moves to the first working day after them (art. 193), and the money
// may go out until 24:00 Moscow time of that day (art. 194).
func ExampleCalendar_Deadline() {
	cal := calendar.Russia()
	msk := calendar.Moscow()
	received := time.Date(2024, time.December, 25, 19, 30, 0, 0, time.UTC) // 22:30 in Moscow
	last, err := cal.Deadline(calendar.DateOf(received, msk), 10, calendar.CalendarDays)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(last, last.Weekday())
	fmt.Println(last.EndsAt(msk).UTC())
	// Output:
	// 2025-01-09 Thursday
	// 2025-01-09 21:00:00 +0000 UTC
}

// The working Saturday of 1 November 2025 counts as a working day: the first working
// day after Friday 31 October is that Saturday.
func ExampleCalendar_AddWorkdays() {
	cal := calendar.Russia()
	next, _ := cal.AddWorkdays(calendar.Date{Year: 2025, Month: time.October, Day: 31}, 1)
	fmt.Println(next, next.Weekday())
	// Output: 2025-11-01 Saturday
}

// An instant late in the UTC day is already the next day in Moscow.
func ExampleDateOf() {
	t := time.Date(2025, time.October, 31, 22, 30, 0, 0, time.UTC)
	fmt.Println(calendar.DateOf(t, time.UTC), calendar.DateOf(t, calendar.Moscow()))
	// Output: 2025-10-31 2025-11-01
}

// Each autumn the operator loads next year's decree from xmlcalendar.ru; until then
// the year is provisional.
func ExampleLoadXML() {
	fmt.Println(calendar.Russia().Known(2027))
	cal, err := calendar.LoadXML(strings.NewReader(`<calendar year="2027" country="ru"><days>
		<day d="01.01" t="1"/><day d="01.04" t="1"/><day d="01.05" t="1"/><day d="01.06" t="1"/>
		<day d="01.07" t="1"/><day d="01.08" t="1"/><day d="02.23" t="1"/><day d="03.08" t="1"/>
		<day d="05.03" t="1"/><day d="05.10" t="1"/><day d="06.14" t="1"/><day d="11.04" t="1"/>
		<day d="12.31" t="1" f="01.02"/>
	</days></calendar>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cal.Known(2027), cal.IsWorkday(calendar.Date{Year: 2027, Month: time.December, Day: 31}))
	// Output:
	// false
	// true false
}
