package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// The fault-injection kit of renewals_fault_test.go: a gateway wrapper that fails around
// the provider call, and database triggers that fail the engine's transactions at named
// points. A "crash" is a fault that keeps a step's transaction from committing: the
// process dying there leaves the database exactly as the rolled-back transaction does, and
// the River job's retry is what runs next in both cases.

// errInjected is the error a faultGateway returns for an injected failure. The engine must
// take it as "outcome unknown", like any error from Charge (payment.Gateway's contract).
var errInjected = errors.New("fault injection: connection to the provider lost")

// faultGateway wraps billingtest.Gateway (which keeps the money and the records) and
// injects failures around the engine's calls: per payment-method token, a queue of
// chargeFaults played by the next Charge calls (deduplicated ones included); per
// subscription, a number of Lookup calls that fail.
type faultGateway struct {
	*billingtest.Gateway

	mu      sync.Mutex
	charges map[string][]chargeFault // by payment-method token
	lookups map[string]int           // failures left, by subscription id
	keys    map[string]string        // subscription id by gateway key, from the charges seen
}

// chargeFault is what one Charge call does around the provider. before runs first; when it
// returns an error the call never reaches the provider and returns it. Otherwise the call
// is forwarded, then after runs; its error replaces the provider's answer (the charge
// happened, the engine does not hear of it). Either may be nil; before and after may call
// the engine (a duplicate run inside the call).
type chargeFault struct {
	name          string
	before, after func(ctx context.Context) error
}

// failBeforeCharge: the request never reaches the provider; the engine gets an error.
var failBeforeCharge = chargeFault{name: "fail before the call", before: func(context.Context) error { return errInjected }}

// failAfterCharge: the provider charges; the engine gets an error instead of the answer.
var failAfterCharge = chargeFault{name: "fail after the call", after: func(context.Context) error { return errInjected }}

func newFaultGateway(inner *billingtest.Gateway) *faultGateway {
	return &faultGateway{Gateway: inner, charges: map[string][]chargeFault{}, lookups: map[string]int{}, keys: map[string]string{}}
}

// faultCharges queues faults for the next Charge calls of token.
func (g *faultGateway) faultCharges(token string, faults ...chargeFault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.charges[token] = append(g.charges[token], faults...)
}

// failLookups makes the next n Lookups of subscription subID's keys fail with
// billingtest.ErrUnavailable ("ask again later").
func (g *faultGateway) failLookups(subID string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lookups[subID] += n
}

// Charge plays the next fault queued for req's token around the provider's Charge.
func (g *faultGateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	g.mu.Lock()
	g.keys[req.IdempotencyKey] = req.Metadata[billingtest.MetadataSubscriptionID]
	var f chargeFault
	if q := g.charges[req.PaymentMethod]; len(q) > 0 {
		f, g.charges[req.PaymentMethod] = q[0], q[1:]
	}
	g.mu.Unlock()
	if f.before != nil {
		if err := f.before(ctx); err != nil {
			return payment.ChargeResult{}, err
		}
	}
	res, err := g.Gateway.Charge(ctx, req)
	if f.after != nil {
		if ferr := f.after(ctx); ferr != nil {
			return payment.ChargeResult{}, ferr
		}
	}
	return res, err
}

// Lookup fails while failures are queued for the key's subscription, else asks the provider.
func (g *faultGateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	g.mu.Lock()
	sub := g.keys[req.IdempotencyKey] // keys are random: only a key charged before names its subscription
	fail := g.lookups[sub] > 0
	if fail {
		g.lookups[sub]--
	}
	g.mu.Unlock()
	if fail {
		return payment.ChargeResult{}, billingtest.ErrUnavailable
	}
	return g.Gateway.Lookup(ctx, req)
}

// faultPoint names a place in the engine's transactions where a trigger can raise an error.
type faultPoint string

