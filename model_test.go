package billing_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// TestEngineModel is a model-based test of the whole engine: rapid draws a random sequence of
// commands over a few subscriptions and customers (checkout with one's own or another
// customer's card, first payment charged, failed or confirmed by the host, usage, auto-renew,
// operator actions, consent withdrawn, refunds), provider behaviour scripted per step
// (declines, timeouts before and after the charge, pending charges, charges that land after
// the engine gave up, failed lookups, refund failures), webhooks (genuine, duplicated, forged,
// late), reconciliation, the renewal sweep, and the clock (small and large moves, with the due
// River jobs run, delayed, or duplicated by calling RenewPeriod directly).
//
// After every step it checks what must always hold, against the fake provider's own record:
// a zero trial balance; at most one applied charge per period in the ledger and at the
// provider; every charge the ledger shows is one the provider holds; no hard limit passed;
// no access to a period the provider was not paid for. At the end the faults stop, every
// pending charge and refund is settled and its webhook delivered, held charges land, and the
// jobs and the reconciliation run for days of simulated time; then: the money at the provider
// is the money in the books (provider:RUB), every refund the provider paid is in the ledger,
// no charge attempt is open, every subscription has a way forward, and a charge that reached
// the provider after its subscription ended shows in the books as owed back.
//
// Each rapid check gets a database of its own (a copy of the migrated template), an engine
// with a fresh fake gateway, and a River client on a manual clock (see model.start). It runs
// BILLING_MODEL_CHECKS checks (default modelChecks) and lets rapid's other checks pass at
// once; after a failure every check runs, so that rapid can shrink it. A soak run:
//
//	BILLING_MODEL_CHECKS=500 BILLING_MODEL_STEPS=80 ./scripts/pg-tmp.sh go test -run TestEngineModel -v -rapid.shrinktime=5m .
//
// BILLING_MODEL_STEPS sets rapid's -rapid.steps (the average number of actions per check);
// BILLING_MODEL_DISABLE leaves actions out (see disabledActions); BILLING_MODEL_DEBUG=1
// logs every check's steps to the test, not only the failing one's.
func TestEngineModel(t *testing.T) {
	t.Parallel()
	billingtest.DatabaseURL(t) // skip without PostgreSQL, before rapid starts
	checks := envInt(t, "BILLING_MODEL_CHECKS", modelChecks)
	if f := flag.Lookup("rapid.checks"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < checks {
			_ = f.Value.Set(strconv.Itoa(checks)) // rapid stops at -rapid.checks
		}
	}
	if s := os.Getenv("BILLING_MODEL_STEPS"); s != "" {
		if err := flag.Set("rapid.steps", s); err != nil {
			t.Fatalf("BILLING_MODEL_STEPS=%q: %v", s, err)
		}
	}
	var n int
	var failed bool
	rapid.Check(t, func(rt *rapid.T) {
		n++
		if n > checks && !failed {
			return
		}
		defer func() {
			if r := recover(); r != nil {
				failed = true
				panic(r)
			}
		}()
		start := time.Now()
		m := newModel(t, rt, n)
		defer m.close(rt)
		rt.Repeat(m.actions())
		m.quiesce(rt)
		m.checkAlways(rt)
		m.checkQuiescent(rt)
		m.checkEvents(rt)
		t.Logf("model check %d: %d steps, %s; largest Consume batch %d; renewals claimed: %v, periods renewed %d", n, m.steps,
			time.Since(start).Round(time.Millisecond), billing.LargestConsumeBatch(m.eng), m.claims, m.renewedPeriods(rt))
	})
}

// modelChecks is how many checks TestEngineModel runs by default: about 40 s under -race
// when nothing fails (rapid then spends up to -rapid.shrinktime, 30 s, shrinking).
const modelChecks = 100

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// The engine calls whose signatures are about to change, one place each.

// withdrawConsent is Engine.WithdrawConsent by the customer of the card.
func withdrawConsent(ctx context.Context, e *billing.Engine, customerID, token string) error {
	return e.WithdrawConsent(ctx, customerID, token, "customer:"+customerID)
}

// modelSub is a subscription the model made, with who bought it and with which card.
type modelSub struct {
	id, customer, token, tariff string
	// endedStatus is the final status the subscription was first seen in ("" before), and
	// endedAtNumber the largest number of a succeeded provider payment then: a succeeded
	// charge with a larger number reached the provider after the end.
	endedAtNumber int
	// endedAtRecord is how many charges the provider had recorded (any outcome) when the
	// subscription was first seen final: a charge recorded later was sent later.
	endedAtRecord int
	endedStatus   subscription.Status
}

// model is one rapid check: the engine under test, its fake provider, and what the test did.
type model struct {
	t      *testing.T
	ctx    context.Context
	run    int
	tb     *runTB
	pool   *pgxpool.Pool
	eng    *billing.Engine
	gw     *billingtest.Gateway
	clock  *billingtest.Clock
	runner *billingtest.Runner
	client *river.Client[pgx.Tx]

	customers    []string
	subs         []*modelSub
	reservations []string
	refunds      []string
	// undelivered are webhook events the provider made (Confirm, ConfirmRefund, Land) that
	// were not forwarded yet; delivered were, and may be forwarded again.
	undelivered, delivered []payment.WebhookEvent
	// excluded are host charges the engine refused (ConfirmFirstPayment failed): the host
	// gave the money back itself, and they are left out of the checks.
	excluded map[string]bool
	// landed are the keys of charges that were in flight (LandsLater) and landed at the
	// provider later (Land): the only charges that may reach the provider after their
	// subscription ended.
	landed map[string]bool
	seq    int
	steps  int
	debug  bool
	// events records the events the engine delivered (Config.OnEvent); checkEvents.
	events *billingtest.EventLog
	// claims: the engine claims its renewals (Config.ClaimRenewals); the runner inserts the
	// claim job when a renewal is due.
	claims bool
}

var modelStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.FixedZone("MSK", 3*60*60))

func newModel(t *testing.T, rt *rapid.T, run int) *model {
	ctx := context.Background()
	tb := &runTB{T: t}
	pool := billingtest.NewPool(tb)
	clock := billingtest.NewClock(modelStart)
	gw := billingtest.NewGateway()
	gw.SetClock(clock)
	cfg := billing.DefaultConfig()
	cfg.Logger = modelLogger()
	cfg.Clock, cfg.Gateway = clock, gw
	events := billingtest.NewEventLog()
	cfg.OnEvent = events.Handle
	// Half the checks renew through claims (Config.ClaimRenewals: no River job per period,
	// the subscriptions table is the queue), the other half through River's renewal jobs.
	cfg.ClaimRenewals = rapid.Bool().Draw(rt, "claims")
	m := &model{t: t, ctx: ctx, run: run, tb: tb, pool: pool, clock: clock, gw: gw, events: events, claims: cfg.ClaimRenewals,
		runner:    billingtest.NewRunner(pool, clock),
		customers: []string{"c1", "c2", "c3"}, excluded: map[string]bool{}, debug: os.Getenv("BILLING_MODEL_DEBUG") != ""}
	if err := m.start(cfg); err != nil {
		m.close(rt)
		rt.Fatalf("start: %v", err)
	}
	for _, spec := range []tariff.Spec{
		{Code: "pro", Name: "Pro", Price: decimal.RequireFromString("990"),
			Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 5}}},
		{Code: "free", Name: "Free", Price: decimal.Zero,
			Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 3}}},
	} {
		if _, err := m.eng.Tariffs().Publish(ctx, "ops", spec); err != nil {
			m.close(rt)
			rt.Fatalf("publish %s: %v", spec.Code, err)
		}
	}
	return m
}

