package billingtest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/payment"
)

const (
	gwSub   = "0190b2c3-7d4e-7f00-8000-0000000000a1"
	gwToken = "pm-tok-8c1d"
	gwPrice = int64(99000) // 990.00 RUB
)

var gwNow = time.Date(2026, time.March, 31, 9, 0, 0, 0, time.FixedZone("MSK", 3*60*60))

// gwReq is the request of renewal attempt n of period period of gwSub, as the engine would
// make it: a key per attempt (fixed here so tests can repeat it), metadata with the
// subscription and period.
func gwReq(t *testing.T, period, n int) payment.ChargeParams {
	t.Helper()
	key := fmt.Sprintf("renew_%s-%d-%d", gwSub, period, n)
	return gwCharge(t, key, gwToken, gwPrice, map[string]string{
		billingtest.MetadataSubscriptionID: gwSub,
		billingtest.MetadataPeriod:         strconv.Itoa(period),
	})
}

// gwCharge is a valid charge request.
func gwCharge(t *testing.T, key, token string, amount int64, meta map[string]string) payment.ChargeParams {
	t.Helper()
	r, err := payment.NewChargeReceipt("Pro tariff, 1 month", amount, "RUB", payment.VAT22Of122, payment.Contact{})
	require.NoError(t, err)
	return payment.ChargeParams{
		IdempotencyKey: key, PaymentMethod: token, CustomerID: "cust-42", Amount: amount,
		Currency: "RUB", Description: "Pro, 1 month", Receipt: r, Metadata: meta,
	}
}

// gwRefund is a valid refund request.
func gwRefund(t *testing.T, key, providerPaymentID string, amount int64) payment.RefundParams {
	t.Helper()
	r, err := payment.NewRefundReceipt("Pro tariff, 1 month", amount, "RUB", payment.VAT22Of122, payment.Contact{})
	require.NoError(t, err)
	return payment.RefundParams{
		IdempotencyKey: key, ProviderPaymentID: providerPaymentID, Amount: amount,
		Currency: "RUB", Description: "refund, TERMS 3.7", Receipt: r,
	}
}

// gwAttempt is renewal attempt 1 of period 7 of gwSub, created, and its charge request made by
// the payment package: the fake is driven exactly as the engine drives it.
func gwAttempt(t *testing.T) (payment.Attempt, payment.ChargeParams) {
	t.Helper()
	a, err := payment.NewAttempt(payment.AttemptSpec{
		ID: "att-1", SubscriptionID: gwSub, Purpose: payment.PurposeRenewal, PeriodNumber: 7,
		Number: 1, Amount: gwPrice, Currency: "RUB", DueAt: gwNow, IdempotencyKey: gwReq(t, 7, 1).IdempotencyKey,
	}, gwNow)
	require.NoError(t, err)
	r, err := payment.NewChargeReceipt("Pro tariff, 1 month", gwPrice, "RUB", payment.VAT22Of122, payment.Contact{})
	require.NoError(t, err)
	req, err := a.ChargeParams(payment.PaymentMethodStatus{Token: gwToken, ConsentGivenAt: gwNow.AddDate(0, -1, 0)},
		payment.ChargeDetails{CustomerID: "cust-42", Description: "Pro, 1 month", Receipt: r,
			Metadata: map[string]string{billingtest.MetadataSubscriptionID: gwSub, billingtest.MetadataPeriod: "7"}}, gwNow)
	require.NoError(t, err)
	return a, req
}

