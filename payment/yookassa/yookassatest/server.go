package yookassatest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The simulator's defaults.
const (
	// DefaultShopID is the shop ID a Server accepts unless WithCredentials sets another.
	DefaultShopID = "100500"
	// DefaultSecretKey is the secret key a Server accepts unless WithCredentials sets another.
	DefaultSecretKey = "test_c2ltdWxhdG9yLXNlY3JldC1rZXk"
	// IdempotenceWindow is how long a key and its answer are kept, by the simulator's clock.
	IdempotenceWindow = 24 * time.Hour
	// CaptureWindow is how long a payment waits for capture before it is canceled with
	// expired_on_capture (seven days for bank cards).
	CaptureWindow = 7 * 24 * time.Hour
)

// DefaultStart is the simulator clock's start unless WithStart or SetClock says otherwise.
var DefaultStart = time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)

// Server is the simulator: an httptest.Server speaking the YooKassa API v3 subset described
// in the package comment, with its own clock, scripts and records. It is safe for concurrent
// use. Make it with New; Close it when done.
type Server struct {
	srv *httptest.Server

	mu sync.Mutex

	shopID, secretKey string
	clock             func() time.Time
	offset            time.Duration
	receiptRequired   bool
	webhook           webhookConfig

	byMethod     map[string][]Behaviour
	all          []Behaviour
	refundScript []Behaviour
	getFailures  []int

	seq          int
	errSeq       int
	payments     []*payment
	paymentsByID map[string]*payment
	refunds      []*refund
	refundsByID  map[string]*refund
	keys         map[string]*keyEntry
	notes        []*SentNotification
	requests     RequestCounts
}

// RequestCounts counts the HTTP requests the simulator answered, by kind.
type RequestCounts struct {
	// CreatePayment counts POST /v3/payments, replays and refusals included.
	CreatePayment int
	// GetPayment counts GET /v3/payments/{id}.
	GetPayment int
	// ListPayments counts GET /v3/payments.
	ListPayments int
	// CreateRefund counts POST /v3/refunds.
	CreateRefund int
	// GetRefund counts GET /v3/refunds/{id}.
	GetRefund int
	// ListRefunds counts GET /v3/refunds.
	ListRefunds int
	// Unauthorized counts the requests refused with 401.
	Unauthorized int
}

// payment is a payment with what the simulator keeps beside its wire object.
type payment struct {
	obj      Payment
	seq      int
	created  time.Time
	key      string
	receipt  *Receipt
	units    int64 // amount in minor units
	refunded int64 // succeeded refunds
	pending  int64 // pending refunds
	capture  bool
	save     bool
	methodID string // the payment_method_id of an autopayment
	settleAt time.Time
	settle   *Behaviour
	captured time.Time
}

// refund is a refund with what the simulator keeps beside its wire object.
type refund struct {
	obj      Refund
	seq      int
	created  time.Time
	key      string
	receipt  *Receipt
	units    int64
	settleAt time.Time
	settle   *Behaviour
}

// keyEntry is an answer stored under an Idempotence-Key.
type keyEntry struct {
	request []byte // method, path and canonical body
	status  int
	body    []byte
	at      time.Time
}

// Option configures a Server in New.
type Option func(*Server)

// WithCredentials sets the shop ID and secret key the server accepts (HTTP Basic). Defaults
// to DefaultShopID and DefaultSecretKey.
func WithCredentials(shopID, secretKey string) Option {
	return func(s *Server) { s.shopID, s.secretKey = shopID, secretKey }
}

// WithStart sets the instant the simulator's clock starts at. Defaults to DefaultStart.
func WithStart(t time.Time) Option {
	return func(s *Server) { s.clock = func() time.Time { return t } }
}

// WithoutReceipts makes receipt optional on payments and refunds (a shop that does not use
// YooKassa's 54-FZ solutions). By default a receipt is required, as for a shop that does.
func WithoutReceipts() Option { return func(s *Server) { s.receiptRequired = false } }

// WithWebhookURL makes the server POST every notification to url; see SetWebhookURL.
func WithWebhookURL(url string) Option { return func(s *Server) { s.webhook.url = url } }

// New starts a simulator on a loopback port. Its clock stands still at DefaultStart until
// Advance or SetClock moves it.
func New(opts ...Option) *Server {
	s := &Server{
		shopID:          DefaultShopID,
		secretKey:       DefaultSecretKey,
		clock:           func() time.Time { return DefaultStart },
		receiptRequired: true,
		byMethod:        map[string][]Behaviour{},
		paymentsByID:    map[string]*payment{},
		refundsByID:     map[string]*refund{},
		keys:            map[string]*keyEntry{},
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL returns the API base URL, the simulator's equivalent of https://api.yookassa.ru/v3:
// the endpoints are URL()+"/payments", URL()+"/refunds", … (no trailing slash).
func (s *Server) URL() string { return s.srv.URL + "/v3" }

// Client returns an HTTP client for the server (plain HTTP; the real API is HTTPS only).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down, waiting for the requests in flight.
func (s *Server) Close() { s.srv.Close() }

// ShopID returns the shop ID the server accepts.
func (s *Server) ShopID() string { return s.shopID }

// SecretKey returns the secret key the server accepts. The simulator never logs it.
func (s *Server) SecretKey() string { return s.secretKey }

// Now returns the simulator's time: the clock plus every Advance, truncated to milliseconds.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

// SetClock replaces the simulator's clock (Advance still adds to it). Scheduled changes
// (PendingThen, expired captures, forgotten keys) are applied when the time is next read.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.clock = now
	s.mu.Unlock()
}

// Advance moves the simulator's clock by d and applies the changes now due (payments that
// settle, captures that expire), sending their notifications.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.tickLocked()
	out := s.outboxLocked()
	s.mu.Unlock()
	s.deliver(out)
}

