package billing

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

// The ledger's readers for an accountant (issue 15): transactions by the date they were
// posted, page by page, and the same as a CSV file to import into accounting software; and
// for an operator (issue 16), the transactions of one subscription.
// Both select by posted time (when the engine wrote the transaction, on its clock), not by
// the transaction's At (when the money moved): posted time only grows as transactions are
// written, so a range that is over gets no new transaction and an export of it can be
// repeated and gives the same rows. At is in every row, for the accountant's own dating.

// LedgerTransaction is a posted ledger transaction as Books.TransactionList and
// Books.SubscriptionTransactionList list it.
type LedgerTransaction struct {
	// ID is the transaction's row ID (a UUIDv7), the "transaction_id" of the CSV export.
	ID string
	// PostedAt is when the engine wrote it, on the engine clock; the ranges of
	// Books.TransactionList and Books.ExportCSV select by it.
	PostedAt time.Time
	// SubscriptionID and Period name the paid period the money belongs to (a charge, its
	// refund, its revenue recognitions); empty and 0 for money of no period (an unapplied
	// payment and its refund, a host's own postings).
	SubscriptionID string
	// Period is the number of that period (1 for the first); 0 with no SubscriptionID.
	Period int
	// Transaction is the transaction as posted: key, reference, the key it reverses, memo,
	// At (when the money moved) and its postings in order, amounts in minor units.
	Transaction ledger.Transaction
}

// LedgerTransactionListParams selects a page of ledger transactions for Books.TransactionList.
type LedgerTransactionListParams struct {
	// From and To bound the posted time, half-open: From ≤ PostedAt < To. Both are
	// required and From must be before To. Any location: instants are compared. Trap: a
	// range ending at now may still gain transactions being written (a transaction is
	// committed a moment after its posted time); a walk of such a range can miss them.
	// Export ranges that are over.
	From, To time.Time
	// After is the cursor: the previous page's Next. Empty starts at From. It is opaque;
	// anything but a Next is an *InputError. Trap: keep From and To the same along a walk.
	After string
	// Limit is the page size in transactions (each with all its postings). Defaults to
	// PageLimitDefault (100) when 0; at most PageLimitMax (1000); negative or more is an
	// *InputError.
	Limit int
}

// LedgerTransactionPage is one page of Books.TransactionList.
type LedgerTransactionPage struct {
	// Transactions are the page's transactions by posted time, then ID.
	Transactions []LedgerTransaction
	// Next is the cursor of the next page (pass it as After); empty when no transaction of
	// the range came after this page when it was read.
	Next string
}

// TransactionList returns a page of the transactions posted in [p.From, p.To), by posted time
// then ID, each with its postings. A walk (each Next as the following After) returns every
// transaction of a range that is over exactly once. Each page is one index range scan of
// (posted_at, id) that stops after Limit rows (migration 0012), read in one snapshot.
func (b *Books) TransactionList(ctx context.Context, p LedgerTransactionListParams) (_ LedgerTransactionPage, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.TransactionList")
	defer span.end(&err)
	const op = "Ledger.TransactionList"
	check := inputCheck{op: op}
	check.timeRange("From", "To", p.From, p.To)
	var afterPosted time.Time
	var afterID string
	if p.After != "" {
		var err error
		if afterPosted, afterID, err = parseLedgerCursor(p.After); err != nil {
			check.add("After", err.Error())
		}
	}
	limit := check.limit("Limit", p.Limit)
	if err := check.err(); err != nil {
		return LedgerTransactionPage{}, err
	}
	var rows []store.LedgerTxRow
	err = store.ReadSnapshot(ctx, b.e.pool, func(tx pgx.Tx) error {
		var err error
		rows, err = store.PageLedgerTransactions(ctx, tx, p.From, p.To, afterPosted, afterID, limit+1)
		return err
	})
	if err != nil {
		return LedgerTransactionPage{}, opError(op, err)
	}
	var out LedgerTransactionPage
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		out.Next = ledgerCursor(last.PostedAt, last.ID)
	}
	out.Transactions = make([]LedgerTransaction, len(rows))
	for i, r := range rows {
		out.Transactions[i] = ledgerTransactionOf(r)
	}
	return out, nil
}

