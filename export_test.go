package billing

// What the tests of package billing_test need of the engine's unexported job handlers.
// Only test binaries see these: a host reaches the handlers through the River workers
// that RegisterWorkers adds (the adapter jobWorker), never directly.

// RenewPeriod runs the renewal job's work, as jobs.RenewWorker does, minus the snooze.
var RenewPeriod = (*Engine).renewPeriod

// RetryRefund runs the refund retry job's work.
var RetryRefund = (*Engine).retryRefund

// EscalateRefund runs the refund escalation job's work.
var EscalateRefund = (*Engine).escalateRefund

// EscalateAccountDeletion runs the account deletion escalation job's work.
var EscalateAccountDeletion = (*Engine).escalateAccountDeletion

// ExpireReservation runs the reservation expiry job's work.
var ExpireReservation = (*Engine).expireReservation

// ErrNotDue is matched by the error of RenewPeriod run before its period ends.
var ErrNotDue = errNotDue

// LargestRenewalBatches returns the most renewals one batch of step 1 and one batch of step 3
// took so far (renewals_batch.go).
func LargestRenewalBatches(e *Engine) (prepare, settle int) {
	b := e.batches()
	b.prepare.mu.Lock()
	prepare = b.prepare.largest
	b.prepare.mu.Unlock()
	b.settle.mu.Lock()
	settle = b.settle.largest
	b.settle.mu.Unlock()
	return prepare, settle
}
