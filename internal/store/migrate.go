// Package store is the one seam between the engine and PostgreSQL: every SQL statement
// of the library lives here, with the embedded, versioned migrations.
//
// Invariants:
//   - Migrations are numbered 0001, 0002, … with no gaps; an applied migration never
//     changes (its checksum is recorded and checked).
//   - Migrate holds one advisory lock while it runs River's migrations and then the
//     engine's (in one transaction): two processes migrating at once serialize, and a
//     failed engine migration leaves the engine's schema as it was.
//   - Migrate refuses a database whose schema is newer than the code (ErrSchemaTooNew).
package store

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.up.sql
var migrationFS embed.FS

// ErrSchemaTooNew is returned by Migrate when the database holds migrations this code
// does not know: a newer release migrated it, and running older code against it could
// corrupt data.
var ErrSchemaTooNew = errors.New("billing schema is newer than this code")

// ErrMigrationChanged is returned when an applied migration's recorded checksum differs
// from the embedded file: the code's migration history was rewritten.
var ErrMigrationChanged = errors.New("an applied billing migration was changed")

// Migration is one embedded schema step.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".up.sql")
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.up.sql", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: name, SQL: string(body), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1..n without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// migrateLockKey is the advisory lock key of Migrate: "billing:migrate" folded to int64.
const migrateLockKey int64 = 0x62696c6c6d696772

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the engine migrations applied by this call, in order; empty when the
	// schema was already current.
	Applied []int
	// RiverApplied lists the River migrations applied by this call.
	RiverApplied []int
}

// Migrate applies the pending River migrations, then the pending engine migrations, while
// holding a session advisory lock: it is idempotent and safe to call from several
// processes at once (they serialize; the later ones find nothing to do). The engine's
// migrations run in one transaction, so a failure leaves them as they were; River's run
// through rivermigrate, one transaction per River version (some of its steps cannot share
// a transaction).
func Migrate(ctx context.Context, pool *pgxpool.Pool) (MigrateResult, error) {
	var res MigrateResult
	migs, err := Migrations()
	if err != nil {
		return res, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return res, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even when ctx is done. If this fails the
		// connection is broken, and the server drops the lock with the session.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
			conn.Conn().PgConn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing is the fallback
		}
	}()

	applied, err := appliedMigrations(ctx, conn.Conn())
	if err != nil {
		return res, err
	}
	for v, sum := range applied {
		if v > len(migs) {
			return res, fmt.Errorf("%w: database has migration %d, code knows up to %d", ErrSchemaTooNew, v, len(migs))
		}
		if migs[v-1].Checksum != sum {
			return res, fmt.Errorf("%w: %s", ErrMigrationChanged, migs[v-1].Name)
		}
	}

	// River first: the engine's migrations may refer to River's tables.
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return res, err
	}
	rr, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range rr.Versions {
		res.RiverApplied = append(res.RiverApplied, v.Version)
	}

	err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
		for _, m := range migs {
			if _, ok := applied[m.Version]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO billing_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
				m.Version, m.Name, m.Checksum); err != nil {
				return err
			}
			res.Applied = append(res.Applied, m.Version)
		}
		return nil
	})
	if err != nil {
		res.Applied = nil
		return res, err
	}
	return res, nil
}

// appliedMigrations creates the bookkeeping table when missing and returns the applied
// versions with their checksums.
func appliedMigrations(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS billing_schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		checksum   text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create migrations table: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version, checksum FROM billing_schema_migrations`)
	if err != nil {
		return nil, err
	}
	type row struct {
		Version  int
		Checksum string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return nil, err
	}
	applied := make(map[int]string, len(list))
	for _, r := range list {
		applied[r.Version] = r.Checksum
	}
	return applied, nil
}

// SchemaFingerprint is a hash of every migration Migrate would apply, the engine's and
// River's: two codes with the same fingerprint produce the same schema.
func SchemaFingerprint() (string, error) {
	migs, err := Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migs {
		h.Write([]byte(m.Checksum))
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", err
	}
	for _, m := range migrator.AllVersions() {
		h.Write([]byte(strconv.Itoa(m.Version)))
		h.Write([]byte(m.SQLUp))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