// Script queues behaviours for the next payments made with payment_method_id (a saved card),
// one behaviour per payment in order; they take precedence over ScriptAll.
func (s *Server) Script(paymentMethodID string, bs ...Behaviour) {
	for _, b := range bs {
		b.check(false)
	}
	s.mu.Lock()
	s.byMethod[paymentMethodID] = append(s.byMethod[paymentMethodID], bs...)
	s.mu.Unlock()
}

// ScriptAll queues behaviours for the next payments of any kind (after the per-method
// scripts): autopayments and checkout payments alike.
func (s *Server) ScriptAll(bs ...Behaviour) {
	for _, b := range bs {
		b.check(false)
	}
	s.mu.Lock()
	s.all = append(s.all, bs...)
	s.mu.Unlock()
}

// ScriptRefunds queues behaviours for the next refunds.
func (s *Server) ScriptRefunds(bs ...Behaviour) {
	for _, b := range bs {
		b.check(true)
	}
	s.mu.Lock()
	s.refundScript = append(s.refundScript, bs...)
	s.mu.Unlock()
}

// FailGETs makes the next n GET requests (any endpoint) answer status, 500 or 429, with the
// documented error body, and do nothing else.
func (s *Server) FailGETs(n int, status int) {
	if status != http.StatusInternalServerError && status != http.StatusTooManyRequests {
		panic(fmt.Sprintf("yookassatest: FailGETs: status %d, want 500 or 429", status))
	}
	s.mu.Lock()
	for range n {
		s.getFailures = append(s.getFailures, status)
	}
	s.mu.Unlock()
}

// Succeed settles a pending payment as succeeded, as when the customer pays on the
// confirmation page (a checkout payment with save_payment_method then has a saved method),
// or captures a waiting_for_capture one (as the merchant's capture request would; that
// endpoint is not simulated). It notifies payment.succeeded, or
// payment.waiting_for_capture for a pending payment made without capture: true.
func (s *Server) Succeed(paymentID string) error {
	return s.settlePayment(paymentID, Success())
}

// Cancel settles a pending or waiting_for_capture payment as canceled with a documented
// reason and its default party, and notifies payment.canceled.
func (s *Server) Cancel(paymentID, reason string) error {
	if _, ok := PaymentCancellationReasons[reason]; !ok {
		return fmt.Errorf("yookassatest: %q is not a documented payment cancellation reason", reason)
	}
	return s.settlePayment(paymentID, Decline(reason))
}

// SucceedRefund settles a pending refund as succeeded and notifies refund.succeeded.
func (s *Server) SucceedRefund(refundID string) error {
	return s.settleRefund(refundID, Success())
}

// CancelRefund settles a pending refund as canceled with a documented refund reason.
func (s *Server) CancelRefund(refundID, reason string) error {
	if _, ok := RefundCancellationReasons[reason]; !ok {
		return fmt.Errorf("yookassatest: %q is not a documented refund cancellation reason", reason)
	}
	return s.settleRefund(refundID, Decline(reason))
}

func (s *Server) settlePayment(id string, b Behaviour) error {
	s.mu.Lock()
	s.tickLocked()
	p, ok := s.paymentsByID[id]
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("yookassatest: no payment %q", id)
	case p.obj.Status != "pending" && p.obj.Status != "waiting_for_capture":
		err = fmt.Errorf("yookassatest: payment %q is %s, not pending", id, p.obj.Status)
	default:
		s.applyPaymentLocked(p, b)
	}
	out := s.outboxLocked()
	s.mu.Unlock()
	s.deliver(out)
	return err
}

func (s *Server) settleRefund(id string, b Behaviour) error {
	s.mu.Lock()
	s.tickLocked()
	r, ok := s.refundsByID[id]
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("yookassatest: no refund %q", id)
	case r.obj.Status != "pending":
		err = fmt.Errorf("yookassatest: refund %q is %s, not pending", id, r.obj.Status)
	default:
		s.applyRefundLocked(r, b)
	}
	out := s.outboxLocked()
	s.mu.Unlock()
	s.deliver(out)
	return err
}

