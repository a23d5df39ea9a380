package billing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/subscription"
)

// The engine's ledger: the pure package ledger decides what a transaction is and whether it
// is valid; this file posts it into PostgreSQL (tables of migration 0005) and reads it back.
//
// Invariants kept here and by the database together:
//   - A transaction is written whole or not at all, in the caller's transaction (PostTx, and
//     the engine's own commands through e.post) or as one statement of its own (Post).
//   - Bad input (every case ledger.Validate refuses: unbalanced, zero or negative amount,
//     currency other than the account's, unknown account…) is refused before any write.
//   - Keys are idempotency keys: the same key with the same ledger.Fingerprint returns the
//     first transaction (replayed = true); with another fingerprint it is
//     ErrIdempotencyConflict, which also matches ledger.ErrKeyReused.
//   - The database refuses UPDATE, DELETE and TRUNCATE on transactions and entries, entries of
//     amount ≤ 0, an entry in another currency than its account's, and any INSERT statement
//     that leaves a transaction unbalanced.
//
// Balances are computed from the entries, not kept in a balance row per account. Every
// payment of a currency touches provider:<cur> and deferred:<cur>; a balance row would make
// each payment's transaction hold those two row locks until it commits, so all payments, and
// the renewal workers behind them, would queue one behind the other. Measured
// (BenchmarkLedgerPostTwoLeg, BENCHMARKS.md "Ledger"): posting inside a command costs ~1.0 ms
// with computed balances against 1.8–2.8 ms with balance rows, and 8 goroutines posting to
// the same accounts get 2.5–3× more posts through. Reads stay flat through checkpoints
// (books_checkpoints.go, migration 0016): a periodic job, off the posting path, writes each
// account's turnover up to a stable horizon, and Balance adds the entries written since;
// without checkpoints a read summed all the account's entries (~0.4 µs each, 41 ms at
// 100 000). The sums commands decide on (periodLedgerTx) are per paid period and stay small.

// ErrLedgerOutOfBalance is returned by Books.TrialBalance when the accounts do not sum to
// zero in some currency. The database's checks make it impossible short of corruption or
// writes around the engine; treat it as an alarm.
var ErrLedgerOutOfBalance = errors.New("billing: ledger trial balance is not zero")

// Books is the engine's double-entry ledger in PostgreSQL. Get it with Engine.Ledger.
//
// The chart of accounts is ledger.StandardChart, in every currency the money package knows.
// Its accounts are rows of the accounts table, created on demand: the first posting in a
// currency creates the six accounts of that currency (ledger.ChartFor), so a new currency
// needs no migration. Transactions are validated against the chart before anything is
// written.
type Books struct {
	e *Engine
}

// Ledger returns the engine's ledger.
func (e *Engine) Ledger() *Books { return &Books{e: e} }

// Post writes t as one statement on its own (atomic without an explicit transaction) and
// returns the transaction as stored. Build t with the ledger package's builders (Charge,
// Recognize, Refund, Reverse…).
//
//   - t's key posted before with the same content (ledger.Fingerprint: Ref, Reverses and
//     the postings; not Memo or At): the first transaction comes back, with its own Memo and
//     At, and replayed is true. Nothing is written.
//   - the same key with other content: ErrIdempotencyConflict (and ledger.ErrKeyReused).
//   - t invalid: a *LedgerValidationError, which also matches ErrInvalidInput and each
//     problem's sentinel (ledger.ErrUnbalanced, ledger.ErrNonPositive…). Nothing is written.
//   - a reversal (t.Reverses set) of a transaction never posted or not mirrored exactly:
//     ledger.ErrInvalidReversal; of one reversed already: ledger.ErrAlreadyReversed.
//
// At is stored with microsecond precision (PostgreSQL's), and the returned transaction
// carries it so. To post together with other writes, use PostTx.
func (b *Books) Post(ctx context.Context, t ledger.Transaction) (posted ledger.Transaction, replayed bool, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.Post", attrHostTx.Bool(false))
	defer span.end(&err)
	posted, replayed, err = b.e.postTo(ctx, "Ledger.Post", b.e.pool, "", t)
	return posted, replayed, opError("Ledger.Post", err)
}

