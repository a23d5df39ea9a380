package billing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// errorCase is one refused call of a public command: the kind the caller must see and,
// when the detail matters, the detail sentinel too.
type errorCase struct {
	name   string
	kind   billing.ErrorKind
	detail error
	call   func() error
}

// TestEveryCommandSpeaksOneErrorVocabulary runs every public command with bad input, a
// missing thing and a state that refuses it, and checks what a host relies on: the error
// is of the kind named (KindOf and errors.Is with the kind's sentinel), its message names
// the engine and the command once ("billing: Op: …", never "billing: Op: billing: …"), no
// sentinel of the internal store reaches the caller, HTTPStatus maps it, and nothing was
// written.
func TestEveryCommandSpeaksOneErrorVocabulary(t *testing.T) {
	t.Parallel()
	rb, sub := setupRefunds(t)
	e, ctx := rb.engine, context.Background()
	missing := "01890a5d-ac96-774b-bcce-b302099a8057"
	by := subscription.AdminAction{Actor: "op:1", Reason: "checked"}
	req, err := e.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: rb.clock.Now(),
		Channel: refund.ChannelEmail, IdempotencyKey: "r1"})
	require.NoError(t, err)
	res, err := e.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 2, IdempotencyKey: "h1"})
	require.NoError(t, err)
	_, err = e.Consume(ctx, sub.ID, "generations", 1, "u1")
	require.NoError(t, err)
	del, err := e.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: "c9", ReceivedAt: rb.clock.Now(),
		Channel: refund.ChannelSupport, IdempotencyKey: "d1"})
	require.NoError(t, err)
	noGateway := setup(t) // an engine wired without a gateway or River

	cases := []errorCase{
		// Subscriptions.
		{"Subscribe without fields", billing.KindInvalidInput, nil, func() error {
			_, err := e.Subscribe(ctx, billing.SubscribeParams{})
			return err
		}},
		{"Subscribe with a card number as token", billing.KindInvalidInput, subscription.ErrCardData, func() error {
			_, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", PaymentMethod: "4111111111111111", IdempotencyKey: "s2"})
			return err
		}},
		{"Subscribe to an unknown tariff", billing.KindNotFound, nil, func() error {
			_, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "nope", IdempotencyKey: "s3"})
			return err
		}},
		{"Subscribe with a checkout key reused for another tariff", billing.KindConflict, billing.ErrIdempotencyConflict, func() error {
			_, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c1", TariffCode: "other", IdempotencyKey: "sub-c1"})
			return err
		}},
		{"Subscribe with another customer's token", billing.KindConflict, billing.ErrPaymentMethodNotOwned, func() error {
			_, err := e.Subscribe(ctx, billing.SubscribeParams{CustomerID: "c2", TariffCode: "pro", PaymentMethod: "tok-c1", IdempotencyKey: "s4"})
			return err
		}},
		{"ConfirmFirstPayment of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.ConfirmFirstPayment(ctx, "x", billing.Payment{ProviderPaymentID: "p"})
			return err
		}},
		{"ConfirmFirstPayment of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.ConfirmFirstPayment(ctx, missing, billing.Payment{ProviderPaymentID: "p"})
			return err
		}},
		{"ConfirmFirstPayment of an active subscription", billing.KindConflict, billing.ErrTransitionNotAllowed, func() error {
			_, err := e.ConfirmFirstPayment(ctx, sub.ID, billing.Payment{ProviderPaymentID: "p", Amount: decimal.RequireFromString("990"), Currency: "RUB"})
			return err
		}},
		{"ChargeFirstPayment of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.ChargeFirstPayment(ctx, "x")
			return err
		}},
		{"ChargeFirstPayment of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.ChargeFirstPayment(ctx, missing)
			return err
		}},
		{"ChargeFirstPayment without a gateway", billing.KindUnavailable, billing.ErrNoGateway, func() error {
			_, err := noGateway.engine.ChargeFirstPayment(ctx, missing)
			return err
		}},
		{"StartCheckout of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.StartCheckout(ctx, "x", "https://shop.example/back")
			return err
		}},
		{"FailFirstPayment of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.FailFirstPayment(ctx, missing, "abandoned")
			return err
		}},
		{"SetAutoRenew of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.SetAutoRenew(ctx, "x", false, "c1")
			return err
		}},
		{"Suspend without a reason", billing.KindInvalidInput, nil, func() error {
			_, err := e.Suspend(ctx, sub.ID, subscription.AdminAction{Actor: "op:1"})
			return err
		}},
		{"Resume of an active subscription", billing.KindConflict, billing.ErrTransitionNotAllowed, func() error {
			_, err := e.Resume(ctx, sub.ID, by)
			return err
		}},
		{"Terminate of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.Terminate(ctx, missing, by)
			return err
		}},
		{"ExtendPeriod to an earlier end", billing.KindInvalidInput, nil, func() error {
			_, err := e.ExtendPeriod(ctx, sub.ID, rb.clock.Now(), by)
			return err
		}},
		{"Get of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.SubscriptionGet(ctx, missing)
			return err
		}},
		{"Access of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.Access(ctx, "x")
			return err
		}},
		{"Attempts of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.AttemptList(ctx, "x")
			return err
		}},
		// Usage.
		{"Consume of nothing", billing.KindInvalidInput, nil, func() error {
			_, err := e.Consume(ctx, sub.ID, "generations", 0, "u2")
			return err
		}},
		{"Consume of an unknown meter", billing.KindInvalidInput, billing.ErrMeterUnknown, func() error {
			_, err := e.Consume(ctx, sub.ID, "videos", 1, "u3")
			return err
		}},
		{"Consume past the hard limit (TERMS 3.1)", billing.KindLimitExceeded, billing.ErrLimitExceeded, func() error {
			_, err := e.Consume(ctx, sub.ID, "generations", 600, "u4")
			return err
		}},
		{"Consume with a key reused for another quantity", billing.KindConflict, billing.ErrIdempotencyConflict, func() error {
			_, err := e.Consume(ctx, sub.ID, "generations", 2, "u1")
			return err
		}},
		{"Consume on a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.Consume(ctx, missing, "generations", 1, "u5")
			return err
		}},
		{"Reserve without a key", billing.KindInvalidInput, nil, func() error {
			_, err := e.Reserve(ctx, billing.ReserveParams{SubscriptionID: sub.ID, Meter: "generations", Quantity: 1})
			return err
		}},
		{"Reserve without River", billing.KindUnavailable, billing.ErrNoRiverClient, func() error {
			_, err := noGateway.engine.Reserve(ctx, billing.ReserveParams{SubscriptionID: missing, Meter: "m", Quantity: 1, IdempotencyKey: "k"})
			return err
		}},
		{"Commit of more than reserved", billing.KindInvalidInput, nil, func() error {
			_, err := e.ReservationCommit(ctx, res.ID, 3)
			return err
		}},
		{"Commit of a missing reservation", billing.KindNotFound, nil, func() error {
			_, err := e.ReservationCommit(ctx, missing, 1)
			return err
		}},
		{"Release of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.ReservationRelease(ctx, "x")
			return err
		}},
		{"ExpireReservation before its expiry", billing.KindConflict, subscription.ErrReservationNotExpired, func() error {
			return billing.ExpireReservation(e, ctx, res.ID)
		}},
		// Refunds.
		{"RequestRefund without fields", billing.KindInvalidInput, nil, func() error {
			_, err := e.RequestRefund(ctx, billing.RefundRequestParams{})
			return err
		}},
		{"RequestRefund received in the future", billing.KindInvalidInput, billing.ErrReceivedInFuture, func() error {
			_, err := e.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: sub.ID, ReceivedAt: rb.clock.Now().Add(time.Hour),
				Channel: refund.ChannelEmail, IdempotencyKey: "r2"})
			return err
		}},
		{"RequestRefund of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: missing, ReceivedAt: rb.clock.Now(),
				Channel: refund.ChannelEmail, IdempotencyKey: "r3"})
			return err
		}},
		{"VerifyRefund without an actor", billing.KindInvalidInput, nil, func() error {
			_, err := e.VerifyRefund(ctx, req.ID, "")
			return err
		}},
		{"VerifyRefund of a missing request", billing.KindNotFound, nil, func() error {
			_, err := e.VerifyRefund(ctx, missing, "op:1")
			return err
		}},
		{"RejectRefund without a reason", billing.KindInvalidInput, nil, func() error {
			_, err := e.RejectRefund(ctx, req.ID, "op:1", "")
			return err
		}},
		{"ExecuteRefund of a request not verified", billing.KindConflict, billing.ErrRefundTransition, func() error {
			_, err := e.ExecuteRefund(ctx, req.ID, billing.ExecuteRefundOpts{Actor: "op:1"})
			return err
		}},
		{"ExecuteRefund of a missing request", billing.KindNotFound, nil, func() error {
			_, err := e.ExecuteRefund(ctx, missing, billing.ExecuteRefundOpts{Actor: "op:1"})
			return err
		}},
		{"SuggestProRata of a missing request", billing.KindNotFound, nil, func() error {
			_, err := e.SuggestProRata(ctx, missing, decimal.Zero)
			return err
		}},
		{"RefundRequestGet of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.RefundRequestGet(ctx, "x")
			return err
		}},
		{"RetryRefund of a missing request", billing.KindNotFound, nil, func() error { return billing.RetryRefund(e, ctx, missing) }},
		{"EscalateRefund of a missing request", billing.KindNotFound, nil, func() error { return billing.EscalateRefund(e, ctx, missing) }},
		{"RefundUnapplied of a missing payment", billing.KindNotFound, nil, func() error { return e.RefundUnapplied(ctx, missing) }},
		// Webhooks and consent.
		{"HandlePaymentWebhook of an empty body", billing.KindInvalidInput, nil, func() error {
			_, err := e.HandlePaymentWebhook(ctx, payment.WebhookEvent{})
			return err
		}},
		{"HandlePaymentWebhook of an unknown payment", billing.KindNotFound, billing.ErrUnknownPayment, func() error {
			_, err := e.HandlePaymentWebhook(ctx, payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: "nope",
				Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB", ReceivedAt: rb.clock.Now()})
			return err
		}},
		{"HandlePaymentWebhook while the gateway does not answer the lookup", billing.KindUnavailable, nil, func() error {
			rb.gateway.FailLookups(1)
			_, err := e.HandlePaymentWebhook(ctx, payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: rb.gateway.Charges()[0].ProviderPaymentID,
				Outcome: payment.OutcomeSucceeded, Amount: 99000, Currency: "RUB", ReceivedAt: rb.clock.Now()})
			return err
		}},
		{"HandleRefundWebhook of an empty body", billing.KindInvalidInput, nil, func() error {
			_, err := e.HandleRefundWebhook(ctx, payment.WebhookEvent{})
			return err
		}},
		{"WithdrawConsent without a token", billing.KindInvalidInput, nil, func() error {
			return e.WithdrawConsent(ctx, "c1", "", "c1")
		}},
		{"WithdrawConsent of an unknown token", billing.KindNotFound, nil, func() error {
			return e.WithdrawConsent(ctx, "c1", "tok-nobody", "c1")
		}},
		// Account deletion, renewal, revenue.
		{"RequestAccountDeletion without fields", billing.KindInvalidInput, nil, func() error {
			_, err := e.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{})
			return err
		}},
		{"ExecuteAccountDeletion without an actor", billing.KindInvalidInput, nil, func() error {
			_, err := e.ExecuteAccountDeletion(ctx, del.ID, "")
			return err
		}},
		{"AccountDeletion of a missing request", billing.KindNotFound, nil, func() error {
			_, err := e.AccountDeletionGet(ctx, missing)
			return err
		}},
		{"EscalateAccountDeletion of a missing request", billing.KindNotFound, nil, func() error {
			return billing.EscalateAccountDeletion(e, ctx, missing)
		}},
		{"RenewPeriod before the period ends", billing.KindConflict, billing.ErrNotDue, func() error {
			return billing.RenewPeriod(e, ctx, sub.ID, 1)
		}},
		{"RenewPeriod of a missing subscription", billing.KindNotFound, nil, func() error {
			return billing.RenewPeriod(e, ctx, missing, 1)
		}},
		{"RecognizeRevenue of a malformed ID", billing.KindInvalidInput, nil, func() error {
			return e.RecognizeRevenue(ctx, "x", 1)
		}},
		// Tariffs.
		{"Publish of a bad spec", billing.KindInvalidInput, tariff.ErrInvalid, func() error {
			_, err := e.Tariffs().Publish(ctx, "ops", tariff.Spec{Code: "bad"})
			return err
		}},
		{"Publish without an actor", billing.KindInvalidInput, nil, func() error {
			_, err := e.Tariffs().Publish(ctx, "", tariff.Spec{Code: "x", Name: "x", Price: decimal.NewFromInt(1),
				Period: tariff.Period{Count: 1, Unit: tariff.Month}})
			return err
		}},
		{"Get of a missing tariff", billing.KindNotFound, nil, func() error {
			_, err := e.Tariffs().Get(ctx, "nope")
			return err
		}},
		{"Versions of a missing tariff", billing.KindNotFound, nil, func() error {
			_, err := e.Tariffs().VersionList(ctx, "nope")
			return err
		}},
		{"InForce before the first version", billing.KindNotFound, tariff.ErrNoVersion, func() error {
			_, err := e.Tariffs().InForce(ctx, "pro", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
			return err
		}},
		{"Retire of a missing tariff", billing.KindNotFound, nil, func() error {
			_, err := e.Tariffs().Retire(ctx, "nope", "ops", "r")
			return err
		}},
		// Readers.
		{"Periods of a missing subscription", billing.KindNotFound, nil, func() error {
			_, err := e.PeriodList(ctx, missing)
			return err
		}},
		{"Subscriptions past the page limit", billing.KindInvalidInput, nil, func() error {
			_, err := e.SubscriptionList(ctx, billing.SubscriptionListParams{Limit: billing.PageLimitMax + 1})
			return err
		}},
		{"AttemptHistory of a missing attempt", billing.KindNotFound, nil, func() error {
			_, err := e.AttemptHistoryGet(ctx, missing)
			return err
		}},
		{"RefundHistory of a malformed ID", billing.KindInvalidInput, nil, func() error {
			_, err := e.RefundHistoryGet(ctx, "x")
			return err
		}},
		{"Transactions of an empty range", billing.KindInvalidInput, nil, func() error {
			_, err := e.Ledger().TransactionList(ctx, billing.LedgerTransactionListParams{From: rb.clock.Now(), To: rb.clock.Now()})
			return err
		}},
		{"ExportCSV to no writer", billing.KindInvalidInput, nil, func() error {
			return e.Ledger().ExportCSV(ctx, nil, rb.clock.Now(), rb.clock.Now().Add(time.Hour))
		}},
		// Books.
		{"Post of an unbalanced transaction", billing.KindInvalidInput, nil, func() error {
			_, _, err := e.Ledger().Post(ctx, ledger.Transaction{Key: "k1"})
			return err
		}},
		{"Transaction of a missing key", billing.KindNotFound, nil, func() error {
			_, err := e.Ledger().TransactionGet(ctx, "nope")
			return err
		}},
		{"Balance of an unknown account", billing.KindInvalidInput, nil, func() error {
			_, err := e.Ledger().Balance(ctx, "no-such-account", rb.clock.Now())
			return err
		}},
		{"Entries of an unknown account", billing.KindInvalidInput, nil, func() error {
			_, err := e.Ledger().EntryList(ctx, "no-such-account")
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := rb.rowCounts(t)
			err := c.call()
			require.Error(t, err)
			requireKind(t, c.name, err, c.kind)
			if c.detail != nil {
				require.ErrorIs(t, err, c.detail)
			}
			require.Equal(t, before, rb.rowCounts(t), "a refused command writes nothing")
		})
	}
}

