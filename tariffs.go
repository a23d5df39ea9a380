package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/tariff"
)

// Catalog is the engine's tariff catalog in PostgreSQL: tariffs and their append-only
// versions (TERMS 2.1.6, 3.2). Get it with Engine.Tariffs.
type Catalog struct {
	e *Engine
}

// Tariffs returns the engine's tariff catalog.
func (e *Engine) Tariffs() *Catalog { return &Catalog{e: e} }

// Publish publishes spec as a new version of the tariff spec.Code, creating the tariff
// when the code is new, and returns the stored version. The version takes effect at
// spec.EffectiveAt, or at once when that is zero or past. Periods already sold keep the
// terms they were sold under (TERMS 2.1.6); only renewals and new purchases from the
// effective instant on see the new version.
//
// Bad input returns a *TariffValidationError naming every bad field (errors.Is(err,
// ErrInvalidInput) and errors.Is(err, tariff.ErrInvalid)) and stores nothing; a retired tariff cannot get new versions
// (tariff.ErrRetired). Concurrent publishers of one code serialize and get distinct,
// ordered version numbers. actor is recorded in the audit log.
func (c *Catalog) Publish(ctx context.Context, actor string, spec tariff.Spec) (_ tariff.Version, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.Publish", tariffAttr(spec.Code), attrHostTx.Bool(false))
	defer span.end(&err)
	return c.publish(ctx, c.e.pool, actor, spec)
}

// errRetiredForPublish is the refusal to publish or preview a version of retired tariff t.
func errRetiredForPublish(t tariff.Tariff) error {
	return fmt.Errorf("%w: tariff %q was retired at %s; publish under a new code", tariff.ErrRetired, t.Code, t.RetiredAt.Format(time.RFC3339))
}

// PublishTx is Publish in the host's transaction tx. Trap: the tariff's row stays locked
// until tx ends, so other publishers of the code (and checkouts that lock it) wait.
func (c *Catalog) PublishTx(ctx context.Context, tx pgx.Tx, actor string, spec tariff.Spec) (_ tariff.Version, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.Publish", tariffAttr(spec.Code), attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("PublishTx", tx); err != nil {
		return tariff.Version{}, err
	}
	return c.publish(ctx, tx, actor, spec)
}

func (c *Catalog) publish(ctx context.Context, db dbtx, actor string, spec tariff.Spec) (tariff.Version, error) {
	if err := spec.Validate(); err != nil {
		return tariff.Version{}, opError("Publish", err)
	}
	if strings.TrimSpace(actor) == "" {
		return tariff.Version{}, &InputError{Op: "Publish", Problems: []FieldProblem{{"actor", "required: who publishes the version, for the audit log"}}}
	}
	var out tariff.Version
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		now := c.e.clock.Now()
		t, err := store.LockTariffForPublish(ctx, tx, spec.Code, spec.Name, now)
		if err != nil {
			return err
		}
		if t.Status == tariff.Retired {
			return errRetiredForPublish(t)
		}
		prev, err := store.LatestVersion(ctx, tx, spec.Code)
		if err != nil {
			return err
		}
		v, err := tariff.NewVersion(spec, prev, now)
		if err != nil {
			return err
		}
		if err := store.InsertVersion(ctx, tx, v); err != nil {
			return err
		}
		if err := store.SetTariffName(ctx, tx, v.Code, v.Name); err != nil {
			return err
		}
		out = v
		return store.InsertAudit(ctx, tx, store.AuditEntry{
			At: now, Actor: actor, Action: "tariff.publish", Subject: "tariff:" + v.Code,
			Detail: map[string]any{"version": v.Number, "price": v.Price.String(), "currency": v.Currency,
				"period": v.Period.String(), "effective_at": v.EffectiveAt},
		})
	})
	if err != nil {
		return tariff.Version{}, opError("Publish", err)
	}
	return out, nil
}