// PostTx is Post inside the caller's transaction tx: the transaction commits or rolls back
// with the caller's other writes. After an error, roll tx back: a failed statement leaves a
// PostgreSQL transaction unusable (refused input is refused before any statement, but the
// caller cannot tell the cases apart).
func (b *Books) PostTx(ctx context.Context, tx pgx.Tx, t ledger.Transaction) (posted ledger.Transaction, replayed bool, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.Post", attrHostTx.Bool(true))
	defer span.end(&err)
	if tx == nil {
		return ledger.Transaction{}, false, &InputError{Op: "Ledger.PostTx", Problems: []FieldProblem{{"tx", "required: the caller's transaction"}}}
	}
	posted, replayed, err = b.e.post(ctx, tx, t)
	return posted, replayed, opError("Ledger.PostTx", err)
}

// TransactionGet returns the transaction posted under key, or ErrNotFound.
func (b *Books) TransactionGet(ctx context.Context, key string) (_ ledger.Transaction, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.TransactionGet")
	defer span.end(&err)
	stored, err := store.LedgerTransactionByKey(ctx, b.e.pool, key)
	if err != nil {
		return ledger.Transaction{}, opError("Ledger.TransactionGet "+strconv.Quote(key), err)
	}
	return stored.Tx, nil
}

// Balance returns the turnover of account (a chart code, "provider:RUB") over the
// transactions whose At is at or before at: its debits and credits, Net and Normal. An
// account nothing was posted to has a zero balance; a code outside the chart is
// ledger.ErrUnknownAccount.
//
// It starts from the account's latest checkpoint (written every 10 seconds by the periodic
// job of Engine.PeriodicJobs) and adds the entries written since, so for an at after the
// checkpoint its cost follows the entries of the last few seconds, not the size of the
// ledger. For an at before the checkpoint it reads the entries between at and the
// checkpoint, or those up to at when fewer. Without the job (no checkpoints) it sums every
// entry of the account up to at. The result is the same either way, exactly.
func (b *Books) Balance(ctx context.Context, account string, at time.Time) (_ ledger.Balance, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.Balance")
	defer span.end(&err)
	a, err := chartAccount("Ledger.Balance", account)
	if err != nil {
		return ledger.Balance{}, err
	}
	debits, credits, err := store.LedgerBalance(ctx, b.e.pool, account, at)
	if err != nil {
		return ledger.Balance{}, opError("Ledger.Balance "+account, err)
	}
	return ledger.Balance{Account: a, Debits: debits, Credits: credits}, nil
}

// LedgerEntry is one leg of a posted transaction, as Books.EntryList lists them.
type LedgerEntry struct {
	// TransactionKey is the key of the transaction the leg belongs to.
	TransactionKey string
	// Ref is that transaction's reference (what caused it).
	Ref ledger.Reference
	// Posting is the leg: account, side, amount in minor units, currency.
	Posting ledger.Posting
	// At is the transaction's instant.
	At time.Time
}

// EntryList returns every leg posted to account, oldest first (by At, then in posting order).
// A code outside the chart is ledger.ErrUnknownAccount.
func (b *Books) EntryList(ctx context.Context, account string) (_ []LedgerEntry, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.EntryList")
	defer span.end(&err)
	if _, err := chartAccount("Ledger.EntryList", account); err != nil {
		return nil, err
	}
	rows, err := store.LedgerEntries(ctx, b.e.pool, account)
	if err != nil {
		return nil, opError("Ledger.EntryList "+account, err)
	}
	out := make([]LedgerEntry, len(rows))
	for i, r := range rows {
		out[i] = LedgerEntry{
			TransactionKey: r.Key,
			Ref:            ledger.Reference{Kind: ledger.RefKind(r.RefKind), ID: r.RefID},
			Posting:        ledger.Posting{Account: r.Account, Side: ledger.Side(r.Side), Amount: r.Amount, Currency: r.Currency},
			At:             r.At,
		}
	}
	return out, nil
}

// TrialBalance returns the balance of every account posted to, ordered by code, read in one
// snapshot: concurrent postings are in it whole or not at all. Like Balance, it starts from
// each account's latest checkpoint and adds the entries written since. Its NetByCurrency is zero in
// every currency; when it is not, the trial balance comes back with ErrLedgerOutOfBalance.
func (b *Books) TrialBalance(ctx context.Context) (_ ledger.TrialBalance, err error) {
	ctx, span := b.e.tel.start(ctx, "Ledger.TrialBalance")
	defer span.end(&err)
	tb, err := store.LedgerTrialBalance(ctx, b.e.pool)
	if err != nil {
		return nil, opError("Ledger.TrialBalance", err)
	}
	for currency, net := range tb.NetByCurrency() {
		if net != 0 {
			return tb, fmt.Errorf("%w: %s is off by %d minor units", ErrLedgerOutOfBalance, currency, net)
		}
	}
	return tb, nil
}

