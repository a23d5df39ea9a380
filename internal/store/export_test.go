package store

// SubscriptionPageSQL is subscriptionPageSQL, for the query-plan tests of package store_test.
var SubscriptionPageSQL = subscriptionPageSQL

// LedgerPageSQL is the page statement of PageLedgerTransactions, for the same tests.
var LedgerPageSQL = ledgerPageSQL

// SubscriptionLedgerSQL is the statement of SubscriptionLedgerTransactions, for the same tests.
var SubscriptionLedgerSQL = subscriptionLedgerSQL

// LedgerBucketSumsSQL is the statement of LedgerBucketSums, for the same tests.
var LedgerBucketSumsSQL = ledgerBucketSumsSQL

// RunningPeriodsSQL is the statement of RunningPeriodsByVersion, for the same tests.
var RunningPeriodsSQL = runningPeriodsSQL

// DueWithoutJobSQL is dueWithoutJobSQL, for the query-plan tests of package store_test.
var DueWithoutJobSQL = dueWithoutJobSQL

// UndeliveredWithoutJobSQL is undeliveredWithoutJobSQL, for the same tests.
var UndeliveredWithoutJobSQL = undeliveredWithoutJobSQL

// OpenUnappliedSQL is openUnappliedSQL, for the same tests.
var OpenUnappliedSQL = openUnappliedSQL

// PruneIdempotencyKeysSQL is pruneIdempotencyKeysSQL, for the same tests.
var PruneIdempotencyKeysSQL = pruneIdempotencyKeysSQL

// ExecutingRefundsSQL is executingRefundsSQL, for the same tests.
var ExecutingRefundsSQL = executingRefundsSQL

// OpenAttemptsSQL is openAttemptsSQL, for the same tests.
var OpenAttemptsSQL = openAttemptsSQL

// PruneUsageEventsSQL is pruneUsageEventsSQL, for the same tests.
var PruneUsageEventsSQL = pruneUsageEventsSQL

// SweepSettings is sweepSettings, for the same tests and BenchmarkDueWithoutJobMillion.
const SweepSettings = sweepSettings

// QueuedStatements seals p's held rows and returns how many statements p's queue holds, for
// the tests of row statements (rows.go).
func QueuedStatements(p *Pipeline) int {
	p.sealRows()
	return p.batch.Len()
}