// PublishPreview is what publishing a tariff version would do to the periods already sold
// (TERMS 2.1.6: a paid period is never recalculated and runs at the price already paid; the
// next renewal uses the tariff's current price). Catalog.PreviewPublish returns it; nothing
// is written.
type PublishPreview struct {
	// Version is the version as Publish would store it at the instant of the preview: its
	// number, and EffectiveAt raised to that instant when the spec's is zero or earlier.
	// Publishing later moves both with the clock.
	Version tariff.Version
	// Grandfathered is how many paid periods of the tariff are running now on older
	// versions: each keeps the price it was paid at to its end, whatever is published.
	// A period counts when it has started and not ended and is the current period of an
	// active, exhausted or suspended subscription (not of an ended, refunded or terminated
	// one, nor a period already over).
	Grandfathered int
	// RenewFrom is the instant from which every renewal takes the new version: a renewal
	// due at or after it is sold under it, one due before it under an older version. It is
	// the latest of ByVersion's RenewFrom, or Version.EffectiveAt when no period runs.
	RenewFrom time.Time
	// ByVersion splits Grandfathered by the version the periods were sold under, in version
	// order; versions with no running period are left out.
	ByVersion []PublishPreviewGroup
}

// PublishPreviewGroup is the running periods of one older version in a PublishPreview.
type PublishPreviewGroup struct {
	// Version is the number of the version the periods were sold under.
	Version int
	// Price and Currency are what those periods were paid and keep to their end.
	Price    decimal.Decimal
	Currency string
	// Periods is how many of them run now.
	Periods int
	// RenewFrom is tariff.RenewalTakesFrom for these periods: the new version's EffectiveAt,
	// or, when it is a price rise for them (or another currency), the later of that and the
	// preview's instant plus the price notice they were sold with (Options.PriceNotice).
	RenewFrom time.Time
}

// PreviewPublish says what publishing spec now would do to the periods already sold
// (TERMS 2.1.6), without publishing it: how many paid periods running on the tariff's older
// versions keep their price, and from when renewals take the new version. The rule is
// TermsForRenewal's, as the renewal job applies it at the instant a renewal falls due (a
// period's end): tariff.RenewalTakesFrom. The count reads one range of an index of the
// tariff's periods that end after now (migration 0017) and one subscription per running
// period, not every period ever sold.
//
// spec is checked as Publish checks it: bad input returns a *TariffValidationError
// (errors.Is(err, ErrInvalidInput)), a retired tariff tariff.ErrRetired. A new code previews
// its first version: nothing is grandfathered. Trap: the preview is of this instant; a
// publication confirmed later, or after another version, may differ (the numbers, and a
// rise's notice counted from the real publication).
func (c *Catalog) PreviewPublish(ctx context.Context, spec tariff.Spec) (_ PublishPreview, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.PreviewPublish", tariffAttr(spec.Code))
	defer span.end(&err)
	if err := spec.Validate(); err != nil {
		return PublishPreview{}, opError("PreviewPublish", err)
	}
	now := c.e.clock.Now()
	t, err := store.GetTariff(ctx, c.e.pool, spec.Code)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return PublishPreview{}, opError("PreviewPublish", err)
	case t.Status == tariff.Retired:
		return PublishPreview{}, opError("PreviewPublish", errRetiredForPublish(t))
	}
	versions, err := store.Versions(ctx, c.e.pool, spec.Code)
	if err != nil {
		return PublishPreview{}, opError("PreviewPublish", err)
	}
	var prev *tariff.Version
	if len(versions) > 0 {
		prev = &versions[len(versions)-1]
	}
	next, err := tariff.NewVersion(spec, prev, now)
	if err != nil {
		return PublishPreview{}, opError("PreviewPublish", err)
	}
	out := PublishPreview{Version: next, RenewFrom: next.EffectiveAt}
	running, err := store.RunningPeriodsByVersion(ctx, c.e.pool, spec.Code, now, next.Number)
	if err != nil {
		return PublishPreview{}, opError("PreviewPublish", err)
	}
	for _, r := range running {
		if r.Version < 1 || r.Version > len(versions) {
			return PublishPreview{}, opError("PreviewPublish", fmt.Errorf("%w: %d periods of tariff %q name version %d, which the catalog lacks",
				ErrInternal, r.Periods, spec.Code, r.Version))
		}
		old := versions[r.Version-1].Terms()
		g := PublishPreviewGroup{Version: r.Version, Price: old.Price, Currency: old.Currency, Periods: r.Periods,
			RenewFrom: tariff.RenewalTakesFrom(old, next)}
		out.Grandfathered += g.Periods
		if g.RenewFrom.After(out.RenewFrom) {
			out.RenewFrom = g.RenewFrom
		}
		out.ByVersion = append(out.ByVersion, g)
	}
	return out, nil
}