func TestGatewayChargeBehaviours(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		behaviour   billingtest.Behaviour
		wantOutcome payment.Outcome // of the result; "" when Charge returns an error
		wantCode    string
		wantLookup  error // nil: Lookup answers the recorded charge
		wantCharges int
		// wantState is where the engine's attempt ends after RecordCharge, then (if unknown)
		// Lookup and RecordLookup.
		wantState payment.State
	}{
		{"3.3 succeed: the money moved", billingtest.Succeed, payment.OutcomeSucceeded, "", nil, 1, payment.StateSucceeded},
		{"3.5 soft decline is a result, not an error", billingtest.SoftDecline, payment.OutcomeSoftDeclined, billingtest.DeclineCodeSoft, nil, 0, payment.StateSoftDeclined},
		{"3.5 hard decline is a result, not an error", billingtest.HardDecline, payment.OutcomeHardDeclined, billingtest.DeclineCodeHard, nil, 0, payment.StateHardDeclined},
		{"3.3 pending grants nothing until confirmed", billingtest.Pending, payment.OutcomePending, "", nil, 0, payment.StatePending},
		{"timeout after success: unknown, settled by Lookup", billingtest.TimeoutAfterSuccess, "", "", nil, 1, payment.StateSucceeded},
		{"timeout before charge: unknown, Lookup not found, back to created", billingtest.TimeoutBeforeCharge, "", "", payment.ErrNotFound, 0, payment.StateCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := billingtest.NewGateway()
			g.Script(gwToken, tt.behaviour)
			a, req := gwAttempt(t)

			res, err := g.Charge(context.Background(), req)
			if tt.wantOutcome == "" {
				require.ErrorIs(t, err, billingtest.ErrTimeout)
				require.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantOutcome, res.Outcome)
				require.Equal(t, "pay_1", res.ProviderPaymentID)
				require.Equal(t, gwPrice, res.Amount)
				require.Equal(t, "RUB", res.Currency)
				require.Equal(t, tt.wantCode, res.DeclineCode)
			}
			a, _, err = a.RecordCharge(res, err, gwNow)
			require.NoError(t, err)

			looked, lookErr := g.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
			if tt.wantLookup != nil {
				require.ErrorIs(t, lookErr, tt.wantLookup)
			} else {
				require.NoError(t, lookErr)
				require.Equal(t, "pay_1", looked.ProviderPaymentID)
			}
			if a.State == payment.StateUnknown {
				a, _, err = a.RecordLookup(looked, lookErr, gwNow)
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantState, a.State)

			charges := g.Charges()
			require.Len(t, charges, tt.wantCharges)
			if tt.wantCharges == 1 {
				require.Equal(t, req.IdempotencyKey, charges[0].IdempotencyKey)
				require.Equal(t, "pay_1", charges[0].ProviderPaymentID)
				require.Equal(t, 1, charges[0].Number)
				require.Equal(t, "att-1", charges[0].Metadata[payment.MetadataAttemptID])
			}
			require.Zero(t, g.ScriptedLeft())
			require.Equal(t, billingtest.CallCounts{Charge: 1, Lookup: 1}, g.Calls())
		})
	}
}

func TestGatewayDedupByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		first billingtest.Behaviour
		// confirm settles a pending first charge before the repeat; "" for none.
		confirm payment.Outcome
		// change alters the repeated request; nil repeats it as is.
		change      func(*payment.ChargeParams)
		wantOutcome payment.Outcome
		wantErr     error
		wantID      string
		wantCharges int
	}{
		{"3.5 succeeded charge repeated: first result, charged once", billingtest.Succeed, "", nil, payment.OutcomeSucceeded, nil, "pay_1", 1},
		{"3.5 soft decline repeated stays declined: a retry needs a new key", billingtest.SoftDecline, "", nil, payment.OutcomeSoftDeclined, nil, "pay_1", 0},
		{"3.5 hard decline repeated stays declined", billingtest.HardDecline, "", nil, payment.OutcomeHardDeclined, nil, "pay_1", 0},
		{"3.3 pending repeated stays pending", billingtest.Pending, "", nil, payment.OutcomePending, nil, "pay_1", 0},
		{"3.3 pending repeated after confirmation answers the confirmation", billingtest.Pending, payment.OutcomeSucceeded, nil, payment.OutcomeSucceeded, nil, "pay_1", 1},
		{"timeout after success repeated: the success, not a second charge", billingtest.TimeoutAfterSuccess, "", nil, payment.OutcomeSucceeded, nil, "pay_1", 1},
		{"timeout before charge repeated: a fresh charge under the same key", billingtest.TimeoutBeforeCharge, "", nil, payment.OutcomeSucceeded, nil, "pay_1", 1},
		{"same key, other amount: ErrKeyReused", billingtest.Succeed, "", func(r *payment.ChargeParams) {
			*r = gwCharge(t, r.IdempotencyKey, r.PaymentMethod, r.Amount+100, r.Metadata)
		}, "", billingtest.ErrKeyReused, "", 1},
		{"same key, other payment method: ErrKeyReused", billingtest.Succeed, "", func(r *payment.ChargeParams) {
			r.PaymentMethod = "pm-other"
		}, "", billingtest.ErrKeyReused, "", 1},
		{"same key, other description: the same charge", billingtest.Succeed, "", func(r *payment.ChargeParams) {
			r.Description = "Pro, one month"
		}, payment.OutcomeSucceeded, nil, "pay_1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := billingtest.NewGateway()
			g.ScriptAll(tt.first)
			req := gwReq(t, 7, 1)
			_, _ = g.Charge(ctx, req)
			if tt.confirm != "" {
				_, err := g.Confirm("pay_1", tt.confirm)
				require.NoError(t, err)
			}
			again := req
			if tt.change != nil {
				tt.change(&again)
			}
			res, err := g.Charge(ctx, again)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantOutcome, res.Outcome)
				require.Equal(t, tt.wantID, res.ProviderPaymentID)
			}
			require.Len(t, g.Charges(), tt.wantCharges)
			require.Len(t, g.ChargesFor(gwSub, 7), tt.wantCharges)
			require.Equal(t, 2, g.Calls().Charge)

			// A new key is a new charge, with the next id.
			res, err = g.Charge(ctx, gwReq(t, 7, 2))
			require.NoError(t, err)
			require.Equal(t, payment.OutcomeSucceeded, res.Outcome)
			require.Equal(t, "pay_2", res.ProviderPaymentID, "a timed-out-before call takes no id")
		})
	}
}

func TestGatewayScriptOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := billingtest.NewGateway()
	g.ScriptAll(billingtest.HardDecline, billingtest.Pending)
	g.Script("pm-a", billingtest.SoftDecline, billingtest.SoftDecline)
	g.Script("pm-a", billingtest.Succeed) // appends
	require.Equal(t, 5, g.ScriptedLeft())

	steps := []struct {
		token string
		want  payment.Outcome
	}{
		{"pm-a", payment.OutcomeSoftDeclined}, // pm-a's queue first
		{"pm-b", payment.OutcomeHardDeclined}, // no queue of its own: the global one
		{"pm-a", payment.OutcomeSoftDeclined}, // pm-a's queue again, global untouched
		{"pm-a", payment.OutcomeSucceeded},    // pm-a's queue, appended
		{"pm-a", payment.OutcomePending},      // pm-a's queue empty: the global one
		{"pm-b", payment.OutcomeSucceeded},    // everything played: the default
		{"pm-c", payment.OutcomeSucceeded},    // the default
	}
	for i, s := range steps {
		res, err := g.Charge(ctx, gwCharge(t, "k-"+strconv.Itoa(i), s.token, gwPrice, nil))
		require.NoError(t, err, "step %d", i)
		require.Equal(t, s.want, res.Outcome, "step %d", i)
		require.Equal(t, "pay_"+strconv.Itoa(i+1), res.ProviderPaymentID, "step %d: ids in charge order, declines included", i)
	}
	require.Zero(t, g.ScriptedLeft())
	charges := g.Charges()
	require.Len(t, charges, 3)
	require.Equal(t, []int{4, 6, 7}, []int{charges[0].Number, charges[1].Number, charges[2].Number})

	// An unknown behaviour value surfaces as an invalid-input error and records nothing.
	g.ScriptAll(billingtest.Behaviour(99))
	_, err := g.Charge(ctx, gwCharge(t, "k-bad", "pm-c", gwPrice, nil))
	require.ErrorIs(t, err, payment.ErrInvalid)
	_, err = g.Lookup(ctx, payment.LookupParams{IdempotencyKey: "k-bad"})
	require.ErrorIs(t, err, payment.ErrNotFound)
	require.Equal(t, "Behaviour(99)", billingtest.Behaviour(99).String())
	require.Equal(t, "TimeoutAfterSuccess", billingtest.TimeoutAfterSuccess.String())
}

func TestGatewayConfirm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		outcome     payment.Outcome
		wantState   payment.State
		wantCode    string
		wantCharges int
	}{
		{"3.3 pending confirmed succeeded grants access", payment.OutcomeSucceeded, payment.StateSucceeded, "", 1},
		{"3.5 pending confirmed soft-declined", payment.OutcomeSoftDeclined, payment.StateSoftDeclined, billingtest.DeclineCodeSoft, 0},
		{"3.5 pending confirmed hard-declined", payment.OutcomeHardDeclined, payment.StateHardDeclined, billingtest.DeclineCodeHard, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			g := billingtest.NewGateway()
			clock := billingtest.NewClock(gwNow.Add(time.Hour))
			g.SetClock(clock)
			g.Script(gwToken, billingtest.Pending)
			a, req := gwAttempt(t)
			res, err := g.Charge(ctx, req)
			require.NoError(t, err)
			a, _, err = a.RecordCharge(res, nil, gwNow)
			require.NoError(t, err)
			require.Equal(t, payment.StatePending, a.State)
			require.Empty(t, g.Charges())

			ev, err := g.Confirm(res.ProviderPaymentID, tt.outcome)
			require.NoError(t, err)
			require.Equal(t, payment.WebhookEvent{
				Kind: payment.KindCharge, ProviderPaymentID: "pay_1", IdempotencyKey: req.IdempotencyKey,
				Outcome: tt.outcome, Amount: gwPrice, Currency: "RUB", DeclineCode: tt.wantCode,
				DeclineMessage: ev.DeclineMessage, ReceivedAt: gwNow.Add(time.Hour),
			}, ev)
			a, changed, err := payment.ApplyWebhook(a, ev)
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, tt.wantState, a.State)
			require.Equal(t, gwNow.Add(time.Hour), a.SettledAt)
			require.Len(t, g.Charges(), tt.wantCharges)

			looked, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
			require.NoError(t, err)
			require.Equal(t, tt.outcome, looked.Outcome)

			// A resent webhook: the same event again, a no-op for the attempt.
			again, err := g.Confirm("pay_1", tt.outcome)
			require.NoError(t, err)
			require.Equal(t, ev, again)
			_, changed, err = payment.ApplyWebhook(a, again)
			require.NoError(t, err)
			require.False(t, changed)

			// Another outcome for a settled payment is refused.
			other := payment.OutcomeSucceeded
			if tt.outcome == payment.OutcomeSucceeded {
				other = payment.OutcomeHardDeclined
			}
			_, err = g.Confirm("pay_1", other)
			require.ErrorIs(t, err, billingtest.ErrNotPending)
		})
	}

	t.Run("bad confirmations", func(t *testing.T) {
		t.Parallel()
		g := billingtest.NewGateway()
		g.ScriptAll(billingtest.Pending)
		_, err := g.Charge(context.Background(), gwReq(t, 1, 1))
		require.NoError(t, err)
		_, err = g.Confirm("pay_404", payment.OutcomeSucceeded)
		require.ErrorIs(t, err, billingtest.ErrNoSuchPayment)
		for _, o := range []payment.Outcome{payment.OutcomePending, payment.OutcomeUnknown, "paid"} {
			_, err = g.Confirm("pay_1", o)
			require.ErrorIs(t, err, payment.ErrInvalid, "outcome %q", o)
		}
		ev, err := g.Confirm("pay_1", payment.OutcomeSucceeded)
		require.NoError(t, err)
		require.False(t, ev.ReceivedAt.IsZero(), "wall clock by default")
	})
}

func TestGatewayLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := billingtest.NewGateway()
	req := gwReq(t, 3, 1)

	_, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
	require.ErrorIs(t, err, payment.ErrNotFound, "a key never charged")
	_, err = g.Lookup(ctx, payment.LookupParams{IdempotencyKey: ""})
	require.ErrorIs(t, err, payment.ErrInvalid)

	res, err := g.Charge(ctx, req)
	require.NoError(t, err)

	g.FailLookups(2)
	for i := range 2 {
		_, err = g.Lookup(ctx, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
		require.ErrorIs(t, err, billingtest.ErrUnavailable, "failure %d", i)
		require.NotErrorIs(t, err, payment.ErrNotFound, "a failed lookup must not look like 'never seen'")
	}
	looked, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
	require.NoError(t, err)
	require.Equal(t, res, looked)

	// A failed lookup leaves an unknown attempt unknown (the engine asks again later).
	a, _ := gwAttempt(t)
	a, _, err = a.RecordCharge(payment.ChargeResult{}, billingtest.ErrTimeout, gwNow)
	require.NoError(t, err)
	g.FailLookups(1)
	_, lookErr := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: a.IdempotencyKey})
	a, changed, err := a.RecordLookup(payment.ChargeResult{}, lookErr, gwNow)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, payment.StateUnknown, a.State)

	require.Equal(t, billingtest.CallCounts{Charge: 1, Lookup: 6}, g.Calls())
}

func TestGatewayValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func(t *testing.T, g *billingtest.Gateway) error
		wantErr error
	}{
		{"1.3 charge without a customer", func(t *testing.T, g *billingtest.Gateway) error {
			req := gwReq(t, 1, 1)
			req.CustomerID = ""
			_, err := g.Charge(ctx, req)
			return err
		}, payment.ErrInvalid},
		{"5.1 charge of a card number instead of a token", func(t *testing.T, g *billingtest.Gateway) error {
			_, err := g.Charge(ctx, gwCharge(t, "k-1", "4111 1111 1111 1111", gwPrice, nil))
			return err
		}, payment.ErrCardData},
		{"charge whose receipt does not add up", func(t *testing.T, g *billingtest.Gateway) error {
			req := gwReq(t, 1, 1)
			req.Amount++
			_, err := g.Charge(ctx, req)
			return err
		}, payment.ErrInvalid},
		{"refund with a charge receipt", func(t *testing.T, g *billingtest.Gateway) error {
			req := gwRefund(t, "r-1", "pay_1", gwPrice)
			req.Receipt = gwReq(t, 1, 1).Receipt
			_, err := g.Refund(ctx, req)
			return err
		}, payment.ErrInvalid},
		{"refund lookup of an empty key", func(t *testing.T, g *billingtest.Gateway) error {
			_, err := g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: ""})
			return err
		}, payment.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := billingtest.NewGateway()
			g.ScriptAll(billingtest.Succeed)
			g.ScriptRefunds(billingtest.Succeed)
			err := tt.call(t, g)
			require.ErrorIs(t, err, tt.wantErr)
			var ve *payment.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Empty(t, g.Charges())
			require.Empty(t, g.Refunds())
			require.Equal(t, 2, g.ScriptedLeft(), "an invalid request plays no behaviour")
		})
	}
}

func TestGatewayRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type step struct {
		key     string
		payID   string
		amount  int64
		want    payment.Outcome // "" when the call returns an error
		wantID  string
		wantErr error
	}
	tests := []struct {
		name        string
		steps       []step
		wantRefunds int
	}{
		{"3.7 full refund", []step{
			{"r-1", "pay_1", gwPrice, payment.OutcomeSucceeded, "rfd_1", nil},
		}, 1},
		{"3.7 a repeated refund key returns the first refund, money returned once", []step{
			{"r-1", "pay_1", gwPrice, payment.OutcomeSucceeded, "rfd_1", nil},
			{"r-1", "pay_1", gwPrice, payment.OutcomeSucceeded, "rfd_1", nil},
		}, 1},
		{"3.7 a second full refund under another key exceeds the payment", []step{
			{"r-1", "pay_1", gwPrice, payment.OutcomeSucceeded, "rfd_1", nil},
			{"r-2", "pay_1", gwPrice, "", "", billingtest.ErrRefundExceedsPayment},
		}, 1},
		{"art. 32 partial refunds up to the charged amount", []step{
			{"r-1", "pay_1", 40000, payment.OutcomeSucceeded, "rfd_1", nil},
			{"r-2", "pay_1", 59001, "", "", billingtest.ErrRefundExceedsPayment},
			{"r-3", "pay_1", 59000, payment.OutcomeSucceeded, "rfd_2", nil},
			{"r-4", "pay_1", 1, "", "", billingtest.ErrRefundExceedsPayment},
		}, 2},
		{"refund of more than charged", []step{
			{"r-1", "pay_1", gwPrice + 1, "", "", billingtest.ErrRefundExceedsPayment},
		}, 0},
		{"refund of a declined payment", []step{
			{"r-1", "pay_2", 100, "", "", billingtest.ErrRefundExceedsPayment},
		}, 0},
		{"refund of an unknown payment", []step{
			{"r-1", "pay_9", 100, "", "", billingtest.ErrNoSuchPayment},
		}, 0},
		{"refund key reused for another amount", []step{
			{"r-1", "pay_1", 100, payment.OutcomeSucceeded, "rfd_1", nil},
			{"r-1", "pay_1", 200, "", "", billingtest.ErrKeyReused},
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := billingtest.NewGateway()
			g.ScriptAll(billingtest.Succeed, billingtest.HardDecline)
			_, err := g.Charge(ctx, gwReq(t, 1, 1)) // pay_1, succeeded
			require.NoError(t, err)
			_, err = g.Charge(ctx, gwReq(t, 2, 1)) // pay_2, hard-declined
			require.NoError(t, err)

			for i, s := range tt.steps {
				res, err := g.Refund(ctx, gwRefund(t, s.key, s.payID, s.amount))
				if s.wantErr != nil {
					require.ErrorIs(t, err, s.wantErr, "step %d", i)
					continue
				}
				require.NoError(t, err, "step %d", i)
				require.Equal(t, s.want, res.Outcome, "step %d", i)
				require.Equal(t, s.wantID, res.ProviderRefundID, "step %d", i)
				require.Equal(t, s.payID, res.ProviderPaymentID, "step %d", i)
				require.Equal(t, s.amount, res.Amount, "step %d", i)
				looked, err := g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: s.key})
				require.NoError(t, err, "step %d", i)
				require.Equal(t, res, looked, "step %d", i)
			}
			refunds := g.Refunds()
			require.Len(t, refunds, tt.wantRefunds)
			for i, r := range refunds {
				require.Equal(t, "rfd_"+strconv.Itoa(i+1), r.ProviderRefundID)
				require.Equal(t, i+1, r.Number)
			}
			_, err = g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-never"})
			require.ErrorIs(t, err, payment.ErrNotFound)
		})
	}
}

