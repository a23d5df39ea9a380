package tariff

import (
	"errors"
	"strings"
)

// ErrInvalid is the sentinel every bad-input error of this package matches with
// errors.Is. Field problems come as a *ValidationError (errors.As) that names each one.
var ErrInvalid = errors.New("tariff: invalid")

// ErrRetired is returned when a retired tariff is bought or retired again. Renewals of
// subscriptions already on it are not refused (see TermsForRenewal).
var ErrRetired = errors.New("tariff: retired")

// ErrVersionChanged is returned by NewVersion (and so by Publish) when Spec.ExpectedNumber
// is set and the version would get another number: a version was published since the
// caller looked (the preview it confirms is stale). Nothing is published.
var ErrVersionChanged = errors.New("tariff: another version was published meanwhile")

// ErrNoVersion is returned when a tariff has no version in force at the instant asked
// about: nothing published yet, or every version takes effect later.
var ErrNoVersion = errors.New("tariff: no version in force")

// FieldError is one problem with one field of the input.
type FieldError struct {
	// Field names the field with the path a caller can map to its own form:
	// "code", "name", "price", "currency", "period.count", "period.unit",
	// "limits[2].meter", "limits[2].quantity", "options.price_notice",
	// "effective_at", "published_at", "expected_number".
	Field string
	// Problem says what is wrong, in words for an operator: "must not be negative".
	Problem string
}

// String renders the problem as "field: problem".
func (f FieldError) String() string { return f.Field + ": " + f.Problem }

// ValidationError lists every problem found in one input, not only the first, so an
// operator fixes a form in one round. It matches ErrInvalid with errors.Is. A field may
// appear more than once when it has several problems (a price both negative and too
// precise). Validation functions return a nil error, never an empty *ValidationError.
type ValidationError struct {
	// Fields are the problems in the order the input's fields are declared; NewVersion
	// appends those found against the previous version after the Spec's own.
	Fields []FieldError
}

// Error lists every problem: "tariff: invalid: code: is required; price: must not be negative".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalid, so errors.Is(err, ErrInvalid) holds.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Has reports whether field has at least one problem.
func (e *ValidationError) Has(field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// problems collects FieldErrors while validating; its err is nil when none was added.
type problems []FieldError

func (p *problems) add(field, problem string) {
	*p = append(*p, FieldError{Field: field, Problem: problem})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Fields: p}
}
