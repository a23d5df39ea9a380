package billing_test

// Regression tests from an adversarial review of Consume in batches (usage_batch.go,
// batcher.go, internal/store/usage_batch.go). Two failed before their fix: a batch of one
// ran the single statement and waited on a held row, so a few calls on one busy
// subscription held every batch slot and calls on other subscriptions queued behind them,
// past their own deadlines (TestConsumeBatchHeadOfLineBlocking); and a batch waiting on a
// key a host transaction was inserting, while holding another subscription's row, got that
// host transaction aborted by PostgreSQL's deadlock check
// (TestConsumeBatchDeadlocksAHostTransaction). The others passed and stay as checks. Each
// runs with batches on (the default) and, as a control, with Config.ConsumeBatchSize = 1.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// batchModes are the two configurations every probe runs in.
var batchModes = []struct {
	name string
	size int
}{{"batches", 0}, {"batches-off", 1}}

// publishMeters publishes tariff code with a hard limit of quantity on each meter.
func publishMeters(t *testing.T, b *testBundle, code string, quantity int64, meters ...string) {
	t.Helper()
	limits := make([]tariff.Limit, len(meters))
	for i, m := range meters {
		limits[i] = tariff.Limit{Meter: m, Quantity: quantity}
	}
	_, err := b.engine.Tariffs().Publish(context.Background(), "ops", tariff.Spec{
		Code: code, Name: code, Price: decimal.RequireFromString("990"),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: limits,
	})
	require.NoError(t, err)
}

// lockWaiters counts the backends of the test's database waiting on a heavyweight lock.
func lockWaiters(t *testing.T, b *testBundle) int {
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&n))
	return n
}

// warnLog records the engine's Warn (and worse) log lines.
type warnLog struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value); return true })
	w.mu.Lock()
	w.lines = append(w.lines, sb.String())
	w.mu.Unlock()
	return nil
}
func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }
func (w *warnLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// TestConsumeBatchHeadOfLineBlocking: a host transaction holds subscription a's usage row
// (ConsumeTx, as the README allows: "other calls for the subscription's meter wait for the
// host's commit"), and four pool Consume calls on a's meter, all sent through the batches
// (NoConsumeAlone), wait for it: the batches skip the held row and the calls wait alone. A
// Consume on an unrelated subscription, with a 1 s deadline, must not wait for a's host
// transaction: it counts at once, as with batches off. (Before the fix each call led a
// batch of one that waited on the row, the four held all batch slots, and the next call
// queued behind them without regard to its deadline.)
func TestConsumeBatchHeadOfLineBlocking(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupWith(t, func(c *billing.Config) { c.ConsumeBatchSize = mode.size })
			b.publish(t, "pro", "990", "generations", 1000)
			a, other := b.activeSubscription(t, "a", "pro").ID, b.activeSubscription(t, "b", "pro").ID

			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			_, err = b.engine.ConsumeTx(ctx, tx, a, "generations", 1, "host")
			require.NoError(t, err)

			billing.NoConsumeAlone(b.engine) // each call goes to the batches
			const stuck = 4                  // batchesAtOnce
			var wg sync.WaitGroup
			for i := range stuck {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := b.engine.Consume(ctx, a, "generations", 1, fmt.Sprintf("a%d", i))
					if err != nil {
						t.Errorf("Consume a%d: %v", i, err)
					}
				}()
				require.Eventually(t, func() bool { return lockWaiters(t, b) == i+1 }, 10*time.Second, time.Millisecond)
			}

			done := make(chan error, 1)
			start := time.Now()
			go func() {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, err := b.engine.Consume(cctx, other, "generations", 1, "b1")
				done <- err
			}()
			returned := false
			select {
			case err := <-done:
				returned = true
				require.NoError(t, err, "a call on another subscription counts at once")
			case <-time.After(4 * time.Second):
				t.Errorf("a Consume on an unrelated subscription, with a 1 s deadline, still waits after %v "+
					"for another subscription's host transaction (queued behind %d batches waiting on a's row)",
					time.Since(start).Round(time.Millisecond), stuck)
			}
			require.NoError(t, tx.Rollback(ctx))
			wg.Wait()
			if !returned {
				select {
				case err := <-done:
					t.Logf("once the host rolled back, after %v, the queued call returned: %v", time.Since(start).Round(time.Millisecond), err)
				case <-time.After(5 * time.Second):
					t.Fatal("the queued call never returned")
				}
			}
		})
	}
}

