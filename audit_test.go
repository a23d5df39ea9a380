package billing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

func TestAuditLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "generations", 5)
	sub := b.activeSubscription(t, "c1", "pro")
	_, err := b.engine.Suspend(ctx, sub.ID, subscription.AdminAction{Actor: "admin:7", Reason: "abuse report 12"})
	require.NoError(t, err)

	log, err := b.engine.AuditLogList(ctx, billing.SubscriptionSubject(sub.ID))
	require.NoError(t, err)
	last := log[len(log)-1]
	require.Equal(t, "subscription.suspend", last.Action, "2.1.2 the operator's action is audited")
	require.Equal(t, "admin:7", last.Actor)
	require.Equal(t, "abuse report 12", last.Reason)
	require.Equal(t, "suspended", last.Detail["to"])

	tlog, err := b.engine.AuditLogList(ctx, billing.TariffSubject("pro"))
	require.NoError(t, err)
	require.Equal(t, "tariff.publish", tlog[0].Action)

	_, err = b.engine.AuditLogList(ctx, sub.ID)
	require.ErrorIs(t, err, billing.ErrInvalidInput)
}

func TestRejectRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, sub := setupRefunds(t)
	r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")

	_, err := b.engine.RejectRefund(ctx, r.ID, "admin:1", "")
	require.ErrorIs(t, err, billing.ErrInvalidInput, "a rejection needs a reason")

	got, err := b.engine.RejectRefund(ctx, r.ID, "admin:1", "duplicate of an earlier request")
	require.NoError(t, err)
	require.Equal(t, refund.StateRejected, got.State)

	_, err = b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "changed my mind"})
	require.ErrorIs(t, err, billing.ErrRefundTransition, "3.8 a rejected request is final")
	_, err = b.engine.RejectRefund(ctx, r.ID, "admin:1", "again")
	require.ErrorIs(t, err, billing.ErrRefundTransition)
	require.Empty(t, b.gateway.Refunds())

	require.NoError(t, billing.EscalateRefund(b.engine, ctx, r.ID))
	open, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{Open: true})
	require.NoError(t, err)
	require.Empty(t, open, "a rejected request is no longer open, so it is not escalated")

	log, err := b.engine.AuditLogList(ctx, billing.SubscriptionSubject(sub.ID))
	require.NoError(t, err)
	last := log[len(log)-1]
	require.Equal(t, "refund.rejected", last.Action)
	require.Equal(t, "duplicate of an earlier request", last.Reason)
}
