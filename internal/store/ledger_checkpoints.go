package store

import (
	"context"
	"time"
)

// Balance checkpoints (migration 0016). A checkpoint (account, upto_id S, at T) holds the
// turnover of the account's entries with id <= S (or no id: written before 0016) and
// at <= T. It is written only for a stable horizon S (LedgerHorizon, LedgerHorizonReached):
// every entry numbered <= S was committed or rolled back before the checkpoint was summed,
// so the set it sums never changes afterwards. The equations the statements below rest on,
// for an account, with E{…} the sum of its entries matching …:
//
//	balance(t) = E{at <= t}
//	           = cp(S, T) + E{id > S, at <= T} + E{T < at <= t} - E{t < at <= T}
//	cp(S2, T2) = cp(S1, T1) + E{T1 < at <= T2} - E{id > S2, T1 < at <= T2} + E{S1 < id <= S2, at <= T1}
//
// for T1 <= T2 and S1 <= S2 (a NULL id is below every S, and "id > S" never holds for it).
// Every term is a range scan of one of the two covering indexes (account, at) and
// (account, id); none needs an entry's id and at together except through the (account, id)
// index, which includes at.

// ledgerBalanceSQL returns a subquery, for FROM or LATERAL, of one row (debits, credits):
// the turnover of the entries of account (an SQL expression) with at <= at (an SQL
// expression; 'infinity' for every entry). It starts from the account's latest checkpoint
// when there is one and at is after its instant T, or past the middle between the account's
// first entry and T (then it subtracts the entries between at and T, fewer than those before
// at); otherwise from nothing, summing the entries up to at as before checkpoints existed.
// Both ways give the same numbers; only the rows read differ.
func ledgerBalanceSQL(account, at string) string {
	return `(SELECT b.debits + coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0)::bigint AS debits,
		b.credits + coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0)::bigint AS credits
	FROM (
		SELECT cp.upto_id, coalesce(cp.at, '-infinity') AS at,
			coalesce(cp.debits, 0) AS debits, coalesce(cp.credits, 0) AS credits
		FROM (SELECT) one LEFT JOIN LATERAL (
			SELECT c.upto_id, c.at, c.debits, c.credits FROM billing_ledger_checkpoints c
			WHERE c.account = ` + account + ` ORDER BY c.upto_id DESC LIMIT 1
		) cp ON ` + at + ` >= cp.at OR ` + at + ` >= (
			SELECT min(f.at) + (cp.at - min(f.at)) / 2 FROM billing_ledger_entries f WHERE f.account = ` + account + `)
	) b LEFT JOIN LATERAL (
		-- written after the checkpoint's horizon, at or before its instant
		SELECT e.side, e.amount FROM billing_ledger_entries e
		WHERE e.account = ` + account + ` AND e.id > b.upto_id AND e.at <= b.at
		UNION ALL
		-- after the checkpoint's instant, up to at
		SELECT e.side, e.amount FROM billing_ledger_entries e
		WHERE e.account = ` + account + ` AND e.at > b.at AND e.at <= ` + at + `
		UNION ALL
		-- after at, up to the checkpoint's instant: in the checkpoint, taken back out
		SELECT e.side, -e.amount FROM billing_ledger_entries e
		WHERE e.account = ` + account + ` AND e.at > ` + at + ` AND e.at <= b.at
	) l ON true
	GROUP BY b.debits, b.credits)`
}

