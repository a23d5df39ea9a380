package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// Errors of the subscription commands, shared with the subscription package so that
// errors.Is works with either name.
var (
	// ErrNoAccess: the subscription gives no access now (not paid, used up, expired,
	// suspended…). The error is a *NoAccessError carrying the reason.
	ErrNoAccess = subscription.ErrNoAccess
	// ErrLimitExceeded: the request would pass a hard limit of the period (TERMS 3.1). It
	// was refused whole; nothing was counted.
	ErrLimitExceeded = subscription.ErrLimitExceeded
	// ErrMeterUnknown: the meter has no limit in the period's terms.
	ErrMeterUnknown = subscription.ErrMeterUnknown
	// ErrTransitionNotAllowed: the subscription's status does not allow the command.
	ErrTransitionNotAllowed = subscription.ErrTransitionNotAllowed
	// ErrAmountMismatch: a reported payment's amount or currency is not the price of the
	// terms it pays for.
	ErrAmountMismatch = errors.New("billing: payment amount or currency differs from the price")
	// ErrPaymentMethodNotOwned: the payment-method token is bound to another customer. A
	// token belongs to the customer who first used it; nothing was written.
	ErrPaymentMethodNotOwned = errors.New("billing: payment method belongs to another customer")
)

// SubscribeParams starts a subscription at checkout.
type SubscribeParams struct {
	// CustomerID is the host application's opaque ID of the registered customer (TERMS
	// 1.3, 2.2.1). Never a name, e-mail or phone (TERMS 5.1). Required.
	CustomerID string
	// TariffCode is the tariff bought; its version in force now gives the terms shown
	// at checkout (TERMS 3.4). Required.
	TariffCode string
	// PaymentMethod is the gateway's opaque token of the saved card, when already known.
	// Never card data: a card number is refused. The first use binds a token to its
	// customer; another customer's token is refused with ErrPaymentMethodNotOwned.
	PaymentMethod string
	// Location is the IANA zone period ends and business days are counted in. Empty means
	// the engine's Config.Location.
	Location string
	// IdempotencyKey makes a retried checkout return the first subscription. Required.
	// Keys are per customer: the same key from two customers makes two subscriptions.
	IdempotencyKey string
}

// Subscribe creates a subscription for a customer on a tariff. It records the terms of
// the version in force now, as shown at checkout (TERMS 3.4), and waits for its first
// payment: no access before it succeeds (TERMS 3.3). A free tariff (price 0) needs no
// charge and is active at once. The same IdempotencyKey returns the first subscription;
// with a different request it is ErrIdempotencyConflict.
func (e *Engine) Subscribe(ctx context.Context, req SubscribeParams) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "Subscribe", attrHostTx.Bool(false))
	defer span.end(&err)
	return e.subscribe(ctx, e.pool, req)
}

// SubscribeTx is Subscribe in the host's transaction tx: the subscription exists once tx
// commits, and not at all if it rolls back (see the package's "Commands in the host's
// transaction").
func (e *Engine) SubscribeTx(ctx context.Context, tx pgx.Tx, req SubscribeParams) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "Subscribe", attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("SubscribeTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.subscribe(ctx, tx, req)
}

