package billing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// unknownID is a well-formed UUID no test ever creates.
const unknownID = "0190a5c8-0000-7000-8000-000000000000"

func TestSubscribe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.4 the terms shown at checkout are recorded with the subscription", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{
			CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok_visa_4242", IdempotencyKey: "k1"})
		require.NoError(t, err)
		require.Equal(t, subscription.StatusPending, sub.Status)
		require.True(t, sub.AutoRenew, "3.4 paying at checkout is consent to recurring charges")
		require.Nil(t, sub.Current, "3.3 no period before the first payment")

		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		requireCheckout(t, got.Checkout, "990", 1, 500)
		require.Equal(t, "c1", got.CustomerID)
		require.Equal(t, "tok_visa_4242", got.PaymentMethod)
		require.Equal(t, "Europe/Moscow", got.LocationName())
		require.True(t, got.CreatedAt.Equal(b.clock.Now()))
		require.Equal(t, []auditRow{{Actor: "system", Action: "subscription.create", Reason: "checkout", To: "pending", Detail: "tariff pro v1"}},
			withoutAt(b.audit(t, sub.ID)))
	})

	t.Run("3.4 the period shown at checkout is counted in the subscription's location", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		// 2026-03-31 23:30 in Vladivostok is 2026-03-31 16:30 in Moscow: the anchor day
		// is the 31st there, so period 1 ends on April 30 at 23:30 Vladivostok time.
		vladivostok, err := time.LoadLocation("Asia/Vladivostok")
		require.NoError(t, err)
		b.clock.Set(time.Date(2026, 3, 31, 23, 30, 0, 0, vladivostok))
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{
			CustomerID: "c1", TariffCode: "pro", Location: "Asia/Vladivostok", IdempotencyKey: "k1"})
		require.NoError(t, err)
		sub, err = b.engine.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{ProviderPaymentID: "p1", Amount: decimal.NewFromInt(990), Currency: "RUB"})
		require.NoError(t, err)
		require.Equal(t, "Asia/Vladivostok", sub.Location)
		require.True(t, sub.Current.End.Equal(time.Date(2026, 4, 30, 23, 30, 0, 0, vladivostok)), "end %s", sub.Current.End)
	})

	t.Run("3.4 a free tariff needs no charge and is active at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "free", "0", "generations", 10)
		now := b.clock.Now()
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "free", IdempotencyKey: "k1"})
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, sub.Status)
		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, 1, got.Current.Number)
		require.True(t, got.Current.Start.Equal(now))
		require.True(t, got.Current.GrantedAt.Equal(now))
		require.True(t, got.Current.End.Equal(now.AddDate(0, 1, 0)), "end %s", got.Current.End)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.True(t, d.Granted)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 10, "u1")
		require.NoError(t, err)
		require.Equal(t, []string{"subscription.create", "subscription.activate", "subscription.exhaust"}, actions(b.audit(t, sub.ID)))
	})

	t.Run("the same key returns the first subscription and writes nothing more", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		req := billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "k1"}
		first, err := b.engine.Subscribe(ctx, req)
		require.NoError(t, err)
		before := b.rowCounts(t)
		b.clock.Advance(time.Hour)
		again, err := b.engine.Subscribe(ctx, req)
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID)
		require.True(t, again.CreatedAt.Equal(first.CreatedAt))
		require.Equal(t, before, b.rowCounts(t))

		// A replay after the subscription moved on returns it as it is now.
		_, err = b.engine.ConfirmFirstPayment(ctx, first.ID, billing.Payment{ProviderPaymentID: "p1", Amount: decimal.NewFromInt(990), Currency: "RUB"})
		require.NoError(t, err)
		again, err = b.engine.Subscribe(ctx, req)
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, subscription.StatusActive, again.Status)
	})

	refusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle)
		req     billing.SubscribeParams
		want    error
		fields  []string // for ErrInvalidInput: the fields named
	}{
		{
			name: "3.2 a retired tariff can no longer be bought",
			prepare: func(t *testing.T, b *testBundle) {
				_, err := b.engine.Tariffs().Retire(ctx, "pro", "ops", "replaced")
				require.NoError(t, err)
			},
			req:  billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", IdempotencyKey: "k2"},
			want: tariff.ErrRetired,
		},
		{
			name: "an unknown tariff is not found",
			req:  billing.SubscribeParams{CustomerID: "c2", TariffCode: "nope", IdempotencyKey: "k2"},
			want: billing.ErrNotFound,
		},
		{
			name: "3.2 a tariff whose first version takes effect later cannot be bought yet",
			prepare: func(t *testing.T, b *testBundle) {
				_, err := b.engine.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "later", Name: "Later", Price: decimal.NewFromInt(1),
					Period: tariff.Period{Count: 1, Unit: tariff.Month}, EffectiveAt: b.clock.Now().Add(time.Hour)})
				require.NoError(t, err)
			},
			req:  billing.SubscribeParams{CustomerID: "c2", TariffCode: "later", IdempotencyKey: "k2"},
			want: tariff.ErrNoVersion,
		},
		{
			name: "the same key with a different request is a conflict",
			req:  billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", PaymentMethod: "tok_other", IdempotencyKey: "k1"},
			want: billing.ErrIdempotencyConflict,
		},
		{
			name: "5.1 a card number as payment method is refused",
			req:  billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", PaymentMethod: "4111 1111 1111 1111", IdempotencyKey: "k2"},
			want: subscription.ErrCardData,
		},
		{
			name: "1.3 a customer ID is required",
			req:  billing.SubscribeParams{CustomerID: "  ", TariffCode: "pro", IdempotencyKey: "k2"},
			want: billing.ErrInvalidInput, fields: []string{"CustomerID"},
		},
		{
			name: "every bad field is named at once",
			req:  billing.SubscribeParams{CustomerID: "c2", Location: "Mars/Olympus", IdempotencyKey: strings.Repeat("k", billing.MaxIdempotencyKeyLen+1)},
			want: billing.ErrInvalidInput, fields: []string{"TariffCode", "Location", "IdempotencyKey"},
		},
		{
			name: "an idempotency key is required",
			req:  billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro"},
			want: billing.ErrInvalidInput, fields: []string{"IdempotencyKey"},
		},
		{
			name: "1.3 an over-long customer ID is refused",
			req:  billing.SubscribeParams{CustomerID: strings.Repeat("c", 256), TariffCode: "pro", IdempotencyKey: "k2"},
			want: subscription.ErrInvalid,
		},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			_, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "k1"})
			require.NoError(t, err)
			if tt.prepare != nil {
				tt.prepare(t, b)
			}
			before := b.rowCounts(t)
			_, err = b.engine.Subscribe(ctx, tt.req)
			require.ErrorIs(t, err, tt.want)
			for _, f := range tt.fields {
				var ie *billing.InputError
				require.ErrorAs(t, err, &ie)
				require.True(t, ie.Has(f), "the error should name %s: %v", f, err)
			}
			require.Equal(t, before, b.rowCounts(t))
			subs, err := b.engine.SubscriptionListByCustomer(ctx, "c2")
			require.NoError(t, err)
			require.Empty(t, subs)
		})
	}
}

