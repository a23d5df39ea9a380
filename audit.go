package billing

import (
	"context"
	"strings"
	"time"

	"github.com/smm-gpt/billing/internal/store"
)

// AuditEntry is one row of the engine's audit log: who did what to which subject, when
// and why. Every state change of a subscription, tariff or refund request writes one, in
// the same transaction as the change (TERMS 2.1.2: operator actions are audited).
type AuditEntry struct {
	// At is when it happened, on the engine's clock.
	At time.Time
	// Actor is who did it: "system" for the engine's own jobs, else the ID the caller gave.
	Actor string
	// Action names the event, e.g. "subscription.suspend", "tariff.publish",
	// "refund.rejected".
	Action string
	// Subject is what it was about: "subscription:<id>" or "tariff:<code>".
	Subject string
	// Reason is the why the actor gave; empty for automatic events without one.
	Reason string
	// Detail holds what else changed (statuses before and after, versions, amounts).
	Detail map[string]any
}

// AuditLogList returns the audit entries of subject in time order. Subjects are
// "subscription:<id>" (refund requests are logged under their subscription),
// "tariff:<code>" and "customer:<id>" (account deletion requests); see SubscriptionSubject,
// TariffSubject and CustomerSubject.
func (e *Engine) AuditLogList(ctx context.Context, subject string) (_ []AuditEntry, err error) {
	ctx, span := e.tel.start(ctx, "AuditLogList")
	defer span.end(&err)
	check := inputCheck{op: "AuditLogList"}
	if !strings.HasPrefix(subject, "subscription:") && !strings.HasPrefix(subject, "tariff:") &&
		!strings.HasPrefix(subject, "customer:") {
		check.add("subject", `must be "subscription:<id>", "tariff:<code>" or "customer:<id>"`)
	}
	if err := check.err(); err != nil {
		return nil, err
	}
	rows, err := store.ListAudit(ctx, e.pool, subject)
	if err != nil {
		return nil, opError("AuditLogList", err)
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry{At: r.At, Actor: r.Actor, Action: r.Action, Subject: r.Subject, Reason: r.Reason, Detail: r.Detail}
	}
	return out, nil
}

// SubscriptionSubject is the audit subject of a subscription (and of its refund requests).
func SubscriptionSubject(id string) string { return "subscription:" + id }

// TariffSubject is the audit subject of a tariff.
func TariffSubject(code string) string { return "tariff:" + code }

// CustomerSubject is the audit subject of a customer's account (its deletion, TERMS 2.2.4).
func CustomerSubject(id string) string { return "customer:" + id }
