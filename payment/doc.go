// Package payment owns the pure rules of charging: the Gateway a payment provider adapter
// implements, the charge and refund requests with their 54-FZ receipts, the payment attempt
// state machine, the dunning schedule, the consent check and the decision of what to do after
// each gateway answer (TERMS 2.1.6, 3.3–3.6, 5.1; consent withdrawal and 54-FZ in the law notes).
// It does no I/O, reads no clock (time is a parameter) and keeps no state: the engine stores
// attempts, calls the gateway and schedules jobs; this package says what is allowed and what
// comes next.
//
// # Invariants
//
//   - At most one successful charge per subscription period. A period's attempts are numbered
//     1, 2, …; a new attempt is made only after the previous one was soft-declined (Retry), so
//     while any attempt could still take money (created, pending, unknown) there is no other.
//     VerifyPeriod checks it over a period's attempts; the engine also keeps it by a database
//     constraint.
//   - An attempt's gateway idempotency key is fixed before the gateway is called (NewAttempt,
//     NewAttemptKey) and reused by every retry of that attempt: the engine commits the attempt,
//     then calls Charge with Attempt.ChargeParams, so a crash anywhere leaves a row that names
//     the key. The key is unguessable (a webhook naming it proves nothing) and unique across
//     attempts; the engine derives it from (subscription, period, number) under a secret, so
//     two workers racing on one period, or a retry that lost the attempt row, use the same
//     key and the gateway deduplicates them.
//   - An unknown outcome (a Charge error or timeout) is settled only by asking the gateway
//     (Lookup, RecordLookup) or by a webhook, never by charging again: Attempt.ChargeParams
//     refuses any attempt that is not created. Only Lookup's ErrNotFound puts an attempt back
//     to created, to be charged again under the same key, or lets it be canceled.
//   - A hard decline or withdrawn consent is never retried: Decide stops, Retry refuses anything
//     but a soft decline, and CanCharge refuses a withdrawn method before any gateway call.
//   - Access needs a succeeded charge (TERMS 3.3): only a succeeded attempt yields ActionActivate;
//     pending, unknown and declined attempts grant nothing.
//   - The gateway's word is the truth about money: a duplicate answer is a no-op, a contradicting
//     one is a typed error (ErrAlreadySettled, ErrConflictingOutcome, ErrAmountMismatch) that
//     leaves the attempt unchanged for a person to resolve; nothing is charged twice and no
//     payment is dropped.
//   - No card data (TERMS 5.1): requests carry the provider's opaque token; a value that looks
//     like a card number is refused (ErrCardData).
//
// # The charge protocol (run by the engine's jobs)
//
//  1. Decide there is a charge to make (a renewal due, or Decide's ActionRetry). Make the attempt
//     with NewAttempt (or Attempt.Retry) and commit it.
//  2. Build the request with Attempt.ChargeParams, which checks consent (CanCharge) and the
//     54-FZ receipt, then call Gateway.Charge. If consent is refused, Lookup the key and Cancel the attempt.
//  3. Record the answer with Attempt.RecordCharge(res, err, now), then act on Decide and commit,
//     with the effects (access, ledger, the next job).
//
// A job that finds its attempt still created or unknown after a crash first calls Lookup and
// RecordLookup; only ErrNotFound lets it charge again, under the same key. Webhooks the host
// forwards go through ApplyWebhook; the reconciliation job uses Lookup for unknown and long
// pending attempts.
//
// # Dunning
//
// A soft-declined renewal is retried on a DunningSchedule, by default 1, 3 and 5 days after the
// due time (not after each failure); after the last failed retry Decide says stop and the
// subscription ends. A checkout charge is not retried: the customer is present (TERMS 3.3).
//
// # Receipts
//
// Every charge carries a 54-FZ Income receipt and every refund a "return of income" receipt,
// with payment mode "full prepayment", subject "service", a VAT code the operator configures
// (see VATCode for the rates of 2026) and the customer's contact when the host gives one.
package payment
