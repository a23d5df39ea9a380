package billing_test

// The godoc examples of the engine. They run against a real PostgreSQL, like the engine's
// tests: each example gets a database of its own, created on the server of DATABASE_URL
// under a random name, migrated, and dropped when the example ends.
//
// Where DATABASE_URL comes from: `make test` runs everything under scripts/pg-tmp.sh, which
// starts a throwaway PostgreSQL and sets it, and CI does the same. An example cannot skip
// itself (it has no *testing.T), and it never prints a made-up result: without DATABASE_URL
// it prints why it cannot run, and so fails its Output check with that message, while the
// other tests of the package go on. `go test` without a database is not the documented way to
// run the root package; `make test-short` runs the pure packages without one.
//
// Every example wires the engine as a host does (see ExampleNew): a test clock that starts
// on Mon 2 Mar 2026 10:00 Moscow time, the fake gateway of billingtest, and River workers
// driven by billingtest.Runner, so its output is the same on every run.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// ExampleNew wires the engine into a host: the host's pool, the engine's migrations, the
// engine's workers in the host's River client, and the client handed back to the engine.
func ExampleNew() {
	withExampleDatabase(func(ctx context.Context, pool *pgxpool.Pool) {
		cfg := billing.DefaultConfig() // Europe/Moscow, the system clock, the Russian production calendar
		cfg.Gateway = billingtest.NewGateway()
		engine, err := billing.New(pool, cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := engine.Migrate(ctx); err != nil { // the engine's schema and River's
			fmt.Println(err)
			return
		}
		again, err := engine.Migrate(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("migrating again applies:", len(again.Applied)+len(again.RiverApplied))

		workers := river.NewWorkers()
		if err := engine.RegisterWorkers(workers); err != nil { // before river.NewClient
			fmt.Println(err)
			return
		}
		client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
			Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
			Workers:      workers,
			PeriodicJobs: engine.PeriodicJobs(10 * time.Minute),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := engine.UseRiver(client); err != nil {
			fmt.Println(err)
			return
		}
		if err := client.Start(ctx); err != nil {
			fmt.Println(err)
			return
		}
		defer client.Stop(ctx) //nolint:errcheck // the example ends here
		fmt.Println("engine ready in", engine.Location())
	})
	// Output:
	// migrating again applies: 0
	// engine ready in Europe/Moscow
}

// ExampleConfigError shows New refusing a configuration: every bad field is named at once.
func ExampleConfigError() {
	_, err := billing.New(nil, billing.Config{})
	var ce *billing.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(p.Field)
		}
	}
	fmt.Println(errors.Is(err, billing.ErrInvalidConfig))
	// Output:
	// pool
	// Location
	// true
}

// ExampleCatalog_Publish publishes a tariff and a price change that takes effect later: the
// version in force depends on the instant asked about (TERMS 2.1.6, 3.2).
func ExampleCatalog_Publish() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		catalog := ex.engine.Tariffs()
		spec := tariff.Spec{Code: "pro", Name: "Pro", Price: decimal.NewFromInt(990),
			Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}}
		v1, err := catalog.Publish(ctx, "operator:olga", spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d: %s %s per %s\n", v1.Number, v1.Price.StringFixed(2), v1.Currency, v1.Period)

		spec.Price = decimal.NewFromInt(1290)
		spec.EffectiveAt = time.Date(2026, 4, 1, 0, 0, 0, 0, ex.moscow)
		v2, err := catalog.Publish(ctx, "operator:olga", spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d: %s %s from %s\n", v2.Number, v2.Price.StringFixed(2), v2.Currency, v2.EffectiveAt.In(ex.moscow).Format("2 Jan 2006"))

		for _, at := range []time.Time{ex.clock.Now(), v2.EffectiveAt} {
			v, err := catalog.InForce(ctx, "pro", at)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("in force on %s: v%d at %s\n", at.In(ex.moscow).Format("2 Jan"), v.Number, v.Price.StringFixed(2))
		}
	})
	// Output:
	// v1: 990.00 RUB per 1 month
	// v2: 1290.00 RUB from 1 Apr 2026
	// in force on 2 Mar: v1 at 990.00
	// in force on 1 Apr: v2 at 1290.00
}

