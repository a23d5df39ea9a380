package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/internal/store"
)

// TestRunningPeriodsCountReadsTheIndex checks the plan of RunningPeriodsByVersion (the count
// behind Catalog.PreviewPublish, TERMS 2.1.6) on 40 000 periods of two tariffs, most of them
// ended, analyzed: the count is a range of billing_periods_terms_code_end_idx (migration
// 0017) and each subscription a primary-key probe, never a sequential scan.
func TestRunningPeriodsCountReadsTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := billingtest.NewPool(t)
	// 20 000 subscriptions, each with two periods: an ended first one and a current second
	// one that runs for one subscription in twenty; tariffs "pro" and "team" alternate.
	_, err := pool.Exec(ctx, `
		INSERT INTO billing_tariffs (code, name, status, created_at) VALUES ('pro', 'pro', 'active', now()), ('team', 'team', 'active', now());
		INSERT INTO billing_subscriptions (id, customer_id, tariff_code, status, auto_renew, location, checkout, current_period, created_at, updated_at)
		SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'c' || i, (ARRAY['pro','team'])[1 + i % 2],
			'active', true, 'Europe/Moscow', '{}', 2, now(), now()
		FROM generate_series(1, 20000) i;
		INSERT INTO billing_periods (subscription_id, number, terms, start_at, end_at, granted_at)
		SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, n,
			jsonb_build_object('code', (ARRAY['pro','team'])[1 + i % 2], 'version', 1 + i % 3),
			'2026-01-01'::timestamptz + (n - 1) * interval '30 days',
			CASE WHEN n = 2 AND i % 20 = 0 THEN '2026-03-31'::timestamptz ELSE '2026-01-01'::timestamptz + n * interval '30 days' - interval '1 day' END,
			'2026-01-01'::timestamptz
		FROM generate_series(1, 20000) i, generate_series(1, 2) n;
		UPDATE billing_subscriptions s SET current_period_end = p.end_at
		FROM billing_periods p WHERE p.subscription_id = s.id AND p.number = s.current_period;
		ANALYZE billing_subscriptions; ANALYZE billing_periods;`)
	require.NoError(t, err)

	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	got := explain(t, pool, store.RunningPeriodsSQL, "pro", now, 4)
	t.Logf("running periods of a tariff:\n%s", got)
	require.Contains(t, got, "billing_periods_terms_code_end_idx", got)
	require.NotContains(t, got, "Seq Scan", got)
	require.Contains(t, got, "billing_subscriptions_pkey", got)

	counts, err := store.RunningPeriodsByVersion(ctx, pool, "pro", now, 4)
	require.NoError(t, err)
	total := 0
	for _, c := range counts {
		total += c.Periods
	}
	require.Equal(t, 1000, total, "every twentieth subscription, a pro one, has a running period: %v", counts)
}
