package billing

// Observability through the OpenTelemetry API: a span per command and per provider call,
// and the engine's metrics. The library uses the API only; the host passes providers
// (Config.TracerProvider, Config.MeterProvider) built with an SDK, and without them every
// instrument is a no-op that costs nothing (no span is started, no clock is read).
//
// The pattern in a command, with a named result err:
//
//	ctx, span := e.tel.start(ctx, "Subscribe", subAttr(id))
//	defer span.end(&err)
//
// Names (README, "Observability"):
//   - spans "billing.<Command>" (billing.Subscribe, billing.Ledger.Post, billing.Tariffs.Publish…),
//     and "billing.gateway.<Call>" (Charge, StartCheckout, Lookup, Refund, LookupRefund) under
//     the command or job that calls the provider;
//   - billing.charges, billing.renewal.lag, billing.attempts.open, billing.parked,
//     billing.refunds.near_deadline, billing.consume.duration, billing.consume.refusals.
//
// Nothing personal goes on a span or a metric (TERMS 5.1): no payment-method token, no
// receipt contact, no customer ID; only the engine's own IDs, the provider's payment and
// refund IDs, outcomes and decline codes.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// InstrumentationName is the instrumentation scope of the engine's tracer and meter: the
// module path.
const InstrumentationName = "github.com/smm-gpt/billing"

// gaugeQueryTimeout bounds the queries an observable gauge's callback runs: a collection
// never waits longer on the database.
const gaugeQueryTimeout = 2 * time.Second

// Attribute keys on the engine's spans and metrics.
const (
	attrOp           = attribute.Key("billing.op")
	attrSubscription = attribute.Key("billing.subscription.id")
	attrRefund       = attribute.Key("billing.refund_request.id")
	attrReservation  = attribute.Key("billing.reservation.id")
	attrUnapplied    = attribute.Key("billing.unapplied_payment.id")
	attrDeletion     = attribute.Key("billing.account_deletion.id")
	attrTariff       = attribute.Key("billing.tariff.code")
	attrHostTx       = attribute.Key("billing.host_tx")
	attrPurpose      = attribute.Key("billing.purpose")
	attrOutcome      = attribute.Key("billing.outcome")
	attrDeclineCode  = attribute.Key("billing.decline.code")
	attrDeclineHard  = attribute.Key("billing.decline.hard")
	attrProviderPay  = attribute.Key("billing.provider.payment_id")
	attrProviderRef  = attribute.Key("billing.provider.refund_id")
	attrReason       = attribute.Key("billing.refusal.reason")
	attrParkedKind   = attribute.Key("billing.parked.kind")
	attrNotDue       = attribute.Key("billing.not_due")
	attrErrorType    = attribute.Key("error.type") // OpenTelemetry semantic conventions
)

func subAttr(id string) attribute.KeyValue         { return attrSubscription.String(id) }
func refundAttr(id string) attribute.KeyValue      { return attrRefund.String(id) }
func reservationAttr(id string) attribute.KeyValue { return attrReservation.String(id) }
func unappliedAttr(id string) attribute.KeyValue   { return attrUnapplied.String(id) }
func deletionAttr(id string) attribute.KeyValue    { return attrDeletion.String(id) }
func tariffAttr(code string) attribute.KeyValue    { return attrTariff.String(code) }

// hostTxAttr says whether a command runs in the host's transaction (a …Tx form).
func hostTxAttr(db any) attribute.KeyValue {
	return attrHostTx.Bool(inHostTx(db))
}

// telemetry holds the engine's tracer and instruments. Its zero value (and a nil one)
// records nothing.
type telemetry struct {
	tracer   trace.Tracer
	tracing  bool // false for a no-op TracerProvider: no span is started at all
	metering bool // false for a no-op MeterProvider: no instrument is called, no clock read

	clock   Clock
	dunning payment.DunningSchedule

	charges         metric.Int64Counter
	renewalLag      metric.Float64Histogram
	consumeDuration metric.Float64Histogram
	consumeRefusals metric.Int64Counter
}

// newTelemetry makes the engine's tracer and instruments from cfg's providers (filled by
// withDefaults), registers the gauges' callback on pool, and wraps cfg.Gateway so that every
// provider call has its span and every charge is counted. An instrument the provider
// refuses is logged and left out; telemetry never stops New.
func newTelemetry(pool *pgxpool.Pool, cfg *Config) *telemetry {
	t := &telemetry{clock: cfg.Clock, dunning: cfg.Dunning}
	if _, noop := cfg.TracerProvider.(tracenoop.TracerProvider); !noop && cfg.TracerProvider != nil {
		t.tracer = cfg.TracerProvider.Tracer(InstrumentationName)
		t.tracing = true
	}
	if _, noop := cfg.MeterProvider.(metricnoop.MeterProvider); !noop && cfg.MeterProvider != nil {
		t.metering = true
		t.instruments(pool, cfg)
	}
	if cfg.Gateway != nil && (t.tracing || t.metering) {
		cfg.Gateway = instrumentGateway(cfg.Gateway, t)
	}
	return t
}

