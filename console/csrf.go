package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// The CSRF defence is OWASP's "HMAC-based token pattern" (the stateless variant of the
// synchronizer token): each form carries
//
//	base64url(nonce ‖ issued-at) "." base64url(HMAC-SHA256(secret, operator ID ‖ nonce ‖ issued-at))
//
// in the hidden field csrfField. A POST is served only when the MAC verifies for the
// operator Identify returns for that very request and the token is younger than the TTL.
// A page of another site can neither read a token (the browser's same-origin policy) nor
// forge one (it lacks the secret), and a token taken from one operator is useless to
// another. Nothing is stored: no session, no cookie of our own, so the console works behind
// any authentication the host has. The trade-off: a token may be replayed by the same
// operator until it expires, which is harmless here, since every action is either
// idempotent in the engine or refused by its state machine the second time.

// csrfField is the name of the hidden form field holding the token.
const csrfField = "csrf"

// csrfSigner makes and checks the tokens.
type csrfSigner struct {
	secret []byte
	ttl    time.Duration
}

// token returns a new token for the operator, issued at now.
func (s csrfSigner) token(operatorID string, now time.Time) string {
	payload := make([]byte, 16+8)
	_, _ = rand.Read(payload[:16]) // crypto/rand.Read never fails (Go 1.24+)
	binary.BigEndian.PutUint64(payload[16:], uint64(now.Unix()))
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(s.mac(operatorID, payload))
}

// valid reports whether tok is a token this signer made for operatorID, no older than the TTL
// at now (and not from the future, beyond a minute of clock skew between replicas).
func (s csrfSigner) valid(tok, operatorID string, now time.Time) bool {
	p, m, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || len(payload) != 24 {
		return false
	}
	mac, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !hmac.Equal(mac, s.mac(operatorID, payload)) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(payload[16:])), 0)
	return !now.Before(issued.Add(-time.Minute)) && now.Sub(issued) <= s.ttl
}

// mac is the HMAC of the operator's ID and the payload; the ID is length-prefixed so that no
// two (ID, payload) pairs share an input.
func (s csrfSigner) mac(operatorID string, payload []byte) []byte {
	h := hmac.New(sha256.New, s.secret)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(operatorID)))
	h.Write(n[:])
	h.Write([]byte(operatorID))
	h.Write(payload)
	return h.Sum(nil)
}

// operatorKey is the context key of the request's operator.
type operatorKey struct{}

// withOperator returns ctx carrying op.
func withOperator(ctx context.Context, op Operator) context.Context {
	return context.WithValue(ctx, operatorKey{}, op)
}

// operatorFrom returns the operator ServeHTTP identified.
func operatorFrom(ctx context.Context) Operator {
	op, _ := ctx.Value(operatorKey{}).(Operator)
	return op
}