// requireKind checks what a host relies on in err: its kind, the kind's sentinel, its
// HTTP status, one "billing:" prefix, and no store sentinel in its chain.
func requireKind(t *testing.T, name string, err error, kind billing.ErrorKind) {
	t.Helper()
	require.Equal(t, kind, billing.KindOf(err), "%s: %v", name, err)
	require.ErrorIs(t, err, kind.Sentinel(), name)
	require.Equal(t, kind.HTTPStatus(), billing.HTTPStatus(err), name)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "billing: "), "%s: %q names the engine", name, msg)
	require.Equal(t, 1, strings.Count(msg, "billing:"), "%s: %q says billing once", name, msg)
	require.False(t, errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrKeyConflict),
		"%s: an internal sentinel reached the caller: %v", name, err)
	for _, other := range []billing.ErrorKind{billing.KindInvalidInput, billing.KindNotFound, billing.KindConflict,
		billing.KindNoAccess, billing.KindLimitExceeded, billing.KindUnavailable, billing.KindInternal} {
		if other != kind {
			require.NotErrorIs(t, err, other.Sentinel(), "%s: one kind only", name)
		}
	}
}

func TestErrorKindHTTPStatus(t *testing.T) {
	t.Parallel()
	for kind, status := range map[billing.ErrorKind]int{
		billing.KindInvalidInput: http.StatusBadRequest, billing.KindNotFound: http.StatusNotFound,
		billing.KindConflict: http.StatusConflict, billing.KindNoAccess: http.StatusForbidden,
		billing.KindLimitExceeded: http.StatusForbidden, billing.KindUnavailable: http.StatusServiceUnavailable,
		billing.KindInternal: http.StatusInternalServerError,
	} {
		require.Equal(t, status, kind.HTTPStatus(), kind)
	}
	require.Equal(t, http.StatusOK, billing.HTTPStatus(nil))
	require.Equal(t, billing.KindInternal, billing.KindOf(errors.New("disk full")))
	require.Equal(t, billing.KindUnavailable, billing.KindOf(context.DeadlineExceeded))
}