// instruments creates the metric instruments and registers the gauges' callback.
func (t *telemetry) instruments(pool *pgxpool.Pool, cfg *Config) {
	m := cfg.MeterProvider.Meter(InstrumentationName)
	logger := cfg.Logger
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	none := metricnoop.Meter{}
	if t.charges, err = m.Int64Counter("billing.charges", metric.WithUnit("{charge}"),
		metric.WithDescription("Charges sent to the payment provider (Charge, StartCheckout), by billing.outcome and billing.purpose.")); err != nil {
		keep(err)
		t.charges, _ = none.Int64Counter("")
	}
	if t.renewalLag, err = m.Float64Histogram("billing.renewal.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from a renewal charge's due time (the period end, or the dunning retry's scheduled time) to the charge being sent."),
		metric.WithExplicitBucketBoundaries(1, 10, 60, 300, 900, 3600, 4*3600, 12*3600, 86400, 3*86400, 7*86400)); err != nil {
		keep(err)
		t.renewalLag, _ = none.Float64Histogram("")
	}
	if t.consumeDuration, err = m.Float64Histogram("billing.consume.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of Consume and Reserve calls, refused ones included, by billing.op."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)); err != nil {
		keep(err)
		t.consumeDuration, _ = none.Float64Histogram("")
	}
	if t.consumeRefusals, err = m.Int64Counter("billing.consume.refusals", metric.WithUnit("{call}"),
		metric.WithDescription("Consume and Reserve calls refused, by billing.refusal.reason (limit_exceeded, no_access, meter_unknown, conflict) and billing.op.")); err != nil {
		keep(err)
		t.consumeRefusals, _ = none.Int64Counter("")
	}
	open, err1 := m.Int64ObservableGauge("billing.attempts.open", metric.WithUnit("{attempt}"),
		metric.WithDescription("Charge attempts whose outcome is not known yet (created, pending, unknown) and not parked."))
	parked, err2 := m.Int64ObservableGauge("billing.parked", metric.WithUnit("{item}"),
		metric.WithDescription("Items waiting for a person, by billing.parked.kind: charge attempts reconciliation gave up on (AttemptListParked), unapplied payments whose refund was parked (UnappliedPaymentList)."))
	near, err3 := m.Int64ObservableGauge("billing.refunds.near_deadline", metric.WithUnit("{request}"),
		metric.WithDescription("Open refund requests whose TERMS 3.8 payout deadline is within 2 days or past."))
	if err := errors.Join(err1, err2, err3); err != nil {
		keep(err)
	} else {
		_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, gaugeQueryTimeout)
			defer cancel()
			if n, err := store.CountOpenAttempts(ctx, pool); err != nil {
				logger.WarnContext(ctx, "billing: telemetry: could not count open attempts", "error", err)
			} else {
				o.ObserveInt64(open, n)
			}
			if a, u, err := store.CountParked(ctx, pool); err != nil {
				logger.WarnContext(ctx, "billing: telemetry: could not count parked items", "error", err)
			} else {
				o.ObserveInt64(parked, a, metric.WithAttributes(attrParkedKind.String("attempt")))
				o.ObserveInt64(parked, u, metric.WithAttributes(attrParkedKind.String("unapplied_payment")))
			}
			if n, err := store.CountRefundsDueBy(ctx, pool, t.clock.Now().Add(escalateBefore)); err != nil {
				logger.WarnContext(ctx, "billing: telemetry: could not count refunds near their deadline", "error", err)
			} else {
				o.ObserveInt64(near, n)
			}
			return nil // a failed count is logged and skipped: the other gauges still report
		}, open, parked, near)
		keep(err)
	}
	if err := errors.Join(errs...); err != nil {
		logger.Warn("billing: telemetry: the meter provider refused an instrument; it is left out", "error", err)
	}
}

// span is a command's or a provider call's span; its zero value does nothing.
type span struct {
	s       trace.Span // nil when not tracing
	t       *telemetry
	op      string
	started time.Time // set for Consume and Reserve when metering
}

