package crashtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// The environment of a child engine process (TestEngineProcess).
const (
	// envChild marks the test binary run as a child engine process.
	envChild = "BILLING_CRASH_CHILD"
	// envGatewayURL is the URL of the parent's GatewayServer.
	envGatewayURL = "BILLING_CRASH_GATEWAY_URL"
	// envClockOffset is the child's clock offset from the system clock (a Go duration).
	envClockOffset = "BILLING_CRASH_CLOCK_OFFSET"
	// envWorkers is the child's River MaxWorkers.
	envWorkers = "BILLING_CRASH_WORKERS"
	// envPGRestart names the script that crash-restarts PostgreSQL (scripts/pg-tmp.sh).
	envPGRestart = "BILLING_PG_RESTART"
	// envClaims is "1" when the child's engine claims its renewals (Config.ClaimRenewals).
	envClaims = "BILLING_CRASH_CLAIMS"
	// envLease is the child's Config.ClaimLease (a Go duration) when it claims its renewals.
	envLease = "BILLING_CRASH_LEASE"
)

// The children's River timing. River rescues a job whose process died only on its leader,
// every 30 s (not configurable) and once when a client becomes leader, for jobs running for
// longer than rescueAfter; a SIGKILLed leader keeps its lease for up to 15 s.
const (
	jobTimeout  = 2 * time.Second
	rescueAfter = 3 * time.Second
)

const (
	tariffCode  = "crash"
	priceMinor  = int64(10000) // 100.00 RUB
	tariffPrice = 100
)

// offsetClock is the system clock moved by a fixed offset: the children's clock.
type offsetClock struct{ offset time.Duration }

// Now returns the system time plus the offset.
func (c offsetClock) Now() time.Time { return time.Now().Add(c.offset) }

// NowOrNil returns Now, for River's rivertype.TimeGenerator.
func (c offsetClock) NowOrNil() *time.Time {
	now := c.Now()
	return &now
}

// quickRetries retries a failed job soon (50 ms doubling up to 1 s, plus jitter) instead of
// River's attempt^4 seconds, so a job failed by a crash or a PostgreSQL restart runs again
// within the test. A retry this close is made available at once by the executor (no leader
// needed).
type quickRetries struct{ clock rivertype.TimeGenerator }

// NextRetry returns when the job runs again.
func (q quickRetries) NextRetry(job *rivertype.JobRow) time.Time {
	d := min(50*time.Millisecond<<min(max(job.Attempt-1, 0), 5), time.Second)
	return q.clock.Now().Add(d + rand.N(50*time.Millisecond))
}

// TestEngineProcess is the child engine process of TestCrash: TestCrash re-runs the test
// binary with -test.run=^TestEngineProcess$ and BILLING_CRASH_CHILD=1. It runs an engine with
// its own pool and River client until it is killed (SIGKILL) or asked to stop (SIGTERM).
// Outside TestCrash it skips.
func TestEngineProcess(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("the engine process of TestCrash; runs only when TestCrash starts it")
	}
	if err := runEngineProcess(); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest child: FAILED:", err)
		os.Exit(3)
	}
}

// runEngineProcess is a host of the engine, wired as the README says, on the children's
// clock and the parent's HTTP gateway.
func runEngineProcess() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	offset, err := time.ParseDuration(os.Getenv(envClockOffset))
	if err != nil {
		return fmt.Errorf("%s: %w", envClockOffset, err)
	}
	workers, err := strconv.Atoi(os.Getenv(envWorkers))
	if err != nil || workers < 1 {
		return fmt.Errorf("%s=%q: want a positive number", envWorkers, os.Getenv(envWorkers))
	}
	pcfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(workers + 8)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	clock := offsetClock{offset: offset}
	logs := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	cfg := billing.DefaultConfig()
	cfg.Clock = clock
	cfg.Logger = slog.New(logs).With("src", "engine")
	cfg.Gateway = billingtest.HTTPGateway{BaseURL: os.Getenv(envGatewayURL), Client: &http.Client{Timeout: time.Second}}
	cfg.ClaimRenewals = os.Getenv(envClaims) == "1"
	if cfg.ClaimLease, err = time.ParseDuration(os.Getenv(envLease)); err != nil {
		return err
	}
	engine, err := billing.New(pool, cfg)
	if err != nil {
		return err
	}
	ws := river.NewWorkers()
	if err := engine.RegisterWorkers(ws); err != nil {
		return err
	}
	rcfg := &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:              ws,
		PeriodicJobs:         engine.PeriodicJobs(time.Second),
		FetchPollInterval:    50 * time.Millisecond,
		FetchCooldown:        10 * time.Millisecond,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: rescueAfter,
		RetryPolicy:          quickRetries{clock: clock},
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("src", "river"),
	}
	if offset != 0 {
		// Trap: River's rescuer compares attempted_at (from this clock) with the system
		// clock, so with an offset a job of a killed process is never rescued.
		rcfg.Test.Time = clock
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rcfg)
	if err != nil {
		return err
	}
	if err := engine.UseRiver(client); err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start River: %w", err)
	}
	fmt.Fprintln(os.Stderr, "crashtest child: started, pid", os.Getpid())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = client.Stop(stopCtx)
	fmt.Fprintln(os.Stderr, "crashtest child: stopped:", err)
	return err
}

