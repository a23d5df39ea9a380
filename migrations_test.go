package billing_test

import (
	"context"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/subscription"
)

// migrationFiles returns the names of MigrationsFS's files, in order, and their contents.
func migrationFiles(t *testing.T) ([]string, map[string]string) {
	t.Helper()
	fsys := billing.MigrationsFS()
	entries, err := fs.ReadDir(fsys, ".")
	require.NoError(t, err)
	var names []string
	bodies := map[string]string{}
	for _, e := range entries {
		body, err := fs.ReadFile(fsys, e.Name())
		require.NoError(t, err)
		names = append(names, e.Name())
		bodies[e.Name()] = string(body)
	}
	return names, bodies
}

// applyFiles runs the named files of MigrationsFS in order with plain pgx, each in one
// transaction, as a host's tool would: no engine code involved.
func applyFiles(t *testing.T, pool *pgxpool.Pool, names []string, bodies map[string]string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range names {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, bodies[n])
			return err
		})
		require.NoError(t, err, "file %s", n)
	}
}

// migrateRiver runs River's migrations into schema ("" for the search_path) with
// rivermigrate, as `river migrate-up` would.
func migrateRiver(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	require.NoError(t, err)
	_, err = migrator.Migrate(context.Background(), rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
}

func TestMigrationsFS(t *testing.T) {
	t.Parallel()

	t.Run("names a tool can order and parse: NNNN_name.up.sql, goose-annotated", func(t *testing.T) {
		t.Parallel()
		names, bodies := migrationFiles(t)
		require.GreaterOrEqual(t, len(names), 10)
		re := regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.up\.sql$`)
		for i, n := range names {
			m := re.FindStringSubmatch(n)
			require.NotNil(t, m, "file name %q", n)
			require.Equal(t, i+1, mustAtoi(t, m[1]), "versions run 1..n in name order")
			body := bodies[n]
			require.True(t, strings.HasPrefix(body, "-- +goose Up\n-- +goose StatementBegin\n"), "%s starts with goose's annotations", n)
			require.True(t, strings.HasSuffix(body, "-- +goose StatementEnd\n"), "%s ends the goose statement", n)
			require.Contains(t, body, "INSERT INTO billing_schema_migrations", "%s records itself", n)
		}
	})

	t.Run("files applied by plain pgx pass CheckSchema; Migrate then has nothing to do", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := billingtest.NewEmptyPool(t)
		names, bodies := migrationFiles(t)
		migrateRiver(t, pool, "")
		applyFiles(t, pool, names, bodies)

		engine, err := billing.New(pool, billing.DefaultConfig())
		require.NoError(t, err)
		require.NoError(t, engine.CheckSchema(ctx))
		res, err := engine.Migrate(ctx)
		require.NoError(t, err)
		require.Empty(t, res.Applied)
		require.Empty(t, res.RiverApplied)
	})

	t.Run("a database migrated by Migrate records what the files record", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		byFiles := billingtest.NewEmptyPool(t)
		names, bodies := migrationFiles(t)
		applyFiles(t, byFiles, names, bodies)
		byEngine := billingtest.NewPool(t)
		read := func(pool *pgxpool.Pool) []string {
			rows, err := pool.Query(ctx, `SELECT version || ' ' || name || ' ' || checksum FROM billing_schema_migrations ORDER BY version`)
			require.NoError(t, err)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			return got
		}
		require.Equal(t, read(byEngine), read(byFiles))
	})

	t.Run("a file run twice fails rather than apply twice", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := billingtest.NewEmptyPool(t)
		names, bodies := migrationFiles(t)
		applyFiles(t, pool, names[:1], bodies)
		_, err := pool.Exec(ctx, bodies[names[0]])
		require.Error(t, err)
	})
}

func TestCheckSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	newEngine := func(t *testing.T, pool *pgxpool.Pool) *billing.Engine {
		t.Helper()
		engine, err := billing.New(pool, billing.DefaultConfig())
		require.NoError(t, err)
		// A database of billingtest.NewPool keeps River where billingtest.RiverSchema says
		// (make test-river-schema): the engine learns River's schema from its client.
		if schema := billingtest.RiverSchema(); schema != "" {
			var there bool
			require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`,
				pgx.Identifier{schema, "river_migration"}.Sanitize()).Scan(&there))
			if there {
				client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: schema})
				require.NoError(t, err)
				require.NoError(t, engine.UseRiver(client))
			}
		}
		return engine
	}

	t.Run("one file missing: ErrSchemaOutdated naming it", func(t *testing.T) {
		t.Parallel()
		pool := billingtest.NewEmptyPool(t)
		names, bodies := migrationFiles(t)
		migrateRiver(t, pool, "")
		applyFiles(t, pool, names[:len(names)-1], bodies)

		err := newEngine(t, pool).CheckSchema(ctx)
		require.ErrorIs(t, err, billing.ErrSchemaMismatch)
		require.ErrorIs(t, err, billing.ErrSchemaOutdated)
		require.NotErrorIs(t, err, billing.ErrSchemaTooNew)
		var se *billing.SchemaError
		require.ErrorAs(t, err, &se)
		require.Equal(t, []int{len(names)}, se.Missing)
		require.Empty(t, se.RiverMissing)
	})

	t.Run("an empty database: every migration missing, the engine's and River's", func(t *testing.T) {
		t.Parallel()
		err := newEngine(t, billingtest.NewEmptyPool(t)).CheckSchema(ctx)
		var se *billing.SchemaError
		require.ErrorAs(t, err, &se)
		names, _ := migrationFiles(t)
		require.Len(t, se.Missing, len(names))
		require.NotEmpty(t, se.RiverMissing)
	})

	t.Run("River not migrated: ErrSchemaOutdated naming River's migrations", func(t *testing.T) {
		t.Parallel()
		pool := billingtest.NewEmptyPool(t)
		names, bodies := migrationFiles(t)
		applyFiles(t, pool, names, bodies)
		err := newEngine(t, pool).CheckSchema(ctx)
		require.ErrorIs(t, err, billing.ErrSchemaOutdated)
		var se *billing.SchemaError
		require.ErrorAs(t, err, &se)
		require.Empty(t, se.Missing)
		require.NotEmpty(t, se.RiverMissing)
	})

	t.Run("a database newer than the code: ErrSchemaTooNew", func(t *testing.T) {
		t.Parallel()
		pool := billingtest.NewPool(t)
		engine := newEngine(t, pool)
		require.NoError(t, engine.CheckSchema(ctx))
		_, err := pool.Exec(ctx, `INSERT INTO billing_schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')`)
		require.NoError(t, err)
		err = engine.CheckSchema(ctx)
		require.ErrorIs(t, err, billing.ErrSchemaTooNew)
		require.NotErrorIs(t, err, billing.ErrSchemaOutdated)
		var se *billing.SchemaError
		require.ErrorAs(t, err, &se)
		require.Equal(t, []int{9999}, se.Unknown)
	})

	t.Run("a changed migration: ErrMigrationChanged", func(t *testing.T) {
		t.Parallel()
		pool := billingtest.NewPool(t)
		_, err := pool.Exec(ctx, `UPDATE billing_schema_migrations SET checksum = 'rewritten' WHERE version = 3`)
		require.NoError(t, err)
		err = newEngine(t, pool).CheckSchema(ctx)
		require.ErrorIs(t, err, billing.ErrMigrationChanged)
		var se *billing.SchemaError
		require.ErrorAs(t, err, &se)
		require.Equal(t, []int{3}, se.Changed)
	})
}

func TestMigrateSkipsRiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewEmptyPool(t)
	cfg := billing.DefaultConfig()
	cfg.SkipRiverMigrations = true
	engine, err := billing.New(pool, cfg)
	require.NoError(t, err)

	res, err := engine.Migrate(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, res.Applied)
	require.Empty(t, res.RiverApplied)
	var riverThere bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL`).Scan(&riverThere))
	require.False(t, riverThere, "River's schema is the host's to migrate")
	require.ErrorIs(t, engine.CheckSchema(ctx), billing.ErrSchemaOutdated, "CheckSchema still wants River's tables")

	migrateRiver(t, pool, "")
	require.NoError(t, engine.CheckSchema(ctx))
}

// TestRiverInItsOwnSchema runs a renewal and the sweeper with River's tables in a schema of
// their own (river.Config.Schema) and none on the search_path: the engine and the Runner
// must read River's tables where the client says they are.
func TestRiverInItsOwnSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const riverSchema = "billing_river"
	pool := billingtest.NewEmptyPool(t)
	_, err := pool.Exec(ctx, `CREATE SCHEMA billing_river`)
	require.NoError(t, err)
	migrateRiver(t, pool, riverSchema)

	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	clock := billingtest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow))
	gw := billingtest.NewGateway()
	cfg := billing.DefaultConfig()
	cfg.Clock, cfg.Gateway, cfg.SkipRiverMigrations = clock, gw, true
	engine, err := billing.New(pool, cfg)
	require.NoError(t, err)
	_, err = engine.Migrate(ctx)
	require.NoError(t, err)

	workers := river.NewWorkers()
	require.NoError(t, engine.RegisterWorkers(workers))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		Schema:            riverSchema,
		FetchPollInterval: 5 * time.Millisecond,
		FetchCooldown:     time.Millisecond,
		// See billingtest.RescueStuckJobsAfter: River's rescuer reads the wall clock.
		RescueStuckJobsAfter: billingtest.RescueStuckJobsAfter,
		Test:                 river.TestConfig{Time: clock},
	})
	require.NoError(t, err)
	require.NoError(t, engine.UseRiver(client))
	require.NoError(t, engine.CheckSchema(ctx), "River's migrations are found in the client's schema")
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})
	runner := billingtest.NewRunner(pool, clock)
	runner.Schema = riverSchema

	b := &testBundle{pool: pool, clock: clock, engine: engine, moscow: moscow}
	b.publish(t, "pro", "990", "generations", 500)
	sub, err := engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	res, err := engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusActive, res.Subscription.Status)

	// The renewal at the end of period 1 runs from the schema's job table.
	_, err = runner.RunUntil(ctx, res.Subscription.Current.End.Add(time.Hour))
	require.NoError(t, err)
	got, err := engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Current.Number, "renewed once")
	require.Len(t, gw.ChargesFor(sub.ID, 2), 1)

	// Lose period 2's renewal job; the sweeper finds the period without one, in the schema.
	_, err = pool.Exec(ctx, `DELETE FROM billing_river.river_job WHERE kind = 'billing_renew'`)
	require.NoError(t, err)
	_, err = runner.RunUntil(ctx, got.Current.End.Add(time.Hour))
	require.NoError(t, err)
	n, err := engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the sweeper saw that no renewal job waits")
	n, err = engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "and sees the one it enqueued")
	require.NoError(t, runner.RunDue(ctx))
	got, err = engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	if got.Current.Number != 3 {
		rows, err := pool.Query(ctx, `SELECT state || ' attempt ' || attempt || ' ' || errors::text FROM billing_river.river_job WHERE kind = 'billing_renew'`)
		require.NoError(t, err)
		jobs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		t.Fatalf("not renewed by the swept job: period %d; renewal jobs: %v", got.Current.Number, jobs)
	}

	var onPath bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL`).Scan(&onPath))
	require.False(t, onPath, "nothing of River's on the search_path: a bare river_job would have failed")
}

