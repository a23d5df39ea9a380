package subscription

import (
	"fmt"
	"strings"
	"time"

	"github.com/smm-gpt/billing/tariff"
)

// DefaultLocation is the IANA zone used for calendar reasoning (period ends, business
// days) when Subscription.Location is empty: Russian law applies (TERMS 6.3).
const DefaultLocation = "Europe/Moscow"

// ActorSystem is the Actor the transitions record for events the engine makes on its
// own: charge outcomes, renewals, used-up limits.
const ActorSystem = "system"

// maxTextLen bounds every identifier and token this package stores.
const maxTextLen = 255

// Subscription is one customer's subscription to one tariff. It is a value: transitions
// take one and return a new one, leaving their argument untouched, so the engine can
// compare before and after. Every field is storable as is.
type Subscription struct {
	// ID identifies the subscription. The engine makes it (a UUIDv7 in text form); this
	// package only requires it to be non-empty.
	ID string
	// CustomerID is the host application's opaque ID of the customer (TERMS 1.3, 2.2.1).
	// Never a name, e-mail or phone: the service does not take personal data (TERMS 5.1).
	CustomerID string
	// Status is where the subscription is in its life; see Status.
	Status Status
	// AutoRenew says whether the saved payment method is charged for a new period when
	// the current one ends (TERMS 3.5). New sets it: paying at checkout is consent to
	// recurring charges (TERMS 3.4). The customer turns it off with SetAutoRenew
	// (TERMS 3.6); it is false in every final status.
	AutoRenew bool
	// Location is the IANA zone name ("Europe/Moscow") the engine computes period ends
	// and business days in. Empty means DefaultLocation; use LocationName. This package
	// stores the name and does not load it: the engine validates it with
	// time.LoadLocation before calling New.
	Location string
	// PaymentMethod is the payment gateway's opaque token for the saved card or wallet,
	// empty when none is saved (or consent was withdrawn). Never card data (TERMS 5.1):
	// New and Activate refuse a token that looks like a card number (ErrCardData).
	PaymentMethod string
	// Checkout is what the customer was shown and agreed to at checkout: the price, the
	// period length and the volumes (TERMS 3.4). Period 1 is sold under exactly these
	// terms; renewals may run under later versions of the same tariff (TERMS 2.1.6).
	// Checkout.Code is the tariff's code.
	Checkout tariff.Terms
	// Current is the period paid last: the running one, or the one just over while a
	// renewal is pending. Nil while pending; never nil in the statuses active, exhausted,
	// past_due, suspended and refunded. Earlier periods are the engine's history.
	Current *Period
	// SuspendedFrom is the status Resume returns to; set only while suspended.
	SuspendedFrom Status
	// CreatedAt is when the subscription was created at checkout.
	CreatedAt time.Time
	// EndedAt is when the subscription reached a final status; zero before. Access may
	// have ended earlier (at the period end): see AccessEndsAt.
	EndedAt time.Time
}

// LocationName returns Location, or DefaultLocation when it is empty.
func (s Subscription) LocationName() string {
	if s.Location == "" {
		return DefaultLocation
	}
	return s.Location
}

// Period is one paid period of a subscription: the terms it was paid under, its bounds
// and the usage counted in it. Its Terms never change once it exists (TERMS 2.1.6); its
// End moves only forward and only by ExtendPeriod.
type Period struct {
	// Number counts the subscription's periods from 1 (the first paid one). Renewals
	// and their charges are keyed by it: at most one charge per (subscription, number).
	Number int
	// Terms are the terms this period was paid under: the tariff version in force at
	// its charge (TERMS 2.1.6, 3.2). Limits and options are read from here, never from
	// the tariff's current version.
	Terms tariff.Terms
	// Start and End bound the period, End excluded: access lasts while now < End.
	// The caller computes them (tariff period arithmetic in the subscription's
	// location); this package only checks Start < End.
	Start, End time.Time
	// GrantedAt is when access to this period was granted: the later of Start and the
	// instant the charge's success was recorded. The refund window (TERMS 3.7, 5
	// business days after access was granted) counts from here, so a late grant through
	// the operator's fault moves the window with it.
	GrantedAt time.Time
	// ExhaustedAt is when Exhaust recorded a hard limit used up; zero otherwise.
	ExhaustedAt time.Time
	// Usage holds the counters of each meter, keyed by meter name. A missing meter has
	// counted nothing; a nil map reads as empty. Functions here copy the map before
	// writing, so a Period value can be shared safely.
	Usage map[string]Usage
}

// Usage is the counters of one meter in one period.
type Usage struct {
	// Used is the volume consumed: Consume's quantities plus committed reservations.
	Used int64
	// Reserved is the volume held by open reservations. It counts against a hard limit
	// like Used does, and goes back when a reservation is committed, released or
	// expired.
	Reserved int64
}

// AdminAction says who did an operator action and why (TERMS 2.1.2, 2.1.4). Both are
// required: an operator action without them is refused, because the audit log must
// answer who and why.
type AdminAction struct {
	// Actor is the operator's ID in the host application, e.g. "admin:42".
	Actor string
	// Reason is the operator's explanation, e.g. "maintenance on 2026-03-01, 6 hours".
	Reason string
}

