package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// EventKind names a business event. The values are stored: never rename one.
type EventKind string

// The business events. Each is recorded in the transaction of the change it reports, at
// most once per fact (its ID is derived from the fact), and handed to Config.OnEvent at
// least once. Event's field comments say which fields each kind fills.
const (
	// EventSubscribed: a customer subscribed at checkout (Subscribe). Tariff, AmountMinor
	// and Currency are the checkout terms' (TERMS 3.4). No access yet (3.3).
	EventSubscribed EventKind = "subscribed"
	// EventActivated: the first payment succeeded and period 1 started (TERMS 3.3); a free
	// tariff is activated at Subscribe. Period is 1; PeriodEnd is when it ends (and renews).
	EventActivated EventKind = "activated"
	// EventRenewalUpcoming: the saved payment method will be charged for period Period at
	// DueAt, AmountMinor in Currency at the terms in force then (TERMS 3.5, 2.1.6), unless
	// the customer turns auto-renew off first (3.6). Made Config.RenewalNotice before the
	// charge, only while the subscription still renews: auto-renew on, consent standing,
	// the period not renewed nor ended, and the next period not free.
	EventRenewalUpcoming EventKind = "renewal_upcoming"
	// EventRenewed: a renewal charge succeeded (or a free period began) and period Period
	// started, paid AmountMinor in Currency; PeriodEnd is when it ends (TERMS 3.5).
	EventRenewed EventKind = "renewed"
	// EventPaymentDeclined: the gateway declined a charge attempt (AttemptID) of period
	// Period: Hard for a refusal that is never retried (card blocked), else soft (retried on
	// the dunning schedule). Reason is the gateway's decline code, Message its words.
	EventPaymentDeclined EventKind = "payment_declined"
	// EventPastDue: the renewal charge of period Period was softly declined after the paid
	// period ended: no access while the engine retries (dunning).
	EventPastDue EventKind = "past_due"
	// EventEnded: the subscription reached a final status (Status: ended, refunded or
	// terminated). Reason says why: a subscription.EndReason (auto_renew_off,
	// no_payment_method, hard_decline, consent_withdrawn, dunning_exhausted,
	// payment_method_refused), or EndFirstPaymentFailed, EndTerminated, EndRefunded;
	// Message holds the gateway's, the host's or the operator's words when there are some.
	EventEnded EventKind = "ended"
	// EventUsageThreshold: a Consume or ReservationCommit took the used volume of a hard-limited meter
	// (Meter) of period Period to Threshold percent of its Limit or past it (Used after the
	// call); once per period, meter and threshold (Config.UsageThresholds). 100 means the
	// volume is used up: access ends until the period ends (TERMS 3.1).
	EventUsageThreshold EventKind = "usage_threshold"
	// EventRefundRequested: a refund request was recorded (RequestRefund, TERMS 3.7):
	// RefundRequestID, Period, AmountMinor, Currency, DueAt (the 3.8 payout deadline),
	// Eligible and Message (the 3.7 decision in words).
	EventRefundRequested EventKind = "refund_requested"
	// EventRefundDueSoon: a refund request is still unpaid two days before its payout
	// deadline DueAt (TERMS 3.8): a person must act. It replaces Config.OnRefundEscalation.
	EventRefundDueSoon EventKind = "refund_due_soon"
	// EventRefundPaid: the provider paid the refund of request RefundRequestID back,
	// AmountMinor in Currency (TERMS 3.8).
	EventRefundPaid EventKind = "refund_paid"
	// EventRefundRejected: an operator rejected refund request RefundRequestID (RejectRefund);
	// Message is what the customer was told.
	EventRefundRejected EventKind = "refund_rejected"
	// EventUnappliedRefunded: money no period could take (UnappliedID, from attempt AttemptID)
	// was paid back to the customer, AmountMinor in Currency.
	EventUnappliedRefunded EventKind = "unapplied_refunded"
	// EventParked: an item was parked for a person: Reason is ParkedChargeAttempt (a charge
	// attempt reconciliation gave up on, AttemptID; see AttemptListParked) or ParkedUnappliedRefund
	// (the refund of an unapplied payment, UnappliedID; see UnappliedPaymentList); Message is
	// the last error.
	EventParked EventKind = "parked"
	// EventConsentWithdrawn: customer CustomerID withdrew consent to charges on the saved
	// payment method PaymentMethod (WithdrawConsent, law of 1 March 2026). SubscriptionID is
	// empty: every subscription charged from it turned auto-renew off.
	EventConsentWithdrawn EventKind = "consent_withdrawn"
	// EventAccountDeletionDueSoon: account deletion request AccountDeletionID of customer
	// CustomerID is not executed two days before its deadline DueAt (TERMS 2.2.4).
	// SubscriptionID is empty. It replaces Config.OnAccountDeletionEscalation.
	EventAccountDeletionDueSoon EventKind = "account_deletion_due_soon"
)