// PaymentRecord is what the simulator knows of one payment: the independent record a test
// compares the adapter's view with.
type PaymentRecord struct {
	// Payment is the object as GET /v3/payments/{id} would return it now.
	Payment Payment
	// IdempotenceKey is the key the payment was created under.
	IdempotenceKey string
	// PaymentMethodID is the payment_method_id of an autopayment, empty for a checkout.
	PaymentMethodID string
	// Capture is the request's capture flag.
	Capture bool
	// SavePaymentMethod is the request's save_payment_method flag.
	SavePaymentMethod bool
	// Receipt is the receipt received with the payment, nil if none.
	Receipt *Receipt
	// CreatedAt is the creation instant by the simulator's clock.
	CreatedAt time.Time
}

// RefundRecord is what the simulator knows of one refund.
type RefundRecord struct {
	// Refund is the object as GET /v3/refunds/{id} would return it now.
	Refund Refund
	// IdempotenceKey is the key the refund was created under.
	IdempotenceKey string
	// Receipt is the receipt received with the refund, nil if none.
	Receipt *Receipt
	// CreatedAt is the creation instant by the simulator's clock.
	CreatedAt time.Time
}

// Payments returns every payment in creation order, after applying the changes due.
func (s *Server) Payments() []PaymentRecord {
	s.mu.Lock()
	s.tickLocked()
	out := s.outboxLocked()
	recs := make([]PaymentRecord, len(s.payments))
	for i, p := range s.payments {
		recs[i] = p.record()
	}
	s.mu.Unlock()
	s.deliver(out)
	return recs
}

// Payment returns one payment's record.
func (s *Server) Payment(id string) (PaymentRecord, bool) {
	for _, r := range s.Payments() {
		if r.Payment.ID == id {
			return r, true
		}
	}
	return PaymentRecord{}, false
}

// Refunds returns every refund in creation order.
func (s *Server) Refunds() []RefundRecord {
	s.mu.Lock()
	s.tickLocked()
	out := s.outboxLocked()
	recs := make([]RefundRecord, len(s.refunds))
	for i, r := range s.refunds {
		recs[i] = RefundRecord{Refund: r.object(), IdempotenceKey: r.key, Receipt: r.receipt, CreatedAt: r.created}
	}
	s.mu.Unlock()
	s.deliver(out)
	return recs
}

// Requests returns the request counts so far.
func (s *Server) Requests() RequestCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (p *payment) record() PaymentRecord {
	return PaymentRecord{Payment: p.object(), IdempotenceKey: p.key, PaymentMethodID: p.methodID,
		Capture: p.capture, SavePaymentMethod: p.save, Receipt: p.receipt, CreatedAt: p.created}
}

// object returns a deep copy of the wire object.
func (p *payment) object() Payment {
	o := p.obj
	o.Metadata = maps.Clone(p.obj.Metadata)
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if p.obj.PaymentMethod != nil {
		pm := *p.obj.PaymentMethod
		if pm.Card != nil {
			c := *pm.Card
			pm.Card = &c
		}
		o.PaymentMethod = &pm
	}
	if p.obj.Confirmation != nil {
		c := *p.obj.Confirmation
		o.Confirmation = &c
	}
	if p.obj.CancellationDetails != nil {
		c := *p.obj.CancellationDetails
		o.CancellationDetails = &c
	}
	if p.obj.RefundedAmount != nil {
		a := *p.obj.RefundedAmount
		o.RefundedAmount = &a
	}
	return o
}

func (r *refund) object() Refund {
	o := r.obj
	o.Metadata = maps.Clone(r.obj.Metadata)
	if r.obj.CancellationDetails != nil {
		c := *r.obj.CancellationDetails
		o.CancellationDetails = &c
	}
	return o
}

// ---- clock and scheduled changes ----

// nowLocked is the simulator's time, to the millisecond: the API's timestamps carry
// milliseconds, and a filter built from a returned created_at must find its object.
func (s *Server) nowLocked() time.Time {
	return s.clock().Add(s.offset).UTC().Truncate(time.Millisecond)
}

// tickLocked applies the changes due by now: PendingThen settlements and expired captures.
func (s *Server) tickLocked() {
	now := s.nowLocked()
	for _, p := range s.payments {
		switch {
		case p.obj.Status == "pending" && p.settle != nil && !now.Before(p.settleAt):
			b := *p.settle
			p.settle = nil
			s.applyPaymentLocked(p, b)
		case p.obj.Status == "waiting_for_capture" && !now.Before(p.settleAt):
			s.applyPaymentLocked(p, Decline("expired_on_capture"))
		}
	}
	for _, r := range s.refunds {
		if r.obj.Status == "pending" && r.settle != nil && !now.Before(r.settleAt) {
			b := *r.settle
			r.settle = nil
			s.applyRefundLocked(r, b)
		}
	}
}

// stamp formats an instant as the API does: UTC, milliseconds, "Z".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// newID returns the next object id, 36 characters like the API's. kind tells objects apart
// in the id ("000f" payments, "0015" refunds, "0022" payment methods).
func (s *Server) newID(kind string) string {
	s.seq++
	return fmt.Sprintf("%08x-%s-5000-8000-%012x", 0x2f000000+s.seq, kind, s.seq)
}