// Get returns the tariff code (ErrNotFound when the catalog has none).
func (c *Catalog) Get(ctx context.Context, code string) (_ tariff.Tariff, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.Get", tariffAttr(code))
	defer span.end(&err)
	t, err := store.GetTariff(ctx, c.e.pool, code)
	if err != nil {
		return tariff.Tariff{}, opError("Get tariff "+code, err)
	}
	return t, nil
}

// List returns every tariff of the catalog, active and retired, by code.
func (c *Catalog) List(ctx context.Context) (_ []tariff.Tariff, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.List")
	defer span.end(&err)
	ts, err := store.ListTariffs(ctx, c.e.pool)
	return ts, opError("List tariffs", err)
}

// VersionList returns the version history of code, oldest first (ErrNotFound for an unknown
// code).
func (c *Catalog) VersionList(ctx context.Context, code string) (_ []tariff.Version, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.VersionList", tariffAttr(code))
	defer span.end(&err)
	vs, err := store.Versions(ctx, c.e.pool, code)
	if err != nil {
		return nil, opError("Versions", err)
	}
	if len(vs) == 0 {
		return nil, opError("Versions", fmt.Errorf("tariff %q: %w", code, ErrNotFound))
	}
	return vs, nil
}

// InForce returns the version of code in force at instant at (tariff.ErrNoVersion when
// the first version takes effect later, ErrNotFound for an unknown code).
func (c *Catalog) InForce(ctx context.Context, code string, at time.Time) (_ tariff.Version, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.InForce", tariffAttr(code))
	defer span.end(&err)
	vs, err := store.Versions(ctx, c.e.pool, code)
	if err == nil && len(vs) == 0 {
		err = fmt.Errorf("tariff %q: %w", code, ErrNotFound)
	}
	if err != nil {
		return tariff.Version{}, opError("InForce", err)
	}
	v, ok := tariff.InForce(vs, at)
	if !ok {
		return tariff.Version{}, opError("InForce", fmt.Errorf("tariff %q at %s: %w", code, at.Format(time.RFC3339), tariff.ErrNoVersion))
	}
	return v, nil
}

// Retire takes the tariff code off sale: it can no longer be bought, while subscriptions
// already on it keep renewing on its last version until the operator moves them. Retiring
// twice returns tariff.ErrRetired. actor and reason go to the audit log.
func (c *Catalog) Retire(ctx context.Context, code, actor, reason string) (_ tariff.Tariff, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.Retire", tariffAttr(code), attrHostTx.Bool(false))
	defer span.end(&err)
	return c.retire(ctx, c.e.pool, code, actor, reason)
}

// RetireTx is Retire in the host's transaction tx.
func (c *Catalog) RetireTx(ctx context.Context, tx pgx.Tx, code, actor, reason string) (_ tariff.Tariff, err error) {
	ctx, span := c.e.tel.start(ctx, "Tariffs.Retire", tariffAttr(code), attrHostTx.Bool(true))
	defer span.end(&err)
	if err := hostTx("RetireTx", tx); err != nil {
		return tariff.Tariff{}, err
	}
	return c.retire(ctx, tx, code, actor, reason)
}

func (c *Catalog) retire(ctx context.Context, db dbtx, code, actor, reason string) (tariff.Tariff, error) {
	check := inputCheck{op: "Retire"}
	if strings.TrimSpace(actor) == "" {
		check.add("actor", "required for the audit log")
	}
	if err := check.err(); err != nil {
		return tariff.Tariff{}, err
	}
	var out tariff.Tariff
	err := store.InTx(ctx, db, func(tx pgx.Tx) error {
		t, err := store.LockTariff(ctx, tx, code)
		if err != nil {
			return err
		}
		now := c.e.clock.Now()
		if out, err = t.Retire(now); err != nil {
			return err
		}
		if err := store.RetireTariff(ctx, tx, out); err != nil {
			return err
		}
		return store.InsertAudit(ctx, tx, store.AuditEntry{At: now, Actor: actor, Action: "tariff.retire", Subject: "tariff:" + code, Reason: reason})
	})
	if err != nil {
		return tariff.Tariff{}, opError("Retire "+code, err)
	}
	return out, nil
}
