package console

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/ledger"
	"github.com/smm-gpt/billing/subscription"
)

// searchPageSize is the number of subscriptions on one page of the search.
const searchPageSize = 50

// subscriptionSearch finds subscriptions by subscription ID (straight to its page), customer
// ID or status, a keyset page at a time (Engine.SubscriptionList).
func (h *handler) subscriptionSearch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	status := r.URL.Query().Get("status")
	after := r.URL.Query().Get("after")
	if q != "" {
		if _, err := uuid.Parse(q); err == nil {
			if _, err := h.engine.SubscriptionGet(ctx, q); err == nil {
				h.redirect(w, r, "/subscriptions/"+q)
				return
			}
		}
	}
	data := map[string]any{"Q": q, "Status": status, "Statuses": statusOrder}
	if q != "" || status != "" || r.URL.Query().Has("all") {
		page, err := h.engine.SubscriptionList(ctx, billing.SubscriptionListParams{CustomerID: q,
			Status: subscription.Status(status), After: after, Limit: searchPageSize})
		if err != nil {
			if billing.KindOf(err) == billing.KindInvalidInput {
				data["Err"] = engineMessage(err)
				h.render(w, r, http.StatusUnprocessableEntity, operatorFrom(ctx), "subscriptions", data)
				return
			}
			h.fail(w, r, err)
			return
		}
		data["Page"] = page
		data["Searched"] = true
	}
	h.render(w, r, http.StatusOK, operatorFrom(ctx), "subscriptions", data)
}

// meterRow is one meter's usage in the current period.
type meterRow struct {
	Meter                 string
	Limit, Used, Reserved int64
	Unlimited             bool
}

// subscriptionPage shows a subscription: its periods and their terms, usage per meter,
// attempts, refunds, ledger lines, audit log, and the admin actions.
func (h *handler) subscriptionPage(w http.ResponseWriter, r *http.Request) {
	h.renderSubscription(w, r, http.StatusOK, "", "")
}