// TestConsumeBatchDeadlocksAHostTransaction: a host transaction counts meter m1 of
// subscription a under key K (ConsumeTx, not committed yet). Meanwhile two pool calls share
// a batch: a's meter m2 under the same K (an idempotency conflict: it must wait for the host
// and then answer ErrIdempotencyConflict) and an unrelated subscription c. The batch locks
// both rows (none is held) and its INSERT of (a, K) waits on the host's uncommitted key while
// it holds c's row; the host then counts c in the same transaction, past deadlock_timeout.
// The host's transaction must commit: the batch gives up its wait after its lock_timeout
// (store.consumeBatchLockWait), both calls run alone, c's counts and a's waits for the host
// without holding anything. (Before the fix the batch waited on, and PostgreSQL aborted the
// host's transaction with 40P01.)
func TestConsumeBatchDeadlocksAHostTransaction(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupWith(t, func(c *billing.Config) { c.ConsumeBatchSize = mode.size })
			publishMeters(t, b, "pro", 1000, "m1", "m2")
			a := b.activeSubscription(t, "a", "pro").ID
			c := b.activeSubscription(t, "c", "pro").ID
			blocker := b.activeSubscription(t, "blocker", "pro").ID
			billing.OneConsumeBatchAtOnce(b.engine)

			host, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = host.Rollback(ctx) }()
			_, err = b.engine.ConsumeTx(ctx, host, a, "m1", 1, "K")
			require.NoError(t, err)

			// Make the next two calls share one batch: the blocker's call leads a batch of one,
			// held (HoldConsumeBatches) while they queue.
			release := billing.HoldConsumeBatches(b.engine)
			defer release()
			errBlocker := make(chan error, 1)
			go func() { _, err := b.engine.Consume(ctx, blocker, "m1", 1, "x"); errBlocker <- err }()
			time.Sleep(50 * time.Millisecond)

			errConflict, errC := make(chan error, 1), make(chan error, 1)
			go func() { _, err := b.engine.Consume(ctx, a, "m2", 1, "K"); errConflict <- err }()
			go func() { _, err := b.engine.Consume(ctx, c, "m1", 1, "Kc"); errC <- err }()
			if mode.size != 1 {
				require.Eventually(t, func() bool { return billing.QueuedConsumeCalls(b.engine) == 2 }, 10*time.Second, time.Millisecond)
			}
			release()
			require.NoError(t, <-errBlocker)
			// Wait until the conflicting call waits on the host's key, and past
			// deadlock_timeout (1 s), so that its deadlock check has run (and found nothing).
			require.Eventually(t, func() bool { return lockWaiters(t, b) >= 1 }, 10*time.Second, time.Millisecond)
			time.Sleep(1500 * time.Millisecond)

			_, err = b.engine.ConsumeTx(ctx, host, c, "m1", 1, "host-c")
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
				t.Errorf("the host's transaction was aborted by a deadlock with a Consume batch: %v", err)
			} else {
				require.NoError(t, err)
				require.NoError(t, host.Commit(ctx))
			}
			_ = host.Rollback(ctx)
			require.NoError(t, <-errC, "c's call counts")
			err = <-errConflict
			t.Logf("the conflicting call: %v", err)
		})
	}
}

