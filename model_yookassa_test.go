package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
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
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// TestEngineModelYooKassa is TestEngineModel's idea with the YooKassa adapter on the
// YooKassa simulator as the gateway: rapid draws a random sequence of commands over a few
// subscriptions (checkout with a saved card or on YooKassa's page, first payment charged or
// failed, the customer paying or abandoning the page, auto-renew, operator actions, consent
// withdrawn, refunds), the simulator's behaviour scripted per card (every documented decline
// reason, pending, pending then settled, the answer lost after success, 500, 429; failed
// GETs; refunds declined, pending or lost), YooKassa's notifications (parsed by the adapter
// from the simulator's bodies: delivered, duplicated, dropped, forged), reconciliation, the
// renewal sweep and the clock (minutes, to a period end, past the 24 hours YooKassa keeps a
// key), with the due River jobs run by billingtest.Runner. Engine, adapter and simulator
// read one clock.
//
// After every step it checks, against the simulator's own records (never the engine's
// word): a zero trial balance; every payment the ledger books is succeeded at the
// simulator; no access to a paid period without a succeeded payment for it at the
// simulator; at most one succeeded payment per subscription period at the simulator (a
// payment the engine booked unapplied because the subscription could take none is left
// out, as in TestEngineModel). At the end the faults are used up, every pending payment
// and refund is settled, every notification delivered, and the jobs, reconciliation and
// sweep run for days; then: every succeeded payment and refund at the simulator is in the
// ledger, provider:RUB equals the simulator's succeeded payments less succeeded refunds, no
// charge attempt is open (one parked for a person after repeated failed lookups is logged,
// not counted), no unapplied payment is still being refunded.
//
// BILLING_YK_MODEL_CHECKS sets the number of checks (default ykModelChecks),
// BILLING_YK_MODEL_STEPS rapid's -rapid.steps, BILLING_YK_MODEL_DISABLE leaves actions out
// (comma-separated names), BILLING_MODEL_DEBUG=1 logs every check's steps. A soak run:
//
//	BILLING_YK_MODEL_CHECKS=300 ./scripts/pg-tmp.sh go test -run TestEngineModelYooKassa -v -rapid.shrinktime=5m .
func TestEngineModelYooKassa(t *testing.T) {
	t.Parallel()
	billingtest.DatabaseURL(t) // skip without PostgreSQL, before rapid starts
	checks := envInt(t, "BILLING_YK_MODEL_CHECKS", ykModelChecks)
	if f := flag.Lookup("rapid.checks"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < checks {
			_ = f.Value.Set(strconv.Itoa(checks))
		}
	}
	if s := os.Getenv("BILLING_YK_MODEL_STEPS"); s != "" {
		if err := flag.Set("rapid.steps", s); err != nil {
			t.Fatalf("BILLING_YK_MODEL_STEPS=%q: %v", s, err)
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
		m := newYKModel(t, rt, n)
		defer m.close(rt)
		rt.Repeat(m.actions())
		m.quiesce(rt)
		m.checkAlways(rt)
		m.checkQuiescent(rt)
		t.Logf("yookassa model check %d: %d steps; %s; %s", n, m.steps, m.stats(), time.Since(start).Round(time.Millisecond))
	})
}

// stats summarizes what a check did at the simulator, for the log.
func (m *ykModel) stats() string {
	var ours, succeeded, refunds, maxPeriod int
	for _, p := range m.sim.Payments() {
		if !m.ours(p) {
			continue
		}
		ours++
		if p.Payment.Status == "succeeded" {
			succeeded++
		}
		n, _ := strconv.Atoi(p.Payment.Metadata[billingtest.MetadataPeriod])
		maxPeriod = max(maxPeriod, n)
	}
	for _, r := range m.sim.Refunds() {
		if !m.drainPayments[r.Refund.PaymentID] && r.Refund.Status == "succeeded" {
			refunds++
		}
	}
	var unapplied int
	_ = m.pool.QueryRow(m.ctx, `SELECT count(*) FROM billing_unapplied_payments`).Scan(&unapplied)
	return fmt.Sprintf("%d subscriptions, %d payments (%d succeeded, periods up to %d), %d refunds, %d unapplied at the end",
		len(m.subs), ours, succeeded, maxPeriod, refunds, unapplied)
}

// ykModelChecks is how many checks TestEngineModelYooKassa runs by default.
const ykModelChecks = 30

// ykSub is a subscription the model made.
type ykSub struct {
	id, customer, card, tariff string
}

// ykModel is one rapid check: the engine on the adapter on the simulator, and what the test
// did.
type ykModel struct {
	t      *testing.T
	ctx    context.Context
	run    int
	tb     *runTB
	pool   *pgxpool.Pool
	eng    *billing.Engine
	sim    *yookassatest.Server
	gw     *yookassa.Gateway
	drain  *yookassa.Gateway // the test's own calls: no retries, one request each
	clock  *billingtest.Clock
	runner *billingtest.Runner
	client *river.Client[pgx.Tx]

	customers []string
	subs      []*ykSub
	refunds   []string
	// seen is how many of the simulator's notifications were taken into undelivered.
	seen        int
	undelivered []ykNote
	delivered   []ykNote
	// scripted are the payment methods the model scripted behaviours for ("" for ScriptAll);
	// refundsScripted counts the refund behaviours queued; getsFailed says whether GET failures
	// were. Each queue takes at most ykMaxScripted behaviours in a check.
	scripted        map[string]int
	refundsScripted int
	getsFailed      bool
	// drainPayments are the simulator ids of the test's own payments (see drainFaults).
	drainPayments map[string]bool
	// hook receives the simulator's notifications as it makes them (in checks drawn to
	// have YooKassa's notifications arrive at once, before the answer that made them);
	// hookLog is what it did, for the step's log.
	hook    *httptest.Server
	hookMu  sync.Mutex
	hookLog []string
	seq     int
	steps   int
	debug   bool
}

// ykNote is a notification of the simulator.
type ykNote struct {
	event, object string
	body          []byte
	tries         int
}

