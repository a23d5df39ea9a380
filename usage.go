package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/subscription"
)

// ConsumeResult is what Consume counted.
type ConsumeResult struct {
	// Period is the number of the period the volume was counted in.
	Period int
	// Used is the meter's used volume in the period after this call.
	Used int64
	// Limit is the meter's volume in the period.
	Limit int64
	// Exhausted is true when this call used the hard limit up: access has ended until
	// the period ends (TERMS 3.1).
	Exhausted bool
	// Replayed is true when the idempotency key was used before: the result is the first
	// call's, and nothing was counted now.
	Replayed bool
}

// Consume counts quantity of meter in the subscription's current period, all or
// nothing, in one round trip to PostgreSQL when the call leaves the volume under the
// limit; the rare call that uses a hard limit up, a replay or a refusal takes a second
// statement, which decides it. It is refused with [ErrNoAccess] (a
// [*NoAccessError] with the reason) outside access, [ErrMeterUnknown] for a
// meter the period's terms have no limit for, and [ErrLimitExceeded] (a [*LimitError] with what is left) when
// it would pass a hard limit; concurrent calls can never together pass one. Using the limit up moves the
// subscription to exhausted in the same statement (TERMS 3.1).
//
// Only metered meters can be consumed: a meter must appear in the tariff's Limits (a
// soft limit only reports, see tariff.Options.SoftLimits). A tariff without limits gives
// unlimited access for its period and has nothing to count.
//
// The same idempotencyKey returns the first call's result (Replayed); with another meter
// or quantity it is ErrIdempotencyConflict. A refused call records nothing, so its key
// may be retried.
func (e *Engine) Consume(ctx context.Context, subscriptionID, meter string, quantity int64, idempotencyKey string) (_ ConsumeResult, err error) {
	ctx, span := e.tel.startConsume(ctx, "Consume", subAttr(subscriptionID), attrHostTx.Bool(false))
	defer span.end(&err)
	return e.consume(ctx, e.pool, subscriptionID, meter, quantity, idempotencyKey)
}