func (e *Engine) subscribe(ctx context.Context, db dbtx, req SubscribeParams) (subscription.Subscription, error) {
	check := inputCheck{op: "Subscribe"}
	if strings.TrimSpace(req.CustomerID) == "" {
		check.add("CustomerID", "required: the host's ID of the registered customer (TERMS 1.3)")
	}
	if req.TariffCode == "" {
		check.add("TariffCode", "required")
	}
	check.key("IdempotencyKey", req.IdempotencyKey)
	loc := e.loc
	if req.Location != "" {
		l, err := time.LoadLocation(req.Location)
		if err != nil {
			check.add("Location", fmt.Sprintf("unknown time zone %q", req.Location))
		}
		loc = l
	}
	if err := check.err(); err != nil {
		return subscription.Subscription{}, err
	}
	hash := requestHash(req.CustomerID, req.TariffCode, req.PaymentMethod, req.Location)
	var out subscription.Subscription
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		// Keys are scoped per customer: two customers' checkouts never collide on a key.
		id, err := claimKeyForID(ctx, tx, "subscribe:"+req.CustomerID, req.IdempotencyKey, hash, now)
		if err != nil || id != "" {
			if err == nil {
				out, err = store.GetSubscription(ctx, tx, id)
			}
			return err
		}
		t, err := store.GetTariff(ctx, tx, req.TariffCode)
		if err != nil {
			return err
		}
		versions, err := store.Versions(ctx, tx, req.TariffCode)
		if err != nil {
			return err
		}
		terms, err := tariff.TermsForPurchase(t, versions, now)
		if err != nil {
			return err
		}
		sub, audit, err := subscription.New(subscription.NewParams{
			ID: newID(), CustomerID: req.CustomerID, Checkout: terms, PaymentMethod: req.PaymentMethod, Location: loc.String(),
		}, now)
		if err != nil {
			return err
		}
		audits := []subscription.AuditEntry{audit}
		if terms.IsFree() {
			end := terms.Period.End(now, 1, loc)
			var a subscription.AuditEntry
			if sub, a, err = subscription.Activate(sub, subscription.ActivateParams{Start: now, End: end}, now); err != nil {
				return err
			}
			audits = append(audits, a)
		}
		if err := bindPaymentMethod(ctx, tx, sub.PaymentMethod, sub.CustomerID); err != nil {
			return err
		}
		if err := store.InsertSubscription(ctx, tx, sub, now); err != nil {
			return err
		}
		if err := e.emitTransition(ctx, tx, subscription.Subscription{}, sub, audits, now); err != nil {
			return err
		}
		for _, a := range audits {
			if err := store.InsertSubscriptionAudit(ctx, tx, a); err != nil {
				return err
			}
		}
		if sub.Current != nil {
			// A free tariff is active at once: its renewal job goes in with it, so that it
			// renews (or ends) at the period end. Without River (a host that only meters
			// usage) nothing renews.
			if _, rerr := e.riverClient(); rerr == nil {
				if err := e.scheduleRenewal(ctx, tx, sub.ID, sub.Current.Number, 1, sub.Current.End); err != nil {
					return err
				}
			}
		}
		out = sub
		return store.SaveResult(ctx, tx, "subscribe:"+req.CustomerID, req.IdempotencyKey, sub.ID)
	})
	if err != nil {
		return subscription.Subscription{}, opError("Subscribe", err)
	}
	return out, nil
}

// Payment reports a successful charge to the engine.
type Payment struct {
	// ProviderPaymentID is the gateway's ID of the charge.
	ProviderPaymentID string
	// Amount is what was charged; with Currency it must equal the price of the terms paid
	// for, else ErrAmountMismatch and nothing changes.
	Amount decimal.Decimal
	// Currency is the ISO 4217 code of Amount.
	Currency string
	// PaymentMethod is the token of the card the charge saved, if any.
	PaymentMethod string
}

// ConfirmFirstPayment records that the first charge of a pending subscription succeeded
// when the host charged it itself (TERMS 3.3): it starts period 1 now, under the checkout
// terms, and grants access. The period ends one tariff period later in the subscription's
// location. The payment method, if given, is saved with the consent to recurring charges
// (3.4). When UseRiver was called, the payment is stored as the period's succeeded
// charge and posted to the ledger, and the revenue recognition and renewal jobs are
// scheduled at the period end: the period can then be refunded through the engine
// (RequestRefund, ExecuteRefund) if the host charged through the provider of the
// configured Gateway. Without River (a host that only meters usage) none of this happens.
// Hosts that let the engine charge use ChargeFirstPayment instead.
func (e *Engine) ConfirmFirstPayment(ctx context.Context, subscriptionID string, p Payment) (subscription.Subscription, error) {
	return e.confirmFirstPayment(ctx, e.pool, subscriptionID, p)
}

