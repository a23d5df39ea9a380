package billing

import (
	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/store"
)

// Commands in the host's transaction.
//
// Every command that changes state without calling the payment provider has a …Tx form
// ([Engine.SubscribeTx], [Engine.ConsumeTx], [Engine.RequestRefundTx]…) that runs in a
// [pgx.Tx] the host began, as River's InsertTx does: the host commits its own rows and the engine's together, and a
// rollback leaves nothing of either. The engine's work runs in a savepoint of tx, so a
// refused command (bad input, a conflict, no access) leaves tx usable and writes nothing.
// The …Tx form never retries: after a serialization failure or deadlock only the host can
// retry its whole transaction; the plain form retries on its own.
//
// Traps: the engine reads the clock once per command, so times are the command's, not the
// commit's; a job the command schedules (a renewal, a reservation's expiry) exists only
// once tx commits; hold tx briefly, since the command locks the subscription row until
// the commit. Commands that call the provider ([Engine.ChargeFirstPayment],
// [Engine.StartCheckout], [Engine.ExecuteRefund], [Engine.RefundUnapplied], the renewal)
// have no …Tx form: the provider's answer
// must be recorded whatever the host does with its transaction afterwards, and a charge
// must never wait on a host's lock (RELIABILITY.md). Leave the engine's constraints deferred,
// as they are declared (no SET CONSTRAINTS ALL IMMEDIATE in tx): a command writes some rows
// in an order that is consistent only at commit (a new period after the subscription row
// that points at it; an extended period's end before the subscription's copy of it,
// migration 0018), and under IMMEDIATE it fails with an integrity error.

// dbtx is where a command runs: the engine's pool, or the host's transaction of a …Tx form.
type dbtx interface {
	store.Beginner
	store.Querier
}

// inHostTx reports whether db is a host's transaction (a …Tx form), not the engine's pool.
func inHostTx(db any) bool {
	_, host := db.(pgx.Tx)
	return host
}

// hostTx refuses a nil transaction given to a …Tx form of op.
func hostTx(op string, tx pgx.Tx) error {
	if tx == nil {
		return &InputError{Op: op, Problems: []FieldProblem{{"tx", "required: the host's open pgx.Tx"}}}
	}
	return nil
}
