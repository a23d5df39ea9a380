package store_test

import (
	"context"
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
