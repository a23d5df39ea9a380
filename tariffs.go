package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
			return fmt.Errorf("%w: tariff %q was retired at %s; publish under a new code", tariff.ErrRetired, t.Code, t.RetiredAt.Format(time.RFC3339))
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
