package subscription

import "time"

// RenewalAction is what DecideRenewal says the renewal job should do.
type RenewalAction string

// The renewal actions.
const (
	// RenewalNone: nothing to do, and nothing to schedule. The subscription is
	// pending, final, or suspended (no charge while the operator holds it; decide
	// again after Resume).
	RenewalNone RenewalAction = "none"
	// RenewalWait: the period still runs; run again at RenewalDecision.At (the period
	// end, which ExtendPeriod may have moved since the job was scheduled).
	RenewalWait RenewalAction = "wait"
	// RenewalCharge: charge the saved payment method for period RenewalDecision.Period,
	// then call Renew on success, MarkPastDue on a soft decline, or End on a hard one.
	// For a past_due subscription, when to retry is the payment package's dunning
	// schedule.
	RenewalCharge RenewalAction = "charge"
	// RenewalEnd: no charge is due; call End with RenewalDecision.EndReason.
	RenewalEnd RenewalAction = "end"
)

// RenewalDecision is the answer of DecideRenewal.
type RenewalDecision struct {
	// Action is what to do.
	Action RenewalAction
	// At is when: the period end for RenewalWait and for RenewalEnd and RenewalCharge at
	// the period end; the instant the volume ran out for an early renewal. Zero for
	// RenewalNone.
	At time.Time
	// Period is the number of the period to charge for (Current.Number+1) with
	// RenewalCharge: the key under which at most one charge may succeed.
	Period int
	// EndReason is the reason to pass to End with RenewalEnd.
	EndReason EndReason
}

// DecideRenewal says what the renewal job of sub should do at now (TERMS 3.5, 3.6). It
// reads AutoRenew and PaymentMethod at the instant the job runs, so switching auto-renew
// off or withdrawing consent stops a charge already queued. An exhausted period whose
// terms set RenewWhenExhausted renews at once instead of waiting for its end. It never
// fails: a corrupt subscription gets RenewalNone, and the transitions will report it.
func DecideRenewal(sub Subscription, now time.Time) RenewalDecision {
	p := sub.Current
	switch {
	case p == nil:
		return RenewalDecision{Action: RenewalNone}
	case sub.Status == StatusActive || sub.Status == StatusExhausted || sub.Status == StatusPastDue:
	default:
		return RenewalDecision{Action: RenewalNone}
	}
	at := p.End
	if now.Before(p.End) {
		if !(sub.AutoRenew && sub.PaymentMethod != "" && renewsWhenExhausted(sub)) {
			return RenewalDecision{Action: RenewalWait, At: p.End}
		}
		at = p.ExhaustedAt
		if at.IsZero() || at.After(now) {
			at = now
		}
	}
	switch {
	case !sub.AutoRenew:
		return RenewalDecision{Action: RenewalEnd, At: at, EndReason: EndAutoRenewOff}
	case sub.PaymentMethod == "":
		return RenewalDecision{Action: RenewalEnd, At: at, EndReason: EndNoPaymentMethod}
	}
	return RenewalDecision{Action: RenewalCharge, At: at, Period: p.Number + 1}
}
