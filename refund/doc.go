// Package refund owns the rules for giving money back: whether a refund request
// qualifies for the full refund of TERMS 3.7, the pro-rata amount a person may decide
// under consumer protection law art. 32, the deadlines that run from a request (payout
// 3.8, account deletion 2.2.4, claims 6.2), and the life of a refund request.
//
// The package is pure: every instant is a parameter, it does no I/O, reads no clock and
// logs nothing. It knows nothing of subscriptions; the engine copies the facts of a paid
// period into a Period and calls Eligibility or ProRata with them.
//
// Invariants:
//   - A full refund under TERMS 3.7 is Eligible only when all three hold: the request
//     was received before 24:00 (in the subscription's location) of the 5th working
//     day after the day access was actually granted (the day after the grant is day 1,
//     Civil Code art. 191; a late grant through the operator's fault counts from the
//     late grant), no volume of the period was consumed or committed, and no
//     reservation is open. Unless Options.FirstPeriodOnly is set, renewed periods
//     qualify like the first one. A Decision names every condition that failed, not
//     only the first.
//   - Eligibility is decided at the instant the request was received, never at the
//     instant it is processed: the same inputs always give the same Decision.
//   - A pro-rata amount (ProRata) is a suggestion for a person to decide, never paid
//     automatically. It is exact in minor units: it lies between 0 and the price, never
//     more than the unused share of the price, and the fraction of a minor unit is
//     rounded down.
//   - Deadlines are computed on a calendar.BusinessCalendar: the last day (art. 191,
//     193) and the instant 24:00 of that day in the location (art. 194).
//   - A request moves only along received → verified → executing → refunded, with
//     executing → failed → executing for a retry and received/verified → rejected;
//     refunded and rejected are final. Any other event is a *TransitionError.
//   - Bad input returns an error matching ErrInvalid (and a more precise sentinel),
//     never a panic and never a Decision or amount computed from it.
//
// Defaults (TERMS 6.3): a nil calendar.BusinessCalendar means calendar.Russia(), a nil
// *time.Location means Europe/Moscow.
package refund
