package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNewConsumeCrossing: the thresholds are written into the statement as literals, one
// crossing test per percentage; none leaves the plain common-case statement; a value that
// is not a percentage from 1 to 100 is refused (it would be written into SQL).
func TestNewConsumeCrossing(t *testing.T) {
	require.Empty(t, NewConsumeCrossing(nil).sql, "no thresholds: ConsumeUnlessExhausting")
	require.Empty(t, NewConsumeCrossing([]int{}).sql)

	c := NewConsumeCrossing([]int{80, 100})
	require.Contains(t, c.sql, "(u.used * 100 < 80 * u.quantity AND (u.used + $4) * 100 >= 80 * u.quantity)")
	require.Contains(t, c.sql, "(u.used * 100 < 100 * u.quantity AND (u.used + $4) * 100 >= 100 * u.quantity)")
	require.NotContains(t, c.sql, "$6", "no array parameter left")
	require.True(t, strings.HasPrefix(c.sql, consumeUnlessExhaustingSQL[:strings.Index(consumeUnlessExhaustingSQL, "AND u.used + $4 < u.quantity)")]))

	for _, bad := range []int{0, -1, 101} {
		require.Panics(t, func() { NewConsumeCrossing([]int{80, bad}) }, "%d", bad)
	}
}
