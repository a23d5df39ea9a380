package jobs

import (
	"context"

	"github.com/riverqueue/river"
)

// LedgerCheckpointArgs asks to checkpoint the ledger's balances: for every account with
// entries its latest checkpoint does not cover, write a new one up to a stable horizon
// (migration 0016), so that a balance sums only the entries written since. Run
// periodically.
type LedgerCheckpointArgs struct{}

// Kind is the River job kind.
func (LedgerCheckpointArgs) Kind() string { return "billing_ledger_checkpoint" }

// InsertOpts makes one checkpoint job at a time: a run still waiting or running absorbs
// the next periodic insert.
func (LedgerCheckpointArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// LedgerCheckpointer is the engine side of LedgerCheckpointWorker.
type LedgerCheckpointer interface {
	// CheckpointLedger writes the checkpoints due; a run with nothing new writes nothing,
	// and one that finds the horizon held back by a long transaction writes nothing and
	// returns nil (the next run tries again).
	CheckpointLedger(ctx context.Context) error
}

// LedgerCheckpointWorker works LedgerCheckpointArgs.
type LedgerCheckpointWorker struct {
	river.WorkerDefaults[LedgerCheckpointArgs]
	Engine LedgerCheckpointer
}

// Work checkpoints.
func (w *LedgerCheckpointWorker) Work(ctx context.Context, _ *river.Job[LedgerCheckpointArgs]) error {
	return w.Engine.CheckpointLedger(ctx)
}
