// Package console is the operator's console of the billing engine: an http.Handler with
// server-rendered pages (html/template, no JavaScript) for the refund queue (TERMS 3.7, 3.8),
// subscriptions and their admin actions (2.1.2, 2.1.4), the books, tariffs and the
// publication of a new version with its 2.1.6 preview (2.1.6, 3.2), and account deletions
// (2.2.4). Labels are in Russian, times in Options.Location, money as "1 290,00 ₽".
//
// The host mounts it under a prefix behind its own authentication, and tells it who is asking
// with Options.Identify:
//
//	h, err := console.New(engine, console.Options{Prefix: "/console", Identify: whoIsIt})
//	mux.Handle("/console/", http.StripPrefix("/console", h))
//
// Invariants:
//   - No page without an identity: a request Identify does not recognize gets 401 and reads
//     nothing.
//   - Only RoleOperator changes anything: RoleReadOnly sees no action buttons, and any POST of
//     it is 403 before any form is read.
//   - Every POST carries a CSRF token bound to the operator (see Options.CSRFSecret); a
//     missing or bad one is 403 and the engine is not called. Cross-origin POSTs are refused
//     too (http.CrossOriginProtection, from the browser's Sec-Fetch-Site and Origin headers).
//   - Every action passes the operator's ID as the engine's actor, so the engine's audit log
//     says who did it; an action that needs a reason refuses an empty one before calling
//     the engine.
//   - The console keeps no state: every page reads the engine, every action is one engine
//     command.
package console

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/smm-gpt/billing"
)

// Role is what an operator may do in the console.
type Role string

const (
	// RoleOperator reads every page and acts: refunds, admin actions on subscriptions,
	// tariff versions, account deletions.
	RoleOperator Role = "operator"
	// RoleReadOnly reads every page and acts on nothing: no action buttons are shown and
	// every POST is refused with 403.
	RoleReadOnly Role = "read_only"
)

// Operator is the person using the console, as the host's Identify names them.
type Operator struct {
	// ID is the operator's stable ID in the host's user directory. It is the actor the
	// engine writes to its audit log for every action ("olga@example.ru", "staff:17").
	// Required: an Operator with an empty ID is treated as no identity (401).
	ID string
	// Name is shown in the page header beside the ID; optional.
	Name string
	// Role is what the operator may do. Any value but RoleOperator is treated as
	// RoleReadOnly.
	Role Role
}

// canAct reports whether the operator may change anything.
func (o Operator) canAct() bool { return o.Role == RoleOperator }

// Options configure the console.
type Options struct {
	// Identify tells who is making the request, from the host's own session (a cookie, a
	// header set by an authenticating proxy…); false means nobody the console should serve,
	// answered with 401. Required. It is called on every request, so keep it cheap.
	Identify func(*http.Request) (Operator, bool)
	// Prefix is the path the host mounts the console under, without a trailing slash
	// ("/console"); every link and redirect the console writes starts with it. The host
	// strips it before the console sees the request (http.StripPrefix). Defaults to ""
	// (mounted at the root).
	Prefix string
	// CSRFSecret is the key of the HMAC that signs the CSRF tokens of the forms: at least
	// 32 bytes. Defaults to 32 random bytes made by New, which is right for one process;
	// give every replica behind a load balancer the same secret, or a form rendered by one
	// replica is refused by another. Trap: a secret that leaks lets anyone forge tokens for
	// any operator ID.
	CSRFSecret []byte
	// CSRFTokenTTL is how long a rendered form stays valid. Defaults to CSRFTokenTTLDefault.
	CSRFTokenTTL time.Duration
	// Location is the time zone of the times shown and of the dates and times typed into
	// forms. Defaults to the engine's Location (Europe/Moscow unless configured).
	Location *time.Location
	// SignInURL, when set, is linked from the 401 page so that a person can sign in.
	SignInURL string
	// Logger receives the causes of 500 answers (an engine error of kind internal). Defaults
	// to slog.Default().
	Logger *slog.Logger
}

