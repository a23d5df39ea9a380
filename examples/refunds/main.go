// Command refunds shows refunds under TERMS 3.7 and 3.8 on the real engine: PostgreSQL from
// DATABASE_URL, real River workers, a test clock, and the fake payment gateway of billingtest.
//
//   - 3.7: a full refund if asked within 5 business days after access was granted (counted on
//     the Russian production calendar: Mon 9 Mar 2026 is a holiday) and nothing was used. One
//     request qualifies and is paid; one comes after a generation was used, one comes too late.
//   - An operator may refund an ineligible request anyway (a person's decision, e.g. under the
//     consumer protection law): ExecuteRefund with Override, which the audit log records with
//     who and why.
//   - 3.8: the money goes back within 10 calendar days of the request. A request still open two
//     days before its deadline is escalated: the engine's River job records a refund due soon
//     event, delivered to Config.OnEvent, and here the operator then pays it in time.
//
// Its output is deterministic (fixed clock, no IDs), and a test compares it with
// testdata/golden.txt. Run it with `./scripts/pg-tmp.sh go run ./examples/refunds`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/tariff"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "refunds:", err)
		os.Exit(1)
	}
}

// demo holds what the story works with.
type demo struct {
	out     io.Writer
	engine  *billing.Engine
	clock   *billingtest.Clock
	gateway *billingtest.Gateway
	runner  *billingtest.Runner
	moscow  *time.Location

	// escalations collects the refund due soon events Config.OnEvent received. The handler
	// runs in a River worker, so it only appends under a lock (keep a real one as quick: hand
	// the event to a queue, a channel, a pager), and it may see an event twice: it keeps the
	// first of each ID.
	mu          sync.Mutex
	escalations []billing.Event
	seen        map[string]bool
}

func run(ctx context.Context, url string, out io.Writer) error {
	if url == "" {
		return errors.New("DATABASE_URL is not set; run it under ./scripts/pg-tmp.sh, which starts a throwaway PostgreSQL")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return err
	}
	d := &demo{out: out, moscow: moscow, seen: map[string]bool{}}
	cfg := billing.DefaultConfig()
	cfg.OnEvent = func(_ context.Context, ev billing.Event) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if ev.Kind == billing.EventRefundDueSoon && !d.seen[ev.ID] {
			d.seen[ev.ID] = true
			d.escalations = append(d.escalations, ev)
		}
		return nil
	}
	h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 3, 5, 10, 0, 0, 0, moscow), cfg)
	if err != nil {
		return err
	}
	defer h.Stop() //nolint:errcheck // the story is over; a slow stop changes nothing
	d.engine, d.clock, d.runner = h.Engine, h.Clock, h.Runner
	d.gateway = h.Gateway
	return d.story(ctx)
}

func (d *demo) story(ctx context.Context) error {
	e := d.engine
	d.say("== Refunds (TERMS 3.7, 3.8), clock starts %s Moscow time", d.day(d.clock.Now()))
	if _, err := e.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}}); err != nil {
		return err
	}

	d.say("\n-- Four customers subscribe and pay; access is granted at once")
	ids := map[string]string{}
	for _, customer := range []string{"anna", "boris", "vera", "gleb"} {
		sub, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
			PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
		if err != nil {
			return err
		}
		if _, err := e.ChargeFirstPayment(ctx, sub.ID); err != nil {
			return err
		}
		ids[customer] = sub.ID
	}
	d.say("anna, boris, vera and gleb paid 990.00 RUB each on %s", d.day(d.clock.Now()))
	if _, err := e.Consume(ctx, ids["boris"], "generations", 1, "boris-first-image"); err != nil {
		return err
	}
	d.say("boris generates one image")

	d.clock.Set(time.Date(2026, 3, 13, 10, 0, 0, 0, d.moscow))
	d.say("\n-- %s: the 5th working day after the grant (Sat 7, Sun 8 and the holiday Mon 9 Mar do not count)", d.day(d.clock.Now()))
	anna, err := d.request(ctx, "anna", ids["anna"], "I changed my mind, please refund")
	if err != nil {
		return err
	}
	if err := d.pay(ctx, "anna", anna, billing.ExecuteRefundOpts{Actor: "operator:olga"}); err != nil {
		return err
	}
	d.say("  %s", d.access(ctx, ids["anna"]))
	boris, err := d.request(ctx, "boris", ids["boris"], "the image was not what I wanted")
	if err != nil {
		return err
	}
	gleb, err := d.request(ctx, "gleb", ids["gleb"], "please refund, I never used it")
	if err != nil {
		return err
	}
	d.say("  (gleb's request waits in the queue: the operator is away)")

	d.clock.Set(time.Date(2026, 3, 16, 10, 0, 0, 0, d.moscow))
	d.say("\n-- %s: too late for 3.7", d.day(d.clock.Now()))
	vera, err := d.request(ctx, "vera", ids["vera"], "refund please")
	if err != nil {
		return err
	}
	if _, err := e.RejectRefund(ctx, vera.ID, "operator:olga", "outside the 5-business-day window of TERMS 3.7; answered by e-mail"); err != nil {
		return err
	}
	d.say("  the operator rejects it with a reason: closed, so it is not escalated")

	d.say("\n-- An operator refunds boris anyway: a person's decision, recorded in the audit log")
	_, err = e.ExecuteRefund(ctx, boris.ID, billing.ExecuteRefundOpts{Actor: "operator:olga"})
	d.say("without an override: %s", errorName(err))
	if err := d.pay(ctx, "boris", boris, billing.ExecuteRefundOpts{Actor: "operator:olga", Override: true,
		OverrideReason: "goodwill: the generation failed, support ticket 1187"}); err != nil {
		return err
	}
	if err := d.audit(ctx, ids["boris"]); err != nil {
		return err
	}

	d.say("\n-- TERMS 3.8: gleb must be paid by %s; two days before, the escalation job fires", d.deadline(gleb.PayoutDeadline))
	if err := d.runTo(ctx, gleb.PayoutDeadline.Add(-36*time.Hour)); err != nil {
		return err
	}
	for _, ev := range d.takeEscalations() {
		who := "?"
		for name, id := range ids {
			if id == ev.SubscriptionID {
				who = name
			}
		}
		r, err := e.RefundRequestGet(ctx, ev.RefundRequestID)
		if err != nil {
			return err
		}
		d.say("refund due soon at %s: %s's request (received %s) is still %s; pay by %s",
			d.day(ev.OccurredAt), who, d.day(r.ReceivedAt), r.State, d.deadline(ev.DueAt))
	}
	d.say("the operator pays it on %s:", d.day(d.clock.Now()))
	if err := d.pay(ctx, "gleb", gleb, billing.ExecuteRefundOpts{Actor: "operator:olga"}); err != nil {
		return err
	}

	d.say("\n-- Where the requests stand, earliest payout deadline first")
	all, err := e.RefundRequestList(ctx, billing.RefundRequestListParams{})
	if err != nil {
		return err
	}
	for _, r := range all {
		who := "?"
		for name, id := range ids {
			if id == r.SubscriptionID {
				who = name
			}
		}
		d.say("%-5s %-8s eligible %-5v pay by %s", who, r.State, r.Eligible, d.deadline(r.PayoutDeadline))
	}
	tb, err := e.Ledger().TrialBalance(ctx)
	if err != nil {
		return err
	}
	d.say("refunds the gateway paid: %d; ledger trial balance (must be zero): %s",
		len(d.gateway.Refunds()), rub(tb.NetByCurrency()["RUB"]))
	return nil
}

