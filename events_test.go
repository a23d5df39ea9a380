package billing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// eventBundle is a renewal bundle whose engine hands its events to an EventLog.
type eventBundle struct {
	*renewalBundle
	log *billingtest.EventLog
}

// setupEvents gives a test an engine with the fake gateway, River on the test clock, the
// tariff "pro" (990 RUB a month, 500 generations, a hard limit) and OnEvent recording into
// b.log; change is applied to the config last.
func setupEvents(t *testing.T, change func(*billing.Config)) *eventBundle {
	t.Helper()
	gw := billingtest.NewGateway()
	log := billingtest.NewEventLog()
	tb := setupWith(t, func(c *billing.Config) {
		c.Gateway, c.OnEvent = gw, log.Handle
		if change != nil {
			change(c)
		}
	})
	runner := tb.withRiver(t)
	tb.publish(t, "pro", "990", "generations", 500)
	return &eventBundle{renewalBundle: &renewalBundle{testBundle: tb, gateway: gw, runner: runner}, log: log}
}

// delivered runs the jobs due now (the deliveries) and returns the events of kind the
// handler received about subject, a subscription or (for a customer's event) a customer.
func (b *eventBundle) delivered(t *testing.T, subject string, kind billing.EventKind) []billing.Event {
	t.Helper()
	require.NoError(t, b.runner.RunDue(context.Background()))
	var out []billing.Event
	for _, ev := range b.log.Of(kind) {
		if ev.SubscriptionID == subject || (ev.SubscriptionID == "" && ev.CustomerID == subject) {
			out = append(out, ev)
		}
	}
	return out
}

// recorded returns every event recorded about subscription subID, through Engine.EventList.
func (b *eventBundle) recorded(t *testing.T, subID string) []billing.Event {
	t.Helper()
	evs, err := b.engine.EventList(context.Background(), billing.EventListParams{SubscriptionID: subID})
	require.NoError(t, err)
	return evs
}

