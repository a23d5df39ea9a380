package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventRow is a stored business event (migration 0014).
type EventRow struct {
	ID             string
	Seq            int64
	Kind           string
	SubscriptionID string // "" for a customer's event
	CustomerID     string
	Subject        string
	OccurredAt     time.Time
	Data           json.RawMessage
	DeliveredAt    time.Time
}

// InsertEvent stores e in tx unless an event with its ID exists (the same fact reported
// again): it returns true when the row is new. An empty CustomerID is filled from the
// subscription's row.
func InsertEvent(ctx context.Context, tx pgx.Tx, e EventRow) (bool, error) {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	var sub *string
	if e.SubscriptionID != "" {
		sub = &e.SubscriptionID
	}
	tag, err := execRow(ctx, tx, e.SubscriptionID, insertEventSQL, e.ID, e.Kind, sub, e.CustomerID, e.Subject, e.OccurredAt, data)
	return tag.RowsAffected() == 1, err
}

var insertEventSQL = newRowsStatement(`INSERT INTO billing_events (id, kind, subscription_id, customer_id, subject, occurred_at, data)
		VALUES `, `($1, $2, $3::uuid, coalesce(nullif($4, ''), (SELECT customer_id FROM billing_subscriptions WHERE id = $3::uuid), ''),
		        $5, $6, $7)`, `
		ON CONFLICT (id) DO NOTHING`, false)

const eventColumns = `id::text, seq, kind, coalesce(subscription_id::text, ''), customer_id, subject, occurred_at, data, delivered_at`

func scanEvent(row pgx.Row) (EventRow, error) {
	var r EventRow
	var delivered *time.Time
	if err := row.Scan(&r.ID, &r.Seq, &r.Kind, &r.SubscriptionID, &r.CustomerID, &r.Subject, &r.OccurredAt, &r.Data, &delivered); err != nil {
		return r, interpret(err)
	}
	if delivered != nil {
		r.DeliveredAt = *delivered
	}
	return r, nil
}

// GetEvent reads event id.
func GetEvent(ctx context.Context, q Querier, id string) (EventRow, error) {
	return scanEvent(q.QueryRow(ctx, `SELECT `+eventColumns+` FROM billing_events WHERE id = $1`, id))
}

// MarkEventDelivered records that event id was delivered at at (the first delivery is kept).
func MarkEventDelivered(ctx context.Context, q Querier, id string, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE billing_events SET delivered_at = coalesce(delivered_at, $2) WHERE id = $1`, id, at)
	return err
}

// EventFilter selects events for ListEvents. Empty fields select all.
type EventFilter struct {
	SubscriptionID string
	CustomerID     string
	Kind           string
	AfterSeq       int64
	Limit          int
}

// ListEvents returns the events matching f with seq above f.AfterSeq, in seq order, at
// most f.Limit.
func ListEvents(ctx context.Context, q Querier, f EventFilter) ([]EventRow, error) {
	var sub *string
	if f.SubscriptionID != "" {
		sub = &f.SubscriptionID
	}
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM billing_events
		WHERE seq > $1 AND ($2::uuid IS NULL OR subscription_id = $2::uuid) AND ($3 = '' OR customer_id = $3)
		  AND ($4 = '' OR kind = $4)
		ORDER BY seq LIMIT $5`, f.AfterSeq, sub, f.CustomerID, f.Kind, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventRow, error) { return scanEvent(r) })
}

// EventSeq returns the seq of event id, or ErrNotFound.
func EventSeq(ctx context.Context, q Querier, id string) (int64, error) {
	var seq int64
	err := q.QueryRow(ctx, `SELECT seq FROM billing_events WHERE id = $1`, id).Scan(&seq)
	return seq, interpret(err)
}

// UndeliveredWithoutJob returns the IDs of undelivered events (oldest first, at most limit)
// that have no delivery job still to run in River's job table (of riverSchema): River
// discarded it after its last attempt, or it was deleted. It runs with sweepSettings.
func UndeliveredWithoutJob(ctx context.Context, db Beginner, riverSchema string, limit int) ([]string, error) {
	var ids []string
	err := withSettings(ctx, db, sweepSettings, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, undeliveredWithoutJobSQL(riverSchema), limit)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return ids, err
}