// SubscriptionTransactionList returns the ledger transactions of one subscription, by posted
// time then ID (the order of TransactionList), each with its postings:
//   - those of its paid periods: each period's charge (Dr provider, Cr deferred), the refund
//     of it, its revenue recognitions, and any reversal the engine posted for the period;
//     SubscriptionID and Period name the period;
//   - its unapplied payments (a charge no period could take: Dr provider, Cr
//     refunds_payable) and their refunds through the gateway; these belong to no period, so
//     SubscriptionID is empty and Period 0, as TransactionList shows them.
//
// Transactions a host posted itself with Post or PostTx belong to no subscription and are
// not here. A subscription that moved no money (pending, or on a free tariff) has none: an
// empty slice, no error. A subscriptionID that is not a UUID is an *InputError; one that
// names no subscription is ErrNotFound.
//
// It is read in one snapshot, and costs one index probe per paid period and per unapplied
// payment of the subscription, whatever the size of the ledger (no paging: a subscription
// posts a few transactions per period).
func (b *Books) SubscriptionTransactionList(ctx context.Context, subscriptionID string) (_ []LedgerTransaction, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.SubscriptionTransactionList", subAttr(subscriptionID))
	defer span.end(&err)
	const op = "Ledger.SubscriptionTransactionList"
	check := inputCheck{op: op}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return nil, err
	}
	var rows []store.LedgerTxRow
	err = store.ReadSnapshot(ctx, b.e.pool, func(tx pgx.Tx) error {
		if _, err := store.SubscriptionCurrentPeriod(ctx, tx, subscriptionID); err != nil {
			return err
		}
		var err error
		rows, err = store.SubscriptionLedgerTransactions(ctx, tx, subscriptionID)
		return err
	})
	if err != nil {
		return nil, opError(op+" "+subscriptionID, err)
	}
	out := make([]LedgerTransaction, len(rows))
	for i, r := range rows {
		out[i] = ledgerTransactionOf(r)
	}
	return out, nil
}

// RevenueByMonthParams selects the months of Books.RevenueByMonth.
type RevenueByMonthParams struct {
	// From and To bound the instants the revenue was booked at (the transactions' At),
	// half-open: From ≤ At < To. Both are required and From must be before To. For whole
	// months pass the first instant of a month in Location (00:00 of its first day); any
	// other instant makes the first or last month partial.
	From, To time.Time
	// Location is where a month begins and ends. Defaults to the engine's Location
	// (Config.Location, Europe/Moscow unless configured). Trap: a recognition booked at
	// 00:30 on 1 April in Moscow is March's revenue in UTC.
	Location *time.Location
}

// MonthRevenue is the revenue of one calendar month in one currency, in minor units.
type MonthRevenue struct {
	// Month is the first instant of the month in the Location asked (00:00 of day 1).
	Month time.Time
	// Currency is the ISO 4217 code of the amounts.
	Currency string
	// Recognized is the revenue recognized in the month: what revenue:<currency> was
	// credited (by the recognitions of paid periods, ledger.Recognize), less what was
	// debited (by reversals of them). Gross of refunds.
	Recognized int64
	// Refunded is the earned revenue given back in the month: what refunds debited to
	// refunded_revenue:<currency> (the part of a refund beyond what was still deferred,
	// ledger.RecognizedPartOfRefund), less reversals of them.
	Refunded int64
}

// Net is the month's revenue net of refunds: Recognized − Refunded.
func (m MonthRevenue) Net() int64 { return m.Recognized - m.Refunded }

