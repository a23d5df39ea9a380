package billing_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/subscription"
)

func TestReservationLife(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.1 release frees all the volume; a second release changes nothing", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1000, IdempotencyKey: "r1"})
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationOpen, r.State)
		require.Equal(t, subscription.Usage{Reserved: 1000}, b.usage(t, sub.ID, "tokens"))
		_, err = b.engine.Consume(ctx, sub.ID, "tokens", 1, "u1")
		require.ErrorIs(t, err, billing.ErrLimitExceeded, "3.1 held volume counts against the limit")

		rel, err := b.engine.ReservationRelease(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationReleased, rel.State)
		require.Equal(t, int64(0), rel.Actual)
		require.Equal(t, subscription.Usage{}, b.usage(t, sub.ID, "tokens"))

		before := b.rowCounts(t)
		again, err := b.engine.ReservationRelease(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationReleased, again.State)
		require.Equal(t, before, b.rowCounts(t))
		require.Equal(t, subscription.Usage{}, b.usage(t, sub.ID, "tokens"))

		_, err = b.engine.ReservationCommit(ctx, r.ID, 1)
		require.ErrorIs(t, err, subscription.ErrReservationResolved, "a reservation resolves at most once")
		_, err = b.engine.Consume(ctx, sub.ID, "tokens", 1000, "u2")
		require.NoError(t, err, "the released volume is usable again")
	})

	t.Run("3.1 commit settles the actual amount and frees the rest", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 600, IdempotencyKey: "r1"})
		require.NoError(t, err)
		c, err := b.engine.ReservationCommit(ctx, r.ID, 250)
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationCommitted, c.State)
		require.Equal(t, int64(250), c.Actual)
		require.True(t, c.ResolvedAt.Equal(b.clock.Now()))
		require.Equal(t, subscription.Usage{Used: 250}, b.usage(t, sub.ID, "tokens"))
		_, err = b.engine.ReservationRelease(ctx, r.ID)
		require.ErrorIs(t, err, subscription.ErrReservationResolved)
	})

	t.Run("3.1 commit of nothing frees all", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 600, IdempotencyKey: "r1"})
		require.NoError(t, err)
		_, err = b.engine.ReservationCommit(ctx, r.ID, 0)
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{}, b.usage(t, sub.ID, "tokens"))
	})

	t.Run("3.1 the volume is used up through a commit: exhausted in the same transaction", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		_, err := b.engine.Consume(ctx, sub.ID, "tokens", 400, "u1")
		require.NoError(t, err)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 600, IdempotencyKey: "r1"})
		require.NoError(t, err)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, got.Status, "3.1 held volume is not used volume: access stays")
		b.clock.Advance(time.Minute)
		_, err = b.engine.ReservationCommit(ctx, r.ID, 600)
		require.NoError(t, err)
		got, err = b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusExhausted, got.Status)
		require.True(t, got.Current.ExhaustedAt.Equal(b.clock.Now()))
		require.Equal(t, subscription.Usage{Used: 1000}, got.Current.Usage["tokens"])
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReasonUsedUp, d.Reason)
		a := last(b.audit(t, sub.ID))
		require.Equal(t, "subscription.exhaust", a.Action)
		require.Equal(t, "active", a.From)
		require.Equal(t, "exhausted", a.To)
		_, err = b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1, IdempotencyKey: "r2"})
		require.ErrorIs(t, err, billing.ErrNoAccess)
	})

	t.Run("3.1 a commit below the limit does not exhaust", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1000, IdempotencyKey: "r1"})
		require.NoError(t, err)
		_, err = b.engine.ReservationCommit(ctx, r.ID, 999)
		require.NoError(t, err)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, []string{"subscription.create", "subscription.activate"}, actions(b.audit(t, sub.ID)))
	})

	t.Run("a reservation survives the end of its period and is resolved there", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 10, TTL: 40 * 24 * time.Hour, IdempotencyKey: "r1"})
		require.NoError(t, err)
		b.clock.Set(sub.Current.End.Add(time.Hour))
		c, err := b.engine.ReservationCommit(ctx, r.ID, 7)
		require.NoError(t, err)
		require.Equal(t, int64(7), c.Actual)
		require.Equal(t, subscription.Usage{Used: 7}, b.usage(t, sub.ID, "tokens"))
	})
}

func TestReservationRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Each row makes one open reservation of 800 of 1000 tokens (TTL one minute), lets
	// prepare move things on, and runs a resolution that must be refused with want,
	// writing nothing.
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle, r subscription.Reservation)
		resolve func(b *testBundle, r subscription.Reservation) error
		want    error
	}{
		{
			name: "3.1 a commit above the reserved quantity is refused",
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, r.ID, 801)
				return err
			},
			want: subscription.ErrInvalidQuantity,
		},
		{
			name: "3.1 a negative commit is refused",
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, r.ID, -1)
				return err
			},
			want: subscription.ErrInvalidQuantity,
		},
		{
			name:    "a commit at the expiry instant is refused",
			prepare: func(t *testing.T, b *testBundle, r subscription.Reservation) { b.clock.Set(r.ExpiresAt) },
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, r.ID, 100)
				return err
			},
			want: subscription.ErrReservationExpired,
		},
		{
			name: "a commit after the expiry job ran is refused",
			prepare: func(t *testing.T, b *testBundle, r subscription.Reservation) {
				require.ErrorIs(t, billing.ExpireReservation(b.engine, ctx, r.ID), subscription.ErrReservationNotExpired, "not before its expiry")
				b.clock.Set(r.ExpiresAt)
				require.NoError(t, billing.ExpireReservation(b.engine, ctx, r.ID))
				require.NoError(t, billing.ExpireReservation(b.engine, ctx, r.ID), "the job may run twice")
			},
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, r.ID, 100)
				return err
			},
			want: subscription.ErrReservationResolved,
		},
		{
			name: "a commit with another actual after a commit is refused",
			prepare: func(t *testing.T, b *testBundle, r subscription.Reservation) {
				_, err := b.engine.ReservationCommit(ctx, r.ID, 100)
				require.NoError(t, err)
			},
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, r.ID, 200)
				return err
			},
			want: subscription.ErrReservationResolved,
		},
		{
			name: "an unknown reservation is not found",
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationCommit(ctx, unknownID, 1)
				return err
			},
			want: billing.ErrNotFound,
		},
		{
			name: "a reservation ID that is not a UUID is bad input",
			resolve: func(b *testBundle, r subscription.Reservation) error {
				_, err := b.engine.ReservationRelease(ctx, "r1")
				return err
			},
			want: billing.ErrInvalidInput,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b, sub := reservationBundle(t, 1000)
			r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 800, TTL: time.Minute, IdempotencyKey: "r1"})
			require.NoError(t, err)
			if tt.prepare != nil {
				tt.prepare(t, b, r)
			}
			b.requireRefusedWritesNothing(t, sub.ID, tt.want, func() error { return tt.resolve(b, r) })
		})
	}

	t.Run("a reservation past its expiry is freed by the job, and Commit then refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		b.publish(t, "pro", "990", "tokens", 1000)
		sub := b.activeSubscription(t, "c1", "pro")
		r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 800, TTL: time.Minute, IdempotencyKey: "r1"})
		require.NoError(t, err)
		_, err = runner.RunUntil(ctx, r.ExpiresAt.Add(-time.Second))
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{Reserved: 800}, b.usage(t, sub.ID, "tokens"), "not freed before its expiry")
		_, err = runner.RunUntil(ctx, r.ExpiresAt)
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{}, b.usage(t, sub.ID, "tokens"))
		_, err = b.engine.ReservationCommit(ctx, r.ID, 100)
		require.ErrorIs(t, err, subscription.ErrReservationResolved)
	})

	reserveRefusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle, sub subscription.Subscription) string // returns the subscription ID to reserve in
		req     billing.ReserveParams
		want    error
	}{
		{name: "3.1 a reservation past the limit is refused whole",
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1001, IdempotencyKey: "r1"}, want: billing.ErrLimitExceeded},
		{name: "3.1 a meter not in the terms is refused",
			req: billing.ReserveParams{Meter: "images", Quantity: 1, IdempotencyKey: "r1"}, want: billing.ErrMeterUnknown},
		{name: "3.3 no reservation before payment",
			prepare: func(t *testing.T, b *testBundle, _ subscription.Subscription) string {
				return b.pendingSubscription(t, "c2", "pro").ID
			},
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1, IdempotencyKey: "r1"}, want: billing.ErrNoAccess},
		{name: "3.1 no reservation after the period end",
			prepare: func(t *testing.T, b *testBundle, sub subscription.Subscription) string {
				b.clock.Set(sub.Current.End)
				return sub.ID
			},
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1, IdempotencyKey: "r1"}, want: billing.ErrNoAccess},
		{name: "2.1.2 no reservation while suspended",
			prepare: func(t *testing.T, b *testBundle, sub subscription.Subscription) string {
				_, err := b.engine.Suspend(ctx, sub.ID, subscription.AdminAction{Actor: "admin:1", Reason: "check"})
				require.NoError(t, err)
				return sub.ID
			},
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1, IdempotencyKey: "r1"}, want: billing.ErrNoAccess},
		{name: "a quantity of zero is bad input",
			req: billing.ReserveParams{Meter: "tokens", Quantity: 0, IdempotencyKey: "r1"}, want: billing.ErrInvalidInput},
		{name: "a negative TTL is bad input",
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1, TTL: -time.Second, IdempotencyKey: "r1"}, want: billing.ErrInvalidInput},
		{name: "an idempotency key is required",
			req: billing.ReserveParams{Meter: "tokens", Quantity: 1}, want: billing.ErrInvalidInput},
		{name: "an unknown subscription is not found",
			prepare: func(*testing.T, *testBundle, subscription.Subscription) string { return unknownID },
			req:     billing.ReserveParams{Meter: "tokens", Quantity: 1, IdempotencyKey: "r1"}, want: billing.ErrNotFound},
	}
	for _, tt := range reserveRefusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b, sub := reservationBundle(t, 1000)
			id := sub.ID
			if tt.prepare != nil {
				id = tt.prepare(t, b, sub)
			}
			req := tt.req
			req.SubscriptionID = id
			b.requireRefusedWritesNothing(t, id, tt.want, func() error {
				_, err := b.engine.Reserve(ctx, req)
				return err
			})
		})
	}

	t.Run("Reserve needs a River client for the expiry job", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "tokens", 1000)
		sub := b.activeSubscription(t, "c1", "pro")
		b.requireRefusedWritesNothing(t, sub.ID, billing.ErrNoRiverClient, func() error {
			_, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1, IdempotencyKey: "r1"})
			return err
		})
	})
}

func TestReserveIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("the same key returns the first reservation and holds once", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		req := billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 700, IdempotencyKey: "r1"}
		first, err := b.engine.Reserve(ctx, req)
		require.NoError(t, err)
		before := b.rowCounts(t)
		b.clock.Advance(time.Second)
		again, err := b.engine.Reserve(ctx, req)
		require.NoError(t, err, "3.1 a retry is not a second hold, though a second one would not fit")
		require.Equal(t, first.ID, again.ID)
		require.True(t, again.ExpiresAt.Equal(first.ExpiresAt))
		require.Equal(t, before, b.rowCounts(t))
		require.Equal(t, subscription.Usage{Reserved: 700}, b.usage(t, sub.ID, "tokens"))

		_, err = b.engine.ReservationCommit(ctx, first.ID, 10)
		require.NoError(t, err)
		again, err = b.engine.Reserve(ctx, req)
		require.NoError(t, err)
		require.Equal(t, subscription.ReservationCommitted, again.State, "the replay shows the reservation as it is now")
	})

	t.Run("the same key with another request is a conflict; nothing is written", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		_, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 700, IdempotencyKey: "r1"})
		require.NoError(t, err)
		b.requireRefusedWritesNothing(t, sub.ID, billing.ErrIdempotencyConflict, func() error {
			_, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 10, IdempotencyKey: "r1"})
			return err
		})
	})

	t.Run("3.1 concurrent retries under one key hold the volume once", func(t *testing.T) {
		t.Parallel()
		b, sub := reservationBundle(t, 1000)
		const retries = 16
		ids := make([]string, retries)
		errs := make([]error, retries)
		var wg sync.WaitGroup
		for i := range retries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The whole volume: a second hold could not fit, so every retry must
				// find the first one.
				r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1000, IdempotencyKey: "r1"})
				ids[i], errs[i] = r.ID, err
			}()
		}
		wg.Wait()
		for i := range retries {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, subscription.Usage{Reserved: 1000}, b.usage(t, sub.ID, "tokens"))
	})
}

func TestReservationsConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.1 reservations in 64 goroutines never pass the limit", func(t *testing.T) {
		t.Parallel()
		const limit, goroutines, each = 100, 64, 5
		b, sub := reservationBundle(t, limit)
		var (
			mu       sync.Mutex
			held     []subscription.Reservation
			refused  atomic.Int64
			failures atomic.Int64
			wg       sync.WaitGroup
		)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 1,
						IdempotencyKey: fmt.Sprintf("g%d-%d", g, i)})
					switch {
					case err == nil:
						mu.Lock()
						held = append(held, r)
						mu.Unlock()
					case errorsIs(err, billing.ErrLimitExceeded):
						refused.Add(1)
					default:
						failures.Add(1)
						t.Errorf("unexpected error: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		require.Zero(t, failures.Load())
		require.Len(t, held, limit, "3.1 exactly the limit is held")
		require.Equal(t, int64(goroutines*each-limit), refused.Load())
		require.Equal(t, subscription.Usage{Reserved: limit}, b.usage(t, sub.ID, "tokens"))

		// Settle them concurrently too: half committed for 1, half released.
		for i, r := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%2 == 0 {
					_, err = b.engine.ReservationCommit(ctx, r.ID, 1)
				} else {
					_, err = b.engine.ReservationRelease(ctx, r.ID)
				}
				if err != nil {
					t.Errorf("resolve %s: %v", r.ID, err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, subscription.Usage{Used: limit / 2}, b.usage(t, sub.ID, "tokens"))
	})

	t.Run("3.1 consumes, reservations and commits in 64 goroutines never pass the limit", func(t *testing.T) {
		t.Parallel()
		const limit, goroutines, each = 150, 64, 4
		b, sub := reservationBundle(t, limit)
		var (
			consumed, committed, refused atomic.Int64
			wg                           sync.WaitGroup
		)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					key := fmt.Sprintf("g%d-%d", g, i)
					if (g+i)%2 == 0 {
						_, err := b.engine.Consume(ctx, sub.ID, "tokens", 1, key)
						switch {
						case err == nil:
							consumed.Add(1)
						case isRefusal(err):
							refused.Add(1)
						default:
							t.Errorf("consume: unexpected error: %v", err)
						}
						continue
					}
					r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "tokens", Quantity: 2, IdempotencyKey: key})
					switch {
					case err == nil:
					case isRefusal(err):
						refused.Add(1)
						continue
					default:
						t.Errorf("reserve: unexpected error: %v", err)
						continue
					}
					if _, err := b.engine.ReservationCommit(ctx, r.ID, 1); err != nil {
						t.Errorf("commit: unexpected error: %v", err)
						continue
					}
					committed.Add(1)
				}
			}()
		}
		wg.Wait()
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		u := got.Current.Usage["tokens"]
		require.Zero(t, u.Reserved)
		require.Equal(t, consumed.Load()+committed.Load(), u.Used, "every success was counted once")
		require.LessOrEqual(t, u.Used, int64(limit), "3.1 never past the limit")
		if u.Used == limit {
			require.Equal(t, subscription.StatusExhausted, got.Status)
			require.Len(t, filterActions(b.audit(t, sub.ID), "subscription.exhaust"), 1, "exhausted exactly once")
		}
	})
}

func TestConsumeReplayReturnsTheFirstResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "tokens", 10)
	sub := b.activeSubscription(t, "c1", "pro")
	tests := []struct {
		name     string
		quantity int64
		key      string
	}{
		{"3.1 a call that leaves volume", 4, "u1"},
		{"3.1 the call that uses the volume up", 6, "u2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := b.engine.Consume(ctx, sub.ID, "tokens", tt.quantity, tt.key)
			require.NoError(t, err)
			again, err := b.engine.Consume(ctx, sub.ID, "tokens", tt.quantity, tt.key)
			require.NoError(t, err, "a retry after the volume was used up still gets its result")
			require.True(t, again.Replayed)
			again.Replayed = false
			require.Equal(t, first, again, "the replay is the first call's result")
		})
	}
}

func TestConsumeAcrossRenewals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")

	// Period 1 used up; a reservation left open in period 2 is committed in period 3.
	_, err := b.engine.Consume(ctx, sub.ID, "generations", 500, "p1")
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)
	p2 := b.get(t, sub.ID)
	require.Equal(t, 2, p2.Current.Number)
	r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 30,
		TTL: 60 * 24 * time.Hour, IdempotencyKey: "r2"})
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, p2.Current.End.Add(time.Hour))
	require.NoError(t, err)
	p3 := b.get(t, sub.ID)
	require.Equal(t, 3, p3.Current.Number)
	_, err = b.engine.ReservationCommit(ctx, r.ID, 20)
	require.NoError(t, err)

	tests := []struct {
		name     string
		quantity int64
		key      string
		wantUsed int64
		wantErr  error
	}{
		{"3.1 a renewed period has fresh volume", 499, "p3-a", 499, nil},
		{"3.1 a request past the new period's limit is refused whole", 2, "p3-b", 0, billing.ErrLimitExceeded},
		{"3.1 the new period's volume is used up", 1, "p3-c", 500, nil},
		{"3.1 then access ends until the period ends", 1, "p3-d", 0, billing.ErrNoAccess},
		{"a key of an earlier period replays its first result", 500, "p1", 500, nil},
	}
	for _, tt := range tests {
		res, err := b.engine.Consume(ctx, sub.ID, "generations", tt.quantity, tt.key)
		if tt.wantErr != nil {
			require.ErrorIs(t, err, tt.wantErr, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.wantUsed, res.Used, tt.name)
	}
	rows, err := b.pool.Query(ctx, `SELECT period, used, reserved FROM billing_usage WHERE subscription_id = $1 ORDER BY period`, sub.ID)
	require.NoError(t, err)
	var got [][3]int64
	for rows.Next() {
		var u [3]int64
		require.NoError(t, rows.Scan(&u[0], &u[1], &u[2]))
		got = append(got, u)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, [][3]int64{{1, 500, 0}, {2, 20, 0}, {3, 500, 0}}, got, "each period counted its own usage")
	require.Equal(t, subscription.StatusExhausted, b.get(t, sub.ID).Status)
}

// --- helpers ---

// reservationBundle is a bundle with River started and an active subscription to "pro"
// with limit tokens.
func reservationBundle(t *testing.T, limit int64) (*testBundle, subscription.Subscription) {
	t.Helper()
	b := setup(t)
	b.withRiverNotStarted(t)
	b.publish(t, "pro", "990", "tokens", limit)
	return b, b.activeSubscription(t, "c1", "pro")
}

// withRiverNotStarted hands the engine a River client that is never started: jobs are
// inserted (Reserve needs that) but never worked, so a test decides when a reservation
// expires by calling ExpireReservation itself.
func (b *testBundle) withRiverNotStarted(t *testing.T) {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, b.engine.RegisterWorkers(workers))
	client, err := billingtest.NewRiverClient(b.pool, b.clock, workers)
	require.NoError(t, err)
	require.NoError(t, b.engine.UseRiver(client))
}

// usage reads the counters of meter in the subscription's current period.
func (b *testBundle) usage(t *testing.T, id, meter string) subscription.Usage {
	t.Helper()
	sub, err := b.engine.SubscriptionGet(context.Background(), id)
	require.NoError(t, err)
	require.NotNil(t, sub.Current)
	return sub.Current.Usage[meter]
}

func filterActions(rows []auditRow, action string) []auditRow {
	var out []auditRow
	for _, r := range rows {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}
