package billing

import (
	"context"
	"sync"

	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
)

// What the tests of package billing_test need of the engine's unexported job handlers.
// Only test binaries see these: a host reaches the handlers through the River workers
// that RegisterWorkers adds (the adapter jobWorker), never directly.

// RenewPeriod runs the renewal job's work, as jobs.RenewWorker does, minus the snooze.
var RenewPeriod = (*Engine).renewPeriod

// RetryRefund runs the refund retry job's work.
var RetryRefund = (*Engine).retryRefund

// EscalateRefund runs the refund escalation job's work.
var EscalateRefund = (*Engine).escalateRefund

// EscalateAccountDeletion runs the account deletion escalation job's work.
var EscalateAccountDeletion = (*Engine).escalateAccountDeletion

// ExpireReservation runs the reservation expiry job's work.
var ExpireReservation = (*Engine).expireReservation

// ErrNotDue is matched by the error of RenewPeriod run before its period ends.
var ErrNotDue = errNotDue

// LargestRenewalBatches returns the most renewals one batch of step 1 and one batch of step 3
// took so far (renewals_batch.go).
func LargestRenewalBatches(e *Engine) (prepare, settle int) {
	b := e.renewals
	b.prepare.mu.Lock()
	prepare = b.prepare.largest
	b.prepare.mu.Unlock()
	b.settle.mu.Lock()
	settle = b.settle.largest
	b.settle.mu.Unlock()
	return prepare, settle
}

// RenewalBatchCounts returns how many batches step 1 and step 3 of the renewals ran so far and
// how many renewals those batches held (renewals_batch.go, renewals_claims.go).
func RenewalBatchCounts(e *Engine) (prepareBatches, prepared, settleBatches, settled int) {
	b := e.renewals
	b.prepare.mu.Lock()
	prepareBatches, prepared = b.prepare.batches, b.prepare.calls
	b.prepare.mu.Unlock()
	b.settle.mu.Lock()
	settleBatches, settled = b.settle.batches, b.settle.calls
	b.settle.mu.Unlock()
	return prepareBatches, prepared, settleBatches, settled
}

// LargestConsumeBatch returns the most Consume calls one batch took so far (usage_batch.go).
func LargestConsumeBatch(e *Engine) int {
	b := e.consumeBatch
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.largest
}

// OneConsumeBatchAtOnce sends every Consume call of e through the batches (none runs alone)
// and makes them run one at a time, so that calls made at the same moment queue behind the
// first and share the next batch even when they are few (a test's handful of goroutines
// would otherwise each run alone, or lead a batch of its own).
func OneConsumeBatchAtOnce(e *Engine) {
	e.consumeAlone.max.Store(0)
	b := e.consumeBatch
	b.mu.Lock()
	defer b.mu.Unlock()
	b.atOnce = 1
}

// QueuedConsumeCalls returns how many Consume calls wait for a batch (usage_batch.go).
func QueuedConsumeCalls(e *Engine) int {
	b := e.consumeBatch
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// HoldConsumeBatches makes e's Consume batches wait, before they run, until release is
// called: the calls made meanwhile queue behind the first (tests of the queue).
func HoldConsumeBatches(e *Engine) (release func()) {
	b := e.consumeBatch
	gate := make(chan struct{})
	b.mu.Lock()
	run := b.run
	b.run = func(ctx context.Context, items []consumeItem) []store.ConsumeOutcome {
		<-gate
		return run(ctx, items)
	}
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// NoConsumeAlone sends every Consume call of e through the batches: none runs alone
// (consumeAlone), whatever the load.
func NoConsumeAlone(e *Engine) { e.consumeAlone.max.Store(0) }

// SkipRenewalJobs makes e insert no renewal jobs (billing_renew) from now on: the claimed
// cases of BenchmarkRenewalsDueAtOnce renew without a River job per period.
func SkipRenewalJobs(e *Engine) { e.skipRenewalJobs = true }

// SetSweepChunk makes e's renewal sweep look at n due subscriptions per statement, and at
// most chunks statements per sweep (0: the default).
func SetSweepChunk(e *Engine, n, chunks int) { e.sweepChunk, e.sweepChunks = n, chunks }

// ClaimRenewalsArgs is the args of the engine's renewal claim job, for a test's own River
// client to insert (the model's runner).
func ClaimRenewalsArgs() river.JobArgs { return jobs.ClaimRenewalsArgs{} }

// ClaimRenewalsJob is the claim job's work (jobs.ClaimRenewalsWorker): ClaimDueRenewals that
// inserts the next claim job after a full chunk.
func ClaimRenewalsJob(e *Engine, ctx context.Context) (int, error) { return e.claimRenewals(ctx, true) }
