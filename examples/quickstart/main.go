// Command quickstart tells the whole life of a subscription, step by step, on the real
// engine: PostgreSQL from DATABASE_URL (make demo starts a throwaway one), real River
// workers, a test clock that jumps across months, and the fake payment gateway of
// billingtest. Its output is deterministic (fixed clock start, no IDs printed), and a test
// compares it with testdata/golden.txt.
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
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
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

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) day(t time.Time) string { return t.In(d.moscow).Format("Mon 02 Jan 2006 15:04") }

func run(ctx context.Context, url string, out io.Writer) error {
	if url == "" {
		return errors.New("DATABASE_URL is not set; run `make demo`, which starts a throwaway PostgreSQL")
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
	h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 3, 2, 10, 0, 0, 0, moscow), cfg)
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
	d.say("== The billing engine, end to end (clock starts %s Moscow time)", d.day(d.clock.Now()))

	d.say("\n-- The operator publishes a tariff")
	v, err := e.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
	if err != nil {
		return err
	}
	d.say("published %s v%d: %s %s per %s, %d generations", v.Code, v.Number, v.Price.StringFixed(2), v.Currency, v.Period, v.Limits[0].Quantity)

	d.say("\n-- Anna subscribes and pays (TERMS 3.3: no access before the charge succeeds)")
	anna, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "anna", TariffCode: "pro", PaymentMethod: "tok_anna", IdempotencyKey: "checkout-anna"})
	if err != nil {
		return err
	}
	d.access(ctx, "before paying", anna.ID)
	res, err := e.ChargeFirstPayment(ctx, anna.ID)
	if err != nil {
		return err
	}
	anna = res.Subscription
	d.say("charged %s; status %s; period 1 runs %s → %s", d.paid(anna.ID, 1), anna.Status, d.day(anna.Current.Start), d.day(anna.Current.End))
	d.access(ctx, "after paying", anna.ID)

	d.say("\n-- Anna generates content")
	d.clock.Advance(3 * 24 * time.Hour)
	if err := d.consume(ctx, anna.ID, 200, "anna-1"); err != nil {
		return err
	}
	d.clock.Advance(5 * 24 * time.Hour)
	if err := d.consume(ctx, anna.ID, 300, "anna-2"); err != nil {
		return err
	}
	d.say("(TERMS 3.1: the volume ran out before the month did; access ends now, whichever comes first)")
	if err := d.consume(ctx, anna.ID, 1, "anna-3"); err != nil {
		return err
	}
	d.access(ctx, "with the volume used up", anna.ID)

	d.say("\n-- The month ends: River's renewal job charges the saved card (TERMS 3.5)")
	if err := d.runTo(ctx, anna.Current.End.Add(time.Hour)); err != nil {
		return err
	}
	anna = d.get(ctx, anna.ID)
	d.say("status %s; period %d runs %s → %s; charged %s", anna.Status, anna.Current.Number, d.day(anna.Current.Start), d.day(anna.Current.End), d.paid(anna.ID, 2))

	d.say("\n-- Mid-period the operator raises the price to 1290 (TERMS 2.1.6)")
	d.clock.Advance(10 * 24 * time.Hour)
	v2, err := e.Tariffs().Publish(ctx, "operator", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(1290), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
	if err != nil {
		return err
	}
	anna = d.get(ctx, anna.ID)
	d.say("published v%d at %s; Anna's paid period %d keeps its price: %s RUB", v2.Number, v2.Price.StringFixed(2), anna.Current.Number, anna.Current.Terms.Price.StringFixed(2))
	if err := d.runTo(ctx, anna.Current.End.Add(time.Hour)); err != nil {
		return err
	}
	anna = d.get(ctx, anna.ID)
	d.say("the next renewal charges the new price: period %d charged %s (v%d)", anna.Current.Number, d.paid(anna.ID, 3), anna.Current.Terms.Version)

	d.say("\n-- Anna turns auto-renewal off (TERMS 3.6)")
	if _, err := e.SetAutoRenew(ctx, anna.ID, false, "customer:anna"); err != nil {
		return err
	}
	d.access(ctx, "right after", anna.ID)
	if err := d.runTo(ctx, anna.Current.End.Add(time.Hour)); err != nil {
		return err
	}
	anna = d.get(ctx, anna.ID)
	d.say("at the period end: status %s, period 4 charged: %s", anna.Status, d.paid(anna.ID, 4))

	d.say("\n-- Refunds (TERMS 3.7: within 5 business days after access, if unused; 3.8: paid within 10 days)")
	boris := d.subscribePaid(ctx, "boris")
	vera := d.subscribePaid(ctx, "vera")
	gleb := d.subscribePaid(ctx, "gleb")
	if boris == "" || vera == "" || gleb == "" {
		return errors.New("a customer could not subscribe")
	}
	if err := d.consume(ctx, vera, 1, "vera-1"); err != nil {
		return err
	}
	d.clock.Advance(2 * 24 * time.Hour)
	d.say("day 3, %s:", d.day(d.clock.Now()))
	if err := d.refund(ctx, "Boris (nothing used)", boris); err != nil {
		return err
	}
	if err := d.refund(ctx, "Vera (one generation used)", vera); err != nil {
		return err
	}
	d.clock.Advance(6 * 24 * time.Hour)
	d.say("day 9, %s, the 6th working day after the grant:", d.day(d.clock.Now()))
	if err := d.refund(ctx, "Gleb (nothing used)", gleb); err != nil {
		return err
	}

	d.say("\n-- The ledger")
	if err := d.runTo(ctx, d.clock.Now().Add(40*24*time.Hour)); err != nil {
		return err
	}
	tb, err := e.Ledger().TrialBalance(ctx)
	if err != nil {
		return err
	}
	for _, b := range tb {
		if b.Debits == 0 && b.Credits == 0 {
			continue
		}
		d.say("%-22s debits %10s  credits %10s", b.Account.Code, rub(b.Debits), rub(b.Credits))
	}
	d.say("trial balance (debits - credits, must be zero): %s", rub(tb.NetByCurrency()["RUB"]))
	d.say("charges the gateway accepted: %d, refunds it paid: %d", len(d.gateway.Charges()), len(d.gateway.Refunds()))
	return nil
}