// start starts the span "billing.<op>" with attrs under ctx's span, and returns ctx with it.
func (t *telemetry) start(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, span) {
	if t == nil || !t.tracing {
		return ctx, span{}
	}
	ctx, s := t.tracer.Start(ctx, "billing."+op)
	if s.IsRecording() {
		s.SetAttributes(attrOp.String(op))
		for _, a := range attrs { // one by one: attrs stays on the caller's stack
			s.SetAttributes(a)
		}
	}
	return ctx, span{s: s, t: t, op: op}
}

// startConsume is start for Consume and Reserve, which also time the call and count its
// refusals (billing.consume.duration, billing.consume.refusals).
func (t *telemetry) startConsume(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, span) {
	ctx, sp := t.start(ctx, op, attrs...)
	if t != nil && t.metering {
		sp.t, sp.op, sp.started = t, op, time.Now() // wall time: a duration, not a business instant
	}
	return ctx, sp
}

// end ends the span with *errp's outcome: an error is recorded (RecordError, status Error,
// error.type) and a refused Consume or Reserve is counted.
func (sp span) end(errp *error) {
	var err error
	if errp != nil {
		err = *errp
	}
	if !sp.started.IsZero() {
		ctx := context.Background()
		op := metric.WithAttributes(attrOp.String(sp.op))
		sp.t.consumeDuration.Record(ctx, time.Since(sp.started).Seconds(), op)
		if reason := refusalReason(err); reason != "" {
			sp.t.consumeRefusals.Add(ctx, 1, metric.WithAttributes(attrOp.String(sp.op), attrReason.String(reason)))
		}
	}
	if sp.s == nil {
		return
	}
	switch {
	case errors.Is(err, errNotDue):
		// The renewal job (span billing.RenewPeriod) run before the period's end (it was
		// extended): the job is snoozed, a normal outcome rather than a failure.
		sp.s.SetAttributes(attrNotDue.Bool(true))
	case err != nil:
		sp.s.RecordError(err)
		sp.s.SetStatus(codes.Error, err.Error())
		sp.s.SetAttributes(attrErrorType.String(errorType(err)))
	}
	sp.s.End()
}

// refusalReason is why a Consume or Reserve was refused, or "" when err is not a refusal.
func refusalReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, subscription.ErrLimitExceeded):
		return "limit_exceeded"
	case errors.Is(err, subscription.ErrNoAccess):
		return "no_access"
	case errors.Is(err, subscription.ErrMeterUnknown):
		return "meter_unknown"
	case errors.Is(err, ErrIdempotencyConflict):
		return "conflict"
	}
	return ""
}

// errorType is the error.type attribute of a failed span: the kind of error a caller
// matches, or "other".
func errorType(err error) string {
	if r := refusalReason(err); r != "" {
		return r
	}
	switch {
	case errors.Is(err, ErrInvalidInput):
		return "invalid_input"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, errRetryLater):
		return "outcome_unknown" // the job runs again and looks the outcome up
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// renewalSent records billing.renewal.lag for a renewal attempt a sent at now: how late
// the charge went after it fell due (the period end for the first attempt; the dunning
// schedule's time for a retry).
func (t *telemetry) renewalSent(ctx context.Context, a payment.Attempt, now time.Time) {
	if t == nil || !t.metering || a.Purpose != payment.PurposeRenewal {
		return
	}
	due := a.DueAt
	if a.Number > 1 {
		at, ok := payment.NextRetry(t.dunning, a.DueAt, a.Number-1)
		if !ok {
			return
		}
		due = at
	}
	t.renewalLag.Record(ctx, max(now.Sub(due), 0).Seconds())
}

// gatewayPurpose is what a provider call is for, read from the engine's own key prefixes
// (payment.NewAttemptKey, gatewayKey): checkout, renewal, refund (a refund request) or
// unapplied (the refund of money no period took).
func gatewayPurpose(key string) string {
	prefix, _, _ := strings.Cut(key, "_")
	switch prefix {
	case "checkout":
		return "checkout"
	case "renew":
		return "renewal"
	case "refund":
		return "refund"
	case "unapplied":
		return "unapplied"
	}
	return "other"
}

// instrumentGateway wraps gw with a span per call and the charge counter. The wrapper is a
// payment.CheckoutGateway exactly when gw is one, so the engine's check for the optional
// interface sees the provider as it is.
func instrumentGateway(gw payment.Gateway, t *telemetry) payment.Gateway {
	ig := &instrumentedGateway{gw: gw, t: t}
	if cg, ok := gw.(payment.CheckoutGateway); ok {
		return &instrumentedCheckoutGateway{instrumentedGateway: ig, cg: cg}
	}
	return ig
}

// instrumentedGateway is a payment.Gateway with a span per call ("billing.gateway.<Call>",
// kind client) and billing.charges.
type instrumentedGateway struct {
	gw payment.Gateway
	t  *telemetry
}

// instrumentedCheckoutGateway is instrumentedGateway for a gateway with StartCheckout.
type instrumentedCheckoutGateway struct {
	*instrumentedGateway
	cg payment.CheckoutGateway
}

// call starts a provider call's span.
func (g *instrumentedGateway) call(ctx context.Context, name, key string) (context.Context, trace.Span) {
	if !g.t.tracing {
		return ctx, nil
	}
	ctx, s := g.t.tracer.Start(ctx, "billing.gateway."+name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrPurpose.String(gatewayPurpose(key))))
	return ctx, s
}

