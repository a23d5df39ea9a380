package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smm-gpt/billing/ledger"
)

// The ledger's statements (tables of migrations 0005 and 0016). Balances are never stored
// per posting: they are an account's latest checkpoint (ledger_checkpoints.go, written off
// the posting path by a periodic job) plus sums over billing_ledger_entries through its
// covering indexes, so posting takes no row lock on a hot account and concurrent postings
// never queue behind each other.

// ErrLedgerAlreadyReversed is returned by InsertLedgerTransaction when another transaction
// reverses the same original (the unique reverses column refused the second one).
var ErrLedgerAlreadyReversed = errors.New("ledger transaction already reversed")

// ErrLedgerUnbalanced is returned when the database's own balance check refused the entries
// (billing_ledger_check_balanced): code that skipped ledger.Validate.
var ErrLedgerUnbalanced = errors.New("ledger transaction unbalanced (refused by the database)")

// LedgerTx is a stored ledger transaction with its fingerprint and the period it belongs to.
type LedgerTx struct {
	// Tx is the transaction as posted, postings in the order given.
	Tx ledger.Transaction
	// Fingerprint is ledger.Fingerprint of Tx, computed when it was posted.
	Fingerprint string
	// PeriodID is the paid period the money belongs to, "" for none.
	PeriodID string
	// ReversedBy is the key of the transaction reversing this one, "" while none does.
	ReversedBy string
}

// insertLedgerSQL writes one transaction in one statement, so that it is atomic on its own
// (the engine's standalone Post needs no explicit transaction) and costs one round trip:
//   - acc: the accounts of the standard chart in the currencies posted, when missing (on
//     demand: a new currency needs no migration). The rows come sorted, so two sessions
//     creating the same accounts take their insert locks in the same order;
//   - t: the transaction row, unless its key exists (a concurrent post of the same key
//     waits on the unique index, then finds it);
//   - e: the legs, only when t was inserted. The foreign keys and the statement trigger
//     billing_ledger_entries_balanced run at the end of the statement and see acc and t.
//
// The result is true when the transaction was inserted, false when the key existed.
const insertLedgerSQL = `
WITH acc AS (
    INSERT INTO billing_ledger_accounts (code, type, currency, contra)
    SELECT * FROM unnest($11::text[], $12::text[], $13::text[], $14::boolean[])
    ON CONFLICT DO NOTHING
), t AS (
    INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, reverses, period_id, memo, at, posted_at)
    VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8, $9, $10)
    ON CONFLICT (key) DO NOTHING
    RETURNING id, at
), e AS (
    INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
    SELECT t.id, l.seq, l.account, l.side, l.amount, l.currency, t.at
    FROM t, unnest($15::text[], $16::text[], $17::bigint[], $18::text[]) WITH ORDINALITY AS l(account, side, amount, currency, seq)
)
SELECT count(*) = 1 FROM t`

