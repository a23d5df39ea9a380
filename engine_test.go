package billing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()

	// A pool that is never connected: New does no I/O.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	tests := []struct {
		name   string
		pool   *pgxpool.Pool
		cfg    func() billing.Config
		fields []string
	}{
		{"nil pool", nil, billing.DefaultConfig, []string{"pool"}},
		{"6.3 zero location", pool, func() billing.Config { c := billing.DefaultConfig(); c.Location = nil; return c }, []string{"Location"}},
		{"zero config", pool, func() billing.Config { return billing.Config{} }, []string{"Location"}},
		{"nil pool and zero location both named", nil, func() billing.Config { return billing.Config{} }, []string{"pool", "Location"}},
		{"queue River would refuse", pool, func() billing.Config { c := billing.DefaultConfig(); c.Queue = "Billing Jobs"; return c }, []string{"Queue"}},
		{"priority out of River's 1..4", pool, func() billing.Config { c := billing.DefaultConfig(); c.Priority = 5; return c }, []string{"Priority"}},
		{"negative priority", pool, func() billing.Config { c := billing.DefaultConfig(); c.Priority = -1; return c }, []string{"Priority"}},
		{"negative renewal batch size", pool, func() billing.Config { c := billing.DefaultConfig(); c.RenewalBatchSize = -1; return c }, []string{"RenewalBatchSize"}},
		{"negative Consume batch size", pool, func() billing.Config { c := billing.DefaultConfig(); c.ConsumeBatchSize = -1; return c }, []string{"ConsumeBatchSize"}},
		{"claim chunk of none", pool, func() billing.Config { c := billing.DefaultConfig(); c.ClaimChunk = -1; return c }, []string{"ClaimChunk"}},
		{"claim chunk over 1 000", pool, func() billing.Config { c := billing.DefaultConfig(); c.ClaimChunk = 1001; return c }, []string{"ClaimChunk"}},
		{"claim lease under a second", pool, func() billing.Config { c := billing.DefaultConfig(); c.ClaimLease = time.Millisecond; return c }, []string{"ClaimLease"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			engine, err := billing.New(tt.pool, tt.cfg())
			require.Nil(t, engine)
			require.ErrorIs(t, err, billing.ErrInvalidConfig)
			var ce *billing.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, len(tt.fields))
			for _, f := range tt.fields {
				require.True(t, ce.Has(f), "error should name %s: %v", f, err)
			}
		})
	}

	t.Run("default config is valid", func(t *testing.T) {
		t.Parallel()
		engine, err := billing.New(pool, billing.DefaultConfig())
		require.NoError(t, err)
		require.Equal(t, "Europe/Moscow", engine.Location().String())
	})

	t.Run("queue names River takes", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"billing", "billing_jobs", "billing-jobs-2"} {
			c := billing.DefaultConfig()
			c.Queue, c.Priority = q, 4
			_, err := billing.New(pool, c)
			require.NoError(t, err, q)
		}
	})
}

func TestEngineRiverWiring(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	engine, err := billing.New(pool, billing.DefaultConfig())
	require.NoError(t, err)
	require.Error(t, engine.RegisterWorkers(nil))
	require.NoError(t, engine.RegisterWorkers(river.NewWorkers()))
	require.Error(t, engine.UseRiver(nil))
}

type migrateBundle struct {
	pool   *pgxpool.Pool
	engine *billing.Engine
}

func setupMigrate(t *testing.T) migrateBundle {
	t.Helper()
	pool := billingtest.NewEmptyPool(t)
	engine, err := billing.New(pool, billing.DefaultConfig())
	require.NoError(t, err)
	return migrateBundle{pool: pool, engine: engine}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("applies everything once, then is a no-op", func(t *testing.T) {
		t.Parallel()
		b := setupMigrate(t)
		first, err := b.engine.Migrate(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, first.Applied)
		require.NotEmpty(t, first.RiverApplied)

		second, err := b.engine.Migrate(ctx)
		require.NoError(t, err)
		require.Empty(t, second.Applied)
		require.Empty(t, second.RiverApplied)

		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&n), "River's schema is there")
	})

	t.Run("concurrent calls both succeed and apply each migration once", func(t *testing.T) {
		t.Parallel()
		b := setupMigrate(t)
		const callers = 4
		results := make([]billing.MigrateResult, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each caller is its own engine, as two processes would be.
				engine, err := billing.New(b.pool, billing.DefaultConfig())
				if err != nil {
					errs[i] = err
					return
				}
				results[i], errs[i] = engine.Migrate(ctx)
			}()
		}
		wg.Wait()
		applied := 0
		for i := range callers {
			require.NoError(t, errs[i])
			if len(results[i].Applied) > 0 {
				applied++
			}
		}
		require.Equal(t, 1, applied, "exactly one caller applies the migrations")
	})

	t.Run("refuses a schema newer than the code", func(t *testing.T) {
		t.Parallel()
		b := setupMigrate(t)
		_, err := b.engine.Migrate(ctx)
		require.NoError(t, err)
		_, err = b.pool.Exec(ctx, `INSERT INTO billing_schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')`)
		require.NoError(t, err)
		_, err = b.engine.Migrate(ctx)
		require.ErrorIs(t, err, billing.ErrSchemaTooNew)
		require.True(t, errors.Is(err, billing.ErrSchemaTooNew))
	})
}