// The fault points, by step of the charge protocol.
const (
	// atAttemptInsert: step 1, the INSERT of a renewal attempt.
	atAttemptInsert faultPoint = "attempt_insert"
	// atAttemptCommit: step 1, the COMMIT of that INSERT (a deferred constraint trigger).
	atAttemptCommit faultPoint = "attempt_commit"
	// atOutcomeUpdate: step 3, the UPDATE that records the gateway's answer, first write of
	// the transaction.
	atOutcomeUpdate faultPoint = "attempt_update"
	// atPeriodInsert: step 3, the INSERT of the renewed period (number ≥ 2).
	atPeriodInsert faultPoint = "period_insert"
	// atLedgerInsert: step 3, the ledger transaction of the payment.
	atLedgerInsert faultPoint = "ledger_insert"
	// atRenewJobInsert: step 3, the INSERT of a renewal job (the next period's, or a
	// dunning retry's).
	atRenewJobInsert faultPoint = "renew_job_insert"
	// atSettleCommit: step 3, the COMMIT of the transaction that recorded the answer.
	atSettleCommit faultPoint = "settle_commit"
)

// faultPointsSQL installs the triggers. Each counts its calls for an armed subscription on
// a sequence of its own (sequences are not transactional, so a rolled-back call still
// counts) and raises on calls skip+1 … skip+times.
var faultPointsSQL = `
CREATE TABLE billingtest_faults (
    point text NOT NULL, subscription_id text NOT NULL, seq text NOT NULL,
    skip int NOT NULL, times int NOT NULL, sqlstate text NOT NULL);

CREATE FUNCTION billingtest_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    j jsonb := to_jsonb(NEW);
    sub text := coalesce(j->>'subscription_id', nullif(split_part(j->>'period_id', '/', 1), ''), j->'args'->>'subscription_id');
    f record;
    n bigint;
BEGIN
    FOR f IN SELECT * FROM billingtest_faults WHERE point = TG_ARGV[0] AND subscription_id = sub LOOP
        n := nextval(f.seq::regclass);
        IF n > f.skip AND n <= f.skip + f.times THEN
            RAISE EXCEPTION 'billingtest: injected fault at % (call %)', TG_ARGV[0], n USING ERRCODE = f.sqlstate;
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER billingtest_attempt_insert BEFORE INSERT ON billing_payment_attempts
    FOR EACH ROW WHEN (NEW.purpose = 'renewal') EXECUTE FUNCTION billingtest_fault('attempt_insert');
CREATE CONSTRAINT TRIGGER billingtest_attempt_commit AFTER INSERT ON billing_payment_attempts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.purpose = 'renewal') EXECUTE FUNCTION billingtest_fault('attempt_commit');
CREATE TRIGGER billingtest_attempt_update BEFORE UPDATE ON billing_payment_attempts
    FOR EACH ROW WHEN (NEW.purpose = 'renewal') EXECUTE FUNCTION billingtest_fault('attempt_update');
CREATE CONSTRAINT TRIGGER billingtest_settle_commit AFTER UPDATE ON billing_payment_attempts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.purpose = 'renewal') EXECUTE FUNCTION billingtest_fault('settle_commit');
CREATE TRIGGER billingtest_period_insert BEFORE INSERT ON billing_periods
    FOR EACH ROW WHEN (NEW.number >= 2) EXECUTE FUNCTION billingtest_fault('period_insert');
CREATE TRIGGER billingtest_ledger_insert BEFORE INSERT ON billing_ledger_transactions
    FOR EACH ROW WHEN (NEW.ref_kind = 'payment') EXECUTE FUNCTION billingtest_fault('ledger_insert');
CREATE TRIGGER billingtest_renew_job_insert BEFORE INSERT ON ` + riverJob + `
    FOR EACH ROW WHEN (NEW.kind = 'billing_renew') EXECUTE FUNCTION billingtest_fault('renew_job_insert');
`

// dbFault is one armed fault: calls skip+1 … skip+times of point for the subscription fail
// with SQLSTATE sqlstate ("P0001", a plain error, unless set; "40001" is a serialization
// failure, which the engine's transaction helper retries in place).
type dbFault struct {
	point       faultPoint
	skip, times int
	sqlstate    string
}

var faultSeq atomic.Int64

