package calendar_test

import (
	"testing"

	"github.com/smm-gpt/billing/calendar"
)

var (
	sinkBool bool
	sinkDate calendar.Date
)

func BenchmarkIsWorkday(b *testing.B) {
	cal := calendar.Russia()
	days := make([]calendar.Date, 366)
	for i := range days {
		days[i] = day("2025-01-01").AddDays(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		sinkBool = cal.IsWorkday(days[i%len(days)])
	}
}

func BenchmarkAddWorkdays30(b *testing.B) {
	cal := calendar.Russia()
	days := make([]calendar.Date, 366)
	for i := range days {
		days[i] = day("2025-01-01").AddDays(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d, err := cal.AddWorkdays(days[i%len(days)], 30)
		if err != nil {
			b.Fatal(err)
		}
		sinkDate = d
	}
}

func BenchmarkDeadlineCalendarDays10(b *testing.B) {
	cal := calendar.Russia()
	d := day("2024-12-25")
	b.ReportAllocs()
	for b.Loop() {
		got, err := cal.Deadline(d, 10, calendar.CalendarDays)
		if err != nil {
			b.Fatal(err)
		}
		sinkDate = got
	}
}
