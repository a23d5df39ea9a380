package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
)

// TestReaderPagesAreIndexRangeScans checks the query plans of the keyset pages (migration
// 0012) on tables with enough rows, analyzed, for the planner to choose honestly: each page
// is an index scan in the keyset's order, with no sort and no sequential scan of the table.
func TestReaderPagesAreIndexRangeScans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	_, err := pool.Exec(ctx, `
		INSERT INTO billing_tariffs (code, name, status, created_at) VALUES ('pro', 'pro', 'active', now());
		INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, checkout, created_at, updated_at)
		SELECT gen_random_uuid(), 'c' || (i % 2000), 'pro',
			(ARRAY['pending','active','exhausted','past_due','ended','refunded','suspended','terminated'])[1 + i % 8],
			true, 'Europe/Moscow', '{}', now(), now()
		FROM generate_series(1, 20000) i;
		INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, checkout, created_at, updated_at)
		SELECT gen_random_uuid(), 'big', 'pro', 'active', true, 'Europe/Moscow', '{}', now(), now()
		FROM generate_series(1, 5000) i;
		INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
		SELECT gen_random_uuid(), 'k' || i, '', 'adjustment', 'r' || i, '', now(), '2026-01-01'::timestamptz + i * interval '1 minute'
		FROM generate_series(1, 20000) i;
		ANALYZE billing_subscriptions; ANALYZE billing_ledger_transactions;`)
	require.NoError(t, err)

	plan := func(sql string, args ...any) string { return explain(t, pool, sql, args...) }
	for _, tc := range []struct {
		name  string
		p     store.SubscriptionPageParams
		index string
		// sorts says a sort is fine: one customer's few rows, which the planner may read
		// by either customer index and sort (10 rows here); with many rows it walks
		// (customer_id, id) in order.
		sorts bool
	}{
		{"by status", store.SubscriptionPageParams{Status: "active", Limit: 101}, "billing_subscriptions_status_id_idx", false},
		{"by status after a cursor", store.SubscriptionPageParams{Status: "active", After: "80000000-0000-0000-0000-000000000000", Limit: 101}, "billing_subscriptions_status_id_idx", false},
		{"by customer", store.SubscriptionPageParams{CustomerID: "c7", Limit: 101}, "billing_subscriptions_customer_", true},
		{"by customer and status", store.SubscriptionPageParams{CustomerID: "c7", Status: "active", Limit: 101}, "billing_subscriptions_customer_", true},
		{"by a big customer", store.SubscriptionPageParams{CustomerID: "big", Limit: 101}, "billing_subscriptions_customer_id_idx", false},
		{"no filter", store.SubscriptionPageParams{Limit: 101}, "billing_subscriptions_pkey", false},
	} {
		sql, args := store.SubscriptionPageSQL(tc.p)
		got := plan(sql, args...)
		require.Contains(t, got, "Index Scan", "%s:\n%s", tc.name, got)
		require.Contains(t, got, tc.index, "%s:\n%s", tc.name, got)
		if !tc.sorts {
			require.NotContains(t, got, "Sort", "%s:\n%s", tc.name, got)
		}
		require.NotContains(t, got, "Seq Scan", "%s:\n%s", tc.name, got)
		t.Logf("%s:\n%s", tc.name, got)
	}

	from := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	got := plan(store.LedgerPageSQL, from, from.AddDate(0, 0, 7), from, "00000000-0000-0000-0000-000000000000", 501)
	require.Contains(t, got, "Index Scan using billing_ledger_transactions_posted_idx", got)
	require.NotContains(t, got, "Seq Scan on billing_ledger_transactions", got)
	t.Logf("ledger page:\n%s", got)
}