// post writes t in the command's transaction tx (Books.PostTx is it, for hosts). The
// engine's commands that move money call it; a movement that belongs to a paid period goes
// through postForPeriod instead, so that revenue recognition sees it.
func (e *Engine) post(ctx context.Context, tx pgx.Tx, t ledger.Transaction) (ledger.Transaction, bool, error) {
	return e.postTo(ctx, "Ledger.PostTx", tx, "", t)
}

// postForPeriod is post for a movement that belongs to paid period number period of the
// subscription: the period's charge (ledger.Charge), a refund of it (ledger.Refund,
// ApproveRefund), its recognitions. RecognizeRevenue computes what the period may still
// earn from exactly these transactions: the deferred revenue its charges credited, less what
// its refunds and recognitions debited. A refund must take the period's ledger lock first
// and split the refund on what is still deferred:
//
//	pl, err := e.periodLedgerTx(ctx, tx, subID, n)  // locks the period's ledger
//	recognizedPart := ledger.RecognizedPartOfRefund(amount, pl.DeferredLeft())
//	t, err := ledger.Refund(key, refundID, pl.Currency, amount, recognizedPart, now)
//	_, _, err = e.postForPeriod(ctx, tx, subID, n, t)
//
// and, when the refund ends the period, e.scheduleRecognition(ctx, tx, subID, n, now) books
// what the period earned up to then (everything that is left deferred).
func (e *Engine) postForPeriod(ctx context.Context, tx pgx.Tx, subscriptionID string, period int, t ledger.Transaction) (ledger.Transaction, bool, error) {
	return e.postTo(ctx, "Ledger.PostTx", tx, ledgerPeriodID(subscriptionID, period), t)
}

// postTo validates t and writes it through q (the pool or a transaction), tagged with the
// paid period periodID ("" for none). See Books.Post for the outcomes.
func (e *Engine) postTo(ctx context.Context, op string, q store.Querier, periodID string, t ledger.Transaction) (ledger.Transaction, bool, error) {
	t.At = t.At.Truncate(time.Microsecond) // what timestamptz keeps; Truncate also drops the monotonic reading
	if err := ledger.Validate(t, ledger.StandardChart); err != nil {
		return ledger.Transaction{}, false, fmt.Errorf("%s: %w: %w", op, ErrInvalidInput, err)
	}
	fingerprint := ledger.Fingerprint(t)
	if t.Reverses != "" {
		// A reversal is checked against its original before the write. Its own key is looked
		// up first: once posted, its original reads as reversed, by this very key.
		if prev, err := store.LedgerTransactionByKey(ctx, q, t.Key); err == nil {
			return replayOf(op, prev, t.Key, fingerprint, periodID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return ledger.Transaction{}, false, opError(op, err)
		}
		original, err := store.LedgerTransactionByKey(ctx, q, t.Reverses)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && !ledger.Mirrors(t, original.Tx)):
			return ledger.Transaction{}, false, fmt.Errorf("%s: %q reversing %q: %w", op, t.Key, t.Reverses, ledger.ErrInvalidReversal)
		case err != nil:
			return ledger.Transaction{}, false, opError(op, err)
		case original.ReversedBy != "":
			return ledger.Transaction{}, false, fmt.Errorf("%s: %q already reversed by %q: %w", op, t.Reverses, original.ReversedBy, ledger.ErrAlreadyReversed)
		}
	}
	inserted, err := store.InsertLedgerTransaction(ctx, q, newID(), t, fingerprint, periodID, e.clock.Now())
	switch {
	case errors.Is(err, store.ErrLedgerAlreadyReversed):
		return ledger.Transaction{}, false, fmt.Errorf("%s: %q reversing %q: %w", op, t.Key, t.Reverses, ledger.ErrAlreadyReversed)
	case err != nil:
		return ledger.Transaction{}, false, opError(op, err)
	case inserted:
		return t, false, nil
	}
	prev, err := store.LedgerTransactionByKey(ctx, q, t.Key)
	if err != nil {
		return ledger.Transaction{}, false, opError(op, err)
	}
	return replayOf(op, prev, t.Key, fingerprint, periodID)
}

