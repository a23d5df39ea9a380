package payment_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

// msk is Moscow time without needing tzdata.
var msk = time.FixedZone("MSK", 3*60*60)

// dueAt is when the test period's renewal falls due; now is a moment after it.
var (
	dueAt = time.Date(2026, time.March, 31, 0, 0, 0, 0, msk)
	now   = dueAt.Add(time.Minute)
)

const (
	subID  = "0190b2c3-7d4e-7f00-8000-0000000000a1"
	price  = int64(99000) // 990.00 RUB
	rub    = "RUB"
	ppID   = "pp-2f6e"
	token  = "pm-tok-8c1d"
	custID = "cust-42"
)

// zeroTime is the zero time.Time.
var zeroTime time.Time

// errTimeout stands for a gateway call that got no answer.
var errTimeout = errors.New("gateway: context deadline exceeded")

// allStates lists every attempt state.
var allStates = []payment.State{
	payment.StateCreated, payment.StatePending, payment.StateSucceeded, payment.StateSoftDeclined,
	payment.StateHardDeclined, payment.StateUnknown, payment.StateCanceled,
}

// spec is the renewal attempt n of period 7 of the test subscription.
func spec(purpose payment.Purpose, n int) payment.AttemptSpec {
	return payment.AttemptSpec{
		ID: "att-" + string(rune('0'+n)), SubscriptionID: subID, Purpose: purpose,
		PeriodNumber: 7, Number: n, Amount: price, Currency: rub, DueAt: dueAt, IdempotencyKey: keyOf(purpose, n),
	}
}

// keyOf is the test key of attempt n of period 7: readable, unique per attempt. The engine's
// keys come from NewAttemptKey.
func keyOf(purpose payment.Purpose, n int) string {
	prefix := "renew"
	if purpose == payment.PurposeCheckout {
		prefix = "checkout"
	}
	return fmt.Sprintf("%s:%s:7:%d", prefix, subID, n)
}

// newAttempt makes a created attempt n of the test period.
func newAttempt(t testing.TB, purpose payment.Purpose, n int) payment.Attempt {
	t.Helper()
	a, err := payment.NewAttempt(spec(purpose, n), now)
	require.NoError(t, err)
	return a
}

// result is a gateway answer with the given outcome for the test attempt's amount.
func result(o payment.Outcome) payment.ChargeResult {
	r := payment.ChargeResult{Outcome: o, ProviderPaymentID: ppID, Amount: price, Currency: rub}
	if o == payment.OutcomeSoftDeclined {
		r.DeclineCode = "insufficient_funds"
	}
	if o == payment.OutcomeHardDeclined {
		r.DeclineCode = "card_expired"
	}
	return r
}

// attemptIn brings renewal attempt 1 to state s by legal moves.
func attemptIn(t testing.TB, s payment.State) payment.Attempt {
	t.Helper()
	return attemptNIn(t, payment.PurposeRenewal, 1, s)
}

// attemptNIn brings attempt n of purpose to state s by legal moves.
func attemptNIn(t testing.TB, purpose payment.Purpose, n int, s payment.State) payment.Attempt {
	t.Helper()
	a := newAttempt(t, purpose, n)
	var err error
	switch s {
	case payment.StateCreated:
		return a
	case payment.StateCanceled:
		a, err = a.Cancel(payment.ErrNotFound, now)
	case payment.StateUnknown:
		a, _, err = a.RecordCharge(payment.ChargeResult{}, errTimeout, now)
	default:
		a, _, err = a.RecordCharge(result(payment.Outcome(s)), nil, now)
	}
	require.NoError(t, err)
	require.Equal(t, s, a.State)
	return a
}

// tb is what both *testing.T and *rapid.T provide to require.
type tb interface {
	Helper()
	Errorf(format string, args ...any)
	FailNow()
}

// receipt is a valid Income receipt for the test price.
func receipt(t tb) payment.Receipt {
	t.Helper()
	r, err := payment.NewChargeReceipt("Pro tariff, 1 month", price, rub, payment.VAT22Of122, payment.Contact{Email: "a@example.com"})
	require.NoError(t, err)
	return r
}

// consented is a payment method with consent given before the test period.
func consented() payment.PaymentMethodStatus {
	return payment.PaymentMethodStatus{Token: token, ConsentGivenAt: dueAt.AddDate(0, -1, 0)}
}

// withdrawn is consented() with the consent withdrawn.
func withdrawn() payment.PaymentMethodStatus {
	m := consented()
	m.ConsentWithdrawnAt = dueAt.Add(-time.Hour)
	return m
}
