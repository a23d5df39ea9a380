package main

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/smm-gpt/billing/console"
)

// demoOperatorCookie names the operator of the DEMO sign-in: "role:id", unsigned.
const demoOperatorCookie = "demo_operator"

// demoSignInURL is the DEMO sign-in page of the console and River UI.
const demoSignInURL = "/demo/signin"

// withOperatorPages serves api and, beside it, the operator's pages behind a DEMO sign-in at
// /demo/signin: the console at /console (package console) and River UI at /riverui (operators
// only: newRiverUI says why). River UI's background services run until ctx is done.
//
// DEMO ONLY: the sign-in asks no password and the cookie it sets is not signed, so anyone who
// can reach the port can claim to be any operator with any role. A real host puts these pages
// behind its own staff authentication (SSO, an authenticating proxy…) and writes Identify
// over that session; the console itself checks only what Identify returns, plus CSRF.
func withOperatorPages(ctx context.Context, api http.Handler, h *host, logger *slog.Logger) (http.Handler, error) {
	con, err := console.New(h.engine, console.Options{
		Prefix:    "/console",
		SignInURL: demoSignInURL,
		Logger:    logger,
		Identify:  demoIdentify,
		// CSRFSecret: one process, so the secret New generates is right; give replicas a
		// shared one.
	})
	if err != nil {
		return nil, err
	}
	ui, err := newRiverUI(ctx, h.river, demoIdentify, logger)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", con))
	mux.Handle(riverUIPrefix+"/", ui)
	mux.HandleFunc("GET "+demoSignInURL, demoSignInPage)
	mux.HandleFunc("POST "+demoSignInURL, demoSignIn)
	mux.Handle("/", api)
	return mux, nil
}

// demoIdentify reads the DEMO cookie: "operator:olga" or "read_only:viewer".
func demoIdentify(r *http.Request) (console.Operator, bool) {
	c, err := r.Cookie(demoOperatorCookie)
	if err != nil {
		return console.Operator{}, false
	}
	role, id, ok := strings.Cut(c.Value, ":")
	if !ok || id == "" {
		return console.Operator{}, false
	}
	return console.Operator{ID: "demo:" + id, Name: id + " (демо)", Role: console.Role(role)}, true
}

var demoSignInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>ДЕМО-вход в консоль</title></head>
<body style="font:15px system-ui,sans-serif;max-width:640px;margin:40px auto">
<div style="background:#fff3cd;border:2px dashed #b8860b;padding:10px 14px">
<strong>ДЕМО-вход, только для примера.</strong> Пароля нет, cookie не подписан: любой может назваться
любым оператором. В настоящем сервисе консоль стоит за вашей собственной аутентификацией сотрудников.
</div>
<form method="post" action="{{.}}" style="margin-top:16px">
<label>Имя оператора <input name="operator" id="operator" value="olga" required></label><br><br>
<label>Роль <select name="role"><option value="operator">оператор</option><option value="read_only">только чтение</option></select></label><br><br>
<button type="submit" id="signin-submit">Войти (демо)</button>
</form>
<p>После входа: консоль — <a href="/console/refunds">/console/</a>; River UI (очереди и задачи River, только
для роли «оператор») — <a href="/riverui/">/riverui/</a>.</p>
</body></html>`))

// demoSignInPage shows the DEMO sign-in form.
func demoSignInPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = demoSignInTemplate.Execute(w, demoSignInURL)
}

// demoSignIn sets the DEMO cookie and opens the console.
func demoSignIn(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.FormValue("operator"))
	role := console.RoleReadOnly
	if r.FormValue("role") == string(console.RoleOperator) {
		role = console.RoleOperator
	}
	if name == "" || strings.ContainsAny(name, ":;, \t") {
		http.Error(w, "demo sign-in: a name without spaces or punctuation, please", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: demoOperatorCookie, Value: string(role) + ":" + name, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/console/refunds", http.StatusSeeOther)
}
