package yookassa

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/smm-gpt/billing/payment"
)

// notificationIPs are the networks YooKassa sends notifications from, as listed under
// "IP authentication" on https://yookassa.ru/developers/using-api/webhooks (the same list
// the official SDKs check; the Python SDK narrows 2a02:5180::/32 to four /64s).
var notificationIPs = []string{
	"185.71.76.0/27",
	"185.71.77.0/27",
	"77.75.153.0/25",
	"77.75.156.11/32",
	"77.75.156.35/32",
	"77.75.154.128/25",
	"2a02:5180::/32",
}

// NotificationIPs returns the networks YooKassa documents as the sources of its
// notifications (https://yookassa.ru/developers/using-api/webhooks): 185.71.76.0/27,
// 185.71.77.0/27, 77.75.153.0/25, 77.75.156.11, 77.75.156.35, 77.75.154.128/25 and
// 2a02:5180::/32. It is the default of Config.TrustedNetworks; each call returns a new
// slice.
func NotificationIPs() []netip.Prefix {
	out := make([]netip.Prefix, len(notificationIPs))
	for i, s := range notificationIPs {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// FromYooKassa reports whether remoteAddr (an http.Request's RemoteAddr, "ip:port", or a
// bare IP) is in Config.TrustedNetworks. Trap: pass the address of the TCP peer, or one
// your own reverse proxy sets; a client-supplied X-Forwarded-For proves nothing. The check
// only sheds noise: the engine confirms every webhook with Lookup before acting on it.
func (g *Gateway) FromYooKassa(remoteAddr string) bool {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range g.cfg.TrustedNetworks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ErrUnknownEvent is matched by *UnknownEventError: a well-formed notification of an event
// this package does not handle (payment_method.active, payout.*, deal.*, refund.canceled,
// …). The host should answer it with HTTP 200, so that YooKassa stops sending it, and
// ignore it.
var ErrUnknownEvent = errors.New("yookassa: notification of an event the billing does not handle")

// UnknownEventError is ParseNotification's error for an event it does not handle.
type UnknownEventError struct {
	// Event is the notification's event, e.g. "payout.succeeded".
	Event string
}

// Error names the event.
func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("yookassa: notification of event %q, which the billing does not handle", e.Event)
}

// Is reports whether target is ErrUnknownEvent.
func (e *UnknownEventError) Is(target error) bool { return target == ErrUnknownEvent }

// notification is the body YooKassa posts.
type notification struct {
	Type   string          `json:"type"`
	Event  string          `json:"event"`
	Object json.RawMessage `json:"object"`
}

// ParseNotification reads the body of a YooKassa notification into a payment.WebhookEvent,
// with ReceivedAt from the gateway's clock:
//
//   - payment.succeeded, payment.waiting_for_capture, payment.canceled: KindCharge, the
//     payment's id, the key from its metadata, the outcome as Charge maps it (a decline with
//     its reason), the amount;
//   - refund.succeeded: KindRefund, the refund's and the payment's ids, the key from its
//     metadata, OutcomeSucceeded, the amount.
//
// Any other event is an *UnknownEventError (errors.Is ErrUnknownEvent): answer 200 and
// drop it. A body that is not a notification, or whose object cannot be read, is another
// error: answer 400. The event is a hint: the engine confirms it with Lookup.
func (g *Gateway) ParseNotification(body []byte) (payment.WebhookEvent, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification: %w", err)
	}
	if n.Type != "notification" {
		return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification: type %q, not \"notification\"", n.Type)
	}
	now := g.cfg.Clock.Now()
	switch n.Event {
	case "payment.succeeded", "payment.waiting_for_capture", "payment.canceled":
		var p paymentObject
		if err := json.Unmarshal(n.Object, &p); err != nil {
			return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification %s: %w", n.Event, err)
		}
		res, err := toChargeResult(p)
		if err != nil {
			return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification %s: %w", n.Event, err)
		}
		return payment.WebhookEvent{
			Kind:              payment.KindCharge,
			ProviderPaymentID: p.ID,
			IdempotencyKey:    p.Metadata[payment.MetadataIdempotencyKey],
			Outcome:           res.Outcome,
			Amount:            res.Amount,
			Currency:          res.Currency,
			DeclineCode:       res.DeclineCode,
			DeclineMessage:    res.DeclineMessage,
			ReceivedAt:        now,
		}, nil
	case "refund.succeeded":
		var r refundObject
		if err := json.Unmarshal(n.Object, &r); err != nil {
			return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification %s: %w", n.Event, err)
		}
		res, err := toRefundResult(r)
		if err != nil {
			return payment.WebhookEvent{}, fmt.Errorf("yookassa: notification %s: %w", n.Event, err)
		}
		return payment.WebhookEvent{
			Kind:              payment.KindRefund,
			ProviderPaymentID: r.PaymentID,
			ProviderRefundID:  r.ID,
			IdempotencyKey:    r.Metadata[payment.MetadataIdempotencyKey],
			Outcome:           res.Outcome,
			Amount:            res.Amount,
			Currency:          res.Currency,
			DeclineCode:       res.DeclineCode,
			DeclineMessage:    res.DeclineMessage,
			ReceivedAt:        now,
		}, nil
	}
	return payment.WebhookEvent{}, &UnknownEventError{Event: n.Event}
}
