package billing_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/tariff"
)

// The shape of issue 7's benchmark.
const (
	renewBenchSubscriptions = 10_000
	renewBenchWorkers       = 20
)

// BenchmarkRenewalsDueAtOnce measures how fast River workers renew
// renewBenchSubscriptions subscriptions whose periods all ended at the same instant,
// against a fake gateway answering at once (or, in the latency-300ms cases, after 300 ms),
// next to the same River client configuration
// working as many no-op jobs in the same run (TERMS 3.5; the target of issue 7 is at least
// half the no-op throughput).
//
// Each iteration (run it with -benchtime 1x: one iteration is 3×10 000 jobs):
//  1. inserts renewBenchSubscriptions no-op jobs with InsertMany, starts a client and
//     times it from Start until the last job completed; then the same with as many
//     chainBenchArgs jobs, the floor of any renewal (one transaction inserting the next
//     period's job);
//  2. makes renewBenchSubscriptions active subscriptions whose first period ended a
//     second ago (one through Subscribe + ChargeFirstPayment, the rest copied from it by
//     SQL), inserts their renewal jobs (billing_renew, period 1, try 1) with InsertMany,
//     starts a new client with the same configuration and times it likewise; then checks
//     that every subscription is in period 2, charged once;
//  3. in the claims case (provider at 0 ms) only: renews as many fresh due subscriptions
//     with the claims design's statement floor (statementsFloorArgs: the engine's own store
//     statements for the rows a renewal must write, none of its logic) and times it
//     likewise.
//
// The engine and River both run on the system clock. The reported metrics are noop_jobs/s,
// floor_jobs/s, renewals/s, the ratios to the no-op rate, in the claims case
// stmt_floor_renewals/s, stmt_floor/noop and renew/stmt_floor, and the mean renewals a batch of
// step 1 and of step 3 held (step1_batch_mean, step3_batch_mean); ns/op is the renewal phase
// alone.
func BenchmarkRenewalsDueAtOnce(b *testing.B) {
	for _, cfg := range []struct {
		name          string
		cooldown      time.Duration
		fetchInterval time.Duration
		workers       int           // River's MaxWorkers; renewBenchWorkers when 0
		latency       time.Duration // the fake gateway's answer time
		batch         int           // Config.RenewalBatchSize; the default when 0
		claimed       bool          // renewals claimed in chunks (claimWork), no River job per renewal
		claims        bool          // Config.ClaimRenewals: the engine's claim jobs renew (claimsWork)
		chunk         int           // Config.ClaimChunk; the default when 0
		probe         bool          // a command on the renewing subscriptions meanwhile (commandProbe)
	}{
		{name: "river-defaults"}, // FetchCooldown 100ms, FetchPollInterval 1s
		{name: "fast-fetch", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond},
		// The same without batches: every renewal runs its own transactions.
		{name: "fast-fetch-unbatched", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond, batch: 1},
		// A provider answering in 300 ms, as a real one does: with 20 workers the pace is
		// 20 ÷ 0.3 s whatever the engine does; with 400 the calls overlap and the
		// engine's own work sets it again (step 2 holds no connection and no transaction).
		{name: "latency-300ms-workers-20", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond,
			latency: 300 * time.Millisecond},
		{name: "latency-300ms-workers-400", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond,
			latency: 300 * time.Millisecond, workers: 400},
		// The ceiling of renewals claimed in batches, the design BENCHMARKS.md names for the
		// 0.5× target: no River job per renewal (claimWork), with today's steps 1 and 3.
		{name: "claimed", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond, claimed: true},
		{name: "claimed-latency-300ms", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond,
			latency: 300 * time.Millisecond, claimed: true},
		// The engine's renewal claims (Config.ClaimRenewals): one claim job is inserted, and
		// the claims fan out over River's workers from it.
		{name: "claims", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond, claims: true},
		{name: "claims-latency-300ms", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond,
			latency: 300 * time.Millisecond, claims: true},
		// Claims with chunks and batches of the default size and of 400 (Config.ClaimChunk,
		// RenewalBatchSize), each with a command on the renewing subscriptions meanwhile:
		// how long it waits for the chunk's transactions that hold them.
		{name: "claims-probe", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond, claims: true, probe: true},
		{name: "claims-chunk-400-probe", cooldown: river.FetchCooldownMin, fetchInterval: 50 * time.Millisecond, claims: true,
			chunk: 400, batch: 400, probe: true},
	} {
		b.Run(cfg.name, func(b *testing.B) {
			f := newRenewBench(b, cfg.batch, func(c *billing.Config) { c.ClaimRenewals, c.ClaimChunk = cfg.claims, cfg.chunk })
			f.gateway.SetLatency(cfg.latency)
			workers := cmp.Or(cfg.workers, renewBenchWorkers)
			riverConfig := func() *river.Config {
				return &river.Config{
					Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
					Workers:           f.workers,
					FetchCooldown:     cfg.cooldown,
					FetchPollInterval: cfg.fetchInterval,
					Logger:            slog.New(slog.DiscardHandler),
				}
			}
			var noop, floor, renew, stmtFloor time.Duration
			var probe commandProbe
			b.StopTimer() // work times the renewal phase alone
			b.ResetTimer()
			for i := range b.N {
				noop += f.work(b, riverConfig(), false, noopBenchArgs{}.Kind(), func() []river.InsertManyParams {
					params := make([]river.InsertManyParams, renewBenchSubscriptions)
					for j := range params {
						params[j] = river.InsertManyParams{Args: noopBenchArgs{N: j}}
					}
					return params
				})
				floor += f.work(b, riverConfig(), false, chainBenchArgs{}.Kind(), func() []river.InsertManyParams {
					params := make([]river.InsertManyParams, renewBenchSubscriptions)
					for j := range params {
						params[j] = river.InsertManyParams{Args: chainBenchArgs{N: j, Iteration: i}}
					}
					return params
				})
				f.clearJobs(b) // the floor's next jobs must not slow the renewals' fetches
				ids := f.dueSubscriptionsAt(b, fmt.Sprintf("it%d-", i), i*renewBenchSubscriptions+1, renewBenchSubscriptions, time.Now().Add(-time.Second))
				if cfg.claims {
					if cfg.probe {
						f.beside = probe.run(f.engine, ids)
					}
					renew += f.claimsWork(b, riverConfig(), true, billing.ClaimRenewalsArgs(), ids)
					f.beside = nil
					f.requireRenewed(b, ids)
					f.clearJobs(b)
					if cfg.latency == 0 && cfg.chunk == 0 && !cfg.probe { // the floor: no provider, default chunk, nothing beside
						// Cards numbered apart from the renewals' (dueSubscriptions: 1 … n).
						ids := f.dueSubscriptionsAt(b, fmt.Sprintf("it%d-floor-", i), (i+1)*1_000_000, renewBenchSubscriptions, time.Now().Add(-time.Second))
						stmtFloor += f.claimsWork(b, riverConfig(), false, statementsFloorArgs{}, ids)
						f.requirePeriodTwoPaid(b, ids)
						f.clearJobs(b)
					}
					continue
				}
				if cfg.claimed {
					renew += f.claimWork(b, ids)
					f.requireRenewed(b, ids)
					f.clearJobs(b)
					continue
				}
				renew += f.work(b, riverConfig(), true, jobs.RenewArgs{}.Kind(), func() []river.InsertManyParams {
					params := make([]river.InsertManyParams, len(ids))
					for j, id := range ids {
						params[j] = river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: 1, Try: 1}}
					}
					return params
				})
				f.requireRenewed(b, ids)
				f.clearJobs(b)
			}
			n := float64(b.N * renewBenchSubscriptions)
			noopRate, floorRate, renewRate := n/noop.Seconds(), n/floor.Seconds(), n/renew.Seconds()
			b.ReportMetric(noopRate, "noop_jobs/s")
			b.ReportMetric(floorRate, "floor_jobs/s")
			b.ReportMetric(renewRate, "renewals/s")
			b.ReportMetric(floorRate/noopRate, "floor/noop")
			b.ReportMetric(renewRate/noopRate, "renew/noop")
			if cfg.probe {
				probe.report(b)
			}
			if stmtFloor > 0 {
				stmtFloorRate := n / stmtFloor.Seconds()
				b.ReportMetric(stmtFloorRate, "stmt_floor_renewals/s")
				b.ReportMetric(stmtFloorRate/noopRate, "stmt_floor/noop")
				b.ReportMetric(renewRate/stmtFloorRate, "renew/stmt_floor")
			}
			// The mean renewals a batch of step 1 and of step 3 held (1 where a renewal ran
			// alone, as without batches).
			pb, p, sb, s := billing.RenewalBatchCounts(f.engine)
			if pb > 0 && sb > 0 {
				b.ReportMetric(float64(p)/float64(pb), "step1_batch_mean")
				b.ReportMetric(float64(s)/float64(sb), "step3_batch_mean")
			}
		})
	}
}