// done ends a provider call's span with its answer.
func done(s trace.Span, outcome payment.Outcome, declineCode string, providerKey attribute.Key, providerID string, err error) {
	if s == nil {
		return
	}
	if err != nil {
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
		s.SetAttributes(attrErrorType.String(gatewayErrorType(err)))
	} else {
		s.SetAttributes(attrOutcome.String(string(outcome)))
		if outcome == payment.OutcomeSoftDeclined || outcome == payment.OutcomeHardDeclined {
			s.SetAttributes(attrDeclineHard.Bool(outcome == payment.OutcomeHardDeclined))
		}
	}
	if declineCode != "" {
		s.SetAttributes(attrDeclineCode.String(declineCode))
	}
	if providerID != "" {
		s.SetAttributes(providerKey.String(providerID))
	}
	s.End()
}

// gatewayErrorType is error.type of a failed provider call.
func gatewayErrorType(err error) string {
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return "not_found" // Lookup: the provider never saw the key
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// counted adds one charge to billing.charges.
func (g *instrumentedGateway) counted(ctx context.Context, key string, outcome payment.Outcome, err error) {
	if !g.t.metering {
		return
	}
	o := string(outcome)
	if err != nil {
		o = "error"
	} else if !outcome.Valid() {
		o = string(payment.OutcomeUnknown)
	}
	g.t.charges.Add(ctx, 1, metric.WithAttributes(attrOutcome.String(o), attrPurpose.String(gatewayPurpose(key))))
}

// Charge is payment.Gateway.Charge with its span, counted.
func (g *instrumentedGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	ctx, s := g.call(ctx, "Charge", req.IdempotencyKey)
	res, err := g.gw.Charge(ctx, req)
	done(s, res.Outcome, res.DeclineCode, attrProviderPay, res.ProviderPaymentID, err)
	g.counted(ctx, req.IdempotencyKey, res.Outcome, err)
	return res, err
}

// Refund is payment.Gateway.Refund with its span.
func (g *instrumentedGateway) Refund(ctx context.Context, req payment.RefundParams) (payment.RefundResult, error) {
	ctx, s := g.call(ctx, "Refund", req.IdempotencyKey)
	res, err := g.gw.Refund(ctx, req)
	done(s, res.Outcome, res.DeclineCode, attrProviderRef, res.ProviderRefundID, err)
	return res, err
}

// Lookup is payment.Gateway.Lookup with its span.
func (g *instrumentedGateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	ctx, s := g.call(ctx, "Lookup", req.IdempotencyKey)
	res, err := g.gw.Lookup(ctx, req)
	done(s, res.Outcome, res.DeclineCode, attrProviderPay, res.ProviderPaymentID, err)
	return res, err
}

// LookupRefund is payment.Gateway.LookupRefund with its span.
func (g *instrumentedGateway) LookupRefund(ctx context.Context, req payment.RefundLookupParams) (payment.RefundResult, error) {
	ctx, s := g.call(ctx, "LookupRefund", req.IdempotencyKey)
	res, err := g.gw.LookupRefund(ctx, req)
	done(s, res.Outcome, res.DeclineCode, attrProviderRef, res.ProviderRefundID, err)
	return res, err
}

// StartCheckout is payment.CheckoutGateway.StartCheckout with its span, counted as a
// charge. The confirmation URL is not recorded.
func (g *instrumentedCheckoutGateway) StartCheckout(ctx context.Context, req payment.CheckoutParams) (payment.CheckoutResult, error) {
	ctx, s := g.call(ctx, "StartCheckout", req.IdempotencyKey)
	res, err := g.cg.StartCheckout(ctx, req)
	done(s, res.Outcome, res.DeclineCode, attrProviderPay, res.ProviderPaymentID, err)
	g.counted(ctx, req.IdempotencyKey, res.Outcome, err)
	return res, err
}
