package billing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// ledgerAt is the instant the ledger tests post at, unless a test says otherwise.
var ledgerAt = time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)

// ledgerRows counts the rows of the ledger's three tables.
type ledgerRows struct{ accounts, transactions, entries int64 }

func countLedgerRows(t require.TestingT, b *testBundle) ledgerRows {
	var r ledgerRows
	var err error
	r.accounts, r.transactions, r.entries, err = store.LedgerRowCounts(context.Background(), b.pool)
	require.NoError(t, err)
	return r
}

// mustCharge builds a charge of amount minor units of RUB.
func mustCharge(t require.TestingT, key string, amount int64) ledger.Transaction {
	tx, err := ledger.Charge(key, "pay-"+key, "RUB", amount, ledgerAt)
	require.NoError(t, err)
	return tx
}

// requireSameTx checks that got is want as the ledger stores it (At compared as an instant).
func requireSameTx(t require.TestingT, want, got ledger.Transaction) {
	require.True(t, want.At.Equal(got.At), "at: want %s, got %s", want.At, got.At)
	want.At, got.At = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// requireSQLState checks that err is a PostgreSQL error with code.
func requireSQLState(t require.TestingT, err error, code string) {
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, code, pgErr.Code, pgErr.Message)
}

func TestLedgerPostRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	_, _, err := books.Post(ctx, mustCharge(t, "first", 99000))
	require.NoError(t, err)
	before := countLedgerRows(t, b)

	legs := func(postings ...ledger.Posting) ledger.Transaction {
		return ledger.Transaction{Key: "bad", Ref: ledger.Reference{Kind: ledger.RefPayment, ID: "p1"}, Postings: postings, At: ledgerAt}
	}
	rub := func(account string, side ledger.Side, amount int64) ledger.Posting {
		return ledger.Posting{Account: account, Side: side, Amount: amount, Currency: "RUB"}
	}
	tests := []struct {
		name string
		tx   ledger.Transaction
		want []error
	}{
		{"unbalanced: debits differ from credits",
			legs(rub("provider:RUB", ledger.Debit, 100), rub("deferred:RUB", ledger.Credit, 90)),
			[]error{ledger.ErrUnbalanced}},
		{"zero amount",
			legs(rub("provider:RUB", ledger.Debit, 0), rub("deferred:RUB", ledger.Credit, 0)),
			[]error{ledger.ErrNonPositive}},
		{"negative amount: the side carries the sign",
			legs(rub("provider:RUB", ledger.Debit, -100), rub("deferred:RUB", ledger.Credit, -100)),
			[]error{ledger.ErrNonPositive}},
		{"posting currency differs from its account's",
			legs(ledger.Posting{Account: "provider:RUB", Side: ledger.Debit, Amount: 100, Currency: "USD"},
				ledger.Posting{Account: "deferred:USD", Side: ledger.Credit, Amount: 100, Currency: "USD"}),
			[]error{ledger.ErrCurrencyMismatch}},
		{"mixed currencies: balanced in sum, not per currency",
			legs(rub("provider:RUB", ledger.Debit, 100),
				ledger.Posting{Account: "deferred:USD", Side: ledger.Credit, Amount: 100, Currency: "USD"}),
			[]error{ledger.ErrUnbalanced}},
		{"unknown account",
			legs(rub("cash:RUB", ledger.Debit, 100), rub("deferred:RUB", ledger.Credit, 100)),
			[]error{ledger.ErrUnknownAccount}},
		{"account in a currency the library does not know",
			legs(ledger.Posting{Account: "provider:XXX", Side: ledger.Debit, Amount: 100, Currency: "XXX"},
				ledger.Posting{Account: "deferred:XXX", Side: ledger.Credit, Amount: 100, Currency: "XXX"}),
			[]error{ledger.ErrUnknownAccount, money.ErrUnknownCurrency}},
		{"one posting",
			legs(rub("provider:RUB", ledger.Debit, 100)),
			[]error{ledger.ErrTooFewPostings}},
		{"no time",
			ledger.Transaction{Key: "bad", Ref: ledger.Reference{Kind: ledger.RefPayment, ID: "p1"},
				Postings: []ledger.Posting{rub("provider:RUB", ledger.Debit, 100), rub("deferred:RUB", ledger.Credit, 100)}},
			[]error{ledger.ErrMissingTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := books.Post(ctx, tt.tx)
			require.ErrorIs(t, err, billing.ErrInvalidInput)
			var ve *ledger.ValidationError
			require.ErrorAs(t, err, &ve)
			for _, w := range tt.want {
				require.ErrorIs(t, err, w)
			}
			require.Equal(t, before, countLedgerRows(t, b), "nothing written")

			// The same in the caller's transaction: refused before any statement, so the
			// caller's transaction is still usable and commits its own writes.
			err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				_, _, err := books.PostTx(ctx, tx, tt.tx)
				require.ErrorIs(t, err, billing.ErrInvalidInput)
				var one int
				return tx.QueryRow(ctx, `SELECT 1`).Scan(&one)
			})
			require.NoError(t, err)
			require.Equal(t, before, countLedgerRows(t, b), "nothing written")
		})
	}

	t.Run("amount with more decimals than the currency never becomes a posting", func(t *testing.T) {
		// Postings carry whole minor units, so an over-precise amount cannot reach Post: the
		// decimal boundary (ledger.NewPosting) refuses it instead of rounding.
		for _, c := range []struct{ amount, currency string }{{"990.001", "RUB"}, {"0.5", "JPY"}} {
			_, err := ledger.NewPosting(ledger.ProviderCash.Code(c.currency), ledger.Debit, decimal.RequireFromString(c.amount), c.currency)
			require.ErrorIs(t, err, money.ErrPrecision)
		}
		require.Equal(t, before, countLedgerRows(t, b), "nothing written")
	})

	t.Run("reversal of a transaction never posted", func(t *testing.T) {
		ghost := mustCharge(t, "ghost", 100)
		rev, err := ledger.Reverse(ghost, "ghost-reversal", ledgerAt)
		require.NoError(t, err)
		_, _, err = books.Post(ctx, rev)
		require.ErrorIs(t, err, ledger.ErrInvalidReversal)
		require.Equal(t, before, countLedgerRows(t, b), "nothing written")
	})

	t.Run("reversal that does not mirror its original", func(t *testing.T) {
		first, err := books.TransactionGet(ctx, "first")
		require.NoError(t, err)
		rev, err := ledger.Reverse(first, "first-half-reversal", ledgerAt)
		require.NoError(t, err)
		rev.Postings[0].Amount, rev.Postings[1].Amount = 100, 100
		_, _, err = books.Post(ctx, rev)
		require.ErrorIs(t, err, ledger.ErrInvalidReversal)
		require.Equal(t, before, countLedgerRows(t, b), "nothing written")
	})

	t.Run("reads of an account outside the chart", func(t *testing.T) {
		_, err := books.Balance(ctx, "cash:RUB", ledgerAt)
		require.ErrorIs(t, err, ledger.ErrUnknownAccount)
		_, err = books.EntryList(ctx, "provider")
		require.ErrorIs(t, err, ledger.ErrUnknownAccount)
	})
}

func TestLedgerPostIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("same key, same content: the first transaction comes back", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		books := b.engine.Ledger()
		first := mustCharge(t, "charge:p1", 99000)
		first.Memo = "first"
		got, replayed, err := books.Post(ctx, first)
		require.NoError(t, err)
		require.False(t, replayed)
		requireSameTx(t, first, got)
		rows := countLedgerRows(t, b)
		require.Equal(t, ledgerRows{accounts: 6, transactions: 1, entries: 2}, rows, "the RUB chart was created on demand")

		retry := first
		retry.Memo, retry.At = "a retry, computed later", ledgerAt.Add(time.Hour)
		retry.Postings = []ledger.Posting{first.Postings[1], first.Postings[0]} // order carries no meaning
		got, replayed, err = books.Post(ctx, retry)
		require.NoError(t, err)
		require.True(t, replayed)
		requireSameTx(t, first, got)
		require.Equal(t, rows, countLedgerRows(t, b), "nothing written")

		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			got, replayed, err = books.PostTx(ctx, tx, retry)
			return err
		})
		require.NoError(t, err)
		require.True(t, replayed)
		requireSameTx(t, first, got)
		require.Equal(t, rows, countLedgerRows(t, b), "nothing written")
	})

	t.Run("same key, other content: a typed error, nothing written", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		books := b.engine.Ledger()
		_, _, err := books.Post(ctx, mustCharge(t, "charge:p1", 99000))
		require.NoError(t, err)
		rows := countLedgerRows(t, b)
		for name, other := range map[string]ledger.Transaction{
			"amount":    mustCharge(t, "charge:p1", 99001),
			"reference": func() ledger.Transaction { tx := mustCharge(t, "charge:p1", 99000); tx.Ref.ID = "pay-2"; return tx }(),
		} {
			_, _, err = books.Post(ctx, other)
			require.ErrorIs(t, err, billing.ErrIdempotencyConflict, name)
			require.ErrorIs(t, err, ledger.ErrKeyReused, name)
			require.Equal(t, rows, countLedgerRows(t, b), "nothing written")
		}
	})

	t.Run("concurrent posts of one key: one is written, the others replay it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		books := b.engine.Ledger()
		tx := mustCharge(t, "charge:p1", 99000)
		const n = 8
		var wg sync.WaitGroup
		replays := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, replays[i], errs[i] = books.Post(ctx, tx) })
		}
		wg.Wait()
		written := 0
		for i := range n {
			require.NoError(t, errs[i])
			if !replays[i] {
				written++
			}
		}
		require.Equal(t, 1, written)
		require.Equal(t, ledgerRows{accounts: 6, transactions: 1, entries: 2}, countLedgerRows(t, b))
	})

	t.Run("PostTx commits and rolls back with the caller's transaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		books := b.engine.Ledger()
		boom := errors.New("the caller's command failed later")
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			_, _, err := books.PostTx(ctx, tx, mustCharge(t, "charge:p1", 99000))
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		require.Equal(t, ledgerRows{}, countLedgerRows(t, b), "rolled back with the caller")

		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			_, replayed, err := books.PostTx(ctx, tx, mustCharge(t, "charge:p1", 99000))
			require.False(t, replayed)
			return err
		})
		require.NoError(t, err)
		got, err := books.TransactionGet(ctx, "charge:p1")
		require.NoError(t, err)
		requireSameTx(t, mustCharge(t, "charge:p1", 99000), got)
	})

	t.Run("a transaction is reversed at most once, and a reversal replays", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		books := b.engine.Ledger()
		charge, _, err := books.Post(ctx, mustCharge(t, "charge:p1", 99000))
		require.NoError(t, err)
		rev, err := ledger.Reverse(charge, "charge:p1:reversal", ledgerAt.Add(time.Minute))
		require.NoError(t, err)
		_, replayed, err := books.Post(ctx, rev)
		require.NoError(t, err)
		require.False(t, replayed)
		_, replayed, err = books.Post(ctx, rev)
		require.NoError(t, err)
		require.True(t, replayed, "the reversal's own key replays, although its original now reads as reversed")
		rows := countLedgerRows(t, b)

		again, err := ledger.Reverse(charge, "charge:p1:reversal-2", ledgerAt.Add(time.Minute))
		require.NoError(t, err)
		_, _, err = books.Post(ctx, again)
		require.ErrorIs(t, err, ledger.ErrAlreadyReversed)
		require.Equal(t, rows, countLedgerRows(t, b), "nothing written")

		bal, err := books.Balance(ctx, "provider:RUB", ledgerAt.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, ledger.Balance{Account: ledger.ProviderCash.Account("RUB"), Debits: 99000, Credits: 99000}, bal)
	})
}

func TestLedgerEntriesAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	_, _, err := books.Post(ctx, mustCharge(t, "charge:p1", 99000))
	require.NoError(t, err)
	rows := countLedgerRows(t, b)

	tests := []struct {
		name, sql, state string
	}{
		{"UPDATE of an entry", `UPDATE billing_ledger_entries SET amount = amount + 1`, "23000"},
		{"DELETE of an entry", `DELETE FROM billing_ledger_entries`, "23000"},
		{"UPDATE of a transaction", `UPDATE billing_ledger_transactions SET memo = 'changed'`, "23000"},
		{"DELETE of a transaction", `DELETE FROM billing_ledger_transactions`, "23000"},
		{"TRUNCATE of the entries", `TRUNCATE billing_ledger_entries CASCADE`, "23000"},
		{"DELETE of an account", `DELETE FROM billing_ledger_accounts WHERE code = 'revenue:RUB'`, "23000"},
		{"an entry that unbalances its transaction",
			`INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			 SELECT id, 3, 'revenue:RUB', 'credit', 1, 'RUB', at FROM billing_ledger_transactions`, "23514"},
		{"a zero amount",
			`INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			 SELECT id, 3, 'revenue:RUB', 'credit', 0, 'RUB', at FROM billing_ledger_transactions`, "23514"},
		{"an entry in another currency than its account's",
			`INSERT INTO billing_ledger_entries (tx_id, seq, account, side, amount, currency, at)
			 SELECT id, s.seq, 'revenue:RUB', s.side, 5, 'USD', at FROM billing_ledger_transactions,
			 (VALUES (3, 'debit'), (4, 'credit')) AS s(seq, side)`, "23503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.pool.Exec(ctx, tt.sql)
			requireSQLState(t, err, tt.state)
			require.Equal(t, rows, countLedgerRows(t, b))
		})
	}
	tb, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	require.Len(t, tb, 2)
}

func TestLedgerReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	model := ledger.NewBook(nil)
	post := func(tx ledger.Transaction, err error) {
		t.Helper()
		require.NoError(t, err)
		_, _, err = books.Post(ctx, tx)
		require.NoError(t, err)
		_, _, err = model.Apply(tx)
		require.NoError(t, err)
	}
	day := 24 * time.Hour
	post(ledger.Charge("charge:p1", "p1", "RUB", 99000, ledgerAt, ledger.WithProviderFee(2500)))
	post(ledger.Recognize("recognition:p1:1", "s1/1", "RUB", 30000, ledgerAt.Add(10*day)))
	post(ledger.Charge("charge:p2", "p2", "USD", 1500, ledgerAt.Add(11*day)))
	post(ledger.Refund("refund:r1", "r1", "RUB", 80000, ledger.RecognizedPartOfRefund(80000, 69000), ledgerAt.Add(20*day)))

	t.Run("balance at an instant counts the transactions at or before it", func(t *testing.T) {
		for _, c := range []struct {
			at               time.Time
			debits, credits  int64
			normalOfDeferred int64
		}{
			{ledgerAt.Add(-time.Second), 0, 0, 0},
			{ledgerAt, 0, 99000, 99000},
			{ledgerAt.Add(10 * day), 30000, 99000, 69000},
			{ledgerAt.Add(30 * day), 30000 + 69000, 99000, 0},
		} {
			bal, err := books.Balance(ctx, "deferred:RUB", c.at)
			require.NoError(t, err)
			require.Equal(t, ledger.Balance{Account: ledger.DeferredRevenue.Account("RUB"), Debits: c.debits, Credits: c.credits}, bal, c.at)
			require.Equal(t, c.normalOfDeferred, bal.Normal())
		}
		bal, err := books.Balance(ctx, "provider_fees:EUR", ledgerAt)
		require.NoError(t, err)
		require.Equal(t, ledger.Balance{Account: ledger.ProviderFees.Account("EUR")}, bal, "an account nothing was posted to")
	})

	t.Run("entries of an account, oldest first", func(t *testing.T) {
		entries, err := books.EntryList(ctx, "provider:RUB")
		require.NoError(t, err)
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.TransactionKey
		}
		require.Equal(t, []string{"charge:p1", "charge:p1", "refund:r1"}, keys)
		require.Equal(t, ledger.Posting{Account: "provider:RUB", Side: ledger.Credit, Amount: 2500, Currency: "RUB"}, entries[1].Posting)
		require.Equal(t, ledger.Reference{Kind: ledger.RefRefund, ID: "r1"}, entries[2].Ref)
		require.True(t, entries[2].At.Equal(ledgerAt.Add(20*day)))
	})

	t.Run("trial balance is the model's and sums to zero per currency", func(t *testing.T) {
		tb, err := books.TrialBalance(ctx)
		require.NoError(t, err)
		require.Equal(t, model.TrialBalance(), tb)
		require.Equal(t, map[string]int64{"RUB": 0, "USD": 0}, tb.NetByCurrency())
	})
}

