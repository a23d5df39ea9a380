package tariff_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/tariff"
)

// fieldsOf returns the fields a *ValidationError names, in order.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var verr *tariff.ValidationError
	require.ErrorAs(t, err, &verr)
	require.NotEmpty(t, verr.Fields)
	fields := make([]string, len(verr.Fields))
	for i, f := range verr.Fields {
		fields[i] = f.Field
	}
	return fields
}

// proSpec is a valid spec that test rows break one field at a time.
func proSpec() tariff.Spec {
	return tariff.Spec{
		Code:     "pro",
		Name:     "Pro",
		Price:    decimal.RequireFromString("990.00"),
		Currency: "RUB",
		Period:   tariff.Period{Count: 1, Unit: tariff.Month},
		Limits:   []tariff.Limit{{Meter: "generations", Quantity: 500}, {Meter: "images", Quantity: 100}},
		Options:  tariff.Options{PriceNotice: 30 * 24 * time.Hour},
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(s *tariff.Spec)
		fields []string // nil: valid
	}{
		{name: "3.1 the base spec is valid", edit: func(*tariff.Spec) {}},
		{name: "3.3 a free tariff (price 0) is valid", edit: func(s *tariff.Spec) { s.Price = decimal.Zero }},
		{name: "6.3 empty currency means RUB", edit: func(s *tariff.Spec) { s.Currency = "" }},
		{name: "3.1 no limits is valid (unlimited volume)", edit: func(s *tariff.Spec) { s.Limits = nil }},
		{name: "3.4 whole yen are valid", edit: func(s *tariff.Spec) { s.Currency, s.Price = "JPY", decimal.NewFromInt(1500) }},
		{name: "3.4 trailing zeros beyond kopecks are fine", edit: func(s *tariff.Spec) { s.Price = decimal.RequireFromString("990.0000") }},
		{name: "3.1 code with digits, dash and underscore is valid", edit: func(s *tariff.Spec) { s.Code = "team-2025_q1" }},

		{name: "3.2 empty code", edit: func(s *tariff.Spec) { s.Code = "" }, fields: []string{"code"}},
		{name: "3.2 upper-case code", edit: func(s *tariff.Spec) { s.Code = "Pro" }, fields: []string{"code"}},
		{name: "3.2 code with a space", edit: func(s *tariff.Spec) { s.Code = "pro plan" }, fields: []string{"code"}},
		{name: "3.2 code longer than 64", edit: func(s *tariff.Spec) { s.Code = strings.Repeat("a", 65) }, fields: []string{"code"}},
		{name: "3.4 empty name", edit: func(s *tariff.Spec) { s.Name = "" }, fields: []string{"name"}},
		{name: "3.4 blank name", edit: func(s *tariff.Spec) { s.Name = " \t " }, fields: []string{"name"}},
		{name: "3.4 name longer than 200 characters", edit: func(s *tariff.Spec) { s.Name = strings.Repeat("я", 201) }, fields: []string{"name"}},
		{name: "3.4 name not UTF-8", edit: func(s *tariff.Spec) { s.Name = "Pro\xff" }, fields: []string{"name"}},
		{name: "3.4 negative price", edit: func(s *tariff.Spec) { s.Price = decimal.NewFromInt(-1) }, fields: []string{"price"}},
		{name: "3.4 price finer than kopecks", edit: func(s *tariff.Spec) { s.Price = decimal.RequireFromString("990.001") }, fields: []string{"price"}},
		{name: "3.4 price finer than yen", edit: func(s *tariff.Spec) { s.Currency, s.Price = "JPY", decimal.RequireFromString("1.5") }, fields: []string{"price"}},
		{name: "3.4 negative and too precise price names both problems", edit: func(s *tariff.Spec) { s.Price = decimal.RequireFromString("-0.001") }, fields: []string{"price", "price"}},
		{name: "3.4 price beyond int64 kopecks", edit: func(s *tariff.Spec) { s.Price = decimal.RequireFromString("1e18") }, fields: []string{"price"}},
		{name: "3.4 unknown currency", edit: func(s *tariff.Spec) { s.Currency = "XXX" }, fields: []string{"currency"}},
		{name: "3.4 lower-case currency is not guessed", edit: func(s *tariff.Spec) { s.Currency = "rub" }, fields: []string{"currency"}},
		{name: "3.1 period count zero", edit: func(s *tariff.Spec) { s.Period.Count = 0 }, fields: []string{"period.count"}},
		{name: "3.1 period count negative", edit: func(s *tariff.Spec) { s.Period.Count = -3 }, fields: []string{"period.count"}},
		{name: "3.1 period unit unknown", edit: func(s *tariff.Spec) { s.Period.Unit = "fortnight" }, fields: []string{"period.unit"}},
		{name: "3.1 period unit empty", edit: func(s *tariff.Spec) { s.Period.Unit = "" }, fields: []string{"period.unit"}},
		{name: "3.1 meter empty", edit: func(s *tariff.Spec) { s.Limits[1].Meter = "" }, fields: []string{"limits[1].meter"}},
		{name: "3.1 meter upper case", edit: func(s *tariff.Spec) { s.Limits[0].Meter = "Images" }, fields: []string{"limits[0].meter"}},
		{name: "3.1 meter with a dash", edit: func(s *tariff.Spec) { s.Limits[0].Meter = "ai-tokens" }, fields: []string{"limits[0].meter"}},
		{name: "3.1 meter longer than 64", edit: func(s *tariff.Spec) { s.Limits[0].Meter = strings.Repeat("m", 65) }, fields: []string{"limits[0].meter"}},
		{name: "3.1 quantity zero", edit: func(s *tariff.Spec) { s.Limits[0].Quantity = 0 }, fields: []string{"limits[0].quantity"}},
		{name: "3.1 quantity negative", edit: func(s *tariff.Spec) { s.Limits[1].Quantity = -5 }, fields: []string{"limits[1].quantity"}},
		{name: "3.1 duplicate meter", edit: func(s *tariff.Spec) {
			s.Limits = append(s.Limits, tariff.Limit{Meter: "generations", Quantity: 1})
		}, fields: []string{"limits[2].meter"}},
		{name: "2.1.6 negative price notice", edit: func(s *tariff.Spec) { s.Options.PriceNotice = -time.Second }, fields: []string{"options.price_notice"}},
		{name: "3.1 every bad field is named at once", edit: func(s *tariff.Spec) {
			*s = tariff.Spec{
				Code: "PRO!", Name: "", Price: decimal.RequireFromString("-1.234"), Currency: "RUB",
				Period: tariff.Period{Count: 0, Unit: "lunar"},
				Limits: []tariff.Limit{
					{Meter: "", Quantity: 0},
					{Meter: "images", Quantity: 1},
					{Meter: "images", Quantity: -1},
				},
				Options: tariff.Options{PriceNotice: -time.Hour},
			}
		}, fields: []string{
			"code", "name", "price", "price", "period.count", "period.unit",
			"limits[0].meter", "limits[0].quantity", "limits[2].meter", "limits[2].quantity",
			"options.price_notice",
		}},
		{name: "3.4 unknown currency with a negative price names both", edit: func(s *tariff.Spec) {
			s.Currency, s.Price = "ZZZ", decimal.NewFromInt(-5)
		}, fields: []string{"price", "currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := proSpec()
			tt.edit(&spec)
			err := spec.Validate()
			if tt.fields == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tariff.ErrInvalid)
			require.Equal(t, tt.fields, fieldsOf(t, err))
			var verr *tariff.ValidationError
			require.ErrorAs(t, err, &verr)
			for _, f := range verr.Fields {
				require.Contains(t, err.Error(), f.Field+": "+f.Problem)
				require.True(t, verr.Has(f.Field))
			}
			// NewVersion refuses the same spec with the same fields and returns no version.
			v, err := tariff.NewVersion(spec, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			require.Equal(t, tt.fields, fieldsOf(t, err))
			require.Zero(t, v)
		})
	}
}

