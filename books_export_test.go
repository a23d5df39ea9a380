package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/refund"
)

// Tests of the ledger's readers of issue 15: Books.TransactionList and Books.ExportCSV.

// postCharges posts n host charges of amount kopecks on the engine's clock, keys
// "<tag>-<i>", and returns the keys.
func postCharges(t *testing.T, b *billing.Books, tag string, n int, amount int64, at time.Time) []string {
	t.Helper()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("%s-%d", tag, i)
		tx, err := ledger.Charge(key, "pay-"+key, "RUB", amount+int64(i), at, ledger.WithMemo("host charge, \"quoted\", "+key))
		require.NoError(t, err)
		_, _, err = b.Post(context.Background(), tx)
		require.NoError(t, err)
		keys = append(keys, key)
	}
	return keys
}

// walkTransactions pages through Books.TransactionList with p, calling between after each
// page, and returns the keys in the order returned.
func walkTransactions(t *testing.T, b *billing.Books, p billing.LedgerTransactionListParams, between func()) []string {
	t.Helper()
	var keys []string
	var last billing.LedgerTransaction
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "the walk ends")
		page, err := b.TransactionList(context.Background(), p)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Transactions), p.Limit)
		for _, tx := range page.Transactions {
			require.False(t, tx.PostedAt.Before(p.From), "in range")
			require.True(t, tx.PostedAt.Before(p.To), "in range, To excluded")
			if last.ID != "" {
				require.True(t, last.PostedAt.Before(tx.PostedAt) || (last.PostedAt.Equal(tx.PostedAt) && last.ID < tx.ID),
					"(posted at, id) order")
			}
			last = tx
			keys = append(keys, tx.Transaction.Key)
		}
		if page.Next == "" {
			return keys
		}
		p.After = page.Next
		if between != nil {
			between()
		}
	}
}

func TestLedgerTransactionsPagination(t *testing.T) {
	t.Parallel()
	rb, sub := setupRefunds(t)
	books := rb.engine.Ledger()
	from, to := rb.msk(3, 1, 0), rb.msk(4, 1, 0)
	seeded := postCharges(t, books, "seed", 23, 10000, rb.clock.Now())
	rb.clock.Advance(time.Hour)
	seeded = append(seeded, postCharges(t, books, "later", 6, 500, rb.clock.Now())...)
	seeded = append(seeded, "payment:"+firstAttempt(t, rb.engine, sub.ID))

	added := 0
	got := walkTransactions(t, books, billing.LedgerTransactionListParams{From: from, To: to, Limit: 4}, func() {
		postCharges(t, books, fmt.Sprintf("between-%d", added), 1, 100, rb.clock.Now())
		added++
	})
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), len(got), "no transaction twice")
	for _, k := range seeded {
		require.Equal(t, 1, count(got, k), "every transaction of the range once: %s", k)
	}
	require.Greater(t, added, 5)

	t.Run("page of one transaction carries its period", func(t *testing.T) {
		page, err := books.TransactionList(context.Background(), billing.LedgerTransactionListParams{From: from, To: to, Limit: 1})
		require.NoError(t, err)
		require.Len(t, page.Transactions, 1)
		tx := page.Transactions[0]
		require.Equal(t, "payment:"+firstAttempt(t, rb.engine, sub.ID), tx.Transaction.Key, "the checkout charge was posted first")
		require.Equal(t, sub.ID, tx.SubscriptionID)
		require.Equal(t, 1, tx.Period)
		require.NotEmpty(t, page.Next)
	})
}

func firstAttempt(t *testing.T, e *billing.Engine, subID string) string {
	t.Helper()
	attempts, err := e.AttemptList(context.Background(), subID)
	require.NoError(t, err)
	require.NotEmpty(t, attempts)
	return attempts[0].ID
}

func count(keys []string, k string) int {
	n := 0
	for _, x := range keys {
		if x == k {
			n++
		}
	}
	return n
}

func TestLedgerTransactionsRangeIsHalfOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	books := b.engine.Ledger()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, b.moscow)
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	for i, at := range []time.Time{t0, t1, t2} {
		b.clock.Set(at)
		postCharges(t, books, fmt.Sprintf("t%d", i), 1, 1000, at)
	}
	keysIn := func(from, to time.Time) []string {
		return walkTransactions(t, books, billing.LedgerTransactionListParams{From: from, To: to, Limit: 10}, nil)
	}
	require.Equal(t, []string{"t0-0"}, keysIn(t0, t1), "To excluded")
	require.Equal(t, []string{"t1-0"}, keysIn(t1, t2), "From included")
	require.Equal(t, []string{"t0-0", "t1-0"}, keysIn(t0, t2))
	require.Equal(t, []string{"t0-0", "t1-0", "t2-0"}, keysIn(t0, t2.Add(time.Microsecond)))
	require.Empty(t, keysIn(t0.Add(time.Microsecond), t1), "From one microsecond after a posting excludes it")
	require.Equal(t, []string{"t1-0"}, keysIn(t1.In(time.UTC), t2.In(time.UTC)), "instants, whatever the location")

	var buf bytes.Buffer
	require.NoError(t, books.ExportCSV(context.Background(), &buf, t1, t2))
	records, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 1+2, "header and the two legs of t1-0 only")
	for _, r := range records[1:] {
		require.Equal(t, "t1-0", r[1])
		require.Equal(t, "2026-03-02T11:00:00+03:00", r[2], "posted at in the engine's location, RFC 3339")
	}
}

func TestLedgerExportCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rb, sub := setupRefunds(t)
	books := rb.engine.Ledger()
	// More than one internal page (exportPageSize is 500), many at one posted instant.
	postCharges(t, books, "bulk", 620, 99000, rb.clock.Now())
	// A refund and a reversal: other kinds, a period reference and a "reverses".
	r := rb.request(t, sub.ID, rb.msk(3, 5, 11), "r1")
	rb.verify(t, r.ID)
	_, err := rb.engine.ExecuteRefund(ctx, r.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
	require.NoError(t, err)
	orig, err := books.TransactionGet(ctx, "bulk-0")
	require.NoError(t, err)
	rev, err := ledger.Reverse(orig, "bulk-0-reversal", rb.clock.Now())
	require.NoError(t, err)
	_, _, err = books.Post(ctx, rev)
	require.NoError(t, err)

	var buf bytes.Buffer
	require.NoError(t, books.ExportCSV(ctx, &buf, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)))

	rd := csv.NewReader(&buf)
	header, err := rd.Read()
	require.NoError(t, err)
	require.Equal(t, billing.LedgerCSVHeader, header)
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}

	type sums struct{ debits, credits decimal.Decimal }
	perTx := map[string]map[string]*sums{} // transaction → currency → sums
	perAccount := map[string]*sums{}
	var txOrder []string
	rows := 0
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		rows++
		id := rec[col["transaction_id"]]
		if len(txOrder) == 0 || txOrder[len(txOrder)-1] != id {
			require.NotContains(t, txOrder, id, "the rows of a transaction come together")
			txOrder = append(txOrder, id)
		}
		debit, err := decimal.NewFromString(rec[col["debit"]])
		require.NoError(t, err)
		credit, err := decimal.NewFromString(rec[col["credit"]])
		require.NoError(t, err)
		require.Regexp(t, `^\d+\.\d{2}$`, rec[col["debit"]], "2 places, '.'")
		require.Regexp(t, `^\d+\.\d{2}$`, rec[col["credit"]])
		require.True(t, debit.IsZero() != credit.IsZero(), "one side per row")
		posted, err := time.Parse(time.RFC3339, rec[col["posted_at"]])
		require.NoError(t, err)
		_, offset := posted.Zone()
		require.Equal(t, 3*3600, offset, "Moscow time")
		if perTx[id] == nil {
			perTx[id] = map[string]*sums{}
		}
		cur := rec[col["currency"]]
		if perTx[id][cur] == nil {
			perTx[id][cur] = &sums{}
		}
		perTx[id][cur].debits = perTx[id][cur].debits.Add(debit)
		perTx[id][cur].credits = perTx[id][cur].credits.Add(credit)
		acc := rec[col["account"]]
		if perAccount[acc] == nil {
			perAccount[acc] = &sums{}
		}
		perAccount[acc].debits = perAccount[acc].debits.Add(debit)
		perAccount[acc].credits = perAccount[acc].credits.Add(credit)
		switch rec[col["key"]] {
		case "refund:" + r.ID:
			require.Equal(t, sub.ID, rec[col["subscription_id"]])
			require.Equal(t, "1", rec[col["period"]])
			require.Equal(t, "refund", rec[col["ref_kind"]])
		case "bulk-0-reversal":
			require.Equal(t, "bulk-0", rec[col["reverses"]])
		case "bulk-1":
			require.Equal(t, `host charge, "quoted", bulk-1`, rec[col["memo"]], "memo with commas and quotes parses back")
			require.Empty(t, rec[col["subscription_id"]])
		}
	}
	for id, byCur := range perTx {
		for cur, s := range byCur {
			require.True(t, s.debits.Equal(s.credits), "transaction %s balanced in %s: %s ≠ %s", id, cur, s.debits, s.credits)
		}
	}

	var entries, transactions int
	require.NoError(t, rb.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM billing_ledger_entries),
		(SELECT count(*) FROM billing_ledger_transactions)`).Scan(&entries, &transactions))
	require.Equal(t, entries, rows, "one row per entry")
	require.Equal(t, transactions, len(perTx))
	require.Greater(t, transactions, 600)

	tb, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	require.Len(t, perAccount, len(tb))
	for _, bal := range tb {
		s := perAccount[bal.Account.Code]
		require.NotNil(t, s, bal.Account.Code)
		require.True(t, s.debits.Equal(decimal.New(bal.Debits, -2)), "%s debits: csv %s, trial balance %d", bal.Account.Code, s.debits, bal.Debits)
		require.True(t, s.credits.Equal(decimal.New(bal.Credits, -2)), "%s credits", bal.Account.Code)
	}
}

// TestSubscriptionTransactionList: the ledger transactions of one subscription, as the
// console's subscription page shows them. Two periods paid (3.5), the first one's revenue
// recognized at its end, the second refunded (3.7); another customer's money, a host's own
// posting and an abandoned checkout's unapplied payment (money the provider took that no
// period can take, 3.3) around it.
func TestSubscriptionTransactionList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	books := b.engine.Ledger()
	sub := b.checkout(t, "c1", "tok-1")
	other := b.checkout(t, "c2", "tok-2")
	postCharges(t, books, "host", 1, 5000, b.clock.Now())
	abandoned := abandonedPaidCheckout(t, b, "c3", "tok-3")
	regRunFor(t, b, 31*24*time.Hour) // period 1 ends on 2 April: recognized, period 2 charged
	require.Equal(t, 2, b.get(t, sub.ID).Current.Number)
	req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelEmail, Text: "верните деньги", IdempotencyKey: "r1"})
	require.NoError(t, err)
	_, err = b.engine.VerifyRefund(ctx, req.ID, "admin:1")
	require.NoError(t, err)
	got, err := b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1"})
	require.NoError(t, err)
	require.Equal(t, refund.StateRefunded, got.State)

	attempts := regAttempts(t, b, sub.ID)
	require.Len(t, attempts, 2)
	list, err := books.SubscriptionTransactionList(ctx, sub.ID)
	require.NoError(t, err)
	period := map[string]int{}
	var keys []string
	for i, tx := range list {
		keys = append(keys, tx.Transaction.Key)
		period[tx.Transaction.Key] = tx.Period
		require.Equal(t, sub.ID, tx.SubscriptionID, tx.Transaction.Key)
		if i > 0 {
			prev := list[i-1]
			require.True(t, prev.PostedAt.Before(tx.PostedAt) || (prev.PostedAt.Equal(tx.PostedAt) && prev.ID < tx.ID), "(posted at, id) order")
		}
	}
	recognition := "recognition:" + sub.ID + "/1:1"
	require.ElementsMatch(t, []string{"payment:" + attempts[0].ID, recognition, "payment:" + attempts[1].ID, "refund:" + req.ID}, keys,
		"its two charges, period 1's revenue and period 2's refund; nobody else's money")
	require.Equal(t, "payment:"+attempts[0].ID, keys[0])
	require.Equal(t, "refund:"+req.ID, keys[3])
	require.Equal(t, map[string]int{"payment:" + attempts[0].ID: 1, recognition: 1, "payment:" + attempts[1].ID: 2, "refund:" + req.ID: 2}, period)
	require.Equal(t, []ledger.Posting{
		{Account: "deferred:RUB", Side: ledger.Debit, Amount: 99000, Currency: "RUB"},
		{Account: "provider:RUB", Side: ledger.Credit, Amount: 99000, Currency: "RUB"},
	}, list[3].Transaction.Postings, "3.7 the refund of a period not yet earned takes it back from deferred revenue")

	t.Run("an uppercase ID names the same subscription", func(t *testing.T) {
		upper, err := books.SubscriptionTransactionList(ctx, strings.ToUpper(sub.ID))
		require.NoError(t, err)
		require.Equal(t, list, upper)
	})

	t.Run("3.3 an unapplied payment and its refund belong to no period", func(t *testing.T) {
		unapplied, err := b.engine.UnappliedPaymentList(ctx, false)
		require.NoError(t, err)
		require.Len(t, unapplied, 1)
		require.Equal(t, billing.UnappliedRefunded, unapplied[0].State)
		list, err := books.SubscriptionTransactionList(ctx, abandoned.ID)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "unapplied:"+unapplied[0].AttemptID, list[0].Transaction.Key)
		require.Equal(t, "unapplied-refund:"+unapplied[0].ID, list[1].Transaction.Key)
		for _, tx := range list {
			require.Empty(t, tx.SubscriptionID)
			require.Zero(t, tx.Period)
		}
	})

	t.Run("another subscription lists its own", func(t *testing.T) {
		list, err := books.SubscriptionTransactionList(ctx, other.ID)
		require.NoError(t, err)
		for _, tx := range list {
			require.Equal(t, other.ID, tx.SubscriptionID)
		}
		require.Len(t, list, 3, "two charges and period 1's revenue")
	})

	t.Run("a pending subscription moved no money", func(t *testing.T) {
		pending := regSubscribe(t, b, "c4", "tok-4")
		list, err := books.SubscriptionTransactionList(ctx, pending.ID)
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("bad input and unknown subscriptions", func(t *testing.T) {
		_, err := books.SubscriptionTransactionList(ctx, "not-a-uuid")
		var ie *billing.InputError
		require.ErrorAs(t, err, &ie)
		require.True(t, ie.Has("subscriptionID"))
		_, err = books.SubscriptionTransactionList(ctx, "0190c3b6-0000-7000-8000-000000000000")
		require.ErrorIs(t, err, billing.ErrNotFound)
	})
}

// TestRevenueByMonth: revenue recognized per calendar month of a location, from the ledger's
// recognition entries, net of the earned part of refunds. Customer c1 (2 March) has 29 of
// its 31 days recognized on 31 March by RecognizeRevenue, then gets everything back
// (art. 32, overriding 3.7): the part already earned goes to refunded revenue in March. c2's
// first period is recognized whole at its end, 2 April. A host books 100 kopecks at 00:30
// on 1 April Moscow time (still March in UTC) and 7 more on 15 April, reversed the next day.
func TestRevenueByMonth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRenewals(t)
	msk := func(month time.Month, day, hour int) time.Time {
		return time.Date(2026, month, day, hour, 0, 0, 0, b.moscow)
	}
	books := b.engine.Ledger()
	c1 := b.checkout(t, "c1", "tok-1")
	b.checkout(t, "c2", "tok-2")
	regRunFor(t, b, 29*24*time.Hour) // 31 March 10:00
	require.NoError(t, b.engine.RecognizeRevenue(ctx, c1.ID, 1))
	earned, err := books.TransactionGet(ctx, "recognition:"+c1.ID+"/1:1")
	require.NoError(t, err)
	partial := earned.Postings[0].Amount
	require.InDelta(t, 99000*29/31, partial, 31, "29 of 31 days (kopecks split over the days)")
	req, err := b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: c1.ID, ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelEmail, Text: "отказываюсь от услуги", IdempotencyKey: "r1"})
	require.NoError(t, err)
	_, err = b.engine.VerifyRefund(ctx, req.ID, "admin:1")
	require.NoError(t, err)
	_, err = b.engine.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "admin:1", Override: true, OverrideReason: "ст. 32"})
	require.NoError(t, err)

	host := func(key string, amount int64, at time.Time) ledger.Transaction {
		tx, err := ledger.Recognize(key, "host-period", "RUB", amount, at)
		require.NoError(t, err)
		posted, _, err := books.Post(ctx, tx)
		require.NoError(t, err)
		return posted
	}
	host("host-1", 100, msk(4, 1, 0).Add(30*time.Minute))
	small := host("host-2", 7, msk(4, 15, 12))
	reversal, err := ledger.Reverse(small, "host-2-reversal", msk(4, 16, 12))
	require.NoError(t, err)
	_, _, err = books.Post(ctx, reversal)
	require.NoError(t, err)
	regRunFor(t, b, 20*24*time.Hour) // past 2 April: c2's period 1 recognized, period 2 paid

	got, err := books.RevenueByMonth(ctx, billing.RevenueByMonthParams{From: msk(3, 1, 0), To: msk(5, 1, 0)})
	require.NoError(t, err)
	require.Equal(t, []billing.MonthRevenue{
		{Month: msk(3, 1, 0), Currency: "RUB", Recognized: partial, Refunded: partial},
		{Month: msk(4, 1, 0), Currency: "RUB", Recognized: 99000 + 100},
	}, got, "months of the engine's location (Moscow)")
	require.Zero(t, got[0].Net(), "c1's March revenue was all given back")
	require.Equal(t, int64(99100), got[1].Net())
	require.Equal(t, b.moscow, got[0].Month.Location())

	utc, err := books.RevenueByMonth(ctx, billing.RevenueByMonthParams{From: msk(3, 1, 0), To: msk(5, 1, 0), Location: time.UTC})
	require.NoError(t, err)
	require.Len(t, utc, 2)
	require.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), utc[0].Month)
	require.Equal(t, partial+100, utc[0].Recognized, "00:30 on 1 April in Moscow is 21:30 on 31 March in UTC")
	require.Equal(t, int64(99000), utc[1].Recognized)

	part, err := books.RevenueByMonth(ctx, billing.RevenueByMonthParams{From: msk(3, 31, 9), To: msk(4, 2, 10)})
	require.NoError(t, err)
	require.Equal(t, []billing.MonthRevenue{
		{Month: msk(3, 1, 0), Currency: "RUB", Recognized: partial, Refunded: partial},
		{Month: msk(4, 1, 0), Currency: "RUB", Recognized: 100},
	}, part, "partial months: the range is of instants, half-open (c2's 99000 at 2 April 10:00 is out)")

	none, err := books.RevenueByMonth(ctx, billing.RevenueByMonthParams{From: msk(1, 1, 0), To: msk(3, 1, 0)})
	require.NoError(t, err)
	require.Empty(t, none)

	for name, p := range map[string]billing.RevenueByMonthParams{
		"no From":           {To: msk(5, 1, 0)},
		"no To":             {From: msk(3, 1, 0)},
		"To not after From": {From: msk(3, 1, 0), To: msk(3, 1, 0)},
		"To before From":    {From: msk(5, 1, 0), To: msk(3, 1, 0)},
	} {
		_, err := books.RevenueByMonth(ctx, p)
		var ie *billing.InputError
		require.ErrorAs(t, err, &ie, name)
		require.ErrorIs(t, err, billing.ErrInvalidInput, name)
	}
}
