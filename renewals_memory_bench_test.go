package billing_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/payment"
)

// The shape of the memory benchmark (issue 18): how many renewals fall due, how they are
// filled, and how often the heap is looked at.
const (
	memBenchDue          = 1_000_000              // BILLING_BENCH_DUE overrides it
	memBenchWindow       = 60 * time.Second       // BILLING_BENCH_WINDOW overrides it
	memBenchFillChunk    = 50_000                 // subscriptions copied by one statement
	memBenchInsertChunk  = 10_000                 // renewal jobs inserted by one InsertMany
	memBenchSampleEvery  = 250 * time.Millisecond // runtime.ReadMemStats interval
	memBenchUntilDoneMax = 100_000                // arms up to this size stop once all are renewed (polled every second)
)

// BenchmarkRenewalsMillionDueMemory measures the test process's memory while a million
// renewals are due at once (issue 18: "memory stays bounded"), next to a comparison arm of
// renewBenchSubscriptions (10 000) due renewals in the same run. Run it once:
//
//	./scripts/pg-tmp.sh go test -run '^$' -bench RenewalsMillionDueMemory -benchtime 1x -count 1 -timeout 2h .
//
// BILLING_BENCH_DUE sets the large arm's size (default 1 000 000; BILLING_BENCH_DUE=20000 runs
// it small), BILLING_BENCH_WINDOW the time each arm runs (a Go duration, default 60s), and
// BILLING_BENCH_CLAIMS=1 renews through the engine's renewal claims (Config.ClaimRenewals; the
// arms are named claims-due-N): the fill gives each subscription renew_at at its period's end,
// as its paid period would have, instead of a renewal job, one claim job is inserted, and the
// claim jobs fan out from it.
//
// Each arm, on a database of its own (newRenewBench, batches at their default size):
//  1. fills, outside the timed region, N active subscriptions whose first period ended at one
//     instant (when the fill started), in statements of memBenchFillChunk copies
//     of the template (dueSubscriptionsAt), and their billing_renew jobs (period 1, try 1),
//     inserted with River's InsertMany memBenchInsertChunk at a time, available at once;
//     then VACUUM ANALYZE, and a forced GC so the fill's garbage is not in the samples;
//  2. starts a River client on the engine's workers (fast fetch as BenchmarkRenewalsDueAtOnce's
//     fast-fetch case: FetchCooldown 1 ms, FetchPollInterval 50 ms; one queue, 20 workers;
//     the fake gateway with no latency) and lets it run for the window (an arm of at most
//     memBenchUntilDoneMax subscriptions ends earlier once every one is renewed), reading
//     runtime.ReadMemStats (HeapInuse) and runtime.NumGoroutine every 250 ms;
//  3. a quarter into the window runs Engine.SweepDueRenewals once (a River leader runs it
//     every interval in production), with the samples going on: it reads the due
//     subscriptions without a live job, so with every due subscription's job waiting it looks
//     at all of them and enqueues none (with claims it looks for due subscriptions without
//     renew_at, and finds none). A sweep still running when the window ends is cut off there
//     (its context canceled; sweep-finished 0);
//  4. counts the subscriptions in period 2 at the end of the window (renewals/s), stops the
//     client (River waits for the jobs it is running) and checks that every renewed
//     subscription has exactly one succeeded attempt for period 2 and none has two attempts.
//
// Metrics: base-heap-MB (HeapInuse after the fill and a GC, before Start), max-heap-MB and
// median-heap-MB over the samples, sweep-max-heap-MB (the largest sample while the sweep
// ran), max-goroutines, renewals/s in the window, sweep-s, sweep-enqueued and sweep-finished,
// fill-s; the large arm adds max-heap/10k and median-heap/10k, its heap over the comparison
// arm's.
// ns/op is the window (shorter for a small arm whose renewals were all done before its end).
func BenchmarkRenewalsMillionDueMemory(b *testing.B) {
	due := memBenchDue
	if s := os.Getenv("BILLING_BENCH_DUE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("BILLING_BENCH_DUE=%q: want a positive number", s)
		}
		due = n
	}
	window := memBenchWindow
	if s := os.Getenv("BILLING_BENCH_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			b.Fatalf("BILLING_BENCH_WINDOW=%q: want a positive Go duration such as 60s", s)
		}
		window = d
	}
	claims := os.Getenv("BILLING_BENCH_CLAIMS") == "1"
	arms := []int{renewBenchSubscriptions, due}
	if due <= renewBenchSubscriptions {
		arms = []int{due}
	}
	var small *memSample // the comparison arm's result
	for _, n := range arms {
		name := fmt.Sprintf("due-%d", n)
		if claims {
			name = "claims-" + name
		}
		b.Run(name, func(b *testing.B) {
			var res memSample
			for range b.N {
				res = runMemoryArm(b, n, window, claims)
			}
			b.ReportMetric(res.fill.Seconds(), "fill-s")
			b.ReportMetric(res.baseMB, "base-heap-MB")
			b.ReportMetric(res.maxMB, "max-heap-MB")
			b.ReportMetric(res.medianMB, "median-heap-MB")
			b.ReportMetric(res.sweepMaxMB, "sweep-max-heap-MB")
			b.ReportMetric(float64(res.maxGoroutines), "max-goroutines")
			b.ReportMetric(res.rate, "renewals/s")
			b.ReportMetric(res.sweep.Seconds(), "sweep-s")
			b.ReportMetric(float64(res.sweepEnqueued), "sweep-enqueued")
			finished := 0.0
			if res.sweepFinished {
				finished = 1
			}
			b.ReportMetric(finished, "sweep-finished")
			if n == renewBenchSubscriptions && len(arms) > 1 {
				small = &res
			} else if small != nil {
				b.ReportMetric(res.maxMB/small.maxMB, "max-heap/10k")
				b.ReportMetric(res.medianMB/small.medianMB, "median-heap/10k")
			}
		})
	}
}

