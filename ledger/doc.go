// Package ledger owns the double-entry bookkeeping of every money movement of the billing
// engine: the chart of accounts, transactions made of balanced postings, the builders that turn
// a business event (a charge, earned revenue, a refund) into a transaction, the revenue
// recognition Plan of a paid period, and Book, an in-memory ledger that is the reference model
// the PostgreSQL store is tested against.
//
// The package is pure: it never reads the clock (every instant is a parameter), does no I/O
// and keeps no mutable globals. Bad input returns a typed error; nothing panics.
//
// # Invariants
//
//   - Every transaction is balanced per currency: in each currency the debits equal the
//     credits. A transaction has at least two postings.
//   - Every posting moves a positive whole number of minor units (kopecks for RUB) on one side,
//     Debit or Credit, in the currency of its account. Amounts are int64, never floats, and are
//     never rounded: a decimal with more decimals than its currency is refused (NewPosting).
//   - The ledger is append-only. Nothing posted is changed or deleted; a mistake is corrected
//     by a reversing transaction (Reverse) that mirrors it, and a transaction is reversed at
//     most once.
//   - Transaction keys are unique idempotency keys. Posting a key again with the same content
//     (Fingerprint) returns the first transaction; the same key with other content is
//     ErrKeyReused.
//   - Consequently, per currency, the trial balance of everything posted sums to zero, and
//     deferred revenue + revenue − refunded revenue = money charged − refunds approved.
//
// # Chart of accounts
//
// Each Role below exists once per currency; its code is "<role>:<currency>", e.g.
// "provider:RUB". StandardChart resolves these codes.
//
//	role              type       normal  holds
//	provider          asset      debit   money held for us at the payment provider
//	deferred          liability  credit  paid for, not yet earned (periods still running)
//	revenue           income     credit  earned revenue, gross of refunds
//	refunded_revenue  income     debit   contra-revenue: earned revenue given back in refunds
//	refunds_payable   liability  credit  refunds approved but not yet paid out (TERMS 3.8)
//	provider_fees     expense    debit   fees the provider kept
//
// # Which event touches which account
//
//	event                                builder          debit                          credit
//	payment succeeded                    Charge           provider                       deferred
//	provider kept a fee                  WithProviderFee  provider_fees                  provider
//	revenue earned (Plan.ToRecognize)    Recognize        deferred                       revenue
//	refund approved (paid later)         ApproveRefund    deferred, refunded_revenue(*)  refunds_payable
//	approved refund paid out             PayRefund        refunds_payable                provider
//	refund approved and paid at once     Refund           deferred, refunded_revenue(*)  provider
//	correction of a mistake              Reverse          the original's credits         the original's debits
//
// (*) A refund first takes back what is still deferred; only the part beyond that reverses
// recognized revenue (RecognizedPartOfRefund). Revenue itself is never debited, so the revenue
// account shows gross earnings and refunded_revenue shows what was given back.
//
// # Storage
//
// Every field is a plain value meant for one column: a posting is (account text, side text in
// ('debit','credit'), amount bigint > 0, currency char(3)); a transaction is (key text unique,
// ref kind, ref id, reverses text unique, memo, at timestamptz) plus its Fingerprint, stored so
// that a replayed key can be compared with what was first posted.
package ledger
