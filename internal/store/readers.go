package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/subscription"
)

// The readers' statements (issue 15): listings an operator and an accountant page through,
// and the histories of one item. Nothing here writes.
//
// Every listing is keyset-paginated on an index of migration 0012 (or a primary key): the
// rows after the cursor in index order, LIMIT n. Filters are spliced in as fixed SQL
// fragments, never as "($1 = '' OR col = $1)": pgx prepares its statements, and the generic
// plan PostgreSQL settles on for such an OR cannot use the index of either branch.

// ReadSnapshot runs fn in a read-only REPEATABLE READ transaction on pool: every statement
// of fn sees the same snapshot, so a reader made of several statements (a page and its
// periods, an export made of pages) is consistent. The snapshot is held until fn returns;
// a long one holds back vacuum.
func ReadSnapshot(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// SubscriptionCurrentPeriod returns the current period number of subscription id (nil while
// it has none), or ErrNotFound.
func SubscriptionCurrentPeriod(ctx context.Context, q Querier, id string) (*int, error) {
	var current *int
	err := q.QueryRow(ctx, `SELECT current_period FROM billing_subscriptions WHERE id = $1`, id).Scan(&current)
	return current, interpret(err)
}

// SubscriptionPeriods returns every period of subscription id, by number, each with its
// terms as stored when it was paid and its usage counters.
func SubscriptionPeriods(ctx context.Context, q Querier, id string) ([]subscription.Period, error) {
	rows, err := q.Query(ctx, `SELECT number, terms, start_at, end_at, granted_at, exhausted_at
		FROM billing_periods WHERE subscription_id = $1 ORDER BY number`, id)
	if err != nil {
		return nil, err
	}
	periods, err := pgx.CollectRows(rows, scanPeriod)
	if err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT period, meter, used, reserved FROM billing_usage
		WHERE subscription_id = $1 ORDER BY period, meter`, id)
	if err != nil {
		return nil, err
	}
	byNumber := make(map[int]*subscription.Period, len(periods))
	for i := range periods {
		byNumber[periods[i].Number] = &periods[i]
	}
	var number int
	var meter string
	var u subscription.Usage
	_, err = pgx.ForEachRow(rows, []any{&number, &meter, &u.Used, &u.Reserved}, func() error {
		if p := byNumber[number]; p != nil {
			p.Usage[meter] = u
		}
		return nil
	})
	return periods, err
}

func scanPeriod(row pgx.CollectableRow) (subscription.Period, error) {
	var p subscription.Period
	var terms []byte
	var exhaustedAt *time.Time
	if err := row.Scan(&p.Number, &terms, &p.Start, &p.End, &p.GrantedAt, &exhaustedAt); err != nil {
		return p, err
	}
	t, err := DecodeTerms(terms)
	if err != nil {
		return p, err
	}
	p.Terms, p.Usage = t, map[string]subscription.Usage{}
	if exhaustedAt != nil {
		p.ExhaustedAt = *exhaustedAt
	}
	return p, nil
}

// AppliedCharges returns the succeeded, applied charge attempts of subscription id (at most
// one per period, by the unique index billing_payment_attempts_one_success), by period.
func AppliedCharges(ctx context.Context, q Querier, id string) ([]AttemptRow, error) {
	rows, err := q.Query(ctx, `SELECT `+attemptColumns+` FROM billing_payment_attempts
		WHERE subscription_id = $1 AND state = 'succeeded' AND NOT unapplied ORDER BY period`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptRow, error) { return scanAttempt(r) })
}

// PeriodRefunds returns the refund requests of subscription id that hold their period's
// refund (executing, refunded or failed: at most one per period, by the unique index
// billing_refund_requests_one_refund), by period.
func PeriodRefunds(ctx context.Context, q Querier, id string) ([]RefundRow, error) {
	rows, err := q.Query(ctx, `SELECT `+refundColumns+` FROM billing_refund_requests
		WHERE subscription_id = $1 AND state IN ('executing', 'refunded', 'failed') ORDER BY period`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RefundRow, error) { return scanRefund(r) })
}

// SubscriptionPageParams selects a page of subscriptions for PageSubscriptions.
type SubscriptionPageParams struct {
	// Status keeps one status; "" keeps all.
	Status string
	// CustomerID keeps one customer's; "" keeps all.
	CustomerID string
	// After is the id the page starts after; "" starts at the first.
	After string
	// Limit is how many rows to return, ≥ 1.
	Limit int
}

// PageSubscriptions returns up to p.Limit subscriptions with id > p.After, by id, each with
// its current period and usage. Three statements (the page, its current periods, their
// usage): read it in a ReadSnapshot for a consistent page. Query plans (BENCHMARKS.md,
// "Readers"): by status, an index range scan of billing_subscriptions_status_id_idx; by
// customer (with a status or not), of billing_subscriptions_customer_id_idx; with neither,
// of the primary key. Each stops after Limit rows.
func PageSubscriptions(ctx context.Context, q Querier, p SubscriptionPageParams) ([]subscription.Subscription, error) {
	sql, args := subscriptionPageSQL(p)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	type withCurrent struct {
		sub     subscription.Subscription
		current *int
	}
	page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (withCurrent, error) {
		s, current, err := scanSubscription(r)
		return withCurrent{s, current}, err
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	var numbers []int
	for _, w := range page {
		if w.current != nil {
			ids, numbers = append(ids, w.sub.ID), append(numbers, *w.current)
		}
	}
	periods := map[string]*subscription.Period{}
	if len(ids) > 0 {
		if periods, err = currentPeriods(ctx, q, ids, numbers); err != nil {
			return nil, err
		}
	}
	out := make([]subscription.Subscription, len(page))
	for i, w := range page {
		out[i] = w.sub
		if w.current != nil {
			out[i].Current = periods[w.sub.ID]
		}
	}
	return out, nil
}

// subscriptionPageSQL is the page statement for p's filters, with its arguments. The
// filters are fixed fragments, so each of the four shapes has a plan of its own.
func subscriptionPageSQL(p SubscriptionPageParams) (string, []any) {
	after := p.After
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000" // below every UUIDv7
	}
	sql := `SELECT ` + subscriptionColumns + ` FROM billing_subscriptions WHERE id > $1::uuid`
	args := []any{after}
	if p.Status != "" {
		args = append(args, p.Status)
		sql += ` AND status = $2`
	}
	if p.CustomerID != "" {
		args = append(args, p.CustomerID)
		sql += ` AND customer_id = $` + strconv.Itoa(len(args))
	}
	args = append(args, p.Limit)
	// The table's id, not the output column "id" (id::text): ordered as text, the page would
	// need a sort, and a collation's text order need not be the UUIDs' order.
	return sql + ` ORDER BY billing_subscriptions.id LIMIT $` + strconv.Itoa(len(args)), args
}

// currentPeriods reads the periods (ids[i], numbers[i]) with their usage, keyed by
// subscription id: two statements for a whole page.
func currentPeriods(ctx context.Context, q Querier, ids []string, numbers []int) (map[string]*subscription.Period, error) {
	rows, err := q.Query(ctx, `SELECT p.subscription_id::text, p.number, p.terms, p.start_at, p.end_at, p.granted_at, p.exhausted_at
		FROM unnest($1::uuid[], $2::int[]) AS k(id, number)
		JOIN billing_periods p ON p.subscription_id = k.id AND p.number = k.number`, ids, numbers)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*subscription.Period, len(ids))
	if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var id string
		var p subscription.Period
		var terms []byte
		var exhaustedAt *time.Time
		if err := r.Scan(&id, &p.Number, &terms, &p.Start, &p.End, &p.GrantedAt, &exhaustedAt); err != nil {
			return struct{}{}, err
		}
		t, err := DecodeTerms(terms)
		if err != nil {
			return struct{}{}, err
		}
		p.Terms, p.Usage = t, map[string]subscription.Usage{}
		if exhaustedAt != nil {
			p.ExhaustedAt = *exhaustedAt
		}
		out[id] = &p
		return struct{}{}, nil
	}); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT u.subscription_id::text, u.meter, u.used, u.reserved
		FROM unnest($1::uuid[], $2::int[]) AS k(id, number)
		JOIN billing_usage u ON u.subscription_id = k.id AND u.period = k.number`, ids, numbers)
	if err != nil {
		return nil, err
	}
	var id, meter string
	var u subscription.Usage
	_, err = pgx.ForEachRow(rows, []any{&id, &meter, &u.Used, &u.Reserved}, func() error {
		if p := out[id]; p != nil {
			p.Usage[meter] = u
		}
		return nil
	})
	return out, err
}

