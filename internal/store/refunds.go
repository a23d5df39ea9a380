package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RefundRow is a stored refund request.
type RefundRow struct {
	ID                string
	SubscriptionID    string
	Period            int
	IdempotencyKey    string
	ReceivedAt        time.Time
	Channel           string
	Text              string
	State             string
	Eligible          bool
	FailedReasons     []string
	Decision          string
	WindowEndsAt      time.Time
	PayoutDeadline    time.Time
	ProviderPaymentID string
	AmountMinor       int64
	Currency          string
	Attempt           int
	GatewayKey        string
	ProviderRefundID  string
	VerifiedBy        string
	VerifiedAt        time.Time
	ExecutedBy        string
	OverrideReason    string
	DeclineCode       string
	DeclineMessage    string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	SettledAt         time.Time
	EscalatedAt       time.Time
}

const refundColumns = `id::text, subscription_id::text, period, idempotency_key, received_at, channel, body, state,
	eligible, failed_reasons, decision, window_ends_at, payout_deadline, provider_payment_id, amount_minor, currency,
	attempt, gateway_key, provider_refund_id, verified_by, verified_at, executed_by, override_reason, decline_code,
	decline_message, created_at, updated_at, settled_at, escalated_at`

func scanRefund(row pgx.Row) (RefundRow, error) {
	var r RefundRow
	var verified, settled, escalated *time.Time
	if err := row.Scan(&r.ID, &r.SubscriptionID, &r.Period, &r.IdempotencyKey, &r.ReceivedAt, &r.Channel, &r.Text, &r.State,
		&r.Eligible, &r.FailedReasons, &r.Decision, &r.WindowEndsAt, &r.PayoutDeadline, &r.ProviderPaymentID, &r.AmountMinor,
		&r.Currency, &r.Attempt, &r.GatewayKey, &r.ProviderRefundID, &r.VerifiedBy, &verified, &r.ExecutedBy, &r.OverrideReason,
		&r.DeclineCode, &r.DeclineMessage, &r.CreatedAt, &r.UpdatedAt, &settled, &escalated); err != nil {
		return r, interpret(err)
	}
	if verified != nil {
		r.VerifiedAt = *verified
	}
	if settled != nil {
		r.SettledAt = *settled
	}
	if escalated != nil {
		r.EscalatedAt = *escalated
	}
	return r, nil
}

// InsertRefund stores a new refund request.
func InsertRefund(ctx context.Context, tx pgx.Tx, r RefundRow) error {
	if r.FailedReasons == nil {
		r.FailedReasons = []string{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO billing_refund_requests (id, subscription_id, period, idempotency_key, received_at,
		channel, body, state, eligible, failed_reasons, decision, window_ends_at, payout_deadline, provider_payment_id,
		amount_minor, currency, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)`,
		r.ID, r.SubscriptionID, r.Period, r.IdempotencyKey, r.ReceivedAt, r.Channel, r.Text, r.State, r.Eligible,
		r.FailedReasons, r.Decision, r.WindowEndsAt, r.PayoutDeadline, r.ProviderPaymentID, r.AmountMinor, r.Currency,
		r.CreatedAt)
	return err
}

// UpdateRefund stores the mutable fields of r (state, who, the gateway's answer).
func UpdateRefund(ctx context.Context, tx pgx.Tx, r RefundRow) error {
	_, err := tx.Exec(ctx, `UPDATE billing_refund_requests SET state = $2, provider_refund_id = $3, verified_by = $4,
		verified_at = $5, executed_by = $6, override_reason = $7, decline_code = $8, decline_message = $9,
		updated_at = $10, settled_at = $11, attempt = $12, gateway_key = $13, amount_minor = $14 WHERE id = $1`,
		r.ID, r.State, r.ProviderRefundID, r.VerifiedBy, nullTime(r.VerifiedAt), r.ExecutedBy, r.OverrideReason,
		r.DeclineCode, r.DeclineMessage, r.UpdatedAt, nullTime(r.SettledAt), r.Attempt, r.GatewayKey, r.AmountMinor)
	return err
}

// GetRefund reads refund request id, unlocked.
func GetRefund(ctx context.Context, q Querier, id string) (RefundRow, error) {
	return scanRefund(q.QueryRow(ctx, `SELECT `+refundColumns+` FROM billing_refund_requests WHERE id = $1`, id))
}

// LockRefund reads refund request id, locked until the transaction ends.
func LockRefund(ctx context.Context, tx pgx.Tx, id string) (RefundRow, error) {
	return scanRefund(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM billing_refund_requests WHERE id = $1 FOR UPDATE`, id))
}