// start is billingtest.StartHarness with River's leader election off: no River
// maintenance service (the scheduler above all) moves jobs on its own, on the wall clock's
// schedule; only the Runner makes due jobs available, so a step's outcome does not depend
// on timing, and a job the test delays stays delayed until a later clock move runs it.
func (m *model) start(cfg billing.Config) error {
	engine, err := billing.New(m.pool, cfg)
	if err != nil {
		return err
	}
	if _, err := engine.Migrate(m.ctx); err != nil {
		return err
	}
	workers := river.NewWorkers()
	if err := engine.RegisterWorkers(workers); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(m.pool), &river.Config{
		Schema:                 billingtest.RiverSchema(),
		Queues:                 map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:                workers,
		FetchPollInterval:      5 * time.Millisecond,
		FetchCooldown:          time.Millisecond,
		LeaderElectionDisabled: true,
		Test:                   river.TestConfig{Time: m.clock},
		Logger:                 slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	if err := engine.UseRiver(client); err != nil {
		return err
	}
	if err := client.Start(m.ctx); err != nil {
		return err
	}
	m.eng, m.client = engine, client
	if cfg.ClaimRenewals {
		m.runner.Claim = func(ctx context.Context) error {
			_, err := client.Insert(ctx, billing.ClaimRenewalsArgs(), nil)
			return err
		}
	}
	billing.OneConsumeBatchAtOnce(engine) // consumeAtOnce's few calls share batches
	return nil
}

// settle waits until River has worked every job a step made available (a job inserted due
// now, such as the sweep's), as the River client of a host would right after the step; it
// does not make delayed jobs available (the Runner does that when the clock moves).
func (m *model) settle(t *rapid.T) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := m.pool.QueryRow(m.ctx, `SELECT count(*) FROM `+riverJob+`
			WHERE (state = 'available' AND scheduled_at <= $1) OR state = 'running'`, m.now()).Scan(&n); err != nil {
			t.Fatalf("settle: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("settle: %d jobs still available or running", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// close stops the River client and drops the check's database.
func (m *model) close(rt *rapid.T) {
	if m.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = m.client.Stop(ctx)
		cancel()
		m.client = nil
	}
	if errs := m.tb.runCleanups(); len(errs) > 0 {
		rt.Logf("VIOLATION details: %s", strings.Join(errs, "; "))
		rt.Fatalf("VIOLATION: billingtest.NewPool's check at the end failed")
	}
}

// runTB is the *testing.T of TestEngineModel with cleanups run when a rapid check ends
// (runCleanups), not when the test ends, so that each check drops its database; errors
// reported to it are collected for the check to fail on.
type runTB struct {
	*testing.T
	mu       sync.Mutex
	cleanups []func()
	errs     []string
}

func (r *runTB) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *runTB) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

// runCleanups runs the cleanups, last first, and returns the errors reported.
func (r *runTB) runCleanups() []string {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := r.errs
	r.errs = nil
	return errs
}

func (m *model) key(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s-%d-%d", prefix, m.run, m.seq)
}

// logf logs a step to the rapid check (shown for the failing, shrunk sequence), and with
// BILLING_MODEL_DEBUG set to the test too, for every check.
func (m *model) logf(t *rapid.T, format string, args ...any) {
	t.Logf(format, args...)
	if m.debug {
		m.t.Logf("check %d: "+format, append([]any{m.run}, args...)...)
	}
}

func (m *model) token(customer string) string { return "tok-" + customer }

func (m *model) now() time.Time { return m.clock.Now() }

// expectedErrs are the errors a command may rightly answer in a random sequence: refusals.
var expectedErrs = []error{
	billing.ErrNoAccess, billing.ErrLimitExceeded, billing.ErrMeterUnknown, billing.ErrNotFound,
	billing.ErrTransitionNotAllowed, billing.ErrPeriodNotPaid, billing.ErrAlreadyRefunded, billing.ErrNotEligible,
	billing.ErrRefundTransition, billing.ErrRefundAmount, billing.ErrNotDue, billing.ErrUnknownPayment,
	billing.ErrAmountMismatch, billing.ErrInvalidInput, billing.ErrIdempotencyConflict, billing.ErrReceivedInFuture,
	payment.ErrAlreadySettled, payment.ErrConflictingOutcome, payment.ErrPaymentMismatch,
	payment.ErrConsentWithdrawn, payment.ErrNoConsent,
	subscription.ErrReservationResolved, subscription.ErrReservationExpired, subscription.ErrReservationMismatch,
	subscription.ErrPeriodOver, refund.ErrNotGranted,
	billing.ErrWebhookNotConfirmed, billing.ErrPaymentMethodNotOwned, billingtest.ErrUnavailable,
}

// result logs what a command did; an error that is not a refusal is marked UNEXPECTED (a
// log line, not a failure: only the invariants fail the test).
func (m *model) result(t *rapid.T, what string, err error) {
	switch {
	case err == nil:
		m.logf(t, "  %s: ok", what)
	case slices.ContainsFunc(expectedErrs, func(e error) bool { return errors.Is(err, e) }):
		m.logf(t, "  %s: refused: %v", what, err)
	default:
		m.logf(t, "  %s: UNEXPECTED error: %v", what, err)
	}
}

func (m *model) pickSub(t *rapid.T) *modelSub {
	if len(m.subs) == 0 {
		t.Skip("no subscription yet")
	}
	return m.subs[rapid.IntRange(0, len(m.subs)-1).Draw(t, "sub")]
}

func (m *model) get(t *rapid.T, id string) subscription.Subscription {
	sub, err := m.eng.SubscriptionGet(m.ctx, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return sub
}

// attempts returns every charge attempt of the model's subscriptions.
func (m *model) attempts(t *rapid.T) []payment.Attempt {
	var out []payment.Attempt
	for _, s := range m.subs {
		as, err := m.eng.AttemptList(m.ctx, s.id)
		if err != nil {
			t.Fatalf("Attempts %s: %v", s.id, err)
		}
		out = append(out, as...)
	}
	return out
}

func (m *model) subName(id string) string {
	for i, s := range m.subs {
		if s.id == id {
			return fmt.Sprintf("s%d", i+1)
		}
	}
	return id
}

func (m *model) actions() map[string]func(*rapid.T) {
	step := func(f func(*rapid.T)) func(*rapid.T) {
		return func(t *rapid.T) {
			f(t) // a skipped action does not return
			m.settle(t)
			m.steps++
		}
	}
	a := map[string]func(*rapid.T){
		"":                 m.checkAlways,
		"subscribe":        m.subscribe,
		"chargeFirst":      m.chargeFirst,
		"startCheckout":    m.startCheckout,
		"failFirst":        m.failFirst,
		"confirmFirst":     m.confirmFirst,
		"consume":          m.consume,
		"reserve":          m.reserve,
		"commitOrRelease":  m.commitOrRelease,
		"setAutoRenew":     m.setAutoRenew,
		"suspendResume":    m.suspendResume,
		"terminate":        m.terminate,
		"extendPeriod":     m.extendPeriod,
		"withdrawConsent":  m.withdrawConsent,
		"requestRefund":    m.requestRefund,
		"moveRefund":       m.moveRefund,
		"scriptCharges":    m.scriptCharges,
		"scriptRefunds":    m.scriptRefunds,
		"failLookups":      m.failLookups,
		"confirmPending":   m.confirmPending,
		"landHeld":         m.landHeld,
		"deliverWebhook":   m.deliverWebhook,
		"duplicateWebhook": m.duplicateWebhook,
		"forgeWebhook":     m.forgeWebhook,
		"reconcile":        m.reconcile,
		"sweep":            m.sweep,
		"clockMinutes":     m.clockMinutes,
		"clockPeriodEnd":   m.clockPeriodEnd,
		"duplicateRenew":   m.duplicateRenew,
		"renewAllAtOnce":   m.renewAllAtOnce,
		"consumeAtOnce":    m.consumeAtOnce,
		"claimByHand":      m.claimByHand,
		"abandonClaims":    m.abandonClaims,
	}
	for _, name := range disabledActions() {
		delete(a, name)
	}
	for k, f := range a {
		if k != "" {
			a[k] = step(f)
		}
	}
	return a
}

// disabledActions reads BILLING_MODEL_DISABLE, a comma-separated list of action names to
// leave out: to see which actions a violation needs, and what else fails without them.
// "subscribeFree" leaves out checkouts of the free tariff.
func disabledActions() []string {
	s := os.Getenv("BILLING_MODEL_DISABLE")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// --- Actions ---------------------------------------------------------------------------

func (m *model) subscribe(t *rapid.T) {
	if len(m.subs) >= 4 {
		t.Skip("enough subscriptions")
	}
	customer := rapid.SampledFrom(m.customers).Draw(t, "customer")
	token := m.token(customer)
	if rapid.IntRange(0, 5).Draw(t, "other's card") == 0 {
		token = m.token(rapid.SampledFrom(m.customers).Draw(t, "card of"))
	}
	code := "pro"
	if rapid.IntRange(0, 7).Draw(t, "free") == 0 && !slices.Contains(disabledActions(), "subscribeFree") {
		code = "free"
	}
	if rapid.IntRange(0, 5).Draw(t, "no card: pays on the provider's page") == 0 && !slices.Contains(disabledActions(), "startCheckout") {
		token = ""
	}
	sub, err := m.eng.Subscribe(m.ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: code,
		PaymentMethod: token, IdempotencyKey: m.key("checkout")})
	if err == nil {
		m.subs = append(m.subs, &modelSub{id: sub.ID, customer: customer, token: token, tariff: code})
	}
	m.result(t, fmt.Sprintf("Subscribe(%s, %s, card %s) -> s%d %s", customer, code, token, len(m.subs), sub.Status), err)
}

func (m *model) chargeFirst(t *rapid.T) {
	s := m.pickSub(t)
	res, err := m.eng.ChargeFirstPayment(m.ctx, s.id)
	m.result(t, fmt.Sprintf("ChargeFirstPayment(%s) -> %s, attempt %s", m.subName(s.id), res.Subscription.Status, res.Attempt.State), err)
}

// startCheckout is a customer sent to the provider's page for the first payment (the fake
// answers pending; confirmPending and quiescence play the customer paying or not).
func (m *model) startCheckout(t *rapid.T) {
	s := m.pickSub(t)
	co, err := m.eng.StartCheckout(m.ctx, s.id, "https://app.example/return")
	m.result(t, fmt.Sprintf("StartCheckout(%s) -> %s, attempt %s, page %q", m.subName(s.id), co.Subscription.Status,
		co.Attempt.State, co.ConfirmationURL), err)
}

func (m *model) failFirst(t *rapid.T) {
	s := m.pickSub(t)
	_, err := m.eng.FailFirstPayment(m.ctx, s.id, "checkout abandoned")
	m.result(t, fmt.Sprintf("FailFirstPayment(%s)", m.subName(s.id)), err)
}

// confirmFirst is a host that charges the first period itself, through the same provider,
// and tells the engine with ConfirmFirstPayment. Only for a pending subscription the engine
// never tried to charge; when the engine refuses, the host gives the money back at once.
func (m *model) confirmFirst(t *rapid.T) {
	if rapid.IntRange(0, 3).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	s := m.pickSub(t)
	sub := m.get(t, s.id)
	if s.token == "" {
		t.Skip("a customer without a saved card pays on the provider's page")
	}
	if sub.Status != subscription.StatusPending || sub.Checkout.IsFree() {
		t.Skip("not a pending paid checkout")
	}
	if as, _ := m.eng.AttemptList(m.ctx, s.id); len(as) > 0 {
		t.Skip("the engine charges it")
	}
	amount := sub.Checkout.Price.Shift(2).IntPart()
	key := m.key("host")
	receipt, err := payment.NewChargeReceipt("Pro, 1 month", amount, "RUB", payment.VAT22Of122, payment.Contact{})
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	m.gw.Script(s.token, billingtest.Succeed) // the host's own call: no scripted fault
	res, err := m.gw.Charge(m.ctx, payment.ChargeParams{IdempotencyKey: key, PaymentMethod: s.token, CustomerID: s.customer,
		Amount: amount, Currency: "RUB", Description: "Pro, 1 month", Receipt: receipt,
		Metadata: map[string]string{billingtest.MetadataSubscriptionID: s.id, billingtest.MetadataPeriod: "1"}})
	if err != nil || res.Outcome != payment.OutcomeSucceeded {
		t.Fatalf("host charge: %v %v", res.Outcome, err)
	}
	_, err = m.eng.ConfirmFirstPayment(m.ctx, s.id, billing.Payment{ProviderPaymentID: res.ProviderPaymentID,
		Amount: sub.Checkout.Price, Currency: "RUB", PaymentMethod: s.token})
	m.result(t, fmt.Sprintf("host charged %s (%s), ConfirmFirstPayment", m.subName(s.id), res.ProviderPaymentID), err)
	if err != nil {
		rreceipt, rerr := payment.NewRefundReceipt("Pro, 1 month", amount, "RUB", payment.VAT22Of122, payment.Contact{})
		if rerr == nil {
			_, rerr = m.gw.Refund(m.ctx, payment.RefundParams{IdempotencyKey: key + "-back", ProviderPaymentID: res.ProviderPaymentID,
				Amount: amount, Currency: "RUB", Description: "host refund", Receipt: rreceipt})
		}
		m.logf(t, "  the host refunds its charge: %v", rerr)
		m.excluded[res.ProviderPaymentID] = true // the host's mistake, not the engine's money
	}
}

func (m *model) consume(t *rapid.T) {
	s := m.pickSub(t)
	q := int64(rapid.IntRange(1, 3).Draw(t, "quantity"))
	res, err := m.eng.Consume(m.ctx, s.id, "generations", q, m.key("use"))
	m.result(t, fmt.Sprintf("Consume(%s, %d) -> used %d/%d", m.subName(s.id), q, res.Used, res.Limit), err)
}

func (m *model) reserve(t *rapid.T) {
	s := m.pickSub(t)
	q := int64(rapid.IntRange(1, 3).Draw(t, "quantity"))
	r, err := m.eng.Reserve(m.ctx, billing.ReserveParams{SubscriptionID: s.id, Meter: "generations", Quantity: q,
		IdempotencyKey: m.key("reserve")})
	if err == nil {
		m.reservations = append(m.reservations, r.ID)
	}
	m.result(t, fmt.Sprintf("Reserve(%s, %d) -> r%d", m.subName(s.id), q, len(m.reservations)), err)
}

func (m *model) commitOrRelease(t *rapid.T) {
	if len(m.reservations) == 0 {
		t.Skip("no reservation")
	}
	i := rapid.IntRange(0, len(m.reservations)-1).Draw(t, "reservation")
	if rapid.Bool().Draw(t, "commit") {
		actual := int64(rapid.IntRange(0, 3).Draw(t, "actual"))
		_, err := m.eng.ReservationCommit(m.ctx, m.reservations[i], actual)
		m.result(t, fmt.Sprintf("Commit(r%d, %d)", i+1, actual), err)
		return
	}
	_, err := m.eng.ReservationRelease(m.ctx, m.reservations[i])
	m.result(t, fmt.Sprintf("Release(r%d)", i+1), err)
}

func (m *model) setAutoRenew(t *rapid.T) {
	s := m.pickSub(t)
	on := rapid.Bool().Draw(t, "on")
	_, err := m.eng.SetAutoRenew(m.ctx, s.id, on, "customer:"+s.customer)
	m.result(t, fmt.Sprintf("SetAutoRenew(%s, %v)", m.subName(s.id), on), err)
}

func (m *model) suspendResume(t *rapid.T) {
	s := m.pickSub(t)
	by := subscription.AdminAction{Actor: "admin:1", Reason: "model test"}
	var err error
	what := rapid.SampledFrom([]string{"Suspend", "Resume"}).Draw(t, "admin")
	if what == "Suspend" {
		_, err = m.eng.Suspend(m.ctx, s.id, by)
	} else {
		_, err = m.eng.Resume(m.ctx, s.id, by)
	}
	m.result(t, fmt.Sprintf("%s(%s)", what, m.subName(s.id)), err)
}

func (m *model) terminate(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	s := m.pickSub(t)
	_, err := m.eng.Terminate(m.ctx, s.id, subscription.AdminAction{Actor: "admin:1", Reason: "model test"})
	m.result(t, fmt.Sprintf("Terminate(%s)", m.subName(s.id)), err)
}

func (m *model) extendPeriod(t *rapid.T) {
	s := m.pickSub(t)
	sub := m.get(t, s.id)
	if sub.Current == nil {
		t.Skip("no period")
	}
	days := rapid.IntRange(1, 5).Draw(t, "days")
	_, err := m.eng.ExtendPeriod(m.ctx, s.id, sub.Current.End.AddDate(0, 0, days),
		subscription.AdminAction{Actor: "admin:1", Reason: "maintenance"})
	m.result(t, fmt.Sprintf("ExtendPeriod(%s, +%dd)", m.subName(s.id), days), err)
}

func (m *model) withdrawConsent(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	customer := rapid.SampledFrom(m.customers).Draw(t, "customer")
	err := withdrawConsent(m.ctx, m.eng, customer, m.token(customer))
	m.result(t, fmt.Sprintf("WithdrawConsent(%s, %s)", customer, m.token(customer)), err)
}

func (m *model) requestRefund(t *rapid.T) {
	s := m.pickSub(t)
	r, err := m.eng.RequestRefund(m.ctx, billing.RefundRequestParams{SubscriptionID: s.id, ReceivedAt: m.now(),
		Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: m.key("refund")})
	if err == nil {
		m.refunds = append(m.refunds, r.ID)
	}
	m.result(t, fmt.Sprintf("RequestRefund(%s) -> f%d period %d eligible %v", m.subName(s.id), len(m.refunds), r.Period, r.Eligible), err)
}

func (m *model) moveRefund(t *rapid.T) {
	if len(m.refunds) == 0 {
		t.Skip("no refund request")
	}
	i := rapid.IntRange(0, len(m.refunds)-1).Draw(t, "refund")
	id := m.refunds[i]
	var err error
	var r billing.RefundRequest
	what := rapid.SampledFrom([]string{"VerifyRefund", "ExecuteRefund", "ExecuteRefund(override)", "RejectRefund"}).Draw(t, "refund op")
	switch what {
	case "VerifyRefund":
		r, err = m.eng.VerifyRefund(m.ctx, id, "admin:1")
	case "ExecuteRefund":
		r, err = m.eng.ExecuteRefund(m.ctx, id, billing.ExecuteRefundOpts{Actor: "admin:1"})
	case "ExecuteRefund(override)":
		r, err = m.eng.ExecuteRefund(m.ctx, id, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "goodwill"})
	case "RejectRefund":
		r, err = m.eng.RejectRefund(m.ctx, id, "admin:1", "not eligible")
	}
	m.result(t, fmt.Sprintf("%s(f%d) -> %s", what, i+1, r.State), err)
}

var faultBehaviours = []billingtest.Behaviour{billingtest.SoftDecline, billingtest.HardDecline, billingtest.Pending,
	billingtest.TimeoutAfterSuccess, billingtest.TimeoutBeforeCharge, billingtest.LandsLater}

func (m *model) scriptCharges(t *rapid.T) {
	if m.gw.ScriptedLeft() >= 2 {
		t.Skip("enough scripted")
	}
	b := rapid.SampledFrom(faultBehaviours).Draw(t, "behaviour")
	m.gw.ScriptAll(b)
	m.logf(t, "  provider: the next charge plays %s", b)
}

func (m *model) scriptRefunds(t *rapid.T) {
	if m.gw.ScriptedLeft() >= 2 {
		t.Skip("enough scripted")
	}
	b := rapid.SampledFrom(faultBehaviours[:5]).Draw(t, "refund behaviour")
	m.gw.ScriptRefunds(b)
	m.logf(t, "  provider: the next refund plays %s", b)
}

func (m *model) failLookups(t *rapid.T) {
	n := rapid.IntRange(1, 3).Draw(t, "failed lookups")
	m.gw.FailLookups(n)
	m.logf(t, "  provider: the next %d lookups fail", n)
}

// confirmPending settles a charge (or a refund) pending at the provider; the webhook is kept
// for deliverWebhook, so it may come late, or never before the end.
func (m *model) confirmPending(t *rapid.T) {
	type cand struct {
		id     string
		refund bool
	}
	var cands []cand
	for _, a := range m.attempts(t) {
		if a.ProviderPaymentID != "" {
			if res, err := m.gw.Lookup(m.ctx, payment.LookupParams{IdempotencyKey: a.IdempotencyKey}); err == nil && res.Outcome == payment.OutcomePending {
				cands = append(cands, cand{id: a.ProviderPaymentID})
			}
		}
	}
	for _, id := range m.refunds {
		r, err := m.eng.RefundRequestGet(m.ctx, id)
		if err == nil && r.GatewayKey != "" {
			if res, err := m.gw.LookupRefund(m.ctx, payment.RefundLookupParams{IdempotencyKey: r.GatewayKey}); err == nil && res.Outcome == payment.OutcomePending {
				cands = append(cands, cand{id: res.ProviderRefundID, refund: true})
			}
		}
	}
	if len(cands) == 0 {
		t.Skip("nothing pending")
	}
	c := cands[rapid.IntRange(0, len(cands)-1).Draw(t, "pending")]
	outcome := rapid.SampledFrom([]payment.Outcome{payment.OutcomeSucceeded, payment.OutcomeSucceeded,
		payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined}).Draw(t, "outcome")
	var ev payment.WebhookEvent
	var err error
	if c.refund {
		ev, err = m.gw.ConfirmRefund(c.id, outcome)
	} else {
		ev, err = m.gw.Confirm(c.id, outcome)
	}
	if err != nil {
		t.Fatalf("confirm %s: %v", c.id, err)
	}
	m.undelivered = append(m.undelivered, ev)
	m.logf(t, "  provider settles %s as %s (webhook w%d not delivered yet)", c.id, outcome, len(m.undelivered))
}

// land lands the held charges at the provider and remembers their keys.
func (m *model) land() []payment.WebhookEvent {
	evs := m.gw.Land()
	if m.landed == nil {
		m.landed = map[string]bool{}
	}
	for _, ev := range evs {
		m.landed[ev.IdempotencyKey] = true
	}
	return evs
}

func (m *model) landHeld(t *rapid.T) {
	if m.gw.Held() == 0 {
		t.Skip("nothing held")
	}
	evs := m.land()
	for _, ev := range evs {
		m.logf(t, "  provider: held charge %s (%s) lands as succeeded", ev.ProviderPaymentID, ev.IdempotencyKey)
	}
	m.undelivered = append(m.undelivered, evs...)
}

func (m *model) deliver(t *rapid.T, what string, ev payment.WebhookEvent) {
	var err error
	if ev.Kind == payment.KindRefund {
		_, err = m.eng.HandleRefundWebhook(m.ctx, ev)
	} else {
		_, err = m.eng.HandlePaymentWebhook(m.ctx, ev)
	}
	m.result(t, fmt.Sprintf("%s %s webhook %s %s (%s)", what, ev.Kind, ev.ProviderPaymentID+ev.ProviderRefundID, ev.Outcome, ev.IdempotencyKey), err)
	if what != "FORGED" && errors.Is(err, billingtest.ErrUnavailable) {
		// The engine could not ask the gateway and refused the webhook (a non-2xx answer):
		// a provider delivers it again later, so the model does too.
		m.undelivered = append(m.undelivered, ev)
	}
}

func (m *model) deliverWebhook(t *rapid.T) {
	if len(m.undelivered) == 0 {
		t.Skip("no webhook")
	}
	i := rapid.IntRange(0, len(m.undelivered)-1).Draw(t, "webhook")
	ev := m.undelivered[i]
	m.undelivered = slices.Delete(m.undelivered, i, i+1)
	m.delivered = append(m.delivered, ev)
	m.deliver(t, "genuine", ev)
}

func (m *model) duplicateWebhook(t *rapid.T) {
	if len(m.delivered) == 0 {
		t.Skip("no webhook delivered")
	}
	m.deliver(t, "duplicate", m.delivered[rapid.IntRange(0, len(m.delivered)-1).Draw(t, "webhook")])
}

// forgeWebhook sends a made-up "succeeded" charge event naming a real attempt's key and
// provider id (or an invented id), as an attacker or a confused proxy would.
func (m *model) forgeWebhook(t *rapid.T) {
	as := m.attempts(t)
	if len(as) == 0 {
		t.Skip("no attempt")
	}
	a := as[rapid.IntRange(0, len(as)-1).Draw(t, "attempt")]
	id := a.ProviderPaymentID
	if id == "" {
		id = "pay_forged_" + strconv.Itoa(m.seq)
	}
	m.deliver(t, "FORGED", payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: id, IdempotencyKey: a.IdempotencyKey,
		Outcome: payment.OutcomeSucceeded, Amount: a.Amount, Currency: a.Currency, ReceivedAt: m.now()})
}

