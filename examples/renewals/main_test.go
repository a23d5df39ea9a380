package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/billingtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt with the current output")

// TestRenewalsGolden runs the story on its own database and compares the output with the
// golden file: a year of renewals, a soft decline retried, a hard decline, consent withdrawn.
func TestRenewalsGolden(t *testing.T) {
	t.Parallel()
	pool := billingtest.NewEmptyPool(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), pool.Config().ConnString(), &out))
	golden := filepath.Join("testdata", "golden.txt")
	if *update {
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}
