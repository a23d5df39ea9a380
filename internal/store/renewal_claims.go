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
func SetRenewAt(ctx context.Context, q Querier, id string, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE billing_subscriptions SET renew_at = $2 WHERE id = $1`, id, at)
	return err
}

// ClaimRenewals claims at most limit subscriptions whose renewal run is due at now, first
// due first, skipping rows another transaction holds (FOR UPDATE SKIP LOCKED: a command, or
// another claimer), and moves their renew_at to lease, so that no other claimer takes them
// until lease passes. It returns each claimed subscription with its current period: the
// period whose end the run renews. One statement, one range of billing_subscriptions_renew_idx.
func ClaimRenewals(ctx context.Context, q Querier, now, lease time.Time, limit int) ([]SubscriptionPeriod, error) {
	rows, err := q.Query(ctx, `WITH c AS (
		    SELECT id FROM billing_subscriptions WHERE renew_at <= $1
		    ORDER BY renew_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE billing_subscriptions s SET renew_at = $2 FROM c WHERE s.id = c.id
		RETURNING s.id::text, coalesce(s.current_period, 0)`, now, lease, limit)
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

// SettleRenewalClaims ends the claims of a chunk that ClaimRenewals leased until lease: for
// each ids[i] whose renew_at still reads lease (no run scheduled a next one meanwhile, and
// no later claim took it), it sets renew_at to next[i] (nil: no run waits). One statement.
func SettleRenewalClaims(ctx context.Context, q Querier, ids []string, next []*time.Time, lease time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `UPDATE billing_subscriptions s SET renew_at = n.at
		FROM unnest($1::uuid[], $2::timestamptz[]) AS n(id, at)
		WHERE s.id = n.id AND s.renew_at = $3`, ids, next, lease)
	return err
}

// NextRenewAt returns the earliest renew_at of all subscriptions (false: none waits): the
// next instant a claim finds work, for a test's runner.
func NextRenewAt(ctx context.Context, q Querier) (time.Time, bool, error) {
	var next *time.Time
	if err := q.QueryRow(ctx, `SELECT min(renew_at) FROM billing_subscriptions WHERE renew_at IS NOT NULL`).Scan(&next); err != nil || next == nil {
		return time.Time{}, false, err
	}
	return *next, true, nil
}