// InsertLedgerTransaction writes t (already validated by ledger.Validate on the standard
// chart) with its fingerprint, the paid period it belongs to ("" for none) and a new id,
// creating the chart's accounts of its currencies when missing. It returns false and writes
// nothing when t's key exists: the caller reads the stored one with LedgerTransactionByKey.
// A second reversal of one original is ErrLedgerAlreadyReversed; entries the database finds
// unbalanced are ErrLedgerUnbalanced.
//
// q may be the pool (the statement is its own transaction) or the caller's transaction. An
// error inside a transaction aborts it: the caller must roll back.
func InsertLedgerTransaction(ctx context.Context, q Querier, id string, t ledger.Transaction, fingerprint, periodID string, postedAt time.Time) (bool, error) {
	if lq, ok := q.(ledgerQueuer); ok {
		// Queued with the other postings of the pipeline, all written by one statement when
		// it is sent (insertLedgerManySQL): the caller is told the transaction is new, and
		// the flush fails if any of them was not, or if the database refused one;
		// the single-statement path below gives the precise answer when the caller runs it
		// again alone.
		lq.queueLedger(queuedLedgerTx{id: id, t: t, fingerprint: fingerprint, periodID: periodID, postedAt: postedAt})
		return true, nil
	}
	codes, types, currencies, contras := chartColumns(t.Postings)
	n := len(t.Postings)
	accounts, sides, legCurrencies := make([]string, n), make([]string, n), make([]string, n)
	amounts := make([]int64, n)
	for i, p := range t.Postings {
		accounts[i], sides[i], amounts[i], legCurrencies[i] = p.Account, string(p.Side), p.Amount, p.Currency
	}
	args := []any{id, t.Key, fingerprint, string(t.Ref.Kind), t.Ref.ID, t.Reverses, periodID, t.Memo, t.At, postedAt,
		codes, types, currencies, contras,
		accounts, sides, amounts, legCurrencies}
	var inserted bool
	err := q.QueryRow(ctx, insertLedgerSQL, args...).Scan(&inserted)
	var pgErr *pgconn.PgError
	switch {
	case IsUniqueViolation(err, "billing_ledger_transactions_reverses_key"):
		return false, ErrLedgerAlreadyReversed
	case errors.As(err, &pgErr) && pgErr.ConstraintName == "billing_ledger_entries_balanced":
		return false, fmt.Errorf("%w: %s", ErrLedgerUnbalanced, pgErr.Message)
	}
	return inserted, err
}

// queuedLedgerTx is a ledger transaction a Pipeline holds until it is sent.
type queuedLedgerTx struct {
	id, fingerprint, periodID string
	t                         ledger.Transaction
	postedAt                  time.Time
}

// ledgerQueuer is implemented by a Pipeline: InsertLedgerTransaction hands it the
// transaction, and the pipeline writes all it holds with one statement when it is sent.
type ledgerQueuer interface {
	queueLedger(queuedLedgerTx)
}

// insertLedgerManySQL is insertLedgerSQL for many transactions at once ($1–$4 the chart's
// accounts of their currencies; $5–$14 one element per transaction; $15–$20 one per leg,
// naming its transaction by id): one statement, so the chart's accounts are inserted (or
// found) once, and the balance trigger runs once, for a batch's postings. It returns how
// many transactions it inserted: all, or the pipeline diverged.
const insertLedgerManySQL = `
WITH acc AS (
    INSERT INTO billing_ledger_accounts (code, type, currency, contra)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[])
    ON CONFLICT DO NOTHING
), t AS (
    INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, reverses, period_id, memo, at, posted_at)
    SELECT x.id, x.key, x.fp, x.ref_kind, x.ref_id, NULLIF(x.reverses, ''), NULLIF(x.period_id, ''), x.memo, x.at, x.posted_at
    FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::timestamptz[], $14::timestamptz[]) AS x(id, key, fp, ref_kind, ref_id, reverses, period_id, memo, at, posted_at)
    ON CONFLICT (key) DO NOTHING
    RETURNING id, at
), e AS (
    INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
    SELECT t.id, l.seq, l.account, l.side, l.amount, l.currency, t.at
    FROM t JOIN unnest($15::uuid[], $16::smallint[], $17::text[], $18::text[], $19::bigint[], $20::text[])
        AS l(tx_id, seq, account, side, amount, currency) ON l.tx_id = t.id
)
SELECT count(*) FROM t`

