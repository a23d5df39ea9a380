package billing

import (
	"context"
	"time"

	"github.com/smm-gpt/billing/internal/store"
)

// Balance checkpoints (migration 0016, internal/store/ledger_checkpoints.go). A periodic
// job of PeriodicJobs writes, for every account with new entries, the account's turnover up
// to a stable horizon; Books.Balance and Books.TrialBalance start from the latest one and
// add the entries written since, so their cost follows the entries of the last interval,
// not the size of the ledger. The numbers are the same with or without checkpoints.
//
// Why not a running balance kept at each posting: every payment of a currency posts to
// provider:<cur> and deferred:<cur>, so maintaining a balance on the posting path means one
// lock per hot account held to each payment's commit, and every payment, with the renewal
// workers behind it, in one queue (measured in issue 6: 2.5–3× fewer posts per second from
// 8 posters). And a balance at an instant cannot be read from a running total in posting
// order when a transaction may be posted with an earlier At than those before it. The job
// reads, off the posting path, what has become stable; a posting takes no lock at all.

// ledgerCheckpointInterval is how often the periodic job of PeriodicJobs checkpoints: a
// balance then reads at most about this long's worth of the account's entries (plus the
// ones the last run could not yet see). Ten seconds keeps that under 5 ms (~0.4 µs an
// entry, two index ranges) up to some 600 postings a second to one account, and a run with
// nothing new costs three one-row statements.
const ledgerCheckpointInterval = 10 * time.Second

// ledgerHorizonWait bounds how long one checkpoint run waits for the transactions in
// flight when it read the horizon to end. A run that gives up writes nothing.
const ledgerHorizonWait = 5 * time.Second

// checkpointLedger writes a checkpoint up to the stable horizon for every account with
// entries not yet in its checkpoint, at the engine's clock, and returns how many it wrote.
// It first reads the last entry number handed out, then waits (at most wait, polling) until
// every transaction that may hold a number up to it has ended; if that takes longer (a
// long transaction is open), it writes nothing and returns 0 and no error. Safe to run
// concurrently with itself and with postings.
func (e *Engine) checkpointLedger(ctx context.Context, wait time.Duration) (_ int64, err error) {
	ctx, span := e.tel.start(ctx, "Ledger.Checkpoint")
	defer span.end(&err)
	const op = "Ledger.Checkpoint"
	upto, xmax, err := store.LedgerHorizon(ctx, e.pool)
	if err != nil {
		return 0, opError(op, err)
	}
	deadline := time.Now().Add(wait)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		reached, err := store.LedgerHorizonReached(ctx, e.pool, xmax)
		if err != nil {
			return 0, opError(op, err)
		}
		if reached {
			break
		}
		if time.Now().Add(pause).After(deadline) {
			e.logger.InfoContext(ctx, "billing: ledger checkpoint skipped: a transaction open since the horizon was read is still open",
				"upto", upto, "waited", wait)
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return 0, opError(op, ctx.Err())
		case <-time.After(pause):
		}
	}
	now := e.clock.Now()
	n, err := store.InsertLedgerCheckpoints(ctx, e.pool, upto, now, now)
	if err != nil {
		return 0, opError(op, err)
	}
	return n, nil
}

// ledgerWorker is the engine as jobs.LedgerCheckpointWorker sees it.
type ledgerWorker struct{ e *Engine }

// CheckpointLedger runs checkpointLedger with the default wait.
func (w ledgerWorker) CheckpointLedger(ctx context.Context) error {
	_, err := w.e.checkpointLedger(ctx, ledgerHorizonWait)
	return err
}
