package billing

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/jobs"
	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// AccountDeletionRequestParams records a customer's request to delete their account (TERMS 2.2.4).
type AccountDeletionRequestParams struct {
	// CustomerID is the host's opaque ID of the customer whose account is to be deleted.
	// Required.
	CustomerID string
	// ReceivedAt is when the request reached the operator; the deadline is counted from
	// its date in the engine's Location. Required; later than the engine's clock is
	// ErrReceivedInFuture.
	ReceivedAt time.Time
	// Channel is how it came: refund.ChannelEmail, ChannelSupport or ChannelProfile.
	Channel refund.Channel
	// Text is the customer's free text, kept as is. Optional.
	Text string
	// IdempotencyKey makes a retried call return the first request; the same key with
	// another input is ErrIdempotencyConflict. Required.
	IdempotencyKey string
}

// AccountDeletionState is where an account deletion request stands.
type AccountDeletionState string

// The states of an account deletion request.
const (
	// AccountDeletionReceived: recorded, not yet executed; it counts toward its deadline.
	AccountDeletionReceived AccountDeletionState = "received"
	// AccountDeletionDone: executed by ExecuteAccountDeletion. Final.
	AccountDeletionDone AccountDeletionState = "done"
)

// AccountDeletion is a recorded account deletion request (TERMS 2.2.4).
type AccountDeletion struct {
	// ID is the request's ID.
	ID string
	// CustomerID is the host's opaque ID of the customer whose account is deleted.
	CustomerID string
	// ReceivedAt is when the request reached the operator; the deadline counts from it.
	ReceivedAt time.Time
	// Channel is how it arrived.
	Channel refund.Channel
	// Text is the customer's words, as received.
	Text string
	// State is received, or done once executed.
	State AccountDeletionState
	// Deadline is the 2.2.4 deadline: the account must be deleted before this instant
	// (24:00 of the 10th business day after the date of ReceivedAt, refund.AccountDeletionDeadline).
	Deadline time.Time
	// CreatedAt is when the request was recorded.
	CreatedAt time.Time
	// DoneAt is when it was executed; zero before.
	DoneAt time.Time
	// DoneBy is who executed it; empty before.
	DoneBy string
	// EscalatedAt is when the escalation job reported the request near its deadline;
	// zero before (and forever for a request executed in time).
	EscalatedAt time.Time
}

// AccountDeletionEscalation is what Config.OnAccountDeletionEscalation receives: a
// request not yet executed near its deadline.
type AccountDeletionEscalation struct {
	// RequestID is the request not yet executed.
	RequestID string
	// CustomerID is its customer.
	CustomerID string
	// ReceivedAt is when it was received.
	ReceivedAt time.Time
	// Deadline is the TERMS 2.2.4 deadline it is near.
	Deadline time.Time
	// At is the engine clock's instant of the escalation.
	At time.Time
}

// RequestAccountDeletion records a customer's request to delete their account (TERMS
// 2.2.4) with its deadline: 10 business days after the date of ReceivedAt on
// Config.Calendar in the engine's Location. It changes nothing else: the account is
// deleted by ExecuteAccountDeletion. It schedules the escalation job two days before the
// deadline (at once when that is past; needs UseRiver). Bad input is an *InputError and
// nothing is written.
func (e *Engine) RequestAccountDeletion(ctx context.Context, in AccountDeletionRequestParams) (AccountDeletion, error) {
	return e.requestAccountDeletion(ctx, e.pool, in)
}

// RequestAccountDeletionTx is RequestAccountDeletion in the host's transaction tx: the
// request and its escalation job exist once tx commits.
func (e *Engine) RequestAccountDeletionTx(ctx context.Context, tx pgx.Tx, in AccountDeletionRequestParams) (AccountDeletion, error) {
	if err := hostTx("RequestAccountDeletionTx", tx); err != nil {
		return AccountDeletion{}, err
	}
	return e.requestAccountDeletion(ctx, tx, in)
}