func (m *model) reconcile(t *rapid.T) {
	n, err := m.eng.ReconcilePayments(m.ctx)
	m.result(t, fmt.Sprintf("ReconcilePayments -> %d", n), err)
}

func (m *model) sweep(t *rapid.T) {
	n, err := m.eng.SweepDueRenewals(m.ctx)
	m.result(t, fmt.Sprintf("SweepDueRenewals -> %d", n), err)
}

// renewedPeriods counts the periods after the first that the subscriptions reached, and
// checks that an engine with claims inserted no renewal job (the path under test is the
// claims', not River's).
func (m *model) renewedPeriods(t *rapid.T) int {
	var periods, renewJobs int
	if err := m.pool.QueryRow(m.ctx, `SELECT count(*) FROM billing_periods WHERE number > 1`).Scan(&periods); err != nil {
		t.Fatalf("periods: %v", err)
	}
	if err := m.pool.QueryRow(m.ctx, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_renew'`).Scan(&renewJobs); err != nil {
		t.Fatalf("jobs: %v", err)
	}
	if m.claims && renewJobs > 0 {
		m.violation(t, "a renewal job with claims on", "%d billing_renew jobs in an engine with ClaimRenewals", renewJobs)
	}
	return periods
}

// claimByHand is an operator (or a second process's claim job) claiming the due renewals
// with Engine.ClaimDueRenewals while the runner's claim jobs may run too.
func (m *model) claimByHand(t *rapid.T) {
	if !m.claims {
		t.Skip("renewals are River jobs")
	}
	n, err := m.eng.ClaimDueRenewals(m.ctx)
	m.result(t, fmt.Sprintf("ClaimDueRenewals -> %d", n), err)
}

