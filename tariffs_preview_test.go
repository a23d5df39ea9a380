package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// TestPreviewPublish pins Catalog.PreviewPublish to TERMS 2.1.6 on one catalog: "pro" v1 at
// 990 RUB (no price notice) paid by a and b, v2 at 790 RUB with a 30-day price notice paid
// by c; d's subscription on v2 terminated, e's never paid, f on another tariff. The clock
// stands at Tue 3 Mar 2026 10:00 Moscow time, every paid period ending on 2 or 3 April.
func TestPreviewPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	cat := b.engine.Tariffs()
	const notice = 30 * 24 * time.Hour
	b.publish(t, "pro", "990", "generations", 500)
	b.publish(t, "team", "4900", "generations", 5000)
	b.activeSubscription(t, "a", "pro")
	b.activeSubscription(t, "b", "pro")
	b.activeSubscription(t, "f", "team")
	now := b.clock.Advance(24 * time.Hour)
	v2 := proSpec("790")
	v2.Options.PriceNotice = notice
	_, err := cat.Publish(ctx, "ops", v2)
	require.NoError(t, err)
	b.activeSubscription(t, "c", "pro")
	d := b.activeSubscription(t, "d", "pro")
	_, err = b.engine.Terminate(ctx, d.ID, subscription.AdminAction{Actor: "ops", Reason: "test"})
	require.NoError(t, err)
	_, err = b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "e", TariffCode: "pro", IdempotencyKey: "sub-e"})
	require.NoError(t, err)

	mar20 := time.Date(2026, 3, 20, 0, 0, 0, 0, b.moscow)
	may1 := time.Date(2026, 5, 1, 0, 0, 0, 0, b.moscow)
	spec := func(price string, effective time.Time) tariff.Spec {
		s := proSpec(price)
		s.EffectiveAt = effective
		return s
	}
	type group struct {
		version, periods int
		renewFrom        time.Time
	}
	for _, tc := range []struct {
		name      string
		spec      tariff.Spec
		renewFrom time.Time
		groups    []group
	}{
		{"2.1.6 paid periods running on older versions keep their price; a terminated, an unpaid and another tariff's are not counted",
			spec("1290", mar20), now.Add(notice), []group{{1, 2, mar20}, {2, 1, now.Add(notice)}}},
		{"2.1.6 renewals from the effective date: a rise scheduled beyond every notice",
			spec("1290", may1), may1, []group{{1, 2, may1}, {2, 1, may1}}},
		{"2.1.6 a rise waits for the notice each period was sold with, counted from publication",
			spec("1290", time.Time{}), now.Add(notice), []group{{1, 2, now}, {2, 1, now.Add(notice)}}},
		{"2.1.6 a cut needs no notice: renewals from the effective date",
			spec("500", mar20), mar20, []group{{1, 2, mar20}, {2, 1, mar20}}},
		{"2.1.6 an effective date in the past means at publication",
			spec("500", now.AddDate(0, 0, -10)), now, []group{{1, 2, now}, {2, 1, now}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cat.PreviewPublish(ctx, tc.spec)
			require.NoError(t, err)
			require.Equal(t, 3, p.Version.Number)
			require.Equal(t, 3, p.Grandfathered)
			require.True(t, p.RenewFrom.Equal(tc.renewFrom), "renewals from %s, want %s", p.RenewFrom, tc.renewFrom)
			require.Len(t, p.ByVersion, len(tc.groups))
			for i, g := range tc.groups {
				got := p.ByVersion[i]
				require.Equal(t, g.version, got.Version)
				require.Equal(t, g.periods, got.Periods, "version %d", g.version)
				require.True(t, got.RenewFrom.Equal(g.renewFrom), "version %d: renewals from %s, want %s", g.version, got.RenewFrom, g.renewFrom)
			}
			require.True(t, p.ByVersion[0].Price.Equal(decimal.NewFromInt(990)), "2.1.6 v1's periods keep 990")
			require.True(t, p.ByVersion[1].Price.Equal(decimal.NewFromInt(790)), "2.1.6 v2's periods keep 790")
		})
	}

	t.Run("3.2 bad input names the bad fields", func(t *testing.T) {
		bad := proSpec("-1")
		bad.Period = tariff.Period{}
		_, err := cat.PreviewPublish(ctx, bad)
		require.ErrorIs(t, err, billing.ErrInvalidInput)
		var ve *billing.TariffValidationError
		require.ErrorAs(t, err, &ve)
		require.True(t, ve.Has("price") && ve.Has("period.count"), "%v", err)
		_, err = cat.PreviewPublish(ctx, spec("1290", time.Date(2026, 3, 1, 0, 0, 0, 0, b.moscow).AddDate(-1, 0, 0)))
		require.NoError(t, err, "a past date is not an error: it means at once")
	})
	t.Run("a preview publishes nothing", func(t *testing.T) {
		vs, err := cat.VersionList(ctx, "pro")
		require.NoError(t, err)
		require.Len(t, vs, 2)
	})
	t.Run("a new code previews its first version: nothing grandfathered", func(t *testing.T) {
		s := proSpec("990")
		s.Code = "basic"
		p, err := cat.PreviewPublish(ctx, s)
		require.NoError(t, err)
		require.Equal(t, 1, p.Version.Number)
		require.Zero(t, p.Grandfathered)
		require.True(t, p.RenewFrom.Equal(now))
	})
	t.Run("3.2 a retired tariff cannot get a version", func(t *testing.T) {
		_, err := cat.Retire(ctx, "team", "ops", "test")
		require.NoError(t, err)
		s := proSpec("990")
		s.Code = "team"
		_, err = cat.PreviewPublish(ctx, s)
		require.ErrorIs(t, err, tariff.ErrRetired)
	})
	t.Run("2.1.6 periods already over are not counted", func(t *testing.T) {
		b.clock.Set(time.Date(2026, 4, 4, 0, 0, 0, 0, b.moscow)) // every period ended; no River, no renewal
		p, err := cat.PreviewPublish(ctx, proSpec("1290"))
		require.NoError(t, err)
		require.Zero(t, p.Grandfathered)
		require.Empty(t, p.ByVersion)
	})
}
