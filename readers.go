package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/subscription"
)

// Readers an operator and an accountant need (issue 15): the periods of a subscription with
// their terms, subscriptions by status and customer page by page, and the history of one
// charge attempt or refund request. The ledger's readers (Books.TransactionList,
// Books.ExportCSV) are in books_export.go. Nothing here writes; bad input is an
// *InputError (ErrInvalidInput) naming every bad field; a subscription, attempt or request
// that does not exist is ErrNotFound.

// Page sizes of the paginated readers (Engine.SubscriptionList, Books.TransactionList).
const (
	// PageLimitDefault is the page size when a request's Limit is 0.
	PageLimitDefault = 100
	// PageLimitMax is the largest Limit accepted; more is an *InputError, not a silent cap.
	PageLimitMax = 1000
)

// PeriodInfo is one paid period of a subscription as Engine.PeriodList lists it: the period
// itself with the terms it was paid under, and what paid for it and refunded it.
type PeriodInfo struct {
	// Period is the period: number, Start and End (End excluded), GrantedAt, ExhaustedAt,
	// the usage counters of each limited meter, and Terms: price, currency, length, limits
	// and options as copied from the tariff version in force when it was paid. Terms never
	// change afterwards (TERMS 2.1.6, kept by a trigger): a later price is not here. End
	// may have moved forward (ExtendPeriod).
	Period subscription.Period
	// Current is true for the subscription's current period (the running one, or the one
	// just over while a renewal is pending, or the last one of an ended subscription).
	Current bool
	// Charge is the succeeded charge applied to the period: its attempt ID, provider
	// payment ID, Amount in minor units and Currency, and SettledAt, when the engine
	// recorded the success (the paid-at instant). Nil when no charge is stored for the
	// period: a free period, or a first payment confirmed by a host without River
	// (ConfirmFirstPayment stores no attempt then). A success whose money no period took
	// (unapplied, refunded on its own) is never here: see UnappliedPaymentList.
	Charge *payment.Attempt
	// Refund is the refund request that holds the period's refund: executing, refunded or
	// failed (at most one per period). Nil when none does; received, verified and rejected
	// requests are not here (RefundRequestList lists them).
	Refund *RefundRequest
}