// EventKinds lists every EventKind, in the order of a subscription's life.
var EventKinds = []EventKind{EventSubscribed, EventActivated, EventRenewalUpcoming, EventRenewed, EventPaymentDeclined,
	EventPastDue, EventEnded, EventUsageThreshold, EventRefundRequested, EventRefundDueSoon, EventRefundPaid,
	EventRefundRejected, EventUnappliedRefunded, EventParked, EventConsentWithdrawn, EventAccountDeletionDueSoon}

// Event.Reason values of EventEnded besides the subscription.EndReason values, and of
// EventParked.
const (
	// EndFirstPaymentFailed: the first charge failed or was abandoned (FailFirstPayment,
	// a declined checkout); no access was ever granted.
	EndFirstPaymentFailed = "first_payment_failed"
	// EndTerminated: an operator terminated the subscription (TERMS 2.1.2), or an account
	// deletion did (2.2.4).
	EndTerminated = "terminated"
	// EndRefunded: the period's payment was refunded (TERMS 3.7); access ended then.
	EndRefunded = "refunded"
	// ParkedChargeAttempt: a charge attempt reconciliation gave up on after repeated failures.
	ParkedChargeAttempt = "charge_attempt"
	// ParkedUnappliedRefund: the refund of an unapplied payment, after repeated failures or a
	// hard refusal.
	ParkedUnappliedRefund = "unapplied_refund"
)

// Event is one business event, as Config.OnEvent receives it and Engine.EventList returns
// it. The fields after OccurredAt are filled by the kinds that name them (see EventKind);
// the others are zero.
type Event struct {
	// ID is stable: the same fact always has the same ID (a UUID derived from it), so a
	// handler deduplicates redeliveries by it.
	ID string
	// Kind is what happened.
	Kind EventKind
	// SubscriptionID is the subscription it is about; empty for a customer's event
	// (consent withdrawn, account deletion due soon).
	SubscriptionID string
	// CustomerID is the host's opaque ID of the customer.
	CustomerID string
	// OccurredAt is the engine clock's instant of the change.
	OccurredAt time.Time
	// DeliveredAt is when OnEvent first returned nil for it; zero before. Only
	// Engine.EventList fills it.
	DeliveredAt time.Time

	// Period is the number of the period the event is about: the one paid for by a charge
	// (renewal upcoming, renewed, declined, past due), the one refunded, or the one whose
	// volume is counted.
	Period int
	// PeriodEnd is when the period that started ends (activated, renewed).
	PeriodEnd time.Time
	// Tariff is the tariff's code (subscribed, activated, renewal upcoming, renewed).
	Tariff string
	// Status is the final status reached (ended).
	Status subscription.Status
	// Reason is a machine-readable why: the end reason (ended), the decline code
	// (payment declined), ParkedChargeAttempt or ParkedUnappliedRefund (parked).
	Reason string
	// Message is words for a person: the gateway's, the operator's, the 3.7 decision.
	Message string
	// Hard is true for a decline that is never retried (payment declined).
	Hard bool
	// Eligible is the 3.7 decision of a refund request (refund requested).
	Eligible bool
	// AmountMinor is the money involved in minor units (kopecks), with Currency.
	AmountMinor int64
	// Currency is the ISO 4217 code of AmountMinor.
	Currency string
	// DueAt is when something falls due: the renewal charge (renewal upcoming), the 3.8
	// payout deadline (refund requested, refund due soon), the 2.2.4 deadline (account
	// deletion due soon).
	DueAt time.Time
	// Meter, Threshold (a percentage), Used and Limit describe a usage threshold crossed.
	Meter string
	// Threshold is the percentage of Limit crossed (usage threshold).
	Threshold int
	// Used is the meter's used volume after the call that crossed it (usage threshold).
	Used int64
	// Limit is the meter's volume in the period (usage threshold).
	Limit int64
	// RefundRequestID is the refund request (refund requested, due soon, paid, rejected).
	RefundRequestID string
	// AccountDeletionID is the account deletion request (account deletion due soon).
	AccountDeletionID string
	// AttemptID is the charge attempt (payment declined, parked attempt, unapplied refunded).
	AttemptID string
	// UnappliedID is the unapplied payment (unapplied refunded, parked unapplied).
	UnappliedID string
	// PaymentMethod is the saved payment method's token (consent withdrawn).
	PaymentMethod string
}