// commandProbe times a command on the subscriptions being renewed: commandProbeCallers
// callers, each calling SetAutoRenew(true) on one of them after another, back to back while
// the renewals run (auto-renew is on already; the command still locks the subscription and
// writes its row and audit entry, as every command does). What it waits is what a host's command waits for the transactions that hold its
// subscription (a claimed chunk's step-1 batch or step-3 wave), and for a connection of the
// engine's pool, from the client's start until the renewals are seen done.
type commandProbe struct {
	mu     sync.Mutex
	waits  []time.Duration
	errors []error
}

// commandProbeCallers is how many callers the probe runs at once.
const commandProbeCallers = 4

// run returns the probe's loops over ids for renewBench.beside: commandProbeCallers callers,
// each over its own stride of ids.
func (p *commandProbe) run(engine *billing.Engine, ids []string) func(context.Context) {
	return func(ctx context.Context) {
		var callers sync.WaitGroup
		for c := range commandProbeCallers {
			callers.Go(func() { p.call(ctx, engine, ids, c) })
		}
		callers.Wait()
	}
}

// call is one caller of the probe, until ctx ends.
func (p *commandProbe) call(ctx context.Context, engine *billing.Engine, ids []string, caller int) {
	for i := 0; ctx.Err() == nil; i++ {
		id := ids[(i*7919+caller*2503)%len(ids)]
		start := time.Now()
		_, err := engine.SetAutoRenew(ctx, id, true, "customer:bench")
		if ctx.Err() != nil {
			return // cut short at the phase's end: not a wait
		}
		p.mu.Lock()
		if err != nil {
			p.errors = append(p.errors, err) // none expected: report fails the benchmark
		} else {
			p.waits = append(p.waits, time.Since(start))
		}
		p.mu.Unlock()
	}
}

