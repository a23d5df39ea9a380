package billing

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
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

// errNotDue is returned by renewPeriod for a period that has not ended yet (a *jobs.NotDueError):
// the renewal worker snoozes its job until the new end, so it never reaches a host.
var errNotDue = jobs.ErrNotDue

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
// twice: it continues the same attempt under the same gateway key. A subscription that is
// no longer pending (FailFirstPayment ended it) is never charged: the attempt is canceled
// before it is sent, and a charge that lands anyway is refunded (see ReconcilePayments).
func (e *Engine) ChargeFirstPayment(ctx context.Context, subscriptionID string) (_ ChargeResult, err error) {
	ctx, span := e.tel.start(ctx, "ChargeFirstPayment", subAttr(subscriptionID))
	defer span.end(&err)
	check := inputCheck{op: "ChargeFirstPayment"}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return ChargeResult{}, err
	}
	a, err := e.chargePeriod(ctx, subscriptionID, payment.PurposeCheckout, 1)
	if err != nil && !errors.Is(err, errRetryLater) {
		return ChargeResult{}, opError("ChargeFirstPayment", err)
	}
	sub, gerr := store.GetSubscription(ctx, e.pool, subscriptionID)
	if gerr != nil {
		return ChargeResult{}, opError("ChargeFirstPayment", gerr)
	}
	return ChargeResult{Subscription: sub, Attempt: a}, nil
}

// renewPeriod is the renewal job's work (jobs.RenewWorker) for the period numbered period of a
// subscription, run at its end (TERMS 3.5): with auto-renew off it ends the subscription
// (3.6); otherwise it charges the next period under the terms in force at the instant the
// renewal fell due (the paid period never changes, and a job that runs late never charges a
// price that took effect after the due instant, 2.1.6) and, on success, starts the next
// period, posts the ledger transaction and schedules the next renewal, in one transaction.
// It is safe to run any number of times: at most one charge per period succeeds. Run
// before the period ends (an operator extended it), it does nothing and returns an error
// matching errNotDue; the engine's River worker then snoozes the job until the new end.
// A malformed ID is an *InputError, an unknown one matches ErrNotFound.
func (e *Engine) renewPeriod(ctx context.Context, subscriptionID string, period int) error {
	return e.renewPeriodSettlingIn(ctx, ctx, subscriptionID, period)
}

// renewPeriodSettlingIn is renewPeriod with, when batches are off, step 3 under settleCtx
// (chargePeriodSettlingIn): a claimed chunk's renewal records the charge that came back even
// when its claim job's context ended.
func (e *Engine) renewPeriodSettlingIn(ctx, settleCtx context.Context, subscriptionID string, period int) (err error) {
	ctx, span := e.tel.start(ctx, "RenewPeriod", subAttr(subscriptionID))
	defer span.end(&err)
	check := inputCheck{op: "RenewPeriod"}
	check.id("subscriptionID", subscriptionID)
	if period < 1 {
		check.add("period", fmt.Sprintf("%d: periods count from 1", period))
	}
	if err := check.err(); err != nil {
		return err
	}
	if e.cfg.RenewalBatchSize > 1 {
		return opError("RenewPeriod", e.renewBatched(ctx, subscriptionID, period+1))
	}
	_, err = e.chargePeriodSettlingIn(ctx, settleCtx, subscriptionID, payment.PurposeRenewal, period+1)
	return opError("RenewPeriod", err)
}

// chargePeriod runs the charge protocol for period number of a subscription:
//
//  1. one transaction decides whether a charge is due, re-checks the reason to charge
//     (reasonToCharge) and records the attempt with its unguessable gateway key
//     (gatewayKey), marked sent (or finds the attempt a crashed or duplicate run left);
//  2. the gateway is called outside any transaction: Charge for an attempt marked sent in
//     step 1, Lookup for one a run before may have sent (and, when the gateway never saw
//     it, the reason is checked again in the transaction that marks it sent, in resend);
//  3. one transaction records the outcome and its effects (settle): new period, ledger,
//     next job; or past_due and a retry job; or the end; and for money the subscription can
//     no longer take, an unapplied payment refunded through the gateway.
//
// A crash between any two steps leaves an attempt that the next run (or the reconciliation
// job) finds and settles.
func (e *Engine) chargePeriod(ctx context.Context, subID string, purpose payment.Purpose, number int) (payment.Attempt, error) {
	return e.chargePeriodSettlingIn(ctx, ctx, subID, purpose, number)
}

// chargePeriodSettlingIn is chargePeriod with step 3 under settleCtx (runAttemptSettlingIn).
func (e *Engine) chargePeriodSettlingIn(ctx, settleCtx context.Context, subID string, purpose payment.Purpose, number int) (payment.Attempt, error) {
	gw := e.cfg.Gateway
	if gw == nil {
		return payment.Attempt{}, ErrNoGateway
	}
	p, err := e.prepareAttempt(ctx, subID, purpose, number, "")
	if err != nil || p.attempt.ID == "" {
		return p.attempt.Attempt, err
	}
	a, err := e.runAttemptSettlingIn(ctx, settleCtx, gw, p)
	return a.Attempt, err
}

// runAttempt is steps 2 and 3 of the charge protocol for the attempt step 1 prepared.
func (e *Engine) runAttempt(ctx context.Context, gw payment.Gateway, p preparedCharge) (store.AttemptRow, error) {
	return e.runAttemptSettlingIn(ctx, ctx, gw, p)
}

// runAttemptSettlingIn is runAttempt with the settling of what the provider answered under
// settleCtx: a claimed renewal's run records an answer that came back even when its claim
// job's context ended meanwhile (renewClaimed).
func (e *Engine) runAttemptSettlingIn(ctx, settleCtx context.Context, gw payment.Gateway, p preparedCharge) (store.AttemptRow, error) {
	var err error
	a := p.attempt
	switch a.State {
	case payment.StateCreated:
		if !p.send {
			// Made by an earlier run, which may have sent it just before a crash: ask first.
			observed, _, notFound, err := e.lookUp(ctx, gw, a)
			if err != nil {
				return a, err
			}
			if !notFound {
				a = observed
				break
			}
			if p, err = e.resend(ctx, a); err != nil || !p.send {
				if err == nil && (p.attempt.State == payment.StateCreated || p.attempt.State == payment.StateUnknown) {
					// Left open while its first call may be in flight, or that call's run
					// recorded a timeout meanwhile: a later run looks it up again.
					err = errRetryLater
				}
				return p.attempt, err
			}
			a = p.attempt
		}
		if a, err = e.callGateway(ctx, gw, a, p.target); err != nil {
			return a, err
		}
	case payment.StateUnknown, payment.StatePending:
		if a, _, _, err = e.lookUp(ctx, gw, a); err != nil {
			return a, err
		}
	}
	settled, err := e.settleInTx(settleCtx, a)
	a.Attempt = settled
	return a, err
}

// lookupOf is the gateway's LookupParams for attempt a: its key, the provider's id when an
// answer gave it, and when it was created (a provider that forgets keys searches from there).
func lookupOf(a store.AttemptRow) payment.LookupParams {
	return payment.LookupParams{IdempotencyKey: a.IdempotencyKey, ProviderPaymentID: a.ProviderPaymentID, CreatedAt: a.CreatedAt}
}

// lookUp asks the gateway what happened under a's key and returns a with the answer recorded
// (RecordLookup; for a checkout on the provider's page also its page while pending and the
// payment method it saved), whether that changed it, and whether the gateway never saw the
// key. A lookup that got no answer is errLookupFailed, with a unchanged.
func (e *Engine) lookUp(ctx context.Context, gw payment.Gateway, a store.AttemptRow) (store.AttemptRow, bool, bool, error) {
	res, lerr := gw.Lookup(ctx, lookupOf(a))
	if lerr != nil && !errors.Is(lerr, payment.ErrNotFound) {
		return a, false, false, lookupFailed(lerr)
	}
	next, changed, err := a.RecordLookup(res, lerr, e.clock.Now())
	if err != nil {
		return a, false, false, err
	}
	out := a
	out.Attempt = next
	if lerr == nil && res.PaymentMethod != "" && a.ReturnURL != "" && out.SavedMethod != res.PaymentMethod {
		out.SavedMethod, changed = res.PaymentMethod, true
	}
	// A checkout whose StartCheckout answer was lost learns its page here, or never.
	if lerr == nil && res.Outcome == payment.OutcomePending && res.ConfirmationURL != "" && a.ReturnURL != "" &&
		out.ConfirmationURL != res.ConfirmationURL {
		out.ConfirmationURL, changed = res.ConfirmationURL, true
	}
	return out, changed, errors.Is(lerr, payment.ErrNotFound), nil
}

