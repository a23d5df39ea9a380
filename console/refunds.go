package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
)

// routes registers every page and action.
func (h *handler) routes() {
	m := h.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.redirect(w, r, "/refunds") })
	m.HandleFunc("GET /refunds", h.refundQueue)
	m.HandleFunc("POST /refunds", h.refundRecord)
	m.HandleFunc("GET /refunds/{id}", h.refundPage)
	m.HandleFunc("POST /refunds/{id}/verify", h.refundVerify)
	m.HandleFunc("POST /refunds/{id}/execute", h.refundExecute)
	m.HandleFunc("POST /refunds/{id}/reject", h.refundReject)
	m.HandleFunc("GET /subscriptions", h.subscriptionSearch)
	m.HandleFunc("GET /subscriptions/{id}", h.subscriptionPage)
	m.HandleFunc("POST /subscriptions/{id}/{action}", h.subscriptionAction)
	m.HandleFunc("GET /money", h.moneyPage)
	m.HandleFunc("GET /money/ledger.csv", h.ledgerCSV)
	m.HandleFunc("GET /deletions", h.deletionsPage)
	m.HandleFunc("POST /deletions/{id}/execute", h.deletionExecute)
	m.HandleFunc("GET /tariffs", h.tariffsPage)
	m.HandleFunc("POST /tariffs/{code}/preview", h.tariffPreview)
	m.HandleFunc("POST /tariffs/{code}/publish", h.tariffPublish)
}

// dueSoonDays: a request with this many calendar days left or fewer is marked due soon.
const dueSoonDays = 2

// queueRow is one open refund request in the queue.
type queueRow struct {
	Req      billing.RefundRequest
	DaysLeft int
	Overdue  bool
	DueSoon  bool
}

// refundQueue lists the open requests, earliest TERMS 3.8 deadline first, with the form that
// records a request received by e-mail.
func (h *handler) refundQueue(w http.ResponseWriter, r *http.Request) {
	h.renderQueue(w, r, http.StatusOK, recordForm{Channel: string(refund.ChannelEmail)}, "")
}

// recordForm is the form that records a refund request, as typed.
type recordForm struct {
	SubscriptionID, ReceivedAt, Channel, Text, Key string
}

// renderQueue renders the queue page with the record form f and its error.
func (h *handler) renderQueue(w http.ResponseWriter, r *http.Request, status int, f recordForm, formErr string) {
	reqs, err := h.engine.RefundRequestList(r.Context(), billing.RefundRequestListParams{Open: true})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.engine.Now()
	rows := make([]queueRow, 0, len(reqs))
	for _, q := range reqs {
		d := daysLeft(now, q.PayoutDeadline, h.opts.Location)
		over := !now.Before(q.PayoutDeadline)
		rows = append(rows, queueRow{Req: q, DaysLeft: d, Overdue: over, DueSoon: !over && d <= dueSoonDays})
	}
	if f.Key == "" {
		f.Key = uuid.NewString()
	}
	if f.ReceivedAt == "" {
		f.ReceivedAt = now.In(h.opts.Location).Format(layoutInputDT)
	}
	h.render(w, r, status, operatorFrom(r.Context()), "refunds", map[string]any{
		"Rows": rows, "Form": f, "FormErr": formErr, "Channels": []refund.Channel{refund.ChannelEmail, refund.ChannelSupport, refund.ChannelProfile},
	})
}

