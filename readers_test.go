package billing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// Tests of the readers of issue 15: Periods, Subscriptions, AttemptHistory, RefundHistory
// (the ledger's readers are in books_export_test.go).

func TestReadersPeriodsKeepTheirTerms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	sub := b.checkout(t, "c1", "tok-1")
	b.clock.Advance(10 * 24 * time.Hour)
	_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "pro", Name: "pro", Price: decimal.NewFromInt(1290),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 800}}})
	require.NoError(t, err)
	_, err = b.engine.Consume(ctx, sub.ID, "generations", 7, "use-1")
	require.NoError(t, err)
	_, err = b.runner.RunUntil(ctx, sub.Current.End.Add(time.Hour))
	require.NoError(t, err)

	periods, err := b.engine.PeriodList(ctx, sub.ID)
	require.NoError(t, err)
	require.Len(t, periods, 2)

	p1, p2 := periods[0], periods[1]
	require.Equal(t, 1, p1.Period.Number)
	require.False(t, p1.Current)
	require.True(t, p1.Period.Terms.Price.Equal(decimal.NewFromInt(990)), "2.1.6: period 1 keeps the price it was paid at")
	require.Equal(t, 1, p1.Period.Terms.Version)
	require.Equal(t, "RUB", p1.Period.Terms.Currency)
	require.Equal(t, []tariff.Limit{{Meter: "generations", Quantity: 500}}, p1.Period.Terms.Limits, "2.1.6: and its limits")
	require.Equal(t, tariff.Period{Count: 1, Unit: tariff.Month}, p1.Period.Terms.Period)
	require.Equal(t, int64(7), p1.Period.Usage["generations"].Used)
	require.NotNil(t, p1.Charge)
	require.Equal(t, int64(99000), p1.Charge.Amount)
	require.Equal(t, payment.StateSucceeded, p1.Charge.State)
	require.False(t, p1.Charge.SettledAt.IsZero(), "paid-at")
	require.NotEmpty(t, p1.Charge.ProviderPaymentID)
	require.Nil(t, p1.Refund)

	require.Equal(t, 2, p2.Period.Number)
	require.True(t, p2.Current)
	require.True(t, p2.Period.Terms.Price.Equal(decimal.NewFromInt(1290)))
	require.Equal(t, 2, p2.Period.Terms.Version)
	require.Equal(t, []tariff.Limit{{Meter: "generations", Quantity: 800}}, p2.Period.Terms.Limits)
	require.Equal(t, p1.Period.End, p2.Period.Start)
	require.NotNil(t, p2.Charge)
	require.Equal(t, int64(129000), p2.Charge.Amount)

	// The current period as Get returns it is the last one Periods lists.
	got := b.get(t, sub.ID)
	require.Equal(t, got.Current.Number, p2.Period.Number)
	require.True(t, got.Current.Terms.Price.Equal(p2.Period.Terms.Price))

	t.Run("pending: no periods", func(t *testing.T) {
		pending, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", IdempotencyKey: "sub-c2"})
		require.NoError(t, err)
		periods, err := b.engine.PeriodList(ctx, pending.ID)
		require.NoError(t, err)
		require.Empty(t, periods)
	})
	t.Run("missing: ErrNotFound", func(t *testing.T) {
		_, err := b.engine.PeriodList(ctx, uuid.Must(uuid.NewV7()).String())
		require.ErrorIs(t, err, billing.ErrNotFound)
	})
}

func TestReadersPeriodsShowTheRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, sub := setupRefunds(t)
	r := b.request(t, sub.ID, b.msk(3, 5, 11), "r1")
	b.verify(t, r.ID)
	_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
	require.NoError(t, err)
	periods, err := b.engine.PeriodList(ctx, sub.ID)
	require.NoError(t, err)
	require.Len(t, periods, 1)
	require.NotNil(t, periods[0].Refund)
	require.Equal(t, r.ID, periods[0].Refund.ID)
	require.EqualValues(t, "refunded", periods[0].Refund.State)
	require.NotNil(t, periods[0].Charge, "the refunded charge stays the period's charge")
}

