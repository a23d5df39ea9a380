// Command renewals shows auto-renewal (TERMS 3.5) on the real engine: PostgreSQL from
// DATABASE_URL, real River workers, a test clock that the job runner moves to each instant a
// job falls due, and the fake payment gateway of billingtest, scripted to decline.
//
// Four customers buy a monthly tariff on Sat 31 Jan 2026:
//   - anna renews for a year; her periods stay anchored on the 31st (Feb 28, Mar 31, Apr 30…);
//   - boris's first renewal is soft-declined (insufficient funds): past due, no access, and
//     the retry a day later succeeds, anchored as if paid on time;
//   - vera's first renewal is hard-declined (card expired): her subscription ends, never retried;
//   - gleb withdraws his consent to card charges (law of 1 March 2026): his paid period runs
//     to its end and nothing is charged again.
//
// Its output is deterministic (fixed clock, no IDs), and a test compares it with
// testdata/golden.txt. Run it with `./scripts/pg-tmp.sh go run ./examples/renewals`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "renewals:", err)
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
	d := &demo{out: out, moscow: moscow}
	cfg := billing.DefaultConfig()
	h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 1, 31, 10, 0, 0, 0, moscow), cfg)
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
	d.say("== Auto-renewal (TERMS 3.5), clock starts %s Moscow time", d.day(d.clock.Now()))
	if _, err := e.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}}); err != nil {
		return err
	}
	d.say("tariff pro: 990.00 RUB a month, 500 generations")

	d.say("\n-- Four customers subscribe and pay on the 31st")
	// The fake gateway plays these behaviours on the next charges of each saved card;
	// every other charge succeeds.
	d.gateway.Script("tok_boris", billingtest.Succeed, billingtest.SoftDecline)
	d.gateway.Script("tok_vera", billingtest.Succeed, billingtest.HardDecline)
	ids := map[string]string{}
	for _, customer := range []string{"anna", "boris", "vera", "gleb"} {
		sub, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
			PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
		if err != nil {
			return err
		}
		res, err := e.ChargeFirstPayment(ctx, sub.ID)
		if err != nil {
			return err
		}
		ids[customer] = sub.ID
		d.say("%-5s %s; period 1 runs %s → %s", customer, res.Subscription.Status,
			d.day(res.Subscription.Current.Start), d.day(res.Subscription.Current.End))
	}
	firstEnd := d.get(ctx, ids["anna"]).Current.End

	d.say("\n-- The first period ends: River's renewal jobs charge the saved cards")
	if err := d.runTo(ctx, firstEnd.Add(time.Hour)); err != nil {
		return err
	}
	for _, customer := range []string{"anna", "boris", "vera"} {
		if err := d.renewal(ctx, customer, ids[customer], 2); err != nil {
			return err
		}
	}
	d.say("(TERMS 3.3, prepayment: boris has no access until the period is paid; vera's card is refused for good, never retried)")

	d.say("\n-- A day later the dunning schedule retries boris's card (1, 3 and 5 days after the period end)")
	if err := d.runTo(ctx, firstEnd.Add(25*time.Hour)); err != nil {
		return err
	}
	if err := d.renewal(ctx, "boris", ids["boris"], 2); err != nil {
		return err
	}
	d.say("(boris paid a day late, after a day without access: period 2 starts when it was paid and runs a full month,\n so no day already past is sold; anna, paid on time, keeps the anchor of the 31st)")

	d.clock.AdvanceDate(0, 0, 9)
	d.say("\n-- On %s gleb withdraws his consent to charges on his card", d.day(d.clock.Now()))
	if err := e.WithdrawConsent(ctx, "gleb", "tok_gleb", "customer:gleb"); err != nil {
		return err
	}
	gleb := d.get(ctx, ids["gleb"])
	d.say("auto-renew %s; the paid period runs on: %s", onOff(gleb.AutoRenew), d.access(ctx, ids["gleb"]))
	if err := d.runTo(ctx, gleb.Current.End.Add(time.Hour)); err != nil {
		return err
	}
	gleb = d.get(ctx, ids["gleb"])
	d.say("at the period end %s: status %s; period 3 charged: %s", d.day(gleb.Current.End), gleb.Status, d.paid(ids["gleb"], 3))

	yearOn := time.Date(2027, 1, 30, 12, 0, 0, 0, d.moscow)
	d.say("\n-- A year on, %s", d.day(yearOn))
	if err := d.runTo(ctx, yearOn); err != nil {
		return err
	}
	for _, customer := range []string{"anna", "boris", "vera", "gleb"} {
		if err := d.history(ctx, customer, ids[customer]); err != nil {
			return err
		}
	}

	tb, err := e.Ledger().TrialBalance(ctx)
	if err != nil {
		return err
	}
	d.say("\ncharges the gateway accepted: %d; ledger trial balance (must be zero): %s",
		len(d.gateway.Charges()), rub(tb.NetByCurrency()["RUB"]))
	return nil
}

