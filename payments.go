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
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// ErrNoGateway is returned by a command that must call the payment provider when
// Config.Gateway is nil.
var ErrNoGateway = errors.New("billing: no payment gateway: set Config.Gateway")

// ErrNotDue is returned by RenewPeriod for a period that has not ended yet.
var ErrNotDue = jobs.ErrNotDue

// ErrUnknownPayment is returned for a webhook that matches no charge attempt.
var ErrUnknownPayment = payment.ErrUnknownPayment

// errRetryLater makes a renewal job fail so that River runs it again later: the outcome
// of a charge is still unknown.
var errRetryLater = errors.New("billing: charge outcome unknown; will look it up again")

// ChargeResult says where a charge stands after ChargeFirstPayment.
type ChargeResult struct {
	// Subscription is the subscription after the charge: active when it succeeded,
	// pending while the outcome is pending or unknown, ended when it was declined.
	Subscription subscription.Subscription
	// Attempt is the charge attempt with the gateway's answer.
	Attempt payment.Attempt
}

// ChargeFirstPayment charges the saved payment method of a pending subscription for its
// first period, under the checkout terms (TERMS 3.3, 3.4). Access is granted only when
// the charge succeeds; a pending charge activates the subscription when its webhook
// arrives (HandlePaymentWebhook); a declined one ends it. Calling it again never charges
// twice: it continues the same attempt under the same gateway key.
func (e *Engine) ChargeFirstPayment(ctx context.Context, subscriptionID string) (ChargeResult, error) {
	check := inputCheck{op: "ChargeFirstPayment"}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return ChargeResult{}, err
	}
	a, err := e.chargePeriod(ctx, subscriptionID, payment.PurposeCheckout, 1)
	if err != nil && !errors.Is(err, errRetryLater) {
		return ChargeResult{}, e.opError("ChargeFirstPayment", err)
	}
	sub, gerr := store.GetSubscription(ctx, e.pool, subscriptionID)
	if gerr != nil {
		return ChargeResult{}, e.opError("ChargeFirstPayment", gerr)
	}
	return ChargeResult{Subscription: sub, Attempt: a}, nil
}

// RenewPeriod is the renewal job's work for the period numbered period of a
// subscription, run at its end (TERMS 3.5): with auto-renew off it ends the subscription
// (3.6); otherwise it charges the next period under the terms the tariff's renewal
// decision picks (the paid period never changes, 2.1.6) and, on success, starts the next
// period, posts the ledger transaction and schedules the next renewal, in one transaction.
// It is safe to run any number of times: at most one charge per period succeeds. Run
// before the period ends (an operator extended it), it does nothing and returns an error
// matching ErrNotDue; the engine's River worker then snoozes the job until the new end.
func (e *Engine) RenewPeriod(ctx context.Context, subscriptionID string, period int) error {
	_, err := e.chargePeriod(ctx, subscriptionID, payment.PurposeRenewal, period+1)
	return err
}

// chargePeriod runs the charge protocol for period number of a subscription:
//
//  1. one transaction decides whether a charge is due and records the attempt with its
//     gateway key (or finds the attempt a crashed or duplicate run left);
//  2. the gateway is called outside any transaction: Charge for a fresh attempt, Lookup
//     for one whose outcome is unknown (never a second Charge under a new key);
//  3. one transaction records the outcome and its effects (new period, ledger, next job;
//     or past_due and a retry job; or the end).
//
// A crash between any two steps leaves an attempt that the next run finds and settles.
func (e *Engine) chargePeriod(ctx context.Context, subID string, purpose payment.Purpose, number int) (payment.Attempt, error) {
	gw := e.cfg.Gateway
	if gw == nil {
		return payment.Attempt{}, ErrNoGateway
	}
	a, fresh, err := e.prepareAttempt(ctx, subID, purpose, number)
	if err != nil || a.ID == "" {
		return a.Attempt, err
	}
	now := e.clock.Now()
	switch a.State {
	case payment.StateCreated:
		a.Attempt, err = e.callGateway(ctx, gw, a, fresh, now)
		if err != nil {
			return a.Attempt, err
		}
	case payment.StateUnknown, payment.StatePending:
		res, lerr := gw.Lookup(ctx, a.IdempotencyKey)
		if a.Attempt, _, err = a.RecordLookup(res, lerr, now); err != nil {
			return a.Attempt, err
		}
	}
	var out payment.Attempt
	var settleErr error
	err = store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		out, settleErr = e.settle(ctx, tx, a)
		if errors.Is(settleErr, errRetryLater) {
			return nil // commit the unknown outcome; the job's retry looks it up
		}
		return settleErr
	})
	if err == nil {
		err = settleErr
	}
	return out, err
}

