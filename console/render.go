package console

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageSet holds one template per page, each the layout plus the page's own file.
type pageSet struct {
	pages map[string]*template.Template
}

// parsePages parses the layout with every page template.
func parsePages() (*pageSet, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{pages: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		ps.pages[base] = t
	}
	return ps, nil
}

// funcs are the template functions; those that need the location take it from the page.
var funcs = template.FuncMap{
	"money":       FormatMoney,
	"dec":         formatDecimal,
	"decIn":       decimalInput,
	"month":       formatMonth,
	"periodsKeep": periodsKeep,
	"unit": func(u tariff.Unit) string {
		if l, ok := unitLabels[u]; ok {
			return l
		}
		return string(u)
	},
	"refundState": func(s refund.State) string {
		if l, ok := refundStateLabels[s]; ok {
			return l
		}
		return string(s)
	},
	"action":  actionLabel,
	"reasons": reasonsLabel,
	"subStatus": func(s subscription.Status) string {
		if l, ok := statusLabels[s]; ok {
			return l
		}
		return string(s)
	},
	"channel": func(c refund.Channel) string {
		if l, ok := channelLabels[c]; ok {
			return l
		}
		return string(c)
	},
	"basis": func(b refund.Basis) string {
		if b == refund.BasisTime {
			return "по времени"
		}
		return "по объёму"
	},
}

// Russian labels of the engine's states.
var (
	refundStateLabels = map[refund.State]string{
		refund.StateReceived: "получен", refund.StateVerified: "проверен", refund.StateExecuting: "выплачивается",
		refund.StateRefunded: "возвращён", refund.StateFailed: "ошибка выплаты", refund.StateRejected: "отклонён",
	}
	statusLabels = map[subscription.Status]string{
		subscription.StatusPending: "ожидает оплаты", subscription.StatusActive: "активна",
		subscription.StatusExhausted: "объём исчерпан", subscription.StatusPastDue: "просрочен платёж",
		subscription.StatusSuspended: "приостановлена", subscription.StatusEnded: "завершена",
		subscription.StatusRefunded: "возвращена", subscription.StatusTerminated: "прекращена",
	}
	// actionLabels name, in Russian, the actions of the engine's audit log and of the
	// histories it reads (Engine.AuditLog, RefundHistoryGet); an action not here is shown
	// as the engine names it (actionLabel).
	actionLabels = map[string]string{
		"subscription.create": "оформление", "subscription.activate": "доступ открыт после оплаты",
		"subscription.first_payment_failed": "первая оплата не прошла", "subscription.renew": "продление",
		"subscription.mark_past_due": "платёж просрочен", "subscription.end": "период завершён без продления",
		"subscription.exhaust": "объём исчерпан", "subscription.refund": "возврат, доступ закрыт",
		"subscription.suspend": "приостановка", "subscription.resume": "возобновление",
		"subscription.terminate": "прекращение", "subscription.extend_period": "продление периода оператором",
		"subscription.set_auto_renew": "автопродление изменено", "subscription.withdraw_consent": "согласие на автосписание отозвано",
		"refund.received": "заявление получено", "refund.requested": "заявление на возврат записано",
		"refund.escalated": "срок выплаты близко, передано оператору", "refund.verified": "заявление проверено",
		"refund.rejected": "в возврате отказано", "refund.override": "возврат вне правил, по решению оператора",
		"refund.executing": "возврат отправлен провайдеру", "refund.succeeded": "возврат выплачен",
		"refund.pending": "возврат в обработке у провайдера", "refund.soft_declined": "провайдер временно отклонил возврат",
		"refund.hard_declined": "провайдер отклонил возврат", "refund.unknown": "исход возврата неизвестен",
		"refund.canceled": "возврат отменён", "refund.after_end": "возврат после конца периода",
		"payment.unapplied": "платёж не зачтён", "payment.unapplied_refunded": "незачтённый платёж возвращён",
		"payment.unapplied_parked": "незачтённый платёж ждёт оператора",
		"attempt.created":          "попытка списания создана", "attempt.sent": "запрос списания отправлен",
		"attempt.succeeded": "списание прошло", "attempt.pending": "списание ждёт подтверждения провайдера",
		"attempt.soft_declined": "списание временно отклонено", "attempt.hard_declined": "списание отклонено окончательно",
		"attempt.unknown": "исход списания неизвестен, идёт сверка", "attempt.canceled": "списание отменено, деньги не списывались",
		"attempt.parked": "сверка остановлена, нужен оператор",
		"ledger.payment": "проводка: оплата", "ledger.refund": "проводка: возврат",
		"ledger.recognition": "проводка: признание выручки",
		"tariff.publish":     "новая версия тарифа", "tariff.retire": "тариф снят с продажи",
		"account_deletion.requested": "запрос на удаление аккаунта", "account_deletion.executed": "аккаунт удалён",
	}
	// reasonLabels say, in Russian, which condition of TERMS 3.7 a refund request failed
	// (refund.Decision.Failed); the engine's English explanation stays in the cell's title.
	reasonLabels = map[refund.Reason]string{
		refund.ReasonWindowClosed:    "заявление получено после окна в 5 рабочих дней",
		refund.ReasonUsed:            "объём периода использован",
		refund.ReasonOpenReservation: "есть открытый резерв объёма",
		refund.ReasonRenewal:         "период продлён, а возврат положен только за первый",
	}
	channelLabels = map[refund.Channel]string{
		refund.ChannelEmail: "эл. почта", refund.ChannelSupport: "поддержка", refund.ChannelProfile: "профиль",
	}
	// statusOrder is the order of the status filter.
	statusOrder = []subscription.Status{subscription.StatusPending, subscription.StatusActive, subscription.StatusExhausted,
		subscription.StatusPastDue, subscription.StatusSuspended, subscription.StatusEnded, subscription.StatusRefunded,
		subscription.StatusTerminated}
)