// refundRecord records a request received by e-mail (or another channel): TERMS 3.7.
func (h *handler) refundRecord(w http.ResponseWriter, r *http.Request) {
	f := recordForm{SubscriptionID: strings.TrimSpace(r.PostForm.Get("subscription_id")), ReceivedAt: r.PostForm.Get("received_at"),
		Channel: r.PostForm.Get("channel"), Text: r.PostForm.Get("text"), Key: r.PostForm.Get("key")}
	var problems []string
	if f.SubscriptionID == "" {
		problems = append(problems, "укажите ID подписки")
	}
	at, err := time.ParseInLocation(layoutInputDT, f.ReceivedAt, h.opts.Location)
	if err != nil {
		problems = append(problems, "укажите, когда пришло письмо (дата и время)")
	}
	if !refund.Channel(f.Channel).Valid() {
		problems = append(problems, "выберите канал")
	}
	if strings.TrimSpace(f.Text) == "" {
		problems = append(problems, "вставьте текст обращения")
	}
	if f.Key == "" {
		f.Key = uuid.NewString()
	}
	if len(problems) > 0 {
		h.renderQueue(w, r, http.StatusUnprocessableEntity, f, strings.Join(problems, "; "))
		return
	}
	req, err := h.engine.RequestRefund(r.Context(), billing.RefundRequestParams{SubscriptionID: f.SubscriptionID,
		ReceivedAt: at, Channel: refund.Channel(f.Channel), Text: f.Text, IdempotencyKey: "console:" + f.Key})
	if err != nil {
		if k := billing.KindOf(err); k == billing.KindInvalidInput || k == billing.KindNotFound || k == billing.KindConflict {
			h.renderQueue(w, r, http.StatusUnprocessableEntity, f, engineMessage(err))
			return
		}
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/refunds/"+req.ID+"?done=recorded")
}

// refundPage shows one request, its history, the art. 32 suggestion and the actions its state
// allows.
func (h *handler) refundPage(w http.ResponseWriter, r *http.Request) {
	h.renderRefund(w, r, http.StatusOK, "", "")
}

// renderRefund renders the request's page; formErr is shown at the form named by form.
func (h *handler) renderRefund(w http.ResponseWriter, r *http.Request, status int, form, formErr string) {
	ctx := r.Context()
	hist, err := h.engine.RefundHistoryGet(ctx, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req := hist.Request
	data := map[string]any{"Req": req, "History": hist.Entries, "Form": form, "FormErr": formErr}
	costsIn := r.FormValue("costs")
	if costsIn == "" {
		costsIn = "0"
	}
	data["Costs"] = costsIn
	open := req.State == refund.StateReceived || req.State == refund.StateVerified || req.State == refund.StateFailed
	data["Open"] = open
	data["CanExecute"] = req.State == refund.StateVerified || req.State == refund.StateFailed
	data["CanVerify"] = req.State == refund.StateReceived
	data["CanReject"] = req.State == refund.StateReceived || req.State == refund.StateVerified
	if open {
		if costs, err := parseAmount(costsIn); err != nil {
			data["SuggestErr"] = "затраты: не число"
		} else if s, err := h.engine.SuggestProRata(ctx, req.ID, costs); err != nil {
			data["SuggestErr"] = engineMessage(err)
		} else {
			data["Suggest"] = s
		}
	}
	now := h.engine.Now()
	data["DaysLeft"] = daysLeft(now, req.PayoutDeadline, h.opts.Location)
	data["Overdue"] = open && !now.Before(req.PayoutDeadline)
	h.render(w, r, status, operatorFrom(ctx), "refund", data)
}

// refundVerify records that the operator verified the customer (TERMS 3.8).
func (h *handler) refundVerify(w http.ResponseWriter, r *http.Request) {
	op := operatorFrom(r.Context())
	if _, err := h.engine.VerifyRefund(r.Context(), r.PathValue("id"), op.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/refunds/"+r.PathValue("id")+"?done=verified")
}

// refundExecute pays the request back: in full (TERMS 3.7; an ineligible request needs a
// reason, recorded as the override), or partially under consumer law art. 32 (the amount
// typed, with a required reason).
func (h *handler) refundExecute(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	req, err := h.engine.RefundRequestGet(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	opts := billing.ExecuteRefundOpts{Actor: operatorFrom(ctx).ID}
	form := "full"
	if in := strings.TrimSpace(r.PostForm.Get("amount")); in != "" {
		form = "partial"
		amount, err := parseAmount(in)
		if err != nil || !amount.IsPositive() {
			h.renderRefund(w, r, http.StatusUnprocessableEntity, form, "сумма: положительное число, например 645,00")
			return
		}
		opts.Amount = amount
	}
	if form == "partial" || !req.Eligible {
		if reason == "" {
			h.renderRefund(w, r, http.StatusUnprocessableEntity, form, "укажите причину: она попадёт в журнал аудита")
			return
		}
		opts.Override, opts.OverrideReason = true, reason
	}
	if _, err := h.engine.ExecuteRefund(ctx, id, opts); err != nil {
		if k := billing.KindOf(err); k == billing.KindInvalidInput || k == billing.KindConflict {
			h.renderRefund(w, r, http.StatusUnprocessableEntity, form, engineMessage(err))
			return
		}
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/refunds/"+id+"?done=executed")
}

// refundReject closes the request unpaid, with a required reason.
func (h *handler) refundReject(w http.ResponseWriter, r *http.Request) {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		h.renderRefund(w, r, http.StatusUnprocessableEntity, "reject", "укажите причину отказа")
		return
	}
	if _, err := h.engine.RejectRefund(r.Context(), r.PathValue("id"), operatorFrom(r.Context()).ID, reason); err != nil {
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/refunds/"+r.PathValue("id")+"?done=rejected")
}