// prepareAttempt is step 1 of the charge protocol. It returns the attempt to work on
// (ID empty when nothing is due) and whether it was made by this call.
func (e *Engine) prepareAttempt(ctx context.Context, subID string, purpose payment.Purpose, number int) (store.AttemptRow, bool, error) {
	var out store.AttemptRow
	var fresh bool
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		out, fresh = store.AttemptRow{}, false
		now := e.clock.Now()
		sub, err := store.LockSubscription(ctx, tx, subID)
		if err != nil {
			return err
		}
		latest, err := store.LatestAttempt(ctx, tx, subID, number)
		switch {
		case err == nil:
			if latest.State != payment.StateSoftDeclined {
				out = latest // continue it: look it up, settle it
				return nil
			}
			method, err := store.PaymentMethod(ctx, tx, sub.PaymentMethod)
			if err != nil {
				return err
			}
			d, err := payment.Decide(latest.Attempt, e.cfg.Dunning, method, now)
			if err != nil {
				return err
			}
			if d.Action != payment.ActionRetry || d.RetryAt.After(now) {
				out = latest // settle decides: stop, or schedule the retry
				return nil
			}
			next, err := latest.Retry(newID(), now)
			if err != nil {
				return err
			}
			out, fresh = store.AttemptRow{Attempt: next, Terms: latest.Terms}, true
			return store.InsertAttempt(ctx, tx, out)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}

		// No attempt yet for this period: is a charge due?
		var terms tariff.Terms
		dueAt := now
		if purpose == payment.PurposeCheckout {
			if sub.Status != subscription.StatusPending {
				return nil // already activated (or ended): nothing to charge
			}
			terms = sub.Checkout
		} else {
			if sub.Current == nil || sub.Current.Number != number-1 {
				return nil // renewed already, or not the period this job was for
			}
			d := subscription.DecideRenewal(sub, now)
			switch d.Action {
			case subscription.RenewalNone:
				return nil
			case subscription.RenewalWait:
				// The period was extended after the job was scheduled: its job runs again
				// at the new end (the worker snoozes it); nothing is written now.
				return &jobs.NotDueError{Wait: d.At.Sub(now)}
			case subscription.RenewalEnd:
				ended, audit, err := subscription.End(sub, d.EndReason, now)
				if err != nil {
					return err
				}
				return e.save(ctx, tx, sub, ended, audit, now)
			}
			versions, err := store.Versions(ctx, tx, sub.Checkout.Code)
			if err != nil {
				return err
			}
			if terms, err = tariff.TermsForRenewal(sub.Current.Terms, versions, now); err != nil {
				return err
			}
			dueAt = sub.Current.End
			if terms.IsFree() {
				return e.startRenewedPeriod(ctx, tx, sub, terms, now)
			}
		}
		amount, _, err := minorOf(terms)
		if err != nil {
			return err
		}
		a, err := payment.NewAttempt(payment.AttemptSpec{
			ID: newID(), SubscriptionID: sub.ID, Purpose: purpose, PeriodNumber: number, Number: 1,
			Amount: amount, Currency: terms.Currency, DueAt: dueAt,
		}, now)
		if err != nil {
			return err
		}
		out, fresh = store.AttemptRow{Attempt: a, Terms: terms}, true
		return store.InsertAttempt(ctx, tx, out)
	})
	return out, fresh, err
}

// chargeInFlightFor bounds how long a run's gateway call may still be in flight after it
// made its attempt: River's default JobTimeout. An attempt open for longer belongs to a run
// that is gone (the reconciliation job works on the same assumption).
const chargeInFlightFor = time.Minute