// RevenueByMonth returns the revenue recognized per calendar month of p.Location in
// [p.From, p.To), per currency: by month, then currency. A month in which nothing was
// posted to the revenue or refunded revenue account of a currency has no row for it, so a
// range with no revenue is an empty slice. Bad input (a zero From or To, From not before
// To) is an *InputError.
//
// Revenue is booked when the engine's recognition job runs at a period's end (or when a
// refund or Engine.RecognizeRevenue cuts it short), straight-line over the period's days:
// a month holds the periods that ended in it, not their days. Call Engine.RecognizeRevenue
// for the periods still running to book their days up to a month's close.
//
// It reads, in one statement, the entries of the revenue and refunded_revenue accounts of
// each currency in the range: one range of the (account, at) index per account. Its cost
// grows with the recognitions of the range (one per paid period that ended in it; a
// million monthly subscriptions post a million a month): ask for the months you show.
func (b *Books) RevenueByMonth(ctx context.Context, p RevenueByMonthParams) (_ []MonthRevenue, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.RevenueByMonth")
	defer span.end(&err)
	const op = "Ledger.RevenueByMonth"
	check := inputCheck{op: op}
	check.timeRange("From", "To", p.From, p.To)
	if err := check.err(); err != nil {
		return nil, err
	}
	loc := p.Location
	if loc == nil {
		loc = b.e.loc
	}
	// The buckets: From, the start of every month after it and before To, To.
	bounds := []time.Time{p.From}
	for m := monthStart(p.From, loc).AddDate(0, 1, 0); m.Before(p.To); m = m.AddDate(0, 1, 0) {
		bounds = append(bounds, m)
	}
	bounds = append(bounds, p.To)
	sums, err := store.LedgerBucketSums(ctx, b.e.pool, []string{string(ledger.Revenue), string(ledger.RefundedRevenue)}, bounds)
	if err != nil {
		return nil, opError(op, err)
	}
	var out []MonthRevenue
	index := map[string]int{} // "<bucket>/<currency>" → its row in out
	for _, s := range sums {
		if s.Bucket < 1 || s.Bucket >= len(bounds) {
			return nil, opError(op, fmt.Errorf("entries of %s outside the range asked (bucket %d)", s.Currency, s.Bucket))
		}
		k := strconv.Itoa(s.Bucket) + "/" + s.Currency
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, MonthRevenue{Month: monthStart(bounds[s.Bucket-1], loc), Currency: s.Currency})
		}
		switch ledger.Role(s.Role) {
		case ledger.Revenue:
			out[i].Recognized += s.Credits - s.Debits
		case ledger.RefundedRevenue:
			out[i].Refunded += s.Debits - s.Credits
		}
	}
	slices.SortFunc(out, func(x, y MonthRevenue) int {
		return cmp.Or(x.Month.Compare(y.Month), strings.Compare(x.Currency, y.Currency))
	})
	return out, nil
}

// monthStart is 00:00 of the first day of t's month in loc.
func monthStart(t time.Time, loc *time.Location) time.Time {
	y, m, _ := t.In(loc).Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

// LedgerCSVHeader is the header row of Books.ExportCSV, one column each:
//   - transaction_id: the transaction's ID (LedgerTransaction.ID); the rows of one
//     transaction come together, in posting order;
//   - key: its idempotency key ("payment:<attempt>", "refund:<request>"…);
//   - posted_at: when it was written, RFC 3339 to the second in the engine's Location
//     (Config.Location: "2026-03-02T10:00:00+03:00");
//   - at: when the money moved (ledger.Transaction.At), the same format;
//   - ref_kind, ref_id: what caused it (payment, refund, recognition, adjustment; the
//     provider payment ID, the refund request ID, the period…);
//   - reverses: the key of the transaction it reverses, empty when none;
//   - subscription_id, period: the paid period the money belongs to, empty when none;
//   - account: the chart code ("provider:RUB", "deferred:RUB"…);
//   - currency: ISO 4217 code of the amounts;
//   - debit, credit: the amount on its side and zero on the other, as a decimal in major
//     units with the currency's minor-unit places (2 for RUB, USD, EUR…; 0 for JPY), "."
//     as the decimal separator, no thousands separator, no sign: "990.00" and "0.00";
//   - memo: the transaction's description, as posted.
var LedgerCSVHeader = []string{"transaction_id", "key", "posted_at", "at", "ref_kind", "ref_id", "reverses",
	"subscription_id", "period", "account", "currency", "debit", "credit", "memo"}

// exportPageSize is how many transactions ExportCSV reads per statement.
const exportPageSize = 500

// ExportCSV writes to w the postings of every transaction posted in [from, to) (by posted
// time, half-open, as Books.TransactionList), one row per posting after a header row
// (LedgerCSVHeader says each column), by posted time, then transaction, then posting
// order. The debits and credits of each transaction are equal per currency. It writes
// RFC 4180 CSV through encoding/csv: comma-separated, fields quoted when needed, "\n" line
// ends, UTF-8 without a byte-order mark.
//
// It streams: it reads 500 transactions at a time (keyset pages on
// (posted_at, id)), writes and flushes them before reading on, so memory stays flat
// whatever the range. All pages are read in one REPEATABLE READ snapshot, so the file is
// one consistent state of the books even while postings go on (a long export holds that
// snapshot, and vacuum waits for it).
//
// Bad input (zero from or to, from not before to, nil w) is an *InputError and nothing is
// written. An error of w or of the database stops the export; what was written before
// stays in w, so write to a temporary file and keep it only on nil.
//
// Traps: a spreadsheet in a Russian locale expects ";" and "," and must be told the
// separators on import. A memo is written as posted: one that begins with "=", "+", "-" or
// "@" may be taken for a formula by a spreadsheet (not by an accounting import).
func (b *Books) ExportCSV(ctx context.Context, w io.Writer, from, to time.Time) (err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.ExportCSV")
	defer span.end(&err)
	const op = "Ledger.ExportCSV"
	check := inputCheck{op: op}
	check.timeRange("from", "to", from, to)
	if w == nil {
		check.add("w", "required: where the CSV is written")
	}
	if err := check.err(); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(LedgerCSVHeader); err != nil {
		return opError(op, err)
	}
	loc := b.e.loc
	err = store.ReadSnapshot(ctx, b.e.pool, func(tx pgx.Tx) error {
		var afterPosted time.Time
		var afterID string
		for {
			rows, err := store.PageLedgerTransactions(ctx, tx, from, to, afterPosted, afterID, exportPageSize)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := writeLedgerCSV(cw, ledgerTransactionOf(r), loc); err != nil {
					return err
				}
			}
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			if len(rows) < exportPageSize {
				return nil
			}
			last := rows[len(rows)-1]
			afterPosted, afterID = last.PostedAt, last.ID
		}
	})
	if err != nil {
		return opError(op, err)
	}
	return nil
}