// count returns the result of a count(*) query.
func (b *testBundle) countRows(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// kindsOf returns the kinds of evs in order.
func kindsOf(evs []billing.Event) []billing.EventKind {
	out := make([]billing.EventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

// utc returns ev with every instant in UTC and DeliveredAt zero, for comparing the event a
// handler received with the one Engine.EventList reads.
func utc(ev billing.Event) billing.Event {
	ev.DeliveredAt = time.Time{}
	for _, tm := range []*time.Time{&ev.OccurredAt, &ev.PeriodEnd, &ev.DueAt} {
		if !tm.IsZero() {
			*tm = tm.UTC()
		}
	}
	return ev
}

func TestEventKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := subscription.AdminAction{Actor: "admin:1", Reason: "abuse of the service"}

	// Each row tells the story that makes one kind and checks the events of that kind the
	// handler received about the story's subject (a subscription, or a customer).
	tests := []struct {
		name   string
		kind   billing.EventKind
		change func(*billing.Config)
		story  func(t *testing.T, b *eventBundle) (subject string)
		check  func(t *testing.T, b *eventBundle, evs []billing.Event)
	}{
		{
			name: "3.4 subscribed: the checkout terms, no access yet",
			kind: billing.EventSubscribed,
			story: func(t *testing.T, b *eventBundle) string {
				return regSubscribe(t, b.renewalBundle, "c1", "tok-1").ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, "pro", evs[0].Tariff)
				require.Equal(t, int64(99000), evs[0].AmountMinor)
				require.Equal(t, "RUB", evs[0].Currency)
				require.Equal(t, "c1", evs[0].CustomerID)
			},
		},
		{
			name: "3.3 activated when the first charge succeeded",
			kind: billing.EventActivated,
			story: func(t *testing.T, b *eventBundle) string {
				return b.checkout(t, "c1", "tok-1").ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, 1, evs[0].Period)
				require.Equal(t, time.Date(2026, 4, 2, 10, 0, 0, 0, b.moscow), evs[0].PeriodEnd.In(b.moscow))
				require.Equal(t, int64(99000), evs[0].AmountMinor)
			},
		},
		{
			name: "3.5 renewal upcoming three days before the charge, with the price to be charged",
			kind: billing.EventRenewalUpcoming,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 1, 0, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				require.Empty(t, b.charged(sub.ID, 2), "told before the card is charged")
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, time.Date(2026, 3, 30, 10, 0, 0, 0, b.moscow), evs[0].OccurredAt.In(b.moscow), "3 days before")
				require.Equal(t, time.Date(2026, 4, 2, 10, 0, 0, 0, b.moscow), evs[0].DueAt.In(b.moscow), "the charge")
				require.Equal(t, 2, evs[0].Period)
				require.Equal(t, int64(99000), evs[0].AmountMinor)
			},
		},
		{
			name: "3.5 renewed: the next period paid",
			kind: billing.EventRenewed,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 3, 0, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, 2, evs[0].Period)
				require.Equal(t, time.Date(2026, 5, 2, 10, 0, 0, 0, b.moscow), evs[0].PeriodEnd.In(b.moscow))
				require.Equal(t, int64(99000), evs[0].AmountMinor)
			},
		},
		{
			name: "3.5 renewal declined softly: the gateway's code, retried",
			kind: billing.EventPaymentDeclined,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.Succeed, billingtest.SoftDecline)
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 2, 12, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.False(t, evs[0].Hard)
				require.Equal(t, billingtest.DeclineCodeSoft, evs[0].Reason)
				require.Equal(t, 2, evs[0].Period)
				require.NotEmpty(t, evs[0].AttemptID)
			},
		},
		{
			name: "3.5 renewal declined for good: hard",
			kind: billing.EventPaymentDeclined,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.Succeed, billingtest.HardDecline)
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 2, 12, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.True(t, evs[0].Hard)
				require.Equal(t, billingtest.DeclineCodeHard, evs[0].Reason)
			},
		},
		{
			name: "past due after a soft decline at the period end",
			kind: billing.EventPastDue,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.Succeed, billingtest.SoftDecline)
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 2, 12, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				require.Equal(t, subscription.StatusPastDue, b.get(t, sub.ID).Status)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, 2, evs[0].Period)
			},
		},
		{
			name: "3.6 ended at the period end with auto-renew off",
			kind: billing.EventEnded,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
				require.NoError(t, err)
				_, err = b.runner.RunUntil(ctx, time.Date(2026, 4, 3, 0, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, subscription.StatusEnded, evs[0].Status)
				require.Equal(t, string(subscription.EndAutoRenewOff), evs[0].Reason)
			},
		},
		{
			name: "ended after a hard decline of the renewal",
			kind: billing.EventEnded,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.Succeed, billingtest.HardDecline)
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 2, 12, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, string(subscription.EndHardDecline), evs[0].Reason)
			},
		},
		{
			name: "3.3 a declined first charge ends the checkout",
			kind: billing.EventEnded,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.HardDecline)
				return b.checkout(t, "c1", "tok-1").ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, billing.EndFirstPaymentFailed, evs[0].Reason)
				require.Equal(t, subscription.StatusEnded, evs[0].Status)
			},
		},
		{
			name: "2.1.2 ended by the operator: terminated, with the operator's words",
			kind: billing.EventEnded,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.engine.Terminate(ctx, sub.ID, admin)
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, subscription.StatusTerminated, evs[0].Status)
				require.Equal(t, billing.EndTerminated, evs[0].Reason)
				require.Equal(t, admin.Reason, evs[0].Message)
			},
		},
		{
			name: "3.1 usage thresholds by Consume: 80% and 100% (used up), once each",
			kind: billing.EventUsageThreshold,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				for i, q := range []int64{399, 1, 50, 50} {
					_, err := b.engine.Consume(ctx, sub.ID, "generations", q, fmt.Sprintf("k%d", i))
					require.NoError(t, err)
				}
				_, err := b.engine.Consume(ctx, sub.ID, "generations", 1, "k1") // a replay: nothing new
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 2)
				require.Equal(t, []int{80, 100}, []int{evs[0].Threshold, evs[1].Threshold})
				require.Equal(t, []int64{400, 500}, []int64{evs[0].Used, evs[1].Used})
				require.Equal(t, "generations", evs[0].Meter)
				require.Equal(t, int64(500), evs[0].Limit)
				require.Equal(t, 1, evs[0].Period)
			},
		},
		{
			name: "3.1 usage threshold by Commit of a reservation",
			kind: billing.EventUsageThreshold,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				r, err := b.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 450, IdempotencyKey: "r1"})
				require.NoError(t, err)
				_, err = b.engine.ReservationCommit(ctx, r.ID, 420)
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, 80, evs[0].Threshold)
				require.Equal(t, int64(420), evs[0].Used)
			},
		},
		{
			name: "3.7 refund requested: the decision and the 3.8 deadline",
			kind: billing.EventRefundRequested,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				b.clock.Set(time.Date(2026, 3, 3, 12, 0, 0, 0, b.moscow))
				_, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID,
					ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"})
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.True(t, evs[0].Eligible)
				require.NotEmpty(t, evs[0].Message)
				require.NotEmpty(t, evs[0].RefundRequestID)
				require.Equal(t, time.Date(2026, 3, 14, 0, 0, 0, 0, b.moscow), evs[0].DueAt.In(b.moscow), "3.8: 10 calendar days")
				require.Equal(t, int64(99000), evs[0].AmountMinor)
			},
		},
		{
			name: "3.8 refund due soon: unpaid two days before the payout deadline",
			kind: billing.EventRefundDueSoon,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				_, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID,
					ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"})
				require.NoError(t, err)
				_, err = b.runner.RunUntil(ctx, time.Date(2026, 3, 13, 0, 0, 0, 0, b.moscow))
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, time.Date(2026, 3, 11, 0, 0, 0, 0, b.moscow), evs[0].OccurredAt.In(b.moscow), "48 h before")
				require.Equal(t, time.Date(2026, 3, 13, 0, 0, 0, 0, b.moscow), evs[0].DueAt.In(b.moscow))
			},
		},
		{
			name: "3.8 refund paid, and the subscription ended refunded",
			kind: billing.EventRefundPaid,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				r, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID,
					ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"})
				require.NoError(t, err)
				_, err = b.engine.VerifyRefund(ctx, r.ID, "admin:1")
				require.NoError(t, err)
				_, err = b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, int64(99000), evs[0].AmountMinor)
				ended := b.delivered(t, evs[0].SubscriptionID, billing.EventEnded)
				require.Len(t, ended, 1)
				require.Equal(t, subscription.StatusRefunded, ended[0].Status)
				require.Equal(t, billing.EndRefunded, ended[0].Reason)
			},
		},
		{
			name: "3.7 refund rejected by an operator, with what the customer was told",
			kind: billing.EventRefundRejected,
			story: func(t *testing.T, b *eventBundle) string {
				sub := b.checkout(t, "c1", "tok-1")
				r, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID,
					ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"})
				require.NoError(t, err)
				_, err = b.engine.RejectRefund(ctx, r.ID, "admin:1", "a duplicate of an earlier request")
				require.NoError(t, err)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, "a duplicate of an earlier request", evs[0].Message)
			},
		},
		{
			name: "3.3 unapplied payment refunded: an abandoned checkout the provider charged",
			kind: billing.EventUnappliedRefunded,
			story: func(t *testing.T, b *eventBundle) string {
				sub := abandonedPaidCheckout(t, b.renewalBundle, "c1", "tok-1")
				regRunFor(t, b.renewalBundle, time.Minute)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.NotEmpty(t, evs[0].UnappliedID)
				require.Equal(t, int64(99000), evs[0].AmountMinor)
			},
		},
		{
			name: "parked for a person: the refund of an unapplied payment refused for good",
			kind: billing.EventParked,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.ScriptRefunds(billingtest.HardDecline)
				sub := abandonedPaidCheckout(t, b.renewalBundle, "c1", "tok-1")
				regRunFor(t, b.renewalBundle, time.Hour)
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, billing.ParkedUnappliedRefund, evs[0].Reason)
				require.NotEmpty(t, evs[0].UnappliedID)
				require.NotEmpty(t, evs[0].Message)
			},
		},
		{
			name: "parked for a person: a charge attempt reconciliation gave up on",
			kind: billing.EventParked,
			story: func(t *testing.T, b *eventBundle) string {
				b.gateway.Script("tok-1", billingtest.TimeoutAfterSuccess)
				sub := regSubscribe(t, b.renewalBundle, "c1", "tok-1")
				_, err := b.engine.ChargeFirstPayment(ctx, sub.ID)
				require.NoError(t, err)
				b.gateway.FailLookups(1000)
				for range 10 {
					b.clock.Advance(7 * time.Hour)
					_, err := b.engine.ReconcilePayments(ctx)
					require.NoError(t, err)
				}
				return sub.ID
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, billing.ParkedChargeAttempt, evs[0].Reason)
				require.NotEmpty(t, evs[0].AttemptID)
				require.Contains(t, evs[0].Message, "unavailable")
			},
		},
		{
			name: "consent withdrawn (law of 1 March 2026): the customer's event",
			kind: billing.EventConsentWithdrawn,
			story: func(t *testing.T, b *eventBundle) string {
				b.checkout(t, "c1", "tok-1")
				require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"))
				require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"), "again: the same fact")
				return "c1"
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.Equal(t, "tok-1", evs[0].PaymentMethod)
				require.Empty(t, evs[0].SubscriptionID)
			},
		},
		{
			name: "2.2.4 account deletion due soon: not executed two days before the deadline",
			kind: billing.EventAccountDeletionDueSoon,
			story: func(t *testing.T, b *eventBundle) string {
				d, err := b.engine.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: "c9",
					ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "del"})
				require.NoError(t, err)
				_, err = b.runner.RunUntil(ctx, d.Deadline)
				require.NoError(t, err)
				return "c9"
			},
			check: func(t *testing.T, b *eventBundle, evs []billing.Event) {
				require.Len(t, evs, 1)
				require.NotEmpty(t, evs[0].AccountDeletionID)
				require.True(t, evs[0].DueAt.Add(-48*time.Hour).Equal(evs[0].OccurredAt), "48 h before the deadline")
			},
		},
	}
	covered := map[billing.EventKind]bool{}
	for _, tt := range tests {
		covered[tt.kind] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, tt.change)
			subject := tt.story(t, b)
			evs := b.delivered(t, subject, tt.kind)
			for _, ev := range evs {
				require.Equal(t, 1, b.log.Deliveries(ev.ID), "%s delivered once", ev.Kind)
				page, err := b.engine.EventList(ctx, billing.EventListParams{Kind: tt.kind, CustomerID: ev.CustomerID})
				require.NoError(t, err)
				i := slices.IndexFunc(page, func(r billing.Event) bool { return r.ID == ev.ID })
				require.GreaterOrEqual(t, i, 0, "Engine.EventList has it")
				require.False(t, page[i].DeliveredAt.IsZero(), "marked delivered")
				require.Equal(t, utc(ev), utc(page[i]), "the reader and the handler see one event")
			}
			tt.check(t, b, evs)
		})
	}
	for _, k := range billing.EventKinds {
		require.True(t, covered[k], "no row for %s", k)
	}
}

