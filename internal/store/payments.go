package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/tariff"
)

// AttemptRow is a stored charge attempt with the terms it pays for and the engine's own
// bookkeeping of it.
type AttemptRow struct {
	payment.Attempt
	Terms tariff.Terms
	// SentAt is when the engine let the attempt go to the gateway, after re-checking the
	// reason to charge in the same transaction; zero means no gateway ever saw it.
	SentAt time.Time
	// CheckFailures counts the reconciliation runs that failed on the attempt.
	CheckFailures int
	// ParkedAt is when reconciliation gave up on the attempt and left it to a person.
	ParkedAt time.Time
	// LastError is the last reconciliation error.
	LastError string
	// VAT is the VAT code of the charge's receipt, fixed when the attempt was made; its
	// refunds repeat it. Empty on attempts made before migration 0010.
	VAT payment.VATCode
	// ReturnURL is set on a checkout the customer confirms on the provider's page
	// (payment.CheckoutGateway): where the provider sends the customer back.
	ReturnURL string
	// ConfirmationURL is the provider's page for such a checkout, once the provider answered.
	ConfirmationURL string
	// SavedMethod is the payment method the provider saved with such a checkout.
	SavedMethod string
}

const attemptColumns = `id::text, subscription_id::text, purpose, period, number, idempotency_key, amount_minor, currency,
	terms, due_at, state, provider_payment_id, decline_code, decline_message, created_at, settled_at,
	sent_at, unapplied, check_failures, parked_at, last_error, vat_code, return_url, confirmation_url, saved_method`

