package billing_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// hostStory runs, in the host's transaction tx, a whole stretch of a customer's life with
// the engine's …Tx commands beside the host's own row: a tariff published, a checkout paid,
// volume consumed and reserved, auto-renew turned off, a refund requested and verified, an
// account deletion requested. Each command sees what the ones before wrote in tx.
func hostStory(t *testing.T, b *testBundle, tx pgx.Tx) (subID string) {
	t.Helper()
	ctx := context.Background()
	_, err := tx.Exec(ctx, `INSERT INTO host_orders (note) VALUES ('the host''s own row')`)
	require.NoError(t, err)
	_, err = b.engine.Tariffs().PublishTx(ctx, tx, "ops", tariff.Spec{Code: "pro", Name: "Pro", Price: decimal.RequireFromString("990"),
		Period: tariff.Period{Count: 1, Unit: tariff.Month}, Limits: []tariff.Limit{{Meter: "posts", Quantity: 10}}})
	require.NoError(t, err)
	sub, err := b.engine.SubscribeTx(ctx, tx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "pro", IdempotencyKey: "checkout-1"})
	require.NoError(t, err)
	sub, err = b.engine.ConfirmFirstPaymentTx(ctx, tx, sub.ID, billing.Payment{ProviderPaymentID: "pay-1",
		Amount: sub.Checkout.Price, Currency: sub.Checkout.Currency, PaymentMethod: "card-1"})
	require.NoError(t, err)
	require.Equal(t, subscription.StatusActive, sub.Status)

	_, err = b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 3, "use-1")
	require.NoError(t, err)
	r, err := b.engine.ReserveTx(ctx, tx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "posts", Quantity: 2, IdempotencyKey: "hold-1"})
	require.NoError(t, err)
	_, err = b.engine.ReservationCommitTx(ctx, tx, r.ID, 1)
	require.NoError(t, err)
	r2, err := b.engine.ReserveTx(ctx, tx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "posts", Quantity: 1, IdempotencyKey: "hold-2"})
	require.NoError(t, err)
	_, err = b.engine.ReservationReleaseTx(ctx, tx, r2.ID)
	require.NoError(t, err)
	_, err = b.engine.SetAutoRenewTx(ctx, tx, sub.ID, false, "customer:c1")
	require.NoError(t, err)
	req, err := b.engine.RequestRefundTx(ctx, tx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelEmail, Text: "please refund", IdempotencyKey: "refund-1"})
	require.NoError(t, err)
	_, err = b.engine.VerifyRefundTx(ctx, tx, req.ID, "operator:1")
	require.NoError(t, err)
	_, err = b.engine.RequestAccountDeletionTx(ctx, tx, billing.AccountDeletionRequestParams{CustomerID: "c1", ReceivedAt: b.clock.Now(),
		Channel: refund.ChannelSupport, IdempotencyKey: "delete-1"})
	require.NoError(t, err)

	got, err := b.engine.SubscriptionGetTx(ctx, tx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, int64(4), got.Current.Usage["posts"].Used, "SubscriptionGetTx sees the volume counted in tx: 3 consumed + 1 committed")
	require.False(t, got.AutoRenew)
	return sub.ID
}

func TestHostTransactionRolledBackLeavesNothingOfOurs(t *testing.T) {
	t.Parallel()
	for _, handler := range []bool{false, true} {
		t.Run(fmt.Sprintf("event handler set: %v", handler), func(t *testing.T) {
			t.Parallel()
			rollbackLeavesNothing(t, handler)
		})
	}
}

