package billing

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/smm-gpt/billing/internal/store"
)

// MigrationsFS returns the engine's migrations as a read-only file system, for a host that
// migrates its database with its own tool. Its root is one flat directory of files named
// NNNN_name.up.sql ("0001_schema.up.sql", "0002_idempotency.up.sql", …): run every file,
// in name order, each in one transaction. Engine.Migrate runs exactly these files, so the
// SQL exists once.
//
// Each file is the migration's SQL between goose's annotations ("-- +goose Up",
// "-- +goose StatementBegin" … "-- +goose StatementEnd"; comments to any other tool),
// followed by two statements that record the migration in billing_schema_migrations:
// that table is how CheckSchema and Migrate know what a database holds, whichever tool ran
// the files. A file run twice fails on that record instead of applying twice.
//
// Tools that consume it as is (the first two checked with golang-migrate v4.20.1 and goose
// v3.30.1: every file applied, then CheckSchema passes and Migrate finds nothing to do):
//   - golang-migrate: src, _ := iofs.New(billing.MigrationsFS(), "."), then
//     migrate.NewWithSourceInstance("iofs", src, dbURL). The names are its
//     {version}_{title}.up.sql (there are no down files). Give the billing files a version
//     table of their own, apart from the host's migrations:
//     "x-migrations-table=billing_migrate_version" in dbURL.
//   - goose v3: store, _ := database.NewStore(database.DialectPostgres, "billing_goose_db_version"),
//     then goose.NewProvider("", db, billing.MigrationsFS(), goose.WithStore(store)) and
//     provider.Up(ctx). goose reads the version before the "_" and the annotations in the
//     files.
//   - Any runner of a directory of .sql files: write the files out with
//     os.CopyFS(dir, billing.MigrationsFS()) and run them in name order, each in one
//     transaction. psql: for f in dir/*.up.sql; do psql -v ON_ERROR_STOP=1
//     --single-transaction -f "$f"; done. Atlas reads golang-migrate directories
//     ("file://dir?format=golang-migrate"; not checked here).
//
// A database that Migrate already migrated holds every file: tell a tool taking over so
// (golang-migrate: `migrate force N`; goose: record versions 1..N in its version table)
// instead of running them again, which fails.
//
// River's own migrations are not in it: run `river migrate-up` (or rivermigrate) as well,
// into the schema your River client uses. Then call CheckSchema at boot.
func MigrationsFS() fs.FS {
	fsys, err := store.MigrationFS()
	if err != nil { // unreachable: the embedded files are checked by the tests
		panic(fmt.Sprintf("billing: embedded migrations: %v", err))
	}
	return fsys
}

// MigrateResult says what Migrate applied; both lists are empty when the schema was
// already current.
type MigrateResult struct {
	// Applied lists the engine migrations applied by this call, in order; empty when the
	// schema was already current.
	Applied []int
	// RiverApplied lists the River migrations applied by this call; always empty when
	// River's migrations were skipped (Config.SkipRiverMigrations).
	RiverApplied []int
}

// ErrSchemaTooNew is returned by Migrate against a database migrated by newer code, and
// matched by a *SchemaError from CheckSchema when the database has migrations (the engine's
// or River's) this code does not know.
var ErrSchemaTooNew = store.ErrSchemaTooNew

// ErrSchemaOutdated is matched by a *SchemaError when the database lacks migrations the
// code needs (the engine's or River's): run Migrate, or your tool on MigrationsFS and
// `river migrate-up`.
var ErrSchemaOutdated = errors.New("billing: database schema is missing migrations")

// ErrMigrationChanged is returned by Migrate, and matched by a *SchemaError, when an
// applied migration's recorded checksum differs from the code's file: the migration
// history was rewritten after the database was migrated.
var ErrMigrationChanged = store.ErrMigrationChanged

// ErrSchemaMismatch is matched by every *SchemaError: the database's schema is not the
// one this code was written for.
var ErrSchemaMismatch = errors.New("billing: database schema does not match the code")

// SchemaError is CheckSchema's answer for a database whose migrations differ from the
// code's. It matches ErrSchemaMismatch always, ErrSchemaOutdated when migrations are
// missing, ErrSchemaTooNew when the database has some the code does not know, and
// ErrMigrationChanged when an applied one was changed.
type SchemaError struct {
	// Missing lists the engine migrations (by number) the database lacks.
	Missing []int
	// Unknown lists the engine migrations the database has and the code does not know.
	Unknown []int
	// Changed lists the applied engine migrations whose recorded checksum differs.
	Changed []int
	// RiverMissing lists the River migrations (line main) the database lacks, in the
	// River client's schema.
	RiverMissing []int
	// RiverUnknown lists the River migrations the database has and this River does not know.
	RiverUnknown []int
}