// child is one engine process.
type child struct {
	cmd    *exec.Cmd
	log    string
	done   chan struct{}
	killed bool
}

// fleet runs the child engine processes in slots. Only the test goroutine uses it.
type fleet struct {
	t     *testing.T
	env   []string
	dir   string
	slots []*child
	logs  []string

	starts, kills, unexpected int
}

// start starts a new child in slot i.
func (f *fleet) start(i int) {
	f.t.Helper()
	log := filepath.Join(f.dir, fmt.Sprintf("child-%03d-slot%d.log", f.starts, i))
	out, err := os.Create(log)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineProcess$", "-test.count=1")
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		f.t.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(c.done)
	}()
	f.slots[i] = c
	f.logs = append(f.logs, log)
	f.starts++
}

// kill SIGKILLs the child in slot i and waits until it is gone.
func (f *fleet) kill(i int) {
	c := f.slots[i]
	if c == nil {
		return
	}
	c.killed = true
	_ = c.cmd.Process.Kill()
	<-c.done
	f.slots[i] = nil
	f.kills++
}

// stop asks every child to stop (SIGTERM), and kills those still running after wait.
func (f *fleet) stop(wait time.Duration) {
	for _, c := range f.slots {
		if c != nil {
			c.killed = true
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(wait)
	for i, c := range f.slots {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			f.t.Logf("child %d did not stop within %s: killed", c.cmd.Process.Pid, wait)
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		f.slots[i] = nil
	}
}

// reap restarts the children that exited on their own, and logs why they did.
func (f *fleet) reap() {
	for i, c := range f.slots {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		default:
			continue
		}
		f.unexpected++
		f.t.Logf("child %d (slot %d) exited on its own (%v); its log ends:\n%s", c.cmd.Process.Pid, i, c.cmd.ProcessState, tail(c.log, 8))
		f.start(i)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestCrash is the "kill -9 test": subscriptions whose first period is paid fall due for
// renewal while several engine processes renew them and are killed at random moments, and
// PostgreSQL is crash-restarted. Whatever died, the provider must hold exactly one
// successful charge per subscription period, each in the ledger exactly once, and every
// subscription must end up renewed, with its next renewal job scheduled.
//
// It runs twice, once with River's renewal job per period and once with the renewals claimed
// from the subscriptions table (Config.ClaimRenewals; the children are then also killed
// between a claim and the end of its runs, whose subscriptions wait out the claim's lease
// before the next claim: Config.ClaimLease, BILLING_CRASH_LEASE_SECONDS (5), short, so that
// a subscription is claimed again, and its claimer killed again, many times in the kills).
// BILLING_CRASH_MODE=jobs or claims runs one.
//
// Sizes (environment): BILLING_CRASH_SUBS (60), BILLING_CRASH_SECONDS of kills (6),
// BILLING_CRASH_CHILDREN (3), BILLING_CRASH_WORKERS per child (4), BILLING_CRASH_DELAY_MS, the
// gateway's longest random delay (300); BILLING_CRASH_PG_RESTARTS (1); BILLING_CRASH_LOGDIR
// keeps the children's logs there; BILLING_CRASH_ASYNC_COMMIT=1 (see durableCommits).
// PostgreSQL is restarted when BILLING_PG_RESTART names the restart script
// (scripts/pg-tmp.sh sets it) and no other client uses the server.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts engine processes and kills them; not in -short")
	}
	if os.Getenv(envChild) != "" {
		t.Skip("inside a child engine process")
	}
	mode := os.Getenv("BILLING_CRASH_MODE")
	for _, m := range []string{"jobs", "claims"} {
		if mode == "" || mode == m {
			t.Run(m, func(t *testing.T) { crashRun(t, m == "claims") })
		}
	}
}

// crashRun is one TestCrash, with renewals claimed (claims) or River's renewal jobs.
func crashRun(t *testing.T, claims bool) {
	nSubs := envInt(t, "BILLING_CRASH_SUBS", 60)
	chaosFor := time.Duration(envInt(t, "BILLING_CRASH_SECONDS", 6)) * time.Second
	nChildren := envInt(t, "BILLING_CRASH_CHILDREN", 3)
	workers := envInt(t, "BILLING_CRASH_WORKERS", 4)
	maxDelay := time.Duration(envInt(t, "BILLING_CRASH_DELAY_MS", 300)) * time.Millisecond
	pgRestartsWanted := envInt(t, "BILLING_CRASH_PG_RESTARTS", 1)
	asyncCommit := os.Getenv("BILLING_CRASH_ASYNC_COMMIT") == "1"
	lease := time.Duration(envInt(t, "BILLING_CRASH_LEASE_SECONDS", 5)) * time.Second
	settleFor := 2*time.Minute + chaosFor
	began := time.Now()
	ctx := context.Background()

	pool := billingtest.NewPool(t) // skips without DATABASE_URL
	durableCommits(t, ctx, pool, asyncCommit)

	g := billingtest.NewGateway()
	gs := billingtest.NewGatewayServer(g)
	srv := httptest.NewServer(gs)
	t.Cleanup(srv.Close)
	gw := billingtest.HTTPGateway{BaseURL: srv.URL, Client: &http.Client{Timeout: 5 * time.Second}}

	// Period 1 is paid at t0, one period (a day) and two minutes before now: the children,
	// on the system clock, find every period 1 ended and period 2 due, and period 2 does not
	// end during the test.
	t0 := time.Now().Add(-24*time.Hour - 2*time.Minute).Truncate(time.Second)
	engine, inserter := checkoutEngine(t, pool, billingtest.NewClock(t0), gw, claims)
	// playClaims plays River's periodic scheduler for the claim job (as makeDueAvailable does
	// for scheduled jobs): a child rarely lives long enough to lead.
	playClaims := func() {
		if claims {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, _ = inserter.Insert(ctx, jobs.ClaimRenewalsArgs{}, nil)
		}
	}
	subs := subscribeAndPay(t, ctx, engine, g, nSubs)
	setupDone := time.Now()
	t.Logf("setup: %d subscriptions paid for period 1 at %s in %s", nSubs, t0.Format(time.RFC3339), setupDone.Sub(began).Round(time.Millisecond))

	// The children.
	gs.SetMaxDelay(maxDelay)
	logDir := os.Getenv("BILLING_CRASH_LOGDIR") // to keep the children's logs
	if logDir == "" {
		logDir = t.TempDir()
	}
	f := &fleet{t: t, dir: logDir, slots: make([]*child, nChildren)}
	f.env = append(os.Environ(),
		envChild+"=1",
		"DATABASE_URL="+pool.Config().ConnString(),
		envGatewayURL+"="+srv.URL,
		envClockOffset+"=0s",
		envWorkers+"="+strconv.Itoa(workers),
		envClaims+"="+map[bool]string{false: "0", true: "1"}[claims],
		envLease+"="+lease.String(),
	)
	t.Cleanup(func() {
		for i := range f.slots {
			f.kill(i)
		}
	})
	if claims {
		// Claimed, every due subscription would be renewed by the first claim, in one chunk,
		// before the first kill: here they fall due one after another over the kills instead
		// (renew_at spread over them, as subscriptions paid at different moments fall due), so
		// that kills land in claims, charges and the ends of claims.
		if _, err := pool.Exec(ctx, `UPDATE billing_subscriptions s
			SET renew_at = $1::timestamptz + make_interval(secs => $2::float8 * (k.n - 1) / $3)
			FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM billing_subscriptions) k
			WHERE s.id = k.id`, time.Now(), chaosFor.Seconds(), nSubs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nChildren {
		f.start(i)
	}

	// Chaos: kill a random child every 100-500 ms and start another in its place;
	// crash-restart PostgreSQL pgRestartsWanted times: first when a third of the renewals are
	// done (or a third of the time has passed), the others spread over the rest. The test
	// plays River's scheduler meanwhile (makeDueAvailable); River's rescuer, its periodic jobs
	// (sweeper, reconciliation) and everything else are the children's.
	restartScript := os.Getenv(envPGRestart)
	if restartScript == "" {
		t.Logf("PostgreSQL restart skipped: %s is not set (run under scripts/pg-tmp.sh)", envPGRestart)
	}
	var pgDone chan error
	pgRestarts, pgSkipReason := 0, ""
	chaosStart := time.Now()
	chaosEnd := chaosStart.Add(chaosFor)
	restartDue := func() bool {
		if pgRestarts == 0 {
			renewed, _, _ := progress(ctx, pool)
			return renewed >= nSubs/3 || time.Since(chaosStart) >= chaosFor/3
		}
		return pgRestarts < pgRestartsWanted &&
			time.Since(chaosStart) >= chaosFor/3+time.Duration(pgRestarts)*(chaosFor*2/3)/time.Duration(pgRestartsWanted)
	}
	lastLog := time.Now()
	for time.Now().Before(chaosEnd) {
		time.Sleep(100*time.Millisecond + rand.N(400*time.Millisecond))
		makeDueAvailable(ctx, pool)
		playClaims()
		f.reap()
		i := rand.N(nChildren)
		f.kill(i)
		f.start(i)
		if pgDone != nil {
			select {
			case err := <-pgDone:
				if err != nil {
					t.Fatalf("restart PostgreSQL: %v", err)
				}
				pgDone = nil
				pgRestarts++
			default:
			}
		}
		if restartScript != "" && pgDone == nil && restartDue() {
			if pgSkipReason = otherClients(ctx, pool); pgSkipReason == "" {
				pgDone = make(chan error, 1)
				renewed, _, _ := progress(ctx, pool)
				t.Logf("%s: crash-restarting PostgreSQL (%d of %d renewed)", time.Since(setupDone).Round(time.Millisecond), renewed, nSubs)
				go func() {
					out, err := exec.Command(restartScript).CombinedOutput()
					if err != nil {
						err = fmt.Errorf("%w: %s", err, out)
					}
					pgDone <- err
				}()
			}
		}
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			renewed, _, _ := progress(ctx, pool)
			states, err := renewJobStates(ctx, pool) // fails while PostgreSQL restarts
			t.Logf("%s: %d of %d renewed, %d kills; period-1 renew jobs by state: %v %v", time.Since(setupDone).Round(time.Millisecond), renewed, nSubs, f.kills, states, err)
		}
	}
	if pgDone != nil {
		if err := <-pgDone; err != nil {
			t.Fatalf("restart PostgreSQL: %v", err)
		}
		pgRestarts++
	}
	if restartScript != "" && pgRestarts < pgRestartsWanted {
		t.Logf("PostgreSQL restarted %d of %d times; skipped: %s", pgRestarts, pgRestartsWanted, pgSkipReason)
	}
	f.reap()
	chaosDone := time.Now()
	renewedInChaos, _, _ := progress(ctx, pool)

	// Settle: the last children stop; after rescueAfter every job a killed child left running
	// is rescuable, and a fresh set of children, one of which becomes River's leader, finishes
	// the work.
	f.stop(15 * time.Second)
	time.Sleep(rescueAfter + time.Second)
	for i := range nChildren {
		f.start(i)
	}
	if claims {
		settleFor += lease // a claim a child died in waits for its lease to end
	}
	settleDeadline := time.Now().Add(settleFor)
	var renewed, open int
	dumped := false
	for {
		var err error
		renewed, open, err = progress(ctx, pool)
		if err == nil && renewed == nSubs && open == 0 {
			break
		}
		if time.Now().After(settleDeadline) {
			t.Errorf("not quiescent after %s: %d of %d subscriptions active in period 2, %d attempts open (err %v)", settleFor, renewed, nSubs, open, err)
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			if open > 0 && !dumped && time.Since(chaosDone) > 20*time.Second {
				dumped = true
				dumpOpen(ctx, t, pool, g)
			}
			states, err := renewJobStates(ctx, pool)
			t.Logf("settling, %s: %d of %d renewed, %d attempts open; period-1 renew jobs by state: %v %v",
				time.Since(chaosDone).Round(time.Millisecond), renewed, nSubs, open, states, err)
		}
		f.reap()
		playClaims()
		time.Sleep(200 * time.Millisecond)
	}
	settled := time.Now()
	jobStates, err := renewJobStates(ctx, pool)
	if err != nil {
		t.Errorf("renew jobs: %v", err)
	}
	f.stop(15 * time.Second)
	srv.Close() // waits for the gateway calls still in flight: the provider's record is final
	stopped := time.Now()

	calls := g.Calls()
	t.Logf("figures: %d subscriptions, %d children × %d workers, %d child starts, %d kills (SIGKILL), %d unexpected child exits, %d PostgreSQL restarts",
		nSubs, nChildren, workers, f.starts, f.kills, f.unexpected, pgRestarts)
	t.Logf("figures: %d renewed during %s of kills, all %d by %s later; setup %s, total %s",
		renewedInChaos, chaosDone.Sub(setupDone).Round(time.Millisecond), renewed, settled.Sub(chaosDone).Round(time.Millisecond),
		setupDone.Sub(began).Round(time.Millisecond), stopped.Sub(began).Round(time.Millisecond))
	t.Logf("figures: gateway calls: %d Charge, %d Lookup; succeeded charges at the provider: %d; period-1 renew jobs by state: %v",
		calls.Charge, calls.Lookup, len(g.Charges()), jobStates)

	checkOutcome(t, ctx, pool, engine, g, subs, claims)
	checkChildLogs(t, f.logs)
}

// checkoutEngine is the parent's engine, on clock, charging through gw. Its River client only
// inserts (it works no jobs) and runs on the system clock, so jobs due before now are
// available at once.
func checkoutEngine(t *testing.T, pool *pgxpool.Pool, clock *billingtest.Clock, gw payment.Gateway, claims bool) (*billing.Engine, *river.Client[pgx.Tx]) {
	t.Helper()
	cfg := billing.DefaultConfig()
	cfg.Clock = clock
	cfg.Gateway = gw
	cfg.ClaimRenewals = claims
	engine, err := billing.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws := river.NewWorkers()
	if err := engine.RegisterWorkers(ws); err != nil {
		t.Fatal(err)
	}
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: ws})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.UseRiver(inserter); err != nil {
		t.Fatal(err)
	}
	return engine, inserter
}

