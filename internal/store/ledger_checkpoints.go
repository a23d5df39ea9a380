package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
// and, with all(S) = E{id <= S} and max_at >= the at of every entry up to S,
//
//	balance(t) = all(S) + E{id > S, at <= t}          for t >= max_at
//	all(S2)    = all(S1) + E{S1 < id <= S2}
//
// for T1 <= T2 and S1 <= S2 (a NULL id is below every S, and "id > S" never holds for it).
// Every term is a range scan of one of the two covering indexes (account, at) and
// (account, id) INCLUDE (at, …): a term that bounds both id and at ranges over id and tests
// at on the index tuple.

// ledgerCheckpoint is an account's latest checkpoint, as ledgerBalanceFrom starts from it.
type ledgerCheckpoint struct {
	// UptoID is the horizon S; nil when the account has no checkpoint (or when the sum
	// starts from nothing).
	UptoID *int64
	// At is the instant T; nil with UptoID.
	At *time.Time
	// Debits and Credits are the sums of the entries up to S at or before T; AllDebits and
	// AllCredits of every entry up to S, whose at are all at or before MaxAt.
	Debits, Credits       int64
	AllDebits, AllCredits int64
	MaxAt                 *time.Time
	// FirstAt is the instant of the account's first entry, read only when the balance asked
	// for is before At (nil otherwise).
	FirstAt *time.Time
}

// ledgerCheckpointSQL reads the latest checkpoint of account $1, and the instant of its
// first entry when $2 (the instant of the balance asked for) is before the checkpoint's.
const ledgerCheckpointSQL = `SELECT c.upto_id, c.at, c.debits, c.credits, c.all_debits, c.all_credits, c.max_at,
	CASE WHEN $2::timestamptz < c.at THEN (SELECT min(e.at) FROM billing_ledger_entries e WHERE e.account = $1) END
	FROM billing_ledger_checkpoints c WHERE c.account = $1 ORDER BY c.upto_id DESC LIMIT 1`

// startFrom returns cp when a balance at at should start from it: at is after its instant,
// or past the middle between the account's first entry and its instant (then the entries
// between at and the instant, which it subtracts, are likely fewer than those before at);
// otherwise none, and the balance sums the entries up to at. Both ways give the same
// numbers; only the rows read differ.
func (cp ledgerCheckpoint) startFrom(at time.Time) ledgerCheckpoint {
	if cp.UptoID == nil || !at.Before(*cp.At) {
		return cp
	}
	if cp.FirstAt != nil && !at.Before(cp.FirstAt.Add(cp.At.Sub(*cp.FirstAt)/2)) {
		return cp
	}
	return ledgerCheckpoint{}
}

// ledgerSumsAfterSQL sums the entries of account $1 numbered after $2 with at <= $3: what a
// balance at an instant at or after the checkpoint's max_at adds to its all_* sums.
const ledgerSumsAfterSQL = `SELECT
	coalesce(sum(e.amount) FILTER (WHERE e.side = 'debit' AND e.at <= $3::timestamptz), 0)::bigint,
	coalesce(sum(e.amount) FILTER (WHERE e.side = 'credit' AND e.at <= $3::timestamptz), 0)::bigint
	FROM billing_ledger_entries e WHERE e.account = $1 AND e.id > $2::bigint`

// ledgerSumsSQL sums, for account $1 from the checkpoint (upto_id $2, at $3; both NULL for
// none) to the instant $4, what the first equation at the top of this file adds to the
// checkpoint. The bounds are parameters, not read from the checkpoints table in the same
// statement, so that the planner sees them: the ranges after a recent horizon or instant
// are estimated from the index's actual end (a few rows), where bounds read inside the
// statement would be guessed at a third of the account, and the plan would look costly
// enough for PostgreSQL to compile it (JIT) at each call, some 100 ms. A NULL $2 makes the
// first branch empty and a NULL $3 reads as -infinity: the sum of the entries up to $4.
const ledgerSumsSQL = `SELECT coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0)::bigint,
	coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0)::bigint
	FROM (
		-- written after the horizon, at or before the checkpoint's instant (the instant is
		-- tested in the select list, so that the (account, id) range is the only way in)
		SELECT e.side, CASE WHEN e.at <= $3::timestamptz THEN e.amount ELSE 0 END AS amount
		FROM billing_ledger_entries e WHERE e.account = $1 AND e.id > $2::bigint
		UNION ALL
		-- after the checkpoint's instant, up to $4
		SELECT e.side, e.amount FROM billing_ledger_entries e
		WHERE e.account = $1 AND e.at > coalesce($3::timestamptz, '-infinity') AND e.at <= $4::timestamptz
		UNION ALL
		-- after $4, up to the checkpoint's instant: in the checkpoint, taken back out
		SELECT e.side, -e.amount FROM billing_ledger_entries e
		WHERE e.account = $1 AND e.at > $4::timestamptz AND e.at <= $3::timestamptz
	) l`

// ledgerBalanceFrom reads account's balance at at (nil: every entry) from cp (its
// startFrom), through q: from the all_* sums when at is at or after every entry up to the
// horizon, else from the sums at the checkpoint's instant.
func ledgerBalanceFrom(ctx context.Context, q Querier, account string, cp ledgerCheckpoint, at *time.Time) (debits, credits int64, err error) {
	if cp.UptoID != nil && (at == nil || !at.Before(*cp.MaxAt)) {
		err = q.QueryRow(ctx, ledgerSumsAfterSQL, account, cp.UptoID, infinityIfNil(at)).Scan(&debits, &credits)
		return cp.AllDebits + debits, cp.AllCredits + credits, err
	}
	err = q.QueryRow(ctx, ledgerSumsSQL, account, cp.UptoID, cp.At, infinityIfNil(at)).Scan(&debits, &credits)
	return cp.Debits + debits, cp.Credits + credits, err
}

