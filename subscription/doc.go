// Package subscription owns the life of one prepaid subscription: its status, its paid
// periods, whether it gives access at an instant, and the usage counted against the
// volumes of the period. It is pure: every function takes the time as a parameter and
// returns a new value, never reads the clock, never does I/O, and never changes its
// arguments. The engine locks the rows, calls a function here, and stores what it
// returns (the new Subscription or Period, the AuditEntry) in one transaction.
//
// # Invariants
//
//   - No access before a successful charge (TERMS 3.3): a pending subscription has no
//     period and Access refuses it with ReasonNotPaid. Only Activate and Renew, which
//     the engine calls after a charge succeeded, start a period.
//   - Whichever first (TERMS 3.1): access ends at the period end or when a hard limit is
//     used up, whichever comes first. Access(now) = the status grants access (only
//     StatusActive does) ∧ now < Current.End ∧ every hard limit has volume left. Soft
//     limits (tariff.Options.SoftLimits) never cut access.
//   - A period's Terms never change (TERMS 2.1.6, 3.2): a period is created with the terms
//     its charge was made at and no function here writes them again. Only the period end
//     moves, and only forward, by an audited ExtendPeriod (TERMS 2.1.4, 2.1.5).
//   - A paid period runs to its end (TERMS 3.6, 2.1.6): MarkPastDue and End are refused
//     before Current.End; only Refund, Terminate, Suspend or a used-up hard limit end
//     access sooner.
//   - Usage never exceeds a hard limit: Consume and Reserve are all or nothing and refuse
//     a quantity with Used + Reserved + quantity > Limit.Quantity. A reservation resolves
//     at most once (committed, released or expired), and Commit settles at most the
//     reserved quantity, so Used + Reserved of a meter only grows by what was checked.
//   - Every transition is total: an event the status allows returns the new Subscription
//     and an AuditEntry; any other returns a *TransitionError (errors.Is
//     ErrTransitionNotAllowed) and changes nothing. Bad parameters return a
//     *ValidationError (errors.Is ErrInvalid). No input makes a function panic.
//   - Final statuses (ended, refunded, terminated) accept no event. A refund of money
//     after a subscription has ended is the refund package's business; it does not
//     change the subscription.
//
// # Transitions
//
// The statuses each event is allowed from ([Status.Allows]); anything else is a
// *TransitionError:
//
//	New                 → pending
//	Activate            pending                               → active     (first charge succeeded)
//	FirstPaymentFailed  pending                               → ended
//	Renew               active, exhausted, past_due           → active     (renewal charge succeeded)
//	MarkPastDue         active, exhausted                     → past_due   (soft decline, after the period end)
//	End                 active, exhausted, past_due           → ended      (after the period end)
//	Exhaust             active                                → exhausted  (a hard limit used up)
//	Refund              active, exhausted, past_due, suspended → refunded
//	Suspend             active, exhausted, past_due           → suspended  (operator, TERMS 2.1.2)
//	Resume              suspended                             → the status it was suspended from
//	Terminate           pending, active, exhausted, past_due, suspended → terminated (operator)
//	ExtendPeriod        active, exhausted, suspended          → same status, later period end (operator)
//	SetAutoRenew        pending, active, exhausted, past_due, suspended → same status (TERMS 3.6)
//	WithdrawConsent     pending, active, exhausted, past_due, suspended → same status, no payment method
//
// The "renewing" step of DESIGN.md is not a status: between the period end and the
// renewal charge's outcome the subscription stays active (or exhausted) and Access
// already refuses it with ReasonExpired, since the new period is not paid yet (TERMS 3.3).
// DecideRenewal tells the renewal job what is due.
//
// # Usage and reservations
//
// Consume counts a known quantity at once. For an AI call whose cost is known only
// afterwards, Reserve holds volume (it counts against the limit), then Commit settles the
// actual amount (at most the reserved one) and frees the rest, Release frees it all, and
// Expire frees it all once its ExpiresAt has passed. When Consume or Commit makes
// ShouldExhaust true, the caller calls Exhaust in the same transaction.
package subscription
