package billing_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/smm-gpt/billing"
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
	defer func() { _ = client.Stop(context.WithoutCancel(ctx)) }()
}