// ConfirmFirstPaymentTx is ConfirmFirstPayment in the host's transaction tx, e.g. the one
// that records the host's own order as paid.
func (e *Engine) ConfirmFirstPaymentTx(ctx context.Context, tx pgx.Tx, subscriptionID string, p Payment) (subscription.Subscription, error) {
	if err := hostTx("ConfirmFirstPaymentTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.confirmFirstPayment(ctx, tx, subscriptionID, p)
}

func (e *Engine) confirmFirstPayment(ctx context.Context, db dbtx, subscriptionID string, p Payment) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "ConfirmFirstPayment", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "ConfirmFirstPayment"}
	check.id("subscriptionID", subscriptionID)
	if p.ProviderPaymentID == "" {
		check.add("ProviderPaymentID", "required")
	}
	if err := check.err(); err != nil {
		return subscription.Subscription{}, err
	}
	return e.change(ctx, db, "ConfirmFirstPayment", subscriptionID, func(tx pgx.Tx, sub subscription.Subscription, now time.Time) (subscription.Subscription, []subscription.AuditEntry, error) {
		if err := checkAmount(sub.Checkout, p.Amount, p.Currency); err != nil {
			return sub, nil, err
		}
		loc, err := time.LoadLocation(sub.LocationName())
		if err != nil {
			return sub, nil, err
		}
		next, a, err := subscription.Activate(sub, subscription.ActivateParams{
			Start: now, End: sub.Checkout.Period.End(now, 1, loc), PaymentMethod: p.PaymentMethod,
		}, now)
		if err != nil {
			return sub, nil, err
		}
		if next.PaymentMethod != "" {
			if err := bindPaymentMethod(ctx, tx, next.PaymentMethod, next.CustomerID); err != nil {
				return sub, nil, err
			}
			if err := store.SaveConsent(ctx, tx, next.PaymentMethod, next.CustomerID, now); err != nil {
				return sub, nil, err
			}
		}
		if _, rerr := e.riverClient(); rerr == nil {
			amount, cur, err := minorOf(next.Checkout)
			if err != nil {
				return sub, nil, err
			}
			if amount > 0 {
				if err := recordHostCharge(ctx, tx, next, p.ProviderPaymentID, amount, cur.Code, now); err != nil {
					return sub, nil, err
				}
			}
			if err := e.postPeriodCharge(ctx, tx, next, "payment:"+p.ProviderPaymentID, p.ProviderPaymentID, amount, cur.Code,
				renewalJob(next.ID, 1, 1, next.Current.End)); err != nil {
				return sub, nil, err
			}
		}
		return next, []subscription.AuditEntry{a}, nil
	})
}

