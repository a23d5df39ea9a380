package subscription_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func TestDecideRenewal(t *testing.T) {
	t.Parallel()
	early := withOptions(proTerms(1), tariff.Options{RenewWhenExhausted: true})
	none := subscription.RenewalDecision{Action: subscription.RenewalNone}
	charge := func(at time.Time) subscription.RenewalDecision {
		return subscription.RenewalDecision{Action: subscription.RenewalCharge, At: at, Period: 2}
	}
	endAt := func(at time.Time, r subscription.EndReason) subscription.RenewalDecision {
		return subscription.RenewalDecision{Action: subscription.RenewalEnd, At: at, EndReason: r}
	}
	wait := func(at time.Time) subscription.RenewalDecision {
		return subscription.RenewalDecision{Action: subscription.RenewalWait, At: at}
	}
	tests := []struct {
		name string
		sub  func(f fixture) sub
		now  time.Time
		want subscription.RenewalDecision
	}{
		{"3.5 the period runs: wait for its end", fixture.active, mid, wait(end)},
		{"3.5 period end with auto-renew on: charge for period 2", fixture.active, end, charge(end)},
		{"3.5 a late job still charges for period 2, at the period end", fixture.active, end.Add(time.Hour), charge(end)},
		{"3.6 auto-renew off at the period end: end, no charge", fixture.autoRenewOff, end, endAt(end, subscription.EndAutoRenewOff)},
		{"3.6 auto-renew off: the paid period runs to its end first", fixture.autoRenewOff, mid, wait(end)},
		{"consent withdrawn while the renewal was queued: end, no charge", func(f fixture) sub {
			return f.must(subscription.WithdrawConsent(f.active(), "cust-42", mid))
		}, end, endAt(end, subscription.EndAutoRenewOff)},
		{"3.5 no saved payment method: end", func(f fixture) sub {
			s := f.active()
			s.PaymentMethod = ""
			return s
		}, end, endAt(end, subscription.EndNoPaymentMethod)},
		{"3.5 past due with auto-renew on: charge again", fixture.pastDue, end.AddDate(0, 0, 1), charge(end)},
		{"3.6 past due, then auto-renew off: end", func(f fixture) sub {
			return f.must(subscription.SetAutoRenew(f.pastDue(), false, "cust-42", end.Add(time.Hour)))
		}, end.AddDate(0, 0, 1), endAt(end, subscription.EndAutoRenewOff)},
		{"3.4 exhausted renews at its end by default", fixture.exhausted, mid, wait(end)},
		{"3.1 RenewWhenExhausted: charge at once for the next period", func(f fixture) sub { return f.with(early).exhausted() }, mid.Add(time.Minute), charge(mid)},
		{"3.6 RenewWhenExhausted with auto-renew off: wait for the period end", func(f fixture) sub {
			return f.must(subscription.SetAutoRenew(f.with(early).exhausted(), false, "cust-42", mid))
		}, mid, wait(end)},
		{"2.1.4 extended period: a job scheduled at the old end waits for the new one", func(f fixture) sub {
			return f.must(subscription.ExtendPeriod(f.active(), operator, end.Add(6*time.Hour), mid))
		}, end, wait(end.Add(6 * time.Hour))},
		{"2.1.2 suspended: no charge while held", fixture.suspended, end, none},
		{"3.3 pending: the first charge is not a renewal", fixture.pending, end, none},
		{"3.6 ended: nothing more", fixture.ended, end, none},
		{"3.7 refunded: nothing more", fixture.refunded, end, none},
		{"2.1.2 terminated: nothing more", fixture.terminated, end, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, subscription.DecideRenewal(tt.sub(newFixture(t)), tt.now))
		})
	}
}
