package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// deletionBundle is refundBundle with the account deletion escalations it received.
type deletionBundle struct {
	*refundBundle
	mu          sync.Mutex
	escalations []billing.AccountDeletionEscalation
}

// setupDeletions is setupRefunds (c1 active on "pro", charged on tok-c1 at 2026-03-02
// 10:00 MSK) with the escalations of account deletion requests collected.
func setupDeletions(t *testing.T) (*deletionBundle, subscription.Subscription) {
	t.Helper()
	db := &deletionBundle{}
	rb, sub := setupRefundsWith(t, func(c *billing.Config) {
		c.OnAccountDeletionEscalation = func(e billing.AccountDeletionEscalation) {
			db.mu.Lock()
			defer db.mu.Unlock()
			db.escalations = append(db.escalations, e)
		}
	})
	db.refundBundle = rb
	return db, sub
}

func (b *deletionBundle) escalated() []billing.AccountDeletionEscalation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]billing.AccountDeletionEscalation(nil), b.escalations...)
}

func (b *deletionBundle) requestDeletion(t *testing.T, customer string, received time.Time, key string) billing.AccountDeletion {
	t.Helper()
	d, err := b.engine.RequestAccountDeletion(context.Background(), billing.AccountDeletionRequestParams{
		CustomerID: customer, ReceivedAt: received, Channel: refund.ChannelEmail, Text: "delete my account", IdempotencyKey: key})
	require.NoError(t, err)
	return d
}

func (b *deletionBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestAccountDeletionDeadline(t *testing.T) {
	t.Parallel()
	b, _ := setupDeletions(t)
	for _, tc := range []struct {
		name     string
		received time.Time
		deadline time.Time
	}{
		{"2.2.4 across the New Year holidays: Fri 26 Dec 2025 → 2 days in 2025 (31 Dec is off), 1–11 Jan off, 10th business day Wed 21 Jan 2026",
			time.Date(2025, 12, 26, 15, 0, 0, 0, b.moscow), time.Date(2026, 1, 22, 0, 0, 0, 0, b.moscow)},
		{"2.2.4 across 9 March 2026 (a day off): Mon 2 March → Tue 17 March, 24:00",
			time.Date(2026, 3, 2, 9, 0, 0, 0, b.moscow), time.Date(2026, 3, 18, 0, 0, 0, 0, b.moscow)},
		{"2.2.4 counted on the Moscow date: 23:30 UTC of 1 March is 2 March in Moscow",
			time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC), time.Date(2026, 3, 18, 0, 0, 0, 0, b.moscow)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := b.requestDeletion(t, "c-"+tc.name, tc.received, "del-"+tc.name)
			require.Equal(t, tc.deadline, d.Deadline.In(b.moscow))
			require.Equal(t, billing.AccountDeletionReceived, d.State)
			got, err := b.engine.AccountDeletionGet(context.Background(), d.ID)
			require.NoError(t, err)
			require.True(t, d.Deadline.Equal(got.Deadline))
		})
	}
	open, err := b.engine.AccountDeletionListOpen(context.Background())
	require.NoError(t, err)
	require.Len(t, open, 3)
	for i := 1; i < len(open); i++ {
		require.False(t, open[i].Deadline.Before(open[i-1].Deadline), "open requests ordered by deadline")
	}
	require.Equal(t, time.Date(2026, 1, 22, 0, 0, 0, 0, b.moscow), open[0].Deadline.In(b.moscow))
}

func TestExecuteAccountDeletion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, sub := setupDeletions(t)
	_, err := b.engine.Consume(ctx, sub.ID, "generations", 3, "use-1")
	require.NoError(t, err)
	pending, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-c1", IdempotencyKey: "sub-c1-2"})
	require.NoError(t, err)
	require.Equal(t, subscription.StatusPending, pending.Status)
	other := b.activeSubscription(t, "c2", "pro")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_renew' AND args->>'subscription_id' = $1
		AND state IN ('scheduled', 'available')`, sub.ID), "a renewal is queued for the period end")

	d := b.requestDeletion(t, "c1", b.clock.Now(), "del-c1")
	done, err := b.engine.ExecuteAccountDeletion(ctx, d.ID, "admin:1")
	require.NoError(t, err)
	require.Equal(t, billing.AccountDeletionDone, done.State)
	require.Equal(t, "admin:1", done.DoneBy)
	require.True(t, b.clock.Now().Equal(done.DoneAt))

	t.Run("2.2.4 every open subscription of the customer ends at once; others untouched", func(t *testing.T) {
		for _, id := range []string{sub.ID, pending.ID} {
			s, err := b.engine.SubscriptionGet(ctx, id)
			require.NoError(t, err)
			require.Equal(t, subscription.StatusTerminated, s.Status)
			require.False(t, s.AutoRenew)
		}
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 1, "after-deletion")
		require.ErrorIs(t, err, billing.ErrNoAccess)
		s, err := b.engine.SubscriptionGet(ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, s.Status)
	})

	t.Run("2.2.4 the customer's token: consent withdrawn, forgotten, the row kept as a tombstone", func(t *testing.T) {
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM billing_payment_methods WHERE token = 'tok-c1'
			AND consent_withdrawn_at IS NOT NULL AND forgotten_at IS NOT NULL`))
	})

	t.Run("2.2.4 ledger and audit kept under the opaque customer ID", func(t *testing.T) {
		charged, _, _, err := b.engine.Ledger().PeriodLedgerForTest(ctx, sub.ID, 1)
		require.NoError(t, err)
		require.Equal(t, int64(99000), charged, "paid periods are not refunded by the deletion")
		subLog, err := b.engine.AuditLogList(ctx, billing.SubscriptionSubject(sub.ID))
		require.NoError(t, err)
		last := subLog[len(subLog)-1]
		require.Equal(t, "admin:1", last.Actor)
		require.Contains(t, last.Reason, "2.2.4")
		custLog, err := b.engine.AuditLogList(ctx, billing.CustomerSubject("c1"))
		require.NoError(t, err)
		require.Len(t, custLog, 2)
		require.Equal(t, "account_deletion.requested", custLog[0].Action)
		require.Equal(t, "account_deletion.executed", custLog[1].Action)
		require.Equal(t, "admin:1", custLog[1].Actor)
	})

	t.Run("2.2.4 executing twice is a no-op", func(t *testing.T) {
		again, err := b.engine.ExecuteAccountDeletion(ctx, d.ID, "admin:2")
		require.NoError(t, err)
		require.Equal(t, done.DoneAt, again.DoneAt)
		require.Equal(t, "admin:1", again.DoneBy)
		custLog, err := b.engine.AuditLogList(ctx, billing.CustomerSubject("c1"))
		require.NoError(t, err)
		require.Len(t, custLog, 2)
		open, err := b.engine.AccountDeletionListOpen(ctx)
		require.NoError(t, err)
		require.Empty(t, open)
	})

	t.Run("2.2.4 the queued renewal charges nothing; no escalation after execution", func(t *testing.T) {
		_, err := b.runner.RunUntil(ctx, sub.Current.End.Add(72*time.Hour))
		require.NoError(t, err)
		require.Empty(t, b.gateway.ChargesFor(sub.ID, 2), "the renewal job's re-check finds the subscription terminated")
		require.Empty(t, b.gateway.ChargesFor(pending.ID, 1))
		require.Empty(t, b.escalated(), "a done request is not escalated")
		got, err := b.engine.AccountDeletionGet(ctx, d.ID)
		require.NoError(t, err)
		require.True(t, got.EscalatedAt.IsZero())
	})
}

func TestRequestAccountDeletionInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := setupDeletions(t)
	now := b.clock.Now()
	good := billing.AccountDeletionRequestParams{CustomerID: "c1", ReceivedAt: now, Channel: refund.ChannelSupport, IdempotencyKey: "k"}
	for _, tc := range []struct {
		name   string
		change func(*billing.AccountDeletionRequestParams)
		field  string
	}{
		{"2.2.4 no customer", func(in *billing.AccountDeletionRequestParams) { in.CustomerID = " " }, "CustomerID"},
		{"2.2.4 no received instant", func(in *billing.AccountDeletionRequestParams) { in.ReceivedAt = time.Time{} }, "ReceivedAt"},
		{"2.2.4 unknown channel", func(in *billing.AccountDeletionRequestParams) { in.Channel = "fax" }, "Channel"},
		{"2.2.4 no idempotency key", func(in *billing.AccountDeletionRequestParams) { in.IdempotencyKey = "" }, "IdempotencyKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			tc.change(&in)
			_, err := b.engine.RequestAccountDeletion(ctx, in)
			var ie *billing.InputError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tc.field, ie.Problems[0].Field)
		})
	}
	future := good
	future.ReceivedAt = now.Add(time.Minute)
	_, err := b.engine.RequestAccountDeletion(ctx, future)
	require.ErrorIs(t, err, billing.ErrReceivedInFuture, "2.2.4 a request from the future is refused")
	_, err = b.engine.ExecuteAccountDeletion(ctx, "not-a-uuid", "admin:1")
	var ie *billing.InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM billing_account_deletions`), "bad input writes nothing")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM billing_audit_log WHERE subject = 'customer:c1'`))

	first, err := b.engine.RequestAccountDeletion(ctx, good)
	require.NoError(t, err)
	again, err := b.engine.RequestAccountDeletion(ctx, good)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "2.2.4 same key, same input: the same request")
	other := good
	other.Text = "another text"
	_, err = b.engine.RequestAccountDeletion(ctx, other)
	require.ErrorIs(t, err, billing.ErrIdempotencyConflict, "2.2.4 same key, other input")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM billing_account_deletions`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_escalate_deletion'`), "one escalation job per request")
}

func TestAccountDeletionEscalation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := setupDeletions(t)
	d := b.requestDeletion(t, "c1", b.clock.Now(), "del-c1")
	require.Equal(t, time.Date(2026, 3, 18, 0, 0, 0, 0, b.moscow), d.Deadline.In(b.moscow))

	_, err := b.runner.RunUntil(ctx, time.Date(2026, 3, 15, 23, 0, 0, 0, b.moscow))
	require.NoError(t, err)
	require.Empty(t, b.escalated(), "2.2.4 not escalated before two days before the deadline")

	_, err = b.runner.RunUntil(ctx, time.Date(2026, 3, 16, 1, 0, 0, 0, b.moscow))
	require.NoError(t, err)
	esc := b.escalated()
	require.Len(t, esc, 1, "2.2.4 escalated once, before the deadline")
	require.Equal(t, d.ID, esc[0].RequestID)
	require.Equal(t, "c1", esc[0].CustomerID)
	require.True(t, esc[0].At.Before(d.Deadline))

	require.NoError(t, billing.EscalateAccountDeletion(b.engine, ctx, d.ID), "a second run is a no-op")
	_, err = b.runner.RunUntil(ctx, time.Date(2026, 3, 20, 0, 0, 0, 0, b.moscow))
	require.NoError(t, err)
	require.Len(t, b.escalated(), 1)
	got, err := b.engine.AccountDeletionGet(ctx, d.ID)
	require.NoError(t, err)
	require.True(t, esc[0].At.Equal(got.EscalatedAt))
}
