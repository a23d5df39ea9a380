package billing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// Errors of the refund commands. Test them with errors.Is.
var (
	// ErrNotEligible: the request does not qualify for the full refund of TERMS 3.7 and
	// ExecuteRefund was called without an operator override. Nothing was written.
	ErrNotEligible = refund.ErrNotEligible
	// ErrReceivedInFuture: a refund request's ReceivedAt is later than the engine's clock.
	// Nothing was written.
	ErrReceivedInFuture = refund.ErrReceivedInFuture
	// ErrPeriodNotPaid: the period named has no succeeded charge recorded (the
	// subscription is pending, the period does not exist, or it was free). Nothing was
	// written.
	ErrPeriodNotPaid = errors.New("billing: period has no succeeded charge to refund")
	// ErrAlreadyRefunded: the period's payment is refunded or being refunded. Nothing
	// was written.
	ErrAlreadyRefunded = errors.New("billing: period already refunded")
	// ErrRefundAmount: ExecuteRefundOpts.Amount is not positive, is finer than the currency's
	// minor unit, or is above what was paid for the period. Nothing was written.
	ErrRefundAmount = errors.New("billing: refund amount not allowed")
	// ErrRefundTransition: the request's state does not allow the command (verifying an
	// executed request, executing an unverified one). It is also refund.ErrTransitionNotAllowed.
	ErrRefundTransition = refund.ErrTransitionNotAllowed
)

// refundRecheckAfter is when the retry job first looks at an executed refund whose
// answer was not recorded (a crash, a timeout).
const refundRecheckAfter = 10 * time.Minute

// escalateBefore is how long before the payout deadline a request still open is escalated.
const escalateBefore = 48 * time.Hour

// escalationAt is when a request with deadline is escalated if still open: escalateBefore
// ahead of it, or now when that has passed.
func escalationAt(deadline, now time.Time) time.Time {
	if at := deadline.Add(-escalateBefore); at.After(now) {
		return at
	}
	return now
}

// RefundRequestParams records a customer's request for a refund (TERMS 3.7, 3.8).
type RefundRequestParams struct {
	// SubscriptionID is the subscription whose period is to be refunded. Required.
	SubscriptionID string
	// Period is the number of the paid period; 0 means the current one.
	Period int
	// ReceivedAt is when the request reached the operator (the e-mail's arrival, not the
	// moment someone read it). Eligibility and the payout deadline are computed at it.
	// Required; later than the engine's clock is ErrReceivedInFuture.
	ReceivedAt time.Time
	// Channel is how it came: refund.ChannelEmail, ChannelSupport or ChannelProfile.
	Channel refund.Channel
	// Text is the customer's free text, kept as is.
	Text string
	// IdempotencyKey makes a retried call return the first request. Required.
	IdempotencyKey string
}

// RefundRequest is a recorded refund request with the decision it was recorded with.
type RefundRequest struct {
	// ID is the request's ID.
	ID string
	// SubscriptionID is the subscription whose period is to be refunded.
	SubscriptionID string
	// Period is the number of the period to refund (the one current at ReceivedAt).
	Period int
	// ReceivedAt is when the request reached the operator (TERMS 3.7 counts from it).
	ReceivedAt time.Time
	// Channel is how it arrived (e-mail, support chat, …).
	Channel refund.Channel
	// Text is the customer's words, as received.
	Text string
	// State is where the request stands (received → verified → executing → refunded).
	State refund.State
	// Eligible is the 3.7 decision at ReceivedAt.
	Eligible bool
	// Failed lists the 3.7 conditions that failed (empty when Eligible).
	Failed []refund.Reason
	// Explanation is the decision in words (refund.Decision.String()).
	Explanation string
	// WindowEndsAt is the end of the 3.7 window of the period.
	WindowEndsAt time.Time
	// PayoutDeadline is the 3.8 deadline: the money must be back before this instant.
	PayoutDeadline time.Time
	// ProviderPaymentID is the succeeded charge refunded.
	ProviderPaymentID string
	// AmountMinor is what is refunded, in minor units: the whole charge, until
	// ExecuteRefund sets a partial Amount.
	AmountMinor int64
	// Currency is the ISO 4217 code of AmountMinor.
	Currency string
	// Attempt counts the executions sent to the gateway: 1 for the first, one more for
	// each ExecuteRefund after a refusal (a refused refund moved no money).
	Attempt int
	// GatewayKey is the refund's idempotency key at the gateway, fixed before the call
	// and reused by every retry of the attempt: "refund:<subscription>:<period>:<attempt>".
	// Empty before the first execution.
	GatewayKey string
	// ProviderRefundID is the provider's ID of the refund, once it answered.
	ProviderRefundID string
	// VerifiedBy is the operator who verified the request; empty before.
	VerifiedBy string
	// VerifiedAt is when it was verified; zero before.
	VerifiedAt time.Time
	// ExecutedBy is the operator who executed the refund; empty before.
	ExecutedBy string
	// OverrideReason is set when an operator executed an ineligible request.
	OverrideReason string
	// DeclineCode is the provider's reason code when it refused the refund.
	DeclineCode string
	// DeclineMessage is the provider's words for a refusal.
	DeclineMessage string
	// CreatedAt is when the request was recorded.
	CreatedAt time.Time
	// SettledAt is when the refund was paid, or the request rejected or failed; zero before.
	SettledAt time.Time
	// EscalatedAt is when the escalation job reported the request near its payout
	// deadline; zero before.
	EscalatedAt time.Time
}