// subscribeAndPay publishes a one-day tariff and makes n subscriptions with a saved card
// each, their first period charged through the gateway. It returns their ids.
func subscribeAndPay(t *testing.T, ctx context.Context, engine *billing.Engine, g *billingtest.Gateway, n int) []string {
	t.Helper()
	if _, err := engine.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: tariffCode, Name: "Crash",
		Price: decimal.NewFromInt(tariffPrice), Period: tariff.Period{Count: 1, Unit: tariff.Day},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 100}}}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sub, err := engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: fmt.Sprintf("cust-%05d", i),
				TariffCode: tariffCode, PaymentMethod: fmt.Sprintf("tok-crash-%05d", i), IdempotencyKey: fmt.Sprintf("checkout-%05d", i)})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = sub.ID
			res, err := engine.ChargeFirstPayment(ctx, sub.ID)
			if err == nil && (res.Subscription.Status != subscription.StatusActive || res.Subscription.Current == nil || res.Subscription.Current.Number != 1) {
				err = fmt.Errorf("subscription %s after its first payment: %s, attempt %s", sub.ID, res.Subscription.Status, res.Attempt.State)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("checkout: %v", err)
	}
	if got := len(g.Charges()); got != n {
		t.Fatalf("checkout: %d charges at the provider, want %d", got, n)
	}
	return ids
}