func TestSubscriptionConfirmFirstPayment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	paid := func(amount, currency string) billing.Payment {
		return billing.Payment{ProviderPaymentID: "pay-1", Amount: decimal.RequireFromString(amount), Currency: currency}
	}

	t.Run("3.3 access only after the first payment succeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.pendingSubscription(t, "c1", "pro")
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReasonNotPaid, d.Reason)

		confirmedAt := b.clock.Advance(3 * time.Minute)
		p := paid("990.00", "RUB")
		p.PaymentMethod = "tok_saved"
		got, err := b.engine.ConfirmFirstPayment(ctx, sub.ID, p)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusActive, got.Status)
		require.Equal(t, "tok_saved", got.PaymentMethod)

		read, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, 1, read.Current.Number)
		require.True(t, read.Current.Start.Equal(confirmedAt))
		require.True(t, read.Current.GrantedAt.Equal(confirmedAt), "3.7 the refund window counts from the grant")
		require.True(t, read.Current.End.Equal(confirmedAt.AddDate(0, 1, 0)))
		require.Equal(t, "tok_saved", read.PaymentMethod)
		requireCheckout(t, read.Current.Terms, "990", 1, 500)
		require.Equal(t, subscription.Usage{}, read.Current.Usage["generations"])

		d, err = b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.True(t, d.Granted)
		require.True(t, d.EndsAt.Equal(read.Current.End))
		require.Equal(t, []string{"subscription.create", "subscription.activate"}, actions(b.audit(t, sub.ID)))
	})

	t.Run("2.1.6 a price change before the first payment: period 1 runs at the checkout price", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.pendingSubscription(t, "c1", "pro")
		b.clock.Advance(time.Minute)
		b.publish(t, "pro", "1290", "generations", 300)
		before := b.rowCounts(t)
		_, err := b.engine.ConfirmFirstPayment(ctx, sub.ID, paid("1290", "RUB"))
		require.ErrorIs(t, err, billing.ErrAmountMismatch, "3.4 the price shown at checkout is the one charged")
		require.Equal(t, before, b.rowCounts(t))
		got, err := b.engine.ConfirmFirstPayment(ctx, sub.ID, paid("990", "RUB"))
		require.NoError(t, err)
		requireCheckout(t, got.Current.Terms, "990", 1, 500)
	})

	refusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle, id string)
		id      string // empty: the pending subscription
		payment billing.Payment
		want    error
	}{
		{name: "3.3 an amount other than the price is refused", payment: paid("900", "RUB"), want: billing.ErrAmountMismatch},
		{name: "3.3 a zero amount is refused", payment: billing.Payment{ProviderPaymentID: "p", Currency: "RUB"}, want: billing.ErrAmountMismatch},
		{name: "3.3 another currency is refused", payment: paid("990", "USD"), want: billing.ErrAmountMismatch},
		{
			name: "3.3 a second confirmation is not allowed",
			prepare: func(t *testing.T, b *testBundle, id string) {
				_, err := b.engine.ConfirmFirstPayment(ctx, id, paid("990", "RUB"))
				require.NoError(t, err)
			},
			payment: paid("990", "RUB"), want: billing.ErrTransitionNotAllowed,
		},
		{
			name: "3.3 a confirmation after the first payment failed is not allowed",
			prepare: func(t *testing.T, b *testBundle, id string) {
				_, err := b.engine.FailFirstPayment(ctx, id, "declined")
				require.NoError(t, err)
			},
			payment: paid("990", "RUB"), want: billing.ErrTransitionNotAllowed,
		},
		{name: "5.1 a card number as the saved payment method is refused",
			payment: billing.Payment{ProviderPaymentID: "p", Amount: decimal.NewFromInt(990), Currency: "RUB", PaymentMethod: "5555-5555-5555-4444"},
			want:    subscription.ErrCardData},
		{name: "a provider payment ID is required", payment: billing.Payment{Amount: decimal.NewFromInt(990), Currency: "RUB"}, want: billing.ErrInvalidInput},
		{name: "a subscription ID that is not a UUID is bad input", id: "sub-1", payment: paid("990", "RUB"), want: billing.ErrInvalidInput},
		{name: "an unknown subscription is not found", id: unknownID, payment: paid("990", "RUB"), want: billing.ErrNotFound},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			sub := b.pendingSubscription(t, "c1", "pro")
			if tt.prepare != nil {
				tt.prepare(t, b, sub.ID)
			}
			id := tt.id
			if id == "" {
				id = sub.ID
			}
			b.clock.Advance(time.Minute)
			b.requireRefusedWritesNothing(t, sub.ID, tt.want, func() error {
				_, err := b.engine.ConfirmFirstPayment(ctx, id, tt.payment)
				return err
			})
		})
	}
}