func TestNewVersion(t *testing.T) {
	t.Parallel()
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	jun := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	v1, err := tariff.NewVersion(proSpec(), nil, jan)
	require.NoError(t, err)

	tests := []struct {
		name          string
		edit          func(s *tariff.Spec)
		previous      *tariff.Version
		publishedAt   time.Time
		fields        []string // set: refused with these fields
		changed       bool     // refused with ErrVersionChanged
		wantNumber    int
		wantEffective time.Time
	}{
		{name: "3.2 first version is number 1, effective at publication", edit: func(*tariff.Spec) {},
			publishedAt: jan, wantNumber: 1, wantEffective: jan},
		{name: "3.2 next version is numbered after the previous", edit: func(*tariff.Spec) {},
			previous: &v1, publishedAt: feb, wantNumber: 2, wantEffective: feb},
		{name: "3.2 a version scheduled ahead keeps its EffectiveAt", edit: func(s *tariff.Spec) { s.EffectiveAt = jun },
			previous: &v1, publishedAt: feb, wantNumber: 2, wantEffective: jun},
		{name: "3.2 a backdated EffectiveAt is raised to publication", edit: func(s *tariff.Spec) { s.EffectiveAt = jan.Add(-time.Hour) },
			publishedAt: jan, wantNumber: 1, wantEffective: jan},
		{name: "3.2 a version may take effect at the same instant as the previous", edit: func(s *tariff.Spec) { s.EffectiveAt = jan },
			previous: &v1, publishedAt: jan, wantNumber: 2, wantEffective: jan},
		{name: "3.2 effective before the previous version is refused", edit: func(s *tariff.Spec) { s.EffectiveAt = feb },
			previous: ptr(withEffective(v1, jun)), publishedAt: feb, fields: []string{"effective_at"}},
		{name: "3.2 effective at publication, before a scheduled previous, is refused", edit: func(*tariff.Spec) {},
			previous: ptr(withEffective(v1, jun)), publishedAt: feb, fields: []string{"effective_at"}},
		{name: "3.2 another tariff's code is refused", edit: func(s *tariff.Spec) { s.Code = "basic" },
			previous: &v1, publishedAt: feb, fields: []string{"code"}},
		{name: "3.2 zero publication instant is refused", edit: func(*tariff.Spec) {},
			publishedAt: time.Time{}, fields: []string{"published_at"}},
		{name: "3.2 publication before the previous one is refused", edit: func(*tariff.Spec) {},
			previous: &v1, publishedAt: jan.Add(-time.Nanosecond), fields: []string{"effective_at", "published_at"}},
		{name: "2.1.6 a confirmed preview's expected number matches: published", edit: func(s *tariff.Spec) { s.ExpectedNumber = 2 },
			previous: &v1, publishedAt: feb, wantNumber: 2, wantEffective: feb},
		{name: "2.1.6 the first version expected as number 1", edit: func(s *tariff.Spec) { s.ExpectedNumber = 1 },
			publishedAt: jan, wantNumber: 1, wantEffective: jan},
		{name: "2.1.6 a stale preview (another version published since) is refused", edit: func(s *tariff.Spec) { s.ExpectedNumber = 2 },
			previous: ptr(withNumber(v1, 2)), publishedAt: feb, changed: true},
		{name: "2.1.6 a preview confirmed twice: the second finds its number taken", edit: func(s *tariff.Spec) { s.ExpectedNumber = 1 },
			previous: &v1, publishedAt: feb, changed: true},
		{name: "a negative expected number is refused", edit: func(s *tariff.Spec) { s.ExpectedNumber = -1 },
			previous: &v1, publishedAt: feb, fields: []string{"expected_number"}},
		{name: "3.2 spec and history problems are named together", edit: func(s *tariff.Spec) { s.Code, s.Price = "basic", decimal.NewFromInt(-1) },
			previous: ptr(withEffective(v1, jun)), publishedAt: feb, fields: []string{"price", "code", "effective_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := proSpec()
			tt.edit(&spec)
			v, err := tariff.NewVersion(spec, tt.previous, tt.publishedAt)
			if tt.changed {
				require.ErrorIs(t, err, tariff.ErrVersionChanged)
				require.NotErrorIs(t, err, tariff.ErrInvalid)
				require.Zero(t, v)
				return
			}
			if tt.fields != nil {
				require.ErrorIs(t, err, tariff.ErrInvalid)
				require.Equal(t, tt.fields, fieldsOf(t, err))
				require.Zero(t, v)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantNumber, v.Number)
			require.True(t, tt.wantEffective.Equal(v.EffectiveAt), "effective %s, want %s", v.EffectiveAt, tt.wantEffective)
			require.True(t, tt.publishedAt.Equal(v.PublishedAt))
			require.Equal(t, spec.Code, v.Code)
			require.Equal(t, spec.Limits, v.Limits)
		})
	}
}

