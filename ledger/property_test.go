package ledger_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/ledger"
)

// TestBookProperties runs random sequences of charges, recognitions at random instants,
// refunds (paid at once or approved and paid later), replays, reused keys, invalid
// transactions and corrected mistakes against a Book, and after every step compares the
// book with a model kept by hand from the business events alone.
func TestBookProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := &bookModel{book: ledger.NewBook(nil), flows: map[string]*flows{}}
		t.Repeat(map[string]func(*rapid.T){
			"charge":    m.charge,
			"recognize": m.recognize,
			"refund":    m.refund,
			"payRefund": m.payRefund,
			"replay":    m.replay,
			"reuseKey":  m.reuseKey,
			"invalid":   m.invalid,
			"mistake":   m.mistake,
			"":          m.check,
		})
		m.settle(t)
	})
}

// period is the model of one paid period, kept from the events, not from the book.
type period struct {
	id, currency string
	loc          *time.Location
	start, end   time.Time
	charged      int64
	recognized   int64
	fromDeferred int64 // refunded out of what was still deferred
	fromRevenue  int64 // refunded out of revenue already recognized
	endedAt      *time.Time
	runs         int
}

// deferredLeft is what the period still owes as service.
func (p *period) deferredLeft() int64 { return p.charged - p.recognized - p.fromDeferred }

// refundable is what has not been refunded yet.
func (p *period) refundable() int64 { return p.charged - p.fromDeferred - p.fromRevenue }

// plan is the period's recognition plan: what was charged less what refunds took from deferred.
func (p *period) plan(t *rapid.T) ledger.Plan {
	plan, err := ledger.NewPlan(p.charged-p.fromDeferred, p.start, p.end, p.loc)
	require.NoError(t, err)
	return plan
}

// flows are the money movements of one currency.
type flows struct{ collected, fees, approved, paid int64 }

type pendingRefund struct {
	id, currency string
	amount       int64
}

type bookModel struct {
	book    *ledger.Book
	periods []*period
	flows   map[string]*flows
	pending []pendingRefund
	posted  []ledger.Transaction
	seq     int
}

var modelStart = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func (m *bookModel) next() int { m.seq++; return m.seq }

// post applies a transaction that must be accepted as new.
func (m *bookModel) post(t *rapid.T, tx ledger.Transaction, err error) {
	require.NoError(t, err)
	posted, dup, err := m.book.Apply(tx)
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, tx, posted)
	m.posted = append(m.posted, tx)
}

func (m *bookModel) flowsOf(currency string) *flows {
	if m.flows[currency] == nil {
		m.flows[currency] = &flows{}
	}
	return m.flows[currency]
}

func (m *bookModel) charge(t *rapid.T) {
	currency := rapid.SampledFrom([]string{"RUB", "USD", "JPY"}).Draw(t, "currency")
	loc := mustLocation(rapid.SampledFrom([]string{"Europe/Moscow", "Europe/Berlin", "America/Havana"}).Draw(t, "loc"))
	start := modelStart.Add(time.Duration(rapid.Int64Range(0, 2*365*86400).Draw(t, "start")) * time.Second).In(loc)
	var end time.Time
	switch rapid.IntRange(0, 2).Draw(t, "length") {
	case 0:
		end = start.AddDate(0, 1, 0)
	case 1:
		end = start.AddDate(0, 0, rapid.IntRange(1, 40).Draw(t, "days"))
	default:
		end = start.Add(time.Duration(rapid.Int64Range(1, 40*86400).Draw(t, "seconds")) * time.Second)
	}
	amount := rapid.OneOf(rapid.Int64Range(1, 100), rapid.Just[int64](99001), rapid.Int64Range(1, 10_000_000)).Draw(t, "amount")
	fee := rapid.Int64Range(0, amount/10).Draw(t, "fee")

	id := fmt.Sprintf("p%d", m.next())
	tx, err := ledger.Charge("charge:"+id, id, currency, amount, start, ledger.WithProviderFee(fee))
	m.post(t, tx, err)
	m.periods = append(m.periods, &period{id: id, currency: currency, loc: loc, start: start, end: end, charged: amount})
	f := m.flowsOf(currency)
	f.collected += amount
	f.fees += fee
}