// callGateway is step 2 for a created attempt. An attempt this run did not make may have
// reached the gateway before a crash, so it is looked up first and charged (under its
// own key) only when the gateway never saw it. Consent is checked right before the call
// (law of 1 March 2026): a withdrawn method is never charged, even by a job queued before.
func (e *Engine) callGateway(ctx context.Context, gw payment.Gateway, a store.AttemptRow, fresh bool, now time.Time) (payment.Attempt, error) {
	if !fresh {
		res, lerr := gw.Lookup(ctx, a.IdempotencyKey)
		if !errors.Is(lerr, payment.ErrNotFound) {
			next, _, err := a.RecordLookup(res, lerr, now)
			return next, err
		}
	}
	target, err := store.ReadChargeTarget(ctx, e.pool, a.SubscriptionID)
	if err != nil {
		return a.Attempt, err
	}
	method := target.Method
	if a.Purpose == payment.PurposeCheckout && method.ConsentGivenAt.IsZero() && method.ConsentWithdrawnAt.IsZero() {
		method.ConsentGivenAt = now // paying at checkout is the consent (TERMS 3.4)
	}
	if cerr := payment.CanCharge(method, now); cerr != nil {
		if !fresh && now.Sub(a.CreatedAt) < chargeInFlightFor {
			// The run that made the attempt may be calling the gateway right now, having
			// checked the consent before it was withdrawn: a Lookup cannot see a request in
			// flight, and canceling would lose the payment if it lands. Leave the attempt
			// open; the job's retry cancels it once no call can still be in flight.
			return a.Attempt, nil
		}
		_, lerr := gw.Lookup(ctx, a.IdempotencyKey)
		canceled, err := a.Cancel(lerr, now)
		if err != nil {
			return a.Attempt, fmt.Errorf("%w (while refusing to charge: %w)", err, cerr)
		}
		return canceled, nil
	}
	receipt, err := payment.NewChargeReceipt(receiptDescription(a.Terms), a.Amount, a.Currency, e.cfg.VAT, payment.Contact{})
	if err != nil {
		return a.Attempt, err
	}
	req, err := a.ChargeRequest(method, payment.ChargeDetails{
		CustomerID: target.CustomerID, Description: receiptDescription(a.Terms), Receipt: receipt,
		Metadata: map[string]string{"subscription_id": a.SubscriptionID, "period": strconv.Itoa(a.PeriodNumber)},
	}, now)
	if err != nil {
		return a.Attempt, err
	}
	res, callErr := gw.Charge(ctx, req)
	next, _, err := a.RecordCharge(res, callErr, e.clock.Now())
	return next, err
}

// settle is step 3: record the attempt's state and act on the payment decision, in tx.
func (e *Engine) settle(ctx context.Context, tx pgx.Tx, observed store.AttemptRow) (payment.Attempt, error) {
	now := e.clock.Now()
	sub, err := store.LockSubscription(ctx, tx, observed.SubscriptionID)
	if err != nil {
		return observed.Attempt, err
	}
	stored, err := store.LatestAttempt(ctx, tx, observed.SubscriptionID, observed.PeriodNumber)
	if err != nil {
		return observed.Attempt, err
	}
	a := stored
	if stored.ID == observed.ID && !stored.State.Settled() {
		a.Attempt = observed.Attempt // ours is the news; a settled row (a webhook won) stands
		if err := store.UpdateAttempt(ctx, tx, a.Attempt); err != nil {
			return a.Attempt, err
		}
	}
	if stored.ID == observed.ID && stored.State == payment.StateCanceled &&
		(observed.State == payment.StateSucceeded || observed.State == payment.StatePending) {
		// A call that outlived chargeInFlightFor landed after another run canceled the
		// attempt. Never silent: the provider holds money the books do not show.
		e.logger.ErrorContext(ctx, "billing: a charge landed on a canceled attempt; refund it at the provider",
			"attempt", stored.ID, "key", stored.IdempotencyKey, "provider_payment", observed.ProviderPaymentID, "state", observed.State)
	}
	method, err := store.PaymentMethod(ctx, tx, sub.PaymentMethod)
	if err != nil {
		return a.Attempt, err
	}
	d, err := payment.Decide(a.Attempt, e.cfg.Dunning, method, now)
	if err != nil {
		return a.Attempt, err
	}
	switch d.Action {
	case payment.ActionActivate:
		return a.Attempt, e.applyPaid(ctx, tx, sub, a, now)
	case payment.ActionWait:
		return a.Attempt, nil // a webhook or the reconciliation job settles it
	case payment.ActionReconcile:
		if a.Purpose == payment.PurposeRenewal {
			return a.Attempt, errRetryLater
		}
		return a.Attempt, nil // the reconciliation job looks it up
	case payment.ActionRetry:
		if sub.Status == subscription.StatusActive || sub.Status == subscription.StatusExhausted {
			next, audit, err := subscription.MarkPastDue(sub, now)
			if err != nil {
				return a.Attempt, err
			}
			if err := e.save(ctx, tx, sub, next, audit, now); err != nil {
				return a.Attempt, err
			}
		}
		return a.Attempt, e.scheduleRenewal(ctx, tx, sub.ID, a.PeriodNumber-1, a.Number+1, d.RetryAt)
	case payment.ActionStop:
		if a.Purpose == payment.PurposeCheckout {
			if sub.Status != subscription.StatusPending {
				return a.Attempt, nil
			}
			next, audit, err := subscription.FirstPaymentFailed(sub, string(d.Reason), now)
			if err != nil {
				return a.Attempt, err
			}
			return a.Attempt, e.save(ctx, tx, sub, next, audit, now)
		}
		if sub.Status.Final() || sub.Current == nil || sub.Current.Number != a.PeriodNumber-1 {
			return a.Attempt, nil
		}
		next, audit, err := subscription.End(sub, endReasonOf(d.Reason), now)
		if err != nil {
			return a.Attempt, err
		}
		return a.Attempt, e.save(ctx, tx, sub, next, audit, now)
	}
	return a.Attempt, fmt.Errorf("billing: unexpected payment decision %q", d.Action)
}

