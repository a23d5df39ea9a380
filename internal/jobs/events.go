package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
)

// DeliverEventArgs asks to hand one business event to the host (Config.OnEvent). It is
// inserted in the transaction that records the event, only when the event is new.
type DeliverEventArgs struct {
	// EventID is the event to deliver.
	EventID string `json:"event_id"`
}

// Kind is the River job kind.
func (DeliverEventArgs) Kind() string { return "billing_deliver_event" }

// InsertOpts makes one live delivery job per event: the sweep inserts it again for an event
// still undelivered after River discarded its job, which is a no-op while one waits.
func (DeliverEventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: LiveStates}}
}

// RenewalNoticeArgs asks to tell the customer, ahead of the charge, that period Period of
// a subscription will renew (the renewal upcoming event). It is scheduled when a period
// starts; at run time the engine checks that the subscription will still renew that
// period.
type RenewalNoticeArgs struct {
	// SubscriptionID is the subscription.
	SubscriptionID string `json:"subscription_id"`
	// Period is the number of the period that ends; the notice is about its renewal.
	Period int `json:"period"`
}

// Kind is the River job kind.
func (RenewalNoticeArgs) Kind() string { return "billing_renewal_notice" }

// InsertOpts makes one notice job per subscription period while River keeps it (a later
// one would find the notice's event recorded and deliver nothing again).
func (RenewalNoticeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ErrNoticeEarly is matched by a *NoticeEarlyError.
var ErrNoticeEarly = errors.New("the renewal notice is not due yet")

// NoticeEarlyError is what a renewal notice returns when it ran before its time (an
// operator extended the period after the job was scheduled): RenewalNoticeWorker snoozes
// the job for Wait.
type NoticeEarlyError struct {
	// Wait is how long until the notice is due.
	Wait time.Duration
}

// Error says how long until the notice is due.
func (e *NoticeEarlyError) Error() string {
	return ErrNoticeEarly.Error() + ": due in " + e.Wait.String()
}

// Is makes errors.Is(err, ErrNoticeEarly) true.
func (e *NoticeEarlyError) Is(target error) bool { return target == ErrNoticeEarly }

// EventHandler is the engine side of the event workers.
type EventHandler interface {
	// DeliverEvent hands the event to the host; an error makes River retry the job.
	// A delivered event is a no-op.
	DeliverEvent(ctx context.Context, eventID string) error
	// NoticeRenewal records the renewal upcoming event of the period when the
	// subscription will still renew it; otherwise it does nothing.
	NoticeRenewal(ctx context.Context, subscriptionID string, period int) error
}

// DeliverEventWorker works DeliverEventArgs. An error is retried by River with backoff.
type DeliverEventWorker struct {
	river.WorkerDefaults[DeliverEventArgs]
	Engine EventHandler
}

// Work delivers the event.
func (w *DeliverEventWorker) Work(ctx context.Context, job *river.Job[DeliverEventArgs]) error {
	return w.Engine.DeliverEvent(ctx, job.Args.EventID)
}

// RenewalNoticeWorker works RenewalNoticeArgs.
type RenewalNoticeWorker struct {
	river.WorkerDefaults[RenewalNoticeArgs]
	Engine EventHandler
}

// Work records the notice, or snoozes the job until it is due when it ran early.
func (w *RenewalNoticeWorker) Work(ctx context.Context, job *river.Job[RenewalNoticeArgs]) error {
	err := w.Engine.NoticeRenewal(ctx, job.Args.SubscriptionID, job.Args.Period)
	var early *NoticeEarlyError
	if errors.As(err, &early) {
		return river.JobSnooze(max(early.Wait, time.Second))
	}
	return err
}