func (m *bookModel) recognize(t *rapid.T) {
	if len(m.periods) == 0 {
		t.Skip("no periods")
	}
	p := rapid.SampledFrom(m.periods).Draw(t, "period")
	span := p.end.Sub(p.start)
	at := p.start.Add(time.Duration(rapid.Int64Range(-int64(24*time.Hour), int64(span+48*time.Hour)).Draw(t, "at")))

	n, err := p.plan(t).ToRecognize(p.recognized, at, p.endedAt)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(0))
	if n == 0 {
		return
	}
	p.runs++
	tx, err := ledger.Recognize(fmt.Sprintf("recog:%s:%d", p.id, p.runs), p.id, p.currency, n, at)
	m.post(t, tx, err)
	p.recognized += n
}

func (m *bookModel) refund(t *rapid.T) {
	open := slices.DeleteFunc(slices.Clone(m.periods), func(p *period) bool { return p.refundable() == 0 })
	if len(open) == 0 {
		t.Skip("nothing to refund")
	}
	p := rapid.SampledFrom(open).Draw(t, "period")
	amount := rapid.OneOf(rapid.Just(p.refundable()), rapid.Int64Range(1, p.refundable())).Draw(t, "amount")
	recognizedPart := ledger.RecognizedPartOfRefund(amount, p.deferredLeft())
	at := p.start.Add(time.Duration(rapid.Int64Range(0, int64(p.end.Sub(p.start))).Draw(t, "at")))
	id := fmt.Sprintf("r%d", m.next())
	f := m.flowsOf(p.currency)

	if rapid.Bool().Draw(t, "approve first") {
		tx, err := ledger.ApproveRefund("refund:"+id, id, p.currency, amount, recognizedPart, at)
		m.post(t, tx, err)
		m.pending = append(m.pending, pendingRefund{id: id, currency: p.currency, amount: amount})
	} else {
		fee := rapid.Int64Range(0, 50).Draw(t, "refund fee")
		tx, err := ledger.Refund("refund:"+id, id, p.currency, amount, recognizedPart, at, ledger.WithProviderFee(fee))
		m.post(t, tx, err)
		f.paid += amount
		f.fees += fee
	}
	f.approved += amount
	p.fromDeferred += amount - recognizedPart
	p.fromRevenue += recognizedPart
	if p.endedAt == nil {
		p.endedAt = &at // a refund ends the period: the rest is earned at once
	}
}

func (m *bookModel) payRefund(t *rapid.T) {
	if len(m.pending) == 0 {
		t.Skip("no approved refund")
	}
	i := rapid.IntRange(0, len(m.pending)-1).Draw(t, "refund")
	r := m.pending[i]
	tx, err := ledger.PayRefund("refund-paid:"+r.id, r.id, r.currency, r.amount, modelStart)
	m.post(t, tx, err)
	m.pending = slices.Delete(m.pending, i, i+1)
	m.flowsOf(r.currency).paid += r.amount
}

// replay posts an earlier transaction again, later and with its legs reversed in order: the
// first one comes back and nothing changes.
func (m *bookModel) replay(t *rapid.T) {
	if len(m.posted) == 0 {
		t.Skip("nothing posted")
	}
	first := rapid.SampledFrom(m.posted).Draw(t, "tx")
	retry := first
	retry.At, retry.Memo = first.At.Add(time.Minute), "retry"
	retry.Postings = slices.Clone(first.Postings)
	slices.Reverse(retry.Postings)
	before := m.book.TrialBalance()

	got, dup, err := m.book.Apply(retry)
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, first, got)
	require.Equal(t, before, m.book.TrialBalance())
}

// reuseKey posts other content under an earlier key: refused, nothing changes.
func (m *bookModel) reuseKey(t *rapid.T) {
	if len(m.posted) == 0 {
		t.Skip("nothing posted")
	}
	other := rapid.SampledFrom(m.posted).Draw(t, "tx")
	other.Postings = slices.Clone(other.Postings)
	for i := range other.Postings {
		other.Postings[i].Amount *= 2
	}
	before := m.book.TrialBalance()

	_, _, err := m.book.Apply(other)
	requireErrors(t, err, ledger.ErrKeyReused)
	require.Equal(t, before, m.book.TrialBalance())
}

// invalid posts an unbalanced transaction under a new key: refused, nothing changes.
func (m *bookModel) invalid(t *rapid.T) {
	tx, err := ledger.Charge(fmt.Sprintf("bad:%d", m.next()), "bad", "RUB", 100, modelStart)
	require.NoError(t, err)
	tx.Postings[0].Amount += rapid.Int64Range(1, 100).Draw(t, "excess")
	before := m.book.TrialBalance()

	_, _, err = m.book.Apply(tx)
	requireErrors(t, err, ledger.ErrUnbalanced)
	require.Equal(t, before, m.book.TrialBalance())
}