// TestConsumeBatchSameSubscriptionSpelledTwice: uuid.Parse accepts a subscription ID
// in upper case, so two calls of one subscription can enter one batch as two different
// strings (the batch takes one call per subscription by string). With the same key, the
// answers must be those of the one-call path: one counted, the other Replayed with its
// result (same meter and quantity) or ErrIdempotencyConflict (other quantity or meter); the
// counter moves once; one usage event.
func TestConsumeBatchSameSubscriptionSpelledTwice(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupWith(t, func(c *billing.Config) { c.ConsumeBatchSize = mode.size })
			publishMeters(t, b, "pro", 1_000_000, "m1", "m2")
			a := b.activeSubscription(t, "a", "pro").ID
			blocker := b.activeSubscription(t, "blocker", "pro").ID
			billing.OneConsumeBatchAtOnce(b.engine)
			var expectUsed [2]int64
			for round := range 40 {
				key := fmt.Sprintf("k%d", round)
				kind := round % 3 // 0: same call twice; 1: other quantity; 2: other meter
				m2, q2 := "m1", int64(1)
				switch kind {
				case 1:
					q2 = 2
				case 2:
					m2 = "m2"
				}
				release := billing.HoldConsumeBatches(b.engine) // the blocker's batch waits while the two queue
				errBlocker := make(chan error, 1)
				go func() { _, err := b.engine.Consume(ctx, blocker, "m1", 1, key); errBlocker <- err }()
				time.Sleep(20 * time.Millisecond)
				type answer struct {
					res billing.ConsumeResult
					err error
				}
				ans := make([]chan answer, 2)
				for i := range ans {
					ans[i] = make(chan answer, 1)
				}
				go func() { r, err := b.engine.Consume(ctx, a, "m1", 1, key); ans[0] <- answer{r, err} }()
				go func() { r, err := b.engine.Consume(ctx, strings.ToUpper(a), m2, q2, key); ans[1] <- answer{r, err} }()
				if mode.size != 1 {
					require.Eventually(t, func() bool { return billing.QueuedConsumeCalls(b.engine) == 2 }, 10*time.Second, time.Millisecond)
				}
				release()
				require.NoError(t, <-errBlocker)
				x, y := <-ans[0], <-ans[1]
				var counted, replayed, conflicts int
				for _, r := range []answer{x, y} {
					switch {
					case errors.Is(r.err, billing.ErrIdempotencyConflict):
						conflicts++
					case r.err != nil:
						t.Fatalf("round %d: %v", round, r.err)
					case r.res.Replayed:
						replayed++
					default:
						counted++
					}
				}
				require.Equal(t, 1, counted, "round %d (kind %d): one call counts: %+v %+v", round, kind, x, y)
				if kind == 0 {
					require.Equal(t, 1, replayed, "round %d: the other replays", round)
					require.Equal(t, x.res.Used, y.res.Used, "round %d: a replay answers the first call", round)
				} else {
					require.Equal(t, 1, conflicts, "round %d (kind %d): the other is a conflict: %+v %+v", round, kind, x, y)
				}
				// What counted: x's call or y's.
				if x.err == nil && !x.res.Replayed {
					expectUsed[0]++
				} else if m2 == "m1" {
					expectUsed[0] += q2
				} else {
					expectUsed[1] += q2
				}
				got, err := b.engine.SubscriptionGet(ctx, a)
				require.NoError(t, err)
				require.Equal(t, expectUsed[0], got.Current.Usage["m1"].Used, "round %d", round)
				require.Equal(t, expectUsed[1], got.Current.Usage["m2"].Used, "round %d", round)
			}
			events := usageEvents(t, b, a)
			require.Equal(t, 40, events)
		})
	}
}

// TestConsumeBatchMixedStress runs batched Consume calls (fresh keys, replays and
// idempotency conflicts) on two hard-limited meters of a few subscriptions with usage
// thresholds, beside the commands that write the same usage rows: host transactions
// counting two meters with ConsumeTx (rows in one order), Reserve then
// ReservationCommit/ReservationRelease, Suspend/Resume. It checks, per subscription and
// meter: the counter is the sum of what the counted calls and commits moved, under the
// limit; no two counted calls got the same Used (a call answered with another's result);
// one usage event per counted call; exactly one threshold event per threshold reached;
// replays answer the first call; a call made wholly while suspended, or after a call of
// its subscription answered Exhausted, never counts; and no batch statement failed for a
// reason other than a replayed key (a CHECK violation would mean the batch's own limit
// test let a call through and only the table's CHECK stopped it).
func TestConsumeBatchMixedStress(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			probeMixedStress(t, mode.size)
		})
	}
}

