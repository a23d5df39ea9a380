package yookassa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/smm-gpt/billing/payment"
)

// Gateway is a payment.Gateway and a payment.CheckoutGateway over the YooKassa API v3.
// Make it with New; it is safe for concurrent use.
type Gateway struct {
	// cfg is the checked config without its secret key, which only secret holds: fmt
	// reaches unexported fields by reflection and calls none of their String or Format
	// methods, so a Gateway printed as a value would show a Secret held in a field; a func
	// prints as an address.
	cfg    Config
	secret func() Secret
}

// Gateway implements the payment contracts.
var (
	_ payment.Gateway         = (*Gateway)(nil)
	_ payment.CheckoutGateway = (*Gateway)(nil)
)

// ErrListingLimit means a Lookup or LookupRefund listing read Config.MaxListPages pages
// without reaching the end of its window. It is an error (still unknown), never
// ErrNotFound: a person should look, or raise the limit.
var ErrListingLimit = errors.New("yookassa: listing reached its page limit before the end of its window")

// ErrDuplicateKey means a listing found more than one YooKassa payment (or refund) under
// one idempotency key: possibly a double charge, for a person to resolve. It is an error;
// the attempt stays unknown.
var ErrDuplicateKey = errors.New("yookassa: more than one object under one idempotency key")

// New checks cfg, fills its defaults and returns the gateway, or a *ConfigError naming
// every bad field.
func New(cfg Config) (*Gateway, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	secret := c.SecretKey
	c.SecretKey = Secret{}
	return &Gateway{cfg: c, secret: func() Secret { return secret }}, nil
}

// String renders the gateway without its secret key.
func (g *Gateway) String() string { return "yookassa.Gateway{" + g.cfg.String() + "}" }

// GoString renders the gateway for %#v without its secret key.
func (g *Gateway) GoString() string { return g.String() }

// LogValue renders the gateway for log/slog without its secret key.
func (g *Gateway) LogValue() slog.Value { return g.cfg.LogValue() }

// Charge charges the saved method req.PaymentMethod: POST /payments with
// payment_method_id, capture true, the amount, the description (cut to 128 characters),
// the metadata (which gets the key under payment.MetadataIdempotencyKey) and the receipt,
// under the Idempotence-Key req.IdempotencyKey. A canceled payment is a soft or hard
// decline (see the package doc); an error means the outcome is unknown, or a request this
// package refused before sending (*payment.ValidationError).
func (g *Gateway) Charge(ctx context.Context, req payment.ChargeParams) (payment.ChargeResult, error) {
	if err := req.Validate(); err != nil {
		return payment.ChargeResult{}, err
	}
	body, err := g.paymentBody(req.IdempotencyKey, req.Amount, req.Currency, req.Description, req.Receipt, req.Metadata)
	if err != nil {
		return payment.ChargeResult{}, err
	}
	body.PaymentMethodID = req.PaymentMethod
	var p paymentObject
	if err := g.call(ctx, "POST", "/payments", nil, req.IdempotencyKey, body, &p); err != nil {
		return payment.ChargeResult{}, err
	}
	res, err := g.chargeResult(ctx, p)
	if err != nil {
		return payment.ChargeResult{}, err
	}
	res.PaymentMethod = "" // a charge of a saved method saves nothing new
	return res, nil
}

// StartCheckout creates a first payment the customer confirms on YooKassa's page:
// POST /payments with confirmation {type: redirect, return_url}, save_payment_method true,
// capture true and no payment method, under req.IdempotencyKey. It returns the payment
// (usually pending) and the confirmation_url to send the customer to. A pending answer
// without a confirmation_url is an error (the payment exists; Lookup settles it).
func (g *Gateway) StartCheckout(ctx context.Context, req payment.CheckoutParams) (payment.CheckoutResult, error) {
	if err := req.Validate(); err != nil {
		return payment.CheckoutResult{}, err
	}
	body, err := g.paymentBody(req.IdempotencyKey, req.Amount, req.Currency, req.Description, req.Receipt, req.Metadata)
	if err != nil {
		return payment.CheckoutResult{}, err
	}
	body.Confirmation = &confirmationObject{Type: "redirect", ReturnURL: req.ReturnURL}
	body.SavePaymentMethod = true
	var p paymentObject
	if err := g.call(ctx, "POST", "/payments", nil, req.IdempotencyKey, body, &p); err != nil {
		return payment.CheckoutResult{}, err
	}
	res, err := g.chargeResult(ctx, p)
	if err != nil {
		return payment.CheckoutResult{}, err
	}
	out := payment.CheckoutResult{ChargeResult: res}
	if res.Outcome == payment.OutcomePending && out.ConfirmationURL == "" {
		return payment.CheckoutResult{}, fmt.Errorf("yookassa: POST /payments: pending payment %s without a confirmation_url", p.ID)
	}
	return out, nil
}

