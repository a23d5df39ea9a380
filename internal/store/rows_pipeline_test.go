package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
)

// A Pipeline writes the rows it holds many to a statement (100 audit entries and 100 events:
// 64 + 32 + 4 rows each, six statements), each row as the statement of one row writes it,
// the events in the order they were held; and when one of the rows is not written (an event
// whose id exists), the flush fails with ErrPipelineDiverged and the transaction writes none.
func TestPipelineWritesHeldRowsManyToAStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	event := func(i int) store.EventRow {
		return store.EventRow{ID: uuid.NewString(), Kind: fmt.Sprintf("test.e%03d", i), SubscriptionID: uuid.NewString(),
			CustomerID: fmt.Sprintf("c%d", i), OccurredAt: at, Data: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))}
	}
	count := func() (audits, events int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM billing_audit_log),
			(SELECT count(*) FROM billing_events)`).Scan(&audits, &events))
		return audits, events
	}

	var first store.EventRow
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		for i := range 100 {
			e := event(i)
			if i == 0 {
				first = e
			}
			require.NoError(t, store.InsertAudit(ctx, p, store.AuditEntry{At: at, Actor: "system", Action: "test",
				Subject: "subscription:" + e.SubscriptionID, Reason: fmt.Sprint(i), Detail: map[string]any{"i": i}}))
			isNew, err := store.InsertEvent(ctx, p, e)
			require.NoError(t, err)
			require.True(t, isNew, "a held row answers written")
		}
		require.Equal(t, 6, store.QueuedStatements(p))
		return p.Flush(ctx)
	})
	require.NoError(t, err)
	audits, events := count()
	require.Equal(t, 100, audits)
	require.Equal(t, 100, events)
	rows, err := pool.Query(ctx, `SELECT kind FROM billing_events ORDER BY seq`)
	require.NoError(t, err)
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for i, k := range kinds {
		require.Equal(t, fmt.Sprintf("test.e%03d", i), k, "in the order held")
	}
	got, err := store.GetEvent(ctx, pool, first.ID)
	require.NoError(t, err)
	require.Equal(t, first.SubscriptionID, got.SubscriptionID)
	require.Equal(t, "c0", got.CustomerID)
	require.JSONEq(t, `{"i": 0}`, string(got.Data))
	audit, err := store.ListAudit(ctx, pool, "subscription:"+first.SubscriptionID)
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Equal(t, "0", audit[0].Reason)
	require.EqualValues(t, map[string]any{"i": float64(0)}, audit[0].Detail)

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		for _, e := range []store.EventRow{event(200), first, event(201)} { // first exists
			_, err := store.InsertEvent(ctx, p, e)
			require.NoError(t, err)
		}
		return p.Flush(ctx)
	})
	require.ErrorIs(t, err, store.ErrPipelineDiverged)
	audits, events = count()
	require.Equal(t, 100, audits)
	require.Equal(t, 100, events, "nothing of the diverged batch")
}

// The same event held twice in one Pipeline goes into one multi-row
// INSERT … ON CONFLICT (id) DO NOTHING. PostgreSQL skips the second tuple without an error,
// so the statement writes n-1 rows: the flush must fail with ErrPipelineDiverged (as the
// second one-row Exec did) and write nothing, never report both as new.
func TestPipelineSameEventHeldTwiceDiverges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	e := store.EventRow{ID: uuid.NewString(), Kind: "test.dup", SubscriptionID: uuid.NewString(), CustomerID: "c1",
		OccurredAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Data: json.RawMessage(`{}`)}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		for range 2 {
			isNew, err := store.InsertEvent(ctx, p, e)
			require.NoError(t, err)
			require.True(t, isNew)
		}
		return p.Flush(ctx)
	})
	require.ErrorIs(t, err, store.ErrPipelineDiverged)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM billing_events`).Scan(&n))
	require.Zero(t, n)

	// Outside a Pipeline the one-row form answers as before: new, then not new.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	for i, want := range []bool{true, false} {
		isNew, err := store.InsertEvent(ctx, tx, e)
		require.NoError(t, err)
		require.Equal(t, want, isNew, "insert %d", i)
	}
}
