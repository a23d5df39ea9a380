package yookassatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// webhookConfig is where and from where notifications are POSTed.
type webhookConfig struct {
	url    string
	source net.IP
}

// SentNotification is one notification the simulator made: its body, and what happened when
// it was POSTed to the webhook URL (if one was set).
type SentNotification struct {
	// Event is the notification's event, e.g. "payment.succeeded".
	Event string
	// ObjectID is the id of the payment or refund.
	ObjectID string
	// Body is the JSON body, {"type":"notification","event":…,"object":{…}}, ready to be
	// POSTed by hand.
	Body []byte
	// At is when the change happened, by the simulator's clock.
	At time.Time
	// Attempted reports whether the simulator POSTed it (a webhook URL was set).
	Attempted bool
	// StatusCode is the webhook's HTTP status, 0 when the POST failed or was not attempted.
	StatusCode int
	// Err is the POST's error text, empty when it got an answer.
	Err string
}

// SetWebhookURL sets the URL the simulator POSTs notifications to, as the shop's "HTTP
// notifications" setting does; "" stops sending (they are still recorded, see
// Notifications). Each notification is POSTed once, synchronously, after the change is made
// and before the HTTP answer that made it (if any) is written: a receiver can see it before
// the adapter sees the answer, as happens with the real service. No retries.
func (s *Server) SetWebhookURL(url string) {
	s.mu.Lock()
	s.webhook.url = url
	s.mu.Unlock()
}

// SetWebhookSource sets the local address notifications are POSTed from. Only loopback
// addresses can be used on the test machine (127.0.0.1 to 127.255.255.254 on Linux, ::1); nil
// (the default) lets the system choose, which for a loopback URL is 127.0.0.1. The real
// service sends from its documented ranges, which a test cannot bind: an adapter's source-IP
// check must be configurable to accept the test's address.
func (s *Server) SetWebhookSource(ip net.IP) {
	s.mu.Lock()
	s.webhook.source = ip
	s.mu.Unlock()
}

// Notifications returns every notification made so far, in order, with its delivery result.
func (s *Server) Notifications() []SentNotification {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentNotification, len(s.notes))
	for i, n := range s.notes {
		out[i] = *n
		out[i].Body = bytes.Clone(n.Body)
	}
	return out
}

// notifyLocked records a notification of event about object.
func (s *Server) notifyLocked(event string, object any) {
	body, err := json.Marshal(Notification{Type: "notification", Event: event, Object: object})
	if err != nil {
		panic(err)
	}
	var id string
	switch o := object.(type) {
	case Payment:
		id = o.ID
	case Refund:
		id = o.ID
	}
	s.notes = append(s.notes, &SentNotification{Event: event, ObjectID: id, Body: body, At: s.nowLocked()})
}

// outbox is the notifications to POST once the lock is released.
type outbox struct {
	url    string
	source net.IP
	notes  []*SentNotification
}

// outboxLocked takes the notifications not yet attempted when a webhook URL is set.
func (s *Server) outboxLocked() outbox {
	o := outbox{url: s.webhook.url, source: s.webhook.source}
	if o.url == "" {
		return o
	}
	for _, n := range s.notes {
		if !n.Attempted {
			n.Attempted = true
			o.notes = append(o.notes, n)
		}
	}
	return o
}

// deliver POSTs the outbox's notifications in order. It runs without the lock, so a receiver
// may call the simulator back.
func (s *Server) deliver(o outbox) {
	if len(o.notes) == 0 {
		return
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if o.source != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: o.source}
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true},
	}
	for _, n := range o.notes {
		status, errText := post(client, o.url, n.Body)
		s.mu.Lock()
		n.StatusCode, n.Err = status, errText
		s.mu.Unlock()
	}
}

func post(client *http.Client, url string, body []byte) (int, string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Sprint(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, ""
}