// durableCommits makes every new session on the test's database commit synchronously
// (synchronous_commit = on), unless async is set. scripts/pg-tmp.sh runs PostgreSQL with
// synchronous_commit = off, which acknowledges a commit before its WAL is written: a
// crash-restart (pg_ctl -m immediate) then loses the commits of the last few hundred
// milliseconds that the engine and River were told had succeeded, which a production server
// (synchronous_commit = on) never does. BILLING_CRASH_ASYNC_COMMIT=1 keeps them off, to see
// what the engine makes of lost commits.
func durableCommits(t *testing.T, ctx context.Context, pool *pgxpool.Pool, async bool) {
	t.Helper()
	setting := "on"
	if async {
		setting = "off"
	}
	var name string
	if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET synchronous_commit = %s", pgx.Identifier{name}.Sanitize(), setting)); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // the parent's sessions too
	t.Logf("synchronous_commit = %s on the test database", setting)
}

// makeDueAvailable does the work of River's job scheduler while children are being killed:
// it makes the scheduled and retryable jobs that are due available (as billingtest.Runner
// does). River runs its scheduler only on its leader, every 5 s; a child killed every few
// hundred ms rarely lives long enough to lead, and a killed leader holds its lease for up to
// 15 s, so without this the jobs would mostly wait out the kills. Errors (PostgreSQL
// restarting) are ignored: the next call does it.
func makeDueAvailable(ctx context.Context, pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, _ = pool.Exec(ctx, `UPDATE river_job SET state = 'available'
		WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= now()`)
}