// CSRFTokenTTLDefault is how long a form's CSRF token stays valid unless
// Options.CSRFTokenTTL says otherwise.
const CSRFTokenTTLDefault = 12 * time.Hour

// minCSRFSecret is the shortest CSRF secret New accepts.
const minCSRFSecret = 32

// handler is the console: the engine, the options with their defaults, and the routes.
type handler struct {
	engine *billing.Engine
	opts   Options
	csrf   csrfSigner
	pages  *pageSet
	mux    *http.ServeMux
	// cop refuses cross-origin POSTs (defence in depth beside the CSRF token).
	cop *http.CrossOriginProtection
}

// New returns the console over engine. It fails when engine or Options.Identify is nil, or
// the CSRF secret is too short.
func New(engine *billing.Engine, opts Options) (http.Handler, error) {
	var problems []string
	if engine == nil {
		problems = append(problems, "engine is nil")
	}
	if opts.Identify == nil {
		problems = append(problems, "Options.Identify is required")
	}
	if opts.CSRFSecret != nil && len(opts.CSRFSecret) < minCSRFSecret {
		problems = append(problems, fmt.Sprintf("Options.CSRFSecret has %d bytes, at least %d are needed", len(opts.CSRFSecret), minCSRFSecret))
	}
	if opts.CSRFTokenTTL < 0 {
		problems = append(problems, "Options.CSRFTokenTTL is negative")
	}
	if opts.Prefix != "" && (!strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/")) {
		problems = append(problems, fmt.Sprintf("Options.Prefix %q must start with / and not end with one", opts.Prefix))
	}
	if len(problems) > 0 {
		return nil, errors.New("console: " + strings.Join(problems, "; "))
	}
	if opts.CSRFSecret == nil {
		opts.CSRFSecret = make([]byte, minCSRFSecret)
		if _, err := rand.Read(opts.CSRFSecret); err != nil {
			return nil, fmt.Errorf("console: CSRF secret: %w", err)
		}
	}
	if opts.CSRFTokenTTL == 0 {
		opts.CSRFTokenTTL = CSRFTokenTTLDefault
	}
	if opts.Location == nil {
		opts.Location = engine.Location()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	h := &handler{engine: engine, opts: opts, pages: pages, mux: http.NewServeMux(),
		csrf: csrfSigner{secret: opts.CSRFSecret, ttl: opts.CSRFTokenTTL}, cop: http.NewCrossOriginProtection()}
	h.routes()
	return h, nil
}

// ServeHTTP checks who is asking and what they may do, then serves the page or action.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	op, ok := h.opts.Identify(r)
	if !ok || op.ID == "" {
		h.render(w, r, http.StatusUnauthorized, Operator{}, "unauthorized", map[string]any{"SignInURL": h.opts.SignInURL})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !op.canAct() {
			h.refuse(w, r, op, "Ваша роль — только чтение: действия недоступны.")
			return
		}
		if err := h.cop.Check(r); err != nil {
			h.refuse(w, r, op, "Запрос пришёл с другого сайта и отклонён.")
			return
		}
		if err := r.ParseForm(); err != nil {
			h.render(w, r, http.StatusBadRequest, op, "error", map[string]any{"Message": "Форма не читается: " + err.Error()})
			return
		}
		if !h.csrf.valid(r.PostForm.Get(csrfField), op.ID, time.Now()) {
			h.refuse(w, r, op, "Форма устарела или подделана (неверный CSRF-токен). Откройте страницу заново и повторите.")
			return
		}
	}
	h.mux.ServeHTTP(w, r.WithContext(withOperator(r.Context(), op)))
}

// refuse answers 403 with the reason.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, op Operator, why string) {
	h.render(w, r, http.StatusForbidden, op, "error", map[string]any{"Title": "Доступ запрещён", "Message": why})
}