// abandonClaims is a claimer killed right after its claim committed: every due renewal is
// leased (renew_at a lease ahead, as store.ClaimRenewals leaves it) and never run, so it
// waits for the lease to run out and the next claim.
func (m *model) abandonClaims(t *rapid.T) {
	if !m.claims {
		t.Skip("renewals are River jobs")
	}
	tag, err := m.pool.Exec(m.ctx, `UPDATE billing_subscriptions SET renew_at = $2 WHERE renew_at <= $1`,
		m.now(), m.now().Add(billing.RenewalClaimLease))
	if err != nil {
		t.Fatalf("abandon claims: %v", err)
	}
	m.logf(t, "a claimer took %d due renewals and died", tag.RowsAffected())
}

// moveClock moves the clock to until, running the due River jobs on the way, or not (the
// jobs are late: they run at a later move).
func (m *model) moveClock(t *rapid.T, until time.Time, runJobs bool) {
	if !runJobs {
		m.clock.Set(until)
		m.logf(t, "  clock -> %s, jobs delayed", until.Format(time.DateTime))
		return
	}
	n, err := m.runner.RunUntil(m.ctx, until)
	if err != nil {
		t.Fatalf("RunUntil: %v", err)
	}
	m.logf(t, "  clock -> %s, jobs run at %d instants", until.Format(time.DateTime), n)
}

