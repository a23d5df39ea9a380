// Command quickstart runs the billing engine end to end against the PostgreSQL in
// DATABASE_URL (make demo starts a throwaway one): it connects, migrates, and tells what
// it did. Later issues grow it into the whole life of a subscription.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/smm-gpt/billing"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return fmt.Errorf("DATABASE_URL is not set; run `make demo`, which starts a throwaway PostgreSQL")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	engine, err := billing.New(pool, billing.DefaultConfig())
	if err != nil {
		return err
	}
	res, err := engine.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("migrated: %d engine migrations, %d River migrations applied\n", len(res.Applied), len(res.RiverApplied))
	again, err := engine.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("migrated again: %d applied (idempotent)\n", len(again.Applied)+len(again.RiverApplied))
	fmt.Println("engine ready, location", engine.Location())
	return nil
}
