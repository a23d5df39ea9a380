package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/subscription"
)

// InsertSubscription stores a new subscription (pending, or already active for a free
// tariff: then its first period is stored too).
func InsertSubscription(ctx context.Context, tx pgx.Tx, s subscription.Subscription, now time.Time) error {
	checkout, err := EncodeTerms(s.Checkout)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO billing_subscriptions
		(id, customer_id, tariff_code, status, auto_renew, location, payment_method, checkout, current_period,
		 suspended_from, created_at, ended_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, '', $9, NULL, $10)`,
		s.ID, s.CustomerID, s.Checkout.Code, string(s.Status), s.AutoRenew, s.LocationName(), s.PaymentMethod,
		checkout, s.CreatedAt, now); err != nil {
		return err
	}
	return SaveSubscription(ctx, tx, subscription.Subscription{ID: s.ID}, s, now)
}

// SaveSubscription writes after over before, which the caller read with LockSubscription
// in the same transaction (so its usage rows are locked and absolute counters are safe to
// write). A period whose number before did not have is inserted with its usage rows.
//
// A new period is inserted after the subscription row points at it (the foreign key of
// current_period is checked at commit), so its usage rows are inserted with their final
// open_until (migration 0008) instead of being inserted closed and opened by the
// subscription's trigger: one row write fewer per meter of every renewal. The same UPDATE
// sets current_period_end, the copy of the current period's end the renewal sweep reads
// (migration 0018; checked at commit), so this is the one place that keeps it.
func SaveSubscription(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, now time.Time) error {
	return saveSubscription(ctx, tx, before, after, now, nil)
}

// SaveSubscriptionRenewAt is SaveSubscription that also sets the subscription's renew_at
// (migration 0019) to renewAt in the same UPDATE, as SetRenewAt does: a renewal that starts a period with claims
// on schedules the next run at its end without writing the row twice (SetRenewAt).
func SaveSubscriptionRenewAt(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, now, renewAt time.Time) error {
	return saveSubscription(ctx, tx, before, after, now, &renewAt)
}

func saveSubscription(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, now time.Time, renewAt *time.Time) error {
	newPeriod := after.Current != nil && (before.Current == nil || before.Current.Number != after.Current.Number)
	if after.Current != nil && !newPeriod {
		if err := updatePeriod(ctx, tx, after.ID, *after.Current); err != nil {
			return err
		}
	}
	var current *int
	var currentEnd *time.Time // current_period_end, the sweep's copy of the period's end (migration 0018)
	if after.Current != nil {
		current, currentEnd = &after.Current.Number, &after.Current.End
	}
	var endedAt *time.Time
	if !after.EndedAt.IsZero() {
		endedAt = &after.EndedAt
	}
	args := []any{after.ID, string(after.Status), after.AutoRenew, after.PaymentMethod, current, string(after.SuspendedFrom), endedAt, now, currentEnd}
	stmt := updateSubscriptionSQL
	if renewAt != nil { // as SetRenewAt
		stmt, args = updateSubscriptionRenewAtSQL, append(args, *renewAt)
	}
	if _, err := execRow(ctx, tx, after.ID, stmt, args...); err != nil {
		return err
	}
	if newPeriod {
		return insertPeriod(ctx, tx, after.ID, *after.Current)
	}
	return nil
}

// updateSubscriptionSQL writes a subscription's row (saveSubscription); the tuple's columns
// are those of the row's own UPDATE, $1 its id.
var updateSubscriptionSQL = newRowsStatement(`UPDATE billing_subscriptions s SET status = v.status,
		auto_renew = v.auto_renew, payment_method = v.payment_method, current_period = v.current_period,
		current_period_end = v.current_period_end, suspended_from = v.suspended_from, ended_at = v.ended_at,
		updated_at = v.updated_at
	FROM (VALUES `, updateSubscriptionTuple, `) AS v(`+updateSubscriptionColumns+`)
	WHERE s.id = v.id`, true)

// updateSubscriptionRenewAtSQL is updateSubscriptionSQL that also sets renew_at, as
// SetRenewAt does.
var updateSubscriptionRenewAtSQL = newRowsStatement(`UPDATE billing_subscriptions s SET status = v.status,
		auto_renew = v.auto_renew, payment_method = v.payment_method, current_period = v.current_period,
		current_period_end = v.current_period_end, suspended_from = v.suspended_from, ended_at = v.ended_at,
		updated_at = v.updated_at, renew_at = v.renew_at, renew_claim = NULL, renew_failures = 0
	FROM (VALUES `, strings.TrimSuffix(updateSubscriptionTuple, ")")+`, $10::timestamptz)`,
	`) AS v(`+updateSubscriptionColumns+`, renew_at)
	WHERE s.id = v.id`, true)

const (
	updateSubscriptionTuple   = `($1::uuid, $2::text, $3::boolean, $4::text, $5::int, $6::text, $7::timestamptz, $8::timestamptz, $9::timestamptz)`
	updateSubscriptionColumns = `id, status, auto_renew, payment_method, current_period, suspended_from, ended_at, updated_at, current_period_end`
)

func insertPeriod(ctx context.Context, tx pgx.Tx, subID string, p subscription.Period) error {
	terms, err := EncodeTerms(p.Terms)
	if err != nil {
		return err
	}
	if _, err := execRow(ctx, tx, subID, insertPeriodSQL, subID, p.Number, terms, p.Start, p.End, p.GrantedAt, nullTime(p.ExhaustedAt)); err != nil {
		return err
	}
	for _, l := range p.Terms.Limits {
		u := p.Usage[l.Meter]
		if _, err := execRow(ctx, tx, subID, insertUsageSQL,
			subID, p.Number, l.Meter, l.Quantity, !p.Terms.Options.SoftLimits, u.Used, u.Reserved); err != nil {
			return err
		}
	}
	return nil
}

var (
	insertPeriodSQL = newRowsStatement(`INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at, exhausted_at)
		VALUES `, `($1, $2, $3, $4, $5, $6, $7)`, ``, false)
	insertUsageSQL = newRowsStatement(`INSERT INTO billing_usage (subscription_id, period, meter, quantity, hard, used, reserved)
			VALUES `, `($1, $2, $3, $4, $5, $6, $7)`, ``, false)
)

func updatePeriod(ctx context.Context, tx pgx.Tx, subID string, p subscription.Period) error {
	if _, err := tx.Exec(ctx, `UPDATE billing_periods SET end_at = $3, exhausted_at = $4
		WHERE subscription_id = $1 AND number = $2`, subID, p.Number, p.End, nullTime(p.ExhaustedAt)); err != nil {
		return err
	}
	for meter, u := range p.Usage {
		if _, err := tx.Exec(ctx, `UPDATE billing_usage SET used = $4, reserved = $5
			WHERE subscription_id = $1 AND period = $2 AND meter = $3`, subID, p.Number, meter, u.Used, u.Reserved); err != nil {
			return err
		}
	}
	return nil
}

// LockSubscription reads subscription id with its current period and usage, locking the
// subscription row and the period's usage rows until the transaction ends.
func LockSubscription(ctx context.Context, tx pgx.Tx, id string) (subscription.Subscription, error) {
	return readSubscription(ctx, tx, id, " FOR UPDATE")
}

// GetSubscription reads subscription id with its current period and usage.
func GetSubscription(ctx context.Context, q Querier, id string) (subscription.Subscription, error) {
	return readSubscription(ctx, q, id, "")
}

const subscriptionColumns = `id::text, customer_id, status, auto_renew, location, payment_method, checkout,
	current_period, suspended_from, created_at, ended_at`

func readSubscription(ctx context.Context, q Querier, id, lock string) (subscription.Subscription, error) {
	sub, current, err := scanSubscription(q.QueryRow(ctx, `SELECT `+subscriptionColumns+`
		FROM billing_subscriptions WHERE id = $1`+lock, id))
	if err != nil {
		return sub, err
	}
	if current != nil {
		p, err := readPeriod(ctx, q, id, *current, lock)
		if err != nil {
			return sub, err
		}
		sub.Current = &p
	}
	return sub, nil
}

// ListSubscriptions returns the subscriptions of a customer, oldest first, each with its
// current period.
func ListSubscriptions(ctx context.Context, q Querier, customerID string) ([]subscription.Subscription, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM billing_subscriptions WHERE customer_id = $1 ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]subscription.Subscription, 0, len(ids))
	for _, id := range ids {
		s, err := GetSubscription(ctx, q, id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func scanSubscription(row pgx.Row) (subscription.Subscription, *int, error) {
	var s subscription.Subscription
	var status, suspendedFrom string
	var checkout []byte
	var current *int
	var endedAt *time.Time
	if err := row.Scan(&s.ID, &s.CustomerID, &status, &s.AutoRenew, &s.Location, &s.PaymentMethod, &checkout,
		&current, &suspendedFrom, &s.CreatedAt, &endedAt); err != nil {
		return s, nil, interpret(err)
	}
	terms, err := DecodeTerms(checkout)
	if err != nil {
		return s, nil, err
	}
	s.Status, s.SuspendedFrom, s.Checkout = subscription.Status(status), subscription.Status(suspendedFrom), terms
	if endedAt != nil {
		s.EndedAt = *endedAt
	}
	return s, current, nil
}

// readPeriod reads period number of subscription id with its usage; lock is "" or
// " FOR UPDATE" (then the usage rows are locked too).
func readPeriod(ctx context.Context, q Querier, id string, number int, lock string) (subscription.Period, error) {
	var p subscription.Period
	var terms []byte
	var exhaustedAt *time.Time
	if err := q.QueryRow(ctx, `SELECT number, terms, start_at, end_at, granted_at, exhausted_at
		FROM billing_periods WHERE subscription_id = $1 AND number = $2`, id, number).
		Scan(&p.Number, &terms, &p.Start, &p.End, &p.GrantedAt, &exhaustedAt); err != nil {
		return p, interpret(err)
	}
	t, err := DecodeTerms(terms)
	if err != nil {
		return p, err
	}
	p.Terms = t
	if exhaustedAt != nil {
		p.ExhaustedAt = *exhaustedAt
	}
	rows, err := q.Query(ctx, `SELECT meter, used, reserved FROM billing_usage
		WHERE subscription_id = $1 AND period = $2 ORDER BY meter`+lock, id, number)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	p.Usage = map[string]subscription.Usage{}
	for rows.Next() {
		var meter string
		var u subscription.Usage
		if err := rows.Scan(&meter, &u.Used, &u.Reserved); err != nil {
			return p, err
		}
		p.Usage[meter] = u
	}
	return p, rows.Err()
}

// ReadPeriod reads period number of subscription id with its usage, unlocked.
func ReadPeriod(ctx context.Context, q Querier, id string, number int) (subscription.Period, error) {
	return readPeriod(ctx, q, id, number, "")
}

// InsertSubscriptionAudit writes a subscription transition's audit entry.
func InsertSubscriptionAudit(ctx context.Context, tx pgx.Tx, a subscription.AuditEntry) error {
	return InsertAudit(ctx, tx, AuditEntry{
		At: a.At, Actor: a.Actor, Action: "subscription." + string(a.Action), Subject: "subscription:" + a.SubscriptionID,
		Reason: a.Reason, Detail: map[string]any{"from": string(a.From), "to": string(a.To), "detail": a.Detail},
	})
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// SavePeriod writes a period's end, exhaustion and usage counters; the caller locked its
// usage rows in the same transaction.
func SavePeriod(ctx context.Context, tx pgx.Tx, subID string, p subscription.Period) error {
	return updatePeriod(ctx, tx, subID, p)
}
