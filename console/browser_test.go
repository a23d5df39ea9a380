package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/console"
	"github.com/smm-gpt/billing/subscription"
)

// The browser tests drive Debian's chromium, headless, through the DevTools protocol
// (chromedp) against the console served by httptest on a real engine. Locally they skip when
// chromium is not installed; under CI (the env var CI set) they fail instead, as the
// database tests do (billingtest.DatabaseURL). .ci/run installs the package.

// chromiumPath returns the browser to drive, or skips (fails under CI) when there is none.
// BILLING_CHROMIUM names another binary.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BILLING_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium is not installed: the browser tests need it. Install Debian's package " +
		"(apt-get install -y chromium), or set BILLING_CHROMIUM to a Chrome or Chromium binary."
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is a headless chromium tab on the console of a test bundle.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// demoCookie names the operator signed in on the tests' sign-in page.
const demoCookie = "test_operator"

// newBrowser serves b's engine with a console behind a sign-in page of its own (a form that
// sets a cookie naming the operator, like examples/httphost's demo sign-in) and opens a tab.
func newBrowser(t *testing.T, b *testBundle) *browser {
	t.Helper()
	exe := chromiumPath(t)
	h, err := console.New(b.engine, console.Options{Prefix: "/console", SignInURL: "/signin",
		Identify: func(r *http.Request) (console.Operator, bool) {
			c, err := r.Cookie(demoCookie)
			if err != nil || c.Value == "" {
				return console.Operator{}, false
			}
			return console.Operator{ID: c.Value, Role: console.RoleOperator}, true
		}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", h))
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="ru"><body><h1>Вход (тест)</h1><form method="post" action="/signin">
<label>Оператор <input name="operator" id="operator"></label><button type="submit" id="signin-submit">Войти</button></form></body></html>`)
	})
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: demoCookie, Value: r.FormValue("operator"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/console/refunds", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("lang", "ru-RU"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium %s", exe) // no timeout here: it would end the browser
	return &browser{t: t, ctx: ctx, base: srv.URL}
}

// step runs the actions of one named step; when they fail it saves a screenshot of the page
// under the test's temp dir and fails the test naming it.
func (br *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		br.t.Fatalf("browser step %q: %v; screenshot: %s", name, err, br.screenshot(name))
	}
}

// screenshot saves the page as PNG under t.TempDir() (removed when the test ends: set
// BILLING_BROWSER_ARTIFACTS to a directory to keep it) and returns the path, or why not.
func (br *browser) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(br.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "none (" + err.Error() + ")"
	}
	dir := os.Getenv("BILLING_BROWSER_ARTIFACTS") // kept after the test, unlike t.TempDir()
	if dir == "" {
		dir = br.t.TempDir()
	}
	path := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(br.t.Name()+"-"+name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "none (" + err.Error() + ")"
	}
	return path
}

// text returns the visible text of the element sel.
func (br *browser) text(name, sel string) string {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		br.t.Fatalf("browser step %q: read %s: %v; screenshot: %s", name, sel, err, br.screenshot(name))
	}
	return s
}

// requireText waits (up to 10 s, across the navigation a form's POST and redirect make) until
// the element sel shows want; it fails with a screenshot when it never does.
func (br *browser) requireText(name, sel, want string) {
	br.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(br.ctx, time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(s, want) {
			return
		}
		got = s
		time.Sleep(50 * time.Millisecond)
	}
	br.t.Fatalf("browser step %q: %s shows %q, want it to contain %q; screenshot: %s", name, sel, got, want, br.screenshot(name))
}

// TestBrowserRefundAndSuspendStory is the operator's day in a real browser: sign in, find a
// subscription by its customer, record a refund request received by e-mail (TERMS 3.7),
// verify and execute it, see the trial balance change; then suspend another subscription,
// first without a reason (refused, nothing changes), then with one, and find it in the
// audit log with the operator's name.
func TestBrowserRefundAndSuspendStory(t *testing.T) {
	t.Parallel()
	chromiumPath(t) // skip (or fail under CI) before making a database
	b := setup(t)
	other := b.subscribe(t, "user-43")
	br := newBrowser(t, b)

	br.step("open the console unsigned", chromedp.Navigate(br.base+"/console/refunds"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	br.requireText("unsigned is refused", "h1", "Нужен вход")
	br.step("sign in",
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#operator")),
		chromedp.SendKeys(chromedp.CSS("#operator"), "olga"), chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#queue")))
	br.requireText("signed in", "#who", "olga")
	br.requireText("the queue is empty", "#queue", "Открытых запросов нет.")

	br.step("money before", chromedp.Click(chromedp.CSS(`a[href="/console/money"]`)), chromedp.WaitVisible(chromedp.CSS("#trial-balance")))
	balanceBefore := br.text("money before", "#trial-balance")

	br.step("find the subscription by its customer",
		chromedp.Click(chromedp.CSS(`a[href="/console/subscriptions"]`)), chromedp.WaitVisible(chromedp.CSS("#search")),
		chromedp.SendKeys(chromedp.CSS(`#search input[name="q"]`), "user-42"),
		chromedp.Click(chromedp.CSS(`#search button`)), chromedp.WaitVisible(chromedp.CSS("#results")),
		chromedp.Click(chromedp.CSS(`#results a[href="/console/subscriptions/`+b.subID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#summary")))
	br.requireText("the subscription's page", "#status", "активна")
	br.requireText("the subscription's page", "#ledger", "оплата периода")
	if l := br.text("the subscription's page", "#ledger"); strings.Contains(l, "refund:") {
		t.Fatalf("a refund in the ledger before any was executed: %s", l)
	}

	br.step("record the e-mail",
		chromedp.Click(chromedp.CSS(`a[href="/console/refunds"]`)), chromedp.WaitVisible(chromedp.CSS("#record")),
		chromedp.SendKeys(chromedp.CSS(`#record input[name="subscription_id"]`), b.subID),
		chromedp.SetValue(chromedp.CSS(`#record input[name="received_at"]`), "2026-03-04T09:30"),
		chromedp.SendKeys(chromedp.CSS(`#record textarea[name="text"]`), "Здравствуйте! Сервис не подошёл, верните деньги."),
		chromedp.Submit(chromedp.CSS(`#record`)), chromedp.WaitVisible(chromedp.CSS("#request")))
	br.requireText("recorded", "#flash", "Запрос на возврат записан.")
	br.requireText("recorded", "#state", "получен")
	br.requireText("recorded", "#request", "04.03.2026 09:30")

	br.step("verify", chromedp.Click(chromedp.CSS(`#verify button`)))
	br.requireText("verified", "#state", "проверен")
	br.step("execute in full", chromedp.WaitVisible(chromedp.CSS("#execute-full")), chromedp.Click(chromedp.CSS(`#execute-full button`)))
	br.requireText("executed", "#state", "возвращён")
	br.requireText("executed", "#history", "olga")
	reqs, err := b.engine.RefundRequestList(context.Background(), billing.RefundRequestListParams{})
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	br.step("the subscription's ledger after the refund", chromedp.Click(chromedp.CSS(`#request a[href="/console/subscriptions/`+b.subID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ledger")))
	br.requireText("the refund's ledger lines", "#ledger", "refund:"+reqs[0].ID)
	br.requireText("the refund's ledger lines", "#ledger", "возврат\nrefund:"+reqs[0].ID+"\tdeferred:RUB доходы будущих периодов\t"+nb("990,00 ₽"))

	br.step("money after", chromedp.Click(chromedp.CSS(`a[href="/console/money"]`)), chromedp.WaitVisible(chromedp.CSS("#trial-balance")))
	balanceAfter := br.text("money after", "#trial-balance")
	// Two periods of 990 RUB were paid (user-42 and user-43); the refund of one moves 990 RUB
	// out of the provider's account and out of deferred revenue.
	wantRow := nb("provider:RUB\tasset\t1 980,00 ₽\t990,00 ₽\t990,00 ₽")
	if balanceAfter == balanceBefore || !strings.Contains(balanceAfter, wantRow) {
		t.Fatalf("the trial balance did not show the refund (want a row %q):\nbefore: %s\nafter: %s\nscreenshot: %s", wantRow, balanceBefore, balanceAfter, br.screenshot("money after"))
	}

	br.step("open the other subscription", chromedp.Navigate(br.base+"/console/subscriptions?q="+other), chromedp.WaitVisible(chromedp.CSS("#suspend")))
	br.step("suspend without a reason", chromedp.Click(chromedp.CSS(`#suspend button`)))
	br.requireText("refused without a reason", "#form-error", "укажите причину")
	br.requireText("refused without a reason", "#status", "активна")
	br.step("suspend with a reason",
		chromedp.SendKeys(chromedp.CSS(`#suspend input[name="reason"]`), "Жалоба на рассылку спама"),
		chromedp.Click(chromedp.CSS(`#suspend button`)))
	br.requireText("suspended", "#flash", "Подписка приостановлена.")
	br.requireText("suspended", "#status", "приостановлена")
	br.requireText("the audit log says who and why", "#audit", "Жалоба на рассылку спама")
	br.requireText("the audit log names the action in Russian", "#audit", "приостановка")
	br.requireText("the audit log says who and why", "#audit", "olga")

	got, err := b.engine.SubscriptionGet(context.Background(), other)
	require.NoError(t, err)
	require.Equal(t, subscription.StatusSuspended, got.Status)
	reqs, err = b.engine.RefundRequestList(context.Background(), billing.RefundRequestListParams{})
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	require.Equal(t, "olga", reqs[0].ExecutedBy)

	// make screenshot: BILLING_CONSOLE_SCREENSHOT=docs/console-refunds.png saves the refund
	// queue, with a few open requests, for the README.
	if path := os.Getenv("BILLING_CONSOLE_SCREENSHOT"); path != "" {
		saveQueueScreenshot(t, b, br, path)
	}
}

// TestBrowserTariffPublishStory publishes a new price in a real browser the way an operator
// does (TERMS 2.1.6, 3.2): a bad price is refused at the form with nothing published; a good
// one shows the preview first ("1 оплаченный период сохраняет прежнюю цену; продления с … —
// по новой цене …") with nothing published yet; the confirmation publishes version 2, which
// the tariffs page then lists; the paid period keeps its price; and a preview made in a
// second tab before that publication is refused when confirmed, nothing published.
func TestBrowserTariffPublishStory(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	b := setup(t)
	ctx := context.Background()
	versions := func() int {
		vs, err := b.engine.Tariffs().VersionList(ctx, "pro")
		require.NoError(t, err)
		return len(vs)
	}
	br := newBrowser(t, b)
	br.step("sign in", chromedp.Navigate(br.base+"/signin"), chromedp.WaitVisible(chromedp.CSS("#operator")),
		chromedp.SendKeys(chromedp.CSS("#operator"), "olga"), chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#queue")))
	br.step("open the tariffs", chromedp.Click(chromedp.CSS(`a[href="/console/tariffs"]`)), chromedp.WaitVisible(chromedp.CSS("#publish-pro")))

	br.step("a price that is not a number",
		chromedp.SetValue(chromedp.CSS(`#publish-pro input[name="price"]`), "дорого"), chromedp.Submit(chromedp.CSS("#publish-pro")))
	br.requireText("refused at the form", "#form-error", "цен")
	require.Equal(t, 1, versions(), "nothing published")

	br.step("a new price",
		chromedp.WaitVisible(chromedp.CSS("#publish-pro")),
		chromedp.SetValue(chromedp.CSS(`#publish-pro input[name="price"]`), "1190"), chromedp.Submit(chromedp.CSS("#publish-pro")),
		chromedp.WaitVisible(chromedp.CSS("#effect")))
	br.requireText("the 2.1.6 preview", "#effect", "1 оплаченный период сохраняет прежнюю цену; продления с")
	br.requireText("the 2.1.6 preview", "#effect", "по новой цене "+nb("1 190,00 ₽"))
	br.requireText("the paid period on version 1", "#grandfathered", nb("990,00 ₽"))
	require.Equal(t, 1, versions(), "the preview publishes nothing")

	// A second tab (another operator's window) previews another price meanwhile.
	tabCtx, closeTab := chromedp.NewContext(br.ctx)
	defer closeTab()
	require.NoError(t, chromedp.Do(tabCtx), "open a second tab") // no timeout: it would close the tab
	other := &browser{t: t, ctx: tabCtx, base: br.base}
	other.step("another preview in a second tab", chromedp.Navigate(br.base+"/console/tariffs"),
		chromedp.WaitVisible(chromedp.CSS("#publish-pro")),
		chromedp.SetValue(chromedp.CSS(`#publish-pro input[name="price"]`), "1290"), chromedp.Submit(chromedp.CSS("#publish-pro")),
		chromedp.WaitVisible(chromedp.CSS("#effect")))
	other.requireText("the second preview", "#effect", "по новой цене "+nb("1 290,00 ₽"))

	br.step("confirm", chromedp.Click(chromedp.CSS(`#confirm button`)), chromedp.WaitVisible(chromedp.CSS("#publish-pro")))
	br.requireText("published", "body", "Новая версия тарифа опубликована.")
	br.requireText("version 2 listed", "body", nb("1 190,00 ₽"))
	require.Equal(t, 2, versions())
	sub, err := b.engine.SubscriptionGet(ctx, b.subID)
	require.NoError(t, err)
	require.Equal(t, "990", sub.Current.Terms.Price.String(), "2.1.6 the paid period keeps its price")

	other.step("the second tab confirms its stale preview", chromedp.Click(chromedp.CSS(`#confirm button`)))
	other.requireText("refused: a version was published since its preview", "#form-error", "опубликована другая версия")
	other.requireText("refused: a version was published since its preview", "#form-error", "ничего не опубликовано")
	require.Equal(t, 2, versions(), "the stale confirmation published nothing")
	vs, err := b.engine.Tariffs().VersionList(ctx, "pro")
	require.NoError(t, err)
	require.Equal(t, "1190", vs[len(vs)-1].Price.String(), "the version published is the one its operator confirmed")
}

// saveQueueScreenshot fills the queue with requests of three customers received days apart
// (one overdue, one due soon, one new: the clock moves with billingtest's Runner) and saves
// the page as PNG at path (relative to the module root).
func saveQueueScreenshot(t *testing.T, b *testBundle, br *browser, path string) {
	t.Helper()
	ctx := context.Background()
	for i, wait := range []time.Duration{0, 6 * 24 * time.Hour, 5 * 24 * time.Hour} {
		_, err := b.h.Runner.RunUntil(ctx, b.h.Clock.Now().Add(wait))
		require.NoError(t, err)
		id := b.subscribe(t, fmt.Sprintf("user-%d", 50+i))
		_, err = b.engine.RequestRefund(ctx, billing.RefundRequestParams{SubscriptionID: id,
			ReceivedAt: b.h.Clock.Now(), Channel: "email",
			Text: "Прошу вернуть деньги", IdempotencyKey: fmt.Sprintf("shot-%d", i)})
		require.NoError(t, err)
	}
	br.step("screenshot of the queue", chromedp.Navigate(br.base+"/console/refunds"), chromedp.WaitVisible(chromedp.CSS("#queue")))
	png, err := chromedp.Run(br.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	if !filepath.IsAbs(path) {
		path = filepath.Join("..", path)
	}
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("saved %s", path)
}

// subscribe makes another active subscription to "pro" for customer and returns its ID.
func (b *testBundle) subscribe(t *testing.T, customer string) string {
	t.Helper()
	ctx := context.Background()
	sub, err := b.engine.Subscribe(ctx, billing.SubscribeParams{CustomerID: customer, TariffCode: "pro",
		PaymentMethod: "tok_" + customer, IdempotencyKey: "checkout-" + customer})
	require.NoError(t, err)
	_, err = b.engine.ChargeFirstPayment(ctx, sub.ID)
	require.NoError(t, err)
	return sub.ID
}