// recordHostCharge stores the charge the host made itself (ConfirmFirstPayment) as the
// succeeded attempt of period 1, as if the engine had made it: refunds find a period's
// payment there (RequestRefund, ExecuteRefund), and the unique index
// billing_payment_attempts_one_success keeps a second applied success for the period
// impossible. When the payment is the engine's own open checkout attempt (the host confirmed
// the charge the engine made), that attempt is marked succeeded instead, so one provider
// payment is never booked twice; another subscription's payment is refused with
// payment.ErrPaymentMismatch. Otherwise its number follows any attempt the engine made for
// the period before, and its key is never sent to a gateway.
func recordHostCharge(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, providerPaymentID string,
	amount int64, currency string, now time.Time) error {
	paid := payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: providerPaymentID, Amount: amount, Currency: currency}
	own, err := store.AttemptByReference(ctx, tx, providerPaymentID, "")
	switch {
	case err == nil && own.SubscriptionID != sub.ID:
		return fmt.Errorf("%w: provider payment %s is a charge of another subscription", payment.ErrPaymentMismatch, providerPaymentID)
	case err == nil:
		cur, err := store.LockAttempt(ctx, tx, own.ID)
		if err != nil {
			return err
		}
		if cur.Attempt, _, err = cur.RecordLookup(paid, nil, now); err != nil {
			return err
		}
		return store.UpdateAttempt(ctx, tx, cur)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	number := 1
	latest, err := store.LatestAttempt(ctx, tx, sub.ID, 1)
	switch {
	case err == nil:
		number = latest.Number + 1
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	a, err := payment.NewAttempt(payment.AttemptSpec{
		ID: newID(), SubscriptionID: sub.ID, Purpose: payment.PurposeCheckout, PeriodNumber: 1, Number: number,
		Amount: amount, Currency: currency, DueAt: now, IdempotencyKey: randomKey("checkout"), // never sent
	}, now)
	if err != nil {
		return err
	}
	a, _, err = a.RecordCharge(paid, nil, now)
	if err != nil {
		return err
	}
	return store.InsertAttempt(ctx, tx, store.AttemptRow{Attempt: a, Terms: sub.Checkout})
}

// FailFirstPayment records that the first charge failed or was abandoned: the pending
// subscription ends without access ever granted. A charge attempt still open (its outcome
// unknown or pending) is never sent again; if the provider took the money after all, the
// engine books it as an unapplied payment and refunds it.
func (e *Engine) FailFirstPayment(ctx context.Context, subscriptionID, reason string) (subscription.Subscription, error) {
	return e.failFirstPayment(ctx, e.pool, subscriptionID, reason)
}

// FailFirstPaymentTx is FailFirstPayment in the host's transaction tx.
func (e *Engine) FailFirstPaymentTx(ctx context.Context, tx pgx.Tx, subscriptionID, reason string) (subscription.Subscription, error) {
	if err := hostTx("FailFirstPaymentTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.failFirstPayment(ctx, tx, subscriptionID, reason)
}

func (e *Engine) failFirstPayment(ctx context.Context, db dbtx, subscriptionID, reason string) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "FailFirstPayment", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	return e.simpleChange(ctx, db, "FailFirstPayment", subscriptionID, func(sub subscription.Subscription, now time.Time) (subscription.Subscription, subscription.AuditEntry, error) {
		return subscription.FirstPaymentFailed(sub, reason, now)
	})
}

// SetAutoRenew turns auto-renewal on or off (TERMS 3.6). Off: no further charge; the
// paid period runs to its end and the subscription then ends. actor is who asked (the
// customer's or an operator's ID), for the audit log.
func (e *Engine) SetAutoRenew(ctx context.Context, subscriptionID string, on bool, actor string) (subscription.Subscription, error) {
	return e.setAutoRenew(ctx, e.pool, subscriptionID, on, actor)
}

// SetAutoRenewTx is SetAutoRenew in the host's transaction tx.
func (e *Engine) SetAutoRenewTx(ctx context.Context, tx pgx.Tx, subscriptionID string, on bool, actor string) (subscription.Subscription, error) {
	if err := hostTx("SetAutoRenewTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.setAutoRenew(ctx, tx, subscriptionID, on, actor)
}

func (e *Engine) setAutoRenew(ctx context.Context, db dbtx, subscriptionID string, on bool, actor string) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "SetAutoRenew", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	return e.simpleChange(ctx, db, "SetAutoRenew", subscriptionID, func(sub subscription.Subscription, now time.Time) (subscription.Subscription, subscription.AuditEntry, error) {
		return subscription.SetAutoRenew(sub, on, actor, now)
	})
}

// Suspend takes access away by an operator's decision (TERMS 2.1.2), with who and why
// in the audit log. Resume gives it back.
func (e *Engine) Suspend(ctx context.Context, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	return e.suspend(ctx, e.pool, subscriptionID, by)
}

// SuspendTx is Suspend in the host's transaction tx.
func (e *Engine) SuspendTx(ctx context.Context, tx pgx.Tx, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	if err := hostTx("SuspendTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.suspend(ctx, tx, subscriptionID, by)
}

func (e *Engine) suspend(ctx context.Context, db dbtx, subscriptionID string, by subscription.AdminAction) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "Suspend", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	return e.simpleChange(ctx, db, "Suspend", subscriptionID, func(sub subscription.Subscription, now time.Time) (subscription.Subscription, subscription.AuditEntry, error) {
		return subscription.Suspend(sub, by, now)
	})
}

// Resume ends a suspension: the subscription returns to the status it was suspended in.
//
// A suspension across the period end: while suspended nothing is charged and the
// subscription waits for a person (the renewal job does nothing, the sweeper skips it).
// Resume after the end enqueues the renewal at once, in the same transaction: with
// auto-renew on it charges a new period, which starts when it is paid (LateRenewalGrace:
// no days already past are sold); with auto-renew off it ends.
func (e *Engine) Resume(ctx context.Context, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	return e.resume(ctx, e.pool, subscriptionID, by)
}

// ResumeTx is Resume in the host's transaction tx; the renewal it may enqueue runs once tx
// commits.
func (e *Engine) ResumeTx(ctx context.Context, tx pgx.Tx, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	if err := hostTx("ResumeTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.resume(ctx, tx, subscriptionID, by)
}

func (e *Engine) resume(ctx context.Context, db dbtx, subscriptionID string, by subscription.AdminAction) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "Resume", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "Resume"}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return subscription.Subscription{}, err
	}
	return e.change(ctx, db, "Resume", subscriptionID, func(tx pgx.Tx, sub subscription.Subscription, now time.Time) (subscription.Subscription, []subscription.AuditEntry, error) {
		next, a, err := subscription.Resume(sub, by, now)
		if err != nil {
			return sub, nil, err
		}
		if next.Current != nil && next.Status.Allows(subscription.ActionRenew) {
			// Due now when the period has ended; else at its end: the run at an end the
			// period had before an operator extended it may have found the subscription
			// suspended and done nothing, leaving nothing to run at the new end. (A host
			// without River, which only meters usage, renews nothing: not due, it needs none.)
			_, noRiver := e.riverClient()
			if due := !now.Before(next.Current.End); due || noRiver == nil || e.cfg.ClaimRenewals {
				if err := e.scheduleRenewal(ctx, tx, next.ID, next.Current.Number, 1, maxTime(now, next.Current.End)); err != nil {
					return sub, nil, err
				}
			}
		}
		return next, []subscription.AuditEntry{a}, nil
	})
}

