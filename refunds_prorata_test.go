package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

func TestPartialRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, sub := setupRefunds(t)
	// Day 16 of a 31-day period, after 5 generations: outside the 3.7 window, so only a
	// refusal under consumer law art. 32 is left.
	b.clock.Set(b.msk(3, 17, 10))
	_, err := b.engine.Consume(ctx, sub.ID, "generations", 5, "g1")
	require.NoError(t, err)
	r := b.request(t, sub.ID, b.msk(3, 17, 10), "r1")
	require.False(t, r.Eligible)

	s, err := b.engine.SuggestProRata(ctx, r.ID, decimal.NewFromInt(100))
	require.NoError(t, err)
	require.Equal(t, refund.BasisTime, s.Basis, "15 of 31 days used outweighs 5 of 500 generations")
	// 990 × (1 − 15/31) = 510.967… → 510.96 (down to the kopeck), less 100 of costs.
	require.Equal(t, "410.96", s.Amount.StringFixed(2))

	_, err = b.engine.SuggestProRata(ctx, r.ID, decimal.NewFromInt(-1))
	require.ErrorIs(t, err, billing.ErrInvalidInput)

	b.verify(t, r.ID)
	for _, tt := range []struct {
		name string
		opts billing.ExecuteRefundOpts
		want error
	}{
		{"art. 32 more than was paid is refused", billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "x", Amount: decimal.NewFromInt(991)}, billing.ErrRefundAmount},
		{"art. 32 a negative amount is refused", billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "x", Amount: decimal.NewFromInt(-5)}, billing.ErrRefundAmount},
		{"art. 32 an amount finer than a kopeck is refused", billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "x", Amount: decimal.RequireFromString("10.001")}, billing.ErrRefundAmount},
		{"art. 32 a partial refund is a person's decision: no override, refused", billing.ExecuteRefundOpts{Actor: "admin:1", Amount: s.Amount}, billing.ErrRefundAmount},
	} {
		_, err := b.engine.ExecuteRefund(ctx, r.ID, tt.opts)
		require.ErrorIs(t, err, tt.want, tt.name)
		got, err := b.engine.RefundRequestGet(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, refund.StateVerified, got.State, "%s: nothing written", tt.name)
	}
	require.Empty(t, b.gateway.Refunds())

	done, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true,
		OverrideReason: "art. 32 refusal, costs 100 RUB per support ticket 77", Amount: s.Amount})
	require.NoError(t, err)
	require.Equal(t, refund.StateRefunded, done.State)
	require.Equal(t, int64(41096), done.AmountMinor)
	refunds := b.gateway.Refunds()
	require.Len(t, refunds, 1)
	require.Equal(t, int64(41096), refunds[0].Amount)

	got, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusRefunded, got.Status, "the refusal ends the service")

	// The rest of the price is earned at once; the books balance.
	_, err = b.runner.RunUntil(ctx, b.clock.Now().Add(time.Hour))
	require.NoError(t, err)
	for account, want := range map[string]int64{"provider:RUB": 99000 - 41096, "deferred:RUB": 0, "revenue:RUB": -(99000 - 41096)} {
		bal, err := b.engine.Ledger().Balance(ctx, account, b.clock.Now())
		require.NoError(t, err)
		require.Equal(t, want, bal.Net(), account)
	}
	log, err := b.engine.AuditLogList(ctx, billing.SubscriptionSubject(sub.ID))
	require.NoError(t, err)
	var overrides int
	for _, a := range log {
		if a.Action == "refund.override" {
			overrides++
			require.Contains(t, a.Reason, "art. 32")
		}
	}
	require.Equal(t, 1, overrides)
}