// eventNamespace is the UUID namespace of event IDs (a version 5 UUID of the fact).
var eventNamespace = uuid.MustParse("5b0b6c1e-8f0a-4c47-9a53-2f1e0d7c3b91")

// eventID is the ID of the event of kind about fact: the same fact, the same ID.
func eventID(kind EventKind, fact ...string) string {
	return uuid.NewSHA1(eventNamespace, []byte(string(kind)+"|"+strings.Join(fact, "|"))).String()
}

// eventData is what the data column holds: Event's detail fields.
type eventData struct {
	Period            int                 `json:"period,omitempty"`
	PeriodEnd         time.Time           `json:"period_end,omitzero"`
	Tariff            string              `json:"tariff,omitempty"`
	Status            subscription.Status `json:"status,omitempty"`
	Reason            string              `json:"reason,omitempty"`
	Message           string              `json:"message,omitempty"`
	Hard              bool                `json:"hard,omitempty"`
	Eligible          bool                `json:"eligible,omitempty"`
	AmountMinor       int64               `json:"amount_minor,omitempty"`
	Currency          string              `json:"currency,omitempty"`
	DueAt             time.Time           `json:"due_at,omitzero"`
	Meter             string              `json:"meter,omitempty"`
	Threshold         int                 `json:"threshold,omitempty"`
	Used              int64               `json:"used,omitempty"`
	Limit             int64               `json:"limit,omitempty"`
	RefundRequestID   string              `json:"refund_request_id,omitempty"`
	AccountDeletionID string              `json:"account_deletion_id,omitempty"`
	AttemptID         string              `json:"attempt_id,omitempty"`
	UnappliedID       string              `json:"unapplied_id,omitempty"`
	PaymentMethod     string              `json:"payment_method,omitempty"`
}

// emit records ev, the event of the fact named by fact, in tx (the transaction of the
// change it reports) unless the fact's event exists, and then, when Config.OnEvent is set,
// inserts its delivery job in tx too. ev's ID and OccurredAt are set here; an empty
// CustomerID is read from the subscription. With OnEvent set and no River client the
// command fails (ErrNoRiverClient): an event that could never be delivered is not recorded
// silently.
func (e *Engine) emit(ctx context.Context, tx pgx.Tx, now time.Time, ev Event, fact ...string) error {
	ev.ID, ev.OccurredAt = eventID(ev.Kind, fact...), now
	data, err := json.Marshal(dataOf(ev))
	if err != nil {
		return err
	}
	isNew, err := store.InsertEvent(ctx, tx, store.EventRow{ID: ev.ID, Kind: string(ev.Kind), SubscriptionID: ev.SubscriptionID,
		CustomerID: ev.CustomerID, Subject: subjectOf(ev), OccurredAt: now, Data: data})
	if err != nil || !isNew || e.cfg.OnEvent == nil {
		return err
	}
	if _, err := e.riverClient(); err != nil {
		return fmt.Errorf("event %s (Config.OnEvent needs UseRiver): %w", ev.Kind, err)
	}
	return e.insertJobs(ctx, tx, river.InsertManyParams{Args: jobs.DeliverEventArgs{EventID: ev.ID}})
}

func dataOf(ev Event) eventData {
	return eventData{Period: ev.Period, PeriodEnd: ev.PeriodEnd, Tariff: ev.Tariff, Status: ev.Status, Reason: ev.Reason,
		Message: ev.Message, Hard: ev.Hard, Eligible: ev.Eligible, AmountMinor: ev.AmountMinor, Currency: ev.Currency,
		DueAt: ev.DueAt, Meter: ev.Meter, Threshold: ev.Threshold, Used: ev.Used, Limit: ev.Limit,
		RefundRequestID: ev.RefundRequestID, AccountDeletionID: ev.AccountDeletionID, AttemptID: ev.AttemptID,
		UnappliedID: ev.UnappliedID, PaymentMethod: ev.PaymentMethod}
}

