package billing_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing"
)

// ExampleEngine_SubscribeTx records a checkout in the host's own transaction: the host's
// order row and the engine's subscription are committed together (pgx.BeginFunc commits on
// nil), or neither is. The charge, which calls the provider, runs after the commit.
func ExampleEngine_SubscribeTx() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.pool.Exec(ctx, `CREATE TABLE host_orders (id text PRIMARY KEY, subscription_id uuid NOT NULL)`); err != nil {
			fmt.Println(err)
			return
		}
		var subID string
		err := pgx.BeginFunc(ctx, ex.pool, func(tx pgx.Tx) error {
			sub, err := ex.engine.SubscribeTx(ctx, tx, billing.SubscribeParams{CustomerID: "user-42", TariffCode: "pro",
				PaymentMethod: "tok_42", IdempotencyKey: "order-1001"})
			if err != nil {
				return err
			}
			subID = sub.ID
			_, err = tx.Exec(ctx, `INSERT INTO host_orders (id, subscription_id) VALUES ('order-1001', $1)`, sub.ID)
			return err
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := ex.engine.ChargeFirstPayment(ctx, subID)
		if err != nil {
			fmt.Println(err)
			return
		}
		var order string
		if err := ex.pool.QueryRow(ctx, `SELECT id FROM host_orders WHERE subscription_id = $1`, subID).Scan(&order); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(order, res.Subscription.Status)
	})
	// Output:
	// order-1001 active
}

// ExampleEngine_ConsumeTx counts usage in the host's transaction: when the host's own work
// fails and it rolls back, the volume is not counted either; a refused command (here, over
// the limit) leaves the transaction usable.
func ExampleEngine_ConsumeTx() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 10); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.pool.Exec(ctx, `CREATE TABLE host_images (request text PRIMARY KEY, images int NOT NULL)`); err != nil {
			fmt.Println(err)
			return
		}
		errModelDown := errors.New("model is down")
		generate := func(request string, images int64, modelUp bool) error {
			return pgx.BeginFunc(ctx, ex.pool, func(tx pgx.Tx) error {
				if _, err := ex.engine.ConsumeTx(ctx, tx, id, "generations", images, request); err != nil {
					return err
				}
				if !modelUp {
					return errModelDown // rolls back the host's work and the engine's
				}
				_, err := tx.Exec(ctx, `INSERT INTO host_images VALUES ($1, $2)`, request, images)
				return err
			})
		}
		fmt.Println("req-1:", generate("req-1", 3, true))
		fmt.Println("req-2:", generate("req-2", 4, false))
		err = generate("req-3", 20, true)
		fmt.Println("req-3 over the limit:", errors.Is(err, billing.ErrLimitExceeded))

		// A refused command inside a transaction leaves it usable: the host goes on.
		err = pgx.BeginFunc(ctx, ex.pool, func(tx pgx.Tx) error {
			if _, err := ex.engine.ConsumeTx(ctx, tx, id, "generations", 20, "req-4"); !errors.Is(err, billing.ErrLimitExceeded) {
				return fmt.Errorf("want ErrLimitExceeded, got %v", err)
			}
			_, err := ex.engine.ConsumeTx(ctx, tx, id, "generations", 2, "req-5")
			return err
		})
		if err != nil {
			fmt.Println(err)
			return
		}

		sub, err := ex.engine.SubscriptionGet(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		var rows int
		if err := ex.pool.QueryRow(ctx, `SELECT count(*) FROM host_images`).Scan(&rows); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("used", sub.Current.Usage["generations"].Used, "host rows", rows)
	})
	// Output:
	// req-1: <nil>
	// req-2: model is down
	// req-3 over the limit: true
	// used 5 host rows 1
}