// TestEventDeliveredAgainAfterAFailure: a handler that fails gets the same event again,
// with the same ID, until it accepts it; the event stays one row.
func TestEventDeliveredAgainAfterAFailure(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, nil)
	var mu sync.Mutex
	failed := 0
	b.log.FailWith(func(ev billing.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind == billing.EventActivated && failed == 0 {
			failed++
			return errors.New("the host's queue is down")
		}
		return nil
	})
	sub := b.checkout(t, "c1", "tok-1")
	regRunFor(t, b.renewalBundle, time.Minute) // River retries the job after its backoff
	act := b.delivered(t, sub.ID, billing.EventActivated)
	require.Len(t, act, 1)
	require.Equal(t, 2, b.log.Deliveries(act[0].ID), "failed once, delivered again with the same ID")
	require.Equal(t, 1, b.countRows(t, `SELECT count(*) FROM billing_events WHERE kind = 'activated'`))
	recorded := b.recorded(t, sub.ID)
	i := slices.IndexFunc(recorded, func(e billing.Event) bool { return e.ID == act[0].ID })
	require.False(t, recorded[i].DeliveredAt.IsZero())
}

// TestEventSweptAfterRiverGaveUp: a handler that keeps failing until River discards the
// delivery job gets the event again once the sweep runs after it recovered.
func TestEventSweptAfterRiverGaveUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupEvents(t, func(c *billing.Config) { c.RenewalNotice = -1 })
	down := errors.New("down")
	b.log.FailWith(func(billing.Event) error { return down })
	sub := regSubscribe(t, b.renewalBundle, "c1", "tok-1")
	regRunFor(t, b.renewalBundle, 60*24*time.Hour) // River's 25 attempts with backoff
	ids := b.recorded(t, sub.ID)
	require.Len(t, ids, 1)
	id := ids[0].ID
	require.Equal(t, river.MaxAttemptsDefault, b.log.Deliveries(id), "every attempt River made")

	b.log.FailWith(nil)
	_, err := b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.Len(t, b.delivered(t, sub.ID, billing.EventSubscribed), 1)
	require.Equal(t, river.MaxAttemptsDefault+1, b.log.Deliveries(id))
	require.False(t, b.recorded(t, sub.ID)[0].DeliveredAt.IsZero())
	_, err = b.engine.SweepDueRenewals(ctx)
	require.NoError(t, err)
	require.NoError(t, b.runner.RunDue(ctx))
	require.Equal(t, river.MaxAttemptsDefault+1, b.log.Deliveries(id), "a delivered event is not swept again")
}

