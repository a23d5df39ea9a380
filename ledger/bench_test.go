package ledger_test

import (
	"strconv"
	"testing"

	"github.com/smm-gpt/billing/ledger"
)

// BenchmarkBookApply posts two-leg charges to the in-memory book: the cost of the pure part
// (validation, fingerprint, balances) that the PostgreSQL store pays on top of its I/O.
func BenchmarkBookApply(b *testing.B) {
	book := ledger.NewBook(nil)
	tx, err := ledger.Charge("charge:p", "p", "RUB", 99000, t0)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = "charge:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tx.Key = keys[i]
		if _, _, err := book.Apply(tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate validates a two-leg charge against the standard chart.
func BenchmarkValidate(b *testing.B) {
	tx, err := ledger.Charge("charge:p", "p", "RUB", 99000, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ledger.Validate(tx, ledger.StandardChart); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFingerprint hashes a two-leg charge.
func BenchmarkFingerprint(b *testing.B) {
	tx, err := ledger.Charge("charge:p", "p", "RUB", 99000, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = ledger.Fingerprint(tx)
	}
}