// ExecuteRefundOpts says who executes a refund and whether it overrides the 3.7 decision.
type ExecuteRefundOpts struct {
	// Actor is the operator's ID. Required.
	Actor string
	// Override executes a refund of an ineligible request (a person's decision, e.g. under
	// consumer law art. 32).
	Override bool
	// OverrideReason says why; required with Override, it goes to the audit log.
	OverrideReason string
	// Amount is how much to pay back, in the period's currency. Zero means everything
	// paid for the period (the full refund of TERMS 3.7). Less is a partial refund under
	// consumer law art. 32 (see SuggestProRata): a person's decision, so it needs Override
	// with a reason even for an eligible request. Above what was paid, negative, or finer
	// than the currency's minor unit: ErrRefundAmount, nothing written.
	Amount decimal.Decimal
}

// RefundRequestListParams selects refund requests for RefundRequestList.
type RefundRequestListParams struct {
	// State keeps requests in this state; empty keeps all.
	State refund.State
	// Open keeps only requests whose money is still owed or undecided: received,
	// verified, executing or failed.
	Open bool
	// DueBefore keeps requests whose payout deadline is before it; zero keeps all. With
	// Open and the clock's now (plus a margin) it lists requests past or near their deadline.
	DueBefore time.Time
}

// RefundEscalation is what Config.OnRefundEscalation receives: a request still unpaid
// near its payout deadline.
type RefundEscalation struct {
	// RequestID is the request still unpaid.
	RequestID string
	// SubscriptionID is its subscription.
	SubscriptionID string
	// State is where the request stands.
	State refund.State
	// ReceivedAt is when the request was received.
	ReceivedAt time.Time
	// PayoutDeadline is the TERMS 3.8 deadline it is near.
	PayoutDeadline time.Time
	// At is the engine clock's instant of the escalation.
	At time.Time
}

// RequestRefund records a refund request and decides, at its ReceivedAt, whether it
// qualifies for the full refund of TERMS 3.7 (window of 5 business days after the grant on
// Config.Calendar in the subscription's location, nothing used, no open reservation), and
// its payout deadline (TERMS 3.8). An ineligible request is still recorded: a person may
// refund it with an override. It schedules the escalation job (needs UseRiver).
func (e *Engine) RequestRefund(ctx context.Context, in RefundRequestParams) (RefundRequest, error) {
	return e.requestRefund(ctx, e.pool, in)
}

// RequestRefundTx is RequestRefund in the host's transaction tx, e.g. the one that stores
// the customer's e-mail: the request and its escalation job exist once tx commits.
func (e *Engine) RequestRefundTx(ctx context.Context, tx pgx.Tx, in RefundRequestParams) (RefundRequest, error) {
	if err := hostTx("RequestRefundTx", tx); err != nil {
		return RefundRequest{}, err
	}
	return e.requestRefund(ctx, tx, in)
}

func (e *Engine) requestRefund(ctx context.Context, db dbtx, in RefundRequestParams) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "RequestRefund", subAttr(in.SubscriptionID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "RequestRefund"}
	check.id("SubscriptionID", in.SubscriptionID)
	if in.Period < 0 {
		check.add("Period", "must be 0 (the current period) or a period number")
	}
	check.received(in.ReceivedAt, in.Channel)
	check.key("IdempotencyKey", in.IdempotencyKey)
	if err := check.err(); err != nil {
		return RefundRequest{}, err
	}
	if err := refund.CheckReceivedAt(in.ReceivedAt, e.clock.Now()); err != nil {
		return RefundRequest{}, opError("RequestRefund", err)
	}
	client, err := e.riverClient()
	if err != nil {
		return RefundRequest{}, opError("RequestRefund", err)
	}
	hash := requestHash(in.SubscriptionID, fmt.Sprint(in.Period), in.ReceivedAt.UTC().Format(time.RFC3339Nano), string(in.Channel), in.Text)
	var out store.RefundRow
	err = store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		id, err := claimKeyForID(ctx, tx, "refund_request", in.IdempotencyKey, hash, now)
		if err != nil || id != "" {
			if err == nil {
				out, err = store.GetRefund(ctx, tx, id)
			}
			return err
		}
		sub, err := store.LockSubscription(ctx, tx, in.SubscriptionID)
		if err != nil {
			return err
		}
		row, err := e.decideRefund(ctx, tx, sub, in)
		if err != nil {
			return err
		}
		row.CreatedAt = now
		if err := store.InsertRefund(ctx, tx, row); err != nil {
			return err
		}
		if err := e.emitRefund(ctx, tx, EventRefundRequested, row, now); err != nil {
			return err
		}
		if err := store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: "customer:" + sub.CustomerID,
			Action: "refund.requested", Subject: "subscription:" + sub.ID, Reason: row.Decision,
			Detail: map[string]any{"request": row.ID, "period": row.Period, "channel": row.Channel, "eligible": row.Eligible,
				"received_at": row.ReceivedAt, "payout_deadline": row.PayoutDeadline}}); err != nil {
			return err
		}
		at := escalationAt(row.PayoutDeadline, now)
		if _, err := client.InsertTx(ctx, tx, jobs.EscalateRefundArgs{RequestID: row.ID}, &riverInsertOpts{ScheduledAt: at}); err != nil {
			return err
		}
		out = row
		return store.SaveResult(ctx, tx, "refund_request", in.IdempotencyKey, row.ID)
	})
	if err != nil {
		return RefundRequest{}, opError("RequestRefund", err)
	}
	return refundOf(out), nil
}