func TestSubscriptionFailFirstPayment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.3 a failed first charge ends the subscription without access", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.pendingSubscription(t, "c1", "pro")
		failedAt := b.clock.Advance(time.Minute)
		got, err := b.engine.FailFirstPayment(ctx, sub.ID, "card declined: insufficient funds")
		require.NoError(t, err)
		require.Equal(t, subscription.StatusEnded, got.Status)
		require.False(t, got.AutoRenew, "3.6 nothing is charged after the end")
		read, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusEnded, read.Status)
		require.True(t, read.EndedAt.Equal(failedAt))
		require.Nil(t, read.Current)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReasonEnded, d.Reason)
		require.Equal(t, auditRow{Actor: "system", Action: "subscription.first_payment_failed", Reason: "card declined: insufficient funds",
			From: "pending", To: "ended"}, last(b.audit(t, sub.ID)))
	})

	refusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle) string
		reason  string
		want    error
	}{
		{
			name:    "3.3 a paid subscription cannot fail its first payment",
			prepare: func(t *testing.T, b *testBundle) string { return b.activeSubscription(t, "c1", "pro").ID },
			want:    billing.ErrTransitionNotAllowed,
		},
		{
			name: "a subscription already ended cannot fail again",
			prepare: func(t *testing.T, b *testBundle) string {
				sub := b.pendingSubscription(t, "c1", "pro")
				_, err := b.engine.FailFirstPayment(ctx, sub.ID, "")
				require.NoError(t, err)
				return sub.ID
			},
			want: billing.ErrTransitionNotAllowed,
		},
		{
			name:    "an over-long reason is refused",
			prepare: func(t *testing.T, b *testBundle) string { return b.pendingSubscription(t, "c1", "pro").ID },
			reason:  strings.Repeat("r", 256),
			want:    subscription.ErrInvalid,
		},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			id := tt.prepare(t, b)
			b.requireRefusedWritesNothing(t, id, tt.want, func() error {
				_, err := b.engine.FailFirstPayment(ctx, id, tt.reason)
				return err
			})
		})
	}
}

func TestSubscriptionSetAutoRenew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.6 auto-payment off: no change of status, the paid period runs to its end", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.activeSubscription(t, "c1", "pro")
		got, err := b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
		require.NoError(t, err)
		require.False(t, got.AutoRenew)
		require.Equal(t, subscription.StatusActive, got.Status)
		read, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.False(t, read.AutoRenew)
		require.True(t, read.Current.End.Equal(sub.Current.End))
		b.clock.Set(sub.Current.End.Add(-time.Second))
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.True(t, d.Granted, "3.6 the paid period runs to its end")
		require.Equal(t, auditRow{Actor: "customer:c1", Action: "subscription.set_auto_renew", From: "active", To: "active", Detail: "auto_renew=false"},
			last(b.audit(t, sub.ID)))

		got, err = b.engine.SetAutoRenew(ctx, sub.ID, true, "customer:c1")
		require.NoError(t, err)
		require.True(t, got.AutoRenew)
		require.Equal(t, "auto_renew=true", last(b.audit(t, sub.ID)).Detail)
	})

	t.Run("3.6 auto-payment can be turned off before the first payment", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.pendingSubscription(t, "c1", "pro")
		got, err := b.engine.SetAutoRenew(ctx, sub.ID, false, "customer:c1")
		require.NoError(t, err)
		require.False(t, got.AutoRenew)
		require.Equal(t, subscription.StatusPending, got.Status)
	})

	refusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle) string
		actor   string
		want    error
	}{
		{
			name:    "3.6 who switched it is required",
			prepare: func(t *testing.T, b *testBundle) string { return b.activeSubscription(t, "c1", "pro").ID },
			actor:   " ",
			want:    subscription.ErrInvalid,
		},
		{
			name: "a terminated subscription cannot be switched back on",
			prepare: func(t *testing.T, b *testBundle) string {
				id := b.activeSubscription(t, "c1", "pro").ID
				_, err := b.engine.Terminate(ctx, id, subscription.AdminAction{Actor: "admin:1", Reason: "fraud"})
				require.NoError(t, err)
				return id
			},
			actor: "customer:c1",
			want:  billing.ErrTransitionNotAllowed,
		},
		{
			name:    "an unknown subscription is not found",
			prepare: func(t *testing.T, b *testBundle) string { return unknownID },
			actor:   "customer:c1",
			want:    billing.ErrNotFound,
		},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			id := tt.prepare(t, b)
			b.requireRefusedWritesNothing(t, id, tt.want, func() error {
				_, err := b.engine.SetAutoRenew(ctx, id, true, tt.actor)
				return err
			})
		})
	}
}

