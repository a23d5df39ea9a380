package billingtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing/internal/store"
)

// Runner drives River jobs on a manual clock: RunUntil moves the clock forward to each
// instant at which a job falls due, in order, and waits while the real River workers of
// a started client work every job due by then, before it moves on. Jobs a worker fails
// are retried by River on its own schedule, in clock time, like in production.
//
// Make the client with NewRiverClient (or give yours Test.Time = the Runner's clock, a
// FetchPollInterval of a few milliseconds, RescueStuckJobsAfter, and one worker on the
// engine's queue, billing.Config.Queue, so jobs due at one instant run one at a time in
// River's order: priority, scheduled time, id). With River in a schema of its own, set
// Schema.
type Runner struct {
	pool  *pgxpool.Pool
	clock *Clock
	// Timeout bounds the wait for one instant's jobs; default 30s.
	Timeout time.Duration
	// Schema is the schema of River's tables, as the client's river.Config.Schema; empty
	// means the search_path. NewRunner sets RiverSchema(); a Harness sets its client's.
	Schema string
	// Claim starts a renewal claim for an engine with billing.Config.ClaimRenewals, where
	// renewals are not River jobs: the Runner then also stops at every subscription's
	// renew_at, and calls Claim while a renewal is due at the clock's instant and no job
	// runs. A Harness sets it to insert the engine's claim job, which River's worker runs;
	// for a Runner of your own, insert it the same way or call Engine.ClaimDueRenewals.
	// Nil: renewals are River jobs.
	Claim func(ctx context.Context) error
}

// NewRunner returns a Runner for the River jobs in pool's database on clock.
func NewRunner(pool *pgxpool.Pool, clock *Clock) *Runner {
	return &Runner{pool: pool, clock: clock, Timeout: 30 * time.Second, Schema: RiverSchema()}
}

// NewRiverClient returns a River client for tests and demos on clock: River reads time
// from the clock, polls every 5ms, works one job at a time on the default queue, and keeps
// finished jobs (its cleaner deletes none) so that a test can read what became of them.
// Start it before calling the Runner, and stop it at the end.
func NewRiverClient(pool *pgxpool.Pool, clock *Clock, workers *river.Workers) (*river.Client[pgx.Tx], error) {
	return newRiverClient(pool, clock, workers, river.QueueDefault)
}

// newRiverClient is NewRiverClient working queue.
func newRiverClient(pool *pgxpool.Pool, clock *Clock, workers *river.Workers, queue string) (*river.Client[pgx.Tx], error) {
	return river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{queue: {MaxWorkers: 1}},
		Workers:           workers,
		Schema:            RiverSchema(),
		FetchPollInterval: 5 * time.Millisecond,
		FetchCooldown:     time.Millisecond,
		// River's stuck-job rescuer compares a running job's attempted_at, stamped on the
		// clock, with the wall clock (River v0.51, maintenance/job_rescuer.go): on a clock
		// behind the wall every running job looks stuck for hours, and a rescuer pass
		// turns it retryable while it runs. Out of reach here; the Runner's Timeout is the
		// watchdog instead.
		RescueStuckJobsAfter: RescueStuckJobsAfter,
		// River's job cleaner deletes finalized jobs a day (a week when discarded) after they
		// ended, on the clock: a test that jumps weeks loses them whenever the leader's
		// cleaner happens to pass, and what it checks in River's table (a job River
		// discarded) is there or not by timing. Kept for good (-1).
		CancelledJobRetentionPeriod: -1,
		CompletedJobRetentionPeriod: -1,
		DiscardedJobRetentionPeriod: -1,
		Test:                        river.TestConfig{Time: clock},
		Logger:                      nil,
	})
}

// RescueStuckJobsAfter is the river.Config.RescueStuckJobsAfter NewRiverClient sets: a
// century. Trap: give it to your own client on a Clock too. River's stuck-job rescuer
// compares a running job's attempted_at (stamped on the Clock) with the wall clock, so on a
// Clock behind the wall, with the default hour, every job running when the rescuer passes is
// "rescued" as stuck and turned retryable while it still runs, and a test that checks right
// after RunDue sees the work undone.
const RescueStuckJobsAfter = 100 * 365 * 24 * time.Hour

