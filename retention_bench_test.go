package billing_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// tenMillion is the number of usage events BenchmarkConsumeWithTenMillionEvents puts in
// billing_usage_events before it measures.
const tenMillion = 10_000_000

// BenchmarkConsumeWithTenMillionEvents shows what the size of billing_usage_events (the
// table the retention prune keeps in check, and Consume's idempotency record) does to
// Consume: two fixtures as BenchmarkConsume's, one with the table empty, the other with
// tenMillion events of 100 000 other subscriptions (one INSERT … SELECT generate_series,
// then VACUUM ANALYZE, outside the timed region, about 4 minutes on 2 shared cores). Its
// sub-benchmark interleaves Consume on the two (interleaveConsume: the order swapped every
// round, so a drift of the shared machine's speed hits both alike) and reports the ratios
// full ÷ empty of ns/op (1.0: no slower). Run it with -benchtime Nx for N rounds
// (BENCHMARKS.md, "Retention"); the fill is made once, in the parent benchmark.
func BenchmarkConsumeWithTenMillionEvents(b *testing.B) {
	empty := newBenchFixture(b)
	full := newBenchFixture(b)
	ctx := context.Background()
	start := time.Now()
	// Subscription IDs scattered over the uuid space (md5), 100 events each, counted over
	// the year before the fixture's clock (2026-03-02), ~3 s apart in insertion order.
	if _, err := full.pool.Exec(ctx, `
		INSERT INTO billing_usage_events (subscription_id, key, period, meter, quantity, used_after, at)
		SELECT md5('bench-events-' || s)::uuid, 'k' || k, 1, 'tokens', 1, k,
		       timestamptz '2025-03-17 00:00:00+03' + ((s - 1) * 100 + k) * interval '3 seconds'
		FROM generate_series(1, $1::int / 100) s, generate_series(1, 100) k`, tenMillion); err != nil {
		b.Fatal(err)
	}
	if _, err := full.pool.Exec(ctx, `VACUUM ANALYZE billing_usage_events`); err != nil {
		b.Fatal(err)
	}
	var n int64
	if err := full.pool.QueryRow(ctx, `SELECT count(*) FROM billing_usage_events`).Scan(&n); err != nil || n != tenMillion {
		b.Fatalf("fill: %d events, %v", n, err)
	}
	b.Logf("filled %d usage events in %s", n, time.Since(start).Round(time.Second))

	b.Run("interleaved", func(b *testing.B) { interleaveConsume(b, empty, full, "empty", "10M") })
}

// BenchmarkConsumeEventsAtIndex measures what the index the retention prune needs,
// billing_usage_events_at_idx (migration 0013), costs Consume, whose common case inserts
// one event: two fixtures as BenchmarkConsume's with the table empty, the index dropped
// from one, interleaved as in BenchmarkConsumeWithTenMillionEvents. Its ratio is with ÷
// without the index, of ns/op.
func BenchmarkConsumeEventsAtIndex(b *testing.B) {
	with := newBenchFixture(b)
	without := newBenchFixture(b)
	if _, err := without.pool.Exec(context.Background(), `DROP INDEX billing_usage_events_at_idx`); err != nil {
		b.Fatal(err)
	}
	b.Run("interleaved", func(b *testing.B) { interleaveConsume(b, without, with, "no-index", "at-index") })
}

// interleaveConsume runs b.N rounds, each a benchSlice of engine.Consume with benchClients
// clients on base and one on other, back to back (the order swapped every round), and
// reports each side's ns/op over all its slices (wall time ÷ calls, all clients together)
// and the ratios other ÷ base of ns/op: of the totals, and the median and highest of the
// rounds'.
func interleaveConsume(b *testing.B, base, other *benchFixture, baseName, otherName string) {
	ctx := context.Background()
	var key atomic.Int64
	consumeOn := func(f *benchFixture) func(rng *rand.Rand) error {
		return func(rng *rand.Rand) error {
			_, err := f.engine.Consume(ctx, f.ids[rng.IntN(len(f.ids))], "tokens", 1, "r"+strconv.FormatInt(key.Add(1), 10))
			return err
		}
	}
	onBase, onOther := consumeOn(base), consumeOn(other)
	var baseOps, otherOps int64
	var baseTime, otherTime time.Duration
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for round := range b.N {
		var n, m int64
		var nt, mt time.Duration
		if round%2 == 0 {
			n, nt = runSlice(b, onBase)
			m, mt = runSlice(b, onOther)
		} else {
			m, mt = runSlice(b, onOther)
			n, nt = runSlice(b, onBase)
		}
		baseOps, baseTime, otherOps, otherTime = baseOps+n, baseTime+nt, otherOps+m, otherTime+mt
		ratios = append(ratios, (mt.Seconds()/float64(m))/(nt.Seconds()/float64(n)))
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(float64(baseTime.Nanoseconds())/float64(baseOps), baseName+"-ns/op")
	b.ReportMetric(float64(otherTime.Nanoseconds())/float64(otherOps), otherName+"-ns/op")
	b.ReportMetric((otherTime.Seconds()/float64(otherOps))/(baseTime.Seconds()/float64(baseOps)), "ratio-total")
	b.ReportMetric(ratios[len(ratios)/2], "ratio-median")
	b.ReportMetric(ratios[len(ratios)-1], "ratio-max")
}