// report adds the probe's command times: cmd_calls, cmd_p50_ms, cmd_p99_ms, cmd_max_ms.
func (p *commandProbe) report(b *testing.B) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errors) > 0 {
		b.Fatalf("%d commands of the probe failed, the first: %v", len(p.errors), p.errors[0])
	}
	if len(p.waits) < 100 {
		b.Fatalf("the command probe timed %d commands: too few for a 99th percentile", len(p.waits))
	}
	w := slices.Clone(p.waits)
	slices.Sort(w)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(w)), "cmd_calls")
	b.ReportMetric(ms(w[len(w)/2]), "cmd_p50_ms")
	b.ReportMetric(ms(w[len(w)*99/100]), "cmd_p99_ms")
	b.ReportMetric(ms(w[len(w)-1]), "cmd_max_ms")
}

// noopBenchArgs is the baseline job: its worker does nothing.
type noopBenchArgs struct {
	N int `json:"n"`
}

func (noopBenchArgs) Kind() string { return "bench_noop" }

type noopBenchWorker struct {
	river.WorkerDefaults[noopBenchArgs]
}

func (noopBenchWorker) Work(context.Context, *river.Job[noopBenchArgs]) error { return nil }

// chainBenchArgs is the floor of a renewal: its worker does only what the design
// asks of any renewal besides the charge itself, one transaction that inserts the job of
// the next period (InsertTx, unique by args, scheduled a month on, as the renewal job is).
type chainBenchArgs struct {
	N         int  `json:"n"`
	Iteration int  `json:"iteration"`
	Next      bool `json:"next"`
}