// mistake posts a wrong charge and corrects it with its reversal: every balance is as before,
// and a second reversal is refused.
func (m *bookModel) mistake(t *rapid.T) {
	currency := rapid.SampledFrom([]string{"RUB", "USD", "JPY"}).Draw(t, "currency")
	id := fmt.Sprintf("m%d", m.next())
	before := nets(m.book.TrialBalance())

	wrong, err := ledger.Charge("charge:"+id, id, currency, rapid.Int64Range(1, 1_000_000).Draw(t, "amount"), modelStart)
	m.post(t, wrong, err)
	reversal, err := ledger.Reverse(wrong, "reverse:"+id, modelStart.Add(time.Hour))
	m.post(t, reversal, err)
	require.Equal(t, before, nets(m.book.TrialBalance()))

	again, err := ledger.Reverse(wrong, "reverse-again:"+id, modelStart.Add(2*time.Hour))
	require.NoError(t, err)
	_, _, err = m.book.Apply(again)
	requireErrors(t, err, ledger.ErrAlreadyReversed)
}

// check compares the book with the model.
func (m *bookModel) check(t *rapid.T) {
	trial := m.book.TrialBalance()
	for currency, net := range trial.NetByCurrency() {
		require.Zero(t, net, "trial balance of %s", currency)
	}

	// Each balance equals the sum of its entries.
	sums := map[string]int64{}
	for _, tx := range m.book.Transactions() {
		for _, p := range tx.Postings {
			sums[p.Account] += p.Signed()
		}
	}
	for _, b := range trial {
		require.Equal(t, sums[b.Account.Code], b.Net(), b.Account.Code)
		if b.Account.Code != ledger.ProviderCash.Code(b.Account.Currency) {
			require.GreaterOrEqual(t, b.Normal(), int64(0), "%s must not go below zero", b.Account.Code)
		}
	}

	for currency, f := range m.flows {
		var deferred, recognized, refundedRevenue int64
		for _, p := range m.periods {
			require.GreaterOrEqual(t, p.deferredLeft(), int64(0), p.id)
			require.True(t, 0 <= p.fromRevenue && p.fromRevenue <= p.recognized, "%s: refunded revenue within recognized", p.id)
			require.LessOrEqual(t, p.recognized, p.charged, "%s: recognized never exceeds charged", p.id)
			if p.currency == currency {
				deferred += p.deferredLeft()
				recognized += p.recognized
				refundedRevenue += p.fromRevenue
			}
		}
		balance := func(r ledger.Role) int64 { return m.book.Balance(r.Code(currency)).Normal() }
		require.Equal(t, deferred, balance(ledger.DeferredRevenue), currency)
		require.Equal(t, recognized, balance(ledger.Revenue), currency)
		require.Equal(t, refundedRevenue, balance(ledger.RefundedRevenue), currency)
		require.Equal(t, f.approved-f.paid, balance(ledger.RefundsPayable), currency)
		require.Equal(t, f.fees, balance(ledger.ProviderFees), currency)
		require.Equal(t, f.collected-f.paid-f.fees, balance(ledger.ProviderCash), currency)
		require.Equal(t, f.collected-f.approved,
			balance(ledger.DeferredRevenue)+balance(ledger.Revenue)-balance(ledger.RefundedRevenue),
			"%s: deferred + recognized = collected − refunded", currency)
	}
}

// settle recognizes every period after its end: nothing stays deferred, and net revenue is
// what was collected less what was refunded.
func (m *bookModel) settle(t *rapid.T) {
	for _, p := range m.periods {
		n, err := p.plan(t).ToRecognize(p.recognized, p.end, p.endedAt)
		require.NoError(t, err)
		if n > 0 {
			tx, err := ledger.Recognize("recog:"+p.id+":final", p.id, p.currency, n, p.end)
			m.post(t, tx, err)
			p.recognized += n
		}
		require.Zero(t, p.deferredLeft(), p.id)
	}
	m.check(t)
	for currency, f := range m.flows {
		require.Zero(t, m.book.Balance(ledger.DeferredRevenue.Code(currency)).Normal(), currency)
		net := m.book.Balance(ledger.Revenue.Code(currency)).Normal() - m.book.Balance(ledger.RefundedRevenue.Code(currency)).Normal()
		require.Equal(t, f.collected-f.approved, net, currency)
	}
}

// nets maps each account of a trial balance to its net balance.
func nets(tb ledger.TrialBalance) map[string]int64 {
	out := map[string]int64{}
	for _, b := range tb {
		if b.Net() != 0 {
			out[b.Account.Code] = b.Net()
		}
	}
	return out
}