// subjectOf is what the event is about besides its subscription, for the subject column.
func subjectOf(ev Event) string {
	switch {
	case ev.RefundRequestID != "":
		return "refund_request:" + ev.RefundRequestID
	case ev.AccountDeletionID != "":
		return "account_deletion:" + ev.AccountDeletionID
	case ev.UnappliedID != "":
		return "unapplied:" + ev.UnappliedID
	case ev.AttemptID != "":
		return "attempt:" + ev.AttemptID
	case ev.PaymentMethod != "":
		return "payment_method"
	}
	return ""
}

func eventOf(r store.EventRow) (Event, error) {
	var d eventData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return Event{}, fmt.Errorf("event %s: %w", r.ID, err)
	}
	return Event{ID: r.ID, Kind: EventKind(r.Kind), SubscriptionID: r.SubscriptionID, CustomerID: r.CustomerID,
		OccurredAt: r.OccurredAt, DeliveredAt: r.DeliveredAt, Period: d.Period, PeriodEnd: d.PeriodEnd, Tariff: d.Tariff,
		Status: d.Status, Reason: d.Reason, Message: d.Message, Hard: d.Hard, Eligible: d.Eligible,
		AmountMinor: d.AmountMinor, Currency: d.Currency, DueAt: d.DueAt, Meter: d.Meter, Threshold: d.Threshold,
		Used: d.Used, Limit: d.Limit, RefundRequestID: d.RefundRequestID, AccountDeletionID: d.AccountDeletionID,
		AttemptID: d.AttemptID, UnappliedID: d.UnappliedID, PaymentMethod: d.PaymentMethod}, nil
}

// emitTransition records the events a subscription's change from before to after reports
// (before is the zero Subscription for a new one), with audits, the transition's audit
// entries (the reason of an end). A period that starts gets its renewal notice job.
func (e *Engine) emitTransition(ctx context.Context, tx pgx.Tx, before, after subscription.Subscription,
	audits []subscription.AuditEntry, now time.Time) error {
	base := Event{SubscriptionID: after.ID, CustomerID: after.CustomerID}
	if before.ID == "" {
		ev := base
		ev.Kind, ev.Tariff, ev.Currency = EventSubscribed, after.Checkout.Code, after.Checkout.Currency
		ev.AmountMinor, _, _ = minorOf(after.Checkout)
		if err := e.emit(ctx, tx, now, ev, after.ID); err != nil {
			return err
		}
	}
	started := after.Current != nil && (before.Current == nil || after.Current.Number > before.Current.Number)
	if started {
		ev := base
		ev.Kind, ev.Period, ev.PeriodEnd, ev.Tariff = EventRenewed, after.Current.Number, after.Current.End, after.Current.Terms.Code
		ev.AmountMinor, _, _ = minorOf(after.Current.Terms)
		ev.Currency = after.Current.Terms.Currency
		fact := []string{after.ID, strconv.Itoa(after.Current.Number)}
		if after.Current.Number == 1 {
			ev.Kind, fact = EventActivated, fact[:1]
		}
		if err := e.emit(ctx, tx, now, ev, fact...); err != nil {
			return err
		}
		if err := e.scheduleRenewalNotice(ctx, tx, after, now); err != nil {
			return err
		}
	}
	if after.Status == subscription.StatusPastDue && before.Status != subscription.StatusPastDue && after.Current != nil {
		ev := base
		ev.Kind, ev.Period = EventPastDue, after.Current.Number+1
		if err := e.emit(ctx, tx, now, ev, after.ID, strconv.Itoa(ev.Period)); err != nil {
			return err
		}
	}
	if after.Status.Final() && !before.Status.Final() {
		ev := base
		ev.Kind, ev.Status = EventEnded, after.Status
		for _, a := range audits {
			if a.To != after.Status {
				continue
			}
			switch a.Action {
			case subscription.ActionEnd:
				ev.Reason = a.Reason
			case subscription.ActionFirstPaymentFailed:
				ev.Reason, ev.Message = EndFirstPaymentFailed, a.Reason
			case subscription.ActionTerminate:
				ev.Reason, ev.Message = EndTerminated, a.Reason
			case subscription.ActionRefund:
				ev.Reason, ev.Message = EndRefunded, a.Reason
			}
		}
		if err := e.emit(ctx, tx, now, ev, after.ID); err != nil {
			return err
		}
	}
	return nil
}