// applyPaymentLocked moves a payment by b: Success, Decline, Pending or PendingThen.
func (s *Server) applyPaymentLocked(p *payment, b Behaviour) {
	now := s.nowLocked()
	switch b.kind {
	case kindPending:
		p.obj.Status = "pending"
	case kindPendingThen:
		p.obj.Status = "pending"
		p.settleAt, p.settle = now.Add(b.after), b.then
	case kindDecline:
		p.obj.Status = "canceled"
		p.obj.Paid, p.obj.Refundable = false, false
		p.obj.CancellationDetails = b.cancellation(false)
		p.obj.ExpiresAt = ""
		if p.obj.Confirmation != nil {
			p.obj.Confirmation.ConfirmationURL = ""
		}
		if p.obj.ReceiptRegistration != "" {
			p.obj.ReceiptRegistration = "canceled"
		}
		s.notifyLocked("payment.canceled", p.object())
	default: // success, whatever the transport does after
		if p.obj.PaymentMethod == nil {
			p.obj.PaymentMethod = s.newMethod(s.newID("0022"), p.save)
		} else if p.save {
			p.obj.PaymentMethod.Saved = true
		}
		p.obj.Paid = true
		if p.obj.Confirmation != nil {
			p.obj.Confirmation.ConfirmationURL = ""
		}
		if !p.capture && p.obj.Status != "waiting_for_capture" {
			p.obj.Status = "waiting_for_capture"
			p.settleAt = now.Add(CaptureWindow)
			p.obj.ExpiresAt = stamp(p.settleAt)
			s.notifyLocked("payment.waiting_for_capture", p.object())
			return
		}
		p.obj.Status = "succeeded"
		p.obj.ExpiresAt = ""
		p.captured = now
		p.obj.CapturedAt = stamp(now)
		p.obj.Refundable = true
		if p.obj.ReceiptRegistration != "" {
			p.obj.ReceiptRegistration = "succeeded"
		}
		s.notifyLocked("payment.succeeded", p.object())
	}
}

// newMethod returns a bank card payment method with the given id.
func (s *Server) newMethod(id string, saved bool) *PaymentMethod {
	return &PaymentMethod{Type: "bank_card", ID: id, Saved: saved, Title: "Bank card *4444",
		Card: &Card{First6: "555555", Last4: "4444", ExpiryYear: "2030", ExpiryMonth: "12", CardType: "MasterCard"}}
}

// applyRefundLocked moves a refund by b.
func (s *Server) applyRefundLocked(r *refund, b Behaviour) {
	p := s.paymentsByID[r.obj.PaymentID]
	wasPending := r.obj.Status == "pending"
	switch b.kind {
	case kindPending:
		r.obj.Status = "pending"
		p.pending += r.units
	case kindPendingThen:
		r.obj.Status = "pending"
		p.pending += r.units
		r.settleAt, r.settle = s.nowLocked().Add(b.after), b.then
	case kindDecline:
		if wasPending {
			p.pending -= r.units
		}
		r.obj.Status = "canceled"
		r.obj.CancellationDetails = b.cancellation(true)
		if r.obj.ReceiptRegistration != "" {
			r.obj.ReceiptRegistration = "canceled"
		}
	default:
		if wasPending {
			p.pending -= r.units
		}
		r.obj.Status = "succeeded"
		if r.obj.ReceiptRegistration != "" {
			r.obj.ReceiptRegistration = "succeeded"
		}
		p.refunded += r.units
		a := formatAmount(p.refunded, p.obj.Amount.Currency)
		p.obj.RefundedAmount = &a
		p.obj.Refundable = p.refunded < p.units
		s.notifyLocked("refund.succeeded", r.object())
	}
}

// ---- HTTP ----