// renderSubscription renders the page; formErr is shown at the form of action.
func (h *handler) renderSubscription(w http.ResponseWriter, r *http.Request, status int, action, formErr string) {
	ctx := r.Context()
	id := r.PathValue("id")
	sub, err := h.engine.SubscriptionGet(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	periods, err := h.engine.PeriodList(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	attempts, err := h.engine.AttemptList(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	audit, err := h.engine.AuditLogList(ctx, billing.SubscriptionSubject(id))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Newest first: the operator looks for what just happened.
	sort.SliceStable(audit, func(i, j int) bool { return audit[i].At.After(audit[j].At) })
	// Refunds: those holding a period's money (PeriodList), and the open ones of this
	// subscription (the open queue is short by nature: each is paid within 10 days).
	var refunds []billing.RefundRequest
	seen := map[string]bool{}
	for _, p := range periods {
		if p.Refund != nil {
			refunds = append(refunds, *p.Refund)
			seen[p.Refund.ID] = true
		}
	}
	open, err := h.engine.RefundRequestList(ctx, billing.RefundRequestListParams{Open: true})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, q := range open {
		if q.SubscriptionID == id && !seen[q.ID] {
			refunds = append(refunds, q)
		}
	}
	txs, err := h.engine.Ledger().SubscriptionTransactionList(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var meters []meterRow
	if sub.Current != nil {
		for _, l := range sub.Current.Terms.Limits {
			u := sub.Current.Usage[l.Meter]
			meters = append(meters, meterRow{Meter: l.Meter, Limit: l.Quantity, Used: u.Used, Reserved: u.Reserved})
		}
		for m, u := range sub.Current.Usage {
			if _, ok := sub.Current.Terms.Limit(m); !ok {
				meters = append(meters, meterRow{Meter: m, Used: u.Used, Reserved: u.Reserved, Unlimited: true})
			}
		}
	}
	extendTo := ""
	if sub.Current != nil {
		extendTo = sub.Current.End.In(h.opts.Location).Add(24 * time.Hour).Format(layoutInputDT)
	}
	h.render(w, r, status, operatorFrom(ctx), "subscription", map[string]any{
		"Sub": sub, "Periods": periods, "Attempts": attempts, "Audit": audit, "Refunds": refunds, "Meters": meters,
		"Ledger": ledgerLines(txs),
		"Action": action, "FormErr": formErr, "ExtendTo": extendTo,
		"Can": map[string]bool{
			"suspend": sub.Status.Allows(subscription.ActionSuspend), "resume": sub.Status.Allows(subscription.ActionResume),
			"terminate": sub.Status.Allows(subscription.ActionTerminate), "extend": sub.Status.Allows(subscription.ActionExtendPeriod),
		},
	})
}

// subscriptionAction runs suspend, resume, terminate or extend (TERMS 2.1.2, 2.1.4), each with
// a required reason; the operator is the actor.
func (h *handler) subscriptionAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, action := r.PathValue("id"), r.PathValue("action")
	by := subscription.AdminAction{Actor: operatorFrom(ctx).ID, Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	var err error
	switch action {
	case "suspend", "resume", "terminate", "extend":
	default:
		h.render(w, r, http.StatusNotFound, operatorFrom(ctx), "error", map[string]any{"Title": "Не найдено", "Message": "Нет такого действия: " + action})
		return
	}
	if by.Reason == "" {
		h.renderSubscription(w, r, http.StatusUnprocessableEntity, action, "укажите причину: она попадёт в журнал аудита")
		return
	}
	switch action {
	case "suspend":
		_, err = h.engine.Suspend(ctx, id, by)
	case "resume":
		_, err = h.engine.Resume(ctx, id, by)
	case "terminate":
		_, err = h.engine.Terminate(ctx, id, by)
	case "extend":
		end, perr := time.ParseInLocation(layoutInputDT, r.PostForm.Get("new_end"), h.opts.Location)
		if perr != nil {
			h.renderSubscription(w, r, http.StatusUnprocessableEntity, action, "укажите новую дату окончания периода")
			return
		}
		_, err = h.engine.ExtendPeriod(ctx, id, end, by)
	}
	if err != nil {
		if k := billing.KindOf(err); k == billing.KindInvalidInput || k == billing.KindConflict {
			h.renderSubscription(w, r, http.StatusUnprocessableEntity, action, engineMessage(err))
			return
		}
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/subscriptions/"+id+"?done="+action)
}

// ledgerLine is one posting of the subscription's ledger, as the page shows it: the
// transaction's cells on its first posting only (Span is then its number of postings).
type ledgerLine struct {
	At        time.Time
	Period    int
	Operation string
	Key, Memo string
	Span      int
	Account   string
	// AccountName says in Russian what the account holds.
	AccountName string
	// Debit and Credit: the amount on its side, "" on the other.
	Debit, Credit string
}

// ledgerLines turns Books.SubscriptionTransactionList into the page's lines, one per posting.
func ledgerLines(txs []billing.LedgerTransaction) []ledgerLine {
	var out []ledgerLine
	for _, t := range txs {
		for i, p := range t.Transaction.Postings {
			l := ledgerLine{Account: p.Account}
			if role, _, ok := strings.Cut(p.Account, ":"); ok {
				l.AccountName = accountNames[ledger.Role(role)]
			}
			if p.Side == ledger.Debit {
				l.Debit = FormatMoney(p.Amount, p.Currency)
			} else {
				l.Credit = FormatMoney(p.Amount, p.Currency)
			}
			if i == 0 {
				l.At, l.Period, l.Operation, l.Key, l.Memo, l.Span = t.Transaction.At, t.Period, operationOf(t), t.Transaction.Key,
					t.Transaction.Memo, len(t.Transaction.Postings)
			}
			out = append(out, l)
		}
	}
	return out
}

// operationOf names what a transaction of a subscription's ledger records. A transaction of
// no period is an unapplied payment or its refund (Books.SubscriptionTransactionList).
func operationOf(t billing.LedgerTransaction) string {
	var op string
	switch kind := t.Transaction.Ref.Kind; {
	case kind == ledger.RefPayment && t.Period == 0:
		op = "неразнесённый платёж (к возврату)"
	case kind == ledger.RefRefund && t.Period == 0:
		op = "возврат неразнесённого платежа"
	case kind == ledger.RefPayment:
		op = "оплата периода"
	case kind == ledger.RefRefund:
		op = "возврат"
	case kind == ledger.RefRecognition:
		op = "признание выручки"
	default:
		op = "корректировка"
	}
	if t.Transaction.Reverses != "" {
		op = "сторно: " + op
	}
	return op
}

// accountNames say what each account of the chart holds (package ledger's roles).
var accountNames = map[ledger.Role]string{
	ledger.ProviderCash: "деньги у провайдера", ledger.DeferredRevenue: "доходы будущих периодов",
	ledger.Revenue: "выручка", ledger.RefundedRevenue: "возвращённая выручка",
	ledger.RefundsPayable: "к возврату клиентам", ledger.ProviderFees: "комиссии провайдера",
}
