package subscription_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

func TestAccess(t *testing.T) {
	t.Parallel()
	soft := withOptions(proTerms(1), tariff.Options{SoftLimits: true})
	granted := subscription.Decision{Granted: true, EndsAt: end}
	refused := func(r subscription.Reason) subscription.Decision { return subscription.Decision{Reason: r} }
	tests := []struct {
		name string
		sub  func(f fixture) sub
		now  time.Time
		want subscription.Decision
	}{
		{"3.3 no access before payment", fixture.pending, start, refused(subscription.ReasonNotPaid)},
		{"3.3 no access after the first charge failed", fixture.ended, mid, refused(subscription.ReasonEnded)},
		{"3.3 access from the activation instant", fixture.active, start, granted},
		{"3.1 access until the last instant before the period end", fixture.active, end.Add(-time.Nanosecond), granted},
		{"3.1 period ends before the volume is used up", fixture.active, end, refused(subscription.ReasonExpired)},
		{"3.1 volume used up before the period ends", fixture.exhausted, mid, refused(subscription.ReasonUsedUp)},
		{"3.1 a used-up hard limit refuses access before the status is moved", func(f fixture) sub { return f.used(100) }, mid, refused(subscription.ReasonUsedUp)},
		{"3.1 volume left on one meter does not save another used up", func(f fixture) sub {
			s := f.active()
			p, err := subscription.Consume(*s.Current, "images", 10)
			require.NoError(f.t, err)
			s.Current = &p
			return s
		}, mid, refused(subscription.ReasonUsedUp)},
		{"3.1 the last unit left still gives access", func(f fixture) sub { return f.used(99) }, mid, granted},
		{"3.1 reserved volume does not end access", func(f fixture) sub {
			s := f.used(90)
			p, _, err := subscription.Reserve(*s.Current, subscription.ReserveParams{ID: "r1", Meter: "generations", Quantity: 10}, mid)
			require.NoError(f.t, err)
			s.Current = &p
			return s
		}, mid, granted},
		{"3.1 soft limits never cut access", func(f fixture) sub { return f.with(soft).used(500) }, mid, granted},
		{"3.1 used up and over: the period end is the reason", func(f fixture) sub { return f.used(100) }, end, refused(subscription.ReasonExpired)},
		{"3.6 auto-renew off: paid period runs to its end", fixture.autoRenewOff, end.Add(-time.Second), granted},
		{"3.6 auto-renew off: no access after the period end", fixture.autoRenewOff, end, refused(subscription.ReasonExpired)},
		{"3.5 renewal declined: no access while retried", fixture.pastDue, end.Add(time.Hour), refused(subscription.ReasonPastDue)},
		{"3.5 renewed: access in the new period", func(f fixture) sub {
			return f.must(subscription.Renew(f.exhausted(), subscription.RenewParams{Terms: proTerms(1), Start: end, End: next}, end))
		}, end, subscription.Decision{Granted: true, EndsAt: next}},
		{"2.1.2 suspended user has no access", fixture.suspended, mid, refused(subscription.ReasonSuspended)},
		{"2.1.2 terminated user has no access", fixture.terminated, mid, refused(subscription.ReasonTerminated)},
		{"2.1.4 an extended period gives access past its old end", func(f fixture) sub {
			return f.must(subscription.ExtendPeriod(f.active(), operator, end.Add(6*time.Hour), mid))
		}, end.Add(time.Hour), subscription.Decision{Granted: true, EndsAt: end.Add(6 * time.Hour)}},
		{"3.7 refunded: no access", fixture.refunded, mid, refused(subscription.ReasonRefunded)},
		{"a corrupt status is refused, not guessed", func(f fixture) sub {
			s := f.active()
			s.Status = "renewing"
			return s
		}, mid, refused(subscription.ReasonInvalidState)},
		{"an active subscription without a period is refused, not a panic", func(f fixture) sub {
			s := f.active()
			s.Current = nil
			return s
		}, mid, refused(subscription.ReasonInvalidState)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := subscription.Access(tt.sub(newFixture(t)), tt.now)
			require.Equal(t, tt.want, got)
			if got.Granted {
				require.NoError(t, got.Err())
				return
			}
			err := got.Err()
			require.ErrorIs(t, err, subscription.ErrNoAccess)
			var nae *subscription.NoAccessError
			require.ErrorAs(t, err, &nae)
			require.Equal(t, tt.want.Reason, nae.Reason)
		})
	}
}

func TestAccessEndsAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sub    func(f fixture) sub
		want   time.Time
		wantOK bool
	}{
		{"3.3 never granted before payment", fixture.pending, time.Time{}, false},
		{"3.3 never granted when the first charge failed", fixture.ended, time.Time{}, false},
		{"3.1 period ends before the volume is used up: the period end", fixture.active, end, true},
		{"3.1 volume used up before the period ends: the instant it ran out", fixture.exhausted, mid, true},
		{"3.6 auto-renew off: the period end", fixture.autoRenewOff, end, true},
		{"3.7 refunded mid-period: the refund instant", fixture.refunded, mid, true},
		{"2.1.2 terminated mid-period: the termination instant", fixture.terminated, mid, true},
		{"2.1.2 terminated after the period end: the period end", func(f fixture) sub {
			return f.must(subscription.Terminate(f.pastDue(), operator, next))
		}, end, true},
		{"2.1.2 suspension is a pause: the period end", fixture.suspended, end, true},
		{"2.1.4 extended: the new end", func(f fixture) sub {
			return f.must(subscription.ExtendPeriod(f.active(), operator, next, mid))
		}, next, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := subscription.AccessEndsAt(tt.sub(newFixture(t)))
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
