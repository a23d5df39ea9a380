// Package tariff owns what is sold: tariffs, their immutable versions, the Terms a
// subscription period is sold under, the arithmetic of anchored periods, and the choice
// of terms for a purchase or a renewal (TERMS 2.1.6, 3.1, 3.2, 3.4, 3.5).
//
// A Tariff is a stable code on sale or retired. What it sells (price, currency, period,
// usage limits, options) is published as a Version, made only by NewVersion from a Spec.
// InForce finds the version in force at an instant; TermsForPurchase and TermsForRenewal
// turn it into the Terms a period keeps forever. Period.End computes period boundaries.
//
// The package is pure: no I/O, no clock (every instant is a parameter), no mutable
// globals. The catalog that stores tariffs and versions lives in the engine.
//
// Invariants:
//   - A published version is valid: code [a-z0-9_-]{1,64}, a non-blank name, a price
//     ≥ 0 with no more decimals than its known currency (RUB unless set) and that fits in
//     int64 minor units, a period of 1 day to 100 years, meters [a-z0-9_]{1,64} each at
//     most once with quantities ≥ 1, and a notice ≥ 0. Bad input yields a
//     *ValidationError naming every bad field, never a partial version.
//   - Versions of a tariff are numbered 1, 2, 3… and their EffectiveAt never decreases
//     with the number; a version never takes effect before it was published, so
//     publishing never rewrites which version was in force at a past instant.
//   - Terms are snapshots: Version.Terms, InForce, TermsForPurchase, TermsForRenewal
//     and Terms.Clone hand out limits that share no memory with their source, so a paid
//     period's terms cannot change after the sale (TERMS 2.1.6).
//   - A renewal never raises the price without the notice the customer bought with
//     (Options.PriceNotice, default 0); price cuts and other changes apply at the next
//     renewal. A retired tariff cannot be bought, but keeps renewing.
//   - Period ends are computed from the anchor, never from the previous end: the n-th
//     monthly end keeps the anchor's day of month clamped to the month's length and
//     its wall-clock time in the subscription's location, so chains do not drift, and
//     End(anchor, n+1) is after End(anchor, n) (in every zone that never skipped a
//     whole calendar day).
package tariff