func (e *Engine) requestAccountDeletion(ctx context.Context, db dbtx, in AccountDeletionRequestParams) (_ AccountDeletion, err error) {
	ctx, span := e.tel.start(ctx, "RequestAccountDeletion", hostTxAttr(db))
	defer span.end(&err)
	check := inputCheck{op: "RequestAccountDeletion"}
	if strings.TrimSpace(in.CustomerID) == "" {
		check.add("CustomerID", "required: whose account it is")
	}
	check.received(in.ReceivedAt, in.Channel)
	check.key("IdempotencyKey", in.IdempotencyKey)
	if err := check.err(); err != nil {
		return AccountDeletion{}, err
	}
	if err := refund.CheckReceivedAt(in.ReceivedAt, e.clock.Now()); err != nil {
		return AccountDeletion{}, opError("RequestAccountDeletion", err)
	}
	deadline, err := refund.AccountDeletionDeadline(in.ReceivedAt, e.calendar(), e.loc)
	if err != nil {
		return AccountDeletion{}, &InputError{Op: "RequestAccountDeletion", Problems: []FieldProblem{{"ReceivedAt", err.Error()}}}
	}
	client, err := e.riverClient()
	if err != nil {
		return AccountDeletion{}, opError("RequestAccountDeletion", err)
	}
	hash := requestHash(in.CustomerID, in.ReceivedAt.UTC().Format(time.RFC3339Nano), string(in.Channel), in.Text)
	var out store.DeletionRow
	err = store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		id, err := claimKeyForID(ctx, tx, "account_deletion", in.IdempotencyKey, hash, now)
		if err != nil || id != "" {
			if err == nil {
				out, err = store.GetDeletion(ctx, tx, id)
			}
			return err
		}
		row := store.DeletionRow{ID: newID(), CustomerID: in.CustomerID, IdempotencyKey: in.IdempotencyKey,
			ReceivedAt: in.ReceivedAt, Channel: string(in.Channel), Text: in.Text, State: string(AccountDeletionReceived),
			Deadline: deadline.EndsAt, CreatedAt: now}
		if err := store.InsertDeletion(ctx, tx, row); err != nil {
			return err
		}
		if err := store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: "customer:" + in.CustomerID,
			Action: "account_deletion.requested", Subject: "customer:" + in.CustomerID,
			Detail: map[string]any{"request": row.ID, "channel": row.Channel, "received_at": row.ReceivedAt,
				"deadline": row.Deadline}}); err != nil {
			return err
		}
		at := escalationAt(row.Deadline, now)
		if _, err := client.InsertTx(ctx, tx, jobs.EscalateDeletionArgs{RequestID: row.ID}, &riverInsertOpts{ScheduledAt: at}); err != nil {
			return err
		}
		out = row
		return store.SaveResult(ctx, tx, "account_deletion", in.IdempotencyKey, row.ID)
	})
	if err != nil {
		return AccountDeletion{}, opError("RequestAccountDeletion", err)
	}
	return deletionOf(out), nil
}

// ExecuteAccountDeletion deletes the account of request requestID (TERMS 2.2.4), in one
// transaction:
//   - every subscription of the customer not yet in a final status is terminated
//     (subscription.Terminate, reason "account deletion (TERMS 2.2.4)"): access ends at
//     once, auto-renew is off, and a renewal job already queued charges nothing (the
//     charge protocol finds the subscription final);
//   - every payment-method token bound to the customer is forgotten: its consent is
//     withdrawn (nothing charges it from this instant) and it is marked deleted. The rows
//     stay as tombstones, since subscriptions and attempts name the token; the engine
//     never held card data (TERMS 5.1), and deleting the saved method at the provider is
//     the host's business;
//   - the request is marked done, and the deletion audited with actor.
//
// Periods already paid are not refunded by this command: a refund is a separate request
// (RequestRefund), decided on its own rules. The ledger and the audit log are kept, under
// the customer's opaque ID: they are the operator's books, never deleted.
//
// A charge already sent to the gateway before this commits (a renewal in flight) cannot
// be called back: if the provider took it, the engine finds the subscription terminated,
// books the money as an unapplied payment and refunds it (see RefundUnapplied).
//
// A second call on a done request is a no-op that returns it unchanged. The host stays in
// charge of its own account: the engine does not stop a new Subscribe for the same
// customer ID afterwards.
func (e *Engine) ExecuteAccountDeletion(ctx context.Context, requestID, actor string) (_ AccountDeletion, err error) {
	ctx, span := e.tel.start(ctx, "ExecuteAccountDeletion", deletionAttr(requestID), attrHostTx.Bool(false))
	defer span.end(&err)
	return e.executeAccountDeletion(ctx, e.pool, requestID, actor)
}

