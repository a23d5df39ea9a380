package billingtest_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/tariff"
)

// pendingCheckout starts a harness with cfg, charges a first payment the gateway leaves
// pending, moves the clock on and confirms it: it returns the harness and the event.
func pendingCheckout(t *testing.T, cfg billing.Config) (*billingtest.Harness, payment.WebhookEvent) {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2020, 5, 4, 10, 0, 0, 0, time.UTC) // far from the wall clock
	h, err := billingtest.StartHarness(ctx, billingtest.NewPool(t), start, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Stop() })
	require.NotNil(t, h.Gateway)
	_, err = h.Engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "pro", Name: "pro", Price: decimal.RequireFromString("990"),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 10}}})
	require.NoError(t, err)
	h.Gateway.Script("tok-1", billingtest.Pending)
	sub, err := h.Engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "k1"})
	require.NoError(t, err)
	_, err = h.Engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	attempts, err := h.Engine.AttemptList(ctx, sub.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	h.Clock.Advance(time.Hour)
	ev, err := h.Gateway.Confirm(attempts[0].ProviderPaymentID, payment.OutcomeSucceeded)
	require.NoError(t, err)
	return h, ev
}

func TestStartHarnessGatewayClock(t *testing.T) {
	t.Parallel()

	t.Run("the fake gateway it makes stamps events on the harness's clock", func(t *testing.T) {
		t.Parallel()
		h, ev := pendingCheckout(t, billing.DefaultConfig())
		require.True(t, ev.ReceivedAt.Equal(h.Clock.Now()), "ReceivedAt %s, clock %s", ev.ReceivedAt, h.Clock.Now())
	})

	t.Run("the config's own fake gateway gets the clock too", func(t *testing.T) {
		t.Parallel()
		cfg := billing.DefaultConfig()
		gw := billingtest.NewGateway()
		cfg.Gateway = gw
		h, ev := pendingCheckout(t, cfg)
		require.Same(t, gw, h.Gateway)
		require.True(t, ev.ReceivedAt.Equal(h.Clock.Now()))
	})

	t.Run("a clock already set on the gateway is kept", func(t *testing.T) {
		t.Parallel()
		cfg := billing.DefaultConfig()
		gw := billingtest.NewGateway()
		own := billingtest.NewClock(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC))
		gw.SetClock(own)
		cfg.Gateway = gw
		_, ev := pendingCheckout(t, cfg)
		require.True(t, ev.ReceivedAt.Equal(own.Now()))
	})
}

func TestNewPoolWith(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A host's migrations in the forms NewPoolWith takes: golang-migrate's up and down files,
	// a goose file with both sections, a plain file, and files it must leave alone.
	host := fstest.MapFS{
		"0001_profiles.up.sql":   {Data: []byte(`CREATE TABLE host_profiles (customer_id text PRIMARY KEY);`)},
		"0001_profiles.down.sql": {Data: []byte(`DROP TABLE host_profiles;`)},
		"0002_orders.sql": {Data: []byte("-- +goose Up\nCREATE TABLE host_orders (id int PRIMARY KEY,\n" +
			"  subscription_id uuid REFERENCES billing_subscriptions (id));\n-- +goose Down\nDROP TABLE host_orders;\n")},
		"0003_seed.sql": {Data: []byte(`INSERT INTO host_profiles VALUES ('c1'), ('c2');`)},
		"README.md":     {Data: []byte(`not SQL`)},
		"sub/0004.sql":  {Data: []byte(`this would fail`)},
	}
	for range 2 { // the second one comes from the cached template
		pool := billingtest.NewPoolWith(t, host)
		var profiles, orders int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM host_profiles`).Scan(&profiles))
		require.Equal(t, 2, profiles, "files run in name order, the down file never")
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM host_orders`).Scan(&orders), "a goose file runs up to its Down section")
		var engineTables int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM billing_schema_migrations`).Scan(&engineTables))
		require.Positive(t, engineTables, "the engine's migrations ran first")
	}

	t.Run("nil is NewPool", func(t *testing.T) {
		t.Parallel()
		pool := billingtest.NewPoolWith(t, nil)
		var there bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('host_profiles') IS NOT NULL`).Scan(&there))
		require.False(t, there)
	})
}

// harnessBundle is what a NewHarness test works with: the harness and a published tariff.
type harnessBundle struct {
	h   *billingtest.Harness
	ctx context.Context
}

// setupHarness makes a harness with opts and publishes "pro", 990 RUB a month.
func setupHarness(t *testing.T, opts ...billingtest.HarnessOption) *harnessBundle {
	t.Helper()
	b := &harnessBundle{h: billingtest.NewHarness(t, opts...), ctx: context.Background()}
	_, err := b.h.Engine.Tariffs().Publish(b.ctx, "ops", tariff.Spec{Code: "pro", Name: "pro", Price: decimal.RequireFromString("990"),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 10}}})
	require.NoError(t, err)
	return b
}

