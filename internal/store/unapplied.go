package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// UnappliedRow is money the provider took that no subscription period could take (the
// subscription ended, was terminated or refunded, or the period was paid by another
// charge): owed back to the customer and refunded through the gateway.
type UnappliedRow struct {
	ID                string
	AttemptID         string
	SubscriptionID    string
	Period            int
	ProviderPaymentID string
	AmountMinor       int64
	Currency          string
	Reason            string
	// State is "refunding" (the refund job works on it), "refunded" or "parked" (the
	// refund failed too often; a person decides).
	State            string
	RefundKey        string
	ProviderRefundID string
	Failures         int
	LastError        string
	CreatedAt        time.Time
	SettledAt        time.Time
}

// The states of an unapplied payment.
const (
	UnappliedRefunding = "refunding"
	UnappliedRefunded  = "refunded"
	UnappliedParked    = "parked"
)

const unappliedColumns = `id::text, attempt_id::text, subscription_id::text, period, provider_payment_id, amount_minor,
	currency, reason, state, refund_key, provider_refund_id, failures, last_error, created_at, settled_at`

func scanUnapplied(row pgx.Row) (UnappliedRow, error) {
	var u UnappliedRow
	var settled *time.Time
	if err := row.Scan(&u.ID, &u.AttemptID, &u.SubscriptionID, &u.Period, &u.ProviderPaymentID, &u.AmountMinor,
		&u.Currency, &u.Reason, &u.State, &u.RefundKey, &u.ProviderRefundID, &u.Failures, &u.LastError,
		&u.CreatedAt, &settled); err != nil {
		return u, interpret(err)
	}
	if settled != nil {
		u.SettledAt = *settled
	}
	return u, nil
}

// InsertUnapplied stores a new unapplied payment; one per attempt.
func InsertUnapplied(ctx context.Context, tx pgx.Tx, u UnappliedRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO billing_unapplied_payments (id, attempt_id, subscription_id, period,
		provider_payment_id, amount_minor, currency, reason, state, refund_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		u.ID, u.AttemptID, u.SubscriptionID, u.Period, u.ProviderPaymentID, u.AmountMinor, u.Currency, u.Reason,
		u.State, u.RefundKey, u.CreatedAt)
	return err
}

// GetUnapplied returns unapplied payment id, unlocked.
func GetUnapplied(ctx context.Context, q Querier, id string) (UnappliedRow, error) {
	return scanUnapplied(q.QueryRow(ctx, `SELECT `+unappliedColumns+` FROM billing_unapplied_payments WHERE id = $1`, id))
}

// LockUnapplied returns unapplied payment id, locked FOR UPDATE.
func LockUnapplied(ctx context.Context, tx pgx.Tx, id string) (UnappliedRow, error) {
	return scanUnapplied(tx.QueryRow(ctx, `SELECT `+unappliedColumns+` FROM billing_unapplied_payments WHERE id = $1 FOR UPDATE`, id))
}

// UpdateUnapplied stores an unapplied payment's state, refund key, refund and failures.
func UpdateUnapplied(ctx context.Context, tx pgx.Tx, u UnappliedRow) error {
	_, err := tx.Exec(ctx, `UPDATE billing_unapplied_payments SET state = $2, provider_refund_id = $3, failures = $4,
		last_error = $5, settled_at = $6, refund_key = $7 WHERE id = $1`,
		u.ID, u.State, u.ProviderRefundID, u.Failures, u.LastError, nullTime(u.SettledAt), u.RefundKey)
	return err
}

// ListUnapplied returns the unapplied payments, oldest first; only those not yet refunded
// when open is true (the sweep's list: openUnappliedSQL).
func ListUnapplied(ctx context.Context, q Querier, open bool) ([]UnappliedRow, error) {
	sql := `SELECT ` + unappliedColumns + ` FROM billing_unapplied_payments ORDER BY created_at, id`
	if open {
		sql = openUnappliedSQL
	}
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnappliedRow, error) { return scanUnapplied(r) })
}

// UnappliedByRefund returns the unapplied payment whose refund has gateway key key or
// provider refund ID providerRefundID, unlocked; ErrNotFound when none has.
func UnappliedByRefund(ctx context.Context, q Querier, key, providerRefundID string) (UnappliedRow, error) {
	return scanUnapplied(q.QueryRow(ctx, `SELECT `+unappliedColumns+` FROM billing_unapplied_payments
		WHERE ($1 <> '' AND refund_key = $1) OR ($2 <> '' AND provider_refund_id = $2) LIMIT 1`, key, providerRefundID))
}

// NoteUnappliedRefund stores the provider's refund ID of an unapplied payment's pending
// refund, so that its webhook finds it.
func NoteUnappliedRefund(ctx context.Context, q Querier, id, providerRefundID string) error {
	_, err := q.Exec(ctx, `UPDATE billing_unapplied_payments SET provider_refund_id = $2
		WHERE id = $1 AND state = 'refunding'`, id, providerRefundID)
	return err
}

// openUnappliedSQL lists the unapplied payments not yet refunded from their partial index
// (billing_unapplied_payments_open_idx, migration 0009), without reading the refunded ones.
// A statement of its own, not "NOT $1 OR state <> 'refunded'": a parameter in the
// condition lets a cached generic plan serve both lists, and that plan cannot use the
// partial index, so it would scan the table.
const openUnappliedSQL = `SELECT ` + unappliedColumns + ` FROM billing_unapplied_payments
	WHERE state <> 'refunded' ORDER BY created_at, id`
