// Package store is the one seam between the engine and PostgreSQL: every SQL statement
// of the library lives here, with the embedded, versioned migrations.
//
// Invariants:
//   - Migrations are numbered 0001, 0002, … with no gaps; an applied migration never
//     changes (its checksum is recorded and checked).
//   - The files a host's own tool runs (MigrationFS) and the statements Migrate runs are the
//     same bytes: each source file wrapped in goose annotations and followed by the statement
//     that records it in billing_schema_migrations. So a database tells which migrations it
//     holds whichever tool applied them, and CheckSchema reads that one table.
//   - Migrate holds one session advisory lock (migrateLockKey) while it runs River's
//     migrations and then the engine's (in one transaction): two processes migrating at once
//     serialize, and a failed engine migration leaves the engine's schema as it was. No other
//     code path takes a session advisory lock: commands run through PgBouncer in transaction
//     mode.
//   - Migrate and CheckSchema refuse a database whose schema is newer than the code
//     (ErrSchemaTooNew).
package store

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// sourceFS holds the migrations as written. Nothing runs them as they are: Migrations and
// MigrationFS serve each one with its bookkeeping statement (migrationFile).
//
//go:embed migrations/*.up.sql
var sourceFS embed.FS

// ErrSchemaTooNew is returned by Migrate when the database holds migrations this code
// does not know: a newer release migrated it, and running older code against it could
// corrupt data.
var ErrSchemaTooNew = errors.New("billing schema is newer than this code")

// ErrMigrationChanged is returned when an applied migration's recorded checksum differs
// from the embedded file: the code's migration history was rewritten.
var ErrMigrationChanged = errors.New("an applied billing migration was changed")

// Migration is one embedded schema step.
type Migration struct {
	// Version is the migration's number, 1, 2, … in order.
	Version int
	// Name is the file name without ".up.sql": "0001_schema".
	Name string
	// SQL is the file as MigrationFS serves it and Migrate runs it: the source wrapped in
	// goose annotations, followed by the statement that records the migration.
	SQL string
	// Checksum is the hex SHA-256 of the source file (without the bookkeeping added), as
	// billing_schema_migrations records it.
	Checksum string
}

// FileName is the migration's file name in MigrationFS: "0001_schema.up.sql".
func (m Migration) FileName() string { return m.Name + ".up.sql" }

// bookkeepingTable is the table that records the applied migrations. Every migration file
// creates it when missing (so the first file run by any tool makes it), and Migrate does
// before reading it.
const bookkeepingTable = `CREATE TABLE IF NOT EXISTS billing_schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`

