package billing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
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
	return setupWith(t, func(*billing.Config) {})
}

// setupWith is setup with a config changed by change.
func setupWith(t *testing.T, change func(*billing.Config)) *testBundle {
	t.Helper()
	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	pool := billingtest.NewPool(t)
	clock := billingtest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow))
	cfg := billing.DefaultConfig()
	cfg.Clock = clock
	change(&cfg)
	engine, err := billing.New(pool, cfg)
	require.NoError(t, err)
	return &testBundle{pool: pool, clock: clock, engine: engine, moscow: moscow}
}

// withRiver starts a River client on the bundle's clock with the engine's workers, and a
// Runner that works the jobs that fall due as the clock moves.
func (b *testBundle) withRiver(t *testing.T) *billingtest.Runner {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, b.engine.RegisterWorkers(workers))
	client, err := billingtest.NewRiverClient(b.pool, b.clock, workers)
	require.NoError(t, err)
	require.NoError(t, b.engine.UseRiver(client))
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	})
	return billingtest.NewRunner(b.pool, b.clock)
}

// publish publishes a tariff with one limited meter and returns its code.
func (b *testBundle) publish(t *testing.T, code, price string, meter string, quantity int64) string {
	t.Helper()
	_, err := b.engine.Tariffs().Publish(context.Background(), "ops", tariff.Spec{
		Code: code, Name: code, Price: decimal.RequireFromString(price),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: meter, Quantity: quantity}},
	})
	require.NoError(t, err)
	return code
}

// activeSubscription subscribes a customer to code and confirms the first payment.
func (b *testBundle) activeSubscription(t *testing.T, customer, code string) subscription.Subscription {
	t.Helper()
	ctx := context.Background()
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeRequest{CustomerID: customer, TariffCode: code, IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	if sub.Status == subscription.StatusActive {
		return sub
	}
	sub, err = b.engine.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{
		ProviderPaymentID: "pay-" + customer, Amount: sub.Checkout.Price, Currency: sub.Checkout.Currency})
	require.NoError(t, err)
	return sub
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// riverJob is River's job table, quoted, in the schema the test databases keep River in
// (billingtest.RiverSchema: make test-river-schema runs the suite with River elsewhere).
var riverJob = store.RiverTable(billingtest.RiverSchema(), "river_job")