func (chainBenchArgs) Kind() string { return "bench_chain" }

func (chainBenchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type chainBenchWorker struct {
	river.WorkerDefaults[chainBenchArgs]
	pool *pgxpool.Pool
}

func (w chainBenchWorker) Work(ctx context.Context, job *river.Job[chainBenchArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		next := job.Args
		next.Next = true
		_, err := client.InsertTx(ctx, tx, next, &river.InsertOpts{ScheduledAt: time.Now().AddDate(0, 1, 0)})
		return err
	})
}

// renewBench is the benchmark's database: a pool big enough for the workers, an engine on
// the system clock with a zero-latency fake gateway, and a template subscription paid
// through the engine.
type renewBench struct {
	pool     *pgxpool.Pool
	engine   *billing.Engine
	gateway  *billingtest.Gateway
	workers  *river.Workers
	template string
	// beside, when set, runs while claimsWork's renewals do, until its context ends.
	beside func(ctx context.Context)
}

// newRenewBench makes the fixture; batch is the engine's Config.RenewalBatchSize (0: the
// default).
func newRenewBench(b *testing.B, batch int, change ...func(*billing.Config)) *renewBench {
	b.Helper()
	ctx := context.Background()
	setupPool := billingtest.NewPool(b)
	poolCfg := setupPool.Config().Copy()
	poolCfg.MaxConns = 2 * renewBenchWorkers
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)

	engine, gw, workers := renewBenchEngine(b, pool, batch, change...)
	river.AddWorker(workers, chainBenchWorker{pool: pool})
	river.AddWorker(workers, statementsFloorWorker{pool: pool})
	// A client that never starts: the engine inserts the template's jobs through it.
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := engine.UseRiver(inserter); err != nil {
		b.Fatal(err)
	}

	if _, err := engine.Tariffs().Publish(ctx, "ops", tariff.Spec{
		Code: "pro", Name: "Pro", Price: decimal.NewFromInt(990),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}},
	}); err != nil {
		b.Fatal(err)
	}
	sub, err := engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "template", TariffCode: "pro",
		PaymentMethod: "tok-bench", IdempotencyKey: "template"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := engine.ChargeFirstPayment(ctx, sub.ID); err != nil {
		b.Fatal(err)
	}
	// The template's own jobs (renewal, recognition) would only wait a month: drop them.
	if _, err := pool.Exec(ctx, "DELETE FROM "+riverJob); err != nil {
		b.Fatal(err)
	}
	return &renewBench{pool: pool, engine: engine, gateway: gw, workers: workers, template: sub.ID}
}