func probeMixedStress(t *testing.T, batchSize int) {
	ctx := context.Background()
	logs := &warnLog{}
	b := setupWith(t, func(c *billing.Config) {
		c.ConsumeBatchSize = batchSize
		c.UsageThresholds = []int{25, 50, 75}
		c.Logger = slog.New(logs)
	})
	b.withRiverNotStarted(t) // Reserve inserts its expiry job
	const limit = 300
	meters := []string{"m1", "m2"}
	publishMeters(t, b, "pro", limit, meters...)
	const subs = 5
	ids := make([]string, subs)
	for i := range ids {
		ids[i] = b.activeSubscription(t, fmt.Sprintf("c%d", i), "pro").ID
	}
	type sm struct {
		sub   int
		meter string
	}
	type counted struct {
		key  string
		qty  int64
		used int64
	}
	var (
		mu        sync.Mutex
		moved     = map[sm]int64{}     // what counted calls and commits moved
		calls     = map[sm][]counted{} // counted Consume calls
		first     = map[string]billing.ConsumeResult{}
		firstReq  = map[string]sm{}
		firstQty  = map[string]int64{}
		stats     = map[string]int{}
		exhausted [subs]atomic.Bool
		epoch     [subs]atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	record := func(k sm, key string, qty int64, res billing.ConsumeResult) {
		mu.Lock()
		defer mu.Unlock()
		moved[k] += qty
		calls[k] = append(calls[k], counted{key, qty, res.Used})
		first[key], firstReq[key], firstQty[key] = res, k, qty
		if res.Exhausted {
			exhausted[k.sub].Store(true)
		}
	}
	stat := func(s string) { mu.Lock(); stats[s]++; mu.Unlock() }

	// Pool Consume calls.
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			var mine []string
			for i := 0; !stop.Load(); i++ {
				k := sm{rng.IntN(subs), meters[rng.IntN(2)]}
				qty := 1 + rng.Int64N(4)
				key := fmt.Sprintf("g%d-%d", g, i)
				kind := "fresh"
				if len(mine) > 0 {
					switch r := rng.IntN(20); {
					case r < 2:
						kind, key = "replay", mine[rng.IntN(len(mine))]
						mu.Lock()
						k, qty = firstReq[key], firstQty[key]
						mu.Unlock()
					case r < 3:
						kind, key = "conflict", mine[rng.IntN(len(mine))]
						mu.Lock()
						k, qty = firstReq[key], firstQty[key]+1
						mu.Unlock()
					case r < 4:
						kind, key = "conflict", mine[rng.IntN(len(mine))]
						mu.Lock()
						k, qty = firstReq[key], firstQty[key]
						mu.Unlock()
						k.meter = map[string]string{"m1": "m2", "m2": "m1"}[k.meter]
					}
				}
				wasExhausted, e1 := exhausted[k.sub].Load(), epoch[k.sub].Load()
				res, err := b.engine.Consume(ctx, ids[k.sub], k.meter, qty, key)
				e2 := epoch[k.sub].Load()
				switch {
				case kind == "conflict":
					if !errors.Is(err, billing.ErrIdempotencyConflict) {
						t.Errorf("%s: a key reused for another request: %v %+v", key, err, res)
					}
					stat("conflict")
					continue
				case err != nil:
					if !isRefusal(err) {
						t.Errorf("Consume %s (%s): %v", key, kind, err)
					}
					stat("refused")
					continue
				case kind == "replay":
					mu.Lock()
					want := first[key]
					mu.Unlock()
					if !res.Replayed || res.Used != want.Used || res.Period != want.Period {
						t.Errorf("%s: a replay answers the first call %+v, got %+v", key, want, res)
					}
					stat("replay")
					continue
				}
				if res.Replayed {
					t.Errorf("%s: a fresh key replayed", key)
					continue
				}
				if wasExhausted {
					t.Errorf("%s: counted on subscription %d after a call had used a limit up", key, k.sub)
				}
				if e1 == e2 && e1%2 == 1 {
					t.Errorf("%s: counted while subscription %d was suspended", key, k.sub)
				}
				record(k, key, qty, res)
				mine = append(mine, key)
				stat("counted")
			}
		}()
	}
	// Host transactions: two meters of one subscription, in meter order.
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for i := 0; !stop.Load(); i++ {
				s := rng.IntN(subs)
				tx, err := b.pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				type done struct {
					k   sm
					key string
					qty int64
					res billing.ConsumeResult
				}
				var ok []done
				failed := false
				for _, m := range meters {
					key, qty := fmt.Sprintf("h%d-%d-%s", g, i, m), 1+rng.Int64N(3)
					e1 := epoch[s].Load()
					res, err := b.engine.ConsumeTx(ctx, tx, ids[s], m, qty, key)
					if err != nil {
						var pgErr *pgconn.PgError
						if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
							stat("host-deadlock")
							failed = true
							break
						}
						if !isRefusal(err) {
							t.Errorf("ConsumeTx %s: %v", key, err)
						}
						continue
					}
					_ = e1
					ok = append(ok, done{sm{s, m}, key, qty, res})
				}
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				if failed || rng.IntN(4) == 0 {
					_ = tx.Rollback(ctx)
					continue
				}
				if err := tx.Commit(ctx); err != nil {
					t.Errorf("host commit: %v", err)
					continue
				}
				for _, d := range ok {
					record(d.k, d.key, d.qty, d.res)
					stat("host-counted")
				}
			}
		}()
	}
	// Reservations.
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 13))
			for i := 0; !stop.Load(); i++ {
				k := sm{rng.IntN(subs), meters[rng.IntN(2)]}
				r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: ids[k.sub], Meter: k.meter,
					Quantity: 1 + rng.Int64N(6), IdempotencyKey: fmt.Sprintf("r%d-%d", g, i)})
				if err != nil {
					if !isRefusal(err) {
						t.Errorf("Reserve: %v", err)
					}
					continue
				}
				time.Sleep(time.Duration(rng.IntN(2)) * time.Millisecond)
				if rng.IntN(3) == 0 {
					if _, err := b.engine.ReservationRelease(ctx, r.ID); err != nil {
						t.Errorf("Release: %v", err)
					}
					continue
				}
				actual := rng.Int64N(r.Quantity + 1)
				if _, err := b.engine.ReservationCommit(ctx, r.ID, actual); err != nil {
					t.Errorf("Commit: %v", err)
					continue
				}
				mu.Lock()
				moved[k] += actual
				mu.Unlock()
				stat("committed")
			}
		}()
	}
	// Suspend / Resume.
	by := subscription.AdminAction{Actor: "admin:1", Reason: "probe"}
	for round := range 40 {
		s := round % subs
		if _, err := b.engine.Suspend(ctx, ids[s], by); err != nil {
			stat("suspend-refused")
			continue
		}
		epoch[s].Add(1)
		time.Sleep(8 * time.Millisecond)
		epoch[s].Add(1)
		_, err := b.engine.Resume(ctx, ids[s], by)
		require.NoError(t, err)
		time.Sleep(4 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("stats: %v; largest batch %d", stats, billing.LargestConsumeBatch(b.engine))
	if batchSize != 1 {
		require.Greater(t, billing.LargestConsumeBatch(b.engine), 1, "calls shared a batch")
	}

	for s, id := range ids {
		got, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		var nCalls int
		for _, m := range meters {
			k := sm{s, m}
			u := got.Current.Usage[m]
			require.Equal(t, moved[k], u.Used, "%d/%s: the counter is what the counted calls and commits moved", s, m)
			require.LessOrEqual(t, u.Used, int64(limit))
			seen := map[int64]string{}
			for _, c := range calls[k] {
				if other, dup := seen[c.used]; dup {
					t.Errorf("%d/%s: calls %s and %s both answered Used %d", s, m, other, c.key, c.used)
				}
				seen[c.used] = c.key
			}
			nCalls += len(calls[k])
			thresholds := thresholdEvents(t, b, id, m)
			var want []int
			for _, pct := range []int{25, 50, 75} {
				if u.Used*100 >= int64(pct)*limit {
					want = append(want, pct)
				}
			}
			require.Equal(t, want, thresholds, "%d/%s (used %d): one event per threshold reached", s, m, u.Used)
		}
		events := usageEvents(t, b, id)
		require.Equal(t, nCalls, events, "%d: one usage event per counted call", s)
		stale, err := store.StaleOpenUntil(ctx, b.pool)
		require.NoError(t, err)
		require.Empty(t, stale)
	}
	for _, l := range logs.all() {
		if strings.Contains(l, "Consume batch") {
			t.Errorf("a batch failed: %s", l)
		} else {
			t.Logf("warn: %s", l)
		}
	}
}

// TestConsumeBatchHotRowsSerialOrder: batched pool calls and short host transactions
// (ConsumeTx, committed at once) count the same hot rows, with a usage threshold every 10%
// and a small hard limit, so that a batch often locks a row version newer than its
// statement's snapshot (EvalPlanQual of the lock CTE and of the UPDATE). Per subscription,
// the counted calls of both paths must form one serial order (sorted by Used, each Used is
// the one before plus its own quantity), the counter is their sum, each threshold reached
// has exactly one event, a used-up limit leaves the subscription exhausted, and no batch
// statement failed (the table's CHECK would hide a limit test the batch got wrong).
func TestConsumeBatchHotRowsSerialOrder(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			logs := &warnLog{}
			pcts := []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
			b := setupWith(t, func(c *billing.Config) {
				c.ConsumeBatchSize = mode.size
				c.UsageThresholds = pcts
				c.Logger = slog.New(logs)
			})
			const limit = 150
			b.publish(t, "pro", "990", "g", limit)
			const subs = 6
			ids := make([]string, subs)
			for i := range ids {
				ids[i] = b.activeSubscription(t, fmt.Sprintf("c%d", i), "pro").ID
			}
			type call struct {
				key  string
				qty  int64
				used int64
				ex   bool
			}
			var mu sync.Mutex
			bySub := map[string][]call{}
			var stop atomic.Bool
			var wg sync.WaitGroup
			worker := func(g int, host bool) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 3))
				for i := 0; !stop.Load(); i++ {
					id, qty, key := ids[rng.IntN(subs)], 1+rng.Int64N(4), fmt.Sprintf("g%d-%d", g, i)
					var res billing.ConsumeResult
					var err error
					if host {
						tx, berr := b.pool.Begin(ctx)
						require.NoError(t, berr)
						res, err = b.engine.ConsumeTx(ctx, tx, id, "g", qty, key)
						if err == nil {
							err = tx.Commit(ctx)
						} else {
							_ = tx.Rollback(ctx)
						}
					} else {
						res, err = b.engine.Consume(ctx, id, "g", qty, key)
					}
					if err != nil {
						if !isRefusal(err) {
							t.Errorf("%s: %v", key, err)
						}
						continue
					}
					mu.Lock()
					bySub[id] = append(bySub[id], call{key, qty, res.Used, res.Exhausted})
					mu.Unlock()
				}
			}
			for g := range 24 {
				wg.Add(1)
				go worker(g, false)
			}
			for g := range 4 {
				wg.Add(1)
				go worker(100+g, true)
			}
			time.Sleep(3 * time.Second)
			stop.Store(true)
			wg.Wait()
			t.Logf("largest batch %d", billing.LargestConsumeBatch(b.engine))
			for _, id := range ids {
				cs := bySub[id]
				slices.SortFunc(cs, func(a, b call) int { return int(a.used - b.used) })
				var used int64
				for j, c := range cs {
					used += c.qty
					require.Equal(t, used, c.used, "%s: call %s is the calls before it plus its own", id, c.key)
					require.Equal(t, c.used == limit, c.ex, "%s: call %s: Exhausted iff it used the limit up", id, c.key)
					require.True(t, j == len(cs)-1 || !c.ex, "nothing counts after the exhausting call")
				}
				got, err := b.engine.SubscriptionGet(ctx, id)
				require.NoError(t, err)
				require.Equal(t, used, got.Current.Usage["g"].Used)
				thresholds := thresholdEvents(t, b, id, "")
				var want []int
				for _, pct := range pcts {
					if used*100 >= int64(pct)*limit {
						want = append(want, pct)
					}
				}
				require.Equal(t, want, thresholds, "%s (used %d): one event per threshold", id, used)
				events := usageEvents(t, b, id)
				require.Equal(t, len(cs), events)
			}
			for _, l := range logs.all() {
				if strings.Contains(l, "Consume batch") {
					t.Errorf("a batch failed: %s", l)
				}
			}
		})
	}
}