// answer is what a handler decided: a status and body, whether to store it under the
// idempotence key, and whether to drop the connection instead of answering.
type answer struct {
	status int
	body   []byte
	store  bool
	drop   bool
	// storeBody, when set, is stored (with 200) instead of body: the object made by a request
	// whose answer was a transport fault.
	storeBody []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	a := s.handleLocked(r, body)
	out := s.outboxLocked()
	s.mu.Unlock()
	s.deliver(out)
	if a.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *Server) handleLocked(r *http.Request, body []byte) answer {
	s.tickLocked()
	path := strings.TrimSuffix(r.URL.Path, "/")
	route, id := route(r.Method, path)
	s.count(route)
	if !s.authorized(r) {
		s.requests.Unauthorized++
		return s.errorAnswer(http.StatusUnauthorized, "invalid_credentials", "",
			"Login fails: wrong shop ID or secret key in the Authorization header (HTTP Basic)")
	}
	if route == "" {
		return s.errorAnswer(http.StatusNotFound, "not_found", "", "Unknown API method: "+r.Method+" "+path)
	}
	if r.Method == http.MethodGet && len(s.getFailures) > 0 {
		status := s.getFailures[0]
		s.getFailures = s.getFailures[1:]
		return s.faultAnswer(status)
	}
	switch route {
	case "get-payment":
		p, ok := s.paymentsByID[id]
		if !ok {
			return s.errorAnswer(http.StatusNotFound, "not_found", "payment_id", "Payment not found")
		}
		return jsonAnswer(http.StatusOK, p.object())
	case "get-refund":
		rf, ok := s.refundsByID[id]
		if !ok {
			return s.errorAnswer(http.StatusNotFound, "not_found", "refund_id", "Refund not found")
		}
		return jsonAnswer(http.StatusOK, rf.object())
	case "list-payments":
		return s.listPaymentsLocked(r)
	case "list-refunds":
		return s.listRefundsLocked(r)
	}
	// POST: content type, then the idempotence key, then the request.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return s.errorAnswer(http.StatusUnsupportedMediaType, "", "", "Content-Type must be application/json")
	}
	key := r.Header.Get("Idempotence-Key")
	if e := checkIdempotenceKey(key); e != nil {
		return s.badAnswer(e)
	}
	var canon any
	if err := json.Unmarshal(body, &canon); err != nil {
		return s.badAnswer(bad("", "The request body is not valid JSON: %v", err))
	}
	canonical, _ := json.Marshal(canon) // maps are marshaled with sorted keys
	request := append([]byte(r.Method+" "+path+"\n"), canonical...)
	now := s.nowLocked()
	if e, ok := s.keys[key]; ok && now.Sub(e.at) < IdempotenceWindow {
		if !bytes.Equal(e.request, request) {
			return s.badAnswer(bad("Idempotence-Key", "Idempotence key duplicated"))
		}
		return answer{status: e.status, body: e.body}
	}
	delete(s.keys, key)
	var a answer
	if route == "create-payment" {
		a = s.createPaymentLocked(key, body)
	} else {
		a = s.createRefundLocked(key, body)
	}
	if a.store {
		e := &keyEntry{request: request, status: a.status, body: a.body, at: now}
		if a.storeBody != nil {
			e.status, e.body = http.StatusOK, a.storeBody
		}
		s.keys[key] = e
	}
	return a
}

// route names the endpoint of a request, "" when the simulator has none.
func route(method, path string) (name, id string) {
	rest, ok := strings.CutPrefix(path, "/v3/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	switch {
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "payments":
		return "create-payment", ""
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "payments":
		return "list-payments", ""
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "payments":
		return "get-payment", parts[1]
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "refunds":
		return "create-refund", ""
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "refunds":
		return "list-refunds", ""
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "refunds":
		return "get-refund", parts[1]
	}
	return "", ""
}

func (s *Server) count(route string) {
	switch route {
	case "create-payment":
		s.requests.CreatePayment++
	case "get-payment":
		s.requests.GetPayment++
	case "list-payments":
		s.requests.ListPayments++
	case "create-refund":
		s.requests.CreateRefund++
	case "get-refund":
		s.requests.GetRefund++
	case "list-refunds":
		s.requests.ListRefunds++
	}
}

// authorized checks HTTP Basic shop ID : secret key in constant time.
func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.shopID))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.secretKey))
	return u&p == 1
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return answer{status: status, body: b}
}

func (s *Server) errorAnswer(status int, code, parameter, description string) answer {
	s.errSeq++ // errors have their own count, so object ids do not depend on refused requests
	e := ErrorBody{Type: "error", ID: fmt.Sprintf("%08x-e000-4000-8000-%012x", 0x2f000000+s.errSeq, s.errSeq),
		Code: code, Description: description, Parameter: parameter}
	return jsonAnswer(status, e)
}

func (s *Server) badAnswer(b *badRequest) answer {
	return s.errorAnswer(http.StatusBadRequest, "invalid_request", b.parameter, b.description)
}

// faultAnswer is a 500 internal_server_error or a 429 too_many_requests.
func (s *Server) faultAnswer(status int) answer {
	if status == http.StatusTooManyRequests {
		a := s.errorAnswer(status, "too_many_requests", "", "Too many requests. Try again later")
		return withRetryAfter(a, 1800)
	}
	a := s.errorAnswer(status, "internal_server_error", "", "Internal server error. The result of the request is unknown; repeat it with the same Idempotence-Key")
	return withRetryAfter(a, 1800)
}

func withRetryAfter(a answer, ms int) answer {
	var e ErrorBody
	_ = json.Unmarshal(a.body, &e)
	e.RetryAfter = ms
	return jsonAnswer(a.status, e)
}

// popLocked takes the next scripted behaviour for a payment made with methodID.
func (s *Server) popLocked(methodID string) (Behaviour, bool) {
	if q := s.byMethod[methodID]; methodID != "" && len(q) > 0 {
		s.byMethod[methodID] = q[1:]
		return q[0], true
	}
	if len(s.all) > 0 {
		b := s.all[0]
		s.all = s.all[1:]
		return b, true
	}
	return Behaviour{}, false
}