func (m *model) clockMinutes(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 30).Draw(t, "minutes")) * time.Minute
	m.moveClock(t, m.now().Add(d), rapid.IntRange(0, 3).Draw(t, "delay jobs") != 0)
}

// clockPeriodEnd moves the clock past the next period end (or by days when none is near).
func (m *model) clockPeriodEnd(t *rapid.T) {
	now := m.now()
	var next time.Time
	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Current != nil && sub.Current.End.After(now) && (next.IsZero() || sub.Current.End.Before(next)) {
			next = sub.Current.End
		}
	}
	if next.IsZero() {
		next = now.AddDate(0, 0, rapid.IntRange(1, 10).Draw(t, "days"))
	}
	until := next.Add(time.Duration(rapid.IntRange(0, 48).Draw(t, "hours after")) * time.Hour)
	m.moveClock(t, until, rapid.IntRange(0, 3).Draw(t, "delay jobs") != 0)
}

// duplicateRenew runs a renewal like a duplicate job would: RenewPeriod of the current (or
// the previous) period, directly.
func (m *model) duplicateRenew(t *rapid.T) {
	s := m.pickSub(t)
	sub := m.get(t, s.id)
	if sub.Current == nil {
		t.Skip("no period")
	}
	p := sub.Current.Number - rapid.IntRange(0, 1).Draw(t, "older period")
	if p < 1 {
		p = 1
	}
	err := billing.RenewPeriod(m.eng, m.ctx, s.id, p)
	m.result(t, fmt.Sprintf("RenewPeriod(%s, %d) directly", m.subName(s.id), p), err)
}

