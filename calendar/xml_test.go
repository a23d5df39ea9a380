package calendar_test

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/calendar"
)

// decree2027 is a made-up decree for 2027 in the xmlcalendar.ru format (the real one
// is not published yet): art. 112 moves, Dec 31 off, a shortened working Saturday
// Nov 6 (t=2) and a working Saturday Dec 25 (t=3).
const decree2027 = `<?xml version="1.0" encoding="UTF-8"?>
<calendar year="2027" lang="ru" date="2026.09.01" country="ru">
  <holidays>
    <holiday id="1" title="Новогодние каникулы"/>
    <holiday id="5" title="Праздник Весны и Труда"/>
  </holidays>
  <days>
    <day d="01.01" t="1" h="1"/>
    <day d="01.02" t="1" h="1"/>
    <day d="01.03" t="1" h="1"/>
    <day d="01.04" t="1" h="1"/>
    <day d="01.05" t="1" h="1"/>
    <day d="01.06" t="1" h="1"/>
    <day d="01.07" t="1" h="2"/>
    <day d="01.08" t="1" h="1"/>
    <day d="02.22" t="2"/>
    <day d="02.23" t="1" h="3"/>
    <day d="03.05" t="2"/>
    <day d="03.08" t="1" h="4"/>
    <day d="04.30" t="2"/>
    <day d="05.01" t="1" h="5"/>
    <day d="05.03" t="1" f="05.01"/>
    <day d="05.09" t="1" h="6"/>
    <day d="05.10" t="1" f="05.09"/>
    <day d="06.12" t="1" h="7"/>
    <day d="06.14" t="1" f="06.12"/>
    <day d="11.03" t="2"/>
    <day d="11.04" t="1" h="8"/>
    <day d="11.06" t="2"/>
    <day d="12.25" t="3"/>
    <day d="12.31" t="1" f="01.02"/>
    <day d="12.31" t="1" f="01.02"/>
  </days>
</calendar>
<!-- trailing comment is fine -->
`

func TestLoadXML(t *testing.T) {
	t.Parallel()
	cal, err := calendar.LoadXML(strings.NewReader(decree2027))
	require.NoError(t, err)
	require.True(t, cal.Known(2027), "a loaded year is Known")
	require.Equal(t, []int{2024, 2025, 2026, 2027}, cal.KnownYears())
	require.False(t, calendar.Russia().Known(2027), "loading does not change Russia")

	tests := []struct {
		name   string
		day    calendar.Date
		isWork bool
	}{
		{"t=1 holiday", day("2027-01-08"), false},
		{"t=1 moved day off", day("2027-05-03"), false},
		{"t=1 decree day off not in art. 112", day("2027-12-31"), false},
		{"t=2 shortened weekday works", day("2027-02-22"), true},
		{"t=2 shortened Saturday works", day("2027-11-06"), true},
		{"t=3 working Saturday", day("2027-12-25"), true},
		{"an unlisted Sunday rests", day("2027-12-26"), false},
		{"an unlisted weekday works", day("2027-11-05"), true},
		{"built-in years are kept", day("2025-11-01"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.isWork, cal.IsWorkday(tt.day))
		})
	}

	// 261 weekdays, 13 of them off, 2 Saturdays working.
	total := 0
	for m := time.January; m <= time.December; m++ {
		n, err := cal.WorkdaysIn(2027, m)
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 250, total)

	got, err := cal.Deadline(day("2026-12-30"), 1, calendar.BusinessDays)
	require.NoError(t, err)
	require.Equal(t, day("2027-01-11"), got)
}

func TestWithXMLReplacesAYearAndLeavesTheOriginal(t *testing.T) {
	t.Parallel()
	// A correction of 2025 that makes Dec 30 off too.
	fix := strings.Replace(decree2025Skeleton, "</days>", `<day d="12.30" t="1"/></days>`, 1)
	base := calendar.Russia()
	fixed, err := base.WithXML(strings.NewReader(fix))
	require.NoError(t, err)
	require.False(t, fixed.IsWorkday(day("2025-12-30")))
	require.True(t, base.IsWorkday(day("2025-12-30")), "WithXML returns a new Calendar")

	// Years far from the built-in ones extend the calendar; the years between stay provisional.
	far := strings.Replace(decree2027, `year="2027"`, `year="2033"`, 1)
	// The t=3 and t=2 Saturdays of 2027 may be weekdays in another year.
	far = strings.Replace(far, `<day d="12.25" t="3"/>`, ``, 1)
	far = strings.Replace(far, `<day d="11.06" t="2"/>`, ``, 1)
	ext, err := fixed.WithXML(strings.NewReader(far))
	require.NoError(t, err)
	require.Equal(t, []int{2024, 2025, 2026, 2033}, ext.KnownYears())
	require.False(t, ext.Known(2030))
	require.Equal(t, calendar.Russia().IsWorkday(day("2030-05-09")), ext.IsWorkday(day("2030-05-09")))
	require.False(t, ext.IsWorkday(day("2025-12-30")), "earlier loads are kept")

	old := strings.Replace(decree2027, `year="2027"`, `year="2019"`, 1)
	old = strings.Replace(old, `<day d="12.25" t="3"/>`, ``, 1)
	old = strings.Replace(old, `<day d="11.06" t="2"/>`, ``, 1)
	ext, err = ext.WithXML(strings.NewReader(old))
	require.NoError(t, err)
	require.Equal(t, []int{2019, 2024, 2025, 2026, 2033}, ext.KnownYears())
}