func TestNewVersionDefaultsAndCopies(t *testing.T) {
	t.Parallel()
	spec := proSpec()
	spec.Currency = ""
	v, err := tariff.NewVersion(spec, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, tariff.DefaultCurrency, v.Currency)

	spec.Limits[0].Quantity = 1 // the operator's slice changes after publishing
	require.Equal(t, int64(500), v.Limits[0].Quantity, "a version must not share the spec's limits")
}

func TestInForce(t *testing.T) {
	t.Parallel()
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mar := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	jun := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	history := publish(t,
		step{at: jan, price: "990"},
		step{at: jan, price: "990", effective: mar},
		step{at: mar, price: "1290", effective: jun},
		step{at: mar, price: "1190", effective: jun},
	)
	reversed := []tariff.Version{history[3], history[2], history[1], history[0]}
	tests := []struct {
		name string
		at   time.Time
		want int // version number; 0: none in force
	}{
		{name: "3.2 nothing in force before the first version", at: jan.Add(-time.Nanosecond), want: 0},
		{name: "3.2 first version in force exactly at its EffectiveAt", at: jan, want: 1},
		{name: "3.2 one ns before a change the old version is in force", at: mar.Add(-time.Nanosecond), want: 1},
		{name: "3.2 exactly at a change the new version is in force", at: mar, want: 2},
		{name: "3.2 of two versions effective together the later number wins", at: jun, want: 4},
		{name: "3.2 long after the last change the last version is in force", at: jun.AddDate(10, 0, 0), want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, versions := range [][]tariff.Version{history, reversed} {
				v, ok := tariff.InForce(versions, tt.at)
				require.Equal(t, tt.want != 0, ok)
				require.Equal(t, tt.want, v.Number)
			}
		})
	}
	t.Run("2.1.6 the version returned shares no limits with the history", func(t *testing.T) {
		t.Parallel()
		history := publish(t, step{at: jan, price: "990"})
		v, ok := tariff.InForce(history, jan)
		require.True(t, ok)
		v.Limits[0].Quantity = 1
		require.Equal(t, int64(500), history[0].Limits[0].Quantity)
	})
	t.Run("3.2 no versions at all", func(t *testing.T) {
		t.Parallel()
		_, ok := tariff.InForce(nil, jan)
		require.False(t, ok)
	})
}

