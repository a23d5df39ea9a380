package billing_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
)

// testBundle is what an engine test works with: its own migrated database, a manual
// clock and an engine on both.
type testBundle struct {
	pool   *pgxpool.Pool
	clock  *billingtest.Clock
	engine *billing.Engine
	moscow *time.Location
}

// setup gives a test its own database and an engine whose clock starts at
// 2026-03-02 10:00 Moscow time (a Monday).
func setup(t *testing.T) *testBundle {
	t.Helper()
	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	pool := billingtest.NewPool(t)
	clock := billingtest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow))
	cfg := billing.DefaultConfig()
	cfg.Clock = clock
	engine, err := billing.New(pool, cfg)
	require.NoError(t, err)
	return &testBundle{pool: pool, clock: clock, engine: engine, moscow: moscow}
}