// subscribeN makes n subscriptions of customer on "pro", the even ones confirmed (active),
// the odd ones left pending, and returns their IDs.
func subscribeN(t *testing.T, b *testBundle, customer string, n int, tag string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range n {
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
			IdempotencyKey: fmt.Sprintf("sub-%s-%s-%d", customer, tag, i)})
		require.NoError(t, err)
		if i%2 == 0 {
			_, err = b.engine.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{ProviderPaymentID: "pay-" + sub.ID,
				Amount: sub.Checkout.Price, Currency: sub.Checkout.Currency})
			require.NoError(t, err)
		}
		ids = append(ids, sub.ID)
	}
	return ids
}

// walkSubscriptions pages through Subscriptions with p, calling between after each page,
// and returns the IDs in the order returned.
func walkSubscriptions(t *testing.T, e *billing.Engine, p billing.SubscriptionListParams, between func()) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "the walk ends")
		page, err := e.SubscriptionList(context.Background(), p)
		require.NoError(t, err)
		if p.Limit > 0 {
			require.LessOrEqual(t, len(page.Subscriptions), p.Limit)
		}
		for _, s := range page.Subscriptions {
			ids = append(ids, s.ID)
			if p.Status != "" {
				require.Equal(t, p.Status, s.Status)
			}
			if p.CustomerID != "" {
				require.Equal(t, p.CustomerID, s.CustomerID)
			}
			if s.Status == subscription.StatusActive {
				require.NotNil(t, s.Current, "each with its current period")
			}
		}
		if page.Next == "" {
			return ids
		}
		require.Equal(t, page.Subscriptions[len(page.Subscriptions)-1].ID, page.Next)
		p.After = page.Next
		if between != nil {
			between()
		}
	}
}

func TestReadersSubscriptionsPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "generations", 500)
	before := map[string][]string{}
	for _, c := range []string{"c1", "c2", "c3"} {
		before[c] = subscribeN(t, b, c, 9, "seed")
	}
	var all []string
	for _, ids := range before {
		all = append(all, ids...)
	}
	slices.Sort(all)

	t.Run("a walk returns every row once, in ID order, whatever is inserted between pages", func(t *testing.T) {
		added := 0
		got := walkSubscriptions(t, b.engine, billing.SubscriptionListParams{Limit: 4}, func() {
			// Inserts between pages, and one racing the next page.
			subscribeN(t, b, "c-new", 1, fmt.Sprintf("between-%d", added))
			added++
			key := fmt.Sprintf("race-%d", added) // read here: the goroutine outlives this call, and added moves on
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c-race", TariffCode: "pro",
					IdempotencyKey: key})
			}()
			t.Cleanup(func() { <-done })
		})
		require.True(t, slices.IsSorted(got), "ID order")
		require.Len(t, slices.Compact(slices.Clone(got)), len(got), "no row twice")
		for _, id := range all {
			require.Contains(t, got, id, "every row that existed before the walk")
		}
		require.Greater(t, added, 5)
	})

	t.Run("filters", func(t *testing.T) {
		active := walkSubscriptions(t, b.engine, billing.SubscriptionListParams{Status: subscription.StatusActive, CustomerID: "c2", Limit: 2}, nil)
		var want []string
		for i, id := range before["c2"] {
			if i%2 == 0 {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		require.Equal(t, want, active)

		c1 := walkSubscriptions(t, b.engine, billing.SubscriptionListParams{CustomerID: "c1", Limit: 3}, nil)
		want = slices.Clone(before["c1"])
		slices.Sort(want)
		require.Equal(t, want, c1)

		pending := walkSubscriptions(t, b.engine, billing.SubscriptionListParams{Status: subscription.StatusPending}, nil)
		for _, c := range []string{"c1", "c2", "c3"} {
			for i, id := range before[c] {
				require.Equal(t, i%2 == 1, slices.Contains(pending, id), "pending iff not confirmed")
			}
		}

		none, err := b.engine.SubscriptionList(ctx, billing.SubscriptionListParams{CustomerID: "nobody"})
		require.NoError(t, err)
		require.Empty(t, none.Subscriptions)
		require.Empty(t, none.Next)
	})

	t.Run("default limit 100, Next empty on the last page", func(t *testing.T) {
		page, err := b.engine.SubscriptionList(ctx, billing.SubscriptionListParams{})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Subscriptions), billing.PageLimitDefault)
		require.Empty(t, page.Next, "fewer than 100 rows: one page")
		exact, err := b.engine.SubscriptionList(ctx, billing.SubscriptionListParams{CustomerID: "c1", Limit: 9})
		require.NoError(t, err)
		require.Len(t, exact.Subscriptions, 9)
		require.Empty(t, exact.Next, "a full last page has no Next")
	})
}