func TestGatewayRefundBehaviours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name      string
		behaviour billingtest.Behaviour
		// confirm settles a pending refund; "" for none.
		confirm     payment.Outcome
		wantOutcome payment.Outcome // of the call; "" for ErrTimeout
		wantLookup  payment.Outcome // "" for ErrNotFound
		wantRefunds int
		// wantLeft is whether a full refund under a new key is still possible afterwards.
		wantLeft bool
	}{
		{"3.8 refund succeeds", billingtest.Succeed, "", payment.OutcomeSucceeded, payment.OutcomeSucceeded, 1, false},
		{"3.8 refund soft-declined: may be tried again", billingtest.SoftDecline, "", payment.OutcomeSoftDeclined, payment.OutcomeSoftDeclined, 0, true},
		{"3.8 refund hard-declined: money goes back another way", billingtest.HardDecline, "", payment.OutcomeHardDeclined, payment.OutcomeHardDeclined, 0, true},
		{"3.8 refund pending holds the amount", billingtest.Pending, "", payment.OutcomePending, payment.OutcomePending, 0, false},
		{"3.8 pending refund confirmed", billingtest.Pending, payment.OutcomeSucceeded, payment.OutcomePending, payment.OutcomeSucceeded, 1, false},
		{"3.8 pending refund declined frees the amount", billingtest.Pending, payment.OutcomeHardDeclined, payment.OutcomePending, payment.OutcomeHardDeclined, 0, true},
		{"3.8 refund timed out after the money went back", billingtest.TimeoutAfterSuccess, "", "", payment.OutcomeSucceeded, 1, false},
		{"3.8 refund timed out before it took effect", billingtest.TimeoutBeforeCharge, "", "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := billingtest.NewGateway()
			g.SetClock(billingtest.NewClock(gwNow))
			_, err := g.Charge(ctx, gwReq(t, 1, 1))
			require.NoError(t, err)
			g.ScriptRefunds(tt.behaviour)

			res, err := g.Refund(ctx, gwRefund(t, "r-1", "pay_1", gwPrice))
			if tt.wantOutcome == "" {
				require.ErrorIs(t, err, billingtest.ErrTimeout)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantOutcome, res.Outcome)
				require.Equal(t, "rfd_1", res.ProviderRefundID)
			}
			if tt.confirm != "" {
				ev, err := g.ConfirmRefund("rfd_1", tt.confirm)
				require.NoError(t, err)
				require.Equal(t, payment.KindRefund, ev.Kind)
				require.Equal(t, "rfd_1", ev.ProviderRefundID)
				require.Equal(t, "pay_1", ev.ProviderPaymentID)
				require.Equal(t, "r-1", ev.IdempotencyKey)
				require.Equal(t, tt.confirm, ev.Outcome)
				require.Equal(t, gwNow, ev.ReceivedAt)
			}
			looked, err := g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-1"})
			if tt.wantLookup == "" {
				require.ErrorIs(t, err, payment.ErrNotFound)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantLookup, looked.Outcome)
			}
			require.Len(t, g.Refunds(), tt.wantRefunds)

			_, err = g.Refund(ctx, gwRefund(t, "r-2", "pay_1", gwPrice))
			if tt.wantLeft {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, billingtest.ErrRefundExceedsPayment)
			}
		})
	}

	t.Run("bad refund confirmations", func(t *testing.T) {
		t.Parallel()
		g := billingtest.NewGateway()
		_, err := g.Charge(ctx, gwReq(t, 1, 1))
		require.NoError(t, err)
		_, err = g.Refund(ctx, gwRefund(t, "r-1", "pay_1", 100))
		require.NoError(t, err)
		_, err = g.ConfirmRefund("rfd_9", payment.OutcomeSucceeded)
		require.ErrorIs(t, err, billingtest.ErrNoSuchPayment)
		_, err = g.ConfirmRefund("rfd_1", payment.OutcomeHardDeclined)
		require.ErrorIs(t, err, billingtest.ErrNotPending)
		_, err = g.ConfirmRefund("rfd_1", payment.OutcomePending)
		require.ErrorIs(t, err, payment.ErrInvalid)
		g.FailRefundLookups(1)
		_, err = g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-1"})
		require.ErrorIs(t, err, billingtest.ErrUnavailable)
		_, err = g.LookupRefund(ctx, payment.RefundLookupParams{IdempotencyKey: "r-1"})
		require.NoError(t, err)
		require.Equal(t, billingtest.CallCounts{Charge: 1, Refund: 1, LookupRefund: 2}, g.Calls())
	})
}

func TestGatewayLatency(t *testing.T) {
	t.Parallel()
	g := billingtest.NewGateway()
	g.SetLatency(time.Hour)
	g.ScriptAll(billingtest.Succeed)
	req := gwReq(t, 1, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := g.Charge(ctx, req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	_, err = g.Lookup(canceled, payment.LookupParams{IdempotencyKey: req.IdempotencyKey})
	require.ErrorIs(t, err, context.Canceled)
	_, err = g.Refund(canceled, gwRefund(t, "r-1", "pay_1", 100))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, g.ScriptedLeft(), "a call cut off while waiting plays nothing")

	g.SetLatency(time.Millisecond)
	res, err := g.Charge(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "pay_1", res.ProviderPaymentID, "the cut-off call recorded nothing")
	require.Equal(t, billingtest.CallCounts{Charge: 2, Refund: 1, Lookup: 1}, g.Calls())
}

func TestGatewayChargesFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := billingtest.NewGateway()
	g.ScriptAll(billingtest.Succeed, billingtest.SoftDecline, billingtest.Succeed, billingtest.Succeed)
	for _, req := range []payment.ChargeParams{
		gwReq(t, 1, 1), // pay_1 succeeded
		gwReq(t, 2, 1), // pay_2 soft-declined
		gwReq(t, 2, 2), // pay_3 succeeded
		gwCharge(t, "other:1", gwToken, 500, map[string]string{billingtest.MetadataSubscriptionID: "sub-b", billingtest.MetadataPeriod: "2"}), // pay_4
	} {
		_, err := g.Charge(ctx, req)
		require.NoError(t, err)
	}
	require.Len(t, g.ChargesFor(gwSub, 1), 1)
	p2 := g.ChargesFor(gwSub, 2)
	require.Len(t, p2, 1)
	require.Equal(t, "pay_3", p2[0].ProviderPaymentID)
	require.Equal(t, gwPrice, p2[0].Amount)
	require.Equal(t, "Pro, 1 month", p2[0].Description)
	require.Equal(t, payment.ReceiptIncome, p2[0].Receipt.Kind)
	require.Empty(t, g.ChargesFor(gwSub, 3))
	require.Len(t, g.ChargesFor("sub-b", 2), 1)

	require.Equal(t, 3, g.SuccessfulCharges(nil))
	require.Equal(t, 2, g.SuccessfulCharges(func(r payment.ChargeParams) bool { return r.Amount == gwPrice }))

	// Records are copies: changing what the gateway received or returned changes nothing.
	p2[0].Metadata[billingtest.MetadataPeriod] = "9"
	p2[0].Receipt.Items[0].Amount = 1
	again := g.ChargesFor(gwSub, 2)
	require.Len(t, again, 1)
	require.Equal(t, gwPrice, again[0].Receipt.Items[0].Amount)
}

