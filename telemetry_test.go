package billing_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// telemetryBundle is an engine with the fake gateway, River on the test clock, and the
// OpenTelemetry SDK's in-memory span exporter and manual metric reader as its providers.
type telemetryBundle struct {
	*renewalBundle
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
}

func setupTelemetry(t *testing.T, change func(*billing.Config)) *telemetryBundle {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	gw := billingtest.NewGateway()
	b := setupWith(t, func(c *billing.Config) {
		c.Gateway, c.TracerProvider, c.MeterProvider = gw, tp, mp
		change(c)
	})
	runner := b.withRiver(t)
	b.publish(t, "pro", "990", "generations", 500)
	return &telemetryBundle{renewalBundle: &renewalBundle{testBundle: b, gateway: gw, runner: runner}, spans: spans, reader: reader}
}

// TestTelemetry runs a subscription's life (checkout, a renewal, a declined renewal and its
// retry, consumption with refusals, a refund) and checks the spans and metrics it leaves.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTelemetry(t, func(*billing.Config) {})

	// Checkout by the saved method, and a second customer on the provider's page (pending).
	sub := b.checkout(t, "c1", "tok-secret-1")
	require.Equal(t, subscription.StatusActive, sub.Status)
	pendingSub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", IdempotencyKey: "sub-c2"})
	require.NoError(t, err)
	co, err := b.engine.StartCheckout(ctx, pendingSub.ID, "https://shop.example/back")
	require.NoError(t, err)
	require.NotEmpty(t, co.ConfirmationURL)

	// Consumption: one counted, one over the limit, one reusing a key for another quantity.
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 10, "gen-1")
	require.NoError(t, err)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 1000, "gen-2")
	require.ErrorIs(t, err, subscription.ErrLimitExceeded)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 5, "gen-1")
	require.ErrorIs(t, err, billing.ErrIdempotencyConflict)

	// A renewal, then a soft-declined renewal paid by its first dunning retry a day later.
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	second := b.get(t, sub.ID).Current
	require.Equal(t, 2, second.Number)
	b.gateway.Script("tok-secret-1", billingtest.SoftDecline)
	_, err = b.runner.RunUntil(ctx, second.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status)
	_, err = b.runner.RunUntil(ctx, second.End.Add(payment.Day+time.Hour))
	require.NoError(t, err)
	require.Equal(t, 3, b.get(t, sub.ID).Current.Number)

	t.Run("spans: one per command, the provider call under it", func(t *testing.T) {
		got := b.spans.GetSpans()
		require.Equal(t, billing.InstrumentationName, got[0].InstrumentationScope.Name)

		first := onlySpan(t, got, "billing.ChargeFirstPayment")
		charge := childOf(t, got, first, "billing.gateway.Charge")
		require.Equal(t, "checkout", attr(charge, "billing.purpose"))
		require.Equal(t, "succeeded", attr(charge, "billing.outcome"))
		require.NotEmpty(t, attr(charge, "billing.provider.payment_id"))
		require.Equal(t, sub.ID, attr(first, "billing.subscription.id"))

		page := childOf(t, got, onlySpan(t, got, "billing.StartCheckout"), "billing.gateway.StartCheckout")
		require.Equal(t, "pending", attr(page, "billing.outcome"))

		var renewals, declined int
		for _, s := range named(got, "billing.gateway.Charge") {
			if attr(s, "billing.purpose") != "renewal" {
				continue
			}
			renewals++
			parent := byID(t, got, s.Parent().SpanID())
			require.Equal(t, "billing.RenewPeriod", parent.Name, "a renewal's charge is under the renewal job's command")
			if attr(s, "billing.outcome") == "soft_declined" {
				declined++
				require.Equal(t, billingtest.DeclineCodeSoft, attr(s, "billing.decline.code"))
				require.Equal(t, "false", attr(s, "billing.decline.hard"))
			}
		}
		require.Equal(t, 3, renewals)
		require.Equal(t, 1, declined)

		var refused []sdktrace.ReadOnlySpan
		for _, s := range named(got, "billing.Consume") {
			if s.Status().Code == codes.Error {
				refused = append(refused, s)
			}
		}
		require.Len(t, refused, 2, "the two refused calls, not the counted one")
		require.Equal(t, "limit_exceeded", attr(refused[0], "error.type"))
		require.Equal(t, "exception", refused[0].Events()[0].Name, "RecordError")
		require.Equal(t, "conflict", attr(refused[1], "error.type"))

		// TERMS 5.1: no payment-method token on any span.
		for _, s := range got {
			for _, kv := range s.Attributes {
				require.NotContains(t, kv.Value.String(), "tok-secret", "span %s attribute %s", s.Name, kv.Key)
			}
		}
	})

	t.Run("metrics: charges by outcome, renewal lag, consumption, gauges", func(t *testing.T) {
		rm := b.collect(t)
		charges := sumPoints(t, rm, "billing.charges")
		require.Equal(t, map[string]int64{
			"checkout/succeeded": 1, "checkout/pending": 1, "renewal/succeeded": 2, "renewal/soft_declined": 1,
		}, keyed(charges, "billing.purpose", "billing.outcome"))

		lag := histogramPoints(t, rm, "billing.renewal.lag")
		require.Len(t, lag, 1)
		require.Equal(t, uint64(3), lag[0].Count, "three renewal charges sent")
		// The runner works each job at its scheduled instant: the retry's lag counts from its
		// dunning time (a day after the period end), not from the period end.
		require.Less(t, lag[0].Sum, 1.0)

		consume := histogramPoints(t, rm, "billing.consume.duration")
		require.Len(t, consume, 1)
		require.Equal(t, uint64(3), consume[0].Count)
		require.Equal(t, map[string]int64{"Consume/limit_exceeded": 1, "Consume/conflict": 1},
			keyed(sumPoints(t, rm, "billing.consume.refusals"), "billing.op", "billing.refusal.reason"))

		require.Equal(t, int64(1), gauge(t, rm, "billing.attempts.open", ""), "the checkout waiting on the provider's page")
		require.Equal(t, int64(0), gauge(t, rm, "billing.parked", "attempt"))
		require.Equal(t, int64(0), gauge(t, rm, "billing.parked", "unapplied_payment"))
		require.Equal(t, int64(0), gauge(t, rm, "billing.refunds.near_deadline", ""))

		// Reconciliation gives up on the pending checkout (as after 10 failed runs).
		_, err := b.pool.Exec(ctx, `UPDATE billing_payment_attempts SET parked_at = now() WHERE subscription_id = $1`, pendingSub.ID)
		require.NoError(t, err)
		rm = b.collect(t)
		require.Equal(t, int64(0), gauge(t, rm, "billing.attempts.open", ""))
		require.Equal(t, int64(1), gauge(t, rm, "billing.parked", "attempt"))
	})

	t.Run("a refund: its provider call under ExecuteRefund; the 3.8 deadline gauge", func(t *testing.T) {
		r, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
			Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "r1"})
		require.NoError(t, err)
		require.Equal(t, int64(0), gauge(t, b.collect(t), "billing.refunds.near_deadline", ""))
		b.clock.Set(r.PayoutDeadline.Add(-24 * time.Hour)) // no job is run past this point
		require.Equal(t, int64(1), gauge(t, b.collect(t), "billing.refunds.near_deadline", ""))

		_, err = b.engine.VerifyRefund(ctx, r.ID, "admin:1")
		require.NoError(t, err)
		done, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "telemetry test"})
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, done.State)
		require.Equal(t, int64(0), gauge(t, b.collect(t), "billing.refunds.near_deadline", ""))

		got := b.spans.GetSpans()
		exec := onlySpan(t, got, "billing.ExecuteRefund")
		require.Equal(t, r.ID, attr(exec, "billing.refund_request.id"))
		rf := childOf(t, got, exec, "billing.gateway.Refund")
		require.Equal(t, "refund", attr(rf, "billing.purpose"))
		require.Equal(t, "succeeded", attr(rf, "billing.outcome"))
		require.NotEmpty(t, attr(rf, "billing.provider.refund_id"))
	})
}

