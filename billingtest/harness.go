package billingtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/jobs"
)

// Harness is an engine wired the way a test or a demo needs it: on a manual Clock, with
// the fake Gateway (unless the config names another), the engine's River workers running
// in a client that reads the same clock, and a Runner that moves the clock from one due job
// to the next. In a test make one with NewHarness, which stops it when the test ends; in a
// program that is not a test (a demo), with StartHarness, and Stop it at the end.
type Harness struct {
	// Engine is the engine under test.
	Engine *billing.Engine
	// Clock is the engine's and River's clock.
	Clock *Clock
	// Gateway is the fake provider: the one the harness made, or the config's own when it
	// is a *Gateway; nil when the config named another kind of gateway, or none.
	Gateway *Gateway
	// Runner works the River jobs as the clock moves. Until River is started (see
	// WithoutRiver and StartRiver) there are no jobs for it to work.
	Runner *Runner
	// Events records the business events the engine delivered to it. NewHarness always
	// makes it and sets cfg.OnEvent to its Handle (a WithConfig change that replaces
	// OnEvent leaves it empty); StartHarness makes it only when cfg has no OnEvent, and
	// leaves it nil otherwise.
	Events *EventLog
	// Pool is the pool on the engine's database.
	Pool *pgxpool.Pool

	client *river.Client[pgx.Tx]
	queue  string
	claims bool // the engine claims its renewals (billing.Config.ClaimRenewals): the Runner's Claim inserts the claim job
	// migrateAfterRiver: the database is to be migrated once the River client is given to
	// the engine, so that River's tables go in the client's schema (RiverSchema).
	migrateAfterRiver bool
}

// NewHarness returns a harness for the test tb on a database of its own (NewPool, or the
// pool of WithPool), with River started, and stops River when the test ends (tb.Cleanup,
// before the pool closes): there is no Stop to forget. It ends the test with tb.Fatal when
// something cannot be wired. Tests that use it may run in parallel.
//
// The engine's config is billing.DefaultConfig with the harness's parts, then the
// WithConfig changes in order:
//
//   - Clock is the harness's Clock, reading the WithStart instant (by default Mon 2 Mar
//     2026 10:00 in the config's Location, Europe/Moscow unless changed). It is set again
//     after the changes: the engine and River share one clock, and so does the fake
//     gateway unless a clock was set on it already (Gateway.SetClock).
//   - Gateway is a new fake Gateway (Harness.Gateway) stamping its events on that clock. A
//     change may replace it (Harness.Gateway is then the new one if it is a *Gateway, else
//     nil) or set it to nil for an engine without a provider (ErrNoGateway).
//   - OnEvent is Harness.Events.Handle, so every business event is delivered and recorded.
//     A change may replace it (Harness.Events then stays empty) or set it to nil (events
//     are then only recorded in the database, Engine.EventList). Without River (WithoutRiver)
//     it starts nil: with OnEvent set and no River client, a command that records an
//     event fails with billing.ErrNoRiverClient.
//
// Trap: move the clock across scheduled jobs with Harness.Runner.RunUntil, not
// Clock.Set or Advance (see RunUntil).
func NewHarness(tb testing.TB, opts ...HarnessOption) *Harness {
	tb.Helper()
	o := harnessOptions{river: true}
	for _, opt := range opts {
		opt(&o)
	}
	pool, migrate := o.pool, o.pool != nil
	if pool == nil {
		pool = NewPool(tb) // migrated already, from the template
	}

	h := &Harness{Clock: NewClock(time.Time{}), Gateway: NewGateway(), Events: NewEventLog()}
	cfg := billing.DefaultConfig()
	cfg.Clock, cfg.Gateway = h.Clock, h.Gateway
	if o.river {
		cfg.OnEvent = h.Events.Handle
	}
	for _, change := range o.changes {
		change(&cfg)
	}
	cfg.Clock = h.Clock
	start := o.start
	if start.IsZero() {
		start = time.Date(2026, 3, 2, 10, 0, 0, 0, cmp.Or(cfg.Location, time.UTC))
	}
	h.Clock.Set(start)
	h.Gateway, _ = cfg.Gateway.(*Gateway)
	if h.Gateway != nil {
		h.Gateway.setClockUnlessSet(h.Clock)
		if o.latency > 0 {
			h.Gateway.SetLatency(o.latency)
		}
	} else if o.latency > 0 {
		tb.Fatalf("billingtest: WithGatewayLatency needs the fake Gateway, and the config has %T", cfg.Gateway)
	}

	ctx := context.Background()
	if err := h.build(ctx, pool, cfg, migrate); err != nil {
		tb.Fatalf("billingtest: NewHarness: %v", err)
	}
	if o.river {
		h.StartRiver(tb)
	}
	return h
}

// HarnessOption changes what NewHarness makes.
type HarnessOption func(*harnessOptions)

type harnessOptions struct {
	changes []func(*billing.Config)
	start   time.Time
	latency time.Duration
	pool    *pgxpool.Pool
	river   bool
}

// WithConfig changes the engine's config after the harness has set its parts (see
// NewHarness); several apply in order.
func WithConfig(change func(*billing.Config)) HarnessOption {
	return func(o *harnessOptions) { o.changes = append(o.changes, change) }
}

// WithStart sets the instant the Clock reads at first. Defaults to Mon 2 Mar 2026 10:00
// in the config's Location.
func WithStart(start time.Time) HarnessOption {
	return func(o *harnessOptions) { o.start = start }
}