// renewBenchEngine is the engine of the renewal benchmarks on pool: the system clock, a
// zero-latency fake gateway, renewals in batches of at most batch (Config.RenewalBatchSize;
// 0: the default), and its workers registered together with the no-op job's.
func renewBenchEngine(tb testing.TB, pool *pgxpool.Pool, batch int, change ...func(*billing.Config)) (*billing.Engine, *billingtest.Gateway, *river.Workers) {
	tb.Helper()
	gw := billingtest.NewGateway()
	cfg := billing.DefaultConfig() // system clock
	cfg.Gateway = gw
	cfg.RenewalBatchSize = batch
	for _, c := range change {
		c(&cfg)
	}
	engine, err := billing.New(pool, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	workers := river.NewWorkers()
	if err := engine.RegisterWorkers(workers); err != nil {
		tb.Fatal(err)
	}
	river.AddWorker(workers, noopBenchWorker{})
	return engine, gw, workers
}

// dueSubscriptions copies the template renewBenchSubscriptions times, as active
// subscriptions whose first period (a month long) ended a second ago, and returns their ids.
func (f *renewBench) dueSubscriptions(b *testing.B, prefix string) []string {
	return f.dueSubscriptionsAt(b, prefix, 1, renewBenchSubscriptions, time.Now().Add(-time.Second))
}

// dueSubscriptionsAt copies the template n times, as active subscriptions whose first period
// (a month long) ended at end, and returns their ids. The copies are numbered first … first+n-1:
// their customers (prefix and the number) and saved cards (the template's token, "-" and the
// number) are their own as long as the ranges of calls with one prefix do not overlap.
func (f *renewBench) dueSubscriptionsAt(b *testing.B, prefix string, first, n int, end time.Time) []string {
	b.Helper()
	ctx := context.Background()
	start := end.AddDate(0, -1, 0)
	rows, err := f.pool.Query(ctx, `
		WITH ids AS (
		    SELECT gen_random_uuid() AS id, g FROM generate_series($6::int, $6::int + $2::int - 1) g
		), subs AS (
		    INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, payment_method,
		        checkout, current_period, current_period_end, suspended_from, created_at, ended_at, updated_at)
		    SELECT ids.id, $3 || ids.g, s.tariff_code, s.status, s.auto_renew, s.location, s.payment_method || '-' || ids.g,
		        s.checkout, s.current_period, $5, s.suspended_from, $4, s.ended_at, $4
		    FROM ids, billing_subscriptions s WHERE s.id = $1
		), methods AS (
		    -- A payment method belongs to one customer: each copy saves a card of its own.
		    INSERT INTO billing_payment_methods (token, customer_id, consent_given_at)
		    SELECT s.payment_method || '-' || ids.g, $3 || ids.g, $4
		    FROM ids, billing_subscriptions s WHERE s.id = $1
		), periods AS (
		    INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at, exhausted_at)
		    SELECT ids.id, p.number, p.terms, $4, $5, $4, NULL
		    FROM ids, billing_periods p WHERE p.subscription_id = $1
		)
		SELECT id::text FROM ids ORDER BY g`, f.template, n, prefix, start, end, first)
	if err != nil {
		b.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	// The usage rows in a statement of their own: their open_until (migration 0008) is set
	// on insert from the subscription and period, which must be visible by then.
	if _, err := f.pool.Exec(ctx, `
		INSERT INTO billing_usage (subscription_id, period, meter, quantity, hard, used, reserved)
		SELECT ids.id, u.period, u.meter, u.quantity, u.hard, 0, 0
		FROM unnest($2::uuid[]) AS ids (id), billing_usage u WHERE u.subscription_id = $1`, f.template, ids); err != nil {
		b.Fatal(err)
	}
	return ids
}

// work inserts the jobs made by params, then starts a client with config and returns the
// time from Start until renewBenchSubscriptions jobs of kind completed; with timed, the
// benchmark's timer runs for that time. A failed job fails the benchmark.
func (f *renewBench) work(b *testing.B, config *river.Config, timed bool, kind string, params func() []river.InsertManyParams) time.Duration {
	b.Helper()
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(f.pool), config)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.InsertMany(ctx, params()); err != nil {
		b.Fatal(err)
	}
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: 2 * renewBenchSubscriptions,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed},
	})
	defer cancel()
	if timed {
		b.StartTimer()
	}
	started := time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stopCtx, stop := context.WithTimeout(ctx, 30*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	}()
	timeout := time.After(10 * time.Minute)
	for done := 0; done < renewBenchSubscriptions; {
		select {
		case ev := <-events:
			if ev.Job.Kind != kind {
				continue
			}
			if ev.Kind == river.EventKindJobFailed {
				b.Fatalf("job %d (%s) failed: %v", ev.Job.ID, kind, ev.Job.Errors)
			}
			done++
		case <-timeout:
			b.Fatalf("%s jobs not done after 10 minutes", kind)
		}
	}
	elapsed := time.Since(started)
	if timed {
		b.StopTimer()
	}
	return elapsed
}

