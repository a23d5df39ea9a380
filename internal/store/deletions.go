package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeletionRow is a stored account deletion request (TERMS 2.2.4).
type DeletionRow struct {
	ID             string
	CustomerID     string
	IdempotencyKey string
	ReceivedAt     time.Time
	Channel        string
	Text           string
	State          string
	Deadline       time.Time
	CreatedAt      time.Time
	DoneAt         time.Time
	DoneBy         string
	EscalatedAt    time.Time
}

const deletionColumns = `id::text, customer_id, idempotency_key, received_at, channel, body, state, deadline,
	created_at, done_at, done_by, escalated_at`

func scanDeletion(row pgx.Row) (DeletionRow, error) {
	var r DeletionRow
	var done, escalated *time.Time
	if err := row.Scan(&r.ID, &r.CustomerID, &r.IdempotencyKey, &r.ReceivedAt, &r.Channel, &r.Text, &r.State,
		&r.Deadline, &r.CreatedAt, &done, &r.DoneBy, &escalated); err != nil {
		return r, interpret(err)
	}
	if done != nil {
		r.DoneAt = *done
	}
	if escalated != nil {
		r.EscalatedAt = *escalated
	}
	return r, nil
}

// InsertDeletion stores a new account deletion request.
func InsertDeletion(ctx context.Context, tx pgx.Tx, r DeletionRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO billing_account_deletions (id, customer_id, idempotency_key, received_at,
		channel, body, state, deadline, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.CustomerID, r.IdempotencyKey, r.ReceivedAt, r.Channel, r.Text, r.State, r.Deadline, r.CreatedAt)
	return err
}

// GetDeletion reads account deletion request id, unlocked.
func GetDeletion(ctx context.Context, q Querier, id string) (DeletionRow, error) {
	return scanDeletion(q.QueryRow(ctx, `SELECT `+deletionColumns+` FROM billing_account_deletions WHERE id = $1`, id))
}

// LockDeletion reads account deletion request id, locked until the transaction ends.
func LockDeletion(ctx context.Context, tx pgx.Tx, id string) (DeletionRow, error) {
	return scanDeletion(tx.QueryRow(ctx, `SELECT `+deletionColumns+` FROM billing_account_deletions WHERE id = $1 FOR UPDATE`, id))
}

// MarkDeletionDone records that request id was executed at at by actor.
func MarkDeletionDone(ctx context.Context, tx pgx.Tx, id, actor string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE billing_account_deletions SET state = 'done', done_at = $2, done_by = $3
		WHERE id = $1 AND state = 'received'`, id, at, actor)
	return err
}

// MarkDeletionEscalated records that request id was escalated at at; it returns false
// when it was escalated before.
func MarkDeletionEscalated(ctx context.Context, q Querier, id string, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE billing_account_deletions SET escalated_at = $2
		WHERE id = $1 AND escalated_at IS NULL`, id, at)
	return tag.RowsAffected() == 1, err
}

// OpenDeletions returns the requests not yet executed, earliest deadline first.
func OpenDeletions(ctx context.Context, q Querier) ([]DeletionRow, error) {
	rows, err := q.Query(ctx, `SELECT `+deletionColumns+` FROM billing_account_deletions
		WHERE state = 'received' ORDER BY deadline, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeletionRow
	for rows.Next() {
		r, err := scanDeletion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CustomerTokens returns the payment-method tokens bound to customerID, locked until the
// transaction ends.
func CustomerTokens(ctx context.Context, tx pgx.Tx, customerID string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT token FROM billing_payment_methods WHERE customer_id = $1
		ORDER BY token FOR UPDATE`, customerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ForgetPaymentMethod withdraws consent on customerID's token at at (keeping an earlier
// withdrawal) and marks it forgotten: a tombstone nothing charges.
func ForgetPaymentMethod(ctx context.Context, tx pgx.Tx, customerID, token string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE billing_payment_methods
		SET consent_withdrawn_at = coalesce(consent_withdrawn_at, $3), forgotten_at = coalesce(forgotten_at, $3)
		WHERE token = $1 AND customer_id = $2`, token, customerID, at)
	return err
}