// TestTelemetryGaugeQueryFails: a gauge whose query fails is logged and left out of the
// collection; the collection itself succeeds.
func TestTelemetryGaugeQueryFails(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setupTelemetry(t, func(c *billing.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	_, err := b.pool.Exec(context.Background(), `ALTER TABLE billing_refund_requests RENAME TO billing_refund_requests_gone`)
	require.NoError(t, err)
	rm := b.collect(t)
	require.Equal(t, int64(0), gauge(t, rm, "billing.attempts.open", ""), "the other gauges still report")
	require.Nil(t, find(rm, "billing.refunds.near_deadline"))
	require.Contains(t, logs.String(), "could not count refunds near their deadline")
}

// TestTelemetryCheckoutInterface: the instrumented gateway offers StartCheckout only when
// the configured gateway does.
func TestTelemetryCheckoutInterface(t *testing.T) {
	t.Parallel()
	b := setupTelemetry(t, func(c *billing.Config) {
		c.Gateway = gatewayWithoutCheckout{billingtest.NewGateway()}
	})
	sub, err := b.engine.Subscribe(context.Background(), billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	_, err = b.engine.StartCheckout(context.Background(), sub.ID, "https://shop.example/back")
	require.ErrorIs(t, err, billing.ErrNoCheckout)
}

// gatewayWithoutCheckout is a gateway without the optional payment.CheckoutGateway.
type gatewayWithoutCheckout struct{ payment.Gateway }

// TestTelemetryOffByDefault: without providers the engine records nothing, not even to
// OpenTelemetry's global providers, and works as before.
func TestTelemetryOffByDefault(t *testing.T) {
	// Not parallel: it sets OpenTelemetry's global providers (no other test reads them).
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	})

	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	_, err := b.engine.Consume(ctx, sub.ID, "generations", 10, "gen-1")
	require.NoError(t, err)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 1000, "gen-2")
	require.ErrorIs(t, err, subscription.ErrLimitExceeded)
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, b.get(t, sub.ID).Current.Number)

	require.Empty(t, spans.GetSpans())
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Empty(t, rm.ScopeMetrics)
}