// TestGatewayConcurrent races duplicate charges of the same keys: each key is charged once,
// ids are pay_1..pay_n without gaps, and every duplicate gets the first result.
func TestGatewayConcurrent(t *testing.T) {
	t.Parallel()
	const keys, dups = 16, 4
	g := billingtest.NewGateway()
	g.SetLatency(time.Millisecond)
	g.ScriptAll(billingtest.TimeoutAfterSuccess, billingtest.Pending, billingtest.SoftDecline)
	reqs := make([]payment.ChargeParams, keys)
	for k := range reqs {
		reqs[k] = gwReq(t, k+1, 1)
	}
	results := make([][]payment.ChargeResult, keys)
	for k := range results {
		results[k] = make([]payment.ChargeResult, dups)
	}
	var wg sync.WaitGroup
	for k := range keys {
		for d := range dups {
			wg.Go(func() {
				res, err := g.Charge(context.Background(), reqs[k])
				if err != nil {
					res, err = g.Lookup(context.Background(), payment.LookupParams{IdempotencyKey: reqs[k].IdempotencyKey})
				}
				if err == nil {
					results[k][d] = res
				}
				_ = g.Charges()
				_ = g.Calls()
			})
		}
	}
	wg.Wait()

	ids := map[string]bool{}
	for k := range keys {
		for d := range dups {
			require.Equal(t, results[k][0], results[k][d], "key %d: every duplicate sees the first result", k)
		}
		ids[results[k][0].ProviderPaymentID] = true
	}
	for i := 1; i <= keys; i++ {
		require.True(t, ids["pay_"+strconv.Itoa(i)], "pay_%d", i)
	}
	require.Len(t, g.Charges(), keys-2, "one success per key but the pending and the declined one")
	for k := range keys {
		require.LessOrEqual(t, len(g.ChargesFor(gwSub, k+1)), 1)
	}
	require.Equal(t, keys*dups, g.Calls().Charge)
	require.Zero(t, g.ScriptedLeft())
}

// TestGatewayDedupProperty replays random charges, lookups and confirmations against a model
// of a provider: per key, the first recorded outcome (or a confirmation of a pending one) is
// the only answer, and there is never more than one success per key.
func TestGatewayDedupProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		g := billingtest.NewGateway()
		model := map[string]payment.ChargeResult{} // key -> what the gateway must answer
		ids := map[string]string{}                 // provider id -> key
		next := 1
		behaviours := []billingtest.Behaviour{billingtest.Succeed, billingtest.SoftDecline, billingtest.HardDecline,
			billingtest.Pending, billingtest.TimeoutAfterSuccess, billingtest.TimeoutBeforeCharge}
		keyGen := rapid.SampledFrom([]string{"k1", "k2", "k3"})
		reqs := map[string]payment.ChargeParams{}
		for _, k := range []string{"k1", "k2", "k3"} {
			reqs[k] = gwCharge(t, k, gwToken, gwPrice, nil)
		}
		rt.Repeat(map[string]func(*rapid.T){
			"charge": func(rt *rapid.T) {
				key := keyGen.Draw(rt, "key")
				if want, ok := model[key]; ok {
					res, err := g.Charge(ctx, reqs[key])
					require.NoError(rt, err)
					require.Equal(rt, want, res)
					return
				}
				b := rapid.SampledFrom(behaviours).Draw(rt, "behaviour")
				g.Script(gwToken, b)
				res, err := g.Charge(ctx, reqs[key])
				var o payment.Outcome
				switch b {
				case billingtest.TimeoutBeforeCharge:
					require.ErrorIs(rt, err, billingtest.ErrTimeout)
					return
				case billingtest.TimeoutAfterSuccess:
					require.ErrorIs(rt, err, billingtest.ErrTimeout)
					o = payment.OutcomeSucceeded
				default:
					require.NoError(rt, err)
					o = res.Outcome
				}
				id := fmt.Sprintf("pay_%d", next)
				next++
				want := payment.ChargeResult{Outcome: o, ProviderPaymentID: id, Amount: gwPrice, Currency: "RUB"}
				lk, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: key})
				require.NoError(rt, err)
				want.DeclineCode, want.DeclineMessage = lk.DeclineCode, lk.DeclineMessage
				require.Equal(rt, want, lk)
				model[key] = want
				ids[id] = key
			},
			"lookup": func(rt *rapid.T) {
				key := keyGen.Draw(rt, "key")
				res, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: key})
				if want, ok := model[key]; ok {
					require.NoError(rt, err)
					require.Equal(rt, want, res)
				} else {
					require.ErrorIs(rt, err, payment.ErrNotFound)
				}
			},
			"confirm": func(rt *rapid.T) {
				if next == 1 {
					rt.Skip("no payment yet")
				}
				id := fmt.Sprintf("pay_%d", rapid.IntRange(1, next-1).Draw(rt, "payment"))
				o := rapid.SampledFrom([]payment.Outcome{payment.OutcomeSucceeded, payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined}).Draw(rt, "outcome")
				key := ids[id]
				ev, err := g.Confirm(id, o)
				switch model[key].Outcome {
				case payment.OutcomePending, o:
					require.NoError(rt, err)
					want := model[key]
					want.Outcome, want.DeclineCode, want.DeclineMessage = o, ev.DeclineCode, ev.DeclineMessage
					model[key] = want
				default:
					require.ErrorIs(rt, err, billingtest.ErrNotPending)
				}
			},
			"": func(rt *rapid.T) {
				succeeded := 0
				for _, r := range model {
					if r.Outcome == payment.OutcomeSucceeded {
						succeeded++
					}
				}
				charges := g.Charges()
				require.Len(rt, charges, succeeded)
				seen := map[string]bool{}
				for _, c := range charges {
					require.False(rt, seen[c.IdempotencyKey], "two successes under one key")
					seen[c.IdempotencyKey] = true
				}
			},
		})
	})
}