// queueLedgerMany queues on b the statement that writes txs (insertLedgerManySQL), whose
// result fails the flush with ErrPipelineDiverged unless it inserted every one of them.
func queueLedgerMany(b *pgx.Batch, txs []queuedLedgerTx) {
	var all []ledger.Posting
	n := len(txs)
	ids, keys, fps, kinds, refs, reverses, periods, memos := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats, posted := make([]time.Time, n), make([]time.Time, n)
	var legTx, accounts, sides, legCurrencies []string
	var seqs []int16
	var amounts []int64
	for i, q := range txs {
		t := q.t
		ids[i], keys[i], fps[i], kinds[i], refs[i], reverses[i], periods[i], memos[i] = q.id, t.Key, q.fingerprint,
			string(t.Ref.Kind), t.Ref.ID, t.Reverses, q.periodID, t.Memo
		ats[i], posted[i] = t.At, q.postedAt
		for j, p := range t.Postings {
			all = append(all, p)
			legTx, seqs, accounts, sides = append(legTx, q.id), append(seqs, int16(j+1)), append(accounts, p.Account), append(sides, string(p.Side))
			amounts, legCurrencies = append(amounts, p.Amount), append(legCurrencies, p.Currency)
		}
	}
	codes, types, currencies, contras := chartColumns(all)
	b.Queue(insertLedgerManySQL, codes, types, currencies, contras, ids, keys, fps, kinds, refs, reverses, periods, memos, ats, posted,
		legTx, seqs, accounts, sides, amounts, legCurrencies).QueryRow(func(row pgx.Row) error {
		var inserted int
		if err := row.Scan(&inserted); err != nil {
			return err
		}
		if inserted != n {
			return fmt.Errorf("%w: %d of %d ledger transactions were new", ErrPipelineDiverged, inserted, n)
		}
		return nil
	})
}

// chartColumns returns the chart's accounts of the currencies of postings as the columns
// the posting statements insert them from (code, type, currency, contra), ON CONFLICT DO
// NOTHING.
func chartColumns(postings []ledger.Posting) (codes, types, currencies []string, contras []bool) {
	for _, c := range ledgerCurrencies(postings) {
		for _, a := range ledger.ChartFor(c) {
			codes, types, currencies, contras = append(codes, a.Code), append(types, string(a.Type)), append(currencies, a.Currency), append(contras, a.Contra)
		}
	}
	return codes, types, currencies, contras
}

// ledgerCurrencies returns the currencies of postings, sorted, each once.
func ledgerCurrencies(postings []ledger.Posting) []string {
	var out []string
	for _, p := range postings {
		if !slices.Contains(out, p.Currency) {
			out = append(out, p.Currency)
		}
	}
	slices.Sort(out)
	return out
}

// ledgerTxColumns select a transaction with its legs in order and the key of its reversal.
const ledgerTxColumns = `t.key, t.fingerprint, t.ref_kind, t.ref_id, coalesce(t.reverses, ''), coalesce(t.period_id, ''),
	t.memo, t.at,
	coalesce((SELECT r.key FROM billing_ledger_transactions r WHERE r.reverses = t.key), ''),
	array(SELECT e.account FROM billing_ledger_entries e WHERE e.tx_id = t.id ORDER BY e.seq),
	array(SELECT e.side FROM billing_ledger_entries e WHERE e.tx_id = t.id ORDER BY e.seq),
	array(SELECT e.amount FROM billing_ledger_entries e WHERE e.tx_id = t.id ORDER BY e.seq),
	array(SELECT e.currency FROM billing_ledger_entries e WHERE e.tx_id = t.id ORDER BY e.seq)`

// LedgerTransactionByKey reads the transaction posted under key, or ErrNotFound.
func LedgerTransactionByKey(ctx context.Context, q Querier, key string) (LedgerTx, error) {
	var out LedgerTx
	var kind string
	var accounts, sides, currencies []string
	var amounts []int64
	err := q.QueryRow(ctx, `SELECT `+ledgerTxColumns+` FROM billing_ledger_transactions t WHERE t.key = $1`, key).Scan(
		&out.Tx.Key, &out.Fingerprint, &kind, &out.Tx.Ref.ID, &out.Tx.Reverses, &out.PeriodID,
		&out.Tx.Memo, &out.Tx.At, &out.ReversedBy, &accounts, &sides, &amounts, &currencies)
	if err != nil {
		return out, interpret(err)
	}
	out.Tx.Ref.Kind = ledger.RefKind(kind)
	out.Tx.Postings = make([]ledger.Posting, len(accounts))
	for i := range accounts {
		out.Tx.Postings[i] = ledger.Posting{Account: accounts[i], Side: ledger.Side(sides[i]), Amount: amounts[i], Currency: currencies[i]}
	}
	return out, nil
}

