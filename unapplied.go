package billing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/payment"
)

// UnappliedState is where an unapplied payment stands.
type UnappliedState string

// The states of an unapplied payment.
const (
	// UnappliedRefunding: owed back; the refund job is paying it back through the gateway.
	UnappliedRefunding UnappliedState = store.UnappliedRefunding
	// UnappliedRefunded: paid back; the ledger shows the refund. Final.
	UnappliedRefunded UnappliedState = store.UnappliedRefunded
	// UnappliedParked: the refund failed too often (or the gateway refused it for good); a
	// person must return the money another way and record it. Nothing retries it.
	UnappliedParked UnappliedState = store.UnappliedParked
)

// UnappliedPayment is money the provider took that no subscription period could take: the
// checkout was abandoned (FailFirstPayment), or the subscription was suspended, ended,
// terminated or refunded, or the period was paid by another charge, before the charge's
// outcome reached the engine. The provider is the truth about money, so the engine books it (Dr provider,
// Cr refunds_payable), audits it ("payment.unapplied" in the subscription's audit log), logs
// it at Warn, and refunds it through the gateway with a 54-FZ return receipt.
type UnappliedPayment struct {
	// ID is the unapplied payment's ID.
	ID string
	// AttemptID is the succeeded charge attempt.
	AttemptID string
	// SubscriptionID is the subscription the charge was for.
	SubscriptionID string
	// Period is the period number the charge was for (still unpaid by it).
	Period int
	// ProviderPaymentID is the provider's payment.
	ProviderPaymentID string
	// AmountMinor is what was taken, and is owed back, in minor units.
	AmountMinor int64
	// Currency is the ISO 4217 code of AmountMinor.
	Currency string
	// Reason says why no period could take it.
	Reason string
	// State is where it stands.
	State UnappliedState
	// RefundKey is the gateway key of its refund (a new one after each refusal).
	RefundKey string
	// ProviderRefundID is the provider's refund, once the provider answered with one.
	ProviderRefundID string
	// Failures counts failed refund tries.
	Failures int
	// LastError is the last failed try's error.
	LastError string
	// CreatedAt is when it was booked.
	CreatedAt time.Time
	// SettledAt is when it was refunded or parked; zero while refunding.
	SettledAt time.Time
}

// unappliedParkAfter is how many failed refund tries park an unapplied payment.
const unappliedParkAfter = 5

// UnappliedPaymentList returns the unapplied payments, oldest first: only those not yet
// refunded (refunding or parked) when open is true.
func (e *Engine) UnappliedPaymentList(ctx context.Context, open bool) (_ []UnappliedPayment, err error) {
	ctx, span := e.tel.start(ctx, "UnappliedPaymentList")
	defer span.end(&err)
	rows, err := store.ListUnapplied(ctx, e.pool, open)
	if err != nil {
		return nil, opError("UnappliedPaymentList", err)
	}
	out := make([]UnappliedPayment, len(rows))
	for i, r := range rows {
		out[i] = unappliedOf(r)
	}
	return out, nil
}

