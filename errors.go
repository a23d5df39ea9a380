package billing

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/store"
)

// Errors every command may return. Test them with errors.Is; they are wrapped with
// context.
var (
	// ErrNotFound: the tariff, subscription, reservation or request named does not exist.
	ErrNotFound = errors.New("billing: not found")
	// ErrIdempotencyConflict: an idempotency key was used before with a different request.
	// The first request's effect stands; nothing was written.
	ErrIdempotencyConflict = errors.New("billing: idempotency key reused with a different request")
	// ErrInvalidInput is matched by every *InputError.
	ErrInvalidInput = errors.New("billing: invalid input")
)

// MaxIdempotencyKeyLen is the longest idempotency key accepted.
const MaxIdempotencyKeyLen = 200

// InputError names the fields of a request that were refused. Nothing was written.
type InputError struct {
	// Op is the command ("Consume", "Subscribe").
	Op string
	// Problems lists every bad field.
	Problems []FieldProblem
}

// Error lists every problem.
func (e *InputError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Problem
	}
	return fmt.Sprintf("billing: %s: invalid input: %s", e.Op, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Has reports whether field is among the problems.
func (e *InputError) Has(field string) bool {
	for _, p := range e.Problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// inputCheck collects problems of one request.
type inputCheck struct {
	op       string
	problems []FieldProblem
}

func (c *inputCheck) add(field, problem string) {
	c.problems = append(c.problems, FieldProblem{field, problem})
}

func (c *inputCheck) key(field, key string) {
	switch {
	case key == "":
		c.add(field, "required: an idempotency key makes a retry safe")
	case len(key) > MaxIdempotencyKeyLen:
		c.add(field, fmt.Sprintf("longer than %d bytes", MaxIdempotencyKeyLen))
	}
}

func (c *inputCheck) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &InputError{Op: c.op, Problems: c.problems}
}

// mapStoreError turns the store's errors into the engine's (the one seam, as River's
// interpretError).
func mapStoreError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, store.ErrKeyConflict):
		return fmt.Errorf("%w: %w", ErrIdempotencyConflict, err)
	}
	return err
}

// requestHash is the fingerprint of a request for its idempotency key: the parts joined
// with a separator no part contains.
func requestHash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// claimKeyForID claims an idempotency key for a command whose result is the ID of what it
// made (store.ClaimKey). On a replay it returns that ID, and the caller returns the thing
// it names; on first use it returns "", and the caller makes the thing and saves its ID
// with store.SaveResult in the same transaction.
func claimKeyForID(ctx context.Context, tx pgx.Tx, scope, key string, hash []byte, now time.Time) (string, error) {
	replay, err := store.ClaimKey(ctx, tx, scope, key, hash, now)
	if err != nil || replay == nil {
		return "", err
	}
	var id string
	if err := json.Unmarshal(replay, &id); err != nil {
		return "", fmt.Errorf("idempotency key %q: stored result: %w", key, err)
	}
	return id, nil
}
