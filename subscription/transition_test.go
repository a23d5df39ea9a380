package subscription_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

type (
	sub   = subscription.Subscription
	audit = subscription.AuditEntry
)

// event is one transition call with its parameters bound.
type event func(s sub) (sub, audit, error)

func activate(p subscription.ActivateParams, now time.Time) event {
	return func(s sub) (sub, audit, error) { return subscription.Activate(s, p, now) }
}

func renew(terms tariff.Terms, from, to, now time.Time) event {
	return func(s sub) (sub, audit, error) {
		return subscription.Renew(s, subscription.RenewParams{Terms: terms, Start: from, End: to}, now)
	}
}

func endFor(r subscription.EndReason, now time.Time) event {
	return func(s sub) (sub, audit, error) { return subscription.End(s, r, now) }
}

func admin(fn func(sub, subscription.AdminAction, time.Time) (sub, audit, error), a subscription.AdminAction, now time.Time) event {
	return func(s sub) (sub, audit, error) { return fn(s, a, now) }
}

func extend(a subscription.AdminAction, newEnd, now time.Time) event {
	return func(s sub) (sub, audit, error) { return subscription.ExtendPeriod(s, a, newEnd, now) }
}

func at(fn func(sub, time.Time) (sub, audit, error), now time.Time) event {
	return func(s sub) (sub, audit, error) { return fn(s, now) }
}