// ExampleEngine_Subscribe records a checkout and charges it: no access before the charge
// succeeds (TERMS 3.3), and the terms shown at checkout are kept (TERMS 3.4).
func ExampleEngine_Subscribe() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		sub, err := ex.engine.Subscribe(ctx, billing.SubscribeRequest{
			CustomerID: "user-42", TariffCode: "pro", PaymentMethod: "tok_42", IdempotencyKey: "checkout-7f3a"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "at", sub.Checkout.Price.StringFixed(2), sub.Checkout.Currency)
		d, _ := ex.engine.Access(ctx, sub.ID)
		fmt.Println("access:", d.Granted, d.Reason)

		res, err := ex.engine.ChargeFirstPayment(ctx, sub.ID) // through Config.Gateway
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Attempt.State, "→", res.Subscription.Status)
		d, _ = ex.engine.Access(ctx, sub.ID)
		fmt.Println("access:", d.Granted, "until", d.EndsAt.In(ex.moscow).Format("2 Jan 2006 15:04"))
	})
	// Output:
	// pending at 990.00 RUB
	// access: false not_paid
	// succeeded → active
	// access: true until 2 Apr 2026 10:00
}

// ExampleEngine_Consume counts usage all or nothing: a retry with the same key counts once,
// a request that would pass the limit is refused whole, and using the volume up ends access
// before the period does (TERMS 3.1).
func ExampleEngine_Consume() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")

		r, _ := ex.engine.Consume(ctx, id, "generations", 200, "req-1")
		fmt.Println("used", r.Used, "of", r.Limit)
		r, _ = ex.engine.Consume(ctx, id, "generations", 200, "req-1") // a retry
		fmt.Println("used", r.Used, "replayed", r.Replayed)

		_, err := ex.engine.Consume(ctx, id, "generations", 400, "req-2")
		fmt.Println(errors.Is(err, billing.ErrLimitExceeded))

		r, _ = ex.engine.Consume(ctx, id, "generations", 300, "req-3")
		fmt.Println("used", r.Used, "exhausted", r.Exhausted)

		_, err = ex.engine.Consume(ctx, id, "generations", 1, "req-4")
		var na *subscription.NoAccessError
		if errors.As(err, &na) {
			fmt.Println("no access:", na.Reason)
		}
	})
	// Output:
	// used 200 of 500
	// used 200 replayed true
	// true
	// used 500 exhausted true
	// no access: used_up
}

// ExampleEngine_Reserve holds volume before a slow AI call and settles it afterwards: Commit
// the actual cost (at most the reserved quantity), or Release when the call failed.
func ExampleEngine_Reserve() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 100)
		id := ex.checkout(ctx, "user-42")

		r, err := ex.engine.Reserve(ctx, billing.ReserveRequest{SubscriptionID: id, Meter: "generations",
			Quantity: 10, TTL: 2 * time.Minute, IdempotencyKey: "call-1"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.State, r.Quantity, "until", r.ExpiresAt.In(ex.moscow).Format("15:04"))
		// ... the call to the model returns 7 images ...
		r, err = ex.engine.Commit(ctx, r.ID, 7)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.State, r.Actual)

		r, _ = ex.engine.Reserve(ctx, billing.ReserveRequest{SubscriptionID: id, Meter: "generations",
			Quantity: 10, IdempotencyKey: "call-2"})
		// ... the call fails ...
		r, _ = ex.engine.Release(ctx, r.ID)
		fmt.Println(r.State)

		sub, _ := ex.engine.Get(ctx, id)
		u := sub.Current.Usage["generations"]
		fmt.Println("used", u.Used, "reserved", u.Reserved)
	})
	// Output:
	// open 10 until 10:02
	// committed 7
	// released
	// used 7 reserved 0
}

