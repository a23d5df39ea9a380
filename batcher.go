package billing

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// batchTimeout bounds one batch's transaction. A batch does not run under any one caller's
// context (it runs for all of them), so it gets its own deadline.
const batchTimeout = 30 * time.Second

// batcher runs calls that arrive at the same time together (group commit): a caller that
// finds fewer than batchesAtOnce batches running leads one: it runs its own call and the calls
// waiting (at most max in all) as one batch, hands each its result and, when more calls
// arrived meanwhile, makes the first of them lead the next batch. So batches form from the
// calls made at once (the renewal jobs River runs, the Consume calls of the host's
// requests), with no timer: a call alone runs at once, alone; under load a batch takes what
// arrived while the ones before ran. A batcher's run must keep the batches running at once
// from deadlocking each other: the renewal batches lock their subscriptions in id order,
// the Consume batches skip locked rows.
type batcher[T, R any] struct {
	max    int
	run    func(ctx context.Context, items []T) []R
	fail   func(err error) R // the result of every call of a batch whose run panicked, or of a call that gave up queued
	atOnce int               // batches that run at the same time; 0: batchesAtOnce (tests set 1 to make batches form)

	mu      sync.Mutex
	queue   []*batchCall[T, R]
	running int // batches running
	largest int // the most calls one batch ran (tests read it: export_test.go)
	batches int // batches run so far, and the calls they ran (the benchmarks report the mean)
	calls   int
}

// batchesAtOnce is how many batches of one step run at the same time: while one waits on a
// round trip, another keeps PostgreSQL busy.
const batchesAtOnce = 4

type batchCall[T, R any] struct {
	item T
	res  R
	lead bool          // set when this call must lead the next batch
	wake chan struct{} // receives once: the result is in, or lead is set
}

// do runs item in a batch and returns its result. The batch runs under a context of its
// own (batchTimeout), with ctx's values: a caller whose context ends while it is queued
// leaves the queue at once with fail(ctx.Err()); one whose context ends after its batch
// formed waits for that batch, which is bounded.
func (b *batcher[T, R]) do(ctx context.Context, item T) R {
	c := &batchCall[T, R]{item: item, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	lead := b.running < cmp.Or(b.atOnce, batchesAtOnce)
	if lead {
		b.running++
		c.lead = true
	} else {
		b.queue = append(b.queue, c)
	}
	b.mu.Unlock()
	if !lead {
		select {
		case <-c.wake:
		case <-ctx.Done():
			// A caller that gives up while still queued leaves the queue and fails with its
			// context's error; one already taken into a batch (or made the next leader) waits
			// for its wake, which is sent, and goes on as if it had not given up.
			b.mu.Lock()
			if i := slices.Index(b.queue, c); i >= 0 {
				b.queue = slices.Delete(b.queue, i, i+1)
				b.mu.Unlock()
				return b.fail(ctx.Err())
			}
			b.mu.Unlock()
			<-c.wake
		}
		// After the receive, c.lead and c.res are written and no one writes them again.
		if !c.lead {
			return c.res
		}
	}
	// Lead one batch: the caller's own call (out of the queue by now) and the first waiting.
	b.mu.Lock()
	n := min(len(b.queue), max(b.max, 1)-1)
	calls := append([]*batchCall[T, R]{c}, b.queue[:n]...)
	b.queue = b.queue[n:]
	b.noteLocked(len(calls))
	b.mu.Unlock()
	items := make([]T, len(calls))
	for i, k := range calls {
		items[i] = k.item
	}
	res := b.runSafely(ctx, items)
	for i, k := range calls {
		k.res = res[i]
		if k != c {
			k.wake <- struct{}{}
		}
	}
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running--
	} else { // the first waiting call leads the next batch in this one's place
		next := b.queue[0]
		b.queue = b.queue[1:]
		next.lead = true
		next.wake <- struct{}{}
	}
	b.mu.Unlock()
	return c.res
}

// ran notes a batch of n calls run past the batcher (renewClaimed runs a claimed chunk's
// batches itself) in its counts.
func (b *batcher[T, R]) ran(n int) {
	b.mu.Lock()
	b.noteLocked(n)
	b.mu.Unlock()
}

// noteLocked counts a batch of n calls; b.mu is held.
func (b *batcher[T, R]) noteLocked(n int) {
	b.largest = max(b.largest, n)
	b.batches++
	b.calls += n
}

// runSafely runs one batch under its own context; a panic in it becomes every call's
// result (fail), so that the batcher's bookkeeping and the waiting calls go on: a bug in one
// batch fails its calls (a renewal's job, which River retries; a Consume, which runs alone),
// and never wedges the others.
func (b *batcher[T, R]) runSafely(ctx context.Context, items []T) (res []R) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("billing: a batch panicked: %v", p)
			res = make([]R, len(items))
			for i := range res {
				res[i] = b.fail(err)
			}
		}
	}()
	return b.run(bctx, items)
}