func (s *Server) createPaymentLocked(key string, body []byte) answer {
	var req struct {
		Amount            json.RawMessage `json:"amount"`
		Description       *string         `json:"description"`
		Receipt           json.RawMessage `json:"receipt"`
		PaymentMethodID   *string         `json:"payment_method_id"`
		PaymentMethodData json.RawMessage `json:"payment_method_data"`
		PaymentToken      *string         `json:"payment_token"`
		Confirmation      *struct {
			Type      string `json:"type"`
			ReturnURL string `json:"return_url"`
		} `json:"confirmation"`
		SavePaymentMethod bool            `json:"save_payment_method"`
		Capture           bool            `json:"capture"`
		Metadata          json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return s.badAnswer(bad("", "The request body does not match the CreatePaymentRequest schema: %v", err))
	}
	units, currency, e := parseAmount("amount", req.Amount, "")
	if e != nil {
		return s.badAnswer(e)
	}
	if currency != "RUB" {
		return s.badAnswer(bad("amount.currency", "The shop accepts RUB only (the simulated account's currency)"))
	}
	var description string
	if req.Description != nil {
		description = *req.Description
		if e := checkDescription("description", description, maxDescription); e != nil {
			return s.badAnswer(e)
		}
	}
	metadata, e := parseMetadata(req.Metadata)
	if e != nil {
		return s.badAnswer(e)
	}
	if req.PaymentToken != nil || len(req.PaymentMethodData) > 0 {
		return s.badAnswer(bad("payment_method_data", "The simulator does not accept payment_method_data or payment_token"))
	}
	var methodID string
	if req.PaymentMethodID != nil {
		methodID = *req.PaymentMethodID
		if methodID == "" {
			return s.badAnswer(bad("payment_method_id", "payment_method_id is empty"))
		}
		if req.Confirmation != nil {
			return s.badAnswer(bad("confirmation", "An autopayment with payment_method_id takes no confirmation in the simulator"))
		}
		if req.SavePaymentMethod {
			return s.badAnswer(bad("save_payment_method", "save_payment_method with payment_method_id: the method is already saved"))
		}
	} else {
		if req.Confirmation == nil {
			return s.badAnswer(bad("confirmation", "confirmation is required for a payment without payment_method_id"))
		}
		if req.Confirmation.Type != "redirect" {
			return s.badAnswer(bad("confirmation.type", "The simulator supports confirmation type redirect only, not %q", req.Confirmation.Type))
		}
		if e := checkReturnURL(req.Confirmation.ReturnURL); e != nil {
			return s.badAnswer(e)
		}
	}
	var receipt *Receipt
	switch {
	case len(req.Receipt) > 0 && string(req.Receipt) != "null":
		if receipt, e = parseReceipt(req.Receipt, units, currency); e != nil {
			return s.badAnswer(e)
		}
	case s.receiptRequired:
		return s.badAnswer(bad("receipt", "Receipt is required: the shop sends 54-FZ receipts through YooKassa"))
	}

	b, scripted := s.popLocked(methodID)
	switch b.kind {
	case kindInternalError:
		return s.faultAnswer(http.StatusInternalServerError)
	case kindTooManyRequests:
		return s.faultAnswer(http.StatusTooManyRequests)
	}
	now := s.nowLocked()
	p := &payment{
		created: now, key: key, receipt: receipt, units: units,
		capture: req.Capture, save: req.SavePaymentMethod, methodID: methodID,
		obj: Payment{
			ID: s.newID("000f"), Status: "pending", Amount: formatAmount(units, currency),
			Description: description, Recipient: Recipient{AccountID: s.shopID, GatewayID: "1"},
			CreatedAt: stamp(now), Test: true, Metadata: metadata,
		},
	}
	p.seq = s.seq
	if receipt != nil {
		p.obj.ReceiptRegistration = "pending"
	}
	if methodID != "" {
		p.obj.PaymentMethod = s.newMethod(methodID, true)
	} else {
		p.obj.Confirmation = &Confirmation{Type: "redirect", ReturnURL: req.Confirmation.ReturnURL,
			ConfirmationURL: s.srv.URL + "/checkout/" + p.obj.ID}
		if !scripted {
			b = Pending()
		}
	}
	s.payments = append(s.payments, p)
	s.paymentsByID[p.obj.ID] = p
	state := b
	if b.kind == kindTimeoutAfterSuccess || b.kind == kindInternalErrorAfterSuccess {
		// The payment is made as usual, only the answer is lost: an autopayment succeeds, a
		// checkout payment waits for the customer.
		state = Success()
		if methodID == "" {
			state = Pending()
		}
	}
	s.applyPaymentLocked(p, state)
	a := jsonAnswer(http.StatusOK, p.object())
	a.store = true
	switch b.kind {
	case kindTimeoutAfterSuccess:
		a.drop = true
	case kindInternalErrorAfterSuccess:
		return s.internalErrorStoring(a.body)
	}
	return a
}

// internalErrorStoring answers 500 while storing the created object under the key, so a
// retry under the key gets the object.
func (s *Server) internalErrorStoring(object []byte) answer {
	a := s.faultAnswer(http.StatusInternalServerError)
	a.store = true
	a.storeBody = object
	return a
}

