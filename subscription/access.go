package subscription

import "time"

// Reason says why a subscription gives no access. The values are stable: hosts map them
// to their own messages.
type Reason string

// The reasons Access gives. ReasonNone is the Reason of a granted Decision.
const (
	ReasonNone Reason = ""
	// ReasonNotPaid: the first charge has not succeeded yet (TERMS 3.3).
	ReasonNotPaid Reason = "not_paid"
	// ReasonUsedUp: a hard limit of the period is used up before its end (TERMS 3.1).
	ReasonUsedUp Reason = "used_up"
	// ReasonExpired: the period is over and the next one is not paid yet (TERMS 3.1,
	// 3.3). Usually brief: the renewal charge runs at the period end.
	ReasonExpired Reason = "expired"
	// ReasonPastDue: the renewal charge was declined and is being retried.
	ReasonPastDue Reason = "past_due"
	// ReasonSuspended: the operator suspended the user (TERMS 2.1.2).
	ReasonSuspended Reason = "suspended"
	// ReasonTerminated: the operator ended the subscription (TERMS 2.1.2).
	ReasonTerminated Reason = "terminated"
	// ReasonRefunded: the payment was refunded (TERMS 3.7).
	ReasonRefunded Reason = "refunded"
	// ReasonEnded: the subscription ended (auto-renew off, renewal declined for good,
	// first charge failed).
	ReasonEnded Reason = "ended"
	// ReasonInvalidState: the stored subscription is corrupt (unknown status, or no
	// period where one is needed). Access is refused rather than guessed.
	ReasonInvalidState Reason = "invalid_state"
)

// Decision is the answer of Access.
type Decision struct {
	// Granted is true when the subscription gives access at the instant asked about.
	Granted bool
	// Reason says why not; ReasonNone when Granted.
	Reason Reason
	// EndsAt is, when Granted, the period end: the latest instant access lasts. A hard
	// limit may end it sooner (TERMS 3.1). Zero when not Granted.
	EndsAt time.Time
}

// Err returns nil when d is granted, else a *NoAccessError with d's Reason, which matches
// ErrNoAccess: what the engine returns from Consume and Reserve outside access.
func (d Decision) Err() error {
	if d.Granted {
		return nil
	}
	return &NoAccessError{Reason: d.Reason}
}

// Access decides whether sub gives access at now: its status grants access (only
// StatusActive does), now < Current.End, and every hard limit of the period has volume
// left, whichever fails first (TERMS 3.1, 3.3). Soft limits never refuse access. An
// active subscription both over its end and used up says ReasonExpired. Access never
// fails: a corrupt subscription is refused with ReasonInvalidState.
func Access(sub Subscription, now time.Time) Decision {
	switch sub.Status {
	case StatusActive:
		if sub.Current == nil {
			return refused(ReasonInvalidState)
		}
		if !now.Before(sub.Current.End) {
			return refused(ReasonExpired)
		}
		if ShouldExhaust(*sub.Current) {
			return refused(ReasonUsedUp)
		}
		return Decision{Granted: true, EndsAt: sub.Current.End}
	case StatusPending:
		return refused(ReasonNotPaid)
	case StatusExhausted:
		return refused(ReasonUsedUp)
	case StatusPastDue:
		return refused(ReasonPastDue)
	case StatusSuspended:
		return refused(ReasonSuspended)
	case StatusTerminated:
		return refused(ReasonTerminated)
	case StatusRefunded:
		return refused(ReasonRefunded)
	case StatusEnded:
		return refused(ReasonEnded)
	}
	return refused(ReasonInvalidState)
}

// AccessEndsAt returns when access to the current period ends or ended, as far as is
// known: the period end, or sooner when the volume was used up (ExhaustedAt), or the
// payment refunded or the subscription terminated (EndedAt), whichever came first
// (TERMS 3.1). A suspension is a pause, not an end: a suspended subscription says its
// period end. ok is false when access was never granted: pending, or ended or terminated
// before any period.
func AccessEndsAt(sub Subscription) (endsAt time.Time, ok bool) {
	p := sub.Current
	if p == nil {
		return time.Time{}, false
	}
	endsAt = p.End
	if !p.ExhaustedAt.IsZero() && p.ExhaustedAt.Before(endsAt) {
		endsAt = p.ExhaustedAt
	}
	if (sub.Status == StatusRefunded || sub.Status == StatusTerminated) &&
		!sub.EndedAt.IsZero() && sub.EndedAt.Before(endsAt) {
		endsAt = sub.EndedAt
	}
	return endsAt, true
}

func refused(r Reason) Decision { return Decision{Reason: r} }