const decree2025Skeleton = `<calendar year="2025"><days>
<day d="01.01" t="1"/><day d="01.02" t="1"/><day d="01.03" t="1"/><day d="01.06" t="1"/>
<day d="01.07" t="1"/><day d="01.08" t="1"/><day d="05.01" t="1"/><day d="05.02" t="1"/>
<day d="05.08" t="1"/><day d="05.09" t="1"/><day d="06.12" t="1"/><day d="06.13" t="1"/>
<day d="11.01" t="3"/><day d="11.03" t="1"/><day d="11.04" t="1"/><day d="12.31" t="1"/>
</days></calendar>`

func TestWithXMLRefusesBadFiles(t *testing.T) {
	t.Parallel()
	withDays := func(year, days string) string {
		jan := `<day d="01.01" t="1"/><day d="01.02" t="1"/><day d="01.03" t="1"/><day d="01.04" t="1"/>` +
			`<day d="01.05" t="1"/><day d="01.06" t="1"/><day d="01.07" t="1"/><day d="01.08" t="1"/>`
		return `<calendar year="` + year + `" country="ru"><days>` + jan + days + `</days></calendar>`
	}
	tests := []struct {
		name string
		file string
		want string // part of the error message
	}{
		{"not XML", `hello`, "no <calendar> element"},
		{"unclosed element", `<calendar year="2027"><days><day d="01.01" t="1"/>`, "unexpected EOF"},
		{"wrong root element", `<kalender year="2027"/>`, "calendar"},
		{"no year", `<calendar><days><day d="01.01" t="1"/></days></calendar>`, `year ""`},
		{"a year that is not a number", withDays("20x7", ""), `year "20x7"`},
		{"year 0", withDays("0", ""), `year "0"`},
		{"year 10000", withDays("10000", ""), `year "10000"`},
		{"no days element", `<calendar year="2027"/>`, "lists no days"},
		{"an empty days element", `<calendar year="2027"><days></days></calendar>`, "lists no days"},
		{"another country", `<calendar year="2027" country="kz"><days><day d="01.01" t="1"/></days></calendar>`, `country "kz"`},
		{"Feb 29 of a common year", withDays("2027", `<day d="02.29" t="1"/>`), `d="02.29"`},
		{"month 13", withDays("2027", `<day d="13.01" t="1"/>`), `d="13.01"`},
		{"day 32", withDays("2027", `<day d="01.32" t="1"/>`), `d="01.32"`},
		{"a date without leading zeros", withDays("2027", `<day d="1.9" t="1"/>`), `d="1.9"`},
		{"a day without d", withDays("2027", `<day t="1"/>`), `d=""`},
		{"a bad moved-from date", withDays("2027", `<day d="05.03" t="1" f="05.32"/>`), `f="05.32"`},
		{"an unknown type", withDays("2027", `<day d="05.03" t="4"/>`), `unknown type t="4"`},
		{"a day without a type", withDays("2027", `<day d="05.03"/>`), `unknown type t=""`},
		{"one day twice with different types", withDays("2027", `<day d="12.31" t="1"/><day d="12.31" t="2"/>`), "2027-12-31 is listed twice"},
		{"t=3 on a weekday", withDays("2027", `<day d="12.30" t="3"/>`), "2027-12-30: t=3 (working weekend day) on a Thursday"},
		{"an art. 112 holiday made working", strings.Replace(decree2027, `<day d="05.09" t="1" h="6"/>`, `<day d="05.09" t="3"/>`, 1), "2027-05-09 is a holiday of Labour Code art. 112"},
		{"Jan 1-8 left working on a weekday", `<calendar year="2027"><days><day d="12.31" t="1"/></days></calendar>`, "2027-01-01 is a holiday"},
		{"two calendars", withDays("2027", "") + withDays("2028", ""), "more than one calendar"},
		{"text after the calendar", withDays("2027", "") + "junk", "text after"},
		{"too large", withDays("2027", strings.Repeat("<!-- padding -->", 70_000)), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cal, err := calendar.Russia().WithXML(strings.NewReader(tt.file))
			require.ErrorIs(t, err, calendar.ErrInvalidXML)
			require.Contains(t, err.Error(), tt.want)
			require.Nil(t, cal)
		})
	}
}

func TestWithXMLReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	_, err := calendar.LoadXML(iotest.ErrReader(boom))
	require.ErrorIs(t, err, calendar.ErrInvalidXML)
	require.Contains(t, err.Error(), "disk on fire")
	_, err = calendar.LoadXML(nil)
	require.ErrorIs(t, err, calendar.ErrInvalidXML)
}