// RefundUnapplied pays an unapplied payment back through the gateway: it looks its refund
// key up first and refunds (under that key) only when the gateway never saw it, so a retry
// never refunds twice. Success books the payout (Dr refunds_payable, Cr provider). A failed
// or refused refund is counted and retried by River with backoff; after 5 failures, or a
// hard refusal, it is parked for a person (logged at Error and audited). A refunded or
// parked payment is a no-op.
//
// Called by the engine's River job, which the payment's booking schedules and the sweeper
// (SweepDueRenewals) restarts; operators call it to retry a payment still refunding
// (UnappliedPaymentList with open true) at once, without waiting for River's backoff (after
// fixing Config.ReceiptContact, or once the provider is back). A run at the same time as
// the job is safe: the refund's key is looked up first, so the money goes back once.
func (e *Engine) RefundUnapplied(ctx context.Context, unappliedID string) (err error) {
	ctx, span := e.tel.start(ctx, "RefundUnapplied", unappliedAttr(unappliedID))
	defer span.end(&err)
	check := inputCheck{op: "RefundUnapplied"}
	check.id("unappliedID", unappliedID)
	if err := check.err(); err != nil {
		return err
	}
	u, err := store.GetUnapplied(ctx, e.pool, unappliedID)
	if err != nil {
		return opError("RefundUnapplied", err)
	}
	if u.State != store.UnappliedRefunding {
		return nil
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return opError("RefundUnapplied", ErrNoGateway)
	}
	res, err := gw.LookupRefund(ctx, unappliedLookupOf(u))
	if errors.Is(err, payment.ErrNotFound) {
		desc := "return of a payment no subscription period took"
		charge, rerr := store.GetAttempt(ctx, e.pool, u.AttemptID)
		if rerr != nil {
			return opError("RefundUnapplied", rerr)
		}
		receipt, rerr := e.refundReceipt(ctx, u.SubscriptionID, desc, u.AmountMinor, u.Currency, charge)
		if rerr != nil {
			// Nothing was sent. Counted as a failed try, so that a receipt that cannot be made
			// (Config.ReceiptContact failing for the customer) parks it for a person rather
			// than keep the money silently.
			err = fmt.Errorf("the return receipt: %w", rerr)
		} else {
			req := payment.RefundParams{IdempotencyKey: u.RefundKey, ProviderPaymentID: u.ProviderPaymentID,
				Amount: u.AmountMinor, Currency: u.Currency, Description: desc, Receipt: receipt,
				Metadata: map[string]string{"billing_unapplied_id": u.ID, payment.MetadataIdempotencyKey: u.RefundKey}}
			if rerr := req.Validate(); rerr != nil {
				return opError("RefundUnapplied", rerr)
			}
			res, err = gw.Refund(ctx, req)
		}
	}
	switch {
	case err == nil && res.Outcome == payment.OutcomeSucceeded:
		return opError("RefundUnapplied", e.unappliedRefunded(ctx, u.ID, res))
	case err == nil && (res.Outcome == payment.OutcomePending || res.Outcome == payment.OutcomeUnknown):
		if res.ProviderRefundID != "" {
			if nerr := store.NoteUnappliedRefund(ctx, e.pool, u.ID, res.ProviderRefundID); nerr != nil {
				return opError("RefundUnapplied", nerr)
			}
		}
		return opError("RefundUnapplied", fmt.Errorf("%s: refund %s, looking again later (or its webhook settles it): %w", u.ID, res.Outcome, ErrUnavailable))
	}
	declined := err == nil // a refusal, not a failure to get an answer
	if err == nil {
		err = fmt.Errorf("refund %s: %s %s", res.Outcome, res.DeclineCode, res.DeclineMessage)
	}
	parked, ferr := e.unappliedFailed(ctx, u.ID, u.RefundKey, err, declined, res.Outcome == payment.OutcomeHardDeclined)
	if ferr != nil {
		return opError("RefundUnapplied", ferr)
	}
	if parked {
		return nil
	}
	return opError("RefundUnapplied", fmt.Errorf("%s: %w", u.ID, err))
}

// handleUnappliedRefundWebhook settles the refund of an unapplied payment named by a refund
// webhook (by key or provider refund ID): the gateway is asked (LookupRefund) and only its
// answer counts. found is false when no unapplied payment has that refund.
func (e *Engine) handleUnappliedRefundWebhook(ctx context.Context, ev payment.WebhookEvent) (bool, error) {
	u, err := store.UnappliedByRefund(ctx, e.pool, ev.IdempotencyKey, ev.ProviderRefundID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	res, lerr := e.cfg.Gateway.LookupRefund(ctx, unappliedLookupOf(u))
	if err := confirmRefundWebhook(ev, res, lerr); err != nil {
		return true, err
	}
	if res.Outcome == payment.OutcomeSucceeded {
		return true, e.unappliedRefunded(ctx, u.ID, res)
	}
	return true, nil // pending or refused: the refund job decides on its next run
}

// unappliedRefunded records the refund of an unapplied payment and books its payout.
func (e *Engine) unappliedRefunded(ctx context.Context, id string, res payment.RefundResult) error {
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		u, err := store.LockUnapplied(ctx, tx, id)
		if err != nil || u.State == store.UnappliedRefunded {
			return err
		}
		if res.Amount != 0 && (res.Amount != u.AmountMinor || res.Currency != u.Currency) {
			return fmt.Errorf("%w: refund of %d %s answered with %d %s", payment.ErrAmountMismatch,
				u.AmountMinor, u.Currency, res.Amount, res.Currency)
		}
		u.State, u.ProviderRefundID, u.SettledAt = store.UnappliedRefunded, res.ProviderRefundID, now
		if err := store.UpdateUnapplied(ctx, tx, u); err != nil {
			return err
		}
		if err := e.emitUnappliedRefunded(ctx, tx, u, now); err != nil {
			return err
		}
		t, err := ledger.PayRefund("unapplied-refund:"+u.ID, u.ID, u.Currency, u.AmountMinor, now,
			ledger.WithMemo(fmt.Sprintf("refund of unapplied payment %s, provider refund %s", u.ProviderPaymentID, res.ProviderRefundID)))
		if err != nil {
			return err
		}
		if _, _, err := e.post(ctx, tx, t); err != nil {
			return err
		}
		e.logger.InfoContext(ctx, "billing: unapplied payment refunded", "unapplied", u.ID, "subscription", u.SubscriptionID,
			"provider_refund", res.ProviderRefundID)
		return store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: "gateway", Action: "payment.unapplied_refunded",
			Subject: SubscriptionSubject(u.SubscriptionID), Detail: map[string]any{"unapplied": u.ID,
				"provider_refund": res.ProviderRefundID, "amount_minor": u.AmountMinor}})
	})
}