// applyPaid gives what a succeeded attempt paid for: period 1 (activation) or the next
// period (renewal), with the ledger charge and the next renewal job, in tx. A period
// already started (a duplicate run) is left alone.
func (e *Engine) applyPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, now time.Time) error {
	if a.Purpose == payment.PurposeCheckout {
		if sub.Status != subscription.StatusPending {
			return nil
		}
		loc, err := time.LoadLocation(sub.LocationName())
		if err != nil {
			return err
		}
		next, audit, err := subscription.Activate(sub, subscription.ActivateParams{
			Start: now, End: sub.Checkout.Period.End(now, 1, loc)}, now)
		if err != nil {
			return err
		}
		if err := store.SaveConsent(ctx, tx, sub.PaymentMethod, sub.CustomerID, now); err != nil {
			return err
		}
		if err := e.save(ctx, tx, sub, next, audit, now); err != nil {
			return err
		}
		return e.afterPaid(ctx, tx, next, a)
	}
	if sub.Current == nil || sub.Current.Number != a.PeriodNumber-1 {
		return nil
	}
	return e.startRenewedPeriodPaid(ctx, tx, sub, a, now)
}

// startRenewedPeriodPaid starts the period a renewal attempt paid for.
func (e *Engine) startRenewedPeriodPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, now time.Time) error {
	next, err := e.renew(ctx, tx, sub, a.Terms, now)
	if err != nil {
		return err
	}
	return e.afterPaid(ctx, tx, next, a)
}

// startRenewedPeriod starts the next period of a free tariff: no charge.
func (e *Engine) startRenewedPeriod(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, terms tariff.Terms, now time.Time) error {
	next, err := e.renew(ctx, tx, sub, terms, now)
	if err != nil {
		return err
	}
	return e.scheduleRenewal(ctx, tx, next.ID, next.Current.Number, 1, next.Current.End)
}

// renew starts period Current.Number+1 under terms. The new period starts where the
// paid one ended, also when the charge came later after dunning retries ("anchored as if
// paid on time"), and ends on the anchor's schedule: the n-th period end from period 1's
// start, so a Jan 31 start renews Feb 28, then Mar 31. When the tariff's period length
// changed, or an operator extension moved the end past the schedule, it ends one new
// period after its start instead.
func (e *Engine) renew(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, terms tariff.Terms, now time.Time) (subscription.Subscription, error) {
	loc, err := time.LoadLocation(sub.LocationName())
	if err != nil {
		return sub, err
	}
	start := sub.Current.End
	n := sub.Current.Number + 1
	end := time.Time{}
	if terms.Period == sub.Checkout.Period {
		anchor := sub.Current.Start
		if sub.Current.Number != 1 {
			if anchor, err = store.FirstPeriodStart(ctx, tx, sub.ID); err != nil {
				return sub, err
			}
		}
		end = terms.Period.End(anchor, n, loc)
	}
	if !end.After(start) {
		end = terms.Period.End(start, 1, loc)
	}
	next, audit, err := subscription.Renew(sub, subscription.RenewParams{Terms: terms, Start: start, End: end}, now)
	if err != nil {
		return sub, err
	}
	return next, e.save(ctx, tx, sub, next, audit, now)
}

