package billing_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/tariff"
)

func proSpec(price string) tariff.Spec {
	return tariff.Spec{
		Code:   "pro",
		Name:   "Pro",
		Price:  decimal.RequireFromString(price),
		Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}},
	}
}

func TestCatalogPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("3.2 every change publishes a new version; history is kept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cat := b.engine.Tariffs()
		v1, err := cat.Publish(ctx, "ops", proSpec("990"))
		require.NoError(t, err)
		require.Equal(t, 1, v1.Number)
		require.Equal(t, "RUB", v1.Currency)

		t1 := b.clock.Advance(24 * time.Hour)
		v2, err := cat.Publish(ctx, "ops", proSpec("1290"))
		require.NoError(t, err)
		require.Equal(t, 2, v2.Number)
		require.True(t, v2.EffectiveAt.Equal(t1))

		vs, err := cat.VersionList(ctx, "pro")
		require.NoError(t, err)
		require.Len(t, vs, 2)
		require.True(t, vs[0].Price.Equal(decimal.NewFromInt(990)))
		require.Equal(t, []tariff.Limit{{Meter: "generations", Quantity: 500}}, vs[0].Limits)

		before, err := cat.InForce(ctx, "pro", t1.Add(-time.Nanosecond))
		require.NoError(t, err)
		require.Equal(t, 1, before.Number, "2.1.6 the old price is in force until the new version takes effect")
		at, err := cat.InForce(ctx, "pro", t1)
		require.NoError(t, err)
		require.Equal(t, 2, at.Number)
	})

	t.Run("a future effective instant is kept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := proSpec("990")
		spec.EffectiveAt = b.clock.Now().Add(48 * time.Hour)
		_, err := b.engine.Tariffs().Publish(ctx, "ops", spec)
		require.NoError(t, err)
		_, err = b.engine.Tariffs().InForce(ctx, "pro", b.clock.Now())
		require.ErrorIs(t, err, tariff.ErrNoVersion)
	})

	t.Run("bad input names every bad field and stores nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := tariff.Spec{
			Code:   "Pro!",
			Price:  decimal.RequireFromString("-1.001"),
			Period: tariff.Period{Count: 0, Unit: "fortnight"},
			Limits: []tariff.Limit{{Meter: "Gen", Quantity: 0}, {Meter: "", Quantity: 1}},
		}
		_, err := b.engine.Tariffs().Publish(ctx, "ops", bad)
		require.ErrorIs(t, err, tariff.ErrInvalid)
		var ve *tariff.ValidationError
		require.ErrorAs(t, err, &ve)
		require.GreaterOrEqual(t, len(ve.Fields), 5, err.Error())
		list, err := b.engine.Tariffs().List(ctx)
		require.NoError(t, err)
		require.Empty(t, list)

		_, err = b.engine.Tariffs().Publish(ctx, "", proSpec("990"))
		require.ErrorIs(t, err, billing.ErrInvalidInput)
	})

	t.Run("retired tariff: no new versions, no second retirement", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cat := b.engine.Tariffs()
		_, err := cat.Publish(ctx, "ops", proSpec("990"))
		require.NoError(t, err)
		tr, err := cat.Retire(ctx, "pro", "ops", "replaced by pro-2027")
		require.NoError(t, err)
		require.Equal(t, tariff.Retired, tr.Status)
		require.ErrorIs(t, tr.CheckBuy(), tariff.ErrRetired)

		_, err = cat.Retire(ctx, "pro", "ops", "again")
		require.ErrorIs(t, err, tariff.ErrRetired)
		_, err = cat.Publish(ctx, "ops", proSpec("1290"))
		require.ErrorIs(t, err, tariff.ErrRetired)
		_, err = cat.Retire(ctx, "nope", "ops", "")
		require.ErrorIs(t, err, billing.ErrNotFound)
	})

	t.Run("versions are append-only in the database", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.engine.Tariffs().Publish(ctx, "ops", proSpec("990"))
		require.NoError(t, err)
		_, err = b.pool.Exec(ctx, `UPDATE billing_tariff_versions SET price_minor = 1`)
		require.ErrorContains(t, err, "append-only")
		_, err = b.pool.Exec(ctx, `DELETE FROM billing_tariff_versions`)
		require.ErrorContains(t, err, "append-only")
	})

	t.Run("concurrent publishers of one code get distinct, ordered versions", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const publishers = 16
		numbers := make([]int, publishers)
		errs := make([]error, publishers)
		var wg sync.WaitGroup
		for i := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := b.engine.Tariffs().Publish(ctx, "ops", proSpec(decimal.NewFromInt(int64(900+i)).String()))
				numbers[i], errs[i] = v.Number, err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		sort.Ints(numbers)
		for i, n := range numbers {
			require.Equal(t, i+1, n)
		}
		vs, err := b.engine.Tariffs().VersionList(ctx, "pro")
		require.NoError(t, err)
		require.Len(t, vs, publishers)
	})
}
