package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/console"
	"github.com/smm-gpt/billing/tariff"
)

// versionForm is the new-version form of "pro" as an operator fills it: 1 290 RUB a month,
// 100 generations, in force from 20 March 2026 00:00 Moscow time.
func versionForm() url.Values {
	return url.Values{"name": {"Pro"}, "price": {"1 290,00"}, "period_count": {"1"}, "period_unit": {"month"},
		"limits": {"generations 100\r\nimages 20"}, "effective_at": {"2026-03-20T00:00"}}
}

// versions returns how many versions "pro" has.
func (b *testBundle) versions(t *testing.T) int {
	t.Helper()
	vs, err := b.engine.Tariffs().VersionList(context.Background(), "pro")
	require.NoError(t, err)
	return len(vs)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestPublishTariffVersionWithItsPreview: TERMS 2.1.6 from the console. The preview names the
// paid periods that keep the old price and the date renewals take the new one, and publishes
// nothing; its confirm form publishes exactly what it showed, audited as the operator.
func TestPublishTariffVersionWithItsPreview(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	r := b.get(t, "/tariffs", olga)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `id="publish-pro"`)

	r = b.post(t, "/tariffs/pro/preview", olga, versionForm())
	require.Equal(t, http.StatusOK, r.status, r.body)
	// user-42's period, paid on 2 March at 990 RUB, runs to 2 April: it keeps its price, and
	// its renewal, due after 20 March, is at the new one.
	want := "1 оплаченный период сохраняет прежнюю цену; продления с 20.03.2026 00:00 — по новой цене " + console.FormatMoney(129000, "RUB") + "."
	require.Contains(t, r.body, want, "2.1.6 the preview states N and the date")
	require.Contains(t, r.body, console.FormatMoney(99000, "RUB"), "the price kept is shown")
	require.Equal(t, 1, b.versions(t), "a preview publishes nothing")

	// Confirm: the preview's own form, hidden fields and all.
	confirm := r.body[strings.Index(r.body, `id="confirm"`):]
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(confirm, -1) {
		form.Set(m[1], m[2])
	}
	require.Equal(t, "generations 100\r\nimages 20", form.Get("limits"))
	r = b.do(t, http.MethodPost, prefix+"/tariffs/pro/publish", olga, form)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, prefix+"/tariffs?done=published", r.location)

	vs, err := b.engine.Tariffs().VersionList(ctx, "pro")
	require.NoError(t, err)
	require.Len(t, vs, 2)
	v2 := vs[1]
	require.Equal(t, "1290", v2.Price.String())
	require.Equal(t, "RUB", v2.Currency)
	require.Equal(t, "2026-03-20T00:00:00+03:00", v2.EffectiveAt.In(b.engine.Location()).Format(time.RFC3339))
	require.Len(t, v2.Limits, 2)
	require.Equal(t, "images", v2.Limits[1].Meter)

	audit, err := b.engine.AuditLogList(ctx, billing.TariffSubject("pro"))
	require.NoError(t, err)
	last := audit[len(audit)-1]
	require.Equal(t, "tariff.publish", last.Action)
	require.Equal(t, "olga", last.Actor, "the audit log says which operator published")

	r = b.get(t, "/tariffs?done=published", olga)
	require.Contains(t, r.body, "Новая версия тарифа опубликована.")
}

// TestPublishTariffVersionRefusals: a read-only operator sees no form and gets 403, a bad CSRF
// token is 403, bad input is a 400 that keeps the page and what was typed; none publishes.
func TestPublishTariffVersionRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.get(t, "/tariffs", guest)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, r.body, `id="publish-pro"`)
	require.NotContains(t, r.body, `name="csrf"`)
	for _, path := range []string{"/tariffs/pro/preview", "/tariffs/pro/publish"} {
		r = b.do(t, http.MethodPost, prefix+path, guest, versionForm())
		require.Equal(t, http.StatusForbidden, r.status, "read-only %s", path)

		bad := versionForm()
		bad.Set("csrf", "not-a-token")
		r = b.do(t, http.MethodPost, prefix+path, olga, bad)
		require.Equal(t, http.StatusForbidden, r.status, "bad CSRF %s", path)

		other := versionForm()
		other.Set("csrf", b.token(t, ivan))
		r = b.do(t, http.MethodPost, prefix+path, olga, other)
		require.Equal(t, http.StatusForbidden, r.status, "another operator's CSRF %s", path)
	}

	for name, tc := range map[string]struct {
		field, value, reason string
		kept                 string // what of the typed value the page shows again
	}{
		"a price that is no number":   {"price", "дорого", "цена: число", `value="дорого"`},
		"a negative price":            {"price", "-5", "price: must not be negative", `value="-5"`},
		"a period of zero":            {"period_count", "0", "period.count", `name="period_count" value="0"`},
		"an unknown unit":             {"period_unit", "fortnight", "period.unit", `value="1 290,00"`},
		"a limit without a quantity":  {"limits", "generations", "лимит «generations»", `rows="3">generations</textarea>`},
		"a date that is no date":      {"effective_at", "20 марта", "дата вступления в силу", `value="20 марта"`},
		"a price finer than a kopeck": {"price", "1290.001", "price", `value="1290.001"`},
	} {
		for _, path := range []string{"/tariffs/pro/preview", "/tariffs/pro/publish"} {
			form := versionForm()
			form.Set(tc.field, tc.value)
			r = b.post(t, path, olga, form)
			require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", name, path)
			require.Contains(t, r.body, `id="form-error"`, name)
			require.Contains(t, r.body, tc.reason, name)
			require.Contains(t, r.body, `id="publish-pro"`, "%s: the page is kept", name)
			require.Contains(t, r.body, tc.kept, "%s: what was typed is kept", name)
		}
	}
	require.Equal(t, 1, b.versions(t), "nothing was published")
}