func newYKModel(t *testing.T, rt *rapid.T, run int) *ykModel {
	ctx := context.Background()
	tb := &runTB{T: t}
	pool := billingtest.NewPool(tb)
	clock := billingtest.NewClock(modelStart)
	sim := yookassatest.New()
	sim.SetClock(clock.Now)
	m := &ykModel{t: t, ctx: ctx, run: run, tb: tb, pool: pool, clock: clock, sim: sim,
		runner:    billingtest.NewRunner(pool, clock),
		customers: []string{"c1", "c2", "c3"}, scripted: map[string]int{}, drainPayments: map[string]bool{},
		debug: os.Getenv("BILLING_MODEL_DEBUG") != ""}
	adapter := func(attempts int) *yookassa.Gateway {
		gw, err := yookassa.New(yookassa.Config{
			ShopID: sim.ShopID(), SecretKey: yookassa.NewSecret(sim.SecretKey()), BaseURL: sim.URL(),
			HTTPClient: sim.Client(), Timeout: 10 * time.Second, Clock: clock,
			Retry: yookassa.RetryPolicy{MaxAttempts: attempts, BaseDelay: time.Millisecond},
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		})
		if err != nil {
			m.close(rt)
			rt.Fatalf("yookassa.New: %v", err)
		}
		return gw
	}
	// The engine's adapter retries (a lost answer is asked again under its key) in some
	// checks, and not in others (Lookup settles what was lost).
	m.gw = adapter(rapid.SampledFrom([]int{1, 3}).Draw(rt, "adapter attempts"))
	m.drain = adapter(1)
	if rapid.Bool().Draw(rt, "notifications at once") {
		// The simulator POSTs each notification before it answers the request that made
		// it: the engine hears of a payment before the adapter has its answer.
		m.hook = httptest.NewServer(http.HandlerFunc(m.receive))
		sim.SetWebhookURL(m.hook.URL)
	}
	cfg := billing.DefaultConfig()
	cfg.Logger = modelLogger()
	cfg.Clock, cfg.Gateway, cfg.VAT = clock, m.gw, payment.VAT22Of122
	cfg.ReceiptContact = func(_ context.Context, customerID string) (payment.Contact, error) {
		return payment.Contact{Email: customerID + "@example.ru"}, nil
	}
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

// start is model.start: River without leader election, so that only the Runner moves jobs.
func (m *ykModel) start(cfg billing.Config) error {
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
	return nil
}

// settle waits until River has worked every job a step made available (see model.settle).
func (m *ykModel) settle(t *rapid.T) {
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

func (m *ykModel) close(rt *rapid.T) {
	if m.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = m.client.Stop(ctx)
		cancel()
		m.client = nil
	}
	if m.sim != nil {
		m.sim.SetWebhookURL("")
		m.sim.Close()
		m.sim = nil
	}
	if m.hook != nil {
		m.hook.Close()
		m.hook = nil
	}
	if errs := m.tb.runCleanups(); len(errs) > 0 {
		rt.Logf("VIOLATION details: %s", strings.Join(errs, "; "))
		rt.Fatalf("VIOLATION: billingtest.NewPool's check at the end failed")
	}
}

func (m *ykModel) key(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s-%d-%d", prefix, m.run, m.seq)
}

func (m *ykModel) logf(t *rapid.T, format string, args ...any) {
	t.Logf(format, args...)
	if m.debug {
		m.t.Logf("yk check %d: "+format, append([]any{m.run}, args...)...)
	}
}

func (m *ykModel) now() time.Time { return m.clock.Now() }

// card is a customer's saved card at YooKassa (a payment_method_id the simulator accepts).
func (m *ykModel) card(customer string) string { return "pm-card-" + customer }

// result logs what a command did (see model.result).
func (m *ykModel) result(t *rapid.T, what string, err error) {
	switch {
	case err == nil:
		m.logf(t, "  %s: ok", what)
	case slices.ContainsFunc(expectedErrs, func(e error) bool { return errors.Is(err, e) }):
		m.logf(t, "  %s: refused: %v", what, err)
	default:
		m.logf(t, "  %s: error: %v", what, err)
	}
}

// pickSub draws a subscription, mostly one that has not ended (an ended one refuses most
// commands, which is worth trying now and then, not at every step).
func (m *ykModel) pickSub(t *rapid.T) *ykSub {
	if len(m.subs) == 0 {
		t.Skip("no subscription yet")
	}
	var live []*ykSub
	for _, s := range m.subs {
		if !m.get(t, s.id).Status.Final() {
			live = append(live, s)
		}
	}
	if len(live) > 0 && rapid.IntRange(0, 3).Draw(t, "any subscription") != 0 {
		return live[rapid.IntRange(0, len(live)-1).Draw(t, "live sub")]
	}
	return m.subs[rapid.IntRange(0, len(m.subs)-1).Draw(t, "sub")]
}

func (m *ykModel) get(t *rapid.T, id string) subscription.Subscription {
	sub, err := m.eng.SubscriptionGet(m.ctx, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return sub
}

func (m *ykModel) attempts(t *rapid.T) []payment.Attempt {
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

func (m *ykModel) subName(id string) string {
	for i, s := range m.subs {
		if s.id == id {
			return fmt.Sprintf("s%d", i+1)
		}
	}
	return id
}

func (m *ykModel) periodName(periodID string) string {
	id, n, ok := strings.Cut(periodID, "/")
	if !ok {
		return periodID
	}
	return m.subName(id) + "/" + n
}

// ours reports whether a simulator payment is one of the model's subscriptions'.
func (m *ykModel) ours(p yookassatest.PaymentRecord) bool {
	id := p.Payment.Metadata[billingtest.MetadataSubscriptionID]
	return slices.ContainsFunc(m.subs, func(s *ykSub) bool { return s.id == id })
}

// collect takes the simulator's new notifications into undelivered (the test's own payments'
// are left out: the engine never heard of them).
func (m *ykModel) collect() {
	notes := m.sim.Notifications()
	for _, n := range notes[m.seen:] {
		if m.drainPayments[n.ObjectID] || m.isDrainRefund(n) {
			continue
		}
		m.undelivered = append(m.undelivered, ykNote{event: n.Event, object: n.ObjectID, body: n.Body})
	}
	m.seen = len(notes)
}

func (m *ykModel) isDrainRefund(n yookassatest.SentNotification) bool {
	if !strings.HasPrefix(n.Event, "refund.") {
		return false
	}
	var body struct {
		Object struct {
			PaymentID string `json:"payment_id"`
		} `json:"object"`
	}
	_ = json.Unmarshal(n.Body, &body)
	return m.drainPayments[body.Object.PaymentID]
}

func (m *ykModel) actions() map[string]func(*rapid.T) {
	step := func(f func(*rapid.T)) func(*rapid.T) {
		return func(t *rapid.T) {
			f(t) // a skipped action does not return
			m.settle(t)
			m.logHook(t)
			m.collect()
			m.steps++
		}
	}
	a := map[string]func(*rapid.T){
		"":                m.checkAlways,
		"subscribe":       m.subscribe,
		"chargeFirst":     m.chargeFirst,
		"startCheckout":   m.startCheckout,
		"failFirst":       m.failFirst,
		"customerOnPage":  m.customerOnPage,
		"settlePending":   m.settlePending,
		"setAutoRenew":    m.setAutoRenew,
		"suspendResume":   m.suspendResume,
		"terminate":       m.terminate,
		"withdrawConsent": m.withdrawConsent,
		"requestRefund":   m.requestRefund,
		"moveRefund":      m.moveRefund,
		"scriptCard":      m.scriptCard,
		"scriptRefunds":   m.scriptRefunds,
		"failGETs":        m.failGETs,
		"deliver":         m.deliverNote,
		"duplicate":       m.duplicateNote,
		"drop":            m.dropNote,
		"forge":           m.forgeNote,
		"reconcile":       m.reconcile,
		"sweep":           m.sweep,
		"clockMinutes":    m.clockMinutes,
		"clockPeriodEnd":  m.clockPeriodEnd,
		"clockPastKeys":   m.clockPastKeys,
		"duplicateRenew":  m.duplicateRenew,
	}
	if s := os.Getenv("BILLING_YK_MODEL_DISABLE"); s != "" {
		for name := range strings.SplitSeq(s, ",") {
			delete(a, name)
		}
	}
	for k, f := range a {
		if k != "" {
			a[k] = step(f)
		}
	}
	return a
}

// --- Actions ---------------------------------------------------------------------------

func (m *ykModel) subscribe(t *rapid.T) {
	if len(m.subs) >= 6 {
		t.Skip("enough subscriptions")
	}
	customer := rapid.SampledFrom(m.customers).Draw(t, "customer")
	card := m.card(customer)
	if rapid.IntRange(0, 2).Draw(t, "no card: pays on YooKassa's page") == 0 {
		card = ""
	}
	code := "pro"
	if rapid.IntRange(0, 9).Draw(t, "free") == 0 {
		code = "free"
	}
	sub, err := m.eng.Subscribe(m.ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: code,
		PaymentMethod: card, IdempotencyKey: m.key("checkout")})
	if err == nil {
		m.subs = append(m.subs, &ykSub{id: sub.ID, customer: customer, card: card, tariff: code})
	}
	m.result(t, fmt.Sprintf("Subscribe(%s, %s, card %q) -> s%d %s", customer, code, card, len(m.subs), sub.Status), err)
}

func (m *ykModel) chargeFirst(t *rapid.T) {
	s := m.pickSub(t)
	res, err := m.eng.ChargeFirstPayment(m.ctx, s.id)
	m.result(t, fmt.Sprintf("ChargeFirstPayment(%s) -> %s, attempt %s %s", m.subName(s.id), res.Subscription.Status,
		res.Attempt.State, res.Attempt.ProviderPaymentID), err)
}

func (m *ykModel) startCheckout(t *rapid.T) {
	s := m.pickSub(t)
	co, err := m.eng.StartCheckout(m.ctx, s.id, "https://app.example/return")
	m.result(t, fmt.Sprintf("StartCheckout(%s) -> %s, attempt %s %s, page %q", m.subName(s.id), co.Subscription.Status,
		co.Attempt.State, co.Attempt.ProviderPaymentID, co.ConfirmationURL), err)
}

func (m *ykModel) failFirst(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	s := m.pickSub(t)
	_, err := m.eng.FailFirstPayment(m.ctx, s.id, "checkout abandoned")
	m.result(t, fmt.Sprintf("FailFirstPayment(%s)", m.subName(s.id)), err)
}

// pendingPayments are the model's payments pending at the simulator; checkout picks the
// ones made for YooKassa's page (true) or autopayments (false).
func (m *ykModel) pendingPayments(checkout bool) []yookassatest.PaymentRecord {
	var out []yookassatest.PaymentRecord
	for _, p := range m.sim.Payments() {
		if m.ours(p) && p.Payment.Status == "pending" && (p.PaymentMethodID == "") == checkout {
			out = append(out, p)
		}
	}
	return out
}

// customerOnPage is the customer on YooKassa's page of a checkout payment: pays, or leaves
// it (expired_on_confirmation).
func (m *ykModel) customerOnPage(t *rapid.T) {
	ps := m.pendingPayments(true)
	if len(ps) == 0 {
		t.Skip("no checkout payment pending")
	}
	p := ps[rapid.IntRange(0, len(ps)-1).Draw(t, "checkout payment")]
	if rapid.IntRange(0, 2).Draw(t, "abandons") == 0 {
		err := m.sim.Cancel(p.Payment.ID, "expired_on_confirmation")
		m.logf(t, "  customer abandons the page of %s (%s): %v", p.Payment.ID, m.subName(p.Payment.Metadata["subscription_id"]), err)
		return
	}
	err := m.sim.Succeed(p.Payment.ID)
	m.logf(t, "  customer pays on the page of %s (%s): %v", p.Payment.ID, m.subName(p.Payment.Metadata["subscription_id"]), err)
}

// declineReasons are the documented cancellation reasons a card payment may end with.
var ykDeclineReasons = slices.Sorted(maps.Keys(yookassatest.PaymentCancellationReasons))

// settlePending settles an autopayment or a refund pending at the simulator.
func (m *ykModel) settlePending(t *rapid.T) {
	ps := m.pendingPayments(false)
	var rs []yookassatest.RefundRecord
	for _, r := range m.sim.Refunds() {
		if r.Refund.Status == "pending" && !m.drainPayments[r.Refund.PaymentID] {
			rs = append(rs, r)
		}
	}
	if len(ps)+len(rs) == 0 {
		t.Skip("nothing pending")
	}
	i := rapid.IntRange(0, len(ps)+len(rs)-1).Draw(t, "pending")
	succeed := rapid.IntRange(0, 2).Draw(t, "declined") != 0
	if i < len(ps) {
		id := ps[i].Payment.ID
		if succeed {
			m.logf(t, "  YooKassa: pending payment %s succeeds: %v", id, m.sim.Succeed(id))
			return
		}
		reason := rapid.SampledFrom(ykDeclineReasons).Draw(t, "reason")
		m.logf(t, "  YooKassa: pending payment %s canceled (%s): %v", id, reason, m.sim.Cancel(id, reason))
		return
	}
	id := rs[i-len(ps)].Refund.ID
	if succeed {
		m.logf(t, "  YooKassa: pending refund %s succeeds: %v", id, m.sim.SucceedRefund(id))
		return
	}
	reason := rapid.SampledFrom(slices.Sorted(maps.Keys(yookassatest.RefundCancellationReasons))).Draw(t, "refund reason")
	m.logf(t, "  YooKassa: pending refund %s canceled (%s): %v", id, reason, m.sim.CancelRefund(id, reason))
}

func (m *ykModel) setAutoRenew(t *rapid.T) {
	s := m.pickSub(t)
	on := rapid.Bool().Draw(t, "on")
	_, err := m.eng.SetAutoRenew(m.ctx, s.id, on, "customer:"+s.customer)
	m.result(t, fmt.Sprintf("SetAutoRenew(%s, %v)", m.subName(s.id), on), err)
}

func (m *ykModel) suspendResume(t *rapid.T) {
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

func (m *ykModel) terminate(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	s := m.pickSub(t)
	_, err := m.eng.Terminate(m.ctx, s.id, subscription.AdminAction{Actor: "admin:1", Reason: "model test"})
	m.result(t, fmt.Sprintf("Terminate(%s)", m.subName(s.id)), err)
}

// withdrawConsent withdraws the consent to the card a subscription renews from (the saved
// card, or the method YooKassa saved at a checkout on its page).
func (m *ykModel) withdrawConsent(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "rarely") != 0 {
		t.Skip("rare")
	}
	s := m.pickSub(t)
	method := m.get(t, s.id).PaymentMethod
	if method == "" {
		method = m.card(s.customer)
	}
	err := withdrawConsent(m.ctx, m.eng, s.customer, method)
	m.result(t, fmt.Sprintf("WithdrawConsent(%s, %s)", s.customer, method), err)
}

func (m *ykModel) requestRefund(t *rapid.T) {
	s := m.pickSub(t)
	r, err := m.eng.RequestRefund(m.ctx, billing.RefundRequestParams{SubscriptionID: s.id, ReceivedAt: m.now(),
		Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: m.key("refund")})
	if err == nil {
		m.refunds = append(m.refunds, r.ID)
	}
	m.result(t, fmt.Sprintf("RequestRefund(%s) -> f%d period %d eligible %v", m.subName(s.id), len(m.refunds), r.Period, r.Eligible), err)
}

func (m *ykModel) moveRefund(t *rapid.T) {
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

// ykBehaviour draws a behaviour of the simulator for the next payment (refund false) or
// refund.
func ykBehaviour(t *rapid.T, forRefund bool) yookassatest.Behaviour {
	reasons := ykDeclineReasons
	if forRefund {
		reasons = slices.Sorted(maps.Keys(yookassatest.RefundCancellationReasons))
	}
	switch rapid.IntRange(0, 7).Draw(t, "behaviour kind") {
	case 0, 1:
		return yookassatest.Decline(rapid.SampledFrom(reasons).Draw(t, "decline reason"))
	case 2:
		return yookassatest.Pending()
	case 3:
		after := time.Duration(rapid.IntRange(1, 120).Draw(t, "settles after minutes")) * time.Minute
		then := yookassatest.Success()
		if rapid.Bool().Draw(t, "then declined") {
			then = yookassatest.Decline(rapid.SampledFrom(reasons).Draw(t, "then reason"))
		}
		return yookassatest.PendingThen(after, then)
	case 4:
		return yookassatest.TimeoutAfterSuccess()
	case 5:
		return yookassatest.InternalError()
	case 6:
		return yookassatest.TooManyRequests()
	default:
		return yookassatest.InternalErrorAfterSuccess()
	}
}

// scriptCard scripts the next payment of a card (a customer's saved card, a method YooKassa
// saved at a checkout), or of any payment.
func (m *ykModel) scriptCard(t *rapid.T) {
	var methods []string
	for _, c := range m.customers {
		methods = append(methods, m.card(c))
	}
	for _, s := range m.subs {
		if pm := m.get(t, s.id).PaymentMethod; pm != "" && !slices.Contains(methods, pm) {
			methods = append(methods, pm)
		}
	}
	methods = append(methods, "") // any payment, checkouts on the page included
	method := rapid.SampledFrom(methods).Draw(t, "method")
	if m.scripted[method] >= ykMaxScripted {
		t.Skip("enough scripted")
	}
	n := rapid.IntRange(1, 3).Draw(t, "behaviours")
	var bs []yookassatest.Behaviour
	for range n {
		bs = append(bs, ykBehaviour(t, false))
	}
	if method == "" {
		m.sim.ScriptAll(bs...)
	} else {
		m.sim.Script(method, bs...)
	}
	m.scripted[method] += n
	m.logf(t, "  YooKassa: the next payments of %q play %v", method, bs)
}

// ykMaxScripted caps the behaviours queued for one card (or ScriptAll, or refunds) in a
// check: enough to meet every fault, few enough to drain at the end.
const ykMaxScripted = 8

func (m *ykModel) scriptRefunds(t *rapid.T) {
	if m.refundsScripted >= ykMaxScripted {
		t.Skip("enough scripted")
	}
	n := rapid.IntRange(1, 2).Draw(t, "refund behaviours")
	var bs []yookassatest.Behaviour
	for range n {
		bs = append(bs, ykBehaviour(t, true))
	}
	m.sim.ScriptRefunds(bs...)
	m.refundsScripted += n
	m.logf(t, "  YooKassa: the next refunds play %v", bs)
}

func (m *ykModel) failGETs(t *rapid.T) {
	n := rapid.IntRange(1, 4).Draw(t, "failed GETs")
	status := rapid.SampledFrom([]int{http.StatusInternalServerError, http.StatusTooManyRequests}).Draw(t, "status")
	m.sim.FailGETs(n, status)
	m.getsFailed = true
	m.logf(t, "  YooKassa: the next %d GETs answer %d", n, status)
}

// deliver is the host's notification endpoint (see yooBundle.deliver): the adapter parses
// the body, the engine confirms it with a lookup. A refused notification (a non-2xx answer)
// is delivered again later, as YooKassa does, a few times at most.
func (m *ykModel) deliver(t *rapid.T, what string, n ykNote) {
	ev, err := m.gw.ParseNotification(n.body)
	if errors.Is(err, yookassa.ErrUnknownEvent) {
		m.logf(t, "  %s notification %s %s: not handled (200)", what, n.event, n.object)
		return
	}
	if err != nil {
		t.Fatalf("ParseNotification(%s %s): %v", n.event, n.object, err)
	}
	if ev.Kind == payment.KindRefund {
		_, err = m.eng.HandleRefundWebhook(m.ctx, ev)
	} else {
		_, err = m.eng.HandlePaymentWebhook(m.ctx, ev)
	}
	m.result(t, fmt.Sprintf("%s notification %s %s (%s, key %s)", what, n.event, n.object, ev.Outcome, ev.IdempotencyKey), err)
	if err != nil && what != "FORGED" && n.tries < 5 {
		n.tries++
		m.undelivered = append(m.undelivered, n)
	}
}

// receive is the host's notification endpoint for notifications the simulator POSTs itself
// (see newYKModel): parsed by the adapter, handed to the engine, answered 200 or 500 (a
// notification refused is delivered again later from undelivered, as every notification
// is). It runs on the simulator's goroutine: it logs to hookLog, not to the rapid.T.
func (m *ykModel) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev, err := m.gw.ParseNotification(body)
	what := "unhandled event"
	if err == nil {
		if ev.Kind == payment.KindRefund {
			_, err = m.eng.HandleRefundWebhook(r.Context(), ev)
		} else {
			_, err = m.eng.HandlePaymentWebhook(r.Context(), ev)
		}
		what = fmt.Sprintf("%s %s%s %s (key %s)", ev.Kind, ev.ProviderPaymentID, "/"+ev.ProviderRefundID, ev.Outcome, ev.IdempotencyKey)
	} else if errors.Is(err, yookassa.ErrUnknownEvent) {
		err = nil
	}
	m.hookMu.Lock()
	m.hookLog = append(m.hookLog, fmt.Sprintf("notification at once: %s: %v", what, err))
	m.hookMu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// logHook logs what receive did during the step, and the notifications the simulator
// could not POST (a receiver that hangs while the request that made the notification waits:
// a stall worth a look, though not a violation of the invariants).
func (m *ykModel) logHook(t *rapid.T) {
	m.hookMu.Lock()
	lines := m.hookLog
	m.hookLog = nil
	m.hookMu.Unlock()
	for _, l := range lines {
		m.logf(t, "  %s", l)
	}
	if m.hook == nil {
		return
	}
	for _, n := range m.sim.Notifications()[m.seen:] {
		if n.Attempted && n.StatusCode == 0 {
			m.logf(t, "  STALL: the simulator could not POST %s %s: %s", n.Event, n.ObjectID, n.Err)
		}
	}
}

func (m *ykModel) deliverNote(t *rapid.T) {
	if len(m.undelivered) == 0 {
		t.Skip("no notification")
	}
	i := rapid.IntRange(0, len(m.undelivered)-1).Draw(t, "notification")
	n := m.undelivered[i]
	m.undelivered = slices.Delete(m.undelivered, i, i+1)
	m.delivered = append(m.delivered, n)
	m.deliver(t, "genuine", n)
}

func (m *ykModel) duplicateNote(t *rapid.T) {
	if len(m.delivered) == 0 {
		t.Skip("no notification delivered")
	}
	n := m.delivered[rapid.IntRange(0, len(m.delivered)-1).Draw(t, "notification")]
	n.tries = 5 // not redelivered again
	m.deliver(t, "duplicate", n)
}

// dropNote loses a notification: YooKassa gave up on it.
func (m *ykModel) dropNote(t *rapid.T) {
	if len(m.undelivered) == 0 {
		t.Skip("no notification")
	}
	i := rapid.IntRange(0, len(m.undelivered)-1).Draw(t, "notification")
	n := m.undelivered[i]
	m.undelivered = slices.Delete(m.undelivered, i, i+1)
	m.logf(t, "  notification %s %s lost", n.event, n.object)
}

// forgeNote sends a body claiming success for one of the model's payments that is not
// succeeded at the simulator (pending or canceled), from YooKassa's own format.
func (m *ykModel) forgeNote(t *rapid.T) {
	var cands []yookassatest.PaymentRecord
	for _, p := range m.sim.Payments() {
		if m.ours(p) && p.Payment.Status != "succeeded" {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		t.Skip("no payment to lie about")
	}
	p := cands[rapid.IntRange(0, len(cands)-1).Draw(t, "payment")]
	lie := p.Payment
	lie.Status, lie.Paid, lie.CancellationDetails = "succeeded", true, nil
	if lie.PaymentMethod == nil {
		lie.PaymentMethod = &yookassatest.PaymentMethod{Type: "bank_card", ID: "pm-forged", Saved: true}
	}
	body, err := json.Marshal(yookassatest.Notification{Type: "notification", Event: "payment.succeeded", Object: lie})
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	m.deliver(t, "FORGED", ykNote{event: "payment.succeeded", object: lie.ID, body: body})
}

func (m *ykModel) reconcile(t *rapid.T) {
	n, err := m.eng.ReconcilePayments(m.ctx)
	m.result(t, fmt.Sprintf("ReconcilePayments -> %d", n), err)
}

func (m *ykModel) sweep(t *rapid.T) {
	n, err := m.eng.SweepDueRenewals(m.ctx)
	m.result(t, fmt.Sprintf("SweepDueRenewals -> %d", n), err)
}

func (m *ykModel) moveClock(t *rapid.T, until time.Time, runJobs bool) {
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

func (m *ykModel) clockMinutes(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 60).Draw(t, "minutes")) * time.Minute
	m.moveClock(t, m.now().Add(d), rapid.IntRange(0, 3).Draw(t, "delay jobs") != 0)
}

func (m *ykModel) clockPeriodEnd(t *rapid.T) {
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

// clockPastKeys moves the clock past the 24 hours YooKassa keeps an idempotence key.
func (m *ykModel) clockPastKeys(t *rapid.T) {
	d := yookassatest.IdempotenceWindow + time.Duration(rapid.IntRange(1, 180).Draw(t, "minutes more"))*time.Minute
	m.moveClock(t, m.now().Add(d), rapid.IntRange(0, 3).Draw(t, "delay jobs") != 0)
}

func (m *ykModel) duplicateRenew(t *rapid.T) {
	s := m.pickSub(t)
	sub := m.get(t, s.id)
	if sub.Current == nil {
		t.Skip("no period")
	}
	p := max(1, sub.Current.Number-rapid.IntRange(0, 1).Draw(t, "older period"))
	err := billing.RenewPeriod(m.eng, m.ctx, s.id, p)
	m.result(t, fmt.Sprintf("RenewPeriod(%s, %d) directly", m.subName(s.id), p), err)
}

// --- Invariants ------------------------------------------------------------------------

func (m *ykModel) violation(t *rapid.T, kind, format string, args ...any) {
	m.logf(t, "VIOLATION %s: "+format, append([]any{kind}, args...)...)
	t.Fatalf("VIOLATION %s", kind)
}

// succeededAtSim returns the model's payments succeeded at the simulator by id.
func (m *ykModel) succeededAtSim() map[string]yookassatest.PaymentRecord {
	out := map[string]yookassatest.PaymentRecord{}
	for _, p := range m.sim.Payments() {
		if m.ours(p) && p.Payment.Status == "succeeded" {
			out[p.Payment.ID] = p
		}
	}
	return out
}

// landedOnNothing are the payments the engine booked unapplied because the subscription
// could take none (see model.checkAlways).
func (m *ykModel) landedOnNothing(t *rapid.T) map[string]bool {
	out := map[string]bool{}
	rows, err := m.pool.Query(m.ctx, `SELECT provider_payment_id FROM billing_unapplied_payments
		WHERE reason LIKE 'renewal of a subscription that is %' OR reason LIKE 'checkout of a subscription that is %'`)
	if err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("scan: %v", err)
		}
		out[id] = true
	}
	return out
}

// checkAlways checks what must hold after every step, against the simulator's records.
func (m *ykModel) checkAlways(t *rapid.T) {
	ctx := m.ctx
	if _, err := m.eng.Ledger().TrialBalance(ctx); err != nil {
		m.violation(t, "trial balance not zero", "%v", err)
	}
	succeeded := m.succeededAtSim()
	nothing := m.landedOnNothing(t)
	perPeriod := map[string][]string{}
	for id, p := range succeeded {
		if nothing[id] {
			continue
		}
		k := p.Payment.Metadata[billingtest.MetadataSubscriptionID] + "/" + p.Payment.Metadata[billingtest.MetadataPeriod]
		perPeriod[k] = append(perPeriod[k], id)
	}
	for k, ids := range perPeriod {
		if len(ids) > 1 {
			slices.Sort(ids)
			m.violation(t, "YooKassa holds two succeeded payments for one period", "%d for period %s: %v", len(ids), m.periodName(k), ids)
		}
	}

	rows, err := m.pool.Query(ctx, `SELECT ref_id, coalesce(period_id, '') FROM billing_ledger_transactions
		WHERE ref_kind = 'payment' AND reverses IS NULL ORDER BY posted_at`)
	if err != nil {
		t.Fatalf("ledger payments: %v", err)
	}
	var notHeld []string
	for rows.Next() {
		var ref, period string
		if err := rows.Scan(&ref, &period); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if _, ok := succeeded[ref]; !ok {
			notHeld = append(notHeld, fmt.Sprintf("%s (period %s)", ref, m.periodName(period)))
		}
	}
	rows.Close()
	if len(notHeld) > 0 {
		m.violation(t, "the ledger books a payment YooKassa does not hold as succeeded", "%v", notHeld)
	}

	for _, s := range m.subs {
		sub := m.get(t, s.id)
		d, err := m.eng.Access(ctx, s.id)
		if err != nil {
			t.Fatalf("Access %s: %v", s.id, err)
		}
		if !d.Granted || sub.Current == nil || sub.Current.Terms.IsFree() {
			continue
		}
		paid := false
		for _, p := range succeeded {
			if p.Payment.Metadata[billingtest.MetadataSubscriptionID] == s.id &&
				p.Payment.Metadata[billingtest.MetadataPeriod] == strconv.Itoa(sub.Current.Number) {
				paid = true
			}
		}
		if !paid {
			m.violation(t, "access to a period YooKassa was not paid for", "%s has access (%s) to period %d",
				m.subName(s.id), sub.Status, sub.Current.Number)
		}
	}
}

// quiesce stops the faults and lets everything settle: the scripts and GET failures are
// used up by the test's own requests, every payment and refund pending at the simulator
// succeeds (the customer pays on the page), every notification is delivered, and the jobs,
// the reconciliation and the sweep run over days.
func (m *ykModel) quiesce(t *rapid.T) {
	m.logf(t, "quiescence: faults stop; everything pending settles")
	m.sim.SetWebhookURL("") // the test's own payments below are not the engine's business
	m.drainFaults(t)
	for round := range 10 {
		m.collect()
		for _, p := range m.sim.Payments() {
			if m.ours(p) && p.Payment.Status == "pending" {
				if err := m.sim.Succeed(p.Payment.ID); err != nil {
					t.Fatalf("succeed %s: %v", p.Payment.ID, err)
				}
			}
		}
		for _, r := range m.sim.Refunds() {
			if r.Refund.Status == "pending" {
				if err := m.sim.SucceedRefund(r.Refund.ID); err != nil {
					t.Fatalf("succeed refund %s: %v", r.Refund.ID, err)
				}
			}
		}
		m.collect()
		for len(m.undelivered) > 0 {
			n := m.undelivered[0]
			m.undelivered = m.undelivered[1:]
			m.deliver(t, "quiescence:", n)
		}
		step := 10 * time.Minute
		switch round {
		case 4:
			step = 6 * 24 * time.Hour // past the dunning retries (1, 3, 5 days)
		case 6:
			step = 25 * time.Hour // past YooKassa's keys
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
		m.settle(t)
	}
	m.collect()
	m.logf(t, "quiescence reached at %s", m.now().Format(time.DateTime))
}

// drainFaults uses up what the model scripted, with the test's own requests (payments of no
// subscription of the model, left out of the checks): GET failures by GETs, each scripted
// card's behaviours by payments of that card until one plainly succeeds, ScriptAll's by
// payments of a card never scripted, refund scripts by refunds of a payment of the test's.
func (m *ykModel) drainFaults(t *rapid.T) {
	drainGETs := func() {
		for range 100 {
			req, err := http.NewRequestWithContext(m.ctx, http.MethodGet, m.sim.URL()+"/payments/drain", nil)
			if err != nil {
				t.Fatalf("drain GET: %v", err)
			}
			req.SetBasicAuth(m.sim.ShopID(), m.sim.SecretKey())
			res, err := m.sim.Client().Do(req)
			if err != nil {
				t.Fatalf("drain GET: %v", err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusInternalServerError && res.StatusCode != http.StatusTooManyRequests {
				return
			}
		}
		t.Fatalf("test bug: GET failures left after draining")
	}
	drainGETs()
	charge := func(method string) (string, bool) {
		before := m.sim.Requests().CreatePayment
		receipt, _ := payment.NewChargeReceipt("drain", 100000, "RUB", payment.VAT22Of122, payment.Contact{Email: "drain@example.ru"})
		res, err := m.drain.Charge(m.ctx, payment.ChargeParams{IdempotencyKey: m.key("drain"), PaymentMethod: method, CustomerID: "drain",
			Amount: 100000, Currency: "RUB", Description: "drain", Receipt: receipt,
			Metadata: map[string]string{billingtest.MetadataSubscriptionID: "drain"}})
		for _, p := range m.sim.Payments() {
			if p.Payment.Metadata[billingtest.MetadataSubscriptionID] == "drain" {
				m.drainPayments[p.Payment.ID] = true
				if p.Payment.Status == "pending" {
					_ = m.sim.Cancel(p.Payment.ID, "canceled_by_merchant")
				}
			}
		}
		plain := err == nil && res.Outcome == payment.OutcomeSucceeded && m.sim.Requests().CreatePayment-before == 1
		return res.ProviderPaymentID, plain
	}
	for method := range m.scripted {
		target := method
		if target == "" {
			target = "pm-drain-all" // never scripted itself: its payments take ScriptAll's behaviours
		}
		drained := false
		for range 3 * ykMaxScripted {
			if _, plain := charge(target); plain {
				drained = true
				break
			}
		}
		if !drained {
			t.Fatalf("test bug: %q still scripted after draining", method)
		}
	}
	if m.refundsScripted > 0 {
		var paid string
		for range 3 * ykMaxScripted {
			if id, plain := charge("pm-drain-refunds"); plain {
				paid = id
				break
			}
		}
		drained := false
		var last string
		for range 3 * ykMaxScripted {
			before := m.sim.Requests().CreateRefund
			rr, _ := payment.NewRefundReceipt("drain", 100, "RUB", payment.VAT22Of122, payment.Contact{Email: "drain@example.ru"})
			res, err := m.drain.Refund(m.ctx, payment.RefundParams{IdempotencyKey: m.key("drain-refund"), ProviderPaymentID: paid,
				Amount: 100, Currency: "RUB", Description: "drain", Receipt: rr})
			for _, r := range m.sim.Refunds() {
				if r.Refund.PaymentID == paid && r.Refund.Status == "pending" {
					_ = m.sim.SucceedRefund(r.Refund.ID)
				}
			}
			if err == nil && res.Outcome == payment.OutcomeSucceeded && m.sim.Requests().CreateRefund-before == 1 {
				drained = true
				break
			}
			last = fmt.Sprintf("%s %v (%d requests)", res.Outcome, err, m.sim.Requests().CreateRefund-before)
		}
		if !drained {
			t.Fatalf("test bug: refunds still scripted after draining (of %q): %s", paid, last)
		}
	}
	drainGETs()
	m.scripted, m.refundsScripted = map[string]int{}, 0
}

// checkQuiescent checks what must hold once everything has settled, against the simulator.
func (m *ykModel) checkQuiescent(t *rapid.T) {
	ctx := m.ctx
	kopecks := func(a yookassatest.Amount) int64 { return decimal.RequireFromString(a.Value).Shift(2).IntPart() }
	succeeded := m.succeededAtSim()
	var charged, refunded int64
	var problems []string
	kindSet := map[string]bool{}
	problem := func(kind, detail string) {
		kindSet[kind] = true
		problems = append(problems, kind+": "+detail)
	}
	for _, id := range slices.Sorted(maps.Keys(succeeded)) {
		p := succeeded[id]
		charged += kopecks(p.Payment.Amount)
		var booked bool
		if err := m.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billing_ledger_transactions WHERE ref_id = $1)`, id).Scan(&booked); err != nil {
			t.Fatalf("ledger of %s: %v", id, err)
		}
		if !booked {
			problem("a payment succeeded at YooKassa is not in the ledger", fmt.Sprintf("%s (%s period %s, key %s)", id,
				m.subName(p.Payment.Metadata[billingtest.MetadataSubscriptionID]), p.Payment.Metadata[billingtest.MetadataPeriod], p.IdempotenceKey))
		}
	}
	for _, r := range m.sim.Refunds() {
		if _, ok := succeeded[r.Refund.PaymentID]; !ok || r.Refund.Status != "succeeded" {
			continue
		}
		refunded += kopecks(r.Refund.Amount)
		var inLedger bool
		if err := m.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billing_refund_requests q
				JOIN billing_ledger_transactions t ON t.ref_kind = 'refund' AND t.ref_id = q.id::text
				WHERE q.gateway_key = $1)
			OR EXISTS (SELECT 1 FROM billing_unapplied_payments u
				JOIN billing_ledger_transactions t ON t.ref_kind = 'refund' AND t.ref_id = u.id::text
				WHERE u.refund_key = $1)`, r.IdempotenceKey).Scan(&inLedger); err != nil {
			t.Fatalf("ledger of refund %s: %v", r.Refund.ID, err)
		}
		if !inLedger {
			var state, jobs string
			_ = m.pool.QueryRow(ctx, `SELECT q.state || ' attempt ' || q.attempt::text || ' provider refund ' || coalesce(q.provider_refund_id, ''),
					coalesce((SELECT string_agg(j.state || ' attempt ' || j.attempt::text || '/' || j.max_attempts::text || ' at ' || j.scheduled_at::text
						|| ' ' || left(coalesce(j.errors[array_length(j.errors, 1)]::text, ''), 300), '; ')
						FROM `+riverJob+` j WHERE j.kind = 'billing_retry_refund' AND j.args->>'request_id' = q.id::text), '')
				FROM billing_refund_requests q WHERE q.gateway_key = $1`, r.IdempotenceKey).Scan(&state, &jobs)
			problem("a refund succeeded at YooKassa is not in the ledger", fmt.Sprintf("refund %s of %s (key %s): request %s; retry jobs: %s",
				r.Refund.ID, r.Refund.PaymentID, r.IdempotenceKey, state, jobs))
		}
	}
	bal, err := m.eng.Ledger().Balance(ctx, "provider:RUB", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("balance: %v", err)
	}
	if bal.Net() != charged-refunded {
		problem("money at YooKassa ≠ provider:RUB", fmt.Sprintf("at YooKassa %d (succeeded %d − refunded %d), in the books %d",
			charged-refunded, charged, refunded, bal.Net()))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		kinds := slices.Sorted(maps.Keys(kindSet))
		m.violation(t, "YooKassa ≠ books at quiescence: "+strings.Join(kinds, "; "), "\n  %s", strings.Join(problems, "\n  "))
	}

	var refunding int
	if err := m.pool.QueryRow(ctx, `SELECT count(*) FROM billing_unapplied_payments WHERE state = 'refunding'`).Scan(&refunding); err != nil {
		t.Fatalf("unapplied payments: %v", err)
	}
	if refunding > 0 {
		m.violation(t, "an unapplied payment is still being refunded at quiescence", "%d unapplied payment(s) refunding", refunding)
	}
	for _, a := range m.attempts(t) {
		switch a.State {
		case payment.StateCreated, payment.StateUnknown, payment.StatePending:
			var failures int
			var parked, lastErr string
			_ = m.pool.QueryRow(ctx, `SELECT check_failures, coalesce(parked_at::text, ''), coalesce(last_error, '')
				FROM billing_payment_attempts WHERE id = $1`, a.ID).Scan(&failures, &parked, &lastErr)
			if parked != "" {
				// Reconciliation parks an attempt for a person after reconcileParkAfter failed
				// lookups (the model's failed GETs add up over a long sequence: the count is
				// not reset by a lookup that answers): by design, not an open attempt.
				m.logf(t, "NOTE: attempt %s (%s period %d) %s, parked for a person after %d failed checks; last error %q",
					a.IdempotencyKey, m.subName(a.SubscriptionID), a.PeriodNumber, a.State, failures, lastErr)
				continue
			}
			m.violation(t, "a charge attempt is still open at quiescence", "attempt %s (%s period %d) still %s; %d failed checks, parked %q, last error %q; its subscription is %s",
				a.IdempotencyKey, m.subName(a.SubscriptionID), a.PeriodNumber, a.State, failures, parked, lastErr, m.get(t, a.SubscriptionID).Status)
		}
	}
}

// TestEngineModelYooKassaFindings are the sequences TestEngineModelYooKassa found, minimized
// and made deterministic.
func TestEngineModelYooKassaFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Found as "a refund succeeded at YooKassa is not in the ledger; money at YooKassa ≠
	// provider:RUB": YooKassa answers a refund pending; the safety-net job looks it up ten
	// minutes later, still pending, and ends; YooKassa pays the refund and its
	// refund.succeeded notification is lost. Nothing looks again: the request stays
	// executing, the books keep money YooKassa paid out, the subscription keeps its access.
	// Fixed: RetryRefund returns an error while the refund is pending, so River looks again.
	t.Run("a pending refund whose notification is lost is settled by the retry job", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(*yookassa.Config) {})
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.ScriptRefunds(yookassatest.Pending())
		req := b.requestRefund(t, sub.ID)
		sent, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
		require.NoError(t, err)
		require.Equal(t, refund.StateExecuting, sent.State, "YooKassa took the refund and will confirm it")
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour)) // the safety-net job: still pending
		require.NoError(t, err)
		refunds := b.sim.Refunds()
		require.Len(t, refunds, 1)
		require.NoError(t, b.sim.SucceedRefund(refunds[0].Refund.ID)) // its notification is lost
		_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(7*24*time.Hour))
		require.NoError(t, err)
		_, err = b.engine.ReconcilePayments(ctx)
		require.NoError(t, err)
		require.NoError(t, b.runner.RunDue(ctx))

		got, err := b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State, "YooKassa paid the refund")
		require.Equal(t, subscription.StatusRefunded, b.get(t, sub.ID).Status)
		require.Len(t, b.sim.Refunds(), 1, "refunded once")
		b.requireBooksMatchSimulator(t, "after the lost notification")
	})

	// Found as "a refund succeeded at YooKassa is not in the ledger" (seed
	// 1999432504758467759, BILLING_YK_MODEL_CHECKS=300 BILLING_YK_MODEL_STEPS=100, check 256):
	// a refund whose answer was lost leaves the request executing with one River retry job
	// (MaxAttempts 25); its lookups fail (YooKassa answers 429) until River discards the
	// job. Nothing else looks at an executing refund (ReconcilePayments covers charges, the
	// unapplied sweep unapplied payments): the refund YooKassa paid never reaches the books.
	t.Run("a refund whose retry job River discarded is still settled", func(t *testing.T) {
		t.Parallel()
		b := setupYooKassa(t, func(c *yookassa.Config) { c.Retry.MaxAttempts = 1 })
		sub := b.subscribe(t, "c1", "pm-card-1")
		b.sim.ScriptRefunds(yookassatest.TimeoutAfterSuccess())
		req := b.requestRefund(t, sub.ID)
		_, _ = b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"}) // the answer is lost
		b.sim.FailGETs(1000, http.StatusTooManyRequests)
		for range 60 { // River's 25 attempts, backing off over weeks
			_, err := b.runner.RunUntil(ctx, b.clock.Now().Add(24*time.Hour))
			require.NoError(t, err)
		}
		var discarded int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_retry_refund' AND state = 'discarded'`).Scan(&discarded))
		require.Equal(t, 1, discarded, "River gave up on the retry job; the clock reads %s; jobs:\n%s", b.clock.Now(), b.riverJobs(t))
		for { // YooKassa answers again
			r, err := http.NewRequestWithContext(ctx, http.MethodGet, b.sim.URL()+"/payments/none", nil)
			require.NoError(t, err)
			r.SetBasicAuth(b.sim.ShopID(), b.sim.SecretKey())
			res, err := b.sim.Client().Do(r)
			require.NoError(t, err)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusTooManyRequests {
				break
			}
		}
		for range 10 {
			_, err := b.runner.RunUntil(ctx, b.clock.Now().Add(24*time.Hour))
			require.NoError(t, err)
			_, err = b.engine.ReconcilePayments(ctx)
			require.NoError(t, err)
			_, err = b.engine.SweepDueRenewals(ctx)
			require.NoError(t, err)
		}
		got, err := b.engine.RefundRequestGet(ctx, req.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateRefunded, got.State, "YooKassa paid the refund")
		b.requireBooksMatchSimulator(t, "after the discarded job")
	})
}