// armDBFault arms f for subscription subID.
func armDBFault(t require.TestingT, pool *pgxpool.Pool, subID string, f dbFault) {
	helper(t)
	ctx := context.Background()
	if f.sqlstate == "" {
		f.sqlstate = "P0001"
	}
	seq := fmt.Sprintf("billingtest_fault_seq_%d", faultSeq.Add(1))
	_, err := pool.Exec(ctx, "CREATE SEQUENCE "+seq)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO billingtest_faults (point, subscription_id, seq, skip, times, sqlstate)
		VALUES ($1, $2, $3, $4, $5, $6)`, string(f.point), subID, seq, f.skip, f.times, f.sqlstate)
	require.NoError(t, err)
}

// faultBundle is a renewal test bundle whose gateway and database can fail on command,
// with the River client that works the jobs.
type faultBundle struct {
	*renewalBundle
	faults *faultGateway
	client *river.Client[pgx.Tx]
}

// setupFaults is setupRenewals with the fault gateway in front of the fake provider and
// the fault triggers installed.
func setupFaults(t *testing.T) *faultBundle {
	t.Helper()
	inner := billingtest.NewGateway()
	gw := newFaultGateway(inner)
	b := setupWith(t, func(c *billing.Config) { c.Gateway = gw })
	_, err := b.pool.Exec(context.Background(), faultPointsSQL)
	require.NoError(t, err)
	client := startRiverClient(t, b)
	b.publish(t, "pro", "990", "generations", 500)
	rb := &renewalBundle{testBundle: b, gateway: inner, runner: billingtest.NewRunner(b.pool, b.clock)}
	return &faultBundle{renewalBundle: rb, faults: gw, client: client}
}

// startRiverClient is testBundle.withRiver, returning the client.
func startRiverClient(t *testing.T, b *testBundle) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, b.engine.RegisterWorkers(workers))
	client, err := billingtest.NewRiverClient(b.pool, b.clock, workers)
	require.NoError(t, err)
	require.NoError(t, b.engine.UseRiver(client))
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	return client
}

// insertRenewJob inserts a renewal job of period with another Try than the engine's: a
// duplicate River does not deduplicate. A fault armed at renew_job_insert counts this
// insert too, and may fail it: then there is simply no extra job (the property must hold
// either way), so that failure is not the test's.
func (b *faultBundle) insertRenewJob(t require.TestingT, subID string, period, try int, at time.Time) {
	helper(t)
	_, err := b.client.Insert(context.Background(), jobs.RenewArgs{SubscriptionID: subID, Period: period, Try: try},
		&river.InsertOpts{ScheduledAt: at})
	if err != nil && strings.Contains(err.Error(), "billingtest: injected fault at "+string(atRenewJobInsert)) {
		return
	}
	require.NoError(t, err)
}

// duplicates runs RenewPeriod(subID, period) from n goroutines at once and returns a
// function that waits for them and returns their errors.
func (b *faultBundle) duplicates(subID string, period, n int) func() []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = billing.RenewPeriod(b.engine, context.Background(), subID, period)
		})
	}
	close(start)
	return func() []error {
		wg.Wait()
		return errs
	}
}

// requireRenewedOnce checks the exactly-once invariant of period (≥ 2) of a subscription
// and that its renewal is complete: the provider holds exactly one successful charge for
// it; exactly one attempt of the period succeeded, the last, and the attempts keep
// payment.VerifyPeriod's invariants; the subscription is active in that period; the ledger
// holds one payment for it; one renewal job waits for its end; no renewal job was discarded.
func (b *faultBundle) requireRenewedOnce(t require.TestingT, subID string, period int) {
	helper(t)
	ctx := context.Background()
	charges := b.gateway.ChargesFor(subID, period)
	all, err := b.engine.AttemptList(ctx, subID)
	require.NoError(t, err)
	var why string
	if len(charges) != 1 { // say what the books and River hold: a flaky failure shows once
		why = b.diagnose(ctx, subID, all)
	}
	require.Len(t, charges, 1, "the provider charged period %d exactly once%s", period, why)
	var attempts []payment.Attempt
	for _, a := range all {
		if a.PeriodNumber == period {
			attempts = append(attempts, a)
		}
	}
	require.NoError(t, payment.VerifyPeriod(attempts))
	require.NotEmpty(t, attempts)
	last := attempts[len(attempts)-1]
	require.Equal(t, payment.StateSucceeded, last.State, "period %d: the last attempt succeeded", period)
	require.Equal(t, charges[0].IdempotencyKey, last.IdempotencyKey, "the charge is the succeeded attempt's")
	require.Equal(t, charges[0].ProviderPaymentID, last.ProviderPaymentID)

	sub, err := b.engine.SubscriptionGet(ctx, subID)
	require.NoError(t, err)
	require.NotNil(t, sub.Current)
	require.GreaterOrEqual(t, sub.Current.Number, period)
	if sub.Current.Number == period {
		require.Equal(t, subscription.StatusActive, sub.Status)
	}

	var payments, waiting, discarded int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM billing_ledger_transactions
		WHERE ref_kind = 'payment' AND period_id = $1`, fmt.Sprintf("%s/%d", subID, period)).Scan(&payments))
	require.Equal(t, 1, payments, "one ledger payment for period %d", period)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE state IN ('available', 'scheduled', 'retryable', 'running') AND (args->>'period')::int = $2),
		count(*) FILTER (WHERE state = 'discarded')
		FROM `+riverJob+` WHERE kind = 'billing_renew' AND args->>'subscription_id' = $1`, subID, period).Scan(&waiting, &discarded))
	if sub.Current.Number == period {
		require.Equal(t, 1, waiting, "one renewal job waits for the end of period %d", period)
	}
	require.Zero(t, discarded, "no renewal job gave up")
}

// requireFaultsFired checks that every fault armed on the bundle was played: each database
// fault point was reached at least skip+times times, and the gateway's queues are empty.
// A fault that never fired would make its test pass for nothing.
func (b *faultBundle) requireFaultsFired(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT point, seq, skip + times FROM billingtest_faults`)
	require.NoError(t, err)
	type armed struct {
		Point, Seq string
		Want       int64
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[armed])
	require.NoError(t, err)
	for _, f := range all {
		var last int64
		var called bool
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT last_value, is_called FROM "+f.Seq).Scan(&last, &called))
		if !called {
			last = 0
		}
		require.GreaterOrEqual(t, last, f.Want, "fault at %s fired", f.Point)
	}
	b.faults.mu.Lock()
	defer b.faults.mu.Unlock()
	for token, q := range b.faults.charges {
		require.Empty(t, q, "charge faults of %s played", token)
	}
	for sub, n := range b.faults.lookups {
		require.Zero(t, n, "lookup failures of %s played", sub)
	}
}