// decideRefund builds the request row: the paid period, its charge, the 3.7 decision at
// the received instant and the 3.8 deadline.
func (e *Engine) decideRefund(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, in RefundRequestParams) (store.RefundRow, error) {
	n := in.Period
	if n == 0 {
		if sub.Current == nil {
			return store.RefundRow{}, fmt.Errorf("%w: subscription %s has no paid period", ErrPeriodNotPaid, sub.ID)
		}
		n = sub.Current.Number
	}
	var period subscription.Period
	if sub.Current != nil && sub.Current.Number == n {
		period = *sub.Current
	} else {
		p, err := store.ReadPeriod(ctx, tx, sub.ID, n)
		if errors.Is(err, store.ErrNotFound) {
			return store.RefundRow{}, fmt.Errorf("%w: subscription %s has no period %d", ErrPeriodNotPaid, sub.ID, n)
		}
		if err != nil {
			return store.RefundRow{}, err
		}
		period = p
	}
	done, err := store.RefundedPeriod(ctx, tx, sub.ID, n)
	if err != nil {
		return store.RefundRow{}, err
	}
	if done || (sub.Status == subscription.StatusRefunded && sub.Current != nil && sub.Current.Number == n) {
		return store.RefundRow{}, fmt.Errorf("%w: subscription %s period %d", ErrAlreadyRefunded, sub.ID, n)
	}
	charge, err := store.SucceededCharge(ctx, tx, sub.ID, n)
	if errors.Is(err, store.ErrNotFound) {
		return store.RefundRow{}, fmt.Errorf("%w: subscription %s period %d has no succeeded charge attempt "+
			"(a free period)", ErrPeriodNotPaid, sub.ID, n)
	}
	if err != nil {
		return store.RefundRow{}, err
	}
	rp, loc, err := e.refundPeriod(ctx, tx, sub, period)
	if err != nil {
		return store.RefundRow{}, err
	}
	cal := e.calendar()
	dec, err := refund.Eligibility(in.ReceivedAt, rp, cal, loc, refund.Options{})
	if err != nil {
		return store.RefundRow{}, &InputError{Op: "RequestRefund", Problems: []FieldProblem{{"ReceivedAt", err.Error()}}}
	}
	deadline, err := refund.PayoutDeadline(in.ReceivedAt, cal, loc)
	if err != nil {
		return store.RefundRow{}, &InputError{Op: "RequestRefund", Problems: []FieldProblem{{"ReceivedAt", err.Error()}}}
	}
	failed := make([]string, len(dec.Failed))
	for i, r := range dec.Failed {
		failed[i] = string(r)
	}
	return store.RefundRow{
		ID: newID(), SubscriptionID: sub.ID, Period: n, IdempotencyKey: in.IdempotencyKey, ReceivedAt: in.ReceivedAt,
		Channel: string(in.Channel), Text: in.Text, State: string(refund.StateReceived), Eligible: dec.Eligible,
		FailedReasons: failed, Decision: dec.String(), WindowEndsAt: dec.WindowEndsAt, PayoutDeadline: deadline.EndsAt,
		ProviderPaymentID: charge.ProviderPaymentID, AmountMinor: charge.Amount, Currency: charge.Currency,
	}, nil
}

// SuggestProRata computes, for a person to decide on, the refund of a customer who
// refuses the service under consumer law art. 32: the unused share of the period's price,
// by time up to the instant the request was received or by volume (the larger used share
// wins), less the operator's actual costs. It changes nothing; pay it with ExecuteRefund
// and ExecuteRefundOpts{Amount, Override, OverrideReason}. Costs are in the period's
// currency; negative costs or costs above the price are refused.
func (e *Engine) SuggestProRata(ctx context.Context, requestID string, costs decimal.Decimal) (_ refund.ProRataRefund, err error) {
	ctx, span := e.tel.start(ctx, "SuggestProRata", refundAttr(requestID))
	defer span.end(&err)
	check := inputCheck{op: "SuggestProRata"}
	check.id("requestID", requestID)
	if err := check.err(); err != nil {
		return refund.ProRataRefund{}, err
	}
	row, err := store.GetRefund(ctx, e.pool, requestID)
	if err != nil {
		return refund.ProRataRefund{}, opError("SuggestProRata", err)
	}
	sub, err := store.GetSubscription(ctx, e.pool, row.SubscriptionID)
	if err != nil {
		return refund.ProRataRefund{}, opError("SuggestProRata", err)
	}
	period, err := store.ReadPeriod(ctx, e.pool, sub.ID, row.Period)
	if err != nil {
		return refund.ProRataRefund{}, opError("SuggestProRata", err)
	}
	rp, _, err := e.refundPeriod(ctx, e.pool, sub, period)
	if err != nil {
		return refund.ProRataRefund{}, opError("SuggestProRata", err)
	}
	suggestion, err := refund.ProRata(rp, row.ReceivedAt, costs)
	if err != nil {
		return refund.ProRataRefund{}, &InputError{Op: "SuggestProRata", Problems: []FieldProblem{{"costs", err.Error()}}}
	}
	return suggestion, nil
}

// refundAmount returns the minor units to refund: all of paid for a zero amount, else
// amount checked against paid and the currency.
func refundAmount(amount decimal.Decimal, paid int64, currency string) (int64, error) {
	if amount.IsZero() {
		return paid, nil
	}
	cur, err := money.Lookup(currency)
	if err != nil {
		return 0, err
	}
	minor, err := cur.ToMinor(amount)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%w: %w", ErrRefundAmount, err)
	case minor <= 0:
		return 0, fmt.Errorf("%w: %s must be positive", ErrRefundAmount, amount)
	case minor > paid:
		return 0, fmt.Errorf("%w: %s is above the %s paid for the period", ErrRefundAmount, cur.Format(minor), cur.Format(paid))
	}
	return minor, nil
}

func formatMinor(minor int64, currency string) string {
	cur, err := money.Lookup(currency)
	if err != nil {
		return fmt.Sprintf("%d %s", minor, currency)
	}
	return cur.Format(minor)
}

