package billingtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/smm-gpt/billing/internal/store"
)

// RiverSchemaEnv names the environment variable that puts River's tables in a schema of
// their own in the databases NewPool makes, as a host's river.Config.Schema does:
// BILLING_TEST_RIVER_SCHEMA=river_jobs go test ./... runs a suite that way (make
// test-river-schema). NewRiverClient and NewRunner follow it.
const RiverSchemaEnv = "BILLING_TEST_RIVER_SCHEMA"

// RiverSchema returns the schema of River's tables in the databases NewPool makes: the
// value of RiverSchemaEnv, or "" (River's tables on the search_path, River's default).
// Give it to a River client of your own on such a database (river.Config.Schema).
func RiverSchema() string { return os.Getenv(RiverSchemaEnv) }

// DatabaseURL returns $DATABASE_URL. When it is unset, the test is skipped with a message
// saying how to get a database; when CI is set too, the test fails instead, so a CI run
// without PostgreSQL cannot pass by skipping.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("DATABASE_URL")
	if u != "" {
		return u
	}
	const msg = "DATABASE_URL is not set: this test needs PostgreSQL. Run `make test`, which starts a throwaway server, " +
		"or set DATABASE_URL to a server where the test may create and drop databases."
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// NewPool returns a pool on a new database of its own, with the engine's and River's
// migrations applied, dropped when the test ends. Tests that use it may run in parallel.
// The database is copied from a template migrated once per migration set, so it costs
// one CREATE DATABASE, not a migration run.
//
// When the test ends (before the pool closes), NewPool checks the copies the schema keeps
// for speed against what they are copied from (the open_until of usage rows), and fails
// the test if one differs: the engine's commands must leave them right whatever happened.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return NewPoolWith(tb, nil)
}

// NewPoolWith is NewPool with the host's own migrations applied too, after the engine's and
// River's: every file of hostMigrations' root directory whose name ends in ".sql", in name
// order, each in one transaction, except "*.down.sql" files; a file with goose annotations
// runs up to its "-- +goose Down" line. That fits a golang-migrate or goose directory
// (embed it, and pass fs.Sub(embedded, "migrations")) or a plain one. A nil hostMigrations
// is NewPool. The migrated database is a template kept per content of hostMigrations, so a
// test pays for the host's migrations once per test binary and set of files.
//
// Trap: the files run as they are, without your tool's bookkeeping table; a test that
// needs that table (to run your tool on top) should migrate a NewEmptyPool itself.
func NewPoolWith(tb testing.TB, hostMigrations fs.FS) *pgxpool.Pool {
	tb.Helper()
	base := DatabaseURL(tb)
	tpl, err := migratedTemplate(base, hostMigrations)
	if err != nil {
		tb.Fatalf("billingtest: prepare template database: %v", err)
	}
	pool := newDatabase(tb, base, tpl)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		wrong, err := store.StaleOpenUntil(ctx, pool)
		if err != nil {
			tb.Logf("billingtest: check open_until: %v", err)
			return
		}
		if len(wrong) > 0 {
			tb.Errorf("billingtest: usage rows whose open_until differs from their subscription and period: %v", wrong)
		}
	})
	return pool
}

// NewEmptyPool returns a pool on a new, empty database of its own (no migrations),
// dropped when the test ends: for tests of Migrate itself.
func NewEmptyPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return newDatabase(tb, DatabaseURL(tb), "template0")
}

func newDatabase(tb testing.TB, base, template string) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	name := "billingtest_" + randomHex(8)
	if err := adminExec(ctx, base, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		tb.Fatalf("billingtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		if err := adminExec(context.Background(), base, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			tb.Logf("billingtest: drop database %s: %v", name, err)
		}
	})
	cfg, err := pgxpool.ParseConfig(withDatabase(base, name))
	if err != nil {
		tb.Fatalf("billingtest: parse DATABASE_URL: %v", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("billingtest: connect: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

var (
	templateMu    sync.Mutex
	templateReady = map[string]string{} // base URL and host migrations' hash -> template name
)

// migratedTemplate returns the name of a template database holding the current
// migrations and the host's (hostMigrations, may be nil), creating it once. Its name carries
// a hash of all of them, so a change of schema makes a new template; concurrent test
// binaries serialize on an advisory lock.
func migratedTemplate(base string, hostMigrations fs.FS) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	host, err := readHostMigrations(hostMigrations)
	if err != nil {
		return "", fmt.Errorf("host migrations: %w", err)
	}
	fp, err := store.SchemaFingerprint()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(fp))
	fmt.Fprintf(h, "river schema:%q", RiverSchema())
	for _, m := range host {
		fmt.Fprintf(h, "%d:%s:%d:%s", len(m.name), m.name, len(m.sql), m.sql)
	}
	key := base + "\x00" + hex.EncodeToString(h.Sum(nil))
	if name, ok := templateReady[key]; ok {
		return name, nil
	}
	name := "billingtest_tpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7281530001)`); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, `SELECT pg_advisory_unlock(7281530001)`) //nolint:errcheck // the session ends right after
	var ready bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready); err != nil {
		return "", err
	}
	if !ready {
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s", name)); err != nil {
			return "", err
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0", name)); err != nil {
			return "", err
		}
		pool, err := pgxpool.New(ctx, withDatabase(base, name))
		if err != nil {
			return "", err
		}
		if schema := RiverSchema(); schema != "" {
			_, err = pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
		}
		if err == nil {
			_, err = store.Migrate(ctx, pool, store.MigrateOptions{RiverSchema: RiverSchema()})
		}
		if err == nil {
			err = applyHostMigrations(ctx, pool, host)
		}
		pool.Close()
		if err != nil {
			return "", err
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name)); err != nil {
			return "", err
		}
	}
	templateReady[key] = name
	return name, nil
}

// hostMigration is one file NewPoolWith runs: its name and the SQL to run.
type hostMigration struct {
	name, sql string
}

// readHostMigrations returns the files of fsys's root that NewPoolWith runs, in name order.
func readHostMigrations(fsys fs.FS) ([]hostMigration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []hostMigration
	for _, e := range entries { // fs.ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") || strings.HasSuffix(name, ".down.sql") {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		sql := string(body)
		if i := gooseDown.FindStringIndex(sql); i != nil {
			sql = sql[:i[0]]
		}
		out = append(out, hostMigration{name: name, sql: sql})
	}
	return out, nil
}

// gooseDown finds goose's "-- +goose Down" annotation line.
var gooseDown = regexp.MustCompile(`(?m)^--\s*\+goose\s+Down\b`)

// applyHostMigrations runs each host migration in a transaction of its own.
func applyHostMigrations(ctx context.Context, pool *pgxpool.Pool, host []hostMigration) error {
	for _, m := range host {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, m.sql)
			return err
		}); err != nil {
			return fmt.Errorf("host migration %s: %w", m.name, err)
		}
	}
	return nil
}

func adminExec(ctx context.Context, base, sql string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns the connection URL base with its database replaced by name.
func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		// A keyword/value DSN: append dbname, which wins over an earlier one.
		return strings.TrimSpace(base) + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