// LedgerTxRow is a stored ledger transaction as the readers list it.
type LedgerTxRow struct {
	// ID is the transaction's row id (a UUIDv7).
	ID string
	// PostedAt is when it was written, on the engine clock.
	PostedAt time.Time
	// PeriodID is the paid period the money belongs to ("<subscription id>/<n>"), "" for none.
	PeriodID string
	// Tx is the transaction as posted, postings in order.
	Tx ledger.Transaction
}

// ledgerTxRowSQL selects transactions t (a row source named t) with their legs in order,
// gathered per transaction through the entries' primary key.
const ledgerTxRowSQL = `SELECT t.id::text, t.posted_at, coalesce(t.period_id, ''), t.key, t.ref_kind, t.ref_id,
	coalesce(t.reverses, ''), t.memo, t.at, e.accounts, e.sides, e.amounts, e.currencies
	FROM %s, LATERAL (SELECT array_agg(account ORDER BY seq) AS accounts, array_agg(side ORDER BY seq) AS sides,
		array_agg(amount ORDER BY seq) AS amounts, array_agg(currency ORDER BY seq) AS currencies
		FROM billing_ledger_entries WHERE tx_id = t.id) e`

// ledgerPageSQL is PageLedgerTransactions' statement: $1 from, $2 to, ($3, $4) the keyset
// to start after, $5 the limit.
var ledgerPageSQL = fmt.Sprintf(ledgerTxRowSQL, `(SELECT * FROM billing_ledger_transactions
	WHERE posted_at >= $1 AND posted_at < $2 AND (posted_at, id) > ($3, $4::uuid)
	ORDER BY posted_at, id LIMIT $5) t`) + ` ORDER BY t.posted_at, t.id`

