package billingtest

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing"
)

// Harness is an engine wired the way a test or a demo needs it: on a manual Clock, with
// the fake Gateway (unless the config names another), the engine's River workers running
// in a client that reads the same clock, and a Runner that moves the clock from one due job
// to the next. Make one with StartHarness and Stop it at the end.
type Harness struct {
	// Engine is the engine under test.
	Engine *billing.Engine
	// Clock is the engine's and River's clock.
	Clock *Clock
	// Gateway is the fake provider: the one StartHarness made, or the config's own when it
	// is a *Gateway; nil when the config named another kind of gateway.
	Gateway *Gateway
	// Runner works the River jobs as the clock moves.
	Runner *Runner
	// Events records the business events the engine delivered, when StartHarness set
	// cfg.OnEvent to its Handle (cfg had none); nil otherwise.
	Events *EventLog

	client *river.Client[pgx.Tx]
}

// StartHarness migrates pool's database, makes an engine from cfg with its Clock set to a
// new Clock reading start (and its Gateway to a new fake Gateway when cfg has none),
// registers the engine's workers in a River client on that clock (NewRiverClient, working
// cfg.Queue), hands
// it to the engine and starts it. Stop stops the client; the pool stays the caller's.
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
	engine, err := billing.New(pool, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := engine.Migrate(ctx); err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	if err := engine.RegisterWorkers(workers); err != nil {
		return nil, err
	}
	client, err := newRiverClient(pool, h.Clock, workers, cmp.Or(cfg.Queue, river.QueueDefault))
	if err != nil {
		return nil, err
	}
	if err := engine.UseRiver(client); err != nil {
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	h.Engine, h.client, h.Runner = engine, client, NewRunner(pool, h.Clock)
	h.Runner.Schema = client.Schema()
	return h, nil
}

// Stop stops the River client, waiting up to 10 seconds for running jobs.
func (h *Harness) Stop() error {
	if h == nil || h.client == nil {
		return errors.New("billingtest: Stop of a harness that was not started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.client.Stop(ctx)
}