// paymentBody builds the common part of POST /payments.
func (g *Gateway) paymentBody(key string, minor int64, currency, description string, r payment.Receipt, meta map[string]string) (createPayment, error) {
	amt, err := toAmount("Currency", minor, currency)
	if err != nil {
		return createPayment{}, err
	}
	receipt, err := toReceipt("Receipt", r)
	if err != nil {
		return createPayment{}, err
	}
	md, err := withKey(meta, key)
	if err != nil {
		return createPayment{}, err
	}
	return createPayment{
		Amount:      amt,
		Description: truncate(description, maxDescription),
		Receipt:     receipt,
		Capture:     true,
		Metadata:    md,
	}, nil
}

// Refund returns (part of) a succeeded payment: POST /refunds with payment_id, amount,
// description (cut to 250 characters), the return-of-income receipt and the metadata
// (with the key), under req.IdempotencyKey. An error means the outcome is unknown, or a
// request refused before sending.
func (g *Gateway) Refund(ctx context.Context, req payment.RefundParams) (payment.RefundResult, error) {
	if err := req.Validate(); err != nil {
		return payment.RefundResult{}, err
	}
	amt, err := toAmount("Currency", req.Amount, req.Currency)
	if err != nil {
		return payment.RefundResult{}, err
	}
	receipt, err := toReceipt("Receipt", req.Receipt)
	if err != nil {
		return payment.RefundResult{}, err
	}
	md, err := withKey(req.Metadata, req.IdempotencyKey)
	if err != nil {
		return payment.RefundResult{}, err
	}
	body := createRefund{
		PaymentID:   req.ProviderPaymentID,
		Amount:      amt,
		Description: truncate(req.Description, maxRefundDescription),
		Receipt:     receipt,
		Metadata:    md,
	}
	var r refundObject
	if err := g.call(ctx, "POST", "/refunds", nil, req.IdempotencyKey, body, &r); err != nil {
		return payment.RefundResult{}, err
	}
	return g.refundResult(ctx, r)
}

// Lookup answers what happened to the charge made under req.IdempotencyKey. It never
// creates a payment: it only reads (GET), so a charge that never reached YooKassa is not
// made now, without the engine's consent check.
//
//  1. With req.ProviderPaymentID: GET /payments/{id}. If that payment carries the key in
//     its metadata, it is the answer. If it carries another key (a webhook may name any
//     payment) or does not exist, the id proves nothing and step 2 runs.
//  2. Otherwise list GET /payments?created_at.gte=CreatedAt−LookupMargin&
//     created_at.lte=now+LookupMargin&limit=100, following next_cursor to the end, and
//     match metadata[payment.MetadataIdempotencyKey]. payment.ErrNotFound only after the
//     whole window was read without a match; a failure mid-way is an error, as is
//     reaching MaxListPages (ErrListingLimit) or finding two payments (ErrDuplicateKey).
func (g *Gateway) Lookup(ctx context.Context, req payment.LookupParams) (payment.ChargeResult, error) {
	if req.IdempotencyKey == "" {
		return payment.ChargeResult{}, &payment.ValidationError{Field: "IdempotencyKey", Problem: "empty"}
	}
	if req.ProviderPaymentID != "" {
		var p paymentObject
		err := g.call(ctx, "GET", "/payments/"+url.PathEscape(req.ProviderPaymentID), nil, "", nil, &p)
		switch {
		case err == nil && p.Metadata[payment.MetadataIdempotencyKey] == req.IdempotencyKey:
			return g.chargeResult(ctx, p)
		case err == nil:
			g.cfg.Logger.WarnContext(ctx, "yookassa: payment named in a lookup is not under its key; searching by key",
				"payment_id", p.ID)
		case errors.Is(err, errNotFoundAnswer):
			g.cfg.Logger.WarnContext(ctx, "yookassa: payment named in a lookup does not exist; searching by key",
				"payment_id", req.ProviderPaymentID)
		default:
			return payment.ChargeResult{}, err
		}
	}
	found, err := listByKey(ctx, g, "/payments", nil, req.IdempotencyKey, req.CreatedAt,
		func(page *paymentList) ([]paymentObject, string) { return page.Items, page.NextCursor },
		func(p paymentObject) map[string]string { return p.Metadata },
		func(p paymentObject) string { return p.ID })
	if err != nil {
		return payment.ChargeResult{}, err
	}
	return g.chargeResult(ctx, found)
}

