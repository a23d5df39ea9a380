// Package crashtest holds the engine's multi-process crash test ("kill -9 test"), in
// crash_test.go: several OS processes run the engine with real River workers against one
// PostgreSQL database and one fake payment provider served over HTTP
// (billingtest.GatewayServer), while the test kills them with SIGKILL at random moments and
// crash-restarts PostgreSQL. It then checks that the provider holds exactly one successful
// charge per subscription period, each in the ledger exactly once, and that no subscription
// is stuck. The package has no code of its own.
//
// Run it alone, at a bigger size:
//
//	BILLING_CRASH_SUBS=2000 BILLING_CRASH_SECONDS=120 ./scripts/pg-tmp.sh \
//	    go test -race -count=1 -run TestCrash -v -timeout 30m ./internal/crashtest/
package crashtest