// dumpOpen logs each open attempt with its subscription, its River jobs and what the provider
// holds for its period: what a stuck renewal looks like.
func dumpOpen(ctx context.Context, t *testing.T, pool *pgxpool.Pool, g *billingtest.Gateway) {
	t.Helper()
	type openAttempt struct {
		id, sub, state, key, status string
		period, number, current     int
		created                     time.Time
	}
	rows, err := pool.Query(ctx, `SELECT a.id::text, a.subscription_id::text, a.state, a.idempotency_key, s.status,
			a.period, a.number, coalesce(s.current_period, 0), a.created_at
		FROM billing_payment_attempts a JOIN billing_subscriptions s ON s.id = a.subscription_id
		WHERE a.state IN ('created', 'unknown', 'pending') ORDER BY a.created_at LIMIT 10`)
	if err != nil {
		t.Logf("dump open attempts: %v", err)
		return
	}
	var open []openAttempt
	for rows.Next() {
		var a openAttempt
		if err := rows.Scan(&a.id, &a.sub, &a.state, &a.key, &a.status, &a.period, &a.number, &a.current, &a.created); err != nil {
			t.Logf("dump open attempts: %v", err)
			return
		}
		open = append(open, a)
	}
	rows.Close()
	for _, a := range open {
		t.Logf("open attempt %s: subscription %s period %d #%d %s (key %s) created %s ago; subscription %s in period %d; provider holds %s",
			a.id, a.sub, a.period, a.number, a.state, a.key, time.Since(a.created).Round(time.Millisecond), a.status, a.current,
			describeCharges(g.ChargesFor(a.sub, a.period)))
		jobs, err := pool.Query(ctx, `SELECT id, kind, args::text, state::text, attempt, coalesce(attempted_at::text, ''),
				coalesce(finalized_at::text, ''), scheduled_at::text, errors::text
			FROM river_job WHERE args->>'subscription_id' = $1 ORDER BY id`, a.sub)
		if err != nil {
			t.Logf("dump jobs: %v", err)
			continue
		}
		for jobs.Next() {
			var id int64
			var attempt int
			var kind, args, state, attemptedAt, finalizedAt, scheduledAt string
			var errs *string
			if err := jobs.Scan(&id, &kind, &args, &state, &attempt, &attemptedAt, &finalizedAt, &scheduledAt, &errs); err != nil {
				t.Logf("dump jobs: %v", err)
				break
			}
			e := ""
			if errs != nil {
				e = *errs
			}
			t.Logf("  job %d %s %s: %s, attempt %d, attempted %s, finalized %s, scheduled %s, errors %.600s",
				id, kind, args, state, attempt, attemptedAt, finalizedAt, scheduledAt, e)
		}
		jobs.Close()
	}
}

