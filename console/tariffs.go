package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smm-gpt/billing"
	"github.com/smm-gpt/billing/tariff"
)

// Publishing a tariff version from the console (TERMS 2.1.6, 3.2) is two POSTs, both only
// for RoleOperator with a CSRF token (ServeHTTP): the tariff page's form goes to preview,
// which publishes nothing and shows Catalog.PreviewPublish in a sentence ("N paid periods
// keep the old price; renewals from DATE at the new price") with the form's values in
// hidden fields; its confirm button posts them to publish, which calls Catalog.Publish with
// the operator's ID as the actor, so the engine's audit log says who published. Bad input
// is a 400 that shows the tariff page again with the values typed and the reason, and
// publishes nothing.

// versionForm is the new-version form of one tariff, as typed. Currency and options are not
// on it: the new version keeps the latest version's (the page says so).
type versionForm struct {
	Code, Name, Price, PeriodCount, PeriodUnit, Limits, EffectiveAt string
	// Expected and RenewFrom are what the preview showed, posted back by its confirmation:
	// the version number it would publish and the date renewals take the new price, as
	// displayed. The confirmation publishes only while both still hold (tariffPublish).
	Expected, RenewFrom string
}

// units are the period units of the form, in its order, with their Russian labels.
var (
	units      = []tariff.Unit{tariff.Day, tariff.Week, tariff.Month, tariff.Year}
	unitLabels = map[tariff.Unit]string{tariff.Day: "дн.", tariff.Week: "нед.", tariff.Month: "мес.", tariff.Year: "г."}
)

// tariffRow is one tariff of the page with its versions and, for an operator, its form.
type tariffRow struct {
	Tariff   tariff.Tariff
	Versions []tariff.Version
	Form     versionForm
	FormErr  string
}

// tariffsPage lists the tariffs and their versions, each active one with the form of a new
// version for an operator.
func (h *handler) tariffsPage(w http.ResponseWriter, r *http.Request) {
	h.renderTariffs(w, r, http.StatusOK, nil, "")
}