func TestNew(t *testing.T) {
	t.Parallel()
	valid := subscription.NewParams{ID: "sub-1", CustomerID: "cust-42", Checkout: proTerms(1), PaymentMethod: token}
	tests := []struct {
		name    string
		edit    func(p *subscription.NewParams)
		wantErr error
		field   string
	}{
		{name: "1.3 subscription belongs to the host's customer ID", edit: func(*subscription.NewParams) {}},
		{name: "1.3 customer ID required", edit: func(p *subscription.NewParams) { p.CustomerID = " " }, wantErr: subscription.ErrInvalid, field: "customer_id"},
		{name: "subscription ID required", edit: func(p *subscription.NewParams) { p.ID = "" }, wantErr: subscription.ErrInvalid, field: "id"},
		{name: "3.4 checkout terms need a tariff code", edit: func(p *subscription.NewParams) { p.Checkout.Code = "" }, wantErr: subscription.ErrInvalid, field: "checkout.code"},
		{name: "3.1 a meter has one limit", edit: func(p *subscription.NewParams) {
			p.Checkout.Limits = []tariff.Limit{{Meter: "images", Quantity: 1}, {Meter: "images", Quantity: 2}}
		}, wantErr: subscription.ErrInvalid, field: "checkout.limits[1].meter"},
		{name: "3.1 a limit has a positive volume", edit: func(p *subscription.NewParams) {
			p.Checkout.Limits = []tariff.Limit{{Meter: "images", Quantity: 0}}
		}, wantErr: subscription.ErrInvalid, field: "checkout.limits[0].quantity"},
		{name: "5.1 a card number is never stored as the payment method", edit: func(p *subscription.NewParams) {
			p.PaymentMethod = "4111 1111 1111 1111"
		}, wantErr: subscription.ErrCardData, field: "payment_method"},
		{name: "5.1 a numeric token that fails the Luhn check is a token", edit: func(p *subscription.NewParams) {
			p.PaymentMethod = "4111111111111112"
		}},
		{name: "3.3 no payment method yet: the first charge saves it", edit: func(p *subscription.NewParams) { p.PaymentMethod = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := valid
			tt.edit(&p)
			got, entry, err := subscription.New(p, start)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorIs(t, err, subscription.ErrInvalid)
				var ve *subscription.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, tt.field, ve.Field)
				require.Zero(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, subscription.StatusPending, got.Status)
			require.Nil(t, got.Current, "3.3 no period before the first charge")
			require.True(t, got.AutoRenew, "3.4 paying at checkout is consent to recurring charges")
			require.Equal(t, p.Checkout, got.Checkout)
			require.Equal(t, subscription.DefaultLocation, got.LocationName())
			require.Equal(t, subscription.AuditEntry{SubscriptionID: p.ID, Action: subscription.ActionCreate,
				To: subscription.StatusPending, Actor: subscription.ActorSystem, Reason: "checkout",
				Detail: "tariff pro v1", At: start}, entry)
		})
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	soft := withOptions(proTerms(1), tariff.Options{SoftLimits: true})
	early := withOptions(proTerms(1), tariff.Options{RenewWhenExhausted: true})
	tests := []struct {
		name    string
		from    func(f fixture) sub
		event   event
		want    subscription.Status // on success
		wantErr error               // a sentinel the error must match; nil for success
		check   func(t *testing.T, before, after sub, entry audit)
	}{
		// Activate
		{
			name: "3.3 first charge succeeded: pending → active, period 1 under the checkout terms",
			from: fixture.pending, event: activate(subscription.ActivateParams{Start: start, End: end}, start),
			want: subscription.StatusActive,
			check: func(t *testing.T, before, after sub, entry audit) {
				require.Equal(t, &subscription.Period{Number: 1, Terms: before.Checkout, Start: start, End: end, GrantedAt: start}, after.Current)
				require.Equal(t, subscription.ActionActivate, entry.Action)
				require.Equal(t, subscription.ActorSystem, entry.Actor)
			},
		},
		{
			name: "3.7 late activation: access granted when recorded, after the period start",
			from: fixture.pending, event: activate(subscription.ActivateParams{Start: start, End: end}, start.Add(2*time.Hour)),
			want: subscription.StatusActive,
			check: func(t *testing.T, _, after sub, _ audit) {
				require.Equal(t, start, after.Current.Start)
				require.Equal(t, start.Add(2*time.Hour), after.Current.GrantedAt)
			},
		},
		{
			name: "5.1 activation saves the gateway token of the first charge",
			from: func(f fixture) sub {
				s := f.pending()
				s.PaymentMethod = ""
				return s
			},
			event: activate(subscription.ActivateParams{Start: start, End: end, PaymentMethod: "pm_new"}, start),
			want:  subscription.StatusActive,
			check: func(t *testing.T, _, after sub, _ audit) { require.Equal(t, "pm_new", after.PaymentMethod) },
		},
		{name: "3.3 a second activation is refused", from: fixture.active, event: activate(subscription.ActivateParams{Start: start, End: end}, start), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "3.3 activation after the first charge failed is refused", from: fixture.ended, event: activate(subscription.ActivateParams{Start: start, End: end}, start), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "3.1 activation with end before start is refused", from: fixture.pending, event: activate(subscription.ActivateParams{Start: end, End: start}, start), wantErr: subscription.ErrInvalid},
		{name: "3.3 activation for a period already over is refused", from: fixture.pending, event: activate(subscription.ActivateParams{Start: start, End: end}, end), wantErr: subscription.ErrInvalid},
		{name: "5.1 activation refuses a card number as token", from: fixture.pending, event: activate(subscription.ActivateParams{Start: start, End: end, PaymentMethod: "5555-5555-5555-4444"}, start), wantErr: subscription.ErrCardData},

		// FirstPaymentFailed
		{
			name: "3.3 first charge failed: pending → ended without access",
			from: fixture.pending, event: func(s sub) (sub, audit, error) { return subscription.FirstPaymentFailed(s, "card declined", start) },
			want: subscription.StatusEnded,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Nil(t, after.Current)
				require.False(t, after.AutoRenew)
				require.Equal(t, start, after.EndedAt)
				require.Equal(t, "card declined", entry.Reason)
			},
		},
		{name: "3.3 a paid subscription cannot fail its first charge", from: fixture.active, event: func(s sub) (sub, audit, error) { return subscription.FirstPaymentFailed(s, "", mid) }, wantErr: subscription.ErrTransitionNotAllowed},

		// Renew
		{
			name: "3.5 renewal charge at the period end: active → active, period 2",
			from: fixture.active, event: renew(proTerms(1), end, next, end),
			want: subscription.StatusActive,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Equal(t, &subscription.Period{Number: 2, Terms: proTerms(1), Start: end, End: next, GrantedAt: end}, after.Current)
				require.Equal(t, subscription.ActionRenew, entry.Action)
			},
		},
		{
			name: "2.1.6 renewal under a new price: the new period has it, the paid one kept its own",
			from: func(f fixture) sub { return f.used(40) }, event: renew(proTerms(2), end, next, end.Add(time.Minute)),
			want: subscription.StatusActive,
			check: func(t *testing.T, before, after sub, _ audit) {
				require.Equal(t, 1, before.Current.Terms.Version)
				require.Equal(t, int64(40), before.Current.Usage["generations"].Used)
				require.Equal(t, proTerms(2), after.Current.Terms)
				require.Empty(t, after.Current.Usage, "3.1 a new period starts with its full volume")
				require.Equal(t, end.Add(time.Minute), after.Current.GrantedAt)
			},
		},
		{name: "3.5 renewal after a declined charge was retried: past_due → active", from: fixture.pastDue, event: renew(proTerms(1), end, next, end.AddDate(0, 0, 3)), want: subscription.StatusActive},
		{name: "3.1 volume used up: exhausted renews at the period end", from: fixture.exhausted, event: renew(proTerms(1), end, next, end), want: subscription.StatusActive},
		{
			name: "3.1 RenewWhenExhausted: exhausted renews at once, before the period end",
			from: func(f fixture) sub { return f.with(early).exhausted() }, event: renew(early, mid, mid.AddDate(0, 1, 0), mid),
			want:  subscription.StatusActive,
			check: func(t *testing.T, _, after sub, _ audit) { require.Equal(t, mid, after.Current.Start) },
		},
		{
			name: "3.6 a charge in flight when auto-renew was switched off still gives its period",
			from: fixture.autoRenewOff, event: renew(proTerms(1), end, next, end),
			want: subscription.StatusActive,
		},
		{name: "3.6 renewal before the period end is refused", from: fixture.active, event: renew(proTerms(1), end, next, mid), wantErr: subscription.ErrPeriodNotOver},
		{name: "3.4 exhausted renews only at its end by default", from: fixture.exhausted, event: renew(proTerms(1), mid, next, mid), wantErr: subscription.ErrPeriodNotOver},
		{name: "3.3 a pending subscription is activated, not renewed", from: fixture.pending, event: renew(proTerms(1), end, next, end), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "2.1.2 a suspended subscription is not renewed", from: fixture.suspended, event: renew(proTerms(1), end, next, end), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "2.1.6 a renewal overlapping the paid period is refused", from: fixture.active, event: renew(proTerms(1), mid, next, end), wantErr: subscription.ErrInvalid},
		{name: "3.5 a renewal under another tariff is refused", from: fixture.active, event: renew(withCode(proTerms(1), "max"), end, next, end), wantErr: subscription.ErrInvalid},
		{name: "3.3 a renewal for a period already over is refused", from: fixture.active, event: renew(proTerms(1), end, next, next), wantErr: subscription.ErrInvalid},

		// MarkPastDue
		{name: "3.5 soft decline at the period end: active → past_due", from: fixture.active, event: at(subscription.MarkPastDue, end), want: subscription.StatusPastDue},
		{name: "3.1 soft decline of an exhausted period at its end: exhausted → past_due", from: fixture.exhausted, event: at(subscription.MarkPastDue, end), want: subscription.StatusPastDue},
		{name: "2.1.6 a decline never cuts the paid period short", from: fixture.active, event: at(subscription.MarkPastDue, end.Add(-time.Nanosecond)), wantErr: subscription.ErrPeriodNotOver},
		{name: "3.5 past_due is not marked again", from: fixture.pastDue, event: at(subscription.MarkPastDue, next), wantErr: subscription.ErrTransitionNotAllowed},

		// End
		{
			name: "3.6 auto-renew off: ended at the period end",
			from: fixture.autoRenewOff, event: endFor(subscription.EndAutoRenewOff, end),
			want: subscription.StatusEnded,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Equal(t, end, after.EndedAt)
				require.Equal(t, "auto_renew_off", entry.Reason)
			},
		},
		{name: "3.6 auto-renew off: the paid period runs to its end", from: fixture.autoRenewOff, event: endFor(subscription.EndAutoRenewOff, mid), wantErr: subscription.ErrPeriodNotOver},
		{name: "3.6 auto_renew_off is refused while auto-renew is on", from: fixture.active, event: endFor(subscription.EndAutoRenewOff, end), wantErr: subscription.ErrInvalid},
		{name: "3.5 hard decline at the period end: active → ended", from: fixture.active, event: endFor(subscription.EndHardDecline, end), want: subscription.StatusEnded},
		{name: "3.5 hard decline on a retry: past_due → ended", from: fixture.pastDue, event: endFor(subscription.EndHardDecline, next), want: subscription.StatusEnded},
		{name: "3.5 every retry failed: past_due → ended", from: fixture.pastDue, event: endFor(subscription.EndDunningExhausted, next), want: subscription.StatusEnded},
		{name: "3.5 dunning cannot be exhausted without a decline", from: fixture.active, event: endFor(subscription.EndDunningExhausted, end), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "a token bound to another customer is never charged: ended at the period end", from: fixture.active, event: endFor(subscription.EndPaymentMethodRefused, end), want: subscription.StatusEnded},
		{name: "consent withdrawn: ended at the period end", from: fixture.exhausted, event: endFor(subscription.EndConsentWithdrawn, end), want: subscription.StatusEnded},
		{name: "3.5 no_payment_method is refused while a token is saved", from: fixture.active, event: endFor(subscription.EndNoPaymentMethod, end), wantErr: subscription.ErrInvalid},
		{name: "an unknown end reason is refused", from: fixture.active, event: endFor("bored", end), wantErr: subscription.ErrInvalid},
		{name: "2.1.2 a suspended subscription does not end on its own", from: fixture.suspended, event: endFor(subscription.EndHardDecline, end), wantErr: subscription.ErrTransitionNotAllowed},

		// Exhaust
		{
			name: "3.1 volume used up before the period ends: active → exhausted",
			from: func(f fixture) sub { return f.used(100) }, event: at(subscription.Exhaust, mid),
			want: subscription.StatusExhausted,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Equal(t, mid, after.Current.ExhaustedAt)
				require.Equal(t, "meters: generations", entry.Detail)
			},
		},
		{name: "3.1 volume left: exhausting is refused", from: func(f fixture) sub { return f.used(99) }, event: at(subscription.Exhaust, mid), wantErr: subscription.ErrNotExhausted},
		{name: "3.1 soft limits never exhaust", from: func(f fixture) sub { return f.with(soft).used(150) }, event: at(subscription.Exhaust, mid), wantErr: subscription.ErrNotExhausted},
		{name: "3.1 exhausted is not exhausted again", from: fixture.exhausted, event: at(subscription.Exhaust, mid), wantErr: subscription.ErrTransitionNotAllowed},

		// Refund
		{
			name: "3.7 refund: active → refunded, access ends now",
			from: fixture.active, event: admin(subscription.Refund, operator, mid),
			want: subscription.StatusRefunded,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Equal(t, mid, after.EndedAt)
				require.False(t, after.AutoRenew, "3.7 nothing is charged after a refund")
				require.Equal(t, operator.Actor, entry.Actor)
				require.Equal(t, operator.Reason, entry.Reason)
			},
		},
		{
			name: "3.7 refund of a suspended subscription forgets the suspension",
			from: fixture.suspended, event: admin(subscription.Refund, operator, mid),
			want:  subscription.StatusRefunded,
			check: func(t *testing.T, _, after sub, _ audit) { require.Empty(t, after.SuspendedFrom) },
		},
		{name: "3.3 nothing paid, nothing to refund", from: fixture.pending, event: admin(subscription.Refund, operator, mid), wantErr: subscription.ErrTransitionNotAllowed},
		{name: "3.7 a refund needs an actor", from: fixture.active, event: admin(subscription.Refund, subscription.AdminAction{Reason: "email"}, mid), wantErr: subscription.ErrInvalid},

		// Suspend, Resume, Terminate
		{
			name: "2.1.2 operator suspends an active user",
			from: fixture.active, event: admin(subscription.Suspend, operator, mid),
			want: subscription.StatusSuspended,
			check: func(t *testing.T, before, after sub, entry audit) {
				require.Equal(t, subscription.StatusActive, after.SuspendedFrom)
				require.Equal(t, before.Current, after.Current, "2.1.2 suspension does not move the period end")
				require.Equal(t, operator.Actor, entry.Actor)
			},
		},
		{name: "2.1.2 suspension without a reason is refused", from: fixture.active, event: admin(subscription.Suspend, subscription.AdminAction{Actor: "admin:7"}, mid), wantErr: subscription.ErrInvalid},
		{name: "2.1.2 suspension without an actor is refused", from: fixture.active, event: admin(subscription.Suspend, subscription.AdminAction{Reason: "abuse"}, mid), wantErr: subscription.ErrInvalid},
		{name: "2.1.2 a suspended user is not suspended again", from: fixture.suspended, event: admin(subscription.Suspend, operator, mid), wantErr: subscription.ErrTransitionNotAllowed},
		{
			name:  "2.1.2 resume returns to the status suspended from",
			from:  func(f fixture) sub { return f.must(subscription.Suspend(f.exhausted(), operator, mid)) },
			event: admin(subscription.Resume, operator, mid.Add(time.Hour)),
			want:  subscription.StatusExhausted,
			check: func(t *testing.T, _, after sub, _ audit) { require.Empty(t, after.SuspendedFrom) },
		},
		{
			name: "2.1.2 3.1 resume after the volume was used up while suspended leaves no access: exhausted",
			from: func(f fixture) sub {
				s := f.suspended()
				p, err := subscription.Consume(*s.Current, "generations", 100)
				require.NoError(f.t, err)
				s.Current = &p
				return s
			},
			event: admin(subscription.Resume, operator, mid.Add(time.Hour)),
			want:  subscription.StatusExhausted,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.Empty(t, after.SuspendedFrom)
				require.Equal(t, mid.Add(time.Hour), after.Current.ExhaustedAt)
				require.Contains(t, entry.Detail, "generations")
				require.False(t, subscription.Access(after, mid.Add(time.Hour)).Granted)
			},
		},
		{name: "2.1.2 resume of a user not suspended is refused", from: fixture.active, event: admin(subscription.Resume, operator, mid), wantErr: subscription.ErrTransitionNotAllowed},
		{
			name: "2.1.2 resume with a corrupt suspended-from status is refused",
			from: func(f fixture) sub {
				s := f.suspended()
				s.SuspendedFrom = subscription.StatusTerminated
				return s
			},
			event: admin(subscription.Resume, operator, mid), wantErr: subscription.ErrInvalid,
		},
		{
			name: "2.1.2 operator terminates a suspended user",
			from: fixture.suspended, event: admin(subscription.Terminate, operator, mid),
			want: subscription.StatusTerminated,
			check: func(t *testing.T, _, after sub, _ audit) {
				require.Equal(t, mid, after.EndedAt)
				require.False(t, after.AutoRenew)
				require.Empty(t, after.SuspendedFrom)
			},
		},
		{name: "2.1.2 operator terminates a user who never paid", from: fixture.pending, event: admin(subscription.Terminate, operator, mid), want: subscription.StatusTerminated},
		{name: "2.1.2 terminated is final", from: fixture.terminated, event: admin(subscription.Resume, operator, mid), wantErr: subscription.ErrTransitionNotAllowed},

		// ExtendPeriod
		{
			name: "2.1.4 operator extends a period after maintenance",
			from: fixture.active, event: extend(operator, end.Add(6*time.Hour), mid),
			want: subscription.StatusActive,
			check: func(t *testing.T, before, after sub, entry audit) {
				require.Equal(t, end.Add(6*time.Hour), after.Current.End)
				require.Equal(t, before.Current.Terms, after.Current.Terms, "2.1.6 terms never change")
				require.Equal(t, before.Current.Start, after.Current.Start)
				require.Contains(t, entry.Detail, "period 1 end")
			},
		},
		{name: "2.1.5 an exhausted period gains time, not volume", from: fixture.exhausted, event: extend(operator, end.Add(time.Hour), mid), want: subscription.StatusExhausted},
		{name: "2.1.6 a paid period is never shortened", from: fixture.active, event: extend(operator, end.Add(-time.Hour), mid), wantErr: subscription.ErrInvalid},
		{name: "2.1.4 a period already over is not extended", from: fixture.active, event: extend(operator, next, end), wantErr: subscription.ErrPeriodOver},
		{name: "2.1.4 an extension without a reason is refused", from: fixture.active, event: extend(subscription.AdminAction{Actor: "admin:7"}, next, mid), wantErr: subscription.ErrInvalid},
		{name: "2.1.4 a past_due period is not extended", from: fixture.pastDue, event: extend(operator, next, end), wantErr: subscription.ErrTransitionNotAllowed},

		// SetAutoRenew and WithdrawConsent
		{
			name: "3.6 customer turns auto-renew off; the status stays",
			from: fixture.active, event: func(s sub) (sub, audit, error) { return subscription.SetAutoRenew(s, false, "cust-42", mid) },
			want: subscription.StatusActive,
			check: func(t *testing.T, _, after sub, entry audit) {
				require.False(t, after.AutoRenew)
				require.Equal(t, "cust-42", entry.Actor)
				require.Equal(t, "auto_renew=false", entry.Detail)
			},
		},
		{name: "3.6 auto-renew can be switched off while suspended", from: fixture.suspended, event: func(s sub) (sub, audit, error) { return subscription.SetAutoRenew(s, false, "cust-42", mid) }, want: subscription.StatusSuspended},
		{name: "3.6 auto-renew of an ended subscription is refused", from: fixture.ended, event: func(s sub) (sub, audit, error) { return subscription.SetAutoRenew(s, true, "cust-42", mid) }, wantErr: subscription.ErrTransitionNotAllowed},
		{name: "3.6 switching auto-renew needs an actor", from: fixture.active, event: func(s sub) (sub, audit, error) { return subscription.SetAutoRenew(s, false, "", mid) }, wantErr: subscription.ErrInvalid},
		{
			name: "consent withdrawn: token forgotten and auto-renew off at once, the period runs on",
			from: fixture.active, event: func(s sub) (sub, audit, error) { return subscription.WithdrawConsent(s, "cust-42", mid) },
			want: subscription.StatusActive,
			check: func(t *testing.T, before, after sub, _ audit) {
				require.False(t, after.AutoRenew)
				require.Empty(t, after.PaymentMethod)
				require.Equal(t, before.Current, after.Current)
			},
		},
		{name: "consent withdrawn after termination is refused", from: fixture.terminated, event: func(s sub) (sub, audit, error) { return subscription.WithdrawConsent(s, "cust-42", mid) }, wantErr: subscription.ErrTransitionNotAllowed},

		// Bad stored state and clock
		{name: "a zero now is refused", from: fixture.active, event: at(subscription.Exhaust, time.Time{}), wantErr: subscription.ErrInvalid},
		{
			name: "an unknown stored status is refused",
			from: func(f fixture) sub {
				s := f.active()
				s.Status = "renewing"
				return s
			},
			event: at(subscription.MarkPastDue, end), wantErr: subscription.ErrInvalid,
		},
		{
			name: "an active subscription without a period is refused, not a panic",
			from: func(f fixture) sub {
				s := f.active()
				s.Current = nil
				return s
			},
			event: renew(proTerms(1), end, next, end), wantErr: subscription.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.from(newFixture(t))
			snapshot := deepCopy(in)

			out, entry, err := tt.event(in)

			require.Equal(t, snapshot, in, "a transition never changes its argument")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, snapshot, out, "a refused event returns its argument unchanged")
				require.Zero(t, entry, "a refused event is not audited")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, out.Status)
			require.Equal(t, in.ID, entry.SubscriptionID)
			require.Equal(t, in.Status, entry.From)
			require.Equal(t, out.Status, entry.To)
			require.NotEmpty(t, entry.Action)
			require.NotEmpty(t, entry.Actor)
			require.False(t, entry.At.IsZero())
			if tt.check != nil {
				tt.check(t, in, out, entry)
			}
		})
	}
}