// renewal prints where the charge of period stands for a customer: the attempts so far and
// the subscription's status and access.
func (d *demo) renewal(ctx context.Context, customer, id string, period int) error {
	attempts, err := d.engine.AttemptList(ctx, id)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		if a.PeriodNumber != period {
			continue
		}
		d.say("%-5s renewal attempt %d on %s: %s", customer, a.Number, d.day(a.CreatedAt), outcome(a))
	}
	sub := d.get(ctx, id)
	d.say("      status %s, period %d, %s", sub.Status, sub.Current.Number, d.access(ctx, id))
	return nil
}

// history prints a customer's year: each paid period with its charge, and the end.
func (d *demo) history(ctx context.Context, customer, id string) error {
	attempts, err := d.engine.AttemptList(ctx, id)
	if err != nil {
		return err
	}
	sub := d.get(ctx, id)
	paid, declined := 0, 0
	for _, a := range attempts {
		if a.State == payment.StateSucceeded {
			paid++
		} else {
			declined++
		}
	}
	d.say("%-5s %s; periods paid: %d, declined charges: %d", customer, sub.Status, paid, declined)
	if customer != "anna" {
		return nil
	}
	for _, a := range attempts {
		if a.State != payment.StateSucceeded {
			continue
		}
		// A period starts when the previous one ended: the charge's due instant.
		d.say("      period %2d from %s: %s", a.PeriodNumber, d.day(a.DueAt), d.paid(id, a.PeriodNumber))
	}
	d.say("      period %2d runs to %s; the next renewal is queued for then", sub.Current.Number, d.day(sub.Current.End))
	return nil
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) day(t time.Time) string { return t.In(d.moscow).Format("Mon 02 Jan 2006 15:04") }

func (d *demo) runTo(ctx context.Context, t time.Time) error {
	_, err := d.runner.RunUntil(ctx, t)
	return err
}

func (d *demo) get(ctx context.Context, id string) subscription.Subscription {
	sub, err := d.engine.SubscriptionGet(ctx, id)
	if err != nil {
		d.say("get: %v", err)
	}
	return sub
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

// paid lists what the gateway accepted for a subscription period.
func (d *demo) paid(id string, period int) string {
	charges := d.gateway.ChargesFor(id, period)
	if len(charges) == 0 {
		return "nothing"
	}
	s := ""
	for i, c := range charges {
		if i > 0 {
			s += ", "
		}
		s += rub(c.Amount)
	}
	return s
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func outcome(a payment.Attempt) string {
	if a.DeclineCode != "" {
		return fmt.Sprintf("%s (%s)", a.State, a.DeclineCode)
	}
	return fmt.Sprintf("%s, %s", a.State, rub(a.Amount))
}

func rub(minor int64) string { return decimal.New(minor, -2).StringFixed(2) + " RUB" }