// renewAllAtOnce runs the renewal of every subscription's current period (and, for some, a
// duplicate, or the previous period's) at the same moment, as River's workers do when many
// periods end at once, so that the renewals share batches (renewals_batch.go): the model's
// invariants must hold whatever a batch held.
func (m *model) renewAllAtOnce(t *rapid.T) {
	type call struct {
		id     string
		period int
	}
	var calls []call
	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Current == nil {
			continue
		}
		calls = append(calls, call{s.id, sub.Current.Number})
		switch rapid.IntRange(0, 3).Draw(t, "extra renewal of "+m.subName(s.id)) {
		case 1:
			calls = append(calls, call{s.id, sub.Current.Number})
		case 2:
			if sub.Current.Number > 1 {
				calls = append(calls, call{s.id, sub.Current.Number - 1})
			}
		}
	}
	if len(calls) < 2 {
		t.Skip("fewer than two periods to renew")
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { errs[i] = billing.RenewPeriod(m.eng, m.ctx, c.id, c.period) })
	}
	wg.Wait()
	for i, c := range calls {
		m.result(t, fmt.Sprintf("RenewPeriod(%s, %d) at once with %d others", m.subName(c.id), c.period, len(calls)-1), errs[i])
	}
}

// consumeAtOnce makes one to three Consume calls on every subscription at the same moment
// (some under one key twice), as a host's concurrent requests do, so that they share
// Consume's batches (usage_batch.go). Nothing else runs meanwhile, so each subscription's
// counter must move by exactly the quantities of its calls that returned counted (none when
// it had no access), a replay must count nothing, and the model's invariants must hold.
func (m *model) consumeAtOnce(t *rapid.T) {
	type call struct {
		id, key string
		qty     int64
		res     billing.ConsumeResult
		err     error
	}
	var calls []call
	before := map[string]int64{}
	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Current != nil {
			before[s.id] = sub.Current.Usage["generations"].Used
		}
		n := rapid.IntRange(1, 3).Draw(t, "calls on "+m.subName(s.id))
		for range n {
			c := call{id: s.id, key: m.key("use"), qty: int64(rapid.IntRange(1, 3).Draw(t, "quantity"))}
			if len(calls) > 0 && calls[len(calls)-1].id == s.id && rapid.IntRange(0, 4).Draw(t, "same key") == 0 {
				c.key, c.qty = calls[len(calls)-1].key, calls[len(calls)-1].qty
			}
			calls = append(calls, c)
		}
	}
	if len(calls) < 2 {
		t.Skip("fewer than two calls")
	}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			calls[i].res, calls[i].err = m.eng.Consume(m.ctx, calls[i].id, "generations", calls[i].qty, calls[i].key)
		})
	}
	wg.Wait()
	counted := map[string]int64{}
	seenKey := map[string]bool{}
	for _, c := range calls {
		m.result(t, fmt.Sprintf("Consume(%s, %d) at once with %d others -> used %d/%d replayed %v", m.subName(c.id), c.qty,
			len(calls)-1, c.res.Used, c.res.Limit, c.res.Replayed), c.err)
		if c.err == nil && !c.res.Replayed {
			if seenKey[c.key] {
				m.violation(t, "a key counted twice", "%s: key %s counted by two calls at once", m.subName(c.id), c.key)
			}
			seenKey[c.key] = true
			counted[c.id] += c.qty
		}
	}
	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Current == nil {
			continue
		}
		if got, want := sub.Current.Usage["generations"].Used, before[s.id]+counted[s.id]; got != want {
			m.violation(t, "usage counter moved by other than the counted calls", "%s: used %d, want %d before + %d counted",
				m.subName(s.id), got, before[s.id], counted[s.id])
		}
	}
}

// --- Invariants ------------------------------------------------------------------------

// checkAlways checks what must hold after every step.
func (m *model) checkAlways(t *rapid.T) {
	ctx := m.ctx
	if _, err := m.eng.Ledger().TrialBalance(ctx); err != nil {
		m.violation(t, "trial balance not zero", "%v", err)
	}

	// A charge that landed when its subscription could take no payment (suspended, ended,
	// terminated: the engine books it as unapplied and refunds it) pays for no period, and
	// the period may then be paid by a later charge. Such a charge is not counted below; its
	// refund is checked at quiescence. One the engine booked as unapplied because the period
	// was already paid is counted: that is the double charge this check is for.
	landedOnNothing := map[string]bool{}
	urows, err := m.pool.Query(ctx, `SELECT provider_payment_id FROM billing_unapplied_payments
		WHERE reason LIKE 'renewal of a subscription that is %' OR reason LIKE 'checkout of a subscription that is %'`)
	if err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	for urows.Next() {
		var id string
		if err := urows.Scan(&id); err != nil {
			t.Fatalf("scan: %v", err)
		}
		landedOnNothing[id] = true
	}
	urows.Close()

	succeeded := map[string]billingtest.Charge{}
	perPeriod := map[string][]string{}
	maxNumber := 0
	for _, c := range m.gw.Charges() {
		succeeded[c.ProviderPaymentID] = c
		if c.Metadata[billingtest.MetadataSubscriptionID] == "drain" || m.excluded[c.ProviderPaymentID] {
			continue // the test's own, see drainFaults and confirmFirst
		}
		maxNumber = max(maxNumber, c.Number)
		if landedOnNothing[c.ProviderPaymentID] {
			continue
		}
		k := c.Metadata[billingtest.MetadataSubscriptionID] + "/" + c.Metadata[billingtest.MetadataPeriod]
		perPeriod[k] = append(perPeriod[k], c.ProviderPaymentID)
	}
	for k, ids := range perPeriod {
		if len(ids) > 1 {
			m.violation(t, "the provider holds two succeeded charges for one period", "%d for period %s: %v", len(ids), m.periodName(k), ids)
		}
	}

	rows, err := m.pool.Query(ctx, `SELECT ref_id, coalesce(period_id, '') FROM billing_ledger_transactions
		WHERE ref_kind = 'payment' AND reverses IS NULL ORDER BY posted_at`)
	if err != nil {
		t.Fatalf("ledger payments: %v", err)
	}
	applied := map[string][]string{}
	for rows.Next() {
		var ref, period string
		if err := rows.Scan(&ref, &period); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if _, ok := succeeded[ref]; !ok {
			rows.Close()
			m.violation(t, "the ledger books a payment the provider does not hold", "payment %s for period %s", ref, m.periodName(period))
		}
		if period != "" {
			applied[period] = append(applied[period], ref)
		}
	}
	rows.Close()
	for p, refs := range applied {
		if len(refs) > 1 {
			m.violation(t, "two charges applied to one period in the ledger", "%d charges applied to period %s: %v", len(refs), m.periodName(p), refs)
		}
	}

	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Status.Final() && s.endedStatus == "" {
			s.endedAtNumber, s.endedStatus, s.endedAtRecord = maxNumber, sub.Status, m.gw.Recorded()
		}
		if sub.Current != nil && !sub.Current.Terms.Options.SoftLimits {
			for _, l := range sub.Current.Terms.Limits {
				u := sub.Current.Usage[l.Meter]
				if u.Used+u.Reserved > l.Quantity {
					m.violation(t, "usage above a hard limit", "%s period %d: %s used %d + reserved %d > limit %d", m.subName(s.id), sub.Current.Number,
						l.Meter, u.Used, u.Reserved, l.Quantity)
				}
			}
		}
		d, err := m.eng.Access(ctx, s.id)
		if err != nil {
			t.Fatalf("Access %s: %v", s.id, err)
		}
		if d.Granted && !sub.Current.Terms.IsFree() && len(m.gw.ChargesFor(s.id, sub.Current.Number)) == 0 {
			m.violation(t, "access to a period the provider was not paid for", "%s has access (%s) to period %d",
				m.subName(s.id), sub.Status, sub.Current.Number)
		}
	}
}

