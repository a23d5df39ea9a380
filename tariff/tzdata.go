package tariff

// The time zone database is embedded so that Period.End can load any location
// (Europe/Moscow by default in the engine) in a bare container without /usr/share/zoneinfo.
// It adds about 450 KB to a binary that imports this package.
import _ "time/tzdata"
