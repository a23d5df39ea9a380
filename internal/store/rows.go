package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Row statements: the writes a Pipeline holds and sends many rows at a time (issue 18).
//
// A rowsStatement writes one row per tuple of a VALUES list: an INSERT's own VALUES, or an
// UPDATE's FROM (VALUES …) AS v(…) joined on the row's key. Written once, with its tuple's
// placeholders numbered from $1, it is the same statement for one row (every caller that is
// not a Pipeline: execRow sends it at once) and for many (a Pipeline repeats the tuple with
// the placeholders renumbered, rowsStatement.sql): so the one-row path and a batch's rows
// run the same SQL text but for the length of the list.

// rowsStatement is a statement that writes one row per tuple of its VALUES list: head, the
// tuple once per row (comma-separated), then tail. An update's tuples must name different
// rows: a Pipeline never puts two rows of one unit in one update (see holdRow).
type rowsStatement struct {
	head, tuple, tail string
	params            int  // placeholders per tuple: $1…$params
	update            bool // an UPDATE … FROM (VALUES …): a row is written once per statement

	mu    sync.Mutex
	texts map[int]string // sql(n), built once per n
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// newRowsStatement returns the statement head + tuple + tail, whose tuple's placeholders are
// $1…$n, each used at least once.
func newRowsStatement(head, tuple, tail string, update bool) *rowsStatement {
	n := 0
	for _, m := range placeholder.FindAllStringSubmatch(tuple, -1) {
		k, _ := strconv.Atoi(m[1])
		n = max(n, k)
	}
	if n == 0 || strings.Contains(head+tail, "$") {
		panic(fmt.Sprintf("store: a row statement's placeholders belong in its tuple: %q", tuple))
	}
	return &rowsStatement{head: head, tuple: tuple, tail: tail, params: n, update: update}
}

// sql is the statement for n rows: the tuple n times, the i-th (from 0) with its
// placeholders moved up by i × params.
func (s *rowsStatement) sql(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.texts[n]; ok {
		return t
	}
	var b strings.Builder
	b.WriteString(s.head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		off := i * s.params
		b.WriteString(placeholder.ReplaceAllStringFunc(s.tuple, func(p string) string {
			k, _ := strconv.Atoi(p[1:])
			return "$" + strconv.Itoa(k+off)
		}))
	}
	b.WriteString(s.tail)
	if s.texts == nil {
		s.texts = map[int]string{}
	}
	s.texts[n] = b.String()
	return s.texts[n]
}

// rowHolder is implemented by a Pipeline: execRow hands it the row, and the pipeline writes
// the rows it holds of one statement together.
type rowHolder interface {
	holdRow(unit string, s *rowsStatement, args []any)
}

// execRow writes one row with s in tx: at once, or, when tx is a Pipeline, held and written
// with the pipeline's other rows of s (answering, as a Pipeline's Exec does, that it wrote
// one row; the flush fails with ErrPipelineDiverged if it did not). unit names what the row
// belongs to (its subscription): a Pipeline keeps the order of one unit's rows.
func execRow(ctx context.Context, tx pgx.Tx, unit string, s *rowsStatement, args ...any) (pgconn.CommandTag, error) {
	if len(args) != s.params {
		return pgconn.CommandTag{}, fmt.Errorf("store: %d arguments for a row of %d", len(args), s.params)
	}
	if h, ok := tx.(rowHolder); ok {
		h.holdRow(unit, s, args)
		return pgconn.NewCommandTag("INSERT 0 1"), nil
	}
	return tx.Exec(ctx, s.sql(1), args...)
}

// heldRows are the rows of one statement a Pipeline holds.
type heldRows struct {
	stmt  *rowsStatement
	args  []any // params per row, row after row
	rows  int
	units map[string]bool
}

// maxRowsPerStatement bounds the rows of one statement a Pipeline sends: held rows go out
// in statements of 64, 32, …, 1 rows (the binary digits of their count), so that each
// statement has at most 7 texts, prepared once per connection.
const maxRowsPerStatement = 64

// holdRow holds one row of s. Held rows are written statement by statement in the order
// each statement was first held, so a row may be written before rows held earlier: never
// before an earlier row of its own unit (the held rows are queued first, sealRows), and
// never in the same update as another row of its unit. Rows of different units must not
// depend on each other.
func (p *Pipeline) holdRow(unit string, s *rowsStatement, args []any) {
	i, ok := p.heldIndex[s]
	if ok && (p.unitLast[unit] > i || s.update && p.held[i].units[unit]) {
		p.sealRows()
		ok = false
	}
	if !ok {
		if p.heldIndex == nil {
			p.heldIndex, p.unitLast = map[*rowsStatement]int{}, map[string]int{}
		}
		i = len(p.held)
		p.held = append(p.held, &heldRows{stmt: s, units: map[string]bool{}})
		p.heldIndex[s] = i
	}
	g := p.held[i]
	g.args = append(g.args, args...)
	g.rows++
	g.units[unit] = true
	p.unitLast[unit] = max(p.unitLast[unit], i)
}

// sealRows queues the held rows on the batch, statement by statement in the order each was
// first held, and holds nothing after.
func (p *Pipeline) sealRows() {
	for _, g := range p.held {
		for done := 0; done < g.rows; {
			n := maxRowsPerStatement
			for n > g.rows-done {
				n /= 2
			}
			sql := g.stmt.sql(n)
			args := g.args[done*g.stmt.params : (done+n)*g.stmt.params]
			p.batch.Queue(sql, args...).Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() != int64(n) {
					return fmt.Errorf("%w: %q wrote %d rows of %d", ErrPipelineDiverged, firstLine(sql), ct.RowsAffected(), n)
				}
				return nil
			})
			done += n
		}
	}
	p.held, p.heldIndex, p.unitLast = nil, nil, nil
}