// afterPaid books what a succeeded attempt paid (Dr provider, Cr deferred revenue),
// schedules the revenue recognition of the period at its end and the renewal job, all in
// the transaction that started the period.
func (e *Engine) afterPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow) error {
	return e.postPeriodCharge(ctx, tx, sub, "payment:"+a.ID, a.ProviderPaymentID, a.Amount, a.Currency,
		renewalJob(sub.ID, sub.Current.Number, 1, sub.Current.End))
}

// postPeriodCharge posts the charge of sub's current period to the ledger and inserts its
// recognition job at the period end together with the jobs in also, with one InsertManyTx
// (one statement; River's unique insert is the costliest statement of a renewal). A free
// period (amount 0) moves no money and inserts only also.
func (e *Engine) postPeriodCharge(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, key, paymentRef string,
	amount int64, currency string, also ...river.InsertManyParams) error {
	batch := also
	if amount > 0 {
		t, err := ledger.Charge(key, paymentRef, currency, amount, e.clock.Now())
		if err != nil {
			return err
		}
		if _, _, err := e.postForPeriod(ctx, tx, sub.ID, sub.Current.Number, t); err != nil {
			return err
		}
		batch = append(batch, recognitionJob(sub.ID, sub.Current.Number, sub.Current.End))
	}
	if len(batch) == 0 {
		return nil
	}
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	_, err = client.InsertManyTx(ctx, tx, batch)
	return err
}

// scheduleRenewal inserts the renewal job of period of subscription id at at, in tx.
func (e *Engine) scheduleRenewal(ctx context.Context, tx pgx.Tx, id string, period, try int, at time.Time) error {
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	j := renewalJob(id, period, try, at)
	_, err = client.InsertTx(ctx, tx, j.Args, j.InsertOpts)
	return err
}

// renewalJob is the renewal job of period of subscription id (attempt try), due at at.
func renewalJob(id string, period, try int, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: period, Try: try},
		InsertOpts: &river.InsertOpts{ScheduledAt: at}}
}

// save writes a transition and its audit entry.
func (e *Engine) save(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, audit subscription.AuditEntry, now time.Time) error {
	if err := store.SaveSubscription(ctx, tx, before, after, now); err != nil {
		return err
	}
	return store.InsertSubscriptionAudit(ctx, tx, audit)
}

// HandlePaymentWebhook applies a charge webhook the host forwards after checking it comes
// from the provider: a pending charge that succeeded activates or renews the subscription
// (TERMS 3.3); a decline acts as at the call. A duplicate webhook, or one that brings no
// news, is a no-op; one that contradicts a settled attempt or its amount is a typed error
// and changes nothing; one about no attempt is ErrUnknownPayment.
func (e *Engine) HandlePaymentWebhook(ctx context.Context, ev payment.WebhookEvent) (payment.Attempt, error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = e.clock.Now()
	}
	var out payment.Attempt
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		found, err := store.AttemptByReference(ctx, tx, ev.ProviderPaymentID, ev.IdempotencyKey)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: provider payment %q, key %q", ErrUnknownPayment, ev.ProviderPaymentID, ev.IdempotencyKey)
		}
		if err != nil {
			return err
		}
		// Lock in the charge protocol's order, subscription then attempt: the other order
		// deadlocks with a renewal job settling the same period. Every write of an attempt
		// holds its subscription's lock, so the attempt read after it is current.
		if _, err := store.LockSubscription(ctx, tx, found.SubscriptionID); err != nil {
			return err
		}
		a, err := store.GetAttempt(ctx, tx, found.ID)
		if err != nil {
			return err
		}
		next, changed, err := payment.ApplyWebhook(a.Attempt, ev)
		if err != nil {
			return err
		}
		if !changed {
			e.logger.InfoContext(ctx, "billing: webhook brought no news", "attempt", a.ID, "outcome", ev.Outcome)
			out = a.Attempt
			return nil
		}
		a.Attempt = next
		out, err = e.settle(ctx, tx, a)
		if errors.Is(err, errRetryLater) {
			err = nil
		}
		return err
	})
	if err != nil {
		return payment.Attempt{}, e.opError("HandlePaymentWebhook", err)
	}
	return out, nil
}

