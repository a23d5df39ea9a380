package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Renewals claimed from the subscriptions table (migration 0019; the engine's
// Config.ClaimRenewals): billing_subscriptions.renew_at is when a subscription's next
// renewal run is due, NULL when none waits.

// SetRenewAt sets when subscription id's next renewal run is due (the engine's
// scheduleRenewal with claims on): the last decision wins, as River's renewal job of the
// newest period or try would run last.
// A new schedule belongs to no claim and has failed no run (renew_claim NULL,
// renew_failures 0).
func SetRenewAt(ctx context.Context, q Querier, id string, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE billing_subscriptions SET renew_at = $2, renew_claim = NULL, renew_failures = 0 WHERE id = $1`, id, at)
	return err
}

// ClaimRenewals claims at most limit subscriptions whose renewal run is due at now, first
// due first, skipping rows another transaction holds (FOR UPDATE SKIP LOCKED: a command, or
// another claimer), and moves their renew_at to lease, so that no other claimer takes them
// until lease passes, marking them held by claim (renew_claim). It returns each claimed
// subscription with its current period: the period whose end the run renews. One
// statement, one range of billing_subscriptions_renew_idx.
func ClaimRenewals(ctx context.Context, q Querier, claim string, now, lease time.Time, limit int) ([]SubscriptionPeriod, error) {
	rows, err := q.Query(ctx, `WITH c AS (
		    SELECT id FROM billing_subscriptions WHERE renew_at <= $1
		    ORDER BY renew_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE billing_subscriptions s SET renew_at = $2, renew_claim = $4 FROM c WHERE s.id = c.id
		RETURNING s.id::text, coalesce(s.current_period, 0)`, now, lease, limit, claim)
	if err != nil {
		return nil, err
	}
	var sp SubscriptionPeriod
	out := []SubscriptionPeriod{}
	_, err = pgx.ForEachRow(rows, []any{&sp.SubscriptionID, &sp.Period}, func() error {
		out = append(out, sp)
		return nil
	})
	return out, err
}

// SettleRenewalClaims ends claim on the chunk's subscriptions it still holds (no run
// scheduled a next time meanwhile, which releases it, and no later claim took it): for
// ids[i] whose run failed (failed[i]), renew_at becomes now plus a backoff (River's for a
// failed job: n⁴ seconds for the n-th failure in a row, at most RenewalBackoffMax) and
// renew_failures counts it; for the others renew_at becomes next[i] (nil: no run waits)
// and renew_failures 0. One statement, which waits on no row lock: a row another transaction
// holds (a host's) is left as the claim made it, and claimed again when its lease ends.
func SettleRenewalClaims(ctx context.Context, q Querier, claim string, now time.Time, ids []string, next []*time.Time, failed []bool) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `WITH held AS (
		    SELECT id FROM billing_subscriptions WHERE id = ANY($1::uuid[]) AND renew_claim = $4
		    ORDER BY id FOR UPDATE SKIP LOCKED)
		UPDATE billing_subscriptions s SET
		    renew_at = CASE WHEN n.failed THEN $5::timestamptz + least(power(s.renew_failures + 1, 4), $6) * interval '1 second'
		                    ELSE n.at END,
		    renew_failures = CASE WHEN n.failed THEN s.renew_failures + 1 ELSE 0 END,
		    renew_claim = NULL
		FROM held, unnest($1::uuid[], $2::timestamptz[], $3::boolean[]) AS n(id, at, failed)
		WHERE s.id = held.id AND s.id = n.id AND s.renew_claim = $4`, ids, next, failed, claim, now, RenewalBackoffMax.Seconds())
	return err
}

// RenewalBackoffMax bounds the wait before a claimed renewal whose runs keep failing is
// claimed again: the reconciliation's longest backoff.
const RenewalBackoffMax = 6 * time.Hour

// NextRenewAt returns the earliest renew_at of all subscriptions (false: none waits): the
// next instant a claim finds work, for a test's runner.
func NextRenewAt(ctx context.Context, q Querier) (time.Time, bool, error) {
	var next *time.Time
	if err := q.QueryRow(ctx, `SELECT min(renew_at) FROM billing_subscriptions WHERE renew_at IS NOT NULL`).Scan(&next); err != nil || next == nil {
		return time.Time{}, false, err
	}
	return *next, true, nil
}