// helper marks the caller as a test helper when t is a *testing.T (a *rapid.T has no
// Helper method).
func helper(t require.TestingT) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
}

// requirePlaced checks where a renewed period was placed: where the paid one ended when it
// was paid within billing.LateRenewalGrace of that end, else when it was paid (later), and
// in both cases at least one full tariff period long (the tariff's own month, which clamps
// Jan 31 to Feb 28, in Moscow time): no day without access is sold.
func requirePlaced(t require.TestingT, p *subscription.Period, end time.Time) {
	if !p.Start.Equal(end) {
		require.True(t, p.Start.After(end.Add(billing.LateRenewalGrace)),
			"period %d starts %s: where the paid one ended (%s) or, paid late, when paid", p.Number, p.Start, end)
	}
	loc, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	full := p.Terms.Period.End(p.Start, 1, loc)
	require.False(t, p.End.Before(full), "period %d [%s, %s) is shorter than one period (to %s)", p.Number, p.Start, p.End, full)
}

// diagnose describes a subscription's attempts, the unapplied payments and River's jobs, for
// a failure message.
func (b *faultBundle) diagnose(ctx context.Context, subID string, attempts []payment.Attempt) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nclock %s, subscription %s", b.clock.Now(), subID)
	for _, a := range attempts {
		fmt.Fprintf(&sb, "\nattempt period %d #%d %s %s created %s settled %s", a.PeriodNumber, a.Number,
			a.State, a.ProviderPaymentID, a.CreatedAt, a.SettledAt)
	}
	up, err := b.engine.UnappliedPaymentList(ctx, false)
	fmt.Fprintf(&sb, "\nunapplied %+v (err %v)", up, err)
	rows, err := b.pool.Query(ctx, `SELECT id, kind, state, attempt, scheduled_at, args::text,
		coalesce(errors::text, '') FROM `+riverJob+` WHERE args->>'subscription_id' = $1 ORDER BY id`, subID)
	if err != nil {
		return sb.String() + "\nriver_job: " + err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var attempt int
		var kind, state, args, errs string
		var at time.Time
		if err := rows.Scan(&id, &kind, &state, &attempt, &at, &args, &errs); err != nil {
			return sb.String() + "\nriver_job: " + err.Error()
		}
		fmt.Fprintf(&sb, "\njob %d %s %s attempt %d at %s %s errors %s", id, kind, state, attempt, at, args, errs)
	}
	return sb.String()
}