// TestEventOncePerFact: a command or job that does the same fact again makes no second
// event and no second delivery.
func TestEventOncePerFact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.5 the renewal job run twice renews once and reports once", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := b.checkout(t, "c1", "tok-1")
		_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 3, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.NoError(t, billing.RenewPeriod(b.engine, ctx, sub.ID, 1), "the job again")
		require.Zero(t, b.countRows(t, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_deliver_event' AND state <> 'completed'`),
			"no new delivery job")
		require.Equal(t, 1, b.countRows(t, `SELECT count(*) FROM billing_events WHERE kind = 'renewed'`))
		renewed := b.delivered(t, sub.ID, billing.EventRenewed)
		require.Len(t, renewed, 1)
		require.Equal(t, 1, b.log.Deliveries(renewed[0].ID))
	})

	t.Run("3.3 a webhook delivered twice activates once and reports once", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub, pending := regPendingCheckout(t, b.renewalBundle, "c1", "tok-1")
		ev, err := b.gateway.Confirm(pending.ProviderPaymentID, payment.OutcomeSucceeded)
		require.NoError(t, err)
		for range 2 {
			_, err = b.engine.HandlePaymentWebhook(ctx, ev)
			require.NoError(t, err)
		}
		act := b.delivered(t, sub.ID, billing.EventActivated)
		require.Len(t, act, 1)
		require.Equal(t, 1, b.log.Deliveries(act[0].ID))
	})

	t.Run("3.7 a retried RequestRefund and a twice-run escalation report once each; the old callback still fires", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var escalated []billing.RefundEscalation
		b := setupEvents(t, func(c *billing.Config) {
			c.OnRefundEscalation = func(e billing.RefundEscalation) {
				mu.Lock()
				defer mu.Unlock()
				escalated = append(escalated, e)
			}
		})
		sub := b.checkout(t, "c1", "tok-1")
		in := billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"}
		r, err := b.engine.RequestRefund(ctx, in)
		require.NoError(t, err)
		_, err = b.engine.RequestRefund(ctx, in)
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, r.PayoutDeadline)
		require.NoError(t, err)
		require.NoError(t, billing.EscalateRefund(b.engine, ctx, r.ID), "the job again")
		require.NoError(t, b.runner.RunDue(ctx))
		require.Len(t, b.delivered(t, sub.ID, billing.EventRefundRequested), 1)
		require.Len(t, b.delivered(t, sub.ID, billing.EventRefundDueSoon), 1)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, escalated, 1, "OnRefundEscalation is called as before")
	})
}