// TestJobQueueAndPriority: with Config.Queue and Config.Priority set, the engine's jobs go
// in that queue at that priority, and a client working that queue runs them.
func TestJobQueueAndPriority(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	cfg := billing.DefaultConfig()
	cfg.Queue, cfg.Priority = "billing", 2
	h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 3, 2, 10, 0, 0, 0, moscow), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Stop() })

	b := &testBundle{pool: pool, clock: h.Clock, engine: h.Engine, moscow: moscow}
	b.publish(t, "pro", "990", "generations", 500)
	sub, err := h.Engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	res, err := h.Engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)

	type job struct {
		Kind     string
		Queue    string
		Priority int
	}
	jobsOf := func() []job {
		rows, err := pool.Query(ctx, `SELECT kind, queue, priority FROM `+riverJob+` ORDER BY id`)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[job])
		require.NoError(t, err)
		return out
	}
	var renewals int
	for _, j := range jobsOf() {
		require.Equal(t, "billing", j.Queue, "job %s", j.Kind)
		require.Equal(t, 2, j.Priority, "job %s", j.Kind)
		if j.Kind == "billing_renew" {
			renewals++
		}
	}
	require.Equal(t, 1, renewals, "the renewal job is in the engine's queue")

	// The harness's client works that queue: the renewal runs.
	_, err = h.Runner.RunUntil(ctx, res.Subscription.Current.End.Add(time.Hour))
	require.NoError(t, err)
	got, err := h.Engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Current.Number)
	for _, j := range jobsOf() {
		require.Equal(t, "billing", j.Queue, "job %s", j.Kind)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
