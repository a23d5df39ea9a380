package calendar

import (
	"sync"
	"time"

	// The blank import embeds the IANA time zone database (about 450 KB) into every
	// binary that imports calendar, so that time.LoadLocation("Europe/Moscow") and any
	// other zone a subscription names work in a bare container (scratch, distroless)
	// that has no /usr/share/zoneinfo. The system database, when present, still wins:
	// Go consults the embedded copy only when the zone is not found elsewhere.
	_ "time/tzdata"
)

// Moscow returns the Europe/Moscow location, the library's default location for
// calendar reasoning (TERMS 6.3). It is loaded once and shared; a *time.Location is
// safe for concurrent use.
//
// Moscow has been UTC+3 all year since 26 October 2014. Should the zone somehow fail
// to load despite the embedded database, Moscow falls back to a fixed UTC+3 zone named
// "MSK", which is right for every instant since then.
func Moscow() *time.Location { return moscow() }

var moscow = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return time.FixedZone("MSK", 3*60*60)
	}
	return loc
})
