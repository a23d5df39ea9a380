package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AuditEntry is one row of the audit log: who did what to which subject, when and why.
type AuditEntry struct {
	ID      uuid.UUID
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Reason  string
	Detail  map[string]any
}

// InsertAudit writes e in tx. A zero ID gets a new UUIDv7.
func InsertAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	raw, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = execRow(ctx, tx, strings.TrimPrefix(e.Subject, "subscription:"), insertAuditSQL,
		e.ID, e.At, e.Actor, e.Action, e.Subject, e.Reason, raw)
	return err
}

var insertAuditSQL = newRowsStatement(`INSERT INTO billing_audit_log (id, at, actor, action, subject, reason, detail)
		VALUES `, `($1, $2, $3, $4, $5, $6, $7)`, ``, false)

// ListAudit returns the audit entries of subject in time order.
func ListAudit(ctx context.Context, q Querier, subject string) ([]AuditEntry, error) {
	rows, err := q.Query(ctx, `SELECT id, at, actor, action, subject, reason, detail
		FROM billing_audit_log WHERE subject = $1 ORDER BY at, id`, subject)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[AuditEntry])
}