// memSample is what one arm of BenchmarkRenewalsMillionDueMemory measured.
type memSample struct {
	fill                    time.Duration
	baseMB, maxMB, medianMB float64
	sweepMaxMB              float64
	maxGoroutines           int
	rate                    float64       // subscriptions in period 2 at the end of the window, per second of it
	sweep                   time.Duration // from its start until it returned or was cut off
	sweepEnqueued           int
	sweepFinished           bool // false: the window ended first and cut it off
}

// runMemoryArm is one arm of BenchmarkRenewalsMillionDueMemory: n due renewals, window, with
// renewal claims or River's job per renewal.
func runMemoryArm(b *testing.B, n int, window time.Duration, claims bool) memSample {
	b.Helper()
	b.StopTimer()
	ctx := context.Background()
	f := newRenewBench(b, 0, func(c *billing.Config) {
		c.ClaimRenewals = claims
		c.Gateway = keylessGateway{c.Gateway.(*billingtest.Gateway)}
	})
	var res memSample

	// 1. The fill: n due subscriptions and their renewal jobs, a chunk at a time, so that
	// the benchmark itself never holds more than a chunk's ids.
	// The periods end when the fill starts, not a second before as in dueSubscriptions: the
	// tariff was published a moment ago, and a renewal takes the version in force at the
	// period's end. The fill takes more than the clock's resolution, so every period has
	// ended when the client starts.
	fillStart := time.Now()
	end := fillStart
	inserter, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{Workers: f.workers, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	for first := 1; first <= n; first += memBenchFillChunk {
		ids := f.dueSubscriptionsAt(b, "mem-", first, min(memBenchFillChunk, n-first+1), end)
		if claims {
			f.renewAtPeriodEnd(b, ids)
			continue
		}
		for from := 0; from < len(ids); from += memBenchInsertChunk {
			chunk := ids[from:min(from+memBenchInsertChunk, len(ids))]
			params := make([]river.InsertManyParams, len(chunk))
			for j, id := range chunk {
				params[j] = river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: 1, Try: 1}}
			}
			if _, err := inserter.InsertMany(ctx, params); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := f.pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	res.fill = time.Since(fillStart)
	var jobsDue int
	if claims { // the renewals waiting are the due subscriptions' renew_at (the template's is not due)
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM billing_subscriptions WHERE renew_at <= $1`, end).Scan(&jobsDue); err != nil {
			b.Fatal(err)
		}
		if _, err := inserter.Insert(ctx, billing.ClaimRenewalsArgs(), nil); err != nil {
			b.Fatal(err)
		}
	} else if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM `+riverJob+` WHERE kind = $1 AND state = 'available'`,
		jobs.RenewArgs{}.Kind()).Scan(&jobsDue); err != nil {
		b.Fatal(err)
	}
	if jobsDue != n {
		b.Fatalf("%d renewals waiting after the fill, want %d", jobsDue, n)
	}
	b.Logf("due-%d: fill %s", n, res.fill.Round(time.Second))
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.baseMB = float64(ms.HeapInuse) / (1 << 20)

	// 2. The client, and the sampler.
	client, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: renewBenchWorkers}},
		Workers:           f.workers,
		FetchCooldown:     river.FetchCooldownMin,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu       sync.Mutex
		heaps    []float64
		maxG     int
		sweeping bool
		sweepMax float64
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		g := runtime.NumGoroutine()
		mb := float64(ms.HeapInuse) / (1 << 20)
		mu.Lock()
		defer mu.Unlock()
		heaps = append(heaps, mb)
		maxG = max(maxG, g)
		if sweeping {
			sweepMax = max(sweepMax, mb)
		}
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(memBenchSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				sample()
			case <-stopSampling:
				return
			}
		}
	}()

	b.StartTimer()
	started := time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}

	// 3. One sweep, a quarter into the window; it is cut off when the arm's window ends.
	armCtx, endArm := context.WithCancel(ctx)
	defer endArm()
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		select {
		case <-time.After(window / 4):
		case <-armCtx.Done():
			return
		}
		mu.Lock()
		sweeping = true
		mu.Unlock()
		t0 := time.Now()
		enq, err := f.engine.SweepDueRenewals(armCtx)
		res.sweep, res.sweepEnqueued = time.Since(t0), enq
		res.sweepFinished = armCtx.Err() == nil
		if err != nil && res.sweepFinished {
			b.Errorf("SweepDueRenewals after %s: %v", res.sweep, err)
		}
		sample() // the sweep's result is still reachable here
		mu.Lock()
		sweeping = false
		mu.Unlock()
	}()

	// The window, or (small arms) until every subscription is renewed.
	renewed := func() int {
		var c int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM billing_subscriptions WHERE current_period = 2`).Scan(&c); err != nil {
			b.Fatal(err)
		}
		return c
	}
	deadline := time.After(window)
	var poll <-chan time.Time
	if n <= memBenchUntilDoneMax {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		poll = t.C
	}
wait:
	for {
		select {
		case <-deadline:
			break wait
		case <-poll:
			if renewed() >= n {
				break wait
			}
		}
	}
	// 4. Renewals in the window; then the sweep's end, the client's stop, the checks.
	count, elapsed := renewed(), time.Since(started)
	res.rate = float64(count) / elapsed.Seconds()
	endArm()
	<-sweepDone
	b.StopTimer()
	close(stopSampling)
	<-sampled
	stopCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if err := client.Stop(stopCtx); err != nil {
		b.Errorf("stop the client: %v", err)
	}

	mu.Lock()
	sorted := slices.Sorted(slices.Values(heaps))
	res.maxGoroutines = maxG
	res.sweepMaxMB = sweepMax
	mu.Unlock()
	if len(sorted) == 0 {
		b.Fatal("no memory samples")
	}
	res.maxMB, res.medianMB = sorted[len(sorted)-1], sorted[len(sorted)/2]

	var inPeriod2, succeeded, doubled int
	if err := f.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM billing_subscriptions WHERE current_period = 2 AND status = 'active'),
		(SELECT count(*) FROM billing_payment_attempts WHERE period = 2 AND state = 'succeeded'),
		(SELECT count(*) FROM (SELECT 1 FROM billing_payment_attempts WHERE period = 2
		    GROUP BY subscription_id HAVING count(*) > 1) d)`).Scan(&inPeriod2, &succeeded, &doubled); err != nil {
		b.Fatal(err)
	}
	if inPeriod2 != succeeded || doubled != 0 {
		b.Fatalf("after the stop: %d subscriptions in period 2, %d succeeded attempts for it, %d with two attempts",
			inPeriod2, succeeded, doubled)
	}
	b.Logf("due-%d: %d renewed in %s (%d after the stop), %d samples, heap base %.1f MB, median %.1f, max %.1f; "+
		"sweep %s (finished: %t), enqueued %d, max heap while it ran %.1f MB",
		n, count, elapsed.Round(time.Millisecond), inPeriod2, len(sorted), res.baseMB, res.medianMB, res.maxMB,
		res.sweep.Round(time.Millisecond), res.sweepFinished, res.sweepEnqueued, res.sweepMaxMB)
	return res
}

// keylessGateway is the memory benchmark's provider: it answers every charge as succeeded,
// with a provider payment id made from the charge's idempotency key, and keeps nothing. The
// same key gets the same answer, as a provider's idempotency promises. The fake gateway
// (billingtest.Gateway) keeps a record of every charge in the test process, which a real
// provider keeps on its side: about 1 KB a charge, 90 MB of a 158 MB heap after 80 000
// renewals claimed in a minute, which a heap profile showed swamping the engine's own memory.
// Refunds and lookups go to the fake, which never saw these charges (none is made here).
type keylessGateway struct{ *billingtest.Gateway }

// Charge answers req as succeeded and records nothing.
func (g keylessGateway) Charge(_ context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	if err := req.Validate(); err != nil {
		return payment.ChargeResult{}, err
	}
	return payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: "pay_" + req.IdempotencyKey,
		Amount: req.Amount, Currency: req.Currency}, nil
}