// errLookupFailed is matched by the error of a run whose Lookup failed (the gateway did not
// answer): nothing was learned, nothing is written, and the run is tried again later. It also
// matches errRetryLater. Reconciliation counts it as a failure of the attempt.
var errLookupFailed = errors.New("billing: the gateway did not answer a lookup")

// lookupFailed wraps a failed Lookup's error.
func lookupFailed(err error) error {
	return fmt.Errorf("%w (%w): %w", errLookupFailed, errRetryLater, err)
}

// settleInTx runs step 3 (settle) in its own transaction. An unknown outcome is committed
// and reported as errRetryLater.
func (e *Engine) settleInTx(ctx context.Context, a store.AttemptRow) (payment.Attempt, error) {
	var out payment.Attempt
	var settleErr error
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
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

// preparedCharge is what step 1 hands to step 2.
type preparedCharge struct {
	// attempt is the attempt to work on; ID empty when nothing is due.
	attempt store.AttemptRow
	// send: the reason to charge was checked and the attempt marked sent in the same
	// transaction, so step 2 calls Charge at once.
	send bool
	// target is who is charged and from which method, read in that transaction.
	target chargeTarget
}

// chargeTarget is who a charge is for and which saved method it takes.
type chargeTarget struct {
	customerID string
	method     payment.PaymentMethodStatus
}

// prepareAttempt is step 1 of the charge protocol. returnURL, for a checkout, makes a new
// attempt one the customer confirms on the provider's page (StartCheckout).
func (e *Engine) prepareAttempt(ctx context.Context, subID string, purpose payment.Purpose, number int, returnURL string) (preparedCharge, error) {
	var out preparedCharge
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		out = preparedCharge{}
		sub, err := store.LockSubscription(ctx, tx, subID)
		if err != nil {
			return err
		}
		now := e.clock.Now() // after the lock: a new attempt's sent_at is when its call may start
		latest, err := store.LatestAttempt(ctx, tx, subID, number)
		switch {
		case err == nil:
			if !latest.TookNothing() || purpose == payment.PurposeCheckout {
				out.attempt = latest // continue it: look it up, settle it
				return nil
			}
			// The period's latest attempt took nothing: soft-declined (dunning), or canceled or
			// unapplied while the subscription could not take it (suspended, say). A new one
			// only when the reason to charge stands again.
			target, nr, err := e.reasonToCharge(ctx, tx, sub, purpose, number, false, now)
			if err != nil {
				return err
			}
			if nr != nil { // no new attempt: auto-renew off (TERMS 3.6), consent withdrawn, ended, suspended…
				return e.stopCharging(ctx, tx, sub, purpose, number, nr, now)
			}
			if latest.State == payment.StateSoftDeclined {
				d, err := payment.Decide(latest.Attempt, e.cfg.Dunning, target.method, now)
				if err != nil {
					return err
				}
				if d.Action != payment.ActionRetry || d.RetryAt.After(now) {
					out.attempt = latest // settle decides: stop, or schedule the retry
					return nil
				}
			}
			key, err := e.attemptKey(ctx, tx, purpose, sub.ID, number, latest.Number+1)
			if err != nil {
				return err
			}
			next, err := latest.Retry(newID(), key, now)
			if err != nil {
				return err
			}
			out = preparedCharge{attempt: store.AttemptRow{Attempt: next, Terms: latest.Terms, SentAt: now, VAT: e.cfg.VAT},
				send: true, target: target}
			return store.InsertAttempt(ctx, tx, out.attempt)
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
			dueAt = d.At
			if terms, err = renewalTerms(sub, versions, d); err != nil {
				return err
			}
			if terms.IsFree() {
				return e.startRenewedPeriod(ctx, tx, sub, terms, now)
			}
		}
		target, nr, err := e.reasonToCharge(ctx, tx, sub, purpose, number, returnURL != "", now)
		if err != nil {
			return err
		}
		if nr != nil {
			return e.stopCharging(ctx, tx, sub, purpose, number, nr, now)
		}
		a, err := e.firstAttempt(ctx, tx, sub.ID, purpose, number, terms, dueAt, returnURL, now)
		if err != nil {
			return err
		}
		out = preparedCharge{attempt: a, send: true, target: target}
		return store.InsertAttempt(ctx, tx, out.attempt)
	})
	return out, err
}

// firstAttempt makes attempt 1 of period number of subscription subID under terms, due at
// dueAt, marked sent at now (step 1 checked the reason to charge in the same transaction).
func (e *Engine) firstAttempt(ctx context.Context, q store.Querier, subID string, purpose payment.Purpose, number int,
	terms tariff.Terms, dueAt time.Time, returnURL string, now time.Time) (store.AttemptRow, error) {
	amount, _, err := minorOf(terms)
	if err != nil {
		return store.AttemptRow{}, err
	}
	key, err := e.attemptKey(ctx, q, purpose, subID, number, 1)
	if err != nil {
		return store.AttemptRow{}, err
	}
	a, err := payment.NewAttempt(payment.AttemptSpec{
		ID: newID(), SubscriptionID: subID, Purpose: purpose, PeriodNumber: number, Number: 1,
		Amount: amount, Currency: terms.Currency, DueAt: dueAt, IdempotencyKey: key,
	}, now)
	if err != nil {
		return store.AttemptRow{}, err
	}
	return store.AttemptRow{Attempt: a, Terms: terms, SentAt: now, VAT: e.cfg.VAT, ReturnURL: returnURL}, nil
}

// renewalTerms are the terms sub renews under: the renewal is decided at the instant it
// fell due (d.At), not when the job runs, so a price that took effect after that instant is
// not this period's (TERMS 2.1.6).
func renewalTerms(sub subscription.Subscription, versions []tariff.Version, d subscription.RenewalDecision) (tariff.Terms, error) {
	return tariff.TermsForRenewal(sub.Current.Terms, versions, d.At)
}

// noReason says why a period may not be charged now, and what that means for the
// subscription (see stopCharging).
type noReason struct {
	// why is said in the log and the audit log.
	why string
	// endReason is how a renewal whose period is over ends; empty: nothing changes.
	endReason subscription.EndReason
}

// reasonToCharge re-checks, in tx with the subscription locked, that period number of sub
// may be charged now: the subscription still waits for that period (pending for the
// checkout; for a renewal, that period is next and DecideRenewal says charge, which needs
// auto-renew on, TERMS 3.6), the method belongs to the subscription's customer, and consent
// stands (law of 1 March 2026; paying at checkout is the consent, TERMS 3.4). It returns the
// charge target, or why not (the attempt must then never be sent; stopCharging writes
// what follows for the subscription). A checkout on the provider's page (onPage) charges no
// saved method: the customer pays there, so only the subscription's state is checked.
func (e *Engine) reasonToCharge(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, purpose payment.Purpose,
	number int, onPage bool, now time.Time) (chargeTarget, *noReason, error) {
	switch purpose {
	case payment.PurposeCheckout:
		if sub.Status != subscription.StatusPending {
			return chargeTarget{}, &noReason{why: "the subscription is " + string(sub.Status)}, nil
		}
		if onPage {
			return chargeTarget{customerID: sub.CustomerID}, nil, nil
		}
		if sub.PaymentMethod == "" {
			return chargeTarget{}, nil, &InputError{Op: "ChargeFirstPayment", Problems: []FieldProblem{
				{"PaymentMethod", "the subscription has no saved payment method: pass one to Subscribe"}}}
		}
	default:
		if sub.Current == nil || sub.Current.Number != number-1 {
			return chargeTarget{}, &noReason{why: fmt.Sprintf("period %d is not the next period", number)}, nil
		}
		switch d := subscription.DecideRenewal(sub, now); d.Action {
		case subscription.RenewalCharge:
		case subscription.RenewalEnd:
			return chargeTarget{}, &noReason{why: "no renewal: " + string(d.EndReason), endReason: d.EndReason}, nil
		default: // suspended, final, or the period runs again (extended): not now
			return chargeTarget{}, &noReason{why: "no renewal now: the subscription is " + string(sub.Status)}, nil
		}
	}
	method, owner, err := store.PaymentMethod(ctx, tx, sub.PaymentMethod)
	if err != nil {
		return chargeTarget{}, nil, err
	}
	target, nr := methodReason(sub, purpose, method, owner, now)
	return target, nr, nil
}

