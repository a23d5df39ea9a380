package calendar_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
)

func TestAddWorkdays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from calendar.Date
		n    int
		want calendar.Date
	}{
		{"art. 191 a working day itself is not counted", day("2025-03-03"), 1, day("2025-03-04")},
		{"art. 191 Friday to Monday", day("2025-03-07"), 1, day("2025-03-10")},
		{"art. 191 from a Saturday", day("2025-03-08"), 1, day("2025-03-10")},
		{"working Saturday 2024-04-27 is the next working day after Friday", day("2024-04-26"), 1, day("2024-04-27")},
		{"May holidays 2024 after the working Saturday", day("2024-04-26"), 2, day("2024-05-02")},
		{"working Saturday 2024-11-02", day("2024-11-01"), 1, day("2024-11-02")},
		{"Nov 4 2024 after the working Saturday", day("2024-11-01"), 2, day("2024-11-05")},
		{"working Saturday 2024-12-28", day("2024-12-27"), 1, day("2024-12-28")},
		{"New Year 2025 after the working Saturday", day("2024-12-28"), 1, day("2025-01-09")},
		{"New Year 2025 five days from Friday Dec 27", day("2024-12-27"), 5, day("2025-01-14")},
		{"May holidays 2025 from Apr 30", day("2025-04-30"), 1, day("2025-05-05")},
		{"May holidays 2025 both breaks", day("2025-04-30"), 5, day("2025-05-13")},
		{"working Saturday 2025-11-01", day("2025-10-31"), 1, day("2025-11-01")},
		{"Nov 3-4 2025 after the working Saturday", day("2025-10-31"), 2, day("2025-11-05")},
		{"New Year 2026 from Dec 30 2025", day("2025-12-30"), 1, day("2026-01-12")},
		{"into a provisional year", day("2026-12-30"), 1, day("2027-01-11")},
		{"a whole year 2025 from its eve", day("2024-12-31"), 247, day("2025-12-30")},
		{"from a leap day", day("2028-02-29"), 1, day("2028-03-01")},
		{"from Dec 31 of a leap year", day("2024-12-31"), 1, day("2025-01-09")},
	}
	cal := calendar.Russia()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cal.AddWorkdays(tt.from, tt.n)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, cal.IsWorkday(got))
		})
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event calendar.Date
		n     int
		unit  calendar.Unit
		want  calendar.Date
	}{
		{"3.7 five business days from a Monday", day("2025-03-03"), 5, calendar.BusinessDays, day("2025-03-10")},
		{"3.7 five business days from a Friday", day("2025-03-07"), 5, calendar.BusinessDays, day("2025-03-14")},
		{"3.7 five business days before New Year 2026", day("2025-12-26"), 5, calendar.BusinessDays, day("2026-01-14")},
		{"3.7 five business days before the May holidays 2025", day("2025-04-29"), 5, calendar.BusinessDays, day("2025-05-12")},
		{"3.7 five business days from the working Saturday 2025-11-01", day("2025-11-01"), 5, calendar.BusinessDays, day("2025-11-11")},
		{"3.8 ten calendar days ending on a weekday", day("2025-03-03"), 10, calendar.CalendarDays, day("2025-03-13")},
		{"3.8 art. 193 ten calendar days ending in the New Year holidays", day("2024-12-25"), 10, calendar.CalendarDays, day("2025-01-09")},
		{"3.8 art. 193 ten calendar days ending on May 1 2025", day("2025-04-21"), 10, calendar.CalendarDays, day("2025-05-05")},
		{"3.8 ten calendar days ending the day before May holidays", day("2025-04-20"), 10, calendar.CalendarDays, day("2025-04-30")},
		{"3.8 art. 193 does not move a working Saturday", day("2025-10-22"), 10, calendar.CalendarDays, day("2025-11-01")},
		{"3.8 art. 193 ten calendar days ending on a Sunday", day("2025-03-06"), 10, calendar.CalendarDays, day("2025-03-17")},
		{"2.2.4 ten business days across the May holidays 2024", day("2024-04-25"), 10, calendar.BusinessDays, day("2024-05-15")},
		{"6.2 thirty business days across New Year 2026", day("2025-12-15"), 30, calendar.BusinessDays, day("2026-02-05")},
	}
	cal := calendar.Russia()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cal.Deadline(tt.event, tt.n, tt.unit)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, cal.IsWorkday(got), "art. 193: a deadline is always a working day")
		})
	}
}

