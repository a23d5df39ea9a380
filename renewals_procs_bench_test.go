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
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/jobs"
)

// renewBenchProcessEnv names the database a child process of BenchmarkRenewalsProcesses
// works on; TestRenewBenchProcess does nothing without it.
const renewBenchProcessEnv = "BILLING_RENEW_BENCH_PROCESS_DB"

// renewBenchProcessClaimsEnv, set, turns on the renewal claims (Config.ClaimRenewals) of the
// engine of a child process of BenchmarkRenewalsProcesses.
const renewBenchProcessClaimsEnv = "BILLING_RENEW_BENCH_PROCESS_CLAIMS"

// BenchmarkRenewalsProcesses measures renewals/s with 1, 2 and 3 engine processes on one
// PostgreSQL, next to no-op jobs/s on the same processes in the same run, with River's job
// per renewal (processes-N) and with the engine's renewal claims (claims-processes-N,
// Config.ClaimRenewals). Each process is a child running TestRenewBenchProcess: its own pool
// (40 connections), an engine on the system clock with a zero-latency fake gateway, and per
// phase a new River client working the default queue with renewBenchWorkers workers (fast
// fetch, as BenchmarkRenewalsDueAtOnce's fast-fetch case). River elects one leader among
// them for its maintenance; the jobs spread through River's locked fetch (FOR UPDATE SKIP
// LOCKED), and the claims through the claim's (the same).
//
// Each phase is measured as BenchmarkRenewalsDueAtOnce measures one: the jobs are inserted
// with InsertMany while no client runs, then every process starts its client, and the time
// runs from the start until the processes' River events (job completed) add up to every
// job; nothing polls the database meanwhile. With claims, the subscriptions get renew_at at
// their period's end and one claim job is inserted (as the claims case of
// BenchmarkRenewalsDueAtOnce), and the time runs until every subscription is renewed, polled
// on the database every 200 ms. The clients must not run while the queue is
// empty: a client polling an empty, just vacuumed river_job gets a generic plan of its
// fetch made for an empty table (a scan of the whole table per fetch), which then works
// 10 000 no-op jobs at 250–2 100/s instead of ~4 000 (BENCHMARKS.md, "Several processes").
//
// Per iteration (use -benchtime 1x): renewBenchSubscriptions no-op jobs; then as many
// subscriptions whose first period ended a second ago and their renewal jobs (or claim),
// and a check that every one is in period 2 with one attempt for it. Reported: noop_jobs/s,
// renewals/s, their ratio, and, with River's jobs, busiest_share: the largest fraction of the
// renewals one process worked (1/n when they spread evenly; a claim job's renewals are not
// counted per process).
func BenchmarkRenewalsProcesses(b *testing.B) {
	for _, claims := range []bool{false, true} {
		for _, procs := range []int{1, 2, 3} {
			name := fmt.Sprintf("processes-%d", procs)
			if claims {
				name = "claims-" + name
			}
			b.Run(name, func(b *testing.B) { benchRenewalsProcesses(b, procs, claims) })
		}
	}
}

// benchRenewalsProcesses is one case of BenchmarkRenewalsProcesses: procs processes, with
// renewal claims or River's job per renewal.
func benchRenewalsProcesses(b *testing.B, procs int, claims bool) {
	f := newRenewBench(b, 0)
	children := startRenewBenchProcesses(b, f.pool.Config().ConnString(), procs, claims)
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
		elapsed, _ := children.work(b, inserter, false, noopBenchArgs{}.Kind(), func() []river.InsertManyParams {
			params := make([]river.InsertManyParams, renewBenchSubscriptions)
			for j := range params {
				params[j] = river.InsertManyParams{Args: noopBenchArgs{N: j}}
			}
			return params
		})
		noop += elapsed
		f.clearJobs(b)
		ids := f.dueSubscriptions(b, fmt.Sprintf("p%d-it%d-", procs, i))
		if claims {
			renew += children.claims(b, f, inserter, ids)
			f.requireRenewedInDatabase(b, ids)
			continue
		}
		elapsed, share := children.work(b, inserter, true, jobs.RenewArgs{}.Kind(), func() []river.InsertManyParams {
			params := make([]river.InsertManyParams, len(ids))
			for j, id := range ids {
				params[j] = river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: 1, Try: 1}}
			}
			return params
		})
		renew += elapsed
		f.requireRenewedInDatabase(b, ids)
		busiest = max(busiest, share)
	}
	n := float64(b.N * renewBenchSubscriptions)
	noopRate, renewRate := n/noop.Seconds(), n/renew.Seconds()
	b.ReportMetric(noopRate, "noop_jobs/s")
	b.ReportMetric(renewRate, "renewals/s")
	b.ReportMetric(renewRate/noopRate, "renew/noop")
	if !claims {
		b.ReportMetric(busiest, "busiest_share")
	}
}

