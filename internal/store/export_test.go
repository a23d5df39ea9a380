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