// replayOf returns the stored transaction prev for a post of key again: replayed when it has
// the same fingerprint and period, ErrIdempotencyConflict otherwise.
func replayOf(op string, prev store.LedgerTx, key, fingerprint, periodID string) (ledger.Transaction, bool, error) {
	if prev.Fingerprint != fingerprint || prev.PeriodID != periodID {
		return ledger.Transaction{}, false, fmt.Errorf("%s: key %q was posted with other content: %w: %w",
			op, key, ErrIdempotencyConflict, ledger.ErrKeyReused)
	}
	return prev.Tx, true, nil
}

// chartAccount returns the chart's account with code, or ledger.ErrUnknownAccount.
func chartAccount(op, code string) (ledger.Account, error) {
	a, ok := ledger.StandardChart(code)
	if !ok {
		return ledger.Account{}, opError(op, fmt.Errorf("%w: %q", ledger.ErrUnknownAccount, code))
	}
	return a, nil
}

// ledgerPeriodID names paid period number n of a subscription in the ledger:
// "<subscription id>/<n>". It is the ID of the period's recognitions' reference
// (ledger.RefRecognition) and the period_id of every transaction of the period.
func ledgerPeriodID(subscriptionID string, n int) string {
	return subscriptionID + "/" + strconv.Itoa(n)
}

// periodLedger is what one paid period has posted to deferred revenue, in minor units of
// its currency, each net of reversals.
type periodLedger struct {
	// ID is the period's ledger ID (ledgerPeriodID).
	ID string
	// Currency is the currency of the period's postings; "" when nothing was posted.
	Currency string
	// Charged is what the period's charges (and adjustments) credited to deferred revenue.
	Charged int64
	// Refunded is what the period's refunds took back from deferred revenue (their
	// refunded_revenue part is not in it).
	Refunded int64
	// Recognized is what the period's recognitions moved from deferred to revenue.
	Recognized int64
	// Recognitions counts the recognition transactions (reversals included): the next one's
	// key is numbered after them.
	Recognitions int64
}

// Earnable is the total the period earns over its days: what was charged less what refunds
// took back before it was earned. It is the total of the period's ledger.Plan.
func (p periodLedger) Earnable() int64 { return p.Charged - p.Refunded }

// DeferredLeft is the period's money still in deferred revenue: charged, not refunded, not
// yet recognized.
func (p periodLedger) DeferredLeft() int64 { return p.Charged - p.Refunded - p.Recognized }

// periodLedgerTx locks the ledger of a paid period in tx (store.LockLedgerPeriod, until tx
// ends) and sums what the period has posted. Recognition and refunds decide their amounts
// from it under the lock, so two of them never decide on the same sums.
func (e *Engine) periodLedgerTx(ctx context.Context, tx pgx.Tx, subscriptionID string, period int) (periodLedger, error) {
	pl := periodLedger{ID: ledgerPeriodID(subscriptionID, period)}
	if err := store.LockLedgerPeriod(ctx, tx, pl.ID); err != nil {
		return pl, err
	}
	sums, err := store.LedgerPeriodSums(ctx, tx, pl.ID)
	if err != nil {
		return pl, err
	}
	for _, s := range sums {
		if s.Account != ledger.DeferredRevenue.Code(s.Currency) {
			if ledger.RefKind(s.RefKind) == ledger.RefRecognition {
				pl.Recognitions = max(pl.Recognitions, s.Transactions)
			}
			continue
		}
		if pl.Currency != "" && pl.Currency != s.Currency {
			return pl, fmt.Errorf("billing: period %s has postings in %s and %s", pl.ID, pl.Currency, s.Currency)
		}
		pl.Currency = s.Currency
		switch ledger.RefKind(s.RefKind) {
		case ledger.RefRecognition:
			pl.Recognized += s.Debits - s.Credits
			pl.Recognitions = max(pl.Recognitions, s.Transactions)
		case ledger.RefRefund:
			pl.Refunded += s.Debits - s.Credits
		default:
			pl.Charged += s.Credits - s.Debits
		}
	}
	return pl, nil
}

