package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/billingtest"
	"github.com/smm-gpt/billing/console"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// The operators of the tests, named by the X-Test-Operator header ("id:role").
const (
	olga  = "olga:operator"
	ivan  = "ivan:operator"
	guest = "viewer:read_only"
)

// prefix is where the tests mount the console, as a host would.
const prefix = "/console"

// testBundle is a console over an engine on its own database (billingtest.NewHarness: fake
// gateway, manual clock, River), with the tariff "pro" (990 RUB a month, 100 generations)
// and one active subscription of customer user-42, paid on Mon 2 Mar 2026 10:00 Moscow
// time; the clock then stands two days later.
type testBundle struct {
	h       *billingtest.Harness
	engine  *billing.Engine
	handler http.Handler
	subID   string
}

// identifyByHeader is the tests' Identify: the header X-Test-Operator "id:role".
func identifyByHeader(r *http.Request) (console.Operator, bool) {
	id, role, ok := strings.Cut(r.Header.Get("X-Test-Operator"), ":")
	if !ok {
		return console.Operator{}, false
	}
	return console.Operator{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Role: console.Role(role)}, true
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	h := billingtest.NewHarness(t)
	ctx := context.Background()
	_, err := h.Engine.Tariffs().Publish(ctx, "setup", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 100}}})
	require.NoError(t, err)
	sub, err := h.Engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "user-42", TariffCode: "pro",
		PaymentMethod: "tok_user-42", IdempotencyKey: "checkout-42"})
	require.NoError(t, err)
	_, err = h.Engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	h.Clock.Advance(2 * 24 * time.Hour)
	handler, err := console.New(h.Engine, console.Options{Identify: identifyByHeader, Prefix: prefix})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, handler))
	return &testBundle{h: h, engine: h.Engine, handler: mux, subID: sub.ID}
}

// response is what the console answered.
type response struct {
	status   int
	body     string
	location string
}

// do serves one request as operator op ("" for nobody).
func (b *testBundle) do(t *testing.T, method, path, op string, form url.Values) response {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if op != "" {
		req.Header.Set("X-Test-Operator", op)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, body: html.UnescapeString(rec.Body.String()), location: rec.Header().Get("Location")}
}

func (b *testBundle) get(t *testing.T, path, op string) response {
	t.Helper()
	return b.do(t, http.MethodGet, prefix+path, op, nil)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token returns a CSRF token of op's, from a rendered form.
func (b *testBundle) token(t *testing.T, op string) string {
	t.Helper()
	r := b.get(t, "/refunds", op)
	m := csrfInput.FindStringSubmatch(r.body)
	require.NotNil(t, m, "no CSRF field on the refund queue of %s", op)
	return m[1]
}

// post submits form as op with a valid CSRF token of op's.
func (b *testBundle) post(t *testing.T, path, op string, form url.Values) response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(t, op))
	return b.do(t, http.MethodPost, prefix+path, op, form)
}

// requestRefund records a request by e-mail through the engine, received now.
func (b *testBundle) requestRefund(t *testing.T, key string) billing.RefundRequest {
	t.Helper()
	req, err := b.engine.RequestRefund(context.Background(), billing.RefundRequestParams{SubscriptionID: b.subID,
		ReceivedAt: b.h.Clock.Now(), Channel: refund.ChannelEmail, Text: "Верните деньги", IdempotencyKey: key})
	require.NoError(t, err)
	return req
}

func (b *testBundle) status(t *testing.T) subscription.Status {
	t.Helper()
	sub, err := b.engine.SubscriptionGet(context.Background(), b.subID)
	require.NoError(t, err)
	return sub.Status
}

func (b *testBundle) auditCount(t *testing.T) int {
	t.Helper()
	entries, err := b.engine.AuditLogList(context.Background(), billing.SubscriptionSubject(b.subID))
	require.NoError(t, err)
	return len(entries)
}

func nb(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") }

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	_, err := console.New(nil, console.Options{})
	require.ErrorContains(t, err, "engine is nil")
	require.ErrorContains(t, err, "Options.Identify is required")
	h := billingtest.NewHarness(t, billingtest.WithoutRiver())
	_, err = console.New(h.Engine, console.Options{Identify: identifyByHeader, CSRFSecret: []byte("short")})
	require.ErrorContains(t, err, "CSRFSecret has 5 bytes")
	_, err = console.New(h.Engine, console.Options{Identify: identifyByHeader, Prefix: "/console/"})
	require.ErrorContains(t, err, "Options.Prefix")
}

