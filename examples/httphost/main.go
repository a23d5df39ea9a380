// Command httphost is a small HTTP service that embeds the billing engine the way a real host
// does: its own pgxpool, its own River client with the engine's workers and periodic jobs, JSON
// endpoints over the engine's commands, and a graceful shutdown on SIGINT or SIGTERM.
//
//	POST /subscriptions                          {"customer_id","tariff_code","email","payment_method"}: subscribe and charge the saved card
//	POST /subscriptions                          {"customer_id","tariff_code","email","return_url"}: subscribe; pay on the provider's page (confirmation_url)
//	GET  /subscriptions/{id}                     the subscription, its current period, usage and access
//	POST /subscriptions/{id}/consume             {"meter","quantity"}: count usage, all or nothing
//	POST /subscriptions/{id}/refund-requests     {"text","channel"}: record a refund request (TERMS 3.7)
//	POST /webhooks/yookassa                      YooKassa's notifications (checked against its networks, confirmed with its API)
//	POST /webhooks/payments                      a payment.WebhookEvent, for a provider whose adapter the host translates itself
//	POST /simulator/payments/{id}/succeed|cancel SIMULATOR only: play the customer on the payment page
//	GET  /healthz                                200 while serving
//	GET  /console/                               the operator's console (package console), behind
//	GET  /demo/signin                            a DEMO sign-in: no password, an unsigned cookie naming
//	                                             the operator and role; never deploy it as is
//	GET  /riverui/                               River UI (riverqueue.com/riverui): River's jobs and queues,
//	                                             behind the same sign-in, for the operator role only
//
// The POST endpoints that change money or usage require an Idempotency-Key header: a retry with
// the same key returns the first result; the same key with another body is 409.
//
// Errors are JSON {"error": kind, "message": …}: the kind and the status are the engine's
// (billing.KindOf, billing.HTTPStatus), so one call maps every engine error:
//
//	400 invalid_input                  bad JSON, a missing or bad field (problems lists each), no Idempotency-Key,
//	                                   an unknown meter, a webhook the gateway does not confirm (forged, or contradicting it)
//	402 payment_declined               POST /subscriptions: the first charge was declined; no access (TERMS 3.3)
//	403 no_access (with reason)        the subscription gives no access now: not paid, used up, expired, …
//	403 limit_exceeded                 the request would pass the period's limit (TERMS 3.1); nothing was counted
//	404 not_found                      no such subscription or tariff; a webhook about no charge of ours
//	409 conflict                       the Idempotency-Key was used with another request; the request clashes
//	                                   with the state (already refunded, tariff retired, another customer's card…)
//	503 unavailable                    the engine is not wired for it (no gateway) or the context ended
//	500 internal                       anything else; the cause is logged, not returned
//
// The message says which rule refused the request ("idempotency key reused…", "webhook not
// confirmed…").
//
// Why 403 and not 402 or 429: 402 Payment Required is reserved and clients treat it
// inconsistently; 429 Too Many Requests invites an automatic retry after a delay, but a used-up
// volume stays used up until the period ends or the customer pays. 403 says "this request is
// refused for this subscription", and the error code and reason say why.
//
// The payment provider is YooKassa (payment/yookassa): the real API when YOOKASSA_SHOP_ID and
// YOOKASSA_SECRET_KEY are set, otherwise SIMULATOR: the in-process yookassatest server, which
// follows YooKassa's documented API as far as the adapter uses it, moves no money and is not
// the real service. Receipts (54-FZ) go to the customer's e-mail, which the engine asks the
// host for (Config.ReceiptContact; here a map filled from the request, where a real host has
// its user table).
//
// Run it from the repository's root with `./scripts/pg-tmp.sh go -C examples/httphost run .`
// (a module of its own: see its go.mod; it publishes a tariff "pro" on an empty catalog), then e.g.
//
//	curl -s -XPOST localhost:8080/subscriptions -H 'Idempotency-Key: c1' \
//	     -d '{"customer_id":"user-42","tariff_code":"pro","email":"u42@example.ru","return_url":"https://app.example/back"}'
//	curl -s -XPOST localhost:8080/simulator/payments/<payment.provider_payment_id>/succeed
//	curl -s localhost:8080/subscriptions/<id>
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/tariff"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv("DATABASE_URL"), *addr, logger, nil); err != nil {
		logger.Error("httphost: " + err.Error())
		os.Exit(1)
	}
}

// shutdownTimeout bounds each step of the shutdown: in-flight requests, then running jobs.
const shutdownTimeout = 20 * time.Second

