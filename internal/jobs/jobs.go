// Package jobs holds the engine's River job args and workers. A worker only decodes its
// args and calls the engine through a small interface, which billing.Engine.RegisterWorkers
// fills with an unexported adapter (the handlers only a job runs are not Engine methods);
// the decisions stay in the policy packages and the writes in the engine's transactions.
//
// Invariants:
//   - Every job is inserted with InsertTx in the transaction that makes it necessary, so
//     state and job commit together or not at all.
//   - Every job is safe to run twice: the engine's handler finds the work already done
//     and returns nil.
package jobs

import (
	"context"

	"github.com/riverqueue/river"
)

// ExpireReservationArgs asks to expire a reservation whose TTL has passed.
type ExpireReservationArgs struct {
	// ReservationID is the reservation to expire.
	ReservationID string `json:"reservation_id"`
}

// Kind is the River job kind.
func (ExpireReservationArgs) Kind() string { return "billing_expire_reservation" }

// InsertOpts makes one expiry job per reservation.
func (ExpireReservationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ReservationExpirer is the engine side of ExpireReservationWorker.
type ReservationExpirer interface {
	// ExpireReservation frees an open reservation past its TTL; a resolved one is a no-op.
	ExpireReservation(ctx context.Context, reservationID string) error
}

// ExpireReservationWorker works ExpireReservationArgs.
type ExpireReservationWorker struct {
	river.WorkerDefaults[ExpireReservationArgs]
	Engine ReservationExpirer
}

// Work expires the reservation.
func (w *ExpireReservationWorker) Work(ctx context.Context, job *river.Job[ExpireReservationArgs]) error {
	return w.Engine.ExpireReservation(ctx, job.Args.ReservationID)
}