func TestPagesRender(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.requestRefund(t, "mail-1")
	ctx := context.Background()
	_, err := b.engine.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: "user-7",
		ReceivedAt: b.h.Clock.Now(), Channel: refund.ChannelEmail, Text: "удалите меня", IdempotencyKey: "del-1"})
	require.NoError(t, err)

	r := b.get(t, "/", olga)
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, prefix+"/refunds", r.location, "links and redirects carry the mount prefix")

	pages := []struct {
		path string
		want []string
	}{
		// 3.8: received Wed 4 Mar 10:00, 10 calendar days: to 24:00 of Sat 14 Mar, moved to
		// Mon 16 Mar (Civil Code art. 193); 12 days left; 990 RUB as the console shows it.
		{"/refunds", []string{"Очередь возвратов", "16.03.2026", "12 дн.", nb("990,00 ₽"), req.SubscriptionID, "Записать запрос"}},
		{"/refunds/" + req.ID, []string{"Запрос на возврат", "получен", "Верните деньги", "Проверен", "Предлагаемая сумма", "refund.requested",
			"полный возврат положен: все условия выполнены"}},
		{"/subscriptions", []string{"ID подписки или клиента"}},
		{"/subscriptions?q=user-42", []string{b.subID, "активна", "Pro"}},
		{"/subscriptions?status=active&all=1", []string{b.subID}},
		{"/subscriptions/" + b.subID, []string{"user-42", "активна", "generations", "Pro v1: " + nb("990,00 ₽"), "Приостановить", "subscription.activate", "Журнал аудита",
			"Проводки", "оплата периода", "deferred:RUB"}},
		{"/money", []string{"Оборотно-сальдовая ведомость", "provider:RUB", nb("990,00 ₽"), "Скачать CSV"}},
		{"/tariffs", []string{"Pro", nb("990,00 ₽")}},
		{"/deletions", []string{"user-7", "удалите меня", "Аккаунт удалён"}},
	}
	for _, p := range pages {
		r := b.get(t, p.path, olga)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", p.path, r.body)
		for _, w := range p.want {
			require.Contains(t, r.body, w, "%s", p.path)
		}
		require.Contains(t, r.body, "Europe/Moscow", "%s: times are in the engine's location", p.path)
	}

	// A subscription ID in the search goes straight to its page.
	r = b.get(t, "/subscriptions?q="+b.subID, olga)
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, prefix+"/subscriptions/"+b.subID, r.location)

	// The ledger export streams Books.ExportCSV for the days asked, both included.
	day := b.h.Clock.Now().Format("2006-01-02")
	r = b.get(t, "/money/ledger.csv?from=2026-03-01&to="+day, olga)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "transaction_id")
	require.Contains(t, r.body, "990.00")
	r = b.get(t, "/money/ledger.csv?from=2026-03-05&to=2026-03-01", olga)
	require.Equal(t, http.StatusBadRequest, r.status, "a range that ends before it starts")

	r = b.get(t, "/subscriptions/0190c3b6-0000-7000-8000-000000000000", olga)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestRefusedWithoutIdentity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{"/refunds", "/subscriptions/" + b.subID, "/money", "/money/ledger.csv?from=2026-03-01&to=2026-03-05"} {
		r := b.get(t, p, "")
		require.Equal(t, http.StatusUnauthorized, r.status, p)
		require.Contains(t, r.body, "Нужен вход")
		require.NotContains(t, r.body, "user-42", "%s: nothing is read for nobody", p)
	}
	before := b.auditCount(t)
	r := b.do(t, http.MethodPost, prefix+"/subscriptions/"+b.subID+"/suspend", "", url.Values{"reason": {"x"}, "csrf": {b.token(t, olga)}})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, subscription.StatusActive, b.status(t))
	require.Equal(t, before, b.auditCount(t))
}