// scheduleRenewalNotice inserts, in tx, the job that makes the renewal upcoming event of
// sub's current period Config.RenewalNotice before its end (at once when that is past, as
// for a period shorter than the notice). Without River (a host that only meters usage), or
// with the notice off, nothing.
func (e *Engine) scheduleRenewalNotice(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, now time.Time) error {
	if _, err := e.riverClient(); err != nil || e.cfg.RenewalNotice < 0 {
		return nil
	}
	at := sub.Current.End.Add(-e.cfg.RenewalNotice)
	if at.Before(now) {
		at = now
	}
	return e.insertJobs(ctx, tx, river.InsertManyParams{Args: jobs.RenewalNoticeArgs{SubscriptionID: sub.ID, Period: sub.Current.Number},
		InsertOpts: &river.InsertOpts{ScheduledAt: at}})
}

// noticeRenewal is the renewal notice job's work: in one transaction, with the subscription
// locked, it records the renewal upcoming event of the period after period when the
// subscription will still renew it: period is still the current one and not over, the
// status renews (active or exhausted), auto-renew is on (TERMS 3.6), consent to charge the
// saved method stands, and the terms in force at the period end are not free. Run before
// its time (an operator extended the period), it returns a *jobs.NoticeEarlyError.
func (e *Engine) noticeRenewal(ctx context.Context, subID string, period int) error {
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.clock.Now()
		sub, err := store.LockSubscription(ctx, tx, subID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		cur := sub.Current
		switch {
		case cur == nil || cur.Number != period || !now.Before(cur.End):
			return nil // renewed, or the charge is due already: too late to tell
		case sub.Status != subscription.StatusActive && sub.Status != subscription.StatusExhausted:
			return nil
		case !sub.AutoRenew || sub.PaymentMethod == "":
			return nil
		}
		if due := cur.End.Add(-e.cfg.RenewalNotice); now.Before(due) && cur.Start.Before(due) {
			return &jobs.NoticeEarlyError{Wait: due.Sub(now)}
		}
		method, owner, err := store.PaymentMethod(ctx, tx, sub.PaymentMethod)
		if err != nil {
			return err
		}
		if (owner != "" && owner != sub.CustomerID) || payment.CanCharge(method, cur.End) != nil {
			return nil
		}
		versions, err := store.Versions(ctx, tx, sub.Checkout.Code)
		if err != nil {
			return err
		}
		terms, err := tariff.TermsForRenewal(cur.Terms, versions, cur.End)
		if err != nil || terms.IsFree() {
			return err
		}
		amount, _, err := minorOf(terms)
		if err != nil {
			return err
		}
		return e.emit(ctx, tx, now, Event{Kind: EventRenewalUpcoming, SubscriptionID: sub.ID, CustomerID: sub.CustomerID,
			Period: period + 1, DueAt: cur.End, Tariff: terms.Code, AmountMinor: amount, Currency: terms.Currency},
			sub.ID, strconv.Itoa(period+1))
	})
}

// emitDeclined records the payment declined event of attempt a when it just became
// declined (stored is the row before).
func (e *Engine) emitDeclined(ctx context.Context, tx pgx.Tx, sub subscription.Subscription, stored, a store.AttemptRow, now time.Time) error {
	if a.State == stored.State || (a.State != payment.StateSoftDeclined && a.State != payment.StateHardDeclined) {
		return nil
	}
	return e.emit(ctx, tx, now, Event{Kind: EventPaymentDeclined, SubscriptionID: sub.ID, CustomerID: sub.CustomerID,
		Period: a.PeriodNumber, AttemptID: a.ID, Hard: a.State == payment.StateHardDeclined, Reason: a.DeclineCode,
		Message: a.DeclineMessage, AmountMinor: a.Amount, Currency: a.Currency}, a.ID)
}