func scanLedgerTxRow(row pgx.CollectableRow) (LedgerTxRow, error) {
	var out LedgerTxRow
	var kind string
	var accounts, sides, currencies []string
	var amounts []int64
	if err := row.Scan(&out.ID, &out.PostedAt, &out.PeriodID, &out.Tx.Key, &kind, &out.Tx.Ref.ID, &out.Tx.Reverses,
		&out.Tx.Memo, &out.Tx.At, &accounts, &sides, &amounts, &currencies); err != nil {
		return out, err
	}
	out.Tx.Ref.Kind = ledger.RefKind(kind)
	out.Tx.Postings = make([]ledger.Posting, len(accounts))
	for i := range accounts {
		out.Tx.Postings[i] = ledger.Posting{Account: accounts[i], Side: ledger.Side(sides[i]), Amount: amounts[i], Currency: currencies[i]}
	}
	return out, nil
}

// PageLedgerTransactions returns up to limit transactions posted in [from, to) after the
// keyset (afterPosted, afterID) in (posted_at, id) order, each with its legs. A zero
// afterPosted starts at from. Query plan: an index range scan of
// billing_ledger_transactions_posted_idx that stops after limit rows, and one primary-key
// range of billing_ledger_entries per transaction.
func PageLedgerTransactions(ctx context.Context, q Querier, from, to, afterPosted time.Time, afterID string, limit int) ([]LedgerTxRow, error) {
	if afterPosted.IsZero() || afterPosted.Before(from) {
		afterPosted, afterID = from, "00000000-0000-0000-0000-000000000000" // below every UUIDv7
	}
	rows, err := q.Query(ctx, ledgerPageSQL, from, to, afterPosted, afterID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLedgerTxRow)
}