// LedgerHorizon is the first half of finding a stable horizon: the last entry number handed
// out (0 when none was), then the xmax of a snapshot taken after it was read, in two
// statements of their own (q must be the pool, not a transaction). Every transaction holding
// an entry number <= upto drew it after taking its xid (billing_ledger_next_entry_id), and
// drew it before upto was read, so its xid is below xmax. upto is stable once
// LedgerHorizonReached(xmax) is true.
func LedgerHorizon(ctx context.Context, q Querier) (upto int64, xmax string, err error) {
	if err := q.QueryRow(ctx, `SELECT coalesce(pg_sequence_last_value('billing_ledger_entries_id_seq'), 0)`).Scan(&upto); err != nil {
		return 0, "", err
	}
	err = q.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`).Scan(&xmax)
	return upto, xmax, err
}

// LedgerHorizonReached reports whether every transaction with an xid below xmax has ended:
// the xmin of a new snapshot is at or past it. q must be the pool, not a transaction (whose
// own xid would hold xmin back).
func LedgerHorizonReached(ctx context.Context, q Querier, xmax string) (bool, error) {
	var reached bool
	err := q.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8`, xmax).Scan(&reached)
	return reached, err
}

// insertLedgerCheckpointsSQL writes, in one statement (one snapshot), a checkpoint up to the
// horizon $1 at the instant greatest($2, the previous checkpoint's) for every account with
// entries the account's latest checkpoint does not cover (numbered in (S1, $1], or any entry
// when it has none), from that checkpoint by the second equation at the top of this file.
// Two runs at once write checkpoints that are each right; ON CONFLICT keeps the first of
// two for the same horizon.
const insertLedgerCheckpointsSQL = `
WITH prev AS (
	SELECT a.code, c.upto_id, coalesce(c.at, '-infinity') AS at,
		coalesce(c.debits, 0) AS debits, coalesce(c.credits, 0) AS credits,
		greatest(c.at, $2::timestamptz) AS new_at
	FROM billing_ledger_accounts a LEFT JOIN LATERAL (
		SELECT upto_id, at, debits, credits FROM billing_ledger_checkpoints c
		WHERE c.account = a.code ORDER BY c.upto_id DESC LIMIT 1
	) c ON true
	WHERE CASE WHEN c.upto_id IS NULL
		THEN EXISTS (SELECT FROM billing_ledger_entries e WHERE e.account = a.code)
		ELSE c.upto_id < $1::bigint AND EXISTS (SELECT FROM billing_ledger_entries e
			WHERE e.account = a.code AND e.id > c.upto_id AND e.id <= $1::bigint) END
), ins AS (
	INSERT INTO billing_ledger_checkpoints (account, upto_id, at, debits, credits, made_at)
	SELECT p.code, $1::bigint, p.new_at,
		p.debits + coalesce(sum(d.amount) FILTER (WHERE d.side = 'debit'), 0),
		p.credits + coalesce(sum(d.amount) FILTER (WHERE d.side = 'credit'), 0),
		$3::timestamptz
	FROM prev p LEFT JOIN LATERAL (
		SELECT e.side, e.amount FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.at > p.at AND e.at <= p.new_at
		UNION ALL
		SELECT e.side, -e.amount FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.id > $1::bigint AND e.at > p.at AND e.at <= p.new_at
		UNION ALL
		SELECT e.side, e.amount FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.id > p.upto_id AND e.id <= $1::bigint AND e.at <= p.at
	) d ON true
	GROUP BY p.code, p.new_at, p.debits, p.credits
	ON CONFLICT (account, upto_id) DO NOTHING
	RETURNING account
), superseded AS (
	DELETE FROM billing_ledger_checkpoints c USING ins
	WHERE c.account = ins.account AND c.upto_id < $1::bigint
)
SELECT count(*) FROM ins`

// InsertLedgerCheckpoints writes a checkpoint up to the stable horizon upto (see
// LedgerHorizon) at the instant at (or the account's previous checkpoint's instant, if
// later) for every account with entries its latest checkpoint does not cover, deletes the
// checkpoints they supersede, and returns how many it wrote. Call it only once
// LedgerHorizonReached is true for upto's xmax: a checkpoint past an unstable horizon would
// miss, forever, an entry still in flight below it.
func InsertLedgerCheckpoints(ctx context.Context, q Querier, upto int64, at, madeAt time.Time) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, insertLedgerCheckpointsSQL, upto, at, madeAt).Scan(&n)
	return n, err
}
