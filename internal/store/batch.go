package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// This file holds the set-oriented reads of the batched renewal path (renewals_batch.go in
// the root package) and Pipeline, the transaction that queues its writes: each read here is
// the one-subscription read of subscriptions.go or payments.go for many subscriptions in one
// statement.

// LockSubscriptions is LockSubscription for many subscriptions at once: it reads the
// subscriptions of ids with their current periods and usage, locking the subscription rows
// in id order and then their current periods' usage rows. A subscription another
// transaction holds is skipped (SKIP LOCKED), not waited for: a batch never waits on one
// subscription while holding others, so it cannot complete a lock cycle with a host
// transaction that changes several subscriptions, nor hold up other customers' commands
// behind one busy row. IDs with no subscription, or skipped, are missing from the map.
func LockSubscriptions(ctx context.Context, tx pgx.Tx, ids []string) (map[string]subscription.Subscription, error) {
	rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+`
		FROM billing_subscriptions WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE SKIP LOCKED`, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]subscription.Subscription, len(ids))
	var subIDs []string
	var numbers []int32
	for rows.Next() {
		s, current, err := scanSubscription(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out[s.ID] = s
		if current != nil {
			subIDs, numbers = append(subIDs, s.ID), append(numbers, int32(*current))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(subIDs) == 0 {
		return out, nil
	}
	prows, err := tx.Query(ctx, `SELECT p.subscription_id::text, p.number, p.terms, p.start_at, p.end_at, p.granted_at, p.exhausted_at
		FROM unnest($1::uuid[], $2::int[]) AS k(subscription_id, number)
		CROSS JOIN LATERAL (SELECT * FROM billing_periods p
		  WHERE p.subscription_id = k.subscription_id AND p.number = k.number) p`, subIDs, numbers)
	if err != nil {
		return nil, err
	}
	for prows.Next() {
		var subID string
		var p subscription.Period
		var terms []byte
		var exhaustedAt *time.Time
		if err := prows.Scan(&subID, &p.Number, &terms, &p.Start, &p.End, &p.GrantedAt, &exhaustedAt); err != nil {
			prows.Close()
			return nil, err
		}
		if p.Terms, err = DecodeTerms(terms); err != nil {
			prows.Close()
			return nil, err
		}
		if exhaustedAt != nil {
			p.ExhaustedAt = *exhaustedAt
		}
		p.Usage = map[string]subscription.Usage{}
		s := out[subID]
		s.Current = &p
		out[subID] = s
	}
	if err := prows.Err(); err != nil {
		return nil, err
	}
	urows, err := tx.Query(ctx, `SELECT u.subscription_id::text, u.meter, u.used, u.reserved
		FROM billing_usage u
		WHERE u.subscription_id = ANY($1::uuid[]) AND (u.subscription_id, u.period) IN
		  (SELECT * FROM unnest($1::uuid[], $2::int[]))
		ORDER BY u.subscription_id, u.meter FOR UPDATE`, subIDs, numbers)
	if err != nil {
		return nil, err
	}
	defer urows.Close()
	for urows.Next() {
		var subID, meter string
		var u subscription.Usage
		if err := urows.Scan(&subID, &meter, &u.Used, &u.Reserved); err != nil {
			return nil, err
		}
		if s := out[subID]; s.Current != nil {
			s.Current.Usage[meter] = u
		}
	}
	if err := urows.Err(); err != nil {
		return nil, err
	}
	for _, id := range subIDs {
		if out[id].Current == nil {
			return nil, fmt.Errorf("store: subscription %s points at a period it does not have", id)
		}
	}
	return out, nil
}

// SubscriptionsWithAttempts returns which of the subscriptions subIDs already have an attempt
// for the period of the same index in periods.
func SubscriptionsWithAttempts(ctx context.Context, q Querier, subIDs []string, periods []int32) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT k.subscription_id::text
		FROM unnest($1::uuid[], $2::int[]) AS k(subscription_id, period)
		WHERE EXISTS (SELECT FROM billing_payment_attempts a
		  WHERE a.subscription_id = k.subscription_id AND a.period = k.period)`, subIDs, periods)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, err
}

// PaymentMethodOwner is a payment method's consent status and the customer it is bound to
// ("" for a token never saved), as PaymentMethod returns them.
type PaymentMethodOwner struct {
	// Status is the token's consent status.
	Status payment.PaymentMethodStatus
	// Owner is the customer the token is bound to.
	Owner string
}

// PaymentMethods is PaymentMethod for many tokens: every token gets an entry, a token
// never saved one with no consent and no owner.
func PaymentMethods(ctx context.Context, q Querier, tokens []string) (map[string]PaymentMethodOwner, error) {
	out := make(map[string]PaymentMethodOwner, len(tokens))
	for _, t := range tokens {
		out[t] = PaymentMethodOwner{Status: payment.PaymentMethodStatus{Token: t}}
	}
	rows, err := q.Query(ctx, `SELECT token, customer_id, consent_given_at, consent_withdrawn_at
		FROM billing_payment_methods WHERE token = ANY($1::text[])`, tokens)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m PaymentMethodOwner
		var given, withdrawn *time.Time
		if err := rows.Scan(&m.Status.Token, &m.Owner, &given, &withdrawn); err != nil {
			return nil, err
		}
		if given != nil {
			m.Status.ConsentGivenAt = *given
		}
		if withdrawn != nil {
			m.Status.ConsentWithdrawnAt = *withdrawn
		}
		out[m.Status.Token] = m
	}
	return out, rows.Err()
}

// LockAttempts is LockAttempt for many attempts, locked in id order. Lock their
// subscriptions first (LockSubscriptions). IDs with no attempt are missing from the map.
func LockAttempts(ctx context.Context, tx pgx.Tx, ids []string) (map[string]AttemptRow, error) {
	rows, err := tx.Query(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
	out := make(map[string]AttemptRow, len(as))
	for _, a := range as {
		out[a.ID] = a
	}
	return out, err
}

// FirstPeriodStarts is FirstPeriodStart for many subscriptions; one with no period 1 is
// missing from the map.
func FirstPeriodStarts(ctx context.Context, q Querier, subIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(subIDs))
	if len(subIDs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT subscription_id::text, start_at FROM billing_periods
		WHERE subscription_id = ANY($1::uuid[]) AND number = 1`, subIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var start time.Time
		if err := rows.Scan(&id, &start); err != nil {
			return nil, err
		}
		out[id] = start
	}
	return out, rows.Err()
}

