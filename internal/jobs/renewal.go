package jobs

import (
	"context"

	"github.com/riverqueue/river"
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

// InsertOpts makes the job unique per subscription, period and try, whatever its state:
// inserting it twice (a duplicate transaction, the sweeper) makes one job.
func (RenewArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

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

// Work renews.
func (w *RenewWorker) Work(ctx context.Context, job *river.Job[RenewArgs]) error {
	return w.Engine.RenewPeriod(ctx, job.Args.SubscriptionID, job.Args.Period)
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