// checkout subscribes c1 to "pro" and charges the first period through the gateway.
func (b *harnessBundle) checkout(t *testing.T) billing.ChargeResult {
	t.Helper()
	sub, err := b.h.Engine.Subscribe(b.ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "k1"})
	require.NoError(t, err)
	res, err := b.h.Engine.ChargeFirstPayment(b.ctx, sub.ID)
	require.NoError(t, err)
	return res
}

func TestNewHarness(t *testing.T) {
	t.Parallel()

	t.Run("defaults: the fake gateway, events recorded, River renews as the runner moves the clock", func(t *testing.T) {
		t.Parallel()
		b := setupHarness(t)
		moscow, err := time.LoadLocation("Europe/Moscow")
		require.NoError(t, err)
		require.True(t, b.h.Clock.Now().Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow)), "the default start: %s", b.h.Clock.Now())
		require.NotNil(t, b.h.Gateway)
		require.NotNil(t, b.h.Pool)
		res := b.checkout(t)
		require.Len(t, b.h.Gateway.Charges(), 1)
		_, err = b.h.Runner.RunUntil(b.ctx, res.Subscription.Current.End.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, b.h.Gateway.ChargesFor(res.Subscription.ID, 2), 1, "the renewal job charged period 2")
		require.NotEmpty(t, b.h.Events.Of(billing.EventSubscribed), "OnEvent is the harness's EventLog")
		require.NotEmpty(t, b.h.Events.Of(billing.EventRenewed))
	})

	t.Run("WithConfig changes the config after the harness's parts: no gateway", func(t *testing.T) {
		t.Parallel()
		b := setupHarness(t, billingtest.WithConfig(func(c *billing.Config) { c.Gateway = nil }))
		require.Nil(t, b.h.Gateway)
		sub, err := b.h.Engine.Subscribe(b.ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "k1"})
		require.NoError(t, err)
		_, err = b.h.Engine.ChargeFirstPayment(b.ctx, sub.ID)
		require.ErrorIs(t, err, billing.ErrNoGateway)
	})

	t.Run("WithStart, and a gateway of the config's own gets the clock", func(t *testing.T) {
		t.Parallel()
		start := time.Date(2021, 7, 1, 12, 0, 0, 0, time.UTC)
		gw := billingtest.NewGateway()
		b := setupHarness(t, billingtest.WithStart(start), billingtest.WithConfig(func(c *billing.Config) { c.Gateway = gw }))
		require.Same(t, gw, b.h.Gateway)
		require.True(t, b.h.Clock.Now().Equal(start))
		gw.Script("tok-1", billingtest.Pending)
		res := b.checkout(t)
		b.h.Clock.Advance(time.Minute)
		ev, err := gw.Confirm(res.Attempt.ProviderPaymentID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		require.True(t, ev.ReceivedAt.Equal(b.h.Clock.Now()))
	})

	t.Run("WithGatewayLatency delays the provider's answers", func(t *testing.T) {
		t.Parallel()
		b := setupHarness(t, billingtest.WithGatewayLatency(50*time.Millisecond))
		began := time.Now()
		b.checkout(t)
		require.GreaterOrEqual(t, time.Since(began), 50*time.Millisecond)
	})

	t.Run("WithoutRiver, then StartRiver", func(t *testing.T) {
		t.Parallel()
		b := setupHarness(t, billingtest.WithoutRiver())
		sub, err := b.h.Engine.Subscribe(b.ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-1", IdempotencyKey: "k1"})
		require.NoError(t, err)
		_, err = b.h.Engine.ChargeFirstPayment(b.ctx, sub.ID)
		require.ErrorIs(t, err, billing.ErrNoRiverClient, "the charge schedules the renewal")
		b.h.StartRiver(t)
		res, err := b.h.Engine.ChargeFirstPayment(b.ctx, sub.ID)
		require.NoError(t, err)
		_, err = b.h.Runner.RunUntil(b.ctx, res.Subscription.Current.End.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, b.h.Gateway.ChargesFor(sub.ID, 2), 1)
	})

	t.Run("WithPool migrates the pool's database", func(t *testing.T) {
		t.Parallel()
		b := setupHarness(t, billingtest.WithPool(billingtest.NewEmptyPool(t)))
		b.checkout(t)
	})

	t.Run("Stop before the test ends, and the cleanup's stop after it, are fine", func(t *testing.T) {
		t.Parallel()
		h := billingtest.NewHarness(t)
		require.NoError(t, h.Stop())
		require.NoError(t, h.Stop())
	})
}