// confirmForm returns the confirmation form of a preview page, hidden fields and all.
func confirmForm(t *testing.T, body string) url.Values {
	t.Helper()
	i := strings.Index(body, `id="confirm"`)
	require.GreaterOrEqual(t, i, 0, "the preview has a confirmation form")
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(body[i:], -1) {
		form.Set(m[1], m[2])
	}
	return form
}

// TestPublishConfirmationPublishesWhatThePreviewShowed: TERMS 2.1.6 — the operator agrees to
// what the preview showed, so the confirmation publishes that version or nothing: another
// version published since the preview (here with a 30-day price notice) is a 409 and the
// other publisher's version stays the last; the same confirmation posted twice (a double
// click, a resent POST) publishes once; a confirmation whose date no longer holds shows the
// preview again with the new date; one without the preview's fields is a 400. Found by a
// review: the confirmation used to publish whatever version came next.
func TestPublishConfirmationPublishesWhatThePreviewShowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("another version published since the preview", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.post(t, "/tariffs/pro/preview", olga, versionForm())
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.Contains(t, r.body, "Опубликовать версию 2")
		form := confirmForm(t, r.body)
		require.Equal(t, "2", form.Get("expected_number"))

		_, err := b.engine.Tariffs().Publish(ctx, "ivan", tariff.Spec{Code: "pro", Name: "Pro",
			Price: decimal.NewFromInt(500), Period: tariff.Period{Count: 1, Unit: tariff.Month},
			Options: tariff.Options{PriceNotice: 30 * 24 * time.Hour}})
		require.NoError(t, err)

		r = b.do(t, http.MethodPost, prefix+"/tariffs/pro/publish", olga, form)
		require.Equal(t, http.StatusConflict, r.status, r.body)
		require.Contains(t, r.body, "опубликована другая версия")
		vs, err := b.engine.Tariffs().VersionList(ctx, "pro")
		require.NoError(t, err)
		require.Len(t, vs, 2, "nothing published on top of ivan's version")
		require.Equal(t, "500", vs[1].Price.String())
	})

	t.Run("the same confirmation twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.post(t, "/tariffs/pro/preview", olga, versionForm())
		require.Equal(t, http.StatusOK, r.status, r.body)
		form := confirmForm(t, r.body)
		require.Equal(t, http.StatusSeeOther, b.do(t, http.MethodPost, prefix+"/tariffs/pro/publish", olga, form).status)
		require.Equal(t, http.StatusConflict, b.do(t, http.MethodPost, prefix+"/tariffs/pro/publish", olga, form).status)
		require.Equal(t, 2, b.versions(t), "one preview, one version")
	})

	t.Run("the date shown no longer holds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.post(t, "/tariffs/pro/preview", olga, versionForm())
		require.Equal(t, http.StatusOK, r.status, r.body)
		form := confirmForm(t, r.body)
		require.Equal(t, "20.03.2026 00:00", form.Get("renew_from"))
		form.Set("renew_from", "19.03.2026 00:00") // what an earlier preview would have shown
		r = b.do(t, http.MethodPost, prefix+"/tariffs/pro/publish", olga, form)
		require.Equal(t, http.StatusConflict, r.status, r.body)
		require.Contains(t, r.body, "Дата перехода на новую цену изменилась: было «19.03.2026 00:00», теперь «20.03.2026 00:00»")
		require.Equal(t, "20.03.2026 00:00", confirmForm(t, r.body).Get("renew_from"), "the new preview carries the new date")
		require.Equal(t, 1, b.versions(t), "nothing published")
	})

	t.Run("a confirmation without the preview's fields", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.post(t, "/tariffs/pro/publish", olga, versionForm())
		require.Equal(t, http.StatusBadRequest, r.status, r.body)
		require.Contains(t, r.body, "подтверждение без данных предпросмотра")
		require.Equal(t, 1, b.versions(t), "nothing published")
	})

	t.Run("a tariff retired since the page loaded says why", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.engine.Tariffs().Retire(ctx, "pro", "ivan", "снят с продажи")
		require.NoError(t, err)
		r := b.post(t, "/tariffs/pro/preview", olga, versionForm())
		require.Equal(t, http.StatusConflict, r.status)
		require.Contains(t, r.body, `id="form-error"`, "the 409 page shows its reason")
		require.Contains(t, r.body, "retired")
	})
}
