package subscription_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// The timeline every test uses: checkout and first charge at start, a monthly period
// ending at end, mid inside it.
var (
	moscow = time.FixedZone("MSK", 3*60*60)
	start  = time.Date(2026, time.January, 15, 9, 0, 0, 0, moscow)
	mid    = start.AddDate(0, 0, 10)
	end    = start.AddDate(0, 1, 0)
	next   = end.AddDate(0, 1, 0) // end of period 2
)

var (
	operator = subscription.AdminAction{Actor: "admin:7", Reason: "abuse report #12"}
	token    = "pm_2c7a41d0-000f-5000-9000-1b1e5d7f0c11"
)

// proTerms is a monthly tariff with two hard limits.
func proTerms(version int) tariff.Terms {
	return tariff.Terms{
		Code:     "pro",
		Version:  version,
		Name:     "Pro",
		Price:    decimal.RequireFromString("990.00").Add(decimal.NewFromInt(int64(version-1) * 100)),
		Currency: "RUB",
		Period:   tariff.Period{Count: 1, Unit: tariff.Month},
		Limits:   []tariff.Limit{{Meter: "generations", Quantity: 100}, {Meter: "images", Quantity: 10}},
	}
}

// withOptions returns t with its options replaced.
func withOptions(t tariff.Terms, o tariff.Options) tariff.Terms {
	t.Options = o
	return t
}

// fixture builds subscriptions in every status through the real transitions, so that a
// test starts from a state the package itself produced.
type fixture struct {
	t     *testing.T
	terms tariff.Terms
}

func newFixture(t *testing.T) fixture { return fixture{t: t, terms: proTerms(1)} }

func (f fixture) with(terms tariff.Terms) fixture { f.terms = terms; return f }

func (f fixture) pending() subscription.Subscription {
	sub, _, err := subscription.New(subscription.NewParams{
		ID: "0194d7a2-5b3c-7def-8abc-0123456789ab", CustomerID: "cust-42",
		Checkout: f.terms, PaymentMethod: token,
	}, start.Add(-time.Minute))
	require.NoError(f.t, err)
	return sub
}

func (f fixture) active() subscription.Subscription {
	return f.must(subscription.Activate(f.pending(), subscription.ActivateParams{Start: start, End: end}, start))
}

// used returns an active subscription with n generations used.
func (f fixture) used(n int64) subscription.Subscription {
	sub := f.active()
	p, err := subscription.Consume(*sub.Current, "generations", n)
	require.NoError(f.t, err)
	sub.Current = &p
	return sub
}

func (f fixture) exhausted() subscription.Subscription {
	return f.must(subscription.Exhaust(f.used(100), mid))
}

func (f fixture) pastDue() subscription.Subscription {
	return f.must(subscription.MarkPastDue(f.active(), end))
}

func (f fixture) suspended() subscription.Subscription {
	return f.must(subscription.Suspend(f.active(), operator, mid))
}

func (f fixture) ended() subscription.Subscription {
	return f.must(subscription.FirstPaymentFailed(f.pending(), "declined", start))
}

func (f fixture) refunded() subscription.Subscription {
	return f.must(subscription.Refund(f.active(), operator, mid))
}

func (f fixture) terminated() subscription.Subscription {
	return f.must(subscription.Terminate(f.active(), operator, mid))
}

func (f fixture) autoRenewOff() subscription.Subscription {
	return f.must(subscription.SetAutoRenew(f.active(), false, "cust-42", mid))
}

// inStatus returns a subscription in status s.
func (f fixture) inStatus(s subscription.Status) subscription.Subscription {
	switch s {
	case subscription.StatusPending:
		return f.pending()
	case subscription.StatusActive:
		return f.active()
	case subscription.StatusExhausted:
		return f.exhausted()
	case subscription.StatusPastDue:
		return f.pastDue()
	case subscription.StatusSuspended:
		return f.suspended()
	case subscription.StatusEnded:
		return f.ended()
	case subscription.StatusRefunded:
		return f.refunded()
	case subscription.StatusTerminated:
		return f.terminated()
	}
	f.t.Fatalf("no fixture for status %q", s)
	return subscription.Subscription{}
}

func (f fixture) must(sub subscription.Subscription, _ subscription.AuditEntry, err error) subscription.Subscription {
	f.t.Helper()
	require.NoError(f.t, err)
	return sub
}

var allStatuses = []subscription.Status{
	subscription.StatusPending, subscription.StatusActive, subscription.StatusExhausted,
	subscription.StatusPastDue, subscription.StatusEnded, subscription.StatusRefunded,
	subscription.StatusSuspended, subscription.StatusTerminated,
}

// deepCopy copies everything a transition could share with its argument, so a test can
// check that the argument was not changed.
func deepCopy(s subscription.Subscription) subscription.Subscription {
	s.Checkout.Limits = slices.Clone(s.Checkout.Limits)
	if s.Current != nil {
		p := copyPeriod(*s.Current)
		s.Current = &p
	}
	return s
}

func copyPeriod(p subscription.Period) subscription.Period {
	p.Terms.Limits = slices.Clone(p.Terms.Limits)
	p.Usage = maps.Clone(p.Usage)
	return p
}