func TestReadOnlyRoleSeesNoActionsAndCannotPost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.requestRefund(t, "mail-ro")
	for _, p := range []string{"/refunds", "/refunds/" + req.ID, "/subscriptions/" + b.subID, "/deletions"} {
		r := b.get(t, p, guest)
		require.Equal(t, http.StatusOK, r.status, p)
		require.NotContains(t, r.body, `method="post"`, "%s: no action forms for a read-only role", p)
		require.NotContains(t, r.body, `name="csrf"`, p)
		require.Contains(t, r.body, "только чтение")
	}
	before := b.auditCount(t)
	// Even with a token minted for the same ID (a role downgraded mid-session), the role wins.
	r := b.do(t, http.MethodPost, prefix+"/subscriptions/"+b.subID+"/suspend", guest, url.Values{"reason": {"x"}})
	require.Equal(t, http.StatusForbidden, r.status)
	r = b.do(t, http.MethodPost, prefix+"/refunds/"+req.ID+"/verify", guest, url.Values{})
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, subscription.StatusActive, b.status(t))
	require.Equal(t, before, b.auditCount(t))
	got, err := b.engine.RefundRequestGet(context.Background(), req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateReceived, got.State)
}

func TestBadCSRFTokenChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := b.token(t, olga)
	tampered := good[:len(good)-2] + "AA"
	if tampered == good {
		tampered = good[:len(good)-2] + "BB"
	}
	tokens := map[string]url.Values{
		"missing":                {"reason": {"плановые работы"}},
		"garbage":                {"reason": {"плановые работы"}, "csrf": {"not-a-token"}},
		"tampered MAC":           {"reason": {"плановые работы"}, "csrf": {tampered}},
		"another operator's one": {"reason": {"плановые работы"}, "csrf": {b.token(t, ivan)}},
	}
	before := b.auditCount(t)
	for name, form := range tokens {
		r := b.do(t, http.MethodPost, prefix+"/subscriptions/"+b.subID+"/suspend", olga, form)
		require.Equal(t, http.StatusForbidden, r.status, name)
		require.Contains(t, r.body, "CSRF", name)
	}
	// A cross-site form (the browser says so in Sec-Fetch-Site) is refused even with a token.
	req := httptest.NewRequest(http.MethodPost, prefix+"/subscriptions/"+b.subID+"/suspend",
		strings.NewReader(url.Values{"reason": {"x"}, "csrf": {good}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-Operator", olga)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)

	require.Equal(t, subscription.StatusActive, b.status(t))
	require.Equal(t, before, b.auditCount(t), "nothing written")

	// The same form with olga's own token goes through.
	r := b.do(t, http.MethodPost, prefix+"/subscriptions/"+b.subID+"/suspend", olga, url.Values{"reason": {"плановые работы"}, "csrf": {good}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, subscription.StatusSuspended, b.status(t))
}

func TestRecordVerifyExecuteRefund(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// A form with fields missing shows what is wrong and records nothing.
	r := b.post(t, "/refunds", olga, url.Values{"subscription_id": {b.subID}, "channel": {"email"}, "key": {"k1"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.body, "когда пришло письмо")
	require.Contains(t, r.body, "текст обращения")
	open, err := b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{Open: true})
	require.NoError(t, err)
	require.Empty(t, open)

	// 3.7: an e-mail received on Wed 4 Mar 09:30, recorded later.
	form := url.Values{"subscription_id": {b.subID}, "received_at": {"2026-03-04T09:30"}, "channel": {"email"},
		"text": {"Сервис не подошёл, верните деньги"}, "key": {"k2"}}
	r = b.post(t, "/refunds", olga, form)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	// A double submit of the same form (same key) records one request.
	r2 := b.post(t, "/refunds", olga, form)
	require.Equal(t, r.location, r2.location)
	open, err = b.engine.RefundRequestList(ctx, billing.RefundRequestListParams{Open: true})
	require.NoError(t, err)
	require.Len(t, open, 1)
	req := open[0]
	require.Equal(t, refund.ChannelEmail, req.Channel)
	require.Equal(t, "Сервис не подошёл, верните деньги", req.Text)
	require.True(t, req.ReceivedAt.Equal(time.Date(2026, 3, 4, 9, 30, 0, 0, b.engine.Location())), "received-at is read in the engine's location")
	require.True(t, req.Eligible)
	require.Equal(t, prefix+"/refunds/"+req.ID+"?done=recorded", r.location)

	r = b.post(t, "/refunds/"+req.ID+"/verify", olga, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	r = b.post(t, "/refunds/"+req.ID+"/execute", olga, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)

	got, err := b.engine.RefundRequestGet(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateRefunded, got.State)
	require.Equal(t, "olga", got.VerifiedBy, "the operator is the engine's actor")
	require.Equal(t, "olga", got.ExecutedBy)
	require.Equal(t, int64(99000), got.AmountMinor)

	page := b.get(t, "/refunds/"+req.ID+"?done=executed", olga)
	require.Contains(t, page.body, "Возврат отправлен на выплату.")
	require.Contains(t, page.body, "возвращён")
	require.Contains(t, page.body, "refund.verified")
	require.Contains(t, page.body, ">заявление проверено<", "the history names the action in Russian")
	require.Contains(t, b.get(t, "/money", olga).body,
		"provider:RUB</td><td>asset</td><td class=\"num\">990,00\u00a0₽</td><td class=\"num\">990,00\u00a0₽</td><td class=\"num\">0,00\u00a0₽",
		"the trial balance shows the money gone back out of the provider's account")
	subPage := b.get(t, "/subscriptions/"+b.subID, olga).body
	require.Contains(t, subPage, "возвращена")
	require.Regexp(t, `(?s)<table id="ledger">.*>возврат<br><span class="mono muted">refund:`+req.ID+`</span></td>`+
		`<td><span class="mono">deferred:RUB</span> <span class="muted">доходы будущих периодов</span></td><td class="num">990,00\x{a0}₽</td><td class="num"></td></tr>\s*`+
		`<tr><td><span class="mono">provider:RUB</span> <span class="muted">деньги у провайдера</span></td><td class="num"></td><td class="num">990,00\x{a0}₽</td>`,
		subPage, "3.7 the refund's ledger lines on the subscription's page: Dr deferred, Cr provider, 990 RUB")
	require.Contains(t, b.get(t, "/refunds", olga).body, "Открытых запросов нет.")
}

func TestRejectNeedsReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.requestRefund(t, "mail-rej")
	r := b.post(t, "/refunds/"+req.ID+"/reject", olga, url.Values{"reason": {"  "}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.body, "укажите причину отказа")
	got, err := b.engine.RefundRequestGet(context.Background(), req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateReceived, got.State)

	r = b.post(t, "/refunds/"+req.ID+"/reject", olga, url.Values{"reason": {"чужая подписка"}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	got, err = b.engine.RefundRequestGet(context.Background(), req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateRejected, got.State)
	require.Contains(t, b.get(t, "/refunds/"+req.ID, olga).body, "чужая подписка")

	// A rejected request cannot be executed: the engine's refusal is shown, nothing paid.
	r = b.post(t, "/refunds/"+req.ID+"/verify", olga, nil)
	require.Equal(t, http.StatusConflict, r.status)
}

func TestPartialRefundUnderArticle32(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	req := b.requestRefund(t, "mail-part")
	suggest, err := b.engine.SuggestProRata(ctx, req.ID, decimal.NewFromInt(100))
	require.NoError(t, err)

	r := b.get(t, "/refunds/"+req.ID+"?costs=100", olga)
	require.Contains(t, r.body, "Предлагаемая сумма: <strong>"+console.FormatMoney(suggest.AmountMinor, "RUB"),
		"the page shows SuggestProRata's amount for the costs typed")

	require.Equal(t, http.StatusSeeOther, b.post(t, "/refunds/"+req.ID+"/verify", olga, nil).status)
	amount := suggest.Amount.StringFixed(2)
	r = b.post(t, "/refunds/"+req.ID+"/execute", olga, url.Values{"amount": {amount}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "art. 32 is a person's decision: a reason is required")
	require.Contains(t, r.body, "укажите причину")
	got, err := b.engine.RefundRequestGet(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateVerified, got.State)

	r = b.post(t, "/refunds/"+req.ID+"/execute", olga, url.Values{"amount": {strings.Replace(amount, ".", ",", 1)}, "reason": {"ст. 32, отказ от услуги"}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	got, err = b.engine.RefundRequestGet(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, refund.StateRefunded, got.State)
	require.Equal(t, suggest.AmountMinor, got.AmountMinor)
	require.Equal(t, "ст. 32, отказ от услуги", got.OverrideReason)
}

func TestSubscriptionActionsNeedReasonAndAreAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.auditCount(t)
	for _, action := range []string{"suspend", "terminate", "extend"} {
		r := b.post(t, "/subscriptions/"+b.subID+"/"+action, olga, url.Values{"reason": {""}, "new_end": {"2026-04-10T10:00"}})
		require.Equal(t, http.StatusUnprocessableEntity, r.status, action)
		require.Contains(t, r.body, "укажите причину", action)
	}
	require.Equal(t, subscription.StatusActive, b.status(t))
	require.Equal(t, before, b.auditCount(t), "an empty reason changes nothing")

	steps := []struct {
		action string
		form   url.Values
		want   subscription.Status
	}{
		{"suspend", url.Values{"reason": {"жалоба на спам"}}, subscription.StatusSuspended},
		{"resume", url.Values{"reason": {"проверка пройдена"}}, subscription.StatusActive},
		{"extend", url.Values{"reason": {"2.1.4: плановые работы 3 марта"}, "new_end": {"2026-04-05T10:00"}}, subscription.StatusActive},
		{"terminate", url.Values{"reason": {"нарушение правил"}}, subscription.StatusTerminated},
	}
	for _, s := range steps {
		r := b.post(t, "/subscriptions/"+b.subID+"/"+s.action, olga, s.form)
		require.Equal(t, http.StatusSeeOther, r.status, "%s: %s", s.action, r.body)
		require.Equal(t, s.want, b.status(t), s.action)
	}
	entries, err := b.engine.AuditLogList(context.Background(), billing.SubscriptionSubject(b.subID))
	require.NoError(t, err)
	byAction := map[string]billing.AuditEntry{}
	for _, e := range entries {
		byAction[e.Action] = e
	}
	for action, reason := range map[string]string{"subscription.suspend": "жалоба на спам", "subscription.resume": "проверка пройдена",
		"subscription.extend_period": "2.1.4: плановые работы 3 марта", "subscription.terminate": "нарушение правил"} {
		e, ok := byAction[action]
		require.True(t, ok, "%s audited; have %v", action, entries)
		require.Equal(t, "olga", e.Actor, action)
		require.Equal(t, reason, e.Reason, action)
	}
	page := b.get(t, "/subscriptions/"+b.subID, olga).body
	require.Contains(t, page, "нарушение правил")
	for _, label := range []string{">приостановка<", ">возобновление<", ">продление периода оператором<", ">прекращение<"} {
		require.Contains(t, page, label, "the audit log names the action in Russian")
	}
	require.Contains(t, page, "05.04.2026 10:00", "the extended end, in the engine's location")

	r := b.post(t, "/subscriptions/"+b.subID+"/resume", olga, url.Values{"reason": {"ошибка"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "the engine's refusal (terminated is final) is shown at the form")
	require.Contains(t, r.body, "Действие невозможно в текущем состоянии (billing: Resume:", "a Russian lead by the error's kind, then the engine's words")
	r = b.post(t, "/subscriptions/"+b.subID+"/delete", olga, url.Values{"reason": {"x"}})
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestAccountDeletionExecuted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	del, err := b.engine.RequestAccountDeletion(ctx, billing.AccountDeletionRequestParams{CustomerID: "user-7",
		ReceivedAt: b.h.Clock.Now(), Channel: refund.ChannelEmail, IdempotencyKey: "del-7"})
	require.NoError(t, err)
	r := b.post(t, "/deletions/"+del.ID+"/execute", olga, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	got, err := b.engine.AccountDeletionGet(ctx, del.ID)
	require.NoError(t, err)
	require.Equal(t, billing.AccountDeletionDone, got.State)
	require.Equal(t, "olga", got.DoneBy)
	require.Contains(t, b.get(t, "/deletions?done=deleted", olga).body, "Открытых запросов нет.")
}

func TestRefundQueueMarksDueSoonAndOverdue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	req := b.requestRefund(t, "mail-due") // Wed 4 Mar 10:00
	moscow := b.engine.Location()
	// 3.8: 10 calendar days to Sat 14 Mar, moved to Mon 16 Mar (Civil Code art. 193); the
	// money must be back before Tue 17 Mar 00:00.
	require.True(t, req.PayoutDeadline.Equal(time.Date(2026, 3, 17, 0, 0, 0, 0, moscow)), "%v", req.PayoutDeadline)

	steps := []struct {
		name  string
		at    time.Time
		class string
		shows string
	}{
		{"3.8 three days left is not yet due soon", time.Date(2026, 3, 13, 12, 0, 0, 0, moscow), `<tr class="">`, "3 дн."},
		{"3.8 two days left is due soon", time.Date(2026, 3, 14, 9, 0, 0, 0, moscow), `<tr class="soon">`, "2 дн."},
		{"3.8 the last day itself: 0 days left, still due soon", time.Date(2026, 3, 16, 23, 59, 0, 0, moscow), `<tr class="soon">`, "0 дн."},
		{"3.8 at 24:00 of the last day it is overdue", time.Date(2026, 3, 17, 0, 0, 0, 0, moscow), `<tr class="overdue">`, "просрочен"},
	}
	for _, s := range steps {
		_, err := b.h.Runner.RunUntil(ctx, s.at)
		require.NoError(t, err)
		r := b.get(t, "/refunds", olga)
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, s.class, s.name)
		require.Contains(t, r.body, s.shows, s.name)
	}
	require.Contains(t, b.get(t, "/refunds/"+req.ID, olga).body, `<span class="badge overdue">просрочен</span>`)
}

func TestSubscriptionSearchPagesByKeyset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 51 // one more than a page
	for i := range n {
		_, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: "lead", TariffCode: "pro",
			IdempotencyKey: fmt.Sprintf("lead-%d", i)})
		require.NoError(t, err)
	}
	rows := regexp.MustCompile(`<tr><td><a class="mono" href="/console/subscriptions/`)
	next := regexp.MustCompile(`<a id="next" href="([^"]+)"`)

	r := b.get(t, "/subscriptions?q=lead&status=pending&all=1", olga)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, rows.FindAllString(r.body, -1), 50)
	m := next.FindStringSubmatch(r.body)
	require.NotNil(t, m, "a full page links to the next one")
	require.Contains(t, m[1], "after=", "the link carries the keyset cursor")
	require.Contains(t, m[1], "status=pending")

	r = b.do(t, http.MethodGet, m[1], olga, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, rows.FindAllString(r.body, -1), 1)
	require.NotContains(t, r.body, `id="next"`)
	require.NotContains(t, r.body, b.subID, "the status filter holds across pages: user-42 is active")

	r = b.get(t, "/subscriptions?status=bogus&all=1", olga)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "the engine's InputError is shown")
}

func TestMoneyPageShowsRevenueByMonth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.get(t, "/money", olga)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "За эти месяцы выручка не признавалась.", "nothing recognized while the first period runs")
	require.Contains(t, r.body, `name="rfrom" value="2025-10"`, "the current month and the five before it")
	require.Contains(t, r.body, `name="rto" value="2026-03"`)

	// The period paid on 2 March ends on 2 April: its 990 RUB are recognized then, in April
	// (Moscow time); the renewal pays period 2, not yet earned.
	_, err := b.h.Runner.RunUntil(ctx, time.Date(2026, 4, 3, 12, 0, 0, 0, b.engine.Location()))
	require.NoError(t, err)
	r = b.get(t, "/money", guest)
	require.Equal(t, http.StatusOK, r.status, "a read-only operator reads the money page")
	require.Contains(t, r.body, "<tr><td>апрель 2026</td><td class=\"num\">990,00\u00a0₽</td><td class=\"num\">0,00\u00a0₽</td><td class=\"num\">990,00\u00a0₽</td></tr>")
	require.Contains(t, r.body, "<tr><td>март 2026</td><td class=\"num\">0,00\u00a0₽</td>", "a month without revenue shows zeros")
	require.Less(t, strings.Index(r.body, "апрель 2026"), strings.Index(r.body, "март 2026"), "newest month first")

	r = b.get(t, "/money?rfrom=2026-03&rto=2026-03", olga)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "За эти месяцы выручка не признавалась.", "only March asked")

	for _, q := range []string{"rfrom=2026-05&rto=2026-03", "rfrom=март&rto=2026-03", "rfrom=2024-01&rto=2026-03"} {
		r = b.get(t, "/money?"+q, olga)
		require.Equal(t, http.StatusBadRequest, r.status, q)
		require.Contains(t, r.body, `id="revenue-error"`, q)
		require.Contains(t, r.body, "Оборотно-сальдовая ведомость", "%s: the rest of the page is shown", q)
	}
	require.Contains(t, b.get(t, "/money?rfrom=2024-01&rto=2026-03", olga).body, "Не больше 24 месяцев")
}

// TestRefundPageSaysWhyNotEligible: a request that fails TERMS 3.7 (here: volume used) says
// which condition failed, in Russian; the engine's explanation stays in the cell's title.
func TestRefundPageSaysWhyNotEligible(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.engine.Consume(ctx, b.subID, "generations", 1, "use-1")
	require.NoError(t, err)
	req := b.requestRefund(t, "mail-used")
	require.False(t, req.Eligible)
	require.Equal(t, []refund.Reason{refund.ReasonUsed}, req.Failed)

	page := b.get(t, "/refunds/"+req.ID, olga).body
	require.Contains(t, page, "полный возврат не положен: объём периода использован")
	require.Contains(t, page, `title="`+html.EscapeString(req.Explanation)+`"`)
}
