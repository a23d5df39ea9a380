package store

import (
	"context"
	"time"
)

// The counts behind the engine's observable gauges (billing.attempts.open, billing.parked,
// billing.refunds.near_deadline). A metrics reader calls them every collection, in every
// process that runs an engine, so each is one statement answered from a partial index
// that holds only the rows counted (rows that are few whatever the size of the table):
// never a scan of a table that grows with the business.

// CountOpenAttempts counts the charge attempts whose outcome is not known yet (created,
// unknown, pending) and that reconciliation still works on (not parked). Index:
// billing_payment_attempts_open_idx, whose predicate is exactly this.
func CountOpenAttempts(ctx context.Context, q Querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM billing_payment_attempts
		WHERE state IN ('created', 'unknown', 'pending') AND parked_at IS NULL`).Scan(&n)
	return n, err
}

// CountParked counts what waits for a person: charge attempts parked by reconciliation,
// and unapplied payments whose refund was parked. One statement; indexes:
// billing_payment_attempts_parked_idx (migration 0012) and billing_unapplied_payments_open_idx
// (state <> 'refunded', which state = 'parked' implies).
func CountParked(ctx context.Context, q Querier) (attempts, unapplied int64, err error) {
	err = q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM billing_payment_attempts WHERE parked_at IS NOT NULL),
		(SELECT count(*) FROM billing_unapplied_payments WHERE state = 'parked')`).Scan(&attempts, &unapplied)
	return attempts, unapplied, err
}

// CountRefundsDueBy counts the open refund requests (received, verified, executing,
// failed) whose payout deadline is at or before by: past, or near when by is a little ahead
// of now. Index: billing_refund_requests_open_idx (payout_deadline) over exactly those states.
func CountRefundsDueBy(ctx context.Context, q Querier, by time.Time) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM billing_refund_requests
		WHERE state IN ('received', 'verified', 'executing', 'failed') AND payout_deadline <= $1`, by).Scan(&n)
	return n, err
}
