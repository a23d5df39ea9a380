package billing_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func TestConsumeWhicheverFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.3 no access before the first payment", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "k"})
		require.NoError(t, err)
		require.Equal(t, subscription.StatusPending, sub.Status)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "u1")
		require.ErrorIs(t, err, billing.ErrNoAccess)
		var na *subscription.NoAccessError
		require.ErrorAs(t, err, &na)
		require.Equal(t, subscription.ReasonNotPaid, na.Reason)
	})

	t.Run("3.1 volume used up before the period ends", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 3)
		sub := b.activeSubscription(t, "c1", "pro")
		for i := range 3 {
			res, err := b.engine.Consume(ctx, sub.ID, "generations", 1, fmt.Sprint("u", i))
			require.NoError(t, err)
			require.Equal(t, int64(i+1), res.Used)
			require.Equal(t, i == 2, res.Exhausted)
		}
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 1, "u-late")
		require.ErrorIs(t, err, billing.ErrNoAccess)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusExhausted, got.Status)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReasonUsedUp, d.Reason)
	})

	t.Run("3.1 one meter used up ends access on every meter of the period", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{
			Code: "duo", Name: "Duo", Price: decimal.NewFromInt(990),
			Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Limits: []tariff.Limit{{Meter: "generations", Quantity: 3}, {Meter: "images", Quantity: 10}},
		})
		require.NoError(t, err)
		sub := b.activeSubscription(t, "c1", "duo")
		_, err = b.engine.Consume(ctx, sub.ID, "images", 2, "i1")
		require.NoError(t, err)
		res, err := b.engine.Consume(ctx, sub.ID, "generations", 3, "g1")
		require.NoError(t, err)
		require.True(t, res.Exhausted)
		_, err = b.engine.Consume(ctx, sub.ID, "images", 1, "i2")
		require.ErrorIs(t, err, billing.ErrNoAccess, "images has volume left, but the subscription has no access")
		var na *subscription.NoAccessError
		require.ErrorAs(t, err, &na)
		require.Equal(t, subscription.ReasonUsedUp, na.Reason)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusExhausted, got.Status)
		require.Equal(t, int64(3), got.Current.Usage["generations"].Used, "the exhausting call is counted")
		require.Equal(t, int64(2), got.Current.Usage["images"].Used)
	})

	t.Run("3.1 period ends before the volume is used up", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 10, "u1")
		require.NoError(t, err)
		b.clock.Set(sub.Current.End)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "u2")
		require.ErrorIs(t, err, billing.ErrNoAccess)
	})

	t.Run("3.1 a request that would pass the limit is refused whole", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 4, "u1")
		require.NoError(t, err)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 2, "u2")
		require.ErrorIs(t, err, billing.ErrLimitExceeded)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, int64(4), got.Current.Usage["generations"].Used, "nothing of the refused request was counted")
		require.Equal(t, subscription.StatusActive, got.Status)
	})

	t.Run("the same key returns the first result; another request under it is refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub := b.activeSubscription(t, "c1", "pro")
		first, err := b.engine.Consume(ctx, sub.ID, "generations", 2, "u1")
		require.NoError(t, err)
		again, err := b.engine.Consume(ctx, sub.ID, "generations", 2, "u1")
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.Used, again.Used)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 3, "u1")
		require.ErrorIs(t, err, billing.ErrIdempotencyConflict)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Current.Usage["generations"].Used)
	})

	t.Run("bad input is refused with a typed error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.engine.Consume(ctx, sub.ID, "images", 1, "u1")
		require.ErrorIs(t, err, billing.ErrMeterUnknown)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 0, "u1")
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "")
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		_, err = b.engine.Consume(ctx, "not-a-uuid", "generations", 1, "u1")
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		_, err = b.engine.Consume(ctx, "0190a5c8-0000-7000-8000-000000000000", "generations", 1, "u1")
		require.ErrorIs(t, err, billing.ErrNotFound)
	})
}

func TestConsumeConcurrentNeverPassesLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const limit = 100
	b.publish(t, "pro", "990", "generations", limit)
	sub := b.activeSubscription(t, "c1", "pro")

	const goroutines = 64
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				_, err := b.engine.Consume(ctx, sub.ID, "generations", 1, fmt.Sprintf("g%d-%d", g, i))
				switch {
				case err == nil:
					ok.Add(1)
				case isRefusal(err):
					refused.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(limit), ok.Load(), "3.1 exactly the limit is taken")
	require.Equal(t, int64(goroutines*5-limit), refused.Load())
	got, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, int64(limit), got.Current.Usage["generations"].Used)
	require.Equal(t, subscription.StatusExhausted, got.Status)
}

func isRefusal(err error) bool {
	return errorsIs(err, billing.ErrLimitExceeded) || errorsIs(err, billing.ErrNoAccess)
}

func TestReservations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.1 reserved volume counts against the limit; commit settles the actual amount", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.withRiver(t)
		b.publish(t, "pro", "990", "tokens", 1000)
		sub := b.activeSubscription(t, "c1", "pro")
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 800, IdempotencyKey: "r1"})
		require.NoError(t, err)
		_, err = b.engine.Consume(ctx, sub.ID, "tokens", 300, "u1")
		require.ErrorIs(t, err, billing.ErrLimitExceeded)
		c, err := b.engine.ReservationCommit(ctx, r.ID, 500)
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationCommitted, c.State)
		again, err := b.engine.ReservationCommit(ctx, r.ID, 500)
		require.NoError(t, err, "a retried commit returns the committed reservation")
		require.Equal(t, c.ID, again.ID)
		_, err = b.engine.ReservationCommit(ctx, r.ID, 400)
		require.ErrorIs(t, err, subscription.ErrReservationResolved)
		_, err = b.engine.Consume(ctx, sub.ID, "tokens", 300, "u2")
		require.NoError(t, err)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{Used: 800, Reserved: 0}, got.Current.Usage["tokens"])
	})

	t.Run("a reservation left alone expires and frees its volume", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		b.publish(t, "pro", "990", "tokens", 1000)
		sub := b.activeSubscription(t, "c1", "pro")
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1000, TTL: time.Minute, IdempotencyKey: "r1"})
		require.NoError(t, err)
		_, err = runner.RunUntil(ctx, b.clock.Now().Add(2*time.Minute))
		require.NoError(t, err)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{}, got.Current.Usage["tokens"])
		_, err = b.engine.ReservationCommit(ctx, r.ID, 1)
		require.ErrorIs(t, err, subscription.ErrReservationResolved)
	})
}