func TestComputingMethodsRefuseBadInput(t *testing.T) {
	t.Parallel()
	feb30 := calendar.Date{Year: 2025, Month: time.February, Day: 30}
	tests := []struct {
		name  string
		event calendar.Date
		n     int
		unit  calendar.Unit
		want  error
	}{
		{"an invalid date", feb30, 5, calendar.BusinessDays, calendar.ErrInvalidDate},
		{"month 13", calendar.Date{Year: 2025, Month: 13, Day: 1}, 5, calendar.CalendarDays, calendar.ErrInvalidDate},
		{"the zero Date", calendar.Date{}, 5, calendar.BusinessDays, calendar.ErrInvalidDate},
		{"n = 0", day("2025-03-03"), 0, calendar.BusinessDays, calendar.ErrInvalidCount},
		{"negative n", day("2025-03-03"), -1, calendar.CalendarDays, calendar.ErrInvalidCount},
		{"absurd n", day("2025-03-03"), calendar.MaxCount + 1, calendar.BusinessDays, calendar.ErrInvalidCount},
		{"the zero Unit", day("2025-03-03"), 5, 0, calendar.ErrInvalidUnit},
		{"an unknown Unit", day("2025-03-03"), 5, 7, calendar.ErrInvalidUnit},
		{"business days past year 9999", day("9999-12-30"), 5, calendar.BusinessDays, calendar.ErrOutOfRange},
		{"calendar days past year 9999", day("9999-12-30"), 5, calendar.CalendarDays, calendar.ErrOutOfRange},
	}
	cal := calendar.Russia()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cal.Deadline(tt.event, tt.n, tt.unit)
			require.ErrorIs(t, err, tt.want)
			require.Zero(t, got)
			if tt.unit == calendar.BusinessDays {
				got, err = cal.AddWorkdays(tt.event, tt.n)
				require.ErrorIs(t, err, tt.want)
				require.Zero(t, got)
			}
		})
	}
}

// TestDeadlineRunsOutOfYears: art. 193 must not step past the last representable day.
func TestDeadlineRunsOutOfYears(t *testing.T) {
	t.Parallel()
	cal, err := calendar.Russia().WithXML(strings.NewReader(`<calendar year="9999"><days>
		<day d="01.01" t="1"/><day d="01.02" t="1"/><day d="01.03" t="1"/><day d="01.04" t="1"/>
		<day d="01.05" t="1"/><day d="01.06" t="1"/><day d="01.07" t="1"/><day d="01.08" t="1"/>
		<day d="02.23" t="1"/><day d="03.08" t="1"/><day d="05.01" t="1"/><day d="05.10" t="1"/>
		<day d="06.12" t="1"/><day d="11.04" t="1"/><day d="12.31" t="1"/></days></calendar>`))
	require.NoError(t, err)
	got, err := cal.Deadline(day("9999-12-29"), 2, calendar.CalendarDays)
	require.ErrorIs(t, err, calendar.ErrOutOfRange)
	require.Zero(t, got)
	got, err = cal.AddWorkdays(day("9999-12-30"), 1)
	require.ErrorIs(t, err, calendar.ErrOutOfRange)
	require.Zero(t, got)
}

func TestIsWorkdayOfInvalidDateIsFalse(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	for _, d := range []calendar.Date{
		{},
		{Year: 2025, Month: time.February, Day: 29},
		{Year: 2025, Month: 13, Day: 1},
		{Year: -1, Month: 1, Day: 1},
		{Year: 10000, Month: 1, Day: 1},
		{Year: 2025, Month: 3, Day: 1 << 40},
	} {
		require.False(t, cal.IsWorkday(d), "date %v", d)
	}
}

func TestAddWorkdaysMaxCount(t *testing.T) {
	t.Parallel()
	cal := calendar.Russia()
	got, err := cal.AddWorkdays(day("2025-01-01"), calendar.MaxCount)
	require.NoError(t, err)
	require.True(t, cal.IsWorkday(got))
	require.Equal(t, got, mustSlowAddWorkdays(t, cal, day("2025-01-01"), calendar.MaxCount))
}

func TestUnitString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "business days", calendar.BusinessDays.String())
	require.Equal(t, "calendar days", calendar.CalendarDays.String())
	require.Equal(t, "Unit(0)", calendar.Unit(0).String())
}

func TestCalendarSatisfiesBusinessCalendar(t *testing.T) {
	t.Parallel()
	var bc calendar.BusinessCalendar = calendar.Russia()
	got, err := bc.Deadline(day("2025-11-01"), 5, calendar.BusinessDays)
	require.NoError(t, err)
	require.Equal(t, day("2025-11-11"), got)
}

// mustSlowAddWorkdays is the day-by-day reference of AddWorkdays.
func mustSlowAddWorkdays(t testing.TB, cal calendar.BusinessCalendar, d calendar.Date, n int) calendar.Date {
	t.Helper()
	for n > 0 {
		d = d.AddDays(1)
		require.True(t, d.Valid())
		if cal.IsWorkday(d) {
			n--
		}
	}
	return d
}