// ExampleEngine_RequestRefund records a refund request, decides it under TERMS 3.7, and pays
// it back through the gateway within the 3.8 deadline.
func ExampleEngine_RequestRefund() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")
		ex.clock.Advance(2 * 24 * time.Hour) // the customer writes on day 3, nothing used

		req, err := ex.engine.RequestRefund(ctx, billing.RefundRequestInput{SubscriptionID: id,
			ReceivedAt: ex.clock.Now(), Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "mail-1881"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// The window ends at 24:00 of the 5th working day after the grant on Mon 2 Mar (the
		// holiday on Mon 9 Mar does not count); the payout deadline is 10 calendar days after
		// the request, moved past the weekend to 24:00 of Mon 16 Mar (Civil Code art. 193).
		fmt.Println("eligible:", req.Eligible)
		fmt.Println("window ends:", req.WindowEndsAt.In(ex.moscow).Format("Mon 2 Jan 15:04"))
		fmt.Println("pay by:", req.PayoutDeadline.In(ex.moscow).Format("Mon 2 Jan 15:04"))

		if _, err := ex.engine.VerifyRefund(ctx, req.ID, "operator:olga"); err != nil {
			fmt.Println(err)
			return
		}
		done, err := ex.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteOptions{Actor: "operator:olga"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(done.State, done.AmountMinor, done.Currency)
		d, _ := ex.engine.Access(ctx, id)
		fmt.Println("access:", d.Granted, d.Reason)
	})
	// Output:
	// eligible: true
	// window ends: Wed 11 Mar 00:00
	// pay by: Tue 17 Mar 00:00
	// refunded 99000 RUB
	// access: false refunded
}

// ExampleEngine_ExecuteAccountDeletion deletes an account on request (TERMS 2.2.4): the
// request is recorded with its deadline, 10 business days on the production calendar;
// executing it ends the customer's subscriptions at once and forgets their saved card token,
// and the renewal already queued charges nothing. The paid period is not refunded by it.
func ExampleEngine_ExecuteAccountDeletion() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")

		req, err := ex.engine.RequestAccountDeletion(ctx, billing.AccountDeletionInput{CustomerID: "user-42",
			ReceivedAt: ex.clock.Now(), Channel: refund.ChannelProfile, IdempotencyKey: "delete-user-42"})
		if err != nil {
			fmt.Println(err)
			return
		}
		// 10 business days after Mon 2 Mar, the holiday on Mon 9 Mar not counted: 24:00 of Tue 17 Mar.
		fmt.Println("delete by:", req.Deadline.In(ex.moscow).Format("Mon 2 Jan 15:04"))

		done, err := ex.engine.ExecuteAccountDeletion(ctx, req.ID, "operator:olga")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(done.State, done.DoneBy)
		d, _ := ex.engine.Access(ctx, id)
		fmt.Println("access:", d.Granted, d.Reason)

		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 2, 0)); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("renewal charges:", len(ex.gateway.ChargesFor(id, 2)))
	})
	// Output:
	// delete by: Wed 18 Mar 00:00
	// done operator:olga
	// access: false terminated
	// renewal charges: 0
}