// LedgerBalance returns the debit and credit turnover of account over the transactions at or
// before at, from the account's latest checkpoint plus the entries around it
// (ledger_checkpoints.go), in two statements: the same numbers as LedgerBalanceFromEntries,
// at a cost that does not grow with the ledger when at is after the checkpoint. A
// checkpoint sums a set of entries that never changes, so reading it in one snapshot and
// the entries in a later one gives the balance of the later one.
func LedgerBalance(ctx context.Context, q Querier, account string, at time.Time) (debits, credits int64, err error) {
	var cp ledgerCheckpoint
	err = q.QueryRow(ctx, ledgerCheckpointSQL, account, at).Scan(&cp.UptoID, &cp.At, &cp.Debits, &cp.Credits, &cp.AllDebits, &cp.AllCredits, &cp.MaxAt, &cp.FirstAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, err
	}
	return ledgerBalanceFrom(ctx, q, account, cp.startFrom(at), &at)
}

// LedgerBalanceFromEntries is LedgerBalance summing every entry of account up to at, without
// the checkpoints: an index-only scan of the account's range of
// billing_ledger_entries_account_idx, whose cost grows with the entries. Tests compare the
// two.
func LedgerBalanceFromEntries(ctx context.Context, q Querier, account string, at time.Time) (debits, credits int64, err error) {
	err = q.QueryRow(ctx, `SELECT
		coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0)::bigint,
		coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0)::bigint
		FROM billing_ledger_entries WHERE account = $1 AND at <= $2`, account, at).Scan(&debits, &credits)
	return debits, credits, err
}

// LedgerEntry is one leg as stored, with the transaction it belongs to.
type LedgerEntry struct {
	Key      string
	RefKind  string
	RefID    string
	Account  string
	Side     string
	Amount   int64
	Currency string
	At       time.Time
}

// LedgerEntries returns every entry of account, oldest first (by the transaction's at, then
// in posting order).
func LedgerEntries(ctx context.Context, q Querier, account string) ([]LedgerEntry, error) {
	rows, err := q.Query(ctx, `SELECT t.key, t.ref_kind, t.ref_id, e.account, e.side, e.amount, e.currency, e.at
		FROM billing_ledger_entries e JOIN billing_ledger_transactions t ON t.id = e.tx_id
		WHERE e.account = $1 ORDER BY e.at, e.tx_id, e.seq`, account)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[LedgerEntry])
}

