package billing

import (
	"context"
	"time"

	"github.com/smm-gpt/billing/internal/store"
)

// PruneResult is what one PruneExpired deleted.
type PruneResult struct {
	// IdempotencyKeys is how many idempotency keys (of Subscribe, RequestRefund and
	// RequestAccountDeletion) older than the horizon were deleted.
	IdempotencyKeys int64
	// UsageEvents is how many usage events (Consume's idempotency record) of periods that
	// ended before the horizon were deleted.
	UsageEvents int64
}

// PruneExpired deletes the records that only serve replays of retried commands once they
// are older than Config.RetentionHorizon, as of the engine's clock:
//   - idempotency keys created before now − horizon;
//   - usage events of periods that ended before now − horizon. A period still open never
//     loses an event, so a Consume retried while its call could still count finds its
//     key and replays; the usage counters (billing_usage) that access, limits and refund
//     eligibility read are never touched.
//
// Nothing else is deleted: not the ledger, the audit log, payment attempts, refunds,
// periods or counters. It deletes in batches of at most 10 000 rows, each its own short
// transaction, until a batch finds fewer, so it never holds locks for long and a run
// cut short (ctx) keeps what it deleted; the result counts what was deleted, also with an
// error. With a negative RetentionHorizon it deletes nothing.
//
// The periodic job of PeriodicJobs calls it; a host or an operator may call it too, at
// any time and concurrently with it (two runs never delete a row twice).
func (e *Engine) PruneExpired(ctx context.Context) (_ PruneResult, err error) {
	ctx, span := e.tel.start(ctx, "PruneExpired")
	defer span.end(&err)
	var res PruneResult
	if e.cfg.RetentionHorizon < 0 {
		return res, nil
	}
	cutoff := e.clock.Now().Add(-e.cfg.RetentionHorizon)
	res.IdempotencyKeys, err = pruneInBatches(ctx, func() (int64, error) {
		return store.PruneIdempotencyKeys(ctx, e.pool, cutoff, store.PruneBatch)
	})
	if err == nil {
		res.UsageEvents, err = pruneInBatches(ctx, func() (int64, error) {
			return store.PruneUsageEvents(ctx, e.pool, cutoff, store.PruneBatch)
		})
	}
	if res != (PruneResult{}) {
		e.logger.InfoContext(ctx, "billing: pruned records older than the retention horizon",
			"idempotency_keys", res.IdempotencyKeys, "usage_events", res.UsageEvents, "cutoff", cutoff)
	}
	if err != nil {
		return res, opError("PruneExpired", err)
	}
	return res, nil
}

// pruneInBatches runs batch, one statement deleting at most store.PruneBatch rows, until
// it deletes fewer, and returns the rows deleted in all.
func pruneInBatches(ctx context.Context, batch func() (int64, error)) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := batch()
		total += n
		if err != nil || n < store.PruneBatch {
			return total, err
		}
	}
}

// pruneWorker is the engine as jobs.PruneExpiredWorker sees it: the result is logged by
// PruneExpired, the worker needs the error only.
type pruneWorker struct{ e *Engine }

// PruneExpired runs Engine.PruneExpired.
func (w pruneWorker) PruneExpired(ctx context.Context) error {
	_, err := w.e.PruneExpired(ctx)
	return err
}

// retentionPruneInterval is how often the periodic job of PeriodicJobs prunes: hourly, so
// each run's backlog is an hour's worth of rows come of age, and a run with nothing to
// delete reads only the oldest entries of two indexes (migration 0013).
const retentionPruneInterval = time.Hour