// emitUsage records the usage threshold events of a call that took meter's used volume
// of period from usedBefore to usedAfter, of limit: one per percentage of
// Config.UsageThresholds crossed. The caller checked the meter's limit is hard.
func (e *Engine) emitUsage(ctx context.Context, tx pgx.Tx, subID string, period int, meter string,
	usedBefore, usedAfter, limit int64, now time.Time) error {
	for _, pct := range e.cfg.UsageThresholds {
		p := int64(pct)
		if usedBefore*100 >= p*limit || usedAfter*100 < p*limit {
			continue
		}
		if err := e.emit(ctx, tx, now, Event{Kind: EventUsageThreshold, SubscriptionID: subID, Period: period,
			Meter: meter, Threshold: pct, Used: usedAfter, Limit: limit},
			subID, strconv.Itoa(period), meter, strconv.Itoa(pct)); err != nil {
			return err
		}
	}
	return nil
}

// crosses reports whether going from usedBefore to usedAfter of limit crosses one of the
// thresholds.
func (e *Engine) crosses(usedBefore, usedAfter, limit int64) bool {
	for _, pct := range e.cfg.UsageThresholds {
		if p := int64(pct); usedBefore*100 < p*limit && usedAfter*100 >= p*limit {
			return true
		}
	}
	return false
}

// consumeReporting is store.Consume, the statement that decides every call the common
// case left (store.ConsumeCrossing), in a transaction that also records the usage
// threshold events of a call that crossed one (alone on the pool, as before, when the
// thresholds are off).
func (e *Engine) consumeReporting(ctx context.Context, db dbtx, subID, key, meter string, quantity int64, now time.Time, auditID string) (store.ConsumeOutcome, error) {
	var o store.ConsumeOutcome
	if len(e.cfg.UsageThresholds) == 0 {
		err := statement(ctx, db, func(q store.Querier) (err error) {
			o, err = store.Consume(ctx, q, subID, key, meter, quantity, now, auditID)
			return err
		})
		return o, err
	}
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		var err error
		if o, err = store.Consume(ctx, tx, subID, key, meter, quantity, now, auditID); err != nil {
			return err
		}
		if !o.Applied || o.Replayed || !e.crosses(o.UsedAfter-quantity, o.UsedAfter, o.Quantity) {
			return nil
		}
		hard, err := store.MeterIsHard(ctx, tx, subID, o.Period, meter)
		if err != nil || !hard {
			return err
		}
		return e.emitUsage(ctx, tx, subID, o.Period, meter, o.UsedAfter-quantity, o.UsedAfter, o.Quantity, now)
	})
	return o, err
}

// emitCommitted records the usage threshold events of a reservation's resolution that
// changed the used volume of period's meters from before to after (ReservationCommit).
func (e *Engine) emitCommitted(ctx context.Context, tx pgx.Tx, subID string, before, after subscription.Period, now time.Time) error {
	if after.Terms.Options.SoftLimits {
		return nil
	}
	for meter, u := range after.Usage {
		l, ok := after.Terms.Limit(meter)
		if !ok || u.Used <= before.Usage[meter].Used {
			continue
		}
		if err := e.emitUsage(ctx, tx, subID, after.Number, meter, before.Usage[meter].Used, u.Used, l.Quantity, now); err != nil {
			return err
		}
	}
	return nil
}

// emitRefund records the event of kind about refund request row.
func (e *Engine) emitRefund(ctx context.Context, tx pgx.Tx, kind EventKind, row store.RefundRow, now time.Time) error {
	ev := Event{Kind: kind, SubscriptionID: row.SubscriptionID, Period: row.Period, RefundRequestID: row.ID,
		AmountMinor: row.AmountMinor, Currency: row.Currency}
	switch kind {
	case EventRefundRequested:
		ev.DueAt, ev.Eligible, ev.Message = row.PayoutDeadline, row.Eligible, row.Decision
	case EventRefundDueSoon:
		ev.DueAt = row.PayoutDeadline
	}
	return e.emit(ctx, tx, now, ev, row.ID)
}

