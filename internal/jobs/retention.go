package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// PruneExpiredArgs asks to prune the idempotency keys and usage events older than the
// engine's retention horizon (billing.Config.RetentionHorizon). Run periodically.
type PruneExpiredArgs struct{}

// Kind is the River job kind.
func (PruneExpiredArgs) Kind() string { return "billing_prune_expired" }

// InsertOpts makes one prune job at a time: a run still waiting or running absorbs the
// next periodic insert, so slow runs never pile up.
func (PruneExpiredArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// Pruner is the engine side of PruneExpiredWorker.
type Pruner interface {
	// PruneExpired deletes, in short batches, what is older than the retention horizon;
	// running it twice deletes nothing the second time.
	PruneExpired(ctx context.Context) error
}

// PruneTimeout bounds one prune run. Each batch commits on its own, so a run cut short
// keeps what it deleted and the next run goes on; it is longer than River's default
// minute so that a backlog (the first run on a large table) is worked through.
const PruneTimeout = 30 * time.Minute

// PruneExpiredWorker works PruneExpiredArgs.
type PruneExpiredWorker struct {
	river.WorkerDefaults[PruneExpiredArgs]
	Engine Pruner
}

// Timeout is PruneTimeout.
func (w *PruneExpiredWorker) Timeout(*river.Job[PruneExpiredArgs]) time.Duration {
	return PruneTimeout
}

// Work prunes.
func (w *PruneExpiredWorker) Work(ctx context.Context, _ *river.Job[PruneExpiredArgs]) error {
	return w.Engine.PruneExpired(ctx)
}