// Error lists what differs.
func (e *SchemaError) Error() string {
	var parts []string
	add := func(what string, v []int) {
		if len(v) > 0 {
			parts = append(parts, fmt.Sprintf("%s %v", what, v))
		}
	}
	add("missing engine migrations", e.Missing)
	add("engine migrations newer than the code", e.Unknown)
	add("changed engine migrations", e.Changed)
	add("missing River migrations", e.RiverMissing)
	add("River migrations newer than the code", e.RiverUnknown)
	return "billing: database schema does not match the code: " + strings.Join(parts, "; ")
}

// Is matches the sentinels named in the type's comment.
func (e *SchemaError) Is(target error) bool {
	switch target {
	case ErrSchemaMismatch:
		return true
	case ErrSchemaOutdated:
		return len(e.Missing)+len(e.RiverMissing) > 0
	case ErrSchemaTooNew:
		return len(e.Unknown)+len(e.RiverUnknown) > 0
	case ErrMigrationChanged:
		return len(e.Changed) > 0
	}
	return false
}

// Migrate applies River's migrations (through rivermigrate, unless
// Config.SkipRiverMigrations) and then the engine's (the files of MigrationsFS, in one
// transaction): idempotent, and safe when several processes call it at once. It refuses a
// schema newer than the code with ErrSchemaTooNew, and a changed applied migration with
// ErrMigrationChanged.
//
// River is migrated into the schema of the client given to UseRiver, or the search_path's
// when UseRiver was not called yet: a host whose River lives in another schema calls
// UseRiver first, or migrates River itself.
//
// Lock: Migrate holds a session advisory lock, pg_advisory_lock(0x62696c6c6d696772) ("billmigr"
// in ASCII), on one connection of the pool from start to end, so that processes migrating at
// once serialize. It is a session lock, not a transaction lock, because it spans River's
// transactions and the engine's. Through PgBouncer in transaction mode a session lock is
// not safe (the unlock may reach another server connection): run Migrate over a direct
// connection, or migrate with your own tool. No other method of the engine takes a session
// lock; the commands use only transaction-scoped locks (pg_advisory_xact_lock, row locks).
func (e *Engine) Migrate(ctx context.Context) (_ MigrateResult, err error) {
	ctx, span := e.tel.start(ctx, "Migrate")
	defer span.end(&err)
	sr, err := store.Migrate(ctx, e.pool, store.MigrateOptions{SkipRiver: e.cfg.SkipRiverMigrations, RiverSchema: e.riverSchema()})
	res := MigrateResult{Applied: sr.Applied, RiverApplied: sr.RiverApplied}
	if err != nil {
		return res, opError("migrate", err)
	}
	if len(res.Applied)+len(res.RiverApplied) > 0 {
		e.logger.InfoContext(ctx, "billing: migrated", "engine", res.Applied, "river", res.RiverApplied)
	}
	return res, nil
}

// CheckSchema returns nil when the database holds exactly the migrations this code was
// written for, the engine's and River's (in the schema of the client given to UseRiver, or
// the search_path's before UseRiver), and a *SchemaError otherwise (errors.Is it with
// ErrSchemaMismatch, ErrSchemaOutdated, ErrSchemaTooNew or ErrMigrationChanged). It only
// reads: a host that migrates with its own tool calls it at boot, after UseRiver, and
// refuses to serve on an error. Neither New nor UseRiver calls it (New does no I/O); Migrate
// checks the same on its own.
func (e *Engine) CheckSchema(ctx context.Context) (err error) {
	ctx, span := e.tel.start(ctx, "CheckSchema")
	defer span.end(&err)
	st, err := store.CheckSchema(ctx, e.pool, e.riverSchema(), false)
	if err != nil {
		return opError("CheckSchema", err)
	}
	if st.Current() {
		return nil
	}
	return &SchemaError{Missing: st.Missing, Unknown: st.Unknown, Changed: st.Changed,
		RiverMissing: st.RiverMissing, RiverUnknown: st.RiverUnknown}
}