// TestSubscriptionLedgerIsIndexProbes checks the plan of SubscriptionLedgerTransactions on
// a ledger of 20 000 period transactions and 2 000 unapplied ones, analyzed: the
// subscription's transactions are found through the period_id and key indexes, never by a
// sequential scan of the ledger.
func TestSubscriptionLedgerIsIndexProbes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	_, err := pool.Exec(ctx, `
		INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, period_id, memo, at, posted_at)
		SELECT gen_random_uuid(), 'payment:' || i, '', 'payment', 'p' || i, gen_random_uuid()::text || '/' || (i % 12 + 1), '', now(), now()
		FROM generate_series(1, 20000) i;
		INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
		SELECT gen_random_uuid(), 'unapplied:' || gen_random_uuid(), '', 'payment', 'u' || i, '', now(), now()
		FROM generate_series(1, 2000) i;
		ANALYZE billing_ledger_transactions;`)
	require.NoError(t, err)
	got := explain(t, pool, store.SubscriptionLedgerSQL, "0190c3b6-0000-7000-8000-000000000000")
	require.Contains(t, got, "billing_ledger_transactions_period_idx", got)
	require.Contains(t, got, "billing_ledger_transactions_key_key", got)
	require.NotContains(t, got, "Seq Scan on billing_ledger_transactions", got)
	t.Logf("a subscription's ledger:\n%s", got)
}

// TestRevenueByMonthReadsTheAccountIndex checks the plan of LedgerBucketSums on 20 000
// recognitions among 60 000 other entries, analyzed: the revenue accounts' entries of the
// range are read through a range of billing_ledger_entries_account_idx per account (a
// bitmap or an index-only scan, as the planner finds cheaper), never by a scan of the
// entries.
func TestRevenueByMonthReadsTheAccountIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	_, err := pool.Exec(ctx, `
		INSERT INTO billing_ledger_accounts (code, type, currency, contra) VALUES
			('provider:RUB', 'asset', 'RUB', false), ('deferred:RUB', 'liability', 'RUB', false),
			('revenue:RUB', 'income', 'RUB', false), ('refunded_revenue:RUB', 'income', 'RUB', true);
		CREATE TEMP TABLE txs AS SELECT gen_random_uuid() AS id, i,
			'2025-01-01'::timestamptz + i * interval '30 minutes' AS at FROM generate_series(1, 40000) i;
		INSERT INTO billing_ledger_transactions (id, key, fingerprint, ref_kind, ref_id, memo, at, posted_at)
			SELECT id, 'k' || i, '', CASE WHEN i % 2 = 0 THEN 'recognition' ELSE 'payment' END, 'r' || i, '', at, at FROM txs;
		INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			SELECT id, s.seq, CASE WHEN i % 2 = 0 THEN (ARRAY['deferred:RUB', 'revenue:RUB'])[s.seq]
				ELSE (ARRAY['provider:RUB', 'deferred:RUB'])[s.seq] END,
				(ARRAY['debit', 'credit'])[s.seq], 100, 'RUB', at
			FROM txs, generate_series(1, 2) AS s(seq);
		ANALYZE billing_ledger_accounts; ANALYZE billing_ledger_entries;`)
	require.NoError(t, err)
	bounds := []time.Time{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)}
	got := explain(t, pool, store.LedgerBucketSumsSQL, []string{"revenue", "refunded_revenue"}, bounds)
	require.Regexp(t, `Index (Only )?Scan on billing_ledger_entries_account_idx|Index (Only )?Scan using billing_ledger_entries_account_idx`, got)
	require.NotContains(t, got, "Seq Scan on billing_ledger_entries", got)
	t.Logf("revenue by month:\n%s", got)

	sums, err := store.LedgerBucketSums(ctx, pool, []string{"revenue", "refunded_revenue"}, bounds)
	require.NoError(t, err)
	require.Len(t, sums, 2)
	for i, s := range sums {
		require.Equal(t, i+1, s.Bucket)
		require.Equal(t, "revenue", s.Role)
		require.Zero(t, s.Debits)
	}
	require.Equal(t, int64(31*24*100), sums[0].Credits, "March: one recognition of 100 an hour")
	require.Equal(t, int64(30*24*100), sums[1].Credits, "April")
}