// methodReason is the part of reasonToCharge that looks at the saved payment method: sub's
// method, with its consent status and owner as store.PaymentMethod read them in the
// transaction that locked sub.
func methodReason(sub subscription.Subscription, purpose payment.Purpose, method payment.PaymentMethodStatus,
	owner string, now time.Time) (chargeTarget, *noReason) {
	switch {
	case owner != "" && owner != sub.CustomerID:
		return chargeTarget{}, &noReason{why: "the payment method belongs to another customer", endReason: subscription.EndPaymentMethodRefused}
	case purpose == payment.PurposeCheckout:
		if !method.ConsentWithdrawnAt.IsZero() {
			return chargeTarget{}, &noReason{why: "consent to charges on the payment method was withdrawn"}
		}
		if method.ConsentGivenAt.IsZero() || method.ConsentGivenAt.After(now) {
			method.ConsentGivenAt = now // paying at checkout is the consent (TERMS 3.4)
		}
	default:
		if cerr := payment.CanCharge(method, now); cerr != nil {
			return chargeTarget{}, &noReason{why: cerr.Error(), endReason: subscription.EndConsentWithdrawn}
		}
	}
	return chargeTarget{customerID: sub.CustomerID, method: method}, nil
}

// stopCharging writes what having no reason to charge means for the subscription, in tx: a
// pending checkout fails; a renewal whose period is over ends with the reason's end reason.
// Anything else stays as it is.
func (e *Engine) stopCharging(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, purpose payment.Purpose,
	number int, nr *noReason, now time.Time) error {
	e.logger.InfoContext(ctx, "billing: no reason to charge; nothing sent", "subscription", sub.ID,
		"purpose", string(purpose), "period", number, "why", nr.why)
	if purpose == payment.PurposeCheckout {
		if sub.Status != subscription.StatusPending {
			return nil
		}
		next, audit, err := subscription.FirstPaymentFailed(sub, nr.why, now)
		if err != nil {
			return err
		}
		return e.save(ctx, tx, sub, next, audit, now)
	}
	if nr.endReason == "" || !sub.Status.Allows(subscription.ActionEnd) || sub.Current == nil ||
		sub.Current.Number != number-1 || now.Before(sub.Current.End) {
		return nil
	}
	next, audit, err := subscription.End(sub, nr.endReason, now)
	if err != nil {
		return err
	}
	return e.save(ctx, tx, sub, next, audit, now)
}

// chargeInFlightFor bounds how long a run's gateway call may still be in flight after it
// marked its attempt sent: River's default JobTimeout. An attempt sent longer ago belongs to
// a run that is gone. A call that outlives it anyway (a request the provider processed after
// the client gave up) lands on a canceled attempt: settle then books it as an unapplied
// payment and refunds it, and the reconciliation job looks such attempts up for a day.
const chargeInFlightFor = time.Minute

// gatewayCallTimeout bounds one Charge or StartCheckout call, whoever calls it (a host's
// handler may set no deadline; an adapter may retry under the key): it ends before
// chargeInFlightFor, counted from the moment step 1 marked the attempt sent, runs out.
const gatewayCallTimeout = chargeInFlightFor * 9 / 10

// resend is the transaction before charging again an attempt a run before made and the
// gateway never saw (Lookup: ErrNotFound): with the subscription locked it re-checks the
// reason to charge and marks the attempt sent, or cancels it (only once no call of the run
// that sent it can still be in flight; before that it is left open for a later run).
func (e *Engine) resend(ctx context.Context, a store.AttemptRow) (preparedCharge, error) {
	var out preparedCharge
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		sub, err := store.LockSubscription(ctx, tx, a.SubscriptionID)
		if err != nil {
			return err
		}
		cur, err := store.LockAttempt(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		out = preparedCharge{attempt: cur}
		if cur.State != payment.StateCreated {
			return nil // settled meanwhile (a webhook, another run)
		}
		latest, err := store.LatestAttempt(ctx, tx, cur.SubscriptionID, cur.PeriodNumber)
		if err != nil {
			return err
		}
		nr := &noReason{why: "a later attempt of the period exists"}
		if latest.ID == cur.ID {
			var target chargeTarget
			if target, nr, err = e.reasonToCharge(ctx, tx, sub, cur.Purpose, cur.PeriodNumber, cur.ReturnURL != "", now); err != nil {
				var ie *InputError
				if !errors.As(err, &ie) {
					return err
				}
				// The checkout's token is gone (consent withdrawn before the charge): the
				// attempt can never be sent.
				nr = &noReason{why: "no payment method to charge"}
			}
			if nr == nil {
				cur.SentAt = now
				out = preparedCharge{attempt: cur, send: true, target: target}
				return store.UpdateAttempt(ctx, tx, cur)
			}
		}
		if !cur.SentAt.IsZero() && now.Sub(cur.SentAt) < chargeInFlightFor {
			// Its run may be calling the gateway right now, with the reason it had then: the
			// charge may land and pay the period. A later run decides, with nothing changed.
			return nil
		}
		canceled, err := cur.Cancel(payment.ErrNotFound, now) // the Lookup just before said so
		if err != nil {
			return err
		}
		cur.Attempt = canceled
		out.attempt = cur
		if err := store.UpdateAttempt(ctx, tx, cur); err != nil {
			return err
		}
		if latest.ID != cur.ID {
			return nil
		}
		return e.stopCharging(ctx, tx, sub, cur.Purpose, cur.PeriodNumber, nr, now)
	})
	return out, err
}

// callGateway is step 2 for an attempt marked sent: build the request (54-FZ receipt with
// the customer's contact and the attempt's VAT code) and Charge under the attempt's key, or,
// for a checkout on the provider's page, StartCheckout (payment.CheckoutGateway).
func (e *Engine) callGateway(ctx context.Context, gw payment.Gateway, a store.AttemptRow, target chargeTarget) (store.AttemptRow, error) {
	now := e.clock.Now()
	contact, err := e.receiptContact(ctx, target.customerID)
	if err != nil {
		return a, err
	}
	receipt, err := payment.NewChargeReceipt(receiptDescription(a.Terms), a.Amount, a.Currency, e.vatOf(a), contact)
	if err != nil {
		return a, err
	}
	details := payment.ChargeDetails{
		CustomerID: target.customerID, Description: receiptDescription(a.Terms), Receipt: receipt,
		Metadata: map[string]string{"subscription_id": a.SubscriptionID, "period": strconv.Itoa(a.PeriodNumber)},
	}
	callCtx, cancel := context.WithTimeout(ctx, gatewayCallTimeout)
	defer cancel()
	var res payment.CheckoutResult
	var callErr error
	if a.ReturnURL != "" {
		cg, ok := gw.(payment.CheckoutGateway)
		if !ok {
			return a, ErrNoCheckout
		}
		req, err := a.CheckoutParams(details, a.ReturnURL)
		if err != nil {
			return a, err
		}
		res, callErr = cg.StartCheckout(callCtx, req)
	} else {
		req, err := a.ChargeParams(target.method, details, now)
		if err != nil {
			return a, err
		}
		e.tel.renewalSent(ctx, a.Attempt, now) // billing.renewal.lag
		res.ChargeResult, callErr = gw.Charge(callCtx, req)
	}
	next, _, err := a.RecordCharge(res.ChargeResult, callErr, e.clock.Now())
	if err == nil && callErr == nil && a.ReturnURL != "" {
		a.ConfirmationURL, a.SavedMethod = res.ConfirmationURL, res.PaymentMethod // a method only when it succeeded at once
	}
	a.Attempt = next
	return a, err
}

// receiptContact asks the host where customerID's 54-FZ receipts go (Config.ReceiptContact).
func (e *Engine) receiptContact(ctx context.Context, customerID string) (payment.Contact, error) {
	if e.cfg.ReceiptContact == nil || customerID == "" {
		return payment.Contact{}, nil
	}
	c, err := e.cfg.ReceiptContact(ctx, customerID)
	if err != nil {
		return payment.Contact{}, fmt.Errorf("billing: Config.ReceiptContact for customer %q: %w", customerID, err)
	}
	return c, nil
}

// vatOf is the VAT code of attempt a's receipt: the one fixed when it was made, or, for an
// attempt made before migration 0010, Config.VAT.
func (e *Engine) vatOf(a store.AttemptRow) payment.VATCode {
	if a.VAT != "" {
		return a.VAT
	}
	return e.cfg.VAT
}