// refundPeriod is what the refund package needs to know of a paid period: its bounds,
// grant, price and usage now, and the subscription's location.
func (e *Engine) refundPeriod(ctx context.Context, q store.Querier, sub subscription.Subscription, period subscription.Period) (refund.Period, *time.Location, error) {
	usage, open, err := store.PeriodUsage(ctx, q, sub.ID, period.Number)
	if err != nil {
		return refund.Period{}, nil, err
	}
	meters := make([]refund.MeterUsage, 0, len(usage))
	for m, qu := range usage {
		meters = append(meters, refund.MeterUsage{Meter: m, Quantity: qu[0], Used: qu[1]})
	}
	loc, err := time.LoadLocation(sub.LocationName())
	if err != nil {
		return refund.Period{}, nil, err
	}
	return refund.Period{
		GrantedAt: period.GrantedAt, Start: period.Start, End: period.End, Price: period.Terms.Price,
		Currency: period.Terms.Currency, Meters: meters, OpenReservations: open, Renewal: period.Number > 1,
	}, loc, nil
}

// VerifyRefund records that operator actor verified the customer and approved the
// request (TERMS 3.8): received → verified. Verifying is not executing: the money moves
// only with ExecuteRefund.
func (e *Engine) VerifyRefund(ctx context.Context, requestID, actor string) (RefundRequest, error) {
	return e.verifyRefund(ctx, e.pool, requestID, actor)
}

// VerifyRefundTx is VerifyRefund in the host's transaction tx.
func (e *Engine) VerifyRefundTx(ctx context.Context, tx pgx.Tx, requestID, actor string) (RefundRequest, error) {
	if err := hostTx("VerifyRefundTx", tx); err != nil {
		return RefundRequest{}, err
	}
	return e.verifyRefund(ctx, tx, requestID, actor)
}

func (e *Engine) verifyRefund(ctx context.Context, db dbtx, requestID, actor string) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "VerifyRefund", refundAttr(requestID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "VerifyRefund"}
	check.id("requestID", requestID)
	if strings.TrimSpace(actor) == "" {
		check.add("actor", "required: the operator's ID, for the audit log")
	}
	if err := check.err(); err != nil {
		return RefundRequest{}, err
	}
	return e.moveRefund(ctx, db, "VerifyRefund", requestID, refund.EventVerify, actor, "refund.verified", "",
		func(row *store.RefundRow, now time.Time) { row.VerifiedBy, row.VerifiedAt = actor, now })
}

// RejectRefund closes a refund request without paying it, by an operator's decision:
// the customer was told no (an ineligible request under TERMS 3.7, a duplicate, a request
// about someone else's subscription). The request becomes rejected, a final state, so it
// is no longer escalated before the 3.8 deadline; who and why go to the audit log. Only
// a received or verified request can be rejected (else ErrRefundTransition); a reason is
// required.
func (e *Engine) RejectRefund(ctx context.Context, requestID, actor, reason string) (RefundRequest, error) {
	return e.rejectRefund(ctx, e.pool, requestID, actor, reason)
}

// RejectRefundTx is RejectRefund in the host's transaction tx, e.g. the one that stores the
// answer sent to the customer.
func (e *Engine) RejectRefundTx(ctx context.Context, tx pgx.Tx, requestID, actor, reason string) (RefundRequest, error) {
	if err := hostTx("RejectRefundTx", tx); err != nil {
		return RefundRequest{}, err
	}
	return e.rejectRefund(ctx, tx, requestID, actor, reason)
}

func (e *Engine) rejectRefund(ctx context.Context, db dbtx, requestID, actor, reason string) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "RejectRefund", refundAttr(requestID), hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "RejectRefund"}
	check.id("requestID", requestID)
	if strings.TrimSpace(actor) == "" {
		check.add("actor", "required: the operator's ID, for the audit log")
	}
	if strings.TrimSpace(reason) == "" {
		check.add("reason", "required: what the customer was told")
	}
	if err := check.err(); err != nil {
		return RefundRequest{}, err
	}
	return e.moveRefund(ctx, db, "RejectRefund", requestID, refund.EventReject, actor, "refund.rejected", reason,
		func(row *store.RefundRow, now time.Time) { row.SettledAt = now })
}

// moveRefund applies an operator's event to a refund request in one transaction: lock the
// request, take the state machine's next state (ErrRefundTransition when the event is not
// allowed), let set record what else the event changes, store it and write the audit
// entry action with reason.
func (e *Engine) moveRefund(ctx context.Context, db dbtx, op, requestID string, event refund.Event, actor, action, reason string,
	set func(row *store.RefundRow, now time.Time)) (RefundRequest, error) {
	var out store.RefundRow
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		row, err := store.LockRefund(ctx, tx, requestID)
		if err != nil {
			return err
		}
		next, err := refund.Next(refund.State(row.State), event)
		if err != nil {
			return err
		}
		row.State, row.UpdatedAt = string(next), now
		set(&row, now)
		if err := store.UpdateRefund(ctx, tx, row); err != nil {
			return err
		}
		if err := e.emitRefundMoved(ctx, tx, row, event, reason, now); err != nil {
			return err
		}
		out = row
		return e.refundAudit(ctx, tx, row, now, actor, action, reason, nil)
	})
	if err != nil {
		return RefundRequest{}, opError(op, err)
	}
	return refundOf(out), nil
}

