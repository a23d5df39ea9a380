package billing_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing/internal/jobs"
)

// renewBenchProcessEnv names the database a child process of BenchmarkRenewalsProcesses
// works on; TestRenewBenchProcess does nothing without it.
const renewBenchProcessEnv = "BILLING_RENEW_BENCH_PROCESS_DB"

// BenchmarkRenewalsProcesses measures renewals/s with 1, 2 and 3 engine processes on one
// PostgreSQL, next to no-op jobs/s on the same processes in the same run. Each process is
// a child running TestRenewBenchProcess: its own pool (40 connections), an engine on the
// system clock with a zero-latency fake gateway, and a River client working the default
// queue with renewBenchWorkers workers (fast fetch, as BenchmarkRenewalsDueAtOnce's
// fast-fetch case). River elects one leader among them for its maintenance; the jobs
// spread through River's locked fetch (FOR UPDATE SKIP LOCKED).
//
// Per iteration (use -benchtime 1x): insert renewBenchSubscriptions no-op jobs with
// InsertMany and time until the processes completed them all (insert included); then
// the same for as many subscriptions whose first period ended a second ago and their
// renewal jobs, and check every one is in period 2 with one succeeded attempt. Reported:
// noop_jobs/s, renewals/s, their ratio, and busiest_share: the largest fraction of the
// renewals one process worked (1/n when they spread evenly).
func BenchmarkRenewalsProcesses(b *testing.B) {
	for _, procs := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("processes-%d", procs), func(b *testing.B) {
			f := newRenewBench(b, 0)
			startRenewBenchProcesses(b, f.pool.Config().ConnString(), procs)
			inserter, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			var noop, renew time.Duration
			var busiest float64
			b.StopTimer()
			b.ResetTimer()
			for i := range b.N {
				f.clearJobs(b)
				noop += f.workOnProcesses(b, inserter, false, noopBenchArgs{}.Kind(), func() []river.InsertManyParams {
					params := make([]river.InsertManyParams, renewBenchSubscriptions)
					for j := range params {
						params[j] = river.InsertManyParams{Args: noopBenchArgs{N: j}}
					}
					return params
				})
				f.clearJobs(b)
				ids := f.dueSubscriptions(b, fmt.Sprintf("p%d-it%d-", procs, i))
				renew += f.workOnProcesses(b, inserter, true, jobs.RenewArgs{}.Kind(), func() []river.InsertManyParams {
					params := make([]river.InsertManyParams, len(ids))
					for j, id := range ids {
						params[j] = river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: 1, Try: 1}}
					}
					return params
				})
				f.requireRenewedInDatabase(b, ids)
				busiest = max(busiest, f.busiestShare(b, jobs.RenewArgs{}.Kind()))
			}
			n := float64(b.N * renewBenchSubscriptions)
			noopRate, renewRate := n/noop.Seconds(), n/renew.Seconds()
			b.ReportMetric(noopRate, "noop_jobs/s")
			b.ReportMetric(renewRate, "renewals/s")
			b.ReportMetric(renewRate/noopRate, "renew/noop")
			b.ReportMetric(busiest, "busiest_share")
		})
	}
}

// TestRenewBenchProcess is a child process of BenchmarkRenewalsProcesses (it does nothing
// in a normal test run): it works River jobs on the database renewBenchProcessEnv names
// until its standard input closes.
func TestRenewBenchProcess(t *testing.T) {
	url := os.Getenv(renewBenchProcessEnv)
	if url == "" {
		t.Skip("a child of BenchmarkRenewalsProcesses")
	}
	ctx := context.Background()
	poolCfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	poolCfg.MaxConns = 2 * renewBenchWorkers
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	engine, _, workers := renewBenchEngine(t, pool, 0)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: renewBenchWorkers}},
		Workers:           workers,
		FetchCooldown:     river.FetchCooldownMin,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.UseRiver(client); err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
}

// startRenewBenchProcesses starts n child processes working the database at url and waits
// until each says it is ready; they stop when the benchmark ends.
func startRenewBenchProcesses(b *testing.B, url string, n int) {
	b.Helper()
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRenewBenchProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), renewBenchProcessEnv+"="+url)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = stdin.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		lines := bufio.NewScanner(stdout)
		ready := false
		for lines.Scan() {
			if strings.TrimSpace(lines.Text()) == "ready" {
				ready = true
				break
			}
		}
		if !ready {
			b.Fatalf("child process %d ended before it was ready", cmd.Process.Pid)
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
	}
}

// workOnProcesses inserts the jobs params makes through inserter and returns the time from
// before the insert until every job of kind completed, worked by the child processes; with
// timed, the benchmark's timer runs for that time. A job that failed fails the benchmark.
func (f *renewBench) workOnProcesses(b *testing.B, inserter *river.Client[pgx.Tx], timed bool, kind string, params func() []river.InsertManyParams) time.Duration {
	b.Helper()
	ctx := context.Background()
	p := params()
	if timed {
		b.StartTimer()
	}
	started := time.Now()
	if _, err := inserter.InsertMany(ctx, p); err != nil {
		b.Fatal(err)
	}
	deadline := started.Add(10 * time.Minute)
	for {
		var completed, failed int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed'),
			count(*) FILTER (WHERE state IN ('retryable', 'discarded', 'cancelled'))
			FROM `+riverJob+` WHERE kind = $1`, kind).Scan(&completed, &failed); err != nil {
			b.Fatal(err)
		}
		if failed > 0 {
			b.Fatalf("%d %s jobs failed", failed, kind)
		}
		if completed >= len(p) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s jobs: %d of %d completed after 10 minutes", kind, completed, len(p))
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(started)
	if timed {
		b.StopTimer()
	}
	return elapsed
}

// requireRenewedInDatabase checks that every subscription of ids is active in period 2
// with exactly one succeeded attempt for it (the gateways live in the child processes).
func (f *renewBench) requireRenewedInDatabase(b *testing.B, ids []string) {
	b.Helper()
	var renewed, attempts int
	if err := f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM billing_subscriptions WHERE id = ANY($1::uuid[]) AND current_period = 2 AND status = 'active'),
		(SELECT count(*) FROM billing_payment_attempts WHERE subscription_id = ANY($1::uuid[]) AND period = 2)`,
		ids).Scan(&renewed, &attempts); err != nil {
		b.Fatal(err)
	}
	if renewed != len(ids) || attempts != len(ids) {
		b.Fatalf("renewed %d, attempts for period 2 %d, of %d", renewed, attempts, len(ids))
	}
}

// busiestShare is the largest fraction of the completed jobs of kind that one River client
// (one process) worked.
func (f *renewBench) busiestShare(b *testing.B, kind string) float64 {
	b.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT count(*) FROM `+riverJob+`
		WHERE kind = $1 AND state = 'completed' GROUP BY attempted_by[array_length(attempted_by, 1)]`, kind)
	if err != nil {
		b.Fatal(err)
	}
	var counts []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			b.Fatal(err)
		}
		counts = append(counts, n)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	return float64(slices.Max(counts)) / float64(total)
}