// settle is step 3: record what the gateway said about an attempt and act on it, in tx.
//
// The provider is the truth about money: an attempt that becomes succeeded here is either
// applied to its period (activation, renewal) or, when the subscription can no longer take
// it, booked as an unapplied payment and refunded (bookUnapplied). Nothing after the
// gateway's answer may roll back its record because a lifecycle transition refused. An
// attempt that was already succeeded had its effects written when it became so.
func (e *Engine) settle(ctx context.Context, tx pgx.Tx, observed store.AttemptRow) (payment.Attempt, error) {
	now := e.clock.Now()
	sub, err := store.LockSubscription(ctx, tx, observed.SubscriptionID)
	if err != nil {
		return observed.Attempt, err
	}
	stored, err := store.LockAttempt(ctx, tx, observed.ID)
	if err != nil {
		return observed.Attempt, err
	}
	a := stored
	if observed.ConfirmationURL != "" {
		a.ConfirmationURL = observed.ConfirmationURL
	}
	if observed.SavedMethod != "" {
		a.SavedMethod = observed.SavedMethod
	}
	switch {
	case !stored.State.Settled():
		a.Attempt = observed.Attempt // ours is the news; a settled row (a webhook won) stands
	case stored.State == payment.StateCanceled &&
		(observed.State == payment.StateSucceeded || observed.State == payment.StatePending):
		// A call that outlived chargeInFlightFor landed after the attempt was canceled. The
		// gateway's word wins: the money is recorded (and, succeeded, refunded below).
		e.logger.WarnContext(ctx, "billing: a charge landed on a canceled attempt", "attempt", stored.ID,
			"provider_payment", observed.ProviderPaymentID, "state", observed.State)
		a.Attempt = observed.Attempt
	}
	if a.State == payment.StateSucceeded && stored.State != payment.StateSucceeded {
		return a.Attempt, e.takePayment(ctx, tx, sub, a, now)
	}
	if a.State != stored.State || a.ProviderPaymentID != stored.ProviderPaymentID ||
		a.ConfirmationURL != stored.ConfirmationURL || a.SavedMethod != stored.SavedMethod {
		if err := store.UpdateAttempt(ctx, tx, a); err != nil {
			return a.Attempt, err
		}
	}
	if err := e.emitDeclined(ctx, tx, sub, stored, a, now); err != nil {
		return a.Attempt, err
	}
	if a.State == payment.StateSucceeded || a.State == payment.StateCanceled {
		return a.Attempt, nil // effects written when it succeeded, or when it was canceled
	}
	latest, err := store.LatestAttempt(ctx, tx, a.SubscriptionID, a.PeriodNumber)
	if err != nil {
		return a.Attempt, err
	}
	if latest.ID != a.ID {
		return a.Attempt, nil // a stale attempt: the period's latest one decides
	}
	method, _, err := store.PaymentMethod(ctx, tx, sub.PaymentMethod)
	if err != nil {
		return a.Attempt, err
	}
	var d payment.Decision
	switch {
	case a.State == payment.StateSoftDeclined && a.Purpose == payment.PurposeCheckout && a.ReturnURL != "":
		d = payment.Decision{Action: payment.ActionStop, Reason: payment.StopDeclinedAtCheckout} // declined (or abandoned) on the provider's page
	case sub.PaymentMethod == "" && a.State == payment.StateSoftDeclined:
		d = payment.Decision{Action: payment.ActionStop, Reason: payment.StopNoConsent} // the token is gone: nothing to retry on
	default:
		d, err = payment.Decide(a.Attempt, e.cfg.Dunning, method, now)
	}
	if err != nil {
		return a.Attempt, err
	}
	waitsForThis := a.Purpose == payment.PurposeCheckout && sub.Status == subscription.StatusPending ||
		a.Purpose == payment.PurposeRenewal && sub.Current != nil && sub.Current.Number == a.PeriodNumber-1 &&
			sub.Status.Allows(subscription.ActionRenew)
	switch d.Action {
	case payment.ActionWait:
		return a.Attempt, nil // a webhook or the reconciliation job settles it
	case payment.ActionReconcile:
		if a.Purpose == payment.PurposeRenewal {
			return a.Attempt, errRetryLater
		}
		return a.Attempt, nil // the reconciliation job looks it up
	case payment.ActionRetry:
		if !waitsForThis {
			return a.Attempt, nil // ended, suspended or renewed meanwhile: no retry now
		}
		if sub.Status.Allows(subscription.ActionMarkPastDue) && !now.Before(sub.Current.End) {
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
		if !waitsForThis {
			return a.Attempt, nil
		}
		if a.Purpose == payment.PurposeCheckout {
			next, audit, err := subscription.FirstPaymentFailed(sub, string(d.Reason), now)
			if err != nil {
				return a.Attempt, err
			}
			return a.Attempt, e.save(ctx, tx, sub, next, audit, now)
		}
		if now.Before(sub.Current.End) {
			return a.Attempt, nil // an early renewal declined: the paid period runs to its end
		}
		next, audit, err := subscription.End(sub, endReasonOf(d.Reason), now)
		if err != nil {
			return a.Attempt, err
		}
		return a.Attempt, e.save(ctx, tx, sub, next, audit, now)
	}
	return a.Attempt, fmt.Errorf("billing: unexpected payment decision %q", d.Action)
}

// takePayment records an attempt that just succeeded: applied to its period when the
// subscription can still take it, else an unapplied payment. A lifecycle refusal while
// applying (a transition the subscription no longer allows) rolls back only the savepoint
// of the attempt to apply it, and the money is booked as unapplied instead.
func (e *Engine) takePayment(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, now time.Time) error {
	why := cannotApply(sub, a, now)
	if why == "" {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			if err := store.UpdateAttempt(ctx, sp, a); err != nil {
				return err
			}
			return e.applyPaid(ctx, sp, sub, a, now)
		})
		var te *subscription.TransitionError
		var ve *subscription.ValidationError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &te) || errors.As(err, &ve):
			why = "the subscription refused the period: " + err.Error()
		case store.IsUniqueViolation(err, "billing_payment_attempts_one_success"):
			why = fmt.Sprintf("period %d is paid by another charge", a.PeriodNumber)
		default:
			return err
		}
	}
	a.Unapplied = true
	if err := store.UpdateAttempt(ctx, tx, a); err != nil {
		return err
	}
	return e.bookUnapplied(ctx, tx, sub, a, why, now)
}

// cannotApply says why sub can no longer take the period attempt a paid for, or "".
func cannotApply(sub subscription.Subscription, a store.AttemptRow, now time.Time) string {
	if a.Purpose == payment.PurposeCheckout {
		if sub.Status != subscription.StatusPending {
			return fmt.Sprintf("checkout of a subscription that is %s", sub.Status)
		}
		return ""
	}
	switch {
	case sub.Current == nil || sub.Current.Number != a.PeriodNumber-1:
		return fmt.Sprintf("period %d is not the next period of the subscription", a.PeriodNumber)
	case !sub.Status.Allows(subscription.ActionRenew):
		return fmt.Sprintf("renewal of a subscription that is %s", sub.Status)
	}
	return ""
}

// applyPaid gives what a succeeded attempt paid for: period 1 (activation) or the next
// period (renewal), with the ledger charge and the next renewal job, in tx. The caller
// checked with cannotApply that the subscription can take it.
func (e *Engine) applyPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, now time.Time) error {
	if a.Purpose == payment.PurposeCheckout {
		loc, err := time.LoadLocation(sub.LocationName())
		if err != nil {
			return err
		}
		saved, err := e.savedMethod(ctx, tx, sub, a)
		if err != nil {
			return err
		}
		base := sub
		if a.ReturnURL != "" {
			// Paid on the provider's page: only the method saved there renews. A token given to
			// Subscribe was never paid with, so paying here is no consent to charge it (TERMS 3.4).
			base.PaymentMethod = ""
		}
		next, audit, err := subscription.Activate(base, subscription.ActivateParams{
			Start: now, End: sub.Checkout.Period.End(now, 1, loc), PaymentMethod: saved}, now)
		if err != nil {
			return err
		}
		if next.PaymentMethod != "" { // gone when consent was withdrawn while the charge was in flight
			if err := store.SaveConsent(ctx, tx, next.PaymentMethod, next.CustomerID, now); err != nil {
				return err
			}
		}
		if err := e.save(ctx, tx, sub, next, audit, now); err != nil {
			return err
		}
		return e.afterPaid(ctx, tx, next, a, false)
	}
	return e.startRenewedPeriodPaid(ctx, tx, sub, a, now)
}

// savedMethod is the payment method a checkout on the provider's page saved, bound to the
// subscription's customer as the token for renewals, or "" (a charge of a saved method; or
// the customer did not let the provider save it, and the subscription will not renew from
// it). A method the provider gave that is bound to another customer is not taken (logged):
// a token charges only its owner.
func (e *Engine) savedMethod(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow) (string, error) {
	if a.SavedMethod == "" {
		return "", nil
	}
	err := bindPaymentMethod(ctx, tx, a.SavedMethod, sub.CustomerID)
	if errors.Is(err, ErrPaymentMethodNotOwned) {
		e.logger.ErrorContext(ctx, "billing: the provider saved a payment method bound to another customer; not taken",
			"subscription", sub.ID, "attempt", a.ID)
		return "", nil
	}
	return a.SavedMethod, err
}

