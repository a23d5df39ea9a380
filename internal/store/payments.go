package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/tariff"
)

// AttemptRow is a stored charge attempt with the terms it pays for.
type AttemptRow struct {
	payment.Attempt
	Terms tariff.Terms
}

const attemptColumns = `id::text, subscription_id::text, purpose, period, number, idempotency_key, amount_minor, currency,
	terms, due_at, state, provider_payment_id, decline_code, decline_message, created_at, settled_at`

func scanAttempt(row pgx.Row) (AttemptRow, error) {
	var a AttemptRow
	var purpose, state string
	var terms []byte
	var settled *time.Time
	if err := row.Scan(&a.ID, &a.SubscriptionID, &purpose, &a.PeriodNumber, &a.Number, &a.IdempotencyKey, &a.Amount,
		&a.Currency, &terms, &a.DueAt, &state, &a.ProviderPaymentID, &a.DeclineCode, &a.DeclineMessage, &a.CreatedAt, &settled); err != nil {
		return a, interpret(err)
	}
	a.Purpose, a.State = payment.Purpose(purpose), payment.State(state)
	if settled != nil {
		a.SettledAt = *settled
	}
	t, err := DecodeTerms(terms)
	a.Terms = t
	return a, err
}

// InsertAttempt stores a new attempt.
func InsertAttempt(ctx context.Context, tx pgx.Tx, a AttemptRow) error {
	terms, err := EncodeTerms(a.Terms)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO billing_payment_attempts (`+insertAttemptColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		a.ID, a.SubscriptionID, string(a.Purpose), a.PeriodNumber, a.Number, a.IdempotencyKey, a.Amount, a.Currency,
		terms, a.DueAt, string(a.State), a.ProviderPaymentID, a.DeclineCode, a.DeclineMessage, a.CreatedAt, nullTime(a.SettledAt))
	return err
}

const insertAttemptColumns = `id, subscription_id, purpose, period, number, idempotency_key, amount_minor, currency,
	terms, due_at, state, provider_payment_id, decline_code, decline_message, created_at, settled_at`

// UpdateAttempt stores an attempt's new state.
func UpdateAttempt(ctx context.Context, tx pgx.Tx, a payment.Attempt) error {
	_, err := tx.Exec(ctx, `UPDATE billing_payment_attempts SET state = $2, provider_payment_id = $3,
		decline_code = $4, decline_message = $5, settled_at = $6 WHERE id = $1`,
		a.ID, string(a.State), a.ProviderPaymentID, a.DeclineCode, a.DeclineMessage, nullTime(a.SettledAt))
	return err
}

// LatestAttempt returns the highest-numbered attempt of a subscription period, locked;
// ErrNotFound when the period has none.
func LatestAttempt(ctx context.Context, tx pgx.Tx, subID string, period int) (AttemptRow, error) {
	return scanAttempt(tx.QueryRow(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE subscription_id = $1 AND period = $2 ORDER BY number DESC LIMIT 1 FOR UPDATE`, subID, period))
}

// GetAttempt returns attempt id, unlocked.
func GetAttempt(ctx context.Context, q Querier, id string) (AttemptRow, error) {
	return scanAttempt(q.QueryRow(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts WHERE id = $1`, id))
}

// AttemptByReference finds an attempt by its provider payment id or its idempotency key,
// unlocked: lock its subscription (LockSubscription), then read it again, before acting on
// it. Locking the attempt first would invert the charge protocol's lock order
// (subscription, then attempt) and deadlock with it.
func AttemptByReference(ctx context.Context, q Querier, providerPaymentID, key string) (AttemptRow, error) {
	return scanAttempt(q.QueryRow(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE ($1 <> '' AND provider_payment_id = $1) OR ($2 <> '' AND idempotency_key = $2)
		ORDER BY created_at LIMIT 1`, providerPaymentID, key))
}