// writeLedgerCSV writes the rows of one transaction.
func writeLedgerCSV(cw *csv.Writer, t LedgerTransaction, loc *time.Location) error {
	period := ""
	if t.Period > 0 {
		period = strconv.Itoa(t.Period)
	}
	for _, p := range t.Transaction.Postings {
		cur, err := money.Lookup(p.Currency)
		if err != nil {
			return fmt.Errorf("transaction %s: %w", t.Transaction.Key, err)
		}
		amount, zero := cur.FromMinor(p.Amount).StringFixed(cur.Exponent), cur.FromMinor(0).StringFixed(cur.Exponent)
		debit, credit := amount, zero
		if p.Side == ledger.Credit {
			debit, credit = zero, amount
		}
		if err := cw.Write([]string{t.ID, t.Transaction.Key, t.PostedAt.In(loc).Format(time.RFC3339),
			t.Transaction.At.In(loc).Format(time.RFC3339), string(t.Transaction.Ref.Kind), t.Transaction.Ref.ID,
			t.Transaction.Reverses, t.SubscriptionID, period, p.Account, p.Currency, debit, credit, t.Transaction.Memo}); err != nil {
			return err
		}
	}
	return nil
}

// ledgerTransactionOf is the API's view of a stored transaction.
func ledgerTransactionOf(r store.LedgerTxRow) LedgerTransaction {
	out := LedgerTransaction{ID: r.ID, PostedAt: r.PostedAt, Transaction: r.Tx}
	if sub, n, ok := strings.Cut(r.PeriodID, "/"); ok {
		if number, err := strconv.Atoi(n); err == nil {
			out.SubscriptionID, out.Period = sub, number
		}
	}
	return out
}

// ledgerCursor is the cursor after the transaction (posted, id): "<posted_at in Unix
// microseconds>_<id>". PostgreSQL keeps microseconds, so the cursor is exact.
func ledgerCursor(posted time.Time, id string) string {
	return strconv.FormatInt(posted.UnixMicro(), 10) + "_" + id
}

// errBadCursor is the problem of an After that no page returned as Next.
var errBadCursor = errors.New("not a cursor returned as Next")

// parseLedgerCursor reads a cursor made by ledgerCursor.
func parseLedgerCursor(c string) (time.Time, string, error) {
	micros, id, ok := strings.Cut(c, "_")
	if !ok {
		return time.Time{}, "", errBadCursor
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}, "", errBadCursor
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return time.Time{}, "", errBadCursor
	}
	return time.UnixMicro(us), id, nil
}

// timeRange checks a half-open range [from, to) of instants.
func (c *inputCheck) timeRange(fromField, toField string, from, to time.Time) {
	if from.IsZero() {
		c.add(fromField, "required: the start of the range (included)")
	}
	if to.IsZero() {
		c.add(toField, "required: the end of the range (excluded)")
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		c.add(toField, "must be after "+fromField)
	}
}