// progress returns how many subscriptions are active in period 2 and how many charge
// attempts are open (created, unknown, pending).
func progress(ctx context.Context, pool *pgxpool.Pool) (renewed, open int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM billing_subscriptions WHERE status = 'active' AND current_period = 2),
		(SELECT count(*) FROM billing_payment_attempts WHERE state IN ('created', 'unknown', 'pending'))`).Scan(&renewed, &open)
	return renewed, open, err
}

// otherClients returns why PostgreSQL must not be restarted now: another test binary's
// database or client session on the server (make test runs packages in parallel on one
// server). "" when only this test uses it.
func otherClients(ctx context.Context, pool *pgxpool.Pool) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var sessions, databases int
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
			AND datname IS NOT NULL AND datname <> current_database()),
		(SELECT count(*) FROM pg_database WHERE datname LIKE 'billingtest\_%' AND NOT datistemplate
			AND datname <> current_database())`).Scan(&sessions, &databases)
	switch {
	case err != nil:
		return "cannot tell whether other tests use the server: " + err.Error()
	case sessions > 0 || databases > 0:
		return fmt.Sprintf("other tests use the server (%d sessions on other databases, %d other test databases)", sessions, databases)
	}
	return ""
}

// renewJobStates counts the billing_renew jobs of period 1 by River state.
func renewJobStates(ctx context.Context, pool *pgxpool.Pool) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT state::text, count(*) FROM river_job
		WHERE kind = 'billing_renew' AND (args->>'period')::int = 1 GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}