// bookUnapplied books a succeeded payment that no period can take (TERMS 3.3: money is
// never kept for nothing): the ledger shows it as owed back (Dr provider, Cr
// refunds_payable), an unapplied payment is recorded with its refund key (gatewayKey), the refund
// job is scheduled, and the audit log and the log say why. RefundUnapplied pays it back
// through the gateway with its 54-FZ return receipt.
func (e *Engine) bookUnapplied(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, why string, now time.Time) error {
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	key, err := e.gatewayKey(ctx, tx, "unapplied", a.ProviderPaymentID, "0")
	if err != nil {
		return err
	}
	u := store.UnappliedRow{ID: newID(), AttemptID: a.ID, SubscriptionID: a.SubscriptionID, Period: a.PeriodNumber,
		ProviderPaymentID: a.ProviderPaymentID, AmountMinor: a.Amount, Currency: a.Currency, Reason: why,
		State: store.UnappliedRefunding, RefundKey: key, CreatedAt: now}
	if err := store.InsertUnapplied(ctx, tx, u); err != nil {
		return err
	}
	t, err := ledger.UnappliedCharge("unapplied:"+a.ID, a.ProviderPaymentID, a.Currency, a.Amount, now,
		ledger.WithMemo(fmt.Sprintf("payment of subscription %s period %d no period can take: %s", a.SubscriptionID, a.PeriodNumber, why)))
	if err != nil {
		return err
	}
	if _, _, err := e.post(ctx, tx, t); err != nil {
		return err
	}
	if _, err := client.InsertTx(ctx, tx, jobs.RefundUnappliedArgs{UnappliedID: u.ID}, nil); err != nil {
		return err
	}
	e.logger.WarnContext(ctx, "billing: unapplied payment; refunding it", "subscription", sub.ID, "status", string(sub.Status),
		"attempt", a.ID, "provider_payment", a.ProviderPaymentID, "amount_minor", a.Amount, "currency", a.Currency, "why", why)
	return store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: "billing", Action: "payment.unapplied",
		Subject: SubscriptionSubject(sub.ID), Reason: why, Detail: map[string]any{"attempt": a.ID, "unapplied": u.ID,
			"provider_payment": a.ProviderPaymentID, "amount_minor": a.Amount, "period": a.PeriodNumber}})
}

// startRenewedPeriodPaid starts the period a renewal attempt paid for.
func (e *Engine) startRenewedPeriodPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, now time.Time) error {
	next, err := e.renew(ctx, tx, sub, a.Terms, now)
	if err != nil {
		return err
	}
	return e.afterPaid(ctx, tx, next, a, e.cfg.ClaimRenewals)
}

// startRenewedPeriod starts the next period of a free tariff: no charge.
func (e *Engine) startRenewedPeriod(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, terms tariff.Terms, now time.Time) error {
	next, err := e.renew(ctx, tx, sub, terms, now)
	if err != nil || e.cfg.ClaimRenewals { // renew scheduled it with the period (claims)
		return err
	}
	return e.scheduleRenewal(ctx, tx, next.ID, next.Current.Number, 1, next.Current.End)
}

// LateRenewalGrace is how late a renewal may be paid and still start where the paid period
// ended. A renewal paid later (after dunning retries, a suspension across the period end,
// an outage) starts when it was paid and runs one full period from then: the customer, who
// had no access since the end, never pays for days already past.
const LateRenewalGrace = time.Hour

// renew starts period Current.Number+1 under terms. Where it is placed:
//   - paid on time (within LateRenewalGrace of the end): it starts where the paid period
//     ended and ends on the anchor's schedule, the n-th period end from period 1's start, so
//     a Jan 31 start renews Feb 28, then Mar 31 — as long as the periods are on that
//     schedule;
//   - off the schedule (an operator extended the period, a late payment re-anchored it, the
//     tariff's period length changed): it ends one full period after its start, so an
//     extension is never clawed back from the next period (TERMS 2.1.4);
//   - paid late: it starts at now, one full period.
//
// It is never shorter than one full period from its start.
func (e *Engine) renew(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, terms tariff.Terms, now time.Time) (subscription.Subscription, error) {
	loc, err := time.LoadLocation(sub.LocationName())
	if err != nil {
		return sub, err
	}
	start := sub.Current.End
	n := sub.Current.Number + 1
	end := time.Time{}
	switch {
	case now.After(start.Add(LateRenewalGrace)):
		start = now
	case terms.Period == sub.Checkout.Period:
		anchor := sub.Current.Start
		if sub.Current.Number != 1 {
			if anchor, err = firstPeriodStart(ctx, tx, sub.ID); err != nil {
				return sub, err
			}
		}
		if terms.Period.End(anchor, n-1, loc).Equal(start) {
			end = terms.Period.End(anchor, n, loc)
		}
	}
	if full := terms.Period.End(start, 1, loc); end.Before(full) {
		end = full
	}
	next, audit, err := subscription.Renew(sub, subscription.RenewParams{Terms: terms, Start: start, End: end}, now)
	if err != nil {
		return sub, err
	}
	if e.cfg.ClaimRenewals { // the next renewal at the new period's end, in the same write
		return next, e.saveWith(ctx, tx, sub, next, audit, now, func() error {
			return store.SaveSubscriptionRenewAt(ctx, tx, sub, next, now, next.Current.End)
		})
	}
	return next, e.save(ctx, tx, sub, next, audit, now)
}

// afterPaid books what a succeeded attempt paid (Dr provider, Cr deferred revenue),
// schedules the revenue recognition of the period at its end and the renewal job (unless
// scheduled: renew set renew_at with the period, claims on), all in the transaction that
// started the period.
func (e *Engine) afterPaid(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, a store.AttemptRow, scheduled bool) error {
	var also []river.InsertManyParams
	if !scheduled {
		also = append(also, renewalJob(sub.ID, sub.Current.Number, 1, sub.Current.End))
	}
	return e.postPeriodCharge(ctx, tx, sub, "payment:"+a.ID, a.ProviderPaymentID, a.Amount, a.Currency, also...)
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
	return e.insertJobs(ctx, tx, batch...)
}

// insertJobs inserts River jobs in tx with one InsertManyTx; in a batch's transaction
// (batchWrites) it collects them, and the batch inserts all of its jobs with one statement
// before it commits. With Config.ClaimRenewals a renewal job is not inserted: its
// subscription's renew_at is set instead (claimRenewalJobs).
func (e *Engine) insertJobs(ctx context.Context, tx pgx.Tx, params ...river.InsertManyParams) error {
	params, err := e.claimRenewalJobs(ctx, tx, params)
	if err != nil {
		return err
	}
	if len(params) == 0 {
		return nil
	}
	if bw, ok := tx.(*batchWrites); ok {
		bw.jobs = append(bw.jobs, params...)
		return nil
	}
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	_, err = client.InsertManyTx(ctx, tx, params)
	return err
}

// renewalJob is the renewal job of period of subscription id (attempt try), due at at.
func renewalJob(id string, period, try int, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{Args: jobs.RenewArgs{SubscriptionID: id, Period: period, Try: try},
		InsertOpts: &river.InsertOpts{ScheduledAt: at}}
}

// save writes a transition and its audit entry.
func (e *Engine) save(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, audit subscription.AuditEntry, now time.Time) error {
	return e.saveWith(ctx, tx, before, after, audit, now, func() error { return store.SaveSubscription(ctx, tx, before, after, now) })
}

// saveWith is save with write writing the subscription row.
func (e *Engine) saveWith(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription, audit subscription.AuditEntry,
	now time.Time, write func() error) error {
	if err := write(); err != nil {
		return err
	}
	if err := e.emitTransition(ctx, tx, before, after, []subscription.AuditEntry{audit}, now); err != nil {
		return err
	}
	return store.InsertSubscriptionAudit(ctx, tx, audit)
}

// ErrWebhookNotConfirmed is returned by HandlePaymentWebhook and HandleRefundWebhook for a
// notification the gateway does not confirm: the gateway has no such charge or refund, or
// its answer contradicts the body (another outcome, payment, amount). Nothing changed. A
// forged webhook gets this error; so does a genuine one about a state the gateway has moved
// past (a "pending" body is not a contradiction: the engine acts on the gateway's newer word).
var ErrWebhookNotConfirmed = errors.New("billing: webhook not confirmed by the gateway")

