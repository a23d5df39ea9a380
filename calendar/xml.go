package calendar

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ErrInvalidXML is returned for a calendar file that is malformed (not XML, no year,
// a day that does not exist, an unknown day type) or contradictory (the same day
// listed with two types, a "working weekend day" on a weekday, a holiday of Labour
// Code art. 112 made a working day). The wrapped message names the day at fault.
var ErrInvalidXML = errors.New("calendar: invalid calendar file")

// maxXMLSize bounds what LoadXML reads; a year's file from xmlcalendar.ru is about 3 KB.
const maxXMLSize = 1 << 20

// LoadXML returns Russia with one year loaded from r, a file in the xmlcalendar.ru
// format; it is Russia().WithXML(r). See WithXML for the format and the checks.
func LoadXML(r io.Reader) (*Calendar, error) {
	return Russia().WithXML(r)
}

// WithXML returns a new Calendar: c plus the year in r, which becomes Known. The year
// replaces c's days for that year, built-in decree included, so a corrected decree can
// be loaded; c itself does not change. Call it once per file to add several years.
//
// The format is xmlcalendar.ru's (https://xmlcalendar.ru/data/ru/2027/calendar.xml),
// one year per file:
//
//	<calendar year="2027" lang="ru" date="2026.09.01" country="ru">
//	  <holidays><holiday id="1" title="..."/>...</holidays>
//	  <days>
//	    <day d="01.01" t="1" h="1"/>        t=1: day off (holiday or moved day off)
//	    <day d="02.22" t="2"/>              t=2: shortened working day (may be a Saturday)
//	    <day d="04.27" t="3" f="04.29"/>    t=3: working day on a Saturday or Sunday
//	  </days>
//	</calendar>
//
// A day not listed is a working day from Monday to Friday and off on Saturday and
// Sunday. The h (holiday id) and f (moved from) attributes are informational; f must
// still be a valid "MM.DD" when present. Shortened days count as working days; the
// calendar does not track the shortened hour.
//
// WithXML refuses, with ErrInvalidXML, a file that is not well-formed XML, is larger
// than 1 MiB, holds more than one calendar, names a country other than "ru", lacks a
// year in MinYear..MaxYear, lists no days, has a day that is not a real "MM.DD" date
// of that year or a t other than 1, 2, 3, lists one day twice with different types,
// marks a weekday t=3, or leaves a holiday of Labour Code art. 112 a working day.
// On error the result is nil and nothing is loaded.
func (c *Calendar) WithXML(r io.Reader) (*Calendar, error) {
	year, days, err := parseXML(r)
	if err != nil {
		return nil, err
	}
	return &Calendar{data: c.get().withYear(year, days)}, nil
}

// xmlCalendar mirrors the root element of an xmlcalendar.ru file.
type xmlCalendar struct {
	XMLName xml.Name `xml:"calendar"`
	Year    string   `xml:"year,attr"`
	Country string   `xml:"country,attr"`
	Days    *struct {
		Day []xmlDay `xml:"day"`
	} `xml:"days"`
}

// xmlDay is one <day d="MM.DD" t="1|2|3" h="..." f="MM.DD"/> element.
type xmlDay struct {
	D string `xml:"d,attr"`
	T string `xml:"t,attr"`
	F string `xml:"f,attr"`
}

// The day types of the format.
const (
	xmlDayOff      = "1"
	xmlShortened   = "2"
	xmlWorkWeekend = "3"
)

// parseXML reads and checks one calendar file and returns its year's days.
func parseXML(r io.Reader) (int, yearDays, error) {
	bad := func(format string, args ...any) (int, yearDays, error) {
		return 0, yearDays{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidXML}, args...)...)
	}
	if r == nil {
		return bad("no reader")
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxXMLSize+1))
	if err != nil {
		return bad("reading: %v", err)
	}
	if len(raw) > maxXMLSize {
		return bad("larger than %d bytes", maxXMLSize)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var doc xmlCalendar
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return bad("no <calendar> element")
	} else if err != nil {
		return bad("%v", err)
	}
	if err := expectEnd(dec); err != nil {
		return bad("%v", err)
	}
	if doc.Country != "" && doc.Country != "ru" {
		return bad("country %q: this calendar is Russian (ru); implement BusinessCalendar for another country", doc.Country)
	}
	year, err := strconv.Atoi(doc.Year)
	if err != nil || year < MinYear || year > MaxYear {
		return bad("year %q is not a year in %d..%d", doc.Year, MinYear, MaxYear)
	}
	if doc.Days == nil || len(doc.Days.Day) == 0 {
		return bad("year %d lists no days", year)
	}

	yd := weekends(year)
	seen := make(map[Date]string, len(doc.Days.Day))
	for _, x := range doc.Days.Day {
		d, ok := parseMonthDay(year, x.D)
		if !ok {
			return bad("day d=%q is not a date MM.DD of %d", x.D, year)
		}
		if x.F != "" {
			if _, ok := parseMonthDay(year, x.F); !ok {
				return bad("day %s: f=%q is not a date MM.DD", d, x.F)
			}
		}
		if prev, dup := seen[d]; dup && prev != x.T {
			return bad("day %s is listed twice, as t=%q and t=%q", d, prev, x.T)
		}
		seen[d] = x.T
		i := dayOfYear(d)
		switch x.T {
		case xmlDayOff:
			yd.work.clear(i)
		case xmlShortened:
			yd.work.set(i)
		case xmlWorkWeekend:
			if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
				return bad("day %s: t=3 (working weekend day) on a %s", d, wd)
			}
			yd.work.set(i)
		default:
			return bad("day %s: unknown type t=%q, want 1, 2 or 3", d, x.T)
		}
	}
	for day := 1; day <= 8; day++ {
		if d := (Date{Year: year, Month: time.January, Day: day}); yd.work.has(dayOfYear(d)) {
			return bad("day %s is a holiday of Labour Code art. 112 but the file makes it a working day", d)
		}
	}
	for _, h := range art112Holidays {
		if d := (Date{Year: year, Month: h.month, Day: h.day}); yd.work.has(dayOfYear(d)) {
			return bad("day %s is a holiday of Labour Code art. 112 but the file makes it a working day", d)
		}
	}
	yd.known = true
	return year, yd, nil
}

// expectEnd checks that nothing but white space, comments and processing
// instructions follows the root element.
func expectEnd(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("text after the calendar element")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return fmt.Errorf("more than one calendar in the file")
		}
	}
}

// parseMonthDay reads "MM.DD" as a date of year y.
func parseMonthDay(y int, s string) (Date, bool) {
	if len(s) != 5 || s[2] != '.' {
		return Date{}, false
	}
	m, ok1 := atoi(s[0:2])
	d, ok2 := atoi(s[3:5])
	date := Date{Year: y, Month: time.Month(m), Day: d}
	return date, ok1 && ok2 && date.Valid()
}
