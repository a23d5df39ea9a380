package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/smm-gpt/billing/console"
)

// riverUIPrefix is where River UI is mounted, beside the console.
const riverUIPrefix = "/riverui"

// newRiverUI returns River UI (riverqueue.com/riverui) over client, served under
// riverUIPrefix, for operators only: identify says who asks (the console's Identify).
// Its background services (count caches) run until ctx is done.
//
// Operators only, because River UI has no read-only mode (v0.22.0): whoever reaches it can
// cancel, retry and delete jobs and pause queues. Those actions go straight to River's tables,
// past the engine's commands and its audit log; cancelling a billing_renew job stops that
// renewal. So a console.RoleReadOnly operator is refused (403) and no identity is 401.
// Cross-origin requests that change anything are refused too (http.CrossOriginProtection):
// River UI's own API has no CSRF token.
func newRiverUI(ctx context.Context, client *river.Client[pgx.Tx], identify func(*http.Request) (console.Operator, bool), logger *slog.Logger) (http.Handler, error) {
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger,
		Prefix:    riverUIPrefix, // River UI strips it itself, and writes it into its page's links
	})
	if err != nil {
		return nil, fmt.Errorf("river UI: %w", err)
	}
	if err := ui.Start(ctx); err != nil {
		return nil, fmt.Errorf("river UI: start: %w", err)
	}
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := identify(r)
		switch {
		case !ok || op.ID == "":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>River UI</title>`+
				`<p>River UI: войдите как оператор: <a href="%s">демо-вход</a>.</p>`, demoSignInURL)
			return
		case op.Role != console.RoleOperator:
			http.Error(w, "River UI: operators only (it has no read-only mode)", http.StatusForbidden)
			return
		}
		if err := cop.Check(r); err != nil {
			http.Error(w, "River UI: cross-origin request refused", http.StatusForbidden)
			return
		}
		ui.ServeHTTP(w, r)
	}), nil
}