// PeriodList returns every period of a subscription, oldest first, each with its terms, its
// charge and its refund. A pending subscription has none (an empty slice, no error); a
// subscription that does not exist is ErrNotFound. All of it is read in one snapshot.
func (e *Engine) PeriodList(ctx context.Context, subscriptionID string) (_ []PeriodInfo, err error) {
	ctx, span := e.tel.start(ctx, "PeriodList", subAttr(subscriptionID))
	defer span.end(&err)
	const op = "PeriodList"
	check := inputCheck{op: op}
	check.id("subscriptionID", subscriptionID)
	if err := check.err(); err != nil {
		return nil, err
	}
	var out []PeriodInfo
	err = store.ReadSnapshot(ctx, e.pool, func(tx pgx.Tx) error {
		current, err := store.SubscriptionCurrentPeriod(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		periods, err := store.SubscriptionPeriods(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		charges, err := store.AppliedCharges(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		refunds, err := store.PeriodRefunds(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		out = make([]PeriodInfo, len(periods))
		index := make(map[int]int, len(periods))
		for i, p := range periods {
			out[i] = PeriodInfo{Period: p, Current: current != nil && *current == p.Number}
			index[p.Number] = i
		}
		for _, c := range charges {
			if i, ok := index[c.PeriodNumber]; ok {
				a := c.Attempt
				out[i].Charge = &a
			}
		}
		for _, r := range refunds {
			if i, ok := index[r.Period]; ok {
				rr := refundOf(r)
				out[i].Refund = &rr
			}
		}
		return nil
	})
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// SubscriptionListParams selects a page of subscriptions for Engine.SubscriptionList. The zero
// value lists every subscription, first page, PageLimitDefault at a time.
type SubscriptionListParams struct {
	// Status keeps the subscriptions in this status; empty keeps all. A value that is not a
	// subscription.Status is an *InputError.
	Status subscription.Status
	// CustomerID keeps one customer's subscriptions (the host's opaque ID); empty keeps all.
	CustomerID string
	// After is the cursor: the previous page's Next. Empty starts at the first
	// subscription. It is a subscription ID (a UUID); anything else is an *InputError.
	// Trap: keep Status and CustomerID the same along a walk; the cursor does not carry them.
	After string
	// Limit is the page size. Defaults to PageLimitDefault (100) when 0; at most
	// PageLimitMax (1000); negative or more is an *InputError.
	Limit int
}

// SubscriptionPage is one page of Engine.SubscriptionList.
type SubscriptionPage struct {
	// Subscriptions are the page's subscriptions in ID order (UUIDv7: creation order), each
	// with its current period and usage, as Get returns it.
	Subscriptions []subscription.Subscription
	// Next is the cursor of the next page (pass it as After); empty when no subscription
	// matching the filters came after this page when it was read.
	Next string
}

// SubscriptionList returns a page of subscriptions matching p, in ID order. Each page is one
// index range scan that stops after Limit rows (migration 0012; BENCHMARKS.md "Readers"),
// so a walk costs the same per page however deep it goes.
//
// A walk (each page's Next as the following After) returns each subscription that existed
// when the walk started at most once and, when its filters still match it, exactly once:
// the cursor is the last ID, not an offset, so subscriptions created or changed meanwhile
// never shift the pages. Traps: a subscription whose status changes during a walk filtered
// by status may be missed or come twice; a subscription created during the walk may or may
// not be in it (its UUIDv7 is taken before its transaction commits, so it can land behind
// the cursor). Each page is read in one snapshot.
func (e *Engine) SubscriptionList(ctx context.Context, p SubscriptionListParams) (_ SubscriptionPage, err error) {
	ctx, span := e.tel.start(ctx, "SubscriptionList")
	defer span.end(&err)
	const op = "SubscriptionList"
	check := inputCheck{op: op}
	if p.Status != "" && !p.Status.Valid() {
		check.add("Status", fmt.Sprintf("%q is not a subscription status", p.Status))
	}
	if p.After != "" {
		check.id("After", p.After)
	}
	limit := check.limit("Limit", p.Limit)
	if err := check.err(); err != nil {
		return SubscriptionPage{}, err
	}
	var page []subscription.Subscription
	err = store.ReadSnapshot(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		page, err = store.PageSubscriptions(ctx, tx, store.SubscriptionPageParams{
			Status: string(p.Status), CustomerID: p.CustomerID, After: p.After, Limit: limit + 1})
		return err
	})
	if err != nil {
		return SubscriptionPage{}, opError(op, err)
	}
	out := SubscriptionPage{Subscriptions: page}
	if len(page) > limit {
		out.Subscriptions = page[:limit]
		out.Next = page[limit-1].ID
	}
	return out, nil
}

// limit checks a page size and returns it with the default applied.
func (c *inputCheck) limit(field string, limit int) int {
	switch {
	case limit == 0:
		return PageLimitDefault
	case limit < 0 || limit > PageLimitMax:
		c.add(field, fmt.Sprintf("%d is out of range: 1..%d, or 0 for %d", limit, PageLimitMax, PageLimitDefault))
	}
	return limit
}

// HistorySource says where a HistoryEntry comes from.
type HistorySource string

// The sources of a history.
const (
	// HistoryRecord: an instant the item's own row keeps (an attempt's created_at,
	// sent_at, settled_at, parked_at; a request's received_at, escalated_at). Actor and
	// Reason are empty unless the row keeps them.
	HistoryRecord HistorySource = "record"
	// HistoryAudit: an entry of the audit log about the item (AuditLog), with its actor
	// and reason.
	HistoryAudit HistorySource = "audit"
	// HistoryLedger: a ledger transaction posted for the item; Detail holds its key,
	// reference and postings.
	HistoryLedger HistorySource = "ledger"
)

// HistoryEntry is one event in the history of a charge attempt or a refund request.
type HistoryEntry struct {
	// At is when it happened, on the engine's clock.
	At time.Time
	// Source says where the entry was read from; see HistorySource.
	Source HistorySource
	// Action names the event: "attempt.created", "attempt.sent", "attempt.succeeded",
	// "attempt.parked", "refund.received", "refund.escalated" (records); the audit log's
	// action ("refund.verified", "payment.unapplied"…); "ledger.<reference kind>" (ledger).
	Action string
	// Actor is who did it, for audit entries; empty for records and ledger postings.
	Actor string
	// Reason is the audit entry's reason, a decline message, or a parked attempt's last
	// reconciliation error; empty when none.
	Reason string
	// Detail holds the rest: the audit entry's detail, a record's state and codes, a
	// posting's key, reference and legs. Never nil.
	Detail map[string]any
}

// AttemptHistory is what Engine.AttemptHistoryGet returns: a charge attempt as it stands and
// the events about it, oldest first.
type AttemptHistory struct {
	// Attempt is the attempt as it stands now.
	Attempt payment.Attempt
	// CheckFailures counts the reconciliation runs that failed on it (no instant is kept
	// per failure: only the count and LastError).
	CheckFailures int
	// LastError is the last reconciliation error; empty when none failed.
	LastError string
	// Entries are the events, oldest first; see Engine.AttemptHistoryGet for what is there.
	Entries []HistoryEntry
}

// AttemptHistoryGet returns a charge attempt and its history, oldest first. The engine does
// not audit an attempt's every state change, so the history is derived from what is
// stored, and says only that:
//   - records: created (always), sent (when the engine let it go to the gateway), its final
//     state at settled_at ("attempt.succeeded", "attempt.declined_soft", "attempt.canceled"…,
//     with the decline code and message) and parked (reconciliation gave up on it);
//   - audit entries that name the attempt or its unapplied payment ("payment.unapplied",
//     "payment.unapplied_refunded", "payment.unapplied_parked");
//   - ledger transactions of its money: "payment:<id>" (the applied charge),
//     "unapplied:<id>" and "unapplied-refund:<unapplied id>".
//
// Not there: intermediate states an attempt passed through without a timestamp (pending,
// unknown: the row keeps only the current state), each reconciliation run (only the count
// and last error, in the result), and the subscription's own transitions that the charge
// caused (AuditLog(SubscriptionSubject(…)) has them). Entries at the same instant keep that
// order: created, sent, settled, audit entries, ledger postings, parked. A missing attempt
// is ErrNotFound.
func (e *Engine) AttemptHistoryGet(ctx context.Context, attemptID string) (_ AttemptHistory, err error) {
	ctx, span := e.tel.start(ctx, "AttemptHistoryGet")
	defer span.end(&err)
	const op = "AttemptHistoryGet"
	check := inputCheck{op: op}
	check.id("attemptID", attemptID)
	if err := check.err(); err != nil {
		return AttemptHistory{}, err
	}
	var out AttemptHistory
	err = store.ReadSnapshot(ctx, e.pool, func(tx pgx.Tx) error {
		a, err := store.GetAttempt(ctx, tx, attemptID)
		if err != nil {
			return err
		}
		out = AttemptHistory{Attempt: a.Attempt, CheckFailures: a.CheckFailures, LastError: a.LastError}
		var parked []HistoryEntry
		out.Entries, parked = attemptRecords(a)
		subject := SubscriptionSubject(a.SubscriptionID)
		audits, err := store.AuditAbout(ctx, tx, subject, "attempt", a.ID)
		if err != nil {
			return err
		}
		keys := []string{"payment:" + a.ID, "unapplied:" + a.ID}
		unappliedID, err := store.UnappliedOfAttempt(ctx, tx, a.ID)
		switch {
		case err == nil:
			more, err := store.AuditAbout(ctx, tx, subject, "unapplied", unappliedID)
			if err != nil {
				return err
			}
			audits = mergeAudit(audits, more)
			keys = append(keys, "unapplied-refund:"+unappliedID)
		case !isNotFound(err):
			return err
		}
		out.Entries = append(out.Entries, auditHistory(audits)...)
		postings, err := store.LedgerTransactionsByKeys(ctx, tx, keys)
		if err != nil {
			return err
		}
		out.Entries = append(out.Entries, ledgerHistory(postings)...)
		out.Entries = append(out.Entries, parked...)
		sortHistory(out.Entries)
		return nil
	})
	if err != nil {
		return AttemptHistory{}, opError(op, err)
	}
	return out, nil
}

// attemptRecords returns the history entries a's own timestamps give: created, sent and
// settled, and apart the parked one (it comes after the others at its instant).
func attemptRecords(a store.AttemptRow) (entries, parked []HistoryEntry) {
	base := map[string]any{"purpose": string(a.Purpose), "period": a.PeriodNumber, "number": a.Number}
	entries = append(entries, HistoryEntry{At: a.CreatedAt, Source: HistoryRecord, Action: "attempt.created",
		Detail: withDetail(base, "amount_minor", a.Amount, "currency", a.Currency, "due_at", a.DueAt)})
	if !a.SentAt.IsZero() {
		entries = append(entries, HistoryEntry{At: a.SentAt, Source: HistoryRecord, Action: "attempt.sent",
			Detail: withDetail(base)})
	}
	if !a.SettledAt.IsZero() {
		entries = append(entries, HistoryEntry{At: a.SettledAt, Source: HistoryRecord, Action: "attempt." + string(a.State),
			Reason: a.DeclineMessage, Detail: withDetail(base, "state", string(a.State), "provider_payment_id", a.ProviderPaymentID,
				"decline_code", a.DeclineCode, "unapplied", a.Unapplied)})
	}
	if !a.ParkedAt.IsZero() {
		parked = append(parked, HistoryEntry{At: a.ParkedAt, Source: HistoryRecord, Action: "attempt.parked",
			Reason: a.LastError, Detail: withDetail(base, "check_failures", a.CheckFailures)})
	}
	return entries, parked
}

// RefundHistory is what Engine.RefundHistoryGet returns: a refund request as it stands and
// the events about it, oldest first.
type RefundHistory struct {
	// Request is the request as it stands now.
	Request RefundRequest
	// Entries are the events, oldest first; see Engine.RefundHistoryGet for what is there.
	Entries []HistoryEntry
}

// RefundHistoryGet returns a refund request and its history, oldest first:
//   - records: "refund.received" at ReceivedAt (when the request reached the operator,
//     which may be before it was recorded) and "refund.escalated" at EscalatedAt (the
//     escalation is not audited);
//   - every audit entry about the request (they are logged under its subscription with
//     the request's ID): "refund.requested", "refund.verified", "refund.rejected",
//     "refund.override", "refund.executing" (with the gateway key of each try), the
//     gateway's outcomes ("refund.succeeded", "refund.hard_declined"…),
//     "refund.after_end";
//   - the ledger transaction of the refund ("refund:<id>"), once the provider paid it.
//
// Entries at the same instant keep that order: records, audit entries, ledger postings. A
// missing request is ErrNotFound.
func (e *Engine) RefundHistoryGet(ctx context.Context, requestID string) (_ RefundHistory, err error) {
	ctx, span := e.tel.start(ctx, "RefundHistoryGet", refundAttr(requestID))
	defer span.end(&err)
	const op = "RefundHistoryGet"
	check := inputCheck{op: op}
	check.id("requestID", requestID)
	if err := check.err(); err != nil {
		return RefundHistory{}, err
	}
	var out RefundHistory
	err = store.ReadSnapshot(ctx, e.pool, func(tx pgx.Tx) error {
		r, err := store.GetRefund(ctx, tx, requestID)
		if err != nil {
			return err
		}
		out.Request = refundOf(r)
		base := map[string]any{"request": r.ID, "period": r.Period}
		out.Entries = append(out.Entries, HistoryEntry{At: r.ReceivedAt, Source: HistoryRecord, Action: "refund.received",
			Detail: withDetail(base, "channel", r.Channel)})
		audits, err := store.AuditAbout(ctx, tx, SubscriptionSubject(r.SubscriptionID), "request", r.ID)
		if err != nil {
			return err
		}
		out.Entries = append(out.Entries, auditHistory(audits)...)
		postings, err := store.LedgerTransactionsByKeys(ctx, tx, []string{"refund:" + r.ID})
		if err != nil {
			return err
		}
		out.Entries = append(out.Entries, ledgerHistory(postings)...)
		if !r.EscalatedAt.IsZero() {
			out.Entries = append(out.Entries, HistoryEntry{At: r.EscalatedAt, Source: HistoryRecord, Action: "refund.escalated",
				Detail: withDetail(base, "payout_deadline", r.PayoutDeadline)})
		}
		sortHistory(out.Entries)
		return nil
	})
	if err != nil {
		return RefundHistory{}, opError(op, err)
	}
	return out, nil
}

// auditHistory turns audit rows into history entries.
func auditHistory(rows []store.AuditEntry) []HistoryEntry {
	out := make([]HistoryEntry, len(rows))
	for i, r := range rows {
		detail := r.Detail
		if detail == nil {
			detail = map[string]any{}
		}
		out[i] = HistoryEntry{At: r.At, Source: HistoryAudit, Action: r.Action, Actor: r.Actor, Reason: r.Reason, Detail: detail}
	}
	return out
}

// ledgerHistory turns ledger transactions into history entries.
func ledgerHistory(rows []store.LedgerTxRow) []HistoryEntry {
	out := make([]HistoryEntry, len(rows))
	for i, r := range rows {
		legs := make([]map[string]any, len(r.Tx.Postings))
		for j, p := range r.Tx.Postings {
			legs[j] = map[string]any{"account": p.Account, "side": string(p.Side), "amount_minor": p.Amount, "currency": p.Currency}
		}
		out[i] = HistoryEntry{At: r.PostedAt, Source: HistoryLedger, Action: "ledger." + string(r.Tx.Ref.Kind), Reason: r.Tx.Memo,
			Detail: map[string]any{"key": r.Tx.Key, "ref_kind": string(r.Tx.Ref.Kind), "ref_id": r.Tx.Ref.ID, "at": r.Tx.At, "postings": legs}}
	}
	return out
}

// mergeAudit returns a and b in time order, each entry once (by its ID).
func mergeAudit(a, b []store.AuditEntry) []store.AuditEntry {
	seen := make(map[string]bool, len(a))
	for _, x := range a {
		seen[x.ID.String()] = true
	}
	for _, x := range b {
		if !seen[x.ID.String()] {
			a = append(a, x)
		}
	}
	sort.SliceStable(a, func(i, j int) bool { return a[i].At.Before(a[j].At) })
	return a
}

// sortHistory orders entries by instant, keeping the given order among equal instants.
func sortHistory(entries []HistoryEntry) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].At.Before(entries[j].At) })
}

// withDetail returns a copy of base with the key-value pairs kv added.
func withDetail(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// isNotFound reports whether err is the store's ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