// TestEventsRefusedOutsideTheirStatuses pins the transition table of the package
// documentation: every event from every status it is not allowed in is a
// *TransitionError naming both, and the status it is allowed in does not refuse it for
// its status.
func TestEventsRefusedOutsideTheirStatuses(t *testing.T) {
	t.Parallel()
	open := []subscription.Status{subscription.StatusPending, subscription.StatusActive,
		subscription.StatusExhausted, subscription.StatusPastDue, subscription.StatusSuspended}
	tests := []struct {
		action  subscription.Action
		allowed []subscription.Status
		event   event
	}{
		{subscription.ActionActivate, []subscription.Status{subscription.StatusPending}, activate(subscription.ActivateParams{Start: start, End: end}, start)},
		{subscription.ActionFirstPaymentFailed, []subscription.Status{subscription.StatusPending}, func(s sub) (sub, audit, error) { return subscription.FirstPaymentFailed(s, "", start) }},
		{subscription.ActionRenew, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted, subscription.StatusPastDue}, renew(proTerms(1), end, next, end)},
		{subscription.ActionMarkPastDue, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted}, at(subscription.MarkPastDue, end)},
		{subscription.ActionEnd, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted, subscription.StatusPastDue}, endFor(subscription.EndHardDecline, end)},
		{subscription.ActionExhaust, []subscription.Status{subscription.StatusActive}, at(subscription.Exhaust, mid)},
		{subscription.ActionRefund, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted, subscription.StatusPastDue, subscription.StatusSuspended}, admin(subscription.Refund, operator, mid)},
		{subscription.ActionSuspend, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted, subscription.StatusPastDue}, admin(subscription.Suspend, operator, mid)},
		{subscription.ActionResume, []subscription.Status{subscription.StatusSuspended}, admin(subscription.Resume, operator, mid)},
		{subscription.ActionTerminate, open, admin(subscription.Terminate, operator, mid)},
		{subscription.ActionExtendPeriod, []subscription.Status{subscription.StatusActive, subscription.StatusExhausted, subscription.StatusSuspended}, extend(operator, next, mid)},
		{subscription.ActionSetAutoRenew, open, func(s sub) (sub, audit, error) { return subscription.SetAutoRenew(s, false, "cust-42", mid) }},
		{subscription.ActionWithdrawConsent, open, func(s sub) (sub, audit, error) { return subscription.WithdrawConsent(s, "cust-42", mid) }},
	}
	for _, tt := range tests {
		for _, status := range allStatuses {
			allowed := false
			for _, s := range tt.allowed {
				allowed = allowed || s == status
			}
			t.Run(string(tt.action)+" from "+string(status), func(t *testing.T) {
				t.Parallel()
				in := newFixture(t).inStatus(status)
				require.Equal(t, allowed, status.Allows(tt.action))
				_, _, err := tt.event(in)
				var te *subscription.TransitionError
				if allowed {
					require.False(t, errors.As(err, &te) && te.Cause == nil, "refused for its status: %v", err)
					return
				}
				require.ErrorIs(t, err, subscription.ErrTransitionNotAllowed)
				require.ErrorAs(t, err, &te)
				require.Equal(t, subscription.TransitionError{From: status, Event: tt.action}, *te)
			})
		}
	}
}