func TestTariffCheckBuyAndRetire(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	active := tariff.Tariff{Code: "pro", Name: "Pro", Status: tariff.Active}
	require.NoError(t, active.CheckBuy())

	retired, err := active.Retire(at)
	require.NoError(t, err)
	require.Equal(t, tariff.Retired, retired.Status)
	require.True(t, at.Equal(retired.RetiredAt))
	require.ErrorIs(t, retired.CheckBuy(), tariff.ErrRetired)
	require.Equal(t, tariff.Active, active.Status, "Retire returns a copy")

	again, err := retired.Retire(at.Add(time.Hour))
	require.ErrorIs(t, err, tariff.ErrRetired)
	require.True(t, at.Equal(again.RetiredAt), "the first retirement instant stays")

	require.ErrorIs(t, tariff.Tariff{Code: "pro"}.CheckBuy(), tariff.ErrInvalid, "zero status is not a status")
}

func TestTerms(t *testing.T) {
	t.Parallel()
	v, err := tariff.NewVersion(proSpec(), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	terms := v.Terms()

	t.Run("3.4 terms carry what checkout showed", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "pro", terms.Code)
		require.Equal(t, 1, terms.Version)
		require.Equal(t, "Pro", terms.Name)
		require.Equal(t, "RUB", terms.Currency)
		require.Equal(t, v.Period, terms.Period)
		require.Equal(t, v.Options, terms.Options)
		minor, err := terms.PriceMinor()
		require.NoError(t, err)
		require.Equal(t, int64(99000), minor)
		require.False(t, terms.IsFree())
	})
	t.Run("2.1.6 a sold period's limits cannot change through the version", func(t *testing.T) {
		t.Parallel()
		mine, err := tariff.NewVersion(proSpec(), nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		sold := mine.Terms()
		mine.Limits[0].Quantity = 1
		require.Equal(t, int64(500), sold.Limits[0].Quantity)
		c := sold.Clone()
		c.Limits[1].Quantity = 7
		require.Equal(t, int64(100), sold.Limits[1].Quantity)
	})
	t.Run("3.1 Limit finds a meter and reports an unlimited one", func(t *testing.T) {
		t.Parallel()
		l, ok := terms.Limit("images")
		require.True(t, ok)
		require.Equal(t, tariff.Limit{Meter: "images", Quantity: 100}, l)
		_, ok = terms.Limit("tokens")
		require.False(t, ok)
	})
	t.Run("3.3 a zero price is free and charges 0", func(t *testing.T) {
		t.Parallel()
		free := tariff.Terms{Price: decimal.RequireFromString("0.00"), Currency: "RUB"}
		require.True(t, free.IsFree())
		minor, err := free.PriceMinor()
		require.NoError(t, err)
		require.Zero(t, minor)
	})
	t.Run("3.4 PriceMinor refuses terms it cannot charge exactly", func(t *testing.T) {
		t.Parallel()
		_, err := tariff.Terms{Price: decimal.NewFromInt(1), Currency: "XXX"}.PriceMinor()
		require.ErrorIs(t, err, money.ErrUnknownCurrency)
		_, err = tariff.Terms{Price: decimal.RequireFromString("1.005"), Currency: "RUB"}.PriceMinor()
		require.ErrorIs(t, err, money.ErrPrecision)
	})
	t.Run("2.1.6 Equal compares prices as numbers and limits as sets", func(t *testing.T) {
		t.Parallel()
		same := terms.Clone()
		same.Price = decimal.RequireFromString("990")
		same.Limits[0], same.Limits[1] = same.Limits[1], same.Limits[0]
		require.True(t, terms.Equal(same))

		other := terms.Clone()
		other.Limits[0].Quantity++
		require.False(t, terms.Equal(other))

		dupA, dupB := terms.Clone(), terms.Clone()
		dupA.Limits = []tariff.Limit{{"a", 1}, {"a", 1}, {"b", 2}}
		dupB.Limits = []tariff.Limit{{"a", 1}, {"b", 2}, {"b", 2}}
		require.False(t, dupA.Equal(dupB))

		pricier := terms.Clone()
		pricier.Price = decimal.RequireFromString("990.01")
		require.False(t, terms.Equal(pricier))
	})
}