func scanAttempt(row pgx.Row) (AttemptRow, error) {
	var a AttemptRow
	var purpose, state string
	var terms []byte
	var settled, sent, parked *time.Time
	var vat string
	if err := row.Scan(&a.ID, &a.SubscriptionID, &purpose, &a.PeriodNumber, &a.Number, &a.IdempotencyKey, &a.Amount,
		&a.Currency, &terms, &a.DueAt, &state, &a.ProviderPaymentID, &a.DeclineCode, &a.DeclineMessage, &a.CreatedAt, &settled,
		&sent, &a.Unapplied, &a.CheckFailures, &parked, &a.LastError, &vat, &a.ReturnURL, &a.ConfirmationURL,
		&a.SavedMethod); err != nil {
		return a, interpret(err)
	}
	a.VAT = payment.VATCode(vat)
	a.Purpose, a.State = payment.Purpose(purpose), payment.State(state)
	if settled != nil {
		a.SettledAt = *settled
	}
	if sent != nil {
		a.SentAt = *sent
	}
	if parked != nil {
		a.ParkedAt = *parked
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
	_, err = execRow(ctx, tx, a.SubscriptionID, insertAttemptSQL,
		a.ID, a.SubscriptionID, string(a.Purpose), a.PeriodNumber, a.Number, a.IdempotencyKey, a.Amount, a.Currency,
		terms, a.DueAt, string(a.State), a.ProviderPaymentID, a.DeclineCode, a.DeclineMessage, a.CreatedAt, nullTime(a.SettledAt),
		nullTime(a.SentAt), a.Unapplied, string(a.VAT), a.ReturnURL, a.ConfirmationURL, a.SavedMethod)
	return err
}

var insertAttemptSQL = newRowsStatement(`INSERT INTO billing_payment_attempts (id, subscription_id, purpose, period, number,
	idempotency_key, amount_minor, currency, terms, due_at, state, provider_payment_id, decline_code, decline_message,
	created_at, settled_at, sent_at, unapplied, vat_code, return_url, confirmation_url, saved_method)
		VALUES `, `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`, ``, false)

// UpdateAttempt stores an attempt's new state, whether it was sent, whether its money is
// unapplied, and a checkout's confirmation URL and saved method (kept once known).
func UpdateAttempt(ctx context.Context, tx pgx.Tx, a AttemptRow) error {
	_, err := execRow(ctx, tx, a.SubscriptionID, updateAttemptSQL,
		a.ID, string(a.State), a.ProviderPaymentID, a.DeclineCode, a.DeclineMessage, nullTime(a.SettledAt),
		nullTime(a.SentAt), a.Unapplied, a.ConfirmationURL, a.SavedMethod)
	return err
}

var updateAttemptSQL = newRowsStatement(`UPDATE billing_payment_attempts a SET state = v.state,
		provider_payment_id = v.provider_payment_id, decline_code = v.decline_code, decline_message = v.decline_message,
		settled_at = v.settled_at, sent_at = v.sent_at, unapplied = v.unapplied,
		confirmation_url = CASE WHEN v.confirmation_url = '' THEN a.confirmation_url ELSE v.confirmation_url END,
		saved_method = CASE WHEN v.saved_method = '' THEN a.saved_method ELSE v.saved_method END
	FROM (VALUES `, `($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::timestamptz, $8::boolean, $9::text, $10::text)`,
	`) AS v(id, state, provider_payment_id, decline_code, decline_message, settled_at, sent_at, unapplied, confirmation_url, saved_method)
	WHERE a.id = v.id`, true)

// LockAttempt returns attempt id locked FOR UPDATE. Lock its subscription first
// (LockSubscription): the charge protocol's lock order is subscription, then attempt.
func LockAttempt(ctx context.Context, tx pgx.Tx, id string) (AttemptRow, error) {
	return scanAttempt(tx.QueryRow(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts WHERE id = $1 FOR UPDATE`, id))
}

// NoteCheck records the outcome of one reconciliation run on attempt id: when failed, the
// failure count grows, lastErr is kept and parkedAt, when not zero, parks it for a person;
// either way the attempt is looked at again at next.
func NoteCheck(ctx context.Context, q Querier, id string, failed bool, lastErr string, next, parkedAt time.Time) error {
	_, err := q.Exec(ctx, `UPDATE billing_payment_attempts SET
		check_failures = check_failures + CASE WHEN $2 THEN 1 ELSE 0 END,
		last_error = CASE WHEN $2 THEN $3 ELSE last_error END,
		next_check_at = $4, parked_at = coalesce(parked_at, $5) WHERE id = $1`,
		id, failed, lastErr, nullTime(next), nullTime(parkedAt))
	return err
}

// AttemptListParked returns the attempts reconciliation gave up on, oldest first.
func AttemptListParked(ctx context.Context, q Querier) ([]AttemptRow, error) {
	rows, err := q.Query(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE parked_at IS NOT NULL ORDER BY parked_at`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
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

// OpenAttempts returns the reconciliation job's work list: attempts whose outcome is not
// known yet (created, unknown or pending), not parked, made before cutoff and due for a
// look (next_check_at), least recently looked at first; and attempts canceled after they
// were sent, for a day after their cancel (canceledSince), since a call still in flight
// may land on them.
func OpenAttempts(ctx context.Context, q Querier, cutoff, now, canceledSince time.Time, limit int) ([]AttemptRow, error) {
	rows, err := q.Query(ctx, openAttemptsSQL, cutoff, now, canceledSince, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
}

// openAttemptsSQL is OpenAttempts' statement: each half reads its partial index
// (billing_payment_attempts_open_idx and _canceled_sent_idx, migration 0009), never the
// settled attempts.
const openAttemptsSQL = `(SELECT ` + attemptColumns + ` FROM billing_payment_attempts
	WHERE state IN ('created', 'unknown', 'pending') AND parked_at IS NULL AND created_at <= $1
	  AND coalesce(next_check_at, created_at) <= $2
	ORDER BY coalesce(next_check_at, created_at) LIMIT $4)
	UNION ALL
	(SELECT ` + attemptColumns + ` FROM billing_payment_attempts
	WHERE state = 'canceled' AND sent_at IS NOT NULL AND settled_at >= $3 AND parked_at IS NULL
	  AND coalesce(next_check_at, settled_at) <= $2
	ORDER BY settled_at LIMIT $4)`

// PaymentMethod reads the consent status of a token and the customer it is bound to ("" for
// a token never saved, which has no consent).
func PaymentMethod(ctx context.Context, q Querier, token string) (payment.PaymentMethodStatus, string, error) {
	m := payment.PaymentMethodStatus{Token: token}
	var owner string
	var given, withdrawn *time.Time
	err := q.QueryRow(ctx, `SELECT customer_id, consent_given_at, consent_withdrawn_at FROM billing_payment_methods WHERE token = $1`, token).
		Scan(&owner, &given, &withdrawn)
	if err == pgx.ErrNoRows {
		return m, "", nil
	}
	if err != nil {
		return m, "", err
	}
	if given != nil {
		m.ConsentGivenAt = *given
	}
	if withdrawn != nil {
		m.ConsentWithdrawnAt = *withdrawn
	}
	return m, owner, nil
}

// BindPaymentMethod binds token to customerID if no customer has it yet (the first use
// binds, without consent) and returns the customer it is bound to: customerID, or the
// customer who used it first.
func BindPaymentMethod(ctx context.Context, tx pgx.Tx, token, customerID string) (string, error) {
	var owner string
	err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO billing_payment_methods (token, customer_id) VALUES ($1, $2)
			ON CONFLICT (token) DO NOTHING RETURNING customer_id)
		SELECT customer_id FROM ins UNION ALL SELECT customer_id FROM billing_payment_methods WHERE token = $1
		LIMIT 1`, token, customerID).Scan(&owner)
	return owner, err
}

// SaveConsent records consent to recurring charges on token by its customer (paying at
// checkout, TERMS 3.4), binding the token first if nobody has it. A token bound to another
// customer is left alone (the caller checked the binding); a token whose consent was
// withdrawn keeps its withdrawal.
func SaveConsent(ctx context.Context, tx pgx.Tx, token, customerID string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO billing_payment_methods (token, customer_id, consent_given_at)
		VALUES ($1, $2, $3) ON CONFLICT (token) DO UPDATE
		SET consent_given_at = coalesce(billing_payment_methods.consent_given_at, EXCLUDED.consent_given_at)
		WHERE billing_payment_methods.customer_id = EXCLUDED.customer_id`, token, customerID, at)
	return err
}

// WithdrawConsent records the withdrawal of consent on customerID's token at at; it returns
// false when the customer has no such token. A second withdrawal keeps the first instant.
func WithdrawConsent(ctx context.Context, tx pgx.Tx, customerID, token string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE billing_payment_methods SET consent_withdrawn_at = coalesce(consent_withdrawn_at, $3)
		WHERE token = $1 AND customer_id = $2`, token, customerID, at)
	return tag.RowsAffected() == 1, err
}

// SubscriptionsWithMethod returns the IDs of customerID's open subscriptions charged from
// token.
func SubscriptionsWithMethod(ctx context.Context, q Querier, customerID, token string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM billing_subscriptions
		WHERE payment_method = $1 AND customer_id = $2
		  AND status IN ('pending', 'active', 'exhausted', 'past_due', 'suspended') ORDER BY id`, token, customerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DueWithoutJob looks at the next chunk of at most limit subscriptions whose current
// period has ended, still open, with auto-renew on or off, after cursor after (the zero
// DueCursor: from the first), in the order of billing_subscriptions_due_idx, and returns
// those of them that have no renewal job waiting (the sweeper's work), the cursor after the
// chunk, and whether the chunk was full (more may follow). riverSchema is the schema of
// River's tables ("" for the search_path). See dueWithoutJobSQL; it runs with sweepSettings.
//
// The chunk bounds the rows one statement looks at, not the rows it returns: while every due
// subscription's job waits (a backlog of renewals), a chunk finds none, and the sweep goes
// on to the next one, emptying River's GIN pending list before each (see
// CleanArgsPendingList).
func DueWithoutJob(ctx context.Context, db Beginner, riverSchema string, now time.Time, after DueCursor,
	limit int) (due []SubscriptionPeriod, next DueCursor, full bool, err error) {
	return dueChunk(ctx, db, dueWithoutJobSQL(riverSchema), now, after, limit)
}

// DueWithoutClaim is DueWithoutJob for an engine whose renewals are claimed from the
// subscriptions table (migration 0019): it returns the chunk's subscriptions with no renewal
// run waiting (renew_at NULL). It reads the chunk's rows from the table (renew_at is not in
// billing_subscriptions_due_idx), and probes no other table.
func DueWithoutClaim(ctx context.Context, db Beginner, now time.Time, after DueCursor,
	limit int) (due []SubscriptionPeriod, next DueCursor, full bool, err error) {
	return dueChunk(ctx, db, dueWithoutClaimSQL, now, after, limit)
}

// dueChunk runs a chunk statement of the sweep (dueWithoutJobSQL, dueWithoutClaimSQL) and
// returns its finds, the cursor after the chunk, and whether the chunk was full.
func dueChunk(ctx context.Context, db Beginner, sql string, now time.Time, after DueCursor,
	limit int) (due []SubscriptionPeriod, next DueCursor, full bool, err error) {
	if after.ID == "" { // the zero cursor: time.Time{} (year 1) is before every period's end
		after.ID = uuid.Nil.String()
	}
	err = withSettings(ctx, db, sweepSettings, func(tx pgx.Tx) error {
		due, next, full = nil, after, false
		rows, err := tx.Query(ctx, sql, now, after.End, after.ID, limit)
		if err != nil {
			return err
		}
		var (
			sp      SubscriptionPeriod
			end     time.Time
			missing bool
			n       int64
		)
		_, err = pgx.ForEachRow(rows, []any{&sp.SubscriptionID, &sp.Period, &end, &missing, &n}, func() error {
			if missing {
				due = append(due, sp)
			} else { // the chunk's last row, and how many rows it had
				next, full = DueCursor{End: end, ID: sp.SubscriptionID}, n == int64(limit)
			}
			return nil
		})
		return err
	})
	return due, next, full, err
}

// DueCursor is where DueWithoutJob stopped: the period end and ID of the last subscription
// it looked at. The zero DueCursor starts at the first.
type DueCursor struct {
	// End is the last subscription's current_period_end.
	End time.Time
	// ID is the last subscription's ID.
	ID string
}

// CleanArgsPendingList moves the pending list of River's GIN index on args
// (river_job_args_index, in riverSchema) into the index proper, with PostgreSQL's
// gin_clean_pending_list, and returns how many pending pages it emptied (0 when the index
// does not exist).
//
// The sweeps probe that index once per row they look at (dueWithoutJobSQL,
// undeliveredWithoutJobSQL), and every probe of a GIN index reads its whole pending list:
// the unsorted entries that inserts leave there (fastupdate, on in River's schema) until
// the list reaches gin_pending_list_limit (4 MB) or a vacuum runs. While renewals run, each
// inserting four River jobs, that list stays full, and a probe cost 10 ms instead of 40 µs
// (BENCHMARKS.md, "Renewals: memory with a million due"). Emptying it once before a sweep
// costs what the next vacuum or insert would have spent on the same entries.
//
// PostgreSQL lets only the index's owner (or a superuser) do this: the error of a role that
// is not is returned (it matches IsInsufficientPrivilege), and the sweep goes on without it.
func CleanArgsPendingList(ctx context.Context, q Querier, riverSchema string) (int64, error) {
	var pages int64
	err := q.QueryRow(ctx, `SELECT coalesce(gin_clean_pending_list(to_regclass($1)), 0)`,
		RiverTable(riverSchema, "river_job_args_index")).Scan(&pages)
	return pages, err
}

// sweepSettings is run before the sweeps' statements that probe River's GIN index on args
// (dueWithoutJobSQL, undeliveredWithoutJobSQL), in their transaction. The planner estimates
// a containment probe at some 9 000 rows (a default selectivity, where one job or none
// matches), so it prices the statement in millions: it compiled the plan (JIT) and ran it
// with parallel workers, 1.6 s on a million subscriptions against 0.17 s for the same plan
// run serially and uncompiled (BENCHMARKS.md, "Periodic sweeps").
const sweepSettings = `SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0`

// dueWithoutJobSQL is DueWithoutJob's statement ($1 now; $2, $3 the cursor: the period
// end and ID after which to start; $4 the chunk) on River's table in riverSchema. It reads
// one range of billing_subscriptions_due_idx (migration 0018), the open subscriptions whose
// current_period_end is at or before now, index-only, so its cost follows the chunk, not
// all the subscriptions (BENCHMARKS.md, "Periodic sweeps"). It returns the chunk's rows
// whose renewal job is missing (true) and then the chunk's last row (false) with the chunk's
// size: the cursor. The probe is in a WHERE (an anti-join), not in the select list, where
// the planner made it a first-row subplan that scanned River's table. The job is looked for
// by containment (@>), which River's GIN index on args (river_job_args_index) serves with
// one probe per row; args->>'subscription_id' = … cannot use it and read every job of the
// kind (a million scheduled renewals) or scanned the table.
func dueWithoutJobSQL(riverSchema string) string {
	return `WITH due AS MATERIALIZED (
		    SELECT s.id, s.current_period, s.current_period_end FROM billing_subscriptions s
		    WHERE s.status IN ('active', 'exhausted', 'past_due') AND s.current_period_end <= $1
		      AND (s.current_period_end, s.id) > ($2::timestamptz, $3::uuid)
		    ORDER BY s.current_period_end, s.id LIMIT $4)
		(SELECT d.id::text, d.current_period, d.current_period_end, true, 0::bigint FROM due d
		 WHERE NOT EXISTS (SELECT 1 FROM ` + RiverTable(riverSchema, "river_job") + ` j WHERE j.kind = 'billing_renew'
		        AND j.state IN ('available', 'scheduled', 'running', 'retryable', 'pending')
		        AND j.args @> jsonb_build_object('subscription_id', d.id::text, 'period', d.current_period))
		 ORDER BY d.current_period_end, d.id)
		UNION ALL
		(SELECT d.id::text, d.current_period, d.current_period_end, false, (SELECT count(*) FROM due) FROM due d
		 ORDER BY d.current_period_end DESC, d.id DESC LIMIT 1)`
}

// dueWithoutClaimSQL is DueWithoutClaim's statement, with the parameters and results of
// dueWithoutJobSQL: the same range of billing_subscriptions_due_idx, and a subscription with
// no renewal run waiting is one whose renew_at is NULL.
const dueWithoutClaimSQL = `WITH due AS MATERIALIZED (
	    SELECT s.id, s.current_period, s.current_period_end, s.renew_at IS NULL AS missing FROM billing_subscriptions s
	    WHERE s.status IN ('active', 'exhausted', 'past_due') AND s.current_period_end <= $1
	      AND (s.current_period_end, s.id) > ($2::timestamptz, $3::uuid)
	    ORDER BY s.current_period_end, s.id LIMIT $4)
	(SELECT d.id::text, d.current_period, d.current_period_end, true, 0::bigint FROM due d
	 WHERE d.missing ORDER BY d.current_period_end, d.id)
	UNION ALL
	(SELECT d.id::text, d.current_period, d.current_period_end, false, (SELECT count(*) FROM due) FROM due d
	 ORDER BY d.current_period_end DESC, d.id DESC LIMIT 1)`

// SubscriptionPeriod names one period of one subscription.
type SubscriptionPeriod struct {
	SubscriptionID string
	Period         int
}

// FirstPeriodStart returns when period 1 of subscription subID started: the anchor of its
// renewals.
func FirstPeriodStart(ctx context.Context, q Querier, subID string) (time.Time, error) {
	var start time.Time
	err := q.QueryRow(ctx, `SELECT start_at FROM billing_periods WHERE subscription_id = $1 AND number = 1`, subID).Scan(&start)
	return start, interpret(err)
}

// LatestAttemptID returns the ID of the highest-numbered attempt of a subscription period,
// unlocked; ErrNotFound when the period has none.
func LatestAttemptID(ctx context.Context, q Querier, subID string, period int) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id::text FROM billing_payment_attempts
		WHERE subscription_id = $1 AND period = $2 ORDER BY number DESC LIMIT 1`, subID, period).Scan(&id)
	return id, interpret(err)
}

// GatewayKeySecret returns the installation's secret for gateway idempotency keys (made by
// migration 0009).
func GatewayKeySecret(ctx context.Context, q Querier) ([]byte, error) {
	var secret []byte
	err := q.QueryRow(ctx, `SELECT value FROM billing_secrets WHERE name = 'gateway_keys'`).Scan(&secret)
	return secret, interpret(err)
}