// ExecuteRefund pays a verified (or failed) request back through Config.Gateway, in the
// phases of the charge protocol: it records the request executing under its gateway key
// and commits, calls Gateway.Refund with a 54-FZ "return of income" receipt, then records
// the answer and its effects (the subscription refunded with access ended, the ledger
// reversal) and commits. Every retry of a call reuses its key, and only one request of a
// paid period can be executing or refunded (a database constraint), so the gateway never
// refunds a period twice; executing an executing or refunded request returns it unchanged.
//
// An ineligible request (TERMS 3.7) is refused with ErrNotEligible unless opts.Override,
// which is written to the audit log with opts.OverrideReason. opts.Amount below what was
// paid makes a partial refund (consumer law art. 32), which needs the override too; the
// part of the period's price not refunded is then earned at once. A failed or unknown gateway
// call leaves the request executing for the River retry job, scheduled with the request
// (it looks the key up first, and refunds again under the same key only if the gateway
// never saw it); a pending answer completes on HandleRefundWebhook, or on that job, which
// looks the refund up again until the gateway settles it; a refusal moves the
// request to failed, from which ExecuteRefund may try again.
func (e *Engine) ExecuteRefund(ctx context.Context, requestID string, opts ExecuteRefundOpts) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "ExecuteRefund", refundAttr(requestID))
	defer span.end(&err)
	check := inputCheck{op: "ExecuteRefund"}
	check.id("requestID", requestID)
	if strings.TrimSpace(opts.Actor) == "" {
		check.add("Actor", "required: the operator's ID, for the audit log")
	}
	if opts.Override && strings.TrimSpace(opts.OverrideReason) == "" {
		check.add("OverrideReason", "required with Override: the audit log must say why")
	}
	if err := check.err(); err != nil {
		return RefundRequest{}, err
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return RefundRequest{}, opError("ExecuteRefund", ErrNoGateway)
	}
	client, err := e.riverClient()
	if err != nil {
		return RefundRequest{}, opError("ExecuteRefund", err)
	}
	var row store.RefundRow
	send := false
	err = store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		var err error
		send = false
		if row, err = store.LockRefund(ctx, tx, requestID); err != nil {
			return err
		}
		state := refund.State(row.State)
		if state == refund.StateExecuting || state == refund.StateRefunded {
			return nil // executing twice is a no-op
		}
		paid, err := store.SucceededCharge(ctx, tx, row.SubscriptionID, row.Period)
		if err != nil {
			return err
		}
		amount, err := refundAmount(opts.Amount, paid.Amount, row.Currency)
		if err != nil {
			return err
		}
		partial := amount < paid.Amount
		if partial && !opts.Override {
			return fmt.Errorf("%w: a partial refund (%s of %s) is a person's decision under consumer law art. 32: set Override and OverrideReason",
				ErrRefundAmount, formatMinor(amount, row.Currency), formatMinor(paid.Amount, row.Currency))
		}
		if !row.Eligible && !opts.Override {
			return fmt.Errorf("%w: %s", ErrNotEligible, row.Decision)
		}
		row.AmountMinor = amount
		next, err := refund.Next(state, refund.EventExecute)
		if err != nil {
			return err
		}
		row.State, row.ExecutedBy, row.UpdatedAt = string(next), opts.Actor, now
		row.Attempt++
		// Unguessable, and the same for this request's try after a lost commit (gatewayKey).
		if row.GatewayKey, err = e.gatewayKey(ctx, tx, "refund", row.ID, strconv.Itoa(row.Attempt)); err != nil {
			return err
		}
		row.DeclineCode, row.DeclineMessage = "", ""
		if opts.Override && (!row.Eligible || partial) {
			row.OverrideReason = opts.OverrideReason
			if err := e.refundAudit(ctx, tx, row, now, opts.Actor, "refund.override", opts.OverrideReason,
				map[string]any{"decision": row.Decision, "amount_minor": amount, "paid_minor": paid.Amount}); err != nil {
				return err
			}
		}
		if err := store.UpdateRefund(ctx, tx, row); err != nil {
			return err
		}
		// The safety net of the protocol: if the process dies before the gateway's answer
		// is recorded, this job looks the key up and finishes the refund.
		if _, err := client.InsertTx(ctx, tx, jobs.RetryRefundArgs{RequestID: row.ID},
			&riverInsertOpts{ScheduledAt: now.Add(refundRecheckAfter)}); err != nil {
			return err
		}
		send = true
		return e.refundAudit(ctx, tx, row, now, opts.Actor, "refund.executing", "", map[string]any{"gateway_key": row.GatewayKey})
	})
	if store.IsUniqueViolation(err, "billing_refund_requests_one_refund") {
		err = fmt.Errorf("%w: another request of subscription %s period %d is being refunded", ErrAlreadyRefunded, row.SubscriptionID, row.Period)
	}
	if err != nil {
		return RefundRequest{}, opError("ExecuteRefund", err)
	}
	if !send {
		return refundOf(row), nil
	}
	req, err := e.gatewayRefund(ctx, row)
	if err != nil {
		return RefundRequest{}, opError("ExecuteRefund", err)
	}
	res, callErr := gw.Refund(ctx, req)
	out, err := e.settleRefund(ctx, row.ID, req.IdempotencyKey, res, callErr)
	if err != nil {
		return RefundRequest{}, opError("ExecuteRefund", err)
	}
	return refundOf(out), nil
}

// HandleRefundWebhook applies a provider's refund notification, found by its idempotency
// key or provider refund ID: a pending refund completes (or fails) here. The refund of an
// unapplied payment is settled the same way; the returned RefundRequest is then empty.
// Webhooks are hints: the engine asks the gateway (LookupRefund under the refund's key) and
// acts on its answer alone, and only when it agrees with the body; a forged or mismatching
// body changes nothing and returns an error matching ErrWebhookNotConfirmed. A duplicate
// notification is a no-op. The gateway call happens before any transaction.
func (e *Engine) HandleRefundWebhook(ctx context.Context, ev payment.WebhookEvent) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "HandleRefundWebhook")
	defer span.end(&err)
	if err := checkWebhook("HandleRefundWebhook", ev, payment.KindRefund, ev.ProviderRefundID); err != nil {
		return RefundRequest{}, err
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return RefundRequest{}, opError("HandleRefundWebhook", ErrNoGateway)
	}
	var row store.RefundRow
	err = store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		row, err = store.LockRefundByGateway(ctx, tx, ev.IdempotencyKey, ev.ProviderRefundID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		// Not a request's refund: maybe the refund of an unapplied payment.
		found, uerr := e.handleUnappliedRefundWebhook(ctx, ev)
		if found {
			if uerr != nil {
				return RefundRequest{}, opError("HandleRefundWebhook", uerr)
			}
			return RefundRequest{}, nil
		}
	}
	if err != nil {
		return RefundRequest{}, opError("HandleRefundWebhook", err)
	}
	res, lerr := gw.LookupRefund(ctx, refundLookupOf(row))
	err = confirmRefundWebhook(ev, res, lerr)
	if err != nil {
		e.logger.WarnContext(ctx, "billing: refund webhook not confirmed", "request", row.ID, "error", err)
		return RefundRequest{}, opError("HandleRefundWebhook", err)
	}
	out, err := e.settleRefund(ctx, row.ID, row.GatewayKey, res, nil)
	if err != nil {
		return RefundRequest{}, opError("HandleRefundWebhook", err)
	}
	return refundOf(out), nil
}

