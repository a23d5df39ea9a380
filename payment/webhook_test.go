package payment_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestApplyWebhook(t *testing.T) {
	t.Parallel()

	received := now.Add(5)
	event := func(o payment.Outcome) payment.WebhookEvent {
		return payment.WebhookEvent{
			Kind: payment.KindCharge, ProviderPaymentID: ppID, Outcome: o,
			Amount: price, Currency: rub, ReceivedAt: received,
		}
	}
	with := func(o payment.Outcome, f func(*payment.WebhookEvent)) payment.WebhookEvent {
		ev := event(o)
		f(&ev)
		return ev
	}
	tests := []struct {
		name        string
		from        payment.State
		ev          payment.WebhookEvent
		want        payment.State
		wantChanged bool
		wantErr     error
	}{
		{"3.3 pending charge succeeds by webhook", payment.StatePending, event(payment.OutcomeSucceeded), payment.StateSucceeded, true, nil},
		{"3.3 pending charge soft-declined by webhook", payment.StatePending, event(payment.OutcomeSoftDeclined), payment.StateSoftDeclined, true, nil},
		{"3.3 pending charge hard-declined by webhook", payment.StatePending, event(payment.OutcomeHardDeclined), payment.StateHardDeclined, true, nil},
		{"3.3 a pending webhook for a pending charge is a no-op", payment.StatePending, event(payment.OutcomePending), payment.StatePending, false, nil},
		{"duplicate webhook with the same outcome is a no-op", payment.StateSucceeded, event(payment.OutcomeSucceeded), payment.StateSucceeded, false, nil},
		{"duplicate decline webhook is a no-op", payment.StateSoftDeclined, event(payment.OutcomeSoftDeclined), payment.StateSoftDeclined, false, nil},
		{"a late pending webhook after success is a no-op", payment.StateSucceeded, event(payment.OutcomePending), payment.StateSucceeded, false, nil},
		{"3.5 unknown outcome settled by webhook", payment.StateUnknown, event(payment.OutcomeSucceeded), payment.StateSucceeded, true, nil},
		{"a success webhook must name the provider payment when the attempt has none", payment.StateCreated, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) {
			ev.ProviderPaymentID = ""
			ev.IdempotencyKey = "renew:" + subID + ":7:1"
			ev.Amount, ev.Currency = price, rub
		}), payment.StateCreated, false, payment.ErrInvalid},
		{"a webhook before the charge was recorded settles the created attempt", payment.StateCreated, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) {
			ev.IdempotencyKey = "renew:" + subID + ":7:1"
		}), payment.StateSucceeded, true, nil},
		{"a charge that landed after the cancel is not lost", payment.StateCanceled, event(payment.OutcomeSucceeded), payment.StateSucceeded, true, nil},
		{"a canceled attempt the gateway reports pending is open again", payment.StateCanceled, event(payment.OutcomePending), payment.StatePending, true, nil},
		{"a success webhook may omit the id the attempt already has", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) {
			ev.ProviderPaymentID = ""
			ev.IdempotencyKey = "renew:" + subID + ":7:1"
		}), payment.StateSucceeded, true, nil},

		{"conflicting webhook for a settled attempt", payment.StateSucceeded, event(payment.OutcomeSoftDeclined), payment.StateSucceeded, false, payment.ErrAlreadySettled},
		{"success webhook for a hard-declined attempt", payment.StateHardDeclined, event(payment.OutcomeSucceeded), payment.StateHardDeclined, false, payment.ErrAlreadySettled},
		{"a refund event is not about a charge", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.Kind = payment.KindRefund }), payment.StatePending, false, payment.ErrPaymentMismatch},
		{"an event without kind", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.Kind = "" }), payment.StatePending, false, payment.ErrPaymentMismatch},
		{"another key", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.IdempotencyKey = "renew:" + subID + ":7:2" }), payment.StatePending, false, payment.ErrPaymentMismatch},
		{"another provider payment", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.ProviderPaymentID = "pp-other" }), payment.StatePending, false, payment.ErrPaymentMismatch},
		{"another amount", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.Amount = price * 2 }), payment.StatePending, false, payment.ErrAmountMismatch},
		{"another currency", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.Currency = "EUR" }), payment.StatePending, false, payment.ErrAmountMismatch},
		{"unknown is not a webhook outcome", payment.StatePending, event(payment.OutcomeUnknown), payment.StatePending, false, payment.ErrInvalid},
		{"no outcome", payment.StatePending, event(""), payment.StatePending, false, payment.ErrInvalid},
		{"neither payment id nor key", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.ProviderPaymentID = "" }), payment.StatePending, false, payment.ErrInvalid},
		{"no receive time", payment.StatePending, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.ReceivedAt = zeroTime }), payment.StatePending, false, payment.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.from)
			if tt.from == payment.StateCreated || tt.from == payment.StateUnknown || tt.from == payment.StateCanceled {
				require.Empty(t, a.ProviderPaymentID)
			}
			got, changed, err := payment.ApplyWebhook(a, tt.ev)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, a, got, "a refused webhook leaves the attempt unchanged")
				require.False(t, changed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.State)
			require.Equal(t, tt.wantChanged, changed)
			require.Equal(t, got.State.Settled(), !got.SettledAt.IsZero(), "SettledAt is set exactly when settled")
			if changed && got.State.Settled() {
				require.Equal(t, received, got.SettledAt)
				require.Equal(t, ppID, got.ProviderPaymentID)
			}
			if !changed {
				require.Equal(t, a, got)
			}
		})
	}

	t.Run("a webhook with the same outcome twice changes the attempt once", func(t *testing.T) {
		t.Parallel()
		a := attemptIn(t, payment.StatePending)
		once, changed, err := payment.ApplyWebhook(a, event(payment.OutcomeSucceeded))
		require.NoError(t, err)
		require.True(t, changed)
		twice, changed, err := payment.ApplyWebhook(once, with(payment.OutcomeSucceeded, func(ev *payment.WebhookEvent) { ev.ReceivedAt = received.Add(1) }))
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, once, twice, "the first settlement time is kept")
	})
}