// Attempts returns every attempt of a subscription in order.
func Attempts(ctx context.Context, q Querier, subID string) ([]AttemptRow, error) {
	rows, err := q.Query(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE subscription_id = $1 ORDER BY period, number`, subID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
}

// OpenAttempts returns attempts whose outcome is not known yet (created, unknown or
// pending) made before cutoff: the reconciliation job's work list.
func OpenAttempts(ctx context.Context, q Querier, cutoff time.Time, limit int) ([]AttemptRow, error) {
	rows, err := q.Query(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE state IN ('created', 'unknown', 'pending') AND created_at <= $1 ORDER BY created_at LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
}

// PaymentMethod reads the consent status of a token; a token never saved has no consent.
func PaymentMethod(ctx context.Context, q Querier, token string) (payment.PaymentMethodStatus, error) {
	m := payment.PaymentMethodStatus{Token: token}
	var given time.Time
	var withdrawn *time.Time
	err := q.QueryRow(ctx, `SELECT consent_given_at, consent_withdrawn_at FROM billing_payment_methods WHERE token = $1`, token).
		Scan(&given, &withdrawn)
	if err == pgx.ErrNoRows {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	m.ConsentGivenAt = given
	if withdrawn != nil {
		m.ConsentWithdrawnAt = *withdrawn
	}
	return m, nil
}

// SaveConsent records consent to recurring charges on token (paying at checkout, TERMS
// 3.4). A token whose consent was withdrawn keeps its withdrawal.
func SaveConsent(ctx context.Context, tx pgx.Tx, token, customerID string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO billing_payment_methods (token, customer_id, consent_given_at)
		VALUES ($1, $2, $3) ON CONFLICT (token) DO NOTHING`, token, customerID, at)
	return err
}

// WithdrawConsent records the withdrawal of consent on token at at; it returns false when
// the token is unknown. A second withdrawal keeps the first instant.
func WithdrawConsent(ctx context.Context, tx pgx.Tx, token string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE billing_payment_methods SET consent_withdrawn_at = coalesce(consent_withdrawn_at, $2)
		WHERE token = $1`, token, at)
	return tag.RowsAffected() == 1, err
}

// SubscriptionsWithMethod returns the IDs of open subscriptions charged from token.
func SubscriptionsWithMethod(ctx context.Context, q Querier, token string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM billing_subscriptions
		WHERE payment_method = $1 AND status IN ('pending', 'active', 'exhausted', 'past_due', 'suspended') ORDER BY id`, token)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DueWithoutJob returns the subscriptions whose current period has ended, still open,
// with auto-renew on or off, that have no renewal job waiting: the sweeper's work list.
func DueWithoutJob(ctx context.Context, q Querier, now time.Time, limit int) ([]SubscriptionPeriod, error) {
	rows, err := q.Query(ctx, `SELECT s.id::text, s.current_period
		FROM billing_subscriptions s JOIN billing_periods p ON p.subscription_id = s.id AND p.number = s.current_period
		WHERE s.status IN ('active', 'exhausted', 'past_due') AND p.end_at <= $1
		  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = 'billing_renew'
		        AND j.state IN ('available', 'scheduled', 'running', 'retryable', 'pending')
		        AND j.args->>'subscription_id' = s.id::text AND (j.args->>'period')::int = s.current_period)
		ORDER BY p.end_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[SubscriptionPeriod])
}

// SubscriptionPeriod names one period of one subscription.
type SubscriptionPeriod struct {
	SubscriptionID string
	Period         int
}

// ChargeTarget is what step 2 of the charge protocol reads right before calling the
// gateway: who is charged, from which saved method, and that method's consent now.
type ChargeTarget struct {
	// CustomerID is the subscription's customer.
	CustomerID string
	// Method is the subscription's payment method now (its Token is "" once consent was
	// withdrawn) with its consent status.
	Method payment.PaymentMethodStatus
}

// ReadChargeTarget reads the ChargeTarget of subscription subID in one round trip,
// unlocked. A token never saved has no consent.
func ReadChargeTarget(ctx context.Context, q Querier, subID string) (ChargeTarget, error) {
	var t ChargeTarget
	var given, withdrawn *time.Time
	err := q.QueryRow(ctx, `SELECT s.customer_id, s.payment_method, m.consent_given_at, m.consent_withdrawn_at
		FROM billing_subscriptions s LEFT JOIN billing_payment_methods m ON m.token = s.payment_method
		WHERE s.id = $1`, subID).Scan(&t.CustomerID, &t.Method.Token, &given, &withdrawn)
	if err != nil {
		return t, interpret(err)
	}
	if given != nil {
		t.Method.ConsentGivenAt = *given
	}
	if withdrawn != nil {
		t.Method.ConsentWithdrawnAt = *withdrawn
	}
	return t, nil
}

// FirstPeriodStart returns when period 1 of subscription subID started: the anchor of its
// renewals.
func FirstPeriodStart(ctx context.Context, q Querier, subID string) (time.Time, error) {
	var start time.Time
	err := q.QueryRow(ctx, `SELECT start_at FROM billing_periods WHERE subscription_id = $1 AND number = 1`, subID).Scan(&start)
	return start, interpret(err)
}
