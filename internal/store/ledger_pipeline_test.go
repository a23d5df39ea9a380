package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
)

// A Pipeline holds the ledger transactions of a batch and writes them with one statement
// when it is sent: each with its legs, exactly as the statement of one transaction writes it;
// and when any of them exists already, the flush fails with ErrPipelineDiverged and the
// transaction writes none of them.
func TestPipelineWritesItsLedgerTransactionsTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	charge := func(key string, amount int64) ledger.Transaction {
		tx, err := ledger.Charge(key, "pay-"+key, "RUB", amount, at)
		require.NoError(t, err)
		return tx
	}
	count := func() (txs, entries int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM billing_ledger_transactions),
			(SELECT count(*) FROM billing_ledger_entries)`).Scan(&txs, &entries))
		return txs, entries
	}

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		for i, key := range []string{"a", "b", "c"} {
			inserted, err := store.InsertLedgerTransaction(ctx, p, uuid.NewString(), charge(key, int64(100*(i+1))), "fp-"+key, "sub/1", at)
			require.NoError(t, err)
			require.True(t, inserted, "a queued transaction answers new")
		}
		return p.Flush(ctx)
	})
	require.NoError(t, err)
	txs, entries := count()
	require.Equal(t, 3, txs)
	require.Equal(t, 6, entries, "two legs each")
	got, err := store.LedgerTransactionByKey(ctx, pool, "b")
	require.NoError(t, err)
	require.Equal(t, charge("b", 200).Postings, got.Tx.Postings, "the legs in order")
	require.Equal(t, "sub/1", got.PeriodID)
	require.Equal(t, "fp-b", got.Fingerprint)

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p := store.NewPipeline(tx)
		for _, key := range []string{"d", "b"} { // b exists
			_, err := store.InsertLedgerTransaction(ctx, p, uuid.NewString(), charge(key, 500), "fp-"+key, "", at)
			require.NoError(t, err)
		}
		return p.Flush(ctx)
	})
	require.ErrorIs(t, err, store.ErrPipelineDiverged)
	txs, entries = count()
	require.Equal(t, 3, txs, "nothing of the diverged batch")
	require.Equal(t, 6, entries)
}

// TestLedgerBalanceCheckReadsOnlyTheNewEntries: the balance trigger (migration 0020) refuses
// a statement whose entries leave a transaction unbalanced, in one statement or added to a
// transaction already posted, and accepts balanced ones; and it does not read the ledger: a
// posting of many transactions reads none of the entries table's rows (its transaction's own
// counts, pg_stat_xact_user_tables), however many there are (0005's check merge-joined the
// whole primary key, every batch).
func TestLedgerBalanceCheckReadsOnlyTheNewEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// post posts a charge for each of keys through a Pipeline, and returns how many rows of
	// billing_ledger_entries its transaction read (its own counts, pg_stat_xact_user_tables).
	post := func(keys ...string) (read int64, err error) {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			p := store.NewPipeline(tx)
			for _, key := range keys {
				t, err := ledger.Charge(key, "pay-"+key, "RUB", 100, at)
				if err != nil {
					return err
				}
				if _, err := store.InsertLedgerTransaction(ctx, p, uuid.NewString(), t, "fp-"+key, "", at); err != nil {
					return err
				}
			}
			if err := p.Flush(ctx); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
				FROM pg_stat_xact_user_tables WHERE relname = 'billing_ledger_entries'`).Scan(&read)
		})
		return read, err
	}
	var keys []string
	for i := range 2000 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	_, err := post(keys...)
	require.NoError(t, err)
	read, err := post("a", "b", "c", "d", "e", "f", "g", "h")
	require.NoError(t, err)
	require.Zero(t, read, "the check read the ledger's entries")

	var txID string
	require.NoError(t, pool.QueryRow(ctx, `SELECT id::text FROM billing_ledger_transactions WHERE key = 'a'`).Scan(&txID))
	for name, sql := range map[string]string{
		"unbalanced in one statement": `WITH t AS (INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
			VALUES (gen_random_uuid(), 'u1', 'fp', 'adjustment', 'x', '', now(), now()) RETURNING id)
			INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			SELECT t.id, s.seq, s.account, s.side, s.amount, 'RUB', now() FROM t,
			(VALUES (1::smallint, 'provider:RUB', 'debit', 100::bigint), (2::smallint, 'deferred:RUB', 'credit', 99::bigint)) s(seq, account, side, amount)`,
		"an entry added to a posted transaction": `INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			VALUES ('` + txID + `', 3, 'provider:RUB', 'debit', 1, 'RUB', now())`,
	} {
		_, err := pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "unbalanced", name)
	}
	_, err = pool.Exec(ctx, `INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
		VALUES ('`+txID+`', 3, 'provider:RUB', 'debit', 1, 'RUB', now()), ('`+txID+`', 4, 'deferred:RUB', 'credit', 1, 'RUB', now())`)
	require.NoError(t, err, "a balanced pair added keeps the transaction balanced")
}