// emitRefundMoved records the refund rejected event when an operator's event on a refund
// request rejected it (moveRefund); reason is what the customer was told.
func (e *Engine) emitRefundMoved(ctx context.Context, tx pgx.Tx, row store.RefundRow, event refund.Event, reason string, now time.Time) error {
	if event != refund.EventReject {
		return nil
	}
	ev := Event{Kind: EventRefundRejected, SubscriptionID: row.SubscriptionID, Period: row.Period, RefundRequestID: row.ID,
		AmountMinor: row.AmountMinor, Currency: row.Currency, Message: reason}
	return e.emit(ctx, tx, now, ev, row.ID)
}

// markRefundEscalated marks refund request id escalated at at and, in the same
// transaction, records its refund due soon event while it is still open.
func (e *Engine) markRefundEscalated(ctx context.Context, id string, at time.Time) error {
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		row, err := store.LockRefund(ctx, tx, id)
		if err != nil {
			return err
		}
		marked, err := store.MarkRefundEscalated(ctx, tx, id, at)
		if err != nil || !marked || refund.State(row.State).Final() {
			return err
		}
		return e.emitRefund(ctx, tx, EventRefundDueSoon, row, at)
	})
}

// markDeletionEscalated marks account deletion request id escalated at at and, in the same
// transaction, records its account deletion due soon event while it is not done.
func (e *Engine) markDeletionEscalated(ctx context.Context, id string, at time.Time) error {
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		row, err := store.LockDeletion(ctx, tx, id)
		if err != nil {
			return err
		}
		marked, err := store.MarkDeletionEscalated(ctx, tx, id, at)
		if err != nil || !marked || row.State == string(AccountDeletionDone) {
			return err
		}
		return e.emit(ctx, tx, at, Event{Kind: EventAccountDeletionDueSoon, CustomerID: row.CustomerID,
			AccountDeletionID: row.ID, DueAt: row.Deadline}, row.ID)
	})
}

// emitUnappliedRefunded records the event of unapplied payment u paid back.
func (e *Engine) emitUnappliedRefunded(ctx context.Context, tx pgx.Tx, u store.UnappliedRow, now time.Time) error {
	return e.emit(ctx, tx, now, Event{Kind: EventUnappliedRefunded, SubscriptionID: u.SubscriptionID, Period: u.Period,
		UnappliedID: u.ID, AttemptID: u.AttemptID, AmountMinor: u.AmountMinor, Currency: u.Currency}, u.ID)
}

// emitUnappliedParked records the parked event of unapplied payment u.
func (e *Engine) emitUnappliedParked(ctx context.Context, tx pgx.Tx, u store.UnappliedRow, now time.Time) error {
	return e.emit(ctx, tx, now, Event{Kind: EventParked, SubscriptionID: u.SubscriptionID, Period: u.Period,
		Reason: ParkedUnappliedRefund, Message: u.LastError, UnappliedID: u.ID, AttemptID: u.AttemptID,
		AmountMinor: u.AmountMinor, Currency: u.Currency}, ParkedUnappliedRefund, u.ID)
}

// noteCheck is store.NoteCheck of reconciliation's look at attempt a; when it parks the
// attempt (parkedAt set) its parked event is recorded in the same transaction.
func (e *Engine) noteCheck(ctx context.Context, a store.AttemptRow, failed bool, lastErr string, next, parkedAt time.Time) error {
	if parkedAt.IsZero() {
		return store.NoteCheck(ctx, e.pool, a.ID, failed, lastErr, next, parkedAt)
	}
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		if err := store.NoteCheck(ctx, tx, a.ID, failed, lastErr, next, parkedAt); err != nil {
			return err
		}
		return e.emit(ctx, tx, parkedAt, Event{Kind: EventParked, SubscriptionID: a.SubscriptionID, Period: a.PeriodNumber,
			Reason: ParkedChargeAttempt, Message: lastErr, AttemptID: a.ID, AmountMinor: a.Amount, Currency: a.Currency},
			ParkedChargeAttempt, a.ID)
	})
}

// emitConsentWithdrawn records customerID's withdrawal of consent on token.
func (e *Engine) emitConsentWithdrawn(ctx context.Context, tx pgx.Tx, customerID, token string, now time.Time) error {
	return e.emit(ctx, tx, now, Event{Kind: EventConsentWithdrawn, CustomerID: customerID, PaymentMethod: token},
		customerID, token)
}

// eventWorker is the engine side of the event workers (jobs.EventHandler): kept off
// Engine's exported methods, since only River calls it.
type eventWorker struct{ e *Engine }