// confirmRefundWebhook checks a refund webhook body against the gateway's answer about the
// refund (res, lerr from LookupRefund).
func confirmRefundWebhook(ev payment.WebhookEvent, res payment.RefundResult, lerr error) error {
	return confirmAnswer("refund", ev, ev.ProviderRefundID, gatewayAnswer{res.ProviderRefundID, res.Outcome, res.Amount, res.Currency}, lerr)
}

// retryRefund settles a request left executing by a failed or unknown gateway call, or
// pending at the gateway: it looks the gateway key up and refunds again, under the same
// key, only when the gateway never saw it. The River retry job calls it; an error (the
// outcome still unknown, or the refund still pending) makes River try again later.
func (e *Engine) retryRefund(ctx context.Context, requestID string) (err error) {
	ctx, span := e.tel.start(ctx, "RetryRefund", refundAttr(requestID))
	defer span.end(&err)
	row, err := store.GetRefund(ctx, e.pool, requestID)
	if err != nil {
		return opError("RetryRefund", err)
	}
	if refund.State(row.State) != refund.StateExecuting {
		return nil
	}
	gw := e.cfg.Gateway
	if gw == nil {
		return opError("RetryRefund", ErrNoGateway)
	}
	res, err := gw.LookupRefund(ctx, refundLookupOf(row))
	if errors.Is(err, payment.ErrNotFound) {
		req, rerr := e.gatewayRefund(ctx, row)
		if rerr != nil {
			return opError("RetryRefund", rerr)
		}
		res, err = gw.Refund(ctx, req)
	}
	if err != nil {
		return opError("RetryRefund", fmt.Errorf("request %s: gateway: %w", requestID, err))
	}
	out, err := e.settleRefund(ctx, requestID, row.GatewayKey, res, nil)
	if err != nil {
		return opError("RetryRefund", err)
	}
	if refund.State(out.State) == refund.StateExecuting {
		// Unknown, or pending at the gateway: look again later, as RefundUnapplied does. A
		// webhook may settle it first, but it may never come (lost, or dropped after the
		// provider's retries), and a refund the gateway paid must reach the books.
		return opError("RetryRefund", fmt.Errorf("request %s: refund %s, looking again later (or its webhook settles it): %w", requestID, res.Outcome, ErrUnavailable))
	}
	return nil
}

// escalateRefund is the escalation job's handler: a request not yet refunded or rejected
// nor escalated before is logged at Warn and handed to Config.OnRefundEscalation, then
// marked escalated. The hook runs before the mark, so an escalation is never lost; a crash
// between the two (or a failed mark) calls it again on the job's retry.
func (e *Engine) escalateRefund(ctx context.Context, requestID string) (err error) {
	ctx, span := e.tel.start(ctx, "EscalateRefund", refundAttr(requestID))
	defer span.end(&err)
	row, err := store.GetRefund(ctx, e.pool, requestID)
	if err != nil {
		return opError("EscalateRefund", err)
	}
	if refund.State(row.State).Final() || !row.EscalatedAt.IsZero() {
		return nil
	}
	esc := RefundEscalation{RequestID: row.ID, SubscriptionID: row.SubscriptionID, State: refund.State(row.State),
		ReceivedAt: row.ReceivedAt, PayoutDeadline: row.PayoutDeadline, At: e.clock.Now()}
	e.logger.WarnContext(ctx, "billing: refund request nearing its payout deadline (TERMS 3.8)",
		"request", esc.RequestID, "subscription", esc.SubscriptionID, "state", string(esc.State), "deadline", esc.PayoutDeadline)
	if h := e.cfg.OnRefundEscalation; h != nil {
		h(esc)
	}
	if err := e.markRefundEscalated(ctx, row.ID, esc.At); err != nil {
		return opError("EscalateRefund", err)
	}
	return nil
}

// RefundRequestList returns the requests matching f, earliest payout deadline first: the
// open ones by State, those past or near their deadline by DueBefore.
func (e *Engine) RefundRequestList(ctx context.Context, f RefundRequestListParams) (_ []RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "RefundRequestList")
	defer span.end(&err)
	if f.State != "" && !f.State.Valid() {
		return nil, &InputError{Op: "RefundRequestList", Problems: []FieldProblem{{"State", fmt.Sprintf("%q is not a refund state", f.State)}}}
	}
	rows, err := store.ListRefunds(ctx, e.pool, string(f.State), f.Open, f.DueBefore)
	if err != nil {
		return nil, opError("RefundRequestList", err)
	}
	out := make([]RefundRequest, len(rows))
	for i, r := range rows {
		out[i] = refundOf(r)
	}
	return out, nil
}

// RefundRequestGet returns one refund request.
func (e *Engine) RefundRequestGet(ctx context.Context, requestID string) (_ RefundRequest, err error) {
	ctx, span := e.tel.start(ctx, "RefundRequestGet", refundAttr(requestID))
	defer span.end(&err)
	check := inputCheck{op: "RefundRequestGet"}
	check.id("requestID", requestID)
	if err := check.err(); err != nil {
		return RefundRequest{}, err
	}
	row, err := store.GetRefund(ctx, e.pool, requestID)
	if err != nil {
		return RefundRequest{}, opError("RefundRequestGet", err)
	}
	return refundOf(row), nil
}

