package billing_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/subscription"
)

// TestSweepEmptiesTheArgsIndexPendingList: the sweep probes River's GIN index on args once
// per due row, and a probe reads the index's whole pending list, which renewals keep full
// (BENCHMARKS.md, "Renewals: memory with a million due": 10 ms a probe instead of 40 µs).
// So the sweep empties that list before it probes: after River's inserts filled it, a
// sweep leaves no pending page behind.
func TestSweepEmptiesTheArgsIndexPendingList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	schema := billingtest.RiverSchema()
	// Autovacuum would empty the list on its own, now and then: not in this database.
	_, err := b.pool.Exec(ctx, "ALTER TABLE "+store.RiverTable(schema, "river_job")+" SET (autovacuum_enabled = false)")
	require.NoError(t, err)
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Schema: schema})
	require.NoError(t, err)
	fill := func() {
		t.Helper()
		params := make([]river.InsertManyParams, 2000)
		for i := range params {
			params[i] = river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: uuid.NewString(), Period: 1, Try: 1},
				InsertOpts: &river.InsertOpts{ScheduledAt: time.Now().AddDate(1, 0, 0)}}
		}
		_, err := inserter.InsertMany(ctx, params)
		require.NoError(t, err)
	}

	fill()
	pages, err := store.CleanArgsPendingList(ctx, b.pool, schema)
	require.NoError(t, err)
	require.Positive(t, pages, "precondition: River's inserts leave their entries in the pending list")

	fill()
	_, err = b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	pages, err = store.CleanArgsPendingList(ctx, b.pool, schema)
	require.NoError(t, err)
	require.Zero(t, pages, "the sweep emptied the pending list before it probed the index")
}

// sweepBacklog gives a test five subscriptions whose period ended, each with its renewal job
// waiting (a River client that never starts, as in a backlog) but the last in the sweep's
// order (period end, the same for all, then ID), whose job is deleted: the one the sweep
// must find. It returns the bundle, the five IDs in the sweep's order and River's job table.
func sweepBacklog(t *testing.T) (*renewalBundle, []string, string) {
	t.Helper()
	ctx := context.Background()
	gw := billingtest.NewGateway()
	b := &renewalBundle{testBundle: setupWith(t, func(c *billing.Config) { c.Gateway = gw }), gateway: gw}
	b.withRiverNotStarted(t)
	b.publish(t, "pro", "990", "generations", 500)
	var subs []subscription.Subscription
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5"} {
		subs = append(subs, b.checkout(t, c, "tok-"+c))
	}
	slices.SortFunc(subs, func(x, y subscription.Subscription) int { return strings.Compare(x.ID, y.ID) })
	lost := subs[len(subs)-1].ID
	table := store.RiverTable(billingtest.RiverSchema(), "river_job")
	tag, err := b.pool.Exec(ctx, "DELETE FROM "+table+" WHERE kind = 'billing_renew' AND args->>'subscription_id' = $1", lost)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "precondition: the subscription's renewal job")
	b.clock.Set(subs[0].Current.End.Add(time.Hour)) // due, each but the last with its job waiting
	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = s.ID
	}
	return b, ids, table
}

// renewalJobs counts the renewal jobs of subscription id waiting in River's table.
func renewalJobs(t *testing.T, b *renewalBundle, table, id string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+
		" WHERE kind = 'billing_renew' AND state IN ('available', 'scheduled') AND args->>'subscription_id' = $1", id).Scan(&n))
	return n
}

// TestSweepGoesOnWhereTheLastStopped: a sweep looks at a bounded number of chunks, and the
// next sweep goes on from where it stopped, so a subscription without a job behind a long
// backlog is found within a few sweeps, not never; after the last due subscription the walk
// starts again from the first.
func TestSweepGoesOnWhereTheLastStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, ids, table := sweepBacklog(t)
	billing.SetSweepChunk(b.engine, 2, 1) // one chunk of two per sweep
	sweep := func() int {
		t.Helper()
		n, err := b.engine.SweepDueRenewals(ctx)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, []int{0, 0, 1}, []int{sweep(), sweep(), sweep()}, "chunks [1 2], [3 4], then [5]: found")
	require.Equal(t, 1, renewalJobs(t, b, table, ids[4]), "the fifth's renewal job is back")
	// The first one loses its job now: the walk starts again from the first.
	_, err := b.pool.Exec(ctx, "DELETE FROM "+table+" WHERE kind = 'billing_renew' AND args->>'subscription_id' = $1", ids[0])
	require.NoError(t, err)
	require.Equal(t, 1, sweep(), "after the last due subscription the next sweep starts at the first")
	require.Equal(t, 1, renewalJobs(t, b, table, ids[0]))
}