// AuditEntry records one transition for the audit log: who did what, when and why. Every
// transition returns one; the engine stores it in the same transaction as the new state.
type AuditEntry struct {
	// SubscriptionID is the subscription the entry is about.
	SubscriptionID string
	// Action is the event.
	Action Action
	// From and To are the statuses before and after; equal for events that change no
	// status (ExtendPeriod, SetAutoRenew, WithdrawConsent). From is "" for ActionCreate.
	From, To Status
	// Actor is who caused it: ActorSystem, the operator's ID, or the customer's.
	Actor string
	// Reason is why: the operator's words, or a fixed phrase for automatic events.
	Reason string
	// Detail holds what else changed, in words: the new period, the new end, the meters
	// used up. Empty when nothing else did.
	Detail string
	// At is the instant of the transition (the now it was given).
	At time.Time
}

// NewParams are the inputs of New, taken at checkout.
type NewParams struct {
	// ID is the new subscription's ID, made by the engine. Required.
	ID string
	// CustomerID is the host's opaque customer ID. Required.
	CustomerID string
	// Checkout is the terms shown at checkout (TERMS 3.4). Required: a code and valid
	// limits (each meter named once, each quantity at least 1).
	Checkout tariff.Terms
	// PaymentMethod is the gateway token of the saved payment method, if already known.
	// Optional: the first charge may save it, and Activate records it then.
	PaymentMethod string
	// Location is the IANA zone name; empty means DefaultLocation.
	Location string
}

// New returns a pending subscription created at now: no period and no access until
// Activate records its first successful charge (TERMS 3.3). AutoRenew starts on, since
// paying at checkout is consent to recurring charges (TERMS 3.4).
func New(p NewParams, now time.Time) (Subscription, AuditEntry, error) {
	if err := firstError(
		checkNow(now),
		checkText("id", p.ID),
		checkText("customer_id", p.CustomerID),
		checkTerms("checkout", p.Checkout),
		checkPaymentMethod(p.PaymentMethod),
		checkLength("location", p.Location),
	); err != nil {
		return Subscription{}, AuditEntry{}, err
	}
	sub := Subscription{
		ID:            p.ID,
		CustomerID:    p.CustomerID,
		Status:        StatusPending,
		AutoRenew:     true,
		Location:      p.Location,
		PaymentMethod: p.PaymentMethod,
		Checkout:      p.Checkout,
		CreatedAt:     now,
	}
	return sub, record(Subscription{}, sub, ActionCreate, ActorSystem, "checkout",
		fmt.Sprintf("tariff %s v%d", p.Checkout.Code, p.Checkout.Version), now), nil
}

// newPeriod returns period number n under terms, granted at the later of start and now.
func newPeriod(n int, terms tariff.Terms, start, end, now time.Time) *Period {
	granted := start
	if now.After(start) {
		granted = now
	}
	return &Period{Number: n, Terms: terms, Start: start, End: end, GrantedAt: granted}
}

// record builds the audit entry of a transition from before to after.
func record(before, after Subscription, a Action, actor, reason, detail string, now time.Time) AuditEntry {
	return AuditEntry{
		SubscriptionID: after.ID,
		Action:         a,
		From:           before.Status,
		To:             after.Status,
		Actor:          actor,
		Reason:         reason,
		Detail:         detail,
		At:             now,
	}
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkNow(now time.Time) error {
	if now.IsZero() {
		return invalid("now", "zero time: pass the engine clock's instant")
	}
	return nil
}

// checkText requires a non-blank value of at most maxTextLen bytes.
func checkText(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid(field, "required")
	}
	return checkLength(field, v)
}

func checkLength(field, v string) error {
	if len(v) > maxTextLen {
		return invalid(field, fmt.Sprintf("longer than %d bytes", maxTextLen))
	}
	return nil
}

func (a AdminAction) check() error {
	return firstError(checkText("actor", a.Actor), checkText("reason", a.Reason))
}

// checkTerms checks what this package relies on: a tariff code and limits that name each
// meter once with a positive quantity. The rest of Terms is the tariff package's.
func checkTerms(field string, t tariff.Terms) error {
	if strings.TrimSpace(t.Code) == "" {
		return invalid(field+".code", "required")
	}
	seen := make(map[string]bool, len(t.Limits))
	for i, l := range t.Limits {
		f := fmt.Sprintf("%s.limits[%d]", field, i)
		switch {
		case l.Meter == "":
			return invalid(f+".meter", "required")
		case seen[l.Meter]:
			return invalid(f+".meter", fmt.Sprintf("meter %q has more than one limit", l.Meter))
		case l.Quantity < 1:
			return invalid(f+".quantity", "must be at least 1")
		}
		seen[l.Meter] = true
	}
	return nil
}

// checkPaymentMethod allows an empty token (none saved) and refuses a long one or one that
// looks like a card number (TERMS 5.1).
func checkPaymentMethod(token string) error {
	if err := checkLength("payment_method", token); err != nil {
		return err
	}
	if looksLikeCardNumber(token) {
		return &ValidationError{Field: "payment_method", Cause: ErrCardData,
			Problem: "looks like a card number: store the gateway's token, never card data"}
	}
	return nil
}

// looksLikeCardNumber reports whether s, without spaces and dashes, is 12 to 19 digits
// that pass the Luhn check, as every payment card number does.
func looksLikeCardNumber(s string) bool {
	digits := make([]int, 0, 19)
	for _, r := range s {
		switch {
		case r == ' ' || r == '-':
		case r >= '0' && r <= '9':
			digits = append(digits, int(r-'0'))
		default:
			return false
		}
		if len(digits) > 19 {
			return false
		}
	}
	if len(digits) < 12 {
		return false
	}
	sum := 0
	for i := range digits {
		d := digits[len(digits)-1-i]
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