// undeliveredWithoutJobSQL is UndeliveredWithoutJob's statement ($1 the limit) on River's
// table in riverSchema: the undelivered events in seq order from their partial index
// (billing_events_undelivered_idx, migration 0014), each job looked for by containment in
// River's GIN index on args (see dueWithoutJobSQL), not among every delivery job River
// keeps (completed ones stay a day).
func undeliveredWithoutJobSQL(riverSchema string) string {
	return `SELECT e.id::text FROM billing_events e
		WHERE e.delivered_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM ` + RiverTable(riverSchema, "river_job") + ` j WHERE j.kind = 'billing_deliver_event'
		        AND j.state IN ('available', 'scheduled', 'running', 'retryable', 'pending')
		        AND j.args @> jsonb_build_object('event_id', e.id::text))
		ORDER BY e.seq LIMIT $1`
}

// ConsumeCrossing is the common-case Consume statement for one engine's usage thresholds:
// consumeUnlessExhaustingSQL that also leaves alone a call that would take a hard-limited
// meter's used volume across one of the percentages (a usage threshold event must be
// written in the call's transaction): such a call returns no row, and the caller runs
// Consume, which decides it, in a transaction. The percentages are written into the
// statement as integer literals once, when the engine is made, not passed as an array and
// unnested on every call, a subquery planned and run per row (BENCHMARKS.md, "Usage:
// thresholds as literals"). Make it with [NewConsumeCrossing].
type ConsumeCrossing struct {
	sql   string // empty: no percentages, consumeUnlessExhaustingSQL
	batch string // consumeBatchSQL with the same percentages (ConsumeBatch)
}

// NewConsumeCrossing returns the statement for percents, each from 1 to 100 (the engine's
// validated Config.UsageThresholds); it panics on any other, since it writes them into SQL.
func NewConsumeCrossing(percents []int) ConsumeCrossing {
	if len(percents) == 0 {
		return ConsumeCrossing{batch: consumeBatchSQL("")}
	}
	const at = "AND u.used + $4 < u.quantity)"
	if strings.Count(consumeUnlessExhaustingSQL, at) != 1 {
		panic("store: consumeUnlessExhaustingSQL changed: update NewConsumeCrossing")
	}
	crossings := make([]string, len(percents))
	for i, pct := range percents {
		if pct < 1 || pct > 100 {
			panic(fmt.Sprintf("store: NewConsumeCrossing: percentage %d out of 1..100", pct))
		}
		crossings[i] = fmt.Sprintf("(u.used * 100 < %[1]d * u.quantity AND (u.used + $4) * 100 >= %[1]d * u.quantity)", pct)
	}
	notCrossing := `
      AND NOT (u.hard AND (` + strings.Join(crossings, `
               OR `) + `))`
	return ConsumeCrossing{sql: strings.Replace(consumeUnlessExhaustingSQL, at, at+notCrossing, 1),
		batch: consumeBatchSQL(notCrossing)}
}

// Consume is ConsumeUnlessExhausting that also counts nothing when the call would cross
// one of the percentages of a hard limit: the caller then runs Consume in a transaction,
// where it reports the crossing.
func (c ConsumeCrossing) Consume(ctx context.Context, q Querier, subID, key, meter string, quantity int64, now time.Time) (ConsumeOutcome, error) {
	if c.sql == "" {
		return ConsumeUnlessExhausting(ctx, q, subID, key, meter, quantity, now)
	}
	var o ConsumeOutcome
	err := q.QueryRow(ctx, c.sql, subID, key, meter, quantity, now).Scan(&o.Period, &o.UsedAfter, &o.Quantity)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, nil
	}
	o.Applied = err == nil
	return o, err
}

// MeterIsHard reports whether meter of period of subscription subID has a hard limit.
func MeterIsHard(ctx context.Context, q Querier, subID string, period int, meter string) (bool, error) {
	var hard bool
	err := q.QueryRow(ctx, `SELECT hard FROM billing_usage WHERE subscription_id = $1 AND period = $2 AND meter = $3`,
		subID, period, meter).Scan(&hard)
	return hard, interpret(err)
}
