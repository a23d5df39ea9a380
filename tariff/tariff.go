package tariff

import (
	"fmt"
	"time"
)

// Status is whether a tariff is on sale.
type Status string

// The statuses of a Tariff. There is no way back from Retired: to sell the plan again,
// publish it under a new code.
const (
	// Active tariffs can be bought.
	Active Status = "active"
	// Retired tariffs can no longer be bought; subscriptions already on one keep
	// renewing under its versions until the operator moves them to another tariff.
	Retired Status = "retired"
)

// Tariff is a plan in the catalog, identified by its stable Code. What it sells (price,
// period, limits) lives in its Versions; the Tariff only says whether it is on sale.
type Tariff struct {
	// Code is the stable identifier ("pro"), the same in every version. It matches
	// [a-z0-9_-]{1,64}; see Spec.Code.
	Code string
	// Name is the catalog's display name, that of the latest version. Each Version keeps
	// the name shown at checkout under it; the catalog updates this one on publishing.
	Name string
	// Status is Active or Retired. The zero value "" is not a status: CheckBuy refuses it.
	Status Status
	// RetiredAt is when the tariff was retired; zero while it is active.
	RetiredAt time.Time
}

// CheckBuy returns nil when a new subscription to t may be bought, ErrRetired when t is
// retired, and ErrInvalid for an unknown status. Renewals do not call it: a retired
// tariff keeps renewing the subscriptions already on it.
func (t Tariff) CheckBuy() error {
	switch t.Status {
	case Active:
		return nil
	case Retired:
		return fmt.Errorf("%w: tariff %q can no longer be bought", ErrRetired, t.Code)
	}
	return fmt.Errorf("%w: tariff %q has unknown status %q", ErrInvalid, t.Code, t.Status)
}

// Retire returns t taken off sale at instant at. Retiring a retired tariff returns
// ErrRetired and leaves the first retirement instant alone.
func (t Tariff) Retire(at time.Time) (Tariff, error) {
	if err := t.CheckBuy(); err != nil {
		return t, err
	}
	t.Status, t.RetiredAt = Retired, at
	return t, nil
}