// HandlePaymentWebhook applies a charge webhook the host forwards. Webhooks are hints: the
// body only names the attempt (by provider payment ID or idempotency key); the engine asks
// the gateway (Lookup under the attempt's key) and acts on the gateway's answer alone, and
// only when it agrees with the body: a forged or mismatching body changes nothing and
// returns an error matching ErrWebhookNotConfirmed. A pending charge that succeeded
// activates or renews the subscription (TERMS 3.3), or, when the subscription no longer
// takes it, is booked as an unapplied payment and refunded; a decline acts as at the call.
// A duplicate webhook, or one that brings no news, is a no-op; one about no attempt is
// ErrUnknownPayment. The gateway call happens before any transaction, so this command
// cannot run inside one.
func (e *Engine) HandlePaymentWebhook(ctx context.Context, ev payment.WebhookEvent) (_ payment.Attempt, err error) {
	ctx, span := e.tel.start(ctx, "HandlePaymentWebhook")
	defer span.end(&err)
	if err := checkWebhook("HandlePaymentWebhook", ev, payment.KindCharge, ev.ProviderPaymentID); err != nil {
		return payment.Attempt{}, err
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return payment.Attempt{}, opError("HandlePaymentWebhook", ErrNoGateway)
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = e.clock.Now()
	}
	found, err := store.AttemptByReference(ctx, e.pool, ev.ProviderPaymentID, ev.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return payment.Attempt{}, opError("HandlePaymentWebhook", fmt.Errorf("%w: provider payment %q, key %q",
			ErrUnknownPayment, ev.ProviderPaymentID, ev.IdempotencyKey))
	}
	if err != nil {
		return payment.Attempt{}, opError("HandlePaymentWebhook", err)
	}
	res, lerr := gw.Lookup(ctx, lookupOf(found)) // the stored id, never the body's
	if err := confirmWebhook(ev, res, lerr, found.ProviderPaymentID); err != nil {
		e.logger.WarnContext(ctx, "billing: payment webhook not confirmed", "attempt", found.ID, "error", err)
		return payment.Attempt{}, opError("HandlePaymentWebhook", err)
	}
	truth := payment.WebhookEvent{Kind: payment.KindCharge, ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: found.IdempotencyKey,
		Outcome: res.Outcome, Amount: res.Amount, Currency: res.Currency, DeclineCode: res.DeclineCode,
		DeclineMessage: res.DeclineMessage, ReceivedAt: ev.ReceivedAt}
	var out payment.Attempt
	err = store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		// Lock in the charge protocol's order, subscription then attempt: the other order
		// deadlocks with a renewal job settling the same period.
		if _, err := store.LockSubscription(ctx, tx, found.SubscriptionID); err != nil {
			return err
		}
		a, err := store.LockAttempt(ctx, tx, found.ID)
		if err != nil {
			return err
		}
		next, changed, err := payment.ApplyWebhook(a.Attempt, truth)
		if err != nil {
			return err
		}
		if !changed {
			e.logger.InfoContext(ctx, "billing: webhook brought no news", "attempt", a.ID, "outcome", ev.Outcome)
			out = a.Attempt
			return nil
		}
		a.Attempt = next
		if res.PaymentMethod != "" && a.ReturnURL != "" {
			a.SavedMethod = res.PaymentMethod // a checkout on the provider's page saved it
		}
		out, err = e.settle(ctx, tx, a)
		if errors.Is(err, errRetryLater) {
			err = nil
		}
		return err
	})
	if err != nil {
		return payment.Attempt{}, opError("HandlePaymentWebhook", err)
	}
	return out, nil
}

// checkWebhook refuses a webhook event of another kind than kind, one that names nothing
// (neither providerID nor a key), or one whose outcome is not a state, with an *InputError.
func checkWebhook(op string, ev payment.WebhookEvent, kind payment.EventKind, providerID string) error {
	check := inputCheck{op: op}
	if ev.Kind != kind {
		check.add("Kind", fmt.Sprintf("%q: must be %q", ev.Kind, kind))
	}
	if providerID == "" && ev.IdempotencyKey == "" {
		check.add("IdempotencyKey", "required, or the provider's ID")
	}
	if !ev.Outcome.Valid() || ev.Outcome == payment.OutcomeUnknown {
		check.add("Outcome", fmt.Sprintf("%q: not a webhook outcome", ev.Outcome))
	}
	return check.err()
}

// confirmWebhook checks a charge webhook body against the gateway's answer about its charge
// (res, lerr from Lookup). known is the provider payment ID the engine already has.
func confirmWebhook(ev payment.WebhookEvent, res payment.ChargeResult, lerr error, known string) error {
	if lerr == nil {
		switch {
		case res.Outcome == payment.OutcomeUnknown || !res.Outcome.Valid():
			return fmt.Errorf("the gateway does not know the outcome yet (%q), try again later", res.Outcome)
		case known != "" && res.ProviderPaymentID != "" && known != res.ProviderPaymentID:
			return fmt.Errorf("%w: provider payment %q, the gateway has %q", ErrWebhookNotConfirmed, known, res.ProviderPaymentID)
		}
	}
	return confirmAnswer("payment", ev, ev.ProviderPaymentID, gatewayAnswer{res.ProviderPaymentID, res.Outcome, res.Amount, res.Currency}, lerr)
}

// gatewayAnswer is what the gateway says about the charge or refund a webhook names.
type gatewayAnswer struct {
	id       string
	outcome  payment.Outcome
	amount   int64
	currency string
}

// confirmAnswer checks a webhook body (ev, naming the provider's bodyID) against the gateway's
// answer got (lerr: the lookup's error) about the payment or refund (noun). A body the
// gateway contradicts is ErrWebhookNotConfirmed; a body saying "pending" about what the
// gateway has since settled is not a contradiction.
func confirmAnswer(noun string, ev payment.WebhookEvent, bodyID string, got gatewayAnswer, lerr error) error {
	switch {
	case errors.Is(lerr, payment.ErrNotFound):
		return fmt.Errorf("%w: the gateway has no %s under its key", ErrWebhookNotConfirmed, noun)
	case lerr != nil:
		return fmt.Errorf("could not ask the gateway, try again later: %w: %w", ErrUnavailable, lerr)
	case bodyID != "" && bodyID != got.id:
		return fmt.Errorf("%w: provider %s %q, the gateway has %q", ErrWebhookNotConfirmed, noun, bodyID, got.id)
	case ev.Outcome != got.outcome && ev.Outcome != payment.OutcomePending:
		return fmt.Errorf("%w: the body says %s, the gateway %s", ErrWebhookNotConfirmed, ev.Outcome, got.outcome)
	case ev.Amount != 0 && (ev.Amount != got.amount || ev.Currency != got.currency):
		return fmt.Errorf("%w: the body says %d %s, the gateway %d %s", ErrWebhookNotConfirmed, ev.Amount, ev.Currency, got.amount, got.currency)
	}
	return nil
}

// WithdrawConsent records that customerID withdrew consent to charges on their saved
// payment method token (law of 1 March 2026): from this instant nothing is charged on it,
// even by renewal jobs already queued; that customer's subscriptions charged from it turn
// auto-renew off and keep their paid periods to the end. A payment method belongs to one
// customer: another customer's token is not found (ErrNotFound) and nothing changes.
// actor is who reported it.
func (e *Engine) WithdrawConsent(ctx context.Context, customerID, token, actor string) (err error) {
	ctx, span := e.tel.start(ctx, "WithdrawConsent", attrHostTx.Bool(false))
	defer span.end(&err)
	return e.withdrawConsent(ctx, e.pool, customerID, token, actor)
}

