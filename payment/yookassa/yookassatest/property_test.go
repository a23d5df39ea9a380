package yookassatest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRandomSequencesKeepTheInvariants drives the simulator with random sequences of
// payments, refunds, scripts, clock moves and settlements over raw HTTP, and checks after
// every step the invariants a real YooKassa keeps:
//
//   - a payment's status only moves forward (pending → waiting_for_capture → succeeded or
//     canceled; succeeded and canceled are final);
//   - refunded_amount is the sum of the payment's succeeded refunds, and succeeded plus
//     pending refunds never exceed the amount;
//   - a key makes at most one object per 24 hours, and a replay within them is byte for byte
//     the first answer;
//   - paging the list with a cursor returns every payment once, newest first;
//   - each payment is notified payment.succeeded at most once, and exactly when succeeded.
func TestRandomSequencesKeepTheInvariants(t *testing.T) {
	t.Parallel()
	reasons := keysOf(anyMap(PaymentCancellationReasons))
	sort.Strings(reasons)
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			b := setup(t)
			m := &model{status: map[string]string{}, answers: map[string]storedAnswer{}}
			for step := range 100 {
				op := m.step(t, b, rng, reasons)
				m.check(t, b, fmt.Sprintf("step %d (%s)", step, op))
			}
			require.Positive(t, m.replays, "no replay exercised")
			require.Positive(t, m.duplicates, "no duplicated key exercised")
		})
	}
}

// model is what the random test remembers between steps.
type model struct {
	status  map[string]string       // payment id → last status seen
	answers map[string]storedAnswer // key → the first 200 answer under it
	// replays and duplicates count the POSTs answered from a stored key, so the test shows
	// it exercised them.
	replays, duplicates int
}

type storedAnswer struct {
	request string
	body    []byte
	at      time.Time
}

func (m *model) step(t *testing.T, b *testBundle, rng *rand.Rand, reasons []string) string {
	t.Helper()
	payments := b.srv.Payments()
	switch n := rng.IntN(100); {
	case n < 40: // a payment under a key from a small pool; its body follows from the key,
		// except now and then, to exercise both replays and duplicated keys
		k := rng.IntN(25)
		method := fmt.Sprintf("pm-%d", k%3)
		switch rng.IntN(8) {
		case 0:
			b.srv.Script(method, Decline(reasons[rng.IntN(len(reasons))]))
		case 1:
			b.srv.Script(method, PendingThen(time.Duration(rng.IntN(120))*time.Minute, Success()))
		case 2:
			b.srv.Script(method, Pending())
		case 3:
			b.srv.Script(method, []Behaviour{TimeoutAfterSuccess(), InternalError(), TooManyRequests(), InternalErrorAfterSuccess()}[rng.IntN(4)])
		}
		body := autopayment(method)
		value := []string{"990.00", "10.00", "1.01"}[k%3]
		if rng.IntN(6) == 0 {
			value = "2.00"
		}
		body["amount"] = map[string]any{"value": value, "currency": "RUB"}
		body["receipt"] = receiptFor(value)
		if k%5 == 0 {
			delete(body, "capture")
		}
		key := fmt.Sprintf("pay-%d", k)
		m.post(t, b, "/payments", key, body)
		return "payment " + key
	case n < 60 && len(payments) > 0: // a refund of some payment
		k := rng.IntN(25)
		p := payments[k%len(payments)].Payment
		if rng.IntN(4) == 0 {
			b.srv.ScriptRefunds([]Behaviour{Pending(), Decline("general_decline"), TimeoutAfterSuccess()}[rng.IntN(3)])
		}
		value := []string{"1.00", "5.00", "500.00", "990.00"}[k%4]
		key := fmt.Sprintf("ref-%d", k)
		m.post(t, b, "/refunds", key, refundOf(p.ID, value))
		return "refund " + key
	case n < 75:
		d := time.Duration(rng.IntN(30*60)) * time.Minute
		b.srv.Advance(d)
		return "advance " + d.String()
	case n < 90 && len(payments) > 0:
		p := payments[rng.IntN(len(payments))].Payment
		if rng.IntN(2) == 0 {
			_ = b.srv.Succeed(p.ID)
			return "succeed " + p.ID
		}
		_ = b.srv.Cancel(p.ID, reasons[rng.IntN(len(reasons))])
		return "cancel " + p.ID
	default:
		for _, rf := range b.srv.Refunds() {
			if rf.Refund.Status == "pending" {
				require.NoError(t, b.srv.SucceedRefund(rf.Refund.ID))
				return "succeed refund " + rf.Refund.ID
			}
		}
		return "nothing"
	}
}