// claimChunk and claimers shape claimWork: renewals claimed a chunk at a time by
// renewBenchWorkers claimers.
const claimChunk = 100

// claimWork renews ids, whose periods ended, the way a renewal claimer would: with no River
// job per renewal. renewBenchWorkers claimers take chunks of claimChunk ids; each writes its
// chunk's rows once (a stand-in for the claim's lease, UPDATE … WHERE id = ANY) and renews
// the whole chunk at once (RenewPeriod per subscription, concurrently, so the renewal
// batches form from the chunk). The engine inserts no renewal job meanwhile
// (SkipRenewalJobs): a claimer needs none. It returns the time from the first claim until
// every renewal returned, with the benchmark's timer running for it; a failed renewal fails
// the benchmark. It measures the ceiling of that design with today's steps 1 and 3, not a
// claimer: there is none in the engine.
func (f *renewBench) claimWork(b *testing.B, ids []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	billing.SkipRenewalJobs(f.engine)
	chunks := make(chan []string, len(ids)/claimChunk+1)
	for c := range slices.Chunk(ids, claimChunk) {
		chunks <- c
	}
	close(chunks)
	var mu sync.Mutex
	var failed []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, err)
	}
	b.StartTimer()
	started := time.Now()
	var claimers sync.WaitGroup
	for range renewBenchWorkers {
		claimers.Go(func() {
			for chunk := range chunks {
				if _, err := f.pool.Exec(ctx, `UPDATE billing_subscriptions SET updated_at = updated_at WHERE id = ANY($1::uuid[])`,
					chunk); err != nil {
					fail(err)
					continue
				}
				var calls sync.WaitGroup
				for _, id := range chunk {
					calls.Go(func() {
						if err := billing.RenewPeriod(f.engine, ctx, id, 1); err != nil {
							fail(fmt.Errorf("%s: %w", id, err))
						}
					})
				}
				calls.Wait()
			}
		})
	}
	claimers.Wait()
	elapsed := time.Since(started)
	b.StopTimer()
	if len(failed) > 0 {
		b.Fatalf("%d renewals failed, the first: %v", len(failed), failed[0])
	}
	return elapsed
}

// claimsWork renews ids, whose periods ended, through the engine's renewal claims
// (Config.ClaimRenewals): it sets their renew_at to their end, as the paid periods would
// have, inserts one claim job, starts a client with config and returns the time from Start
// until every subscription of ids is renewed (renew_at a month on, polled every 200 ms and
// counted from the number already renewed before Start: an earlier phase's or iteration's),
// with timed, the benchmark's timer running for it. claimJob is the claim job inserted: the
// engine's (billing.ClaimRenewalsArgs) or the statement floor's (statementsFloorArgs). The
// claim jobs fan out from the first: each whose chunk was full inserts the next before it
// renews.
func (f *renewBench) claimsWork(b *testing.B, config *river.Config, timed bool, claimJob river.JobArgs, ids []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	f.setRenewAt(b, ids)
	client, err := river.NewClient(riverpgxv5.New(f.pool), config)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.Insert(ctx, claimJob, nil); err != nil {
		b.Fatal(err)
	}
	before := f.renewedByClaims(b) // an earlier phase's or iteration's renewals
	if timed {
		b.StartTimer()
	}
	started := time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stopCtx, stop := context.WithTimeout(ctx, 30*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	}()
	stopBeside := func() {}
	if f.beside != nil {
		besideCtx, stop := context.WithCancel(ctx)
		var beside sync.WaitGroup
		beside.Go(func() { f.beside(besideCtx) })
		stopBeside = func() { stop(); beside.Wait() }
		defer stopBeside()
	}
	deadline := time.Now().Add(10 * time.Minute)
	last, progressed := -1, time.Now()
	for {
		renewed := f.renewedByClaims(b) - before
		if renewed == len(ids) {
			stopBeside() // no command timed after the renewals (at most a poll's 200 ms late)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d renewed after 10 minutes", renewed, len(ids))
		}
		if renewed != last {
			last, progressed = renewed, time.Now()
		} else if time.Since(progressed) > time.Second {
			// A claim that found some rows locked (SKIP LOCKED: a command beside it) took a
			// short chunk and started no next one: claim again, as PeriodicJobs would.
			if _, err := client.Insert(ctx, claimJob, nil); err != nil {
				b.Fatal(err)
			}
			progressed = time.Now()
		}
		time.Sleep(200 * time.Millisecond) // ±100 ms on a phase of seconds; each poll costs the database
	}
	elapsed := time.Since(started)
	if timed {
		b.StopTimer()
	}
	return elapsed
}