// ExecuteAccountDeletionTx is ExecuteAccountDeletion in the host's transaction tx, e.g.
// the one that deletes the host's own copy of the account: both happen or neither.
func (e *Engine) ExecuteAccountDeletionTx(ctx context.Context, tx pgx.Tx, requestID, actor string) (_ AccountDeletion, err error) {
	ctx, span := e.tel.start(ctx, "ExecuteAccountDeletion", deletionAttr(requestID), attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("ExecuteAccountDeletionTx", tx); err != nil {
		return AccountDeletion{}, err
	}
	return e.executeAccountDeletion(ctx, tx, requestID, actor)
}

func (e *Engine) executeAccountDeletion(ctx context.Context, db dbtx, requestID, actor string) (AccountDeletion, error) {
	check := inputCheck{op: "ExecuteAccountDeletion"}
	check.id("requestID", requestID)
	if actor == "" {
		check.add("actor", "required for the audit log")
	}
	if err := check.err(); err != nil {
		return AccountDeletion{}, err
	}
	var out store.DeletionRow
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := e.clock.Now()
		row, err := store.LockDeletion(ctx, tx, requestID)
		if err != nil {
			return err
		}
		if row.State == string(AccountDeletionDone) {
			out = row
			return nil
		}
		subs, err := store.ListSubscriptions(ctx, tx, row.CustomerID)
		if err != nil {
			return err
		}
		var ended []string
		for _, s := range subs {
			if s.Status.Final() {
				continue
			}
			sub, err := store.LockSubscription(ctx, tx, s.ID)
			if err != nil {
				return err
			}
			if sub.Status.Final() {
				continue
			}
			next, audit, err := subscription.Terminate(sub, subscription.AdminAction{Actor: actor,
				Reason: "account deletion (TERMS 2.2.4), request " + row.ID}, now)
			if err != nil {
				return err
			}
			if err := e.save(ctx, tx, sub, next, audit, now); err != nil {
				return err
			}
			ended = append(ended, sub.ID)
		}
		tokens, err := store.CustomerTokens(ctx, tx, row.CustomerID)
		if err != nil {
			return err
		}
		for _, token := range tokens {
			if err := store.ForgetPaymentMethod(ctx, tx, row.CustomerID, token, now); err != nil {
				return err
			}
		}
		if err := store.MarkDeletionDone(ctx, tx, row.ID, actor, now); err != nil {
			return err
		}
		if err := store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: actor,
			Action: "account_deletion.executed", Subject: "customer:" + row.CustomerID,
			Detail: map[string]any{"request": row.ID, "terminated": ended, "tokens_forgotten": len(tokens),
				"deadline": row.Deadline, "in_time": now.Before(row.Deadline)}}); err != nil {
			return err
		}
		out, err = store.GetDeletion(ctx, tx, row.ID)
		return err
	})
	if err != nil {
		return AccountDeletion{}, opError("ExecuteAccountDeletion", err)
	}
	return deletionOf(out), nil
}

// AccountDeletionGet returns one account deletion request.
func (e *Engine) AccountDeletionGet(ctx context.Context, requestID string) (_ AccountDeletion, err error) {
	ctx, span := e.tel.start(ctx, "AccountDeletionGet", deletionAttr(requestID))
	defer span.end(&err)
	check := inputCheck{op: "AccountDeletionGet"}
	check.id("requestID", requestID)
	if err := check.err(); err != nil {
		return AccountDeletion{}, err
	}
	row, err := store.GetDeletion(ctx, e.pool, requestID)
	if err != nil {
		return AccountDeletion{}, opError("AccountDeletionGet", err)
	}
	return deletionOf(row), nil
}

// AccountDeletionListOpen returns the requests not yet executed, earliest deadline first.
func (e *Engine) AccountDeletionListOpen(ctx context.Context) (_ []AccountDeletion, err error) {
	ctx, span := e.tel.start(ctx, "AccountDeletionListOpen")
	defer span.end(&err)
	rows, err := store.OpenDeletions(ctx, e.pool)
	if err != nil {
		return nil, opError("AccountDeletionListOpen", err)
	}
	out := make([]AccountDeletion, len(rows))
	for i, r := range rows {
		out[i] = deletionOf(r)
	}
	return out, nil
}

// escalateAccountDeletion is the escalation job's handler: a request not yet done nor
// escalated before is logged at Warn and handed to Config.OnAccountDeletionEscalation,
// then marked escalated. The hook runs before the mark, so an escalation is never lost;
// a crash between the two calls it again on the job's retry.
func (e *Engine) escalateAccountDeletion(ctx context.Context, requestID string) (err error) {
	ctx, span := e.tel.start(ctx, "EscalateAccountDeletion", deletionAttr(requestID))
	defer span.end(&err)
	row, err := store.GetDeletion(ctx, e.pool, requestID)
	if err != nil {
		return opError("EscalateAccountDeletion", err)
	}
	if row.State == string(AccountDeletionDone) || !row.EscalatedAt.IsZero() {
		return nil
	}
	esc := AccountDeletionEscalation{RequestID: row.ID, CustomerID: row.CustomerID, ReceivedAt: row.ReceivedAt,
		Deadline: row.Deadline, At: e.clock.Now()}
	e.logger.WarnContext(ctx, "billing: account deletion request nearing its deadline (TERMS 2.2.4)",
		"request", esc.RequestID, "customer", esc.CustomerID, "deadline", esc.Deadline)
	if h := e.cfg.OnAccountDeletionEscalation; h != nil {
		h(esc)
	}
	if err := e.markDeletionEscalated(ctx, row.ID, esc.At); err != nil {
		return opError("EscalateAccountDeletion", err)
	}
	return nil
}

func deletionOf(r store.DeletionRow) AccountDeletion {
	return AccountDeletion{ID: r.ID, CustomerID: r.CustomerID, ReceivedAt: r.ReceivedAt, Channel: refund.Channel(r.Channel),
		Text: r.Text, State: AccountDeletionState(r.State), Deadline: r.Deadline, CreatedAt: r.CreatedAt,
		DoneAt: r.DoneAt, DoneBy: r.DoneBy, EscalatedAt: r.EscalatedAt}
}