// Pipeline is a transaction whose writes are queued and sent to PostgreSQL together, in one
// round trip (a pgx.Batch: PostgreSQL's pipeline mode), instead of one round trip each: the
// batched renewal path writes many subscriptions' renewals through one.
//
// Exec queues its statement and answers at once as if it wrote exactly one row; when the
// queue is sent (Flush, and before every read), a statement that wrote any other number of
// rows fails the flush, and with it the transaction, with ErrPipelineDiverged. So a caller
// that reads RowsAffected (InsertEvent: "was the event new?") is told the answer it expects,
// and the transaction never commits if that answer was wrong. Every statement queued on a
// Pipeline must write exactly one row. The rows of row statements (execRow: the attempt,
// subscription, period, usage, event and audit writes) are held and written many to a
// statement, statement after statement in the order each was first held, before the next
// statement that is not held; one unit's (subscription's) rows keep their order (holdRow). Query and QueryRow send the queue first,
// so reads see every earlier write. Ledger transactions (InsertLedgerTransaction) are held and written
// together by one statement at the end of the queue when it is sent. Savepoints (Begin) and
// CopyFrom are refused; SendBatch is not for callers (it sends its batch past the queue).
type Pipeline struct {
	pgx.Tx
	batch  pgx.Batch
	ledger []queuedLedgerTx // ledger transactions, written by one statement at the end of the queue

	held      []*heldRows            // rows of row statements (execRow), in the order each statement was first held
	heldIndex map[*rowsStatement]int // index in held
	unitLast  map[string]int         // the last index in held with a row of the unit
}

// queueLedger holds t until the queue is sent (ledgerQueuer).
func (p *Pipeline) queueLedger(t queuedLedgerTx) { p.ledger = append(p.ledger, t) }

// ErrPipelineDiverged is the error of a Pipeline flush in which a queued statement did not
// write exactly one row, which its caller was told it did.
var ErrPipelineDiverged = fmt.Errorf("store: a queued statement did not write exactly one row")

// ErrPipelineUnsupported is returned by the Pipeline methods that cannot be queued.
var ErrPipelineUnsupported = fmt.Errorf("store: not supported on a pipeline")

// NewPipeline returns a Pipeline on tx.
func NewPipeline(tx pgx.Tx) *Pipeline { return &Pipeline{Tx: tx} }

// Exec queues sql and reports one row written (see Pipeline).
func (p *Pipeline) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.sealRows()
	p.batch.Queue(sql, args...).Exec(func(ct pgconn.CommandTag) error {
		if ct.RowsAffected() != 1 {
			return fmt.Errorf("%w: %q wrote %d rows", ErrPipelineDiverged, firstLine(sql), ct.RowsAffected())
		}
		return nil
	})
	return pgconn.NewCommandTag("INSERT 0 1"), nil
}

// Flush sends the queued statements and reads their results.
func (p *Pipeline) Flush(ctx context.Context) error {
	p.sealRows()
	if len(p.ledger) > 0 {
		queueLedgerMany(&p.batch, p.ledger)
		p.ledger = nil
	}
	if p.batch.Len() == 0 {
		return nil
	}
	b := p.batch
	p.batch = pgx.Batch{}
	return p.Tx.SendBatch(ctx, &b).Close()
}

// Query sends the queue, then runs sql.
func (p *Pipeline) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.Flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Query(ctx, sql, args...)
}

// QueryRow sends the queue, then runs sql.
func (p *Pipeline) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.Flush(ctx); err != nil {
		return errRow{err}
	}
	return p.Tx.QueryRow(ctx, sql, args...)
}

// Begin is refused: a savepoint cannot be queued.
func (p *Pipeline) Begin(context.Context) (pgx.Tx, error) {
	return nil, fmt.Errorf("%w: savepoint", ErrPipelineUnsupported)
}

// CopyFrom is refused.
func (p *Pipeline) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, fmt.Errorf("%w: CopyFrom", ErrPipelineUnsupported)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func firstLine(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexByte(sql, '\n'); i >= 0 {
		return sql[:i]
	}
	return sql
}
