package billing_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/tariff"
)

// The shape of issue 5's benchmark: 32 concurrent clients over 10 000 subscriptions.
const (
	benchClients       = 32
	benchSubscriptions = 10_000
)

// BenchmarkConsume measures engine.Consume, the real command (input checks, one
// statement, result), with benchClients clients each counting 1 token in a random one
// of benchSubscriptions active subscriptions under a fresh idempotency key. Compare its
// ops/s with BenchmarkBareCounterUpdate's in the same run (BENCHMARKS.md).
func BenchmarkConsume(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	runClients(b, func(rng *rand.Rand, i int64) error {
		_, err := f.engine.Consume(ctx, f.ids[rng.IntN(len(f.ids))], "tokens", 1, "k"+strconv.FormatInt(i, 10))
		return err
	})
}

// BenchmarkConsumeAlone measures one client's Consume, call after call (ns/op is a call's
// latency), with batches on (the default: each call is a batch of one) and off
// (Config.ConsumeBatchSize 1: the single common-case statement), on the same fixture: what
// batching costs a call that has no one to share its batch with.
func BenchmarkConsumeAlone(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	for _, side := range []struct {
		name   string
		engine *billing.Engine
	}{{"batches", f.engine}, {"batches-off", f.unbatched}} {
		b.Run(side.name, func(b *testing.B) {
			for i := range b.N {
				if _, err := side.engine.Consume(ctx, f.ids[i%len(f.ids)], "tokens", 1, side.name+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConsumeVsBareCounter is issue 5's comparison, made to hold on a machine whose
// speed drifts (shared cores): on one fixture it runs b.N rounds, each a slice of
// benchSlice of engine.Consume (Consume's batches on, the default), one of
// store.BareCounterUpdate and one of Consume with batches off (Config.ConsumeBatchSize 1)
// back to back, the order rotated every round, with benchClients clients as in
// BenchmarkConsume. It reports the ops/s of each over all its slices and the median and
// lowest of the per-round ratios Consume ÷ bare, and the median of unbatched Consume ÷ bare.
// Run it with -benchtime Nx for N rounds (BENCHMARKS.md).
func BenchmarkConsumeVsBareCounter(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	var key atomic.Int64
	consumeWith := func(e *billing.Engine) func(rng *rand.Rand) error {
		return func(rng *rand.Rand) error {
			_, err := e.Consume(ctx, f.ids[rng.IntN(len(f.ids))], "tokens", 1, "v"+strconv.FormatInt(key.Add(1), 10))
			return err
		}
	}
	bare := func(rng *rand.Rand) error {
		ok, err := store.BareCounterUpdate(ctx, f.pool, f.ids[rng.IntN(len(f.ids))], "tokens", 1)
		if err == nil && !ok {
			err = errors.New("the bare update counted nothing")
		}
		return err
	}
	sides := []func(rng *rand.Rand) error{consumeWith(f.engine), bare, consumeWith(f.unbatched)}
	var ops [3]int64
	var took [3]time.Duration
	ratios := make([]float64, 0, b.N)
	unbatchedRatios := make([]float64, 0, b.N)
	b.ResetTimer()
	for round := range b.N {
		var n [3]int64
		var d [3]time.Duration
		for k := range sides {
			side := (round + k) % len(sides)
			n[side], d[side] = runSlice(b, sides[side])
			ops[side], took[side] = ops[side]+n[side], took[side]+d[side]
		}
		rate := func(side int) float64 { return float64(n[side]) / d[side].Seconds() }
		ratios = append(ratios, rate(0)/rate(1))
		unbatchedRatios = append(unbatchedRatios, rate(2)/rate(1))
	}
	b.StopTimer()
	slices.Sort(ratios)
	slices.Sort(unbatchedRatios)
	b.ReportMetric(float64(ops[0])/took[0].Seconds(), "consume-ops/s")
	b.ReportMetric(float64(ops[1])/took[1].Seconds(), "bare-ops/s")
	b.ReportMetric(float64(ops[2])/took[2].Seconds(), "unbatched-ops/s")
	b.ReportMetric(ratios[len(ratios)/2], "ratio-median")
	b.ReportMetric(ratios[0], "ratio-min")
	b.ReportMetric(unbatchedRatios[len(unbatchedRatios)/2], "unbatched-ratio-median")
}

// benchSlice is how long BenchmarkConsumeVsBareCounter runs one side of a round.
const benchSlice = 2 * time.Second

// runSlice runs op from benchClients goroutines until benchSlice has passed and returns
// how many calls ended and in how long (from the start until the last call returned).
func runSlice(b *testing.B, op func(rng *rand.Rand) error) (int64, time.Duration) {
	b.Helper()
	var done atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(benchSlice)
	for c := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for failed.Load() == nil && time.Now().Before(stop) {
				if err := op(rng); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return done.Load(), elapsed
}

// BenchmarkConsumeFullStatement runs store.Consume, the full statement (with the key
// lookup and the exhaustion writes) that Consume ran for every call before it got its
// common-case statement, store.ConsumeUnlessExhausting; it now decides only the rare
// calls (the one that uses a limit up, replays, refusals). It is here to show what the
// common-case statement saves, in the same run.
func BenchmarkConsumeFullStatement(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	now := f.engine.Now()
	auditIDs := make([]string, benchClients)
	for i := range auditIDs {
		auditIDs[i] = uuid.Must(uuid.NewV7()).String()
	}
	runClients(b, func(rng *rand.Rand, i int64) error {
		o, err := store.Consume(ctx, f.pool, f.ids[rng.IntN(len(f.ids))], "k"+strconv.FormatInt(i, 10), "tokens", 1, now, auditIDs[i%benchClients])
		if err == nil && !o.Applied {
			err = fmt.Errorf("consume %d not applied", i)
		}
		return err
	})
}

// BenchmarkBareCounterUpdate is the baseline: store.BareCounterUpdate, one UPDATE of one
// counter row with the limit in its WHERE, at the same concurrency over the same
// subscriptions.
func BenchmarkBareCounterUpdate(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	runClients(b, func(rng *rand.Rand, i int64) error {
		ok, err := store.BareCounterUpdate(ctx, f.pool, f.ids[rng.IntN(len(f.ids))], "tokens", 1)
		if err == nil && !ok {
			err = fmt.Errorf("update %d counted nothing", i)
		}
		return err
	})
}

// benchFixture is a database with benchSubscriptions active subscriptions of the tariff
// "bench" (one meter, "tokens", with a volume no benchmark uses up), and an engine on a
// pool of benchClients connections.
type benchFixture struct {
	pool   *pgxpool.Pool
	engine *billing.Engine
	// unbatched is an engine on the same pool and clock with Config.ConsumeBatchSize 1: every
	// Consume runs its own statements, as before Consume's batches (usage_batch.go).
	unbatched *billing.Engine
	ids       []string
}

// newBenchFixture makes the fixture: one subscription through the engine (Subscribe and
// ConfirmFirstPayment), copied benchSubscriptions-1 times with one SQL statement, so the
// copies are what the engine would have written.
func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	ctx := context.Background()
	setupPool := billingtest.NewPool(b)
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		b.Fatal(err)
	}
	cfg := billing.DefaultConfig()
	cfg.Clock = billingtest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow))

	poolCfg := setupPool.Config().Copy()
	poolCfg.MaxConns, poolCfg.MinConns = benchClients, benchClients
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	engine, err := billing.New(pool, cfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConsumeBatchSize = 1
	unbatched, err := billing.New(pool, cfg)
	if err != nil {
		b.Fatal(err)
	}

	if _, err := engine.Tariffs().Publish(ctx, "bench", tariff.Spec{
		Code: "bench", Name: "Bench", Price: decimal.NewFromInt(990),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "tokens", Quantity: 1 << 50}},
	}); err != nil {
		b.Fatal(err)
	}
	first, err := engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "bench-1", TariffCode: "bench", IdempotencyKey: "bench-1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := engine.ConfirmFirstPayment(ctx, first.ID, billing.Payment{
		ProviderPaymentID: "p", Amount: first.Checkout.Price, Currency: first.Checkout.Currency}); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		WITH ids AS (
		    SELECT gen_random_uuid() AS id, g FROM generate_series(2, $2::int) g
		), subs AS (
		    INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, payment_method,
		        checkout, current_period, current_period_end, suspended_from, created_at, ended_at, updated_at)
		    SELECT ids.id, 'bench-' || ids.g, s.tariff_code, s.status, s.auto_renew, s.location, s.payment_method,
		        s.checkout, s.current_period, s.current_period_end, s.suspended_from, s.created_at, s.ended_at, s.updated_at
		    FROM ids, billing_subscriptions s WHERE s.id = $1
		), periods AS (
		    INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at, exhausted_at)
		    SELECT ids.id, p.number, p.terms, p.start_at, p.end_at, p.granted_at, p.exhausted_at
		    FROM ids, billing_periods p WHERE p.subscription_id = $1
		)
		SELECT count(*) FROM ids`, first.ID, benchSubscriptions); err != nil {
		b.Fatal(err)
	}
	// The usage rows in a statement of their own: their open_until (migration 0008) is set
	// on insert from the subscription and period, which must be visible by then.
	if _, err := pool.Exec(ctx, `
		INSERT INTO billing_usage (subscription_id, period, meter, quantity, hard, used, reserved)
		SELECT s.id, u.period, u.meter, u.quantity, u.hard, u.used, u.reserved
		FROM billing_subscriptions s, billing_usage u WHERE s.id <> $1 AND u.subscription_id = $1`, first.ID); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT id::text FROM billing_subscriptions WHERE status = 'active' ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	ids := make([]string, 0, benchSubscriptions)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) != benchSubscriptions {
		b.Fatalf("fixture: %d subscriptions, %v", len(ids), err)
	}
	// Warm the pool: every connection open before the clock starts.
	var wg sync.WaitGroup
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = pool.Exec(ctx, `SELECT pg_sleep(0.01)`)
		}()
	}
	wg.Wait()
	return &benchFixture{pool: pool, engine: engine, unbatched: unbatched, ids: ids}
}

// runClients runs op b.N times in total from benchClients goroutines (exactly that many,
// whatever GOMAXPROCS is), op's i counting the calls from 1, and reports the throughput
// as ops/s.
func runClients(b *testing.B, op func(rng *rand.Rand, i int64) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for c := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(b.N)))
			for {
				i := next.Add(1)
				if i > int64(b.N) || failed.Load() != nil {
					return
				}
				if err := op(rng, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