// WithdrawConsentTx is WithdrawConsent in the host's transaction tx. Consent stands until
// tx commits: a renewal that checks it before then may still charge.
func (e *Engine) WithdrawConsentTx(ctx context.Context, tx pgx.Tx, customerID, token, actor string) (err error) {
	ctx, span := e.tel.start(ctx, "WithdrawConsent", attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("WithdrawConsentTx", tx); err != nil {
		return err
	}
	return e.withdrawConsent(ctx, tx, customerID, token, actor)
}

func (e *Engine) withdrawConsent(ctx context.Context, db dbtx, customerID, token, actor string) error {
	check := inputCheck{op: "WithdrawConsent"}
	if strings.TrimSpace(customerID) == "" {
		check.add("customerID", "required: whose payment method it is")
	}
	if token == "" {
		check.add("token", "required")
	}
	if actor == "" {
		check.add("actor", "required for the audit log")
	}
	if err := check.err(); err != nil {
		return err
	}
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		known, err := store.WithdrawConsent(ctx, tx, customerID, token, now)
		if err != nil {
			return err
		}
		ids, err := store.SubscriptionsWithMethod(ctx, tx, customerID, token)
		if err != nil {
			return err
		}
		if !known && len(ids) == 0 {
			return fmt.Errorf("payment method of customer %q: %w", customerID, store.ErrNotFound)
		}
		if err := e.emitConsentWithdrawn(ctx, tx, customerID, token, now); err != nil {
			return err
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
	return opError("WithdrawConsent", err)
}

// enqueueEach inserts job(id) for every id, one insert each: a failing insert is named with
// what and its id in the joined error and never stops the others (the sweep's rule).
func enqueueEach(ctx context.Context, client *jobClient, what string, ids []string, job func(id string) river.JobArgs) error {
	var errs []error
	for _, id := range ids {
		if _, err := client.Insert(ctx, job(id), nil); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", what, id, err))
		}
	}
	return errors.Join(errs...)
}

// SweepDueRenewals gives every subscription a way forward: it finds subscriptions whose
// period has ended without a renewal job waiting (lost, deleted, discarded after its last
// River attempt, completed while the subscription was suspended, or from before a
// migration) and enqueues one for each, and enqueues again the refund job of every
// unapplied payment not yet refunded and the retry job of every refund request still
// executing (each a no-op while one waits: after River gave up on a job, the next sweep
// starts another, so a refund the provider paid always reaches the books). A failing item is logged
// and left for the next sweep; it never stops the others. It returns how many renewal jobs
// it enqueued; the error joins the items that failed. With Config.ClaimRenewals a
// subscription whose period has ended without a renewal run waiting is one with no renew_at,
// and the sweep sets it to now (renewals_claims.go).
//
// Suspended subscriptions are not swept: a subscription suspended across its period end
// waits for a person. Resume enqueues its renewal (see Engine.Resume).
//
// Called by the engine's periodic River job (PeriodicJobs, every interval); an operator may
// also call it to give every subscription its way forward at once, without waiting for the
// next run (after restoring River's job table, or deleting jobs by hand). It needs UseRiver,
// and is safe to run at the same time as the periodic job.
//
// One call looks at most at 20 000 due subscriptions (20 statements of 1 000) for about 20 s
// at most, and stops after the statement whose finds make 1 000 renewals enqueued; the next
// call goes on where it stopped, and after the last due subscription starts again from the
// first. So a sweep during a backlog of renewals (every due subscription's job waiting, each
// costing an index probe) stays well inside River's job timeout, and the refund and event
// sweeps after it always run.
func (e *Engine) SweepDueRenewals(ctx context.Context) (_ int, err error) {
	ctx, span := e.tel.start(ctx, "SweepDueRenewals")
	defer span.end(&err)
	var errs []error
	n, err := e.sweepRenewals(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if err := e.sweepUnapplied(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.sweepExecutingRefunds(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.sweepEvents(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return n, opError("SweepDueRenewals", errors.Join(errs...))
	}
	return n, nil
}

// The renewal sweep's sizes (sweepRenewals): sweepChunk due subscriptions looked at per
// statement, at most sweepChunks statements per sweep, which stops after the one whose finds
// make sweepFound renewals enqueued.
// Tests set Engine.sweepChunk and Engine.sweepChunks instead (export_test.go).
const (
	sweepChunk  = 1000
	sweepChunks = 20
	sweepFound  = 1000
	// sweepWalkFor stops the walk sooner, between two chunks, on a slow database: a
	// backlog's probes cost 0.1–1.5 ms a row with renewals running (BENCHMARKS.md), and the
	// sweep must end well inside River's one-minute job timeout.
	sweepWalkFor = 20 * time.Second
)

// sweepRenewals is the renewal half of SweepDueRenewals: it walks the due subscriptions a
// chunk at a time (store.DueWithoutJob), from where the sweep before stopped
// (Engine.sweepCursor), and enqueues the renewal of each one without a job waiting as soon
// as its chunk is read. It stops after sweepChunks chunks, after the chunk that made
// sweepFound renewals, or once sweepWalkFor has passed, keeping the cursor for the next
// sweep; or at the last due subscription, resetting it. Before each chunk it empties River's
// GIN pending list (cleanArgsPendingList): each row costs a probe of that index, and
// renewals running meanwhile refill the list a probe reads whole. A failing enqueue is
// logged and counted in the error; it never stops the others, and the next sweep tries it
// first (Engine.sweepRetry, at most sweepFound), as it does the rest of a chunk whose
// enqueues the sweep's context cut short: the cursor has passed them. A stale one is
// harmless: the job is unique per period, and a renewal of a period no longer due does
// nothing.
func (e *Engine) sweepRenewals(ctx context.Context) (int, error) {
	e.sweepMu.Lock()
	cursor, retry := e.sweepCursor, e.sweepRetry
	e.sweepRetry = nil
	e.sweepMu.Unlock()
	now, started := e.clock.Now(), time.Now()
	var errs, failed []error
	var again []store.SubscriptionPeriod // enqueues that failed: the next sweep tries them first
	n := 0
	enqueue := func(due []store.SubscriptionPeriod) {
		for i, d := range due {
			if ctx.Err() != nil { // the sweep's time is up: the rest waits for the next one
				again = append(again, due[i:]...)
				return
			}
			err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
				return e.scheduleRenewal(ctx, tx, d.SubscriptionID, d.Period, 1, e.clock.Now())
			})
			if err != nil {
				e.logger.ErrorContext(ctx, "billing: sweep: could not enqueue a renewal", "subscription", d.SubscriptionID, "error", err)
				failed = append(failed, fmt.Errorf("subscription %s: %w", d.SubscriptionID, err))
				again = append(again, d)
				continue
			}
			n++
		}
	}
	enqueue(retry)
	cleanFailed := false
	for range cmp.Or(e.sweepChunks, sweepChunks) {
		if ctx.Err() != nil {
			break
		}
		var (
			due  []store.SubscriptionPeriod
			next store.DueCursor
			full bool
			err  error
		)
		if e.cfg.ClaimRenewals { // no renewal jobs to probe: a due subscription without renew_at
			due, next, full, err = store.DueWithoutClaim(ctx, e.pool, now, cursor, cmp.Or(e.sweepChunk, sweepChunk))
		} else {
			if err := e.cleanArgsPendingList(ctx); err != nil && !cleanFailed {
				cleanFailed = true // said once per sweep
				e.logger.WarnContext(ctx, "billing: sweep: could not clean the pending list of River's GIN index on args", "error", err)
			}
			due, next, full, err = store.DueWithoutJob(ctx, e.pool, e.riverSchema(), now, cursor, cmp.Or(e.sweepChunk, sweepChunk))
		}
		if err != nil {
			errs = append(errs, err)
			break // the cursor stays before this chunk
		}
		enqueue(due)
		if !full {
			next = store.DueCursor{} // the last due subscription: the next sweep starts again
		}
		cursor = next
		if !full || n >= sweepFound || time.Since(started) > sweepWalkFor {
			break
		}
	}
	e.sweepMu.Lock()
	e.sweepCursor = cursor
	e.sweepRetry = append(e.sweepRetry, again[:min(len(again), sweepFound)]...)
	e.sweepMu.Unlock()
	return n, errors.Join(append(errs, failed...)...)
}

// cleanArgsPendingList empties the pending list of River's GIN index on args before the
// renewal sweep probes it once per row (store.CleanArgsPendingList: a probe reads the whole
// list, which renewals keep full), for at most cleanPendingFor: while renewals insert, one
// call may chase the list they refill. A role that may not clean the index (not its owner)
// is told once in the log, and the sweeps probe the index as it is from then on (until
// the engine is made again). It returns any other error, for the sweep to log; it never
// fails the sweep.
func (e *Engine) cleanArgsPendingList(ctx context.Context) error {
	if e.pendingListRefused.Load() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, cleanPendingFor)
	defer cancel()
	_, err := store.CleanArgsPendingList(cctx, e.pool, e.riverSchema())
	if store.IsInsufficientPrivilege(err) {
		if !e.pendingListRefused.Swap(true) {
			e.logger.InfoContext(ctx, "billing: sweep: this role may not clean the pending list of River's GIN index on args "+
				"(it is not the index's owner); the sweeps probe it as it is, slower while renewals run", "error", err)
		}
		return nil
	}
	return err
}

// cleanPendingFor bounds one cleaning of River's GIN pending list (cleanArgsPendingList).
const cleanPendingFor = 5 * time.Second

// reconcileParkAfter is how many failed reconciliation runs park an attempt for a person.
const reconcileParkAfter = 10

// reconcileBackoffMax caps the wait between two looks at a failing attempt.
const reconcileBackoffMax = 6 * time.Hour

// canceledWatchFor is how long after its cancel an attempt that was sent is still looked
// up: a call that outlived chargeInFlightFor may land on it.
const canceledWatchFor = 24 * time.Hour

// ReconcilePayments looks up, at the gateway, every attempt whose outcome has been unknown,
// pending or created for over a minute, and every attempt canceled after it was sent (for a
// day), and settles it: a charge the gateway took is always recorded, applied to its period
// or booked as an unapplied payment and refunded. Each attempt is handled on its own: one
// that fails is looked at again with a growing backoff, counted, and after 10 failures
// parked for a person (AttemptListParked) — it never blocks the others. It returns how many
// attempts it looked at; errors of single attempts are logged and recorded, not returned.
//
// Called by the engine's periodic River job (PeriodicJobs, every interval); an operator may
// also call it to settle open charges at once, without waiting for the next run (after a
// provider's outage, say). Only attempts whose next look is due are looked at (a minute
// after the last look, longer after failures); a parked one is not looked at again. Safe to
// run from several processes at once.
func (e *Engine) ReconcilePayments(ctx context.Context) (_ int, err error) {
	ctx, span := e.tel.start(ctx, "ReconcilePayments")
	defer span.end(&err)
	now := e.clock.Now()
	open, err := store.OpenAttempts(ctx, e.pool, now.Add(-chargeInFlightFor), now, now.Add(-canceledWatchFor), 500)
	if err != nil {
		return 0, opError("ReconcilePayments", err)
	}
	for _, a := range open {
		err := e.reconcileAttempt(ctx, a)
		now := e.clock.Now()
		if err == nil || errors.Is(err, errRetryLater) && !errors.Is(err, errLookupFailed) {
			// Still open (or watched after a cancel): look again later, behind the others.
			if nerr := store.NoteCheck(ctx, e.pool, a.ID, false, "", now.Add(chargeInFlightFor), time.Time{}); nerr != nil {
				e.logger.ErrorContext(ctx, "billing: reconcile: could not note a check", "attempt", a.ID, "error", nerr)
			}
			continue
		}
		failures := a.CheckFailures + 1
		wait := min(chargeInFlightFor<<min(failures, 20), reconcileBackoffMax)
		var parked time.Time
		if failures >= reconcileParkAfter {
			parked = now
			e.logger.ErrorContext(ctx, "billing: reconcile: attempt parked for a person", "attempt", a.ID,
				"subscription", a.SubscriptionID, "failures", failures, "error", err)
		} else {
			e.logger.WarnContext(ctx, "billing: reconcile: attempt failed; will look again", "attempt", a.ID,
				"subscription", a.SubscriptionID, "failures", failures, "retry_in", wait, "error", err)
		}
		if nerr := e.noteCheck(ctx, a, true, err.Error(), now.Add(wait), parked); nerr != nil {
			e.logger.ErrorContext(ctx, "billing: reconcile: could not note a failure", "attempt", a.ID, "error", nerr)
		}
	}
	return len(open), nil
}

// reconcileAttempt settles one attempt of the reconciliation list. The period's latest
// attempt goes through the charge protocol (which may charge it again under its key when
// the gateway never saw it and the reason to charge still holds). An older one, or one
// canceled after it was sent, is only looked up: what the gateway took is recorded; what it
// never saw is canceled.
func (e *Engine) reconcileAttempt(ctx context.Context, a store.AttemptRow) error {
	if a.State != payment.StateCanceled {
		latest, err := store.LatestAttemptID(ctx, e.pool, a.SubscriptionID, a.PeriodNumber)
		if err != nil {
			return err
		}
		if latest == a.ID {
			_, err := e.chargePeriod(ctx, a.SubscriptionID, a.Purpose, a.PeriodNumber)
			return err
		}
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return ErrNoGateway
	}
	observed, changed, notFound, err := e.lookUp(ctx, gw, a)
	if err != nil {
		return err
	}
	if notFound && a.State == payment.StateCreated {
		return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			if _, err := store.LockSubscription(ctx, tx, a.SubscriptionID); err != nil {
				return err
			}
			cur, err := store.LockAttempt(ctx, tx, a.ID)
			if err != nil || cur.State != payment.StateCreated {
				return err
			}
			canceled, err := cur.Cancel(payment.ErrNotFound, e.clock.Now()) // the lookup just before said so
			if err != nil {
				return err
			}
			cur.Attempt = canceled
			return store.UpdateAttempt(ctx, tx, cur)
		})
	}
	if !changed {
		return nil
	}
	_, err = e.settleInTx(ctx, observed)
	return err
}