// infinityIfNil is at as a timestamptz argument, +infinity for nil.
func infinityIfNil(at *time.Time) pgtype.Timestamptz {
	if at == nil {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: *at, Valid: true}
}

// LedgerHorizon is the first half of finding a stable horizon: the last entry number handed
// out (0 when none was), then a transaction id assigned after it was read (xmax), in two
// statements of their own (q must be the pool, not a transaction). Every transaction holding
// an entry number <= upto drew it after taking its xid (billing_ledger_next_entry_id), and
// drew it before upto was read, so its xid is below xmax. upto is stable once
// LedgerHorizonReached(xmax) is true.
//
// Trap: xmax must be a freshly assigned xid (pg_current_xact_id, committed at once), not a
// snapshot's xmax. A snapshot's xmax is the newest completed xid plus one, and its xmin
// leaves out running xids at or above it: a posting holding the newest xid would then be
// neither below xmax nor holding xmin back, and a checkpoint taken while it runs would
// cover its entry number without its amount, for good
// (TestLedgerCheckpointWaitsForThePostingWithTheNewestXid).
func LedgerHorizon(ctx context.Context, q Querier) (upto int64, xmax string, err error) {
	if err := q.QueryRow(ctx, `SELECT coalesce(pg_sequence_last_value('billing_ledger_entries_id_seq'), 0)`).Scan(&upto); err != nil {
		return 0, "", err
	}
	err = q.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xmax)
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
		coalesce(c.all_debits, 0) AS all_debits, coalesce(c.all_credits, 0) AS all_credits, c.max_at,
		greatest(c.at, $2::timestamptz) AS new_at
	FROM billing_ledger_accounts a LEFT JOIN LATERAL (
		SELECT upto_id, at, debits, credits, all_debits, all_credits, max_at FROM billing_ledger_checkpoints c
		WHERE c.account = a.code ORDER BY c.upto_id DESC LIMIT 1
	) c ON true
	WHERE CASE WHEN c.upto_id IS NULL
		-- (min, not EXISTS: the planner reads min from the at index, where an EXISTS may
		-- be planned as a sequential scan, all of it for an account never posted to)
		THEN (SELECT min(e.at) FROM billing_ledger_entries e WHERE e.account = a.code) IS NOT NULL
		ELSE c.upto_id < $1::bigint AND EXISTS (SELECT FROM billing_ledger_entries e
			WHERE e.account = a.code AND e.id > c.upto_id AND e.id <= $1::bigint) END
), ins AS (
	INSERT INTO billing_ledger_checkpoints (account, upto_id, at, debits, credits, all_debits, all_credits, max_at, made_at)
	SELECT p.code, $1::bigint, p.new_at,
		p.debits + coalesce(sum(d.at_t) FILTER (WHERE d.side = 'debit'), 0),
		p.credits + coalesce(sum(d.at_t) FILTER (WHERE d.side = 'credit'), 0),
		p.all_debits + coalesce(sum(d.every) FILTER (WHERE d.side = 'debit'), 0),
		p.all_credits + coalesce(sum(d.every) FILTER (WHERE d.side = 'credit'), 0),
		coalesce(greatest(p.max_at, max(d.at)), '-infinity'),
		$3::timestamptz
	FROM prev p LEFT JOIN LATERAL (
		-- at in (T1, T2], every id: into the sums at T (at_t)
		SELECT e.side, e.amount AS at_t, 0 AS every, NULL::timestamptz AS at
		FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.at > p.at AND e.at <= p.new_at
		UNION ALL
		-- numbered after the new horizon: back out of the sums at T (those in (T1, T2]), and,
		-- at the account's first checkpoint, out of the sums of every instant (every), as the
		-- next branch takes them all in. (Instants are tested in the select list, so that the
		-- (account, id) range is the only way in.)
		SELECT e.side, CASE WHEN e.at > p.at AND e.at <= p.new_at THEN -e.amount ELSE 0 END,
			CASE WHEN p.upto_id IS NULL THEN -e.amount ELSE 0 END, NULL
		FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.id > $1::bigint
		UNION ALL
		-- the account's first checkpoint: every entry, into the sums of every instant; max_at
		-- is then the latest at of all, an upper bound
		SELECT e.side, 0, e.amount, e.at FROM billing_ledger_entries e
		WHERE e.account = p.code AND p.upto_id IS NULL
		UNION ALL
		-- numbered in (S1, S2]: into the sums at T1 when at or before T1, and of every instant
		SELECT e.side, CASE WHEN e.at <= p.at THEN e.amount ELSE 0 END, e.amount, e.at
		FROM billing_ledger_entries e
		WHERE e.account = p.code AND e.id > p.upto_id AND e.id <= $1::bigint
	) d ON true
	GROUP BY p.code, p.new_at, p.debits, p.credits, p.all_debits, p.all_credits, p.max_at
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
//
// The statement runs with JIT off: its bounds come from the checkpoints it reads, so the
// planner guesses its ranges large, and would compile the plan at each run (some 300 ms
// measured, for a statement that reads the few thousand entries of one interval).
func InsertLedgerCheckpoints(ctx context.Context, db Beginner, upto int64, at, madeAt time.Time) (int64, error) {
	var n int64
	err := withSettings(ctx, db, `SET LOCAL jit = off`, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, insertLedgerCheckpointsSQL, upto, at, madeAt).Scan(&n)
	})
	return n, err
}