// TestRenewBenchProcess is a child process of BenchmarkRenewalsProcesses (it does nothing
// in a normal test run). It works River jobs on the database renewBenchProcessEnv names,
// driven by lines on its standard input, and answers on its standard output:
//
//   - it makes a River client (not started) and says "ready";
//   - on "start" it starts the client and says "completed KIND" for each job the client
//     completed, "failed KIND ID" for each that failed;
//   - on "stop" it stops the client, makes the next one and says "ready" again.
//
// It ends when its standard input closes.
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
	// Open every connection now: connecting is no part of what is measured.
	conns := make([]*pgxpool.Conn, poolCfg.MaxConns)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Release()
	}
	claims := os.Getenv(renewBenchProcessClaimsEnv) != ""
	engine, _, workers := renewBenchEngine(t, pool, 0, func(c *billing.Config) { c.ClaimRenewals = claims })

	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = out.WriteString(line + "\n")
		_ = out.Flush()
	}
	commands := bufio.NewScanner(os.Stdin)
	for {
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
		events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
			ChanSize: 2 * renewBenchSubscriptions,
			Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed},
		})
		say("ready")
		if !commands.Scan() { // standard input closed: the benchmark is over
			cancel()
			return
		}
		if cmd := commands.Text(); cmd != "start" {
			t.Fatalf("want start, got %q", cmd)
		}
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		forwarded := make(chan struct{})
		go func() { // the events until the client stops, a write to the parent per burst
			defer close(forwarded)
			for ev := range events {
				outMu.Lock()
				for ok := true; ok; {
					if ev.Kind == river.EventKindJobFailed {
						fmt.Fprintf(out, "failed %s %d\n", ev.Job.Kind, ev.Job.ID)
					} else {
						fmt.Fprintf(out, "completed %s\n", ev.Job.Kind)
					}
					select {
					case ev, ok = <-events:
					default:
						ok = false
					}
				}
				_ = out.Flush()
				outMu.Unlock()
			}
		}()
		more := commands.Scan() // "stop", or the end of the benchmark
		stopCtx, stopCancel := context.WithTimeout(ctx, 30*time.Second)
		err = client.Stop(stopCtx) // closes events
		stopCancel()
		cancel()
		<-forwarded
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
		if cmd := commands.Text(); cmd != "stop" {
			t.Fatalf("want stop, got %q", cmd)
		}
	}
}

// renewBenchProcesses are the child processes of one BenchmarkRenewalsProcesses case.
type renewBenchProcesses struct {
	cmds   []*exec.Cmd
	stdins []io.WriteCloser
	lines  chan renewBenchLine // every child's answers, merged
	ended  int                 // the children whose eof line was read
}

// renewBenchLine is a line a child process wrote; eof: its standard output closed.
type renewBenchLine struct {
	child int
	text  string
	eof   bool
}

// startRenewBenchProcesses starts n child processes working the database at url, with
// renewal claims or without, and waits until each is ready; they stop when the benchmark
// ends. A child's output that is not an answer (a test failure, say) goes to standard error.
func startRenewBenchProcesses(b *testing.B, url string, n int, claims bool) *renewBenchProcesses {
	b.Helper()
	p := &renewBenchProcesses{lines: make(chan renewBenchLine, 4096)}
	b.Cleanup(func() {
		for _, stdin := range p.stdins {
			_ = stdin.Close() // a child stops its client and ends
		}
		deadline := time.After(40 * time.Second)
		for p.ended < len(p.cmds) { // until every child's output is read
			select {
			case l := <-p.lines:
				if l.eof {
					p.ended++
				}
			case <-deadline:
				for _, cmd := range p.cmds {
					_ = cmd.Process.Kill()
				}
				deadline = nil
			}
		}
		for _, cmd := range p.cmds {
			_ = cmd.Wait()
		}
	})
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRenewBenchProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), renewBenchProcessEnv+"="+url)
		if claims {
			cmd.Env = append(cmd.Env, renewBenchProcessClaimsEnv+"=1")
		}
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
		p.cmds = append(p.cmds, cmd)
		p.stdins = append(p.stdins, stdin)
		go func() {
			lines := bufio.NewScanner(stdout)
			for lines.Scan() {
				text := lines.Text()
				switch {
				case text == "ready", strings.HasPrefix(text, "completed "), strings.HasPrefix(text, "failed "):
					p.lines <- renewBenchLine{child: i, text: text}
				case text != "PASS":
					fmt.Fprintf(os.Stderr, "child process %d: %s\n", i, text)
				}
			}
			p.lines <- renewBenchLine{child: i, eof: true}
		}()
	}
	p.waitFor(b, "ready")
	return p
}