// ExampleEngine_HandlePaymentWebhook activates a subscription whose first charge the
// provider accepted as pending, when the provider's webhook confirms it. A duplicate webhook
// is a no-op.
func ExampleEngine_HandlePaymentWebhook() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		ex.gateway.Script("tok_42", billingtest.Pending) // the provider answers "pending"
		sub, _ := ex.engine.Subscribe(ctx, billing.SubscribeRequest{
			CustomerID: "user-42", TariffCode: "pro", PaymentMethod: "tok_42", IdempotencyKey: "checkout-7f3a"})
		res, err := ex.engine.ChargeFirstPayment(ctx, sub.ID)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(res.Attempt.State, res.Subscription.Status)

		// Later the provider calls the host's webhook endpoint; the host checks the signature
		// and forwards the event.
		ev, err := ex.gateway.Confirm(res.Attempt.ProviderPaymentID, payment.OutcomeSucceeded)
		if err != nil {
			fmt.Println(err)
			return
		}
		for range 2 {
			a, err := ex.engine.HandlePaymentWebhook(ctx, ev)
			if err != nil {
				fmt.Println(err)
				return
			}
			got, _ := ex.engine.Get(ctx, sub.ID)
			fmt.Println(a.State, got.Status, "period", got.Current.Number)
		}
	})
	// Output:
	// pending pending
	// succeeded active period 1
	// succeeded active period 1
}

// ExampleEngine_RegisterWorkers shows the engine's River jobs at work: at the period end the
// renewal job charges the saved card for the next period (TERMS 3.5), at the tariff's
// current price; the paid period kept its own (TERMS 2.1.6).
func ExampleEngine_RegisterWorkers() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")
		sub, _ := ex.engine.Get(ctx, id)

		ex.clock.Advance(10 * 24 * time.Hour)
		_, err := ex.engine.Tariffs().Publish(ctx, "operator:olga", tariff.Spec{Code: "pro", Name: "Pro",
			Price: decimal.NewFromInt(1290), Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
		if err != nil {
			fmt.Println(err)
			return
		}
		// The runner moves the test clock to each job's scheduled instant and lets the real
		// workers run it; in production River runs them on the wall clock.
		if _, err := ex.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour)); err != nil {
			fmt.Println(err)
			return
		}
		attempts, _ := ex.engine.Attempts(ctx, id)
		for _, a := range attempts {
			fmt.Println("period", a.PeriodNumber, a.Purpose, a.State, a.Amount, a.Currency)
		}
		sub, _ = ex.engine.Get(ctx, id)
		fmt.Println(sub.Status, "period", sub.Current.Number, "until", sub.Current.End.In(ex.moscow).Format("2 Jan 2006"))
	})
	// Output:
	// period 1 checkout succeeded 99000 RUB
	// period 2 renewal succeeded 129000 RUB
	// active period 2 until 2 May 2026
}

// ExampleEngine_SetAutoRenew turns auto-renewal off (TERMS 3.6): access lasts to the end of
// the paid period, then the subscription ends and nothing more is charged.
func ExampleEngine_SetAutoRenew() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")
		sub, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sub.Status, "auto-renew", sub.AutoRenew)
		if _, err := ex.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour)); err != nil {
			fmt.Println(err)
			return
		}
		sub, _ = ex.engine.Get(ctx, id)
		fmt.Println(sub.Status, "charges:", len(ex.gateway.Charges()))
	})
	// Output:
	// active auto-renew false
	// ended charges: 1
}

// ExampleBooks_TrialBalance reads the double-entry ledger after one paid month: the charge
// went to deferred revenue, and the recognition job at the period end moved it to revenue.
// The accounts always sum to zero.
func ExampleBooks_TrialBalance() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		ex.publish(ctx, 500)
		id := ex.checkout(ctx, "user-42")
		if _, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42"); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 2, 0)); err != nil {
			fmt.Println(err)
			return
		}
		tb, err := ex.engine.Ledger().TrialBalance(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, b := range tb {
			fmt.Printf("%-12s debits %6d credits %6d\n", b.Account.Code, b.Debits, b.Credits)
		}
		fmt.Println("net:", tb.NetByCurrency()["RUB"])
	})
	// Output:
	// deferred:RUB debits  99000 credits  99000
	// provider:RUB debits  99000 credits      0
	// revenue:RUB  debits      0 credits  99000
	// net: 0
}