func (d *demo) consume(ctx context.Context, id string, n int64, key string) error {
	r, err := d.engine.Consume(ctx, id, "generations", n, key)
	var na *billing.NoAccessError
	switch {
	case errors.As(err, &na):
		d.say("%s: consume %d → refused: no access (%s)", d.day(d.clock.Now()), n, na.Reason)
		return nil
	case errors.Is(err, billing.ErrLimitExceeded):
		d.say("%s: consume %d → refused: limit exceeded", d.day(d.clock.Now()), n)
		return nil
	case err != nil:
		return err
	}
	d.say("%s: consume %d → used %d of %d", d.day(d.clock.Now()), n, r.Used, r.Limit)
	return nil
}

func (d *demo) access(ctx context.Context, when, id string) {
	dec, err := d.engine.Access(ctx, id)
	switch {
	case err != nil:
		d.say("  access %s: error %v", when, err)
	case dec.Granted:
		d.say("  access %s: granted until %s", when, d.day(dec.EndsAt))
	default:
		d.say("  access %s: refused (%s)", when, dec.Reason)
	}
}

func (d *demo) get(ctx context.Context, id string) subscription.Subscription {
	sub, err := d.engine.SubscriptionGet(ctx, id)
	if err != nil {
		d.say("get: %v", err)
	}
	return sub
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

func (d *demo) runTo(ctx context.Context, t time.Time) error {
	_, err := d.runner.RunUntil(ctx, t)
	return err
}

// subscribePaid subscribes a customer at the current price and pays; it returns the ID.
func (d *demo) subscribePaid(ctx context.Context, customer string) string {
	sub, err := d.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro", PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
	if err != nil {
		d.say("subscribe %s: %v", customer, err)
		return ""
	}
	res, err := d.engine.ChargeFirstPayment(ctx, sub.ID)
	if err != nil {
		d.say("charge %s: %v", customer, err)
		return ""
	}
	d.say("%s subscribes on %s and pays %s", customer, d.day(d.clock.Now()), d.paid(res.Subscription.ID, 1))
	return sub.ID
}

func (d *demo) refund(ctx context.Context, who, id string) error {
	e := d.engine
	req, err := e.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: id, ReceivedAt: d.clock.Now(),
		Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "refund-" + id})
	if err != nil {
		return err
	}
	if !req.Eligible {
		d.say("  %s asks for a refund → refused: %s", who, req.Explanation)
		return nil
	}
	if _, err := e.VerifyRefund(ctx, req.ID, "operator"); err != nil {
		return err
	}
	done, err := e.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "operator"})
	if err != nil {
		return err
	}
	d.say("  %s asks for a refund → eligible (window ends %s); refunded %s, state %s, pay by %s",
		who, d.day(req.WindowEndsAt), rub(done.AmountMinor), done.State, d.day(req.PayoutDeadline))
	d.access(ctx, "afterwards", id)
	return nil
}

func rub(minor int64) string { return decimal.New(minor, -2).StringFixed(2) + " RUB" }