// Terminate ends a subscription for good by an operator's decision (TERMS 2.1.2): access
// ends now and nothing renews.
func (e *Engine) Terminate(ctx context.Context, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	return e.terminate(ctx, e.pool, subscriptionID, by)
}

// TerminateTx is Terminate in the host's transaction tx.
func (e *Engine) TerminateTx(ctx context.Context, tx pgx.Tx, subscriptionID string, by subscription.AdminAction) (subscription.Subscription, error) {
	if err := hostTx("TerminateTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.terminate(ctx, tx, subscriptionID, by)
}

func (e *Engine) terminate(ctx context.Context, db dbtx, subscriptionID string, by subscription.AdminAction) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "Terminate", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	return e.simpleChange(ctx, db, "Terminate", subscriptionID, func(sub subscription.Subscription, now time.Time) (subscription.Subscription, subscription.AuditEntry, error) {
		return subscription.Terminate(sub, by, now)
	})
}

// ExtendPeriod moves the current period's end later by an operator's decision, e.g. to
// make up for maintenance (TERMS 2.1.4, 2.1.5: never automatic), audited with who and why.
func (e *Engine) ExtendPeriod(ctx context.Context, subscriptionID string, newEnd time.Time, by subscription.AdminAction) (subscription.Subscription, error) {
	return e.extendPeriod(ctx, e.pool, subscriptionID, newEnd, by)
}

// ExtendPeriodTx is ExtendPeriod in the host's transaction tx.
func (e *Engine) ExtendPeriodTx(ctx context.Context, tx pgx.Tx, subscriptionID string, newEnd time.Time, by subscription.AdminAction) (subscription.Subscription, error) {
	if err := hostTx("ExtendPeriodTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.extendPeriod(ctx, tx, subscriptionID, newEnd, by)
}

func (e *Engine) extendPeriod(ctx context.Context, db dbtx, subscriptionID string, newEnd time.Time, by subscription.AdminAction) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "ExtendPeriod", subAttr(subscriptionID), hostTxAttr(db))
	defer span.end(&err)
	return e.simpleChange(ctx, db, "ExtendPeriod", subscriptionID, func(sub subscription.Subscription, now time.Time) (subscription.Subscription, subscription.AuditEntry, error) {
		return subscription.ExtendPeriod(sub, by, newEnd, now)
	})
}

// SubscriptionGet returns a subscription with its current period and usage.
func (e *Engine) SubscriptionGet(ctx context.Context, subscriptionID string) (subscription.Subscription, error) {
	return e.get(ctx, e.pool, subscriptionID)
}

// SubscriptionGetTx is Get in the host's transaction tx: it sees what tx wrote and has not committed.
func (e *Engine) SubscriptionGetTx(ctx context.Context, tx pgx.Tx, subscriptionID string) (subscription.Subscription, error) {
	if err := hostTx("SubscriptionGetTx", tx); err != nil {
		return subscription.Subscription{}, err
	}
	return e.get(ctx, tx, subscriptionID)
}

func (e *Engine) get(ctx context.Context, q store.Querier, subscriptionID string) (_ subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "SubscriptionGet", subAttr(subscriptionID), hostTxAttr(q))
	defer span.end(&err)
	check := inputCheck{op: "SubscriptionGet"}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return subscription.Subscription{}, err
	}
	sub, err := store.GetSubscription(ctx, q, subscriptionID)
	return sub, opError("SubscriptionGet "+subscriptionID, err)
}