func TestTransitionErrorCause(t *testing.T) {
	t.Parallel()
	_, _, err := subscription.End(newFixture(t).autoRenewOff(), subscription.EndAutoRenewOff, mid)
	var te *subscription.TransitionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, subscription.TransitionError{From: subscription.StatusActive, Event: subscription.ActionEnd, Cause: subscription.ErrPeriodNotOver}, *te)
	require.ErrorIs(t, err, subscription.ErrTransitionNotAllowed)
	require.EqualError(t, err, "subscription: end not allowed in status active: subscription: the paid period has not ended yet")
}

func withCode(t tariff.Terms, code string) tariff.Terms {
	t.Code = code
	return t
}

func TestStatus(t *testing.T) {
	t.Parallel()
	final := map[subscription.Status]bool{subscription.StatusEnded: true, subscription.StatusRefunded: true, subscription.StatusTerminated: true}
	actions := []subscription.Action{subscription.ActionActivate, subscription.ActionFirstPaymentFailed,
		subscription.ActionRenew, subscription.ActionMarkPastDue, subscription.ActionEnd, subscription.ActionExhaust,
		subscription.ActionRefund, subscription.ActionSuspend, subscription.ActionResume, subscription.ActionTerminate,
		subscription.ActionExtendPeriod, subscription.ActionSetAutoRenew, subscription.ActionWithdrawConsent}
	for _, s := range allStatuses {
		require.True(t, s.Valid(), s)
		require.Equal(t, final[s], s.Final(), s)
		for _, a := range actions {
			require.False(t, s.Final() && s.Allows(a), "final status %s allows %s", s, a)
		}
	}
	require.False(t, subscription.Status("").Valid())
	require.False(t, subscription.Status("renewing").Valid(), "renewing is a step, not a stored status")
}