func (s *Server) createRefundLocked(key string, body []byte) answer {
	var req struct {
		PaymentID   string          `json:"payment_id"`
		Amount      json.RawMessage `json:"amount"`
		Description *string         `json:"description"`
		Receipt     json.RawMessage `json:"receipt"`
		Metadata    json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return s.badAnswer(bad("", "The request body does not match the RefundRequest schema: %v", err))
	}
	if req.PaymentID == "" {
		return s.badAnswer(bad("payment_id", "payment_id is required"))
	}
	p, ok := s.paymentsByID[req.PaymentID]
	if !ok {
		return s.badAnswer(bad("payment_id", "Payment %s not found", req.PaymentID))
	}
	units, currency, e := parseAmount("amount", req.Amount, p.obj.Amount.Currency)
	if e != nil {
		return s.badAnswer(e)
	}
	if p.obj.Status != "succeeded" {
		return s.badAnswer(bad("payment_id", "Payment %s is %s: only a succeeded payment can be refunded", p.obj.ID, p.obj.Status))
	}
	if remaining := p.units - p.refunded - p.pending; units > remaining {
		return s.badAnswer(bad("amount", "The refund amount %s is more than the payment's remaining amount %s",
			formatAmount(units, currency).Value, formatAmount(remaining, currency).Value))
	}
	var description string
	if req.Description != nil {
		description = *req.Description
		if e := checkDescription("description", description, maxRefundDescription); e != nil {
			return s.badAnswer(e)
		}
	}
	metadata, e := parseMetadata(req.Metadata)
	if e != nil {
		return s.badAnswer(e)
	}
	var receipt *Receipt
	switch {
	case len(req.Receipt) > 0 && string(req.Receipt) != "null":
		if receipt, e = parseReceipt(req.Receipt, units, currency); e != nil {
			return s.badAnswer(e)
		}
	case s.receiptRequired:
		return s.badAnswer(bad("receipt", "Receipt is required: the shop sends 54-FZ receipts through YooKassa"))
	}
	b := Success()
	if len(s.refundScript) > 0 {
		b, s.refundScript = s.refundScript[0], s.refundScript[1:]
	}
	switch b.kind {
	case kindInternalError:
		return s.faultAnswer(http.StatusInternalServerError)
	case kindTooManyRequests:
		return s.faultAnswer(http.StatusTooManyRequests)
	}
	now := s.nowLocked()
	rf := &refund{
		created: now, key: key, receipt: receipt, units: units,
		// Status stays empty until applyRefundLocked sets it: "pending" there means an amount held.
		obj: Refund{ID: s.newID("0015"), PaymentID: p.obj.ID, CreatedAt: stamp(now),
			Amount: formatAmount(units, currency), Description: description, Metadata: metadata},
	}
	rf.seq = s.seq
	if receipt != nil {
		rf.obj.ReceiptRegistration = "pending"
	}
	s.refunds = append(s.refunds, rf)
	s.refundsByID[rf.obj.ID] = rf
	s.applyRefundLocked(rf, b)
	a := jsonAnswer(http.StatusOK, rf.object())
	a.store = true
	switch b.kind {
	case kindTimeoutAfterSuccess:
		a.drop = true
	case kindInternalErrorAfterSuccess:
		return s.internalErrorStoring(a.body)
	}
	return a
}

// ---- lists ----

// timeRange is the four documented bounds of a date-time filter (created_at, captured_at).
type timeRange struct {
	gte, gt, lte, lt time.Time
}

func (r timeRange) set() bool {
	return !r.gte.IsZero() || !r.gt.IsZero() || !r.lte.IsZero() || !r.lt.IsZero()
}

// has reports whether t is within the range; a zero t (no such instant) is only within an
// unset range.
func (r timeRange) has(t time.Time) bool {
	if t.IsZero() {
		return !r.set()
	}
	return (r.gte.IsZero() || !t.Before(r.gte)) && (r.gt.IsZero() || t.After(r.gt)) &&
		(r.lte.IsZero() || !t.After(r.lte)) && (r.lt.IsZero() || t.Before(r.lt))
}

// listQuery is a parsed list request.
type listQuery struct {
	created, captured timeRange
	status            string
	method            string // payment_method (payments)
	paymentID         string // payment_id (refunds)
	limit             int
	after             string // the id after which the page starts, from the cursor
}

// The query parameters each list takes. Any other is refused: the simulator does not let an
// adapter rely on a filter the API does not document for that list (metadata, for one, is
// searchable only on payouts).
var (
	paymentListParams = set("created_at.gte", "created_at.gt", "created_at.lte", "created_at.lt",
		"captured_at.gte", "captured_at.gt", "captured_at.lte", "captured_at.lt",
		"payment_method", "status", "limit", "cursor")
	refundListParams = set("created_at.gte", "created_at.gt", "created_at.lte", "created_at.lt",
		"payment_id", "status", "limit", "cursor")
)

