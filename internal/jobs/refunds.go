package jobs

import (
	"context"

	"github.com/riverqueue/river"
)

// EscalateRefundArgs asks to escalate a refund request nearing its payout deadline
// (TERMS 3.8). It is scheduled when the request is recorded.
type EscalateRefundArgs struct {
	// RequestID is the refund request.
	RequestID string `json:"request_id"`
}

// Kind is the River job kind.
func (EscalateRefundArgs) Kind() string { return "billing_escalate_refund" }

// InsertOpts makes one escalation job per request.
func (EscalateRefundArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RetryRefundArgs asks to settle a refund whose gateway call failed or whose outcome is
// unknown or pending: look its key up, and refund again under the same key only if the gateway
// never saw it.
type RetryRefundArgs struct {
	// RequestID is the refund request.
	RequestID string `json:"request_id"`
}

// Kind is the River job kind.
func (RetryRefundArgs) Kind() string { return "billing_retry_refund" }

// InsertOpts makes one retry job per request at a time.
func (RetryRefundArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// RefundHandler is the engine side of the refund workers.
type RefundHandler interface {
	// EscalateRefund escalates a request still open; a settled one is a no-op.
	EscalateRefund(ctx context.Context, requestID string) error
	// RetryRefund settles a refund left executing with an unknown or pending outcome; an
	// error makes River retry the job.
	RetryRefund(ctx context.Context, requestID string) error
}

// EscalateRefundWorker works EscalateRefundArgs.
type EscalateRefundWorker struct {
	river.WorkerDefaults[EscalateRefundArgs]
	Engine RefundHandler
}

// Work escalates the request.
func (w *EscalateRefundWorker) Work(ctx context.Context, job *river.Job[EscalateRefundArgs]) error {
	return w.Engine.EscalateRefund(ctx, job.Args.RequestID)
}

// RetryRefundWorker works RetryRefundArgs. An error is retried by River on its schedule.
type RetryRefundWorker struct {
	river.WorkerDefaults[RetryRefundArgs]
	Engine RefundHandler
}

// Work settles the refund.
func (w *RetryRefundWorker) Work(ctx context.Context, job *river.Job[RetryRefundArgs]) error {
	return w.Engine.RetryRefund(ctx, job.Args.RequestID)
}

// EscalateDeletionArgs asks to escalate an account deletion request nearing its deadline
// (TERMS 2.2.4). It is scheduled when the request is recorded.
type EscalateDeletionArgs struct {
	// RequestID is the account deletion request.
	RequestID string `json:"request_id"`
}

// Kind is the River job kind.
func (EscalateDeletionArgs) Kind() string { return "billing_escalate_deletion" }

// InsertOpts makes one escalation job per request.
func (EscalateDeletionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DeletionHandler is the engine side of the account deletion worker.
type DeletionHandler interface {
	// EscalateAccountDeletion escalates a request still open; a done one is a no-op.
	EscalateAccountDeletion(ctx context.Context, requestID string) error
}

// EscalateDeletionWorker works EscalateDeletionArgs.
type EscalateDeletionWorker struct {
	river.WorkerDefaults[EscalateDeletionArgs]
	Engine DeletionHandler
}

// Work escalates the request.
func (w *EscalateDeletionWorker) Work(ctx context.Context, job *river.Job[EscalateDeletionArgs]) error {
	return w.Engine.EscalateAccountDeletion(ctx, job.Args.RequestID)
}
