package subscription

import "slices"

// Status is where a subscription is in its life. The values are stored: never rename one.
// The zero value "" is not a status; functions refuse it with a *ValidationError.
type Status string

// The statuses. Only StatusActive grants access; the final ones (ended, refunded,
// terminated) accept no further event.
const (
	// StatusPending is a subscription created at checkout whose first charge has not
	// succeeded yet: no period, no access (TERMS 3.3).
	StatusPending Status = "pending"
	// StatusActive has a paid period and gives access until its end, unless a hard limit
	// is used up first (TERMS 3.1).
	StatusActive Status = "active"
	// StatusExhausted has a paid period whose hard limit is used up: no access until the
	// period ends and renews (TERMS 3.1).
	StatusExhausted Status = "exhausted"
	// StatusPastDue is past its period end with the renewal charge softly declined: no
	// access while the payment package retries (dunning).
	StatusPastDue Status = "past_due"
	// StatusEnded is over: auto-renew was off at the period end (TERMS 3.6), the renewal
	// was declined for good, or the first charge failed. Final.
	StatusEnded Status = "ended"
	// StatusRefunded had its payment refunded (TERMS 3.7); access ended then. Final.
	StatusRefunded Status = "refunded"
	// StatusSuspended was suspended by the operator (TERMS 2.1.2): no access until Resume
	// returns it to the status it was suspended from (Subscription.SuspendedFrom).
	StatusSuspended Status = "suspended"
	// StatusTerminated was ended by the operator (TERMS 2.1.2). Final.
	StatusTerminated Status = "terminated"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusActive, StatusExhausted, StatusPastDue,
		StatusEnded, StatusRefunded, StatusSuspended, StatusTerminated:
		return true
	}
	return false
}

// Final reports whether s accepts no further event: ended, refunded or terminated.
func (s Status) Final() bool {
	return s == StatusEnded || s == StatusRefunded || s == StatusTerminated
}

// Allows reports whether an event is allowed from status s (the table in the package
// documentation). A transition may still refuse an allowed event for its instant
// (ErrPeriodNotOver, ErrPeriodOver) or its parameters. A UI can use it to show only the
// buttons that can work.
func (s Status) Allows(a Action) bool {
	return slices.Contains(allowedFrom[a], s)
}

// hasPeriod reports whether a subscription in status s must have a current period.
// Pending has none; ended and terminated have one unless they came from pending.
func (s Status) hasPeriod() bool {
	switch s {
	case StatusActive, StatusExhausted, StatusPastDue, StatusRefunded, StatusSuspended:
		return true
	}
	return false
}

// Action names an event in the audit log and in a *TransitionError. The values are
// stored: never rename one.
type Action string

// The actions, one per transition function.
const (
	ActionCreate             Action = "create"
	ActionActivate           Action = "activate"
	ActionFirstPaymentFailed Action = "first_payment_failed"
	ActionRenew              Action = "renew"
	ActionMarkPastDue        Action = "mark_past_due"
	ActionEnd                Action = "end"
	ActionExhaust            Action = "exhaust"
	ActionRefund             Action = "refund"
	ActionSuspend            Action = "suspend"
	ActionResume             Action = "resume"
	ActionTerminate          Action = "terminate"
	ActionExtendPeriod       Action = "extend_period"
	ActionSetAutoRenew       Action = "set_auto_renew"
	ActionWithdrawConsent    Action = "withdraw_consent"
)

// open lists the statuses that are not final: the customer may switch auto-renew or
// withdraw consent in any of them (TERMS 3.6), and the operator may terminate.
var open = []Status{StatusPending, StatusActive, StatusExhausted, StatusPastDue, StatusSuspended}

// allowedFrom is the transition table of the package documentation. It never changes.
var allowedFrom = map[Action][]Status{
	ActionActivate:           {StatusPending},
	ActionFirstPaymentFailed: {StatusPending},
	ActionRenew:              {StatusActive, StatusExhausted, StatusPastDue},
	ActionMarkPastDue:        {StatusActive, StatusExhausted},
	ActionEnd:                {StatusActive, StatusExhausted, StatusPastDue},
	ActionExhaust:            {StatusActive},
	ActionRefund:             {StatusActive, StatusExhausted, StatusPastDue, StatusSuspended},
	ActionSuspend:            {StatusActive, StatusExhausted, StatusPastDue},
	ActionResume:             {StatusSuspended},
	ActionTerminate:          open,
	ActionExtendPeriod:       {StatusActive, StatusExhausted, StatusSuspended},
	ActionSetAutoRenew:       open,
	ActionWithdrawConsent:    open,
}
