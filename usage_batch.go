package billing

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/smm-gpt/billing/internal/store"
)

// Consume calls in batches (group commit, issue 18).
//
// Consume calls made at the same moment through the engine's pool (not ConsumeTx, which
// runs in the host's transaction), beyond the few that run alone (consumeAlone), share one
// statement and one commit for their common case:
// a call that leaves volume under its meter's limit and crosses no usage threshold
// (store.ConsumeCrossing.ConsumeBatch, the single common-case statement written for many
// calls; it never waits on a usage row, and on a key at most its lock_timeout). A call the
// batch does not count (one that would use a limit up or cross a threshold, a replay, a
// refusal, a second call of a subscription already in the batch, a usage row another
// transaction holds, a batch that failed) runs the one-call path afterwards, outside the
// batches, exactly as it would have alone: the batch wrote nothing of it. So the batch only
// ever does what the common-case statement would have done for each call, and every rule of
// Consume (the limit, access, idempotency, the threshold events) stays with the statements
// that decide it; TestConsumeBatches checks the result call by call.

// consumeAlone counts the Consume calls running the one-call path on their own, outside the
// batches: while fewer than its limit run, a call runs alone (a single statement, the
// fastest way for one call: BenchmarkConsumeAlone); beyond it, calls share batches. So
// batches form only under load, where they pay; and calls that wait on a usage row held by
// another transaction (a host's) hold only these places, never a batch: the calls behind
// them go to the batches, which never wait on a row.
type consumeAlone struct {
	n   atomic.Int32
	max atomic.Int32 // consumeAloneAtOnce; tests set 0 (OneConsumeBatchAtOnce) to send every call to the batches
}

// consumeAloneAtOnce is how many Consume calls at most run alone at the same time.
const consumeAloneAtOnce = 4

// enter takes a place to run alone, and reports whether there was one.
func (a *consumeAlone) enter() bool {
	if a.n.Add(1) <= a.max.Load() {
		return true
	}
	a.n.Add(-1)
	return false
}

// leave gives back the place enter took.
func (a *consumeAlone) leave() { a.n.Add(-1) }

// consumeItem is one call waiting in a Consume batch, with its caller's context.
type consumeItem struct {
	ctx  context.Context
	call store.ConsumeCall
}

// consumeBatched runs call in a Consume batch and reports whether the batch counted it.
func (e *Engine) consumeBatched(ctx context.Context, call store.ConsumeCall) (store.ConsumeOutcome, bool) {
	o := e.consumeBatch.do(ctx, consumeItem{ctx: ctx, call: call})
	return o, o.Applied
}

// consumeCalls runs one batch: one call per subscription, in one statement that never
// waits on a usage row (store.ConsumeCrossing.ConsumeBatch). A call left out (its caller's
// context ended while it waited, its subscription is in the batch already, its row is held
// by another transaction), or the whole batch when its statement failed (a key used before
// or being inserted, the database), is not Applied, and its caller runs it alone, outside
// the batches, where it waits on what it must as it would without them. A batch of one
// call runs under that call's own context. The batch's time in the database is what makes
// the calls behind it queue and share the next batch.
func (e *Engine) consumeCalls(ctx context.Context, items []consumeItem) []store.ConsumeOutcome {
	out := make([]store.ConsumeOutcome, len(items))
	if len(items) == 1 {
		ctx = items[0].ctx
	}
	taken := make([]int, 0, len(items)) // indexes of the calls the statement runs
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if it.ctx.Err() == nil && !seen[it.call.SubscriptionID] {
			seen[it.call.SubscriptionID] = true
			taken = append(taken, i)
		}
	}
	if len(taken) == 0 {
		return out
	}
	batch := make([]store.ConsumeCall, len(taken))
	for j, i := range taken {
		batch[j] = items[i].call
	}
	res, err := e.consumeCommon.ConsumeBatch(ctx, e.pool, batch, e.clock.Now())
	if err != nil {
		level := slog.LevelWarn
		if store.IsUniqueViolation(err, "billing_usage_events_pkey") || store.IsLockTimeout(err) || ctx.Err() != nil {
			level = slog.LevelDebug // a key used before or being inserted: each call runs alone and is answered there
		}
		e.logger.Log(ctx, level, "billing: a Consume batch ran its calls one at a time", "calls", len(batch), "error", err.Error())
		return out
	}
	for j, i := range taken {
		out[i] = res[j]
	}
	return out
}