// TestErrorTypesReachableFromTheRoot: every typed error a caller matches with errors.As
// has a name in package billing, and that name finds the policy package's error in a
// command's chain (the same type: either name works).
func TestErrorTypesReachableFromTheRoot(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error {
		return fmt.Errorf("caller: %w", &billing.Error{Op: "Cmd", Kind: billing.KindOf(err), Err: err})
	}

	var na *billing.NoAccessError
	require.ErrorAs(t, wrap(&subscription.NoAccessError{Reason: subscription.ReasonUsedUp}), &na)
	require.Equal(t, subscription.ReasonUsedUp, na.Reason)

	var le *billing.LimitError
	err := wrap(&subscription.LimitError{Meter: "generations", Limit: 10, Used: 9, Requested: 2})
	require.ErrorAs(t, err, &le)
	require.ErrorIs(t, err, billing.ErrLimitExceeded)
	require.Equal(t, int64(1), le.Limit-le.Used-le.Reserved)

	var te *billing.TransitionError
	require.ErrorAs(t, wrap(&subscription.TransitionError{From: subscription.StatusEnded}), &te)
	require.Equal(t, subscription.StatusEnded, te.From)

	var ne *billing.NotEligibleError
	err = wrap(&refund.NotEligibleError{})
	require.ErrorAs(t, err, &ne)
	require.ErrorIs(t, err, billing.ErrNotEligible)

	var rte *billing.RefundTransitionError
	err = wrap(&refund.TransitionError{From: refund.StateExecuting})
	require.ErrorAs(t, err, &rte)
	require.ErrorIs(t, err, billing.ErrRefundTransition)

	var tve *billing.TariffValidationError
	err = wrap(&tariff.ValidationError{Fields: []tariff.FieldError{{Field: "code", Problem: "is required"}}})
	require.ErrorAs(t, err, &tve)
	require.ErrorIs(t, err, billing.ErrInvalidInput)
	require.Equal(t, "code", tve.Fields[0].Field)

	var lve *billing.LedgerValidationError
	err = wrap(&ledger.ValidationError{Key: "k", Problems: []error{ledger.ErrUnbalanced}})
	require.ErrorAs(t, err, &lve)
	require.ErrorIs(t, err, billing.ErrInvalidInput)
	require.ErrorIs(t, err, ledger.ErrUnbalanced)
}
