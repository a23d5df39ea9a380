package subscription

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smm-gpt/billing/tariff"
)

// Every transition below takes the subscription, the event's parameters and the instant
// now, and returns the new subscription with its audit entry. On error it returns its
// argument unchanged, an empty AuditEntry and one of: *TransitionError (the status or the
// instant does not allow the event), *ValidationError (a bad parameter or a corrupt stored
// field), or a sentinel named in the function's comment. The engine stores nothing then.

// ActivateParams are the inputs of Activate.
type ActivateParams struct {
	// Start and End bound period 1, computed by the caller from Checkout.Period in the
	// subscription's location. Start is usually the instant the charge succeeded. End
	// must be after Start and after now.
	Start, End time.Time
	// PaymentMethod is the gateway token the first charge saved, if any; empty keeps
	// the subscription's current one.
	PaymentMethod string
}

// Activate records the first successful charge (TERMS 3.3): it starts period 1 under the
// Checkout terms, exactly as shown at checkout (TERMS 3.4), grants access and moves
// pending → active. GrantedAt is the later of Start and now, so a late activation opens
// the refund window late too (TERMS 3.7).
func Activate(sub Subscription, p ActivateParams, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(
		check(sub, ActionActivate, now),
		checkBounds(p.Start, p.End, now),
		checkPaymentMethod(p.PaymentMethod),
		checkTerms("checkout", sub.Checkout),
	); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	if p.PaymentMethod != "" {
		sub.PaymentMethod = p.PaymentMethod
	}
	sub.Current = newPeriod(1, sub.Checkout, p.Start, p.End, now)
	sub.Status = StatusActive
	return sub, record(before, sub, ActionActivate, ActorSystem, "first charge succeeded",
		describePeriod(sub.Current), now), nil
}

// FirstPaymentFailed records that the first charge failed or was abandoned: pending →
// ended, without access ever granted. reason is the gateway's or the host's words; it
// may be empty.
func FirstPaymentFailed(sub Subscription, reason string, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionFirstPaymentFailed, now), checkLength("reason", reason)); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	finish(&sub, StatusEnded, now)
	return sub, record(before, sub, ActionFirstPaymentFailed, ActorSystem, reason, "", now), nil
}

// RenewParams are the inputs of Renew.
type RenewParams struct {
	// Terms are the terms the renewal charge was made at: the tariff's version chosen
	// for this renewal, not necessarily Checkout's (TERMS 2.1.6). Its Code must be
	// Checkout.Code.
	Terms tariff.Terms
	// Start and End bound the new period. Start may not fall inside the paid period
	// (Start ≥ Current.End), except for an early renewal of an exhausted period (see
	// Renew). End must be after Start and after now: a period over before it is paid
	// would take money for no access.
	Start, End time.Time
}

// Renew records a successful renewal charge (TERMS 3.5): it starts period Number+1 under
// p.Terms and moves active, exhausted or past_due → active with fresh usage. It is
// allowed once the current period is over, or earlier for an exhausted period whose
// terms set RenewWhenExhausted; otherwise the cause is ErrPeriodNotOver.
//
// Renew does not look at AutoRenew: the engine only starts a renewal charge when
// DecideRenewal says so, and a charge that succeeded after the customer switched
// auto-renew off while it was in flight must still give the period it paid for (the
// customer may then ask for the refund of TERMS 3.7). Open reservations of the old
// period stay there: they are resolved against the period they were made in.
func Renew(sub Subscription, p RenewParams, now time.Time) (Subscription, AuditEntry, error) {
	if err := check(sub, ActionRenew, now); err != nil {
		return sub, AuditEntry{}, err
	}
	cur := sub.Current
	early := now.Before(cur.End)
	if early && !renewsWhenExhausted(sub) {
		return sub, AuditEntry{}, &TransitionError{From: sub.Status, Event: ActionRenew, Cause: ErrPeriodNotOver}
	}
	err := firstError(checkTerms("terms", p.Terms), checkBounds(p.Start, p.End, now))
	switch {
	case err != nil:
	case p.Terms.Code != sub.Checkout.Code:
		err = invalid("terms.code", fmt.Sprintf("%q is not the subscription's tariff %q", p.Terms.Code, sub.Checkout.Code))
	case early && p.Start.Before(cur.Start):
		err = invalid("start", "before the start of the exhausted period it replaces")
	case !early && p.Start.Before(cur.End):
		err = invalid("start", "inside the paid period ending "+cur.End.Format(time.RFC3339))
	}
	if err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	sub.Current = newPeriod(cur.Number+1, p.Terms, p.Start, p.End, now)
	sub.Status = StatusActive
	return sub, record(before, sub, ActionRenew, ActorSystem, "renewal charge succeeded",
		describePeriod(sub.Current), now), nil
}