// TestTelemetryHostTx: a …Tx form's span says it ran in the host's transaction.
func TestTelemetryHostTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTelemetry(t, func(*billing.Config) {})
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.engine.SubscribeTx(ctx, tx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "sub-c1"})
	require.NoError(t, err)
	_, err = b.engine.Tariffs().Get(ctx, "pro")
	require.NoError(t, err)
	_, _ = b.engine.Ledger().Balance(ctx, "customer_funds", b.clock.Now())
	got := b.spans.GetSpans()
	require.Equal(t, "true", attr(onlySpan(t, got, "billing.Subscribe"), "billing.host_tx"))
	require.Equal(t, "pro", attr(onlySpan(t, got, "billing.Tariffs.Get"), "billing.tariff.code"))
	onlySpan(t, got, "billing.Ledger.Balance")
}

func (b *telemetryBundle) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, b.reader.Collect(context.Background(), &rm))
	return rm
}

func named(spans tracetest.SpanStubs, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans.Snapshots() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func onlySpan(t *testing.T, spans tracetest.SpanStubs, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := named(spans, name)
	require.Len(t, got, 1, "spans named %s", name)
	return got[0]
}

func childOf(t *testing.T, spans tracetest.SpanStubs, parent sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	for _, s := range named(spans, name) {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.SpanContext().TraceID() == parent.SpanContext().TraceID() {
			out = append(out, s)
		}
	}
	require.Len(t, out, 1, "%s under %s", name, parent.Name())
	return out[0]
}

func byID(t *testing.T, spans tracetest.SpanStubs, id interface{ String() string }) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.SpanContext.SpanID().String() == id.String() {
			return s
		}
	}
	t.Fatalf("no span %s", id)
	return tracetest.SpanStub{}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

func sumPoints(t *testing.T, rm metricdata.ResourceMetrics, name string) []metricdata.DataPoint[int64] {
	t.Helper()
	m := find(rm, name)
	require.NotNil(t, m, "metric %s", name)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a sum: %T", name, m.Data)
	return sum.DataPoints
}

func histogramPoints(t *testing.T, rm metricdata.ResourceMetrics, name string) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m := find(rm, name)
	require.NotNil(t, m, "metric %s", name)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a histogram: %T", name, m.Data)
	return h.DataPoints
}

// gauge returns the value of gauge name (with billing.parked.kind = kind when kind is set).
func gauge(t *testing.T, rm metricdata.ResourceMetrics, name, kind string) int64 {
	t.Helper()
	m := find(rm, name)
	require.NotNil(t, m, "metric %s", name)
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%s is a gauge: %T", name, m.Data)
	for _, p := range g.DataPoints {
		if v, _ := p.Attributes.Value(attribute.Key("billing.parked.kind")); v.AsString() == kind {
			return p.Value
		}
	}
	t.Fatalf("%s has no point with kind %q", name, kind)
	return 0
}

// keyed maps each point to "<value of k1>/<value of k2>".
func keyed(points []metricdata.DataPoint[int64], k1, k2 string) map[string]int64 {
	out := map[string]int64{}
	for _, p := range points {
		v1, _ := p.Attributes.Value(attribute.Key(k1))
		v2, _ := p.Attributes.Value(attribute.Key(k2))
		out[v1.String()+"/"+v2.String()] += p.Value
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.b.String())
}