// LedgerTrialBalance returns the turnover of every account posted to, ordered by code, with
// the account as the accounts table holds it; all from one snapshot (a read-only repeatable
// read transaction), so it sums to zero per currency whatever is being posted meanwhile.
// Each account's turnover is its latest checkpoint plus the entries after it, the accounts'
// sums sent in one batch (one round trip). An account posted to has debits or credits
// (amounts are > 0); one never posted to is left out.
func LedgerTrialBalance(ctx context.Context, db interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}) (ledger.TrialBalance, error) {
	out := ledger.TrialBalance{} // not nil when empty, as before checkpoints
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT a.code, a.type, a.currency, a.contra, c.upto_id, c.at,
				coalesce(c.debits, 0), coalesce(c.credits, 0), coalesce(c.all_debits, 0), coalesce(c.all_credits, 0), c.max_at
			FROM billing_ledger_accounts a LEFT JOIN LATERAL (
				SELECT upto_id, at, debits, credits, all_debits, all_credits, max_at FROM billing_ledger_checkpoints c
				WHERE c.account = a.code ORDER BY c.upto_id DESC LIMIT 1) c ON true
			ORDER BY a.code`)
		if err != nil {
			return err
		}
		type start struct {
			account ledger.Account
			cp      ledgerCheckpoint
		}
		starts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (start, error) {
			var s start
			var typ string
			err := row.Scan(&s.account.Code, &typ, &s.account.Currency, &s.account.Contra,
				&s.cp.UptoID, &s.cp.At, &s.cp.Debits, &s.cp.Credits, &s.cp.AllDebits, &s.cp.AllCredits, &s.cp.MaxAt)
			s.account.Type = ledger.AccountType(typ)
			return s, err
		})
		if err != nil {
			return err
		}
		// An account with a checkpoint: its all_* sums plus the entries numbered after it
		// (every at is at or before +infinity); one without: every entry.
		var batch pgx.Batch
		for _, s := range starts {
			if s.cp.UptoID != nil {
				batch.Queue(ledgerSumsAfterSQL, s.account.Code, s.cp.UptoID, infinityIfNil(nil))
			} else {
				batch.Queue(ledgerSumsSQL, s.account.Code, nil, nil, infinityIfNil(nil))
			}
		}
		results := tx.SendBatch(ctx, &batch)
		for _, s := range starts {
			b := ledger.Balance{Account: s.account}
			if err := results.QueryRow().Scan(&b.Debits, &b.Credits); err != nil {
				_ = results.Close()
				return err
			}
			b.Debits += s.cp.AllDebits
			b.Credits += s.cp.AllCredits
			if b.Debits > 0 || b.Credits > 0 {
				out = append(out, b)
			}
		}
		return results.Close()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LedgerTrialBalanceFromEntries is LedgerTrialBalance summing every entry, without the
// checkpoints. Tests compare the two.
func LedgerTrialBalanceFromEntries(ctx context.Context, q Querier) (ledger.TrialBalance, error) {
	return collectTrialBalance(q.Query(ctx, `SELECT a.code, a.type, a.currency, a.contra,
		coalesce(sum(e.amount) FILTER (WHERE e.side = 'debit'), 0)::bigint,
		coalesce(sum(e.amount) FILTER (WHERE e.side = 'credit'), 0)::bigint
		FROM billing_ledger_entries e JOIN billing_ledger_accounts a ON a.code = e.account
		GROUP BY a.code ORDER BY a.code`))
}

func collectTrialBalance(rows pgx.Rows, err error) (ledger.TrialBalance, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledger.Balance, error) {
		var b ledger.Balance
		var typ string
		err := row.Scan(&b.Account.Code, &typ, &b.Account.Currency, &b.Account.Contra, &b.Debits, &b.Credits)
		b.Account.Type = ledger.AccountType(typ)
		return b, err
	})
}

// LedgerPeriodSum is the turnover of one account in the transactions of one kind that
// belong to one paid period.
type LedgerPeriodSum struct {
	RefKind  string
	Account  string
	Currency string
	Debits   int64
	Credits  int64
	// Transactions counts the transactions summed.
	Transactions int64
}

// LedgerPeriodSums returns, per reference kind and account, what was posted for the paid
// period periodID (the transactions whose period_id it is).
func LedgerPeriodSums(ctx context.Context, q Querier, periodID string) ([]LedgerPeriodSum, error) {
	rows, err := q.Query(ctx, `SELECT t.ref_kind, e.account, e.currency,
		coalesce(sum(e.amount) FILTER (WHERE e.side = 'debit'), 0)::bigint,
		coalesce(sum(e.amount) FILTER (WHERE e.side = 'credit'), 0)::bigint,
		count(DISTINCT t.id)
		FROM billing_ledger_transactions t JOIN billing_ledger_entries e ON e.tx_id = t.id
		WHERE t.period_id = $1
		GROUP BY t.ref_kind, e.account, e.currency ORDER BY t.ref_kind, e.account`, periodID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[LedgerPeriodSum])
}

// LockLedgerPeriod takes a transaction-scoped advisory lock on the ledger of a paid period:
// the engine's commands that decide an amount from what the period has posted so far
// (recognition, refunds) take it, so that two of them never decide on the same sums.
func LockLedgerPeriod(ctx context.Context, tx pgx.Tx, periodID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('billing_ledger_period:' || $1, 0))`, periodID)
	return err
}

