package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConsumeOutcome is what one Consume statement did.
type ConsumeOutcome struct {
	// Applied is true when the volume was counted by this call.
	Applied bool
	// Replayed is true when the key was used before: Prev* hold the first call.
	Replayed bool
	// Period and UsedAfter are the period counted in and the meter's used volume after
	// the call (of the first call, when Replayed).
	Period    int
	UsedAfter int64
	// Quantity is the limit of the meter; Exhausted is true when this call (or, when
	// Replayed, the first call) used it up and moved the subscription to exhausted.
	Quantity  int64
	Exhausted bool
	// PrevMeter and PrevQuantity are the first call's request, when Replayed.
	PrevMeter    string
	PrevQuantity int64
}

// consumeSQL counts quantity of a meter in the subscription's current period in one
// statement (one round trip, one implicit transaction when run alone):
//   - prev: the first call under this key, if any: then nothing is counted, and its
//     result is returned whole (the limit, and whether it used the volume up: a call is
//     only counted while volume is left, so a hard limit reached after it was reached by it);
//   - upd: the counter, only while the row is open (open_until, migration 0008: its period
//     is the current one, the subscription active and now before the period end) and, for
//     a hard limit, used + reserved + quantity within the quantity. The row lock taken by
//     UPDATE serializes concurrent calls on one meter and orders a call against every
//     command that changes access (their triggers write the row), and PostgreSQL re-checks
//     the whole WHERE on the latest row version, so concurrent calls can never together
//     pass the limit (the table's CHECK is the backstop) and a call that waited for a
//     suspension, a renewal or an exhaustion to commit is refused (an access check read
//     from the subscription in a CTE would be the statement's snapshot, not re-checked
//     after the wait). It finds the row through the partial unique index
//     billing_usage_open_idx, whatever the number of periods;
//   - ins: the key with the result (a concurrent call with the same key fails on the
//     primary key, and the whole statement with it: nothing is counted twice);
//   - ex, exp, aud: a hard limit used up moves the subscription to exhausted, stamps the
//     period and writes the audit entry, in the same statement (TERMS 3.1); ex re-checks
//     that the subscription is active in the counted period.
//
// With several meters, a call on meter B may run while another call uses meter A up. If
// B counted first, that is the serial order B, then A (A's decisions read only meter A's
// counter and the subscription); if A's exhaustion committed first, its trigger closed
// B's row and B is refused. Two calls that use up two meters at once lock their rows,
// then the subscription, then (the trigger) each other's row: PostgreSQL breaks that
// deadlock after deadlock_timeout by aborting one, whose statement wrote nothing, and
// the caller runs it again (IsRetryable).
const consumeSQL = `
WITH prev AS (
    SELECT e.period, e.meter, e.quantity, e.used_after, u.quantity AS lim, u.hard
    FROM billing_usage_events e
    JOIN billing_usage u ON u.subscription_id = e.subscription_id AND u.period = e.period AND u.meter = e.meter
    WHERE e.subscription_id = $1 AND e.key = $2
), upd AS (
    UPDATE billing_usage u SET used = u.used + $4
    WHERE u.subscription_id = $1 AND u.meter = $3
      AND u.open_until > '-infinity' AND $5 < u.open_until
      AND NOT EXISTS (SELECT 1 FROM prev)
      AND (NOT u.hard OR u.used + u.reserved + $4 <= u.quantity)
    RETURNING u.period, u.used, u.quantity, u.hard
), ins AS (
    INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
    SELECT $1, $2, upd.period, $3, $4, upd.used, $5 FROM upd
), ex AS (
    UPDATE billing_subscriptions SET status = 'exhausted', updated_at = $5
    FROM upd
    WHERE id = $1 AND status = 'active' AND current_period = upd.period AND upd.hard AND upd.used >= upd.quantity
    RETURNING upd.period
), exp AS (
    UPDATE billing_periods SET exhausted_at = $5
    WHERE subscription_id = $1 AND number = (SELECT period FROM ex)
), aud AS (
    INSERT INTO billing_audit_log (id, at, actor, action, subject, reason, detail)
    SELECT $6, $5, 'system', 'subscription.exhaust', 'subscription:' || $1::text,
           'hard limit used up (TERMS 3.1)', jsonb_build_object('from', 'active', 'to', 'exhausted', 'meter', $3::text)
    FROM ex
)
SELECT
    (SELECT count(*) FROM upd) = 1,
    (SELECT count(*) FROM prev) = 1,
    coalesce((SELECT period FROM upd), (SELECT period FROM prev), 0),
    coalesce((SELECT used FROM upd), (SELECT used_after FROM prev), 0),
    coalesce((SELECT quantity FROM upd), (SELECT lim FROM prev), 0),
    (SELECT count(*) FROM ex) = 1 OR coalesce((SELECT hard AND used_after >= lim FROM prev), false),
    coalesce((SELECT meter FROM prev), ''),
    coalesce((SELECT quantity FROM prev), 0)`

