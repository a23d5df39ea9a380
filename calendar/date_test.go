package calendar_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/calendar"
)

// day parses a "2006-01-02" literal of a test table; a typo in a table is a bug in
// the test, so it panics.
func day(s string) calendar.Date {
	d, err := calendar.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestDateValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		date calendar.Date
		want bool
	}{
		{"an ordinary day", calendar.Date{Year: 2025, Month: time.November, Day: 1}, true},
		{"Feb 29 of a leap year", calendar.Date{Year: 2024, Month: time.February, Day: 29}, true},
		{"Feb 29 of a century leap year", calendar.Date{Year: 2000, Month: time.February, Day: 29}, true},
		{"Feb 29 of a common year", calendar.Date{Year: 2025, Month: time.February, Day: 29}, false},
		{"Feb 29 of a century common year", calendar.Date{Year: 2100, Month: time.February, Day: 29}, false},
		{"Feb 30", calendar.Date{Year: 2024, Month: time.February, Day: 30}, false},
		{"Apr 31", calendar.Date{Year: 2025, Month: time.April, Day: 31}, false},
		{"month 13", calendar.Date{Year: 2025, Month: 13, Day: 1}, false},
		{"month 0", calendar.Date{Year: 2025, Month: 0, Day: 1}, false},
		{"day 0", calendar.Date{Year: 2025, Month: time.May, Day: 0}, false},
		{"negative day", calendar.Date{Year: 2025, Month: time.May, Day: -1}, false},
		{"year 0", calendar.Date{Year: 0, Month: time.May, Day: 1}, false},
		{"year 10000", calendar.Date{Year: 10000, Month: time.May, Day: 1}, false},
		{"first valid day", calendar.Date{Year: 1, Month: time.January, Day: 1}, true},
		{"last valid day", calendar.Date{Year: 9999, Month: time.December, Day: 31}, true},
		{"the zero Date", calendar.Date{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.date.Valid())
			err := tt.date.Validate()
			if tt.want {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, calendar.ErrInvalidDate)
				require.Contains(t, err.Error(), tt.date.String())
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    calendar.Date
		wantErr bool
	}{
		{in: "2025-11-01", want: calendar.Date{Year: 2025, Month: time.November, Day: 1}},
		{in: "0001-01-01", want: calendar.Date{Year: 1, Month: time.January, Day: 1}},
		{in: "2025-02-29", wantErr: true},
		{in: "2025-13-01", wantErr: true},
		{in: "2025-1-01", wantErr: true},
		{in: "2025/11/01", wantErr: true},
		{in: "+025-11-01", wantErr: true},
		{in: "2025-11-01T00:00:00Z", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := calendar.ParseDate(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, calendar.ErrInvalidDate)
				require.Zero(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
		})
	}
}

func TestDateCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b calendar.Date
		want int
	}{
		{"same day", day("2025-11-01"), day("2025-11-01"), 0},
		{"earlier day", day("2025-11-01"), day("2025-11-02"), -1},
		{"earlier month beats a larger day", day("2025-10-31"), day("2025-11-01"), -1},
		{"earlier year beats a larger month", day("2024-12-31"), day("2025-01-01"), -1},
		{"later year", day("2026-01-01"), day("2025-12-31"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.a.Compare(tt.b))
			require.Equal(t, -tt.want, tt.b.Compare(tt.a))
			require.Equal(t, tt.want < 0, tt.a.Before(tt.b))
			require.Equal(t, tt.want > 0, tt.a.After(tt.b))
			require.Equal(t, tt.want == 0, tt.a.Equal(tt.b))
		})
	}
}

func TestDateAddDays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from calendar.Date
		n    int
		want calendar.Date
	}{
		{"art. 191 the day after", day("2025-11-01"), 1, day("2025-11-02")},
		{"across New Year", day("2025-12-25"), 10, day("2026-01-04")},
		{"across Feb 29", day("2024-02-28"), 2, day("2024-03-01")},
		{"backwards across New Year", day("2025-01-01"), -1, day("2024-12-31")},
		{"zero days", day("2025-05-09"), 0, day("2025-05-09")},
		{"past year 9999 gives the zero Date", day("9999-12-31"), 1, calendar.Date{}},
		{"before year 1 gives the zero Date", day("0001-01-01"), -1, calendar.Date{}},
		{"an invalid date is never normalised", calendar.Date{Year: 2025, Month: time.February, Day: 30}, 1, calendar.Date{}},
		{"an absurd n gives the zero Date", day("2025-01-01"), 1 << 40, calendar.Date{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.from.AddDays(tt.n))
		})
	}
}