// TestLedgerMatchesBookModel posts random sequences of charges (some with a provider fee),
// recognitions, refunds, corrections of a recognition, replays, reused keys and invalid
// transactions to PostgreSQL, and after every step compares the database with the in-memory
// ledger.Book fed the same transactions, and with the money flows kept by hand. Every check
// reuses the test's database under a key prefix of its own, so the database is compared by
// its change since the check began.
func TestLedgerMatchesBookModel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var checks int
	rapid.Check(t, func(rt *rapid.T) {
		checks++
		m := newLedgerModel(rt, b, fmt.Sprintf("check%d", checks))
		steps := rapid.IntRange(1, 10).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2:
				m.charge(rt)
			case 3, 4:
				m.recognize(rt)
			case 5:
				m.refund(rt)
			case 6:
				m.reverseRecognition(rt)
			case 7:
				m.replay(rt)
			case 8:
				m.reuseKey(rt)
			case 9:
				m.invalid(rt)
			}
			m.check(rt)
		}
	})
}

// ledgerModel is one rapid check of TestLedgerMatchesBookModel.
type ledgerModel struct {
	b       *testBundle
	books   *billing.Books
	prefix  string
	tagged  bool // post through postForPeriod and check the period sums too
	book    *ledger.Book
	base    map[string]ledger.Balance // the database's trial balance when the check began
	baseTx  int64
	periods []*modelPeriod
	flows   map[string]*modelFlows
	posted  []ledger.Transaction
	// keyPeriod is the period each posted key was posted for (nil: none).
	keyPeriod map[string]*modelPeriod
	seq       int
	at        time.Time
}

// modelPeriod is what the model knows of one paid period, from the events alone.
type modelPeriod struct {
	sub, currency                     string
	charged, recognized, fromDeferred int64
	fromRevenue                       int64
	recognitions                      []ledger.Transaction // not reversed yet
}

func (p *modelPeriod) deferredLeft() int64 { return p.charged - p.recognized - p.fromDeferred }
func (p *modelPeriod) refundable() int64   { return p.charged - p.fromDeferred - p.fromRevenue }

// modelFlows are the money movements of one currency.
type modelFlows struct{ collected, fees, refunded int64 }

func newLedgerModel(rt *rapid.T, b *testBundle, prefix string) *ledgerModel {
	m := &ledgerModel{b: b, books: b.engine.Ledger(), prefix: prefix, tagged: rapid.Bool().Draw(rt, "tagged"),
		book: ledger.NewBook(nil), base: map[string]ledger.Balance{}, flows: map[string]*modelFlows{},
		keyPeriod: map[string]*modelPeriod{}, at: ledgerAt}
	tb, err := m.books.TrialBalance(context.Background())
	require.NoError(rt, err)
	for _, bal := range tb {
		m.base[bal.Account.Code] = bal
	}
	m.baseTx = countLedgerRows(rt, b).transactions
	return m
}

func (m *ledgerModel) key(kind string) string {
	m.seq++
	return fmt.Sprintf("%s:%s:%d", m.prefix, kind, m.seq)
}