// ErrJobsStuck is returned when the jobs due at an instant did not finish within Timeout.
var ErrJobsStuck = errors.New("billingtest: River jobs did not finish in time")

// RunUntil advances the clock to until, stopping at every instant at which a job falls
// due (its scheduled time, or its retry time after a failure) to let the workers run
// every job due by then. It returns when no job is due at or before until; the clock then
// reads until (or stays, when it is already later). It returns how many instants it
// stopped at.
//
// TRAP: move the clock forward with RunUntil, not Clock.Set or Clock.Advance. A jump made
// with Set passes over every job due in between, and River then runs them all late, at the
// new instant: a renewal due on the 31st runs "now", on the 15th of the next month, sees
// that instant as its time, and what it decides (the period it charges, a dunning retry's
// date, a refund deadline) is computed from the wrong instant. The test then passes or
// fails for the wrong reason. Set the clock directly only where no job is scheduled in
// between (before the first command, or to go back), or on purpose to test a late job.
func (r *Runner) RunUntil(ctx context.Context, until time.Time) (int, error) {
	steps := 0
	for {
		if err := r.drain(ctx); err != nil {
			return steps, err
		}
		next, ok, err := r.nextDue(ctx)
		if err != nil {
			return steps, err
		}
		if !ok || next.After(until) {
			break
		}
		if next.After(r.clock.Now()) {
			r.clock.Set(next)
		}
		steps++
	}
	if until.After(r.clock.Now()) {
		r.clock.Set(until)
	}
	return steps, r.drain(ctx)
}

// RunDue works every job already due at the clock's current instant, without moving it.
func (r *Runner) RunDue(ctx context.Context) error {
	_, err := r.RunUntil(ctx, r.clock.Now())
	return err
}

// nextDue returns the earliest scheduled time of a job still to run.
func (r *Runner) nextDue(ctx context.Context) (time.Time, bool, error) {
	var next *time.Time
	err := r.pool.QueryRow(ctx, `SELECT min(scheduled_at) FROM `+r.jobTable()+`
		WHERE state IN ('available', 'scheduled', 'retryable')`).Scan(&next)
	if err != nil {
		return time.Time{}, false, err
	}
	if r.Claim != nil {
		at, ok, err := store.NextRenewAt(ctx, r.pool)
		if err != nil {
			return time.Time{}, false, err
		}
		if ok && (next == nil || at.Before(*next)) {
			next = &at
		}
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return *next, true, nil
}

// drain makes the jobs due at the clock's instant available (River's scheduler would do
// it on its own interval; the runner does not wait for it) and waits until none is due or
// running.
func (r *Runner) drain(ctx context.Context) error {
	deadline := time.Now().Add(r.Timeout)
	for {
		now := r.clock.Now()
		if _, err := r.pool.Exec(ctx, `UPDATE `+r.jobTable()+` SET state = 'available'
			WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= $1`, now); err != nil {
			return err
		}
		var pending int
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM `+r.jobTable()+`
			WHERE (state = 'available' AND scheduled_at <= $1) OR state = 'running'`, now).Scan(&pending); err != nil {
			return err
		}
		if pending == 0 {
			claim, err := r.claimDue(ctx, now)
			if err != nil || !claim {
				return err
			}
			if err := r.Claim(ctx); err != nil {
				return err
			}
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d jobs due at %s", ErrJobsStuck, pending, now.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// claimDue reports whether a renewal claim has work at now: Claim is set and a
// subscription's renew_at has come.
func (r *Runner) claimDue(ctx context.Context, now time.Time) (bool, error) {
	if r.Claim == nil {
		return false, nil
	}
	at, ok, err := store.NextRenewAt(ctx, r.pool)
	return ok && !at.After(now), err
}

// jobTable is River's job table in the Runner's Schema, quoted.
func (r *Runner) jobTable() string { return store.RiverTable(r.Schema, "river_job") }