// LockRefundByGateway finds the executed request of a gateway key or of a provider
// refund id; locked.
func LockRefundByGateway(ctx context.Context, tx pgx.Tx, key, providerRefundID string) (RefundRow, error) {
	return scanRefund(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM billing_refund_requests
		WHERE state IN ('executing', 'refunded', 'failed')
		  AND (($1 <> '' AND gateway_key = $1) OR ($2 <> '' AND provider_refund_id = $2))
		ORDER BY created_at LIMIT 1 FOR UPDATE`, key, providerRefundID))
}

// MarkRefundEscalated records that request id was escalated at at; it returns false when
// it was escalated before.
func MarkRefundEscalated(ctx context.Context, q Querier, id string, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE billing_refund_requests SET escalated_at = $2
		WHERE id = $1 AND escalated_at IS NULL`, id, at)
	return tag.RowsAffected() == 1, err
}

// RefundedPeriod reports whether a request of the subscription period is refunded or
// being refunded.
func RefundedPeriod(ctx context.Context, q Querier, subID string, period int) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM billing_refund_requests
		WHERE subscription_id = $1 AND period = $2 AND state IN ('executing', 'refunded')`, subID, period).Scan(&n)
	return n > 0, err
}

// ListRefunds returns requests in state (empty: any), only the open ones (received,
// verified, executing, failed) when open, whose payout deadline is before dueBefore (zero:
// any), earliest deadline first.
func ListRefunds(ctx context.Context, q Querier, state string, open bool, dueBefore time.Time) ([]RefundRow, error) {
	rows, err := q.Query(ctx, `SELECT `+refundColumns+` FROM billing_refund_requests
		WHERE ($1 = '' OR state = $1) AND ($2::timestamptz IS NULL OR payout_deadline < $2)
		  AND (NOT $3 OR state IN ('received', 'verified', 'executing', 'failed'))
		ORDER BY payout_deadline, id`, state, nullTime(dueBefore), open)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RefundRow, error) { return scanRefund(r) })
}

// SucceededCharge returns the succeeded charge attempt of a subscription period, or
// ErrNotFound when the period has none (unpaid, or activated without an attempt). An
// unapplied success (money owed back, refunded on its own) is not the period's.
func SucceededCharge(ctx context.Context, q Querier, subID string, period int) (AttemptRow, error) {
	return scanAttempt(q.QueryRow(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE subscription_id = $1 AND period = $2 AND state = 'succeeded' AND NOT unapplied`, subID, period))
}

// PeriodUsage returns the used volume of each meter of a subscription period and its
// number of open reservations.
func PeriodUsage(ctx context.Context, q Querier, subID string, period int) (map[string][2]int64, int, error) {
	rows, err := q.Query(ctx, `SELECT meter, quantity, used FROM billing_usage
		WHERE subscription_id = $1 AND period = $2 ORDER BY meter`, subID, period)
	if err != nil {
		return nil, 0, err
	}
	usage := map[string][2]int64{}
	var meter string
	var quantity, used int64
	if _, err := pgx.ForEachRow(rows, []any{&meter, &quantity, &used}, func() error {
		usage[meter] = [2]int64{quantity, used}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	var open int
	err = q.QueryRow(ctx, `SELECT count(*) FROM billing_reservations
		WHERE subscription_id = $1 AND period = $2 AND state = 'open'`, subID, period).Scan(&open)
	return usage, open, err
}

// ExecutingRefunds returns the IDs of the refund requests whose refund was sent and is not
// settled (state executing), oldest first, at most limit: the sweeper gives each a live
// retry job. The open index covers them.
func ExecutingRefunds(ctx context.Context, q Querier, limit int) ([]string, error) {
	rows, err := q.Query(ctx, executingRefundsSQL, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// executingRefundsSQL is ExecutingRefunds' statement ($1 the limit): the executing requests
// from the partial index of open requests (billing_refund_requests_open_idx, migration
// 0007), never the settled ones.
const executingRefundsSQL = `SELECT id::text FROM billing_refund_requests
	WHERE state = 'executing' ORDER BY payout_deadline, id LIMIT $1`