// post posts tx to the database (through a path drawn at random) and to the book, and checks
// that both give the same outcome.
func (m *ledgerModel) post(rt *rapid.T, p *modelPeriod, tx ledger.Transaction) (replayed bool, err error) {
	ctx := context.Background()
	m.at = m.at.Add(time.Minute)
	var got ledger.Transaction
	switch {
	case m.tagged && p != nil:
		err = pgx.BeginFunc(ctx, m.b.pool, func(dbtx pgx.Tx) error {
			got, replayed, err = m.books.PostForPeriodTx(ctx, dbtx, p.sub, 1, tx)
			return err
		})
	case rapid.Bool().Draw(rt, "inCallerTx"):
		err = pgx.BeginFunc(ctx, m.b.pool, func(dbtx pgx.Tx) error {
			got, replayed, err = m.books.PostTx(ctx, dbtx, tx)
			return err
		})
	default:
		got, replayed, err = m.books.Post(ctx, tx)
	}
	want, duplicate, modelErr := m.book.Apply(tx)
	for _, sentinel := range []error{ledger.ErrKeyReused, ledger.ErrUnbalanced, ledger.ErrNonPositive,
		ledger.ErrAlreadyReversed, ledger.ErrInvalidReversal} {
		require.Equal(rt, errors.Is(modelErr, sentinel), errors.Is(err, sentinel), "%v: db %v, model %v", sentinel, err, modelErr)
	}
	require.Equal(rt, modelErr == nil, err == nil, "db %v, model %v", err, modelErr)
	if err == nil {
		require.Equal(rt, duplicate, replayed)
		requireSameTx(rt, want, got)
		if !replayed {
			m.posted = append(m.posted, got)
			m.keyPeriod[got.Key] = p
		}
	}
	return replayed, err
}

func (m *ledgerModel) flow(currency string) *modelFlows {
	if m.flows[currency] == nil {
		m.flows[currency] = &modelFlows{}
	}
	return m.flows[currency]
}

func (m *ledgerModel) charge(rt *rapid.T) {
	currency := rapid.SampledFrom([]string{"RUB", "USD", "JPY"}).Draw(rt, "currency")
	amount := rapid.Int64Range(1, 10_000_000).Draw(rt, "amount")
	fee := rapid.Int64Range(0, amount/20).Draw(rt, "fee")
	p := &modelPeriod{sub: m.key("sub"), currency: currency}
	tx, err := ledger.Charge(m.key("charge"), m.key("payment"), currency, amount, m.at, ledger.WithProviderFee(fee))
	require.NoError(rt, err)
	_, err = m.post(rt, p, tx)
	require.NoError(rt, err)
	p.charged = amount
	m.periods = append(m.periods, p)
	f := m.flow(currency)
	f.collected += amount
	f.fees += fee
}