// MarkPastDue records a soft decline of the renewal charge: active or exhausted →
// past_due, without access, while the payment package retries on its dunning schedule.
// Refused before the period end (ErrPeriodNotOver): a decline never cuts a paid period
// short, and an early renewal declined leaves the period exhausted until its end.
func MarkPastDue(sub Subscription, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionMarkPastDue, now), requireOver(sub, ActionMarkPastDue, now)); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	sub.Status = StatusPastDue
	return sub, record(before, sub, ActionMarkPastDue, ActorSystem, "renewal charge declined", "", now), nil
}

// EndReason says why a paid subscription ended at its period end. The values are stored
// in the audit log: never rename one.
type EndReason string

// The reasons End accepts.
const (
	// EndAutoRenewOff: the period ended with auto-renew off (TERMS 3.6). Requires
	// AutoRenew false.
	EndAutoRenewOff EndReason = "auto_renew_off"
	// EndNoPaymentMethod: the period ended with no saved payment method to charge.
	// Requires PaymentMethod empty.
	EndNoPaymentMethod EndReason = "no_payment_method"
	// EndHardDecline: the gateway declined the renewal for good (card revoked, blocked):
	// never retried.
	EndHardDecline EndReason = "hard_decline"
	// EndConsentWithdrawn: the customer withdrew consent to charges on the saved card
	// (law of 1 March 2026): no charge from then on.
	EndConsentWithdrawn EndReason = "consent_withdrawn"
	// EndDunningExhausted: every retry of a soft decline failed. Only from past_due.
	EndDunningExhausted EndReason = "dunning_exhausted"
	// EndPaymentMethodRefused: the saved payment method may not be charged for this
	// customer (it is bound to another customer): never charged.
	EndPaymentMethodRefused EndReason = "payment_method_refused"
)

// End ends a paid subscription at or after its period end: active, exhausted or past_due
// → ended, for reason. Before the period end the cause is ErrPeriodNotOver: the paid
// period runs to its end whatever happens to the next charge (TERMS 3.6). To stop access
// sooner the operator uses Refund or Terminate. AutoRenew becomes false.
func End(sub Subscription, reason EndReason, now time.Time) (Subscription, AuditEntry, error) {
	if err := check(sub, ActionEnd, now); err != nil {
		return sub, AuditEntry{}, err
	}
	var err error
	switch reason {
	case EndHardDecline, EndConsentWithdrawn, EndPaymentMethodRefused:
	case EndAutoRenewOff:
		if sub.AutoRenew {
			err = invalid("reason", "auto_renew_off while auto-renew is on")
		}
	case EndNoPaymentMethod:
		if sub.PaymentMethod != "" {
			err = invalid("reason", "no_payment_method while a payment method is saved")
		}
	case EndDunningExhausted:
		if sub.Status != StatusPastDue {
			err = &TransitionError{From: sub.Status, Event: ActionEnd}
		}
	default:
		err = invalid("reason", fmt.Sprintf("unknown end reason %q", reason))
	}
	if err = firstError(err, requireOver(sub, ActionEnd, now)); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	finish(&sub, StatusEnded, now)
	return sub, record(before, sub, ActionEnd, ActorSystem, string(reason), "", now), nil
}

