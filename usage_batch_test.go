package billing_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
)

// TestConsumeBatches drives Consume calls through the engine's batches (usage_batch.go)
// from many goroutines at once, over a few subscriptions, until their limits are used up,
// with replayed keys and usage thresholds, and checks every result against the rules of a
// Consume made alone:
//   - 3.1 a hard limit is never passed, and the subscription ends exhausted when its limit
//     is used up;
//   - each subscription's counted calls have a serial order in which each call's Used is
//     the one before plus its own quantity (no call counted twice, lost, or answered with
//     another's result), and the counter equals their sum;
//   - a replay answers what the first call answered, and counts nothing;
//   - every counted call has its usage event, nothing else has one;
//   - each threshold makes exactly one event per subscription.
//
// It also checks that batches formed (a batch of more than one call), so the rules above
// were checked on the batched path.
func TestConsumeBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWith(t, func(c *billing.Config) { c.UsageThresholds = []int{50, 80} })
	const limit = 400
	b.publish(t, "pro", "990", "generations", limit)
	const subs = 12
	ids := make([]string, subs)
	for i := range ids {
		ids[i] = b.activeSubscription(t, fmt.Sprintf("c%d", i), "pro").ID
	}

	type call struct {
		sub, key string
		qty      int64
		res      billing.ConsumeResult
	}
	var mu sync.Mutex
	var counted, replays []call
	const goroutines, calls = 48, 60
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var mine []call // this goroutine's counted calls, for replays
			for i := range calls {
				c := call{sub: ids[rng.IntN(subs)], key: fmt.Sprintf("g%d-%d", g, i), qty: 1 + rng.Int64N(3)}
				replay := len(mine) > 0 && rng.IntN(10) == 0
				if replay {
					c = mine[rng.IntN(len(mine))]
				}
				res, err := b.engine.Consume(ctx, c.sub, "generations", c.qty, c.key)
				if err != nil {
					if !isRefusal(err) {
						t.Errorf("Consume %s: %v", c.key, err)
					}
					continue
				}
				mu.Lock()
				if replay {
					if !res.Replayed {
						t.Errorf("%s: a key used before is a replay", c.key)
					}
					replays = append(replays, call{sub: c.sub, key: c.key, qty: c.qty, res: res})
				} else {
					if res.Replayed {
						t.Errorf("%s: a fresh key replayed", c.key)
					}
					c.res = res
					counted = append(counted, c)
					mine = append(mine, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Greater(t, billing.LargestConsumeBatch(b.engine), 1, "calls shared a batch")

	first := map[string]billing.ConsumeResult{}
	bySub := map[string][]call{}
	for _, c := range counted {
		first[c.key] = c.res
		bySub[c.sub] = append(bySub[c.sub], c)
	}
	for _, r := range replays {
		want := first[r.key]
		require.Equal(t, want.Used, r.res.Used, "a replay of %s answers the first call", r.key)
		require.Equal(t, want.Period, r.res.Period)
	}
	for _, id := range ids {
		cs := bySub[id]
		slices.SortFunc(cs, func(a, b call) int { return int(a.res.Used - b.res.Used) })
		var used int64
		for _, c := range cs {
			used += c.qty
			require.Equal(t, used, c.res.Used, "subscription %s: call %s's Used is the calls before it plus its own", id, c.key)
			require.Equal(t, int64(limit), c.res.Limit)
		}
		require.LessOrEqual(t, used, int64(limit), "3.1 the limit is never passed")
		got, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		require.Equal(t, used, got.Current.Usage["generations"].Used, "the counter is the sum of the counted calls")
		if used == limit {
			require.Equal(t, subscription.StatusExhausted, got.Status, "3.1 used up: exhausted")
		}
		events := usageEvents(t, b, id)
		require.Equal(t, len(cs), events, "one usage event per counted call")
		thresholds := thresholdEvents(t, b, id, "")
		var want []int
		for _, pct := range []int{50, 80} {
			if used*100 >= int64(pct)*limit {
				want = append(want, pct)
			}
		}
		require.Equal(t, want, thresholds, "subscription %s (used %d): one event per threshold reached", id, used)
	}
}

// TestRaceConsumeBatchesVsAccessChanges runs batched Consume calls from many goroutines
// while an operator suspends and resumes the subscriptions, and then after their periods
// ended: a call made wholly while its subscription was suspended (after Suspend returned,
// before Resume was called) never counts, and once Suspend has returned the counter does
// not move until Resume (the batch re-checks access on the row version it locked, and skips
// a row a suspension holds); a call made after the period ended never counts; every counted
// call is in the counter and has its usage event.
func TestRaceConsumeBatchesVsAccessChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWith(t, func(c *billing.Config) { c.UsageThresholds = []int{} }) // every call is the common case
	b.publish(t, "pro", "990", "generations", 1_000_000)
	const subs = 6
	ids := make([]string, subs)
	for i := range ids {
		ids[i] = b.activeSubscription(t, fmt.Sprintf("c%d", i), "pro").ID
	}
	used := func(id string) int64 {
		got, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		return got.Current.Usage["generations"].Used
	}

	var stop, periodOver atomic.Bool
	var epoch [subs]atomic.Int64 // odd while subscription i is suspended
	var mu sync.Mutex
	counted := map[string]int64{}
	calls := map[string]int{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			for i := 0; !stop.Load(); i++ {
				k, qty := rng.IntN(subs), 1+rng.Int64N(3)
				over, e1 := periodOver.Load(), epoch[k].Load()
				_, err := b.engine.Consume(ctx, ids[k], "generations", qty, fmt.Sprintf("g%d-%d", g, i))
				e2 := epoch[k].Load()
				if err != nil {
					if !isRefusal(err) {
						t.Errorf("Consume: %v", err)
					}
					continue
				}
				if e1 == e2 && e1%2 == 1 {
					t.Errorf("a call made while subscription %d was suspended counted", k)
				}
				if over {
					t.Errorf("3.1 a call made after the period ended counted")
				}
				mu.Lock()
				counted[ids[k]] += qty
				calls[ids[k]]++
				mu.Unlock()
			}
		}()
	}

	by := subscription.AdminAction{Actor: "admin:1", Reason: "race test"}
	for round := range 6 * raceRounds(t, 5) { // make soak: 240 suspensions
		k := round % subs
		_, err := b.engine.Suspend(ctx, ids[k], by)
		require.NoError(t, err)
		epoch[k].Add(1)
		frozen := used(ids[k])
		time.Sleep(15 * time.Millisecond)
		require.Equal(t, frozen, used(ids[k]), "round %d: nothing counts on a suspended subscription", round)
		epoch[k].Add(1)
		_, err = b.engine.Resume(ctx, ids[k], by)
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond)
	}
	b.clock.Advance(32 * 24 * time.Hour) // the periods end
	periodOver.Store(true)
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	require.Greater(t, billing.LargestConsumeBatch(b.engine), 1, "calls shared a batch")
	for _, id := range ids {
		require.Equal(t, counted[id], used(id), "the counter is the sum of the counted calls")
		events := usageEvents(t, b, id)
		require.Equal(t, calls[id], events, "one usage event per counted call")
	}
}