// pick draws a period with ok(p) true, or nil when there is none.
func (m *ledgerModel) pick(rt *rapid.T, label string, ok func(*modelPeriod) bool) *modelPeriod {
	var candidates []*modelPeriod
	for _, p := range m.periods {
		if ok(p) {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	return rapid.SampledFrom(candidates).Draw(rt, label)
}

func (m *ledgerModel) recognize(rt *rapid.T) {
	p := m.pick(rt, "recognizePeriod", func(p *modelPeriod) bool { return p.deferredLeft() > 0 })
	if p == nil {
		return
	}
	amount := rapid.Int64Range(1, p.deferredLeft()).Draw(rt, "recognized")
	tx, err := ledger.Recognize(m.key("recognition"), p.sub+"/1", p.currency, amount, m.at)
	require.NoError(rt, err)
	_, err = m.post(rt, p, tx)
	require.NoError(rt, err)
	p.recognized += amount
	p.recognitions = append(p.recognitions, tx)
}

func (m *ledgerModel) refund(rt *rapid.T) {
	p := m.pick(rt, "refundPeriod", func(p *modelPeriod) bool { return p.refundable() > 0 })
	if p == nil {
		return
	}
	amount := rapid.Int64Range(1, p.refundable()).Draw(rt, "refunded")
	fromRevenue := ledger.RecognizedPartOfRefund(amount, p.deferredLeft())
	tx, err := ledger.Refund(m.key("refund"), m.key("refundID"), p.currency, amount, fromRevenue, m.at)
	require.NoError(rt, err)
	_, err = m.post(rt, p, tx)
	require.NoError(rt, err)
	p.fromDeferred += amount - fromRevenue
	p.fromRevenue += fromRevenue
	m.flow(p.currency).refunded += amount
}

// reverseRecognition corrects a recognition booked by mistake; reversing it twice is refused.
func (m *ledgerModel) reverseRecognition(rt *rapid.T) {
	p := m.pick(rt, "correctPeriod", func(p *modelPeriod) bool { return len(p.recognitions) > 0 })
	if p == nil {
		return
	}
	i := rapid.IntRange(0, len(p.recognitions)-1).Draw(rt, "recognition")
	original := p.recognitions[i]
	if p.fromRevenue > p.recognized-original.Postings[0].Amount {
		return // refunds already gave back revenue this recognition earned
	}
	rev, err := ledger.Reverse(original, m.key("correction"), m.at)
	require.NoError(rt, err)
	_, err = m.post(rt, p, rev)
	require.NoError(rt, err)
	p.recognized -= original.Postings[0].Amount
	p.recognitions = append(p.recognitions[:i:i], p.recognitions[i+1:]...)

	again, err := ledger.Reverse(original, m.key("correction"), m.at)
	require.NoError(rt, err)
	_, err = m.post(rt, p, again)
	require.ErrorIs(rt, err, ledger.ErrAlreadyReversed)
}

func (m *ledgerModel) replay(rt *rapid.T) {
	if len(m.posted) == 0 {
		return
	}
	tx := rapid.SampledFrom(m.posted).Draw(rt, "replayed")
	tx.Memo, tx.At = "retried", m.at.Add(time.Hour)
	replayed, err := m.post(rt, m.keyPeriod[tx.Key], tx)
	require.NoError(rt, err)
	require.True(rt, replayed)
}

func (m *ledgerModel) reuseKey(rt *rapid.T) {
	if len(m.posted) == 0 {
		return
	}
	tx := rapid.SampledFrom(m.posted).Draw(rt, "reused")
	tx.Ref.ID += "-other" // another movement under the same key
	_, err := m.post(rt, m.keyPeriod[tx.Key], tx)
	require.ErrorIs(rt, err, billing.ErrIdempotencyConflict)
}

func (m *ledgerModel) invalid(rt *rapid.T) {
	tx, err := ledger.Charge(m.key("invalid"), "p", "RUB", rapid.Int64Range(1, 1000).Draw(rt, "amount"), m.at)
	require.NoError(rt, err)
	if rapid.Bool().Draw(rt, "unbalanced") {
		tx.Postings[0].Amount++
	} else {
		tx.Postings[0].Amount, tx.Postings[1].Amount = 0, 0
	}
	_, err = m.post(rt, nil, tx)
	require.ErrorIs(rt, err, billing.ErrInvalidInput)
}

// check compares the database with the model after a step.
func (m *ledgerModel) check(rt *rapid.T) {
	ctx := context.Background()
	tb, err := m.books.TrialBalance(ctx)
	require.NoError(rt, err, "the trial balance sums to zero per currency")
	for _, net := range tb.NetByCurrency() {
		require.Zero(rt, net)
	}

	// The change of every account since the check began is the model's balance.
	delta := map[string]ledger.Balance{}
	for _, bal := range tb {
		base := m.base[bal.Account.Code]
		bal.Debits -= base.Debits
		bal.Credits -= base.Credits
		if bal.Debits != 0 || bal.Credits != 0 {
			delta[bal.Account.Code] = bal
		}
	}
	want := map[string]ledger.Balance{}
	for _, bal := range m.book.TrialBalance() {
		want[bal.Account.Code] = bal
	}
	require.Equal(rt, want, delta)
	require.Equal(rt, m.baseTx+int64(len(m.book.Transactions())), countLedgerRows(rt, m.b).transactions)

	// Each balance equals the sum of its entries, and Balance reads the same.
	for _, bal := range tb {
		if _, moved := delta[bal.Account.Code]; !moved {
			continue
		}
		read, err := m.books.Balance(ctx, bal.Account.Code, m.at.Add(24*time.Hour))
		require.NoError(rt, err)
		require.Equal(rt, bal, read)
		entries, err := m.books.EntryList(ctx, bal.Account.Code)
		require.NoError(rt, err)
		var sum ledger.Balance
		for _, e := range entries {
			if e.Posting.Side == ledger.Debit {
				sum.Debits += e.Posting.Amount
			} else {
				sum.Credits += e.Posting.Amount
			}
		}
		require.Equal(rt, [2]int64{bal.Debits, bal.Credits}, [2]int64{sum.Debits, sum.Credits}, bal.Account.Code)
	}

	// deferred + recognized = collected − refunded, per currency; the provider holds what
	// was collected less refunds and fees.
	for currency, f := range m.flows {
		normal := func(r ledger.Role) int64 {
			bal := delta[r.Code(currency)]
			bal.Account = r.Account(currency)
			return bal.Normal()
		}
		require.Equal(rt, f.collected-f.refunded,
			normal(ledger.DeferredRevenue)+normal(ledger.Revenue)-normal(ledger.RefundedRevenue), currency)
		require.Equal(rt, f.collected-f.refunded-f.fees, normal(ledger.ProviderCash), currency)
	}

	// The sums recognition decides on are the model's.
	if m.tagged {
		for _, p := range m.periods {
			charged, refunded, recognized, err := m.books.PeriodLedgerForTest(ctx, p.sub, 1)
			require.NoError(rt, err)
			require.Equal(rt, [3]int64{p.charged, p.fromDeferred, p.recognized}, [3]int64{charged, refunded, recognized}, p.sub)
		}
	}
}

func TestLedgerConcurrentPostingToHotAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	books := b.engine.Ledger()
	const workers, each = 12, 20
	const fee, recognized = 10, 400

	// A reader takes trial balances while the postings run: each is one snapshot, so each
	// sums to zero, and none sees half a transaction.
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	var reads int
	go func() {
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			if _, err := books.TrialBalance(ctx); err != nil {
				readerDone <- err
				return
			}
			reads++
		}
	}()

	shared := mustCharge(t, "charge:shared", 5000)
	var sharedWrites sync.Map
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			errs[w] = func() error {
				for i := range each {
					charge, err := ledger.Charge(fmt.Sprintf("charge:w%d:%d", w, i), fmt.Sprintf("pay-w%d-%d", w, i),
						"RUB", int64(1000+i), ledgerAt, ledger.WithProviderFee(fee))
					if err != nil {
						return err
					}
					recognition, err := ledger.Recognize(fmt.Sprintf("recognition:w%d:%d", w, i), fmt.Sprintf("s%d/%d", w, i),
						"RUB", recognized, ledgerAt.Add(time.Hour))
					if err != nil {
						return err
					}
					if _, _, err := books.Post(ctx, charge); err != nil {
						return err
					}
					// The recognition in a caller's transaction, with the shared key in the
					// same one: one worker writes it, the others replay it.
					err = store.InTx(ctx, b.pool, func(tx pgx.Tx) error {
						if _, _, err := books.PostTx(ctx, tx, recognition); err != nil {
							return err
						}
						if i != each/2 {
							return nil
						}
						_, replayed, err := books.PostTx(ctx, tx, shared)
						if err == nil && !replayed {
							sharedWrites.Store(w, true)
						}
						return err
					})
					if err != nil {
						return err
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-readerDone)
	for _, err := range errs {
		require.NoError(t, err)
	}
	writers := 0
	sharedWrites.Range(func(any, any) bool { writers++; return true })
	require.Equal(t, 1, writers, "the shared key was written once")
	t.Logf("%d trial balances read while posting", reads)

	charged := int64(workers * (each*1000 + each*(each-1)/2))
	n := int64(workers * each)
	want := ledger.TrialBalance{
		{Account: ledger.DeferredRevenue.Account("RUB"), Debits: n * recognized, Credits: charged + 5000},
		{Account: ledger.ProviderCash.Account("RUB"), Debits: charged + 5000, Credits: n * fee},
		{Account: ledger.ProviderFees.Account("RUB"), Debits: n * fee},
		{Account: ledger.Revenue.Account("RUB"), Credits: n * recognized},
	}
	tb, err := books.TrialBalance(ctx)
	require.NoError(t, err)
	require.Equal(t, want, tb)
	require.Equal(t, ledgerRows{accounts: 6, transactions: 2*n + 1, entries: 6*n + 2}, countLedgerRows(t, b))
	for _, bal := range want {
		got, err := books.Balance(ctx, bal.Account.Code, ledgerAt.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, bal, got)
	}
}

func TestLedgerRevenueRecognition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const price = 99000 // 990.00 RUB

	// paidPeriod makes an active subscription to a 990 RUB monthly tariff and makes sure
	// period 1 has its charge posted (by the payment code, or here when it does not yet).
	paidPeriod := func(t *testing.T, b *testBundle, quantity int64) string {
		t.Helper()
		b.publish(t, "pro", "990", "generations", quantity)
		sub := b.activeSubscription(t, "c1", "pro")
		charged, _, _, err := b.engine.Ledger().PeriodLedgerForTest(ctx, sub.ID, 1)
		require.NoError(t, err)
		if charged == 0 {
			charge, err := ledger.Charge("charge:"+sub.ID+"/1", "pay-c1", "RUB", price, sub.Current.Start)
			require.NoError(t, err)
			err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				_, _, err := b.engine.Ledger().PostForPeriodTx(ctx, tx, sub.ID, 1, charge)
				return err
			})
			require.NoError(t, err)
		}
		charged, _, _, err = b.engine.Ledger().PeriodLedgerForTest(ctx, sub.ID, 1)
		require.NoError(t, err)
		require.Equal(t, int64(price), charged)
		return sub.ID
	}
	balance := func(t *testing.T, b *testBundle, role ledger.Role) int64 {
		t.Helper()
		bal, err := b.engine.Ledger().Balance(ctx, role.Code("RUB"), b.clock.Now().AddDate(1, 0, 0))
		require.NoError(t, err)
		return bal.Normal()
	}
	// deferredLeft is what period 1 still has in deferred revenue (a renewal at the period
	// end may credit deferred revenue for period 2, so the account's balance is not it).
	deferredLeft := func(t *testing.T, b *testBundle, id string) int64 {
		t.Helper()
		charged, refunded, recognized, err := b.engine.Ledger().PeriodLedgerForTest(ctx, id, 1)
		require.NoError(t, err)
		return charged - refunded - recognized
	}
	recognitionJobs := func(t *testing.T, b *testBundle, at time.Time) int {
		t.Helper()
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM `+riverJob+`
			WHERE kind = 'billing_recognize_revenue' AND scheduled_at = $1`, at).Scan(&n))
		return n
	}
	periodOf := func(t *testing.T, b *testBundle, id string) (start, end time.Time) {
		t.Helper()
		sub, err := b.engine.SubscriptionGet(ctx, id)
		require.NoError(t, err)
		return sub.Current.Start, sub.Current.End
	}

	t.Run("the job at the period end books the whole charge, once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		id := paidPeriod(t, b, 100)
		_, end := periodOf(t, b, id)
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			return b.engine.Ledger().ScheduleRecognitionTx(ctx, tx, id, 1, end)
		}))
		_, err := runner.RunUntil(ctx, end.Add(-time.Second))
		require.NoError(t, err)
		require.Zero(t, balance(t, b, ledger.Revenue), "nothing before the end")

		_, err = runner.RunUntil(ctx, end)
		require.NoError(t, err)
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue))
		require.Zero(t, deferredLeft(t, b, id))

		rows := countLedgerRows(t, b)
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1), "a second run")
		require.Equal(t, rows, countLedgerRows(t, b), "books nothing new")
		_, recognized := b.engine.Ledger().TransactionGet(ctx, "recognition:"+id+"/1:1")
		require.NoError(t, recognized)
	})

	t.Run("a run before the end books the days passed; the job at the end books the rest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		id := paidPeriod(t, b, 100)
		start, end := periodOf(t, b, id)
		b.clock.Set(start.Add(10*24*time.Hour + 2*time.Hour)) // 10 of the period's 31 days have passed
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1))
		plan, err := ledger.NewPlan(price, start, end, b.moscow)
		require.NoError(t, err)
		require.Equal(t, int64(31), plan.Days())
		require.Equal(t, int64(10*3194), plan.EarnedBy(b.clock.Now()), "99000 over 31 days: 3193 a day, the first 17 days one more")
		require.Equal(t, plan.EarnedBy(b.clock.Now()), balance(t, b, ledger.Revenue))
		require.Equal(t, 1, recognitionJobs(t, b, end), "the rest is scheduled at the period end")

		_, err = runner.RunUntil(ctx, end)
		require.NoError(t, err)
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue))
		require.Zero(t, deferredLeft(t, b, id))
	})

	t.Run("2.1.4 a period extended by the operator earns over its new length, the rest at the new end", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		id := paidPeriod(t, b, 100)
		start, end := periodOf(t, b, id)
		newEnd := end.AddDate(0, 0, 5)
		_, err := b.engine.ExtendPeriod(ctx, id, newEnd, subscription.AdminAction{Actor: "admin:1", Reason: "maintenance"})
		require.NoError(t, err)
		b.clock.Set(end)
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1), "as the job scheduled at the first end does")
		plan, err := ledger.NewPlan(price, start, newEnd, b.moscow)
		require.NoError(t, err)
		require.Equal(t, plan.EarnedBy(end), balance(t, b, ledger.Revenue))
		require.Less(t, balance(t, b, ledger.Revenue), int64(price))
		require.Equal(t, 1, recognitionJobs(t, b, newEnd), "the rest is scheduled at the new end")

		_, err = runner.RunUntil(ctx, newEnd)
		require.NoError(t, err)
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue))
		require.Zero(t, deferredLeft(t, b, id))
	})

	t.Run("3.1 volume used up before the period ends: the rest is earned at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		id := paidPeriod(t, b, 3)
		_, end := periodOf(t, b, id)
		b.clock.Advance(3 * 24 * time.Hour)
		_, err := b.engine.Consume(ctx, id, "generations", 3, "use-all")
		require.NoError(t, err)
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1))
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue))

		_, err = runner.RunUntil(ctx, end)
		require.NoError(t, err)
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue), "the job at the period end finds nothing left")
		_, err = b.engine.Ledger().TransactionGet(ctx, "recognition:"+id+"/1:2")
		require.ErrorIs(t, err, billing.ErrNotFound, "one recognition in all")
	})

	t.Run("2.1.2 terminated by the operator: the rest is earned at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.withRiver(t)
		id := paidPeriod(t, b, 100)
		b.clock.Advance(24 * time.Hour)
		_, err := b.engine.Terminate(ctx, id, subscription.AdminAction{Actor: "admin:1", Reason: "fraud"})
		require.NoError(t, err)
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1))
		require.Equal(t, int64(price), balance(t, b, ledger.Revenue))
	})

	t.Run("3.7 a refund takes back the deferred part first; the period earns the rest by its end", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		runner := b.withRiver(t)
		id := paidPeriod(t, b, 100)
		start, end := periodOf(t, b, id)
		b.clock.Set(start.Add(10*24*time.Hour + 2*time.Hour))
		require.NoError(t, b.engine.RecognizeRevenue(ctx, id, 1))
		require.Equal(t, int64(31940), balance(t, b, ledger.Revenue))

		charged, refunded, recognized, err := b.engine.Ledger().PeriodLedgerForTest(ctx, id, 1)
		require.NoError(t, err)
		const refund = 50000
		fromRevenue := ledger.RecognizedPartOfRefund(refund, charged-refunded-recognized)
		require.Zero(t, fromRevenue, "67060 still deferred covers the refund")
		tx, err := ledger.Refund("refund:"+id, "r1", "RUB", refund, fromRevenue, b.clock.Now())
		require.NoError(t, err)
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(dbtx pgx.Tx) error {
			_, _, err := b.engine.Ledger().PostForPeriodTx(ctx, dbtx, id, 1, tx)
			return err
		}))

		_, err = runner.RunUntil(ctx, end)
		require.NoError(t, err)
		require.Equal(t, int64(price-refund), balance(t, b, ledger.Revenue))
		require.Zero(t, deferredLeft(t, b, id))
		require.Zero(t, balance(t, b, ledger.RefundedRevenue))
	})

	t.Run("a period with nothing charged earns nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "free", Name: "free", Price: decimal.Zero,
			Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "generations", Quantity: 5}}})
		require.NoError(t, err)
		sub := b.activeSubscription(t, "c1", "free")
		b.clock.Set(sub.Current.End)
		require.NoError(t, b.engine.RecognizeRevenue(ctx, sub.ID, 1))
		require.Equal(t, ledgerRows{}, countLedgerRows(t, b))
	})

	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.engine.RecognizeRevenue(ctx, "not-a-uuid", 0)
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		err = b.engine.RecognizeRevenue(ctx, "0195a3c4-0000-7000-8000-000000000000", 1)
		require.ErrorIs(t, err, billing.ErrNotFound)
	})
}