// consumeUnlessExhaustingSQL is the common case of consumeSQL, one UPDATE of one row
// and one INSERT (BENCHMARKS.md): it counts quantity only when that leaves volume under a
// hard limit (used + quantity < the quantity, besides used + reserved + quantity within
// it), so it never exhausts and needs no ex, exp, aud; and it does not look for the key
// first: a retried key fails on the primary key of billing_usage_events, and the whole
// statement with it. Its upd is consumeSQL's otherwise (the same access check on the
// row's open_until, the same lock and re-check), so the two run safely side by side. It returns one row when it counted,
// none otherwise; the caller then runs consumeSQL, which decides every other case (the
// call that uses a limit up, a replay, a refusal).
const consumeUnlessExhaustingSQL = `
WITH upd AS (
    UPDATE billing_usage u SET used = u.used + $4
    WHERE u.subscription_id = $1 AND u.meter = $3
      AND u.open_until > '-infinity' AND $5 < u.open_until
      AND (NOT u.hard OR (u.used + u.reserved + $4 <= u.quantity AND u.used + $4 < u.quantity))
    RETURNING u.period, u.used, u.quantity
), ins AS (
    INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
    SELECT $1, $2, upd.period, $3, $4, upd.used, $5 FROM upd
)
SELECT period, used, quantity FROM upd`

// ConsumeUnlessExhausting runs consumeUnlessExhaustingSQL: Applied is true when it
// counted; otherwise nothing was written and the caller runs Consume. err is a unique
// violation of billing_usage_events_pkey when the key was used before.
func ConsumeUnlessExhausting(ctx context.Context, q Querier, subID, key, meter string, quantity int64, now time.Time) (ConsumeOutcome, error) {
	var o ConsumeOutcome
	err := q.QueryRow(ctx, consumeUnlessExhaustingSQL, subID, key, meter, quantity, now).Scan(&o.Period, &o.UsedAfter, &o.Quantity)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, nil
	}
	o.Applied = err == nil
	return o, err
}

// Consume runs the consume statement; see consumeSQL. auditID is the ID the audit entry
// gets if the call exhausts the subscription.
func Consume(ctx context.Context, q Querier, subID, key, meter string, quantity int64, now time.Time, auditID string) (ConsumeOutcome, error) {
	var o ConsumeOutcome
	err := q.QueryRow(ctx, consumeSQL, subID, key, meter, quantity, now, auditID).Scan(
		&o.Applied, &o.Replayed, &o.Period, &o.UsedAfter, &o.Quantity, &o.Exhausted, &o.PrevMeter, &o.PrevQuantity)
	return o, err
}

// IsRetryable reports whether err is a serialization failure (40001) or a deadlock
// (40P01): the statement or transaction was rolled back whole and may be run again.
// Consume needs it: its statement locks a usage row before the subscription row (when it
// exhausts), the other commands lock the subscription first, so a deadlock between them
// is possible and PostgreSQL breaks it by aborting one.
func IsRetryable(err error) bool { return retryable(err) }

