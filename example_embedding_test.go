package billing_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
)

// Example is the package doc's wiring, compiled: a host owns the pool and the River client,
// the engine registers its workers and inserts its jobs through the client, and the host
// checks the schema before it serves. (No Output: it needs a server; ExampleNew runs.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	engine, err := billing.New(pool, billing.DefaultConfig())
	if err != nil {
		log.Fatal(err) // a *billing.ConfigError names each bad field
	}
	if _, err := engine.Migrate(ctx); err != nil { // or run billing.MigrationsFS with your own tool
		log.Fatal(err)
	}
	workers := river.NewWorkers()
	if err := engine.RegisterWorkers(workers); err != nil { // before the client is made
		log.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 20}},
		Workers:      workers,
		PeriodicJobs: engine.PeriodicJobs(10 * time.Minute), // the renewal sweeper and reconciliation
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.UseRiver(client); err != nil { // the engine inserts its jobs through it
		log.Fatal(err)
	}
	if err := engine.CheckSchema(ctx); err != nil { // refuse to serve on a schema of another version
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := client.Stop(context.WithoutCancel(ctx)); err != nil { // waits for running jobs
			log.Print("stop River: ", err)
		}
	}()
}

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
		defer func() {
			if err := client.Stop(ctx); err != nil { // waits for running jobs
				fmt.Println("stop River:", err)
			}
		}()
		fmt.Println("engine ready in", engine.Location())
	})
	// Output:
	// migrating again applies: 0
	// engine ready in Europe/Moscow
}