// adminCommand is one of the engine's operator commands.
type adminCommand struct {
	name string
	run  func(ctx context.Context, e *billing.Engine, id string, by subscription.AdminAction) (subscription.Subscription, error)
}

var (
	suspend = adminCommand{"suspend", func(ctx context.Context, e *billing.Engine, id string, by subscription.AdminAction) (subscription.Subscription, error) {
		return e.Suspend(ctx, id, by)
	}}
	resume = adminCommand{"resume", func(ctx context.Context, e *billing.Engine, id string, by subscription.AdminAction) (subscription.Subscription, error) {
		return e.Resume(ctx, id, by)
	}}
	terminate = adminCommand{"terminate", func(ctx context.Context, e *billing.Engine, id string, by subscription.AdminAction) (subscription.Subscription, error) {
		return e.Terminate(ctx, id, by)
	}}
	extendByADay = adminCommand{"extend_period", func(ctx context.Context, e *billing.Engine, id string, by subscription.AdminAction) (subscription.Subscription, error) {
		sub, err := e.SubscriptionGet(ctx, id)
		if err != nil || sub.Current == nil {
			return e.ExtendPeriod(ctx, id, e.Now().Add(24*time.Hour), by)
		}
		return e.ExtendPeriod(ctx, id, sub.Current.End.Add(24*time.Hour), by)
	}}
)

func TestSubscriptionAdminActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := subscription.AdminAction{Actor: "admin:42", Reason: "abuse report #17"}

	// Each row starts from a subscription in the state its prepare leaves, runs the
	// commands in order, and checks the status, Access and the audit rows they wrote.
	tests := []struct {
		name       string
		prepare    func(t *testing.T, b *testBundle) subscription.Subscription
		commands   []adminCommand
		wantStatus subscription.Status
		wantReason subscription.Reason
		wantAudit  []auditRow
	}{
		{
			name: "2.1.2 suspend takes access away, audited with who and why",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				return b.activeSubscription(t, "c1", "pro")
			},
			commands:   []adminCommand{suspend},
			wantStatus: subscription.StatusSuspended, wantReason: subscription.ReasonSuspended,
			wantAudit: []auditRow{{Actor: "admin:42", Action: "subscription.suspend", Reason: "abuse report #17", From: "active", To: "suspended"}},
		},
		{
			name: "2.1.2 resume gives access back",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				return b.activeSubscription(t, "c1", "pro")
			},
			commands:   []adminCommand{suspend, resume},
			wantStatus: subscription.StatusActive, wantReason: subscription.ReasonNone,
			wantAudit: []auditRow{
				{Actor: "admin:42", Action: "subscription.suspend", Reason: "abuse report #17", From: "active", To: "suspended"},
				{Actor: "admin:42", Action: "subscription.resume", Reason: "abuse report #17", From: "suspended", To: "active"},
			},
		},
		{
			name: "2.1.2 3.1 resume returns an exhausted subscription to exhausted, not to access",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				sub := b.activeSubscription(t, "c1", "pro")
				_, err := b.engine.Consume(ctx, sub.ID, "generations", 500, "all")
				require.NoError(t, err)
				return sub
			},
			commands:   []adminCommand{suspend, resume},
			wantStatus: subscription.StatusExhausted, wantReason: subscription.ReasonUsedUp,
			wantAudit: []auditRow{
				{Actor: "admin:42", Action: "subscription.suspend", Reason: "abuse report #17", From: "exhausted", To: "suspended"},
				{Actor: "admin:42", Action: "subscription.resume", Reason: "abuse report #17", From: "suspended", To: "exhausted"},
			},
		},
		{
			name: "2.1.2 terminate ends access for good",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				return b.activeSubscription(t, "c1", "pro")
			},
			commands:   []adminCommand{terminate},
			wantStatus: subscription.StatusTerminated, wantReason: subscription.ReasonTerminated,
			wantAudit: []auditRow{{Actor: "admin:42", Action: "subscription.terminate", Reason: "abuse report #17", From: "active", To: "terminated"}},
		},
		{
			name: "2.1.2 a suspended subscription can be terminated",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				return b.activeSubscription(t, "c1", "pro")
			},
			commands:   []adminCommand{suspend, terminate},
			wantStatus: subscription.StatusTerminated, wantReason: subscription.ReasonTerminated,
			wantAudit: []auditRow{
				{Actor: "admin:42", Action: "subscription.suspend", Reason: "abuse report #17", From: "active", To: "suspended"},
				{Actor: "admin:42", Action: "subscription.terminate", Reason: "abuse report #17", From: "suspended", To: "terminated"},
			},
		},
		{
			name: "2.1.2 a pending subscription can be terminated before it is paid",
			prepare: func(t *testing.T, b *testBundle) subscription.Subscription {
				return b.pendingSubscription(t, "c1", "pro")
			},
			commands:   []adminCommand{terminate},
			wantStatus: subscription.StatusTerminated, wantReason: subscription.ReasonTerminated,
			wantAudit: []auditRow{{Actor: "admin:42", Action: "subscription.terminate", Reason: "abuse report #17", From: "pending", To: "terminated"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			sub := tt.prepare(t, b)
			auditBefore := len(b.audit(t, sub.ID))
			var got subscription.Subscription
			for _, c := range tt.commands {
				b.clock.Advance(time.Minute)
				var err error
				got, err = c.run(ctx, b.engine, sub.ID, ops)
				require.NoError(t, err, c.name)
			}
			require.Equal(t, tt.wantStatus, got.Status)
			read, err := b.engine.SubscriptionGet(ctx, sub.ID)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, read.Status)
			require.Equal(t, got.AutoRenew, read.AutoRenew)
			d, err := b.engine.Access(ctx, sub.ID)
			require.NoError(t, err)
			require.Equal(t, tt.wantReason, d.Reason)
			require.Equal(t, tt.wantReason == subscription.ReasonNone, d.Granted)
			if tt.wantStatus.Final() {
				require.False(t, read.AutoRenew, "2.1.2 nothing renews after a termination")
				require.True(t, read.EndedAt.Equal(b.clock.Now()))
			}
			if d.Granted {
				_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "after")
				require.NoError(t, err)
			} else if sub.Status != subscription.StatusPending {
				_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "after")
				require.ErrorIs(t, err, billing.ErrNoAccess)
			}
			rows := b.audit(t, sub.ID)[auditBefore:]
			for i, r := range rows {
				want := sub.CreatedAt.Add(time.Duration(i+1) * time.Minute)
				require.True(t, r.At.Equal(want), "the audit row carries the instant of the action: %s, want %s", r.At, want)
			}
			require.Equal(t, tt.wantAudit, withoutAt(rows))
		})
	}

	refusals := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle) string
		command adminCommand
		by      subscription.AdminAction
		want    error
	}{
		{"2.1.2 suspend without an actor is refused", activeID, suspend, subscription.AdminAction{Reason: "why"}, subscription.ErrInvalid},
		{"2.1.2 suspend without a reason is refused", activeID, suspend, subscription.AdminAction{Actor: "admin:1"}, subscription.ErrInvalid},
		{"2.1.2 resume without a reason is refused", suspendedID, resume, subscription.AdminAction{Actor: "admin:1", Reason: " "}, subscription.ErrInvalid},
		{"2.1.2 terminate without an actor is refused", activeID, terminate, subscription.AdminAction{Reason: "why"}, subscription.ErrInvalid},
		{"2.1.4 extend without a reason is refused", activeID, extendByADay, subscription.AdminAction{Actor: "admin:1"}, subscription.ErrInvalid},
		{"2.1.2 a pending subscription cannot be suspended", pendingID, suspend, ops, billing.ErrTransitionNotAllowed},
		{"2.1.2 an active subscription cannot be resumed", activeID, resume, ops, billing.ErrTransitionNotAllowed},
		{"2.1.2 a suspended subscription cannot be suspended again", suspendedID, suspend, ops, billing.ErrTransitionNotAllowed},
		{"2.1.2 a terminated subscription cannot be resumed", terminatedID, resume, ops, billing.ErrTransitionNotAllowed},
		{"2.1.2 a terminated subscription cannot be terminated again", terminatedID, terminate, ops, billing.ErrTransitionNotAllowed},
		{"2.1.4 a pending subscription has no period to extend", pendingID, extendByADay, ops, billing.ErrTransitionNotAllowed},
		{"2.1.4 a terminated subscription cannot be extended", terminatedID, extendByADay, ops, billing.ErrTransitionNotAllowed},
		{"an unknown subscription is not found", func(*testing.T, *testBundle) string { return unknownID }, suspend, ops, billing.ErrNotFound},
		{"a subscription ID that is not a UUID is bad input", func(*testing.T, *testBundle) string { return "x" }, terminate, ops, billing.ErrInvalidInput},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			id := tt.prepare(t, b)
			b.clock.Advance(time.Minute)
			b.requireRefusedWritesNothing(t, id, tt.want, func() error {
				_, err := tt.command.run(ctx, b.engine, id, tt.by)
				return err
			})
		})
	}
}

func TestSubscriptionExtendPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := subscription.AdminAction{Actor: "admin:7", Reason: "maintenance on 2026-03-10, 6 hours"}

	t.Run("2.1.4 the operator extends a period by hand, audited with who and why", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.activeSubscription(t, "c1", "pro")
		oldEnd := sub.Current.End
		newEnd := oldEnd.Add(6 * time.Hour)
		b.clock.Advance(24 * time.Hour)
		got, err := b.engine.ExtendPeriod(ctx, sub.ID, newEnd, ops)
		require.NoError(t, err)
		require.True(t, got.Current.End.Equal(newEnd))
		read, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.True(t, read.Current.End.Equal(newEnd))
		require.True(t, read.Current.Start.Equal(sub.Current.Start), "the start does not move")
		requireCheckout(t, read.Current.Terms, "990", 1, 500)

		b.clock.Set(oldEnd)
		d, err := b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.True(t, d.Granted, "2.1.4 access lasts to the new end")
		require.True(t, d.EndsAt.Equal(newEnd))
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "u1")
		require.NoError(t, err)
		b.clock.Set(newEnd)
		d, err = b.engine.Access(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, subscription.ReasonExpired, d.Reason)

		a := last(b.audit(t, sub.ID))
		require.Equal(t, "admin:7", a.Actor)
		require.Equal(t, "subscription.extend_period", a.Action)
		require.Equal(t, ops.Reason, a.Reason)
		require.Equal(t, "active", a.From)
		require.Equal(t, "active", a.To)
		require.Contains(t, a.Detail, "period 1 end")
		require.Contains(t, a.Detail, newEnd.UTC().Format(time.RFC3339)[:10])
	})

	t.Run("2.1.4 3.1 an exhausted period gains time, not volume", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.engine.Consume(ctx, sub.ID, "generations", 5, "all")
		require.NoError(t, err)
		got, err := b.engine.ExtendPeriod(ctx, sub.ID, sub.Current.End.Add(48*time.Hour), ops)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusExhausted, got.Status)
		require.Equal(t, int64(5), got.Current.Usage["generations"].Used)
		_, err = b.engine.Consume(ctx, sub.ID, "generations", 1, "more")
		require.ErrorIs(t, err, billing.ErrNoAccess)
	})

	t.Run("2.1.4 a suspended period can be extended; the suspension stays", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 5)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.engine.Suspend(ctx, sub.ID, ops)
		require.NoError(t, err)
		got, err := b.engine.ExtendPeriod(ctx, sub.ID, sub.Current.End.Add(time.Hour), ops)
		require.NoError(t, err)
		require.Equal(t, subscription.StatusSuspended, got.Status)
	})

	refusals := []struct {
		name   string
		newEnd func(sub subscription.Subscription) time.Time
		clock  func(sub subscription.Subscription) time.Time // nil: leave it
		want   error
	}{
		{"2.1.6 a paid period is never shortened", func(s subscription.Subscription) time.Time { return s.Current.End.Add(-time.Hour) }, nil, subscription.ErrInvalid},
		{"2.1.4 the same end is no extension", func(s subscription.Subscription) time.Time { return s.Current.End }, nil, subscription.ErrInvalid},
		{"2.1.4 a zero end is refused", func(subscription.Subscription) time.Time { return time.Time{} }, nil, subscription.ErrInvalid},
		{"2.1.4 a period already over is not extended",
			func(s subscription.Subscription) time.Time { return s.Current.End.Add(time.Hour) },
			func(s subscription.Subscription) time.Time { return s.Current.End },
			subscription.ErrPeriodOver},
	}
	for _, tt := range refusals {
		t.Run(tt.name+"; nothing is written", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			sub := b.activeSubscription(t, "c1", "pro")
			if tt.clock != nil {
				b.clock.Set(tt.clock(sub))
			}
			b.requireRefusedWritesNothing(t, sub.ID, tt.want, func() error {
				_, err := b.engine.ExtendPeriod(ctx, sub.ID, tt.newEnd(sub), ops)
				return err
			})
		})
	}
}

func TestSubscriptionListByCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "generations", 500)
	b.publish(t, "free", "0", "images", 3)

	subscribe := func(customer, code, key string) subscription.Subscription {
		t.Helper()
		b.clock.Advance(time.Minute)
		sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: code, IdempotencyKey: key})
		require.NoError(t, err)
		return sub
	}
	first := subscribe("c1", "pro", "k1")
	second := subscribe("c1", "free", "k2")
	third := subscribe("c1", "pro", "k3")
	other := subscribe("c2", "pro", "k4")
	_, err := b.engine.ConfirmFirstPayment(ctx, third.ID, billing.Payment{ProviderPaymentID: "p3", Amount: decimal.NewFromInt(990), Currency: "RUB"})
	require.NoError(t, err)
	_, err = b.engine.Consume(ctx, second.ID, "images", 2, "u1")
	require.NoError(t, err)

	tests := []struct {
		name     string
		customer string
		wantIDs  []string
		wantSt   []subscription.Status
	}{
		{"1.3 a customer's subscriptions, oldest first", "c1",
			[]string{first.ID, second.ID, third.ID},
			[]subscription.Status{subscription.StatusPending, subscription.StatusActive, subscription.StatusActive}},
		{"1.3 another customer's are not mixed in", "c2", []string{other.ID}, []subscription.Status{subscription.StatusPending}},
		{"a customer without subscriptions gets an empty list", "c3", []string{}, []subscription.Status{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, err := b.engine.SubscriptionListByCustomer(ctx, tt.customer)
			require.NoError(t, err)
			ids := make([]string, len(subs))
			statuses := make([]subscription.Status, len(subs))
			for i, s := range subs {
				ids[i], statuses[i] = s.ID, s.Status
				require.Equal(t, tt.customer, s.CustomerID)
				require.Equal(t, s.Status != subscription.StatusPending, s.Current != nil, "each comes with its current period")
			}
			require.Equal(t, tt.wantIDs, ids)
			require.Equal(t, tt.wantSt, statuses)
		})
	}
	t.Run("each comes with its usage", func(t *testing.T) {
		subs, err := b.engine.SubscriptionListByCustomer(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, subscription.Usage{Used: 2}, subs[1].Current.Usage["images"])
	})
}

func TestSubscriptionAccessReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := subscription.AdminAction{Actor: "admin:1", Reason: "test"}

	tests := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle) string
		want    subscription.Reason
	}{
		{"3.3 no access before payment", pendingID, subscription.ReasonNotPaid},
		{"3.1 access while the period runs and volume is left", activeID, subscription.ReasonNone},
		{"3.1 used up before the period ends", func(t *testing.T, b *testBundle) string {
			id := activeID(t, b)
			_, err := b.engine.Consume(ctx, id, "generations", 500, "all")
			require.NoError(t, err)
			return id
		}, subscription.ReasonUsedUp},
		{"3.1 the period ends before the volume is used up", func(t *testing.T, b *testBundle) string {
			sub := b.activeSubscription(t, "c1", "pro")
			b.clock.Set(sub.Current.End)
			return sub.ID
		}, subscription.ReasonExpired},
		{"2.1.2 suspended", suspendedID, subscription.ReasonSuspended},
		{"2.1.2 terminated", terminatedID, subscription.ReasonTerminated},
		{"3.3 the first payment failed", func(t *testing.T, b *testBundle) string {
			id := pendingID(t, b)
			_, err := b.engine.FailFirstPayment(ctx, id, "declined")
			require.NoError(t, err)
			return id
		}, subscription.ReasonEnded},
		{"3.6 auto-renew off changes nothing during the period", func(t *testing.T, b *testBundle) string {
			id := activeID(t, b)
			_, err := b.engine.SetAutoRenew(ctx, id, false, "customer:c1")
			require.NoError(t, err)
			return id
		}, subscription.ReasonNone},
		{"2.1.4 an extended period gives access past its first end", func(t *testing.T, b *testBundle) string {
			sub := b.activeSubscription(t, "c1", "pro")
			_, err := b.engine.ExtendPeriod(ctx, sub.ID, sub.Current.End.Add(time.Hour), ops)
			require.NoError(t, err)
			b.clock.Set(sub.Current.End)
			return sub.ID
		}, subscription.ReasonNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.publish(t, "pro", "990", "generations", 500)
			id := tt.prepare(t, b)
			d, err := b.engine.Access(ctx, id)
			require.NoError(t, err)
			require.Equal(t, tt.want, d.Reason)
			require.Equal(t, tt.want == subscription.ReasonNone, d.Granted)
			require.Equal(t, d.Granted, !d.EndsAt.IsZero())
			if !d.Granted {
				var na *subscription.NoAccessError
				require.ErrorAs(t, d.Err(), &na)
				require.Equal(t, tt.want, na.Reason)
			}
		})
	}

	t.Run("bad or unknown IDs are errors, not refusals", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.engine.Access(ctx, unknownID)
		require.ErrorIs(t, err, billing.ErrNotFound)
		_, err = b.engine.Access(ctx, "not-a-uuid")
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		_, err = b.engine.SubscriptionGet(ctx, "")
		require.ErrorIs(t, err, billing.ErrInvalidInput)
	})
}

func TestSubscriptionPaidPeriodKeepsItsTerms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("2.1.6 after a price change the paid period keeps its price and volume", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.activeSubscription(t, "c1", "pro")
		b.clock.Advance(24 * time.Hour)
		b.publish(t, "pro", "1290", "generations", 300)

		got, err := b.engine.SubscriptionGet(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, sub.Current.Terms.Version, got.Current.Terms.Version)
		requireCheckout(t, got.Current.Terms, "990", 1, 500)
		requireCheckout(t, got.Checkout, "990", 1, 500)
		res, err := b.engine.Consume(ctx, sub.ID, "generations", 400, "u1")
		require.NoError(t, err, "2.1.6 the volume paid for stays, though the new version has less")
		require.Equal(t, int64(500), res.Limit)

		next, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", IdempotencyKey: "k2"})
		require.NoError(t, err)
		requireCheckout(t, next.Checkout, "1290", 2, 300)
	})

	t.Run("2.1.6 the database refuses to rewrite a paid period's terms", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.publish(t, "pro", "990", "generations", 500)
		sub := b.activeSubscription(t, "c1", "pro")
		_, err := b.pool.Exec(ctx, `UPDATE billing_periods SET terms = jsonb_set(terms, '{price_minor}', '1') WHERE subscription_id = $1`, sub.ID)
		require.ErrorContains(t, err, "keeps its terms")
		_, err = b.pool.Exec(ctx, `UPDATE billing_periods SET end_at = end_at - interval '1 day' WHERE subscription_id = $1`, sub.ID)
		require.ErrorContains(t, err, "only moves forward")
	})
}

// --- helpers ---

