package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/tariff"
)

// LockTariffForPublish makes sure a catalog row for code exists (created active with
// name at now when missing) and locks it, so that concurrent publishers of one code
// serialize and get distinct, ordered version numbers.
func LockTariffForPublish(ctx context.Context, tx pgx.Tx, code, name string, now time.Time) (tariff.Tariff, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO billing_tariffs (code, name, status, created_at)
		VALUES ($1, $2, 'active', $3) ON CONFLICT (code) DO NOTHING`, code, name, now); err != nil {
		return tariff.Tariff{}, err
	}
	return scanTariff(tx.QueryRow(ctx, `SELECT code, name, status, retired_at FROM billing_tariffs WHERE code = $1 FOR UPDATE`, code))
}

// LockTariff locks the catalog row of code.
func LockTariff(ctx context.Context, tx pgx.Tx, code string) (tariff.Tariff, error) {
	return scanTariff(tx.QueryRow(ctx, `SELECT code, name, status, retired_at FROM billing_tariffs WHERE code = $1 FOR UPDATE`, code))
}

// GetTariff reads the catalog row of code.
func GetTariff(ctx context.Context, q Querier, code string) (tariff.Tariff, error) {
	return scanTariff(q.QueryRow(ctx, `SELECT code, name, status, retired_at FROM billing_tariffs WHERE code = $1`, code))
}

// ListTariffs returns every tariff of the catalog by code.
func ListTariffs(ctx context.Context, q Querier) ([]tariff.Tariff, error) {
	rows, err := q.Query(ctx, `SELECT code, name, status, retired_at FROM billing_tariffs ORDER BY code`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (tariff.Tariff, error) { return scanTariff(r) })
}

// SetTariffName records the display name of the latest version.
func SetTariffName(ctx context.Context, tx pgx.Tx, code, name string) error {
	_, err := tx.Exec(ctx, `UPDATE billing_tariffs SET name = $2 WHERE code = $1`, code, name)
	return err
}

// RetireTariff stores t's retirement.
func RetireTariff(ctx context.Context, tx pgx.Tx, t tariff.Tariff) error {
	_, err := tx.Exec(ctx, `UPDATE billing_tariffs SET status = $2, retired_at = $3 WHERE code = $1`, t.Code, string(t.Status), t.RetiredAt)
	return err
}

func scanTariff(row pgx.Row) (tariff.Tariff, error) {
	var t tariff.Tariff
	var status string
	var retiredAt *time.Time
	if err := row.Scan(&t.Code, &t.Name, &status, &retiredAt); err != nil {
		return tariff.Tariff{}, interpret(err)
	}
	t.Status = tariff.Status(status)
	if retiredAt != nil {
		t.RetiredAt = *retiredAt
	}
	return t, nil
}

// InsertVersion appends v to the catalog.
func InsertVersion(ctx context.Context, tx pgx.Tx, v tariff.Version) error {
	cur, err := money.Lookup(v.Currency)
	if err != nil {
		return err
	}
	minor, err := cur.ToMinor(v.Price)
	if err != nil {
		return err
	}
	limits, err := json.Marshal(encodeLimits(v.Limits))
	if err != nil {
		return err
	}
	opts, err := json.Marshal(encodeOptions(v.Options))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO billing_tariff_versions
		(code, number, name, price_minor, currency, period_count, period_unit, limits, options, effective_at, published_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		v.Code, v.Number, v.Name, minor, v.Currency, v.Period.Count, string(v.Period.Unit), limits, opts, v.EffectiveAt, v.PublishedAt)
	return err
}

// Versions returns every version of code in number order (empty when there is none).
func Versions(ctx context.Context, q Querier, code string) ([]tariff.Version, error) {
	rows, err := q.Query(ctx, `SELECT code, number, name, price_minor, currency, period_count, period_unit,
			limits, options, effective_at, published_at
		FROM billing_tariff_versions WHERE code = $1 ORDER BY number`, code)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanVersion)
}

// LatestVersion returns the highest-numbered version of code, or nil when it has none.
func LatestVersion(ctx context.Context, q Querier, code string) (*tariff.Version, error) {
	rows, err := q.Query(ctx, `SELECT code, number, name, price_minor, currency, period_count, period_unit,
			limits, options, effective_at, published_at
		FROM billing_tariff_versions WHERE code = $1 ORDER BY number DESC LIMIT 1`, code)
	if err != nil {
		return nil, err
	}
	vs, err := pgx.CollectRows(rows, scanVersion)
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	return &vs[0], nil
}

func scanVersion(row pgx.CollectableRow) (tariff.Version, error) {
	var v tariff.Version
	var minor int64
	var unit string
	var limits []limitJSON
	var opts optionsJSON
	if err := row.Scan(&v.Code, &v.Number, &v.Name, &minor, &v.Currency, &v.Period.Count, &unit,
		&limits, &opts, &v.EffectiveAt, &v.PublishedAt); err != nil {
		return v, err
	}
	price, err := priceFromMinor(minor, v.Currency)
	if err != nil {
		return v, err
	}
	v.Price = price
	v.Period.Unit = tariff.Unit(unit)
	v.Limits = decodeLimits(limits)
	v.Options = decodeOptions(opts)
	return v, nil
}

// RunningPeriods is how many paid periods of one tariff version are running at an instant.
type RunningPeriods struct {
	Version int
	Periods int
}

// runningPeriodsSQL counts, per terms version, the periods sold under tariff $1 that run at
// $2 (started, not ended) and are the current period of a live subscription (active,
// exhausted or suspended: paid and not ended, refunded or terminated), on versions below $3.
// One range of billing_periods_terms_code_end_idx (migration 0017): the tariff's periods
// ending after $2. The subscription of each is a scalar subquery, so a primary-key probe per
// running period: a join would let the planner hash every subscription instead.
const runningPeriodsSQL = `SELECT (p.terms->>'version')::integer AS version, count(*)::integer AS periods
	FROM billing_periods p
	WHERE p.terms->>'code' = $1 AND p.end_at > $2 AND p.start_at <= $2
		AND (p.terms->>'version')::integer < $3
		AND (SELECT s.current_period = p.number AND s.status IN ('active', 'exhausted', 'suspended')
			FROM billing_subscriptions s WHERE s.id = p.subscription_id)
	GROUP BY 1 ORDER BY 1`

// RunningPeriodsByVersion returns, per version below before, the paid periods of tariff code
// running at now (runningPeriodsSQL), in version order; versions with none are left out.
func RunningPeriodsByVersion(ctx context.Context, q Querier, code string, now time.Time, before int) ([]RunningPeriods, error) {
	rows, err := q.Query(ctx, runningPeriodsSQL, code, now, before)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[RunningPeriods])
}
