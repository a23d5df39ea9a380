package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/smm-gpt/billing/money"
	"github.com/smm-gpt/billing/tariff"
)

// The JSON shapes of tariff values in jsonb columns. They are the stored format: change
// them only with a migration.

type limitJSON struct {
	Meter    string `json:"meter"`
	Quantity int64  `json:"quantity"`
}

type optionsJSON struct {
	SoftLimits         bool  `json:"soft_limits"`
	RenewWhenExhausted bool  `json:"renew_when_exhausted"`
	PriceNoticeNanos   int64 `json:"price_notice_ns"`
}

// termsJSON is tariff.Terms as stored with a subscription period: price in minor units.
type termsJSON struct {
	Code        string      `json:"code"`
	Version     int         `json:"version"`
	Name        string      `json:"name"`
	PriceMinor  int64       `json:"price_minor"`
	Currency    string      `json:"currency"`
	PeriodCount int         `json:"period_count"`
	PeriodUnit  string      `json:"period_unit"`
	Limits      []limitJSON `json:"limits"`
	Options     optionsJSON `json:"options"`
}

func encodeLimits(ls []tariff.Limit) []limitJSON {
	out := make([]limitJSON, len(ls))
	for i, l := range ls {
		out[i] = limitJSON{Meter: l.Meter, Quantity: l.Quantity}
	}
	return out
}

func decodeLimits(ls []limitJSON) []tariff.Limit {
	if len(ls) == 0 {
		return nil
	}
	out := make([]tariff.Limit, len(ls))
	for i, l := range ls {
		out[i] = tariff.Limit{Meter: l.Meter, Quantity: l.Quantity}
	}
	return out
}

func encodeOptions(o tariff.Options) optionsJSON {
	return optionsJSON{SoftLimits: o.SoftLimits, RenewWhenExhausted: o.RenewWhenExhausted, PriceNoticeNanos: int64(o.PriceNotice)}
}

func decodeOptions(o optionsJSON) tariff.Options {
	return tariff.Options{SoftLimits: o.SoftLimits, RenewWhenExhausted: o.RenewWhenExhausted, PriceNotice: time.Duration(o.PriceNoticeNanos)}
}

// EncodeTerms returns t as stored JSON. The price must fit its currency (tariff
// validation guarantees it for every published version).
func EncodeTerms(t tariff.Terms) ([]byte, error) {
	cur, err := money.Lookup(t.Currency)
	if err != nil {
		return nil, err
	}
	minor, err := cur.ToMinor(t.Price)
	if err != nil {
		return nil, err
	}
	return json.Marshal(termsJSON{
		Code: t.Code, Version: t.Version, Name: t.Name, PriceMinor: minor, Currency: t.Currency,
		PeriodCount: t.Period.Count, PeriodUnit: string(t.Period.Unit),
		Limits: encodeLimits(t.Limits), Options: encodeOptions(t.Options),
	})
}

// DecodeTerms parses stored JSON back into tariff.Terms.
func DecodeTerms(raw []byte) (tariff.Terms, error) {
	var j termsJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return tariff.Terms{}, fmt.Errorf("decode terms: %w", err)
	}
	cur, err := money.Lookup(j.Currency)
	if err != nil {
		return tariff.Terms{}, err
	}
	return tariff.Terms{
		Code: j.Code, Version: j.Version, Name: j.Name, Price: cur.FromMinor(j.PriceMinor), Currency: j.Currency,
		Period: tariff.Period{Count: j.PeriodCount, Unit: tariff.Unit(j.PeriodUnit)},
		Limits: decodeLimits(j.Limits), Options: decodeOptions(j.Options),
	}, nil
}

func priceFromMinor(minor int64, currency string) (decimal.Decimal, error) {
	cur, err := money.Lookup(currency)
	if err != nil {
		return decimal.Decimal{}, err
	}
	return cur.FromMinor(minor), nil
}