// rollbackLeavesNothing runs hostStory in a transaction it rolls back. With an event
// handler set, the events the story made (subscribed, activated, refund requested…) had
// their delivery jobs inserted in the host's transaction too: none may survive.
func rollbackLeavesNothing(t *testing.T, handler bool) {
	var delivered atomic.Int64
	b := setupWith(t, func(c *billing.Config) {
		if handler {
			c.OnEvent = func(context.Context, billing.Event) error { delivered.Add(1); return nil }
		}
	})
	b.withRiver(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `CREATE TABLE host_orders (id serial PRIMARY KEY, note text)`)
	require.NoError(t, err)
	before := b.rowCounts(t)

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	subID := hostStory(t, b, tx)
	require.NoError(t, tx.Rollback(ctx))

	require.Equal(t, before, b.rowCounts(t), "a rolled-back host transaction leaves no row of the engine's, no River job")
	var hostRows int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM host_orders`).Scan(&hostRows))
	require.Zero(t, hostRows)
	_, err = b.engine.SubscriptionGet(ctx, subID)
	require.ErrorIs(t, err, billing.ErrNotFound)
	require.Zero(t, delivered.Load(), "no event of a rolled-back transaction is delivered")
}

func TestHostTransactionCommittedKeepsOursWithTheHosts(t *testing.T) {
	t.Parallel()
	var kinds sync.Map
	b := setupWith(t, func(c *billing.Config) {
		c.OnEvent = func(_ context.Context, ev billing.Event) error { kinds.Store(ev.Kind, true); return nil }
	})
	runner := b.withRiver(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `CREATE TABLE host_orders (id serial PRIMARY KEY, note text)`)
	require.NoError(t, err)

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	subID := hostStory(t, b, tx)
	require.NoError(t, tx.Commit(ctx))

	sub, err := b.engine.SubscriptionGet(ctx, subID)
	require.NoError(t, err)
	require.Equal(t, int64(4), sub.Current.Usage["posts"].Used)
	var hostRows int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM host_orders`).Scan(&hostRows))
	require.Equal(t, 1, hostRows)
	reqs, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{})
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	require.Equal(t, refund.StateVerified, reqs[0].State)
	// The events the commands made in the host's transaction are delivered once it committed.
	require.NoError(t, runner.RunDue(ctx))
	for _, kind := range []billing.EventKind{billing.EventSubscribed, billing.EventActivated, billing.EventRefundRequested} {
		_, ok := kinds.Load(kind)
		require.True(t, ok, "event %s delivered after the commit", kind)
	}
	// The committed commands replay by key, as if run outside a host transaction.
	again, err := b.engine.Consume(ctx, subID, "posts", 3, "use-1")
	require.NoError(t, err)
	require.True(t, again.Replayed)
}

// A command refused inside the host's transaction rolls back its own savepoint only: the
// host's transaction stays usable and what the host and the engine did before stands.
func TestHostTransactionSurvivesARefusedCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.withRiver(t)
	ctx := context.Background()
	code := b.publish(t, "pro", "990", "posts", 10)
	sub := b.activeSubscription(t, "c1", code)

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 4, "use-1")
	require.NoError(t, err)
	refusals := []struct {
		name string
		want error
		run  func() error
	}{
		{"over the hard limit (TERMS 3.1)", billing.ErrLimitExceeded, func() error {
			_, err := b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 7, "use-2")
			return err
		}},
		{"a key reused with another quantity", billing.ErrIdempotencyConflict, func() error {
			_, err := b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 5, "use-1")
			return err
		}},
		{"an unknown meter", billing.ErrMeterUnknown, func() error {
			_, err := b.engine.ConsumeTx(ctx, tx, sub.ID, "videos", 1, "use-3")
			return err
		}},
		{"a missing subscription", billing.ErrNotFound, func() error {
			_, err := b.engine.SuspendTx(ctx, tx, "01890a5d-ac96-774b-bcce-b302099a8057", subscription.AdminAction{Actor: "op", Reason: "r"})
			return err
		}},
		{"a transition not allowed", billing.ErrTransitionNotAllowed, func() error {
			_, err := b.engine.ResumeTx(ctx, tx, sub.ID, subscription.AdminAction{Actor: "op", Reason: "not suspended"})
			return err
		}},
		{"a checkout key reused for another tariff", billing.ErrIdempotencyConflict, func() error {
			_, err := b.engine.SubscribeTx(ctx, tx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "other", IdempotencyKey: "sub-c1"})
			return err
		}},
	}
	for _, r := range refusals {
		require.ErrorIs(t, r.run(), r.want, r.name)
		_, err := tx.Exec(ctx, `SELECT 1`)
		require.NoError(t, err, "%s: the host's transaction is still usable", r.name)
	}
	got, err := b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 6, "use-4")
	require.NoError(t, err)
	require.Equal(t, int64(10), got.Used, "only the consumes that succeeded counted")
	require.True(t, got.Exhausted)
	require.NoError(t, tx.Commit(ctx))

	after, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusExhausted, after.Status)
}

