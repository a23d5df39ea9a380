package payment_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestDecide(t *testing.T) {
	t.Parallel()

	def := payment.DefaultDunningSchedule()
	renewal := func(n int, s payment.State) payment.Attempt {
		return attemptNIn(t, payment.PurposeRenewal, n, s)
	}
	tests := []struct {
		name    string
		attempt payment.Attempt
		method  payment.PaymentMethodStatus
		want    payment.Decision
	}{
		{"3.3 a succeeded charge activates", renewal(1, payment.StateSucceeded), consented(), payment.Decision{Action: payment.ActionActivate}},
		{"3.3 a succeeded charge activates even if consent was withdrawn since", renewal(1, payment.StateSucceeded), withdrawn(), payment.Decision{Action: payment.ActionActivate}},
		{"3.3 pending charge grants no access", renewal(1, payment.StatePending), consented(), payment.Decision{Action: payment.ActionWait}},
		{"3.3 pending checkout charge grants no access", attemptNIn(t, payment.PurposeCheckout, 1, payment.StatePending), consented(), payment.Decision{Action: payment.ActionWait}},
		{"3.5 unknown outcome is reconciled, never recharged", renewal(1, payment.StateUnknown), consented(), payment.Decision{Action: payment.ActionReconcile}},
		{"3.5 unknown outcome is reconciled even after consent is withdrawn", renewal(1, payment.StateUnknown), withdrawn(), payment.Decision{Action: payment.ActionReconcile}},
		{"3.5 a created attempt found by a retried job is looked up first", renewal(1, payment.StateCreated), consented(), payment.Decision{Action: payment.ActionReconcile}},
		{"3.5 soft decline retried after 1 day", renewal(1, payment.StateSoftDeclined), consented(), payment.Decision{Action: payment.ActionRetry, RetryAt: dueAt.Add(payment.Day)}},
		{"3.5 soft decline retried after 3 days", renewal(2, payment.StateSoftDeclined), consented(), payment.Decision{Action: payment.ActionRetry, RetryAt: dueAt.Add(3 * payment.Day)}},
		{"3.5 soft decline retried after 5 days", renewal(3, payment.StateSoftDeclined), consented(), payment.Decision{Action: payment.ActionRetry, RetryAt: dueAt.Add(5 * payment.Day)}},
		{"3.5 the last retry failed: stop", renewal(4, payment.StateSoftDeclined), consented(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopRetriesExhausted}},
		{"hard decline: stop at once, never retried", renewal(1, payment.StateHardDeclined), consented(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopHardDecline}},
		{"consent withdrawn: never charged again", renewal(1, payment.StateSoftDeclined), withdrawn(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopConsentWithdrawn}},
		{"3.4 no consent to recurring charges: never retried", renewal(1, payment.StateSoftDeclined), payment.PaymentMethodStatus{Token: token}, payment.Decision{Action: payment.ActionStop, Reason: payment.StopNoConsent}},
		{"consent withdrawn: a canceled attempt stops the subscription", renewal(1, payment.StateCanceled), withdrawn(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopConsentWithdrawn}},
		{"a canceled attempt stops", renewal(1, payment.StateCanceled), consented(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopCanceled}},
		{"3.3 a declined checkout charge is not retried", attemptNIn(t, payment.PurposeCheckout, 1, payment.StateSoftDeclined), consented(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopDeclinedAtCheckout}},
		{"3.3 a hard-declined checkout charge stops", attemptNIn(t, payment.PurposeCheckout, 1, payment.StateHardDeclined), consented(), payment.Decision{Action: payment.ActionStop, Reason: payment.StopHardDecline}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := payment.Decide(tt.attempt, def, tt.method, now)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("3.5 soft decline retried after 1, 3, 5 days, then the subscription ends", func(t *testing.T) {
		t.Parallel()
		a := attemptIn(t, payment.StateSoftDeclined)
		var retries []time.Time
		for {
			d, err := payment.Decide(a, def, consented(), now)
			require.NoError(t, err)
			if d.Action == payment.ActionStop {
				require.Equal(t, payment.StopRetriesExhausted, d.Reason)
				break
			}
			require.Equal(t, payment.ActionRetry, d.Action)
			retries = append(retries, d.RetryAt)
			a, err = a.Retry("att-n", keyOf(payment.PurposeRenewal, a.Number+1), d.RetryAt)
			require.NoError(t, err)
			a, _, err = a.RecordCharge(result(payment.OutcomeSoftDeclined), nil, d.RetryAt)
			require.NoError(t, err)
		}
		require.Equal(t, []time.Time{dueAt.AddDate(0, 0, 1), dueAt.AddDate(0, 0, 3), dueAt.AddDate(0, 0, 5)}, retries)
		require.Equal(t, 4, a.Number, "one charge and three retries")
	})

	t.Run("a configured schedule", func(t *testing.T) {
		t.Parallel()
		s := payment.DunningSchedule{Delays: []time.Duration{2 * payment.Day}}
		d, err := payment.Decide(renewal(1, payment.StateSoftDeclined), s, consented(), now)
		require.NoError(t, err)
		require.Equal(t, payment.Decision{Action: payment.ActionRetry, RetryAt: dueAt.Add(2 * payment.Day)}, d)
		d, err = payment.Decide(renewal(2, payment.StateSoftDeclined), s, consented(), now)
		require.NoError(t, err)
		require.Equal(t, payment.StopRetriesExhausted, d.Reason)
	})

	bad := []struct {
		name     string
		attempt  payment.Attempt
		schedule payment.DunningSchedule
		method   payment.PaymentMethodStatus
	}{
		{"an invalid schedule shows on the first charge", renewal(1, payment.StateSucceeded), payment.DunningSchedule{Delays: []time.Duration{-payment.Day}}, consented()},
		{"a state that does not exist", func() payment.Attempt { a := renewal(1, payment.StateSucceeded); a.State = "paid"; return a }(), def, consented()},
		{"a purpose that does not exist", func() payment.Attempt { a := renewal(1, payment.StateSoftDeclined); a.Purpose = ""; return a }(), def, consented()},
		{"5.1 a card number as the method", renewal(1, payment.StateSoftDeclined), def, payment.PaymentMethodStatus{Token: "4111111111111111", ConsentGivenAt: dueAt}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := payment.Decide(tt.attempt, tt.schedule, tt.method, now)
			require.ErrorIs(t, err, payment.ErrInvalid)
		})
	}
}

func TestCanCharge(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		method  payment.PaymentMethodStatus
		at      time.Time
		wantErr error
	}{
		{"3.4 consent given at checkout", consented(), now, nil},
		{"3.4 consent given at this very moment", payment.PaymentMethodStatus{Token: token, ConsentGivenAt: now}, now, nil},
		{"consent withdrawn: never charged again", withdrawn(), now, payment.ErrConsentWithdrawn},
		{"consent withdrawn: a job queued before the withdrawal is refused too", withdrawn(), dueAt.Add(-2 * time.Hour), payment.ErrConsentWithdrawn},
		{"consent withdrawn: a withdrawal stamped later by a skewed clock still wins", payment.PaymentMethodStatus{Token: token, ConsentGivenAt: dueAt, ConsentWithdrawnAt: now.Add(time.Minute)}, now, payment.ErrConsentWithdrawn},
		{"consent withdrawn: a withdrawal is final even if consent is stamped later", payment.PaymentMethodStatus{Token: token, ConsentGivenAt: now, ConsentWithdrawnAt: dueAt}, now, payment.ErrConsentWithdrawn},
		{"3.4 no consent", payment.PaymentMethodStatus{Token: token}, now, payment.ErrNoConsent},
		{"3.4 consent given after the charge time", payment.PaymentMethodStatus{Token: token, ConsentGivenAt: now.Add(time.Second)}, now, payment.ErrNoConsent},
		{"no token", payment.PaymentMethodStatus{ConsentGivenAt: dueAt}, now, payment.ErrInvalid},
		{"5.1 a card number is not a token", payment.PaymentMethodStatus{Token: "4111 1111 1111 1111", ConsentGivenAt: dueAt}, now, payment.ErrCardData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := payment.CanCharge(tt.method, tt.at)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}