// jobsOf describes the River jobs of a subscription, for a violation's message.
func (m *model) jobsOf(t *rapid.T, id string) string {
	rows, err := m.pool.Query(m.ctx, `SELECT kind, state, args::text, scheduled_at, coalesce(errors::text, '')
		FROM `+riverJob+` WHERE args->>'subscription_id' = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatalf("jobs: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, state, args, errs string
		var at time.Time
		if err := rows.Scan(&kind, &state, &args, &at, &errs); err != nil {
			t.Fatalf("jobs: %v", err)
		}
		if len(errs) > 200 {
			errs = errs[:200]
		}
		out = append(out, fmt.Sprintf("%s %s %s at %s %s", kind, state, args, at.In(modelStart.Location()).Format(time.DateTime), errs))
	}
	if m.claims {
		var at *time.Time
		if err := m.pool.QueryRow(m.ctx, `SELECT renew_at FROM billing_subscriptions WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatalf("renew_at: %v", err)
		}
		if at == nil {
			out = append(out, "renew_at none")
		} else {
			out = append(out, "renew_at "+at.In(modelStart.Location()).Format(time.DateTime))
		}
	}
	return strings.Join(out, "; ")
}

// violation fails the check with a message that names only the kind of violation, so that
// rapid's shrinking (which keeps a smaller case only when it fails with the same message)
// is not misled by ids and amounts; the details go to the log just before.
func (m *model) violation(t *rapid.T, kind, format string, args ...any) {
	m.logf(t, "VIOLATION %s: "+format, append([]any{kind}, args...)...)
	t.Fatalf("VIOLATION %s", kind)
}

// periodName is "s2/3" for the period id "<subscription id>/3".
func (m *model) periodName(periodID string) string {
	id, n, ok := strings.Cut(periodID, "/")
	if !ok {
		return periodID
	}
	return m.subName(id) + "/" + n
}

// unappliedRefundKeys returns the refund keys of the unapplied payments still being refunded.
func (m *model) unappliedRefundKeys(t *rapid.T) []string {
	rows, err := m.pool.Query(m.ctx, `SELECT refund_key FROM billing_unapplied_payments WHERE state = 'refunding'`)
	if err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	return keys
}

// quiesce stops the faults and lets everything settle: scripted behaviours and lookup
// failures are used up on the side, every charge and refund pending at the provider is
// confirmed, held charges land, every webhook is delivered, and the jobs and the
// reconciliation run over days of simulated time.
func (m *model) quiesce(t *rapid.T) {
	m.logf(t, "quiescence: faults stop; everything pending settles")
	m.drainFaults(t)
	for round := range 8 {
		m.undelivered = append(m.undelivered, m.land()...)
		for _, a := range m.attempts(t) {
			if res, err := m.gw.Lookup(m.ctx, payment.LookupParams{IdempotencyKey: a.IdempotencyKey}); err == nil && res.Outcome == payment.OutcomePending {
				ev, err := m.gw.Confirm(res.ProviderPaymentID, payment.OutcomeSucceeded)
				if err != nil {
					t.Fatalf("confirm %s: %v", res.ProviderPaymentID, err)
				}
				m.undelivered = append(m.undelivered, ev)
			}
		}
		keys := m.unappliedRefundKeys(t) // the refunds of unapplied payments, pending at the provider too
		for _, id := range m.refunds {
			r, err := m.eng.RefundRequestGet(m.ctx, id)
			if err != nil || r.GatewayKey == "" {
				continue
			}
			keys = append(keys, r.GatewayKey)
		}
		for _, key := range keys {
			if res, err := m.gw.LookupRefund(m.ctx, payment.RefundLookupParams{IdempotencyKey: key}); err == nil && res.Outcome == payment.OutcomePending {
				ev, err := m.gw.ConfirmRefund(res.ProviderRefundID, payment.OutcomeSucceeded)
				if err != nil {
					t.Fatalf("confirm refund %s: %v", res.ProviderRefundID, err)
				}
				m.undelivered = append(m.undelivered, ev)
			}
		}
		for len(m.undelivered) > 0 {
			ev := m.undelivered[0]
			m.undelivered = m.undelivered[1:]
			m.deliver(t, "quiescence:", ev)
		}
		step := 10 * time.Minute
		if round == 4 {
			step = 6 * 24 * time.Hour // past the dunning retries (1, 3, 5 days)
		}
		if _, err := m.runner.RunUntil(m.ctx, m.now().Add(step)); err != nil {
			t.Fatalf("RunUntil: %v", err)
		}
		if _, err := m.eng.ReconcilePayments(m.ctx); err != nil {
			m.logf(t, "  quiescence: ReconcilePayments: %v", err)
		}
		if n, err := m.eng.SweepDueRenewals(m.ctx); err != nil || n > 0 {
			m.logf(t, "  quiescence: SweepDueRenewals -> %d, %v", n, err)
		}
		if err := m.runner.RunDue(m.ctx); err != nil {
			t.Fatalf("RunDue: %v", err)
		}
	}
	m.logf(t, "quiescence reached at %s", m.now().Format(time.DateTime))
}

// drainFaults uses up the behaviours still scripted and the lookup failures still queued,
// with calls of the test's own (a payment of no subscription of the model, left out of the
// sums), so that nothing the engine does after this meets a fault.
func (m *model) drainFaults(t *rapid.T) {
	for range 1000 { // the model may queue many lookup failures: drain them all
		if _, err := m.gw.Lookup(m.ctx, payment.LookupParams{IdempotencyKey: "drain"}); !errors.Is(err, billingtest.ErrUnavailable) {
			break
		}
	}
	for i := 0; m.gw.ScriptedLeft() > 0 && i < 10; i++ {
		key := m.key("drain")
		receipt, _ := payment.NewChargeReceipt("drain", 100, "RUB", payment.VAT22Of122, payment.Contact{})
		before := m.gw.ScriptedLeft()
		res, _ := m.gw.Charge(m.ctx, payment.ChargeParams{IdempotencyKey: key, PaymentMethod: "tok-drain", CustomerID: "drain",
			Amount: 100, Currency: "RUB", Description: "drain", Receipt: receipt,
			Metadata: map[string]string{billingtest.MetadataSubscriptionID: "drain"}})
		if m.gw.ScriptedLeft() < before {
			continue
		}
		if res.Outcome == payment.OutcomeSucceeded { // only refund behaviours are left
			rr, _ := payment.NewRefundReceipt("drain", 1, "RUB", payment.VAT22Of122, payment.Contact{})
			for j := 0; m.gw.ScriptedLeft() > 0 && j < 10; j++ {
				_, _ = m.gw.Refund(m.ctx, payment.RefundParams{IdempotencyKey: m.key("drain-refund"), ProviderPaymentID: res.ProviderPaymentID,
					Amount: 1, Currency: "RUB", Description: "drain", Receipt: rr})
			}
		}
	}
	if n := m.gw.ScriptedLeft(); n > 0 {
		t.Fatalf("test bug: %d scripted behaviours left after draining", n)
	}
	// A drain charge that LandsLater is held; landing it lands the model's held charges too:
	// remember their keys (they were in flight) and deliver their webhooks like any other.
	m.undelivered = append(m.undelivered, m.land()...)
}