// WithGatewayLatency delays every answer of the fake Gateway by d (Gateway.SetLatency), in
// wall-clock time. Trap: it needs the fake gateway; a config whose Gateway is another kind
// fails the test.
func WithGatewayLatency(d time.Duration) HarnessOption {
	return func(o *harnessOptions) { o.latency = d }
}

// WithPool puts the engine on pool's database instead of a new NewPool, and migrates it
// (billing.Engine.Migrate): for a NewPoolWith database with the host's own tables, or a
// NewEmptyPool. The pool stays the caller's (NewPoolWith closes its own).
func WithPool(pool *pgxpool.Pool) HarnessOption {
	return func(o *harnessOptions) { o.pool = pool }
}

// WithoutRiver makes the engine without a River client: commands that schedule a job
// fail with billing.ErrNoRiverClient, and OnEvent starts nil. For tests of commands that
// need no job, or that start River later with StartRiver.
func WithoutRiver() HarnessOption {
	return func(o *harnessOptions) { o.river = false }
}

// StartRiver registers the engine's workers in a River client on the Clock (NewRiverClient,
// working the config's Queue), hands it to the engine, starts it, and stops it when tb
// ends. NewHarness calls it unless WithoutRiver; call it once, before any command that
// schedules a job. It ends the test with tb.Fatal on failure.
func (h *Harness) StartRiver(tb testing.TB) {
	tb.Helper()
	if h.client != nil {
		tb.Fatal("billingtest: StartRiver: River is started already")
	}
	if err := h.startRiver(context.Background()); err != nil {
		tb.Fatalf("billingtest: start River: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Stop(); err != nil {
			tb.Errorf("billingtest: stop River: %v", err)
		}
	})
}

// StartHarness is the harness for a program that is not a test (the demos of examples/):
// tests should use NewHarness, which needs no Stop. It migrates pool's database, makes an
// engine from cfg with its Clock set to a new Clock reading start (and its Gateway to a new
// fake Gateway when cfg has none), registers the engine's workers in a River client on that
// clock (NewRiverClient, working cfg.Queue), hands it to the engine and starts it. Stop
// stops the client; the pool stays the caller's.
//
// The fake Gateway (the new one, or cfg's own *Gateway) gets the harness's Clock too
// (Gateway.SetClock) unless a clock was set on it already, so the events it stamps
// (Confirm, ConfirmRefund) are on the engine's time, not the wall clock's. A cfg without
// OnEvent gets an EventLog's (Harness.Events), so every event is delivered and recorded.
func StartHarness(ctx context.Context, pool *pgxpool.Pool, start time.Time, cfg billing.Config) (*Harness, error) {
	h := &Harness{Clock: NewClock(start)}
	cfg.Clock = h.Clock
	if cfg.Gateway == nil {
		cfg.Gateway = NewGateway()
	}
	if cfg.OnEvent == nil {
		h.Events = NewEventLog()
		cfg.OnEvent = h.Events.Handle
	}
	if g, ok := cfg.Gateway.(*Gateway); ok {
		g.setClockUnlessSet(h.Clock)
		h.Gateway = g
	}
	if err := h.build(ctx, pool, cfg, true); err != nil {
		return nil, err
	}
	if err := h.startRiver(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// build makes the engine from cfg on pool (migrating the database first when migrate is
// set) and the Runner: the core NewHarness and StartHarness share.
func (h *Harness) build(ctx context.Context, pool *pgxpool.Pool, cfg billing.Config, migrate bool) error {
	engine, err := billing.New(pool, cfg)
	if err != nil {
		return err
	}
	switch {
	case migrate && RiverSchema() != "":
		h.migrateAfterRiver = true // Engine.Migrate puts River in the schema of UseRiver's client
	case migrate:
		if _, err := engine.Migrate(ctx); err != nil {
			return err
		}
	}
	h.Engine, h.Pool, h.queue, h.claims = engine, pool, cmp.Or(cfg.Queue, river.QueueDefault), cfg.ClaimRenewals
	h.Runner = NewRunner(pool, h.Clock)
	return nil
}

// startRiver registers the engine's workers in a new River client on the Clock, hands it
// to the engine and starts it.
func (h *Harness) startRiver(ctx context.Context) error {
	workers := river.NewWorkers()
	if err := h.Engine.RegisterWorkers(workers); err != nil {
		return err
	}
	client, err := newRiverClient(h.Pool, h.Clock, workers, h.queue)
	if err != nil {
		return err
	}
	if err := h.Engine.UseRiver(client); err != nil {
		return err
	}
	if h.migrateAfterRiver {
		if _, err := h.Pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{RiverSchema()}.Sanitize()); err != nil {
			return err
		}
		if _, err := h.Engine.Migrate(ctx); err != nil {
			return err
		}
		h.migrateAfterRiver = false
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	h.client = client
	h.Runner.Schema = client.Schema()
	if h.claims {
		h.Runner.Claim = func(ctx context.Context) error {
			_, err := client.Insert(ctx, jobs.ClaimRenewalsArgs{}, &river.InsertOpts{Queue: h.queue})
			return err
		}
	}
	return nil
}

// Stop stops the River client, waiting up to 10 seconds for running jobs. A harness of
// NewHarness is stopped when its test ends; stopping it earlier (to test what happens
// without workers) is allowed, and stopping twice does nothing more.
func (h *Harness) Stop() error {
	if h == nil || h.client == nil {
		return errors.New("billingtest: Stop of a harness whose River was not started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.client.Stop(ctx); err != nil {
		return fmt.Errorf("billingtest: stop River: %w", err)
	}
	return nil
}