// migrationFile returns the text served and run for the source file name (version v,
// checksum sum): goose's annotations first (comments to every other tool; StatementBegin
// and StatementEnd make goose send the file as one statement rather than split it at
// semicolons inside function bodies), the source, then the bookkeeping. Every byte here is
// part of the engine's schema history: change it only with care, since a database records
// the checksum of the source alone.
func migrationFile(v int, name, sum string, source []byte) string {
	var b strings.Builder
	b.WriteString("-- +goose Up\n-- +goose StatementBegin\n")
	b.Write(source)
	if len(source) > 0 && source[len(source)-1] != '\n' {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, `
-- Bookkeeping, added to every billing migration (not part of its checksum): Engine.CheckSchema
-- and Engine.Migrate read which migrations a database holds from this table, whichever tool
-- applied them. A second run of this file fails here rather than record it twice.
%s;
INSERT INTO billing_schema_migrations (version, name, checksum) VALUES (%d, '%s', '%s');
-- +goose StatementEnd
`, bookkeepingTable, v, name, sum)
	return b.String()
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(sourceFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".up.sql")
		num, _, ok := strings.Cut(name, "_")
		if !ok || !validName(name) {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.up.sql (lower-case letters, digits, underscores)", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(sourceFS, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		s := sha256.Sum256(body)
		sum := hex.EncodeToString(s[:])
		out = append(out, Migration{Version: v, Name: name, SQL: migrationFile(v, name, sum, body), Checksum: sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1..n without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// validName reports whether a migration name is safe to put in a SQL string literal and a
// file name: lower-case ASCII letters, digits and underscores.
func validName(name string) bool {
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return name != ""
}

// MigrationFS returns the migrations as a read-only file system of one flat directory (its
// root): "0001_schema.up.sql", "0002_idempotency.up.sql", …, each the text Migrate runs
// (Migration.SQL). Each call returns a new copy.
func MigrationFS() (fs.FS, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	// fstest.MapFS is the standard library's complete in-memory fs.FS (Open, ReadDir,
	// ReadFile, Stat, Glob, Sub); it is used here as one, and callers only see fs.FS.
	files := make(fstest.MapFS, len(migs))
	for _, m := range migs {
		files[m.FileName()] = &fstest.MapFile{Data: []byte(m.SQL), Mode: 0o444}
	}
	return files, nil
}

// migrateLockKey is the key of Migrate's session advisory lock (pg_advisory_lock, one
// bigint): "billmigr" in ASCII, 0x62696c6c6d696772.
const migrateLockKey int64 = 0x62696c6c6d696772

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the engine migrations applied by this call, in order; empty when the
	// schema was already current.
	Applied []int
	// RiverApplied lists the River migrations applied by this call; always empty when
	// River's migrations were skipped.
	RiverApplied []int
}

// MigrateOptions says what Migrate does besides the engine's own migrations.
type MigrateOptions struct {
	// SkipRiver leaves River's schema alone: the host migrates River itself.
	SkipRiver bool
	// RiverSchema is the schema River's tables are in; empty means the search_path, as
	// River's Config.Schema.
	RiverSchema string
}

// Migrate applies the pending River migrations (unless opts.SkipRiver), then the pending
// engine migrations, while holding a session advisory lock (pg_advisory_lock(migrateLockKey)
// on one connection of the pool): it is idempotent and safe to call from several processes
// at once (they serialize; the later ones find nothing to do). The lock is a session lock
// because it spans several transactions (River's, then the engine's); it needs a real
// session, so run Migrate on a direct connection, not through PgBouncer in transaction mode.
// The engine's migrations run in one transaction, so a failure leaves them as they were;
// River's run through rivermigrate, one transaction per River version (some of its steps
// cannot share a transaction).
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts MigrateOptions) (MigrateResult, error) {
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

	if _, err := conn.Exec(ctx, bookkeepingTable); err != nil {
		return res, fmt.Errorf("create migrations table: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn.Conn())
	if err != nil {
		return res, err
	}
	if st := compare(migs, applied); len(st.Unknown) > 0 || len(st.Changed) > 0 {
		return res, st.err()
	}

	if !opts.SkipRiver {
		// River first: the engine's migrations may refer to River's tables.
		migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: opts.RiverSchema})
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
	}

	err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
		for _, m := range migs {
			if _, ok := applied[m.Version]; ok {
				continue
			}
			// The file records itself in billing_schema_migrations (migrationFile).
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
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

// SchemaState is how a database's migrations differ from the code's; all lists empty
// means the database is current.
type SchemaState struct {
	// Known is how many engine migrations the code has.
	Known int
	// Missing lists the engine migrations the code has and the database lacks.
	Missing []int
	// Unknown lists the migrations the database has and the code does not know: newer
	// code migrated it.
	Unknown []int
	// Changed lists the applied migrations whose recorded checksum differs from the code's.
	Changed []int
	// RiverMissing and RiverUnknown are the same for River's migrations (line main);
	// both empty when River was not checked.
	RiverMissing []int
	RiverUnknown []int
}

// Current reports whether the database holds exactly the code's migrations.
func (s SchemaState) Current() bool {
	return len(s.Missing)+len(s.Unknown)+len(s.Changed)+len(s.RiverMissing)+len(s.RiverUnknown) == 0
}

// err is Migrate's error for a state it cannot migrate from.
func (s SchemaState) err() error {
	if len(s.Unknown) > 0 {
		return fmt.Errorf("%w: database has migrations %v, code knows up to %d", ErrSchemaTooNew, s.Unknown, s.Known)
	}
	if len(s.Changed) > 0 {
		return fmt.Errorf("%w: %v", ErrMigrationChanged, s.Changed)
	}
	return nil
}

// compare returns how the applied migrations (version → checksum) differ from migs.
func compare(migs []Migration, applied map[int]string) SchemaState {
	st := SchemaState{Known: len(migs)}
	for _, m := range migs {
		sum, ok := applied[m.Version]
		switch {
		case !ok:
			st.Missing = append(st.Missing, m.Version)
		case sum != m.Checksum:
			st.Changed = append(st.Changed, m.Version)
		}
	}
	for v := range applied {
		if v > len(migs) || v < 1 {
			st.Unknown = append(st.Unknown, v)
		}
	}
	slices.Sort(st.Unknown)
	return st
}

// CheckSchema compares the database's migrations with the code's: the engine's (from
// billing_schema_migrations, whichever tool applied them) and, unless skipRiver, River's in
// riverSchema (empty: the search_path). It only reads, and takes no lock.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, riverSchema string, skipRiver bool) (SchemaState, error) {
	migs, err := Migrations()
	if err != nil {
		return SchemaState{}, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('billing_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return SchemaState{}, err
	}
	applied := map[int]string{}
	if exists {
		if applied, err = appliedMigrations(ctx, pool); err != nil {
			return SchemaState{}, err
		}
	}
	st := compare(migs, applied)
	if skipRiver {
		return st, nil
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: riverSchema})
	if err != nil {
		return st, err
	}
	existing, err := migrator.ExistingVersions(ctx)
	if err != nil {
		return st, fmt.Errorf("river migrations: %w", err)
	}
	have := map[int]bool{}
	for _, m := range existing {
		have[m.Version] = true
	}
	known := map[int]bool{}
	for _, m := range migrator.AllVersions() {
		known[m.Version] = true
		if !have[m.Version] {
			st.RiverMissing = append(st.RiverMissing, m.Version)
		}
	}
	for _, m := range existing {
		if !known[m.Version] {
			st.RiverUnknown = append(st.RiverUnknown, m.Version)
		}
	}
	return st, nil
}

// appliedMigrations returns the applied versions with their checksums, from the
// bookkeeping table (which must exist).
func appliedMigrations(ctx context.Context, q Querier) (map[int]string, error) {
	rows, err := q.Query(ctx, `SELECT version, checksum FROM billing_schema_migrations`)
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
		h.Write([]byte(m.SQL))
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