// ConsumeTx is Consume in the host's transaction tx: the volume is counted once tx
// commits, and not at all if it rolls back. Each of its statements runs in a savepoint of
// tx, so a refusal leaves tx usable. Trap: Consume locks the usage row until tx ends, so
// other calls for the subscription's meter wait for the host's commit; keep tx short.
func (e *Engine) ConsumeTx(ctx context.Context, tx pgx.Tx, subscriptionID, meter string, quantity int64, idempotencyKey string) (_ ConsumeResult, err error) {
	ctx, span := e.tel.startConsume(ctx, "Consume", subAttr(subscriptionID), attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("ConsumeTx", tx); err != nil {
		return ConsumeResult{}, err
	}
	return e.consume(ctx, tx, subscriptionID, meter, quantity, idempotencyKey)
}

func (e *Engine) consume(ctx context.Context, db dbtx, subscriptionID, meter string, quantity int64, idempotencyKey string) (ConsumeResult, error) {
	check := inputCheck{op: "Consume"}
	check.id("subscriptionID", subscriptionID)
	check.usage(meter, quantity)
	check.key("idempotencyKey", idempotencyKey)
	if err := check.err(); err != nil {
		return ConsumeResult{}, err
	}
	// The common case first: a call that leaves volume under the limit, one statement
	// without the exhaustion writes, shared with the calls made at the same moment when
	// not in the host's transaction (usage_batch.go). Anything else (the call that uses a
	// limit up, a replay, a refusal) falls through to the full statement, which decides it.
	if e.cfg.ConsumeBatchSize > 1 && !inHostTx(db) && ctx.Err() == nil {
		if e.consumeAlone.enter() {
			defer e.consumeAlone.leave() // few calls at once: this one runs alone, below
		} else {
			call := store.ConsumeCall{SubscriptionID: subscriptionID, Key: idempotencyKey, Meter: meter, Quantity: quantity}
			if o, ok := e.consumeBatched(ctx, call); ok {
				return ConsumeResult{Period: o.Period, Used: o.UsedAfter, Limit: o.Quantity}, nil
			}
		}
	}
	var o store.ConsumeOutcome
	err := statement(ctx, db, func(q store.Querier) (err error) {
		o, err = e.consumeCommon.Consume(ctx, q, subscriptionID, idempotencyKey, meter, quantity, e.clock.Now())
		return err
	})
	if o.Applied {
		return ConsumeResult{Period: o.Period, Used: o.UsedAfter, Limit: o.Quantity}, nil
	}
	if err != nil && !store.IsUniqueViolation(err, "billing_usage_events_pkey") && !store.IsRetryable(err) {
		return ConsumeResult{}, opError("Consume", err)
	}
	for attempt := 0; ; attempt++ {
		now := e.clock.Now()
		o, err := e.consumeReporting(ctx, db, subscriptionID, idempotencyKey, meter, quantity, now, newID())
		if store.IsUniqueViolation(err, "billing_usage_events_pkey") && attempt < consumeRetries {
			continue // a concurrent call with the same key won; read its result
		}
		if store.IsRetryable(err) && attempt < consumeRetries && !inHostTx(db) {
			continue // a deadlock with a command holding the subscription row; nothing was counted (the host retries its own)
		}
		if err != nil {
			return ConsumeResult{}, opError("Consume", err)
		}
		switch {
		case o.Replayed:
			if o.PrevMeter != meter || o.PrevQuantity != quantity {
				return ConsumeResult{}, opError("Consume", fmt.Errorf("key %q was used for %d %s: %w",
					idempotencyKey, o.PrevQuantity, o.PrevMeter, ErrIdempotencyConflict))
			}
			return ConsumeResult{Period: o.Period, Used: o.UsedAfter, Limit: o.Quantity, Exhausted: o.Exhausted, Replayed: true}, nil
		case o.Applied:
			if o.Exhausted {
				e.logger.InfoContext(ctx, "billing: volume used up", "subscription", subscriptionID, "meter", meter)
			}
			return ConsumeResult{Period: o.Period, Used: o.UsedAfter, Limit: o.Quantity, Exhausted: o.Exhausted}, nil
		}
		// Refused: say why, from the state as it is now.
		err = e.whyRefused(ctx, db, subscriptionID, meter, quantity, now)
		if err != nil || attempt >= consumeRetries {
			if err == nil {
				err = fmt.Errorf("refused under contention: %w", ErrUnavailable)
			}
			return ConsumeResult{}, opError("Consume", err)
		}
	}
}

// consumeRetries is how many times Consume runs its deciding statement again after the
// first: when a concurrent call with the same key won (its result is then read), when a
// deadlock with a command holding the subscription row counted nothing (not in a host's
// transaction, which only the host can retry), or when a refusal is no longer explained by
// the state (it changed under the call). After that the call fails with ErrUnavailable.
const consumeRetries = 3

// whyRefused explains a refused Consume or Reserve with the pure decisions: no access,
// unknown meter or limit exceeded. It returns nil when the request would now fit (the
// state changed under the call), and the caller retries.
func (e *Engine) whyRefused(ctx context.Context, q store.Querier, id, meter string, quantity int64, now time.Time) error {
	sub, err := store.GetSubscription(ctx, q, id)
	if err != nil {
		return err
	}
	if d := subscription.Access(sub, now); !d.Granted {
		return d.Err()
	}
	return subscription.CanConsume(*sub.Current, meter, quantity)
}

// ReserveParams holds volume for a call whose cost is known only afterwards.
type ReserveParams struct {
	// SubscriptionID is the subscription to hold volume in. Required.
	SubscriptionID string
	// Meter is the meter to hold volume of. Required.
	Meter string
	// Quantity is how much to hold: the most the call may cost, > 0. Required.
	Quantity int64
	// TTL is how long the hold lasts if neither [Engine.ReservationCommit] nor [Engine.ReservationRelease] comes; then it expires
	// and frees its volume. Zero means subscription.DefaultReservationTTL (10 minutes).
	// Choose it longer than the slowest call: ReservationCommit after expiry is refused.
	TTL time.Duration
	// IdempotencyKey makes a retried Reserve return the first reservation. Required.
	IdempotencyKey string
}

// Reserve holds volume before an AI call (counted against the limit like used volume, so
// concurrent calls can never together pass it). Settle it with [Engine.ReservationCommit] for the actual
// amount, or [Engine.ReservationRelease]; left alone, it expires after its TTL through a River job and frees
// its volume. Needs UseRiver. Refused like Consume.
func (e *Engine) Reserve(ctx context.Context, req ReserveParams) (subscription.Reservation, error) {
	return e.reserve(ctx, e.pool, req)
}

// ReserveTx is Reserve in the host's transaction tx: the hold and its expiry job exist once
// tx commits.
func (e *Engine) ReserveTx(ctx context.Context, tx pgx.Tx, req ReserveParams) (subscription.Reservation, error) {
	if err := hostTx("ReserveTx", tx); err != nil {
		return subscription.Reservation{}, err
	}
	return e.reserve(ctx, tx, req)
}

func (e *Engine) reserve(ctx context.Context, db dbtx, req ReserveParams) (_ subscription.Reservation, err error) {
	ctx, span := e.tel.startConsume(ctx, "Reserve", subAttr(req.SubscriptionID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "Reserve"}
	check.id("SubscriptionID", req.SubscriptionID)
	check.usage(req.Meter, req.Quantity)
	check.key("IdempotencyKey", req.IdempotencyKey)
	if req.TTL < 0 {
		check.add("TTL", "must not be negative")
	}
	if err := check.err(); err != nil {
		return subscription.Reservation{}, err
	}
	client, err := e.riverClient()
	if err != nil {
		return subscription.Reservation{}, opError("Reserve", err)
	}
	var out subscription.Reservation
	err = store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		// The key is looked up under the subscription's lock: a concurrent Reserve with
		// the same key has then committed its reservation, and this one replays it rather
		// than being judged as a second hold (which may not fit).
		sub, err := store.LockSubscription(ctx, tx, req.SubscriptionID)
		if err != nil {
			return err
		}
		prev, err := store.ReservationByKey(ctx, tx, req.SubscriptionID, req.IdempotencyKey)
		if err == nil {
			if prev.Meter != req.Meter || prev.Quantity != req.Quantity {
				return fmt.Errorf("key %q was used to reserve %d %s: %w", req.IdempotencyKey, prev.Quantity, prev.Meter, ErrIdempotencyConflict)
			}
			out = reservationOf(prev)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if d := subscription.Access(sub, now); !d.Granted {
			return d.Err()
		}
		period, r, err := subscription.Reserve(*sub.Current, subscription.ReserveParams{
			ID: newID(), Meter: req.Meter, Quantity: req.Quantity, TTL: req.TTL}, now)
		if err != nil {
			return err
		}
		after := sub
		after.Current = &period
		if err := store.SaveSubscription(ctx, tx, sub, after, now); err != nil {
			return err
		}
		if err := store.InsertReservation(ctx, tx, sub.ID, req.IdempotencyKey, rowOf(r)); err != nil {
			return err
		}
		if _, err := client.InsertTx(ctx, tx, jobs.ExpireReservationArgs{ReservationID: r.ID},
			&riverInsertOpts{ScheduledAt: r.ExpiresAt}); err != nil {
			return err
		}
		out = r
		return nil
	})
	if store.IsUniqueViolation(err, "") {
		// A concurrent Reserve with the same key won: return its reservation.
		prev, err2 := store.ReservationByKey(ctx, db, req.SubscriptionID, req.IdempotencyKey)
		if err2 == nil && prev.Meter == req.Meter && prev.Quantity == req.Quantity {
			return reservationOf(prev), nil
		}
	}
	if err != nil {
		return subscription.Reservation{}, opError("Reserve", err)
	}
	return out, nil
}

// ReservationCommit settles an open reservation for the actual volume used (0 ≤ actual ≤ the
// reserved quantity): actual becomes used volume and the rest is freed. Using a hard limit
// up moves the subscription to exhausted (TERMS 3.1). Committing again with the same
// actual returns the committed reservation; anything else on a resolved reservation is
// subscription.ErrReservationResolved, and a commit at or after its expiry is
// subscription.ErrReservationExpired.
func (e *Engine) ReservationCommit(ctx context.Context, reservationID string, actual int64) (subscription.Reservation, error) {
	return e.commit(ctx, e.pool, reservationID, actual)
}

// ReservationCommitTx is Commit in the host's transaction tx.
func (e *Engine) ReservationCommitTx(ctx context.Context, tx pgx.Tx, reservationID string, actual int64) (subscription.Reservation, error) {
	if err := hostTx("ReservationCommitTx", tx); err != nil {
		return subscription.Reservation{}, err
	}
	return e.commit(ctx, tx, reservationID, actual)
}

func (e *Engine) commit(ctx context.Context, db dbtx, reservationID string, actual int64) (_ subscription.Reservation, err error) {
	ctx, span := e.tel.start(ctx, "ReservationCommit", reservationAttr(reservationID), hostTxAttr(db))
	defer span.end(&err)
	return e.resolve(ctx, db, "ReservationCommit", reservationID, func(p subscription.Period, r subscription.Reservation, now time.Time) (subscription.Period, subscription.Reservation, error) {
		if r.State == subscription.ReservationCommitted && r.Actual == actual {
			return p, r, errAlreadyDone
		}
		return subscription.Commit(p, r, actual, now)
	})
}

// ReservationRelease frees all of an open reservation: the call was not made or cost nothing.
// Releasing a released reservation returns it unchanged.
func (e *Engine) ReservationRelease(ctx context.Context, reservationID string) (subscription.Reservation, error) {
	return e.release(ctx, e.pool, reservationID)
}

// ReservationReleaseTx is Release in the host's transaction tx.
func (e *Engine) ReservationReleaseTx(ctx context.Context, tx pgx.Tx, reservationID string) (subscription.Reservation, error) {
	if err := hostTx("ReservationReleaseTx", tx); err != nil {
		return subscription.Reservation{}, err
	}
	return e.release(ctx, tx, reservationID)
}

func (e *Engine) release(ctx context.Context, db dbtx, reservationID string) (_ subscription.Reservation, err error) {
	ctx, span := e.tel.start(ctx, "ReservationRelease", reservationAttr(reservationID), hostTxAttr(db))
	defer span.end(&err)
	return e.resolve(ctx, db, "ReservationRelease", reservationID, func(p subscription.Period, r subscription.Reservation, now time.Time) (subscription.Period, subscription.Reservation, error) {
		if r.State == subscription.ReservationReleased {
			return p, r, errAlreadyDone
		}
		return subscription.Release(p, r, now)
	})
}

// expireReservation frees an open reservation whose TTL has passed. The engine's River
// job calls it at the reservation's expiry; a reservation already resolved is left alone.
func (e *Engine) expireReservation(ctx context.Context, reservationID string) (err error) {
	ctx, span := e.tel.start(ctx, "ExpireReservation", reservationAttr(reservationID))
	defer span.end(&err)
	_, err = e.resolve(ctx, e.pool, "ExpireReservation", reservationID, func(p subscription.Period, r subscription.Reservation, now time.Time) (subscription.Period, subscription.Reservation, error) {
		if r.State != subscription.ReservationOpen {
			return p, r, errAlreadyDone
		}
		return subscription.Expire(p, r, now)
	})
	return err
}

// errAlreadyDone tells resolve that the reservation is already as asked: no write.
var errAlreadyDone = errors.New("already done")

type resolveFunc func(subscription.Period, subscription.Reservation, time.Time) (subscription.Period, subscription.Reservation, error)

// resolve runs a reservation's resolution in one transaction: lock the reservation and
// its period's counters, decide, write counters and reservation, exhaust when a hard
// limit of the current period is used up.
func (e *Engine) resolve(ctx context.Context, db dbtx, op, reservationID string, fn resolveFunc) (subscription.Reservation, error) {
	check := inputCheck{op: op}
	check.id("reservationID", reservationID)
	if err := check.err(); err != nil {
		return subscription.Reservation{}, err
	}
	var out subscription.Reservation
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		row, err := store.LockReservation(ctx, tx, reservationID)
		if err != nil {
			return err
		}
		sub, err := store.LockSubscription(ctx, tx, row.SubscriptionID)
		if err != nil {
			return err
		}
		var period subscription.Period
		current := sub.Current != nil && sub.Current.Number == row.Period
		if current {
			period = *sub.Current
		} else {
			if err := store.LockPeriodUsage(ctx, tx, sub.ID, row.Period); err != nil {
				return err
			}
			if period, err = store.ReadPeriod(ctx, tx, sub.ID, row.Period); err != nil {
				return err
			}
		}
		r := reservationOf(row)
		nextPeriod, nextR, err := fn(period, r, now)
		if errors.Is(err, errAlreadyDone) {
			out = r
			return nil
		}
		if err != nil {
			return err
		}
		if err := store.SavePeriod(ctx, tx, sub.ID, nextPeriod); err != nil {
			return err
		}
		if err := e.emitCommitted(ctx, tx, sub.ID, period, nextPeriod, now); err != nil {
			return err
		}
		if err := store.ResolveReservation(ctx, tx, rowOf(nextR)); err != nil {
			return err
		}
		if current && sub.Status == subscription.StatusActive && subscription.ShouldExhaust(nextPeriod) {
			withUsage := sub
			withUsage.Current = &nextPeriod
			exhausted, audit, err := subscription.Exhaust(withUsage, now)
			if err != nil {
				return err
			}
			if err := store.SaveSubscription(ctx, tx, withUsage, exhausted, now); err != nil {
				return err
			}
			if err := store.InsertSubscriptionAudit(ctx, tx, audit); err != nil {
				return err
			}
		}
		out = nextR
		return nil
	})
	if err != nil {
		return subscription.Reservation{}, opError(op, err)
	}
	return out, nil
}

