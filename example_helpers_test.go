package billing_test

// The helpers of the godoc examples (example_<feature>_test.go). The examples run against a
// real PostgreSQL, like the engine's tests: each example gets a database of its own,
// created on the server of DATABASE_URL under a random name, migrated, and dropped when the
// example ends.
//
// Where DATABASE_URL comes from: `make test` runs everything under scripts/pg-tmp.sh, which
// starts a throwaway PostgreSQL and sets it, and CI does the same. An example cannot skip
// itself (it has no *testing.T), and it never prints a made-up result: without DATABASE_URL
// it prints why it cannot run, and so fails its Output check with that message, while the
// other tests of the package go on. `go test` without a database is not the documented way to
// run the root package; `make test-short` runs the pure packages without one.
//
// Every example wires the engine as a host does (see ExampleNew) through
// billingtest.StartHarness: a test clock that starts on Mon 2 Mar 2026 10:00 Moscow time,
// the fake gateway of billingtest, and River workers driven by billingtest.Runner, so its
// output is the same on every run. An example prints an error it did not expect and stops,
// so a failure shows in its Output.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/tariff"
)

// exampleEnv is what an example works with: the engine wired as in ExampleNew, on a test
// clock, the fake gateway and a runner for the River jobs.
type exampleEnv struct {
	engine  *billing.Engine
	pool    *pgxpool.Pool
	clock   *billingtest.Clock
	gateway *billingtest.Gateway
	runner  *billingtest.Runner
	moscow  *time.Location
}

// publish publishes the tariff "pro": 990 RUB a month with the given number of generations.
func (ex *exampleEnv) publish(ctx context.Context, generations int64) error {
	_, err := ex.engine.Tariffs().Publish(ctx, "operator:olga", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: generations}}})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// checkout subscribes customer to "pro", charges the first period and returns the
// subscription's ID.
func (ex *exampleEnv) checkout(ctx context.Context, customer string) (string, error) {
	sub, err := ex.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
		PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
	if err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	if _, err := ex.engine.ChargeFirstPayment(ctx, sub.ID); err != nil {
		return "", fmt.Errorf("charge: %w", err)
	}
	return sub.ID, nil
}

// runExample runs f with an engine on a database of its own (see withExampleDatabase), on a
// test clock at Mon 2 Mar 2026 10:00 Moscow time, with the fake gateway and started River
// workers that the runner drives.
func runExample(f func(ctx context.Context, ex *exampleEnv)) {
	runExampleWith(billing.DefaultConfig(), f)
}

// runExampleWith is runExample with the engine made from cfg (its Clock is the test
// clock's; a cfg without Gateway gets the fake one).
func runExampleWith(cfg billing.Config, f func(ctx context.Context, ex *exampleEnv)) {
	withExampleDatabase(func(ctx context.Context, pool *pgxpool.Pool) {
		moscow, err := time.LoadLocation("Europe/Moscow")
		if err != nil {
			fmt.Println(err)
			return
		}
		h, err := billingtest.StartHarness(ctx, pool, time.Date(2026, 3, 2, 10, 0, 0, 0, moscow), cfg)
		if err != nil {
			fmt.Println("start the harness:", err)
			return
		}
		defer func() {
			if err := h.Stop(); err != nil {
				fmt.Println(err)
			}
		}()
		f(ctx, &exampleEnv{engine: h.Engine, pool: pool, clock: h.Clock, gateway: h.Gateway, runner: h.Runner, moscow: moscow})
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

// randomSuffix returns 16 random hex digits for a database's name.
func randomSuffix() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic("billing examples: crypto/rand: " + err.Error()) // never fails on a supported platform
	}
	return hex.EncodeToString(b)
}
