package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row the caller named does not exist.
var ErrNotFound = errors.New("not found")

// maxTxAttempts bounds the retries of a transaction that failed with a serialization
// failure (40001) or a deadlock (40P01).
const maxTxAttempts = 5

// InTx runs fn in a transaction on pool: committed when fn returns nil, rolled back when
// it returns an error. A serialization failure or deadlock retries the whole of fn, so fn
// must do nothing but database work through tx (no gateway calls, no channel sends).
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	var err error
	for range maxTxAttempts {
		err = pgx.BeginFunc(ctx, pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("transaction failed %d times: %w", maxTxAttempts, err)
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation, optionally of
// the named constraint (empty: any).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return constraint == "" || pgErr.ConstraintName == constraint
	}
	return false
}

// interpret maps driver errors to the store's own: pgx.ErrNoRows becomes ErrNotFound.
func interpret(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Querier is what reads need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RiverTable returns River's table as a quoted SQL identifier in schema (River's
// Config.Schema; "" means the search_path, as River reads it): "river_job" or
// "jobs"."river_job". Quoting makes any schema name safe to splice into a statement.
func RiverTable(schema, table string) string {
	if schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{schema, table}.Sanitize()
}
