package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a row the caller named does not exist.
var ErrNotFound = errors.New("not found")

// maxTxAttempts bounds the retries of a transaction that failed with a serialization
// failure (40001) or a deadlock (40P01).
const maxTxAttempts = 5

// Beginner is what a command runs on: the engine's *pgxpool.Pool, or a host's pgx.Tx (the
// engine's …Tx commands), in which Begin opens a savepoint.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction on db: committed when fn returns nil, rolled back when it
// returns an error. On a pool, a serialization failure or deadlock retries the whole of fn,
// so fn must do nothing but database work through tx (no gateway calls, no channel sends).
//
// On a host's transaction (db is a pgx.Tx) fn runs in a savepoint: an error rolls back
// fn's writes and leaves the host's transaction usable, and nothing is retried here, since
// after a serialization failure or deadlock only the host can retry its whole transaction.
func InTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) error {
	if _, nested := db.(pgx.Tx); nested {
		return pgx.BeginFunc(ctx, db, fn)
	}
	var err error
	for range maxTxAttempts {
		err = pgx.BeginFunc(ctx, db, fn)
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("transaction failed %d times: %w", maxTxAttempts, err)
}

// withSettings runs fn in a transaction on db (a savepoint in a host's transaction) after
// settings, SET LOCAL statements that last until it ends: the planner settings a statement
// needs (JIT off where its estimates would compile the plan at every run), without touching
// the pooled connection's session.
func withSettings(ctx context.Context, db Beginner, settings string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, settings); err != nil {
			return err
		}
		return fn(tx)
	})
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

// IsLockTimeout reports whether err is a lock timeout (55P03, lock_not_available): a
// statement run with a lock_timeout waited longer than it on a lock, and was rolled back.
func IsLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
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

// IsInsufficientPrivilege reports whether err is PostgreSQL's insufficient_privilege
// (42501): the role may not do what the statement asked.
func IsInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}
