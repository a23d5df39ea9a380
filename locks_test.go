package billing_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoSessionAdvisoryLockOnCommandPaths keeps the engine usable through PgBouncer in
// transaction mode: a session advisory lock (pg_advisory_lock, pg_try_advisory_lock and
// their _shared forms) is tied to a server connection the pooler may hand to another client
// after each transaction. Only Migrate may take one (documented in Engine.Migrate and the
// README), and billingtest's template database, on a connection of its own. Commands use
// pg_advisory_xact_lock, released at commit.
func TestNoSessionAdvisoryLockOnCommandPaths(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{
		filepath.Join("internal", "store", "migrate.go"): true, // Migrate
		"migrations.go":                       true, // Engine.Migrate's doc names its lock
		filepath.Join("billingtest", "db.go"): true, // the template database, on a connection of its own
	}
	sessionLock := regexp.MustCompile(`(?i)pg_(try_)?advisory_lock(_shared)?\s*\(`)
	var found []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || allowed[path] || strings.HasSuffix(path, "_test.go") ||
			!(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".sql")) {
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if sessionLock.Match(body) {
			found = append(found, path)
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, found, "session advisory locks outside Migrate: use pg_advisory_xact_lock")
}