// DeliverEvent hands event id to Config.OnEvent and marks it delivered when the handler
// returns nil. A delivered event, or one no handler waits for, is a no-op; the handler's
// error is returned, and River retries the job with backoff.
func (w eventWorker) DeliverEvent(ctx context.Context, id string) error {
	e := w.e
	h := e.cfg.OnEvent
	if h == nil {
		return nil
	}
	row, err := store.GetEvent(ctx, e.pool, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted since (retention)
	}
	if err != nil {
		return err
	}
	if !row.DeliveredAt.IsZero() {
		return nil
	}
	ev, err := eventOf(row)
	if err != nil {
		return err
	}
	if err := h(ctx, ev); err != nil {
		e.logger.WarnContext(ctx, "billing: Config.OnEvent failed; River retries it", "event", id, "kind", row.Kind, "error", err)
		return fmt.Errorf("billing: Config.OnEvent %s %s: %w", row.Kind, id, err)
	}
	return store.MarkEventDelivered(ctx, e.pool, id, e.clock.Now())
}

// NoticeRenewal is noticeRenewal.
func (w eventWorker) NoticeRenewal(ctx context.Context, subID string, period int) error {
	return w.e.noticeRenewal(ctx, subID, period)
}

// sweepEvents enqueues the delivery job of every undelivered event whose job River
// discarded (a handler that kept failing): delivery is at least once, so the sweep tries
// again. Nothing without Config.OnEvent.
func (e *Engine) sweepEvents(ctx context.Context) error {
	if e.cfg.OnEvent == nil {
		return nil
	}
	client, err := e.riverClient()
	if err != nil {
		return err
	}
	ids, err := store.UndeliveredWithoutJob(ctx, e.pool, e.riverSchema(), 1000)
	if err != nil {
		return err
	}
	return enqueueEach(ctx, client, "event", ids, func(id string) river.JobArgs { return jobs.DeliverEventArgs{EventID: id} })
}

// EventListParams selects events for Engine.EventList.
type EventListParams struct {
	// SubscriptionID keeps one subscription's events; empty keeps all.
	SubscriptionID string
	// CustomerID keeps one customer's events; empty keeps all.
	CustomerID string
	// Kind keeps one kind; empty keeps all.
	Kind EventKind
	// After is the ID of the last event of the previous page: the page starts after it.
	// Empty starts at the oldest event.
	After string
	// Limit is the most events returned. Defaults to 100; at most 1000.
	Limit int
}

// EventList returns the recorded events matching q, oldest first, a page at a time: pass the
// last event's ID as q.After for the next page. It reads what was recorded, delivered or
// not (Event.DeliveredAt). Trap: the order is the order events were written, which can
// differ from the order their transactions committed by a moment, so a page read while
// commands run can miss an event written just before it that commits later: it is for
// people and audits, not a cursor to consume events by (Config.OnEvent is that).
func (e *Engine) EventList(ctx context.Context, q EventListParams) (_ []Event, err error) {
	ctx, span := e.tel.start(ctx, "EventList")
	defer span.end(&err)
	check := inputCheck{op: "EventList"}
	if q.SubscriptionID != "" {
		check.id("SubscriptionID", q.SubscriptionID)
	}
	if q.After != "" {
		check.id("After", q.After)
	}
	if q.Kind != "" && !slices.Contains(EventKinds, q.Kind) {
		check.add("Kind", fmt.Sprintf("%q is not an event kind", q.Kind))
	}
	if q.Limit < 0 || q.Limit > 1000 {
		check.add("Limit", fmt.Sprintf("%d: from 1 to 1000, or 0 for 100", q.Limit))
	}
	if err := check.err(); err != nil {
		return nil, err
	}
	f := store.EventFilter{SubscriptionID: q.SubscriptionID, CustomerID: q.CustomerID, Kind: string(q.Kind), Limit: q.Limit}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if q.After != "" {
		seq, err := store.EventSeq(ctx, e.pool, q.After)
		if err != nil {
			return nil, opError("EventList", err)
		}
		f.AfterSeq = seq
	}
	rows, err := store.ListEvents(ctx, e.pool, f)
	if err != nil {
		return nil, opError("EventList", err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		if out[i], err = eventOf(r); err != nil {
			return nil, opError("EventList", err)
		}
	}
	return out, nil
}
