package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrKeyConflict is returned by ClaimKey when the key was used before with a different
// request hash.
var ErrKeyConflict = errors.New("idempotency key reused with a different request")

// ClaimKey claims (scope, key) for a request with the given hash, inside tx.
//
//   - First use: the key is claimed; replay is nil. The caller does its work and calls
//     SaveResult in the same transaction, so the claim and the effect commit together.
//   - Used before with the same hash: replay holds the saved result; the caller returns it
//     and does nothing else.
//   - Used before with another hash: ErrKeyConflict.
//
// A concurrent transaction holding the same key blocks this one until it ends (the
// primary key's insert lock), so two racing requests with one key never both act.
func ClaimKey(ctx context.Context, tx pgx.Tx, scope, key string, hash []byte, now time.Time) (replay json.RawMessage, err error) {
	tag, err := tx.Exec(ctx, `INSERT INTO billing_idempotency_keys (scope, key, request_hash, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING`, scope, key, hash, now)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	var prevHash []byte
	var result []byte
	if err := tx.QueryRow(ctx, `SELECT request_hash, result FROM billing_idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&prevHash, &result); err != nil {
		return nil, interpret(err)
	}
	if !bytes.Equal(prevHash, hash) {
		return nil, ErrKeyConflict
	}
	if result == nil {
		result = []byte("null")
	}
	return result, nil
}

// SaveResult stores the result of the command that claimed (scope, key).
func SaveResult(ctx context.Context, tx pgx.Tx, scope, key string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE billing_idempotency_keys SET result = $3 WHERE scope = $1 AND key = $2`, scope, key, raw)
	return err
}