// Exhaust records that a hard limit of the current period is used up (TERMS 3.1):
// active → exhausted, no access until the period ends and renews. The engine calls it in
// the same transaction as the Consume or Commit that made ShouldExhaust true. It returns
// ErrNotExhausted when no hard limit is used up, since exhausting then would cut access
// the customer paid for.
func Exhaust(sub Subscription, now time.Time) (Subscription, AuditEntry, error) {
	if err := check(sub, ActionExhaust, now); err != nil {
		return sub, AuditEntry{}, err
	}
	meters := usedUpMeters(*sub.Current)
	if len(meters) == 0 {
		return sub, AuditEntry{}, ErrNotExhausted
	}
	before := sub
	period := *sub.Current
	period.ExhaustedAt = now
	sub.Current = &period
	sub.Status = StatusExhausted
	return sub, record(before, sub, ActionExhaust, ActorSystem, "volume used up",
		"meters: "+strings.Join(meters, ", "), now), nil
}

// Refund records that the period's payment was refunded (TERMS 3.7, or a pro-rata refund
// decided by a person): active, exhausted, past_due or suspended → refunded. Access ends
// at now and nothing is charged again. Whether a refund is due, and how much, is the
// refund package's decision.
func Refund(sub Subscription, a AdminAction, now time.Time) (Subscription, AuditEntry, error) {
	return finishByOperator(sub, ActionRefund, StatusRefunded, a, now)
}

// Suspend is the operator limiting a user's access (TERMS 2.1.2): active, exhausted or
// past_due → suspended, with no access until Resume. The status it came from is kept in
// SuspendedFrom. The period end does not move: time suspended is not given back unless
// the operator extends the period (ExtendPeriod).
func Suspend(sub Subscription, a AdminAction, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionSuspend, now), a.check()); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	sub.SuspendedFrom, sub.Status = sub.Status, StatusSuspended
	return sub, record(before, sub, ActionSuspend, a.Actor, a.Reason, "", now), nil
}

// Resume lifts a suspension: suspended → the status in SuspendedFrom. If the period
// ended meanwhile, Access says expired and DecideRenewal says what is due. If it was
// active and a hard limit was used up meanwhile (a reservation committed while
// suspended), it resumes exhausted, the period stamped now (TERMS 3.1): an active status
// always has volume left.
func Resume(sub Subscription, a AdminAction, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionResume, now), a.check()); err != nil {
		return sub, AuditEntry{}, err
	}
	if !slices.Contains(allowedFrom[ActionSuspend], sub.SuspendedFrom) {
		return sub, AuditEntry{}, invalid("suspended_from", fmt.Sprintf("%q is not a status a suspension comes from", sub.SuspendedFrom))
	}
	before := sub
	sub.Status, sub.SuspendedFrom = sub.SuspendedFrom, ""
	detail := ""
	if sub.Status == StatusActive && sub.Current != nil {
		if meters := usedUpMeters(*sub.Current); len(meters) > 0 {
			period := *sub.Current
			if period.ExhaustedAt.IsZero() {
				period.ExhaustedAt = now
			}
			sub.Current = &period
			sub.Status = StatusExhausted
			detail = "used up while suspended: " + strings.Join(meters, ", ")
		}
	}
	return sub, record(before, sub, ActionResume, a.Actor, a.Reason, detail, now), nil
}

// Terminate is the operator ending a user's access for good (TERMS 2.1.2): any status
// that is not final → terminated, with no access and no further charge. It refunds
// nothing by itself; a refund is a separate decision.
func Terminate(sub Subscription, a AdminAction, now time.Time) (Subscription, AuditEntry, error) {
	return finishByOperator(sub, ActionTerminate, StatusTerminated, a, now)
}

// ExtendPeriod is the operator moving the current period's end later by hand, e.g. to
// make up for maintenance (TERMS 2.1.4, 2.1.5; there is no automatic compensation). It is
// allowed while active, exhausted or suspended, and only while the period runs (else the
// cause is ErrPeriodOver: its renewal may be under way, extend the next period instead).
// newEnd must be after the current end: a paid period is never shortened. The terms and
// usage do not change; an exhausted period gains time, not volume.
func ExtendPeriod(sub Subscription, a AdminAction, newEnd, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionExtendPeriod, now), a.check()); err != nil {
		return sub, AuditEntry{}, err
	}
	cur := sub.Current
	if !now.Before(cur.End) {
		return sub, AuditEntry{}, &TransitionError{From: sub.Status, Event: ActionExtendPeriod, Cause: ErrPeriodOver}
	}
	if !newEnd.After(cur.End) {
		return sub, AuditEntry{}, invalid("end", "must be after the current end "+cur.End.Format(time.RFC3339))
	}
	before := sub
	period := *cur
	period.End = newEnd
	sub.Current = &period
	return sub, record(before, sub, ActionExtendPeriod, a.Actor, a.Reason,
		fmt.Sprintf("period %d end %s → %s", period.Number, cur.End.Format(time.RFC3339), newEnd.Format(time.RFC3339)), now), nil
}