// subscriptionLedgerSQL is SubscriptionLedgerTransactions' statement: $1 the subscription's
// ID. Two sets of transactions, disjoint (an unapplied payment's transactions belong to no
// period):
//   - those of its paid periods, by period_id "<id>/<n>" for each n of billing_periods: one
//     probe of billing_ledger_transactions_period_idx per period (the subscription's
//     periods come from the primary key of billing_periods);
//   - its unapplied payments (a charge no period took) and their refunds, by key
//     ("unapplied:<attempt>", "unapplied-refund:<unapplied payment>", the keys
//     bookUnapplied and unappliedRefunded post under): the subscription's attempts by their
//     (subscription_id, period, number) key, the unapplied payment of each by its unique
//     attempt_id, one probe of the transactions' key index per key.
//
// The ID is normalized through uuid, as the engine writes it into period_id.
var subscriptionLedgerSQL = fmt.Sprintf(ledgerTxRowSQL, `(
	SELECT * FROM billing_ledger_transactions WHERE period_id = ANY (ARRAY(
		SELECT $1::uuid::text || '/' || p.number FROM billing_periods p WHERE p.subscription_id = $1::uuid))
	UNION ALL
	SELECT * FROM billing_ledger_transactions WHERE key = ANY (ARRAY(
		SELECT k FROM billing_payment_attempts a JOIN billing_unapplied_payments u ON u.attempt_id = a.id,
			LATERAL (VALUES ('unapplied:' || a.id::text), ('unapplied-refund:' || u.id::text)) AS keys(k)
		WHERE a.subscription_id = $1::uuid))) t`) + ` ORDER BY t.posted_at, t.id`

// SubscriptionLedgerTransactions returns the ledger transactions of subscription id, each
// with its legs, by posted time then ID: those of its paid periods (charges, refunds,
// recognitions, and reversals posted for a period) and those of its unapplied payments
// (subscriptionLedgerSQL says how each is found). A subscription that does not exist has
// none: the caller checks that.
func SubscriptionLedgerTransactions(ctx context.Context, q Querier, id string) ([]LedgerTxRow, error) {
	rows, err := q.Query(ctx, subscriptionLedgerSQL, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLedgerTxRow)
}

// LedgerTransactionsByKeys returns the transactions posted under keys (those that exist),
// by posted time.
func LedgerTransactionsByKeys(ctx context.Context, q Querier, keys []string) ([]LedgerTxRow, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(ledgerTxRowSQL, `billing_ledger_transactions t`)+
		` WHERE t.key = ANY($1) ORDER BY t.posted_at, t.id`, keys)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLedgerTxRow)
}

// AuditAbout returns the audit entries of subject whose detail names value under key
// (detail->>key = value), in time order: the entries about one refund request or one
// charge attempt, which are logged under their subscription. It reads the subject's range
// of billing_audit_log_subject_idx and filters it.
func AuditAbout(ctx context.Context, q Querier, subject, key, value string) ([]AuditEntry, error) {
	rows, err := q.Query(ctx, `SELECT id, at, actor, action, subject, reason, detail
		FROM billing_audit_log WHERE subject = $1 AND detail->>$2 = $3 ORDER BY at, id`, subject, key, value)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[AuditEntry])
}

// UnappliedOfAttempt returns the id of the unapplied payment made of attempt id, or
// ErrNotFound when its money was applied (or it never succeeded).
func UnappliedOfAttempt(ctx context.Context, q Querier, attemptID string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id::text FROM billing_unapplied_payments WHERE attempt_id = $1`, attemptID).Scan(&id)
	return id, interpret(err)
}