// SubscriptionListByCustomer returns a customer's subscriptions, oldest first.
func (e *Engine) SubscriptionListByCustomer(ctx context.Context, customerID string) (_ []subscription.Subscription, err error) {
	ctx, span := e.tel.start(ctx, "SubscriptionListByCustomer")
	defer span.end(&err)
	subs, err := store.ListSubscriptions(ctx, e.pool, customerID)
	return subs, opError("SubscriptionListByCustomer", err)
}

// Access says whether the subscription gives access now, and why not when it does not:
// access ends at the period end or when a hard limit is used up, whichever comes first
// (TERMS 3.1), and never starts before payment (TERMS 3.3).
func (e *Engine) Access(ctx context.Context, subscriptionID string) (_ subscription.Decision, err error) {
	ctx, span := e.tel.start(ctx, "Access", subAttr(subscriptionID))
	defer span.end(&err)
	sub, err := e.SubscriptionGet(ctx, subscriptionID)
	if err != nil {
		return subscription.Decision{}, err
	}
	return subscription.Access(sub, e.clock.Now()), nil
}

// transitionFunc is a command's decision on a locked subscription: the new state and
// the audit entries to write, run inside the command's transaction (tx for its extra
// effects: ledger entries, jobs).
type transitionFunc func(tx pgx.Tx, sub subscription.Subscription, now time.Time) (subscription.Subscription, []subscription.AuditEntry, error)

// change runs fn on subscription id in one transaction: lock, decide, save, audit.
func (e *Engine) change(ctx context.Context, db dbtx, op, id string, fn transitionFunc) (subscription.Subscription, error) {
	var out subscription.Subscription
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		before, err := store.LockSubscription(ctx, tx, id)
		if err != nil {
			return err
		}
		after, audits, err := fn(tx, before, now)
		if err != nil {
			return err
		}
		if err := store.SaveSubscription(ctx, tx, before, after, now); err != nil {
			return err
		}
		if err := e.emitTransition(ctx, tx, before, after, audits, now); err != nil {
			return err
		}
		for _, a := range audits {
			if err := store.InsertSubscriptionAudit(ctx, tx, a); err != nil {
				return err
			}
		}
		out = after
		return nil
	})
	if err != nil {
		return subscription.Subscription{}, opError(op, err)
	}
	return out, nil
}

// simpleChange is change for a pure transition with one audit entry and no other effect.
func (e *Engine) simpleChange(ctx context.Context, db dbtx, op, id string,
	fn func(subscription.Subscription, time.Time) (subscription.Subscription, subscription.AuditEntry, error)) (subscription.Subscription, error) {
	check := inputCheck{op: op}
	check.id("subscriptionID", id)
	if err := check.err(); err != nil {
		return subscription.Subscription{}, err
	}
	return e.change(ctx, db, op, id, func(_ pgx.Tx, sub subscription.Subscription, now time.Time) (subscription.Subscription, []subscription.AuditEntry, error) {
		next, a, err := fn(sub, now)
		return next, []subscription.AuditEntry{a}, err
	})
}

// checkAmount returns ErrAmountMismatch unless amount and currency are terms' price.
func checkAmount(terms tariff.Terms, amount decimal.Decimal, currency string) error {
	if currency != terms.Currency || !amount.Equal(terms.Price) {
		return fmt.Errorf("%w: got %s %s, the price is %s %s", ErrAmountMismatch, amount, currency, terms.Price, terms.Currency)
	}
	return nil
}

// minorOf returns terms' price in minor units.
func minorOf(terms tariff.Terms) (int64, money.Currency, error) {
	cur, err := money.Lookup(terms.Currency)
	if err != nil {
		return 0, cur, err
	}
	m, err := cur.ToMinor(terms.Price)
	return m, cur, err
}

// bindPaymentMethod binds token to customerID when nobody has it yet, and refuses another
// customer's token with ErrPaymentMethodNotOwned. An empty token is a no-op.
func bindPaymentMethod(ctx context.Context, tx pgx.Tx, token, customerID string) error {
	if token == "" {
		return nil
	}
	owner, err := store.BindPaymentMethod(ctx, tx, token, customerID)
	if err != nil {
		return err
	}
	if owner != customerID {
		return fmt.Errorf("%w: the token is bound to another customer", ErrPaymentMethodNotOwned)
	}
	return nil
}

// newID returns a new UUIDv7 in text form.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (c *inputCheck) id(field, id string) {
	if _, err := uuid.Parse(id); err != nil {
		c.add(field, fmt.Sprintf("%q is not a UUID", id))
	}
}