// TestEventRolledBack: an event is written in the transaction of its change, so a change
// that rolls back leaves none, even when the failure comes after the event was written.
func TestEventRolledBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.3 activation rolled back after the event was written: no event, no job", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := regSubscribe(t, b.renewalBundle, "c1", "tok-1")
		// The activation's audit entry is written after its events (Engine.save): fail it.
		_, err := b.pool.Exec(ctx, `
CREATE FUNCTION events_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events_test: audit refused'; END $$;
CREATE TRIGGER events_test_fail BEFORE INSERT ON billing_audit_log
    FOR EACH ROW WHEN (NEW.action = 'subscription.activate') EXECUTE FUNCTION events_test_fail();`)
		require.NoError(t, err)
		_, err = b.engine.ChargeFirstPayment(ctx, sub.ID)
		require.ErrorContains(t, err, "audit refused")
		require.NoError(t, b.runner.RunDue(ctx))
		require.Equal(t, subscription.StatusPending, b.get(t, sub.ID).Status)
		require.Equal(t, []billing.EventKind{billing.EventSubscribed}, kindsOf(b.recorded(t, sub.ID)), "no activated event")
		require.Empty(t, b.log.Of(billing.EventActivated))
		require.Equal(t, 0, b.countRows(t, `SELECT count(*) FROM `+riverJob+` WHERE kind = 'billing_renewal_notice'`))

		_, err = b.pool.Exec(ctx, `DROP TRIGGER events_test_fail ON billing_audit_log`)
		require.NoError(t, err)
		b.clock.Advance(2 * time.Minute)
		_, err = b.engine.ReconcilePayments(ctx) // the charge the provider took is found and applied
		require.NoError(t, err)
		act := b.delivered(t, sub.ID, billing.EventActivated)
		require.Len(t, act, 1)
		require.Equal(t, 1, b.log.Deliveries(act[0].ID))
	})

	t.Run("refused commands report nothing", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := b.checkout(t, "c1", "tok-1")
		before := b.countRows(t, `SELECT count(*) FROM billing_events`)
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 501, "big")
		require.ErrorIs(t, err, billing.ErrLimitExceeded)
		_, err = b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok-other", IdempotencyKey: "sub-c1"})
		require.ErrorIs(t, err, billing.ErrIdempotencyConflict)
		_, err = b.engine.Terminate(ctx, sub.ID, subscription.AdminAction{Actor: "admin:1"})
		require.Error(t, err, "no reason given")
		_, err = b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, Period: 7,
			ReceivedAt: b.clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "rr"})
		require.ErrorIs(t, err, billing.ErrPeriodNotPaid)
		require.Equal(t, before, b.countRows(t, `SELECT count(*) FROM billing_events`))
		require.NoError(t, b.runner.RunDue(ctx))
		require.Empty(t, b.log.Of(billing.EventUsageThreshold))
		require.Empty(t, b.log.Of(billing.EventEnded))
		require.Empty(t, b.log.Of(billing.EventRefundRequested))
	})
}