// LookupRefund answers what happened to the refund made under req.IdempotencyKey, by the
// same design as Lookup: GET /refunds/{ProviderRefundID} checked against the key (and the
// payment), else GET /refunds?payment_id=…&created_at.gte=…&created_at.lte=… matched by
// metadata. It never creates a refund.
func (g *Gateway) LookupRefund(ctx context.Context, req payment.RefundLookupParams) (payment.RefundResult, error) {
	if req.IdempotencyKey == "" {
		return payment.RefundResult{}, &payment.ValidationError{Field: "IdempotencyKey", Problem: "empty"}
	}
	if req.ProviderPaymentID == "" {
		return payment.RefundResult{}, &payment.ValidationError{Field: "ProviderPaymentID", Problem: "empty"}
	}
	if req.ProviderRefundID != "" {
		var r refundObject
		err := g.call(ctx, "GET", "/refunds/"+url.PathEscape(req.ProviderRefundID), nil, "", nil, &r)
		switch {
		case err == nil && r.Metadata[payment.MetadataIdempotencyKey] == req.IdempotencyKey && r.PaymentID == req.ProviderPaymentID:
			return g.refundResult(ctx, r)
		case err == nil:
			g.cfg.Logger.WarnContext(ctx, "yookassa: refund named in a lookup is not under its key; searching by key", "refund_id", r.ID)
		case errors.Is(err, errNotFoundAnswer):
			g.cfg.Logger.WarnContext(ctx, "yookassa: refund named in a lookup does not exist; searching by key", "refund_id", req.ProviderRefundID)
		default:
			return payment.RefundResult{}, err
		}
	}
	found, err := listByKey(ctx, g, "/refunds", url.Values{"payment_id": {req.ProviderPaymentID}}, req.IdempotencyKey, req.CreatedAt,
		func(page *refundList) ([]refundObject, string) { return page.Items, page.NextCursor },
		func(r refundObject) map[string]string { return r.Metadata },
		func(r refundObject) string { return r.ID })
	if err != nil {
		return payment.RefundResult{}, err
	}
	if found.PaymentID != req.ProviderPaymentID {
		return payment.RefundResult{}, fmt.Errorf("yookassa: refund %s under key is of payment %s, not %s", found.ID, found.PaymentID, req.ProviderPaymentID)
	}
	return g.refundResult(ctx, found)
}

// listTimeFormat is the ISO 8601 form of a listing filter, in UTC with milliseconds.
const listTimeFormat = "2006-01-02T15:04:05.000Z"

// listByKey reads a listing (path, with extra filters) over the window from createdAt less
// the margin to now plus the margin, and returns the one object whose metadata carries key.
// It answers payment.ErrNotFound only after reading the whole window.
func listByKey[P any, O any](ctx context.Context, g *Gateway, path string, extra url.Values, key string, createdAt time.Time,
	items func(*P) ([]O, string), meta func(O) map[string]string, id func(O) string) (O, error) {
	var zero O
	if createdAt.IsZero() {
		return zero, &payment.ValidationError{Field: "CreatedAt", Problem: "zero: a lookup by key needs the instant to search from"}
	}
	// The window ends now (or at createdAt, if the engine's clock runs ahead of this one),
	// plus the margin.
	from := createdAt.Add(-g.cfg.LookupMargin).UTC()
	to := later(g.cfg.Clock.Now(), createdAt).Add(g.cfg.LookupMargin).UTC()
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("created_at.gte", from.Format(listTimeFormat))
	q.Set("created_at.lte", to.Format(listTimeFormat))
	q.Set("limit", "100")
	var matches []O
	for pages := 0; ; pages++ {
		if pages == g.cfg.MaxListPages {
			if len(matches) == 1 {
				g.cfg.Logger.WarnContext(ctx, "yookassa: listing hit its page limit after a match; duplicates not ruled out", "path", path, "id", id(matches[0]))
				return matches[0], nil
			}
			return zero, fmt.Errorf("%w: GET %s, %d pages from %s", ErrListingLimit, path, pages, q.Get("created_at.gte"))
		}
		var page P
		if err := g.call(ctx, "GET", path, q, "", nil, &page); err != nil {
			return zero, fmt.Errorf("%w (listing interrupted after %d pages: still unknown)", err, pages)
		}
		list, next := items(&page)
		for _, o := range list {
			if meta(o)[payment.MetadataIdempotencyKey] == key {
				matches = append(matches, o)
			}
		}
		if next == "" {
			break
		}
		q.Set("cursor", next)
	}
	switch len(matches) {
	case 0:
		return zero, fmt.Errorf("yookassa: GET %s: nothing under the key from %s to %s: %w", path, q.Get("created_at.gte"), q.Get("created_at.lte"), payment.ErrNotFound)
	case 1:
		return matches[0], nil
	}
	ids := ""
	for i, m := range matches {
		if i > 0 {
			ids += ", "
		}
		ids += id(m)
	}
	return zero, fmt.Errorf("%w: GET %s: %d objects (%s)", ErrDuplicateKey, path, len(matches), ids)
}