func parseListQuery(r *http.Request, params, statuses map[string]bool) (listQuery, *badRequest) {
	q := listQuery{limit: defaultListLimit}
	v := r.URL.Query()
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !params[name] {
			return q, bad(name, "%s is not a parameter of this list", name)
		}
	}
	for name, dst := range map[string]*time.Time{
		"created_at.gte": &q.created.gte, "created_at.gt": &q.created.gt,
		"created_at.lte": &q.created.lte, "created_at.lt": &q.created.lt,
		"captured_at.gte": &q.captured.gte, "captured_at.gt": &q.captured.gt,
		"captured_at.lte": &q.captured.lte, "captured_at.lt": &q.captured.lt,
	} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, bad(name, "%s %q is not an ISO 8601 date-time", name, s)
			}
			*dst = t
		}
	}
	if s := v.Get("status"); s != "" {
		if !statuses[s] {
			return q, bad("status", "status %q is not a status", s)
		}
		q.status = s
	}
	q.method = v.Get("payment_method")
	q.paymentID = v.Get("payment_id")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return q, bad("limit", "limit %q must be an integer from 1 to %d", s, maxListLimit)
		}
		q.limit = n
	}
	if c := v.Get("cursor"); c != "" {
		id, ok := decodeCursor(c)
		if !ok {
			return q, bad("cursor", "cursor %q is not a cursor this API returned", c)
		}
		q.after = id
	}
	return q, nil
}

// The cursor is opaque to clients: the id of the last object of the previous page, encoded.
func encodeCursor(id string) string { return "c" + strings.ReplaceAll(id, "-", "") }

func decodeCursor(c string) (string, bool) {
	h, ok := strings.CutPrefix(c, "c")
	if !ok || len(h) != 32 {
		return "", false
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}

// listed is what a list needs of an object.
type listed struct {
	id      string
	seq     int
	created time.Time
	match   bool
}

// page returns the positions (in objs) of the newest-first page after q.after, and the
// cursor of the next page. ok is false when the cursor names no object of the list.
func page(q listQuery, objs []listed) (idx []int, next string, ok bool) {
	order := make([]int, len(objs))
	for i := range order {
		order[i] = i
	}
	// Newest first: by created_at descending, the later creation first among equals.
	sort.SliceStable(order, func(a, b int) bool {
		x, y := objs[order[a]], objs[order[b]]
		if !x.created.Equal(y.created) {
			return x.created.After(y.created)
		}
		return x.seq > y.seq
	})
	start := 0
	if q.after != "" {
		found := false
		for k, i := range order {
			if objs[i].id == q.after {
				start, found = k+1, true
				break
			}
		}
		if !found {
			return nil, "", false
		}
	}
	for _, i := range order[start:] {
		if !objs[i].match {
			continue
		}
		if len(idx) == q.limit {
			return idx, encodeCursor(objs[idx[len(idx)-1]].id), true
		}
		idx = append(idx, i)
	}
	return idx, "", true
}

var paymentStatuses = set("pending", "waiting_for_capture", "succeeded", "canceled")
var refundStatuses = set("pending", "succeeded", "canceled")

func (s *Server) listPaymentsLocked(r *http.Request) answer {
	q, e := parseListQuery(r, paymentListParams, paymentStatuses)
	if e != nil {
		return s.badAnswer(e)
	}
	objs := make([]listed, len(s.payments))
	for i, p := range s.payments {
		method := ""
		if p.obj.PaymentMethod != nil {
			method = p.obj.PaymentMethod.Type
		}
		objs[i] = listed{id: p.obj.ID, seq: p.seq, created: p.created,
			match: q.created.has(p.created) && q.captured.has(p.captured) &&
				(q.status == "" || p.obj.Status == q.status) && (q.method == "" || method == q.method)}
	}
	idx, next, ok := page(q, objs)
	if !ok {
		return s.badAnswer(bad("cursor", "cursor is not a cursor of this list"))
	}
	list := List[Payment]{Type: "list", Items: []Payment{}, NextCursor: next}
	for _, i := range idx {
		list.Items = append(list.Items, s.payments[i].object())
	}
	return jsonAnswer(http.StatusOK, list)
}

func (s *Server) listRefundsLocked(r *http.Request) answer {
	q, e := parseListQuery(r, refundListParams, refundStatuses)
	if e != nil {
		return s.badAnswer(e)
	}
	objs := make([]listed, len(s.refunds))
	for i, rf := range s.refunds {
		objs[i] = listed{id: rf.obj.ID, seq: rf.seq, created: rf.created,
			match: q.created.has(rf.created) && (q.status == "" || rf.obj.Status == q.status) &&
				(q.paymentID == "" || rf.obj.PaymentID == q.paymentID)}
	}
	idx, next, ok := page(q, objs)
	if !ok {
		return s.badAnswer(bad("cursor", "cursor is not a cursor of this list"))
	}
	list := List[Refund]{Type: "list", Items: []Refund{}, NextCursor: next}
	for _, i := range idx {
		list.Items = append(list.Items, s.refunds[i].object())
	}
	return jsonAnswer(http.StatusOK, list)
}