// waitFor reads the children's lines until want came as often as there are children (each
// child says it once per request); lines of completed jobs may come before (the end of
// the phase before), and are dropped.
func (p *renewBenchProcesses) waitFor(b *testing.B, want string) {
	b.Helper()
	pending := len(p.stdins)
	timeout := time.After(time.Minute)
	for pending > 0 {
		select {
		case l := <-p.lines:
			if l.eof {
				p.ended++
				b.Fatalf("child process %d ended (waiting for %q)", l.child, want)
			}
			if l.text == want {
				pending--
			}
		case <-timeout:
			b.Fatalf("child processes: %d did not say %q within a minute", pending, want)
		}
	}
}

// send writes the line command to every child.
func (p *renewBenchProcesses) send(b *testing.B, command string) {
	b.Helper()
	for i, stdin := range p.stdins {
		if _, err := io.WriteString(stdin, command+"\n"); err != nil {
			b.Fatalf("child process %d: %v", i, err)
		}
	}
}

// work inserts the jobs params makes through inserter while no child's client runs, then
// starts the children's clients and returns the time from their start until they
// completed every job of kind (the children's River events, as renewBench.work counts
// them), and the largest fraction of those jobs one child completed; with timed, the
// benchmark's timer runs for that time. It then stops the clients, and each child makes
// its next one. A failed job fails the benchmark.
func (p *renewBenchProcesses) work(b *testing.B, inserter *river.Client[pgx.Tx], timed bool, kind string, params func() []river.InsertManyParams) (time.Duration, float64) {
	b.Helper()
	jobParams := params()
	if _, err := inserter.InsertMany(context.Background(), jobParams); err != nil {
		b.Fatal(err)
	}
	completed := make([]int, len(p.stdins))
	if timed {
		b.StartTimer()
	}
	started := time.Now()
	p.send(b, "start")
	timeout := time.After(10 * time.Minute)
	for done := 0; done < len(jobParams); {
		select {
		case l := <-p.lines:
			if l.eof {
				p.ended++
				b.Fatalf("child process %d ended (%d of %d %s jobs completed)", l.child, done, len(jobParams), kind)
			}
			if strings.HasPrefix(l.text, "failed "+kind+" ") {
				b.Fatalf("child process %d: %s", l.child, l.text)
			}
			if l.text == "completed "+kind {
				completed[l.child]++
				done++
			}
		case <-timeout:
			b.Fatalf("%s jobs not done after 10 minutes", kind)
		}
	}
	elapsed := time.Since(started)
	if timed {
		b.StopTimer()
	}
	p.send(b, "stop")
	p.waitFor(b, "ready") // the next phase's clients
	return elapsed, float64(slices.Max(completed)) / float64(len(jobParams))
}

// claims renews ids, whose periods ended, through the children's renewal claims, as
// renewBench.claimsWork does in one process: it sets their renew_at to their end, inserts one
// claim job through inserter while no child's client runs, starts the children's clients and
// returns the time from their start until every subscription of ids is renewed (polled every
// 200 ms), with the benchmark's timer running for it. A failed job fails the benchmark. It
// then stops the clients, and each child makes its next one.
func (p *renewBenchProcesses) claims(b *testing.B, f *renewBench, inserter *river.Client[pgx.Tx], ids []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	f.setRenewAt(b, ids)
	if _, err := inserter.Insert(ctx, billing.ClaimRenewalsArgs(), nil); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	started := time.Now()
	p.send(b, "start")
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	deadline := time.After(10 * time.Minute)
	for renewed := 0; renewed < len(ids); {
		select {
		case l := <-p.lines: // read on, so that no child blocks on its output
			if l.eof {
				p.ended++
				b.Fatalf("child process %d ended (%d of %d renewed)", l.child, renewed, len(ids))
			}
			if strings.HasPrefix(l.text, "failed ") {
				b.Fatalf("child process %d: %s", l.child, l.text)
			}
		case <-poll.C:
			renewed = f.renewedByClaims(b)
		case <-deadline:
			b.Fatalf("%d of %d renewed after 10 minutes", renewed, len(ids))
		}
	}
	elapsed := time.Since(started)
	b.StopTimer()
	p.send(b, "stop")
	p.waitFor(b, "ready")
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