// TestRenewalUpcoming: the customer is told Config.RenewalNotice before the card is
// charged (TERMS 3.5), and only while the subscription will still renew then (3.6).
func TestRenewalUpcoming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.5 five days before the charge when RenewalNotice is five days", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, func(c *billing.Config) { c.RenewalNotice = 5 * 24 * time.Hour })
		sub := b.checkout(t, "c1", "tok-1")
		_, err := b.runner.RunUntil(ctx, time.Date(2026, 3, 28, 9, 59, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Empty(t, b.delivered(t, sub.ID, billing.EventRenewalUpcoming), "not yet")
		_, err = b.runner.RunUntil(ctx, time.Date(2026, 3, 28, 10, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		evs := b.delivered(t, sub.ID, billing.EventRenewalUpcoming)
		require.Len(t, evs, 1)
		require.Empty(t, b.charged(sub.ID, 2), "before the charge")
		_, err = b.runner.RunUntil(ctx, time.Date(2026, 4, 30, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Len(t, b.charged(sub.ID, 2), 1)
		evs = b.delivered(t, sub.ID, billing.EventRenewalUpcoming)
		require.Len(t, evs, 2, "one notice per renewal")
		require.Equal(t, 3, evs[1].Period)
		require.Equal(t, time.Date(2026, 4, 27, 10, 0, 0, 0, b.moscow), evs[1].OccurredAt.In(b.moscow))
	})

	t.Run("3.6 none after auto-renew was turned off", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := b.checkout(t, "c1", "tok-1")
		_, err := b.runner.RunUntil(ctx, time.Date(2026, 3, 20, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		_, err = b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, time.Date(2026, 4, 10, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Empty(t, b.delivered(t, sub.ID, billing.EventRenewalUpcoming))
		require.Len(t, b.delivered(t, sub.ID, billing.EventEnded), 1)
		require.Empty(t, b.charged(sub.ID, 2))
	})

	t.Run("none after consent was withdrawn", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := b.checkout(t, "c1", "tok-1")
		require.NoError(t, b.engine.WithdrawConsent(ctx, "c1", "tok-1", "customer:c1"))
		_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 10, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Empty(t, b.delivered(t, sub.ID, billing.EventRenewalUpcoming))
	})

	t.Run("2.1.4 an extended period is told about three days before its new end", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, nil)
		sub := b.checkout(t, "c1", "tok-1")
		newEnd := time.Date(2026, 4, 12, 10, 0, 0, 0, b.moscow)
		_, err := b.engine.ExtendPeriod(ctx, sub.ID, newEnd, subscription.AdminAction{Actor: "admin:1", Reason: "maintenance"})
		require.NoError(t, err)
		_, err = b.runner.RunUntil(ctx, time.Date(2026, 4, 8, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Empty(t, b.delivered(t, sub.ID, billing.EventRenewalUpcoming), "not at the old end's notice")
		_, err = b.runner.RunUntil(ctx, time.Date(2026, 4, 10, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		evs := b.delivered(t, sub.ID, billing.EventRenewalUpcoming)
		require.Len(t, evs, 1)
		require.Equal(t, newEnd.Add(-72*time.Hour), evs[0].OccurredAt.In(b.moscow))
		require.True(t, newEnd.Equal(evs[0].DueAt))
	})

	t.Run("RenewalNotice negative: no notice", func(t *testing.T) {
		t.Parallel()
		b := setupEvents(t, func(c *billing.Config) { c.RenewalNotice = -1 })
		sub := b.checkout(t, "c1", "tok-1")
		_, err := b.runner.RunUntil(ctx, time.Date(2026, 4, 3, 0, 0, 0, 0, b.moscow))
		require.NoError(t, err)
		require.Empty(t, b.delivered(t, sub.ID, billing.EventRenewalUpcoming))
		require.Len(t, b.delivered(t, sub.ID, billing.EventRenewed), 1)
	})
}

func TestEventConfig(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]int{{0}, {101}, {80, 80}} {
		c := billing.DefaultConfig()
		c.UsageThresholds = bad
		_, err := billing.New(nil, c)
		var ce *billing.ConfigError
		require.ErrorAs(t, err, &ce)
		require.True(t, ce.Has("UsageThresholds"), "%v: %v", bad, err)
	}
}

func TestEventsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupEvents(t, nil)
	sub := b.checkout(t, "c1", "tok-1")
	_, err := b.runner.RunUntil(ctx, time.Date(2026, 6, 3, 0, 0, 0, 0, b.moscow))
	require.NoError(t, err)
	all := b.recorded(t, sub.ID)
	require.Equal(t, []billing.EventKind{billing.EventSubscribed, billing.EventActivated,
		billing.EventRenewalUpcoming, billing.EventRenewed, billing.EventRenewalUpcoming, billing.EventRenewed,
		billing.EventRenewalUpcoming, billing.EventRenewed}, kindsOf(all))
	var paged []billing.Event
	after := ""
	for {
		page, err := b.engine.EventList(ctx, billing.EventListParams{SubscriptionID: sub.ID, After: after, Limit: 3})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	require.Equal(t, kindsOf(all), kindsOf(paged))
	_, err = b.engine.EventList(ctx, billing.EventListParams{Kind: "nope", Limit: 5000})
	var ie *billing.InputError
	require.ErrorAs(t, err, &ie)
}

// checkEvents is the model test's check of events at quiescence: every recorded event was
// delivered and marked so, and the events agree with the subscriptions' histories: one
// subscribed each, activated when a period was paid, one renewed per later period, one
// ended with the final status.
func (m *model) checkEvents(t *rapid.T) {
	rows, err := m.pool.Query(m.ctx, `SELECT id::text, delivered_at IS NOT NULL FROM billing_events`)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	type row struct {
		ID        string
		Delivered bool
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ID, &r.Delivered); err != nil {
			t.Fatalf("events: %v", err)
		}
		all = append(all, r)
	}
	rows.Close()
	for _, r := range all {
		if !r.Delivered || m.events.Deliveries(r.ID) == 0 {
			t.Fatalf("event %s recorded but not delivered at quiescence", r.ID)
		}
	}
	for _, s := range m.subs {
		sub := m.get(t, s.id)
		evs, err := m.eng.EventList(m.ctx, billing.EventListParams{SubscriptionID: s.id, Limit: 1000})
		if err != nil {
			t.Fatalf("events of %s: %v", m.subName(s.id), err)
		}
		count := map[billing.EventKind]int{}
		renewed := map[int]int{}
		for _, ev := range evs {
			count[ev.Kind]++
			if ev.Kind == billing.EventRenewed {
				renewed[ev.Period]++
			}
			if ev.Kind == billing.EventEnded && ev.Status != sub.Status {
				t.Fatalf("%s: ended event says %s, the subscription is %s", m.subName(s.id), ev.Status, sub.Status)
			}
		}
		paid := 0
		if sub.Current != nil {
			paid = sub.Current.Number
		}
		want := map[billing.EventKind]int{billing.EventSubscribed: 1, billing.EventActivated: min(paid, 1), billing.EventRenewed: max(paid-1, 0)}
		if sub.Status.Final() {
			want[billing.EventEnded] = 1
		}
		for _, k := range []billing.EventKind{billing.EventSubscribed, billing.EventActivated, billing.EventRenewed, billing.EventEnded} {
			if count[k] != want[k] {
				t.Fatalf("%s (%s, period %d): %d %s events, want %d: %v", m.subName(s.id), sub.Status, paid, count[k], k, want[k], kindsOf(evs))
			}
		}
		for p := 2; p <= paid; p++ {
			if renewed[p] != 1 {
				t.Fatalf("%s: %d renewed events for period %d", m.subName(s.id), renewed[p], p)
			}
		}
	}
}

// TestUsageThresholdsOff: a non-nil empty Config.UsageThresholds makes no usage events, and
// using the volume up still exhausts the subscription (TERMS 3.1).
func TestUsageThresholdsOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupEvents(t, func(c *billing.Config) { c.UsageThresholds = []int{} })
	sub := b.checkout(t, "c1", "tok-1")
	for i, q := range []int64{400, 100} {
		_, err := b.engine.Consume(ctx, sub.ID, "generations", q, fmt.Sprintf("k%d", i))
		require.NoError(t, err)
	}
	require.Equal(t, subscription.StatusExhausted, b.get(t, sub.ID).Status)
	require.Empty(t, b.delivered(t, sub.ID, billing.EventUsageThreshold))
}