// run connects to the database, wires the engine and River, and serves HTTP on addr until ctx
// is done; then it shuts down gracefully: the HTTP server first (no new requests, in-flight
// ones finish, and they may still insert jobs), then the River client (no new jobs, running
// ones finish). ready, when not nil, is told the address once the server listens.
func run(ctx context.Context, databaseURL, addr string, logger *slog.Logger, ready func(net.Addr)) error {
	if databaseURL == "" {
		return errors.New("DATABASE_URL is not set; run it under ./scripts/pg-tmp.sh, which starts a throwaway PostgreSQL")
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	// YooKassa: the real API with YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY, else the simulator.
	prov, err := newProvider(logger)
	if err != nil {
		return err
	}
	defer prov.close()
	h, err := newHost(ctx, pool, prov.gateway, logger)
	if err != nil {
		return err
	}
	if err := seedTariff(ctx, h.engine); err != nil {
		return err
	}
	// River gets a context that the signal does not cancel: cancelling Start's context is
	// River's hard stop (running jobs cancelled). The graceful Stop below comes after the
	// HTTP server has drained.
	if err := h.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start River: %w", err)
	}
	defer h.stopRiver(logger)

	// River UI's background services stop after the HTTP server has drained (defers run last
	// in, first out).
	uiCtx, stopUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUI()
	handler, err := withOperatorPages(uiCtx, newServer(h, prov, logger), h, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("httphost: serving", "addr", ln.Addr().String())
	if prov.sim != nil { // the simulator notifies this service, as YooKassa would (its URL in the cabinet)
		prov.sim.SetWebhookURL("http://" + ln.Addr().String() + "/webhooks/yookassa")
	}
	if ready != nil {
		ready(ln.Addr())
	}

	select {
	case err := <-serveErr:
		return err // the server failed on its own
	case <-ctx.Done():
	}
	logger.Info("httphost: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// host is the engine, the River client it inserts its jobs through, and the customers'
// receipt contacts.
type host struct {
	engine   *billing.Engine
	river    *river.Client[pgx.Tx]
	contacts *contactBook
}

// newHost makes the engine on pool with gateway, migrates the database (the engine's and
// River's schema, idempotent), registers the engine's workers and periodic jobs into a new
// River client and hands the client to the engine. The client is not started.
func newHost(ctx context.Context, pool *pgxpool.Pool, gateway payment.Gateway, logger *slog.Logger) (*host, error) {
	cfg := billing.DefaultConfig() // Europe/Moscow, the system clock, the Russian production calendar
	cfg.Gateway = gateway
	cfg.Logger = logger
	cfg.VAT = payment.VAT22Of122 // the general tax system's prepayment rate from 2026; ask your accountant
	contacts := newContactBook()
	cfg.ReceiptContact = contacts.lookup
	cfg.OnEvent = func(_ context.Context, ev billing.Event) error {
		// A real host hands the event to its own queue here, quickly (this runs inside a River
		// job), deduplicating by ev.ID: delivery is at least once. Here it is logged, and a
		// refund request near its payout deadline (TERMS 3.8) would page the support team.
		if ev.Kind == billing.EventRefundDueSoon {
			logger.Warn("httphost: refund request near its payout deadline (TERMS 3.8)",
				"request", ev.RefundRequestID, "deadline", ev.DueAt)
			return nil
		}
		logger.Info("httphost: event", "id", ev.ID, "kind", ev.Kind, "subscription", ev.SubscriptionID)
		return nil
	}
	engine, err := billing.New(pool, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := engine.Migrate(ctx); err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	if err := engine.RegisterWorkers(workers); err != nil {
		return nil, err
	}
	// The host's own workers would be added to the same bundle here.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:      workers,
		PeriodicJobs: engine.PeriodicJobs(10 * time.Minute), // the renewal sweeper and the reconciliation of unknown charges
		Logger:       logger,
	})
	if err != nil {
		return nil, err
	}
	if err := engine.UseRiver(client); err != nil {
		return nil, err
	}
	return &host{engine: engine, river: client, contacts: contacts}, nil
}

// stopRiver stops the River client gracefully, and cancels the jobs still running when that
// takes longer than shutdownTimeout.
func (h *host) stopRiver(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.river.Stop(ctx); err != nil {
		logger.Warn("httphost: River did not stop in time; cancelling running jobs", "error", err)
		hardCtx, hardCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer hardCancel()
		_ = h.river.StopAndCancel(hardCtx)
	}
}

// seedTariff publishes the tariff "pro" (990 RUB a month, 500 generations) when the catalog
// has none of that code, so that the service can be tried at once. A real host publishes its
// tariffs from an operator's console.
func seedTariff(ctx context.Context, engine *billing.Engine) error {
	_, err := engine.Tariffs().Get(ctx, "pro")
	if !errors.Is(err, billing.ErrNotFound) {
		return err
	}
	_, err = engine.Tariffs().Publish(ctx, "httphost:seed", tariff.Spec{Code: "pro", Name: "Pro",
		Price: decimal.NewFromInt(990), Period: tariff.Period{Count: 1, Unit: tariff.Month},
		Limits: []tariff.Limit{{Meter: "generations", Quantity: 500}}})
	return err
}