// TestSweepLooksPastAChunkOfWaitingJobs: the sweep looks at the due subscriptions a chunk
// at a time, and a chunk whose every subscription has its renewal job waiting (a backlog of
// renewals) does not end the sweep: the subscription without a job after it is still found.
func TestSweepLooksPastAChunkOfWaitingJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, ids, table := sweepBacklog(t)
	billing.SetSweepChunk(b.engine, 2, 0)

	n, err := b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the one due subscription without a job, after two chunks of two whose jobs wait")
	require.Equal(t, 1, renewalJobs(t, b, table, ids[4]), "its renewal job is back")
}

// TestSweepByARoleThatMayNotCleanThePendingList: PostgreSQL lets only the owner of River's
// GIN index (or a superuser) empty its pending list. An engine whose role may only read and
// write the tables sweeps as before: no error, and the log says once why the list stays.
func TestSweepByARoleThatMayNotCleanThePendingList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := billingtest.NewPool(t)
	role := "billing_sweeper_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := owner.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER"); err != nil {
		t.Skipf("this test needs a role that may create roles: %v", err)
	}
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = owner.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	schemas := []string{"public"}
	if s := billingtest.RiverSchema(); s != "" {
		schemas = append(schemas, s)
	}
	for _, s := range schemas {
		for _, grant := range []string{"GRANT USAGE ON SCHEMA %s TO %s", "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s",
			"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %s TO %s", "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %s TO %s"} {
			_, err := owner.Exec(ctx, fmt.Sprintf(grant, s, role))
			require.NoError(t, err)
		}
	}
	cfg := owner.Config().Copy()
	cfg.ConnConfig.User = role
	cfg.ConnConfig.Password = ""
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = store.CleanArgsPendingList(ctx, pool, billingtest.RiverSchema())
	require.True(t, store.IsInsufficientPrivilege(err), "precondition: the role may not clean the list: %v", err)

	var logs syncBuffer
	ecfg := billing.DefaultConfig()
	ecfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	engine, err := billing.New(pool, ecfg)
	require.NoError(t, err)
	workers := river.NewWorkers()
	require.NoError(t, engine.RegisterWorkers(workers))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Schema: billingtest.RiverSchema()})
	require.NoError(t, err)
	require.NoError(t, engine.UseRiver(client))
	for range 2 {
		_, err := engine.SweepDueRenewals(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "may not clean the pending list"), "told once:\n%s", logs.String())
}

// TestSweepRetriesAFailedEnqueueNextSweep: a renewal the sweep found but could not enqueue
// (here a trigger refuses River's insert once) is tried again by the very next sweep, though
// the sweep's cursor has passed it (found by a review's probe).
func TestSweepRetriesAFailedEnqueueNextSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, ids, table := sweepBacklog(t) // ids[4] has no job
	billing.SetSweepChunk(b.engine, 2, 1)
	_, err := b.pool.Exec(ctx, "DELETE FROM "+table+" WHERE kind = 'billing_renew' AND args->>'subscription_id' = $1", ids[0])
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `CREATE FUNCTION public.sweep_probe_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.args->>'subscription_id' = '`+ids[0]+`' THEN RAISE EXCEPTION 'probe: transient'; END IF; RETURN NEW; END $$`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "CREATE TRIGGER sweep_probe_fail BEFORE INSERT ON "+table+" FOR EACH ROW EXECUTE FUNCTION public.sweep_probe_fail()")
	require.NoError(t, err)

	n, err := b.engine.SweepDueRenewals(ctx)
	require.ErrorContains(t, err, ids[0], "sweep 1: the enqueue of the first fails, and is named")
	require.Equal(t, 0, n)
	_, err = b.pool.Exec(ctx, "DROP TRIGGER sweep_probe_fail ON "+table)
	require.NoError(t, err)

	n, err = b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "sweep 2 enqueues the first, though its cursor is past it")
	require.Equal(t, 1, renewalJobs(t, b, table, ids[0]))
}
