package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// testBundle is what an engine test works with: its own migrated database, a manual
// clock and an engine on both (the harness of billingtest, River not started).
type testBundle struct {
	pool   *pgxpool.Pool
	clock  *billingtest.Clock
	engine *billing.Engine
	moscow *time.Location
	h      *billingtest.Harness
}

// setup gives a test its own database and an engine whose clock starts at
// 2026-03-02 10:00 Moscow time (a Monday).
func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupWith(t, func(*billing.Config) {})
}

// setupWith is setup with a config changed by change. The engine has no gateway, no
// OnEvent and no River client unless change or withRiver gives it one.
func setupWith(t *testing.T, change func(*billing.Config)) *testBundle {
	t.Helper()
	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	h := billingtest.NewHarness(t, billingtest.WithoutRiver(),
		billingtest.WithStart(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow)),
		billingtest.WithConfig(func(c *billing.Config) {
			c.Gateway = nil
			change(c)
		}))
	return &testBundle{pool: h.Pool, clock: h.Clock, engine: h.Engine, moscow: moscow, h: h}
}

// withRiver starts a River client on the bundle's clock with the engine's workers
// (stopped when the test ends), and returns the Runner that works the jobs that fall due
// as the clock moves.
func (b *testBundle) withRiver(t *testing.T) *billingtest.Runner {
	t.Helper()
	require.NotNil(t, b.h, "withRiver needs a bundle of setup or setupWith")
	require.Same(t, b.h.Engine, b.engine, "withRiver starts the workers of the harness's engine")
	b.h.StartRiver(t)
	return b.h.Runner
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
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: code, IdempotencyKey: "sub-" + customer})
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

// riverJobs lists the bundle's River jobs, one per line, for a failure message.
func (b *testBundle) riverJobs(t *testing.T) string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id, kind, state, attempt, max_attempts, scheduled_at,
		coalesce(finalized_at::text, ''), coalesce((errors[array_length(errors, 1)])->>'error', '')
		FROM `+riverJob+` ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out strings.Builder
	for rows.Next() {
		var id int64
		var kind, state, finalized, lastErr string
		var attempt, maxAttempts int
		var scheduled time.Time
		require.NoError(t, rows.Scan(&id, &kind, &state, &attempt, &maxAttempts, &scheduled, &finalized, &lastErr))
		fmt.Fprintf(&out, "  %d %s %s attempt %d/%d scheduled %s finalized %q last error %q\n",
			id, kind, state, attempt, maxAttempts, scheduled.Format(time.RFC3339), finalized, lastErr)
	}
	require.NoError(t, rows.Err())
	return out.String()
}
