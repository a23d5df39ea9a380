package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/payment/yookassa"
	"github.com/smm-gpt/billing/payment/yookassa/yookassatest"
)

// The environment that connects the service to a real YooKassa shop (README: "Connecting a
// YooKassa shop"). Without both, the service runs on the in-process simulator.
const (
	envShopID    = "YOOKASSA_SHOP_ID"
	envSecretKey = "YOOKASSA_SECRET_KEY"
)

// provider is the payment provider the service runs on: the YooKassa adapter, over the real
// API or over the in-process simulator (sim is then set).
type provider struct {
	gateway *yookassa.Gateway
	// sim is the simulator when no shop is configured. SIMULATOR: it moves no money; it
	// follows YooKassa's documented API as far as the adapter uses it, and is not the service.
	sim *yookassatest.Server
}

// newProvider connects to the shop in YOOKASSA_SHOP_ID / YOOKASSA_SECRET_KEY, or, when they
// are not set, starts the simulator on the system clock (its notifications come from
// 127.0.0.1, which the adapter is told to trust).
func newProvider(logger *slog.Logger) (*provider, error) {
	shop, secret := os.Getenv(envShopID), os.Getenv(envSecretKey)
	if shop != "" || secret != "" {
		if shop == "" || secret == "" {
			return nil, errors.New("set both " + envShopID + " and " + envSecretKey + ", or neither (the simulator)")
		}
		g, err := yookassa.New(yookassa.Config{ShopID: shop, SecretKey: yookassa.NewSecret(secret), Logger: logger})
		if err != nil {
			return nil, err
		}
		logger.Info("httphost: payments go to YooKassa", "shop", shop)
		return &provider{gateway: g}, nil
	}
	sim := yookassatest.New()
	sim.SetClock(time.Now)
	g, err := simulatedGateway(sim, logger)
	if err != nil {
		sim.Close()
		return nil, err
	}
	logger.Warn("httphost: SIMULATOR: payments go to the in-process YooKassa simulator, which moves no money; set " +
		envShopID + " and " + envSecretKey + " for a real shop")
	return &provider{gateway: g, sim: sim}, nil
}

// simulatedGateway is the adapter over sim, trusting notifications from the loopback.
func simulatedGateway(sim *yookassatest.Server, logger *slog.Logger) (*yookassa.Gateway, error) {
	return yookassa.New(yookassa.Config{ShopID: sim.ShopID(), SecretKey: yookassa.NewSecret(sim.SecretKey()),
		BaseURL: sim.URL(), HTTPClient: sim.Client(), Logger: logger,
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
}

// close stops the simulator, if any.
func (p *provider) close() {
	if p.sim != nil {
		p.sim.Close()
	}
}

// yookassaWebhook takes YooKassa's notifications (configure its URL in the shop's cabinet,
// README). Statuses, so that YooKassa retries only what a retry can fix (it retries any
// non-200 answer for about a day):
//
//	403  the sender is not in YooKassa's networks (yookassa.NotificationIPs): nothing read
//	400  a body that is not a notification
//	200  done; or an event we do not handle, about a payment not ours, or already known
//	400  the API contradicts the body (billing.ErrWebhookNotConfirmed): nothing changed
//	503  the API could not be asked: YooKassa delivers it again later
//
// The body is a hint: the engine acts only on what the API says about the payment.
func (s *server) yookassaWebhook(w http.ResponseWriter, r *http.Request) {
	if s.provider == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no YooKassa provider"})
		return
	}
	if !s.provider.gateway.FromYooKassa(r.RemoteAddr) {
		s.logger.Warn("httphost: a notification from outside YooKassa's networks", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusForbidden, errorBody{Error: "forbidden", Message: "not from YooKassa"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_input", Message: "request body: " + err.Error()})
		return
	}
	ev, err := s.provider.gateway.ParseNotification(body)
	if errors.Is(err, yookassa.ErrUnknownEvent) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_input", Message: err.Error()})
		return
	}
	ev.ReceivedAt = s.engine.Now()
	if ev.Kind == payment.KindRefund {
		_, err = s.engine.HandleRefundWebhook(r.Context(), ev)
	} else {
		_, err = s.engine.HandlePaymentWebhook(r.Context(), ev)
	}
	switch {
	case err == nil, errors.Is(err, billing.ErrUnknownPayment), errors.Is(err, billing.ErrNotFound):
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case errors.Is(err, billing.ErrWebhookNotConfirmed):
		s.writeError(w, err)
	default:
		s.logger.Warn("httphost: notification not handled now; YooKassa will deliver it again", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "unavailable", Message: "try again later"})
	}
}

// simulatorPay plays the customer on the simulator's payment page: POST
// /simulator/payments/{id}/succeed pays, /cancel abandons. SIMULATOR only (404 on a real
// shop): a real customer pays on YooKassa's page at the confirmation URL.
func (s *server) simulatorPay(w http.ResponseWriter, r *http.Request) {
	if s.provider == nil || s.provider.sim == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no simulator: payments go to a real shop"})
		return
	}
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "succeed":
		err = s.provider.sim.Succeed(id)
	case "cancel":
		err = s.provider.sim.Cancel(id, "expired_on_confirmation")
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "succeed or cancel"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, errorBody{Error: "conflict", Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