// TestConsumeBatchLeavesOutACanceledCall: a call whose context ends while it waits for a
// batch leaves the queue at once (it does not wait for the batches before it) and fails
// with its context's error, nothing written; the call queued beside it is counted.
func TestConsumeBatchLeavesOutACanceledCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "generations", 1000)
	a, bb, c := b.activeSubscription(t, "a", "pro").ID, b.activeSubscription(t, "b", "pro").ID, b.activeSubscription(t, "c", "pro").ID
	billing.OneConsumeBatchAtOnce(b.engine)
	release := billing.HoldConsumeBatches(b.engine) // a's batch waits until release
	defer release()

	errA := make(chan error, 1)
	go func() { _, err := b.engine.Consume(ctx, a, "generations", 1, "ka"); errA <- err }()
	time.Sleep(50 * time.Millisecond) // a leads the only batch, held
	ctxB, cancelB := context.WithCancel(ctx)
	errB, errC := make(chan error, 1), make(chan error, 1)
	go func() { _, err := b.engine.Consume(ctxB, bb, "generations", 1, "kb"); errB <- err }()
	go func() { _, err := b.engine.Consume(ctx, c, "generations", 1, "kc"); errC <- err }()
	require.Eventually(t, func() bool { return billing.QueuedConsumeCalls(b.engine) == 2 }, 10*time.Second, time.Millisecond)
	cancelB()
	select {
	case err := <-errB:
		require.ErrorIs(t, err, context.Canceled, "b's context ended while it waited")
	case <-time.After(5 * time.Second):
		t.Fatal("b's call waited for the held batch after its context ended")
	}
	require.Equal(t, 1, billing.QueuedConsumeCalls(b.engine), "b left the queue")
	release()

	require.NoError(t, <-errA)
	require.NoError(t, <-errC)
	events := usageEvents(t, b, bb)
	require.Zero(t, events, "b's call wrote nothing")
	got, err := b.engine.SubscriptionGet(ctx, bb)
	require.NoError(t, err)
	require.Zero(t, got.Current.Usage["generations"].Used)
	for _, id := range []string{a, c} {
		got, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Current.Usage["generations"].Used)
	}
}

// usageEvents returns how many usage events (Consume's idempotency records) subscription id has.
func usageEvents(t *testing.T, b *testBundle, id string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM billing_usage_events WHERE subscription_id = $1`, id).Scan(&n))
	return n
}

// thresholdEvents returns the percentages of subscription id's usage threshold events (of
// meter, unless it is empty), from the lowest; nil when there are none.
func thresholdEvents(t *testing.T, b *testBundle, id, meter string) []int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT (data->>'threshold')::int FROM billing_events
		WHERE subscription_id = $1 AND kind = 'usage_threshold' AND ($2 = '' OR data->>'meter' = $2) ORDER BY 1`, id, meter)
	require.NoError(t, err)
	pcts, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	if len(pcts) == 0 {
		return nil
	}
	return pcts
}