// WithdrawConsent records that the customer withdrew consent to charges on a saved
// payment method (law of 1 March 2026): from this instant nothing is charged on it, even
// by renewal jobs already queued; the subscriptions charged from it turn auto-renew off
// and keep their paid periods to the end. actor is who reported it.
func (e *Engine) WithdrawConsent(ctx context.Context, token, actor string) error {
	check := inputCheck{op: "WithdrawConsent"}
	if token == "" {
		check.add("token", "required")
	}
	if actor == "" {
		check.add("actor", "required for the audit log")
	}
	if err := check.err(); err != nil {
		return err
	}
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		known, err := store.WithdrawConsent(ctx, tx, token, now)
		if err != nil {
			return err
		}
		ids, err := store.SubscriptionsWithMethod(ctx, tx, token)
		if err != nil {
			return err
		}
		if !known && len(ids) == 0 {
			return fmt.Errorf("payment method: %w", store.ErrNotFound)
		}
		for _, id := range ids {
			sub, err := store.LockSubscription(ctx, tx, id)
			if err != nil {
				return err
			}
			next, audit, err := subscription.WithdrawConsent(sub, actor, now)
			if err != nil {
				return err
			}
			if err := e.save(ctx, tx, sub, next, audit, now); err != nil {
				return err
			}
		}
		return nil
	})
	return e.opError("WithdrawConsent", err)
}

// SweepDueRenewals finds subscriptions whose period has ended without a renewal job
// waiting (lost, deleted, or from before a migration) and enqueues one for each: defense
// in depth behind the job inserted with each period. It returns how many it enqueued.
func (e *Engine) SweepDueRenewals(ctx context.Context) (int, error) {
	due, err := store.DueWithoutJob(ctx, e.pool, e.clock.Now(), 1000)
	if err != nil {
		return 0, e.opError("SweepDueRenewals", err)
	}
	for _, d := range due {
		err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			return e.scheduleRenewal(ctx, tx, d.SubscriptionID, d.Period, 1, e.clock.Now())
		})
		if err != nil {
			return 0, e.opError("SweepDueRenewals", err)
		}
	}
	return len(due), nil
}

// ReconcilePayments looks up, at the gateway, every attempt whose outcome has been
// unknown or pending for over a minute, and settles it. It returns how many it looked up.
func (e *Engine) ReconcilePayments(ctx context.Context) (int, error) {
	open, err := store.OpenAttempts(ctx, e.pool, e.clock.Now().Add(-chargeInFlightFor), 500)
	if err != nil {
		return 0, e.opError("ReconcilePayments", err)
	}
	for _, a := range open {
		if _, err := e.chargePeriod(ctx, a.SubscriptionID, a.Purpose, a.PeriodNumber); err != nil && !errors.Is(err, errRetryLater) {
			return 0, e.opError("ReconcilePayments", err)
		}
	}
	return len(open), nil
}

// PeriodicJobs returns the engine's periodic River jobs for the host's river.Config:
// the renewal sweeper and the reconciliation of unknown charge outcomes, every interval
// (0 means 10 minutes).
func (e *Engine) PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.SweepArgs{}, nil
		}, nil),
		river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.ReconcileArgs{}, nil
		}, nil),
	}
}

// Attempts returns every charge attempt of a subscription, by period and number.
func (e *Engine) Attempts(ctx context.Context, subscriptionID string) ([]payment.Attempt, error) {
	rows, err := store.Attempts(ctx, e.pool, subscriptionID)
	if err != nil {
		return nil, e.opError("Attempts", err)
	}
	out := make([]payment.Attempt, len(rows))
	for i, r := range rows {
		out[i] = r.Attempt
	}
	return out, nil
}

func receiptDescription(t tariff.Terms) string {
	return fmt.Sprintf("%s, %s", t.Name, t.Period)
}

func endReasonOf(r payment.StopReason) subscription.EndReason {
	switch r {
	case payment.StopHardDecline:
		return subscription.EndHardDecline
	case payment.StopConsentWithdrawn, payment.StopNoConsent, payment.StopCanceled:
		return subscription.EndConsentWithdrawn
	}
	return subscription.EndDunningExhausted
}