// RecognitionPeriod is what revenue recognition needs to know of a paid period.
type RecognitionPeriod struct {
	Start, End time.Time
	// ExhaustedAt is when a hard limit was used up (TERMS 3.1); nil when it was not.
	ExhaustedAt *time.Time
	// Location is the subscription's IANA zone name ("" means the default).
	Location string
	// Status and CurrentPeriod are the subscription's; EndedAt is when it reached a final
	// status, nil before.
	Status        string
	CurrentPeriod *int
	EndedAt       *time.Time
}

// GetRecognitionPeriod reads period number of subscription subID with its subscription's
// state, or ErrNotFound.
func GetRecognitionPeriod(ctx context.Context, q Querier, subID string, number int) (RecognitionPeriod, error) {
	var p RecognitionPeriod
	err := q.QueryRow(ctx, `SELECT p.start_at, p.end_at, p.exhausted_at, s.location, s.status, s.current_period, s.ended_at
		FROM billing_periods p JOIN billing_subscriptions s ON s.id = p.subscription_id
		WHERE p.subscription_id = $1 AND p.number = $2`, subID, number).
		Scan(&p.Start, &p.End, &p.ExhaustedAt, &p.Location, &p.Status, &p.CurrentPeriod, &p.EndedAt)
	return p, interpret(err)
}

// LedgerRowCounts returns how many accounts, transactions and entries are stored: for
// tests that check that refused input wrote nothing.
func LedgerRowCounts(ctx context.Context, q Querier) (accounts, transactions, entries int64, err error) {
	err = q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM billing_ledger_accounts),
		(SELECT count(*) FROM billing_ledger_transactions),
		(SELECT count(*) FROM billing_ledger_entries)`).Scan(&accounts, &transactions, &entries)
	return accounts, transactions, entries, err
}

// LedgerRoleBucketSum is the turnover of the accounts of one role in one currency over one
// bucket of a range of instants (LedgerBucketSums).
type LedgerRoleBucketSum struct {
	// Bucket is the 1-based index of the bucket: bounds[Bucket-1] ≤ at < bounds[Bucket].
	Bucket   int
	Role     string
	Currency string
	Debits   int64
	Credits  int64
}

// ledgerBucketSumsSQL is LedgerBucketSums' statement: $1 the roles, $2 the bounds (sorted,
// at least two). Each account of a role (a few rows of billing_ledger_accounts) is one
// range of billing_ledger_entries_account_idx, (account, at) INCLUDE (side, amount), from
// the first bound to the last; width_bucket puts each entry in its bucket.
const ledgerBucketSumsSQL = `SELECT width_bucket(e.at, $2::timestamptz[]), split_part(a.code, ':', 1), a.currency,
	coalesce(sum(e.amount) FILTER (WHERE e.side = 'debit'), 0)::bigint,
	coalesce(sum(e.amount) FILTER (WHERE e.side = 'credit'), 0)::bigint
	FROM billing_ledger_accounts a
	JOIN billing_ledger_entries e ON e.account = a.code
		AND e.at >= ($2::timestamptz[])[1] AND e.at < ($2::timestamptz[])[array_length($2::timestamptz[], 1)]
	WHERE split_part(a.code, ':', 1) = ANY ($1::text[])
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// LedgerBucketSums returns the debits and credits posted to the accounts of roles (chart
// roles: "revenue", "refunded_revenue"), per currency and per bucket of instants: bucket i
// holds the entries with bounds[i-1] ≤ at < bounds[i] (1-based), so the entries of
// [bounds[0], bounds[len-1]) are summed; a (bucket, role, currency) nothing was posted to
// is left out. bounds must be sorted, with at least two. Its cost is one index range per
// account over the range: it grows with the entries of the range.
func LedgerBucketSums(ctx context.Context, q Querier, roles []string, bounds []time.Time) ([]LedgerRoleBucketSum, error) {
	rows, err := q.Query(ctx, ledgerBucketSumsSQL, roles, bounds)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[LedgerRoleBucketSum])
}