// post sends a POST and checks a replay against the first answer under its key.
func (m *model) post(t *testing.T, b *testBundle, path, key string, body map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	r := b.request(t, http.MethodPost, path, key, raw)
	now := b.srv.Now()
	request := path + " " + string(raw)
	prev, seen := m.answers[key]
	if seen && now.Sub(prev.at) < IdempotenceWindow {
		if prev.request == request {
			require.NoError(t, r.err, "a replay is answered")
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, string(prev.body), string(r.body), "a replay is the first answer")
			m.replays++
		} else if r.err == nil {
			m.duplicates++
			require.Equal(t, http.StatusBadRequest, r.status)
			require.Equal(t, "Idempotence-Key", r.apiError(t).Parameter)
		}
		return
	}
	if r.err == nil && r.status == http.StatusOK {
		m.answers[key] = storedAnswer{request: request, body: r.body, at: now}
	}
}

var statusRank = map[string]int{"pending": 0, "waiting_for_capture": 1, "succeeded": 2, "canceled": 2}

func (m *model) check(t *testing.T, b *testBundle, where string) {
	t.Helper()
	payments := b.srv.Payments()
	refunds := b.srv.Refunds()
	units := func(a Amount) int64 {
		v, err := strconv.ParseInt(strings.Replace(a.Value, ".", "", 1), 10, 64)
		require.NoError(t, err, where)
		return v
	}
	byKey := map[string][]time.Time{}
	for _, rec := range payments {
		p := rec.Payment
		if prev, ok := m.status[p.ID]; ok {
			require.True(t, prev == p.Status || (statusRank[p.Status] > statusRank[prev] && statusRank[prev] < 2),
				"%s: payment %s moved %s → %s", where, p.ID, prev, p.Status)
		}
		m.status[p.ID] = p.Status
		var succeeded, pending int64
		for _, rf := range refunds {
			if rf.Refund.PaymentID != p.ID {
				continue
			}
			switch rf.Refund.Status {
			case "succeeded":
				succeeded += units(rf.Refund.Amount)
			case "pending":
				pending += units(rf.Refund.Amount)
			}
		}
		if succeeded > 0 {
			require.NotNil(t, p.RefundedAmount, where)
			require.Equal(t, succeeded, units(*p.RefundedAmount), "%s: refunded_amount of %s", where, p.ID)
		}
		require.LessOrEqual(t, succeeded+pending, units(p.Amount), "%s: refunds of %s", where, p.ID)
		byKey[rec.IdempotenceKey] = append(byKey[rec.IdempotenceKey], rec.CreatedAt)
	}
	for key, at := range byKey {
		for i := 1; i < len(at); i++ {
			require.GreaterOrEqual(t, at[i].Sub(at[i-1]), IdempotenceWindow, "%s: key %s made two payments within 24 h", where, key)
		}
	}

	// The list, paged by 7, is every payment once, newest first.
	var listed []Payment
	query := "?limit=7"
	for {
		r := b.request(t, http.MethodGet, "/payments"+query, "", nil)
		require.Equal(t, http.StatusOK, r.status, where)
		var l List[Payment]
		require.NoError(t, json.Unmarshal(r.body, &l))
		listed = append(listed, l.Items...)
		if l.NextCursor == "" {
			break
		}
		query = "?limit=7&cursor=" + l.NextCursor
	}
	require.Len(t, listed, len(payments), where)
	ids := map[string]bool{}
	for i, p := range listed {
		require.False(t, ids[p.ID], "%s: %s listed twice", where, p.ID)
		ids[p.ID] = true
		if i > 0 {
			require.GreaterOrEqual(t, listed[i-1].CreatedAt, p.CreatedAt, "%s: not newest first", where)
		}
	}

	succeededNotes := map[string]int{}
	for _, n := range b.srv.Notifications() {
		if n.Event == "payment.succeeded" {
			succeededNotes[n.ObjectID]++
		}
	}
	for _, rec := range payments {
		want := 0
		if rec.Payment.Status == "succeeded" {
			want = 1
		}
		require.Equal(t, want, succeededNotes[rec.Payment.ID], "%s: payment.succeeded notifications of %s (%s)", where, rec.Payment.ID, rec.Payment.Status)
	}
	require.True(t, slices.IsSortedFunc(payments, func(a, b PaymentRecord) int { return a.CreatedAt.Compare(b.CreatedAt) }), where)
}