// MaxQuantity is the largest quantity Consume, Reserve and Commit accept in one call (10^12):
// a larger one is an *InputError, so a counter can never overflow its 64 bits.
const MaxQuantity int64 = 1_000_000_000_000

func (c *inputCheck) usage(meter string, quantity int64) {
	if meter == "" {
		c.add("meter", "required")
	}
	if quantity <= 0 {
		c.add("quantity", fmt.Sprintf("%d: must be at least 1", quantity))
	}
	if quantity > MaxQuantity {
		c.add("quantity", fmt.Sprintf("%d: at most %d in one call", quantity, MaxQuantity))
	}
}

func reservationOf(r store.ReservationRow) subscription.Reservation {
	return subscription.Reservation{
		ID: r.ID, Period: r.Period, Meter: r.Meter, Quantity: r.Quantity, Actual: r.Actual,
		State: subscription.ReservationState(r.State), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, ResolvedAt: r.ResolvedAt,
	}
}

func rowOf(r subscription.Reservation) store.ReservationRow {
	return store.ReservationRow{
		ID: r.ID, Period: r.Period, Meter: r.Meter, Quantity: r.Quantity, Actual: r.Actual,
		State: string(r.State), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, ResolvedAt: r.ResolvedAt,
	}
}

// statement runs one statement of a command on db: directly on the pool (one round trip),
// or in a savepoint of the host's transaction, so that a statement that fails (a key taken
// by a concurrent call) leaves the host's transaction usable.
func statement(ctx context.Context, db dbtx, fn func(store.Querier) error) error {
	if !inHostTx(db) {
		return fn(db)
	}
	return pgx.BeginFunc(ctx, db, func(sp pgx.Tx) error { return fn(sp) })
}