// request records a customer's e-mail asking for a refund, received now, and prints the
// engine's 3.7 decision.
func (d *demo) request(ctx context.Context, who, id, text string) (billing.RefundRequest, error) {
	req, err := d.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: id, ReceivedAt: d.clock.Now(),
		Channel: refund.ChannelEmail, Text: text, IdempotencyKey: "refund-email-" + who})
	if err != nil {
		return req, err
	}
	if req.Eligible {
		d.say("%s asks → eligible: the window ends %s; pay by %s", who, d.deadline(req.WindowEndsAt), d.deadline(req.PayoutDeadline))
	} else {
		d.say("%s asks → not eligible: %s", who, reasons(req.Failed))
		d.say("  %s", req.Explanation)
	}
	return req, nil
}

// pay verifies the customer (unless done) and executes the refund through the gateway.
func (d *demo) pay(ctx context.Context, who string, req billing.RefundRequest, opts billing.ExecuteRefundOpts) error {
	if req.State == refund.StateReceived {
		if _, err := d.engine.VerifyRefund(ctx, req.ID, opts.Actor); err != nil {
			return err
		}
	}
	done, err := d.engine.ExecuteRefund(ctx, req.ID, opts)
	if err != nil {
		return err
	}
	d.say("  %s refunded %s: request %s", who, rub(done.AmountMinor), done.State)
	return nil
}

// audit prints the refund entries of a subscription's audit log (Engine.AuditLogList).
func (d *demo) audit(ctx context.Context, subscriptionID string) error {
	entries, err := d.engine.AuditLogList(ctx, billing.SubscriptionSubject(subscriptionID))
	if err != nil {
		return err
	}
	d.say("audit log of boris's subscription, refund entries:")
	for _, a := range entries {
		if !strings.HasPrefix(a.Action, "refund.") {
			continue
		}
		reason := a.Reason
		if a.Action == "refund.requested" {
			reason = "(the 3.7 decision)"
		}
		d.say("%s", strings.TrimRight(fmt.Sprintf("  %s  %-15s %-17s %s", d.day(a.At), a.Actor, a.Action, reason), " "))
	}
	return nil
}

func (d *demo) takeEscalations() []billing.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.escalations
	d.escalations = nil
	return out
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) day(t time.Time) string { return t.In(d.moscow).Format("Mon 02 Jan 2006 15:04") }

// deadline prints a deadline that ends at midnight as 24:00 of its last day, the way the
// Civil Code (art. 194) counts it: "Mon 23 Mar 2026 24:00" rather than "Tue 24 Mar 00:00".
func (d *demo) deadline(t time.Time) string {
	t = t.In(d.moscow)
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
		return t.AddDate(0, 0, -1).Format("Mon 02 Jan 2006") + " 24:00"
	}
	return d.day(t)
}

func (d *demo) runTo(ctx context.Context, t time.Time) error {
	_, err := d.runner.RunUntil(ctx, t)
	return err
}

func (d *demo) access(ctx context.Context, id string) string {
	dec, err := d.engine.Access(ctx, id)
	switch {
	case err != nil:
		return "access: error " + err.Error()
	case dec.Granted:
		return "access granted until " + d.day(dec.EndsAt)
	}
	return fmt.Sprintf("access refused (%s)", dec.Reason)
}

func reasons(rs []refund.Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// errorName names the engine's sentinel an error matches.
func errorName(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, billing.ErrNotEligible):
		return "refused with billing.ErrNotEligible"
	}
	return err.Error()
}

func rub(minor int64) string { return decimal.New(minor, -2).StringFixed(2) + " RUB" }