// PeriodicJobs returns the engine's periodic River jobs for the host's river.Config:
// the renewal sweeper and the reconciliation of unknown charge outcomes, every interval
// (0 means 10 minutes), the retention prune (PruneExpired) hourly, and the ledger's
// balance checkpoints (see Books.Balance) every 10 seconds; the last two also once when the
// client's scheduler starts; with Config.ClaimRenewals, the renewal claim job every
// RenewalClaimInterval and once at the start. All in Config.Queue at Config.Priority.
func (e *Engine) PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	periodic := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.SweepArgs{}, e.queueOpts()
		}, nil),
		river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.ReconcileArgs{}, e.queueOpts()
		}, nil),
		river.NewPeriodicJob(river.PeriodicInterval(retentionPruneInterval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.PruneExpiredArgs{}, e.queueOpts()
		}, &river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(ledgerCheckpointInterval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.LedgerCheckpointArgs{}, e.queueOpts()
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
	if e.cfg.ClaimRenewals {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(RenewalClaimInterval), func() (river.JobArgs, *river.InsertOpts) {
			return jobs.ClaimRenewalsArgs{}, e.queueOpts()
		}, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	return periodic
}

// AttemptList returns every charge attempt of a subscription, by period and number.
func (e *Engine) AttemptList(ctx context.Context, subscriptionID string) (_ []payment.Attempt, err error) {
	ctx, span := e.tel.start(ctx, "AttemptList", subAttr(subscriptionID))
	defer span.end(&err)
	check := inputCheck{op: "AttemptList"}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return nil, err
	}
	rows, err := store.Attempts(ctx, e.pool, subscriptionID)
	if err != nil {
		return nil, opError("AttemptList", err)
	}
	out := make([]payment.Attempt, len(rows))
	for i, r := range rows {
		out[i] = r.Attempt
	}
	return out, nil
}

// ParkedAttempt is a charge attempt the reconciliation job gave up on after repeated
// failures: a person must look at it at the provider (the gateway kept failing to answer,
// or answered something the engine refuses, like another amount).
type ParkedAttempt struct {
	// Attempt is the attempt as it stands.
	Attempt payment.Attempt
	// Failures is how many reconciliation runs failed on it.
	Failures int
	// LastError is the last failure.
	LastError string
	// ParkedAt is when it was parked.
	ParkedAt time.Time
}

// AttemptListParked returns the attempts parked for a person, oldest first.
func (e *Engine) AttemptListParked(ctx context.Context) (_ []ParkedAttempt, err error) {
	ctx, span := e.tel.start(ctx, "AttemptListParked")
	defer span.end(&err)
	rows, err := store.AttemptListParked(ctx, e.pool)
	if err != nil {
		return nil, opError("AttemptListParked", err)
	}
	out := make([]ParkedAttempt, len(rows))
	for i, r := range rows {
		out[i] = ParkedAttempt{Attempt: r.Attempt, Failures: r.CheckFailures, LastError: r.LastError, ParkedAt: r.ParkedAt}
	}
	return out, nil
}

// gatewayKey returns the gateway idempotency key "<prefix>_<32 hex digits>" of the thing
// parts name (a subscription, period and attempt number; a refund request and its try): the
// first 128 bits of HMAC-SHA256 under the installation's secret (billing_secrets, made by
// Migrate). So a key cannot be guessed or derived from anything a customer sees, and yet a
// retry that lost the row holding a key (a commit lost in a crash or a failover) makes the
// same key again, which the provider deduplicates: it never charges or refunds twice.
func (e *Engine) gatewayKey(ctx context.Context, q store.Querier, prefix string, parts ...string) (string, error) {
	e.keyMu.Lock()
	secret := e.keySecret
	e.keyMu.Unlock()
	if secret == nil {
		s, err := store.GatewayKeySecret(ctx, q)
		if err != nil {
			return "", fmt.Errorf("gateway key secret (run Migrate): %w", err)
		}
		e.keyMu.Lock()
		e.keySecret, secret = s, s
		e.keyMu.Unlock()
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(prefix))
	for _, p := range parts {
		mac.Write([]byte{0})
		mac.Write([]byte(p))
	}
	return prefix + "_" + hex.EncodeToString(mac.Sum(nil)[:16]), nil
}

// attemptKey is the gateway key of attempt number of period of subscription subID
// (payment.NewAttemptKey with gatewayKey's nonce).
func (e *Engine) attemptKey(ctx context.Context, q store.Querier, purpose payment.Purpose, subID string, period, number int) (string, error) {
	k, err := e.gatewayKey(ctx, q, "attempt", string(purpose), subID, strconv.Itoa(period), strconv.Itoa(number))
	if err != nil {
		return "", err
	}
	return payment.NewAttemptKey(purpose, strings.TrimPrefix(k, "attempt_"))
}

// randomKey returns a random key "<prefix>_<32 hex digits>" (a version-4 UUID: 122 bits from
// crypto/rand),
// for a key that is never sent to a gateway.
func randomKey(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(uuid.NewString(), "-", "")
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
