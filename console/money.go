package console

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/smm-gpt/billing"
)

// moneyPage shows the trial balance, the revenue recognized per month, the unapplied
// payments still owed back, the charge attempts parked for a person, and the ledger export
// form.
func (h *handler) moneyPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tb, err := h.engine.Ledger().TrialBalance(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	unapplied, err := h.engine.UnappliedPaymentList(ctx, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	parked, err := h.engine.AttemptListParked(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	today := h.engine.Now().In(h.opts.Location)
	data := map[string]any{
		"Balances": tb, "Net": tb.NetByCurrency(), "Unapplied": unapplied, "Parked": parked,
		"From": today.AddDate(0, -1, 0).Format(layoutInputD), "To": today.Format(layoutInputD),
	}
	status := http.StatusOK
	from, to, problem := h.revenueMonths(r, today)
	data["RevenueFrom"], data["RevenueTo"] = from.Format(layoutInputM), to.AddDate(0, -1, 0).Format(layoutInputM)
	if problem != "" {
		data["RevenueErr"] = problem
		status = http.StatusBadRequest
	} else {
		revenue, err := h.engine.Ledger().RevenueByMonth(ctx, billing.RevenueByMonthParams{From: from, To: to, Location: h.opts.Location})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		data["Revenue"] = revenueRows(revenue, from, to)
	}
	h.render(w, r, status, operatorFrom(ctx), "money", data)
}

// Months of the revenue table: revenueMonthsDefault unless the operator picks a range, at
// most revenueMonthsMax (each month of a million monthly subscriptions is a million
// recognitions to read).
const (
	revenueMonthsDefault = 6
	revenueMonthsMax     = 24
)

// revenueMonths reads the months of the revenue table from the query (rfrom, rto: "2026-03",
// both included) and returns them as the instants [from, to) in the console's location, or
// the problem to show. Without them: the current month and the five before it.
func (h *handler) revenueMonths(r *http.Request, today time.Time) (from, to time.Time, problem string) {
	loc := h.opts.Location
	thisMonth := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, loc)
	from, to = thisMonth.AddDate(0, 1-revenueMonthsDefault, 0), thisMonth.AddDate(0, 1, 0)
	q := r.URL.Query()
	if q.Get("rfrom") == "" && q.Get("rto") == "" {
		return from, to, ""
	}
	f, err1 := time.ParseInLocation(layoutInputM, q.Get("rfrom"), loc)
	l, err2 := time.ParseInLocation(layoutInputM, q.Get("rto"), loc)
	if err1 != nil || err2 != nil || l.Before(f) {
		return from, to, "Укажите месяцы выручки: месяц «с» не позже месяца «по»."
	}
	if l.AddDate(0, 1-revenueMonthsMax, 0).After(f) {
		return f, l.AddDate(0, 1, 0), fmt.Sprintf("Не больше %d месяцев за раз.", revenueMonthsMax)
	}
	return f, l.AddDate(0, 1, 0), ""
}

// revenueRow is one month of the revenue table in one currency.
type revenueRow struct {
	Month                     time.Time
	Currency                  string
	Recognized, Refunded, Net int64
}

// revenueRows lists every month of [from, to), newest first, for each currency that has
// revenue in the range; a month with none shows zeros.
func revenueRows(revenue []billing.MonthRevenue, from, to time.Time) []revenueRow {
	var currencies []string
	byKey := map[string]billing.MonthRevenue{}
	for _, m := range revenue {
		if !slices.Contains(currencies, m.Currency) {
			currencies = append(currencies, m.Currency)
		}
		byKey[m.Month.Format(layoutInputM)+m.Currency] = m
	}
	slices.Sort(currencies)
	var out []revenueRow
	for m := to.AddDate(0, -1, 0); !m.Before(from); m = m.AddDate(0, -1, 0) {
		for _, c := range currencies {
			mr := byKey[m.Format(layoutInputM)+c]
			out = append(out, revenueRow{Month: m, Currency: c, Recognized: mr.Recognized, Refunded: mr.Refunded, Net: mr.Net()})
		}
	}
	return out
}

// ledgerCSV streams Books.ExportCSV for the days from..to (both included, in the console's
// location).
func (h *handler) ledgerCSV(w http.ResponseWriter, r *http.Request) {
	from, err1 := time.ParseInLocation(layoutInputD, r.URL.Query().Get("from"), h.opts.Location)
	to, err2 := time.ParseInLocation(layoutInputD, r.URL.Query().Get("to"), h.opts.Location)
	if err1 != nil || err2 != nil || to.Before(from) {
		h.render(w, r, http.StatusBadRequest, operatorFrom(r.Context()), "error", map[string]any{"Title": "Неверные данные",
			"Message": "Укажите период выгрузки: дата «с» не позже даты «по»."})
		return
	}
	end := to.AddDate(0, 0, 1) // the day "to" included
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="ledger-`+from.Format("20060102")+"-"+to.Format("20060102")+`.csv"`)
	if err := h.engine.Ledger().ExportCSV(r.Context(), w, from, end); err != nil {
		// The header is gone once rows were written; the truncated file ends without its
		// last rows, and the cause is logged.
		h.opts.Logger.Error("console: ledger export", "error", err)
	}
}

// deletionsPage lists the open account deletion requests with their TERMS 2.2.4 deadlines.
func (h *handler) deletionsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	dels, err := h.engine.AccountDeletionListOpen(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.engine.Now()
	type row struct {
		Del      billing.AccountDeletion
		DaysLeft int
		Overdue  bool
		DueSoon  bool
	}
	rows := make([]row, 0, len(dels))
	for _, d := range dels {
		left := daysLeft(now, d.Deadline, h.opts.Location)
		over := !now.Before(d.Deadline)
		rows = append(rows, row{Del: d, DaysLeft: left, Overdue: over, DueSoon: !over && left <= dueSoonDays})
	}
	h.render(w, r, http.StatusOK, operatorFrom(ctx), "deletions", map[string]any{"Rows": rows})
}

// deletionExecute records that the customer's account was deleted.
func (h *handler) deletionExecute(w http.ResponseWriter, r *http.Request) {
	if _, err := h.engine.ExecuteAccountDeletion(r.Context(), r.PathValue("id"), operatorFrom(r.Context()).ID); err != nil {
		h.fail(w, r, err)
		return
	}
	h.redirect(w, r, "/deletions?done=deleted")
}