// unappliedFailed counts a failed refund try under triedKey; it parks the payment after
// unappliedParkAfter failures or at once when hard, and reports whether it parked it. A
// declined refund is final at the gateway under its key, so the next try gets a new key; a
// try that got no answer keeps its key (the refund may have happened: the next try looks it
// up first). A try under a key the payment has moved past (two callers at once, one of them
// late) counts nothing and changes nothing: a stale refusal must never move the key away
// from a refund in flight under the new one.
func (e *Engine) unappliedFailed(ctx context.Context, id, triedKey string, cause error, declined, hard bool) (bool, error) {
	parked := false
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		u, err := store.LockUnapplied(ctx, tx, id)
		if err != nil || u.State != store.UnappliedRefunding || u.RefundKey != triedKey {
			return err
		}
		u.Failures++
		u.LastError = cause.Error()
		if declined {
			if u.RefundKey, err = e.gatewayKey(ctx, tx, "unapplied", u.ProviderPaymentID, strconv.Itoa(u.Failures)); err != nil {
				return err
			}
		}
		if hard || u.Failures >= unappliedParkAfter {
			u.State, u.SettledAt, parked = store.UnappliedParked, now, true
			e.logger.ErrorContext(ctx, "billing: refund of an unapplied payment parked for a person", "unapplied", u.ID,
				"subscription", u.SubscriptionID, "provider_payment", u.ProviderPaymentID, "failures", u.Failures, "error", cause)
			if err := store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: "billing", Action: "payment.unapplied_parked",
				Subject: SubscriptionSubject(u.SubscriptionID), Reason: u.LastError,
				Detail: map[string]any{"unapplied": u.ID, "failures": u.Failures}}); err != nil {
				return err
			}
			if err := e.emitUnappliedParked(ctx, tx, u, now); err != nil {
				return err
			}
		}
		return store.UpdateUnapplied(ctx, tx, u)
	})
	return parked, err
}

// sweepUnapplied inserts the refund job of every unapplied payment still refunding: a no-op
// while its job waits (unique among live jobs), a new job after River discarded the last.
func (e *Engine) sweepUnapplied(ctx context.Context) error {
	rows, err := store.ListUnapplied(ctx, e.pool, true)
	if err != nil {
		return err
	}
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	var ids []string
	for _, u := range rows {
		if u.State == store.UnappliedRefunding {
			ids = append(ids, u.ID)
		}
	}
	return enqueueEach(ctx, client, "unapplied payment", ids, func(id string) river.JobArgs { return jobs.RefundUnappliedArgs{UnappliedID: id} })
}

func unappliedOf(r store.UnappliedRow) UnappliedPayment {
	return UnappliedPayment{ID: r.ID, AttemptID: r.AttemptID, SubscriptionID: r.SubscriptionID, Period: r.Period,
		ProviderPaymentID: r.ProviderPaymentID, AmountMinor: r.AmountMinor, Currency: r.Currency, Reason: r.Reason,
		State: UnappliedState(r.State), RefundKey: r.RefundKey, ProviderRefundID: r.ProviderRefundID,
		Failures: r.Failures, LastError: r.LastError, CreatedAt: r.CreatedAt, SettledAt: r.SettledAt}
}

// unappliedLookupOf is the gateway's RefundLookupParams for an unapplied payment's refund
// under its current key.
func unappliedLookupOf(u store.UnappliedRow) payment.RefundLookupParams {
	return payment.RefundLookupParams{IdempotencyKey: u.RefundKey, ProviderPaymentID: u.ProviderPaymentID,
		ProviderRefundID: u.ProviderRefundID, CreatedAt: u.CreatedAt}
}
