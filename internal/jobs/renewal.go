package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// RenewArgs asks to renew a subscription whose period Period ends: charge period
// Period+1 (TERMS 3.5) or end the subscription (3.6). Try counts the runs scheduled for
// dunning retries (1 for the run at the period end), so each retry is its own unique job.
type RenewArgs struct {
	// SubscriptionID is the subscription to renew.
	SubscriptionID string `json:"subscription_id"`
	// Period is the number of the period that ends.
	Period int `json:"period"`
	// Try is 1 for the run at the period end, n for the run of the (n-1)-th retry.
	Try int `json:"try"`
}

// Kind is the River job kind.
func (RenewArgs) Kind() string { return "billing_renew" }

// InsertOpts makes the job unique per subscription, period and try among the jobs still to
// run (LiveStates): inserting it twice (a duplicate transaction, the sweeper) makes one job,
// and once it completed or was discarded a new insert makes a new job. That is what lets
// the sweeper give a way forward to a subscription whose job ran while it could not renew
// (suspended across its period end) or ran out of attempts. Running it twice is safe: the
// charge protocol charges a period at most once.
func (RenewArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: river.MaxAttemptsDefault, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// LiveStates are the River job states of a job still to run. A unique job counts only
// these, so a completed or discarded job never stops a new one.
var LiveStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// ErrNotDue is matched by a *NotDueError.
var ErrNotDue = errors.New("the period has not ended yet")

// NotDueError is what a renewal returns when it ran before its period ends (an operator
// extended the period after the job was scheduled). RenewWorker snoozes the job for Wait
// instead of failing it, so the one job of the period runs again at the new end.
type NotDueError struct {
	// Wait is how long until the period ends.
	Wait time.Duration
}

// Error says how long until the period ends.
func (e *NotDueError) Error() string { return fmt.Sprintf("%s: due in %s", ErrNotDue, e.Wait) }

// Is makes errors.Is(err, ErrNotDue) true.
func (e *NotDueError) Is(target error) bool { return target == ErrNotDue }

// Renewer is the engine side of RenewWorker.
type Renewer interface {
	// RenewPeriod runs the renewal of period of subscriptionID; safe to run twice.
	RenewPeriod(ctx context.Context, subscriptionID string, period int) error
}

// RenewWorker works RenewArgs.
type RenewWorker struct {
	river.WorkerDefaults[RenewArgs]
	Engine Renewer
}

// Work renews, or snoozes the job until the period ends when it ran early.
func (w *RenewWorker) Work(ctx context.Context, job *river.Job[RenewArgs]) error {
	err := w.Engine.RenewPeriod(ctx, job.Args.SubscriptionID, job.Args.Period)
	var notDue *NotDueError
	if errors.As(err, &notDue) {
		return river.JobSnooze(max(notDue.Wait, time.Second))
	}
	return err
}

// SweepArgs asks to find periods due for renewal without a renewal job and enqueue one
// (defense in depth). Run periodically.
type SweepArgs struct{}

// Kind is the River job kind.
func (SweepArgs) Kind() string { return "billing_sweep_renewals" }

// ReconcileArgs asks to settle charge attempts whose outcome is unknown or pending by
// asking the gateway. Run periodically.
type ReconcileArgs struct{}

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "billing_reconcile_payments" }

// Maintainer is the engine side of the periodic jobs.
type Maintainer interface {
	// SweepDueRenewals enqueues missing renewal jobs and returns how many.
	SweepDueRenewals(ctx context.Context) (int, error)
	// ReconcilePayments settles open attempts and returns how many it looked up.
	ReconcilePayments(ctx context.Context) (int, error)
}

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Engine Maintainer
}

// Work sweeps.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Engine.SweepDueRenewals(ctx)
	return err
}

// ReconcileWorker works ReconcileArgs.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	Engine Maintainer
}

// Work reconciles.
func (w *ReconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	_, err := w.Engine.ReconcilePayments(ctx)
	return err
}

// RefundUnappliedArgs asks to refund, through the gateway, a payment no subscription period
// could take (an unapplied payment): the provider took money the customer is owed back.
type RefundUnappliedArgs struct {
	// UnappliedID is the unapplied payment.
	UnappliedID string `json:"unapplied_id"`
}

// Kind is the River job kind.
func (RefundUnappliedArgs) Kind() string { return "billing_refund_unapplied" }

// InsertOpts makes one live job per unapplied payment; the sweeper inserts it again while
// the payment is not refunded, which is a no-op while one waits.
func (RefundUnappliedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// UnappliedRefunder is the engine side of RefundUnappliedWorker.
type UnappliedRefunder interface {
	// RefundUnapplied refunds the unapplied payment (under its own key, looked up first);
	// a refunded or parked one is a no-op. An error makes River retry the job.
	RefundUnapplied(ctx context.Context, unappliedID string) error
}

// RefundUnappliedWorker works RefundUnappliedArgs.
type RefundUnappliedWorker struct {
	river.WorkerDefaults[RefundUnappliedArgs]
	Engine UnappliedRefunder
}

// Work refunds the unapplied payment.
func (w *RefundUnappliedWorker) Work(ctx context.Context, job *river.Job[RefundUnappliedArgs]) error {
	return w.Engine.RefundUnapplied(ctx, job.Args.UnappliedID)
}

// ClaimRenewalsArgs asks to claim a chunk of subscriptions whose renewal is due and renew
// them (an engine with Config.ClaimRenewals: the subscriptions table is the queue, no River
// job per period). Run periodically; a run whose chunk was full inserts its successor
// before it renews, so the claims spread over workers and processes while a backlog lasts.
type ClaimRenewalsArgs struct{}

// Kind is the River job kind.
func (ClaimRenewalsArgs) Kind() string { return "billing_claim_renewals" }

// RenewalClaimer is the engine side of ClaimRenewalsWorker.
type RenewalClaimer interface {
	// ClaimRenewalsJob claims one chunk of due renewals, inserts the next claim job when
	// the chunk was full, and renews the chunk; it returns how many it claimed. A renewal
	// that fails is logged and claimed again when its lease ends, so only a failing claim
	// is an error.
	ClaimRenewalsJob(ctx context.Context) (int, error)
}

// ClaimRenewalsWorker works ClaimRenewalsArgs.
type ClaimRenewalsWorker struct {
	river.WorkerDefaults[ClaimRenewalsArgs]
	Engine RenewalClaimer
}

// Work claims and renews one chunk.
func (w *ClaimRenewalsWorker) Work(ctx context.Context, _ *river.Job[ClaimRenewalsArgs]) error {
	_, err := w.Engine.ClaimRenewalsJob(ctx)
	return err
}