// requireCheckout checks the terms against the "pro"-style tariff of the tests: price
// in RUB, version, monthly, one "generations"-like limit of quantity.
func requireCheckout(t *testing.T, terms tariff.Terms, price string, version int, quantity int64) {
	t.Helper()
	require.True(t, terms.Price.Equal(decimal.RequireFromString(price)), "price %s, want %s", terms.Price, price)
	require.Equal(t, "RUB", terms.Currency)
	require.Equal(t, version, terms.Version)
	require.Equal(t, tariff.Period{Count: 1, Unit: tariff.Month}, terms.Period)
	require.Len(t, terms.Limits, 1)
	require.Equal(t, quantity, terms.Limits[0].Quantity)
}

// pendingSubscription subscribes a customer to code without paying.
func (b *testBundle) pendingSubscription(t *testing.T, customer, code string) subscription.Subscription {
	t.Helper()
	sub, err := b.engine.Subscribe(context.Background(), billing.SubscribeParams{CustomerID: customer, TariffCode: code, IdempotencyKey: "sub-" + customer})
	require.NoError(t, err)
	require.Equal(t, subscription.StatusPending, sub.Status)
	return sub
}

// The prepare functions of the tables: a subscription of customer c1 on "pro" in the
// status named.
func pendingID(t *testing.T, b *testBundle) string { return b.pendingSubscription(t, "c1", "pro").ID }
func activeID(t *testing.T, b *testBundle) string  { return b.activeSubscription(t, "c1", "pro").ID }

func suspendedID(t *testing.T, b *testBundle) string {
	id := activeID(t, b)
	_, err := b.engine.Suspend(context.Background(), id, subscription.AdminAction{Actor: "admin:1", Reason: "check"})
	require.NoError(t, err)
	return id
}

func terminatedID(t *testing.T, b *testBundle) string {
	id := activeID(t, b)
	_, err := b.engine.Terminate(context.Background(), id, subscription.AdminAction{Actor: "admin:1", Reason: "fraud"})
	require.NoError(t, err)
	return id
}

// rowCounts counts the rows of every table a command may write to: the engine's
// (found in the catalog, so tables of later migrations count too) and River's jobs.
func (b *testBundle) rowCounts(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
		  AND table_name LIKE 'billing\_%' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "billing_subscriptions")
	counts := make(map[string]int, len(tables)+1)
	for _, table := range tables {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n))
		counts[table] = n
	}
	var jobs int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM "+riverJob).Scan(&jobs))
	counts["river_job"] = jobs
	return counts
}

// snapshot is everything about one subscription a command may change: its row, its
// periods and its usage counters, as text.
func (b *testBundle) snapshot(t *testing.T, id string) string {
	t.Helper()
	var s string
	err := b.pool.QueryRow(context.Background(), `SELECT
		coalesce((SELECT row_to_json(s)::text FROM billing_subscriptions s WHERE s.id::text = $1), '') ||
		coalesce((SELECT json_agg(p ORDER BY p.number)::text FROM billing_periods p WHERE p.subscription_id::text = $1), '') ||
		coalesce((SELECT json_agg(u ORDER BY u.period, u.meter)::text FROM billing_usage u WHERE u.subscription_id::text = $1), '')`, id).Scan(&s)
	require.NoError(t, err)
	return s
}

// requireRefusedWritesNothing runs a command that must be refused with want, and checks
// that it wrote no row anywhere and changed nothing of subscription id.
func (b *testBundle) requireRefusedWritesNothing(t *testing.T, id string, want error, command func() error) {
	t.Helper()
	counts, before := b.rowCounts(t), b.snapshot(t, id)
	err := command()
	require.ErrorIs(t, err, want)
	require.Equal(t, counts, b.rowCounts(t), "a refused command writes no row")
	require.Equal(t, before, b.snapshot(t, id), "a refused command changes nothing")
}

// auditRow is a row of billing_audit_log about a subscription, as the tests compare it.
type auditRow struct {
	Actor, Action, Reason, From, To, Detail string
	At                                      time.Time
}

// audit reads the audit log of a subscription straight from the table, oldest first.
func (b *testBundle) audit(t *testing.T, id string) []auditRow {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT actor, action, reason,
			coalesce(detail->>'from', ''), coalesce(detail->>'to', ''), coalesce(detail->>'detail', detail->>'meter', ''), at
		FROM billing_audit_log WHERE subject = $1 ORDER BY at, id`, "subscription:"+id)
	require.NoError(t, err)
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var a auditRow
		require.NoError(t, rows.Scan(&a.Actor, &a.Action, &a.Reason, &a.From, &a.To, &a.Detail, &a.At))
		out = append(out, a)
	}
	require.NoError(t, rows.Err())
	return out
}

func actions(rows []auditRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Action
	}
	return out
}

// last returns the newest row without its instant.
func last(rows []auditRow) auditRow {
	if len(rows) == 0 {
		return auditRow{}
	}
	return withoutAt(rows[len(rows)-1:])[0]
}

// withoutAt returns rows with At zeroed, to compare the rest.
func withoutAt(rows []auditRow) []auditRow {
	out := make([]auditRow, len(rows))
	for i, r := range rows {
		r.At = time.Time{}
		out[i] = r
	}
	return out
}

func TestSubscribeKeysArePerCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "pro", "990", "generations", 5)
	first, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "checkout-1"})
	require.NoError(t, err)
	second, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", IdempotencyKey: "checkout-1"})
	require.NoError(t, err, "another customer's key never collides")
	require.NotEqual(t, first.ID, second.ID)
	again, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "checkout-1"})
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "the same customer's retry returns the first subscription")
}