// rowCounts sums the rows of every billing table and River's jobs: a reader refused for bad
// input must leave it unchanged.
func rowCounts(t *testing.T, b *testBundle) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM billing_subscriptions) + (SELECT count(*) FROM billing_periods) +
		(SELECT count(*) FROM billing_audit_log) + (SELECT count(*) FROM billing_ledger_transactions) +
		(SELECT count(*) FROM billing_ledger_entries) + (SELECT count(*) FROM billing_payment_attempts) +
		(SELECT count(*) FROM billing_refund_requests) + (SELECT count(*) FROM billing_idempotency_keys) +
		(SELECT count(*) FROM `+riverJob+`)`).Scan(&n))
	return n
}

func TestReadersBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rb, _ := setupRefunds(t)
	e := rb.engine
	from := rb.msk(3, 1, 0)
	to := rb.msk(4, 1, 0)
	for _, tc := range []struct {
		name  string
		field string
		call  func() error
	}{
		{"Subscriptions: unknown status", "Status", func() error {
			_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{Status: "paused"})
			return err
		}},
		{"Subscriptions: negative limit", "Limit", func() error {
			_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{Limit: -1})
			return err
		}},
		{"Subscriptions: limit above 1000", "Limit", func() error {
			_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{Limit: billing.PageLimitMax + 1})
			return err
		}},
		{"Subscriptions: malformed cursor", "After", func() error {
			_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{After: "page-2"})
			return err
		}},
		{"Transactions: no From", "From", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{To: to})
			return err
		}},
		{"Transactions: no To", "To", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from})
			return err
		}},
		{"Transactions: empty range (To = From)", "To", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from, To: from})
			return err
		}},
		{"Transactions: malformed cursor (no separator)", "After", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from, To: to, After: "123"})
			return err
		}},
		{"Transactions: malformed cursor (bad id)", "After", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from, To: to, After: "1772434800000000_x"})
			return err
		}},
		{"Transactions: malformed cursor (bad time)", "After", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from, To: to,
				After: "x_" + uuid.Must(uuid.NewV7()).String()})
			return err
		}},
		{"Transactions: limit above 1000", "Limit", func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: from, To: to, Limit: 5000})
			return err
		}},
		{"ExportCSV: to before from", "to", func() error {
			var buf bytes.Buffer
			err := e.Ledger().ExportCSV(ctx, &buf, to, from)
			require.Zero(t, buf.Len(), "nothing written to w")
			return err
		}},
		{"ExportCSV: nil writer", "w", func() error { return e.Ledger().ExportCSV(ctx, nil, from, to) }},
		{"Periods: not a UUID", "subscriptionID", func() error {
			_, err := e.PeriodList(ctx, "sub-1")
			return err
		}},
		{"AttemptHistory: not a UUID", "attemptID", func() error {
			_, err := e.AttemptHistoryGet(ctx, "")
			return err
		}},
		{"RefundHistory: not a UUID", "requestID", func() error {
			_, err := e.RefundHistoryGet(ctx, "r1")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rowCounts(t, rb.testBundle)
			err := tc.call()
			require.ErrorIs(t, err, billing.ErrInvalidInput)
			var ie *billing.InputError
			require.True(t, errors.As(err, &ie), "%v", err)
			require.True(t, ie.Has(tc.field), "%v names %s", err, tc.field)
			require.Equal(t, before, rowCounts(t, rb.testBundle), "nothing written")
		})
	}
	t.Run("every bad field at once", func(t *testing.T) {
		_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{Status: "x", After: "y", Limit: -5})
		var ie *billing.InputError
		require.True(t, errors.As(err, &ie))
		require.True(t, ie.Has("Status") && ie.Has("After") && ie.Has("Limit"), "%v", err)
	})
}

// historyActions returns the actions of entries in order.
func historyActions(entries []billing.HistoryEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Action
	}
	return out
}

// requireOrdered checks that entries are in time order.
func requireOrdered(t *testing.T, entries []billing.HistoryEntry) {
	t.Helper()
	for i := 1; i < len(entries); i++ {
		require.False(t, entries[i].At.Before(entries[i-1].At), "entry %d (%s) before entry %d (%s)",
			i, entries[i].Action, i-1, entries[i-1].Action)
	}
}

func TestReadersAttemptHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	paid := b.checkout(t, "c1", "tok-1")
	b.gateway.Script("tok-2", billingtest.HardDecline)
	b.clock.Advance(time.Minute)
	declined := b.checkout(t, "c2", "tok-2")

	t.Run("a paid checkout: created, sent, succeeded, its ledger posting", func(t *testing.T) {
		attempts, err := b.engine.AttemptList(ctx, paid.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		h, err := b.engine.AttemptHistoryGet(ctx, attempts[0].ID)
		require.NoError(t, err)
		require.Equal(t, attempts[0], h.Attempt)
		require.Equal(t, []string{"attempt.created", "attempt.sent", "attempt.succeeded", "ledger.payment"}, historyActions(h.Entries))
		requireOrdered(t, h.Entries)
		require.Equal(t, billing.HistoryLedger, h.Entries[3].Source)
		require.Equal(t, "payment:"+attempts[0].ID, h.Entries[3].Detail["key"])
	})
	t.Run("a declined checkout: created, sent, declined with the provider's words", func(t *testing.T) {
		attempts, err := b.engine.AttemptList(ctx, declined.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		h, err := b.engine.AttemptHistoryGet(ctx, attempts[0].ID)
		require.NoError(t, err)
		require.Equal(t, []string{"attempt.created", "attempt.sent", "attempt." + string(payment.StateHardDeclined)}, historyActions(h.Entries))
		require.NotEmpty(t, h.Entries[2].Reason)
		requireOrdered(t, h.Entries)
	})
	t.Run("missing: ErrNotFound", func(t *testing.T) {
		_, err := b.engine.AttemptHistoryGet(ctx, uuid.Must(uuid.NewV7()).String())
		require.ErrorIs(t, err, billing.ErrNotFound)
	})
}

func TestReadersRefundHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, sub := setupRefunds(t)
	received := b.msk(3, 5, 11)
	r := b.request(t, sub.ID, received, "r1")
	b.clock.Advance(time.Hour)
	b.verify(t, r.ID)
	b.clock.Advance(time.Hour)
	_, err := b.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
	require.NoError(t, err)
	// Another request of another subscription: not in this one's history.
	other := b.activeSubscription(t, "c9", "pro")
	b.request(t, other.ID, b.clock.Now(), "r9")

	h, err := b.engine.RefundHistoryGet(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, r.ID, h.Request.ID)
	require.EqualValues(t, "refunded", h.Request.State)
	got := historyActions(h.Entries)
	require.Equal(t, "refund.received", got[0])
	require.True(t, h.Entries[0].At.Equal(received))
	require.Equal(t, "ledger.refund", got[len(got)-1])
	require.Equal(t, "refund:"+r.ID, h.Entries[len(got)-1].Detail["key"])
	order := []string{"refund.requested", "refund.verified", "refund.executing"}
	for i := 1; i < len(order); i++ {
		require.Less(t, slices.Index(got, order[i-1]), slices.Index(got, order[i]), "%v", got)
	}
	require.Greater(t, slices.Index(got, "refund.executing"), 0)
	for _, e := range h.Entries {
		if e.Source == billing.HistoryAudit {
			require.Equal(t, r.ID, e.Detail["request"], "only entries about this request")
		}
	}
	require.Equal(t, "admin:1", h.Entries[slices.Index(got, "refund.verified")].Actor)
	requireOrdered(t, h.Entries)
	require.True(t, slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "refund.succeeded") }), "%v", got)

	_, err = b.engine.RefundHistoryGet(ctx, uuid.Must(uuid.NewV7()).String())
	require.ErrorIs(t, err, billing.ErrNotFound)
}