func TestGatewayLandsLater(t *testing.T) {
	ctx := context.Background()
	g := billingtest.NewGateway()
	g.SetClock(billingtest.NewClock(gwNow))
	g.Script(gwToken, billingtest.LandsLater, billingtest.LandsLater, billingtest.LandsLater)
	r1, r2, r3 := gwReq(t, 2, 1), gwReq(t, 3, 1), gwReq(t, 4, 1)

	for _, r := range []payment.ChargeParams{r1, r2, r3} {
		_, err := g.Charge(ctx, r)
		require.ErrorIs(t, err, billingtest.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		_, err = g.Lookup(ctx, payment.LookupParams{IdempotencyKey: r.IdempotencyKey})
		require.ErrorIs(t, err, payment.ErrNotFound, "held, not recorded yet")
	}
	require.Equal(t, 3, g.Held())
	require.Empty(t, g.Charges())

	// A new Charge under a held key lands it at once; it plays no behaviour.
	g.Script(gwToken, billingtest.HardDecline)
	res, err := g.Charge(ctx, r2)
	require.NoError(t, err)
	require.Equal(t, payment.OutcomeSucceeded, res.Outcome)
	require.Equal(t, "pay_1", res.ProviderPaymentID)
	require.Equal(t, 2, g.Held())
	require.Equal(t, 1, g.ScriptedLeft(), "landing a held charge plays no behaviour")

	// Another request under a held key is refused.
	other := r1
	other.CustomerID = "someone-else"
	_, err = g.Charge(ctx, other)
	require.ErrorIs(t, err, billingtest.ErrKeyReused)

	// Land records the rest as succeeded, in the order held, with their webhooks.
	evs := g.Land()
	require.Len(t, evs, 2)
	for i, r := range []payment.ChargeParams{r1, r3} {
		require.Equal(t, payment.KindCharge, evs[i].Kind)
		require.Equal(t, r.IdempotencyKey, evs[i].IdempotencyKey)
		require.Equal(t, payment.OutcomeSucceeded, evs[i].Outcome)
		require.Equal(t, r.Amount, evs[i].Amount)
		require.True(t, evs[i].ReceivedAt.Equal(gwNow))
		got, err := g.Lookup(ctx, payment.LookupParams{IdempotencyKey: r.IdempotencyKey})
		require.NoError(t, err)
		require.Equal(t, evs[i].ProviderPaymentID, got.ProviderPaymentID)
	}
	require.Equal(t, []string{"pay_2", "pay_3"}, []string{evs[0].ProviderPaymentID, evs[1].ProviderPaymentID})
	require.Zero(t, g.Held())
	require.Nil(t, g.Land())
	require.Len(t, g.Charges(), 3)

	// A repeat after landing is answered from the store: no new money.
	res, err = g.Charge(ctx, r1)
	require.NoError(t, err)
	require.Equal(t, "pay_2", res.ProviderPaymentID)
	require.Len(t, g.Charges(), 3)

	// Refunds cannot play it.
	g.ScriptRefunds(billingtest.LandsLater)
	_, err = g.Refund(ctx, payment.RefundParams{IdempotencyKey: "rk-1", ProviderPaymentID: "pay_1", Amount: 100, Currency: "RUB"})
	var ve *payment.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "LandsLater", billingtest.LandsLater.String())
}