// checkQuiescent checks what must hold once everything has settled.
func (m *model) checkQuiescent(t *rapid.T) {
	ctx := m.ctx
	ours := map[string]*modelSub{}
	for _, s := range m.subs {
		ours[s.id] = s
	}
	var charged, refunded int64
	charges := map[string]billingtest.Charge{}
	for _, c := range m.gw.Charges() {
		if ours[c.Metadata[billingtest.MetadataSubscriptionID]] != nil && !m.excluded[c.ProviderPaymentID] {
			charged += c.Amount
			charges[c.ProviderPaymentID] = c
		}
	}
	var refunds []billingtest.Refund
	for _, r := range m.gw.Refunds() {
		if _, ok := charges[r.ProviderPaymentID]; ok {
			refunded += r.Amount
			refunds = append(refunds, r)
		}
	}

	// Every succeeded charge is in the ledger; one that came after its subscription ended
	// shows as owed back (refunded at the provider, or a refunds_payable entry).
	var problems []string
	kindSet := map[string]bool{}
	problem := func(kind, detail string) {
		kindSet[kind] = true
		problems = append(problems, kind+": "+detail)
	}
	for id, c := range charges {
		var booked, owed bool
		if err := m.pool.QueryRow(ctx, `SELECT
				EXISTS (SELECT 1 FROM billing_ledger_transactions WHERE ref_id = $1),
				EXISTS (SELECT 1 FROM billing_ledger_transactions t JOIN billing_ledger_entries e ON e.tx_id = t.id
					WHERE t.ref_id = $1 AND e.account LIKE 'refunds_payable:%')`, id).Scan(&booked, &owed); err != nil {
			t.Fatalf("ledger of %s: %v", id, err)
		}
		s := ours[c.Metadata[billingtest.MetadataSubscriptionID]]
		where := fmt.Sprintf("%s (%s period %s, key %s)", id, m.subName(s.id), c.Metadata[billingtest.MetadataPeriod], c.IdempotencyKey)
		if !booked {
			problem("a charge succeeded at the provider is not in the ledger", where)
		}
		if s.endedStatus != "" && c.Number > s.endedAtRecord && !m.landed[c.IdempotencyKey] {
			// No charge without a live reason: only a call already in flight when the
			// subscription ended may reach the provider afterwards.
			problem("charged without a live reason", fmt.Sprintf("%s was %s before the charge; %s", m.subName(s.id), s.endedStatus, where))
		}
		if s.endedStatus != "" && c.Number > s.endedAtNumber {
			back := owed || slices.ContainsFunc(refunds, func(r billingtest.Refund) bool { return r.ProviderPaymentID == id })
			if !back {
				problem("charged after the subscription ended, not owed back", fmt.Sprintf("%s was %s; %s", m.subName(s.id), s.endedStatus, where))
			}
		}
	}
	for _, r := range refunds {
		var inLedger bool
		if err := m.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billing_refund_requests q
				JOIN billing_ledger_transactions t ON t.ref_kind = 'refund' AND t.ref_id = q.id::text
				WHERE q.gateway_key = $1)
			OR EXISTS (SELECT 1 FROM billing_unapplied_payments u
				JOIN billing_ledger_transactions t ON t.ref_kind = 'refund' AND t.ref_id = u.id::text
				WHERE u.refund_key = $1)`, r.IdempotencyKey).Scan(&inLedger); err != nil {
			t.Fatalf("ledger of refund %s: %v", r.ProviderRefundID, err)
		}
		if !inLedger {
			problem("a refund paid at the provider is not in the ledger", fmt.Sprintf("refund %s of %s", r.ProviderRefundID, r.ProviderPaymentID))
		}
	}
	bal, err := m.eng.Ledger().Balance(ctx, "provider:RUB", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("balance: %v", err)
	}
	if bal.Net() != charged-refunded {
		problem("money at the provider ≠ provider:RUB", fmt.Sprintf("at the provider %d (charged %d − refunded %d), in the books %d",
			charged-refunded, charged, refunded, bal.Net()))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		kinds := slices.Sorted(maps.Keys(kindSet))
		m.violation(t, "provider ≠ books at quiescence: "+strings.Join(kinds, "; "), "\n  %s", strings.Join(problems, "\n  "))
	}

	var refunding int
	if err := m.pool.QueryRow(ctx, `SELECT count(*) FROM billing_unapplied_payments WHERE state = 'refunding'`).Scan(&refunding); err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	if refunding > 0 { // refunded, or parked for a person after its refund kept failing
		m.violation(t, "an unapplied payment is still being refunded at quiescence", "%d unapplied payment(s) refunding", refunding)
	}

	for _, a := range m.attempts(t) {
		switch a.State {
		case payment.StateCreated, payment.StateUnknown, payment.StatePending:
			m.violation(t, "a charge attempt is still open at quiescence", "attempt %s (%s period %d) still %s", a.IdempotencyKey, m.subName(a.SubscriptionID), a.PeriodNumber, a.State)
		}
	}

	for _, s := range m.subs {
		sub := m.get(t, s.id)
		if sub.Status.Final() || sub.Status == subscription.StatusSuspended {
			continue
		}
		if sub.Status == subscription.StatusPending {
			if as, _ := m.eng.AttemptList(ctx, s.id); len(as) == 0 {
				continue // a checkout the customer has not paid yet: waiting for the customer
			}
		}
		if sub.Current != nil && !m.now().Before(sub.Current.End.Add(time.Hour)) {
			// Quiescence ran days of jobs, sweeps and reconciliation past the last dunning
			// retry: a subscription whose period is over was renewed or ended by now. A job
			// that runs and does nothing is no way forward.
			m.violation(t, "a subscription stuck past its period end", "%s is %s, period %d ended %s, now %s (auto-renew %v, card %q); its jobs: %s",
				m.subName(s.id), sub.Status, sub.Current.Number, sub.Current.End.Format(time.DateTime), m.now().Format(time.DateTime),
				sub.AutoRenew, sub.PaymentMethod, m.jobsOf(t, s.id))
		}
		var jobs int
		q := `SELECT count(*) FROM ` + riverJob + ` WHERE kind = 'billing_renew'
			AND args->>'subscription_id' = $1 AND state IN ('available', 'scheduled', 'retryable', 'running')`
		if m.claims { // the renewal run waiting is the subscription's renew_at
			q = `SELECT count(*) FROM billing_subscriptions WHERE id = $1 AND renew_at IS NOT NULL`
		}
		if err := m.pool.QueryRow(ctx, q, s.id).Scan(&jobs); err != nil {
			t.Fatalf("jobs: %v", err)
		}
		if jobs == 0 {
			end := "no period"
			if sub.Current != nil {
				end = fmt.Sprintf("period %d ends %s", sub.Current.Number, sub.Current.End.Format(time.DateTime))
			}
			m.violation(t, "a subscription with no way forward", "%s is %s (%s, auto-renew %v, card %q, now %s): not final, not suspended, no renewal job; its jobs: %s",
				m.subName(s.id), sub.Status, end, sub.AutoRenew, sub.PaymentMethod, m.now().Format(time.DateTime), m.jobsOf(t, s.id))
		}
	}
}

// modelLogger is the engine's logger in the model: discarded, or text on stderr with
// BILLING_MODEL_ENGINE_LOG=1 (to follow a failing sequence).
func modelLogger() *slog.Logger {
	if os.Getenv("BILLING_MODEL_ENGINE_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
