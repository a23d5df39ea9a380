package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// RecognizeRevenueArgs asks to book the revenue a paid period has earned by the time the job
// runs (straight-line by days; all of the rest once the period has ended or ended early).
// The engine schedules one at the period's end, when the period is paid; the handler books
// the remainder then, and reschedules itself at the period end when it ran before it.
type RecognizeRevenueArgs struct {
	// SubscriptionID and Period name the paid period.
	SubscriptionID string `json:"subscription_id"`
	Period         int    `json:"period"`
	// DueAt is the instant the job was scheduled for. It is part of the args only to make
	// uniqueness per (period, instant): scheduling the same instant twice inserts one job
	// while River keeps the first (its cleaner deletes completed jobs), a new instant (the
	// period was extended, or ended early) another.
	DueAt time.Time `json:"due_at"`
}

// Kind is the River job kind.
func (RecognizeRevenueArgs) Kind() string { return "billing_recognize_revenue" }

// InsertOpts makes one job per period and due instant.
func (RecognizeRevenueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RevenueRecognizer is the engine side of RecognizeRevenueWorker.
type RevenueRecognizer interface {
	// RecognizeRevenue books what the period has earned by now and not yet been booked;
	// nothing when nothing new is earned, so running it twice is safe.
	RecognizeRevenue(ctx context.Context, subscriptionID string, period int) error
}

// RecognizeRevenueWorker works RecognizeRevenueArgs.
type RecognizeRevenueWorker struct {
	river.WorkerDefaults[RecognizeRevenueArgs]
	Engine RevenueRecognizer
}

// Work books the period's earned revenue.
func (w *RecognizeRevenueWorker) Work(ctx context.Context, job *river.Job[RecognizeRevenueArgs]) error {
	return w.Engine.RecognizeRevenue(ctx, job.Args.SubscriptionID, job.Args.Period)
}