// settleRefund records a gateway answer (callErr: outcome unknown) about the refund under
// key on an executing request, with its effects, in one transaction. A request no longer
// executing is returned unchanged, and so is one whose refund is now under another key: the
// answer is about an earlier try, refused, and an operator has tried again since (a
// redelivered webhook or a retry job that read the request before); the new try settles by
// its own key, never by the old one's refusal.
func (e *Engine) settleRefund(ctx context.Context, id, key string, res payment.RefundResult, callErr error) (store.RefundRow, error) {
	client, _ := e.riverClient()
	var out store.RefundRow
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		row, err := store.LockRefund(ctx, tx, id)
		if err != nil {
			return err
		}
		out = row
		if refund.State(row.State) != refund.StateExecuting || row.GatewayKey != key {
			return nil
		}
		outcome := res.Outcome
		if callErr != nil {
			outcome = payment.OutcomeUnknown
		}
		switch outcome {
		case payment.OutcomeSucceeded:
			if res.Amount != 0 && (res.Amount != row.AmountMinor || res.Currency != row.Currency) {
				return fmt.Errorf("%w: refund of %d %s answered with %d %s", payment.ErrAmountMismatch,
					row.AmountMinor, row.Currency, res.Amount, res.Currency)
			}
			next, err := refund.Next(refund.StateExecuting, refund.EventSucceed)
			if err != nil {
				return err
			}
			row.State, row.SettledAt = string(next), now
			if res.ProviderRefundID != "" {
				row.ProviderRefundID = res.ProviderRefundID
			}
			if err := e.refundEffects(ctx, tx, row, now); err != nil {
				return err
			}
			if err := e.emitRefund(ctx, tx, EventRefundPaid, row, now); err != nil {
				return err
			}
			e.logger.InfoContext(ctx, "billing: refunded", "request", row.ID, "subscription", row.SubscriptionID)
		case payment.OutcomePending:
			if res.ProviderRefundID != "" {
				row.ProviderRefundID = res.ProviderRefundID
			}
		case payment.OutcomeSoftDeclined, payment.OutcomeHardDeclined:
			next, err := refund.Next(refund.StateExecuting, refund.EventFail)
			if err != nil {
				return err
			}
			row.State, row.DeclineCode, row.DeclineMessage = string(next), res.DeclineCode, res.DeclineMessage
			e.logger.WarnContext(ctx, "billing: refund refused by the gateway", "request", row.ID, "code", res.DeclineCode)
		default: // unknown: keep executing and let the retry job look the key up
			if client == nil {
				return ErrNoRiverClient
			}
			if _, err := client.InsertTx(ctx, tx, jobs.RetryRefundArgs{RequestID: row.ID}, nil); err != nil {
				return err
			}
			e.logger.WarnContext(ctx, "billing: refund outcome unknown; retry scheduled", "request", row.ID, "error", callErr)
		}
		row.UpdatedAt = now
		if err := store.UpdateRefund(ctx, tx, row); err != nil {
			return err
		}
		out = row
		return e.refundAudit(ctx, tx, row, now, "gateway", "refund."+string(outcome), res.DeclineMessage,
			map[string]any{"provider_refund_id": row.ProviderRefundID, "decline_code": res.DeclineCode})
	})
	return out, err
}

// refundEffects applies a confirmed refund: for the current period, the subscription
// refunded with access ended; and the ledger reversal.
func (e *Engine) refundEffects(ctx context.Context, tx pgx.Tx, row store.RefundRow, now time.Time) error {
	sub, err := store.LockSubscription(ctx, tx, row.SubscriptionID)
	if err != nil {
		return err
	}
	ends := sub.Current != nil && sub.Current.Number == row.Period && sub.Status != subscription.StatusRefunded
	if ends && !sub.Status.Allows(subscription.ActionRefund) {
		// Ended or terminated meanwhile (an operator's Terminate after the request): the
		// gateway paid the refund, so the money moves in the books all the same; the
		// subscription keeps its final status.
		if err := e.refundAudit(ctx, tx, row, now, "billing", "refund.after_end",
			fmt.Sprintf("refund paid for a subscription already %s", sub.Status), nil); err != nil {
			return err
		}
		return e.postRefund(ctx, tx, row, true, now)
	}
	if ends {
		actor := row.ExecutedBy
		if actor == "" {
			actor = "billing"
		}
		after, audit, err := subscription.Refund(sub, subscription.AdminAction{Actor: actor,
			Reason: fmt.Sprintf("refund request %s (TERMS 3.7)", row.ID)}, now)
		if err != nil {
			return err
		}
		if err := store.SaveSubscription(ctx, tx, sub, after, now); err != nil {
			return err
		}
		if err := e.emitTransition(ctx, tx, sub, after, []subscription.AuditEntry{audit}, now); err != nil {
			return err
		}
		if err := store.InsertSubscriptionAudit(ctx, tx, audit); err != nil {
			return err
		}
	}
	// A past period's refund leaves the current period untouched; only the money moves.
	return e.postRefund(ctx, tx, row, ends, now)
}