// checkOutcome checks the invariants once every process is gone: per subscription and
// period one successful charge at the provider, one succeeded attempt naming it, one ledger
// posting of it; the ledger's provider cash equal to what the provider charged; a zero
// trial balance; every subscription active in period 2 with the renewal of period 2
// scheduled at its end.
func checkOutcome(t *testing.T, ctx context.Context, pool *pgxpool.Pool, engine *billing.Engine, g *billingtest.Gateway, subs []string, claims bool) {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// The ledger's provider cash postings, by provider payment id.
	entries, err := engine.Ledger().EntryList(ctx, ledger.ProviderCash.Code("RUB"))
	if err != nil {
		t.Fatal(err)
	}
	posted := map[string][]billing.LedgerEntry{}
	for _, e := range entries {
		posted[e.Ref.ID] = append(posted[e.Ref.ID], e)
	}

	var charged int64
	allCharges := g.Charges()
	type subPeriod struct{ sub, period string }
	byPeriod := map[subPeriod][]billingtest.Charge{}
	for _, c := range allCharges {
		k := subPeriod{c.Metadata[billingtest.MetadataSubscriptionID], c.Metadata[billingtest.MetadataPeriod]}
		byPeriod[k] = append(byPeriod[k], c)
	}
	for _, c := range allCharges {
		charged += c.Amount
		got := posted[c.ProviderPaymentID]
		if len(got) != 1 || got[0].Posting.Side != ledger.Debit || got[0].Posting.Amount != c.Amount || got[0].Ref.Kind != ledger.RefPayment {
			report("provider charge %s (key %s, subscription %s, period %s, %d): %d ledger postings on provider cash %v, want one debit of the amount",
				c.ProviderPaymentID, c.IdempotencyKey, c.Metadata[billingtest.MetadataSubscriptionID], c.Metadata[billingtest.MetadataPeriod], c.Amount, len(got), got)
		}
		delete(posted, c.ProviderPaymentID)
	}
	for id, es := range posted {
		report("ledger postings on provider cash for %q, which the provider does not hold as a successful charge: %v", id, es)
	}
	if want := 2 * len(subs); len(allCharges) != want {
		report("the provider holds %d successful charges, want %d (2 periods × %d subscriptions)", len(allCharges), want, len(subs))
	}

	bal, err := engine.Ledger().Balance(ctx, ledger.ProviderCash.Code("RUB"), time.Now().Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if bal.Net() != charged {
		report("ledger provider cash %d ≠ %d charged at the provider", bal.Net(), charged)
	}
	if _, err := engine.Ledger().TrialBalance(ctx); err != nil {
		report("trial balance: %v", err)
	}

	scheduled, err := scheduledRenewals(ctx, pool, claims)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range subs {
		sub, err := engine.SubscriptionGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		attempts, err := engine.AttemptList(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for period := 1; period <= 2; period++ {
			charges := byPeriod[subPeriod{id, strconv.Itoa(period)}] // g.ChargesFor(id, period), indexed once
			var succeeded []payment.Attempt
			for _, a := range attempts {
				if a.PeriodNumber == period && a.State == payment.StateSucceeded {
					succeeded = append(succeeded, a)
				}
			}
			if len(charges) != 1 || len(succeeded) != 1 || succeeded[0].ProviderPaymentID != charges[0].ProviderPaymentID ||
				succeeded[0].IdempotencyKey != charges[0].IdempotencyKey {
				report("subscription %s period %d: %d successful charges at the provider %s, %d succeeded attempts; status %s, %s; attempts %s",
					id, period, len(charges), describeCharges(charges), len(succeeded), sub.Status, describePeriod(sub), describeAttempts(attempts))
			}
		}
		for _, a := range attempts {
			if !a.State.Settled() {
				report("subscription %s: attempt %s (period %d #%d) still %s", id, a.ID, a.PeriodNumber, a.Number, a.State)
			}
		}
		if sub.Status != subscription.StatusActive || sub.Current == nil || sub.Current.Number != 2 {
			report("subscription %s stuck: status %s, %s; attempts %s", id, sub.Status, describePeriod(sub), describeAttempts(attempts))
			continue
		}
		if at, ok := scheduled[id]; !ok || !at.Equal(sub.Current.End) {
			report("subscription %s in period 2 (ends %s) has no renewal job scheduled at its end (found: %v at %s)", id,
				sub.Current.End.Format(time.RFC3339), ok, at.Format(time.RFC3339))
		}
	}

	t.Logf("figures: ledger provider cash %d = %d charged at the provider in %d charges", bal.Net(), charged, len(allCharges))
	if len(problems) > 0 {
		const show = 25
		t.Errorf("%d problems; the first %d:\n%s", len(problems), min(show, len(problems)), strings.Join(problems[:min(show, len(problems))], "\n"))
	}
}

// scheduledRenewals returns, per subscription, when the renewal job of period 2 (attempt 1)
// is scheduled, for the jobs still to run; with claims, the subscription's renew_at (and
// an error when any renewal job was inserted: with claims there must be none).
func scheduledRenewals(ctx context.Context, pool *pgxpool.Pool, claims bool) (map[string]time.Time, error) {
	q := `SELECT args->>'subscription_id', scheduled_at FROM river_job
		WHERE kind = 'billing_renew' AND (args->>'period')::int = 2 AND state IN ('scheduled', 'available')`
	if claims {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'billing_renew'`).Scan(&n); err != nil || n > 0 {
			return nil, fmt.Errorf("%d renewal jobs with claims on (%v)", n, err)
		}
		q = `SELECT id::text, renew_at FROM billing_subscriptions WHERE renew_at IS NOT NULL`
	}
	rows, err := pool.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = at
	}
	return out, rows.Err()
}

// describeCharges lists charges as "pay_N key" for a failure message.
func describeCharges(cs []billingtest.Charge) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.ProviderPaymentID + " " + c.IdempotencyKey
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// describeAttempts lists attempts as "p2#1 succeeded pay_N" for a failure message.
func describeAttempts(as []payment.Attempt) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("p%d#%d %s %s %s", a.PeriodNumber, a.Number, a.State, a.ProviderPaymentID, a.IdempotencyKey)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// describePeriod names a subscription's current period.
func describePeriod(sub subscription.Subscription) string {
	if sub.Current == nil {
		return "no period"
	}
	return fmt.Sprintf("period %d to %s", sub.Current.Number, sub.Current.End.Format(time.RFC3339))
}

// checkChildLogs fails the test on a data race or a panic in a child, and reports the
// engine's error logs (a charge that landed on a canceled attempt, say) and how many
// errors River logged.
func checkChildLogs(t *testing.T, logs []string) {
	t.Helper()
	var races, panics, riverErrors int
	engineErrors := map[string]int{}
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.Contains(line, "WARNING: DATA RACE"):
				races++
				t.Errorf("data race in a child, see %s", path)
			case strings.HasPrefix(line, "panic:"):
				panics++
				t.Errorf("panic in a child: %s (%s)", line, path)
			case strings.Contains(line, "level=ERROR") && strings.Contains(line, "src=engine"):
				engineErrors[msgOf(line)]++
			case strings.Contains(line, "level=ERROR") && strings.Contains(line, "src=river"):
				riverErrors++
			}
		}
		f.Close()
	}
	msgs := make([]string, 0, len(engineErrors))
	for m, n := range engineErrors {
		msgs = append(msgs, fmt.Sprintf("%d× %s", n, m))
	}
	slices.Sort(msgs)
	t.Logf("figures: child logs: %d races, %d panics, %d River error lines, engine error logs: %v", races, panics, riverErrors, msgs)
}

// msgOf returns the msg="…" of a slog text line.
func msgOf(line string) string {
	_, rest, ok := strings.Cut(line, `msg="`)
	if !ok {
		return line
	}
	msg, _, _ := strings.Cut(rest, `"`)
	return msg
}