// SetAutoRenew switches auto-renewal on or off (TERMS 3.6) in any status that is not
// final; the status does not change. Off means no further charge and the paid period runs
// to its end, when DecideRenewal says to End it. actor is who switched it (the customer,
// or an operator); it is required. Setting the value it already has is allowed and
// audited.
func SetAutoRenew(sub Subscription, on bool, actor string, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionSetAutoRenew, now), checkText("actor", actor)); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	sub.AutoRenew = on
	return sub, record(before, sub, ActionSetAutoRenew, actor, "", fmt.Sprintf("auto_renew=%t", on), now), nil
}

// WithdrawConsent records that the customer withdrew consent to charges on the saved
// payment method (law of 1 March 2026): it forgets the token and switches auto-renew off
// at once, in any status that is not final, so no charge can follow, even for a renewal
// already queued. The paid period runs to its end.
func WithdrawConsent(sub Subscription, actor string, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, ActionWithdrawConsent, now), checkText("actor", actor)); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	sub.AutoRenew, sub.PaymentMethod = false, ""
	return sub, record(before, sub, ActionWithdrawConsent, actor, "", "", now), nil
}

// check refuses a zero now, a corrupt status, an event the status does not allow, and a
// status that needs a period without one; in that order.
func check(sub Subscription, a Action, now time.Time) error {
	if err := checkNow(now); err != nil {
		return err
	}
	if !sub.Status.Valid() {
		return invalid("status", fmt.Sprintf("unknown status %q", sub.Status))
	}
	if !sub.Status.Allows(a) {
		return &TransitionError{From: sub.Status, Event: a}
	}
	if sub.Status.hasPeriod() && sub.Current == nil {
		return invalid("current", "no period in status "+string(sub.Status))
	}
	return nil
}

// requireOver refuses an event before the current period's end.
func requireOver(sub Subscription, a Action, now time.Time) error {
	if sub.Current != nil && now.Before(sub.Current.End) {
		return &TransitionError{From: sub.Status, Event: a, Cause: ErrPeriodNotOver}
	}
	return nil
}

// checkBounds requires start < end and end > now.
func checkBounds(start, end, now time.Time) error {
	switch {
	case start.IsZero():
		return invalid("start", "required")
	case !end.After(start):
		return invalid("end", "must be after start")
	case !end.After(now):
		return invalid("end", "already passed: the period would give no access")
	}
	return nil
}

// finishByOperator moves sub to a final status on an operator's action.
func finishByOperator(sub Subscription, a Action, to Status, by AdminAction, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(check(sub, a, now), by.check()); err != nil {
		return sub, AuditEntry{}, err
	}
	before := sub
	finish(&sub, to, now)
	return sub, record(before, sub, a, by.Actor, by.Reason, "", now), nil
}

// finish puts sub in the final status to: no further charge, nothing to resume.
func finish(sub *Subscription, to Status, now time.Time) {
	sub.Status, sub.EndedAt, sub.AutoRenew, sub.SuspendedFrom = to, now, false, ""
}

// renewsWhenExhausted reports whether sub may renew before its period end: its volume is
// used up and its terms ask for an immediate renewal (tariff.Options.RenewWhenExhausted).
func renewsWhenExhausted(sub Subscription) bool {
	return sub.Status == StatusExhausted && sub.Current.Terms.Options.RenewWhenExhausted
}

func describePeriod(p *Period) string {
	return fmt.Sprintf("period %d [%s, %s) tariff %s v%d", p.Number,
		p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), p.Terms.Code, p.Terms.Version)
}