func TestValidationErrorIsAndMessage(t *testing.T) {
	t.Parallel()
	err := tariff.Spec{}.Validate()
	require.True(t, errors.Is(err, tariff.ErrInvalid))
	require.Equal(t,
		`tariff: invalid: code: is required; name: is required; period.count: must be at least 1; period.unit: unknown unit "" (want day, week, month or year)`,
		err.Error())
}

func ptr[T any](v T) *T { return &v }

func withEffective(v tariff.Version, at time.Time) tariff.Version {
	v.EffectiveAt = at
	return v
}

// withNumber is v renumbered n.
func withNumber(v tariff.Version, n int) tariff.Version {
	v.Number = n
	return v
}

// step is one publication in a test history: published at at, effective at effective
// (zero: at publication), with a price, optional notice and currency.
type step struct {
	at        time.Time
	effective time.Time
	price     string
	notice    time.Duration
	currency  string
	images    int64 // images limit; 0 means 100
}

// publish builds a tariff's history through NewVersion, failing the test on any error.
func publish(t *testing.T, steps ...step) []tariff.Version {
	t.Helper()
	var history []tariff.Version
	for _, s := range steps {
		spec := proSpec()
		spec.Price = decimal.RequireFromString(s.price)
		spec.EffectiveAt = s.effective
		spec.Options.PriceNotice = s.notice
		spec.Currency = s.currency
		if s.images != 0 {
			spec.Limits[1].Quantity = s.images
		}
		var prev *tariff.Version
		if len(history) > 0 {
			prev = &history[len(history)-1]
		}
		v, err := tariff.NewVersion(spec, prev, s.at)
		require.NoError(t, err)
		history = append(history, v)
	}
	return history
}