// chargeResult is toChargeResult, warning of a cancellation reason the decline
// table does not know (it is a soft decline; the table should learn it).
func (g *Gateway) chargeResult(ctx context.Context, p paymentObject) (payment.ChargeResult, error) {
	res, err := toChargeResult(p)
	if err == nil && (res.Outcome == payment.OutcomeSoftDeclined || res.Outcome == payment.OutcomeHardDeclined) {
		if _, ok := PaymentDeclineOutcome(res.DeclineCode); !ok {
			g.cfg.Logger.WarnContext(ctx, "yookassa: undocumented cancellation reason taken as a soft decline",
				"payment_id", p.ID, "reason", res.DeclineCode)
		}
	}
	return res, err
}

// refundResult is toRefundResult, warning of an unknown cancellation reason.
func (g *Gateway) refundResult(ctx context.Context, r refundObject) (payment.RefundResult, error) {
	res, err := toRefundResult(r)
	if err == nil && (res.Outcome == payment.OutcomeSoftDeclined || res.Outcome == payment.OutcomeHardDeclined) {
		if _, ok := RefundDeclineOutcome(res.DeclineCode); !ok {
			g.cfg.Logger.WarnContext(ctx, "yookassa: undocumented refund cancellation reason taken as a soft decline",
				"refund_id", r.ID, "reason", res.DeclineCode)
		}
	}
	return res, err
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// toChargeResult maps a YooKassa payment to a ChargeResult: succeeded (with the saved method
// when payment_method.saved, for a checkout), pending (pending, waiting_for_capture) or a
// decline (canceled). An unknown status is an error.
func toChargeResult(p paymentObject) (payment.ChargeResult, error) {
	if p.ID == "" {
		return payment.ChargeResult{}, errors.New("yookassa: payment answer without an id")
	}
	minor, currency, err := fromAmount(p.Amount)
	if err != nil {
		return payment.ChargeResult{}, err
	}
	res := payment.ChargeResult{ProviderPaymentID: p.ID, Amount: minor, Currency: currency}
	switch p.Status {
	case "succeeded":
		res.Outcome = payment.OutcomeSucceeded
		if p.PaymentMethod != nil && p.PaymentMethod.Saved {
			res.PaymentMethod = p.PaymentMethod.ID
		}
	case "pending", "waiting_for_capture":
		// waiting_for_capture should not happen with capture true; it is money held, not
		// taken, so pending until YooKassa captures or cancels it.
		res.Outcome = payment.OutcomePending
		if p.Confirmation != nil {
			res.ConfirmationURL = p.Confirmation.ConfirmationURL // a checkout's page, for Lookup too
		}
	case "canceled":
		reason := ""
		if p.CancellationDetails != nil {
			reason = p.CancellationDetails.Reason
		}
		res.Outcome, _ = PaymentDeclineOutcome(reason)
		res.DeclineCode = reason
		res.DeclineMessage = declineMessage("payment", p.CancellationDetails)
	default:
		return payment.ChargeResult{}, fmt.Errorf("yookassa: payment %s has unknown status %s", p.ID, strconv.Quote(p.Status))
	}
	return res, nil
}

// toRefundResult maps a YooKassa refund to a RefundResult. An unknown status is an error.
func toRefundResult(r refundObject) (payment.RefundResult, error) {
	if r.ID == "" {
		return payment.RefundResult{}, errors.New("yookassa: refund answer without an id")
	}
	minor, currency, err := fromAmount(r.Amount)
	if err != nil {
		return payment.RefundResult{}, err
	}
	res := payment.RefundResult{ProviderRefundID: r.ID, ProviderPaymentID: r.PaymentID, Amount: minor, Currency: currency}
	switch r.Status {
	case "succeeded":
		res.Outcome = payment.OutcomeSucceeded
	case "pending":
		res.Outcome = payment.OutcomePending
	case "canceled":
		reason := ""
		if r.CancellationDetails != nil {
			reason = r.CancellationDetails.Reason
		}
		res.Outcome, _ = RefundDeclineOutcome(reason)
		res.DeclineCode = reason
		res.DeclineMessage = declineMessage("refund", r.CancellationDetails)
	default:
		return payment.RefundResult{}, fmt.Errorf("yookassa: refund %s has unknown status %s", r.ID, strconv.Quote(r.Status))
	}
	return res, nil
}