// exampleEnv is what an example works with: the engine wired as in ExampleNew, on a test
// clock, the fake gateway and a runner for the River jobs.
type exampleEnv struct {
	engine  *billing.Engine
	clock   *billingtest.Clock
	gateway *billingtest.Gateway
	runner  *billingtest.Runner
	moscow  *time.Location
}

// publish publishes the tariff "pro": 990 RUB a month with the given number of generations.
func (ex *exampleEnv) publish(ctx context.Context, generations int64) {
	_, err := ex.engine.Tariffs().Publish(ctx, "operator:olga", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: generations}}})
	if err != nil {
		fmt.Println("publish:", err)
	}
}

// checkout subscribes customer to "pro", charges the first period and returns the ID.
func (ex *exampleEnv) checkout(ctx context.Context, customer string) string {
	sub, err := ex.engine.Subscribe(ctx, billing.SubscribeRequest{CustomerID: customer, TariffCode: "pro",
		PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
	if err != nil {
		fmt.Println("subscribe:", err)
		return ""
	}
	if _, err := ex.engine.ChargeFirstPayment(ctx, sub.ID); err != nil {
		fmt.Println("charge:", err)
	}
	return sub.ID
}

// runExample runs f with an engine on a database of its own (see withExampleDatabase), on a
// test clock at Mon 2 Mar 2026 10:00 Moscow time, with the fake gateway and started River
// workers that the runner drives.
func runExample(f func(ctx context.Context, ex *exampleEnv)) {
	withExampleDatabase(func(ctx context.Context, pool *pgxpool.Pool) {
		moscow, err := time.LoadLocation("Europe/Moscow")
		if err != nil {
			fmt.Println(err)
			return
		}
		ex := &exampleEnv{clock: billingtest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, moscow)),
			gateway: billingtest.NewGateway(), moscow: moscow}
		cfg := billing.DefaultConfig()
		cfg.Clock, cfg.Gateway = ex.clock, ex.gateway
		if ex.engine, err = billing.New(pool, cfg); err != nil {
			fmt.Println(err)
			return
		}
		workers := river.NewWorkers()
		if err := ex.engine.RegisterWorkers(workers); err != nil {
			fmt.Println(err)
			return
		}
		client, err := billingtest.NewRiverClient(pool, ex.clock, workers)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := ex.engine.UseRiver(client); err != nil {
			fmt.Println(err)
			return
		}
		// Migrate after UseRiver: River's tables go in the client's schema
		// (billingtest.RiverSchema under make test-river-schema), which must exist.
		if schema := billingtest.RiverSchema(); schema != "" {
			if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
				fmt.Println(err)
				return
			}
		}
		if _, err := ex.engine.Migrate(ctx); err != nil {
			fmt.Println(err)
			return
		}
		if err := client.Start(ctx); err != nil {
			fmt.Println(err)
			return
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = client.Stop(stopCtx)
		}()
		ex.runner = billingtest.NewRunner(pool, ex.clock)
		f(ctx, ex)
	})
}

// withExampleDatabase runs f with a pool on a new, empty database on the server of
// DATABASE_URL, and drops the database afterwards. Without DATABASE_URL it prints why it
// cannot run and does not call f, so the example fails with that message.
func withExampleDatabase(f func(ctx context.Context, pool *pgxpool.Pool)) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		fmt.Println("DATABASE_URL is not set: the examples need PostgreSQL. Run `make test`, which starts a throwaway " +
			"server, or set DATABASE_URL to a server where they may create and drop databases.")
		return
	}
	ctx := context.Background()
	name := "billing_example_" + randomSuffix()
	if err := adminExec(ctx, base, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		fmt.Println("create the example database:", err)
		return
	}
	defer func() {
		if err := adminExec(ctx, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Println("drop the example database:", err)
		}
	}()
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		fmt.Println("DATABASE_URL:", err)
		return
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	f(ctx, pool)
}

// adminExec runs one statement on its own connection to the server of base.
func adminExec(ctx context.Context, base, sql string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