// postRefund posts the ledger reversal of a confirmed refund under the period's ledger
// lock (ledger.Refund: it takes from what the period still has deferred first, the rest
// from revenue already recognized), keyed by the request so a replay posts nothing new.
// When the refund ends the period, the recognition job books what is left deferred.
func (e *Engine) postRefund(ctx context.Context, tx pgx.Tx, row store.RefundRow, endsPeriod bool, now time.Time) error {
	pl, err := e.periodLedgerTx(ctx, tx, row.SubscriptionID, row.Period)
	if err != nil {
		return err
	}
	recognizedPart := ledger.RecognizedPartOfRefund(row.AmountMinor, pl.DeferredLeft())
	t, err := ledger.Refund("refund:"+row.ID, row.ID, row.Currency, row.AmountMinor, recognizedPart, now,
		ledger.WithMemo(fmt.Sprintf("refund of subscription %s period %d, provider refund %s", row.SubscriptionID, row.Period, row.ProviderRefundID)))
	if err != nil {
		return err
	}
	if _, _, err := e.postForPeriod(ctx, tx, row.SubscriptionID, row.Period, t); err != nil {
		return err
	}
	if endsPeriod {
		return e.scheduleRecognition(ctx, tx, row.SubscriptionID, row.Period, now)
	}
	return nil
}

// gatewayRefund builds the gateway request of row, with its 54-FZ return receipt.
func (e *Engine) gatewayRefund(ctx context.Context, row store.RefundRow) (payment.RefundParams, error) {
	desc := "refund, TERMS 3.7"
	if row.OverrideReason != "" {
		desc = "refund by operator decision"
	}
	charge, err := store.AttemptByReference(ctx, e.pool, row.ProviderPaymentID, "")
	if err != nil && !errors.Is(err, store.ErrNotFound) { // not found: a payment the host confirmed without River
		return payment.RefundParams{}, err
	}
	receipt, err := e.refundReceipt(ctx, row.SubscriptionID, desc, row.AmountMinor, row.Currency, charge)
	if err != nil {
		return payment.RefundParams{}, err
	}
	req := payment.RefundParams{IdempotencyKey: row.GatewayKey, ProviderPaymentID: row.ProviderPaymentID,
		Amount: row.AmountMinor, Currency: row.Currency, Description: desc, Receipt: receipt,
		Metadata: map[string]string{"billing_refund_request_id": row.ID, payment.MetadataIdempotencyKey: row.GatewayKey}}
	return req, req.Validate()
}

// sweepExecutingRefunds enqueues the retry job of every refund request still executing (a
// no-op while one waits): the job River gave up on after its last attempt (lookups that kept
// failing, a refund pending for weeks) is started again, so that a refund the provider paid
// is looked up and booked. The periodic sweep (SweepDueRenewals) calls it.
func (e *Engine) sweepExecutingRefunds(ctx context.Context) error {
	ids, err := store.ExecutingRefunds(ctx, e.pool, 1000)
	if err != nil {
		return err
	}
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	return enqueueEach(ctx, client, "refund request", ids, func(id string) river.JobArgs { return jobs.RetryRefundArgs{RequestID: id} })
}

// refundReceipt is the 54-FZ return receipt of a refund of subscription subID's charge: the
// VAT code the charge was made under (a refund after Config.VAT changed repeats the old
// rate; charge is zero when the engine holds no attempt of it: then Config.VAT), sent to the
// customer's contact (Config.ReceiptContact).
func (e *Engine) refundReceipt(ctx context.Context, subID, desc string, amount int64, currency string,
	charge store.AttemptRow) (payment.Receipt, error) {
	sub, err := store.GetSubscription(ctx, e.pool, subID)
	if err != nil {
		return payment.Receipt{}, err
	}
	contact, err := e.receiptContact(ctx, sub.CustomerID)
	if err != nil {
		return payment.Receipt{}, err
	}
	return payment.NewRefundReceipt(desc, amount, currency, e.vatOf(charge), contact)
}

// refundLookupOf is the gateway's RefundLookupParams for a refund request's current key.
func refundLookupOf(row store.RefundRow) payment.RefundLookupParams {
	return payment.RefundLookupParams{IdempotencyKey: row.GatewayKey, ProviderPaymentID: row.ProviderPaymentID,
		ProviderRefundID: row.ProviderRefundID, CreatedAt: row.CreatedAt}
}

// refundAudit writes one audit entry about a refund request, under its subscription.
func (e *Engine) refundAudit(ctx context.Context, tx pgx.Tx, row store.RefundRow, now time.Time, actor, action, reason string, detail map[string]any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	detail["request"], detail["period"], detail["state"] = row.ID, row.Period, row.State
	return store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: actor, Action: action,
		Subject: "subscription:" + row.SubscriptionID, Reason: reason, Detail: detail})
}

// calendar returns Config.Calendar (calendar.Russia unless set: withDefaults).
func (e *Engine) calendar() calendar.BusinessCalendar { return e.cfg.Calendar }

func refundOf(r store.RefundRow) RefundRequest {
	failed := make([]refund.Reason, len(r.FailedReasons))
	for i, f := range r.FailedReasons {
		failed[i] = refund.Reason(f)
	}
	return RefundRequest{
		ID: r.ID, SubscriptionID: r.SubscriptionID, Period: r.Period, ReceivedAt: r.ReceivedAt,
		Channel: refund.Channel(r.Channel), Text: r.Text, State: refund.State(r.State), Eligible: r.Eligible,
		Failed: failed, Explanation: r.Decision, WindowEndsAt: r.WindowEndsAt, PayoutDeadline: r.PayoutDeadline,
		ProviderPaymentID: r.ProviderPaymentID, AmountMinor: r.AmountMinor, Currency: r.Currency, Attempt: r.Attempt, GatewayKey: r.GatewayKey,
		ProviderRefundID: r.ProviderRefundID, VerifiedBy: r.VerifiedBy, VerifiedAt: r.VerifiedAt, ExecutedBy: r.ExecutedBy,
		OverrideReason: r.OverrideReason, DeclineCode: r.DeclineCode, DeclineMessage: r.DeclineMessage,
		CreatedAt: r.CreatedAt, SettledAt: r.SettledAt, EscalatedAt: r.EscalatedAt,
	}
}