// Until the host commits, the engine's other callers see nothing of tx; a second customer's
// command on another subscription is not held up by it.
func TestHostTransactionIsInvisibleUntilCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.withRiver(t)
	ctx := context.Background()
	code := b.publish(t, "pro", "990", "posts", 10)
	sub := b.activeSubscription(t, "c1", code)
	other := b.activeSubscription(t, "c2", code)

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.engine.ConsumeTx(ctx, tx, sub.ID, "posts", 4, "use-1")
	require.NoError(t, err)
	outside, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Zero(t, outside.Current.Usage["posts"].Used, "an uncommitted ConsumeTx is not seen outside tx")
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = b.engine.Consume(quick, other.ID, "posts", 1, "use-other")
	require.NoError(t, err, "another subscription's command does not wait for the host's transaction")
	require.NoError(t, tx.Commit(ctx))
	inside, err := b.engine.SubscriptionGet(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, int64(4), inside.Current.Usage["posts"].Used)
}

// Every …Tx form refuses a nil transaction with an *InputError naming tx.
func TestHostTransactionFormsRefuseANilTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := "01890a5d-ac96-774b-bcce-b302099a8057"
	by := subscription.AdminAction{Actor: "op", Reason: "r"}
	calls := map[string]func() error{
		"SubscribeTx": func() error { _, err := b.engine.SubscribeTx(ctx, nil, billing.SubscribeParams{}); return err },
		"ConfirmFirstPaymentTx": func() error {
			_, err := b.engine.ConfirmFirstPaymentTx(ctx, nil, id, billing.Payment{})
			return err
		},
		"FailFirstPaymentTx":   func() error { _, err := b.engine.FailFirstPaymentTx(ctx, nil, id, "r"); return err },
		"SetAutoRenewTx":       func() error { _, err := b.engine.SetAutoRenewTx(ctx, nil, id, false, "c"); return err },
		"SuspendTx":            func() error { _, err := b.engine.SuspendTx(ctx, nil, id, by); return err },
		"ResumeTx":             func() error { _, err := b.engine.ResumeTx(ctx, nil, id, by); return err },
		"TerminateTx":          func() error { _, err := b.engine.TerminateTx(ctx, nil, id, by); return err },
		"ExtendPeriodTx":       func() error { _, err := b.engine.ExtendPeriodTx(ctx, nil, id, time.Now(), by); return err },
		"SubscriptionGetTx":    func() error { _, err := b.engine.SubscriptionGetTx(ctx, nil, id); return err },
		"ConsumeTx":            func() error { _, err := b.engine.ConsumeTx(ctx, nil, id, "m", 1, "k"); return err },
		"ReserveTx":            func() error { _, err := b.engine.ReserveTx(ctx, nil, billing.ReserveParams{}); return err },
		"ReservationCommitTx":  func() error { _, err := b.engine.ReservationCommitTx(ctx, nil, id, 1); return err },
		"ReservationReleaseTx": func() error { _, err := b.engine.ReservationReleaseTx(ctx, nil, id); return err },
		"RequestRefundTx": func() error {
			_, err := b.engine.RequestRefundTx(ctx, nil, billing.RefundRequestParams{})
			return err
		},
		"VerifyRefundTx": func() error { _, err := b.engine.VerifyRefundTx(ctx, nil, id, "op"); return err },
		"RejectRefundTx": func() error { _, err := b.engine.RejectRefundTx(ctx, nil, id, "op", "r"); return err },
		"RequestAccountDeletionTx": func() error {
			_, err := b.engine.RequestAccountDeletionTx(ctx, nil, billing.AccountDeletionRequestParams{})
			return err
		},
		"ExecuteAccountDeletionTx": func() error {
			_, err := b.engine.ExecuteAccountDeletionTx(ctx, nil, id, "op")
			return err
		},
		"WithdrawConsentTx": func() error { return b.engine.WithdrawConsentTx(ctx, nil, "c", "t", "op") },
		"PublishTx": func() error {
			_, err := b.engine.Tariffs().PublishTx(ctx, nil, "op", tariff.Spec{})
			return err
		},
		"RetireTx": func() error { _, err := b.engine.Tariffs().RetireTx(ctx, nil, "pro", "op", "r"); return err },
	}
	for name, call := range calls {
		err := call()
		var ie *billing.InputError
		require.ErrorAs(t, err, &ie, name)
		require.True(t, ie.Has("tx"), "%s: %v", name, err)
	}
}