// TestConsumeWaitingForAnAccessChange pins what a Consume does when it waits for a command
// that changes access: the command holds the subscription and its usage rows (as every
// command's LockSubscription does) while Consume blocks on the row, then commits. The
// commands are written here as the rows they change, so that the call is sure to be
// waiting when they commit.
func TestConsumeWaitingForAnAccessChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// race starts a Consume of all 3 generations while a transaction holds the rows, runs
	// change in that transaction once the call waits, commits, and returns the call's result.
	race := func(t *testing.T, b *testBundle, subID string, change ...string) (billing.ConsumeResult, error) {
		t.Helper()
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `SELECT 1 FROM billing_subscriptions WHERE id = $1 FOR UPDATE`, subID)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT 1 FROM billing_usage WHERE subscription_id = $1 FOR UPDATE`, subID)
		require.NoError(t, err)
		type result struct {
			res billing.ConsumeResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := b.engine.Consume(ctx, subID, "generations", 3, "g1")
			done <- result{res, err}
		}()
		require.Eventually(t, func() bool {
			var waiting int
			require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
			return waiting > 0
		}, 10*time.Second, 5*time.Millisecond, "the Consume never waited for the rows")
		for _, sql := range change {
			_, err := tx.Exec(ctx, sql, subID)
			require.NoError(t, err)
		}
		require.NoError(t, tx.Commit(ctx))
		r := <-done
		return r.res, r.err
	}

	t.Run("2.1.2 a suspension that commits first refuses the waiting call", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 3)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := race(t, b, sub.ID,
			`UPDATE billing_subscriptions SET status = 'suspended', suspended_from = 'active' WHERE id = $1`)
		require.ErrorIs(t, err, billing.ErrNoAccess)
		var na *subscription.NoAccessError
		require.ErrorAs(t, err, &na)
		require.Equal(t, subscription.ReasonSuspended, na.Reason)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Zero(t, got.Current.Usage["generations"].Used, "nothing was counted while suspended")
	})

	t.Run("3.1 3.5 a renewal that commits first: the call never exhausts the new period unused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 3)
		sub := b.activeSubscription(t, "c1", "pro")
		res, err := race(t, b, sub.ID,
			`UPDATE billing_subscriptions SET current_period = 2, current_period_end = current_period_end + interval '1 month' WHERE id = $1`,
			`INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at)
			 SELECT subscription_id, 2, terms, end_at, end_at + interval '1 month', end_at
			 FROM billing_periods WHERE subscription_id = $1 AND number = 1`,
			`INSERT INTO billing_usage (subscription_id, period, meter, quantity, hard)
			 SELECT subscription_id, 2, meter, quantity, hard FROM billing_usage WHERE subscription_id = $1 AND period = 1`)
		require.NoError(t, err)
		require.Equal(t, 2, res.Period, "the call counts in the period that is current when it runs")
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, 2, got.Current.Number)
		require.Equal(t, int64(3), got.Current.Usage["generations"].Used)
		require.Equal(t, subscription.StatusExhausted, got.Status, "period 2 was used up by the call, so it is exhausted")
		require.False(t, got.Current.ExhaustedAt.IsZero())
		var usedInPeriod1 int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT used FROM billing_usage WHERE subscription_id = $1 AND period = 1`, sub.ID).Scan(&usedInPeriod1))
		require.Zero(t, usedInPeriod1, "nothing was counted in the period renewed away")
	})

	t.Run("2.1.2 3.1 volume used up while suspended: resume leaves it exhausted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.withRiver(t)
		b.publish(t, "pro", "990", "generations", 3)
		sub := b.activeSubscription(t, "c1", "pro")
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 3,
			TTL: time.Hour, IdempotencyKey: "r1"})
		require.NoError(t, err)
		ops := subscription.AdminAction{Actor: "admin:7", Reason: "chargeback review"}
		_, err = b.engine.Suspend(ctx, sub.ID, ops)
		require.NoError(t, err)
		_, err = b.engine.ReservationCommit(ctx, r.ID, 3)
		require.NoError(t, err, "a call that ran before the suspension may still settle")
		got, err := b.engine.Resume(ctx, sub.ID, ops)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusExhausted, got.Status)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "late")
		require.ErrorIs(t, err, billing.ErrNoAccess)
	})
}

// TestConsumeConcurrentTwoMeters runs 64 goroutines on a tariff with two hard limits of
// the same small size, half on each meter, so that both are used up at about the same
// instant (the case where two exhausting calls can deadlock and one is run again). Every
// call either counts or is refused; what was counted is exactly what the counters hold.
func TestConsumeConcurrentTwoMeters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const limit = 20
	_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{
		Code: "duo", Name: "Duo", Price: decimal.NewFromInt(990),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: limit}, {Meter: "images", Quantity: limit}},
	})
	require.NoError(t, err)
	sub := b.activeSubscription(t, "c1", "duo")

	const goroutines = 64
	meters := []string{"generations", "images"}
	var ok [2]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := g % 2
			for i := range 5 {
				_, err := b.engine.Consume(ctx, sub.ID, meters[m], 1, fmt.Sprintf("g%d-%d", g, i))
				switch {
				case err == nil:
					ok[m].Add(1)
				case isRefusal(err):
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusExhausted, got.Status, "3.1 one of the limits was used up")
	used := 0
	for i, m := range meters {
		require.Equal(t, ok[i].Load(), got.Current.Usage[m].Used, "3.1 %s: every counted call, nothing else", m)
		require.LessOrEqual(t, got.Current.Usage[m].Used, int64(limit))
		if got.Current.Usage[m].Used == limit {
			used++
		}
	}
	require.GreaterOrEqual(t, used, 1, "the subscription is exhausted because a limit was used up")
}