// setRenewAt gives ids their renew_at at their period's end (renewAtPeriodEnd) and vacuums
// the table.
func (f *renewBench) setRenewAt(b *testing.B, ids []string) {
	b.Helper()
	f.renewAtPeriodEnd(b, ids)
	if _, err := f.pool.Exec(context.Background(), "VACUUM ANALYZE billing_subscriptions"); err != nil {
		b.Fatal(err)
	}
}

// renewAtPeriodEnd gives ids their renew_at at their period's end, as their paid periods
// would have with claims on.
func (f *renewBench) renewAtPeriodEnd(b *testing.B, ids []string) {
	b.Helper()
	if _, err := f.pool.Exec(context.Background(), `UPDATE billing_subscriptions SET renew_at = current_period_end WHERE id = ANY($1::uuid[])`, ids); err != nil {
		b.Fatal(err)
	}
}

// renewedByClaims counts the subscriptions renewed through claims: a renewed subscription's
// renew_at is its new period's end, a month on; a claimed one's is a lease ahead (minutes).
// One range of billing_subscriptions_renew_idx, where a count of ids by period took 44 ms of
// the database's time a poll. The template is left out; subscriptions renewed by an earlier
// phase count too (claimsWork subtracts them).
func (f *renewBench) renewedByClaims(b *testing.B) int {
	b.Helper()
	var renewed int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM billing_subscriptions WHERE renew_at > $1 AND id <> $2`,
		time.Now().Add(24*time.Hour), f.template).Scan(&renewed); err != nil {
		b.Fatal(err)
	}
	return renewed
}

// clearJobs deletes every River job and vacuums the table, so that each phase starts on
// an empty queue.
func (f *renewBench) clearJobs(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	for _, sql := range []string{"DELETE FROM " + riverJob, "VACUUM ANALYZE " + riverJob} {
		if _, err := f.pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
}

// requireRenewed checks that every subscription of ids is in period 2 and that the gateway
// charged each period 2 once.
func (f *renewBench) requireRenewed(b *testing.B, ids []string) {
	b.Helper()
	f.requirePeriodTwoPaid(b, ids)
	for _, id := range ids[:100] {
		if n := len(f.gateway.ChargesFor(id, 2)); n != 1 {
			b.Fatalf("subscription %s: %d charges for period 2", id, n)
		}
	}
}

// requirePeriodTwoPaid fails the benchmark unless every subscription of ids is active in
// period 2 with one succeeded attempt for it.
func (f *renewBench) requirePeriodTwoPaid(b *testing.B, ids []string) {
	b.Helper()
	var renewed, attempts int
	if err := f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM billing_subscriptions WHERE id = ANY($1::uuid[]) AND current_period = 2 AND status = 'active'),
		(SELECT count(*) FROM billing_payment_attempts WHERE subscription_id = ANY($1::uuid[]) AND period = 2 AND state = 'succeeded')`,
		ids).Scan(&renewed, &attempts); err != nil {
		b.Fatal(err)
	}
	if renewed != len(ids) || attempts != len(ids) {
		b.Fatalf("renewed %d, succeeded attempts %d, of %d", renewed, attempts, len(ids))
	}
}