// page is what every template gets.
type page struct {
	// P is the prefix of every link.
	P string
	// Op is the operator; CanAct says whether to show action buttons.
	Op     Operator
	CanAct bool
	// CSRF is the token for the page's forms.
	CSRF string
	// Zone names the location of the times shown.
	Zone string
	// Now is the engine's now, in the location.
	Now time.Time
	// Flash is a message about the action just done.
	Flash string
	// D is the page's own data.
	D   map[string]any
	loc *time.Location
}

// T renders an instant in the console's location.
func (p page) T(t time.Time) string { return formatTime(t, p.loc) }

// Date renders the date of an instant in the console's location.
func (p page) Date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format(layoutDate)
}

// LastDay renders the last day of a deadline (the instant before which something is due).
func (p page) LastDay(deadline time.Time) string {
	return lastDay(deadline, p.loc).Format(layoutDate)
}

// render writes the page name with status.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, op Operator, name string, data map[string]any) {
	t, ok := h.pages.pages[name]
	if !ok {
		http.Error(w, "console: no template "+name, http.StatusInternalServerError)
		return
	}
	now := time.Now()
	p := page{P: h.opts.Prefix, Op: op, CanAct: op.canAct(), Zone: h.opts.Location.String(),
		Now: h.engine.Now().In(h.opts.Location), D: data, loc: h.opts.Location}
	if op.ID != "" && op.canAct() {
		p.CSRF = h.csrf.token(op.ID, now)
	}
	if r != nil {
		p.Flash = flashMessages[r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		h.opts.Logger.Error("console: render "+name, "error", err)
		http.Error(w, "console: render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// flashMessages are the messages shown after a redirect with ?done=<key>.
var flashMessages = map[string]string{
	"recorded": "Запрос на возврат записан.", "verified": "Запрос проверен.",
	"executed": "Возврат отправлен на выплату.", "rejected": "Запрос отклонён.",
	"suspend": "Подписка приостановлена.", "resume": "Подписка возобновлена.",
	"terminate": "Подписка прекращена.", "extend": "Период продлён.",
	"deleted":   "Удаление аккаунта отмечено выполненным.",
	"published": "Новая версия тарифа опубликована.",
}

// fail answers an engine error: its kind's status and message; an internal error is logged
// and not shown.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := billing.HTTPStatus(err)
	msg := err.Error()
	if status >= 500 && !errors.Is(err, billing.ErrUnavailable) {
		h.opts.Logger.Error("console: "+r.Method+" "+r.URL.Path, "error", err)
		msg = "Внутренняя ошибка; подробности в журнале сервера."
	}
	h.render(w, r, status, operatorFrom(r.Context()), "error", map[string]any{"Title": errorTitle(status), "Message": msg})
}

// errorTitle is the heading of an error page.
func errorTitle(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Не найдено"
	case http.StatusConflict:
		return "Действие невозможно в текущем состоянии"
	case http.StatusBadRequest:
		return "Неверные данные"
	case http.StatusServiceUnavailable:
		return "Сервис временно недоступен, повторите"
	default:
		return "Ошибка"
	}
}

// redirect answers 303 See Other to the console path (after a POST: the browser GETs it).
func (h *handler) redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, h.opts.Prefix+path, http.StatusSeeOther)
}

// parseAmount reads a decimal amount typed by a person: "1290", "1290.50", "1 290,50".
func parseAmount(s string) (decimal.Decimal, error) {
	s = strings.NewReplacer(" ", "", nbsp, "", ",", ".", "₽", "").Replace(strings.TrimSpace(s))
	return decimal.NewFromString(s)
}

// actionLabel is action's Russian label (actionLabels), or action itself when it has none.
func actionLabel(action string) string {
	if l, ok := actionLabels[action]; ok {
		return l
	}
	return action
}

// reasonsLabel lists the failed 3.7 conditions in Russian (reasonLabels; an unknown one as
// the engine names it), joined by "; ".
func reasonsLabel(failed []refund.Reason) string {
	out := make([]string, len(failed))
	for i, r := range failed {
		if l, ok := reasonLabels[r]; ok {
			out[i] = l
		} else {
			out[i] = string(r)
		}
	}
	return strings.Join(out, "; ")
}

// engineMessage is how a form shows an engine's refusal: the Russian heading of its status
// (errorTitle, as an error page has it), then the engine's own words, which name the field
// or rule in English.
func engineMessage(err error) string {
	return errorTitle(billing.HTTPStatus(err)) + " (" + err.Error() + ")"
}