// TestDateAgreesWithTime checks AddDays and Weekday against package time for random
// dates and offsets.
func TestDateAgreesWithTime(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		tm := time.Date(rapid.IntRange(1, 9999).Draw(t, "year"), time.January, 1, 0, 0, 0, 0, time.UTC).
			AddDate(0, 0, rapid.IntRange(0, 364).Draw(t, "yday"))
		n := rapid.IntRange(-100_000, 100_000).Draw(t, "n")
		d := calendar.DateOf(tm, time.UTC)
		require.True(t, d.Valid())
		require.Equal(t, tm.Weekday(), d.Weekday())
		want := tm.AddDate(0, 0, n)
		got := d.AddDays(n)
		if want.Year() < 1 || want.Year() > 9999 {
			require.Zero(t, got)
			return
		}
		require.Equal(t, calendar.DateOf(want, time.UTC), got)
	})
}

func TestDateOf(t *testing.T) {
	t.Parallel()
	lateUTC := time.Date(2025, time.October, 31, 22, 30, 0, 0, time.UTC) // 01:30 Nov 1 in Moscow
	tests := []struct {
		name string
		t    time.Time
		loc  *time.Location
		want calendar.Date
	}{
		{"6.3 late in the UTC day is already the next day in Moscow", lateUTC, calendar.Moscow(), day("2025-11-01")},
		{"the same instant in UTC", lateUTC, time.UTC, day("2025-10-31")},
		{"6.3 a nil location means Moscow", lateUTC, nil, day("2025-11-01")},
		{"20:59:59 UTC is still the same day in Moscow", time.Date(2025, time.October, 31, 20, 59, 59, 0, time.UTC), calendar.Moscow(), day("2025-10-31")},
		{"21:00 UTC is midnight in Moscow", time.Date(2025, time.October, 31, 21, 0, 0, 0, time.UTC), calendar.Moscow(), day("2025-11-01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, calendar.DateOf(tt.t, tt.loc))
		})
	}
}

func TestDateStartsAtEndsAt(t *testing.T) {
	t.Parallel()
	msk := calendar.Moscow()
	d := day("2025-11-05")
	require.Equal(t, time.Date(2025, time.November, 4, 21, 0, 0, 0, time.UTC), d.StartsAt(msk).UTC())
	// art. 194: the act may be done until 24:00 of the last day, which is 00:00 of the next.
	end := d.EndsAt(msk)
	require.Equal(t, time.Date(2025, time.November, 5, 21, 0, 0, 0, time.UTC), end.UTC())
	require.Equal(t, d, calendar.DateOf(end.Add(-time.Nanosecond), msk), "the last instant in time is still on d")
	require.Equal(t, d.AddDays(1), calendar.DateOf(end, msk), "EndsAt itself is already the next day")
	require.Equal(t, d.EndsAt(msk), d.EndsAt(nil), "nil means Moscow")
	require.Equal(t, time.Date(2025, time.November, 6, 0, 0, 0, 0, time.UTC), d.EndsAt(time.UTC))

	bad := calendar.Date{Year: 2025, Month: time.February, Day: 29}
	require.True(t, bad.StartsAt(msk).IsZero())
	require.True(t, bad.EndsAt(msk).IsZero())
	require.True(t, day("9999-12-31").EndsAt(msk).IsZero())
	require.Equal(t, time.Weekday(-1), bad.Weekday())
}

func TestDateText(t *testing.T) {
	t.Parallel()
	type wrapper struct {
		Due calendar.Date `json:"due"`
	}
	b, err := json.Marshal(wrapper{Due: day("2025-11-01")})
	require.NoError(t, err)
	require.JSONEq(t, `{"due":"2025-11-01"}`, string(b))

	var back wrapper
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, day("2025-11-01"), back.Due)

	_, err = json.Marshal(wrapper{Due: calendar.Date{Year: 2025, Month: 2, Day: 30}})
	require.ErrorIs(t, err, calendar.ErrInvalidDate)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"due":"2025-02-30"}`), &back), calendar.ErrInvalidDate)
}

func TestMoscowLoadsFromEmbeddedTZData(t *testing.T) {
	t.Parallel()
	msk := calendar.Moscow()
	require.Equal(t, "Europe/Moscow", msk.String())
	_, offset := time.Date(2025, time.July, 1, 12, 0, 0, 0, msk).Zone()
	require.Equal(t, 3*60*60, offset)
	// Before 2011 Moscow kept daylight saving time: only a real tz database knows that.
	_, winter := time.Date(2010, time.January, 15, 12, 0, 0, 0, msk).Zone()
	require.Equal(t, 3*60*60, winter)
	_, summer := time.Date(2010, time.July, 15, 12, 0, 0, 0, msk).Zone()
	require.Equal(t, 4*60*60, summer)
}