// RecognizeRevenue books the revenue paid period number period of the subscription has
// earned by now and not yet booked ([ledger.Recognize]: Dr deferred, Cr revenue), in one
// transaction. Called by the engine's River job at the period's end; a host may also call
// it to bring straight-line recognition up to date before reading the books (at a month's
// close, say): a run before the period's end books the days passed so far.
//
// What is earned follows the period's ledger.Plan: the amount its charges posted to deferred
// revenue, less what refunds took back, straight-line by calendar days in the subscription's
// location from the period's start to its end; all of the rest from the moment the period
// ended early (a hard limit used up, TERMS 3.1; the subscription terminated or refunded).
// The amount is read from what was posted for the period, never derived again from the
// tariff.
//
// Schedule: the payment that starts a period schedules one job at the period's end, which
// books the whole period then. A run before the end books the
// days passed and schedules a job at the period's current end (the end may have been moved
// by ExtendPeriod), so the rest is always booked. A period with nothing posted (free, or not
// paid) books nothing. Running it again books nothing new: it is safe for River to retry.
func (e *Engine) RecognizeRevenue(ctx context.Context, subscriptionID string, period int) (err error) {
	ctx, span := e.tel.start(ctx, "RecognizeRevenue", subAttr(subscriptionID))
	defer span.end(&err)
	const op = "RecognizeRevenue"
	check := inputCheck{op: op}
	check.id("subscriptionID", subscriptionID)
	if period < 1 {
		check.add("period", "must be ≥ 1")
	}
	if err := check.err(); err != nil {
		return err
	}
	err = store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		pl, err := e.periodLedgerTx(ctx, tx, subscriptionID, period)
		if err != nil {
			return err
		}
		rp, err := store.GetRecognitionPeriod(ctx, tx, subscriptionID, period)
		if err != nil {
			return err
		}
		if pl.Currency == "" {
			return nil // nothing was charged for the period: nothing to earn
		}
		loc, err := time.LoadLocation(subscription.Subscription{Location: rp.Location}.LocationName())
		if err != nil {
			return err
		}
		plan, err := ledger.NewPlan(pl.Earnable(), rp.Start, rp.End, loc)
		if err != nil {
			return err
		}
		endedEarly := endedEarlyAt(rp, period)
		amount, err := plan.ToRecognize(pl.Recognized, now, endedEarly)
		if err != nil {
			return fmt.Errorf("period %s: %w", pl.ID, err)
		}
		if amount > 0 {
			key := "recognition:" + pl.ID + ":" + strconv.FormatInt(pl.Recognitions+1, 10)
			t, err := ledger.Recognize(key, pl.ID, pl.Currency, amount, now,
				ledger.WithMemo(fmt.Sprintf("revenue of period %d of subscription %s", period, subscriptionID)))
			if err != nil {
				return err
			}
			if _, _, err := e.postTo(ctx, op, tx, pl.ID, t); err != nil {
				return err
			}
		}
		if pl.Recognized+amount < plan.Total() && now.Before(rp.End) {
			return e.scheduleRecognition(ctx, tx, subscriptionID, period, rp.End)
		}
		return nil
	})
	return opError(op, err)
}

// endedEarlyAt returns when paid period number period stopped giving access before its end,
// or nil: when a hard limit was used up (TERMS 3.1), or when the subscription reached a final
// status (terminated, refunded) while this period was its current one. Plan.ToRecognize
// ignores an instant at or after the period's end.
func endedEarlyAt(rp store.RecognitionPeriod, period int) *time.Time {
	out := rp.ExhaustedAt
	if rp.EndedAt != nil && rp.CurrentPeriod != nil && *rp.CurrentPeriod == period &&
		subscription.Status(rp.Status).Final() && (out == nil || rp.EndedAt.Before(*out)) {
		out = rp.EndedAt
	}
	return out
}

// scheduleRecognition inserts, in the command's transaction tx, the River job that books the
// revenue of paid period number period of the subscription at the instant at. The payment
// that starts a period calls it with the period's end; a command that ends a period early
// (refund, termination) may call it with now. One job per (period, instant) while River keeps
// the earlier one (River's cleaner deletes completed jobs after a day; a job that ran again
// would book nothing more: recognition books only what is earned and not yet booked). It
// needs UseRiver (else ErrNoRiverClient).
func (e *Engine) scheduleRecognition(ctx context.Context, tx pgx.Tx, subscriptionID string, period int, at time.Time) error {
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	j := recognitionJob(subscriptionID, period, at)
	_, err = client.InsertTx(ctx, tx, j.Args, j.InsertOpts)
	return err
}

// recognitionJob is the River job that books the revenue of period of the subscription at
// the instant at (stored to the microsecond, as PostgreSQL keeps it, so that the unique
// arguments of a job scheduled twice for one instant compare equal).
func recognitionJob(subscriptionID string, period int, at time.Time) river.InsertManyParams {
	at = at.UTC().Truncate(time.Microsecond)
	return river.InsertManyParams{Args: jobs.RecognizeRevenueArgs{SubscriptionID: subscriptionID, Period: period, DueAt: at},
		InsertOpts: &river.InsertOpts{ScheduledAt: at}}
}