// TestConsumeBatchVsTerminate: batched calls run from many goroutines while the
// subscriptions are terminated one by one; once Terminate has returned, a call made after
// it never counts and the counter never moves again; every counted call has its event.
func TestConsumeBatchVsTerminate(t *testing.T) {
	t.Parallel()
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupWith(t, func(c *billing.Config) { c.ConsumeBatchSize = mode.size; c.UsageThresholds = []int{} })
			b.publish(t, "pro", "990", "g", 1_000_000)
			const subs = 8
			ids := make([]string, subs)
			for i := range ids {
				ids[i] = b.activeSubscription(t, fmt.Sprintf("c%d", i), "pro").ID
			}
			var ended [subs]atomic.Bool
			var stop atomic.Bool
			var mu sync.Mutex
			counted, calls := map[string]int64{}, map[string]int{}
			var wg sync.WaitGroup
			for g := range 24 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 17))
					for i := 0; !stop.Load(); i++ {
						k, qty := rng.IntN(subs), 1+rng.Int64N(3)
						was := ended[k].Load()
						_, err := b.engine.Consume(ctx, ids[k], "g", qty, fmt.Sprintf("g%d-%d", g, i))
						if err != nil {
							if !isRefusal(err) {
								t.Errorf("Consume: %v", err)
							}
							continue
						}
						if was {
							t.Errorf("a call made after Terminate returned counted on %d", k)
						}
						mu.Lock()
						counted[ids[k]] += qty
						calls[ids[k]]++
						mu.Unlock()
					}
				}()
			}
			by := subscription.AdminAction{Actor: "admin:1", Reason: "probe"}
			frozen := map[string]int64{}
			for k, id := range ids {
				time.Sleep(40 * time.Millisecond)
				_, err := b.engine.Terminate(ctx, id, by)
				require.NoError(t, err)
				ended[k].Store(true)
				got, err := b.engine.SubscriptionGet(ctx, id)
				require.NoError(t, err)
				frozen[id] = got.Current.Usage["g"].Used
			}
			time.Sleep(50 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			if mode.size != 1 {
				require.Greater(t, billing.LargestConsumeBatch(b.engine), 1, "calls shared a batch")
			}
			for _, id := range ids {
				got, err := b.engine.SubscriptionGet(ctx, id)
				require.NoError(t, err)
				require.Equal(t, frozen[id], got.Current.Usage["g"].Used, "nothing counts after Terminate")
				require.Equal(t, counted[id], got.Current.Usage["g"].Used)
				events := usageEvents(t, b, id)
				require.Equal(t, calls[id], events)
			}
		})
	}
}