// renderTariffs renders the tariffs page; form, when set, replaces the form of its tariff
// (the values typed) and formErr is shown beside it.
func (h *handler) renderTariffs(w http.ResponseWriter, r *http.Request, status int, form *versionForm, formErr string) {
	ctx := r.Context()
	list, err := h.engine.Tariffs().List(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rows := make([]tariffRow, 0, len(list))
	for _, t := range list {
		vs, err := h.engine.Tariffs().VersionList(ctx, t.Code)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		row := tariffRow{Tariff: t, Versions: vs, Form: h.formOf(vs[len(vs)-1])}
		if form != nil && form.Code == t.Code {
			row.Form, row.FormErr = *form, formErr
		}
		rows = append(rows, row)
	}
	h.render(w, r, status, operatorFrom(ctx), "tariffs", map[string]any{"Rows": rows, "Units": units})
}

// formOf is the new-version form filled with v's values and no effective date (at once).
func (h *handler) formOf(v tariff.Version) versionForm {
	lines := make([]string, len(v.Limits))
	for i, l := range v.Limits {
		lines[i] = l.Meter + " " + strconv.FormatInt(l.Quantity, 10)
	}
	return versionForm{Code: v.Code, Name: v.Name, Price: decimalInput(v.Price, v.Currency),
		PeriodCount: strconv.Itoa(v.Period.Count), PeriodUnit: string(v.Period.Unit), Limits: strings.Join(lines, "\n")}
}

// readVersionForm reads the form of the tariff in the path and turns it into a Spec on top
// of the latest version (its currency and options), or returns the problems in Russian.
func (h *handler) readVersionForm(r *http.Request) (versionForm, tariff.Spec, string, error) {
	f := versionForm{Code: r.PathValue("code"), Name: strings.TrimSpace(r.PostForm.Get("name")),
		Price: strings.TrimSpace(r.PostForm.Get("price")), PeriodCount: strings.TrimSpace(r.PostForm.Get("period_count")),
		PeriodUnit: r.PostForm.Get("period_unit"), Limits: strings.TrimSpace(r.PostForm.Get("limits")),
		EffectiveAt: strings.TrimSpace(r.PostForm.Get("effective_at"))}
	vs, err := h.engine.Tariffs().VersionList(r.Context(), f.Code)
	if err != nil {
		return f, tariff.Spec{}, "", err
	}
	latest := vs[len(vs)-1]
	spec := tariff.Spec{Code: f.Code, Name: f.Name, Currency: latest.Currency, Options: latest.Options}
	var problems []string
	if spec.Price, err = parseAmount(f.Price); err != nil {
		problems = append(problems, "цена: число, например 1290 или 1290,50")
	}
	if spec.Period.Count, err = strconv.Atoi(f.PeriodCount); err != nil {
		problems = append(problems, "период: целое число")
	}
	spec.Period.Unit = tariff.Unit(f.PeriodUnit)
	for _, line := range strings.Split(f.Limits, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		meter, qty, ok := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
		n, err := strconv.ParseInt(qty, 10, 64)
		if !ok || err != nil {
			problems = append(problems, "лимит «"+line+"»: счётчик и число через пробел, например «generations 500»")
			continue
		}
		spec.Limits = append(spec.Limits, tariff.Limit{Meter: meter, Quantity: n})
	}
	if f.EffectiveAt != "" {
		if spec.EffectiveAt, err = time.ParseInLocation(layoutInputDT, f.EffectiveAt, h.opts.Location); err != nil {
			problems = append(problems, "дата вступления в силу: дата и время, или пусто — сразу")
		}
	}
	if len(problems) > 0 {
		return f, spec, strings.Join(problems, "; "), nil
	}
	if err := spec.Validate(); err != nil {
		return f, spec, engineMessage(err), nil
	}
	return f, spec, "", nil
}

// versionFormOr400 is readVersionForm for a handler: on bad input it answers (the tariff
// page with the problems, 400; an engine failure as such) and returns false.
func (h *handler) versionFormOr400(w http.ResponseWriter, r *http.Request) (versionForm, tariff.Spec, bool) {
	f, spec, problem, err := h.readVersionForm(r)
	if err != nil {
		h.fail(w, r, err)
		return f, spec, false
	}
	if problem != "" {
		h.renderTariffs(w, r, http.StatusBadRequest, &f, problem)
		return f, spec, false
	}
	return f, spec, true
}

// tariffPreview shows what publishing the form's version would do under TERMS 2.1.6, with
// the button that publishes it. Nothing is written.
func (h *handler) tariffPreview(w http.ResponseWriter, r *http.Request) {
	f, spec, ok := h.versionFormOr400(w, r)
	if !ok {
		return
	}
	p, err := h.engine.Tariffs().PreviewPublish(r.Context(), spec)
	if err != nil {
		h.formFailed(w, r, f, err)
		return
	}
	h.renderPreview(w, r, http.StatusOK, f, p, "")
}

// renderPreview shows preview p of form f with the confirmation carrying what it shows.
func (h *handler) renderPreview(w http.ResponseWriter, r *http.Request, status int, f versionForm, p billing.PublishPreview, changed string) {
	f.Expected, f.RenewFrom = strconv.Itoa(p.Version.Number), formatTime(p.RenewFrom, h.opts.Location)
	h.render(w, r, status, operatorFrom(r.Context()), "tariff_preview", map[string]any{"Form": f, "Preview": p, "Changed": changed})
}

// tariffPublish publishes the version the preview showed, the operator as the actor, and
// only that: the preview's version number goes in as Spec.ExpectedNumber, so a version
// published meanwhile, or the same confirmation posted twice, is a 409 with nothing
// published; and when the date renewals take the new price is no longer the one shown (a
// rise waits for the price notice counted from publication), the preview is shown again
// with the new date (409) for the operator to confirm.
func (h *handler) tariffPublish(w http.ResponseWriter, r *http.Request) {
	f, spec, ok := h.versionFormOr400(w, r)
	if !ok {
		return
	}
	f.Expected, f.RenewFrom = r.PostForm.Get("expected_number"), r.PostForm.Get("renew_from")
	n, err := strconv.Atoi(f.Expected)
	if err != nil || n < 1 || f.RenewFrom == "" {
		h.renderTariffs(w, r, http.StatusBadRequest, &f, "подтверждение без данных предпросмотра: откройте предпросмотр заново")
		return
	}
	spec.ExpectedNumber = n
	p, err := h.engine.Tariffs().PreviewPublish(r.Context(), spec)
	if err != nil {
		h.formFailed(w, r, f, err)
		return
	}
	if shown, now := f.RenewFrom, formatTime(p.RenewFrom, h.opts.Location); shown != now {
		h.renderPreview(w, r, http.StatusConflict, f, p, "Дата перехода на новую цену изменилась: было «"+shown+"», теперь «"+now+
			"». Ничего не опубликовано; проверьте и подтвердите снова.")
		return
	}
	if _, err := h.engine.Tariffs().Publish(r.Context(), operatorFrom(r.Context()).ID, spec); err != nil {
		h.formFailed(w, r, f, err)
		return
	}
	h.redirect(w, r, "/tariffs?done=published")
}

// formFailed answers an engine error about the form: bad input (400) and a state that
// refuses it, such as a retired tariff (409), show the tariff page again with the reason.
func (h *handler) formFailed(w http.ResponseWriter, r *http.Request, f versionForm, err error) {
	switch billing.KindOf(err) {
	case billing.KindInvalidInput:
		h.renderTariffs(w, r, http.StatusBadRequest, &f, engineMessage(err))
	case billing.KindConflict:
		if errors.Is(err, tariff.ErrVersionChanged) {
			h.renderTariffs(w, r, http.StatusConflict, &f, "Пока открыт предпросмотр, опубликована другая версия (или это подтверждение уже отправлено): "+
				"ничего не опубликовано. Проверьте версии и откройте предпросмотр заново.")
			return
		}
		h.renderTariffs(w, r, http.StatusConflict, &f, engineMessage(err))
	default:
		h.fail(w, r, err)
	}
}

// periodsKeep is the start of the 2.1.6 sentence, agreed with n in Russian: "1 оплаченный
// период сохраняет", "3 оплаченных периода сохраняют", "5 оплаченных периодов сохраняют".
func periodsKeep(n int) string {
	s := strconv.Itoa(n) + " "
	switch {
	case n%10 == 1 && n%100 != 11:
		return s + "оплаченный период сохраняет"
	case n%10 >= 2 && n%10 <= 4 && (n%100 < 12 || n%100 > 14):
		return s + "оплаченных периода сохраняют"
	default:
		return s + "оплаченных периодов сохраняют"
	}
}
