package ledger_test

import (
	"errors"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the host's zoneinfo

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/money"
)

// The locations the tests reason in: Moscow (the default, no DST since 2014), Berlin (DST at
// 02:00/03:00) and Havana (DST jumps over midnight, so some local midnights do not exist).
var (
	moscow = mustLocation("Europe/Moscow")
	berlin = mustLocation("Europe/Berlin")
	havana = mustLocation("America/Havana")
)

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// t0 is an arbitrary instant the tests post at.
var t0 = time.Date(2026, time.January, 15, 12, 0, 0, 0, moscow)

// sentinels are every error a test may expect from the package; requireErrors checks that err
// matches exactly the wanted ones among them.
var sentinels = []error{
	ledger.ErrInvalidKey, ledger.ErrInvalidReference, ledger.ErrInvalidMemo, ledger.ErrMissingTime,
	ledger.ErrTooFewPostings, ledger.ErrNonPositive, ledger.ErrInvalidSide, ledger.ErrUnknownAccount,
	ledger.ErrCurrencyMismatch, ledger.ErrUnbalanced, ledger.ErrKeyReused, ledger.ErrAlreadyReversed,
	ledger.ErrInvalidReversal, ledger.ErrRefundSplit, ledger.ErrInvalidPlan, ledger.ErrRecognizedOutOfRange,
	money.ErrUnknownCurrency, money.ErrPrecision, money.ErrRange,
}

// requireErrors fails unless errors.Is(err, s) holds exactly for the sentinels in want.
// tester is what both *testing.T and *rapid.T offer.
type tester interface {
	require.TestingT
	Helper()
}

func requireErrors(t tester, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, s := range sentinels {
		require.Equal(t, slices.Contains(want, s), errors.Is(err, s), "errors.Is(%v, %v)", err, s)
	}
}

// rub returns a posting of amount kopecks on role's RUB account.
func rub(role ledger.Role, side ledger.Side, amount int64) ledger.Posting {
	return ledger.Posting{Account: role.Code("RUB"), Side: side, Amount: amount, Currency: "RUB"}
}

// requireBalanced fails unless tx's signed amounts sum to zero in each currency.
func requireBalanced(t *testing.T, tx ledger.Transaction) {
	t.Helper()
	sums := map[string]int64{}
	for _, p := range tx.Postings {
		require.Positive(t, p.Amount)
		sums[p.Currency] += p.Signed()
	}
	for c, s := range sums {
		require.Zero(t, s, "currency %s", c)
	}
}
