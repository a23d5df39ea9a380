package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRowsStatementRepeatsItsTuple: the statement for n rows repeats the tuple n times, each
// with its own placeholders ($1–$7 for the first row, $8–$14 for the second…, a placeholder
// used twice in the tuple renumbered both times), and puts head and tail around them once.
func TestRowsStatementRepeatsItsTuple(t *testing.T) {
	s := newRowsStatement("INSERT INTO t (a, b) VALUES ", "($1, coalesce($2, $1))", " ON CONFLICT DO NOTHING", false)
	require.Equal(t, 2, s.params)
	require.Equal(t, "INSERT INTO t (a, b) VALUES ($1, coalesce($2, $1)) ON CONFLICT DO NOTHING", s.sql(1))
	require.Equal(t, "INSERT INTO t (a, b) VALUES ($1, coalesce($2, $1)), ($3, coalesce($4, $3)), ($5, coalesce($6, $5)) ON CONFLICT DO NOTHING", s.sql(3))
	require.Equal(t, 7, insertUsageSQL.params)
	require.Equal(t, 10, updateAttemptSQL.params)
	require.Equal(t, 10, updateSubscriptionRenewAtSQL.params)
	require.Contains(t, insertEventSQL.sql(2), "($8, $9, $10::uuid, coalesce(nullif($11, ''), (SELECT customer_id FROM billing_subscriptions WHERE id = $10::uuid), '')")
	require.Contains(t, insertEventSQL.sql(2), "$13, $14)")
	require.Panics(t, func() { newRowsStatement("UPDATE t SET a = $1 FROM (VALUES ", "($2)", ") v", true) }, "a placeholder outside the tuple")
}

// TestPipelineKeepsTheOrderOfAUnitsRows: held rows go out statement by statement in the
// order each statement was first held, but a row never before an earlier row of its own
// unit, and an update never twice for one unit in one statement: the rows held so far are
// queued first (sealRows). Rows of other units join the statements already held.
func TestPipelineKeepsTheOrderOfAUnitsRows(t *testing.T) {
	a := newRowsStatement("INSERT INTO a (x) VALUES ", "($1)", "", false)
	b := newRowsStatement("INSERT INTO b (x) VALUES ", "($1)", "", false)
	u := newRowsStatement("UPDATE c SET x = v.x FROM (VALUES ", "($1::int, $2::int)", ") AS v(id, x) WHERE c.id = v.id", true)
	queued := func(p *Pipeline) []string {
		var out []string
		for _, q := range p.batch.QueuedQueries {
			out = append(out, q.SQL)
		}
		return out
	}

	p := &Pipeline{}
	p.holdRow("X", a, []any{1})
	p.holdRow("X", b, []any{2})
	p.holdRow("Y", a, []any{3})
	p.holdRow("Y", b, []any{4})
	p.holdRow("Y", b, []any{5}) // an insert may take two rows of a unit
	require.Empty(t, queued(p), "held, not queued")
	p.holdRow("X", a, []any{6}) // after X's row of b: may not join a's statement
	require.Equal(t, []string{a.sql(2), b.sql(2), b.sql(1)}, queued(p), "a: X, Y; b: X, Y, Y (64, 32, … rows a statement)")
	require.Equal(t, []any{1, 3}, p.batch.QueuedQueries[0].Arguments)
	require.Equal(t, []any{2, 4}, p.batch.QueuedQueries[1].Arguments)
	require.Equal(t, []any{5}, p.batch.QueuedQueries[2].Arguments)
	p.sealRows()
	require.Equal(t, []any{6}, p.batch.QueuedQueries[3].Arguments, "X's second row of a comes after its row of b")

	p = &Pipeline{}
	p.holdRow("X", u, []any{1, 1})
	p.holdRow("Y", u, []any{2, 2})
	p.holdRow("X", u, []any{1, 3}) // X's row updated again: never in the same statement
	require.Equal(t, []string{u.sql(2)}, queued(p))
	p.sealRows()
	require.Equal(t, []string{u.sql(2), u.sql(1)}, queued(p))

	p = &Pipeline{}
	for i := range 100 {
		p.holdRow(string(rune('A'+i%26))+string(rune('a'+i/26)), a, []any{i})
	}
	p.sealRows()
	require.Equal(t, []string{a.sql(64), a.sql(32), a.sql(4)}, queued(p), "100 rows: 64 + 32 + 4")
	require.Equal(t, 99, p.batch.QueuedQueries[2].Arguments[3])
}