// BareCounterUpdate is the baseline of the Consume benchmark: the cheapest statement that
// counts usage, one UPDATE of one counter row with the limit in its WHERE.
func BareCounterUpdate(ctx context.Context, q Querier, subID, meter string, quantity int64) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE billing_usage SET used = used + $3
		WHERE subscription_id = $1 AND period = 1 AND meter = $2 AND used + reserved + $3 <= quantity`, subID, meter, quantity)
	return tag.RowsAffected() == 1, err
}

// InsertReservation stores a new reservation.
func InsertReservation(ctx context.Context, tx pgx.Tx, subID, key string, r ReservationRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO billing_reservations
		(id, subscription_id, key, period, meter, quantity, actual, state, created_at, expires_at, resolved_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ID, subID, key, r.Period, r.Meter, r.Quantity, r.Actual, r.State, r.CreatedAt, r.ExpiresAt, nullTime(r.ResolvedAt))
	return err
}

// ReservationRow is a stored reservation with its subscription and key.
type ReservationRow struct {
	ID             string
	SubscriptionID string
	Key            string
	Period         int
	Meter          string
	Quantity       int64
	Actual         int64
	State          string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	ResolvedAt     time.Time
}

const reservationColumns = `id::text, subscription_id::text, key, period, meter, quantity, actual, state, created_at, expires_at, resolved_at`

func scanReservation(row pgx.Row) (ReservationRow, error) {
	var r ReservationRow
	var resolved *time.Time
	if err := row.Scan(&r.ID, &r.SubscriptionID, &r.Key, &r.Period, &r.Meter, &r.Quantity, &r.Actual, &r.State,
		&r.CreatedAt, &r.ExpiresAt, &resolved); err != nil {
		return r, interpret(err)
	}
	if resolved != nil {
		r.ResolvedAt = *resolved
	}
	return r, nil
}

// LockReservation reads reservation id and locks it.
func LockReservation(ctx context.Context, tx pgx.Tx, id string) (ReservationRow, error) {
	return scanReservation(tx.QueryRow(ctx, `SELECT `+reservationColumns+` FROM billing_reservations WHERE id = $1 FOR UPDATE`, id))
}

// ReservationByKey reads the reservation made under key for subscription subID.
func ReservationByKey(ctx context.Context, q Querier, subID, key string) (ReservationRow, error) {
	return scanReservation(q.QueryRow(ctx, `SELECT `+reservationColumns+` FROM billing_reservations
		WHERE subscription_id = $1 AND key = $2`, subID, key))
}

// ResolveReservation stores a reservation's resolution.
func ResolveReservation(ctx context.Context, tx pgx.Tx, r ReservationRow) error {
	_, err := tx.Exec(ctx, `UPDATE billing_reservations SET state = $2, actual = $3, resolved_at = $4 WHERE id = $1`,
		r.ID, r.State, r.Actual, nullTime(r.ResolvedAt))
	return err
}

// LockPeriodUsage locks the usage rows of a period (for resolving a reservation in a
// period that is no longer current) and returns the period.
func LockPeriodUsage(ctx context.Context, tx pgx.Tx, subID string, number int) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM billing_usage WHERE subscription_id = $1 AND period = $2 FOR UPDATE`, subID, number)
	return err
}

// StaleOpenUntil lists (at most 10) usage rows whose open_until differs from the value
// its triggers must keep (billing_usage_open_until of migration 0008), as
// "subscription/period/meter: stored, want". Empty means the copy is right everywhere.
func StaleOpenUntil(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT format('%s/%s/%s: %s, want %s', subscription_id, period, meter, open_until, want)
		FROM (SELECT u.*, billing_usage_open_until(u.subscription_id, u.period) AS want FROM billing_usage u) u
		WHERE open_until IS DISTINCT FROM want
		ORDER BY subscription_id, period, meter LIMIT 10`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
